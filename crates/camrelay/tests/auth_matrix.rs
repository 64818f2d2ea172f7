//! The authorization matrix: every protocol × each auth method, on two servers per method with every
//! listener on each (see [`matrix`] for why two). Protocols: RTSP, RTSPS, RTMP, RTMPS, SRT and HLS
//! (ffmpeg decodes frames; HLS with the `Authorization` header on the playlist and its segments), the
//! API (curl), WebRTC WHEP (aiortc, `tests/fixtures/whep_client.py`, decodes frames) and WHIP (aiortc,
//! `tests/fixtures/whip_publisher.py`, publishes; ffmpeg decodes it back over RTSP), metrics (with an
//! RTSPS reader in `rtsps_sessions`/`rtsps_conns` and `/v3/rtspssessions`), playback (the recorded demo:
//! `/list` gives a span, `/get` an MP4 ffprobe decodes). Methods: internal users, the HTTP callback (a
//! test server that allows alice), JWT (tokens signed by a test JWK set server). The allowed identity
//! (alice, or alice's token) gets media or data; the denied ones (bob, who may only read `other`, and
//! nobody) get the protocol's refusal (RTSP 401, RTMP `_error`, SRT rejection, HTTP 401) and publish
//! nothing; no password or token reaches the log or a refusal's body.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// How one identity presents itself on each protocol.
struct Identity {
    name: &'static str,
    /// `user:pass` (RTSP/RTMP/SRT/HTTP Basic), or a token (RTSP/RTMP `?jwt=`, HTTP Bearer, SRT password).
    user: Option<(String, String)>,
    token: Option<String>,
}

impl Identity {
    fn rtsp(&self, scheme: &str, addr: SocketAddr, path: &str) -> String {
        match (&self.user, &self.token) {
            (Some((u, p)), _) => format!("{scheme}://{u}:{p}@{addr}/{path}"),
            (None, Some(t)) => format!("{scheme}://{addr}/{path}?jwt={t}"),
            (None, None) => format!("{scheme}://{addr}/{path}"),
        }
    }

    fn rtmp(&self, scheme: &str, addr: SocketAddr, path: &str) -> String {
        match (&self.user, &self.token) {
            (Some((u, p)), _) => format!("{scheme}://{addr}/{path}?user={u}&pass={p}"),
            (None, Some(t)) => format!("{scheme}://{addr}/{path}?jwt={t}"),
            (None, None) => format!("{scheme}://{addr}/{path}"),
        }
    }

    fn srt(&self, addr: SocketAddr, path: &str) -> String {
        match (&self.user, &self.token) {
            (Some((u, p)), _) => format!("srt://{addr}?streamid=read:{path}:{u}:{p}"),
            (None, Some(t)) => format!("srt://{addr}?streamid=read:{path}:jwt:{t}"),
            (None, None) => format!("srt://{addr}?streamid=read:{path}"),
        }
    }

    fn curl(&self) -> Vec<String> {
        match (&self.user, &self.token) {
            (Some((u, p)), _) => vec!["-u".into(), format!("{u}:{p}")],
            (None, Some(t)) => vec!["-H".into(), format!("Authorization: Bearer {t}")],
            (None, None) => vec![],
        }
    }

    /// ffmpeg's input options for HTTP (HLS): the `Authorization` header, on the playlist and segments.
    fn ffmpeg_http(&self) -> Vec<String> {
        use base64::Engine;
        let header = match (&self.user, &self.token) {
            (Some((u, p)), _) => {
                format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}")))
            }
            (None, Some(t)) => format!("Bearer {t}"),
            (None, None) => return vec![],
        };
        vec!["-headers".into(), format!("Authorization: {header}\r\n")]
    }

    /// The WebRTC fixtures' credential flag: `user=NAME:PASS` (Basic) or `bearer=TOKEN`.
    fn webrtc(&self) -> Vec<String> {
        match (&self.user, &self.token) {
            (Some((u, p)), _) => vec![format!("user={u}:{p}")],
            (None, Some(t)) => vec![format!("bearer={t}")],
            (None, None) => vec![],
        }
    }

    fn secrets(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some((_, p)) = &self.user {
            out.push(p.clone());
        }
        if let Some(t) = &self.token {
            out.push(t[t.len() - 24..].to_string());
        }
        out
    }
}

