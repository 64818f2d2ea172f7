//! Test harness: runs the real `camrelay` binary from a YAML string on free loopback ports, and the
//! real clients (ffmpeg, ffprobe) against it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub struct Server {
    child: Child,
    pub api: Option<SocketAddr>,
    pub rtsp: Option<SocketAddr>,
    pub dir: PathBuf,
    pub log: Arc<Mutex<String>>,
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("camrelay-test-{tag}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

/// Ports default to `127.0.0.1:0` so tests never collide; a config may set its own.
/// Given first as an inline config, so the test's YAML file (the one API edits persist into) overrides it.
pub const BASE_CONFIG: &str = r#"{"api":{"listen":"127.0.0.1:0"},"rtsp":{"listen":"127.0.0.1:0","rtp_listen":"127.0.0.1:0","rtcp_listen":"127.0.0.1:0"},"webrtc":{"listen":"127.0.0.1:0"}}"#;

impl Server {
    /// Starts the binary with `BASE_CONFIG` and then `yaml` (as the file `camrelay.yaml`) over it.
    pub fn start(yaml: &str) -> Server {
        Self::start_with_args(yaml, &[])
    }

    pub fn start_with_args(yaml: &str, extra: &[&str]) -> Server {
        Self::start_full(yaml, extra, &[])
    }

    /// Like [`Server::start_with_args`], with environment variables (`${VAR}` in the config).
    pub fn start_full(yaml: &str, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_wrapped(yaml, extra, env, &[])
    }

    /// Like [`Server::start_full`], run through `wrapper`: a command that ends by running the program
    /// and arguments given after it (`unshare --mount sh -c 'mount ...; exec "$0" "$@"'`), in the same
    /// process (so [`Server::pid`] is the server's).
    pub fn start_wrapped(yaml: &str, extra: &[&str], env: &[(&str, &str)], wrapper: &[&str]) -> Server {
        let dir = temp_dir("srv");
        let config = dir.join("camrelay.yaml");
        std::fs::write(&config, yaml).unwrap();
        let mut cmd = match wrapper.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(env!("CARGO_BIN_EXE_camrelay"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_camrelay")),
        };
        cmd.current_dir(&dir)
            .arg("-c")
            .arg(BASE_CONFIG)
            .arg("-c")
            .arg(&config)
            .args(extra)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start camrelay");
        // Log lines are on stdout (go2rtc's console); stderr only has what comes before the logger
        // (config errors) or a crash, kept in the same log.
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(String::new()));
        let log_err = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log_err.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let (tx, rx) = mpsc::channel();
        let log2 = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line.clone());
                log2.lock().unwrap().push_str(&(line + "\n"));
            }
        });
        let (mut api, mut rtsp) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(30);
        while api.is_none() || rtsp.is_none() {
            let line = rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                panic!("server did not start; log:\n{}", log.lock().unwrap());
            });
            if let Some(addr) = line.split("[api] listen addr=").nth(1) {
                api = addr.trim().parse().ok();
            }
            // The RTSPS listener's line (`... tls`) is not the plain one.
            if let Some(addr) = line.split("[rtsp] listen addr=").nth(1).filter(|a| !a.trim().ends_with(" tls")) {
                rtsp = addr.trim().parse().ok();
            }
        }
        // Keep draining so the server never blocks on a full stdout pipe.
        std::thread::spawn(move || while rx.recv().is_ok() {});
        Server { child, api, rtsp, dir, log }
    }

    /// The address of the plain RTMP listener (`rtmp: listen` / `rtmpAddress`), from its log line.
    pub fn rtmp_addr(&self) -> SocketAddr {
        let found = wait_until(Duration::from_secs(30), || {
            self.log().lines().any(|l| l.contains("[rtmp] listen addr=") && !l.contains("tls"))
        });
        assert!(found, "no rtmp listener; log:\n{}", self.log());
        let log = self.log();
        let line = log.lines().find(|l| l.contains("[rtmp] listen addr=") && !l.contains("tls")).unwrap();
        line.split("[rtmp] listen addr=").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap()
    }

    pub fn rtsp_url(&self, path: &str) -> String {
        format!("rtsp://{}/{path}", self.rtsp.unwrap())
    }

    pub fn api_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.api.unwrap())
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server process's resident memory (VmRSS), in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Waits until the log contains `needle`.
    pub fn wait_log(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || self.log().contains(needle))
    }

    pub fn http(&self, method: &str, path: &str) -> HttpResponse {
        http_request(self.api.unwrap(), method, path, &[], b"")
    }

    /// A request to another of the server's listeners (`addr` as its log line gives it).
    pub fn http_at(&self, addr: &str, method: &str, path: &str) -> HttpResponse {
        http_request(addr.parse().expect("listener address"), method, path, &[], b"")
    }

    /// Kills the server with SIGKILL (no cleanup: a crash) and waits for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        unsafe_kill(self.child.id(), "TERM");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn unsafe_kill(pid: u32, signal: &str) {
    let _ = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status();
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    f()
}

