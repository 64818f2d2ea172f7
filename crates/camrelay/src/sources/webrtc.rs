//! `webrtc:` — pulls a stream from another WebRTC server (go2rtc's "Source: WebRTC"), in two
//! signalling formats:
//!
//! - WHEP, `webrtc:http(s)://host/api/webrtc?src=cam`: POST the SDP offer (`application/sdp`), expect
//!   `201 Created` with the SDP answer and a `Location` (DELETEd when the source stops). A `200` with
//!   an SDP body or go2rtc's JSON `{"type":"answer","sdp":...}` is accepted too. Up to 3 redirects
//!   (307/308) are followed.
//! - go2rtc's WebSocket API, `webrtc:ws(s)://host/api/ws?src=cam`: send
//!   `{"type":"webrtc/offer","value":SDP}`, receive `webrtc/answer` and `webrtc/candidate` messages,
//!   and send our candidates as `webrtc/candidate`. The WebSocket stays open for the session (go2rtc
//!   ends the peer connection when it closes).
//!
//! The peer is a str0m `Rtc` in full-ICE mode (we offer, so we are the controlling agent) with its
//! own UDP socket. Host candidates: the address this machine reaches the signalling server from, and
//! for every candidate of the answer the address the kernel would send to it from. Medias: one
//! recvonly video (H.264) and one recvonly audio (Opus, PCMA, PCMU) transceiver.
//!
//! `describe` signals (offer/answer) and reports the medias the remote answered as sending. A remote
//! that answers several audio codecs (camrelay's own server does: it lists every codec it could
//! send) is connected at once and the codec is taken from the first audio packet; audio that does
//! not arrive within 1.5 s of ICE connecting (0.5 s after the first video packet) is left out, and
//! the media received meanwhile is replayed into the tracks. The connection is kept for `run`, which
//! claims it (or dials anew when it is older than 10 s or gone), connects ICE/DTLS, and pushes the
//! remote's frames into the tracks. A connection `run` never claims is closed after 10 s; a peer
//! dropped mid-way (its future cancelled) still ends the remote session from a spawned task.
//!
//! Failures: ICE that does not connect within 10 s, an ICE disconnect, a DTLS close from the remote,
//! a closed signalling WebSocket, or 15 s without media end the run with an error naming the step;
//! the producer retries. Stopping closes DTLS (the remote sees the peer leave at once), DELETEs the
//! WHEP session or closes the WebSocket.

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use media::{Codec, Direction, Kind, Media};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaData, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, IceCreds, Input, Output, Rtc};
use tokio::net::UdpSocket;

use crate::dial::Io;
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::hub::{BoxFuture, Source, SourceError, SourceFactory, Track};
use crate::secrets::{mask_text, mask_url};
use crate::servers::webrtc::{rtc_config, sdp_error, Incoming};
use crate::sources::exec::parse_query;

/// TCP (and TLS) connect to the signalling server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The answer to an offer (HTTP response or WebSocket message).
const SIGNAL_TIMEOUT: Duration = Duration::from_secs(10);
/// ICE (and DTLS) must connect within this time of the answer.
const ICE_TIMEOUT: Duration = Duration::from_secs(10);
/// A connected remote that sends no media for this long is gone.
const SILENCE_TIMEOUT: Duration = Duration::from_secs(15);
/// When the answer lists several codecs for a media, how long after ICE connects we wait for its
/// first packet to learn which one the remote sends...
const CODEC_PROBE: Duration = Duration::from_millis(1500);
/// ...or after the first packet of another media (a server sends what it has together).
const CODEC_PROBE_AFTER_MEDIA: Duration = Duration::from_millis(500);
/// A connection `describe` opened is reused by `run` within this time, and closed after it.
const REUSE_WITHIN: Duration = Duration::from_secs(10);
/// Largest answer (HTTP body or WebSocket message) accepted.
const MAX_SIGNAL_BYTES: usize = 256 * 1024;
/// Media kept while `describe` waits for a codec, replayed when `run` starts.
const MAX_BUFFERED_BYTES: usize = 4 * 1024 * 1024;
/// Keyframe requests (PLI) are sent at most this often.
const KEYFRAME_REQUEST_INTERVAL: Duration = Duration::from_secs(1);
/// Closing steps (DELETE, WebSocket close) give up after this.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// WHEP redirects followed.
const MAX_REDIRECTS: usize = 3;
/// Local addresses remembered for remote addresses (route lookups).
const MAX_ROUTES: usize = 32;
/// Largest UDP datagram read.
const UDP_BUFFER: usize = 2048;

pub fn factory() -> SourceFactory {
    Arc::new(|url: &str| Ok(Arc::new(WebrtcSource::new(url)?) as Arc<dyn Source>))
}

// ------------------------------------------------------------------------------------------ URL

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    Ws,
    Wss,
}

/// The signalling URL (after `webrtc:`, without `#` parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, `/` at least.
    pub(crate) path: String,
    /// `user:pass`, percent-decoded: sent as Basic auth.
    pub(crate) userinfo: Option<String>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) =
            url.split_once("://").ok_or("not a URL (expected webrtc:http://... or webrtc:ws://...)")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            s => return Err(format!("unsupported scheme {s:?} (expected http, https, ws or wss)")),
        };
        let crate::dial::Authority { userinfo, host, port, path } = crate::dial::split_authority(rest)?;
        let tls = matches!(scheme, Scheme::Https | Scheme::Wss);
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { scheme, host, port, path, userinfo })
    }

    fn tls(&self) -> bool {
        matches!(self.scheme, Scheme::Https | Scheme::Wss)
    }

    fn websocket(&self) -> bool {
        matches!(self.scheme, Scheme::Ws | Scheme::Wss)
    }

    pub(crate) fn host_header(&self) -> String {
        crate::dial::host_header(&self.host, self.port, if self.tls() { 443 } else { 80 })
    }

    /// The URL without credentials.
    pub(crate) fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }

    pub(crate) fn basic_auth(&self) -> Option<String> {
        use base64::Engine;
        self.userinfo.as_ref().map(|u| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(u)))
    }

    /// A `Location` (absolute, absolute-path or relative) against this URL. Credentials follow only
    /// to the same host and port.
    pub(crate) fn resolve(&self, location: &str) -> Result<Target, String> {
        let mut next = if location.contains("://") {
            let t = Target::parse(location)?;
            if t.websocket() {
                return Err(format!("Location {location:?} is not http(s)"));
            }
            t
        } else {
            Target { path: crate::dial::resolve_path(&self.path, location), ..self.clone() }
        };
        if next.userinfo.is_none() && next.host == self.host && next.port == self.port {
            next.userinfo = self.userinfo.clone();
        }
        Ok(next)
    }
}

