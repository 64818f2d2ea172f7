//! `exec:`, `ffmpeg:` and `echo:` sources against the real server, read with real ffprobe/ffmpeg.

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

/// A marker unique to this test process, put in children's command lines for pgrep.
fn marker(tag: &str) -> String {
    format!("camrelay-{tag}-{}", std::process::id())
}

fn running(marker: &str) -> bool {
    Command::new("pgrep").args(["-f", marker]).output().is_ok_and(|o| o.status.success())
}

fn probe(srv: &Server, path: &str) -> Vec<ProbedStream> {
    ffprobe(&srv.rtsp_url(path), "tcp").unwrap_or_else(|e| panic!("ffprobe {path}: {e}\nlog:\n{}", srv.log()))
}

#[test]
fn exec_rtsp_mode_publishes_into_a_private_path() {
    let m = marker("rtsp");
    let srv = Server::start(&format!(
        "streams:\n  t: exec:ffmpeg -v error -re -f lavfi -i testsrc=size=320x240:rate=25 -c:v libx264 -preset ultrafast -g 25 -metadata title={m} -f rtsp {{output}}\n"
    ));
    let streams = probe(&srv, "t");
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!((streams[0].codec_name.as_str(), streams[0].width, streams[0].height), ("h264", 320, 240));
    let n = decode_video_frames(&srv.rtsp_url("t"), "tcp", 10).unwrap();
    assert_eq!(n, 10);
    let info = srv.http("GET", "/api/streams?src=t").json();
    assert_eq!(info["producers"][0]["medias"][0], "video, recvonly, H264");
    assert!(running(&m));
}

#[test]
fn exec_pipe_mode_h264_decodes() {
    let m = marker("pipe");
    let srv = Server::start(&format!(
        "streams:\n  p: exec:ffmpeg -v error -re -f lavfi -i testsrc=size=160x120:rate=25 -c:v libx264 -preset ultrafast -bsf:v h264_mp4toannexb -metadata title={m} -f h264 -\n"
    ));
    let streams = probe(&srv, "p");
    assert_eq!((streams[0].codec_name.as_str(), streams[0].width, streams[0].height), ("h264", 160, 120));
    assert_eq!(decode_video_frames(&srv.rtsp_url("p"), "tcp", 10).unwrap(), 10);
}

/// Pipe mode with MPEG-TS on stdout: video and audio tracks found by the demuxer.
#[test]
fn exec_pipe_mode_mpegts_with_audio_decodes() {
    let m = marker("pipets");
    let srv = Server::start(&format!(
        "streams:\n  p: exec:ffmpeg -v error -re -f lavfi -i testsrc=size=160x120:rate=25 -f lavfi -i sine=sample_rate=48000 -c:v libx264 -preset ultrafast -g 25 -c:a aac -metadata title={m} -f mpegts -\n"
    ));
    let streams = probe(&srv, "p");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 160, 120));
    assert!(streams.iter().any(|s| s.codec_name == "aac" && s.sample_rate == 48000), "{streams:?}");
    assert_eq!(decode_video_frames(&srv.rtsp_url("p"), "tcp", 10).unwrap(), 10);
}

#[test]
fn ffmpeg_transcodes_one_of_our_streams() {
    let m = marker("ffmpeg");
    let srv = Server::start(&format!(
        "streams:\n  src: demo:clip\n  t: ffmpeg:src#video=h264#audio=opus#width=320#raw=-metadata title={m}\n"
    ));
    let mut streams = probe(&srv, "t");
    streams.sort_by(|a, b| b.codec_type.cmp(&a.codec_type));
    assert_eq!(streams.len(), 2, "{streams:?}");
    assert_eq!((streams[0].codec_name.as_str(), streams[0].width), ("h264", 320));
    assert_eq!(streams[0].height, 180); // 640x360 scaled to 320 wide
    assert_eq!((streams[1].codec_name.as_str(), streams[1].sample_rate), ("opus", 48000));
    assert!(decode_video_frames(&srv.rtsp_url("t"), "tcp", 5).unwrap() >= 5);
    // The child reads our `src` stream over RTSP: it shows as a reader there.
    let src = srv.http("GET", "/api/streams?src=src").json();
    assert!(src["consumers"].as_array().is_some_and(|c| !c.is_empty()), "{src}");
}

