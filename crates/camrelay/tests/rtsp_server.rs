//! RTSP server interop with real ffmpeg/ffprobe: the demo stream, publish and read over TCP and UDP,
//! many readers, auth, and bad input.

mod common;

use common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

const PUSH_STREAM: &str = "streams:\n  cam:\n";

#[test]
fn demo_stream_plays_over_tcp_with_video_and_audio() {
    let srv = Server::start("");
    let streams = ffprobe(&srv.rtsp_url("demo"), "tcp").unwrap();
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 640, 360));
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio stream");
    assert_eq!((audio.codec_name.as_str(), audio.sample_rate), ("aac", 48000));
    assert_eq!(decode_video_frames(&srv.rtsp_url("demo"), "tcp", 50).unwrap(), 50);
}

#[test]
fn demo_stream_plays_over_udp() {
    let srv = Server::start("");
    assert_eq!(decode_video_frames(&srv.rtsp_url("demo"), "udp", 50).unwrap(), 50);
    // The reader showed up in the API as a UDP reader while it played; after it left, it is gone.
    let streams = srv.http("GET", "/api/streams?src=demo").json();
    assert!(streams["producers"][0]["url"] == "demo:clip");
}

#[test]
fn query_filters_select_tracks() {
    let srv = Server::start("");
    let v = ffprobe(&srv.rtsp_url("demo?video"), "tcp").unwrap();
    assert_eq!(v.iter().map(|s| s.codec_type.as_str()).collect::<Vec<_>>(), ["video"]);
    let a = ffprobe(&srv.rtsp_url("demo?audio=aac"), "tcp").unwrap();
    assert_eq!(a.iter().map(|s| s.codec_name.as_str()).collect::<Vec<_>>(), ["aac"]);
    // No H.265 in the demo: DESCRIBE fails and the error names both sides.
    assert!(ffprobe(&srv.rtsp_url("demo?video=h265"), "tcp").is_err());
    let reply =
        rtsp_exchange(&srv, &format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", srv.rtsp_url("demo?video=h265")));
    assert!(reply.starts_with("RTSP/1.0 404"), "{reply}");
    assert!(reply.contains("codecs not matched: video:H265 => video:H264, audio:AAC"), "{reply}");
}

#[test]
fn default_query_applies_when_url_has_none() {
    let srv = Server::start("rtsp:\n  default_query: video\n");
    let v = ffprobe(&srv.rtsp_url("demo"), "tcp").unwrap();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].codec_type, "video");
}

fn publish_and_read(transport_in: &str, transport_out: &str) {
    let srv = Server::start(PUSH_STREAM);
    let _publisher = Publisher::start(&srv.rtsp_url("cam"), transport_in, "320x240", true);
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)), "no publisher:\n{}", srv.log());
    let streams = ffprobe(&srv.rtsp_url("cam"), transport_out).unwrap();
    let video = streams.iter().find(|s| s.codec_type == "video").unwrap();
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240));
    assert!(streams.iter().any(|s| s.codec_name == "aac" && s.sample_rate == 48000));
    assert_eq!(decode_video_frames(&srv.rtsp_url("cam"), transport_out, 30).unwrap(), 30);
    let info = srv.http("GET", "/api/streams?src=cam").json();
    let producer = &info["producers"][0];
    assert!(producer["protocol"].as_str().unwrap().starts_with("rtsp+"));
    assert!(producer["medias"].as_array().unwrap().iter().any(|m| m == "video, recvonly, H264"));
}

#[test]
fn publish_tcp_read_tcp() {
    publish_and_read("tcp", "tcp");
}

#[test]
fn publish_udp_read_udp() {
    publish_and_read("udp", "udp");
}

#[test]
fn publish_to_unknown_stream_is_refused_unless_allowed() {
    let srv = Server::start("");
    let out = run_with_timeout(
        std::process::Command::new("ffmpeg").args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=160x120:rate=10",
            "-t",
            "1",
            "-c:v",
            "libx264",
            "-f",
            "rtsp",
            &srv.rtsp_url("nope"),
        ]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success());
    assert!(srv.wait_log("stream not found: nope", Duration::from_secs(30)), "{}", srv.log());

    let srv = Server::start("rtsp:\n  allow_any_publish: true\n");
    let _p = Publisher::start(&srv.rtsp_url("anything"), "tcp", "160x120", false);
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)));
    assert_eq!(decode_video_frames(&srv.rtsp_url("anything"), "tcp", 10).unwrap(), 10);
}

