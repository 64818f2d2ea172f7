//! The RTSP client session as a sans-IO state machine: OPTIONS, DESCRIBE (with the ONVIF backchannel
//! `Require`, falling back to a plain DESCRIBE when the camera refuses it), SETUP per media, PLAY, then
//! keep-alives, RTCP receiver reports, the no-data timeout and TEARDOWN, with the interleaved RTP/RTCP
//! demultiplexed by channel.
//!
//! The driver owns the socket and the clock. It feeds what it reads to [`RtspClient::handle_input`],
//! wakes the machine at [`RtspClient::poll_timeout`] with [`RtspClient::handle_timeout`], and after each
//! call writes every [`RtspClient::poll_transmit`] to the connection, sends every
//! [`RtspClient::poll_datagram`] (UDP transport) and acts on every [`RtspClient::poll_event`]. Time is
//! always passed in; nothing here reads a clock or touches a socket.
//!
//! ```text
//!  new ─► OPTIONS ─► DESCRIBE ─► Described ──play()──► SETUP × n ─► PLAY ─► Playing ─► Closed
//!                       │  ▲                                                    │
//!                       ▼  │ refused: plain DESCRIBE (same connection, or       ├ keep-alive, RTCP RR
//!                  Reconnect  a new one after handle_reconnected)                └ no data: Error
//! ```
//!
//! [`RtspClient::record`] starts the other direction (RTSP push, go2rtc's `publish:` to an `rtsp://`
//! destination): OPTIONS, ANNOUNCE with the SDP of what we send, SETUP per media over TCP interleaved
//! with `mode=record`, RECORD, then [`Event::Recording`]; the driver hands RTP to
//! [`RtspClient::send_rtp`], and keep-alives go out as while playing (there is no no-data timeout: we
//! are the one sending).
//!
//! ```text
//!  record ─► OPTIONS ─► ANNOUNCE (SDP) ─► SETUP × n (mode=record) ─► RECORD ─► Recording ─► Closed
//! ```

use super::{
    accepted_transport, offer_transport, read_describe, ClientSession, Described, DescribedMedia, Outcome, SourceUrl,
};
use crate::message::{self, Message, Method, Response, MAX_BODY_BYTES, MAX_HEADER_BYTES};
use crate::transport::Transport;
use crate::transport::TransportMode;
use bytes::{Bytes, BytesMut};
use media::{Direction, Media, RtpPacket};
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// Bytes buffered from the connection: one largest message (headers + body) plus one interleaved frame.
const MAX_BUFFERED: usize = MAX_HEADER_BYTES + MAX_BODY_BYTES + 65_540;
/// RTP kept while waiting for a response (the first RTP may arrive before PLAY's reply).
const MAX_EARLY: usize = 1024;
/// The first receiver report goes out this long after PLAY's reply, the next ones every `RTCP_INTERVAL`.
const RTCP_FIRST: Duration = Duration::from_secs(1);
const RTCP_INTERVAL: Duration = Duration::from_secs(5);

/// What the caller chooses for a session (randomness and names come from outside).
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// SSRC of our RTCP receiver reports and backchannel RTP.
    pub ssrc: u32,
    /// Sequence number of the first backchannel RTP packet.
    pub initial_sequence: u16,
    /// RTCP SDES CNAME.
    pub cname: String,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions { ssrc: 0, initial_sequence: 0, cname: "camrelay".into() }
    }
}

/// The request a failure belongs to; errors read `SETUP: ...`. Errors while playing are `PLAY` ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Options,
    Describe,
    Setup,
    Play,
    Announce,
    /// RECORD, and errors while recording.
    Record,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Options => "OPTIONS",
            Step::Describe => "DESCRIBE",
            Step::Setup => "SETUP",
            Step::Play => "PLAY",
            Step::Announce => "ANNOUNCE",
            Step::Record => "RECORD",
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a session failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// 401 that credentials cannot answer (none given, wrong ones, no usable challenge).
    Auth,
    /// Another error status.
    Status(u16),
    /// Bytes, SDP or headers we cannot use.
    Protocol,
    /// No response in time, or no RTP in time while playing.
    Timeout,
    /// The connection failed or the camera closed it (as told by the driver).
    Network,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{step}: {message}")]
