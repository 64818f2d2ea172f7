//! camrelay-bench: starts camrelay on loopback, publishes a 720p30 H.264 + AAC stream over RTSP and
//! measures fan-out CPU and memory, added latency, time to first frame and idle memory. Prints a
//! Markdown report and writes JSON. `--rtmp` measures RTMP players against RTSP readers of the same
//! stream and RTMP publish-to-read latency instead (see `rtmp_load.rs`). See docs/benchmarks.md.

mod client;
mod clip;
mod first_picture;
mod floor;
mod hls_load;
mod hls_sessions;
mod jpeg;
mod metrics_scrape;
mod net;
mod procstat;
mod record_load;
mod rtmp_load;
mod rtmp_report;
mod srt_load;
mod versus_report;
mod webrtc_load;

use bytes::BytesMut;
use client::{Conn, ReaderStats};
use media::{Direction, Kind, Media};
use std::collections::{HashMap, VecDeque};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Writes a mode's JSON report (creating its directory) and says where.
fn write_json_report(path: &std::path::Path, json: &serde_json::Value) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    std::fs::write(path, serde_json::to_string_pretty(json).unwrap_or_default()).expect("write JSON report");
    println!("\nJSON: {}", path.display());
}

struct Args {
    server: Option<PathBuf>,
    readers: Vec<usize>,
    latency_readers: Vec<usize>,
    window: Duration,
    json: PathBuf,
    joins: usize,
    net: NetMode,
    /// Cold starts of the JPEG outputs to time (`--jpeg-starts`); `--only jpeg` times nothing else.
    jpeg_starts: usize,
    only_jpeg: bool,
    /// `--rtmp`: the RTMP comparison instead of the default measurements.
    rtmp: bool,
    /// `--rounds N` (with `--rtmp`): alternated RTSP/RTMP rounds; figures are medians over rounds.
    rounds: usize,
    /// `--peer NAME=PATH` (with `--rtmp`): another server binary to run the same load against.
    peers: Vec<(String, PathBuf)>,
    /// `--metrics-scrape MS`: what scraping `/metrics` every MS ms costs under the fan-out load.
    metrics_scrape: Option<Duration>,
    /// `--metrics-path PATH`: what that scraper asks for (`/metrics?type=paths`...); `/metrics` by default.
    metrics_path: String,
    /// `--record N`: the cost of recording N streams (see `record_load.rs`) instead.
    record: Option<usize>,
    /// `--webrtc`: WebRTC (WHEP) viewers against RTSP readers instead of the default measurements.
    webrtc: bool,
    /// `--hls`: HLS viewers against RTSP readers instead of the default measurements.
    hls: bool,
    /// `--hls-sessions N`: the server's memory with N HLS viewers of one stream (`hls_sessions.rs`).
    hls_sessions: Option<usize>,
    /// `--srt`: SRT readers against RTSP readers (fan-out and publish → read latency) instead.
    srt: bool,
    /// `--srt-latency MS`: the SRT latency (TSBPD delay) of the server and the readers.
    srt_latency: Duration,
    /// `--first-picture N`: time to the first decoded picture per protocol (N runs each, real
    /// decoders), startup time and idle memory instead (see `first_picture.rs`).
    first_picture: Option<usize>,
}

/// Where the load client sits, network-wise.
#[derive(Clone, Copy, PartialEq, Eq)]
enum NetMode {
    /// Everything on 127.0.0.1: the receivers' TCP input runs inside the server's send calls.
    Loopback,
    /// The load client in its own network namespace over a veth pair, with RPS (see `net.rs`).
    Veth,
}

impl NetMode {
    fn describe(self) -> &'static str {
        match self {
            NetMode::Loopback => "loopback (127.0.0.1, server and client unpinned; the readers' TCP receive processing and wakeups run inside the server's writev and are counted as server CPU)",
            NetMode::Veth => "veth+RPS (client in its own network namespace over a veth pair; server pinned to CPU 0, client to CPU 1, RPS steers the client's receive processing to CPU 1 and the ACKs to CPU 0)",
        }
    }

    fn name(self) -> &'static str {
        match self {
            NetMode::Loopback => "loopback",
            NetMode::Veth => "veth+rps",
        }
    }
}

