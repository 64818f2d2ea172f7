//! camrelay's own `record:` section (go2rtc-style config) on the MediaMTX recorder, pre-record event
//! recordings (`POST`/`DELETE /api/record`) and a source that changes codec or resolution
//! mid-recording. ffmpeg publishes over RTSP; ffprobe and ffmpeg read the files.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

#[derive(Debug)]
struct Probed {
    /// `codec WxH` of the video stream(s), codec names of the others.
    streams: Vec<String>,
    /// Seconds from the first to the last timestamp.
    duration: f64,
    /// Decoded video frames.
    frames: usize,
    /// What ffmpeg said while decoding everything (`-v error`): empty for a clean file.
    errors: String,
}

fn probe(file: &Path) -> Probed {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration,start_time"])
            .args(["-of", "json"])
            .arg(file),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "ffprobe {}: {}", file.display(), String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let num = |v: &serde_json::Value| v.as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
    let streams = v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| match s["width"].as_u64() {
            Some(w) => format!("{} {w}x{}", s["codec_name"].as_str().unwrap(), s["height"]),
            None => s["codec_name"].as_str().unwrap().to_string(),
        })
        .collect();
    let decoded = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(file).args(["-map", "0:v", "-f", "framecrc", "-"]),
        Duration::from_secs(60),
    );
    Probed {
        streams,
        duration: num(&v["format"]["duration"]) - num(&v["format"]["start_time"]),
        frames: String::from_utf8_lossy(&decoded.stdout).lines().filter(|l| l.starts_with("0,")).count(),
        errors: String::from_utf8_lossy(&decoded.stderr).into_owned(),
    }
}

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}")))
}

fn secs_since_epoch(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs_f64()
}

