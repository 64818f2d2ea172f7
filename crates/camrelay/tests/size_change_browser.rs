//! Headless Chromium's MSE follows a picture-size change (issue 19): `tests/browser/size_change.mjs`
//! plays a 320x240 publisher through go2rtc's WebSocket `mse`, the publisher is replaced by a 640x480
//! one within `hub.publisher_grace`, and the same SourceBuffer and WebSocket show the new size (the
//! server sends a new init segment). Runs in a fresh network namespace with only loopback.

mod common;

use common::{run_browser_script, BrowserNet};
use std::time::Duration;

#[test]
fn chromium_mse_follows_a_new_publishers_picture_size() {
    let v = run_browser_script(
        BrowserNet::Loopback,
        "size_change.mjs",
        &[env!("CARGO_BIN_EXE_camrelay")],
        Duration::from_secs(120),
    );
    eprintln!("{v}");
    assert!(v["error"].is_null(), "{v}");
    let sizes = v["sizes"].as_array().unwrap();
    let seen: Vec<(u64, u64)> =
        sizes.iter().map(|s| (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap())).collect();
    assert_eq!(seen, [(320, 240), (640, 480)], "{v}");
    // One WebSocket throughout, never closed, no SourceBuffer error, frames decoded after the switch.
    assert_eq!(sizes[1]["opens"], 1, "{v}");
    assert_eq!(sizes[1]["closed"], false, "{v}");
    assert!(sizes[1]["error"].is_null(), "{v}");
    assert!(sizes[1]["frames"].as_u64().unwrap() >= sizes[0]["frames"].as_u64().unwrap() + 25, "{v}");
}
