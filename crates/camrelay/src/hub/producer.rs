//! A producer feeds a stream: a pulled source (dialled on demand, retried, stopped after a linger) or
//! a pushed one (a publisher connected to us).
//!
//! The producer owns a pulled source's lifecycle: describe → park → run. [`Source::open`] describes
//! and may hand back the open connection (a [`Parked`] RTSP session after DESCRIBE, an HTTP body, a
//! WebRTC peer, an `exec:` child); the producer keeps it for the first run and closes it (TEARDOWN
//! where the protocol has one) when no run claims it within [`PARK_EXPIRY`]. Every restart describes
//! again, so a camera whose medias changed gets new tracks under the readers that still match
//! ([`SourceErrorKind::MediasChanged`]). Failures are typed: an authentication failure holds further
//! dials back for [`auth_backoff`] (cameras lock accounts after repeated bad logins), whoever asks.

use media::Media;
use std::any::Any;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::track::Track;
use crate::secrets::mask_url;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a source failed, as the retry policy and the API see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SourceErrorKind {
    /// The camera refused our credentials (RTSP/HTTP 401 or 403). Retried rarely: see [`auth_backoff`].
    Auth,
    /// Unreachable, refused, reset, timed out, closed.
    Network,
    /// The peer answered with something we cannot use (bad replies, SDP, bytes).
    Protocol,
    /// The source came back with other medias than its tracks: the producer describes it again.
    MediasChanged,
    /// Anything else (a program that exited, a bad configuration, a status like 404).
    Other,
}

impl SourceErrorKind {
    /// The API's spelling (`last_error_kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceErrorKind::Auth => "auth",
            SourceErrorKind::Network => "network",
            SourceErrorKind::Protocol => "protocol",
            SourceErrorKind::MediasChanged => "medias_changed",
            SourceErrorKind::Other => "other",
        }
    }
}

impl fmt::Display for SourceErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure of a source: its kind and a message already masked, naming the source and the step.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SourceError {
    kind: SourceErrorKind,
    message: String,
}

impl SourceError {
    pub fn new(kind: SourceErrorKind, message: impl Into<String>) -> SourceError {
        SourceError { kind, message: message.into() }
    }

    pub fn auth(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceErrorKind::Auth, message)
    }

    pub fn network(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceErrorKind::Network, message)
    }

    pub fn protocol(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceErrorKind::Protocol, message)
    }

    pub fn medias_changed(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceErrorKind::MediasChanged, message)
    }

    /// For a source that reconnected: `Ok` when it offers what its `tracks` carry
    /// ([`super::track::same_medias`]), else the `MediasChanged` error naming what it offers now (the
    /// producer then describes it again).
    pub fn unless_same_medias(tracks: &[Arc<Track>], medias: &[Media]) -> Result<(), SourceError> {
        if super::track::same_medias(tracks, medias) {
            return Ok(());
        }
        let now: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
        Err(SourceError::medias_changed(format!(
            "the source now offers [{}], other medias than before",
            now.join("; ")
        )))
    }

    pub fn other(message: impl Into<String>) -> SourceError {
        SourceError::new(SourceErrorKind::Other, message)
    }

    pub fn kind(&self) -> SourceErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The same failure with its message rewritten (a prefix added, a URL masked).
    pub fn map_message(self, f: impl FnOnce(String) -> String) -> SourceError {
        SourceError { kind: self.kind, message: f(self.message) }
    }

    /// Whether the message contains `needle` (tests and callers that look for a detail).
    pub fn contains(&self, needle: &str) -> bool {
        self.message.contains(needle)
    }
}

/// A plain message is an [`SourceErrorKind::Other`] failure.
impl From<String> for SourceError {
    fn from(message: String) -> SourceError {
        SourceError::other(message)
    }
}

impl From<&str> for SourceError {
    fn from(message: &str) -> SourceError {
        SourceError::other(message)
    }
}

impl From<SourceError> for String {
    fn from(e: SourceError) -> String {
        e.message
    }
}

/// An authentication failure of an HTTP-like status: 401 Unauthorized, 403 Forbidden.
pub fn status_kind(status: u16) -> SourceErrorKind {
    match status {
        401 | 403 => SourceErrorKind::Auth,
        _ => SourceErrorKind::Other,
    }
}

/// The connection a source's [`Source::open`] left open for its next run, with how to close it.
pub struct Parked {
    conn: Box<dyn Any + Send>,
    close: Box<dyn FnOnce(Box<dyn Any + Send>) -> BoxFuture<'static, ()> + Send>,
}

