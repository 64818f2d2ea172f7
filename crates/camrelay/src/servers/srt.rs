//! The SRT server (`srt: listen: ":8890"`, off unless configured; MediaMTX's `srt`/`srtAddress`):
//! MPEG-TS over SRT, published and read, as MediaMTX serves it.
//!
//! The SRT protocol itself (handshake v5, ACK/NAK, retransmission, TSBPD, AES key material) is the
//! pure-Rust `srt-protocol` state machine driven by `srt-tokio` (docs/srt.md says why this one). This
//! module only decides on each connection request and moves MPEG-TS:
//!
//! - **Access**: the `streamid` names the action, the path and the credentials ([`StreamId::parse`]:
//!   MediaMTX's `publish:PATH[:user:pass][:query]` / `read:...` and SRT's standard
//!   `#!::r=PATH,m=publish,u=user,s=pass`). The one auth module decides (protocol `srt`); a refusal is an
//!   SRT rejection with a reason code (bad stream id 2400, unauthorized 2401, not found 2404, busy
//!   2409, overload 2402) before any media flows.
//! - **Encryption**: the passphrase of the path and action (MediaMTX's `srtReadPassphrase` /
//!   `srtPublishPassphrase`, camrelay's `srt.passphrase`) is required of the caller; a caller with none
//!   or another one is refused by the handshake (libsrt reports "Password required or unexpected" /
//!   "Incorrect passphrase").
//! - **Publish**: the TS messages go through the same sniffing demuxer as every byte-stream input
//!   (`sources::bytestream`: probe, then the hub's one `publish` call and a `FramePump`).
//! - **Read**: a hub reader like any other, muxed by `formats::mux::TsStream`, sent as SRT messages of
//!   seven TS packets (1316 bytes) at most.
//!
//! Connections are bounded (in total and per IP, `servers::limits`) and every one is a hub reader or
//! publisher with protocol `srt`, so `/v3/srtconns`, the `srt_conns*` metrics and kicks see them.

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use media::MediaFilter;
use srt_protocol::options::{KeySize, Passphrase};
use srt_protocol::packet::{RejectReason, ServerRejectReason};
use srt_protocol::settings::KeySettings;
use srt_tokio::{ConnectionRequest, SrtSocket};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument;

use crate::app::{App, ServerTask};
use crate::auth::{Action, AuthRequest, Origin, Presented, Protocol};
use crate::hub::PublishRequest;
use crate::sources::bytestream::{probe, ChunkSource, FramePump, Hint, StreamDemuxer, READ_TIMEOUT};

/// Connections at once (each holds a task and SRT buffers of a few MB at most).
const MAX_CONNECTIONS: usize = 1024;
/// Connections at once from one IP address.
const MAX_CONNECTIONS_PER_IP: usize = 256;
/// A publisher whose video shows no keyframe this long after it started is ended.
const KEYFRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// Seven 188-byte TS packets: the SRT live-mode payload everyone uses (`pkt_size=1316`).
pub const TS_PER_MESSAGE: usize = 1316;
/// The sender's buffer (packets not yet acknowledged): libsrt's default of 8192 packets would be
/// 12 MB per reader; 2048 holds a burst of a GOP cache replay at a few Mbit/s and bounds memory.
pub const SEND_BUFFER_BYTES: u64 = 2048 * 1456;
/// SRT's passphrase bounds (`SRTO_PASSPHRASE`).
pub const PASSPHRASE_LEN: std::ops::RangeInclusive<usize> = 10..=79;
/// What a reader gets: what `formats::ts` muxes (and KLV, see [`read_filters`]).
const READ_FILTERS: &str = "video=h264,h265&audio=aac,opus,mpa";

/// The reader's filters: [`READ_FILTERS`] and a KLV data stream when the path has one (a query string
/// has no word for application medias).
fn read_filters() -> Vec<MediaFilter> {
    let mut filters = media::query::parse_query_string(READ_FILTERS);
    filters.push(MediaFilter { kind: media::Kind::Application, codecs: vec![media::codec::KLV.into()], all: false });
    filters
}

/// What a stream id asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Publish,
    Read,
}

/// A parsed `streamid`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamId {
    pub mode: Mode,
    pub path: String,
    /// User and password (or a JWT as the password), if given.
    pub credentials: Option<(String, String)>,
    /// MediaMTX's free-form query part (`publish:cam:QUERY`), kept for the API.
    pub query: String,
}

