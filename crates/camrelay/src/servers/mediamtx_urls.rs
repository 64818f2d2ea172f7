//! MediaMTX's HLS and WebRTC HTTP servers, with its URL shapes, in front of the same handlers as
//! go2rtc's API (no second HLS muxer or WebRTC stack):
//!
//! - HLS (`hlsAddress`, default `:8888` from a MediaMTX config): `/PATH/index.m3u8` (the stream's
//!   multivariant playlist, in the `hlsVariant`: LL-HLS by default), `/PATH/hls/...` (its media playlist,
//!   init, segments and LL-HLS parts), `/PATH/` (a player page, hls.js).
//! - WebRTC (`webrtcAddress`, default `:8889`): `POST /PATH/whep` (read), `POST /PATH/whip` (publish),
//!   `PATCH`/`DELETE` of the session URL the answer names, `/PATH/` (a player page, WHEP).
//!
//! Each request is rewritten to go2rtc's form (`/api/stream.m3u8?src=PATH`, `/api/webrtc?src=PATH`)
//! and handed to the API router, so auth, CORS, limits and the hub are the API's. PATH may contain
//! slashes (`live/cam1`), as in MediaMTX.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::sync::Arc;
use tower::ServiceExt;

use crate::app::{App, ServerTask};
use crate::config::HlsVariant;

/// Which MediaMTX server a listener is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Hls,
    Webrtc,
}

pub async fn start_hls(app: Arc<App>) -> std::io::Result<ServerTask> {
    let listen = app.config().servers.hls_listen.clone();
    always_remux(&app, &listen);
    start(app, Kind::Hls, "hls", &listen).await
}

pub async fn start_webrtc(app: Arc<App>) -> std::io::Result<ServerTask> {
    let listen = app.config().servers.webrtc_http_listen.clone();
    start(app, Kind::Webrtc, "webrtc http", &listen).await
}

/// MediaMTX's `hlsEncryption: true`: the HLS listener serves HTTPS (`hlsServerCert`/`hlsServerKey`).
pub async fn start_hls_tls(app: Arc<App>) -> std::io::Result<ServerTask> {
    let settings = app.config().servers.hls_tls.clone();
    always_remux(&app, &settings.listen);
    start_tls(app, Kind::Hls, "hls", settings, ("hlsServerCert", "hlsServerKey")).await
}

/// MediaMTX's `webrtcEncryption: true`: the WebRTC HTTP listener serves HTTPS (browsers allow WebRTC
/// only in secure pages, apart from localhost).
pub async fn start_webrtc_tls(app: Arc<App>) -> std::io::Result<ServerTask> {
    let settings = app.config().servers.webrtc_http_tls.clone();
    start_tls(app, Kind::Webrtc, "webrtc http", settings, ("webrtcServerCert", "webrtcServerKey")).await
}

/// `hlsAlwaysRemux: yes` with an HLS listener: muxers for every ready path (servers/hls.rs).
fn always_remux(app: &Arc<App>, listen: &str) {
    let hls = &app.config().servers.hls;
    if hls.always_remux && !listen.is_empty() {
        super::hls::spawn_always_remux(app.clone(), variant_query(hls.variant));
    }
}

/// The listener's router: MediaMTX's URL shapes onto go2rtc's API handlers.
fn router(app: &Arc<App>, kind: Kind) -> Router {
    let api = super::api::router(app.clone());
    let app = app.clone();
    Router::new().fallback(move |request: Request| {
        let api = api.clone();
        let variant = app.config().servers.hls.variant;
        async move { handle(kind, variant, api, request).await }
    })
}

