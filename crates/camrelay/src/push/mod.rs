//! Publishing out (go2rtc's `publish:` section and `POST /api/streams?src=NAME&dst=URL`): a stream
//! pushed to another server over RTSP (`rtsp://`, `rtsps://`: ANNOUNCE/RECORD) or RTMP (`rtmp://`,
//! `rtmps://`: `publish`).
//!
//! Each (stream, destination) is one task that holds a hub reader of the stream, like a viewer: it
//! subscribes (the GOP cache gives it a keyframe at once), connects to the destination, pushes every
//! frame it reads, and on any failure (the destination refuses or goes away, the stream's sources end,
//! the codecs do not fit) records the typed error, drops the reader and tries again with backoff
//! (1 s doubling to 10 s, back to 1 s after a session that published), until the target is removed.
//! The cap is low on purpose: a destination that restarts gets the stream back within 10 s.
//! Its state is a consumer of the stream in `GET /api/streams` (`push::PushStatus`).
//!
//! The protocols are the sans-IO clients of the `rtsp` and `rtmp` crates; `rtsp.rs` and `rtmp.rs` here
//! only move bytes between them, the connection and the reader.

mod rtmp;
mod rtsp;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};
use tokio_util::sync::CancellationToken;

use crate::hub::{Hub, HubError, Reader, ReaderShared};
use crate::secrets::mask_url;

/// Push targets at once (each is a task, a reader and a connection).
pub const MAX_TARGETS: usize = 256;

/// Where a push target came from: the config's `publish:` (follows the file on reload) or the API
/// (lasts until `DELETE /api/streams?src=NAME&dst=URL` or the server stops).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Config,
    Api,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Config => "config",
            Origin::Api => "api",
        }
    }
}

/// What a push target is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushState {
    /// Subscribing to the stream and connecting to the destination.
    Connecting,
    /// The destination accepted the stream; frames flow.
    Publishing,
    /// The last attempt failed (see `last_error`); waiting to try again.
    Error,
}

impl PushState {
    pub fn as_str(self) -> &'static str {
        match self {
            PushState::Connecting => "connecting",
            PushState::Publishing => "publishing",
            PushState::Error => "error",
        }
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushErrorKind {
    /// The stream is missing, its sources failed, or it ended.
    Stream,
    /// The stream has no track the destination protocol can carry.
    Codecs,
    /// The destination could not be reached, or the connection broke.
    Network,
    /// The destination refused our credentials.
    Auth,
    /// The destination answered with an error status or refused the stream.
    Refused,
    /// The destination sent something we cannot use.
    Protocol,
    /// The destination did not answer in time.
    Timeout,
    /// The destination URL is not one we can push to.
    Unsupported,
    /// [`MAX_TARGETS`] targets exist already.
    Limit,
}

impl PushErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PushErrorKind::Stream => "stream",
            PushErrorKind::Codecs => "codecs",
            PushErrorKind::Network => "network",
            PushErrorKind::Auth => "auth",
            PushErrorKind::Refused => "refused",
            PushErrorKind::Protocol => "protocol",
            PushErrorKind::Timeout => "timeout",
            PushErrorKind::Unsupported => "unsupported",
            PushErrorKind::Limit => "limit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PushError {
    pub kind: PushErrorKind,
    /// Safe to show: no credentials.
    pub message: String,
}

impl PushError {
    pub fn new(kind: PushErrorKind, message: impl Into<String>) -> PushError {
        PushError { kind, message: message.into() }
    }
}

impl From<HubError> for PushError {
    fn from(e: HubError) -> PushError {
        let kind = match e {
            HubError::NotMatched(_) => PushErrorKind::Codecs,
            _ => PushErrorKind::Stream,
        };
        PushError::new(kind, e.to_string())
    }
}

/// The destination protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Rtsp,
    Rtmp,
}

/// Checks a destination URL: its scheme is one we push to and it parses.
pub fn validate_destination(url: &str) -> Result<(), PushError> {
    protocol_of(url).map(|_| ())
}

