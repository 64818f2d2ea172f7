//! The web UI in headless Chromium (`tests/browser/ui.mjs`), in a fresh network namespace with only
//! loopback: the stream list, adding a stream through the form, the player (MSE, auto, HLS through hls.js, MJPEG), the
//! links and config pages, editing a stream's sources, the ICE servers the player hands to WebRTC, deleting, and
//! phone width. The player in WebRTC mode (`tests/browser/webrtc_ui.mjs`, with a veth address for ICE): the
//! microphone into a stream's backchannel, and the config's ICE servers reaching Chromium. Screenshots go to
//! `target/ui-screenshots/`.

mod common;

use common::{run_browser_script, temp_dir, BrowserNet, Server};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// Where the browser tests save their screenshots.
fn screenshot_dir() -> PathBuf {
    let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    shots.canonicalize().unwrap()
}

/// Runs `node SCRIPT ARGS...` from `tests/browser` (with `veth`, a veth address for WebRTC's candidates)
/// and returns its report.
fn run_browser(script: &str, args: &[&str], veth: bool, timeout: Duration) -> Value {
    let net = if veth { BrowserNet::Veth } else { BrowserNet::Loopback };
    let v = run_browser_script(net, script, args, timeout);
    eprintln!("{v:#}");
    v
}

#[test]
fn web_ui_lists_adds_edits_plays_and_deletes() {
    let shots = screenshot_dir();
    let v = run_browser(
        "ui.mjs",
        &[env!("CARGO_BIN_EXE_camrelay"), &shots.display().to_string()],
        false,
        Duration::from_secs(180),
    );
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
    // media=video: video alone (the MSE codecs the player asked for and got have no audio).
    let r = &v["mse_video_only"];
    assert!(r["frames1"].as_u64().unwrap_or(0) > r["frames0"].as_u64().unwrap_or(0) + 10, "{r}");
    let detail = r["detail"].as_str().unwrap_or("");
    assert!(detail.contains("avc1") && !detail.contains("mp4a"), "{r}");
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
    assert!(v["log"].as_str().unwrap_or("").contains("listen addr="), "{v}");

    // The player asks OPTIONS api/webrtc for ICE servers (RFC 9725 Link headers) and hands them to the peer
    // connection; without any (this config has none) it uses none, so it contacts no STUN server.
    assert_eq!(v["ice_default"], json!([]), "{v}");
    assert_eq!(
        v["ice_parsed"],
        json!([
            {"urls": "stun:10.0.0.1:3478"},
            {"urls": "turn:turn.example.net:3478?transport=udp", "username": "user", "credential": "p,w\"d"},
            {"urls": "stuns:s.example.net"},
        ]),
        "the Link parser keeps ice-server links with usable credentials: {v}"
    );
    assert!(v["ice_options_asked"].as_u64().unwrap_or(0) >= 1, "{v}");
    let from_options = v["ice_from_options"].as_array().unwrap_or_else(|| panic!("{v}"));
    assert_eq!(from_options.len(), 2, "{v}");
    assert_eq!(from_options[0]["urls"], json!(["stun:127.0.0.1:3478"]), "{v}");
    assert_eq!(from_options[1]["urls"], json!(["turn:127.0.0.1:3479?transport=udp"]), "{v}");
    assert_eq!((&from_options[1]["username"], &from_options[1]["credential"]), (&json!("u"), &json!("c")), "{v}");

    // Editing a stream's sources in its card: a bad line gets the server's error in the form and changes
    // nothing; a good source replaces the old one at once and in the config file, and plays at its size.
    assert_eq!(v["edit_initial"], "demo:clip", "{v}");
    assert!(v["edit_error"].as_str().unwrap_or("").contains("nosuchscheme"), "{v}");
    assert_eq!(v["edit_sources_after_error"], json!(["demo:clip"]), "{v}");
    let small = "ffmpeg:demo#video=h264#width=320#height=180";
    assert_eq!(v["edited_card"], json!([small]), "{v}");
    assert_eq!(v["edited_api"], json!([small]), "{v}");
    assert!(v["edited_config"].as_str().unwrap_or("").contains(&format!("added: {small}")), "{v}");
    let r = &v["edited_mse"];
    assert!(r["frames1"].as_u64().unwrap_or(0) > r["frames0"].as_u64().unwrap_or(0) + 10, "{r}");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(320), Some(180)), "{r}");
    // A masked password (***) that matches none of the stream's sources is refused by the server.
    assert!(v["edit_masked_error"].as_str().unwrap_or("").contains("***"), "{v}");
    assert!(v["phone_edit_width"].as_u64().unwrap() <= 390, "{v}");

    // Phone width: no horizontal scrolling.
    assert!(v["phone_index_width"].as_u64().unwrap() <= 390, "{v}");
    assert!(v["phone_stream_width"].as_u64().unwrap() <= 390, "{v}");

    // Delete through the UI.
    assert_eq!(v["deleted"], true, "{v}");
    assert!(!v["streams_after"].as_array().unwrap().iter().any(|s| s == "added"), "{v}");
    for shot in [
        "index-desktop.png",
        "index-phone.png",
        "stream-desktop.png",
        "stream-phone.png",
        "index-edit-desktop.png",
        "index-edit-phone.png",
    ] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
}

