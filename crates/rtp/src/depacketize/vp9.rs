//! VP9 (RFC 9628): a payload descriptor `I|P|L|F|B|E|V|Z` with its optional picture id, layer indices,
//! reference differences and scalability structure, then frame data. `B` starts a frame, `E` ends it;
//! a picture (one timestamp, up to the marker bit) may hold one frame per spatial layer.
//!
//! Out comes one frame per picture: its VP9 frame, or its layer frames as one superframe (with an index,
//! VP9 Annex B), as libvpx writes them.

use super::{push_reassembled, Depacketizer, FrameUnit, Reassembler};
use crate::vp9;
use crate::RtpError;
use bytes::Bytes;
use media::{Frame, RtpPacket};

const CODEC: &str = "VP9";
/// Most frames a superframe index describes.
const MAX_LAYER_FRAMES: usize = 8;

#[derive(Default)]
pub struct Vp9Depacketizer {
    /// Whole frames of the picture being built.
    frames: Vec<Vec<u8>>,
    /// The frame being reassembled (after `B`, until `E`).
    partial: Option<Vec<u8>>,
    size: usize,
    /// The frame being built: its timestamp, packets, loss and size bookkeeping.
    unit: FrameUnit,
}

fn bad(reason: &'static str) -> RtpError {
    RtpError::BadPayload { codec: CODEC, reason }
}

fn lost() -> RtpError {
    RtpError::FragmentLost { codec: CODEC }
}

/// The descriptor's `B` and `E` bits and where the frame data starts.
struct Descriptor {
    begin: bool,
    end: bool,
    data_at: usize,
}

fn descriptor(p: &[u8]) -> Result<Descriptor, RtpError> {
    let &b0 = p.first().ok_or_else(|| bad("empty payload"))?;
    let (i, pred, l, f, v) = (b0 & 0x80 != 0, b0 & 0x40 != 0, b0 & 0x20 != 0, b0 & 0x10 != 0, b0 & 0x02 != 0);
    let byte = |at: usize| p.get(at).copied().ok_or_else(|| bad("truncated descriptor"));
    let mut at = 1;
    if i {
        // M: a 15-bit picture id.
        at += if byte(at)? & 0x80 != 0 { 2 } else { 1 };
    }
    if l {
        byte(at)?;
        // TL0PICIDX in non-flexible mode.
        at += if f { 1 } else { 2 };
    }
    if f && pred {
        // Up to three P_DIFF bytes, N set on all but the last.
        for n in 0.. {
            let d = byte(at)?;
            at += 1;
            if d & 0x01 == 0 {
                break;
            }
            if n == 2 {
                return Err(bad("more than 3 reference indices"));
            }
        }
    }
    if v {
        let ss = byte(at)?;
        at += 1;
        let spatial_layers = usize::from(ss >> 5) + 1;
        if ss & 0x10 != 0 {
            at += 4 * spatial_layers;
        }
        if ss & 0x08 != 0 {
            let groups = byte(at)?;
            at += 1;
            for _ in 0..groups {
                let g = byte(at)?;
                at += 1 + usize::from((g >> 2) & 0x03);
            }
        }
    }
    if at > p.len() {
        return Err(bad("truncated descriptor"));
    }
    Ok(Descriptor { begin: b0 & 0x08 != 0, end: b0 & 0x04 != 0, data_at: at })
}

impl Vp9Depacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    fn depacketize(&mut self, payload: &[u8]) -> Result<(), RtpError> {
        let d = descriptor(payload)?;
        let data = &payload[d.data_at..];
        let mut result = Ok(());
        if d.begin {
            if self.partial.take().is_some() {
                result = Err(lost());
            }
            self.partial = Some(Vec::with_capacity(data.len() * 4));
        }
        let Some(partial) = self.partial.as_mut() else {
            // A frame's middle or end without its start.
            return Err(lost());
        };
        partial.extend_from_slice(data);
        self.size += data.len();
        if d.end {
            if let Some(f) = self.partial.take() {
                if self.frames.len() == MAX_LAYER_FRAMES {
                    return Err(bad("more than 8 frames in a picture"));
                }
                if !f.is_empty() {
                    self.frames.push(f);
                }
            }
        }
        result
    }

    fn reset_picture(&mut self) {
        self.unit.started = false;
        self.frames.clear();
        self.partial = None;
        self.unit.packets.clear();
        self.size = 0;
    }

    /// Ends the picture. One with no whole frame (lost start or end) keeps its packets for the next.
    fn flush_picture(&mut self, out: &mut Vec<Frame>) {
        self.unit.started = false;
        self.size = 0;
        let frames = std::mem::take(&mut self.frames);
        let Some(first) = frames.first() else { return };
        let keyframe = vp9::frame_header(first).is_some_and(|h| h.keyframe);
        let payload = if frames.len() == 1 || frames.iter().any(|f| vp9::has_superframe_index(f)) {
            frames.concat()
        } else {
            let sizes: Vec<usize> = frames.iter().map(Vec::len).collect();
            let mut v = frames.concat();
            vp9::put_superframe_index(&mut v, &sizes);
            v
        };
        out.push(Frame {
            timestamp: self.unit.timestamp,
            keyframe,
            payload: Bytes::from(payload),
            rtp: std::mem::take(&mut self.unit.packets),
        });
    }
}

