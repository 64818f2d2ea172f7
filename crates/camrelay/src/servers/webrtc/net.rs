//! The shared sockets (one UDP socket and one TCP listener on the `webrtc.listen` port), their
//! demultiplexing into sessions, and the session registry.
//!
//! A datagram (or an RFC 4571 frame on a TCP connection) from an address not seen yet is routed by
//! the ICE username of its STUN binding request (`<our ufrag>:<their ufrag>`); later ones by the
//! remote address. Each session owns a bounded queue: when it is full, new packets are dropped.

use super::candidates::{self, LocalCandidate};
use super::stun;
use super::*;
use std::sync::RwLock;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Datagrams queued per session before the socket task drops new ones.
pub(super) const SESSION_QUEUE: usize = 256;
/// Remote addresses remembered per session (ICE may try several).
const MAX_ADDRS_PER_SESSION: usize = 8;
/// Most open ICE-TCP connections (each is a task and a socket).
/// Most open ICE-TCP connections from one IP address.
const MAX_TCP_PER_IP: usize = 16;
/// A TCP connection must bring a STUN request for a known session within this time, and stays open
/// only while packets keep coming (ICE consent checks come every few seconds).
const TCP_IDLE: Duration = Duration::from_secs(15);
/// How long to wait for each STUN server for a `stun:` candidate (and for each DNS lookup).
const STUN_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the candidates are gathered again.
const REGATHER_INTERVAL: Duration = Duration::from_secs(300);

/// Binds the sockets and runs their tasks until shutdown. Sockets that cannot be bound are logged
/// and WebRTC answers `503` (the other servers keep running, as in go2rtc).
pub async fn start(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let config = &app.config().webrtc;
    let (listen, want_udp, want_tcp) = config.listen_transports();
    let Some(addr) = crate::config::bind_address(listen) else {
        tracing::info!("webrtc disabled (empty listen)");
        return Ok(None);
    };
    let (udp, tcp) = match bind(&addr, want_udp, want_tcp).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("webrtc: cannot listen on {addr}: {e} (WebRTC disabled)");
            return Ok(None);
        }
    };
    let local = match (&udp, &tcp) {
        (Some(u), _) => u.local_addr()?,
        (None, Some(t)) => t.local_addr()?,
        (None, None) => return Ok(None),
    };
    // Tests and scripts read these lines to find ports chosen with `:0`.
    if udp.is_some() {
        tracing::info!(module = "webrtc", addr = %format_args!("{local}/udp"), "listen");
    }
    if tcp.is_some() {
        tracing::info!(module = "webrtc", addr = %format_args!("{local}/tcp"), "listen");
    }
    let server = server_for(&app);
    let max_sessions = config.max_sessions.max(1);
    let _ = server.net.set(Net {
        udp: udp.clone(),
        local,
        tcp: tcp.is_some(),
        candidates: RwLock::new(Vec::new()),
        max_sessions,
    });
    let shutdown = app.shutdown.clone();
    let sockets = {
        let server = server.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let udp_task = async {
                if let Some(socket) = udp {
                    demux_udp(&server, socket, &shutdown).await;
                }
            };
            let tcp_task = async {
                if let Some(listener) = tcp {
                    accept_tcp(&server, listener, &shutdown).await;
                }
            };
            tokio::join!(udp_task, tcp_task);
            // Ending the socket tasks ends every session.
            let sessions: Vec<_> = server.lock().by_id.values().map(|s| s.cancel.clone()).collect();
            for c in sessions {
                c.cancel();
            }
        })
    };
    // The first candidates before any offer is answered; then again every few minutes, for dynamic
    // public addresses (stun:), dynamic DNS names and interfaces that change (DHCP, VPNs).
    server.regather(config).await;
    let app_for_refresh = app.clone();
    Ok(Some(tokio::spawn(async move {
        let refresh = async {
            loop {
                tokio::time::sleep(REGATHER_INTERVAL).await;
                server.regather(&app_for_refresh.config().webrtc).await;
            }
        };
        tokio::select! {
            _ = sockets => {}
            _ = shutdown.cancelled() => {}
            _ = refresh => {}
        }
    })))
}

