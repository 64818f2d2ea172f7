//! The SRT server and the `srt://` source with real clients (ffmpeg's libsrt, srt-live-transmit):
//! publish and read, RTSP read-back, passphrases, credentials in the stream id, pulling from an ffmpeg
//! listener, into a listener, and from a second camrelay; hostile datagrams.

mod common;

use common::*;
use std::net::{SocketAddr, UdpSocket};
use std::process::{Command, Stdio};
use std::time::Duration;

/// The SRT listener's address, from its log line (`[srt] listen addr=127.0.0.1:PORT`).
fn srt_addr(srv: &Server) -> SocketAddr {
    let find = || {
        srv.log().lines().find_map(|l| l.split("[srt] listen addr=").nth(1)?.split_whitespace().next()?.parse().ok())
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no srt listener; log:\n{}", srv.log());
    find().unwrap()
}

/// ffmpeg publishing H.264 320x240 (+ AAC) as MPEG-TS to an SRT URL for 60 s.
fn publish(url: &str, audio: bool) -> Publisher {
    Publisher::encode("320x240", audio, false, &["-t", "60", "-f", "mpegts", url])
}

fn producer(srv: &Server, name: &str, protocol: &str) -> Option<serde_json::Value> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return None;
    }
    r.json()["producers"].as_array()?.iter().find(|p| p["protocol"] == protocol && p["medias"].is_array()).cloned()
}

fn wait_publisher(srv: &Server, name: &str) {
    assert!(
        wait_until(Duration::from_secs(30), || producer(srv, name, "srt").is_some()),
        "no srt publisher on {name}; log:\n{}",
        srv.log()
    );
}

fn assert_h264_320x240(streams: &[ProbedStream], audio: bool) {
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    if audio {
        assert!(streams.iter().any(|s| s.codec_type == "audio" && s.codec_name == "aac"), "{streams:?}");
    }
}

fn probe_srt(url: &str) -> Result<Vec<ProbedStream>, String> {
    // ffprobe ignores -rtsp_transport for SRT; the helper passes it anyway.
    ffprobe(url, "tcp")
}

fn decode_srt(url: &str, frames: u32) -> usize {
    decode_frames(&[], url, frames, Duration::from_secs(30)).0
}

#[test]
fn ffmpeg_publishes_and_reads_back_over_srt_and_rtsp() {
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srt_addr(&srv);
    let _pusher = publish(&format!("srt://{addr}?streamid=publish:cam&pkt_size=1316"), true);
    wait_publisher(&srv, "cam");
    let medias = producer(&srv, "cam", "srt").unwrap()["medias"].to_string();
    assert!(medias.contains("H264") && medias.contains("AAC"), "{medias}");

    let url = format!("srt://{addr}?streamid=read:cam");
    let streams = probe_srt(&url).unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
    assert_h264_320x240(&streams, true);
    let n = decode_srt(&url, 50);
    assert!(n >= 50, "decoded {n} frames over SRT; log:\n{}", srv.log());

    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe rtsp");
    assert_h264_320x240(&streams, true);
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 30).expect("decode rtsp");
    assert!(n >= 30, "decoded {n} frames over RTSP");

    // The standard stream id syntax reads the same stream.
    let n = decode_srt(&format!("srt://{addr}?streamid=#!::r=cam,m=request"), 10);
    assert!(n >= 10, "decoded {n} frames with #!::r=cam; log:\n{}", srv.log());

    // An unknown path is refused at the handshake.
    assert!(probe_srt(&format!("srt://{addr}?streamid=read:nothing")).is_err());
    assert!(srv.wait_log("read nothing: stream not found", Duration::from_secs(30)), "{}", srv.log());
}

#[test]
fn srt_live_transmit_publishes_and_reads() {
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\nstreams:\n  slt:\n");
    let addr = srt_addr(&srv);
    // ffmpeg encodes MPEG-TS in real time to a pipe; srt-live-transmit carries it to camrelay.
    let mut encoder = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "60"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-f", "mpegts", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let pipe = encoder.stdout.take().unwrap();
    let mut transmit = Command::new("srt-live-transmit")
        .args(["-a:no", "file://con", &format!("srt://{addr}?streamid=publish:slt")])
        .stdin(pipe)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("srt-live-transmit");
    wait_publisher(&srv, "slt");

    // srt-live-transmit reads it back into a file for 5 s.
    let out = run_with_timeout(
        Command::new("srt-live-transmit").args(["-t:5", &format!("srt://{addr}?streamid=read:slt"), "file://con"]),
        Duration::from_secs(15),
    );
    let file = srv.dir.join("slt.ts");
    std::fs::write(&file, &out.stdout).unwrap();
    assert!(out.stdout.len() > 10_000, "read {} bytes; log:\n{}", out.stdout.len(), srv.log());
    let (n, stderr) = decode_frames(&[], file.to_str().unwrap(), 1000, Duration::from_secs(30));
    assert!(n >= 50, "decoded {n} frames of what srt-live-transmit read: {stderr}");
    let streams = ffprobe(file.to_str().unwrap(), "tcp").unwrap();
    assert_h264_320x240(&streams, false);
    let _ = transmit.kill();
    let _ = encoder.kill();
    let _ = transmit.wait();
    let _ = encoder.wait();
}

