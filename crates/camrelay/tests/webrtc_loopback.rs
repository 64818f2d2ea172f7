//! Issue 12: the player page plays WebRTC when the browser has no network address to offer. Chromium and
//! camrelay run in a fresh network namespace with only loopback (`unshare --net`): Chromium's offer then
//! carries no candidate line (or, elsewhere, only mDNS `.local` names), the player used to give up at once
//! ("this browser found no network address"), although the server is ICE-lite and learns the browser's
//! address from its connectivity checks. The browser side is `tests/browser/webrtc_loopback.mjs`.

mod common;

use common::{run_browser_script, run_with_timeout, BrowserNet};
use std::process::Command;
use std::time::Duration;

#[test]
fn player_plays_webrtc_when_the_offer_has_no_candidates() {
    // Only the lack of permission to make a network namespace skips this test.
    let probe = run_with_timeout(Command::new("unshare").args(["--net", "true"]), Duration::from_secs(10));
    if !probe.status.success() {
        eprintln!("SKIPPED: `unshare --net` is not permitted here ({})", String::from_utf8_lossy(&probe.stderr).trim());
        return;
    }
    let v = run_browser_script(
        BrowserNet::Loopback,
        "webrtc_loopback.mjs",
        &[env!("CARGO_BIN_EXE_camrelay")],
        Duration::from_secs(90),
    );
    eprintln!("{v:#}");
    assert!(v["error"].is_null(), "{v}");
    let r = &v["loopback"];
    assert!(r["page_errors"].is_null(), "{r}");
    // The situation of the issue: nothing in the offer tells the server where the browser is.
    let candidates = r["first"]["offer_candidates"].as_array().unwrap_or_else(|| panic!("{r}"));
    assert!(
        candidates.iter().all(|c| c.as_str().is_some_and(|c| c.contains(".local "))),
        "the offer names an address, so this does not test the issue: {candidates:?}"
    );
    // The player connected and plays: decoded pictures of the demo's size, and its clock moving on.
    let p = &r["playing"];
    assert_eq!(
        (p["state"].as_str(), p["mode"].as_str(), p["error"].as_str()),
        (Some("playing"), Some("webrtc"), Some("")),
        "{r}"
    );
    assert_eq!((p["width"].as_u64(), p["height"].as_u64()), (Some(640), Some(360)), "{r}");
    assert!(p["frames"].as_u64().unwrap_or(0) >= 50, "{r}");
    let (t0, t1) = (r["first"]["current_time"].as_f64().unwrap_or(0.0), p["current_time"].as_f64().unwrap_or(0.0));
    assert!(t1 > t0 + 1.0, "the video's clock went from {t0} to {t1}: {r}");
    assert_eq!(p["ice"], "connected", "{r}");
}
