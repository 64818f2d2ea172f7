//! HTTP API (`api:` section, default `:1984`): go2rtc's endpoints and JSON shapes.

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::hub::producer::ProducerKind;
use crate::hub::{Hub, HubError, Producer, Stream};
use crate::push::PushStatus;
use crate::secrets::mask_url;

/// Parsed query string, keys repeatable (`src=a&src=b`).
pub struct Query(pub Vec<(String, String)>);

impl Query {
    pub fn from_uri(uri: &axum::http::Uri) -> Query {
        Query(media::query::query_pairs(uri.query().unwrap_or("")).collect())
    }
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, key: &str) -> Vec<String> {
        self.0.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
}

/// A failed request: its status and the message shown to the client as `{"error": ...}`.
pub struct ApiError(pub StatusCode, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        error(self.0, self.1)
    }
}

pub fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    (status, Json(json!({ "error": message }))).into_response()
}

pub fn router(app: Arc<App>) -> Router {
    // State the HTTP outputs share with the WebSocket API.
    let hls_sessions = app.hls.clone();
    let mjpeg_state = Arc::new(super::mjpeg::MjpegState::default());
    let api = Router::new()
        .route("/api", get(api_info))
        .route(
            "/api/streams",
            get(streams_get).put(streams_put).patch(streams_patch).post(streams_post).delete(streams_delete),
        )
        .route("/api/schemes", get(schemes))
        .route("/api/config", get(config_get).post(config_post))
        .route("/api/log", get(log_get).delete(log_delete))
        .route("/api/preload", get(preload_get).put(preload_put).delete(preload_delete))
        .route("/api/health", get(health))
        .route("/api/ready", get(ready))
        .merge(super::http_stream::routes())
        .merge(super::hls::routes(hls_sessions.clone()))
        .merge(super::mjpeg::routes(mjpeg_state.clone()))
        .merge(super::ingest::routes())
        .merge(super::webrtc::routes())
        .merge(super::ws::routes(hls_sessions, mjpeg_state))
        .merge(super::v3::routes())
        .merge(crate::record::api::routes())
        .merge(crate::playback::routes())
        .merge(if app.config().api.static_dir.is_empty() {
            super::ui::routes()
        } else {
            super::ui::static_dir_routes(&app.config().api.static_dir)
        });
    let base = app.config().api.base_path.trim_end_matches('/').to_string();
    let api = if base.is_empty() { api } else { Router::new().nest(&base, api) };
    api.fallback(|| async { error(StatusCode::NOT_FOUND, "not found") })
        .layer(middleware::from_fn_with_state(app.clone(), auth_and_cors))
        .with_state(app)
}

/// Marks requests that came through `api.unix_listen`: local clients, like loopback ones.
#[derive(Clone, Copy)]
struct ViaUnixSocket;

/// Serves the API on `api.unix_listen` too (go2rtc's; Home Assistant talks to its managed server
/// there). A stale socket file from an earlier run is replaced.
#[cfg(unix)]
pub async fn start_unix(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let path = app.config().api.unix_listen.clone();
    if path.is_empty() {
        return Ok(None);
    }
    if std::fs::symlink_metadata(&path).is_ok_and(|m| {
        use std::os::unix::fs::FileTypeExt;
        m.file_type().is_socket()
    }) {
        let _ = std::fs::remove_file(&path);
    }
    let listener = tokio::net::UnixListener::bind(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("api: cannot listen on unix socket {path}: {e}")))?;
    tracing::info!(module = "api", addr = %path, "listen");
    let router = router(app.clone()).layer(axum::Extension(ViaUnixSocket));
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("api unix socket: {e}");
        }
        let _ = std::fs::remove_file(&path);
    })))
}

#[cfg(not(unix))]
pub async fn start_unix(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    if !app.config().api.unix_listen.is_empty() {
        tracing::warn!(module = "api", "api.unix_listen: unix sockets are not available on this system");
    }
    Ok(None)
}

pub async fn start(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(listener) = super::bind_tcp("api", &app.config().api.listen).await? else {
        return Ok(None);
    };
    let router = router(app.clone());
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("api server: {e}");
        }
    })))
}

