//! MediaMTX's playback server (`playback: yes` + `playbackAddress: :9996`; camrelay's
//! `playback: listen: ":9996"`): recordings over HTTP.
//!
//! - `GET /list?path=NAME[&start=RFC3339][&end=RFC3339]`: the recorded spans (contiguous segments
//!   merged as MediaMTX merges them), `[{"start","duration","url"}]`, answered from the in-memory
//!   [`index::Index`].
//! - `GET /get?path=NAME&start=RFC3339&duration=SECONDS[&format=fmp4|mp4]`: one file across segment
//!   boundaries, cut at `start` ([`get`]): fMP4 streamed, or a progressive MP4 (`moov` first).
//!
//! Auth is the one module's, action `playback`; `playbackEncryption` serves HTTPS with the shared
//! certificate loader; `playbackAllowOrigins` answers CORS and `playbackTrustedProxies` lets proxies
//! name the client (`X-Forwarded-For`) and scheme (`X-Forwarded-Proto`). Files are only ever opened
//! from the index, which holds what scanning the `recordPath` directories found: a `path=` is a key
//! into it, never part of a file name.

pub mod get;
pub mod index;
pub mod mp4;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::json;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::{App, ServerTask};
use crate::config::Config;

/// Longest `/get` duration accepted (ten years).
const MAX_DURATION: Duration = Duration::from_secs(10 * 365 * 86_400);
/// Longest query string read.
const MAX_QUERY: usize = 8192;

/// The playback server's settings (MediaMTX's `playback*` keys).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub listen: String,
    /// `playbackEncryption`: (cert, key) setting values.
    pub tls: Option<(String, String)>,
    pub allow_origins: Vec<String>,
    pub trusted_proxies: Vec<(IpAddr, u8)>,
}

