//! `--first-picture N`: what a viewer waits for, with real decoders. For each protocol, N times, in
//! rotating order (so that drift in the shared machine's load favours none): the time from starting
//! the client to its first decoded picture of the 720p stream. ffmpeg (Debian's, libavcodec's H.264
//! and MJPEG decoders) reads RTSP, RTMP, SRT, HLS, the fMP4 stream MSE players get (`stream.mp4`) and
//! MJPEG, and writes the first picture as raw 8-bit grey (1280 x 720 bytes: the size is checked); the
//! clock runs from the spawn of ffmpeg to the first byte of that picture, so ffmpeg's own start-up is
//! in it; the same command on the clip's file gives that floor. aiortc (Python) decodes WebRTC (WHEP);
//! its clock starts after Python has loaded; headless Chromium plays MSE and WebRTC
//! (`scripts/browser_first_picture.mjs`, clock in the page). Also: the server's start-up time to its first listener
//! (N starts) and the memory of idle readers and idle streams.

use crate::{idle_memory, percentile, publish, sorted, Args, SendTimes, Server};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

const WIDTH: usize = 1280;
const HEIGHT: usize = 720;

/// One client of one protocol: a program and its arguments.
struct Client {
    protocol: &'static str,
    decoder: &'static str,
    program: PathBuf,
    args: Vec<String>,
    /// aiortc's script prints JSON (its own clock) instead of the raw picture.
    json: bool,
}

fn ffmpeg(protocol: &'static str, input: &[&str]) -> Client {
    let mut args: Vec<String> = ["-v", "error", "-nostdin", "-hide_banner"].iter().map(|s| s.to_string()).collect();
    args.extend(input.iter().map(|s| s.to_string()));
    args.extend(["-map", "0:v:0", "-frames:v", "1", "-pix_fmt", "gray", "-f", "rawvideo", "pipe:1"].map(String::from));
    Client { protocol, decoder: "ffmpeg", program: "ffmpeg".into(), args, json: false }
}

/// The clients of every protocol of the server `srv` (stream `bench`).
fn clients(srv: &Server, python: &str) -> Vec<Client> {
    let api = &srv.api;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/whep_first_frame.py");
    vec![
        ffmpeg("file (floor: ffmpeg's start-up + decode)", &["-i", "target/bench-media/bench720p.h264"]),
        ffmpeg("RTSP/TCP", &["-rtsp_transport", "tcp", "-i", &format!("rtsp://{}/bench", srv.rtsp)]),
        ffmpeg("RTMP", &["-i", &format!("rtmp://{}/live/bench", srv.rtmp)]),
        ffmpeg("SRT", &["-i", &format!("srt://{}?streamid=read:bench", srv.srt)]),
        // A live MPEG-TS has no header: ffmpeg's probe reads `analyzeduration` (5 s) of it in real time
        // (minus the GOP cache's burst) before it decodes. Players that start fast shorten the probe.
        ffmpeg(
            "SRT, probe shortened (-analyzeduration 500000)",
            &["-analyzeduration", "500000", "-i", &format!("srt://{}?streamid=read:bench", srv.srt)],
        ),
        ffmpeg("fMP4 / MSE bytes (stream.mp4)", &["-i", &format!("http://{api}/api/stream.mp4?src=bench")]),
        ffmpeg("HLS (stream.m3u8)", &["-i", &format!("http://{api}/api/stream.m3u8?src=bench")]),
        ffmpeg("MJPEG (stream.mjpeg)", &["-f", "mpjpeg", "-i", &format!("http://{api}/api/stream.mjpeg?src=bench")]),
        Client {
            protocol: "WebRTC (WHEP)",
            decoder: "aiortc",
            program: python.into(),
            args: vec![script.display().to_string(), format!("http://{api}/api/webrtc?src=bench")],
            json: true,
        },
    ]
}

/// Chromium (`scripts/browser_first_picture.mjs`, Playwright): MSE and WebRTC first pictures, `runs`
/// each, as its JSON.
async fn chromium(api: &str, runs: usize) -> Result<serde_json::Value, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/browser_first_picture.mjs");
    let out = tokio::time::timeout(
        Duration::from_secs(60 + 50 * runs as u64),
        tokio::process::Command::new("node").arg(&script).arg(api).arg(runs.to_string()).kill_on_drop(true).output(),
    )
    .await
    .map_err(|_| "Chromium did not finish".to_string())?
    .map_err(|e| format!("node: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().unwrap_or("")).map_err(|e| {
        let stderr = String::from_utf8_lossy(&out.stderr);
        format!("{e}: {}", stderr.lines().find(|l| l.contains("Error")).unwrap_or(stderr.trim()))
    })
}

