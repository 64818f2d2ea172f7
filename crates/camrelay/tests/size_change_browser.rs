//! Headless Chromium's MSE follows a picture-size change (issue 19): `tests/browser/size_change.mjs`
//! plays a 320x240 publisher through go2rtc's WebSocket `mse`, the publisher is replaced by a 640x480
//! one within `hub.publisher_grace`, and the same SourceBuffer and WebSocket show the new size (the
//! server sends a new init segment). Runs in a fresh network namespace with only loopback.

mod common;

use common::run_with_timeout;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn chromium_mse_follows_a_new_publishers_picture_size() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    let script = format!("ip link set lo up && exec node size_change.mjs {}", env!("CARGO_BIN_EXE_camrelay"));
    let out = run_with_timeout(
        Command::new("unshare").args(["--net", "sh", "-c", &script]).current_dir(&dir),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line =
        stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no result: {stdout}\n{stderr}"));
    eprintln!("{line}");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
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
