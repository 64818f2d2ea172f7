//! The recordings timeline of the web UI (`timeline.html`, issue 17) in headless Chromium
//! (`tests/browser/timeline.mjs`), in a fresh network namespace with only loopback: camrelay records
//! the demo stream with the playback server on a port of its own; the page draws the spans that
//! `api/playback/list` gives on the API listener, a click plays from that time in a `<video>`
//! (`api/playback/get?...&format=mp4`) at the demo's 640x360, and hls.js plays and seeks the span's
//! VOD playlist (`format=hls`). A screenshot goes to `target/ui-screenshots/timeline.png`.

mod common;

use common::{run_browser_script, BrowserNet};
use std::path::PathBuf;
use std::time::Duration;

#[test]
fn timeline_draws_the_recorded_spans_and_plays_where_clicked() {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shots = shots.canonicalize().unwrap();
    let shots = shots.display().to_string();
    let v = run_browser_script(
        BrowserNet::Loopback,
        "timeline.mjs",
        &[env!("CARGO_BIN_EXE_camrelay"), &shots],
        Duration::from_secs(150),
    );
    eprintln!("{v:#}");
    assert!(v["error"].is_null() && v["page_errors"].is_null(), "{v}");
    assert!(v["playback_listen"].as_str().unwrap().starts_with("127.0.0.1:"), "{v}");

    // The spans drawn are the spans listed, with a visible width.
    let listed = v["listed"].as_array().unwrap();
    let drawn = v["drawn"].as_array().unwrap();
    assert_eq!(drawn.len(), listed.len(), "{v}");
    // Through the API listener, /list's URLs point beside it (root-relative).
    let url = listed[0]["url"].as_str().unwrap();
    assert!(url.starts_with("/api/playback/get?duration=") && url.contains("&path=demo&start="), "{url}");
    assert_eq!(drawn[0]["start"], listed[0]["start"], "{v}");
    assert!(drawn[0]["duration"].as_f64().unwrap() >= 5.0, "{v}");
    assert!(drawn[0]["width"].as_f64().unwrap() >= 2.0, "{v}");
    assert_eq!(v["title"], "Recordings · demo");
    // Under "everything" the span fills most of the timeline.
    assert!(v["bar"]["width"].as_f64().unwrap() > 500.0, "{v}");

    // The click: a progressive MP4 from the clicked time, inside the span, playing at 640x360.
    let video = &v["video"];
    let src = video["src"].as_str().unwrap();
    assert!(src.contains("/api/playback/get?path=demo&start=") && src.ends_with("format=mp4"), "{src}");
    let start = camrelay::record::template::parse_rfc3339(listed[0]["start"].as_str().unwrap()).unwrap();
    let clicked = camrelay::record::template::parse_rfc3339(video["start"].as_str().unwrap()).unwrap();
    let into = clicked.duration_since(start).map(|d| d.as_secs_f64()).unwrap_or(-1.0);
    // 40 % into the span as the bar was at the click: the recording grows while the test runs, so
    // that is between the span listed first and the span drawn last (5.12 s and 10.52 s in one run).
    let listed_span = listed[0]["duration"].as_f64().unwrap();
    let drawn_span = drawn[0]["duration"].as_f64().unwrap();
    let (shortest, longest) = (listed_span.min(drawn_span), listed_span.max(drawn_span));
    assert!(
        into > 0.2 * shortest && into < 0.6 * longest,
        "clicked {into} s into a {listed_span}..{drawn_span} s span: {v}"
    );
    assert_eq!((video["width"].as_u64(), video["height"].as_u64()), (Some(640), Some(360)), "{video}");
    let (t0, t1) = (video["t0"].as_f64().unwrap(), video["t1"].as_f64().unwrap());
    assert!(t1 > t0 + 0.8, "currentTime advances: {video}");
    assert!(video["frames1"].as_u64().unwrap() > video["frames0"].as_u64().unwrap() + 15, "{video}");
    assert_eq!(video["paused"], false, "{video}");
    assert_eq!(video["cursor"], true, "{video}");
    assert_eq!(video["error"], "", "{video}");

    // hls.js: a VOD playlist over the span, played and sought near its end.
    let hls = &v["hls"];
    assert_eq!(hls["vod"], "VOD", "{hls}");
    assert_eq!(hls["live"], false, "{hls}");
    assert!((hls["total"].as_f64().unwrap() - listed[0]["duration"].as_f64().unwrap()).abs() < 0.5, "{hls}");
    assert!(hls["segments"].as_u64().unwrap() >= 2, "{hls}");
    assert!(hls["played"].as_f64().unwrap() > 1.0, "{hls}");
    assert!(hls["after_seek"].as_f64().unwrap() > hls["target"].as_f64().unwrap() + 0.5, "{hls}");
    assert_eq!((hls["width"].as_u64(), hls["height"].as_u64()), (Some(640), Some(360)), "{hls}");
    assert_eq!(hls["errors"].as_array().map(Vec::len), Some(0), "{hls}");
}