/// One start of `client`: milliseconds to its first decoded picture, checked to be 1280x720.
async fn first_picture(client: &Client) -> Result<f64, String> {
    let started = Instant::now();
    let mut child = tokio::process::Command::new(&client.program)
        .args(&client.args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("{}: {e}", client.program.display()))?;
    let mut stdout = child.stdout.take().ok_or("no stdout")?;
    let mut stderr = child.stderr.take().ok_or("no stderr")?;
    let read = async {
        let mut out = Vec::new();
        let mut first = None;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = stdout.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                break;
            }
            first.get_or_insert_with(|| started.elapsed());
            out.extend_from_slice(&buf[..n]);
            if out.len() > WIDTH * HEIGHT {
                break;
            }
        }
        Ok::<_, String>((first, out))
    };
    let result = tokio::time::timeout(Duration::from_secs(30), read).await;
    let _ = child.start_kill();
    let _ = child.wait().await;
    let mut err = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(1), stderr.read_to_string(&mut err)).await;
    let (first, out) = result.map_err(|_| "no picture within 30 s".to_string())??;
    let first = first.ok_or_else(|| format!("no picture: {}", err.trim()))?;
    first_picture_ms(client.json, first, &out).map_err(|e| format!("{e}: {}", err.trim()))
}

/// The time of a client's first picture from what it printed: the raw grey picture (checked to be
/// 1280x720: `first` is when its first byte came) or aiortc's JSON line (its own clock, size checked).
fn first_picture_ms(json: bool, first: Duration, out: &[u8]) -> Result<f64, String> {
    if !json {
        return if out.len() == WIDTH * HEIGHT {
            Ok(first.as_secs_f64() * 1000.0)
        } else {
            Err(format!("a picture of {} bytes, not {WIDTH}x{HEIGHT} grey", out.len()))
        };
    }
    let v: serde_json::Value =
        serde_json::from_slice(out).map_err(|e| format!("not JSON ({e}): {}", String::from_utf8_lossy(out)))?;
    let size = (v["width"].as_u64(), v["height"].as_u64());
    if size != (Some(WIDTH as u64), Some(HEIGHT as u64)) {
        return Err(format!("a picture of {:?}x{:?}, not {WIDTH}x{HEIGHT}", size.0, size.1));
    }
    v["ms"].as_f64().filter(|ms| ms.is_finite() && *ms >= 0.0).ok_or_else(|| format!("no \"ms\" in {v}"))
}

