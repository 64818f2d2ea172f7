//! JPEG over RTP (RFC 2435): fragments of the entropy-coded scan, preceded by a main header
//! (type, Q, width, height), a restart marker header (types 64–127) and, in the first fragment when
//! Q ≥ 128, the quantization tables. The depacketizer rebuilds the JFIF headers the sender stripped
//! (DQT from the Q factor per Appendix A or from the in-band tables, the standard Huffman tables, SOF0,
//! DRI, SOS) so every frame's payload is a complete JPEG image.

use super::{Depacketizer, MAX_FRAME_BYTES, MAX_FRAME_PACKETS};
use crate::RtpError;
use bytes::{BufMut, Bytes, BytesMut};
use media::{Frame, RtpPacket};

const CODEC: &str = "JPEG";

/// Natural-order index of the i-th coefficient in zig-zag order (ITU T.81 figure A.6).
pub(crate) const ZIGZAG: [u8; 64] = [
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6, 7, 14, 21,
    28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54,
    47, 55, 62, 63,
];

/// RFC 2435 Appendix A (ITU T.81 K.1), natural order.
const LUMA_QUANTIZER: [u8; 64] = [
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51,
    87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101,
    72, 92, 95, 98, 112, 100, 103, 99,
];

/// RFC 2435 Appendix A (ITU T.81 K.2), natural order.
const CHROMA_QUANTIZER: [u8; 64] = [
    17, 18, 24, 47, 99, 99, 99, 99, 18, 21, 26, 66, 99, 99, 99, 99, 24, 26, 56, 99, 99, 99, 99, 99, 47, 66, 99, 99, 99,
    99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99, 99,
    99, 99, 99, 99, 99, 99,
];

/// The standard Huffman tables of ITU T.81 K.3 (the only ones RFC 2435 receivers know).
pub(crate) use media::jpeg::STANDARD_HUFFMAN;

/// The two quantization tables (luma, chroma; zig-zag order) for Q factor 1–99 (RFC 2435 Appendix A;
/// 0 and 100–127 are clamped like the reference code does).
pub fn quant_tables(q: u8) -> [[u8; 64]; 2] {
    let factor = u32::from(q.clamp(1, 99));
    let scale = if factor < 50 { 5000 / factor } else { 200 - factor * 2 };
    let mut out = [[0u8; 64]; 2];
    for (table, base) in out.iter_mut().zip([&LUMA_QUANTIZER, &CHROMA_QUANTIZER]) {
        for (i, v) in table.iter_mut().enumerate() {
            let q = (u32::from(base[usize::from(ZIGZAG[i])]) * scale + 50) / 100;
            *v = q.clamp(1, 255) as u8;
        }
    }
    out
}

/// Quantization tables as sent in-band: a precision bit per table (1 = 16-bit entries) and the data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantTables {
    pub precision: u8,
    pub data: Bytes,
}

impl QuantTables {
    /// Splits `data` into tables per `precision`; None when the length does not add up (1–4 tables).
    pub fn split(&self) -> Option<Vec<(bool, &[u8])>> {
        let mut tables = Vec::new();
        let mut rest = &self.data[..];
        while !rest.is_empty() {
            if tables.len() == 4 {
                return None;
            }
            let wide = self.precision & (1 << tables.len()) != 0;
            let n = if wide { 128 } else { 64 };
            if rest.len() < n {
                return None;
            }
            let (t, tail) = rest.split_at(n);
            tables.push((wide, t));
            rest = tail;
        }
        (!tables.is_empty()).then_some(tables)
    }
}

/// What a decoder needs to know besides the scan: the fields of the main and restart headers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageParams {
    /// 0 = 4:2:2 (Y sampled 2x1), 1 = 4:2:0 (Y sampled 2x2); the restart variant is `restart_interval`.
    pub subsampling: u8,
    pub width: u16,
    pub height: u16,
    pub restart_interval: u16,
}