/// `1.2.3.4`, `10.0.0.0/8`, `::1`, `fd00::/8`.
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = match s.trim().split_once('/') {
        Some((ip, bits)) => (ip.parse::<IpAddr>().ok()?, Some(bits.parse::<u8>().ok()?)),
        None => (s.trim().parse::<IpAddr>().ok()?, None),
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = bits.unwrap_or(max);
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    match (ip.to_canonical(), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - u32::from(bits)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - u32::from(bits)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

impl Settings {
    pub fn from_config(config: &Config) -> Result<Settings, String> {
        let mut s = Settings { listen: config.servers.playback_listen.clone(), ..Settings::default() };
        let Some(mtx) = &config.mediamtx else {
            s.allow_origins = vec!["*".to_string()];
            return Ok(s);
        };
        if config.dialect != crate::config::Dialect::Mediamtx {
            s.allow_origins = vec!["*".to_string()];
            return Ok(s);
        }
        if mtx.global_bool("playbackEncryption") {
            s.tls = Some((mtx.global_str("playbackServerCert"), mtx.global_str("playbackServerKey")));
        }
        let strings = |key: &str| -> Vec<String> {
            mtx.globals
                .get(key)
                .and_then(serde_json::Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        s.allow_origins = strings("playbackAllowOrigins");
        // The deprecated single origin, when set, wins (as in MediaMTX).
        let one = mtx.global_str("playbackAllowOrigin");
        if !one.is_empty() {
            s.allow_origins = vec![one];
        }
        for p in strings("playbackTrustedProxies") {
            let net = parse_cidr(&p)
                .ok_or_else(|| format!("playbackTrustedProxies: {p:?} is not an IP address or a CIDR range"))?;
            s.trusted_proxies.push(net);
        }
        Ok(s)
    }

    /// The origin to allow for a request's `Origin`, if any (`*` patterns as MediaMTX's).
    fn allowed_origin(&self, origin: Option<&str>) -> Option<String> {
        if self.allow_origins.iter().any(|o| o == "*") {
            return Some("*".to_string());
        }
        let origin = origin?;
        self.allow_origins.iter().any(|pattern| wildcard(pattern, origin)).then(|| origin.to_string())
    }

    /// The client's address: the peer's, or, from a trusted proxy, the last untrusted address of
    /// `X-Forwarded-For`.
    fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.trusted_proxies.iter().any(|n| in_cidr(ip, *n));
        if !trusted(peer) {
            return peer;
        }
        let forwarded: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|a| a.trim().parse().ok())
            .collect();
        forwarded.into_iter().rev().find(|ip| !trusted(*ip)).unwrap_or(peer)
    }

    fn scheme(&self, peer: IpAddr, headers: &HeaderMap) -> &'static str {
        if self.trusted_proxies.iter().any(|n| in_cidr(peer, *n)) {
            match headers.get("x-forwarded-proto").and_then(|v| v.to_str().ok()) {
                Some("https") => return "https",
                Some("http") => return "http",
                _ => {}
            }
        }
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// `http://*.example.com` matches `http://a.example.com`.
fn wildcard(pattern: &str, s: &str) -> bool {
    match pattern.split_once('*') {
        None => pattern == s,
        Some((pre, post)) => s.len() >= pre.len() + post.len() && s.starts_with(pre) && s.ends_with(post),
    }
}

/// The parameters of `/list` and `/get`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params {
    pub path: String,
    pub start: Option<SystemTime>,
    pub end: Option<SystemTime>,
    pub duration: Option<Duration>,
    pub mp4: bool,
    /// `format=hls` (with `part=`).
    pub hls: Option<get::HlsPart>,
}

/// Splits a query into decoded (key, value) pairs (the first of a repeated key wins, as Go's
/// `Query().Get`). `+` stays `+` (so an unencoded `+01:00` offset still reads).
fn pairs(query: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| media::query::percent_decode(&s.replace('+', "%2B"));
        let k = decode(k);
        if !out.iter().any(|(key, _)| *key == k) {
            out.push((k, decode(v)));
        }
    }
    out
}

/// A recorded path's name as a client may give it: not empty, no `.`/`..`/empty component, not
/// absolute, no backslash or control character.
pub fn check_path(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("missing 'path' parameter".into());
    }
    if name.len() > 1024
        || name.starts_with('/')
        || name.contains('\\')
        || name.chars().any(char::is_control)
        || name.split('/').any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(format!(
            "invalid 'path' parameter: {:?} is not a path name",
            name.chars().take(200).collect::<String>()
        ));
    }
    Ok(())
}

fn parse_time(key: &str, value: &str) -> Result<SystemTime, String> {
    crate::record::template::parse_rfc3339(value).ok_or_else(|| {
        format!(
            "invalid '{key}' parameter: {:?} is not an RFC 3339 time (like 2006-01-02T15:04:05Z or 2006-01-02T15:04:05.5+01:00)",
            value.chars().take(100).collect::<String>()
        )
    })
}

/// `duration=`: seconds (`60`, `12.5`), or MediaMTX's deprecated Go form (`1m30s`).
pub fn parse_duration(value: &str) -> Result<Duration, String> {
    let bad = || {
        format!(
            "invalid 'duration' parameter: {:?} (seconds, more than 0, like 60 or 12.5)",
            value.chars().take(100).collect::<String>()
        )
    };
    let d = match value.parse::<f64>() {
        Ok(secs) if secs.is_finite() && secs > 0.0 && secs <= MAX_DURATION.as_secs_f64() => {
            Duration::from_secs_f64(secs)
        }
        Ok(_) => return Err(bad()),
        Err(_) => crate::config::mediamtx::parse_mediamtx_duration(value).ok_or_else(bad)?,
    };
    if d.is_zero() || d > MAX_DURATION {
        return Err(bad());
    }
    Ok(d)
}