impl StreamId {
    /// MediaMTX's forms: `action:path`, `action:path:query`, `action:path:user:pass`,
    /// `action:path:user:pass:query` (action `publish` or `read`), and SRT's standard access-control
    /// syntax `#!::r=path,m=publish|request,u=user,s=pass[,h=host][,t=type]` (read when `m` is not
    /// given). Errors say what was wrong and never repeat a password.
    pub fn parse(raw: &str) -> Result<StreamId, String> {
        if raw.len() > 512 {
            return Err(format!("stream id of {} bytes (SRT allows 512)", raw.len()));
        }
        let id = match raw.strip_prefix("#!::") {
            Some(rest) => Self::parse_standard(rest)?,
            None => Self::parse_mediamtx(raw)?,
        };
        if id.path.is_empty() {
            return Err("stream id names no path".into());
        }
        if id.path.chars().any(|c| c.is_control()) {
            return Err("the path of the stream id holds control characters".into());
        }
        Ok(id)
    }

    fn parse_standard(rest: &str) -> Result<StreamId, String> {
        let mut id = StreamId { mode: Mode::Read, path: String::new(), credentials: None, query: String::new() };
        let (mut user, mut pass) = (None, None);
        for kv in rest.split(',') {
            let Some((k, v)) = kv.split_once('=') else {
                return Err(format!("stream id: {:?} is not key=value", kv.chars().take(32).collect::<String>()));
            };
            match k {
                "r" => id.path = v.to_string(),
                "u" => user = Some(v.to_string()),
                "s" => pass = Some(v.to_string()),
                "h" | "t" => {}
                "m" => {
                    id.mode = match v {
                        "publish" => Mode::Publish,
                        "request" => Mode::Read,
                        other => {
                            return Err(format!(
                                "stream id: unsupported mode {:?} (publish or request)",
                                other.chars().take(32).collect::<String>()
                            ))
                        }
                    }
                }
                other => {
                    return Err(format!(
                        "stream id: unsupported key {:?} (r, m, u, s, h, t)",
                        other.chars().take(32).collect::<String>()
                    ))
                }
            }
        }
        if user.is_some() || pass.is_some() {
            id.credentials = Some((user.unwrap_or_default(), pass.unwrap_or_default()));
        }
        Ok(id)
    }

    fn parse_mediamtx(raw: &str) -> Result<StreamId, String> {
        let parts: Vec<&str> = raw.split(':').collect();
        if parts.len() < 2 || parts.len() > 5 {
            return Err("stream id must be 'action:path[:query]' or 'action:path:user:pass[:query]' \
                (action read or publish), or '#!::r=path,m=publish,u=user,s=pass'"
                .into());
        }
        let mode = match parts[0] {
            "publish" => Mode::Publish,
            "read" => Mode::Read,
            other => {
                return Err(format!(
                    "stream id: unsupported action {:?} (read or publish)",
                    other.chars().take(32).collect::<String>()
                ))
            }
        };
        let credentials = (parts.len() >= 4).then(|| (parts[2].to_string(), parts[3].to_string()));
        let query = match parts.len() {
            3 => parts[2],
            5 => parts[4],
            _ => "",
        };
        Ok(StreamId { mode, path: parts[1].to_string(), credentials, query: query.to_string() })
    }
}

/// A passphrase as the SRT library takes it; errors name the setting, never the value.
pub fn passphrase(setting: &str, value: &str) -> Result<Passphrase, String> {
    if !PASSPHRASE_LEN.contains(&value.len()) {
        return Err(format!(
            "{setting}: an SRT passphrase has {} to {} characters (this one has {})",
            PASSPHRASE_LEN.start(),
            PASSPHRASE_LEN.end(),
            value.len()
        ));
    }
    Passphrase::try_from(value.to_string()).map_err(|e| format!("{setting}: {e}"))
}

/// `pbkeylen` (bytes of the AES key: 0 = the caller's choice, 16, 24 or 32).
pub fn key_size(setting: &str, value: u16) -> Result<KeySize, String> {
    KeySize::try_from(value).map_err(|_| format!("{setting}: {value} is not an AES key length (0, 16, 24 or 32)"))
}

