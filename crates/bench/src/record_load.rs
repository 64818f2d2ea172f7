//! `--record N`: what recording N streams costs. One server, N streams each published in real time
//! (the 720p30 H.264 + AAC clip over RTSP); rounds alternate windows without recording and windows
//! where all N are recorded (an event recording each, `POST /api/record?src=`, the recorder's loop
//! into fMP4 segment files; `DELETE` ends them). Which goes first flips every round; figures are
//! medians over rounds. The server's CPU over each window is read from /proc.

use crate::{http_get, percentile, procstat, publish, sorted, Args, SendTimes, Server};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Starts `bin` on loopback with streams `rec0..rec{n-1}` open to publishers and a `record:` section
/// writing into `dir`.
fn start(bin: &Path, n: usize, dir: &Path) -> Server {
    let streams: Vec<String> = (0..n).map(|i| format!(r#""rec{i}":null"#)).collect();
    let config = format!(
        r#"{{"api":{{"listen":"127.0.0.1:0"}},"rtsp":{{"listen":"127.0.0.1:0","rtp_listen":"127.0.0.1:0","rtcp_listen":"127.0.0.1:0","allow_any_publish":true}},"webrtc":{{"listen":""}},"streams":{{{}}},"record":{{"path":"{}/%path/%Y-%m-%d_%H-%M-%S-%f","segment_duration":"10s","delete_after":"0s"}},"log":{{"level":"warn"}}}}"#,
        streams.join(","),
        dir.display()
    );
    let mut cmd = Command::new(bin);
    cmd.args(["-c", &config])
        .env("RUST_LOG", "warn,camrelay::servers=info")
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    let pipes: [Box<dyn std::io::Read + Send>; 2] =
        [Box::new(child.stdout.take().expect("stdout")), Box::new(child.stderr.take().expect("stderr"))];
    for pipe in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
    }
    drop(tx);
    let (mut rtsp, mut api) = (None, None);
    while rtsp.is_none() || api.is_none() {
        let line = rx.recv().expect("server exited");
        if let Some(a) = line.split("[rtsp] listen addr=").nth(1) {
            rtsp = Some(a.trim().to_string());
        }
        if let Some(a) = line.split("[api] listen addr=").nth(1) {
            api = Some(a.trim().to_string());
        }
    }
    std::thread::spawn(move || while rx.recv().is_ok() {});
    Server {
        child,
        rtsp: rtsp.unwrap_or_default(),
        api: api.unwrap_or_default(),
        rtmp: String::new(),
        metrics: String::new(),
        srt: String::new(),
        startup: Duration::ZERO,
        first_listener: Duration::ZERO,
    }
}

/// `method path` on the API; the status code.
async fn request(api: &str, method: &str, path: &str) -> u16 {
    let Ok(mut s) = tokio::net::TcpStream::connect(api).await else { return 0 };
    let req = format!("{method} {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return 0;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0)
}

/// Bytes of every file under `dir` (the recordings).
fn bytes_under(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(e.path()),
                Ok(_) => total += e.metadata().map(|m| m.len()).unwrap_or(0),
                Err(_) => {}
            }
        }
    }
    total
}

/// One window: the server's CPU (% of a core) and, when recording, what reached the disk (MB/s).
struct Window {
    cpu_pct: f64,
    disk_mbps: f64,
    recorded: usize,
}

async fn window(srv: &Server, n: usize, secs: Duration, record: bool, dir: &Path) -> Window {
    let mut recorded = 0;
    if record {
        for i in 0..n {
            if request(&srv.api, "POST", &format!("/api/record?src=rec{i}")).await == 200 {
                recorded += 1;
            }
        }
        // The files exist; let the writers settle into their steady state.
        tokio::time::sleep(Duration::from_secs(1)).await;
    } else {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let bytes0 = bytes_under(dir);
    let cpu0 = procstat::cpu_seconds(srv.pid());
    let t0 = Instant::now();
    tokio::time::sleep(secs).await;
    let cpu = procstat::cpu_seconds(srv.pid()) - cpu0;
    let elapsed = t0.elapsed().as_secs_f64();
    let bytes = bytes_under(dir).saturating_sub(bytes0);
    if record {
        for i in 0..n {
            request(&srv.api, "DELETE", &format!("/api/record?src=rec{i}")).await;
        }
        let _ = std::fs::remove_dir_all(dir);
        let _ = std::fs::create_dir_all(dir);
    }
    Window { cpu_pct: cpu / elapsed * 100.0, disk_mbps: bytes as f64 * 8.0 / elapsed / 1e6, recorded }
}

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    percentile(&sorted(v.into_iter().filter(|x| x.is_finite()).collect()), 0.5)
}

