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
    /// Reception report blocks of SR and RR packets: what the sender of the RTCP received from us.
    pub report_blocks: Vec<ReportBlock>,
}

/// A reception report block (RFC 3550 §6.4.1): how the reporter received the source `ssrc`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportBlock {
    pub ssrc: u32,
    /// Packets lost since the previous report, as a fraction of 256.
    pub fraction_lost: u8,
    /// Packets lost since reception began (24-bit signed: duplicates can make it negative).
    pub cumulative_lost: i32,
    pub highest_sequence: u32,
    /// Interarrival jitter, in the source's RTP timestamp units.
    pub jitter: u32,
}

/// At most this many report blocks are kept from one compound (the count field allows 31 per packet).
const MAX_REPORT_BLOCKS: usize = 64;

fn read_report_blocks(count: u8, blocks: &[u8], summary: &mut RtcpSummary) {
    for block in blocks.chunks_exact(24).take(usize::from(count)) {
        if summary.report_blocks.len() >= MAX_REPORT_BLOCKS {
            return;
        }
        let lost = u32::from_be_bytes([0, block[5], block[6], block[7]]);
        // Sign-extend the 24-bit count.
        let cumulative_lost = ((lost << 8) as i32) >> 8;
        summary.report_blocks.push(ReportBlock {
            ssrc: u32::from_be_bytes([block[0], block[1], block[2], block[3]]),
            fraction_lost: block[4],
            cumulative_lost,
            highest_sequence: u32::from_be_bytes([block[8], block[9], block[10], block[11]]),
            jitter: u32::from_be_bytes([block[12], block[13], block[14], block[15]]),
        });
    }
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
                read_report_blocks(count, body.get(24..).unwrap_or_default(), summary);
            }
        }
        PT_RR => read_report_blocks(count, body.get(4..).unwrap_or_default(), summary),
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
    fn report_blocks_of_rr_and_sr() {
        // RR from SSRC 9 with two blocks: 3 lost of source 0x1234, -2 (duplicates) of source 5.
        let mut rr = vec![0x82, PT_RR, 0, 13, 0, 0, 0, 9];
        rr.extend_from_slice(&[0, 0, 0x12, 0x34, 64, 0, 0, 3, 0, 1, 0, 10, 0, 0, 0, 77, 0, 0, 0, 0, 0, 0, 0, 0]);
        rr.extend_from_slice(&[0, 0, 0, 5, 0, 0xff, 0xff, 0xfe, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        let s = parse_compound(&rr).unwrap();
        assert_eq!(
            s.report_blocks,
            vec![
                ReportBlock {
                    ssrc: 0x1234,
                    fraction_lost: 64,
                    cumulative_lost: 3,
                    highest_sequence: 65546,
                    jitter: 77
                },
                ReportBlock { ssrc: 5, fraction_lost: 0, cumulative_lost: -2, highest_sequence: 1, jitter: 0 },
            ]
        );
        // An SR with one block after its sender info.
        let sr = SenderReport { ssrc: 7, ntp: 1, rtp_timestamp: 2, packet_count: 3, octet_count: 4 };
        let mut b = build_sender_report(&sr, "x");
        let sdes = b.split_off(28);
        b[0] = 0x81;
        b[3] = 12;
        b.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0]);
        b.extend_from_slice(&sdes);
        let s = parse_compound(&b).unwrap();
        assert_eq!(s.sender_reports, vec![sr]);
        assert_eq!(s.report_blocks.len(), 1);
        assert_eq!((s.report_blocks[0].ssrc, s.report_blocks[0].cumulative_lost, s.report_blocks[0].jitter), (1, 4, 8));
        // A count larger than the blocks present reads what is there.
        let mut short = vec![0x83, PT_RR, 0, 7, 0, 0, 0, 9];
        short.extend_from_slice(&[0; 24]);
        assert_eq!(parse_compound(&short).unwrap().report_blocks.len(), 1);
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
