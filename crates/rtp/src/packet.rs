//! RTP fixed header (RFC 3550 §5.1): parsing and writing.

use crate::RtpError;
use bytes::{BufMut, Bytes};
use media::RtpPacket;

/// Length of the header we write (no CSRC, no extension).
pub const HEADER_LEN: usize = 12;

/// Where the payload lies inside a packet, after CSRCs and extension, before padding.
fn payload_range(buf: &[u8]) -> Result<(usize, usize), RtpError> {
    let too_short = || RtpError::Truncated(buf.len());
    let h: &[u8; HEADER_LEN] = buf.first_chunk().ok_or_else(too_short)?;
    let version = h[0] >> 6;
    if version != 2 {
        return Err(RtpError::BadVersion(version));
    }
    let mut start = HEADER_LEN + 4 * usize::from(h[0] & 0x0f);
    if h[0] & 0x10 != 0 {
        // Header extension: 16-bit profile, 16-bit length in 32-bit words. Skipped.
        let ext = buf.get(start..start + 4).ok_or_else(too_short)?;
        start += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    let mut end = buf.len();
    if start > end {
        return Err(too_short());
    }
    if h[0] & 0x20 != 0 {
        // The last byte counts the padding bytes, itself included.
        let pad = usize::from(buf[end - 1]);
        if pad == 0 || pad > end - start {
            return Err(RtpError::BadPadding);
        }
        end -= pad;
    }
    Ok((start, end))
}

fn fields(buf: &[u8], payload: Bytes) -> RtpPacket {
    RtpPacket {
        marker: buf[1] & 0x80 != 0,
        payload_type: buf[1] & 0x7f,
        sequence: u16::from_be_bytes([buf[2], buf[3]]),
        timestamp: u32::from_be_bytes([buf[4], buf[5], buf[6], buf[7]]),
        ssrc: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
        payload,
    }
}

/// Parses an RTP packet, copying the payload. Prefer [`parse_bytes`] when the datagram is already `Bytes`.
pub fn parse(buf: &[u8]) -> Result<RtpPacket, RtpError> {
    let (start, end) = payload_range(buf)?;
    Ok(fields(buf, Bytes::copy_from_slice(&buf[start..end])))
}

/// Parses an RTP packet without copying: the payload is a slice of `buf`.
pub fn parse_bytes(buf: Bytes) -> Result<RtpPacket, RtpError> {
    let (start, end) = payload_range(&buf)?;
    Ok(fields(&buf, buf.slice(start..end)))
}

/// Writes a 12-byte header (version 2, no padding, no extension, no CSRC). Readers call this with their
/// own sequence number, SSRC and payload type when forwarding.
pub fn write_header(
    out: &mut [u8; HEADER_LEN],
    marker: bool,
    payload_type: u8,
    sequence: u16,
    timestamp: u32,
    ssrc: u32,
) {
    out[0] = 0x80;
    out[1] = (u8::from(marker) << 7) | (payload_type & 0x7f);
    out[2..4].copy_from_slice(&sequence.to_be_bytes());
    out[4..8].copy_from_slice(&timestamp.to_be_bytes());
    out[8..12].copy_from_slice(&ssrc.to_be_bytes());
}

/// The 12-byte header of `pkt`'s own fields.
pub fn header(pkt: &RtpPacket) -> [u8; HEADER_LEN] {
    let mut h = [0; HEADER_LEN];
    write_header(&mut h, pkt.marker, pkt.payload_type, pkt.sequence, pkt.timestamp, pkt.ssrc);
    h
}

/// Appends header and payload of `pkt` to `out`.
pub fn serialize_into(pkt: &RtpPacket, out: &mut impl BufMut) {
    out.put_slice(&header(pkt));
    out.put_slice(&pkt.payload);
}

/// Header and payload of `pkt` as one buffer.
pub fn serialize(pkt: &RtpPacket) -> Vec<u8> {
    let mut v = Vec::with_capacity(HEADER_LEN + pkt.payload.len());
    serialize_into(pkt, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt() -> RtpPacket {
        RtpPacket {
            marker: true,
            payload_type: 96,
            sequence: 0xfffe,
            timestamp: 0x1234_5678,
            ssrc: 0xdead_beef,
            payload: Bytes::from_static(&[1, 2, 3]),
        }
    }

    #[test]
    fn round_trip() {
        let bytes = serialize(&pkt());
        assert_eq!(&bytes[..2], &[0x80, 0xe0]);
        assert_eq!(parse(&bytes).unwrap(), pkt());
        assert_eq!(parse_bytes(Bytes::from(bytes)).unwrap(), pkt());
    }

    #[test]
    fn csrc_extension_padding() {
        let mut b = vec![0xb2, 0x60, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]; // V=2 P=1 X=1 CC=2
        b.extend_from_slice(&[0xaa; 8]); // 2 CSRCs
        b.extend_from_slice(&[0xbe, 0xde, 0, 1, 9, 9, 9, 9]); // extension of 1 word
        b.extend_from_slice(&[7, 8]); // payload
        b.extend_from_slice(&[0, 0, 3]); // padding of 3
        let p = parse_bytes(Bytes::from(b)).unwrap();
        assert_eq!(p.payload.as_ref(), &[7, 8]);
        assert_eq!((p.sequence, p.timestamp, p.ssrc, p.marker), (1, 2, 3, false));
    }

    #[test]
    fn errors() {
        let good = serialize(&pkt());
        for n in 0..HEADER_LEN {
            assert_eq!(parse(&good[..n]), Err(RtpError::Truncated(n)));
        }
        let mut b = good.clone();
        b[0] = 0x40;
        assert_eq!(parse(&b), Err(RtpError::BadVersion(1)));
        let mut b = good.clone();
        b[0] = 0x81; // one CSRC but only 3 payload bytes
        assert!(matches!(parse(&b), Err(RtpError::Truncated(_))));
        let mut b = good.clone();
        b[0] = 0x90; // extension header missing
        assert!(matches!(parse(&b), Err(RtpError::Truncated(_))));
        let mut b = good.clone();
        b[0] = 0xa0;
        *b.last_mut().unwrap() = 9; // padding longer than the payload
        assert_eq!(parse(&b), Err(RtpError::BadPadding));
        *b.last_mut().unwrap() = 0;
        assert_eq!(parse(&b), Err(RtpError::BadPadding));
        let mut b = good[..HEADER_LEN].to_vec();
        b[0] = 0xa0; // padding bit with nothing after the header
        assert!(parse(&b).is_err());
        // Empty payload is valid.
        assert!(parse(&good[..HEADER_LEN]).unwrap().payload.is_empty());
    }
}
