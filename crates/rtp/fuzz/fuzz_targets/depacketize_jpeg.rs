#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = media::Codec::new("JPEG", 90000, 0, 26);
    common::run(&codec, data);
    // The same bytes as one whole image through the packetizer's parser, and back when it accepts them.
    if let Ok(p) = rtp::packetize::jpeg::parse(data) {
        assert!(p.scan.len() <= data.len());
        let mut packetizer = rtp::packetizer_with(&codec, 1200, 1, 1).expect("JPEG packetizer");
        let frame =
            media::Frame { timestamp: 1, keyframe: true, payload: bytes::Bytes::copy_from_slice(data), rtp: vec![] };
        let mut packets = Vec::new();
        packetizer.packetize(&frame, &mut packets);
        let mut d = rtp::depacketizer_for(&codec);
        let mut out = Vec::new();
        for pkt in packets {
            d.push(pkt, &mut out).expect("our own packets depacketize");
        }
        assert_eq!(out.len(), 1);
    }
});
