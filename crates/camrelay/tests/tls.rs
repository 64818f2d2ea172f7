//! TLS listeners with real clients: ffmpeg publishes over `rtmps://`, ffprobe/ffmpeg read back over
//! RTMPS and RTSP; `curl` over the HTTPS API; `openssl s_client` sees a certificate replaced on disk at
//! the next handshake; bad certificates stop the start with the file named; a plain RTMP client on the
//! RTMPS port is refused while other sessions go on; MediaMTX's `rtmpEncryption: strict`. Certificates
//! are made at test time with `openssl req -x509`.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// The fingerprint of the certificate a TLS server at `addr` presents to a new handshake.
fn served_fingerprint(addr: SocketAddr) -> String {
    fingerprint(&format!(
        "openssl s_client -connect {addr} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    ))
}

/// The stream's producer published over `protocol`, once it has medias.
fn producer(srv: &Server, name: &str, protocol: &str) -> Option<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return None;
    }
    r.json()["producers"].as_array()?.iter().find(|p| p["protocol"] == protocol && p["medias"].is_array()).cloned()
}

fn publish(url: &str) -> Publisher {
    Publisher::encode("320x240", true, false, &["-t", "60", "-f", "flv", url])
}

/// Decodes `frames` video frames from an `rtmp(s)://` URL; the count decoded.
fn decode(url: &str, frames: u32) -> usize {
    decode_frames(&[], url, frames, Duration::from_secs(30)).0
}

fn assert_320x240_h264_aac(streams: &[ProbedStream]) {
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000), "{streams:?}");
}

#[test]
fn ffmpeg_publishes_over_rtmps_and_reads_back_over_rtmps_and_rtsp() {
    let dir = temp_dir("rtmps");
    let (cert, key) = make_cert(&dir, "server");
    let srv = Server::start(&format!(
        "rtmp:\n  listen: 127.0.0.1:0\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\nstreams:\n  cam:\n",
        cert.display(),
        key.display()
    ));
    let addr = tls_addr(&srv, "rtmp");
    assert!(
        srv.log().contains(&format!("sha256={}", file_fingerprint(&cert))),
        "fingerprint logged; log:\n{}",
        srv.log()
    );
    assert_eq!(served_fingerprint(addr), file_fingerprint(&cert));

    let _pusher = publish(&format!("rtmps://{addr}/live/cam"));
    assert!(
        wait_until(Duration::from_secs(30), || producer(&srv, "cam", "rtmps").is_some()),
        "no rtmps producer; log:\n{}",
        srv.log()
    );
    // MediaMTX's API lists it as an RTMPS connection and the path's source as `rtmpsConn`.
    let conns = srv.http("GET", "/v3/rtmpsconns/list").json();
    let items = conns["items"].as_array().cloned().unwrap_or_default();
    assert!(items.iter().any(|c| c["state"] == "publish" && c["path"] == "cam"), "{conns}");
    let plain = srv.http("GET", "/v3/rtmpconns/list").json();
    assert_eq!(plain["itemCount"], 0, "{plain}");
    let path = srv.http("GET", "/v3/paths/get/cam").json();
    assert_eq!(path["source"]["type"], "rtmpsConn", "{path}");

    // Over RTMPS.
    let url = format!("rtmps://{addr}/live/cam");
    let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
    assert_320x240_h264_aac(&streams);
    let n = decode(&url, 30);
    assert!(n >= 30, "decoded {n} frames over RTMPS; log:\n{}", srv.log());
    // Over RTSP.
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe rtsp");
    assert_320x240_h264_aac(&streams);

    // A plain RTMP client on the RTMPS port is refused (the reason logged) ...
    assert!(ffprobe(&format!("rtmp://{addr}/live/cam"), "tcp").is_err(), "plain RTMP played from the RTMPS port");
    assert!(
        srv.wait_log("plain RTMP on the RTMPS port", Duration::from_secs(30)),
        "refusal not logged; log:\n{}",
        srv.log()
    );
    // ... a TLS client that never finishes its handshake holds up no one ...
    let silent = std::net::TcpStream::connect(addr).unwrap();
    // ... and the publisher and new players go on: 50 frames are more than the GOP cache holds (25), so
    // they are live ones.
    let n = decode(&url, 50);
    assert!(n >= 50, "decoded {n} frames over RTMPS after the refusal; log:\n{}", srv.log());
    assert!(producer(&srv, "cam", "rtmps").is_some(), "publisher gone; log:\n{}", srv.log());
    // The plain listener serves too.
    let plain = srv
        .log()
        .lines()
        .find_map(|l| l.split("[rtmp] listen addr=").nth(1)?.trim().parse::<SocketAddr>().ok())
        .expect("plain rtmp listener");
    let streams = ffprobe(&format!("rtmp://{plain}/live/cam"), "tcp").expect("ffprobe plain rtmp");
    assert_320x240_h264_aac(&streams);
    drop(silent);
}

