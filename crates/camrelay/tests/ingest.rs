//! HTTP ingest (`POST /api/stream.ts|flv|mjpeg`, `POST /api/stream`) driven by ffmpeg, read back over
//! RTSP with ffprobe/ffmpeg, and refusals of bad bodies.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "streams:\n  cam:\n  demo: demo:clip\n";

/// ffmpeg pushing a 320x240 test pattern (and a tone) in real time to `url` in `format`.
fn push(url: &str, format: &str, audio: bool) -> Publisher {
    Publisher::encode("320x240", audio, format == "mpjpeg", &["-t", "30", "-f", format, url])
}

/// The producers of stream `name` as the API shows them.
fn producers(srv: &Server, name: &str) -> Vec<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return Vec::new();
    }
    r.json()["producers"].as_array().cloned().unwrap_or_default()
}

fn pushed(srv: &Server, name: &str, protocol: &str) -> Option<serde_json::Value> {
    producers(srv, name).into_iter().find(|p| p["protocol"] == protocol && p["medias"].is_array())
}

fn frames_of(p: &serde_json::Value) -> u64 {
    p["receivers"].as_array().map_or(0, |r| r.iter().map(|t| t["frames"].as_u64().unwrap_or(0)).sum())
}

/// Publishes with ffmpeg and checks the stream over RTSP: H.264 320x240 (+ AAC), frames decode.
fn publish_and_play(path: &str, format: &str, protocol: &str) {
    let srv = Server::start(CONFIG);
    let _pusher = push(&srv.api_url(&format!("{path}?dst=cam")), format, true);
    assert!(
        wait_until(Duration::from_secs(30), || pushed(&srv, "cam", protocol).is_some()),
        "no {protocol} producer; log:\n{}",
        srv.log()
    );
    let p = pushed(&srv, "cam", protocol).unwrap();
    let medias = p["medias"].to_string();
    assert!(medias.contains("H264") && medias.contains("AAC"), "{medias}");
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000), "{streams:?}");
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 30).expect("decode");
    assert!(n >= 30, "decoded {n} frames");
}

#[test]
fn ts_upload_plays_over_rtsp() {
    publish_and_play("/api/stream.ts", "mpegts", "http+ts");
}

#[test]
fn flv_upload_plays_over_rtsp() {
    publish_and_play("/api/stream.flv", "flv", "http+flv");
}

#[test]
fn sniffed_upload_plays_over_rtsp() {
    publish_and_play("/api/stream", "mpegts", "http+ts");
}

/// MJPEG: the producer shows a JPEG track whose frame count rises, and RTSP readers get RTP/JPEG.
#[test]
fn mjpeg_upload_feeds_the_stream() {
    let srv = Server::start(CONFIG);
    let _pusher = push(&srv.api_url("/api/stream.mjpeg?dst=cam"), "mpjpeg", false);
    assert!(
        wait_until(Duration::from_secs(30), || pushed(&srv, "cam", "http+mjpeg").is_some()),
        "no http+mjpeg producer; log:\n{}",
        srv.log()
    );
    let p = pushed(&srv, "cam", "http+mjpeg").unwrap();
    assert_eq!(p["receivers"][0]["codec"]["codec_name"], "jpeg", "{p}");
    let first = frames_of(&p);
    assert!(
        wait_until(Duration::from_secs(30), || pushed(&srv, "cam", "http+mjpeg")
            .is_some_and(|p| frames_of(&p) > first + 10)),
        "JPEG frame count did not rise"
    );
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe");
    assert_eq!(
        (streams[0].codec_name.as_str(), streams[0].width, streams[0].height),
        ("mjpeg", 320, 240),
        "{streams:?}"
    );
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 10).expect("decode");
    assert!(n >= 10, "decoded {n} frames");
}

fn make_ts(dir: &std::path::Path, seconds: &str) -> Vec<u8> {
    let path = dir.join("clip.ts");
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]).args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-t",
            seconds,
            "-f",
            "mpegts",
            path.to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(path).unwrap()
}

/// A whole file POSTed with Content-Length to the sniffing endpoint: 200 with what was published.
#[test]
fn posted_ts_file_is_sniffed_and_counted() {
    let srv = Server::start(CONFIG);
    let ts = make_ts(&srv.dir, "2");
    let r = http_request(
        srv.api.unwrap(),
        "POST",
        "/api/stream?dst=cam",
        &[("Content-Type", "application/octet-stream")],
        &ts,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["format"], "MPEG-TS", "{v}");
    assert!(v["frames"].as_u64().unwrap() >= 45, "{v}");
    assert_eq!(v["bytes"].as_u64().unwrap(), ts.len() as u64);
    // The producer is gone once the upload ended.
    assert!(producers(&srv, "cam").iter().all(|p| p["protocol"] != "http+ts"));
}

/// Bad bodies get a clear 4xx JSON error, and a stream being played meanwhile keeps playing.
#[test]
fn bad_bodies_are_refused_clearly() {
    let srv = Server::start(CONFIG);
    let demo_url = srv.rtsp_url("demo");
    let reader = std::thread::spawn(move || decode_video_frames(&demo_url, "tcp", 100));
    let addr = srv.api.unwrap();
    let ts = make_ts(&srv.dir, "1");
    let post = |path: &str, body: &[u8]| http_request(addr, "POST", path, &[], body);

    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8 | 1).collect();
    let r = post("/api/stream.ts?dst=cam", &garbage);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("not MPEG-TS"), "{}", r.text());

    let r = post("/api/stream?dst=cam", &garbage);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("unknown format"), "{}", r.text());

    let r = post("/api/stream.flv?dst=cam", &garbage);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("FLV"), "{}", r.text());

    // TS posted to the FLV endpoint: 415 naming the right one.
    let r = post("/api/stream.flv?dst=cam", &ts);
    assert_eq!(r.status, 415, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("/api/stream.ts"), "{}", r.text());

    // Truncated: the PAT/PMT but no complete frame.
    let r = post("/api/stream.ts?dst=cam", &ts[..188 * 3]);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("ended after"), "{}", r.text());

    let r = post("/api/stream.ts?dst=cam", b"");
    assert_eq!(r.status, 400, "{}", r.text());

    let r = post("/api/stream.ts?dst=nosuch", &ts);
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("nosuch"), "{}", r.text());

    let r = post("/api/stream.ts", &ts);
    assert_eq!(r.status, 400, "{}", r.text());

    let decoded = reader.join().unwrap().expect("demo keeps playing");
    assert!(decoded >= 100, "demo decoded {decoded} frames");
    assert!(srv.http("GET", "/api").status == 200);
}
