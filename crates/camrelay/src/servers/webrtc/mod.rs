//! WebRTC output (WHEP and go2rtc's JSON offer/answer) with str0m.
//!
//! `POST /api/webrtc?src=NAME` takes an SDP offer (`application/sdp`, answered `201 Created` with a
//! `Location: /api/webrtc?id=...`) or go2rtc's `{"type":"offer","sdp":"..."}` (answered with
//! `{"type":"answer","sdp":"..."}`); `DELETE /api/webrtc?id=ID` ends a session.
//!
//! Every peer shares one UDP socket (`webrtc.listen`, default `:8555`): the socket task demultiplexes
//! datagrams by the remote address, and for addresses not seen yet by the ICE username of a STUN
//! request (`<our ufrag>:<their ufrag>`), into the bounded queue of the session that owns them. Each
//! session is one task that owns its sans-IO `Rtc` (ICE-lite, host candidates only: the bound address,
//! `127.0.0.1` when bound to all interfaces, plus `webrtc.candidates`), a hub reader, and sends each
//! frame with str0m's frame API.

mod candidates;
mod incoming;
mod net;
mod session;
pub(crate) mod stun;

pub(crate) use incoming::Incoming;
use net::{register, server_for, Datagram};
pub use net::{start, Server};
use session::{Outgoing, Session};

use axum::body::{to_bytes, Body};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use media::{Kind, MediaFilter};
use serde_json::json;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use str0m::change::SdpOffer;
use str0m::format::Codec as RtcCodec;
use str0m::media::{Frequency, MediaKind, MediaTime, Mid, Pt};
use str0m::net::{Protocol, Receive};
use str0m::{Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api::{error, Query};
use crate::app::App;
use crate::hub::{HubError, Producer, PublishRequest, Reader, Track};
use crate::servers::publish_refused;

/// Largest accepted offer body.
const MAX_OFFER_BYTES: usize = 64 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/api/webrtc", post(webrtc_post).delete(webrtc_delete).patch(webrtc_patch).options(webrtc_options))
}

/// Codec names per kind that an offer lists (`a=rtpmap`), uppercased, in offer order.
pub(crate) fn offered_codecs(sdp: &str) -> Vec<(Kind, Vec<String>)> {
    let mut out: Vec<(Kind, Vec<String>)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in sdp.lines() {
        let line = line.trim();
        if let Some(m) = line.strip_prefix("m=") {
            current = match m.split(' ').next() {
                Some("video") => Some(Kind::Video),
                Some("audio") => Some(Kind::Audio),
                _ => None,
            }
            .map(|k| {
                out.push((k, Vec::new()));
                out.len() - 1
            });
        } else if let (Some(i), Some(map)) = (current, line.strip_prefix("a=rtpmap:")) {
            let name = map.split_whitespace().nth(1).and_then(|e| e.split('/').next()).unwrap_or("");
            let name = name.to_ascii_uppercase();
            if !name.is_empty() && !out[i].1.contains(&name) {
                out[i].1.push(name);
            }
        }
    }
    out
}

/// Reader filters for an offer: per offered kind, the codecs we can send that it lists, in our
/// priority order; a kind with none of them asks for what it offered, so the hub's error names it.
pub(crate) fn filters_for(offered: &[(Kind, Vec<String>)]) -> Vec<MediaFilter> {
    let mut filters: Vec<MediaFilter> = Vec::new();
    for (kind, names) in offered {
        if filters.iter().any(|f| f.kind == *kind) {
            continue;
        }
        let ours: &[&str] = match kind {
            Kind::Video => &[media::codec::H264, media::codec::H265, media::codec::AV1, media::codec::VP9],
            _ => &[media::codec::OPUS, media::codec::PCMA, media::codec::PCMU],
        };
        let mut codecs: Vec<String> =
            ours.iter().filter(|c| names.iter().any(|n| n == *c)).map(|c| c.to_string()).collect();
        if codecs.is_empty() {
            codecs = names.iter().filter(|n| !is_helper_codec(n)).cloned().collect();
        }
        if !codecs.is_empty() {
            filters.push(MediaFilter { kind: *kind, codecs, all: false });
        }
    }
    filters
}

/// The payload type to send a track with among those the answer negotiated for its codec (pt, clock,
/// packetization mode, profile-level-id): for H.264, packetization mode 1 (FU-A: frames larger than a
/// packet) and the stream's own profile when the peer accepts it; otherwise the first.
fn best_payload<'a>(
    candidates: &'a [(Pt, Frequency, Option<u8>, Option<u32>)],
    codec: &media::Codec,
) -> Option<&'a (Pt, Frequency, Option<u8>, Option<u32>)> {
    let profile = codec.fmtp_param("profile-level-id").and_then(|v| u32::from_str_radix(v, 16).ok());
    let score = |c: &(Pt, Frequency, Option<u8>, Option<u32>)| {
        let mode = u8::from(c.2 == Some(1)) * 4;
        // profile_idc, then the constraint flags (level is the receiver's maximum, not matched).
        let idc = match (profile, c.3) {
            (Some(ours), Some(theirs)) => u8::from(ours >> 16 == theirs >> 16) * 2 + u8::from(ours >> 8 == theirs >> 8),
            _ => 0,
        };
        mode + idc
    };
    let mut best: Option<&(Pt, Frequency, Option<u8>, Option<u32>)> = None;
    for c in candidates {
        if best.is_none_or(|b| score(c) > score(b)) {
            best = Some(c);
        }
    }
    best
}

/// An SDP parse error as the peer may read it. str0m's names the place of the error by its memory
/// address (`Parse error at PointerOffset(0x7f...)`, which tells the peer where our heap is): this
/// names the byte offset in `sdp` instead.
pub(crate) fn sdp_error(e: &impl std::fmt::Display, sdp: &str) -> String {
    const AT: &str = "PointerOffset(0x";
    let mut text = e.to_string();
    while let Some(start) = text.find(AT) {
        let hex = start + AT.len();
        let Some(len) = text[hex..].find(')') else { break };
        let place = usize::from_str_radix(&text[hex..hex + len], 16)
            .ok()
            .and_then(|addr| addr.checked_sub(sdp.as_ptr() as usize))
            .filter(|offset| *offset <= sdp.len())
            .map_or_else(|| "an unknown place".to_string(), |offset| format!("byte {offset}"));
        text.replace_range(start..hex + len + 1, &place);
    }
    text
}

