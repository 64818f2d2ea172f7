//! LL-HLS (MediaMTX's `hlsVariant: lowLatency`, the default) on MediaMTX's URLs (`/PATH/index.m3u8`) and
//! on go2rtc's (`/api/stream.m3u8?src=NAME&ll`): the playlists pass PyPI's `m3u8` parser in strict mode
//! and RFC 8216bis's rules (`tests/fixtures/llhls_check.py`), parts decode, ffmpeg plays the stream,
//! hls.js in Chromium plays it near the live edge, and bad requests get clear answers.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A MediaMTX config on loopback with free ports: the demo clip (640x360, 25 fps, 1 s GOP, AAC).
const MEDIAMTX: &str = r#"
logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hlsAddress: 127.0.0.1:0
webrtc: false
rtmp: false
srt: false
paths:
  demo:
    source: demo:clip
"#;

fn listen_addr(server: &Server, module: &str) -> String {
    let needle = format!("[{module}] listen addr=");
    assert!(server.wait_log(&needle, Duration::from_secs(30)), "no {needle} in:\n{}", server.log());
    server.log().lines().find_map(|l| l.split(&needle).nth(1)).unwrap_or("").trim().to_string()
}

/// `GET /demo/index.m3u8` on the HLS listener: the media playlist's path.
fn media_path(server: &Server, hls: &str) -> String {
    let index = server.http_at(hls, "GET", "/demo/index.m3u8");
    assert_eq!(index.status, 200, "{}", index.text());
    let text = index.text();
    assert!(text.contains("#EXT-X-STREAM-INF:") && text.contains("CODECS=\"avc1."), "{text}");
    let variant = text.lines().find(|l| !l.starts_with('#') && !l.is_empty()).expect("a variant").to_string();
    assert!(variant.starts_with("hls/playlist.m3u8?id="), "{variant}");
    format!("/demo/{variant}")
}

/// (msn, part) numbers of the `part.m4s?...&n=N&p=P` URIs listed.
fn parts_listed(text: &str) -> Vec<(u64, u64, String)> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"").nth(1)?.split('"').next().map(str::to_string))
        .map(|uri| {
            let get = |k: &str| uri.split(&format!("&{k}=")).nth(1).and_then(|v| v.split('&').next()?.parse().ok());
            (get("n").unwrap(), get("p").unwrap(), uri)
        })
        .collect()
}