/// G.711 A-law to linear PCM.
fn alaw_to_linear(a: u8) -> i32 {
    let a = a ^ 0x55;
    let mantissa = i32::from(a & 0x0f) << 4;
    let t = match (a & 0x70) >> 4 {
        0 => mantissa + 8,
        1 => mantissa + 0x108,
        seg => (mantissa + 0x108) << (seg - 1),
    };
    if a & 0x80 != 0 {
        t
    } else {
        -t
    }
}

/// Two-way audio from the player page, as go2rtc's `stream.html?src=cam&media=video+audio+microphone`:
/// Chromium's fake microphone (a beep) goes out on a `sendrecv` audio transceiver, the server forwards it
/// into the stream's exec backchannel (PCMA 8000 on stdin), which writes it to a file. The page's mic
/// toggle stops and resumes sending without a new session, and on a session started without the
/// microphone starts one that sends.
#[test]
fn browser_microphone_reaches_exec_backchannel() {
    let shots = screenshot_dir();
    let dir = temp_dir("ui-mic");
    let out = dir.join("speaker.alaw");
    let v = run_browser(
        "webrtc_ui.mjs",
        &["mic", env!("CARGO_BIN_EXE_camrelay"), &shots.display().to_string(), &out.display().to_string()],
        true,
        Duration::from_secs(180),
    );
    assert!(v["error"].is_null() && v["page_errors"].is_null(), "{v}");
    let p = &v["playing"];
    assert_eq!((&p["state"], &p["mode"]), (&json!("playing"), &json!("webrtc")), "auto mode plays WebRTC: {p}");
    assert_eq!(p["offer_audio"], "sendrecv", "the offer sends the microphone on the audio m-line: {p}");
    assert_eq!(p["sending"], json!(["audio"]), "the audio sender carries the microphone track: {p}");
    assert_eq!(p["mic_button"]["visible"], true, "{p}");
    let a = &v["after"];
    assert!(a["frames"].as_u64().unwrap_or(0) > p["frames"].as_u64().unwrap_or(0) + 10, "video keeps decoding: {v}");
    assert_eq!((a["width"].as_u64(), a["height"].as_u64()), (Some(640), Some(360)), "{a}");

    // The backchannel file: three seconds of PCMA (8000 bytes a second), and not silence.
    let bytes = v["bytes"].as_u64().unwrap_or(0);
    assert!(
        bytes >= 24000,
        "the exec backchannel got {bytes} bytes of the browser's microphone (want 24000: 3 s of PCMA); \
         the server does not forward a WebRTC peer's microphone into the stream's backchannel: {v}"
    );
    assert_eq!(p["mic"], "sending", "the answer takes the microphone (sendrecv) and the page says so: {p}");
    assert_eq!(p["mic_button"]["pressed"], "true", "{p}");
    let audio = std::fs::read(&out).unwrap();
    let samples: Vec<i32> = audio.iter().map(|&b| alaw_to_linear(b)).collect();
    let loud = samples.iter().filter(|s| s.abs() > 1000).count();
    let peak = samples.iter().map(|s| s.abs()).max().unwrap_or(0);
    // The fake microphone beeps for 0.1 s every 0.5 s: about a fifth of the samples are loud.
    assert!(
        loud * 50 >= samples.len() && peak > 4000,
        "the backchannel got silence, not the beeping microphone: {loud} of {} samples above 1000, peak {peak}",
        samples.len()
    );

    // The toggle: off stops the audio (the file stops growing), on resumes it in the same session.
    assert_eq!((&v["off"]["mic_button"]["pressed"], &v["off"]["mic"]), (&json!("false"), &json!("off")), "{v}");
    assert_eq!(v["off"]["sending"], json!([]), "{v}");
    assert_eq!(v["stopped"], true, "the backchannel kept getting audio after the mic was turned off: {v}");
    assert!(v["resumed_bytes"].as_u64().unwrap_or(0) >= 8000, "the mic turned on again sends: {v}");
    assert_eq!(v["on_again"]["mic"], "sending", "{v}");

    // Phone width: the player with its mic button fits.
    assert_eq!(v["phone"]["mic"], "sending", "{v}");
    assert!(v["phone_width"].as_u64().unwrap_or(999) <= 390, "{v}");

    // Without media=...microphone the audio is receive-only; the toggle starts a session that sends.
    let n = &v["no_mic"];
    assert_eq!(
        (&n["offer_audio"], &n["mode"], &n["mic"]),
        (&json!("recvonly"), &json!("webrtc"), &json!("off")),
        "{n}"
    );
    assert_eq!((&n["mic_button"]["visible"], &n["mic_button"]["pressed"]), (&json!(true), &json!("false")), "{n}");
    let t = &v["toggled"];
    assert_eq!((&t["offer_audio"], &t["mic"]), (&json!("sendrecv"), &json!("sending")), "{t}");
    assert!(v["toggled_bytes"].as_u64().unwrap_or(0) >= 8000, "{v}");
    assert!(v["toggled_url"].as_str().unwrap_or("").contains("media=video+audio+microphone"), "{v}");
    for shot in ["stream-mic-desktop.png", "stream-mic-phone.png", "stream-webrtc-desktop.png"] {
        assert!(shots.join(shot).exists(), "{shot}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The microphone on a stream with no backchannel: the server's answer does not take the browser's audio
/// (the audio m-line is answered `sendonly` or `inactive`), and the page says so instead of "Mic on".
#[test]
fn player_says_when_a_stream_takes_no_microphone() {
    let shots = screenshot_dir();
    let v = run_browser(
        "webrtc_ui.mjs",
        &["refuse", env!("CARGO_BIN_EXE_camrelay"), &shots.display().to_string()],
        true,
        Duration::from_secs(90),
    );
    assert!(v["error"].is_null() && v["page_errors"].is_null(), "{v}");
    let p = &v["plain"];
    assert_eq!(
        (&p["state"], &p["mode"], &p["offer_audio"]),
        (&json!("playing"), &json!("webrtc"), &json!("sendrecv")),
        "{p}"
    );
    assert!(
        ["sendonly", "inactive"].contains(&p["answer_audio"].as_str().unwrap_or("")),
        "the server answered the audio m-line {} for a stream without backchannel: it should not claim to \
         receive the microphone (answer sendonly, or inactive): {p}",
        p["answer_audio"]
    );
    assert_eq!(p["mic"], "refused", "{p}");
    assert!(p["mic_note"].as_str().unwrap_or("").contains("no backchannel"), "{p}");
    assert_eq!(p["mic_button"]["pressed"], "false", "{p}");
}

/// `webrtc.ice_servers` reach the browser: the server lists them in `OPTIONS /api/webrtc` (RFC 9725 `Link`
/// headers), the player hands them to its RTCPeerConnection, and Chromium sends STUN Binding and TURN
/// Allocate requests to the configured addresses, while the stream still plays.
#[test]
fn player_hands_configured_ice_servers_to_chromium() {
    let shots = screenshot_dir();
    let v = run_browser(
        "webrtc_ui.mjs",
        &["ice", env!("CARGO_BIN_EXE_camrelay"), &shots.display().to_string()],
        true,
        Duration::from_secs(90),
    );
    assert!(v["error"].is_null() && v["page_errors"].is_null(), "{v}");
    let link = v["options"]["link"].as_str().unwrap_or("");
    assert!(
        link.contains("<stun:10.99.0.1:3478>") && link.contains("rel=\"ice-server\""),
        "OPTIONS /api/webrtc lists no ice-server Link for webrtc.ice_servers: {}",
        v["options"]
    );
    let p = &v["playing"];
    assert_eq!((&p["state"], &p["mode"]), (&json!("playing"), &json!("webrtc")), "{p}");
    assert_eq!((p["width"].as_u64(), p["height"].as_u64()), (Some(640), Some(360)), "{p}");
    let servers = p["ice_servers"].as_array().unwrap_or_else(|| panic!("{p}"));
    assert!(servers.iter().any(|s| s["urls"] == json!(["stun:10.99.0.1:3478"])), "{p}");
    assert!(
        servers.iter().any(|s| s["urls"] == json!(["turn:10.99.0.1:3479?transport=udp"])
            && s["username"] == "camuser"
            && s["credential"] == "pa,ss"),
        "{p}"
    );
    assert!(v["stun_messages"].as_array().unwrap().contains(&json!(1)), "no STUN Binding request: {v}");
    assert!(v["turn_messages"].as_array().unwrap().contains(&json!(3)), "no TURN Allocate request: {v}");
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
