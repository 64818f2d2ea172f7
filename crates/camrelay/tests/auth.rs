//! Authentication beyond plain passwords, with real clients: MediaMTX's hashed passwords (`sha256:`,
//! `argon2:`), the JWT method (a test JWK set server, tokens signed with ring), the failed-login limit
//! and CSRF, with ffprobe, ffmpeg, GStreamer and curl.

mod common;

use common::*;

/// A MediaMTX config on loopback with free ports and the demo clip as `demo`; `USERS` is replaced.
const MEDIAMTX: &str = r#"
logLevel: info
api: true
apiAddress: 127.0.0.1:0
rtspAddress: 127.0.0.1:0
rtpAddress: 127.0.0.1:0
rtcpAddress: 127.0.0.1:0
hls: false
webrtc: false
rtmp: false
srt: false
USERS
paths:
  demo:
    source: demo:clip
"#;

/// MediaMTX's test vectors: both hash "testuser".
const SHA256_TESTUSER: &str = "sha256:rl3rgi4NcZkpAEcacZnQ2VuOfJ0FxAqCRaKB/SwdZoQ=";
const ARGON2_TESTUSER: &str =
    "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58";

/// ffprobe reads RTSP with `user:pass` checked against a sha256 user (name and password hashed) and an
/// argon2 user; a wrong password gets 401. Digest is configured too, but with hashed entries the
/// server offers Basic only (ffprobe would pick Digest, which a hash cannot check).
#[test]
fn hashed_passwords_over_rtsp() {
    let users = format!(
        "rtspAuthMethods: [basic, digest]\nauthInternalUsers:\n\
         - user: {SHA256_TESTUSER}\n  pass: {SHA256_TESTUSER}\n  permissions:\n  - action: read\n\
         - user: argon\n  pass: {ARGON2_TESTUSER}\n  permissions:\n  - action: read\n"
    );
    let server = Server::start(&MEDIAMTX.replace("USERS", &users));
    let rtsp = server.rtsp.unwrap();
    for creds in ["testuser:testuser", "argon:testuser"] {
        let url = format!("rtsp://{creds}@{rtsp}/demo");
        let probed = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("{creds}: {e}\n{}", server.log()));
        assert!(probed.iter().any(|s| s.codec_type == "video" && s.width > 0), "{creds}: {probed:?}");
    }
    for creds in ["testuser:wrong", "argon:wrong", "nobody:testuser"] {
        let err = ffprobe(&format!("rtsp://{creds}@{rtsp}/demo"), "tcp").unwrap_err();
        assert!(err.contains("401"), "{creds}: {err}");
    }
    let err = ffprobe(&format!("rtsp://{rtsp}/demo"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}");
}

/// A JWK set server for the tests: serves whatever set it holds, counts the fetches.
struct JwksServer {
    addr: std::net::SocketAddr,
    set: std::sync::Arc<std::sync::Mutex<String>>,
    fetches: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl JwksServer {
    fn start(set: &str) -> JwksServer {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let set = std::sync::Arc::new(std::sync::Mutex::new(set.to_string()));
        let fetches = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (body, count) = (set.clone(), fetches.clone());
        std::thread::spawn(move || {
            for mut conn in listener.incoming().map_while(Result::ok) {
                let mut head = [0u8; 4096];
                let _ = conn.read(&mut head);
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let body = body.lock().unwrap().clone();
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(reply.as_bytes());
            }
        });
        JwksServer { addr, set, fetches }
    }

    fn fetches(&self) -> usize {
        self.fetches.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// An ES256 signing key (ring) and its JWK.
struct SigningKey {
    pair: ring::signature::EcdsaKeyPair,
    kid: String,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        use ring::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
        let rng = ring::rand::SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
        SigningKey { pair, kid: kid.to_string() }
    }

    fn jwk(&self) -> serde_json::Value {
        use ring::signature::KeyPair;
        let p = self.pair.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": self.kid,
            "x": b64(&p[1..33]), "y": b64(&p[33..])})
    }

