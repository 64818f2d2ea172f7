//! RTP → [`Frame`]: one depacketizer per payload format.
//!
//! Every input packet ends up in the `rtp` list of exactly one output frame, in input order, so that an
//! RTP-to-RTP path forwarding `frame.rtp` reproduces the input stream. Packets that produce no frame of
//! their own (a lost fragment, parameter sets sent ahead of a picture, an AAC fragment) ride along with
//! the next frame. The only exception is a frame over the size limits: it is dropped with its packets.

mod aac;
mod av1;
pub mod jpeg;
mod mpa;
mod video;
mod vp9;

use crate::RtpError;
use bytes::{BufMut, Bytes, BytesMut};
use media::{codec, Codec, Frame, RtpPacket};

pub use aac::AacDepacketizer;
pub use av1::Av1Depacketizer;
pub use jpeg::JpegDepacketizer;
pub use mpa::MpaDepacketizer;
pub use video::VideoDepacketizer;
pub use vp9::Vp9Depacketizer;

/// Largest frame we reassemble; beyond it the frame is dropped (the network sends us anything).
pub const MAX_FRAME_BYTES: usize = 8 << 20;
/// Most packets one frame may span.
pub const MAX_FRAME_PACKETS: usize = 8192;

pub trait Depacketizer: Send {
    /// Feeds one packet (in sequence order; see [`crate::ReorderBuffer`] for UDP). Complete frames are
    /// appended to `out`. An error says what was dropped; frames already appended are valid and the
    /// depacketizer stays usable.
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError>;

    /// End of stream: emits a frame still waiting for its end (video without a marker bit).
    fn flush(&mut self, _out: &mut Vec<Frame>) {}
}

/// What every depacketizer of frames that span packets and units that may be fragmented across them
/// (H.264/H.265, AV1, VP9) keeps besides the frame's data: its timestamp and the packets that carried
/// it, the last sequence number (a gap inside a fragment loses it), and the timestamp of an oversized
/// frame whose remaining packets are dropped.
#[derive(Default)]
pub(crate) struct FrameUnit {
    pub timestamp: u32,
    /// A packet of the frame was taken.
    pub started: bool,
    pub packets: Vec<RtpPacket>,
    last_seq: Option<u16>,
    discard: Option<u32>,
}

/// The codec-specific half of such a depacketizer; [`push_reassembled`] is the other.
pub(crate) trait Reassembler {
    fn unit(&mut self) -> &mut FrameUnit;
    /// Drops a unit being reassembled from fragments; true if there was one (it is lost).
    fn drop_fragment(&mut self) -> bool;
    /// Bytes of the frame so far, a fragment being reassembled included.
    fn pending_bytes(&self) -> usize;
    /// Adds one packet's payload to the frame.
    fn add_payload(&mut self, payload: Bytes) -> Result<(), RtpError>;
    /// Ends the frame: appended to `out` if it is one.
    fn end_frame(&mut self, out: &mut Vec<Frame>);
    /// Forgets the frame so far, its packets included.
    fn reset_frame(&mut self);
    fn lost(&self) -> RtpError;
    fn codec_name(&self) -> &'static str;
}

/// [`Depacketizer::push`] of a [`Reassembler`]: a new timestamp or the marker bit ends a frame; a
/// sequence gap or a frame ending inside a fragment loses that fragment (an error, the rest is kept);
/// a frame over [`MAX_FRAME_BYTES`]/[`MAX_FRAME_PACKETS`] is dropped with its remaining packets.
pub(crate) fn push_reassembled<R: Reassembler>(
    r: &mut R,
    pkt: RtpPacket,
    out: &mut Vec<Frame>,
) -> Result<(), RtpError> {
    let mut result = Ok(());
    let u = r.unit();
    let gap = u.last_seq.is_some_and(|s| pkt.sequence != s.wrapping_add(1));
    u.last_seq = Some(pkt.sequence);
    if u.started && pkt.timestamp != u.timestamp {
        if r.drop_fragment() {
            result = Err(r.lost());
        }
        r.end_frame(out);
    }
    let u = r.unit();
    if let Some(ts) = u.discard {
        if ts == pkt.timestamp {
            if pkt.marker {
                u.discard = None;
            }
            return result;
        }
        u.discard = None;
    }
    if gap && r.drop_fragment() {
        result = Err(r.lost());
    }
    let u = r.unit();
    u.timestamp = pkt.timestamp;
    u.started = true;
    let marker = pkt.marker;
    let payload = pkt.payload.clone();
    u.packets.push(pkt);
    if let Err(e) = r.add_payload(payload) {
        result = Err(e);
    }
    if r.pending_bytes() > MAX_FRAME_BYTES || r.unit().packets.len() > MAX_FRAME_PACKETS {
        r.reset_frame();
        let u = r.unit();
        u.discard = (!marker).then_some(u.timestamp);
        return Err(RtpError::FrameTooLarge { codec: r.codec_name(), limit: MAX_FRAME_BYTES });
    }
    if marker {
        if r.drop_fragment() {
            result = Err(r.lost());
        }
        r.end_frame(out);
    }
    result
}

