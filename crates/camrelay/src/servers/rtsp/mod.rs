//! RTSP server (`rtsp:` section, default `:8554`): readers (DESCRIBE/SETUP/PLAY) and publishers
//! (ANNOUNCE/SETUP/RECORD), over TCP interleaved and UDP unicast, readers also over UDP multicast
//! (`multicast.rs`: one group per stream, one send per packet whatever the number of readers); RTSPS (`rtsp.tls_listen`, MediaMTX's
//! `rtspsAddress` with `rtspEncryption: optional|strict`): the same sessions over TLS (`tls.rs`), the
//! certificate from `tls::server` (reloaded when its files change).

pub mod multicast;
mod session;
mod tls;
pub mod udp;
mod writer;

/// The payload type a track gets in our SDPs (also the RTSP push's ANNOUNCE, `crate::push`).
pub(crate) use session::payload_type_for;

use std::sync::Arc;
use std::time::Duration;

use crate::app::App;
use crate::tls::server::ServerTls;

/// A TLS handshake must finish within this.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    let rtsp = &app.config().rtsp;
    let multicast =
        multicast::Multicast::new(&rtsp.multicast.ip_range, rtsp.multicast.rtp_port, rtsp.multicast.rtcp_port)
            .map_err(|e| {
                std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("rtsp.multicast_ip_range: {e}"))
            })?
            .map(Arc::new);
    Ok(Some(tokio::spawn(accept_loop(app, listener, udp, multicast, None))))
}

/// The RTSPS listener: off unless `servers.rtsps.listen` is set. A certificate that does not load is
/// a startup error naming the setting and file.
pub async fn start_tls(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let settings = app.config().servers.rtsps.clone();
    let names =
        super::Dialected { mediamtx: ("rtspServerCert", "rtspServerKey"), go2rtc: ("rtsp.tls_cert", "rtsp.tls_key") };
    let Some((listener, tls)) = super::bind_tls(&app, "rtsp", "rtsps", &settings, names, &[]).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(accept_loop(app, listener, None, None, Some(tls)))))
}

/// The TLS handshake of an RTSPS connection. A client speaking plain RTSP (its first byte is a
/// method's letter, where TLS sends 22) is refused with a clear reason before rustls sees it.
async fn tls_handshake(
    tls: &ServerTls,
    socket: tokio::net::TcpStream,
) -> Result<tokio_rustls::server::TlsStream<tokio::net::TcpStream>, String> {
    let mut first = [0u8; 1];
    match socket.peek(&mut first).await {
        Ok(0) => return Err("closed before the TLS handshake".into()),
        Ok(_) if first[0].is_ascii_alphabetic() => {
            return Err("the client speaks plain RTSP on the RTSPS port (use rtsp:// on the RTSP port)".into())
        }
        Ok(_) => {}
        Err(e) => return Err(format!("read: {e}")),
    }
    tls.acceptor().accept(socket).await.map_err(|e| format!("TLS handshake failed: {e}"))
}

