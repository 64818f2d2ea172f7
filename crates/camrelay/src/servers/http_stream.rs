//! Progressive HTTP outputs: `GET /api/stream.mp4`, `/api/stream.ts`, `/api/stream.flv`,
//! `/api/stream.aac` and `/api/frame.mp4`. Each reads a stream through the hub (its own bounded queue,
//! starting at the GOP cache's keyframe) and muxes with the sans-IO `formats` crate (`formats::mux`):
//! this module only moves the bytes.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use formats::mux::{AdtsStream, FlvStream, TsStream};
use media::{Kind, MediaFilter};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use super::api::{error, Query};
use crate::app::App;
use crate::hub::{HubError, Reader};

/// The container writers moved to `formats::mux`; re-exported for the other outputs.
pub use formats::mux::{Mp4Muxer, Muxer};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/stream.mp4", get(stream_mp4))
        .route("/api/stream.ts", get(stream_ts))
        .route("/api/stream.flv", get(stream_flv))
        .route("/api/stream.aac", get(stream_aac))
        .route("/api/frame.mp4", get(frame_mp4))
}

/// The reader's filters: the query's, else `default`.
pub fn filters(q: &Query, default: &str) -> Vec<MediaFilter> {
    let f = media::query::parse_filters(q.0.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    if f.is_empty() {
        media::query::parse_query_string(default)
    } else {
        f
    }
}

/// Subscribes an HTTP reader to `src=` with `filters`; errors become JSON responses.
pub async fn subscribe(
    app: &App,
    q: &Query,
    filters: &[MediaFilter],
    protocol: &str,
    peer: Option<SocketAddr>,
    user_agent: &str,
) -> Result<Reader, Response> {
    let Some(src) = q.get("src").filter(|s| !s.is_empty()) else {
        return Err(error(StatusCode::BAD_REQUEST, "missing src= (the stream name)"));
    };
    let shared = app.hub.new_reader_shared(protocol, peer.map(|p| p.to_string()).unwrap_or_default());
    *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) = user_agent.to_string();
    match app.hub.subscribe(src, filters, shared, true).await {
        Ok(r) => Ok(r),
        Err(HubError::NotFound(n)) => Err(error(StatusCode::NOT_FOUND, format!("stream not found: {n}"))),
        Err(e @ HubError::TooManyReaders { .. }) => Err(error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())),
        Err(e) => Err(error(StatusCode::NOT_FOUND, format!("stream {src}: {e}"))),
    }
}

/// Codecs of the reader's tracks, in slot order, for a muxer.
pub fn reader_codecs(reader: &Reader) -> Vec<(Kind, media::Codec)> {
    reader.tracks.iter().map(|t| (t.track.kind, t.codec.clone())).collect()
}

/// Streams muxed bytes as the response body until the reader's tracks end, the client goes away
/// (the body is dropped, and with it the reader), or `deadline` passes.
pub fn body_stream(mut reader: Reader, mut muxer: impl Muxer, deadline: Option<tokio::time::Instant>) -> Body {
    let mut pending: std::collections::VecDeque<Bytes> = muxer.header().into_iter().collect();
    let stream = futures_util::stream::poll_fn(move |cx| {
        use std::task::Poll;
        loop {
            if let Some(b) = pending.pop_front() {
                if b.is_empty() {
                    continue;
                }
                let n = b.len() as u64;
                reader.shared.count_sent(1, n);
                return Poll::Ready(Some(Ok::<Bytes, std::io::Error>(b)));
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                return Poll::Ready(None);
            }
            match reader.queue.poll_recv(cx) {
                Poll::Ready(Some(d)) => match muxer.push(d.slot, &d.frame) {
                    Ok(out) => pending.extend(out),
                    Err(e) => tracing::debug!(stream = %reader.stream_name(), "mux: {e}"),
                },
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            }
        }
    });
    Body::from_stream(stream)
}

fn user_agent(request: &Request) -> String {
    request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

fn peer(request: &Request) -> Option<SocketAddr> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0)
}

