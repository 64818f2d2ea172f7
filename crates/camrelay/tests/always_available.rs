//! MediaMTX's `alwaysAvailable`: a reader of a path with no publisher gets the offline slate (a
//! 640x360 "camera offline" picture), switches to the publisher's picture when one publishes (ffmpeg,
//! 320x240), and back to the slate when it leaves — one ffmpeg reader, never reconnecting. Each
//! decoded frame's size (framecrc's size column: 640x360 or 320x240 in YUV 4:2:0) says whose it is.
//! The same with AV1 and VP9 slates: ffmpeg 9 publishes over Enhanced RTMP, and an RTMP reader (ffmpeg
//! 9) and a `stream.mp4` reader (Debian's ffmpeg) follow slate → live → slate; their 640x360 frames
//! are checked to the pixel (framecrc checksums of the slate asset's decoded pictures), so no frame
//! decoded from the other stream's references passes at a switch.

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
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(30)), "the reader decodes the slate");

    let publisher = Publisher::start(&url, "tcp", "320x240", false);
    assert!(
        reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)),
        "the same reader gets the live picture\n{}",
        srv.log()
    );
    assert!(!reader.exited());

    drop(publisher);
    assert!(srv.wait_log("the offline slate plays again", Duration::from_secs(30)), "{}", srv.log());
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(30)), "back to the slate, same reader");
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
    assert!(reader.frames_of(FILE_FRAME, 75, Duration::from_secs(30)), "the reader decodes the looped file");
    let publisher = Publisher::start(&url, "tcp", "320x240", false);
    assert!(reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)), "then the live picture\n{}", srv.log());
    drop(publisher);
    assert!(reader.frames_of(FILE_FRAME, 25, Duration::from_secs(30)), "then the file again");
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
    assert!(reader.frames_of(352 * 288 * 3 / 2, 75, Duration::from_secs(30)), "the reader decodes the looped file");
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
        reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(30)),
        "the slate while the source is down\n{}",
        srv.log()
    );

    let publisher = Publisher::start(&srv.rtsp_url("up"), "tcp", "320x240", false);
    assert!(
        reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)),
        "the source's picture once it is up, same reader\n{}",
        srv.log()
    );
    drop(publisher);
    // The upstream path keeps its readers for `hub.publisher_grace` (10 s) before it ends them.
    let slate_again =
        wait_until(Duration::from_secs(40), || srv.log().matches("source down: the offline slate plays").count() >= 2);
    assert!(slate_again, "{}", srv.log());
    assert!(reader.frames_of(SLATE_FRAME, 25, Duration::from_secs(30)), "the slate again, same reader");
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
        (
            "paths:\n  cam:\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: MJPEG\n",
            "unknown codec \"MJPEG\" (AV1, VP9, H265, H264",
        ),
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

