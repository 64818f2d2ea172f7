//! WebRTC (WHEP) output, checked with a real client: aiortc (`tests/fixtures/whep_client.py`) posts an
//! offer, connects over ICE/DTLS/SRTP to the server's UDP socket and decodes the built-in demo stream's
//! H.264 video. Candidates are loopback only: server and client both run on 127.0.0.1.
//! Needs `python3 -m pip install aiortc` (or `CAMRELAY_PYTHON` naming a Python that has it).

mod common;

use common::{http_request, python, wait_until, whep_with, HttpResponse, Server};
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "webrtc:\n  listen: 127.0.0.1:0\n  max_sessions: 256\n";

fn start() -> Server {
    let server = Server::start(CONFIG);
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "log:\n{}", server.log());
    server
}

/// Runs the aiortc WHEP client; returns its JSON report.
fn whep(server: &Server, frames: u32, json: bool) -> serde_json::Value {
    whep_with(server, "demo", frames, if json { &["json"] } else { &[] })
}

fn post_sdp(server: &Server, path: &str, sdp: &str) -> HttpResponse {
    http_request(server.api.unwrap(), "POST", path, &[("Content-Type", "application/sdp")], sdp.as_bytes())
}

#[test]
fn whep_aiortc_decodes_demo_video() {
    let server = start();
    let report = whep(&server, 10, false);
    assert_eq!(report["frames"], 10, "{report}");
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(640), Some(360)), "{report}");
    assert!(server.log().contains("webrtc connected"), "{}", server.log());
    // The client closed: the session is reaped (DTLS close or ICE disconnect), not left behind.
    assert!(
        wait_until(Duration::from_secs(40), || server.log().contains("webrtc session ended: peer")),
        "session not reaped; log:\n{}",
        server.log()
    );
}

/// Video from the demo source and Opus audio from an ffmpeg source (go2rtc's multi-source stream).
#[test]
fn whep_aiortc_decodes_opus_audio() {
    let server = Server::start(
        "streams:\n  cam:\n    - demo:clip\n    - ffmpeg:cam#audio=opus\nwebrtc:\n  listen: 127.0.0.1:0\n",
    );
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "{}", server.log());
    let report = whep_with(&server, "cam", 25, &["audio"]);
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(640), Some(360)), "{report}");
    assert_eq!((report["audio_frames"].as_u64(), report["sample_rate"].as_u64()), (Some(25), Some(48000)), "{report}");
}

#[test]
fn go2rtc_json_offer_is_answered_with_json() {
    let server = start();
    let report = whep(&server, 5, true);
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(640), Some(360)), "{report}");
}

/// A syntactically valid WebRTC offer whose only video codec is VP8.
const VP8_OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
a=setup:actpass\r\na=rtpmap:96 VP8/90000\r\n";

#[test]
fn bad_offers_and_sessions_are_rejected() {
    let server = start();
    let r = post_sdp(&server, "/api/webrtc?src=demo", "this is not SDP");
    assert_eq!(r.status, 400, "{}", r.text());

    let r = post_sdp(&server, "/api/webrtc?src=demo", VP8_OFFER);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("codecs not matched: video:VP8 => video:H264"), "{}", r.text());

    // WHIP with nothing we can receive.
    let r = post_sdp(&server, "/api/webrtc?dst=demo", VP8_OFFER);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("codecs not matched"), "{}", r.text());
    let r = post_sdp(&server, "/api/webrtc?dst=nosuch", VP8_OFFER);
    assert_eq!(r.status, 404, "{}", r.text());

    let r = post_sdp(&server, "/api/webrtc?src=nosuch", VP8_OFFER);
    assert_eq!(r.status, 404, "{}", r.text());

    let r = post_sdp(&server, "/api/webrtc", VP8_OFFER);
    assert_eq!(r.status, 400, "{}", r.text());

    let r = http_request(
        server.api.unwrap(),
        "POST",
        "/api/webrtc?src=demo",
        &[("Content-Type", "application/json")],
        br#"{"type":"answer"}"#,
    );
    assert_eq!(r.status, 400, "{}", r.text());

    let r = server.http("DELETE", "/api/webrtc?id=0123456789abcdef");
    assert_eq!(r.status, 404, "{}", r.text());
}