/// HTTPS (go2rtc's `api.tls_listen` with `tls_cert`/`tls_key`, each a file path or the PEM text): the same
/// router as the plain listener (UI, `/api`, HLS, MSE over WebSocket). A certificate that does not load is
/// a startup error naming the file; one replaced on disk is served to the next handshake.
pub async fn start_tls(app: Arc<App>) -> std::io::Result<Option<tokio::task::JoinHandle<()>>> {
    use crate::tls::server::TlsIncoming;
    use axum::serve::ListenerExt;
    let settings = app.config().api.tls.clone();
    let names =
        super::Dialected { mediamtx: ("apiServerCert", "apiServerKey"), go2rtc: ("api.tls_cert", "api.tls_key") };
    let Some((listener, tls)) = super::bind_tls(&app, "api", "api", &settings, names, &[b"http/1.1"]).await? else {
        return Ok(None);
    };
    // `tap_io` only to get the peer's address as `ConnectInfo<SocketAddr>` (auth, logs), as on plain TCP.
    let incoming = TlsIncoming::new(listener, tls, app.shutdown.clone())?.tap_io(|_| {});
    let router = router(app.clone());
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(incoming, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("api tls server: {e}");
        }
    })))
}

/// `api.allow_paths`/`app.modules`, the auth module's decision (Basic credentials), and CORS for
/// `origin: "*"`.
async fn auth_and_cors(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let cfg = &app.config().api;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let cors = !cfg.origin.is_empty();
    // A CORS preflight is answered here; other OPTIONS requests (`OPTIONS /api/webrtc`) reach their route.
    let preflight = request.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);
    if cors && request.method() == Method::OPTIONS && preflight {
        let mut r = StatusCode::NO_CONTENT.into_response();
        add_cors(r.headers_mut());
        return r;
    }
    if let Some(refused) = refuse_path(&app, request.uri().path()) {
        return refused;
    }
    if let Some(why) = cross_site_refusal(cfg, &request) {
        if let Some(p) = peer {
            tracing::info!(peer = %p, path = %request.uri().path(), "api: {why}");
        }
        return error(StatusCode::FORBIDDEN, why);
    }
    let origin = match peer {
        _ if request.extensions().get::<ViaUnixSocket>().is_some() => crate::auth::Origin::LocalSocket,
        Some(p) => crate::auth::Origin::Ip(p.ip()),
        None => crate::auth::Origin::Unknown,
    };
    // What the decision needs, owned: the request is not held across the await.
    let (denied, user) = {
        let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("").to_string());
        let authorization = authorization.as_deref();
        let uri = request.uri().clone();
        let basic = authorization.map(|v| crate::auth::basic_credentials(v).unwrap_or_default());
        // MediaMTX's JWT: `Authorization: Bearer`, or `?jwt=` when `authJWTInHTTPQuery`.
        let token = match authorization.and_then(crate::auth::bearer_token) {
            Some(t) => Some(t.to_string()),
            None if app.auth().jwt_in_http_query() => crate::auth::query_token(uri.query().unwrap_or("")),
            None => None,
        };
        let presented = match (&token, &basic) {
            (Some(t), _) => crate::auth::Presented::Token(t),
            (None, Some((user, pass))) => crate::auth::Presented::Credentials { user, pass },
            (None, None) => crate::auth::Presented::Nothing,
        };
        let api_path = path_in_api(&cfg.base_path, uri.path());
        // Media outputs and signalling read a stream (`src=`) or publish into one (`dst=`); everything
        // else is the control API.
        let q = Query::from_uri(&uri);
        let (action, path) = match (module_of_path(api_path), q.get("dst"), q.get("src")) {
            (Some(_), Some(dst), _) => (crate::auth::Action::Publish, dst),
            (Some(_), None, src) => (crate::auth::Action::Read, src.unwrap_or("")),
            (None, _, _) => (crate::auth::Action::Api, ""),
        };
        // With per-path permissions (MediaMTX's users), a request for an existing HLS or WHEP session
        // names no path, only the session's random id, handed out to the client that was allowed to
        // create it: the id is the permission. Without them (go2rtc's API user) credentials are
        // checked as for any request.
        let auth = app.auth();
        let session_op =
            auth.per_path() && module_of_path(api_path).is_some() && path.is_empty() && q.get("id").is_some();
        let asked = crate::auth::AuthRequest { action, path, protocol: crate::auth::Protocol::Http, origin, presented };
        // MediaMTX's protocol name for the HTTP method: the output module (`hls`, `webrtc`, `mp4`...);
        // none for the control API.
        let details = crate::auth::Details {
            protocol: module_of_path(api_path).unwrap_or(""),
            id: q.get("id").unwrap_or(""),
            query: uri.query().unwrap_or(""),
        };
        if session_op {
            (false, String::new())
        } else {
            let denied = auth.authorize(&asked, details).await.is_err();
            (denied, auth.shown_user(&asked.presented))
        }
    };
    if denied {
        if let Some(p) = peer {
            tracing::info!(peer = %p, path = %request.uri().path(), "api: unauthorized request");
        }
        let mut r = (StatusCode::UNAUTHORIZED, "401 Unauthorized\n").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"camrelay\""));
        return r;
    }
    // Who it is, for the handlers that list their sessions (WHEP/WHIP readers and publishers).
    request.extensions_mut().insert(crate::auth::AuthenticatedUser(user));
    let mut response = next.run(request).await;
    if cors {
        add_cors(response.headers_mut());
    }
    response
}