// ---------------------------------------------------------------------------------- signalling IO

/// A TCP (TLS for https/wss) connection to the signalling server, with the local address it uses.
async fn connect(t: &Target) -> Result<(Box<dyn Io>, SocketAddr), String> {
    let tls = if t.tls() { crate::dial::Tls::Verify } else { crate::dial::Tls::None };
    let d = crate::dial::tcp(&t.host, t.port, tls, CONNECT_TIMEOUT).await?;
    Ok((d.io, d.local))
}

struct HttpAnswer {
    status: hyper::StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// Aborts a spawned task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One HTTP/1.1 request on a new connection; the body is read whole (bounded).
async fn http_request(
    t: &Target,
    method: hyper::Method,
    sdp: Option<&str>,
) -> Result<(HttpAnswer, SocketAddr), String> {
    let (io, local) = connect(t).await?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        .max_buf_size(64 * 1024)
        .handshake::<_, Full<Bytes>>(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP: {e}"))?;
    let _conn = AbortOnDrop(tokio::spawn(async move {
        let _ = conn.await;
    }));
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(t.path.as_str())
        .header(hyper::header::HOST, t.host_header())
        .header(hyper::header::USER_AGENT, concat!("camrelay/", env!("CARGO_PKG_VERSION")));
    if let Some(auth) = t.basic_auth() {
        req = req.header(hyper::header::AUTHORIZATION, auth);
    }
    let body = match sdp {
        Some(sdp) => {
            req = req
                .header(hyper::header::CONTENT_TYPE, "application/sdp")
                .header(hyper::header::ACCEPT, "application/sdp, application/json");
            Full::new(Bytes::copy_from_slice(sdp.as_bytes()))
        }
        None => Full::new(Bytes::new()),
    };
    let req = req.body(body).map_err(|e| format!("request: {e}"))?;
    let exchange = async {
        let resp = sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"))?;
        let (parts, body) = resp.into_parts();
        let body = Limited::new(body, MAX_SIGNAL_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the answer: {e}"))?
            .to_bytes();
        Ok::<_, String>(HttpAnswer { status: parts.status, headers: parts.headers, body })
    };
    match tokio::time::timeout(SIGNAL_TIMEOUT, exchange).await {
        Ok(r) => r.map(|a| (a, local)),
        Err(_) => Err(format!("no answer within {} s", SIGNAL_TIMEOUT.as_secs())),
    }
}

/// The readable part of an error body: go2rtc's / camrelay's `{"error": "..."}`, or the text's first
/// line (bounded).
pub(crate) fn error_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return e.to_string();
        }
    }
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    line.chars().take(200).collect()
}

/// The SDP of a WHEP / go2rtc HTTP answer body: raw SDP, or JSON `{"type":"answer","sdp":...}`.
pub(crate) fn answer_sdp(content_type: &str, body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_string())?;
    if content_type.contains("json") || text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
        return match (v.get("type").and_then(|t| t.as_str()), v.get("sdp").and_then(|s| s.as_str())) {
            (Some("answer") | None, Some(sdp)) => Ok(sdp.to_string()),
            _ => Err(format!("expected {{\"type\":\"answer\",\"sdp\":...}}, got {}", snippet(text))),
        };
    }
    Ok(text.to_string())
}

fn snippet(text: &str) -> String {
    let s: String = text.chars().take(80).collect();
    format!("{:?}{}", s, if text.chars().count() > 80 { "..." } else { "" })
}

type WsStream = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

async fn ws_connect(t: &Target) -> Result<(WsStream, SocketAddr), String> {
    use tungstenite::client::IntoClientRequest;
    let (io, local) = connect(t).await?;
    let mut req = t.url().into_client_request().map_err(|e| format!("WebSocket: {e}"))?;
    if let Some(auth) = t.basic_auth().and_then(|a| a.parse().ok()) {
        req.headers_mut().insert(hyper::header::AUTHORIZATION, auth);
    }
    if let Ok(ua) = concat!("camrelay/", env!("CARGO_PKG_VERSION")).parse() {
        req.headers_mut().insert(hyper::header::USER_AGENT, ua);
    }
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(MAX_SIGNAL_BYTES))
        .max_frame_size(Some(MAX_SIGNAL_BYTES));
    match tokio::time::timeout(SIGNAL_TIMEOUT, tokio_tungstenite::client_async_with_config(req, io, Some(config))).await
    {
        Ok(Ok((ws, _))) => Ok((ws, local)),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let body = resp.body().as_deref().map(error_body).unwrap_or_default();
            let reason = resp.status().canonical_reason().unwrap_or("");
            Err(format!("WebSocket: HTTP {} {reason}{}", resp.status().as_u16(), colon(&body)))
        }
        Ok(Err(e)) => Err(format!("WebSocket: {e}")),
        Err(_) => Err(format!("WebSocket: no handshake within {} s", SIGNAL_TIMEOUT.as_secs())),
    }
}

fn colon(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

async fn ws_send(ws: &mut WsStream, kind: &str, value: &str) -> Result<(), String> {
    let text = serde_json::json!({ "type": kind, "value": value }).to_string();
    match tokio::time::timeout(SIGNAL_TIMEOUT, ws.send(tungstenite::Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("WebSocket: {e}")),
        Err(_) => Err("WebSocket: send timed out".into()),
    }
}

/// A go2rtc WebSocket message we act on.
#[derive(Debug, PartialEq)]
pub(crate) enum WsMessage {
    Answer(String),
    Candidate(String),
    Error(String),
    Other,
}

/// Parses go2rtc's `{"type":..., "value":...}` (v1, `webrtc/answer`) and its v2 shape
/// (`{"type":"webrtc","value":{"type":"answer","sdp":...}}`).
pub(crate) fn parse_ws_message(text: &str) -> WsMessage {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return WsMessage::Other };
    let value = &v["value"];
    match v["type"].as_str().unwrap_or("") {
        "webrtc/answer" => value.as_str().map_or(WsMessage::Other, |s| WsMessage::Answer(s.to_string())),
        "webrtc" if value["type"] == "answer" => {
            value["sdp"].as_str().map_or(WsMessage::Other, |s| WsMessage::Answer(s.to_string()))
        }
        "webrtc/candidate" => {
            let c = value.as_str().or_else(|| value["candidate"].as_str()).unwrap_or("");
            WsMessage::Candidate(c.to_string())
        }
        "webrtc" if value["type"] == "candidate" => {
            WsMessage::Candidate(value["candidate"].as_str().unwrap_or("").to_string())
        }
        "error" => WsMessage::Error(value.as_str().unwrap_or("error").to_string()),
        _ => WsMessage::Other,
    }
}

