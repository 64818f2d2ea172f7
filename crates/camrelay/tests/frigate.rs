//! Frigate runs camrelay as its go2rtc: the config below is what Frigate generates from its
//! `go2rtc:` section (docs/frigate.md): `api.origin`, `log.format`, Frigate's ffmpeg `rtsp` input
//! template, `rtsp.username/password` from `${FRIGATE_RTSP_PASSWORD}`, `default_query: mp4`, a camera
//! with a transcoded `#video=h264#hardware` twin, an `#audio=opus` twin, and the birdseye restream: an
//! `exec:` ffmpeg reading raw frames from a named pipe that Frigate writes. The camera is GStreamer's
//! RTSP server; the readers are ffmpeg/ffprobe as Frigate's own ffmpeg processes read them.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn frigate_generated_config_serves_its_streams() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--auth", "digest", "--user", "admin", "--password", "cam-pw"]);
    let dir = temp_dir("frigate");
    let fifo = dir.join("birdseye");
    let status = Command::new("mkfifo").arg(&fifo).status().expect("mkfifo");
    assert!(status.success());
    let config = format!(
        r#"api:
  origin: "*"
log:
  format: text
  exec: debug
ffmpeg:
  bin: ffmpeg
  rtsp: "-fflags nobuffer -flags low_delay -timeout 10000000 -user_agent go2rtc/ffmpeg -rtsp_transport tcp -i {{input}}"
rtsp:
  username: frigate
  password: ${{FRIGATE_RTSP_PASSWORD}}
  default_query: mp4
webrtc:
  candidates:
    - 127.0.0.1:8555
streams:
  back:
    - rtsp://admin:cam-pw@127.0.0.1:{port}/test
    - "ffmpeg:back#video=h264#hardware"
  front:
    - rtsp://admin:cam-pw@127.0.0.1:{port}/test
    - "ffmpeg:front#audio=opus"
  birdseye: "exec:ffmpeg -hide_banner -f rawvideo -pix_fmt yuv420p -video_size 320x240 -r 10 -i {fifo} -c:v libx264 -preset superfast -tune zerolatency -g 50 -rtsp_transport tcp -f rtsp {{output}}"
"#,
        fifo = fifo.display()
    );
    let server = Server::start_full(&config, &[], &[("FRIGATE_RTSP_PASSWORD", "frigate-pw")]);
    let rtsp = server.rtsp.unwrap();
    let with_creds = |path: &str| format!("rtsp://frigate:frigate-pw@{rtsp}/{path}");

    // Frigate's record/detect inputs read the restream with `?video&audio` (and `mp4` by default).
    let probed = ffprobe(&with_creds("back?video&audio"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(decode_video_frames(&with_creds("back"), "tcp", 10).unwrap() >= 10);

    // `#hardware` on a machine without a GPU: software encoding, said once in the log.
    let probed = ffprobe(&with_creds("back?video=h264&audio"), "tcp").unwrap();
    assert!(probed.iter().any(|s| s.codec_name == "h264"));

    // The `#audio=opus` twin: WebRTC's audio for a camera that sends PCMA/AAC.
    let probed = ffprobe(&with_creds("front?audio=opus"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let audio: Vec<_> = probed.iter().filter(|s| s.codec_type == "audio").collect();
    assert_eq!(audio.len(), 1, "{probed:?}");
    assert_eq!(audio[0].codec_name, "opus");

    // Birdseye: Frigate writes raw frames into the pipe; exec's ffmpeg encodes them.
    let writer = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=10", "-t", "60"])
        .args(["-f", "rawvideo", "-pix_fmt", "yuv420p", "-y"])
        .arg(&fifo)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _writer = Kill(writer);
    let probed = ffprobe(&with_creds("birdseye"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("birdseye video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(decode_video_frames(&with_creds("birdseye"), "tcp", 10).unwrap() >= 10);

    // Frigate's /api/go2rtc/streams proxy shows sources with the camera password scrubbed.
    let streams = server.http("GET", "/api/streams").text();
    assert!(streams.contains("rtsp://admin:***@127.0.0.1"), "{streams}");
    assert!(!streams.contains("cam-pw") && !streams.contains("frigate-pw"), "{streams}");
    // CORS for Frigate's UI on another origin.
    let r = http_request(server.api.unwrap(), "GET", "/api/streams", &[("Origin", "http://frigate:5000")], b"");
    assert!(r.headers.to_ascii_lowercase().contains("access-control-allow-origin: *"), "{}", r.headers);

    assert!(server.wait_log("hardware", Duration::from_secs(30)), "no hardware fallback line:\n{}", server.log());
    let _ = std::fs::remove_dir_all(&dir);
}
