//! Servers: one module per protocol, each owning its config section and routes.

pub mod api;
pub mod hls;
pub mod http_stream;
pub mod ingest;
pub mod limits;
pub mod mediamtx_urls;
pub mod metrics;
pub mod mjpeg;
pub mod rtmp;
pub mod rtsp;
pub mod srt;
pub mod ui;
pub mod v3;
pub mod webrtc;
pub mod ws;

use crate::app::App;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The HTTP answer (WHIP, HTTP ingest) to a publisher the hub did not take.
pub fn publish_refused(e: crate::hub::PublishError) -> axum::response::Response {
    use axum::http::StatusCode;
    let status = match e {
        crate::hub::PublishError::NotFound(_) | crate::hub::PublishError::NoRule(_) => StatusCode::NOT_FOUND,
        crate::hub::PublishError::StreamFull { .. } | crate::hub::PublishError::Busy(_) => StatusCode::CONFLICT,
        crate::hub::PublishError::HasSource(_) => StatusCode::BAD_REQUEST,
        crate::hub::PublishError::ServerFull { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    api::error(status, e.to_string())
}

/// go2rtc exempts loopback clients from auth unless the config asks otherwise.
pub fn is_loopback(addr: &SocketAddr) -> bool {
    match addr.ip() {
        IpAddr::V4(ip) => ip.is_loopback(),
        IpAddr::V6(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// Binds a TCP listener for a `listen` value; `None` when the server is disabled (`listen: ""`).
pub async fn bind_tcp(what: &str, listen: &str) -> std::io::Result<Option<tokio::net::TcpListener>> {
    bind(what, listen, false).await
}

/// [`bind_tcp`] for a TLS listener: logged as `INF [rtmp] listen addr=127.0.0.1:1936 tls`.
pub async fn bind_tcp_tls(what: &str, listen: &str) -> std::io::Result<Option<tokio::net::TcpListener>> {
    bind(what, listen, true).await
}

/// A TLS server's certificate and listener (`module`'s `settings.listen`; `None` when it is off), the
/// certificate watched for renewals on disk until shutdown. `names` are the certificate and key settings
/// that errors cite: MediaMTX's in a MediaMTX file, camrelay's (go2rtc-style) otherwise; `label`
/// starts the error (`rtsps: ...`). A certificate that does not load is a startup error.
pub async fn bind_tls(
    app: &App,
    module: &'static str,
    label: &str,
    settings: &crate::config::TlsListen,
    names: Dialected<(&'static str, &'static str)>,
    alpn: &[&[u8]],
) -> std::io::Result<Option<(tokio::net::TcpListener, Arc<crate::tls::server::ServerTls>)>> {
    use crate::tls::server::{PemSetting, ServerTls};
    if crate::config::bind_address(&settings.listen).is_none() {
        return Ok(None);
    }
    let (cert, key) = match app.config().dialect {
        crate::config::Dialect::Mediamtx => names.mediamtx,
        crate::config::Dialect::Go2rtc => names.go2rtc,
    };
    let (mut cert, mut key) = (PemSetting::new(cert, &settings.cert), PemSetting::new(key, &settings.key));
    let invalid = |e: String| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{label}: {e}"));
    if settings.self_signed {
        crate::tls::server::make_self_signed(module, &mut cert, &mut key).map_err(invalid)?;
    }
    let tls = ServerTls::load(module, cert, key, alpn).map_err(invalid)?;
    let Some(listener) = bind_tcp_tls(module, &settings.listen).await? else {
        return Ok(None);
    };
    tls.watch(app.shutdown.clone());
    Ok(Some((listener, tls)))
}

/// One value per config dialect (the setting names of [`bind_tls`]).
pub struct Dialected<T> {
    pub mediamtx: T,
    pub go2rtc: T,
}

async fn bind(what: &str, listen: &str, tls: bool) -> std::io::Result<Option<tokio::net::TcpListener>> {
    let Some(addr) = crate::config::bind_address(listen) else {
        tracing::debug!(module = what, "disabled (empty listen)");
        return Ok(None);
    };
    match tokio::net::TcpListener::bind(&addr).await {
        Ok(l) => {
            let local = l.local_addr()?;
            // go2rtc's line (`INF [api] listen addr=127.0.0.1:1984`): Home Assistant waits for it, and
            // tests and scripts read it to find ports chosen with `:0`.
            if tls {
                tracing::info!(module = what, addr = %format_args!("{local} tls"), "listen");
            } else {
                tracing::info!(module = what, addr = %local, "listen");
            }
            Ok(Some(l))
        }
        Err(e) => Err(std::io::Error::new(e.kind(), format!("{what}: cannot listen on {addr}: {e}"))),
    }
}
