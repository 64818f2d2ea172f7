//! HTTP API: go2rtc's endpoints and JSON shapes, persistence into the config file, auth and CORS.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn api_info_streams_and_schemes() {
    let srv = Server::start("");
    let info = srv.http("GET", "/api").json();
    // The go2rtc API level (what go2rtc clients check), and camrelay's own release beside it.
    assert_eq!(info["version"], "1.9.13");
    assert_eq!(info["camrelay_version"], env!("CARGO_PKG_VERSION"));
    assert!(info["config_path"].as_str().unwrap().ends_with("camrelay.yaml"));

    let streams = srv.http("GET", "/api/streams").json();
    assert_eq!(streams["demo"]["producers"][0]["url"], "demo:clip");
    assert!(streams["demo"]["consumers"].is_null());

    let schemes = srv.http("GET", "/api/schemes").json();
    assert!(schemes.as_array().unwrap().iter().any(|s| s == "demo"));

    let missing = srv.http("GET", "/api/streams?src=nope");
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("stream not found: nope"));
}

#[test]
fn consumers_are_listed_while_reading() {
    let srv = Server::start("");
    let url = srv.rtsp_url("demo");
    let reader = std::thread::spawn(move || decode_video_frames(&url, "tcp", 75));
    let seen = wait_until(Duration::from_secs(30), || {
        let s = srv.http("GET", "/api/streams?src=demo").json();
        s["consumers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|r| r["protocol"] == "rtsp+tcp" && r["bytes_send"].as_u64().unwrap_or(0) > 0))
    });
    assert!(seen);
    let s = srv.http("GET", "/api/streams?src=demo").json();
    let p = &s["producers"][0];
    assert_eq!(p["state"], "online");
    assert_eq!(p["receivers"][0]["codec"]["codec_name"], "h264");
    assert!(p["receivers"][0]["bytes"].as_u64().unwrap() > 0);
    assert!(s["consumers"][0]["user_agent"].as_str().unwrap().contains("Lavf"));
    assert_eq!(reader.join().unwrap().unwrap(), 75);
}

#[test]
fn put_patch_delete_persist_into_the_config_file_keeping_comments() {
    let srv = Server::start("# my cameras\nstreams:\n  # the garden\n  garden: demo:clip\n");
    let put = srv.http("PUT", "/api/streams?name=porch&src=demo:clip");
    assert_eq!(put.status, 200, "{}", put.text());
    let file = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(file.contains("# my cameras") && file.contains("# the garden"), "{file}");
    assert!(file.contains("porch: demo:clip") || file.contains("porch: 'demo:clip'"), "{file}");
    // The new stream plays at once.
    assert_eq!(decode_video_frames(&srv.rtsp_url("porch"), "tcp", 10).unwrap(), 10);

    let patch = srv.http("PATCH", "/api/streams?name=garden&src=demo:%23x");
    assert_eq!(patch.status, 400, "demo:#x is not a valid demo source: {}", patch.text());
    let patch = srv.http("PATCH", "/api/streams?name=temp&src=demo:clip");
    assert_eq!(patch.status, 200);
    let file2 = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(!file2.contains("temp"), "PATCH is not persisted");

    let del = srv.http("DELETE", "/api/streams?src=porch");
    assert_eq!(del.status, 200);
    let file3 = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(!file3.contains("porch") && file3.contains("# the garden"), "{file3}");
    assert_eq!(srv.http("GET", "/api/streams?src=porch").status, 404);
    assert_eq!(srv.http("DELETE", "/api/streams?src=porch").status, 404);
}

/// Editing a stream with the masked URL the API showed keeps the hidden password (as the web UI's edit
/// form does); a `***` that matches none of the stream's sources is refused, never saved.
#[test]
fn put_keeps_secrets_hidden_behind_masked_sources() {
    let srv = Server::start("streams:\n  cam: rtsp://admin:s3cret@127.0.0.1:9/live\n");
    let shown = srv.http("GET", "/api/streams?src=cam").json();
    let masked = shown["producers"][0]["url"].as_str().unwrap().to_string();
    assert_eq!(masked, "rtsp://admin:***@127.0.0.1:9/live");
    let put = srv.http("PUT", &format!("/api/streams?name=cam&src={masked}&src=demo:clip"));
    assert_eq!(put.status, 200, "{}", put.text());
    let file = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(file.contains("rtsp://admin:s3cret@127.0.0.1:9/live") && file.contains("demo:clip"), "{file}");
    assert!(!file.contains("***"), "{file}");

    let put = srv.http("PUT", "/api/streams?name=cam&src=rtsp://admin:***@192.0.2.1/live");
    assert_eq!(put.status, 400, "{}", put.text());
    assert!(put.text().contains("hides a secret"), "{}", put.text());
    let file = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(file.contains("s3cret") && !file.contains("192.0.2.1"), "{file}");
}

#[test]
fn bad_api_parameters_get_json_errors() {
    let srv = Server::start("");
    let r = srv.http("PUT", "/api/streams?name=x&src=nosuch://a");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("unsupported scheme: nosuch"));
    let r = srv.http("PUT", "/api/streams");
    assert_eq!(r.status, 400);
    let r = srv.http("PUT", "/api/streams?name=x&src=exec:ffmpeg%20-i%20y");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("allow_exec"));
    let r = srv.http("GET", "/api/nothing-here");
    assert_eq!(r.status, 404);
}

