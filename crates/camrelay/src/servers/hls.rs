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
//! Viewers share muxers: one [`Muxer`] per stream and variant (`src=`, TS or fMP4, codec filters) is one
//! hub reader (its own bounded queue, starting at the GOP cache's keyframe) drained by one task that cuts
//! segments: at a video keyframe once at least [`VIDEO_SEGMENT`] has accumulated (audio-only streams:
//! every [`AUDIO_SEGMENT`]), durations from the frames' timestamps in the track's clock. A muxer keeps at
//! most [`KEEP_SEGMENTS`] segments of at most [`MAX_SEGMENT_BYTES`]. A [`Session`] is only an id naming
//! its muxer (a few hundred bytes), so 1,000 viewers of a stream cost one reader and one set of segments.
//! A muxer's task ends, dropping the reader so that an idle source can stop, when no request of any of its
//! sessions touched it for [`SESSION_IDLE`], when a new muxer evicts it (at most [`MAX_MUXERS`], least
//! recently used goes), or on shutdown. Sessions expire [`SESSION_IDLE`] after their last request (at most
//! [`MAX_SESSIONS`]; a new one first drops expired ones, then the least recently used).
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
/// Sessions alive at once (a few hundred bytes each); a new one evicts expired ones, then the least
/// recently used.
pub const MAX_SESSIONS: usize = 10_000;
/// Muxers (stream × variant) alive at once; a new one stops the least recently used.
pub const MAX_MUXERS: usize = 100;
/// Segments a muxer keeps (a little more than it lists, for clients a playlist behind).
pub const KEEP_SEGMENTS: usize = 8;
/// Segments a media playlist lists.
pub const LIST_SEGMENTS: usize = 6;
/// Init segments a muxer keeps (one per picture change still listed, at most).
pub const KEEP_INITS: usize = 4;
use formats::hls::{LiveConfig, LivePart, LivePlaylist, LiveUri};
use formats::segment::{CutPart, SegmentPolicy};
/// The segmenter (frames in, whole segments out) lives in `formats::segment`; re-exported here.
pub use formats::segment::{CutSegment, Segmenter, AUDIO_SEGMENT, MAX_SEGMENT_BYTES, VIDEO_SEGMENT};
/// How long a master playlist or init request waits for a new session's first keyframe.
pub const FIRST_SEGMENT_WAIT: Duration = Duration::from_secs(10);
/// How long a media playlist request (without `_HLS_msn`) waits for the muxer's first whole segment;
/// then `503`. A new muxer's first segment ends at the first keyframe after `hlsSegmentDuration`, so this
/// covers a GOP of several seconds after a cold source's start.
pub const FIRST_PLAYLIST_WAIT: Duration = Duration::from_secs(15);
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
        .route("/api/hls/part.m4s", get(part_m4s))
        .layer(Extension(sessions))
}

// ---------------------------------------------------------------------------------------------------------
// Muxers and sessions.

struct MuxState {
    /// fMP4 init segments by generation (a new one at each picture change), the last [`KEEP_INITS`].
    inits: VecDeque<(u64, Bytes)>,
    codecs: Option<String>,
    /// What is listed (segments, parts, their numbering and timing).
    playlist: LivePlaylist,
    /// Complete segments by msn (the listed ones and two more, for clients a playlist behind).
    segments: VecDeque<(u64, Stored)>,
    /// LL-HLS parts by (msn, part), of the segments whose parts are listed and the one in progress.
    parts: VecDeque<(u64, u64, Stored)>,
    /// Segments kept beyond those listed.
    keep_extra: usize,
}

impl MuxState {
    fn new(config: LiveConfig, keep_extra: usize) -> MuxState {
        MuxState {
            inits: VecDeque::new(),
            codecs: None,
            playlist: LivePlaylist::new(config),
            segments: VecDeque::new(),
            parts: VecDeque::new(),
            keep_extra,
        }
    }

    fn ended(&self) -> bool {
        self.playlist.is_ended()
    }

    fn segment(&self, msn: u64) -> Option<&Stored> {
        self.segments.iter().find(|(n, _)| *n == msn).map(|(_, b)| b)
    }

    fn init(&self, generation: u64) -> Option<&Bytes> {
        self.inits.iter().find(|(g, _)| *g == generation).map(|(_, b)| b)
    }

    fn part(&self, msn: u64, part: u64) -> Option<&Stored> {
        self.parts.iter().find(|(n, p, _)| *n == msn && *p == part).map(|(_, _, b)| b)
    }
}

/// Where a kept segment's or part's bytes are: in memory, or (MediaMTX's `hlsDirectory`) a range of a
/// segment's file (a part is a range of its segment's file).
#[derive(Clone)]
enum Stored {
    Memory(Bytes),
    File { file: Arc<SegmentFile>, offset: u64, len: usize },
}

impl Stored {
    fn len(&self) -> usize {
        match self {
            Stored::Memory(b) => b.len(),
            Stored::File { len, .. } => *len,
        }
    }

    /// The bytes (a file's range is read on a blocking thread; the file stays while it is read).
    async fn read(self) -> std::io::Result<Bytes> {
        let (file, offset, len) = match self {
            Stored::Memory(b) => return Ok(b),
            Stored::File { file, offset, len } => (file, offset, len),
        };
        let read = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Seek};
            let mut f = std::fs::File::open(&file.path)?;
            f.seek(std::io::SeekFrom::Start(offset))?;
            let mut buf = vec![0; len];
            f.read_exact(&mut buf)?;
            Ok(Bytes::from(buf))
        });
        read.await.unwrap_or_else(|e| Err(std::io::Error::other(e)))
    }
}

/// A segment written to a muxer's [`SegmentDir`]; the file goes when the last reference does (the
/// muxer dropped the segment and no request is reading it).
struct SegmentFile {
    path: std::path::PathBuf,
}

impl Drop for SegmentFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// MediaMTX's `hlsDirectory`: one muxer's directory (`DIR/STREAM/VARIANT-ID/`), where its complete
/// segments are kept as files instead of in memory. Removed with the muxer.
struct SegmentDir {
    path: std::path::PathBuf,
    next: std::sync::atomic::AtomicU64,
    ext: &'static str,
}

impl SegmentDir {
    /// The directory of a muxer of `stream` under `root`; each name of the stream's path a directory
    /// (`.`, `..` and empty names as `_`, so nothing lands outside `root`).
    fn create(root: &std::path::Path, stream: &str, variant: &str, fmp4: bool) -> std::io::Result<SegmentDir> {
        let mut path = root.to_path_buf();
        for name in stream.split('/') {
            let safe: String =
                name.chars().map(|c| if c.is_alphanumeric() || "-_.~".contains(c) { c } else { '_' }).collect();
            path.push(if matches!(safe.as_str(), "" | "." | "..") { "_".to_string() } else { safe });
        }
        path.push(format!("{variant}-{:016x}", rand::random::<u64>()));
        std::fs::create_dir_all(&path)?;
        Ok(SegmentDir { path, next: 0.into(), ext: if fmp4 { "m4s" } else { "ts" } })
    }

