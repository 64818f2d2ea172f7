//! Event recordings on the API listener (either dialect's): `POST /api/record?src=NAME[&pre=5s]`
//! starts one that begins `pre` (default: the stream's `record.pre` / `recordPre`) before the
//! request, at a keyframe, and answers its start time and file; `DELETE /api/record?src=NAME` ends it.
//! The control API's auth applies (action `api`, checked by the API's middleware). The files are
//! ordinary segments of the stream's record template, so `/v3/recordings` and the playback server
//! list and serve them.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{EventError, RecordStatus, MAX_PRE};
use crate::app::App;
use crate::servers::api::{error, Query};
use crate::servers::v3::rfc3339;

pub fn routes() -> Router<Arc<App>> {
    Router::new().route("/api/record", post(start).delete(stop))
}

/// `src=` of the request (`None`: answer [`no_source`]).
fn source(uri: &Uri) -> Option<(String, Query)> {
    let q = Query::from_uri(uri);
    let name = q.get("src").map(str::trim).filter(|n| !n.is_empty())?.to_string();
    Some((name, q))
}

fn no_source() -> Response {
    error(StatusCode::BAD_REQUEST, "src= (the stream name) is required")
}

fn refused(e: EventError) -> Response {
    let status = match e {
        EventError::NotFound(_) => StatusCode::NOT_FOUND,
        EventError::Conflict(_) => StatusCode::CONFLICT,
        EventError::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    error(status, e.to_string())
}

async fn start(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let Some((name, q)) = source(&uri) else { return no_source() };
    let pre = match q.get("pre") {
        None => None,
        Some(text) => match crate::config::parse_duration(text) {
            Some(d) if d <= MAX_PRE => Some(d),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("pre: invalid duration {text:?} (e.g. \"5s\", \"500ms\", at most {}s)", MAX_PRE.as_secs()),
                )
            }
        },
    };
    let settings = match super::stream_settings(&app.config(), &name) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::INTERNAL_SERVER_ERROR, format!("record settings of {name:?}: {e}")),
    };
    match app.recorders.start_event(&app.hub, &name, settings, pre).await {
        Ok(started) => Json(json!({
            "stream": name,
            "start": rfc3339(started.start),
            "file": started.file.display().to_string(),
            "pre": round_ms(started.pre),
        }))
        .into_response(),
        Err(e) => refused(e),
    }
}

async fn stop(State(app): State<Arc<App>>, uri: Uri) -> Response {
    let Some((name, _)) = source(&uri) else { return no_source() };
    match app.recorders.stop_event(&name).await {
        Ok(ended) => Json(json!({
            "stream": name,
            "start": rfc3339(ended.start),
            "files": ended.files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            "duration": round_ms(ended.duration),
        }))
        .into_response(),
        Err(e) => refused(e),
    }
}

/// Seconds with millisecond precision.
fn round_ms(d: Duration) -> f64 {
    d.as_millis() as f64 / 1000.0
}

/// A stream's recording state in `/api/streams` (`"recording"`).
pub fn status_json(s: &RecordStatus) -> Value {
    let mut v = json!({ "mode": s.mode });
    if let Some(f) = &s.file {
        v["file"] = json!(f.display().to_string());
    }
    if let Some(e) = &s.error {
        v["error"] = json!(e);
    }
    if let Some(t) = s.event_since {
        v["event_since"] = json!(rfc3339(t));
    }
    v
}