#[test]
fn whep_session_is_created_and_deleted() {
    let server = start();
    let offer = VP8_OFFER.replace(
        "VP8/90000",
        "H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    );
    let r = post_sdp(&server, "/api/webrtc?src=demo", &offer);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.headers.to_ascii_lowercase().contains("content-type: application/sdp"), "{}", r.headers);
    let answer = r.text();
    assert!(answer.contains("a=ice-lite") && answer.contains("H264/90000"), "{answer}");
    assert!(answer.contains("127.0.0.1"), "host candidate: {answer}");
    let location = r
        .headers
        .lines()
        .find_map(|l| l.strip_prefix("Location: ").or_else(|| l.strip_prefix("location: ")))
        .expect("Location header")
        .trim()
        .to_string();
    assert!(location.starts_with("/api/webrtc?id="), "{location}");
    // A trickled candidate is accepted while the session lives.
    let patch = http_request(
        server.api.unwrap(),
        "PATCH",
        &location,
        &[("Content-Type", "application/trickle-ice-sdpfrag")],
        b"a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n",
    );
    assert_eq!(patch.status, 204);
    assert_eq!(server.http("DELETE", &location).status, 200);
    assert!(server.wait_log("webrtc session ended: closed", Duration::from_secs(30)), "{}", server.log());
    assert_eq!(server.http("DELETE", &location).status, 404);
    assert_eq!(server.http("PATCH", &location).status, 404);
}

#[test]
fn whip_aiortc_publishes_and_rtsp_reads_it_back() {
    use std::process::Stdio;
    let server = Server::start("streams:\n  cam:\nwebrtc:\n  listen: 127.0.0.1:0\n");
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "{}", server.log());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whip_publisher.py");
    let mut child = Command::new(python())
        .arg(script)
        .arg(server.api_url("/api/webrtc?dst=cam"))
        .arg("20")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start python");
    let rx = common::lines_of(child.stdout.take().unwrap());
    let connected = rx.recv_timeout(Duration::from_secs(45)).is_ok_and(|l| l == "connected");
    if !connected {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("publisher did not connect: {}\nlog:\n{}", String::from_utf8_lossy(&out.stderr), server.log());
    }
    let probed = common::ffprobe(&server.rtsp_url("cam"), "tcp");
    let frames = common::decode_video_frames(&server.rtsp_url("cam"), "tcp", 10);
    let _ = child.kill();
    let _ = child.wait();
    let probed = probed.unwrap_or_else(|e| panic!("ffprobe: {e}\nlog:\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("a video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360));
    assert_eq!(frames.unwrap_or_else(|e| panic!("decode: {e}")), 10);
    // The publisher is gone (killed without closing): its producer leaves the stream.
    assert!(
        server.wait_log("webrtc publisher disconnected", Duration::from_secs(30)),
        "publisher not reaped; log:\n{}",
        server.log()
    );
}

/// Two-way audio over WebRTC: aiortc offers its audio as sendrecv with a 500 Hz tone (a microphone);
/// the server answers with the backchannel's codec first, so the tone arrives as PCMA in the exec
/// backchannel's stdin, while the same session plays the stream's video.
#[test]
fn microphone_plays_into_the_backchannel() {
    let dir = common::temp_dir("webrtc-mic");
    let out = dir.join("speaker.alaw");
    let server = Server::start(&format!(
        "{CONFIG}streams:\n  cam:\n    - demo:clip\n    - 'exec:sh -c \"cat > {}\"#backchannel=1'\n",
        out.display()
    ));
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "log:\n{}", server.log());
    let report = whep_with(&server, "cam", 10, &["mic"]);
    assert_eq!(report["width"], 640, "{report}");
    assert_eq!(report["mic_codec"], "audio/PCMA", "the answer put the backchannel's codec first: {report}");
    // The client sent 3 s of tone: 8000 A-law bytes a second.
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(30), || size() >= 16000),
        "backchannel got {} bytes; log:\n{}",
        size(),
        server.log()
    );
    let bytes = std::fs::read(&out).unwrap();
    let distinct = bytes.iter().collect::<std::collections::HashSet<_>>().len();
    // A 500 Hz tone at 8 kHz repeats every 16 samples: about a dozen distinct A-law codes (silence is 1-2).
    assert!((8..=24).contains(&distinct), "a tone, not silence or noise: {distinct} distinct A-law values");
    assert!(server.log().contains("two-way audio: the peer's microphone plays into the backchannel"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A STUN server for the test: ignores the first `lose` binding requests (lost datagrams), answers the
/// next with XOR-MAPPED-ADDRESS `public`, and returns how many requests it saw.
fn stun_server(public: std::net::SocketAddrV4, lose: u32) -> (u16, std::thread::JoinHandle<u32>) {
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let port = socket.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let mut seen = 0;
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if n < 20 || buf[0..2] != [0, 1] {
                continue;
            }
            seen += 1;
            if seen <= lose {
                continue;
            }
            let cookie = [0x21, 0x12, 0xA4, 0x42];
            let mut m = vec![0x01, 0x01, 0, 12];
            m.extend_from_slice(&buf[4..20]);
            m.extend_from_slice(&[0x00, 0x20, 0, 8, 0, 1]);
            let p = public.port().to_be_bytes();
            m.extend_from_slice(&[p[0] ^ cookie[0], p[1] ^ cookie[1]]);
            m.extend(public.ip().octets().iter().zip(cookie).map(|(b, c)| b ^ c));
            socket.send_to(&m, from).unwrap();
            break;
        }
        seen
    });
    (port, handle)
}