/// Payload types that are not media codecs of their own.
fn is_helper_codec(name: &str) -> bool {
    matches!(name, "RTX" | "RED" | "ULPFEC" | "FLEXFEC-03" | "CN" | "TELEPHONE-EVENT")
}

fn rtc_codec(name: &str) -> Option<RtcCodec> {
    Some(match name {
        media::codec::H264 => RtcCodec::H264,
        media::codec::H265 => RtcCodec::H265,
        media::codec::AV1 => RtcCodec::Av1,
        media::codec::VP9 => RtcCodec::Vp9,
        media::codec::OPUS => RtcCodec::Opus,
        media::codec::PCMA => RtcCodec::PCMA,
        media::codec::PCMU => RtcCodec::PCMU,
        _ => return None,
    })
}

enum OfferBody {
    Sdp(String),
    Json(String),
}

async fn webrtc_post(State(app): State<Arc<App>>, req: Request) -> Response {
    let q = Query::from_uri(req.uri());
    // Listeners without peer addresses (unix sockets) report 0.0.0.0:0.
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0));
    let user_agent = req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let user = req.extensions().get::<crate::auth::AuthenticatedUser>().map(|u| u.0.clone()).unwrap_or_default();
    // The query of the client's URL (a WHEP/WHIP URL's, which camrelay turns into `src=`/`dst=`).
    let query = (req.uri().query().unwrap_or("").split('&'))
        .filter(|p| !p.is_empty() && !matches!(p.split_once('=').map_or(*p, |(k, _)| k), "src" | "dst"))
        .collect::<Vec<_>>()
        .join("&");
    let identity = (user.as_str(), query.as_str());
    let json_body = is_json(req.headers());
    let bytes = match to_bytes(req.into_body(), MAX_OFFER_BYTES).await {
        Ok(b) => b,
        Err(_) => return error(StatusCode::PAYLOAD_TOO_LARGE, format!("offer larger than {MAX_OFFER_BYTES} bytes")),
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return error(StatusCode::BAD_REQUEST, "offer is not UTF-8");
    };
    let body = if json_body || text.trim_start().starts_with('{') {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) if v.get("type").and_then(|t| t.as_str()) == Some("offer") => {
                OfferBody::Json(v.get("sdp").and_then(|s| s.as_str()).unwrap_or("").to_string())
            }
            _ => return error(StatusCode::BAD_REQUEST, "expected {\"type\":\"offer\",\"sdp\":\"...\"}"),
        }
    } else {
        OfferBody::Sdp(text.to_string())
    };
    let sdp = match &body {
        OfferBody::Sdp(s) | OfferBody::Json(s) => s.clone(),
    };
    let base = app.config().api.base_path.trim_end_matches('/').to_string();
    let result = if let Some(dst) = q.get("dst").filter(|d| !d.is_empty()) {
        new_publish_session(&app, dst, &sdp, peer, identity).await
    } else {
        let Some(src) = q.get("src").filter(|s| !s.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "missing src= (the stream to play) or dst= (the stream to publish)");
        };
        new_session(&app, src, &sdp, peer, &user_agent, identity).await
    };
    match result {
        Ok((id, answer)) => match body {
            OfferBody::Json(_) => Json(json!({"type": "answer", "sdp": answer})).into_response(),
            OfferBody::Sdp(_) => {
                let mut r = Response::builder()
                    .status(StatusCode::CREATED)
                    .header(header::CONTENT_TYPE, "application/sdp")
                    .header(header::LOCATION, format!("{base}/api/webrtc?id={id}"));
                for link in ice_server_links(&app.config().webrtc.ice_servers) {
                    r = r.header(header::LINK, link);
                }
                r.body(Body::from(answer)).unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
            }
        },
        Err(r) => r,
    }
}

/// `webrtc.ice_servers` as RFC 9725 `Link` header values: what a WHIP/WHEP client (and the web UI)
/// configures its peer connection with.
fn ice_server_links(servers: &[crate::config::IceServer]) -> Vec<String> {
    let quote = |s: &str| s.replace('\\', "\\\\").replace('"', "\\\"");
    let mut out = Vec::new();
    for s in servers {
        for url in &s.urls {
            let mut link = format!("<{url}>; rel=\"ice-server\"");
            if !s.username.is_empty() || !s.credential.is_empty() {
                link.push_str(&format!(
                    "; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                    quote(&s.username),
                    quote(&s.credential)
                ));
            }
            out.push(link);
        }
    }
    out
}

/// `OPTIONS /api/webrtc`: the ICE servers (`Link` headers) before a client makes its offer.
async fn webrtc_options(State(app): State<Arc<App>>) -> Response {
    let mut r = Response::builder().status(StatusCode::NO_CONTENT).header("Accept-Post", "application/sdp");
    for link in ice_server_links(&app.config().webrtc.ice_servers) {
        r = r.header(header::LINK, link);
    }
    r.body(Body::empty()).unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response"))
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("json"))
}

/// `PATCH /api/webrtc?id=`: a trickled ICE candidate (WHEP/WHIP). The server is ICE-lite and answers the
/// client's connectivity checks from wherever they come, so candidates need no processing: `204` for a
/// live session, `404` otherwise.
async fn webrtc_patch(State(app): State<Arc<App>>, req: Request) -> Response {
    let q = Query::from_uri(req.uri());
    let Some(id) = q.get("id").filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing id= (the session)");
    };
    if server_for(&app).lock().by_id.contains_key(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("webrtc session not found: {id}"))
    }
}

async fn webrtc_delete(State(app): State<Arc<App>>, req: Request) -> Response {
    let q = Query::from_uri(req.uri());
    let Some(id) = q.get("id").filter(|s| !s.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing id= (the session)");
    };
    let server = server_for(&app);
    let cancel = server.lock().by_id.get(id).map(|e| e.cancel.clone());
    match cancel {
        Some(c) => {
            c.cancel();
            server.remove(id);
            StatusCode::OK.into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("webrtc session not found: {id}")),
    }
}

/// An ICE-lite peer with our credentials and the codecs both directions use: H.264, Opus, PCMA, PCMU.
pub(crate) fn rtc_config(creds: &IceCreds) -> str0m::RtcConfig {
    rtc_config_audio_first(creds, None)
}