pub struct ClientError {
    pub step: Step,
    pub kind: ErrorKind,
    /// Safe to show: built from our text and printable excerpts of the camera's.
    pub message: String,
}

/// What the driver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The DESCRIBE reply was read. `backchannel`: the camera accepted the ONVIF `Require` (its
    /// `sendonly` audio media is the backchannel). Call [`RtspClient::play`] to go on.
    Described { described: Described, backchannel: bool },
    /// The camera closed or failed the connection on the DESCRIBE that asked for the backchannel: open a
    /// new connection and call [`RtspClient::handle_reconnected`]; the plain DESCRIBE goes there.
    Reconnect,
    /// Media `media` was set up with this transport (UDP: where its RTP and RTCP go).
    SetUp { media: usize, transport: Transport },
    /// PLAY was answered; RTP follows. `rtp_info` is the raw header (logged only: cameras send bad values).
    Playing { rtp_info: Option<String> },
    /// RECORD was answered ([`RtspClient::record`] sessions): hand RTP to [`RtspClient::send_rtp`].
    Recording,
    /// An RTP packet for a received media (never for the backchannel).
    Rtp { media: usize, packet: RtpPacket },
    /// An RTCP packet from the camera.
    Rtcp { media: usize, packet: Bytes },
    /// The session failed; nothing more comes but [`Event::Closed`] never follows an error.
    Error(ClientError),
    /// [`RtspClient::teardown`] ended the session (its TEARDOWN, if any, is in the transmit queue).
    Closed,
}

/// A UDP datagram to send for media `media` (to the camera's RTP or RTCP port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Datagram {
    pub media: usize,
    pub rtcp: bool,
    pub payload: Bytes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Options,
    /// `backchannel`: this DESCRIBE carries the ONVIF `Require`.
    Describe {
        backchannel: bool,
    },
    /// Waiting for the driver to open a new connection.
    Reconnecting,
    /// Record sessions: the ANNOUNCE is pending.
    Announce,
    /// Described; waiting for `play`.
    Described,
    Setup {
        index: usize,
    },
    /// PLAY (or RECORD) is pending.
    Play,
    /// Playing (or recording).
    Playing,
    Closed,
}

/// Which way the media flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    /// DESCRIBE, SETUP, PLAY: we receive.
    Play,
    /// ANNOUNCE, SETUP `mode=record`, RECORD: we send.
    Record,
}

#[derive(Debug)]
struct Pending {
    method: Method,
    uri: String,
    headers: Vec<(&'static str, String)>,
    body: Bytes,
    retried: bool,
    deadline: Instant,
}

#[derive(Debug)]
struct MediaState {
    direction: Direction,
    payload_type: u8,
    /// Interleaved (RTP, RTCP) channels; `None` over UDP.
    channels: Option<(u8, u8)>,
    /// Over UDP: whether the camera gave its RTP / RTCP ports (datagrams to port 0 are not sent).
    udp_rtp: bool,
    udp_rtcp: bool,
    out_sequence: u16,
    /// What we sent on this media (RTCP sender reports; wrapping, as RFC 3550 counts).
    sent_packets: u32,
    sent_octets: u32,
}

#[derive(Debug)]
enum Early {
    Interleaved(u8, Bytes),
    Udp(usize, Bytes),
}

#[derive(Debug)]
struct Timers {
    keepalive_every: Duration,
    keepalive: Instant,
    rtcp: Instant,
    last_rtp: Instant,
}

/// One RTSP client session on one connection (see the module docs).
#[derive(Debug)]
pub struct RtspClient {
    url: SourceUrl,
    options: ClientOptions,
    session: ClientSession,
    flow: Flow,
    /// Record sessions: the SDP the ANNOUNCE carries.
    announce_sdp: Bytes,
    state: State,
    buf: BytesMut,
    pending: Option<Pending>,
    /// The camera accepted the ONVIF backchannel; SETUP and PLAY repeat the `Require`.
    backchannel: bool,
    described: Option<Described>,
    udp_ports: Vec<(u16, u16)>,
    offered: Option<Transport>,
    medias: Vec<MediaState>,
    early: VecDeque<Early>,
    timers: Option<Timers>,
    transmit: VecDeque<Bytes>,
    datagrams: VecDeque<Datagram>,
    events: VecDeque<Event>,
}

impl RtspClient {
    /// A session for `url` whose connection is open; OPTIONS is queued at once.
    pub fn new(url: SourceUrl, options: ClientOptions, now: Instant) -> RtspClient {
        let session = ClientSession::new(&url.username, &url.password);
        let mut c = RtspClient {
            url,
            options,
            session,
            flow: Flow::Play,
            announce_sdp: Bytes::new(),
            state: State::Options,
            buf: BytesMut::new(),
            pending: None,
            backchannel: false,
            described: None,
            udp_ports: Vec::new(),
            offered: None,
            medias: Vec::new(),
            early: VecDeque::new(),
            timers: None,
            transmit: VecDeque::new(),
            datagrams: VecDeque::new(),
            events: VecDeque::new(),
        };
        // OPTIONS tells us whether GET_PARAMETER works for keep-alives; a camera that refuses it still
        // streams, but a wrong password is reported here already.
        let uri = c.url.request_url.clone();
        c.send(Method::Options, uri, Vec::new(), now);
        c
    }

