//! Publishing into the hub: every pushed stream (RTSP ANNOUNCE, WHIP, HTTP ingest, and the coming RTMP,
//! SRT and UDP ingest) goes through [`Hub::publish`] (or [`Hub::reserve_publish`]), which owns:
//!
//! - **Which paths accept a publisher.** A configured stream always does; an unknown path only when the
//!   caller passes `allow_create` (from `rtsp.allow_any_publish`: the hub reads no server config). The
//!   refusal names the fix. With MediaMTX's path rules ([`super::paths`]) an unknown path also takes a
//!   publisher when a rule with `source: publisher` covers it (`all_others`, `~regex`); a name that no
//!   rule covers, and a path whose rule has a source, take none (MediaMTX's refusals).
//! - **More than one publisher on a path.** As go2rtc (and camrelay so far) does, a second publisher is
//!   added after the first: readers take each media from the first producer that has it, so the newer
//!   publisher serves only what the older one lacks, and takes over when the older one leaves. A path
//!   rule's `overridePublisher` changes that as MediaMTX does: `true` replaces the current publisher
//!   (its producer ends and [`PublishGuard::replaced`] tells its connection to close), `false` refuses
//!   the new one ([`PublishError::Busy`]). Bounded in any case: [`PublishLimits::per_stream`]
//!   publishers on one path, then the next is refused with a clear error, and [`PublishLimits::total`]
//!   on the server.
//! - **Removing what a publisher created.** A stream that a publisher created (an unknown path under
//!   `allow_create`) is removed once its last publisher has gone and no reader is left on it, so the
//!   stream list does not grow with every path ever published. Configured streams are never removed.
//!
//! - **A publisher that comes back.** When a publisher leaves (its connection ended, not kicked) while
//!   its tracks have readers, its producer is kept aside for [`HubSettings::publisher_grace`]
//!   (`hub.publisher_grace`, 10 s by default) instead of ending their tracks. A publisher that arrives
//!   on the path meanwhile with the same medias (kinds, codecs, clock rates) continues those tracks
//!   ([`Producer::hand_over_tracks`]): readers stay connected, skip to its first keyframe, and read on
//!   one timeline. The same happens when `overridePublisher` replaces a publisher. MediaMTX drops every
//!   reader here. With other medias, or when the grace ends, the readers end as before.
//!
//! Dropping the [`PublishGuard`] removes the producer (and ends its readers' tracks, or keeps them
//! for the grace period as above).
//!
//! Private paths are separate: a child process (an `exec:` or `ffmpeg:` source) publishes RTSP into our
//! own server on a one-time path, and the source that started it receives the publisher's producer.

use media::Media;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::producer::Producer;
#[cfg(doc)]
use super::HubSettings;
use super::{Hub, Registry, Stream};

/// Bounds on publishers. Each publisher holds a connection, a task and its tracks' GOP caches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PublishLimits {
    /// Most publishers on one path at once; the next one is refused ([`PublishError::StreamFull`]).
    pub per_stream: usize,
    /// Most publishers on the server at once ([`PublishError::ServerFull`]).
    pub total: usize,
}

impl Default for PublishLimits {
    fn default() -> Self {
        PublishLimits { per_stream: 8, total: 1024 }
    }
}