/// [`rtc_config`] with one audio codec moved to the front: answers list codecs in this order and a
/// browser sends its microphone with the first one, so the backchannel's codec goes first.
fn rtc_config_audio_first(creds: &IceCreds, first: Option<&str>) -> str0m::RtcConfig {
    let mut audio = [media::codec::OPUS, media::codec::PCMA, media::codec::PCMU];
    if let Some(i) = first.and_then(|f| audio.iter().position(|a| *a == f)) {
        audio[..=i].rotate_right(1);
    }
    let mut config =
        Rtc::builder().set_ice_lite(true).set_local_ice_credentials(creds.clone()).clear_codecs().enable_h264(true);
    for codec in audio {
        config = match codec {
            media::codec::OPUS => config.enable_opus(true, false),
            media::codec::PCMA => config.enable_pcma(true, false),
            _ => config.enable_pcmu(true, false),
        };
    }
    config
}

/// `sdp` split into its session part and one block per m-section, each ending with its line break.
fn sdp_sections(sdp: &str) -> Vec<String> {
    let mut sections: Vec<String> = vec![String::new()];
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("m=") {
            sections.push(String::new());
        }
        if let Some(last) = sections.last_mut() {
            last.push_str(line);
        }
    }
    sections
}

/// `sdp` (an answer) with the medias `mids` made send-only (`sendrecv` → `sendonly`, `recvonly` →
/// `inactive`).
pub(crate) fn not_receiving(sdp: &str, mids: &[Mid]) -> String {
    if mids.is_empty() {
        return sdp.to_string();
    }
    let mut sections = sdp_sections(sdp);
    for section in sections.iter_mut().skip(1) {
        let is_target = section
            .lines()
            .filter_map(|l| l.trim().strip_prefix("a=mid:"))
            .any(|m| mids.contains(&Mid::from(m.trim())));
        if is_target {
            *section = section.replace("a=sendrecv\r\n", "a=sendonly\r\n").replace("a=recvonly\r\n", "a=inactive\r\n");
        }
    }
    sections.concat()
}

/// `sdp` (an answer) with the first m-section's `a=candidate:` lines repeated in every other m-section
/// that has none. str0m lists them once (BUNDLE needs no more), but aiortc 1.16 takes a bundled
/// transport's candidates from the last m-section that uses it: with two audio m-lines (a `recvonly`
/// one for the camera's sound and a `sendonly` microphone) it found none there and never connected.
pub(crate) fn candidates_in_every_section(sdp: &str) -> String {
    let mut sections = sdp_sections(sdp);
    let Some(first) = sections.get(1) else { return sdp.to_string() };
    let candidates: String = first.split_inclusive('\n').filter(|l| l.starts_with("a=candidate:")).collect();
    if candidates.is_empty() {
        return sdp.to_string();
    }
    for section in sections.iter_mut().skip(2) {
        if !section.split_inclusive('\n').any(|l| l.starts_with("a=candidate:")) {
            if !section.ends_with('\n') {
                section.push_str("\r\n");
            }
            section.push_str(&candidates);
        }
    }
    sections.concat()
}

/// Whether an offer's peer sends audio (an audio m-line that is `sendrecv` or `sendonly`: a microphone).
pub(crate) fn offer_sends_audio(sdp: &str) -> bool {
    microphone_codecs(sdp).is_some()
}

/// The codecs (upper case) of the first audio m-line an offer's peer sends on (`sendrecv` or
/// `sendonly`: its microphone, which the session hears), or `None` when it sends no audio. The other
/// audio m-lines do not count: go2rtc's web UI offers a `recvonly` one for the camera's sound (any
/// codec) next to the microphone's `sendonly` one, and the microphone is encoded with a codec of its own.
pub(crate) fn microphone_codecs(sdp: &str) -> Option<Vec<String>> {
    let mut section: Option<(bool, Vec<String>)> = None;
    for line in sdp.lines().map(str::trim).chain(["m=end"]) {
        if let Some(m) = line.strip_prefix("m=") {
            if let Some((true, codecs)) = section.take() {
                return Some(codecs);
            }
            section = m.starts_with("audio ").then(|| (false, Vec::new()));
        } else if let Some((sends, codecs)) = &mut section {
            if line == "a=sendrecv" || line == "a=sendonly" {
                *sends = true;
            } else if let Some(map) = line.strip_prefix("a=rtpmap:") {
                let name = map.split_whitespace().nth(1).and_then(|e| e.split('/').next()).unwrap_or("");
                let name = name.to_ascii_uppercase();
                if !name.is_empty() && !codecs.contains(&name) {
                    codecs.push(name);
                }
            }
        }
    }
    None
}

/// Two-way audio for a playback session: the stream's backchannel track and the codec the peer's
/// microphone must use, when the peer sends audio and offers that codec; or Opus, transcoded to the
/// backchannel's codec (the last element: the microphone's codec to transcode from).
async fn microphone_target(
    app: &Arc<App>,
    src: &str,
    offer_sdp: &str,
) -> Option<(Arc<Producer>, Arc<Track>, &'static str, Option<media::Codec>)> {
    let offered_audio = microphone_codecs(offer_sdp)?;
    let stream = app.hub.get(src)?;
    let (producer, index, media) = match stream.backchannel(src).await {
        Ok(b) => b,
        Err(e) => {
            tracing::debug!("webrtc: the peer sends audio but {e}");
            return None;
        }
    };
    let codec = media.codecs.iter().find_map(|c| {
        let ours = [media::codec::OPUS, media::codec::PCMA, media::codec::PCMU].into_iter().find(|n| *n == c.name)?;
        offered_audio.iter().any(|o| *o == ours).then_some(ours)
    });
    let track = producer.tracks().get(index).cloned()?;
    if let Some(codec) = codec {
        return Some((producer, track, codec, None));
    }
    // An Opus microphone into a G.711 (or L16) backchannel: decoded, resampled and encoded per session.
    let opus = crate::audio::target_codec(media::codec::OPUS)?;
    if app.config().webrtc.audio_transcode
        && offered_audio.iter().any(|o| *o == media::codec::OPUS)
        && crate::audio::Transcoder::new(&opus, &track.codec).is_ok()
    {
        return Some((producer, track, media::codec::OPUS, Some(opus)));
    }
    tracing::info!(
        "webrtc: the peer's microphone offers none of the backchannel's codecs ({})",
        media.codecs.iter().map(|c| c.short_name()).collect::<Vec<_>>().join(", ")
    );
    None
}