#[test]
fn a_passphrase_is_required_and_a_wrong_one_refused() {
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\n  passphrase: correct-horse-42\nstreams:\n  cam:\n");
    let addr = srt_addr(&srv);
    // A publisher with the wrong passphrase is refused at the handshake: ffmpeg gives up.
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"])
            .args([
                "-c:v",
                "libx264",
                "-f",
                "mpegts",
                &format!("srt://{addr}?streamid=publish:cam&passphrase=wrong-horse-99"),
            ]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "a wrong passphrase published");
    assert!(producer(&srv, "cam", "srt").is_none());
    assert!(srv.wait_log("handshake failed", Duration::from_secs(30)), "{}", srv.log());

    // The right one publishes (AES-256: the caller's pbkeylen) and reads back.
    let _pusher = publish(&format!("srt://{addr}?streamid=publish:cam&passphrase=correct-horse-42&pbkeylen=32"), false);
    wait_publisher(&srv, "cam");
    assert!(probe_srt(&format!("srt://{addr}?streamid=read:cam")).is_err(), "read without the passphrase");
    assert!(probe_srt(&format!("srt://{addr}?streamid=read:cam&passphrase=correct-horse-00")).is_err());
    let url = format!("srt://{addr}?streamid=read:cam&passphrase=correct-horse-42");
    assert_h264_320x240(&probe_srt(&url).unwrap(), false);
    assert!(decode_srt(&url, 25) >= 25);
    assert!(!srv.log().contains("correct-horse"), "the passphrase is in the log");
}

#[test]
fn hostile_datagrams_and_handshakes_leave_other_connections_alone() {
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srt_addr(&srv);
    let _pusher = publish(&format!("srt://{addr}?streamid=publish:cam"), false);
    wait_publisher(&srv, "cam");
    // A reader decodes for 12 s while the hostile traffic goes on.
    let reader_url = format!("srt://{addr}?streamid=read:cam");
    let reader = std::thread::spawn(move || decode_frames(&[], &reader_url, 300, Duration::from_secs(40)));
    assert!(srv.wait_log("reader connected", Duration::from_secs(30)), "{}", srv.log());

    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Garbage, truncated headers, a control packet of every type with random bodies, and handshakes
    // with bad versions, lengths and extension blocks.
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for i in 0..3000u32 {
        let len = (rand() % 200) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
        if i % 3 == 0 && p.len() >= 16 {
            // A control packet (high bit), type i % 8, addressed to socket 0 (the listener).
            p[0] = 0x80;
            p[1] = (i % 8) as u8;
            p[12..16].copy_from_slice(&[0, 0, 0, 0]);
        }
        if i % 5 == 0 && p.len() >= 64 {
            // A handshake (type 0) with version 5 and a random extension field.
            p[0] = 0x80;
            p[1] = 0;
            p[16..20].copy_from_slice(&5u32.to_be_bytes());
        }
        let _ = sock.send_to(&p, addr);
    }
    // A caller that encrypts, to a path without a passphrase: refused.
    let out = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            &format!("srt://{addr}?streamid=read:cam&passphrase=some-secret-1"),
        ]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "an encrypting caller read an unencrypted path");

    let (n, stderr) = reader.join().unwrap();
    assert!(n >= 250, "the reader decoded {n} frames during the hostile traffic: {stderr}\nlog:\n{}", srv.log());
    // And new connections are taken.
    assert!(decode_srt(&format!("srt://{addr}?streamid=read:cam"), 10) >= 10, "log:\n{}", srv.log());
}

