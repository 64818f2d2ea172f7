//! Headless Chromium plays the demo stream through MSE (WebSocket `mse`), progressive MP4 and WebRTC
//! (WHEP over UDP and over ICE-TCP); the page
//! and the server run in a fresh network namespace with only loopback (`unshare --net`), so nothing can
//! reach out. The browser side is `tests/browser/players.mjs` (Playwright driving Debian's chromium).

mod common;

use common::{run_browser_script, BrowserNet};
use std::time::Duration;

#[test]
fn chromium_plays_mse_mp4_and_webrtc() {
    let v =
        run_browser_script(BrowserNet::Veth, "players.mjs", &[env!("CARGO_BIN_EXE_camrelay")], Duration::from_secs(90));
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