/// A stream that a publisher created (an unknown path under `allow_any_publish`) goes away when the
/// publisher disconnects and no reader is left; a configured stream stays.
#[test]
fn a_stream_created_by_a_publisher_is_removed_when_it_disconnects() {
    let srv = Server::start("rtsp:\n  allow_any_publish: true\nstreams:\n  cam:\n");
    let listed = |name: &str| srv.http("GET", "/api/streams").json().get(name).is_some();
    let publisher = Publisher::start(&srv.rtsp_url("created"), "tcp", "160x120", false);
    let configured = Publisher::start(&srv.rtsp_url("cam"), "tcp", "160x120", false);
    assert!(wait_until(Duration::from_secs(30), || listed("created")), "{}", srv.log());
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)), "{}", srv.log());
    assert_eq!(decode_video_frames(&srv.rtsp_url("created"), "tcp", 5).unwrap(), 5);
    drop(publisher);
    assert!(wait_until(Duration::from_secs(30), || !listed("created")), "still listed:\n{}", srv.log());
    // The log line is read from the server's stdout by another thread: await it.
    assert!(srv.wait_log("stream removed: its publisher created it", Duration::from_secs(30)), "{}", srv.log());
    drop(configured);
    assert!(wait_until(Duration::from_secs(30), || {
        srv.http("GET", "/api/streams?src=cam").json()["producers"].is_null()
    }));
    assert!(listed("cam"), "a configured stream stays");
}

#[test]
fn twenty_concurrent_readers_all_receive_frames() {
    let srv = Server::start("");
    let url = srv.rtsp_url("demo");
    let readers: Vec<_> = (0..20)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || {
                // Packets counted without decoding (-c copy) to keep 20 clients light on 2 cores.
                let out = run_with_timeout(
                    std::process::Command::new("ffmpeg").args([
                        "-v",
                        "error",
                        "-rtsp_transport",
                        "tcp",
                        "-i",
                        &url,
                        "-map",
                        "0:v:0",
                        "-c",
                        "copy",
                        "-frames:v",
                        "50",
                        "-f",
                        "framecrc",
                        "-",
                    ]),
                    Duration::from_secs(40),
                );
                String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count()
            })
        })
        .collect();
    let counts: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    assert!(counts.iter().all(|&n| n == 50), "frames per reader: {counts:?}");
}

#[test]
fn basic_and_digest_auth_with_ffmpeg() {
    for method in ["basic", "digest"] {
        let srv = Server::start(&format!(
            "rtsp:\n  username: admin\n  password: s3cret\n  local_auth: true\n  auth_methods: [{method}]\n"
        ));
        let err = ffprobe(&srv.rtsp_url("demo"), "tcp").unwrap_err();
        assert!(err.contains("401"), "{method}: {err}");
        let bad = format!("rtsp://admin:wrong@{}/demo", srv.rtsp.unwrap());
        assert!(ffprobe(&bad, "tcp").is_err());
        let good = format!("rtsp://admin:s3cret@{}/demo", srv.rtsp.unwrap());
        let streams = ffprobe(&good, "tcp").unwrap_or_else(|e| panic!("{method}: {e}"));
        assert!(streams.iter().any(|s| s.codec_name == "h264"));
        // The password never reaches the logs.
        assert!(!srv.log().contains("s3cret"));
    }
}

#[test]
fn loopback_is_exempt_from_auth_by_default() {
    let srv = Server::start("rtsp:\n  username: admin\n  password: s3cret\n");
    assert!(ffprobe(&srv.rtsp_url("demo"), "tcp").is_ok());
}

/// Sends raw bytes on a new RTSP connection and returns what the server answered.
fn rtsp_exchange(srv: &Server, request: &str) -> String {
    let mut s = TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    read_reply(&mut s)
}

