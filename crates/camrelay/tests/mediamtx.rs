//! camrelay loaded from a `mediamtx.yml`: MediaMTX's listeners and URL shapes, with clients we did not
//! write. A publisher (ffmpeg) pushes RTSP to a path that only `all_others` covers; ffmpeg reads it back
//! over RTSP and over MediaMTX's HLS URL (`/PATH/index.m3u8`); aiortc reads it over WHEP at
//! `/PATH/whep`; Chromium plays both of MediaMTX's player pages (`/PATH/` on the HLS and WebRTC servers).

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A MediaMTX config on loopback with free ports (`:0`), as a user's file would set addresses.
const MEDIAMTX: &str = r#"
logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hlsAddress: 127.0.0.1:0
webrtcAddress: 127.0.0.1:0
webrtcLocalUDPAddress: 127.0.0.1:0
rtmp: false
srt: false
paths:
  demo:
    source: demo:clip
  all_others:
"#;

fn listen_addr(server: &Server, module: &str) -> String {
    let needle = format!("[{module}] listen addr=");
    assert!(server.wait_log(&needle, Duration::from_secs(10)), "no {needle} in:\n{}", server.log());
    server.log().lines().find_map(|l| l.split(&needle).nth(1)).unwrap_or("").trim().to_string()
}

fn python() -> String {
    std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

#[test]
fn publish_and_read_on_mediamtx_urls() {
    let server = Server::start(MEDIAMTX);
    let hls = listen_addr(&server, "hls");
    let webrtc = listen_addr(&server, "webrtc http");
    assert!(!server.log().contains(":1984"), "go2rtc's API port opened from a MediaMTX config");

    // Publish to a path no entry names: `all_others` takes publishers.
    let _publisher = Publisher::start(&server.rtsp_url("mystream"), "tcp", "320x240", true);
    let rtsp_url = server.rtsp_url("mystream");
    assert!(wait_until(Duration::from_secs(15), || ffprobe(&rtsp_url, "tcp").is_ok()), "{}", server.log());
    assert!(decode_video_frames(&rtsp_url, "tcp", 10).unwrap() >= 10);

    // HLS at MediaMTX's URL.
    let playlist = format!("http://{hls}/mystream/index.m3u8");
    let out = run_with_timeout(
        Command::new("ffmpeg").args([
            "-v",
            "error",
            "-i",
            &playlist,
            "-map",
            "0:v:0",
            "-frames:v",
            "10",
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(40),
    );
    let decoded = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert!(decoded >= 10, "HLS: {decoded} frames; {}\n{}", String::from_utf8_lossy(&out.stderr), server.log());

    // WHEP at MediaMTX's URL, with aiortc.
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whep_client.py");
    let out = run_with_timeout(
        Command::new(python()).arg(&script).arg(format!("http://{webrtc}/mystream/whep")).arg("10"),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(320), Some(240)), "{v}");

    // The player pages.
    let hls_page = server.http_at(&hls, "GET", "/mystream/");
    assert_eq!(hls_page.status, 200);
    assert!(hls_page.text().contains("index.m3u8"), "{}", hls_page.text());
    assert_eq!(server.http_at(&hls, "GET", "/mystream").status, 301);
    assert_eq!(server.http_at(&hls, "GET", "/mystream/hls.min.js").status, 200);
    assert_eq!(server.http_at(&webrtc, "GET", "/mystream/").status, 200);
    assert_eq!(server.http_at(&hls, "GET", "/nothing/index.m3u8").status, 404);
}

#[test]
fn chromium_plays_mediamtx_player_pages() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    // The server and Chromium in a private namespace (loopback plus a veth pair: Chromium gathers
    // WebRTC candidates only on a non-loopback interface).
    let config = temp_dir("mtx-pages").join("mediamtx.yml");
    std::fs::write(&config, MEDIAMTX.replace("127.0.0.1:0", "0.0.0.0:0")).unwrap();
    let script = format!(
        "ip link set lo up && ip link add veth0 type veth peer name veth1 && ip addr add 10.99.0.1/24 dev veth0 \
         && ip link set veth0 up && ip link set veth1 up && \
         {{ {bin} -c {config} > {log} 2>&1 & pid=$!; }} && \
         for i in $(seq 1 100); do grep -q 'webrtc http] listen addr=' {log} && break; sleep 0.1; done && \
         hls=$(grep -o 'hls\\] listen addr=[^ ]*' {log} | cut -d= -f2 | sed 's/0.0.0.0/127.0.0.1/') && \
         web=$(grep -o 'webrtc http\\] listen addr=[^ ]*' {log} | cut -d= -f2 | sed 's/0.0.0.0/127.0.0.1/') && \
         node mediamtx_pages.mjs $hls $web demo; status=$?; kill $pid; exit $status",
        bin = env!("CARGO_BIN_EXE_camrelay"),
        config = config.display(),
        log = config.with_extension("log").display(),
    );
    let out = run_with_timeout(
        Command::new("unshare").args(["--net", "--kill-child", "sh", "-c", &script]).current_dir(&dir),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let log = std::fs::read_to_string(config.with_extension("log")).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("{e}: stdout {stdout} stderr {}\nserver:\n{log}", String::from_utf8_lossy(&out.stderr))
    });
    assert!(v["error"].is_null(), "{v}\nserver:\n{log}");
    for page in ["hls", "webrtc"] {
        assert!(v[page]["frames"].as_u64().unwrap_or(0) >= 30, "{page}: {v}");
        assert_eq!((v[page]["width"].as_u64(), v[page]["height"].as_u64()), (Some(640), Some(360)), "{page}: {v}");
    }
}