/// CSRF (go2rtc's CVE-2024-29192 was a cross-site `POST /api/config`): a state-changing request
/// (`POST`, `PUT`, `PATCH`, `DELETE`) that a browser sent from another site is refused. Browsers name
/// the page's origin in `Origin` on such requests; a request without one (curl, Home Assistant, any
/// non-browser client) passes. The origin passes when it is this server (its authority is the `Host`
/// or `X-Forwarded-Host`) or allowed by `api.origin` (`*`; an exact origin is also accepted).
/// Even then, a cross-origin request to the control API must not be a "simple" one (`text/plain`,
/// a form, no content type with a body), which a page can send without a CORS preflight; media
/// signalling (WHEP/WHIP SDP, which players post as `text/plain`) is exempt.
fn cross_site_refusal(cfg: &crate::config::ApiConfig, request: &Request) -> Option<String> {
    if !matches!(*request.method(), Method::POST | Method::PUT | Method::PATCH | Method::DELETE) {
        return None;
    }
    let headers = request.headers();
    let origin = headers.get(header::ORIGIN)?.to_str().unwrap_or("null").trim();
    let authority = origin.split_once("://").map(|(_, a)| a.trim_end_matches('/')).unwrap_or("");
    let same = |name: header::HeaderName| {
        headers.get(name).and_then(|h| h.to_str().ok()).is_some_and(|h| {
            let h = h.split(',').next().unwrap_or("").trim();
            !authority.is_empty() && h.eq_ignore_ascii_case(authority)
        })
    };
    if same(header::HOST) || same(header::HeaderName::from_static("x-forwarded-host")) {
        return None;
    }
    let allowed = cfg.origin.trim() == "*" || cfg.origin.split(',').any(|o| o.trim().eq_ignore_ascii_case(origin));
    if !allowed {
        return Some(format!(
            "cross-site request refused: Origin {origin:?} is not this server (allow it with api.origin)"
        ));
    }
    if module_of_path(path_in_api(&cfg.base_path, request.uri().path())).is_some() {
        return None;
    }
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let has_body = headers.get(header::CONTENT_LENGTH).is_some_and(|l| l != "0")
        || headers.contains_key(header::TRANSFER_ENCODING);
    let simple = matches!(essence.as_str(), "text/plain" | "application/x-www-form-urlencoded" | "multipart/form-data")
        || (essence.is_empty() && has_body);
    simple.then(|| {
        format!(
            "cross-site request refused: a {} body from Origin {origin:?} (send application/json or application/yaml)",
            if essence.is_empty() { "content-type-less" } else { essence.as_str() }
        )
    })
}

/// `GET /api/health`: the process answers (for supervisors' liveness checks).
async fn health(State(app): State<Arc<App>>) -> Response {
    let uptime = app.started.elapsed().map(|d| d.as_secs_f64()).unwrap_or(0.0);
    Json(json!({ "status": "ok", "uptime_seconds": uptime })).into_response()
}

/// `GET /api/ready`: 200 once every configured listener is up and the config is loaded (the process
/// exits if a listener cannot start), 503 before, for readiness checks; nothing has to read the log.
async fn ready(State(app): State<Arc<App>>) -> Response {
    match app.ready.get() {
        Some(_) if !app.shutdown.is_cancelled() => {
            Json(json!({ "status": "ready", "streams": app.hub.streams().len() })).into_response()
        }
        _ => (StatusCode::SERVICE_UNAVAILABLE, Json(json!({ "status": "starting" }))).into_response(),
    }
}

/// A request path without `api.base_path`.
fn path_in_api<'a>(base_path: &str, full_path: &'a str) -> &'a str {
    let base = base_path.trim_end_matches('/');
    full_path.strip_prefix(base).filter(|p| p.starts_with('/')).unwrap_or(full_path)
}

/// The go2rtc module (`app.modules`) that serves an API path; `None` for the core API and the UI.
fn module_of_path(path: &str) -> Option<&'static str> {
    Some(match path {
        "/api/stream.mp4" | "/api/frame.mp4" => "mp4",
        "/api/stream.ts" | "/api/stream.aac" => "mpegts",
        "/api/stream.flv" => "rtmp",
        "/api/stream.m3u8" => "hls",
        p if p.starts_with("/api/hls/") => "hls",
        "/api/stream.mjpeg" | "/api/frame.jpeg" => "mjpeg",
        "/api/ws" => "ws",
        "/api/webrtc" => "webrtc",
        _ => return None,
    })
}

