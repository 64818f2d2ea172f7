//! Hostile RTMP clients: each is ended with a log line naming what was wrong, memory stays bounded, and
//! a real ffmpeg publisher and player keep working meanwhile.
//!
//! - 1000 TCP connections (from 127.0.0.2) that never complete the handshake: 256 are admitted (the
//!   per-IP bound), the rest refused at once, the admitted ones closed at the 10 s handshake deadline.
//! - Broken chunk streams after a good handshake: Set Chunk Size 0 and 2^31, a message longer than the
//!   limit, an unknown AMF0 type, a bad AMF3 value, a stream cut in the middle of a chunk.
//! - A publisher that never sends a keyframe (ffmpeg with its keyframes dropped): ended after 10 s with
//!   the reason, readers see no frame and end.

mod common;

use common::*;
use rtmp::handshake::{self, Filler};
use rtmp::message as msg;
use rtmp::{Amf0Value, ChunkWriter};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

fn publish(url: &str) -> Publisher {
    Publisher::encode("320x240", true, false, &["-t", "120", "-f", "flv", url])
}

fn has_rtmp_producer(srv: &Server, name: &str) -> bool {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    r.status == 200
        && r.json()["producers"]
            .as_array()
            .is_some_and(|p| p.iter().any(|p| p["protocol"] == "rtmp" && p["medias"].is_array()))
}

/// Decodes `frames` video frames over RTMP with ffmpeg; the count decoded.
fn decode_rtmp(url: &str, frames: u32) -> usize {
    decode_frames(&[], url, frames, Duration::from_secs(30)).0
}

/// Whether the server closed `s` (EOF or reset) within `wait`.
fn closed_within(mut s: &TcpStream, wait: Duration) -> bool {
    s.set_read_timeout(Some(wait)).unwrap();
    let mut b = [0u8; 4096];
    loop {
        match s.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

#[test]
fn a_thousand_idle_connections_are_bounded_and_time_out_while_ffmpeg_works() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{addr}/live/cam"));
    assert!(wait_until(Duration::from_secs(30), || has_rtmp_producer(&srv, "cam")), "log:\n{}", srv.log());
    let rss_before = srv.rss_kib();

    // 1000 connections from another loopback address: half say nothing, half send C0 and part of C1.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = Instant::now();
    let socks: Vec<TcpStream> = rt.block_on(async {
        let mut out = Vec::new();
        for i in 0..1000 {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            let mut c = s.connect(addr).await.expect("connect");
            if i % 2 == 1 {
                use tokio::io::AsyncWriteExt;
                let _ = c.write_all(&[3; 700]).await;
            }
            out.push(c.into_std().unwrap());
        }
        out
    });
    for s in &socks {
        s.set_nonblocking(false).unwrap();
    }
    // Over the per-IP bound: refused at once (the server closes them without reading).
    let refused = socks.iter().filter(|s| closed_within(s, Duration::from_millis(20))).count();
    let log = srv.log();
    assert!(
        log.contains("refused: 256 RTMP connections are open from 127.0.0.2"),
        "no refusal naming the bound; log:\n{log}"
    );
    assert!(refused >= 700, "{refused} of 1000 refused at once (256 may stay)");

    // Meanwhile a player from 127.0.0.1 decodes the publisher's stream.
    let n = decode_rtmp(&format!("rtmp://{addr}/live/cam"), 25);
    assert!(n >= 25, "decoded {n} frames while 1000 idle connections were open; log:\n{}", srv.log());
    let rss_during = srv.rss_kib();
    assert!(
        rss_during < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_during} KiB with 256 idle connections"
    );

    // The admitted ones are closed at the handshake deadline (10 s after their accept).
    let all_closed =
        wait_until(Duration::from_secs(25), || socks.iter().all(|s| closed_within(s, Duration::from_millis(1))));
    assert!(all_closed, "idle connections still open after {:?}", started.elapsed());
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "closed before the handshake timeout: {:?}",
        started.elapsed()
    );
    assert!(
        srv.wait_log("handshake and connect not done within 10s", Duration::from_secs(30)),
        "no log line naming the handshake timeout; log:\n{}",
        srv.log()
    );
    drop(socks);
    // Places are free again: a second wave from the same address is admitted (not refused at once).
    let again = {
        let s = rt.block_on(async {
            let s = tokio::net::TcpSocket::new_v4().unwrap();
            s.bind("127.0.0.2:0".parse().unwrap()).unwrap();
            s.connect(addr).await.unwrap().into_std().unwrap()
        });
        s.set_nonblocking(false).unwrap();
        s
    };
    assert!(!closed_within(&again, Duration::from_millis(300)), "a connection after the wave was refused");
    // And the publisher is still there, readable over RTSP.
    assert!(has_rtmp_producer(&srv, "cam"));
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 10).expect("decode rtsp");
    assert!(n >= 10, "decoded {n} frames over RTSP after the wave");
    let rss_after = srv.rss_kib();
    assert!(rss_after < rss_before + 64 * 1024, "RSS {rss_before} KiB → {rss_after} KiB after the wave");
}

/// A client that completed the handshake (plain) and can send chunks.
struct RawClient {
    sock: TcpStream,
    w: ChunkWriter,
}

