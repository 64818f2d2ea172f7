//! `rtsp://`, `rtsps://`, `rtspx://` (TLS without certificate check): the RTSP client source.
//!
//! `describe` dials the camera (OPTIONS, DESCRIBE, with the ONVIF backchannel `Require` unless
//! `#backchannel=0`, falling back to a plain DESCRIBE when the camera refuses it) and keeps the
//! connection for `run`, which SETUPs every media, PLAYs, and then one task owns the socket: it reads
//! interleaved RTP (or UDP datagrams with `#transport=udp`) into the tracks, sends keep-alives and
//! RTCP receiver reports, and writes two-way audio from the backchannel track to the camera. When the
//! connection from `describe` is gone (or `run` is called again after a failure), `run` dials anew.
//! The protocol rules (auth, Session, SETUP URLs, transports) are sans-IO in `rtsp::client`.

use bytes::{Bytes, BytesMut};
use media::{Direction, Frame, Media, RtpPacket};
use rtsp::client::{self, ClientSession, Described, Outcome, SourceUrl, Tls};
use rtsp::message::{self, Message, Method, Request, Response};
use std::collections::VecDeque;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::hub::{BoxFuture, Source, SourceError, SourceFactory, Track, TrackReader};
use crate::secrets::mask_url;

/// A connection left by `describe` older than this is not reused (cameras drop idle connections).
const REUSE_WITHIN: Duration = Duration::from_secs(10);
/// Bytes we buffer from the socket: one largest message (headers + body) plus one interleaved frame.
const MAX_BUFFERED: usize = message::MAX_HEADER_BYTES + message::MAX_BODY_BYTES + 65_540;
/// Interleaved frames kept while waiting for a response (the first RTP may arrive before PLAY's reply).
const MAX_EARLY_FRAMES: usize = 1024;
/// UDP datagrams queued from the socket tasks to the session task.
const UDP_QUEUE: usize = 1024;
/// Packets the UDP reorder buffer may wait for a missing one.
const REORDER_PACKETS: usize = 64;
const RTCP_INTERVAL: Duration = Duration::from_secs(5);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const BACKCHANNEL_QUEUE: usize = 64;
const BACKCHANNEL_MTU: usize = 1200;
const CNAME: &str = "camrelay";

/// `rtsp`, `rtsps` and `rtspx`, for `app::source_schemes`.
pub fn schemes() -> Vec<(&'static str, SourceFactory)> {
    vec![("rtsp", factory()), ("rtsps", factory()), ("rtspx", factory())]
}

pub fn factory() -> SourceFactory {
    Arc::new(|url: &str| {
        let src = SourceUrl::parse(url).map_err(|e| format!("{}: {e}", mask_url(url)))?;
        Ok(Arc::new(RtspSource::new(url, src)) as Arc<dyn Source>)
    })
}

pub struct RtspSource {
    masked: String,
    src: SourceUrl,
    idle: tokio::sync::Mutex<Option<Dialled>>,
}

/// A connection after DESCRIBE, ready for SETUP.
struct Dialled {
    conn: Conn,
    session: ClientSession,
    described: Described,
    /// The camera accepted `Require: www.onvif.org/ver20/backchannel`; later requests repeat it.
    backchannel: bool,
    at: Instant,
}

/// Why a request failed: the camera answered an error status, or the connection failed.
enum StepError {
    Status(u16, String),
    Io(String),
    /// The source was stopped while waiting for the camera.
    Stopped,
}

impl StepError {
    fn text(&self) -> &str {
        match self {
            StepError::Status(_, m) | StepError::Io(m) => m,
            StepError::Stopped => "stopped",
        }
    }
}

struct Conn {
    io: Box<dyn crate::dial::Io>,
    buf: BytesMut,
    local: SocketAddr,
    peer: SocketAddr,
    early: VecDeque<(u8, Bytes)>,
    /// Cancels a wait for a response (`run`'s stop token once the connection is in `run`).
    stop: CancellationToken,
}

