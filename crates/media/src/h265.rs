//! H.265 bitstream helpers: NAL unit types, `sprop-vps/sps/pps`, and SPS dimensions. The framing helpers
//! of [`crate::h264`] (Annex B, AVCC iteration) work for H.265 too: framing is the same.

use crate::h264::{base64_decode, fmtp_value, remove_emulation_prevention, BitReader, BitstreamError};
use bytes::Bytes;

pub const NAL_IDR_W_RADL: u8 = 19;
pub const NAL_IDR_N_LP: u8 = 20;
pub const NAL_CRA: u8 = 21;
pub const NAL_VPS: u8 = 32;
pub const NAL_SPS: u8 = 33;
pub const NAL_PPS: u8 = 34;
pub const NAL_AUD: u8 = 35;
pub const NAL_EOS: u8 = 36;
pub const NAL_EOB: u8 = 37;
pub const NAL_FILLER: u8 = 38;
pub const NAL_SEI_PREFIX: u8 = 39;
pub const NAL_SEI_SUFFIX: u8 = 40;
/// RTP aggregation packet (RFC 7798).
pub const NAL_AP: u8 = 48;
/// RTP fragmentation unit (RFC 7798).
pub const NAL_FU: u8 = 49;
/// RTP payload content information (RFC 7798), unsupported.
pub const NAL_PACI: u8 = 50;

/// Type of the NAL unit whose first header byte is `header0` (H.265 NAL headers are 2 bytes).
pub fn nal_type(header0: u8) -> u8 {
    (header0 >> 1) & 0x3f
}

/// True for picture data NAL units.
pub fn is_vcl(nal_type: u8) -> bool {
    nal_type < 32
}

/// True for random access points (BLA, IDR, CRA): a decoder can start there.
pub fn is_irap(nal_type: u8) -> bool {
    (16..=21).contains(&nal_type)
}

/// Parameter sets from an fmtp line's `sprop-vps`, `sprop-sps`, `sprop-pps` (each comma-separated base64).
/// Invalid entries are skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpropParameterSets {
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
}

pub fn parse_sprop_parameter_sets(fmtp: &str) -> SpropParameterSets {
    let get = |key: &str, want: u8| -> Vec<Bytes> {
        let Some(v) = fmtp_value(fmtp, key) else { return Vec::new() };
        v.split(',')
            .filter_map(base64_decode)
            .filter(|nal| nal.len() >= 2 && nal_type(nal[0]) == want)
            .map(Bytes::from)
            .collect()
    };
    SpropParameterSets {
        vps: get("sprop-vps", NAL_VPS),
        sps: get("sprop-sps", NAL_SPS),
        pps: get("sprop-pps", NAL_PPS),
    }
}

/// The SPS fields muxers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sps {
    pub general_profile_space: u8,
    pub general_tier_flag: bool,
    pub general_profile_idc: u8,
    pub general_profile_compatibility_flags: u32,
    /// 48 bits: progressive/interlaced/non-packed/frame-only flags and the reserved/constraint bits.
    pub general_constraint_indicator_flags: u64,
    pub general_level_idc: u8,
    pub chroma_format_idc: u32,
    /// Displayed width (after the conformance window).
    pub width: u32,
    /// Displayed height (after the conformance window).
    pub height: u32,
}

