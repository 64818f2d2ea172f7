//! RTSP server (`rtsp:` section, default `:8554`): readers (DESCRIBE/SETUP/PLAY) and publishers
//! (ANNOUNCE/SETUP/RECORD), over TCP interleaved and UDP unicast.

mod session;
pub mod udp;
mod writer;

/// The payload type a track gets in our SDPs (also the RTSP push's ANNOUNCE, `crate::push`).
pub(crate) use session::payload_type_for;

use std::sync::Arc;

use crate::app::App;

pub async fn start(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listener) = super::bind_tcp("rtsp", &app.config().rtsp.listen).await? else {
        return Ok(None);
    };
    if let Ok(local) = listener.local_addr() {
        // Children of exec:/ffmpeg: sources publish back to us over loopback.
        let host = match local.ip() {
            ip if ip.is_unspecified() && local.is_ipv4() => "127.0.0.1".to_string(),
            ip if ip.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        };
        app.publishers.set_base_url(format!("rtsp://{host}:{}", local.port()));
    }
    // UDP transport is optional: a busy port disables it with a warning instead of failing startup.
    let udp = match udp::UdpPorts::bind(&app.config().rtsp.rtp_listen, &app.config().rtsp.rtcp_listen).await {
        Ok(u) => u.map(Arc::new),
        Err(e) => {
            tracing::warn!("rtsp: UDP transport disabled: {e}");
            None
        }
    };
    if let Some(u) = &udp {
        u.spawn_receivers();
    }
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let mut sessions = tokio::task::JoinSet::new();
        let connections = super::limits::Connections::new("RTSP", Some("rtsp"));
        let (max_total, max_per_ip) = (app.config().rtsp.max_connections, app.config().rtsp.max_connections_per_ip);
        // Refusals are logged at most every 10 s (a flood would flood the log too).
        let mut refused = 0u64;
        let mut last_warning: Option<std::time::Instant> = None;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = listener.accept() => match accepted {
                    Ok((socket, peer)) => match connections.admit(peer.ip(), max_total, max_per_ip) {
                        Ok(slot) => {
                            let _ = socket.set_nodelay(true);
                            let app = app.clone();
                            let udp = udp.clone();
                            let hook = app.hooks.connect("rtspConn", peer);
                            sessions.spawn(async move {
                                let _hook = hook;
                                session::serve(app, udp, socket, peer).await;
                                drop(slot);
                            });
                        }
                        Err(why) => {
                            drop(socket);
                            refused += 1;
                            if last_warning.is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10)) {
                                tracing::warn!("rtsp: connection from {peer} refused: {why} ({refused} refused since the last warning)");
                                refused = 0;
                                last_warning = Some(std::time::Instant::now());
                            }
                        }
                    },
                    Err(e) => {
                        tracing::warn!("rtsp: accept failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
            }
        }
        // Sessions watch the same token and close their connections; wait for them briefly.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            while sessions.join_next().await.is_some() {}
        })
        .await;
    })))
}
