//! The RTSP client source (`rtsp://`) against real peers: a fake camera answering with captured camera
//! replies (`crates/rtsp/tests/captures`), a GStreamer RTSP server (with auth and an ONVIF backchannel), and
//! ffmpeg as an RTSP server.

mod common;

use bytes::{Bytes, BytesMut};
use camrelay::hub::{Opened, Source, SourceErrorKind, Track, TrackReader};
use common::*;
use media::{Direction, Frame, RtpPacket};
use rtsp::message::{self, Message, Request};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

fn capture(name: &str) -> Vec<u8> {
    // The captures live in the repository (crates/rtsp/tests/captures, copied from shared/camera-captures).
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../rtsp/tests/captures").join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A reply with its CSeq set to the request's (the captures carry the CSeq of their own session).
fn with_cseq(reply: &[u8], cseq: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut out = String::new();
    for line in head.split("\r\n") {
        if line.to_ascii_lowercase().starts_with("cseq:") {
            out.push_str(&format!("CSeq: {cseq}\r\n"));
        } else {
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str("\r\n");
    out.push_str(body);
    out.into_bytes()
}

const OK: &[u8] = b"RTSP/1.0 200 OK\r\nCSeq: 0\r\n\r\n";

enum Step {
    Reply(&'static str, Vec<u8>),
    /// Reply, then send these interleaved frames.
    ReplyThen(&'static str, Vec<u8>, Vec<(u8, Vec<u8>)>),
    /// Close the connection when this request arrives.
    Close(&'static str),
}

#[derive(Default)]
struct Seen {
    requests: Vec<Request>,
    interleaved: Vec<(u8, Bytes)>,
    connections: usize,
}

/// A camera that answers a script of captured replies, one connection after another.
struct FakeCamera {
    port: u16,
    seen: Arc<Mutex<Seen>>,
}

impl FakeCamera {
    async fn start(script: Vec<Step>) -> FakeCamera {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            let mut script = std::collections::VecDeque::from(script);
            loop {
                let Ok((mut sock, _)) = listener.accept().await else { return };
                seen2.lock().unwrap().connections += 1;
                let mut buf = BytesMut::new();
                'conn: loop {
                    let msg = loop {
                        match message::decode_buf(&mut buf) {
                            Ok(Some(m)) => break m,
                            Ok(None) => {}
                            Err(_) => break 'conn,
                        }
                        if sock.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                            break 'conn;
                        }
                    };
                    let req = match msg {
                        Message::Request(r) => r,
                        Message::Interleaved { channel, payload } => {
                            seen2.lock().unwrap().interleaved.push((channel, payload));
                            continue;
                        }
                        Message::Response(_) => continue,
                    };
                    let cseq = req.cseq().unwrap_or("0").to_string();
                    let method = req.method.as_str().to_string();
                    seen2.lock().unwrap().requests.push(req);
                    let step = match script.front() {
                        Some(Step::Reply(m, _) | Step::ReplyThen(m, _, _) | Step::Close(m)) if *m == method => {
                            script.pop_front()
                        }
                        _ => None,
                    };
                    match step {
                        Some(Step::Reply(_, r)) => {
                            let _ = sock.write_all(&with_cseq(&r, &cseq)).await;
                        }
                        Some(Step::ReplyThen(_, r, frames)) => {
                            let _ = sock.write_all(&with_cseq(&r, &cseq)).await;
                            for (ch, data) in frames {
                                let _ =
                                    sock.write_all(&message::encode_interleaved_header(ch, data.len() as u16)).await;
                                let _ = sock.write_all(&data).await;
                            }
                        }
                        Some(Step::Close(_)) => break 'conn,
                        None => {} // keep-alives, TEARDOWN: no answer needed
                    }
                }
            }
        });
        FakeCamera { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{path}", self.port)
    }

    fn requests(&self) -> Vec<Request> {
        self.seen.lock().unwrap().requests.clone()
    }

    fn methods(&self) -> Vec<String> {
        self.requests().iter().map(|r| r.method.as_str().to_string()).collect()
    }

    async fn wait_for(&self, method: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.methods().iter().filter(|m| *m == method).count() < n {
            assert!(Instant::now() < deadline, "no {method} came; requests: {:?}", self.methods());
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

fn source(url: &str) -> Arc<dyn Source> {
    match camrelay::sources::rtsp::factory()(url) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

fn tracks_for(medias: &[media::Media]) -> Vec<Arc<Track>> {
    medias.iter().map(|m| Arc::new(Track::new(m.kind, m.codecs[0].clone(), 1 << 20))).collect()
}

/// open (DESCRIBE) → run on that connection until PLAY → stop; returns the camera's view.
async fn play_session(cam: &FakeCamera, url: &str) -> Vec<media::Media> {
    let src = source(url);
    let Opened { medias, parked } = src.open().await.expect("describe");
    assert!(parked.is_some());
    let tracks = tracks_for(&medias);
    let stop = CancellationToken::new();
    let run = tokio::spawn(src.clone().run_opened(parked, tracks, stop.clone()));
    cam.wait_for("PLAY", 1).await;
    stop.cancel();
    let r = tokio::time::timeout(Duration::from_secs(30), run).await.expect("run stops").unwrap();
    assert!(r.is_ok(), "{r:?}");
    cam.wait_for("TEARDOWN", 1).await;
    medias
}

fn setups(cam: &FakeCamera) -> Vec<(String, String, Option<String>)> {
    cam.requests()
        .iter()
        .filter(|r| r.method.as_str() == "SETUP")
        .map(|r| {
            (
                r.uri.clone(),
                r.headers.get("Transport").unwrap_or("").to_string(),
                r.headers.get("Session").map(str::to_string),
            )
        })
        .collect()
}

fn session_of(cam: &FakeCamera, method: &str) -> Option<String> {
    cam.requests()
        .iter()
        .find(|r| r.method.as_str() == method)
        .and_then(|r| r.headers.get("Session").map(str::to_string))
}

#[tokio::test]
async fn hikvision_absolute_controls_and_session_with_spaces() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("hikvision_describe.txt")),
        Step::Reply("SETUP", capture("hikvision_setup.txt")),
        Step::Reply("PLAY", capture("hikvision_play.txt")),
    ])
    .await;
    let medias = play_session(&cam, &cam.url("Streaming/Channels/101")).await;
    // The ONVIF metadata track is not set up.
    assert_eq!(medias.len(), 1);
    assert_eq!(medias[0].to_string(), "video, recvonly, H264");
    let s = setups(&cam);
    assert_eq!(s.len(), 1);
    assert_eq!(
        s[0].0,
        "rtsp://192.168.5.106:554/Streaming/Channels/101/trackID=1?transportmode=unicast&profile=Profile_1"
    );
    assert_eq!(s[0].1, "RTP/AVP/TCP;unicast;interleaved=0-1");
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("708345999"));
    let play = cam.requests().into_iter().find(|r| r.method.as_str() == "PLAY").unwrap();
    assert_eq!(play.uri, "rtsp://192.168.5.106:554/Streaming/Channels/101/?transportmode=unicast&profile=Profile_1");
    let describe = cam.requests().into_iter().find(|r| r.method.as_str() == "DESCRIBE").unwrap();
    assert_eq!(describe.uri, cam.url("Streaming/Channels/101"));
    assert_eq!(describe.headers.get("Require"), Some("www.onvif.org/ver20/backchannel"));
}

#[tokio::test]
async fn dahua_content_base_with_query_and_keepalive_method() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", capture("dahua_options.txt")),
        Step::Reply("DESCRIBE", capture("dahua_describe_h264_aac_onvif.txt")),
        Step::Reply("SETUP", capture("dahua_setup.txt")),
        Step::Reply("SETUP", capture("dahua_setup.txt")),
        Step::Reply("PLAY", capture("dahua_play.txt")),
    ])
    .await;
    let medias = play_session(&cam, &cam.url("cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif")).await;
    assert_eq!(
        medias.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        ["video, recvonly, H264", "audio, recvonly, AAC"]
    );
    let s = setups(&cam);
    let base = "rtsp://192.168.5.111:554/cam/realmonitor?channel=1&subtype=1&unicast=true&proto=Onvif/";
    assert_eq!(s[0].0, format!("{base}trackID=0"));
    assert_eq!(s[1].0, format!("{base}trackID=1"));
    assert_eq!(s[0].1, "RTP/AVP/TCP;unicast;interleaved=0-1");
    assert_eq!(s[1].1, "RTP/AVP/TCP;unicast;interleaved=2-3");
    assert_eq!(s[0].2, None);
    // The second SETUP and PLAY carry the first SETUP's session id, without `;timeout`.
    assert_eq!(s[1].2.as_deref(), Some("634214675641"));
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("634214675641"));
    assert_eq!(cam.requests().iter().find(|r| r.method.as_str() == "PLAY").unwrap().uri, base);
}

