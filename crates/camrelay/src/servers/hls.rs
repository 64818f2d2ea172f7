//! HLS output with go2rtc's URLs:
//!
//! - `GET /api/stream.m3u8?src=NAME[&filters]` creates a session and answers a master playlist that points
//!   at `hls/playlist.m3u8?id=SESSION`. Without filters the segments are MPEG-TS with H.264 only (go2rtc's
//!   "legacy TS format (H264 without audio)"); explicit filters such as `video=h264,h265&audio=aac` widen
//!   TS to what its muxer carries. Any `mp4` parameter (`mp4`, `mp4=flac`, `mp4=all`) selects fMP4 segments
//!   with an `init.mp4`, and that parameter's codec filters.
//! - `GET /api/hls/playlist.m3u8?id=` media playlist (the last [`LIST_SEGMENTS`] segments),
//!   `/api/hls/segment.ts?id=&n=`, `/api/hls/init.mp4?id=`, `/api/hls/segment.m4s?id=&n=`.
//!
//! A session is a hub reader (its own bounded queue, starting at the GOP cache's keyframe) drained by one
//! task that cuts segments: at a video keyframe once at least [`VIDEO_SEGMENT`] has accumulated (audio-only
//! streams: every [`AUDIO_SEGMENT`]), durations from the frames' timestamps in the track's clock. The task
//! ends, dropping the reader so that an idle source can stop, when no request touched the session for
//! [`SESSION_IDLE`], when a new session evicts it (at most [`MAX_SESSIONS`], least recently used goes), or
//! on shutdown. Each session keeps at most [`KEEP_SEGMENTS`] segments of at most [`MAX_SEGMENT_BYTES`].
//!
//! Unknown ids cost a map lookup and a 404: nothing is created or kept for them.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{error, Query};
use super::http_stream::{filters, reader_codecs, subscribe};
use crate::app::App;
use crate::hub::{Delivery, ReaderShared};

/// A session no request touched for this long ends.
pub const SESSION_IDLE: Duration = Duration::from_secs(30);
/// Sessions alive at once; a new one evicts the least recently used.
pub const MAX_SESSIONS: usize = 100;
/// Segments a session keeps (a little more than it lists, for clients a playlist behind).
pub const KEEP_SEGMENTS: usize = 8;
/// Segments a media playlist lists.
pub const LIST_SEGMENTS: usize = 6;
/// The segmenter (frames in, whole segments out) lives in `formats::segment`; re-exported here.
pub use formats::segment::{CutSegment, Segmenter, AUDIO_SEGMENT, MAX_SEGMENT_BYTES, VIDEO_SEGMENT};
/// How long a playlist or init request waits for a new session's first segment.
pub const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(10);
/// go2rtc's BANDWIDTH (Safari wants one); the real rate is unknown when the master playlist is written.
const BANDWIDTH: u64 = 192_000;
/// Filters of a TS session whose query has none: go2rtc's legacy "H264 without audio".
const TS_DEFAULT: &str = "video=h264";
/// Filters of an fMP4 session (only reached when `mp4` is present, which is itself a filter).
const MP4_DEFAULT: &str = "mp4";
const ID_LEN: usize = 32;

const M3U8: &str = "application/vnd.apple.mpegurl";

/// The session table, shared with the WebSocket API (`hls` messages).
pub fn new_sessions() -> Arc<Sessions> {
    Arc::new(Sessions::new(SESSION_IDLE, MAX_SESSIONS))
}

pub fn routes(sessions: Arc<Sessions>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/stream.m3u8", get(stream_m3u8))
        .route("/api/hls/playlist.m3u8", get(playlist_m3u8))
        .route("/api/hls/segment.ts", get(segment_ts))
        .route("/api/hls/segment.m4s", get(segment_m4s))
        .route("/api/hls/init.mp4", get(init_mp4))
        .layer(Extension(sessions))
}

// ---------------------------------------------------------------------------------------------------------
// Sessions.

struct StoredSegment {
    n: u64,
    duration: f64,
    data: Bytes,
}

#[derive(Default)]
struct SessionState {
    init: Option<Bytes>,
    codecs: Option<String>,
    segments: VecDeque<StoredSegment>,
    next_n: u64,
    /// Longest segment so far, rounded (RFC 8216 4.3.3.1); kept so the target duration never shrinks.
    target: u32,
    ended: bool,
}

/// One HLS viewer: its segments, fed by its task.
pub struct Session {
    id: String,
    fmp4: bool,
    state: Mutex<SessionState>,
    /// Bumped on every new segment and at the end; requests wait on it.
    changed: watch::Sender<u64>,
    last_used: Mutex<Instant>,
    cancel: CancellationToken,
    reader: Arc<ReaderShared>,
}

