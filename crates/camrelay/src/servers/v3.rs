//! MediaMTX's control API (`/v3/...`, its OpenAPI: `docs/openapi-v3.yaml`), on the same listener as
//! go2rtc's `/api`. Like `/api`, it is a view of the model (the config) and of the hub, never a state
//! of its own (DESIGN.md, "One model, two dialects"):
//!
//! - `config/*` shows the config's MediaMTX settings (for a go2rtc config: MediaMTX's defaults, with
//!   go2rtc's streams as paths). Path add/patch/replace/delete change the running hub and are saved to
//!   the config file; global and `pathDefaults` patches are saved and apply at the next start.
//! - `paths/*` and the session lists read the hub: streams, their producers (the source or publisher)
//!   and readers. A session's id is a UUID made from the hub's reader or producer id, so it names the
//!   same reader for as long as it lives, without a table here. A kick ends the reader in the hub.
//! - Protocols camrelay has no server for yet (RTMP, SRT, RTSPS) answer empty lists. Recordings are
//!   listed from the recorder's file names (`record/`).

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::SystemTime;

use super::api::Query;
use crate::app::App;
use crate::config::mediamtx::{parse_mediamtx_duration, source_url};
use crate::config::{Dialect, MediamtxConfig};
use crate::hub::producer::ProducerKind;
use crate::hub::publish::PRIVATE_PREFIX;
use crate::hub::{Hub, Producer, ProducerState, ReaderShared, RtpCounters, Stream};
use crate::secrets::mask_url;

/// The MediaMTX release whose API this implements, reported as `version` by `/v3/info` (as `/api`
/// reports go2rtc's API level); camrelay's own release is `camrelay_version`.
pub const MEDIAMTX_API_VERSION: &str = "v1.17.0";

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route("/v3/info", get(info))
        // No JWT authentication yet: there is no key set to refresh, so the refresh succeeds at once
        // (MediaMTX answers the same when JWT is not its method).
        .route("/v3/auth/jwks/refresh", post(jwks_refresh))
        .route("/v3/config/global/get", get(global_get))
        .route("/v3/config/global/patch", patch(global_patch))
        .route("/v3/config/pathdefaults/get", get(path_defaults_get))
        .route("/v3/config/pathdefaults/patch", patch(path_defaults_patch))
        .route("/v3/config/paths/list", get(conf_paths_list))
        .route("/v3/config/paths/get/{*name}", get(conf_path_get))
        .route("/v3/config/paths/add/{*name}", post(conf_path_add))
        .route("/v3/config/paths/patch/{*name}", patch(conf_path_patch))
        .route("/v3/config/paths/replace/{*name}", post(conf_path_replace))
        .route("/v3/config/paths/delete/{*name}", delete(conf_path_delete))
        .route("/v3/paths/list", get(paths_list))
        .route("/v3/paths/get/{*name}", get(path_get))
        .route("/v3/rtspconns/list", get(|s, r| sessions_list(s, r, Kind::RtspConn)))
        .route("/v3/rtspconns/get/{id}", get(|s, p| session_get(s, p, Kind::RtspConn)))
        .route("/v3/rtspsessions/list", get(|s, r| sessions_list(s, r, Kind::RtspSession)))
        .route("/v3/rtspsessions/get/{id}", get(|s, p| session_get(s, p, Kind::RtspSession)))
        .route("/v3/rtspsessions/kick/{id}", post(|s, p| session_kick(s, p, Kind::RtspSession)))
        .route("/v3/webrtcsessions/list", get(|s, r| sessions_list(s, r, Kind::WebrtcSession)))
        .route("/v3/webrtcsessions/get/{id}", get(|s, p| session_get(s, p, Kind::WebrtcSession)))
        .route("/v3/webrtcsessions/kick/{id}", post(|s, p| session_kick(s, p, Kind::WebrtcSession)))
        .route("/v3/rtmpconns/list", get(|s, r| sessions_list(s, r, Kind::RtmpConn)))
        .route("/v3/rtmpconns/get/{id}", get(|s, p| session_get(s, p, Kind::RtmpConn)))
        .route("/v3/rtmpconns/kick/{id}", post(|s, p| session_kick(s, p, Kind::RtmpConn)))
        .route("/v3/rtmpsconns/list", get(|s, r| sessions_list(s, r, Kind::RtmpsConn)))
        .route("/v3/rtmpsconns/get/{id}", get(|s, p| session_get(s, p, Kind::RtmpsConn)))
        .route("/v3/rtmpsconns/kick/{id}", post(|s, p| session_kick(s, p, Kind::RtmpsConn)))
        .route("/v3/hlsmuxers/list", get(hls_muxers_list))
        .route("/v3/hlsmuxers/get/{*name}", get(hls_muxer_get))
        .route("/v3/rtspsconns/list", get(|s, r| sessions_list(s, r, Kind::RtspsConn)))
        .route("/v3/rtspsconns/get/{id}", get(|s, p| session_get(s, p, Kind::RtspsConn)))
        .route("/v3/rtspssessions/list", get(|s, r| sessions_list(s, r, Kind::RtspsSession)))
        .route("/v3/rtspssessions/get/{id}", get(|s, p| session_get(s, p, Kind::RtspsSession)))
        .route("/v3/rtspssessions/kick/{id}", post(|s, p| session_kick(s, p, Kind::RtspsSession)))
        .route("/v3/srtconns/list", get(|s, r| sessions_list(s, r, Kind::SrtConn)))
        .route("/v3/srtconns/get/{id}", get(|s, p| session_get(s, p, Kind::SrtConn)))
        .route("/v3/srtconns/kick/{id}", post(|s, p| session_kick(s, p, Kind::SrtConn)))
        // Recordings: what the recorder wrote (record/), read from the file names.
        .route("/v3/recordings/list", get(recordings_list))
        .route("/v3/recordings/get/{*name}", get(recording_get))
        .route("/v3/recordings/deletesegment", delete(delete_segment))
        .route("/v3", get(|| async { not_found("not found") }))
        .route("/v3/{*rest}", axum::routing::any(|| async { not_found("not found") }))
}

// ---- answers ----

/// MediaMTX's error body: `{"status":"error","error":"..."}`.
fn fail(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "status": "error", "error": message.into() }))).into_response()
}

fn bad_request(message: impl Into<String>) -> Response {
    fail(StatusCode::BAD_REQUEST, message)
}

fn not_found(message: impl Into<String>) -> Response {
    fail(StatusCode::NOT_FOUND, message)
}

/// A refused request on its way out (small, unlike a `Response`).
struct Fail(StatusCode, String);

impl IntoResponse for Fail {
    fn into_response(self) -> Response {
        fail(self.0, self.1)
    }
}

fn refuse(message: impl Into<String>) -> Fail {
    Fail(StatusCode::BAD_REQUEST, message.into())
}

fn ok() -> Response {
    Json(json!({ "status": "ok" })).into_response()
}