/// A remote candidate line (`candidate:...` or `a=candidate:...`), `None` for empty ones (end of
/// candidates) and ones we cannot use (mDNS names, TCP).
pub(crate) fn parse_candidate(line: &str) -> Option<Candidate> {
    let line = line.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    match Candidate::from_sdp_string(line) {
        Ok(c) if c.proto() == Protocol::Udp => Some(c),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("ignoring remote candidate {line:?}: {e}");
            None
        }
    }
}

// ------------------------------------------------------------------------------------------ peer

/// How we keep talking to the remote about this session.
enum Signal {
    /// WHEP: the session's URL, DELETEd on close.
    Whep {
        location: Option<Target>,
    },
    Ws(Box<WsStream>),
    /// Closed (or being closed) already.
    Closed,
}

impl Signal {
    /// Ends the session at the remote: DELETE of the WHEP session, or the WebSocket close.
    async fn close(self) {
        match self {
            Signal::Whep { location: Some(loc) } => {
                match tokio::time::timeout(CLOSE_TIMEOUT, http_request(&loc, hyper::Method::DELETE, None)).await {
                    Ok(Ok((a, _))) if a.status.is_success() => tracing::debug!("WHEP session deleted"),
                    Ok(Ok((a, _))) => tracing::debug!(status = a.status.as_u16(), "WHEP DELETE refused"),
                    Ok(Err(e)) => tracing::debug!("WHEP DELETE: {e}"),
                    Err(_) => tracing::debug!("WHEP DELETE: timed out"),
                }
            }
            Signal::Ws(mut ws) => {
                let _ = tokio::time::timeout(CLOSE_TIMEOUT, (*ws).close(None)).await;
            }
            Signal::Whep { location: None } | Signal::Closed => {}
        }
    }
}

/// A media the remote answered as sending, with the codec it sends.
struct Answered {
    mid: Mid,
    kind: Kind,
    /// The codecs the answer lists for it (remote order, one per name); one once resolved.
    codecs: Vec<(Codec, RtcCodec)>,
}

enum PeerEvent {
    Connected,
    Media(Box<MediaData>),
}

/// One peer connection to the remote and its signalling.
struct Peer {
    rtc: Rtc,
    socket: UdpSocket,
    port: u16,
    candidates: Vec<SocketAddr>,
    /// Remote IP → our local candidate that reaches it.
    routes: HashMap<IpAddr, SocketAddr>,
    signal: Signal,
    answered: Vec<Answered>,
    /// Media received before `run` (while `describe` waited for a codec).
    buffered: VecDeque<Box<MediaData>>,
    buffered_bytes: usize,
    /// The buffer overflowed: ask for a keyframe when `run` starts.
    lost: bool,
    /// When ICE started (the answer was applied, or `run` took a parked peer).
    ice_started: tokio::time::Instant,
    connected_at: Option<tokio::time::Instant>,
    last_media: tokio::time::Instant,
    /// str0m's next timeout.
    timeout: Instant,
    /// When `describe` finished with it (for reuse).
    parked_at: Instant,
    /// When the offer was sent (for the time-to-first-frame log).
    offered_at: tokio::time::Instant,
    video_seen: bool,
}

impl Peer {
    fn medias(&self) -> Vec<Media> {
        self.answered
            .iter()
            .filter_map(|a| a.codecs.first().map(|(c, _)| Media::new(a.kind, Direction::RecvOnly, vec![c.clone()])))
            .collect()
    }

