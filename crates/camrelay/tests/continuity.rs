//! Readers that survive their publisher: ffmpeg publishes over RTSP, an ffmpeg reader decodes, the
//! publisher is killed and a new one starts; the same reader process keeps decoding frames from the
//! new publisher without reconnecting (`hub.publisher_grace`). Without a publisher coming back, the
//! reader ends once the grace is over.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn a_reader_keeps_decoding_across_a_publisher_restart() {
    let srv = Server::start("hub:\n  publisher_grace: 10s\nstreams:\n  cam:\n");
    let url = srv.rtsp_url("cam");
    let first = Publisher::start(&url, "tcp", "320x240", true);
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "{}", srv.log());
    let mut reader = FrameCrcReader::start(&url);
    let first_frames = reader.frames_up_to(25, Duration::from_secs(30));
    assert!(first_frames >= 25, "the reader decodes the first publisher: {first_frames} frames\n{}", srv.log());

    drop(first);
    assert!(srv.wait_log("publisher left: its readers wait", Duration::from_secs(30)), "{}", srv.log());
    // Drain what was decoded before the publisher went.
    reader.frames_within(Duration::from_millis(500));
    assert!(!reader.exited(), "the reader is still connected while no publisher is there");

    let _second = Publisher::start(&url, "tcp", "320x240", true);
    assert!(srv.wait_log("publisher came back: its readers go on", Duration::from_secs(30)), "{}", srv.log());
    let after = reader.frames_up_to(40, Duration::from_secs(30));
    assert!(after >= 40, "the same reader decodes the second publisher: {after} frames in 30 s\n{}", srv.log());
    assert!(!reader.exited(), "no reconnect: the same ffmpeg process reads on");
    // One RTSP reader session throughout: it never reconnected.
    let readers = srv.http("GET", "/api/streams?src=cam").json()["consumers"].as_array().map_or(0, Vec::len);
    assert_eq!(readers, 1, "{}", srv.http("GET", "/api/streams?src=cam").text());
}

#[test]
fn without_a_publisher_coming_back_the_reader_ends_after_the_grace() {
    let srv = Server::start("hub:\n  publisher_grace: 2s\nstreams:\n  cam:\n");
    let url = srv.rtsp_url("cam");
    let first = Publisher::start(&url, "tcp", "320x240", false);
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "{}", srv.log());
    let mut reader = FrameCrcReader::start(&url);
    assert!(reader.frames_up_to(1, Duration::from_secs(30)) > 0, "the reader decodes\n{}", srv.log());
    let left = Instant::now();
    drop(first);
    assert!(srv.wait_log("no publisher came back: its readers end", Duration::from_secs(30)), "{}", srv.log());
    assert!(left.elapsed() >= Duration::from_secs(2), "ended before the grace");
    assert!(wait_until(Duration::from_secs(30), || reader.exited()), "the reader was not ended");
}