impl Conn {
    async fn connect(src: &SourceUrl) -> Result<Conn, String> {
        let timeout = src.connect_timeout();
        let crate::dial::Dialled { io, local, peer } = match &src.websocket {
            Some(url) => crate::dial::websocket_tunnel(url, timeout).await?,
            None => {
                let tls = match src.tls {
                    Tls::None => crate::dial::Tls::None,
                    Tls::Verify => crate::dial::Tls::Verify,
                    Tls::NoVerify => crate::dial::Tls::NoVerify,
                };
                crate::dial::tcp(&src.host, src.port, tls, timeout).await?
            }
        };
        Ok(Conn {
            io,
            buf: BytesMut::with_capacity(64 * 1024),
            local,
            peer,
            early: VecDeque::new(),
            stop: CancellationToken::new(),
        })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write: timed out (camera does not read)".into()),
        }
    }

    /// The next complete message already in the buffer.
    fn next_buffered(&mut self) -> Result<Option<Message>, StepError> {
        self.next_message().map_err(StepError::Io)
    }

    fn next_message(&mut self) -> Result<Option<Message>, String> {
        message::decode_buf(&mut self.buf).map_err(|e| format!("bad data from camera: {e}"))
    }

    /// Reads more bytes (cancel safe). `Ok(false)`: the camera closed the connection.
    async fn fill(&mut self) -> Result<bool, String> {
        if self.buf.len() >= MAX_BUFFERED {
            return Err("camera sent an oversized message".into());
        }
        self.buf.reserve(16 * 1024);
        match self.io.read_buf(&mut self.buf).await {
            Ok(0) => Ok(false),
            Ok(_) => Ok(true),
            Err(e) => Err(format!("read: {e}")),
        }
    }

    /// Waits for the next response; interleaved frames meanwhile are kept (bounded), server requests
    /// ignored.
    async fn response(&mut self, timeout: Duration) -> Result<Response, StepError> {
        let deadline = Instant::now() + timeout;
        let stop = self.stop.clone();
        loop {
            match self.next_buffered()? {
                Some(Message::Response(r)) => return Ok(r),
                None if stop.is_cancelled() => return Err(StepError::Stopped),
                Some(Message::Interleaved { channel, payload }) => {
                    if self.early.len() < MAX_EARLY_FRAMES {
                        self.early.push_back((channel, payload));
                    }
                }
                Some(Message::Request(r)) => {
                    tracing::debug!(method = r.method.as_str(), "ignoring request from camera")
                }
                None => {
                    let filled = tokio::select! {
                        r = tokio::time::timeout_at(deadline, self.fill()) => r,
                        _ = stop.cancelled() => return Err(StepError::Stopped),
                    };
                    match filled {
                        Ok(Ok(true)) => {}
                        Ok(Ok(false)) => return Err(StepError::Io("connection closed by camera".into())),
                        Ok(Err(e)) => return Err(StepError::Io(e)),
                        Err(_) => return Err(StepError::Io(format!("no response within {}s", timeout.as_secs()))),
                    }
                }
            }
        }
    }

    /// Sends a request built by `session` and reads its response, answering one 401 challenge.
    async fn request(
        &mut self,
        session: &mut ClientSession,
        method: Method,
        uri: &str,
        extra: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<Response, StepError> {
        let mut retried = false;
        loop {
            let mut req: Request = session.request(method.clone(), uri);
            for (k, v) in extra {
                req.headers.insert(*k, *v);
            }
            self.write(&req.to_bytes()).await.map_err(StepError::Io)?;
            let resp = self.response(timeout).await?;
            match session.on_response(&method, &resp, retried) {
                Outcome::Ok => return Ok(resp),
                Outcome::RetryWithAuth => retried = true,
                Outcome::Failed { status, message } => return Err(StepError::Status(status, message)),
            }
        }
    }
}

