//! Publishing out (go2rtc's `publish:` and `POST /api/streams?src=&dst=`) into real servers that are
//! not us (ffmpeg's RTSP and RTMP listen modes, which decode what they get) and into a second camrelay
//! (read back over RTSP by ffmpeg/ffprobe); the push resumes after the destination restarts; the API
//! shows each target as a consumer with its state; hot reload starts and stops targets.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::Duration;

/// The demo clip: 640x360 H.264 with AAC.
const SOURCE: &str = "streams:\n  cam: demo:clip\n";

/// ffmpeg listening (RTSP `-rtsp_flags listen` or RTMP `-listen 1`) on `url`, decoding `frames` video
/// frames; returns its output (framecrc lines on stdout, the input's description on stderr).
fn ffmpeg_listener(listen_args: &[&str], url: &str, frames: u32) -> std::thread::JoinHandle<Output> {
    let mut args: Vec<String> = vec!["-v".into(), "info".into(), "-nostdin".into()];
    args.extend(listen_args.iter().map(|s| s.to_string()));
    args.extend(["-i", url, "-map", "0:v:0", "-frames:v"].iter().map(|s| s.to_string()));
    args.extend([frames.to_string(), "-f".into(), "framecrc".into(), "-".into()]);
    std::thread::spawn(move || run_with_timeout(Command::new("ffmpeg").args(&args), Duration::from_secs(60)))
}

fn decoded(out: &Output) -> usize {
    String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count()
}

/// The stream's push targets as `GET /api/streams` lists them among its consumers.
fn push_consumers(srv: &Server, stream: &str) -> Vec<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={stream}"));
    if r.status != 200 {
        return Vec::new();
    }
    r.json()["consumers"]
        .as_array()
        .map(|c| c.iter().filter(|c| c["publish"].is_object()).cloned().collect())
        .unwrap_or_default()
}

fn publishing_bytes(srv: &Server, stream: &str) -> u64 {
    push_consumers(srv, stream)
        .iter()
        .filter(|c| c["publish"]["state"] == "publishing")
        .map(|c| c["bytes_send"].as_u64().unwrap_or(0))
        .sum()
}

fn assert_video_640x360(url: &str, srv_log: impl Fn() -> String) {
    let streams = ffprobe(url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv_log()));
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360), "{streams:?}");
    assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
}

#[test]
fn rtsp_push_into_ffmpeg_listen_mode_decodes_h264() {
    let port = free_port();
    let url = format!("rtsp://127.0.0.1:{port}/live/cam");
    let listener = ffmpeg_listener(&["-rtsp_flags", "listen"], &url, 100);
    // Pushing starts with the server; until ffmpeg listens, the target retries (1 s, 2 s...).
    let srv = Server::start(&format!("{SOURCE}publish:\n  cam: {url}\n"));
    assert!(
        wait_until(Duration::from_secs(30), || publishing_bytes(&srv, "cam") > 0),
        "not publishing: {:?}\nlog:\n{}",
        push_consumers(&srv, "cam"),
        srv.log()
    );
    let c = &push_consumers(&srv, "cam")[0];
    assert_eq!((c["format_name"].as_str(), c["url"].as_str()), (Some("rtsp"), Some(url.as_str())), "{c}");
    assert_eq!(c["publish"]["origin"], "config");
    let out = listener.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(decoded(&out) >= 100, "ffmpeg decoded {} frames: {stderr}", decoded(&out));
    assert!(stderr.contains("Video: h264") && stderr.contains("640x360"), "{stderr}");
    assert!(stderr.contains("Audio: aac"), "{stderr}");
    // ffmpeg hung up after its frames: the target records why and tries again.
    assert!(
        wait_until(Duration::from_secs(30), || push_consumers(&srv, "cam").first().is_some_and(|c| c["publish"]
            ["reconnects"]
            .as_u64()
            .unwrap_or(0)
            >= 1
            && c["publish"]["last_error_kind"].is_string())),
        "{:?}",
        push_consumers(&srv, "cam")
    );
}