    /// A session that publishes `medias` to `url` (RTSP push) on an open connection: OPTIONS is
    /// queued at once, then ANNOUNCE with their SDP (`rtsp::sdp::write`, track `i` controlled by
    /// `trackID=i`), SETUP of each over TCP interleaved (channels `2i`, `2i+1`, `mode=record`) and
    /// RECORD. Each media's first codec is what is sent, with its payload type. `#transport=udp` is
    /// not offered for recording: the session always interleaves.
    pub fn record(mut url: SourceUrl, options: ClientOptions, medias: Vec<Media>, now: Instant) -> RtspClient {
        url.udp = false;
        let request_url = url.request_url.clone();
        let mut medias = medias;
        for (i, m) in medias.iter_mut().enumerate() {
            m.control = format!("trackID={i}");
            m.direction = Direction::SendOnly;
        }
        let sdp = crate::sdp::write(&medias, "camrelay", &url.host);
        let described = Described {
            base: request_url.clone(),
            aggregate_url: request_url.clone(),
            medias: medias
                .into_iter()
                .map(|m| {
                    let setup_url = crate::url::control_url(&request_url, &m.control);
                    DescribedMedia { media: m, setup_url }
                })
                .collect(),
            warnings: Vec::new(),
        };
        let mut c = RtspClient::new(url, options, now);
        c.flow = Flow::Record;
        c.announce_sdp = Bytes::from(sdp);
        c.described = Some(described);
        c
    }

    /// Whether this is a [`RtspClient::record`] session.
    pub fn is_record(&self) -> bool {
        self.flow == Flow::Record
    }

    pub fn url(&self) -> &SourceUrl {
        &self.url
    }

    /// The request state (CSeq, Session, auth, the camera's `Public` methods).
    pub fn session(&self) -> &ClientSession {
        &self.session
    }

    /// The DESCRIBE result, once read.
    pub fn described(&self) -> Option<&Described> {
        self.described.as_ref()
    }

    /// Whether `play` needs UDP ports (`#transport=udp`).
    pub fn wants_udp(&self) -> bool {
        self.url.udp
    }

    /// Playing (PLAY was answered and no error or teardown since).
    pub fn is_playing(&self) -> bool {
        self.state == State::Playing
    }

    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// SETUPs every described media, then PLAYs. Over UDP, `udp_ports` holds the local (RTP, RTCP)
    /// ports of each media, in order; over TCP it is ignored. Does nothing unless described.
    pub fn play(&mut self, udp_ports: Vec<(u16, u16)>, now: Instant) {
        if self.state != State::Described {
            return;
        }
        let n = self.described.as_ref().map_or(0, |d| d.medias.len());
        if self.url.udp && udp_ports.len() < n {
            self.fail(Step::Setup, ErrorKind::Protocol, "no local UDP ports for every media".into());
            return;
        }
        self.udp_ports = udp_ports;
        self.medias.clear();
        self.setup(0, now);
    }

