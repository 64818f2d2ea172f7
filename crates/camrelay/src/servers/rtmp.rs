//! The RTMP server (`rtmp: listen: ":1935"`, off unless configured, as in go2rtc; MediaMTX's
//! `rtmp`/`rtmpAddress` set the same listener): a thin tokio driver around the sans-IO
//! [`rtmp::RtmpServerSession`]. It moves bytes and acts on the session's events:
//!
//! - **Publish** (`rtmp://host/app/name`): auth, then the hub's one publish call. Each audio/video
//!   message body is an FLV tag body, so it goes through the same FLV tag parser as HTTP-FLV and FLV
//!   uploads (the `StreamDemuxer` of `sources::bytestream`, probed like the HTTP ingest): the driver
//!   only puts the 11-byte tag header around what RTMP carries. No RTMP-specific codec code here.
//! - **Play**: a hub reader like any other, muxed by `formats::mux::FlvStream`; its tags go out as RTMP
//!   audio/video/data messages.
//!
//! Names: `rtmp://host/live/cam` is tried as `live/cam` (MediaMTX's path), then `cam`; `rtmp://host/cam`
//! (go2rtc's form) as `cam`. A publisher that creates a stream (`rtsp.allow_any_publish`, or a MediaMTX
//! rule) gets `app/name` under a MediaMTX config and `name` under a go2rtc one. Credentials come from
//! `?user=&pass=` on the stream name (or on the app).

use bytes::{Bytes, BytesMut};
use media::MediaFilter;
use rtmp::{MediaKind, RtmpServerSession, ServerConfig, ServerEvent};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::app::{App, ServerTask};
use crate::auth::{Action, AuthRequest, Origin, Presented, Protocol};
use crate::config::Dialect;
use crate::hub::PublishRequest;
use crate::sources::bytestream::{probe, put_flv_tag, ChunkSource, FramePump, Hint, StreamDemuxer, FLV_FILE_HEADER};
use crate::tls::server::ServerTls;

/// Connections at once per listener (each holds a socket, a task and up to a few MB of buffers).
const MAX_CONNECTIONS: usize = 1024;
/// Connections at once from one IP address (per listener): one host cannot take every place.
const MAX_CONNECTIONS_PER_IP: usize = 256;
/// A publisher whose video shows no keyframe this long after the publish starts is ended: nobody could
/// watch it (MediaMTX's `readTimeout`, 10 s).
const KEYFRAME_TIMEOUT: Duration = Duration::from_secs(10);
const READ_BUF: usize = 64 * 1024;
/// A peer that takes no bytes for this long (a stalled player) is dropped, as MediaMTX's `writeTimeout`.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// An RTMPS client must complete the TLS handshake within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// What a player gets: what FLV carries, in this order of preference, with the Enhanced RTMP FourCC
/// of the codecs classic FLV has no id for.
const PLAY_VIDEO: [(&str, Option<&str>); 4] =
    [("h264", None), ("h265", Some("hvc1")), ("av1", Some("av01")), ("vp9", Some("vp09"))];
const PLAY_AUDIO: [(&str, Option<&str>); 4] = [("aac", None), ("opus", Some("Opus")), ("pcma", None), ("pcmu", None)];

/// The player's filters: every FLV codec, but enhanced ones only when the client accepts their FourCC
/// (it named none, or its `fourCcList` has it). Also the codecs left out, for the log.
fn play_filters(session: &RtmpServerSession) -> (String, Vec<&'static str>) {
    let mut refused = Vec::new();
    let mut pick = |list: &[(&'static str, Option<&'static str>)]| -> String {
        let mut names = Vec::new();
        for (name, fourcc) in list {
            match fourcc {
                Some(f) if !session.client_accepts(f) => refused.push(*f),
                _ => names.push(*name),
            }
        }
        names.join(",")
    };
    let video = pick(&PLAY_VIDEO);
    let audio = pick(&PLAY_AUDIO);
    (format!("video={video}&audio={audio}"), refused)
}