impl Session {
    fn state(&self) -> MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_segment(&self, seg: CutSegment) {
        let mut s = self.state();
        let n = s.next_n;
        s.next_n += 1;
        s.target = s.target.max(seg.duration.round().min(f64::from(u32::MAX)) as u32);
        s.segments.push_back(StoredSegment { n, duration: seg.duration, data: seg.data });
        while s.segments.len() > KEEP_SEGMENTS {
            s.segments.pop_front();
        }
        drop(s);
        self.changed.send_modify(|v| *v += 1);
    }

    fn set_meta(&self, init: Option<&Bytes>, codecs: Option<&str>) {
        let mut s = self.state();
        if s.init.is_none() {
            s.init = init.cloned();
        }
        if s.codecs.is_none() {
            s.codecs = codecs.map(str::to_string);
        }
    }

    fn end(&self) {
        self.state().ended = true;
        self.changed.send_modify(|v| *v += 1);
    }

    /// Waits (at most `limit`) until `ready` holds or the session ends; true if `ready` holds.
    async fn wait(&self, limit: Duration, ready: impl Fn(&SessionState) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let until = rx.wait_for(|_| {
            let s = self.state();
            s.ended || ready(&s)
        });
        let _ = tokio::time::timeout(limit, until).await;
        ready(&self.state())
    }

    /// The media playlist of the segments listed now.
    fn playlist(&self) -> String {
        let s = self.state();
        let file = if self.fmp4 { "segment.m4s" } else { "segment.ts" };
        let skip = s.segments.len().saturating_sub(LIST_SEGMENTS);
        let listed: Vec<formats::hls::Segment> = s
            .segments
            .iter()
            .skip(skip)
            .map(|g| formats::hls::Segment { uri: format!("{file}?id={}&n={}", self.id, g.n), duration: g.duration })
            .collect();
        formats::hls::MediaPlaylist {
            media_sequence: s.segments.get(skip).map_or(s.next_n, |g| g.n),
            map_uri: self.fmp4.then(|| format!("init.mp4?id={}", self.id)),
            segments: listed,
            target_duration: s.target.max(1),
            ended: s.ended,
        }
        .render()
    }
}

/// The live sessions of one API server.
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    idle: Duration,
    max: usize,
}

impl Sessions {
    pub fn new(idle: Duration, max: usize) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), idle, max: max.max(1) }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Looks a session up and marks it used. Allocates nothing for an unknown id.
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        if id.len() != ID_LEN {
            return None;
        }
        let s = self.map().get(id).cloned()?;
        s.touch();
        Some(s)
    }

    /// Registers a new session, evicting the least recently used one when full.
    fn insert(&self, fmp4: bool, reader: Arc<ReaderShared>, parent: &CancellationToken) -> Arc<Session> {
        let mut map = self.map();
        let id = loop {
            let id = format!("{:032x}", rand::random::<u128>());
            if !map.contains_key(&id) {
                break id;
            }
        };
        while map.len() >= self.max {
            let Some(oldest) = map.values().min_by_key(|s| s.last_used()).map(|s| s.id.clone()) else { break };
            if let Some(s) = map.remove(&oldest) {
                tracing::debug!(session = %oldest, "hls: session evicted");
                s.cancel.cancel();
            }
        }
        let session = Arc::new(Session {
            id: id.clone(),
            fmp4,
            state: Mutex::new(SessionState::default()),
            changed: watch::channel(0).0,
            last_used: Mutex::new(Instant::now()),
            cancel: parent.child_token(),
            reader,
        });
        map.insert(id, session.clone());
        session
    }

    fn remove(&self, session: &Arc<Session>) {
        let mut map = self.map();
        if map.get(&session.id).is_some_and(|s| Arc::ptr_eq(s, session)) {
            map.remove(&session.id);
        }
    }
}

/// A session's task: drains the reader's queue into segments until the session idles out, is evicted
/// or the server shuts down. The caller drops the reader when this returns.
async fn run_session(
    sessions: Arc<Sessions>,
    session: Arc<Session>,
    mut segmenter: Segmenter,
    queue: &mut mpsc::Receiver<Delivery>,
) {
    let mut live = true;
    let idle = tokio::time::sleep_until(session.last_used() + sessions.idle);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            biased;
            _ = session.cancel.cancelled() => break,
            _ = &mut idle => {
                let deadline = session.last_used() + sessions.idle;
                if deadline <= Instant::now() {
                    tracing::debug!(session = %session.id, "hls: session idle, closed");
                    break;
                }
                idle.as_mut().reset(deadline);
            }
            d = queue.recv(), if live => match d {
                Some(d) => {
                    let seg = segmenter.push(d.slot, &d.frame);
                    if let Some(e) = segmenter.take_error() {
                        tracing::debug!(session = %session.id, "hls: {e}");
                    }
                    session.set_meta(segmenter.init(), segmenter.codecs());
                    if let Some(seg) = seg {
                        session.add_segment(seg);
                    }
                }
                None => {
                    live = false;
                    if let Some(seg) = segmenter.finish() {
                        session.add_segment(seg);
                    }
                    session.end();
                }
            },
        }
    }
    sessions.remove(&session);
    session.end();
}