    /// Ends the session: TEARDOWN when the camera opened one (always once playing), then
    /// [`Event::Closed`]. Nothing is expected afterwards; the driver writes the queued bytes and closes.
    pub fn teardown(&mut self, now: Instant) {
        let _ = now;
        let send = match self.state {
            State::Closed => return,
            State::Playing => true,
            State::Described | State::Setup { .. } | State::Play => self.session.session.is_some(),
            State::Options | State::Describe { .. } | State::Reconnecting | State::Announce => false,
        };
        self.transmit.clear();
        self.datagrams.clear();
        if send {
            if let Some(d) = &self.described {
                let req = self.session.request(Method::Teardown, &d.aggregate_url);
                self.transmit.push_back(Bytes::from(req.to_bytes()));
            }
        }
        self.close();
        self.events.push_back(Event::Closed);
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if self.state == State::Closed || self.state == State::Reconnecting {
            return;
        }
        self.buf.extend_from_slice(data);
        loop {
            let msg = match message::decode_buf(&mut self.buf) {
                Ok(Some(m)) => m,
                Ok(None) => break,
                Err(e) => {
                    self.connection_failed(ErrorKind::Protocol, format!("bad data from camera: {e}"));
                    return;
                }
            };
            match msg {
                Message::Response(r) => self.on_response(r, now),
                Message::Interleaved { channel, payload } => self.on_interleaved(channel, payload, now),
                // Cameras send GET_PARAMETER or ANNOUNCE at times; nothing we must answer.
                Message::Request(_) => {}
            }
            if matches!(self.state, State::Closed | State::Reconnecting) {
                return;
            }
        }
        if self.buf.len() >= MAX_BUFFERED {
            self.connection_failed(ErrorKind::Protocol, "camera sent an oversized message".into());
        }
    }

    /// A datagram from the camera on media `media`'s RTP (or RTCP) socket (UDP transport).
    pub fn handle_datagram(&mut self, media: usize, rtcp: bool, payload: Bytes, now: Instant) {
        match self.state {
            State::Playing if rtcp && media < self.medias.len() => {
                self.events.push_back(Event::Rtcp { media, packet: payload });
            }
            State::Playing if rtcp => {}
            State::Playing => self.on_rtp(media, payload, now),
            State::Setup { .. } | State::Play if !rtcp && self.early.len() < MAX_EARLY => {
                self.early.push_back(Early::Udp(media, payload))
            }
            _ => {}
        }
    }

    /// The connection ended: `reason` is `connection closed by camera`, `read: ...` or `write: ...`.
    pub fn handle_disconnect(&mut self, reason: &str, now: Instant) {
        let _ = now;
        if self.state == State::Closed || self.state == State::Reconnecting {
            return;
        }
        self.connection_failed(ErrorKind::Network, reason.to_string());
    }

    /// The new connection asked for by [`Event::Reconnect`] is open.
    pub fn handle_reconnected(&mut self, now: Instant) {
        if self.state != State::Reconnecting {
            return;
        }
        self.buf.clear();
        self.early.clear();
        self.describe(false, now);
    }

    /// Time passed; call at or after [`RtspClient::poll_timeout`].
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(p) = &self.pending {
            if now >= p.deadline {
                let secs = self.url.connect_timeout().as_secs();
                self.connection_failed(ErrorKind::Timeout, format!("no response within {secs}s"));
                return;
            }
        }
        if self.state != State::Playing {
            return;
        }
        let no_data = self.url.no_data_timeout();
        let record = self.flow == Flow::Record;
        let Some(t) = &mut self.timers else { return };
        if !record && now >= t.last_rtp + no_data {
            self.fail(Step::Play, ErrorKind::Timeout, format!("no data from camera for {}s", no_data.as_secs()));
            return;
        }
        let keepalive = now >= t.keepalive;
        if keepalive {
            t.keepalive = next_tick(t.keepalive, t.keepalive_every, now);
        }
        let rtcp = now >= t.rtcp;
        if rtcp {
            t.rtcp = next_tick(t.rtcp, RTCP_INTERVAL, now);
        }
        if keepalive {
            if let Some(d) = &self.described {
                let method = self.session.keepalive_method();
                let req = self.session.request(method, &d.aggregate_url);
                self.transmit.push_back(Bytes::from(req.to_bytes()));
            }
        }
        if rtcp {
            self.receiver_reports();
        }
    }