/// Whether an audio codec goes to a browser as it is: Opus, or G.711 at 8 kHz mono (WebRTC's PCMA/PCMU
/// are 8 kHz; a 16 kHz PCMA camera played as 8 kHz would be half speed).
fn sendable_audio(c: &media::Codec) -> bool {
    match c.name.as_str() {
        media::codec::PCMA | media::codec::PCMU => c.clock_rate == 8_000 && c.channels <= 1,
        _ => true,
    }
}

/// The audio codecs a transcoder can send that the offer lists, Opus first.
pub(crate) fn transcode_targets(offered: &[(Kind, Vec<String>)]) -> Vec<&'static str> {
    let audio: Vec<&String> = offered.iter().filter(|(k, _)| *k == Kind::Audio).flat_map(|(_, c)| c).collect();
    [media::codec::OPUS, media::codec::PCMA, media::codec::PCMU]
        .into_iter()
        .filter(|t| audio.iter().any(|a| a == t))
        .collect()
}

/// A reader of `src`'s audio from its shared transcoder to the first of `targets` that is a change
/// (G.711 at 8 kHz passes through untouched, so PCMA is no target for a PCMA/8000 camera), when the
/// stream has audio a transcoder reads.
async fn transcoded_audio(
    app: &Arc<App>,
    src: &str,
    targets: &[&'static str],
    peer: SocketAddr,
    viewer: &crate::hub::ReaderShared,
) -> Option<Reader> {
    let input = crate::audio::derived::source_audio(&app.hub, src).await?;
    let target = targets.iter().find_map(|t| {
        let codec = crate::audio::target_codec(t)?;
        crate::audio::Transcoder::new(&input, &codec).is_ok().then_some(*t)
    })?;
    let shared = app.hub.new_reader_shared("webrtc", peer.to_string());
    *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) =
        viewer.user_agent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match crate::audio::derived::join(&app.hub, src, target, shared).await {
        Ok(r) => {
            tracing::info!(stream = %src, from = %input.short_name(), to = %target, "webrtc: audio transcoded");
            Some(r)
        }
        Err(e) => {
            tracing::warn!(stream = %src, "webrtc: no transcoded audio: {e}");
            None
        }
    }
}

/// Adds our host candidates, answers the offer and drains str0m's output up to its first timeout
/// (nothing is sent before ICE): what playback and publish sessions share.
fn answer_offer(
    rtc: &mut Rtc,
    offer: SdpOffer,
    candidates: &[candidates::LocalCandidate],
) -> Result<(str0m::change::SdpAnswer, Instant), super::api::ApiError> {
    for c in candidates {
        match c.to_str0m() {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!("webrtc: candidate {}: {e}", c.addr),
        }
    }
    // str0m 0.25 asserts on some hostile offers (one payload type with different codecs in two m-lines:
    // "Pt locked multiple times", found by the webrtc_offer fuzz target): refused before str0m sees
    // them, and any other assertion is a bad request, not a panic.
    if let Some(why) = inconsistent_payload_type(&offer.to_sdp_string()) {
        return Err(super::api::ApiError(StatusCode::BAD_REQUEST, format!("webrtc: cannot answer the offer: {why}")));
    }
    let accepted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_offer(offer)));
    let answer = match accepted {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => {
            return Err(super::api::ApiError(StatusCode::BAD_REQUEST, format!("webrtc: cannot answer the offer: {e}")))
        }
        Err(_) => {
            return Err(super::api::ApiError(
                StatusCode::BAD_REQUEST,
                "webrtc: cannot answer the offer: inconsistent payload types across its media".into(),
            ))
        }
    };
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => return Ok((answer, t)),
            Ok(_) => {}
            Err(e) => return Err(super::api::ApiError(StatusCode::BAD_REQUEST, format!("webrtc: {e}"))),
        }
    }
}

/// A payload type that the offer's m-lines map to different codecs or parameters (`a=rtpmap`/`a=fmtp`):
/// bundled media share one payload-type space, so that is an invalid offer.
fn inconsistent_payload_type(sdp: &str) -> Option<String> {
    // Per m-section: payload type → (media kind, rtpmap, fmtp).
    let mut sections: Vec<HashMap<&str, (&str, String, String)>> = Vec::new();
    let mut kind = "";
    for line in sdp.lines().map(str::trim) {
        if let Some(m) = line.strip_prefix("m=") {
            kind = m.split(' ').next().unwrap_or("");
            sections.push(HashMap::new());
            continue;
        }
        let Some(section) = sections.last_mut() else { continue };
        for (attr, is_fmtp) in [("a=rtpmap:", false), ("a=fmtp:", true)] {
            let Some(rest) = line.strip_prefix(attr) else { continue };
            let (pt, value) = rest.split_once(' ').unwrap_or((rest, ""));
            let entry = section.entry(pt).or_insert_with(|| (kind, String::new(), String::new()));
            let slot = if is_fmtp { &mut entry.2 } else { &mut entry.1 };
            *slot = value.trim().to_ascii_lowercase();
        }
    }
    let mut first: HashMap<&str, &(&str, String, String)> = HashMap::new();
    for section in &sections {
        for (pt, meaning) in section {
            match first.get(pt) {
                Some(before) if *before != meaning => {
                    return Some(format!(
                        "payload type {pt} is {} {:?} {:?} in one m-line and {} {:?} {:?} in another",
                        before.0, before.1, before.2, meaning.0, meaning.1, meaning.2
                    ))
                }
                Some(_) => {}
                None => {
                    first.insert(pt, meaning);
                }
            }
        }
    }
    None
}

/// [`answer_offer`] with one loopback UDP candidate (the fuzz target's entry).
pub(crate) fn answer_offer_on_loopback(
    rtc: &mut Rtc,
    offer: SdpOffer,
) -> Result<(str0m::change::SdpAnswer, Instant), super::api::ApiError> {
    let loopback = candidates::LocalCandidate { addr: SocketAddr::from(([127, 0, 0, 1], 8555)), tcp: false };
    answer_offer(rtc, offer, &[loopback])
}

