//! The RTMP server with real clients: ffmpeg publishes H.264 + AAC over RTMP, ffprobe/ffmpeg read it back
//! over RTSP and over RTMP; refusals of unknown streams.

mod common;

use common::*;
use std::time::Duration;

fn publish(url: &str) -> Publisher {
    Publisher::encode("320x240", true, false, &["-t", "60", "-f", "flv", url])
}

/// Decodes `frames` video frames from an RTMP URL with ffmpeg; at least one must decode.
fn decode_rtmp(url: &str, frames: u32) -> usize {
    let (n, stderr) = decode_frames(&[], url, frames, Duration::from_secs(30));
    assert!(n > 0, "no frames from {url}; ffmpeg said: {stderr}");
    n
}

fn rtmp_producer(srv: &Server, name: &str) -> Option<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return None;
    }
    r.json()["producers"].as_array()?.iter().find(|p| p["protocol"] == "rtmp" && p["medias"].is_array()).cloned()
}

#[test]
fn ffmpeg_publishes_and_plays_back_over_rtsp_and_rtmp() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{addr}/live/cam"));
    assert!(
        wait_until(Duration::from_secs(30), || rtmp_producer(&srv, "cam").is_some()),
        "no rtmp producer; log:\n{}",
        srv.log()
    );
    let medias = rtmp_producer(&srv, "cam").unwrap()["medias"].to_string();
    assert!(medias.contains("H264") && medias.contains("AAC"), "{medias}");

    // Over RTSP.
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe rtsp");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000), "{streams:?}");
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 30).expect("decode rtsp");
    assert!(n >= 30, "decoded {n} frames over RTSP");

    // Over RTMP (MediaMTX's `live/cam` and go2rtc's `cam` name the same stream).
    for url in [format!("rtmp://{addr}/live/cam"), format!("rtmp://{addr}/cam")] {
        let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
        let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
        assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
        assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
        let n = decode_rtmp(&url, 30);
        assert!(n >= 30, "decoded {n} frames over RTMP from {url}");
    }
}

#[test]
fn go2rtc_style_single_name_publish() {
    // `rtmp://host/cam`, go2rtc's form, publishes into stream `cam`.
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{addr}/cam"));
    assert!(
        wait_until(Duration::from_secs(30), || rtmp_producer(&srv, "cam").is_some()),
        "no rtmp producer; log:\n{}",
        srv.log()
    );
    assert!(decode_rtmp(&format!("rtmp://{addr}/cam"), 10) >= 10);
}

#[test]
fn unknown_streams_are_refused() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    // Playing a stream that does not exist is refused (an error status, then the connection closes).
    if let Ok(s) = ffprobe(&format!("rtmp://{addr}/live/nothing"), "tcp") {
        panic!("played a missing stream: {} streams", s.len());
    }
    assert!(wait_until(Duration::from_secs(30), || srv.log().contains("stream not found")), "log:\n{}", srv.log());
    // Publishing to an unknown stream without rtsp.allow_any_publish is refused with the hub's reason.
    let _p = publish(&format!("rtmp://{addr}/live/other?user=a&pass=b"));
    assert!(
        wait_until(Duration::from_secs(30), || srv.log().contains("stream not found: other")),
        "log:\n{}",
        srv.log()
    );
    assert!(rtmp_producer(&srv, "other").is_none());
}

/// A MediaMTX config: the RTMP server from `rtmpAddress`, `app/name` paths, and internal users deciding
/// with the credentials of the stream name's query.
const MEDIAMTX: &str = r#"
logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hls: false
webrtc: false
srt: false
rtmp: true
rtmpAddress: 127.0.0.1:0
authInternalUsers:
- user: pub
  pass: secret
  ips: []
  permissions:
  - action: publish
    path: ~^live/
- user: any
  pass:
  ips: []
  permissions:
  - action: read
paths:
  all_others:
"#;