/// `duration=N` (seconds) ends the stream after N seconds.
fn deadline(q: &Query) -> Option<tokio::time::Instant> {
    let secs: f64 = q.get("duration")?.parse().ok()?;
    (secs > 0.0).then(|| tokio::time::Instant::now() + Duration::from_secs_f64(secs))
}

async fn progressive(
    app: Arc<App>,
    request: Request,
    protocol: &str,
    default_filters: &str,
    content_type: &str,
    make: impl FnOnce(&[(Kind, media::Codec)]) -> Result<Box<dyn Muxer>, formats::FormatError>,
) -> Response {
    let q = Query::from_uri(request.uri());
    let filters = filters(&q, default_filters);
    let reader = match subscribe(&app, &q, &filters, protocol, peer(&request), &user_agent(&request)).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let codecs = reader_codecs(&reader);
    let muxer = match make(&codecs) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{protocol}: {e}")),
    };
    let mut response = body_stream(reader, muxer, deadline(&q)).into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        content_type.parse().unwrap_or(header::HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
    if let Some(name) = q.get("filename").filter(|n| !n.is_empty() && !n.contains(['"', '\r', '\n'])) {
        if let Ok(v) = format!("attachment; filename=\"{name}\"").parse() {
            h.insert(header::CONTENT_DISPOSITION, v);
        }
    }
    response
}

/// `mp4` filters when the query has none: H.264/H.265 and AAC (`mp4=flac`, `mp4=all` widen it).
const MP4_DEFAULT: &str = "mp4";

async fn stream_mp4(State(app): State<Arc<App>>, request: Request) -> Response {
    progressive(app, request, "mp4", MP4_DEFAULT, "video/mp4", |c| Ok(Box::new(Mp4Muxer::following(c)?))).await
}

async fn stream_ts(State(app): State<Arc<App>>, request: Request) -> Response {
    progressive(app, request, "ts", "video=h264,h265&audio=aac", "video/mp2t", |c| Ok(Box::new(TsStream::new(c)?)))
        .await
}

async fn stream_flv(State(app): State<Arc<App>>, request: Request) -> Response {
    progressive(app, request, "flv", "video=h264,h265,av1,vp9&audio=aac,opus,pcma,pcmu", "video/x-flv", |c| {
        Ok(Box::new(FlvStream::new(c)?))
    })
    .await
}

async fn stream_aac(State(app): State<Arc<App>>, request: Request) -> Response {
    progressive(app, request, "aac", "audio=aac", formats::adts::CONTENT_TYPE, |c| Ok(Box::new(AdtsStream::new(c)?)))
        .await
}

/// `GET /api/frame.mp4?src=`: a one-frame MP4 of the latest keyframe (from the GOP cache).
async fn frame_mp4(State(app): State<Arc<App>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let filters = vec![MediaFilter { kind: Kind::Video, codecs: vec!["H264".into(), "H265".into()], all: false }];
    let mut reader = match subscribe(&app, &q, &filters, "mp4", peer(&request), &user_agent(&request)).await {
        Ok(r) => r,
        Err(resp) => return resp,
    };
    let codecs = reader_codecs(&reader);
    let mut muxer = match formats::fmp4::Fmp4Muxer::with_policy(&codecs, formats::fmp4::FragmentPolicy::PerFrame) {
        Ok(m) => m,
        Err(e) => return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("mp4: {e}")),
    };
    let wait = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(d) = reader.queue.recv().await {
            if d.frame.keyframe {
                return Some(d);
            }
        }
        None
    });
    let Ok(Some(d)) = wait.await else {
        return error(StatusCode::GATEWAY_TIMEOUT, "no keyframe within 10 s");
    };
    if let Err(e) = muxer.push(d.slot, &d.frame) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("mp4: {e}"));
    }
    muxer.flush();
    let (Some(init), Some(fragment)) = (muxer.init_segment(), muxer.fragment()) else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, "mp4: no parameter sets in the keyframe");
    };
    let mut body = init.to_vec();
    body.extend_from_slice(&fragment);
    ([(header::CONTENT_TYPE, "video/mp4")], body).into_response()
}
