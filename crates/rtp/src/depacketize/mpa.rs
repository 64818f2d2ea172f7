//! MPEG-1/2 audio (RFC 2250 §3.5, payload type 14 `MPA`): a 4-byte header (16 bits zero, 16 bits
//! fragment offset), then whole frames, or a piece of one frame when it does not fit a packet.

use super::{Depacketizer, MAX_FRAME_BYTES};
use crate::RtpError;
use bytes::{BufMut, Bytes, BytesMut};
use media::{mpa, Frame, RtpPacket};

/// Reassembles MPA packets into frames: the payload of each output frame is one or more whole MPEG
/// audio frames (header included), without the RFC 2250 header.
#[derive(Debug, Default)]
pub struct MpaDepacketizer {
    /// Packets of the frame being reassembled (and packets that gave no frame, riding along).
    packets: Vec<RtpPacket>,
    data: BytesMut,
    /// Bytes the frame being reassembled needs; 0 when none is.
    expected: usize,
    timestamp: u32,
}

impl MpaDepacketizer {
    pub fn new() -> MpaDepacketizer {
        MpaDepacketizer::default()
    }

    fn emit(&mut self, out: &mut Vec<Frame>) {
        let payload: Bytes = self.data.split().freeze();
        self.expected = 0;
        out.push(Frame { timestamp: self.timestamp, keyframe: true, payload, rtp: std::mem::take(&mut self.packets) });
    }

    /// Drops the frame being reassembled (its packets stay, for the next frame).
    fn abandon(&mut self) -> RtpError {
        self.data.clear();
        self.expected = 0;
        RtpError::FragmentLost { codec: "MPA" }
    }
}

impl Depacketizer for MpaDepacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        let p = &pkt.payload;
        if p.len() < 4 {
            self.packets.push(pkt);
            return Err(RtpError::BadPayload { codec: "MPA", reason: "shorter than its 4-byte header" });
        }
        let offset = usize::from(u16::from_be_bytes([p[2], p[3]]));
        let body = p.slice(4..);
        let timestamp = pkt.timestamp;
        let mut result = Ok(());
        if offset == 0 {
            if self.expected > 0 {
                result = Err(self.abandon()); // the previous frame's last fragment never came
            }
            let Some(expected) = mpa::expected_len(&body) else {
                self.packets.push(pkt);
                return result.and(Err(RtpError::BadPayload { codec: "MPA", reason: "no MPEG audio frame header" }));
            };
            if expected > MAX_FRAME_BYTES {
                self.packets.push(pkt);
                return Err(RtpError::FrameTooLarge { codec: "MPA", limit: MAX_FRAME_BYTES });
            }
            self.expected = expected;
            self.timestamp = timestamp;
        } else if self.expected == 0 || offset != self.data.len() || timestamp != self.timestamp {
            self.packets.push(pkt);
            return Err(self.abandon());
        }
        self.data.put_slice(&body);
        self.packets.push(pkt);
        if self.data.len() > self.expected {
            return result.and(Err(self.abandon()));
        }
        if self.data.len() == self.expected {
            self.emit(out);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::tests::{assert_packets_kept, pkt};

    fn frame(fill: u8) -> Vec<u8> {
        let mut f = vec![0xff, 0xfd, 0x84, 0x00];
        f.resize(384, fill);
        f
    }

    fn packet(seq: u16, ts: u32, offset: u16, body: &[u8]) -> RtpPacket {
        let mut p = vec![0, 0];
        p.extend_from_slice(&offset.to_be_bytes());
        p.extend_from_slice(body);
        pkt(seq, ts, false, &p)
    }

    #[test]
    fn whole_and_fragmented_frames() {
        let (a, b) = (frame(1), frame(2));
        let mut two = a.clone();
        two.extend_from_slice(&b);
        let input = vec![
            packet(1, 0, 0, &two),
            packet(2, 2160, 0, &a[..200]),
            packet(3, 2160, 200, &a[200..]),
            // a lost middle fragment: dropped, its packets ride with the next frame
            packet(4, 4320, 0, &b[..100]),
            packet(6, 4320, 300, &b[300..]),
            packet(7, 6480, 0, &b),
        ];
        let mut d = MpaDepacketizer::new();
        let mut out = Vec::new();
        let mut errors = 0;
        for p in input.clone() {
            errors += usize::from(d.push(p, &mut out).is_err());
        }
        assert_eq!(errors, 1);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].payload.as_ref(), two.as_slice());
        assert_eq!((out[1].timestamp, out[1].payload.as_ref()), (2160, a.as_slice()));
        assert_eq!((out[2].timestamp, out[2].payload.as_ref()), (6480, b.as_slice()));
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn garbage_is_an_error() {
        let mut d = MpaDepacketizer::new();
        let mut out = Vec::new();
        assert!(d.push(pkt(1, 0, false, &[0, 0]), &mut out).is_err());
        assert!(d.push(packet(2, 0, 0, &[1, 2, 3, 4, 5]), &mut out).is_err());
        assert!(d.push(packet(3, 0, 9, &[1, 2, 3]), &mut out).is_err());
        assert!(out.is_empty());
    }
}
