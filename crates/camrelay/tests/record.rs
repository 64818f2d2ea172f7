//! MediaMTX's recorder: ffmpeg publishes H.264 + AAC over RTSP into `record: yes` paths; ffprobe reads
//! every segment file (codecs, size, duration ≈ `recordSegmentDuration`), ffmpeg's concat demuxer
//! decodes them in a row, `/v3/recordings` lists and deletes them, a `kill -9` of the server leaves
//! a readable segment, `recordDeleteAfter` removes old segments, and an unwritable `recordPath` is
//! a clear log line while another path records and plays.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// MediaMTX's listeners on free loopback ports and `paths` (a YAML block indented by two).
fn mediamtx(paths: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: false\nwebrtc: false\nrtmp: false\nsrt: false\npaths:\n{paths}"
    )
}

struct Probed {
    codecs: Vec<String>,
    width: u64,
    height: u64,
    duration: f64,
}

fn number(v: &serde_json::Value) -> f64 {
    v.as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0)
}

fn probe_file(file: &Path) -> Result<Probed, String> {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name,width,height:format=duration,start_time"])
            .args(["-of", "json"])
            .arg(file),
        Duration::from_secs(20),
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    let streams = v["streams"].as_array().cloned().unwrap_or_default();
    let video = streams.iter().find(|s| s["width"].as_u64().is_some());
    Ok(Probed {
        codecs: streams.iter().filter_map(|s| s["codec_name"].as_str().map(str::to_string)).collect(),
        width: video.and_then(|s| s["width"].as_u64()).unwrap_or(0),
        height: video.and_then(|s| s["height"].as_u64()).unwrap_or(0),
        // Segments continue the recording's timeline (a file starts where the previous one ended):
        // ffprobe gives an MP4's end as its duration, a TS file's span.
        duration: if file.extension().is_some_and(|e| e == "ts") {
            number(&v["format"]["duration"])
        } else {
            number(&v["format"]["duration"]) - number(&v["format"]["start_time"])
        },
    })
}

/// `name=2026-12-05_02-53-40-000123.mp4`: what the default-shaped template gives.
fn named_by_pattern(file: &Path) -> bool {
    let name = file.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let b = name.as_bytes();
    name.len() == "2026-12-05_02-53-40-000123.mp4".len()
        && name.ends_with(".mp4")
        && b.iter().enumerate().all(|(i, c)| match i {
            4 | 7 | 13 | 16 | 19 => *c == b'-',
            10 => *c == b'_',
            26 => *c == b'.',
            i if i > 26 => true,
            _ => c.is_ascii_digit(),
        })
}

