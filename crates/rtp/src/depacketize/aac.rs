//! MPEG4-GENERIC (RFC 3640) AAC depacketizing: AU-header section, several access units per packet, and
//! access units fragmented over packets.

use super::{Depacketizer, MAX_FRAME_BYTES, MAX_FRAME_PACKETS};
use crate::RtpError;
use bytes::{Bytes, BytesMut};
use media::h264::BitReader;
use media::{Codec, Frame, RtpPacket};

/// Most access units we accept in one packet (a 1500-byte packet holds far fewer real ones).
const MAX_AUS_PER_PACKET: usize = 1024;

/// Sizes of the AU-header fields, from the fmtp (RFC 3640 §4.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuHeaderLayout {
    pub size_length: u32,
    pub index_length: u32,
    pub index_delta_length: u32,
    pub cts_delta_length: u32,
    pub dts_delta_length: u32,
    pub random_access_indication: bool,
    pub stream_state_indication: u32,
    pub auxiliary_data_size_length: u32,
}

impl AuHeaderLayout {
    /// Reads the layout from an fmtp. A camera that leaves out `sizelength` entirely gets the AAC-hbr
    /// layout (13/3/3), or AAC-lbr's (6/2/2) when `mode=AAC-lbr`.
    pub fn from_fmtp(fmtp: &str) -> Self {
        let c = Codec::new("MPEG4-GENERIC", 0, 0, 0).with_fmtp(fmtp);
        // Field sizes above 32 bits make no sense; clamping keeps the bit reader's limits.
        let get = |k: &str| c.fmtp_param(k).and_then(|v| v.parse::<u32>().ok()).map(|v| v.min(32));
        let lbr = c.fmtp_param("mode").is_some_and(|m| m.eq_ignore_ascii_case("AAC-lbr"));
        let (size, index) = match get("sizelength") {
            Some(s) => (s, 0),
            None if lbr => (6, 2),
            None => (13, 3),
        };
        let defaulted = get("sizelength").is_none();
        AuHeaderLayout {
            size_length: size,
            index_length: get("indexlength").unwrap_or(index),
            index_delta_length: get("indexdeltalength").unwrap_or(if defaulted { index } else { 0 }),
            cts_delta_length: get("ctsdeltalength").unwrap_or(0),
            dts_delta_length: get("dtsdeltalength").unwrap_or(0),
            random_access_indication: get("randomaccessindication").is_some_and(|v| v != 0),
            stream_state_indication: get("streamstateindication").unwrap_or(0),
            auxiliary_data_size_length: get("auxiliarydatasizelength").unwrap_or(0),
        }
    }

    /// True when packets have an AU-header section (else each payload is exactly one AU).
    fn has_headers(&self) -> bool {
        self.size_length > 0
            || self.index_length > 0
            || self.index_delta_length > 0
            || self.cts_delta_length > 0
            || self.dts_delta_length > 0
            || self.random_access_indication
            || self.stream_state_indication > 0
    }
}

struct Fragment {
    timestamp: u32,
    size: usize,
    data: BytesMut,
}

/// Depacketizer for `MPEG4-GENERIC` audio (AAC).
pub struct AacDepacketizer {
    layout: AuHeaderLayout,
    /// Samples per access unit, for the timestamps of the 2nd.. AU of a packet.
    au_duration: u32,
    sizes: Vec<usize>,
    fragment: Option<Fragment>,
    /// Packets not yet attached to a frame; they go with the next one.
    pending: Vec<RtpPacket>,
    last_seq: Option<u16>,
}

fn bad(reason: &'static str) -> RtpError {
    RtpError::BadPayload { codec: "AAC", reason }
}

impl AacDepacketizer {
    pub fn new(fmtp: &str) -> Self {
        let au_duration = Codec::new("MPEG4-GENERIC", 0, 0, 0)
            .with_fmtp(fmtp)
            .fmtp_param("constantduration")
            .and_then(|v| v.parse().ok())
            .filter(|&v| v > 0)
            .unwrap_or(media::aac::SAMPLES_PER_FRAME);
        AacDepacketizer {
            layout: AuHeaderLayout::from_fmtp(fmtp),
            au_duration,
            sizes: Vec::new(),
            fragment: None,
            pending: Vec::new(),
            last_seq: None,
        }
    }

