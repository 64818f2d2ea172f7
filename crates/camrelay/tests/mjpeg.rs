//! MJPEG and JPEG outputs, checked with real clients: ffprobe decodes `/api/frame.jpeg`, ffmpeg reads
//! `/api/stream.mjpeg` (`-f mpjpeg`), ffmpeg publishes and reads RTP/JPEG (RFC 2435) over RTSP.

mod common;

use common::{ffprobe, run_with_timeout, wait_until, Server};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// ffprobe's (codec, width, height) of the first video stream of a JPEG file.
fn probe_jpeg(bytes: &[u8]) -> (String, u64, u64) {
    let dir = common::temp_dir("jpeg");
    let path = dir.join("frame.jpg");
    std::fs::write(&path, bytes).unwrap();
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "json"])
            .arg(&path),
        Duration::from_secs(20),
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success(), "ffprobe: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let s = &v["streams"][0];
    (s["codec_name"].as_str().unwrap_or("").into(), s["width"].as_u64().unwrap_or(0), s["height"].as_u64().unwrap_or(0))
}

/// Reads `frames` pictures of an MJPEG-over-HTTP URL with ffmpeg; returns (decoded frames, dimensions).
fn read_mjpeg(url: &str, frames: u32) -> (usize, String) {
    let out = run_with_timeout(
        Command::new("ffmpeg").args([
            "-v",
            "error",
            "-f",
            "mpjpeg",
            "-i",
            url,
            "-frames:v",
            &frames.to_string(),
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(40),
    );
    framecrc_summary(&out.stdout)
}

fn framecrc_summary(stdout: &[u8]) -> (usize, String) {
    let text = String::from_utf8_lossy(stdout);
    let n = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    let dims = text.lines().find_map(|l| l.strip_prefix("#dimensions 0: ")).unwrap_or("").to_string();
    (n, dims)
}

/// Transcoding ffmpegs of `stream` (their command line carries the module's marker).
fn transcoders(stream: &str) -> usize {
    let out = Command::new("pgrep").args(["-f", &format!("camrelay-mjpeg:{stream}")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn spawn_reader(url: &str, frames: u32) -> Child {
    Command::new("ffmpeg")
        .args(["-v", "error", "-f", "mpjpeg", "-i", url, "-frames:v", &frames.to_string(), "-f", "framecrc", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A client process killed when the test ends, also on a failed assertion.
struct Killed(Option<Child>);

impl Killed {
    fn new(child: Child) -> Killed {
        Killed(Some(child))
    }

    /// Waits for the process to end on its own.
    fn output(mut self) -> std::process::Output {
        self.0.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[test]
fn frame_jpeg_from_h264_with_scale_and_rotate() {
    let srv = Server::start("");
    let r = srv.http("GET", "/api/frame.jpeg?src=demo");
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.headers.to_ascii_lowercase().contains("content-type: image/jpeg"), "{}", r.headers);
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 640, 360));

    let r = srv.http("GET", "/api/frame.jpeg?src=demo&width=320");
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 320, 180));
    let r = srv.http("GET", "/api/frame.jpeg?src=demo&h=90");
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 160, 90));
    let r = srv.http("GET", "/api/frame.jpeg?src=demo&rotate=90");
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 360, 640));

    // cache=: the same snapshot while it is young enough.
    let a = srv.http("GET", "/api/frame.jpeg?src=demo&width=200&cache=30s");
    let b = srv.http("GET", "/api/frame.jpeg?src=demo&width=200&cache=30s");
    assert_eq!(a.status, 200);
    assert_eq!(a.body, b.body);

    // Errors are JSON.
    let r = srv.http("GET", "/api/frame.jpeg?src=nope");
    assert_eq!(r.status, 404);
    assert!(r.json()["error"].as_str().unwrap().contains("nope"));
    let r = srv.http("GET", "/api/frame.jpeg?src=demo&rotate=45");
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].is_string());
}

