//! MediaMTX's `alwaysAvailable`: a reader of a path with no publisher gets the offline slate (a
//! 640x360 "camera offline" picture), switches to the publisher's picture when one publishes (ffmpeg,
//! 320x240), and back to the slate when it leaves — one ffmpeg reader, never reconnecting. Each
//! decoded frame's size (framecrc's size column: 640x360 or 320x240 in YUV 4:2:0) says whose it is.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

const SLATE_FRAME: u64 = 640 * 360 * 3 / 2;
const LIVE_FRAME: u64 = 320 * 240 * 3 / 2;

const CONFIG: &str = "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
    hls: no\nwebrtc: no\nrtmp: no\nsrt: no\n\
    paths:\n  cam:\n    source: publisher\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: H264\n";

#[test]
fn the_slate_plays_until_a_publisher_comes_and_after_it_leaves() {
    let srv = Server::start(CONFIG);
    let url = srv.rtsp_url("cam");
    // No publisher: the path is readable, with the slate.
    let probed = ffprobe(&url, "tcp").expect("the always-available path is readable without a publisher");
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360), "{probed:?}");
    let mut reader = FrameCrcReader::start(&url);
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(10)), "the reader decodes the slate");

    let publisher = Publisher::start(&url, "tcp", "320x240", false);
    assert!(
        reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(15)),
        "the same reader gets the live picture\n{}",
        srv.log()
    );
    assert!(!reader.exited());

    drop(publisher);
    assert!(srv.wait_log("the offline slate plays again", Duration::from_secs(10)), "{}", srv.log());
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(10)), "back to the slate, same reader");
    assert!(!reader.exited(), "the reader never reconnected");
    let consumers = srv.http("GET", "/api/streams?src=cam").json()["consumers"].as_array().map_or(0, Vec::len);
    assert_eq!(consumers, 1);
}

#[test]
fn unsupported_offline_settings_are_refused_at_load() {
    let dir = temp_dir("always-available");
    for (yaml, expected) in [
        ("paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableFile: /x.mp4\n", "alwaysAvailableFile"),
        ("paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: VP9\n", "VP9"),
        (
            "paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: MPEG4Audio\n",
            "needs sampleRate",
        ),
    ] {
        let file = dir.join("mediamtx.yml");
        std::fs::write(&file, format!("rtspAddress: 127.0.0.1:0\n{yaml}")).unwrap();
        let out = run_with_timeout(
            Command::new(env!("CARGO_BIN_EXE_camrelay")).arg("-c").arg(&file),
            Duration::from_secs(10),
        );
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.status.code(), Some(2), "{yaml}: {text}");
        assert!(text.contains(expected) && text.contains("paths.cam"), "{yaml}: {text}");
    }
}
