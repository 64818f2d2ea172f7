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
    assert!(server.wait_log(&needle, Duration::from_secs(30)), "no {needle} in:\n{}", server.log());
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
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&rtsp_url, "tcp").is_ok()), "{}", server.log());
    assert!(decode_video_frames(&rtsp_url, "tcp", 10).unwrap() >= 10);

    // HLS at MediaMTX's URL (LL-HLS, MediaMTX's default variant). ffmpeg ignores parts: it joins once the
    // path's muxer lists a whole segment (a new muxer's first playlist may list only parts).
    let index = server.http_at(&hls, "GET", "/mystream/index.m3u8").text();
    let variant = index.lines().find(|l| l.starts_with("hls/")).unwrap_or_else(|| panic!("{index}")).to_string();
    assert!(wait_until(Duration::from_secs(30), || server
        .http_at(&hls, "GET", &format!("/mystream/{variant}"))
        .text()
        .contains("#EXTINF:")));
    let playlist = format!("http://{hls}/mystream/index.m3u8");
    let (decoded, stderr) = decode_frames(&[], &playlist, 10, Duration::from_secs(40));
    assert!(decoded >= 10, "HLS: {decoded} frames; {stderr}\n{}", server.log());

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
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "{}", server.log());
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

// ---------------------------------------------------------------------------------------------
// Path settings that take effect: `~regex` sources, maxReaders, the on-demand timeouts,
// rtspTransport, overridePublisher and sourceFingerprint, against GStreamer's RTSP server as the
// camera and ffmpeg as publisher and reader.

/// MediaMTX's listeners on free loopback ports, then `paths` (a YAML block indented by two).
fn mediamtx_with_paths(paths: &str) -> String {
    let head = MEDIAMTX.split("paths:").next().unwrap_or("");
    format!("{head}paths:\n{paths}")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// ffmpeg publishing a `size` test pattern over RTSP/TCP for `seconds`, its stderr kept.
fn ffmpeg_publish(url: &str, size: &str, seconds: u32) -> std::process::Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", &format!("testsrc=size={size}:rate=25")])
        .args(["-t", &seconds.to_string(), "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"])
        .args(["-g", "25", "-pix_fmt", "yuv420p", "-f", "rtsp", "-rtsp_transport", "tcp", url])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ffmpeg")
}

/// A publisher that runs for a moment and is refused: its stderr.
fn refused_publish(url: &str) -> String {
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2"])
            .args(["-c:v", "libx264", "-f", "rtsp", "-rtsp_transport", "tcp", url]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "the publisher to {url} was taken");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stream_names(server: &Server) -> Vec<String> {
    let v = server.http("GET", "/api/streams").json();
    v.as_object().map(|m| m.keys().cloned().collect()).unwrap_or_default()
}

fn producer_of(server: &Server, stream: &str) -> serde_json::Value {
    server.http("GET", &format!("/api/streams?src={stream}")).json()["producers"][0].clone()
}

fn video_width(url: &str) -> Option<u64> {
    ffprobe(url, "tcp").ok()?.iter().find(|s| s.codec_type == "video").map(|s| s.width)
}

/// `~^cam(\d+)$` with `source: rtsp://127.0.0.1:$G1/test`: reading `cam<PORT>` pulls the camera on
/// that port, and the stream goes once idle. Publishing follows the rules: a `source: publisher`
/// regex takes publishers, a name no rule covers and a path with a source do not.
#[test]
fn regex_path_pulls_its_source_with_groups_and_rules_decide_publishing() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    let server = Server::start(&mediamtx_with_paths(
        "  ~^cam(\\d+)$:\n    source: rtsp://127.0.0.1:$G1/test\n    sourceOnDemandCloseAfter: 1s\n  \
         ~^live_:\n    source: publisher\n",
    ));
    let url = server.rtsp_url(&format!("cam{port}"));
    let frames = decode_video_frames(&url, "tcp", 20).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(frames >= 20, "{frames} frames");
    // Made for the reader, gone once no reader used it for sourceOnDemandCloseAfter.
    let name = format!("cam{port}");
    assert!(
        wait_until(Duration::from_secs(30), || !stream_names(&server).contains(&name)),
        "{:?}\n{}",
        stream_names(&server),
        server.log()
    );
    // A group naming no camera: the reader gets an error, nothing stays behind.
    assert!(ffprobe(&server.rtsp_url("cam1"), "tcp").is_err());
    assert!(wait_until(Duration::from_secs(30), || !stream_names(&server).contains(&"cam1".to_string())));

    let rtsp = server.rtsp.unwrap();
    let mut publisher = ffmpeg_publish(&format!("rtsp://{rtsp}/live_one"), "320x240", 30);
    let live = server.rtsp_url("live_one");
    assert!(wait_until(Duration::from_secs(30), || video_width(&live) == Some(320)), "{}", server.log());
    let e = refused_publish(&format!("rtsp://{rtsp}/other"));
    assert!(e.contains("404"), "{e}");
    let e = refused_publish(&format!("rtsp://{rtsp}/cam{port}"));
    assert!(e.contains("400"), "{e}");
    let _ = publisher.kill();
    let _ = publisher.wait();
}