/// Binds UDP and/or TCP on one port. With port 0 the TCP listener takes the port the UDP socket got
/// (retried a few times when that port is taken on TCP).
async fn bind(addr: &str, udp: bool, tcp: bool) -> std::io::Result<(Option<Arc<UdpSocket>>, Option<TcpListener>)> {
    if !udp {
        return Ok((None, Some(TcpListener::bind(addr).await?)));
    }
    let mut last_error = None;
    for _ in 0..8 {
        let socket = UdpSocket::bind(addr).await?;
        if !tcp {
            return Ok((Some(Arc::new(socket)), None));
        }
        match TcpListener::bind(socket.local_addr()?).await {
            Ok(listener) => return Ok((Some(Arc::new(socket)), Some(listener))),
            Err(e) => last_error = Some(e),
        }
        if !addr.ends_with(":0") {
            break;
        }
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no port")))
}

/// The addresses of host-name candidates (a dynamic-DNS name for a forwarded port): addresses of the
/// socket's family.
async fn resolve_host_names(config: &crate::config::WebrtcConfig, local: SocketAddr) -> Vec<(String, Vec<SocketAddr>)> {
    let mut out = Vec::new();
    for (entry, host, port) in candidates::host_name_candidates(config, local.port()) {
        let found = tokio::time::timeout(STUN_TIMEOUT, tokio::net::lookup_host((host.as_str(), port))).await;
        let addrs: Vec<SocketAddr> = match found {
            Ok(Ok(list)) => list.filter(|a| a.is_ipv4() || local.is_ipv6()).collect(),
            Ok(Err(e)) => {
                tracing::warn!("webrtc: candidate {entry:?}: cannot resolve {host}: {e}");
                Vec::new()
            }
            Err(_) => {
                tracing::warn!("webrtc: candidate {entry:?}: resolving {host} took longer than {STUN_TIMEOUT:?}");
                Vec::new()
            }
        };
        out.push((entry, addrs));
    }
    out
}

/// The `stun:` URLs of `webrtc.ice_servers` as `host:port` (default port 3478).
fn stun_servers(config: &crate::config::WebrtcConfig) -> Vec<String> {
    config
        .ice_servers
        .iter()
        .flat_map(|s| &s.urls)
        .filter_map(|u| u.strip_prefix("stun:"))
        .map(|h| h.split('?').next().unwrap_or(h))
        .map(|h| {
            if h.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                h.to_string()
            } else {
                format!("{h}:3478")
            }
        })
        .collect()
}

/// A binding request waiting for its answer: (STUN server, transaction id, where the answer goes).
type StunWaiter = (SocketAddr, [u8; 12], tokio::sync::oneshot::Sender<SocketAddr>);
/// The WebRTC state of one `App` (`App::webrtc`): the routes (built before the sockets are bound) and
/// the socket tasks both reach it there.
#[derive(Default)]
pub struct Server {
    pub(super) net: std::sync::OnceLock<Net>,
    pub(super) sessions: Mutex<Sessions>,
    /// The writer queue of every open ICE-TCP connection, by remote address.
    tcp: Mutex<HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>>,
    /// A STUN query of ours in flight: the UDP socket's task hands it the server's answer.
    stun_waiter: Mutex<Option<StunWaiter>>,
}

pub(super) struct Net {
    udp: Option<Arc<UdpSocket>>,
    pub(super) local: SocketAddr,
    tcp: bool,
    /// What offers are answered with; re-gathered every [`REGATHER_INTERVAL`].
    candidates: RwLock<Vec<LocalCandidate>>,
    /// `webrtc.max_sessions`: sessions beyond it are refused; twice as many ICE-TCP connections.
    pub(super) max_sessions: usize,
}