#[tokio::test]
async fn bunny_describe_session_and_bad_rtptime() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("bunny_describe.txt")),
        Step::Reply("SETUP", capture("bunny_setup.txt")),
        Step::Reply("SETUP", capture("bunny_setup.txt")),
        Step::Reply("PLAY", capture("bad_rtptime.txt")),
    ])
    .await;
    let medias = play_session(&cam, &cam.url("vod/mp4:BigBuckBunny_115k.mov")).await;
    assert_eq!(medias.len(), 2);
    let s = setups(&cam);
    assert_eq!(s[0].0, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=1");
    assert_eq!(s[1].0, "rtsp://wowzaec2demo.streamlock.net/vod/mp4:BigBuckBunny_115k.mov/trackID=2");
    // Wowza opens the session at DESCRIBE: every later request carries it.
    assert_eq!(s[0].2.as_deref(), Some("1642021126"));
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("1642021126"));
}

#[tokio::test]
async fn h264dvr_udp_relative_controls_static_payload() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("h264dvr_describe.txt")),
        Step::Reply("SETUP", capture("h264dvr_setup_video.txt")),
        Step::Reply("SETUP", capture("h264dvr_setup_audio.txt")),
        Step::Reply("PLAY", capture("h264dvr_play.txt")),
    ])
    .await;
    let medias = play_session(&cam, &format!("{}#transport=udp", cam.url("camera"))).await;
    assert_eq!(
        medias.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        ["video, recvonly, H264", "audio, recvonly, PCMA"]
    );
    let s = setups(&cam);
    assert_eq!(s[0].0, "rtsp://127.0.0.1:554/camera/trackID=3");
    assert_eq!(s[1].0, "rtsp://127.0.0.1:554/camera/trackID=4");
    for (_, t, _) in &s {
        assert!(t.starts_with("RTP/AVP;unicast;client_port="), "{t}");
        let ports = t.rsplit('=').next().unwrap();
        let (a, b) = ports.split_once('-').unwrap();
        let (a, b): (u16, u16) = (a.parse().unwrap(), b.parse().unwrap());
        assert!(a % 2 == 0 && b == a + 1, "{t}");
    }
    assert_eq!(s[1].2.as_deref(), Some("231970"));
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("231970"));
    // The `#...` part never reaches the camera.
    assert!(cam.requests().iter().all(|r| !r.uri.contains('#')));
}

