//! A producer feeds a stream: a pulled source (dialled on demand, retried, stopped after a linger) or
//! a pushed one (a publisher connected to us).

use media::Media;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

use super::track::Track;
use crate::secrets::mask_url;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A failure of a source, already masked and with the step that failed.
pub type SourceError = String;

/// A media source the hub can dial (DESCRIBE) and run (PLAY) on demand.
pub trait Source: Send + Sync + 'static {
    /// Connects if needed and returns the medias the source offers.
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>>;
    /// Streams into `tracks` (one per media of `describe`, same order) until `stop` or a failure.
    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>>;
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProducerState {
    Idle,
    Connecting,
    Online,
    Retrying,
}

impl ProducerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ProducerState::Idle => "idle",
            ProducerState::Connecting => "connecting",
            ProducerState::Online => "online",
            ProducerState::Retrying => "retrying",
        }
    }
}

static NEXT_PRODUCER_ID: AtomicU64 = AtomicU64::new(1);

pub enum ProducerKind {
    Pulled(Arc<dyn Source>),
    /// A publisher connected to us; `protocol` like `rtsp+tcp`.
    Pushed {
        protocol: String,
        remote_addr: String,
    },
}

pub struct Producer {
    pub id: u64,
    /// The configured URL. Secret: show [`Producer::masked_url`] instead.
    url: String,
    pub kind: ProducerKind,
    state: Mutex<ProducerInner>,
    linger: Duration,
    gop_cache_bytes: usize,
    /// False for one-shot sources (a file played into a backchannel): when the run ends, it ends.
    retry: bool,
}

struct ProducerInner {
    medias: Option<Vec<Media>>,
    tracks: Vec<Arc<Track>>,
    state: ProducerState,
    last_error: Option<String>,
    readers: usize,
    running: Option<CancellationToken>,
    /// Bumped on every reader change so a pending linger stop knows it is stale.
    generation: u64,
    started: Option<SystemTime>,
}

/// Retry delays for a failing source: 0.5 s, 1 s, then every 2 s, so waiting readers resume within
/// 2 s of the source coming back. Retries only happen while readers want the source.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(2)).min(2000))
}

impl Producer {
    pub fn pulled(url: &str, source: Arc<dyn Source>, linger: Duration, gop_cache_bytes: usize) -> Arc<Producer> {
        Arc::new(Producer {
            id: NEXT_PRODUCER_ID.fetch_add(1, Ordering::Relaxed),
            url: url.to_string(),
            kind: ProducerKind::Pulled(source),
            state: Mutex::new(ProducerInner::new(None)),
            linger,
            gop_cache_bytes,
            retry: true,
        })
    }

    /// A pulled source that runs once: when it ends, its tracks close (used to play a file or a
    /// live source into a stream's backchannel).
    pub fn pulled_once(url: &str, source: Arc<dyn Source>, gop_cache_bytes: usize) -> Arc<Producer> {
        Arc::new(Producer {
            id: NEXT_PRODUCER_ID.fetch_add(1, Ordering::Relaxed),
            url: url.to_string(),
            kind: ProducerKind::Pulled(source),
            state: Mutex::new(ProducerInner::new(None)),
            linger: Duration::ZERO,
            gop_cache_bytes,
            retry: false,
        })
    }

    /// A publisher whose medias are known up front. Its tracks are created at once.
    pub fn pushed(
        url: &str,
        protocol: &str,
        remote_addr: &str,
        medias: Vec<Media>,
        gop_cache_bytes: usize,
    ) -> Arc<Producer> {
        let mut inner = ProducerInner::new(None);
        inner.tracks = make_tracks(&medias, gop_cache_bytes);
        inner.medias = Some(medias);
        inner.state = ProducerState::Online;
        inner.started = Some(SystemTime::now());
        Arc::new(Producer {
            id: NEXT_PRODUCER_ID.fetch_add(1, Ordering::Relaxed),
            url: url.to_string(),
            kind: ProducerKind::Pushed { protocol: protocol.to_string(), remote_addr: remote_addr.to_string() },
            state: Mutex::new(inner),
            linger: Duration::ZERO,
            gop_cache_bytes,
            retry: false,
        })
    }

