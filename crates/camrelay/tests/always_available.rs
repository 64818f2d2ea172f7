//! MediaMTX's `alwaysAvailable`: a reader of a path with no publisher gets the offline slate (a
//! 640x360 "camera offline" picture), switches to the publisher's picture when one publishes (ffmpeg,
//! 320x240), and back to the slate when it leaves — one ffmpeg reader, never reconnecting. Each
//! decoded frame's size (framecrc's size column: 640x360 or 320x240 in YUV 4:2:0) says whose it is.

mod common;

use common::*;
use std::io::BufRead;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SLATE_FRAME: u64 = 640 * 360 * 3 / 2;
const LIVE_FRAME: u64 = 320 * 240 * 3 / 2;

const CONFIG: &str = "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
    hls: no\nwebrtc: no\nrtmp: no\nsrt: no\n\
    paths:\n  cam:\n    source: publisher\n    alwaysAvailable: yes\n    alwaysAvailableTracks:\n    - codec: H264\n";

/// An ffmpeg reader whose decoded video frame sizes arrive on a channel (framecrc, no rescaling).
struct Reader {
    child: std::process::Child,
    sizes: mpsc::Receiver<u64>,
}

impl Reader {
    fn start(url: &str) -> Reader {
        let mut child = Command::new("ffmpeg")
            .args(["-v", "error", "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0", "-autoscale", "0"])
            .args(["-f", "framecrc", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        let out = child.stdout.take().unwrap();
        let (tx, sizes) = mpsc::channel();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                // `stream, dts, pts, duration, size, crc`
                let size = line.split(',').nth(4).and_then(|s| s.trim().parse::<u64>().ok());
                if let Some(size) = size {
                    if tx.send(size).is_err() {
                        break;
                    }
                }
            }
        });
        Reader { child, sizes }
    }

    /// Waits for `n` frames of `size` in a row, within `timeout`.
    fn frames_of(&self, size: u64, n: usize, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        let mut run = 0;
        while let Ok(s) = self.sizes.recv_timeout(end.saturating_duration_since(Instant::now())) {
            run = if s == size { run + 1 } else { 0 };
            if run >= n {
                return true;
            }
        }
        false
    }

    fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn the_slate_plays_until_a_publisher_comes_and_after_it_leaves() {
    let srv = Server::start(CONFIG);
    let url = srv.rtsp_url("cam");
    // No publisher: the path is readable, with the slate.
    let probed = ffprobe(&url, "tcp").expect("the always-available path is readable without a publisher");
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360), "{probed:?}");
    let mut reader = Reader::start(&url);
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