impl RtspSource {
    pub fn new(url: &str, src: SourceUrl) -> RtspSource {
        RtspSource { masked: mask_url(url), src, idle: tokio::sync::Mutex::new(None) }
    }

    fn err(&self, step: &str, msg: &str) -> String {
        format!("{}: {step}: {msg}", self.masked)
    }

    fn step_err(&self, step: &str, e: StepError) -> StepError {
        match e {
            StepError::Stopped => StepError::Stopped,
            e => StepError::Io(self.err(step, e.text())),
        }
    }

    /// Connects and DESCRIBEs.
    async fn dial(&self) -> Result<Dialled, SourceError> {
        let src = &self.src;
        let timeout = src.connect_timeout();
        let mut conn = Conn::connect(src).await.map_err(|e| self.err("connect", e.trim_start_matches("connect: ")))?;
        let mut session = ClientSession::new(&src.username, &src.password);
        // OPTIONS tells us whether GET_PARAMETER works for keep-alives; a camera that refuses it still
        // streams, but a wrong password is reported here already.
        match conn.request(&mut session, Method::Options, &src.request_url, &[], timeout).await {
            Ok(_) => {}
            Err(StepError::Status(401, m)) => return Err(self.err("OPTIONS", &m)),
            Err(StepError::Status(..)) => {}
            Err(StepError::Io(m)) => return Err(self.err("OPTIONS", &m)),
            Err(StepError::Stopped) => return Err(self.err("OPTIONS", "stopped")),
        }
        let accept = [("Accept", "application/sdp")];
        let with_backchannel = [("Accept", "application/sdp"), ("Require", client::ONVIF_BACKCHANNEL)];
        let mut backchannel = src.backchannel;
        let resp = if src.backchannel {
            match conn.request(&mut session, Method::Describe, &src.request_url, &with_backchannel, timeout).await {
                Ok(r) => r,
                Err(StepError::Status(401, m)) => return Err(self.err("DESCRIBE", &m)),
                Err(e) => {
                    tracing::debug!(error = e.text(), "camera refused the ONVIF backchannel; DESCRIBE without it");
                    backchannel = false;
                    if matches!(e, StepError::Io(_)) {
                        conn = Conn::connect(src)
                            .await
                            .map_err(|e| self.err("connect", e.trim_start_matches("connect: ")))?;
                    }
                    conn.request(&mut session, Method::Describe, &src.request_url, &accept, timeout)
                        .await
                        .map_err(|e| self.err("DESCRIBE", e.text()))?
                }
            }
        } else {
            conn.request(&mut session, Method::Describe, &src.request_url, &accept, timeout)
                .await
                .map_err(|e| self.err("DESCRIBE", e.text()))?
        };
        let described = client::read_describe(&src.request_url, &resp, src.kinds.as_deref(), backchannel)
            .map_err(|e| self.err("DESCRIBE", &e.to_string()))?;
        for w in &described.warnings {
            tracing::debug!(warning = %w, "SDP");
        }
        Ok(Dialled { conn, session, described, backchannel, at: Instant::now() })
    }

    async fn run_once(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), SourceError> {
        let reused = self.idle.lock().await.take().filter(|d| d.at.elapsed() < REUSE_WITHIN);
        let dialled = match reused {
            Some(d) => d,
            None => self.dial().await?,
        };
        let Dialled { mut conn, mut session, described, backchannel, .. } = dialled;
        conn.stop = stop.clone();
        match self.setup_and_play(&mut conn, &mut session, &described, backchannel, tracks, stop).await {
            Err(StepError::Stopped) => {
                // Stopped before PLAY was answered: end the session politely if one was opened.
                if session.session.is_some() {
                    let req = session.request(Method::Teardown, &described.aggregate_url);
                    let _ = tokio::time::timeout(Duration::from_secs(1), conn.io.write_all(&req.to_bytes())).await;
                }
                Ok(())
            }
            Err(e) => Err(e.text().to_string()),
            Ok(()) => Ok(()),
        }
    }