/// Reads `/list`'s (`get: false`) or `/get`'s query.
pub fn parse_params(query: &str, get: bool) -> Result<Params, String> {
    if query.len() > MAX_QUERY {
        return Err(format!("query longer than {MAX_QUERY} bytes"));
    }
    let mut p = Params::default();
    for (k, v) in pairs(query) {
        match k.as_str() {
            "path" => p.path = v,
            "start" if !v.is_empty() => p.start = Some(parse_time("start", &v)?),
            "end" if !get && !v.is_empty() => p.end = Some(parse_time("end", &v)?),
            "duration" if get => p.duration = Some(parse_duration(&v)?),
            "format" if get => {
                p.mp4 = match v.as_str() {
                    "" | "fmp4" => false,
                    "mp4" => true,
                    "hls" => {
                        p.hls.get_or_insert(get::HlsPart::Playlist);
                        false
                    }
                    other => {
                        return Err(format!(
                            "invalid 'format' parameter: {:?} (expected fmp4, mp4 or hls)",
                            other.chars().take(100).collect::<String>()
                        ))
                    }
                }
            }
            _ => {}
        }
    }
    check_path(&p.path)?;
    if get {
        if p.start.is_none() {
            return Err("missing 'start' parameter (an RFC 3339 time)".into());
        }
        if p.duration.is_none() {
            return Err("missing 'duration' parameter (seconds)".into());
        }
    }
    if let (Some(s), Some(e)) = (p.start, p.end) {
        if e < s {
            return Err("'end' is before 'start'".into());
        }
    }
    Ok(p)
}

/// What a request path (past `/` on the playback server, past `/api/playback/` on the API) asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    List,
    Get,
    /// `hls/init.mp4`, `hls/N.m4s`: a part of a `format=hls` playlist.
    Hls(get::HlsPart),
}

pub fn route(rest: &str) -> Option<Route> {
    match rest {
        "list" => Some(Route::List),
        "get" => Some(Route::Get),
        "hls/init.mp4" => Some(Route::Hls(get::HlsPart::Init)),
        _ => {
            let n = rest.strip_prefix("hls/")?.strip_suffix(".m4s")?;
            if n.is_empty() || n.len() > 9 || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(Route::Hls(get::HlsPart::Segment(n.parse().ok()?)))
        }
    }
}

/// The query of a `format=hls` request, for the playlist's URIs: the pairs as the client sent them
/// (a `jwt=` stays), with `"` and anything below `!` percent-encoded.
fn hls_query(query: &str) -> String {
    let kept: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    let mut out = String::with_capacity(query.len());
    for c in kept.join("&").chars() {
        if c == '"' || c <= ' ' || c == '\u{7f}' {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// MediaMTX's error body.
fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({ "status": "error", "error": message.into() }))).into_response()
}

pub struct Server {
    app: Arc<App>,
    settings: Settings,
    index: Arc<index::Index>,
    /// `/get` answers being read (each holds a blocking thread): at most [`MAX_DOWNLOADS`].
    downloads: Arc<tokio::sync::Semaphore>,
}

/// `/get` answers served at once; more are refused with 503.
pub const MAX_DOWNLOADS: usize = 64;

/// Starts the playback server when `playback_listen` is set.
pub async fn start(app: Arc<App>) -> std::io::Result<ServerTask> {
    let settings = Settings::from_config(&app.config())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("playback: {e}")))?;
    if crate::config::bind_address(&settings.listen).is_none() {
        return Ok(None);
    }
    let index = Arc::new(index::Index::default());
    let poke = Arc::new(tokio::sync::Notify::new());
    {
        let poke = poke.clone();
        app.hooks.observe_segments(Box::new(move |_path| poke.notify_one()));
    }
    tokio::spawn(keep_index(Arc::downgrade(&app), index.clone(), poke));
    let downloads = Arc::new(tokio::sync::Semaphore::new(MAX_DOWNLOADS));
    let server = Arc::new(Server { app: app.clone(), settings: settings.clone(), index, downloads });
    app.playback.set(&server);
    let router = Router::new().fallback(handle).with_state(server);
    let shutdown = app.shutdown.clone();
    if let Some((cert, key)) = &settings.tls {
        use crate::tls::server::{PemSetting, ServerTls, TlsIncoming};
        use axum::serve::ListenerExt;
        let tls = ServerTls::load(
            "playback",
            PemSetting::new("playbackServerCert", cert),
            PemSetting::new("playbackServerKey", key),
            &[b"http/1.1"],
        )
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("playback: {e}")))?;
        let Some(listener) = crate::servers::bind_tcp_tls("playback", &settings.listen).await? else {
            return Ok(None);
        };
        tls.watch(app.shutdown.clone());
        let incoming = TlsIncoming::new(listener, tls, app.shutdown.clone())?.tap_io(|_| {});
        return Ok(Some(tokio::spawn(async move {
            let served = axum::serve(incoming, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move { shutdown.cancelled().await });
            if let Err(e) = served.await {
                tracing::error!("playback tls server: {e}");
            }
        })));
    }
    let Some(listener) = crate::servers::bind_tcp("playback", &settings.listen).await? else {
        return Ok(None);
    };
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("playback server: {e}");
        }
    })))
}

