//! AV1, VP9 and MJPEG video in fMP4, as MediaMTX (bluenviron/mediacommon) records them:
//!
//! - AV1: `av01` with `av1C` (AV1CodecConfigurationRecord: marker/version 0x81, profile, level, tier,
//!   bit depth and chroma fields, then the sequence header OBU). Samples are temporal units of OBUs with
//!   size fields, temporal delimiters removed (AV1-ISOBMFF §2.4).
//! - VP9: `vp09` with `vpcC` (VPCodecConfigurationRecord, version 1: profile, level, bit depth, chroma
//!   subsampling, range), from the keyframe's uncompressed header. Samples are frames or superframes as
//!   they come.
//! - MJPEG: `mp4v` whose `esds` has objectTypeIndication 0x6C (ISO/IEC 10918-1) and no decoder specific
//!   info; width and height from the JPEG's start-of-frame. Every sample is a whole JPEG and a sync sample.
//!
//! Configuration comes from the track's fmtp `config=` where a demuxer gave the record (Enhanced
//! RTMP/FLV's `av1C`/`vpcC`), else from the first keyframe. Everything here reads network input: every
//! read is bounds-checked, a malformed header is `None`, never a panic.

use bytes::Bytes;
use media::h264::BitReader;
use media::{codec, Codec};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisualCodec {
    Av1,
    Vp9,
    Mjpeg,
}

impl VisualCodec {
    pub fn from_name(name: &str) -> Option<VisualCodec> {
        match name {
            codec::AV1 => Some(VisualCodec::Av1),
            codec::VP9 => Some(VisualCodec::Vp9),
            codec::JPEG => Some(VisualCodec::Mjpeg),
            _ => None,
        }
    }
}

/// What an AV1, VP9 or MJPEG sample entry needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Visual {
    pub codec: VisualCodec,
    pub width: u32,
    pub height: u32,
    /// The body of the `av1C` box (AV1) or of the `vpcC` full box, version and flags included (VP9);
    /// empty for MJPEG.
    pub record: Vec<u8>,
}

impl Visual {
    /// From the codec alone: AV1 whose fmtp `config=` is an `av1C` holding its sequence header. VP9 and
    /// MJPEG need a keyframe for their picture size.
    pub fn from_codec(c: &Codec) -> Option<Visual> {
        if VisualCodec::from_name(&c.name)? != VisualCodec::Av1 {
            return None;
        }
        let record = unhex(c.fmtp_param("config")?)?;
        if record.len() < 4 || record[0] != 0x81 {
            return None;
        }
        let seq = obus(&record[4..]).find(|o| o.kind == OBU_SEQUENCE_HEADER)?;
        let sh = SequenceHeader::parse(seq.payload)?;
        Some(Visual { codec: VisualCodec::Av1, width: sh.width, height: sh.height, record })
    }

    /// From a keyframe's payload (AV1: a temporal unit with its sequence header; VP9: a frame or
    /// superframe whose first frame is a keyframe; MJPEG: a JPEG). The fmtp's `config=` record, if any,
    /// is kept for VP9 (its level and colour fields), the picture size taken from the frame.
    pub fn from_keyframe(c: &Codec, payload: &[u8]) -> Option<Visual> {
        match VisualCodec::from_name(&c.name)? {
            VisualCodec::Av1 => {
                let seq = obus(payload).find(|o| o.kind == OBU_SEQUENCE_HEADER)?;
                let sh = SequenceHeader::parse(seq.payload)?;
                Some(Visual { codec: VisualCodec::Av1, width: sh.width, height: sh.height, record: sh.av1c(&seq) })
            }
            VisualCodec::Vp9 => {
                let h = Vp9Header::parse(payload)?;
                let given = c.fmtp_param("config").and_then(unhex).filter(|r| r.len() >= 12 && r[0] == 1);
                let record = given.unwrap_or_else(|| h.vpcc());
                Some(Visual { codec: VisualCodec::Vp9, width: h.width, height: h.height, record })
            }
            VisualCodec::Mjpeg => {
                let (width, height) = jpeg_size(payload)?;
                Some(Visual { codec: VisualCodec::Mjpeg, width, height, record: Vec::new() })
            }
        }
    }