pub struct HttpResponse {
    pub status: u16,
    pub headers: String,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
}

/// A minimal HTTP/1.1 client (Connection: close), enough to check status codes, headers and bodies.
pub fn http_request(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(addr).unwrap();
    // Longer than the server's own waits (an HLS playlist is held up to 15 s for its first segment).
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut req =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").expect("HTTP response head");
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let mut body = raw[split + 4..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    HttpResponse { status, headers: head, body }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&data[..pos]).unwrap().trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.extend_from_slice(&data[pos + 2..pos + 2 + size]);
        data = &data[pos + 4 + size..];
    }
    out
}

/// Runs a command with a time limit; kills it when the limit passes.
/// An ffmpeg reader of an RTSP URL (TCP) that runs `seconds` in a thread, so that a source stays wanted
/// while the test looks at it.
pub fn rtsp_reader_for(url: &str, seconds: u32) -> std::thread::JoinHandle<Output> {
    let url = url.to_string();
    std::thread::spawn(move || {
        let secs = seconds.to_string();
        run_with_timeout(
            Command::new("ffmpeg").args([
                "-v",
                "error",
                "-rtsp_transport",
                "tcp",
                "-i",
                &url,
                "-t",
                &secs,
                "-f",
                "null",
                "-",
            ]),
            Duration::from_secs(u64::from(seconds) + 3),
        )
    })
}

/// The lines a child writes to a pipe (its stdout or stderr), as they come, from a reader thread.
pub fn lines_of(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// The network a Chromium test script runs in.
pub enum BrowserNet {
    /// A namespace of its own with only loopback.
    Loopback,
    /// A namespace of its own with loopback and a veth pair holding 10.99.0.1: Chromium gathers WebRTC
    /// candidates only on a non-loopback interface. Both ends stay inside the namespace.
    Veth,
}

/// Runs `node SCRIPT ARGS...` in `tests/browser` (headless Chromium through playwright-core) in a network
/// namespace of its own, and answers the JSON object of its last stdout line that holds one (the scripts'
/// report). Fails the test, with the script's output, when there is none.
pub fn run_browser_script(net: BrowserNet, script: &str, args: &[&str], timeout: Duration) -> serde_json::Value {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    assert!(
        dir.join("node_modules/playwright-core").exists(),
        "run `npm ci` in {} (scripts/test.sh does)",
        dir.display()
    );
    let setup = match net {
        BrowserNet::Loopback => "ip link set lo up",
        BrowserNet::Veth => {
            "ip link set lo up && ip link add veth0 type veth peer name veth1 && ip addr add 10.99.0.1/24 dev veth0 \
             && ip link set veth0 up && ip link set veth1 up"
        }
    };
    let quoted: Vec<String> = args.iter().map(|a| format!("'{}'", a.replace('\'', r"'\''"))).collect();
    let command = format!("{setup} && exec node {script} {}", quoted.join(" "));
    let out =
        run_with_timeout(Command::new("unshare").args(["--net", "sh", "-c", &command]).current_dir(&dir), timeout);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or("");
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("{script}: {e}: stdout {stdout} stderr {}", String::from_utf8_lossy(&out.stderr)))
}

pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn client");
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out_t.join().unwrap(), stderr: err_t.join().unwrap() }
}

#[derive(Debug, Clone)]
pub struct ProbedStream {
    pub codec_type: String,
    pub codec_name: String,
    pub width: u64,
    pub height: u64,
    pub sample_rate: u64,
}

