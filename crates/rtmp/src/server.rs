//! The RTMP server session as a sans-IO state machine: the handshake, then `connect`, `createStream` and
//! either `publish` (the client sends audio, video and data messages) or `play` (we send them).
//!
//! The driver owns the socket and the clock. It feeds what it reads to
//! [`RtmpServerSession::handle_input`], tells [`RtmpServerSession::handle_eof`] when the peer closed,
//! wakes the machine at [`RtmpServerSession::poll_timeout`] with [`RtmpServerSession::handle_timeout`],
//! and after each call writes every [`RtmpServerSession::poll_transmit`] and acts on every
//! [`RtmpServerSession::poll_event`]. [`ServerEvent::Publish`] and [`ServerEvent::Play`] wait for the
//! driver's decision: [`RtmpServerSession::accept_publish`], [`RtmpServerSession::accept_play`] or
//! [`RtmpServerSession::reject`]. Media to a player goes in with [`RtmpServerSession::send_media`].
//!
//! Commands come as AMF0 (type 20) or, from clients with `objectEncoding: 3`, as type 17 (a format
//! byte, then AMF0 values that switch to AMF3 with the `avmplus-object` marker); data messages as type 18
//! or 15, passed on re-encoded as AMF0. `_result` to `connect` repeats the client's `objectEncoding`.
//! The handshake and `connect` must be done within [`ServerConfig::handshake_timeout`].
//!
//! ```text
//!  C0C1 ─► C2 ─► connect ─► Connected ─ createStream ─┬─ publish ─► (accept_publish) ─► Publishing ─┐
//!   (S0S1S2)      (_result)                           └─ play ────► (accept_play) ───► Playing ────┤
//!                                                       reject / error / deleteStream / EOF ─► Closed
//! ```

use crate::amf0::{Amf0Error, Amf0Reader, Amf0Value};
use crate::chunk::{ChunkError, ChunkWriter, Inbound, Message, MAX_MESSAGE_LEN};
use crate::handshake::{self, Filler, HandshakeError, PACKET_SIZE};
use crate::message::{self as msg, status};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Streams one connection may create.
const MAX_STREAMS: u32 = 16;
/// Events queued before the driver polls them (a burst of aggregate sub-messages fits).
const MAX_EVENTS: usize = 4096;

/// What the driver chooses for a session.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Our outgoing chunk size (sent in Set Chunk Size after `connect`).
    pub chunk_size: u32,
    /// The window we ask the peer to acknowledge, and announce as peer bandwidth.
    pub window_ack_size: u32,
    /// Nothing received for this long (before playing starts, or while publishing) ends the session.
    pub idle_timeout: Duration,
    /// The handshake and `connect` must be done this long after the session starts, however slowly the
    /// bytes trickle in (MediaMTX's `readTimeout`, 10 s).
    pub handshake_timeout: Duration,
    /// Queued output beyond which [`RtmpServerSession::send_media`] refuses (the driver drains
    /// [`RtmpServerSession::poll_transmit`] as the socket takes it).
    pub max_pending_output: usize,
    /// Seed of the handshake filler bytes (randomness comes from outside).
    pub seed: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            chunk_size: 4096,
            window_ack_size: 2_500_000,
            idle_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            max_pending_output: 8 * 1024 * 1024,
            seed: 0x5eed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// An AMF0 data message such as `onMetaData` (a FLV script tag body; `@setDataFrame` is removed).
    Data,
}