pub async fn start(app: Arc<App>) -> std::io::Result<ServerTask> {
    let listen = app.config().servers.rtmp_listen.clone();
    let Some(listener) = super::bind_tcp("rtmp", &listen).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(serve(app, listener, None))))
}

/// The RTMPS listener (`rtmp.tls_listen`, MediaMTX's `rtmpsAddress` with `rtmpEncryption: optional` or
/// `strict`): the same sessions over TLS, with the certificate of `tls::server` (reloaded when the
/// files change). A certificate that does not load is a startup error naming the file.
pub async fn start_tls(app: Arc<App>) -> std::io::Result<ServerTask> {
    let settings = app.config().servers.rtmps.clone();
    let names =
        super::Dialected { mediamtx: ("rtmpServerCert", "rtmpServerKey"), go2rtc: ("rtmp.tls_cert", "rtmp.tls_key") };
    let Some((listener, tls)) = super::bind_tls(&app, "rtmp", "rtmps", &settings, names, &[]).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(serve(app, listener, Some(tls)))))
}

/// Accepts connections until shutdown; each runs on its own task (over TLS when `tls` is given).
async fn serve(app: Arc<App>, listener: tokio::net::TcpListener, tls: Option<Arc<ServerTls>>) {
    let shutdown = app.shutdown.clone();
    let scheme = if tls.is_some() { "rtmps" } else { "rtmp" };
    let connections = super::limits::Connections::new(if tls.is_some() { "RTMPS" } else { "RTMP" }, None);
    // Refusals are logged at most every 10 s (a flood would flood the log too).
    let mut refused = 0u64;
    let mut last_warning: Option<std::time::Instant> = None;
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
        };
        let (sock, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!("{scheme} accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let permit = match connections.admit(peer.ip(), MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP) {
            Ok(slot) => slot,
            Err(why) => {
                drop(sock);
                refused += 1;
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        "{scheme}: connection from {peer} refused: {why} ({refused} refused since the last warning)"
                    );
                    refused = 0;
                    last_warning = Some(std::time::Instant::now());
                }
                continue;
            }
        };
        let app = app.clone();
        let tls = tls.clone();
        let span = tracing::info_span!("rtmp", peer = %peer);
        let hook = app.hooks.connect(if tls.is_some() { "rtmpsConn" } else { "rtmpConn" }, peer);
        tokio::spawn(
            async move {
                let _hook = hook;
                let _ = sock.set_nodelay(true);
                match tls {
                    None => run_conn(&app, Conn::new(sock, peer, "rtmp")).await,
                    Some(tls) => {
                        let handshake = tokio::select! {
                            _ = app.shutdown.cancelled() => Err("shutting down".to_string()),
                            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls_handshake(&tls, sock)) => {
                                r.unwrap_or_else(|_| Err(format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())))
                            }
                        };
                        match handshake {
                            Ok(stream) => run_conn(&app, Conn::new(stream, peer, "rtmps")).await,
                            Err(e) => tracing::info!("rtmps connection refused: {e}"),
                        }
                    }
                }
                drop(permit);
            }
            .instrument(span),
        );
    }
}

/// The TLS handshake of an RTMPS connection. A client speaking plain RTMP (its first byte is the RTMP
/// version, 3, where TLS sends 22) is refused with a clear reason before rustls sees it.
async fn tls_handshake(tls: &ServerTls, sock: TcpStream) -> Result<tokio_rustls::server::TlsStream<TcpStream>, String> {
    let mut first = [0u8; 1];
    match sock.peek(&mut first).await {
        Ok(0) => return Err("closed before the TLS handshake".into()),
        Ok(_) if first[0] == rtmp::handshake::VERSION => {
            return Err("the client speaks plain RTMP on the RTMPS port (use rtmp:// on the RTMP port)".into())
        }
        Ok(_) => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    tls.acceptor().accept(sock).await.map_err(|e| format!("TLS handshake failed: {e}"))
}

/// Runs one connection's session to its end and closes it.
async fn run_conn<S: Stream>(app: &Arc<App>, mut conn: Conn<S>) {
    let shutdown = app.shutdown.clone();
    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        r = conn.run(app) => r,
    };
    if let Err(e) = result {
        tracing::info!("{} connection ended: {e}", conn.scheme);
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), conn.sock.shutdown()).await;
}