#[test]
fn stream_mjpeg_transcodes_once_per_stream() {
    let mut srv = Server::start("streams:\n  mj_shared: demo:clip\n");
    let url = srv.api_url("/api/stream.mjpeg?src=mj_shared");

    let (n, dims) = read_mjpeg(&url, 20);
    assert_eq!((n, dims.as_str()), (20, "640x360"), "log:\n{}", srv.log());
    // The transcoder lingers, then stops with no viewer left.
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_shared") == 0), "transcoder left running");

    // Two viewers at once: one ffmpeg.
    let a = Killed::new(spawn_reader(&url, 150));
    let b = Killed::new(spawn_reader(&url, 150));
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_shared") == 1));
    // Both get pictures while sharing it (checked while they run).
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(transcoders("mj_shared"), 1, "one transcoder per stream, not per viewer");
    for out in [a.output(), b.output()] {
        let (n, dims) = framecrc_summary(&out.stdout);
        assert_eq!((n, dims.as_str()), (150, "640x360"));
    }
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_shared") == 0), "transcoder left running");

    // Server shutdown with a viewer attached: no ffmpeg survives.
    let _viewer = Killed::new(spawn_reader(&url, 100_000));
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_shared") == 1));
    srv.terminate();
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_shared") == 0), "ffmpeg survived the server");
}

#[test]
fn mjpeg_published_over_rtsp_passes_through() {
    let srv = Server::start("streams:\n  cam:\n");
    let publisher = Killed::new(
        Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=15", "-t", "60"])
            .args(["-c:v", "mjpeg", "-huffman", "default", "-pix_fmt", "yuvj420p", "-q:v", "5"])
            .args(["-f", "rtsp", "-rtsp_transport", "tcp", &srv.rtsp_url("cam")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_until(Duration::from_secs(30), || srv.http("GET", "/api/streams").text().contains("JPEG")),
        "publisher did not appear: {}",
        srv.log()
    );
    let (n, dims) = read_mjpeg(&srv.api_url("/api/stream.mjpeg?src=cam"), 15);
    assert_eq!((n, dims.as_str()), (15, "320x240"), "log:\n{}", srv.log());
    assert_eq!(transcoders("cam"), 0, "JPEG is passed through");

    let r = srv.http("GET", "/api/frame.jpeg?src=cam");
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 320, 240));
    let r = srv.http("GET", "/api/frame.jpeg?src=cam&rotate=270");
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 240, 320));

    // Read back over RTSP: the publisher's RTP forwarded.
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").unwrap();
    assert!(streams.iter().any(|s| s.codec_name == "mjpeg" && s.width == 320), "{streams:?}");
    let n = common::decode_video_frames(&srv.rtsp_url("cam"), "tcp", 10).unwrap();
    assert_eq!(n, 10);
    drop(publisher);
}

/// MJPEG from a pipe (no RTP of its own) is packetized once (RFC 2435) for RTSP readers.
#[test]
fn mjpeg_from_pipe_plays_over_rtsp() {
    let srv = Server::start(
        "streams:\n  pipe: exec:ffmpeg -v error -re -f lavfi -i testsrc=size=320x240:rate=15 -c:v mjpeg -huffman default -pix_fmt yuvj420p -f mjpeg -\n",
    );
    let streams = ffprobe(&srv.rtsp_url("pipe"), "tcp").unwrap();
    assert!(streams.iter().any(|s| s.codec_name == "mjpeg"), "{streams:?}\n{}", srv.log());
    let n = common::decode_video_frames(&srv.rtsp_url("pipe"), "tcp", 10).unwrap();
    assert_eq!(n, 10, "log:\n{}", srv.log());
    let (n, dims) = read_mjpeg(&srv.api_url("/api/stream.mjpeg?src=pipe"), 10);
    assert_eq!((n, dims.as_str()), (10, "320x240"));
}

