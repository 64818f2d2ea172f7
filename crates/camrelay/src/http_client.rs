//! The outbound HTTP client of sources, in one place (beside `dial.rs`, which opens the TCP/TLS
//! connections): HTTP/1.1 requests for the HTTP source (`http://`, `https://`, `httpx://`) and WHEP,
//! and the WebSocket handshakes of `webrtc:ws://` signalling and the RTSP-over-WebSocket tunnel.
//!
//! - Credentials in the URL go as Basic up front (as go2rtc); a `401` with a Digest challenge is
//!   answered once (and once more for a stale nonce) on a new connection.
//! - Redirects: a `GET` follows any 3xx with a `Location`; other methods only `307`/`308` (they keep
//!   the method and body). Credentials, and request headers that carry secrets, go only to the URL's
//!   own host and port.
//! - Bounds: connect and response timeouts, the response head (64 KiB, 100 headers), bodies read
//!   with [`read_body`] up to a caller's limit, WebSocket messages up to a caller's limit.
//! - Errors are [`SourceError`]s: network (connect, TLS, resets, timeouts) or protocol (not HTTP,
//!   too many redirects, a body too large); callers judge the status (401/403: authentication).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Method, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rtsp::auth::Challenge;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_tungstenite::tungstenite;

use crate::dial::{self, Io, Tls};
use crate::hub::SourceError;

/// The `User-Agent` of every request.
pub const USER_AGENT: &str = concat!("camrelay/", env!("CARGO_PKG_VERSION"));
/// Largest response head (status line and headers) read.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most response headers accepted.
pub const MAX_HEADERS: usize = 100;

/// Where a request goes: endpoint, TLS, path and query, credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub tls: Tls,
    /// Without brackets for IPv6.
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
    /// `user:pass`, percent-decoded.
    pub userinfo: Option<String>,
}

impl Target {
    /// A target from what follows `scheme://` (`[user:pass@]host[:port][/path][?query]`).
    pub fn from_authority(tls: Tls, rest: &str) -> Result<Target, String> {
        let dial::Authority { userinfo, host, port, path } = dial::split_authority(rest)?;
        let port = port.unwrap_or(if tls == Tls::None { 80 } else { 443 });
        Ok(Target { tls, host, port, path, userinfo })
    }

    fn default_port(&self) -> u16 {
        if self.tls == Tls::None {
            80
        } else {
            443
        }
    }

    /// The `Host` header value.
    pub fn host_header(&self) -> String {
        dial::host_header(&self.host, self.port, self.default_port())
    }

    /// The same scheme, host and port.
    pub fn same_origin(&self, other: &Target) -> bool {
        (self.tls == Tls::None) == (other.tls == Tls::None) && self.host == other.host && self.port == other.port
    }

    /// User name and password (empty when the URL has none).
    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.userinfo.as_deref().map(|u| u.split_once(':').unwrap_or((u, "")))
    }

    /// The `Authorization` value of a request to this target: Basic, or Digest answering `digest`
    /// (`nc`: requests made with its nonce, from 1). `None` without credentials.
    pub fn authorization(&self, method: &str, digest: Option<(&Challenge, u32)>) -> Option<String> {
        let (user, pass) = self.credentials()?;
        Some(match digest {
            Some((challenge, nc)) => {
                let cnonce = format!("{:016x}", rand::random::<u64>());
                rtsp::auth::authorization_with_cnonce(method, &self.path, user, pass, challenge, nc, &cnonce)
            }
            None => {
                let basic = Challenge::Basic { realm: String::new() };
                rtsp::auth::authorization_with_cnonce(method, &self.path, user, pass, &basic, 1, "")
            }
        })
    }

    /// The target of a redirect's `Location`: a full `http`/`https`/`httpx` URL, `//host/...`, an
    /// absolute or a relative path. `https` keeps not verifying certificates after `httpx`.
    /// Credentials follow only to the same host and port.
    pub fn redirect(&self, location: &str) -> Result<Target, String> {
        let mut next = if let Some((scheme, rest)) = location.split_once("://") {
            let tls = match scheme.to_ascii_lowercase().as_str() {
                "http" => Tls::None,
                "https" if self.tls == Tls::NoVerify => Tls::NoVerify,
                "https" => Tls::Verify,
                "httpx" => Tls::NoVerify,
                other => return Err(format!("redirect to {other}://")),
            };
            Target::from_authority(tls, rest)?
        } else if let Some(rest) = location.strip_prefix("//") {
            Target::from_authority(self.tls, rest)?
        } else {
            Target { path: dial::resolve_path(&self.path, location), ..self.clone() }
        };
        if next.userinfo.is_none() && next.host == self.host && next.port == self.port {
            next.userinfo = self.userinfo.clone();
        }
        Ok(next)
    }
}