pub fn report(args: &Args, bin: &PathBuf, clip: &Arc<crate::clip::Clip>, runs: usize) {
    let runs = runs.max(1);
    let python = std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".into());
    // Start-up: process spawn → the first listener's log line, and → the last (RTSP, API, RTMP, SRT).
    let mut first_listener = Vec::new();
    let mut all_listeners = Vec::new();
    for i in 0..runs {
        eprintln!("start-up {}/{runs}...", i + 1);
        let srv = Server::start(bin, "127.0.0.1", None, true, false, false, Some(args.srt_latency));
        first_listener.push(srv.first_listener.as_secs_f64() * 1000.0);
        all_listeners.push(srv.startup.as_secs_f64() * 1000.0);
    }
    let srv = Server::start(bin, "127.0.0.1", None, true, false, true, Some(args.srt_latency));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let clients = clients(&srv, &python);
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); clients.len()];
    let mut errors: Vec<Vec<String>> = vec![Vec::new(); clients.len()];
    let (idle, browser) = rt.block_on(async {
        let stop = Arc::new(AtomicBool::new(false));
        let times = Arc::new(Mutex::new(SendTimes::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let publisher = tokio::spawn(publish(url.clone(), clip.clone(), times, sent, stop.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        eprintln!("idle memory...");
        let idle = idle_memory(&srv, &url).await;
        let mut seed = 0x2545_F491_4F6C_DD1Du64 ^ u64::from(std::process::id());
        for run in 0..runs {
            for k in 0..clients.len() {
                let i = (k + run) % clients.len();
                // Joins at random points of the GOP.
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                tokio::time::sleep(Duration::from_millis(seed % 1000)).await;
                eprintln!("run {}/{runs}: {}...", run + 1, clients[i].protocol);
                match first_picture(&clients[i]).await {
                    Ok(ms) => samples[i].push(ms),
                    Err(e) => {
                        eprintln!("{}: {e}", clients[i].protocol);
                        errors[i].push(e);
                    }
                }
            }
        }
        eprintln!("Chromium: MSE and WebRTC, {runs} runs each...");
        let browser = chromium(&srv.api, runs).await;
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.await;
        (idle, browser)
    });
    drop(srv);

    let (first_listener, all_listeners) = (sorted(first_listener), sorted(all_listeners));
    println!(
        "## camrelay-bench --first-picture {runs}: 1280x720 30 fps H.264 (~2.5 Mbit/s, 1 s GOP) + AAC published over RTSP/TCP; SRT latency {} ms\n",
        args.srt_latency.as_millis()
    );
    println!("Time to the first decoded picture (client start → first picture, {runs} runs each, protocols in rotating order, joins at random points of the GOP):\n");
    println!("| protocol | decoder | pictures (1280x720) | median ms | min ms | max ms | median − file floor ms |");
    println!("|---|---|---|---|---|---|---|");
    let floor = percentile(&sorted(samples[0].clone()), 0.5);
    let mut json_rows = Vec::new();
    for ((c, s), e) in clients.iter().zip(&samples).zip(&errors) {
        let s = sorted(s.clone());
        let (med, min, max) = (percentile(&s, 0.5), percentile(&s, 0.0), percentile(&s, 1.0));
        let over = if c.json { "-".to_string() } else { format!("{:.0}", med - floor) };
        println!("| {} | {} | {}/{runs} | {med:.0} | {min:.0} | {max:.0} | {over} |", c.protocol, c.decoder, s.len());
        json_rows.push(serde_json::json!({"protocol": c.protocol, "decoder": c.decoder, "samples_ms": s,
            "median_ms": med, "errors": e}));
    }
    let mut browser_json = serde_json::Value::Null;
    match browser {
        Ok(v) => {
            for (mode, protocol) in [("mse", "MSE (WebSocket `mse`)"), ("webrtc", "WebRTC (WHEP)")] {
                let rows = v[mode].as_array().cloned().unwrap_or_default();
                let ok = rows.iter().filter(|r| (r["width"].as_u64(), r["height"].as_u64()) == (Some(1280), Some(720)));
                let s = sorted(ok.filter_map(|r| r["ms"].as_f64()).collect());
                let (med, min, max) = (percentile(&s, 0.5), percentile(&s, 0.0), percentile(&s, 1.0));
                println!("| {protocol} | Chromium | {}/{runs} | {med:.0} | {min:.0} | {max:.0} | - |", s.len());
                if let Some(e) = rows.iter().find_map(|r| r["error"].as_str()) {
                    eprintln!("Chromium {mode}: {e}");
                }
            }
            browser_json = v;
        }
        Err(e) => println!("| MSE, WebRTC | Chromium | not run: {e} | | | | |"),
    }
    for (c, e) in clients.iter().zip(&errors) {
        if let Some(first) = e.first() {
            println!("\n{}: {} failed runs, first: {first}", c.protocol, e.len());
        }
    }
    println!(
        "\nStart-up ({runs} starts, process spawn → log line): first listener median {:.0} ms (min {:.0}, max {:.0}); all of RTSP, API, RTMP and SRT median {:.0} ms",
        percentile(&first_listener, 0.5),
        percentile(&first_listener, 0.0),
        percentile(&first_listener, 1.0),
        percentile(&all_listeners, 0.5)
    );
    let peers: Vec<String> = args
        .peers
        .iter()
        .map(|(name, path)| {
            let present = if path.is_file() { "present, not run by this mode" } else { "not present" };
            format!("{name} ({}: {present})", path.display())
        })
        .collect();
    println!(
        "Peers: {}",
        if peers.is_empty() { "none given; this mode measures camrelay only".to_string() } else { peers.join(", ") }
    );
    println!(
        "Memory: {:.1} KiB per idle RTSP reader (200 connections after DESCRIBE, no PLAY), {:.1} KiB per configured idle stream (200 streams)",
        idle.0, idle.1
    );
    let json = serde_json::json!({
        "server": bin.display().to_string(),
        "mode": "first-picture",
        "runs": runs,
        "first_picture": json_rows,
        "chromium": browser_json,
        "startup_first_listener_ms": first_listener,
        "startup_all_listeners_ms": all_listeners,
        "idle_reader_kib": idle.0,
        "idle_stream_kib": idle.1,
    });
    crate::write_json_report(&args.json, &json);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pictures_are_checked_for_their_size() {
        let at = Duration::from_millis(250);
        assert_eq!(first_picture_ms(false, at, &vec![0; WIDTH * HEIGHT]), Ok(250.0));
        let e = first_picture_ms(false, at, &[0; 640 * 360]).unwrap_err();
        assert!(e.contains("230400 bytes"), "{e}");
        let ok = br#"{"ms": 412.5, "width": 1280, "height": 720}"#;
        assert_eq!(first_picture_ms(true, at, ok), Ok(412.5));
        let small = br#"{"ms": 412.5, "width": 640, "height": 360}"#;
        assert!(first_picture_ms(true, at, small).unwrap_err().contains("not 1280x720"));
        assert!(first_picture_ms(true, at, b"Traceback").unwrap_err().contains("not JSON"));
        assert!(first_picture_ms(true, at, br#"{"width": 1280, "height": 720}"#).is_err());
    }
}