// ---------------------------------------------------------------------------------------------------------
// HTTP.

fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "hls: unknown or expired session")
}

fn with_type(body: impl Into<Body>, content_type: &'static str) -> Response {
    let mut r = Response::new(body.into());
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

async fn stream_m3u8(
    State(app): State<Arc<App>>,
    Extension(sessions): Extension<Arc<Sessions>>,
    request: Request,
) -> Response {
    let q = Query::from_uri(request.uri());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ua = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("");
    match start_session(&app, &sessions, &q, peer, ua).await {
        Ok(body) => with_type(body, M3U8),
        Err(resp) => resp,
    }
}

/// Starts an HLS session for `src=` and returns its master playlist (`stream.m3u8`, and the WebSocket
/// `hls` message). The playlist's URIs are relative to `/api/`.
pub async fn start_session(
    app: &Arc<App>,
    sessions: &Arc<Sessions>,
    q: &Query,
    peer: Option<SocketAddr>,
    ua: &str,
) -> Result<String, Response> {
    let fmp4 = q.get("mp4").is_some();
    let filters = filters(q, if fmp4 { MP4_DEFAULT } else { TS_DEFAULT });
    let protocol = if fmp4 { "hls+fmp4" } else { "hls+ts" };
    let mut reader = subscribe(app, q, &filters, protocol, peer, ua).await?;
    let segmenter = match Segmenter::new(&reader_codecs(&reader), fmp4) {
        Ok(s) => s,
        Err(e) => return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("hls: {e}"))),
    };
    let known_codecs = segmenter.codecs().map(str::to_string);
    let session = sessions.insert(fmp4, reader.shared.clone(), &app.shutdown);
    tracing::debug!(session = %session.id, stream = %reader.stream_name(), protocol, "hls: session started");
    let task_sessions = sessions.clone();
    let task_session = session.clone();
    tokio::spawn(async move {
        run_session(task_sessions, task_session, segmenter, &mut reader.queue).await;
        drop(reader);
    });
    let codecs = match known_codecs {
        Some(c) => c,
        None => {
            // Parameter sets not in the SDP: the first keyframe tells.
            session.wait(FIRST_SEGMENT_WAIT, |s| s.codecs.is_some()).await;
            session.state().codecs.clone().unwrap_or_default()
        }
    };
    Ok(formats::hls::master_playlist(&[formats::hls::Variant {
        uri: format!("hls/playlist.m3u8?id={}", session.id),
        bandwidth: BANDWIDTH,
        codecs,
        resolution: None,
    }]))
}

async fn playlist_m3u8(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(session) = sessions.get(q.get("id").unwrap_or("")) else { return not_found() };
    session.wait(FIRST_SEGMENT_WAIT, |s| !s.segments.is_empty()).await;
    with_type(session.playlist(), M3U8)
}

async fn init_mp4(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(session) = sessions.get(q.get("id").unwrap_or("")).filter(|s| s.fmp4) else { return not_found() };
    if !session.wait(FIRST_SEGMENT_WAIT, |s| s.init.is_some()).await {
        return error(StatusCode::GATEWAY_TIMEOUT, "hls: no init segment yet (no keyframe)");
    }
    let Some(init) = session.state().init.clone() else { return not_found() };
    session.reader.count_sent(1, init.len() as u64);
    with_type(init, "video/mp4")
}

fn segment(sessions: &Sessions, q: &Query, fmp4: bool) -> Response {
    let Some(session) = sessions.get(q.get("id").unwrap_or("")).filter(|s| s.fmp4 == fmp4) else {
        return not_found();
    };
    let Some(n) = q.get("n").and_then(|n| n.parse::<u64>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "hls: missing or bad n=");
    };
    let data = session.state().segments.iter().find(|g| g.n == n).map(|g| g.data.clone());
    let Some(data) = data else { return error(StatusCode::NOT_FOUND, format!("hls: no segment {n}")) };
    session.reader.count_sent(1, data.len() as u64);
    with_type(data, if fmp4 { "video/iso.segment" } else { "video/mp2t" })
}