fn protocol_of(url: &str) -> Result<Protocol, PushError> {
    let scheme = url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    let bad = |e: String| PushError::new(PushErrorKind::Unsupported, format!("{}: {e}", mask_url(url)));
    match scheme.as_str() {
        "rtsp" | "rtsps" | "rtspx" => {
            ::rtsp::client::SourceUrl::parse(url).map_err(|e| bad(e.to_string()))?;
            Ok(Protocol::Rtsp)
        }
        "rtmp" | "rtmps" | "rtmpx" => {
            crate::sources::rtmp::RtmpTarget::parse(url).map_err(|e| PushError::new(PushErrorKind::Unsupported, e))?;
            Ok(Protocol::Rtmp)
        }
        _ => Err(bad("unsupported destination (publish pushes to rtsp://, rtsps://, rtmp:// and rtmps://)".into())),
    }
}

/// One push target as the API shows it (a consumer of its stream).
pub struct PushStatus {
    pub stream: String,
    /// The destination with its password masked.
    pub url: String,
    /// The reader this target subscribes with, kept across attempts: its id is the consumer's, its
    /// counters (bytes and packets sent, frames dropped) add up over reconnects.
    pub shared: Arc<ReaderShared>,
    pub started: SystemTime,
    origin: Mutex<Origin>,
    state: Mutex<PushState>,
    last_error: Mutex<Option<PushError>>,
    /// Attempts after the first.
    reconnects: AtomicU64,
    /// The destination's `host:port`.
    remote_addr: Mutex<String>,
    /// Set when an attempt reached publishing (resets the backoff).
    published: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl PushStatus {
    fn new(stream: &str, url: &str, origin: Origin, protocol: Protocol) -> PushStatus {
        let protocol = match protocol {
            Protocol::Rtsp => "rtsp+tcp",
            Protocol::Rtmp => "rtmp",
        };
        PushStatus {
            stream: stream.to_string(),
            url: mask_url(url),
            shared: Arc::new(ReaderShared::new(protocol, String::new())),
            started: SystemTime::now(),
            origin: Mutex::new(origin),
            state: Mutex::new(PushState::Connecting),
            last_error: Mutex::new(None),
            reconnects: AtomicU64::new(0),
            remote_addr: Mutex::new(String::new()),
            published: AtomicBool::new(false),
        }
    }

    pub fn id(&self) -> u64 {
        self.shared.id
    }

    pub fn origin(&self) -> Origin {
        *lock(&self.origin)
    }

    pub fn state(&self) -> PushState {
        *lock(&self.state)
    }

    pub fn last_error(&self) -> Option<PushError> {
        lock(&self.last_error).clone()
    }

    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }

    pub fn remote_addr(&self) -> String {
        lock(&self.remote_addr).clone()
    }

    fn set_state(&self, state: PushState) {
        *lock(&self.state) = state;
    }

    fn set_remote_addr(&self, addr: String) {
        *lock(&self.remote_addr) = addr;
    }

    /// The destination accepted the stream.
    fn publishing(&self) {
        self.set_state(PushState::Publishing);
        self.published.store(true, Ordering::Relaxed);
        tracing::info!(module = "publish", stream = %self.stream, url = %self.url, "publishing");
    }
}

struct Entry {
    status: Arc<PushStatus>,
    stop: CancellationToken,
}

/// Every push target, keyed by (stream, destination URL).
#[derive(Default)]
pub struct Pushes {
    entries: Mutex<BTreeMap<(String, String), Entry>>,
}

impl Pushes {
    /// Starts pushing `stream` to `url` (must be called inside the tokio runtime). A target that
    /// exists already keeps running; one the API started becomes the config's when the config names it.
    pub fn start(&self, hub: &Arc<Hub>, stream: &str, url: &str, origin: Origin) -> Result<Arc<PushStatus>, PushError> {
        let protocol = protocol_of(url)?;
        let mut entries = lock(&self.entries);
        let key = (stream.to_string(), url.to_string());
        if let Some(e) = entries.get(&key) {
            if origin == Origin::Config {
                *lock(&e.status.origin) = Origin::Config;
            }
            return Ok(e.status.clone());
        }
        if entries.len() >= MAX_TARGETS {
            return Err(PushError::new(
                PushErrorKind::Limit,
                format!("{MAX_TARGETS} publish targets already; stop one first"),
            ));
        }
        let status = Arc::new(PushStatus::new(stream, url, origin, protocol));
        let stop = CancellationToken::new();
        entries.insert(key, Entry { status: status.clone(), stop: stop.clone() });
        tracing::info!(module = "publish", stream = %stream, url = %status.url, origin = origin.as_str(), "publish started");
        tokio::spawn(hold(Arc::downgrade(hub), status.clone(), url.to_string(), protocol, stop));
        Ok(status)
    }

