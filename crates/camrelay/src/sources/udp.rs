//! MPEG-TS and RTP pushed at us over UDP or a Unix socket (MediaMTX's `udp+mpegts://`, `udp+rtp://`
//! and `unix+mpegts://` sources; `udp://` is MPEG-TS, as MediaMTX's older spelling):
//!
//! - `udp+mpegts://IP:PORT` (or `udp://`) listens on `IP:PORT` for MPEG-TS datagrams (any number of
//!   188-byte packets each) and demuxes them with the shared byte-stream demuxer (`formats::ts`).
//! - `udp+rtp://IP:PORT#sdp=...` listens for RTP described by an SDP (`#sdp=` percent-encoded, or
//!   `#sdp_file=/path/to/file.sdp`; MediaMTX's `rtpSDP` path setting becomes `#sdp=`). Packets are put
//!   back in order by the reorder buffer (`rtp::reorder`) and depacketized per media (by payload type).
//! - `unix+mpegts:///path/to.sock` creates a Unix stream socket there and reads MPEG-TS from the client
//!   that connects (ffmpeg's `-f mpegts unix:/path/to.sock`).
//!
//! A multicast `IP` (224.0.0.0/4, ff00::/8) is joined, on the interface of `?interface=NAME` or the
//! one the system picks. `?source=IP` takes datagrams from that sender only; without it the first
//! sender owns the source until it is silent for [`SENDER_HOLD`], so a second sender (or a flood
//! from anyone) cannot mix into the stream. Refused datagrams, lost and reordered packets are counted
//! ([`Source::receive_stats`]) and shown by `/api/streams` (`receive`) and `/v3/paths`.

use bytes::Bytes;
use media::{Direction, Frame, Media, RtpPacket};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{UdpSocket, UnixListener, UnixStream};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::hub::producer::{parked_or_connect, ConnectionInfo, ReceiveStats};
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceFactory, Track};
use crate::secrets::mask_url;
use crate::sources::bytestream::{
    probe, pump_chunks, ChunkSource, FramePump, Hint, Probed, StreamDemuxer, READ_TIMEOUT,
};
use crate::sources::exec::parse_query;

/// Without `?source=`, the sender that owns the source keeps it until it is silent this long.
pub const SENDER_HOLD: Duration = Duration::from_secs(2);
/// Packets that may wait for a missing one (per media).
const REORDER_PACKETS: usize = 64;
/// A reorder buffer holding packets gives up on the missing ones after this much silence.
const REORDER_FLUSH: Duration = Duration::from_millis(100);
/// Largest datagram read.
const MAX_DATAGRAM: usize = 65_536;
/// The kernel receive buffer asked for (the system may cap it at `net.core.rmem_max`).
const RECV_BUFFER: usize = 4 << 20;
/// Largest SDP accepted in `#sdp=` / `#sdp_file=`.
const MAX_SDP: usize = 64 << 10;

// ------------------------------------------------------------------------------------------- URL

#[derive(Clone, Debug, PartialEq)]
enum Format {
    MpegTs,
    /// RTP with the medias of the SDP.
    Rtp(Vec<Media>),
}

#[derive(Clone, Debug, PartialEq)]
enum Endpoint {
    Udp {
        /// The address listened on (a multicast group is bound as itself).
        addr: SocketAddr,
        /// `?interface=`: where to join a multicast group.
        interface: Option<String>,
        /// `?source=`: the only sender taken.
        source: Option<IpAddr>,
    },
    Unix(PathBuf),
}

#[derive(Clone, Debug, PartialEq)]
struct Target {
    endpoint: Endpoint,
    format: Format,
}

