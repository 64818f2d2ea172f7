//! [`Frame`] → RTP, used once at a source that has no RTP of its own (files, pipes, the demo stream).
//! Output round-trips through [`crate::depacketize`].

use crate::packet::HEADER_LEN;
use bytes::{BufMut, Bytes, BytesMut};
use media::{codec, h264, Codec, Frame, RtpPacket};
use std::hash::{BuildHasher, Hasher};

mod av1;
pub mod jpeg;
mod vp9;

pub trait Packetizer: Send {
    /// Appends the packets of `frame` to `out`.
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>);
}

/// A random u32 without a dependency: std's hasher keys are random per process.
fn random_u32() -> u32 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64));
    h.finish() as u32
}

/// Packetizer for `codec` with a random SSRC and initial sequence number (RFC 3550 §5.1). `mtu` is the
/// largest RTP packet (header included). None for codecs we do not packetize (unknown ones).
pub fn packetizer_for(codec: &Codec, mtu: usize) -> Option<Box<dyn Packetizer>> {
    packetizer_with(codec, mtu, random_u32(), random_u32() as u16)
}

/// Same as [`packetizer_for`] with a given SSRC and first sequence number.
pub fn packetizer_with(c: &Codec, mtu: usize, ssrc: u32, first_sequence: u16) -> Option<Box<dyn Packetizer>> {
    let base = Base {
        payload_type: c.payload_type,
        ssrc,
        sequence: first_sequence,
        // Leave room for at least a fragment header and one byte.
        max_payload: mtu.saturating_sub(HEADER_LEN).max(8),
    };
    match c.name.to_ascii_uppercase().as_str() {
        codec::H264 => Some(Box::new(NalPacketizer { base, h265: false })),
        codec::H265 => Some(Box::new(NalPacketizer { base, h265: true })),
        codec::AV1 => Some(Box::new(av1::Av1Packetizer { base })),
        codec::VP9 => Some(Box::new(vp9::Vp9Packetizer { picture_id: (ssrc as u16) & 0x7fff, base })),
        codec::AAC => Some(Box::new(AacPacketizer { base })),
        codec::JPEG => Some(Box::new(jpeg::JpegPacketizer { base })),
        codec::MPA => Some(Box::new(MpaPacketizer { base })),
        codec::KLV => Some(Box::new(FragmentPacketizer { base })),
        n if super::depacketize::is_packet_per_frame_audio(n) => Some(Box::new(PayloadPacketizer { base })),
        _ => None,
    }
}

struct Base {
    payload_type: u8,
    ssrc: u32,
    sequence: u16,
    max_payload: usize,
}

impl Base {
    fn packet(&mut self, marker: bool, timestamp: u32, payload: Bytes) -> RtpPacket {
        let sequence = self.sequence;
        self.sequence = self.sequence.wrapping_add(1);
        RtpPacket { marker, payload_type: self.payload_type, sequence, timestamp, ssrc: self.ssrc, payload }
    }
}

/// H.264 (RFC 6184 packetization-mode 1) and H.265 (RFC 7798): one packet per NAL unit when it fits, else
/// FU-A / FU. No aggregation: parameter sets go as their own packets.
struct NalPacketizer {
    base: Base,
    h265: bool,
}

