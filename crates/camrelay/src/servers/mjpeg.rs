//! MJPEG and JPEG outputs (go2rtc's `mjpeg` module):
//!
//! - `GET /api/stream.mjpeg?src=`: `multipart/x-mixed-replace`. A JPEG source is passed through; an
//!   H.264/H.265 source is transcoded by one ffmpeg per stream, shared by every viewer of that stream,
//!   started with the first viewer and stopped [`TRANSCODE_LINGER`] after the last one leaves. Its JPEGs
//!   are fanned out through a [`Track`] (bounded per-viewer queues, drops counted).
//! - `GET /api/frame.jpeg?src=`: the stream's running transcoder's latest JPEG when there is one and no
//!   transform is asked, else one JPEG of the latest keyframe (GOP cache), decoded by a one-shot
//!   ffmpeg; `width`/`w`, `height`/`h`, `rotate` (90, 180, 270, -90) and `cache` (`5s`: reuse a
//!   snapshot of the same stream and parameters younger than that). A JPEG source's frame is returned
//!   as is when no transform is asked.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use bytes::Bytes;
use media::{codec, Codec, Frame, Kind};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::api::{error, Query};
use super::http_stream::{filters, subscribe};
use crate::app::App;
use crate::hub::{Reader, Track, TrackReader};
use crate::sources::exec::OwnedChild;

/// A shared transcoder stops this long after its last viewer left (a reload or a second tab reuses it).
pub const TRANSCODE_LINGER: Duration = Duration::from_secs(3);
/// Marker in the transcoder's command line (`-metadata comment=camrelay-mjpeg:<stream>`), for `ps`.
pub const TRANSCODER_MARKER: &str = "camrelay-mjpeg";
/// JPEGs waiting per viewer; a slower viewer drops frames (counted) instead of delaying the others.
const VIEWER_QUEUE: usize = 4;
/// Snapshots kept for `cache=`; the oldest is evicted beyond this.
const MAX_SNAPSHOTS: usize = 64;
/// How long a snapshot waits for a keyframe, and for ffmpeg.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(10);
/// A running transcoder's latest JPEG younger than this answers `frame.jpeg` without a one-shot ffmpeg.
const FRESH_JPEG: Duration = Duration::from_secs(2);
/// Default reader filters of `stream.mjpeg` and `frame.jpeg`: JPEG first (no transcoding).
const DEFAULT_FILTERS: &str = "video=mjpeg,h264,h265";

static NEXT_TRANSCODER_ID: AtomicU64 = AtomicU64::new(1);

pub fn routes(state: Arc<MjpegState>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/stream.mjpeg", get(stream_mjpeg))
        .route("/api/frame.jpeg", get(frame_jpeg))
        .layer(Extension(state))
}

/// The module's state: running transcoders by stream name, and recent snapshots. Shared with the
/// WebSocket API (`mjpeg` messages).
#[derive(Default)]
pub struct MjpegState {
    transcoders: Mutex<HashMap<String, Transcoder>>,
    snapshots: Mutex<HashMap<SnapshotKey, (Instant, Bytes)>>,
}

impl MjpegState {
    fn transcoders(&self) -> MutexGuard<'_, HashMap<String, Transcoder>> {
        self.transcoders.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshots(&self) -> MutexGuard<'_, HashMap<SnapshotKey, (Instant, Bytes)>> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The newest JPEG of `stream`'s running transcoder, if it is younger than [`FRESH_JPEG`].
    fn fresh_transcoded(&self, stream: &str) -> Option<Bytes> {
        let latest = self.transcoders().get(stream)?.latest.clone();
        let guard = latest.lock().unwrap_or_else(|e| e.into_inner());
        guard.as_ref().filter(|(at, _)| at.elapsed() < FRESH_JPEG).map(|(_, jpeg)| jpeg.clone())
    }
}

/// One running H.264/H.265 → JPEG ffmpeg. `viewers` changes only under the map's lock, so that the
/// transcoder's decision to stop and a new viewer's decision to join never cross.
struct Transcoder {
    id: u64,
    track: Arc<Track>,
    viewers: usize,
    /// Woken when `viewers` drops to zero.
    idle: Arc<Notify>,
    /// The newest JPEG ffmpeg wrote, and when.
    latest: Arc<Mutex<Option<(Instant, Bytes)>>>,
}