/// An `alwaysAvailable` path whose tracks are `codec` (`AV1`, `VP9`), and VP9 with Opus: readers over
/// RTMP (Enhanced RTMP, ffmpeg 9) and fMP4 (`/api/stream.mp4`, Debian's ffmpeg) decode the 640x360
/// slate as `codec` with no publisher, then ffmpeg 9's 320x240 publish over Enhanced RTMP, then the
/// slate again, each reader never reconnecting.
fn av1_vp9_slate_then_live_then_slate(codec: &str, encoder: &[&str], opus: bool) {
    let audio = if opus { "    - codec: Opus\n      channelCount: 2\n" } else { "" };
    let config = format!(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: no\nwebrtc: no\nrtmp: yes\nrtmpAddress: 127.0.0.1:0\nsrt: no\n\
         paths:\n  cam:\n    source: publisher\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: {codec}\n{audio}"
    );
    let srv = Server::start(&config);
    let name = codec.to_ascii_lowercase();
    let rtmp = format!("rtmp://{}/cam", srv.rtmp_addr());
    // stream.mp4 serves H.264/H.265 + AAC unless asked for other codecs (docs/outputs.md).
    let mp4 = srv.api_url(&format!("/api/stream.mp4?src=cam&video={name}{}", if opus { "&mp4=all" } else { "" }));

    // No publisher: both outputs carry the slate in its codec.
    for (program, url) in [(ffmpeg9(), &rtmp), (std::path::PathBuf::from("ffmpeg"), &mp4)] {
        let streams = input_streams(&program, url);
        assert!(streams.contains(&format!("Video: {name}")) && streams.contains("640x360"), "{url}: {streams}");
        assert_eq!(streams.contains("Audio: opus"), opus, "{url}: {streams}");
    }
    let mut over_rtmp = FrameCrcReader::start_ffmpeg9(&["-i", &rtmp]);
    // The raw HTTP-FLV bytes of a third reader, for the sequence starts in them.
    let raw = srv.dir.join("raw.flv");
    let flv = srv.api_url("/api/stream.flv?src=cam");
    let curl = Publisher::spawn("curl", &["-s", "-N", "--max-time", "90", "-o", raw.to_str().unwrap(), &flv]);
    let mut over_mp4 = FrameCrcReader::start_input(&["-i", &mp4]);
    let slate = slate_pictures(&name);
    for (reader, what) in [(&over_rtmp, "RTMP"), (&over_mp4, "stream.mp4")] {
        if let Err(e) = slate_frames(reader, &slate, 25, Duration::from_secs(30)) {
            panic!("{what} reader, {codec} slate: {e}\n{}", srv.log());
        }
    }

    let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    if opus {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "libopus"]);
    }
    args.extend(encoder);
    args.extend(["-pix_fmt", "yuv420p", "-g", "25", "-t", "60", "-f", "flv", &rtmp]);
    let publisher = Publisher::spawn(ffmpeg9(), &args);
    assert!(
        srv.wait_log("publisher replaces the offline slate", Duration::from_secs(30)),
        "the publisher's medias are the slate's: it takes its tracks over\n{}",
        srv.log()
    );
    for (reader, what) in [(&over_rtmp, "RTMP"), (&over_mp4, "stream.mp4")] {
        assert!(
            reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)),
            "{what} reader gets the live {codec} picture\n{}",
            srv.log()
        );
    }
    drop(publisher);
    assert!(srv.wait_log("the offline slate plays again", Duration::from_secs(30)), "{}", srv.log());
    for (reader, what) in [(&over_rtmp, "RTMP"), (&over_mp4, "stream.mp4")] {
        if let Err(e) = slate_frames(reader, &slate, 25, Duration::from_secs(30)) {
            panic!("{what} reader, back to the {codec} slate: {e}\n{}", srv.log());
        }
    }
    assert!(!over_rtmp.exited() && !over_mp4.exited(), "the readers never reconnected");
    let consumers = srv.http("GET", "/api/streams?src=cam").json()["consumers"].as_array().map_or(0, Vec::len);
    assert_eq!(consumers, 3);
    // FLV readers get a new AV1 sequence start (av1C) at each switch; VP9's vpcC holds no picture size.
    drop(curl);
    let starts = sequence_starts(&std::fs::read(&raw).unwrap());
    let expected: &[(u32, u32)] = if codec == "AV1" { &[(640, 360), (320, 240), (640, 360)] } else { &[(0, 0)] };
    assert_eq!(starts, expected, "{codec} sequence starts in the HTTP-FLV stream");
}

/// The video sequence starts (Enhanced FLV `SequenceStart` of `av01`/`vp09`) in an FLV stream, as
/// their records' picture sizes (`(0, 0)` for VP9, whose `vpcC` has none).
fn sequence_starts(flv: &[u8]) -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut at = 13; // file header and the first previous-tag size
    while let Some(head) = flv.get(at..at + 11) {
        let size = u32::from_be_bytes([0, head[1], head[2], head[3]]) as usize;
        let Some(body) = flv.get(at + 11..at + 11 + size) else { break };
        if head[0] == 9 && body.len() > 5 && body[0] == 0x90 {
            out.push(match &body[1..5] {
                b"av01" => formats::flv::av1_codec(&body[5..])
                    .ok()
                    .and_then(|c| formats::fmp4::Visual::from_codec(&c))
                    .map_or((1, 1), |v| (v.width, v.height)),
                _ => (0, 0),
            });
        }
        at += 11 + size + 4;
    }
    out
}

