//! Progressive HTTP outputs read by ffprobe: stream.mp4, stream.ts, stream.flv, stream.aac, frame.mp4.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// ffprobe's codecs, dimensions and decoded frame counts for a URL or file.
fn probe_counts(input: &str) -> Vec<(String, String, u64, u64)> {
    let out = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
            "stream=codec_type,codec_name,width,nb_read_frames",
            "-of",
            "json",
            input,
        ]),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
                s["width"].as_u64().unwrap_or(0),
                s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
            )
        })
        .collect()
}

fn find<'a>(streams: &'a [(String, String, u64, u64)], kind: &str) -> &'a (String, String, u64, u64) {
    streams.iter().find(|s| s.0 == kind).unwrap_or_else(|| panic!("no {kind} stream in {streams:?}"))
}

#[test]
fn stream_mp4_ts_flv_play_in_ffprobe() {
    let srv = Server::start("");
    for ext in ["mp4", "ts", "flv"] {
        let streams = probe_counts(&srv.api_url(&format!("/api/stream.{ext}?src=demo&duration=3")));
        let video = find(&streams, "video");
        assert_eq!((video.1.as_str(), video.2), ("h264", 640), "{ext}: {streams:?}");
        // 3 s of 25 fps, plus the GOP cache's head start.
        assert!(video.3 >= 60, "{ext}: {} video frames", video.3);
        let audio = find(&streams, "audio");
        assert_eq!(audio.1, "aac", "{ext}");
        assert!(audio.3 >= 100, "{ext}: {} audio frames", audio.3);
    }
}

#[test]
fn stream_mp4_filters_and_filename() {
    let srv = Server::start("");
    let r =
        http_request(srv.api.unwrap(), "GET", "/api/stream.mp4?src=demo&video&duration=1&filename=clip.mp4", &[], b"");
    assert_eq!(r.status, 200);
    assert!(r.headers.to_ascii_lowercase().contains("content-disposition: attachment; filename=\"clip.mp4\""));
    let path = srv.dir.join("clip.mp4");
    std::fs::write(&path, &r.body).unwrap();
    let streams = probe_counts(path.to_str().unwrap());
    assert_eq!(streams.len(), 1, "?video gives video only: {streams:?}");
    assert_eq!(streams[0].1, "h264");
    assert_eq!(srv.http("GET", "/api/stream.mp4?src=demo&video=h265").status, 404);
    assert_eq!(srv.http("GET", "/api/stream.mp4?src=nope").status, 404);
    assert_eq!(srv.http("GET", "/api/stream.mp4").status, 400);
}

#[test]
fn stream_aac_is_adts() {
    let srv = Server::start("");
    let streams = probe_counts(&srv.api_url("/api/stream.aac?src=demo&duration=2"));
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0].1, "aac");
    assert!(streams[0].3 >= 80, "{streams:?}");
}

#[test]
fn frame_mp4_is_one_decodable_keyframe() {
    let srv = Server::start("");
    let started = Instant::now();
    let r = srv.http("GET", "/api/frame.mp4?src=demo");
    eprintln!("frame.mp4 answered in {:?} (source started on demand)", started.elapsed());
    assert_eq!(r.status, 200);
    let path = srv.dir.join("frame.mp4");
    std::fs::write(&path, &r.body).unwrap();
    let streams = probe_counts(path.to_str().unwrap());
    assert_eq!(streams, vec![("video".to_string(), "h264".to_string(), 640, 1)]);
}

/// Time from request to the first decodable frame for stream.mp4: the GOP cache serves the keyframe at
/// once. Printed for the record, not asserted.
#[test]
fn stream_mp4_first_bytes_come_from_the_gop_cache() {
    let srv = Server::start("");
    // Warm the source up so the GOP cache holds a keyframe.
    let _ = srv.http("GET", "/api/frame.mp4?src=demo");
    let started = Instant::now();
    let r = http_request(srv.api.unwrap(), "GET", "/api/stream.mp4?src=demo&duration=0.2", &[], b"");
    let took = started.elapsed();
    assert_eq!(r.status, 200);
    assert_eq!(&r.body[4..8], b"ftyp", "starts with the init segment");
    let moof = r.body.windows(4).position(|w| w == b"moof").expect("a fragment");
    assert!(moof > 8);
    eprintln!("stream.mp4: 0.2 s of media delivered {took:?} after the request");
}

/// An HTTP client that asks for stream.mp4 and never reads: its queue drops (counted in the API) and a
/// normal reader of the same stream is not slowed.
#[test]
fn http_client_that_never_reads_drops_frames_without_slowing_others() {
    use std::io::Write;
    let srv = Server::start("hub:\n  reader_queue: 16\nstreams:\n  noise:\n");
    let _publisher = NoisePublisher::start(&srv.rtsp_url("noise"));
    assert!(srv.wait_log("publisher recording", Duration::from_secs(20)), "{}", srv.log());
    let mut stalled = std::net::TcpStream::connect(srv.api.unwrap()).unwrap();
    stalled.write_all(b"GET /api/stream.mp4?src=noise HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let dropped = || {
        let info = srv.http("GET", "/api/streams?src=noise").json();
        info["consumers"]
            .as_array()
            .map(|c| c.iter().filter_map(|r| r["dropped"].as_u64()).max().unwrap_or(0))
            .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(30), || dropped() > 0), "the stalled HTTP client's drops are counted");
    let started = Instant::now();
    assert_eq!(decode_video_frames(&srv.rtsp_url("noise"), "tcp", 75).unwrap(), 75);
    eprintln!("a normal reader decoded 75 frames in {:?} beside the stalled client", started.elapsed());
    drop(stalled);
}