    /// SETUP, PLAY and the play loop. Errors are already prefixed with the URL and step.
    async fn setup_and_play(
        &self,
        conn: &mut Conn,
        session: &mut ClientSession,
        described: &Described,
        backchannel: bool,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), StepError> {
        if described.medias.len() != tracks.len()
            || described
                .medias
                .iter()
                .zip(&tracks)
                .any(|(d, t)| d.media.kind != t.kind || d.media.codecs.first().is_none_or(|c| c.name != t.codec.name))
        {
            let now: Vec<String> = described.medias.iter().map(|d| d.media.to_string()).collect();
            return Err(StepError::Io(self.err(
                "DESCRIBE",
                &format!("the camera's medias changed since it was first described: {}", now.join("; ")),
            )));
        }
        let timeout = self.src.connect_timeout();
        let mut medias = Vec::with_capacity(tracks.len());
        let mut udp_tasks = JoinSet::new();
        let (udp_tx, udp_rx) = mpsc::channel::<(usize, bool, Bytes)>(UDP_QUEUE);
        for (i, d) in described.medias.iter().enumerate() {
            let sockets = if self.src.udp {
                Some(bind_udp_pair(conn.local.ip()).await.map_err(|e| StepError::Io(self.err("SETUP", &e)))?)
            } else {
                None
            };
            let offered = client::offer_transport(i, sockets.as_ref().map(|s| s.ports));
            let header = offered.to_string();
            let resp = conn
                .request(
                    session,
                    Method::Setup,
                    &d.setup_url,
                    &with_require(&[("Transport", &header)], backchannel),
                    timeout,
                )
                .await
                .map_err(|e| self.step_err("SETUP", e))?;
            let accepted = client::accepted_transport(&offered, resp.headers.get("Transport"))
                .map_err(|e| StepError::Io(self.err("SETUP", &e)))?;
            let transport = match sockets {
                None => {
                    let (rtp, rtcp) = accepted.interleaved.unwrap_or((0, 1));
                    MediaTransport::Interleaved { rtp, rtcp }
                }
                Some(s) => {
                    let ip =
                        accepted.source.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or(conn.peer.ip());
                    let (sp_rtp, sp_rtcp) = accepted.server_port.unwrap_or((0, 0));
                    let rtp_dest = SocketAddr::new(ip, sp_rtp);
                    let rtcp_dest = SocketAddr::new(ip, sp_rtcp);
                    let peer_ip = conn.peer.ip();
                    for (sock, rtcp) in [(s.rtp.clone(), false), (s.rtcp.clone(), true)] {
                        let tx = udp_tx.clone();
                        udp_tasks.spawn(udp_receive(sock, peer_ip, i, rtcp, tx));
                    }
                    MediaTransport::Udp { rtp: s.rtp, rtcp: s.rtcp, rtp_dest, rtcp_dest }
                }
            };
            tracing::debug!(url = %mask_url(&d.setup_url), transport = %accepted, "SETUP");
            medias.push(MediaState::new(&d.media, transport, self.src.udp));
        }
        drop(udp_tx);
        // No `Range`: a live camera has nothing to seek, and GStreamer's ONVIF media fails PLAY with 503
        // when asked to seek to npt=0.
        let resp = conn
            .request(session, Method::Play, &described.aggregate_url, &with_require(&[], backchannel), timeout)
            .await
            .map_err(|e| self.step_err("PLAY", e))?;
        if let Some(info) = resp.headers.get("RTP-Info") {
            // Logged only: cameras send bad rtptime values (-1) and wrong URLs here.
            tracing::debug!(entries = rtsp::url::parse_rtp_info(info).len(), "RTP-Info");
        }
        tracing::info!(medias = medias.len(), udp = self.src.udp, "playing");
        let mut play = Play {
            conn,
            session,
            aggregate_url: described.aggregate_url.clone(),
            medias,
            tracks,
            udp_rx,
            _udp_tasks: udp_tasks,
            no_data: self.src.no_data_timeout(),
            ssrc: rand::random(),
        };
        play.run(stop).await.map_err(|e| StepError::Io(self.err("PLAY", &e)))
    }
}

