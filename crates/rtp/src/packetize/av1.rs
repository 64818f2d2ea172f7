//! AV1 → RTP (AOM "RTP Payload Format for AV1"): the temporal unit's OBUs without their size fields,
//! temporal delimiters, tile lists and padding left out, each as an element with a LEB128 length
//! (`W` = 0), as many as fit a packet; an OBU larger than the room left goes on in the next packets
//! (`Y` on the one it continues from, `Z` on the one it continues in). `N` on the first packet of a
//! key frame with its sequence header (a new coded video sequence), the marker bit on the last.

use super::{Base, Packetizer};
use crate::obu::{self, leb128_len, write_leb128};
use bytes::{BufMut, BytesMut};
use media::{Frame, RtpPacket};

pub(super) struct Av1Packetizer {
    pub(super) base: Base,
}

const Z: u8 = 0x80;
const Y: u8 = 0x40;
const N: u8 = 0x08;

impl Packetizer for Av1Packetizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let obus: Vec<obu::Obu> =
            obu::obus(&frame.payload).filter(|o| !o.is_dropped_in_rtp() && o.kind() != obu::OBU_PADDING).collect();
        if obus.is_empty() {
            return;
        }
        let new_sequence =
            obu::first_frame_is_key(obus.iter().copied()) && obus.iter().any(|o| o.kind() == obu::OBU_SEQUENCE_HEADER);
        let max = self.base.max_payload;
        let ts = frame.timestamp;
        let first = out.len();
        let mut packet = BytesMut::with_capacity(max);
        packet.put_u8(if new_sequence { N } else { 0 });
        let mut element = Vec::new();
        for o in &obus {
            element.clear();
            element.reserve(o.unsized_len());
            o.write_unsized(&mut element);
            let mut rest = &element[..];
            while !rest.is_empty() {
                let room = max - packet.len();
                if leb128_len(rest.len()) + rest.len() <= room {
                    write_leb128(&mut packet, rest.len());
                    packet.put_slice(rest);
                    break;
                }
                // Too small a room for a useful piece: start a new packet (a new one always has room).
                if room < 8 && packet.len() > 1 {
                    out.push(self.base.packet(false, ts, std::mem::replace(&mut packet, BytesMut::new()).freeze()));
                    packet = BytesMut::with_capacity(max);
                    packet.put_u8(0);
                    continue;
                }
                let take = room - leb128_len(room);
                write_leb128(&mut packet, take);
                packet.put_slice(&rest[..take]);
                rest = &rest[take..];
                packet[0] |= Y;
                out.push(self.base.packet(false, ts, std::mem::replace(&mut packet, BytesMut::new()).freeze()));
                packet = BytesMut::with_capacity(max);
                packet.put_u8(Z);
            }
        }
        if packet.len() > 1 {
            out.push(self.base.packet(false, ts, packet.freeze()));
        }
        if let Some(last) = out.get_mut(first..).and_then(|p| p.last_mut()) {
            last.marker = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::depacketize::depacketizer_for;
    use crate::packetize::packetizer_with;
    use bytes::Bytes;
    use media::{Codec, Frame};

    fn sized(kind: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![(kind << 3) | 0x02];
        crate::obu::write_leb128(&mut v, payload.len());
        v.extend_from_slice(payload);
        v
    }

    fn body(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn round_trip_with_large_obus() {
        let codec = Codec::new("AV1", 90000, 0, 96);
        let seq = sized(1, &[0, 0, 0, 0x24, 0xff]);
        let td = sized(2, &[]);
        let key = [seq.clone(), sized(6, &[&[0x10][..], &body(5000, 1)].concat()), sized(15, &[0; 3])].concat();
        let inter = [td.clone(), sized(6, &[&[0x30][..], &body(300, 2)].concat())].concat();
        let big_inter = [sized(3, &[0x30, 1]), sized(4, &body(20000, 3)), sized(4, &body(1375, 4))].concat();
        let frames = [
            Frame {
                timestamp: 0,
                keyframe: true,
                payload: Bytes::from([td.clone(), key.clone()].concat()),
                rtp: vec![],
            },
            Frame { timestamp: 3000, keyframe: false, payload: Bytes::from(inter.clone()), rtp: vec![] },
            Frame { timestamp: 6000, keyframe: false, payload: Bytes::from(big_inter.clone()), rtp: vec![] },
        ];
        for mtu in [60, 200, 1200, 1400] {
            let mut p = packetizer_with(&codec, mtu, 1, 65000).unwrap();
            let mut pkts = Vec::new();
            for f in &frames {
                p.packetize(f, &mut pkts);
            }
            assert!(pkts.iter().all(|p| p.payload.len() + 12 <= mtu), "mtu {mtu}");
            assert_eq!(pkts.iter().filter(|p| p.payload[0] & 0x08 != 0).count(), 1);
            let mut d = depacketizer_for(&codec);
            let mut out = Vec::new();
            for pkt in pkts {
                d.push(pkt, &mut out).unwrap();
            }
            assert_eq!(out.len(), 3, "mtu {mtu}");
            // Temporal delimiters and padding do not travel.
            assert_eq!(out[0].payload.as_ref(), &key[..key.len() - 5], "mtu {mtu}");
            assert!(out[0].keyframe && !out[1].keyframe && !out[2].keyframe);
            assert_eq!(out[1].payload.as_ref(), &inter[td.len()..]);
            assert_eq!(out[2].payload.as_ref(), big_inter);
            assert_eq!(out[2].timestamp, 6000);
        }
    }
}
