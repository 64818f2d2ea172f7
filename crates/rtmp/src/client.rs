//! The RTMP client session as a sans-IO state machine, in two modes:
//!
//! - **play**: handshake, `connect`, `createStream`, `play`; the server's audio, video and `onMetaData`
//!   messages come out as [`ClientEvent::Media`] (bodies as in FLV tags).
//! - **publish**: handshake, `connect`, `releaseStream` + `FCPublish`, `createStream`, `publish`; once
//!   [`ClientEvent::Publishing`] is out, [`RtmpClientSession::send_media`] takes audio, video and data
//!   messages (FLV tag bodies) and chunks them into the output.
//!
//! The driver owns the socket and the clock. It writes every [`RtmpClientSession::poll_transmit`]
//! (the C0+C1 is queued by [`RtmpClientSession::new`]), feeds what it reads to
//! [`RtmpClientSession::handle_input`], tells [`RtmpClientSession::handle_eof`] when the server closed,
//! wakes the machine at [`RtmpClientSession::poll_timeout`] with [`RtmpClientSession::handle_timeout`],
//! and acts on every [`RtmpClientSession::poll_event`]. [`RtmpClientSession::close`] ends the session
//! politely (`FCUnpublish`/`deleteStream`); flush, then close the socket.
//!
//! ```text
//!  C0C1 ─► (S0S1S2) C2, Set Chunk Size, connect ─► (_result) Connected ─┬─ createStream ─► play ────► (onStatus Play.Start) Playing ───┐
//!                                                                      └─ releaseStream, FCPublish, createStream ─► publish ─►        │
//!                                                                                         (onStatus Publish.Start) Publishing ────────┤
//!              _error / error onStatus ─► Error(Rejected)   Stream EOF / Play.Stop / UnpublishNotify / close() / EOF ─► Closed ───────┘
//! ```
//!
//! Refusals are typed ([`ClientError::Rejected`] with a [`RejectKind`]: authentication, stream not
//! found, bad name, other) and carry what the server said. Memory is bounded as in the server session
//! (the [`crate::chunk::ChunkReader`] limits, input kept while nothing can be parsed, queued events, and the output
//! queue [`ClientConfig::max_pending_output`]).

use crate::amf0::{Amf0Error, Amf0Reader, Amf0Value};
use crate::chunk::{ChunkError, ChunkWriter, Inbound, Message};
use crate::handshake::{self, Filler, HandshakeError, PACKET_SIZE};
use crate::message as msg;
use crate::server::MediaKind;
use bytes::{BufMut, Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Events queued before the driver polls them (one read of 64 KiB holds far fewer messages).
const MAX_EVENTS: usize = 4096;
/// The `start` argument of `play`: live if there is one, else recorded (ffmpeg's default, -2 s).
const PLAY_START: f64 = -2000.0;
/// The buffer length we announce for the play stream (Set Buffer Length), in milliseconds.
const BUFFER_LENGTH_MS: u32 = 3000;
/// User control event Set Buffer Length.
const SET_BUFFER_LENGTH: u16 = 3;

/// Play (pull) or publish (push).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientMode {
    Play,
    Publish,
}

/// Where to connect and what to ask for: usually from [`RtmpUrl::parse`] and [`ClientConfig::new`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub mode: ClientMode,
    /// The application (`live` of `rtmp://host/live/cam`).
    pub app: String,
    /// The stream name (play path or publishing name), query included (`cam?user=u&pass=p`).
    pub stream: String,
    /// `tcUrl` of `connect`: the URL up to the application, without credentials.
    pub tc_url: String,
    /// `flashVer` of `connect` (defaults: ffmpeg's player string for play, FMLE's for publish, as OBS).
    pub flash_ver: String,
    /// Our outgoing chunk size, sent in Set Chunk Size right after the handshake (OBS and ffmpeg: 4096).
    pub chunk_size: u32,
    /// The window we ask the server to acknowledge.
    pub window_ack_size: u32,
    /// Send a C1 with the Flash Player digest (as ffmpeg) and check the server's S1/S2 digests when the
    /// server answers with its version (some servers want it); plain by default, as OBS/librtmp.
    pub digest_handshake: bool,
    /// How long the setup (handshake to Playing/Publishing) may take, and how long a playing session may
    /// receive nothing.
    pub timeout: Duration,
    /// Queued output beyond which [`RtmpClientSession::send_media`] refuses.
    pub max_pending_output: usize,
    /// Enhanced RTMP codecs to announce in `connect` (`fourCcList`, e.g. `hvc1`, `av01`); none by default.
    pub fourcc_list: Vec<String>,
    /// Seed of the handshake filler bytes (randomness comes from outside).
    pub seed: u64,
}

