//! AV1 and VP9 over RTP: published with Enhanced RTMP or RTSP ANNOUNCE (ffmpeg 9: SVT-AV1, libvpx),
//! read over RTSP by ffmpeg, pulled by a second camrelay as an `rtsp://` source, played over WebRTC by
//! Chromium. Each client decodes at the published size.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const AV1: &[&str] = &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"];
const VP9: &[&str] = &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0"];

/// ffmpeg 9 encoding a 320x240 test pattern at 25 fps with `video` and sending it to `output`.
fn publish9(video: &[&str], output: &[&str]) -> Publisher {
    let mut args: Vec<&str> = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    args.extend(video);
    args.extend(["-pix_fmt", "yuv420p", "-g", "25", "-t", "60"]);
    args.extend(output);
    Publisher::spawn(ffmpeg9(), &args)
}

/// Decodes `frames` video frames of `url` with ffmpeg 9; returns how many it decoded and its input
/// stream lines (`Stream #0:0: Video: av1 ..., 320x240`).
fn decode9(url: &str, frames: u32, pre: &[&str]) -> (usize, String) {
    let n = frames.to_string();
    let out = run_with_timeout(
        Command::new(ffmpeg9()).args(["-hide_banner"]).args(pre).args([
            "-i",
            url,
            "-map",
            "0:v:0",
            "-frames:v",
            &n,
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let decoded = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let inputs = stderr.split("Stream mapping").next().unwrap_or("");
    let streams: Vec<&str> = inputs.lines().filter(|l| l.trim_start().starts_with("Stream #0:")).collect();
    assert!(decoded > 0, "nothing decoded from {url}; ffmpeg said:\n{stderr}");
    (decoded, streams.join("\n"))
}

/// The stream's producer medias once it is online (`video, recvonly, AV1`).
fn medias(srv: &Server, name: &str) -> Vec<String> {
    let mut found = Vec::new();
    let ok = wait_until(Duration::from_secs(30), || {
        let r = srv.http("GET", &format!("/api/streams?src={name}"));
        if r.status != 200 {
            return false;
        }
        let j = r.json();
        let Some(p) = j["producers"].as_array().and_then(|p| p.iter().find(|p| p["medias"].is_array()).cloned()) else {
            return false;
        };
        found = p["medias"].as_array().unwrap().iter().filter_map(|m| m.as_str().map(str::to_owned)).collect();
        !found.is_empty()
    });
    assert!(ok, "{name} never came online; log:\n{}", srv.log());
    found
}

fn assert_decodes(url: &str, pre: &[&str], name: &str) {
    let (n, streams) = decode9(url, 30, pre);
    assert!(n >= 30, "decoded {n} {name} frames from {url}");
    assert!(streams.contains(&format!("Video: {name}")) && streams.contains("320x240"), "{url}: {streams}");
    println!("{url}: {n} frames decoded: {streams}");
}

/// Enhanced RTMP in, RTSP out: ffmpeg 9 reads AV1 and VP9 over RTSP/TCP and UDP (the payload formats of
/// `rtp::packetize`) and decodes 30 frames at 320x240; VP9 also Debian's ffmpeg and GStreamer.
#[test]
fn enhanced_rtmp_publish_reads_back_over_rtsp() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  av1:\n  vp9:\n");
    let addr = srv.rtmp_addr();
    let mut pushers = Vec::new();
    for (name, video, codec) in [("av1", AV1, "AV1"), ("vp9", VP9, "VP9")] {
        pushers.push(publish9(video, &["-f", "flv", &format!("rtmp://{addr}/live/{name}")]));
        assert_eq!(medias(&srv, name), [format!("video, recvonly, {codec}")]);
        assert_decodes(&srv.rtsp_url(name), &["-rtsp_transport", "tcp"], name);
        assert_decodes(&srv.rtsp_url(name), &["-rtsp_transport", "udp"], name);
    }
    // VP9 also with Debian's ffmpeg 5.1 (it has no AV1 depacketizer) and GStreamer's rtpvp9depay, whose
    // caps come from the scalability structure's picture size; 30 frames decoded at 320x240 each.
    let n = decode_video_frames(&srv.rtsp_url("vp9"), "tcp", 30).expect("ffmpeg 5.1 reads VP9 over RTSP");
    assert!(n >= 30, "ffmpeg 5.1 decoded {n} VP9 frames");
    let pipeline = format!(
        "rtspsrc location={} protocols=tcp ! rtpvp9depay ! vp9dec ! video/x-raw,width=320,height=240 \
         ! fakesink num-buffers=30",
        srv.rtsp_url("vp9")
    );
    let out = run_with_timeout(
        Command::new("sh").args(["-c", &format!("exec gst-launch-1.0 -q {pipeline}")]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "gstreamer: {}\nlog:\n{}", String::from_utf8_lossy(&out.stderr), srv.log());
}

/// A camrelay serving AV1/VP9 over RTSP is the `rtsp://` source of a second one: the second one
/// depacketizes (`rtp::depacketize`) and its RTSP and HTTP-FLV readers (the latter rebuilt from the
/// depacketized frames) decode.
#[test]
fn rtsp_source_pulls_av1_and_vp9() {
    let upstream = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  av1:\n  vp9:\n");
    let addr = upstream.rtmp_addr();
    let _pushers: Vec<Publisher> = [("av1", AV1), ("vp9", VP9)]
        .into_iter()
        .map(|(name, video)| publish9(video, &["-f", "flv", &format!("rtmp://{addr}/live/{name}")]))
        .collect();
    medias(&upstream, "av1");
    medias(&upstream, "vp9");
    let srv =
        Server::start(&format!("streams:\n  av1: {}\n  vp9: {}\n", upstream.rtsp_url("av1"), upstream.rtsp_url("vp9")));
    for name in ["av1", "vp9"] {
        assert_decodes(&srv.rtsp_url(name), &["-rtsp_transport", "tcp"], name);
        assert_decodes(&srv.api_url(&format!("/api/stream.flv?src={name}")), &[], name);
    }
}

/// ffmpeg publishes AV1 and VP9 with RTSP ANNOUNCE/RECORD (its own RTP packetizers): camrelay takes the
/// SDP's `AV1/90000` / `VP9/90000` and depacketizes; RTSP, fMP4, HTTP-FLV and Enhanced RTMP readers
/// decode. ffmpeg's SDP has no `config=`: fMP4's `av1C`/`vpcC` and FLV's sequence start are built from
/// the first keyframe (AV1: its sequence header OBU; VP9: its uncompressed header).
#[test]
fn rtsp_announce_of_av1_and_vp9() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  av1:\n  vp9:\n");
    let rtmp = srv.rtmp_addr();
    for (name, video, codec) in [("av1", AV1, "AV1"), ("vp9", VP9, "VP9")] {
        let url = srv.rtsp_url(name);
        // ffmpeg calls its AV1 and VP9 RTP packetizers experimental.
        let _pusher = publish9(video, &["-strict", "experimental", "-f", "rtsp", "-rtsp_transport", "tcp", &url]);
        assert_eq!(medias(&srv, name), [format!("video, recvonly, {codec}")]);
        assert_decodes(&url, &["-rtsp_transport", "tcp"], name);
        assert_decodes(&srv.api_url(&format!("/api/stream.mp4?src={name}&video={name}")), &[], name);
        assert_decodes(&srv.api_url(&format!("/api/stream.flv?src={name}")), &[], name);
        assert_decodes(&format!("rtmp://{rtmp}/live/{name}"), &[], name);
    }
}

/// Chromium plays AV1 and VP9 over WebRTC (str0m packetizes them): getStats shows 30 frames decoded
/// with the codec video/AV1 / video/VP9 at 320x240. The browser side is
/// `tests/browser/webrtc_av1_vp9.mjs`, in a fresh network namespace.
#[test]
fn chromium_plays_av1_and_vp9_over_webrtc() {
    let ffmpeg = ffmpeg9();
    let v = run_browser_script(
        BrowserNet::Veth,
        "webrtc_av1_vp9.mjs",
        &[env!("CARGO_BIN_EXE_camrelay"), ffmpeg.to_str().unwrap()],
        Duration::from_secs(150),
    );
    assert!(v["error"].is_null(), "{v}");
    for (name, mime) in [("av1", "video/AV1"), ("vp9", "video/VP9")] {
        let r = &v[name];
        println!("{name}: {r}");
        assert_eq!(r["codec"], mime, "{name}: {r}\nlog: {}", v["log"]);
        assert!(r["frames"].as_u64().unwrap_or(0) >= 30, "{name}: {r}\nlog: {}", v["log"]);
        assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(320), Some(240)), "{name}: {r}");
        // The web UI's player (automatic mode) picks WebRTC and plays.
        let ui = &v[format!("{name}_ui")];
        println!("{name} in the web UI: {ui}");
        assert_eq!((ui["state"].as_str(), ui["mode"].as_str()), (Some("playing"), Some("webrtc")), "{name}: {ui}");
        assert!(ui["frames"].as_u64().unwrap_or(0) >= 30, "{name}: {ui}");
        assert_eq!((ui["width"].as_u64(), ui["height"].as_u64()), (Some(320), Some(240)), "{name}: {ui}");
    }
}