    /// RFC 6381 / codec-string form: `av01.0.04M.08`, `vp09.00.21.08`, `mp4v.6C`.
    pub fn codec_string(&self) -> String {
        let r = &self.record;
        match self.codec {
            VisualCodec::Av1 if r.len() >= 4 => {
                let (profile, level, tier) = (r[1] >> 5, r[1] & 0x1f, r[2] >> 7);
                let depth = match (r[2] >> 6 & 1, r[2] >> 5 & 1) {
                    (1, 1) => 12,
                    (1, 0) => 10,
                    _ => 8,
                };
                format!("av01.{profile}.{level:02}{}.{depth:02}", if tier == 1 { 'H' } else { 'M' })
            }
            VisualCodec::Vp9 if r.len() >= 7 => format!("vp09.{:02}.{:02}.{:02}", r[4], r[5], r[6] >> 4),
            VisualCodec::Av1 => "av01.0.01M.08".into(),
            VisualCodec::Vp9 => "vp09.00.10.08".into(),
            VisualCodec::Mjpeg => "mp4v.6C".into(),
        }
    }

    /// The sample as fMP4 stores it: AV1 without temporal delimiters (when every OBU has its size field,
    /// as FLV and the low-overhead format give them); VP9 and JPEG unchanged.
    pub fn sample(&self, payload: &Bytes) -> Bytes {
        if self.codec != VisualCodec::Av1 {
            return payload.clone();
        }
        let mut parts = Vec::new();
        let mut pos = 0;
        let mut any_td = false;
        for o in obus(payload) {
            if !o.has_size {
                return payload.clone();
            }
            if o.kind == OBU_TEMPORAL_DELIMITER || o.kind == OBU_PADDING {
                any_td = true;
            } else {
                parts.push(pos..pos + o.total);
            }
            pos += o.total;
        }
        if !any_td || pos != payload.len() {
            return payload.clone();
        }
        let mut out = Vec::with_capacity(payload.len());
        for r in parts {
            out.extend_from_slice(&payload[r]);
        }
        Bytes::from(out)
    }
}

/// What a reader of a stream would notice as another picture: the sample entry's fields. For the
/// recorder's "new parameters, new segment" check; `None` when the frame is no keyframe of these codecs.
pub fn keyframe_signature(c: &Codec, payload: &[u8]) -> Option<Vec<u8>> {
    let v = Visual::from_keyframe(c, payload)?;
    let mut sig = v.width.to_be_bytes().to_vec();
    sig.extend_from_slice(&v.height.to_be_bytes());
    sig.extend_from_slice(&v.record);
    Some(sig)
}

const OBU_SEQUENCE_HEADER: u8 = 1;
const OBU_TEMPORAL_DELIMITER: u8 = 2;
const OBU_PADDING: u8 = 15;

/// One OBU of a temporal unit.
struct Obu<'a> {
    kind: u8,
    /// The header byte(s) as they came (with `obu_has_size_field` as given).
    header: &'a [u8],
    has_size: bool,
    payload: &'a [u8],
    /// Bytes of the whole OBU (header, size field, payload).
    total: usize,
}

/// The OBUs of `data`; stops at the first malformed one. An OBU without a size field runs to the end.
fn obus(data: &[u8]) -> impl Iterator<Item = Obu<'_>> {
    let mut rest = data;
    std::iter::from_fn(move || {
        let h = *rest.first()?;
        if h & 0x80 != 0 {
            return None; // forbidden bit
        }
        let kind = (h >> 3) & 0x0f;
        let ext = h & 0x04 != 0;
        let has_size = h & 0x02 != 0;
        let head_len = 1 + usize::from(ext);
        if rest.len() < head_len {
            return None;
        }
        let (len, size_len) = if has_size { leb128(&rest[head_len..])? } else { (rest.len() - head_len, 0) };
        let start = head_len + size_len;
        let end = start.checked_add(len).filter(|e| *e <= rest.len())?;
        let o = Obu { kind, header: &rest[..head_len], has_size, payload: &rest[start..end], total: end };
        rest = &rest[end..];
        Some(o)
    })
}

/// An unsigned LEB128 value (at most 8 bytes, as AV1 allows) and its length.
pub(crate) fn leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut v: u64 = 0;
    for (i, b) in data.iter().take(8).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, i + 1));
        }
    }
    None
}

fn write_leb128(out: &mut Vec<u8>, mut v: usize) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return;
        }
        out.push(b | 0x80);
    }
}

/// The fields of an AV1 sequence header OBU (AV1 spec §5.5) that `av1C` and the sample entry need.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SequenceHeader {
    profile: u8,
    level: u8,
    tier: u8,
    high_bitdepth: bool,
    twelve_bit: bool,
    mono: bool,
    subsampling_x: bool,
    subsampling_y: bool,
    chroma_sample_position: u8,
    width: u32,
    height: u32,
}