/// Builds the index, then scans again on each segment event (at most every 200 ms) and
/// periodically: every fifty times as long as a scan takes, between 1 s and [`index::RESCAN`] (a
/// few files: every second; 30 days of 1-minute segments: every few seconds).
async fn keep_index(app: std::sync::Weak<App>, index: Arc<index::Index>, poke: Arc<tokio::sync::Notify>) {
    loop {
        let Some(strong) = app.upgrade() else { return };
        let (config, shutdown) = (strong.config(), strong.shutdown.clone());
        drop(strong);
        let started = std::time::Instant::now();
        let i = index.clone();
        let first = !i.is_built();
        let _ = tokio::task::spawn_blocking(move || i.rescan(&config)).await;
        let took = started.elapsed();
        if first {
            tracing::info!(
                module = "playback",
                segments = index.len(),
                ms = took.as_millis() as u64,
                "recordings indexed"
            );
        }
        let period = (took * 50).clamp(Duration::from_secs(1), index::RESCAN);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = poke.notified() => {}
            _ = tokio::time::sleep(period) => {}
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

fn cors(server: &Server, origin: Option<&str>, r: &mut Response) {
    if let Some(allowed) = server.settings.allowed_origin(origin) {
        if let Ok(v) = HeaderValue::from_str(&allowed) {
            r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
            r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
        }
    }
}

async fn handle(
    State(server): State<Arc<Server>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let origin = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).map(str::to_string);
    let mut r = answer(&server, peer, request).await;
    cors(&server, origin.as_deref(), &mut r);
    r
}

/// The running playback server, for the API listener's `/api/playback/list` and `/api/playback/get`
/// (the web UI's timeline), which answer as the playback server does wherever it listens.
#[derive(Default)]
pub struct Link(std::sync::Mutex<std::sync::Weak<Server>>);

impl Link {
    fn set(&self, server: &Arc<Server>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = Arc::downgrade(server);
    }

    fn get(&self) -> Option<Arc<Server>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).upgrade()
    }
}

/// `GET /api/playback/list` and `/api/playback/get` on the API listener: the playback server's
/// `/list` and `/get` (same parameters, answers and `playback` auth, after the API's own), so the web
/// UI reaches the recordings on its own origin whatever port the playback server has.
pub fn routes() -> Router<Arc<App>> {
    use axum::routing::get;
    Router::new()
        .route("/api/playback/list", get(via_api))
        .route("/api/playback/get", get(via_api))
        .route("/api/playback/hls/{file}", get(via_api))
}

async fn via_api(State(app): State<Arc<App>>, request: Request) -> Response {
    let Some(server) = app.playback.get() else {
        return error(
            StatusCode::NOT_FOUND,
            "the playback server is off (camrelay: playback: listen; MediaMTX: playback: yes)",
        );
    };
    // Through the API's unix socket: a local client, as the API took it.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let full = request
        .extensions()
        .get::<axum::extract::OriginalUri>()
        .map(|u| u.path().to_string())
        .unwrap_or_else(|| request.uri().path().to_string());
    let path = request.uri().path().to_string();
    let Some(at) = path.find("/api/playback/") else {
        return error(StatusCode::NOT_FOUND, "not found");
    };
    let rest = &path[at + "/api/playback/".len()..];
    let Some(route) = route(rest) else {
        return error(StatusCode::NOT_FOUND, "not found (/api/playback/ serves list, get and hls/)");
    };
    // `/list`'s URLs: root-relative, beside this route (`/api/playback/get?...`, under a base path too).
    let base = full.strip_suffix(rest).unwrap_or("/api/playback/").to_string();
    respond(&server, peer, request, route, Some(base)).await
}

