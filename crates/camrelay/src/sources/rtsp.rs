//! `rtsp://`, `rtsps://`, `rtspx://` (TLS without certificate check): the RTSP client source.
//!
//! The session itself (OPTIONS, DESCRIBE with the ONVIF backchannel `Require` unless `#backchannel=0`
//! and the fallback to a plain DESCRIBE, auth, SETUP, PLAY, keep-alives, RTCP receiver reports, the
//! no-data timeout, TEARDOWN, the interleaved demux) is the sans-IO [`rtsp::client::RtspClient`]. This
//! module only moves bytes between it and the connection (TCP, TLS or a WebSocket tunnel, from
//! `crate::dial`), runs its timer, owns the UDP sockets of `#transport=udp`, and turns its RTP into
//! frames (and backchannel frames into RTP). `open` hands the described connection to the producer,
//! which parks it for `run_opened` (and closes it when no run comes in time); without one, `run` dials
//! anew. The session's typed errors map onto the source's: 401/403 are authentication failures,
//! timeouts and connection failures network ones, replies we cannot use protocol ones.

use bytes::Bytes;
use media::{Direction, Frame, Media, RtpPacket};
use rtsp::client::{ClientError, ClientOptions, Described, ErrorKind, Event, RtspClient, SourceUrl, Tls};
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

use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceErrorKind, SourceFactory, Track, TrackReader};
use crate::secrets::mask_url;

/// Bytes read from the connection at once.
const READ_CHUNK: usize = 64 * 1024;
/// UDP datagrams queued from the socket tasks to the session task.
const UDP_QUEUE: usize = 1024;
/// Packets the UDP reorder buffer may wait for a missing one.
const REORDER_PACKETS: usize = 64;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a TEARDOWN may take to write when stopping.
const TEARDOWN_TIMEOUT: Duration = Duration::from_secs(1);
const BACKCHANNEL_QUEUE: usize = 64;
const BACKCHANNEL_MTU: usize = 1200;

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
}

/// A connection after DESCRIBE, ready for SETUP.
struct Dialled {
    conn: Conn,
    client: RtspClient,
    described: Described,
}

impl Dialled {
    /// Closes a described connection nobody ran (TEARDOWN if the session has one).
    async fn close(mut self) {
        self.conn.teardown(&mut self.client).await;
        let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, self.conn.io.shutdown()).await;
    }
}

/// The source's kind of a session failure.
fn error_kind(e: &ClientError) -> SourceErrorKind {
    match e.kind {
        ErrorKind::Auth => SourceErrorKind::Auth,
        ErrorKind::Status(s) => crate::hub::producer::status_kind(s),
        ErrorKind::Protocol => SourceErrorKind::Protocol,
        ErrorKind::Timeout | ErrorKind::Network => SourceErrorKind::Network,
    }
}

/// The time the session machine sees.
pub(crate) fn now() -> std::time::Instant {
    Instant::now().into_std()
}

/// Sleeps until the machine's next deadline (forever when it has none).
pub(crate) async fn sleep_until(deadline: Option<std::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}

/// One RTSP connection (TCP, TLS or a WebSocket tunnel) and what the session machine wrote to it; also
/// the RTSP push's (`crate::push::rtsp`).
pub(crate) struct Conn {
    pub(crate) io: Box<dyn crate::dial::Io>,
    local: SocketAddr,
    pub(crate) peer: SocketAddr,
    read_buf: Vec<u8>,
}