    /// Two-way audio: RTP packets for the backchannel media `media` (their payload, timestamp and
    /// marker; the payload type, sequence and SSRC are the session's). Ignored unless playing.
    pub fn send_backchannel(&mut self, media: usize, packets: &[RtpPacket]) {
        self.send_rtp(media, packets);
    }

    /// RTP packets for media `media` that we send: the backchannel of a playing session, or any media
    /// of a recording one. Only their payload, timestamp and marker are used; the payload type, sequence
    /// number and SSRC (`ClientOptions::ssrc`, plus the media index when recording) are the
    /// session's. Ignored unless playing or recording. Returns the bytes queued for the connection.
    pub fn send_rtp(&mut self, media: usize, packets: &[RtpPacket]) -> usize {
        if self.state != State::Playing {
            return 0;
        }
        let ssrc = match self.flow {
            Flow::Play => self.options.ssrc,
            Flow::Record => self.options.ssrc.wrapping_add(u32::try_from(media).unwrap_or(0)),
        };
        let Some(m) = self.medias.get_mut(media) else { return 0 };
        if m.direction != Direction::SendOnly {
            return 0;
        }
        let mut out = BytesMut::new();
        let mut queued = 0;
        for p in packets {
            let mut header = [0u8; rtp::packet::HEADER_LEN];
            rtp::packet::write_header(&mut header, p.marker, m.payload_type, m.out_sequence, p.timestamp, ssrc);
            m.out_sequence = m.out_sequence.wrapping_add(1);
            let Ok(len) = u16::try_from(header.len() + p.payload.len()) else { continue };
            m.sent_packets = m.sent_packets.wrapping_add(1);
            m.sent_octets = m.sent_octets.wrapping_add(u32::try_from(p.payload.len()).unwrap_or(0));
            match m.channels {
                Some((rtp, _)) => {
                    out.extend_from_slice(&message::encode_interleaved_header(rtp, len));
                    out.extend_from_slice(&header);
                    out.extend_from_slice(&p.payload);
                }
                None if m.udp_rtp => {
                    let mut d = BytesMut::with_capacity(usize::from(len));
                    d.extend_from_slice(&header);
                    d.extend_from_slice(&p.payload);
                    self.datagrams.push_back(Datagram { media, rtcp: false, payload: d.freeze() });
                }
                None => {}
            }
        }
        if !out.is_empty() {
            queued = out.len();
            self.transmit.push_back(out.freeze());
        }
        queued
    }

    /// Record sessions: an RTCP sender report for media `media` saying that RTP timestamp
    /// `rtp_timestamp` is wall-clock time `ntp` (`rtp::rtcp::ntp_from_system_time`), with the packet and
    /// octet counts sent so far, so the server can sync the medias and date them. The driver chooses
    /// when (every few seconds, as the RTSP server does for its readers). Ignored unless recording.
    pub fn send_sender_report(&mut self, media: usize, ntp: u64, rtp_timestamp: u32) {
        if self.state != State::Playing || self.flow != Flow::Record {
            return;
        }
        let Some(m) = self.medias.get(media) else { return };
        let Some((_, channel)) = m.channels else { return };
        let report = rtp::rtcp::SenderReport {
            ssrc: self.options.ssrc.wrapping_add(u32::try_from(media).unwrap_or(0)),
            ntp,
            rtp_timestamp,
            packet_count: m.sent_packets,
            octet_count: m.sent_octets,
        };
        let sr = rtp::rtcp::build_sender_report(&report, &self.options.cname);
        let Ok(len) = u16::try_from(sr.len()) else { return };
        let mut out = BytesMut::with_capacity(4 + sr.len());
        out.extend_from_slice(&message::encode_interleaved_header(channel, len));
        out.extend_from_slice(&sr);
        self.transmit.push_back(out.freeze());
    }