fn is_multicast(ip: IpAddr) -> bool {
    ip.is_multicast()
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (base, fragment) = url.split_once('#').unwrap_or((url, ""));
        let (scheme, rest) = base.split_once("://").ok_or("not a URL")?;
        let scheme = scheme.to_ascii_lowercase();
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let params: Vec<(String, String)> = media::query::query_pairs(query).collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        for (k, _) in &params {
            if !matches!(k.as_str(), "interface" | "source") {
                return Err(format!("unknown parameter ?{k}= (interface, source)"));
            }
        }
        let fragment = parse_query(fragment);
        let frag = |k: &str| fragment.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let format = match scheme.as_str() {
            "udp" | "udp+mpegts" | "unix+mpegts" => Format::MpegTs,
            "udp+rtp" => {
                let text = match (frag("sdp"), frag("sdp_file")) {
                    (Some(s), _) => rtsp::url::percent_decode(&s).into_bytes(),
                    (None, Some(file)) => {
                        let file = rtsp::url::percent_decode(&file);
                        let meta = std::fs::metadata(&file).map_err(|e| format!("#sdp_file={file}: {e}"))?;
                        if meta.len() > MAX_SDP as u64 {
                            return Err(format!("#sdp_file={file}: larger than {} KiB", MAX_SDP >> 10));
                        }
                        std::fs::read(&file).map_err(|e| format!("#sdp_file={file}: {e}"))?
                    }
                    (None, None) => {
                        return Err(
                            "udp+rtp:// needs the SDP of the stream (#sdp= or #sdp_file=; MediaMTX: rtpSDP)".into()
                        )
                    }
                };
                Format::Rtp(sdp_medias(&text)?)
            }
            s => return Err(format!("unsupported scheme {s:?}")),
        };
        if scheme == "unix+mpegts" {
            if !params.is_empty() {
                return Err("unix+mpegts:// takes no ?interface= or ?source=".into());
            }
            let path = rtsp::url::percent_decode(rest);
            if !path.starts_with('/') {
                return Err(format!("unix+mpegts:// needs an absolute socket path (got {path:?})"));
            }
            return Ok(Target { endpoint: Endpoint::Unix(PathBuf::from(path)), format });
        }
        let host_port = rest.trim_end_matches('/');
        let addr: SocketAddr = match host_port.parse() {
            Ok(a) => a,
            Err(_) => {
                // `host:port` with a name: only the unspecified spellings make sense for listening.
                let (host, port) = host_port.rsplit_once(':').ok_or_else(|| format!("{host_port:?} has no port"))?;
                let port: u16 = port.parse().map_err(|_| format!("invalid port {port:?}"))?;
                let ip = match host {
                    "" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    h => h.parse().map_err(|_| format!("{h:?} is not an IP address to listen on"))?,
                };
                SocketAddr::new(ip, port)
            }
        };
        if addr.port() == 0 {
            return Err("the port must not be 0".into());
        }
        let source = match param("source") {
            Some(s) => Some(s.parse().map_err(|_| format!("?source={s:?} is not an IP address"))?),
            None => None,
        };
        let interface = param("interface").filter(|s| !s.is_empty());
        if interface.is_some() && !is_multicast(addr.ip()) {
            return Err("?interface= applies to a multicast address only".into());
        }
        Ok(Target { endpoint: Endpoint::Udp { addr, interface, source }, format })
    }
}

/// The medias of an RTP source's SDP: every media is received; each needs a payload type of its own.
fn sdp_medias(text: &[u8]) -> Result<Vec<Media>, String> {
    if text.len() > MAX_SDP {
        return Err(format!("the SDP is larger than {} KiB", MAX_SDP >> 10));
    }
    let sd = rtsp::sdp::parse(text).map_err(|e| format!("invalid SDP: {e}"))?;
    let mut medias = Vec::new();
    let mut seen = Vec::new();
    for m in sd.medias {
        let Some(codec) = m.codecs.first().cloned() else { continue };
        if seen.contains(&codec.payload_type) {
            return Err(format!(
                "the SDP gives payload type {} to two medias (one UDP port needs one per media)",
                codec.payload_type
            ));
        }
        seen.push(codec.payload_type);
        medias.push(Media::new(m.kind, Direction::RecvOnly, vec![codec]));
    }
    if medias.is_empty() {
        return Err("the SDP has no media with a codec".into());
    }
    Ok(medias)
}