fn user(name: &'static str, pass: &str) -> Identity {
    Identity { name, user: Some((name.to_string(), pass.to_string())), token: None }
}

const NOBODY: Identity = Identity { name: "nobody", user: None, token: None };

/// (status, body) of curl.
fn curl(args: &[String], url: &str, extra: &[&str]) -> (String, String) {
    let out = run_with_timeout(
        Command::new("curl").args(["-s", "-k", "-w", "\n%{http_code}"]).args(args).args(extra).arg(url),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", ""));
    (status.to_string(), body.to_string())
}

fn listen_addr(srv: &Server, module: &str, tls: bool) -> SocketAddr {
    let prefix = format!("[{module}] listen addr=");
    let find = || {
        srv.log().lines().find_map(|l| {
            let rest = l.split(&prefix).nth(1)?.trim();
            let addr = if tls { rest.strip_suffix(" tls")? } else { rest.split_whitespace().next()? };
            if !tls && rest.ends_with(" tls") {
                return None;
            }
            addr.parse::<SocketAddr>().ok()
        })
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no {module} listener; log:\n{}", srv.log());
    find().unwrap()
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// aiortc's WHEP client on `url` until it decoded `frames` video frames (`flags`: credentials).
fn whep_client(url: &str, frames: u32, flags: &[String]) -> Output {
    let out = run_with_timeout(
        Command::new(python()).arg(fixture("whep_client.py")).arg(url).arg(frames.to_string()).args(flags),
        Duration::from_secs(45),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("No module named"), "aiortc is missing ({}): {stderr}", python());
    out
}

/// The JSON report of a WHEP client that succeeded.
fn whep_report(out: &Output, context: &str) -> serde_json::Value {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "WHEP client failed: {}\n{context}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(text.lines().last().unwrap_or("")).unwrap_or_else(|e| panic!("{e}: {text}\n{context}"))
}

/// aiortc's WHIP publisher on `url` for up to 60 s; returns it once it says `connected`, or its
/// stderr when it failed.
fn whip_publisher(url: &str, flags: &[String]) -> Result<std::process::Child, String> {
    let mut child = Command::new(python())
        .arg(fixture("whip_publisher.py"))
        .arg(url)
        .arg("60")
        .args(flags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let lines = lines_of(child.stdout.take().unwrap());
    if lines.recv_timeout(Duration::from_secs(40)).is_ok_and(|l| l == "connected") {
        return Ok(child);
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    Err(String::from_utf8_lossy(&out.stderr).into_owned())
}

/// ffprobe's codec and size of the video of a file, and how many frames it decoded.
fn probe_file(file: &std::path::Path) -> (String, u64, u64, u64) {
    let out = run_with_timeout(
        Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args(["-show_entries", "stream=codec_name,width,height,nb_read_frames", "-of", "json"])
            .arg(file),
        Duration::from_secs(30),
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
    let s = &v["streams"][0];
    (
        s["codec_name"].as_str().unwrap_or("").to_string(),
        s["width"].as_u64().unwrap_or(0),
        s["height"].as_u64().unwrap_or(0),
        s["nb_read_frames"].as_str().and_then(|n| n.parse().ok()).unwrap_or(0),
    )
}

/// Frames ffmpeg decodes from `url` within 20 s (`input`: options before `-i`).
fn frames(input: &[&str], url: &str, n: u32) -> usize {
    decode_frames(input, url, n, Duration::from_secs(20)).0
}

/// The test callback server of the HTTP method: allows alice/secret, refuses the rest.
fn callback_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let (mut length, mut line) = (0, String::new());
                while reader.read_line(&mut line).unwrap_or(0) > 0 && line != "\r\n" {
                    if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    line.clear();
                }
                let mut body = vec![0; length];
                let _ = reader.read_exact(&mut body);
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let ok = v["user"] == "alice" && v["password"] == "secret";
                let status = if ok { "200 OK" } else { "403 Forbidden" };
                let mut conn = conn;
                let _ = conn.write_all(format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").as_bytes());
            });
        }
    });
    addr
}

/// An ES256 key for JWTs and its JWK set, served over HTTP.
struct Jwt {
    pair: ring::signature::EcdsaKeyPair,
    jwks: SocketAddr,
}

impl Jwt {
    fn start() -> Jwt {
        use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        let p = pair.public_key().as_ref();
        let set = serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
            "kid": "k1", "x": b64(&p[1..33]), "y": b64(&p[33..])}]})
        .to_string();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let jwks = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(Result::ok) {
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{set}",
                    set.len()
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        Jwt { pair, jwks }
    }

    fn token(&self, permissions: serde_json::Value) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": "k1"});
        let claims = serde_json::json!({"exp": now + 600, "mediamtx_permissions": permissions});
        let msg = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.pair.sign(&ring::rand::SystemRandom::new(), msg.as_bytes()).unwrap();
        format!("{msg}.{}", b64(sig.as_ref()))
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Every listener on loopback, with `auth` (the method's keys), the demo clip as `demo` (recorded in
/// 1 s segments for playback) and `other`, and `all_others` for WHIP publishers.
fn server(auth: &str, cert: &std::path::Path, key: &std::path::Path) -> Server {
    let (cert, key) = (cert.display(), key.display());
    Server::start(&format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nrtspTransports: [tcp]\nrtspEncryption: optional\nrtspsAddress: 127.0.0.1:0\n\
         rtspServerKey: {key}\nrtspServerCert: {cert}\nrtmp: true\nrtmpAddress: 127.0.0.1:0\n\
         rtmpEncryption: optional\nrtmpsAddress: 127.0.0.1:0\nrtmpServerKey: {key}\nrtmpServerCert: {cert}\n\
         hls: true\nhlsAddress: 127.0.0.1:0\nwebrtc: true\nwebrtcAddress: 127.0.0.1:0\n\
         webrtcLocalUDPAddress: 127.0.0.1:0\nwebrtcLocalTCPAddress: ''\nsrt: true\nsrtAddress: 127.0.0.1:0\n\
         metrics: true\nmetricsAddress: 127.0.0.1:0\nplayback: true\nplaybackAddress: 127.0.0.1:0\n{auth}\
         paths:\n  demo:\n    source: demo:clip\n    record: yes\n    recordPath: ./rec/%path/%Y-%m-%d_%H-%M-%S-%f\n\
         \x20   recordSegmentDuration: 1s\n    recordPartDuration: 200ms\n  other:\n    source: demo:clip\n  all_others:\n"
    ))
}