impl Transcoder {
    /// A viewer of this transcoder. It starts with the newest JPEG (the track caches it) rather than
    /// waiting for the next one.
    fn viewer(&self, state: &Arc<MjpegState>, stream: &str) -> Viewer {
        Viewer {
            state: state.clone(),
            stream: stream.to_string(),
            transcoder_id: self.id,
            reader: TrackReader::new(self.track.clone(), "mjpeg", VIEWER_QUEUE, true),
        }
    }
}

fn peer(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

fn user_agent(request: &Request) -> String {
    request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// The reader's video slot and codec name.
fn video_track(reader: &Reader) -> Option<(usize, String)> {
    reader.tracks.iter().position(|t| t.track.kind == Kind::Video).map(|i| (i, reader.tracks[i].codec.name.clone()))
}

fn multipart_response(body: Body) -> Response {
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, header::HeaderValue::from_static(formats::mjpeg::CONTENT_TYPE));
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    response
}

async fn stream_mjpeg(
    State(app): State<Arc<App>>,
    Extension(state): Extension<Arc<MjpegState>>,
    request: Request,
) -> Response {
    let q = Query::from_uri(request.uri());
    match jpeg_frames(&app, &state, &q, peer(&request), &user_agent(&request)).await {
        Ok(frames) => {
            let parts = futures_util::StreamExt::map(frames, |jpeg| {
                Ok::<Bytes, std::io::Error>(formats::mjpeg::write_part(&jpeg))
            });
            multipart_response(Body::from_stream(parts))
        }
        Err(resp) => resp,
    }
}

/// A stream's video as JPEG images: passed through from a JPEG source, or from the stream's shared
/// transcoder. Used by `stream.mjpeg` and the WebSocket `mjpeg` message.
pub async fn jpeg_frames(
    app: &Arc<App>,
    state: &Arc<MjpegState>,
    q: &Query,
    peer: Option<SocketAddr>,
    user_agent: &str,
) -> Result<futures_util::stream::BoxStream<'static, Bytes>, Response> {
    let filters = filters(q, DEFAULT_FILTERS);
    let reader = subscribe(app, q, &filters, "mjpeg", peer, user_agent).await?;
    let Some((slot, codec_name)) = video_track(&reader) else {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "mjpeg: the stream has no video"));
    };
    match codec_name.as_str() {
        codec::JPEG => Ok(passthrough_frames(reader, slot)),
        codec::H264 | codec::H265 => match join_transcoder(app, state, reader, slot, &codec_name) {
            Ok(viewer) => Ok(viewer.frames()),
            Err(e) => Err(error(StatusCode::INTERNAL_SERVER_ERROR, e)),
        },
        other => Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("mjpeg: cannot convert {other} to JPEG"))),
    }
}

/// A JPEG source's frames. The replayed cache is skipped up to its newest frame so a new viewer starts
/// with the current picture, then every live frame follows.
fn passthrough_frames(reader: Reader, slot: usize) -> futures_util::stream::BoxStream<'static, Bytes> {
    let stream = futures_util::stream::unfold((reader, true), move |(mut reader, first)| async move {
        let mut frame = loop {
            let d = reader.queue.recv().await?;
            if d.slot == slot {
                break d.frame;
            }
        };
        if first {
            while let Ok(d) = reader.queue.try_recv() {
                if d.slot == slot {
                    frame = d.frame;
                }
            }
        }
        reader.shared.count_sent(1, frame.payload.len() as u64);
        Some((frame.payload.clone(), (reader, false)))
    });
    Box::pin(stream)
}

/// A viewer of a shared transcoder: its queue on the transcoder's JPEG track. Dropping it (the client
/// went away) releases the transcoder.
struct Viewer {
    state: Arc<MjpegState>,
    stream: String,
    transcoder_id: u64,
    reader: TrackReader,
}

