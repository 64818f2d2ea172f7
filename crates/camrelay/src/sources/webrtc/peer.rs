//! The peer connection of a `webrtc:` source: a str0m `Rtc` in full-ICE mode with its own UDP
//! socket, driven here (datagrams, timers, signalling messages), its codec probe, and the push of
//! the remote's media into the tracks.

use media::{Codec, Direction, Kind, Media};
use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;
use str0m::format::Codec as RtcCodec;
use str0m::media::{KeyframeRequestKind, MediaData, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};
use tokio::net::UdpSocket;
use tokio_tungstenite::tungstenite;
use tokio_util::sync::CancellationToken;

use super::sdp::{is_h264_keyframe, parse_candidate};
use super::target::Target;
use super::whep::http_request;
use super::ws::{parse_ws_message, ws_next, WsMessage, WsStream};
use super::{
    CLOSE_TIMEOUT, CODEC_PROBE, CODEC_PROBE_AFTER_MEDIA, ICE_TIMEOUT, KEYFRAME_REQUEST_INTERVAL, MAX_BUFFERED_BYTES,
    MAX_ROUTES, SILENCE_TIMEOUT, UDP_BUFFER,
};
use crate::hub::Track;
use crate::servers::webrtc::Incoming;

/// How we keep talking to the remote about this session.
pub(super) enum Signal {
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
    pub(super) async fn close(self) {
        match self {
            Signal::Whep { location: Some(loc) } => {
                match tokio::time::timeout(CLOSE_TIMEOUT, http_request(&loc, hyper::Method::DELETE, None)).await {
                    Ok(Ok(a)) if a.status.is_success() => tracing::debug!("WHEP session deleted"),
                    Ok(Ok(a)) => tracing::debug!(status = a.status.as_u16(), "WHEP DELETE refused"),
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
pub(super) struct Answered {
    pub(super) mid: Mid,
    pub(super) kind: Kind,
    /// The codecs the answer lists for it (remote order, one per name); one once resolved.
    pub(super) codecs: Vec<(Codec, RtcCodec)>,
}

pub(super) enum PeerEvent {
    Connected,
    Media(Box<MediaData>),
}

/// One peer connection to the remote and its signalling.
pub(super) struct Peer {
    pub(super) rtc: Rtc,
    pub(super) socket: UdpSocket,
    pub(super) port: u16,
    pub(super) candidates: Vec<SocketAddr>,
    /// Remote IP → our local candidate that reaches it.
    pub(super) routes: HashMap<IpAddr, SocketAddr>,
    pub(super) signal: Signal,
    pub(super) answered: Vec<Answered>,
    /// Media received before `run` (while `describe` waited for a codec).
    pub(super) buffered: VecDeque<Box<MediaData>>,
    pub(super) buffered_bytes: usize,
    /// The buffer overflowed: ask for a keyframe when `run` starts.
    pub(super) lost: bool,
    /// When ICE started (the answer was applied, or `run` took a parked peer).
    pub(super) ice_started: tokio::time::Instant,
    pub(super) connected_at: Option<tokio::time::Instant>,
    pub(super) last_media: tokio::time::Instant,
    /// str0m's next timeout.
    pub(super) timeout: Instant,
    /// When the offer was sent (for the time-to-first-frame log).
    pub(super) offered_at: tokio::time::Instant,
    pub(super) video_seen: bool,
}

impl Peer {
    pub(super) fn medias(&self) -> Vec<Media> {
        self.answered
            .iter()
            .filter_map(|a| a.codecs.first().map(|(c, _)| Media::new(a.kind, Direction::RecvOnly, vec![c.clone()])))
            .collect()
    }

    /// Polls str0m, sends what it transmits and waits for input until it reports a connection or
    /// media, or fails. Cancel safe.
    pub(super) async fn next_event(&mut self, buf: &mut [u8]) -> Result<PeerEvent, String> {
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

    pub(super) fn deadline_text(&self) -> String {
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

    pub(super) fn input(&mut self, input: Input) {
        if let Err(e) = self.rtc.handle_input(input) {
            tracing::debug!("webrtc input: {e}");
        }
    }

    pub(super) fn receive(&mut self, data: &[u8], source: SocketAddr) {
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
    pub(super) fn local_for(&mut self, remote: SocketAddr) -> SocketAddr {
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

    pub(super) fn on_signal(
        &mut self,
        m: Option<Result<tungstenite::Message, tungstenite::Error>>,
    ) -> Result<(), String> {
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

    pub(super) fn buffer(&mut self, d: Box<MediaData>) {
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
    pub(super) async fn resolve_codecs(&mut self, stop: &CancellationToken) -> Result<bool, String> {
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
    pub(super) async fn play(&mut self, tracks: Vec<Arc<Track>>, stop: &CancellationToken) -> Result<(), String> {
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

    pub(super) fn on_media(&mut self, sinks: &mut [Sink], d: Box<MediaData>) {
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
    pub(super) async fn close(mut self) {
        self.close_rtc();
        std::mem::replace(&mut self.signal, Signal::Closed).close().await;
    }

    /// Closes DTLS and sends what that queues (RTCP BYE, close_notify).
    pub(super) fn close_rtc(&mut self) {
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
pub(super) struct Sink {
    pub(super) video: bool,
    pub(super) codec: RtcCodec,
    pub(super) incoming: Incoming,
    pub(super) keyframe_seen: bool,
    pub(super) last_request: Option<Instant>,
    pub(super) wrong_codec_logged: bool,
}

pub(super) async fn sleep_until_opt(t: Option<tokio::time::Instant>) {
    match t {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// The local address the kernel would send to `remote` from (no packet is sent).
pub(super) fn route_source(remote: SocketAddr) -> Option<IpAddr> {
    let any: IpAddr = if remote.is_ipv4() { Ipv4Addr::UNSPECIFIED.into() } else { Ipv6Addr::UNSPECIFIED.into() };
    let s = std::net::UdpSocket::bind(SocketAddr::new(any, 0)).ok()?;
    s.connect(remote).ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_unspecified()).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_routes_from_loopback() {
        assert_eq!(route_source("127.0.0.1:9".parse().unwrap()), Some(IpAddr::V4(Ipv4Addr::LOCALHOST)));
    }
}