#[test]
fn rtmp_push_into_ffmpeg_listen_mode_decodes_h264() {
    let port = free_port();
    let url = format!("rtmp://127.0.0.1:{port}/live/cam");
    let listener = ffmpeg_listener(&["-f", "flv", "-listen", "1"], &url, 100);
    let srv = Server::start(&format!("{SOURCE}publish:\n  cam:\n    - {url}\n"));
    assert!(
        wait_until(Duration::from_secs(30), || publishing_bytes(&srv, "cam") > 0),
        "not publishing: {:?}\nlog:\n{}",
        push_consumers(&srv, "cam"),
        srv.log()
    );
    assert_eq!(push_consumers(&srv, "cam")[0]["format_name"], "rtmp");
    let out = listener.join().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(decoded(&out) >= 100, "ffmpeg decoded {} frames: {stderr}\nlog:\n{}", decoded(&out), srv.log());
    assert!(stderr.contains("Video: h264") && stderr.contains("640x360"), "{stderr}");
    assert!(stderr.contains("Audio: aac"), "{stderr}");
}

/// A second camrelay that takes publishers on a fixed RTSP port with Digest auth (loopback included).
fn destination_config(rtsp_port: u16) -> String {
    format!(
        "rtsp:\n  listen: 127.0.0.1:{rtsp_port}\n  username: pub\n  password: s3cret\n  local_auth: true\n  \
         auth_methods: [digest]\nstreams:\n  pushed:\n"
    )
}

/// `publish:` from one camrelay into another (`dest_config`, started again on the same ports after it is
/// killed): frames are readable at `read(dest)` before and again after, without touching the source.
fn resumes_after_the_destination_restarts(dest_config: &str, push_url: &str, read: impl Fn(&Server) -> String) {
    let mut dest = Server::start(dest_config);
    let src = Server::start(&format!("{SOURCE}publish:\n  cam: {push_url}\n"));
    let url = read(&dest);
    // The push connects once both servers are up: until it has published, a reader gets 404.
    assert!(
        wait_until(Duration::from_secs(30), || decode_video_frames(&url, "tcp", 30).is_ok_and(|n| n >= 30)),
        "no frames: {:?}\nlog:\n{}",
        push_consumers(&src, "cam"),
        src.log()
    );
    assert_video_640x360(&url, || src.log());

    // The destination goes away: the target shows a typed network error and keeps trying.
    dest.terminate();
    drop(dest);
    assert!(
        wait_until(Duration::from_secs(30), || push_consumers(&src, "cam")
            .first()
            .is_some_and(|c| { c["publish"]["state"] == "error" && c["publish"]["last_error_kind"] == "network" })),
        "{:?}",
        push_consumers(&src, "cam")
    );
    let before = push_consumers(&src, "cam")[0]["publish"]["reconnects"].as_u64().unwrap();

    // Back on the same port: frames are readable there again without touching the source server.
    let dest = Server::start(dest_config);
    let url = read(&dest);
    assert!(
        wait_until(Duration::from_secs(40), || decode_video_frames(&url, "tcp", 30).is_ok_and(|n| n >= 30)),
        "no frames after the restart: {:?}\nlog:\n{}",
        push_consumers(&src, "cam"),
        src.log()
    );
    let c = &push_consumers(&src, "cam")[0];
    assert_eq!(c["publish"]["state"], "publishing", "{c}");
    assert!(c["publish"]["reconnects"].as_u64().unwrap() > before, "{c}");
    assert!(!src.log().contains("s3cret"), "the password reached the log");
}

#[test]
fn rtsp_push_into_a_second_camrelay_with_digest_auth_resumes_after_it_restarts() {
    let port = free_port();
    let url = format!("rtsp://pub:s3cret@127.0.0.1:{port}/pushed");
    resumes_after_the_destination_restarts(&destination_config(port), &url, |_| url.clone());
}

#[test]
fn rtmp_push_into_a_second_camrelay_resumes_after_it_restarts() {
    let port = free_port();
    let config = format!("rtmp:\n  listen: 127.0.0.1:{port}\nstreams:\n  pushed:\n");
    let url = format!("rtmp://127.0.0.1:{port}/live/pushed");
    resumes_after_the_destination_restarts(&config, &url, |dest| dest.rtsp_url("pushed"));
}

