//! `GET /api/ws?src=NAME`: go2rtc's WebSocket API. The client sends one JSON request:
//! - `mse` / `mp4` (value: the codecs the browser plays): the server answers with the MIME type it chose,
//!   then the init segment and fragments as binary messages;
//! - `mjpeg`: JPEG images as binary messages;
//! - `hls`: the answer's value is a master playlist (URIs relative to `/api/`); a value listing the
//!   browser's codecs (as for `mse`) gets fMP4 segments with its audio (`mp4=flac` when it lists `flac`);
//! - `webrtc/offer` (value: SDP) → `webrtc/answer`, and go2rtc's newer `webrtc` (value:
//!   `{"type":"offer","sdp":...}`) → `webrtc` (value: `{"type":"answer","sdp":...}`). The server is
//!   ICE-lite and puts its candidates in the answer, so `webrtc/candidate` messages are accepted and
//!   ignored.
//!
//! Problems are answered with `{"type":"error","value":"..."}`.

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use media::{codec, Kind, MediaFilter};
use serde_json::json;
use std::net::SocketAddr;
use std::sync::Arc;

use super::api::Query;
use super::hls::Sessions;
use super::http_stream::{reader_codecs, Mp4Muxer, Muxer};
use super::mjpeg::MjpegState;
use crate::app::App;

pub fn routes(hls: Arc<Sessions>, mjpeg: Arc<MjpegState>) -> Router<Arc<App>> {
    Router::new().route("/api/ws", get(ws)).layer(Extension(Arc::new(Shared { hls, mjpeg })))
}

/// The output modules' state the WebSocket requests reuse.
struct Shared {
    hls: Arc<Sessions>,
    mjpeg: Arc<MjpegState>,
}

/// Largest JSON message we accept from a client.
const MAX_TEXT: usize = 64 * 1024;

async fn ws(
    State(app): State<Arc<App>>,
    Extension(shared): Extension<Arc<Shared>>,
    upgrade: WebSocketUpgrade,
    request: Request,
) -> Response {
    let q = Query::from_uri(request.uri());
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ua = request.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let user = request.extensions().get::<crate::auth::AuthenticatedUser>().map(|u| u.0.clone()).unwrap_or_default();
    upgrade
        .max_message_size(MAX_TEXT)
        .on_upgrade(move |socket| session(app, shared, q, socket, peer, ua, user))
        .into_response()
}

/// Filters from an MSE codec list (`avc1.640029,hvc1.1.6.L153.B0,mp4a.40.2,flac,opus`), as go2rtc maps
/// them: what the browser can play, video and audio in the browser's order.
pub fn filters_from_mse_codecs(list: &str) -> Vec<MediaFilter> {
    let (mut video, mut audio): (Vec<String>, Vec<String>) = (Vec::new(), Vec::new());
    let add = |v: &mut Vec<String>, name: &str| {
        if !v.iter().any(|c| c == name) {
            v.push(name.to_string());
        }
    };
    for c in list.split(',').map(str::trim) {
        if c.starts_with("avc1") {
            add(&mut video, codec::H264);
        } else if c.starts_with("hvc1") || c.starts_with("hev1") {
            add(&mut video, codec::H265);
        } else if c.starts_with("mp4a.40") {
            add(&mut audio, codec::AAC);
        } else if c == "opus" {
            add(&mut audio, codec::OPUS);
        } else if c == "flac" {
            for n in [codec::PCMA, codec::PCMU, codec::L16] {
                add(&mut audio, n);
            }
        }
    }
    let mut out = Vec::new();
    if !video.is_empty() {
        out.push(MediaFilter { kind: Kind::Video, codecs: video, all: false });
    }
    if !audio.is_empty() {
        out.push(MediaFilter { kind: Kind::Audio, codecs: audio, all: false });
    }
    out
}

/// The query of an `hls` message. As go2rtc, a value listing what the browser plays (the `mse` codec
/// list) asks for fMP4 segments: `mp4=flac` (AAC, and G.711/LPCM as FLAC) when it lists `flac`, else
/// `mp4` (AAC). The URL's own codec filters, when it has any, stay as they are.
fn hls_query(mut q: Query, codecs: &str) -> Query {
    let has_filters = q.0.iter().any(|(k, _)| matches!(k.as_str(), "video" | "audio" | "mp4"));
    if has_filters || filters_from_mse_codecs(codecs).is_empty() {
        return q;
    }
    let flac = codecs.split(',').any(|c| c.trim() == "flac");
    q.0.push(("mp4".into(), if flac { "flac".into() } else { String::new() }));
    q
}

async fn send_json(socket: &mut WebSocket, kind: &str, value: &str) -> bool {
    let text = json!({ "type": kind, "value": value }).to_string();
    socket.send(Message::Text(text.into())).await.is_ok()
}

/// The `error` value of a JSON error response.
async fn error_text(resp: Response) -> String {
    let body = axum::body::to_bytes(resp.into_body(), 64 * 1024).await.unwrap_or_default();
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v["error"].as_str().map(String::from))
        .unwrap_or_else(|| "stream unavailable".into())
}