async fn answer(server: &Arc<Server>, peer: SocketAddr, request: Request) -> Response {
    let route = match route(request.uri().path().trim_start_matches('/')) {
        Some(r) => r,
        None if request.method() == Method::OPTIONS => Route::List,
        None => return error(StatusCode::NOT_FOUND, "not found (the playback server serves /list, /get and /hls/)"),
    };
    respond(server, peer, request, route, None).await
}

/// `/list`, `/get` or a part of `/get?format=hls`; `base`: where `/list`'s URLs point (`None`: this
/// server).
async fn respond(
    server: &Arc<Server>,
    peer: SocketAddr,
    request: Request,
    route: Route,
    base: Option<String>,
) -> Response {
    let get = route != Route::List;
    let method = request.method().clone();
    if method == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("OPTIONS, GET"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization"));
        return r;
    }
    if method != Method::GET && method != Method::HEAD {
        return error(StatusCode::METHOD_NOT_ALLOWED, format!("{method} is not allowed (GET)"));
    }
    let query = request.uri().query().unwrap_or("").to_string();
    let mut params = match parse_params(&query, get) {
        Ok(p) => p,
        Err(e) => return error(StatusCode::BAD_REQUEST, e),
    };
    if let Route::Hls(part) = route {
        params.hls = Some(part);
    }
    let client = server.settings.client(peer.ip(), request.headers());
    let headers = request.headers().clone();
    if let Some(refused) = authorize(server, client, &params.path, &headers, &query).await {
        return refused;
    }
    if !server.index.is_built() {
        // The first scan is still running (many files): wait for it, briefly.
        let idx = server.index.clone();
        let _ = tokio::time::timeout(Duration::from_secs(30), async move {
            while !idx.is_built() {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
    }
    if !server.index.has(&params.path) {
        return error(StatusCode::NOT_FOUND, format!("no recordings found for path {:?}", params.path));
    }
    // The newest segment may be the one being written.
    let (idx, name) = (server.index.clone(), params.path.clone());
    let _ = tokio::task::spawn_blocking(move || idx.refresh_newest(&name)).await;
    if get {
        serve_get(server, params, &query).await
    } else {
        let base = base.unwrap_or_else(|| {
            let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("localhost");
            format!("{}://{host}/", server.settings.scheme(peer.ip(), request.headers()))
        });
        list(server, &params, &base)
    }
}

/// The one auth module, action `playback`; `None` when allowed.
async fn authorize(server: &Server, client: IpAddr, path: &str, headers: &HeaderMap, query: &str) -> Option<Response> {
    let auth = server.app.auth();
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or(""));
    let basic = authorization.map(|v| crate::auth::basic_credentials(v).unwrap_or_default());
    let token = match authorization.and_then(crate::auth::bearer_token) {
        Some(t) => Some(t.to_string()),
        None if auth.jwt_in_http_query() => crate::auth::query_token(query),
        None => None,
    };
    let presented = match (&token, &basic) {
        (Some(t), _) => crate::auth::Presented::Token(t),
        (None, Some((user, pass))) => crate::auth::Presented::Credentials { user, pass },
        (None, None) => crate::auth::Presented::Nothing,
    };
    let asked = crate::auth::AuthRequest {
        action: crate::auth::Action::Playback,
        path,
        protocol: crate::auth::Protocol::Http,
        origin: crate::auth::Origin::Ip(client),
        presented,
    };
    let details = crate::auth::Details { query, ..Default::default() };
    if auth.authorize(&asked, details).await.is_ok() {
        return None;
    }
    tracing::info!(module = "playback", peer = %client, "unauthorized request");
    let mut r = error(StatusCode::UNAUTHORIZED, "authentication failed");
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"camrelay\""));
    Some(r)
}