#[test]
fn config_endpoint_masks_secrets() {
    let srv = Server::start("rtsp:\n  password: topsecret\nstreams:\n  cam: rtsp://admin:hunter2@10.1.1.1/live\n");
    let r = srv.http("GET", "/api/config");
    assert_eq!(r.status, 200);
    let text = r.text();
    assert!(!text.contains("topsecret") && !text.contains("hunter2"), "{text}");
    assert!(text.contains("rtsp://admin:***@10.1.1.1/live") || text.contains("admin:"), "{text}");
    let streams = srv.http("GET", "/api/streams").text();
    assert!(!streams.contains("hunter2"), "{streams}");
}

#[test]
fn basic_auth_and_cors() {
    let srv = Server::start("api:\n  username: admin\n  password: pw\n  local_auth: true\n  origin: '*'\n");
    let r = srv.http("GET", "/api/streams");
    assert_eq!(r.status, 401);
    assert!(r.headers.contains("WWW-Authenticate") || r.headers.contains("www-authenticate"));
    let ok = http_request(srv.api.unwrap(), "GET", "/api/streams", &[("Authorization", "Basic YWRtaW46cHc=")], b"");
    assert_eq!(ok.status, 200);
    assert!(ok.headers.to_ascii_lowercase().contains("access-control-allow-origin: *"));
    let bad = http_request(srv.api.unwrap(), "GET", "/api/streams", &[("Authorization", "Basic YWRtaW46eA==")], b"");
    assert_eq!(bad.status, 401);
    // A CORS preflight (with Access-Control-Request-Method) is answered without credentials.
    let preflight = http_request(
        srv.api.unwrap(),
        "OPTIONS",
        "/api/streams",
        &[("Origin", "http://ui.example"), ("Access-Control-Request-Method", "PUT")],
        b"",
    );
    assert_eq!(preflight.status, 204);
    let h = preflight.headers.to_ascii_lowercase();
    assert!(h.contains("access-control-allow-methods: get, post, put"), "{h}");
    // Other OPTIONS requests are requests like any other: they need the credentials.
    assert_eq!(srv.http("OPTIONS", "/api/webrtc").status, 401);
    // So do requests naming a session (WHEP trickle/delete, HLS segments) by its id.
    assert_eq!(srv.http("DELETE", "/api/webrtc?id=0123456789abcdef").status, 401);
    assert_eq!(srv.http("GET", "/api/hls/playlist.m3u8?id=0123456789abcdef").status, 401);
}

#[test]
fn base_path_prefixes_the_api() {
    let srv = Server::start("api:\n  base_path: /rtc\n");
    assert_eq!(srv.http("GET", "/rtc/api/streams").status, 200);
    assert_eq!(srv.http("GET", "/api/streams").status, 404);
}