/// The passphrase the caller must use for `mode` on `path`: MediaMTX's `srtPublishPassphrase` /
/// `srtReadPassphrase` of the path's rule (or `pathDefaults`), else camrelay's `srt.passphrase`.
fn passphrase_for(config: &crate::config::Config, app: &App, mode: Mode, path: &str) -> Option<String> {
    let key = match mode {
        Mode::Publish => "srtPublishPassphrase",
        Mode::Read => "srtReadPassphrase",
    };
    if let Some(mtx) = &config.mediamtx {
        let rules = app.hub.path_rules();
        let settings = rules.find(path).and_then(|(rule, _)| mtx.path_settings(&rule.name));
        let value = match &settings {
            Some(s) => s.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
            None => mtx.path_defaults.get(key).and_then(|v| v.as_str()).unwrap_or_default().to_string(),
        };
        if !value.is_empty() {
            return Some(value);
        }
    }
    let own = &config.srt.passphrase;
    (!own.is_empty()).then(|| own.clone())
}

pub async fn start(app: Arc<App>) -> std::io::Result<ServerTask> {
    let config = app.config();
    let Some(addr) = crate::config::bind_address(&config.servers.srt_listen) else {
        return Ok(None);
    };
    let cannot = |e: std::io::Error| std::io::Error::new(e.kind(), format!("srt: cannot listen on {addr}: {e}"));
    let socket = std::net::UdpSocket::bind(&addr).map_err(cannot)?;
    socket.set_nonblocking(true).map_err(cannot)?;
    let local = socket.local_addr()?;
    let first = listen(&socket, local, config.srt.latency).await.map_err(cannot)?;
    tracing::info!(module = "srt", addr = %local, "listen");
    Ok(Some(tokio::spawn(serve(app, socket, first))))
}

type Listening = (srt_tokio::SrtListener, srt_tokio::SrtIncoming);

/// An `srt-tokio` listener on (a duplicate of) `socket`.
async fn listen(socket: &std::net::UdpSocket, local: SocketAddr, latency: Duration) -> std::io::Result<Listening> {
    let socket = tokio::net::UdpSocket::from_std(socket.try_clone()?)?;
    srt_tokio::SrtListener::builder()
        .latency(latency)
        .set(|o| o.sender.buffer_size = srt_protocol::options::ByteCount(SEND_BUFFER_BYTES))
        .socket(socket)
        .bind(local)
        .await
}

/// Takes connection requests until shutdown; each is decided and run on its own task, so a slow one
/// never holds the listener (which waits for this loop when its request queue is full).
///
/// `srt-tokio`'s listener task ends (it panics) on a few handshakes it does not expect (key material
/// from a caller to a path without a passphrase, docs/srt.md): its request stream then ends, and the
/// listener is started again on the same socket at once.
async fn serve(app: Arc<App>, socket: std::net::UdpSocket, first: Listening) {
    let shutdown = app.shutdown.clone();
    let connections = super::limits::Connections::new("SRT", None);
    let mut refused = 0u64;
    let mut last_warning: Option<Instant> = None;
    let local = socket.local_addr().ok();
    let (mut listener, mut incoming) = first;
    loop {
        let request = tokio::select! {
            _ = shutdown.cancelled() => break,
            r = incoming.incoming().next() => r,
        };
        let Some(request) = request else {
            tracing::error!("srt: the SRT listener stopped (a handshake it could not handle): starting it again");
            let latency = app.config().srt.latency;
            let restarted = match local {
                Some(local) => listen(&socket, local, latency).await,
                None => Err(std::io::Error::other("no local address")),
            };
            match restarted {
                Ok((l, i)) => {
                    // The old one's task is gone: dropped, not closed (closing joins the dead task).
                    std::mem::forget(std::mem::replace(&mut listener, l));
                    incoming = i;
                }
                Err(e) => {
                    tracing::error!("srt: cannot start the listener again: {e}");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    }
                }
            }
            continue;
        };
        let peer = request.remote();
        let slot = match connections.admit(peer.ip(), MAX_CONNECTIONS, MAX_CONNECTIONS_PER_IP) {
            Ok(slot) => slot,
            Err(why) => {
                refused += 1;
                if last_warning.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                    tracing::warn!(
                        "srt: connection from {peer} refused: {why} ({refused} refused since the last warning)"
                    );
                    refused = 0;
                    last_warning = Some(Instant::now());
                }
                tokio::spawn(async move {
                    let _ = request.reject(RejectReason::Server(ServerRejectReason::Overload)).await;
                });
                continue;
            }
        };
        let app = app.clone();
        let span = tracing::info_span!("srt", peer = %peer);
        tokio::spawn(
            async move {
                let _slot = slot;
                let _hook = app.hooks.connect("srtConn", peer);
                let shutdown = app.shutdown.clone();
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    r = run_request(&app, request) => if let Err(e) = r {
                        tracing::info!("srt connection ended: {e}");
                    }
                }
            }
            .instrument(span),
        );
    }
    // Dropped, not closed: `close` would panic on a listener task that ended on its own.
    drop(listener);
}