    /// Writes a complete segment to a new file of the directory.
    fn write(&self, data: &[u8]) -> std::io::Result<Arc<SegmentFile>> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path = self.path.join(format!("seg{n}.{}", self.ext));
        std::fs::write(&path, data)?;
        Ok(Arc::new(SegmentFile { path }))
    }
}

impl Drop for SegmentDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Unix milliseconds now (`#EXT-X-PROGRAM-DATE-TIME`).
fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// What a muxer is shared by: the stream as asked (`src=`), the container and the codec filters.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct MuxKey {
    src: String,
    fmp4: bool,
    /// LL-HLS (parts, blocking reload).
    ll: bool,
    /// Cut by the HLS settings (`hlsSegmentCount`...) rather than go2rtc's defaults.
    settings: bool,
    filters: String,
}

/// One hub reader and one segmenter for a stream and variant, shared by every session of that key.
pub struct Muxer {
    key: MuxKey,
    fmp4: bool,
    ll: bool,
    state: Mutex<MuxState>,
    /// Bumped on every new segment and at the end; requests wait on it.
    changed: watch::Sender<u64>,
    /// The last request of any of its sessions.
    last_used: Mutex<Instant>,
    /// It stops once no session touched it for this long (`hlsMuxerCloseAfter`; go2rtc's URLs: the
    /// session idle time).
    close_after: Duration,
    cancel: CancellationToken,
    reader: Arc<ReaderShared>,
    /// `hlsDirectory`: complete segments are kept in files here, not in memory; taken (and the files
    /// removed) when the muxer stops.
    dir: Mutex<Option<Arc<SegmentDir>>>,
}

impl Muxer {
    fn state(&self) -> MutexGuard<'_, MuxState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// New parts (LL-HLS) and the segment they completed, if one.
    fn add(&self, parts: Vec<CutPart>, seg: Option<CutSegment>) {
        if parts.is_empty() && seg.is_none() {
            return;
        }
        let now = now_ms();
        // `hlsDirectory`: the segment goes to its file before the lock is taken; kept in memory if
        // that fails (a full disk), which the log says.
        let dir = self.dir.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let file = match (dir, &seg) {
            (Some(dir), Some(seg)) => dir
                .write(&seg.data)
                .inspect_err(
                    |e| tracing::warn!(stream = %self.key.src, "hls: hlsDirectory {}: {e}", dir.path.display()),
                )
                .ok(),
            _ => None,
        };
        let mut s = self.state();
        for p in parts {
            s.playlist.set_generation(p.generation);
            let (msn, n) = s.playlist.add_part(LivePart { duration: p.duration, independent: p.independent }, now);
            s.parts.push_back((msn, n, Stored::Memory(p.data)));
        }
        if let Some(seg) = seg {
            s.playlist.set_generation(seg.generation);
            let (msn, _) = s.playlist.add_segment(seg.duration, now);
            // A segment is its parts, in order: its parts become slices of it (no second copy), so
            // they stay served as long as the segment is kept, listed as parts or not. A player a
            // playlist or two behind (hls.js under CPU load) asks for parts that have just left the
            // list; dropping them then answered 404 (`fragLoadError`) and stalled it.
            // In `hlsDirectory`, they become ranges of its file.
            let mut at = 0;
            let whole = s.parts.iter().filter(|(n, _, _)| *n == msn).map(|(_, _, b)| b.len()).sum::<usize>();
            if whole == seg.data.len() {
                for (_, _, b) in s.parts.iter_mut().filter(|(n, _, _)| *n == msn) {
                    let len = b.len();
                    *b = match &file {
                        Some(file) => Stored::File { file: file.clone(), offset: at as u64, len },
                        None => Stored::Memory(seg.data.slice(at..at + len)),
                    };
                    at += len;
                }
            }
            let len = seg.data.len();
            let stored = file.map_or(Stored::Memory(seg.data), |file| Stored::File { file, offset: 0, len });
            s.segments.push_back((msn, stored));
            let keep = s.playlist.config().segment_count + s.keep_extra;
            while s.segments.len() > keep {
                s.segments.pop_front();
            }
            let oldest = s.segments.front().map_or(msn, |(n, _)| *n);
            while s.parts.front().is_some_and(|(n, _, _)| *n < oldest) {
                s.parts.pop_front();
            }
        }
        drop(s);
        self.changed.send_modify(|v| *v += 1);
    }

    /// The segment in progress was dropped for size: its parts go too.
    fn abandon(&self) {
        let mut s = self.state();
        let next = s.playlist.next_msn();
        s.playlist.abandon_current();
        s.parts.retain(|(n, _, _)| *n < next);
    }

    /// The segmenter's init segment of `generation` and codecs, once known.
    fn set_meta(&self, init: Option<&Bytes>, codecs: Option<&str>, generation: u64) {
        let mut s = self.state();
        if let Some(init) = init.filter(|_| s.init(generation).is_none()) {
            s.inits.push_back((generation, init.clone()));
            while s.inits.len() > KEEP_INITS {
                s.inits.pop_front();
            }
        }
        if s.codecs.is_none() {
            s.codecs = codecs.map(str::to_string);
        }
    }

    fn end(&self) {
        self.state().playlist.end();
        self.changed.send_modify(|v| *v += 1);
    }

    /// A stopped muxer's `hlsDirectory` files go (its sessions may live on a while, ended).
    fn remove_files(&self) {
        if self.dir.lock().unwrap_or_else(|e| e.into_inner()).take().is_none() {
            return;
        }
        let mut s = self.state();
        s.segments.retain(|(_, b)| matches!(b, Stored::Memory(_)));
        s.parts.retain(|(_, _, b)| matches!(b, Stored::Memory(_)));
    }

    fn is_ended(&self) -> bool {
        self.state().ended()
    }

    /// Waits (at most `limit`) until `ready` holds or the muxer ends; true if `ready` holds.
    async fn wait(&self, limit: Duration, ready: impl Fn(&MuxState) -> bool) -> bool {
        let mut rx = self.changed.subscribe();
        let until = rx.wait_for(|_| {
            let s = self.state();
            s.ended() || ready(&s)
        });
        let _ = tokio::time::timeout(limit, until).await;
        ready(&self.state())
    }