impl Reassembler for Vp9Depacketizer {
    fn unit(&mut self) -> &mut FrameUnit {
        &mut self.unit
    }

    fn drop_fragment(&mut self) -> bool {
        self.partial.take().is_some()
    }

    fn pending_bytes(&self) -> usize {
        self.size + self.partial.as_ref().map_or(0, |b| b.len())
    }

    fn add_payload(&mut self, payload: Bytes) -> Result<(), RtpError> {
        self.depacketize(&payload)
    }

    fn end_frame(&mut self, out: &mut Vec<Frame>) {
        self.flush_picture(out)
    }

    fn reset_frame(&mut self) {
        self.reset_picture()
    }

    fn lost(&self) -> RtpError {
        lost()
    }

    fn codec_name(&self) -> &'static str {
        CODEC
    }
}

impl Depacketizer for Vp9Depacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        push_reassembled(self, pkt, out)
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        self.partial = None;
        self.flush_picture(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_packets_kept, pkt};
    use super::*;

    const KEY: &[u8] = &[0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x00, 1, 2, 3];

    fn run(d: &mut Vp9Depacketizer, input: &[RtpPacket]) -> (Vec<Frame>, Vec<RtpError>) {
        let (mut out, mut errs) = (Vec::new(), Vec::new());
        for p in input {
            if let Err(e) = d.push(p.clone(), &mut out) {
                errs.push(e);
            }
        }
        (out, errs)
    }

    #[test]
    fn descriptor_fields_skipped() {
        let mut d = Vp9Depacketizer::new();
        let (a, b) = KEY.split_at(5);
        // I (15-bit id), B, V with SS: one layer, Y (320x240), G with one group of one reference.
        let first = [&[0x8a, 0x80, 0x01, 0x18, 0x01, 0x40, 0x00, 0xf0, 0x01, 0x04, 0x01][..], a].concat();
        // I (7-bit id), L (non-flexible: TL0PICIDX), E.
        let second = [&[0xa4, 0x01, 0x00, 0x07][..], b].concat();
        // Flexible mode inter frame: I, P, F, B, E with two P_DIFFs.
        let inter = [&[0xdc, 0x02, 0x03, 0x04][..], &[0x86, 0x00, 9][..]].concat();
        let input = [pkt(1, 0, false, &first), pkt(2, 0, true, &second), pkt(3, 3000, true, &inter)];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out.len(), 2);
        assert!(out[0].keyframe);
        assert_eq!(out[0].payload.as_ref(), KEY);
        assert!(!out[1].keyframe);
        assert_eq!(out[1].payload.as_ref(), &[0x86, 0x00, 9]);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn spatial_layers_make_a_superframe() {
        let mut d = Vp9Depacketizer::new();
        let input = [pkt(1, 0, false, &[[0x0c].as_slice(), KEY].concat()), pkt(2, 0, true, &[0x0c, 0x86, 0x00])];
        let (out, _) = run(&mut d, &input);
        assert_eq!(out.len(), 1);
        assert!(out[0].keyframe);
        assert!(vp9::has_superframe_index(&out[0].payload));
        assert!(out[0].payload.starts_with(KEY));
    }

    #[test]
    fn loss_and_malformed() {
        let mut d = Vp9Depacketizer::new();
        let input = [
            pkt(1, 0, false, &[[0x08].as_slice(), KEY].concat()),
            // Gap: the frame is lost; the end without its start too.
            pkt(3, 0, true, &[0x04, 1]),
            pkt(4, 3000, false, &[]),
            pkt(5, 3000, false, &[0x80]),
            pkt(6, 3000, false, &[0x12, 0xff]),
            pkt(7, 3000, true, &[0x0c, 0x86, 0x00]),
        ];
        let (out, errs) = run(&mut d, &input);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload.as_ref(), &[0x86, 0x00]);
        assert_packets_kept(&input, &out);
    }
}
