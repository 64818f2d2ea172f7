//! JPEG → RTP (RFC 2435). Only what the payload format can describe is packetized: baseline (SOF0),
//! 8-bit, three components Y/Cb/Cr with Y sampled 2x1 (4:2:2) or 2x2 (4:2:0) and chroma 1x1, width
//! and height up to 2040. Every frame is sent with Q = 255 and its quantization tables in-band, so the
//! receiver rebuilds exactly the sender's image. Receivers decode with the standard Huffman tables
//! (the payload cannot carry others): an image coded with other tables (ffmpeg's default `-huffman
//! optimal`, many cameras) is first re-coded to them, losslessly ([`media::jpeg::to_standard_huffman`]).

use super::{Base, Packetizer};
use crate::depacketize::jpeg::STANDARD_HUFFMAN;
use crate::RtpError;
use bytes::{BufMut, BytesMut};
use media::{Frame, RtpPacket};

const CODEC: &str = "JPEG";

fn unsupported(reason: &'static str) -> RtpError {
    RtpError::Unsupported { codec: CODEC, reason }
}

fn bad(reason: &'static str) -> RtpError {
    RtpError::BadPayload { codec: CODEC, reason }
}

/// [`parse`]'s reasons for images that [`media::jpeg::to_standard_huffman`] makes sendable.
const NON_STANDARD_HUFFMAN: &str = "non-standard Huffman tables";
const TABLE_SELECTION: &str = "scan with non-default table selection";

/// What [`parse`] found in a JPEG: everything RFC 2435 carries, and where the scan is.
#[derive(Debug, PartialEq, Eq)]
pub struct ParsedJpeg<'a> {
    /// RFC 2435 type: 0 (4:2:2) or 1 (4:2:0), plus 64 with restart markers.
    pub kind: u8,
    pub width: u16,
    pub height: u16,
    pub restart_interval: u16,
    /// Precision bits and data of the luma and chroma tables (zig-zag order), as sent in-band.
    pub precision: u8,
    pub tables: Vec<u8>,
    /// Entropy-coded data, without the final EOI.
    pub scan: &'a [u8],
}

/// Parses a complete baseline JPEG into what RFC 2435 sends; an error says why it cannot be sent as
/// it is (see [`JpegPacketizer`] for the images it re-codes first).
pub fn parse(jpeg: &[u8]) -> Result<ParsedJpeg<'_>, RtpError> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err(bad("no SOI"));
    }
    // Quantization tables by id: (16-bit, data).
    let mut dqt: [Option<(bool, &[u8])>; 4] = [None; 4];
    let mut frame: Option<(u8, u16, u16, u8, u8)> = None; // kind, width, height, luma table, chroma table
    let mut restart_interval = 0u16;
    let mut pos = 2;
    loop {
        // Skip fill bytes before a marker.
        while jpeg.get(pos) == Some(&0xff) && jpeg.get(pos + 1) == Some(&0xff) {
            pos += 1;
        }
        let (Some(&0xff), Some(&marker)) = (jpeg.get(pos), jpeg.get(pos + 1)) else {
            return Err(bad("marker expected"));
        };
        pos += 2;
        if marker == 0xd8 || (0xd0..=0xd7).contains(&marker) || marker == 0x01 {
            continue; // no length
        }
        if marker == 0xd9 {
            return Err(bad("EOI before SOS"));
        }
        let len = match jpeg.get(pos..pos + 2) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => return Err(bad("truncated segment")),
        };
        if len < 2 {
            return Err(bad("segment length"));
        }
        let seg = jpeg.get(pos + 2..pos + len).ok_or(bad("truncated segment"))?;
        pos += len;
        match marker {
            0xdb => {
                let mut rest = seg;
                while let Some((&pq_tq, tail)) = rest.split_first() {
                    let wide = pq_tq >> 4 != 0;
                    let n = if wide { 128 } else { 64 };
                    let id = usize::from(pq_tq & 0x0f);
                    if pq_tq >> 4 > 1 || id > 3 || tail.len() < n {
                        return Err(bad("DQT"));
                    }
                    dqt[id] = Some((wide, &tail[..n]));
                    rest = &tail[n..];
                }
            }
            0xc4 => {
                let mut rest = seg;
                while let Some((&class_id, tail)) = rest.split_first() {
                    let counts = tail.get(..16).ok_or(bad("DHT"))?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = tail.get(16..16 + n).ok_or(bad("DHT"))?;
                    let standard =
                        STANDARD_HUFFMAN.iter().any(|(c, k, v)| *c == class_id && k[..] == counts[..] && *v == values);
                    if !standard {
                        return Err(unsupported(NON_STANDARD_HUFFMAN));
                    }
                    rest = &tail[16 + n..];
                }
            }
            0xdd => {
                let &[a, b, ..] = seg else { return Err(bad("DRI")) };
                restart_interval = u16::from_be_bytes([a, b]);
            }
            0xc0 => {
                let &[8, h0, h1, w0, w1, 3, ref comps @ ..] = seg else {
                    return Err(unsupported("not 8-bit three-component"));
                };
                let &[_, ys, yq, _, cbs, cbq, _, crs, crq] = comps.get(..9).ok_or(bad("SOF0"))? else {
                    return Err(bad("SOF0"));
                };
                let kind = match (ys, cbs, crs) {
                    (0x21, 0x11, 0x11) => 0,
                    (0x22, 0x11, 0x11) => 1,
                    _ => return Err(unsupported("sampling other than 4:2:0 or 4:2:2")),
                };
                if cbq != crq {
                    return Err(unsupported("different Cb and Cr tables"));
                }
                let (height, width) = (u16::from_be_bytes([h0, h1]), u16::from_be_bytes([w0, w1]));
                if width == 0 || height == 0 || width > 2040 || height > 2040 {
                    return Err(unsupported("width or height over 2040"));
                }
                frame = Some((kind, width, height, yq, cbq));
            }
            0xc1..=0xcf => return Err(unsupported("not baseline")),
            0xda => {
                let (kind, width, height, yq, cq) = frame.ok_or(bad("SOS before SOF0"))?;
                // Y with DC/AC tables 0, Cb and Cr with tables 1, full spectral range.
                if seg.len() != 10 || seg[0] != 3 || seg[2] != 0x00 || seg[4] != 0x11 || seg[6] != 0x11 {
                    return Err(unsupported(TABLE_SELECTION));
                }
                let mut precision = 0;
                let mut tables = Vec::with_capacity(256);
                for (i, id) in [yq, cq].into_iter().enumerate() {
                    let (wide, t) = dqt.get(usize::from(id)).copied().flatten().ok_or(bad("missing DQT"))?;
                    precision |= u8::from(wide) << i;
                    tables.extend_from_slice(t);
                }
                let data = &jpeg[pos..];
                // 0xFF inside entropy-coded data is stuffed (FF 00) or a restart marker: FF D9 is EOI.
                let end = data.windows(2).position(|w| w == [0xff, 0xd9]).unwrap_or(data.len());
                let kind = if restart_interval > 0 { kind + 64 } else { kind };
                return Ok(ParsedJpeg { kind, width, height, restart_interval, precision, tables, scan: &data[..end] });
            }
            _ => {} // APPn, COM...
        }
    }
}

