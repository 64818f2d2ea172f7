//! HTTP ingest (go2rtc's "Incoming sources" over HTTP): a client POSTs a live stream into a stream.
//!
//! - `POST /api/stream.ts?dst=NAME`: MPEG-TS (H.264 / H.265 / AAC).
//! - `POST /api/stream.flv?dst=NAME`: FLV (H.264 / H.265 / AAC / G.711).
//! - `POST /api/stream.mjpeg?dst=NAME`: MJPEG, `multipart/x-mixed-replace` (boundary from the
//!   `Content-Type`, or from the body's first line) or raw concatenated JPEG images.
//! - `POST /api/stream?dst=NAME`: any of those (and H.264 / H.265 Annex B), from the `Content-Type`
//!   when it says, else detected from the first bytes.
//!
//! The body is streamed (usually chunked, as ffmpeg sends it), demuxed by the shared
//! [`StreamDemuxer`] and pushed into the stream as a pushed producer (`http+ts`, `http+flv`...) that
//! is removed when the upload ends. The stream must exist unless `rtsp.allow_any_publish` (as RTSP
//! publishing). The response is sent when the upload ends: `200 {"stream", "format", "frames",
//! "bytes"}`, or an error JSON: `400` for a body that yields no track within 5 MiB / 10 s (naming the
//! problem), `415` for a body in another format than the endpoint's, `404` for an unknown stream (`409`/`503` when
//! the stream or the server has as many publishers as it takes, see `hub::publish`).

use axum::body::{Body, BodyDataStream};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use formats::sniff::{self, Format};
use futures_util::StreamExt;
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::time::Instant;

use crate::app::App;
use crate::hub::PublishRequest;
use crate::secrets::mask_url;
use crate::servers::api::{error, Query};
use crate::servers::publish_refused;
use crate::sources::bytestream::{
    hint_from_content_type, probe, ChunkSource, FramePump, Hint, ProbeError, StreamDemuxer, READ_TIMEOUT,
};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/stream.ts", post(|s: State<Arc<App>>, r: Request| ingest(s, r, Endpoint::Ts)))
        .route("/api/stream.flv", post(|s: State<Arc<App>>, r: Request| ingest(s, r, Endpoint::Flv)))
        .route("/api/stream.mjpeg", post(|s: State<Arc<App>>, r: Request| ingest(s, r, Endpoint::Mjpeg)))
        .route("/api/stream", post(|s: State<Arc<App>>, r: Request| ingest(s, r, Endpoint::Auto)))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    Ts,
    Flv,
    Mjpeg,
    Auto,
}

impl Endpoint {
    fn name(self) -> &'static str {
        match self {
            Endpoint::Ts => "MPEG-TS",
            Endpoint::Flv => "FLV",
            Endpoint::Mjpeg => "MJPEG",
            Endpoint::Auto => "a stream",
        }
    }

    /// Whether bytes sniffed as `f` may be posted here.
    fn accepts(self, f: Format) -> bool {
        match self {
            Endpoint::Ts => f == Format::MpegTs,
            Endpoint::Flv => f == Format::Flv,
            Endpoint::Mjpeg => matches!(f, Format::Multipart | Format::Jpeg),
            Endpoint::Auto => f != Format::Mp4,
        }
    }
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::MpegTs => "MPEG-TS",
        Format::Flv => "FLV",
        Format::Mp4 => "MP4",
        Format::Multipart => "MJPEG multipart",
        Format::Jpeg => "JPEG",
        Format::H264 => "H.264 Annex B",
        Format::H265 => "H.265 Annex B",
    }
}

fn endpoint_for(f: Format) -> &'static str {
    match f {
        Format::MpegTs => "/api/stream.ts",
        Format::Flv => "/api/stream.flv",
        Format::Multipart | Format::Jpeg => "/api/stream.mjpeg",
        Format::Mp4 | Format::H264 | Format::H265 => "/api/stream",
    }
}

/// The request body as chunks, with the bytes read for sniffing put back in front. A client that
/// sends nothing for [`READ_TIMEOUT`] has failed.
struct Upload {
    front: Option<Bytes>,
    body: BodyDataStream,
}

impl ChunkSource for Upload {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        if let Some(b) = self.front.take() {
            return Ok(Some(b));
        }
        loop {
            let next = tokio::time::timeout(READ_TIMEOUT, self.body.next())
                .await
                .map_err(|_| format!("the upload sent no data for {} s", READ_TIMEOUT.as_secs()))?;
            match next {
                None => return Ok(None),
                Some(Err(e)) => return Err(format!("reading the request body: {e}")),
                Some(Ok(b)) if b.is_empty() => continue,
                Some(Ok(b)) => return Ok(Some(b)),
            }
        }
    }
}

