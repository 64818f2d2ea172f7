//! MJPEG and JPEG outputs (go2rtc's `mjpeg` module):
//!
//! - `GET /api/stream.mjpeg?src=`: `multipart/x-mixed-replace`. A JPEG source is passed through; an
//!   H.264/H.265 source is transcoded by one ffmpeg per stream, shared by every viewer of that stream.
//!   The transcoder is a source like any other: the producer of a derived stream `<stream>#mjpeg`
//!   (one JPEG video track, listed in `/api/streams`) that the hub starts with its first viewer, stops
//!   `hub.linger` after the last one leaves, and retries when ffmpeg fails. The derived stream is
//!   removed from the table when its transcoder stops for want of viewers.
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
use media::{codec, Direction, Frame, Kind, Media, MediaFilter};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::api::{error, Query};
use super::http_stream::{filters, subscribe};
use crate::app::App;
use crate::hub::{BoxFuture, Hub, HubError, Producer, ProducerState, Reader, Source, SourceError, Track};
use crate::sources::exec::OwnedChild;

/// Marker in the transcoder's command line (`-metadata comment=camrelay-mjpeg:<stream>`), for `ps`.
pub const TRANSCODER_MARKER: &str = "camrelay-mjpeg";
/// The derived stream a transcoder feeds is `<stream>` followed by this.
pub const DERIVED_SUFFIX: &str = "#mjpeg";
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
/// RTP payload size of the transcoder's JPEGs (for RTSP/WebRTC readers of the derived stream).
const MTU: usize = 1400;

pub fn routes(state: Arc<MjpegState>) -> Router<Arc<App>> {
    Router::new()
        .route("/api/stream.mjpeg", get(stream_mjpeg))
        .route("/api/frame.jpeg", get(frame_jpeg))
        .layer(Extension(state))
}

/// The module's state: recent snapshots. Shared with the WebSocket API (`mjpeg` messages). The
/// transcoders live in the hub, as the producers of derived streams.
#[derive(Default)]
pub struct MjpegState {
    snapshots: Mutex<HashMap<SnapshotKey, (Instant, Bytes)>>,
}

impl MjpegState {
    fn snapshots(&self) -> MutexGuard<'_, HashMap<SnapshotKey, (Instant, Bytes)>> {
        self.snapshots.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The name of the stream `stream`'s transcoder feeds.
pub fn derived_name(stream: &str) -> String {
    format!("{stream}{DERIVED_SUFFIX}")
}

/// The newest JPEG of `stream`'s running transcoder, if it is younger than [`FRESH_JPEG`].
fn fresh_transcoded(hub: &Hub, stream: &str) -> Option<Bytes> {
    let derived = hub.get(&derived_name(stream))?;
    let producer = derived.producers().into_iter().next()?;
    if producer.state() != ProducerState::Online {
        return None;
    }
    let (at, frame) = producer.tracks().first()?.newest_cached()?;
    (at.elapsed() < FRESH_JPEG).then(|| frame.payload.clone())
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
/// transcoder (its derived stream). Used by `stream.mjpeg` and the WebSocket `mjpeg` message.
pub async fn jpeg_frames(
    app: &Arc<App>,
    _state: &Arc<MjpegState>,
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
        codec::JPEG => Ok(passthrough_frames(reader, slot, None)),
        codec::H264 | codec::H265 => {
            let viewer = join_transcoder(app, reader.stream_name(), peer, user_agent).await?;
            // The source reader stays until the first JPEG: the source keeps running for the
            // transcoder even with `hub.linger: 0`.
            Ok(passthrough_frames(viewer, 0, Some(reader)))
        }
        other => Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("mjpeg: cannot convert {other} to JPEG"))),
    }
}

/// A viewer of `stream`'s transcoder: a reader of its derived stream (created, and the transcoder
/// started, when there is none).
async fn join_transcoder(
    app: &Arc<App>,
    stream: &str,
    peer: Option<SocketAddr>,
    user_agent: &str,
) -> Result<Reader, Response> {
    let jpeg = [MediaFilter { kind: Kind::Video, codecs: vec![codec::JPEG.to_string()], all: false }];
    let mut last_error = String::new();
    // A derived stream removed between its lookup and the subscription (its transcoder had just
    // stopped) is looked up again: once subscribed, it stays.
    for _ in 0..3 {
        let derived = transcoder_stream(&app.hub, stream);
        let shared = app.hub.new_reader_shared("mjpeg", peer.map(|p| p.to_string()).unwrap_or_default());
        *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) = user_agent.to_string();
        match app.hub.subscribe_with_queue(&derived.name, &jpeg, shared, true, VIEWER_QUEUE).await {
            Ok(viewer) if app.hub.get(&derived.name).is_some_and(|s| Arc::ptr_eq(&s, &derived)) => return Ok(viewer),
            Ok(_) => last_error = "the transcoder stopped".into(),
            Err(e) => last_error = e.to_string(),
        }
    }
    Err(error(StatusCode::INTERNAL_SERVER_ERROR, format!("mjpeg: {last_error}")))
}

/// A JPEG stream's frames. The replayed cache is skipped up to its newest frame so a new viewer starts
/// with the current picture, then every live frame follows. `hold` (a reader of the transcoder's
/// source) is dropped with the first frame.
fn passthrough_frames(
    reader: Reader,
    slot: usize,
    hold: Option<Reader>,
) -> futures_util::stream::BoxStream<'static, Bytes> {
    let stream = futures_util::stream::unfold((reader, hold, true), move |(mut reader, hold, first)| async move {
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
        drop(hold);
        reader.shared.count_sent(1, frame.payload.len() as u64);
        Some((frame.payload.clone(), (reader, None, false)))
    });
    Box::pin(stream)
}