#[test]
fn failing_children_report_their_stderr_and_other_streams_keep_working() {
    let srv = Server::start(
        "streams:\n  bad: exec:sh -c \"echo camera-unplugged-oops >&2; exit 2\"\n  gone: exec:false\n  silent: exec:sleep 30#starttimeout=0.5\n  ok: demo:clip\n",
    );
    for path in ["bad", "gone", "silent"] {
        assert!(ffprobe(&srv.rtsp_url(path), "tcp").is_err(), "{path} should fail");
    }
    let error_of = |path: &str| {
        let v = srv.http("GET", &format!("/api/streams?src={path}")).json();
        v["producers"][0]["last_error"].as_str().unwrap_or_default().to_string()
    };
    let bad = error_of("bad");
    assert!(bad.contains("exited with code 2") && bad.contains("camera-unplugged-oops"), "{bad}");
    assert!(error_of("gone").contains("exited with code 1"), "{}", error_of("gone"));
    assert!(error_of("silent").contains("no decodable media on stdout within 500ms"), "{}", error_of("silent"));
    let ok = probe(&srv, "ok");
    assert!(ok.iter().any(|s| s.codec_name == "h264"));
}

#[test]
fn echo_resolves_to_another_source() {
    let dir = temp_dir("echo");
    let script = dir.join("url.sh");
    std::fs::write(&script, "#!/bin/sh\necho \"demo:clip\"\n").unwrap();
    let empty = dir.join("empty.sh");
    std::fs::write(&empty, "#!/bin/sh\necho 'no link today' >&2\n").unwrap();
    let srv = Server::start(&format!(
        "streams:\n  e: echo:sh {}\n  nothing: echo:sh {}\n",
        script.display(),
        empty.display()
    ));
    let streams = probe(&srv, "e");
    assert!(streams.iter().any(|s| s.codec_name == "h264" && s.width == 640), "{streams:?}");
    assert!(ffprobe(&srv.rtsp_url("nothing"), "tcp").is_err());
    let v = srv.http("GET", "/api/streams?src=nothing").json();
    let e = v["producers"][0]["last_error"].as_str().unwrap_or_default().to_string();
    assert!(e.contains("printed no URL") && e.contains("no link today"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_stray_children_after_linger_or_shutdown() {
    let (m1, m2) = (marker("linger"), marker("shutdown"));
    let exec = |m: &str| {
        format!("exec:ffmpeg -v error -re -f lavfi -i testsrc=size=160x120:rate=25 -c:v libx264 -preset ultrafast -g 25 -metadata title={m} -f rtsp {{output}}")
    };
    let pipe = |m: &str| {
        format!("exec:ffmpeg -v error -re -f lavfi -i testsrc=size=160x120:rate=25 -c:v libx264 -preset ultrafast -metadata title={m} -f h264 -")
    };
    let mut srv = Server::start(&format!(
        "hub:\n  linger: 200ms\nstreams:\n  a: {}\n  b: {}\n  c: {}\n",
        exec(&m1),
        pipe(&format!("{m1}-pipe")),
        exec(&m2)
    ));
    // A reader comes and goes: the child stops after the linger.
    assert_eq!(decode_video_frames(&srv.rtsp_url("a"), "tcp", 5).unwrap(), 5);
    assert_eq!(decode_video_frames(&srv.rtsp_url("b"), "tcp", 5).unwrap(), 5);
    assert!(wait_until(Duration::from_secs(30), || !running(&m1)), "child still running after linger");
    // Server shutdown ends a running child.
    let _reader = std::thread::spawn({
        let url = srv.rtsp_url("c");
        move || decode_video_frames(&url, "tcp", 100_000)
    });
    assert!(wait_until(Duration::from_secs(30), || running(&m2)));
    assert!(
        wait_until(Duration::from_secs(30), || srv.http("GET", "/api/streams?src=c").json()["consumers"].is_array())
    );
    assert_eq!(srv.terminate(), Some(0));
    assert!(wait_until(Duration::from_secs(30), || !running(&m2)), "child still running after shutdown");
}
