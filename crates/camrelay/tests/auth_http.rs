//! MediaMTX's HTTP auth method (`authMethod: http`) against a small test server that records every
//! request it gets: ffprobe/ffmpeg over RTSP and RTMP, curl on the API, HLS and metrics. The recorded
//! JSON bodies carry MediaMTX's fields (user, password, token, ip, action, path, protocol, id, query);
//! a 2xx answer allows, anything else refuses with the protocol's refusal; each decision is asked
//! (nothing cached); `authHTTPExclude` skips the server; a server that does not answer within 5 s, or
//! cannot be reached, refuses; no password reaches the log.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The test auth server: allows alice/secret, the token `good-token`, and reading `public` by
/// anyone; records each body.
pub struct AuthServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl AuthServer {
    pub fn start() -> AuthServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let log = log.clone();
                std::thread::spawn(move || {
                    let _ = conn.set_read_timeout(Some(Duration::from_secs(10)));
                    let mut reader = BufReader::new(conn.try_clone().unwrap());
                    let mut length = 0;
                    let mut line = String::new();
                    let mut first = true;
                    let mut method_post = false;
                    while reader.read_line(&mut line).unwrap_or(0) > 0 {
                        if first {
                            method_post = line.starts_with("POST /auth ");
                            first = false;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                        if line == "\r\n" {
                            break;
                        }
                        line.clear();
                    }
                    let mut body = vec![0; length];
                    let _ = reader.read_exact(&mut body);
                    let v: serde_json::Value = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
                    let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                    let allowed = method_post
                        && ((s("user") == "alice" && s("password") == "secret")
                            || s("token") == "good-token"
                            || (s("action") == "read" && s("path") == "public"));
                    log.lock().unwrap().push(v);
                    let status = if allowed { "200 OK" } else { "401 Unauthorized" };
                    let mut conn = conn;
                    let _ = conn.write_all(
                        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
                    );
                });
            }
        });
        AuthServer { addr, seen }
    }

    pub fn count(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// The recorded bodies with this action and path.
    pub fn asked(&self, action: &str, path: &str) -> Vec<serde_json::Value> {
        self.seen.lock().unwrap().iter().filter(|v| v["action"] == action && v["path"] == path).cloned().collect()
    }
}

