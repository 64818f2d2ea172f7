#![no_main]
//! MPEG-1/2 audio (RFC 2250, payload type 14) packets in any order and shape: never a panic, and every
//! frame the depacketizer gives is a run of whole MPEG audio frames (their headers' lengths add up).
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = media::Codec::new("MPA", 90000, 0, 14);
    common::run(&codec, data);
    let mut d = rtp::depacketizer_for(&codec);
    let mut out = Vec::new();
    let mut seq = 0u16;
    for chunk in data.chunks(40) {
        seq = seq.wrapping_add(1);
        let pkt = media::RtpPacket {
            marker: false,
            payload_type: 14,
            sequence: seq,
            timestamp: u32::from(chunk.first().copied().unwrap_or(0) & 3) * 2160,
            ssrc: 1,
            payload: bytes::Bytes::copy_from_slice(chunk),
        };
        let _ = d.push(pkt, &mut out);
    }
    for f in &out {
        assert_eq!(media::mpa::expected_len(&f.payload), Some(f.payload.len()), "{:02x?}", &f.payload[..]);
    }
});