/// Codecs whose every RTP packet is one frame.
pub(crate) fn is_packet_per_frame_audio(name: &str) -> bool {
    matches!(
        name,
        codec::OPUS
            | codec::PCMA
            | codec::PCMU
            | codec::L16
            | "L8"
            | "L24"
            | "G722"
            | "G723"
            | "G728"
            | "GSM"
            | "ILBC"
            | "SPEEX"
            | "DVI4"
            | "PCML"
            | "TELEPHONE-EVENT"
    ) || name.starts_with("G726")
        || name.starts_with("G729")
}

/// The depacketizer for `codec` (by its upper-case SDP name). Unknown codecs get the generic one, which
/// groups packets by timestamp and marker bit.
pub fn depacketizer_for(c: &Codec) -> Box<dyn Depacketizer> {
    let name = c.name.to_ascii_uppercase();
    match name.as_str() {
        codec::H264 => Box::new(VideoDepacketizer::h264(&c.fmtp)),
        codec::H265 => Box::new(VideoDepacketizer::h265(&c.fmtp)),
        codec::AV1 => Box::new(Av1Depacketizer::new()),
        codec::VP9 => Box::new(Vp9Depacketizer::new()),
        codec::AAC => Box::new(AacDepacketizer::new(&c.fmtp)),
        codec::JPEG => Box::new(JpegDepacketizer::new()),
        codec::MPA => Box::new(MpaDepacketizer::new()),
        n if is_packet_per_frame_audio(n) => Box::new(PacketPerFrame),
        _ => Box::new(GroupedDepacketizer::default()),
    }
}

/// One packet, one frame (Opus, G.711, L16 and other sample-based audio).
#[derive(Debug, Default)]
pub struct PacketPerFrame;

impl Depacketizer for PacketPerFrame {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        out.push(Frame { timestamp: pkt.timestamp, keyframe: true, payload: pkt.payload.clone(), rtp: vec![pkt] });
        Ok(())
    }
}

/// Unknown codecs: packets with the same timestamp, up to the marker bit, make one frame whose
/// payload is their concatenated payloads.
#[derive(Debug, Default)]
pub struct GroupedDepacketizer {
    packets: Vec<RtpPacket>,
    size: usize,
}

impl GroupedDepacketizer {
    fn emit(&mut self, out: &mut Vec<Frame>) {
        let Some(first) = self.packets.first() else { return };
        let timestamp = first.timestamp;
        let mut payload = BytesMut::with_capacity(self.size);
        for p in &self.packets {
            payload.put_slice(&p.payload);
        }
        self.size = 0;
        out.push(Frame {
            timestamp,
            keyframe: true,
            payload: payload.freeze(),
            rtp: std::mem::take(&mut self.packets),
        });
    }
}