/// A server's listeners.
struct Listeners {
    rtsp: SocketAddr,
    rtsps: SocketAddr,
    rtmp: SocketAddr,
    rtmps: SocketAddr,
    srt: SocketAddr,
    hls: SocketAddr,
    webrtc: SocketAddr,
    metrics: SocketAddr,
    playback: SocketAddr,
    api: SocketAddr,
}

impl Listeners {
    fn of(srv: &Server) -> Listeners {
        Listeners {
            rtsp: srv.rtsp.unwrap(),
            rtsps: listen_addr(srv, "rtsp", true),
            rtmp: listen_addr(srv, "rtmp", false),
            rtmps: listen_addr(srv, "rtmp", true),
            srt: listen_addr(srv, "srt", false),
            hls: listen_addr(srv, "hls", false),
            webrtc: listen_addr(srv, "webrtc http", false),
            metrics: listen_addr(srv, "metrics", false),
            playback: listen_addr(srv, "playback", false),
            api: srv.api.unwrap(),
        }
    }

    fn whep(&self) -> String {
        format!("http://{}/demo/whep", self.webrtc)
    }

    /// A playback `/get` of `demo` at `start` (RFC 3339, `:` escaped) for 2 s.
    fn get(&self, start: &str) -> String {
        format!("http://{}/get?path=demo&start={start}&duration=2", self.playback)
    }
}

const TCP: [&str; 2] = ["-rtsp_transport", "tcp"];

fn context(srv: &Server, what: &str, who: &Identity) -> String {
    format!("{what} as {}; log:\n{}", who.name, srv.log())
}

