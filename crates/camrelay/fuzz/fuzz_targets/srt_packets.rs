#![no_main]
//! What the SRT listener parses from the network: datagrams through srt-protocol's packet parser
//! (handshakes and their extensions included; a parsed packet serializes and parses back the same),
//! and the caller's stream id through ours (`camrelay::fuzzing::srt_datagram`, `srt_stream_id`). The
//! first byte picks which.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b, rest)) if b & 1 == 1 => {
            if let Ok(text) = std::str::from_utf8(rest) {
                camrelay::fuzzing::srt_stream_id(text);
            }
        }
        Some((_, rest)) => camrelay::fuzzing::srt_datagram(rest),
        None => {}
    }
});