#[tokio::test]
async fn luckfox_and_macrovideo_no_content_base() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("macrovideo_describe.txt")),
        Step::Reply("SETUP", capture("luckfox_rkipc_setup_tcp.txt")),
        Step::Reply("PLAY", b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: 12345678\r\n\r\n".to_vec()),
    ])
    .await;
    let url = cam.url("live/0");
    play_session(&cam, &url).await;
    let s = setups(&cam);
    // No Content-Base: the request URL is the base.
    assert_eq!(s[0].0, format!("{url}/track1"));
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("12345678"));
}

#[tokio::test]
async fn missing_content_type_and_ssrc_with_space() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("missing_content_type_describe.txt")),
        Step::Reply("SETUP", capture("hikvision_setup_ssrc_space.txt")),
        Step::Reply("SETUP", capture("hikvision_setup_ssrc_space.txt")),
        Step::Reply("PLAY", OK.to_vec()),
    ])
    .await;
    let url = cam.url("stream");
    let medias = play_session(&cam, &format!("{url}#media=video")).await;
    assert_eq!(medias.len(), 1, "#media=video keeps only video");
    let s = setups(&cam);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].0, format!("{url}/streamid=0"));
    assert_eq!(s[0].2.as_deref(), Some("l0TtlUFSR"));
    assert_eq!(session_of(&cam, "PLAY").as_deref(), Some("708886412"));
}

