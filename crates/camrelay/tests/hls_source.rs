//! Issue 16: the HLS source (`http(s)://…m3u8`). camrelay pulls the HLS output of a second camrelay
//! (its master `stream.m3u8`, MPEG-TS segments) and a live HLS made by ffmpeg and served by lighttpd
//! (a master playlist with two variants: the highest bandwidth by default, `#bandwidth=min` the
//! other); ffmpeg decodes the relayed stream over RTSP and HLS at the expected sizes. fMP4 segments
//! (`#EXT-X-MAP`): the second camrelay's `&mp4` HLS and ffmpeg's `-hls_segment_type fmp4` behind
//! lighttpd. Truncated and lying playlists fail with errors that say so.

mod common;

use common::*;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// lighttpd types for a live HLS playlist and its segments.
const LIVE_HLS_MIME: &str =
    "mimetype.assign = (\".m3u8\" => \"application/vnd.apple.mpegurl\", \".ts\" => \"video/mp2t\")\n";

fn video_size(url: &str) -> Result<(u64, u64), String> {
    let streams = ffprobe(url, "tcp")?;
    let v = streams.iter().find(|s| s.codec_type == "video").ok_or("no video stream")?;
    Ok((v.width, v.height))
}

fn plays(srv: &Server, stream: &str, size: (u64, u64)) {
    let rtsp = srv.rtsp_url(stream);
    let mut last = Err(String::new());
    let ok = wait_until(Duration::from_secs(40), || {
        last = video_size(&rtsp);
        last.as_ref().is_ok_and(|s| *s == size)
    });
    assert!(ok, "{stream}: {last:?}\n{}", srv.log());
    let (n, err) = decode_frames(&["-rtsp_transport", "tcp"], &rtsp, 50, Duration::from_secs(40));
    assert!(n >= 50, "{stream}: {n} frames over RTSP: {err}\n{}", srv.log());
    let hls = srv.api_url(&format!("/api/stream.m3u8?src={stream}"));
    let (h, err) = decode_frames(&[], &hls, 25, Duration::from_secs(40));
    assert!(h >= 25, "{stream}: {h} frames over HLS: {err}\n{}", srv.log());
    println!("{stream}: {size:?}, {n} frames decoded over RTSP, {h} over HLS");
}

/// Reads `stream` once (so the on-demand source starts) and waits for its producer's `last_error`.
fn source_error(srv: &Server, stream: &str) -> String {
    let _ = video_size(&srv.rtsp_url(stream));
    let mut error = String::new();
    wait_until(Duration::from_secs(30), || {
        let v = srv.http("GET", &format!("/api/streams?src={stream}")).json();
        error = v["producers"][0]["last_error"].as_str().unwrap_or("").to_string();
        !error.is_empty()
    });
    error
}

/// camrelay B pulls camrelay A's HLS (`/api/stream.m3u8?src=cam`: a master playlist whose variant
/// is a session's media playlist, MPEG-TS segments) and its fMP4 HLS (`&mp4`: init + `.m4s`).
#[test]
fn pulls_hls_from_a_second_camrelay() {
    let a = Server::start("streams:\n  cam: demo:clip\n");
    let url = a.api_url("/api/stream.m3u8?src=cam");
    let b = Server::start(&format!("streams:\n  relay: {url}\n  fmp4: {url}&mp4\n"));
    plays(&b, "relay", (640, 360));
    let r = whep_with(&b, "relay", 10, &[]);
    assert_eq!(r["frames"], 10, "{r}");
    assert_eq!((r["width"].as_u64(), r["height"].as_u64()), (Some(640), Some(360)), "{r}");
    plays(&b, "fmp4", (640, 360));
    let streams = ffprobe(&b.rtsp_url("fmp4"), "tcp").unwrap();
    assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
}

/// camrelay B pulls MediaMTX's LL-HLS URL of camrelay A in MediaMTX's dialect (`/PATH/index.m3u8`: a
/// multivariant playlist, a low-latency media playlist with parts and preload hints, fMP4 segments with
/// `init.mp4`), as it would pull a MediaMTX server's HLS: the whole segments are read, parts ignored.
#[test]
fn pulls_mediamtx_llhls_from_a_second_camrelay() {
    let a = Server::start(
        "api: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\nrtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\n\
         webrtc: false\nrtmp: false\nsrt: false\npaths:\n  demo:\n    source: demo:clip\n",
    );
    let needle = "[hls] listen addr=";
    assert!(a.wait_log(needle, Duration::from_secs(30)), "no {needle} in:\n{}", a.log());
    let hls = a.log().lines().find_map(|l| l.split(needle).nth(1)).unwrap_or("").trim().to_string();
    let b = Server::start(&format!("streams:\n  mtx: http://{hls}/demo/index.m3u8\n"));
    plays(&b, "mtx", (640, 360));
    let streams = ffprobe(&b.rtsp_url("mtx"), "tcp").unwrap();
    assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
}

