//! Outgoing connections of sources, in one place: TCP (with `TCP_NODELAY`), optionally TLS (verifying
//! the certificate or not), and RTSP tunnelled in a WebSocket (ONVIF's RTSP over WebSocket).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;

/// A byte stream to a remote: plain TCP, TLS, or a tunnel.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// TLS on a dialled connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tls {
    None,
    /// Verify the certificate with the system roots (`https://`, `rtsps://`, `wss://`).
    Verify,
    /// Accept any certificate (`httpx://`, `rtspx://`: cameras with self-signed ones).
    NoVerify,
}

/// An open connection and its TCP endpoints.
pub struct Dialled {
    pub io: Box<dyn Io>,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Connects to `host:port` (a name, an IPv4 address or a bracketed IPv6 one), then does the TLS
/// handshake with `tls_name` as the server name. Each step gets `timeout`.
pub async fn tcp(host: &str, port: u16, tls: Tls, timeout: Duration) -> Result<Dialled, String> {
    tcp_pinned(host, port, tls, None, timeout).await
}

/// [`tcp`], with the server's certificate pinned by its SHA-256 when `pin` is given (instead of
/// `tls`'s check: a self-signed camera).
pub async fn tcp_pinned(
    host: &str,
    port: u16,
    tls: Tls,
    pin: Option<[u8; 32]>,
    timeout: Duration,
) -> Result<Dialled, String> {
    let addr = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let tcp = match tokio::time::timeout(timeout, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err(format!("connect: timed out after {} s", timeout.as_secs())),
    };
    let _ = tcp.set_nodelay(true);
    let local = tcp.local_addr().map_err(|e| format!("connect: {e}"))?;
    let peer = tcp.peer_addr().map_err(|e| format!("connect: {e}"))?;
    if tls == Tls::None {
        return Ok(Dialled { io: Box::new(tcp), local, peer });
    }
    let config = match pin {
        Some(sha256) => crate::tls::pinned_client_config(sha256)?,
        None => crate::tls::client_config(tls == Tls::Verify)?,
    };
    let name = host.trim_start_matches('[').trim_end_matches(']').to_string();
    let name = rustls::pki_types::ServerName::try_from(name).map_err(|e| format!("TLS: bad server name: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(Dialled { io: Box::new(s), local, peer }),
        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
        Err(_) => Err(format!("TLS handshake: timed out after {} s", timeout.as_secs())),
    }
}

/// The parts of a URL after `scheme://`: `[user:pass@]host[:port][/path][?query]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Authority {
    /// `user:pass` as written, percent-decoded.
    pub userinfo: Option<String>,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: Option<u16>,
    /// Path and query, `/` at least.
    pub path: String,
}

/// Splits what follows `scheme://` (the sources' HTTP, WebSocket and tunnel URLs share it).
pub(crate) fn split_authority(rest: &str) -> Result<Authority, String> {
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(rtsp::url::percent_decode(u)), h),
        None => (None, authority),
    };
    let (host, port) = match hostport.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']').ok_or("bad IPv6 host")?;
            (h, after.strip_prefix(':'))
        }
        None => match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        },
    };
    if host.is_empty() {
        return Err("no host in the URL".into());
    }
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
        None => None,
    };
    let path = match path {
        "" => "/".to_string(),
        p if p.starts_with('?') => format!("/{p}"),
        p => p.to_string(),
    };
    Ok(Authority { userinfo, host: host.to_string(), port, path })
}

/// A `Host` header value: IPv6 in brackets, the port only when it is not the scheme's default.
pub(crate) fn host_header(host: &str, port: u16, default_port: u16) -> String {
    let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
    if port == default_port {
        host
    } else {
        format!("{host}:{port}")
    }
}

/// The path a redirect's `Location` names when it is not a full URL: an absolute path as it is, a
/// relative one against the directory of `base` (a path and query).
pub(crate) fn resolve_path(base: &str, location: &str) -> String {
    if location.starts_with('/') {
        return location.to_string();
    }
    let base = base.split('?').next().unwrap_or("/");
    let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
    format!("{}{location}", if dir.is_empty() { "/" } else { dir })
}

/// The subprotocols offered for an RTSP tunnel: ONVIF's name, and `binary` (Axis cameras, websockify).
/// No space after the comma: some servers (websockify) do not trim it.
const TUNNEL_PROTOCOLS: &str = "rtsp.onvif.org,binary";
/// Largest WebSocket message accepted from a tunnel (an interleaved RTP packet is at most 64 KiB).
const MAX_TUNNEL_MESSAGE: usize = 1024 * 1024;
/// Bytes buffered between the tunnel's pump and its user, each way.
const TUNNEL_BUFFER: usize = 256 * 1024;

/// A `ws://` or `wss://` URL: endpoint, request path, and credentials (percent-decoded).
struct WsUrl {
    tls: Tls,
    host: String,
    port: u16,
    path: String,
    credentials: Option<(String, String)>,
}

