//! The shared UDP socket, its demultiplexer and the session registry.

use super::*;

/// Datagrams queued per session before the socket task drops new ones.
pub(super) const SESSION_QUEUE: usize = 256;
/// Remote addresses remembered per session (ICE may try several).
const MAX_ADDRS_PER_SESSION: usize = 8;

/// Binds the UDP socket and runs the demultiplexer until shutdown. A socket that cannot be bound is
/// logged and WebRTC answers `503` (the other servers keep running, as in go2rtc).
pub async fn start(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(addr) = crate::config::bind_address(&app.config.webrtc.listen) else {
        tracing::info!("webrtc disabled (empty listen)");
        return Ok(None);
    };
    let socket = match UdpSocket::bind(&addr).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            tracing::error!("webrtc: cannot listen on {addr}: {e} (WebRTC disabled)");
            return Ok(None);
        }
    };
    let local = socket.local_addr()?;
    // Tests and scripts read this line to find ports chosen with `:0`.
    tracing::info!("webrtc listening on {local}/udp");
    let candidates = host_candidates(local, &app.config.webrtc.candidates);
    let server = server_for(&app);
    let _ = server.net.set(Net { socket: socket.clone(), local, candidates });
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        demux(server.clone(), socket, shutdown).await;
        // Ending the socket task ends every session.
        let sessions: Vec<_> = server.lock().by_id.values().map(|s| s.cancel.clone()).collect();
        for c in sessions {
            c.cancel();
        }
    })))
}

/// The advertised host candidates: the bound address (`127.0.0.1` for all-interfaces binds, so
/// loopback peers connect) and the configured ones (`ip` or `ip:port`; host names are not resolved).
fn host_candidates(local: SocketAddr, configured: &[String]) -> Vec<SocketAddr> {
    let mut out = Vec::new();
    if local.ip().is_unspecified() {
        out.push(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), local.port()));
    } else {
        out.push(local);
    }
    for c in configured {
        let parsed = c
            .parse::<SocketAddr>()
            .ok()
            .or_else(|| c.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, local.port())));
        match parsed {
            Some(a) if !out.contains(&a) => out.push(a),
            Some(_) => {}
            None => tracing::warn!("webrtc: candidate {c:?} is not ip or ip:port (ignored)"),
        }
    }
    out
}

/// The WebRTC state of one `App` (`App::webrtc`): the routes (built before the socket is bound) and the
/// socket task both reach it there.
#[derive(Default)]
pub struct Server {
    pub(super) net: std::sync::OnceLock<Net>,
    pub(super) sessions: Mutex<Sessions>,
}

pub(super) struct Net {
    pub(super) socket: Arc<UdpSocket>,
    pub(super) local: SocketAddr,
    pub(super) candidates: Vec<SocketAddr>,
}

#[derive(Default)]
pub(super) struct Sessions {
    pub(super) by_id: HashMap<String, SessionEntry>,
    pub(super) by_ufrag: HashMap<String, String>,
    pub(super) by_addr: HashMap<SocketAddr, String>,
}

pub(super) struct SessionEntry {
    pub(super) ufrag: String,
    pub(super) tx: mpsc::Sender<Datagram>,
    pub(super) cancel: CancellationToken,
    pub(super) addrs: Vec<SocketAddr>,
}

pub(super) struct Datagram {
    pub(super) source: SocketAddr,
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

    pub(super) fn remove(&self, id: &str) {
        let mut s = self.lock();
        if let Some(e) = s.by_id.remove(id) {
            s.by_ufrag.remove(&e.ufrag);
            for a in &e.addrs {
                s.by_addr.remove(a);
            }
        }
    }

    /// Routes one datagram to its session's queue; unknown senders and full queues drop it.
    fn route(&self, source: SocketAddr, data: &[u8]) {
        let mut s = self.lock();
        let id = match s.by_addr.get(&source) {
            Some(id) => id.clone(),
            None => {
                let Some(ufrag) = stun_local_ufrag(data) else { return };
                let Some(id) = s.by_ufrag.get(ufrag).cloned() else { return };
                let Some(entry) = s.by_id.get_mut(&id) else { return };
                if entry.addrs.len() >= MAX_ADDRS_PER_SESSION {
                    return;
                }
                entry.addrs.push(source);
                s.by_addr.insert(source, id.clone());
                id
            }
        };
        if let Some(entry) = s.by_id.get(&id) {
            let _ = entry.tx.try_send(Datagram { source, data: data.to_vec() });
        }
    }
}

async fn demux(server: Arc<Server>, socket: Arc<UdpSocket>, shutdown: CancellationToken) {
    let mut buf = vec![0u8; 2048];
    loop {
        let r = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = socket.recv_from(&mut buf) => r,
        };
        match r {
            Ok((n, source)) => server.route(source, &buf[..n]),
            // ICMP errors of earlier sends surface here on some systems; the socket stays usable.
            Err(e) => tracing::debug!("webrtc: recv: {e}"),
        }
    }
}

/// The local part of a STUN binding request's USERNAME (`local:remote`), if `data` is one.
fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
    if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != MAGIC {
        return None;
    }
    let len = u16::from_be_bytes([data[2], data[3]]) as usize;
    let attrs = data.get(20..20 + len)?;
    let mut i = 0;
    while i + 4 <= attrs.len() {
        let typ = u16::from_be_bytes([attrs[i], attrs[i + 1]]);
        let alen = u16::from_be_bytes([attrs[i + 2], attrs[i + 3]]) as usize;
        let value = attrs.get(i + 4..i + 4 + alen)?;
        if typ == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split(':').next();
        }
        i += 4 + alen.div_ceil(4) * 4;
    }
    None
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
    if s.by_id.len() >= MAX_SESSIONS {
        return None;
    }
    s.by_ufrag.insert(ufrag.to_string(), id.clone());
    s.by_id
        .insert(id.clone(), SessionEntry { ufrag: ufrag.to_string(), tx, cancel: cancel.clone(), addrs: Vec::new() });
    Some((id, rx))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_username_is_parsed_and_garbage_is_not() {
        // Binding request with USERNAME "abcd:efgh".
        let mut p = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
        p.extend_from_slice(&[0u8; 12]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        p.extend_from_slice(b"abcd:efgh\0\0\0");
        p[3] = 16;
        assert_eq!(stun_local_ufrag(&p), Some("abcd"));
        assert_eq!(stun_local_ufrag(&p[..30]), None);
        assert_eq!(stun_local_ufrag(b"\x80\x60garbage-rtp-packet-xxxxxxxx"), None);
        for n in 0..p.len() {
            let _ = stun_local_ufrag(&p[..n]);
        }
    }

    #[test]
    fn candidates_for_all_interfaces_use_loopback() {
        let c = host_candidates("0.0.0.0:8555".parse().unwrap(), &["192.0.2.1".into(), "bad host".into()]);
        assert_eq!(c, vec!["127.0.0.1:8555".parse().unwrap(), "192.0.2.1:8555".parse().unwrap()]);
    }
}
