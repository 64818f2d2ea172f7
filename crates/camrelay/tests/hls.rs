//! HLS output (`/api/stream.m3u8`, TS and fMP4 segments) read by ffprobe/ffmpeg, plus the playlists'
//! tags and the session API's answers to bad input.

mod common;

use common::*;
use std::process::Command;
use std::time::{Duration, Instant};

/// The tags and URIs of a playlist.
#[derive(Debug, Default)]
struct Playlist {
    version: Option<u32>,
    target: Option<u32>,
    sequence: Option<u64>,
    map: Option<String>,
    /// (EXTINF duration, URI)
    segments: Vec<(f64, String)>,
    stream_inf: Option<String>,
    variant: Option<String>,
}

fn parse(text: &str) -> Playlist {
    assert!(text.starts_with("#EXTM3U\n"), "not a playlist: {text}");
    let mut p = Playlist::default();
    let mut pending: Option<f64> = None;
    for line in text.lines().skip(1) {
        if let Some(v) = line.strip_prefix("#EXT-X-VERSION:") {
            p.version = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            p.sequence = v.parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-MAP:URI=") {
            p.map = Some(v.trim_matches('"').to_string());
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            pending = v.trim_end_matches(',').parse().ok();
        } else if let Some(v) = line.strip_prefix("#EXT-X-STREAM-INF:") {
            p.stream_inf = Some(v.to_string());
        } else if !line.starts_with('#') && !line.is_empty() {
            match pending.take() {
                Some(d) => p.segments.push((d, line.to_string())),
                None => p.variant = Some(line.to_string()),
            }
        }
    }
    p
}

/// `GET /api/stream.m3u8?...`: the master playlist and the session's media playlist URL (below `/api/`),
/// with the time from the master request until the media playlist lists a segment.
fn open(srv: &Server, query: &str) -> (Playlist, String, Duration) {
    let t0 = Instant::now();
    let master = srv.http("GET", &format!("/api/stream.m3u8?{query}"));
    assert_eq!(master.status, 200, "{}", master.text());
    assert!(master.headers.to_ascii_lowercase().contains("content-type: application/vnd.apple.mpegurl"));
    let m = parse(&master.text());
    let variant = m.variant.clone().expect("variant URI");
    assert!(variant.starts_with("hls/playlist.m3u8?id="), "relative URI: {variant}");
    let media = format!("/api/{variant}");
    let first = srv.http("GET", &media);
    assert_eq!(first.status, 200, "{}", first.text());
    let elapsed = t0.elapsed();
    assert!(!parse(&first.text()).segments.is_empty(), "playlist waits for the first segment: {}", first.text());
    (m, media, elapsed)
}

/// `n` of a segment URI (`segment.ts?id=..&n=5`).
fn seg_n(uri: &str) -> u64 {
    uri.rsplit("n=").next().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("no n= in {uri}"))
}

/// ffprobe's (codec_type, codec_name, width, height, frames read) per stream.
fn probe(input: &str, extra: &[&str]) -> Vec<(String, String, u64, u64, u64)> {
    let mut args = vec!["-v", "error", "-count_frames"];
    args.extend_from_slice(extra);
    args.extend(["-show_entries", "stream=codec_type,codec_name,width,height,nb_read_frames", "-of", "json", input]);
    let out = run_with_timeout(Command::new("ffprobe").args(&args), Duration::from_secs(40));
    assert!(out.status.success(), "ffprobe {input}: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| {
            (
                s["codec_type"].as_str().unwrap_or("").to_string(),
                s["codec_name"].as_str().unwrap_or("").to_string(),
                s["width"].as_u64().unwrap_or(0),
                s["height"].as_u64().unwrap_or(0),
                s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
            )
        })
        .collect()
}

type Probed = (String, String, u64, u64, u64);

fn find<'a>(streams: &'a [Probed], kind: &str) -> &'a Probed {
    streams.iter().find(|s| s.0 == kind).unwrap_or_else(|| panic!("no {kind} stream in {streams:?}"))
}

/// HLS readers of the demo stream, as `/api/streams` lists them.
fn hls_consumers(srv: &Server) -> usize {
    let v = srv.http("GET", "/api/streams?src=demo").json();
    v["consumers"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|c| c["protocol"].as_str().is_some_and(|p| p.starts_with("hls"))).count())
}