fn parse_args() -> Args {
    let mut a = Args {
        server: None,
        readers: vec![1, 10, 50, 200, 500, 1000],
        latency_readers: vec![1, 10, 50],
        window: Duration::from_secs(10),
        json: PathBuf::from("target/bench-report.json"),
        joins: 20,
        net: NetMode::Loopback,
        jpeg_starts: 5,
        only_jpeg: false,
        rtmp: false,
        webrtc: false,
        hls: false,
        hls_sessions: None,
        srt: false,
        srt_latency: Duration::from_millis(120),
        first_picture: None,
        rounds: 3,
        peers: Vec::new(),
        metrics_scrape: None,
        metrics_path: "/metrics".into(),
        record: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().unwrap_or_else(|| panic!("{arg} needs a value"));
        match arg.as_str() {
            "--server" => a.server = Some(PathBuf::from(value())),
            "--readers" => a.readers = value().split(',').filter_map(|v| v.trim().parse().ok()).collect(),
            "--window" => a.window = Duration::from_secs_f64(value().parse().expect("--window seconds")),
            "--json" => a.json = PathBuf::from(value()),
            "--joins" => a.joins = value().parse().expect("--joins count"),
            "--jpeg-starts" => a.jpeg_starts = value().parse().expect("--jpeg-starts count"),
            "--rtmp" => a.rtmp = true,
            "--record" => a.record = Some(value().parse().expect("--record streams")),
            "--webrtc" => a.webrtc = true,
            "--hls" => a.hls = true,
            "--hls-sessions" => a.hls_sessions = Some(value().parse().expect("--hls-sessions count")),
            "--srt" => a.srt = true,
            "--srt-latency" => {
                a.srt_latency = Duration::from_millis(value().parse().expect("--srt-latency milliseconds"))
            }
            "--first-picture" => a.first_picture = Some(value().parse().expect("--first-picture runs")),
            "--rounds" => a.rounds = value().parse::<usize>().expect("--rounds count").max(1),
            "--metrics-scrape" => {
                a.metrics_scrape = Some(Duration::from_millis(value().parse().expect("--metrics-scrape milliseconds")))
            }
            "--metrics-path" => a.metrics_path = value(),
            "--peer" => {
                let v = value();
                let (name, path) = v.split_once('=').expect("--peer NAME=PATH");
                a.peers.push((name.to_string(), PathBuf::from(path)));
            }
            "--only" => {
                let what = value();
                assert_eq!(what, "jpeg", "--only jpeg");
                a.only_jpeg = true;
            }
            "--net" => {
                a.net = match value().as_str() {
                    "loopback" | "lo" => NetMode::Loopback,
                    "veth" => NetMode::Veth,
                    other => panic!("--net loopback|veth, not {other}"),
                }
            }
            "-h" | "--help" => {
                println!("camrelay-bench [--server BIN|floor] [--record N [--rounds N]] [--readers 1,10,50,200,500,1000] [--window SECS] [--joins N] [--jpeg-starts N] [--only jpeg] [--json FILE] [--net loopback|veth] [--webrtc|--hls|--srt [--srt-latency MS] [--rounds N]] [--hls-sessions N] [--first-picture N] [--rtmp [--rounds N] [--peer go2rtc|mediamtx=PATH]...] [--metrics-scrape MS [--metrics-path PATH] [--rounds N]] | --http-floor BYTES [COUNT]");
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// `--server floor`: the bench's own minimal forwarder (see `floor.rs`) instead of a server binary.
const FLOOR: &str = "floor";

/// The server under test, with its ports read from its log.
struct Server {
    child: Child,
    rtsp: String,
    api: String,
    /// The RTMP listener (`--rtmp` only).
    rtmp: String,
    /// The Prometheus listener (`--metrics-scrape` only).
    metrics: String,
    /// The SRT listener (`--srt` and `--first-picture` only).
    srt: String,
    /// Start of the process → its last listener's log line.
    startup: Duration,
    /// Start of the process → its first listener's log line.
    first_listener: Duration,
}

impl Server {
    /// Starts `bin` (or, for [`FLOOR`], this program's floor server) listening on `ip`, pinned to
    /// `cpu` if given.
    /// With an SRT listener of this latency when `srt` is given.
    fn start(
        bin: &PathBuf,
        ip: &str,
        cpu: Option<usize>,
        rtmp: bool,
        metrics: bool,
        webrtc: bool,
        srt: Option<Duration>,
    ) -> Server {
        let started = Instant::now();
        let mut rtmp_listen = if rtmp { format!(r#","rtmp":{{"listen":"{ip}:0"}}"#) } else { String::new() };
        if metrics {
            rtmp_listen.push_str(&format!(r#","metrics":{{"listen":"{ip}:0"}}"#));
        }
        if let Some(latency) = srt {
            rtmp_listen.push_str(&format!(r#","srt":{{"listen":"{ip}:0","latency":"{}ms"}}"#, latency.as_millis()));
        }
        // WebRTC on a port of `ip` (its candidate is read from each answer), off unless measured.
        let webrtc_listen = if webrtc { format!("{ip}:0") } else { String::new() };
        let config = format!(
            r#"{{"api":{{"listen":"{ip}:0"}},"rtsp":{{"listen":"{ip}:0","rtp_listen":"{ip}:0","rtcp_listen":"{ip}:0"}},"webrtc":{{"listen":"{webrtc_listen}"}},"streams":{{"bench":null,"bench_rtmp":null}},"log":{{"level":"warn"}}{rtmp_listen}}}"#
        );
        let dir = std::env::temp_dir().join(format!("camrelay-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut cmd = if bin.as_os_str() == FLOOR {
            let mut cmd = Command::new(std::env::current_exe().expect("own path"));
            cmd.args(["--floor-server", ip]);
            cmd
        } else {
            let mut cmd = Command::new(bin);
            cmd.args(["-c", &config]).env("RUST_LOG", "warn,camrelay::servers=info");
            cmd
        };
        // Today's server logs on stdout in go2rtc's format (`INF [rtsp] listen addr=...`); builds before
        // issue 13's restructuring log on stderr (`rtsp listening on ...`). Read both, so that older
        // builds can be measured as baselines with `--server`.
        cmd.current_dir(&dir).stdout(Stdio::piped()).stderr(Stdio::piped());
        if let Some(cpu) = cpu {
            net::pin_child(&mut cmd, cpu);
        }
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        let (tx, rx) = std::sync::mpsc::channel::<String>();
        let stdout: Box<dyn std::io::Read + Send> = Box::new(child.stdout.take().expect("stdout"));
        let stderr: Box<dyn std::io::Read + Send> = Box::new(child.stderr.take().expect("stderr"));
        for pipe in [stdout, stderr] {
            let tx = tx.clone();
            // Keeps draining after the addresses are known, so the server never blocks on a full pipe.
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        drop(tx);
        let (mut rtsp, mut api, mut rtmp_addr, mut metrics_addr, mut srt_addr) = (None, None, None, None, None);
        let mut first_listener = None;
        while rtsp.is_none()
            || api.is_none()
            || (rtmp && rtmp_addr.is_none())
            || (metrics && metrics_addr.is_none())
            || (srt.is_some() && srt_addr.is_none())
        {
            let line = rx.recv().expect("server exited");
            if first_listener.is_none() && (line.contains("] listen addr=") || line.contains(" listening on ")) {
                first_listener = Some(started.elapsed());
            }
            let after =
                |markers: [&str; 2]| markers.iter().find_map(|m| line.split(m).nth(1)).map(|a| a.trim().to_string());
            if let Some(a) = after(["[rtsp] listen addr=", "rtsp listening on "]) {
                rtsp = Some(a);
            }
            if let Some(a) = after(["[api] listen addr=", "api listening on "]) {
                api = Some(a);
            }
            if let Some(a) = after(["[rtmp] listen addr=", "[rtmp] listen addr="]) {
                rtmp_addr = Some(a);
            }
            if let Some(a) = after(["[metrics] listen addr=", "[metrics] listen addr="]) {
                metrics_addr = Some(a);
            }
            if let Some(a) = after(["[srt] listen addr=", "[srt] listen addr="]) {
                srt_addr = Some(a);
            }
        }
        let startup = started.elapsed();
        Server {
            child,
            rtsp: rtsp.unwrap_or_default(),
            api: api.unwrap_or_default(),
            rtmp: rtmp_addr.unwrap_or_default(),
            metrics: metrics_addr.unwrap_or_default(),
            srt: srt_addr.unwrap_or_default(),
            startup,
            first_listener: first_listener.unwrap_or(startup),
        }
    }

    /// A peer server (`--peer NAME=PATH`) on fixed loopback ports, with a config the bench writes for
    /// it: RTSP publishing allowed on `bench` and `bench_rtmp`, RTMP on, and MediaMTX's SRT listener.
    /// An error (saying so) when PATH is missing.
    fn start_peer(name: &str, bin: &std::path::Path) -> Result<Server, String> {
        if !bin.is_file() {
            return Err(format!("{} not present", bin.display()));
        }
        let (rtsp, rtmp, api, srt) = ("127.0.0.1:18554", "127.0.0.1:11935", "127.0.0.1:11984", "127.0.0.1:18890");
        let dir = std::env::temp_dir().join(format!("camrelay-bench-peer-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        match name {
            "go2rtc" => {
                let file = dir.join("go2rtc.yaml");
                let yaml = format!(
                    "api:\n  listen: \"{api}\"\nrtsp:\n  listen: \"{rtsp}\"\nrtmp:\n  listen: \"{rtmp}\"\nwebrtc:\n  listen: \"\"\nstreams:\n  bench:\n  bench_rtmp:\nlog:\n  level: warn\n"
                );
                std::fs::write(&file, yaml).map_err(|e| e.to_string())?;
                cmd.arg("-config").arg(&file);
            }
            "mediamtx" => {
                let file = dir.join("mediamtx.yml");
                let yaml = format!(
                    "logLevel: warn\nrtspAddress: {rtsp}\nrtspTransports: [tcp]\nrtmpAddress: {rtmp}\napi: yes\napiAddress: {api}\nhls: no\nwebrtc: no\nsrt: yes\nsrtAddress: {srt}\npaths:\n  all_others:\n"
                );
                std::fs::write(&file, yaml).map_err(|e| e.to_string())?;
                cmd.arg(&file);
            }
            other => return Err(format!("unknown peer {other:?} (go2rtc or mediamtx)")),
        }
        cmd.current_dir(&dir).stdout(Stdio::null()).stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
        let srv = Server {
            child,
            rtsp: rtsp.into(),
            api: api.into(),
            rtmp: rtmp.into(),
            metrics: String::new(),
            // MediaMTX's (go2rtc has no SRT server).
            srt: if name == "mediamtx" { srt.into() } else { String::new() },
            startup: Duration::ZERO,
            first_listener: Duration::ZERO,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while [rtsp, rtmp].iter().any(|a| std::net::TcpStream::connect(a).is_err()) {
            if Instant::now() > deadline {
                return Err(format!("{name} did not open {rtsp} and {rtmp} within 10 s"));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(srv)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn http(&self, method: &str, path: &str) -> String {
        use std::io::{Read, Write};
        let Ok(mut s) = std::net::TcpStream::connect(&self.api) else { return String::new() };
        let _ = write!(s, "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default()
    }

    /// Sum of frames dropped by the stream's readers, from the API.
    fn dropped(&self) -> u64 {
        let body = self.http("GET", "/api/streams?src=bench");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        v["consumers"].as_array().map(|c| c.iter().filter_map(|r| r["dropped"].as_u64()).sum()).unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Publisher write times of recent video frames, keyed by [`rtmp_load::avcc_first_vcl_key`].
#[derive(Default)]
struct SendTimes {
    map: HashMap<u64, Instant>,
    order: VecDeque<(u64, Instant)>,
}

impl SendTimes {
    fn insert(&mut self, key: u64, at: Instant) {
        self.map.insert(key, at);
        self.order.push_back((key, at));
        while self.order.front().is_some_and(|(_, t)| at.duration_since(*t) > Duration::from_secs(5)) {
            if let Some((k, t)) = self.order.pop_front() {
                if self.map.get(&k) == Some(&t) {
                    self.map.remove(&k);
                }
            }
        }
    }
}

/// Publishes the clip in real time, looping, until `stop`. Counts bytes sent.
async fn publish(
    url: String,
    clip: Arc<clip::Clip>,
    times: Arc<Mutex<SendTimes>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) {
    let mut conn = Conn::connect(url.trim_start_matches("rtsp://").split('/').next().unwrap_or(""))
        .await
        .expect("publisher connect");
    let mut v = Media::new(Kind::Video, Direction::SendOnly, vec![clip.video_codec.clone()]);
    v.control = "trackID=0".into();
    let mut a = Media::new(Kind::Audio, Direction::SendOnly, vec![clip.audio_codec.clone()]);
    a.control = "trackID=1".into();
    let sdp = rtsp::sdp::write(&[v, a], "bench", "127.0.0.1");
    conn.request("ANNOUNCE", &url, &[("Content-Type", "application/sdp".into())], sdp.as_bytes())
        .await
        .expect("ANNOUNCE");
    for (i, ch) in [(0, "0-1"), (1, "2-3")] {
        let t = format!("RTP/AVP/TCP;unicast;interleaved={ch};mode=record");
        conn.request("SETUP", &format!("{url}/trackID={i}"), &[("Transport", t)], b"").await.expect("SETUP");
    }
    conn.request("RECORD", &url, &[], b"").await.expect("RECORD");
    let start = tokio::time::Instant::now();
    let clip_ticks_v = 90_000 * clip::SECONDS;
    let clip_ticks_a = clip.audio.len() as u32 * 1024;
    let (mut vi, mut ai) = (0usize, 0usize);
    let (mut vseq, mut aseq) = (0u16, 0u16);
    let mut out = Vec::with_capacity(256 * 1024);
    let mut discard = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let v_at = start + Duration::from_secs_f64(vi as f64 / clip::FPS as f64);
        let a_at = start + Duration::from_secs_f64(ai as f64 * 1024.0 / 48_000.0);
        let (video, at) = if v_at <= a_at { (true, v_at) } else { (false, a_at) };
        tokio::time::sleep_until(at).await;
        out.clear();
        let (frame, loops, channel, seq, ticks, ssrc, pt) = if video {
            let f = &clip.video[vi % clip.video.len()];
            (f, (vi / clip.video.len()) as u32, 0u8, &mut vseq, clip_ticks_v, 0x1111u32, 96u8)
        } else {
            let f = &clip.audio[ai % clip.audio.len()];
            (f, (ai / clip.audio.len()) as u32, 2u8, &mut aseq, clip_ticks_a, 0x2222u32, 97u8)
        };
        let ts = frame.timestamp.wrapping_add(loops.wrapping_mul(ticks));
        for p in &frame.rtp {
            let mut header = [0u8; 12];
            rtp::packet::write_header(&mut header, p.marker, pt, *seq, ts, ssrc);
            *seq = seq.wrapping_add(1);
            out.push(b'$');
            out.push(channel);
            out.extend_from_slice(&((12 + p.payload.len()) as u16).to_be_bytes());
            out.extend_from_slice(&header);
            out.extend_from_slice(&p.payload);
        }
        if video {
            if let Some(key) = rtmp_load::avcc_first_vcl_key(&frame.payload) {
                times.lock().unwrap().insert(key, Instant::now());
            }
            vi += 1;
        } else {
            ai += 1;
        }
        if conn.stream.write_all(&out).await.is_err() {
            return;
        }
        sent.fetch_add(out.len() as u64, Ordering::Relaxed);
        // The server sends nothing we need (RTCP at most): keep the socket drained.
        while let Ok(n) = conn.stream.try_read(&mut discard) {
            if n == 0 {
                return;
            }
        }
    }
}

/// One reader: DESCRIBE/SETUP/PLAY, then count everything until `stop`.
async fn read(
    url: String,
    times: Option<Arc<Mutex<SendTimes>>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ReaderStats>>,
) -> Result<(), String> {
    let connected = Instant::now();
    let host = url.trim_start_matches("rtsp://").split('/').next().unwrap_or("").to_string();
    let mut conn = Conn::connect(&host).await.map_err(|e| e.to_string())?;
    conn.request("DESCRIBE", &url, &[], b"").await?;
    conn.request(
        "SETUP",
        &format!("{url}/trackID=0"),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=0-1".into())],
        b"",
    )
    .await?;
    conn.request(
        "SETUP",
        &format!("{url}/trackID=1"),
        &[("Transport", "RTP/AVP/TCP;unicast;interleaved=2-3".into())],
        b"",
    )
    .await?;
    conn.request("PLAY", &url, &[], b"").await?;
    let mut buf = std::mem::replace(&mut conn.buf, BytesMut::new());
    buf.reserve(256 * 1024);
    let mut last_ts = None;
    let mut local = ReaderStats::default();
    let mut flush_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let n = tokio::time::timeout(Duration::from_millis(200), conn.stream.read_buf(&mut buf)).await;
        match n {
            Ok(Ok(0)) => return Err("server closed".into()),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => continue,
            Ok(Ok(_)) => {}
        }
        let received = Instant::now();
        client::drain_interleaved(&mut buf, |channel, packet| {
            local.bytes += packet.len() as u64 + 4;
            local.packets += 1;
            if channel != 0 || packet.len() < 12 {
                return;
            }
            let ts = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
            let payload = &packet[12..];
            // Latency: the packet that starts the frame's first slice (the key the publisher recorded).
            if let Some(times) = &times {
                if local.latency_us.len() < 100_000 {
                    if let Some(key) = rtmp_load::rtp_vcl_key(payload) {
                        if let Some(sent) = times.lock().unwrap().map.get(&key) {
                            local.latency_us.push(received.saturating_duration_since(*sent).as_micros() as u32);
                        }
                    }
                }
            }
            if last_ts == Some(ts) {
                return;
            }
            last_ts = Some(ts);
            local.video_frames += 1;
            if local.first_keyframe.is_none() && client::starts_keyframe(payload) {
                local.first_keyframe = Some(received - connected);
            }
        })?;
        // Publish counters to the coordinator a few times a second (cheap: no lock per packet).
        if received.duration_since(flush_at) > Duration::from_millis(100) {
            flush_at = received;
            local.flush_into(&stats);
        }
    }
    Ok(())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    v
}

struct FanOut {
    readers: usize,
    connected: usize,
    server_cpu_s: f64,
    server_user_pct: f64,
    server_cpu_pct: f64,
    client_cpu_pct: f64,
    peak_rss_mib: f64,
    stream_mbps: f64,
    delivered_mbps: f64,
    cpu_pct_per_100mbps: f64,
    min_ratio: f64,
    median_mbps: f64,
    min_mbps: f64,
    dropped: u64,
    latency_ms: Option<(f64, f64, f64)>,
    latency_p95_ms: f64,
    /// Share of each CPU's time spent in softirq during the window (where receive processing ran).
    softirq_pct: Vec<f64>,
    /// Per reader: connect → first media packet (ms), in connection order.
    first_media_ms: Vec<f64>,
}

/// What the readers of a fan-out are.
#[derive(Clone)]
enum Target {
    /// RTSP/TCP readers of this URL.
    Rtsp(String),
    /// RTMP players of `rtmp://addr/stream`.
    Rtmp { addr: String, stream: String },
    /// WebRTC viewers POSTing WHEP offers to `path` on the API listener `api`.
    Webrtc { api: String, path: String, identity: Arc<webrtc_load::Identity> },
    /// HLS viewers of the stream `src` (go2rtc's `stream.m3u8` on the API listener `api`).
    Hls { api: String, src: String },
    /// SRT readers (`read:stream`) of the SRT listener `addr`, with this SRT latency.
    Srt { addr: std::net::SocketAddr, stream: String, latency: Duration },
}

async fn fan_out(
    srv: &Server,
    target: &Target,
    n: usize,
    window: Duration,
    times: Option<Arc<Mutex<SendTimes>>>,
    sent: &AtomicU64,
) -> FanOut {
    let stop = Arc::new(AtomicBool::new(false));
    let stats: Vec<Arc<Mutex<ReaderStats>>> = (0..n).map(|_| Arc::default()).collect();
    let mut tasks = Vec::new();
    for s in &stats {
        tasks.push(match target {
            Target::Rtsp(url) => tokio::spawn(read(url.clone(), times.clone(), stop.clone(), s.clone())),
            Target::Rtmp { addr, stream } => {
                tokio::spawn(rtmp_load::play(addr.clone(), stream.clone(), times.clone(), stop.clone(), s.clone()))
            }
            Target::Webrtc { api, path, identity } => {
                let seed = 0x9E37_79B9_7F4A_7C15 ^ ((tasks.len() as u64 + 1) << 20) ^ std::process::id() as u64;
                let viewer =
                    webrtc_load::view(api.clone(), path.clone(), identity.clone(), seed, stop.clone(), s.clone());
                tokio::spawn(async move {
                    let r = viewer.await;
                    if let Err(e) = &r {
                        eprintln!("webrtc viewer: {e}");
                    }
                    r
                })
            }
            Target::Hls { api, src } => {
                let (api, src, stop, s) = (api.clone(), src.clone(), stop.clone(), s.clone());
                tokio::spawn(async move {
                    let r = hls_load::view(api, src, &stop, &s).await;
                    if let Err(e) = &r {
                        eprintln!("hls viewer: {e}");
                    }
                    r
                })
            }
            Target::Srt { addr, stream, latency } => {
                let reader = srt_load::read(*addr, stream.clone(), *latency, times.clone(), stop.clone(), s.clone());
                tokio::spawn(async move {
                    let r = reader.await;
                    if let Err(e) = &r {
                        eprintln!("srt reader: {e}");
                    }
                    r
                })
            }
        });
    }
    // Warm up: every reader has its first keyframe (or 15 s passed).
    let warm_deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < warm_deadline && stats.iter().any(|s| s.lock().unwrap().first_keyframe.is_none()) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let connected = stats.iter().filter(|s| s.lock().unwrap().first_keyframe.is_some()).count();
    let first_media_ms =
        stats.iter().filter_map(|s| s.lock().unwrap().first_keyframe).map(|d| d.as_secs_f64() * 1000.0).collect();
    for s in &stats {
        let mut s = s.lock().unwrap();
        let first = s.first_keyframe;
        *s = ReaderStats { first_keyframe: first, ..Default::default() };
    }
    let dropped_before = srv.dropped();
    let pid = srv.pid();
    let cpu0 = procstat::cpu_seconds(pid);
    let user0 = procstat::user_seconds(pid);
    let me0 = procstat::cpu_seconds(std::process::id());
    let soft0 = procstat::cpu_softirq_ticks();
    let sent0 = sent.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let mut peak_rss = 0;
    while t0.elapsed() < window {
        peak_rss = peak_rss.max(procstat::rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = procstat::cpu_seconds(pid) - cpu0;
    let user = procstat::user_seconds(pid) - user0;
    let me = procstat::cpu_seconds(std::process::id()) - me0;
    let softirq_pct = procstat::cpu_softirq_ticks()
        .iter()
        .zip(&soft0)
        .map(|((s1, t1), (s0, t0))| (s1 - s0) as f64 * 100.0 / (t1 - t0).max(1) as f64)
        .collect();
    let stream_bytes = (sent.load(Ordering::Relaxed) - sent0) as f64;
    let per_reader: Vec<f64> = stats.iter().map(|s| s.lock().unwrap().bytes as f64 * 8.0 / elapsed / 1e6).collect();
    let dropped = srv.dropped().saturating_sub(dropped_before);
    let mut latencies = Vec::new();
    for s in &stats {
        latencies.extend(s.lock().unwrap().latency_us.iter().map(|&u| u as f64 / 1000.0));
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let per_reader = sorted(per_reader);
    let stream_mbps = stream_bytes * 8.0 / elapsed / 1e6;
    let delivered: f64 = per_reader.iter().sum();
    let latencies = sorted(latencies);
    FanOut {
        readers: n,
        connected,
        server_cpu_s: cpu,
        server_cpu_pct: cpu / elapsed * 100.0,
        server_user_pct: user / elapsed * 100.0,
        client_cpu_pct: me / elapsed * 100.0,
        peak_rss_mib: peak_rss as f64 / 1024.0,
        stream_mbps,
        delivered_mbps: delivered,
        cpu_pct_per_100mbps: if delivered > 0.0 { cpu / elapsed * 100.0 / (delivered / 100.0) } else { f64::NAN },
        min_ratio: per_reader.first().copied().unwrap_or(0.0) / stream_mbps,
        median_mbps: percentile(&per_reader, 0.5),
        min_mbps: per_reader.first().copied().unwrap_or(0.0),
        dropped,
        latency_ms: (!latencies.is_empty())
            .then(|| (percentile(&latencies, 0.5), percentile(&latencies, 0.9), percentile(&latencies, 0.99))),
        latency_p95_ms: percentile(&latencies, 0.95),
        softirq_pct,
        first_media_ms,
    }
}

/// Connect → first keyframe packet for `joins` new readers at random points of the GOP.
async fn time_to_first_frame(url: &str, joins: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut seed = 0x2545F4914F6CDD1Du64 ^ std::process::id() as u64;
    for _ in 0..joins {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(seed % 1000)).await;
        let stop = Arc::new(AtomicBool::new(false));
        let stats = Arc::new(Mutex::new(ReaderStats::default()));
        let task = tokio::spawn(read(url.to_string(), None, stop.clone(), stats.clone()));
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && stats.lock().unwrap().first_keyframe.is_none() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        stop.store(true, Ordering::Relaxed);
        let _ = task.await;
        let first = stats.lock().unwrap().first_keyframe;
        if let Some(d) = first {
            out.push(d.as_secs_f64() * 1000.0);
        }
    }
    sorted(out)
}

/// Request → first fMP4 fragment (`mdat`, which starts at a keyframe) for `GET /api/stream.mp4`.
async fn time_to_first_mp4_frame(api: &str, joins: usize) -> Vec<f64> {
    let mut out = Vec::new();
    let mut seed = 0x9E3779B97F4A7C15u64 ^ std::process::id() as u64;
    for _ in 0..joins {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        tokio::time::sleep(Duration::from_millis(seed % 1000)).await;
        let started = Instant::now();
        let Ok(mut s) = tokio::net::TcpStream::connect(api).await else { continue };
        let req = format!("GET /api/stream.mp4?src=bench HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
        if s.write_all(req.as_bytes()).await.is_err() {
            continue;
        }
        let mut got = Vec::new();
        let mut buf = [0u8; 16384];
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
            if got.windows(4).any(|w| w == b"mdat") {
                out.push(started.elapsed().as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    sorted(out)
}

/// Minimal HTTP/1.1 GET on loopback: the body as text.
async fn http_get(api: &str, path: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(api).await.ok()?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut out)).await.ok()?.ok()?;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.split_once("\r\n\r\n").map(|(_, b)| b.to_string())
}

/// `stream.m3u8` request → first segment downloaded, for `joins` new HLS sessions.
async fn time_to_first_hls_segment(api: &str, joins: usize) -> Vec<f64> {
    let mut out = Vec::new();
    for _ in 0..joins {
        let started = Instant::now();
        let Some(master) = http_get(api, "/api/stream.m3u8?src=bench").await else { continue };
        let Some(variant) = master.lines().find(|l| l.starts_with("hls/")) else { continue };
        let Some(playlist) = http_get(api, &format!("/api/{variant}")).await else { continue };
        let Some(segment) = playlist.lines().find(|l| l.starts_with("segment")) else { continue };
        if http_get(api, &format!("/api/hls/{segment}")).await.is_some() {
            out.push(started.elapsed().as_secs_f64() * 1000.0);
        }
    }
    sorted(out)
}

/// RSS added per connected-but-idle reader (DESCRIBE+SETUP, no PLAY) and per configured stream.
async fn idle_memory(srv: &Server, url: &str) -> (f64, f64) {
    let n = 200;
    let before = procstat::rss_kib(srv.pid());
    let mut conns = Vec::new();
    for _ in 0..n {
        let host = url.trim_start_matches("rtsp://").split('/').next().unwrap_or("").to_string();
        if let Ok(mut c) = Conn::connect(&host).await {
            if c.request("DESCRIBE", url, &[], b"").await.is_ok() {
                conns.push(c);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = procstat::rss_kib(srv.pid());
    let per_reader = (after as f64 - before as f64) / conns.len().max(1) as f64;
    drop(conns);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = procstat::rss_kib(srv.pid());
    for i in 0..n {
        srv.http("PATCH", &format!("/api/streams?name=idle{i}&src=demo:clip"));
    }
    let after = procstat::rss_kib(srv.pid());
    (per_reader, (after as f64 - before as f64) / n as f64)
}

/// A thousand readers are a thousand sockets here (and in the server, which raises its own limit):
/// lift the soft open-files limit to the hard one, as the server does.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit/setrlimit read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max {
            limit.rlim_cur = limit.rlim_max.min(1 << 20);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn build_release() -> PathBuf {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "-p", "camrelay"])
        .status()
        .expect("cargo build");
    assert!(status.success(), "building camrelay failed");
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    PathBuf::from(target).join("release/camrelay")
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if argv.get(1).map(String::as_str) == Some("--floor-server") {
        floor::serve(argv.get(2).map(String::as_str).unwrap_or("127.0.0.1"));
    }
    let number = |i: usize, default: usize| argv.get(i).map_or(default, |v| v.parse().expect("a number"));
    match argv.get(1).map(String::as_str) {
        Some("--http-floor-server") => metrics_scrape::floor_server(number(2, 1 << 20)),
        Some("--http-floor") => return metrics_scrape::floor(number(2, 1 << 20), number(3, 5000)),
        _ => {}
    }
    let args = parse_args();
    raise_open_file_limit();
    let bin = args.server.clone().unwrap_or_else(build_release);
    let floor = bin.as_os_str() == FLOOR;
    let bin =
        if floor { bin } else { std::fs::canonicalize(&bin).unwrap_or_else(|e| panic!("{}: {e}", bin.display())) };
    let clip = Arc::new(clip::load(std::path::Path::new("target/bench-media")).expect("benchmark clip"));
    if let Some(n) = args.record {
        record_load::report(&args, &bin, &clip, n);
        return;
    }
    if let Some(runs) = args.first_picture {
        first_picture::report(&args, &bin, &clip, runs);
        return;
    }
    // Removes the namespace when main returns (declared before the server: dropped after it).
    struct NetGuard;
    impl Drop for NetGuard {
        fn drop(&mut self) {
            net::cleanup();
        }
    }
    let _net_guard = NetGuard;
    let veth = match args.net {
        NetMode::Loopback => None,
        NetMode::Veth => Some(net::Veth::create().unwrap_or_else(|e| {
            eprintln!("--net veth: {e}");
            std::process::exit(2)
        })),
    };
    let srv = match &veth {
        None => Server::start(
            &bin,
            "127.0.0.1",
            None,
            args.rtmp,
            args.metrics_scrape.is_some(),
            args.webrtc,
            args.srt.then_some(args.srt_latency),
        ),
        Some(v) => {
            let srv = Server::start(
                &bin,
                &v.server_ip,
                Some(v.server_cpu),
                args.rtmp,
                args.metrics_scrape.is_some(),
                args.webrtc,
                args.srt.then_some(args.srt_latency),
            );
            v.set_server_pid(srv.pid());
            // The runtime's threads are created after this: they inherit the namespace and the CPU.
            if let Err(e) = v.enter_client_side() {
                drop(srv);
                net::cleanup();
                eprintln!("--net veth: {e}");
                std::process::exit(2);
            }
            let (client_mask, server_mask) = v.rps_masks();
            eprintln!(
                "veth: server {} on CPU {} (rps_cpus {}), client {} in netns {} on CPU {} (rps_cpus {})",
                v.server_ip, v.server_cpu, server_mask, v.client_ip, v.netns, v.client_cpu, client_mask
            );
            srv
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    eprintln!("server pid {}, network: {}", srv.pid(), args.net.name());
    if args.webrtc || args.hls || args.srt {
        let versus = if args.webrtc {
            versus_report::Versus::Webrtc
        } else if args.hls {
            versus_report::Versus::Hls
        } else {
            versus_report::Versus::Srt
        };
        versus_report::versus_report(&args, &bin, srv, &clip, &rt, versus);
        return;
    }
    if let Some(n) = args.hls_sessions {
        hls_sessions::report(&args, srv, &clip, &rt, n);
        return;
    }
    if args.rtmp {
        rtmp_report::rtmp_report(&args, &bin, srv, &clip, &rt);
        return;
    }
    if let Some(every) = args.metrics_scrape {
        metrics_scrape::report(&args, srv, &clip, &rt, every);
        return;
    }
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let times = Arc::new(Mutex::new(SendTimes::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let mut rows = Vec::new();
    let (ttff, ttff_mp4, ttff_hls, idle, jpeg_starts) = rt.block_on(async {
        let publisher = tokio::spawn(publish(url.clone(), clip.clone(), times.clone(), sent.clone(), stop.clone()));
        // Wait for the publisher's first GOP to reach the server.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        if args.only_jpeg && !floor {
            eprintln!("JPEG outputs: {} cold starts...", args.jpeg_starts);
            let starts = jpeg::cold_starts(&srv.api, "bench", args.jpeg_starts).await;
            stop.store(true, Ordering::Relaxed);
            let _ = publisher.await;
            return (vec![], vec![], vec![], (f64::NAN, f64::NAN), starts);
        }
        // Memory first: later runs leave freed memory in the allocator that new sessions would reuse.
        // The floor serves only the fan-out (no stream API, GOP cache or HTTP streaming).
        let idle = if floor {
            (f64::NAN, f64::NAN)
        } else {
            eprintln!("idle memory...");
            idle_memory(&srv, &url).await
        };
        for &n in &args.readers {
            let lat = args.latency_readers.contains(&n).then(|| times.clone());
            eprintln!("fan-out: {n} readers...");
            rows.push(fan_out(&srv, &Target::Rtsp(url.clone()), n, args.window, lat, &sent).await);
        }
        if floor {
            stop.store(true, Ordering::Relaxed);
            let _ = publisher.await;
            return (vec![], vec![], vec![], idle, jpeg::JpegStarts::default());
        }
        eprintln!("time to first frame: {} joins...", args.joins);
        let ttff = time_to_first_frame(&url, args.joins).await;
        let ttff_mp4 = time_to_first_mp4_frame(&srv.api, args.joins).await;
        eprintln!("time to first HLS segment: 5 sessions...");
        let ttff_hls = time_to_first_hls_segment(&srv.api, 5).await;
        eprintln!("JPEG outputs: {} cold starts...", args.jpeg_starts);
        let starts = jpeg::cold_starts(&srv.api, "bench", args.jpeg_starts).await;
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.await;
        (ttff, ttff_mp4, ttff_hls, idle, starts)
    });

    println!(
        "## camrelay-bench: 1280x720 30 fps H.264 (~2.5 Mbit/s, 1 s GOP) + AAC over RTSP/TCP, window {:?}\n",
        args.window
    );
    println!("Network: {}\n", args.net.describe());
    println!("| readers | connected | server CPU s | server % core (user) | CPU % per 100 Mbit/s | peak RSS MiB | stream Mbit/s | min reader Mbit/s | median Mbit/s | min/stream | dropped | latency p50/p90/p99 ms | load client % core |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in &rows {
        let lat = r.latency_ms.map(|(a, b, c)| format!("{a:.2} / {b:.2} / {c:.2}")).unwrap_or_else(|| "-".into());
        println!(
            "| {} | {} | {:.2} | {:.1} ({:.1}) | {:.2} | {:.1} | {:.2} | {:.2} | {:.2} | {:.3} | {} | {} | {:.1} |",
            r.readers,
            r.connected,
            r.server_cpu_s,
            r.server_cpu_pct,
            r.server_user_pct,
            r.cpu_pct_per_100mbps,
            r.peak_rss_mib,
            r.stream_mbps,
            r.min_mbps,
            r.median_mbps,
            r.min_ratio,
            r.dropped,
            lat,
            r.client_cpu_pct
        );
    }
    println!("\nSoftirq share of each CPU during the windows (where packet receive processing ran):");
    for r in &rows {
        let cpus: Vec<String> = r.softirq_pct.iter().enumerate().map(|(i, p)| format!("CPU {i} {p:.1} %")).collect();
        println!("- {} readers: {}", r.readers, cpus.join(", "));
    }
    println!(
        "\nTime to first keyframe (RTSP, {} joins at random points in the GOP): median {:.1} ms, p90 {:.1} ms",
        ttff.len(),
        percentile(&ttff, 0.5),
        percentile(&ttff, 0.9)
    );
    println!(
        "Time to first keyframe (stream.mp4, {} joins): median {:.1} ms, p90 {:.1} ms",
        ttff_mp4.len(),
        percentile(&ttff_mp4, 0.5),
        percentile(&ttff_mp4, 0.9)
    );
    println!(
        "Time to first HLS segment (stream.m3u8 → playlist → segment, {} sessions): median {:.0} ms, p90 {:.0} ms",
        ttff_hls.len(),
        percentile(&ttff_hls, 0.5),
        percentile(&ttff_hls, 0.9)
    );
    let starts = [
        ("stream.mjpeg, no transcoder running: request → first JPEG", &jpeg_starts.mjpeg_cold),
        ("frame.jpeg, no transcoder running (one-shot ffmpeg)", &jpeg_starts.frame_cold),
        ("frame.jpeg while a stream.mjpeg viewer keeps the transcoder running", &jpeg_starts.frame_warm),
    ];
    for (what, ms) in starts {
        println!(
            "JPEG start ({what}, {} starts): median {:.0} ms, min {:.0} ms, max {:.0} ms",
            ms.len(),
            percentile(ms, 0.5),
            percentile(ms, 0.0),
            percentile(ms, 1.0)
        );
    }
    println!(
        "Memory: {:.1} KiB per idle reader (DESCRIBE, no PLAY), {:.1} KiB per configured idle stream",
        idle.0, idle.1
    );

    let json = serde_json::json!({
        "server": bin.display().to_string(),
        "window_s": args.window.as_secs_f64(),
        "net": args.net.name(),
        "fan_out": rows.iter().map(|r| serde_json::json!({
            "readers": r.readers, "connected": r.connected, "server_cpu_s": r.server_cpu_s,
            "server_cpu_pct": r.server_cpu_pct, "server_user_pct": r.server_user_pct, "cpu_pct_per_100mbps": r.cpu_pct_per_100mbps,
            "peak_rss_mib": r.peak_rss_mib, "stream_mbps": r.stream_mbps, "delivered_mbps": r.delivered_mbps,
            "min_reader_mbps": r.min_mbps, "median_reader_mbps": r.median_mbps, "min_ratio": r.min_ratio,
            "dropped": r.dropped, "client_cpu_pct": r.client_cpu_pct, "softirq_pct_per_cpu": r.softirq_pct,
            "latency_ms": r.latency_ms.map(|(a, b, c)| serde_json::json!({"p50": a, "p90": b, "p99": c})),
        })).collect::<Vec<_>>(),
        "ttff_rtsp_ms": {"median": percentile(&ttff, 0.5), "p90": percentile(&ttff, 0.9), "samples": ttff},
        "ttff_hls_ms": {"median": percentile(&ttff_hls, 0.5), "p90": percentile(&ttff_hls, 0.9), "samples": ttff_hls},
        "ttff_mp4_ms": {"median": percentile(&ttff_mp4, 0.5), "p90": percentile(&ttff_mp4, 0.9), "samples": ttff_mp4},
        "jpeg_start_ms": {
            "mjpeg_cold": {"median": percentile(&jpeg_starts.mjpeg_cold, 0.5), "samples": jpeg_starts.mjpeg_cold},
            "frame_cold": {"median": percentile(&jpeg_starts.frame_cold, 0.5), "samples": jpeg_starts.frame_cold},
            "frame_warm": {"median": percentile(&jpeg_starts.frame_warm, 0.5), "samples": jpeg_starts.frame_warm},
        },
        "idle_reader_kib": idle.0,
        "idle_stream_kib": idle.1,
    });
    crate::write_json_report(&args.json, &json);
}