/// What a publisher brings: where it publishes, who it is, and the medias it sends.
#[derive(Clone, Debug)]
pub struct PublishRequest {
    /// The stream name (`cam` of `rtsp://host:8554/cam`).
    pub path: String,
    /// Shown in the API as the producer's protocol: `rtsp+tcp`, `webrtc`, `http+ts`...
    pub protocol: String,
    pub remote_addr: String,
    /// The producer's URL as the API shows it (masked by the API).
    pub url: String,
    /// The medias the publisher sends (recvonly from the hub's side), one track each.
    pub medias: Vec<Media>,
    /// Whether an unknown path may be created (`rtsp.allow_any_publish`, passed in by the server).
    pub allow_create: bool,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PublishError {
    #[error("stream not found: {0} (add it to the config with an empty source, or set rtsp.allow_any_publish)")]
    NotFound(String),
    #[error("stream {stream} already has {max} publishers, the most one stream takes")]
    StreamFull { stream: String, max: usize },
    #[error("the server already has {max} publishers, the most it takes")]
    ServerFull { max: usize },
    /// MediaMTX: no `paths:` entry covers the name.
    #[error("path {0} is not in the config (no paths entry matches it; add it, a ~regex or all_others with source: publisher)")]
    NoRule(String),
    /// MediaMTX: the path pulls its own source.
    #[error("path {0} has a source, so it takes no publisher (set source: publisher)")]
    HasSource(String),
    /// `overridePublisher: false` and a publisher is on the path.
    #[error("someone is already publishing to path {0} (overridePublisher is false)")]
    Busy(String),
}

/// Publishers per path (their producer id and the token that replaces them) and in total; changed only
/// under the stream table's write lock.
#[derive(Default)]
pub(super) struct PublisherCounts {
    by_path: HashMap<String, Vec<(u64, CancellationToken)>>,
    total: usize,
}

impl PublisherCounts {
    pub(super) fn on_path(&self, path: &str) -> usize {
        self.by_path.get(path).map_or(0, Vec::len)
    }

    /// Forgets publisher `id` of `path`; false when it was not counted (replaced already).
    fn remove(&mut self, path: &str, id: u64) -> bool {
        let Some(list) = self.by_path.get_mut(path) else { return false };
        let before = list.len();
        list.retain(|(p, _)| *p != id);
        let removed = list.len() < before;
        if list.is_empty() {
            self.by_path.remove(path);
        }
        if removed {
            self.total = self.total.saturating_sub(1);
        }
        removed
    }
}

/// A publisher's place in the hub. Dropping it removes its producer from the stream (ending the tracks
/// its readers read) and, when a publisher created the stream and nothing else uses it, the stream.
pub struct PublishGuard {
    registry: Arc<Registry>,
    stream: Arc<Stream>,
    producer: Arc<Producer>,
    started: bool,
    replaced: CancellationToken,
    /// [`HubSettings::publisher_grace`].
    grace: Duration,
    /// For the slate producer it hands an `alwaysAvailable` path's tracks back to.
    gop_cache_bytes: usize,
    /// The path's ready event while started ([`super::events`]); dropped with the guard.
    ready: Option<super::events::EventGuard>,
}

impl PublishGuard {
    /// The publisher's producer: push the frames it sends into its tracks.
    pub fn producer(&self) -> &Arc<Producer> {
        &self.producer
    }

    pub fn stream_name(&self) -> &str {
        &self.stream.name
    }

    /// Cancelled when a newer publisher replaced this one (`overridePublisher: true`) or the API kicked
    /// it ([`Hub::kick_publisher`]): its producer has
    /// ended, and the connection should close.
    pub fn replaced(&self) -> CancellationToken {
        self.replaced.clone()
    }

    /// Whether a publisher created the stream (it is removed when no longer used).
    pub fn created_stream(&self) -> bool {
        self.stream.created_by_publisher()
    }