    fn lock(&self) -> MutexGuard<'_, ProducerInner> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn masked_url(&self) -> String {
        mask_url(&self.url)
    }

    /// The configured URL, if `masked` is its masked form (an edit that kept a hidden password).
    pub fn url_if_masked_as(&self, masked: &str) -> Option<String> {
        (mask_url(&self.url) == masked).then(|| self.url.clone())
    }

    pub fn state(&self) -> ProducerState {
        self.lock().state
    }

    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.clone()
    }

    pub fn tracks(&self) -> Vec<Arc<Track>> {
        self.lock().tracks.clone()
    }

    pub fn known_medias(&self) -> Option<Vec<Media>> {
        self.lock().medias.clone()
    }

    pub fn readers(&self) -> usize {
        self.lock().readers
    }

    /// Whether this is the pulled source of `url` (compared unmasked).
    pub fn pulls(&self, url: &str) -> bool {
        !self.is_pushed() && self.url == url
    }

    pub fn is_pushed(&self) -> bool {
        matches!(self.kind, ProducerKind::Pushed { .. })
    }

    /// Marks the source as failing while a reader waits for it to come up.
    pub fn set_retrying(&self) {
        let mut inner = self.lock();
        if inner.running.is_none() {
            inner.state = ProducerState::Retrying;
        }
    }

    /// The source's medias, dialling it (DESCRIBE only) the first time.
    pub async fn medias(&self) -> Result<Vec<Media>, SourceError> {
        if let Some(m) = self.lock().medias.clone() {
            return Ok(m);
        }
        let ProducerKind::Pulled(source) = &self.kind else {
            return Ok(Vec::new());
        };
        self.lock().state = ProducerState::Connecting;
        match source.describe().await {
            Ok(medias) => {
                let mut inner = self.lock();
                // Another reader may have described it meanwhile: keep the first tracks.
                if inner.medias.is_none() {
                    inner.tracks = make_tracks(&medias, self.gop_cache_bytes);
                    inner.medias = Some(medias);
                }
                inner.last_error = None;
                if inner.running.is_none() {
                    inner.state = ProducerState::Idle;
                }
                Ok(inner.medias.clone().unwrap_or_default())
            }
            Err(e) => {
                let mut inner = self.lock();
                inner.state = ProducerState::Idle;
                inner.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// A reader took one of this producer's tracks: start the source if it is not running.
    pub fn add_reader(self: &Arc<Self>) {
        let mut inner = self.lock();
        inner.readers += 1;
        inner.generation += 1;
        let ProducerKind::Pulled(source) = &self.kind else { return };
        if inner.running.is_some() {
            return;
        }
        let stop = CancellationToken::new();
        inner.running = Some(stop.clone());
        inner.state = ProducerState::Connecting;
        let this = self.clone();
        let source = source.clone();
        tokio::spawn(async move { this.run_with_retry(source, stop).await });
    }

    async fn run_with_retry(self: Arc<Self>, source: Arc<dyn Source>, stop: CancellationToken) {
        let mut attempt = 0u32;
        while !stop.is_cancelled() {
            let tracks = self.tracks();
            if !tracks.is_empty() {
                // Every (re)start: readers skip to the new session's first keyframe, the GOP cache
                // drops frames of the last session, and timestamps continue the old timeline.
                for t in &tracks {
                    t.mark_discontinuity();
                }
                {
                    let mut inner = self.lock();
                    inner.state = ProducerState::Online;
                    inner.started = Some(SystemTime::now());
                }
                let result = source.clone().run(tracks.clone(), stop.clone()).await;
                if stop.is_cancelled() {
                    break;
                }
                if !self.retry {
                    if let Err(e) = result {
                        self.lock().last_error = Some(e);
                    }
                    for t in &tracks {
                        t.close();
                    }
                    break;
                }
                let err = result.err().unwrap_or_else(|| "source ended".to_string());
                tracing::warn!(source = %self.masked_url(), error = %err, "source stopped, retrying");
                self.lock().last_error = Some(err);
                if self.started().is_some_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(10)) {
                    // It ran for a while: a fresh failure, start the backoff over.
                    attempt = 0;
                }
            } else if let Err(e) = self.medias().await {
                tracing::warn!(source = %self.masked_url(), error = %e, "source unreachable, retrying");
            } else {
                attempt = 0;
                continue;
            }
            self.lock().state = ProducerState::Retrying;
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tokio::time::sleep(backoff(attempt)) => {}
            }
            attempt += 1;
        }
        let mut inner = self.lock();
        inner.state = ProducerState::Idle;
        inner.started = None;
    }

    /// A reader left. When none remain, stop the source after the linger (unless one comes back).
    pub fn remove_reader(self: &Arc<Self>) {
        let mut inner = self.lock();
        inner.readers = inner.readers.saturating_sub(1);
        inner.generation += 1;
        if inner.readers > 0 || inner.running.is_none() {
            return;
        }
        let generation = inner.generation;
        let this = self.clone();
        let linger = self.linger;
        drop(inner);
        let stop_if_idle = move || {
            let mut inner = this.lock();
            if inner.generation == generation && inner.readers == 0 {
                if let Some(stop) = inner.running.take() {
                    tracing::debug!(source = %this.masked_url(), "no readers: stopping source");
                    stop.cancel();
                }
            }
        };
        if linger.is_zero() {
            stop_if_idle();
        } else if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(linger).await;
                stop_if_idle();
            });
        }
    }

    /// Stops the source now (stream deleted or changed, server shutdown) and ends its readers.
    pub fn shutdown(&self) {
        let mut inner = self.lock();
        if let Some(stop) = inner.running.take() {
            stop.cancel();
        }
        for t in &inner.tracks {
            t.close();
        }
    }

    pub fn started(&self) -> Option<SystemTime> {
        self.lock().started
    }
}

impl ProducerInner {
    fn new(medias: Option<Vec<Media>>) -> ProducerInner {
        ProducerInner {
            medias,
            tracks: Vec::new(),
            state: ProducerState::Idle,
            last_error: None,
            readers: 0,
            running: None,
            generation: 0,
            started: None,
        }
    }
}

fn make_tracks(medias: &[Media], gop_cache_bytes: usize) -> Vec<Arc<Track>> {
    medias
        .iter()
        .map(|m| {
            let codec = m.codecs.first().cloned().unwrap_or_else(|| media::Codec::new("UNKNOWN", 90000, 0, 96));
            Arc::new(Track::new(m.kind, codec, gop_cache_bytes))
        })
        .collect()
}
