//! Start-up of the JPEG outputs of an H.264 stream (issue 12, defect 3): request → first complete JPEG
//! of `GET /api/stream.mjpeg` when no transcoder runs for the stream (a cold start: ffmpeg is spawned,
//! fed from the GOP cache), and request → response of `GET /api/frame.jpeg`, with no transcoder running
//! (a one-shot ffmpeg) and while a `stream.mjpeg` viewer keeps one running.

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Milliseconds, one sample per start, sorted.
#[derive(Default)]
pub struct JpegStarts {
    pub mjpeg_cold: Vec<f64>,
    pub frame_cold: Vec<f64>,
    pub frame_warm: Vec<f64>,
}

/// Sends `GET path` and reads until the body holds a whole JPEG (SOI … EOI). Returns the time from
/// connecting to that point, and the connection (still open: a multipart stream goes on).
async fn first_jpeg(api: &str, path: &str) -> Option<(f64, TcpStream)> {
    let started = Instant::now();
    let mut s = TcpStream::connect(api).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let n = match tokio::time::timeout_at(deadline, s.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => n,
            _ => return None,
        };
        got.extend_from_slice(&buf[..n]);
        let Some(body) = got.windows(4).position(|w| w == b"\r\n\r\n").map(|i| &got[i + 4..]) else { continue };
        if let Some(soi) = body.windows(2).position(|w| w == [0xff, 0xd8]) {
            if body[soi..].windows(2).any(|w| w == [0xff, 0xd9]) {
                return Some((started.elapsed().as_secs_f64() * 1000.0, s));
            }
        }
    }
}

/// Whether `stream` has an MJPEG transcoder (its input reader shows in the stream's consumers).
async fn transcoder_running(api: &str, stream: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(api).await else { return false };
    let req = format!("GET /api/streams?src={stream} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).contains("mjpeg+ffmpeg")
}

/// `starts` rounds of: wait for the stream's transcoder to stop (it lingers `hub.linger` after its last
/// viewer), `frame.jpeg` cold, `stream.mjpeg` cold, `frame.jpeg` while that viewer stays.
pub async fn cold_starts(api: &str, stream: &str, starts: usize) -> JpegStarts {
    let mut r = JpegStarts::default();
    for _ in 0..starts {
        let deadline = Instant::now() + Duration::from_secs(20);
        while transcoder_running(api, stream).await && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if let Some((ms, _)) = first_jpeg(api, &format!("/api/frame.jpeg?src={stream}")).await {
            r.frame_cold.push(ms);
        }
        let Some((ms, viewer)) = first_jpeg(api, &format!("/api/stream.mjpeg?src={stream}")).await else { continue };
        r.mjpeg_cold.push(ms);
        if let Some((ms, _)) = first_jpeg(api, &format!("/api/frame.jpeg?src={stream}")).await {
            r.frame_warm.push(ms);
        }
        drop(viewer);
    }
    for v in [&mut r.mjpeg_cold, &mut r.frame_cold, &mut r.frame_warm] {
        v.sort_by(f64::total_cmp);
    }
    r
}