impl Source for RtspSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        let span = tracing::info_span!("rtsp_source", url = %self.masked);
        Box::pin(
            async move {
                let dialled = self.dial().await?;
                let medias = dialled.described.medias.iter().map(|d| d.media.clone()).collect();
                *self.idle.lock().await = Some(dialled);
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
        let span = tracing::info_span!("rtsp_source", url = %self.masked);
        Box::pin(
            async move {
                // Biased: on stop, the session gets the first poll to send its TEARDOWN.
                tokio::select! {
                    biased;
                    r = self.run_once(tracks, stop.clone()) => r,
                    _ = stop.cancelled() => Ok(()),
                }
            }
            .instrument(span),
        )
    }
}

enum MediaTransport {
    Interleaved { rtp: u8, rtcp: u8 },
    Udp { rtp: Arc<UdpSocket>, rtcp: Arc<UdpSocket>, rtp_dest: SocketAddr, rtcp_dest: SocketAddr },
}

struct MediaState {
    transport: MediaTransport,
    direction: Direction,
    codec: media::Codec,
    depacketizer: Box<dyn rtp::depacketize::Depacketizer>,
    reorder: Option<rtp::reorder::ReorderBuffer>,
    /// Backchannel output state.
    out_seq: u16,
    packetizer: Option<Box<dyn rtp::packetize::Packetizer>>,
}

impl MediaState {
    fn new(m: &Media, transport: MediaTransport, udp: bool) -> MediaState {
        let codec = m.codecs.first().cloned().unwrap_or_else(|| media::Codec::new("UNKNOWN", 90000, 0, 96));
        MediaState {
            transport,
            direction: m.direction,
            depacketizer: rtp::depacketize::depacketizer_for(&codec),
            reorder: udp.then(|| rtp::reorder::ReorderBuffer::new(REORDER_PACKETS)),
            packetizer: None,
            out_seq: rand::random(),
            codec,
        }
    }
}

struct Play<'a> {
    conn: &'a mut Conn,
    session: &'a mut ClientSession,
    aggregate_url: String,
    medias: Vec<MediaState>,
    tracks: Vec<Arc<Track>>,
    udp_rx: mpsc::Receiver<(usize, bool, Bytes)>,
    /// Aborted on drop.
    _udp_tasks: JoinSet<()>,
    no_data: Duration,
    ssrc: u32,
}

async fn recv_backchannel(r: &mut Option<(usize, TrackReader)>) -> Option<(usize, Arc<Frame>)> {
    match r {
        Some((i, reader)) => reader.recv().await.map(|f| (*i, f)),
        None => std::future::pending().await,
    }
}

