//! Readers that follow a picture-size change (issue 19): a publisher is replaced within the hub's
//! `publisher_grace` by one with another resolution, and readers connected before keep their
//! connection and decode frames of both sizes: progressive fMP4 over HTTP (`/api/stream.mp4`, the
//! muxer MSE shares: a new init segment in the stream) and RTMP (a new AVC sequence header), each read
//! by an ffmpeg that never reconnects (`-autoscale 0`: frames at their decoded size).

mod common;

use common::*;
use std::time::Duration;

/// Decoded yuv420p frame sizes: 320x240 and 640x480.
const SMALL: u64 = 320 * 240 * 3 / 2;
const LARGE: u64 = 640 * 480 * 3 / 2;

#[test]
fn mp4_and_rtmp_readers_follow_a_new_publishers_picture_size() {
    let srv = Server::start("hub:\n  publisher_grace: 10s\nrtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let url = srv.rtsp_url("cam");
    let first = Publisher::start(&url, "tcp", "320x240", false);
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "{}", srv.log());
    let mp4_url = format!("http://{}/api/stream.mp4?src=cam", srv.api.unwrap());
    let rtmp_url = format!("rtmp://{}/cam", srv.rtmp_addr());
    let mut mp4 = FrameCrcReader::start_input(&["-i", &mp4_url]);
    let mut rtmp = FrameCrcReader::start_input(&["-i", &rtmp_url]);
    // The raw bytes of another stream.mp4 reader, for the init segments in them.
    let raw = srv.dir.join("raw.mp4");
    let curl = Publisher::spawn("curl", &["-s", "-N", "--max-time", "60", "-o", raw.to_str().unwrap(), &mp4_url]);
    assert!(mp4.frames_of(SMALL, 25, Duration::from_secs(30)), "stream.mp4 decodes 320x240\n{}", srv.log());
    assert!(rtmp.frames_of(SMALL, 25, Duration::from_secs(30)), "RTMP decodes 320x240\n{}", srv.log());

    drop(first);
    assert!(srv.wait_log("publisher left: its readers wait", Duration::from_secs(30)), "{}", srv.log());
    let _second = Publisher::start(&url, "tcp", "640x480", false);
    assert!(srv.wait_log("publisher came back: its readers go on", Duration::from_secs(30)), "{}", srv.log());
    assert!(mp4.frames_of(LARGE, 25, Duration::from_secs(30)), "stream.mp4 decodes 640x480\n{}", srv.log());
    assert!(rtmp.frames_of(LARGE, 25, Duration::from_secs(30)), "RTMP decodes 640x480\n{}", srv.log());
    assert!(!mp4.exited() && !rtmp.exited(), "no reconnect: the same ffmpeg processes read on");
    // What MSE needs: a second init segment (ftyp + moov) in the same byte stream, for 640x480.
    drop(curl);
    let bytes = std::fs::read(&raw).unwrap();
    let widths = avc1_sizes(&bytes);
    assert_eq!(widths, [(320, 240), (640, 480)], "{} bytes", bytes.len());
    let consumers = srv.http("GET", "/api/streams?src=cam").json()["consumers"].as_array().map_or(0, Vec::len);
    assert_eq!(consumers, 2, "the two readers, each one session throughout");
}

/// The picture size of each `avc1` sample entry in `data`, in order: one per init segment.
fn avc1_sizes(data: &[u8]) -> Vec<(u16, u16)> {
    let at = |i: usize| u16::from_be_bytes([data[i], data[i + 1]]);
    (0..data.len().saturating_sub(40))
        .filter(|&i| &data[i..i + 4] == b"avc1" && data[i + 4..i + 10] == [0; 6] && at(i + 10) == 1)
        .map(|i| (at(i + 28), at(i + 30)))
        .collect()
}