/// An SDP as the value of `#sdp=` (percent-encoded: line breaks, `#`, `%`, `&` and spaces escaped).
pub fn sdp_param(sdp: &str) -> String {
    let mut out = String::with_capacity(sdp.len() * 2);
    for b in sdp.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:/=+,;*@!$'()[]".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------------------------- sans-IO helpers

/// Who may feed the source: the `?source=` address, else the first sender until it is silent for
/// [`SENDER_HOLD`]. Time is passed in.
#[derive(Debug)]
pub struct SenderFilter {
    allowed: Option<IpAddr>,
    current: Option<(SocketAddr, Instant)>,
}

impl SenderFilter {
    pub fn new(allowed: Option<IpAddr>) -> SenderFilter {
        SenderFilter { allowed, current: None }
    }

    /// Whether a datagram from `from` at `now` is taken.
    pub fn accept(&mut self, from: SocketAddr, now: Instant) -> bool {
        if let Some(ip) = self.allowed {
            if from.ip() != ip {
                return false;
            }
        }
        match self.current {
            Some((owner, last)) if owner != from && now.saturating_duration_since(last) < SENDER_HOLD => false,
            _ => {
                self.current = Some((from, now));
                true
            }
        }
    }

    /// The sender that owns the source.
    pub fn current(&self) -> Option<SocketAddr> {
        self.current.map(|(a, _)| a)
    }
}

/// Counts MPEG-TS packets missing by the continuity counters of each PID (a lost datagram of
/// 7 packets shows as 7, or fewer when its counters wrap).
#[derive(Debug, Default)]
pub struct TsContinuity {
    /// (PID, last counter) of the PIDs seen, at most [`TsContinuity::MAX_PIDS`].
    last: Vec<(u16, u8)>,
    pub lost: u64,
}

impl TsContinuity {
    const MAX_PIDS: usize = 32;

    pub fn push(&mut self, data: &[u8]) {
        for p in data.chunks_exact(188) {
            if p[0] != 0x47 {
                continue;
            }
            let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
            let has_payload = p[3] & 0x10 != 0;
            let discontinuity = p[3] & 0x20 != 0 && p[4] > 0 && p[5] & 0x80 != 0;
            if pid == 0x1fff || !has_payload {
                continue;
            }
            let cc = p[3] & 0x0f;
            let room = self.last.len() < Self::MAX_PIDS;
            match self.last.iter_mut().find(|(p, _)| *p == pid) {
                Some((_, last)) => {
                    let step = cc.wrapping_sub(*last) & 0x0f;
                    // 0: a duplicate packet (allowed once); 1: in order.
                    if step > 1 && !discontinuity {
                        self.lost += u64::from(step - 1);
                    }
                    *last = cc;
                }
                None if room => self.last.push((pid, cc)),
                None => {}
            }
        }
    }
}

/// Counts packets that came after a later one (per media, by sequence number, with wraparound).
#[derive(Debug, Default)]
pub struct ReorderCount {
    highest: Option<u16>,
    pub reordered: u64,
}

impl ReorderCount {
    pub fn push(&mut self, sequence: u16) {
        match self.highest {
            Some(h) => {
                let delta = sequence.wrapping_sub(h) as i16;
                if delta < 0 && delta > -1000 {
                    self.reordered += 1;
                } else if delta != 0 {
                    self.highest = Some(sequence);
                }
            }
            None => self.highest = Some(sequence),
        }
    }
}

// ---------------------------------------------------------------------------------------- stats

#[derive(Default)]
struct Stats {
    packets: AtomicU64,
    bytes: AtomicU64,
    lost: AtomicU64,
    reordered: AtomicU64,
    rejected: AtomicU64,
    errors: AtomicU64,
    sender: Mutex<Option<SocketAddr>>,
}

impl Stats {
    fn set_sender(&self, s: Option<SocketAddr>) {
        *self.sender.lock().unwrap_or_else(|e| e.into_inner()) = s;
    }
}

// ---------------------------------------------------------------------------------------- sockets

/// Opens the UDP socket of `addr`: bound to it (a multicast group as itself, joined on `interface`).
pub(crate) fn bind_udp(addr: SocketAddr, interface: Option<&str>) -> Result<UdpSocket, String> {
    use socket2::{Domain, Protocol, Socket, Type};
    let domain = if addr.is_ipv4() { Domain::IPV4 } else { Domain::IPV6 };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP)).map_err(|e| format!("socket: {e}"))?;
    let multicast = is_multicast(addr.ip());
    if multicast {
        // Several listeners (another path, another program) may share a group's port.
        let _ = sock.set_reuse_address(true);
    }
    let _ = sock.set_recv_buffer_size(RECV_BUFFER);
    sock.bind(&addr.into()).map_err(|e| format!("bind {addr}: {e}"))?;
    if multicast {
        match addr.ip() {
            IpAddr::V4(group) => {
                let iface = match interface {
                    Some(name) => interface_v4(name)?,
                    None => Ipv4Addr::UNSPECIFIED,
                };
                sock.join_multicast_v4(&group, &iface).map_err(|e| match interface {
                    Some(name) => format!("joining {group} on {name}: {e}"),
                    None => format!("joining {group}: {e} (is there a multicast route? use ?interface=)"),
                })?;
            }
            IpAddr::V6(group) => {
                let index = match interface {
                    Some(name) => interface_index(name)?,
                    None => 0,
                };
                sock.join_multicast_v6(&group, index).map_err(|e| format!("joining {group}: {e}"))?;
            }
        }
    }
    sock.set_nonblocking(true).map_err(|e| e.to_string())?;
    UdpSocket::from_std(sock.into()).map_err(|e| e.to_string())
}