#[test]
fn credentials_in_the_stream_id_under_mediamtx_users() {
    // MediaMTX's internal users: alice publishes and reads, everyone else nothing.
    let yaml = "srt: yes\nsrtAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\napi: yes\napiAddress: 127.0.0.1:0\n\
        authInternalUsers:\n- user: alice\n  pass: wonderland\n  permissions:\n  - action: publish\n  - action: read\n\
        - user: any\n  ips: ['127.0.0.1']\n  permissions:\n  - action: api\n\
        paths:\n  cam:\n";
    let srv = Server::start(yaml);
    let addr = srt_addr(&srv);
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"])
            .args(["-c:v", "libx264", "-f", "mpegts", &format!("srt://{addr}?streamid=publish:cam:alice:wrong")]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "wrong credentials published");
    assert!(srv.wait_log("may not publish to cam", Duration::from_secs(30)), "{}", srv.log());
    let _pusher = publish(&format!("srt://{addr}?streamid=publish:cam:alice:wonderland:via=srt"), false);
    assert!(srv.wait_log("publisher connected stream=cam", Duration::from_secs(30)), "{}", srv.log());
    // `/v3/srtconns` names the user it authenticated as and the stream id's query, not the password.
    let body = srv.http("GET", "/v3/srtconns/list").json();
    let conn = &body["items"][0];
    assert_eq!((conn["state"].as_str(), conn["path"].as_str()), (Some("publish"), Some("cam")), "{body}");
    assert_eq!((conn["user"].as_str(), conn["query"].as_str()), (Some("alice"), Some("via=srt")), "{body}");
    assert!(!body.to_string().contains("wonderland"), "the password in /v3/srtconns/list: {body}");
    assert!(probe_srt(&format!("srt://{addr}?streamid=read:cam")).is_err(), "read without credentials");
    let url = format!("srt://{addr}?streamid=#!::r=cam,m=request,u=alice,s=wonderland");
    assert_h264_320x240(&probe_srt(&url).unwrap_or_else(|e| panic!("{e}\n{}", srv.log())), false);
    assert!(!srv.log().contains("wonderland"), "a password is in the log");
}

#[test]
fn camrelay_pulls_srt_from_an_ffmpeg_listener_into_a_listener_and_from_another_camrelay() {
    // 1. ffmpeg listens (`-listen`-style `mode=listener`); camrelay calls it.
    let port = free_port();
    let _ffmpeg = publish(&format!("srt://127.0.0.1:{port}?mode=listener"), true);
    // 2. camrelay listens; ffmpeg calls it.
    let in_port = free_port();
    let yaml = format!(
        "srt:\n  listen: 127.0.0.1:0\nstreams:\n  pulled: srt://127.0.0.1:{port}\n  pushed_in: srt://127.0.0.1:{in_port}?mode=listener\n"
    );
    let first = Server::start(&yaml);
    let n =
        decode_video_frames(&first.rtsp_url("pulled"), "tcp", 30).unwrap_or_else(|e| panic!("{e}\n{}", first.log()));
    assert!(n >= 30, "decoded {n} frames of the pulled SRT stream");
    assert_h264_320x240(&ffprobe(&first.rtsp_url("pulled"), "tcp").unwrap(), true);

    // The listener source waits for its caller once a reader wants it.
    let reader = {
        let url = first.rtsp_url("pushed_in");
        std::thread::spawn(move || decode_video_frames(&url, "tcp", 25))
    };
    // The source binds its port when the reader asks for it.
    let bound = wait_until(Duration::from_secs(30), || UdpSocket::bind(("127.0.0.1", in_port)).is_err());
    assert!(bound, "the listener source did not bind; log:\n{}", first.log());
    let _caller = publish(&format!("srt://127.0.0.1:{in_port}"), false);
    let n = reader.join().unwrap().unwrap_or_else(|e| panic!("{e}\n{}", first.log()));
    assert!(n >= 25, "decoded {n} frames of the SRT stream pushed into the listener source");

    // 3. A second camrelay pulls the first one's stream over SRT.
    let addr = srt_addr(&first);
    let second = Server::start(&format!("streams:\n  relay: srt://{addr}?streamid=read:pulled\n"));
    let n =
        decode_video_frames(&second.rtsp_url("relay"), "tcp", 30).unwrap_or_else(|e| panic!("{e}\n{}", second.log()));
    assert!(n >= 30, "decoded {n} frames relayed camrelay to camrelay over SRT");
    assert!(first.wait_log("reader connected stream=pulled", Duration::from_secs(30)), "{}", first.log());
}

#[test]
fn mediamtx_per_path_passphrases() {
    let yaml = "srt: yes\nsrtAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\napi: yes\napiAddress: 127.0.0.1:0\n\
        paths:\n  cam:\n    srtPublishPassphrase: publish-secret-1\n    srtReadPassphrase: read-secret-22\n";
    let srv = Server::start(yaml);
    let addr = srt_addr(&srv);
    // The read passphrase does not publish.
    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-t", "2"])
            .args([
                "-c:v",
                "libx264",
                "-f",
                "mpegts",
                &format!("srt://{addr}?streamid=publish:cam&passphrase=read-secret-22"),
            ]),
        Duration::from_secs(20),
    );
    assert!(!out.status.success(), "published with the read passphrase");
    let _pusher = publish(&format!("srt://{addr}?streamid=publish:cam&passphrase=publish-secret-1"), false);
    assert!(srv.wait_log("publisher connected stream=cam", Duration::from_secs(30)), "{}", srv.log());
    assert!(probe_srt(&format!("srt://{addr}?streamid=read:cam&passphrase=publish-secret-1")).is_err());
    let url = format!("srt://{addr}?streamid=read:cam&passphrase=read-secret-22");
    assert_h264_320x240(&probe_srt(&url).unwrap_or_else(|e| panic!("{e}\n{}", srv.log())), false);
}