#[test]
fn https_api_serves_json_and_a_certificate_replaced_on_disk() {
    let dir = temp_dir("https");
    let (cert, key) = make_cert(&dir, "first");
    let srv = Server::start(&format!(
        "api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\nstreams:\n  cam: demo:clip\n",
        cert.display(),
        key.display()
    ));
    let addr = tls_addr(&srv, "api");
    let curl = |path: &str| {
        let out = run_with_timeout(
            Command::new("curl").args(["-sk", "--max-time", "10", &format!("https://{addr}{path}")]),
            Duration::from_secs(15),
        );
        assert!(out.status.success(), "curl {path}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout)
            .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)))
    };
    let streams = curl("/api/streams");
    assert!(streams.get("cam").is_some(), "{streams}");
    // Without -k the self-signed certificate is refused: the client really checks TLS.
    let strict = run_with_timeout(
        Command::new("curl").args(["-s", "--max-time", "10", &format!("https://{addr}/api/streams")]),
        Duration::from_secs(15),
    );
    assert!(!strict.status.success());

    let first = file_fingerprint(&cert);
    assert_eq!(served_fingerprint(addr), first);
    // Renewed on disk (as certbot does): the next handshake gets the new certificate.
    let (cert2, key2) = make_cert(&dir, "second");
    let second = file_fingerprint(&cert2);
    assert_ne!(first, second);
    std::fs::copy(&key2, &key).unwrap();
    std::fs::copy(&cert2, &cert).unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || served_fingerprint(addr) == second),
        "still serving the old certificate; log:\n{}",
        srv.log()
    );
    assert!(srv.wait_log("TLS certificate changed on disk, reloaded", Duration::from_secs(30)), "log:\n{}", srv.log());
    assert!(curl("/api/streams").get("cam").is_some());

    // A broken renewal keeps the working certificate in service.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    assert!(
        srv.wait_log("still serving the previous one", Duration::from_secs(30)),
        "broken renewal not reported; log:\n{}",
        srv.log()
    );
    assert_eq!(served_fingerprint(addr), second);
    // The plain listener is unchanged.
    assert_eq!(srv.http("GET", "/api/streams").status, 200);
}

#[test]
fn https_api_with_inline_pem() {
    let dir = temp_dir("inline");
    let (cert, key) = make_cert(&dir, "inline");
    let indent =
        |p: &Path| std::fs::read_to_string(p).unwrap().lines().map(|l| format!("    {l}\n")).collect::<String>();
    let yaml =
        format!("api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: |\n{}  tls_key: |\n{}", indent(&cert), indent(&key));
    let srv = Server::start(&yaml);
    let addr = tls_addr(&srv, "api");
    assert_eq!(served_fingerprint(addr), file_fingerprint(&cert));
    let out = run_with_timeout(
        Command::new("curl").args(["-sk", "--max-time", "10", &format!("https://{addr}/api")]),
        Duration::from_secs(15),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON from /api");
    assert!(v.get("version").is_some(), "{v}");
    // The key's text is never logged.
    let secret = std::fs::read_to_string(&key).unwrap();
    assert!(!srv.log().contains(secret.lines().nth(1).unwrap()), "key material in the log");
}

/// Runs the binary with `yaml` and expects it to stop at once with an error; returns what it printed.
fn start_error(yaml: &str) -> String {
    let dir = temp_dir("bad");
    let file = dir.join("camrelay.yaml");
    std::fs::write(&file, yaml).unwrap();
    let out = run_with_timeout(
        Command::new(env!("CARGO_BIN_EXE_camrelay")).current_dir(&dir).arg("-c").arg(BASE_CONFIG).arg("-c").arg(&file),
        Duration::from_secs(20),
    );
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "started with a bad certificate:\n{text}");
    text
}