fn read_reply(s: &mut TcpStream) -> String {
    read_reply_keep_rest(s).0
}

/// Reads one reply; also returns the bytes that came after it (interleaved media after PLAY).
fn read_reply_keep_rest(s: &mut TcpStream) -> (String, Vec<u8>) {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&out);
                if let Some(head_end) = text.find("\r\n\r\n") {
                    let len = text[..head_end]
                        .lines()
                        .find_map(|l| l.strip_prefix("Content-Length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                        .unwrap_or(0);
                    if out.len() >= head_end + 4 + len {
                        break;
                    }
                }
            }
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&out).into_owned();
    let end = text
        .find("\r\n\r\n")
        .map(|h| {
            let len = text[..h]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length:").map(|v| v.trim().parse::<usize>().unwrap_or(0)))
                .unwrap_or(0);
            (h + 4 + len).min(out.len())
        })
        .unwrap_or(out.len());
    (String::from_utf8_lossy(&out[..end]).into_owned(), out[end..].to_vec())
}

#[test]
fn bad_requests_get_clear_errors_and_other_readers_go_on() {
    let srv = Server::start("streams:\n  cam:\n  demo: demo:clip\n");
    let url = srv.rtsp_url("demo");
    // A reader that keeps playing while we throw garbage at the server.
    let reader = std::thread::spawn(move || decode_video_frames(&url, "tcp", 100));

    let r = rtsp_exchange(&srv, "OPTIONS * RTSP/1.0\r\n\r\n");
    assert!(r.starts_with("RTSP/1.0 400") && r.contains("CSeq"), "{r}");
    let r = rtsp_exchange(&srv, "\x16\x03\x01garbage garbage\r\n\r\n");
    assert!(r.starts_with("RTSP/1.0 400"), "{r}");
    let huge = format!("OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Big: {}\r\n\r\n", "a".repeat(70_000));
    let r = rtsp_exchange(&srv, &huge);
    assert!(r.starts_with("RTSP/1.0 413") || r.starts_with("RTSP/1.0 400"), "{r}");
    let r = rtsp_exchange(&srv, &format!("RECORD {} RTSP/1.0\r\nCSeq: 2\r\n\r\n", srv.rtsp_url("cam")));
    assert!(r.starts_with("RTSP/1.0 455"), "{r}");
    let sdp = "v=0\r\nm=video\r\n";
    let r = rtsp_exchange(
        &srv,
        &format!(
            "ANNOUNCE {} RTSP/1.0\r\nCSeq: 3\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            srv.rtsp_url("cam"),
            sdp.len()
        ),
    );
    assert!(r.starts_with("RTSP/1.0 400") && r.contains("SDP"), "{r}");
    let r = rtsp_exchange(&srv, &format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 4\r\n\r\n", srv.rtsp_url("missing")));
    assert!(r.starts_with("RTSP/1.0 404") && r.contains("stream not found: missing"), "{r}");

    // SETUP of a track that does not exist, then interleaved data on a channel nobody set up.
    let mut s = TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("DESCRIBE {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", srv.rtsp_url("demo")).as_bytes()).unwrap();
    assert!(read_reply(&mut s).starts_with("RTSP/1.0 200"));
    s.write_all(
        format!(
            "SETUP {}/trackID=7 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n",
            srv.rtsp_url("demo")
        )
        .as_bytes(),
    )
    .unwrap();
    let r = read_reply(&mut s);
    assert!(r.starts_with("RTSP/1.0 404") && r.contains("no track 7"), "{r}");
    s.write_all(b"$\x09\x00\x04abcd").unwrap();
    s.write_all(b"OPTIONS * RTSP/1.0\r\nCSeq: 3\r\n\r\n").unwrap();
    assert!(read_reply(&mut s).starts_with("RTSP/1.0 200"));

    assert_eq!(reader.join().unwrap().unwrap(), 100);
}