#[test]
fn an_av1_slate_plays_until_an_enhanced_rtmp_publisher_comes_and_after_it_leaves() {
    av1_vp9_slate_then_live_then_slate("AV1", &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"], false);
}

#[test]
fn a_vp9_slate_with_opus_plays_until_an_enhanced_rtmp_publisher_comes_and_after_it_leaves() {
    av1_vp9_slate_then_live_then_slate(
        "VP9",
        &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0"],
        true,
    );
}

/// The checksums (framecrc) of the pictures of the built-in `codec` (`av1`, `vp9`) slate, decoded from
/// its asset by Debian's ffmpeg: AV1 and VP9 decoding is bit-exact, so any reader's decoder gives these.
fn slate_pictures(codec: &str) -> std::collections::HashSet<String> {
    let asset = format!("{}/assets/offline.{codec}.ivf", env!("CARGO_MANIFEST_DIR"));
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-i", &asset, "-f", "framecrc", "-"]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let crcs: std::collections::HashSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(5).map(|c| c.trim().to_string()))
        .collect();
    let frames = text.lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, 25, "the {codec} slate decodes to 25 pictures: {}", String::from_utf8_lossy(&out.stderr));
    crcs
}

/// Reads `reader` until `n` frames in a row are slate pictures (640x360 and a checksum of `slate`).
/// Any 640x360 frame whose pixels are not the slate's is an error: a frame decoded from another
/// stream's references (garbage) at a switch.
fn slate_frames(
    reader: &FrameCrcReader,
    slate: &std::collections::HashSet<String>,
    n: usize,
    timeout: Duration,
) -> Result<(), String> {
    let until = std::time::Instant::now() + timeout;
    let (mut run, mut seen) = (0, 0);
    while run < n {
        let (size, crc) = reader.next_frame(until).ok_or(format!("{run} slate frames in a row after {seen} frames"))?;
        seen += 1;
        if size != SLATE_FRAME {
            run = 0;
        } else if slate.contains(&crc) {
            run += 1;
        } else {
            return Err(format!("frame {seen} is 640x360 but not a slate picture ({crc})"));
        }
    }
    Ok(())
}

/// ffmpeg's `Stream #0:N: ...` lines for `url` (read with `program`), after decoding a few frames.
fn input_streams(program: &std::path::Path, url: &str) -> String {
    let out = run_with_timeout(
        Command::new(program).args(["-hide_banner", "-i", url, "-frames:v", "5", "-f", "null", "-"]),
        Duration::from_secs(30),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    let inputs = stderr.split("Stream mapping").next().unwrap_or("");
    inputs.lines().filter(|l| l.trim_start().starts_with("Stream #0:")).collect::<Vec<_>>().join("\n")
}

/// A path with an `rtmp://` source (`cam` pulls `live/up` of the same server) and an AV1 slate: while
/// `live/up` has no publisher the source is down and an RTMP reader of `cam` decodes the AV1 slate;
/// ffmpeg 9 publishes AV1 to `live/up`, the source comes up and the same reader decodes its 320x240
/// pictures; it stops, the source goes down and the reader is back on the slate.
#[test]
fn an_rtmp_source_of_av1_plays_the_av1_slate_while_it_is_down() {
    let port = free_port();
    let config = format!(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: no\nwebrtc: no\nrtmp: yes\nrtmpAddress: 127.0.0.1:{port}\nsrt: no\n\
         paths:\n  live/up:\n    source: publisher\n\
         \x20 cam:\n    source: rtmp://127.0.0.1:{port}/live/up\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: AV1\n"
    );
    let srv = Server::start(&config);
    let rtmp = |path: &str| format!("rtmp://127.0.0.1:{port}/{path}");
    let mut reader = FrameCrcReader::start_ffmpeg9(&["-i", &rtmp("cam")]);
    let slate = slate_pictures("av1");
    if let Err(e) = slate_frames(&reader, &slate, 25, Duration::from_secs(30)) {
        panic!("the AV1 slate: {e}\n{}", srv.log());
    }

    let args = [
        "-v",
        "error",
        "-re",
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-c:v",
        "libsvtav1",
        "-preset",
        "12",
        "-svtav1-params",
        "lp=1",
        "-pix_fmt",
        "yuv420p",
        "-g",
        "25",
        "-t",
        "60",
        "-f",
        "flv",
    ];
    let up = rtmp("live/up");
    let publisher = Publisher::spawn(ffmpeg9(), &[&args[..], &[up.as_str()]].concat());
    assert!(
        reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)),
        "the source's AV1 picture once it is up, same reader\n{}",
        srv.log()
    );
    drop(publisher);
    let slate_again =
        wait_until(Duration::from_secs(40), || srv.log().matches("source down: the offline slate plays").count() >= 2);
    assert!(slate_again, "{}", srv.log());
    if let Err(e) = slate_frames(&reader, &slate, 25, Duration::from_secs(30)) {
        panic!("the AV1 slate again, same reader: {e}\n{}", srv.log());
    }
    assert!(!reader.exited(), "the reader never reconnected");
}