async fn start_tls(
    app: Arc<App>,
    kind: Kind,
    what: &'static str,
    settings: crate::config::TlsListen,
    (cert, key): (&str, &str),
) -> std::io::Result<ServerTask> {
    use crate::tls::server::{PemSetting, ServerTls, TlsIncoming};
    use axum::serve::ListenerExt;
    if crate::config::bind_address(&settings.listen).is_none() {
        return Ok(None);
    }
    let tls = ServerTls::load(
        what,
        PemSetting::new(cert, &settings.cert),
        PemSetting::new(key, &settings.key),
        &[b"http/1.1"],
    )
    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{what}: {e}")))?;
    let Some(listener) = super::bind_tcp_tls(what, &settings.listen).await? else {
        return Ok(None);
    };
    tls.watch(app.shutdown.clone());
    // `tap_io` only to get the peer's address as `ConnectInfo<SocketAddr>`, as on plain TCP.
    let incoming = TlsIncoming::new(listener, tls, app.shutdown.clone())?.tap_io(|_| {});
    let router = router(&app, kind);
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(incoming, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("{kind:?} tls server: {e}");
        }
    })))
}

async fn start(app: Arc<App>, kind: Kind, what: &str, listen: &str) -> std::io::Result<ServerTask> {
    let Some(listener) = super::bind_tcp(what, listen).await? else {
        return Ok(None);
    };
    let router = router(&app, kind);
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<std::net::SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("{kind:?} server: {e}");
        }
    })))
}

/// What a MediaMTX URL asks for.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// The same request on go2rtc's API at this path and query.
    Api(String),
    /// The player page of a stream.
    Page(String),
    /// The hls.js script of the player page.
    HlsScript,
    NotFound,
}

/// For the fuzz target (`camrelay::fuzzing::mediamtx_url`): the go2rtc API URI a MediaMTX URL maps
/// to, `page:NAME` for a player page, `script` or `None` (not found).
pub(crate) fn route_for_fuzzing(hls: bool, method: &Method, path: &str, query: Option<&str>) -> Option<String> {
    let kind = if hls { Kind::Hls } else { Kind::Webrtc };
    match route(kind, HlsVariant::LowLatency, method, path, query) {
        Target::Api(to) => Some(to),
        Target::Page(stream) => Some(format!("page:{stream}")),
        Target::HlsScript => Some("script".to_string()),
        Target::NotFound => None,
    }
}

/// The go2rtc API query of MediaMTX's `hlsVariant` (`mtx`: cut by `hlsSegmentCount`...). The fMP4
/// variants take G.711 and LPCM cameras' audio too, repacked as FLAC (`mp4=flac`): MediaMTX leaves it
/// out, so a G.711 camera played silent in its HLS; hls.js and ffmpeg play FLAC in fMP4.
fn variant_query(variant: HlsVariant) -> &'static str {
    match variant {
        HlsVariant::LowLatency => "mp4=flac&ll&mtx",
        HlsVariant::Fmp4 => "mp4=flac&mtx",
        HlsVariant::Mpegts => "video=h264,h265&audio=aac&mtx",
    }
}

/// Maps a MediaMTX URL (path and query) to go2rtc's API.
fn route(kind: Kind, variant: HlsVariant, method: &Method, path: &str, query: Option<&str>) -> Target {
    let extra = query.map(|q| format!("&{q}")).unwrap_or_default();
    let path = path.trim_start_matches('/');
    // The WHEP/WHIP session URLs the answers name (`/api/webrtc?id=`), and the API's HLS parts.
    if path == "api/webrtc" && kind == Kind::Webrtc {
        return Target::Api(format!("/api/webrtc?{}", query.unwrap_or("")));
    }
    if kind == Kind::Hls {
        if let Some((stream, file)) = path.rsplit_once("/hls/") {
            if !stream.is_empty() && !file.contains('/') {
                return Target::Api(format!("/api/hls/{file}?{}", query.unwrap_or("")));
            }
        }
    }
    let (stream, last) = match path.rsplit_once('/') {
        Some((stream, last)) => (stream, last),
        None => (path, ""),
    };
    if stream.is_empty() {
        return Target::NotFound;
    }
    let src = encode_component(stream);
    match (kind, last) {
        (Kind::Hls, "index.m3u8") => {
            // `hlsVariant`: LL-HLS (MediaMTX's default), fMP4 or MPEG-TS (H.264/H.265 and AAC).
            Target::Api(format!("/api/stream.m3u8?src={src}&{}{extra}", variant_query(variant)))
        }
        (Kind::Hls, "hls.min.js") => Target::HlsScript,
        (Kind::Webrtc, "whep") if method == Method::POST || method == Method::OPTIONS => {
            Target::Api(format!("/api/webrtc?src={src}{extra}"))
        }
        (Kind::Webrtc, "whip") if method == Method::POST || method == Method::OPTIONS => {
            Target::Api(format!("/api/webrtc?dst={src}{extra}"))
        }
        (_, "") if method == Method::GET => Target::Page(stream.to_string()),
        _ => Target::NotFound,
    }
}