/// What every offer needs first: the sockets (`503` without them) and the parsed offer (`400`).
fn listening_and_parsed<'a>(
    server: &'a Server,
    offer_sdp: &str,
) -> Result<(&'a net::Net, SdpOffer), super::api::ApiError> {
    let Some(net) = server.net.get() else {
        return Err(super::api::ApiError(
            StatusCode::SERVICE_UNAVAILABLE,
            "webrtc: not listening (see webrtc.listen)".into(),
        ));
    };
    let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| {
        super::api::ApiError(
            StatusCode::BAD_REQUEST,
            format!("webrtc: invalid SDP offer: {}", sdp_error(&e, offer_sdp)),
        )
    })?;
    Ok((net, offer))
}

/// `503` when `webrtc.max_sessions` sessions exist.
fn too_many_sessions(server: &Server) -> Response {
    let max = server.max_sessions();
    error(StatusCode::SERVICE_UNAVAILABLE, format!("webrtc: too many sessions ({max})"))
}

pub(crate) async fn new_session(
    app: &Arc<App>,
    src: &str,
    offer_sdp: &str,
    peer: SocketAddr,
    user_agent: &str,
    (user, query): (&str, &str),
) -> Result<(String, String), Response> {
    let server = server_for(app);
    let (net, offer) = listening_and_parsed(&server, offer_sdp).map_err(IntoResponse::into_response)?;
    if server.lock().by_id.len() >= server.max_sessions() {
        return Err(too_many_sessions(&server));
    }
    let offered = offered_codecs(offer_sdp);
    let filters = filters_for(&offered);
    if filters.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "codecs not matched: the offer has no audio or video"));
    }
    let shared = app.hub.new_reader_shared("webrtc", peer.to_string());
    shared.set_identity(user, query);
    *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) = user_agent.to_string();
    let refused = |e: HubError| match e {
        HubError::NotFound(n) => error(StatusCode::NOT_FOUND, format!("stream not found: {n}")),
        e @ HubError::NotMatched(_) => error(StatusCode::BAD_REQUEST, e.to_string()),
        e @ HubError::TooManyReaders { .. } => error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
        e => error(StatusCode::NOT_FOUND, format!("stream {src}: {e}")),
    };
    // Audio the peer cannot take as it is comes from the stream's shared transcoder (`audio::derived`).
    let targets = transcode_targets(&offered);
    let transcoding = app.config().webrtc.audio_transcode && !targets.is_empty();
    let (reader, transcoded) = match app.hub.subscribe(src, &filters, shared.clone(), true).await {
        Ok(r) if transcoding && !r.tracks.iter().any(|t| t.track.kind == Kind::Audio && sendable_audio(&t.codec)) => {
            let audio = transcoded_audio(app, src, &targets, peer, &shared).await;
            (Some(r), audio)
        }
        Ok(r) => (Some(r), None),
        Err(e @ HubError::NotMatched(_)) if transcoding => {
            let Some(audio) = transcoded_audio(app, src, &targets, peer, &shared).await else { return Err(refused(e)) };
            // The other kinds the peer asked for (its video), if the stream has them.
            let others: Vec<MediaFilter> = filters.iter().filter(|f| f.kind != Kind::Audio).cloned().collect();
            let rest = if others.is_empty() { None } else { app.hub.subscribe(src, &others, shared, true).await.ok() };
            (rest, Some(audio))
        }
        Err(e) => return Err(refused(e)),
    };

    let microphone = microphone_target(app, src, offer_sdp).await;

    let creds = IceCreds::new();
    // Every codec we can send is offered back, also for medias the stream has nothing for (an answer
    // without codecs is rejected by peers); H.265, AV1 and VP9 only when the stream sends them.
    let mut config = rtc_config_audio_first(&creds, microphone.as_ref().map(|m| m.2));
    let sends = |name: &str| reader.iter().flat_map(|r| &r.tracks).any(|t| t.codec.name == name);
    if sends(media::codec::H265) {
        config = config.enable_h265(true);
    }
    if sends(media::codec::AV1) {
        config = config.enable_av1(true);
    }
    if sends(media::codec::VP9) {
        config = config.enable_vp9(true);
    }
    let now = Instant::now();
    let mut rtc = config.build(now);
    // str0m reports MediaAdded only once connected, so the medias are the offer's `a=mid:` lines.
    let candidates = net.candidates();
    let (answer, timeout) = answer_offer(&mut rtc, offer, &candidates).map_err(IntoResponse::into_response)?;
    let mids: Vec<(Mid, MediaKind)> = offer_sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=mid:"))
        .filter_map(|m| {
            let mid = Mid::from(m.trim());
            rtc.media(mid).map(|media| (mid, media.kind()))
        })
        .collect();
    let mut outgoing: Vec<Option<Outgoing>> = Vec::new();
    let mut used: Vec<Mid> = Vec::new();
    // The reader's tracks, then the transcoded audio's (`Session::write` numbers them so).
    for t in reader.iter().chain(&transcoded).flat_map(|r| &r.tracks) {
        let want_kind = if t.track.kind == Kind::Video { MediaKind::Video } else { MediaKind::Audio };
        let want = rtc_codec(&t.codec.name).filter(|_| t.track.kind != Kind::Audio || sendable_audio(&t.codec));
        let mut found = None;
        for (mid, kind) in &mids {
            // Not on an m-line the peer only sends on (a `sendonly` microphone next to a `recvonly` audio).
            let sending = rtc.media(*mid).is_some_and(|m| m.direction().is_sending());
            if *kind != want_kind || used.contains(mid) || !sending {
                continue;
            }
            let Some(writer) = rtc.writer(*mid) else { continue };
            // VP9: the payload type of the stream's profile (str0m offers profiles 0 and 2).
            let vp9_profile = t.codec.fmtp_param("profile-id").and_then(|v| v.parse::<u32>().ok()).unwrap_or(0);
            let candidates: Vec<(Pt, Frequency, Option<u8>, Option<u32>)> = writer
                .payload_params()
                .filter(|p| Some(p.spec().codec) == want)
                .filter(|p| p.spec().codec != RtcCodec::Vp9 || p.spec().format.profile_id.unwrap_or(0) == vp9_profile)
                .map(|p| {
                    (p.pt(), p.spec().clock_rate, p.spec().format.packetization_mode, p.spec().format.profile_level_id)
                })
                .collect();
            let hit = best_payload(&candidates, &t.codec).map(|(pt, rate, _, _)| (*pt, *rate));
            if let Some((pt, rate)) = hit {
                found = Some((*mid, pt, rate));
                break;
            }
        }
        outgoing.push(found.map(|(mid, pt, freq)| {
            used.push(mid);
            let video = t.track.kind == Kind::Video;
            let freq = NonZeroU32::new(t.codec.clock_rate).map(Frequency::from_nonzero).unwrap_or(freq);
            // str0m packetizes H.264/H.265 from Annex B, AV1 from sized OBUs and VP9 from frames as they are.
            let annexb = matches!(t.codec.name.as_str(), media::codec::H264 | media::codec::H265);
            Outgoing { mid, pt, annexb, needs_keyframe: video, freq, clock: Default::default() }
        }));
    }
    if outgoing.iter().all(Option::is_none) {
        let ours: Vec<String> = reader
            .iter()
            .chain(&transcoded)
            .flat_map(|r| &r.tracks)
            .map(|t| format!("{}:{}", t.track.kind, t.codec.short_name()))
            .collect();
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("codecs not matched: the answer has none of {}", ours.join(", ")),
        ));
    }

    // The peer's microphone goes to the backchannel: the first audio medium it sends on.
    let mut incoming = Vec::new();
    let mut backchannel = None;
    if let Some((producer, track, _, from)) = microphone {
        let sending = mids.iter().find(|(mid, kind)| {
            *kind == MediaKind::Audio && rtc.media(*mid).is_some_and(|m| m.direction().is_receiving())
        });
        if let Some((mid, _)) = sending {
            tracing::info!(stream = %src, codec = %track.codec.short_name(), transcoded_from = ?from.as_ref().map(|c| c.short_name()), "two-way audio: the peer's microphone plays into the backchannel");
            incoming.push(
                match from {
                    Some(from) => Incoming::transcoding(*mid, track, &from),
                    None => Incoming::new(*mid, track),
                }
                .microphone(),
            );
            backchannel = Some(producer);
        }
    }
    // Medias the peer would send on that nothing takes: the answer says we do not receive them, so a
    // page knows its microphone goes nowhere (and the browser sends nothing).
    let unheard: Vec<Mid> = mids
        .iter()
        .filter(|(mid, _)| {
            rtc.media(*mid).is_some_and(|m| m.direction().is_receiving()) && !incoming.iter().any(|i| i.mid == *mid)
        })
        .map(|(mid, _)| *mid)
        .collect();
    let cancel = app.shutdown.child_token();
    let Some((id, rx)) = register(&server, &creds.ufrag, &cancel) else {
        return Err(too_many_sessions(&server));
    };
    // Keeps the backchannel's source connected while the microphone is on; the session's drop gives
    // it back.
    if let Some(producer) = &backchannel {
        producer.add_reader();
    }
    let session = Session {
        id: id.clone(),
        server: server.clone(),
        candidates,
        rtc,
        reader,
        transcoded,
        outgoing,
        publish: None,
        incoming,
        backchannel,
        rx,
        cancel,
        timeout,
    };
    let span = tracing::info_span!("webrtc", id = %id, stream = %src, peer = %peer);
    tokio::spawn(tracing::Instrument::instrument(session.run(), span));
    Ok((id, not_receiving(&candidates_in_every_section(&answer.to_sdp_string()), &unheard)))
}