/// `POST /v3/auth/jwks/refresh`: fetches the JWT method's key set again, now (not rate limited; 400
/// when the fetch fails, naming why). Without the JWT method there is nothing to refresh: 200.
async fn jwks_refresh(State(app): State<Arc<App>>) -> Response {
    let auth = app.auth();
    let Some(keys) = auth.jwks() else { return ok() };
    match keys.fetch().await {
        Ok(_) => ok(),
        Err(e) => bad_request(format!("JWK set: {e}")),
    }
}

/// MediaMTX's pagination: `itemsPerPage` (default 100, not 0) and `page` (from 0); `itemCount` is the
/// number of all items, `pageCount` the number of pages (0 when there are none).
fn paginate(request: &Request, items: Vec<Value>) -> Response {
    let q = Query::from_uri(request.uri());
    let number = |key: &str, default: usize| -> Result<usize, String> {
        match q.get(key) {
            None | Some("") => Ok(default),
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| *n < 1 << 31)
                .map(|n| n as usize)
                .ok_or_else(|| format!("invalid {}: {v:?}", if key == "page" { "page" } else { "items per page" })),
        }
    };
    let (per_page, page) = match (number("itemsPerPage", 100), number("page", 0)) {
        (Ok(0), _) => return bad_request("invalid items per page: 0"),
        (Ok(per_page), Ok(page)) => (per_page, page),
        (Err(e), _) | (_, Err(e)) => return bad_request(e),
    };
    let count = items.len();
    let page_count = count.div_ceil(per_page);
    let start = page.saturating_mul(per_page).min(count);
    let end = start.saturating_add(per_page).min(count);
    let items: Vec<Value> = items.into_iter().skip(start).take(end - start).collect();
    Json(json!({ "pageCount": page_count, "itemCount": count, "items": items })).into_response()
}

/// Every recording (path name → segments), listed off the runtime's workers.
async fn recordings(app: &App) -> Result<std::collections::BTreeMap<String, Vec<crate::record::Segment>>, Response> {
    let config = app.config();
    tokio::task::spawn_blocking(move || crate::record::list(&config))
        .await
        .map_err(|e| fail(StatusCode::INTERNAL_SERVER_ERROR, format!("listing recordings: {e}")))
}

fn recording_json(name: &str, segments: &[crate::record::Segment]) -> Value {
    let segments: Vec<Value> = segments.iter().map(|s| json!({ "start": rfc3339(s.start) })).collect();
    json!({ "name": name, "segments": segments })
}

/// `GET /v3/recordings/list`: every path with recordings, by name.
async fn recordings_list(State(app): State<Arc<App>>, request: Request) -> Response {
    match recordings(&app).await {
        Ok(all) => paginate(&request, all.iter().map(|(name, segs)| recording_json(name, segs)).collect()),
        Err(r) => r,
    }
}

/// `GET /v3/recordings/get/{name}`: one path's segments.
async fn recording_get(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match recordings(&app).await {
        Ok(all) => match all.get(&name) {
            Some(segs) => Json(recording_json(&name, segs)).into_response(),
            None => not_found("recording not found"),
        },
        Err(r) => r,
    }
}