impl Viewer {
    fn frames(self) -> futures_util::stream::BoxStream<'static, Bytes> {
        let stream = futures_util::stream::unfold(self, |mut viewer| async move {
            let frame = viewer.reader.recv().await?;
            viewer.reader.shared.count_sent(1, frame.payload.len() as u64);
            Some((frame.payload.clone(), viewer))
        });
        Box::pin(stream)
    }
}

impl Drop for Viewer {
    fn drop(&mut self) {
        let mut map = self.state.transcoders();
        if let Some(t) = map.get_mut(&self.stream).filter(|t| t.id == self.transcoder_id) {
            t.viewers = t.viewers.saturating_sub(1);
            if t.viewers == 0 {
                t.idle.notify_one();
            }
        }
    }
}

/// Joins the stream's transcoder, starting it (with `reader` as its input) when there is none.
fn join_transcoder(
    app: &Arc<App>,
    state: &Arc<MjpegState>,
    reader: Reader,
    slot: usize,
    codec_name: &str,
) -> Result<Viewer, String> {
    let stream = reader.stream_name().to_string();
    let mut map = state.transcoders();
    if let Some(t) = map.get_mut(&stream) {
        t.viewers += 1;
        let viewer = t.viewer(state, &stream);
        drop(map);
        // The running transcoder has its own input reader; this one is not needed.
        drop(reader);
        return Ok(viewer);
    }
    let input = if codec_name == codec::H265 { "hevc" } else { "h264" };
    let marker = format!("comment={TRANSCODER_MARKER}:{stream}");
    // Start-up delay: the input comes from the GOP cache, keyframe (with its parameter sets) first, so
    // the first packet tells ffmpeg all it needs: `-probesize 32` stops the stream analysis there
    // instead of after 5 s of input (the default `-analyzeduration`). No `-fflags nobuffer`: it drops
    // the packets read during that analysis, i.e. the keyframe, and decoding would wait for the next
    // one. `-flags low_delay` turns the decoder's frame threading (a frame of delay per thread) off.
    let argv: Vec<String> = [
        "ffmpeg",
        "-hide_banner",
        "-loglevel",
        "error",
        "-flags",
        "low_delay",
        "-probesize",
        "32",
        "-f",
        input,
        "-i",
        "pipe:0",
        "-an",
        "-c:v",
        "mjpeg",
        "-q:v",
        "5",
        "-pix_fmt",
        "yuvj420p",
        "-huffman",
        "default",
        "-fps_mode",
        "passthrough",
        "-metadata",
        &marker,
        "-f",
        "mjpeg",
        "pipe:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let label = format!("mjpeg transcoder {stream}");
    let child = OwnedChild::spawn(&argv, true, true, &label).map_err(|e| format!("mjpeg: stream {stream}: {e}"))?;
    let id = NEXT_TRANSCODER_ID.fetch_add(1, Ordering::Relaxed);
    // Every JPEG is a keyframe: the cache holds the newest one only.
    let track = Arc::new(Track::new(Kind::Video, Codec::new(codec::JPEG, 90000, 0, 26), formats::mjpeg::MAX_PART_SIZE));
    let transcoder =
        Transcoder { id, track, viewers: 1, idle: Arc::new(Notify::new()), latest: Arc::new(Mutex::new(None)) };
    let viewer = transcoder.viewer(state, &stream);
    let output = Output { track: transcoder.track.clone(), latest: transcoder.latest.clone() };
    let idle = transcoder.idle.clone();
    map.insert(stream.clone(), transcoder);
    drop(map);
    reader.shared.set_protocol("mjpeg+ffmpeg");
    tracing::info!(stream = %stream, pid = ?child.pid(), "mjpeg transcoder started");
    tokio::spawn(run_transcoder(app.clone(), state.clone(), stream, id, child, reader, slot, output, idle));
    Ok(viewer)
}

/// Feeds the hub's frames to ffmpeg as Annex B until the reader or the pipe ends.
async fn feed(mut reader: Reader, slot: usize, mut stdin: tokio::process::ChildStdin) {
    while let Some(d) = reader.queue.recv().await {
        if d.slot != slot {
            continue;
        }
        let annexb = media::h264::avcc_to_annexb(&d.frame.payload);
        if stdin.write_all(&annexb).await.is_err() {
            break;
        }
        reader.shared.count_sent(1, annexb.len() as u64);
    }
}

/// Where a transcoder's JPEGs go.
struct Output {
    track: Arc<Track>,
    latest: Arc<Mutex<Option<(Instant, Bytes)>>>,
}

#[allow(clippy::too_many_arguments)]
async fn run_transcoder(
    app: Arc<App>,
    state: Arc<MjpegState>,
    stream: String,
    id: u64,
    mut child: OwnedChild,
    reader: Reader,
    slot: usize,
    output: Output,
    idle: Arc<Notify>,
) {
    let Output { track, latest } = output;
    let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return;
    };
    // Writing and reading run apart: ffmpeg blocked on a full stdout must never block its stdin.
    let writer = tokio::spawn(feed(reader, slot, stdin));
    let mut splitter = formats::mjpeg::JpegSplitter::new();
    let mut buf = vec![0u8; 64 * 1024];
    let epoch = Instant::now();
    let mut stop_at: Option<Instant> = None;
    let why = loop {
        let linger = async move {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            n = stdout.read(&mut buf) => match n {
                Ok(0) | Err(_) => break "ffmpeg output ended",
                Ok(n) => {
                    if let Err(e) = splitter.push(&buf[..n]) {
                        tracing::debug!(stream = %stream, "mjpeg transcoder output: {e}");
                    }
                    while let Some(jpeg) = splitter.poll() {
                        *latest.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), jpeg.clone()));
                        let ticks = epoch.elapsed().as_micros() * 90 / 1000;
                        track.push(Frame { timestamp: ticks as u32, keyframe: true, payload: jpeg, rtp: Vec::new() });
                    }
                }
            },
            _ = idle.notified() => {
                let viewers = state.transcoders().get(&stream).filter(|t| t.id == id).map_or(0, |t| t.viewers);
                stop_at = (viewers == 0).then(|| Instant::now() + TRANSCODE_LINGER);
            }
            _ = linger => {
                // Decided under the lock a joining viewer takes: it either joined before (keep
                // running) or finds no transcoder and starts a new one.
                let mut map = state.transcoders();
                match map.get(&stream) {
                    Some(t) if t.id == id && t.viewers > 0 => stop_at = None,
                    Some(t) if t.id == id => {
                        map.remove(&stream);
                        break "no viewers";
                    }
                    _ => break "no viewers",
                }
            }
            _ = app.shutdown.cancelled() => break "shutdown",
        }
    };
    {
        let mut map = state.transcoders();
        if map.get(&stream).is_some_and(|t| t.id == id) {
            map.remove(&stream);
        }
    }
    // Viewers still attached (ffmpeg died) see their stream end.
    track.close();
    writer.abort();
    let tail = child.stderr_tail();
    child.stop(libc::SIGKILL, Duration::ZERO).await;
    if why == "ffmpeg output ended" {
        tracing::warn!(stream = %stream, "mjpeg transcoder stopped: {why}; stderr: {tail}");
    } else {
        tracing::info!(stream = %stream, "mjpeg transcoder stopped: {why}");
    }
}