/// WHIP: the peer publishes into stream `dst` (which must exist unless `rtsp.allow_any_publish`).
async fn new_publish_session(
    app: &Arc<App>,
    dst: &str,
    offer_sdp: &str,
    peer: SocketAddr,
    (user, query): (&str, &str),
) -> Result<(String, String), Response> {
    let server = server_for(app);
    let (net, offer) = listening_and_parsed(&server, offer_sdp).map_err(IntoResponse::into_response)?;
    let allow_create = app.config().rtsp.allow_any_publish;
    app.hub.check_publish(dst, allow_create).map_err(publish_refused)?;
    let creds = IceCreds::new();
    let mut rtc = rtc_config(&creds).build(Instant::now());
    let candidates = net.candidates();
    let (answer, timeout) = answer_offer(&mut rtc, offer, &candidates).map_err(IntoResponse::into_response)?;
    // One hub media per offered medium we can receive, with the codec str0m negotiated first.
    let mut medias = Vec::new();
    let mut mids = Vec::new();
    for m in offer_sdp.lines().filter_map(|l| l.trim().strip_prefix("a=mid:")) {
        let mid = Mid::from(m.trim());
        let Some(kind) = rtc.media(mid).map(|m| m.kind()) else { continue };
        let Some(writer) = rtc.writer(mid) else { continue };
        let Some((name, rate, channels, pt)) = writer.payload_params().find_map(|p| {
            let spec = p.spec();
            let name = match spec.codec {
                RtcCodec::H264 => media::codec::H264,
                RtcCodec::Opus => media::codec::OPUS,
                RtcCodec::PCMA => media::codec::PCMA,
                RtcCodec::PCMU => media::codec::PCMU,
                _ => return None,
            };
            Some((name, spec.clock_rate.get(), spec.channels.unwrap_or(0) as u16, *p.pt()))
        }) else {
            continue;
        };
        let kind = if kind == MediaKind::Video { Kind::Video } else { Kind::Audio };
        let mut codec = media::Codec::new(name, rate, channels, pt);
        if name == media::codec::H264 {
            codec = codec.with_fmtp("packetization-mode=1");
        }
        medias.push(media::Media::new(kind, media::Direction::RecvOnly, vec![codec]));
        mids.push(mid);
    }
    if medias.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "codecs not matched: the offer sends none of video:H264, audio:OPUS, audio:PCMA, audio:PCMU",
        ));
    }
    let guard = app
        .hub
        .publish(PublishRequest {
            path: dst.to_string(),
            protocol: "webrtc".into(),
            remote_addr: peer.to_string(),
            url: format!("webrtc://{peer}"),
            medias: medias.clone(),
            allow_create,
        })
        .map_err(publish_refused)?;
    let cancel = app.shutdown.child_token();
    let Some((id, rx)) = register(&server, &creds.ufrag, &cancel) else {
        return Err(too_many_sessions(&server));
    };
    let producer = guard.producer().clone();
    producer.set_identity(user, query);
    let incoming = producer.tracks().into_iter().zip(mids).map(|(track, mid)| Incoming::new(mid, track)).collect();
    let media_list: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
    tracing::info!(stream = %dst, peer = %peer, medias = ?media_list, "webrtc publisher accepted");
    let session = Session {
        id: id.clone(),
        server: server.clone(),
        candidates,
        rtc,
        reader: None,
        transcoded: None,
        outgoing: Vec::new(),
        publish: Some(guard),
        incoming,
        backchannel: None,
        rx,
        cancel,
        timeout,
    };
    let span = tracing::info_span!("webrtc", id = %id, dst = %dst, peer = %peer);
    tokio::spawn(tracing::Instrument::instrument(session.run(), span));
    Ok((id, candidates_in_every_section(&answer.to_sdp_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offer_codecs_become_filters() {
        let sdp = "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
                   m=video 9 UDP/TLS/RTP/SAVPF 96 97 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n\
                   a=rtpmap:102 H264/90000\r\n";
        let f = filters_for(&offered_codecs(sdp));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].kind, Kind::Audio);
        assert_eq!(f[0].codecs, vec!["OPUS", "PCMU"]);
        assert_eq!(f[1].codecs, vec!["H264"]);
        let vp8 =
            filters_for(&offered_codecs("m=video 9 x 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 rtx/90000\r\n"));
        assert_eq!(vp8[0].codecs, vec!["VP8"]);
        // Chromium's offer: AV1 and VP9 after H.264/H.265, in our order.
        let chromium = "m=video 9 x 96 45 98 102\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:45 AV1/90000\r\n\
                        a=rtpmap:98 VP9/90000\r\na=rtpmap:102 H264/90000\r\n";
        assert_eq!(filters_for(&offered_codecs(chromium))[0].codecs, vec!["H264", "AV1", "VP9"]);
    }

    #[test]
    fn sdp_errors_do_not_show_addresses() {
        // Seen running the `webrtc_offer` fuzz target: str0m's parse errors, answered to the peer,
        // named the place of the error by its memory address.
        let sdp = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\na=x\r\n";
        let e = SdpOffer::from_sdp_string(sdp).expect_err("no t= line");
        // Byte 36 is `a=x`, where `t=` must be.
        assert!(e.to_string().contains("PointerOffset(0x"), "{e}");
        let text = sdp_error(&e, sdp);
        assert!(!text.contains("0x") && text.contains("Parse error at byte 36"), "{text}");
        assert_eq!(
            sdp_error(&"at PointerOffset(0x10) and PointerOffset(0x", "x"),
            "at an unknown place and PointerOffset(0x"
        );
    }

    #[test]
    fn h264_payload_follows_packetization_mode_and_profile() {
        let pt = Pt::new_with_value;
        let f = Frequency::NINETY_KHZ;
        let offered = [
            (pt(96), f, Some(0), Some(0x42e01f)),
            (pt(98), f, Some(1), Some(0x42e01f)),
            (pt(100), f, Some(1), Some(0x640c1f)),
            (pt(102), f, Some(1), Some(0x4d001f)),
        ];
        let high = media::Codec::new(media::codec::H264, 90_000, 0, 96).with_fmtp("profile-level-id=640028");
        assert_eq!(best_payload(&offered, &high).unwrap().0, pt(100));
        let cb = media::Codec::new(media::codec::H264, 90_000, 0, 96).with_fmtp("profile-level-id=42e01e");
        assert_eq!(best_payload(&offered, &cb).unwrap().0, pt(98));
        // Unknown profile: the first in packetization mode 1.
        let none = media::Codec::new(media::codec::H264, 90_000, 0, 96);
        assert_eq!(best_payload(&offered, &none).unwrap().0, pt(98));
        assert!(best_payload(&[], &none).is_none());
    }

    #[test]
    fn unheard_medias_are_answered_send_only() {
        let answer =
            "v=0\r\ns=-\r\nm=video 9 x 96\r\na=mid:0\r\na=sendonly\r\nm=audio 9 x 111\r\na=mid:1\r\na=sendrecv\r\n\
                      m=audio 9 x 8\r\na=mid:2\r\na=recvonly\r\n";
        let out = not_receiving(answer, &[Mid::from("1"), Mid::from("2")]);
        assert_eq!(
            out,
            "v=0\r\ns=-\r\nm=video 9 x 96\r\na=mid:0\r\na=sendonly\r\nm=audio 9 x 111\r\na=mid:1\r\na=sendonly\r\n\
             m=audio 9 x 8\r\na=mid:2\r\na=inactive\r\n"
        );
        assert_eq!(not_receiving(answer, &[]), answer);
    }

    #[test]
    fn candidates_are_repeated_in_every_m_section() {
        let c = "a=candidate:1 1 udp 2130706175 127.0.0.1 8555 typ host\r\n";
        let answer =
            format!("v=0\r\nm=video 9 x 96\r\n{c}a=mid:0\r\nm=audio 9 x 0\r\na=mid:1\r\nm=audio 9 x 0\r\na=mid:2");
        assert_eq!(
            candidates_in_every_section(&answer),
            format!(
                "v=0\r\nm=video 9 x 96\r\n{c}a=mid:0\r\nm=audio 9 x 0\r\na=mid:1\r\n{c}m=audio 9 x 0\r\na=mid:2\r\n{c}"
            )
        );
        // Nothing to repeat, or nothing missing: unchanged.
        let none = "v=0\r\nm=video 9 x 96\r\na=mid:0\r\nm=audio 9 x 0\r\na=mid:1\r\n";
        assert_eq!(candidates_in_every_section(none), none);
        let both = format!("v=0\r\nm=video 9 x 96\r\n{c}m=audio 9 x 0\r\n{c}");
        assert_eq!(candidates_in_every_section(&both), both);
    }

    #[test]
    fn the_microphone_codecs_are_its_own_m_lines() {
        // go2rtc's web UI: the camera's sound on a recvonly m-line (any codec), the microphone sendonly.
        let split = "v=0\r\nm=video 9 x 96\r\na=rtpmap:96 H264/90000\r\na=recvonly\r\n\
                     m=audio 9 x 111 0 8\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\n\
                     a=rtpmap:8 PCMA/8000\r\na=recvonly\r\nm=audio 9 x 111\r\na=sendonly\r\n\
                     a=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(microphone_codecs(split), Some(vec!["OPUS".to_string()]));
        let sendrecv =
            "v=0\r\nm=audio 9 x 8 111\r\na=rtpmap:8 PCMA/8000\r\na=sendrecv\r\na=rtpmap:111 opus/48000/2\r\n";
        assert_eq!(microphone_codecs(sendrecv), Some(vec!["PCMA".to_string(), "OPUS".to_string()]));
        assert!(offer_sends_audio(sendrecv) && offer_sends_audio(split));
        let listening = "v=0\r\nm=audio 9 x 8\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\n\
                         m=video 9 x 96\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n";
        assert_eq!(microphone_codecs(listening), None);
        assert!(!offer_sends_audio(listening));
    }

    #[test]
    fn payload_types_must_agree_across_m_lines() {
        let ok = "m=video 9 x 96\r\na=rtpmap:96 H264/90000\r\nm=video 9 x 96\r\na=rtpmap:96 h264/90000\r\n";
        assert_eq!(inconsistent_payload_type(ok), None);
        let bad = "m=video 9 x 101\r\na=rtpmap:101 H264/90000\r\na=fmtp:101 packetization-mode=1\r\n\
                   m=audio 9 x 111\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:101 H264/90000\r\n";
        assert!(inconsistent_payload_type(bad).unwrap().contains("payload type 101"));
    }

    /// Runs two peers against each other in memory (UDP datagrams handed across, time advanced to the
    /// next timeout) until `ours` reports a connection; false if it has not after 30 s of their time.
    fn connect_in_memory(client: &mut Rtc, ours: &mut Rtc, mut now: Instant) -> bool {
        let end = now + Duration::from_secs(30);
        while now < end {
            let mut next = end;
            for side in 0..2 {
                let (from, to) = if side == 0 { (&mut *client, &mut *ours) } else { (&mut *ours, &mut *client) };
                loop {
                    match from.poll_output() {
                        Ok(Output::Transmit(t)) => {
                            let Ok(r) = Receive::new(Protocol::Udp, t.source, t.destination, &t.contents) else {
                                continue;
                            };
                            let _ = to.handle_input(Input::Receive(now, r));
                        }
                        Ok(Output::Event(Event::Connected)) if side == 1 => return true,
                        Ok(Output::Event(_)) => {}
                        Ok(Output::Timeout(t)) => {
                            next = next.min(t);
                            break;
                        }
                        Err(e) => panic!("str0m: {e}"),
                    }
                }
            }
            now = next.max(now + Duration::from_millis(1));
            let _ = client.handle_input(Input::Timeout(now));
            let _ = ours.handle_input(Input::Timeout(now));
        }
        false
    }

    /// Issue 12: a browser with no usable address (Chromium on loopback alone, in a container) sends an
    /// offer without candidate lines, or with mDNS names only (`<uuid>.local`), which tell the server
    /// nothing. The offer is answered, and the session connects from the checks the browser sends: the
    /// ICE-lite side learns the peer's address from them.
    #[test]
    fn offer_without_usable_candidates_connects_from_the_checks() {
        let client_addr = SocketAddr::from(([127, 0, 0, 1], 50000));
        for mdns in [false, true] {
            let now = Instant::now();
            let mut client = Rtc::builder().build(now);
            client.add_local_candidate(str0m::Candidate::host(client_addr, "udp").unwrap());
            let mut api = client.sdp_api();
            api.add_media(MediaKind::Video, str0m::media::Direction::RecvOnly, None, None, None);
            let (offer, pending) = api.apply().unwrap();
            let mut sdp = String::new();
            for line in offer.to_sdp_string().split_inclusive('\n') {
                if line.starts_with("a=candidate") {
                    continue;
                }
                sdp.push_str(line);
                if mdns && line.starts_with("a=mid:") {
                    sdp.push_str("a=candidate:1 1 udp 2113937151 0b5a7e52-7c2e-4b8e-9d3a-2f1e6c4b7a90.local 50000 typ host generation 0 network-cost 999\r\n");
                }
            }
            assert!(!sdp.contains("127.0.0.1 50000"), "the client's address is not in the offer");
            let creds = IceCreds::new();
            let mut ours = rtc_config(&creds).build(now);
            let offer = SdpOffer::from_sdp_string(&sdp).unwrap_or_else(|e| panic!("mdns={mdns}: {e}"));
            let (answer, _) = answer_offer_on_loopback(&mut ours, offer)
                .unwrap_or_else(|e| panic!("mdns={mdns}: the offer is refused: {}", e.1));
            client.sdp_api().accept_answer(pending, answer).unwrap();
            assert!(connect_in_memory(&mut client, &mut ours, now), "mdns={mdns}: no connection");
        }
    }

    #[test]
    fn ice_servers_become_link_headers() {
        let servers = vec![
            crate::config::IceServer { urls: vec!["stun:stun.example.net:3478".into()], ..Default::default() },
            crate::config::IceServer {
                urls: vec!["turn:192.0.2.1:3478".into(), "turns:turn.example.net".into()],
                username: "u".into(),
                credential: "p\"w".into(),
            },
        ];
        assert_eq!(
            ice_server_links(&servers),
            [
                "<stun:stun.example.net:3478>; rel=\"ice-server\"",
                "<turn:192.0.2.1:3478>; rel=\"ice-server\"; username=\"u\"; credential=\"p\\\"w\"; credential-type=\"password\"",
                "<turns:turn.example.net>; rel=\"ice-server\"; username=\"u\"; credential=\"p\\\"w\"; credential-type=\"password\"",
            ]
        );
    }

    #[test]
    fn webrtc_config_section() {
        let load = |text: &str| {
            // A cwd without camrelay.yaml / go2rtc.yaml: only the inline argument is read.
            crate::config::load(&[text.to_string()], std::path::Path::new("/nonexistent-camrelay-dir"), &|_| None)
        };
        let loaded = load(r#"{"webrtc":{"listen":"127.0.0.1:0","candidates":["192.0.2.1:9000","198.51.100.1"],"ice_servers":[{"urls":["stun:x"]}],"filters":{}}}"#).unwrap();
        assert_eq!(loaded.config.webrtc.listen, "127.0.0.1:0");
        assert_eq!(loaded.config.webrtc.candidates, vec!["192.0.2.1:9000", "198.51.100.1"]);
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
        let loaded = load(r#"{"webrtc":{"candidates":"192.0.2.1","bogus":1}}"#).unwrap();
        assert_eq!(loaded.config.webrtc.listen, ":8555");
        assert_eq!(loaded.config.webrtc.candidates, vec!["192.0.2.1"]);
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(load(r#"{"webrtc":{"listen":"nope"}}"#).is_err());
    }
}