impl Parked {
    /// `conn`, closed by `close` if no run takes it (TEARDOWN, DELETE, killing a child...).
    pub fn new<T: Send + 'static>(conn: T, close: impl FnOnce(T) -> BoxFuture<'static, ()> + Send + 'static) -> Parked {
        Parked {
            conn: Box::new(conn),
            close: Box::new(move |any: Box<dyn Any + Send>| match any.downcast::<T>() {
                Ok(conn) => close(*conn),
                Err(_) => Box::pin(async {}),
            }),
        }
    }

    /// The connection, if it is a `T` (a source takes back what it parked); anything else is closed.
    pub fn take<T: Send + 'static>(self) -> Option<T> {
        if self.conn.is::<T>() {
            self.conn.downcast::<T>().ok().map(|b| *b)
        } else {
            tokio::spawn(self.close());
            None
        }
    }

    /// Closes the connection.
    pub fn close(self) -> BoxFuture<'static, ()> {
        (self.close)(self.conn)
    }
}

/// What [`Source::open`] gives: the medias, and the connection to run them on when the source keeps one.
pub struct Opened {
    pub medias: Vec<Media>,
    pub parked: Option<Parked>,
}

/// A media source the hub can dial (DESCRIBE) and run (PLAY) on demand.
///
/// A source without a connection to keep implements `describe` and `run`. One whose describing opens
/// a connection (or starts a program) worth reusing also implements `open` and `run_opened`, and
/// leaves the keeping and the expiry to the producer.
pub trait Source: Send + Sync + 'static {
    /// Connects if needed and returns the medias the source offers.
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>>;
    /// Streams into `tracks` (one per media of `describe`, same order) until `stop` or a failure.
    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>>;

    /// Describes and hands over the connection that did it, for [`Source::run_opened`].
    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move { Ok(Opened { medias: self.describe().await?, parked: None }) })
    }

    /// [`Source::run`] on the connection `open` parked (`None`: expired or none, dial anew).
    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        if let Some(p) = parked {
            tokio::spawn(p.close());
        }
        self.run(tracks, stop)
    }

    /// The current connection's remote address and bytes received, for `/api/streams` (sources that
    /// keep one connection report it; others have nothing to say).
    fn connection_info(&self) -> Option<ConnectionInfo> {
        None
    }

    /// Packet counts of a source that receives datagrams (UDP MPEG-TS/RTP), for `/api/streams`
    /// (`receive`) and `/v3/paths`.
    fn receive_stats(&self) -> Option<ReceiveStats> {
        None
    }
}

/// What a datagram source counted since it was made.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReceiveStats {
    /// Datagrams (MPEG-TS) or RTP packets taken.
    pub packets: u64,
    /// RTP packets never received (sequence gaps), or MPEG-TS packets missing by continuity counter.
    pub packets_lost: u64,
    /// RTP packets that came after a later one (put back in order by the reorder buffer).
    pub packets_reordered: u64,
    /// Datagrams from senders not taken (`?source=`, or another sender while one owns the source).
    pub packets_rejected: u64,
    /// Datagrams that are not RTP or of no payload type of the SDP.
    pub packets_in_error: u64,
}

/// What a pulled source tells the API about its connection.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// The server's address while connected.
    pub remote_addr: Option<String>,
    /// Bytes received over all connections of this source.
    pub bytes_recv: u64,
}

/// The connection a source parked, or a new one from `connect`; `None` when `stop` fires first.
pub async fn parked_or_connect<C>(
    parked: Option<C>,
    stop: &CancellationToken,
    connect: impl std::future::Future<Output = Result<C, SourceError>>,
) -> Result<Option<C>, SourceError> {
    match parked {
        Some(c) => Ok(Some(c)),
        None => tokio::select! {
            _ = stop.cancelled() => Ok(None),
            c = connect => c.map(Some),
        },
    }
}

/// `describe` of a source whose `open` parks a connection: opens, closes what it parked (nobody will
/// run it), and gives the medias.
pub async fn describe_by_opening<S: Source + ?Sized>(source: &S) -> Result<Vec<Media>, SourceError> {
    let opened = source.open().await?;
    if let Some(p) = opened.parked {
        p.close().await;
    }
    Ok(opened.medias)
}

/// A connection described and not run within this time is closed (cameras drop idle connections, and
/// an unused session holds a camera's stream slot).
pub const PARK_EXPIRY: Duration = Duration::from_secs(10);

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
static NEXT_PARK_ID: AtomicU64 = AtomicU64::new(1);

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
    /// Told when a pulled source goes online; its guard is held while the run lasts
    /// ([`super::events`], set by the hub).
    on_ready: OnceLock<ReadyHook>,
    /// What plays into the tracks while a pulled source is down (an `alwaysAvailable` slate).
    filler: OnceLock<Arc<dyn Filler>>,
    /// RTP loss and jitter and RTCP counts of a publisher that sends RTP (RTSP).
    pub rtp: super::RtpCounters,
    /// A publisher's user name and URL query (MediaMTX's `user` and `query` in the session lists;
    /// never a password), set by its server after the auth module accepted it.
    pub identity: Mutex<Identity>,
}

/// Who a publisher is, as the session lists show it.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    pub user: String,
    pub query: String,
}

