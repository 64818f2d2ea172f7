//! One RTSP connection: the request/response loop, and the media it plays or records.
//!
//! The connection's task reads requests and interleaved RTP and writes responses; a playing reader's
//! media is written by the source's task through the connection's [`Writer`] (see `writer.rs`), which
//! keeps responses and media in order on the socket.

use bytes::{Buf, Bytes, BytesMut};
use media::{Direction, Frame, Kind, Media, MediaFilter};
use rtsp::message::{Decoded, Method, Request};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::multicast::{Group, Multicast};
use super::udp::{Datagram, UdpPorts};
use super::writer::{Dest, MediaOut, OutTrack, Writer};
use crate::app::App;
use crate::hub::reader::DirectSink;
use crate::hub::{Delivery, Producer, PublishError, PublishGuard, PublishRequest, Reader, RtpCounters, Track};

/// Datagrams queued from the UDP receive loop to one publishing session.
const UDP_QUEUE: usize = 1024;

/// Bounds on a request from a client that has not authenticated yet (when `rtsp.username` is set):
/// enough for any real request (an ANNOUNCE's SDP is a few KiB), so that an anonymous connection holds
/// at most 24 KiB of buffered request instead of 1 MiB.
const LIMITS_BEFORE_AUTH: rtsp::message::Limits =
    rtsp::message::Limits { header_bytes: 8 * 1024, body_bytes: 16 * 1024 };

/// Per-track state of a publisher's incoming RTP.
struct InTrack {
    dest: Option<Dest>,
    depacketizer: Box<dyn rtp::depacketize::Depacketizer>,
    reorder: Option<rtp::reorder::ReorderBuffer>,
    /// Loss and jitter of what the publisher sends on this track (RFC 3550), for the API.
    reception: rtp::stats::ReceptionStats,
    track: Arc<Track>,
}

enum Mode {
    Idle,
    /// A reader; its outgoing tracks are in the writer ([`Writer::with_media`]).
    Play {
        reader: Reader,
        playing: bool,
        /// The reader's frames go straight to the writer (from PLAY on).
        attached: bool,
        base_url: String,
        /// A multicast reader: the group that sends its tracks (`multicast.rs`), and which of them
        /// were SETUP.
        group: Option<(Arc<Group>, Vec<bool>)>,
    },
    /// A publisher; `publish` is None for a private path (an exec: child publishing to its source).
    Announced {
        publish: Option<PublishGuard>,
        medias: Vec<Media>,
        inputs: Vec<Option<InTrack>>,
        producer: Arc<Producer>,
        recording: bool,
    },
}

struct Connection {
    app: Arc<App>,
    writer: Arc<Writer>,
    udp: Option<Arc<UdpPorts>>,
    multicast: Option<Arc<Multicast>>,
    peer: SocketAddr,
    /// `rtsp`, or `rtsps` over TLS: the protocol readers and publishers are listed under.
    scheme: &'static str,
    session_id: String,
    mode: Mode,
    nonce: String,
    /// A `?jwt=` token from an earlier request of this connection.
    token: Option<String>,
    authenticated: bool,
    /// The user name this connection authenticated as (the session lists' `user`; never a password).
    user: String,
    user_agent: String,
    last_activity: Instant,
    /// Since when a request (or interleaved frame) has been arriving without being complete; from the
    /// connection's start until its first one. Closed after `rtsp.request_timeout` (slowloris).
    incomplete_since: Option<Instant>,
    /// Publisher's UDP datagrams, when it SETUP with UDP.
    udp_rx: Option<mpsc::Receiver<Datagram>>,
    udp_tx: Option<mpsc::Sender<Datagram>>,
    udp_routes: Vec<SocketAddr>,
    frames_out: Vec<Frame>,
    unknown_channel_warned: bool,
    /// A reader's latest reported cumulative loss per track (`note_reported_loss`).
    reported_lost: Vec<u64>,
}

fn random_u32() -> u32 {
    rand::random()
}

/// What an RTSP method does, for the auth module.
fn rtsp_action(method: &Method) -> crate::auth::Action {
    match method {
        Method::Announce | Method::Record => crate::auth::Action::Publish,
        _ => crate::auth::Action::Read,
    }
}

/// The realm of our RTSP challenges.
const REALM: &str = "camrelay";

pub async fn serve(
    app: Arc<App>,
    udp: Option<Arc<UdpPorts>>,
    multicast: Option<Arc<Multicast>>,
    socket: TcpStream,
    peer: SocketAddr,
) {
    let (mut socket, write_half) = socket.into_split();
    let writer = Arc::new(Writer::new(write_half));
    serve_on(app, udp, multicast, &mut socket, writer, peer, "rtsp").await;
}

/// An RTSPS connection after its TLS handshake: the same session over the TLS session (`tls.rs`).
/// Media goes over the connection only (interleaved): UDP would send it in the clear.
pub async fn serve_tls(app: Arc<App>, stream: tokio_rustls::server::TlsStream<TcpStream>, peer: SocketAddr) {
    let (socket, session) = stream.into_inner();
    let tls = super::tls::TlsSession::new(session);
    let (read_half, write_half) = socket.into_split();
    let writer = Arc::new(Writer::with_tls(write_half, Some(tls.clone())));
    let kick = Arc::downgrade(&writer);
    let mut reader = super::tls::TlsReader::new(
        read_half,
        tls,
        Box::new(move || {
            if let Some(w) = kick.upgrade() {
                w.kick();
            }
        }),
    );
    serve_on(app, None, None, &mut reader, writer.clone(), peer, "rtsps").await;
    let _ = tokio::time::timeout(Duration::from_secs(1), writer.close_tls()).await;
}