    /// Reads the AU-header (and auxiliary) sections into `self.sizes`; returns where AU data starts.
    fn read_headers(&mut self, payload: &[u8]) -> Result<usize, RtpError> {
        self.sizes.clear();
        let l = self.layout;
        if !l.has_headers() {
            self.sizes.push(payload.len());
            return Ok(0);
        }
        if l.size_length == 0 {
            return Err(RtpError::Unsupported { codec: "AAC", reason: "AU headers without sizelength" });
        }
        let len = payload.get(..2).ok_or_else(|| bad("missing AU-headers-length"))?;
        let bits = usize::from(u16::from_be_bytes([len[0], len[1]]));
        let end = 2 + bits.div_ceil(8);
        let section = payload.get(2..end).ok_or_else(|| bad("AU-header section past end"))?;
        let mut r = BitReader::new(section);
        let total = r.remaining();
        let err = |_| bad("truncated AU header");
        while total - r.remaining() < bits {
            let size = r.bits(l.size_length).map_err(err)?;
            let index = if self.sizes.is_empty() { l.index_length } else { l.index_delta_length };
            r.skip(index as usize).map_err(err)?;
            if l.cts_delta_length > 0 && r.bit().map_err(err)? {
                r.skip(l.cts_delta_length as usize).map_err(err)?;
            }
            if l.dts_delta_length > 0 && r.bit().map_err(err)? {
                r.skip(l.dts_delta_length as usize).map_err(err)?;
            }
            if l.random_access_indication {
                r.skip(1).map_err(err)?;
            }
            r.skip(l.stream_state_indication as usize).map_err(err)?;
            if self.sizes.len() >= MAX_AUS_PER_PACKET {
                return Err(bad("too many AU headers"));
            }
            self.sizes.push(size as usize);
        }
        if total - r.remaining() != bits {
            return Err(bad("AU-headers-length does not match the headers"));
        }
        let mut at = end;
        if l.auxiliary_data_size_length > 0 {
            let aux = payload.get(at..).ok_or_else(|| bad("auxiliary section past end"))?;
            let mut r = BitReader::new(aux);
            let aux_bits = r.bits(l.auxiliary_data_size_length).map_err(err)? as usize;
            at += (l.auxiliary_data_size_length as usize + aux_bits).div_ceil(8);
            if at > payload.len() {
                return Err(bad("auxiliary section past end"));
            }
        }
        Ok(at)
    }

    fn emit(&mut self, timestamp: u32, payload: Bytes, pkt: Option<RtpPacket>, out: &mut Vec<Frame>) {
        let mut rtp = std::mem::take(&mut self.pending);
        rtp.extend(pkt);
        out.push(Frame { timestamp, keyframe: true, payload, rtp });
    }

    fn keep_pending(&mut self, pkt: RtpPacket) {
        // Only a long run of unusable packets gets here; bound it like a frame.
        if self.pending.len() >= MAX_FRAME_PACKETS {
            self.pending.clear();
        }
        self.pending.push(pkt);
    }
}

