//! H.264 bitstream helpers: NAL unit types, Annex B / AVCC framing, `sprop-parameter-sets`, and the few SPS
//! fields muxers and SDP need (dimensions, profile, level). Everything here reads untrusted bytes: it
//! returns errors or stops iterating, never panics.

use bytes::Bytes;
use std::fmt::Write as _;

pub const NAL_SLICE: u8 = 1;
pub const NAL_IDR: u8 = 5;
pub const NAL_SEI: u8 = 6;
pub const NAL_SPS: u8 = 7;
pub const NAL_PPS: u8 = 8;
pub const NAL_AUD: u8 = 9;
pub const NAL_FILLER: u8 = 12;
/// RTP aggregation packet (RFC 6184), never inside a stream.
pub const NAL_STAP_A: u8 = 24;
/// RTP fragmentation unit (RFC 6184), never inside a stream.
pub const NAL_FU_A: u8 = 28;

/// Errors of the bitstream parsers of this crate (H.264, H.265, AAC).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BitstreamError {
    #[error("bitstream ended early")]
    Truncated,
    #[error("invalid {0}")]
    Invalid(&'static str),
    #[error("unsupported {0}")]
    Unsupported(&'static str),
}

/// Type of the NAL unit whose first (header) byte is `header`.
pub fn nal_type(header: u8) -> u8 {
    header & 0x1f
}

/// True for slice NAL units (the ones that carry picture data).
pub fn is_vcl(nal_type: u8) -> bool {
    (1..=5).contains(&nal_type)
}

/// Iterator over the NAL units of an Annex B byte stream (`00 00 01` / `00 00 00 01` start codes). Bytes
/// before the first start code are skipped; trailing zero bytes of a NAL unit are trimmed.
pub struct AnnexBNals<'a> {
    rest: &'a [u8],
}

/// NAL units of an Annex B byte stream, without their start codes.
pub fn annexb_nals(buf: &[u8]) -> AnnexBNals<'_> {
    let rest = match find_start_code(buf) {
        Some((_, end)) => &buf[end..],
        None => &[],
    };
    AnnexBNals { rest }
}

/// Position of the first `00 00 01` in `buf`, as (start of the code, first byte after it).
fn find_start_code(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while i + 3 <= buf.len() {
        // Skip ahead fast: a start code needs buf[i + 2] <= 1.
        if buf[i + 2] > 1 {
            i += 3;
        } else if buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1 {
            return Some((i, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

impl<'a> Iterator for AnnexBNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        loop {
            if self.rest.is_empty() {
                return None;
            }
            let (nal, rest) = match find_start_code(self.rest) {
                Some((start, end)) => (&self.rest[..start], &self.rest[end..]),
                None => (self.rest, &[][..]),
            };
            self.rest = rest;
            // The zero of a 4-byte start code (and trailing_zero_8bits) belongs to no NAL unit.
            let len = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            if len > 0 {
                return Some(&nal[..len]);
            }
        }
    }
}

/// Converts an Annex B byte stream to 4-byte length-prefixed NAL units (the Frame payload format).
pub fn annexb_to_avcc(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len() + 16);
    for nal in annexb_nals(buf) {
        // A NAL unit longer than 4 GiB cannot come out of a slice we were given in memory on 32-bit, and
        // on 64-bit we refuse it rather than write a wrong length.
        let Ok(len) = u32::try_from(nal.len()) else { continue };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(nal);
    }
    out
}

/// Converts 4-byte length-prefixed NAL units to an Annex B byte stream (4-byte start codes). Stops at the
/// first truncated length.
pub fn avcc_to_annexb(buf: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(buf.len());
    for nal in avcc_nals(buf) {
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(nal);
    }
    out
}

/// Iterator over 4-byte length-prefixed NAL units. It stops at the first length that runs past the end of
/// the buffer; [`AvccNals::truncated`] tells whether that happened.
pub struct AvccNals<'a> {
    rest: &'a [u8],
    truncated: bool,
}

/// NAL units of a 4-byte length-prefixed buffer (bounds-checked).
pub fn avcc_nals(buf: &[u8]) -> AvccNals<'_> {
    AvccNals { rest: buf, truncated: false }
}

impl AvccNals<'_> {
    /// True once the iterator met a length prefix that does not fit the buffer.
    pub fn truncated(&self) -> bool {
        self.truncated
    }
}