#[test]
fn the_password_of_a_destination_is_masked() {
    let port = free_port();
    let _dest = Server::start(&destination_config(port));
    let src = Server::start(&format!("{SOURCE}publish:\n  cam: rtsp://pub:s3cret@127.0.0.1:{port}/pushed\n"));
    assert!(wait_until(Duration::from_secs(30), || publishing_bytes(&src, "cam") > 0), "{}", src.log());
    let all = src.http("GET", "/api/streams?src=cam").json();
    let consumers = all["consumers"].as_array().unwrap();
    assert_eq!(consumers.len(), 1, "the push is one consumer, not also a plain reader: {all}");
    assert_eq!(consumers[0]["url"], format!("rtsp://pub:***@127.0.0.1:{port}/pushed"), "{all}");
    assert_eq!(consumers[0]["remote_addr"], format!("127.0.0.1:{port}"), "{all}");
    assert!(!src.log().contains("s3cret") && !all.to_string().contains("s3cret"));
}

#[test]
fn wrong_password_is_an_auth_error() {
    let port = free_port();
    let _dest = Server::start(&destination_config(port));
    let src = Server::start(&format!("{SOURCE}publish:\n  cam: rtsp://pub:wrong@127.0.0.1:{port}/pushed\n"));
    assert!(
        wait_until(Duration::from_secs(30), || push_consumers(&src, "cam")
            .first()
            .is_some_and(|c| c["publish"]["last_error_kind"] == "auth")),
        "{:?}",
        push_consumers(&src, "cam")
    );
    let e = push_consumers(&src, "cam")[0]["publish"]["last_error"].as_str().unwrap().to_string();
    assert!(e.contains("ANNOUNCE") && e.contains("401"), "{e}");
}

#[test]
fn api_post_publishes_over_rtmp_and_delete_stops_it() {
    let dest = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  fromapi:\n");
    let dst = format!("rtmp://{}/live/fromapi", dest.rtmp_addr());
    let src = Server::start(SOURCE);
    let path = format!("/api/streams?src=cam&dst={dst}");
    let r = src.http("POST", &path);
    assert_eq!(r.status, 200, "{}", r.text());
    // The push connects after the POST answered: until it has published, a reader gets 404.
    assert!(
        wait_until(Duration::from_secs(30), || decode_video_frames(&dest.rtsp_url("fromapi"), "tcp", 30)
            .is_ok_and(|n| n >= 30)),
        "no frames\nlog:\n{}\ndest log:\n{}",
        src.log(),
        dest.log()
    );
    assert_video_640x360(&dest.rtsp_url("fromapi"), || src.log());
    let c = &push_consumers(&src, "cam")[0];
    assert_eq!((c["publish"]["state"].as_str(), c["publish"]["origin"].as_str()), (Some("publishing"), Some("api")));
    assert!(c["bytes_send"].as_u64().unwrap() > 10_000, "{c}");

    // Stopped: the destination loses its publisher.
    assert_eq!(src.http("DELETE", &path).status, 200);
    assert!(push_consumers(&src, "cam").is_empty());
    assert!(
        wait_until(Duration::from_secs(30), || dest.http("GET", "/api/streams?src=fromapi").json()["producers"]
            .as_array()
            .is_none_or(|p| p.iter().all(|p| p["protocol"] != "rtmp"))),
        "{}",
        dest.http("GET", "/api/streams?src=fromapi").text()
    );
    assert_eq!(src.http("DELETE", &path).status, 404);

    // Refusals name what was wrong.
    let r = src.http("POST", "/api/streams?src=cam&dst=srt://127.0.0.1:9000");
    assert_eq!(r.status, 400);
    assert!(r.text().contains("rtsp://, rtsps://, rtmp:// and rtmps://"), "{}", r.text());
    assert_eq!(src.http("POST", "/api/streams?src=nope&dst=rtmp://127.0.0.1/live/x").status, 404);
}

#[test]
fn api_auth_applies_to_publish() {
    let src = Server::start(&format!("{SOURCE}api:\n  username: admin\n  password: pw\n  local_auth: true\n"));
    let path = "/api/streams?src=cam&dst=rtmp://127.0.0.1:1/live/x";
    assert_eq!(src.http("POST", path).status, 401);
    let auth = [("Authorization", "Basic YWRtaW46cHc=")]; // admin:pw
    let streams = http_request(src.api.unwrap(), "GET", "/api/streams?src=cam", &auth, b"").json();
    assert!(streams["consumers"].is_null(), "refused, yet started: {streams}");
    let r = http_request(src.api.unwrap(), "POST", path, &auth, b"");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(http_request(src.api.unwrap(), "DELETE", path, &[], b"").status, 401);
    assert_eq!(http_request(src.api.unwrap(), "DELETE", path, &auth, b"").status, 200);
}