impl Depacketizer for AacDepacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        let mut result = Ok(());
        let gap = self.last_seq.is_some_and(|s| pkt.sequence != s.wrapping_add(1));
        self.last_seq = Some(pkt.sequence);
        if self.fragment.as_ref().is_some_and(|f| gap || f.timestamp != pkt.timestamp) {
            self.fragment = None;
            result = Err(RtpError::FragmentLost { codec: "AAC" });
        }
        let at = match self.read_headers(&pkt.payload) {
            Ok(at) => at,
            Err(e) => {
                self.fragment = None;
                self.keep_pending(pkt);
                return Err(e);
            }
        };
        let data = pkt.payload.slice(at..);

        if let Some(f) = self.fragment.as_mut() {
            // A continuation: one AU header (the whole AU's size) and the next piece of data.
            f.data.extend_from_slice(&data);
            if f.data.len() < f.size && !pkt.marker {
                self.keep_pending(pkt);
                return result;
            }
            let f = self.fragment.take();
            match f {
                Some(f) if f.data.len() == f.size => self.emit(f.timestamp, f.data.freeze(), Some(pkt), out),
                _ => {
                    self.keep_pending(pkt);
                    return Err(bad("fragmented AU size mismatch"));
                }
            }
            return result;
        }

        let mut pkt = Some(pkt);
        let mut off = 0;
        let marker = pkt.as_ref().is_some_and(|p| p.marker);
        let timestamp = pkt.as_ref().map_or(0, |p| p.timestamp);
        let count = self.sizes.len();
        for i in 0..count {
            let size = self.sizes[i];
            if size > data.len() - off {
                if count == 1 && !marker && size <= MAX_FRAME_BYTES {
                    // First fragment of an AU spread over several packets.
                    // The size comes from the packet: do not let one small packet reserve megabytes.
                    let mut buf = BytesMut::with_capacity(size.min(64 * 1024));
                    buf.extend_from_slice(&data[off..]);
                    self.fragment = Some(Fragment { timestamp, size, data: buf });
                } else {
                    result = Err(bad("AU past end of packet"));
                }
                break;
            }
            let ts = timestamp.wrapping_add((i as u32).wrapping_mul(self.au_duration));
            self.emit(ts, data.slice(off..off + size), pkt.take(), out);
            off += size;
        }
        if let Some(p) = pkt {
            self.keep_pending(p);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_packets_kept, pkt};
    use super::*;

    const FMTP: &str =
        "streamtype=5;profile-level-id=15;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210";

    fn aac_packet(aus: &[&[u8]], sizes: Option<&[usize]>) -> Vec<u8> {
        let mut v = ((aus.len() * 16) as u16).to_be_bytes().to_vec();
        for (i, au) in aus.iter().enumerate() {
            let size = sizes.map_or(au.len(), |s| s[i]);
            v.extend_from_slice(&((size as u16) << 3).to_be_bytes());
        }
        for au in aus {
            v.extend_from_slice(au);
        }
        v
    }

    #[test]
    fn two_aus_in_one_packet() {
        let mut d = AacDepacketizer::new(FMTP);
        let mut out = Vec::new();
        let input = [pkt(1, 1000, true, &aac_packet(&[&[1, 2, 3], &[4, 5]], None))];
        d.push(input[0].clone(), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!((out[0].timestamp, out[0].payload.as_ref()), (1000, &[1, 2, 3][..]));
        assert_eq!((out[1].timestamp, out[1].payload.as_ref()), (2024, &[4, 5][..]));
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn fragmented_au() {
        let mut d = AacDepacketizer::new(FMTP);
        let mut out = Vec::new();
        let input = [
            pkt(1, 0, false, &aac_packet(&[&[1, 2]], Some(&[5]))),
            pkt(2, 0, false, &aac_packet(&[&[3, 4]], Some(&[5]))),
            pkt(3, 0, true, &aac_packet(&[&[5]], Some(&[5]))),
            pkt(4, 1024, true, &aac_packet(&[&[6]], None)),
        ];
        for p in &input {
            d.push(p.clone(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].payload.as_ref(), &[1, 2, 3, 4, 5]);
        assert_eq!(out[1].payload.as_ref(), &[6]);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn lost_fragment() {
        let mut d = AacDepacketizer::new(FMTP);
        let mut out = Vec::new();
        let input = [
            pkt(1, 0, false, &aac_packet(&[&[1, 2]], Some(&[5]))),
            pkt(3, 0, true, &aac_packet(&[&[5]], Some(&[5]))),
            pkt(4, 1024, true, &aac_packet(&[&[6]], None)),
        ];
        assert!(d.push(input[0].clone(), &mut out).is_ok());
        assert!(d.push(input[1].clone(), &mut out).is_err());
        assert!(d.push(input[2].clone(), &mut out).is_ok());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].payload.as_ref(), &[6]);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn defaults_and_other_layouts() {
        assert_eq!(AuHeaderLayout::from_fmtp("config=1210"), AuHeaderLayout::from_fmtp(FMTP));
        let lbr = AuHeaderLayout::from_fmtp("mode=AAC-lbr");
        assert_eq!((lbr.size_length, lbr.index_length, lbr.index_delta_length), (6, 2, 2));
        // No AU headers at all: the payload is one AU.
        let mut d = AacDepacketizer::new("sizelength=0");
        let mut out = Vec::new();
        d.push(pkt(1, 0, true, &[9, 9]), &mut out).unwrap();
        assert_eq!(out[0].payload.as_ref(), &[9, 9]);
        // AAC-lbr with two 8-bit headers.
        let mut d = AacDepacketizer::new("mode=AAC-lbr");
        let mut out = Vec::new();
        d.push(pkt(1, 0, true, &[0, 16, 1 << 2, 2 << 2, 7, 8, 8]), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        assert_eq!(out[1].payload.as_ref(), &[8, 8]);
    }

    #[test]
    fn malformed() {
        let mut d = AacDepacketizer::new(FMTP);
        let cases: [&[u8]; 6] = [&[], &[0], &[0, 16, 0], &[0, 17, 0, 8, 1], &[0, 16, 0, 16, 1], &[0xff, 0xff, 0]];
        for (i, c) in cases.iter().enumerate() {
            assert!(d.push(pkt(i as u16, 0, true, c), &mut Vec::new()).is_err(), "{c:?}");
        }
    }
}