pub fn report(args: &Args, bin: &Path, clip: &Arc<crate::clip::Clip>, n: usize) {
    let dir: PathBuf = std::env::temp_dir().join(format!("camrelay-bench-record-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("record dir");
    let srv = start(bin, n, &dir);
    eprintln!("server pid {}, {n} streams, recordings in {}", srv.pid(), dir.display());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let (plain, recording, client_pct) = rt.block_on(async {
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let mut publishers = Vec::new();
        for i in 0..n {
            let url = format!("rtsp://{}/rec{i}", srv.rtsp);
            let times = Arc::new(Mutex::new(SendTimes::default()));
            publishers.push(tokio::spawn(publish(url, clip.clone(), times, sent.clone(), stop.clone())));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let up = http_get(&srv.api, "/api/streams").await.unwrap_or_default();
        let producing = (0..n).filter(|i| up.contains(&format!("\"rec{i}\""))).count();
        eprintln!("{producing}/{n} streams published");
        let client0 = procstat::cpu_seconds(std::process::id());
        let started = Instant::now();
        let (mut plain, mut recording) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            let record_first = round % 2 == 1;
            for first in [true, false] {
                let record = first == record_first;
                eprintln!(
                    "round {}: {n} streams, {}...",
                    round + 1,
                    if record { "recording" } else { "not recording" }
                );
                let w = window(&srv, n, args.window, record, &dir).await;
                if record {
                    recording.push(w);
                } else {
                    plain.push(w);
                }
            }
        }
        let client_pct =
            (procstat::cpu_seconds(std::process::id()) - client0) / started.elapsed().as_secs_f64() * 100.0;
        stop.store(true, Ordering::Relaxed);
        for p in publishers {
            let _ = p.await;
        }
        (plain, recording, client_pct)
    });
    let a = median(plain.iter().map(|w| w.cpu_pct));
    let b = median(recording.iter().map(|w| w.cpu_pct));
    let disk = median(recording.iter().map(|w| w.disk_mbps));
    let recorded = recording.iter().map(|w| w.recorded).min().unwrap_or(0);
    println!("## Recording {n} streams (1280x720 30 fps H.264 ~2.5 Mbit/s + AAC each, over RTSP/TCP)\n");
    println!(
        "Server: {}; window {} s; {} alternated rounds; medians over rounds. Recording: an event recording per stream (`POST /api/record`), fMP4 segments of 10 s, parts written every 1 s.\n",
        bin.display(),
        args.window.as_secs_f64(),
        args.rounds
    );
    println!("| streams | server CPU, not recording | recording | extra (% of a core) | recorders started | written to disk | load client % core |");
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    println!("| {n} | {a:.1} % | {b:.1} % | {:+.2} | {recorded} / {n} | {disk:.1} Mbit/s | {client_pct:.1} |", b - a);
    println!("\nPer round (not recording / recording, % of a core):");
    for (i, (p, r)) in plain.iter().zip(&recording).enumerate() {
        println!("- round {}: {:.1} / {:.1}", i + 1, p.cpu_pct, r.cpu_pct);
    }
    let json = format!(
        r#"{{"record_streams":{n},"cpu_pct":{a:.3},"cpu_pct_recording":{b:.3},"extra_pct":{:.3},"recorded":{recorded},"disk_mbps":{disk:.3}}}"#,
        b - a
    );
    if let Err(e) = std::fs::write(&args.json, json) {
        eprintln!("{}: {e}", args.json.display());
    }
    drop(srv);
    let _ = std::fs::remove_dir_all(&dir);
}