impl<'a> Iterator for AvccNals<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        let Some((len, body)) = self.rest.split_first_chunk::<4>() else {
            self.truncated = true;
            self.rest = &[];
            return None;
        };
        let len = u32::from_be_bytes(*len) as usize;
        if len > body.len() {
            self.truncated = true;
            self.rest = &[];
            return None;
        }
        let (nal, rest) = body.split_at(len);
        self.rest = rest;
        Some(nal)
    }
}

/// Decodes standard base64 (with or without padding). Used for SDP `sprop-*` values.
pub(crate) fn base64_decode(s: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        } as u32)
    }
    let s = s.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in s.bytes() {
        acc = (acc << 6) | val(c)?;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes standard base64 with padding (for writing `sprop-*` values).
pub fn base64_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Value of `key` in an fmtp string (`a=b;c=d`), keys compared case-insensitively.
pub(crate) fn fmtp_value<'a>(fmtp: &'a str, key: &str) -> Option<&'a str> {
    fmtp.split(';').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
    })
}

/// SPS and PPS NAL units from an fmtp line's `sprop-parameter-sets` (comma-separated base64). Entries that
/// are not valid base64 or not an SPS/PPS are skipped: cameras put odd things there.
pub fn parse_sprop_parameter_sets(fmtp: &str) -> (Vec<Bytes>, Vec<Bytes>) {
    let mut sps = Vec::new();
    let mut pps = Vec::new();
    let Some(value) = fmtp_value(fmtp, "sprop-parameter-sets") else {
        return (sps, pps);
    };
    for part in value.split(',') {
        let Some(nal) = base64_decode(part) else { continue };
        match nal.first().map(|&h| nal_type(h)) {
            Some(NAL_SPS) => sps.push(Bytes::from(nal)),
            Some(NAL_PPS) => pps.push(Bytes::from(nal)),
            _ => {}
        }
    }
    (sps, pps)
}

/// `sprop-parameter-sets` value for the given parameter sets.
pub fn sprop_parameter_sets(sps: &[u8], pps: &[u8]) -> String {
    format!("{},{}", base64_encode(sps), base64_encode(pps))
}

/// `profile-level-id` (6 hex digits: profile_idc, constraint flags, level_idc) of an SPS NAL unit.
pub fn profile_level_id(sps: &[u8]) -> Option<String> {
    let bytes = sps.get(1..4)?;
    let mut s = String::with_capacity(6);
    for b in bytes {
        // Writing to a String cannot fail.
        let _ = write!(s, "{b:02x}");
    }
    Some(s)
}

/// Removes emulation prevention bytes (`00 00 03` → `00 00`), giving the RBSP of a NAL unit.
pub fn remove_emulation_prevention(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader with Exp-Golomb support, over an RBSP (emulation prevention already removed).
pub struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Bits left to read.
    pub fn remaining(&self) -> usize {
        (self.data.len() * 8).saturating_sub(self.pos)
    }

    pub fn bit(&mut self) -> Result<bool, BitstreamError> {
        let byte = *self.data.get(self.pos / 8).ok_or(BitstreamError::Truncated)?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Reads `n` bits (at most 32) as an unsigned number.
    pub fn bits(&mut self, n: u32) -> Result<u32, BitstreamError> {
        if n > 32 {
            return Err(BitstreamError::Invalid("bit count"));
        }
        if self.remaining() < n as usize {
            return Err(BitstreamError::Truncated);
        }
        let mut v = 0u64;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        Ok(v as u32)
    }

    pub fn skip(&mut self, n: usize) -> Result<(), BitstreamError> {
        if self.remaining() < n {
            return Err(BitstreamError::Truncated);
        }
        self.pos += n;
        Ok(())
    }

    /// Unsigned Exp-Golomb (`ue(v)`), up to 32 bits of value.
    pub fn ue(&mut self) -> Result<u32, BitstreamError> {
        let mut zeros = 0;
        while !self.bit()? {
            zeros += 1;
            if zeros > 31 {
                return Err(BitstreamError::Invalid("exp-golomb code"));
            }
        }
        let rest = self.bits(zeros)?;
        // zeros <= 31, so (1 << zeros) - 1 + rest fits in u64 and, for valid streams, in u32.
        let v = (1u64 << zeros) - 1 + u64::from(rest);
        u32::try_from(v).map_err(|_| BitstreamError::Invalid("exp-golomb code"))
    }

    /// Signed Exp-Golomb (`se(v)`).
    pub fn se(&mut self) -> Result<i32, BitstreamError> {
        let k = i64::from(self.ue()?);
        let v = if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) };
        Ok(v as i32)
    }
}