#[test]
fn hot_reload_starts_and_stops_targets() {
    let dest = Server::start("rtsp:\n  allow_any_publish: true\n");
    let dest_url = dest.rtsp_url("reloaded");
    let src = Server::start(SOURCE);
    let file = src.dir.join("camrelay.yaml");
    assert!(wait_until(Duration::from_secs(30), || src.http("GET", "/api/ready").status == 200));
    std::fs::write(&file, format!("{SOURCE}publish:\n  cam: {dest_url}\n")).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || decode_video_frames(&dest_url, "tcp", 10).is_ok()),
        "not published after the reload: {:?}\nlog:\n{}",
        push_consumers(&src, "cam"),
        src.log()
    );
    let id = push_consumers(&src, "cam")[0]["id"].clone();
    // An unrelated edit keeps the target running (same consumer).
    std::fs::write(&file, format!("{SOURCE}  other: demo:clip\npublish:\n  cam: {dest_url}\n")).unwrap();
    assert!(wait_until(Duration::from_secs(30), || src.http("GET", "/api/streams?src=other").status == 200));
    assert_eq!(push_consumers(&src, "cam")[0]["id"], id);
    // Removed from the file: stopped, and the destination's stream (created by the publisher) goes.
    std::fs::write(&file, SOURCE).unwrap();
    assert!(wait_until(Duration::from_secs(30), || push_consumers(&src, "cam").is_empty()));
    assert!(
        wait_until(Duration::from_secs(30), || dest.http("GET", "/api/streams?src=reloaded").status == 404),
        "{}",
        dest.http("GET", "/api/streams?src=reloaded").text()
    );
}

/// RTMPS: into camrelay's RTMPS listener (self-signed): pinned with `#fingerprint=` and unverified with
/// `rtmpx://` it publishes; plain `rtmps://` refuses the certificate (a typed network error).
#[test]
fn rtmps_push_pinned_unverified_and_refused() {
    let dir = temp_dir("rtmps-push");
    let (cert, key) = make_cert(&dir, "dest");
    let dest = Server::start(&format!(
        "rtmp:\n  listen: 127.0.0.1:0\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\nstreams:\n  \
         pinned:\n  novrfy:\n  strict:\n",
        cert.display(),
        key.display()
    ));
    let tls = tls_addr(&dest, "rtmp");
    let fp = file_fingerprint(&cert);
    let src = Server::start(&format!(
        "{SOURCE}publish:\n  cam:\n    - rtmps://{tls}/live/pinned#fingerprint={fp}\n    - rtmpx://{tls}/live/novrfy\n    \
         - rtmps://{tls}/live/strict\n"
    ));
    for name in ["pinned", "novrfy"] {
        // The stream has no producer until the push's TLS handshake and publish are done: a reader before
        // that gets 404, so wait for the publisher to arrive.
        let publishing = || {
            dest.http("GET", &format!("/api/streams?src={name}")).json()["producers"]
                .as_array()
                .is_some_and(|p| p.iter().any(|p| p["protocol"] == "rtmps"))
        };
        assert!(wait_until(Duration::from_secs(30), publishing), "{name} not published\nlog:\n{}", src.log());
        let n = decode_video_frames(&dest.rtsp_url(name), "tcp", 30)
            .unwrap_or_else(|e| panic!("{name}: {e}\nlog:\n{}", src.log()));
        assert!(n >= 30, "{name}: decoded {n}");
    }
    let dest_json = dest.http("GET", "/api/streams?src=pinned").json();
    assert!(dest_json["producers"].as_array().unwrap().iter().any(|p| p["protocol"] == "rtmps"), "{dest_json}");
    assert!(
        wait_until(Duration::from_secs(30), || push_consumers(&src, "cam")
            .iter()
            .any(
                |c| c["url"].as_str().is_some_and(|u| u.ends_with("/strict")) && c["publish"]["last_error"].is_string()
            )),
        "{:?}",
        push_consumers(&src, "cam")
    );
    let strict = push_consumers(&src, "cam")
        .into_iter()
        .find(|c| c["url"].as_str().is_some_and(|u| u.ends_with("/strict")))
        .unwrap();
    assert_eq!(strict["publish"]["last_error_kind"], "network", "{strict}");
    assert!(strict["publish"]["last_error"].as_str().unwrap().contains("invalid peer certificate"), "{strict}");
}