    /// Stops pushing `stream` to `url`; false when there was no such target.
    pub fn stop(&self, stream: &str, url: &str) -> bool {
        let removed = lock(&self.entries).remove(&(stream.to_string(), url.to_string()));
        match removed {
            Some(e) => {
                e.stop.cancel();
                tracing::info!(module = "publish", stream = %stream, url = %e.status.url, "publish stopped");
                true
            }
            None => false,
        }
    }

    /// Stops the targets of `stream` that `origin` started; returns how many.
    pub fn stop_stream(&self, stream: &str, origin: Origin) -> usize {
        let keys: Vec<(String, String)> = lock(&self.entries)
            .iter()
            .filter(|((s, _), e)| s == stream && e.status.origin() == origin)
            .map(|(k, _)| k.clone())
            .collect();
        keys.iter().filter(|(s, u)| self.stop(s, u)).count()
    }

    /// Makes the config's targets exactly `publish` (stream → URLs): those gone stop, new ones start,
    /// unchanged ones keep running. Targets the API started are left alone. A bad URL is logged and
    /// skipped.
    pub fn sync_config(&self, hub: &Arc<Hub>, publish: &[(String, Vec<String>)]) {
        let wanted: Vec<(String, String)> =
            publish.iter().flat_map(|(s, urls)| urls.iter().map(move |u| (s.clone(), u.clone()))).collect();
        let gone: Vec<(String, String)> = lock(&self.entries)
            .iter()
            .filter(|(k, e)| e.status.origin() == Origin::Config && !wanted.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        for (s, u) in gone {
            self.stop(&s, &u);
        }
        for (s, u) in &wanted {
            if let Err(e) = self.start(hub, s, u, Origin::Config) {
                tracing::error!(module = "publish", stream = %s, "publish.{s}: {e}");
            }
        }
    }

    /// The targets of `stream`.
    pub fn for_stream(&self, stream: &str) -> Vec<Arc<PushStatus>> {
        lock(&self.entries).iter().filter(|((s, _), _)| s == stream).map(|(_, e)| e.status.clone()).collect()
    }

    pub fn list(&self) -> Vec<Arc<PushStatus>> {
        lock(&self.entries).values().map(|e| e.status.clone()).collect()
    }

    /// Ends every target (server shutdown).
    pub fn stop_all(&self) {
        let entries = std::mem::take(&mut *lock(&self.entries));
        for e in entries.into_values() {
            e.stop.cancel();
        }
    }
}

/// The wait before attempt `attempt + 1`: 1 s doubling to 10 s.
pub fn retry_delay(attempt: u32) -> Duration {
    Duration::from_secs((1u64 << attempt.min(4)).min(10))
}

/// What each protocol's reader asks the stream for: RTSP carries any codec, RTMP what FLV carries
/// (go2rtc: H.264 and AAC; H.265 with Enhanced RTMP when the stream has no H.264).
fn query(protocol: Protocol) -> &'static str {
    match protocol {
        Protocol::Rtsp => "video&audio",
        Protocol::Rtmp => "video=h264,h265&audio=aac",
    }
}