impl RawClient {
    fn connect(addr: SocketAddr) -> RawClient {
        let mut sock = TcpStream::connect(addr).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(7));
        sock.write_all(&c0c1).unwrap();
        let mut s0s1s2 = vec![0u8; 1 + 2 * handshake::PACKET_SIZE];
        sock.read_exact(&mut s0s1s2).unwrap();
        let c2 = handshake::client_verify(&s0s1s2, None).unwrap();
        sock.write_all(&c2).unwrap();
        RawClient { sock, w: ChunkWriter::new() }
    }

    fn send(&mut self, csid: u32, type_id: u8, payload: &[u8]) {
        let mut out = bytes::BytesMut::new();
        self.w.write(&mut out, csid, 0, type_id, 0, payload);
        let _ = self.sock.write_all(&out);
    }

    fn connect_command(&mut self) {
        let mut out = bytes::BytesMut::new();
        let obj = Amf0Value::object([("app", Amf0Value::string("live"))]);
        msg::write_command(&self.w, &mut out, 0, "connect", 1.0, &[obj]);
        self.sock.write_all(&out).unwrap();
    }
}

#[test]
fn broken_chunk_streams_end_with_a_named_reason_while_ffmpeg_works() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = srv.rtmp_addr();
    let _pusher = publish(&format!("rtmp://{addr}/live/cam"));
    assert!(wait_until(Duration::from_secs(30), || has_rtmp_producer(&srv, "cam")), "log:\n{}", srv.log());

    type Attack = (&'static str, fn(&mut RawClient), &'static str);
    let attacks: [Attack; 6] = [
        ("chunk size 0", |c| c.send(2, msg::SET_CHUNK_SIZE, &0u32.to_be_bytes()), "invalid chunk size 0"),
        (
            "chunk size 2^31",
            |c| c.send(2, msg::SET_CHUNK_SIZE, &0x8000_0000u32.to_be_bytes()),
            "invalid chunk size 2147483648",
        ),
        (
            "message over the limit",
            |c| {
                // A type-0 header announcing a 16 MiB video message.
                let _ = c.sock.write_all(&[0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0]);
            },
            "RTMP message of 16777215 bytes is larger than the limit",
        ),
        (
            "unknown AMF0 type",
            |c| c.send(3, msg::COMMAND_AMF0, &[0x02, 0, 7, b'c', b'o', b'n', b'n', b'e', b'c', b't', 0x0E]),
            "AMF0: unknown or unsupported type marker 0x0e",
        ),
        (
            "bad AMF3 in a type-17 command",
            |c| c.send(3, msg::COMMAND_AMF3, &[0x00, 0x02, 0, 1, b'x', 0x11, 0x0D, 0x01]),
            "AMF3: unsupported type vector-int",
        ),
        (
            "truncated chunk",
            |c| {
                c.connect_command();
                // Half a chunk header, then the connection ends.
                let _ = c.sock.write_all(&[0x03, 0, 0]);
                let _ = c.sock.shutdown(std::net::Shutdown::Write);
            },
            "closed in the middle of a chunk or message",
        ),
    ];
    for (name, attack, want) in attacks {
        let mut c = RawClient::connect(addr);
        attack(&mut c);
        assert!(closed_within(&c.sock, Duration::from_secs(5)), "{name}: the connection stayed open");
        assert!(srv.wait_log(want, Duration::from_secs(30)), "{name}: no log line with {want:?}; log:\n{}", srv.log());
    }
    // The publisher was never disturbed; a player reads it.
    assert!(has_rtmp_producer(&srv, "cam"));
    let n = decode_rtmp(&format!("rtmp://{addr}/live/cam"), 25);
    assert!(n >= 25, "decoded {n} frames after the attacks; log:\n{}", srv.log());
}

#[test]
fn publisher_without_keyframes_is_ended_and_readers_end() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n  nokey:\n");
    let addr = srv.rtmp_addr();
    let _good = publish(&format!("rtmp://{addr}/live/cam"));
    // H.264 whose keyframes are dropped before the FLV muxer: the sequence header, then inter frames only.
    let _bad = Publisher::encode(
        "320x240",
        false,
        false,
        &["-t", "120", "-bsf:v", "noise=drop=key", "-f", "flv", &format!("rtmp://{addr}/live/nokey")],
    );
    assert!(wait_until(Duration::from_secs(30), || has_rtmp_producer(&srv, "nokey")), "log:\n{}", srv.log());
    let rss_before = srv.rss_kib();
    let published = Instant::now();
    // A reader that asks for frames gets none and ends when the publish is ended.
    let reader = std::thread::spawn({
        let url = srv.rtsp_url("nokey");
        move || {
            let started = Instant::now();
            let out = run_with_timeout(
                Command::new("ffmpeg").args([
                    "-v",
                    "error",
                    "-rtsp_transport",
                    "tcp",
                    "-timeout",
                    "20000000",
                    "-i",
                    &url,
                    "-map",
                    "0:v:0",
                    "-frames:v",
                    "1",
                    "-f",
                    "framecrc",
                    "-",
                ]),
                Duration::from_secs(40),
            );
            (out, started.elapsed())
        }
    });
    assert!(
        srv.wait_log("no video keyframe within 10 s", Duration::from_secs(25)),
        "the keyframe-less publish was not ended; log:\n{}",
        srv.log()
    );
    let ended_after = published.elapsed();
    assert!(ended_after >= Duration::from_secs(8), "ended too early: {ended_after:?}");
    assert!(wait_until(Duration::from_secs(30), || !has_rtmp_producer(&srv, "nokey")), "the producer stayed");
    let (out, took) = reader.join().unwrap();
    let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#') && !l.is_empty()).count();
    assert_eq!(frames, 0, "a reader decoded frames of a stream without keyframes");
    assert!(took < Duration::from_secs(38), "the reader hung until killed ({took:?})");
    let rss_after = srv.rss_kib();
    assert!(rss_after < rss_before + 64 * 1024, "RSS {rss_before} KiB → {rss_after} KiB");
    // The other publisher keeps going.
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 10).expect("decode rtsp");
    assert!(n >= 10, "decoded {n} frames of the good publisher");
}