/// Decodes `frames` pictures of an RTSP URL (TCP) with ffmpeg: (decoded frames, dimensions, what the
/// decoder complained about).
fn read_rtsp(url: &str, frames: u32) -> (usize, String, String) {
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-rtsp_transport", "tcp", "-i", url, "-map", "0:v:0"]).args([
            "-frames:v",
            &frames.to_string(),
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(40),
    );
    let (n, dims) = framecrc_summary(&out.stdout);
    // Pictures coded with Huffman tables other than RFC 2435's make the decoder report errors.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let complaints = stderr.lines().filter(|l| l.contains("mjpeg") || l.contains("RTP/JPEG")).collect::<Vec<_>>();
    (n, dims, complaints.join("\n"))
}

/// Issue 12, defect 2: `ffmpeg:SRC#video=mjpeg` publishes RTP/JPEG, which has no room for Huffman
/// tables; ffmpeg's encoder must use the standard ones for RTSP readers to decode anything.
#[test]
fn ffmpeg_mjpeg_transcode_plays_over_rtsp_and_http() {
    let srv = Server::start("streams:\n  h264_src: demo:clip\n  mj_ff: ffmpeg:h264_src#video=mjpeg\n");
    let (n, dims, complaints) = read_rtsp(&srv.rtsp_url("mj_ff"), 12);
    assert_eq!((n, dims.as_str(), complaints.as_str()), (12, "640x360", ""), "log:\n{}", srv.log());
    let streams = ffprobe(&srv.rtsp_url("mj_ff"), "tcp").unwrap();
    assert!(streams.iter().any(|s| (s.codec_name.as_str(), s.width, s.height) == ("mjpeg", 640, 360)), "{streams:?}");

    // The same stream as MJPEG over HTTP: its JPEGs passed through.
    let (n, dims) = read_mjpeg(&srv.api_url("/api/stream.mjpeg?src=mj_ff"), 10);
    assert_eq!((n, dims.as_str()), (10, "640x360"), "log:\n{}", srv.log());
    assert_eq!(transcoders("mj_ff"), 0, "JPEG is passed through");
}

/// JPEGs with ffmpeg's optimal Huffman tables from a pipe (as from an MJPEG camera) are re-coded to the
/// standard tables when packetized for RTSP readers: ffmpeg decodes every picture without an error.
#[test]
fn mjpeg_with_optimal_huffman_tables_plays_over_rtsp() {
    let srv = Server::start(
        "streams:\n  optimal: exec:ffmpeg -v error -re -f lavfi -i testsrc=size=320x240:rate=15 -c:v mjpeg -huffman optimal -pix_fmt yuvj420p -q:v 4 -f mjpeg -\n",
    );
    let (n, dims, complaints) = read_rtsp(&srv.rtsp_url("optimal"), 10);
    assert_eq!((n, dims.as_str(), complaints.as_str()), (10, "320x240", ""), "log:\n{}", srv.log());
    // Over HTTP the camera's own JPEGs (its tables) go out unchanged.
    let (n, dims) = read_mjpeg(&srv.api_url("/api/stream.mjpeg?src=optimal"), 10);
    assert_eq!((n, dims.as_str()), (10, "320x240"));
}

/// `frame.jpeg` of an H.264 stream while its MJPEG transcoder runs: the transcoder's newest picture.
#[test]
fn frame_jpeg_while_the_transcoder_runs() {
    let srv = Server::start("streams:\n  mj_live: demo:clip\n");
    let url = srv.api_url("/api/stream.mjpeg?src=mj_live");
    let viewer = Killed::new(spawn_reader(&url, 100_000));
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_live") == 1), "log:\n{}", srv.log());
    for _ in 0..3 {
        let r = srv.http("GET", "/api/frame.jpeg?src=mj_live");
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 640, 360));
    }
    // Transforms still go through a one-shot ffmpeg.
    let r = srv.http("GET", "/api/frame.jpeg?src=mj_live&width=320");
    assert_eq!(probe_jpeg(&r.body), ("mjpeg".into(), 320, 180));
    drop(viewer);
}