    /// The media playlist listed now, with the URIs of session `id`; `skip`: a delta update.
    fn playlist(&self, id: &str, skip: bool) -> String {
        let ext = if self.fmp4 { "m4s" } else { "ts" };
        let uri = |u: LiveUri| match u {
            LiveUri::Init(0) => format!("init.mp4?id={id}"),
            LiveUri::Init(g) => format!("init.mp4?id={id}&g={g}"),
            LiveUri::Segment(n) => format!("segment.{ext}?id={id}&n={n}"),
            LiveUri::Part(n, p) => format!("part.m4s?id={id}&n={n}&p={p}"),
        };
        self.state().playlist.render(&uri, skip)
    }
}

/// One HLS viewer: an id naming a shared [`Muxer`]. A few hundred bytes; the segments are the muxer's.
pub struct Session {
    id: String,
    muxer: Arc<Muxer>,
    last_used: Mutex<Instant>,
}

impl Session {
    fn touch(&self) {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.muxer.touch();
    }

    fn last_used(&self) -> Instant {
        *self.last_used.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A muxer being started or running; the async lock makes concurrent first requests of a key start one.
type MuxSlot = Arc<tokio::sync::Mutex<Option<Arc<Muxer>>>>;

/// The live sessions and muxers of one API server.
pub struct Sessions {
    map: Mutex<HashMap<String, Arc<Session>>>,
    muxers: Mutex<HashMap<MuxKey, MuxSlot>>,
    idle: Duration,
    max: usize,
    max_muxers: usize,
    /// Whether the `hlsAlwaysRemux` task runs ([`spawn_always_remux`]).
    always_remux_started: std::sync::atomic::AtomicBool,
}

impl Sessions {
    pub fn new(idle: Duration, max: usize) -> Sessions {
        Sessions::with_muxers(idle, max, MAX_MUXERS)
    }

    pub fn with_muxers(idle: Duration, max: usize, max_muxers: usize) -> Sessions {
        Sessions {
            map: Mutex::new(HashMap::new()),
            muxers: Mutex::new(HashMap::new()),
            idle,
            max: max.max(1),
            max_muxers: max_muxers.max(1),
            always_remux_started: Default::default(),
        }
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn muxer_slots(&self) -> MutexGuard<'_, HashMap<MuxKey, MuxSlot>> {
        self.muxers.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn len(&self) -> usize {
        self.map().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Muxers running or starting.
    pub fn muxers(&self) -> usize {
        self.muxer_slots().len()
    }

    /// Looks a session up and marks it (and its muxer) used. Allocates nothing for an unknown id.
    fn get(&self, id: &str) -> Option<Arc<Session>> {
        if id.len() != ID_LEN {
            return None;
        }
        let s = self.map().get(id).cloned()?;
        s.touch();
        Some(s)
    }

    /// Registers a new session of `muxer`: expired sessions go first, then, when still full, the least
    /// recently used one.
    fn insert(&self, muxer: Arc<Muxer>) -> Arc<Session> {
        let mut map = self.map();
        let now = Instant::now();
        if map.len() >= self.max {
            map.retain(|_, s| s.last_used() + self.idle > now && !s.muxer.cancel.is_cancelled());
        }
        while map.len() >= self.max {
            let Some(oldest) = map.values().min_by_key(|s| s.last_used()).map(|s| s.id.clone()) else { break };
            map.remove(&oldest);
            tracing::debug!(session = %oldest, "hls: session evicted");
        }
        let id = loop {
            let id = format!("{:032x}", rand::random::<u128>());
            if !map.contains_key(&id) {
                break id;
            }
        };
        muxer.touch();
        let session = Arc::new(Session { id: id.clone(), muxer, last_used: Mutex::new(now) });
        map.insert(id, session.clone());
        session
    }

    /// The running muxer of `key`, or a new one from `start` (called with the key's slot locked, so
    /// that concurrent first requests start one muxer). At most `max_muxers`: the least recently used
    /// one is stopped for a new one.
    async fn muxer<F, Fut>(&self, key: MuxKey, start: F) -> Result<Arc<Muxer>, Response>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Arc<Muxer>, Response>>,
    {
        let slot = {
            let mut slots = self.muxer_slots();
            if !slots.contains_key(&key) && slots.len() >= self.max_muxers {
                let oldest = slots
                    .iter()
                    .filter_map(|(k, s)| s.try_lock().ok().and_then(|m| m.as_ref().map(|m| (k.clone(), m.last_used()))))
                    .min_by_key(|(_, t)| *t)
                    .map(|(k, _)| k);
                if let Some(k) = oldest {
                    if let Some(slot) = slots.remove(&k) {
                        if let Ok(Some(m)) = slot.try_lock().as_deref() {
                            tracing::debug!(stream = %m.key.src, "hls: muxer evicted");
                            m.cancel.cancel();
                        }
                    }
                }
            }
            slots.entry(key.clone()).or_default().clone()
        };
        let mut guard = slot.lock().await;
        if let Some(m) = guard.as_ref().filter(|m| !m.is_ended() && !m.cancel.is_cancelled()) {
            return Ok(m.clone());
        }
        let result = start().await;
        match &result {
            Ok(m) => *guard = Some(m.clone()),
            Err(_) => {
                *guard = None;
                drop(guard);
                self.remove_slot(&key, &slot);
            }
        }
        result
    }

    fn remove_slot(&self, key: &MuxKey, slot: &MuxSlot) {
        let mut slots = self.muxer_slots();
        if slots.get(key).is_some_and(|s| Arc::ptr_eq(s, slot)) {
            slots.remove(key);
        }
    }

    /// Forgets an ended muxer (its sessions still answer from it until they expire).
    fn remove_muxer(&self, muxer: &Arc<Muxer>) {
        let mut slots = self.muxer_slots();
        let same = slots.get(&muxer.key).is_some_and(|s| match s.try_lock() {
            Ok(m) => m.as_ref().is_none_or(|m| Arc::ptr_eq(m, muxer)),
            Err(_) => false,
        });
        if same {
            slots.remove(&muxer.key);
        }
    }
}

/// A muxer's task: drains the reader's queue into segments until no session touched the muxer for the
/// idle time, it is evicted or the server shuts down. The caller drops the reader when this returns.
async fn run_muxer(
    sessions: Arc<Sessions>,
    muxer: Arc<Muxer>,
    mut segmenter: Segmenter,
    queue: &mut mpsc::Receiver<Delivery>,
) {
    let mut live = true;
    let idle = tokio::time::sleep_until(muxer.last_used() + muxer.close_after);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            biased;
            _ = muxer.cancel.cancelled() => break,
            _ = &mut idle => {
                let deadline = muxer.last_used() + muxer.close_after;
                if deadline <= Instant::now() {
                    tracing::debug!(stream = %muxer.key.src, "hls: muxer idle, closed");
                    break;
                }
                idle.as_mut().reset(deadline);
            }
            d = queue.recv(), if live => match d {
                Some(d) => {
                    let dropped = segmenter.dropped;
                    let seg = segmenter.push(d.slot, &d.frame);
                    if let Some(e) = segmenter.take_error() {
                        tracing::debug!(stream = %muxer.key.src, "hls: {e}");
                    }
                    muxer.set_meta(segmenter.init(), segmenter.codecs(), segmenter.generation());
                    let parts = std::iter::from_fn(|| segmenter.take_part()).collect();
                    muxer.add(parts, seg);
                    if segmenter.dropped != dropped {
                        // Its parts are listed already: they go with it.
                        muxer.abandon();
                    }
                }
                None => {
                    live = false;
                    let seg = segmenter.finish();
                    let parts = std::iter::from_fn(|| segmenter.take_part()).collect();
                    muxer.add(parts, seg);
                    muxer.end();
                    sessions.remove_muxer(&muxer);
                }
            },
        }
    }
    sessions.remove_muxer(&muxer);
    muxer.end();
    muxer.remove_files();
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
    let muxer = shared_muxer(app, sessions, q, peer, ua).await?;
    let session = sessions.insert(muxer.clone());
    tracing::debug!(session = %session.id, stream = %muxer.key.src, "hls: session started");
    // Parameter sets not in the SDP: the first keyframe tells.
    muxer.wait(FIRST_SEGMENT_WAIT, |s| s.codecs.is_some()).await;
    let codecs = muxer.state().codecs.clone().unwrap_or_default();
    Ok(formats::hls::master_playlist(&[formats::hls::Variant {
        uri: format!("hls/playlist.m3u8?id={}", session.id),
        bandwidth: BANDWIDTH,
        codecs,
        resolution: None,
    }]))
}

/// How often `hlsAlwaysRemux` looks for paths that became ready.
const ALWAYS_REMUX_CHECK: Duration = Duration::from_secs(1);

/// MediaMTX's `hlsAlwaysRemux`: every ready path gets the muxer of MediaMTX's HLS URL (`query`, the
/// `hlsVariant`'s) before any viewer asks, and keeps it while the path stays ready; a path that stops
/// being ready lets its muxer close after `hlsMuxerCloseAfter`. Started once per server (both HLS
/// listeners ask); a reload that turns the key off stops keeping muxers.
pub fn spawn_always_remux(app: Arc<App>, query: &'static str) {
    if app.hls.always_remux_started.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(ALWAYS_REMUX_CHECK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = app.shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if !app.config().servers.hls.always_remux {
                continue;
            }
            for stream in app.hub.streams() {
                let ready = stream.producers().iter().any(|p| {
                    p.state() == crate::hub::ProducerState::Online && !p.tracks().is_empty() && !p.is_offline_slate()
                });
                if !ready {
                    continue;
                }
                let mut pairs = vec![("src".to_string(), stream.name.clone())];
                pairs.extend(query.split('&').map(|kv| {
                    let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
                    (k.to_string(), v.to_string())
                }));
                match shared_muxer(&app, &app.hls, &Query(pairs), None, "hlsAlwaysRemux").await {
                    Ok(muxer) => muxer.touch(),
                    Err(e) => tracing::debug!(stream = %stream.name, status = %e.status(), "hlsAlwaysRemux: no muxer"),
                }
            }
        }
    });
}

