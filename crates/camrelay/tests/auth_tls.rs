//! RTSPS (`rtsp.tls_listen`, MediaMTX's `rtspEncryption`/`rtspsAddress`) with real clients: ffmpeg
//! publishes over `rtsps://`, ffmpeg/ffprobe and GStreamer's rtspsrc read back over RTSPS, `/v3/rtspsconns`
//! and `/v3/rtspssessions` list them (and not the plain lists), a certificate replaced on disk serves the
//! next handshake, a plain RTSP client on the RTSPS port is refused with a reason, UDP is refused over
//! RTSPS, and camrelay's own RTSP push (`publish:`) reaches an RTSPS listener with a pinned certificate.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

fn served_fingerprint(addr: std::net::SocketAddr) -> String {
    fingerprint(&format!(
        "openssl s_client -connect {addr} -servername localhost </dev/null 2>/dev/null \
         | openssl x509 -noout -fingerprint -sha256"
    ))
}

fn assert_320x240_h264_aac(streams: &[ProbedStream]) {
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000), "{streams:?}");
}

fn items(srv: &Server, path: &str) -> Vec<serde_json::Value> {
    srv.http("GET", path).json()["items"].as_array().cloned().unwrap_or_default()
}

/// Video frames GStreamer's rtspsrc decodes from `url` (TLS not validated: a self-signed test
/// certificate), counted from fakesink's buffer messages.
fn gst_decoded_frames(url: &str, frames: u32) -> (usize, String) {
    let out = run_with_timeout(
        Command::new("gst-launch-1.0").args([
            "-v",
            "rtspsrc",
            &format!("location={url}"),
            "protocols=tcp",
            "tls-validation-flags=0",
            "latency=0",
            "!",
            "rtph264depay",
            "!",
            "h264parse",
            "!",
            "avdec_h264",
            "!",
            "video/x-raw",
            "!",
            "fakesink",
            "silent=false",
            &format!("num-buffers={frames}"),
        ]),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let n = text.lines().filter(|l| l.contains("fakesink") && l.contains("chain")).count();
    (n, text + &String::from_utf8_lossy(&out.stderr))
}

#[test]
fn ffmpeg_and_gstreamer_publish_and_read_over_rtsps() {
    let dir = temp_dir("rtsps");
    let (cert, key) = make_cert(&dir, "first");
    let srv = Server::start(&format!(
        "rtsp:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n  allow_any_publish: true\n",
        cert.display(),
        key.display()
    ));
    let addr = tls_addr(&srv, "rtsp");
    assert_eq!(served_fingerprint(addr), file_fingerprint(&cert));

    // ffmpeg publishes over RTSPS (interleaved: RTSPS carries media on the connection).
    let url = format!("rtsps://{addr}/cam");
    let _pusher =
        Publisher::encode("320x240", true, false, &["-t", "180", "-f", "rtsp", "-rtsp_transport", "tcp", &url]);
    assert!(
        wait_until(Duration::from_secs(30), || items(&srv, "/v3/rtspssessions/list")
            .iter()
            .any(|s| s["state"] == "publish" && s["path"] == "cam")),
        "no RTSPS publisher; log:\n{}",
        srv.log()
    );
    // ffprobe and ffmpeg read it back over RTSPS.
    assert_320x240_h264_aac(&ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\nlog:\n{}", srv.log())));
    let reader = rtsp_reader_for(&url, 8);
    let (n, stderr) = decode_frames(&["-rtsp_transport", "tcp"], &url, 50, Duration::from_secs(30));
    assert!(n >= 50, "ffmpeg decoded {n} frames over RTSPS: {stderr}\nlog:\n{}", srv.log());
    // And over plain RTSP, the same stream.
    assert_320x240_h264_aac(&ffprobe(&srv.rtsp_url("cam"), "tcp").unwrap());

    // The sessions are RTSPS ones: in /v3/rtspsconns and /v3/rtspssessions, not in the plain lists.
    assert!(
        wait_until(Duration::from_secs(30), || items(&srv, "/v3/rtspssessions/list")
            .iter()
            .any(|s| s["state"] == "read")),
        "no RTSPS reader session: {:?}",
        items(&srv, "/v3/rtspssessions/list")
    );
    let conns = items(&srv, "/v3/rtspsconns/list");
    assert!(conns.len() >= 2, "{conns:?}");
    assert!(conns.iter().all(|c| c["remoteAddr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:"))), "{conns:?}");
    let sessions = items(&srv, "/v3/rtspssessions/list");
    let reading = sessions.iter().find(|s| s["state"] == "read").unwrap();
    assert_eq!(reading["transport"], "TCP", "{reading}");
    let id = reading["id"].as_str().unwrap();
    let got = srv.http("GET", &format!("/v3/rtspssessions/get/{id}"));
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["path"], "cam");
    assert!(items(&srv, "/v3/rtspsessions/list").iter().all(|s| s["path"] != "cam" || s["state"] != "publish"));
    let path = srv.http("GET", "/v3/paths/get/cam").json();
    assert_eq!(path["source"]["type"], "rtspsSession", "{path}");
    let out = reader.join().unwrap();
    assert!(out.status.success() || !out.stdout.is_empty(), "rtsps reader: {}", String::from_utf8_lossy(&out.stderr));

    // GStreamer's rtspsrc reads over RTSPS too.
    let (frames, said) = gst_decoded_frames(&url, 25);
    assert!(frames >= 25, "GStreamer decoded {frames} frames over RTSPS: {said}");

    // UDP is refused over RTSPS (it would send the media in the clear), with the reason. (ffmpeg
    // never asks for UDP over rtsps://; a raw request over `openssl s_client` does.)
    let request = format!(
        "DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\nSETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\n\
         Transport: RTP/AVP;unicast;client_port=5000-5001\r\n\r\n"
    );
    let out = run_with_timeout(
        Command::new("sh").args([
            "-c",
            &format!("(printf '{request}'; sleep 3) | openssl s_client -quiet -connect {addr} 2>/dev/null"),
        ]),
        Duration::from_secs(20),
    );
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(replies.contains("RTSP/1.0 200 OK") && replies.contains("RTSP/1.0 461"), "{replies}");
    assert!(replies.contains("RTSPS sends media over the connection: use TCP"), "{replies}");

    // A plain RTSP client on the RTSPS port is refused with a reason, and RTSPS goes on.
    let plain = ffprobe(&format!("rtsp://{addr}/cam"), "tcp");
    assert!(plain.is_err());
    assert!(srv.wait_log("plain RTSP on the RTSPS port", Duration::from_secs(30)), "log:\n{}", srv.log());

    // A certificate replaced on disk serves the next handshake, without a restart; readers go on.
    let (cert2, key2) = make_cert(&dir, "second");
    std::fs::copy(&key2, &key).unwrap();
    std::fs::copy(&cert2, &cert).unwrap();
    let new = file_fingerprint(&cert2);
    assert!(
        wait_until(Duration::from_secs(30), || served_fingerprint(addr) == new),
        "still the old certificate; log:\n{}",
        srv.log()
    );
    assert_320x240_h264_aac(&ffprobe(&url, "tcp").unwrap());
}