async fn session(
    app: Arc<App>,
    shared: Arc<Shared>,
    q: Query,
    mut socket: WebSocket,
    peer: Option<SocketAddr>,
    ua: String,
    user: String,
) {
    // One request at a time: wait for the client's message, then stream until it closes.
    let request = loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => match serde_json::from_str::<serde_json::Value>(&t) {
                Ok(v) => break v,
                Err(e) => {
                    send_json(&mut socket, "error", &format!("bad JSON message: {e}")).await;
                }
            },
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
            Some(Ok(_)) => {}
        }
    };
    let kind = request["type"].as_str().unwrap_or("").to_string();
    let value = request["value"].as_str().unwrap_or("").to_string();
    match kind.as_str() {
        "mse" | "mp4" => {}
        "hls" => {
            let q = hls_query(q, &value);
            match super::hls::start_session(&app, &shared.hls, &q, peer, &ua).await {
                Ok(playlist) => send_json(&mut socket, "hls", &playlist).await,
                Err(resp) => send_json(&mut socket, "error", &error_text(resp).await).await,
            };
            return;
        }
        "webrtc/offer" | "webrtc" => {
            let (sdp, v2) = match &request["value"] {
                serde_json::Value::String(s) => (s.clone(), false),
                v => (v["sdp"].as_str().unwrap_or("").to_string(), true),
            };
            let Some(src) = q.get("src").filter(|s| !s.is_empty()).map(str::to_string) else {
                send_json(&mut socket, "error", "missing src= (the stream name)").await;
                return;
            };
            let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
            match super::webrtc::new_session(&app, &src, &sdp, peer, &ua, (&user, "")).await {
                Ok((_id, answer)) => {
                    let msg = if v2 {
                        json!({ "type": "webrtc", "value": { "type": "answer", "sdp": answer } })
                    } else {
                        json!({ "type": "webrtc/answer", "value": answer })
                    };
                    if socket.send(Message::Text(msg.to_string().into())).await.is_err() {
                        return;
                    }
                }
                Err(resp) => {
                    send_json(&mut socket, "error", &error_text(resp).await).await;
                    return;
                }
            }
            // Trickled candidates need no answer from an ICE-lite server; wait for the client to go.
            loop {
                tokio::select! {
                    incoming = socket.recv() => match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return,
                        _ => {}
                    },
                    _ = app.shutdown.cancelled() => return,
                }
            }
        }
        "mjpeg" => {
            let mut frames = match super::mjpeg::jpeg_frames(&app, &shared.mjpeg, &q, peer, &ua).await {
                Ok(f) => f,
                Err(resp) => {
                    send_json(&mut socket, "error", &error_text(resp).await).await;
                    return;
                }
            };
            loop {
                tokio::select! {
                    jpeg = futures_util::StreamExt::next(&mut frames) => {
                        let Some(jpeg) = jpeg else { break };
                        if socket.send(Message::Binary(jpeg)).await.is_err() {
                            return;
                        }
                    }
                    incoming = socket.recv() => match incoming {
                        Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                        _ => {}
                    },
                    _ = app.shutdown.cancelled() => break,
                }
            }
            let _ = socket.send(Message::Close(None)).await;
            return;
        }
        _ => {
            let msg =
                format!("unsupported message type {kind:?} (supported: mse, mp4, mjpeg, hls, webrtc/offer, webrtc)");
            send_json(&mut socket, "error", &msg).await;
            return;
        }
    }
    let mut filters = filters_from_mse_codecs(&value);
    if filters.is_empty() {
        filters = super::http_stream::filters(&q, "mp4");
    }
    let reader = match super::http_stream::subscribe(&app, &q, &filters, kind.as_str(), peer, &ua).await {
        Ok(r) => r,
        Err(resp) => {
            send_json(&mut socket, "error", &error_text(resp).await).await;
            return;
        }
    };
    let mut muxer = match Mp4Muxer::following(&reader_codecs(&reader)) {
        Ok(m) => m,
        Err(e) => {
            send_json(&mut socket, "error", &format!("{kind}: {e}")).await;
            return;
        }
    };
    let mut reader = reader;
    let mut announced = false;
    loop {
        tokio::select! {
            delivery = reader.queue.recv() => {
                let Some(d) = delivery else { break };
                let out = match muxer.push(d.slot, &d.frame) {
                    Ok(out) => out,
                    Err(e) => {
                        tracing::debug!(stream = %reader.stream_name(), "ws {kind}: {e}");
                        continue;
                    }
                };
                if !out.is_empty() && !announced {
                    announced = true;
                    let mime = muxer.mime_type().unwrap_or_default();
                    if !send_json(&mut socket, &kind, &mime).await {
                        break;
                    }
                }
                for b in out {
                    reader.shared.count_sent(1, b.len() as u64);
                    if socket.send(Message::Binary(b)).await.is_err() {
                        return;
                    }
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                _ => {}
            },
            _ = app.shutdown.cancelled() => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mse_codec_lists_map_to_filters() {
        let f = filters_from_mse_codecs("avc1.640029,avc1.64002A,hvc1.1.6.L153.B0,mp4a.40.2,mp4a.40.5,flac,opus");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].codecs, vec!["H264", "H265"]);
        assert_eq!(f[1].codecs, vec!["MPEG4-GENERIC", "PCMA", "PCMU", "L16", "OPUS"]);
        assert!(filters_from_mse_codecs("vp8,vp9").is_empty());
    }

    #[test]
    fn hls_messages_with_codecs_ask_for_fmp4() {
        let q = |s: &str| Query(media::query::query_pairs(s).collect());
        let get = |q: Query, k: &str| q.get(k).map(str::to_string);
        assert_eq!(get(hls_query(q("src=cam"), "avc1.640029,mp4a.40.2,flac,opus"), "mp4").as_deref(), Some("flac"));
        assert_eq!(get(hls_query(q("src=cam"), "avc1.640029,mp4a.40.2"), "mp4").as_deref(), Some(""));
        // No codec list, or the URL's own filters: unchanged.
        assert_eq!(get(hls_query(q("src=cam"), ""), "mp4"), None);
        assert_eq!(get(hls_query(q("src=cam&video=h264"), "avc1.640029,flac"), "mp4"), None);
    }
}