#[test]
fn ts_playlists_segments_and_ffprobe() {
    let srv = Server::start("");
    let (master, media, ttfs) = open(&srv, "src=demo");
    println!("HLS/TS: stream.m3u8 request to first segment listed (cold source): {ttfs:?}");
    // With the source already running, the reader starts at the GOP cache's keyframe.
    let (_, _, warm) = open(&srv, "src=demo");
    println!("HLS/TS: stream.m3u8 request to first segment listed (source running): {warm:?}");
    let inf = master.stream_inf.unwrap();
    assert!(inf.contains("BANDWIDTH="), "{inf}");
    // Default TS: H.264 without audio (go2rtc's legacy HLS/TS).
    assert!(inf.contains("CODECS=\"avc1."), "{inf}");
    assert!(!inf.contains("mp4a"), "{inf}");

    let p = parse(&srv.http("GET", &media).text());
    assert_eq!(p.version, Some(3));
    assert!(p.map.is_none());
    assert!(p.target.is_some_and(|t| t >= 1));
    for (d, uri) in &p.segments {
        // The demo has a 1 s GOP: a cut at each keyframe once ≥ 1 s accumulated gives 1 s segments.
        assert!((0.95..=1.05).contains(d), "segment duration {d}");
        assert!(uri.starts_with("segment.ts?id="), "relative URI: {uri}");
        assert!(p.target.unwrap() as f64 >= d.round());
    }
    assert_eq!(p.sequence, Some(seg_n(&p.segments[0].1)));

    // One segment alone decodes: PAT/PMT and a keyframe first.
    let (_, uri) = p.segments.last().unwrap();
    let seg = srv.http("GET", &format!("/api/hls/{uri}"));
    assert_eq!(seg.status, 200);
    assert!(seg.headers.to_ascii_lowercase().contains("content-type: video/mp2t"));
    let file = srv.dir.join("seg.ts");
    std::fs::write(&file, &seg.body).unwrap();
    let streams = probe(file.to_str().unwrap(), &[]);
    let v = find(&streams, "video");
    assert_eq!((v.1.as_str(), v.2, v.3), ("h264", 640, 360), "{streams:?}");
    assert!(v.4 >= 20, "{} frames in a 1 s segment", v.4);
    assert!(streams.iter().all(|s| s.0 != "audio"), "{streams:?}");

    // The window slides: the media sequence grows as segments are cut (the playlist lists 6).
    let first_seq = p.sequence.unwrap();
    let mut last = first_seq;
    assert!(
        wait_until(Duration::from_secs(30), || {
            let p = parse(&srv.http("GET", &media).text());
            last = p.sequence.unwrap_or(0);
            assert!(p.segments.len() <= 6, "{p:?}");
            last > first_seq
        }),
        "media sequence stayed at {last}"
    );

    // A real HLS client: ffprobe follows master → media playlist → segments.
    let url = srv.api_url("/api/stream.m3u8?src=demo");
    let streams = probe(&url, &["-read_intervals", "%+3"]);
    let v = find(&streams, "video");
    assert_eq!((v.1.as_str(), v.2, v.3), ("h264", 640, 360), "{streams:?}");
    assert!(v.4 > 0, "{streams:?}");
}

#[test]
fn fmp4_playlists_segments_and_ffprobe() {
    let srv = Server::start("");
    let (master, media, ttfs) = open(&srv, "src=demo&mp4");
    println!("HLS/fMP4: stream.m3u8 request to first segment listed (cold source): {ttfs:?}");
    let inf = master.stream_inf.unwrap();
    assert!(inf.contains("CODECS=\"avc1.") && inf.contains("mp4a.40.2"), "{inf}");

    let p = parse(&srv.http("GET", &media).text());
    assert_eq!(p.version, Some(6));
    let map = p.map.clone().expect("#EXT-X-MAP");
    assert!(map.starts_with("init.mp4?id="), "{map}");
    for (d, uri) in &p.segments {
        assert!((0.95..=1.05).contains(d), "segment duration {d}");
        assert!(uri.starts_with("segment.m4s?id="), "{uri}");
    }
    let init = srv.http("GET", &format!("/api/hls/{map}"));
    assert_eq!(init.status, 200);
    assert_eq!(&init.body[4..8], b"ftyp");
    let seg = srv.http("GET", &format!("/api/hls/{}", p.segments.last().unwrap().1));
    assert_eq!(seg.status, 200);
    assert!(seg.headers.to_ascii_lowercase().contains("content-type: video/iso.segment"));
    assert_eq!(&seg.body[4..8], b"moof");
    let file = srv.dir.join("seg.mp4");
    std::fs::write(&file, [init.body, seg.body].concat()).unwrap();
    let streams = probe(file.to_str().unwrap(), &[]);
    let v = find(&streams, "video");
    assert_eq!((v.1.as_str(), v.2, v.3), ("h264", 640, 360), "{streams:?}");
    assert!(v.4 >= 20, "{} frames in a 1 s segment", v.4);
    let a = find(&streams, "audio");
    assert_eq!(a.1, "aac");
    assert!(a.4 >= 30, "{} AAC frames in a 1 s segment", a.4);

    let url = srv.api_url("/api/stream.m3u8?src=demo&mp4");
    let streams = probe(&url, &["-read_intervals", "%+3"]);
    let v = find(&streams, "video");
    assert_eq!((v.1.as_str(), v.2, v.3), ("h264", 640, 360), "{streams:?}");
    assert!(v.4 > 0, "{streams:?}");
    let a = find(&streams, "audio");
    assert_eq!(a.1, "aac", "{streams:?}");
    assert!(a.4 > 0, "{streams:?}");
}

