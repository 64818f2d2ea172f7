//! Web UI: the static pages and assets of `www/`, embedded in the binary and served at `/` (under
//! `api.base_path` when set). Every URL in the pages is relative, so they work under any base path.

use axum::body::Body;
use axum::extract::OriginalUri;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use rust_embed::RustEmbed;
use std::borrow::Cow;
use std::sync::Arc;

use crate::app::App;

#[derive(RustEmbed)]
#[folder = "www/"]
struct Assets;

/// One route per embedded file (`/index.html`, `/player.js`, ...) plus `/` for the index.
pub fn routes() -> Router<Arc<App>> {
    let mut router = Router::new().route("/", get(index));
    for path in Assets::iter() {
        let path = path.into_owned();
        let route = format!("/{path}");
        router = router.route(&route, get(move || async move { asset(&path) }));
    }
    router
}

/// `api.static_dir` (go2rtc's): the files of that folder served at `/` instead of the embedded UI
/// (a custom web interface); `/` and folders serve their `index.html`.
pub fn static_dir_routes(dir: &str) -> Router<Arc<App>> {
    let root = std::path::PathBuf::from(dir);
    let for_index = root.clone();
    Router::new().route("/", get(move || static_file(for_index.clone(), String::new()))).route(
        "/{*path}",
        get(move |axum::extract::Path(path): axum::extract::Path<String>| static_file(root.clone(), path)),
    )
}

/// Limit of one file served from `static_dir` (pages and scripts, not media).
const STATIC_FILE_MAX: u64 = 64 * 1024 * 1024;

async fn static_file(root: std::path::PathBuf, path: String) -> Response {
    use std::path::Component;
    let relative = std::path::Path::new(&path);
    // Only plain names: no `..`, no absolute paths, nothing outside the folder.
    if relative.components().any(|c| !matches!(c, Component::Normal(_))) {
        return super::api::error(StatusCode::NOT_FOUND, "not found");
    }
    let mut file = root.join(relative);
    if path.is_empty() || path.ends_with('/') || tokio::fs::metadata(&file).await.is_ok_and(|m| m.is_dir()) {
        file = file.join("index.html");
    }
    match tokio::fs::metadata(&file).await {
        Ok(m) if m.is_file() && m.len() <= STATIC_FILE_MAX => {}
        _ => return super::api::error(StatusCode::NOT_FOUND, "not found"),
    };
    let Ok(data) = tokio::fs::read(&file).await else {
        return super::api::error(StatusCode::NOT_FOUND, "not found");
    };
    let mut r = Body::from(data).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(&file.to_string_lossy())));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

/// Under a base path the index is reached as `/base` (a nested router does not match `/base/`), where
/// the pages' relative URLs would resolve outside it: redirect to `/base/index.html`.
async fn index(OriginalUri(uri): OriginalUri) -> Response {
    let path = uri.path();
    if !path.ends_with('/') {
        let mut to = format!("{path}/index.html");
        if let Some(q) = uri.query() {
            to.push('?');
            to.push_str(q);
        }
        return Redirect::permanent(&to).into_response();
    }
    asset("index.html")
}

/// An embedded file of `www/` as a response (404 when there is none).
pub(crate) fn asset_response(path: &str) -> Response {
    asset(path)
}

fn asset(path: &str) -> Response {
    let Some(file) = Assets::get(path) else {
        return super::api::error(StatusCode::NOT_FOUND, "not found");
    };
    // Embedded files are `'static`: serve them without copying.
    let body = match file.data {
        Cow::Borrowed(b) => Body::from(Bytes::from_static(b)),
        Cow::Owned(v) => Body::from(v),
    };
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type(path)));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    r
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_and_asset_is_embedded_with_a_known_type() {
        for page in [
            "index.html",
            "stream.html",
            "links.html",
            "editor.html",
            "log.html",
            "style.css",
            "common.js",
            "index.js",
            "links.js",
            "player.js",
            "timeline.html",
            "timeline.js",
            "favicon.svg",
            "vendor/hls.light.min.js",
        ] {
            assert!(Assets::get(page).is_some(), "{page} missing from www/");
        }
        for path in Assets::iter() {
            assert_ne!(content_type(&path), "application/octet-stream", "{path}: add its content type");
        }
    }
}
