//! MediaMTX's playback server: ffmpeg publishes H.264 + AAC over RTSP into a `record: yes` path cut
//! into 1 s segments; `/list` gives MediaMTX's JSON field by field, `/get` across three segment
//! boundaries is one file ffmpeg decodes frame-exact without a timestamp complaint (fMP4 and
//! progressive MP4), auth refuses without credentials, bad input is a clear 400/404; and `/list`
//! over 30 days of 1-minute segments (43,200 files) is timed.

mod common;

use common::*;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const VIEWER: &str = "Basic dmlld2VyOnNlY3JldA=="; // viewer:secret

/// MediaMTX's listeners on free loopback ports, the playback server, a user for playback, and `paths`.
fn mediamtx(paths: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: false\nwebrtc: false\nrtmp: false\nsrt: false\nplayback: yes\nplaybackAddress: 127.0.0.1:0\n\
         authInternalUsers:\n\
         - user: any\n  permissions:\n  - action: publish\n  - action: read\n\
         - user: any\n  ips: ['127.0.0.1', '::1']\n  permissions:\n  - action: api\n\
         - user: viewer\n  pass: secret\n  permissions:\n  - action: playback\n\
         paths:\n{paths}"
    )
}

fn playback_addr(server: &Server) -> std::net::SocketAddr {
    let find = || {
        server.log().lines().find_map(|l| l.split("[playback] listen addr=").nth(1).and_then(|a| a.trim().parse().ok()))
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no playback listener:\n{}", server.log());
    find().unwrap()
}

fn get(addr: std::net::SocketAddr, path: &str) -> HttpResponse {
    http_request(addr, "GET", path, &[("Authorization", VIEWER)], b"")
}

struct Decoded {
    /// Video frames' presentation times, in decode order.
    pts: Vec<f64>,
    keyframes: usize,
    duration: f64,
    stderr: String,
}

/// Decodes every video frame of `file` with ffprobe and reads its container duration.
fn decode(file: &Path) -> Decoded {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "warning", "-select_streams", "v:0"])
            .args(["-show_entries", "frame=pts_time,key_frame:format=duration,format_name", "-of", "json"])
            .arg(file),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "ffprobe {}: {stderr}", file.display());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let frames = v["frames"].as_array().cloned().unwrap_or_default();
    Decoded {
        pts: frames.iter().map(|f| f["pts_time"].as_str().unwrap_or("nan").parse().unwrap()).collect(),
        keyframes: frames.iter().filter(|f| f["key_frame"] == 1).count(),
        duration: v["format"]["duration"].as_str().and_then(|d| d.parse().ok()).unwrap_or(0.0),
        stderr,
    }
}

/// ffmpeg decodes the whole file (both tracks) and complains about nothing.
fn decode_clean(file: &Path) {
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "warning", "-i"]).arg(file).args(["-f", "null", "-"]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg {}: {stderr}", file.display());
    for bad in ["monotonic", "Non-monotonic", "DTS", "timestamp", "Invalid", "error"] {
        assert!(!stderr.contains(bad), "ffmpeg decoding {}: {stderr}", file.display());
    }
}