impl MediaKind {
    /// The RTMP message type id (also the FLV tag type).
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => msg::AUDIO,
            MediaKind::Video => msg::VIDEO,
            MediaKind::Data => msg::DATA_AMF0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    #[error(transparent)]
    Chunk(#[from] ChunkError),
    /// A command or data message whose AMF0 (or AMF3 inside it) does not decode.
    #[error("RTMP message: {0}")]
    Amf(#[from] Amf0Error),
    #[error("RTMP: {0}")]
    Protocol(String),
    #[error("RTMP: nothing received for {0:?}")]
    Timeout(Duration),
    #[error("RTMP: handshake and connect not done within {0:?}")]
    HandshakeTimeout(Duration),
}

/// What the driver acts on.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    /// The client connected to application `app` (the path part before the stream name). Accepted at
    /// once; a later [`RtmpServerSession::reject`] still ends the session.
    Connect { app: String, tc_url: Option<String> },
    /// The client wants to publish `stream_key` (the raw name, query included): call
    /// [`RtmpServerSession::accept_publish`] or [`RtmpServerSession::reject`].
    Publish { stream_key: String },
    /// The client wants to play `stream_key`: call [`RtmpServerSession::accept_play`] or reject.
    Play { stream_key: String },
    /// A message of the accepted publish, its body as RTMP (and an FLV tag) carries it.
    Media { kind: MediaKind, timestamp: u32, payload: Bytes },
    /// The client ended the session (deleteStream, closeStream or EOF).
    Closed,
    /// The session failed; nothing follows.
    Error(ServerError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    HandshakeC0C1,
    HandshakeC2,
    /// Waiting for `connect`.
    Connect,
    Connected,
    PublishPending {
        stream_id: u32,
    },
    Publishing {
        stream_id: u32,
    },
    PlayPending {
        stream_id: u32,
    },
    Playing {
        stream_id: u32,
    },
    Ended,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("RTMP: the session is not playing")]
    NotPlaying,
    #[error("RTMP: the output queue is full")]
    Full,
}

/// One RTMP server session on one connection (see the module docs).
#[derive(Debug)]
pub struct RtmpServerSession {
    config: ServerConfig,
    state: State,
    buf: BytesMut,
    out: BytesMut,
    events: VecDeque<ServerEvent>,
    inbound: Inbound,
    writer: ChunkWriter,
    filler: Filler,
    last_input: Instant,
    /// When the session started (the handshake deadline counts from here).
    started: Instant,
    next_stream_id: u32,
    app: String,
    /// The client's Enhanced RTMP codecs (`fourCcList`, the keys of `videoFourCcInfoMap` /
    /// `audioFourCcInfoMap`), when its `connect` named any.
    client_fourccs: Option<Vec<String>>,
    dropped_events: u64,
}

/// The Enhanced RTMP FourCCs we take in and pass on, as `_result` advertises them.
pub const ENHANCED_FOURCCS: [&str; 6] = ["avc1", "hvc1", "av01", "vp09", "Opus", "mp4a"];
/// E-RTMP FourCcInfoMask: CanDecode (we take it in) | CanForward (we pass it on).
const FOURCC_CAN_DECODE_FORWARD: f64 = 5.0;
/// E-RTMP capsEx: Multitrack (2) | ModEx (4), both understood on publish.
const CAPS_EX: f64 = 6.0;

/// The FourCCs a `connect` command object names (Enhanced RTMP v1 `fourCcList`, v2 info maps), bounded.
fn connect_fourccs(obj: &Amf0Value) -> Option<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut named = false;
    if let Some(Amf0Value::StrictArray(items)) = obj.get("fourCcList") {
        named = true;
        out.extend(items.iter().filter_map(Amf0Value::as_str).map(str::to_owned));
    }
    for key in ["videoFourCcInfoMap", "audioFourCcInfoMap"] {
        if let Some(Amf0Value::Object(p) | Amf0Value::EcmaArray(p)) = obj.get(key) {
            named = true;
            out.extend(p.iter().map(|(k, _)| k.clone()));
        }
    }
    out.retain(|f| f.len() <= 4);
    out.truncate(64);
    named.then_some(out)
}

impl RtmpServerSession {
    pub fn new(config: ServerConfig, now: Instant) -> Self {
        let filler = Filler::new(config.seed);
        RtmpServerSession {
            config,
            state: State::HandshakeC0C1,
            buf: BytesMut::new(),
            out: BytesMut::new(),
            events: VecDeque::new(),
            inbound: Inbound::default(),
            writer: ChunkWriter::new(),
            filler,
            last_input: now,
            started: now,
            next_stream_id: 1,
            app: String::new(),
            client_fourccs: None,
            dropped_events: 0,
        }
    }

    /// The application from `connect` (empty before).
    pub fn app(&self) -> &str {
        &self.app
    }

