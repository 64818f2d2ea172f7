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
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::api::{error, Query};
use crate::app::App;
use crate::hub::{HubError, Producer, Reader, Track};

/// Most concurrent WebRTC sessions.
pub const MAX_SESSIONS: usize = 256;
/// A session that does not connect within this time is dropped.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// A connected peer that sends nothing (no STUN consent checks, no RTCP) for this long is gone.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Datagrams queued per session before the socket task drops new ones.
const SESSION_QUEUE: usize = 256;
/// Remote addresses remembered per session (ICE may try several).
const MAX_ADDRS_PER_SESSION: usize = 8;
/// Largest accepted offer body.
const MAX_OFFER_BYTES: usize = 64 * 1024;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/webrtc", post(webrtc_post).delete(webrtc_delete).patch(webrtc_patch))
}

/// Binds the UDP socket and runs the demultiplexer until shutdown. A socket that cannot be bound is
/// logged and WebRTC answers `503` (the other servers keep running, as in go2rtc).
pub async fn start(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = crate::config::bind_address(&app.config.webrtc.listen) else {
        tracing::info!("webrtc disabled (empty listen)");
        return Ok(None);
    };
    let socket = match UdpSocket::bind(&addr).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!("webrtc: cannot listen on {addr}: {e} (WebRTC disabled)");
            return Ok(None);
        }
    };
    let local = socket.local_addr()?;
    // Tests and scripts read this line to find ports chosen with `:0`.
    tracing::info!("webrtc listening on {local}/udp");
    let candidates = host_candidates(local, &app.config.webrtc.candidates);
    let server = server_for(&app);
    let _ = server.net.set(Net { socket: socket.clone(), local, candidates });
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        demux(server.clone(), socket, shutdown).await;
        // Ending the socket task ends every session.
        let sessions: Vec<_> = server.lock().by_id.values().map(|s| s.cancel.clone()).collect();
        for c in sessions {
            c.cancel();
        }
    })))
}

/// The advertised host candidates: the bound address (`127.0.0.1` for all-interfaces binds, so
/// loopback peers connect) and the configured ones (`ip` or `ip:port`; host names are not resolved).
fn host_candidates(local: SocketAddr, configured: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if local.ip().is_unspecified() {
        out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port()));
    } else {
        out.push(local);
    }
    for c in configured {
        let parsed = c
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| c.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, local.port())));
        match parsed {
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
            None => tracing::warn!("webrtc: candidate {c:?} is not ip or ip:port (ignored)"),
        }
    }
    out
}

/// The WebRTC state of one `App` (`App::webrtc`): the routes (built before the socket is bound) and the
/// socket task both reach it there.
#[derive(Default)]
pub struct Server {
    net: std::sync::OnceLock<Net>,
    sessions: Mutex<Sessions>,
}

struct Net {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
}

#[derive(Default)]
struct Sessions {
    by_id: HashMap<String, SessionEntry>,
    by_ufrag: HashMap<String, String>,
    by_addr: HashMap<SocketAddr, String>,
}

struct SessionEntry {
    ufrag: String,
    tx: mpsc::Sender<Datagram>,
    cancel: CancellationToken,
    addrs: Vec<SocketAddr>,
}

struct Datagram {
    source: SocketAddr,
    data: Vec<u8>,
}

/// The WebRTC state of one `App` (its field `webrtc`): shared by the HTTP handlers and the socket task.
fn server_for(app: &Arc<App>) -> Arc<Server> {
    app.webrtc.clone()
}

impl Server {
    fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn remove(&self, id: &str) {
        let mut s = self.lock();
        if let Some(e) = s.by_id.remove(id) {
            s.by_ufrag.remove(&e.ufrag);
            for a in &e.addrs {
                s.by_addr.remove(a);
            }
        }
    }