/// The first IPv4 address of the network interface `name`.
fn interface_v4(name: &str) -> Result<Ipv4Addr, String> {
    let ifaces = if_addrs::get_if_addrs().map_err(|e| format!("listing interfaces: {e}"))?;
    let mut found = false;
    for i in ifaces.iter().filter(|i| i.name == name) {
        found = true;
        if let IpAddr::V4(ip) = i.ip() {
            return Ok(ip);
        }
    }
    Err(if found {
        format!("interface {name:?} has no IPv4 address")
    } else {
        format!("no network interface {name:?}")
    })
}

fn interface_index(name: &str) -> Result<u32, String> {
    let c = std::ffi::CString::new(name).map_err(|_| format!("invalid interface name {name:?}"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(format!("no network interface {name:?}"));
    }
    Ok(index)
}

/// A Unix stream socket at `path` (an old socket file there is replaced).
fn bind_unix(path: &std::path::Path) -> Result<UnixListener, String> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(path);
        } else {
            return Err(format!("{} exists and is not a socket", path.display()));
        }
    }
    UnixListener::bind(path).map_err(|e| format!("listening on {}: {e}", path.display()))
}

/// The MPEG-TS bytes of a UDP socket or a Unix socket's client.
enum Input {
    Udp { sock: UdpSocket, filter: SenderFilter, continuity: TsContinuity },
    Unix { listener: UnixListener, path: PathBuf, client: Option<UnixStream> },
}

impl Drop for Input {
    fn drop(&mut self) {
        if let Input::Unix { path, .. } = self {
            let _ = std::fs::remove_file(path);
        }
    }
}

struct Chunks {
    input: Input,
    buf: Box<[u8]>,
    stats: Arc<Stats>,
}