impl ClientConfig {
    /// The defaults for `mode` on `url`.
    pub fn new(mode: ClientMode, url: &RtmpUrl) -> ClientConfig {
        let flash_ver = match mode {
            ClientMode::Play => "LNX 9,0,124,2",
            ClientMode::Publish => "FMLE/3.0 (compatible; FMSc/1.0)",
        };
        ClientConfig {
            mode,
            app: url.app.clone(),
            stream: url.stream.clone(),
            tc_url: url.tc_url(),
            flash_ver: flash_ver.to_string(),
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            digest_handshake: false,
            timeout: Duration::from_secs(10),
            max_pending_output: 8 * 1024 * 1024,
            fourcc_list: Vec::new(),
            seed: 0x5eed,
        }
    }
}

/// An `rtmp://` or `rtmps://` URL: `rtmp[s]://[user:pass@]host[:port]/app[/instance]/stream[?query]`.
///
/// Split as ffmpeg does: with two path segments the first is the application and the second the stream
/// (`/live/cam`), with more the first two are the application (`/app/instance/cam`). The query stays on
/// the stream name (servers such as MediaMTX read `?user=&pass=` there). Credentials in the authority
/// are not part of RTMP and are dropped (they never reach `tcUrl`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// `rtmps://`: TLS.
    pub tls: bool,
    /// Without brackets for IPv6.
    pub host: String,
    /// 1935 for `rtmp://`, 443 for `rtmps://` unless given.
    pub port: u16,
    pub app: String,
    pub stream: String,
}

impl RtmpUrl {
    pub fn parse(url: &str) -> Result<RtmpUrl, String> {
        let (scheme, rest) = url.split_once("://").ok_or("not a URL (no scheme://)")?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "rtmp" => false,
            "rtmps" => true,
            other => return Err(format!("not an RTMP URL (scheme {other:?})")),
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let hostport = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let (host, port) = match hostport.strip_prefix('[') {
            Some(v6) => {
                let (h, after) = v6.split_once(']').ok_or("bad IPv6 host")?;
                (h, after.strip_prefix(':'))
            }
            None => match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            },
        };
        if host.is_empty() {
            return Err("no host in the URL".into());
        }
        let port = match port {
            Some(p) => p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?,
            None if tls => 443,
            None => 1935,
        };
        let (path, query) = match path.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path, None),
        };
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (app, stream) = match segments.len() {
            0 => return Err("no application and stream name in the URL (rtmp://host/app/stream)".into()),
            1 => (segments[0].to_string(), String::new()),
            2 => (segments[0].to_string(), segments[1].to_string()),
            _ => (segments[..2].join("/"), segments[2..].join("/")),
        };
        let stream = match query {
            Some(q) if !stream.is_empty() => format!("{stream}?{q}"),
            _ => stream,
        };
        if stream.is_empty() {
            return Err(format!("no stream name after the application {app:?} (rtmp://host/{app}/stream)"));
        }
        Ok(RtmpUrl { tls, host: host.to_string(), port, app, stream })
    }

    /// `tcUrl`: scheme, host, port and application, no credentials.
    pub fn tc_url(&self) -> String {
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{}://{host}:{}/{}", if self.tls { "rtmps" } else { "rtmp" }, self.port, self.app)
    }
}

/// What a refusal was about, from the server's status code and description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    /// Credentials missing or wrong (`NetConnection.Connect.Rejected`, "not authorized", "auth failed"...).
    Auth,
    /// `NetStream.Play.StreamNotFound`, "not found".
    NotFound,
    /// `NetStream.Publish.BadName` (the name is taken or not allowed).
    BadName,
    Other,
}