/// Go's `url.QueryEscape`.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// A duration in seconds as Go's `strconv.FormatFloat(v, 'f', -1, 64)` and its JSON write it.
fn seconds(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// `base`: what `get?...` follows in each span's URL.
fn list(server: &Server, params: &Params, base: &str) -> Response {
    let spans = server.index.spans(&params.path, params.start, params.end);
    if spans.is_empty() {
        return error(StatusCode::NOT_FOUND, "no recordings found in this time range");
    }
    let items: Vec<serde_json::Value> = spans
        .iter()
        .map(|s| {
            let start = crate::servers::v3::rfc3339(s.start);
            let secs = seconds(s.duration);
            // Go's url.Values.Encode: keys sorted.
            let url = format!(
                "{base}get?duration={}&path={}&start={}",
                query_escape(&secs.to_string()),
                query_escape(&params.path),
                query_escape(&start)
            );
            let duration = if secs.fract() == 0.0 && secs < 9e15 { json!(secs as u64) } else { json!(secs) };
            json!({ "start": start, "duration": duration, "url": url })
        })
        .collect();
    axum::Json(serde_json::Value::Array(items)).into_response()
}

/// Hands the blocking reader's output to the response body.
struct ChannelSink {
    head: Option<tokio::sync::oneshot::Sender<Option<u64>>>,
    tx: tokio::sync::mpsc::Sender<Vec<u8>>,
}

impl get::Sink for ChannelSink {
    fn head(&mut self, content_length: Option<u64>) -> bool {
        self.head.take().is_some_and(|h| h.send(content_length).is_ok())
    }

    fn data(&mut self, bytes: Vec<u8>) -> bool {
        self.tx.blocking_send(bytes).is_ok()
    }
}

async fn serve_get(server: &Server, params: Params, query: &str) -> Response {
    let (Some(start), Some(duration)) = (params.start, params.duration) else {
        return error(StatusCode::BAD_REQUEST, "missing 'start' or 'duration' parameter");
    };
    let Ok(permit) = server.downloads.clone().try_acquire_owned() else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_DOWNLOADS} downloads are running: try again later"),
        );
    };
    let segments = server.index.segments_for(&params.path, start, duration);
    let hls = params.hls;
    let query = if params.hls.is_some() { hls_query(query) } else { String::new() };
    let ask = get::Ask { segments, start, duration, mp4: params.mp4, hls: params.hls, query };
    let (head_tx, head_rx) = tokio::sync::oneshot::channel();
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<u8>>(4);
    let task = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let mut sink = ChannelSink { head: Some(head_tx), tx };
        get::serve(&ask, &mut sink)
    });
    match head_rx.await {
        Ok(length) => {
            let stream = futures_util::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|b| (Ok::<_, std::io::Error>(bytes::Bytes::from(b)), rx))
            });
            let mut r = Response::new(Body::from_stream(stream));
            let h = r.headers_mut();
            let kind = match hls {
                Some(get::HlsPart::Playlist) => "application/vnd.apple.mpegurl",
                _ => "video/mp4",
            };
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
            h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("none"));
            if let Some(len) = length {
                h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
            }
            r
        }
        // The reader ended without starting an answer: its error.
        Err(_) => match task.await {
            Ok(Err(get::Fail::NotFound(e))) => error(StatusCode::NOT_FOUND, e),
            Ok(Err(get::Fail::BadRequest(e))) => error(StatusCode::BAD_REQUEST, e),
            Ok(Err(get::Fail::Internal(e))) => {
                tracing::warn!(module = "playback", path = %params.path, "{e}");
                error(StatusCode::INTERNAL_SERVER_ERROR, "the recording could not be read (the server log says why)")
            }
            Ok(Ok(())) => error(StatusCode::NOT_FOUND, "no recordings found in this time range"),
            Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
        },
    }
}

#[cfg(test)]
mod tests;