impl SequenceHeader {
    fn parse(payload: &[u8]) -> Option<SequenceHeader> {
        Self::read(&mut BitReader::new(payload)).ok()
    }

    fn read(r: &mut BitReader<'_>) -> Result<SequenceHeader, media::h264::BitstreamError> {
        let profile = r.bits(3)? as u8;
        let _still_picture = r.bit()?;
        let reduced = r.bit()?;
        let (mut level, mut tier) = (0u8, 0u8);
        if reduced {
            level = r.bits(5)? as u8;
        } else {
            let timing_info = r.bit()?;
            if timing_info {
                r.skip(64)?;
                if r.bit()? {
                    uvlc(r)?; // num_ticks_per_picture_minus_1
                }
            }
            let decoder_model = timing_info && r.bit()?;
            let mut buffer_delay_len = 0;
            if decoder_model {
                buffer_delay_len = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
            let initial_display_delay = r.bit()?;
            let points = r.bits(5)? + 1;
            for i in 0..points {
                r.skip(12)?; // operating_point_idc
                let l = r.bits(5)? as u8;
                let t = if l > 7 { r.bits(1)? as u8 } else { 0 };
                if i == 0 {
                    (level, tier) = (l, t);
                }
                if decoder_model && r.bit()? {
                    r.skip(2 * buffer_delay_len as usize + 1)?;
                }
                if initial_display_delay && r.bit()? {
                    r.skip(4)?;
                }
            }
        }
        let width_bits = r.bits(4)? + 1;
        let height_bits = r.bits(4)? + 1;
        let width = r.bits(width_bits)?.saturating_add(1);
        let height = r.bits(height_bits)?.saturating_add(1);
        if !reduced && r.bit()? {
            r.skip(4 + 3)?; // delta_frame_id_length_minus_2, additional_frame_id_length_minus_1
        }
        r.skip(3)?; // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
        if !reduced {
            r.skip(4)?; // interintra compound, masked compound, warped motion, dual filter
            let order_hint = r.bit()?;
            if order_hint {
                r.skip(2)?; // jnt_comp, ref_frame_mvs
            }
            let force_screen_content = if r.bit()? { 2 } else { r.bits(1)? };
            if force_screen_content > 0 && !r.bit()? {
                r.skip(1)?; // seq_force_integer_mv
            }
            if order_hint {
                r.skip(3)?;
            }
        }
        r.skip(3)?; // enable_superres, enable_cdef, enable_restoration
                    // color_config (§5.5.2)
        let high_bitdepth = r.bit()?;
        let twelve_bit = profile == 2 && high_bitdepth && r.bit()?;
        let mono = profile != 1 && r.bit()?;
        let (mut cp, mut tc, mut mc) = (2, 2, 2);
        if r.bit()? {
            cp = r.bits(8)?;
            tc = r.bits(8)?;
            mc = r.bits(8)?;
        }
        let (mut ssx, mut ssy, mut csp) = (true, true, 0u8);
        if mono {
            r.skip(1)?; // color_range
        } else if cp == 1 && tc == 13 && mc == 0 {
            (ssx, ssy) = (false, false);
        } else {
            r.skip(1)?; // color_range
            match profile {
                0 => {}
                1 => (ssx, ssy) = (false, false),
                _ if twelve_bit => {
                    ssx = r.bit()?;
                    ssy = ssx && r.bit()?;
                }
                _ => (ssx, ssy) = (true, false),
            }
            if ssx && ssy {
                csp = r.bits(2)? as u8;
            }
        }
        Ok(SequenceHeader {
            profile,
            level,
            tier,
            high_bitdepth,
            twelve_bit,
            mono,
            subsampling_x: ssx,
            subsampling_y: ssy,
            chroma_sample_position: csp,
            width,
            height,
        })
    }

    /// The `av1C` body: the fields, no initial presentation delay, and `seq` with its size field.
    fn av1c(&self, seq: &Obu<'_>) -> Vec<u8> {
        let b = |v: bool, shift: u8| u8::from(v) << shift;
        let mut out = vec![
            0x81,
            (self.profile << 5) | (self.level & 0x1f),
            (self.tier << 7)
                | b(self.high_bitdepth, 6)
                | b(self.twelve_bit, 5)
                | b(self.mono, 4)
                | b(self.subsampling_x, 3)
                | b(self.subsampling_y, 2)
                | (self.chroma_sample_position & 3),
            0,
        ];
        out.push(seq.header[0] | 0x02);
        out.extend_from_slice(&seq.header[1..]);
        write_leb128(&mut out, seq.payload.len());
        out.extend_from_slice(seq.payload);
        out
    }
}

fn uvlc(r: &mut BitReader<'_>) -> Result<u32, media::h264::BitstreamError> {
    let mut zeros = 0;
    while !r.bit()? {
        zeros += 1;
        if zeros >= 32 {
            return Ok(u32::MAX);
        }
    }
    Ok(r.bits(zeros)?.saturating_add((1u32 << zeros) - 1))
}

/// The fields of a VP9 keyframe's uncompressed header (VP9 spec §6.2) that `vpcC` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Vp9Header {
    profile: u8,
    bit_depth: u8,
    /// vpcC's chroma_subsampling: 1 = 4:2:0 (colocated), 2 = 4:2:2, 3 = 4:4:4.
    chroma: u8,
    full_range: bool,
    width: u32,
    height: u32,
}