impl RejectKind {
    /// Classifies a status `code` and `description` (auth first: servers often say "not authorized"
    /// under a not-found or bad-name code).
    pub fn classify(code: &str, description: &str) -> RejectKind {
        let d = description.to_ascii_lowercase();
        let c = code.to_ascii_lowercase();
        let auth_words = ["auth", "password", "credential", "denied", "forbidden", "unauthori", "permission"];
        if c.ends_with("connect.rejected") || c.contains("denied") || auth_words.iter().any(|w| d.contains(w)) {
            RejectKind::Auth
        } else if c.ends_with("streamnotfound") || c.ends_with("connect.invalidapp") || d.contains("not found") {
            RejectKind::NotFound
        } else if c.ends_with("badname") {
            RejectKind::BadName
        } else {
            RejectKind::Other
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    #[error("RTMP command: {0}")]
    Amf(#[from] Amf0Error),
    /// The server refused a step: `step` is the command (`connect`, `createStream`, `play`, `publish`).
    #[error("RTMP {step} refused by the server: {code}{}", if description.is_empty() { String::new() } else { format!(" ({description})") })]
    Rejected { step: String, kind: RejectKind, code: String, description: String },
    #[error("RTMP: {0}")]
    Protocol(String),
    #[error("RTMP: {0}")]
    Timeout(String),
    #[error("RTMP: the server closed the connection {0}")]
    Closed(String),
}

/// What the driver acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    /// `connect` succeeded (the server's `fmsVer` if it said).
    Connected { server: Option<String> },
    /// Play mode: `NetStream.Play.Start`; media follows.
    Playing,
    /// Publish mode: `NetStream.Publish.Start`; call [`RtmpClientSession::send_media`].
    Publishing,
    /// Play mode: an audio, video or data (`onMetaData`, `@setDataFrame` removed) message of our stream,
    /// its body as in an FLV tag.
    Media { kind: MediaKind, timestamp: u32, payload: Bytes },
    /// An informational status of our stream that changes nothing (`NetStream.Play.Reset`,
    /// `NetStream.Play.PublishNotify`...).
    Status { code: String, description: String },
    /// The session ended without error: the server ended the stream (Stream EOF, `NetStream.Play.Stop`,
    /// `NetStream.Play.UnpublishNotify`, `NetStream.Play.Complete`), closed the connection after the
    /// setup, or [`RtmpClientSession::close`] was called. `reason` says which.
    Closed { reason: String },
    /// The session failed; nothing follows.
    Error(ClientError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("RTMP: the session is not publishing")]
    NotPublishing,
    #[error("RTMP: the output queue is full")]
    Full,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// C0+C1 sent; waiting for S0+S1+S2.
    Handshake,
    /// `connect` sent.
    Connecting,
    /// `createStream` sent.
    Creating,
    /// `play` or `publish` sent on the stream.
    Starting {
        stream_id: u32,
    },
    Playing {
        stream_id: u32,
    },
    Publishing {
        stream_id: u32,
    },
    Ended,
}

/// Transaction ids of our commands.
const TID_CONNECT: f64 = 1.0;
const TID_RELEASE: f64 = 2.0;
const TID_FCPUBLISH: f64 = 3.0;
const TID_CREATE: f64 = 4.0;
const TID_START: f64 = 5.0;

/// One RTMP client session on one connection (see the module docs).
#[derive(Debug)]
pub struct RtmpClientSession {
    config: ClientConfig,
    state: State,
    buf: BytesMut,
    out: BytesMut,
    events: VecDeque<ClientEvent>,
    inbound: Inbound,
    writer: ChunkWriter,
    client_digest: Option<[u8; 32]>,
    /// Last input (or the start): the timeout counts from here.
    last_input: Instant,
    answered_bandwidth: bool,
    dropped_events: u64,
}

impl RtmpClientSession {
    /// A session that has queued its C0+C1: write [`Self::poll_transmit`] to the new connection.
    pub fn new(config: ClientConfig, now: Instant) -> Self {
        let mut filler = Filler::new(config.seed);
        let (c0c1, client_digest) = handshake::client_hello(0, config.digest_handshake, &mut filler);
        let mut out = BytesMut::with_capacity(c0c1.len());
        out.extend_from_slice(&c0c1);
        RtmpClientSession {
            config,
            state: State::Handshake,
            buf: BytesMut::new(),
            out,
            events: VecDeque::new(),
            inbound: Inbound::default(),
            writer: ChunkWriter::new(),
            client_digest,
            last_input: now,
            answered_bandwidth: false,
            dropped_events: 0,
        }
    }

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Whether the session is over (after `Closed` or `Error`).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    pub fn is_publishing(&self) -> bool {
        matches!(self.state, State::Publishing { .. })
    }

    /// Bytes received after the handshake (what acknowledgements count).
    pub fn bytes_received(&self) -> u64 {
        self.inbound.received
    }

    /// Bytes waiting in the output queue.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Events lost because the driver did not poll.
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`]: during the setup and while playing (a publisher may hear
    /// nothing from the server for long).
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Ended | State::Publishing { .. } => None,
            _ => Some(self.last_input + self.config.timeout),
        }
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        let Some(t) = self.poll_timeout() else { return };
        if now < t {
            return;
        }
        let secs = self.config.timeout.as_secs_f32();
        let what = match self.state {
            State::Handshake => format!("no handshake answer within {secs} s"),
            State::Connecting => format!("no answer to connect within {secs} s"),
            State::Creating => format!("no answer to createStream within {secs} s"),
            State::Starting { .. } => {
                let cmd = self.start_command();
                format!("no answer to {cmd} within {secs} s")
            }
            _ => format!("nothing received for {secs} s"),
        };
        self.fail(ClientError::Timeout(what));
    }

    /// The server closed the connection.
    pub fn handle_eof(&mut self) {
        match self.state {
            State::Ended => {}
            State::Playing { .. } | State::Publishing { .. } => {
                self.state = State::Ended;
                self.push(ClientEvent::Closed { reason: "the server closed the connection".into() });
            }
            _ => {
                let step = match self.state {
                    State::Handshake => "during the handshake".to_string(),
                    State::Connecting => "after connect (wrong application or credentials?)".to_string(),
                    State::Creating => "after createStream".to_string(),
                    _ => format!("after {} (refused?)", self.start_command()),
                };
                self.fail(ClientError::Closed(step));
            }
        }
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Ended || data.is_empty() {
            return;
        }
        self.last_input = now;
        if self.state != State::Handshake {
            self.inbound.received += data.len() as u64;
        }
        self.buf.extend_from_slice(data);
        if let Err(e) = self.process() {
            self.fail(e);
        }
    }

    /// Publish mode: sends one audio, video or data message (its body as in an FLV tag; a data message
    /// `onMetaData` goes out as `@setDataFrame` as encoders send it).
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) -> Result<(), SendError> {
        let State::Publishing { stream_id } = self.state else { return Err(SendError::NotPublishing) };
        if self.out.len() > self.config.max_pending_output {
            return Err(SendError::Full);
        }
        let csid = match kind {
            MediaKind::Audio => msg::CSID_AUDIO,
            MediaKind::Video => msg::CSID_VIDEO,
            MediaKind::Data => msg::CSID_DATA,
        };
        if kind == MediaKind::Data && payload.starts_with(b"\x02\x00\x0aonMetaData") {
            let mut body = BytesMut::with_capacity(16 + payload.len());
            body.put_slice(b"\x02\x00\x0d@setDataFrame");
            body.put_slice(payload);
            self.writer.write(&mut self.out, csid, timestamp, kind.type_id(), stream_id, &body);
        } else {
            self.writer.write(&mut self.out, csid, timestamp, kind.type_id(), stream_id, payload);
        }
        Ok(())
    }

    /// Ends the session politely: `FCUnpublish` + `deleteStream` (publish) or `deleteStream` (play).
    /// Queues [`ClientEvent::Closed`]; flush [`Self::poll_transmit`], then close the connection.
    pub fn close(&mut self) {
        let stream_id = match self.state {
            State::Ended => return,
            State::Starting { stream_id } | State::Playing { stream_id } | State::Publishing { stream_id } => {
                Some(stream_id)
            }
            _ => None,
        };
        if let Some(id) = stream_id {
            let (w, out) = (&self.writer, &mut self.out);
            if self.config.mode == ClientMode::Publish {
                let name = Amf0Value::string(self.config.stream.clone());
                msg::write_command(w, out, 0, "FCUnpublish", 6.0, &[Amf0Value::Null, name]);
            }
            msg::write_command(w, out, 0, "deleteStream", 7.0, &[Amf0Value::Null, Amf0Value::Number(f64::from(id))]);
        }
        self.state = State::Ended;
        self.push(ClientEvent::Closed { reason: "closed by us".into() });
    }

    fn start_command(&self) -> &'static str {
        match self.config.mode {
            ClientMode::Play => "play",
            ClientMode::Publish => "publish",
        }
    }

    fn push(&mut self, e: ClientEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.events.push_back(e);
    }

    fn fail(&mut self, e: ClientError) {
        if self.state != State::Ended {
            self.state = State::Ended;
            self.push(ClientEvent::Error(e));
        }
    }

    fn end(&mut self, reason: String) {
        if self.state != State::Ended {
            self.state = State::Ended;
            self.push(ClientEvent::Closed { reason });
        }
    }

    fn process(&mut self) -> Result<(), ClientError> {
        loop {
            match self.state {
                State::Ended => {
                    self.buf.clear();
                    return Ok(());
                }
                State::Handshake => {
                    if let Some(&v) = self.buf.first() {
                        if v != handshake::VERSION {
                            return Err(HandshakeError::Version(v).into());
                        }
                    }
                    if self.buf.len() < 1 + 2 * PACKET_SIZE {
                        return Ok(());
                    }
                    let s = self.buf.split_to(1 + 2 * PACKET_SIZE);
                    let c2 = handshake::client_verify(&s, self.client_digest.as_ref())?;
                    self.out.extend_from_slice(&c2);
                    self.inbound.received = self.buf.len() as u64;
                    self.send_connect();
                    self.state = State::Connecting;
                }
                _ => {
                    let Some(m) = self.inbound.next(&mut self.buf, &self.writer, &mut self.out)? else {
                        return Ok(());
                    };
                    self.handle_message(m)?;
                }
            }
        }
    }

    fn send_connect(&mut self) {
        let (w, out) = (&mut self.writer, &mut self.out);
        msg::write_control_u32(w, out, msg::SET_CHUNK_SIZE, self.config.chunk_size);
        w.set_chunk_size(self.config.chunk_size);
        let c = &self.config;
        let mut props = vec![
            ("app", Amf0Value::string(c.app.clone())),
            ("type", Amf0Value::string("nonprivate")),
            ("flashVer", Amf0Value::string(c.flash_ver.clone())),
            ("tcUrl", Amf0Value::string(c.tc_url.clone())),
        ];
        if c.mode == ClientMode::Play {
            props.extend([
                ("fpad", Amf0Value::Boolean(false)),
                ("capabilities", Amf0Value::Number(15.0)),
                ("audioCodecs", Amf0Value::Number(4071.0)),
                ("videoCodecs", Amf0Value::Number(252.0)),
                ("videoFunction", Amf0Value::Number(1.0)),
            ]);
        }
        if !c.fourcc_list.is_empty() {
            let list = c.fourcc_list.iter().map(|f| Amf0Value::string(f.clone())).collect();
            props.push(("fourCcList", Amf0Value::StrictArray(list)));
        }
        msg::write_command(w, out, 0, "connect", TID_CONNECT, &[Amf0Value::object(props)]);
    }

    fn our_stream(&self) -> Option<u32> {
        match self.state {
            State::Starting { stream_id } | State::Playing { stream_id } | State::Publishing { stream_id } => {
                Some(stream_id)
            }
            _ => None,
        }
    }

    fn handle_message(&mut self, m: Message) -> Result<(), ClientError> {
        let be32 = |p: &[u8]| p.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match m.type_id {
            msg::ACKNOWLEDGEMENT => {}
            msg::SET_PEER_BANDWIDTH => {
                // Answered once with our window, as Flash Player and librtmp do.
                be32(&m.payload).ok_or_else(|| short("Set Peer Bandwidth"))?;
                if !self.answered_bandwidth {
                    self.answered_bandwidth = true;
                    let window = self.config.window_ack_size;
                    msg::write_control_u32(&self.writer, &mut self.out, msg::WINDOW_ACK_SIZE, window);
                }
            }
            msg::USER_CONTROL => self.user_control(&m.payload)?,
            msg::COMMAND_AMF0 => self.handle_command(m.stream_id, &m.payload)?,
            msg::COMMAND_AMF3 => self.handle_command(m.stream_id, m.payload.get(1..).unwrap_or_default())?,
            msg::AUDIO | msg::VIDEO | msg::DATA_AMF0 => self.media(m.stream_id, m.type_id, m.timestamp, m.payload),
            msg::DATA_AMF3 => {
                let body = msg::amf3_data_as_amf0(&m.payload)?;
                self.media(m.stream_id, msg::DATA_AMF0, m.timestamp, body)
            }
            msg::AGGREGATE => {
                for (type_id, timestamp, body) in msg::split_aggregate(&m.payload, m.timestamp)
                    .map_err(|what| ClientError::Protocol(format!("truncated {what}")))?
                {
                    self.media(m.stream_id, type_id, timestamp, body);
                }
            }
            _ => {} // Shared objects and unknown types are ignored.
        }
        Ok(())
    }

    fn user_control(&mut self, p: &[u8]) -> Result<(), ClientError> {
        let (Some(e), Some(v)) = (p.get(..2), p.get(2..6)) else {
            // Some servers send short events (Stream Begin without a value); nothing to answer.
            return Ok(());
        };
        let event = u16::from_be_bytes([e[0], e[1]]);
        let value = u32::from_be_bytes([v[0], v[1], v[2], v[3]]);
        match event {
            msg::PING_REQUEST => msg::write_user_control(&self.writer, &mut self.out, msg::PING_RESPONSE, value),
            msg::STREAM_EOF if self.is_playing() && self.our_stream() == Some(value) => {
                self.end("the server ended the stream (Stream EOF)".into())
            }
            _ => {} // Stream Begin, Stream Dry, Set Buffer Length (from a server), Ping Response.
        }
        Ok(())
    }

    fn media(&mut self, stream_id: u32, type_id: u8, timestamp: u32, payload: Bytes) {
        let Some(ours) = self.our_stream() else { return };
        // ffmpeg's `-listen` server sends its media on stream 0: taken as ours too.
        if (stream_id != ours && stream_id != 0) || self.config.mode != ClientMode::Play {
            return;
        }
        let kind = match type_id {
            msg::AUDIO => MediaKind::Audio,
            msg::VIDEO => MediaKind::Video,
            _ => MediaKind::Data,
        };
        let payload = if kind == MediaKind::Data {
            let payload = strip_set_data_frame(payload);
            // Only metadata is media; |RtmpSampleAccess, onTextData, onCuePoint are not.
            if !payload.starts_with(b"\x02\x00\x0aonMetaData") {
                return;
            }
            payload
        } else {
            payload
        };
        self.push(ClientEvent::Media { kind, timestamp, payload });
    }

    fn handle_command(&mut self, stream_id: u32, body: &[u8]) -> Result<(), ClientError> {
        let mut r = Amf0Reader::new(body);
        let name = match r.next_value()? {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(ClientError::Protocol("a command without a name".into())),
        };
        let transaction = r.next_value()?.and_then(|v| v.as_number()).unwrap_or(0.0);
        let _command_object = r.next_value()?;
        let args = r.read_all()?;
        match name.as_str() {
            "_result" => self.on_result(transaction, &args)?,
            "_error" => self.on_error(transaction, &args)?,
            "onStatus" => {
                let info = args.first().cloned().unwrap_or(Amf0Value::Null);
                self.on_status(stream_id, &info)?;
            }
            // onBWDone, onFCPublish, onFCUnpublish, _checkbw, close: nothing to do.
            "close" if !matches!(self.state, State::Playing { .. } | State::Publishing { .. }) => {
                return Err(ClientError::Closed("(close command) during the setup".into()));
            }
            "close" => self.end("the server sent close".into()),
            _ => {}
        }
        Ok(())
    }

    fn on_result(&mut self, transaction: f64, args: &[Amf0Value]) -> Result<(), ClientError> {
        match (self.state, transaction) {
            (State::Connecting, TID_CONNECT) => {
                // `_result` with an info object; a code other than success is a refusal.
                let code = args.first().and_then(|i| i.get("code")).and_then(Amf0Value::as_str).unwrap_or("");
                if !code.is_empty() && code != "NetConnection.Connect.Success" {
                    return Err(rejected("connect", args.first()));
                }
                self.push(ClientEvent::Connected { server: None });
                let (w, out) = (&self.writer, &mut self.out);
                if self.config.mode == ClientMode::Publish {
                    let name = Amf0Value::string(self.config.stream.clone());
                    msg::write_command(w, out, 0, "releaseStream", TID_RELEASE, &[Amf0Value::Null, name.clone()]);
                    msg::write_command(w, out, 0, "FCPublish", TID_FCPUBLISH, &[Amf0Value::Null, name]);
                } else {
                    msg::write_control_u32(w, out, msg::WINDOW_ACK_SIZE, self.config.window_ack_size);
                }
                msg::write_command(w, out, 0, "createStream", TID_CREATE, &[Amf0Value::Null]);
                self.state = State::Creating;
            }
            (State::Creating, TID_CREATE) => {
                let id = args
                    .first()
                    .and_then(Amf0Value::as_number)
                    .filter(|n| n.is_finite() && *n >= 1.0 && *n <= f64::from(u32::MAX))
                    .ok_or_else(|| ClientError::Protocol("createStream answered without a stream id".into()))?
                    as u32;
                let name = Amf0Value::string(self.config.stream.clone());
                let (w, out) = (&self.writer, &mut self.out);
                match self.config.mode {
                    ClientMode::Play => {
                        let start = Amf0Value::Number(PLAY_START);
                        msg::write_command(w, out, id, "play", TID_START, &[Amf0Value::Null, name, start]);
                        let mut b = [0u8; 8];
                        b[..4].copy_from_slice(&id.to_be_bytes());
                        b[4..].copy_from_slice(&BUFFER_LENGTH_MS.to_be_bytes());
                        let mut body = BytesMut::with_capacity(10);
                        body.put_u16(SET_BUFFER_LENGTH);
                        body.put_slice(&b);
                        w.write(out, msg::CSID_CONTROL, 0, msg::USER_CONTROL, 0, &body);
                    }
                    ClientMode::Publish => {
                        let kind = Amf0Value::string("live");
                        msg::write_command(w, out, id, "publish", TID_START, &[Amf0Value::Null, name, kind]);
                    }
                }
                self.state = State::Starting { stream_id: id };
            }
            _ => {} // releaseStream, FCPublish, a late answer: nothing to do.
        }
        Ok(())
    }

    fn on_error(&mut self, transaction: f64, args: &[Amf0Value]) -> Result<(), ClientError> {
        match (self.state, transaction) {
            (State::Connecting, TID_CONNECT) => Err(rejected("connect", args.first())),
            (State::Creating, TID_CREATE) => Err(rejected("createStream", args.first())),
            (State::Starting { .. }, TID_START) => Err(rejected(self.start_command(), args.first())),
            // releaseStream / FCPublish of a name the server does not know: many servers answer _error.
            _ => Ok(()),
        }
    }

    fn on_status(&mut self, stream_id: u32, info: &Amf0Value) -> Result<(), ClientError> {
        let s = |k: &str| info.get(k).and_then(Amf0Value::as_str).unwrap_or("").to_string();
        let (level, code, description) = (s("level"), s("code"), s("description"));
        let step = self.start_command();
        match self.state {
            State::Starting { stream_id: ours }
            | State::Playing { stream_id: ours }
            | State::Publishing { stream_id: ours }
                if stream_id == ours || stream_id == 0 =>
            {
                if level == "error" || code.ends_with(".Failed") || code.ends_with("StreamNotFound") {
                    if matches!(self.state, State::Starting { .. }) {
                        return Err(rejected(step, Some(info)));
                    }
                    return Err(ClientError::Rejected {
                        step: step.to_string(),
                        kind: RejectKind::classify(&code, &description),
                        code,
                        description,
                    });
                }
                match code.as_str() {
                    "NetStream.Play.Start" if self.config.mode == ClientMode::Play => {
                        if let State::Starting { stream_id } = self.state {
                            self.state = State::Playing { stream_id };
                            self.push(ClientEvent::Playing);
                        }
                    }
                    "NetStream.Publish.Start" if self.config.mode == ClientMode::Publish => {
                        if let State::Starting { stream_id } = self.state {
                            self.state = State::Publishing { stream_id };
                            self.push(ClientEvent::Publishing);
                        }
                    }
                    "NetStream.Play.Stop" | "NetStream.Play.UnpublishNotify" | "NetStream.Play.Complete"
                        if self.config.mode == ClientMode::Play =>
                    {
                        self.end(format!("the server ended the stream ({code})"));
                    }
                    "NetStream.Unpublish.Success" | "NetStream.Publish.Stop" | "NetStream.Publish.Idle"
                        if self.is_publishing() =>
                    {
                        self.end(format!("the server ended the publish ({code})"));
                    }
                    _ => self.push(ClientEvent::Status { code, description }),
                }
            }
            _ if level == "error" => {
                let step = match self.state {
                    State::Connecting | State::Handshake => "connect",
                    State::Creating => "createStream",
                    _ => step,
                };
                return Err(rejected(step, Some(info)));
            }
            _ => {}
        }
        Ok(())
    }
}

/// A refusal from an info object (`_error` argument or error `onStatus`).
fn rejected(step: &str, info: Option<&Amf0Value>) -> ClientError {
    let s = |k: &str| info.and_then(|i| i.get(k)).and_then(Amf0Value::as_str).map(printable).unwrap_or_default();
    let (code, description) = (s("code"), s("description"));
    let code = if code.is_empty() { "(no code)".to_string() } else { code };
    ClientError::Rejected { step: step.to_string(), kind: RejectKind::classify(&code, &description), code, description }
}

fn short(what: &str) -> ClientError {
    ClientError::Protocol(format!("truncated {what}"))
}

/// A server string fit for an error message (bounded, no control characters).
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(200).collect()
}

/// `@setDataFrame`, `onMetaData`, {...} → `onMetaData`, {...} (what an FLV script tag holds).
fn strip_set_data_frame(payload: Bytes) -> Bytes {
    const PREFIX: &[u8] = b"\x02\x00\x0d@setDataFrame";
    if payload.starts_with(PREFIX) {
        payload.slice(PREFIX.len()..)
    } else {
        payload
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_split_like_ffmpeg() {
        let u = RtmpUrl::parse("rtmp://h/live/cam").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.app.as_str(), u.stream.as_str()),
            (false, "h", 1935, "live", "cam")
        );
        assert_eq!(u.tc_url(), "rtmp://h:1935/live");
        let u = RtmpUrl::parse("rtmps://user:pw@[::1]:8443/app/inst/cam?user=a&pass=b").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", 8443));
        assert_eq!((u.app.as_str(), u.stream.as_str()), ("app/inst", "cam?user=a&pass=b"));
        assert_eq!(u.tc_url(), "rtmps://[::1]:8443/app/inst");
        assert_eq!(RtmpUrl::parse("rtmps://h/a/b").unwrap().port, 443);
        assert!(RtmpUrl::parse("rtmp://h/live").unwrap_err().contains("no stream name"));
        assert!(RtmpUrl::parse("rtmp://h").is_err());
        assert!(RtmpUrl::parse("rtmp://h:x/a/b").is_err());
        assert!(RtmpUrl::parse("http://h/a/b").is_err());
    }

    #[test]
    fn refusals_are_classified() {
        use RejectKind::*;
        assert_eq!(RejectKind::classify("NetStream.Play.StreamNotFound", "stream not found: x"), NotFound);
        assert_eq!(RejectKind::classify("NetStream.Play.StreamNotFound", "not authorized"), Auth);
        assert_eq!(RejectKind::classify("NetConnection.Connect.Rejected", ""), Auth);
        assert_eq!(RejectKind::classify("NetStream.Publish.BadName", "already publishing"), BadName);
        assert_eq!(RejectKind::classify("NetStream.Publish.Denied", ""), Auth);
        assert_eq!(RejectKind::classify("NetStream.Play.Failed", "boom"), Other);
    }
}