    /// Routes one datagram to its session's queue; unknown senders and full queues drop it.
    fn route(&self, source: SocketAddr, data: &[u8]) {
        let mut s = self.lock();
        let id = match s.by_addr.get(&source) {
            Some(id) => id.clone(),
            None => {
                let Some(ufrag) = stun_local_ufrag(data) else { return };
                let Some(id) = s.by_ufrag.get(ufrag).cloned() else { return };
                let Some(entry) = s.by_id.get_mut(&id) else { return };
                if entry.addrs.len() >= MAX_ADDRS_PER_SESSION {
                    return;
                }
                entry.addrs.push(source);
                s.by_addr.insert(source, id.clone());
                id
            }
        };
        if let Some(entry) = s.by_id.get(&id) {
            let _ = entry.tx.try_send(Datagram { source, data: data.to_vec() });
        }
    }
}

async fn demux(server: Arc<Server>, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 2048];
    loop {
        let r = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match r {
            Ok((n, source)) => server.route(source, &buf[..n]),
            // ICMP errors of earlier sends surface here on some systems; the socket stays usable.
            Err(e) => tracing::debug!("webrtc: recv: {e}"),
        }
    }
}

/// The local part of a STUN binding request's USERNAME (`local:remote`), if `data` is one.
fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let attrs = data.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= attrs.len() {
        let typ = u16::from_be_bytes([attrs[i], attrs[i + 1]]);
        let alen = u16::from_be_bytes([attrs[i + 2], attrs[i + 3]]) as usize;
        let value = attrs.get(i + 4..i + 4 + alen)?;
        if typ == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split(':').next();
        }
        i += 4 + alen.div_ceil(4) * 4;
    }
    None
}