#[test]
fn rtsp_push_to_an_rtsps_listener_with_a_pinned_certificate() {
    let dir = temp_dir("rtsps-push");
    let (cert, key) = make_cert(&dir, "server");
    let hex = file_fingerprint(&cert).replace(':', "").to_lowercase();
    let port = free_port();
    // The demo clip is pushed by our RTSP client over TLS, pinned to the certificate, into our own
    // RTSPS listener; ffmpeg reads the copy back over RTSPS.
    let srv = Server::start(&format!(
        "rtsp:\n  tls_listen: 127.0.0.1:{port}\n  tls_cert: {}\n  tls_key: {}\n  allow_any_publish: true\n\
         streams:\n  cam: demo:clip\npublish:\n  cam: rtsps://127.0.0.1:{port}/copy#fingerprint={hex}\n",
        cert.display(),
        key.display()
    ));
    let url = format!("rtsps://127.0.0.1:{port}/copy");
    assert!(
        wait_until(Duration::from_secs(30), || items(&srv, "/v3/rtspssessions/list")
            .iter()
            .any(|s| s["state"] == "publish" && s["path"] == "copy")),
        "the push did not arrive over RTSPS; log:\n{}",
        srv.log()
    );
    let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\nlog:\n{}", srv.log()));
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360), "{streams:?}");
    let (n, stderr) = decode_frames(&["-rtsp_transport", "tcp"], &url, 30, Duration::from_secs(30));
    assert!(n >= 30, "decoded {n}: {stderr}");

    // Pinned to another certificate, the push is refused at the handshake.
    let (other, _) = make_cert(&dir, "other");
    let wrong = file_fingerprint(&other).replace(':', "").to_lowercase();
    let srv2 = Server::start(&format!(
        "rtsp:\n  tls_listen: 127.0.0.1:0\n  tls_cert: {}\n  tls_key: {}\n  allow_any_publish: true\n\
         streams:\n  cam: demo:clip\npublish:\n  cam: rtsps://127.0.0.1:{port}/wrong#fingerprint={wrong}\n",
        cert.display(),
        key.display()
    ));
    assert!(srv2.wait_log("fingerprint", Duration::from_secs(30)), "log:\n{}", srv2.log());
    assert!(srv.http("GET", "/v3/paths/get/wrong").status == 404);
}

#[test]
fn mediamtx_rtsp_encryption_optional_serves_both() {
    let dir = temp_dir("rtsps-mtx");
    let (cert, key) = make_cert(&dir, "server");
    let srv = Server::start(&format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nrtspTransports: [tcp]\nhls: false\nwebrtc: false\nsrt: false\nrtmp: false\n\
         rtspEncryption: optional\nrtspsAddress: 127.0.0.1:0\nrtspServerKey: {}\nrtspServerCert: {}\n\
         paths:\n  all_others:\n",
        key.display(),
        cert.display()
    ));
    let addr = tls_addr(&srv, "rtsp");
    let _pusher = Publisher::start(&srv.rtsp_url("cam"), "tcp", "320x240", true);
    let url = format!("rtsps://{addr}/cam");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "log:\n{}", srv.log());
    assert_320x240_h264_aac(&ffprobe(&url, "tcp").unwrap());
    let (n, stderr) = decode_frames(&["-rtsp_transport", "tcp"], &url, 25, Duration::from_secs(30));
    assert!(n >= 25, "decoded {n}: {stderr}");
}