/// `maxReaders: 1`: a second reader is refused over RTSP (503) and HTTP (503); once the first has
/// gone, a new one reads.
#[test]
fn max_readers_refuses_readers_beyond_the_limit() {
    let server = Server::start(&mediamtx_with_paths("  cam:\n    source: demo:clip\n    maxReaders: 1\n"));
    let url = server.rtsp_url("cam");
    let first = rtsp_reader_for(&url, 8);
    // Readers over RTSP (the preload that keeps the source connected is no reader).
    let consumers = || {
        let v = server.http("GET", "/api/streams?src=cam").json();
        v["consumers"].as_array().map_or(0, |c| c.iter().filter(|c| c["protocol"] != "preload").count())
    };
    assert!(wait_until(Duration::from_secs(30), || consumers() == 1), "{}", server.log());
    let out = run_with_timeout(
        Command::new("ffprobe").args(["-v", "error", "-rtsp_transport", "tcp", &url]),
        Duration::from_secs(20),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("503"), "{stderr}");
    let http = server.http("GET", "/api/frame.mp4?src=cam");
    assert_eq!(http.status, 503, "{}", http.text());
    assert!(http.text().contains("too many readers"), "{}", http.text());
    assert!(first.join().unwrap().status.success());
    assert!(wait_until(Duration::from_secs(30), || consumers() == 0));
    assert!(decode_video_frames(&url, "tcp", 10).expect("a reader after the first left") >= 10);
}

/// `sourceOnDemandStartTimeout` bounds a reader's wait for an unreachable source (the default is
/// 10 s); `sourceOnDemandCloseAfter` is each path's linger after its last reader.
#[test]
fn on_demand_start_timeout_and_close_after_per_path() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    let dead = free_port();
    let server = Server::start(&mediamtx_with_paths(&format!(
        "  dead:\n    source: rtsp://127.0.0.1:{dead}/x\n    sourceOnDemand: true\n    \
         sourceOnDemandStartTimeout: 1s\n  \
         quick:\n    source: rtsp://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    sourceOnDemandCloseAfter: 1s\n  \
         slow:\n    source: rtsp://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    sourceOnDemandCloseAfter: 60s\n"
    )));
    let t = std::time::Instant::now();
    assert!(ffprobe(&server.rtsp_url("dead"), "tcp").is_err());
    // The path's 1 s, not the default 10 s (loose for a loaded machine: ffprobe starts too).
    println!("sourceOnDemandStartTimeout 1s: ffprobe failed after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(9), "the reader waited {:?} (start timeout 1s)", t.elapsed());

    for path in ["quick", "slow"] {
        assert!(decode_video_frames(&server.rtsp_url(path), "tcp", 10).expect(path) >= 10);
    }
    let state = |p: &str| producer_of(&server, p)["state"].as_str().unwrap_or("").to_string();
    assert!(wait_until(Duration::from_secs(30), || state("quick") == "idle"), "quick: {}", state("quick"));
    assert_eq!(state("slow"), "online", "the 60 s linger keeps it");
}

/// `rtspTransport` against a camera that offers RTP over UDP only: `udp` plays, `tcp` is refused.
#[test]
fn rtsp_transport_selects_the_lower_transport() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--audio", "none", "--protocols", "udp"]);
    let server = Server::start(&mediamtx_with_paths(&format!(
        "  viaudp:\n    source: rtsp://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    rtspTransport: udp\n  \
         viatcp:\n    source: rtsp://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    rtspTransport: tcp\n    \
         sourceOnDemandStartTimeout: 2s\n"
    )));
    let frames =
        decode_video_frames(&server.rtsp_url("viaudp"), "tcp", 20).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(frames >= 20);
    assert!(ffprobe(&server.rtsp_url("viatcp"), "tcp").is_err());
    let e = producer_of(&server, "viatcp")["last_error"].as_str().unwrap_or("").to_string();
    assert!(e.contains("461") || e.to_ascii_lowercase().contains("transport"), "{e}");
}

