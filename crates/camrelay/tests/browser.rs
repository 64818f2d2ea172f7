//! Headless Chromium plays the demo stream through MSE (WebSocket `mse`), progressive MP4 and WebRTC
//! (WHEP over UDP and over ICE-TCP); the page
//! and the server run in a fresh network namespace with only loopback (`unshare --net`), so nothing can
//! reach out. The browser side is `tests/browser/players.mjs` (Playwright driving Debian's chromium).

mod common;

use common::run_with_timeout;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn chromium_plays_mse_mp4_and_webrtc() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    // Loopback plus a veth pair with a private address: Chromium gathers WebRTC candidates only on a
    // non-loopback interface. Both ends stay inside this namespace.
    let script = format!(
        "ip link set lo up && ip link add veth0 type veth peer name veth1 && ip addr add 10.99.0.1/24 dev veth0 \
         && ip link set veth0 up && ip link set veth1 up && exec node players.mjs {}",
        env!("CARGO_BIN_EXE_camrelay")
    );
    let out = run_with_timeout(
        Command::new("unshare").args(["--net", "sh", "-c", &script]).current_dir(&dir),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {}", String::from_utf8_lossy(&out.stderr)));
    assert!(v["error"].is_null(), "{v}");
    for mode in ["mse", "mp4", "webrtc", "webrtc_ws", "webrtc_tcp"] {
        let r = &v[mode];
        assert!(r["frames"].as_u64().unwrap_or(0) >= 50, "{mode}: {r}");
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(360)), "{mode}: {r}");
        eprintln!("{mode}: first frame {} ms after the request", r["first_frame_ms"]);
    }
    assert_eq!(v["webrtc"]["transport"], "udp", "{v}");
    // The TCP-only server (`listen: ...:0/tcp`): ICE-TCP, a passive candidate Chromium connects to.
    assert_eq!(v["webrtc_tcp"]["transport"], "tcp", "{v}");
    assert!(v["mse"]["mime"].as_str().unwrap_or("").starts_with("video/mp4; codecs=\"avc1."), "{v}");
    assert!(v["ws"]["mjpeg_images"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert_eq!(v["ws"]["hls_type"], "hls", "{v}");
    let playlist = v["ws"]["hls_playlist"].as_str().unwrap_or("");
    assert!(playlist.starts_with("#EXTM3U") && playlist.contains("hls/playlist.m3u8?id="), "{playlist}");
}