impl Packetizer for NalPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let header_len = if self.h265 { 2 } else { 1 };
        let first = out.len();
        let ts = frame.timestamp;
        let max = self.base.max_payload;
        for nal in h264::avcc_nals(&frame.payload).filter(|n| n.len() >= header_len) {
            if nal.len() <= max {
                // A slice of the frame's buffer, no copy (nal comes from frame.payload, as slice_ref needs).
                let payload = frame.payload.slice_ref(nal);
                out.push(self.base.packet(false, ts, payload));
                continue;
            }
            let (fu_header_len, nal_type) =
                if self.h265 { (3, h265_type(nal[0])) } else { (2, h264::nal_type(nal[0])) };
            let chunk = max - fu_header_len;
            let body = &nal[header_len..];
            let count = body.len().div_ceil(chunk);
            for (i, piece) in body.chunks(chunk).enumerate() {
                let mut p = BytesMut::with_capacity(fu_header_len + piece.len());
                let flags = if i == 0 { 0x80 } else { 0 } | if i + 1 == count { 0x40 } else { 0 };
                if self.h265 {
                    p.put_u8((nal[0] & 0x81) | (49 << 1));
                    p.put_u8(nal[1]);
                    p.put_u8(flags | nal_type);
                } else {
                    p.put_u8((nal[0] & 0xe0) | h264::NAL_FU_A);
                    p.put_u8(flags | nal_type);
                }
                p.put_slice(piece);
                out.push(self.base.packet(false, ts, p.freeze()));
            }
        }
        if out.len() > first {
            if let Some(last) = out.last_mut() {
                last.marker = true;
            }
        }
    }
}

fn h265_type(h0: u8) -> u8 {
    media::h265::nal_type(h0)
}

/// AAC (RFC 3640 AAC-hbr: sizelength=13, indexlength=3, indexdeltalength=3): one AU per packet, an AU
/// larger than a packet fragmented with the marker bit on its last piece.
struct AacPacketizer {
    base: Base,
}

/// Largest AU a 13-bit size field describes.
const AAC_MAX_AU: usize = (1 << 13) - 1;

impl Packetizer for AacPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let au = &frame.payload;
        if au.len() > AAC_MAX_AU {
            // Not AAC: cannot be described with the AU-header layout we announce.
            return;
        }
        let header = [0x00, 0x10, (au.len() >> 5) as u8, ((au.len() & 0x1f) << 3) as u8];
        let chunk = self.base.max_payload - header.len();
        let pieces = au.len().div_ceil(chunk).max(1);
        for i in 0..pieces {
            let piece = &au[(i * chunk).min(au.len())..((i + 1) * chunk).min(au.len())];
            let mut p = BytesMut::with_capacity(header.len() + piece.len());
            p.put_slice(&header);
            p.put_slice(piece);
            out.push(self.base.packet(i + 1 == pieces, frame.timestamp, p.freeze()));
        }
    }
}

/// Opus, G.711, L16...: the frame payload is the RTP payload.
struct PayloadPacketizer {
    base: Base,
}

impl Packetizer for PayloadPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        out.push(self.base.packet(false, frame.timestamp, frame.payload.clone()));
    }
}

/// MPEG-1/2 audio (RFC 2250 §3.5): a 4-byte header (zero, fragment offset), then as many whole frames
/// as fit the packet; a frame larger than a packet goes in pieces, each with its offset in the frame.
struct MpaPacketizer {
    base: Base,
}

impl Packetizer for MpaPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let max = self.base.max_payload - 4;
        let data = &frame.payload;
        // Frame boundaries (one unit when the payload is not a run of MPEG audio frames).
        let mut units: Vec<&[u8]> = media::mpa::frames(data).map(|(_, f)| f).collect();
        if units.iter().map(|u| u.len()).sum::<usize>() != data.len() {
            units = vec![&data[..]];
        }
        let mut pending: Vec<u8> = Vec::new();
        let flush = |pending: &mut Vec<u8>, base: &mut Base, out: &mut Vec<RtpPacket>| {
            if !pending.is_empty() {
                let mut p = BytesMut::with_capacity(4 + pending.len());
                p.put_slice(&[0, 0, 0, 0]);
                p.put_slice(pending);
                out.push(base.packet(false, frame.timestamp, p.freeze()));
                pending.clear();
            }
        };
        for unit in units {
            if pending.len() + unit.len() > max {
                flush(&mut pending, &mut self.base, out);
            }
            if unit.len() <= max {
                pending.extend_from_slice(unit);
                continue;
            }
            for (i, piece) in unit.chunks(max).enumerate() {
                let mut p = BytesMut::with_capacity(4 + piece.len());
                p.put_u16(0);
                p.put_u16((i * max).min(usize::from(u16::MAX)) as u16);
                p.put_slice(piece);
                out.push(self.base.packet(false, frame.timestamp, p.freeze()));
            }
        }
        flush(&mut pending, &mut self.base, out);
    }
}

