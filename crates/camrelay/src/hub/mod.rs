//! The stream hub: named streams, their producers (sources) and readers, and the matching of a
//! reader's query filters to source medias (DESIGN.md, "The data path" and "Streams, sources and
//! negotiation").

pub mod events;
pub mod offline;
pub mod paths;
pub mod preload;
pub mod producer;
pub mod publish;
pub mod reader;
pub mod rtp_stats;
pub mod track;

use media::{Direction, Media, MediaFilter};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, RwLock, RwLockReadGuard, RwLockWriteGuard, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

pub use producer::{BoxFuture, Opened, Parked, Producer, ProducerState, Source, SourceError, SourceErrorKind};
pub use publish::{PrivatePublishers, PublishError, PublishGuard, PublishLimits, PublishRequest};
pub use reader::{Delivery, Reader, ReaderShared, ReaderTrack, TrackReader};
pub use rtp_stats::RtpCounters;
pub use track::Track;

/// Builds a source from a URL of one scheme. Registered by `main` from a list, one per module.
pub type SourceFactory = Arc<dyn Fn(&str) -> Result<Arc<dyn Source>, String> + Send + Sync>;

#[derive(Clone, Debug)]
pub struct HubSettings {
    pub linger: Duration,
    /// How long a new reader waits for a source that cannot be reached yet (retrying meanwhile).
    pub start_timeout: Duration,
    pub gop_cache_bytes: usize,
    pub reader_queue: usize,
    /// How long the readers of a publisher that left wait for one to come back with the same medias
    /// and continue its tracks ([`publish`]); zero ends them at once.
    pub publisher_grace: Duration,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HubError {
    #[error("stream not found: {0}")]
    NotFound(String),
    #[error(transparent)]
    NotMatched(#[from] media::MatchError),
    #[error("{0}")]
    Source(String),
    #[error("unsupported scheme: {0}")]
    UnknownScheme(String),
    /// `maxReaders` of the stream's path rule reached.
    #[error("too many readers: stream {stream} takes at most {max}")]
    TooManyReaders { stream: String, max: usize },
}

pub struct Stream {
    pub name: String,
    producers: Mutex<Vec<Arc<Producer>>>,
    readers: Mutex<Vec<Arc<ReaderShared>>>,
    /// Audio being played into this stream's backchannel (two-way audio), if any.
    playback: Mutex<Option<Playback>>,
    /// Set when a publisher created the stream (an unknown path under `allow_any_publish`): the table
    /// it is removed from once no publisher and no reader uses it. `None` for configured streams.
    created_in: Option<Weak<Registry>>,
    /// Set when a path rule made the stream for a reader: how long it stays once no reader is left.
    idle_removal: Option<Duration>,
    /// Producers of publishers that left while their tracks had readers, kept for
    /// [`HubSettings::publisher_grace`] so that a publisher coming back continues their tracks.
    orphans: Mutex<Vec<Arc<Producer>>>,
    /// The offline slate of an `alwaysAvailable` path and the tracks it keeps ([`offline`]).
    offline: Mutex<Option<offline::Offline>>,
}

/// The stream table, shared with publish guards and publisher-created streams so that they can remove
/// what they created. Lock order: `streams`, then `publishers`.
pub(crate) struct Registry {
    streams: RwLock<BTreeMap<String, Arc<Stream>>>,
    publishers: Mutex<publish::PublisherCounts>,
    /// Who hears of ready/read/demand ([`events`]); set once by the app.
    events: OnceLock<Arc<dyn events::HubEvents>>,
    /// Woken when a publisher starts (readers waiting for an on-demand publisher).
    published: tokio::sync::Notify,
}

impl Registry {
    fn read_streams(&self) -> RwLockReadGuard<'_, BTreeMap<String, Arc<Stream>>> {
        self.streams.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write_streams(&self) -> RwLockWriteGuard<'_, BTreeMap<String, Arc<Stream>>> {
        self.streams.write().unwrap_or_else(|e| e.into_inner())
    }

    fn lock_publishers(&self) -> MutexGuard<'_, publish::PublisherCounts> {
        self.publishers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.read_streams().get(name).cloned()
    }

