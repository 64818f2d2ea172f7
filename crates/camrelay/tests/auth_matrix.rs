//! The authorization matrix: every protocol × each auth method, one server per method with every
//! listener on it. Protocols: RTSP, RTSPS, RTMP, RTMPS, SRT (ffprobe/ffmpeg decode frames), HLS and
//! the API (curl), WebRTC WHEP (an aiortc offer POSTed by curl: the answer or the refusal), metrics,
//! playback. Methods: internal users, the HTTP callback (a test server that allows alice), JWT (tokens
//! signed by a test JWK set server). The allowed identity (alice, or alice's token) gets media or data;
//! the denied ones (bob, who may only read `other`, and nobody) get the protocol's refusal (RTSP 401,
//! RTMP `_error`, SRT rejection, HTTP 401); no password or token reaches the log or a refusal's body.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
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
    assert!(wait_until(Duration::from_secs(10), || find().is_some()), "no {module} listener; log:\n{}", srv.log());
    find().unwrap()
}

/// A WebRTC recvonly offer made by aiortc.
fn aiortc_offer() -> String {
    let script = r#"
import asyncio
from aiortc import RTCPeerConnection
async def main():
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    print(pc.localDescription.sdp)
    await pc.close()
asyncio.run(main())
"#;
    let out = run_with_timeout(Command::new(python()).args(["-c", script]), Duration::from_secs(30));
    let sdp = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(sdp.contains("m=video"), "aiortc offer: {sdp}{}", String::from_utf8_lossy(&out.stderr));
    sdp
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

/// Every listener on loopback, with `auth` (the method's keys) and the demo clip as `demo` and `other`.
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
         paths:\n  demo:\n    source: demo:clip\n  other:\n    source: demo:clip\n"
    ))
}