async fn serve_on<R: AsyncRead + Unpin>(
    app: Arc<App>,
    udp: Option<Arc<UdpPorts>>,
    multicast: Option<Arc<Multicast>>,
    socket: &mut R,
    writer: Arc<Writer>,
    peer: SocketAddr,
    scheme: &'static str,
) {
    let span = tracing::info_span!("rtsp", peer = %peer);
    let mut conn = Connection {
        writer,
        scheme,
        // Clients that need no credentials (no RTSP user, or a local client) are in from the start.
        authenticated: !app.auth().needs_credentials(
            crate::auth::Protocol::Rtsp,
            crate::auth::Action::Read,
            crate::auth::Origin::Ip(peer.ip()),
        ),
        app,
        udp,
        multicast,
        peer,
        session_id: format!("{:08x}{:08x}", random_u32(), random_u32()),
        mode: Mode::Idle,
        nonce: format!("{:08x}{:08x}", random_u32(), random_u32()),
        token: None,
        user: String::new(),
        user_agent: String::new(),
        last_activity: Instant::now(),
        incomplete_since: Some(Instant::now()),
        udp_rx: None,
        udp_tx: None,
        udp_routes: Vec::new(),
        frames_out: Vec::new(),
        unknown_channel_warned: false,
        reported_lost: Vec::new(),
    };
    let result = tracing::Instrument::instrument(conn.run(socket), span.clone()).await;
    if let Err(e) = result {
        span.in_scope(|| tracing::debug!("connection closed: {e}"));
    }
    conn.close();
}

#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("{0}")]
    Io(#[from] std::io::Error),
    #[error("bad RTSP from client: {0}")]
    Protocol(String),
    #[error("session timed out")]
    Timeout,
    #[error("no complete request within {0:?} (rtsp.request_timeout)")]
    RequestTimeout(Duration),
    #[error("client closed the connection")]
    Closed,
    #[error("server shutting down")]
    Shutdown,
    #[error("stream ended")]
    StreamEnded,
    #[error("told to go: replaced by a new publisher (overridePublisher) or kicked over the API")]
    Replaced,
}