#[test]
fn invalid_config_fails_with_file_line_and_column() {
    let dir = temp_dir("badcfg");
    std::fs::write(dir.join("camrelay.yaml"), "api:\n  listen: ':1984'\nrtsp:\n  listen: [1, 2]\n").unwrap();
    let out = run_with_timeout(Command::new(env!("CARGO_BIN_EXE_camrelay")).current_dir(&dir), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("camrelay.yaml") && err.contains("line 4"), "{err}");

    std::fs::write(dir.join("camrelay.yaml"), "api: [\n").unwrap();
    let out = run_with_timeout(Command::new(env!("CARGO_BIN_EXE_camrelay")).current_dir(&dir), Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("line"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unknown_keys_warn_and_inline_overrides_apply() {
    let srv = Server::start_with_args("api:\n  lisen: nope\n", &["-c", "rtsp.default_query=audio"]);
    assert!(srv.wait_log("api.lisen", Duration::from_secs(30)), "{}", srv.log());
    let streams = ffprobe(&srv.rtsp_url("demo"), "tcp").unwrap();
    assert_eq!(streams.iter().map(|s| s.codec_type.as_str()).collect::<Vec<_>>(), ["audio"]);
}

#[test]
fn version_flag() {
    let out = Command::new(env!("CARGO_BIN_EXE_camrelay")).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), format!("camrelay {}", env!("CARGO_PKG_VERSION")));
}

#[test]
fn on_demand_source_starts_with_a_reader_and_stops_after_linger() {
    let srv = Server::start("hub:\n  linger: 300ms\nstreams:\n  demo: demo:clip\n");
    let state =
        || srv.http("GET", "/api/streams?src=demo").json()["producers"][0]["state"].as_str().unwrap_or("").to_string();
    assert_eq!(state(), "idle", "nothing runs before a reader comes");
    let url = srv.rtsp_url("demo");
    let reader = std::thread::spawn(move || decode_video_frames(&url, "tcp", 50));
    assert!(wait_until(Duration::from_secs(30), || state() == "online"));
    assert_eq!(reader.join().unwrap().unwrap(), 50);
    assert!(wait_until(Duration::from_secs(30), || state() == "idle"), "stopped after the linger: {}", state());
}

#[test]
fn two_way_audio_without_backchannel_is_a_clear_error() {
    let srv = Server::start("");
    let r = srv.http("POST", "/api/streams?dst=demo&src=demo:clip");
    assert_eq!(r.status, 500);
    assert!(r.text().contains("has no backchannel"), "{}", r.text());
    assert_eq!(srv.http("POST", "/api/streams?dst=nope&src=demo:clip").status, 404);
    assert_eq!(srv.http("POST", "/api/streams?src=demo:clip").status, 400);
    // An empty src stops playback (nothing playing: still fine).
    assert_eq!(srv.http("POST", "/api/streams?dst=demo&src=").status, 200);
}

#[test]
fn config_post_validates_keeps_secrets_and_saves() {
    let srv = Server::start("rtsp:\n  password: topsecret\nstreams:\n  cam: rtsp://admin:hunter2@10.1.1.1/live\n");
    let shown = srv.http("GET", "/api/config").text();
    assert!(!shown.contains("topsecret") && !shown.contains("hunter2"));
    // Read, edit, write back: the hidden secrets survive.
    let edited = format!("{shown}  added: demo:clip\n");
    let r = http_request(srv.api.unwrap(), "POST", "/api/config", &[], edited.as_bytes());
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["saved"], true);
    let file = std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap();
    assert!(
        file.contains("password: topsecret") && file.contains("admin:hunter2@") && file.contains("added: demo:clip"),
        "{file}"
    );
    // Invalid YAML or values: 400 naming the line, and the file is unchanged.
    let r = http_request(srv.api.unwrap(), "POST", "/api/config", &[], b"rtsp:\n  listen: [1, 2]\n");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("line 2"), "{}", r.text());
    assert_eq!(std::fs::read_to_string(srv.dir.join("camrelay.yaml")).unwrap(), file);
    // A changed line around a hidden secret cannot be restored.
    let tampered = shown.replace("10.1.1.1", "10.9.9.9");
    let r = http_request(srv.api.unwrap(), "POST", "/api/config", &[], tampered.as_bytes());
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn log_endpoint_returns_recent_masked_lines() {
    let srv = Server::start("streams:\n  cam: rtsp://admin:hunter2@127.0.0.1:1/live\n");
    // Make the source fail once so its (masked) error is logged.
    let _ = ffprobe(&srv.rtsp_url("cam"), "tcp");
    let log = srv.http("GET", "/api/log").text();
    assert!(log.contains("[rtsp] listen addr="), "{log}");
    assert!(!log.contains("hunter2"), "{log}");
    assert_eq!(srv.http("DELETE", "/api/log").status, 200);
    assert!(!srv.http("GET", "/api/log").text().contains("[rtsp] listen addr="));
}