/// go2rtc's `api.allow_paths` and `app.modules` for one request path: a path that is not allowed, or
/// whose module is off, does not exist (404), as in go2rtc where such handlers are never registered.
fn refuse_path(app: &App, full_path: &str) -> Option<Response> {
    let cfg = &app.config().api;
    let path = path_in_api(&cfg.base_path, full_path);
    if let Some(module) = module_of_path(path) {
        if !app.config().app.enabled(module) {
            return Some(error(StatusCode::NOT_FOUND, format!("not found: the {module} module is off (app.modules)")));
        }
    }
    if cfg.allow_paths.is_empty() {
        return None;
    }
    let is_api = path == "/api" || path.starts_with("/api/");
    // `/` stands for the web UI's pages and files, as go2rtc's root handler serves them.
    let allowed = cfg.allow_paths.iter().any(|p| p == path) || (!is_api && cfg.allow_paths.iter().any(|p| p == "/"));
    (!allowed).then(|| error(StatusCode::NOT_FOUND, "not found (api.allow_paths)"))
}

fn add_cors(h: &mut HeaderMap) {
    h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
    h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
    // WHEP/WHIP clients on other origins read the session URL and the ICE servers.
    h.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static("Link, Location"));
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The go2rtc release whose HTTP API, config keys and URLs camrelay implements, reported as `version`
/// by `GET /api`. Clients gate on it (Home Assistant's `go2rtc-client` accepts >= 1.9.13 and < 2.0.0
/// and restarts a server it rejects), so it names the API level, not camrelay's own release, which
/// is `camrelay_version`.
pub const GO2RTC_API_VERSION: &str = "1.9.13";

async fn api_info(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("").to_string();
    Json(json!({
        "version": GO2RTC_API_VERSION,
        "camrelay_version": env!("CARGO_PKG_VERSION"),
        "config_path": app.config_path.display().to_string(),
        "host": host,
        "pid": std::process::id(),
        "rtsp": { "listen": app.config().rtsp.listen, "default_query": app.config().rtsp.default_query },
    }))
    .into_response()
}

async fn schemes(State(app): State<Arc<App>>) -> Response {
    Json(app.hub.schemes()).into_response()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
}

fn codec_json(kind: media::Kind, codec: &media::Codec) -> Value {
    let mut v = json!({
        "codec_name": codec.short_name().to_ascii_lowercase(),
        "codec_type": kind.as_str(),
        "clock_rate": codec.clock_rate,
        "payload_type": codec.payload_type,
    });
    if codec.channels > 0 {
        v["channels"] = json!(codec.channels);
    }
    v
}

fn producer_json(p: &Producer) -> Value {
    let mut v = json!({ "id": p.id, "url": p.masked_url(), "state": p.state().as_str() });
    let scheme = Hub::scheme_of(v["url"].as_str().unwrap_or("")).to_string();
    v["format_name"] = json!(scheme);
    if let ProducerKind::Pushed { protocol, remote_addr } = &p.kind {
        v["protocol"] = json!(protocol);
        v["remote_addr"] = json!(remote_addr);
        v["format_name"] = json!(protocol.split('+').next().unwrap_or(protocol));
    }
    if let ProducerKind::Pulled(source) = &p.kind {
        if let Some(info) = source.connection_info() {
            if let Some(addr) = info.remote_addr {
                v["remote_addr"] = json!(addr);
            }
            v["bytes_recv"] = json!(info.bytes_recv);
        }
        if let Some(s) = source.receive_stats() {
            v["receive"] = json!({
                "packets": s.packets,
                "packets_lost": s.packets_lost,
                "packets_reordered": s.packets_reordered,
                "packets_rejected": s.packets_rejected,
                "packets_in_error": s.packets_in_error,
            });
        }
    }
    if let Some(medias) = p.known_medias() {
        v["medias"] = json!(medias.iter().map(|m| m.to_string()).collect::<Vec<_>>());
        let receivers: Vec<Value> = p
            .tracks()
            .iter()
            .map(|t| {
                json!({
                    "id": t.id,
                    "codec": codec_json(t.kind, &t.codec),
                    "readers": t.reader_count(),
                    "frames": t.frames.load(std::sync::atomic::Ordering::Relaxed),
                    "bytes": t.bytes.load(std::sync::atomic::Ordering::Relaxed),
                })
            })
            .collect();
        v["receivers"] = json!(receivers);
    }
    if let Some(e) = p.last_error() {
        v["last_error"] = json!(e);
    }
    if !p.is_pushed() {
        v["reconnects"] = json!(p.reconnects());
    }
    if let Some(kind) = p.last_error_kind() {
        v["last_error_kind"] = json!(kind.as_str());
    }
    if let Some(t) = p.started() {
        v["started_ms"] = json!(unix_ms(t));
    }
    v["readers"] = json!(p.readers());
    v
}