/// The auth module's decision on an RTMP request (credentials from `?user=&pass=`): when allowed, the
/// user name the session lists show.
async fn authorize(
    app: &App,
    ip: std::net::IpAddr,
    scheme: &str,
    action: Action,
    path: &str,
    creds: &Option<(String, String)>,
) -> Option<String> {
    let presented = match creds {
        Some((user, pass)) => Presented::Credentials { user, pass },
        None => Presented::Nothing,
    };
    let asked = AuthRequest { action, path, protocol: Protocol::Rtmp, origin: Origin::Ip(ip), presented };
    let details = crate::auth::Details { protocol: scheme, ..Default::default() };
    let auth = app.auth();
    auth.authorize(&asked, details).await.ok().map(|()| auth.shown_user(&asked.presented))
}

/// What a session runs over: TCP, or TLS over TCP.
pub trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

struct Conn<S> {
    sock: S,
    peer: SocketAddr,
    /// `rtmp` or `rtmps`: the protocol shown for its publishers and readers.
    scheme: &'static str,
    session: RtmpServerSession,
    buf: Vec<u8>,
    /// Output taken from the session and not yet written (kept here so a cancelled write loses nothing).
    pending: Bytes,
    /// A session error seen while media was still to be handed on (reported on the next read).
    failed: Option<String>,
}

/// What the client asked for once connected.
enum Wants {
    Publish(String),
    Play(String),
}