/// `candidates: [stun:8555]` asks the configured STUN server for our public address and advertises it
/// (and a host-name candidate is resolved);
/// `ice_servers` reach clients as RFC 9725 `Link` headers (OPTIONS and the WHEP answer); TCP passive
/// candidates are advertised beside UDP ones.
#[test]
fn stun_candidates_ice_server_links_and_tcp_candidates() {
    // The first request is lost: the server retransmits.
    let (stun_port, stun) = stun_server("203.0.113.7:40000".parse().unwrap(), 1);
    let server = Server::start(&format!(
        "webrtc:\n  listen: 127.0.0.1:0\n  candidates: [stun:8555, localhost:9100]\n  ice_servers:\n    - urls: [stun:127.0.0.1:{stun_port}]\n    - urls: turn:192.0.2.1:3478\n      username: u\n      credential: secretpw\n"
    ));
    assert!(server.wait_log("webrtc candidates:", Duration::from_secs(30)), "{}", server.log());
    assert_eq!(stun.join().unwrap(), 2, "a lost STUN request is sent again");
    assert!(server.log().contains("203.0.113.7:8555/udp"), "{}", server.log());

    let r = server.http("OPTIONS", "/api/webrtc");
    assert_eq!(r.status, 204, "{}", r.text());
    let headers = r.headers.to_ascii_lowercase();
    assert!(headers.contains(&format!("link: <stun:127.0.0.1:{stun_port}>; rel=\"ice-server\"")), "{}", r.headers);
    assert!(
        headers.contains("link: <turn:192.0.2.1:3478>; rel=\"ice-server\"; username=\"u\"; credential=\"secretpw\""),
        "{}",
        r.headers
    );

    let offer = VP8_OFFER.replace(
        "VP8/90000",
        "H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    );
    let r = post_sdp(&server, "/api/webrtc?src=demo", &offer);
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(r.headers.to_ascii_lowercase().contains("link: <stun:127.0.0.1:"), "{}", r.headers);
    let answer = r.text();
    let candidates: Vec<&str> = answer.lines().filter(|l| l.starts_with("a=candidate:")).collect();
    assert!(
        candidates.iter().any(|c| c.contains(" udp ") && c.contains(" 203.0.113.7 8555 typ host")),
        "{candidates:?}"
    );
    assert!(candidates.iter().any(|c| c.contains(" 127.0.0.1 ") && c.contains("tcptype passive")), "{candidates:?}");
    // A host name (dynamic DNS) is resolved at start.
    assert!(candidates.iter().any(|c| c.contains(" udp ") && c.contains(" 127.0.0.1 9100 typ host")), "{candidates:?}");
    // The TURN credential is for browsers only: the config API masks it.
    assert!(!server.http("GET", "/api/config").text().contains("secretpw"));
}

/// Offers whose peer never does ICE: at most `max_sessions` (256 here) exist (then `503`), memory stays bounded, and
/// every half-open session is reaped after the 10 s connect timeout (their readers leave the stream).
#[test]
fn half_open_sessions_are_bounded_and_reaped() {
    let server = start();
    let offer = VP8_OFFER.replace(
        "VP8/90000",
        "H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    );
    // Warm up (the demo source starts with the first reader), then measure.
    assert_eq!(post_sdp(&server, "/api/webrtc?src=demo", &offer).status, 201);
    let rss_before = server.rss_kib();
    let mut created = 1;
    let mut refused = 0;
    for _ in 0..299 {
        let r = post_sdp(&server, "/api/webrtc?src=demo", &offer);
        match r.status {
            201 => created += 1,
            503 => {
                assert!(r.text().contains("too many sessions (256)"), "{}", r.text());
                refused += 1;
            }
            s => panic!("unexpected {s}: {}", r.text()),
        }
    }
    assert_eq!((created, refused), (256, 44));
    let grown = server.rss_kib().saturating_sub(rss_before);
    eprintln!("256 half-open sessions: RSS +{grown} KiB");
    assert!(grown < 64 * 1024, "RSS grew by {grown} KiB for 256 sessions");
    let readers = || {
        let streams = server.http("GET", "/api/streams").json();
        streams["demo"]["consumers"].as_array().map(|a| a.len()).unwrap_or(0)
    };
    assert!(
        wait_until(Duration::from_secs(30), || readers() == 0),
        "{} readers left; log tail:\n{}",
        readers(),
        server.log().lines().rev().take(5).collect::<Vec<_>>().join("\n")
    );
    // The session logs its end after its reader left: wait for the line.
    assert!(server.wait_log("webrtc session ended: ICE timeout", Duration::from_secs(30)), "{}", server.log());
    assert_eq!(post_sdp(&server, "/api/webrtc?src=demo", &offer).status, 201, "room again");
}

/// H.265 is negotiated when the stream is H.265 and the peer offers it (no browser or aiortc here
/// decodes H.265 over WebRTC, so only the signalling is checked); a peer without it gets a clear error.
#[test]
fn h265_is_answered_when_offered() {
    let server = Server::start(&format!("{CONFIG}streams:\n  demo: demo:clip\n  hevc: ffmpeg:demo#video=h265\n"));
    assert!(server.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "{}", server.log());
    let r = post_sdp(&server, "/api/webrtc?src=hevc", &VP8_OFFER.replace("VP8/90000", "H265/90000"));
    assert_eq!(r.status, 201, "{}\n{}", r.text(), server.log());
    assert!(r.text().contains("H265/90000"), "{}", r.text());
    let h264 = VP8_OFFER.replace("VP8/90000", "H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f");
    let r = post_sdp(&server, "/api/webrtc?src=hevc", &h264);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("codecs not matched: video:H264 => video:H265"), "{}", r.text());
}

/// ICE-TCP connections that are not a session's peer are closed: at once for a packet that is not a
/// STUN request of a live session, and after 15 s for one that only sends empty frames.
#[test]
fn ice_tcp_strangers_are_disconnected() {
    use std::io::{Read, Write};
    let server = start();
    let log = server.log();
    let port: u16 = log
        .lines()
        .find_map(|l| l.split("[webrtc] listen addr=127.0.0.1:").nth(1))
        .and_then(|p| p.strip_suffix("/tcp").or(p.strip_suffix("/udp")))
        .and_then(|p| p.trim().parse().ok())
        .unwrap_or_else(|| panic!("port in log:\n{log}"));
    // Closed: end of stream or reset, not a read timeout.
    let closed_within = |s: &mut std::net::TcpStream, secs: u64| {
        s.set_read_timeout(Some(Duration::from_secs(secs))).unwrap();
        let mut b = [0u8; 16];
        match s.read(&mut b) {
            Ok(n) => n == 0,
            Err(e) => !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut),
        }
    };
    let mut garbage = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    garbage.write_all(b"\x00\x05hello").unwrap();
    assert!(closed_within(&mut garbage, 5), "a frame that is no STUN request closes the connection");

    let mut idle = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let started = std::time::Instant::now();
    idle.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut b = [0u8; 16];
    let closed = loop {
        // Empty frames do not keep the connection open.
        if idle.write_all(b"\x00\x00").is_err() {
            break true;
        }
        match idle.read(&mut b) {
            Ok(0) => break true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => break true,
        }
        if started.elapsed() > Duration::from_secs(30) {
            break false;
        }
    };
    assert!(closed, "empty frames kept the connection open for 30 s");
    eprintln!("closed after {:?}", started.elapsed());
}

/// An offer that makes str0m 0.25 assert ("Pt locked multiple times": one payload type with different
/// codecs in two m-lines; found by the webrtc_offer fuzz target) is a 400, and the next offer is served.
#[test]
fn offer_that_trips_str0m_is_a_bad_request() {
    let server = start();
    let offer = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/offer_pt_twice.sdp"))
        .unwrap()
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let r = post_sdp(&server, "/api/webrtc?src=demo", &offer);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("payload type 101"), "{}", r.text());
    let good = VP8_OFFER.replace(
        "VP8/90000",
        "H264/90000\r\na=fmtp:96 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
    );
    assert_eq!(post_sdp(&server, "/api/webrtc?src=demo", &good).status, 201);
}
