#![no_main]
//! MediaMTX's URL shapes on the HLS (`:8888`) and WebRTC (`:8889`) listeners, mapped to go2rtc's API:
//! never panics; what it maps to parses as a URI, and the stream name it passes (`src=`/`dst=`)
//! decodes back to the name in the path.

use camrelay::fuzzing::{mediamtx_url, query_value, request_path_and_query, uri_parses};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // The server only ever sees the path and query of a request target that parsed.
    if !text.starts_with('/') {
        return;
    }
    let Some((path, query)) = request_path_and_query(text) else { return };
    let (path, query) = (path.as_str(), query.as_deref());
    for hls in [true, false] {
        for method in ["GET", "POST", "PATCH", "DELETE", "OPTIONS"] {
            let Some(to) = mediamtx_url(hls, method, path, query) else { continue };
            if to.starts_with("page:") || to == "script" {
                continue;
            }
            // Queries are passed on as the client sent them; ours must parse when theirs does.
            if query.is_none() {
                assert!(uri_parses(&to), "{to}");
            }
            // Entry points name the stream first in the query (`?src=NAME`, `?dst=NAME`); other
            // requests pass the client's own query on.
            let entry = (to.starts_with("/api/stream.m3u8?") || to.starts_with("/api/webrtc?"))
                && path.trim_start_matches('/') != "api/webrtc";
            if !entry {
                continue;
            }
            let stream = path.trim_start_matches('/').rsplit_once('/').map(|(s, _)| s).unwrap_or("");
            let first = to.split_once('?').map(|(_, q)| q.split('&').next().unwrap_or("")).unwrap_or("");
            let value = first.strip_prefix("src=").or_else(|| first.strip_prefix("dst=")).expect("the stream first");
            assert_eq!(query_value(value), stream, "{to}");
        }
    }
});