fn rfc3339_secs(s: &str) -> f64 {
    // 2026-12-05T21:40:01.123456Z → seconds since the epoch (UTC), via date(1).
    let out = Command::new("date").args(["-u", "-d", s, "+%s.%N"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap_or_else(|_| panic!("not a time: {s}"))
}

/// `record:` in camrelay's config: `cam` recorded all the time into 2 s segments; `door` keeps a 3 s
/// pre-record ring and records only events; `lobby` (not listed) records an event from its last
/// keyframe. Events answer their start and file, begin ≥ 3 s before the request, show in
/// `/api/streams` and `/v3/recordings`; the API user is required.
#[test]
fn go2rtc_record_section_and_pre_recorded_events() {
    let dir = temp_dir("record-events");
    let config = format!(
        "api:\n  username: admin\n  password: secret\n  local_auth: true\nrtsp:\n  allow_any_publish: true\n\
         streams:\n  cam:\n  door:\n  lobby:\n\
         record:\n  path: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  segment_duration: 2s\n  part_duration: 200ms\n  \
         delete_after: 0s\n  streams:\n    cam:\n    door: {{continuous: false, pre: 3s}}\n",
        dir.display()
    );
    let server = Server::start(&config);
    let auth = basic("admin", "secret");
    let api =
        |method: &str, path: &str| http_request(server.api.unwrap(), method, path, &[("Authorization", &auth)], b"");
    let _cam = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    let _door = Publisher::start(&server.rtsp_url("door"), "tcp", "320x240", true);
    let _lobby = Publisher::start(&server.rtsp_url("lobby"), "tcp", "160x120", false);

    // Continuous: 2 s segments ffprobe reads.
    let cam = dir.join("cam");
    assert!(wait_until(Duration::from_secs(30), || segments(&cam, "mp4").len() >= 3), "{}", server.log());
    for f in &segments(&cam, "mp4")[..2] {
        let p = probe(f);
        assert_eq!(p.streams, ["h264 320x240", "aac"], "{}", f.display());
        assert!((1.9..=3.1).contains(&p.duration), "{}: {p:?}", f.display());
        assert!(p.errors.is_empty(), "{}: {}", f.display(), p.errors);
    }
    // Events only: nothing written for door before a request.
    assert!(server.wait_log("pre-record started", Duration::from_secs(30)), "{}", server.log());
    assert!(segments(&dir.join("door"), "mp4").is_empty());

    // Auth: the control API's user.
    assert_eq!(server.http("POST", "/api/record?src=door").status, 401);
    // Bad requests.
    assert_eq!(api("POST", "/api/record").status, 400);
    let bad = api("POST", "/api/record?src=door&pre=soon");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("pre: invalid duration"), "{}", bad.text());
    assert_eq!(api("POST", "/api/record?src=nope").status, 404);
    let continuous = api("POST", "/api/record?src=cam");
    assert_eq!(continuous.status, 409, "{}", continuous.text());
    assert!(continuous.text().contains("recorded all the time"));
    assert_eq!(api("DELETE", "/api/record?src=door").status, 404);

    // The ring fills (≥ 3 s of door), then the event: it begins at the keyframe ≥ 3 s before the request.
    std::thread::sleep(Duration::from_secs(6));
    let asked = secs_since_epoch(SystemTime::now());
    let r = api("POST", "/api/record?src=door");
    assert_eq!(r.status, 200, "{}\n{}", r.text(), server.log());
    let started = r.json();
    assert_eq!(started["stream"], "door");
    let start = rfc3339_secs(started["start"].as_str().unwrap());
    let pre = started["pre"].as_f64().unwrap();
    assert!(
        asked - start >= 3.0 && asked - start <= 4.5,
        "starts {:.2} s before the request: {started}",
        asked - start
    );
    assert!((pre - (asked - start)).abs() < 0.3, "{started}");
    let file = PathBuf::from(started["file"].as_str().unwrap());
    assert!(file.starts_with(dir.join("door")) && file.exists(), "{started}");
    // A second request while it runs; its state in /api/streams.
    assert_eq!(api("POST", "/api/record?src=door").status, 409);
    let streams = api("GET", "/api/streams?src=door").json();
    assert_eq!(streams["recording"]["mode"], "events", "{streams}");
    assert_eq!(streams["recording"]["event_since"], started["start"], "{streams}");
    std::thread::sleep(Duration::from_secs(3));
    let r = api("DELETE", "/api/record?src=door");
    let stopped = secs_since_epoch(SystemTime::now());
    assert_eq!(r.status, 200, "{}", r.text());
    let ended = r.json();
    assert_eq!(ended["files"][0], started["file"], "{ended}");
    // About 6 s in 2 s segments (the event goes on across segment boundaries, as any recording).
    let files: Vec<PathBuf> =
        ended["files"].as_array().unwrap().iter().map(|f| PathBuf::from(f.as_str().unwrap())).collect();
    assert!(files.len() >= 3, "{ended}");
    let (mut duration, mut frames) = (0.0, 0);
    for f in &files {
        let p = probe(f);
        assert_eq!(p.streams, ["h264 320x240", "aac"], "{}", f.display());
        assert!(p.errors.is_empty(), "{}: {}", f.display(), p.errors);
        // 25 fps (the last file's audio may run a few hundred ms past its last video frame).
        assert!(p.frames.abs_diff((p.duration * 25.0).round() as usize) <= 8, "{}: {p:?}", f.display());
        duration += p.duration;
        frames += p.frames;
    }
    // The media covers the pre-roll and the event: from ≥ 3 s before the request to its end.
    let expected = stopped - start;
    assert!(
        duration >= 3.0 + (stopped - asked) - 0.5,
        "{duration:.2} s, event {:.2} s after the request",
        stopped - asked
    );
    assert!((duration - expected).abs() < 1.0, "{duration:.2} s vs {expected:.2} s");
    assert!(frames.abs_diff((expected * 25.0).round() as usize) <= 25, "{frames} frames in {expected:.2} s");
    assert!((ended["duration"].as_f64().unwrap() - duration).abs() < 0.5, "{ended} vs {duration:.2} s");
    // A normal recording: listed with its start.
    let listed = api("GET", "/v3/recordings/get/door").json();
    assert_eq!(listed["segments"].as_array().map(Vec::len), Some(files.len()), "{listed}");
    let listed_start = rfc3339_secs(listed["segments"][0]["start"].as_str().unwrap());
    assert!((listed_start - start).abs() < 0.001, "{listed} vs {started}");
    // The ring goes on: a second event also has its pre-roll, with pre= asking for less.
    let asked = secs_since_epoch(SystemTime::now());
    let again = api("POST", "/api/record?src=door&pre=1s").json();
    let back = asked - rfc3339_secs(again["start"].as_str().unwrap());
    assert!((1.0..=2.5).contains(&back), "{again}: {back:.2} s");
    assert_eq!(api("DELETE", "/api/record?src=door").status, 200);

    // A stream without a ring: the event starts at its last keyframe (the GOP cache's, timed when the
    // recorder gets it, at the request) and its recorder ends with it.
    let asked = secs_since_epoch(SystemTime::now());
    let r = api("POST", "/api/record?src=lobby");
    assert_eq!(r.status, 200, "{}", r.text());
    let lobby = r.json();
    let back = asked - rfc3339_secs(lobby["start"].as_str().unwrap());
    assert!(back.abs() <= 1.5, "{lobby}");
    std::thread::sleep(Duration::from_secs(2));
    let ended = api("DELETE", "/api/record?src=lobby").json();
    let f = PathBuf::from(ended["files"][0].as_str().unwrap());
    let p = probe(&f);
    assert_eq!(p.streams, ["h264 160x120"]);
    assert!(p.duration >= 1.5 && p.errors.is_empty(), "{p:?}");
    assert!(api("GET", "/api/streams?src=lobby").json().get("recording").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A publisher that comes back with another resolution (same codec: the hub hands the tracks over and
/// puts the new parameter sets in band) and then another codec: each change starts a new segment, and
/// every file is one clean stream.
#[test]
fn a_source_changing_codec_starts_a_new_segment() {
    let dir = temp_dir("record-codec");
    let config = format!(
        "rtsp:\n  allow_any_publish: true\nstreams:\n  cam:\n\
         record:\n  path: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n  segment_duration: 60s\n  part_duration: 200ms\n  \
         delete_after: 0s\n  streams: [cam]\n",
        dir.display()
    );
    let server = Server::start(&config);
    let cam = dir.join("cam");
    let url = server.rtsp_url("cam");
    let publish = |size: &str, codec: &[&str]| {
        let pattern = format!("testsrc=size={size}:rate=25");
        let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", &pattern];
        args.extend(codec);
        args.extend(["-g", "25", "-pix_fmt", "yuv420p", "-t", "60", "-f", "rtsp", "-rtsp_transport", "tcp", &url]);
        Publisher::spawn("ffmpeg", &args)
    };
    let x264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"];
    let mut steps = Vec::new();
    for (size, codec) in [
        ("320x240", x264),
        ("160x120", x264),
        ("160x120", &["-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error"][..]),
    ] {
        let before = server.log().matches("segment created").count();
        let p = publish(size, codec);
        // Written for a while (the segment is 60 s: only a change starts another file).
        let grew = wait_until(Duration::from_secs(30), || {
            segments(&cam, "mp4").last().and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.len() > 50_000)
                && segments(&cam, "mp4").len() > steps.len()
        });
        assert!(grew, "{size}: {:?}\n{}", segments(&cam, "mp4"), server.log());
        std::thread::sleep(Duration::from_secs(3));
        drop(p);
        steps.push((size, before));
        // The next publisher comes back within the grace period (the same tracks, for the same codec).
        std::thread::sleep(Duration::from_millis(500));
    }
    std::thread::sleep(Duration::from_secs(2));
    let files = segments(&cam, "mp4");
    assert_eq!(files.len(), 3, "{files:?}\n{}", server.log());
    assert!(server.log().contains("the video parameters changed: new segment"), "{}", server.log());
    let expected = [["h264 320x240"], ["h264 160x120"], ["hevc 160x120"]];
    for (f, want) in files.iter().zip(expected) {
        let p = probe(f);
        assert_eq!(p.streams, want, "{}", f.display());
        assert!(p.errors.is_empty(), "{}: {}", f.display(), p.errors);
        assert!(p.duration >= 2.5 && p.frames >= 60, "{}: {p:?}", f.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}