#[tokio::test]
async fn digest_auth_retry_with_percent_decoded_password() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", capture("longse_unauthorized.txt")),
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("bunny_describe.txt")),
    ])
    .await;
    let url = format!("rtsp://admin:p%40ss@127.0.0.1:{}/x#backchannel=0", cam.port);
    source(&url).describe().await.unwrap();
    let reqs = cam.requests();
    assert!(reqs[0].headers.get("Authorization").is_none());
    let auth = reqs[1].headers.get("Authorization").unwrap().to_string();
    assert!(auth.starts_with("Digest username=\"admin\", realm=\"Surveillance Server\", nonce=\"98481030\""), "{auth}");
    let ha1 = md5_hex("admin:Surveillance Server:p@ss");
    let ha2 = md5_hex(&format!("OPTIONS:{}", reqs[1].uri));
    let expected = md5_hex(&format!("{ha1}:98481030:{ha2}"));
    assert!(auth.contains(&format!("response=\"{expected}\"")), "{auth}");
    // Later requests answer the same challenge; no Require with #backchannel=0.
    assert!(reqs[2].headers.get("Authorization").is_some());
    assert!(reqs[2].headers.get("Require").is_none());
}

fn md5_hex(s: &str) -> String {
    use md5::{Digest, Md5};
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn wrong_password_is_a_masked_401() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", capture("longse_unauthorized.txt")),
        Step::Reply("OPTIONS", capture("longse_unauthorized.txt")),
    ])
    .await;
    let e = source(&format!("rtsp://admin:hunter2@127.0.0.1:{}/x", cam.port)).describe().await.unwrap_err();
    assert!(e.contains("401 Unauthorized: wrong username or password"), "{e}");
    assert_eq!(e.kind(), SourceErrorKind::Auth, "{e}");
    assert!(e.contains("OPTIONS"), "{e}");
    assert!(e.contains("admin:***@") && !e.contains("hunter2"), "{e}");
}

#[tokio::test]
async fn backchannel_refused_falls_back_to_plain_describe() {
    for refusal in [
        Step::Reply("DESCRIBE", b"RTSP/1.0 551 Option not supported\r\nCSeq: 0\r\n\r\n".to_vec()),
        Step::Close("DESCRIBE"),
    ] {
        let cam = FakeCamera::start(vec![
            Step::Reply("OPTIONS", OK.to_vec()),
            refusal,
            // After a close, the client reconnects and DESCRIBEs at once.
            Step::Reply("DESCRIBE", capture("dahua_describe_h265_pcma.txt")),
        ])
        .await;
        let medias = source(&cam.url("x")).describe().await.unwrap();
        assert_eq!(medias.len(), 2);
        let d: Vec<Request> = cam.requests().into_iter().filter(|r| r.method.as_str() == "DESCRIBE").collect();
        assert_eq!(d.len(), 2);
        assert!(d[0].headers.get("Require").is_some());
        assert!(d[1].headers.get("Require").is_none());
    }
}

const BACKCHANNEL_SDP: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=cam\r\nt=0 0\r\na=control:*\r\n\
m=audio 0 RTP/AVP 8\r\na=control:trackID=0\r\na=rtpmap:8 PCMA/8000\r\na=recvonly\r\n\
m=audio 0 RTP/AVP 0\r\na=control:trackID=1\r\na=rtpmap:0 PCMU/8000\r\na=sendonly\r\n";

fn rtp(pt: u8, seq: u16, ts: u32, payload: &[u8]) -> Vec<u8> {
    let mut h = [0u8; 12];
    rtp::packet::write_header(&mut h, true, pt, seq, ts, 0x1234);
    let mut v = h.to_vec();
    v.extend_from_slice(payload);
    v
}