impl<S: Stream> Conn<S> {
    fn new(sock: S, peer: SocketAddr, scheme: &'static str) -> Self {
        let seed =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64);
        let config = ServerConfig { seed: seed ^ u64::from(peer.port()), ..ServerConfig::default() };
        Conn {
            sock,
            peer,
            scheme,
            session: RtmpServerSession::new(config, std::time::Instant::now()),
            buf: vec![0; READ_BUF],
            pending: Bytes::new(),
            failed: None,
        }
    }

    /// Writes the session's output. Cancel-safe: what was not written stays in `pending`.
    async fn flush(&mut self) -> Result<(), String> {
        loop {
            if self.pending.is_empty() {
                match self.session.poll_transmit() {
                    Some(b) => self.pending = b,
                    None => {
                        // TLS keeps records that the socket did not take yet: push them out too.
                        return tokio::time::timeout(WRITE_TIMEOUT, self.sock.flush())
                            .await
                            .map_err(|_| format!("write: the peer took nothing for {} s", WRITE_TIMEOUT.as_secs()))?
                            .map_err(|e| format!("write: {e}"));
                    }
                }
            }
            let n = tokio::time::timeout(WRITE_TIMEOUT, self.sock.write(&self.pending))
                .await
                .map_err(|_| format!("write: the peer took nothing for {} s", WRITE_TIMEOUT.as_secs()))?
                .map_err(|e| format!("write: {e}"))?;
            if n == 0 {
                return Err("write: connection closed".into());
            }
            bytes::Buf::advance(&mut self.pending, n);
        }
    }

    /// Reads once (or wakes at the session's timeout) and feeds the session. `false` at EOF.
    async fn read_once(&mut self) -> Result<bool, String> {
        let deadline = self.session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.sock.read(&mut self.buf) => match r {
                Ok(0) => {
                    self.session.handle_eof();
                    Ok(false)
                }
                Ok(n) => {
                    self.session.handle_input(std::time::Instant::now(), &self.buf[..n]);
                    Ok(true)
                }
                Err(e) => Err(format!("read: {e}")),
            },
            _ = sleep => {
                self.session.handle_timeout(std::time::Instant::now());
                Ok(true)
            }
        }
    }

    async fn run(&mut self, app: &Arc<App>) -> Result<(), String> {
        let wants = loop {
            self.flush().await?;
            if let Some(w) = self.setup_event()? {
                break w;
            }
            if !self.read_once().await? {
                // EOF: a stream cut inside the handshake or a message is an error the session names.
                while let Some(e) = self.session.poll_event() {
                    if let ServerEvent::Error(e) = e {
                        return Err(e.to_string());
                    }
                }
                return Ok(());
            }
        };
        match wants {
            Wants::Publish(key) => self.publish(app, &key).await,
            Wants::Play(key) => self.play(app, &key).await,
        }
    }

    fn setup_event(&mut self) -> Result<Option<Wants>, String> {
        while let Some(e) = self.session.poll_event() {
            match e {
                ServerEvent::Connect { app, tc_url } => {
                    tracing::debug!(app = %app, tc_url = tc_url.as_deref().map(crate::secrets::mask_url).unwrap_or_default(), "connect")
                }
                ServerEvent::Publish { stream_key } => return Ok(Some(Wants::Publish(stream_key))),
                ServerEvent::Play { stream_key } => return Ok(Some(Wants::Play(stream_key))),
                ServerEvent::Media { .. } => {}
                ServerEvent::Closed => return Err("closed before publish or play".into()),
                ServerEvent::Error(e) => return Err(e.to_string()),
            }
        }
        Ok(None)
    }

    /// The query the client's URL carried: the stream key's, else the app's (where ffmpeg puts it).
    fn url_query<'a>(&'a self, key: &'a str) -> &'a str {
        match split_query(key).1 {
            "" => split_query(self.session.app()).1,
            query => query,
        }
    }

    /// Stream name candidates and the credentials of `key` (and the app).
    fn names(&self, key: &str) -> (Vec<String>, Option<(String, String)>) {
        let (app_name, app_query) = split_query(self.session.app());
        let (name, query) = split_query(key);
        let creds = credentials(query).or_else(|| credentials(app_query));
        let app_name = app_name.trim_matches('/');
        let name = name.trim_matches('/');
        let mut out = Vec::new();
        match (app_name.is_empty(), name.is_empty()) {
            (false, false) => {
                out.push(format!("{app_name}/{name}"));
                out.push(name.to_string());
            }
            (true, false) => out.push(name.to_string()),
            (false, true) => out.push(app_name.to_string()),
            (true, true) => {}
        }
        out.dedup();
        (out, creds)
    }

    async fn refuse(&mut self, why: &str) -> Result<(), String> {
        self.session.reject(why);
        self.flush().await?;
        Err(why.to_string())
    }

    async fn publish(&mut self, app: &Arc<App>, key: &str) -> Result<(), String> {
        let (names, creds) = self.names(key);
        let allow_create = app.config().rtsp.allow_any_publish;
        let existing = names.iter().find(|n| app.hub.check_publish(n, false).is_ok());
        let creating = match app.config().dialect {
            Dialect::Mediamtx => names.first(),
            Dialect::Go2rtc => names.last(),
        };
        let Some(path) = existing.or(creating).cloned() else {
            return self.refuse("no stream name").await;
        };
        let Some(user) = authorize(app, self.peer.ip(), self.scheme, Action::Publish, &path, &creds).await else {
            return self.refuse("not authorized").await;
        };
        if let Err(e) = app.hub.check_publish(&path, allow_create) {
            return self.refuse(&e.to_string()).await;
        }
        self.session.accept_publish();
        self.flush().await?;
        let mut demux = StreamDemuxer::new(Hint::Flv);
        let mut src = MessagesAsFlv { conn: self, header_sent: false };
        let probed = probe(&mut src, &mut demux).await.map_err(|e| format!("publish {path}: {e}"))?;
        let medias = probed.medias();
        let url = format!("{}://{}/{}", self.scheme, self.peer, path);
        let publish = app
            .hub
            .publish(PublishRequest {
                path: path.clone(),
                protocol: self.scheme.into(),
                remote_addr: self.peer.to_string(),
                url,
                medias: medias.clone(),
                allow_create,
            })
            .map_err(|e| format!("publish {path}: {e}"))?;
        publish.producer().set_identity(&user, self.url_query(key));
        let replaced = publish.replaced();
        let media_list: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
        tracing::info!(stream = %path, medias = ?media_list, "publisher connected");
        let mut pump = FramePump::start(probed, publish.producer().tracks(), &mut demux);
        let mut src = MessagesAsFlv { conn: self, header_sent: true };
        let wants_keyframe = publish.producer().tracks().iter().any(|t| t.needs_keyframe());
        let keyframe_deadline = tokio::time::Instant::now() + KEYFRAME_TIMEOUT;
        let result = loop {
            let chunk = tokio::select! {
                _ = replaced.cancelled() => break Err("replaced by another publisher".to_string()),
                _ = tokio::time::sleep_until(keyframe_deadline), if wants_keyframe && pump.video_keyframes == 0 => {
                    break Err(format!(
                        "publish {path}: no video keyframe within {} s (only inter frames or sequence headers): ended",
                        KEYFRAME_TIMEOUT.as_secs()
                    ));
                }
                c = src.next_chunk() => c,
            };
            match chunk {
                Ok(Some(data)) => {
                    if let Err(e) = demux.push(&data, tokio::time::Instant::now()) {
                        break Err(e);
                    }
                    pump.drain(&mut demux);
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(e),
            }
        };
        drop(publish);
        tracing::info!(stream = %path, frames = pump.frames, "publisher disconnected");
        result
    }

    async fn play(&mut self, app: &Arc<App>, key: &str) -> Result<(), String> {
        let (names, creds) = self.names(key);
        let Some(first) = names.first().cloned() else {
            return self.refuse("no stream name").await;
        };
        let (query, refused) = play_filters(&self.session);
        if !refused.is_empty() {
            tracing::info!(
                not_in_fourcc_list = ?refused,
                "player's Enhanced RTMP fourCcList lacks these codecs: their tracks are not offered"
            );
        }
        let filters: Vec<MediaFilter> = media::query::parse_query_string(&query);
        let mut found = None;
        let mut last_err = format!("stream not found: {first}");
        for name in &names {
            let Some(user) = authorize(app, self.peer.ip(), self.scheme, Action::Read, name, &creds).await else {
                last_err = "not authorized".into();
                continue;
            };
            let shared = app.hub.new_reader_shared(self.scheme, self.peer.to_string());
            shared.set_identity(&user, self.url_query(key));
            match app.hub.subscribe(name, &filters, shared, true).await {
                Ok(r) => {
                    found = Some(r);
                    break;
                }
                Err(e) => last_err = format!("stream {name}: {e}"),
            }
        }
        let Some(mut reader) = found else {
            return self.refuse(&last_err).await;
        };
        let codecs: Vec<_> = reader.tracks.iter().map(|t| (t.track.kind, t.codec.clone())).collect();
        let mut muxer = match formats::mux::FlvStream::new(&codecs) {
            Ok(m) => m,
            Err(e) => return self.refuse(&format!("flv: {e}")).await,
        };
        use formats::mux::Muxer;
        self.session.accept_play();
        tracing::info!(stream = %reader.stream_name(), "player connected");
        if let Some(h) = muxer.header() {
            self.send_tags(&h);
        }
        self.flush().await?;
        loop {
            tokio::select! {
                d = reader.queue.recv() => {
                    let Some(d) = d else { break };
                    match muxer.push(d.slot, &d.frame) {
                        Ok(out) => {
                            let mut n = 0;
                            for b in &out {
                                n += b.len() as u64;
                                self.send_tags(b);
                            }
                            reader.shared.count_sent(1, n);
                        }
                        Err(e) => tracing::debug!("flv: {e}"),
                    }
                    self.flush().await?;
                }
                r = self.read_once() => {
                    if !r? {
                        break;
                    }
                    self.flush().await?;
                    while let Some(e) = self.session.poll_event() {
                        match e {
                            ServerEvent::Closed => return Ok(()),
                            ServerEvent::Error(e) => return Err(e.to_string()),
                            _ => {}
                        }
                    }
                }
            }
        }
        self.session.close();
        self.flush().await
    }

    /// Sends the tags of FLV bytes from our muxer (an optional file header, then tags) as RTMP messages.
    fn send_tags(&mut self, flv: &[u8]) {
        for (kind, ts, body) in flv_tags(flv) {
            // A full output queue drops this tag; the hub's reader queue resyncs on the next keyframe.
            let _ = self.session.send_media(kind, ts, body);
        }
    }
}