#[test]
fn bad_certificates_stop_the_start_naming_the_file() {
    let dir = temp_dir("badcerts");
    let (cert, key) = make_cert(&dir, "good");
    let (_, other_key) = make_cert(&dir, "other");
    let missing = dir.join("missing.crt");
    let e = start_error(&format!(
        "rtmp:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n",
        missing.display(),
        key.display()
    ));
    assert!(e.contains(&format!("rtmp.tls_cert: cannot read {}", missing.display())), "{e}");
    assert!(e.contains("No such file"), "{e}");

    let e = start_error(&format!(
        "api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n",
        cert.display(),
        other_key.display()
    ));
    assert!(
        e.contains(&format!("api.tls_key: {}: the private key does not match the certificate", other_key.display())),
        "{e}"
    );
    let e = start_error(&format!(
        "api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n",
        key.display(),
        cert.display()
    ));
    assert!(e.contains("holds no PEM certificate") && e.contains("swapped"), "{e}");
    let e = start_error("api:\n  tls_listen: 127.0.0.1:0\n");
    assert!(e.contains("api.tls_cert is not set"), "{e}");
}

#[test]
fn mediamtx_rtmp_encryption_strict_has_only_rtmps() {
    let dir = temp_dir("strict");
    let (cert, key) = make_cert(&dir, "server");
    let srv = Server::start(&format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nhls: false\nwebrtc: false\nsrt: false\nrtmp: true\nrtmpAddress: 127.0.0.1:0\n\
         rtmpEncryption: strict\nrtmpsAddress: 127.0.0.1:0\nrtmpServerKey: {}\nrtmpServerCert: {}\npaths:\n  all_others:\n",
        key.display(),
        cert.display()
    ));
    let addr = tls_addr(&srv, "rtmp");
    let plain =
        srv.log().lines().filter(|l| l.contains("[rtmp] listen addr=") && !l.trim_end().ends_with(" tls")).count();
    assert_eq!(plain, 0, "strict: a plain RTMP listener; log:\n{}", srv.log());
    let _pusher = publish(&format!("rtmps://{addr}/live/cam"));
    let rtsp = srv.rtsp_url("live/cam");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&rtsp, "tcp").is_ok()), "log:\n{}", srv.log());
    assert_320x240_h264_aac(&ffprobe(&rtsp, "tcp").unwrap());
    let streams = ffprobe(&format!("rtmps://{addr}/live/cam"), "tcp").expect("ffprobe rtmps");
    assert_320x240_h264_aac(&streams);
}

#[test]
fn https_api_with_a_self_signed_certificate_made_at_first_start() {
    let dir = temp_dir("selfsigned");
    let (cert, key) = (dir.join("made.crt"), dir.join("made.key"));
    let yaml = format!(
        "api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n  tls_self_signed: true\n",
        cert.display(),
        key.display()
    );
    let mut srv = Server::start(&yaml);
    let addr = tls_addr(&srv, "api");
    assert!(cert.exists() && key.exists(), "files not written; log:\n{}", srv.log());
    let made = file_fingerprint(&cert);
    assert_eq!(served_fingerprint(addr), made);
    assert!(srv.log().contains("made a self-signed one") && srv.log().contains(&made), "log:\n{}", srv.log());
    let out = run_with_timeout(
        Command::new("curl").args(["-sk", "--max-time", "10", &format!("https://{addr}/api/streams")]),
        Duration::from_secs(15),
    );
    assert!(serde_json::from_slice::<serde_json::Value>(&out.stdout).is_ok(), "not JSON");
    srv.terminate();
    // The next start serves the same certificate.
    let srv = Server::start(&yaml);
    let addr = tls_addr(&srv, "api");
    assert_eq!(served_fingerprint(addr), made);
    assert!(!srv.log().contains("made a self-signed one"), "made again; log:\n{}", srv.log());
}