/// The muxer of `src=` and the request's variant and filters, shared by every session that asks the
/// same: started (a hub reader and its segmenter) by the first.
async fn shared_muxer(
    app: &Arc<App>,
    sessions: &Arc<Sessions>,
    q: &Query,
    peer: Option<SocketAddr>,
    ua: &str,
) -> Result<Arc<Muxer>, Response> {
    let ll = q.get("ll").is_some();
    let fmp4 = ll || q.get("mp4").is_some();
    // `ll` and MediaMTX's URLs (`mtx`) cut by the HLS settings; go2rtc's URLs by go2rtc's defaults.
    let settings = ll || q.get("mtx").is_some();
    // `ll` (camrelay's own, as MediaMTX's LL-HLS URL) carries G.711/LPCM audio too, as FLAC.
    let default = match (ll, fmp4) {
        (true, _) => "mp4=flac",
        (false, true) => MP4_DEFAULT,
        (false, false) => TS_DEFAULT,
    };
    let filters = filters(q, default);
    let Some(src) = q.get("src").filter(|s| !s.is_empty()) else {
        return Err(error(StatusCode::BAD_REQUEST, "missing src= (the stream name)"));
    };
    let key = MuxKey { src: src.to_string(), fmp4, ll, settings, filters: format!("{filters:?}") };
    sessions
        .muxer(key.clone(), || async {
            let protocol = match (ll, fmp4) {
                (true, _) => "hls+ll",
                (false, true) => "hls+fmp4",
                (false, false) => "hls+ts",
            };
            let mut reader = subscribe(app, q, &filters, protocol, peer, ua).await?;
            let hls = app.config().servers.hls.clone();
            let (policy, mut live) = if settings {
                let policy = SegmentPolicy {
                    video_min: hls.segment_duration,
                    audio_len: hls.segment_duration,
                    max_bytes: usize::try_from(hls.segment_max_size).unwrap_or(usize::MAX),
                };
                let part = ll.then_some(hls.part_duration.as_secs_f64());
                (policy, LiveConfig { segment_count: hls.segment_count, fmp4, part_target: part })
            } else {
                (SegmentPolicy::default(), LiveConfig { segment_count: LIST_SEGMENTS, fmp4, part_target: None })
            };
            // MPEG-TS has no stream type HLS players read for G.711 or LPCM: a TS session whose filters
            // matched such audio gets fMP4 segments (the audio as FLAC) rather than a 415.
            let codecs = reader_codecs(&reader);
            let fmp4 = fmp4
                || (formats::mux::TsStream::new(&codecs).is_err() && formats::fmp4::Fmp4Muxer::new(&codecs).is_ok());
            live.fmp4 = fmp4;
            let mut segmenter = match Segmenter::with_policy(&codecs, fmp4, policy) {
                Ok(s) => s,
                Err(e) => return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("hls: {e}"))),
            };
            if ll {
                segmenter.set_parts(hls.part_duration);
            }
            // A publisher replaced by one with another picture: a new segment, init segment and
            // `#EXT-X-DISCONTINUITY` from its first keyframe.
            segmenter.follow_changes();
            let mut state = MuxState::new(live, KEEP_SEGMENTS - LIST_SEGMENTS);
            state.codecs = segmenter.codecs().map(str::to_string);
            let variant = protocol.trim_start_matches("hls+");
            let dir = hls.directory.as_deref().and_then(|root| {
                let dir = SegmentDir::create(root, src, variant, fmp4);
                let warn =
                    |e: &std::io::Error| tracing::warn!(stream = src, "hls: hlsDirectory {}: {e}", root.display());
                dir.inspect_err(warn).ok()
            });
            let muxer = Arc::new(Muxer {
                key,
                fmp4,
                ll,
                state: Mutex::new(state),
                changed: watch::channel(0).0,
                last_used: Mutex::new(Instant::now()),
                close_after: if settings { hls.muxer_close_after } else { sessions.idle },
                cancel: app.shutdown.child_token(),
                reader: reader.shared.clone(),
                dir: Mutex::new(dir.map(Arc::new)),
            });
            tracing::debug!(stream = %reader.stream_name(), protocol, "hls: muxer started");
            let (task_sessions, task_muxer) = (sessions.clone(), muxer.clone());
            tokio::spawn(async move {
                run_muxer(task_sessions, task_muxer, segmenter, &mut reader.queue).await;
                drop(reader);
            });
            Ok(muxer)
        })
        .await
}