/// The address a listener of `module` logged (`[module] listen addr=...`).
fn listen_addr(srv: &Server, module: &str) -> SocketAddr {
    let prefix = format!("[{module}] listen addr=");
    let find = || {
        srv.log().lines().find_map(|l| l.split(&prefix).nth(1)?.split_whitespace().next()?.parse::<SocketAddr>().ok())
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no {module} listener; log:\n{}", srv.log());
    find().unwrap()
}

/// HTTP status of `curl` with `args`.
fn curl_status(args: &[&str]) -> String {
    let out = run_with_timeout(
        Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args),
        Duration::from_secs(20),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn config(auth: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nrtspTransports: [tcp]\nrtspAuthMethods: [basic, digest]\nhls: true\n\
         hlsAddress: 127.0.0.1:0\nwebrtc: false\nsrt: false\nrtmp: true\nrtmpAddress: 127.0.0.1:0\n\
         metrics: true\nmetricsAddress: 127.0.0.1:0\n{auth}\
         paths:\n  demo:\n    source: demo:clip\n  public:\n    source: demo:clip\n  all_others:\n"
    )
}

#[test]
fn http_callback_decides_every_protocol() {
    let auth = AuthServer::start();
    let srv = Server::start(&config(&format!(
        "authMethod: http\nauthHTTPAddress: http://{}/auth\nauthHTTPExclude:\n- action: metrics\n",
        auth.addr
    )));
    let rtsp = srv.rtsp.unwrap();

    // RTSP: ffprobe asks first without credentials (the server says no: 401 with a Basic challenge,
    // since another server cannot check a Digest response), then with them.
    let probed = ffprobe(&format!("rtsp://alice:secret@{rtsp}/demo?x=1"), "tcp")
        .unwrap_or_else(|e| panic!("{e}\nlog:\n{}", srv.log()));
    assert!(probed.iter().any(|s| s.codec_type == "video" && s.width == 640), "{probed:?}");
    let asked = auth.asked("read", "demo");
    let with = asked.iter().find(|v| v["user"] == "alice").unwrap_or_else(|| panic!("{asked:?}"));
    assert_eq!(with["password"], "secret");
    assert_eq!(with["token"], "");
    assert_eq!(with["ip"], "127.0.0.1");
    assert_eq!(with["protocol"], "rtsp");
    assert_eq!(with["query"], "x=1");
    assert_eq!(with["id"].as_str().map(str::len), Some(16), "the RTSP session id: {with}");
    let keys: Vec<&str> = with.as_object().unwrap().keys().map(String::as_str).collect();
    for k in ["user", "password", "token", "ip", "action", "path", "protocol", "id", "query"] {
        assert!(keys.contains(&k), "{k} missing: {with}");
    }
    assert!(asked.iter().any(|v| v["user"] == "" && v["password"] == ""), "the first, anonymous ask: {asked:?}");
    // Denied: RTSP 401.
    let err = ffprobe(&format!("rtsp://alice:wrong@{rtsp}/demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}");
    let err = ffprobe(&format!("rtsp://{rtsp}/demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}");
    // Allowed for anyone by the server's rule, no credentials.
    assert!(ffprobe(&format!("rtsp://{rtsp}/public"), "tcp").is_ok());
    // A token in `?jwt=` goes as `token`.
    assert!(ffprobe(&format!("rtsp://{rtsp}/demo?jwt=good-token"), "tcp").is_ok(), "log:\n{}", srv.log());
    assert!(auth.asked("read", "demo").iter().any(|v| v["token"] == "good-token"));

    // RTMP: publish with ?user=&pass=, refused without; read back over RTSP.
    let rtmp = srv.rtmp_addr();
    let refused = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"]).args(
            [
                "-t",
                "3",
                "-c:v",
                "libx264",
                "-pix_fmt",
                "yuv420p",
                "-f",
                "flv",
                &format!("rtmp://{rtmp}/live/cam?user=alice&pass=wrong"),
            ],
        ),
        Duration::from_secs(20),
    );
    assert!(!refused.status.success(), "a wrong RTMP password published");
    let _pusher = Publisher::encode(
        "320x240",
        false,
        false,
        &["-t", "60", "-f", "flv", &format!("rtmp://{rtmp}/live/cam?user=alice&pass=secret")],
    );
    let cam = format!("rtsp://alice:secret@{rtsp}/live/cam");
    assert!(wait_until(Duration::from_secs(30), || ffprobe(&cam, "tcp").is_ok()), "log:\n{}", srv.log());
    let published = auth.asked("publish", "live/cam");
    assert!(published.iter().any(|v| v["protocol"] == "rtmp" && v["user"] == "alice"), "{published:?}");
    assert!(published.iter().any(|v| v["password"] == "wrong"), "{published:?}");
    let (n, said) = decode_frames(&["-rtsp_transport", "tcp"], &cam, 25, Duration::from_secs(30));
    assert!(n >= 25, "decoded {n}: {said}");

    // API: Basic credentials, each request asked again (nothing cached).
    let api = srv.api.unwrap();
    let url = format!("http://{api}/v3/paths/list");
    let before = auth.asked("api", "").len();
    assert_eq!(curl_status(&["-u", "alice:secret", &url]), "200");
    assert_eq!(curl_status(&["-u", "alice:secret", &url]), "200");
    assert_eq!(curl_status(&["-u", "alice:wrong", &url]), "401");
    assert_eq!(curl_status(&[&url]), "401");
    assert_eq!(curl_status(&["-H", "Authorization: Bearer good-token", &url]), "200");
    let api_asks = auth.asked("api", "");
    assert_eq!(api_asks.len(), before + 5, "{api_asks:?}");
    assert!(api_asks.iter().any(|v| v["token"] == "good-token" && v["protocol"] == ""), "{api_asks:?}");

    // HLS (MediaMTX's listener): protocol "hls".
    let hls = listen_addr(&srv, "hls");
    assert_eq!(curl_status(&["-u", "alice:secret", &format!("http://{hls}/demo/index.m3u8")]), "200");
    assert_eq!(curl_status(&[&format!("http://{hls}/demo/index.m3u8")]), "401");
    assert!(auth.asked("read", "demo").iter().any(|v| v["protocol"] == "hls"), "{:?}", auth.asked("read", "demo"));

    // Metrics are excluded (authHTTPExclude): served without asking.
    let metrics = listen_addr(&srv, "metrics");
    assert_eq!(curl_status(&[&format!("http://{metrics}/metrics")]), "200");
    assert!(auth.asked("metrics", "").is_empty());

    // No password reached the log.
    assert!(!srv.log().contains("secret"), "{}", srv.log());
    assert!(!srv.log().contains("good-token"), "{}", srv.log());
}

#[test]
fn an_auth_server_that_is_slow_or_gone_refuses() {
    // One that accepts and never answers: refused after 5 s.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    let silent_addr = silent.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in silent.incoming().map_while(Result::ok) {
            keep.lock().unwrap().push(c);
        }
    });
    // (MediaMTX's default `authHTTPExclude` lets the API and metrics through: not here.)
    let srv = Server::start(&config(&format!(
        "authMethod: http\nauthHTTPAddress: http://{silent_addr}/auth\nauthHTTPExclude: []\n"
    )));
    let api = srv.api.unwrap();
    let started = Instant::now();
    assert_eq!(curl_status(&["-u", "alice:secret", &format!("http://{api}/v3/paths/list")]), "401");
    let took = started.elapsed();
    // The 5 s limit, not a hang until curl gives up (20 s); loose above for a loaded machine.
    println!("an auth server that never answers: 401 after {took:?}");
    assert!(took >= Duration::from_secs(4) && took < Duration::from_secs(15), "{took:?}");
    // The request's own timeout or the decision's (both 5 s) may fire first: either names the 5 s.
    assert!(srv.wait_log("within 5 s", Duration::from_secs(30)), "log:\n{}", srv.log());
    assert!(!held.lock().unwrap().is_empty());

    // One that is gone: refused at once.
    let gone = free_port();
    let srv = Server::start(&config(&format!("authMethod: http\nauthHTTPAddress: http://127.0.0.1:{gone}/auth\n")));
    // MediaMTX's default exclusions: the API needs no asking.
    assert_eq!(curl_status(&[&format!("http://{}/v3/paths/list", srv.api.unwrap())]), "200");
    let rtsp = srv.rtsp.unwrap();
    let err = ffprobe(&format!("rtsp://alice:secret@{rtsp}/demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}");
    assert!(srv.wait_log("could not be asked", Duration::from_secs(30)), "log:\n{}", srv.log());
    assert!(!srv.log().contains("secret"), "{}", srv.log());
}
