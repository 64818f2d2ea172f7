//! AV1 (AOM "RTP Payload Format for AV1" §4): an aggregation header `Z|Y|W W|N|-|-|-`, then OBU elements,
//! each with a LEB128 length except the last when `W` > 0. `Z`: the first element continues an OBU of
//! the previous packet; `Y`: the last one goes on in the next packet; `N`: a new coded video sequence.
//!
//! Out come temporal units in the frame format (OBUs with size fields, no temporal delimiters). A key
//! frame without its sequence header gets the latest one in front, so every keyframe decodes alone.

use super::{push_reassembled, Depacketizer, FrameUnit, Reassembler};
use crate::obu::{self, Obu};
use crate::RtpError;
use bytes::{Bytes, BytesMut};
use media::{Frame, RtpPacket};

const CODEC: &str = "AV1";

#[derive(Default)]
pub struct Av1Depacketizer {
    /// The temporal unit being built: its OBUs, each with a size field.
    obus: Vec<Bytes>,
    size: usize,
    /// An OBU element split across packets (`Y` then `Z`), as received.
    fragment: Option<BytesMut>,
    /// The latest sequence header OBU (with its size field).
    sequence_header: Option<Bytes>,
    /// The frame being built: its timestamp, packets, loss and size bookkeeping.
    unit: FrameUnit,
}

fn bad(reason: &'static str) -> RtpError {
    RtpError::BadPayload { codec: CODEC, reason }
}

fn lost() -> RtpError {
    RtpError::FragmentLost { codec: CODEC }
}

impl Av1Depacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// One whole OBU element (an OBU, with or without a size field) joins the temporal unit.
    fn add_element(&mut self, element: &[u8]) -> Result<(), RtpError> {
        // A size field shorter than the element: keep what the size field says.
        let (o, _) = obu::parse_obu(element).ok_or_else(|| bad("malformed OBU"))?;
        if o.is_dropped_in_rtp() {
            return Ok(());
        }
        let mut b = BytesMut::with_capacity(o.sized_len());
        o.write_sized(&mut b);
        self.size += b.len();
        self.obus.push(b.freeze());
        Ok(())
    }

    fn depacketize(&mut self, payload: &[u8]) -> Result<(), RtpError> {
        let (&agg, mut rest) = payload.split_first().ok_or_else(|| bad("empty payload"))?;
        let (z, y, w) = (agg & 0x80 != 0, agg & 0x40 != 0, usize::from((agg >> 4) & 0x03));
        let mut result = Ok(());
        let mut index = 0;
        while !rest.is_empty() {
            index += 1;
            let element = if w == 0 || index < w {
                let (len, n) = obu::leb128(rest).ok_or_else(|| bad("bad OBU element length"))?;
                let end = n.checked_add(len).filter(|&e| e <= rest.len()).ok_or_else(|| bad("OBU element past end"))?;
                let e = &rest[n..end];
                rest = &rest[end..];
                e
            } else {
                std::mem::take(&mut rest)
            };
            let last = rest.is_empty();
            let continues = index == 1 && z;
            let mut whole: Option<BytesMut> = None;
            if continues {
                match self.fragment.take() {
                    Some(mut f) => {
                        f.extend_from_slice(element);
                        whole = Some(f);
                    }
                    // Its start was lost: drop the rest of that OBU.
                    None => result = Err(lost()),
                }
            } else {
                if self.fragment.take().is_some() {
                    result = Err(lost());
                }
                whole = Some(BytesMut::from(element));
            }
            let Some(whole) = whole else { continue };
            if last && y {
                self.fragment = Some(whole);
            } else if let Err(e) = self.add_element(&whole) {
                result = Err(e);
            }
        }
        if w > 0 && index != w && index > 0 {
            return Err(bad("OBU count differs from W"));
        }
        result
    }

    fn reset_tu(&mut self) {
        self.unit.started = false;
        self.obus.clear();
        self.unit.packets.clear();
        self.size = 0;
        self.fragment = None;
    }

    /// Ends the temporal unit. One without picture data (a sequence header sent ahead, or nothing left
    /// after a loss) is kept, packets included, and joins the next one.
    fn flush_tu(&mut self, out: &mut Vec<Frame>) {
        self.unit.started = false;
        let parsed = || self.obus.iter().filter_map(|b| obu::parse_obu(b).map(|(o, _)| o));
        if !parsed().any(|o| obu::is_picture_data(o.kind())) {
            return;
        }
        let key = obu::first_frame_is_key(parsed());
        let own_header = self.obus.iter().find(|b| obu::parse_obu(b).is_some_and(|(o, _)| is_sequence_header(&o)));
        if let Some(h) = own_header {
            self.sequence_header = Some(h.clone());
        }
        let mut payload = BytesMut::with_capacity(self.size + self.sequence_header.as_ref().map_or(0, |h| h.len()));
        let inject = key && own_header.is_none();
        if inject {
            if let Some(h) = &self.sequence_header {
                payload.extend_from_slice(h);
            }
        }
        for o in &self.obus {
            payload.extend_from_slice(o);
        }
        self.obus.clear();
        self.size = 0;
        out.push(Frame {
            timestamp: self.unit.timestamp,
            // A decoder starts at a key frame only with a sequence header.
            keyframe: key && self.sequence_header.is_some(),
            payload: payload.freeze(),
            rtp: std::mem::take(&mut self.unit.packets),
        });
    }
}

fn is_sequence_header(o: &Obu) -> bool {
    o.kind() == obu::OBU_SEQUENCE_HEADER
}

impl Reassembler for Av1Depacketizer {
    fn unit(&mut self) -> &mut FrameUnit {
        &mut self.unit
    }