/// Accepts connections until shutdown, each on its own task (over TLS when `tls` is given).
async fn accept_loop(
    app: Arc<App>,
    listener: tokio::net::TcpListener,
    udp: Option<Arc<udp::UdpPorts>>,
    multicast: Option<Arc<multicast::Multicast>>,
    tls: Option<Arc<ServerTls>>,
) {
    let shutdown = app.shutdown.clone();
    {
        let mut sessions = tokio::task::JoinSet::new();
        let connections = match tls {
            None => super::limits::Connections::new("RTSP", Some("rtsp")),
            Some(_) => super::limits::Connections::new("RTSPS", Some("rtsp")),
        };
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
                            let multicast = multicast.clone();
                            let tls = tls.clone();
                            let hook = app.hooks.connect(if tls.is_some() { "rtspsConn" } else { "rtspConn" }, peer);
                            sessions.spawn(async move {
                                let _hook = hook;
                                match tls {
                                    None => session::serve(app, udp, multicast, socket, peer).await,
                                    Some(tls) => {
                                        let handshake = tokio::select! {
                                            _ = app.shutdown.cancelled() => Err("shutting down".to_string()),
                                            r = tokio::time::timeout(HANDSHAKE_TIMEOUT, tls_handshake(&tls, socket)) => {
                                                r.unwrap_or_else(|_| Err(format!("no TLS handshake within {} s", HANDSHAKE_TIMEOUT.as_secs())))
                                            }
                                        };
                                        match handshake {
                                            Ok(stream) => session::serve_tls(app, stream, peer).await,
                                            Err(e) => tracing::info!(peer = %peer, "rtsps connection refused: {e}"),
                                        }
                                    }
                                }
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
    }
}

#[cfg(test)]
mod tests {
    fn load(yaml: &str) -> Result<crate::config::Config, String> {
        crate::config::load(&[yaml.to_string()], std::path::Path::new("/nonexistent"), &|_| None)
            .map(|l| l.config)
            .map_err(|e| e.to_string())
    }

    fn load_mediamtx(yaml: &str) -> Result<crate::config::Config, String> {
        let dir = std::env::temp_dir().join(format!("camrelay-rtsps-{}-{}", std::process::id(), rand::random::<u32>()));
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
    fn go2rtc_rtsps_keys() {
        let c =
            load(r#"{"rtsp":{"listen":":8554","tls_listen":":8322","tls_cert":"/etc/c.pem","tls_key":"/etc/k.pem"}}"#)
                .unwrap();
        assert_eq!(c.rtsp.listen, ":8554");
        let t = &c.servers.rtsps;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":8322", "/etc/c.pem", "/etc/k.pem"));
        assert_eq!(load("{}").unwrap().servers.rtsps, crate::config::TlsListen::default(), "off unless set");
        let e = load(r#"{"rtsp":{"tls_listen":"nope"}}"#).unwrap_err();
        assert!(e.contains("rtsp.tls_listen"), "{e}");
    }

    #[test]
    fn multicast_keys() {
        let m = |c: &crate::config::Config| {
            (c.rtsp.multicast.ip_range.clone(), c.rtsp.multicast.rtp_port, c.rtsp.multicast.rtcp_port)
        };
        assert_eq!(m(&load("{}").unwrap()), ("224.1.0.0/16".into(), 8002, 8003), "on by default");
        let c = load(
            r#"{"rtsp":{"multicast_ip_range":"239.255.0.0/24","multicast_rtp_port":9002,"multicast_rtcp_port":9003}}"#,
        )
        .unwrap();
        assert_eq!(m(&c), ("239.255.0.0/24".into(), 9002, 9003));
        assert_eq!(m(&load(r#"{"rtsp":{"multicast_ip_range":""}}"#).unwrap()).0, "", "\"\" turns it off");
        let e = load(r#"{"rtsp":{"multicast_ip_range":"10.0.0.0/8"}}"#).unwrap_err();
        assert!(e.contains("rtsp.multicast_ip_range") && e.contains("not a multicast range"), "{e}");
        let e = load(r#"{"rtsp":{"multicast_rtp_port":70000}}"#).unwrap_err();
        assert!(e.contains("rtsp.multicast_rtp_port") && e.contains("65535"), "{e}");

        assert_eq!(m(&load_mediamtx("rtspAddress: :8554\n").unwrap()), ("224.1.0.0/16".into(), 8002, 8003));
        let c =
            load_mediamtx("multicastIPRange: 239.1.2.0/24\nmulticastRTPPort: 7002\nmulticastRTCPPort: 7003\n").unwrap();
        assert_eq!(m(&c), ("239.1.2.0/24".into(), 7002, 7003));
        let c = load_mediamtx("rtspTransports: [udp, tcp]\n").unwrap();
        assert_eq!(m(&c).0, "", "rtspTransports without multicast turns it off");
        let e = load_mediamtx("multicastIPRange: 224.1.0.0\n").unwrap_err();
        assert!(e.contains("multicastIPRange") && e.contains("A.B.C.D/N"), "{e}");
    }

    #[test]
    fn mediamtx_rtsp_encryption() {
        let c = load_mediamtx("rtspAddress: :8554\n").unwrap();
        assert_eq!((c.rtsp.listen.as_str(), c.servers.rtsps.listen.as_str()), (":8554", ""), "\"no\" by default");
        let c = load_mediamtx("rtspEncryption: optional\nrtspServerKey: k.pem\nrtspServerCert: c.pem\n").unwrap();
        assert_eq!(c.rtsp.listen, ":8554");
        let t = &c.servers.rtsps;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":8322", "c.pem", "k.pem"));
        let c = load_mediamtx("rtspEncryption: strict\nrtspsAddress: 127.0.0.1:2000\n").unwrap();
        assert_eq!(c.rtsp.listen, "", "strict: no plain listener");
        let t = &c.servers.rtsps;
        assert_eq!(
            (t.listen.as_str(), t.cert.as_str(), t.key.as_str()),
            ("127.0.0.1:2000", "server.crt", "server.key")
        );
        let c = load_mediamtx("rtsp: false\nrtspEncryption: strict\n").unwrap();
        assert_eq!((c.rtsp.listen.as_str(), c.servers.rtsps.listen.as_str()), ("", ""));
        let e = load_mediamtx("rtspEncryption: maybe\n").unwrap_err();
        assert!(e.contains("rtspEncryption") && e.contains("maybe"), "{e}");
    }
}