impl Conn {
    pub(crate) async fn connect(src: &SourceUrl) -> Result<Conn, String> {
        let timeout = src.connect_timeout();
        let crate::dial::Dialled { io, local, peer } = match &src.websocket {
            Some(url) => crate::dial::websocket_tunnel(url, timeout).await?,
            None => {
                let (tls, pin) = match src.tls {
                    Tls::None => (crate::dial::Tls::None, None),
                    Tls::Verify => (crate::dial::Tls::Verify, None),
                    Tls::NoVerify => (crate::dial::Tls::NoVerify, None),
                    Tls::Pinned(sha256) => (crate::dial::Tls::Verify, Some(sha256)),
                };
                crate::dial::tcp_pinned(&src.host, src.port, tls, pin, timeout).await?
            }
        };
        Ok(Conn { io, local, peer, read_buf: vec![0; READ_CHUNK] })
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), String> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.io.write_all(bytes)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("write: {e}")),
            Err(_) => Err("write: timed out (camera does not read)".into()),
        }
    }

    /// Writes what the machine queued for the connection; a failure is handed to the machine.
    pub(crate) async fn flush(&mut self, client: &mut RtspClient) {
        let mut out = Vec::new();
        while let Some(b) = client.poll_transmit() {
            out.extend_from_slice(&b);
        }
        if !out.is_empty() {
            if let Err(e) = self.write(&out).await {
                client.handle_disconnect(&e, now());
            }
        }
    }

    /// Reads once into the machine (cancel safe).
    pub(crate) async fn read_into(&mut self, client: &mut RtspClient) {
        match self.io.read(&mut self.read_buf).await {
            Ok(0) => client.handle_disconnect("connection closed by camera", now()),
            Ok(n) => client.handle_input(&self.read_buf[..n], now()),
            Err(e) => client.handle_disconnect(&format!("read: {e}"), now()),
        }
    }

    /// Writes the TEARDOWN (if any) queued by `client.teardown`, briefly: we are stopping.
    pub(crate) async fn teardown(&mut self, client: &mut RtspClient) {
        client.teardown(now());
        let mut out = Vec::new();
        while let Some(b) = client.poll_transmit() {
            out.extend_from_slice(&b);
        }
        if !out.is_empty() {
            let _ = tokio::time::timeout(TEARDOWN_TIMEOUT, self.io.write_all(&out)).await;
        }
    }
}

impl RtspSource {
    pub fn new(url: &str, src: SourceUrl) -> RtspSource {
        RtspSource { masked: mask_url(url), src }
    }

    fn err(&self, kind: SourceErrorKind, step: &str, msg: &str) -> SourceError {
        SourceError::new(kind, format!("{}: {step}: {msg}", self.masked))
    }

    fn client_err(&self, e: &ClientError) -> SourceError {
        SourceError::new(error_kind(e), format!("{}: {e}", self.masked))
    }

    async fn connect(&self) -> Result<Conn, SourceError> {
        Conn::connect(&self.src)
            .await
            .map_err(|e| self.err(SourceErrorKind::Network, "connect", e.trim_start_matches("connect: ")))
    }

    /// Connects and DESCRIBEs.
    async fn dial(&self) -> Result<Dialled, SourceError> {
        let mut conn = self.connect().await?;
        let options =
            ClientOptions { ssrc: rand::random(), initial_sequence: rand::random(), cname: "camrelay".into() };
        let mut client = RtspClient::new(self.src.clone(), options, now());
        loop {
            conn.flush(&mut client).await;
            let mut reconnected = false;
            while let Some(ev) = client.poll_event() {
                match ev {
                    Event::Described { described, backchannel } => {
                        if !backchannel && self.src.backchannel {
                            tracing::debug!("camera refused the ONVIF backchannel; described without it");
                        }
                        for w in &described.warnings {
                            tracing::debug!(warning = %w, "SDP");
                        }
                        return Ok(Dialled { conn, client, described });
                    }
                    Event::Reconnect => {
                        conn = self.connect().await?;
                        client.handle_reconnected(now());
                        reconnected = true;
                    }
                    Event::Error(e) => return Err(self.client_err(&e)),
                    _ => {}
                }
            }
            if reconnected {
                continue; // write the DESCRIBE first
            }
            let deadline = client.poll_timeout();
            tokio::select! {
                _ = conn.read_into(&mut client) => {}
                _ = sleep_until(deadline) => client.handle_timeout(now()),
            }
        }
    }