/// What a snapshot is asked to be.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
struct SnapshotParams {
    width: Option<u32>,
    height: Option<u32>,
    /// Clockwise degrees: 90, 180 or 270.
    rotate: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct SnapshotKey {
    src: String,
    params: SnapshotParams,
}

impl SnapshotParams {
    fn from_query(q: &Query) -> Result<SnapshotParams, String> {
        let size = |keys: [&str; 2]| -> Result<Option<u32>, String> {
            let Some(v) = keys.iter().find_map(|k| q.get(k)).filter(|v| !v.is_empty()) else { return Ok(None) };
            match v.parse::<u32>() {
                Ok(n) if (1..=8192).contains(&n) => Ok(Some(n)),
                _ => Err(format!("{}={v:?}: expected a size from 1 to 8192", keys[0])),
            }
        };
        let rotate = match q.get("rotate").unwrap_or("") {
            "" | "0" => 0,
            "90" => 90,
            "180" => 180,
            "270" | "-90" => 270,
            other => return Err(format!("rotate={other:?}: expected 90, 180, 270 or -90")),
        };
        Ok(SnapshotParams { width: size(["width", "w"])?, height: size(["height", "h"])?, rotate })
    }

    fn is_identity(&self) -> bool {
        *self == SnapshotParams::default()
    }