/// JFIF headers (SOI to SOS included) for a scan of `params` with `tables` (1 to 4 tables; table 0 for
/// luma, table 1 for chroma when present).
pub fn jfif_header(params: &ImageParams, tables: &[(bool, &[u8])], out: &mut BytesMut) {
    out.put_slice(&[0xff, 0xd8]);
    // APP0 JFIF 1.1, no thumbnail.
    out.put_slice(&[0xff, 0xe0, 0, 16, b'J', b'F', b'I', b'F', 0, 1, 1, 0, 0, 1, 0, 1, 0, 0]);
    if params.restart_interval > 0 {
        out.put_slice(&[0xff, 0xdd, 0, 4]);
        out.put_u16(params.restart_interval);
    }
    let dqt_len: usize = 2 + tables.iter().map(|(_, t)| 1 + t.len()).sum::<usize>();
    out.put_slice(&[0xff, 0xdb]);
    out.put_u16(dqt_len as u16);
    for (i, (wide, t)) in tables.iter().enumerate() {
        out.put_u8((u8::from(*wide) << 4) | i as u8);
        out.put_slice(t);
    }
    let dht_len: usize = 2 + STANDARD_HUFFMAN.iter().map(|(_, _, v)| 17 + v.len()).sum::<usize>();
    out.put_slice(&[0xff, 0xc4]);
    out.put_u16(dht_len as u16);
    for (class_id, counts, values) in STANDARD_HUFFMAN {
        out.put_u8(class_id);
        out.put_slice(&counts);
        out.put_slice(values);
    }
    let chroma_table = u8::from(tables.len() > 1);
    let luma_sampling = if params.subsampling == 0 { 0x21 } else { 0x22 };
    out.put_slice(&[0xff, 0xc0, 0, 17, 8]);
    out.put_u16(params.height);
    out.put_u16(params.width);
    out.put_slice(&[3, 1, luma_sampling, 0, 2, 0x11, chroma_table, 3, 0x11, chroma_table]);
    out.put_slice(&[0xff, 0xda, 0, 12, 3, 1, 0x00, 2, 0x11, 3, 0x11, 0, 63, 0]);
}

/// The frame being reassembled.
struct Image {
    params: ImageParams,
    tables: QuantTables,
    /// Entropy-coded data so far; the next fragment must start at this offset.
    scan: BytesMut,
}

/// RFC 2435 depacketizer; see the module documentation.
#[derive(Default)]
pub struct JpegDepacketizer {
    timestamp: Option<u32>,
    /// Packets of the frame being built, and of broken frames before it (they ride along).
    packets: Vec<RtpPacket>,
    image: Option<Image>,
    /// Tables last sent in-band for a dynamic Q (128–255), for frames that send a zero-length header.
    cached: Vec<(u8, QuantTables)>,
}

fn bad(reason: &'static str) -> RtpError {
    RtpError::BadPayload { codec: CODEC, reason }
}