/// Codec names per kind that an offer lists (`a=rtpmap`), uppercased, in offer order.
fn offered_codecs(sdp: &str) -> Vec<(Kind, Vec<String>)> {
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
fn filters_for(offered: &[(Kind, Vec<String>)]) -> Vec<MediaFilter> {
    let mut filters: Vec<MediaFilter> = Vec::new();
    for (kind, names) in offered {
        if filters.iter().any(|f| f.kind == *kind) {
            continue;
        }
        let ours: &[&str] = match kind {
            Kind::Video => &[media::codec::H264, media::codec::H265],
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

/// Payload types that are not media codecs of their own.
fn is_helper_codec(name: &str) -> bool {
    matches!(name, "RTX" | "RED" | "ULPFEC" | "FLEXFEC-03" | "CN" | "TELEPHONE-EVENT")
}

fn rtc_codec(name: &str) -> Option<RtcCodec> {
    Some(match name {
        media::codec::H264 => RtcCodec::H264,
        media::codec::H265 => RtcCodec::H265,
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
    let base = app.config.api.base_path.trim_end_matches('/').to_string();
    let result = if let Some(dst) = q.get("dst").filter(|d| !d.is_empty()) {
        new_publish_session(&app, dst, &sdp, peer).await
    } else {
        let Some(src) = q.get("src").filter(|s| !s.is_empty()) else {
            return error(StatusCode::BAD_REQUEST, "missing src= (the stream to play) or dst= (the stream to publish)");
        };
        new_session(&app, src, &sdp, peer, &user_agent).await
    };
    match result {
        Ok((id, answer)) => match body {
            OfferBody::Json(_) => Json(json!({"type": "answer", "sdp": answer})).into_response(),
            OfferBody::Sdp(_) => Response::builder()
                .status(StatusCode::CREATED)
                .header(header::CONTENT_TYPE, "application/sdp")
                .header(header::LOCATION, format!("{base}/api/webrtc?id={id}"))
                .body(Body::from(answer))
                .unwrap_or_else(|_| error(StatusCode::INTERNAL_SERVER_ERROR, "response")),
        },
        Err(r) => r,
    }
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

/// One reader track and where it goes in the peer connection.
struct Outgoing {
    mid: Mid,
    pt: Pt,
    annexb: bool,
    needs_keyframe: bool,
    freq: Frequency,
    last: Option<u32>,
    extended: u64,
}

impl Outgoing {
    /// The frame's RTP timestamp extended to 64 bits (str0m's media time does not wrap).
    fn media_time(&mut self, ts: u32) -> MediaTime {
        self.extended = match self.last {
            // Start high so a small step back never goes below zero.
            None => (1u64 << 32) + ts as u64,
            Some(last) => self.extended.saturating_add_signed(ts.wrapping_sub(last) as i32 as i64),
        };
        self.last = Some(ts);
        MediaTime::new(self.extended, self.freq)
    }
}

/// An ICE-lite peer with our credentials and the codecs both directions use: H.264, Opus, PCMA, PCMU.
fn rtc_config(creds: &IceCreds) -> str0m::RtcConfig {
    Rtc::builder()
        .set_ice_lite(true)
        .set_local_ice_credentials(creds.clone())
        .clear_codecs()
        .enable_h264(true)
        .enable_opus(true, false)
        .enable_pcma(true, false)
        .enable_pcmu(true, false)
}

/// Adds our host candidates, answers the offer and drains str0m's output up to its first timeout
/// (nothing is sent before ICE): what playback and publish sessions share.
fn answer_offer(
    rtc: &mut Rtc,
    offer: SdpOffer,
    candidates: &[SocketAddr],
) -> Result<(str0m::change::SdpAnswer, Instant), super::api::ApiError> {
    for c in candidates {
        match Candidate::host(*c, "udp") {
            Ok(c) => {
                rtc.add_local_candidate(c);
            }
            Err(e) => tracing::warn!("webrtc: candidate {c}: {e}"),
        }
    }
    let answer = rtc
        .sdp_api()
        .accept_offer(offer)
        .map_err(|e| super::api::ApiError(StatusCode::BAD_REQUEST, format!("webrtc: cannot answer the offer: {e}")))?;
    loop {
        match rtc.poll_output() {
            Ok(Output::Timeout(t)) => return Ok((answer, t)),
            Ok(_) => {}
            Err(e) => return Err(super::api::ApiError(StatusCode::BAD_REQUEST, format!("webrtc: {e}"))),
        }
    }
}

pub(crate) async fn new_session(
    app: &Arc<App>,
    src: &str,
    offer_sdp: &str,
    peer: SocketAddr,
    user_agent: &str,
) -> Result<(String, String), Response> {
    let server = server_for(app);
    let Some(net) = server.net.get() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "webrtc: no UDP socket (see webrtc.listen)"));
    };
    let offer = SdpOffer::from_sdp_string(offer_sdp)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("webrtc: invalid SDP offer: {e}")))?;
    if server.lock().by_id.len() >= MAX_SESSIONS {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, format!("webrtc: too many sessions ({MAX_SESSIONS})")));
    }
    let filters = filters_for(&offered_codecs(offer_sdp));
    if filters.is_empty() {
        return Err(error(StatusCode::BAD_REQUEST, "codecs not matched: the offer has no audio or video"));
    }
    let shared = app.hub.new_reader_shared("webrtc", peer.to_string());
    *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) = user_agent.to_string();
    let reader = match app.hub.subscribe(src, &filters, shared, true).await {
        Ok(r) => r,
        Err(HubError::NotFound(n)) => return Err(error(StatusCode::NOT_FOUND, format!("stream not found: {n}"))),
        Err(e @ HubError::NotMatched(_)) => return Err(error(StatusCode::BAD_REQUEST, e.to_string())),
        Err(e) => return Err(error(StatusCode::NOT_FOUND, format!("stream {src}: {e}"))),
    };

    let creds = IceCreds::new();
    // Every codec we can send is offered back, also for medias the stream has nothing for (an answer
    // without codecs is rejected by peers); H.265 only when the stream sends it.
    let mut config = rtc_config(&creds);
    if reader.tracks.iter().any(|t| t.codec.name == media::codec::H265) {
        config = config.enable_h265(true);
    }
    let now = Instant::now();
    let mut rtc = config.build(now);
    // str0m reports MediaAdded only once connected, so the medias are the offer's `a=mid:` lines.
    let (answer, timeout) = answer_offer(&mut rtc, offer, &net.candidates).map_err(IntoResponse::into_response)?;
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
    for t in &reader.tracks {
        let want_kind = if t.track.kind == Kind::Video { MediaKind::Video } else { MediaKind::Audio };
        let want = rtc_codec(&t.codec.name);
        let mut found = None;
        for (mid, kind) in &mids {
            if *kind != want_kind || used.contains(mid) {
                continue;
            }
            let Some(writer) = rtc.writer(*mid) else { continue };
            let hit =
                writer.payload_params().find(|p| Some(p.spec().codec) == want).map(|p| (p.pt(), p.spec().clock_rate));
            if let Some((pt, rate)) = hit {
                found = Some((*mid, pt, rate));
                break;
            }
        }
        outgoing.push(found.map(|(mid, pt, freq)| {
            used.push(mid);
            let video = t.track.kind == Kind::Video;
            let freq = NonZeroU32::new(t.codec.clock_rate).map(Frequency::from_nonzero).unwrap_or(freq);
            Outgoing { mid, pt, annexb: video, needs_keyframe: video, freq, last: None, extended: 0 }
        }));
    }
    if outgoing.iter().all(Option::is_none) {
        let ours: Vec<String> =
            reader.tracks.iter().map(|t| format!("{}:{}", t.track.kind, t.codec.short_name())).collect();
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("codecs not matched: the answer has none of {}", ours.join(", ")),
        ));
    }

    let id = format!("{:016x}", rand::random::<u64>());
    let (tx, rx) = mpsc::channel(SESSION_QUEUE);
    let cancel = app.shutdown.child_token();
    {
        let mut s = server.lock();
        if s.by_id.len() >= MAX_SESSIONS {
            return Err(error(StatusCode::SERVICE_UNAVAILABLE, format!("webrtc: too many sessions ({MAX_SESSIONS})")));
        }
        s.by_ufrag.insert(creds.ufrag.clone(), id.clone());
        s.by_id.insert(
            id.clone(),
            SessionEntry { ufrag: creds.ufrag.clone(), tx, cancel: cancel.clone(), addrs: Vec::new() },
        );
    }
    let session = Session {
        id: id.clone(),
        server: server.clone(),
        socket: net.socket.clone(),
        local: net.local,
        candidates: net.candidates.clone(),
        rtc,
        reader: Some(reader),
        outgoing,
        publish: None,
        incoming: Vec::new(),
        rx,
        cancel,
        timeout,
    };
    let span = tracing::info_span!("webrtc", id = %id, stream = %src, peer = %peer);
    tokio::spawn(tracing::Instrument::instrument(session.run(), span));
    Ok((id, answer.to_sdp_string()))
}

