#![no_main]
//! Source URLs (`PUT /api/streams?src=`) and what signalling servers answer the HTTP and `webrtc:`
//! sources (redirect `Location`s, WHEP answers and error bodies, go2rtc WebSocket messages,
//! candidates): never panic, and credentials follow a redirect only to the same host and port.
//!
//! Input: lines; the first is the URL, the second a `Location` / content type, the rest a body.

use camrelay::fuzzing::{
    http_redirect, http_split_url, http_target, webrtc_source_answer_sdp, webrtc_source_candidate,
    webrtc_source_error_body, webrtc_source_resolve, webrtc_source_target, webrtc_source_ws_message, ParsedUrl,
};
use camrelay::sources::http::HttpSource;
use camrelay::sources::webrtc::WebrtcSource;
use libfuzzer_sys::fuzz_target;

fn check(u: &ParsedUrl) {
    assert!(!u.host.is_empty());
    assert!(u.path.starts_with('/'), "{u:?}");
}

/// A redirect keeps the credentials of `base` only when it stays on the same host and port.
fn check_redirect(base: &ParsedUrl, next: &ParsedUrl, location: &str) {
    check(next);
    if (next.host.as_str(), next.port) != (base.host.as_str(), base.port) && next.userinfo.is_some() {
        assert!(location.contains('@'), "credentials of {base:?} sent to {next:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(3, '\n');
    let url = parts.next().unwrap_or("");
    let second = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("");

    // HTTP source.
    let _ = HttpSource::new(url);
    if let Ok((base, headers)) = http_split_url(url) {
        for (name, value) in &headers {
            assert!(!name.is_empty() && !name.contains(['\r', '\n', ':']) && !value.contains(['\r', '\n']));
        }
        if let Ok(t) = http_target(base) {
            check(&t);
            if let Ok(next) = http_redirect(base, second) {
                check_redirect(&t, &next, second);
            }
        }
    }

    // WebRTC source.
    let _ = WebrtcSource::new(&format!("webrtc:{url}"));
    if let Ok(t) = webrtc_source_target(url) {
        check(&t);
        if let Ok(next) = webrtc_source_resolve(url, second) {
            check_redirect(&t, &next, second);
        }
    }
    let _ = webrtc_source_answer_sdp(second, body.as_bytes());
    let _ = webrtc_source_answer_sdp("application/json", data);
    let _ = webrtc_source_error_body(data);
    let _ = webrtc_source_ws_message(&text);
    for line in text.lines() {
        let _ = webrtc_source_candidate(line);
    }
});
