//! Authentication beyond plain passwords, with real clients: MediaMTX's hashed passwords (`sha256:`,
//! `argon2:`) read over RTSP by ffprobe.

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