    /// The Enhanced RTMP FourCCs the client's `connect` named (`None`: it named none, a legacy client or
    /// one, like ffmpeg's player, that reads enhanced tags without saying so).
    pub fn client_fourccs(&self) -> Option<&[String]> {
        self.client_fourccs.as_deref()
    }

    /// Whether the client may be sent tags of `fourcc`: it named no list, or its list has the FourCC
    /// or the wildcard `*`.
    pub fn client_accepts(&self, fourcc: &str) -> bool {
        self.client_fourccs.as_ref().is_none_or(|l| l.iter().any(|f| f == fourcc || f == "*"))
    }

    /// Whether the session is over (after `Closed` or `Error`).
    pub fn is_ended(&self) -> bool {
        self.state == State::Ended
    }

    pub fn is_publishing(&self) -> bool {
        matches!(self.state, State::Publishing { .. })
    }

    pub fn is_playing(&self) -> bool {
        matches!(self.state, State::Playing { .. })
    }

    /// Bytes waiting in the output queue.
    pub fn pending_output(&self) -> usize {
        self.out.len()
    }

    /// Events lost because the driver did not poll (see `MAX_EVENTS`).
    pub fn dropped_events(&self) -> u64 {
        self.dropped_events
    }

    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.out.is_empty()).then(|| self.out.split().freeze())
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        self.events.pop_front()
    }

    /// When to call [`Self::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        let idle = self.last_input + self.config.idle_timeout;
        match self.state {
            State::Ended | State::Playing { .. } | State::PublishPending { .. } | State::PlayPending { .. } => None,
            State::HandshakeC0C1 | State::HandshakeC2 | State::Connect => Some(idle.min(self.handshake_deadline())),
            _ => Some(idle),
        }
    }

    fn handshake_deadline(&self) -> Instant {
        self.started + self.config.handshake_timeout
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(t) = self.poll_timeout() {
            if now >= t {
                let in_handshake = matches!(self.state, State::HandshakeC0C1 | State::HandshakeC2 | State::Connect);
                if in_handshake && now >= self.handshake_deadline() {
                    self.fail(ServerError::HandshakeTimeout(self.config.handshake_timeout));
                } else {
                    self.fail(ServerError::Timeout(self.config.idle_timeout));
                }
            }
        }
    }

    /// The peer closed the connection. Closing in the middle of the handshake or of a chunk or message
    /// is an error naming it (a truncated stream), otherwise the session is [`ServerEvent::Closed`].
    pub fn handle_eof(&mut self) {
        let unread = self.buf.len() + self.inbound.reader.partial_bytes();
        let waiting = matches!(self.state, State::PublishPending { .. } | State::PlayPending { .. });
        if self.state != State::Ended && unread > 0 && !waiting {
            let what = match self.state {
                State::HandshakeC0C1 | State::HandshakeC2 => "the handshake",
                _ => "a chunk or message",
            };
            self.fail(ServerError::Protocol(format!(
                "the connection closed in the middle of {what} ({unread} bytes unread)"
            )));
            return;
        }
        if self.state != State::Ended {
            self.state = State::Ended;
            self.push(ServerEvent::Closed);
        }
    }

    /// Bytes read from the connection.
    pub fn handle_input(&mut self, now: Instant, data: &[u8]) {
        if self.state == State::Ended || data.is_empty() {
            return;
        }
        self.last_input = now;
        if !matches!(self.state, State::HandshakeC0C1 | State::HandshakeC2) {
            self.inbound.received += data.len() as u64;
        }
        self.buf.extend_from_slice(data);
        if let Err(e) = self.process() {
            self.fail(e);
        }
    }

    /// Accepts the pending publish: `NetStream.Publish.Start`; media events follow.
    pub fn accept_publish(&mut self) {
        if let State::PublishPending { stream_id } = self.state {
            self.state = State::Publishing { stream_id };
            self.on_status(stream_id, "status", "NetStream.Publish.Start", "Start publishing");
            // Media sent before our answer may be buffered: go on reading.
            if let Err(e) = self.process() {
                self.fail(e);
            }
        }
    }

    /// Accepts the pending play: Stream Begin and `NetStream.Play.Start`; then call [`Self::send_media`].
    pub fn accept_play(&mut self) {
        if let State::PlayPending { stream_id } = self.state {
            self.state = State::Playing { stream_id };
            msg::write_user_control(&self.writer, &mut self.out, msg::STREAM_BEGIN, stream_id);
            self.on_status(stream_id, "status", "NetStream.Play.Reset", "Playing and resetting");
            self.on_status(stream_id, "status", "NetStream.Play.Start", "Started playing");
            msg::write_data(
                &self.writer,
                &mut self.out,
                stream_id,
                &[Amf0Value::string("|RtmpSampleAccess"), Amf0Value::Boolean(true), Amf0Value::Boolean(true)],
            );
        }
    }

    /// Refuses the pending publish or play (or ends the session in any other state): an error status with
    /// `reason` goes out, then the session ends (flush [`Self::poll_transmit`], then close).
    pub fn reject(&mut self, reason: &str) {
        match self.state {
            State::PublishPending { stream_id } | State::Publishing { stream_id } => {
                self.on_status(stream_id, "error", "NetStream.Publish.BadName", reason)
            }
            State::PlayPending { stream_id } | State::Playing { stream_id } => {
                self.on_status(stream_id, "error", "NetStream.Play.StreamNotFound", reason)
            }
            State::Ended => return,
            _ => {}
        }
        self.state = State::Ended;
    }

    /// Sends one audio, video or data message to the player (its body as in an FLV tag).
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: &[u8]) -> Result<(), SendError> {
        let State::Playing { stream_id } = self.state else { return Err(SendError::NotPlaying) };
        if self.out.len() > self.config.max_pending_output {
            return Err(SendError::Full);
        }
        let csid = match kind {
            MediaKind::Audio => msg::CSID_AUDIO,
            MediaKind::Video => msg::CSID_VIDEO,
            MediaKind::Data => msg::CSID_DATA,
        };
        self.writer.write(&mut self.out, csid, timestamp, kind.type_id(), stream_id, payload);
        Ok(())
    }

    /// Ends a playing session cleanly (Stream EOF); the driver flushes and closes.
    pub fn close(&mut self) {
        if let State::Playing { stream_id } = self.state {
            msg::write_user_control(&self.writer, &mut self.out, msg::STREAM_EOF, stream_id);
        }
        self.state = State::Ended;
    }

    fn push(&mut self, e: ServerEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.dropped_events += 1;
            return;
        }
        self.events.push_back(e);
    }

    fn fail(&mut self, e: ServerError) {
        if self.state != State::Ended {
            self.state = State::Ended;
            self.push(ServerEvent::Error(e));
        }
    }

    fn on_status(&mut self, stream_id: u32, level: &str, code: &str, description: &str) {
        let info = status(level, code, description);
        msg::write_command(&self.writer, &mut self.out, stream_id, "onStatus", 0.0, &[Amf0Value::Null, info]);
    }

    fn process(&mut self) -> Result<(), ServerError> {
        loop {
            match self.state {
                State::Ended => {
                    self.buf.clear();
                    return Ok(());
                }
                State::HandshakeC0C1 => {
                    if let Some(&v) = self.buf.first() {
                        if v != handshake::VERSION {
                            return Err(HandshakeError::Version(v).into());
                        }
                    }
                    if self.buf.len() < 1 + PACKET_SIZE {
                        return Ok(());
                    }
                    let c0c1 = self.buf.split_to(1 + PACKET_SIZE);
                    let s = handshake::server_response(&c0c1, 0, &mut self.filler)?;
                    self.out.extend_from_slice(&s);
                    self.state = State::HandshakeC2;
                }
                State::HandshakeC2 => {
                    if self.buf.len() < PACKET_SIZE {
                        return Ok(());
                    }
                    // C2 echoes S1; clients differ in what they put there, so it is not checked.
                    let _ = self.buf.split_to(PACKET_SIZE);
                    self.inbound.received = self.buf.len() as u64;
                    self.state = State::Connect;
                }
                State::PublishPending { .. } | State::PlayPending { .. } => {
                    // Waiting for the driver's answer: what arrives meanwhile is kept, bounded.
                    if self.buf.len() > MAX_MESSAGE_LEN as usize + 64 {
                        return Err(ChunkError::TooMuchBuffered.into());
                    }
                    return Ok(());
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

    fn handle_message(&mut self, m: Message) -> Result<(), ServerError> {
        let be32 = |p: &[u8]| p.get(..4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
        match m.type_id {
            msg::ACKNOWLEDGEMENT | msg::SET_PEER_BANDWIDTH => {}
            msg::USER_CONTROL
                if m.payload.len() >= 6 && u16::from_be_bytes([m.payload[0], m.payload[1]]) == msg::PING_REQUEST =>
            {
                let v = be32(&m.payload[2..]).unwrap_or(0);
                msg::write_user_control(&self.writer, &mut self.out, msg::PING_RESPONSE, v);
            }
            msg::COMMAND_AMF0 => self.handle_command(m.stream_id, &m.payload)?,
            msg::COMMAND_AMF3 => self.handle_command(m.stream_id, m.payload.get(1..).unwrap_or_default())?,
            msg::AUDIO | msg::VIDEO => self.media(m.stream_id, m.type_id, m.timestamp, m.payload),
            msg::DATA_AMF0 => self.media(m.stream_id, m.type_id, m.timestamp, m.payload),
            msg::DATA_AMF3 => {
                let body = msg::amf3_data_as_amf0(&m.payload)?;
                self.media(m.stream_id, msg::DATA_AMF0, m.timestamp, body)
            }
            msg::AGGREGATE => self.aggregate(m)?,
            _ => {} // Shared objects and unknown types are ignored.
        }
        Ok(())
    }

    fn media(&mut self, stream_id: u32, type_id: u8, timestamp: u32, payload: Bytes) {
        let State::Publishing { stream_id: ours } = self.state else { return };
        if stream_id != ours {
            return;
        }
        let kind = match type_id {
            msg::AUDIO => MediaKind::Audio,
            msg::VIDEO => MediaKind::Video,
            _ => MediaKind::Data,
        };
        let payload = if kind == MediaKind::Data { strip_set_data_frame(payload) } else { payload };
        self.push(ServerEvent::Media { kind, timestamp, payload });
    }

    /// An aggregate message: FLV tags (header, body, previous tag size) whose times are relative to the
    /// first tag and placed at the message's time.
    fn aggregate(&mut self, m: Message) -> Result<(), ServerError> {
        for (type_id, timestamp, body) in msg::split_aggregate(&m.payload, m.timestamp).map_err(short)? {
            self.media(m.stream_id, type_id, timestamp, body);
        }
        Ok(())
    }

    fn handle_command(&mut self, stream_id: u32, body: &[u8]) -> Result<(), ServerError> {
        let mut r = Amf0Reader::new(body);
        let name = match r.next_value()? {
            Some(Amf0Value::String(s)) => s,
            _ => return Err(ServerError::Protocol("a command without a name".into())),
        };
        let transaction = r.next_value()?.and_then(|v| v.as_number()).unwrap_or(0.0);
        let object = r.next_value()?;
        let args = r.read_all()?;
        let arg_str = |i: usize| args.get(i).and_then(Amf0Value::as_str).map(str::to_owned);
        match name.as_str() {
            "connect" => {
                if self.state != State::Connect {
                    return Err(ServerError::Protocol("a second connect".into()));
                }
                let obj = object.unwrap_or(Amf0Value::Null);
                let s = |k: &str| obj.get(k).and_then(Amf0Value::as_str).map(str::to_owned);
                self.app = s("app").unwrap_or_default();
                let encoding = obj.get("objectEncoding").and_then(Amf0Value::as_number).unwrap_or(0.0);
                let (w, out) = (&mut self.writer, &mut self.out);
                msg::write_control_u32(w, out, msg::WINDOW_ACK_SIZE, self.config.window_ack_size);
                msg::write_peer_bandwidth(w, out, self.config.window_ack_size, 2);
                msg::write_control_u32(w, out, msg::SET_CHUNK_SIZE, self.config.chunk_size);
                w.set_chunk_size(self.config.chunk_size);
                self.client_fourccs = connect_fourccs(&obj);
                let mut props = Amf0Value::object([
                    ("fmsVer", Amf0Value::string("FMS/3,0,1,123")),
                    ("capabilities", Amf0Value::Number(31.0)),
                ]);
                // An Enhanced RTMP client learns what we carry (only then: legacy clients get what they know).
                if let (Some(_), Amf0Value::Object(p)) = (&self.client_fourccs, &mut props) {
                    let list = ENHANCED_FOURCCS.iter().map(|f| Amf0Value::string(*f)).collect();
                    p.push(("fourCcList".into(), Amf0Value::StrictArray(list)));
                    let map = |fs: &[&str]| {
                        Amf0Value::Object(
                            fs.iter().map(|f| (f.to_string(), Amf0Value::Number(FOURCC_CAN_DECODE_FORWARD))).collect(),
                        )
                    };
                    p.push(("videoFourCcInfoMap".into(), map(&ENHANCED_FOURCCS[..4])));
                    p.push(("audioFourCcInfoMap".into(), map(&ENHANCED_FOURCCS[4..])));
                    p.push(("capsEx".into(), Amf0Value::Number(CAPS_EX)));
                }
                let mut info = status("status", "NetConnection.Connect.Success", "Connection succeeded.");
                if let Amf0Value::Object(p) = &mut info {
                    p.push(("objectEncoding".into(), Amf0Value::Number(encoding)));
                }
                msg::write_command(w, out, 0, "_result", transaction, &[props, info]);
                self.state = State::Connected;
                let app = self.app.clone();
                self.push(ServerEvent::Connect { app, tc_url: s("tcUrl") });
            }
            _ if self.state == State::Connect => {
                return Err(ServerError::Protocol(format!("{} before connect", printable(&name))));
            }
            "createStream" => {
                if self.next_stream_id > MAX_STREAMS {
                    return Err(ServerError::Protocol("too many createStream".into()));
                }
                let id = self.next_stream_id;
                self.next_stream_id += 1;
                let (w, out) = (&self.writer, &mut self.out);
                msg::write_command(
                    w,
                    out,
                    0,
                    "_result",
                    transaction,
                    &[Amf0Value::Null, Amf0Value::Number(f64::from(id))],
                );
            }
            "releaseStream" | "FCPublish" | "FCUnpublish" | "getStreamLength" | "FCSubscribe" if transaction != 0.0 => {
                let (w, out) = (&self.writer, &mut self.out);
                msg::write_command(w, out, 0, "_result", transaction, &[Amf0Value::Null, Amf0Value::Undefined]);
            }
            "publish" | "play" => {
                if self.state != State::Connected {
                    return Err(ServerError::Protocol(format!("{name} while already publishing or playing")));
                }
                if stream_id == 0 {
                    return Err(ServerError::Protocol(format!("{name} on stream 0")));
                }
                let stream_key = arg_str(0).unwrap_or_default();
                if name == "publish" {
                    self.state = State::PublishPending { stream_id };
                    self.push(ServerEvent::Publish { stream_key });
                } else {
                    self.state = State::PlayPending { stream_id };
                    self.push(ServerEvent::Play { stream_key });
                }
            }
            "deleteStream" | "closeStream" => {
                let id = if name == "deleteStream" {
                    args.first().and_then(Amf0Value::as_number).map_or(stream_id, |n| n as u32)
                } else {
                    stream_id
                };
                let active = match self.state {
                    State::Publishing { stream_id } | State::Playing { stream_id } => Some(stream_id),
                    State::PublishPending { stream_id } | State::PlayPending { stream_id } => Some(stream_id),
                    _ => None,
                };
                if active == Some(id) {
                    self.state = State::Ended;
                    self.push(ServerEvent::Closed);
                }
            }
            _ => {} // pause, receiveAudio, receiveVideo, _checkbw, unknown: nothing to do.
        }
        Ok(())
    }
}

fn short(what: &str) -> ServerError {
    ServerError::Protocol(format!("truncated {what}"))
}

/// A command name fit for an error message.
fn printable(s: &str) -> String {
    s.chars().take(40).filter(|c| !c.is_control()).collect()
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
