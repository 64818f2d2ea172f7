//! VP9 → RTP (RFC 9628, non-flexible mode, one layer): each frame (or superframe, as libvpx writes them)
//! is one picture. The descriptor has a 15-bit picture id (`I`, `M`), `P` on inter frames, `B`/`E` on
//! the first/last packet, and on a key frame's first packet the scalability structure (`V`) with its
//! picture size, which WebRTC receivers use to size their decoder.

use super::{Base, Packetizer};
use crate::vp9;
use bytes::{BufMut, BytesMut};
use media::{Frame, RtpPacket};

pub(super) struct Vp9Packetizer {
    pub(super) base: Base,
    pub(super) picture_id: u16,
}

const I: u8 = 0x80;
const P: u8 = 0x40;
const B: u8 = 0x08;
const E: u8 = 0x04;
const V: u8 = 0x02;

impl Packetizer for Vp9Packetizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let data = &frame.payload;
        if data.is_empty() {
            return;
        }
        let header = vp9::frame_header(data);
        let keyframe = header.map_or(frame.keyframe, |h| h.keyframe);
        let size = header.and_then(|h| h.size);
        let picture_id = self.picture_id;
        self.picture_id = (self.picture_id + 1) & 0x7fff;
        let mut at = 0;
        let mut first = true;
        while at < data.len() {
            let mut flags = I | if keyframe { 0 } else { P };
            let mut descriptor = Vec::with_capacity(8);
            if first {
                flags |= B;
            }
            let ss = first && size.is_some();
            if ss {
                flags |= V;
            }
            let descriptor_len = 3 + if ss { 5 } else { 0 };
            let take = (self.base.max_payload - descriptor_len).min(data.len() - at);
            if at + take == data.len() {
                flags |= E;
            }
            descriptor.push(flags);
            descriptor.extend_from_slice(&(0x8000 | picture_id).to_be_bytes());
            if let (true, Some((w, h))) = (ss, size) {
                // N_S = 0 (one spatial layer), Y = 1 (sizes follow), G = 0.
                descriptor.push(0x10);
                descriptor.extend_from_slice(&w.to_be_bytes());
                descriptor.extend_from_slice(&h.to_be_bytes());
            }
            let mut p = BytesMut::with_capacity(descriptor.len() + take);
            p.put_slice(&descriptor);
            p.put_slice(&data[at..at + take]);
            at += take;
            out.push(self.base.packet(at == data.len(), frame.timestamp, p.freeze()));
            first = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::depacketize::depacketizer_for;
    use crate::packetize::packetizer_with;
    use bytes::Bytes;
    use media::{Codec, Frame};

    const KEY_HEAD: &[u8] = &[0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x00];

    #[test]
    fn round_trip_with_large_frames() {
        let codec = Codec::new("VP9", 90000, 0, 98);
        let key: Vec<u8> = KEY_HEAD.iter().copied().chain((0..9000).map(|i| i as u8)).collect();
        let inter: Vec<u8> = [0x86, 0].into_iter().chain((0..500).map(|i| (i * 7) as u8)).collect();
        let frames = [
            Frame { timestamp: 0, keyframe: true, payload: Bytes::from(key.clone()), rtp: vec![] },
            Frame { timestamp: 3000, keyframe: false, payload: Bytes::from(inter.clone()), rtp: vec![] },
        ];
        for mtu in [40, 1200] {
            let mut p = packetizer_with(&codec, mtu, 5, 1).unwrap();
            let mut pkts = Vec::new();
            for f in &frames {
                p.packetize(f, &mut pkts);
            }
            assert!(pkts.iter().all(|p| p.payload.len() + 12 <= mtu && p.payload_type == 98));
            // V with 320x240 on the key frame's first packet only.
            assert_eq!(&pkts[0].payload[..8], &[0x8a, pkts[0].payload[1], pkts[0].payload[2], 0x10, 1, 0x40, 0, 0xf0]);
            assert_eq!(pkts.iter().filter(|p| p.payload[0] & 0x02 != 0).count(), 1);
            assert_eq!(pkts.iter().filter(|p| p.marker).count(), 2);
            let mut d = depacketizer_for(&codec);
            let mut out = Vec::new();
            for pkt in pkts {
                d.push(pkt, &mut out).unwrap();
            }
            assert_eq!(out.len(), 2);
            assert!(out[0].keyframe && !out[1].keyframe);
            assert_eq!(out[0].payload.as_ref(), key);
            assert_eq!(out[1].payload.as_ref(), inter);
        }
    }
}
