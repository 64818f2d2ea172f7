#![no_main]
//! Datagrams on a `udp+mpegts://` / `udp+rtp://` socket from several senders: the sender filter, the
//! MPEG-TS continuity count and the RTP receiver (reorder buffer, depacketizers) never panic, and
//! their counts stay consistent (`camrelay::fuzzing::udp_datagrams`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    camrelay::fuzzing::udp_datagrams(data);
});