/// Registers a new session's ICE username and queue; `None` when the session limit is reached.
fn register(server: &Server, ufrag: &str, cancel: &CancellationToken) -> Option<(String, mpsc::Receiver<Datagram>)> {
    let id = format!("{:016x}", rand::random::<u64>());
    let (tx, rx) = mpsc::channel(SESSION_QUEUE);
    let mut s = server.lock();
    if s.by_id.len() >= MAX_SESSIONS {
        return None;
    }
    s.by_ufrag.insert(ufrag.to_string(), id.clone());
    s.by_id
        .insert(id.clone(), SessionEntry { ufrag: ufrag.to_string(), tx, cancel: cancel.clone(), addrs: Vec::new() });
    Some((id, rx))
}

/// One medium the publishing peer sends, pushed into a hub track.
struct Incoming {
    mid: Mid,
    track: Arc<Track>,
    packetizer: Option<Box<dyn rtp::packetize::Packetizer>>,
    h264: bool,
    /// Last parameter sets, put in front of keyframes that come without them.
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
}

impl Incoming {
    fn push(&mut self, time: MediaTime, data: &[u8]) {
        // str0m's media time is in the negotiated clock; the hub wants a 32-bit RTP timestamp of the track's.
        let ts = match NonZeroU32::new(self.track.codec.clock_rate) {
            Some(rate) => time.rebase(Frequency::from_nonzero(rate)).numer(),
            None => time.numer(),
        } as u32;
        let (payload, keyframe) = if self.h264 { self.h264_access_unit(data) } else { (data.to_vec(), true) };
        if payload.is_empty() {
            return;
        }
        let mut frame = media::Frame { timestamp: ts, keyframe, payload: payload.into(), rtp: Vec::new() };
        if let Some(p) = self.packetizer.as_mut() {
            let mut packets = Vec::new();
            p.packetize(&frame, &mut packets);
            frame.rtp = packets;
        }
        self.track.push(frame);
    }