    /// A token with `permissions` in MediaMTX's claim, valid from now for `valid_for` seconds
    /// (negative: expired).
    fn token(&self, permissions: serde_json::Value, valid_for: i64) -> String {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": self.kid});
        let claims = serde_json::json!({"iat": now, "exp": now + valid_for, "iss": "test-idp",
            "mediamtx_permissions": permissions});
        let msg = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let sig = self.pair.sign(&ring::rand::SystemRandom::new(), msg.as_bytes()).unwrap();
        format!("{msg}.{}", b64(sig.as_ref()))
    }
}

fn b64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn jwk_set(keys: &[&SigningKey]) -> String {
    serde_json::json!({ "keys": keys.iter().map(|k| k.jwk()).collect::<Vec<_>>() }).to_string()
}

/// HTTP status of `curl` with `args` (a real client, as a user would send a Bearer token).
fn curl_status(args: &[&str]) -> String {
    let out = run_with_timeout(
        std::process::Command::new("curl").args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]).args(args),
        std::time::Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// MediaMTX's JWT method against a JWK set served by a test server: ffprobe reads RTSP with the token
/// as password and as `?jwt=`; curl reads the API with `Authorization: Bearer` and `?jwt=`. An expired
/// token, a token for another path or action, and a token signed by another key are refused; a token
/// of a key added later to the set works once its unknown key id made the server refetch the set.
#[test]
fn jwt_with_a_jwks_server() {
    let key = SigningKey::new("k1");
    let jwks = JwksServer::start(&jwk_set(&[&key]));
    let users = format!(
        "authMethod: jwt\nauthJWTJWKS: http://{}/jwks\nauthJWTIssuer: test-idp\nrtspAuthMethods: [basic, digest]\n",
        jwks.addr
    );
    let server = Server::start(&MEDIAMTX.replace("USERS", &users));
    assert!(server.wait_log("auth: JWK set fetched", std::time::Duration::from_secs(30)), "{}", server.log());
    let rtsp = server.rtsp.unwrap();
    let api = server.api.unwrap();
    let read_demo = serde_json::json!([{"action": "read", "path": "demo"}, {"action": "api", "path": ""}]);
    let token = key.token(read_demo.clone(), 300);

    // RTSP: the token as `?jwt=` (ffprobe), and as the password of an arbitrary user (GStreamer:
    // ffmpeg cuts RTSP credentials at 127 bytes, shorter than any signed token).
    let url = format!("rtsp://{rtsp}/demo?jwt={token}");
    let probed = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("{e}\n{}", server.log()));
    assert!(probed.iter().any(|s| s.codec_type == "video" && s.width > 0), "{probed:?}");
    let gst_read = |password: &str| {
        let pipeline = format!(
            "rtspsrc location=rtsp://{rtsp}/demo protocols=tcp user-id=user user-pw={password} \
             ! application/x-rtp,media=video ! decodebin ! video/x-raw ! fakesink num-buffers=10"
        );
        run_with_timeout(
            std::process::Command::new("sh").args(["-c", &format!("exec gst-launch-1.0 -q {pipeline}")]),
            std::time::Duration::from_secs(30),
        )
    };
    let out = gst_read(&token);
    assert!(
        out.status.success(),
        "{}{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );
    // API: Bearer and `?jwt=` (authJWTInHTTPQuery defaults to true); nothing: 401.
    let list = format!("http://{api}/v3/paths/list");
    assert_eq!(curl_status(&["-H", &format!("Authorization: Bearer {token}"), &list]), "200");
    assert_eq!(curl_status(&[&format!("{list}?jwt={token}")]), "200");
    assert_eq!(curl_status(&[&list]), "401");

    // Refused: expired, another path, another key under the same key id, tampered.
    let expired = key.token(read_demo.clone(), -10);
    let other_path = key.token(serde_json::json!([{"action": "read", "path": "other"}]), 300);
    let impostor = SigningKey::new("k1").token(read_demo.clone(), 300);
    // (Refusals count as failed logins, 10 per address and minute at most: curl sends these from
    // other loopback addresses than ffprobe's 127.0.0.1.)
    let err = ffprobe(&format!("rtsp://{rtsp}/demo?jwt={expired}"), "tcp").unwrap_err();
    assert!(err.contains("401"), "{err}");
    for (what, bad) in [("expired", &expired), ("other path", &other_path), ("other key", &impostor)] {
        let bearer = format!("Authorization: Bearer {bad}");
        assert_eq!(curl_status(&["--interface", "127.0.0.3", "-H", &bearer, &list]), "401", "{what}");
    }
    // A token for reading only is not an API token.
    let read_only = key.token(serde_json::json!([{"action": "read"}]), 300);
    assert_eq!(
        curl_status(&["--interface", "127.0.0.3", "-H", &format!("Authorization: Bearer {read_only}"), &list]),
        "401"
    );

    // Key rotation: a new key id is fetched on demand (the first token fails, a later one works).
    let fetched = jwks.fetches();
    let key2 = SigningKey::new("k2");
    *jwks.set.lock().unwrap() = jwk_set(&[&key, &key2]);
    let token2 = key2.token(read_demo, 300);
    let bearer2 = format!("Authorization: Bearer {token2}");
    assert!(
        wait_until(std::time::Duration::from_secs(15), || {
            curl_status(&["--interface", "127.0.0.5", "-H", &bearer2, &list]) == "200"
        }),
        "{}",
        server.log()
    );
    // Unknown key ids refetch at most once per 10 s.
    for _ in 0..5 {
        assert_eq!(
            curl_status(&[
                "--interface",
                "127.0.0.4",
                "-H",
                &format!("Authorization: Bearer {}", SigningKey::new("k9").token(serde_json::json!([]), 60)),
                &list
            ]),
            "401"
        );
    }
    assert!(jwks.fetches() <= fetched + 2, "{} fetches after {fetched}", jwks.fetches());
    // The MediaMTX endpoint refetches at once.
    let before = jwks.fetches();
    assert_eq!(
        curl_status(&[
            "-X",
            "POST",
            "-H",
            &format!("Authorization: Bearer {token}"),
            &format!("http://{api}/v3/auth/jwks/refresh")
        ]),
        "200",
        "{}",
        server.log()
    );
    assert_eq!(jwks.fetches(), before + 1);
    // Last (GStreamer retries a refused login many times, and this address would be banned): an
    // expired token as the password is refused.
    let out = gst_read(&expired);
    assert!(!out.status.success());
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(said.contains("Unauthorized"), "{said}");
    // No token reached the log.
    assert!(!server.log().contains(&token[token.len() - 20..]), "{}", server.log());
}