    /// Adds the producer to the stream, so readers see it (once; [`Hub::publish`] does it at once).
    pub fn start(&mut self) {
        if self.started {
            return;
        }
        self.started = true;
        // The stream under this name now: a config change (`set_stream`) may have replaced it.
        let current = self.registry.get(&self.stream.name).unwrap_or_else(|| self.stream.clone());
        current.add_producer(self.producer.clone());
        self.ready = self.registry.events.get().and_then(|e| e.ready(&self.stream.name, &self.producer));
        self.registry.published.notify_waiters();
    }
}

impl Drop for PublishGuard {
    fn drop(&mut self) {
        let name = self.stream.name.clone();
        let kept = {
            let streams = self.registry.write_streams();
            // Publishers move to the replacing stream on a config change: look in both.
            let current = streams.get(&name).cloned();
            if let Some(current) = &current {
                current.detach_producer(self.producer.id);
            }
            self.stream.detach_producer(self.producer.id);
            // The tracks of an `alwaysAvailable` path go back to its slate, whatever ended the publisher.
            if let Some(current) = &current {
                if current.give_back_to_slate(&self.producer, self.gop_cache_bytes) {
                    self.registry.lock_publishers().remove(&name, self.producer.id);
                    tracing::info!(stream = %name, "publisher left: the offline slate plays again");
                    return;
                }
            }
            // Not counted any more when it was kicked or replaced: those end at once.
            let left_by_itself = self.registry.lock_publishers().remove(&name, self.producer.id);
            let read = self.producer.tracks().iter().any(|t| t.reader_count() > 0);
            let runtime = tokio::runtime::Handle::try_current().ok();
            match (current, runtime) {
                (Some(current), Some(rt)) if left_by_itself && read && self.started && !self.grace.is_zero() => {
                    current.lock_orphans().push(self.producer.clone());
                    Some((current, rt))
                }
                _ => None,
            }
        };
        let Some((stream, rt)) = kept else {
            self.producer.shutdown();
            if let Some(current) = self.registry.get(&name) {
                self.registry.remove_if_unused(&current);
            }
            return;
        };
        tracing::info!(stream = %name, grace = ?self.grace, "publisher left: its readers wait for it to come back");
        let (producer, registry, grace) = (self.producer.clone(), self.registry.clone(), self.grace);
        rt.spawn(async move {
            tokio::time::sleep(grace).await;
            let still_there = {
                let mut orphans = stream.lock_orphans();
                let before = orphans.len();
                orphans.retain(|p| p.id != producer.id);
                orphans.len() < before
            };
            if still_there {
                tracing::info!(stream = %stream.name, "no publisher came back: its readers end");
                producer.shutdown();
                registry.remove_if_unused(&stream);
            }
        });
    }
}

impl Hub {
    /// Whether `path` would take a publisher now (an early answer before reading a request's body).
    pub fn check_publish(&self, path: &str, allow_create: bool) -> Result<(), PublishError> {
        let streams = self.registry.read_streams();
        let counts = self.registry.lock_publishers();
        self.admit(path, allow_create, streams.get(path), &counts)
    }

    fn admit(
        &self,
        path: &str,
        allow_create: bool,
        existing: Option<&Arc<Stream>>,
        counts: &PublisherCounts,
    ) -> Result<(), PublishError> {
        let rules = self.path_rules();
        if rules.publish_needs_rule && !allow_create {
            match rules.find(path) {
                None if existing.is_none_or(|s| s.created_by_publisher()) => {
                    return Err(PublishError::NoRule(path.to_string()))
                }
                Some((rule, _)) if !rule.takes_publishers() => return Err(PublishError::HasSource(path.to_string())),
                _ => {}
            }
        } else if existing.is_none() && !allow_create {
            return Err(PublishError::NotFound(path.to_string()));
        }
        let override_publisher = rules.options(path).override_publisher;
        if counts.on_path(path) > 0 && override_publisher == Some(false) {
            return Err(PublishError::Busy(path.to_string()));
        }
        let limits = self.publish_limits;
        // Publishers about to be replaced do not count.
        if override_publisher != Some(true) && counts.on_path(path) >= limits.per_stream {
            return Err(PublishError::StreamFull { stream: path.to_string(), max: limits.per_stream });
        }
        if counts.total >= limits.total {
            return Err(PublishError::ServerFull { max: limits.total });
        }
        Ok(())
    }