    /// Annex B access unit → AVCC payload, with SPS/PPS in front of every IDR.
    fn h264_access_unit(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let nals: Vec<&[u8]> = media::h264::annexb_nals(data).filter(|n| !n.is_empty()).collect();
        let mut keyframe = false;
        let (mut has_sps, mut has_pps) = (false, false);
        for n in &nals {
            match media::h264::nal_type(n[0]) {
                5 => keyframe = true,
                7 => {
                    has_sps = true;
                    self.sps = Some(n.to_vec());
                }
                8 => {
                    has_pps = true;
                    self.pps = Some(n.to_vec());
                }
                _ => {}
            }
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut put = |n: &[u8]| {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        };
        if keyframe {
            if let (false, Some(sps)) = (has_sps, &self.sps) {
                put(sps);
            }
            if let (false, Some(pps)) = (has_pps, &self.pps) {
                put(pps);
            }
        }
        for n in nals {
            put(n);
        }
        (out, keyframe)
    }
}

/// WHIP: the peer publishes into stream `dst` (which must exist unless `rtsp.allow_any_publish`).
async fn new_publish_session(
    app: &Arc<App>,
    dst: &str,
    offer_sdp: &str,
    peer: SocketAddr,
) -> Result<(String, String), Response> {
    let server = server_for(app);
    let Some(net) = server.net.get() else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, "webrtc: no UDP socket (see webrtc.listen)"));
    };
    let offer = SdpOffer::from_sdp_string(offer_sdp)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("webrtc: invalid SDP offer: {e}")))?;
    let Some(stream) = app.hub.stream_for_publish(dst, app.config.rtsp.allow_any_publish) else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!(
                "stream not found: {dst} (add it to the config with an empty source, or set rtsp.allow_any_publish)"
            ),
        ));
    };
    let creds = IceCreds::new();
    let mut rtc = rtc_config(&creds).build(Instant::now());
    let (answer, timeout) = answer_offer(&mut rtc, offer, &net.candidates).map_err(IntoResponse::into_response)?;
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
    let cancel = app.shutdown.child_token();
    let Some((id, rx)) = register(&server, &creds.ufrag, &cancel) else {
        return Err(error(StatusCode::SERVICE_UNAVAILABLE, format!("webrtc: too many sessions ({MAX_SESSIONS})")));
    };
    let url = format!("webrtc://{peer}");
    let producer =
        Producer::pushed(&url, "webrtc", &peer.to_string(), medias.clone(), app.hub.settings.gop_cache_bytes);
    let incoming = producer
        .tracks()
        .into_iter()
        .zip(mids)
        .map(|(track, mid)| Incoming {
            mid,
            packetizer: rtp::packetize::packetizer_for(&track.codec, 1200),
            h264: track.codec.name == media::codec::H264,
            track,
            sps: None,
            pps: None,
        })
        .collect();
    let media_list: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
    tracing::info!(stream = %dst, peer = %peer, medias = ?media_list, "webrtc publisher accepted");
    stream.add_producer(producer.clone());
    let session = Session {
        id: id.clone(),
        server: server.clone(),
        socket: net.socket.clone(),
        local: net.local,
        candidates: net.candidates.clone(),
        rtc,
        reader: None,
        outgoing: Vec::new(),
        publish: Some((stream, producer)),
        incoming,
        rx,
        cancel,
        timeout,
    };
    let span = tracing::info_span!("webrtc", id = %id, dst = %dst, peer = %peer);
    tokio::spawn(tracing::Instrument::instrument(session.run(), span));
    Ok((id, answer.to_sdp_string()))
}

async fn next_delivery(reader: &mut Option<Reader>) -> Option<crate::hub::Delivery> {
    match reader {
        Some(r) => r.queue.recv().await,
        None => std::future::pending().await,
    }
}