#[test]
fn records_segments_that_ffmpeg_reads_lists_them_and_survives_kill_9() {
    let dir = temp_dir("record");
    let config = mediamtx(&format!(
        "  cam:\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 2s\n    recordPartDuration: 200ms\n",
        dir.display()
    ));
    let mut server = Server::start(&config);
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    let cam = dir.join("cam");
    // Three files: the first two are complete.
    let recorded = wait_until(Duration::from_secs(30), || segments(&cam, "mp4").len() >= 3);
    assert!(recorded, "no segments in {}: {:?}\n{}", cam.display(), segments(&cam, "mp4"), server.log());
    let files = segments(&cam, "mp4");
    let complete = &files[..files.len() - 1];
    for f in &files {
        assert!(named_by_pattern(f), "{} is not named by %Y-%m-%d_%H-%M-%S-%f", f.display());
    }
    for f in complete {
        let p = probe_file(f).unwrap_or_else(|e| panic!("ffprobe {}: {e}", f.display()));
        assert_eq!(p.codecs, vec!["h264".to_string(), "aac".to_string()], "{}", f.display());
        assert_eq!((p.width, p.height), (320, 240));
        // Cut at the first keyframe (every second) after 2 s.
        assert!((1.9..=3.1).contains(&p.duration), "{}: {} s", f.display(), p.duration);
    }

    // The complete segments decode in a row with ffmpeg's concat demuxer, without timestamp complaints.
    let list = dir.join("list.txt");
    let text: String = complete.iter().map(|f| format!("file '{}'\n", f.display())).collect();
    std::fs::write(&list, text).unwrap();
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "warning", "-f", "concat", "-safe", "0", "-i"])
            .arg(&list)
            .args(["-f", "framecrc", "-"]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "concat failed: {stderr}");
    for bad in ["Non-monotonic", "non monotonically", "DTS", "timestamp", "Invalid"] {
        assert!(!stderr.contains(bad), "concat: {stderr}");
    }
    let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| l.starts_with("0,")).count();
    // 25 fps, a keyframe every second: each segment is cut at 2 s, so 50 frames each, none lost or doubled.
    let expected = 50 * complete.len();
    assert!(frames.abs_diff(expected) <= 2, "{frames} video frames decoded, {expected} expected");

    // /v3/recordings: the path with its segments, by start time.
    let listed = server.http("GET", "/v3/recordings/list").json();
    assert_eq!(listed["itemCount"], 1, "{listed}");
    assert_eq!(listed["items"][0]["name"], "cam");
    let starts: Vec<String> = listed["items"][0]["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["start"].as_str().unwrap().to_string())
        .collect();
    assert!(starts.len() >= 3, "{listed}");
    let got = server.http("GET", "/v3/recordings/get/cam").json();
    assert_eq!(got["name"], "cam");
    assert!(got["segments"].as_array().unwrap().len() >= 3);
    assert_eq!(server.http("GET", "/v3/recordings/get/nope").status, 404);
    // The first segment's start is its file name's time.
    let first = files[0].file_stem().unwrap().to_str().unwrap().to_string();
    let b = &first;
    let expected = format!("{}T{}:{}:{}.{}Z", &b[..10], &b[11..13], &b[14..16], &b[17..19], &b[20..26]);
    assert_eq!(
        starts[0].trim_end_matches('Z').trim_end_matches('0'),
        expected.trim_end_matches('Z').trim_end_matches('0')
    );
    let del = server.http("DELETE", &format!("/v3/recordings/deletesegment?path=cam&start={}", starts[0]));
    assert_eq!(del.status, 200, "{}", del.text());
    assert!(!files[0].exists(), "deleted segment still on disk");
    let again = server.http("DELETE", &format!("/v3/recordings/deletesegment?path=cam&start={}", starts[0]));
    assert_eq!(again.status, 404);
    assert_eq!(server.http("DELETE", "/v3/recordings/deletesegment?path=cam&start=yesterday").status, 400);

    // kill -9 in the middle of a segment: what was written is a readable file.
    let before = segments(&cam, "mp4").len();
    assert!(wait_until(Duration::from_secs(30), || segments(&cam, "mp4").len() > before));
    std::thread::sleep(Duration::from_millis(1200));
    server.kill();
    let last = segments(&cam, "mp4").pop().unwrap();
    let p = probe_file(&last).unwrap_or_else(|e| panic!("ffprobe of the killed segment {}: {e}", last.display()));
    assert_eq!(p.codecs, vec!["h264".to_string(), "aac".to_string()]);
    assert!(p.duration >= 0.5, "{}: {} s", last.display(), p.duration);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn unwritable_record_path_is_logged_while_others_record_and_old_segments_go() {
    let dir = temp_dir("record-bad");
    // A file where the directory should be: no directory can be made there (even as root).
    std::fs::write(dir.join("blocker"), b"not a directory").unwrap();
    let config = mediamtx(&format!(
        "  bad:\n    record: yes\n    recordPath: {d}/blocker/%path/%s\n\
         \x20 good:\n    record: yes\n    recordPath: {d}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n    recordDeleteAfter: 3s\n",
        d = dir.display()
    ));
    let server = Server::start(&config);
    let _bad = Publisher::start(&server.rtsp_url("bad"), "tcp", "160x120", true);
    let _good = Publisher::start(&server.rtsp_url("good"), "tcp", "160x120", true);
    let logged = server.wait_log("creating directory", Duration::from_secs(30));
    assert!(logged, "no error about the record directory:\n{}", server.log());
    let line = server.log().lines().find(|l| l.contains("creating directory")).unwrap().to_string();
    assert!(line.contains("blocker") && line.contains("retrying"), "{line}");
    assert!(line.contains("bad"), "the line names the path: {line}");
    // The server is up, the path plays and the other path records.
    let probed = ffprobe(&server.rtsp_url("bad"), "tcp").expect("the unrecorded path still plays");
    assert!(probed.iter().any(|s| s.codec_name == "h264"));
    let good = dir.join("good");
    assert!(wait_until(Duration::from_secs(30), || segments(&good, "mp4").len() >= 2), "{}", server.log());
    let first = segments(&good, "mp4")[0].clone();
    // recordDeleteAfter: 3s: the first segment goes, newer ones stay.
    assert!(
        wait_until(Duration::from_secs(30), || !first.exists()),
        "{} never deleted:\n{}",
        first.display(),
        server.log()
    );
    assert!(!segments(&good, "mp4").is_empty());
    // Logged once the file is gone: wait for the line.
    assert!(server.wait_log("segment deleted (recordDeleteAfter)", Duration::from_secs(30)), "{}", server.log());
    // Still retrying, still no crash.
    assert!(server.http("GET", "/v3/paths/list").status == 200);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `pathDefaults: record: yes` with `all_others`, MediaMTX's usual setup: a path a publisher creates is
/// recorded while it exists, and its recorder stops with it.
#[test]
fn publisher_paths_of_all_others_are_recorded_while_they_exist() {
    let dir = temp_dir("record-all");
    // runOnRecordSegmentCreate / Complete write what they were given to hooks.txt.
    let script = dir.join("hook.sh");
    let out = dir.join("hooks.txt");
    std::fs::write(
        &script,
        format!("echo \"$1 $MTX_PATH $MTX_SEGMENT_PATH $MTX_SEGMENT_DURATION\" >> {}\n", out.display()),
    )
    .unwrap();
    let config = format!(
        "pathDefaults:\n  record: yes\n  recordPath: {d}/%path/%Y-%m-%d_%H-%M-%S-%f\n  recordSegmentDuration: 1s\n  \
         runOnRecordSegmentCreate: sh {s} create\n  runOnRecordSegmentComplete: sh {s} complete\n{m}",
        d = dir.display(),
        s = script.display(),
        m = mediamtx("  all_others:\n")
    );
    let server = Server::start(&config);
    let publisher = Publisher::start(&server.rtsp_url("site/door"), "tcp", "160x120", false);
    let door = dir.join("site").join("door");
    assert!(wait_until(Duration::from_secs(30), || segments(&door, "mp4").len() >= 2), "{}", server.log());
    let first = segments(&door, "mp4")[0].clone();
    let p = probe_file(&first).unwrap_or_else(|e| panic!("ffprobe {}: {e}", first.display()));
    assert_eq!(p.codecs, vec!["h264".to_string()]);
    assert_eq!((p.width, p.height), (160, 120));
    drop(publisher);
    let stopped = server.wait_log("recording stopped", Duration::from_secs(30));
    assert!(stopped, "the recorder of site/door outlived its stream:\n{}", server.log());
    let listed = server.http("GET", "/v3/recordings/get/site/door").json();
    assert!(listed["segments"].as_array().is_some_and(|s| s.len() >= 2), "{listed}");
    // Every segment file was announced when created and when complete, with its duration.
    let files = segments(&door, "mp4");
    let hooks_ran = wait_until(Duration::from_secs(30), || {
        let text = std::fs::read_to_string(&out).unwrap_or_default();
        files.iter().all(|f| {
            let f = f.display().to_string();
            text.lines().any(|l| l == format!("create site/door {f} "))
                && text.lines().any(|l| {
                    l.strip_prefix(&format!("complete site/door {f} "))
                        .and_then(|d| d.parse::<f64>().ok())
                        .is_some_and(|d| d > 0.0 && d < 3.0)
                })
        })
    });
    assert!(hooks_ran, "{:?}\n{}", std::fs::read_to_string(&out), server.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// A literal `record: yes` path is recorded from the server's start (before the config watcher's first
/// pass): its recorder reports segments to `runOnRecordSegmentCreate` too (it once started without the
/// hooks, so neither the hook nor the playback index heard of its segments).
#[test]
fn literal_record_paths_announce_their_segments() {
    let dir = temp_dir("record-literal-hooks");
    let script = dir.join("hook.sh");
    let out = dir.join("hooks.txt");
    std::fs::write(&script, format!("echo \"$1 $MTX_PATH $MTX_SEGMENT_PATH\" >> {}\n", out.display())).unwrap();
    let config = mediamtx(&format!(
        "  cam:\n    record: yes\n    recordPath: {d}/%path/%s-%f\n    recordSegmentDuration: 1s\n    \
         runOnRecordSegmentCreate: sh {s} create\n",
        d = dir.display(),
        s = script.display()
    ));
    let server = Server::start(&config);
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "160x120", false);
    let cam = dir.join("cam");
    assert!(wait_until(Duration::from_secs(30), || segments(&cam, "mp4").len() >= 2), "{}", server.log());
    let first = segments(&cam, "mp4")[0].display().to_string();
    let announced = wait_until(Duration::from_secs(30), || {
        std::fs::read_to_string(&out).unwrap_or_default().lines().any(|l| l == format!("create cam {first}"))
    });
    assert!(announced, "{:?}\n{}", std::fs::read_to_string(&out), server.log());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `recordFormat: mpegts`: `.ts` segments ffprobe reads; a SIGTERM writes the part in progress (here
/// longer than a segment, so nothing but the stop writes it) before the server exits.
#[test]
fn mpegts_segments_and_a_clean_stop_finishes_the_last_one() {
    let dir = temp_dir("record-ts");
    let config = mediamtx(&format!(
        "  cam:\n    record: yes\n    recordFormat: mpegts\n    recordPath: {}/%path/%s-%f\n    \
         recordSegmentDuration: 2s\n    recordPartDuration: 10s\n",
        dir.display()
    ));
    let mut server = Server::start(&config);
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "160x120", true);
    let cam = dir.join("cam");
    assert!(wait_until(Duration::from_secs(30), || segments(&cam, "ts").len() >= 2), "{}", server.log());
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(server.terminate(), Some(0), "{}", server.log());
    let files = segments(&cam, "ts");
    for (i, f) in files.iter().enumerate() {
        let p = probe_file(f).unwrap_or_else(|e| panic!("ffprobe {}: {e}", f.display()));
        assert_eq!(p.codecs, vec!["h264".to_string(), "aac".to_string()], "{}", f.display());
        if i + 1 < files.len() {
            assert!((1.9..=3.1).contains(&p.duration), "{}: {} s", f.display(), p.duration);
        } else {
            // Without the stop's flush the last file has no frames at all (its part is 10 s); 1.2 s were
            // sent, less when the machine is loaded (0.52 s under a parallel build).
            assert!(p.duration >= 0.3, "the stop lost the last part: {}: {} s", f.display(), p.duration);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