    /// Polls str0m, sends what it transmits and waits for input until it reports a connection or
    /// media, or fails. Cancel safe.
    async fn next_event(&mut self, buf: &mut [u8]) -> Result<PeerEvent, String> {
        loop {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    // UDP: a full send buffer drops the datagram, as the network would.
                    if let Err(e) = self.socket.try_send_to(&t.contents, t.destination) {
                        tracing::trace!("send to {}: {e}", t.destination);
                    }
                    continue;
                }
                Ok(Output::Event(e)) => match e {
                    Event::Connected => {
                        let now = tokio::time::Instant::now();
                        tracing::info!(
                            "webrtc source connected (ICE, DTLS) in {} ms",
                            (now - self.ice_started).as_millis()
                        );
                        self.connected_at = Some(now);
                        self.last_media = now;
                        return Ok(PeerEvent::Connected);
                    }
                    Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                        return Err("ICE: disconnected (the remote stopped answering connectivity checks)".into());
                    }
                    Event::Closed => return Err("the remote closed the connection".into()),
                    Event::MediaData(d) => {
                        self.last_media = tokio::time::Instant::now();
                        if !self.video_seen && self.answered.iter().any(|a| a.kind == Kind::Video && a.mid == d.mid) {
                            self.video_seen = true;
                            let ms = self.offered_at.elapsed().as_millis();
                            tracing::info!("webrtc source: first video frame {ms} ms after the offer");
                        }
                        return Ok(PeerEvent::Media(Box::new(d)));
                    }
                    _ => continue,
                },
                Ok(Output::Timeout(t)) => self.timeout = t,
                Err(e) => return Err(format!("WebRTC: {e}")),
            }
            if !self.rtc.is_alive() {
                return Err("the remote closed the connection".into());
            }
            let deadline = match self.connected_at {
                Some(_) => self.last_media + SILENCE_TIMEOUT,
                None => self.ice_started + ICE_TIMEOUT,
            };
            let wake = tokio::time::Instant::from_std(self.timeout);
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => return Err(self.deadline_text()),
                _ = tokio::time::sleep_until(wake) => self.input(Input::Timeout(Instant::now())),
                r = self.socket.recv_from(buf) => match r {
                    Ok((n, source)) => self.receive(&buf[..n], source),
                    // ICMP errors of earlier sends surface here; the socket stays usable.
                    Err(e) => tracing::trace!("recv: {e}"),
                },
                m = ws_next(&mut self.signal) => self.on_signal(m)?,
            }
        }
    }

    fn deadline_text(&self) -> String {
        if self.connected_at.is_some() {
            return format!("no media from the remote for {} s", SILENCE_TIMEOUT.as_secs());
        }
        format!(
            "ICE: no connection within {} s (our candidates: {}; check that this machine can reach the remote's \
             candidates over UDP)",
            ICE_TIMEOUT.as_secs(),
            self.candidates.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(", ")
        )
    }

    fn input(&mut self, input: Input) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("webrtc input: {e}");
        }
    }

    fn receive(&mut self, data: &[u8], source: SocketAddr) {
        let destination = self.local_for(source);
        let Ok(contents) = data.try_into() else { return };
        let input = Input::Receive(Instant::now(), Receive { proto: Protocol::Udp, source, destination, contents });
        if self.rtc.accepts(&input) {
            self.input(input);
        }
    }

    /// Our candidate for datagrams from `remote`: the local address the kernel routes to it from,
    /// added as a host candidate the first time (the socket is bound to all interfaces, and ICE
    /// matches a datagram's destination against the local candidates).
    fn local_for(&mut self, remote: SocketAddr) -> SocketAddr {
        if let Some(a) = self.routes.get(&remote.ip()) {
            return *a;
        }
        let fallback = self.candidates.first().copied().unwrap_or(SocketAddr::new(remote.ip(), self.port));
        if self.routes.len() >= MAX_ROUTES {
            // Datagrams from ever new addresses (spoofed junk) cost no more lookups.
            return fallback;
        }
        let local = route_source(remote).map(|ip| SocketAddr::new(ip, self.port)).unwrap_or(fallback);
        if !self.candidates.contains(&local) && self.candidates.len() < MAX_ROUTES {
            match Candidate::host(local, "udp") {
                Ok(c) => {
                    if self.rtc.add_local_candidate(c).is_some() {
                        self.candidates.push(local);
                    }
                }
                Err(e) => tracing::debug!("candidate {local}: {e}"),
            }
        }
        self.routes.insert(remote.ip(), local);
        local
    }

    fn on_signal(&mut self, m: Option<Result<tungstenite::Message, tungstenite::Error>>) -> Result<(), String> {
        match m {
            Some(Ok(tungstenite::Message::Text(t))) => match parse_ws_message(t.as_str()) {
                WsMessage::Candidate(c) => {
                    if let Some(c) = parse_candidate(&c) {
                        self.rtc.add_remote_candidate(c);
                    }
                    Ok(())
                }
                WsMessage::Error(e) => Err(format!("the remote: {e}")),
                WsMessage::Answer(_) | WsMessage::Other => Ok(()),
            },
            Some(Ok(tungstenite::Message::Close(_))) | None => Err("the remote closed the signalling WebSocket".into()),
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(format!("signalling WebSocket: {e}")),
        }
    }

    fn buffer(&mut self, d: Box<MediaData>) {
        if self.buffered_bytes + d.data.len() > MAX_BUFFERED_BYTES {
            self.buffered.clear();
            self.buffered_bytes = 0;
            self.lost = true;
        }
        self.buffered_bytes += d.data.len();
        self.buffered.push_back(d);
    }

    /// Waits until the remote's first packet tells which codec it sends for every media whose answer
    /// lists several; a media with no packet within [`CODEC_PROBE`] of ICE connecting is dropped.
    /// `Ok(false)`: stopped.
    async fn resolve_codecs(&mut self, stop: &CancellationToken) -> Result<bool, String> {
        let mut buf = vec![0u8; UDP_BUFFER];
        let mut first_media: Option<tokio::time::Instant> = None;
        while self.answered.iter().any(|a| a.codecs.len() > 1) {
            let probe_end = match (self.connected_at, first_media) {
                (Some(c), Some(m)) => Some((c + CODEC_PROBE).min(m + CODEC_PROBE_AFTER_MEDIA)),
                (c, _) => c.map(|c| c + CODEC_PROBE),
            };
            let ev = tokio::select! {
                _ = stop.cancelled() => return Ok(false),
                _ = sleep_until_opt(probe_end) => break,
                r = self.next_event(&mut buf) => r?,
            };
            let PeerEvent::Media(d) = ev else { continue };
            first_media.get_or_insert_with(tokio::time::Instant::now);
            let codec = d.params.spec().codec;
            if let Some(a) = self.answered.iter_mut().find(|a| a.mid == d.mid && a.codecs.len() > 1) {
                if let Some(pick) = a.codecs.iter().position(|(_, c)| *c == codec) {
                    let chosen = a.codecs.swap_remove(pick);
                    a.codecs = vec![chosen];
                    tracing::debug!(mid = %a.mid, codec = ?codec, "the remote sends this codec");
                }
            }
            self.buffer(d);
        }
        for a in &mut self.answered {
            if a.codecs.len() > 1 {
                let names: Vec<&str> = a.codecs.iter().map(|(c, _)| c.name.as_str()).collect();
                tracing::info!("the remote answered {} ({}) but sends none: leaving it out", a.kind, names.join(", "));
                a.codecs.clear();
            }
        }
        self.answered.retain(|a| !a.codecs.is_empty());
        Ok(true)
    }

    /// Pushes the remote's media into `tracks` (one per answered media, same order) until `stop`
    /// (`Ok`) or a failure.
    async fn play(&mut self, tracks: Vec<Arc<Track>>, stop: &CancellationToken) -> Result<(), String> {
        let mut sinks: Vec<Sink> = self
            .answered
            .iter()
            .zip(tracks)
            .filter_map(|(a, t)| {
                let (_, codec) = a.codecs.first()?;
                Some(Sink {
                    video: a.kind == Kind::Video,
                    codec: *codec,
                    incoming: Incoming::new(a.mid, t),
                    keyframe_seen: false,
                    last_request: None,
                    wrong_codec_logged: false,
                })
            })
            .collect();
        let now = tokio::time::Instant::now();
        if self.connected_at.is_none() {
            self.ice_started = now;
        }
        self.last_media = now;
        let lost = std::mem::take(&mut self.lost);
        for d in std::mem::take(&mut self.buffered) {
            self.on_media(&mut sinks, d);
        }
        self.buffered_bytes = 0;
        if lost {
            for s in &mut sinks {
                s.keyframe_seen = false;
            }
        }
        let mut buf = vec![0u8; UDP_BUFFER];
        loop {
            let ev = tokio::select! {
                biased;
                _ = stop.cancelled() => return Ok(()),
                r = self.next_event(&mut buf) => r?,
            };
            match ev {
                PeerEvent::Connected => {}
                PeerEvent::Media(d) => self.on_media(&mut sinks, d),
            }
        }
    }

    fn on_media(&mut self, sinks: &mut [Sink], d: Box<MediaData>) {
        let Some(sink) = sinks.iter_mut().find(|s| s.incoming.mid == d.mid) else { return };
        let codec = d.params.spec().codec;
        if codec != sink.codec {
            if !sink.wrong_codec_logged {
                sink.wrong_codec_logged = true;
                tracing::warn!(
                    "the remote sends {codec:?} on a media answered as {:?}: ignoring those packets",
                    sink.codec
                );
            }
            return;
        }
        if sink.video {
            if is_h264_keyframe(&d.data) {
                sink.keyframe_seen = true;
            }
            // A gap in the RTP sequence, or no keyframe yet: ask for one (readers wait for it).
            let want = !sink.keyframe_seen || !d.contiguous;
            if want && sink.last_request.is_none_or(|t| t.elapsed() >= KEYFRAME_REQUEST_INTERVAL) {
                sink.last_request = Some(Instant::now());
                if let Some(mut w) = self.rtc.writer(d.mid) {
                    if let Err(e) = w.request_keyframe(d.rid, KeyframeRequestKind::Pli) {
                        tracing::debug!("keyframe request: {e}");
                    }
                }
            }
        }
        sink.incoming.push(d.time, &d.data);
    }

    /// Ends the session on both sides: DTLS close (the remote sees us leave at once), then DELETE of
    /// the WHEP session or the WebSocket close.
    async fn close(mut self) {
        self.close_rtc();
        std::mem::replace(&mut self.signal, Signal::Closed).close().await;
    }

    /// Closes DTLS and sends what that queues (RTCP BYE, close_notify).
    fn close_rtc(&mut self) {
        if let Err(e) = self.rtc.close() {
            tracing::debug!("webrtc close: {e}");
        }
        for _ in 0..64 {
            match self.rtc.poll_output() {
                Ok(Output::Transmit(t)) => {
                    let _ = self.socket.try_send_to(&t.contents, t.destination);
                }
                Ok(Output::Event(_)) => {}
                Ok(Output::Timeout(_)) | Err(_) => break,
            }
        }
    }
}