/// Percent-encodes a stream name for a query value (everything but unreserved characters).
fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn handle(kind: Kind, variant: HlsVariant, api: Router, mut request: Request) -> Response {
    let uri = request.uri().clone();
    // `/PATH` without the slash: the page's relative URLs need it.
    if kind_page_without_slash(&uri, request.method()) {
        let mut r = StatusCode::MOVED_PERMANENTLY.into_response();
        let to = format!("{}/{}", uri.path(), uri.query().map(|q| format!("?{q}")).unwrap_or_default());
        if let Ok(v) = HeaderValue::from_str(&to) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        return r;
    }
    match route(kind, variant, request.method(), uri.path(), uri.query()) {
        Target::Api(to) => {
            let Ok(new_uri) = to.parse::<Uri>() else { return super::api::error(StatusCode::BAD_REQUEST, "bad path") };
            *request.uri_mut() = new_uri;
            match api.oneshot(request).await {
                Ok(r) => r,
                Err(never) => match never {},
            }
        }
        Target::Page(stream) => page(kind, &stream),
        Target::HlsScript => super::ui::asset_response("vendor/hls.light.min.js"),
        Target::NotFound => super::api::error(StatusCode::NOT_FOUND, "not found"),
    }
}

/// `GET /cam` (a stream name without the trailing slash and without a file part).
fn kind_page_without_slash(uri: &Uri, method: &Method) -> bool {
    let path = uri.path().trim_start_matches('/');
    method == Method::GET
        && !path.is_empty()
        && !path.ends_with('/')
        && !path.starts_with("api/")
        && !["index.m3u8", "whep", "whip", "hls.min.js"].iter().any(|f| path.ends_with(f))
        && !path.contains("/hls/")
}