    /// Takes a publisher into stream `request.path` (creating the stream when allowed) and makes its
    /// producer, without adding it to the stream yet: [`PublishGuard::start`] does (RTSP reserves the
    /// path on ANNOUNCE and starts on RECORD). The publisher counts against the limits from now on.
    pub fn reserve_publish(&self, request: PublishRequest) -> Result<PublishGuard, PublishError> {
        let replaced = CancellationToken::new();
        let (stream, producer, old, continued, stale, slate_taken) = {
            let mut streams = self.registry.write_streams();
            let mut counts = self.registry.lock_publishers();
            let existing = streams.get(&request.path).cloned();
            self.admit(&request.path, request.allow_create, existing.as_ref(), &counts)?;
            // overridePublisher: true takes the path from the publishers on it.
            let old = if self.path_rules().options(&request.path).override_publisher == Some(true) {
                let old = counts.by_path.remove(&request.path).unwrap_or_default();
                counts.total = counts.total.saturating_sub(old.len());
                old
            } else {
                Vec::new()
            };
            let stream = existing.unwrap_or_else(|| {
                let created = Arc::new(Stream::new(&request.path, Some(Arc::downgrade(&self.registry))));
                streams.insert(request.path.clone(), created.clone());
                tracing::info!(stream = %request.path, "stream created by a publisher");
                created
            });
            // A publisher coming back continues the tracks of one that left (or that it replaces) with
            // the same medias, so their readers stay.
            // Publishers that left with other medias will not be continued: their readers end now.
            let (orphan, stale) = {
                let mut orphans = stream.lock_orphans();
                let at = orphans.iter().position(|p| super::track::same_medias(&p.tracks(), &request.medias));
                let orphan = at.map(|i| orphans.remove(i));
                (orphan, std::mem::take(&mut *orphans))
            };
            // An `alwaysAvailable` path's slate hands its tracks over first.
            let from_slate = stream.take_from_slate(&request.medias);
            let slate_taken = from_slate.is_some();
            let continued = from_slate.or(orphan).or_else(|| {
                stream.producers().into_iter().find(|p| {
                    old.iter().any(|(id, _)| *id == p.id) && super::track::same_medias(&p.tracks(), &request.medias)
                })
            });
            let gop = self.settings.gop_cache_bytes;
            let (url, protocol, remote) = (&request.url, &request.protocol, &request.remote_addr);
            let producer = match &continued {
                Some(left) => {
                    // The tracks keep their codecs; the producer's medias are what this publisher sends.
                    let (tracks, _) = left.hand_over_tracks();
                    for (t, m) in tracks.iter().zip(&request.medias) {
                        t.set_parameter_sets(m.codecs.first());
                    }
                    Producer::pushed_with_tracks(url, protocol, remote, request.medias, tracks, gop)
                }
                None => Producer::pushed(url, protocol, remote, request.medias, gop),
            };
            counts.by_path.entry(request.path.clone()).or_default().push((producer.id, replaced.clone()));
            counts.total += 1;
            (stream, producer, old, continued.is_some() && !slate_taken, stale, slate_taken)
        };
        for left in stale {
            left.shutdown();
        }
        for (id, token) in old {
            if let Some(p) = stream.producers().into_iter().find(|p| p.id == id) {
                stream.detach_producer(id);
                p.shutdown();
            }
            token.cancel();
            tracing::info!(stream = %request.path, "publisher replaced by a new one (overridePublisher)");
        }
        let readers: usize = producer.tracks().iter().map(|t| t.reader_count()).sum();
        if continued {
            tracing::info!(stream = %request.path, readers, "publisher came back: its readers go on");
        } else if slate_taken {
            tracing::info!(stream = %request.path, readers, "publisher replaces the offline slate");
        }
        let grace = self.settings.publisher_grace;
        Ok(PublishGuard {
            registry: self.registry.clone(),
            stream,
            producer,
            started: false,
            replaced,
            grace,
            gop_cache_bytes: self.settings.gop_cache_bytes,
            ready: None,
        })
    }

    /// Tells publisher `id` of `path` to go (the API's kick), as a newer publisher replacing it would:
    /// its producer ends (its readers see the end at once, whatever the protocol) and its token is
    /// cancelled so its connection closes. False when no such publisher is on the path.
    pub fn kick_publisher(&self, path: &str, id: u64) -> bool {
        let token = {
            let mut counts = self.registry.lock_publishers();
            let Some(list) = counts.by_path.get_mut(path) else { return false };
            let Some(at) = list.iter().position(|(p, _)| *p == id) else { return false };
            let (_, token) = list.remove(at);
            if list.is_empty() {
                counts.by_path.remove(path);
            }
            counts.total = counts.total.saturating_sub(1);
            token
        };
        if let Some(stream) = self.get(path) {
            if let Some(p) = stream.producers().into_iter().find(|p| p.id == id) {
                stream.detach_producer(id);
                p.shutdown();
            }
        }
        token.cancel();
        true
    }