/// `DELETE /v3/recordings/deletesegment?path=&start=`: deletes the segment of `path` starting at
/// `start` (RFC 3339, as the list gives it).
async fn delete_segment(State(app): State<Arc<App>>, request: Request) -> Response {
    let q = Query::from_uri(request.uri());
    let (Some(path), Some(start)) = (q.get("path").filter(|s| !s.is_empty()), q.get("start").filter(|s| !s.is_empty()))
    else {
        return bad_request("path and start are required");
    };
    let Some(start) = crate::record::template::parse_rfc3339(start) else {
        return bad_request(format!("invalid start: {start:?} (an RFC 3339 time)"));
    };
    let (config, path) = (app.config(), path.to_string());
    match tokio::task::spawn_blocking(move || crate::record::delete_segment(&config, &path, start)).await {
        Ok(Ok(())) => ok(),
        Ok(Err(e)) if e == "segment not found" => not_found(e),
        Ok(Err(e)) => fail(StatusCode::INTERNAL_SERVER_ERROR, e),
        Err(e) => fail(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

/// A time as Go's JSON writes it (RFC 3339, UTC, nanoseconds without trailing zeros).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let mut s = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60);
    let nanos = d.subsec_nanos();
    if nanos > 0 {
        s.push_str(format!(".{nanos:09}").trim_end_matches('0'));
    }
    s.push('Z');
    s
}

async fn info(State(app): State<Arc<App>>) -> Response {
    Json(json!({
        "version": MEDIAMTX_API_VERSION,
        "started": rfc3339(app.started),
        "camrelay_version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

// ---- the config view ----

/// The MediaMTX settings of the running config: a MediaMTX file's, or for a go2rtc config MediaMTX's
/// defaults with the listeners and queue size go2rtc's keys set.
fn settings_view(app: &App) -> MediamtxConfig {
    if let Some(mtx) = &app.config().mediamtx {
        return mtx.clone();
    }
    let mut mtx = MediamtxConfig::defaults();
    let config = app.config();
    let c = &*config;
    let level = match c.log.level.to_ascii_lowercase().as_str() {
        "trace" | "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        _ => "info",
    };
    let (webrtc_addr, webrtc_udp, webrtc_tcp) = c.webrtc.listen_transports();
    let g = &mut mtx.globals;
    g.insert("logLevel".into(), json!(level));
    g.insert("writeQueueSize".into(), json!(c.hub.reader_queue));
    g.insert("api".into(), json!(!c.api.listen.is_empty()));
    g.insert("apiAddress".into(), json!(c.api.listen));
    g.insert("rtsp".into(), json!(!c.rtsp.listen.is_empty()));
    g.insert("rtspAddress".into(), json!(c.rtsp.listen));
    g.insert("rtpAddress".into(), json!(c.rtsp.rtp_listen));
    g.insert("rtcpAddress".into(), json!(c.rtsp.rtcp_listen));
    g.insert("webrtc".into(), json!(!c.webrtc.listen.is_empty()));
    g.insert("webrtcLocalUDPAddress".into(), json!(if webrtc_udp { webrtc_addr } else { "" }));
    g.insert("webrtcLocalTCPAddress".into(), json!(if webrtc_tcp { webrtc_addr } else { "" }));
    // go2rtc serves no HLS, RTMP or SRT listener of MediaMTX's kind.
    for switch in ["hls", "rtmp", "srt", "metrics", "playback", "pprof"] {
        g.insert(switch.into(), json!(false));
    }
    mtx
}

/// Whether a path name is a MediaMTX pattern (`~regex`, `all_others`, `all`) rather than a stream.
fn is_pattern(name: &str) -> bool {
    name.starts_with('~') || name == "all_others" || name == "all"
}

/// A camrelay source URL as MediaMTX writes it (the inverse of `path_source_url`: the parameters
/// that `rtspTransport` and `sourceFingerprint` added are those settings, not the source).
fn mediamtx_source(url: &str) -> String {
    let url = match url.split_once('#') {
        Some((main, params))
            if params
                .split('#')
                .all(|p| matches!(p, "transport=udp" | "transport=tcp") || p.starts_with("fingerprint=")) =>
        {
            main
        }
        _ => url,
    };
    if let Some(rest) = url.strip_prefix("webrtc:http://") {
        return format!("whep://{rest}");
    }
    if let Some(rest) = url.strip_prefix("webrtc:https://") {
        return format!("wheps://{rest}");
    }
    url.to_string()
}

/// Every configured path (the hub's configured streams and the MediaMTX patterns) with its settings
/// (`pathDefaults` under its own keys; `source` and `sourceOnDemand` from the hub), secrets masked.
fn conf_paths(app: &App) -> Vec<(String, Map<String, Value>)> {
    let mtx = settings_view(app);
    let mut out = Vec::new();
    for stream in app.hub.streams() {
        if stream.created_by_publisher() || stream.name.starts_with(PRIVATE_PREFIX) {
            continue;
        }
        let mut settings = mtx.path_settings(&stream.name).unwrap_or_else(|| mtx.path_defaults.clone());
        let pulled: Vec<Arc<Producer>> = stream.producers().into_iter().filter(|p| !p.is_pushed()).collect();
        let configured = settings.get("source").and_then(Value::as_str).unwrap_or("").to_string();
        let source = match pulled.first() {
            Some(p) => mediamtx_source(&p.masked_url()),
            None if configured == "redirect" => configured,
            None => "publisher".to_string(),
        };
        settings.insert("source".into(), json!(source));
        if !pulled.is_empty() {
            settings.insert("sourceOnDemand".into(), json!(!app.preloads.contains(&stream.name)));
        }
        out.push((stream.name.clone(), settings));
    }
    for (name, _) in mtx.paths.iter().filter(|(n, _)| is_pattern(n)) {
        out.push((name.clone(), mtx.path_settings(name).unwrap_or_default()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, settings) in &mut out {
        settings.insert("name".into(), json!(name));
        mask_settings(settings);
    }
    out
}

/// Keys whose values are secrets whatever they hold.
fn is_secret_key(key: &str) -> bool {
    matches!(key, "pass" | "password" | "whepBearerToken") || key.ends_with("Pass") || key.ends_with("Passphrase")
}

/// Masks the secrets of one setting: passwords and tokens, and the credentials of every URL (sources,
/// hook commands, auth URLs).
fn mask_value(key: &str, v: &mut Value) {
    match v {
        Value::String(s) if is_secret_key(key) && !s.is_empty() => *s = "***".to_string(),
        Value::String(s) if s.contains("://") || s.contains('#') => *s = mask_url(s),
        Value::Array(items) => items.iter_mut().for_each(|i| mask_value(key, i)),
        Value::Object(map) => mask_settings(map),
        _ => {}
    }
}

/// Masks secrets and writes empty settings (`runOnReady:` in the YAML) as MediaMTX does: `""`, never
/// `null` (its settings are Go strings).
fn mask_settings(map: &mut Map<String, Value>) {
    for (k, v) in map.iter_mut() {
        if v.is_null() {
            *v = json!("");
        }
        mask_value(k, v);
    }
}

fn masked(key: &str, v: &Value) -> Value {
    let mut v = v.clone();
    mask_value(key, &mut v);
    v
}

async fn global_get(State(app): State<Arc<App>>) -> Response {
    let mut globals = settings_view(&app).globals;
    mask_settings(&mut globals);
    Json(Value::Object(globals)).into_response()
}

async fn path_defaults_get(State(app): State<Arc<App>>) -> Response {
    let mut defaults = settings_view(&app).path_defaults;
    mask_settings(&mut defaults);
    Json(Value::Object(defaults)).into_response()
}

async fn conf_paths_list(State(app): State<Arc<App>>, request: Request) -> Response {
    let items = conf_paths(&app).into_iter().map(|(_, s)| Value::Object(s)).collect();
    paginate(&request, items)
}

async fn conf_path_get(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match conf_paths(&app).into_iter().find(|(n, _)| *n == name) {
        Some((_, s)) => Json(Value::Object(s)).into_response(),
        None => not_found("path not found"),
    }
}

// ---- checking request bodies ----

/// A request body as a JSON object.
fn json_object(body: &[u8]) -> Result<Map<String, Value>, Fail> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(refuse("invalid JSON: expected an object")),
        Err(e) => Err(refuse(format!("invalid JSON: {e}"))),
    }
}

/// Checks each field of a patch against the type of its default (MediaMTX's sample), as MediaMTX's
/// JSON decoding does: an unknown field or a value of another type is refused, naming the field.
/// `null` leaves a field as it is (as Go's decoder does); `name` (of a path) is ignored.
fn check_fields(body: Map<String, Value>, defaults: &Map<String, Value>) -> Result<Map<String, Value>, Fail> {
    let mut out = Map::new();
    for (key, value) in body {
        if key == "name" || value.is_null() {
            continue;
        }
        let Some(default) = defaults.get(&key) else {
            return Err(refuse(format!("json: unknown field \"{key}\"")));
        };
        let ok = matches!(
            (default, &value),
            (Value::Null | Value::String(_), Value::String(_))
                | (Value::Bool(_), Value::Bool(_))
                | (Value::Number(_), Value::Number(_))
                | (Value::Array(_), Value::Array(_))
                | (Value::Object(_), Value::Object(_))
        );
        if !ok {
            let expected = match default {
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
                _ => "a string",
            };
            return Err(refuse(format!("json: invalid value for field \"{key}\": expected {expected}")));
        }
        if let (Value::String(d), Value::String(s)) = (default, &value) {
            if parse_mediamtx_duration(d).is_some() && !s.is_empty() && parse_mediamtx_duration(s).is_none() {
                return Err(refuse(format!("invalid duration {s:?} for field \"{key}\"")));
            }
        }
        out.insert(key, value);
    }
    Ok(out)
}

/// A value sent back as the API showed it (a masked password): the current value, unchanged.
fn unmask_field(key: &str, new: Value, current: Option<&Value>) -> Value {
    match current {
        Some(current) if *current != new && masked(key, current) == new => current.clone(),
        _ => new,
    }
}

/// The file the API saves into, for the MediaMTX settings (only a MediaMTX file has a place for them).
fn mediamtx_file(app: &App) -> Result<&std::path::Path, Fail> {
    if app.config().dialect != Dialect::Mediamtx {
        return Err(refuse(format!(
            "the config ({}) is go2rtc's: it has no MediaMTX global settings or path defaults to change \
             (edit go2rtc's keys with POST /api/config)",
            app.config_path.display()
        )));
    }
    Ok(&app.config_path)
}

fn save_error(what: &str, e: std::io::Error) -> Response {
    fail(StatusCode::INTERNAL_SERVER_ERROR, format!("{what} not saved: {e}"))
}

/// `PATCH /v3/config/global/patch`: saved to the config file (the reload then applies what it can).
async fn global_patch(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let current = settings_view(&app).globals;
    patch_settings(&app, &body, current, crate::config::patch_global, "").await
}

/// `PATCH /v3/config/pathdefaults/patch`: like the global patch, for `pathDefaults`.
async fn path_defaults_patch(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let current = settings_view(&app).path_defaults;
    patch_settings(&app, &body, current, crate::config::patch_path_default, "pathDefaults.").await
}

/// Checks the body's fields against `current` and saves each changed one with `save` (keys shown as
/// `prefix` + key in logs and errors).
async fn patch_settings(
    app: &App,
    body: &Bytes,
    current: Map<String, Value>,
    save: fn(&std::path::Path, &str, &Value) -> std::io::Result<()>,
    prefix: &str,
) -> Response {
    let fields = match json_object(body).and_then(|b| check_fields(b, &current)) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let path = match mediamtx_file(app) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let _guard = app.config_write.lock().await;
    for (key, value) in fields {
        let value = unmask_field(&key, value, current.get(&key));
        if current.get(&key) == Some(&value) {
            continue;
        }
        if let Err(e) = save(path, &key, &value) {
            return save_error(&format!("setting {prefix}{key}"), e);
        }
        tracing::info!(module = "api", setting = %format!("{prefix}{key}"), "MediaMTX setting saved to the config file");
    }
    ok()
}

// ---- path add / patch / replace / delete ----

#[derive(Clone, Copy, PartialEq)]
enum Edit {
    Add,
    Patch,
    Replace,
}

fn check_path_name(name: &str) -> Result<(), Fail> {
    if name.is_empty() || name.len() > 256 || name.chars().any(char::is_control) {
        return Err(refuse("invalid path name"));
    }
    if name.starts_with(PRIVATE_PREFIX) || name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(refuse(format!("invalid path name {name:?}")));
    }
    if is_pattern(name) {
        return Err(refuse("paths with a regular expression or all_others can only be set in the config file for now"));
    }
    Ok(())
}

/// Whether `name` is a configured path (not one a publisher created).
fn configured(app: &App, name: &str) -> Option<Arc<Stream>> {
    app.hub.get(name).filter(|s| !s.created_by_publisher())
}

/// A path's own keys as saved in the config file, for a patch (the running config only knows those it
/// started with); the startup config's when the file does not have the path.
fn saved_own_settings(app: &App, name: &str) -> Map<String, Value> {
    let from_file = std::env::current_dir().ok().and_then(|cwd| {
        let args = [app.config_path.display().to_string()];
        let loaded = crate::config::load(&args, &cwd, &|k| std::env::var(k).ok()).ok()?;
        loaded.config.mediamtx?.paths.into_iter().find(|(n, _)| n == name).map(|(_, own)| own)
    });
    from_file
        .or_else(|| {
            app.config()
                .mediamtx
                .as_ref()
                .and_then(|m| m.paths.iter().find(|(n, _)| n == name).map(|(_, own)| own.clone()))
        })
        .unwrap_or_default()
}

async fn conf_path_add(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Response {
    edit_path(app, name, body, Edit::Add).await
}

async fn conf_path_patch(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Response {
    edit_path(app, name, body, Edit::Patch).await
}

async fn conf_path_replace(State(app): State<Arc<App>>, Path(name): Path<String>, body: Bytes) -> Response {
    edit_path(app, name, body, Edit::Replace).await
}

/// Add, patch or replace a path: the hub's stream gets the path's source (validated like
/// `PUT /api/streams`), a MediaMTX `sourceOnDemand: false` keeps it connected, and the path is saved
/// to the config file (MediaMTX's `paths:` entry, or go2rtc's `streams:` entry).
async fn edit_path(app: Arc<App>, name: String, body: Bytes, edit: Edit) -> Response {
    if let Err(r) = check_path_name(&name) {
        return r.into_response();
    }
    let view = settings_view(&app);
    let fields = match json_object(&body).and_then(|b| check_fields(b, &view.path_defaults)) {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let _guard = app.config_write.lock().await;
    let existing = configured(&app, &name);
    match (edit, &existing) {
        (Edit::Add, Some(_)) => return bad_request("path already exists"),
        (Edit::Patch | Edit::Replace, None) => return not_found("path not found"),
        _ => {}
    }
    let mediamtx = app.config().dialect == Dialect::Mediamtx;
    // The path's own keys after the edit.
    let mut own = if edit == Edit::Patch && mediamtx { saved_own_settings(&app, &name) } else { Map::new() };
    let current_source = existing.as_ref().and_then(|s| s.producers().into_iter().find(|p| !p.is_pushed()));
    for (key, value) in fields {
        let value = match (key.as_str(), &value, &current_source) {
            // A source sent back masked (`rtsp://user:***@cam`) is the current one.
            ("source", Value::String(s), Some(p)) if s.contains("***") => match p.url_if_masked_as(&source_url(s)) {
                Some(url) => json!(mediamtx_source(&url)),
                None => {
                    return bad_request(format!(
                        "source {s}: \"***\" hides a secret of a source this path does not have; type it in"
                    ))
                }
            },
            _ => {
                let current = own.get(&key).cloned();
                unmask_field(&key, value, current.as_ref())
            }
        };
        own.insert(key, value);
    }
    if edit == Edit::Patch && !own.contains_key("source") {
        if let Some(p) = &current_source {
            // Only the settings changed: keep the running source.
            if let Some(url) = p.url_if_masked_as(&p.masked_url()) {
                own.insert("source".into(), json!(mediamtx_source(&url)));
            }
        }
    }
    let mut settings = view.path_defaults.clone();
    settings.extend(own.clone());
    let source = settings.get("source").and_then(Value::as_str).unwrap_or("").to_string();
    let mut sources = match source.as_str() {
        "" | "publisher" | "redirect" => Vec::new(),
        s if s.contains("***") => {
            return bad_request(format!("source {s}: \"***\" hides a secret that this path does not have; type it in"))
        }
        s => match crate::config::mediamtx::path_source_url(s, &settings) {
            Ok(url) => vec![url],
            Err(e) => return bad_request(format!("path {name}: {e}")),
        },
    };
    // A go2rtc stream's other sources stay when a patch changes its first one.
    if !mediamtx && edit == Edit::Patch {
        if let Some(stream) = &existing {
            let rest = stream.producers().into_iter().filter(|p| !p.is_pushed()).skip(1);
            sources.extend(rest.filter_map(|p| p.url_if_masked_as(&p.masked_url())));
        }
    }
    // MediaMTX's API answers refusals with 400 (its spec has no 403).
    if let Err(e) = super::api::check_sources_allowed(&app, &sources) {
        return bad_request(e.1);
    }
    if let Err(e) = app.hub.validate_sources(&sources) {
        return bad_request(format!("path {name}: {e}"));
    }
    let unchanged = existing.as_ref().is_some_and(|s| s.pulls_exactly(&sources));
    if !unchanged {
        if let Err(e) = app.hub.set_stream(&name, &sources) {
            return bad_request(format!("path {name}: {e}"));
        }
    }
    if mediamtx {
        let on_demand = settings.get("sourceOnDemand").and_then(Value::as_bool).unwrap_or(false);
        if !sources.is_empty() && !on_demand {
            if unchanged && app.preloads.contains(&name) {
                // Already kept connected.
            } else {
                app.preloads.start(&app.hub, &name, "");
            }
        } else {
            app.preloads.stop(&name);
        }
    }
    let saved = if mediamtx {
        crate::config::patch_path(&app.config_path, &name, Some(&own))
    } else {
        if own.keys().any(|k| k != "source") {
            tracing::info!(module = "api", path = %name, "a go2rtc config keeps a path's source only; its other settings are not saved");
        }
        crate::config::patch_stream(&app.config_path, &name, Some(&sources))
    };
    if let Err(e) = saved {
        tracing::error!(path = %app.config_path.display(), "cannot save path {name}: {e}");
        return save_error(&format!("path {name} changed but"), e);
    }
    tracing::info!(module = "api", path = %name, sources = ?sources.iter().map(|s| mask_url(s)).collect::<Vec<_>>(), "path saved");
    ok()
}

async fn conf_path_delete(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    if is_pattern(&name) {
        return bad_request(
            "paths with a regular expression or all_others can only be changed in the config file for now",
        );
    }
    let _guard = app.config_write.lock().await;
    if configured(&app, &name).is_none() || !app.hub.remove_stream(&name) {
        return not_found("path not found");
    }
    let preloaded = app.preloads.stop(&name);
    if app.config_path.exists() {
        let saved = if app.config().dialect == Dialect::Mediamtx {
            crate::config::patch_path(&app.config_path, &name, None)
        } else {
            crate::config::patch_stream(&app.config_path, &name, None).and_then(|()| {
                if preloaded {
                    crate::config::patch_preload(&app.config_path, &name, None)
                } else {
                    Ok(())
                }
            })
        };
        if let Err(e) = saved {
            return save_error(&format!("path {name} removed but"), e);
        }
    }
    tracing::info!(module = "api", path = %name, "path deleted");
    ok()
}

// ---- the hub view: paths ----

/// MediaMTX's codec name of a hub codec (its `PathTrackCodec` values).
fn codec_name(codec: &media::Codec) -> &'static str {
    match codec.name.to_ascii_uppercase().as_str() {
        "H264" => "H264",
        "H265" => "H265",
        "AV1" => "AV1",
        "VP8" => "VP8",
        "VP9" => "VP9",
        "JPEG" | "MJPEG" => "MJPEG",
        "MP4V-ES" => "MPEG-4 Video",
        "MPV" => "MPEG-1 Video",
        "MPEG4-GENERIC" | "AAC" => "MPEG-4 Audio",
        "MP4A-LATM" => "MPEG-4 Audio LATM",
        "MPA" => "MPEG-1 Audio",
        "OPUS" => "Opus",
        "PCMA" | "PCMU" => "G711",
        "G722" => "G722",
        "L16" | "L24" => "LPCM",
        "AC3" => "AC3",
        n if n.starts_with("G726") => "G726",
        _ => "Generic",
    }
}

/// MediaMTX's `PathSourceType` of a producer. Sources MediaMTX does not have are shown as the
/// nearest: `exec:`/`ffmpeg:`/`echo:` and the built-in `demo:` publish into camrelay as an RTSP
/// session would; HTTP and TCP byte streams as an MPEG-TS source.
pub(crate) fn source_type(p: &Producer) -> &'static str {
    match &p.kind {
        ProducerKind::Pushed { protocol, .. } => match protocol.split('+').next().unwrap_or("") {
            "rtsp" => "rtspSession",
            "rtsps" => "rtspsSession",
            "webrtc" => "webRTCSession",
            "rtmp" => "rtmpConn",
            "rtmps" => "rtmpsConn",
            "srt" => "srtConn",
            _ => "mpegtsSource",
        },
        ProducerKind::Pulled(_) => {
            let url = p.masked_url();
            match Hub::scheme_of(&url) {
                "rtsp" | "rtsps" | "rtspx" => "rtspSource",
                "rtmp" | "rtmps" | "rtmpx" => "rtmpSource",
                "webrtc" | "whep" | "wheps" => "webRTCSource",
                "srt" => "srtSource",
                "udp" | "udp+mpegts" | "unix+mpegts" => "mpegtsSource",
                "udp+rtp" => "rtpSource",
                "http" | "https" | "httpx" if url.contains(".m3u8") => "hlsSource",
                "http" | "https" | "httpx" | "tcp" => "mpegtsSource",
                _ => "rtspSession",
            }
        }
    }
}

// Session ids: a UUID from the hub's id of the reader or producer, with a variant per kind.
const READER: u16 = 0x8000;
const PUBLISHER: u16 = 0x9000;
const READER_CONN: u16 = 0xa000;
const PUBLISHER_CONN: u16 = 0xb000;

/// A listener connection's id (`MTX_CONN_ID` of the connect hooks): the connection's number.
const CONNECTION: u16 = 0xc000;

pub(crate) fn connection_id(n: u64) -> String {
    uuid(CONNECTION, n)
}

/// The id `/v3` shows for a producer: a publisher's session id; a pulled source has none.
pub(crate) fn source_id(p: &Producer) -> String {
    if p.is_pushed() {
        uuid(PUBLISHER, p.id)
    } else {
        String::new()
    }
}

/// A reader's type and id as `/v3` shows them; readers MediaMTX has no type for get their protocol
/// (`mp4`, `mjpeg`...) and a session id.
pub(crate) fn reader_type_and_id(r: &ReaderShared) -> (String, String) {
    match reader_type(r) {
        Some((t, id)) if !id.is_empty() => (t.to_string(), id),
        Some((t, _)) => (t.to_string(), uuid(READER, r.id)),
        None => (r.protocol().split('+').next().unwrap_or("").to_string(), uuid(READER, r.id)),
    }
}

/// A reader's RTSP connection id and session id (as [`party_id`] makes them), for the metrics.
pub(crate) fn reader_ids(id: u64) -> (String, String) {
    (uuid(READER_CONN, id), uuid(READER, id))
}

/// A publisher's RTSP connection id and session id (as [`party_id`] makes them), for the metrics.
pub(crate) fn publisher_ids(id: u64) -> (String, String) {
    (uuid(PUBLISHER_CONN, id), uuid(PUBLISHER, id))
}

fn uuid(kind: u16, id: u64) -> String {
    format!("00000000-0000-4000-{kind:04x}-{:012x}", id & 0xffff_ffff_ffff)
}

/// (kind, hub id) of a session UUID; `None` when it is not a UUID.
fn parse_uuid(s: &str) -> Option<(u16, u64)> {
    let parts: Vec<&str> = s.split('-').collect();
    let ok = parts.len() == 5
        && [8, 4, 4, 4, 12].iter().zip(&parts).all(|(n, p)| p.len() == *n && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return None;
    }
    let kind = u16::from_str_radix(parts[3], 16).ok()?;
    let id = u64::from_str_radix(parts[4], 16).ok()?;
    let ours = parts[0] == "00000000" && parts[1] == "0000" && parts[2] == "4000";
    Some(if ours { (kind, id) } else { (0, 0) })
}

/// MediaMTX's reader type and id of a hub reader; `None` for readers MediaMTX has no type for
/// (MP4, MJPEG, MSE/WebSocket, preloads...).
pub(crate) fn reader_type(r: &ReaderShared) -> Option<(&'static str, String)> {
    let protocol = r.protocol();
    match protocol.split('+').next().unwrap_or("") {
        "rtsp" => Some(("rtspSession", uuid(READER, r.id))),
        "rtsps" => Some(("rtspsSession", uuid(READER, r.id))),
        "webrtc" => Some(("webRTCSession", uuid(READER, r.id))),
        "hls" => Some(("hlsMuxer", String::new())),
        _ => None,
    }
}

pub(crate) fn producer_bytes(p: &Producer) -> u64 {
    p.tracks().iter().map(|t| t.bytes.load(Relaxed)).sum()
}

fn time_or_null(t: Option<SystemTime>) -> Value {
    t.map(|t| json!(rfc3339(t))).unwrap_or(Value::Null)
}

/// The config path (pattern) a stream falls under: its own name when configured, else the first
/// `~regex` or `all_others` of the config that matches.
fn conf_name(app: &App, stream: &Stream) -> String {
    if !stream.created_by_publisher() {
        return stream.name.clone();
    }
    app.config()
        .path_rules
        .iter()
        .find(|r| match r.name.strip_prefix('~') {
            Some(pattern) => regex::Regex::new(pattern).is_ok_and(|re| re.is_match(&stream.name)),
            None => r.name == "all_others" || r.name == "all",
        })
        .map(|r| r.name.clone())
        .unwrap_or_else(|| stream.name.clone())
}

fn path_json(app: &App, stream: &Stream) -> Value {
    let producers = stream.producers();
    // An `alwaysAvailable` path's offline slate makes it available, not online (as in MediaMTX).
    let slate = producers.iter().find(|p| p.is_offline_slate());
    let online = producers
        .iter()
        .find(|p| p.state() == ProducerState::Online && !p.tracks().is_empty() && !p.is_offline_slate());
    let available = online.or(slate);
    let source = online.or_else(|| producers.iter().find(|p| !p.is_pushed())).map(|p| {
        let id = if p.is_pushed() { uuid(PUBLISHER, p.id) } else { String::new() };
        json!({ "type": source_type(p), "id": id })
    });
    let tracks = available.map(|p| p.tracks()).unwrap_or_default();
    let ready_time = time_or_null(online.and_then(|p| p.started()));
    let available_time = time_or_null(available.and_then(|p| p.started()));
    let readers = stream.readers();
    let inbound: u64 = producers.iter().map(|p| producer_bytes(p)).sum();
    let outbound: u64 = readers.iter().map(|r| r.bytes_sent.load(Relaxed)).sum();
    let reader_list: Vec<Value> =
        readers.iter().filter_map(|r| reader_type(r)).map(|(t, id)| json!({ "type": t, "id": id })).collect();
    json!({
        "name": stream.name,
        "confName": conf_name(app, stream),
        "source": source.unwrap_or(Value::Null),
        "ready": online.is_some(),
        "readyTime": ready_time,
        "available": available.is_some(),
        "availableTime": available_time,
        "online": online.is_some(),
        "onlineTime": ready_time,
        "tracks": tracks.iter().map(|t| codec_name(&t.codec)).collect::<Vec<_>>(),
        // No `codecProps`: the spec's `oneOf` of property sets without required keys matches no value.
        "tracks2": tracks.iter().map(|t| json!({ "codec": codec_name(&t.codec) })).collect::<Vec<_>>(),
        "inboundBytes": inbound,
        "outboundBytes": outbound,
        "inboundFramesInError": frames_in_error(&producers),
        "bytesReceived": inbound,
        "bytesSent": outbound,
        "readers": reader_list,
    })
}

/// What datagram sources (UDP MPEG-TS/RTP) lost or could not read: MediaMTX counts frames in error
/// there; we count the packets.
pub(crate) fn frames_in_error(producers: &[Arc<Producer>]) -> u64 {
    producers
        .iter()
        .filter_map(|p| match &p.kind {
            ProducerKind::Pulled(source) => source.receive_stats(),
            _ => None,
        })
        .map(|s| s.packets_lost + s.packets_in_error)
        .sum()
}

/// Streams the API shows as paths (not the private ones `exec:` children publish into).
pub(crate) fn public_streams(app: &App) -> Vec<Arc<Stream>> {
    app.hub.streams().into_iter().filter(|s| !s.name.starts_with(PRIVATE_PREFIX)).collect()
}

async fn paths_list(State(app): State<Arc<App>>, request: Request) -> Response {
    let items = public_streams(&app).iter().map(|s| path_json(&app, s)).collect();
    paginate(&request, items)
}

async fn path_get(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match app.hub.get(&name).filter(|s| !s.name.starts_with(PRIVATE_PREFIX)) {
        Some(s) => Json(path_json(&app, &s)).into_response(),
        None => not_found("path not found"),
    }
}

// ---- the hub view: sessions ----

#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Kind {
    RtspConn,
    RtspSession,
    /// RTSP over TLS (the RTSPS listener): listed apart, as MediaMTX does.
    RtspsConn,
    RtspsSession,
    WebrtcSession,
    RtmpConn,
    RtmpsConn,
    /// The SRT server's callers (`servers/srt.rs`), publishers and readers.
    SrtConn,
}

impl Kind {
    fn protocol(self) -> &'static str {
        match self {
            Kind::RtspConn | Kind::RtspSession => "rtsp",
            Kind::RtspsConn | Kind::RtspsSession => "rtsps",
            Kind::WebrtcSession => "webrtc",
            Kind::RtmpConn => "rtmp",
            Kind::RtmpsConn => "rtmps",
            Kind::SrtConn => "srt",
        }
    }

    fn missing(self) -> &'static str {
        match self {
            Kind::RtspConn | Kind::RtspsConn | Kind::RtmpConn | Kind::RtmpsConn | Kind::SrtConn => {
                "connection not found"
            }
            _ => "session not found",
        }
    }
}

/// One reader or publisher of a protocol, with its stream.
enum Party {
    Reader(Arc<ReaderShared>),
    Publisher(Arc<Producer>),
}

fn protocol_of(p: &Producer) -> &str {
    match &p.kind {
        ProducerKind::Pushed { protocol, .. } => protocol,
        ProducerKind::Pulled(_) => "",
    }
}

/// Every reader and publisher of `kind`'s protocol, by stream.
fn parties(app: &App, kind: Kind) -> Vec<(Arc<Stream>, Party)> {
    let wanted = kind.protocol();
    let mut out = Vec::new();
    for stream in public_streams(app) {
        for p in stream.producers() {
            if p.is_pushed() && protocol_of(&p).split('+').next() == Some(wanted) {
                out.push((stream.clone(), Party::Publisher(p)));
            }
        }
        for r in stream.readers() {
            if r.protocol().split('+').next() == Some(wanted) {
                out.push((stream.clone(), Party::Reader(r)));
            }
        }
    }
    out
}

fn party_id(kind: Kind, party: &Party) -> String {
    match (kind, party) {
        (Kind::RtspConn | Kind::RtspsConn, Party::Reader(r)) => uuid(READER_CONN, r.id),
        (Kind::RtspConn | Kind::RtspsConn, Party::Publisher(p)) => uuid(PUBLISHER_CONN, p.id),
        (_, Party::Reader(r)) => uuid(READER, r.id),
        (_, Party::Publisher(p)) => uuid(PUBLISHER, p.id),
    }
}

/// The figures of one reader or publisher that the session lists and the metrics show.
pub(crate) struct PartyStats {
    pub created: Option<SystemTime>,
    pub remote: String,
    /// MediaMTX's `read` or `publish`.
    pub state: &'static str,
    pub inbound: u64,
    pub outbound: u64,
    pub packets_out: u64,
    pub dropped: u64,
    pub protocol: String,
}

fn party_stats(party: &Party) -> PartyStats {
    match party {
        Party::Reader(r) => PartyStats {
            created: Some(r.started),
            remote: r.remote_addr.clone(),
            state: "read",
            inbound: 0,
            outbound: r.bytes_sent.load(Relaxed),
            packets_out: r.packets_sent.load(Relaxed),
            dropped: r.dropped.load(Relaxed),
            protocol: r.protocol(),
        },
        Party::Publisher(p) => PartyStats {
            created: p.started(),
            remote: match &p.kind {
                ProducerKind::Pushed { remote_addr, .. } => remote_addr.clone(),
                ProducerKind::Pulled(_) => String::new(),
            },
            state: "publish",
            inbound: producer_bytes(p),
            outbound: 0,
            packets_out: 0,
            dropped: 0,
            protocol: protocol_of(p).to_string(),
        },
    }
}

/// The user name a reader or publisher authenticated as and the query of its URL (secrets left out).
fn party_identity(party: &Party) -> (String, String) {
    let (user, query) = match party {
        Party::Reader(r) => (
            r.user.lock().unwrap_or_else(|e| e.into_inner()).clone(),
            r.query.lock().unwrap_or_else(|e| e.into_inner()).clone(),
        ),
        Party::Publisher(p) => {
            let id = p.identity();
            (id.user, id.query)
        }
    };
    (user, crate::auth::shown_query(&query))
}

fn party_json(kind: Kind, stream: &Stream, party: &Party) -> Value {
    let PartyStats { created, remote, state, inbound, outbound, packets_out, dropped, protocol } = party_stats(party);
    let (user, query) = party_identity(party);
    let id = party_id(kind, party);
    let created = rfc3339(created.unwrap_or_else(SystemTime::now));
    match kind {
        Kind::RtspConn | Kind::RtspsConn => {
            let session = match party {
                Party::Reader(r) => uuid(READER, r.id),
                Party::Publisher(p) => uuid(PUBLISHER, p.id),
            };
            json!({
                "id": id, "created": created, "remoteAddr": remote, "session": session, "tunnel": "none",
                "inboundBytes": inbound, "outboundBytes": outbound, "bytesReceived": inbound, "bytesSent": outbound,
            })
        }
        Kind::RtspSession | Kind::RtspsSession => {
            let conn = match party {
                Party::Reader(r) => uuid(READER_CONN, r.id),
                Party::Publisher(p) => uuid(PUBLISHER_CONN, p.id),
            };
            let transport = match protocol.rsplit('+').next() {
                Some("udp") => "UDP",
                Some("multicast") => "UDP-multicast",
                _ => "TCP",
            };
            let rtp = match party {
                Party::Reader(r) => &r.rtp,
                Party::Publisher(p) => &p.rtp,
            };
            let get = RtpCounters::get;
            let (rtp_in, lost, in_error, jitter) = (
                get(&rtp.inbound_rtp_packets),
                get(&rtp.inbound_rtp_lost),
                get(&rtp.inbound_rtp_in_error),
                rtp.jitter(),
            );
            let (rtcp_in, rtcp_in_error, rtcp_out) =
                (get(&rtp.inbound_rtcp_packets), get(&rtp.inbound_rtcp_in_error), get(&rtp.outbound_rtcp_packets));
            json!({
                "id": id, "created": created, "remoteAddr": remote, "state": state, "path": stream.name,
                "query": query, "user": user, "transport": transport, "profile": "AVP", "conns": [conn],
                "inboundBytes": inbound, "inboundRTPPackets": rtp_in, "inboundRTPPacketsLost": lost,
                "inboundRTPPacketsInError": in_error, "inboundRTPPacketsJitter": jitter,
                "inboundRTCPPackets": rtcp_in, "inboundRTCPPacketsInError": rtcp_in_error,
                "outboundBytes": outbound, "outboundRTPPackets": packets_out,
                "outboundRTPPacketsReportedLost": get(&rtp.outbound_rtp_reported_lost),
                "outboundRTPPacketsDiscarded": dropped, "outboundRTCPPackets": rtcp_out,
                "bytesReceived": inbound, "bytesSent": outbound,
                "rtpPacketsReceived": rtp_in, "rtpPacketsSent": packets_out, "rtpPacketsLost": lost,
                "rtpPacketsInError": in_error, "rtpPacketsJitter": jitter, "rtcpPacketsReceived": rtcp_in,
                "rtcpPacketsSent": rtcp_out, "rtcpPacketsInError": rtcp_in_error,
            })
        }
        Kind::SrtConn => {
            let mut conn = srt_conn_json(id, created, remote, state, &stream.name, party, dropped);
            conn["user"] = json!(user);
            conn["query"] = json!(query);
            conn
        }
        Kind::RtmpConn | Kind::RtmpsConn => json!({
            "id": id, "created": created, "remoteAddr": remote, "state": state, "path": stream.name,
            "query": query, "user": user, "inboundBytes": inbound, "outboundBytes": outbound,
            "outboundFramesDiscarded": dropped, "bytesReceived": inbound, "bytesSent": outbound,
        }),
        Kind::WebrtcSession => json!({
            "id": id, "created": created, "remoteAddr": remote, "peerConnectionEstablished": true,
            "localCandidate": "", "remoteCandidate": "", "state": state, "path": stream.name, "query": query,
            "user": user, "inboundBytes": inbound, "inboundRTPPackets": 0, "inboundRTPPacketsLost": 0,
            "inboundRTPPacketsJitter": 0.0, "inboundRTCPPackets": 0, "outboundBytes": outbound,
            "outboundRTPPackets": packets_out, "outboundRTCPPackets": 0, "outboundFramesDiscarded": dropped,
            "bytesReceived": inbound, "bytesSent": outbound, "rtpPacketsReceived": 0,
            "rtpPacketsSent": packets_out, "rtpPacketsLost": 0, "rtpPacketsJitter": 0.0,
            "rtcpPacketsReceived": 0, "rtcpPacketsSent": 0,
        }),
    }
}

/// MediaMTX's `SRTConn`: the hub's byte counts and the connection's SRT statistics (srt-protocol's,
/// updated every second; zero before the first update).
fn srt_conn_json(
    id: String,
    created: String,
    remote: String,
    state: &str,
    path: &str,
    party: &Party,
    dropped: u64,
) -> Value {
    let st = match party {
        Party::Reader(r) => crate::servers::srt::stats(false, r.id),
        Party::Publisher(p) => crate::servers::srt::stats(true, p.id),
    }
    .unwrap_or_default();
    let mut conn = json!({
        "id": id, "created": created, "remoteAddr": remote, "state": state, "path": path, "query": "",
        "user": "",
    });
    if let Some(conn) = conn.as_object_mut() {
        // The same list as the srt_conns_* metrics.
        for (key, _, value) in crate::servers::srt::stats_fields(&st) {
            conn.insert(key.to_string(), value.into());
        }
        conn.insert("outboundFramesDiscarded".to_string(), dropped.into());
    }
    conn
}

async fn sessions_list(State(app): State<Arc<App>>, request: Request, kind: Kind) -> Response {
    let items = parties(&app, kind).iter().map(|(s, p)| party_json(kind, s, p)).collect();
    paginate(&request, items)
}

/// The reader or publisher a session id names.
fn find_party(app: &App, kind: Kind, id: &str) -> Result<(Arc<Stream>, Party), Fail> {
    if parse_uuid(id).is_none() {
        return Err(refuse(format!("invalid ID: {id:?}")));
    }
    parties(app, kind)
        .into_iter()
        .find(|(_, p)| party_id(kind, p) == id)
        .ok_or_else(|| Fail(StatusCode::NOT_FOUND, kind.missing().to_string()))
}

async fn session_get(State(app): State<Arc<App>>, Path(id): Path<String>, kind: Kind) -> Response {
    match find_party(&app, kind, &id) {
        Ok((stream, party)) => Json(party_json(kind, &stream, &party)).into_response(),
        Err(r) => r.into_response(),
    }
}

/// Kicks a reader out (the hub ends its subscription and its session closes) or a publisher (its
/// producer ends and its connection is told to close, as when a newer publisher replaces it).
async fn session_kick(State(app): State<Arc<App>>, Path(id): Path<String>, kind: Kind) -> Response {
    match find_party(&app, kind, &id) {
        Ok((stream, Party::Reader(r))) => {
            if !stream.kick_reader(r.id) {
                return not_found(kind.missing());
            }
            tracing::info!(module = "api", stream = %stream.name, peer = %r.remote_addr, protocol = %r.protocol(), "reader kicked");
            ok()
        }
        Ok((stream, Party::Publisher(p))) => {
            if !app.hub.kick_publisher(&stream.name, p.id) {
                return not_found(kind.missing());
            }
            tracing::info!(module = "api", stream = %stream.name, protocol = %protocol_of(&p), "publisher kicked");
            ok()
        }
        Err(r) => r.into_response(),
    }
}

// ---- the hub view: HLS muxers ----

pub(crate) fn hls_readers(app: &App) -> Vec<(Arc<Stream>, Arc<ReaderShared>)> {
    let mut out = Vec::new();
    for stream in public_streams(app) {
        for r in stream.readers() {
            if r.protocol().starts_with("hls") {
                out.push((stream.clone(), r));
            }
        }
    }
    out
}

fn muxer_json(stream: &Stream, r: &ReaderShared) -> Value {
    let bytes = r.bytes_sent.load(Relaxed);
    json!({
        "path": stream.name,
        "created": rfc3339(r.started),
        "lastRequest": rfc3339(SystemTime::now()),
        "outboundBytes": bytes,
        "outboundFramesDiscarded": r.dropped.load(Relaxed),
        "bytesSent": bytes,
    })
}

async fn hls_muxers_list(State(app): State<Arc<App>>, request: Request) -> Response {
    let items = hls_readers(&app).iter().map(|(s, r)| muxer_json(s, r)).collect();
    paginate(&request, items)
}

async fn hls_muxer_get(State(app): State<Arc<App>>, Path(name): Path<String>) -> Response {
    match hls_readers(&app).into_iter().find(|(s, _)| s.name == name) {
        Some((s, r)) => Json(muxer_json(&s, &r)).into_response(),
        None => not_found("muxer not found"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::new(1_700_000_000, 120_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20.12Z");
        assert_eq!(
            rfc3339(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00Z"
        );
    }

    #[test]
    fn session_ids_round_trip() {
        let id = uuid(READER, 42);
        assert_eq!(id, "00000000-0000-4000-8000-00000000002a");
        assert_eq!(parse_uuid(&id), Some((READER, 42)));
        assert_eq!(parse_uuid("nope"), None);
        assert_eq!(parse_uuid("123e4567-e89b-12d3-a456-426614174000"), Some((0, 0)));
    }

    #[test]
    fn fields_are_checked_against_the_defaults() {
        let defaults = MediamtxConfig::defaults().path_defaults;
        let body = |s: &str| serde_json::from_str::<Map<String, Value>>(s).unwrap();
        assert!(check_fields(body(r#"{"source":"rtsp://x","sourceOnDemand":true,"name":"x"}"#), &defaults).is_ok());
        for bad in
            [r#"{"sorce":"x"}"#, r#"{"sourceOnDemand":"yes"}"#, r#"{"maxReaders":"1"}"#, r#"{"readTimeout":"x"}"#]
        {
            assert!(check_fields(body(bad), &defaults).is_err(), "{bad}");
        }
        assert!(check_fields(body(r#"{"sourceOnDemandCloseAfter":"soon"}"#), &defaults).is_err());
    }

    #[test]
    fn secrets_are_masked() {
        let mut m = body_map(
            r#"{"source":"rtsp://u:secret@cam/x","srtReadPassphrase":"abc","runOnReady":"curl http://a:b@h/"}"#,
        );
        mask_settings(&mut m);
        let text = Value::Object(m.clone()).to_string();
        assert!(!text.contains("secret") && !text.contains("abc") && !text.contains(":b@"), "{text}");
        assert_eq!(unmask_field("srtReadPassphrase", json!("***"), Some(&json!("abc"))), json!("abc"));
        assert_eq!(unmask_field("srtReadPassphrase", json!("new"), Some(&json!("abc"))), json!("new"));
    }

    fn body_map(s: &str) -> Map<String, Value> {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn codec_names_are_mediamtx_s() {
        assert_eq!(codec_name(&media::Codec::new("MPEG4-GENERIC", 48000, 2, 97)), "MPEG-4 Audio");
        assert_eq!(codec_name(&media::Codec::new("PCMU", 8000, 1, 0)), "G711");
        assert_eq!(codec_name(&media::Codec::new("OPUS", 48000, 2, 111)), "Opus");
    }
}