/// The HTTPS listener serves the media outputs and the WebSocket API too: ffprobe reads MP4 and HLS over
/// `https://`, and `/api/ws` upgrades.
#[test]
fn https_serves_mp4_hls_and_websocket() {
    let dir = temp_dir("https-media");
    let (cert, key) = make_cert(&dir, "server");
    let srv = Server::start(&format!(
        "api:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n",
        cert.display(),
        key.display()
    ));
    let addr = tls_addr(&srv, "api");
    for path in ["/api/stream.mp4?src=demo&duration=2", "/api/stream.m3u8?src=demo"] {
        let url = format!("https://{addr}{path}");
        let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
        let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
        assert_eq!((video.codec_name.as_str(), video.width), ("h264", 640), "{path}: {streams:?}");
    }
    let out = run_with_timeout(
        Command::new("curl").args(["-sk", "-i", "--max-time", "3", "--http1.1"]).args([
            "-H",
            "Connection: Upgrade",
            "-H",
            "Upgrade: websocket",
            "-H",
            "Sec-WebSocket-Version: 13",
            "-H",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            &format!("https://{addr}/api/ws?src=demo"),
        ]),
        Duration::from_secs(10),
    );
    let head = String::from_utf8_lossy(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 101"), "no WebSocket upgrade over HTTPS: {head}");
    assert!(head.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="), "{head}");
}

/// MediaMTX's `hlsEncryption` and `webrtcEncryption`: those listeners serve HTTPS only. ffmpeg decodes
/// HLS over `https://`, and aiortc (Python's urllib, verifying the certificate against it as CA, for
/// `IP:127.0.0.1`) plays over WHEP.
#[test]
fn mediamtx_hls_and_webrtc_encryption() {
    let dir = temp_dir("mtx-https");
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let out = run_with_timeout(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    let srv = Server::start(&format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nhlsEncryption: true\nhlsServerKey: {key}\n\
         hlsServerCert: {cert}\nwebrtcAddress: 127.0.0.1:0\nwebrtcEncryption: true\nwebrtcServerKey: {key}\n\
         webrtcServerCert: {cert}\nwebrtcLocalUDPAddress: 127.0.0.1:0\nrtmp: false\nsrt: false\npaths:\n  all_others:\n",
        key = key.display(),
        cert = cert.display()
    ));
    let hls = tls_addr(&srv, "hls");
    let webrtc = tls_addr(&srv, "webrtc http");
    let plain = srv.log().lines().any(|l| {
        (l.contains("[hls] listen addr=") || l.contains("[webrtc http] listen addr="))
            && !l.trim_end().ends_with(" tls")
    });
    assert!(!plain, "a plain HTTP listener beside the HTTPS one; log:\n{}", srv.log());

    let _publisher = Publisher::start(&srv.rtsp_url("mystream"), "tcp", "320x240", true);
    let rtsp = srv.rtsp_url("mystream");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&rtsp, "tcp").is_ok()), "{}", srv.log());

    let playlist = format!("https://{hls}/mystream/index.m3u8");
    let (decoded, stderr) = decode_frames(&[], &playlist, 10, Duration::from_secs(40));
    assert!(decoded >= 10, "HLS over HTTPS: {decoded} frames; {stderr}\n{}", srv.log());

    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/whep_client.py");
    let python = std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".to_string());
    let out = run_with_timeout(
        Command::new(python)
            .arg(&script)
            .arg(format!("https://{webrtc}/mystream/whep"))
            .arg("10")
            .env("SSL_CERT_FILE", &cert),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text} {}\nlog:\n{}", String::from_utf8_lossy(&out.stderr), srv.log()));
    assert!(v["frames"].as_u64().unwrap_or(0) >= 10, "{v}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(320), Some(240)), "{v}");
    // Without our certificate as CA the same client refuses the server: the TLS is real and checked.
    let out = run_with_timeout(
        Command::new(std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".to_string()))
            .arg(&script)
            .arg(format!("https://{webrtc}/mystream/whep"))
            .arg("10")
            .env_remove("SSL_CERT_FILE"),
        Duration::from_secs(40),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("CERTIFICATE_VERIFY_FAILED"), "{err}");
}