/// Timeouts and redirects of a request.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    /// TCP connect and TLS handshake, each.
    pub connect_timeout: Duration,
    /// From sending the request to its response head.
    pub response_timeout: Duration,
    pub max_redirects: usize,
}

/// An HTTP/1.1 connection: hyper's request sender and its connection task (aborted on drop). It
/// remembers the server's Digest challenge once it asked for one.
pub struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    task: tokio::task::JoinHandle<()>,
    target: Target,
    local: SocketAddr,
    /// The challenge and the requests made with its nonce (boxed: a connection is kept in bodies).
    digest: Option<Box<(Challenge, u32)>>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Conn {
    pub async fn open(target: &Target, opts: &Options) -> Result<Conn, SourceError> {
        Self::open_pinned(target, opts, None).await
    }

    /// [`Conn::open`] with the server's certificate pinned by its SHA-256 (MediaMTX's
    /// `authHTTPFingerprint`, `authJWTJWKSFingerprint`: a self-signed auth server).
    pub async fn open_pinned(target: &Target, opts: &Options, pin: Option<[u8; 32]>) -> Result<Conn, SourceError> {
        let d = dial::tcp_pinned(&target.host, target.port, target.tls, pin, opts.connect_timeout)
            .await
            .map_err(SourceError::network)?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS)
            // `Authorization`, not `authorization`: as Go's client (go2rtc) writes them; some cameras care.
            .title_case_headers(true)
            .handshake(TokioIo::new(d.io))
            .await
            .map_err(hyper_error)?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Conn { sender, task, target: target.clone(), local: d.local, digest: None })
    }

    /// The target of this connection's requests (after redirects, the last one).
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The local address of the TCP connection.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// The server's Digest challenge, once it sent one.
    pub fn digest(&self) -> Option<&Challenge> {
        self.digest.as_deref().map(|(c, _)| c)
    }

    /// False once the server closed the connection.
    pub fn reusable(&self) -> bool {
        !self.sender.is_closed()
    }

    /// Sends one request to the connection's target and waits for the response head.
    pub async fn send(
        &mut self,
        method: &Method,
        headers: &[(String, String)],
        body: Bytes,
        opts: &Options,
    ) -> Result<Response<Incoming>, SourceError> {
        let t = &self.target;
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(t.path.as_str())
            .header(hyper::header::HOST, t.host_header())
            .header(hyper::header::USER_AGENT, USER_AGENT);
        let digest = self.digest.as_deref_mut().map(|(c, nc)| {
            *nc += 1;
            (&*c, *nc)
        });
        if let Some(value) = t.authorization(method.as_str(), digest) {
            req = req.header(hyper::header::AUTHORIZATION, value);
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Full::new(body)).map_err(|e| SourceError::other(format!("request: {e}")))?;
        tokio::time::timeout(opts.response_timeout, async {
            self.sender.ready().await.map_err(hyper_error)?;
            self.sender.send_request(req).await.map_err(hyper_error)
        })
        .await
        .map_err(|_| SourceError::network(format!("no response within {} s", opts.response_timeout.as_secs())))?
    }
}