/// An RTSP DESCRIBE with Basic credentials from the local address `from`; the RTSP status code. A
/// few lines of Python: neither ffmpeg, GStreamer nor this curl (built without RTSP) can choose the
/// source address of an RTSP connection.
fn rtsp_describe_from(from: &str, url: &str, creds: &str) -> String {
    let script = r#"
import base64, socket, sys
src, url, creds = sys.argv[1:4]
host, port = url.split("/")[2].split(":")
s = socket.create_connection((host, int(port)), timeout=5, source_address=(src, 0))
auth = base64.b64encode(creds.encode()).decode()
s.sendall(f"DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAuthorization: Basic {auth}\r\n\r\n".encode())
print(s.recv(4096).decode().split()[1])
"#;
    let out = run_with_timeout(
        std::process::Command::new(python()).args(["-c", script, from, url, creds]),
        std::time::Duration::from_secs(10),
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Failed logins are limited per address: 20 wrong RTSP logins from 127.0.0.2, then the right password
/// from there is refused too (RTSP, and the API with curl), while 127.0.0.1 still gets in (ffprobe too).
#[test]
fn failed_logins_are_rate_limited_per_address() {
    let users =
        "authInternalUsers:\n- user: viewer\n  pass: secret\n  permissions:\n  - action: read\n  - action: api\n";
    let server = Server::start(&MEDIAMTX.replace("USERS", users));
    let url = server.rtsp_url("demo");
    assert_eq!(rtsp_describe_from("127.0.0.2", &url, "viewer:secret"), "200");
    for _ in 0..20 {
        assert_eq!(rtsp_describe_from("127.0.0.2", &url, "viewer:guess"), "401");
    }
    assert_eq!(rtsp_describe_from("127.0.0.2", &url, "viewer:secret"), "401", "{}", server.log());
    assert!(server.wait_log("failed logins within 60 s", std::time::Duration::from_secs(30)), "{}", server.log());
    assert_eq!(server.log().matches("failed logins within 60 s").count(), 1, "logged once");
    assert_eq!(rtsp_describe_from("127.0.0.1", &url, "viewer:secret"), "200");
    // The limit is per address, across protocols: the API (curl) refuses 127.0.0.2's right password.
    let list = format!("http://{}/v3/paths/list", server.api.unwrap());
    assert_eq!(curl_status(&["--interface", "127.0.0.2", "-u", "viewer:secret", &list]), "401");
    assert_eq!(curl_status(&["--interface", "127.0.0.1", "-u", "viewer:secret", &list]), "200");
    let rtsp = server.rtsp.unwrap();
    let probed = ffprobe(&format!("rtsp://viewer:secret@{rtsp}/demo"), "tcp").unwrap();
    assert!(probed.iter().any(|s| s.codec_type == "video"), "{probed:?}");
}

/// CSRF (go2rtc's CVE-2024-29192): curl forging a browser's cross-site requests. A state-changing
/// request with a foreign `Origin` is refused (403) and changes nothing; the same request from this
/// server's own origin or without `Origin` (curl, Home Assistant) works. With `api.origin: "*"`,
/// cross-origin requests pass except "simple" ones (`text/plain`, forms) to the control API, which a
/// page can send without a CORS preflight.
#[test]
fn cross_site_requests_are_refused() {
    for cors in ["", "  origin: \"*\"\n"] {
        let mut server = Server::start(&format!("api:\n  listen: 127.0.0.1:0\n{cors}streams:\n  kept: demo:clip\n"));
        let api = server.api.unwrap();
        let evil = "Origin: http://evil.example";
        let streams = || server.http("GET", "/api/streams").json();
        let put = |name: &str, origin: &[&str]| {
            let url = format!("http://{api}/api/streams?name={name}&src=demo:clip");
            let mut args = vec!["-X", "PUT"];
            for o in origin {
                args.extend(["-H", o]);
            }
            args.push(&url);
            curl_status(&args)
        };
        let forged_config = |content_type: &str| {
            curl_status(&[
                "-X",
                "POST",
                "-H",
                evil,
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
                "streams:\n  pwned: exec:touch /tmp/camrelay-csrf\n",
                &format!("http://{api}/api/config"),
            ])
        };
        // A form-like POST of a new config from another site: refused, the file untouched.
        let before = std::fs::read_to_string(server.dir.join("camrelay.yaml")).unwrap();
        assert_eq!(forged_config("text/plain"), "403", "cors {cors:?}");
        assert_eq!(forged_config("application/x-www-form-urlencoded"), "403", "cors {cors:?}");
        assert_eq!(std::fs::read_to_string(server.dir.join("camrelay.yaml")).unwrap(), before);
        assert!(streams().get("pwned").is_none());
        if cors.is_empty() {
            // Without CORS, any state change from another origin is refused.
            assert_eq!(put("a", &[evil]), "403");
            assert!(streams().get("a").is_none());
            assert_eq!(forged_config("application/json"), "403");
        } else {
            // `*` lets other origins make non-simple requests (a browser preflights them).
            assert_eq!(put("a", &[evil]), "200");
        }
        // This server's own origin (the web UI) and non-browser clients work.
        let own = format!("Origin: http://{api}");
        assert_eq!(put("b", &[&own]), "200");
        assert_eq!(put("c", &[]), "200");
        assert!(streams().get("b").is_some() && streams().get("c").is_some());
        // Reads are not state changes.
        assert_eq!(curl_status(&["-H", evil, &format!("http://{api}/api/streams")]), "200");
        server.terminate();
    }
}

/// The JWT method over RTMP: ffmpeg publishes with `?jwt=` in the stream name (MediaMTX's way), a
/// token without the publish permission is refused, and ffprobe reads the stream back over RTSP.
#[test]
fn jwt_over_rtmp() {
    let key = SigningKey::new("k1");
    let jwks = JwksServer::start(&jwk_set(&[&key]));
    let users = format!("authMethod: jwt\nauthJWTJWKS: http://{}/jwks\n", jwks.addr);
    let config = MEDIAMTX.replace("USERS", &users).replace("rtmp: false", "rtmp: true\nrtmpAddress: 127.0.0.1:0");
    let server = Server::start(&(config + "  ~^live/:\n"));
    assert!(server.wait_log("auth: JWK set fetched", std::time::Duration::from_secs(30)), "{}", server.log());
    let addr = server.rtmp_addr();
    let publish = |token: &str| {
        Publisher::encode(
            "320x240",
            false,
            false,
            &["-t", "60", "-f", "flv", &format!("rtmp://{addr}/live/cam?jwt={token}")],
        )
    };
    let reader = key.token(serde_json::json!([{"action": "read"}]), 300);
    let refused = publish(&reader);
    assert!(server.wait_log("not authorized", std::time::Duration::from_secs(30)), "{}", server.log());
    drop(refused);
    let _publisher = publish(&key.token(serde_json::json!([{"action": "publish", "path": "live/cam"}]), 300));
    let url = format!("rtsp://{}/live/cam?jwt={reader}", server.rtsp.unwrap());
    assert!(
        wait_until(std::time::Duration::from_secs(15), || ffprobe(&url, "tcp")
            .is_ok_and(|s| s.iter().any(|s| s.codec_type == "video" && s.width == 320))),
        "{}",
        server.log()
    );
    assert!(!server.log().contains(&reader[reader.len() - 20..]), "a token in the log:\n{}", server.log());
}

/// `authJWTJWKSFingerprint`: the JWK set served over HTTPS with a self-signed certificate (Python's
/// ssl server) is fetched when the fingerprint pins that certificate, and a token signed with its key
/// reads the API; pinned to another certificate, the fetch fails (logged) and the token is refused.
#[test]
fn jwks_over_https_with_a_pinned_certificate() {
    let dir = temp_dir("jwks-pin");
    let (cert, key_file) = make_cert(&dir, "idp");
    let (other, _) = make_cert(&dir, "other");
    let key = SigningKey::new("k1");
    std::fs::write(dir.join("jwks"), jwk_set(&[&key])).unwrap();
    let script = r#"
import http.server, ssl, sys, functools
cert, key, root = sys.argv[1:4]
handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=root)
srv = http.server.HTTPServer(("127.0.0.1", 0), handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"#;
    let mut child = std::process::Command::new(python())
        .args(["-c", script])
        .arg(&cert)
        .arg(&key_file)
        .arg(&dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let port = lines_of(child.stdout.take().unwrap()).recv_timeout(std::time::Duration::from_secs(10)).unwrap();
    let hex = |c: &std::path::Path| file_fingerprint(c).replace(':', "").to_lowercase();
    let users = |fp: &str| {
        format!("authMethod: jwt\nauthJWTJWKS: https://127.0.0.1:{port}/jwks\nauthJWTJWKSFingerprint: {fp}\n")
    };
    let token = key.token(serde_json::json!([{"action": "api"}]), 300);
    let bearer = format!("Authorization: Bearer {token}");

    let server = Server::start(&MEDIAMTX.replace("USERS", &users(&hex(&cert))));
    assert!(server.wait_log("auth: JWK set fetched", std::time::Duration::from_secs(30)), "{}", server.log());
    let list = format!("http://{}/v3/paths/list", server.api.unwrap());
    assert_eq!(curl_status(&["-H", &bearer, &list]), "200");
    assert_eq!(curl_status(&[&list]), "401");

    let pinned_elsewhere = Server::start(&MEDIAMTX.replace("USERS", &users(&hex(&other))));
    assert!(
        pinned_elsewhere.wait_log("auth: JWK set:", std::time::Duration::from_secs(30)),
        "{}",
        pinned_elsewhere.log()
    );
    assert!(!pinned_elsewhere.log().contains("JWK set fetched"), "{}", pinned_elsewhere.log());
    let list = format!("http://{}/v3/paths/list", pinned_elsewhere.api.unwrap());
    assert_eq!(curl_status(&["--interface", "127.0.0.4", "-H", &bearer, &list]), "401");
    let _ = child.kill();
    let _ = child.wait();
}

/// MediaMTX's `user` and `query` in the /v3 session lists: an RTMP publisher (`?user=&pass=` in the
/// stream name) and an RTSP reader (Digest, so the name comes from the proof) authenticated as the
/// internal user `alice` are listed with her name and the query of their URLs; the password appears
/// nowhere in the JSON (the RTMP query is shown without its `pass=`).
#[test]
fn session_lists_show_the_authenticated_user_and_query() {
    let users = "rtspAuthMethods: [digest]\nauthInternalUsers:\n\
                 - user: alice\n  pass: wonderland\n  permissions:\n  - action: publish\n  - action: read\n\
                 - user: any\n  permissions:\n  - action: api\n";
    let config = MEDIAMTX
        .replace("USERS", users)
        .replace("rtmp: false", "rtmp: true\nrtmpAddress: 127.0.0.1:0")
        .replace("webrtc: false", "webrtc: true\nwebrtcAddress: 127.0.0.1:0\nwebrtcLocalUDPAddress: 127.0.0.1:0");
    let server = std::sync::Arc::new(Server::start(&(config + "  all_others:\n")));
    let addr = server.rtmp_addr();
    let _publisher = Publisher::encode(
        "320x240",
        false,
        false,
        &["-t", "60", "-f", "flv", &format!("rtmp://{addr}/live/cam?user=alice&pass=wonderland&via=rtmp")],
    );
    let list = |kind: &str, state: &str| {
        let body = server.http("GET", &format!("/v3/{kind}/list")).json();
        let item = body["items"].as_array().into_iter().flatten().find(|i| i["state"] == state).cloned();
        item.map(|i| (i, body.to_string()))
    };
    let mut rtmp = None;
    assert!(
        wait_until(std::time::Duration::from_secs(15), || {
            rtmp = list("rtmpconns", "publish");
            rtmp.is_some()
        }),
        "no RTMP publisher listed; log:\n{}",
        server.log()
    );
    let (conn, body) = rtmp.unwrap();
    assert_eq!((conn["path"].as_str(), conn["user"].as_str()), (Some("live/cam"), Some("alice")), "{body}");
    assert_eq!(conn["query"], "user=alice&via=rtmp", "{body}");
    assert!(!body.contains("wonderland"), "the password in /v3/rtmpconns/list: {body}");

    let url = format!("rtsp://alice:wonderland@{}/live/cam?via=rtsp", server.rtsp.unwrap());
    let _reader = Publisher::spawn("ffmpeg", &["-v", "error", "-rtsp_transport", "tcp", "-i", &url, "-f", "null", "-"]);
    let mut rtsp = None;
    assert!(
        wait_until(std::time::Duration::from_secs(15), || {
            rtsp = list("rtspsessions", "read");
            rtsp.is_some()
        }),
        "no RTSP reader listed; log:\n{}",
        server.log()
    );
    let (session, body) = rtsp.unwrap();
    assert_eq!((session["path"].as_str(), session["user"].as_str()), (Some("live/cam"), Some("alice")), "{body}");
    assert_eq!(session["query"], "via=rtsp", "{body}");
    assert!(!body.contains("wonderland"), "the password in /v3/rtspsessions/list: {body}");
    // The publisher's entry is unchanged by the reader, and the reader took frames (a real reader).
    let (conn, _) = list("rtmpconns", "publish").expect("the publisher still listed");
    assert_eq!(conn["user"], "alice");
    assert!(
        wait_until(std::time::Duration::from_secs(15), || list("rtspsessions", "read").is_some_and(|(s, _)| s
            ["outboundBytes"]
            .as_u64()
            .unwrap_or(0)
            > 10_000)),
        "the RTSP reader got no media; log:\n{}",
        server.log()
    );

    // A WHEP reader (aiortc, HTTP Basic) decoding 100 frames is listed while it reads.
    let whep = {
        let server = server.clone();
        std::thread::spawn(move || whep_with(&server, "live/cam&via=whep", 100, &["user=alice:wonderland"]))
    };
    let mut webrtc = None;
    assert!(
        wait_until(std::time::Duration::from_secs(30), || {
            webrtc = list("webrtcsessions", "read");
            webrtc.is_some() || whep.is_finished()
        }) && webrtc.is_some(),
        "no WebRTC reader listed; log:\n{}",
        server.log()
    );
    let (session, body) = webrtc.unwrap();
    assert_eq!((session["path"].as_str(), session["user"].as_str()), (Some("live/cam"), Some("alice")), "{body}");
    assert_eq!(session["query"], "via=whep", "{body}");
    assert!(!body.contains("wonderland"), "the password in /v3/webrtcsessions/list: {body}");
    let report = whep.join().expect("the WHEP client");
    assert!(report["frames"].as_u64().unwrap_or(0) >= 100, "{report}");
}