/// The tags of FLV bytes from our muxer (`formats::mux::FlvStream`: an optional file header, then
/// tags) as RTMP messages: (kind, timestamp, body). Shared by the play path here and the RTMP push
/// (`crate::push`).
pub(crate) fn flv_tags(mut flv: &[u8]) -> Vec<(MediaKind, u32, &[u8])> {
    if flv.starts_with(b"FLV") && flv.len() >= 13 {
        flv = &flv[13..];
    }
    let mut out = Vec::new();
    while flv.len() >= 11 {
        let size = (usize::from(flv[1]) << 16) | (usize::from(flv[2]) << 8) | usize::from(flv[3]);
        let ts = u32::from_be_bytes([flv[7], flv[4], flv[5], flv[6]]);
        let Some(body) = flv.get(11..11 + size) else { break };
        let kind = match flv[0] & 0x1f {
            8 => Some(MediaKind::Audio),
            9 => Some(MediaKind::Video),
            18 => Some(MediaKind::Data),
            _ => None,
        };
        if let Some(kind) = kind {
            out.push((kind, ts, body));
        }
        flv = flv.get(11 + size + 4..).unwrap_or_default();
    }
    out
}

/// The publisher's media messages as FLV bytes (a file header, then one tag per message) for the FLV
/// demuxer: RTMP message bodies are FLV tag bodies.
struct MessagesAsFlv<'a, S> {
    conn: &'a mut Conn<S>,
    header_sent: bool,
}