/// A peer dropped without [`Peer::close`] (its future was cancelled) still ends the remote session.
impl Drop for Peer {
    fn drop(&mut self) {
        let signal = std::mem::replace(&mut self.signal, Signal::Closed);
        if matches!(signal, Signal::Closed) {
            return;
        }
        self.close_rtc();
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(signal.close());
        }
    }
}

/// One answered media during `run`.
struct Sink {
    video: bool,
    codec: RtcCodec,
    incoming: Incoming,
    keyframe_seen: bool,
    last_request: Option<Instant>,
    wrong_codec_logged: bool,
}

fn is_h264_keyframe(annexb: &[u8]) -> bool {
    media::h264::annexb_nals(annexb).any(|n| !n.is_empty() && media::h264::nal_type(n[0]) == 5)
}

async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

async fn ws_next(signal: &mut Signal) -> Option<Result<tungstenite::Message, tungstenite::Error>> {
    match signal {
        Signal::Ws(ws) => ws.next().await,
        Signal::Whep { .. } | Signal::Closed => std::future::pending().await,
    }
}

/// The local address the kernel would send to `remote` from (no packet is sent).
fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr = if remote.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let s = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    s.connect(remote).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

/// The medias of an applied answer that the remote sends, with the codecs it lists that we take.
fn answered_medias(rtc: &Rtc, mids: &[(Mid, Kind)]) -> Vec<Answered> {
    let mut out = Vec::new();
    for (mid, kind) in mids {
        let Some(m) = rtc.media(*mid) else { continue };
        if !m.direction().is_receiving() {
            continue;
        }
        let mut codecs: Vec<(Codec, RtcCodec)> = Vec::new();
        for pt in m.remote_pts() {
            let Some(p) = rtc.codec_config().params().iter().find(|p| p.pt() == *pt) else { continue };
            let spec = p.spec();
            let rate = spec.clock_rate.get();
            let codec = match spec.codec {
                RtcCodec::H264 => Codec::new(media::codec::H264, rate, 0, **pt).with_fmtp("packetization-mode=1"),
                RtcCodec::Opus => Codec::new(media::codec::OPUS, rate, spec.channels.unwrap_or(2) as u16, **pt),
                RtcCodec::PCMA => Codec::new(media::codec::PCMA, rate, 1, **pt),
                RtcCodec::PCMU => Codec::new(media::codec::PCMU, rate, 1, **pt),
                _ => continue,
            };
            if !codecs.iter().any(|(c, _)| c.name == codec.name) {
                codecs.push((codec, spec.codec));
            }
        }
        if !codecs.is_empty() {
            out.push(Answered { mid: *mid, kind: *kind, codecs });
        }
    }
    out
}

// ---------------------------------------------------------------------------------------- source

pub struct WebrtcSource {
    /// Masked URL for logs and errors.
    masked: String,
    target: Target,
    /// The connection `describe` opened, waiting for `run`. Shared with the task that closes it
    /// when `run` never comes.
    parked: Arc<Mutex<Parked>>,
}

#[derive(Default)]
struct Parked {
    peer: Option<Peer>,
    generation: u64,
}

impl WebrtcSource {
    pub fn new(url: &str) -> Result<WebrtcSource, String> {
        let masked = mask_url(url);
        let rest = url.strip_prefix("webrtc:").ok_or_else(|| format!("{masked}: not a webrtc: URL"))?;
        let (base, params) = rest.split_once('#').unwrap_or((rest, ""));
        for (k, v) in parse_query(params) {
            if k == "format" {
                return Err(format!(
                    "{masked}: format {v} is not supported (camrelay pulls WHEP from webrtc:http(s)://... and \
                     go2rtc's WebSocket API from webrtc:ws(s)://...)"
                ));
            }
        }
        let target = Target::parse(base).map_err(|e| format!("{masked}: {e}"))?;
        Ok(WebrtcSource { masked, target, parked: Arc::default() })
    }