#[tokio::test]
async fn frames_in_and_backchannel_out() {
    let describe = format!(
        "RTSP/1.0 200 OK\r\nCSeq: 0\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{BACKCHANNEL_SDP}",
        BACKCHANNEL_SDP.len()
    );
    let setup = |ch: &str| {
        format!("RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: abc;timeout=60\r\nTransport: RTP/AVP/TCP;unicast;interleaved={ch}\r\n\r\n").into_bytes()
    };
    let frames = (0..5u16).map(|i| (0u8, rtp(8, 100 + i, 160 * u32::from(i), &[0xd5; 160]))).collect();
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", describe.into_bytes()),
        Step::Reply("SETUP", setup("0-1")),
        Step::Reply("SETUP", setup("2-3")),
        Step::ReplyThen("PLAY", b"RTSP/1.0 200 OK\r\nCSeq: 0\r\nSession: abc\r\n\r\n".to_vec(), frames),
    ])
    .await;
    let src = source(&cam.url("x"));
    let Opened { medias, parked } = src.open().await.unwrap();
    assert_eq!(
        medias.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
        ["audio, recvonly, PCMA", "audio, sendonly, PCMU"]
    );
    assert_eq!(medias[1].direction, Direction::SendOnly);
    let tracks = tracks_for(&medias);
    let mut reader = TrackReader::new(tracks[0].clone(), "test", 16, false);
    let stop = CancellationToken::new();
    let run = tokio::spawn(src.clone().run_opened(parked, tracks.clone(), stop.clone()));
    let mut stamps = Vec::new();
    for _ in 0..5 {
        let f = tokio::time::timeout(Duration::from_secs(30), reader.recv()).await.expect("frame").unwrap();
        assert_eq!(f.payload.len(), 160);
        stamps.push(f.timestamp);
    }
    assert!(stamps.windows(2).all(|w| w[1].wrapping_sub(w[0]) == 160), "{stamps:?}");
    // Two-way audio: a frame pushed into the sendonly track reaches the camera as RTP, PT 0, channel 2.
    tracks[1].push(Frame { timestamp: 0, keyframe: true, payload: Bytes::from_static(&[0xff; 160]), rtp: Vec::new() });
    tracks[1].push(Frame {
        timestamp: 160,
        keyframe: true,
        payload: Bytes::new(),
        rtp: vec![RtpPacket {
            marker: false,
            payload_type: 96,
            sequence: 9,
            timestamp: 160,
            ssrc: 1,
            payload: Bytes::from_static(&[0x7f; 80]),
        }],
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while cam.seen.lock().unwrap().interleaved.iter().filter(|(ch, _)| *ch == 2).count() < 2 {
        assert!(Instant::now() < deadline, "no backchannel RTP");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let sent: Vec<RtpPacket> = cam
        .seen
        .lock()
        .unwrap()
        .interleaved
        .iter()
        .filter(|(ch, _)| *ch == 2)
        .map(|(_, p)| rtp::packet::parse_bytes(p.clone()).unwrap())
        .collect();
    assert!(sent.iter().all(|p| p.payload_type == 0));
    assert_eq!(sent[0].payload.len(), 160);
    assert_eq!(sent[1].payload.len(), 80);
    assert_eq!(sent[1].sequence, sent[0].sequence.wrapping_add(1));
    stop.cancel();
    assert!(run.await.unwrap().is_ok());
}

#[tokio::test]
async fn errors_name_the_step() {
    // Refused port.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = source(&format!("rtsp://u:pw@127.0.0.1:{port}/x")).describe().await.unwrap_err();
    assert_eq!(e.kind(), SourceErrorKind::Network, "{e}");
    let e = e.to_string();
    assert!(e.starts_with(&format!("rtsp://u:***@127.0.0.1:{port}/x: connect: ")), "{e}");
    assert!(e.to_lowercase().contains("refused"), "{e}");
    // Unknown host.
    let e = source("rtsp://admin:pw@no-such-camera.invalid/x").describe().await.unwrap_err();
    assert!(e.contains("connect") && !e.contains("pw@"), "{e}");
    // Garbage and empty SDP.
    for (body, want) in [("hello world", "bad SDP"), ("", "empty SDP")] {
        let reply = format!("RTSP/1.0 200 OK\r\nCSeq: 0\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        let cam =
            FakeCamera::start(vec![Step::Reply("OPTIONS", OK.to_vec()), Step::Reply("DESCRIBE", reply.into_bytes())])
                .await;
        let e = source(&format!("{}#backchannel=0", cam.url("x"))).describe().await.unwrap_err();
        assert!(e.contains("DESCRIBE: ") && e.contains(want), "{e}");
        assert_eq!(e.kind(), SourceErrorKind::Protocol, "{e}");
    }
    // A camera that never answers.
    let cam = FakeCamera::start(vec![]).await;
    let t = Instant::now();
    let e = source(&format!("{}#timeout=1", cam.url("x"))).describe().await.unwrap_err();
    assert!(e.contains("OPTIONS: no response within 1s"), "{e}");
    assert_eq!(e.kind(), SourceErrorKind::Network, "{e}");
    println!("a camera that never answers (#timeout=1): the error after {:?}", t.elapsed());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[tokio::test]
async fn camera_that_stops_sending_is_an_error() {
    let cam = FakeCamera::start(vec![
        Step::Reply("OPTIONS", OK.to_vec()),
        Step::Reply("DESCRIBE", capture("dahua_describe_h265_pcma.txt")),
        Step::Reply("SETUP", capture("dahua_setup.txt")),
        Step::Reply("SETUP", capture("dahua_setup.txt")),
        Step::Reply("PLAY", capture("dahua_play.txt")),
    ])
    .await;
    let src = source(&format!("{}#timeout=1", cam.url("x")));
    let Opened { medias, parked } = src.open().await.unwrap();
    let run = src.clone().run_opened(parked, tracks_for(&medias), CancellationToken::new());
    let r = tokio::time::timeout(Duration::from_secs(30), run).await.expect("run returns");
    let e = r.unwrap_err();
    assert!(e.contains("PLAY: no data from camera for 1s"), "{e}");
    assert_eq!(e.kind(), SourceErrorKind::Network, "{e}");
}

// ---------------------------------------------------------------------------------------------
// Real cameras: GStreamer's RTSP server and ffmpeg.

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn producer(server: &Server, stream: &str) -> serde_json::Value {
    let v = server.http("GET", &format!("/api/streams?src={stream}")).json();
    v["producers"][0].clone()
}

fn wait_producer(
    server: &Server,
    stream: &str,
    timeout: Duration,
    f: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    let ok = wait_until(timeout, || {
        last = producer(server, stream);
        f(&last)
    });
    assert!(ok, "producer never matched: {last}");
    last
}

#[test]
fn gstreamer_camera_tcp_udp_and_auth() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--auth", "digest", "--user", "admin", "--password", "s3cr@t"]);
    let server = Server::start(&format!(
        "streams:\n  cam: rtsp://admin:s3cr%40t@127.0.0.1:{port}/test\n  cam_udp: rtsp://admin:s3cr%40t@127.0.0.1:{port}/test#transport=udp\n  bad: rtsp://admin:badpass@127.0.0.1:{port}/test\n"
    ));
    let probed = ffprobe(&server.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(probed.iter().any(|s| s.codec_type == "audio" && s.codec_name == "pcm_alaw"), "{probed:?}");
    assert!(decode_video_frames(&server.rtsp_url("cam"), "tcp", 30).expect("decode") >= 30);
    assert!(decode_video_frames(&server.rtsp_url("cam_udp"), "tcp", 30).expect("decode over UDP source") >= 30);
    // Wrong password: the API shows a masked 401.
    assert!(ffprobe(&server.rtsp_url("bad"), "tcp").is_err());
    let p = wait_producer(&server, "bad", Duration::from_secs(30), |p| p["last_error"].is_string());
    let e = p["last_error"].as_str().unwrap();
    assert!(e.contains("401") && e.contains("admin:***@") && !e.contains("badpass"), "{e}");
    assert_eq!(p["last_error_kind"], "auth", "{p}");
}

#[test]
fn gstreamer_onvif_backchannel_is_offered() {
    let port = free_port();
    let dir = temp_dir("bc");
    let out = dir.join("backchannel.ulaw");
    let _cam = GstCamera::start(port, &["--backchannel", out.to_str().unwrap()]);
    let server = Server::start(&format!("streams:\n  cam: rtsp://127.0.0.1:{port}/test\n"));
    let probed = ffprobe(&server.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", server.log()));
    assert!(probed.iter().any(|s| s.codec_type == "video"), "{probed:?}");
    let p = wait_producer(&server, "cam", Duration::from_secs(30), |p| p["medias"].is_array());
    let medias: Vec<&str> = p["medias"].as_array().unwrap().iter().filter_map(|m| m.as_str()).collect();
    assert!(medias.contains(&"audio, sendonly, PCMU"), "{medias:?}");
    assert!(medias.contains(&"video, recvonly, H264"), "{medias:?}");
    // Two-way audio into the camera's ONVIF backchannel: a file transcoded to PCMU by ffmpeg.
    let wav = dir.join("tone.wav");
    let ok = Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-f", "lavfi", "-i", "sine=frequency=500:sample_rate=8000:duration=30"])
        .arg(&wav)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let r =
        server.http("POST", &format!("/api/streams?dst=cam&src=ffmpeg:{}%23audio=pcmu%23input=file", wav.display()));
    assert_eq!(r.status, 200, "{}", r.text());
    let size = || std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
    assert!(
        wait_until(Duration::from_secs(30), || size() >= 4000),
        "camera received {} bytes\n{}",
        size(),
        server.log()
    );
    assert_eq!(server.http("POST", "/api/streams?dst=cam&src=").status, 200);
    let _ = std::fs::remove_dir_all(dir);
}

/// The camera is down when the first reader asks: the reader waits while the source is retried, and
/// plays as soon as the camera comes up.
#[test]
fn cold_start_with_the_camera_down_at_first() {
    let port = free_port();
    let server = Server::start(&format!("streams:\n  cam: rtsp://127.0.0.1:{port}/test\n"));
    let url = server.rtsp_url("cam");
    let reader = std::thread::spawn(move || decode_video_frames(&url, "tcp", 25));
    let p = wait_producer(&server, "cam", Duration::from_secs(30), |p| p["state"] == "retrying");
    assert!(p["last_error"].as_str().unwrap_or("").contains("refused"), "{p}");
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    assert_eq!(reader.join().unwrap().expect("reader played after the camera came up"), 25);
}

/// go2rtc's multi-source example: video from the camera, Opus audio from an ffmpeg source that
/// transcodes the same stream's AAC.
#[test]
fn multi_source_stream_takes_video_and_audio_from_different_sources() {
    let server = Server::start("streams:\n  cam:\n    - demo:clip\n    - ffmpeg:cam#audio=opus\n");
    let probed = ffprobe(&server.rtsp_url("cam?video=h264&audio=opus"), "tcp")
        .unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", server.log()));
    let names: Vec<&str> = probed.iter().map(|s| s.codec_name.as_str()).collect();
    assert_eq!(names, ["h264", "opus"], "{probed:?}");
    let info = server.http("GET", "/api/streams?src=cam").json();
    assert_eq!(info["producers"][1]["state"], "online", "{info}");
}

/// ffmpeg's RTSP muxer cannot listen (`-rtsp_flags listen` is demuxer-only), so ffmpeg cannot play a
/// camera here; instead a second camrelay pulls the first one's demo stream over `rtsp://` and ffmpeg
/// decodes from the second.
#[test]
fn camrelay_pulls_camrelay() {
    let upstream = Server::start("");
    let downstream = Server::start(&format!("streams:\n  relay: {}\n", upstream.rtsp_url("demo")));
    let probed =
        ffprobe(&downstream.rtsp_url("relay"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", downstream.log()));
    assert!(probed.iter().any(|s| s.codec_name == "h264" && s.width == 640 && s.height == 360), "{probed:?}");
    assert!(probed.iter().any(|s| s.codec_name == "aac"), "{probed:?}");
    assert!(decode_video_frames(&downstream.rtsp_url("relay"), "tcp", 25).expect("decode") >= 25);
}

#[test]
fn camera_restart_resumes_the_same_reader() {
    let port = free_port();
    let cam = GstCamera::start(port, &["--audio", "none"]);
    let server = Server::start(&format!("streams:\n  cam: rtsp://127.0.0.1:{port}/test#timeout=3\n"));
    // A reader that stays connected: ffmpeg decoding to framecrc for a long time.
    let mut reader = Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-rtsp_transport",
            "tcp",
            "-i",
            &server.rtsp_url("cam"),
            "-map",
            "0:v:0",
            "-f",
            "framecrc",
            "-",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg reader");
    let stdout = reader.stdout.take().unwrap();
    struct Kill(Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _reader = Kill(reader);
    let frames = Arc::new(Mutex::new(0usize));
    let frames2 = frames.clone();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if !l.starts_with('#') {
                *frames2.lock().unwrap() += 1;
            }
        }
    });
    assert!(wait_until(Duration::from_secs(30), || *frames.lock().unwrap() >= 25), "reader got no frames");
    drop(cam);
    let p = wait_producer(&server, "cam", Duration::from_secs(15), |p| p["state"] == "retrying");
    assert!(p["last_error"].is_string(), "{p}");
    let before = *frames.lock().unwrap();
    let t = Instant::now();
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    assert!(
        wait_until(Duration::from_secs(30), || *frames.lock().unwrap() >= before + 25),
        "the reader got no frames after the camera came back; producer: {}",
        producer(&server, "cam")
    );
    eprintln!("frames resumed {:?} after the camera restarted", t.elapsed());
}

/// RTSPS against GStreamer's RTSP server with a self-signed certificate: `rtspx://` (no certificate
/// check, as go2rtc) plays; `rtsps://` refuses the unknown issuer with a clear error.
#[test]
fn gstreamer_camera_over_tls() {
    let dir = temp_dir("tls");
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-keyout"])
        .arg(&key)
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-out"])
        .arg(&cert)
        .stderr(Stdio::null())
        .status()
        .expect("openssl (apt package openssl)");
    assert!(status.success());
    let pem = dir.join("camera.pem");
    let mut both = std::fs::read(&cert).unwrap();
    both.extend(std::fs::read(&key).unwrap());
    std::fs::write(&pem, both).unwrap();

    let port = free_port();
    let _cam = GstCamera::start(port, &["--tls", pem.to_str().unwrap(), "--audio", "none"]);
    let server = Server::start(&format!(
        "streams:\n  cam: rtspx://127.0.0.1:{port}/test\n  strict: rtsps://127.0.0.1:{port}/test\n"
    ));
    let probed = ffprobe(&server.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(decode_video_frames(&server.rtsp_url("cam"), "tcp", 30).expect("decode") >= 30);

    assert!(ffprobe(&server.rtsp_url("strict"), "tcp").is_err());
    let p = wait_producer(&server, "strict", Duration::from_secs(30), |p| p["last_error"].is_string());
    let e = p["last_error"].as_str().unwrap().to_ascii_lowercase();
    eprintln!("rtsps error: {e}");
    assert!(e.contains("certificate"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// RTSP over WebSocket (`#transport=ws://...`, as Axis' rtsp-over-websocket): the RTSP session runs
/// through websockify (a WebSocket-to-TCP proxy we did not write) in front of GStreamer's RTSP server.
#[test]
fn gstreamer_camera_through_a_websocket_tunnel() {
    let port = free_port();
    let _cam = GstCamera::start(port, &["--audio", "none"]);
    let ws_port = free_port();
    let mut proxy = Command::new("websockify")
        .arg(format!("127.0.0.1:{ws_port}"))
        .arg(format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("websockify (apt package websockify)");
    let proxy_log = lines_of(proxy.stderr.take().unwrap());
    assert!(wait_until(Duration::from_secs(30), || std::net::TcpStream::connect(("127.0.0.1", ws_port)).is_ok()));
    let server =
        Server::start(&format!("streams:\n  cam: rtsp://127.0.0.1:{port}/test#transport=ws://127.0.0.1:{ws_port}/\n"));
    let probed = ffprobe(&server.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\n{}", server.log()));
    let video = probed.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(decode_video_frames(&server.rtsp_url("cam"), "tcp", 30).expect("decode") >= 30);
    let _ = proxy.kill();
    let _ = proxy.wait();
    let log: Vec<String> = proxy_log.try_iter().collect();
    assert!(
        log.iter().any(|l| l.contains(&format!("connecting to: 127.0.0.1:{port}"))),
        "the tunnel carried the session: {log:?}"
    );
}