impl WsUrl {
    fn parse(url: &str) -> Result<WsUrl, String> {
        let (tls, rest) = if let Some(r) = url.strip_prefix("ws://") {
            (Tls::None, r)
        } else if let Some(r) = url.strip_prefix("wss://") {
            (Tls::Verify, r)
        } else {
            return Err("the tunnel URL must start with ws:// or wss://".into());
        };
        let parts = split_authority(rest).map_err(|e| format!("tunnel URL: {e}"))?;
        let credentials = parts.userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (user.to_string(), pass.to_string()),
            None => (u, String::new()),
        });
        let port = parts.port.unwrap_or(if tls == Tls::None { 80 } else { 443 });
        let (host, path) = (parts.host, parts.path);
        Ok(WsUrl { tls, host, port, path, credentials })
    }

    /// The HTTP client's view of this URL.
    fn client(&self) -> crate::http_client::Target {
        crate::http_client::Target {
            tls: self.tls,
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            userinfo: self.credentials.as_ref().map(|(user, pass)| format!("{user}:{pass}")),
        }
    }

    /// The URL without credentials.
    #[cfg(test)]
    fn request_url(&self) -> String {
        let scheme = if self.tls == Tls::None { "ws" } else { "wss" };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{scheme}://{host}:{}{}", self.port, self.path)
    }
}

/// RTSP over WebSocket: opens the tunnel at `url` and returns a byte stream that carries RTSP (and
/// interleaved RTP) in binary messages, both ways. Credentials in the URL go as Basic, or as Digest
/// when the server challenges for it (Axis cameras do): [`crate::http_client::websocket`].
pub async fn websocket_tunnel(url: &str, timeout: Duration) -> Result<Dialled, String> {
    use crate::http_client::{websocket, WsError, WsOptions};
    let target = WsUrl::parse(url)?.client();
    let mut opts = WsOptions {
        protocols: Some(TUNNEL_PROTOCOLS),
        max_message: MAX_TUNNEL_MESSAGE,
        connect_timeout: timeout,
        timeout,
    };
    loop {
        match websocket(&target, &opts).await {
            Ok(d) => return Ok(Dialled { io: Box::new(pump(d.ws)), local: d.local, peer: d.peer }),
            // The server picked no subprotocol: try again offering none.
            Err(WsError::NoSubprotocol) if opts.protocols.is_some() => opts.protocols = None,
            Err(WsError::NoSubprotocol) => return Err("WebSocket tunnel: no subprotocol".into()),
            Err(WsError::Http { status, reason, .. }) => {
                return Err(format!("WebSocket tunnel: HTTP {status} {reason}"))
            }
            Err(WsError::Other(e)) => {
                return Err(match e.strip_prefix("WebSocket: ") {
                    Some(rest) => format!("WebSocket tunnel: {rest}"),
                    None => e,
                })
            }
        }
    }
}

type Ws = crate::http_client::WebSocket;

/// Turns the WebSocket into a byte stream: a task copies binary (and text) messages into one end of a
/// bounded in-memory pipe and the bytes written to it into binary messages. It ends when either side
/// closes; dropping the returned stream closes the tunnel.
fn pump(mut ws: Ws) -> tokio::io::DuplexStream {
    let (ours, mut theirs) = tokio::io::duplex(TUNNEL_BUFFER);
    tokio::spawn(async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                msg = ws.next() => match msg {
                    Some(Ok(tungstenite::Message::Binary(data))) => {
                        if theirs.write_all(&data).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(tungstenite::Message::Text(text))) => {
                        if theirs.write_all(text.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    Some(Ok(tungstenite::Message::Close(_))) | Some(Err(_)) | None => break,
                    // Pings are answered by tungstenite.
                    Some(Ok(_)) => {}
                },
                n = theirs.read(&mut buf) => match n {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if ws.send(tungstenite::Message::binary(buf[..n].to_vec())).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
        let _ = ws.close(None).await;
    });
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_paths_and_host_headers() {
        assert_eq!(resolve_path("/a/b?x=1", "c"), "/a/c");
        assert_eq!(resolve_path("/a/b", "/z"), "/z");
        assert_eq!(resolve_path("", "c"), "/c");
        assert_eq!(host_header("::1", 8080, 80), "[::1]:8080");
        assert_eq!(host_header("cam", 443, 443), "cam");
    }

    #[test]
    fn tunnel_urls() {
        let u = WsUrl::parse("ws://user:p%40ss@192.168.1.123:4567/rtsp-over-websocket").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("192.168.1.123", 4567, "/rtsp-over-websocket"));
        assert_eq!(u.credentials, Some(("user".into(), "p@ss".into())));
        assert_eq!(u.request_url(), "ws://192.168.1.123:4567/rtsp-over-websocket");
        let u = WsUrl::parse("wss://cam.lan/rtspoverwebsocket").unwrap();
        assert_eq!((u.tls, u.port, u.credentials.is_none()), (Tls::Verify, 443, true));
        let u = WsUrl::parse("ws://[::1]:81").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.path.as_str()), ("::1", 81, "/"));
        assert_eq!(u.request_url(), "ws://[::1]:81/");
        let u = WsUrl::parse("ws://[::1]/x").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 80));
        assert_eq!(
            split_authority("u:p%40@h:1?q=1").unwrap(),
            Authority { userinfo: Some("u:p@".into()), host: "h".into(), port: Some(1), path: "/?q=1".into() }
        );
        assert!(WsUrl::parse("http://x/").is_err());
        assert!(WsUrl::parse("ws://h:99999/").is_err());
        assert!(WsUrl::parse("ws:///x").is_err());
    }
}