#[test]
fn stalled_reader_drops_frames_without_slowing_others() {
    let srv = Server::start("hub:\n  reader_queue: 16\nstreams:\n  noise:\n");
    let _publisher = NoisePublisher::start(&srv.rtsp_url("noise"));
    assert!(srv.wait_log("publisher recording", Duration::from_secs(30)), "{}", srv.log());
    let url = srv.rtsp_url("noise");
    let mut stalled = TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    stalled.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    stalled.write_all(format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes()).unwrap();
    assert!(read_reply(&mut stalled).starts_with("RTSP/1.0 200"));
    stalled
        .write_all(
            format!(
                "SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"
            )
            .as_bytes(),
        )
        .unwrap();
    let setup = read_reply(&mut stalled);
    let session =
        setup.lines().find_map(|l| l.strip_prefix("Session: ")).unwrap().split(';').next().unwrap().to_string();
    // PLAY, and from now on never read.
    stalled.write_all(format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes()).unwrap();
    let dropped = || {
        let info = srv.http("GET", "/api/streams?src=noise").json();
        info["consumers"]
            .as_array()
            .map(|c| c.iter().map(|r| r["dropped"].as_u64().unwrap_or(0)).max().unwrap_or(0))
            .unwrap_or(0)
    };
    assert!(wait_until(Duration::from_secs(30), || dropped() > 0), "the stalled reader's drops are counted in the API");
    // Meanwhile a normal reader still gets every frame (decoded) in real time.
    let started = std::time::Instant::now();
    assert_eq!(decode_video_frames(&url, "tcp", 75).unwrap(), 75);
    println!("75 frames (3 s) beside a stalled reader took {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(12), "normal reader took {:?}", started.elapsed());
    drop(stalled);
}

struct ChildGuard(std::process::Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sigterm_shuts_down_cleanly_and_readers_are_closed() {
    let mut srv = Server::start("");
    let mut s = TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("OPTIONS {} RTSP/1.0\r\nCSeq: 1\r\n\r\n", srv.rtsp_url("demo")).as_bytes()).unwrap();
    assert!(read_reply(&mut s).starts_with("RTSP/1.0 200"));
    assert_eq!(srv.terminate(), Some(0));
    let mut buf = [0u8; 16];
    assert_eq!(s.read(&mut buf).unwrap_or(0), 0, "connection closed by the server");
}

/// Every codec the issue lists goes publisher → camrelay → reader over RTSP, and an unknown one
/// (G.722) passes through untouched.
#[test]
fn codecs_are_forwarded_rtsp_to_rtsp() {
    let srv = Server::start("rtsp:\n  allow_any_publish: true\n");
    let cases: &[(&str, &[&str], &str, &str)] = &[
        (
            "h265",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25",
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "keyint=25:log-level=none",
            ],
            "video",
            "hevc",
        ),
        (
            "mjpeg",
            &[
                "-f",
                "lavfi",
                "-i",
                "testsrc=size=160x120:rate=25",
                "-c:v",
                "mjpeg",
                "-huffman",
                "default",
                "-pix_fmt",
                "yuvj420p",
                "-q:v",
                "5",
            ],
            "video",
            "mjpeg",
        ),
        ("opus", &["-f", "lavfi", "-i", "sine=sample_rate=48000", "-c:a", "libopus"], "audio", "opus"),
        ("pcma", &["-f", "lavfi", "-i", "sine=sample_rate=8000", "-c:a", "pcm_alaw"], "audio", "pcm_alaw"),
        ("pcmu", &["-f", "lavfi", "-i", "sine=sample_rate=8000", "-c:a", "pcm_mulaw"], "audio", "pcm_mulaw"),
        ("l16", &["-f", "lavfi", "-i", "sine=sample_rate=16000", "-c:a", "pcm_s16be"], "audio", "pcm_s16be"),
        ("aac", &["-f", "lavfi", "-i", "sine=sample_rate=44100", "-c:a", "aac"], "audio", "aac"),
        ("g722", &["-f", "lavfi", "-i", "sine=sample_rate=16000", "-c:a", "g722"], "audio", "adpcm_g722"),
    ];
    let _publishers: Vec<ChildGuard> = cases
        .iter()
        .map(|(name, args, _, _)| {
            std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-re"])
                .args(*args)
                .args(["-t", "60", "-f", "rtsp", "-rtsp_transport", "tcp", &srv.rtsp_url(name)])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .map(ChildGuard)
                .unwrap()
        })
        .collect();
    for (name, _, kind, codec) in cases {
        let query = if *kind == "video" { "video=all" } else { "audio=all" };
        let mut found = None;
        // The publisher may still be connecting: wait for its stream to appear.
        wait_until(Duration::from_secs(30), || srv.http("GET", &format!("/api/streams?src={name}")).status == 200);
        for _ in 0..3 {
            if let Ok(streams) = ffprobe(&srv.rtsp_url(&format!("{name}?{query}")), "tcp") {
                found = streams.into_iter().find(|s| s.codec_type == *kind);
                break;
            }
        }
        let found = found.unwrap_or_else(|| panic!("{name}: no {kind} read back; log:\n{}", srv.log()));
        assert_eq!(found.codec_name, *codec, "{name}");
    }
}