impl<S: Stream> ChunkSource for MessagesAsFlv<'_, S> {
    /// Cancel-safe (the probe races it with a timer): events are taken only after the last await.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(e) = self.conn.failed.take() {
                return Err(e);
            }
            self.conn.flush().await?;
            let mut out = BytesMut::new();
            if !self.header_sent {
                self.header_sent = true;
                out.extend_from_slice(&FLV_FILE_HEADER);
            }
            let mut ended = None;
            while let Some(e) = self.conn.session.poll_event() {
                match e {
                    ServerEvent::Media { kind, timestamp, payload } => {
                        put_flv_tag(&mut out, kind.type_id(), timestamp, &payload)
                    }
                    ServerEvent::Closed => ended = Some(Ok(None)),
                    ServerEvent::Error(e) => ended = Some(Err(e.to_string())),
                    _ => {}
                }
            }
            if !out.is_empty() {
                if let Some(Err(e)) = ended {
                    self.conn.failed = Some(e);
                }
                return Ok(Some(out.freeze()));
            }
            if let Some(end) = ended {
                return end;
            }
            if self.conn.session.is_ended() {
                return Ok(None);
            }
            if !self.conn.read_once().await? {
                // EOF: the session queued Closed; the next round returns it.
                continue;
            }
        }
    }
}

fn split_query(s: &str) -> (&str, &str) {
    s.split_once('?').unwrap_or((s, ""))
}