/// Refuses `request` with `reason` and returns the error to log.
async fn refuse(request: ConnectionRequest, reason: ServerRejectReason, why: String) -> Result<(), String> {
    let _ = request.reject(RejectReason::Server(reason)).await;
    Err(why)
}

async fn run_request(app: &Arc<App>, request: ConnectionRequest) -> Result<(), String> {
    let peer = request.remote();
    let raw = request.stream_id().map(|s| s.to_string()).unwrap_or_default();
    let id = match StreamId::parse(&raw) {
        Ok(id) => id,
        Err(e) => return refuse(request, ServerRejectReason::BadRequest, e).await,
    };
    let action = match id.mode {
        Mode::Publish => Action::Publish,
        Mode::Read => Action::Read,
    };
    let presented = match &id.credentials {
        Some((user, pass)) => Presented::Credentials { user, pass },
        None => Presented::Nothing,
    };
    // The user name the session lists show once it is allowed.
    let (denied, user) = {
        let asked =
            AuthRequest { action, path: &id.path, protocol: Protocol::Srt, origin: Origin::Ip(peer.ip()), presented };
        let details = crate::auth::Details { protocol: "srt", query: &id.query, ..Default::default() };
        let auth = app.auth();
        (auth.authorize(&asked, details).await.err(), auth.shown_user(&asked.presented))
    };
    if let Some(denied) = denied {
        let what = if matches!(id.mode, Mode::Publish) { "publish to" } else { "read" };
        return refuse(request, ServerRejectReason::Unauthorized, format!("may not {what} {}: {denied:?}", id.path))
            .await;
    }
    let config = app.config();
    let key = match passphrase_for(&config, app, id.mode, &id.path) {
        Some(p) => {
            let passphrase = match passphrase("srt passphrase", &p) {
                Ok(p) => p,
                Err(e) => return refuse(request, ServerRejectReason::InternalServerError, e).await,
            };
            // The caller's key length (its `pbkeylen`): srt-protocol takes no other one.
            Some(KeySettings { key_size: request.key_size(), passphrase })
        }
        None if request.key_size() != KeySize::Unspecified => {
            let why = format!("{}: the caller encrypts, and this path has no passphrase", id.path);
            return refuse(request, ServerRejectReason::BadRequest, why).await;
        }
        None => None,
    };
    match id.mode {
        Mode::Publish => {
            let allow_create = config.rtsp.allow_any_publish;
            if let Err(e) = app.hub.check_publish(&id.path, allow_create) {
                let reason = match e {
                    crate::hub::PublishError::NotFound(_) | crate::hub::PublishError::NoRule(_) => {
                        ServerRejectReason::Notfound
                    }
                    crate::hub::PublishError::ServerFull { .. } => ServerRejectReason::Overload,
                    _ => ServerRejectReason::Conflict,
                };
                return refuse(request, reason, format!("publish {}: {e}", id.path)).await;
            }
            let encrypted = key.is_some();
            let socket = request.accept(key).await.map_err(|e| handshake_failed(encrypted, e))?;
            publish(app, socket, peer, &id, &user, allow_create).await
        }
        Mode::Read => {
            let filters = read_filters();
            let shared = app.hub.new_reader_shared("srt", peer.to_string());
            shared.set_identity(&user, &id.query);
            let reader = match app.hub.subscribe(&id.path, &filters, shared, true).await {
                Ok(r) => r,
                Err(e) => {
                    let reason = match e {
                        crate::hub::HubError::TooManyReaders { .. } => ServerRejectReason::Overload,
                        crate::hub::HubError::NotMatched(_) => ServerRejectReason::NotSupMedia,
                        _ => ServerRejectReason::Notfound,
                    };
                    return refuse(request, reason, format!("read {}: {e}", id.path)).await;
                }
            };
            let encrypted = key.is_some();
            let socket = request.accept(key).await.map_err(|e| handshake_failed(encrypted, e))?;
            read(socket, reader).await
        }
    }
}