    fn err(&self, step: &str, msg: impl std::fmt::Display) -> String {
        // Lower layers may quote URLs (a Location): mask those too.
        mask_text(&format!("{}: {step}: {msg}", self.masked))
    }

    fn lock_parked(&self) -> MutexGuard<'_, Parked> {
        self.parked.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps a described connection for `run`; closes it after [`REUSE_WITHIN`] if `run` never comes.
    fn park(&self, peer: Peer) {
        let (generation, old) = {
            let mut p = self.lock_parked();
            p.generation += 1;
            (p.generation, p.peer.replace(peer))
        };
        if let Some(old) = old {
            tokio::spawn(old.close());
        }
        let parked = self.parked.clone();
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                tokio::time::sleep(REUSE_WITHIN).await;
                let peer = {
                    let mut p = parked.lock().unwrap_or_else(|e| e.into_inner());
                    if p.generation == generation {
                        p.peer.take()
                    } else {
                        None
                    }
                };
                if let Some(peer) = peer {
                    tracing::debug!("described connection not used: closing it");
                    peer.close().await;
                }
            }
            .instrument(span),
        );
    }

    /// Signals an offer and applies the answer; resolves codecs when the answer is ambiguous.
    /// `Ok(None)`: stopped.
    async fn dial(&self, stop: &CancellationToken) -> Result<Option<Peer>, String> {
        // The signalling connection comes first: the local address it uses is our first host
        // candidate, and its family that of the UDP socket. (For WHEP the route to the server tells
        // the same without a connection; the POST opens one.)
        let t = &self.target;
        let (ws, local) = if t.websocket() {
            let (ws, local) = ws_connect(t).await.map_err(|e| self.err("signalling", e))?;
            (Some(ws), local.ip())
        } else {
            let lookup = tokio::net::lookup_host(format!("{}:{}", t.host, t.port));
            let remote = tokio::time::timeout(CONNECT_TIMEOUT, lookup)
                .await
                .map_err(|_| self.err("connect", "name lookup timed out"))?
                .map_err(|e| self.err("connect", e))?
                .next()
                .ok_or_else(|| self.err("connect", "the host name has no address"))?;
            let local = route_source(remote).ok_or_else(|| self.err("connect", format!("no route to {remote}")))?;
            (None, local)
        };
        let any: IpAddr = if local.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
        let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await.map_err(|e| self.err("UDP bind", e))?;
        let port = socket.local_addr().map_err(|e| self.err("UDP bind", e))?.port();
        let first = SocketAddr::new(local, port);

        let mut rtc = rtc_config(&IceCreds::new()).set_ice_lite(false).build(Instant::now());
        let candidate = Candidate::host(first, "udp").map_err(|e| self.err("candidate", e))?;
        rtc.add_local_candidate(candidate);
        let mut api = rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, str0m::media::Direction::RecvOnly, None, None, None);
        let audio = api.add_media(MediaKind::Audio, str0m::media::Direction::RecvOnly, None, None, None);
        let mids = [(video, Kind::Video), (audio, Kind::Audio)];
        let Some((offer, pending)) = api.apply() else {
            return Err(self.err("offer", "no offer to make"));
        };

        let offered_at = tokio::time::Instant::now();
        let signalled = tokio::select! {
            r = self.signal(ws, offer, first) => r?,
            _ = stop.cancelled() => return Ok(None),
        };
        let (signal, answer_text, remote_candidates) = signalled;
        let mut peer = self
            .apply_answer(rtc, pending, socket, port, first, signal, &answer_text, remote_candidates, &mids)
            .await?;
        peer.offered_at = offered_at;
        match peer.resolve_codecs(stop).await {
            Ok(true) => {}
            Ok(false) => {
                peer.close().await;
                return Ok(None);
            }
            Err(e) => {
                peer.close().await;
                return Err(self.err("connect", e));
            }
        }
        if peer.answered.is_empty() {
            peer.close().await;
            return Err(self.err(
                "answer",
                "codecs not matched: the remote sends none of video:H264, audio:OPUS, audio:PCMA, audio:PCMU",
            ));
        }
        Ok(Some(peer))
    }

    /// Sends the offer, returns the signalling channel, the answer's SDP and candidates that came
    /// separately (WebSocket).
    async fn signal(
        &self,
        ws: Option<WsStream>,
        offer: SdpOffer,
        candidate: SocketAddr,
    ) -> Result<(Signal, String, Vec<String>), String> {
        let offer = offer.to_sdp_string();
        match ws {
            Some(mut ws) => {
                ws_send(&mut ws, "webrtc/offer", &offer).await.map_err(|e| self.err("offer", e))?;
                if let Ok(c) = Candidate::host(candidate, "udp") {
                    ws_send(&mut ws, "webrtc/candidate", &c.to_sdp_string()).await.map_err(|e| self.err("offer", e))?;
                }
                let mut candidates = Vec::new();
                let deadline = tokio::time::Instant::now() + SIGNAL_TIMEOUT;
                loop {
                    let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
                        Err(_) => {
                            return Err(self.err("answer", format!("no answer within {} s", SIGNAL_TIMEOUT.as_secs())))
                        }
                        Ok(None) | Ok(Some(Ok(tungstenite::Message::Close(_)))) => {
                            return Err(self.err("answer", "the remote closed the WebSocket without answering"))
                        }
                        Ok(Some(Err(e))) => return Err(self.err("answer", format!("WebSocket: {e}"))),
                        Ok(Some(Ok(tungstenite::Message::Text(t)))) => parse_ws_message(t.as_str()),
                        Ok(Some(Ok(_))) => continue,
                    };
                    match msg {
                        WsMessage::Answer(sdp) => return Ok((Signal::Ws(Box::new(ws)), sdp, candidates)),
                        WsMessage::Candidate(c) => {
                            if candidates.len() < 64 {
                                candidates.push(c);
                            }
                        }
                        WsMessage::Error(e) => return Err(self.err("offer", format!("the remote answered: {e}"))),
                        WsMessage::Other => {}
                    }
                }
            }
            None => {
                let mut target = self.target.clone();
                for _ in 0..=MAX_REDIRECTS {
                    let (a, _) = http_request(&target, hyper::Method::POST, Some(&offer))
                        .await
                        .map_err(|e| self.err("WHEP offer", e))?;
                    let header = |name| a.headers.get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
                    if matches!(a.status.as_u16(), 307 | 308) {
                        if let Some(loc) = header(hyper::header::LOCATION) {
                            target = target.resolve(loc).map_err(|e| self.err("WHEP offer", e))?;
                            continue;
                        }
                    }
                    if !a.status.is_success() {
                        let reason = a.status.canonical_reason().unwrap_or("");
                        return Err(self.err(
                            "WHEP offer",
                            format!("HTTP {} {reason}{}", a.status.as_u16(), colon(&error_body(&a.body))),
                        ));
                    }
                    let content_type = header(hyper::header::CONTENT_TYPE).unwrap_or("").to_ascii_lowercase();
                    let sdp = answer_sdp(&content_type, &a.body).map_err(|e| self.err("WHEP answer", e))?;
                    let location = match header(hyper::header::LOCATION) {
                        Some(loc) => Some(target.resolve(loc).map_err(|e| self.err("WHEP answer", e))?),
                        None => {
                            if a.status == hyper::StatusCode::CREATED {
                                tracing::debug!("WHEP answer without Location: the session cannot be deleted");
                            }
                            None
                        }
                    };
                    return Ok((Signal::Whep { location }, sdp, Vec::new()));
                }
                Err(self.err("WHEP offer", format!("more than {MAX_REDIRECTS} redirects")))
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn apply_answer(
        &self,
        rtc: Rtc,
        pending: SdpPendingOffer,
        socket: UdpSocket,
        port: u16,
        first: SocketAddr,
        signal: Signal,
        answer_text: &str,
        remote_candidates: Vec<String>,
        mids: &[(Mid, Kind)],
    ) -> Result<Peer, String> {
        let now = tokio::time::Instant::now();
        let mut peer = Peer {
            rtc,
            socket,
            port,
            candidates: vec![first],
            routes: HashMap::new(),
            signal,
            answered: Vec::new(),
            buffered: VecDeque::new(),
            buffered_bytes: 0,
            lost: false,
            ice_started: now,
            connected_at: None,
            last_media: now,
            timeout: Instant::now(),
            parked_at: Instant::now(),
            offered_at: now,
            video_seen: false,
        };
        let answer = match SdpAnswer::from_sdp_string(answer_text) {
            Ok(a) => a,
            Err(e) => {
                peer.close().await;
                return Err(self.err(
                    "answer",
                    format!("not a valid SDP answer ({}): {}", sdp_error(&e, answer_text), snippet(answer_text)),
                ));
            }
        };
        // str0m asserts on some inconsistent SDP (see servers/webrtc's answer_offer): an error, not a panic.
        let rtc = &mut peer.rtc;
        let accepted =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| rtc.sdp_api().accept_answer(pending, answer)));
        let failure = match accepted {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("inconsistent payload types across its media".to_string()),
        };
        if let Some(e) = failure {
            peer.close().await;
            return Err(self.err("answer", format!("cannot use the SDP answer: {e}")));
        }
        // Host candidates for every remote candidate's route, so ICE has a local candidate for the
        // address each reply arrives at.
        let mut remote: Vec<Candidate> = answer_text
            .lines()
            .filter(|l| l.trim_start().starts_with("a=candidate:"))
            .filter_map(parse_candidate)
            .collect();
        for line in &remote_candidates {
            if let Some(c) = parse_candidate(line) {
                peer.rtc.add_remote_candidate(c.clone());
                remote.push(c);
            }
        }
        let before = peer.candidates.len();
        for c in &remote {
            if c.addr().is_ipv4() == first.is_ipv4() {
                peer.local_for(c.addr());
            }
        }
        if let Signal::Ws(ws) = &mut peer.signal {
            for c in peer.candidates[before..].iter().copied() {
                if let Ok(c) = Candidate::host(c, "udp") {
                    let _ = ws_send(ws, "webrtc/candidate", &c.to_sdp_string()).await;
                }
            }
        }
        peer.answered = answered_medias(&peer.rtc, mids);
        peer.ice_started = tokio::time::Instant::now();
        tracing::debug!(
            medias = ?peer.answered.iter().map(|a| format!("{}:{}", a.kind, a.codecs.iter().map(|(c, _)| c.name.as_str()).collect::<Vec<_>>().join("/"))).collect::<Vec<_>>(),
            candidates = ?peer.candidates,
            "answer applied"
        );
        Ok(peer)
    }

    async fn run_once(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), SourceError> {
        let parked = self.lock_parked().peer.take();
        let mut peer = match parked {
            Some(p) if p.parked_at.elapsed() < REUSE_WITHIN => p,
            other => {
                if let Some(old) = other {
                    tokio::spawn(old.close());
                }
                match self.dial(&stop).await? {
                    Some(p) => p,
                    None => return Ok(()),
                }
            }
        };
        let medias = peer.medias();
        let same = medias.len() == tracks.len()
            && medias
                .iter()
                .zip(&tracks)
                .all(|(m, t)| m.kind == t.kind && m.codecs.first().is_some_and(|c| c.name == t.codec.name));
        if !same {
            let now: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
            let was: Vec<String> = tracks.iter().map(|t| format!("{}:{}", t.kind, t.codec.name)).collect();
            peer.close().await;
            return Err(self.err(
                "answer",
                format!("the remote's medias changed (now {}, was {})", now.join(", "), was.join(", ")),
            ));
        }
        let result = peer.play(tracks, &stop).await;
        peer.close().await;
        result.map_err(|e| self.err("play", e))
    }
}