/// What fills a pulled source's tracks while the source is down (MediaMTX's `alwaysAvailable` on a
/// path with a `source:`), so its readers stay and see something; the source's next run takes the
/// tracks back at its first keyframe (the tracks are marked discontinuous both ways).
pub trait Filler: Send + Sync {
    /// The medias readers get when the source could not be described at all (its tracks are made
    /// from them, and the source must later offer the same codecs); `None`: readers wait for it.
    fn medias(&self) -> Option<Vec<Media>>;
    /// Starts playing into `tracks`; it plays until `stop`. False when it cannot fill these tracks
    /// (other codecs).
    fn start(&self, tracks: &[Arc<Track>], stop: CancellationToken) -> bool;
}

/// What a pulled producer calls when it goes online ([`Producer::set_on_ready`]).
pub type ReadyHook = Box<dyn Fn(&Producer) -> Option<super::events::EventGuard> + Send + Sync>;

struct ProducerInner {
    medias: Option<Vec<Media>>,
    tracks: Vec<Arc<Track>>,
    state: ProducerState,
    last_error: Option<SourceError>,
    readers: usize,
    running: Option<CancellationToken>,
    /// Bumped on every reader change so a pending linger stop knows it is stale.
    generation: u64,
    started: Option<SystemTime>,
    /// The connection the last describe left open, with its id (for its expiry timer).
    parked: Option<(u64, Parked)>,
    /// When the last describe succeeded.
    described_at: Option<Instant>,
    /// Authentication failures in a row; no dial before `auth_hold_until`.
    auth_streak: u32,
    auth_hold_until: Option<Instant>,
    /// Times the source came online (the first run and every reconnect).
    runs: u64,
    /// Stops the [`Filler`] while it plays.
    filling: Option<CancellationToken>,
    /// What the source's last describe said (the tracks may have been made from a filler's medias).
    described: Option<Vec<Media>>,
}

/// Retry delays for a failing source: 0.5 s, 1 s, then every 2 s, so waiting readers resume within
/// 2 s of the source coming back. Retries only happen while readers want the source.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis((500u64 << attempt.min(2)).min(2000))
}

/// After the `streak`-th authentication failure in a row (1, 2, ...), no dial for 30 s, 60 s, 2 min,
/// 4 min, then every 5 min: cameras lock an account after a few bad logins.
pub fn auth_backoff(streak: u32) -> Duration {
    let secs = 30u64 << streak.saturating_sub(1).min(4);
    Duration::from_secs(secs.min(300))
}