pub fn stream_json(s: &Stream) -> Value {
    stream_json_with_pushes(s, &[])
}

/// The stream as `GET /api/streams` shows it, with the server's push targets of it (`publish:`,
/// `POST /api/streams?src=&dst=`) among its consumers.
pub fn app_stream_json(app: &App, s: &Stream) -> Value {
    let mut v = stream_json_with_pushes(s, &app.pushes.for_stream(&s.name));
    if let Some(r) = app.recorders.status(&s.name) {
        v["recording"] = crate::record::api::status_json(&r);
    }
    v
}

/// A push target as a consumer: its reader's counters, the destination and the target's state.
fn push_json(p: &PushStatus) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let r = &p.shared;
    let mut v = json!({
        "id": r.id,
        "format_name": r.protocol().split('+').next().unwrap_or_default(),
        "protocol": r.protocol(),
        "url": p.url,
        "remote_addr": p.remote_addr(),
        "medias": r.medias.lock().map(|m| m.clone()).unwrap_or_default(),
        "bytes_send": r.bytes_sent.load(Relaxed),
        "packets_send": r.packets_sent.load(Relaxed),
        "dropped": r.dropped.load(Relaxed),
        "started_ms": unix_ms(p.started),
        "publish": {
            "state": p.state().as_str(),
            "origin": p.origin().as_str(),
            "reconnects": p.reconnects(),
        },
    });
    if let Some(e) = p.last_error() {
        v["publish"]["last_error"] = json!(e.message);
        v["publish"]["last_error_kind"] = json!(e.kind.as_str());
    }
    v
}

fn stream_json_with_pushes(s: &Stream, pushes: &[Arc<PushStatus>]) -> Value {
    use std::sync::atomic::Ordering::Relaxed;
    let producers: Vec<Value> = s.producers().iter().map(|p| producer_json(p)).collect();
    let mut consumers: Vec<Value> = s
        .readers()
        .iter()
        .filter(|r| !pushes.iter().any(|p| p.id() == r.id))
        .map(|r| {
            json!({
                "id": r.id,
                "format_name": r.protocol().split('+').next().unwrap_or_default(),
                "protocol": r.protocol(),
                "remote_addr": r.remote_addr,
                "user_agent": r.user_agent.lock().map(|u| u.clone()).unwrap_or_default(),
                "medias": r.medias.lock().map(|m| m.clone()).unwrap_or_default(),
                "bytes_send": r.bytes_sent.load(Relaxed),
                "packets_send": r.packets_sent.load(Relaxed),
                "dropped": r.dropped.load(Relaxed),
                "started_ms": unix_ms(r.started),
            })
        })
        .collect();
    consumers.extend(pushes.iter().map(|p| push_json(p)));
    json!({
        "producers": if producers.is_empty() { Value::Null } else { Value::Array(producers) },
        "consumers": if consumers.is_empty() { Value::Null } else { Value::Array(consumers) },
    })
}

async fn streams_get(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    if let Some(src) = q.get("src") {
        return match app.hub.get(src) {
            Some(s) => {
                if q.get("probe").is_some() {
                    probe_sources(&s).await;
                }
                Json(app_stream_json(&app, &s)).into_response()
            }
            None => error(StatusCode::NOT_FOUND, format!("stream not found: {src}")),
        };
    }
    let all: serde_json::Map<String, Value> =
        app.hub.streams().iter().map(|s| (s.name.clone(), app_stream_json(&app, s))).collect();
    Json(Value::Object(all)).into_response()
}

/// How long `GET /api/streams?src=NAME&probe=1` waits for the sources to describe their medias.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// `&probe=1`: asks each source that has not described its medias yet (an idle one) to do so (the
/// same lazy describe a reader's request does; the connection is kept for the next reader), within
/// [`PROBE_TIMEOUT`], so the answer lists every source's `medias`. The player picks its mode with them.
async fn probe_sources(s: &Stream) {
    let unknown: Vec<_> = s.producers().into_iter().filter(|p| p.known_medias().is_none()).collect();
    let describe = futures_util::future::join_all(unknown.iter().map(|p| p.medias()));
    // A source that fails or is slow shows its `last_error`/state, as without probe.
    let _ = tokio::time::timeout(PROBE_TIMEOUT, describe).await;
}