/// The fields of a sequence parameter set that muxers and SDP need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub profile_idc: u8,
    /// The byte of constraint_set flags (second byte of `profile-level-id`).
    pub constraint_flags: u8,
    pub level_idc: u8,
    pub seq_parameter_set_id: u32,
    pub chroma_format_idc: u32,
    pub bit_depth_luma: u32,
    /// Displayed width in pixels (after cropping).
    pub width: u32,
    /// Displayed height in pixels (after cropping).
    pub height: u32,
}

impl Sps {
    /// Parses an SPS NAL unit (header byte included, emulation prevention bytes allowed).
    pub fn parse(nal: &[u8]) -> Result<Sps, BitstreamError> {
        let first = *nal.first().ok_or(BitstreamError::Truncated)?;
        if nal_type(first) != NAL_SPS {
            return Err(BitstreamError::Invalid("SPS NAL type"));
        }
        let rbsp = remove_emulation_prevention(&nal[1..]);
        let mut r = BitReader::new(&rbsp);
        let profile_idc = r.bits(8)? as u8;
        let constraint_flags = r.bits(8)? as u8;
        let level_idc = r.bits(8)? as u8;
        let seq_parameter_set_id = r.ue()?;
        if seq_parameter_set_id > 31 {
            return Err(BitstreamError::Invalid("seq_parameter_set_id"));
        }
        let mut chroma_format_idc = 1;
        let mut separate_colour_plane = false;
        let mut bit_depth_luma = 8;
        if matches!(profile_idc, 100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135) {
            chroma_format_idc = r.ue()?;
            if chroma_format_idc > 3 {
                return Err(BitstreamError::Invalid("chroma_format_idc"));
            }
            if chroma_format_idc == 3 {
                separate_colour_plane = r.bit()?;
            }
            bit_depth_luma = r.ue()?.saturating_add(8);
            let _bit_depth_chroma = r.ue()?;
            let _qpprime_y_zero_transform_bypass = r.bit()?;
            if r.bit()? {
                // seq_scaling_matrix_present_flag: skip the scaling lists.
                let lists = if chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..lists {
                    if r.bit()? {
                        skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                    }
                }
            }
        }
        let _log2_max_frame_num_minus4 = r.ue()?;
        match r.ue()? {
            0 => {
                let _log2_max_pic_order_cnt_lsb_minus4 = r.ue()?;
            }
            1 => {
                let _delta_pic_order_always_zero = r.bit()?;
                let _offset_for_non_ref_pic = r.se()?;
                let _offset_for_top_to_bottom_field = r.se()?;
                let cycle = r.ue()?;
                if cycle > 255 {
                    return Err(BitstreamError::Invalid("num_ref_frames_in_pic_order_cnt_cycle"));
                }
                for _ in 0..cycle {
                    r.se()?;
                }
            }
            2 => {}
            _ => return Err(BitstreamError::Invalid("pic_order_cnt_type")),
        }
        let _max_num_ref_frames = r.ue()?;
        let _gaps_in_frame_num_allowed = r.bit()?;
        let width_mbs = u64::from(r.ue()?) + 1;
        let height_map_units = u64::from(r.ue()?) + 1;
        let frame_mbs_only = r.bit()?;
        if !frame_mbs_only {
            let _mb_adaptive_frame_field = r.bit()?;
        }
        let _direct_8x8_inference = r.bit()?;
        let (mut crop_l, mut crop_r, mut crop_t, mut crop_b) = (0u64, 0u64, 0u64, 0u64);
        if r.bit()? {
            crop_l = r.ue()?.into();
            crop_r = r.ue()?.into();
            crop_t = r.ue()?.into();
            crop_b = r.ue()?.into();
        }
        let field_factor = if frame_mbs_only { 1 } else { 2 };
        let chroma_array_type = if separate_colour_plane { 0 } else { chroma_format_idc };
        let (crop_x, crop_y) = match chroma_array_type {
            0 => (1, field_factor),
            1 => (2, 2 * field_factor),
            2 => (2, field_factor),
            _ => (1, field_factor),
        };
        let full_w = width_mbs * 16;
        let full_h = height_map_units * 16 * field_factor;
        let width = full_w.checked_sub((crop_l + crop_r) * crop_x).ok_or(BitstreamError::Invalid("frame cropping"))?;
        let height = full_h.checked_sub((crop_t + crop_b) * crop_y).ok_or(BitstreamError::Invalid("frame cropping"))?;
        Ok(Sps {
            profile_idc,
            constraint_flags,
            level_idc,
            seq_parameter_set_id,
            chroma_format_idc,
            bit_depth_luma,
            width: u32::try_from(width).map_err(|_| BitstreamError::Invalid("width"))?,
            height: u32::try_from(height).map_err(|_| BitstreamError::Invalid("height"))?,
        })
    }