    /// The ffmpeg `-vf` chain: scale first (sizes refer to the source picture), then rotate.
    fn filter(&self) -> Option<String> {
        let mut f = Vec::new();
        match (self.width, self.height) {
            (Some(w), Some(h)) => f.push(format!("scale={w}:{h}")),
            (Some(w), None) => f.push(format!("scale={w}:-1")),
            (None, Some(h)) => f.push(format!("scale=-1:{h}")),
            (None, None) => {}
        }
        match self.rotate {
            90 => f.push("transpose=1".into()),
            180 => f.push("transpose=1,transpose=1".into()),
            270 => f.push("transpose=2".into()),
            _ => {}
        }
        (!f.is_empty()).then(|| f.join(","))
    }
}

/// `cache=` values: `5s`, `500ms`, `2m`, or plain seconds.
fn parse_cache(v: &str) -> Option<Duration> {
    let v = v.trim();
    let (num, unit) = v.find(|c: char| c.is_ascii_alphabetic()).map_or((v, "s"), |i| v.split_at(i));
    let n: f64 = num.trim().parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs.min(86400.0)))
}

fn jpeg_response(jpeg: Bytes) -> Response {
    ([(header::CONTENT_TYPE, "image/jpeg"), (header::CACHE_CONTROL, "no-cache")], jpeg).into_response()
}

async fn frame_jpeg(
    State(app): State<Arc<App>>,
    Extension(state): Extension<Arc<MjpegState>>,
    request: Request,
) -> Response {
    let q = Query::from_uri(request.uri());
    let params = match SnapshotParams::from_query(&q) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    let key = SnapshotKey { src: q.get("src").unwrap_or("").to_string(), params: params.clone() };
    if let Some(ttl) = q.get("cache").and_then(parse_cache) {
        let cached = state.snapshots().get(&key).filter(|(at, _)| at.elapsed() < ttl).map(|(_, j)| j.clone());
        if let Some(jpeg) = cached {
            return jpeg_response(jpeg);
        }
    }
    if params.is_identity() {
        if let Some(jpeg) = state.fresh_transcoded(q.get("src").unwrap_or("")) {
            return jpeg_response(jpeg);
        }
    }
    let filters = filters(&q, DEFAULT_FILTERS);
    let mut reader = match subscribe(&app, &q, &filters, "jpeg", peer(&request), &user_agent(&request)).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let Some((slot, codec_name)) = video_track(&reader) else {
        return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, "jpeg: the stream has no video");
    };
    let wait = tokio::time::timeout(SNAPSHOT_TIMEOUT, async {
        let mut latest = None;
        // JPEG: the newest cached frame; H.264/H.265: the GOP cache's keyframe.
        while let Some(d) = reader.queue.recv().await {
            if d.slot == slot && d.frame.keyframe {
                latest = Some(d.frame);
                break;
            }
        }
        if codec_name == codec::JPEG {
            while let Ok(d) = reader.queue.try_recv() {
                if d.slot == slot {
                    latest = Some(d.frame);
                }
            }
        }
        latest
    });
    let Ok(Some(frame)) = wait.await else {
        return error(
            StatusCode::GATEWAY_TIMEOUT,
            format!("jpeg: no keyframe within {} s", SNAPSHOT_TIMEOUT.as_secs()),
        );
    };
    let stream = reader.stream_name().to_string();
    drop(reader);
    let jpeg = match codec_name.as_str() {
        codec::JPEG if params.is_identity() => Ok(frame.payload.clone()),
        codec::JPEG => transcode_one("mjpeg", frame.payload.to_vec(), &params, &stream).await,
        codec::H264 => transcode_one("h264", media::h264::avcc_to_annexb(&frame.payload), &params, &stream).await,
        codec::H265 => transcode_one("hevc", media::h264::avcc_to_annexb(&frame.payload), &params, &stream).await,
        other => Err(format!("cannot convert {other} to JPEG")),
    };
    match jpeg {
        Ok(jpeg) => {
            let mut cache = state.snapshots();
            if cache.len() >= MAX_SNAPSHOTS && !cache.contains_key(&key) {
                cache.retain(|_, (at, _)| at.elapsed() < Duration::from_secs(60));
                if cache.len() >= MAX_SNAPSHOTS {
                    if let Some(oldest) = cache.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                        cache.remove(&oldest);
                    }
                }
            }
            cache.insert(key, (Instant::now(), jpeg.clone()));
            drop(cache);
            jpeg_response(jpeg)
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("jpeg: stream {stream}: {e}")),
    }
}

