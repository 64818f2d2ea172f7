//! RTCP (RFC 3550 §6): building sender / receiver reports with SDES CNAME, and a tolerant reader of
//! incoming compound packets that keeps only what we use (sender reports for A/V sync, BYE).

use crate::RtpError;
use std::time::{SystemTime, UNIX_EPOCH};

pub const PT_SR: u8 = 200;
pub const PT_RR: u8 = 201;
pub const PT_SDES: u8 = 202;
pub const PT_BYE: u8 = 203;

/// Seconds between the NTP epoch (1900) and the Unix epoch (1970).
const NTP_UNIX_OFFSET: u64 = 2_208_988_800;

/// 64-bit NTP timestamp (32.32 fixed point seconds since 1900) of a wall-clock time.
pub fn ntp_from_system_time(t: SystemTime) -> u64 {
    // Times before 1970 do not occur on a running server; map them to the Unix epoch.
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs().wrapping_add(NTP_UNIX_OFFSET);
    let frac = (u64::from(d.subsec_nanos()) << 32) / 1_000_000_000;
    (secs << 32) | frac
}

/// Wall-clock time of a 64-bit NTP timestamp.
pub fn system_time_from_ntp(ntp: u64) -> SystemTime {
    let secs = (ntp >> 32).saturating_sub(NTP_UNIX_OFFSET);
    let nanos = ((ntp & 0xffff_ffff) * 1_000_000_000) >> 32;
    UNIX_EPOCH + std::time::Duration::new(secs, nanos as u32)
}

/// The sender info of an SR packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SenderReport {
    pub ssrc: u32,
    /// NTP timestamp (see [`ntp_from_system_time`]).
    pub ntp: u64,
    /// RTP timestamp matching `ntp`, in the stream's clock.
    pub rtp_timestamp: u32,
    pub packet_count: u32,
    pub octet_count: u32,
}

/// What a compound packet told us.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RtcpSummary {
    pub sender_reports: Vec<SenderReport>,
    /// SSRCs that said BYE.
    pub bye: Vec<u32>,
}

/// True when a datagram on an rtcp-mux port is RTCP rather than RTP (RFC 5761 §4: the second byte, which
/// holds the RTCP packet type, falls in 192..=223; RTP payload types there are not used).
pub fn is_rtcp(buf: &[u8]) -> bool {
    buf.len() >= 4 && buf[0] >> 6 == 2 && (192..=223).contains(&buf[1])
}

/// SDES chunk with one CNAME item, padded with the terminating null(s) to a 32-bit boundary.
fn push_sdes(out: &mut Vec<u8>, ssrc: u32, cname: &str) {
    // CNAME length is one byte; truncate on a char boundary.
    let mut n = cname.len().min(255);
    while !cname.is_char_boundary(n) {
        n -= 1;
    }
    let cname = &cname.as_bytes()[..n];
    // chunk: ssrc(4) + type(1) + len(1) + text + at least one null, padded to 4.
    let chunk_len = (4 + 2 + cname.len() + 1).div_ceil(4) * 4;
    out.extend_from_slice(&[0x81, PT_SDES]);
    out.extend_from_slice(&((chunk_len / 4) as u16).to_be_bytes());
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.push(1); // CNAME
    out.push(cname.len() as u8);
    out.extend_from_slice(cname);
    out.resize(out.len() + chunk_len - 6 - cname.len(), 0);
}

/// A compound packet: SR (no report blocks) followed by SDES CNAME.
pub fn build_sender_report(sr: &SenderReport, cname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(28 + 12 + cname.len());
    out.extend_from_slice(&[0x80, PT_SR, 0, 6]);
    out.extend_from_slice(&sr.ssrc.to_be_bytes());
    out.extend_from_slice(&sr.ntp.to_be_bytes());
    out.extend_from_slice(&sr.rtp_timestamp.to_be_bytes());
    out.extend_from_slice(&sr.packet_count.to_be_bytes());
    out.extend_from_slice(&sr.octet_count.to_be_bytes());
    push_sdes(&mut out, sr.ssrc, cname);
    out
}

/// A compound packet: empty RR followed by SDES CNAME. Some cameras stop sending after a while unless
/// they receive RTCP from the client.
pub fn build_receiver_report(ssrc: u32, cname: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + 12 + cname.len());
    out.extend_from_slice(&[0x80, PT_RR, 0, 1]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    push_sdes(&mut out, ssrc, cname);
    out
}

/// Reads a compound RTCP packet. Unknown packet types are skipped. A malformed first packet is an error;
/// a malformed later one ends the walk with what was read so far (cameras send odd trailers).
pub fn parse_compound(buf: &[u8]) -> Result<RtcpSummary, RtpError> {
    let mut summary = RtcpSummary::default();
    let mut rest = buf;
    let mut first = true;
    while !rest.is_empty() {
        match next_packet(rest) {
            Ok((pt, count, body, tail)) => {
                read_packet(pt, count, body, &mut summary);
                rest = tail;
            }
            Err(e) if first => return Err(e),
            Err(_) => break,
        }
        first = false;
    }
    if first {
        return Err(RtpError::BadRtcp("empty"));
    }
    Ok(summary)
}