/// `overridePublisher: true` (the default): a new publisher replaces the current one, whose
/// connection is closed; `false`: the new one is refused (400) and the first keeps the path.
#[test]
fn override_publisher_replaces_or_refuses() {
    let server = Server::start(&mediamtx_with_paths("  over:\n  keep:\n    overridePublisher: false\n"));
    let rtsp = server.rtsp.unwrap();

    let mut first = ffmpeg_publish(&format!("rtsp://{rtsp}/keep"), "320x240", 60);
    let keep = server.rtsp_url("keep");
    assert!(wait_until(Duration::from_secs(30), || video_width(&keep) == Some(320)), "{}", server.log());
    let e = refused_publish(&format!("rtsp://{rtsp}/keep"));
    assert!(e.contains("400"), "{e}");
    assert_eq!(video_width(&keep), Some(320));
    let _ = first.kill();
    let _ = first.wait();

    let mut old = ffmpeg_publish(&format!("rtsp://{rtsp}/over"), "320x240", 60);
    let over = server.rtsp_url("over");
    assert!(wait_until(Duration::from_secs(30), || video_width(&over) == Some(320)), "{}", server.log());
    let mut new = ffmpeg_publish(&format!("rtsp://{rtsp}/over"), "640x480", 60);
    assert!(wait_until(Duration::from_secs(30), || video_width(&over) == Some(640)), "{}", server.log());
    assert!(
        wait_until(Duration::from_secs(30), || old.try_wait().ok().flatten().is_some()),
        "the replaced publisher's connection stays open"
    );
    assert!(decode_video_frames(&over, "tcp", 10).expect("the new publisher") >= 10);
    let _ = new.kill();
    let _ = new.wait();
}

/// `sourceFingerprint` pins a self-signed camera's certificate (its SHA-256 as MediaMTX's docs
/// compute it with openssl): the right one plays, another is refused naming the mismatch.
#[test]
fn source_fingerprint_pins_a_self_signed_camera() {
    let dir = temp_dir("fingerprint");
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=camera", "-keyout"])
        .arg(&key)
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-out"])
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl (apt package openssl)");
    assert!(status.success());
    let out =
        Command::new("openssl").args(["x509", "-noout", "-fingerprint", "-sha256", "-in"]).arg(&cert).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let fingerprint: String = text.split('=').nth(1).unwrap_or("").trim().replace(':', "");
    assert_eq!(fingerprint.len(), 64, "{text}");
    let pem = dir.join("camera.pem");
    let mut both = std::fs::read(&cert).unwrap();
    both.extend(std::fs::read(&key).unwrap());
    std::fs::write(&pem, both).unwrap();

    let port = free_port();
    let _cam = GstCamera::start(port, &["--tls", pem.to_str().unwrap(), "--audio", "none"]);
    let other = "AB".repeat(32);
    let server = Server::start(&mediamtx_with_paths(&format!(
        "  pinned:\n    source: rtsps://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    \
         sourceFingerprint: {fingerprint}\n  \
         wrong:\n    source: rtsps://127.0.0.1:{port}/test\n    sourceOnDemand: true\n    \
         sourceFingerprint: {other}\n    sourceOnDemandStartTimeout: 2s\n"
    )));
    let frames =
        decode_video_frames(&server.rtsp_url("pinned"), "tcp", 20).unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(frames >= 20);
    assert!(ffprobe(&server.rtsp_url("wrong"), "tcp").is_err());
    let e = producer_of(&server, "wrong")["last_error"].as_str().unwrap_or("").to_string();
    assert!(e.contains("fingerprint mismatch") && e.contains(&fingerprint.to_ascii_uppercase()), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `source: redirect`: an RTSP reader of the path is sent to `sourceRedirect` (here GStreamer's RTSP
/// server), and ffmpeg follows it.
#[test]
fn redirect_paths_send_rtsp_readers_elsewhere() {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    let config = MEDIAMTX.replace(
        "paths:\n",
        &format!("paths:\n  moved:\n    source: redirect\n    sourceRedirect: rtsp://127.0.0.1:{port}/test\n"),
    );
    let server = Server::start(&config);
    let url = server.rtsp_url("moved");
    let probed = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(server.log().contains("reader redirected"), "{}", server.log());
}

/// MediaMTX's `fallback`: an RTSP reader of a path with nothing to read is sent to another path of this
/// server (or a URL), and ffmpeg follows; once a publisher is there, readers get it.
#[test]
fn fallback_sends_rtsp_readers_elsewhere_while_nothing_is_published() {
    let config = MEDIAMTX.replace("paths:\n", "paths:\n  cam:\n    fallback: /demo\n");
    let server = Server::start(&config);
    let demo = ffprobe(&server.rtsp_url("demo"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let demo = demo.iter().find(|s| s.codec_type == "video").expect("demo video").clone();
    assert_ne!((demo.width, demo.height), (320, 240), "the test needs the demo to differ from the publisher");
    let probed = ffprobe(&server.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", demo.width, demo.height));
    assert!(server.log().contains("reader sent to the fallback"), "{}", server.log());
    // Published: the path's own stream.
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", false);
    let own = wait_until(Duration::from_secs(30), || {
        ffprobe(&server.rtsp_url("cam"), "tcp")
            .is_ok_and(|s| s.iter().any(|s| s.codec_type == "video" && (s.width, s.height) == (320, 240)))
    });
    assert!(own, "the publisher's stream is not what cam serves:\n{}", server.log());
}