impl Net {
    pub(super) fn candidates(&self) -> Vec<LocalCandidate> {
        self.candidates.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[derive(Default)]
pub(super) struct Sessions {
    pub(super) by_id: HashMap<String, SessionEntry>,
    by_ufrag: HashMap<String, String>,
    by_addr: HashMap<(bool, SocketAddr), String>,
}

pub(super) struct SessionEntry {
    ufrag: String,
    tx: mpsc::Sender<Datagram>,
    pub(super) cancel: CancellationToken,
    /// (is TCP, remote address)
    addrs: Vec<(bool, SocketAddr)>,
}

/// A packet from a peer: over UDP, or one RFC 4571 frame of an ICE-TCP connection (whose local
/// address is known exactly).
pub(super) struct Datagram {
    pub(super) source: SocketAddr,
    pub(super) tcp: Option<SocketAddr>,
    pub(super) data: Vec<u8>,
}

/// The WebRTC state of one `App` (its field `webrtc`): shared by the HTTP handlers and the socket task.
pub(super) fn server_for(app: &Arc<App>) -> Arc<Server> {
    app.webrtc.clone()
}

impl Server {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Sessions> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The session limit (`webrtc.max_sessions`; sessions exist only once the sockets are bound).
    pub(super) fn max_sessions(&self) -> usize {
        self.net.get().map_or(1, |n| n.max_sessions)
    }

    fn tcp_lock(&self) -> std::sync::MutexGuard<'_, HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>> {
        self.tcp.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Gathers the candidates again (interfaces, host names, `stun:`) and logs them when they change.
    async fn regather(&self, config: &crate::config::WebrtcConfig) {
        let Some(net) = self.net.get() else { return };
        let stun = self.stun_addresses(config).await;
        let interfaces = if net.local.ip().is_unspecified() { candidates::interface_addrs() } else { Vec::new() };
        let resolved = resolve_host_names(config, net.local).await;
        let gathered = candidates::gather(&candidates::Inputs {
            config,
            local: net.local,
            udp: net.udp.is_some(),
            tcp: net.tcp,
            interfaces: &interfaces,
            stun: &stun,
            resolved: &resolved,
        });
        let mut current = net.candidates.write().unwrap_or_else(|e| e.into_inner());
        if *current != gathered {
            let list: Vec<String> =
                gathered.iter().map(|c| format!("{}/{}", c.addr, if c.tcp { "tcp" } else { "udp" })).collect();
            // Tests and scripts read this line.
            tracing::info!("webrtc candidates: {}", list.join(" "));
            *current = gathered;
        }
    }

    /// Our public address as the configured STUN servers see the UDP socket, once per `stun:`
    /// candidate (all alike): asked only when such a candidate is configured — the server contacts
    /// nobody otherwise.
    async fn stun_addresses(&self, config: &crate::config::WebrtcConfig) -> Vec<IpAddr> {
        let wanted = config.candidates.iter().filter(|c| c.starts_with("stun:")).count();
        if wanted == 0 {
            return Vec::new();
        }
        let servers = stun_servers(config);
        if servers.is_empty() {
            tracing::warn!("webrtc: stun: candidates need a stun: URL in webrtc.ice_servers (none configured)");
            return Vec::new();
        }
        for target in servers {
            match self.stun_query(&target).await {
                Ok(addr) => {
                    tracing::debug!("webrtc: STUN server {target} sees us as {}", addr.ip());
                    return vec![addr.ip(); wanted];
                }
                Err(e) => tracing::warn!("webrtc: STUN server {target}: {e}"),
            }
        }
        Vec::new()
    }

    /// One binding request to `target`, retransmitted (RFC 8489: 250 ms, doubling) for up to
    /// [`STUN_TIMEOUT`]; the UDP socket's task passes the answer back.
    async fn stun_query(&self, target: &str) -> Result<SocketAddr, String> {
        let Some(socket) = self.net.get().and_then(|n| n.udp.clone()) else { return Err("no UDP socket".into()) };
        let v4 = socket.local_addr().map(|l| l.is_ipv4()).unwrap_or(true);
        let lookup = tokio::time::timeout(STUN_TIMEOUT, tokio::net::lookup_host(target)).await;
        let server = match lookup {
            Ok(Ok(mut list)) => list.find(|a| a.is_ipv4() == v4).ok_or("no address of the socket's family")?,
            Ok(Err(e)) => return Err(format!("cannot resolve: {e}")),
            Err(_) => return Err("resolving took too long".into()),
        };
        let id: [u8; 12] = rand::random();
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        *self.stun_waiter.lock().unwrap_or_else(|e| e.into_inner()) = Some((server, id, tx));
        let request = stun::binding_request(id);
        let deadline = tokio::time::Instant::now() + STUN_TIMEOUT;
        let mut rto = Duration::from_millis(250);
        let answer = loop {
            if let Err(e) = socket.send_to(&request, server).await {
                break Err(format!("send: {e}"));
            }
            let wait = (tokio::time::Instant::now() + rto).min(deadline);
            match tokio::time::timeout_at(wait, &mut rx).await {
                Ok(Ok(addr)) => break Ok(addr),
                Ok(Err(_)) => break Err("query replaced".into()),
                Err(_) if wait >= deadline => break Err(format!("no answer in {STUN_TIMEOUT:?}")),
                Err(_) => rto *= 2,
            }
        };
        let mut waiter = self.stun_waiter.lock().unwrap_or_else(|e| e.into_inner());
        if waiter.as_ref().is_some_and(|w| w.1 == id) {
            *waiter = None;
        }
        answer
    }

    /// Whether a datagram is the answer to our STUN query (handed over, then not routed to sessions).
    fn stun_answer(&self, source: SocketAddr, data: &[u8]) -> bool {
        let mut waiter = self.stun_waiter.lock().unwrap_or_else(|e| e.into_inner());
        let Some((server, id, _)) = waiter.as_ref() else { return false };
        if *server != source {
            return false;
        }
        let Some(addr) = stun::mapped_address(data, id) else { return false };
        if let Some((_, _, tx)) = waiter.take() {
            let _ = tx.send(addr);
        }
        true
    }

    /// Forgets a session; its TCP connections close.
    pub(super) fn remove(&self, id: &str) {
        let removed = {
            let mut s = self.lock();
            let Some(e) = s.by_id.remove(id) else { return };
            s.by_ufrag.remove(&e.ufrag);
            for a in &e.addrs {
                // Unless another session took the address over since.
                if s.by_addr.get(a).is_some_and(|owner| owner == id) {
                    s.by_addr.remove(a);
                }
            }
            e.addrs
        };
        let mut tcp = self.tcp_lock();
        for (_, addr) in removed.iter().filter(|(is_tcp, _)| *is_tcp) {
            tcp.remove(addr);
        }
    }

    /// Routes one packet to its session's queue; `false` for unknown senders. Full queues drop it.
    /// A STUN binding request goes by its ICE username even from a known address: a peer may run
    /// several connections over one socket (ICE allows it), and the address then moves with it.
    fn route(&self, d: Datagram) -> bool {
        let key = (d.tcp.is_some(), d.source);
        let mut s = self.lock();
        let by_stun = stun::local_ufrag(&d.data).and_then(|u| s.by_ufrag.get(u).cloned());
        let id = match (by_stun, s.by_addr.get(&key)) {
            (Some(id), Some(known)) if *known == id => id,
            (Some(id), _) => {
                let Some(entry) = s.by_id.get_mut(&id) else { return false };
                if !entry.addrs.contains(&key) {
                    if entry.addrs.len() >= MAX_ADDRS_PER_SESSION {
                        return false;
                    }
                    entry.addrs.push(key);
                }
                s.by_addr.insert(key, id.clone());
                id
            }
            (None, Some(known)) => known.clone(),
            (None, None) => return false,
        };
        match s.by_id.get(&id) {
            Some(entry) => {
                let _ = entry.tx.try_send(d);
                true
            }
            None => false,
        }
    }

    /// Sends what str0m transmits: a datagram, or a framed packet on the peer's TCP connection.
    pub(super) async fn transmit(&self, t: &str0m::net::Transmit) {
        match t.proto {
            Protocol::Udp => {
                let Some(socket) = self.net.get().and_then(|n| n.udp.as_ref()) else { return };
                if let Err(e) = socket.send_to(&t.contents, t.destination).await {
                    tracing::debug!("webrtc send to {}: {e}", t.destination);
                }
            }
            _ => {
                let Ok(len) = u16::try_from(t.contents.len()) else { return };
                let mut frame = Vec::with_capacity(2 + t.contents.len());
                frame.extend_from_slice(&len.to_be_bytes());
                frame.extend_from_slice(&t.contents);
                let tx = self.tcp_lock().get(&t.destination).cloned();
                // A full queue (the peer reads too slowly) drops the packet, as UDP would.
                if let Some(tx) = tx {
                    let _ = tx.try_send(frame);
                }
            }
        }
    }
}

async fn demux_udp(server: &Server, socket: Arc<UdpSocket>, shutdown: &CancellationToken) {
    let mut buf = vec![0u8; 2048];
    loop {
        let r = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match r {
            Ok((n, source)) => {
                if !server.stun_answer(source, &buf[..n]) {
                    server.route(Datagram { source, tcp: None, data: buf[..n].to_vec() });
                }
            }
            // ICMP errors of earlier sends surface here on some systems; the socket stays usable.
            Err(e) => tracing::debug!("webrtc: recv: {e}"),
        }
    }
}

async fn accept_tcp(server: &Arc<Server>, listener: TcpListener, shutdown: &CancellationToken) {
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors, say: wait instead of spinning.
                    tracing::debug!("webrtc: tcp accept: {e}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        let (tx, rx) = mpsc::channel(SESSION_QUEUE);
        {
            let mut tcp = server.tcp_lock();
            let from_ip = tcp.keys().filter(|a| a.ip() == remote.ip()).count();
            if tcp.len() >= 2 * server.max_sessions() || from_ip >= MAX_TCP_PER_IP {
                tracing::debug!("webrtc: too many TCP connections, {remote} refused");
                continue;
            }
            tcp.insert(remote, tx);
        }
        let server = server.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tcp_connection(&server, stream, remote, rx, &shutdown).await;
            server.tcp_lock().remove(&remote);
        });
    }
}

