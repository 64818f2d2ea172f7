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
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)), "{}", srv.log());
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

/// A live `GET /api/stream.aac` read frame by frame: a raw HTTP/1.1 client that undoes the chunked
/// transfer encoding as bytes arrive and splits the body into ADTS frames.
struct AdtsStream {
    socket: std::net::TcpStream,
    raw: Vec<u8>,
    body: Vec<u8>,
    /// Complete ADTS frames taken from `body` so far.
    frames: Vec<Vec<u8>>,
    chunked: bool,
}

impl AdtsStream {
    fn open(srv: &Server, path: &str) -> AdtsStream {
        use std::io::{Read, Write};
        let mut socket = std::net::TcpStream::connect(srv.api.unwrap()).unwrap();
        socket.write_all(format!("GET {path} HTTP/1.1\r\nHost: camrelay\r\n\r\n").as_bytes()).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        let head_end = loop {
            if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            let n = socket.read(&mut buf).expect("response head");
            assert!(n > 0, "connection closed before the response head");
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..head_end]).to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: audio/aac"), "{head}");
        let chunked = head.contains("transfer-encoding: chunked");
        raw.drain(..head_end + 4);
        let mut s = AdtsStream { socket, raw, body: Vec::new(), frames: Vec::new(), chunked };
        s.parse();
        s
    }

    /// Reads what arrives until `deadline`; returns false if the stream ended.
    fn read_until(&mut self, deadline: Instant) -> bool {
        use std::io::Read;
        let mut buf = [0u8; 16384];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return true;
            }
            self.socket.set_read_timeout(Some(left)).unwrap();
            match self.socket.read(&mut buf) {
                Ok(0) => return false,
                Ok(n) => {
                    self.raw.extend_from_slice(&buf[..n]);
                    self.parse();
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                    return true
                }
                Err(e) => panic!("stream.aac: {e}"),
            }
        }
    }

    /// Reads until at least `n` frames have arrived (bounded by `timeout`).
    fn read_frames(&mut self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.frames.len() < n && Instant::now() < deadline {
            if !self.read_until((Instant::now() + Duration::from_millis(50)).min(deadline)) {
                break;
            }
        }
        self.frames.len() >= n
    }

    fn parse(&mut self) {
        if self.chunked {
            // `size\r\n data \r\n`, as many complete chunks as have arrived.
            while let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") {
                let size = std::str::from_utf8(&self.raw[..eol])
                    .ok()
                    .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
                    .expect("chunk size");
                if self.raw.len() < eol + 2 + size + 2 {
                    break;
                }
                self.body.extend_from_slice(&self.raw[eol + 2..eol + 2 + size]);
                self.raw.drain(..eol + 2 + size + 2);
            }
        } else {
            self.body.append(&mut self.raw);
        }
        // ADTS: 0xFFF sync word, 13-bit frame length (header included) in bytes 3..6.
        while self.body.len() >= 7 {
            assert!(self.body[0] == 0xFF && self.body[1] & 0xF0 == 0xF0, "ADTS sync lost");
            let len = (usize::from(self.body[3] & 0x03) << 11)
                | (usize::from(self.body[4]) << 3)
                | usize::from(self.body[5] >> 5);
            assert!(len >= 7, "ADTS frame length {len}");
            if self.body.len() < len {
                break;
            }
            self.frames.push(self.body.drain(..len).collect());
        }
    }

    /// The sample rate of the first frame's ADTS header.
    fn sample_rate(&self) -> u32 {
        const RATES: [u32; 13] =
            [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];
        RATES[usize::from((self.frames[0][2] >> 2) & 0x0F)]
    }
}

/// Issue 12, defect 4: `stream.aac` (a reader with no video) starts at live. It used to get the whole
/// recent-audio cache first — 512 AAC frames, 11 s at 48 kHz — and so played that far behind for good.
/// The media is counted, not the clock: the audio in the initial burst (what arrives within 100 ms of
/// the first frame) must be less than one GOP of the demo stream (1 s), where it was ~11 s.
#[test]
fn stream_aac_starts_at_live_not_from_the_audio_cache() {
    const GOP_SECONDS: f64 = 1.0; // the demo clip: -g 25 at 25 fps
    let srv = Server::start("");
    // One listener keeps the demo source running until it has produced several seconds of audio, all of
    // it in the track's audio cache.
    let mut warm = AdtsStream::open(&srv, "/api/stream.aac?src=demo");
    assert!(warm.read_frames(1, Duration::from_secs(20)), "no audio from the demo stream");
    let rate = f64::from(warm.sample_rate());
    let five_seconds = (5.0 * rate / 1024.0) as usize;
    assert!(warm.read_frames(warm.frames.len() + five_seconds, Duration::from_secs(30)), "5 s of live audio");

    let mut late = AdtsStream::open(&srv, "/api/stream.aac?src=demo");
    assert!(late.read_frames(1, Duration::from_secs(20)), "the second listener got no audio");
    assert!(late.read_until(Instant::now() + Duration::from_millis(100)));
    let burst = late.frames.len();
    let burst_seconds = burst as f64 * 1024.0 / rate;
    eprintln!("stream.aac: {burst} AAC frames ({burst_seconds:.2} s of audio) in the first 100 ms");
    assert!(burst_seconds < GOP_SECONDS, "the new listener got {burst_seconds:.2} s of old audio at once");

    // What it got is real audio from then on: ffprobe decodes it (keep a couple of seconds).
    assert!(late.read_frames(100, Duration::from_secs(20)));
    let path = srv.dir.join("late.aac");
    std::fs::write(&path, late.frames.concat()).unwrap();
    let streams = probe_counts(path.to_str().unwrap());
    assert_eq!(streams.len(), 1, "{streams:?}");
    assert_eq!(streams[0].1, "aac");
    assert!(streams[0].3 >= late.frames.len() as u64 - 1, "{streams:?} of {} frames", late.frames.len());
    drop(warm);
}