    /// [`Hub::reserve_publish`] and [`PublishGuard::start`]: the publisher's tracks are readable at once.
    pub fn publish(&self, request: PublishRequest) -> Result<PublishGuard, PublishError> {
        let mut guard = self.reserve_publish(request)?;
        guard.start();
        Ok(guard)
    }
}

// Private publish paths (see the module documentation).

/// Prefix of private paths; a normal stream cannot be named like this.
pub const PRIVATE_PREFIX: &str = "camrelay-private/";

#[derive(Default)]
pub struct PrivatePublishers {
    /// `rtsp://127.0.0.1:PORT`, set once the RTSP server is listening.
    base_url: OnceLock<String>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Arc<Producer>>>>,
}

/// A reserved path; dropping it (the source stopped) frees the path.
pub struct PendingPublish {
    pub url: String,
    path: String,
    pub producer: oneshot::Receiver<Arc<Producer>>,
    owner: Arc<PrivatePublishers>,
}

impl Drop for PendingPublish {
    fn drop(&mut self) {
        self.owner.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.path);
    }
}

impl PrivatePublishers {
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    /// The local RTSP server's URL (`rtsp://127.0.0.1:8554`), once it listens.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.get().map(String::as_str)
    }

    /// Reserves a fresh private path; the returned URL is where the child should publish.
    pub fn reserve(self: &Arc<Self>) -> Result<PendingPublish, String> {
        let base = self
            .base_url()
            .ok_or("the RTSP server is disabled (rtsp.listen is empty), so {output} has nowhere to go")?;
        let path = format!("{PRIVATE_PREFIX}{:016x}", rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), tx);
        Ok(PendingPublish { url: format!("{base}/{path}"), path, producer: rx, owner: self.clone() })
    }

    /// Claims a reserved path for an incoming publisher (ANNOUNCE). One publisher per reservation.
    pub fn take(&self, path: &str) -> Option<oneshot::Sender<Arc<Producer>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::HubSettings;
    use media::{Codec, Direction, Kind, MediaFilter};
    use std::time::Duration;

    fn hub() -> Hub {
        let settings = HubSettings {
            linger: Duration::ZERO,
            start_timeout: Duration::from_millis(100),
            gop_cache_bytes: 1 << 20,
            reader_queue: 16,
            publisher_grace: Duration::ZERO,
        };
        Hub::new(Vec::new(), settings)
    }

    fn request(path: &str, allow_create: bool) -> PublishRequest {
        PublishRequest {
            path: path.into(),
            protocol: "rtsp+tcp".into(),
            remote_addr: "192.0.2.1:5000".into(),
            url: format!("rtsp://192.0.2.1:5000/{path}"),
            medias: vec![Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90000, 0, 96)])],
            allow_create,
        }
    }

    fn names(hub: &Hub) -> Vec<String> {
        hub.streams().iter().map(|s| s.name.clone()).collect()
    }

    #[test]
    fn unknown_path_is_refused_without_allow_create_and_nothing_is_created() {
        let hub = hub();
        let err = hub.publish(request("nope", false)).err();
        assert_eq!(err, Some(PublishError::NotFound("nope".into())));
        assert!(err.unwrap().to_string().contains("rtsp.allow_any_publish"));
        assert_eq!(hub.check_publish("nope", false), Err(PublishError::NotFound("nope".into())));
        assert!(names(&hub).is_empty());
        assert_eq!(hub.check_publish("nope", true), Ok(()));
        assert!(names(&hub).is_empty(), "a check creates nothing");
    }

    #[test]
    fn a_created_stream_is_removed_when_its_last_publisher_leaves() {
        let hub = hub();
        let first = hub.publish(request("new", true)).unwrap();
        assert!(first.created_stream());
        let second = hub.publish(request("new", true)).unwrap();
        let stream = hub.get("new").unwrap();
        assert_eq!(stream.producers().len(), 2);
        drop(first);
        assert_eq!(names(&hub), ["new"], "one publisher is left");
        assert_eq!(stream.producers().len(), 1);
        drop(second);
        assert!(names(&hub).is_empty(), "the stream went with its last publisher");
        // Publishing again creates it afresh.
        let again = hub.publish(request("new", true)).unwrap();
        assert_eq!(names(&hub), ["new"]);
        drop(again);
        assert!(names(&hub).is_empty());
    }

    #[tokio::test]
    async fn configured_streams_are_never_removed() {
        let hub = hub();
        hub.set_stream("cam", &[]).unwrap();
        let guard = hub.publish(request("cam", false)).unwrap();
        assert!(!guard.created_stream());
        assert_eq!(hub.get("cam").unwrap().producers().len(), 1);
        let filters = [MediaFilter { kind: Kind::Video, codecs: Vec::new(), all: false }];
        let mut reader =
            hub.subscribe("cam", &filters, hub.new_reader_shared("rtsp", String::new()), false).await.unwrap();
        drop(guard);
        assert!(hub.get("cam").unwrap().producers().is_empty());
        // The publisher's tracks ended: its reader sees the end of the stream.
        let end = tokio::time::timeout(Duration::from_secs(5), reader.queue.recv()).await;
        assert!(matches!(end, Ok(None)), "the reader's queue ended");
        drop(reader);
        assert_eq!(names(&hub), ["cam"]);
    }

    fn with_grace(grace: Duration) -> Hub {
        let mut hub = hub();
        hub.settings.publisher_grace = grace;
        hub
    }

    fn keyframe(ts: u32) -> media::Frame {
        media::Frame {
            timestamp: ts,
            keyframe: true,
            payload: bytes::Bytes::from_static(&[0x65, 1, 2, 3]),
            rtp: Vec::new(),
        }
    }

    async fn video_reader(hub: &Hub, path: &str) -> crate::hub::Reader {
        let filters = [MediaFilter { kind: Kind::Video, codecs: Vec::new(), all: false }];
        hub.subscribe(path, &filters, hub.new_reader_shared("rtsp", String::new()), false).await.unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_publisher_that_comes_back_within_the_grace_keeps_the_readers() {
        let hub = with_grace(Duration::from_secs(10));
        let first = hub.publish(request("live", true)).unwrap();
        let tracks = first.producer().tracks();
        let mut reader = video_reader(&hub, "live").await;
        tracks[0].push(keyframe(1000));
        assert_eq!(reader.queue.recv().await.unwrap().frame.timestamp, 1000);
        drop(first);
        // Gone from the stream (not ready), but its tracks wait for a publisher to come back.
        assert!(hub.get("live").unwrap().producers().is_empty());
        assert_eq!(names(&hub), ["live"]);
        tokio::time::sleep(Duration::from_secs(9)).await;
        let second = hub.publish(request("live", true)).unwrap();
        let continued = second.producer().tracks();
        assert!(Arc::ptr_eq(&continued[0], &tracks[0]), "the new publisher continues the same track");
        // Its first frame goes to the same reader, on the old timeline (one step after the last frame).
        continued[0].push(keyframe(50));
        let next = tokio::time::timeout(Duration::from_secs(1), reader.queue.recv()).await.unwrap().unwrap();
        assert!(next.frame.timestamp > 1000, "timestamps continue: {}", next.frame.timestamp);
        // Long after the first grace would have ended, the reader still reads.
        tokio::time::sleep(Duration::from_secs(30)).await;
        continued[0].push(keyframe(3050));
        assert!(tokio::time::timeout(Duration::from_secs(1), reader.queue.recv()).await.unwrap().is_some());
        drop(second);
        drop(reader);
    }

    #[tokio::test(start_paused = true)]
    async fn readers_end_when_no_publisher_comes_back_or_another_kind_does() {
        let hub = with_grace(Duration::from_secs(10));
        let first = hub.publish(request("live", true)).unwrap();
        let mut reader = video_reader(&hub, "live").await;
        drop(first);
        let ended = tokio::time::timeout(Duration::from_secs(11), reader.queue.recv()).await;
        assert!(matches!(ended, Ok(None)), "the grace ended: the reader's queue ended");
        drop(reader);
        assert!(names(&hub).is_empty(), "and the publisher-created stream went");

        // Another codec: no continuation, the waiting reader ends at once.
        let first = hub.publish(request("live", true)).unwrap();
        let mut reader = video_reader(&hub, "live").await;
        drop(first);
        let mut other = request("live", true);
        other.medias = vec![Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H265", 90000, 0, 96)])];
        let second = hub.publish(other).unwrap();
        assert!(!Arc::ptr_eq(&second.producer().tracks()[0], &reader.tracks[0].track));
        let ended = tokio::time::timeout(Duration::from_millis(10), reader.queue.recv()).await;
        assert!(matches!(ended, Ok(None)), "ended at once: no publisher will continue its tracks");
        drop(second);

        // A kicked publisher's readers end at once, grace or not.
        let first = hub.publish(request("kicked", true)).unwrap();
        let mut reader = video_reader(&hub, "kicked").await;
        assert!(hub.kick_publisher("kicked", first.producer().id));
        drop(first);
        assert!(matches!(tokio::time::timeout(Duration::from_millis(10), reader.queue.recv()).await, Ok(None)));
    }

    #[tokio::test(start_paused = true)]
    async fn an_overriding_publisher_continues_the_tracks_it_replaces() {
        let hub = with_grace(Duration::from_secs(10));
        hub.set_path_rules(rules(true));
        let first = hub.publish(request("live_1", false)).unwrap();
        let tracks = first.producer().tracks();
        let mut reader = video_reader(&hub, "live_1").await;
        let second = hub.publish(request("live_1", false)).unwrap();
        assert!(first.replaced().is_cancelled(), "the old connection is told to go");
        assert!(Arc::ptr_eq(&second.producer().tracks()[0], &tracks[0]));
        drop(first);
        second.producer().tracks()[0].push(keyframe(9));
        assert!(tokio::time::timeout(Duration::from_secs(1), reader.queue.recv()).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_created_stream_with_a_reader_goes_when_the_reader_leaves() {
        let hub = hub();
        let guard = hub.publish(request("live", true)).unwrap();
        let filters = [MediaFilter { kind: Kind::Video, codecs: Vec::new(), all: false }];
        let reader =
            hub.subscribe("live", &filters, hub.new_reader_shared("rtsp", String::new()), false).await.unwrap();
        drop(guard);
        assert_eq!(names(&hub), ["live"], "a reader is still on it");
        drop(reader);
        assert!(names(&hub).is_empty());
    }

    #[test]
    fn a_reserved_publisher_is_counted_but_readable_only_once_started() {
        let mut hub = hub();
        hub.publish_limits = PublishLimits { per_stream: 1, total: 10 };
        let mut guard = hub.reserve_publish(request("cam", true)).unwrap();
        assert_eq!(names(&hub), ["cam"]);
        assert!(hub.get("cam").unwrap().producers().is_empty());
        let refused = hub.publish(request("cam", true)).err().unwrap();
        assert_eq!(refused, PublishError::StreamFull { stream: "cam".into(), max: 1 });
        assert_eq!(refused.to_string(), "stream cam already has 1 publishers, the most one stream takes");
        guard.start();
        guard.start();
        assert_eq!(hub.get("cam").unwrap().producers().len(), 1);
        drop(guard);
        assert!(names(&hub).is_empty());
        // The slot is free again.
        drop(hub.publish(request("cam", true)).unwrap());
    }

    #[test]
    fn publishers_are_bounded_per_stream_and_in_total() {
        let mut hub = hub();
        hub.publish_limits = PublishLimits { per_stream: 2, total: 3 };
        let a1 = hub.publish(request("a", true)).unwrap();
        let a2 = hub.publish(request("a", true)).unwrap();
        assert!(matches!(hub.publish(request("a", true)), Err(PublishError::StreamFull { max: 2, .. })));
        assert!(matches!(hub.check_publish("a", true), Err(PublishError::StreamFull { .. })));
        let b1 = hub.publish(request("b", true)).unwrap();
        assert_eq!(hub.publish(request("c", true)).err(), Some(PublishError::ServerFull { max: 3 }));
        assert_eq!(names(&hub), ["a", "b"], "a refused publisher creates nothing");
        drop(a1);
        let c1 = hub.publish(request("c", true)).unwrap();
        drop((a2, b1, c1));
        assert!(names(&hub).is_empty());
    }

    fn rules(override_publisher: bool) -> crate::hub::paths::PathRules {
        use crate::hub::paths::{PathOptions, PathRule, PathRules};
        let options = PathOptions { override_publisher: Some(override_publisher), ..Default::default() };
        PathRules {
            rules: vec![
                PathRule::new("~^live_", "", options.clone()).unwrap(),
                PathRule::new("~^cam(\\d+)$", "rtsp://10.0.0.$G1/", options).unwrap(),
            ],
            publish_needs_rule: true,
        }
    }

    #[test]
    fn mediamtx_rules_decide_which_paths_take_publishers() {
        let hub = hub();
        hub.set_path_rules(rules(true));
        assert_eq!(hub.check_publish("other", false), Err(PublishError::NoRule("other".into())));
        assert_eq!(hub.check_publish("cam1", false), Err(PublishError::HasSource("cam1".into())));
        let guard = hub.publish(request("live_1", false)).unwrap();
        assert!(guard.created_stream());
        drop(guard);
        assert!(names(&hub).is_empty());
    }

    #[test]
    fn override_publisher_replaces_or_refuses() {
        let hub = hub();
        hub.set_path_rules(rules(true));
        let first = hub.publish(request("live_1", false)).unwrap();
        let second = hub.publish(request("live_1", false)).unwrap();
        assert!(first.replaced().is_cancelled(), "the first publisher is told to go");
        assert!(!second.replaced().is_cancelled());
        let producers = hub.get("live_1").unwrap().producers();
        assert_eq!(producers.iter().map(|p| p.id).collect::<Vec<_>>(), [second.producer().id]);
        drop(first);
        assert_eq!(hub.get("live_1").unwrap().producers().len(), 1, "the replaced guard leaves the new one");
        drop(second);
        assert!(names(&hub).is_empty());

        hub.set_path_rules(rules(false));
        let first = hub.publish(request("live_2", false)).unwrap();
        assert_eq!(hub.publish(request("live_2", false)).err(), Some(PublishError::Busy("live_2".into())));
        assert!(!first.replaced().is_cancelled());
    }

    #[test]
    fn a_kicked_publisher_is_told_to_go_and_frees_its_place() {
        let mut hub = hub();
        hub.publish_limits = PublishLimits { per_stream: 1, total: 1 };
        let guard = hub.publish(request("cam", true)).unwrap();
        let id = guard.producer().id;
        assert!(!hub.kick_publisher("cam", id + 1), "an unknown id kicks nobody");
        assert!(!hub.kick_publisher("other", id));
        assert!(hub.kick_publisher("cam", id));
        assert!(guard.replaced().is_cancelled(), "its connection is told to close");
        assert!(hub.get("cam").unwrap().producers().is_empty(), "its readers see the end at once");
        assert!(!hub.kick_publisher("cam", id), "kicked once");
        // Its place is free before its connection has gone.
        let next = hub.publish(request("cam", true)).unwrap();
        drop(guard);
        assert_eq!(hub.get("cam").unwrap().producers().len(), 1, "the kicked guard leaves the new one");
        drop(next);
        assert!(names(&hub).is_empty());
    }

    #[test]
    fn a_publisher_follows_its_stream_through_a_config_change() {
        let hub = hub();
        let guard = hub.publish(request("cam", true)).unwrap();
        // The API sets sources on the stream the publisher created: it becomes a configured stream.
        hub.set_stream("cam", &[]).unwrap();
        let stream = hub.get("cam").unwrap();
        assert!(!stream.created_by_publisher());
        assert_eq!(stream.producers().len(), 1, "publishers stay attached across a source change");
        drop(guard);
        assert!(stream.producers().is_empty(), "the producer left the replacing stream too");
        assert_eq!(names(&hub), ["cam"], "configured now: kept");
    }
}