/// One ICE-TCP connection: RFC 4571 frames in (routed like datagrams), str0m's packets out. Ends when
/// the peer closes or goes quiet, when its session ends (the writer queue closes), or at shutdown.
async fn tcp_connection(
    server: &Server,
    stream: TcpStream,
    remote: SocketAddr,
    mut out: mpsc::Receiver<Vec<u8>>,
    shutdown: &CancellationToken,
) {
    let _ = stream.set_nodelay(true);
    let Ok(local) = stream.local_addr() else { return };
    let (mut rd, mut wr) = stream.into_split();
    let writer = async move {
        while let Some(frame) = out.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
        }
    };
    let reader = async {
        let mut buf = vec![0u8; u16::MAX as usize];
        // Only packets that reach a session keep the connection open: a peer must send a STUN request
        // of a live session within TCP_IDLE, and keep sending.
        let mut deadline = tokio::time::Instant::now() + TCP_IDLE;
        loop {
            let frame = async {
                let len = rd.read_u16().await? as usize;
                rd.read_exact(&mut buf[..len]).await?;
                std::io::Result::Ok(len)
            };
            let len = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = tokio::time::timeout_at(deadline, frame) => match r {
                    Ok(Ok(len)) => len,
                    _ => return,
                },
            };
            if len == 0 {
                continue;
            }
            if !server.route(Datagram { source: remote, tcp: Some(local), data: buf[..len].to_vec() }) {
                tracing::debug!("webrtc: tcp {remote}: not a session's peer, closing");
                return;
            }
            deadline = tokio::time::Instant::now() + TCP_IDLE;
        }
    };
    tokio::select! {
        _ = reader => {}
        _ = writer => {}
    }
}

/// Registers a new session's ICE username and queue; `None` when the session limit is reached.
pub(super) fn register(
    server: &Server,
    ufrag: &str,
    cancel: &CancellationToken,
) -> Option<(String, mpsc::Receiver<Datagram>)> {
    let id = format!("{:016x}", rand::random::<u64>());
    let (tx, rx) = mpsc::channel(SESSION_QUEUE);
    let mut s = server.lock();
    if s.by_id.len() >= server.max_sessions() {
        return None;
    }
    s.by_ufrag.insert(ufrag.to_string(), id.clone());
    s.by_id
        .insert(id.clone(), SessionEntry { ufrag: ufrag.to_string(), tx, cancel: cancel.clone(), addrs: Vec::new() });
    Some((id, rx))
}