/// MediaMTX's player pages: a full-window video of the stream.
fn page(kind: Kind, stream: &str) -> Response {
    let title: String = stream.chars().filter(|c| !matches!(c, '<' | '>' | '&' | '"' | '\'')).collect();
    let script = match kind {
        Kind::Hls => HLS_PAGE_SCRIPT,
        Kind::Webrtc => WEBRTC_PAGE_SCRIPT,
    };
    let html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>html,body{{margin:0;height:100%;background:#000}}\
         video{{width:100%;height:100%;object-fit:contain}}#error{{position:absolute;top:8px;left:8px;color:#fff;font:14px sans-serif}}</style>\
         </head><body><video id=\"video\" muted autoplay playsinline controls></video><div id=\"error\"></div>{script}</body></html>\n"
    );
    let mut r = Body::from(html).into_response();
    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

const HLS_PAGE_SCRIPT: &str = r#"<script src="hls.min.js"></script><script>
const video = document.getElementById('video');
const src = 'index.m3u8' + location.search;
// hls.js wherever MSE works (Chromium now claims native HLS too, but its native player is not what
// this stream is tested with); the browser's own player only where there is no MSE (iOS Safari).
if (window.Hls && Hls.isSupported()) {
  // After a stall (a loaded machine, a slow network) play up to 1.5x until back at the live edge:
  // hls.js otherwise stays as far behind as the stall left it.
  const hls = new Hls({ liveSyncDurationCount: 1, maxLiveSyncPlaybackRate: 1.5 });
  hls.on(Hls.Events.ERROR, (_, d) => { if (d.fatal) document.getElementById('error').textContent = d.details; });
  hls.loadSource(src);
  hls.attachMedia(video);
} else {
  video.src = src;
}
</script>"#;

const WEBRTC_PAGE_SCRIPT: &str = r#"<script>
(async () => {
  const video = document.getElementById('video');
  const pc = new RTCPeerConnection();
  const stream = new MediaStream();
  video.srcObject = stream;
  pc.ontrack = (e) => stream.addTrack(e.track);
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === 'failed') document.getElementById('error').textContent = 'WebRTC connection failed';
  };
  await pc.setLocalDescription(await pc.createOffer());
  const r = await fetch('whep' + location.search, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  if (!r.ok) { document.getElementById('error').textContent = await r.text(); return; }
  await pc.setRemoteDescription({ type: 'answer', sdp: await r.text() });
})();
</script>"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn route_ll(kind: Kind, method: &Method, path: &str, query: Option<&str>) -> Target {
        route(kind, HlsVariant::LowLatency, method, path, query)
    }

    #[test]
    fn mediamtx_urls_map_to_go2rtc_api() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(
            route_ll(Kind::Hls, &get, "/cam/index.m3u8", None),
            Target::Api("/api/stream.m3u8?src=cam&mp4=flac&ll&mtx".into())
        );
        assert_eq!(
            route_ll(Kind::Hls, &get, "/live/cam 1/index.m3u8", Some("x=1")),
            Target::Api("/api/stream.m3u8?src=live%2Fcam%201&mp4=flac&ll&mtx&x=1".into())
        );
        assert_eq!(
            route_ll(Kind::Hls, &get, "/cam/hls/playlist.m3u8", Some("id=abc")),
            Target::Api("/api/hls/playlist.m3u8?id=abc".into())
        );
        assert_eq!(
            route(Kind::Hls, HlsVariant::Mpegts, &get, "/cam/index.m3u8", None),
            Target::Api("/api/stream.m3u8?src=cam&video=h264,h265&audio=aac&mtx".into())
        );
        assert_eq!(
            route(Kind::Hls, HlsVariant::Fmp4, &get, "/cam/index.m3u8", None),
            Target::Api("/api/stream.m3u8?src=cam&mp4=flac&mtx".into())
        );
        assert_eq!(
            route_ll(Kind::Hls, &get, "/cam/hls/part.m4s", Some("id=abc&n=3&p=1")),
            Target::Api("/api/hls/part.m4s?id=abc&n=3&p=1".into())
        );
        assert_eq!(
            route_ll(Kind::Hls, &get, "/cam/hls/playlist.m3u8", Some("id=abc&_HLS_msn=4&_HLS_part=2")),
            Target::Api("/api/hls/playlist.m3u8?id=abc&_HLS_msn=4&_HLS_part=2".into())
        );
        assert_eq!(route_ll(Kind::Hls, &get, "/cam/", None), Target::Page("cam".into()));
        assert_eq!(route_ll(Kind::Hls, &get, "/cam/hls.min.js", None), Target::HlsScript);
        assert_eq!(route_ll(Kind::Hls, &get, "/", None), Target::NotFound);
        assert_eq!(route_ll(Kind::Hls, &get, "/cam/whep", None), Target::NotFound);
        assert_eq!(route_ll(Kind::Webrtc, &post, "/cam/whep", None), Target::Api("/api/webrtc?src=cam".into()));
        assert_eq!(route_ll(Kind::Webrtc, &post, "/a/b/whip", None), Target::Api("/api/webrtc?dst=a%2Fb".into()));
        assert_eq!(
            route_ll(Kind::Webrtc, &Method::DELETE, "/api/webrtc", Some("id=7")),
            Target::Api("/api/webrtc?id=7".into())
        );
        assert_eq!(route_ll(Kind::Webrtc, &get, "/cam/", None), Target::Page("cam".into()));
        assert_eq!(route_ll(Kind::Webrtc, &get, "/cam/index.m3u8", None), Target::NotFound);
    }
}