/// A run that lasted this long was a success: the next failure starts the backoff over.
const HEALTHY_RUN: Duration = Duration::from_secs(10);

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
            on_ready: OnceLock::new(),
            filler: OnceLock::new(),
            rtp: super::RtpCounters::default(),
            identity: Mutex::new(Identity::default()),
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
            on_ready: OnceLock::new(),
            filler: OnceLock::new(),
            rtp: super::RtpCounters::default(),
            identity: Mutex::new(Identity::default()),
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
        let tracks = make_tracks(&medias, gop_cache_bytes);
        Producer::pushed_with_tracks(url, protocol, remote_addr, medias, tracks, gop_cache_bytes)
    }

    /// A pushed producer over existing tracks: a publisher that comes back continues the tracks its
    /// predecessor left ([`Producer::hand_over_tracks`]), so their readers stay.
    pub fn pushed_with_tracks(
        url: &str,
        protocol: &str,
        remote_addr: &str,
        medias: Vec<Media>,
        tracks: Vec<Arc<Track>>,
        gop_cache_bytes: usize,
    ) -> Arc<Producer> {
        let mut inner = ProducerInner::new(None);
        inner.tracks = tracks;
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
            on_ready: OnceLock::new(),
            filler: OnceLock::new(),
            rtp: super::RtpCounters::default(),
            identity: Mutex::new(Identity::default()),
        })
    }

    /// Records who this publisher is: the user name it authenticated as and the query of its URL.
    pub fn set_identity(&self, user: &str, query: &str) {
        *self.identity.lock().unwrap_or_else(|e| e.into_inner()) =
            Identity { user: user.to_string(), query: query.to_string() };
    }

    /// The user name and query [`Producer::set_identity`] recorded.
    pub fn identity(&self) -> Identity {
        self.identity.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Sets what is told when this (pulled) producer goes online (once; later calls are ignored).
    pub fn set_on_ready(&self, hook: ReadyHook) {
        let _ = self.on_ready.set(hook);
    }

    /// Sets what plays into this (pulled) producer's tracks while its source is down (once).
    pub fn set_filler(&self, filler: Arc<dyn Filler>) {
        let _ = self.filler.set(filler);
    }

    /// The source is down: the filler, if any, plays into the tracks (if it is not playing yet).
    fn start_filling(&self) {
        let Some(filler) = self.filler.get() else { return };
        let tracks = {
            let inner = self.lock();
            if inner.filling.is_some() || inner.tracks.is_empty() {
                return;
            }
            inner.tracks.clone()
        };
        for t in &tracks {
            t.mark_discontinuity();
            t.set_parameter_sets(None);
        }
        let stop = CancellationToken::new();
        if filler.start(&tracks, stop.clone()) {
            tracing::info!(source = %self.masked_url(), "source down: the offline slate plays");
            self.lock().filling = Some(stop);
        }
    }

    /// The source runs again (or stops for good): the filler stops.
    fn stop_filling(&self) {
        if let Some(stop) = self.lock().filling.take() {
            stop.cancel();
        }
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

    /// The last failure's message (masked), until the source describes or runs again.
    pub fn last_error(&self) -> Option<String> {
        self.lock().last_error.as_ref().map(|e| e.message().to_string())
    }

    /// The kind of [`Producer::last_error`].
    pub fn last_error_kind(&self) -> Option<SourceErrorKind> {
        self.lock().last_error.as_ref().map(|e| e.kind())
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

    /// How often the source came back online after its first run (a pulled source's reconnects).
    pub fn reconnects(&self) -> u64 {
        self.lock().runs.saturating_sub(1)
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

    /// The source's medias, dialling it (DESCRIBE only) the first time. The connection that described
    /// it is parked for the first run.
    pub async fn medias(self: &Arc<Self>) -> Result<Vec<Media>, SourceError> {
        if let Some(m) = self.lock().medias.clone() {
            return Ok(m);
        }
        let ProducerKind::Pulled(source) = &self.kind else {
            return Ok(Vec::new());
        };
        self.set_connecting();
        let opened = self.open(source).await;
        let mut inner = self.lock();
        if inner.running.is_none() {
            inner.state = ProducerState::Idle;
        }
        let opened = match opened {
            Ok(o) => o,
            Err(e) => {
                // Down from the start, but always available: the filler's medias, and its tracks.
                let Some(medias) = self.filler.get().and_then(|f| f.medias()) else { return Err(e) };
                if inner.medias.is_none() {
                    inner.tracks = make_tracks(&medias, self.gop_cache_bytes);
                    inner.medias = Some(medias);
                }
                return Ok(inner.medias.clone().unwrap_or_default());
            }
        };
        // Another reader may have described it meanwhile: keep the first tracks.
        if inner.medias.is_none() {
            inner.tracks = make_tracks(&opened.medias, self.gop_cache_bytes);
            inner.medias = Some(opened.medias.clone());
        }
        let same = inner.medias.as_ref() == Some(&opened.medias);
        let medias = inner.medias.clone().unwrap_or_default();
        if let Some(p) = opened.parked {
            if same && inner.parked.is_none() {
                drop(inner);
                self.park(p);
            } else {
                tokio::spawn(p.close());
            }
        }
        Ok(medias)
    }

    fn set_connecting(&self) {
        let mut inner = self.lock();
        if inner.running.is_none() || inner.state != ProducerState::Online {
            inner.state = ProducerState::Connecting;
        }
    }

    /// `source.open()`, unless an authentication failure holds dials back: then that failure again.
    /// Records the outcome (last error, the authentication streak).
    async fn open(&self, source: &Arc<dyn Source>) -> Result<Opened, SourceError> {
        if let Some(e) = self.auth_held() {
            return Err(e);
        }
        match source.open().await {
            Ok(opened) => {
                let mut inner = self.lock();
                inner.last_error = None;
                inner.auth_streak = 0;
                inner.auth_hold_until = None;
                inner.described_at = Some(Instant::now());
                inner.described = Some(opened.medias.clone());
                Ok(opened)
            }
            Err(e) => {
                self.record_failure(&e);
                Err(e)
            }
        }
    }

    /// The last authentication failure while dials are held back after it.
    fn auth_held(&self) -> Option<SourceError> {
        let inner = self.lock();
        let until = inner.auth_hold_until?;
        if Instant::now() >= until {
            return None;
        }
        inner.last_error.clone().filter(|e| e.kind() == SourceErrorKind::Auth)
    }

    /// Keeps `e` for the API; an authentication failure holds dials back (logged once per streak).
    fn record_failure(&self, e: &SourceError) {
        let mut inner = self.lock();
        inner.last_error = Some(e.clone());
        if e.kind() != SourceErrorKind::Auth {
            return;
        }
        inner.auth_streak = inner.auth_streak.saturating_add(1);
        let hold = auth_backoff(inner.auth_streak);
        inner.auth_hold_until = Some(Instant::now() + hold);
        if inner.auth_streak == 1 {
            tracing::warn!(
                source = %self.masked_url(),
                error = %e,
                "the camera refused our credentials: retrying in {} s, then less often (at most every {} min) \
                 until it accepts them",
                hold.as_secs(),
                auth_backoff(u32::MAX).as_secs() / 60
            );
        } else {
            tracing::debug!(source = %self.masked_url(), error = %e, streak = inner.auth_streak, "credentials refused again");
        }
    }

    /// Keeps `parked` for the next run; closes it after [`PARK_EXPIRY`] if no run takes it.
    fn park(self: &Arc<Self>, parked: Parked) {
        let id = NEXT_PARK_ID.fetch_add(1, Ordering::Relaxed);
        let old = self.lock().parked.replace((id, parked));
        if let Some((_, old)) = old {
            tokio::spawn(old.close());
        }
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            tokio::time::sleep(PARK_EXPIRY).await;
            let Some(this) = weak.upgrade() else { return };
            let expired = {
                let mut inner = this.lock();
                match &inner.parked {
                    Some((current, _)) if *current == id => inner.parked.take().map(|(_, p)| p),
                    _ => None,
                }
            };
            if let Some(p) = expired {
                tracing::debug!(
                    source = %this.masked_url(),
                    "described connection not run within {} s: closing it",
                    PARK_EXPIRY.as_secs()
                );
                p.close().await;
            }
        });
    }

    /// The parked connection, if it has not expired.
    fn take_parked(&self) -> Option<Parked> {
        self.lock().parked.take().map(|(_, p)| p)
    }

    /// Describes again before a (re)start (held back after an authentication failure). New medias
    /// replace the tracks: see [`Producer::swap_medias`].
    async fn redescribe(self: &Arc<Self>, source: &Arc<dyn Source>) -> Result<Option<Parked>, SourceError> {
        let opened = self.open(source).await?;
        self.swap_medias(opened.medias);
        Ok(opened.parked)
    }

    /// The source now offers `medias`. A track whose kind and codec are still offered stays (its
    /// readers continue); the others close (their readers' queues end once all their tracks closed),
    /// and new medias get new tracks for the next readers.
    fn swap_medias(&self, medias: Vec<Media>) {
        let mut inner = self.lock();
        let key = |m: &Media| (m.kind, m.codecs.first().map(|c| c.name.clone()));
        let unchanged = inner
            .medias
            .as_ref()
            .is_some_and(|old| old.len() == medias.len() && old.iter().zip(&medias).all(|(a, b)| key(a) == key(b)));
        if unchanged {
            return;
        }
        let mut old: Vec<Option<Arc<Track>>> = inner.tracks.iter().cloned().map(Some).collect();
        let tracks: Vec<Arc<Track>> = medias
            .iter()
            .map(|m| {
                let (kind, codec) = key(m);
                let kept = old.iter_mut().find(|t| {
                    t.as_ref().is_some_and(|t| t.kind == kind && codec.as_deref() == Some(t.codec.name.as_str()))
                });
                match kept.and_then(Option::take) {
                    Some(t) => t,
                    None => make_tracks(std::slice::from_ref(m), self.gop_cache_bytes).remove(0),
                }
            })
            .collect();
        let was: Vec<String> = inner.medias.iter().flatten().map(|m| m.to_string()).collect();
        let now: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
        let closed: Vec<Arc<Track>> = old.into_iter().flatten().collect();
        inner.tracks = tracks;
        inner.medias = Some(medias);
        drop(inner);
        if !was.is_empty() {
            tracing::warn!(
                source = %self.masked_url(),
                was = %was.join("; "),
                now = %now.join("; "),
                ended = closed.len(),
                "the source's medias changed: new tracks replace the changed ones; their readers end"
            );
        }
        for t in closed {
            t.close();
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
        let mut first = true;
        while !stop.is_cancelled() {
            let mut parked = self.take_parked();
            // Every start describes anew, unless `describe` just did (the first run of a source that
            // parks nothing) or left its connection: a restart, an expired park, medias that changed.
            let just_described = first && {
                let inner = self.lock();
                inner.medias.is_some() && inner.described_at.is_some_and(|t| t.elapsed() < PARK_EXPIRY)
            };
            first = false;
            if parked.is_none() && !just_described {
                let described = tokio::select! {
                    _ = stop.cancelled() => break,
                    r = self.redescribe(&source) => r,
                };
                match described {
                    Ok(p) => parked = p,
                    Err(e) => {
                        if e.kind() != SourceErrorKind::Auth {
                            tracing::warn!(source = %self.masked_url(), error = %e, "source unreachable, retrying");
                        }
                        if !self.retry {
                            self.close_tracks();
                            break;
                        }
                        self.start_filling();
                        if !self.wait_retry(attempt, &stop).await {
                            break;
                        }
                        attempt = attempt.saturating_add(1);
                        continue;
                    }
                }
            }
            self.stop_filling();
            let tracks = self.tracks();
            if self.filler.get().is_some() {
                // The tracks may hold a slate's parameter sets (their codec came from it, or it played
                // last): the source's keyframes then carry its own in band for RTP readers.
                let described = self.lock().described.clone().unwrap_or_default();
                for (t, m) in tracks.iter().zip(&described) {
                    t.set_parameter_sets(m.codecs.first());
                }
            }
            // Every (re)start: readers skip to the new session's first keyframe, the GOP cache
            // drops frames of the last session, and timestamps continue the old timeline.
            for t in &tracks {
                t.mark_discontinuity();
            }
            {
                let mut inner = self.lock();
                inner.state = ProducerState::Online;
                inner.started = Some(SystemTime::now());
                inner.runs += 1;
            }
            let run_at = Instant::now();
            // Ready while it runs (MediaMTX's runOnReady / runOnNotReady).
            let ready = self.on_ready.get().and_then(|hook| hook(&self));
            let result = source.clone().run_opened(parked, tracks.clone(), stop.clone()).await;
            drop(ready);
            if stop.is_cancelled() {
                break;
            }
            if !self.retry {
                if let Err(e) = result {
                    self.lock().last_error = Some(e);
                }
                self.close_tracks();
                break;
            }
            let err = result.err().unwrap_or_else(|| SourceError::other("source ended"));
            match err.kind() {
                SourceErrorKind::Auth => {}
                SourceErrorKind::MediasChanged => {
                    tracing::info!(source = %self.masked_url(), error = %err, "source's medias changed: describing it again")
                }
                _ => tracing::warn!(source = %self.masked_url(), error = %err, "source stopped, retrying"),
            }
            self.record_failure(&err);
            if run_at.elapsed() > HEALTHY_RUN {
                // It ran for a while: a fresh failure, start the backoff over.
                attempt = 0;
            }
            self.start_filling();
            if !self.wait_retry(attempt, &stop).await {
                break;
            }
            attempt = attempt.saturating_add(1);
        }
        self.stop_filling();
        let mut inner = self.lock();
        inner.state = ProducerState::Idle;
        inner.started = None;
    }

    /// Waits before the next attempt: [`backoff`], or until an authentication hold ends. False when
    /// stopped meanwhile.
    async fn wait_retry(&self, attempt: u32, stop: &CancellationToken) -> bool {
        let delay = {
            let mut inner = self.lock();
            inner.state = ProducerState::Retrying;
            match inner.auth_hold_until {
                Some(until) if until > Instant::now() => until - Instant::now(),
                _ => backoff(attempt),
            }
        };
        tokio::select! {
            _ = stop.cancelled() => false,
            _ = tokio::time::sleep(delay) => true,
        }
    }

    fn close_tracks(&self) {
        for t in &self.tracks() {
            t.close();
        }
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
    /// Gives this producer's tracks (and medias) to a successor: it keeps none, so ending it later
    /// closes nothing. Every track is marked discontinuous: readers skip to the successor's first
    /// keyframe and its timestamps continue the old timeline.
    pub fn hand_over_tracks(&self) -> (Vec<Arc<Track>>, Vec<Media>) {
        let mut inner = self.lock();
        let tracks = std::mem::take(&mut inner.tracks);
        let medias = inner.medias.clone().unwrap_or_default();
        drop(inner);
        for t in &tracks {
            t.mark_discontinuity();
        }
        (tracks, medias)
    }

    pub fn shutdown(&self) {
        let mut inner = self.lock();
        if let Some(stop) = inner.running.take() {
            stop.cancel();
        }
        for t in &inner.tracks {
            t.close();
        }
        if let Some((_, p)) = inner.parked.take() {
            if let Ok(rt) = tokio::runtime::Handle::try_current() {
                rt.spawn(p.close());
            }
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
            parked: None,
            described_at: None,
            auth_streak: 0,
            auth_hold_until: None,
            runs: 0,
            filling: None,
            described: None,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubSettings, SourceFactory};
    use media::{Codec, Direction, Frame, Kind};
    use std::sync::atomic::AtomicU32;

    type Describe = dyn Fn(u32) -> Result<Vec<Media>, SourceError> + Send + Sync;
    type Run = dyn Fn(u32) -> Result<(), SourceError> + Send + Sync;

    /// A camera scripted per call: `describe(n)` answers the n-th open (0-based), `run(n)` ends the
    /// n-th run after a few frames (`Ok` = runs until stopped). Each open parks a connection; the
    /// counters say how many were opened, taken by a run, and closed unused.
    struct FakeCamera {
        describe: Box<Describe>,
        run: Box<Run>,
        opens: AtomicU32,
        runs: AtomicU32,
        taken: AtomicU32,
        closed: Arc<AtomicU32>,
    }

    struct FakeConn;

    impl FakeCamera {
        fn new(
            describe: impl Fn(u32) -> Result<Vec<Media>, SourceError> + Send + Sync + 'static,
            run: impl Fn(u32) -> Result<(), SourceError> + Send + Sync + 'static,
        ) -> Arc<FakeCamera> {
            Arc::new(FakeCamera {
                describe: Box::new(describe),
                run: Box::new(run),
                opens: AtomicU32::new(0),
                runs: AtomicU32::new(0),
                taken: AtomicU32::new(0),
                closed: Arc::default(),
            })
        }

        fn count(c: &AtomicU32) -> u32 {
            c.load(Ordering::SeqCst)
        }
    }

    impl Source for FakeCamera {
        fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
            Box::pin(async move { Ok(self.open().await?.medias) })
        }

        fn run(
            self: Arc<Self>,
            tracks: Vec<Arc<Track>>,
            stop: CancellationToken,
        ) -> BoxFuture<'static, Result<(), SourceError>> {
            self.run_opened(None, tracks, stop)
        }

        fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
            let n = self.opens.fetch_add(1, Ordering::SeqCst);
            let result = (self.describe)(n);
            let closed = self.closed.clone();
            Box::pin(async move {
                let medias = result?;
                let parked = Parked::new(FakeConn, move |_: FakeConn| {
                    Box::pin(async move {
                        closed.fetch_add(1, Ordering::SeqCst);
                    })
                });
                Ok(Opened { medias, parked: Some(parked) })
            })
        }

        fn run_opened(
            self: Arc<Self>,
            parked: Option<Parked>,
            tracks: Vec<Arc<Track>>,
            stop: CancellationToken,
        ) -> BoxFuture<'static, Result<(), SourceError>> {
            if parked.and_then(Parked::take::<FakeConn>).is_some() {
                self.taken.fetch_add(1, Ordering::SeqCst);
            }
            let n = self.runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let end = (self.run)(n);
                for i in 0u32.. {
                    if let Some(t) = tracks.first() {
                        let payload = bytes::Bytes::from_static(&[0x65, 1, 2, 3]);
                        t.push(Frame { timestamp: i * 3000, keyframe: true, payload, rtp: Vec::new() });
                    }
                    tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(40)) => {}
                    }
                    if i == 3 && end.is_err() {
                        return end;
                    }
                }
                Ok(())
            })
        }
    }

    fn video() -> Media {
        Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90000, 0, 96)])
    }

    fn audio(name: &str) -> Media {
        Media::new(Kind::Audio, Direction::RecvOnly, vec![Codec::new(name, 8000, 1, 8)])
    }

    fn hub(camera: Arc<FakeCamera>) -> Arc<Hub> {
        let factory: SourceFactory = Arc::new(move |_url: &str| Ok(camera.clone() as Arc<dyn Source>));
        let settings = HubSettings {
            linger: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            gop_cache_bytes: 1 << 20,
            reader_queue: 64,
            publisher_grace: Duration::ZERO,
        };
        let hub = Arc::new(Hub::new(vec![("fake", factory)], settings));
        hub.set_stream("cam", &["fake:cam".to_string()]).unwrap();
        hub
    }

    /// Readers that keep asking for `cam` (each waits up to the start timeout, retrying, then asks again).
    fn keep_asking(hub: &Arc<Hub>, readers: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..readers)
            .map(|_| {
                let hub = hub.clone();
                tokio::spawn(async move {
                    let filters = media::query::parse_query_string("video");
                    loop {
                        let shared = hub.new_reader_shared("test", String::new());
                        if let Ok(mut reader) = hub.subscribe("cam", &filters, shared, false).await {
                            while reader.queue.recv().await.is_some() {}
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            })
            .collect()
    }

    fn producer(hub: &Hub) -> Arc<Producer> {
        hub.get("cam").unwrap().producers()[0].clone()
    }

    #[test]
    fn auth_backoff_grows_to_five_minutes() {
        let secs: Vec<u64> = (1..=7).map(|n| auth_backoff(n).as_secs()).collect();
        assert_eq!(secs, [30, 60, 120, 240, 300, 300, 300]);
        assert_eq!(backoff(0), Duration::from_millis(500));
        assert_eq!(backoff(9), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn a_camera_refusing_our_credentials_is_dialled_rarely() {
        let camera = FakeCamera::new(|_| Err(SourceError::auth("fake:cam: DESCRIBE: 401 Unauthorized")), |_| Ok(()));
        let hub = hub(camera.clone());
        let readers = keep_asking(&hub, 3);
        tokio::time::sleep(Duration::from_secs(10 * 60)).await;
        // Three readers asking all the time, for 10 minutes: dials at 0, 30 s, 1:30, 3:30 and 7:30.
        let opens = FakeCamera::count(&camera.opens);
        assert!((4..=5).contains(&opens), "{opens} dials in 10 minutes");
        let p = producer(&hub);
        assert_eq!(p.last_error_kind(), Some(SourceErrorKind::Auth));
        assert_eq!(p.last_error().as_deref(), Some("fake:cam: DESCRIBE: 401 Unauthorized"));
        for r in readers {
            r.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_unreachable_camera_is_still_dialled_every_two_seconds() {
        let camera = FakeCamera::new(|_| Err(SourceError::network("fake:cam: connect: refused")), |_| Ok(()));
        let hub = hub(camera.clone());
        let readers = keep_asking(&hub, 1);
        tokio::time::sleep(Duration::from_secs(60)).await;
        let opens = FakeCamera::count(&camera.opens);
        assert!(opens >= 28, "{opens} dials in 60 s");
        assert_eq!(producer(&hub).last_error_kind(), Some(SourceErrorKind::Network));
        for r in readers {
            r.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_running_camera_that_starts_refusing_backs_off_and_recovers() {
        // Runs drop after a few frames; from the 2nd dial on the camera refuses us, and from the 5th
        // it accepts again.
        let camera = FakeCamera::new(
            |n| if (1..4).contains(&n) { Err(SourceError::auth("401")) } else { Ok(vec![video()]) },
            |_| Err(SourceError::network("dropped")),
        );
        let hub = hub(camera.clone());
        let readers = keep_asking(&hub, 1);
        // Dials: 0 (runs, drops), 0.5 s (401), 30.5 s (401), 90.5 s (401), 210.5 s (accepted).
        tokio::time::sleep(Duration::from_secs(200)).await;
        assert_eq!(FakeCamera::count(&camera.opens), 4);
        assert_eq!(FakeCamera::count(&camera.runs), 1);
        tokio::time::sleep(Duration::from_secs(12)).await;
        assert!(FakeCamera::count(&camera.runs) >= 2);
        // Accepted: the backoff is the short one again (runs drop every ~0.2 s, retried within 2 s).
        let runs = FakeCamera::count(&camera.runs);
        tokio::time::sleep(Duration::from_secs(20)).await;
        assert!(FakeCamera::count(&camera.runs) >= runs + 8, "{}", FakeCamera::count(&camera.runs));
        for r in readers {
            r.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_described_connection_is_run_or_closed_within_the_expiry() {
        let camera = FakeCamera::new(|_| Ok(vec![video()]), |_| Ok(()));
        let hub = hub(camera.clone());
        let p = producer(&hub);
        // Described and never run: closed after PARK_EXPIRY, not before.
        p.medias().await.unwrap();
        tokio::time::sleep(PARK_EXPIRY - Duration::from_millis(100)).await;
        assert_eq!(FakeCamera::count(&camera.closed), 0);
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(FakeCamera::count(&camera.closed), 1);
        // A reader now: the expired connection is not used; the source is described again and run on
        // the new connection.
        let readers = keep_asking(&hub, 1);
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(FakeCamera::count(&camera.opens), 2);
        assert_eq!((FakeCamera::count(&camera.runs), FakeCamera::count(&camera.taken)), (1, 1));
        assert_eq!(FakeCamera::count(&camera.closed), 1);
        assert_eq!(p.state(), ProducerState::Online);
        for r in readers {
            r.abort();
        }
        // The reader gone, the source lingers out; nothing is left parked.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(p.state(), ProducerState::Idle);
        assert_eq!((FakeCamera::count(&camera.opens), FakeCamera::count(&camera.closed)), (2, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_runs_the_connection_its_describe_opened() {
        let camera = FakeCamera::new(|_| Ok(vec![video()]), |_| Ok(()));
        let hub = hub(camera.clone());
        let readers = keep_asking(&hub, 2);
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(FakeCamera::count(&camera.opens), 1);
        assert_eq!((FakeCamera::count(&camera.runs), FakeCamera::count(&camera.taken)), (1, 1));
        assert_eq!(FakeCamera::count(&camera.closed), 0);
        for r in readers {
            r.abort();
        }
    }

    #[tokio::test(start_paused = true)]
    async fn changed_medias_are_described_again_and_swapped() {
        // The camera's audio turns from PCMA to OPUS after the first run.
        let camera = FakeCamera::new(
            |n| Ok(vec![video(), audio(if n == 0 { "PCMA" } else { "OPUS" })]),
            |n| if n == 0 { Err(SourceError::medias_changed("fake:cam: medias changed")) } else { Ok(()) },
        );
        let hub = hub(camera.clone());
        let p = producer(&hub);
        let subscribe = |query: &str| {
            let (hub, filters) = (hub.clone(), media::query::parse_query_string(query));
            async move { hub.subscribe("cam", &filters, hub.new_reader_shared("test", String::new()), false).await }
        };
        let mut video_reader = subscribe("video").await.unwrap();
        let mut pcma_reader = subscribe("audio=pcma").await.unwrap();
        let old = p.tracks();
        tokio::time::sleep(Duration::from_secs(3)).await;
        // Described again: video kept (its reader continues), audio replaced (its reader ends).
        assert_eq!(FakeCamera::count(&camera.opens), 2);
        let new = p.tracks();
        assert!(Arc::ptr_eq(&old[0], &new[0]));
        assert!(!Arc::ptr_eq(&old[1], &new[1]));
        assert_eq!(new[1].codec.name, "OPUS");
        let medias: Vec<String> = p.known_medias().unwrap().iter().map(|m| m.to_string()).collect();
        assert_eq!(medias, ["video, recvonly, H264", "audio, recvonly, OPUS"]);
        let ended =
            tokio::time::timeout(Duration::from_secs(1), async { while pcma_reader.queue.recv().await.is_some() {} });
        assert!(ended.await.is_ok(), "the PCMA reader's queue ends");
        while video_reader.queue.try_recv().is_ok() {}
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(video_reader.queue.try_recv().is_ok(), "the video reader still gets frames");
        // New readers get the new medias.
        assert!(subscribe("audio=opus").await.is_ok());
        assert!(subscribe("audio=pcma").await.is_err());
        assert_eq!(FakeCamera::count(&camera.runs), 2);
    }
}