    /// Bytes to write to the connection, in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// UDP datagrams to send (UDP transport only).
    pub fn poll_datagram(&mut self) -> Option<Datagram> {
        self.datagrams.pop_front()
    }

    /// The next deadline: call [`RtspClient::handle_timeout`] then. `None`: nothing is timed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let pending = self.pending.as_ref().map(|p| p.deadline);
        let playing = match (&self.timers, self.state) {
            // A recording session sends; it has no no-data deadline.
            (Some(t), State::Playing) if self.flow == Flow::Record => Some(t.keepalive.min(t.rtcp)),
            (Some(t), State::Playing) => Some(t.keepalive.min(t.rtcp).min(t.last_rtp + self.url.no_data_timeout())),
            _ => None,
        };
        match (pending, playing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- the flow ----

    fn step(&self) -> Step {
        match (self.state, self.flow) {
            (State::Options, _) => Step::Options,
            (State::Announce, _) => Step::Announce,
            (State::Describe { .. } | State::Reconnecting | State::Described, Flow::Play) => Step::Describe,
            (State::Describe { .. } | State::Reconnecting | State::Described, Flow::Record) => Step::Announce,
            (State::Setup { .. }, _) => Step::Setup,
            (State::Play | State::Playing | State::Closed, Flow::Play) => Step::Play,
            (State::Play | State::Playing | State::Closed, Flow::Record) => Step::Record,
        }
    }

    fn send(&mut self, method: Method, uri: String, headers: Vec<(&'static str, String)>, now: Instant) {
        self.send_with_body(method, uri, headers, Bytes::new(), now);
    }

    fn send_with_body(
        &mut self,
        method: Method,
        uri: String,
        headers: Vec<(&'static str, String)>,
        body: Bytes,
        now: Instant,
    ) {
        let mut req = self.session.request(method.clone(), &uri);
        for (k, v) in &headers {
            req.headers.insert(*k, v.clone());
        }
        req.body = body.clone();
        self.transmit.push_back(Bytes::from(req.to_bytes()));
        let deadline = now + self.url.connect_timeout();
        self.pending = Some(Pending { method, uri, headers, body, retried: false, deadline });
    }

    /// Record sessions: ANNOUNCE the SDP of what we send.
    fn announce(&mut self, now: Instant) {
        self.state = State::Announce;
        let uri = self.url.request_url.clone();
        let body = self.announce_sdp.clone();
        self.send_with_body(Method::Announce, uri, vec![("Content-Type", "application/sdp".to_string())], body, now);
    }

    /// After OPTIONS: DESCRIBE to play, ANNOUNCE to record.
    fn after_options(&mut self, now: Instant) {
        match self.flow {
            Flow::Play => self.describe(self.url.backchannel, now),
            Flow::Record => self.announce(now),
        }
    }

    /// ONVIF: a session with a backchannel repeats the `Require` tag on SETUP and PLAY (GStreamer's
    /// ONVIF server answers PLAY with 503 otherwise).
    fn with_require(&self, mut headers: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
        if self.backchannel {
            headers.push(("Require", super::ONVIF_BACKCHANNEL.to_string()));
        }
        headers
    }

    fn describe(&mut self, backchannel: bool, now: Instant) {
        let mut headers = vec![("Accept", "application/sdp".to_string())];
        if backchannel {
            headers.push(("Require", super::ONVIF_BACKCHANNEL.to_string()));
        }
        self.state = State::Describe { backchannel };
        let uri = self.url.request_url.clone();
        self.send(Method::Describe, uri, headers, now);
    }

    fn setup(&mut self, index: usize, now: Instant) {
        let Some(d) = self.described.as_ref() else { return };
        let Some(m) = d.medias.get(index) else {
            // Every media is set up. No `Range`: a live camera has nothing to seek, and GStreamer's ONVIF
            // media fails PLAY with 503 when asked to seek to npt=0.
            let uri = d.aggregate_url.clone();
            self.state = State::Play;
            if self.flow == Flow::Record {
                self.send(Method::Record, uri, vec![("Range", "npt=0.000-".to_string())], now);
                return;
            }
            let headers = self.with_require(Vec::new());
            self.send(Method::Play, uri, headers, now);
            return;
        };
        let uri = m.setup_url.clone();
        let ports = if self.url.udp { self.udp_ports.get(index).copied() } else { None };
        let mut offered = offer_transport(index, ports);
        if self.url.multicast {
            offered = Transport::new(crate::transport::LowerTransport::Udp);
            offered.multicast = Some(true);
        }
        if self.flow == Flow::Record {
            offered.mode = Some(TransportMode::Record);
        }
        let headers = self.with_require(vec![("Transport", offered.to_string())]);
        self.offered = Some(offered);
        self.state = State::Setup { index };
        self.send(Method::Setup, uri, headers, now);
    }

    fn on_response(&mut self, resp: Response, now: Instant) {
        // Replies to keep-alives (and stray ones) carry nothing we need; cameras answer keep-alives
        // with errors at times and go on streaming.
        let Some(p) = self.pending.take() else { return };
        match self.session.on_response(&p.method, &resp, p.retried) {
            Outcome::RetryWithAuth => {
                let mut req = self.session.request(p.method.clone(), &p.uri);
                for (k, v) in &p.headers {
                    req.headers.insert(*k, v.clone());
                }
                req.body = p.body.clone();
                self.transmit.push_back(Bytes::from(req.to_bytes()));
                let deadline = now + self.url.connect_timeout();
                self.pending = Some(Pending { retried: true, deadline, ..p });
            }
            Outcome::Ok => self.on_success(resp, now),
            Outcome::Failed { status, message } => self.on_failure(status, message, now),
        }
    }

    fn on_failure(&mut self, status: u16, message: String, now: Instant) {
        let kind = if status == 401 { ErrorKind::Auth } else { ErrorKind::Status(status) };
        match self.state {
            // A camera that refuses OPTIONS may still stream; a 401 is a wrong password though.
            State::Options if status != 401 => self.after_options(now),
            // Refused the ONVIF backchannel: DESCRIBE without it.
            State::Describe { backchannel: true } if status != 401 => self.describe(false, now),
            _ => self.fail(self.step(), kind, message),
        }
    }

    fn on_success(&mut self, resp: Response, now: Instant) {
        match self.state {
            State::Options => self.after_options(now),
            State::Announce => {
                // What we send is described; set each media up for recording.
                self.state = State::Described;
                self.medias.clear();
                self.setup(0, now);
            }
            State::Describe { backchannel } => {
                match read_describe(&self.url.request_url, &resp, self.url.kinds.as_deref(), backchannel) {
                    Ok(d) => {
                        self.backchannel = backchannel;
                        self.state = State::Described;
                        self.described = Some(d.clone());
                        self.events.push_back(Event::Described { described: d, backchannel });
                    }
                    Err(e) => self.fail(Step::Describe, ErrorKind::Protocol, e.to_string()),
                }
            }
            State::Setup { index } => {
                let Some(offered) = self.offered.take() else { return };
                let accepted = match accepted_transport(&offered, resp.headers.get("Transport")) {
                    Ok(t) => t,
                    Err(e) => return self.fail(Step::Setup, ErrorKind::Protocol, e),
                };
                let Some(dm) = self.described.as_ref().and_then(|d| d.medias.get(index)) else { return };
                let udp = self.url.udp;
                let (sp_rtp, sp_rtcp) = accepted.server_port.unwrap_or((0, 0));
                self.medias.push(MediaState {
                    direction: dm.media.direction,
                    payload_type: dm.media.codecs.first().map_or(96, |c| c.payload_type),
                    channels: (!udp && !self.url.multicast).then(|| accepted.interleaved.unwrap_or((0, 1))),
                    udp_rtp: udp && sp_rtp != 0,
                    udp_rtcp: udp && sp_rtcp != 0,
                    out_sequence: self.options.initial_sequence,
                    sent_packets: 0,
                    sent_octets: 0,
                });
                self.events.push_back(Event::SetUp { media: index, transport: accepted });
                self.setup(index + 1, now);
            }
            State::Play => {
                self.state = State::Playing;
                let every = self.session.keepalive_interval();
                self.timers = Some(Timers {
                    keepalive_every: every,
                    keepalive: now + every,
                    rtcp: now + RTCP_FIRST,
                    last_rtp: now,
                });
                if self.flow == Flow::Record {
                    // Replies and RTCP from the server are all that comes; nothing waits in `early`.
                    self.early.clear();
                    self.events.push_back(Event::Recording);
                    return;
                }
                let rtp_info = resp.headers.get("RTP-Info").map(str::to_string);
                self.events.push_back(Event::Playing { rtp_info });
                // RTP that came before or with PLAY's reply.
                while let Some(e) = self.early.pop_front() {
                    match e {
                        Early::Interleaved(channel, payload) => self.on_interleaved(channel, payload, now),
                        Early::Udp(media, payload) => self.on_rtp(media, payload, now),
                    }
                }
            }
            State::Described | State::Reconnecting | State::Playing | State::Closed => {}
        }
    }

    fn on_interleaved(&mut self, channel: u8, payload: Bytes, now: Instant) {
        if self.state != State::Playing {
            if self.early.len() < MAX_EARLY {
                self.early.push_back(Early::Interleaved(channel, payload));
            }
            return;
        }
        if let Some(i) = self.medias.iter().position(|m| matches!(m.channels, Some((rtp, _)) if rtp == channel)) {
            self.on_rtp(i, payload, now);
        } else if let Some(i) =
            self.medias.iter().position(|m| matches!(m.channels, Some((_, rtcp)) if rtcp == channel))
        {
            self.events.push_back(Event::Rtcp { media: i, packet: payload });
        }
    }

    fn on_rtp(&mut self, media: usize, payload: Bytes, now: Instant) {
        let Some(m) = self.medias.get(media) else { return };
        if m.direction == Direction::SendOnly {
            return;
        }
        let Ok(packet) = rtp::packet::parse_bytes(payload) else { return };
        if let Some(t) = &mut self.timers {
            t.last_rtp = now;
        }
        self.events.push_back(Event::Rtp { media, packet });
    }

    /// An empty RR + SDES to every received media: some cameras stop sending without RTCP.
    fn receiver_reports(&mut self) {
        let rr = Bytes::from(rtp::rtcp::build_receiver_report(self.options.ssrc, &self.options.cname));
        let Ok(len) = u16::try_from(rr.len()) else { return };
        let mut interleaved = BytesMut::new();
        for (i, m) in self.medias.iter().enumerate().filter(|(_, m)| m.direction != Direction::SendOnly) {
            match m.channels {
                Some((_, rtcp)) => {
                    interleaved.extend_from_slice(&message::encode_interleaved_header(rtcp, len));
                    interleaved.extend_from_slice(&rr);
                }
                None if m.udp_rtcp => self.datagrams.push_back(Datagram { media: i, rtcp: true, payload: rr.clone() }),
                None => {}
            }
        }
        if !interleaved.is_empty() {
            self.transmit.push_back(interleaved.freeze());
        }
    }

    /// The connection failed (bad bytes, no response, closed). On the DESCRIBE that asked for the
    /// backchannel, the camera may simply not know the `Require`: try again without it on a new
    /// connection.
    fn connection_failed(&mut self, kind: ErrorKind, message: String) {
        if self.state == (State::Describe { backchannel: true }) {
            self.pending = None;
            self.buf.clear();
            self.transmit.clear();
            self.state = State::Reconnecting;
            self.events.push_back(Event::Reconnect);
            return;
        }
        self.fail(self.step(), kind, message);
    }

    fn fail(&mut self, step: Step, kind: ErrorKind, message: String) {
        self.close();
        self.events.push_back(Event::Error(ClientError { step, kind, message }));
    }

    fn close(&mut self) {
        self.state = State::Closed;
        self.pending = None;
        self.timers = None;
        self.buf = BytesMut::new();
        self.early.clear();
    }
}

/// The tick after `at` (every `every`), skipping ticks missed by more than one period.
fn next_tick(at: Instant, every: Duration, now: Instant) -> Instant {
    let next = at + every;
    if next <= now {
        now + every
    } else {
        next
    }
}