/// `user=..&pass=..` (go2rtc, MediaMTX) from a query string, percent-decoded.
fn credentials(query: &str) -> Option<(String, String)> {
    let mut user = None;
    let mut pass = None;
    let mut jwt = None;
    for pair in query.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "user" => user = Some(media::query::percent_decode(&v.replace('+', " "))),
            "pass" => pass = Some(media::query::percent_decode(&v.replace('+', " "))),
            // MediaMTX's JWT (`?jwt=TOKEN`): a password without a user, which the JWT method reads.
            "jwt" if user.is_none() => {
                jwt = Some(media::query::percent_decode(v));
            }
            _ => {}
        }
    }
    user.map(|u| (u, pass.unwrap_or_default())).or(jwt.map(|t| (String::new(), t)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_from_the_query() {
        assert_eq!(credentials("user=a%40b&pass=p+w&x=1"), Some(("a@b".into(), "p w".into())));
        assert_eq!(credentials("pass=x"), None);
        assert_eq!(credentials(""), None);
        assert_eq!(credentials("jwt=a.b%2Ec"), Some(("".into(), "a.b.c".into())));
        assert_eq!(split_query("cam?user=a"), ("cam", "user=a"));
    }

    fn load(yaml: &str) -> Result<crate::config::Config, String> {
        crate::config::load(&[yaml.to_string()], std::path::Path::new("/nonexistent"), &|_| None)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn go2rtc_rtmp_listen() {
        assert_eq!(load("{}").unwrap().servers.rtmp_listen, "", "off unless configured");
        assert_eq!(load(r#"{"rtmp":{"listen":":1935"}}"#).unwrap().servers.rtmp_listen, ":1935");
        assert_eq!(load(r#"{"rtmp":{"listen":""}}"#).unwrap().servers.rtmp_listen, "");
        let e = load(r#"{"rtmp":{"listen":"nope"}}"#).unwrap_err();
        assert!(e.contains("rtmp.listen"), "{e}");
    }

    #[test]
    fn go2rtc_rtmps_keys() {
        let c =
            load(r#"{"rtmp":{"listen":":1935","tls_listen":":1936","tls_cert":"/etc/c.pem","tls_key":"/etc/k.pem"}}"#)
                .unwrap();
        assert_eq!(c.servers.rtmp_listen, ":1935");
        let t = &c.servers.rtmps;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":1936", "/etc/c.pem", "/etc/k.pem"));
        assert_eq!(load("{}").unwrap().servers.rtmps, crate::config::TlsListen::default(), "off unless set");
        let e = load(r#"{"rtmp":{"tls_listen":"nope"}}"#).unwrap_err();
        assert!(e.contains("rtmp.tls_listen"), "{e}");
    }

    fn load_mediamtx(yaml: &str) -> Result<crate::config::Config, String> {
        let dir = std::env::temp_dir().join(format!("camrelay-rtmps-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("mediamtx.yml");
        std::fs::write(&file, yaml).unwrap();
        let r = crate::config::load(&[file.display().to_string()], &dir, &|_| None)
            .map(|l| l.config)
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_dir_all(&dir);
        r
    }

    #[test]
    fn mediamtx_rtmp_encryption() {
        let c = load_mediamtx("rtmp: true\nrtmpAddress: :1935\n").unwrap();
        assert_eq!(
            (c.servers.rtmp_listen.as_str(), c.servers.rtmps.listen.as_str()),
            (":1935", ""),
            "\"no\" by default"
        );
        let c = load_mediamtx("rtmpEncryption: optional\nrtmpServerKey: k.pem\nrtmpServerCert: c.pem\n").unwrap();
        assert_eq!(c.servers.rtmp_listen, ":1935");
        let t = &c.servers.rtmps;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":1936", "c.pem", "k.pem"));
        let c = load_mediamtx("rtmpEncryption: strict\nrtmpsAddress: 127.0.0.1:2000\n").unwrap();
        assert_eq!(c.servers.rtmp_listen, "", "strict: no plain listener");
        let t = &c.servers.rtmps;
        assert_eq!(
            (t.listen.as_str(), t.cert.as_str(), t.key.as_str()),
            ("127.0.0.1:2000", "server.crt", "server.key")
        );
        let c = load_mediamtx("rtmp: false\nrtmpEncryption: strict\n").unwrap();
        assert_eq!((c.servers.rtmp_listen.as_str(), c.servers.rtmps.listen.as_str()), ("", ""));
        let e = load_mediamtx("rtmpEncryption: maybe\n").unwrap_err();
        assert!(e.contains("rtmpEncryption") && e.contains("maybe"), "{e}");
    }
}