    /// Removes `stream` from the table if a publisher created it and no publisher (started or not),
    /// producer or reader is left on it.
    fn remove_if_unused(&self, stream: &Stream) {
        let mut streams = self.write_streams();
        let counts = self.lock_publishers();
        let is_current = streams.get(&stream.name).is_some_and(|s| std::ptr::eq(Arc::as_ptr(s), stream));
        if is_current
            && stream.created_by_publisher()
            && counts.on_path(&stream.name) == 0
            && stream.producers.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && stream.readers.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
            && stream.orphans.lock().unwrap_or_else(|e| e.into_inner()).is_empty()
        {
            streams.remove(&stream.name);
            tracing::info!(stream = %stream.name, "stream removed: its publisher created it and nothing uses it now");
        }
    }
}

/// A source piped into a stream's backchannel track.
struct Playback {
    source: Arc<Producer>,
    target: Arc<Producer>,
    pump: tokio::task::JoinHandle<()>,
}

impl Playback {
    fn stop(self) {
        self.pump.abort();
        self.source.remove_reader();
        self.source.shutdown();
        self.target.remove_reader();
    }
}

impl Stream {
    fn new(name: &str, created_in: Option<Weak<Registry>>) -> Stream {
        Stream {
            name: name.to_string(),
            producers: Mutex::default(),
            readers: Mutex::default(),
            playback: Mutex::default(),
            created_in,
            idle_removal: None,
            orphans: Mutex::default(),
            offline: Mutex::default(),
        }
    }

    /// Whether a publisher created this stream (it goes away when nothing uses it).
    pub fn created_by_publisher(&self) -> bool {
        self.created_in.is_some()
    }

