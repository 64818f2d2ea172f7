// Shared by the depacketizer targets: turns fuzz input into a packet sequence. Each packet is
// [flags][len][payload...]: flags bit 0 = marker, bit 1 = new timestamp, bit 2 = skip a sequence number.
use bytes::Bytes;
use media::{Codec, Frame, RtpPacket};

pub fn run(codec: &Codec, data: &[u8]) {
    let mut d = rtp::depacketizer_for(codec);
    let mut out: Vec<Frame> = Vec::new();
    let (mut seq, mut ts) = (65530u16, 0u32);
    let mut rest = data;
    let mut packets = 0usize;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (payload, tail) = tail.split_at(n);
        rest = tail;
        if flags & 2 != 0 {
            ts = ts.wrapping_add(3000);
        }
        seq = seq.wrapping_add(if flags & 4 != 0 { 2 } else { 1 });
        let pkt = RtpPacket {
            marker: flags & 1 != 0,
            payload_type: 96,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            payload: Bytes::copy_from_slice(payload),
        };
        let _ = d.push(pkt, &mut out);
        packets += 1;
    }
    d.flush(&mut out);
    let kept: usize = out.iter().map(|f| f.rtp.len()).sum();
    assert!(kept <= packets);
    if codec.name == "AV1" {
        // Temporal units of OBUs with size fields, whole, no temporal delimiters.
        for f in &out {
            let mut it = rtp::obu::obus(&f.payload);
            for o in it.by_ref() {
                assert!(o.header & 0x02 != 0, "OBU without size field");
                assert!(!o.is_dropped_in_rtp(), "temporal delimiter or tile list kept");
            }
            assert!(!it.truncated(), "depacketizer produced malformed OBUs");
        }
    } else if codec.name == "VP9" {
        assert!(out.iter().all(|f| !f.payload.is_empty()), "empty VP9 frame");
    } else if !codec.is_intra_only() {
        for f in &out {
            let mut it = media::h264::avcc_nals(&f.payload);
            for _ in it.by_ref() {}
            assert!(!it.truncated(), "depacketizer produced malformed AVCC");
        }
    }
}