impl Vp9Header {
    /// The header of the first frame of `frame` (a superframe's frames are in order, the first one is
    /// the keyframe); `None` unless it is a keyframe.
    fn parse(frame: &[u8]) -> Option<Vp9Header> {
        Self::read(&mut BitReader::new(frame)).ok().flatten()
    }

    fn read(r: &mut BitReader<'_>) -> Result<Option<Vp9Header>, media::h264::BitstreamError> {
        if r.bits(2)? != 2 {
            return Ok(None); // frame_marker
        }
        let low = r.bits(1)?;
        let profile = ((r.bits(1)? << 1) | low) as u8;
        if profile == 3 {
            r.skip(1)?;
        }
        if r.bit()? {
            return Ok(None); // show_existing_frame
        }
        if r.bit()? {
            return Ok(None); // frame_type 1: not a keyframe
        }
        r.skip(2)?; // show_frame, error_resilient_mode
        if r.bits(24)? != 0x49_83_42 {
            return Ok(None);
        }
        let bit_depth = if profile >= 2 {
            if r.bit()? {
                12
            } else {
                10
            }
        } else {
            8
        };
        let color_space = r.bits(3)?;
        let (mut full_range, mut chroma) = (true, 3);
        if color_space != 7 {
            full_range = r.bit()?;
            chroma = 1;
            if profile == 1 || profile == 3 {
                let ssx = r.bit()?;
                let ssy = r.bit()?;
                r.skip(1)?;
                chroma = match (ssx, ssy) {
                    (true, true) => 1,
                    (true, false) => 2,
                    _ => 3,
                };
            }
        } else if profile == 1 || profile == 3 {
            r.skip(1)?;
        }
        let width = r.bits(16)? + 1;
        let height = r.bits(16)? + 1;
        Ok(Some(Vp9Header { profile, bit_depth, chroma, full_range, width, height }))
    }

    /// The `vpcC` full box body (version 1): the level from the picture size (VP9 levels' maximum luma
    /// picture sizes), colour description unspecified (2).
    fn vpcc(&self) -> Vec<u8> {
        let luma = u64::from(self.width) * u64::from(self.height);
        let level = [
            (36_864, 10),
            (73_728, 11),
            (122_880, 20),
            (245_760, 21),
            (552_960, 30),
            (983_040, 31),
            (2_228_224, 40),
            (8_912_896, 50),
            (35_651_584, 60),
        ]
        .iter()
        .find(|(max, _)| luma <= *max)
        .map_or(62, |(_, l)| *l);
        vec![
            1,
            0,
            0,
            0,
            self.profile,
            level,
            (self.bit_depth << 4) | (self.chroma << 1) | u8::from(self.full_range),
            2,
            2,
            2,
            0,
            0,
        ]
    }
}