/// A failed exchange: bytes that are not HTTP are the server's fault, the rest the connection's.
fn hyper_error(e: hyper::Error) -> SourceError {
    if e.is_parse() || e.is_parse_status() || e.is_parse_too_large() {
        SourceError::protocol(format!("HTTP: {e}"))
    } else {
        SourceError::network(format!("HTTP: {e}"))
    }
}

/// The Digest challenge of a `401`, if it has one.
fn digest_challenge(headers: &hyper::HeaderMap) -> Option<Challenge> {
    let values = headers.get_all(hyper::header::WWW_AUTHENTICATE).iter().filter_map(|v| v.to_str().ok());
    match rtsp::auth::best_challenge(values) {
        Some(c @ Challenge::Digest(_)) => Some(c),
        _ => None,
    }
}

/// Sends `method` to `target` on a new connection, following redirects and answering a Digest
/// challenge (see the module's doc). `known_digest`: a challenge seen before (snapshot polling), answered
/// up front: no Basic, no extra round trip. Returns the connection and the final response head,
/// whatever its status.
pub async fn request(
    target: &Target,
    method: Method,
    headers: &[(String, String)],
    body: Bytes,
    opts: &Options,
    known_digest: Option<Challenge>,
) -> Result<(Conn, Response<Incoming>), SourceError> {
    let first = target.clone();
    let mut target = target.clone();
    let mut digest = known_digest.map(|c| Box::new((c, 0)));
    let (mut redirects, mut challenges) = (0, 0);
    loop {
        let mut conn = Conn::open(&target, opts).await?;
        conn.digest = digest.take();
        // Credentials in request headers go to the URL's own origin only, as URL credentials do.
        let hop_headers: Vec<(String, String)> = if target.same_origin(&first) {
            headers.to_vec()
        } else {
            headers.iter().filter(|(name, _)| !crate::secrets::is_secret_header(name)).cloned().collect()
        };
        let resp = conn.send(&method, &hop_headers, body.clone(), opts).await?;
        let status = resp.status();
        // A first challenge, or a new nonce for a stale one: answered once each.
        if status == StatusCode::UNAUTHORIZED && target.userinfo.is_some() && challenges < 2 {
            if let Some(challenge) = digest_challenge(resp.headers()) {
                let stale = matches!(&challenge, Challenge::Digest(d) if d.stale);
                if conn.digest.is_none() || stale {
                    challenges += 1;
                    // A fresh connection: the 401's body need not be read first.
                    digest = Some(Box::new((challenge, 0)));
                    continue;
                }
            }
        }
        let follow = if method == Method::GET || method == Method::HEAD {
            status.is_redirection()
        } else {
            matches!(status, StatusCode::TEMPORARY_REDIRECT | StatusCode::PERMANENT_REDIRECT)
        };
        if follow {
            if let Some(loc) = resp.headers().get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()) {
                if redirects == opts.max_redirects {
                    return Err(SourceError::protocol(format!("more than {} redirects", opts.max_redirects)));
                }
                redirects += 1;
                tracing::debug!(
                    from = %crate::secrets::mask_url(&target.host_header()),
                    to = %crate::secrets::mask_url(loc),
                    "redirect"
                );
                target = target.redirect(loc).map_err(SourceError::protocol)?;
                continue;
            }
        }
        return Ok((conn, resp));
    }
}