/// ffprobe's view of a URL's streams.
pub fn ffprobe(url: &str, transport: &str) -> Result<Vec<ProbedStream>, String> {
    let out = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-rtsp_transport",
            transport,
            "-show_entries",
            "stream=codec_type,codec_name,width,height,sample_rate",
            "-of",
            "json",
            url,
        ]),
        Duration::from_secs(30),
    );
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())?;
    Ok(v["streams"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|s| ProbedStream {
            codec_type: s["codec_type"].as_str().unwrap_or("").into(),
            codec_name: s["codec_name"].as_str().unwrap_or("").into(),
            width: s["width"].as_u64().unwrap_or(0),
            height: s["height"].as_u64().unwrap_or(0),
            sample_rate: s["sample_rate"].as_str().and_then(|r| r.parse().ok()).unwrap_or(0),
        })
        .collect())
}

/// Decodes up to `frames` video frames of `url` with ffmpeg (`input`: its options before `-i`, such as
/// `-rtsp_transport tcp`); returns how many decoded (framecrc prints a line per decoded frame) and what
/// ffmpeg said on stderr.
pub fn decode_frames(input: &[&str], url: &str, frames: u32, timeout: Duration) -> (usize, String) {
    let count = frames.to_string();
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error"])
            .args(input)
            .args(["-i", url, "-map", "0:v:0", "-frames:v"])
            .args([count.as_str(), "-f", "framecrc", "-"]),
        timeout,
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    (n, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// What ffmpeg decoded of `seconds` of `url`'s first video and audio streams (framecrc lines of
/// stream 0 and 1), whether it exited cleanly, and what it said on stderr.
pub struct DecodedAv {
    pub video: usize,
    pub audio: usize,
    pub success: bool,
    pub stderr: String,
}

/// Decodes `seconds` of `url` with ffmpeg (video and audio, every frame): see [`DecodedAv`].
pub fn decode_av(url: &str, seconds: u32) -> DecodedAv {
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-i", url, "-t", &seconds.to_string(), "-f", "framecrc", "-"]),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let frames = |stream: &str| text.lines().filter(|l| l.starts_with(&format!("{stream},"))).count();
    DecodedAv {
        video: frames("0"),
        audio: frames("1"),
        success: out.status.success(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Decodes `frames` video frames from an RTSP URL with ffmpeg and returns how many decoded.
pub fn decode_video_frames(url: &str, transport: &str, frames: u32) -> Result<usize, String> {
    let (n, stderr) = decode_frames(&["-rtsp_transport", transport], url, frames, Duration::from_secs(30));
    if n == 0 {
        return Err(format!("no frames; ffmpeg said: {stderr}"));
    }
    Ok(n)
}

/// A publisher: ffmpeg encoding a test pattern (and a tone) in real time and pushing it out.
pub struct Publisher(Child);

impl Publisher {
    /// Pushes over RTSP (`transport`: tcp or udp) for 60 s: H.264 (+ AAC).
    pub fn start(url: &str, transport: &str, size: &str, audio: bool) -> Publisher {
        Self::encode(size, audio, false, &["-t", "60", "-f", "rtsp", "-rtsp_transport", transport, url])
    }

    /// Encodes a `size` test pattern as H.264 (or MJPEG with the standard Huffman tables RTP/JPEG can
    /// carry), with an AAC tone when `audio`, and hands it to ffmpeg's `output` arguments.
    pub fn encode(size: &str, audio: bool, mjpeg: bool, output: &[&str]) -> Publisher {
        let pattern = format!("testsrc=size={size}:rate=25");
        let mut args: Vec<&str> = vec!["-v", "error", "-re", "-f", "lavfi", "-i", &pattern];
        if audio {
            args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
        }
        if mjpeg {
            args.extend(["-c:v", "mjpeg", "-q:v", "5", "-pix_fmt", "yuvj420p", "-huffman", "default"]);
        } else {
            args.extend(["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25"]);
            args.extend(["-pix_fmt", "yuv420p"]);
        }
        if audio {
            args.extend(["-c:a", "aac", "-b:a", "64k"]);
        }
        args.extend(output);
        let child = Command::new("ffmpeg")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        Publisher(child)
    }
}

impl Publisher {
    /// Any publishing command (another ffmpeg build, such as [`ffmpeg9`]), its output discarded;
    /// killed when dropped.
    pub fn spawn(program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Publisher {
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the publisher");
        Publisher(child)
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A publisher of random pixels (several MB/s: they compress badly) over RTSP/TCP, so a reader that
/// never reads fills its socket buffers within seconds. Killed on drop.
pub struct NoisePublisher(Child);

impl NoisePublisher {
    pub fn start(url: &str) -> NoisePublisher {
        let child = Command::new("ffmpeg")
            .args(["-v", "error", "-re", "-f", "rawvideo", "-pix_fmt", "gray", "-s", "320x240", "-r", "25"])
            .args(["-i", "/dev/urandom", "-t", "60", "-c:v", "libx264", "-preset", "ultrafast", "-qp", "5"])
            .args(["-g", "25", "-pix_fmt", "yuv420p", "-f", "rtsp", "-rtsp_transport", "tcp", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        NoisePublisher(child)
    }
}

impl Drop for NoisePublisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A self-signed certificate and its key (EC P-256), `NAME.crt` and `NAME.key` in `dir`.
pub fn make_cert(dir: &std::path::Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = run_with_timeout(
        Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
            .args(["-days", "2", "-subj", &format!("/CN={name}"), "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
        Duration::from_secs(20),
    );
    assert!(out.status.success(), "openssl req: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// The `AB:CD:..` of `openssl x509 -fingerprint -sha256` run by the shell command `cmd`.
pub fn fingerprint(cmd: &str) -> String {
    let out = run_with_timeout(Command::new("sh").args(["-c", cmd]), Duration::from_secs(20));
    let text = String::from_utf8_lossy(&out.stdout);
    text.trim().rsplit('=').next().unwrap_or_default().to_string()
}

pub fn file_fingerprint(cert: &std::path::Path) -> String {
    let fp = fingerprint(&format!("openssl x509 -noout -fingerprint -sha256 -in '{}'", cert.display()));
    assert_eq!(fp.len(), 95, "not a SHA-256 fingerprint: {fp:?}");
    fp
}

/// The address of `module`'s TLS listener, from its log line (`[rtmp] listen addr=127.0.0.1:1936 tls`).
pub fn tls_addr(srv: &Server, module: &str) -> SocketAddr {
    let prefix = format!("[{module}] listen addr=");
    let find = || {
        srv.log().lines().find_map(|l| {
            let rest = l.split(&prefix).nth(1)?;
            rest.trim().strip_suffix(" tls")?.parse().ok()
        })
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no {module} TLS listener; log:\n{}", srv.log());
    find().unwrap()
}

/// `tests/fixtures/gst_camera.py`, killed on drop.
pub struct GstCamera {
    child: Child,
}

impl GstCamera {
    pub fn start(port: u16, args: &[&str]) -> GstCamera {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/gst_camera.py");
        let mut child = Command::new("/usr/bin/python3")
            .arg(script)
            .arg(port.to_string())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/python3");
        let rx = lines_of(child.stdout.take().unwrap());
        let cam = GstCamera { child };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) if l == "READY" => cam,
            other => panic!(
                "gst_camera.py did not start ({other:?}); needs apt packages python3-gi gir1.2-gst-rtsp-server-1.0 \
                 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly"
            ),
        }
    }
}

impl Drop for GstCamera {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The modern static ffmpeg (9.0.2, from PyPI `imageio-ffmpeg==0.8.1`: Enhanced RTMP/FLV with H.265,
/// AV1, VP9 and Opus, libx265, svt-av1, libvpx, libopus, openssl) that `scripts/test.sh` installs into
/// `target/ffmpeg9-venv` and exports as `CAMRELAY_FFMPEG9`. Debian's ffmpeg (5.1) has no Enhanced RTMP.
/// Missing, it fails the test saying how to get it (it is never skipped).
pub fn ffmpeg9() -> PathBuf {
    if let Some(p) = std::env::var_os("CAMRELAY_FFMPEG9").map(PathBuf::from).filter(|p| p.is_file()) {
        return p;
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ffmpeg9-venv/lib");
    let found = std::fs::read_dir(&venv).into_iter().flatten().filter_map(Result::ok).find_map(|python| {
        let p = python.path().join("site-packages/imageio_ffmpeg/binaries/ffmpeg-linux-x86_64-v9.0.2");
        p.is_file().then_some(p)
    });
    found.unwrap_or_else(|| {
        panic!(
            "ffmpeg 9 not found: set CAMRELAY_FFMPEG9 or run scripts/test.sh (it installs PyPI imageio-ffmpeg==0.8.1 \
             into target/ffmpeg9-venv: python3 -m venv target/ffmpeg9-venv && \
             target/ffmpeg9-venv/bin/pip install imageio-ffmpeg==0.8.1)"
        )
    })
}

/// The Python that runs the aiortc fixtures: `CAMRELAY_PYTHON`, else `python3`.
pub fn python() -> String {
    std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Runs the aiortc WHEP client (`tests/fixtures/whep_client.py`) on `/api/webrtc?src={src}` until it
/// decoded `frames` video frames (`flags`: `json`, `audio`, `mic`); returns its JSON report.
pub fn whep_with(server: &Server, src: &str, frames: u32, flags: &[&str]) -> serde_json::Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whep_client.py");
    let url = server.api_url(&format!("/api/webrtc?src={src}"));
    let mut cmd = Command::new(python());
    cmd.arg(script).arg(&url).arg(frames.to_string()).args(flags);
    let out = run_with_timeout(&mut cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'aiortc'"),
        "aiortc is missing: run `{} -m pip install aiortc`",
        python()
    );
    assert!(out.status.success(), "whep client failed: {stderr}\nserver log:\n{}", server.log());
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("client output {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

/// A loopback TCP port free right now (for a server that must come back on the same port).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// An ffmpeg RTSP reader that prints a framecrc line per decoded video frame (`-autoscale 0`: each at
/// its decoded size); the lines arrive on a channel as they come. Killed when dropped.
pub struct FrameCrcReader {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl FrameCrcReader {
    pub fn start(url: &str) -> FrameCrcReader {
        Self::start_input(&["-rtsp_transport", "tcp", "-i", url])
    }

    /// The same over any input (`["-i", "http://.../api/stream.mp4?src=cam"]`, `["-i", "rtmp://..."]`).
    pub fn start_input(input: &[&str]) -> FrameCrcReader {
        Self::spawn("ffmpeg", input, &["-autoscale", "0"])
    }

    /// The same with ffmpeg 9 ([`ffmpeg9`]: Enhanced RTMP/FLV with AV1 and VP9), whose boolean
    /// options are `-noautoscale`.
    pub fn start_ffmpeg9(input: &[&str]) -> FrameCrcReader {
        Self::spawn(ffmpeg9(), input, &["-noautoscale"])
    }

    fn spawn(program: impl AsRef<std::ffi::OsStr>, input: &[&str], no_scaling: &[&str]) -> FrameCrcReader {
        let mut child = Command::new(program)
            .args(["-v", "error"])
            .args(input)
            .args(["-map", "0:v:0"])
            .args(no_scaling)
            .args(["-f", "framecrc", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ffmpeg");
        let lines = lines_of(child.stdout.take().unwrap());
        FrameCrcReader { child, lines }
    }

    /// The next decoded frame's size in bytes (framecrc's `stream, dts, pts, duration, size, crc`).
    fn next_size(&self, until: Instant) -> Option<u64> {
        self.next_frame(until).map(|(size, _)| size)
    }

    /// The next decoded frame's size in bytes and the checksum of its pixels (`0x7ce72296`).
    pub fn next_frame(&self, until: Instant) -> Option<(u64, String)> {
        loop {
            let line = self.lines.recv_timeout(until.saturating_duration_since(Instant::now())).ok()?;
            let mut fields = line.split(',').skip(4).map(str::trim);
            if let (Some(Ok(size)), Some(crc)) = (fields.next().map(str::parse), fields.next()) {
                return Some((size, crc.to_string()));
            }
        }
    }

    /// Frames decoded within `window`.
    pub fn frames_within(&self, window: Duration) -> usize {
        let until = Instant::now() + window;
        std::iter::from_fn(|| self.next_size(until)).count()
    }

    /// Frames decoded until `n` came or `timeout` passed, whichever is first: waits for a count
    /// without making the count depend on how fast a loaded machine starts the reader.
    pub fn frames_up_to(&self, n: usize, timeout: Duration) -> usize {
        let until = Instant::now() + timeout;
        std::iter::from_fn(|| self.next_size(until)).take(n).count()
    }

    /// Whether `n` frames of `size` bytes come in a row within `timeout`.
    pub fn frames_of(&self, size: u64, n: usize, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        let mut run = 0;
        while let Some(s) = self.next_size(until) {
            run = if s == size { run + 1 } else { 0 };
            if run >= n {
                return true;
            }
        }
        false
    }

    pub fn exited(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_some()
    }
}

impl Drop for FrameCrcReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs this test binary's test `name` again inside a new network namespace with loopback up and a
/// multicast route on it (`CAMRELAY_NETNS=1` marks the inner run). True when the caller should return:
/// the inner run passed, or namespaces are not permitted here.
pub fn in_netns(name: &str) -> bool {
    if std::env::var_os("CAMRELAY_NETNS").is_some() {
        return false;
    }
    let probe = run_with_timeout(Command::new("unshare").args(["--net", "true"]), Duration::from_secs(10));
    if !probe.status.success() {
        eprintln!("SKIPPED: `unshare --net` is not permitted here ({})", String::from_utf8_lossy(&probe.stderr).trim());
        return true;
    }
    let exe = std::env::current_exe().unwrap();
    let script = format!(
        "ip link set lo up && ip link set lo multicast on && ip route add 224.0.0.0/4 dev lo && \
         exec '{}' --exact {name} --nocapture --test-threads=1",
        exe.display()
    );
    let out = run_with_timeout(
        Command::new("unshare").args(["--net", "sh", "-c", &script]).env("CAMRELAY_NETNS", "1"),
        Duration::from_secs(240),
    );
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the test failed inside the network namespace");
    true
}

/// The Python 3.12 venv that `scripts/test.sh` makes (`target/ha-venv`: Home Assistant's go2rtc client,
/// the OpenMetrics and OpenAPI checkers), or `CAMRELAY_HA_PYTHON`.
/// Runs a `/metrics` body through prometheus_client's strict OpenMetrics parser (`fixtures/prom_parse.py`)
/// and answers what it printed: the samples as `name{labels} value` lines. Fails the test when the parser
/// refuses the text.
pub fn openmetrics_samples(body: &[u8]) -> String {
    use std::io::Write;
    let mut child = std::process::Command::new(ha_python())
        .arg(std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/prom_parse.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python");
    child.stdin.take().unwrap().write_all(body).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the parser refused the scrape: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(body)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn ha_python() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("CAMRELAY_HA_PYTHON") {
        return std::path::PathBuf::from(p);
    }
    let venv = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ha-venv/bin/python");
    assert!(
        venv.exists(),
        "{} is missing: ./scripts/test.sh makes it (python3.12 -m venv target/ha-venv; \
         target/ha-venv/bin/pip install -r crates/camrelay/tests/fixtures/ha-requirements.txt)",
        venv.display()
    );
    venv
}

// ------------------------------------------------------------------------------------- recordings

/// The recorded segment files with extension `ext` under `dir`, by name (the names sort by start time).
pub fn segments(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|e| e == ext)).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// A segment's start from its default name: `2026-12-05_02-53-40-000123.mp4` → `2026-12-05T02:53:40.000123Z`.
pub fn start_of(file: &Path) -> String {
    let b = file.file_stem().unwrap().to_str().unwrap().to_string();
    format!("{}T{}:{}:{}.{}Z", &b[..10], &b[11..13], &b[14..16], &b[17..19], &b[20..26])
}

/// `t` (RFC 3339) plus `ms` milliseconds, as the server writes times.
pub fn plus_ms(t: &str, ms: u64) -> String {
    let at = camrelay::record::template::parse_rfc3339(t).expect("an RFC 3339 time");
    camrelay::servers::v3::rfc3339(at + Duration::from_millis(ms))
}

/// lighttpd (a web server we did not write) on a free loopback port, serving `root`, with `extra`
/// config lines (modules, MIME types, auth); killed on drop.
pub struct Lighttpd {
    child: Child,
    pub port: u16,
}

impl Lighttpd {
    pub fn start(dir: &Path, root: &Path, extra: &str) -> Lighttpd {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let conf = format!(
            "server.document-root = \"{root}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n\
             server.errorlog = \"{dir}/lighttpd.log\"\n{extra}",
            root = root.display(),
            dir = dir.display()
        );
        let conf_path = dir.join("lighttpd.conf");
        std::fs::write(&conf_path, conf).unwrap();
        let child = Command::new("lighttpd")
            .arg("-D")
            .arg("-f")
            .arg(&conf_path)
            .spawn()
            .expect("lighttpd (apt package lighttpd)");
        let up = wait_until(Duration::from_secs(30), || TcpStream::connect(("127.0.0.1", port)).is_ok());
        assert!(
            up,
            "lighttpd did not start: {}",
            std::fs::read_to_string(dir.join("lighttpd.log")).unwrap_or_default()
        );
        Lighttpd { child, port }
    }
}

impl Drop for Lighttpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