/// The allowed identity gets media and data on every protocol; returns the start of the recorded
/// span it played back (`:` escaped: the refusals ask the same `/get`).
fn allowed(srv: &Server, l: &Listeners, who: &Identity) -> String {
    let ctx = |what: &str| context(srv, what, who);
    let probed = ffprobe(&who.rtsp("rtsp", l.rtsp, "demo"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", ctx("RTSP")));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("the demo has video");
    let size = (video.width, video.height);
    assert!(video.codec_name == "h264" && size.0 > 0 && size.1 > 0, "{probed:?}");
    assert!(frames(&TCP, &who.rtsp("rtsp", l.rtsp, "demo"), 10) >= 10, "{}", ctx("RTSP"));
    assert!(frames(&TCP, &who.rtsp("rtsps", l.rtsps, "demo"), 10) >= 10, "{}", ctx("RTSPS"));
    assert!(frames(&[], &who.rtmp("rtmp", l.rtmp, "demo"), 10) >= 10, "{}", ctx("RTMP"));
    assert!(frames(&[], &who.rtmp("rtmps", l.rtmps, "demo"), 10) >= 10, "{}", ctx("RTMPS"));
    assert!(frames(&[], &who.srt(l.srt, "demo"), 10) >= 10, "{}", ctx("SRT"));
    let (status, body) = curl(&who.curl(), &format!("http://{}/demo/index.m3u8", l.hls), &[]);
    assert_eq!(status, "200", "{}", ctx("HLS"));
    assert!(body.contains("#EXTM3U"), "{body}");
    let input = who.ffmpeg_http();
    let input: Vec<&str> = input.iter().map(String::as_str).collect();
    let (decoded, stderr) =
        decode_frames(&input, &format!("http://{}/demo/index.m3u8", l.hls), 10, Duration::from_secs(40));
    assert!(decoded >= 10, "HLS: {decoded} frames; {stderr}\n{}", ctx("HLS"));

    // WHEP: aiortc sends the credentials in Authorization (a token also as `?jwt=`) and decodes the
    // demo's frames at its size.
    let mut wheps = vec![(l.whep(), who.webrtc())];
    if let Some(token) = &who.token {
        wheps.push((format!("{}?jwt={token}", l.whep()), vec![]));
    }
    for (url, flags) in &wheps {
        let report = whep_report(&whep_client(url, 15, flags), &ctx("WHEP"));
        assert!(report["frames"].as_u64().unwrap_or(0) >= 15, "{report}");
        assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(size.0), Some(size.1)), "{report}");
    }

    // WHIP: aiortc publishes its 640x360 pattern to a new path; ffmpeg reads it back over RTSP.
    let publisher = whip_publisher(&format!("http://{}/whip_alice/whip", l.webrtc), &who.webrtc());
    let mut publisher = publisher.unwrap_or_else(|e| panic!("WHIP publisher: {e}\n{}", ctx("WHIP")));
    let url = who.rtsp("rtsp", l.rtsp, "whip_alice");
    let probed = ffprobe(&url, "tcp");
    let decoded = frames(&TCP, &url, 10);
    let _ = publisher.kill();
    let _ = publisher.wait();
    let probed = probed.unwrap_or_else(|e| panic!("{e}\n{}", ctx("WHIP read back")));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("the WHIP stream has video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360), "{probed:?}");
    assert!(decoded >= 10, "{decoded} frames; {}", ctx("WHIP read back"));

    let (status, body) = curl(&who.curl(), &format!("http://{}/v3/paths/list", l.api), &[]);
    assert_eq!(status, "200", "{}", ctx("API"));
    assert!(body.contains("\"demo\""), "{body}");

    // Metrics, with an RTSPS reader on: MediaMTX's rtsps_* series and /v3/rtspssessions show it.
    let reader = FrameCrcReader::start(&who.rtsp("rtsps", l.rtsps, "demo"));
    let mut seen = (String::new(), String::new());
    let listed = wait_until(Duration::from_secs(30), || {
        let (status, body) = curl(&who.curl(), &format!("http://{}/metrics", l.metrics), &[]);
        let (_, sessions) = curl(&who.curl(), &format!("http://{}/v3/rtspssessions/list", l.api), &[]);
        let session = body.lines().any(|l| {
            l.starts_with("rtsps_sessions{")
                && l.contains("path=\"demo\"")
                && l.contains("state=\"read\"")
                && l.ends_with(" 1")
        });
        let conn = body.lines().any(|l| l.starts_with("rtsps_conns{") && l.ends_with(" 1"));
        let v: serde_json::Value = serde_json::from_str(&sessions).unwrap_or_default();
        let items = v["items"].as_array().cloned().unwrap_or_default();
        let api_lists = items.iter().any(|i| i["path"] == "demo" && i["state"] == "read");
        seen = (body.clone(), sessions);
        status == "200" && body.contains("paths{") && session && conn && api_lists
    });
    drop(reader);
    assert!(listed, "metrics:\n{}\n/v3/rtspssessions/list: {}\n{}", seen.0, seen.1, ctx("metrics"));

    // Playback: the recorded demo is listed as a span, and /get cuts an MP4 out of it.
    let mut span = serde_json::Value::Null;
    let recorded = wait_until(Duration::from_secs(30), || {
        let (status, body) = curl(&who.curl(), &format!("http://{}/list?path=demo", l.playback), &[]);
        span = serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()[0].clone();
        status == "200" && span["duration"].as_f64().unwrap_or(0.0) >= 3.0
    });
    assert!(recorded, "span {span}; {}", ctx("playback /list"));
    let start = span["start"].as_str().expect("a span start").replace(':', "%3A");
    let get = l.get(&start);
    let file = srv.dir.join("playback.mp4");
    let (status, _) = curl(&who.curl(), &get, &["-o", &file.display().to_string()]);
    assert_eq!(status, "200", "{}", ctx("playback /get"));
    let (codec, width, height, decoded) = probe_file(&file);
    assert_eq!((codec.as_str(), width, height), ("h264", size.0, size.1), "{}", ctx("playback /get"));
    assert!(decoded >= 25, "{decoded} frames in 2 s of the demo");
    start
}

/// `who` gets the refusal of RTSP, RTSPS, RTMP, RTMPS and SRT, and no frame.
fn refused_media(srv: &Server, l: &Listeners, who: &Identity) {
    let ctx = |what: &str| context(srv, what, who);
    let err = ffprobe(&who.rtsp("rtsp", l.rtsp, "demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}\n{}", ctx("RTSP"));
    let err = ffprobe(&who.rtsp("rtsps", l.rtsps, "demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}\n{}", ctx("RTSPS"));
    for (what, scheme, addr) in [("RTMP", "rtmp", l.rtmp), ("RTMPS", "rtmps", l.rtmps)] {
        let (decoded, stderr) = decode_frames(&[], &who.rtmp(scheme, addr, "demo"), 1, Duration::from_secs(20));
        assert_eq!(decoded, 0, "{}", ctx(what));
        // ffmpeg prints the description of the server's `_error`.
        assert!(stderr.contains("Server error: not authorized"), "{what}: {stderr}\n{}", ctx(what));
    }
    let (decoded, stderr) = decode_frames(&[], &who.srt(l.srt, "demo"), 1, Duration::from_secs(20));
    assert_eq!(decoded, 0, "{}", ctx("SRT"));
    // libsrt's caller reports the listener's rejection of the handshake.
    assert!(stderr.contains("REJECT"), "SRT: {stderr}\n{}", ctx("SRT"));
    assert!(srv.log().contains("rtmp") && srv.log().contains("not authorized"), "RTMP refusals logged: {}", srv.log());
}

/// `who` gets HTTP 401 from HLS, the API, metrics, playback (`/list`, and `/get` at `start`), WHEP and
/// WHIP, and no refusal shows one of `secrets`.
fn refused_web(srv: &Server, l: &Listeners, who: &Identity, start: &str, secrets: &[String]) {
    let ctx = |what: &str| context(srv, what, who);
    for (what, url) in [
        ("HLS", format!("http://{}/demo/index.m3u8", l.hls)),
        ("API", format!("http://{}/v3/paths/list", l.api)),
        ("metrics", format!("http://{}/metrics", l.metrics)),
        ("playback /list", format!("http://{}/list?path=demo", l.playback)),
        ("playback /get", l.get(start)),
    ] {
        let (status, body) = curl(&who.curl(), &url, &[]);
        assert_eq!(status, "401", "{body}\n{}", ctx(what));
        for s in secrets {
            assert!(!body.contains(s.as_str()), "{what} refusal body leaks a secret: {body}");
        }
    }
    let out = whep_client(&l.whep(), 1, &who.webrtc());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("HTTP 401"), "{err}\n{}", ctx("WHEP"));
    let whip = whip_publisher(&format!("http://{}/whip_denied/whip", l.webrtc), &who.webrtc()).map(drop).unwrap_err();
    assert!(whip.contains("HTTP 401"), "{whip}\n{}", ctx("WHIP"));
    // The fixtures print the refusal's body.
    for s in secrets {
        assert!(
            !err.contains(s.as_str()) && !whip.contains(s.as_str()),
            "a WebRTC refusal leaks a secret: {err} {whip}"
        );
    }
}

/// Runs the matrix on servers made by `start`: `alice` is allowed everything, each of `denied`
/// nothing on `demo`.
///
/// Every refusal must be the auth decision's, not the failed-login limit's (10 wrong credentials
/// from an address within 60 s refuse it for 60 s, and every client here is 127.0.0.1): an identity
/// that presents credentials fails its media cells on the first server and its HTTP cells on a
/// second one, so neither server counts 10; the logs must show no ban.
fn matrix(start: &dyn Fn() -> Server, alice: &Identity, denied: &[&Identity]) {
    let first = start();
    let second = start();
    let (l1, l2) = (Listeners::of(&first), Listeners::of(&second));

    // Allowed: media decoded, data served.
    let start = allowed(&first, &l1, alice);

    // Denied: the protocol's refusal, and nothing served.
    for who in denied {
        let secrets: Vec<String> = alice.secrets().into_iter().chain(who.secrets()).collect();
        refused_media(&first, &l1, who);
        let presents = who.user.is_some() || who.token.is_some();
        let (srv, l) = if presents { (&second, &l2) } else { (&first, &l1) };
        refused_web(srv, l, who, &start, &secrets);
    }

    for srv in [&first, &second] {
        let log = srv.log();
        assert!(!log.contains("failed logins within"), "a refusal came from the failed-login limit:\n{log}");
        // No refused WHIP publisher made a stream.
        let (status, body) = curl(&alice.curl(), &format!("http://{}/v3/paths/list", srv.api.unwrap()), &[]);
        assert_eq!(status, "200", "{}", context(srv, "API after the refusals", alice));
        assert!(body.contains("\"demo\"") && !body.contains("whip_denied"), "{body}");
        // Nothing leaks into the log.
        for who in std::iter::once(alice).chain(denied.iter().copied()) {
            for s in who.secrets() {
                assert!(!log.contains(&s), "{} leaked {s:?}:\n{log}", who.name);
            }
        }
    }
}

fn certs(tag: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    make_cert(&temp_dir(tag), "server")
}

#[test]
fn internal_users() {
    let (cert, key) = certs("matrix-internal");
    let users = "authInternalUsers:\n\
        - user: alice\n  pass: secret\n  permissions: [{action: read}, {action: publish}, {action: api}, {action: metrics}, {action: playback}]\n\
        - user: bob\n  pass: bobpw\n  permissions: [{action: read, path: other}]\n";
    matrix(&|| server(users, &cert, &key), &user("alice", "secret"), &[&user("bob", "bobpw"), &NOBODY]);
}

#[test]
fn http_callback() {
    let (cert, key) = certs("matrix-http");
    let callback = callback_server();
    let auth = format!("authMethod: http\nauthHTTPAddress: http://{callback}/auth\nauthHTTPExclude: []\n");
    matrix(&|| server(&auth, &cert, &key), &user("alice", "secret"), &[&user("bob", "bobpw"), &NOBODY]);
}

#[test]
fn jwt() {
    let (cert, key) = certs("matrix-jwt");
    let jwt = Jwt::start();
    let start = || {
        let srv = server(&format!("authMethod: jwt\nauthJWTJWKS: http://{}/jwks\n", jwt.jwks), &cert, &key);
        assert!(srv.wait_log("auth: JWK set fetched", Duration::from_secs(30)), "{}", srv.log());
        srv
    };
    let all = serde_json::json!([{"action": "read"}, {"action": "publish"}, {"action": "api"},
        {"action": "metrics"}, {"action": "playback"}]);
    let alice = Identity { name: "alice's token", user: None, token: Some(jwt.token(all)) };
    let bob = Identity {
        name: "bob's token",
        user: None,
        token: Some(jwt.token(serde_json::json!([{"action": "read", "path": "other"}]))),
    };
    matrix(&start, &alice, &[&bob, &NOBODY]);
}