impl Sps {
    /// Parses an SPS NAL unit (2-byte header included, emulation prevention bytes allowed).
    pub fn parse(nal: &[u8]) -> Result<Sps, BitstreamError> {
        if nal.len() < 2 {
            return Err(BitstreamError::Truncated);
        }
        if nal_type(nal[0]) != NAL_SPS {
            return Err(BitstreamError::Invalid("SPS NAL type"));
        }
        let rbsp = remove_emulation_prevention(&nal[2..]);
        let mut r = BitReader::new(&rbsp);
        let _vps_id = r.bits(4)?;
        let max_sub_layers_minus1 = r.bits(3)? as usize;
        let _temporal_id_nesting = r.bit()?;
        // profile_tier_level(1, max_sub_layers_minus1)
        let general_profile_space = r.bits(2)? as u8;
        let general_tier_flag = r.bit()?;
        let general_profile_idc = r.bits(5)? as u8;
        let general_profile_compatibility_flags = r.bits(32)?;
        let hi = u64::from(r.bits(16)?);
        let lo = u64::from(r.bits(32)?);
        let general_constraint_indicator_flags = (hi << 32) | lo;
        let general_level_idc = r.bits(8)? as u8;
        let mut sub_profile = [false; 8];
        let mut sub_level = [false; 8];
        for i in 0..max_sub_layers_minus1 {
            sub_profile[i] = r.bit()?;
            sub_level[i] = r.bit()?;
        }
        if max_sub_layers_minus1 > 0 {
            r.skip(2 * (8 - max_sub_layers_minus1))?;
        }
        for i in 0..max_sub_layers_minus1 {
            if sub_profile[i] {
                r.skip(88)?;
            }
            if sub_level[i] {
                r.skip(8)?;
            }
        }
        let sps_id = r.ue()?;
        if sps_id > 15 {
            return Err(BitstreamError::Invalid("sps_seq_parameter_set_id"));
        }
        let chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(BitstreamError::Invalid("chroma_format_idc"));
        }
        let mut separate_colour_plane = false;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        let full_w = u64::from(r.ue()?);
        let full_h = u64::from(r.ue()?);
        let (mut l, mut rt, mut t, mut b) = (0u64, 0u64, 0u64, 0u64);
        if r.bit()? {
            l = r.ue()?.into();
            rt = r.ue()?.into();
            t = r.ue()?.into();
            b = r.ue()?.into();
        }
        let chroma = if separate_colour_plane { 0 } else { chroma_format_idc };
        let sub_w = if chroma == 1 || chroma == 2 { 2 } else { 1 };
        let sub_h = if chroma == 1 { 2 } else { 1 };
        let width = full_w.checked_sub((l + rt) * sub_w).ok_or(BitstreamError::Invalid("conformance window"))?;
        let height = full_h.checked_sub((t + b) * sub_h).ok_or(BitstreamError::Invalid("conformance window"))?;
        Ok(Sps {
            general_profile_space,
            general_tier_flag,
            general_profile_idc,
            general_profile_compatibility_flags,
            general_constraint_indicator_flags,
            general_level_idc,
            chroma_format_idc,
            width: u32::try_from(width).map_err(|_| BitstreamError::Invalid("width"))?,
            height: u32::try_from(height).map_err(|_| BitstreamError::Invalid("height"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // Produced by x265 (ffmpeg testsrc, yuv420p).
    const SPS_1080P: &str = "420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000c84";
    const SPS_720P: &str = "42010101600000030090000003000003005da00280802d165959a4932bc05a020000030002000003003210";

    #[test]
    fn sps_dimensions() {
        let s = Sps::parse(&hex(SPS_1080P)).unwrap();
        assert_eq!((s.width, s.height, s.general_profile_idc, s.general_level_idc), (1920, 1080, 1, 120));
        let s = Sps::parse(&hex(SPS_720P)).unwrap();
        assert_eq!((s.width, s.height, s.general_level_idc), (1280, 720, 93));
    }

    #[test]
    fn sps_truncated_never_panics() {
        let sps = hex(SPS_1080P);
        for n in 0..sps.len() {
            let _ = Sps::parse(&sps[..n]);
        }
        assert!(Sps::parse(&[0x40, 0x01, 0x0c]).is_err());
    }

    #[test]
    fn sprop() {
        let fmtp = "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwB4lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDlllZpJMrwFoCAAAADAIAAAAyE;sprop-pps=RAHBcrRiQA==";
        let p = parse_sprop_parameter_sets(fmtp);
        assert_eq!((p.vps.len(), p.sps.len(), p.pps.len()), (1, 1, 1));
        assert_eq!(p.pps[0].as_ref(), &hex("4401c172b46240")[..]);
        assert!(is_irap(nal_type(0x26)));
        assert!(!is_irap(nal_type(0x02)));
    }
}