impl JpegDepacketizer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses one packet's headers and adds its scan data. On error the frame is abandoned.
    fn add(&mut self, payload: &Bytes) -> Result<(), RtpError> {
        let Some(&[type_specific, o1, o2, o3, kind, q, w, h]) = payload.first_chunk::<8>() else {
            return Err(bad("short main header"));
        };
        let _ = type_specific; // interlaced fields (type-specific != 0) are not reassembled further
        let offset = u32::from_be_bytes([0, o1, o2, o3]) as usize;
        let mut rest = payload.slice(8..);
        let (subsampling, restart) = match kind {
            0 | 1 => (kind, false),
            64 | 65 => (kind - 64, true),
            2..=63 | 66..=127 => return Err(RtpError::Unsupported { codec: CODEC, reason: "JPEG type" }),
            _ => return Err(bad("reserved JPEG type")),
        };
        let mut restart_interval = 0;
        if restart {
            let Some(&[r0, r1, _, _]) = rest.first_chunk::<4>() else {
                return Err(bad("short restart marker header"));
            };
            restart_interval = u16::from_be_bytes([r0, r1]);
            rest = rest.slice(4..);
        }
        if offset == 0 {
            // 8-bit fields in 8-pixel blocks: up to 2040 pixels; 0 is not an image.
            if w == 0 || h == 0 {
                return Err(bad("zero width or height"));
            }
            let tables = if q >= 128 {
                let Some(&[_mbz, precision, l0, l1]) = rest.first_chunk::<4>() else {
                    return Err(bad("short quantization table header"));
                };
                let len = usize::from(u16::from_be_bytes([l0, l1]));
                if rest.len() < 4 + len {
                    return Err(bad("quantization tables truncated"));
                }
                let tables = QuantTables { precision, data: rest.slice(4..4 + len) };
                rest = rest.slice(4 + len..);
                if len == 0 {
                    let cached = self.cached.iter().find(|(cq, _)| *cq == q).map(|(_, t)| t.clone());
                    cached.ok_or(bad("no quantization tables for this Q yet"))?
                } else {
                    if tables.split().is_none() {
                        return Err(bad("quantization table length"));
                    }
                    self.cached.retain(|(cq, _)| *cq != q);
                    self.cached.push((q, tables.clone()));
                    tables
                }
            } else {
                standard_tables(q)
            };
            let params =
                ImageParams { subsampling, width: u16::from(w) * 8, height: u16::from(h) * 8, restart_interval };
            self.image = Some(Image { params, tables, scan: BytesMut::new() });
        }
        let Some(image) = self.image.as_mut() else {
            return Err(RtpError::FragmentLost { codec: CODEC });
        };
        if image.scan.len() != offset {
            self.image = None;
            return Err(RtpError::FragmentLost { codec: CODEC });
        }
        if image.scan.len() + rest.len() > MAX_FRAME_BYTES {
            self.image = None;
            return Err(RtpError::FrameTooLarge { codec: CODEC, limit: MAX_FRAME_BYTES });
        }
        image.scan.put_slice(&rest);
        Ok(())
    }

    /// Emits the frame being built (when complete) with every packet waiting.
    fn finish(&mut self, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        let Some(image) = self.image.take() else {
            return Err(RtpError::FragmentLost { codec: CODEC });
        };
        let Some(split) = image.tables.split() else {
            return Err(bad("quantization table length"));
        };
        let mut jpeg = BytesMut::with_capacity(700 + image.scan.len());
        jfif_header(&image.params, &split, &mut jpeg);
        jpeg.put_slice(&image.scan);
        if !image.scan.ends_with(&[0xff, 0xd9]) {
            jpeg.put_slice(&[0xff, 0xd9]);
        }
        out.push(Frame {
            timestamp: self.timestamp.unwrap_or_default(),
            keyframe: true,
            payload: jpeg.freeze(),
            rtp: std::mem::take(&mut self.packets),
        });
        Ok(())
    }
}

/// The Appendix A tables of `q` in the in-band form.
fn standard_tables(q: u8) -> QuantTables {
    let [luma, chroma] = quant_tables(q);
    let mut data = Vec::with_capacity(128);
    data.extend_from_slice(&luma);
    data.extend_from_slice(&chroma);
    QuantTables { precision: 0, data: Bytes::from(data) }
}