/// RFC 2435 packetizer, see the module documentation.
pub(super) struct JpegPacketizer {
    pub(super) base: Base,
}

impl JpegPacketizer {
    /// Packetizes `frame`; nothing is appended on error.
    pub(super) fn try_packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) -> Result<(), RtpError> {
        let recoded;
        let p = match parse(&frame.payload) {
            Err(RtpError::Unsupported { reason, .. })
                if reason == NON_STANDARD_HUFFMAN || reason == TABLE_SELECTION =>
            {
                recoded = media::jpeg::to_standard_huffman(&frame.payload).map_err(|e| match e {
                    media::jpeg::JpegError::Malformed(reason) => bad(reason),
                    media::jpeg::JpegError::Unsupported(reason) => unsupported(reason),
                })?;
                parse(&recoded)?
            }
            parsed => parsed?,
        };
        let mut main = [0u8; 8];
        main[4] = p.kind;
        main[5] = 255;
        main[6] = p.width.div_ceil(8) as u8;
        main[7] = p.height.div_ceil(8) as u8;
        let restart: &[u8] = if p.restart_interval > 0 {
            let [a, b] = p.restart_interval.to_be_bytes();
            // F = L = 1, count 0x3FFF: packets do not start at restart intervals.
            &[a, b, 0xff, 0xff]
        } else {
            &[]
        };
        let table_header_len = 4 + p.tables.len();
        let mut offset = 0usize;
        let mut first = true;
        loop {
            let mut header_len = main.len() + restart.len();
            if first {
                header_len += table_header_len;
            }
            let room = self.base.max_payload.saturating_sub(header_len);
            if room == 0 {
                return Err(unsupported("MTU too small"));
            }
            if offset >= 1 << 24 {
                return Err(unsupported("image over 16 MiB"));
            }
            let piece = &p.scan[offset..(offset + room).min(p.scan.len())];
            let mut b = BytesMut::with_capacity(header_len + piece.len());
            let o = (offset as u32).to_be_bytes();
            main[1..4].copy_from_slice(&o[1..]);
            b.put_slice(&main);
            b.put_slice(restart);
            if first {
                b.put_slice(&[0, p.precision]);
                b.put_u16(p.tables.len() as u16);
                b.put_slice(&p.tables);
            }
            b.put_slice(piece);
            offset += piece.len();
            let last = offset >= p.scan.len();
            out.push(self.base.packet(last, frame.timestamp, b.freeze()));
            first = false;
            if last {
                return Ok(());
            }
        }
    }
}

