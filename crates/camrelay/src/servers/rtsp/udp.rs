//! The UDP side of the RTSP server: one shared RTP socket and one RTCP socket (like MediaMTX's
//! `rtpAddress`/`rtcpAddress`), with incoming packets routed to the publishing session by source address.

use bytes::Bytes;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

/// A datagram for a session: which of our sockets got it (true = RTCP) and its bytes.
pub struct Datagram {
    pub rtcp: bool,
    pub from: SocketAddr,
    pub data: Bytes,
}

pub struct UdpPorts {
    pub rtp: Arc<UdpSocket>,
    pub rtcp: Arc<UdpSocket>,
    routes: Mutex<HashMap<SocketAddr, mpsc::Sender<Datagram>>>,
}

impl UdpPorts {
    pub async fn bind(rtp_listen: &str, rtcp_listen: &str) -> std::io::Result<Option<UdpPorts>> {
        let (Some(rtp_addr), Some(rtcp_addr)) =
            (crate::config::bind_address(rtp_listen), crate::config::bind_address(rtcp_listen))
        else {
            return Ok(None);
        };
        let rtp = UdpSocket::bind(&rtp_addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("RTP port {rtp_addr}: {e}")))?;
        let rtcp = UdpSocket::bind(&rtcp_addr)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("RTCP port {rtcp_addr}: {e}")))?;
        tracing::info!(module = "rtsp", rtp = %rtp.local_addr()?, rtcp = %rtcp.local_addr()?, "listen udp");
        Ok(Some(UdpPorts { rtp: Arc::new(rtp), rtcp: Arc::new(rtcp), routes: Mutex::default() }))
    }

    pub fn ports(&self) -> (u16, u16) {
        let p = |s: &UdpSocket| s.local_addr().map(|a| a.port()).unwrap_or(0);
        (p(&self.rtp), p(&self.rtcp))
    }

    /// Starts the receive loops; they end with the process (the sockets live as long as the server).
    pub fn spawn_receivers(self: &Arc<Self>) {
        for rtcp in [false, true] {
            let this = self.clone();
            tokio::spawn(async move {
                let socket = if rtcp { this.rtcp.clone() } else { this.rtp.clone() };
                let mut buf = vec![0u8; 65536];
                loop {
                    let (n, from) = match socket.recv_from(&mut buf).await {
                        Ok(v) => v,
                        // ICMP port unreachable from a reader that went away surfaces here; keep going.
                        Err(_) => continue,
                    };
                    let route = this.routes.lock().unwrap_or_else(|e| e.into_inner()).get(&from).cloned();
                    if let Some(tx) = route {
                        // A full session queue drops the datagram: UDP may lose packets anyway.
                        let _ = tx.try_send(Datagram { rtcp, from, data: Bytes::copy_from_slice(&buf[..n]) });
                    }
                }
            });
        }
    }

    /// Routes datagrams from `from` to a session until [`UdpPorts::unroute`].
    pub fn route(&self, from: SocketAddr, tx: mpsc::Sender<Datagram>) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).insert(from, tx);
    }

    pub fn unroute(&self, from: &SocketAddr) {
        self.routes.lock().unwrap_or_else(|e| e.into_inner()).remove(from);
    }
}