impl Play<'_> {
    async fn run(&mut self, stop: CancellationToken) -> Result<(), String> {
        let mut backchannel = self.medias.iter().position(|m| m.direction == Direction::SendOnly).and_then(|i| {
            self.tracks.get(i).map(|t| (i, TrackReader::new(t.clone(), "rtsp-backchannel", BACKCHANNEL_QUEUE, false)))
        });
        let ka_every = self.session.keepalive_interval();
        let ka_method = self.session.keepalive_method();
        let mut keepalive = tokio::time::interval_at(Instant::now() + ka_every, ka_every);
        let mut rtcp = tokio::time::interval_at(Instant::now() + Duration::from_secs(1), RTCP_INTERVAL);
        let mut last_rtp = Instant::now();
        // RTP that came with PLAY's response.
        while let Some((ch, payload)) = self.conn.early.pop_front() {
            if self.on_interleaved(ch, payload) {
                last_rtp = Instant::now();
            }
        }
        loop {
            // Drain what is already buffered before waiting.
            while let Some(msg) = self.conn.next_message()? {
                match msg {
                    Message::Interleaved { channel, payload } => {
                        if self.on_interleaved(channel, payload) {
                            last_rtp = Instant::now();
                        }
                    }
                    Message::Response(r) if !(200..300).contains(&r.status) => {
                        tracing::debug!(status = r.status, "keep-alive answered with an error")
                    }
                    Message::Response(_) => {}
                    Message::Request(r) => tracing::debug!(method = r.method.as_str(), "ignoring request from camera"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => {
                    let req = self.session.request(Method::Teardown, &self.aggregate_url);
                    let _ = tokio::time::timeout(Duration::from_secs(1), self.conn.io.write_all(&req.to_bytes())).await;
                    return Ok(());
                }
                r = self.conn.fill() => {
                    if !r? {
                        return Err("connection closed by camera".into());
                    }
                }
                Some((i, rtcp, data)) = self.udp_rx.recv() => {
                    if !rtcp && self.on_rtp(i, data) {
                        last_rtp = Instant::now();
                    }
                }
                f = recv_backchannel(&mut backchannel) => match f {
                    Some((i, frame)) => self.send_backchannel(i, &frame).await?,
                    None => backchannel = None,
                },
                _ = keepalive.tick() => {
                    let req = self.session.request(ka_method.clone(), &self.aggregate_url);
                    self.conn.write(&req.to_bytes()).await?;
                }
                _ = rtcp.tick() => self.send_receiver_reports().await?,
                _ = tokio::time::sleep_until(last_rtp + self.no_data) => {
                    return Err(format!("no data from camera for {}s", self.no_data.as_secs()));
                }
            }
        }
    }

    /// Returns true when an RTP packet arrived.
    fn on_interleaved(&mut self, channel: u8, payload: Bytes) -> bool {
        let Some(i) = self
            .medias
            .iter()
            .position(|m| matches!(m.transport, MediaTransport::Interleaved { rtp, .. } if rtp == channel))
        else {
            return false; // RTCP or an unknown channel.
        };
        self.on_rtp(i, payload)
    }

    fn on_rtp(&mut self, i: usize, data: Bytes) -> bool {
        let (Some(m), Some(track)) = (self.medias.get_mut(i), self.tracks.get(i)) else { return false };
        if m.direction == Direction::SendOnly {
            return false;
        }
        let Ok(pkt) = rtp::packet::parse_bytes(data) else { return false };
        let mut ordered = Vec::new();
        match &mut m.reorder {
            Some(r) => r.push(pkt, &mut ordered),
            None => ordered.push(pkt),
        }
        let mut frames = Vec::new();
        for p in ordered {
            if let Err(e) = m.depacketizer.push(p, &mut frames) {
                tracing::trace!(error = %e, "depacketize");
            }
        }
        for f in frames {
            track.push(f);
        }
        true
    }

    async fn send_receiver_reports(&mut self) -> Result<(), String> {
        let rr = rtp::rtcp::build_receiver_report(self.ssrc, CNAME);
        let mut interleaved = Vec::new();
        let mut udp = Vec::new();
        for m in self.medias.iter().filter(|m| m.direction != Direction::SendOnly) {
            match &m.transport {
                MediaTransport::Interleaved { rtcp, .. } => {
                    interleaved.extend_from_slice(&message::encode_interleaved_header(*rtcp, rr.len() as u16));
                    interleaved.extend_from_slice(&rr);
                }
                MediaTransport::Udp { rtcp, rtcp_dest, .. } if rtcp_dest.port() != 0 => {
                    udp.push((rtcp.clone(), *rtcp_dest));
                }
                MediaTransport::Udp { .. } => {}
            }
        }
        for (sock, dest) in udp {
            let _ = sock.send_to(&rr, dest).await;
        }
        if !interleaved.is_empty() {
            self.conn.write(&interleaved).await?;
        }
        Ok(())
    }

    /// Two-way audio: a frame pushed into the backchannel track goes to the camera as RTP with the
    /// payload type the camera's SDP gave.
    async fn send_backchannel(&mut self, i: usize, frame: &Frame) -> Result<(), String> {
        let Some(m) = self.medias.get_mut(i) else { return Ok(()) };
        let packets: Vec<RtpPacket> = if frame.rtp.is_empty() {
            if m.packetizer.is_none() {
                m.packetizer = rtp::packetize::packetizer_for(&m.codec, BACKCHANNEL_MTU);
            }
            let Some(p) = m.packetizer.as_mut() else { return Ok(()) };
            let mut out = Vec::new();
            p.packetize(frame, &mut out);
            out
        } else {
            frame.rtp.clone()
        };
        let mut out = Vec::with_capacity(packets.iter().map(|p| 16 + p.payload.len()).sum());
        for p in &packets {
            let mut header = [0u8; rtp::packet::HEADER_LEN];
            rtp::packet::write_header(&mut header, p.marker, m.codec.payload_type, m.out_seq, p.timestamp, self.ssrc);
            m.out_seq = m.out_seq.wrapping_add(1);
            let len = header.len() + p.payload.len();
            let Ok(len16) = u16::try_from(len) else { continue };
            match &m.transport {
                MediaTransport::Interleaved { rtp, .. } => {
                    out.extend_from_slice(&message::encode_interleaved_header(*rtp, len16));
                    out.extend_from_slice(&header);
                    out.extend_from_slice(&p.payload);
                }
                MediaTransport::Udp { rtp, rtp_dest, .. } => {
                    let mut d = Vec::with_capacity(len);
                    d.extend_from_slice(&header);
                    d.extend_from_slice(&p.payload);
                    if rtp_dest.port() != 0 {
                        let _ = rtp.send_to(&d, rtp_dest).await;
                    }
                }
            }
        }
        if !out.is_empty() {
            self.conn.write(&out).await?;
        }
        Ok(())
    }
}

/// ONVIF: a session with a backchannel repeats the `Require` tag on SETUP and PLAY (GStreamer's ONVIF
/// server answers PLAY with 503 otherwise).
fn with_require<'a>(headers: &[(&'a str, &'a str)], backchannel: bool) -> Vec<(&'a str, &'a str)> {
    let mut v = headers.to_vec();
    if backchannel {
        v.push(("Require", client::ONVIF_BACKCHANNEL));
    }
    v
}

