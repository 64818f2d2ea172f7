//! Crash safety of recordings: a server killed with SIGKILL in the middle of a segment, its last
//! fragment torn, is recovered when it starts again (ffmpeg then decodes the file without an error);
//! and a full disk (a small tmpfs mounted in the server's own mount namespace) is a clear error in the
//! log and in `/api/streams` while another path records on, and recording resumes when space returns.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

fn mediamtx(paths: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: false\nwebrtc: false\nrtmp: false\nsrt: false\npaths:\n{paths}"
    )
}

/// (codecs, seconds, decoded video frames, what ffmpeg complained about while decoding all of it).
fn decode(file: &Path) -> (Vec<String>, f64, usize, String) {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name:format=duration,start_time", "-of", "json"])
            .arg(file),
        Duration::from_secs(20),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let num = |v: &serde_json::Value| v.as_str().and_then(|d| d.parse::<f64>().ok()).unwrap_or(0.0);
    let codecs = v["streams"]
        .as_array()
        .map(|s| s.iter().filter_map(|s| s["codec_name"].as_str().map(str::to_string)).collect())
        .unwrap_or_default();
    let decoded = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-i"]).arg(file).args(["-f", "framecrc", "-"]),
        Duration::from_secs(60),
    );
    let frames = String::from_utf8_lossy(&decoded.stdout).lines().filter(|l| l.starts_with("0,")).count();
    let errors = String::from_utf8_lossy(&out.stderr).into_owned() + &String::from_utf8_lossy(&decoded.stderr);
    (codecs, num(&v["format"]["duration"]) - num(&v["format"]["start_time"]), frames, errors)
}

/// The top-level boxes of an MP4 file: (type, offset, size).
fn boxes(data: &[u8]) -> Vec<(String, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        if size < 8 || pos + size > data.len() {
            break;
        }
        out.push((String::from_utf8_lossy(&data[pos + 4..pos + 8]).into_owned(), pos, size));
        pos += size;
    }
    out
}