/// Decodes one picture (`input` is an ffmpeg demuxer name) to one JPEG with a one-shot ffmpeg.
async fn transcode_one(input: &str, data: Vec<u8>, params: &SnapshotParams, stream: &str) -> Result<Bytes, String> {
    let mut argv: Vec<String> =
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-f", input, "-i", "pipe:0", "-an", "-frames:v", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect();
    if let Some(vf) = params.filter() {
        argv.extend(["-vf".to_string(), vf]);
    }
    argv.extend(
        ["-c:v", "mjpeg", "-q:v", "3", "-pix_fmt", "yuvj420p", "-f", "mjpeg", "pipe:1"].iter().map(|s| s.to_string()),
    );
    let mut child = OwnedChild::spawn(&argv, true, true, &format!("jpeg snapshot {stream}"))?;
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Err("ffmpeg pipes missing".into());
    };
    let write = async move {
        let _ = stdin.write_all(&data).await;
        // Dropping stdin ends ffmpeg's input.
    };
    let read = async move {
        let mut out = Vec::new();
        let limit = formats::mjpeg::MAX_PART_SIZE as u64 + 1;
        let r = stdout.take(limit).read_to_end(&mut out).await;
        r.map(|_| out)
    };
    let done = tokio::time::timeout(SNAPSHOT_TIMEOUT, async { tokio::join!(write, read).1 }).await;
    let result = match done {
        Err(_) => Err("ffmpeg did not answer in time".to_string()),
        Ok(Err(e)) => Err(format!("reading ffmpeg output: {e}")),
        Ok(Ok(out)) if out.len() > formats::mjpeg::MAX_PART_SIZE => Err("ffmpeg output too large".to_string()),
        Ok(Ok(out)) if out.starts_with(&[0xff, 0xd8]) => Ok(Bytes::from(out)),
        Ok(Ok(_)) => Err(format!("ffmpeg made no picture: {}", child.stderr_tail())),
    };
    child.stop(libc::SIGKILL, Duration::ZERO).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(s: &str) -> Query {
        Query(media::query::query_pairs(s).collect())
    }

    #[test]
    fn snapshot_params() {
        let p = SnapshotParams::from_query(&query("src=a&w=320&rotate=-90")).unwrap();
        assert_eq!(p, SnapshotParams { width: Some(320), height: None, rotate: 270 });
        assert_eq!(p.filter().unwrap(), "scale=320:-1,transpose=2");
        assert!(SnapshotParams::from_query(&query("src=a")).unwrap().is_identity());
        assert!(SnapshotParams::from_query(&query("width=0")).is_err());
        assert!(SnapshotParams::from_query(&query("width=1;rm")).is_err());
        assert!(SnapshotParams::from_query(&query("rotate=45")).is_err());
    }

    #[test]
    fn cache_durations() {
        assert_eq!(parse_cache("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_cache("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_cache("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_cache("1m"), Some(Duration::from_secs(60)));
        assert_eq!(parse_cache("0"), None);
        assert_eq!(parse_cache("x"), None);
        assert_eq!(parse_cache("5d"), None);
    }
}