/// Sources a client may not create over the API (they run programs) unless `api.allow_exec` is set.
pub(crate) fn check_sources_allowed(app: &App, urls: &[String]) -> Result<(), ApiError> {
    if app.config().api.allow_exec {
        return Ok(());
    }
    for url in urls {
        let scheme = Hub::scheme_of(url);
        // `#input=file` names a template; `#input=-re -i ...` and `#raw=` pass arguments to ffmpeg.
        let raw_input = url
            .split('#')
            .skip(1)
            .any(|p| p.strip_prefix("input=").is_some_and(|v| v.starts_with('-') || v.contains(char::is_whitespace)));
        let raw_ffmpeg = scheme == "ffmpeg" && (url.contains("#raw=") || raw_input);
        if matches!(scheme, "exec" | "echo" | "expr") || raw_ffmpeg {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("{scheme}: sources run programs and cannot be set over the API (set api.allow_exec: true in the config to allow it)"),
            ));
        }
    }
    Ok(())
}

fn validate_name(name: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError(StatusCode::BAD_REQUEST, "missing stream name (name= or src=)".into()));
    }
    if name.len() > 256 || name.chars().any(|c| c.is_control()) {
        return Err(ApiError(StatusCode::BAD_REQUEST, "invalid stream name".into()));
    }
    Ok(())
}

/// `PUT /api/streams?name=NAME&src=URL[&src=URL2]`: create or replace, and save to the config file.
async fn streams_put(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let srcs: Vec<String> = q.all("src").into_iter().filter(|s| !s.is_empty()).collect();
    let name = q.get("name").map(str::to_string).or_else(|| srcs.first().cloned()).unwrap_or_default();
    let srcs = match unmask_sources(&app, &name, srcs) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = validate_name(&name).and_then(|_| check_sources_allowed(&app, &srcs)) {
        return e.into_response();
    }
    if let Err(e) = app.hub.validate_sources(&srcs) {
        return error(StatusCode::BAD_REQUEST, format!("stream {name}: {e}"));
    }
    let _guard = app.config_write.lock().await;
    // The same sources again (Home Assistant re-adds a stream whenever the masked URLs it reads back
    // differ from its own): keep the running sources and their viewers.
    let unchanged = app.hub.get(&name).is_some_and(|s| s.pulls_exactly(&srcs));
    if !unchanged {
        if let Err(e) = app.hub.set_stream(&name, &srcs) {
            return error(StatusCode::BAD_REQUEST, format!("stream {name}: {e}"));
        }
    }
    if let Err(e) = crate::config::patch_stream(&app.config_path, &name, Some(&srcs)) {
        tracing::error!(path = %app.config_path.display(), "cannot save stream {name}: {e}");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stream {name} created but not saved to {}: {e}", app.config_path.display()),
        );
    }
    tracing::info!(stream = %name, sources = ?srcs.iter().map(|s| mask_url(s)).collect::<Vec<_>>(), "stream saved");
    streams_ok(&app, &name)
}

/// Sources as the API showed them (`rtsp://admin:***@cam/`) mean the stream's current source with that
/// masked form, so a client can edit a stream without knowing its passwords. A `***` that matches none
/// is refused rather than saved as a password.
fn unmask_sources(app: &App, name: &str, srcs: Vec<String>) -> Result<Vec<String>, ApiError> {
    let producers = app.hub.get(name).map(|s| s.producers()).unwrap_or_default();
    srcs.into_iter()
        .map(|src| {
            if !src.contains("***") {
                return Ok(src);
            }
            producers.iter().find_map(|p| p.url_if_masked_as(&src)).ok_or_else(|| {
                ApiError(
                    StatusCode::BAD_REQUEST,
                    format!("source {src}: \"***\" hides a secret of a source this stream does not have; type it in"),
                )
            })
        })
        .collect()
}

fn streams_ok(app: &App, name: &str) -> Response {
    match app.hub.get(name) {
        Some(s) => Json(app_stream_json(app, &s)).into_response(),
        None => error(StatusCode::NOT_FOUND, format!("stream not found: {name}")),
    }
}

/// `PATCH /api/streams?name=NAME&src=URL`: change (or create) a stream's sources, not saved.
async fn streams_patch(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let srcs: Vec<String> = q.all("src").into_iter().filter(|s| !s.is_empty()).collect();
    let name = q.get("name").or_else(|| q.get("dst")).map(str::to_string).unwrap_or_default();
    let srcs = match unmask_sources(&app, &name, srcs) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = validate_name(&name).and_then(|_| check_sources_allowed(&app, &srcs)) {
        return e.into_response();
    }
    match app.hub.set_stream(&name, &srcs) {
        Ok(_) => streams_ok(&app, &name),
        Err(e) => error(StatusCode::BAD_REQUEST, format!("stream {name}: {e}")),
    }
}

