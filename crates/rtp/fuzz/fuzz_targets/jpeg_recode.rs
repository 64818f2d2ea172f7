#![no_main]
use libfuzzer_sys::fuzz_target;

// `media::jpeg::to_standard_huffman` on any bytes (the RTP/JPEG packetizer runs it on JPEGs from
// cameras and pipes): an error or an image, never a panic. A re-coded image is bounded, is a fixed
// point of the re-coder, and when RFC 2435 can describe it, goes through the packetizer and back.
fuzz_target!(|data: &[u8]| {
    let Ok(out) = media::jpeg::to_standard_huffman(data) else { return };
    assert!(out.len() <= media::jpeg::MAX_OUTPUT + data.len() + 1024);
    assert_eq!(media::jpeg::to_standard_huffman(&out).as_deref(), Ok(&out[..]), "re-coding is idempotent");
    if rtp::packetize::jpeg::parse(&out).is_ok() {
        let codec = media::Codec::new("JPEG", 90000, 0, 26);
        let mut packetizer = rtp::packetizer_with(&codec, 1200, 1, 1).expect("JPEG packetizer");
        let frame =
            media::Frame { timestamp: 1, keyframe: true, payload: bytes::Bytes::copy_from_slice(data), rtp: vec![] };
        let mut packets = Vec::new();
        packetizer.packetize(&frame, &mut packets);
        assert!(!packets.is_empty(), "the packetizer sends what the re-coder made sendable");
        let mut d = rtp::depacketizer_for(&codec);
        let mut frames = Vec::new();
        for pkt in packets {
            d.push(pkt, &mut frames).expect("our own packets depacketize");
        }
        assert_eq!(frames.len(), 1);
    }
});