    async fn run_once(
        &self,
        parked: Option<Dialled>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let dialled = match parked {
            Some(d) => d,
            None => self.dial().await?,
        };
        let Dialled { mut conn, mut client, described, .. } = dialled;
        if described.medias.len() != tracks.len()
            || described
                .medias
                .iter()
                .zip(&tracks)
                .any(|(d, t)| d.media.kind != t.kind || d.media.codecs.first().is_none_or(|c| c.name != t.codec.name))
        {
            let now: Vec<String> = described.medias.iter().map(|d| d.media.to_string()).collect();
            return Err(self.err(
                SourceErrorKind::MediasChanged,
                "DESCRIBE",
                &format!("the camera's medias changed since it was first described: {}", now.join("; ")),
            ));
        }
        let mut play = Play::new(&described, tracks, client.wants_udp() || client.url().multicast);
        if client.wants_udp() {
            for _ in &described.medias {
                let pair =
                    bind_udp_pair(conn.local.ip()).await.map_err(|e| self.err(SourceErrorKind::Other, "SETUP", &e))?;
                play.udp.push(pair);
            }
        }
        client.play(play.udp.iter().map(|p| p.ports).collect(), now());
        play.run(&mut conn, &mut client, &stop).await.map_err(|e| self.client_err(&e))
    }
}

impl Source for RtspSource {
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
        let span = tracing::info_span!("rtsp_source", url = %self.masked);
        Box::pin(
            async move {
                let dialled = self.dial().await?;
                let medias = dialled.described.medias.iter().map(|d| d.media.clone()).collect();
                let parked = Parked::new(dialled, |d: Dialled| Box::pin(d.close()));
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
        let span = tracing::info_span!("rtsp_source", url = %self.masked);
        Box::pin(
            async move {
                let dialled = parked.and_then(Parked::take::<Dialled>);
                // Biased: on stop, the session gets the first poll to send its TEARDOWN.
                tokio::select! {
                    biased;
                    r = self.run_once(dialled, tracks, stop.clone()) => r,
                    _ = stop.cancelled() => Ok(()),
                }
            }
            .instrument(span),
        )
    }
}

/// What turns the machine's RTP into frames: one per described media.
struct MediaState {
    direction: Direction,
    codec: media::Codec,
    depacketizer: Box<dyn rtp::depacketize::Depacketizer>,
    reorder: Option<rtp::reorder::ReorderBuffer>,
    packetizer: Option<Box<dyn rtp::packetize::Packetizer>>,
    /// UDP: where the camera takes this media's RTP and RTCP.
    udp_dest: Option<(SocketAddr, SocketAddr)>,
}

impl MediaState {
    fn new(m: &Media, udp: bool) -> MediaState {
        let codec = m.codecs.first().cloned().unwrap_or_else(|| media::Codec::new("UNKNOWN", 90000, 0, 96));
        MediaState {
            direction: m.direction,
            depacketizer: rtp::depacketize::depacketizer_for(&codec),
            reorder: udp.then(|| rtp::reorder::ReorderBuffer::new(REORDER_PACKETS)),
            packetizer: None,
            udp_dest: None,
            codec,
        }
    }
}

/// SETUP, PLAY and playing: the machine's events applied to the tracks and UDP sockets.
struct Play {
    medias: Vec<MediaState>,
    setup_urls: Vec<String>,
    tracks: Vec<Arc<Track>>,
    udp: Vec<UdpPair>,
    udp_tx: Option<mpsc::Sender<(usize, bool, Bytes)>>,
    udp_rx: mpsc::Receiver<(usize, bool, Bytes)>,
    /// Aborted on drop.
    udp_tasks: JoinSet<()>,
    backchannel: Option<(usize, TrackReader)>,
}

async fn recv_backchannel(r: &mut Option<(usize, TrackReader)>) -> Option<(usize, Arc<Frame>)> {
    match r {
        Some((i, reader)) => reader.recv().await.map(|f| (*i, f)),
        None => std::future::pending().await,
    }
}

async fn recv_udp(rx: &mut mpsc::Receiver<(usize, bool, Bytes)>, open: bool) -> Option<(usize, bool, Bytes)> {
    if open {
        rx.recv().await
    } else {
        std::future::pending().await
    }
}

impl Play {
    fn new(described: &Described, tracks: Vec<Arc<Track>>, udp: bool) -> Play {
        let (udp_tx, udp_rx) = mpsc::channel(UDP_QUEUE);
        Play {
            medias: described.medias.iter().map(|d| MediaState::new(&d.media, udp)).collect(),
            setup_urls: described.medias.iter().map(|d| d.setup_url.clone()).collect(),
            tracks,
            udp: Vec::new(),
            udp_tx: Some(udp_tx),
            udp_rx,
            udp_tasks: JoinSet::new(),
            backchannel: None,
        }
    }