impl ChunkSource for Chunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        let silent = || format!("no data for {} s", READ_TIMEOUT.as_secs());
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            match &mut self.input {
                Input::Udp { sock, filter, continuity } => {
                    let r = tokio::time::timeout_at(deadline, sock.recv_from(&mut self.buf)).await;
                    let (n, from) = r.map_err(|_| silent())?.map_err(|e| format!("receive: {e}"))?;
                    if !filter.accept(from, Instant::now()) {
                        self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    self.stats.set_sender(filter.current());
                    let data = &self.buf[..n];
                    self.stats.packets.fetch_add(1, Ordering::Relaxed);
                    self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    let before = continuity.lost;
                    continuity.push(data);
                    self.stats.lost.fetch_add(continuity.lost - before, Ordering::Relaxed);
                    if n == 0 {
                        continue;
                    }
                    return Ok(Some(Bytes::copy_from_slice(data)));
                }
                Input::Unix { listener, client, .. } => {
                    let Some(c) = client else {
                        // Waiting for a client is not silence of a stream: no deadline here.
                        let (stream, _) = listener.accept().await.map_err(|e| format!("accept: {e}"))?;
                        *client = Some(stream);
                        continue;
                    };
                    let n = tokio::time::timeout_at(deadline, c.read(&mut self.buf))
                        .await
                        .map_err(|_| silent())?
                        .map_err(|e| format!("read: {e}"))?;
                    if n == 0 {
                        return Ok(None);
                    }
                    self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    return Ok(Some(Bytes::copy_from_slice(&self.buf[..n])));
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------ source

/// The schemes of this module.
pub fn schemes() -> Vec<(&'static str, SourceFactory)> {
    let f: SourceFactory = Arc::new(|url: &str| Ok(Arc::new(UdpSource::new(url)?) as Arc<dyn Source>));
    vec![("udp", f.clone()), ("udp+mpegts", f.clone()), ("udp+rtp", f.clone()), ("unix+mpegts", f)]
}

pub struct UdpSource {
    label: String,
    target: Target,
    stats: Arc<Stats>,
}

/// What `open` parks for an MPEG-TS source: the socket and what the probe read.
struct Connected {
    chunks: Chunks,
    demux: Box<StreamDemuxer>,
    probed: Probed,
}

impl UdpSource {
    pub fn new(url: &str) -> Result<UdpSource, String> {
        let label = mask_url(url.split('#').next().unwrap_or(url));
        let target = Target::parse(url).map_err(|e| format!("{label}: {e}"))?;
        Ok(UdpSource { label, target, stats: Arc::new(Stats::default()) })
    }

    fn err(&self, e: impl Into<SourceError>) -> SourceError {
        e.into().map_message(|m| format!("{}: {m}", self.label))
    }

    fn input(&self) -> Result<Input, SourceError> {
        match &self.target.endpoint {
            Endpoint::Udp { addr, interface, source } => {
                let sock = bind_udp(*addr, interface.as_deref()).map_err(|e| self.err(SourceError::other(e)))?;
                Ok(Input::Udp { sock, filter: SenderFilter::new(*source), continuity: TsContinuity::default() })
            }
            Endpoint::Unix(path) => {
                let listener = bind_unix(path).map_err(|e| self.err(SourceError::other(e)))?;
                Ok(Input::Unix { listener, path: path.clone(), client: None })
            }
        }
    }

    /// MPEG-TS: listens and reads until the tracks are known.
    async fn connect_ts(&self) -> Result<Connected, SourceError> {
        let mut chunks =
            Chunks { input: self.input()?, buf: vec![0u8; MAX_DATAGRAM].into_boxed_slice(), stats: self.stats.clone() };
        let mut demux = Box::new(StreamDemuxer::new(Hint::Ts));
        let probed = probe(&mut chunks, &mut demux).await.map_err(|e| self.err(e))?;
        Ok(Connected { chunks, demux, probed })
    }

    async fn run_ts(
        &self,
        parked: Option<Connected>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(connected) = parked_or_connect(parked, &stop, self.connect_ts()).await? else { return Ok(()) };
        let Connected { mut chunks, mut demux, probed } = connected;
        SourceError::unless_same_medias(&tracks, &probed.medias()).map_err(|e| self.err(e))?;
        let mut pump = FramePump::start(probed, tracks, &mut demux);
        pump_chunks(&mut chunks, &mut demux, &mut pump, &stop, "the sender closed the connection")
            .await
            .map_err(|e| self.err(e))
    }

    async fn run_rtp(
        &self,
        medias: &[Media],
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Endpoint::Udp { addr, interface, source } = &self.target.endpoint else {
            return Err(self.err(SourceError::other("RTP needs a UDP address")));
        };
        let sock = bind_udp(*addr, interface.as_deref()).map_err(|e| self.err(SourceError::other(e)))?;
        let mut rtp = RtpReceiver::new(medias);
        let mut filter = SenderFilter::new(*source);
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut last_data = Instant::now();
        let mut frames = Vec::new();
        loop {
            let wait = if rtp.buffered() { REORDER_FLUSH } else { READ_TIMEOUT };
            let r = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = tokio::time::timeout(wait, sock.recv_from(&mut buf)) => r,
            };
            let now = Instant::now();
            let (n, from) = match r {
                Ok(r) => r.map_err(|e| self.err(SourceError::network(format!("receive: {e}"))))?,
                Err(_) => {
                    rtp.flush(&mut frames);
                    push_frames(&tracks, &mut frames);
                    rtp.publish(&self.stats);
                    if now.saturating_duration_since(last_data) >= READ_TIMEOUT {
                        return Err(
                            self.err(SourceError::network(format!("no RTP packet for {} s", READ_TIMEOUT.as_secs())))
                        );
                    }
                    continue;
                }
            };
            if !filter.accept(from, now) {
                self.stats.rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            self.stats.set_sender(filter.current());
            self.stats.bytes.fetch_add(n as u64, Ordering::Relaxed);
            last_data = now;
            rtp.push(Bytes::copy_from_slice(&buf[..n]), &mut frames);
            push_frames(&tracks, &mut frames);
            rtp.publish(&self.stats);
        }
    }
}

fn push_frames(tracks: &[Arc<Track>], frames: &mut Vec<(usize, Frame)>) {
    for (i, f) in frames.drain(..) {
        if let Some(t) = tracks.get(i) {
            t.push(f);
        }
    }
}

/// RTP datagrams → frames per media (sans IO): payload type → media, reorder buffer, depacketizer.
pub struct RtpReceiver {
    medias: Vec<RtpMedia>,
    /// Datagrams that are not RTP, or of no payload type of the SDP.
    pub errors: u64,
    pub packets: u64,
}

struct RtpMedia {
    payload_type: u8,
    reorder: rtp::reorder::ReorderBuffer,
    count: ReorderCount,
    depacketizer: Box<dyn rtp::depacketize::Depacketizer>,
}

impl RtpReceiver {
    pub fn new(medias: &[Media]) -> RtpReceiver {
        let medias = medias
            .iter()
            .filter_map(|m| m.codecs.first())
            .map(|c| RtpMedia {
                payload_type: c.payload_type,
                reorder: rtp::reorder::ReorderBuffer::new(REORDER_PACKETS),
                count: ReorderCount::default(),
                depacketizer: rtp::depacketize::depacketizer_for(c),
            })
            .collect();
        RtpReceiver { medias, errors: 0, packets: 0 }
    }

    /// Takes one datagram; appends the (media index, frame)s now complete.
    pub fn push(&mut self, datagram: Bytes, out: &mut Vec<(usize, Frame)>) {
        if rtp::rtcp::is_rtcp(&datagram) {
            return;
        }
        let pkt: RtpPacket = match rtp::packet::parse_bytes(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.errors += 1;
                return;
            }
        };
        let Some(i) = self.medias.iter().position(|m| m.payload_type == pkt.payload_type) else {
            self.errors += 1;
            return;
        };
        self.packets += 1;
        let m = &mut self.medias[i];
        m.count.push(pkt.sequence);
        let mut ordered = Vec::new();
        m.reorder.push(pkt, &mut ordered);
        Self::depacketize(i, m, ordered, out);
    }

    fn depacketize(i: usize, m: &mut RtpMedia, ordered: Vec<RtpPacket>, out: &mut Vec<(usize, Frame)>) {
        let mut frames = Vec::new();
        for p in ordered {
            if let Err(e) = m.depacketizer.push(p, &mut frames) {
                tracing::trace!(error = %e, "depacketize");
            }
        }
        out.extend(frames.into_iter().map(|f| (i, f)));
    }

    /// Whether a media has packets waiting for a missing one.
    pub fn buffered(&self) -> bool {
        self.medias.iter().any(|m| m.reorder.buffered() > 0)
    }

    /// Gives up on the missing packets (input stalled) and emits what waited.
    pub fn flush(&mut self, out: &mut Vec<(usize, Frame)>) {
        for (i, m) in self.medias.iter_mut().enumerate() {
            let mut ordered = Vec::new();
            m.reorder.flush(&mut ordered);
            Self::depacketize(i, m, ordered, out);
        }
    }

    pub fn lost(&self) -> u64 {
        self.medias.iter().map(|m| m.reorder.lost()).sum()
    }

    pub fn reordered(&self) -> u64 {
        self.medias.iter().map(|m| m.count.reordered).sum()
    }

    fn publish(&self, stats: &Stats) {
        stats.packets.store(self.packets, Ordering::Relaxed);
        stats.lost.store(self.lost(), Ordering::Relaxed);
        stats.reordered.store(self.reordered(), Ordering::Relaxed);
        stats.errors.store(self.errors, Ordering::Relaxed);
    }
}

impl Source for UdpSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move {
            match &self.target.format {
                Format::Rtp(medias) => Ok(medias.clone()),
                Format::MpegTs => Ok(self.connect_ts().await?.probed.medias()),
            }
        })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        self.run_opened(None, tracks, stop)
    }

    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move {
            match &self.target.format {
                Format::Rtp(medias) => Ok(Opened { medias: medias.clone(), parked: None }),
                Format::MpegTs => {
                    let c = self.connect_ts().await?;
                    let medias = c.probed.medias();
                    let parked = Parked::new(c, |c: Connected| Box::pin(async move { drop(c) }));
                    Ok(Opened { medias, parked: Some(parked) })
                }
            }
        })
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            self.stats.set_sender(None);
            let r = match &self.target.format {
                Format::Rtp(medias) => self.run_rtp(medias, tracks, stop).await,
                Format::MpegTs => self.run_ts(parked.and_then(Parked::take::<Connected>), tracks, stop).await,
            };
            self.stats.set_sender(None);
            r
        })
    }

    fn connection_info(&self) -> Option<ConnectionInfo> {
        let sender = *self.stats.sender.lock().unwrap_or_else(|e| e.into_inner());
        Some(ConnectionInfo {
            remote_addr: sender.map(|s| s.to_string()),
            bytes_recv: self.stats.bytes.load(Ordering::Relaxed),
        })
    }

    fn receive_stats(&self) -> Option<ReceiveStats> {
        let s = &self.stats;
        Some(ReceiveStats {
            packets: s.packets.load(Ordering::Relaxed),
            packets_lost: s.lost.load(Ordering::Relaxed),
            packets_reordered: s.reordered.load(Ordering::Relaxed),
            packets_rejected: s.rejected.load(Ordering::Relaxed),
            packets_in_error: s.errors.load(Ordering::Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::Kind;

    const SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
        m=video 5004 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n\
        m=audio 5004 RTP/AVP 97\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\n\
        a=fmtp:97 streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190\r\n";

    #[test]
    fn parses_urls() {
        let t = Target::parse("udp+mpegts://238.0.0.1:1234?interface=lo&source=10.0.0.5").unwrap();
        assert_eq!(
            t.endpoint,
            Endpoint::Udp {
                addr: "238.0.0.1:1234".parse().unwrap(),
                interface: Some("lo".into()),
                source: Some("10.0.0.5".parse().unwrap())
            }
        );
        assert_eq!(t.format, Format::MpegTs);
        let t = Target::parse("udp://0.0.0.0:5000").unwrap();
        assert!(matches!(t.endpoint, Endpoint::Udp { addr, .. } if addr.port() == 5000));
        let t = Target::parse("unix+mpegts:///tmp/x.sock").unwrap();
        assert_eq!(t.endpoint, Endpoint::Unix("/tmp/x.sock".into()));
        let url = format!("udp+rtp://[::]:5004#sdp={}", sdp_param(SDP));
        let t = Target::parse(&url).unwrap();
        let Format::Rtp(medias) = t.format else { panic!() };
        assert_eq!(medias.len(), 2);
        assert_eq!((medias[0].kind, medias[0].codecs[0].name.as_str()), (Kind::Video, "H264"));
        assert_eq!(medias[1].codecs[0].payload_type, 97);

        let err = |u: &str| Target::parse(u).unwrap_err();
        assert!(err("udp+rtp://0.0.0.0:5004").contains("needs the SDP"));
        assert!(
            err("udp+rtp://0.0.0.0:5004#sdp=garbage").contains("invalid SDP"),
            "{}",
            err("udp+rtp://0.0.0.0:5004#sdp=garbage")
        );
        assert!(err("udp://0.0.0.0:1?interface=eth0").contains("multicast address only"));
        assert!(err("udp://0.0.0.0:1?source=nobody").contains("not an IP address"));
        assert!(err("udp://0.0.0.0:1?foo=1").contains("unknown parameter"));
        assert!(err("udp://camera.local:1").contains("not an IP address"));
        assert!(err("udp://0.0.0.0").contains("no port"));
        assert!(err("unix+mpegts://relative.sock").contains("absolute"));
        assert!(err("udp://0.0.0.0:0").contains("must not be 0"));
    }

    #[test]
    fn sender_filter_keeps_one_sender() {
        let t0 = Instant::now();
        let a: SocketAddr = "10.0.0.1:4000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:4000".parse().unwrap();
        let mut f = SenderFilter::new(None);
        assert!(f.accept(a, t0));
        assert!(!f.accept(b, t0 + Duration::from_millis(500)));
        assert!(f.accept(a, t0 + Duration::from_secs(1)));
        assert!(!f.accept(b, t0 + Duration::from_millis(2900)));
        // `a` silent for the hold time: `b` takes over.
        assert!(f.accept(b, t0 + Duration::from_secs(3)));
        assert_eq!(f.current(), Some(b));
        assert!(!f.accept(a, t0 + Duration::from_secs(3)));

        let mut f = SenderFilter::new(Some("10.0.0.2".parse().unwrap()));
        assert!(!f.accept(a, t0));
        assert!(!f.accept(a, t0 + Duration::from_secs(10)));
        assert!(f.accept(b, t0));
    }

    fn ts_packet(pid: u16, cc: u8) -> [u8; 188] {
        let mut p = [0xffu8; 188];
        p[0] = 0x47;
        p[1] = (pid >> 8) as u8;
        p[2] = pid as u8;
        p[3] = 0x10 | (cc & 0x0f);
        p
    }

    #[test]
    fn ts_continuity_counts_missing_packets() {
        let mut c = TsContinuity::default();
        let mut data = Vec::new();
        for cc in [0u8, 1, 2, 5, 6, 6, 7] {
            data.extend_from_slice(&ts_packet(0x100, cc));
        }
        data.extend_from_slice(&ts_packet(0x101, 3));
        data.extend_from_slice(&ts_packet(0x101, 4));
        c.push(&data);
        assert_eq!(c.lost, 2);
        // Wraparound 15 → 0 is in order.
        let mut c = TsContinuity::default();
        c.push(&[ts_packet(0x100, 14), ts_packet(0x100, 15), ts_packet(0x100, 0)].concat());
        assert_eq!(c.lost, 0);
    }

    fn rtp(pt: u8, seq: u16, ts: u32, marker: bool, payload: &[u8]) -> Bytes {
        let pkt = RtpPacket {
            marker,
            payload_type: pt,
            sequence: seq,
            timestamp: ts,
            ssrc: 7,
            payload: Bytes::copy_from_slice(payload),
        };
        Bytes::from(rtp::packet::serialize(&pkt))
    }

    #[test]
    fn rtp_receiver_reorders_and_counts() {
        let medias = sdp_medias(SDP.as_bytes()).unwrap();
        let mut r = RtpReceiver::new(&medias);
        let mut out = Vec::new();
        // H.264 single NAL units (IDR slices), one per frame, with 102 and 103 swapped and 105 lost.
        let nal = [0x65u8, 0x88, 0x84, 0x00];
        for seq in [100u16, 101, 103, 102, 104, 106, 107] {
            r.push(rtp(96, seq, u32::from(seq) * 3000, true, &nal), &mut out);
        }
        r.push(Bytes::from_static(b"not rtp"), &mut out);
        r.push(rtp(120, 1, 0, true, &nal), &mut out);
        assert_eq!(r.reordered(), 1);
        assert_eq!(r.errors, 2);
        assert!(r.buffered(), "106 and 107 wait for 105");
        r.flush(&mut out);
        assert!(!r.buffered());
        assert_eq!(r.lost(), 1);
        let seqs: Vec<u32> = out
            .iter()
            .map(|(i, f)| {
                assert_eq!(*i, 0);
                f.timestamp / 3000
            })
            .collect();
        assert_eq!(seqs, vec![100, 101, 102, 103, 104, 106, 107]);
    }

    #[test]
    fn fuzz_checks_hold_on_the_seed_and_its_mutations() {
        let seed = include_bytes!("../../fuzz/seeds/udp_datagrams/rtp_and_ts.bin");
        crate::fuzzing::udp_datagrams(seed);
        for i in 0..seed.len() {
            let mut m = seed.to_vec();
            m[i] ^= 0x5a;
            crate::fuzzing::udp_datagrams(&m);
            m.truncate(i);
            crate::fuzzing::udp_datagrams(&m);
        }
    }
}