/// A blocking playlist request's `_HLS_msn`, `_HLS_part` and `_HLS_skip` (RFC 8216bis 6.2.5).
fn blocking_params(q: &Query) -> Result<(Option<u64>, Option<u64>, bool), String> {
    let num = |name: &str| match q.get(name) {
        None => Ok(None),
        Some(v) => {
            v.parse::<u64>().map(Some).map_err(|_| format!("hls: bad {name}={} (a segment or part number)", short(v)))
        }
    };
    let (msn, part) = (num("_HLS_msn")?, num("_HLS_part")?);
    if part.is_some() && msn.is_none() {
        return Err("hls: _HLS_part without _HLS_msn".into());
    }
    let skip = match q.get("_HLS_skip") {
        None => false,
        Some("YES" | "v2") => true,
        Some(v) => return Err(format!("hls: bad _HLS_skip={} (YES or v2)", short(v))),
    };
    Ok((msn, part, skip))
}

/// At most 20 characters of a request's value, for an error message.
fn short(v: &str) -> String {
    v.chars().take(20).collect()
}

async fn playlist_m3u8(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(session) = sessions.get(q.get("id").unwrap_or("")) else { return not_found() };
    let muxer = &session.muxer;
    let (msn, part, skip) = match blocking_params(&q) {
        Ok(p) if muxer.ll => p,
        // Plain HLS: the parameters mean nothing; answer at once.
        Ok(_) => (None, None, false),
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    match msn {
        Some(msn) => {
            let (check, limit) = {
                let s = muxer.state();
                (s.playlist.check_block(msn, part), s.playlist.block_limit())
            };
            if let Err(e) = check {
                return error(StatusCode::BAD_REQUEST, format!("hls: {e}"));
            }
            if !muxer.wait(limit, |s| s.playlist.ready(msn, part)).await {
                return error(StatusCode::SERVICE_UNAVAILABLE, format!("hls: segment {msn} not ready in {limit:?}"));
            }
        }
        None => {
            // Held until the muxer lists a whole segment, as MediaMTX (gohlslib) holds it: a playlist of
            // parts only is an empty playlist to players that ignore parts (ffmpeg, VLC), which stop.
            if !muxer.wait(FIRST_PLAYLIST_WAIT, |s| s.ended() || s.playlist.next_msn() > 0).await {
                let msg = format!(
                    "hls: stream {:?} has no whole segment after {FIRST_PLAYLIST_WAIT:?} (no keyframe from its source?)",
                    muxer.key.src
                );
                return error(StatusCode::SERVICE_UNAVAILABLE, msg);
            }
        }
    }
    with_type(muxer.playlist(&session.id, skip), M3U8)
}

async fn init_mp4(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(session) = sessions.get(q.get("id").unwrap_or("")).filter(|s| s.muxer.fmp4) else {
        return not_found();
    };
    let muxer = &session.muxer;
    // `g=`: the generation of a picture change's init segment (`#EXT-X-MAP` after a discontinuity).
    let Some(generation) = q.get("g").map_or(Some(0), |g| g.parse::<u64>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "hls: bad g= (an init segment generation)");
    };
    if generation == 0 && !muxer.wait(FIRST_SEGMENT_WAIT, |s| !s.inits.is_empty()).await {
        return error(StatusCode::GATEWAY_TIMEOUT, "hls: no init segment yet (no keyframe)");
    }
    let init = muxer.state().init(generation).cloned();
    let Some(init) = init else { return error(StatusCode::NOT_FOUND, format!("hls: no init segment {generation}")) };
    muxer.reader.count_sent(1, init.len() as u64);
    with_type(init, "video/mp4")
}

async fn segment(sessions: &Sessions, q: &Query, fmp4: bool) -> Response {
    let Some(session) = sessions.get(q.get("id").unwrap_or("")).filter(|s| s.muxer.fmp4 == fmp4) else {
        return not_found();
    };
    let Some(n) = q.get("n").and_then(|n| n.parse::<u64>().ok()) else {
        return error(StatusCode::BAD_REQUEST, "hls: missing or bad n=");
    };
    let muxer = &session.muxer;
    let data = muxer.state().segment(n).cloned();
    let Some(data) = data else { return error(StatusCode::NOT_FOUND, format!("hls: no segment {n}")) };
    let data = match data.read().await {
        Ok(data) => data,
        Err(e) => return error(StatusCode::NOT_FOUND, format!("hls: segment {n}: {e}")),
    };
    muxer.reader.count_sent(1, data.len() as u64);
    with_type(data, if fmp4 { "video/iso.segment" } else { "video/mp2t" })
}

/// `part.m4s?id=&n=&p=`: an LL-HLS part; the next parts (the preload hint's) are waited for.
async fn part_m4s(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(session) = sessions.get(q.get("id").unwrap_or("")).filter(|s| s.muxer.ll) else {
        return not_found();
    };
    let num = |name: &str| q.get(name).and_then(|n| n.parse::<u64>().ok());
    let (Some(n), Some(p)) = (num("n"), num("p")) else {
        return error(StatusCode::BAD_REQUEST, "hls: missing or bad n= or p=");
    };
    let muxer = &session.muxer;
    let (check, limit) = {
        let s = muxer.state();
        let upcoming = !s.playlist.ready(n, Some(p));
        (upcoming.then(|| s.playlist.check_block(n, Some(p))), s.playlist.block_limit())
    };
    match check {
        Some(Err(e)) => return error(StatusCode::NOT_FOUND, format!("hls: no part {n}.{p} ({e})")),
        Some(Ok(())) => {
            muxer.wait(limit, |s| s.part(n, p).is_some() || s.playlist.next_msn() > n).await;
        }
        None => {}
    }
    let data = muxer.state().part(n, p).cloned();
    let Some(data) = data else { return error(StatusCode::NOT_FOUND, format!("hls: no part {n}.{p}")) };
    let data = match data.read().await {
        Ok(data) => data,
        Err(e) => return error(StatusCode::NOT_FOUND, format!("hls: part {n}.{p}: {e}")),
    };
    muxer.reader.count_sent(1, data.len() as u64);
    with_type(data, "video/iso.segment")
}

