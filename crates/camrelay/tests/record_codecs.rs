//! The recorder with AV1, VP9 and MJPEG (issue 17): ffmpeg 9 publishes AV1 (libsvtav1) and VP9
//! (libvpx-vp9) over Enhanced RTMP, Debian's ffmpeg publishes MJPEG over RTSP (RTP/JPEG), each into a
//! `record: yes` path cut into 1 s fMP4 segments. ffprobe reads every complete segment (codec name,
//! 320x240, duration within a GOP of `recordSegmentDuration`), and the playback server's `/get` across
//! two segment boundaries is one file ffmpeg decodes without a timestamp jump. `/api/stream.mp4` with
//! `video=av1` / `video=vp9` (the live fMP4 output, same muxer) is read by ffprobe too. H.264 with
//! Opus, G.711 (PCMA) or LPCM (L16) over RTSP: the segments hold Opus, FLAC, FLAC, and the audio decodes. RTP has no AV1/VP9
//! depacketizer here, so those two come over RTMP, where their configuration records (`av1C`, `vpcC`)
//! travel too.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// MediaMTX's RTSP, RTMP and playback listeners on free loopback ports, anyone may publish, read and
/// play back; `name` recorded in 1 s segments under `dir`.
fn config(dir: &Path, name: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: false\nwebrtc: false\nrtmp: true\nrtmpAddress: 127.0.0.1:0\nsrt: false\n\
         playback: yes\nplaybackAddress: 127.0.0.1:0\n\
         authInternalUsers:\n\
         - user: any\n  permissions:\n  - action: publish\n  - action: read\n  - action: playback\n\
         - user: any\n  ips: ['127.0.0.1', '::1']\n  permissions:\n  - action: api\n\
         paths:\n  {name}:\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n\
         \x20   recordSegmentDuration: 1s\n    recordPartDuration: 200ms\n",
        dir.display()
    )
}

fn playback_addr(server: &Server) -> std::net::SocketAddr {
    let find = || {
        server.log().lines().find_map(|l| l.split("[playback] listen addr=").nth(1).and_then(|a| a.trim().parse().ok()))
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no playback listener:\n{}", server.log());
    find().unwrap()
}

/// ffprobe's codec name, width, height and duration (end minus start: segments continue the
/// recording's timeline) of `file`'s video.
fn probe(file: &Path) -> (String, u64, u64, f64) {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args(["-show_entries", "stream=codec_name,width,height:format=duration,start_time", "-of", "json"])
            .arg(file),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "ffprobe {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    let num = |x: &serde_json::Value| x.as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
    (
        s["codec_name"].as_str().unwrap_or("").to_string(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        num(&v["format"]["duration"]) - num(&v["format"]["start_time"]),
    )
}

/// Decodes every video frame of `file`: presentation times, keyframes, and ffmpeg's complaints.
fn decode(file: &Path) -> (Vec<f64>, usize, String) {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "warning", "-select_streams", "v:0", "-show_entries", "frame=pts_time,key_frame"])
            .args(["-of", "json"])
            .arg(file),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffprobe {}: {stderr}", file.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = v["frames"].as_array().cloned().unwrap_or_default();
    let pts = frames.iter().filter_map(|f| f["pts_time"].as_str().and_then(|t| t.parse().ok())).collect();
    (pts, frames.iter().filter(|f| f["key_frame"] == 1).count(), stderr)
}

/// Waits for five segments of `name` (four complete), checks each complete one with ffprobe, then
/// asks `/get` for 2.5 s from the middle of the second segment (across two boundaries) and decodes it.
fn check_recording(server: &Server, dir: &Path, name: &str, codec: &str, gop: f64) {
    let addr = playback_addr(server);
    let path = dir.join(name);
    let recorded = wait_until(Duration::from_secs(60), || segments(&path, "mp4").len() >= 5);
    assert!(recorded, "{name}: segments {:?}\n{}", segments(&path, "mp4"), server.log());
    let files = segments(&path, "mp4");
    for f in &files[..files.len() - 1] {
        let (c, w, h, duration) = probe(f);
        eprintln!("{}: {c} {w}x{h} {duration:.3} s", f.display());
        assert_eq!((c.as_str(), w, h), (codec, 320, 240), "{}", f.display());
        // Cut at the first keyframe at or after 1 s: within one GOP of it.
        assert!((1.0 - 0.05..=1.0 + gop + 0.05).contains(&duration), "{}: {duration} s", f.display());
    }

    let asked = plus_ms(&start_of(&files[1]), 500);
    let url = format!("/get?path={name}&start={}&duration=2.5", asked.replace(':', "%3A"));
    let got = http_request(addr, "GET", &url, &[], b"");
    assert_eq!(got.status, 200, "{}", got.text());
    let file = dir.join(format!("{name}-get.mp4"));
    std::fs::write(&file, &got.body).unwrap();
    let (pts, keyframes, stderr) = decode(&file);
    eprintln!("{name}: /get gave {} bytes, {} frames ({keyframes} keyframes)", got.body.len(), pts.len());
    // 2.5 s at 25 fps, plus up to a GOP of pre-roll before the asked time.
    assert!(pts.len() >= 60, "{} frames: {pts:?}", pts.len());
    assert!(pts.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] < 0.045), "no jump: {pts:?}");
    assert!(keyframes >= 3, "{keyframes} keyframes: at least those of two boundaries and the pre-roll's");
    for bad in ["monotonic", "DTS", "Invalid", "error"] {
        assert!(!stderr.contains(bad), "ffprobe decoding {}: {stderr}", file.display());
    }
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "warning", "-i"]).arg(&file).args(["-f", "null", "-"]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && !stderr.contains("monotonic"), "ffmpeg {}: {stderr}", file.display());
}