#[test]
fn llhls_playlists_pass_a_strict_parser_and_parts_decode() {
    let server = Server::start(MEDIAMTX);
    let hls = listen_addr(&server, "hls");
    let t0 = Instant::now();
    let media = media_path(&server, &hls);
    let first = server.http_at(&hls, "GET", &media);
    assert_eq!(first.status, 200);
    println!("LL-HLS: index.m3u8 request to first part listed (cold source): {:?}", t0.elapsed());
    assert!(first.text().contains("#EXT-X-PART:"), "{}", first.text());
    // Seven segments listed (hlsSegmentCount) before a delta update can skip one.
    assert!(
        wait_until(Duration::from_secs(30), || server.http_at(&hls, "GET", &media).text().matches("#EXTINF:").count()
            >= 7),
        "{}",
        server.http_at(&hls, "GET", &media).text()
    );
    let url = format!("http://{hls}{media}");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/llhls_check.py");
    let out = run_with_timeout(Command::new(python()).arg(&script).arg(&url), Duration::from_secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(text.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("{e}: {text} {}", String::from_utf8_lossy(&out.stderr)));
    println!("LL-HLS strict check (m3u8 6.0.0): {v}");
    assert!(v["error"].is_null(), "{v}");
    assert_eq!(v["part_target"].as_f64(), Some(0.2), "{v}");
    assert!(v["parts"].as_u64().unwrap_or(0) >= 15, "{v}");
    assert!(v["max_part"].as_f64().unwrap_or(1.0) <= 0.2 + 1e-6, "{v}");
    assert_eq!(v["skipped"].as_u64(), Some(1), "{v}");
    assert_eq!(v["delta_version"].as_u64(), Some(9), "{v}");
    let held = v["blocking_held_s"].as_f64().unwrap();
    println!("LL-HLS: a blocking reload for the hinted part was held {:.0} ms", held * 1000.0);
    assert!(held < 1.0, "{v}");

    // The parts of one complete segment, after the init segment, decode: 25 frames of 640x360 per second.
    let text = server.http_at(&hls, "GET", &media).text();
    let parts = parts_listed(&text);
    let complete: Vec<u64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("segment.m4s?"))
        .filter_map(|l| l.split("n=").nth(1)?.parse().ok())
        .collect();
    let msn = *complete.iter().rev().find(|n| parts.iter().any(|p| p.0 == **n)).expect("a complete segment with parts");
    let base = media.rsplit_once('/').unwrap().0;
    let map = text.lines().find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\"")).unwrap().trim_end_matches('"');
    let mut file = server.http_at(&hls, "GET", &format!("{base}/{map}")).body;
    let mut from_parts = Vec::new();
    for (_, _, uri) in parts.iter().filter(|p| p.0 == msn) {
        let r = server.http_at(&hls, "GET", &format!("{base}/{uri}"));
        assert_eq!(r.status, 200, "{uri}");
        assert!(r.headers.to_ascii_lowercase().contains("content-type: video/iso.segment"));
        assert_eq!(&r.body[4..8], b"moof", "{uri}");
        from_parts.extend_from_slice(&r.body);
    }
    let segment =
        server.http_at(&hls, "GET", &format!("{base}/segment.m4s?{}&n={msn}", media.split('?').nth(1).unwrap()));
    assert_eq!(segment.status, 200);
    assert_eq!(segment.body, from_parts, "segment {msn} is its parts");
    file.extend_from_slice(&from_parts);
    let path = server.dir.join("parts.mp4");
    std::fs::write(&path, &file).unwrap();
    let out = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-count_frames",
            "-select_streams",
            "v",
            "-show_entries",
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
            path.to_str().unwrap(),
        ]),
        Duration::from_secs(30),
    );
    let probed = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert_eq!(probed, "h264,640,360,25", "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn bad_blocking_requests_and_parts() {
    let server = Server::start(MEDIAMTX);
    let hls = listen_addr(&server, "hls");
    let media = media_path(&server, &hls);
    let text = server.http_at(&hls, "GET", &media).text();
    // The preload hint names the segment in progress (msn) and its next part.
    let hint = text.lines().find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"")).unwrap();
    let hint = hint.trim_end_matches('"').to_string();
    let msn: u64 = hint.split("&n=").nth(1).and_then(|v| v.split('&').next()?.parse().ok()).unwrap();
    let base = media.rsplit_once('/').unwrap().0;
    let id = media.rsplit("id=").next().unwrap().to_string();
    for (query, status, says) in [
        (format!("_HLS_msn={}", msn + 100), 400, "more than two segments past"),
        (format!("_HLS_msn={msn}&_HLS_part=500"), 400, "advance part limit"),
        ("_HLS_part=1".to_string(), 400, "_HLS_part without _HLS_msn"),
        ("_HLS_msn=abc".to_string(), 400, "bad _HLS_msn=abc"),
        ("_HLS_msn=99999999999999999999999999999999".to_string(), 400, "bad _HLS_msn"),
        (format!("_HLS_msn={}&_HLS_skip=maybe", msn), 400, "bad _HLS_skip=maybe"),
    ] {
        let t0 = Instant::now();
        let r = server.http_at(&hls, "GET", &format!("{media}&{query}"));
        assert_eq!(r.status, status, "{query}: {}", r.text());
        assert!(r.json()["error"].as_str().unwrap_or("").contains(says), "{query}: {}", r.text());
        // Refused at once, not held like a valid blocking request (the 400 says so; the bound is loose
        // for a loaded machine).
        println!("LL-HLS: {query} refused after {:?}", t0.elapsed());
        assert!(t0.elapsed() < Duration::from_secs(10), "{query}: answered after {:?}", t0.elapsed());
    }
    // Parts: unknown id, far future, bad numbers, a part of the TS variant's URL shape.
    for (path, status) in [
        (format!("{base}/part.m4s?id=0123456789abcdef0123456789abcdef&n=0&p=0"), 404),
        (format!("{base}/part.m4s?id={id}&n={}&p=0", msn + 1000), 404),
        (format!("{base}/part.m4s?id={id}&n=x&p=0"), 400),
        (format!("{base}/part.m4s?id={id}&n=0"), 400),
    ] {
        let r = server.http_at(&hls, "GET", &path);
        assert_eq!(r.status, status, "{path}: {}", r.text());
    }
    // The next part (the preload hint) is held until it exists, then served.
    let t0 = Instant::now();
    let r = server.http_at(&hls, "GET", &format!("{base}/{hint}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[4..8], b"moof");
    println!("LL-HLS: the preload hint's part came after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(10), "the preload hint's part came after {:?}", t0.elapsed());
}

/// go2rtc's URL with `ll`: the same LL-HLS muxer kind, shared by every session of the stream.
#[test]
fn llhls_on_go2rtc_urls_and_ffmpeg_plays_it() {
    let server = Server::start("");
    let master = server.http("GET", "/api/stream.m3u8?src=demo&ll");
    assert_eq!(master.status, 200, "{}", master.text());
    let variant = master.text().lines().find(|l| l.starts_with("hls/")).unwrap().to_string();
    let playlist = server.http("GET", &format!("/api/{variant}")).text();
    assert!(
        playlist.contains("#EXT-X-VERSION:9\n") && playlist.contains("#EXT-X-PART-INF:PART-TARGET=0.200\n"),
        "{playlist}"
    );
    assert!(playlist.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part.m4s?id="), "{playlist}");
    // A second viewer shares the muxer: one HLS reader of the stream.
    assert_eq!(server.http("GET", "/api/stream.m3u8?src=demo&ll").status, 200);
    let v = server.http("GET", "/api/streams?src=demo").json();
    let readers = v["consumers"]
        .as_array()
        .map_or(0, |a| a.iter().filter(|c| c["protocol"].as_str().is_some_and(|p| p.starts_with("hls"))).count());
    assert_eq!(readers, 1, "{v}");

    // ffmpeg reads LL-HLS as HLS (whole segments: it ignores parts) and decodes every frame.
    let d = decode_av(&server.api_url("/api/stream.m3u8?src=demo&ll"), 3);
    assert!(d.video >= 50, "video frames: {}; {}", d.video, d.stderr);
    assert!(d.audio >= 50, "audio frames: {}", d.audio);
}

/// ffmpeg (and VLC) ignore parts: a playlist of parts only is empty to them. The first playlist of a
/// muxer is held until it lists a whole segment, so ffmpeg pointed at a path nobody reads yet (the
/// source starts on demand) plays at once, with no wait before.
#[test]
fn ffmpeg_reads_a_fresh_paths_llhls_url_at_once() {
    let server = Server::start(MEDIAMTX);
    let hls = listen_addr(&server, "hls");
    let url = format!("http://{hls}/demo/index.m3u8");
    let t0 = Instant::now();
    let d = decode_av(&url, 2);
    println!("ffmpeg on a fresh LL-HLS path: {} video, {} audio frames in {:?}", d.video, d.audio, t0.elapsed());
    assert!(d.success, "{}\n{}", d.stderr, server.log());
    assert!(d.video >= 40, "video frames: {}; {}", d.video, d.stderr);
    assert!(d.audio >= 40, "audio frames: {}", d.audio);
}

/// hls.js (lowLatencyMode) in headless Chromium plays MediaMTX's LL-HLS URL near live, and the test
/// prints how far behind (the issue's 1.5 s is a measured figure, not asserted: timing is the machine's).
#[test]
fn hlsjs_plays_llhls_near_live_and_reports_its_delay() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    let server = Server::start(MEDIAMTX);
    let hls = listen_addr(&server, "hls");
    let out = run_with_timeout(
        Command::new("node").arg("llhls.mjs").arg(&hls).arg("demo").arg("8").current_dir(&dir),
        Duration::from_secs(90),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap_or("")).unwrap_or_else(|e| {
        panic!("{e}: stdout {stdout} stderr {}\nserver:\n{}", String::from_utf8_lossy(&out.stderr), server.log())
    });
    println!("hls.js LL-HLS: {v}");
    assert!(v["error"].is_null(), "{v}");
    assert!(v["frames"].as_u64().unwrap_or(0) >= 200, "{v}");
    assert_eq!((v["width"].as_u64(), v["height"].as_u64()), (Some(640), Some(360)), "{v}");
    assert!(v["parts"].as_u64().unwrap_or(0) > 0 && v["canBlockReload"] == true, "hls.js did not see LL-HLS: {v}");
    assert!(v["blockingReloads"].as_u64().unwrap_or(0) > 5, "{v}");
    let latency = v["latency"]["max"].as_f64().unwrap();
    let behind = v["behindSync"]["max"].as_f64().unwrap();
    let wall = &v["wall"];
    println!(
        "hls.js LL-HLS: distance to the live edge median {:.2} s, max {latency:.2} s; behind liveSyncPosition max {behind:.2} s; \
         wall-clock delay (server arrival → shown) median {:.2} s, max {:.2} s; first frame {:.0} ms",
        v["latency"]["median"].as_f64().unwrap(),
        wall["median"].as_f64().unwrap(),
        wall["max"].as_f64().unwrap(),
        v["firstFrameMs"].as_f64().unwrap()
    );
    // Near live, not from the playlist's start: a player starting at the oldest listed segment, or one that
    // stalled and never caught up, is several segments behind. The delay itself (0.2–0.4 s on a quiet
    // machine, see docs/hls.md) is reported above, not asserted: under a loaded CI machine a stall can
    // add seconds. `hls.latency` also counts the part in progress.
    assert!(behind <= 5.0, "hls.js more than 5 s behind liveSyncPosition: {v}");
    // A part or segment the playlists named is served (under CPU load hls.js asks for parts a playlist
    // or two behind; they were dropped once unlisted, a 404 that stalled it).
    let failures = v["failures"].as_array().unwrap();
    assert!(failures.iter().all(|f| f["status"] != 404), "hls.js got 404 for what a playlist named: {v}");
    assert!(wall["max"].as_f64().unwrap() <= 6.0, "wall-clock delay over 6 s: {v}");
    assert!(latency <= 6.0, "{v}");
}

/// `hlsMuxerCloseAfter`: a muxer no viewer asked anything of for that long stops, and its reader leaves
/// the path (`/v3/hlsmuxers/list` empties); the default (60 s) would keep it for a minute.
#[test]
fn muxer_closes_after_hls_muxer_close_after() {
    let server = Server::start(&format!("{MEDIAMTX}hlsMuxerCloseAfter: 3s\n"));
    let hls = listen_addr(&server, "hls");
    let media = media_path(&server, &hls);
    // The request touches the muxer when it comes in (it is answered once a whole segment is listed).
    let last = Instant::now();
    assert_eq!(server.http_at(&hls, "GET", &media).status, 200);
    let muxers = || server.http("GET", "/v3/hlsmuxers/list").json()["itemCount"].as_u64();
    assert_eq!(muxers(), Some(1), "{}", server.http("GET", "/v3/hlsmuxers/list").text());
    assert!(wait_until(Duration::from_secs(30), || muxers() == Some(0)), "muxer still there\n{}", server.log());
    let closed = last.elapsed();
    println!("hlsMuxerCloseAfter 3s: the muxer closed {closed:?} after the last request");
    assert!(closed >= Duration::from_secs(3), "closed after {closed:?}");
}

/// MediaMTX's `hlsAlwaysRemux: yes`: a ready path's muxer runs before any viewer asks and stays while
/// the path is ready, past `hlsMuxerCloseAfter`; the first playlist request finds segments already cut.
#[test]
fn always_remux_muxes_ready_paths_before_any_viewer() {
    let server = Server::start(&format!("{MEDIAMTX}hlsAlwaysRemux: yes\nhlsMuxerCloseAfter: 1s\n"));
    let hls = listen_addr(&server, "hls");
    let list = || server.http("GET", "/v3/hlsmuxers/list").json();
    let started = wait_until(Duration::from_secs(30), || list()["itemCount"].as_u64() == Some(1));
    assert!(started, "no muxer without a viewer: {}\n{}", list(), server.log());
    assert_eq!(list()["items"][0]["path"], "demo", "{}", list());
    // The muxer is listed once it reads the path; the demo source may start producing later on a loaded
    // machine (CI: one segment listed after the 3 s below), so count its video frames from here.
    let video_frames = || {
        let streams = server.http("GET", "/api/streams?src=demo").json();
        let receivers = streams["producers"][0]["receivers"].as_array().cloned().unwrap_or_default();
        receivers
            .iter()
            .filter(|r| r["codec"]["codec_type"] == "video")
            .map(|r| r["frames"].as_u64().unwrap_or(0))
            .sum::<u64>()
    };
    let frames_at_start = video_frames();
    // Kept while the path is ready: three close times without a request, it is still there.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(list()["itemCount"].as_u64(), Some(1), "the muxer closed: {}\n{}", list(), server.log());
        std::thread::sleep(Duration::from_millis(200));
    }
    // 3 s of the demo's 25 fps through the muxer: at least two whole 1 s segments cut without a viewer.
    assert!(
        wait_until(Duration::from_secs(30), || video_frames() >= frames_at_start + 75),
        "the demo source produced {} video frames since the muxer started\n{}",
        video_frames().saturating_sub(frames_at_start),
        server.log()
    );
    // The first viewer's playlist lists the segments cut meanwhile (a muxer started by it lists one).
    let media = media_path(&server, &hls);
    let playlist = server.http_at(&hls, "GET", &media).text();
    let segments = playlist.lines().filter(|l| l.starts_with("#EXTINF:")).count();
    println!("hlsAlwaysRemux: the first request's playlist lists {segments} segments");
    assert!(segments >= 2, "{playlist}");
}

/// MediaMTX's `hlsDirectory`: the muxer keeps its complete segments as files under the directory
/// (`DIR/PATH/VARIANT-ID/segN.m4s`, fMP4 that ffmpeg reads), ffmpeg plays the LL-HLS URL as usual, and
/// the muxer's files go when it closes (`hlsMuxerCloseAfter`).
#[test]
fn hls_directory_holds_the_segments_while_the_muxer_runs() {
    let root = temp_dir("hls-directory");
    let server = Server::start(&format!("hlsDirectory: {}\nhlsMuxerCloseAfter: 2s\n{MEDIAMTX}", root.display()));
    let hls = listen_addr(&server, "hls");
    let url = format!("http://{hls}/demo/index.m3u8");
    let segment_files = || -> Vec<PathBuf> {
        let Ok(muxers) = std::fs::read_dir(root.join("demo")) else { return vec![] };
        muxers
            .flatten()
            .flat_map(|m| std::fs::read_dir(m.path()).into_iter().flatten().flatten().map(|f| f.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "m4s"))
            .collect()
    };
    let player = std::thread::spawn(move || decode_av(&url, 3));
    assert!(wait_until(Duration::from_secs(30), || segment_files().len() >= 2), "no segment files\n{}", server.log());
    let files = segment_files();
    let first = std::fs::read(&files[0]).unwrap();
    assert!(first.windows(4).any(|w| w == b"moof"), "{}: not an fMP4 segment", files[0].display());
    let muxer_dir = files[0].parent().unwrap().to_path_buf();
    assert!(muxer_dir.file_name().unwrap().to_string_lossy().starts_with("ll-"), "{}", muxer_dir.display());
    let d = player.join().unwrap();
    println!("ffmpeg over hlsDirectory: {} video, {} audio frames; {} segment files", d.video, d.audio, files.len());
    assert!(d.success, "{}\n{}", d.stderr, server.log());
    assert!(d.video >= 40 && d.audio >= 40, "video {} audio {}: {}", d.video, d.audio, d.stderr);
    assert!(
        wait_until(Duration::from_secs(30), || !muxer_dir.exists()),
        "the closed muxer's directory is still there: {:?}",
        segment_files()
    );
}