/// The pid of `stream`'s transcoding ffmpeg, if one runs.
fn transcoder_pid(stream: &str) -> Option<i32> {
    let out = Command::new("pgrep").args(["-f", &format!("camrelay-mjpeg:{stream}")]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().next().and_then(|l| l.trim().parse().ok())
}

/// The transcoder is the producer of a derived stream `<stream>#mjpeg` (issue 13): listed in
/// `/api/streams` while it runs, restarted like any source when ffmpeg dies (the viewer keeps getting
/// pictures), stopped `hub.linger` after its last viewer left, and the derived stream removed then.
#[test]
fn transcoder_is_a_derived_producer_with_linger_and_retry() {
    let srv = Server::start("hub:\n  linger: 1s\nstreams:\n  mj_derived: demo:clip\n");
    let url = srv.api_url("/api/stream.mjpeg?src=mj_derived");
    let viewer = Killed::new(spawn_reader(&url, 200));
    assert!(wait_until(Duration::from_secs(30), || transcoder_pid("mj_derived").is_some()), "log:\n{}", srv.log());
    // The transcoder process runs before its first picture: the producer is online after that.
    let derived_online =
        || srv.http("GET", "/api/streams").json()["mj_derived#mjpeg"]["producers"][0]["state"] == "online";
    assert!(wait_until(Duration::from_secs(30), derived_online), "{}", srv.http("GET", "/api/streams").text());
    let streams = srv.http("GET", "/api/streams").json();
    let derived = &streams["mj_derived#mjpeg"];
    assert_eq!(derived["producers"][0]["url"], "ffmpeg:mj_derived#video=mjpeg", "{streams}");
    assert_eq!(derived["consumers"].as_array().map(Vec::len), Some(1), "{streams}");
    // The transcoder's input is a consumer of the source stream.
    assert!(streams["mj_derived"]["consumers"].to_string().contains("mjpeg+ffmpeg"), "{streams}");

    // ffmpeg dies: the producer starts a new one and the viewer reads on.
    std::thread::sleep(Duration::from_secs(1));
    let first = transcoder_pid("mj_derived").unwrap();
    kill_process(first);
    assert!(
        wait_until(Duration::from_secs(30), || transcoder_pid("mj_derived").is_some_and(|p| p != first)),
        "transcoder not restarted; log:\n{}",
        srv.log()
    );
    let (n, dims) = framecrc_summary(&viewer.output().stdout);
    assert_eq!((n, dims.as_str()), (200, "640x360"), "log:\n{}", srv.log());

    // No viewer left: stopped after the linger, and the derived stream is gone from the list.
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_derived") == 0), "transcoder left running");
    assert!(
        wait_until(Duration::from_secs(30), || srv
            .http("GET", "/api/streams")
            .json()
            .get("mj_derived#mjpeg")
            .is_none()),
        "derived stream not removed"
    );
    // The next viewer starts it again.
    let (n, _) = read_mjpeg(&url, 5);
    assert_eq!(n, 5);
}

fn kill_process(pid: i32) {
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().unwrap();
    assert!(status.success());
}

/// Deleting a stream ends the MJPEG viewers of its transcoder (and removes the derived stream).
#[test]
fn deleting_the_stream_ends_its_mjpeg_viewers() {
    let srv = Server::start("streams:\n  mj_gone: demo:clip\n");
    let url = srv.api_url("/api/stream.mjpeg?src=mj_gone");
    let mut viewer = Killed::new(spawn_reader(&url, 100_000));
    assert!(wait_until(Duration::from_secs(30), || transcoder_pid("mj_gone").is_some()), "log:\n{}", srv.log());
    assert_eq!(srv.http("DELETE", "/api/streams?src=mj_gone").status, 200);
    let ended = wait_until(Duration::from_secs(30), || viewer.0.as_mut().unwrap().try_wait().unwrap().is_some());
    assert!(ended, "the viewer was not ended; log:\n{}", srv.log());
    assert!(wait_until(Duration::from_secs(30), || transcoders("mj_gone") == 0), "transcoder left running");
    assert!(srv.http("GET", "/api/streams").json().get("mj_gone#mjpeg").is_none());
}