/// KLV (RFC 6597) and other formats without a header of their own: the frame in packet-sized pieces, the
/// marker bit on the last.
struct FragmentPacketizer {
    base: Base,
}

impl Packetizer for FragmentPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let pieces = frame.payload.len().div_ceil(self.base.max_payload);
        for i in 0..pieces {
            let end = ((i + 1) * self.base.max_payload).min(frame.payload.len());
            let payload = frame.payload.slice(i * self.base.max_payload..end);
            out.push(self.base.packet(i + 1 == pieces, frame.timestamp, payload));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::depacketizer_for;

    fn avcc(nals: &[Vec<u8>]) -> Bytes {
        let mut v = Vec::new();
        for n in nals {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        Bytes::from(v)
    }

    fn round_trip(codec: &Codec, frames: &[Frame], mtu: usize) -> Vec<Frame> {
        let mut p = packetizer_with(codec, mtu, 42, 65530).unwrap();
        let mut d = depacketizer_for(codec);
        let mut pkts = Vec::new();
        for f in frames {
            p.packetize(f, &mut pkts);
        }
        assert!(pkts.iter().all(|p| p.payload.len() + HEADER_LEN <= mtu));
        for w in pkts.windows(2) {
            assert_eq!(w[1].sequence, w[0].sequence.wrapping_add(1));
        }
        let mut out = Vec::new();
        for pkt in pkts.clone() {
            d.push(pkt, &mut out).unwrap();
        }
        d.flush(&mut out);
        let back: Vec<RtpPacket> = out.iter().flat_map(|f| f.rtp.clone()).collect();
        assert_eq!(back, pkts);
        out
    }

    fn body(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn h264_round_trip() {
        let codec = Codec::new("H264", 90000, 0, 96);
        let mut idr = vec![0x65];
        idr.extend(body(5000, 1));
        let key = avcc(&[vec![0x67, 0x42, 0, 0x1e], vec![0x68, 0xce], vec![0x06, 5, 0x80], idr]);
        let mut p = vec![0x41];
        p.extend(body(1187, 2)); // exactly fills a 1200-byte packet
        let inter = avcc(&[p]);
        let frames = [
            Frame { timestamp: 0, keyframe: true, payload: key.clone(), rtp: vec![] },
            Frame { timestamp: 3000, keyframe: false, payload: inter.clone(), rtp: vec![] },
        ];
        let out = round_trip(&codec, &frames, 1200);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].payload, key);
        assert!(out[0].keyframe);
        assert_eq!(out[1].payload, inter);
        assert_eq!(out[1].rtp.len(), 1);
        assert!(out[0].rtp.last().unwrap().marker);
        assert_eq!(out[0].rtp.iter().filter(|p| p.marker).count(), 1);
    }

    #[test]
    fn h265_round_trip() {
        let codec = Codec::new("H265", 90000, 0, 96);
        let mut idr = vec![19 << 1, 1];
        idr.extend(body(3000, 3));
        let key = avcc(&[vec![32 << 1, 1, 7], vec![33 << 1, 1, 8], vec![34 << 1, 1, 9], idr]);
        let mut p = vec![1 << 1, 1];
        p.extend(body(10, 4));
        let frames = [
            Frame { timestamp: 10, keyframe: true, payload: key.clone(), rtp: vec![] },
            Frame { timestamp: 20, keyframe: false, payload: avcc(&[p.clone()]), rtp: vec![] },
        ];
        let out = round_trip(&codec, &frames, 500);
        assert_eq!(out[0].payload, key);
        assert!(out[0].keyframe);
        assert_eq!(out[1].payload, avcc(&[p]));
    }

    #[test]
    fn aac_round_trip() {
        let codec = Codec::new("MPEG4-GENERIC", 48000, 2, 97).with_fmtp(
            "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1190",
        );
        let frames: Vec<Frame> = [10usize, 0, 600, 1500, 8191]
            .iter()
            .enumerate()
            .map(|(i, &n)| Frame {
                timestamp: (i as u32) * 1024,
                keyframe: true,
                payload: Bytes::from(body(n, i as u8)),
                rtp: vec![],
            })
            .collect();
        let out = round_trip(&codec, &frames, 1400);
        assert_eq!(out.len(), frames.len());
        for (a, b) in out.iter().zip(&frames) {
            assert_eq!((a.timestamp, &a.payload), (b.timestamp, &b.payload));
        }
        // Too large for a 13-bit size: nothing sent.
        let mut p = packetizer_with(&codec, 1400, 1, 1).unwrap();
        let mut pkts = Vec::new();
        p.packetize(&Frame { payload: Bytes::from(vec![0; 9000]), ..Default::default() }, &mut pkts);
        assert!(pkts.is_empty());
    }

    fn mp2(fill: u8) -> Vec<u8> {
        let mut f = vec![0xff, 0xfd, 0x84, 0x00];
        f.extend(body(380, fill));
        f
    }

    #[test]
    fn mpa_round_trip() {
        let codec = Codec::new("MPA", 90000, 0, 14);
        let two = [mp2(1), mp2(2)].concat();
        for (mtu, payloads) in [(1400, vec![two.clone(), mp2(3)]), (200, vec![mp2(4), mp2(5)])] {
            let frames: Vec<Frame> = payloads
                .iter()
                .enumerate()
                .map(|(i, p)| Frame {
                    timestamp: i as u32 * 2160,
                    keyframe: true,
                    payload: Bytes::from(p.clone()),
                    rtp: vec![],
                })
                .collect();
            let out = round_trip(&codec, &frames, mtu);
            assert_eq!(out.len(), frames.len(), "mtu {mtu}");
            for (a, b) in out.iter().zip(&frames) {
                assert_eq!((a.timestamp, &a.payload), (b.timestamp, &b.payload));
                assert!(a.rtp.iter().all(|p| p.payload_type == 14));
            }
        }
    }

    #[test]
    fn klv_round_trip() {
        let codec = Codec::new("SMPTE336M", 90000, 0, 96);
        let frames: Vec<Frame> = [50usize, 3000, 1388]
            .iter()
            .enumerate()
            .map(|(i, &n)| Frame {
                timestamp: i as u32 * 3000,
                keyframe: true,
                payload: Bytes::from(body(n, i as u8)),
                rtp: vec![],
            })
            .collect();
        let out = round_trip(&codec, &frames, 1400);
        assert_eq!(out.len(), 3);
        for (a, b) in out.iter().zip(&frames) {
            assert_eq!((a.timestamp, &a.payload), (b.timestamp, &b.payload));
            assert!(a.rtp.last().unwrap().marker);
        }
        assert_eq!(out[1].rtp.len(), 3);
    }

    #[test]
    fn audio_round_trip() {
        for name in ["PCMA", "PCMU", "OPUS", "L16"] {
            let codec = Codec::new(name, 8000, 1, 8);
            let frames = [
                Frame { timestamp: 0, keyframe: true, payload: Bytes::from(body(160, 0)), rtp: vec![] },
                Frame { timestamp: 160, keyframe: true, payload: Bytes::from(body(160, 1)), rtp: vec![] },
            ];
            let out = round_trip(&codec, &frames, 1400);
            assert_eq!(out[1].payload, frames[1].payload);
        }
        assert!(packetizer_for(&Codec::new("JPEG", 90000, 0, 26), 1400).is_some());
    }
}