impl Packetizer for JpegPacketizer {
    fn packetize(&mut self, frame: &Frame, out: &mut Vec<RtpPacket>) {
        let before = out.len();
        if self.try_packetize(frame, out).is_err() {
            // Unsendable image (see `parse`): send nothing rather than a broken frame.
            out.truncate(before);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::depacketize::jpeg::{jfif_header, ImageParams};
    use crate::depacketize::{Depacketizer, JpegDepacketizer};
    use bytes::Bytes;

    /// A small JPEG as ffmpeg writes it (`-huffman default`), built from our own header writer.
    fn sample(subsampling: u8, restart_interval: u16, scan: &[u8]) -> Bytes {
        let params = ImageParams { subsampling, width: 64, height: 48, restart_interval };
        let luma: Vec<u8> = (1..=64).collect();
        let chroma: Vec<u8> = (65..=128).collect();
        let mut b = BytesMut::new();
        jfif_header(&params, &[(false, &luma), (false, &chroma)], &mut b);
        b.put_slice(scan);
        b.put_slice(&[0xff, 0xd9]);
        b.freeze()
    }

    fn packetizer(mtu: usize) -> JpegPacketizer {
        JpegPacketizer { base: Base { payload_type: 26, ssrc: 7, sequence: 65534, max_payload: mtu - 12 } }
    }

    #[test]
    fn round_trip_is_identical() {
        let scan: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).map(|b| if b == 0xff { 0 } else { b }).collect();
        for (subsampling, dri) in [(0, 0), (1, 0), (1, 8), (0, 3)] {
            let jpeg = sample(subsampling, dri, &scan);
            let mut p = packetizer(1200);
            let mut packets = Vec::new();
            p.packetize(&Frame { timestamp: 90, keyframe: true, payload: jpeg.clone(), rtp: vec![] }, &mut packets);
            assert!(packets.len() > 4);
            assert!(packets.last().unwrap().marker);
            assert!(packets.iter().rev().skip(1).all(|p| !p.marker));
            assert!(packets.iter().all(|p| p.payload.len() <= 1188));
            let mut d = JpegDepacketizer::new();
            let mut frames = Vec::new();
            for pkt in packets {
                d.push(pkt, &mut frames).unwrap();
            }
            assert_eq!(frames.len(), 1);
            assert_eq!(frames[0].timestamp, 90);
            assert_eq!(frames[0].payload, jpeg, "subsampling {subsampling} dri {dri}");
        }
    }

    /// The SOS segment and the entropy-coded data after it, up to EOI.
    fn scan(jpeg: &[u8]) -> &[u8] {
        let sos = jpeg.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
        let end = jpeg.windows(2).rposition(|w| w == [0xff, 0xd9]).unwrap();
        &jpeg[sos..end]
    }

    #[test]
    fn optimal_huffman_tables_are_recoded_losslessly() {
        // One picture from ffmpeg, coded with its default (optimal) tables and with the standard ones.
        let optimal = Bytes::from_static(include_bytes!("../../../media/testdata/420_optimal.jpg"));
        let standard = include_bytes!("../../../media/testdata/420_default.jpg");
        assert_eq!(parse(&optimal).unwrap_err(), unsupported(NON_STANDARD_HUFFMAN));
        let mut packets = Vec::new();
        packetizer(1200)
            .packetize(&Frame { timestamp: 1, keyframe: true, payload: optimal, rtp: vec![] }, &mut packets);
        assert!(packets.len() > 1);
        let mut d = JpegDepacketizer::new();
        let mut frames = Vec::new();
        for pkt in packets {
            d.push(pkt, &mut frames).unwrap();
        }
        assert_eq!(frames.len(), 1);
        // What the receiver rebuilds decodes to the same coefficients as the standard-table encoding.
        assert_eq!(scan(&frames[0].payload), scan(standard));
    }

    #[test]
    fn unsupported_images_are_not_sent() {
        let jpeg = sample(1, 0, &[1, 2, 3]);
        // 4:4:4 luma sampling.
        let mut v = jpeg.to_vec();
        let sof = v.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        v[sof + 11] = 0x11;
        assert!(matches!(parse(&v), Err(RtpError::Unsupported { .. })));
        // A different Huffman table.
        let mut v = jpeg.to_vec();
        let dht = v.windows(2).position(|w| w == [0xff, 0xc4]).unwrap();
        v[dht + 6] ^= 1;
        assert!(parse(&v).is_err());
        // Progressive.
        let mut v = jpeg.to_vec();
        v[sof + 1] = 0xc2;
        assert!(parse(&v).is_err());
        let mut out = Vec::new();
        packetizer(1200).packetize(&Frame { payload: Bytes::from(v), ..Default::default() }, &mut out);
        assert!(out.is_empty());
        // Truncations never panic.
        for n in 0..jpeg.len() {
            let _ = parse(&jpeg[..n]);
        }
    }
}