#[test]
fn lists_and_serves_recordings_across_segment_boundaries() {
    let dir = temp_dir("playback");
    let config = mediamtx(&format!(
        "  cam:\n    record: yes\n    recordPath: {}/%path/%Y-%m-%d_%H-%M-%S-%f\n    recordSegmentDuration: 1s\n    recordPartDuration: 200ms\n",
        dir.display()
    ));
    let server = Server::start(&config);
    let addr = playback_addr(&server);
    let _publisher = Publisher::start(&server.rtsp_url("cam"), "tcp", "320x240", true);
    let cam = dir.join("cam");
    // Seven files: the first six are complete 1 s segments (25 fps, a keyframe every second).
    let recorded = wait_until(Duration::from_secs(40), || segments(&cam, "mp4").len() >= 7);
    assert!(recorded, "segments: {:?}\n{}", segments(&cam, "mp4"), server.log());
    let files = segments(&cam, "mp4");

    // /list: one span, MediaMTX's fields.
    let listed = get(addr, "/list?path=cam");
    assert_eq!(listed.status, 200, "{}", listed.text());
    assert!(listed.headers.to_ascii_lowercase().contains("content-type: application/json"), "{}", listed.headers);
    let spans = listed.json();
    let spans = spans.as_array().unwrap();
    assert_eq!(spans.len(), 1, "{spans:?}");
    let span = spans[0].as_object().unwrap();
    let mut keys: Vec<&str> = span.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(keys, vec!["duration", "start", "url"]);
    let start = span["start"].as_str().unwrap();
    assert_eq!(
        start.trim_end_matches('Z').trim_end_matches('0'),
        start_of(&files[0]).trim_end_matches('Z').trim_end_matches('0')
    );
    let duration = span["duration"].as_f64().unwrap();
    assert!((6.0..30.0).contains(&duration), "{duration}");
    let url = span["url"].as_str().unwrap();
    let expected =
        format!("http://{addr}/get?duration={}&path=cam&start={}", span["duration"], start.replace(':', "%3A"));
    assert_eq!(url, expected);
    // start/end cut the span.
    let s1 = start_of(&files[1]);
    let cut = get(addr, &format!("/list?path=cam&start={}&end={}", s1, plus_ms(&s1, 2500))).json();
    assert_eq!(cut.as_array().unwrap().len(), 1, "{cut}");
    assert_eq!(
        cut[0]["start"].as_str().unwrap().trim_end_matches('Z').trim_end_matches('0'),
        s1.trim_end_matches('Z').trim_end_matches('0')
    );
    assert_eq!(cut[0]["duration"].as_f64().unwrap(), 2.5, "{cut}");
    // The URL /list gives serves the span.
    let whole = get(addr, url.strip_prefix(&format!("http://{addr}")).unwrap());
    assert_eq!(whole.status, 200);
    // The whole span as HLS: ffprobe decodes as many video frames as the span's /get holds.
    let whole_file = dir.join("whole.mp4");
    std::fs::write(&whole_file, &whole.body).unwrap();
    let whole_frames = decode(&whole_file).pts.len();
    let whole_hls = format!("http://{addr}{}&format=hls", url.strip_prefix(&format!("http://{addr}")).unwrap());
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "warning", "-headers", &format!("Authorization: {VIEWER}\r\n")])
            .args(["-select_streams", "v:0", "-count_frames", "-show_entries", "stream=nb_read_frames", "-of", "json"])
            .arg(&whole_hls),
        Duration::from_secs(60),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let hls_frames: usize = v["streams"][0]["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0);
    eprintln!("the whole span: {whole_frames} frames in /get, {hls_frames} through its HLS playlist");
    assert!(whole_frames >= 150, "{whole_frames} frames in the span");
    assert_eq!(hls_frames, whole_frames, "{v} {}", String::from_utf8_lossy(&out.stderr));

    // /get from the middle of segment 1 (half a second after its keyframe) for 3 s: across the
    // boundaries at 2, 3 and 4 s.
    let asked = plus_ms(&s1, 500);
    let got = get(addr, &format!("/get?path=cam&start={}&duration=3", asked.replace(':', "%3A")));
    assert_eq!(got.status, 200, "{}", got.text());
    assert!(got.headers.contains("video/mp4"), "{}", got.headers);
    let fmp4 = dir.join("get.mp4");
    std::fs::write(&fmp4, &got.body).unwrap();
    let d = decode(&fmp4);
    // 13 frames of pre-roll (the keyframe at 1.0 s up to 1.48 s), then the 75 frames of [1.5, 4.5).
    assert_eq!(d.pts.len(), 13 + 75, "frames: {:?}", d.pts);
    assert!(d.pts.windows(2).all(|w| w[1] > w[0]), "presentation times rise: {:?}", d.pts);
    // No jump: from the asked time on, one frame every 40 ms (segment boundaries included).
    let real = &d.pts[13..];
    assert!(real[0] < 0.05, "the asked time plays first: {:?}", &d.pts[..16]);
    assert!(real.windows(2).all(|w| ((w[1] - w[0]) - 0.04).abs() < 0.002), "{real:?}");
    assert_eq!(d.keyframes, 4, "the pre-roll's keyframe and those at 2, 3 and 4 s");
    assert!((d.duration - 3.0).abs() <= 1.0, "duration {} within a GOP of 3 s", d.duration);
    for bad in ["monotonic", "DTS"] {
        assert!(!d.stderr.contains(bad), "{}", d.stderr);
    }
    decode_clean(&fmp4);

    // format=mp4: a progressive file (moov before mdat) with the same frames.
    let got = get(addr, &format!("/get?path=cam&start={}&duration=3&format=mp4", asked.replace(':', "%3A")));
    assert_eq!(got.status, 200, "{}", got.text());
    let len: usize = got
        .headers
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").and_then(|v| v.trim().parse().ok()))
        .expect("a Content-Length");
    assert_eq!(len, got.body.len());
    let mut order = Vec::new();
    let mut at = 0usize;
    while at + 8 <= got.body.len() {
        let size = u32::from_be_bytes(got.body[at..at + 4].try_into().unwrap()) as usize;
        order.push(String::from_utf8_lossy(&got.body[at + 4..at + 8]).into_owned());
        at += size.max(8);
    }
    assert_eq!(order, vec!["ftyp", "moov", "mdat"]);
    let mp4 = dir.join("get-progressive.mp4");
    std::fs::write(&mp4, &got.body).unwrap();
    let d = decode(&mp4);
    assert_eq!(d.pts.len(), 88);
    assert!(d.pts.windows(2).all(|w| w[1] > w[0]), "{:?}", d.pts);
    assert!((d.duration - 3.0).abs() <= 1.0, "{}", d.duration);
    decode_clean(&mp4);

    // format=hls: a VOD playlist ffmpeg follows (init, then one media segment per request), the same
    // frames as /get, over the whole span.
    let hls_url = format!("/get?path=cam&start={}&duration=3&format=hls", asked.replace(':', "%3A"));
    let playlist = get(addr, &hls_url);
    assert_eq!(playlist.status, 200, "{}", playlist.text());
    assert!(playlist.headers.contains("application/vnd.apple.mpegurl"), "{}", playlist.headers);
    let text = playlist.text();
    for tag in ["#EXTM3U", "#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-ENDLIST", "#EXT-X-MAP:URI=\"hls/init.mp4?path=cam&"] {
        assert!(text.contains(tag), "{tag}: {text}");
    }
    let extinf: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    assert!(extinf.len() >= 2, "{text}");
    assert!((extinf.iter().sum::<f64>() - 3.0).abs() < 0.1, "{extinf:?}");
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "warning", "-headers", &format!("Authorization: {VIEWER}\r\n")])
            .args([
                "-select_streams",
                "v:0",
                "-show_entries",
                "frame=pts_time,key_frame:stream=codec_name,width,height",
            ])
            .args(["-of", "json"])
            .arg(format!("http://{addr}{hls_url}")),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffprobe hls: {stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["streams"][0]["codec_name"], "h264", "{v}");
    assert_eq!((v["streams"][0]["width"].as_u64(), v["streams"][0]["height"].as_u64()), (Some(320), Some(240)));
    let pts: Vec<f64> = v["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["pts_time"].as_str().unwrap_or("nan").parse().unwrap())
        .collect();
    // The same 88 frames as /get: 13 of pre-roll, then 3 s at 25 fps without a jump.
    assert_eq!(pts.len(), 88, "{pts:?}\n{stderr}");
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    assert!(pts[13..].windows(2).all(|w| ((w[1] - w[0]) - 0.04).abs() < 0.002), "{pts:?}");
    for bad in ["monotonic", "DTS", "rror"] {
        assert!(!stderr.contains(bad), "{stderr}");
    }
    // ffmpeg decodes the whole playlist, audio too, without a complaint.
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "warning", "-headers", &format!("Authorization: {VIEWER}\r\n"), "-i"])
            .arg(format!("http://{addr}{hls_url}"))
            .args(["-f", "null", "-"]),
        Duration::from_secs(60),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "ffmpeg hls: {stderr}");
    // Its segments need the same auth; a segment past the end is a 404.
    let first = text.lines().find(|l| l.starts_with("hls/0.m4s?")).unwrap();
    assert_eq!(http_request(addr, "GET", &format!("/{first}"), &[], b"").status, 401);
    assert_eq!(get(addr, &format!("/{first}")).status, 200);
    let past = get(addr, &hls_url.replace("/get?", "/hls/999.m4s?"));
    assert_eq!(past.status, 404, "{}", past.text());
    assert!(past.json()["error"].as_str().unwrap().contains("no media segment 999"), "{}", past.text());

    // Auth: playback needs the viewer's credentials; the others' are refused.
    let none = http_request(addr, "GET", "/list?path=cam", &[], b"");
    assert_eq!(none.status, 401);
    assert!(none.headers.to_ascii_lowercase().contains("www-authenticate: basic"), "{}", none.headers);
    let wrong = http_request(addr, "GET", "/list?path=cam", &[("Authorization", "Basic dmlld2VyOmd1ZXNz")], b"");
    assert_eq!(wrong.status, 401);

    // Bad input: clear errors, nothing read outside the record directory.
    for (query, status, says) in [
        ("/list?path=../..", 400, "invalid 'path' parameter"),
        ("/list?path=%2Fetc%2Fpasswd", 400, "invalid 'path' parameter"),
        ("/list?path=cam%2F..%2F..%2Fetc", 400, "invalid 'path' parameter"),
        ("/get?path=..&start=2026-01-01T00:00:00Z&duration=1", 400, "invalid 'path' parameter"),
        ("/list", 400, "missing 'path' parameter"),
        ("/list?path=nope", 404, "no recordings found for path \"nope\""),
        ("/list?path=cam&start=yesterday", 400, "invalid 'start' parameter"),
        (
            "/list?path=cam&start=2000-01-01T00:00:00Z&end=2000-01-02T00:00:00Z",
            404,
            "no recordings found in this time range",
        ),
        ("/get?path=cam&start=2026-01-01T00:00:00Z&duration=-3", 400, "invalid 'duration' parameter"),
        ("/get?path=cam&start=2026-01-01T00:00:00Z&duration=1&format=mkv", 400, "invalid 'format' parameter"),
        ("/hls/x.m4s?path=cam&start=2026-01-01T00:00:00Z&duration=1", 404, "serves /list, /get and /hls/"),
        ("/hls/0.m4s?path=cam&duration=1", 400, "missing 'start' parameter"),
        ("/get?path=..%2Fcam&start=2026-01-01T00:00:00Z&duration=1&format=hls", 400, "invalid 'path' parameter"),
        ("/get?path=cam&start=2026-01-01T00%3A00%3A00&duration=1", 400, "invalid 'start' parameter"),
        ("/get?path=cam&start=2026-01-01T00:00:00Z&duration=1e309", 400, "invalid 'duration' parameter"),
        ("/get?path=cam&start=2026-01-01T00:00:00Z&duration=99999999999", 400, "invalid 'duration' parameter"),
        ("/get?path=cam&duration=1", 400, "missing 'start' parameter"),
        ("/get?path=cam&start=2000-01-01T00:00:00Z&duration=1", 404, "no recordings found in this time range"),
        ("/nothing", 404, "the playback server serves /list, /get and /hls/"),
    ] {
        let r = get(addr, query);
        assert_eq!(r.status, status, "{query}: {}", r.text());
        let body = r.json();
        assert_eq!(body["status"], "error", "{query}");
        assert!(body["error"].as_str().unwrap().contains(says), "{query}: {body}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A minimal fMP4 segment of `seconds` of one video track (one sample), as a recorder writes them.
fn synthetic_segment(seconds: u32) -> Vec<u8> {
    use camrelay::playback::mp4::Writer;
    let mut w = Writer::default();
    let ftyp = w.start(b"ftyp");
    w.bytes(b"iso5");
    w.u32(512);
    w.bytes(b"iso5iso6mp41");
    w.end(ftyp);
    let moov = w.start(b"moov");
    let mvhd = w.start_full(b"mvhd", 0, 0);
    w.bytes(&[0; 8]);
    w.u32(1000);
    w.bytes(&[0; 84]);
    w.end(mvhd);
    let trak = w.start(b"trak");
    let tkhd = w.start_full(b"tkhd", 0, 3);
    w.bytes(&[0; 8]);
    w.u32(1);
    w.bytes(&[0; 68]);
    w.end(tkhd);
    let mdia = w.start(b"mdia");
    let mdhd = w.start_full(b"mdhd", 0, 0);
    w.bytes(&[0; 8]);
    w.u32(90000);
    w.bytes(&[0; 8]);
    w.end(mdhd);
    let hdlr = w.start_full(b"hdlr", 0, 0);
    w.u32(0);
    w.bytes(b"vide");
    w.bytes(&[0; 13]);
    w.end(hdlr);
    let minf = w.start(b"minf");
    let stbl = w.start(b"stbl");
    let stsd = w.start_full(b"stsd", 0, 0);
    w.u32(0);
    w.end(stsd);
    w.end(stbl);
    w.end(minf);
    w.end(mdia);
    w.end(trak);
    w.end(moov);
    let moof = w.start(b"moof");
    let mfhd = w.start_full(b"mfhd", 0, 0);
    w.u32(1);
    w.end(mfhd);
    let traf = w.start(b"traf");
    let tfhd = w.start_full(b"tfhd", 0, 0x02_0000);
    w.u32(1);
    w.end(tfhd);
    let tfdt = w.start_full(b"tfdt", 1, 0);
    w.u64(0);
    w.end(tfdt);
    let trun = w.start_full(b"trun", 0, 0x701);
    w.u32(1);
    let data_offset = w.buf.len();
    w.u32(0);
    w.u32(seconds * 90000);
    w.u32(1);
    w.u32(0x0200_0000);
    w.end(trun);
    w.end(traf);
    w.end(moof);
    let off = (w.buf.len() - moof + 8) as u32;
    w.buf[data_offset..data_offset + 4].copy_from_slice(&off.to_be_bytes());
    let mdat = w.start(b"mdat");
    w.bytes(&[0x65]);
    w.end(mdat);
    w.buf
}

/// 30 days of 1-minute segments: the index is built once, then `/list` answers from memory. The
/// figure is printed (docs/benchmarks.md), not asserted: timing depends on the machine.
#[test]
fn thirty_days_of_one_minute_segments_list_from_the_index() {
    let dir = temp_dir("playback-30d");
    let cam = dir.join("cam");
    std::fs::create_dir_all(&cam).unwrap();
    let segment = synthetic_segment(60);
    // 2026-11-01T00:00:00Z, one file a minute.
    let first = 1_793_491_200u64;
    let files = 30 * 24 * 60;
    let made = Instant::now();
    for i in 0..files {
        std::fs::write(cam.join(format!("{}.mp4", first + i * 60)), &segment).unwrap();
    }
    eprintln!("wrote {files} segments in {} ms", made.elapsed().as_millis());
    let config = mediamtx(&format!("  cam:\n    recordPath: {}/%path/%s\n", dir.display()));
    let server = Server::start(&config);
    let addr = playback_addr(&server);
    assert!(server.wait_log("recordings indexed", Duration::from_secs(120)), "{}", server.log());
    let line = server.log().lines().find(|l| l.contains("recordings indexed")).unwrap().to_string();
    eprintln!("{line}");
    assert!(line.contains(&format!("segments={files}")), "{line}");

    let mut times = Vec::new();
    let mut body = serde_json::Value::Null;
    for _ in 0..20 {
        let t = Instant::now();
        let r = get(addr, "/list?path=cam");
        times.push(t.elapsed());
        assert_eq!(r.status, 200, "{}", r.text());
        body = r.json();
    }
    // Contiguous: one span of 30 days.
    assert_eq!(body.as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body[0]["start"], "2026-11-01T00:00:00Z");
    assert_eq!(body[0]["duration"], 30 * 86_400);
    // A day in the middle.
    let t = Instant::now();
    let day = get(addr, "/list?path=cam&start=2026-11-10T00:00:00Z&end=2026-11-11T00:00:00Z").json();
    let day_time = t.elapsed();
    assert_eq!(day[0]["duration"], 86_400, "{day}");
    times.sort();
    eprintln!(
        "/list over {files} segments: median {:.1} ms, max {:.1} ms (20 requests); one day's window {:.1} ms",
        times[10].as_secs_f64() * 1000.0,
        times[19].as_secs_f64() * 1000.0,
        day_time.as_secs_f64() * 1000.0
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