/// ffmpeg plays 3 s of HLS/fMP4 and decodes every frame (a stricter client than ffprobe's count).
#[test]
fn ffmpeg_decodes_hls_fmp4() {
    let srv = Server::start("");
    let d = decode_av(&srv.api_url("/api/stream.m3u8?src=demo&mp4"), 3);
    assert!(d.video >= 50, "video frames: {}; {}", d.video, d.stderr);
    assert!(d.audio >= 50, "audio frames: {}", d.audio);
}

#[test]
fn bad_ids_and_requests() {
    let srv = Server::start("");
    // Unknown ids: 404 with a JSON error, for every session URL.
    for path in [
        "/api/hls/playlist.m3u8?id=0123456789abcdef0123456789abcdef",
        "/api/hls/segment.ts?id=0123456789abcdef0123456789abcdef&n=0",
        "/api/hls/segment.m4s?id=nope&n=0",
        "/api/hls/init.mp4?id=",
        "/api/hls/playlist.m3u8",
    ] {
        let r = srv.http("GET", path);
        assert_eq!(r.status, 404, "{path}");
        assert!(r.json()["error"].is_string(), "{path}");
    }
    assert_eq!(srv.http("GET", "/api/stream.m3u8?src=nosuch").status, 404);

    let (_, media, _) = open(&srv, "src=demo");
    let id = media.rsplit("id=").next().unwrap().to_string();
    let before = hls_consumers(&srv);
    assert_eq!(before, 1);
    // Thousands of random ids create nothing.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..200 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let fake = format!("{seed:016x}{i:016x}");
        let path = match i % 3 {
            0 => format!("/api/hls/playlist.m3u8?id={fake}"),
            1 => format!("/api/hls/segment.ts?id={fake}&n={i}"),
            _ => format!("/api/hls/init.mp4?id={fake}"),
        };
        assert_eq!(srv.http("GET", &path).status, 404, "{path}");
    }
    assert_eq!(hls_consumers(&srv), before);

    // A real id with bad or stale segment numbers, or the other container's URLs.
    assert_eq!(srv.http("GET", &format!("/api/hls/segment.ts?id={id}")).status, 400);
    assert_eq!(srv.http("GET", &format!("/api/hls/segment.ts?id={id}&n=x")).status, 400);
    assert_eq!(srv.http("GET", &format!("/api/hls/segment.ts?id={id}&n=999999")).status, 404);
    assert_eq!(srv.http("GET", &format!("/api/hls/segment.m4s?id={id}&n=0")).status, 404);
    assert_eq!(srv.http("GET", &format!("/api/hls/init.mp4?id={id}")).status, 404);
    // The session still serves.
    assert_eq!(srv.http("GET", &media).status, 200);
}

/// Decoded yuv420p frame sizes: 320x240 and 640x480.
const SMALL: u64 = 320 * 240 * 3 / 2;
const LARGE: u64 = 640 * 480 * 3 / 2;