impl Depacketizer for JpegDepacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        let mut result = Ok(());
        if self.timestamp != Some(pkt.timestamp) {
            if self.image.take().is_some() {
                // The previous frame never saw its marker: its end was lost.
                result = Err(RtpError::FragmentLost { codec: CODEC });
            }
            self.timestamp = Some(pkt.timestamp);
        }
        let marker = pkt.marker;
        let added = self.add(&pkt.payload);
        self.packets.push(pkt);
        if self.packets.len() > MAX_FRAME_PACKETS {
            // Broken frames riding along without end: drop them rather than grow.
            self.packets.clear();
            self.image = None;
            return Err(RtpError::FrameTooLarge { codec: CODEC, limit: MAX_FRAME_BYTES });
        }
        if let Err(e) = added {
            self.image = None;
            return Err(e);
        }
        if marker {
            result = result.and(self.finish(out));
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::tests::{assert_packets_kept, pkt};

    #[test]
    fn standard_tables_match_t81_at_q50() {
        let [luma, chroma] = quant_tables(50);
        // Zig-zag order of the K.1 / K.2 tables, unscaled at Q=50.
        assert_eq!(&luma[..8], &[16, 11, 12, 14, 12, 10, 16, 14]);
        assert_eq!(&chroma[..8], &[17, 18, 18, 24, 21, 24, 47, 26]);
        assert_eq!(luma[63], 99);
        let [l, c] = quant_tables(100);
        assert!(l.iter().chain(c.iter()).all(|&v| (1..=2).contains(&v)), "Q over 99 is clamped to 99");
    }

    fn header(offset: u32, kind: u8, q: u8, w: u8, h: u8) -> Vec<u8> {
        let o = offset.to_be_bytes();
        vec![0, o[1], o[2], o[3], kind, q, w, h]
    }

    #[test]
    fn two_fragments_make_one_image() {
        let mut d = JpegDepacketizer::new();
        let mut out = Vec::new();
        let mut a = header(0, 1, 50, 2, 2);
        a.extend_from_slice(&[1, 2, 3]);
        let mut b = header(3, 1, 50, 2, 2);
        b.extend_from_slice(&[4, 5]);
        let input = [pkt(1, 10, false, &a), pkt(2, 10, true, &b)];
        for p in &input {
            d.push(p.clone(), &mut out).unwrap();
        }
        assert_eq!(out.len(), 1);
        let f = &out[0];
        assert!(f.keyframe);
        assert!(f.payload.starts_with(&[0xff, 0xd8]));
        assert!(f.payload.ends_with(&[1, 2, 3, 4, 5, 0xff, 0xd9]));
        // SOF0 says 16x16, 4:2:0.
        let sof = f.payload.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        assert_eq!(&f.payload[sof + 5..sof + 9], &[0, 16, 0, 16]);
        assert_eq!(f.payload[sof + 11], 0x22);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn lost_fragment_drops_frame_and_packets_ride_along() {
        let mut d = JpegDepacketizer::new();
        let mut out = Vec::new();
        let mut a = header(0, 0, 50, 2, 2);
        a.extend_from_slice(&[1, 2, 3]);
        let mut c = header(10, 0, 50, 2, 2);
        c.extend_from_slice(&[9]);
        let mut next = header(0, 0, 50, 2, 2);
        next.extend_from_slice(&[7]);
        let input = [pkt(1, 10, false, &a), pkt(3, 10, true, &c), pkt(4, 20, true, &next)];
        assert!(d.push(input[0].clone(), &mut out).is_ok());
        assert!(d.push(input[1].clone(), &mut out).is_err());
        assert!(out.is_empty());
        d.push(input[2].clone(), &mut out).unwrap();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, 20);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn inband_tables_cached_by_q() {
        let mut d = JpegDepacketizer::new();
        let mut out = Vec::new();
        let mut a = header(0, 65, 255, 1, 1);
        a.extend_from_slice(&[0, 4, 0, 0]); // restart interval 4
        a.extend_from_slice(&[0, 0, 0, 128]);
        a.extend((0..128).map(|i| i as u8 + 1));
        a.extend_from_slice(&[0xaa]);
        d.push(pkt(1, 1, true, &a), &mut out).unwrap();
        let mut b = header(0, 65, 255, 1, 1);
        b.extend_from_slice(&[0, 4, 0xff, 0xff]);
        b.extend_from_slice(&[0, 0, 0, 0]); // tables not sent: use the cached ones
        b.extend_from_slice(&[0xbb]);
        d.push(pkt(2, 2, true, &b), &mut out).unwrap();
        assert_eq!(out.len(), 2);
        for f in &out {
            let dri = f.payload.windows(2).position(|w| w == [0xff, 0xdd]).unwrap();
            assert_eq!(&f.payload[dri + 4..dri + 6], &[0, 4]);
            let dqt = f.payload.windows(2).position(|w| w == [0xff, 0xdb]).unwrap();
            assert_eq!(&f.payload[dqt + 2..dqt + 6], &[0, 132, 0, 1]);
        }
        // Q 254 never had tables.
        let mut c = header(0, 1, 254, 1, 1);
        c.extend_from_slice(&[0, 0, 0, 0, 1]);
        assert!(d.push(pkt(3, 3, true, &c), &mut out).is_err());
    }

    #[test]
    fn garbage_never_panics() {
        let mut d = JpegDepacketizer::new();
        let mut out = Vec::new();
        for len in 0..40 {
            for kind in [0u8, 1, 64, 65, 200] {
                for q in [0u8, 50, 128, 255] {
                    let mut p = header(0, kind, q, 1, 1);
                    p.extend((0..len).map(|i| (i * 37) as u8));
                    p.truncate(len);
                    let _ = d.push(pkt(len as u16, len as u32, len % 2 == 0, &p), &mut out);
                }
            }
        }
    }
}