/// Runs the matrix on `srv`: `alice` is allowed everything, each of `denied` nothing on `demo`.
fn matrix(srv: &Server, alice: &Identity, denied: &[&Identity]) {
    let rtsp = srv.rtsp.unwrap();
    let rtsps = listen_addr(srv, "rtsp", true);
    let rtmp = listen_addr(srv, "rtmp", false);
    let rtmps = listen_addr(srv, "rtmp", true);
    let srt = listen_addr(srv, "srt", false);
    let hls = listen_addr(srv, "hls", false);
    let webrtc = listen_addr(srv, "webrtc http", false);
    let metrics = listen_addr(srv, "metrics", false);
    let playback = listen_addr(srv, "playback", false);
    let api = srv.api.unwrap();
    let tcp = ["-rtsp_transport", "tcp"];
    let offer = aiortc_offer();
    let offer_file = temp_dir("offer").join("offer.sdp");
    std::fs::write(&offer_file, &offer).unwrap();
    let whep = |who: &Identity| {
        curl(
            &who.curl(),
            &format!("http://{webrtc}/demo/whep"),
            &[
                "-X",
                "POST",
                "-H",
                "Content-Type: application/sdp",
                "--data-binary",
                &format!("@{}", offer_file.display()),
            ],
        )
    };
    let ctx = |what: &str, who: &Identity| format!("{what} as {}; log:\n{}", who.name, srv.log());

    // Allowed: media decoded, data served. (First, before the denials' failed logins count up.)
    let who = alice;
    assert!(frames(&tcp, &who.rtsp("rtsp", rtsp, "demo"), 10) >= 10, "{}", ctx("RTSP", who));
    assert!(frames(&tcp, &who.rtsp("rtsps", rtsps, "demo"), 10) >= 10, "{}", ctx("RTSPS", who));
    assert!(frames(&[], &who.rtmp("rtmp", rtmp, "demo"), 10) >= 10, "{}", ctx("RTMP", who));
    assert!(frames(&[], &who.rtmp("rtmps", rtmps, "demo"), 10) >= 10, "{}", ctx("RTMPS", who));
    assert!(frames(&[], &who.srt(srt, "demo"), 10) >= 10, "{}", ctx("SRT", who));
    let (status, body) = curl(&who.curl(), &format!("http://{hls}/demo/index.m3u8"), &[]);
    assert_eq!(status, "200", "{}", ctx("HLS", who));
    assert!(body.contains("#EXTM3U"), "{body}");
    let (status, answer) = whep(who);
    assert_eq!(status, "201", "{answer}\n{}", ctx("WHEP", who));
    assert!(answer.contains("m=video") && answer.contains("a=fingerprint"), "{answer}");
    let (status, body) = curl(&who.curl(), &format!("http://{api}/v3/paths/list"), &[]);
    assert_eq!(status, "200", "{}", ctx("API", who));
    assert!(body.contains("\"demo\""), "{body}");
    let (status, body) = curl(&who.curl(), &format!("http://{metrics}/metrics"), &[]);
    assert_eq!(status, "200", "{}", ctx("metrics", who));
    assert!(body.contains("paths{"), "{body}");
    let (status, _) = curl(&who.curl(), &format!("http://{playback}/list?path=demo"), &[]);
    assert_ne!(status, "401", "{}", ctx("playback", who));

    // Denied: the protocol's refusal, and nothing served.
    for who in denied {
        let err = ffprobe(&who.rtsp("rtsp", rtsp, "demo"), "tcp").unwrap_err();
        assert!(err.contains("401"), "{err}\n{}", ctx("RTSP", who));
        let err = ffprobe(&who.rtsp("rtsps", rtsps, "demo"), "tcp").unwrap_err();
        assert!(err.contains("401"), "{err}\n{}", ctx("RTSPS", who));
        assert_eq!(frames(&[], &who.rtmp("rtmp", rtmp, "demo"), 1), 0, "{}", ctx("RTMP", who));
        assert_eq!(frames(&[], &who.rtmp("rtmps", rtmps, "demo"), 1), 0, "{}", ctx("RTMPS", who));
        assert_eq!(frames(&[], &who.srt(srt, "demo"), 1), 0, "{}", ctx("SRT", who));
        for (what, url) in [
            ("HLS", format!("http://{hls}/demo/index.m3u8")),
            ("API", format!("http://{api}/v3/paths/list")),
            ("metrics", format!("http://{metrics}/metrics")),
            ("playback", format!("http://{playback}/list?path=demo")),
        ] {
            let (status, body) = curl(&who.curl(), &url, &[]);
            assert_eq!(status, "401", "{body}\n{}", ctx(what, who));
            for s in alice.secrets().iter().chain(who.secrets().iter()) {
                assert!(!body.contains(s.as_str()), "{what} refusal body leaks a secret: {body}");
            }
        }
        let (status, body) = whep(who);
        assert_eq!(status, "401", "{body}\n{}", ctx("WHEP", who));
    }
    assert!(srv.log().contains("rtmp") && srv.log().contains("not authorized"), "RTMP refusals logged: {}", srv.log());

    // Nothing leaks into the log.
    let log = srv.log();
    for who in std::iter::once(alice).chain(denied.iter().copied()) {
        for s in who.secrets() {
            assert!(!log.contains(&s), "{} leaked {s:?}:\n{log}", who.name);
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
    let srv = server(users, &cert, &key);
    matrix(&srv, &user("alice", "secret"), &[&user("bob", "bobpw"), &NOBODY]);
}

#[test]
fn http_callback() {
    let (cert, key) = certs("matrix-http");
    let callback = callback_server();
    let srv = server(
        &format!("authMethod: http\nauthHTTPAddress: http://{callback}/auth\nauthHTTPExclude: []\n"),
        &cert,
        &key,
    );
    matrix(&srv, &user("alice", "secret"), &[&user("bob", "bobpw"), &NOBODY]);
}

#[test]
fn jwt() {
    let (cert, key) = certs("matrix-jwt");
    let jwt = Jwt::start();
    let srv = server(&format!("authMethod: jwt\nauthJWTJWKS: http://{}/jwks\n", jwt.jwks), &cert, &key);
    assert!(srv.wait_log("auth: JWK set fetched", Duration::from_secs(10)), "{}", srv.log());
    let all = serde_json::json!([{"action": "read"}, {"action": "publish"}, {"action": "api"},
        {"action": "metrics"}, {"action": "playback"}]);
    let alice = Identity { name: "alice's token", user: None, token: Some(jwt.token(all)) };
    let bob = Identity {
        name: "bob's token",
        user: None,
        token: Some(jwt.token(serde_json::json!([{"action": "read", "path": "other"}]))),
    };
    matrix(&srv, &alice, &[&bob, &NOBODY]);
}