#[test]
fn mediamtx_paths_and_credentials_in_the_stream_name() {
    let srv = Server::start(MEDIAMTX);
    let addr = srv.rtmp_addr();
    // Without credentials: refused.
    let refused = publish(&format!("rtmp://{addr}/live/cam"));
    assert!(wait_until(Duration::from_secs(30), || srv.log().contains("not authorized")), "log:\n{}", srv.log());
    drop(refused);
    // With them: published as MediaMTX's path `live/cam`, readable over RTSP and RTMP.
    let _pusher = publish(&format!("rtmp://{addr}/live/cam?user=pub&pass=secret"));
    let rtsp = srv.rtsp_url("live/cam");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&rtsp, "tcp").is_ok()), "log:\n{}", srv.log());
    let streams = ffprobe(&format!("rtmp://{addr}/live/cam"), "tcp").expect("ffprobe rtmp");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.width, video.height), (320, 240), "{streams:?}");
}

/// A player that plays and then never reads: once its socket buffers are full, the server drops it
/// after the write timeout (bounded memory, no stuck task).
#[test]
fn a_stalled_player_is_dropped() {
    use rtmp::handshake::{self, Filler};
    use rtmp::{message as msg, Amf0Value, ChunkWriter};
    use std::io::{Read, Write};

    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let _noise = NoisePublisher::start(&srv.rtsp_url("cam"));
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&srv.rtsp_url("cam"), "tcp").is_ok()), "{}", srv.log());

    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(5));
    sock.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * handshake::PACKET_SIZE];
    sock.read_exact(&mut s0s1s2).unwrap();
    let c2 = handshake::client_verify(&s0s1s2, None).unwrap();
    let w = ChunkWriter::new();
    let mut out = bytes::BytesMut::from(&c2[..]);
    let app = Amf0Value::object([("app", Amf0Value::string("live"))]);
    msg::write_command(&w, &mut out, 0, "connect", 1.0, &[app]);
    msg::write_command(&w, &mut out, 0, "createStream", 2.0, &[Amf0Value::Null]);
    msg::write_command(&w, &mut out, 1, "play", 3.0, &[Amf0Value::Null, Amf0Value::string("cam")]);
    sock.write_all(&out).unwrap();
    assert!(srv.wait_log("player connected", Duration::from_secs(30)), "log:\n{}", srv.log());
    // Read nothing more.
    assert!(
        srv.wait_log("the peer took nothing for 10 s", Duration::from_secs(60)),
        "stalled player not dropped; log:\n{}",
        srv.log()
    );
    drop(sock);
}

/// GStreamer's own RTMP stack both ways: `rtmp2sink` publishes (video only), `rtmp2src` reads back and
/// decodes 30 frames at the published size; ffprobe sees the same over RTSP.
#[test]
fn gstreamer_rtmp2sink_publishes_and_rtmp2src_reads() {
    let gst_ok =
        std::process::Command::new("gst-inspect-1.0").arg("rtmp2src").output().is_ok_and(|o| o.status.success());
    if !gst_ok {
        eprintln!("GStreamer rtmp2 elements not installed: skipped");
        return;
    }
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let pipeline = format!(
        "videotestsrc is-live=true num-buffers=1500 ! video/x-raw,width=320,height=240,framerate=25/1 \
         ! x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse \
         ! flvmux streamable=true ! rtmp2sink location=rtmp://{addr}/live/cam"
    );
    let mut gst = std::process::Command::new("sh")
        .args(["-c", &format!("exec gst-launch-1.0 -q {pipeline}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let published = wait_until(Duration::from_secs(30), || rtmp_producer(&srv, "cam").is_some());
    let read = if published {
        let reader = format!(
            "rtmp2src location=rtmp://{addr}/live/cam ! flvdemux name=d d.video ! h264parse ! avdec_h264 \
             ! video/x-raw,width=320,height=240 ! fakesink num-buffers=30"
        );
        Some(run_with_timeout(
            std::process::Command::new("sh").args(["-c", &format!("exec gst-launch-1.0 -q {reader}")]),
            Duration::from_secs(30),
        ))
    } else {
        None
    };
    let rtsp = ffprobe(&srv.rtsp_url("cam"), "tcp");
    let _ = gst.kill();
    let _ = gst.wait();
    assert!(published, "no rtmp producer from rtmp2sink; log:\n{}", srv.log());
    let out = read.unwrap();
    assert!(out.status.success(), "rtmp2src: {}\nlog:\n{}", String::from_utf8_lossy(&out.stderr), srv.log());
    let streams = rtsp.expect("ffprobe rtsp");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
}