struct Session {
    id: String,
    server: Arc<Server>,
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    candidates: Vec<SocketAddr>,
    rtc: Rtc,
    /// Playing (WHEP): the hub reader and where each of its tracks goes.
    reader: Option<Reader>,
    outgoing: Vec<Option<Outgoing>>,
    /// Publishing (WHIP): the producer in the stream and the tracks the peer's medias feed.
    publish: Option<(Arc<crate::hub::Stream>, Arc<Producer>)>,
    incoming: Vec<Incoming>,
    rx: mpsc::Receiver<Datagram>,
    cancel: CancellationToken,
    timeout: Instant,
}

enum Step {
    Continue,
    End(&'static str),
}

impl Session {
    async fn run(mut self) {
        tracing::info!("webrtc session started");
        let connect_deadline = tokio::time::Instant::now() + CONNECT_TIMEOUT;
        let mut connected = false;
        let mut last_rx = tokio::time::Instant::now();
        let why = loop {
            let timeout = tokio::time::Instant::from_std(self.timeout);
            let step = tokio::select! {
                _ = self.cancel.cancelled() => Step::End("closed"),
                _ = tokio::time::sleep_until(connect_deadline), if !connected => Step::End("ICE timeout"),
                _ = tokio::time::sleep_until(last_rx + IDLE_TIMEOUT), if connected => Step::End("peer silent"),
                _ = tokio::time::sleep_until(timeout) => self.input(Input::Timeout(Instant::now())),
                d = self.rx.recv() => match d {
                    Some(d) => {
                        last_rx = tokio::time::Instant::now();
                        self.receive(d)
                    }
                    None => Step::End("closed"),
                },
                d = next_delivery(&mut self.reader) => match d {
                    Some(d) if connected => self.write(d.slot, &d.frame),
                    Some(_) => Step::Continue,
                    None => Step::End("stream ended"),
                },
            };
            if let Step::End(why) = step {
                break why;
            }
            match self.drain().await {
                Ok(now_connected) => connected |= now_connected,
                Err(why) => break why,
            }
        };
        self.rtc.disconnect();
        self.server.remove(&self.id);
        if let Some((stream, producer)) = self.publish.take() {
            stream.remove_producer(producer.id);
            tracing::info!("webrtc publisher disconnected");
        }
        tracing::info!("webrtc session ended: {why}");
    }

    fn input(&mut self, input: Input) -> Step {
        match self.rtc.handle_input(input) {
            Ok(()) => Step::Continue,
            Err(e) => {
                tracing::debug!("webrtc input: {e}");
                Step::Continue
            }
        }
    }