struct UdpPair {
    rtp: Arc<UdpSocket>,
    rtcp: Arc<UdpSocket>,
    ports: (u16, u16),
}

/// Two UDP sockets on consecutive ports, RTP on the even one (RFC 3550 §11).
async fn bind_udp_pair(ip: IpAddr) -> Result<UdpPair, String> {
    let mut last = String::new();
    for _ in 0..32 {
        let rtp = UdpSocket::bind(SocketAddr::new(ip, 0)).await.map_err(|e| format!("UDP bind: {e}"))?;
        let port = rtp.local_addr().map_err(|e| format!("UDP bind: {e}"))?.port();
        if port % 2 != 0 || port == u16::MAX {
            continue;
        }
        match UdpSocket::bind(SocketAddr::new(ip, port + 1)).await {
            Ok(rtcp) => return Ok(UdpPair { rtp: Arc::new(rtp), rtcp: Arc::new(rtcp), ports: (port, port + 1) }),
            Err(e) => last = e.to_string(),
        }
    }
    Err(format!("UDP bind: no free port pair ({last})"))
}

async fn udp_receive(
    sock: Arc<UdpSocket>,
    peer: IpAddr,
    media: usize,
    rtcp: bool,
    tx: mpsc::Sender<(usize, bool, Bytes)>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
        // Only the camera may feed this session.
        if from.ip() != peer {
            continue;
        }
        match tx.try_send((media, rtcp, Bytes::copy_from_slice(&buf[..n]))) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