async fn segment_ts(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    segment(&sessions, &Query::from_uri(request.uri()), false)
}

async fn segment_m4s(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    segment(&sessions, &Query::from_uri(request.uri()), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::{codec, Codec, Frame, Kind};

    fn aac_tracks() -> Vec<(Kind, Codec)> {
        // AAC-LC 48 kHz stereo.
        vec![(Kind::Audio, Codec::new(codec::AAC, 48_000, 2, 97).with_fmtp("mode=AAC-hbr;config=1190"))]
    }

    fn aac_frame(ts: u32) -> Frame {
        Frame { timestamp: ts, keyframe: true, payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60]), rtp: Vec::new() }
    }

    fn session_with_task(
        sessions: &Arc<Sessions>,
    ) -> (Arc<Session>, mpsc::Sender<Delivery>, tokio::task::JoinHandle<()>) {
        let reader = Arc::new(ReaderShared::new("hls+ts", String::new()));
        let session = sessions.insert(false, reader, &CancellationToken::new());
        let (tx, mut rx) = mpsc::channel(4);
        let seg = Segmenter::new(&aac_tracks(), false).unwrap();
        let (s2, ss) = (sessions.clone(), session.clone());
        let task = tokio::spawn(async move { run_session(s2, ss, seg, &mut rx).await });
        (session, tx, task)
    }

    /// Expiry: the task ends by itself once nothing touched the session for `idle`, and takes the
    /// session out of the map. (tokio's `test-util` feature is not enabled in this crate, so the idle
    /// time is shortened instead of pausing the clock; the test awaits the task, it never sleeps.)
    #[tokio::test]
    async fn idle_session_expires() {
        let sessions = Arc::new(Sessions::new(Duration::from_millis(200), 10));
        let (session, tx, task) = session_with_task(&sessions);
        assert!(sessions.get(&session.id).is_some());
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert!(sessions.get(&session.id).is_none());
        assert!(sessions.is_empty());
        assert!(session.state().ended);
        // The queue's receiver went with the task: the producer side sees it closed.
        assert!(tx.is_closed());
    }

    #[tokio::test]
    async fn touched_session_lives_on() {
        let sessions = Arc::new(Sessions::new(Duration::from_millis(300), 10));
        let (session, _tx, mut task) = session_with_task(&sessions);
        let started = Instant::now();
        // Touch it every 100 ms for 900 ms (three idle periods): the task must still run.
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while started.elapsed() < Duration::from_millis(900) {
            tokio::select! {
                _ = tick.tick() => { assert!(sessions.get(&session.id).is_some()); }
                _ = &mut task => panic!("session expired although touched"),
            }
        }
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(sessions.is_empty());
    }

    #[tokio::test]
    async fn oldest_session_is_evicted() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 3));
        let mut all: Vec<_> = (0..3).map(|_| session_with_task(&sessions)).collect();
        // Last used: the second longest ago.
        let base = Instant::now();
        for (i, ms) in [(0, 10), (1, 0), (2, 5)] {
            *all[i].0.last_used.lock().unwrap() = base + Duration::from_millis(ms);
        }
        let fourth = session_with_task(&sessions);
        assert_eq!(sessions.len(), 3);
        assert!(sessions.get(&all[1].0.id).is_none());
        assert!(sessions.get(&fourth.0.id).is_some());
        let (_, _, task) = all.remove(1);
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
    }

    #[tokio::test]
    async fn segments_are_bounded_and_listed() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 10));
        let (session, tx, _task) = session_with_task(&sessions);
        // 40 s of audio → 19 full segments.
        for i in 0..(40 * 48_000 / 1024) {
            tx.send(Delivery { slot: 0, frame: Arc::new(aac_frame(i * 1024)) }).await.unwrap();
        }
        assert!(session.wait(Duration::from_secs(5), |s| s.next_n >= 19).await);
        assert_eq!(session.state().segments.len(), KEEP_SEGMENTS);
        let p = session.playlist();
        assert_eq!(p.matches("#EXTINF:2.0").count(), LIST_SEGMENTS, "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"), "{p}");
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:13\n"), "{p}");
        assert!(p.contains(&format!("segment.ts?id={}&n=18\n", session.id)), "{p}");
        drop(tx);
        assert!(session.wait(Duration::from_secs(5), |s| s.ended).await);
        assert!(session.playlist().ends_with("#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn unknown_ids_are_not_found() {
        let sessions = Sessions::new(SESSION_IDLE, MAX_SESSIONS);
        for i in 0..1000u32 {
            assert!(sessions.get(&format!("{i:032x}")).is_none());
            assert!(sessions.get(&format!("x{i}")).is_none());
        }
        assert!(sessions.is_empty());
    }
}