/// ffmpeg's live fMP4 HLS (`-hls_segment_type fmp4`: `init.mp4` + `.m4s`, H.264 320x240 and AAC)
/// behind lighttpd: pulled, read over RTSP with both codecs and decoded.
#[test]
fn pulls_a_live_fmp4_hls_from_lighttpd() {
    let dir = temp_dir("hls-fmp4");
    let root = dir.join("www");
    std::fs::create_dir_all(root.join("f")).unwrap();
    let _ffmpeg = Killed(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "120"])
            .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac"])
            .args(["-f", "hls", "-hls_time", "1", "-hls_list_size", "6", "-hls_segment_type", "fmp4"])
            .args(["-hls_flags", "delete_segments"])
            .arg(root.join("f/index.m3u8"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    let http = Lighttpd::start(&dir, &root, LIVE_HLS_MIME);
    let playlist = root.join("f/index.m3u8");
    assert!(wait_until(Duration::from_secs(30), || std::fs::read_to_string(&playlist)
        .is_ok_and(|t| t.contains("#EXT-X-MAP") && t.matches("#EXTINF").count() >= 3)));
    let srv = Server::start(&format!("streams:\n  live: http://127.0.0.1:{}/f/index.m3u8\n", http.port));
    plays(&srv, "live", (320, 240));
    let streams = ffprobe(&srv.rtsp_url("live"), "tcp").unwrap();
    assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
    let v = srv.http("GET", "/api/streams?src=live").json();
    assert!(v["producers"][0]["last_error"].as_str().unwrap_or("").is_empty(), "{v}");
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A live HLS from ffmpeg (two variants, 1 s segments, old ones deleted) behind lighttpd: the
/// highest bandwidth is pulled by default, the lowest with `#bandwidth=min`; a truncated playlist
/// and one whose segment lasts longer than its target duration fail with errors naming that.
#[test]
fn pulls_a_live_hls_from_lighttpd() {
    let dir = temp_dir("hls-src");
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    let _ffmpeg = Killed(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=25"])
            .args(["-filter_complex", "[0:v]split=2[a][b];[b]scale=320:240[c]", "-map", "[a]", "-map", "[c]"])
            .args(["-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"])
            .args(["-b:v:0", "1500k", "-b:v:1", "300k", "-f", "hls", "-hls_time", "1", "-hls_list_size", "6"])
            .args(["-hls_flags", "delete_segments", "-master_pl_name", "master.m3u8"])
            .args(["-var_stream_map", "v:0 v:1"])
            .arg(root.join("v%v/index.m3u8"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("ffmpeg"),
    );
    std::fs::write(
        root.join("truncated.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\nseg0.ts\n#EXTINF:2.0,\n",
    )
    .unwrap();
    std::fs::write(root.join("lying.m3u8"), "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:30.0,\nseg0.ts\n").unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || root.join("master.m3u8").exists()
            && root.join("v1/index.m3u8").exists()),
        "ffmpeg made no HLS"
    );
    let http = Lighttpd::start(&dir, &root, LIVE_HLS_MIME);
    let base = format!("http://127.0.0.1:{}", http.port);
    let srv = Server::start(&format!(
        "streams:\n  hi: {base}/master.m3u8\n  lo: {base}/master.m3u8#bandwidth=min\n  \
         truncated: {base}/truncated.m3u8\n  lying: {base}/lying.m3u8\n  missing: {base}/missing.m3u8\n"
    ));
    plays(&srv, "hi", (640, 480));
    plays(&srv, "lo", (320, 240));
    let e = source_error(&srv, "truncated");
    assert!(e.contains("truncated playlist: #EXTINF at line 5 has no segment URI"), "{e}");
    let e = source_error(&srv, "lying");
    assert!(e.contains("segment 0 lasts 30 s, more than the target duration 2 s"), "{e}");
    let e = source_error(&srv, "missing");
    assert!(e.contains("HTTP 404"), "{e}");
}