/// The task of one target: attempts until `stop`.
async fn hold(hub: Weak<Hub>, status: Arc<PushStatus>, url: String, protocol: Protocol, stop: CancellationToken) {
    let filters = media::query::parse_query_string(query(protocol));
    let mut attempt = 0u32;
    loop {
        status.set_state(PushState::Connecting);
        let result = attempt_once(&hub, &status, &url, protocol, &filters, &stop).await;
        if stop.is_cancelled() || hub.strong_count() == 0 {
            return;
        }
        let error = match result {
            Ok(()) => PushError::new(PushErrorKind::Network, "the destination ended the session"),
            Err(e) => e,
        };
        if status.published.swap(false, Ordering::Relaxed) {
            attempt = 0;
        }
        let same = status.last_error().is_some_and(|last| last == error);
        if !same {
            tracing::warn!(module = "publish", stream = %status.stream, url = %status.url, kind = error.kind.as_str(), "publish: {error}; retrying");
        }
        *lock(&status.last_error) = Some(error);
        status.set_state(PushState::Error);
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(retry_delay(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
        status.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}

/// One attempt: subscribe, connect, push until something fails (`Err`) or `stop` (`Ok`).
async fn attempt_once(
    hub: &Weak<Hub>,
    status: &Arc<PushStatus>,
    url: &str,
    protocol: Protocol,
    filters: &[media::MediaFilter],
    stop: &CancellationToken,
) -> Result<(), PushError> {
    let Some(strong) = hub.upgrade() else { return Ok(()) };
    let subscribed = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        r = strong.subscribe(&status.stream, filters, status.shared.clone(), true) => r,
    };
    drop(strong);
    let mut reader: Reader = subscribed?;
    match protocol {
        Protocol::Rtsp => rtsp::push(url, &mut reader, status, stop).await,
        Protocol::Rtmp => rtmp::push(url, &mut reader, status, stop).await,
    }
}

/// A reader's next frame once `ready` (before, the frames wait in the reader's bounded queue).
async fn next_frame(reader: &mut Reader, ready: bool) -> Option<crate::hub::Delivery> {
    if ready {
        reader.queue.recv().await
    } else {
        std::future::pending().await
    }
}

/// The error of a reader whose stream ended.
fn stream_ended(reader: &Reader) -> PushError {
    PushError::new(PushErrorKind::Stream, format!("stream {}: its sources ended", reader.stream_name()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_checked() {
        assert!(validate_destination("rtsp://u:p@host:8554/cam").is_ok());
        assert!(validate_destination("rtmps://a.rtmp.youtube.com/live2/key").is_ok());
        let e = validate_destination("srt://host:9000").unwrap_err();
        assert_eq!(e.kind, PushErrorKind::Unsupported);
        assert!(e.message.contains("rtsp://, rtsps://, rtmp:// and rtmps://"), "{e}");
        let e = validate_destination("rtmp://user:secret@host/").unwrap_err();
        assert!(!e.message.contains("secret"), "{e}");
        assert!(validate_destination("rtsp://host:99999/x").is_err());
    }

    fn hub() -> Arc<Hub> {
        let settings = crate::hub::HubSettings {
            linger: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            gop_cache_bytes: 1 << 20,
            reader_queue: 16,
            publisher_grace: Duration::ZERO,
        };
        Arc::new(Hub::new(Vec::new(), settings))
    }

    /// Lets the spawned task run until it waits on the (paused) clock again.
    async fn settle() {
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }

    #[tokio::test(start_paused = true)]
    async fn failed_attempts_are_typed_and_retried_with_backoff_until_stopped() {
        let hub = hub();
        let pushes = Pushes::default();
        let status = pushes.start(&hub, "cam", "rtsp://u:secret@127.0.0.1:1/cam", Origin::Api).unwrap();
        assert_eq!(status.url, "rtsp://u:***@127.0.0.1:1/cam");
        settle().await;
        // No such stream: a typed error, then attempts after 1 s, 2 s, 4 s (on the paused clock).
        assert_eq!(status.state(), PushState::Error);
        let e = status.last_error().unwrap();
        assert_eq!((e.kind, e.message.as_str()), (PushErrorKind::Stream, "stream not found: cam"));
        let mut seen = Vec::new();
        tokio::time::sleep(Duration::from_millis(250)).await;
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            settle().await;
            seen.push(status.reconnects());
        }
        // Sampled every 0.5 s from 0.75 s: the second attempt at 1 s, the third at 3 s.
        assert_eq!(seen, vec![0, 1, 1, 1, 1, 2, 2, 2]);
        // The same target again is the same one; another origin does not take it over.
        let again = pushes.start(&hub, "cam", "rtsp://u:secret@127.0.0.1:1/cam", Origin::Api).unwrap();
        assert!(Arc::ptr_eq(&again, &status));
        assert_eq!(pushes.for_stream("cam").len(), 1);
        assert!(pushes.stop("cam", "rtsp://u:secret@127.0.0.1:1/cam"));
        assert!(!pushes.stop("cam", "rtsp://u:secret@127.0.0.1:1/cam"));
        tokio::time::sleep(Duration::from_secs(60)).await;
        settle().await;
        assert_eq!(status.reconnects(), 2, "a stopped target tries no more");
        assert!(pushes.list().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn config_sync_starts_new_stops_gone_and_keeps_api_targets() {
        let hub = hub();
        let pushes = Pushes::default();
        let api = pushes.start(&hub, "a", "rtmp://h/live/api", Origin::Api).unwrap();
        let cfg = |list: &[(&str, &[&str])]| -> Vec<(String, Vec<String>)> {
            list.iter().map(|(s, u)| (s.to_string(), u.iter().map(|u| u.to_string()).collect())).collect()
        };
        pushes.sync_config(&hub, &cfg(&[("a", &["rtsp://h/1", "rtsp://h/2"]), ("b", &["srt://h/x"])]));
        let one = pushes.for_stream("a").into_iter().find(|p| p.url == "rtsp://h/1").unwrap();
        assert_eq!(pushes.list().len(), 3, "the bad srt:// URL is skipped");
        pushes.sync_config(&hub, &cfg(&[("a", &["rtsp://h/1"])]));
        let urls: Vec<String> = pushes.list().iter().map(|p| p.url.clone()).collect();
        assert_eq!(urls, vec!["rtmp://h/live/api", "rtsp://h/1"]);
        assert!(Arc::ptr_eq(&pushes.for_stream("a").into_iter().find(|p| p.url == "rtsp://h/1").unwrap(), &one));
        // A config entry naming an API target takes it over: the next sync may remove it.
        pushes.sync_config(&hub, &cfg(&[("a", &["rtmp://h/live/api"])]));
        assert_eq!(api.origin(), Origin::Config);
        pushes.sync_config(&hub, &[]);
        assert!(pushes.list().is_empty());
        pushes.stop_all();
    }

    #[tokio::test(start_paused = true)]
    async fn targets_are_bounded() {
        let hub = hub();
        let pushes = Pushes::default();
        for i in 0..MAX_TARGETS {
            pushes.start(&hub, "cam", &format!("rtsp://127.0.0.1:1/{i}"), Origin::Api).unwrap();
        }
        let Err(e) = pushes.start(&hub, "cam", "rtsp://127.0.0.1:1/one-more", Origin::Api) else {
            panic!("a target beyond the limit was started")
        };
        assert_eq!(e.kind, PushErrorKind::Limit, "{e}");
        // An existing target is still found; one stopped frees a place.
        assert!(pushes.start(&hub, "cam", "rtsp://127.0.0.1:1/0", Origin::Api).is_ok());
        assert!(pushes.stop("cam", "rtsp://127.0.0.1:1/0"));
        assert!(pushes.start(&hub, "cam", "rtsp://127.0.0.1:1/one-more", Origin::Api).is_ok());
        pushes.stop_all();
    }

    #[test]
    fn publish_section_is_read_from_the_config() {
        let dir = std::env::temp_dir();
        let load = |arg: &str| crate::config::load(&[arg.to_string()], &dir, &|_| None);
        let loaded =
            load(r#"{"publish":{"cam":["rtsp://a/1","rtmp://b/live/x"],"other":"rtsp://c/y","none":null}}"#).unwrap();
        let expected: Vec<(String, Vec<String>)> = vec![
            ("cam".into(), vec!["rtsp://a/1".into(), "rtmp://b/live/x".into()]),
            ("other".into(), vec!["rtsp://c/y".into()]),
            ("none".into(), vec![]),
        ];
        assert_eq!(loaded.config.publish, expected);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let e = load(r#"{"publish":{"cam":{"url":"rtsp://a/1"}}}"#).unwrap_err().to_string();
        assert!(e.contains("publish.cam") && e.contains("a destination URL or a list of them"), "{e}");
    }

    #[test]
    fn retry_delay_doubles_to_ten_seconds() {
        let delays: Vec<u64> = (0..8).map(|a| retry_delay(a).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10, 10, 10]);
    }
}