async fn segment_ts(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    segment(&sessions, &Query::from_uri(request.uri()), false).await
}

async fn segment_m4s(Extension(sessions): Extension<Arc<Sessions>>, request: Request) -> Response {
    segment(&sessions, &Query::from_uri(request.uri()), true).await
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

    fn key(src: &str) -> MuxKey {
        MuxKey { src: src.to_string(), fmp4: false, ll: false, settings: false, filters: String::new() }
    }

    /// A muxer of `src` with its task (fed through the returned sender), registered in `sessions`.
    async fn muxer_with_task(
        sessions: &Arc<Sessions>,
        src: &str,
    ) -> (Arc<Muxer>, mpsc::Sender<Delivery>, tokio::task::JoinHandle<()>) {
        muxer_closing_after(sessions, src, sessions.idle).await
    }

    /// [`muxer_with_task`] with another close time (`hlsMuxerCloseAfter`).
    async fn muxer_closing_after(
        sessions: &Arc<Sessions>,
        src: &str,
        close_after: Duration,
    ) -> (Arc<Muxer>, mpsc::Sender<Delivery>, tokio::task::JoinHandle<()>) {
        let (tx, mut rx) = mpsc::channel(4);
        let mut task = None;
        let muxer = sessions
            .muxer(key(src), || async {
                let live = LiveConfig { segment_count: LIST_SEGMENTS, fmp4: false, part_target: None };
                let m = Arc::new(Muxer {
                    key: key(src),
                    fmp4: false,
                    ll: false,
                    state: Mutex::new(MuxState::new(live, KEEP_SEGMENTS - LIST_SEGMENTS)),
                    changed: watch::channel(0).0,
                    last_used: Mutex::new(Instant::now()),
                    close_after,
                    cancel: CancellationToken::new(),
                    reader: Arc::new(ReaderShared::new("hls+ts", String::new())),
                    dir: Mutex::new(None),
                });
                let seg = Segmenter::new(&aac_tracks(), false).unwrap();
                let (s2, m2) = (sessions.clone(), m.clone());
                task = Some(tokio::spawn(async move { run_muxer(s2, m2, seg, &mut rx).await }));
                Ok(m)
            })
            .await
            .unwrap_or_else(|_| panic!("muxer"));
        (muxer, tx, task.expect("a new muxer"))
    }

    /// Expiry: the muxer's task ends by itself once no session touched it for `idle`, and takes the
    /// muxer out of the table. (tokio's `test-util` feature is not enabled in this crate, so the idle
    /// time is shortened instead of pausing the clock; the test awaits the task, it never sleeps.)
    #[tokio::test]
    async fn idle_muxer_expires() {
        let sessions = Arc::new(Sessions::new(Duration::from_millis(200), 10));
        let (muxer, tx, task) = muxer_with_task(&sessions, "a").await;
        let session = sessions.insert(muxer.clone());
        assert!(sessions.get(&session.id).is_some());
        assert_eq!(sessions.muxers(), 1);
        let started = Instant::now();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(150));
        assert_eq!(sessions.muxers(), 0);
        assert!(muxer.state().ended());
        // The queue's receiver went with the task: the producer side sees it closed.
        assert!(tx.is_closed());
    }

    /// `hlsMuxerCloseAfter` on the paused clock: a muxer closes that long after the last request of any
    /// of its sessions, not after the sessions' idle time.
    #[tokio::test(start_paused = true)]
    async fn muxer_closes_after_its_close_time() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 10));
        let (muxer, _tx, task) = muxer_closing_after(&sessions, "a", Duration::from_secs(5)).await;
        let session = sessions.insert(muxer.clone());
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(sessions.get(&session.id).is_some(), "a request at 3 s");
        tokio::time::sleep(Duration::from_millis(4900)).await;
        assert!(!task.is_finished(), "closed before 5 s after the last request");
        task.await.unwrap();
        assert_eq!(t0.elapsed(), Duration::from_secs(8));
        assert!(muxer.state().ended());
        assert_eq!(sessions.muxers(), 0);
    }

    #[tokio::test]
    async fn touched_muxer_lives_on() {
        let sessions = Arc::new(Sessions::new(Duration::from_millis(300), 10));
        let (muxer, _tx, mut task) = muxer_with_task(&sessions, "a").await;
        // Two viewers taking turns: each touches every 200 ms, alternately, so each alone is idle for
        // longer than 300 ms at times, but the muxer is touched every 100 ms.
        let (a, b) = (sessions.insert(muxer.clone()), sessions.insert(muxer.clone()));
        let started = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut turn = 0;
        while started.elapsed() < Duration::from_millis(900) {
            tokio::select! {
                _ = tick.tick() => {
                    turn += 1;
                    let id = if turn % 2 == 0 { &a.id } else { &b.id };
                    assert!(sessions.get(id).is_some());
                }
                _ = &mut task => panic!("muxer expired although touched"),
            }
        }
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap();
        assert_eq!(sessions.muxers(), 0);
    }

    #[tokio::test]
    async fn sessions_share_one_muxer_per_key() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 10_000));
        let (muxer, tx, _task) = muxer_with_task(&sessions, "a").await;
        // The second request of the key gets the running muxer; `start` is not called.
        let again = sessions.muxer(key("a"), || async { panic!("started twice") }).await.unwrap_or_else(|_| panic!());
        assert!(Arc::ptr_eq(&muxer, &again));
        let all: Vec<_> = (0..1000).map(|_| sessions.insert(muxer.clone())).collect();
        assert_eq!((sessions.len(), sessions.muxers()), (1000, 1));
        for i in 0..(10 * 48_000 / 1024) {
            tx.send(Delivery { slot: 0, frame: Arc::new(aac_frame(i * 1024)) }).await.unwrap();
        }
        assert!(muxer.wait(Duration::from_secs(5), |s| s.playlist.next_msn() >= 4).await);
        // Every session lists the same segments under its own id.
        let p0 = muxer.playlist(&all[0].id, false);
        let p1 = muxer.playlist(&all[999].id, false);
        assert_eq!(p0.replace(&all[0].id, "ID"), p1.replace(&all[999].id, "ID"));
        assert!(p0.contains(&format!("segment.ts?id={}&n=3\n", all[0].id)), "{p0}");
    }

    #[tokio::test]
    async fn muxers_are_bounded_and_least_recently_used_goes() {
        let sessions = Arc::new(Sessions::with_muxers(Duration::from_secs(30), 100, 2));
        let (a, _ta, task_a) = muxer_with_task(&sessions, "a").await;
        let (b, _tb, _task_b) = muxer_with_task(&sessions, "b").await;
        *a.last_used.lock().unwrap() = Instant::now() - Duration::from_secs(5);
        let (_c, _tc, _task_c) = muxer_with_task(&sessions, "c").await;
        assert_eq!(sessions.muxers(), 2);
        assert!(a.cancel.is_cancelled() && !b.cancel.is_cancelled());
        tokio::time::timeout(Duration::from_secs(5), task_a).await.unwrap().unwrap();
        assert!(a.state().ended());
    }

    #[tokio::test]
    async fn sessions_are_bounded_expired_first() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 3));
        let (muxer, _tx, _task) = muxer_with_task(&sessions, "a").await;
        let all: Vec<_> = (0..3).map(|_| sessions.insert(muxer.clone())).collect();
        // Last used: the second longest ago.
        let base = Instant::now();
        for (i, ms) in [(0, 10), (1, 0), (2, 5)] {
            *all[i].last_used.lock().unwrap() = base + Duration::from_millis(ms);
        }
        let fourth = sessions.insert(muxer.clone());
        assert_eq!(sessions.len(), 3);
        assert!(sessions.get(&all[1].id).is_none());
        assert!(sessions.get(&fourth.id).is_some());
    }

    #[tokio::test]
    async fn segments_are_bounded_and_listed() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(30), 10));
        let (muxer, tx, _task) = muxer_with_task(&sessions, "a").await;
        let session = sessions.insert(muxer.clone());
        // 40 s of audio → 19 full segments.
        for i in 0..(40 * 48_000 / 1024) {
            tx.send(Delivery { slot: 0, frame: Arc::new(aac_frame(i * 1024)) }).await.unwrap();
        }
        assert!(muxer.wait(Duration::from_secs(5), |s| s.playlist.next_msn() >= 19).await);
        assert_eq!(muxer.state().segments.len(), KEEP_SEGMENTS);
        let p = muxer.playlist(&session.id, false);
        assert_eq!(p.matches("#EXTINF:2.0").count(), LIST_SEGMENTS, "{p}");
        assert!(p.contains("#EXT-X-TARGETDURATION:2\n"), "{p}");
        assert!(p.contains("#EXT-X-MEDIA-SEQUENCE:13\n"), "{p}");
        assert!(p.contains(&format!("segment.ts?id={}&n=18\n", session.id)), "{p}");
        drop(tx);
        assert!(muxer.wait(Duration::from_secs(5), |s| s.ended()).await);
        assert!(muxer.playlist(&session.id, false).ends_with("#EXT-X-ENDLIST\n"));
        // An ended muxer is not handed to new sessions.
        assert_eq!(sessions.muxers(), 0);
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

    /// An LL-HLS muxer (0.2 s parts, 1 s segments, 7 listed) without a task: the test feeds it.
    fn ll_muxer() -> Arc<Muxer> {
        let live = LiveConfig { segment_count: 7, fmp4: true, part_target: Some(0.2) };
        Arc::new(Muxer {
            key: MuxKey { src: "ll".into(), fmp4: true, ll: true, settings: true, filters: String::new() },
            fmp4: true,
            ll: true,
            state: Mutex::new(MuxState::new(live, 2)),
            changed: watch::channel(0).0,
            last_used: Mutex::new(Instant::now()),
            close_after: SESSION_IDLE,
            cancel: CancellationToken::new(),
            reader: Arc::new(ReaderShared::new("hls+ll", String::new())),
            dir: Mutex::new(None),
        })
    }

    fn part(independent: bool) -> CutPart {
        CutPart { data: Bytes::from_static(b"part"), duration: 0.2, independent, generation: 0 }
    }

    /// Blocking playlist reload on the paused clock: a request for the next part is held until the
    /// part is there (not before), one past the advance limit is refused at once, and one that never
    /// comes is answered 503 after three target durations.
    #[tokio::test(start_paused = true)]
    async fn blocking_reload_waits_for_the_part() {
        let muxer = ll_muxer();
        for i in 0..5 {
            muxer.add(vec![part(i == 0)], None);
        }
        muxer.add(vec![], Some(CutSegment { data: Bytes::from_static(b"seg"), duration: 1.0, generation: 0 }));
        muxer.add(vec![part(true)], None);
        // Segment 1 has part 0; a player asks for part 1.
        let waiter = {
            let m = muxer.clone();
            tokio::spawn(async move {
                let t0 = Instant::now();
                let ok = m.wait(Duration::from_secs(3), |s| s.playlist.ready(1, Some(1))).await;
                (ok, t0.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!waiter.is_finished(), "answered before the part existed");
        muxer.add(vec![part(false)], None);
        let (ok, waited) = waiter.await.unwrap();
        assert!(ok);
        assert_eq!(waited, Duration::from_millis(200));
        let text = muxer.playlist("x", false);
        assert!(text.contains("part.m4s?id=x&n=1&p=1\""), "{text}");
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part.m4s?id=x&n=1&p=2\"\n"), "{text}");
        assert_eq!(muxer.state().part(1, 1).map(|b| b.len()), Some(4));
        // Too far ahead: refused without waiting.
        assert!(muxer.state().playlist.check_block(4, Some(0)).is_err());
        // Never comes: the wait ends at the limit (the handler answers 503).
        let t0 = Instant::now();
        let limit = muxer.state().playlist.block_limit();
        assert!(!muxer.wait(limit, |s| s.playlist.ready(3, Some(0))).await);
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
    }

    /// `playlist.m3u8?id=` of `session`, through the handler.
    async fn get_playlist(sessions: &Arc<Sessions>, id: &str) -> (StatusCode, String) {
        let request = Request::builder().uri(format!("/api/hls/playlist.m3u8?id={id}")).body(Body::empty()).unwrap();
        let r = playlist_m3u8(Extension(sessions.clone()), request).await;
        let status = r.status();
        let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    /// A new LL-HLS muxer's first playlist is held until it lists a whole segment (parts alone are an
    /// empty playlist to ffmpeg and VLC), on the paused clock.
    #[tokio::test(start_paused = true)]
    async fn first_playlist_waits_for_a_whole_segment() {
        let sessions = Arc::new(Sessions::new(SESSION_IDLE, 10));
        let muxer = ll_muxer();
        let session = sessions.insert(muxer.clone());
        for i in 0..3 {
            muxer.add(vec![part(i == 0)], None);
        }
        let request = {
            let (sessions, id) = (sessions.clone(), session.id.clone());
            tokio::spawn(async move {
                let t0 = Instant::now();
                let r = get_playlist(&sessions, &id).await;
                (r, t0.elapsed())
            })
        };
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!request.is_finished(), "answered with parts only");
        muxer.add(vec![part(false), part(false)], None);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!request.is_finished(), "answered with parts only");
        muxer.add(vec![], Some(CutSegment { data: Bytes::from_static(b"seg"), duration: 1.0, generation: 0 }));
        let ((status, text), waited) = request.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{text}");
        assert_eq!(waited, Duration::from_millis(800));
        assert!(text.contains("#EXTINF:1.00000,\nsegment.m4s?id="), "{text}");
        // Once a segment is listed, playlists are answered at once.
        let t0 = Instant::now();
        assert_eq!(get_playlist(&sessions, &session.id).await.0, StatusCode::OK);
        assert_eq!(t0.elapsed(), Duration::ZERO);
    }

    /// A muxer that never completes a segment: the playlist request is answered 503, naming the stream,
    /// after [`FIRST_PLAYLIST_WAIT`]; an ended one at once.
    #[tokio::test(start_paused = true)]
    async fn first_playlist_wait_is_bounded() {
        let sessions = Arc::new(Sessions::new(Duration::from_secs(60), 10));
        let muxer = ll_muxer();
        let session = sessions.insert(muxer.clone());
        muxer.add(vec![part(true)], None);
        let t0 = Instant::now();
        let (status, text) = get_playlist(&sessions, &session.id).await;
        assert_eq!(t0.elapsed(), FIRST_PLAYLIST_WAIT);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["error"], "hls: stream \"ll\" has no whole segment after 15s (no keyframe from its source?)");
        muxer.end();
        let t0 = Instant::now();
        let (status, text) = get_playlist(&sessions, &session.id).await;
        assert_eq!((status, t0.elapsed()), (StatusCode::OK, Duration::ZERO));
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
    }

    /// Parts stay served while their segment is kept (as slices of it: no second copy), also after
    /// they leave the playlist; they go with their segment.
    #[test]
    fn parts_live_as_long_as_their_segment() {
        let muxer = ll_muxer();
        for k in 0..12u8 {
            let parts = (0..5u8).map(|i| CutPart { data: Bytes::from(vec![k, i]), ..part(i == 0) }).collect();
            let seg = Bytes::from((0..5u8).flat_map(|i| [k, i]).collect::<Vec<_>>());
            muxer.add(parts, Some(CutSegment { data: seg, duration: 1.0, generation: 0 }));
        }
        let s = muxer.state();
        // 7 listed + 2 kept, and their parts (only the last three segments' are listed).
        assert_eq!(s.segments.iter().map(|(n, _)| *n).collect::<Vec<_>>(), (3..12).collect::<Vec<_>>());
        assert_eq!(s.parts.len(), 45);
        assert!(s.part(2, 4).is_none() && s.part(3, 0).is_some() && s.part(11, 4).is_some());
        assert_eq!(s.part(3, 2).map(|b| in_memory(b).to_vec()), Some(vec![3, 2]));
        // A slice of the segment's bytes.
        let (seg, part) = (in_memory(s.segment(4).unwrap()), in_memory(s.part(4, 1).unwrap()));
        assert_eq!(part.as_ptr(), seg[2..].as_ptr());
        drop(s);
        assert!(!muxer.playlist("x", false).contains("n=3&p=0"), "not listed");
    }

    fn in_memory(s: &Stored) -> &Bytes {
        match s {
            Stored::Memory(b) => b,
            Stored::File { .. } => panic!("in a file"),
        }
    }

    /// `hlsDirectory`: complete segments are files of the muxer's own directory (under the stream's
    /// name, nothing outside the root), their parts ranges of them; a file goes with its segment, the
    /// directory with the muxer.
    #[tokio::test]
    async fn hls_directory_keeps_segments_in_files() {
        let root = std::env::temp_dir().join(format!("camrelay-hlsdir-{}", std::process::id()));
        let dir = SegmentDir::create(&root, "../cams/front", "ll", true).unwrap();
        let dir_path = dir.path.clone();
        assert!(dir_path.starts_with(root.join("_").join("cams").join("front")), "{}", dir_path.display());
        let muxer = Arc::new(Muxer { dir: Mutex::new(Some(Arc::new(dir))), ..Arc::into_inner(ll_muxer()).unwrap() });
        for k in 0..12u8 {
            let parts = (0..5u8).map(|i| CutPart { data: Bytes::from(vec![k, i, i]), ..part(i == 0) }).collect();
            let seg = Bytes::from((0..5u8).flat_map(|i| [k, i, i]).collect::<Vec<_>>());
            muxer.add(parts, Some(CutSegment { data: seg, duration: 1.0, generation: 0 }));
        }
        // The part in progress stays in memory until its segment is complete.
        muxer.add(vec![CutPart { data: Bytes::from_static(b"now"), ..part(true) }], None);
        let (seg, part_4_1, live) = {
            let s = muxer.state();
            (s.segment(4).cloned().unwrap(), s.part(4, 1).cloned().unwrap(), s.part(12, 0).cloned().unwrap())
        };
        assert!(matches!(seg, Stored::File { .. }) && matches!(part_4_1, Stored::File { offset: 3, len: 3, .. }));
        assert_eq!(seg.read().await.unwrap(), Bytes::from_static(&[4, 0, 0, 4, 1, 1, 4, 2, 2, 4, 3, 3, 4, 4, 4]));
        assert_eq!(part_4_1.read().await.unwrap(), Bytes::from_static(&[4, 1, 1]));
        assert_eq!(in_memory(&live).as_ref(), b"now");
        // 7 listed + 2 kept: 9 files; the 3 older ones are gone.
        let mut files: Vec<String> = std::fs::read_dir(&dir_path)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        assert_eq!(files.len(), 9, "{files:?}");
        assert!(!files.contains(&"seg2.m4s".to_string()) && files.contains(&"seg11.m4s".to_string()), "{files:?}");
        muxer.remove_files();
        assert!(!dir_path.exists(), "the stopped muxer's directory goes");
        assert!(muxer.state().segment(11).is_none() && muxer.state().part(12, 0).is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn blocking_parameters() {
        let q = |s: &str| Query::from_uri(&format!("/x?{s}").parse().unwrap());
        assert_eq!(blocking_params(&q("id=a")), Ok((None, None, false)));
        assert_eq!(blocking_params(&q("_HLS_msn=5&_HLS_part=2&_HLS_skip=YES")), Ok((Some(5), Some(2), true)));
        assert_eq!(blocking_params(&q("_HLS_msn=5&_HLS_skip=v2")), Ok((Some(5), None, true)));
        for bad in ["_HLS_part=1", "_HLS_msn=-1", "_HLS_msn=99999999999999999999999", "_HLS_msn=1&_HLS_skip=NO"] {
            let e = blocking_params(&q(bad)).unwrap_err();
            assert!(e.starts_with("hls: ") && e.len() < 80, "{bad}: {e}");
        }
    }
}