impl Depacketizer for GroupedDepacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        if self.packets.first().is_some_and(|p| p.timestamp != pkt.timestamp) {
            self.emit(out);
        }
        let marker = pkt.marker;
        self.size += pkt.payload.len();
        self.packets.push(pkt);
        if self.size > MAX_FRAME_BYTES || self.packets.len() > MAX_FRAME_PACKETS {
            self.packets.clear();
            self.size = 0;
            return Err(RtpError::FrameTooLarge { codec: "generic", limit: MAX_FRAME_BYTES });
        }
        if marker {
            self.emit(out);
        }
        Ok(())
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        self.emit(out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use bytes::Bytes;

    pub(crate) fn pkt(seq: u16, ts: u32, marker: bool, payload: &[u8]) -> RtpPacket {
        RtpPacket {
            marker,
            payload_type: 96,
            sequence: seq,
            timestamp: ts,
            ssrc: 1,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// The forwarding rule: the frames' packets, in order, are exactly the input packets.
    pub(crate) fn assert_packets_kept(input: &[RtpPacket], frames: &[Frame]) {
        let seqs: Vec<u16> = frames.iter().flat_map(|f| f.rtp.iter().map(|p| p.sequence)).collect();
        let want: Vec<u16> = input.iter().map(|p| p.sequence).collect();
        assert_eq!(seqs, want);
    }

    #[test]
    fn audio_packet_per_frame() {
        let mut d = depacketizer_for(&Codec::new("opus", 48000, 2, 111));
        let mut out = Vec::new();
        d.push(pkt(1, 960, false, &[1, 2]), &mut out).unwrap();
        d.push(pkt(2, 1920, false, &[]), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert!(out[0].keyframe);
        assert_eq!(out[0].payload.as_ref(), &[1, 2]);
        assert_eq!(out[1].timestamp, 1920);
    }

    #[test]
    fn unknown_codec_grouped() {
        let mut d = depacketizer_for(&Codec::new("X-UNKNOWN", 90000, 0, 96));
        let mut out = Vec::new();
        let input = [
            pkt(1, 100, false, &[1]),
            pkt(2, 100, true, &[2, 3]),
            pkt(3, 200, false, &[4]),
            // No marker on the frame at 200: the timestamp change ends it.
            pkt(4, 300, false, &[5]),
        ];
        for p in &input {
            d.push(p.clone(), &mut out).unwrap();
        }
        d.flush(&mut out);
        assert_eq!(out.len(), 3);
        assert_eq!(out[0].payload.as_ref(), &[1, 2, 3]);
        assert_eq!((out[1].timestamp, out[1].payload.as_ref()), (200, &[4][..]));
        assert_eq!(out[2].timestamp, 300);
        assert_packets_kept(&input, &out);
    }

    /// Random packets (valid and not), random markers and timestamps: every packet reaches exactly one
    /// frame, in order, for every depacketizer.
    #[test]
    fn every_packet_kept_random() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut rnd = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let codecs = [
            Codec::new(codec::H264, 90000, 0, 96),
            Codec::new(codec::H265, 90000, 0, 96),
            Codec::new(codec::AV1, 90000, 0, 96),
            Codec::new(codec::VP9, 90000, 0, 96),
            Codec::new(codec::AAC, 48000, 2, 97).with_fmtp("sizelength=13;indexlength=3;indexdeltalength=3"),
            Codec::new(codec::JPEG, 90000, 0, 26),
            Codec::new(codec::PCMA, 8000, 1, 8),
        ];
        for c in &codecs {
            let mut d = depacketizer_for(c);
            let mut out = Vec::new();
            let mut input = Vec::new();
            let mut ts = 0u32;
            for seq in 0..5000u16 {
                let r = rnd();
                if r % 5 == 0 {
                    ts = ts.wrapping_add(3000);
                }
                let len = (r >> 8) as usize % 40;
                let mut payload: Vec<u8> = (0..len).map(|_| rnd() as u8).collect();
                if let Some(b) = payload.first_mut() {
                    // Bias toward the interesting NAL / packet types.
                    *b = [0x7c, 0x78, 0x65, 0x41, 49 << 1, 48 << 1, 0x26, 0x00][(r >> 20) as usize % 8];
                }
                let p = pkt(seq.wrapping_mul(if r % 97 == 0 { 2 } else { 1 }), ts, r % 3 == 0, &payload);
                input.push(p.clone());
                let _ = d.push(p, &mut out);
            }
            // Make the tail reach a frame whatever its state: one whole frame at a new timestamp.
            let last = match c.name.as_str() {
                codec::H264 => vec![0x41, 1],
                codec::H265 => vec![2, 1, 1],
                // W=1: one frame OBU; B and E.
                codec::AV1 => vec![0x10, 0x30, 0x80],
                codec::VP9 => vec![0x0c, 0x86, 0],
                codec::AAC => vec![0, 16, 0, 8, 1],
                // A whole one-packet image: offset 0, type 1, Q 50, 8x8.
                codec::JPEG => vec![0, 0, 0, 0, 1, 50, 1, 1, 0],
                _ => vec![1],
            };
            let p = pkt(6000, ts.wrapping_add(1), true, &last);
            input.push(p.clone());
            d.push(p, &mut out).unwrap();
            assert_packets_kept(&input, &out);
        }
    }

    #[test]
    fn grouped_bounded() {
        let mut d = GroupedDepacketizer::default();
        let mut out = Vec::new();
        let big = vec![0u8; 1 << 20];
        let mut err = None;
        for i in 0..10 {
            if let Err(e) = d.push(pkt(i, 1, false, &big), &mut out) {
                err = Some(e);
            }
        }
        assert!(matches!(err, Some(RtpError::FrameTooLarge { .. })));
        assert!(out.is_empty());
    }
}
