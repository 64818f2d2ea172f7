//! H.264 / H.265 decoder configuration shared by the muxers and demuxers: parameter sets from an fmtp or
//! from a keyframe, the AVCDecoderConfigurationRecord / HEVCDecoderConfigurationRecord (`avcC`/`hvcC`,
//! also FLV's sequence header), RFC 6381 codec strings, and fmtp lines for demuxed streams.

use crate::FormatError;
use bytes::Bytes;
use media::{codec, h264, h265, Codec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    pub fn from_name(name: &str) -> Option<VideoCodec> {
        match name {
            codec::H264 => Some(VideoCodec::H264),
            codec::H265 => Some(VideoCodec::H265),
            _ => None,
        }
    }

    /// Whether a frame payload (AVCC NAL units) holds a random access point.
    pub fn is_keyframe_nal(self, nal: &[u8]) -> bool {
        let Some(&h) = nal.first() else { return false };
        match self {
            VideoCodec::H264 => h264::nal_type(h) == h264::NAL_IDR,
            VideoCodec::H265 => h265::is_irap(h265::nal_type(h)),
        }
    }

    pub fn nal_type(self, nal: &[u8]) -> u8 {
        match (self, nal.first()) {
            (_, None) => 0xff,
            (VideoCodec::H264, Some(&h)) => h264::nal_type(h),
            (VideoCodec::H265, Some(&h)) => h265::nal_type(h),
        }
    }

    pub fn is_aud(self, nal: &[u8]) -> bool {
        let t = self.nal_type(nal);
        match self {
            VideoCodec::H264 => t == h264::NAL_AUD,
            VideoCodec::H265 => t == h265::NAL_AUD,
        }
    }
}

/// Parameter sets of one video stream plus what the SPS says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoConfig {
    pub codec: VideoCodec,
    pub vps: Vec<Bytes>,
    pub sps: Vec<Bytes>,
    pub pps: Vec<Bytes>,
    pub width: u32,
    pub height: u32,
}

impl VideoConfig {
    fn build(codec: VideoCodec, vps: Vec<Bytes>, sps: Vec<Bytes>, pps: Vec<Bytes>) -> Option<VideoConfig> {
        let first_sps = sps.first()?;
        pps.first()?;
        let (width, height) = match codec {
            VideoCodec::H264 => {
                let s = h264::Sps::parse(first_sps).ok()?;
                (s.width, s.height)
            }
            VideoCodec::H265 => {
                vps.first()?;
                let s = h265::Sps::parse(first_sps).ok()?;
                (s.width, s.height)
            }
        };
        Some(VideoConfig { codec, vps, sps, pps, width, height })
    }

    /// From the `sprop-*` parameters of a codec's fmtp, when complete and parseable.
    pub fn from_codec(c: &Codec) -> Option<VideoConfig> {
        match VideoCodec::from_name(&c.name)? {
            VideoCodec::H264 => {
                let (sps, pps) = h264::parse_sprop_parameter_sets(&c.fmtp);
                Self::build(VideoCodec::H264, Vec::new(), sps, pps)
            }
            VideoCodec::H265 => {
                let p = h265::parse_sprop_parameter_sets(&c.fmtp);
                Self::build(VideoCodec::H265, p.vps, p.sps, p.pps)
            }
        }
    }