fn handshake_failed(encrypted: bool, e: std::io::Error) -> String {
    if encrypted {
        format!("handshake failed (no passphrase, or not this path's: the caller was refused): {e}")
    } else {
        format!("handshake failed: {e}")
    }
}

/// The messages of an SRT connection as byte chunks for the demuxer (cancel-safe: the probe races
/// it with a timer). Counts the bytes.
pub struct SrtChunks<'a> {
    pub socket: &'a mut SrtSocket,
    pub bytes: Arc<AtomicU64>,
}

impl ChunkSource for SrtChunks<'_> {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        match tokio::time::timeout(READ_TIMEOUT, self.socket.next()).await {
            Err(_) => Err(format!("no data for {} s", READ_TIMEOUT.as_secs())),
            Ok(None) => Ok(None),
            Ok(Some(Err(e))) => Err(format!("srt: {e}")),
            Ok(Some(Ok((_, data)))) => {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
                Ok(Some(data))
            }
        }
    }
}

async fn publish(
    app: &Arc<App>,
    mut socket: SrtSocket,
    peer: SocketAddr,
    id: &StreamId,
    user: &str,
    allow_create: bool,
) -> Result<(), String> {
    let path = &id.path;
    let mut demux = StreamDemuxer::new(Hint::Ts);
    let bytes = Arc::new(AtomicU64::new(0));
    let mut src = SrtChunks { socket: &mut socket, bytes: bytes.clone() };
    let probed = probe(&mut src, &mut demux).await.map_err(|e| format!("publish {path}: {e}"))?;
    let medias = probed.medias();
    let publish = app
        .hub
        .publish(PublishRequest {
            path: path.clone(),
            protocol: "srt".into(),
            remote_addr: peer.to_string(),
            url: format!("srt://{peer}?streamid=publish:{path}"),
            medias: medias.clone(),
            allow_create,
        })
        .map_err(|e| format!("publish {path}: {e}"))?;
    publish.producer().set_identity(user, &id.query);
    let replaced = publish.replaced();
    let _stats = StatsWatch::start(src.socket, true, publish.producer().id);
    let media_list: Vec<String> = medias.iter().map(|m| m.to_string()).collect();
    tracing::info!(stream = %path, medias = ?media_list, "publisher connected");
    let mut pump = FramePump::start(probed, publish.producer().tracks(), &mut demux);
    let wants_keyframe = publish.producer().tracks().iter().any(|t| t.needs_keyframe());
    let keyframe_deadline = tokio::time::Instant::now() + KEYFRAME_TIMEOUT;
    let result = loop {
        let chunk = tokio::select! {
            _ = replaced.cancelled() => break Err("replaced by another publisher, or kicked".to_string()),
            _ = tokio::time::sleep_until(keyframe_deadline), if wants_keyframe && pump.video_keyframes == 0 => {
                break Err(format!("publish {path}: no video keyframe within {} s: ended", KEYFRAME_TIMEOUT.as_secs()));
            }
            c = src.next_chunk() => c,
        };
        match chunk {
            Ok(Some(data)) => {
                if let Err(e) = demux.push(&data, tokio::time::Instant::now()) {
                    break Err(format!("publish {path}: {e}"));
                }
                pump.drain(&mut demux);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(publish);
    tracing::info!(stream = %path, frames = pump.frames, bytes = bytes.load(Ordering::Relaxed), "publisher disconnected");
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
    result
}

/// The SRT statistics of a connection (srt-protocol's, libsrt's names in its comments).
pub type SrtStats = srt_protocol::statistics::SocketStatistics;

/// The latest statistics of every open connection, by (publisher?, the hub reader's or producer's id):
/// `/v3/srtconns` and the `srt_conns*` metrics read them. Bounded by the connection limit.
static STATS: std::sync::Mutex<Option<std::collections::HashMap<(bool, u64), SrtStats>>> = std::sync::Mutex::new(None);

/// The latest SRT statistics of the publisher (`publisher`) or reader with this id, while connected.
pub fn stats(publisher: bool, id: u64) -> Option<SrtStats> {
    STATS.lock().unwrap_or_else(|e| e.into_inner()).as_ref()?.get(&(publisher, id)).cloned()
}

/// One SRT statistic: an integer count or a measure.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatValue {
    Int(u64),
    Float(f64),
}

impl From<StatValue> for serde_json::Value {
    fn from(v: StatValue) -> serde_json::Value {
        match v {
            StatValue::Int(n) => n.into(),
            StatValue::Float(f) => f.into(),
        }
    }
}

/// MediaMTX's SRT statistics of a connection, in its order: the `/v3/srtconns` field name, the
/// `/metrics` series name and the value. `/v3/srtconns` and `/metrics` both read this list, so they
/// cannot disagree. Fields srt-protocol does not count (key material packets, link capacity, TSBPD
/// delays, belated bytes, reorder tolerance) are 0; `byteMSS` is the 1500 of srt-protocol's MSS.
pub fn stats_fields(st: &SrtStats) -> Vec<(&'static str, &'static str, StatValue)> {
    use StatValue::{Float, Int};
    let ms = |d: Duration| Int(d.as_millis() as u64);
    let rate = |lost: u64, total: u64| Float(if total == 0 { 0.0 } else { lost as f64 * 100.0 / total as f64 });
    vec![
        ("packetsSent", "srt_conns_packets_sent", Int(st.tx_data)),
        ("packetsReceived", "srt_conns_packets_received", Int(st.rx_data)),
        ("packetsSentUnique", "srt_conns_packets_sent_unique", Int(st.tx_unique_data)),
        ("packetsReceivedUnique", "srt_conns_packets_received_unique", Int(st.rx_unique_data)),
        ("packetsSendLoss", "srt_conns_packets_send_loss", Int(st.tx_loss_data)),
        ("packetsReceivedLoss", "srt_conns_packets_received_loss", Int(st.rx_loss_data)),
        ("packetsRetrans", "srt_conns_packets_retrans", Int(st.tx_retransmit_data)),
        ("packetsReceivedRetrans", "srt_conns_packets_received_retrans", Int(st.rx_retransmit_data)),
        ("packetsSentACK", "srt_conns_packets_sent_ack", Int(st.tx_ack)),
        ("packetsReceivedACK", "srt_conns_packets_received_ack", Int(st.rx_ack)),
        ("packetsSentNAK", "srt_conns_packets_sent_nak", Int(st.tx_nak)),
        ("packetsReceivedNAK", "srt_conns_packets_received_nak", Int(st.rx_nak)),
        ("packetsSentKM", "srt_conns_packets_sent_km", Int(0)),
        ("packetsReceivedKM", "srt_conns_packets_received_km", Int(0)),
        ("usSndDuration", "srt_conns_us_snd_duration", Int(st.tx_buffer_time.as_micros() as u64)),
        ("packetsReceivedBelated", "srt_conns_packets_received_belated", Int(st.rx_belated_data)),
        ("packetsSendDrop", "srt_conns_packets_send_drop", Int(st.tx_dropped_data)),
        ("packetsReceivedDrop", "srt_conns_packets_received_drop", Int(st.rx_dropped_data)),
        ("packetsReceivedUndecrypt", "srt_conns_packets_received_undecrypt", Int(st.rx_decrypt_errors)),
        ("bytesSent", "srt_conns_bytes_sent", Int(st.tx_bytes)),
        ("bytesReceived", "srt_conns_bytes_received", Int(st.rx_bytes)),
        ("bytesSentUnique", "srt_conns_bytes_sent_unique", Int(st.tx_unique_bytes)),
        ("bytesReceivedUnique", "srt_conns_bytes_received_unique", Int(st.rx_unique_bytes)),
        ("bytesReceivedLoss", "srt_conns_bytes_received_loss", Int(st.rx_loss_bytes)),
        ("bytesRetrans", "srt_conns_bytes_retrans", Int(st.tx_retransmit_bytes)),
        ("bytesReceivedRetrans", "srt_conns_bytes_received_retrans", Int(0)),
        ("bytesReceivedBelated", "srt_conns_bytes_received_belated", Int(0)),
        ("bytesSendDrop", "srt_conns_bytes_send_drop", Int(st.tx_dropped_bytes)),
        ("bytesReceivedDrop", "srt_conns_bytes_received_drop", Int(st.rx_dropped_bytes)),
        ("bytesReceivedUndecrypt", "srt_conns_bytes_received_undecrypt", Int(st.rx_decrypt_error_bytes)),
        ("usPacketsSendPeriod", "srt_conns_us_packets_send_period", Float(st.tx_snd_period.as_micros() as f64)),
        ("packetsFlowWindow", "srt_conns_packets_flow_window", Int(st.tx_flow_window)),
        ("packetsFlightSize", "srt_conns_packets_flight_size", Int(st.tx_unacknowledged_data)),
        ("msRTT", "srt_conns_ms_rtt", Float(st.tx_average_rtt.as_secs_f64() * 1000.0)),
        ("mbpsSendRate", "srt_conns_mbps_send_rate", Float(st.tx_bandwidth as f64)),
        ("mbpsReceiveRate", "srt_conns_mbps_receive_rate", Float(st.rx_bandwidth as f64)),
        ("mbpsLinkCapacity", "srt_conns_mbps_link_capacity", Float(0.0)),
        ("bytesAvailSendBuf", "srt_conns_bytes_avail_send_buf", Int(st.tx_buffer_available_bytes)),
        ("bytesAvailReceiveBuf", "srt_conns_bytes_avail_receive_buf", Int(st.rx_buffer_available_bytes)),
        ("mbpsMaxBW", "srt_conns_mbps_max_bw", Float(0.0)),
        ("byteMSS", "srt_conns_bytes_mss", Int(1500)),
        ("packetsSendBuf", "srt_conns_packets_send_buf", Int(st.tx_buffered_data)),
        ("bytesSendBuf", "srt_conns_bytes_send_buf", Int(st.tx_buffered_bytes)),
        ("msSendBuf", "srt_conns_ms_send_buf", ms(st.tx_buffered_time)),
        ("msSendTsbPdDelay", "srt_conns_ms_send_tsb_pd_delay", Int(0)),
        ("packetsReceiveBuf", "srt_conns_packets_receive_buf", Int(st.rx_acknowledged_data)),
        ("bytesReceiveBuf", "srt_conns_bytes_receive_buf", Int(st.rx_acknowledged_bytes)),
        ("msReceiveBuf", "srt_conns_ms_receive_buf", ms(st.rx_acknowledged_time)),
        ("msReceiveTsbPdDelay", "srt_conns_ms_receive_tsb_pd_delay", Int(0)),
        ("packetsReorderTolerance", "srt_conns_packets_reorder_tolerance", Int(0)),
        ("packetsReceivedAvgBelatedTime", "srt_conns_packets_received_avg_belated_time", ms(st.rx_belated_time)),
        ("packetsSendLossRate", "srt_conns_packets_send_loss_rate", rate(st.tx_loss_data, st.tx_data)),
        ("packetsReceivedLossRate", "srt_conns_packets_received_loss_rate", rate(st.rx_loss_data, st.rx_data)),
    ]
}

/// Keeps [`STATS`] up to date for one connection (srt-protocol reports every second) until dropped.
struct StatsWatch {
    key: (bool, u64),
    task: tokio::task::JoinHandle<()>,
}

impl StatsWatch {
    fn start(socket: &mut SrtSocket, publisher: bool, id: u64) -> StatsWatch {
        let key = (publisher, id);
        let mut updates = socket.statistics().clone();
        let task = tokio::spawn(async move {
            while let Some(s) = updates.next().await {
                STATS.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert_with(Default::default).insert(key, s);
            }
        });
        StatsWatch { key, task }
    }
}

impl Drop for StatsWatch {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(map) = STATS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            map.remove(&self.key);
        }
    }
}

