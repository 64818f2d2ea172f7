//! CSRF with a real browser (go2rtc's CVE-2024-29192 was a cross-site POST to its config endpoint that
//! ran `exec:`): headless Chromium on a page of another origin sends `text/plain` and form POSTs, no-cors
//! PUTs and a CORS PUT with JSON to `/api/config` and `/api/streams` with `exec:` sources. Nothing is
//! created, the config file is untouched, the command never runs, and the server logs each refusal.
//! The page (`tests/browser/csrf.mjs`) and the server run in a fresh network namespace (`unshare --net`).

mod common;

use common::{run_browser_script, temp_dir, BrowserNet};
use std::time::Duration;

#[test]
fn chromium_cross_site_requests_create_nothing() {
    let marker = temp_dir("csrf").join("pwned");
    let marker_path = marker.display().to_string();
    let v = run_browser_script(
        BrowserNet::Loopback,
        "csrf.mjs",
        &[env!("CARGO_BIN_EXE_camrelay"), &marker_path],
        Duration::from_secs(90),
    );
    assert!(v["error"].is_null(), "{v}");
    let streams: Vec<&str> = v["streams"].as_array().unwrap().iter().filter_map(|s| s.as_str()).collect();
    assert!(streams.contains(&"demo"), "{v}");
    assert!(!streams.iter().any(|s| s.starts_with("evil")), "a cross-site request created a stream: {v}");
    assert!(!v["config"].as_str().unwrap_or("").contains("evil"), "{v}");
    assert!(!v["file"].as_str().unwrap_or("").contains("evil"), "{v}");
    assert_eq!(v["marker"], false, "the exec: command ran: {v}");
    // The PUTs never left the browser (no-cors allows no PUT; the JSON one needs a preflight no answer
    // allows); the simple requests (the text/plain and form POSTs by fetch, the submitted form) reached
    // the server and were refused there, each logged.
    for blocked in ["config_json_cors", "streams_put"] {
        assert!(v["browser"][blocked].as_str().unwrap_or("").starts_with("blocked"), "{blocked}: {v}");
    }
    assert_eq!(v["browser"]["config_text_plain"], "opaque", "{v}");
    assert_eq!(v["browser"]["streams_post"], "opaque", "{v}");
    assert!(v["refusals"].as_u64().unwrap_or(0) >= 3, "{v}");
    // Same-origin requests still work.
    assert_eq!(v["same_origin_status"], 200, "{v}");
    assert!(!marker.exists());
}