/// Reads a whole body, at most `limit` bytes, each read within `idle_timeout`.
pub async fn read_body(body: &mut Incoming, limit: usize, idle_timeout: Duration) -> Result<Bytes, SourceError> {
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(idle_timeout, body.frame())
            .await
            .map_err(|_| SourceError::network(format!("no data for {} s", idle_timeout.as_secs())))?;
        match frame {
            None => return Ok(Bytes::from(out)),
            Some(Err(e)) => return Err(SourceError::network(format!("reading body: {e}"))),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(SourceError::protocol(format!("body larger than {} KiB", limit >> 10)));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A WebSocket over a dialled connection.
pub type WebSocket = tokio_tungstenite::WebSocketStream<Box<dyn Io>>;

/// How a WebSocket is opened.
#[derive(Clone, Copy, Debug)]
pub struct WsOptions {
    /// `Sec-WebSocket-Protocol` offered, if any.
    pub protocols: Option<&'static str>,
    /// Largest message (and frame) accepted.
    pub max_message: usize,
    /// TCP connect and TLS handshake, each.
    pub connect_timeout: Duration,
    /// The WebSocket handshake.
    pub timeout: Duration,
}

/// Why a WebSocket handshake failed.
#[derive(Debug)]
pub enum WsError {
    /// The server answered with another status than 101.
    Http {
        status: u16,
        reason: String,
        body: Option<Vec<u8>>,
    },
    /// The server picked none of the offered subprotocols.
    NoSubprotocol,
    Other(String),
}

/// An open WebSocket and its TCP endpoints.
pub struct WsDialled {
    pub ws: WebSocket,
    pub local: SocketAddr,
    pub peer: SocketAddr,
}

/// Opens a WebSocket to `target` (its `tls` picks `ws` or `wss`). Credentials go as Basic, or as
/// Digest when the server challenges for it (Axis cameras do), on a new connection.
pub async fn websocket(target: &Target, opts: &WsOptions) -> Result<WsDialled, WsError> {
    let mut digest: Option<Challenge> = None;
    loop {
        let d = dial::tcp(&target.host, target.port, target.tls, opts.connect_timeout).await.map_err(WsError::Other)?;
        match ws_handshake(target, d.io, digest.as_ref(), opts).await {
            Ok(ws) => return Ok(WsDialled { ws, local: d.local, peer: d.peer }),
            Err((WsError::Http { status: 401, .. }, Some(c))) if digest.is_none() && target.userinfo.is_some() => {
                digest = Some(c)
            }
            Err((e, _)) => return Err(e),
        }
    }
}

async fn ws_handshake(
    target: &Target,
    io: Box<dyn Io>,
    digest: Option<&Challenge>,
    opts: &WsOptions,
) -> Result<WebSocket, (WsError, Option<Challenge>)> {
    use tungstenite::client::IntoClientRequest;
    let scheme = if target.tls == Tls::None { "ws" } else { "wss" };
    let url = format!("{scheme}://{}{}", target.host_header(), target.path);
    let mut req = url.into_client_request().map_err(|e| (WsError::Other(format!("WebSocket: {e}")), None))?;
    let headers = req.headers_mut();
    if let Some(p) = opts.protocols {
        headers.insert("Sec-WebSocket-Protocol", hyper::header::HeaderValue::from_static(p));
    }
    if let Some(v) = target.authorization("GET", digest.map(|c| (c, 1))).and_then(|a| a.parse().ok()) {
        headers.insert(hyper::header::AUTHORIZATION, v);
    }
    headers.insert(hyper::header::USER_AGENT, hyper::header::HeaderValue::from_static(USER_AGENT));
    let config = tungstenite::protocol::WebSocketConfig::default()
        .max_message_size(Some(opts.max_message))
        .max_frame_size(Some(opts.max_message));
    match tokio::time::timeout(opts.timeout, tokio_tungstenite::client_async_with_config(req, io, Some(config))).await {
        Ok(Ok((ws, _))) => Ok(ws),
        Ok(Err(tungstenite::Error::Http(resp))) => {
            let challenge = digest_challenge(resp.headers());
            let status = resp.status();
            let reason = status.canonical_reason().unwrap_or("").to_string();
            let body = resp.body().clone();
            Err((WsError::Http { status: status.as_u16(), reason, body }, challenge))
        }
        Ok(Err(tungstenite::Error::Protocol(tungstenite::error::ProtocolError::SecWebSocketSubProtocolError(
            tungstenite::error::SubProtocolError::NoSubProtocol,
        )))) => Err((WsError::NoSubprotocol, None)),
        Ok(Err(e)) => Err((WsError::Other(format!("WebSocket: {e}")), None)),
        Err(_) => Err((WsError::Other(format!("WebSocket: no handshake within {} s", opts.timeout.as_secs())), None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// The request heads a test server received.
    type Seen = Arc<Mutex<Vec<String>>>;

    /// A local HTTP/1.1 server answering each request head with `answer(head)` (a whole response);
    /// keeps the connection open for more requests.
    async fn server(answer: impl Fn(&str) -> String + Send + Sync + 'static) -> (u16, Seen) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Seen = Arc::default();
        let (answer, seen2) = (Arc::new(answer), seen.clone());
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let (answer, seen) = (answer.clone(), seen2.clone());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            let head = String::from_utf8_lossy(&buf[..end]).to_string();
                            let len = header(&head, "content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
                            if buf.len() < end + 4 + len {
                                break;
                            }
                            buf.drain(..end + 4 + len);
                            seen.lock().unwrap().push(head.clone());
                            if s.write_all(answer(&head).as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        (port, seen)
    }

    fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    fn opts() -> Options {
        Options { connect_timeout: Duration::from_secs(5), response_timeout: Duration::from_secs(5), max_redirects: 3 }
    }

    fn target(host: &str, port: u16, path: &str, userinfo: Option<&str>) -> Target {
        Target { tls: Tls::None, host: host.into(), port, path: path.into(), userinfo: userinfo.map(Into::into) }
    }

    #[tokio::test]
    async fn answers_a_digest_challenge_then_succeeds() {
        let auth = rtsp::auth::Authenticator::new("admin", "s3cret", "cam");
        let challenge = auth.challenge_headers("n0nce");
        let (port, seen) = server(move |head| {
            let ok = header(head, "authorization").is_some_and(|a| auth.verify("GET", &a, "n0nce"));
            if ok && header(head, "authorization").is_some_and(|a| a.starts_with("Digest")) {
                "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello".to_string()
            } else {
                let www: String = challenge.iter().map(|c| format!("WWW-Authenticate: {c}\r\n")).collect();
                format!("HTTP/1.1 401 Unauthorized\r\n{www}Content-Length: 0\r\n\r\n")
            }
        })
        .await;
        let t = target("127.0.0.1", port, "/snap.cgi?x=1", Some("admin:s3cret"));
        let (conn, resp) = request(&t, Method::GET, &[], Bytes::new(), &opts(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert!(conn.digest().is_some());
        let body = read_body(&mut resp.into_body(), 1024, Duration::from_secs(5)).await.unwrap();
        assert_eq!(&body[..], b"hello");
        let heads = seen.lock().unwrap().clone();
        assert_eq!(heads.len(), 2, "{heads:?}");
        assert!(header(&heads[0], "authorization").unwrap().starts_with("Basic "));
        let digest = header(&heads[1], "authorization").unwrap();
        assert!(digest.starts_with("Digest ") && digest.contains("uri=\"/snap.cgi?x=1\""), "{digest}");
        assert!(heads[1].starts_with("GET /snap.cgi?x=1 HTTP/1.1"));

        // Wrong password: the second 401 is the answer, not a loop.
        let t = target("127.0.0.1", port, "/", Some("admin:wrong"));
        let (_, resp) = request(&t, Method::GET, &[], Bytes::new(), &opts(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(seen.lock().unwrap().len(), 4);
    }

    #[tokio::test]
    async fn a_redirect_to_another_host_drops_credentials() {
        let (other, other_seen) = server(|_| "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_string()).await;
        // 127.0.0.1 and localhost: the same machine, another host for the client.
        let (port, seen) = server(move |head| {
            let to = if head.starts_with("GET /same") {
                "/final".to_string()
            } else if head.starts_with("GET /final") {
                return "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".to_string();
            } else {
                format!("http://localhost:{other}/elsewhere")
            };
            format!("HTTP/1.1 302 Found\r\nLocation: {to}\r\nContent-Length: 0\r\n\r\n")
        })
        .await;
        let headers = vec![("Cookie".to_string(), "session=1".to_string()), ("X-Plain".to_string(), "v".to_string())];

        let t = target("127.0.0.1", port, "/start", Some("u:p"));
        let (conn, resp) = request(&t, Method::GET, &headers, Bytes::new(), &opts(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        assert_eq!((conn.target().host.as_str(), conn.target().port), ("localhost", other));
        let first = seen.lock().unwrap()[0].clone();
        assert!(header(&first, "authorization").is_some() && header(&first, "cookie").is_some(), "{first}");
        let there = other_seen.lock().unwrap()[0].clone();
        assert!(there.starts_with("GET /elsewhere "), "{there}");
        assert_eq!(header(&there, "authorization"), None, "{there}");
        assert_eq!(header(&there, "cookie"), None, "{there}");
        assert_eq!(header(&there, "x-plain").as_deref(), Some("v"));

        // A redirect on the same host keeps them.
        let t = target("127.0.0.1", port, "/same", Some("u:p"));
        let (_, resp) = request(&t, Method::GET, &headers, Bytes::new(), &opts(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let last = seen.lock().unwrap().last().unwrap().clone();
        assert!(last.starts_with("GET /final "), "{last}");
        assert!(header(&last, "authorization").is_some() && header(&last, "cookie").is_some(), "{last}");

        // A POST follows only 307/308: a 302 is the answer.
        let t = target("127.0.0.1", port, "/start", None);
        let (_, resp) = request(&t, Method::POST, &[], Bytes::from_static(b"x"), &opts(), None).await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND);
    }

    #[tokio::test]
    async fn redirect_loops_heads_and_bodies_are_bounded() {
        let (port, _) = server(|_| "HTTP/1.1 302 Found\r\nLocation: /again\r\nContent-Length: 0\r\n\r\n".into()).await;
        let t = target("127.0.0.1", port, "/", None);
        let e = request(&t, Method::GET, &[], Bytes::new(), &opts(), None).await.err().unwrap();
        assert_eq!(e, SourceError::protocol("more than 3 redirects"));

        let big = "a".repeat(2 * MAX_HEAD_BYTES);
        let (port, _) = server(move |_| format!("HTTP/1.1 200 OK\r\nX-Big: {big}\r\nContent-Length: 0\r\n\r\n")).await;
        let t = target("127.0.0.1", port, "/", None);
        let e = request(&t, Method::GET, &[], Bytes::new(), &opts(), None).await.err().unwrap();
        assert_eq!(e.kind(), crate::hub::SourceErrorKind::Protocol, "{e}");

        let (port, _) =
            server(|_| format!("HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n{}", "b".repeat(5000))).await;
        let t = target("127.0.0.1", port, "/", None);
        let (_, resp) = request(&t, Method::GET, &[], Bytes::new(), &opts(), None).await.unwrap();
        let e = read_body(&mut resp.into_body(), 1024, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(e, SourceError::protocol("body larger than 1 KiB"));
    }

    #[test]
    fn redirect_targets() {
        let t = target("cam", 80, "/a/b.cgi?x", Some("u:p"));
        let r = t.redirect("c.jpg").unwrap();
        assert_eq!((r.path.as_str(), r.userinfo.as_deref()), ("/a/c.jpg", Some("u:p")));
        let r = t.redirect("//cam/z").unwrap();
        assert_eq!((r.host.as_str(), r.path.as_str(), r.userinfo.as_deref()), ("cam", "/z", Some("u:p")));
        let r = t.redirect("https://cam/z").unwrap();
        assert_eq!((r.tls, r.port, r.userinfo), (Tls::Verify, 443, None));
        let x = Target { tls: Tls::NoVerify, port: 443, ..t.clone() };
        assert_eq!(x.redirect("https://cam/z").unwrap().tls, Tls::NoVerify);
        assert!(t.redirect("tcp://cam:1/").is_err());
        assert!(t.redirect("ws://cam/").is_err());
        assert_eq!(t.credentials(), Some(("u", "p")));
        assert_eq!(t.authorization("GET", None).as_deref(), Some("Basic dTpw"));
    }
}
