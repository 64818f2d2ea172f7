#![no_main]
//! Drives the RTMP server session with arbitrary client bytes. The first byte picks a prelude (a valid
//! handshake, optionally a valid connect, so the fuzzer starts deep in the chunk stream), how the rest is
//! split into reads, and whether publish/play are accepted or rejected. Besides "never panics": nothing
//! follows `Error` or `Closed`, the output queue stays bounded, and no timeout lies in the past.
use libfuzzer_sys::fuzz_target;
use rtmp::handshake::{self, Filler};
use rtmp::{message as msg, Amf0Value, ChunkWriter, MediaKind, RtmpServerSession, ServerConfig, ServerEvent};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let now = Instant::now();
    let config = ServerConfig { max_pending_output: 1 << 16, ..ServerConfig::default() };
    let mut s = RtmpServerSession::new(config, now);
    let mut input = Vec::new();
    if mode & 1 != 0 {
        input.extend(handshake::client_hello(0, mode & 2 != 0, &mut Filler::new(1)).0);
        input.extend([0u8; handshake::PACKET_SIZE]);
        if mode & 4 != 0 {
            let mut b = bytes::BytesMut::new();
            let app = Amf0Value::object([("app", Amf0Value::string("live"))]);
            msg::write_command(&ChunkWriter::new(), &mut b, 0, "connect", 1.0, &[app]);
            msg::write_command(&ChunkWriter::new(), &mut b, 0, "createStream", 2.0, &[Amf0Value::Null]);
            input.extend_from_slice(&b);
        }
    }
    input.extend_from_slice(rest);
    let step = usize::from(mode >> 3) + 1;
    let mut ended = false;
    let mut t = now;
    for piece in input.chunks(step * 97) {
        t += Duration::from_millis(10);
        if let Some(deadline) = s.poll_timeout() {
            assert!(deadline >= now);
        }
        s.handle_input(t, piece);
        while let Some(out) = s.poll_transmit() {
            assert!(out.len() < (1 << 16) + (1 << 20), "output {}", out.len());
        }
        while let Some(e) = s.poll_event() {
            assert!(!ended, "event after the end: {e:?}");
            match e {
                ServerEvent::Publish { .. } if mode & 0x40 != 0 => s.reject("no"),
                ServerEvent::Publish { .. } => s.accept_publish(),
                ServerEvent::Play { .. } if mode & 0x40 != 0 => s.reject("no"),
                ServerEvent::Play { .. } => {
                    s.accept_play();
                    let _ = s.send_media(MediaKind::Video, 0, piece);
                }
                ServerEvent::Closed | ServerEvent::Error(_) => ended = true,
                _ => {}
            }
        }
        if s.is_playing() {
            let _ = s.send_media(MediaKind::Audio, 1, &[0xAF, 1]);
        }
    }
    s.handle_timeout(t + Duration::from_secs(60));
    s.handle_eof();
    assert!(s.is_ended());
});