    fn drop_fragment(&mut self) -> bool {
        self.fragment.take().is_some()
    }

    fn pending_bytes(&self) -> usize {
        self.size + self.fragment.as_ref().map_or(0, |b| b.len())
    }

    fn add_payload(&mut self, payload: Bytes) -> Result<(), RtpError> {
        self.depacketize(&payload)
    }

    fn end_frame(&mut self, out: &mut Vec<Frame>) {
        self.flush_tu(out)
    }

    fn reset_frame(&mut self) {
        self.reset_tu()
    }

    fn lost(&self) -> RtpError {
        lost()
    }

    fn codec_name(&self) -> &'static str {
        CODEC
    }
}

impl Depacketizer for Av1Depacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        push_reassembled(self, pkt, out)
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        self.fragment = None;
        self.flush_tu(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_packets_kept, pkt};
    use super::*;

    // OBU headers without size field: sequence header, frame, temporal delimiter.
    const SEQ: &[u8] = &[0x08, 0, 0, 0, 0x24, 0xff];
    const KEY: &[u8] = &[0x30, 0x10, 1, 2, 3];
    const INTER: &[u8] = &[0x30, 0x80 | 0x30, 4, 5];

    fn sized(element: &[u8]) -> Vec<u8> {
        let (o, _) = obu::parse_obu(element).unwrap();
        let mut v = Vec::new();
        o.write_sized(&mut v);
        v
    }

    fn run(d: &mut Av1Depacketizer, input: &[RtpPacket]) -> (Vec<Frame>, Vec<RtpError>) {
        let (mut out, mut errs) = (Vec::new(), Vec::new());
        for p in input {
            if let Err(e) = d.push(p.clone(), &mut out) {
                errs.push(e);
            }
        }
        (out, errs)
    }

    #[test]
    fn aggregated_and_fragmented() {
        let mut d = Av1Depacketizer::new();
        // W=2: the sequence header with its length, the key frame without; N set. A temporal delimiter
        // (W=0, with length) in front is dropped.
        let p1 = [vec![0x08, 2, 0x12, 0, SEQ.len() as u8], SEQ.to_vec(), vec![KEY.len() as u8], KEY.to_vec()].concat();
        let mut first = vec![0x28, SEQ.len() as u8];
        first.extend_from_slice(SEQ);
        first.extend_from_slice(KEY);
        // An inter frame in two fragments: Y, then Z.
        let (a, b) = INTER.split_at(2);
        let input = [
            pkt(1, 0, false, &p1),
            pkt(2, 0, true, &first),
            pkt(3, 3000, false, &[[0x50].as_slice(), a].concat()),
            pkt(4, 3000, true, &[[0x90].as_slice(), b].concat()),
        ];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out.len(), 2);
        // p1 (TD + seq + key) and p2 (seq + key) share a timestamp: one temporal unit.
        assert!(out[0].keyframe);
        assert_eq!(out[0].payload, [sized(SEQ), sized(KEY), sized(SEQ), sized(KEY)].concat());
        assert!(!out[1].keyframe);
        assert_eq!(out[1].payload.as_ref(), sized(INTER));
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn keyframe_gets_the_latest_sequence_header() {
        let mut d = Av1Depacketizer::new();
        let with_seq = [vec![0x20, SEQ.len() as u8], SEQ.to_vec(), KEY.to_vec()].concat();
        let bare_key = [vec![0x10], KEY.to_vec()].concat();
        let input = [pkt(1, 0, true, &with_seq), pkt(2, 3000, true, &bare_key)];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty());
        assert!(out[1].keyframe);
        assert_eq!(out[1].payload.as_ref(), [sized(SEQ), sized(KEY)].concat());
        // A key frame before any sequence header is not a starting point.
        let mut d = Av1Depacketizer::new();
        let (out, _) = run(&mut d, &[pkt(1, 0, true, &bare_key)]);
        assert!(!out[0].keyframe);
    }

    #[test]
    fn loss_and_malformed() {
        let mut d = Av1Depacketizer::new();
        let (a, b) = KEY.split_at(2);
        let input = [
            // Fragment start, then a gap: the fragment is dropped.
            pkt(1, 0, false, &[[0x50].as_slice(), a].concat()),
            pkt(3, 0, true, &[[0x90].as_slice(), b].concat()),
            // Length past the end, forbidden bit, W=3 with two elements.
            pkt(4, 3000, false, &[0x00, 9, 1]),
            pkt(5, 3000, false, &[0x10, 0x80]),
            pkt(6, 3000, false, &[0x30, 1, 0x30]),
            pkt(7, 3000, false, &[]),
            pkt(8, 3000, true, &[0x10, 0x30, 0x80]),
        ];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.len() >= 5, "{errs:?}");
        assert_eq!(out.len(), 1);
        // The element before the W mismatch is kept.
        assert_eq!(out[0].payload.as_ref(), [sized(&[0x30]), sized(&[0x30, 0x80])].concat());
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn oversized_dropped() {
        let mut d = Av1Depacketizer::new();
        let big = [vec![0x50, 0x30], vec![0; 1 << 20]].concat();
        let mut out = Vec::new();
        let mut err = None;
        for i in 0..10 {
            let payload = if i == 0 { big.clone() } else { [vec![0xd0], vec![0; 1 << 20]].concat() };
            if let Err(e) = d.push(pkt(i, 1, false, &payload), &mut out) {
                err = Some(e);
            }
        }
        assert!(matches!(err, Some(RtpError::FrameTooLarge { .. })));
        assert!(out.is_empty());
    }
}