/// MediaMTX's internal users: publishing needs the publisher's credentials, anyone reads, and the API
/// answers only this machine's 127.0.0.1 (MediaMTX's default `ips: [127.0.0.1, ::1]`).
#[test]
fn internal_users_decide_publish_read_and_api() {
    let config = MEDIAMTX.replace(
        "paths:",
        r#"authInternalUsers:
- user: pub
  pass: secret
  ips: []
  permissions:
  - action: publish
    path: ~^cam[0-9]+$
- user: any
  pass:
  ips: []
  permissions:
  - action: read
- user: any
  pass:
  ips: ['127.0.0.1', '::1']
  permissions:
  - action: api
paths:"#,
    );
    let server = Server::start(&config);
    let rtsp = server.rtsp.unwrap();
    // Without credentials the publisher is refused; with them it publishes.
    let refused = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1"])
            .args(["-c:v", "libx264", "-f", "rtsp", "-rtsp_transport", "tcp", &format!("rtsp://{rtsp}/cam1")]),
        Duration::from_secs(20),
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("401"), "{}", String::from_utf8_lossy(&refused.stderr));
    let _publisher = Publisher::start(&format!("rtsp://pub:secret@{rtsp}/cam1"), "tcp", "320x240", false);
    let url = format!("rtsp://{rtsp}/cam1");
    assert!(wait_until(Duration::from_secs(15), || ffprobe(&url, "tcp").is_ok()), "{}", server.log());
    // The publisher's user may not publish elsewhere.
    let elsewhere = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "1"])
            .args([
                "-c:v",
                "libx264",
                "-f",
                "rtsp",
                "-rtsp_transport",
                "tcp",
                &format!("rtsp://pub:secret@{rtsp}/other"),
            ]),
        Duration::from_secs(20),
    );
    assert!(!elsewhere.status.success());
    // The API: from 127.0.0.1 yes, from 127.0.0.2 (another address of this machine) no.
    assert_eq!(server.http("GET", "/v3/paths/list").status, 200);
    let api = server.api.unwrap();
    let out = run_with_timeout(
        Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "--interface", "127.0.0.2"])
            .arg(format!("http://{api}/v3/paths/list")),
        Duration::from_secs(10),
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "401");
}