#[test]
fn static_dir_allow_paths_and_modules() {
    let www = temp_dir("www");
    std::fs::write(www.join("index.html"), "<h1>my cameras</h1>").unwrap();
    std::fs::create_dir_all(www.join("js")).unwrap();
    std::fs::write(www.join("js/app.js"), "console.log(1)").unwrap();
    let yaml = format!(
        "api:\n  static_dir: {}\n  allow_paths: [\"/\", \"/api\", \"/api/streams\", \"/api/frame.mp4\"]\napp:\n  modules: [api, rtsp, ws]\n",
        www.display()
    );
    let srv = Server::start(&yaml);
    // static_dir replaces the built-in UI at `/`.
    let index = srv.http("GET", "/");
    assert_eq!((index.status, index.text().as_str()), (200, "<h1>my cameras</h1>"));
    let js = srv.http("GET", "/js/app.js");
    assert_eq!(js.status, 200);
    assert!(js.headers.to_ascii_lowercase().contains("content-type: text/javascript"), "{}", js.headers);
    assert_eq!(srv.http("GET", "/stream.html").status, 404);
    assert_eq!(srv.http("GET", "/../Cargo.toml").status, 404);
    assert_eq!(srv.http("GET", "/js/%2e%2e/%2e%2e/etc/passwd").status, 404);
    // allow_paths: listed paths work, others do not exist.
    assert_eq!(srv.http("GET", "/api").status, 200);
    assert!(srv.http("GET", "/api/streams").json()["demo"].is_object());
    let config = srv.http("GET", "/api/config");
    assert_eq!(config.status, 404);
    assert!(config.text().contains("allow_paths"), "{}", config.text());
    // app.modules: mp4 is off although its path is allowed; webrtc is off, so is its server.
    let mp4 = srv.http("GET", "/api/frame.mp4?src=demo");
    assert_eq!(mp4.status, 404);
    assert!(mp4.text().contains("the mp4 module is off"), "{}", mp4.text());
    assert!(!srv.log().contains("[webrtc] listen"), "{}", srv.log());
    // The RTSP module is on.
    assert!(decode_video_frames(&srv.rtsp_url("demo"), "tcp", 5).unwrap() >= 5);
    let _ = std::fs::remove_dir_all(&www);
}

#[test]
fn exec_allow_paths_limits_the_programs() {
    let srv = Server::start(
        "exec:\n  allow_paths: [ffmpeg]\nstreams:\n  shell: exec:sh -c 'ffmpeg -re -i x -f rtsp {output}'\n  \
         echoed: echo:sh -c 'echo demo:clip'\n  transcoded: ffmpeg:demo#video=h264\n  demo: demo:clip\n",
    );
    let url = srv.rtsp_url("shell");
    let refused = run_with_timeout(
        Command::new("ffprobe").args(["-v", "error", "-rtsp_transport", "tcp", &url]),
        Duration::from_secs(20),
    );
    assert!(!refused.status.success());
    let shell = srv.http("GET", "/api/streams?src=shell").json();
    let error = shell["producers"][0]["last_error"].as_str().unwrap_or("").to_string();
    assert!(error.contains("program \"sh\" is not in exec.allow_paths (ffmpeg)"), "{shell}");
    assert!(ffprobe(&srv.rtsp_url("echoed"), "tcp").is_err());
    let echoed = srv.http("GET", "/api/streams?src=echoed").json();
    assert!(
        echoed["producers"][0]["last_error"].as_str().unwrap_or("").contains("not in exec.allow_paths"),
        "{echoed}"
    );
    // ffmpeg itself is allowed: the transcoded stream plays.
    let probed = ffprobe(&srv.rtsp_url("transcoded"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
    assert!(probed.iter().any(|s| s.codec_name == "h264"));
}

#[test]
fn log_lines_use_go2rtc_format_and_output_can_be_stderr() {
    let srv = Server::start("");
    // `HH:MM:SS.mmm INF [api] listen addr=127.0.0.1:PORT` on stdout.
    assert!(srv.wait_log("[api] listen addr=", Duration::from_secs(30)));
    let line = srv.log().lines().find(|l| l.contains("[api] listen addr=")).unwrap_or("").to_string();
    let parts: Vec<&str> = line.splitn(3, ' ').collect();
    assert_eq!(parts.len(), 3, "{line}");
    assert_eq!((parts[0].len(), &parts[0][2..3], &parts[0][8..9]), (12, ":", "."), "{line}");
    assert_eq!(parts[1], "INF");
    assert!(parts[2].starts_with("[api] listen addr=127.0.0.1:"), "{line}");

    let dir = temp_dir("stderr-log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_camrelay"))
        .current_dir(&dir)
        .args(["-c", BASE_CONFIG, "-c", "log.output=stderr"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = lines_of(child.stderr.take().unwrap());
    let stdout = lines_of(child.stdout.take().unwrap());
    let boot = stderr.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert!(boot.is_ok_and(|l| l.contains(" INF [")), "no log line on stderr");
    assert!(stdout.try_recv().is_err(), "log lines on stdout with log.output: stderr");
    let _ = std::fs::remove_dir_all(&dir);
}