/// Width and height from a JPEG's start-of-frame segment.
pub fn jpeg_size(jpeg: &[u8]) -> Option<(u32, u32)> {
    if jpeg.get(..2)? != [0xff, 0xd8] {
        return None;
    }
    let mut pos = 2;
    loop {
        if *jpeg.get(pos)? != 0xff {
            return None;
        }
        let marker = *jpeg.get(pos + 1)?;
        if marker == 0xff {
            pos += 1; // fill byte
            continue;
        }
        let len = usize::from(u16::from_be_bytes([*jpeg.get(pos + 2)?, *jpeg.get(pos + 3)?]));
        if matches!(marker, 0xc0..=0xcf) && !matches!(marker, 0xc4 | 0xc8 | 0xcc) {
            let h = u16::from_be_bytes([*jpeg.get(pos + 5)?, *jpeg.get(pos + 6)?]);
            let w = u16::from_be_bytes([*jpeg.get(pos + 7)?, *jpeg.get(pos + 8)?]);
            return (w > 0 && h > 0).then_some((u32::from(w), u32::from(h)));
        }
        if marker == 0xda || len < 2 {
            return None; // scan data before any SOF
        }
        pos += 2 + len;
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    let s = s.trim();
    if s.len() % 2 != 0 || !s.is_ascii() {
        return None;
    }
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The av1C ffmpeg writes for libsvtav1's 320x240 testsrc: profile 0, level 0, 4:2:0, and its
    /// sequence header OBU.
    const AV1C: &str = "81000C000A0B000000043CFFBC02F80040";

    #[test]
    fn av1_from_its_record() {
        let c = Codec::new("AV1", 90000, 0, 96).with_fmtp(format!("config={AV1C}"));
        let v = Visual::from_codec(&c).expect("sequence header in av1C");
        assert_eq!((v.width, v.height), (320, 240));
        assert_eq!(v.codec_string(), "av01.0.00M.08");
        // The same sequence header in a temporal unit (temporal delimiter first) gives the same av1C.
        let rec = unhex(AV1C).unwrap();
        let mut tu = vec![0x12, 0x00];
        tu.extend_from_slice(&rec[4..]);
        tu.extend_from_slice(&[0x32, 0x02, 0xaa, 0xbb]); // a frame OBU
        let k = Visual::from_keyframe(&Codec::new("AV1", 90000, 0, 96), &tu).unwrap();
        assert_eq!(k.record, rec);
        // Temporal delimiters leave the sample.
        let s = k.sample(&Bytes::from(tu.clone()));
        assert_eq!(&s[..], &tu[2..]);
        assert_eq!(keyframe_signature(&c, &tu), keyframe_signature(&c, &tu[2..]));
    }

    #[test]
    fn vp9_keyframe_header() {
        // The first bytes of libvpx-vp9's first frame of a 320x240 testsrc, yuv420p (profile 0) and
        // gbrp (profile 1, RGB: 4:4:4, full range).
        let yuv420 = unhex("824983420013F00EF60838241C184A00").unwrap();
        let rgb = unhex("A2498342E013F00EF60A38241C184A00").unwrap();
        let c = Codec::new("VP9", 90000, 0, 96);
        assert!(Visual::from_codec(&c).is_none(), "the size comes with a keyframe");
        let v = Visual::from_keyframe(&c, &yuv420).unwrap();
        assert_eq!((v.width, v.height), (320, 240));
        assert_eq!(v.record, [1, 0, 0, 0, 0, 20, 0x82, 2, 2, 2, 0, 0]);
        assert_eq!(v.codec_string(), "vp09.00.20.08");
        let v = Visual::from_keyframe(&c, &rgb).unwrap();
        assert_eq!((v.width, v.height, v.record[4], v.record[6]), (320, 240, 1, 0x87));
        assert_eq!(v.codec_string(), "vp09.01.20.08");
        // A record from the fmtp (FLV's vpcC) is kept.
        let given = c.clone().with_fmtp("config=010000000114870202000000");
        assert_eq!(Visual::from_keyframe(&given, &yuv420).unwrap().record[..6], [1, 0, 0, 0, 1, 0x14]);
        // An inter frame is no keyframe.
        let mut inter = yuv420.clone();
        inter[0] |= 0x04;
        assert!(Visual::from_keyframe(&c, &inter).is_none());
    }

    #[test]
    fn jpeg_sizes() {
        let mut j = vec![0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0];
        j.extend_from_slice(&[0xff, 0xc0, 0, 11, 8, 0, 240, 1, 64, 1, 1, 0x11, 0]);
        assert_eq!(jpeg_size(&j), Some((320, 240)));
        assert_eq!(jpeg_size(&j[..12]), None);
        assert_eq!(jpeg_size(b"not a jpeg"), None);
    }

    #[test]
    fn garbage_never_panics() {
        for c in ["AV1", "VP9", "JPEG"] {
            let c = Codec::new(c, 90000, 0, 96);
            for len in 0..64 {
                for fill in [0x00u8, 0x0a, 0x12, 0x82, 0xff] {
                    let data: Vec<u8> = (0..len).map(|i| fill.wrapping_add((i as u8).wrapping_mul(37))).collect();
                    let _ = Visual::from_keyframe(&c, &data);
                    let v = Visual { codec: VisualCodec::Av1, width: 1, height: 1, record: Vec::new() };
                    let _ = v.sample(&Bytes::from(data));
                }
            }
        }
    }
}