    /// Until stopped (`Ok`) or the session fails.
    async fn run(
        &mut self,
        conn: &mut Conn,
        client: &mut RtspClient,
        stop: &CancellationToken,
    ) -> Result<(), ClientError> {
        let mut udp_open = client.wants_udp() || client.url().multicast;
        loop {
            conn.flush(client).await;
            self.send_datagrams(client).await;
            while let Some(ev) = client.poll_event() {
                match ev {
                    Event::Rtp { media, packet } => self.on_rtp(media, packet),
                    Event::Rtcp { .. } => {}
                    Event::SetUp { media, transport } => {
                        let url = self.setup_urls.get(media).map(|u| mask_url(u)).unwrap_or_default();
                        tracing::debug!(url = %url, transport = %transport, "SETUP");
                        self.on_setup(media, &transport, conn.peer.ip());
                    }
                    Event::Playing { rtp_info } => {
                        if let Some(info) = rtp_info {
                            // Logged only: cameras send bad rtptime values (-1) and wrong URLs here.
                            tracing::debug!(entries = rtsp::url::parse_rtp_info(&info).len(), "RTP-Info");
                        }
                        tracing::info!(medias = self.medias.len(), udp = client.wants_udp(), "playing");
                        // Every receiver is spawned: the channel closes when they end.
                        self.udp_tx = None;
                        self.backchannel =
                            self.medias.iter().position(|m| m.direction == Direction::SendOnly).and_then(|i| {
                                self.tracks.get(i).map(|t| {
                                    (i, TrackReader::new(t.clone(), "rtsp-backchannel", BACKCHANNEL_QUEUE, false))
                                })
                            });
                    }
                    Event::Error(e) => return Err(e),
                    Event::Closed => return Ok(()),
                    // Only a pushing client (ANNOUNCE/RECORD) records.
                    Event::Described { .. } | Event::Reconnect | Event::Recording => {}
                }
            }
            let deadline = client.poll_timeout();
            tokio::select! {
                _ = stop.cancelled() => {
                    conn.teardown(client).await;
                    return Ok(());
                }
                _ = conn.read_into(client) => {}
                d = recv_udp(&mut self.udp_rx, udp_open) => match d {
                    Some((i, rtcp, data)) => client.handle_datagram(i, rtcp, data, now()),
                    None => udp_open = false,
                },
                f = recv_backchannel(&mut self.backchannel) => match f {
                    Some((i, frame)) => self.send_backchannel(client, i, &frame),
                    None => self.backchannel = None,
                },
                _ = sleep_until(deadline) => client.handle_timeout(now()),
            }
        }
    }

    /// UDP: where to send, and a receiver per socket.
    fn on_setup(&mut self, media: usize, transport: &rtsp::Transport, peer: IpAddr) {
        if transport.multicast == Some(true) {
            return self.join_group(media, transport);
        }
        let (Some(m), Some(pair), Some(tx)) = (self.medias.get_mut(media), self.udp.get(media), &self.udp_tx) else {
            return;
        };
        let ip = transport.source.as_deref().and_then(|s| s.parse::<IpAddr>().ok()).unwrap_or(peer);
        let (sp_rtp, sp_rtcp) = transport.server_port.unwrap_or((0, 0));
        m.udp_dest = Some((SocketAddr::new(ip, sp_rtp), SocketAddr::new(ip, sp_rtcp)));
        for (sock, rtcp) in [(pair.rtp.clone(), false), (pair.rtcp.clone(), true)] {
            self.udp_tasks.spawn(udp_receive(sock, Some(peer), media, rtcp, tx.clone()));
        }
    }