#[test]
fn a_segment_torn_by_kill_9_is_recovered_at_the_next_start() {
    let dir = temp_dir("record-kill");
    let config = mediamtx(&format!(
        "  cam:\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 60s\n    \
         recordPartDuration: 200ms\n",
        dir.display()
    ));
    let cam = dir.join("cam");
    let mut server = Server::start(&config);
    let publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    let grew = wait_until(Duration::from_secs(30), || {
        segments(&cam, "mp4").first().and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.len() > 150_000)
    });
    assert!(grew, "{:?}\n{}", segments(&cam, "mp4"), server.log());
    server.kill();
    drop(publisher);
    let file = segments(&cam, "mp4").pop().unwrap();
    let data = std::fs::read(&file).unwrap();
    let list = boxes(&data);
    let kinds: Vec<&str> = list.iter().map(|(k, _, _)| k.as_str()).collect();
    assert_eq!(&kinds[..2], ["ftyp", "moov"], "{kinds:?}");
    assert!(kinds[2..].chunks(2).all(|c| c[0] == "moof" && c.get(1).is_none_or(|k| *k == "mdat")), "{kinds:?}");
    // What a kill in the middle of a write leaves: the last fragment cut short (half its mdat). The
    // whole fragments before it are what the recovery must keep.
    let last = list.iter().rposition(|(k, _, _)| k == "mdat").unwrap();
    let (_, mdat_at, mdat_size) = list[last].clone();
    assert_eq!(list[last - 1].0, "moof");
    let valid = list[last - 1].1 as u64;
    std::fs::write(&file, &data[..mdat_at + mdat_size / 2]).unwrap();
    let (_, _, _, torn_errors) = decode(&file);

    // The next start cuts the torn fragment off before recording again.
    let server = Server::start(&config);
    assert!(server.wait_log("recovered an interrupted segment", Duration::from_secs(30)), "{}", server.log());
    let line = server.log().lines().find(|l| l.contains("recovered an interrupted segment")).unwrap().to_string();
    assert!(line.contains(&file.display().to_string()), "{line}");
    assert_eq!(std::fs::metadata(&file).unwrap().len(), valid, "{line}");
    let (codecs, duration, frames, errors) = decode(&file);
    assert_eq!(codecs, ["h264", "aac"]);
    assert!(errors.is_empty(), "after recovery: {errors}\n(before: {torn_errors})");
    assert!(duration > 3.0, "{duration}");
    assert!(frames.abs_diff((duration * 25.0).round() as usize) <= 8, "{frames} frames in {duration} s");
    // And it records again, into a new segment.
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    assert!(wait_until(Duration::from_secs(30), || segments(&cam, "mp4").len() >= 2), "{}", server.log());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_full_disk_is_an_error_then_recording_resumes() {
    let dir = temp_dir("record-full");
    let mnt = dir.join("small");
    std::fs::create_dir_all(&mnt).unwrap();
    let config = mediamtx(&format!(
        "  full:\n    record: yes\n    recordPath: {m}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n    \
         recordPartDuration: 200ms\n    recordDeleteAfter: 0s\n\
         \x20 other:\n    record: yes\n    recordPath: {d}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n    \
         recordDeleteAfter: 0s\n",
        m = mnt.display(),
        d = dir.display()
    ));
    // A 4 MB tmpfs over `small`, in a mount namespace of the server's own: nothing leaks out.
    let mount = format!("mount -t tmpfs -o size=4m camrelay-test {} && exec \"$0\" \"$@\"", mnt.display());
    let server = Server::start_wrapped(
        &config,
        &[],
        &[],
        &["unshare", "--mount", "--propagation", "private", "sh", "-c", &mount],
    );
    // The test reaches the tmpfs through the server's root.
    let inside = PathBuf::from(format!("/proc/{}/root{}", server.pid(), mnt.display()));
    let full = inside.join("full");
    let other = dir.join("other");
    let _p1 = Publisher::start(&server.rtsp_url("full"), "tcp", "320x240", true);
    let _p2 = Publisher::start(&server.rtsp_url("other"), "tcp", "160x120", false);
    assert!(wait_until(Duration::from_secs(30), || segments(&full, "mp4").len() >= 2), "{}", server.log());
    assert!(segments(&mnt, "mp4").is_empty() && !mnt.join("full").exists(), "the tmpfs is not the server's alone");

    // Fill it, leaving a few kB.
    let filler = inside.join("filler");
    let _ = Command::new("dd")
        .args(["if=/dev/zero", &format!("of={}", filler.display()), "bs=64k"])
        .stderr(std::process::Stdio::null())
        .status();
    assert!(server.wait_log("disk full", Duration::from_secs(30)), "{}", server.log());
    let line = server.log().lines().find(|l| l.contains("disk full")).unwrap().to_string();
    assert!(line.contains("No space left on device") && line.contains("full") && line.contains("retrying"), "{line}");
    let state = server.http("GET", "/api/streams?src=full").json();
    let error = state["recording"]["error"].as_str().unwrap_or_default().to_string();
    assert!(error.starts_with("disk full: "), "{state}");
    // Not a crash: the other path records on, the full one still plays, the segments written are readable.
    let before = segments(&other, "mp4").len();
    assert!(wait_until(Duration::from_secs(30), || segments(&other, "mp4").len() >= before + 2), "{}", server.log());
    assert!(ffprobe(&server.rtsp_url("full"), "tcp").is_ok_and(|s| s.iter().any(|s| s.codec_name == "h264")));
    for f in segments(&full, "mp4") {
        let (codecs, duration, _, errors) = decode(&f);
        assert_eq!(codecs, ["h264", "aac"], "{}", f.display());
        assert!(errors.is_empty() && duration > 0.0, "{}: {errors}", f.display());
    }
    // Retried every 5 s, without a trail of empty files.
    let files_when_full = segments(&full, "mp4").len();
    std::thread::sleep(Duration::from_secs(6));
    assert!(segments(&full, "mp4").len() <= files_when_full + 1, "{:?}", segments(&full, "mp4"));

    // Space returns: recording resumes and the error goes.
    std::fs::remove_file(&filler).unwrap();
    let n = segments(&full, "mp4").len();
    assert!(wait_until(Duration::from_secs(30), || segments(&full, "mp4").len() >= n + 2), "{}", server.log());
    let state = server.http("GET", "/api/streams?src=full").json();
    assert!(state["recording"].get("error").is_none(), "{state}");
    let newest = segments(&full, "mp4");
    let (codecs, _, _, errors) = decode(&newest[newest.len() - 2]);
    assert_eq!(codecs, ["h264", "aac"]);
    assert!(errors.is_empty(), "{errors}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
