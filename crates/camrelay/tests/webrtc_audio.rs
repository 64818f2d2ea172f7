//! Audio for browsers (issue 20): headless Chromium plays H.264 with AAC 44.1 kHz, PCMA 8 kHz, PCMU
//! 8 kHz and PCMA 16 kHz cameras (ffmpeg publishing over RTSP) over WebRTC, and `getStats` shows the
//! audio decoded: Opus transcoded in-process from AAC and 16 kHz PCMA (and from 8 kHz PCMA for a
//! browser that takes only Opus), G.711 8 kHz passed through. Two viewers share one transcoder. The
//! browser side is `tests/browser/webrtc_audio.mjs`; it runs in a fresh network namespace.

mod common;

use common::{run_browser_script, BrowserNet};
use std::time::Duration;

#[test]
fn chromium_decodes_transcoded_and_passed_through_audio() {
    let v = run_browser_script(
        BrowserNet::Veth,
        "webrtc_audio.mjs",
        &[env!("CARGO_BIN_EXE_camrelay")],
        Duration::from_secs(120),
    );
    assert!(v["error"].is_null(), "{v}");
    for (case, codec) in [
        ("aac", "audio/opus"),
        ("pcma", "audio/PCMA"),
        ("pcmu", "audio/PCMU"),
        ("pcma16k", "audio/opus"),
        ("pcma_opus_only", "audio/opus"),
    ] {
        let r = &v[case];
        let a = &r["audio"];
        eprintln!("{case}: {a} video {}", r["video"]);
        assert_eq!(a["codec"], codec, "{case}: {r}\nlog: {}", v["log"]);
        // Five seconds of play: 20 ms packets; samples counted at the codec's clock (48 or 8 kHz).
        let packets = a["packets"].as_u64().unwrap_or(0);
        let samples = a["samples"].as_u64().unwrap_or(0);
        let clock = a["clock"].as_u64().unwrap_or(u64::MAX / 4);
        let concealed = a["concealed"].as_u64().unwrap_or(u64::MAX);
        assert!(packets > 100, "{case}: {packets} audio packets: {r}\nlog: {}", v["log"]);
        assert!(samples > clock * 3, "{case}: {samples} samples decoded (clock {clock}): {r}");
        assert!(concealed * 5 < samples, "{case}: {concealed} of {samples} samples concealed: {r}");
        // The 440 Hz tone, not silence: ffmpeg's sine is at -18 dBFS (audio level ≈ 0.125).
        let energy = a["energy"].as_f64().unwrap_or(0.0);
        let level = a["level"].as_f64().unwrap_or(0.0);
        assert!(energy > 0.01 && level > 0.03, "{case}: energy {energy}, level {level}: {r}");
        assert!(r["video"]["frames"].as_u64().unwrap_or(0) > 50, "{case}: {r}");
    }
    let shared = &v["shared"];
    for viewer in shared["viewers"].as_array().unwrap() {
        assert_eq!(viewer["audio"]["codec"], "audio/opus", "{shared}");
        assert!(viewer["audio"]["samples"].as_u64().unwrap_or(0) > 48_000, "{shared}");
    }
    // One derived stream `aac#opus` with its one transcoder reading `aac`, and both viewers on it.
    let derived = &shared["streams"]["aac#opus"];
    assert_eq!(derived["producers"].as_array().map(Vec::len), Some(1), "{derived}");
    let viewers = derived["consumers"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(viewers, 2, "{derived}");
}