/// `POST /api/streams?dst=NAME&src=URL`: two-way audio — play `src`'s audio into the backchannel of
/// stream `dst`; an empty `src` stops it. As in go2rtc, when `dst` is no stream but `src` is one,
/// `POST /api/streams?src=NAME&dst=URL` publishes stream `src` to the URL (`rtsp[s]://`,
/// `rtmp[s]://`) until the server stops or `DELETE /api/streams?src=NAME&dst=URL`.
async fn streams_post(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let Some(dst) = q.get("dst").filter(|d| !d.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, "missing dst= (the stream whose backchannel plays the audio)");
    };
    let src = q.get("src").unwrap_or("").to_string();
    if app.hub.get(dst).is_none() && !src.is_empty() {
        if let Some(stream) = app.hub.get(&src) {
            return match app.pushes.start(&app.hub, &stream.name, dst, crate::push::Origin::Api) {
                Ok(_) => Json(app_stream_json(&app, &stream)).into_response(),
                Err(e) if e.kind == crate::push::PushErrorKind::Limit => {
                    error(StatusCode::SERVICE_UNAVAILABLE, format!("publish {src}: {e}"))
                }
                Err(e) => error(StatusCode::BAD_REQUEST, format!("publish {src}: {e}")),
            };
        }
    }
    if let Err(e) = check_sources_allowed(&app, std::slice::from_ref(&src)) {
        return e.into_response();
    }
    match app.hub.play(dst, &src).await {
        Ok(()) => streams_ok(&app, dst),
        Err(HubError::NotFound(n)) => error(StatusCode::NOT_FOUND, format!("stream not found: {n}")),
        Err(e @ (HubError::UnknownScheme(_) | HubError::NotMatched(_))) => {
            error(StatusCode::BAD_REQUEST, format!("stream {dst}: {e}"))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("stream {dst}: {e}")),
    }
}

/// `DELETE /api/streams?src=NAME`: remove the stream and its config entry (and the pushes of it the
/// API started). `DELETE /api/streams?src=NAME&dst=URL` only stops publishing the stream to the URL.
async fn streams_delete(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let name = q.get("src").or_else(|| q.get("name")).unwrap_or("").to_string();
    if let Err(e) = validate_name(&name) {
        return e.into_response();
    }
    if let Some(dst) = q.get("dst").filter(|d| !d.is_empty()) {
        return if app.pushes.stop(&name, dst) {
            StatusCode::OK.into_response()
        } else {
            error(StatusCode::NOT_FOUND, format!("stream {name} is not published to {}", mask_url(dst)))
        };
    }
    let _guard = app.config_write.lock().await;
    if !app.hub.remove_stream(&name) {
        return error(StatusCode::NOT_FOUND, format!("stream not found: {name}"));
    }
    app.pushes.stop_stream(&name, crate::push::Origin::Api);
    let preloaded = app.preloads.stop(&name);
    if app.config_path.exists() {
        let saved = crate::config::patch_stream(&app.config_path, &name, None).and_then(|()| {
            if preloaded {
                crate::config::patch_preload(&app.config_path, &name, None)
            } else {
                Ok(())
            }
        });
        if let Err(e) = saved {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("stream {name} removed but the config file was not updated: {e}"),
            );
        }
    }
    tracing::info!(stream = %name, "stream deleted");
    StatusCode::OK.into_response()
}

/// `GET /api/preload`: `{"name": {"query": "video&audio"}, ...}` (go2rtc's shape).
async fn preload_get(State(app): State<Arc<App>>) -> Response {
    let map: serde_json::Map<String, Value> =
        app.preloads.list().into_iter().map(|(name, query)| (name, json!({ "query": query }))).collect();
    Json(Value::Object(map)).into_response()
}

/// `PUT /api/preload?src=NAME[&video_codec_filter=h264,h265][&audio_codec_filter=opus]
/// [&microphone_codec_filter=pcmu]`: keeps the stream's sources running with no viewer, and saves it
/// under `preload:` in the config file.
async fn preload_put(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let name = q.get("src").unwrap_or("").to_string();
    if let Err(e) = validate_name(&name) {
        return e.into_response();
    }
    if app.hub.get(&name).is_none() {
        return error(StatusCode::NOT_FOUND, format!("stream not found: {name}"));
    }
    let query = preload_query(&q);
    let _guard = app.config_write.lock().await;
    app.preloads.start(&app.hub, &name, &query);
    if let Err(e) = crate::config::patch_preload(&app.config_path, &name, Some(&query)) {
        tracing::error!(path = %app.config_path.display(), "cannot save preload {name}: {e}");
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("stream {name} preloaded but not saved to {}: {e}", app.config_path.display()),
        );
    }
    StatusCode::OK.into_response()
}