    pub fn producers(&self) -> Vec<Arc<Producer>> {
        self.producers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn readers(&self) -> Vec<Arc<ReaderShared>> {
        self.readers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Calls `f` with the stream's readers under its list's lock, without copying the list (the metrics
    /// scrape: cloning 500 `Arc`s writes 500 reference counts the media path's cores then miss on).
    /// `f` must not take a hub lock.
    pub fn with_readers<R>(&self, f: impl FnOnce(&[Arc<ReaderShared>]) -> R) -> R {
        f(&self.readers.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Ends reader `id` (MediaMTX's `/v3/.../kick`): its subscriptions are dropped, so its queue ends
    /// and its session closes as when the source stops. False when it does not read this stream.
    pub fn kick_reader(&self, id: u64) -> bool {
        if !self.readers().iter().any(|r| r.id == id) {
            return false;
        }
        for p in self.producers() {
            for t in p.tracks() {
                t.unsubscribe(id);
            }
        }
        true
    }

    pub(crate) fn forget_reader(&self, id: u64) {
        let now_empty = {
            let mut readers = self.readers.lock().unwrap_or_else(|e| e.into_inner());
            readers.retain(|r| r.id != id);
            readers.is_empty()
        };
        if now_empty {
            if let Some(registry) = self.created_in.as_ref().and_then(Weak::upgrade) {
                registry.remove_if_unused(self);
            }
            paths::schedule_idle_removal(self);
        }
    }

    /// Stops audio playing into the backchannel, if any.
    pub fn stop_playback(&self) -> bool {
        let old = self.playback.lock().unwrap_or_else(|e| e.into_inner()).take();
        match old {
            Some(p) => {
                p.stop();
                true
            }
            None => false,
        }
    }

    /// The stream's backchannel (two-way audio): the first sendonly media of its sources, as (producer,
    /// media index, media). `name` is the stream's name for the error.
    pub async fn backchannel(&self, name: &str) -> Result<(Arc<Producer>, usize, Media), HubError> {
        let mut first_error = None;
        for p in self.producers() {
            match p.medias().await {
                Ok(medias) => {
                    if let Some(i) = medias.iter().position(|m| m.direction == Direction::SendOnly) {
                        return Ok((p.clone(), i, medias[i].clone()));
                    }
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        Err(HubError::Source(match first_error {
            Some(e) => format!("stream {name}: {e}"),
            None => format!("stream {name} has no backchannel (two-way audio) source"),
        }))
    }

    /// Whether the stream's pulled sources are exactly `urls`, in order.
    pub fn pulls_exactly(&self, urls: &[String]) -> bool {
        let pulled: Vec<Arc<Producer>> = self.producers().into_iter().filter(|p| !p.is_pushed()).collect();
        pulled.len() == urls.len() && pulled.iter().zip(urls).all(|(p, u)| p.pulls(u))
    }

    fn lock_orphans(&self) -> MutexGuard<'_, Vec<Arc<Producer>>> {
        self.orphans.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn add_producer(&self, p: Arc<Producer>) {
        self.producers.lock().unwrap_or_else(|e| e.into_inner()).push(p);
    }

    /// Takes a producer out of the list (its publisher left); the caller ends its tracks.
    fn detach_producer(&self, id: u64) {
        self.producers.lock().unwrap_or_else(|e| e.into_inner()).retain(|p| p.id != id);
    }
}

pub struct Hub {
    registry: Arc<Registry>,
    schemes: HashMap<String, SourceFactory>,
    pub settings: HubSettings,
    /// Bounds on publishers ([`Hub::publish`]); defaults unless a test sets smaller ones.
    pub publish_limits: PublishLimits,
    /// The config's path rules ([`paths`]); none for a go2rtc config.
    rules: RwLock<Arc<paths::PathRules>>,
}

impl Hub {
    pub fn new(schemes: Vec<(&str, SourceFactory)>, settings: HubSettings) -> Hub {
        Hub {
            registry: Arc::new(Registry {
                streams: RwLock::new(BTreeMap::new()),
                publishers: Mutex::default(),
                events: OnceLock::new(),
                published: tokio::sync::Notify::new(),
            }),
            schemes: schemes.into_iter().map(|(s, f)| (s.to_string(), f)).collect(),
            settings,
            publish_limits: PublishLimits::default(),
            rules: RwLock::default(),
        }
    }

    /// Sets who hears of the hub's path events ([`events`]; once, at start).
    pub fn set_events(&self, events: Arc<dyn events::HubEvents>) {
        let _ = self.registry.events.set(events);
    }

    fn events(&self) -> Option<&Arc<dyn events::HubEvents>> {
        self.registry.events.get()
    }

    /// Makes pulled producer `p` of stream `name` report when it goes online.
    pub(crate) fn report_ready(&self, name: &str, p: &Producer) {
        let Some(events) = self.events() else { return };
        let (events, name) = (Arc::downgrade(events), name.to_string());
        p.set_on_ready(Box::new(move |p| events.upgrade()?.ready(&name, p)));
    }

    pub fn schemes(&self) -> Vec<String> {
        let mut s: Vec<String> = self.schemes.keys().cloned().collect();
        s.sort();
        s
    }

    /// The scheme of a source URL (`rtsp` of `rtsp://...`, `exec` of `exec:...`).
    pub fn scheme_of(url: &str) -> &str {
        url.split_once(':').map(|(s, _)| s).unwrap_or("")
    }

    /// Builds a source for a URL with the factory of its scheme (used by sources that wrap another,
    /// such as `echo:`).
    pub fn make_source(&self, url: &str) -> Result<Arc<dyn Source>, HubError> {
        let scheme = Self::scheme_of(url);
        let factory = self.schemes.get(scheme).ok_or_else(|| HubError::UnknownScheme(scheme.to_string()))?;
        factory(url).map_err(HubError::Source)
    }

    fn make_producer(&self, url: &str) -> Result<Arc<Producer>, HubError> {
        let source = self.make_source(url)?;
        Ok(Producer::pulled(url, source, self.settings.linger, self.settings.gop_cache_bytes))
    }

    /// Checks that every URL has a known scheme and parses, without creating anything.
    pub fn validate_sources(&self, urls: &[String]) -> Result<(), HubError> {
        for url in urls {
            self.make_producer(url)?;
        }
        Ok(())
    }

    /// Creates or replaces a stream. Readers of a replaced stream's sources are ended.
    pub fn set_stream(&self, name: &str, urls: &[String]) -> Result<Arc<Stream>, HubError> {
        // The linger of the stream's path rule (`sourceOnDemandCloseAfter`), else `hub.linger`.
        let linger = self.linger_of(name);
        let producers = urls
            .iter()
            .map(|u| Ok(Producer::pulled(u, self.make_source(u)?, linger, self.settings.gop_cache_bytes)))
            .collect::<Result<Vec<_>, HubError>>()?;
        for p in &producers {
            self.report_ready(name, p);
        }
        // `alwaysAvailable` on a path with a source: the slate fills the source's tracks while it is down.
        if let Some(slate) = self.path_rules().options(name).always_available {
            for p in &producers {
                p.set_filler(Arc::new(offline::SlateFiller(slate.clone())));
            }
        }
        let stream = Arc::new(Stream::new(name, None));
        *stream.producers.lock().unwrap_or_else(|e| e.into_inner()) = producers;
        let old = self.registry.write_streams().insert(name.to_string(), stream.clone());
        // `alwaysAvailable` (a path without a source): the slate, or the replaced stream's, tracks and all.
        let slate = self.path_rules().options(name).always_available.filter(|_| urls.is_empty());
        let mut old_offline = old.as_ref().and_then(|o| o.take_offline());
        if let Some(old) = old {
            old.stop_playback();
            // Publishers stay attached to the stream across a source change.
            for p in old.producers() {
                if p.is_pushed() {
                    stream.add_producer(p);
                } else {
                    p.shutdown();
                }
            }
        }
        let gop = self.settings.gop_cache_bytes;
        match (slate, old_offline.take()) {
            (Some(slate), Some(state)) if state.slate() == &slate => stream.adopt_offline(state, gop),
            (slate, state) => {
                if let Some(state) = state {
                    state.end();
                }
                if let Some(slate) = slate {
                    stream.start_offline(slate, gop);
                }
            }
        }
        Ok(stream)
    }

    pub fn remove_stream(&self, name: &str) -> bool {
        let old = self.registry.write_streams().remove(name);
        match old {
            Some(s) => {
                s.stop_playback();
                if let Some(state) = s.take_offline() {
                    state.end();
                }
                for p in s.producers() {
                    p.shutdown();
                }
                true
            }
            None => false,
        }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Stream>> {
        self.registry.get(name)
    }

    /// A stream the server derives from another (the MJPEG transcoder of `cam` feeds `cam#mjpeg`):
    /// the one in the table under `name`, or a new one whose only producer `make` builds. It is
    /// listed like any stream, and its producer starts, lingers and retries like any source.
    pub fn derived_stream(&self, name: &str, make: impl FnOnce(&HubSettings) -> Arc<Producer>) -> Arc<Stream> {
        let mut streams = self.registry.write_streams();
        if let Some(s) = streams.get(name) {
            return s.clone();
        }
        let stream = Arc::new(Stream::new(name, None));
        stream.add_producer(make(&self.settings));
        streams.insert(name.to_string(), stream.clone());
        stream
    }

    /// A derived stream's producer (MJPEG or audio transcoder) stopped for want of viewers (or shutdown):
    /// removes the derived stream `name` too, unless a viewer came back meanwhile (its producer then runs
    /// again). Nothing when the hub is gone.
    pub fn remove_derived_if_unused(hub: &std::sync::Weak<Hub>, name: &str) {
        if let Some(hub) = hub.upgrade() {
            if let Some(derived) = hub.get(name) {
                hub.remove_if_unused(&derived);
            }
        }
    }

    /// Removes `stream` (a derived one whose producer stopped) if it is still the one under its name
    /// and nothing reads it; stops its producers. False when it stays.
    pub fn remove_if_unused(&self, stream: &Arc<Stream>) -> bool {
        {
            let mut streams = self.registry.write_streams();
            let current = streams.get(&stream.name).is_some_and(|s| Arc::ptr_eq(s, stream));
            let unused = stream.readers().is_empty() && stream.producers().iter().all(|p| p.readers() == 0);
            if !current || !unused {
                return false;
            }
            streams.remove(&stream.name);
        }
        for p in stream.producers() {
            p.shutdown();
        }
        true
    }

    pub fn streams(&self) -> Vec<Arc<Stream>> {
        self.registry.read_streams().values().cloned().collect()
    }

    pub fn new_reader_shared(&self, protocol: &str, remote_addr: String) -> Arc<ReaderShared> {
        Arc::new(ReaderShared::new(protocol, remote_addr))
    }

    /// Matches `filters` against the stream's sources, in config order, dialling each lazily, and
    /// subscribes the reader to every matched track. Each filter takes the first matching media
    /// (`all` filters take every one); a reader may take video from one source and audio from another.
    pub async fn subscribe(
        &self,
        name: &str,
        filters: &[MediaFilter],
        shared: Arc<ReaderShared>,
        replay: bool,
    ) -> Result<Reader, HubError> {
        self.subscribe_with_queue(name, filters, shared, replay, self.settings.reader_queue).await
    }

    /// [`Hub::subscribe`] with a queue of `queue` frames instead of `hub.reader_queue` (an MJPEG
    /// viewer keeps a few JPEGs, not hundreds).
    pub async fn subscribe_with_queue(
        &self,
        name: &str,
        filters: &[MediaFilter],
        shared: Arc<ReaderShared>,
        replay: bool,
        queue: usize,
    ) -> Result<Reader, HubError> {
        let mut stream = self.stream_for_reader(name)?;
        let options = self.path_options(name);
        paths::check_readers(&stream, options.max_readers)?;
        // MediaMTX's runOnDemand: the demand starts the publisher; wait for it.
        let mut guards = Vec::new();
        if let Some(events) = self.events() {
            let query = shared.query.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let has_publisher = stream.producers().iter().any(|p| p.is_pushed());
            if let Some((demand, timeout)) = events.demand(name, &query, has_publisher) {
                guards.push(demand);
                stream = self.wait_for_publisher(name, &stream, timeout).await?;
            }
        }
        let _idle_check = paths::IdleCheck(&stream);
        let producers = stream.producers();
        let start_timeout = options.start_timeout.unwrap_or(self.settings.start_timeout);
        let deadline = tokio::time::Instant::now() + start_timeout;
        let mut attempt = 0;
        let (picks, described) = loop {
            let m = match_filters(&producers, filters).await;
            if !m.picks.is_empty() {
                break (m.picks, m.described);
            }
            let offered: Vec<&Media> = m.described.iter().flatten().flatten().collect();
            let waiting_for_sources = !m.failed.is_empty();
            // A source that cannot be reached yet may still come up: retry it while the reader waits.
            let wait = producer::backoff(attempt);
            if waiting_for_sources && tokio::time::Instant::now() + wait < deadline {
                for &i in &m.failed {
                    producers[i].set_retrying();
                }
                tokio::time::sleep(wait).await;
                attempt += 1;
                continue;
            }
            if offered.is_empty() {
                if let Some(e) = m.first_error {
                    return Err(HubError::Source(e.to_string()));
                }
            }
            return Err(media::MatchError::new(filters, &offered).into());
        };

        let (tx, rx) = mpsc::channel(queue.max(1));
        let mut tracks = Vec::new();
        let mut used_producers: Vec<Arc<Producer>> = Vec::new();
        for &(pi, mi, ci) in &picks {
            let producer = &producers[pi];
            let Some(track) = producer.tracks().get(mi).cloned() else { continue };
            let codec = described[pi].as_ref().and_then(|m| m.get(mi)).and_then(|m| m.codecs.get(ci)).cloned();
            tracks.push(ReaderTrack { codec: codec.unwrap_or_else(|| track.codec.clone()), track });
            if !used_producers.iter().any(|p| p.id == producer.id) {
                used_producers.push(producer.clone());
            }
        }
        // Video first so audio replay can start where the video's keyframe starts.
        let mut since = None;
        let mut order: Vec<usize> = (0..tracks.len()).collect();
        order.sort_by_key(|&i| !tracks[i].track.needs_keyframe());
        for i in order {
            let first = tracks[i].track.subscribe(shared.clone(), tx.clone(), i, replay, since);
            if tracks[i].track.needs_keyframe() {
                since = match (since, first) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
            }
        }
        drop(tx);
        *shared.medias.lock().unwrap_or_else(|e| e.into_inner()) =
            tracks.iter().map(|t| format!("{}, sendonly, {}", t.track.kind, t.codec.short_name())).collect();
        for p in &used_producers {
            p.add_reader();
        }
        let mut reader = Reader {
            shared: shared.clone(),
            tracks,
            queue: rx,
            stream: stream.clone(),
            producers: used_producers,
            events: Vec::new(),
        };
        // Dropping the reader on a refusal unsubscribes it again.
        paths::admit_reader(&stream, &shared, options.max_readers)?;
        if shared.protocol() != "preload" {
            guards.extend(self.events().and_then(|e| e.reading(name, &shared)));
        }
        reader.events = guards;
        Ok(reader)
    }

    /// Waits until stream `name` has a publisher with tracks (an on-demand command started it), up to
    /// `timeout`; returns the stream as it is then. A stream made for the wait that got nothing goes.
    async fn wait_for_publisher(
        &self,
        name: &str,
        stream: &Arc<Stream>,
        timeout: Duration,
    ) -> Result<Arc<Stream>, HubError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.registry.published.notified();
            let current = self.get(name).unwrap_or_else(|| stream.clone());
            if current.producers().iter().any(|p| p.is_pushed() && !p.tracks().is_empty()) {
                return Ok(current);
            }
            // Woken by a publisher's start; the periodic check covers a stream replaced meanwhile.
            let check = (tokio::time::Instant::now() + Duration::from_millis(500)).min(deadline);
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(check) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                self.registry.remove_if_unused(&current);
                return Err(HubError::Source(format!(
                    "stream {name}: its runOnDemand command did not publish within {timeout:?}"
                )));
            }
        }
    }

    /// Two-way audio: plays the audio of source `src` (a URL) into the backchannel of stream `dst`
    /// (a camera's ONVIF speaker track, an exec source's stdin). An empty `src` stops playback.
    /// The audio codec must match what the backchannel accepts (e.g. `ffmpeg:file.mp3#audio=pcma`).
    pub async fn play(&self, dst: &str, src: &str) -> Result<(), HubError> {
        let stream = self.get(dst).ok_or_else(|| HubError::NotFound(dst.to_string()))?;
        stream.stop_playback();
        if src.is_empty() {
            return Ok(());
        }
        let (target, target_index, target_media) = stream.backchannel(dst).await?;
        let source = Producer::pulled_once(src, self.make_source(src)?, 0);
        let source_medias = source.medias().await.map_err(|e| HubError::Source(e.to_string()))?;
        let wanted: Vec<String> = target_media.codecs.iter().map(|c| c.name.clone()).collect();
        let filter = MediaFilter { kind: media::Kind::Audio, codecs: wanted, all: false };
        let Some(source_index) = source_medias.iter().position(|m| {
            m.direction != Direction::SendOnly
                && filter.pick_codec(m).is_some_and(|ci| {
                    let c = &m.codecs[ci];
                    target_media.codecs.iter().any(|t| t.name == c.name && t.clock_rate == c.clock_rate)
                })
        }) else {
            let offered: Vec<&Media> = source_medias.iter().collect();
            return Err(media::MatchError::new(&[filter], &offered).into());
        };
        let (Some(from), Some(to)) =
            (source.tracks().get(source_index).cloned(), target.tracks().get(target_index).cloned())
        else {
            return Err(HubError::Source("internal: tracks missing".into()));
        };
        let mut reader = TrackReader::new(from, "backchannel", self.settings.reader_queue, false);
        // Keep the camera connected while audio plays, and start the audio source.
        target.add_reader();
        source.add_reader();
        let weak_stream = Arc::downgrade(&stream);
        let source_id = source.id;
        let pump = tokio::spawn(async move {
            while let Some(frame) = reader.recv().await {
                to.push((*frame).clone());
            }
            // The audio ended: clear the playback unless a newer one replaced it.
            if let Some(stream) = weak_stream.upgrade() {
                let mut slot = stream.playback.lock().unwrap_or_else(|e| e.into_inner());
                if slot.as_ref().is_some_and(|p| p.source.id == source_id) {
                    if let Some(p) = slot.take() {
                        p.source.remove_reader();
                        p.target.remove_reader();
                    }
                }
            }
        });
        tracing::info!(stream = %dst, source = %crate::secrets::mask_url(src), "two-way audio: playing into backchannel");
        *stream.playback.lock().unwrap_or_else(|e| e.into_inner()) = Some(Playback { source, target, pump });
        Ok(())
    }

    /// Stops every source (server shutdown).
    pub fn shutdown(&self) {
        for s in self.streams() {
            s.stop_playback();
            for p in s.producers() {
                p.shutdown();
            }
        }
    }
}

/// The result of matching filters against a stream's sources.
struct Matched {
    /// (producer index, media index, codec index)
    picks: Vec<(usize, usize, usize)>,
    described: Vec<Option<Vec<Media>>>,
    /// Producers that could not be described (unreachable, failing).
    failed: Vec<usize>,
    first_error: Option<String>,
}

/// Walks the sources in order, describing each lazily, and gives each filter the first matching
/// media (`all` filters take every one). Never takes the same media twice or a backchannel.
async fn match_filters(producers: &[Arc<Producer>], filters: &[MediaFilter]) -> Matched {
    let mut m =
        Matched { picks: Vec::new(), described: vec![None; producers.len()], failed: Vec::new(), first_error: None };
    for filter in filters {
        'producers: for (pi, producer) in producers.iter().enumerate() {
            if m.described[pi].is_none() {
                if m.failed.contains(&pi) {
                    continue;
                }
                match producer.medias().await {
                    Ok(medias) => m.described[pi] = Some(medias),
                    Err(e) => {
                        m.failed.push(pi);
                        m.first_error.get_or_insert(e.to_string());
                        continue;
                    }
                }
            }
            let Some(medias) = &m.described[pi] else { continue };
            for (mi, media) in medias.iter().enumerate() {
                if media.direction == Direction::SendOnly || m.picks.iter().any(|p| p.0 == pi && p.1 == mi) {
                    continue;
                }
                if let Some(ci) = filter.pick_codec(media) {
                    m.picks.push((pi, mi, ci));
                    if !filter.all {
                        break 'producers;
                    }
                }
            }
        }
    }
    m
}
