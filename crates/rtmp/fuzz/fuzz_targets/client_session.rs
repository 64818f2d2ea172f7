#![no_main]
//! Drives the RTMP client session (play or publish) with arbitrary server bytes. The first byte picks
//! the mode, the handshake (plain or digest), a prelude (a valid S0S1S2 for the client's C1, then the
//! `_result`s of connect and createStream, so the fuzzer starts deep in the session), and how the rest
//! is split into reads. Besides "never panics": nothing follows `Error` or `Closed`, the output stays
//! bounded, no deadline lies before the start, and after EOF the session is over.
use libfuzzer_sys::fuzz_target;
use rtmp::handshake::{self, Filler};
use rtmp::{
    message as msg, Amf0Value, ChunkWriter, ClientConfig, ClientEvent, ClientMode, MediaKind, RtmpClientSession,
    RtmpUrl,
};
use std::time::{Duration, Instant};

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let now = Instant::now();
    let play = mode & 1 == 0;
    let url = RtmpUrl::parse("rtmp://127.0.0.1/live/cam?user=a&pass=b").unwrap();
    let mut config = ClientConfig::new(if play { ClientMode::Play } else { ClientMode::Publish }, &url);
    config.digest_handshake = mode & 2 != 0;
    config.max_pending_output = 1 << 16;
    let mut c = RtmpClientSession::new(config, now);
    let c0c1 = c.poll_transmit().unwrap();
    let mut input = Vec::new();
    if mode & 4 != 0 {
        input.extend(handshake::server_response(&c0c1, 0, &mut Filler::new(2)).unwrap());
        let mut b = bytes::BytesMut::new();
        let w = ChunkWriter::new();
        let ok = msg::status("status", "NetConnection.Connect.Success", "ok");
        msg::write_command(&w, &mut b, 0, "_result", 1.0, &[Amf0Value::Null, ok]);
        msg::write_command(&w, &mut b, 0, "_result", 4.0, &[Amf0Value::Null, Amf0Value::Number(1.0)]);
        input.extend_from_slice(&b);
    }
    input.extend_from_slice(rest);
    let step = usize::from(mode >> 3) + 1;
    let mut ended = false;
    let mut t = now;
    for piece in input.chunks(step * 97) {
        t += Duration::from_millis(10);
        if let Some(deadline) = c.poll_timeout() {
            assert!(deadline >= now);
        }
        c.handle_input(t, piece);
        while let Some(out) = c.poll_transmit() {
            assert!(out.len() < (1 << 16) + (1 << 20), "output {}", out.len());
        }
        while let Some(e) = c.poll_event() {
            assert!(!ended, "event after the end: {e:?}");
            match e {
                ClientEvent::Closed { .. } | ClientEvent::Error(_) => ended = true,
                ClientEvent::Media { payload, .. } => assert!(payload.len() <= rtmp::chunk::MAX_MESSAGE_LEN as usize),
                _ => {}
            }
        }
        if c.is_publishing() {
            let _ = c.send_media(MediaKind::Video, 1, piece);
        }
        if mode & 0x80 != 0 && c.is_playing() {
            c.close();
        }
    }
    c.handle_timeout(t + Duration::from_secs(60));
    c.handle_eof();
    assert!(c.is_ended());
});