impl Upload {
    /// Reads up to `sniff::PREFIX_LEN` bytes (or to the end) and puts them back.
    async fn peek_prefix(&mut self) -> Result<Bytes, String> {
        let mut prefix = Vec::new();
        while prefix.len() < sniff::PREFIX_LEN {
            match self.next_chunk().await? {
                Some(b) => prefix.extend_from_slice(&b),
                None => break,
            }
        }
        let prefix = Bytes::from(prefix);
        if !prefix.is_empty() {
            self.front = Some(prefix.clone());
        }
        Ok(prefix)
    }
}

async fn ingest(State(app): State<Arc<App>>, req: Request, endpoint: Endpoint) -> Response {
    let query = Query::from_uri(req.uri());
    let Some(dst) = query.get("dst").filter(|d| !d.is_empty()).map(str::to_string) else {
        return error(StatusCode::BAD_REQUEST, "missing dst: the stream to publish into (?dst=NAME)");
    };
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.to_string()).unwrap_or_default();
    let content_type = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let allow_create = app.config().rtsp.allow_any_publish;
    // Refused before the body is read; the stream is created (if allowed) only once the body parses.
    if let Err(e) = app.hub.check_publish(&dst, allow_create) {
        return publish_refused(e);
    }
    let url = mask_url(&format!("http://{peer}{}", req.uri()));

    let mut upload = Upload { front: None, body: Body::into_data_stream(req.into_body()) };
    let prefix = match upload.peek_prefix().await {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if prefix.is_empty() {
        return error(StatusCode::BAD_REQUEST, format!("empty body: POST {} data", endpoint.name()));
    }
    if let Some(found) = sniff::detect(&prefix) {
        if !endpoint.accepts(found) {
            let msg = if found == Format::Mp4 {
                "the body is MP4, which cannot be published over HTTP: send MPEG-TS, FLV or MJPEG".to_string()
            } else {
                format!(
                    "the body is {}, not {}: POST it to {} (or /api/stream to detect the format)",
                    format_name(found),
                    endpoint.name(),
                    endpoint_for(found)
                )
            };
            return error(StatusCode::UNSUPPORTED_MEDIA_TYPE, msg);
        }
    }
    let hint = match endpoint {
        Endpoint::Ts => Hint::Ts,
        Endpoint::Flv => Hint::Flv,
        Endpoint::Mjpeg => match hint_from_content_type(&content_type) {
            Some(h @ Hint::Multipart(_)) => h,
            _ => Hint::Auto,
        },
        Endpoint::Auto => hint_from_content_type(&content_type).unwrap_or(Hint::Auto),
    };
    let mut demux = StreamDemuxer::new(hint);
    let probed = match probe(&mut upload, &mut demux).await {
        Ok(p) => p,
        Err(ProbeError::Invalid(e)) | Err(ProbeError::Io(e)) => {
            tracing::info!(stream = %dst, peer = %peer, "ingest refused: {e}");
            return error(StatusCode::BAD_REQUEST, e);
        }
    };
    let Some(format) = demux.format() else {
        return error(StatusCode::BAD_REQUEST, "unknown format");
    };
    let medias = probed.medias();
    let protocol = format!("http+{}", format.short());
    let publish = match app.hub.publish(PublishRequest {
        path: dst.clone(),
        protocol,
        remote_addr: peer.clone(),
        url,
        medias: medias.clone(),
        allow_create,
    }) {
        Ok(p) => p,
        Err(e) => return publish_refused(e),
    };
    let producer = publish.producer().clone();
    let media_list: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
    tracing::info!(stream = %dst, peer = %peer, format = format.name(), medias = ?media_list, "publisher connected");

    let ended = probed.ended;
    let mut pump = FramePump::start(probed, producer.tracks(), &mut demux);
    let result: Result<(), String> = if ended {
        Ok(())
    } else {
        loop {
            let chunk = tokio::select! {
                _ = app.shutdown.cancelled() => break Ok(()),
                c = upload.next_chunk() => c,
            };
            match chunk {
                Ok(Some(data)) => {
                    if let Err(e) = demux.push(&data, Instant::now()) {
                        break Err(e);
                    }
                    pump.drain(&mut demux);
                }
                Ok(None) => {
                    demux.finish();
                    pump.drain(&mut demux);
                    break Ok(());
                }
                Err(e) => break Err(e),
            }
        }
    };
    drop(publish);
    let (frames, bytes) = (pump.frames, demux.total());
    match result {
        Ok(()) => {
            tracing::info!(stream = %dst, peer = %peer, frames, bytes, "publisher disconnected");
            Json(json!({ "stream": dst, "format": format.name(), "frames": frames, "bytes": bytes })).into_response()
        }
        Err(e) => {
            tracing::info!(stream = %dst, peer = %peer, frames, bytes, "publisher failed: {e}");
            error(StatusCode::BAD_REQUEST, format!("{}: {e} (after {frames} frames)", format.name()))
        }
    }
}