/// One packet split off a compound: (type, count field, body after the 4-byte header without padding,
/// rest of the compound).
type Split<'a> = (u8, u8, &'a [u8], &'a [u8]);

fn next_packet(buf: &[u8]) -> Result<Split<'_>, RtpError> {
    let h: &[u8; 4] = buf.first_chunk().ok_or(RtpError::BadRtcp("truncated header"))?;
    if h[0] >> 6 != 2 {
        return Err(RtpError::BadRtcp("version"));
    }
    let len = (usize::from(u16::from_be_bytes([h[2], h[3]])) + 1) * 4;
    let pkt = buf.get(..len).ok_or(RtpError::BadRtcp("length past end"))?;
    let mut body = &pkt[4..];
    if h[0] & 0x20 != 0 {
        let pad = usize::from(*body.last().ok_or(RtpError::BadRtcp("padding"))?);
        if pad == 0 || pad > body.len() {
            return Err(RtpError::BadRtcp("padding"));
        }
        body = &body[..body.len() - pad];
    }
    Ok((h[1], h[0] & 0x1f, body, &buf[len..]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(*b.get(at..at + 4)?.first_chunk()?))
}

fn read_packet(pt: u8, count: u8, body: &[u8], summary: &mut RtcpSummary) {
    match pt {
        PT_SR => {
            if let (Some(ssrc), Some(hi), Some(lo), Some(ts), Some(pc), Some(oc)) =
                (be32(body, 0), be32(body, 4), be32(body, 8), be32(body, 12), be32(body, 16), be32(body, 20))
            {
                summary.sender_reports.push(SenderReport {
                    ssrc,
                    ntp: (u64::from(hi) << 32) | u64::from(lo),
                    rtp_timestamp: ts,
                    packet_count: pc,
                    octet_count: oc,
                });
            }
        }
        PT_BYE => {
            // At most 31 SSRCs: the count field is 5 bits.
            for i in 0..usize::from(count) {
                match be32(body, 4 * i) {
                    Some(ssrc) => summary.bye.push(ssrc),
                    None => break,
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn sr_round_trip() {
        let now = UNIX_EPOCH + Duration::new(1_700_000_000, 500_000_000);
        let ntp = ntp_from_system_time(now);
        assert_eq!(ntp >> 32, 1_700_000_000 + NTP_UNIX_OFFSET);
        assert_eq!(ntp & 0xffff_ffff, 0x8000_0000);
        assert_eq!(system_time_from_ntp(ntp), now);
        let sr = SenderReport { ssrc: 7, ntp, rtp_timestamp: 90000, packet_count: 10, octet_count: 1000 };
        let buf = build_sender_report(&sr, "camrelay");
        assert_eq!(buf.len() % 4, 0);
        assert_eq!(buf.len(), 28 + 4 + 16);
        assert!(is_rtcp(&buf));
        let s = parse_compound(&buf).unwrap();
        assert_eq!(s.sender_reports, vec![sr]);
        // CNAME lengths around the padding boundary still give aligned, parseable packets.
        for n in 0..10 {
            let b = build_sender_report(&sr, &"x".repeat(n));
            assert_eq!(b.len() % 4, 0);
            assert_eq!(parse_compound(&b).unwrap().sender_reports.len(), 1);
        }
        let long = "é".repeat(200);
        let b = build_receiver_report(1, &long);
        assert_eq!(b.len() % 4, 0);
        assert!(parse_compound(&b).unwrap().sender_reports.is_empty());
    }

    #[test]
    fn tolerant_parse() {
        // RR + BYE with 2 SSRCs + garbage trailer.
        let mut b = build_receiver_report(1, "a");
        b.extend_from_slice(&[0x82, PT_BYE, 0, 2, 0, 0, 0, 5, 0, 0, 0, 6]);
        b.extend_from_slice(&[0x80, 200, 0, 50]);
        let s = parse_compound(&b).unwrap();
        assert_eq!(s.bye, vec![5, 6]);
        assert!(parse_compound(&[]).is_err());
        assert!(parse_compound(&[0x80, 200, 0, 6, 1]).is_err());
        assert!(parse_compound(&[0x40, 200, 0, 0]).is_err());
        assert!(parse_compound(&[0xa0, 200, 0, 0]).is_err()); // padding with no bytes
                                                              // Short SR body: skipped, not an error.
        assert!(parse_compound(&[0x80, 200, 0, 1, 0, 0, 0, 1]).unwrap().sender_reports.is_empty());
        assert!(!is_rtcp(&[0x80, 96, 0, 0]));
        assert!(!is_rtcp(&[0x80, 0xe0, 0, 0])); // RTP PT 96 with marker
    }
}