impl Connection {
    async fn run<R: AsyncRead + Unpin>(&mut self, socket: &mut R) -> Result<(), ConnError> {
        let mut rbuf = BytesMut::with_capacity(4096);
        let session_timeout = self.app.config().rtsp.session_timeout;
        let request_timeout = self.app.config().rtsp.request_timeout;
        let shutdown = self.app.shutdown.clone();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            let playing = matches!(self.mode, Mode::Play { playing: true, .. });
            let replaced = match &self.mode {
                Mode::Announced { publish: Some(guard), .. } => Some(guard.replaced()),
                Mode::Play { group: Some((group, _)), .. } => Some(group.ended.clone()),
                _ => None,
            };
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => return Err(ConnError::Shutdown),
                read = socket.read_buf(&mut rbuf) => {
                    if read? == 0 {
                        return Err(ConnError::Closed);
                    }
                    self.last_activity = Instant::now();
                    self.handle_input(&mut rbuf).await?;
                }
                // Media goes to the writer from the source's task; the queue only tells the end of the
                // stream (or hands a frame over before the writer is attached).
                delivery = recv_delivery(&mut self.mode), if playing => {
                    match delivery {
                        Some(d) => {
                            self.writer.offer(d.slot, &d.frame, Instant::now());
                            self.writer.flush().await?;
                        }
                        None => return Err(ConnError::StreamEnded),
                    }
                }
                _ = self.writer.unfinished() => self.writer.flush().await?,
                _ = publisher_replaced(replaced.as_ref()) => {
                    // A multicast reader's group ended with its stream.
                    return Err(if matches!(self.mode, Mode::Play { .. }) { ConnError::StreamEnded } else { ConnError::Replaced });
                }
                datagram = recv_datagram(&mut self.udp_rx), if self.udp_rx.is_some() => {
                    if let Some(d) = datagram {
                        self.last_activity = Instant::now();
                        self.handle_udp(d);
                    }
                }
                _ = tick.tick() => {
                    // A TCP reader or publisher proves itself alive by its connection; UDP sessions and
                    // sessions not yet playing must send something (RTCP or a keep-alive request).
                    let tcp_media = match &self.mode {
                        Mode::Play { playing: true, .. } => {
                            // Audio held for a video frame that did not come goes out now.
                            self.writer.flush().await?;
                            self.writer
                                .with_media(|m| m.out.iter().all(|o| matches!(o.dest, Some(Dest::Interleaved(..)))))
                                .unwrap_or(false)
                        }
                        Mode::Announced { inputs, recording: true, .. } => inputs.iter().flatten().all(|i| matches!(i.dest, Some(Dest::Interleaved(..)))),
                        _ => false,
                    };
                    if !tcp_media && self.last_activity.elapsed() > session_timeout {
                        return Err(ConnError::Timeout);
                    }
                    if self.incomplete_since.is_some_and(|t| t.elapsed() > request_timeout) {
                        return Err(ConnError::RequestTimeout(request_timeout));
                    }
                }
            }
        }
    }

    fn close(&mut self) {
        if let Some(udp) = &self.udp {
            for addr in &self.udp_routes {
                udp.unroute(addr);
            }
        }
        if let Mode::Announced { publish, producer, .. } = &self.mode {
            match publish {
                // Dropping the guard (below) removes the producer.
                Some(p) => tracing::info!(stream = %p.stream_name(), peer = %self.peer, "publisher disconnected"),
                None => producer.shutdown(),
            }
        }
        self.mode = Mode::Idle;
    }

    async fn handle_input(&mut self, rbuf: &mut BytesMut) -> Result<(), ConnError> {
        loop {
            let limits = if self.authenticated { rtsp::message::Limits::default() } else { LIMITS_BEFORE_AUTH };
            match rtsp::message::decode_limited(rbuf, limits) {
                Ok(None) => {
                    if rbuf.is_empty() {
                        self.incomplete_since = None;
                    } else {
                        self.incomplete_since.get_or_insert_with(Instant::now);
                    }
                    return Ok(());
                }
                Ok(Some((msg, used))) => {
                    self.incomplete_since = None;
                    match msg {
                        Decoded::Request(req) => {
                            rbuf.advance(used);
                            let response = self.handle_request(&req).await;
                            self.writer.send(&response).await?;
                            if req.method == rtsp::message::Method::Teardown {
                                return Err(ConnError::Closed);
                            }
                            self.attach_after_play();
                            continue;
                        }
                        Decoded::Interleaved { channel, payload } => {
                            // Zero-copy: the packet keeps a slice of the receive buffer (readers then
                            // share it too); the buffer grows a fresh block for what follows.
                            let message = rbuf.split_to(used).freeze();
                            let data = if payload.end <= message.len() { message.slice(payload) } else { Bytes::new() };
                            self.handle_interleaved(channel, data);
                        }
                        Decoded::Response(_) => {
                            // Clients don't answer us (we send no requests); ignore stray responses.
                            rbuf.advance(used);
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(peer = %self.peer, "rtsp: {e}; closing connection");
                    let too_large = matches!(
                        e,
                        rtsp::message::MessageError::HeadersTooLarge { .. }
                            | rtsp::message::MessageError::TooManyHeaders { .. }
                            | rtsp::message::MessageError::BodyTooLarge { .. }
                    );
                    let status = if too_large { (413, "Request Entity Too Large") } else { (400, "Bad Request") };
                    let body = format!("{e}\n");
                    let _ = self.writer.send(&response_bytes(status.0, status.1, None, &[], body.as_bytes())).await;
                    return Err(ConnError::Protocol(e.to_string()));
                }
            }
        }
    }

    /// Handles one request and returns the bytes of its response.
    async fn handle_request(&mut self, req: &Request) -> Vec<u8> {
        let Some(cseq) = req.cseq().map(str::to_string) else {
            tracing::info!(peer = %self.peer, method = ?req.method, "rtsp: request without CSeq");
            return response_bytes(400, "Bad Request", None, &[], b"missing CSeq header\n");
        };
        if let Some(ua) = req.headers.get("User-Agent") {
            self.user_agent = ua.to_string();
        }
        if !matches!(req.method, Method::Options) && !self.check_auth(req).await {
            let mut headers = Vec::new();
            // A hashed password cannot check a Digest response: offer Basic only then.
            let hashed = self.app.auth().has_hashed();
            for challenge in self.authenticator().challenge_headers(&self.nonce) {
                if self.auth_method_allowed(&challenge) && !(hashed && challenge.starts_with("Digest")) {
                    headers.push(("WWW-Authenticate", challenge));
                }
            }
            tracing::info!(peer = %self.peer, "rtsp: unauthorized {:?} {}", req.method, crate::secrets::mask_url(&req.uri));
            return response_bytes(401, "Unauthorized", Some(&cseq), &headers, b"");
        }
        let result = match req.method {
            Method::Options => Ok(Reply::ok().header(
                "Public",
                "OPTIONS, DESCRIBE, SETUP, PLAY, PAUSE, TEARDOWN, ANNOUNCE, RECORD, GET_PARAMETER, SET_PARAMETER"
                    .into(),
            )),
            Method::Describe => self.describe(req).await,
            Method::Announce => self.announce(req),
            Method::Setup => self.setup(req).await,
            Method::Play => self.play(req),
            Method::Record => self.record(),
            Method::Pause => Ok(Reply::ok()),
            Method::GetParameter | Method::SetParameter => Ok(Reply::ok()),
            Method::Teardown => Ok(Reply::ok()),
            _ => Err(Reply::error(501, "Not Implemented", format!("method {:?} is not supported", req.method))),
        };
        let reply = result.unwrap_or_else(|e| e);
        if reply.status >= 400 {
            tracing::info!(peer = %self.peer, status = reply.status, "rtsp: {:?} {}: {}", req.method, crate::secrets::mask_url(&req.uri), String::from_utf8_lossy(&reply.body).trim());
        }
        let mut headers = reply.headers;
        if !matches!(self.mode, Mode::Idle) {
            let timeout = self.app.config().rtsp.session_timeout.as_secs();
            headers.push(("Session", format!("{};timeout={timeout}", self.session_id)));
        }
        headers.push(("Server", format!("camrelay/{}", env!("CARGO_PKG_VERSION"))));
        response_bytes(reply.status, reply.reason, Some(&cseq), &headers, &reply.body)
    }

    /// The challenges of a 401 (they name only the realm and our nonce).
    fn authenticator(&self) -> rtsp::auth::Authenticator {
        rtsp::auth::Authenticator::new("", "", REALM)
    }

    async fn check_auth(&mut self, req: &Request) -> bool {
        let auth = self.app.auth();
        // With per-path permissions (MediaMTX's users) every request is checked against its path.
        if self.authenticated && !auth.per_path() {
            return true;
        }
        let target = rtsp::url::parse_request_uri(&req.uri);
        // MediaMTX's `?jwt=TOKEN` in the URL: kept for the connection's later requests, whose URLs
        // (SETUP's track URLs) may not carry it.
        if let Some(token) = crate::auth::query_token(&target.query) {
            self.token = Some(token);
        }
        let Some(value) = req.headers.get("Authorization") else {
            let presented = match &self.token {
                Some(t) => crate::auth::Presented::Token(t),
                None => crate::auth::Presented::Nothing,
            };
            let asked = crate::auth::AuthRequest {
                action: rtsp_action(&req.method),
                path: &target.path,
                protocol: crate::auth::Protocol::Rtsp,
                origin: crate::auth::Origin::Ip(self.peer.ip()),
                presented,
            };
            let details = crate::auth::Details { protocol: self.scheme, id: &self.session_id, query: &target.query };
            return auth.authorize(&asked, details).await.is_ok();
        };
        if !self.auth_method_allowed(value) {
            return false;
        }
        // The auth module decides. Basic credentials go to it as they are (it checks hashed passwords
        // too); for Digest the proof recomputes the response with a candidate user and password.
        let (method, nonce) = (req.method.as_str(), &self.nonce);
        // The configured user name that proved a Digest response, for the session lists.
        let proved = std::sync::Mutex::new(String::new());
        let proof = |user: &str, pass: &str| {
            let ok = rtsp::auth::Authenticator::new(user, pass, REALM).verify(method, value, nonce);
            if ok {
                *proved.lock().unwrap_or_else(|e| e.into_inner()) = user.to_string();
            }
            ok
        };
        let basic = crate::auth::basic_credentials(value);
        let presented = match &basic {
            Some((user, pass)) => crate::auth::Presented::Credentials { user, pass },
            None => crate::auth::Presented::Proof(&proof),
        };
        let asked = crate::auth::AuthRequest {
            action: rtsp_action(&req.method),
            path: &target.path,
            protocol: crate::auth::Protocol::Rtsp,
            origin: crate::auth::Origin::Ip(self.peer.ip()),
            presented,
        };
        // Once a connection authenticates, later requests on it (ffmpeg resends anyway) pass.
        let details = crate::auth::Details { protocol: self.scheme, id: &self.session_id, query: &target.query };
        self.authenticated = auth.authorize(&asked, details).await.is_ok();
        if self.authenticated {
            self.user = match &basic {
                Some(_) => auth.shown_user(&asked.presented),
                None => proved.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            };
        }
        self.authenticated
    }

    /// Whether a challenge or credentials (`Digest ...`, `Basic ...`) use a configured auth method.
    fn auth_method_allowed(&self, value: &str) -> bool {
        let scheme = value.split_whitespace().next().unwrap_or("").to_ascii_lowercase();
        self.app.config().rtsp.auth_methods.contains(&scheme)
    }

    fn filters_for(&self, query: &str) -> Vec<MediaFilter> {
        let mut filters = media::query::parse_query_string(query);
        if filters.is_empty() {
            filters = media::query::parse_query_string(&self.app.config().rtsp.default_query);
        }
        if filters.is_empty() {
            // go2rtc's RTSP default: the first video and the first audio, any codec.
            filters = vec![MediaFilter::any(Kind::Video), MediaFilter::any(Kind::Audio)];
        }
        filters
    }

    async fn subscribe(&mut self, uri: &str) -> Result<(), Reply> {
        let target = rtsp::url::parse_request_uri(uri);
        if target.path.is_empty() {
            return Err(Reply::error(404, "Not Found", "no stream name in the URL".into()));
        }
        let filters = self.filters_for(&target.query);
        let shared = self.app.hub.new_reader_shared(&format!("{}+tcp", self.scheme), self.peer.to_string());
        shared.set_identity(&self.user, &target.query);
        *shared.user_agent.lock().unwrap_or_else(|e| e.into_inner()) = self.user_agent.clone();
        let reader = match self.app.hub.subscribe(&target.path, &filters, shared, true).await {
            Ok(r) => r,
            Err(crate::hub::HubError::NotFound(name)) => {
                return Err(Reply::error(404, "Not Found", format!("stream not found: {name}")))
            }
            Err(e @ crate::hub::HubError::TooManyReaders { .. }) => {
                return Err(Reply::error(503, "Service Unavailable", e.to_string()))
            }
            Err(e) => return Err(Reply::error(404, "Not Found", format!("stream {}: {e}", target.path))),
        };
        let out = reader
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| OutTrack {
                dest: None,
                payload_type: payload_type_for(&t.codec, i),
                ssrc: random_u32(),
                next_seq: random_u32() as u16,
                rtptime_base: random_u32(),
                ts_offset: None,
                packets: 0,
                octets: 0,
                next_sr: None,
            })
            .collect();
        self.writer.set_media(MediaOut {
            out,
            tracks: reader.tracks.iter().map(|t| t.track.clone()).collect(),
            shared: reader.shared.clone(),
            udp: self.udp.clone(),
        });
        // Content-Base: the URL as the client sent it, without a track suffix.
        let base_url = uri.split("/trackID=").next().unwrap_or(uri).to_string();
        self.mode = Mode::Play { reader, playing: false, attached: false, base_url, group: None };
        Ok(())
    }

    /// Once PLAY is answered, the reader's frames (those queued since DESCRIBE first) go to the writer
    /// straight from the source's task.
    fn attach_after_play(&mut self) {
        let Mode::Play { reader, playing: true, attached, group, .. } = &mut self.mode else { return };
        if *attached {
            return;
        }
        *attached = true;
        if group.is_some() {
            // The group sends; this reader only learns when the stream ends or it is kicked.
            reader.attach_sink(Arc::new(super::multicast::Discard));
            return;
        }
        self.writer.start_playing(reader.queue.max_capacity());
        reader.attach_sink(self.writer.clone());
    }

    fn reader_medias(&self) -> Vec<Media> {
        let Mode::Play { reader, .. } = &self.mode else { return Vec::new() };
        let payload_types = self.writer.with_media(|m| m.out.iter().map(|o| o.payload_type).collect::<Vec<_>>());
        reader
            .tracks
            .iter()
            .zip(payload_types.unwrap_or_default())
            .enumerate()
            .map(|(i, (t, payload_type))| {
                let mut codec = t.codec.clone();
                codec.payload_type = payload_type;
                let mut m = Media::new(t.track.kind, Direction::SendOnly, vec![codec]);
                m.control = format!("trackID={i}");
                m
            })
            .collect()
    }

    async fn describe(&mut self, req: &Request) -> Result<Reply, Reply> {
        if matches!(self.mode, Mode::Announced { .. }) {
            return Err(Reply::error(455, "Method Not Valid in This State", "DESCRIBE on a publishing session".into()));
        }
        // MediaMTX's `source: redirect`: the reader is sent to `sourceRedirect`.
        let target = rtsp::url::parse_request_uri(&req.uri);
        let redirect = self
            .app
            .config()
            .path_rules
            .iter()
            .find(|r| r.source == "redirect" && !r.is_pattern() && r.name == target.path)
            .map(|r| r.redirect.clone());
        if let Some(location) = redirect {
            tracing::info!(stream = %target.path, to = %crate::secrets::mask_url(&location), "rtsp: reader redirected");
            return Ok(Reply { status: 302, reason: "Found", headers: vec![("Location", location)], body: Vec::new() });
        }
        if let Err(refused) = self.subscribe(&req.uri).await {
            // MediaMTX's `fallback`: a reader of a path with nothing to read is sent elsewhere.
            let fallback = self.app.hub.path_rules().options(&target.path).fallback;
            if fallback.is_empty() || refused.status == 503 {
                return Err(refused);
            }
            let location = match fallback.strip_prefix('/') {
                Some(path) => {
                    // On this server, at the address the client used (without its credentials).
                    let authority = req.uri.split("://").nth(1).and_then(|r| r.split('/').next()).unwrap_or("");
                    let host = authority.rsplit('@').next().unwrap_or(authority);
                    format!("{}://{host}/{path}", self.scheme)
                }
                None => fallback,
            };
            tracing::info!(stream = %target.path, to = %crate::secrets::mask_url(&location), "rtsp: nothing to read, reader sent to the fallback");
            return Ok(Reply { status: 302, reason: "Found", headers: vec![("Location", location)], body: Vec::new() });
        }
        let sdp = rtsp::sdp::write(&self.reader_medias(), "camrelay", &self.peer.ip().to_string());
        let base = match &self.mode {
            Mode::Play { base_url, .. } => base_url.clone(),
            _ => req.uri.clone(),
        };
        Ok(Reply::ok()
            .header("Content-Base", format!("{}/", base.trim_end_matches('/')))
            .header("Content-Type", "application/sdp".into())
            .body(sdp.into_bytes()))
    }

    fn announce(&mut self, req: &Request) -> Result<Reply, Reply> {
        if !matches!(self.mode, Mode::Idle) {
            return Err(Reply::error(
                455,
                "Method Not Valid in This State",
                "ANNOUNCE after DESCRIBE or ANNOUNCE".into(),
            ));
        }
        let target = rtsp::url::parse_request_uri(&req.uri);
        if target.path.is_empty() {
            return Err(Reply::error(400, "Bad Request", "no stream name in the URL".into()));
        }
        let sdp =
            rtsp::sdp::parse(&req.body).map_err(|e| Reply::error(400, "Bad Request", format!("invalid SDP: {e}")))?;
        let private = target.path.starts_with(crate::hub::publish::PRIVATE_PREFIX);
        if !private {
            // An unknown or full path is refused before the SDP's medias are looked at, as before.
            self.app
                .hub
                .check_publish(&target.path, self.app.config().rtsp.allow_any_publish)
                .map_err(publish_refused)?;
        }
        let medias: Vec<Media> = sdp
            .medias
            .into_iter()
            .map(|mut m| {
                m.direction = Direction::RecvOnly;
                m
            })
            .collect();
        if medias.is_empty() {
            return Err(Reply::error(400, "Bad Request", "SDP has no media".into()));
        }
        let url = format!("rtsp://{}/{}", self.peer, target.path);
        let (publish, producer) = if private {
            let producer = Producer::pushed(
                &url,
                "rtsp+tcp",
                &self.peer.to_string(),
                medias.clone(),
                self.app.hub.settings.gop_cache_bytes,
            );
            let slot = self.app.publishers.take(&target.path);
            if slot.is_none_or(|tx| tx.send(producer.clone()).is_err()) {
                return Err(Reply::error(404, "Not Found", "private path not reserved (its source stopped?)".into()));
            }
            (None, producer)
        } else {
            // The path is reserved now; readers see the producer from RECORD on.
            let guard = self
                .app
                .hub
                .reserve_publish(PublishRequest {
                    path: target.path.clone(),
                    protocol: format!("{}+tcp", self.scheme),
                    remote_addr: self.peer.to_string(),
                    url,
                    medias: medias.clone(),
                    allow_create: self.app.config().rtsp.allow_any_publish,
                })
                .map_err(publish_refused)?;
            let producer = guard.producer().clone();
            (Some(guard), producer)
        };
        producer.set_identity(&self.user, &target.query);
        let inputs = medias.iter().map(|_| None).collect();
        tracing::info!(stream = %target.path, medias = ?medias.iter().map(|m| m.to_string()).collect::<Vec<_>>(), "publisher announced");
        self.mode = Mode::Announced { publish, medias, inputs, producer, recording: false };
        Ok(Reply::ok())
    }

    async fn setup(&mut self, req: &Request) -> Result<Reply, Reply> {
        let transport_header = req
            .headers
            .get("Transport")
            .ok_or_else(|| Reply::error(461, "Unsupported Transport", "missing Transport header".into()))?;
        let transports = rtsp::transport::parse(transport_header)
            .map_err(|e| Reply::error(461, "Unsupported Transport", format!("bad Transport header: {e}")))?;
        if matches!(self.mode, Mode::Idle) {
            // SETUP without DESCRIBE: subscribe with the URL's filters.
            self.subscribe(&req.uri).await?;
        }
        let index = match &self.mode {
            Mode::Play { reader, .. } => {
                let index = rtsp::url::parse_request_uri(&req.uri).track.unwrap_or(0) as usize;
                if index >= reader.tracks.len() {
                    return Err(Reply::error(
                        404,
                        "Not Found",
                        format!("no track {index} in this session ({} tracks)", reader.tracks.len()),
                    ));
                }
                index
            }
            Mode::Announced { medias, .. } => medias
                .iter()
                .position(|m| control_matches(&req.uri, &m.control))
                .or_else(|| (medias.len() == 1).then_some(0))
                .ok_or_else(|| {
                    Reply::error(404, "Not Found", format!("SETUP names no announced track: {}", req.uri))
                })?,
            Mode::Idle => {
                return Err(Reply::error(
                    455,
                    "Method Not Valid in This State",
                    "SETUP before DESCRIBE/ANNOUNCE".into(),
                ))
            }
        };
        // Prefer what the client listed first among what we support.
        let mut chosen = None;
        for t in &transports {
            if t.multicast == Some(true) && !t.is_tcp() {
                if self.multicast.is_some() {
                    return self.setup_multicast(index).await;
                }
                continue;
            }
            if t.is_tcp() {
                let (a, b) = t.interleaved.unwrap_or(((index * 2) as u8, (index * 2 + 1) as u8));
                chosen = Some((Dest::Interleaved(a, b), t.clone()));
                break;
            }
            if let (Some((rtp_port, rtcp_port)), Some(_)) = (t.client_port, &self.udp) {
                let ip = self.peer.ip();
                chosen = Some((Dest::Udp(SocketAddr::new(ip, rtp_port), SocketAddr::new(ip, rtcp_port)), t.clone()));
                break;
            }
        }
        let Some((dest, transport)) = chosen else {
            let multicast = transports.iter().any(|t| t.multicast == Some(true));
            let hint = match (self.udp.is_none(), self.scheme) {
                (true, "rtsps") => " (RTSPS sends media over the connection: use TCP)",
                _ if multicast => " (multicast is off on this server: rtsp.multicast_ip_range / rtspTransports)",
                (true, _) => " (UDP transport is disabled on this server)",
                _ => "",
            };
            return Err(Reply::error(
                461,
                "Unsupported Transport",
                format!("no supported transport in {transport_header:?}{hint}"),
            ));
        };
        if matches!(self.mode, Mode::Play { group: Some(_), .. }) {
            return Err(Reply::error(
                461,
                "Unsupported Transport",
                "this session's other tracks are multicast: SETUP every track with multicast".into(),
            ));
        }
        let reply_transport = match dest {
            Dest::Interleaved(a, b) => format!("RTP/AVP/TCP;unicast;interleaved={a}-{b}"),
            Dest::Udp(rtp_addr, rtcp_addr) => {
                let (srtp, srtcp) = self.udp.as_ref().map(|u| u.ports()).unwrap_or((0, 0));
                format!(
                    "RTP/AVP;unicast;client_port={}-{};server_port={srtp}-{srtcp}",
                    rtp_addr.port(),
                    rtcp_addr.port()
                )
            }
        };
        match &mut self.mode {
            Mode::Play { reader, .. } => {
                let ssrc = self
                    .writer
                    .with_media(|m| {
                        let o = &mut m.out[index];
                        o.dest = Some(dest);
                        o.ssrc
                    })
                    .unwrap_or_default();
                if matches!(dest, Dest::Udp(..)) {
                    reader.shared.set_protocol("rtsp+udp");
                }
                Ok(Reply::ok().header("Transport", format!("{reply_transport};ssrc={ssrc:08X}")))
            }
            Mode::Announced { inputs, producer, .. } => {
                let tracks = producer.tracks();
                let Some(track) = tracks.get(index).cloned() else {
                    return Err(Reply::error(500, "Internal Server Error", "track missing".into()));
                };
                let udp = matches!(dest, Dest::Udp(..));
                // The codec this publisher announced: a track it took over (hub::publish) may have
                // another one's parameter sets, which the depacketizer would put into its keyframes.
                let announced =
                    producer.known_medias().and_then(|m| m.get(index).and_then(|m| m.codecs.first().cloned()));
                inputs[index] = Some(InTrack {
                    dest: Some(dest),
                    depacketizer: rtp::depacketize::depacketizer_for(announced.as_ref().unwrap_or(&track.codec)),
                    reorder: udp.then(|| rtp::reorder::ReorderBuffer::new(64)),
                    reception: rtp::stats::ReceptionStats::new(track.codec.clock_rate),
                    track,
                });
                if let Dest::Udp(rtp_addr, rtcp_addr) = dest {
                    self.route_udp(rtp_addr, rtcp_addr);
                }
                let _ = transport;
                Ok(Reply::ok().header("Transport", format!("{reply_transport};mode=record")))
            }
            Mode::Idle => Err(Reply::error(455, "Method Not Valid in This State", "no session".into())),
        }
    }

    /// SETUP of track `index` of a reader over multicast: the stream's group (made by the first
    /// multicast reader of this stream and track selection) sends it; the reply names the group.
    async fn setup_multicast(&mut self, index: usize) -> Result<Reply, Reply> {
        let unsupported = |m: &str| Reply::error(461, "Unsupported Transport", m.to_string());
        let Some(multicast) = self.multicast.clone() else {
            return Err(unsupported("multicast is off on this server"));
        };
        let (stream, query, joined) = match &self.mode {
            Mode::Play { reader, group, .. } => {
                let query = reader.shared.query.lock().unwrap_or_else(|e| e.into_inner()).clone();
                (reader.stream_name().to_string(), query, group.is_some())
            }
            _ => return Err(unsupported("multicast is for readers only: publish over TCP or UDP unicast")),
        };
        if !joined && self.writer.with_media(|m| m.out.iter().any(|o| o.dest.is_some())).unwrap_or(false) {
            return Err(unsupported("this session's other tracks are unicast: SETUP every track the same way"));
        }
        let filters = self.filters_for(&query);
        let new_group = if joined {
            None
        } else {
            let group = multicast
                .join(&self.app.hub, &stream, &query, &filters)
                .await
                .map_err(|e| Reply::error(503, "Service Unavailable", format!("multicast: {e}")))?;
            Some(group)
        };
        let Mode::Play { reader, group, .. } = &mut self.mode else {
            return Err(Reply::error(455, "Method Not Valid in This State", "no session".into()));
        };
        if let Some(g) = new_group {
            // The group subscribed with the same stream and filters: it carries the same tracks, unless
            // the stream changed in between.
            let same = g.tracks.len() == reader.tracks.len()
                && g.tracks.iter().zip(&reader.tracks).all(|(a, b)| Arc::ptr_eq(&a.0, &b.track));
            if !same {
                return Err(Reply::error(
                    503,
                    "Service Unavailable",
                    format!("multicast: the group of {stream} carries other tracks than this session (the stream changed): retry"),
                ));
            }
            reader.shared.set_protocol("rtsp+multicast");
            *group = Some((g, vec![false; reader.tracks.len()]));
        }
        let Some((g, set_up)) = group else {
            return Err(Reply::error(500, "Internal Server Error", "multicast group missing".into()));
        };
        set_up[index] = true;
        let ssrc = g.tracks.get(index).map(|t| t.2).unwrap_or_default();
        Ok(Reply::ok().header(
            "Transport",
            format!(
                "RTP/AVP;multicast;destination={};port={}-{};ttl={};ssrc={ssrc:08X}",
                g.ip,
                multicast.rtp_port,
                multicast.rtcp_port,
                super::multicast::TTL
            ),
        ))
    }

    fn route_udp(&mut self, rtp_addr: SocketAddr, rtcp_addr: SocketAddr) {
        let Some(udp) = &self.udp else { return };
        let tx = match &self.udp_rx {
            Some(_) => None,
            None => {
                let (tx, rx) = mpsc::channel(UDP_QUEUE);
                self.udp_rx = Some(rx);
                Some(tx)
            }
        };
        // One channel per session; reuse its sender for later tracks.
        let tx = tx.or_else(|| self.udp_tx.clone());
        if let Some(tx) = tx {
            self.udp_tx = Some(tx.clone());
            for addr in [rtp_addr, rtcp_addr] {
                udp.route(addr, tx.clone());
                self.udp_routes.push(addr);
            }
        }
    }

    fn play(&mut self, req: &Request) -> Result<Reply, Reply> {
        let Mode::Play { playing, base_url, group, .. } = &mut self.mode else {
            return Err(Reply::error(455, "Method Not Valid in This State", "PLAY before SETUP".into()));
        };
        let _ = req;
        if let Some((_, set_up)) = group {
            // The group is already sending: the client syncs on its packets (no RTP-Info).
            if !set_up.iter().any(|s| *s) {
                return Err(Reply::error(455, "Method Not Valid in This State", "PLAY before SETUP".into()));
            }
            *playing = true;
            return Ok(Reply::ok().header("Range", "npt=0.000-".into()));
        }
        let rtp_info: Vec<String> = self
            .writer
            .with_media(|m| {
                m.out
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| o.dest.is_some())
                    .map(|(i, o)| {
                        format!(
                            "url={}/trackID={i};seq={};rtptime={}",
                            base_url.trim_end_matches('/'),
                            o.next_seq,
                            o.rtptime_base
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if rtp_info.is_empty() {
            return Err(Reply::error(455, "Method Not Valid in This State", "PLAY before SETUP".into()));
        }
        *playing = true;
        Ok(Reply::ok().header("Range", "npt=0.000-".into()).header("RTP-Info", rtp_info.join(",")))
    }

    fn record(&mut self) -> Result<Reply, Reply> {
        let Mode::Announced { publish, recording, inputs, .. } = &mut self.mode else {
            return Err(Reply::error(455, "Method Not Valid in This State", "RECORD without ANNOUNCE".into()));
        };
        if inputs.iter().all(Option::is_none) {
            return Err(Reply::error(455, "Method Not Valid in This State", "RECORD before SETUP".into()));
        }
        if !*recording {
            *recording = true;
            if let Some(publish) = publish {
                publish.start();
                tracing::info!(stream = %publish.stream_name(), peer = %self.peer, "publisher recording");
            }
        }
        Ok(Reply::ok())
    }

    fn handle_interleaved(&mut self, channel: u8, data: Bytes) {
        match &mut self.mode {
            Mode::Announced { inputs, recording: true, producer, .. } => {
                let target = inputs.iter().flatten().enumerate().find_map(|(n, i)| match i.dest {
                    Some(Dest::Interleaved(rtp_ch, _)) if rtp_ch == channel => Some((n, false)),
                    Some(Dest::Interleaved(_, rtcp_ch)) if rtcp_ch == channel => Some((n, true)),
                    _ => None,
                });
                match target {
                    Some((n, false)) => push_rtp(inputs, n, data, &mut self.frames_out, &self.peer, &producer.rtp),
                    // A publisher's sender reports: counted.
                    Some((_, true)) => {
                        count_rtcp(&data, &producer.rtp);
                    }
                    None => self.warn_unknown_channel(channel),
                }
            }
            // Readers send RTCP receiver reports on odd channels: they prove the client is alive and
            // say what it lost.
            Mode::Play { reader, .. } if channel % 2 == 1 => {
                let shared = reader.shared.clone();
                if let Some(report) = count_rtcp(&data, &shared.rtp) {
                    self.note_reported_loss(&shared, &report);
                }
            }
            Mode::Play { .. } => {}
            _ => self.warn_unknown_channel(channel),
        }
    }

    fn warn_unknown_channel(&mut self, channel: u8) {
        if !self.unknown_channel_warned {
            self.unknown_channel_warned = true;
            tracing::info!(peer = %self.peer, "rtsp: interleaved data on channel {channel}, which no SETUP assigned; ignored");
        }
    }

    fn handle_udp(&mut self, d: Datagram) {
        let Mode::Announced { inputs, recording: true, producer, .. } = &mut self.mode else { return };
        if d.rtcp {
            if inputs.iter().flatten().any(|i| matches!(i.dest, Some(Dest::Udp(_, rtcp_addr)) if rtcp_addr == d.from)) {
                count_rtcp(&d.data, &producer.rtp);
            }
            return;
        }
        let input =
            inputs.iter().flatten().position(|i| matches!(i.dest, Some(Dest::Udp(rtp_addr, _)) if rtp_addr == d.from));
        if let Some(n) = input {
            push_rtp(inputs, n, d.data, &mut self.frames_out, &self.peer, &producer.rtp);
        }
    }

    /// Keeps the latest cumulative loss a reader reported for each of our SSRCs, and their sum for
    /// the API (`outboundRTPPacketsReportedLost`).
    fn note_reported_loss(&mut self, reader: &crate::hub::ReaderShared, report: &rtp::rtcp::RtcpSummary) {
        let ssrcs: Vec<u32> = self.writer.with_media(|m| m.out.iter().map(|o| o.ssrc).collect()).unwrap_or_default();
        for block in &report.report_blocks {
            let Some(slot) = ssrcs.iter().position(|s| *s == block.ssrc) else { continue };
            if self.reported_lost.len() < ssrcs.len() {
                self.reported_lost.resize(ssrcs.len(), 0);
            }
            self.reported_lost[slot] = u64::try_from(block.cumulative_lost).unwrap_or(0);
        }
        let total = self.reported_lost.iter().sum();
        reader.rtp.outbound_rtp_reported_lost.store(total, std::sync::atomic::Ordering::Relaxed);
    }
}

/// The reply to a publisher the hub did not take.
/// Completes when this connection's publisher was replaced by a newer one; never without one.
async fn publisher_replaced(token: Option<&tokio_util::sync::CancellationToken>) {
    match token {
        Some(t) => t.cancelled().await,
        None => std::future::pending().await,
    }
}

fn publish_refused(e: PublishError) -> Reply {
    match e {
        PublishError::NotFound(_) | PublishError::NoRule(_) => Reply::error(404, "Not Found", e.to_string()),
        PublishError::StreamFull { .. } | PublishError::ServerFull { .. } => {
            Reply::error(503, "Service Unavailable", e.to_string())
        }
        // MediaMTX answers these with 400.
        PublishError::HasSource(_) | PublishError::Busy(_) => Reply::error(400, "Bad Request", e.to_string()),
    }
}

/// Counts an RTCP compound from a publisher or reader (or one that does not parse); gives what it said.
fn count_rtcp(data: &[u8], counters: &RtpCounters) -> Option<rtp::rtcp::RtcpSummary> {
    match rtp::rtcp::parse_compound(data) {
        Ok(summary) => {
            RtpCounters::add(&counters.inbound_rtcp_packets, 1);
            Some(summary)
        }
        Err(_) => {
            RtpCounters::add(&counters.inbound_rtcp_in_error, 1);
            None
        }
    }
}

/// One RTP packet of the publisher's `n`th set-up track: counted (loss and jitter over all its tracks
/// go to `counters`), put in order, depacketized into the track.
fn push_rtp(
    inputs: &mut [Option<InTrack>],
    n: usize,
    data: Bytes,
    frames: &mut Vec<Frame>,
    peer: &SocketAddr,
    counters: &RtpCounters,
) {
    let packet = match rtp::packet::parse_bytes(data) {
        Ok(p) => p,
        Err(e) => {
            RtpCounters::add(&counters.inbound_rtp_in_error, 1);
            tracing::debug!(peer = %peer, "rtsp: bad RTP packet dropped: {e}");
            return;
        }
    };
    RtpCounters::add(&counters.inbound_rtp_packets, 1);
    let Some(input) = inputs.iter_mut().flatten().nth(n) else { return };
    input.reception.on_packet(packet.sequence, packet.timestamp, reception_clock());
    let (mut lost, mut jitter, mut tracks) = (0, 0.0, 0.0);
    for i in inputs.iter().flatten() {
        lost += i.reception.lost();
        jitter += i.reception.jitter();
        tracks += 1.0;
    }
    counters.inbound_rtp_lost.store(lost, std::sync::atomic::Ordering::Relaxed);
    counters.set_jitter(jitter / tracks);
    let Some(input) = inputs.iter_mut().flatten().nth(n) else { return };
    let mut ordered = Vec::new();
    match &mut input.reorder {
        Some(r) => r.push(packet, &mut ordered),
        None => ordered.push(packet),
    }
    for packet in ordered {
        if let Err(e) = input.depacketizer.push(packet, frames) {
            tracing::debug!(peer = %peer, "rtsp: {e}");
        }
    }
    for f in frames.drain(..) {
        input.track.push(f);
    }
}

/// Arrival times for jitter: time since the process's first RTP packet (any fixed origin will do).
fn reception_clock() -> Duration {
    static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(Instant::now).elapsed()
}

async fn recv_delivery(mode: &mut Mode) -> Option<Delivery> {
    match mode {
        Mode::Play { reader, .. } => reader.queue.recv().await,
        _ => std::future::pending().await,
    }
}

async fn recv_datagram(rx: &mut Option<mpsc::Receiver<Datagram>>) -> Option<Datagram> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Keeps a source's static payload type (PCMU 0, PCMA 8...), gives dynamic ones 96 + track index.
pub(crate) fn payload_type_for(codec: &media::Codec, index: usize) -> u8 {
    let is_static = rtsp::sdp::static_codec(codec.payload_type)
        .is_some_and(|c| c.name == codec.name && c.clock_rate == codec.clock_rate);
    if is_static {
        codec.payload_type
    } else {
        96 + (index as u8 % 32)
    }
}

struct Reply {
    status: u16,
    reason: &'static str,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn ok() -> Reply {
        Reply { status: 200, reason: "OK", headers: Vec::new(), body: Vec::new() }
    }
    fn error(status: u16, reason: &'static str, message: String) -> Reply {
        let mut body = message.into_bytes();
        body.push(b'\n');
        Reply { status, reason, headers: vec![("Content-Type", "text/plain".into())], body }
    }
    fn header(mut self, name: &'static str, value: String) -> Reply {
        self.headers.push((name, value));
        self
    }
    fn body(mut self, body: Vec<u8>) -> Reply {
        self.body = body;
        self
    }
}

fn response_bytes(status: u16, reason: &str, cseq: Option<&str>, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("RTSP/1.0 {status} {reason}\r\n");
    if let Some(c) = cseq {
        out.push_str(&format!("CSeq: {c}\r\n"));
    }
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// Whether a SETUP URL names the announced media with this `a=control` (absolute or relative).
fn control_matches(uri: &str, control: &str) -> bool {
    let control = control.trim();
    if control.is_empty() || control == "*" {
        return false;
    }
    if control.contains("://") {
        return uri.trim_end_matches('/') == control.trim_end_matches('/');
    }
    uri.trim_end_matches('/').ends_with(&format!("/{}", control.trim_matches('/')))
}