/// Issue 19, continuity: a publisher replaced within `publisher_grace` by one with another picture size.
/// The stream's HLS muxers (MPEG-TS, fMP4, LL-HLS) start a new segment at its first keyframe, marked
/// `#EXT-X-DISCONTINUITY`, fMP4 with a new init segment (`#EXT-X-MAP` of generation 1, 640x480), TS
/// with the new SPS in band; ffmpeg readers that joined before decode 320x240, then 640x480, from the
/// same URL without reconnecting (`-autoscale 0`: frames at their decoded size).
#[test]
fn hls_readers_follow_a_new_publishers_picture_size() {
    let srv = Server::start("hub:\n  publisher_grace: 10s\nstreams:\n  cam:\n");
    let url = srv.rtsp_url("cam");
    let first = Publisher::start(&url, "tcp", "320x240", true);
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&url, "tcp").is_ok()), "{}", srv.log());
    let api = srv.api.unwrap();
    let variants = ["", "&mp4", "&ll"];
    let readers: Vec<FrameCrcReader> = variants
        .iter()
        .map(|v| FrameCrcReader::start_input(&["-i", &format!("http://{api}/api/stream.m3u8?src=cam{v}")]))
        .collect();
    for (r, v) in readers.iter().zip(variants) {
        assert!(r.frames_of(SMALL, 25, Duration::from_secs(30)), "HLS{v} decodes 320x240\n{}", srv.log());
    }
    // A session of our own on the LL-HLS muxer, to read its playlists.
    let master = srv.http("GET", "/api/stream.m3u8?src=cam&ll").text();
    let media = format!("/api/{}", master.lines().find(|l| l.starts_with("hls/")).unwrap());

    drop(first);
    assert!(srv.wait_log("publisher left: its readers wait", Duration::from_secs(30)), "{}", srv.log());
    let _second = Publisher::start(&url, "tcp", "640x480", true);
    assert!(srv.wait_log("publisher came back: its readers go on", Duration::from_secs(30)), "{}", srv.log());
    for (r, v) in readers.iter().zip(variants) {
        assert!(r.frames_of(LARGE, 25, Duration::from_secs(30)), "HLS{v} decodes 640x480\n{}", srv.log());
    }
    for (mut r, v) in readers.into_iter().zip(variants) {
        assert!(!r.exited(), "HLS{v}: the same ffmpeg reads on");
    }
    let text = srv.http("GET", &media).text();
    println!("LL-HLS playlist after the switch:\n{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init.mp4?id="), "{text}");
    let map = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .map(|u| u.trim_end_matches('"').to_string())
        .unwrap();
    assert!(map.ends_with("&g=1"), "{map}");
    let init = srv.http("GET", &format!("/api/hls/{map}"));
    assert_eq!(init.status, 200);
    let avc1 = init.body.windows(4).position(|w| w == b"avc1").expect("an avc1 sample entry");
    let at = |i: usize| u16::from_be_bytes([init.body[avc1 + i], init.body[avc1 + i + 1]]);
    assert_eq!((at(28), at(30)), (640, 480), "the new init segment's picture size");
    let v = srv.http("GET", "/api/streams?src=cam").json();
    let hls =
        v["consumers"].as_array().unwrap().iter().filter(|c| c["protocol"].as_str().unwrap_or("").starts_with("hls"));
    assert_eq!(hls.count(), 3, "one HLS reader per variant throughout: {v}");
}

/// hls.js in headless Chromium (`tests/browser/hls_size_change.mjs`, its own network namespace) plays
/// the LL-HLS and the MPEG-TS variant of a 320x240 publisher, which is replaced by a 640x480 one within
/// `hub.publisher_grace`: both players show 320x240, then 640x480 (`videoWidth`), with no fatal error.
#[test]
fn hlsjs_follows_a_new_publishers_picture_size() {
    let v = run_browser_script(
        BrowserNet::Loopback,
        "hls_size_change.mjs",
        &[env!("CARGO_BIN_EXE_camrelay")],
        Duration::from_secs(150),
    );
    println!("hls.js across a picture-size change: {v}");
    assert!(v["error"].is_null(), "{v}");
    for player in ["&ll", "ts"] {
        let p = &v["players"][player];
        let sizes: Vec<(u64, u64)> = p["sizes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| (s["width"].as_u64().unwrap(), s["height"].as_u64().unwrap()))
            .collect();
        assert_eq!(sizes, [(320, 240), (640, 480)], "{player}: {v}");
        let errors = p["errors"].as_array().unwrap();
        assert!(errors.iter().all(|e| !e.as_str().unwrap().contains("fatal")), "{player}: {v}");
    }
}