/// The derived stream of `stream`'s transcoder, created on first use.
fn transcoder_stream(hub: &Arc<Hub>, stream: &str) -> Arc<crate::hub::Stream> {
    hub.derived_stream(&derived_name(stream), |settings| {
        let source = Arc::new(Transcoder { stream: stream.to_string(), hub: Arc::downgrade(hub) });
        // The URL shown in the API: go2rtc's spelling of the same conversion.
        let url = format!("ffmpeg:{stream}#video=mjpeg");
        Producer::pulled(&url, source, settings.linger, settings.gop_cache_bytes)
    })
}

/// The source of a derived `<stream>#mjpeg` stream: an ffmpeg that decodes `stream`'s H.264/H.265
/// video (read from the hub like any reader, GOP cache first) and encodes JPEGs.
struct Transcoder {
    stream: String,
    hub: Weak<Hub>,
}

impl Source for Transcoder {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        let medias = vec![Media::new(Kind::Video, Direction::RecvOnly, vec![formats::bytestream::jpeg_codec()])];
        Box::pin(async move { Ok(medias) })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let result = self.transcode(tracks, &stop).await;
            if stop.is_cancelled() {
                Hub::remove_derived_if_unused(&self.hub, &derived_name(&self.stream));
            }
            result.map_err(SourceError::from)
        })
    }
}

impl Transcoder {
    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("mjpeg: stream {}: {what}", self.stream)
    }

    /// Runs one ffmpeg until `stop` (`Ok`) or until it or its input ends.
    async fn transcode(&self, tracks: Vec<Arc<Track>>, stop: &CancellationToken) -> Result<(), String> {
        let Some(track) = tracks.into_iter().next() else { return Err(self.err("no track")) };
        let reader = {
            let Some(hub) = self.hub.upgrade() else { return Ok(()) };
            let shared = hub.new_reader_shared("mjpeg+ffmpeg", String::new());
            let video = [MediaFilter {
                kind: Kind::Video,
                codecs: vec![codec::H264.to_string(), codec::H265.to_string()],
                all: false,
            }];
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = hub.subscribe(&self.stream, &video, shared, true) => match r {
                    Ok(reader) => reader,
                    Err(HubError::NotFound(_)) => {
                        // The source stream was removed: so is the derived one, and its viewers end.
                        hub.remove_stream(&derived_name(&self.stream));
                        return Err(self.err("the stream was removed"));
                    }
                    Err(e) => return Err(self.err(e)),
                },
            }
        };
        let Some((slot, codec_name)) = video_track(&reader) else { return Err(self.err("no video")) };
        let input = if codec_name == codec::H265 { "hevc" } else { "h264" };
        let marker = format!("comment={TRANSCODER_MARKER}:{}", self.stream);
        // Start-up delay: the input comes from the GOP cache, keyframe (with its parameter sets) first,
        // so the first packet tells ffmpeg all it needs: `-probesize 32` stops the stream analysis
        // there instead of after 5 s of input (the default `-analyzeduration`). No `-fflags nobuffer`:
        // it drops the packets read during that analysis, i.e. the keyframe, and decoding would wait
        // for the next one. `-flags low_delay` turns the decoder's frame threading (a frame of delay
        // per thread) off.
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
        let label = format!("mjpeg transcoder {}", self.stream);
        let mut child = OwnedChild::spawn(&argv, true, true, &label).map_err(|e| self.err(e))?;
        tracing::info!(stream = %self.stream, pid = ?child.pid(), "mjpeg transcoder started");
        let (Some(stdin), Some(mut stdout)) = (child.stdin.take(), child.stdout.take()) else {
            child.stop(libc::SIGKILL, Duration::ZERO).await;
            return Err(self.err("ffmpeg pipes missing"));
        };
        // Writing and reading run apart: ffmpeg blocked on a full stdout must never block its stdin.
        let writer = tokio::spawn(feed(reader, slot, stdin));
        let mut splitter = formats::mjpeg::JpegSplitter::new();
        let mut packetizer = rtp::packetize::packetizer_for(&track.codec, MTU);
        let mut buf = vec![0u8; 64 * 1024];
        let epoch = Instant::now();
        let result = loop {
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                n = stdout.read(&mut buf) => match n {
                    Ok(0) | Err(_) => {
                        let how = tokio::time::timeout(Duration::from_secs(1), child.wait_exit()).await;
                        break Err(self.err(match how {
                            Ok(how) => format!("ffmpeg {how}"),
                            Err(_) => format!("ffmpeg output ended; stderr: {}", child.stderr_tail()),
                        }));
                    }
                    Ok(n) => {
                        if let Err(e) = splitter.push(&buf[..n]) {
                            tracing::debug!(stream = %self.stream, "mjpeg transcoder output: {e}");
                        }
                        while let Some(jpeg) = splitter.poll() {
                            let ticks = epoch.elapsed().as_micros() * 90 / 1000;
                            let mut frame = Frame { timestamp: ticks as u32, keyframe: true, payload: jpeg, rtp: Vec::new() };
                            if let Some(p) = packetizer.as_mut() {
                                let mut packets = Vec::new();
                                p.packetize(&frame, &mut packets);
                                frame.rtp = packets;
                            }
                            track.push(frame);
                        }
                    }
                },
            }
        };
        writer.abort();
        child.stop(libc::SIGKILL, Duration::ZERO).await;
        match &result {
            Ok(()) => tracing::info!(stream = %self.stream, "mjpeg transcoder stopped"),
            Err(e) => tracing::warn!(stream = %self.stream, "mjpeg transcoder stopped: {e}"),
        }
        result
    }
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
        if let Some(jpeg) = fresh_transcoded(&app.hub, q.get("src").unwrap_or("")) {
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