    fn receive(&mut self, d: Datagram) -> Step {
        let Ok(contents) = d.data.as_slice().try_into() else { return Step::Continue };
        // The socket may be bound to all interfaces: name the candidate of the peer's address family
        // and scope (ICE matches the destination against the local candidates).
        let destination = self
            .candidates
            .iter()
            .find(|c| c.ip().is_loopback() == d.source.ip().is_loopback() && c.is_ipv4() == d.source.is_ipv4())
            .or(self.candidates.first())
            .copied()
            .unwrap_or(self.local);
        let input =
            Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source: d.source, destination, contents });
        if !self.rtc.accepts(&input) {
            return Step::Continue;
        }
        self.input(input)
    }

    fn write(&mut self, slot: usize, frame: &media::Frame) -> Step {
        let Some(Some(out)) = self.outgoing.get_mut(slot) else { return Step::Continue };
        if out.needs_keyframe {
            if !frame.keyframe {
                return Step::Continue;
            }
            out.needs_keyframe = false;
        }
        let payload: Vec<u8> =
            if out.annexb { media::h264::avcc_to_annexb(&frame.payload) } else { frame.payload.to_vec() };
        let (mid, pt) = (out.mid, out.pt);
        let time = out.media_time(frame.timestamp);
        let Some(writer) = self.rtc.writer(mid) else { return Step::Continue };
        let len = payload.len() as u64;
        if let Err(e) = writer.write(pt, Instant::now(), time, payload) {
            tracing::debug!("webrtc write: {e}");
        } else {
            if let Some(r) = &self.reader {
                r.shared.count_sent(1, len);
            }
        }
        Step::Continue
    }

    /// Polls str0m until its next timeout, sending what it transmits; `Ok(true)` once ICE connected.
    async fn drain(&mut self) -> Result<bool, &'static str> {
        let mut connected = false;
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Timeout(t)) => {
                    self.timeout = t;
                    return Ok(connected);
                }
                Ok(Output::Transmit(t)) => {
                    if let Err(e) = self.socket.send_to(&t.contents, t.destination).await {
                        tracing::debug!("webrtc send to {}: {e}", t.destination);
                    }
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        tracing::info!("webrtc connected");
                        connected = true;
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err("ICE disconnected")
                    }
                    Event::Closed => return Err("peer closed"),
                    Event::MediaData(d) => {
                        if let Some(i) = self.incoming.iter_mut().find(|i| i.mid == d.mid) {
                            i.push(d.time, &d.data);
                        }
                    }
                    _ => {}
                },
                Err(e) => {
                    tracing::debug!("webrtc: {e}");
                    return Err("WebRTC error");
                }
            }
            if !self.rtc.is_alive() {
                return Err("peer closed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_username_is_parsed_and_garbage_is_not() {
        // Binding request with USERNAME "abcd:efgh".
        let mut p = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
        p.extend_from_slice(&[0u8; 12]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        p.extend_from_slice(b"abcd:efgh\0\0\0");
        p[3] = 16;
        assert_eq!(stun_local_ufrag(&p), Some("abcd"));
        assert_eq!(stun_local_ufrag(&p[..30]), None);
        assert_eq!(stun_local_ufrag(b"\x80\x60garbage-rtp-packet-xxxxxxxx"), None);
        for n in 0..p.len() {
            let _ = stun_local_ufrag(&p[..n]);
        }
    }

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
    }

    #[test]
    fn media_time_extends_across_wrap() {
        let mut o = Outgoing {
            mid: Mid::from("0"),
            pt: Pt::new_with_value(96),
            annexb: true,
            needs_keyframe: true,
            freq: Frequency::NINETY_KHZ,
            last: None,
            extended: 0,
        };
        let a = o.media_time(u32::MAX - 10).numer();
        let b = o.media_time(5).numer();
        assert_eq!(b - a, 16);
    }

    #[test]
    fn published_idr_gets_parameter_sets_in_front() {
        let codec = media::Codec::new(media::codec::H264, 90_000, 0, 96);
        let mut i = Incoming {
            mid: Mid::from("0"),
            track: Arc::new(Track::new(Kind::Video, codec, 0)),
            packetizer: None,
            h264: true,
            sps: None,
            pps: None,
        };
        let (avcc, key) = i.h264_access_unit(b"\0\0\0\x01\x67\x42\0\0\0\x01\x68\xce\0\0\0\x01\x65\x88");
        assert!(key);
        assert_eq!(avcc, b"\0\0\0\x02\x67\x42\0\0\0\x02\x68\xce\0\0\0\x02\x65\x88");
        let (avcc, key) = i.h264_access_unit(b"\0\0\x01\x65\x99");
        assert!(key);
        assert_eq!(avcc, b"\0\0\0\x02\x67\x42\0\0\0\x02\x68\xce\0\0\0\x02\x65\x99");
        let (avcc, key) = i.h264_access_unit(b"\0\0\x01\x41\x01");
        assert!(!key);
        assert_eq!(avcc, b"\0\0\0\x02\x41\x01");
        assert_eq!(i.h264_access_unit(b"garbage").0, b"");
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

    #[test]
    fn candidates_for_all_interfaces_use_loopback() {
        let c = host_candidates("0.0.0.0:8555".parse().unwrap(), &["192.0.2.1".into(), "bad host".into()]);
        assert_eq!(c, vec!["127.0.0.1:8555".parse().unwrap(), "192.0.2.1:8555".parse().unwrap()]);
    }
}
