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

/// Makes a 2 s `size` H.264 file (with B-frames) in `format` (`mp4`, `mpegts`), with AAC when `audio`.
fn slate_file(dir: &std::path::Path, name: &str, format: &str, size: &str, audio: bool) -> std::path::PathBuf {
    let path = dir.join(name);
    let mut cmd = Command::new("ffmpeg");
    cmd.args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc2=size={size}:rate=25")]);
    if audio {
        cmd.args(["-f", "lavfi", "-i", "sine=frequency=300:sample_rate=48000", "-c:a", "aac"]);
    }
    cmd.args(["-t", "2", "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "25", "-pix_fmt", "yuv420p"]);
    let out = run_with_timeout(cmd.args(["-f", format]).arg(&path), Duration::from_secs(30));
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    path
}

#[test]
fn the_slate_can_be_an_mp4_file_and_a_publisher_takes_over() {
    const FILE_FRAME: u64 = 480 * 272 * 3 / 2;
    let dir = temp_dir("slate-mp4");
    let file = slate_file(&dir, "slate.mp4", "mp4", "480x272", false);
    let config = format!(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: no\nwebrtc: no\nrtmp: no\nsrt: no\n\
         paths:\n  cam:\n    source: publisher\n    alwaysAvailable: yes\n    alwaysAvailableFile: {}\n",
        file.display()
    );
    let srv = Server::start(&config);
    let url = srv.rtsp_url("cam");
    let probed = ffprobe(&url, "tcp").expect("readable with the file's slate");
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 480, 272), "{probed:?}");
    let mut reader = FrameCrcReader::start(&url);
    // 2 s of file at 25 fps: 75 frames in a row of its size means it looped, and the reader went on.
    assert!(reader.frames_of(FILE_FRAME, 75, Duration::from_secs(15)), "the reader decodes the looped file");
    let publisher = Publisher::start(&url, "tcp", "320x240", false);
    assert!(reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(15)), "then the live picture\n{}", srv.log());
    drop(publisher);
    assert!(reader.frames_of(FILE_FRAME, 25, Duration::from_secs(15)), "then the file again");
    assert!(!reader.exited(), "the reader never reconnected");
}

#[test]
fn the_slate_can_be_an_mpegts_file_with_audio() {
    let dir = temp_dir("slate-ts");
    let file = slate_file(&dir, "slate.ts", "mpegts", "352x288", true);
    let config = format!(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\nhls: no\nwebrtc: no\nrtmp: no\nsrt: no\n\
         paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableFile: {}\n",
        file.display()
    );
    let srv = Server::start(&config);
    let url = srv.rtsp_url("cam");
    let probed = ffprobe(&url, "tcp").expect("readable with the file's slate");
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 352, 288), "{probed:?}");
    let audio = probed.iter().find(|s| s.codec_type == "audio").expect("audio");
    assert_eq!(audio.codec_name, "aac", "{probed:?}");
    let reader = FrameCrcReader::start(&url);
    assert!(reader.frames_of(352 * 288 * 3 / 2, 75, Duration::from_secs(15)), "the reader decodes the looped file");
    // A file that is not a video is refused at load, naming the file.
    let bad = dir.join("bad.mp4");
    std::fs::write(&bad, b"not a video at all").unwrap();
    let conf = dir.join("bad.yml");
    std::fs::write(
        &conf,
        format!(
            "rtspAddress: 127.0.0.1:0\npaths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableFile: {}\n",
            bad.display()
        ),
    )
    .unwrap();
    let out =
        run_with_timeout(Command::new(env!("CARGO_BIN_EXE_camrelay")).arg("-c").arg(&conf), Duration::from_secs(10));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("bad.mp4") && text.contains("MP4 or MPEG-TS"), "{text}");
}

#[test]
fn a_path_with_a_source_plays_the_slate_while_its_source_is_down() {
    // `cam` pulls `up` of the same server over RTSP; nobody publishes `up` at first.
    let port = free_port();
    let config = format!(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:{port}\nrtspTransports: [tcp]\nhls: no\nwebrtc: no\nrtmp: no\nsrt: no\n\
         paths:\n  up:\n    source: publisher\n\
         \x20 cam:\n    source: rtsp://127.0.0.1:{port}/up\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: H264\n"
    );
    let srv = Server::start(&config);
    let url = srv.rtsp_url("cam");
    let probed = ffprobe(&url, "tcp").expect("readable while its source is down");
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.width, video.height), (640, 360), "{probed:?}");
    let mut reader = FrameCrcReader::start(&url);
    assert!(
        reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(15)),
        "the slate while the source is down\n{}",
        srv.log()
    );

    let publisher = Publisher::start(&srv.rtsp_url("up"), "tcp", "320x240", false);
    assert!(
        reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(20)),
        "the source's picture once it is up, same reader\n{}",
        srv.log()
    );
    drop(publisher);
    // The upstream path keeps its readers for `hub.publisher_grace` (10 s) before it ends them.
    let slate_again =
        wait_until(Duration::from_secs(40), || srv.log().matches("source down: the offline slate plays").count() >= 2);
    assert!(slate_again, "{}", srv.log());
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(15)), "the slate again, same reader");
    assert!(!reader.exited(), "the reader never reconnected");
}

#[test]
fn unsupported_offline_settings_are_refused_at_load() {
    let dir = temp_dir("always-available");
    for (yaml, expected) in [
        (
            "paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableFile: /nonexistent.mp4\n",
            "alwaysAvailableFile /nonexistent.mp4",
        ),
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