/// Splits TS bytes into SRT messages of at most [`TS_PER_MESSAGE`] bytes (whole TS packets).
pub fn messages(ts: &Bytes) -> impl Iterator<Item = Bytes> + '_ {
    (0..ts.len()).step_by(TS_PER_MESSAGE).map(move |at| ts.slice(at..(at + TS_PER_MESSAGE).min(ts.len())))
}

async fn read(mut socket: SrtSocket, mut reader: crate::hub::Reader) -> Result<(), String> {
    use formats::mux::Muxer;
    let codecs: Vec<_> = reader.tracks.iter().map(|t| (t.track.kind, t.codec.clone())).collect();
    let mut muxer = formats::mux::TsStream::new(&codecs).map_err(|e| format!("mpeg-ts: {e}"))?;
    tracing::info!(stream = %reader.stream_name(), "reader connected");
    let mut pending = BytesMut::new();
    let _stats = StatsWatch::start(&mut socket, false, reader.shared.id);
    let result = loop {
        tokio::select! {
            d = reader.queue.recv() => {
                let Some(d) = d else { break Ok(()) };
                match muxer.push(d.slot, &d.frame) {
                    Ok(out) => {
                        let mut n = 0u64;
                        for ts in out {
                            pending.extend_from_slice(&ts);
                        }
                        let ts = pending.split().freeze();
                        for message in messages(&ts) {
                            n += message.len() as u64;
                            if let Err(e) = socket.feed((Instant::now(), message)).await {
                                return Err(format!("send: {e}"));
                            }
                        }
                        if let Err(e) = socket.flush().await {
                            break Err(format!("send: {e}"));
                        }
                        reader.shared.count_sent(1, n);
                    }
                    Err(e) => tracing::debug!("mpeg-ts: {e}"),
                }
            }
            r = socket.next() => match r {
                // A reader sends nothing: its end (or an error) closes the session.
                None => break Ok(()),
                Some(Err(e)) => break Err(format!("srt: {e}")),
                Some(Ok(_)) => {}
            }
        }
    };
    tracing::info!(stream = %reader.stream_name(), "reader disconnected");
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mediamtx_stream_ids() {
        let p = StreamId::parse("publish:cam").unwrap();
        assert_eq!(
            (p.mode, p.path.as_str(), p.credentials.clone(), p.query.as_str()),
            (Mode::Publish, "cam", None, "")
        );
        let r = StreamId::parse("read:live/cam:alice:s3cret").unwrap();
        assert_eq!(r.mode, Mode::Read);
        assert_eq!(r.path, "live/cam");
        assert_eq!(r.credentials, Some(("alice".into(), "s3cret".into())));
        assert_eq!(StreamId::parse("read:cam:q=1").unwrap().query, "q=1");
        let full = StreamId::parse("publish:cam:u:p:key=v").unwrap();
        assert_eq!((full.credentials.unwrap().1.as_str(), full.query.as_str()), ("p", "key=v"));
        let e = StreamId::parse("play:cam").unwrap_err();
        assert!(e.contains("unsupported action \"play\""), "{e}");
        assert!(StreamId::parse("cam").unwrap_err().contains("action:path"));
        assert!(StreamId::parse("read:").unwrap_err().contains("no path"));
        assert!(StreamId::parse("a:b:c:d:e:f").is_err());
        assert!(StreamId::parse(&format!("read:{}", "x".repeat(600))).unwrap_err().contains("512"));
        let e = StreamId::parse("read:cam:user:topsecret:a:b").unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn standard_stream_ids() {
        let s = StreamId::parse("#!::r=cam,m=publish,u=bob,s=pw").unwrap();
        assert_eq!((s.mode, s.path.as_str()), (Mode::Publish, "cam"));
        assert_eq!(s.credentials, Some(("bob".into(), "pw".into())));
        let s = StreamId::parse("#!::h=example.com,r=live/x").unwrap();
        assert_eq!((s.mode, s.path.as_str(), s.credentials), (Mode::Read, "live/x", None));
        assert_eq!(StreamId::parse("#!::m=request,r=a").unwrap().mode, Mode::Read);
        assert!(StreamId::parse("#!::r=a,m=bidirectional").unwrap_err().contains("unsupported mode"));
        assert!(StreamId::parse("#!::r=a,x=1").unwrap_err().contains("unsupported key"));
        assert!(StreamId::parse("#!::r").unwrap_err().contains("key=value"));
        assert!(StreamId::parse("#!::m=publish").unwrap_err().contains("no path"));
    }

    #[test]
    fn passphrases_and_key_sizes() {
        assert!(passphrase("srt.passphrase", "0123456789").is_ok());
        let e = passphrase("srt.passphrase", "short").err().unwrap();
        assert!(e.contains("10 to 79") && !e.contains("short"), "{e}");
        assert_eq!(key_size("srt.pbkeylen", 32).unwrap(), KeySize::AES256);
        assert!(key_size("srt.pbkeylen", 20).unwrap_err().contains("0, 16, 24 or 32"));
    }

    #[test]
    fn ts_is_cut_into_messages_of_seven_packets() {
        let ts = Bytes::from(vec![0x47u8; 188 * 15]);
        let sizes: Vec<usize> = messages(&ts).map(|m| m.len()).collect();
        assert_eq!(sizes, vec![1316, 1316, 188]);
        assert_eq!(messages(&Bytes::new()).count(), 0);
    }
}