/// `alwaysAvailableFile` with an AV1 (libaom-av1) and a VP9 (libvpx-vp9) MP4 of 480x272: an ffmpeg 9
/// RTMP reader decodes the looped file in its codec, then ffmpeg 9's 320x240 publish of the same codec
/// over Enhanced RTMP, then the file again, never reconnecting.
#[test]
fn the_slate_can_be_an_av1_or_vp9_mp4_file() {
    const FILE_FRAME: u64 = 480 * 272 * 3 / 2;
    let dir = temp_dir("slate-av1-vp9");
    let cases: [(&str, &[&str], &[&str]); 2] = [
        (
            "AV1",
            &["-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-row-mt", "0"],
            &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"],
        ),
        (
            "VP9",
            &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"],
            &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0"],
        ),
    ];
    for (codec, file_encoder, live_encoder) in cases {
        let file = dir.join(format!("slate-{codec}.mp4"));
        let out = run_with_timeout(
            Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=480x272:rate=25", "-t", "2"])
                .args(file_encoder)
                .args(["-g", "25", "-pix_fmt", "yuv420p", "-f", "mp4"])
                .arg(&file),
            Duration::from_secs(60),
        );
        assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
        let config = format!(
            "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
             hls: no\nwebrtc: no\nrtmp: yes\nrtmpAddress: 127.0.0.1:0\nsrt: no\n\
             paths:\n  cam:\n    source: publisher\n    alwaysAvailable: yes\n    alwaysAvailableFile: {}\n",
            file.display()
        );
        let srv = Server::start(&config);
        let rtmp = format!("rtmp://{}/cam", srv.rtmp_addr());
        let streams = input_streams(&ffmpeg9(), &rtmp);
        let name = codec.to_ascii_lowercase();
        assert!(streams.contains(&format!("Video: {name}")) && streams.contains("480x272"), "{codec}: {streams}");
        let mut reader = FrameCrcReader::start_ffmpeg9(&["-i", &rtmp]);
        // 2 s of file at 25 fps: 75 frames in a row of its size means it looped, and the reader went on.
        assert!(reader.frames_of(FILE_FRAME, 75, Duration::from_secs(30)), "{codec}: the looped file\n{}", srv.log());
        let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
        args.extend(live_encoder);
        args.extend(["-pix_fmt", "yuv420p", "-g", "25", "-t", "60", "-f", "flv", &rtmp]);
        let publisher = Publisher::spawn(ffmpeg9(), &args);
        assert!(reader.frames_of(LIVE_FRAME, 25, Duration::from_secs(30)), "{codec}: then live\n{}", srv.log());
        drop(publisher);
        assert!(reader.frames_of(FILE_FRAME, 25, Duration::from_secs(30)), "{codec}: then the file again");
        assert!(!reader.exited(), "{codec}: the reader never reconnected");
    }
}