impl Source for WebrtcSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        let span = tracing::info_span!("webrtc_source", url = %self.masked);
        Box::pin(
            async move {
                // Nothing stops a describe but its own timeouts.
                let never = CancellationToken::new();
                let Some(mut peer) = self.dial(&never).await? else {
                    return Err(self.err("describe", "stopped"));
                };
                peer.parked_at = Instant::now();
                let medias = peer.medias();
                self.park(peer);
                Ok(medias)
            }
            .instrument(span),
        )
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        let span = tracing::info_span!("webrtc_source", url = %self.masked);
        Box::pin(async move { self.run_once(tracks, stop).await }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let t = Target::parse("http://127.0.0.1:1984/api/webrtc?src=cam1").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port, t.path.as_str()),
            (Scheme::Http, "127.0.0.1", 1984, "/api/webrtc?src=cam1")
        );
        let t = Target::parse("wss://user:p%40ss@[::1]/api/ws?src=x").unwrap();
        assert_eq!((t.scheme, t.host.as_str(), t.port), (Scheme::Wss, "::1", 443));
        assert_eq!(t.userinfo.as_deref(), Some("user:p@ss"));
        assert_eq!(t.url(), "wss://[::1]/api/ws?src=x");
        assert_eq!(Target::parse("ws://h?src=x").unwrap().path, "/?src=x");
        assert!(Target::parse("rtsp://h/x").is_err());
        assert!(Target::parse("http://:80/").is_err());
        assert!(Target::parse("http://h:99999/").is_err());
        assert!(Target::parse("nonsense").is_err());

        assert!(WebrtcSource::new("webrtc:http://h:1984/api/webrtc?src=a").is_ok());
        assert!(WebrtcSource::new("webrtc:ws://h:1984/api/ws?src=a").is_ok());
        let e = WebrtcSource::new("webrtc:ws://192.168.1.123/webrtc_ws#format=openipc#ice_servers=[]").err().unwrap();
        assert!(e.contains("format openipc is not supported"), "{e}");
        let e = WebrtcSource::new("webrtc:http://u:secret@h/x#format=wyze").err().unwrap();
        assert!(e.contains("format wyze is not supported") && !e.contains("secret"), "{e}");
        let e = WebrtcSource::new("webrtc:ftp://h/x").err().unwrap();
        assert!(e.contains("unsupported scheme"), "{e}");
    }

    #[test]
    fn locations_resolve_against_the_offer_url() {
        let t = Target::parse("http://u:p@h:1984/api/webrtc?src=a").unwrap();
        let abs = t.resolve("/api/webrtc?id=42").unwrap();
        assert_eq!((abs.url(), abs.userinfo.as_deref()), ("http://h:1984/api/webrtc?id=42".to_string(), Some("u:p")));
        assert_eq!(t.resolve("session/1").unwrap().url(), "http://h:1984/api/session/1");
        let other = t.resolve("https://other/whep/1").unwrap();
        assert_eq!((other.url(), other.userinfo), ("https://other/whep/1".to_string(), None));
        assert!(t.resolve("ws://h/x").is_err());
    }

    #[test]
    fn answers_in_every_shape() {
        assert_eq!(answer_sdp("application/sdp", b"v=0\r\n").unwrap(), "v=0\r\n");
        assert_eq!(answer_sdp("application/json", br#"{"type":"answer","sdp":"v=0"}"#).unwrap(), "v=0");
        assert_eq!(answer_sdp("", br#"{"sdp":"v=0"}"#).unwrap(), "v=0");
        assert!(answer_sdp("application/json", br#"{"type":"offer","sdp":"v=0"}"#).is_err());
        assert!(answer_sdp("application/json", b"{not json").is_err());
        assert!(answer_sdp("application/sdp", b"\xff\xfe").is_err());
        assert_eq!(error_body(br#"{"error":"stream not found: x"}"#), "stream not found: x");
        assert_eq!(error_body(b"\n  404 page not found\nmore"), "404 page not found");
        assert_eq!(error_body(&[b'a'; 1000]).len(), 200);

        assert_eq!(parse_ws_message(r#"{"type":"webrtc/answer","value":"v=0"}"#), WsMessage::Answer("v=0".into()));
        assert_eq!(
            parse_ws_message(r#"{"type":"webrtc","value":{"type":"answer","sdp":"v=0"}}"#),
            WsMessage::Answer("v=0".into())
        );
        assert_eq!(
            parse_ws_message(r#"{"type":"webrtc/candidate","value":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}"#),
            WsMessage::Candidate("candidate:1 1 udp 1 127.0.0.1 9 typ host".into())
        );
        assert_eq!(
            parse_ws_message(r#"{"type":"error","value":"stream not found"}"#),
            WsMessage::Error("stream not found".into())
        );
        for junk in ["", "null", "[]", r#"{"type":1}"#, r#"{"type":"webrtc/answer","value":{}}"#, "\u{0}"] {
            assert_eq!(parse_ws_message(junk), WsMessage::Other, "{junk:?}");
        }
    }

    #[test]
    fn candidates_parse_and_junk_is_ignored() {
        let c = parse_candidate("a=candidate:1 1 udp 2130706431 127.0.0.1 8555 typ host").unwrap();
        assert_eq!(c.addr(), "127.0.0.1:8555".parse().unwrap());
        assert!(parse_candidate("candidate:1 1 udp 2130706431 127.0.0.1 8555 typ host").is_some());
        assert!(parse_candidate("").is_none());
        assert!(parse_candidate("candidate:garbage").is_none());
        assert!(parse_candidate("candidate:1 1 tcp 1 127.0.0.1 8555 typ host tcptype passive").is_none());
    }

    #[test]
    fn loopback_routes_from_loopback() {
        assert_eq!(route_source("127.0.0.1:9".parse().unwrap()), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }

    /// Our offer, answered by str0m as an ICE-lite server that sends only H.264 and lists every
    /// audio codec: video resolves at once, audio waits for a packet.
    #[test]
    fn answered_medias_follow_the_answer() {
        let mut ours = rtc_config(&IceCreds::new()).set_ice_lite(false).build(Instant::now());
        let mut api = ours.sdp_api();
        let v = api.add_media(MediaKind::Video, str0m::media::Direction::RecvOnly, None, None, None);
        let a = api.add_media(MediaKind::Audio, str0m::media::Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let mut theirs = rtc_config(&IceCreds::new()).build(Instant::now());
        let answer = theirs.sdp_api().accept_offer(offer).unwrap();
        ours.sdp_api().accept_answer(pending, answer).unwrap();
        let answered = answered_medias(&ours, &[(v, Kind::Video), (a, Kind::Audio)]);
        assert_eq!(answered.len(), 2);
        assert_eq!(answered[0].kind, Kind::Video);
        assert_eq!(answered[0].codecs.len(), 1);
        assert_eq!(answered[0].codecs[0].0.name, "H264");
        let audio: Vec<&str> = answered[1].codecs.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(audio, ["OPUS", "PCMA", "PCMU"]);
    }

    #[test]
    fn keyframes_are_found_in_annexb() {
        assert!(is_h264_keyframe(b"\0\0\0\x01\x67\x42\0\0\0\x01\x65\x88"));
        assert!(!is_h264_keyframe(b"\0\0\0\x01\x41\x9a"));
        assert!(!is_h264_keyframe(b""));
    }
}