    /// `#transport=multicast`: joins the group the server named (its RTP and RTCP ports, bound with
    /// address reuse as other receivers of the group may be on this host). Packets are taken from the
    /// reply's `source=` when it names one, else from any sender: a server sends to a group from its
    /// outgoing interface's address, which need not be the one its RTSP connection uses (on a
    /// loopback-only host it is 0.0.0.0). A group that cannot be joined leaves the media without data:
    /// the session's no-data timeout ends it, and it is retried.
    fn join_group(&mut self, media: usize, transport: &rtsp::Transport) {
        let Some(tx) = &self.udp_tx else { return };
        let group = transport.destination.as_deref().and_then(|d| d.parse::<IpAddr>().ok());
        let (Some(group), Some((rtp_port, rtcp_port))) = (group.filter(|g| g.is_multicast()), transport.port) else {
            tracing::warn!(media, transport = %transport, "rtsp: the server named no multicast group");
            return;
        };
        for (port, rtcp) in [(rtp_port, false), (rtcp_port, true)] {
            match super::udp::bind_udp(SocketAddr::new(group, port), None) {
                Ok(sock) => {
                    let source = transport.source.as_deref().and_then(|s| s.parse::<IpAddr>().ok());
                    self.udp_tasks.spawn(udp_receive(Arc::new(sock), source, media, rtcp, tx.clone()));
                }
                Err(e) => tracing::warn!(media, "rtsp: multicast group {group}:{port}: {e}"),
            }
        }
        tracing::debug!(media, %group, rtp_port, rtcp_port, "joined multicast group");
    }

    async fn send_datagrams(&mut self, client: &mut RtspClient) {
        while let Some(d) = client.poll_datagram() {
            let (Some(pair), Some((rtp_dest, rtcp_dest))) =
                (self.udp.get(d.media), self.medias.get(d.media).and_then(|m| m.udp_dest))
            else {
                continue;
            };
            let (sock, dest) = if d.rtcp { (&pair.rtcp, rtcp_dest) } else { (&pair.rtp, rtp_dest) };
            let _ = sock.send_to(&d.payload, dest).await;
        }
    }

    fn on_rtp(&mut self, i: usize, pkt: RtpPacket) {
        let (Some(m), Some(track)) = (self.medias.get_mut(i), self.tracks.get(i)) else { return };
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
    }

    /// Two-way audio: a frame pushed into the backchannel track goes to the camera as RTP with the
    /// payload type the camera's SDP gave.
    fn send_backchannel(&mut self, client: &mut RtspClient, i: usize, frame: &Frame) {
        let Some(m) = self.medias.get_mut(i) else { return };
        if frame.rtp.is_empty() {
            if m.packetizer.is_none() {
                m.packetizer = rtp::packetize::packetizer_for(&m.codec, BACKCHANNEL_MTU);
            }
            let Some(p) = m.packetizer.as_mut() else { return };
            let mut out = Vec::new();
            p.packetize(frame, &mut out);
            client.send_backchannel(i, &out);
        } else {
            client.send_backchannel(i, &frame.rtp);
        }
    }
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
    peer: Option<IpAddr>,
    media: usize,
    rtcp: bool,
    tx: mpsc::Sender<(usize, bool, Bytes)>,
) {
    let mut buf = vec![0u8; 65_536];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else { return };
        // Only the camera may feed this session.
        if peer.is_some_and(|p| from.ip() != p) {
            continue;
        }
        match tx.try_send((media, rtcp, Bytes::copy_from_slice(&buf[..n]))) {
            Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}
