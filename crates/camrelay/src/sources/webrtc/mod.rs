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
//!
//! One file per concern: [`target`] (the signalling URL), [`whep`] (WHEP client), [`ws`] (go2rtc's
//! WebSocket signalling), [`peer`] (the peer connection and its driver), [`sdp`] (SDP and codec
//! helpers).

mod peer;
mod sdp;
mod target;
mod whep;
mod ws;

use media::{Kind, Media};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::media::{MediaKind, Mid};
use str0m::{Candidate, IceCreds, Rtc};
use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceErrorKind, SourceFactory, Track};
use crate::secrets::{mask_text, mask_url};
use crate::servers::webrtc::{rtc_config, sdp_error};
use crate::sources::exec::parse_query;
use peer::{route_source, Peer, Signal};
use sdp::{answered_medias, snippet};
use ws::{ws_connect, ws_send, WsStream};

pub(crate) use sdp::parse_candidate;
pub(crate) use target::Target;
pub(crate) use whep::{answer_sdp, error_body};
pub(crate) use ws::parse_ws_message;

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

fn colon(s: &str) -> String {
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

// ---------------------------------------------------------------------------------------- source

pub struct WebrtcSource {
    /// Masked URL for logs and errors.
    masked: String,
    target: Target,
}

/// The kind of a failure at `step` described by `msg` (the lower layers' plain messages): a 401/403
/// is an authentication failure, failing to reach or hear the remote a network one, an answer we
/// cannot use a protocol one.
fn error_kind(step: &str, msg: &str) -> SourceErrorKind {
    if msg.contains("HTTP 401") || msg.contains("HTTP 403") {
        return SourceErrorKind::Auth;
    }
    // The remote's own refusal (go2rtc's `stream not found`): it understood us.
    if msg.starts_with("the remote answered") {
        return SourceErrorKind::Other;
    }
    let silence = ["within", "closed", "timed out", "WebSocket:"].iter().any(|w| msg.contains(w));
    match step {
        "connect" | "signalling" | "play" => SourceErrorKind::Network,
        "WHEP offer" if msg.starts_with("HTTP ") => SourceErrorKind::Other,
        "WHEP offer" => SourceErrorKind::Network,
        "answer" | "offer" | "WHEP answer" | "candidate" if silence => SourceErrorKind::Network,
        "answer" | "offer" | "WHEP answer" | "candidate" => SourceErrorKind::Protocol,
        _ => SourceErrorKind::Other,
    }
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
        Ok(WebrtcSource { masked, target })
    }

    /// A failure at `step`, its kind judged from the message ([`error_kind`]).
    fn err(&self, step: &str, msg: impl std::fmt::Display) -> SourceError {
        let msg = msg.to_string();
        // Lower layers may quote URLs (a Location): mask those too.
        SourceError::new(error_kind(step, &msg), mask_text(&format!("{}: {step}: {msg}", self.masked)))
    }

    /// A typed failure of a lower layer at `step` (its kind kept).
    fn wrap(&self, step: &str, e: SourceError) -> SourceError {
        let kind = match e.kind() {
            SourceErrorKind::Other => error_kind(step, e.message()),
            k => k,
        };
        SourceError::new(kind, mask_text(&format!("{}: {step}: {}", self.masked, e.message())))
    }

    /// Signals an offer and applies the answer; resolves codecs when the answer is ambiguous.
    /// `Ok(None)`: stopped.
    async fn dial(&self, stop: &CancellationToken) -> Result<Option<Peer>, SourceError> {
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
    ) -> Result<(Signal, String, Vec<String>), SourceError> {
        let offer = offer.to_sdp_string();
        match ws {
            Some(ws) => self.signal_ws(ws, &offer, candidate).await,
            None => self.signal_whep(&offer).await,
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
    ) -> Result<Peer, SourceError> {
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

    async fn run_once(
        &self,
        parked: Option<Peer>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let mut peer = match parked {
            Some(p) => p,
            None => match self.dial(&stop).await? {
                Some(p) => p,
                None => return Ok(()),
            },
        };
        let medias = peer.medias();
        if !crate::hub::track::same_medias(&tracks, &medias) {
            let now: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
            let was: Vec<String> = tracks.iter().map(|t| format!("{}:{}", t.kind, t.codec.name)).collect();
            peer.close().await;
            let e = self
                .err("answer", format!("the remote's medias changed (now {}, was {})", now.join(", "), was.join(", ")));
            return Err(SourceError::medias_changed(e.message()));
        }
        let result = peer.play(tracks, &stop).await;
        peer.close().await;
        result.map_err(|e| self.err("play", e))
    }
}

impl Source for WebrtcSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(crate::hub::producer::describe_by_opening(self))
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        self.run_opened(None, tracks, stop)
    }

    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        let span = tracing::info_span!("webrtc_source", url = %self.masked);
        Box::pin(
            async move {
                // Nothing stops a describe but its own timeouts.
                let never = CancellationToken::new();
                let Some(peer) = self.dial(&never).await? else {
                    return Err(self.err("describe", "stopped"));
                };
                let medias = peer.medias();
                let span = tracing::Span::current();
                let parked = Parked::new(peer, move |p: Peer| Box::pin(p.close().instrument(span)));
                Ok(Opened { medias, parked: Some(parked) })
            }
            .instrument(span),
        )
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        let span = tracing::info_span!("webrtc_source", url = %self.masked);
        let peer = parked.and_then(Parked::take::<Peer>);
        Box::pin(async move { self.run_once(peer, tracks, stop).await }.instrument(span))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_classified() {
        assert_eq!(error_kind("WHEP offer", "HTTP 401 Unauthorized"), SourceErrorKind::Auth);
        assert_eq!(error_kind("signalling", "WebSocket: HTTP 403 Forbidden"), SourceErrorKind::Auth);
        assert_eq!(error_kind("WHEP offer", "HTTP 404 Not Found: x"), SourceErrorKind::Other);
        assert_eq!(error_kind("WHEP offer", "connect: Connection refused"), SourceErrorKind::Network);
        assert_eq!(error_kind("answer", "no answer within 10 s"), SourceErrorKind::Network);
        assert_eq!(error_kind("answer", "not a valid SDP answer"), SourceErrorKind::Protocol);
        assert_eq!(error_kind("offer", "the remote answered: stream not found"), SourceErrorKind::Other);
        assert_eq!(error_kind("play", "no media from the remote for 15 s"), SourceErrorKind::Network);
    }

    #[test]
    fn bad_urls_are_refused() {
        assert!(WebrtcSource::new("webrtc:http://h:1984/api/webrtc?src=a").is_ok());
        assert!(WebrtcSource::new("webrtc:ws://h:1984/api/ws?src=a").is_ok());
        let e = WebrtcSource::new("webrtc:ws://192.168.1.123/webrtc_ws#format=openipc#ice_servers=[]").err().unwrap();
        assert!(e.contains("format openipc is not supported"), "{e}");
        let e = WebrtcSource::new("webrtc:http://u:secret@h/x#format=wyze").err().unwrap();
        assert!(e.contains("format wyze is not supported") && !e.contains("secret"), "{e}");
        let e = WebrtcSource::new("webrtc:ftp://h/x").err().unwrap();
        assert!(e.contains("unsupported scheme"), "{e}");
    }
}