    /// From the in-band parameter sets of an AVCC frame payload.
    pub fn from_nals<'a>(codec: VideoCodec, nals: impl Iterator<Item = &'a [u8]>) -> Option<VideoConfig> {
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        for nal in nals {
            let t = codec.nal_type(nal);
            let list = match (codec, t) {
                (VideoCodec::H264, h264::NAL_SPS) | (VideoCodec::H265, h265::NAL_SPS) => &mut sps,
                (VideoCodec::H264, h264::NAL_PPS) | (VideoCodec::H265, h265::NAL_PPS) => &mut pps,
                (VideoCodec::H265, h265::NAL_VPS) => &mut vps,
                _ => continue,
            };
            if !list.iter().any(|n: &Bytes| n[..] == *nal) {
                list.push(Bytes::copy_from_slice(nal));
            }
        }
        Self::build(codec, vps, sps, pps)
    }

    /// All parameter sets in decoding order (VPS, SPS, PPS).
    pub fn parameter_sets(&self) -> impl Iterator<Item = &Bytes> {
        self.vps.iter().chain(&self.sps).chain(&self.pps)
    }

    /// `avcC` / `hvcC` payload (the decoder configuration record), 4-byte NAL lengths.
    pub fn record(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self.codec {
            VideoCodec::H264 => {
                let sps = &self.sps[0];
                out.push(1);
                out.extend_from_slice(sps.get(1..4).unwrap_or(&[0x42, 0, 0x1f]));
                out.push(0xff); // 6 reserved bits, lengthSizeMinusOne = 3
                out.push(0xe0 | (self.sps.len().min(31) as u8));
                for s in self.sps.iter().take(31) {
                    out.extend_from_slice(&(s.len().min(0xffff) as u16).to_be_bytes());
                    out.extend_from_slice(&s[..s.len().min(0xffff)]);
                }
                out.push(self.pps.len().min(255) as u8);
                for p in self.pps.iter().take(255) {
                    out.extend_from_slice(&(p.len().min(0xffff) as u16).to_be_bytes());
                    out.extend_from_slice(&p[..p.len().min(0xffff)]);
                }
                // ISO 14496-15 5.3.3.1.2: High profiles carry chroma format and bit depths.
                if let Ok(s) = h264::Sps::parse(sps) {
                    if matches!(s.profile_idc, 100 | 110 | 122 | 144) {
                        let depth = s.bit_depth_luma.saturating_sub(8).min(7) as u8;
                        out.push(0xfc | (s.chroma_format_idc & 3) as u8);
                        out.push(0xf8 | depth);
                        out.push(0xf8 | depth);
                        out.push(0); // numOfSequenceParameterSetExt
                    }
                }
            }
            VideoCodec::H265 => {
                // The SPS parsed in `build`, so it parses again.
                let s = h265::Sps::parse(&self.sps[0]).ok();
                out.push(1);
                match &s {
                    Some(s) => {
                        out.push(
                            (s.general_profile_space << 6)
                                | (u8::from(s.general_tier_flag) << 5)
                                | s.general_profile_idc,
                        );
                        out.extend_from_slice(&s.general_profile_compatibility_flags.to_be_bytes());
                        out.extend_from_slice(&s.general_constraint_indicator_flags.to_be_bytes()[2..]);
                        out.push(s.general_level_idc);
                    }
                    None => out.extend_from_slice(&[1, 0x60, 0, 0, 0, 0, 0, 0, 0, 0, 0, 93]),
                }
                out.extend_from_slice(&[0xf0, 0x00]); // min_spatial_segmentation_idc = 0
                out.push(0xfc); // parallelismType = 0
                out.push(0xfc | s.as_ref().map_or(1, |s| s.chroma_format_idc as u8 & 3));
                out.push(0xf8); // bitDepthLumaMinus8 = 0
                out.push(0xf8); // bitDepthChromaMinus8 = 0
                out.extend_from_slice(&[0, 0]); // avgFrameRate
                out.push(0x0f); // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, length 4
                out.push(3);
                for (t, list) in [(h265::NAL_VPS, &self.vps), (h265::NAL_SPS, &self.sps), (h265::NAL_PPS, &self.pps)] {
                    out.push(0x80 | t); // array_completeness = 1
                    out.extend_from_slice(&(list.len().min(0xffff) as u16).to_be_bytes());
                    for n in list.iter().take(0xffff) {
                        out.extend_from_slice(&(n.len().min(0xffff) as u16).to_be_bytes());
                        out.extend_from_slice(&n[..n.len().min(0xffff)]);
                    }
                }
            }
        }
        out
    }

    /// Parses an `avcC` / `hvcC` record (FLV sequence header). Returns the config and the NAL length size.
    pub fn parse_record(codec: VideoCodec, data: &[u8]) -> Result<(VideoConfig, usize), FormatError> {
        let bad = |d: &str| FormatError::invalid("decoder configuration record", d.to_string());
        let mut r = Reader { data, pos: 0 };
        let (mut vps, mut sps, mut pps) = (Vec::new(), Vec::new(), Vec::new());
        let length_size;
        match codec {
            VideoCodec::H264 => {
                if r.u8()? != 1 {
                    return Err(bad("avcC version is not 1"));
                }
                r.take(3)?;
                length_size = usize::from(r.u8()? & 3) + 1;
                let n = r.u8()? & 0x1f;
                for _ in 0..n {
                    let len = usize::from(r.u16()?);
                    sps.push(Bytes::copy_from_slice(r.take(len)?));
                }
                let n = r.u8()?;
                for _ in 0..n {
                    let len = usize::from(r.u16()?);
                    pps.push(Bytes::copy_from_slice(r.take(len)?));
                }
            }
            VideoCodec::H265 => {
                if r.u8()? != 1 {
                    return Err(bad("hvcC version is not 1"));
                }
                r.take(20)?;
                length_size = usize::from(r.u8()? & 3) + 1;
                let arrays = r.u8()?;
                for _ in 0..arrays {
                    let t = r.u8()? & 0x3f;
                    let n = r.u16()?;
                    for _ in 0..n {
                        let len = usize::from(r.u16()?);
                        let nal = Bytes::copy_from_slice(r.take(len)?);
                        match t {
                            h265::NAL_VPS => vps.push(nal),
                            h265::NAL_SPS => sps.push(nal),
                            h265::NAL_PPS => pps.push(nal),
                            _ => {}
                        }
                    }
                }
            }
        }
        let cfg = Self::build(codec, vps, sps, pps)
            .ok_or_else(|| bad("missing or unparseable parameter sets (SPS/PPS, VPS for H.265)"))?;
        Ok((cfg, length_size))
    }

    /// RFC 6381 `codecs` value: `avc1.64001F`, `hvc1.1.6.L93.B0`.
    pub fn codec_string(&self) -> String {
        match self.codec {
            VideoCodec::H264 => {
                let b = self.sps[0].get(1..4).unwrap_or(&[0x42, 0xc0, 0x1f]);
                format!("avc1.{:02X}{:02X}{:02X}", b[0], b[1], b[2])
            }
            VideoCodec::H265 => match h265::Sps::parse(&self.sps[0]) {
                Ok(s) => {
                    let space = ["", "A", "B", "C"][usize::from(s.general_profile_space & 3)];
                    let compat = s.general_profile_compatibility_flags.reverse_bits();
                    let tier = if s.general_tier_flag { 'H' } else { 'L' };
                    let mut out =
                        format!("hvc1.{space}{}.{compat:X}.{tier}{}", s.general_profile_idc, s.general_level_idc);
                    let c = s.general_constraint_indicator_flags.to_be_bytes();
                    let c = &c[2..];
                    let n = c.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
                    for b in &c[..n.max(1)] {
                        out.push_str(&format!(".{b:X}"));
                    }
                    out
                }
                Err(_) => "hvc1.1.6.L93.B0".to_string(),
            },
        }
    }

    /// The codec a demuxer announces: 90 kHz clock and the `sprop-*` fmtp.
    pub fn to_codec(&self) -> Codec {
        match self.codec {
            VideoCodec::H264 => {
                let mut fmtp = String::from("packetization-mode=1");
                if let Some(pli) = h264::profile_level_id(&self.sps[0]) {
                    fmtp.push_str(";profile-level-id=");
                    fmtp.push_str(&pli);
                }
                fmtp.push_str(";sprop-parameter-sets=");
                fmtp.push_str(&h264::sprop_parameter_sets(&self.sps[0], &self.pps[0]));
                Codec::new(codec::H264, 90000, 0, 96).with_fmtp(fmtp)
            }
            VideoCodec::H265 => {
                let b64 = |l: &[Bytes]| h264::base64_encode(&l[0]);
                let fmtp =
                    format!("sprop-vps={};sprop-sps={};sprop-pps={}", b64(&self.vps), b64(&self.sps), b64(&self.pps));
                Codec::new(codec::H265, 90000, 0, 96).with_fmtp(fmtp)
            }
        }
    }
}

/// Bounds-checked big-endian reader.
pub(crate) struct Reader<'a> {
    pub data: &'a [u8],
    pub pos: usize,
}

impl<'a> Reader<'a> {
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| {
            FormatError::invalid(
                "decoder configuration record",
                format!("truncated: needs {n} bytes at offset {}, has {}", self.pos, self.data.len()),
            )
        })?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
}

/// Rebuilds a keyframe payload so that it carries the parameter sets in front (AVCC), when it lacks
/// them; returns `None` when it already has an SPS.
pub fn with_parameter_sets(cfg: &VideoConfig, payload: &[u8]) -> Option<Vec<u8>> {
    let has_sps = h264::avcc_nals(payload).any(|n| {
        let t = cfg.codec.nal_type(n);
        matches!((cfg.codec, t), (VideoCodec::H264, h264::NAL_SPS) | (VideoCodec::H265, h265::NAL_SPS))
    });
    if has_sps {
        return None;
    }
    let mut out = Vec::with_capacity(payload.len() + 128);
    for ps in cfg.parameter_sets() {
        out.extend_from_slice(&(ps.len() as u32).to_be_bytes());
        out.extend_from_slice(ps);
    }
    out.extend_from_slice(payload);
    Some(out)
}