    /// `profile-level-id` for SDP.
    pub fn profile_level_id(&self) -> String {
        format!("{:02x}{:02x}{:02x}", self.profile_idc, self.constraint_flags, self.level_idc)
    }
}

fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), BitstreamError> {
    let mut last = 8i32;
    let mut next = 8i32;
    for _ in 0..size {
        if next != 0 {
            let delta = r.se()?;
            next = (last + delta).rem_euclid(256);
        }
        if next != 0 {
            last = next;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // 1280x720 High profile SPS (x264), and a 1920x1080 one with cropping (1088 coded rows).
    const SPS_720P: &[u8] = &[
        0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00,
        0x00, 0x03, 0x03, 0xc0, 0xf1, 0x83, 0x19, 0x60,
    ];
    const SPS_1080P: &[u8] = &[
        0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00, 0x03, 0x00, 0x04, 0x00,
        0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
    ];
    // Baseline 640x480 (Camera style, sprop from an SDP).
    const SPS_BASELINE_B64: &str = "Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I";

    #[test]
    fn sps_dimensions() {
        let s = Sps::parse(SPS_720P).unwrap();
        assert_eq!((s.width, s.height, s.profile_idc, s.level_idc), (1280, 720, 100, 31));
        assert_eq!(s.profile_level_id(), "64001f");
        let s = Sps::parse(SPS_1080P).unwrap();
        assert_eq!((s.width, s.height), (1920, 1080));
        let nal = base64_decode(SPS_BASELINE_B64).unwrap();
        let s = Sps::parse(&nal).unwrap();
        assert_eq!((s.profile_idc, s.width, s.height), (66, 640, 480));
        assert_eq!(profile_level_id(&nal).as_deref(), Some("42c01e"));
    }

    #[test]
    fn sps_truncated_never_panics() {
        for n in 0..SPS_1080P.len() {
            let _ = Sps::parse(&SPS_1080P[..n]);
        }
        assert!(Sps::parse(&[0x67]).is_err());
        assert!(Sps::parse(&[0x68, 1, 2, 3]).is_err());
        // 32+ leading zeros in an Exp-Golomb code.
        assert!(Sps::parse(&[0x67, 0x64, 0, 0x1f, 0, 0, 0, 0, 0, 0]).is_err());
    }

    #[test]
    fn annexb_round_trip() {
        let stream = [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 5, 0];
        let nals: Vec<&[u8]> = annexb_nals(&stream).collect();
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3], &[0x65, 4, 5]]);
        let avcc = annexb_to_avcc(&stream);
        assert_eq!(avcc, [0, 0, 0, 3, 0x67, 1, 2, 0, 0, 0, 2, 0x68, 3, 0, 0, 0, 3, 0x65, 4, 5]);
        let back: Vec<&[u8]> = avcc_nals(&avcc).collect();
        assert_eq!(back, nals);
        assert_eq!(annexb_nals(&avcc_to_annexb(&avcc)).count(), 3);
        assert_eq!(annexb_nals(&[1, 2, 3]).count(), 0);
    }

    #[test]
    fn avcc_bounds() {
        let mut it = avcc_nals(&[0, 0, 0, 9, 1, 2]);
        assert_eq!(it.next(), None);
        assert!(it.truncated());
        let mut it = avcc_nals(&[0, 0, 0, 1, 7, 0, 0]);
        assert_eq!(it.next(), Some(&[7][..]));
        assert_eq!(it.next(), None);
        assert!(it.truncated());
    }

    #[test]
    fn sprop() {
        let fmtp = "packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==";
        let (sps, pps) = parse_sprop_parameter_sets(fmtp);
        assert_eq!(sps.len(), 1);
        assert_eq!(pps[0].as_ref(), &[0x68, 0xcb, 0x8c, 0xb2]);
        assert_eq!(sprop_parameter_sets(&sps[0], &pps[0]), "Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==");
        assert_eq!(parse_sprop_parameter_sets("sprop-parameter-sets=!!,"), (vec![], vec![]));
        assert_eq!(base64_encode(b"ab"), "YWI=");
        assert_eq!(base64_decode("YWI").unwrap(), b"ab");
    }

    #[test]
    fn emulation_prevention() {
        assert_eq!(remove_emulation_prevention(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]), [0, 0, 1, 0, 0, 0, 0]);
    }
}