/// The reader query of a preload from go2rtc's codec filter parameters: `video&audio` (any codec)
/// when none is given; each given filter narrows its kind (`video=h264,h265`).
fn preload_query(q: &Query) -> String {
    let filter = |key: &str| q.get(key).map(|v| v.trim().to_ascii_lowercase()).filter(|v| !v.is_empty());
    let mut parts = Vec::new();
    for (kind, key) in
        [("video", "video_codec_filter"), ("audio", "audio_codec_filter"), ("microphone", "microphone_codec_filter")]
    {
        match filter(key) {
            Some(codecs) => parts.push(format!("{kind}={codecs}")),
            // The microphone (two-way audio) is only preloaded when asked for.
            None if kind != "microphone" => parts.push(kind.to_string()),
            None => {}
        }
    }
    parts.join("&")
}

/// `DELETE /api/preload?src=NAME`: ends the preload (the sources stop once idle) and removes it
/// from the config file.
async fn preload_delete(State(app): State<Arc<App>>, request: Request<Body>) -> Response {
    let q = Query::from_uri(request.uri());
    let name = q.get("src").unwrap_or("").to_string();
    if let Err(e) = validate_name(&name) {
        return e.into_response();
    }
    let _guard = app.config_write.lock().await;
    if !app.preloads.stop(&name) {
        return error(StatusCode::NOT_FOUND, format!("stream {name} is not preloaded"));
    }
    if app.config_path.exists() {
        if let Err(e) = crate::config::patch_preload(&app.config_path, &name, None) {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("preload {name} stopped but the config file was not updated: {e}"),
            );
        }
    }
    StatusCode::OK.into_response()
}

/// `GET /api/config`: the config file as text, secrets masked.
async fn config_get(State(app): State<Arc<App>>) -> Response {
    match crate::config::read_masked(&app.config_path) {
        Ok(text) => ([(header::CONTENT_TYPE, "application/yaml")], text).into_response(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => error(StatusCode::NOT_FOUND, "no config file"),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot read the config file: {e}")),
    }
}

/// `POST /api/config`: replaces the config file with the body (YAML) after validating it like at
/// startup. Secrets shown masked by `GET /api/config` are put back from the current file. Changes apply
/// at the next start (streams can be changed live with `PUT /api/streams`).
async fn config_post(State(app): State<Arc<App>>, body: axum::body::Bytes) -> Response {
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(StatusCode::BAD_REQUEST, "the config must be UTF-8 text");
    };
    let _guard = app.config_write.lock().await;
    let original = std::fs::read_to_string(&app.config_path).unwrap_or_default();
    let Some(text) = crate::config::unmask(text, &original) else {
        return error(
            StatusCode::BAD_REQUEST,
            "a line with a hidden secret (***) was changed: write the secret out in full on that line",
        );
    };
    let shown = app.config_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let warnings = match crate::config::validate_text(&text, &shown, &|k| std::env::var(k).ok()) {
        Ok(w) => w,
        Err(e) => return error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    if let Err(e) = crate::config::write_file(&app.config_path, &text) {
        return error(StatusCode::INTERNAL_SERVER_ERROR, format!("cannot write {}: {e}", app.config_path.display()));
    }
    tracing::info!(path = %app.config_path.display(), "config saved through the API");
    // Applied at once, as an edit of the file would be (the watcher then finds nothing new).
    let reloaded = match app.reload() {
        Ok(report) => json!({
            "added": report.added, "replaced": report.replaced, "removed": report.removed,
            "needs_restart": report.needs_restart,
        }),
        Err(e) => json!({ "error": e }),
    };
    Json(json!({ "saved": true, "warnings": warnings, "reloaded": reloaded })).into_response()
}

/// `GET /api/log`: the most recent log lines (text, secrets masked).
async fn log_get(State(app): State<Arc<App>>) -> Response {
    let text = app.logs.get().map(|l| l.text()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

/// `DELETE /api/log`: forgets the kept lines.
async fn log_delete(State(app): State<Arc<App>>) -> Response {
    if let Some(l) = app.logs.get() {
        l.clear();
    }
    StatusCode::OK.into_response()
}