/// Reads one interleaved frame (`$`, channel, length, data) from a raw RTSP connection.
fn read_interleaved(s: &mut impl Read) -> (u8, Vec<u8>) {
    let mut head = [0u8; 4];
    s.read_exact(&mut head).unwrap();
    assert_eq!(head[0], b'$', "interleaved frame expected");
    let mut data = vec![0u8; u16::from_be_bytes([head[2], head[3]]) as usize];
    s.read_exact(&mut data).unwrap();
    (head[1], data)
}

/// What a player relies on at the RTP level: RTP-Info matches the first packet, sequence numbers are
/// continuous, and RTCP sender reports arrive on the RTCP channel.
#[test]
fn play_sends_rtp_matching_rtp_info_and_rtcp_sender_reports() {
    let srv = Server::start("");
    let url = srv.rtsp_url("demo?video");
    let mut s = TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\n\r\n").as_bytes()).unwrap();
    let describe = read_reply(&mut s);
    assert!(describe.contains("m=video 0 RTP/AVP 96") && describe.contains("H264/90000"), "{describe}");
    s.write_all(
        format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=4-5\r\n\r\n")
            .as_bytes(),
    )
    .unwrap();
    let setup = read_reply(&mut s);
    assert!(setup.contains("interleaved=4-5"), "{setup}");
    let session =
        setup.lines().find_map(|l| l.strip_prefix("Session: ")).unwrap().split(';').next().unwrap().to_string();
    s.write_all(format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n").as_bytes()).unwrap();
    let (play, rest) = read_reply_keep_rest(&mut s);
    let mut s = std::io::Cursor::new(rest).chain(s);
    let info = play.lines().find_map(|l| l.strip_prefix("RTP-Info: ")).expect("RTP-Info").to_string();
    let field =
        |name: &str| -> u64 { info.split(';').find_map(|kv| kv.strip_prefix(name)).unwrap().trim().parse().unwrap() };
    let (seq, rtptime) = (field("seq="), field("rtptime="));

    let mut rtp = Vec::new();
    let mut sender_reports = 0;
    while rtp.len() < 60 {
        let (channel, data) = read_interleaved(&mut s);
        match channel {
            4 => rtp.push(data),
            5 => {
                assert_eq!(data[1], 200, "RTCP packet type SR");
                sender_reports += 1;
            }
            other => panic!("data on channel {other}"),
        }
    }
    let seq_of = |p: &[u8]| u16::from_be_bytes([p[2], p[3]]);
    let ts_of = |p: &[u8]| u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    assert_eq!(seq_of(&rtp[0]) as u64, seq, "first packet has RTP-Info's seq");
    assert_eq!(ts_of(&rtp[0]) as u64, rtptime, "first packet has RTP-Info's rtptime");
    for pair in rtp.windows(2) {
        assert_eq!(seq_of(&pair[1]), seq_of(&pair[0]).wrapping_add(1), "continuous sequence numbers");
    }
    assert!(rtp.iter().all(|p| p[0] >> 6 == 2 && p[1] & 0x7f == 96), "RTP v2, payload type 96");
    assert!(sender_reports >= 1, "an RTCP sender report came with the first frame");
}
