//! The web UI in headless Chromium (`tests/browser/ui.mjs`), in a fresh network namespace with only
//! loopback: the stream list, adding a stream through the form, the player (MSE, auto, HLS through hls.js, MJPEG), the
//! links and config pages, deleting, and phone width. Screenshots go to `target/ui-screenshots/`.

mod common;

use common::{run_with_timeout, Server};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

#[test]
fn web_ui_lists_adds_plays_and_deletes() {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    let shots = manifest.join("../../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let shots = shots.canonicalize().unwrap();
    let script =
        format!("ip link set lo up && exec node ui.mjs '{}' '{}'", env!("CARGO_BIN_EXE_camrelay"), shots.display());
    let out = run_with_timeout(
        Command::new("unshare").args(["--net", "sh", "-c", &script]).current_dir(&dir),
        Duration::from_secs(150),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    let v: serde_json::Value = serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout} stderr {}", String::from_utf8_lossy(&out.stderr)));
    eprintln!("{v:#}");
    assert!(v["error"].is_null() && v["page_errors"].is_null(), "{v}");

    // The list shows the configured stream with its state, source and reader count.
    let index = v["index"].as_array().unwrap();
    let demo = index.iter().find(|s| s["name"] == "demo").unwrap_or_else(|| panic!("no demo card: {v}"));
    assert!(["idle", "connecting", "online", "retrying"].contains(&demo["state"].as_str().unwrap()), "{demo}");
    assert_eq!(demo["sources"][0], "demo:clip", "{demo}");
    assert!(demo["readers"].as_str().unwrap().ends_with("readers") || demo["readers"] == "1 reader", "{demo}");
    assert_eq!(v["thumb_width"], 320, "thumbnail: {v}");

    // The form: the server's error text on failure; the new stream in the list on success.
    assert!(v["add_error"].as_str().unwrap().contains("broken"), "{v}");
    assert_eq!(v["added"], "demo:clip", "{v}");
    assert_eq!(v["add_error_after"], "", "{v}");

    // The player plays the added stream: frames keep decoding at 640x360.
    for key in ["mse", "auto", "hls", "phone_mse"] {
        let r = &v[key];
        assert!(r["frames1"].as_u64().unwrap() > r["frames0"].as_u64().unwrap() + 10, "{key}: {r}");
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(360)), "{key}: {r}");
    }
    assert_eq!(v["mse"]["mode"], "mse", "{v}");
    assert_eq!(v["phone_mse"]["mode"], "mse", "{v}");
    // Auto: WebRTC when the server answers api/webrtc, otherwise MSE.
    assert!(["webrtc", "mse"].contains(&v["auto"]["mode"].as_str().unwrap()), "{v}");
    assert_eq!(v["hls"]["mode"], "hls", "{v}");
    assert_eq!(v["mjpeg"]["mode"], "mjpeg", "{v}");
    assert_eq!(v["mjpeg"]["img_width"], 640, "{v}");

    // Links and config pages.
    let links: Vec<&str> = v["links"].as_array().unwrap().iter().filter_map(|l| l.as_str()).collect();
    assert!(links.iter().any(|l| l.starts_with("rtsp://") && l.ends_with("/added")), "{links:?}");
    for path in [
        "api/stream.mp4?src=added",
        "api/stream.m3u8?src=added",
        "api/stream.mjpeg?src=added",
        "api/frame.jpeg?src=added",
    ] {
        assert!(links.iter().any(|l| l.starts_with("http://") && l.ends_with(path)), "{path}: {links:?}");
    }
    assert!(links.iter().any(|l| l.starts_with("ws://") && l.ends_with("api/ws?src=added")), "{links:?}");
    assert!(v["config"].as_str().unwrap().contains("added: demo:clip"), "{v}");
    // The editor saved a change through POST /api/config, and the log page shows server lines.
    assert!(v["config_saved"].as_str().unwrap_or("").starts_with("Saved."), "{v}");
    assert!(v["config_after"].as_str().unwrap_or("").contains("# saved from the editor"), "{v}");
    assert!(v["log"].as_str().unwrap_or("").contains("listening on"), "{v}");

    // Phone width: no horizontal scrolling.
    assert!(v["phone_index_width"].as_u64().unwrap() <= 390, "{v}");
    assert!(v["phone_stream_width"].as_u64().unwrap() <= 390, "{v}");

    // Delete through the UI.
    assert_eq!(v["deleted"], true, "{v}");
    assert!(!v["streams_after"].as_array().unwrap().iter().any(|s| s == "added"), "{v}");
    for shot in ["index-desktop.png", "index-phone.png", "stream-desktop.png", "stream-phone.png"] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
}

/// The pages and assets are served with their content types and `no-cache`, also under `api.base_path`
/// (where `/base` redirects to `/base/index.html` so the pages' relative URLs stay inside it).
#[test]
fn pages_are_served_with_types_and_base_path() {
    // WebRTC's UDP port too is chosen by the system, so these servers never collide with others.
    let server = Server::start("webrtc:\n  listen: 127.0.0.1:0\n");
    let r = server.http("GET", "/");
    assert_eq!(r.status, 200, "{}", r.headers);
    assert!(r.text().contains("<title>Streams"), "{}", r.text());
    let head = r.headers.to_ascii_lowercase();
    assert!(head.contains("content-type: text/html; charset=utf-8"), "{head}");
    assert!(head.contains("cache-control: no-cache"), "{head}");
    for (path, ty) in [
        ("/index.html", "text/html"),
        ("/stream.html", "text/html"),
        ("/links.html", "text/html"),
        ("/editor.html", "text/html"),
        ("/log.html", "text/html"),
        ("/style.css", "text/css"),
        ("/player.js", "text/javascript"),
    ] {
        let r = server.http("GET", path);
        assert_eq!(r.status, 200, "{path}");
        assert!(r.headers.to_ascii_lowercase().contains(&format!("content-type: {ty}")), "{path}: {}", r.headers);
    }
    assert_eq!(server.http("GET", "/nope.html").status, 404);

    let based = Server::start("api:\n  base_path: /cam\nwebrtc:\n  listen: 127.0.0.1:0\n");
    let r = based.http("GET", "/cam");
    assert_eq!(r.status, 308, "{}", r.headers);
    assert!(r.headers.to_ascii_lowercase().contains("location: /cam/index.html"), "{}", r.headers);
    let r = based.http("GET", "/cam/index.html");
    assert_eq!(r.status, 200, "{}", r.headers);
    // Every URL in the pages is relative, so it resolves under the base path.
    for page in [
        "/cam/index.html",
        "/cam/stream.html",
        "/cam/links.html",
        "/cam/editor.html",
        "/cam/index.js",
        "/cam/player.js",
    ] {
        let text = based.http("GET", page).text();
        for absolute in ["href=\"/", "src=\"/", "('/api", "(`/api", "'/api/", "`/api/"] {
            assert!(!text.contains(absolute), "{page} has an absolute URL ({absolute})");
        }
    }
    assert_eq!(based.http("GET", "/cam/style.css").status, 200);
    assert_eq!(based.http("GET", "/index.html").status, 404);
}