/// `/api/stream.mp4` with `video=CODEC` (the live fMP4 output shares the recorder's muxer): ffprobe
/// reads `codec` at 320x240.
fn check_live_mp4(server: &Server, name: &str, codec: &str) {
    let url = format!("http://{}/api/stream.mp4?src={name}&video={codec}&duration=3", server.api.unwrap());
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries", "stream=codec_name,width,height"])
            .args(["-of", "csv=p=0", &url]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.trim(), format!("{codec},320,240"), "{url}: {}", String::from_utf8_lossy(&out.stderr));
}

/// ffmpeg 9 publishes a 320x240 test pattern with a keyframe every second, encoded by `video`, as
/// Enhanced FLV over RTMP for 60 s.
fn publish9(url: &str, video: &[&str]) -> Publisher {
    let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    args.extend(video);
    args.extend(["-pix_fmt", "yuv420p", "-g", "25", "-t", "60", "-f", "flv", url]);
    Publisher::spawn(ffmpeg9(), &args)
}

#[test]
fn av1_over_rtmp_is_recorded_and_played_back() {
    let dir = temp_dir("record-av1");
    let server = Server::start(&config(&dir, "av1"));
    let url = format!("rtmp://{}/av1", server.rtmp_addr());
    let _p = publish9(&url, &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "pred-struct=1"]);
    check_recording(&server, &dir, "av1", "av1", 1.0);
    check_live_mp4(&server, "av1", "av1");
}

#[test]
fn vp9_over_rtmp_is_recorded_and_played_back() {
    let dir = temp_dir("record-vp9");
    let server = Server::start(&config(&dir, "vp9"));
    let url = format!("rtmp://{}/vp9", server.rtmp_addr());
    let _p = publish9(&url, &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-lag-in-frames", "0"]);
    check_recording(&server, &dir, "vp9", "vp9", 1.0);
    check_live_mp4(&server, "vp9", "vp9");
}

#[test]
fn mjpeg_over_rtsp_is_recorded_and_played_back() {
    let dir = temp_dir("record-mjpeg");
    let server = Server::start(&config(&dir, "mjpeg"));
    let url = server.rtsp_url("mjpeg");
    let _p = Publisher::encode("320x240", false, true, &["-t", "60", "-f", "rtsp", "-rtsp_transport", "tcp", &url]);
    // Every JPEG is a keyframe: segments are cut right at 1 s.
    check_recording(&server, &dir, "mjpeg", "mjpeg", 0.04);
}

/// Debian's ffmpeg publishes H.264 and a tone encoded by `audio` over RTSP into a recorded path; ffprobe
/// reads `[h264, codec]` in every complete 1 s segment.
fn check_audio(name: &str, audio: &[&str], codec: &str) {
    let dir = temp_dir(&format!("record-{name}"));
    let server = Server::start(&config(&dir, name));
    let url = server.rtsp_url(name);
    let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25", "-pix_fmt", "yuv420p"]);
    args.extend(audio);
    args.extend(["-t", "60", "-f", "rtsp", "-rtsp_transport", "tcp", &url]);
    let _p = Publisher::spawn("ffmpeg", &args);
    let path = dir.join(name);
    assert!(wait_until(Duration::from_secs(40), || segments(&path, "mp4").len() >= 4), "{name}\n{}", server.log());
    let files = segments(&path, "mp4");
    for f in &files[..files.len() - 1] {
        let out = run_with_timeout(
            Command::new("ffprobe")
                .args(["-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0"])
                .arg(f),
            Duration::from_secs(20),
        );
        let codecs: Vec<String> = String::from_utf8_lossy(&out.stdout).lines().map(|l| l.trim().to_string()).collect();
        eprintln!("{}: {codecs:?}", f.display());
        assert_eq!(codecs, ["h264", codec], "{}", f.display());
        // The audio decodes: about a second of it, without a complaint.
        let out = run_with_timeout(
            Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(f).args(["-map", "0:a", "-f", "framecrc", "-"]),
            Duration::from_secs(20),
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
        assert!(
            out.status.success() && stderr.trim().is_empty() && frames >= 10,
            "{}: {frames} frames, {stderr}",
            f.display()
        );
    }
}

#[test]
fn opus_g711_and_lpcm_audio_are_recorded() {
    check_audio("opus", &["-c:a", "libopus", "-ar", "48000"], "opus");
    // G.711 and LPCM are stored as FLAC (go2rtc's way, what MediaMTX does for G.711).
    check_audio("pcma", &["-c:a", "pcm_alaw", "-ar", "8000", "-ac", "1"], "flac");
    check_audio("lpcm", &["-c:a", "pcm_s16be", "-ar", "16000", "-ac", "1"], "flac");
}
