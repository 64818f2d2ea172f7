//! Raw elementary streams as programs write them to a pipe (`exec:` pipe mode, raw `tcp://` and
//! HTTP bodies): H.264 / H.265 Annex B, or MJPEG (concatenated JPEG images, with or without multipart
//! headers around them), detected from the first bytes. Bytes in, access units out.

use bytes::{Bytes, BytesMut};
use media::{codec, Codec};
use std::time::Instant;

/// A single frame read from a pipe may not exceed this.
pub const MAX_PIPE_FRAME: usize = 8 * 1024 * 1024;
const VIDEO_CLOCK: u32 = 90_000;

/// What a pipe carries, detected from its first bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PipeFormat {
    H264,
    H265,
    Mjpeg,
}

/// One access unit (H.264/H.265: 4-byte length-prefixed NAL units; MJPEG: one whole JPEG).
#[derive(Clone, Debug)]
pub struct PipeUnit {
    pub payload: Bytes,
    pub keyframe: bool,
    pub at: Instant,
}

/// A sans-IO parser of a child's stdout. Feed bytes with [`PipeParser::push`]; complete units come
/// out. Never panics on any input; every buffer is bounded by [`MAX_PIPE_FRAME`]. `at` (the time the
/// bytes arrived) is passed through to the units it completes.
pub struct PipeParser {
    buf: BytesMut,
    format: Option<PipeFormat>,
    /// Annex B: where to continue looking for the next start code.
    scan: usize,
    au: Vec<u8>,
    au_has_vcl: bool,
    au_key: bool,
    au_params: bool,
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    jpeg: JpegScan,
    /// Broken JPEG images skipped (the parser resynchronises on the next SOI), the last reason kept.
    pub errors: u64,
    pub last_error: Option<String>,
}

#[derive(Default)]
struct JpegScan {
    /// Position of the next marker to read (0 = looking for SOI).
    pos: usize,
    in_entropy: bool,
}

impl Default for PipeParser {
    fn default() -> Self {
        Self::new()
    }
}

impl PipeParser {
    pub fn new() -> PipeParser {
        PipeParser {
            buf: BytesMut::new(),
            format: None,
            scan: 0,
            au: Vec::new(),
            au_has_vcl: false,
            au_key: false,
            au_params: false,
            vps: None,
            sps: None,
            pps: None,
            jpeg: JpegScan::default(),
            errors: 0,
            last_error: None,
        }
    }

    pub fn format(&self) -> Option<PipeFormat> {
        self.format
    }

    /// The codec, once known (H.264/H.265 need their parameter sets first).
    pub fn codec(&self) -> Option<Codec> {
        match self.format? {
            PipeFormat::H264 => {
                let (sps, pps) = (self.sps.as_ref()?, self.pps.as_ref()?);
                let mut fmtp = format!(
                    "packetization-mode=1;sprop-parameter-sets={}",
                    media::h264::sprop_parameter_sets(sps, pps)
                );
                if let Some(pl) = media::h264::profile_level_id(sps) {
                    fmtp.push_str(&format!(";profile-level-id={pl}"));
                }
                Some(Codec::new(codec::H264, VIDEO_CLOCK, 0, 96).with_fmtp(fmtp))
            }
            PipeFormat::H265 => {
                let (vps, sps, pps) = (self.vps.as_ref()?, self.sps.as_ref()?, self.pps.as_ref()?);
                let b64 = media::h264::base64_encode;
                let fmtp = format!("sprop-vps={};sprop-sps={};sprop-pps={}", b64(vps), b64(sps), b64(pps));
                Some(Codec::new(codec::H265, VIDEO_CLOCK, 0, 96).with_fmtp(fmtp))
            }
            PipeFormat::Mjpeg => Some(Codec::new(codec::JPEG, VIDEO_CLOCK, 0, 26)),
        }
    }

    /// Feeds bytes; appends completed units to `out`.
    pub fn push(&mut self, data: &[u8], at: Instant, out: &mut Vec<PipeUnit>) -> Result<(), String> {
        self.buf.extend_from_slice(data);
        if self.format.is_none() {
            self.format = match detect(&self.buf) {
                Detect::Need => return Ok(()),
                Detect::Found(f) => Some(f),
                Detect::Unknown => {
                    let head: Vec<String> = self.buf.iter().take(8).map(|b| format!("{b:02x}")).collect();
                    return Err(format!(
                        "unsupported pipe format (first bytes {}; expected H.264/H.265 Annex B or MJPEG)",
                        head.join(" ")
                    ));
                }
            };
        }
        match self.format {
            Some(PipeFormat::Mjpeg) => self.parse_jpeg(at, out),
            Some(_) => self.parse_annexb(at, out),
            None => Ok(()),
        }
    }

    fn parse_annexb(&mut self, at: Instant, out: &mut Vec<PipeUnit>) -> Result<(), String> {
        loop {
            // The buffer starts at a start code (or with bytes to skip before the first one).
            let Some((_, first_end)) = find_start_code(&self.buf, 0) else {
                self.scan = self.buf.len().saturating_sub(3);
                if self.buf.len() > MAX_PIPE_FRAME {
                    return Err("no Annex B start code in 8 MiB of pipe data".into());
                }
                return Ok(());
            };
            let from = self.scan.max(first_end);
            let Some((next_start, _)) = find_start_code(&self.buf, from) else {
                self.scan = self.buf.len().saturating_sub(3).max(first_end);
                if self.buf.len() > MAX_PIPE_FRAME {
                    return Err(format!("a NAL unit from the pipe is larger than {MAX_PIPE_FRAME} bytes"));
                }
                return Ok(());
            };
            let nal = &self.buf[first_end..next_start];
            let len = nal.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
            let nal = nal[..len].to_vec();
            let _ = self.buf.split_to(next_start);
            self.scan = 0;
            if !nal.is_empty() {
                self.handle_nal(&nal, at, out)?;
            }
            // Finish the access unit as soon as the next NAL header shows a new one starts, rather
            // than when that NAL ends: one frame less latency.
            if self.au_has_vcl {
                if let Some((_, end)) = find_start_code(&self.buf, 0) {
                    if let Some(header) = self.buf.get(end..end + 3) {
                        if self.starts_au(header) {
                            self.finish_au(at, out);
                        }
                    }
                }
            }
        }
    }

    /// Whether a NAL unit with this header (its first 3 bytes) starts a new access unit.
    fn starts_au(&self, nal: &[u8]) -> bool {
        if self.format == Some(PipeFormat::H265) {
            let t = media::h265::nal_type(nal[0]);
            matches!(t, 32..=35 | 39 | 41..=44 | 48..=55) || (t < 32 && nal.get(2).is_some_and(|b| b & 0x80 != 0))
        } else {
            let t = media::h264::nal_type(nal[0]);
            matches!(t, 6..=9 | 14..=18) || ((1..=5).contains(&t) && nal.get(1).is_some_and(|b| b & 0x80 != 0))
        }
    }

    fn handle_nal(&mut self, nal: &[u8], at: Instant, out: &mut Vec<PipeUnit>) -> Result<(), String> {
        let h265 = self.format == Some(PipeFormat::H265);
        let starts_au = self.starts_au(nal);
        let (vcl, key, keep) = if h265 {
            let t = media::h265::nal_type(nal[0]);
            match t {
                32 => self.vps = Some(nal.to_vec()),
                33 => self.sps = Some(nal.to_vec()),
                34 => self.pps = Some(nal.to_vec()),
                _ => {}
            }
            (t < 32, (16..=23).contains(&t), !matches!(t, 35 | 38))
        } else {
            let t = media::h264::nal_type(nal[0]);
            match t {
                7 => self.sps = Some(nal.to_vec()),
                8 => self.pps = Some(nal.to_vec()),
                _ => {}
            }
            ((1..=5).contains(&t), t == 5, !matches!(t, 9 | 12))
        };
        if starts_au && self.au_has_vcl {
            self.finish_au(at, out);
        }
        if !keep {
            return Ok(());
        }
        if self.au.len() + nal.len() + 4 > MAX_PIPE_FRAME {
            return Err(format!("a frame from the pipe is larger than {MAX_PIPE_FRAME} bytes"));
        }
        let is_param = if h265 {
            matches!(media::h265::nal_type(nal[0]), 32..=34)
        } else {
            matches!(media::h264::nal_type(nal[0]), 7 | 8)
        };
        self.au_params |= is_param;
        self.au_has_vcl |= vcl;
        self.au_key |= key;
        // Length fits: bounded by MAX_PIPE_FRAME above.
        self.au.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        self.au.extend_from_slice(nal);
        Ok(())
    }

    fn finish_au(&mut self, at: Instant, out: &mut Vec<PipeUnit>) {
        let mut payload = std::mem::take(&mut self.au);
        if self.au_key && !self.au_params {
            // Every keyframe carries its parameter sets (the Frame contract).
            let mut with = Vec::with_capacity(payload.len() + 256);
            for ps in [&self.vps, &self.sps, &self.pps].into_iter().flatten() {
                with.extend_from_slice(&(ps.len() as u32).to_be_bytes());
                with.extend_from_slice(ps);
            }
            with.extend_from_slice(&payload);
            payload = with;
        }
        out.push(PipeUnit { payload: Bytes::from(payload), keyframe: self.au_key, at });
        self.au_has_vcl = false;
        self.au_key = false;
        self.au_params = false;
    }

    fn parse_jpeg(&mut self, at: Instant, out: &mut Vec<PipeUnit>) -> Result<(), String> {
        loop {
            if self.jpeg.pos == 0 {
                // Skip to the next SOI (multipart headers, boundaries, garbage).
                match self.buf.windows(2).position(|w| w == [0xFF, 0xD8]) {
                    Some(p) => {
                        let _ = self.buf.split_to(p);
                        self.jpeg.pos = 2;
                        self.jpeg.in_entropy = false;
                    }
                    None => {
                        let keep = usize::from(self.buf.last() == Some(&0xFF));
                        let drop = self.buf.len() - keep;
                        let _ = self.buf.split_to(drop);
                        return Ok(());
                    }
                }
            }
            match jpeg_scan(&self.buf, &mut self.jpeg) {
                Ok(Some(end)) => {
                    let jpeg = self.buf.split_to(end).freeze();
                    self.jpeg = JpegScan::default();
                    out.push(PipeUnit { payload: jpeg, keyframe: true, at });
                }
                Ok(None) => {
                    if self.buf.len() > MAX_PIPE_FRAME {
                        return Err(format!("a JPEG from the pipe is larger than {MAX_PIPE_FRAME} bytes"));
                    }
                    return Ok(());
                }
                Err(e) => {
                    // Resynchronise on the next SOI.
                    self.errors += 1;
                    self.last_error = Some(format!("bad JPEG ({e}), skipped"));
                    let _ = self.buf.split_to(2.min(self.buf.len()));
                    self.jpeg = JpegScan::default();
                }
            }
        }
    }
}

enum Detect {
    Need,
    Found(PipeFormat),
    Unknown,
}

fn detect(buf: &[u8]) -> Detect {
    // Leading `--boundary` or HTTP-like headers of multipart MJPEG.
    if buf.starts_with(b"--") || buf.starts_with(b"Content-") {
        return Detect::Found(PipeFormat::Mjpeg);
    }
    if buf.len() < 2 {
        return Detect::Need;
    }
    if buf[0] == 0xFF && buf[1] == 0xD8 {
        return Detect::Found(PipeFormat::Mjpeg);
    }
    let Some((_, end)) = find_start_code(buf, 0) else {
        return if buf.len() < 64 && buf.iter().all(|&b| b == 0) { Detect::Need } else { Detect::Unknown };
    };
    if end > 4 {
        return Detect::Unknown; // data before the start code: not a raw bitstream
    }
    let (Some(&b0), Some(&b1)) = (buf.get(end), buf.get(end + 1)) else { return Detect::Need };
    // H.265 VPS (0x40 0x01), AUD (0x46 0x01) or prefix SEI (0x4E 0x01): first, because H.265's AUD
    // header byte would read as an H.264 SEI.
    if matches!(b0, 0x40 | 0x42 | 0x44 | 0x46 | 0x4E) && b1 == 0x01 {
        return Detect::Found(PipeFormat::H265);
    }
    if b0 & 0x80 == 0 && matches!(b0 & 0x1F, 1 | 5..=9) {
        return Detect::Found(PipeFormat::H264);
    }
    Detect::Unknown
}

/// `(start of the code, first byte after it)` of the first `00 00 01` at or after `from`.
fn find_start_code(buf: &[u8], from: usize) -> Option<(usize, usize)> {
    let mut i = from;
    while i + 3 <= buf.len() {
        if buf[i + 2] > 1 {
            i += 3;
        } else if buf[i] == 0 && buf[i + 1] == 0 && buf[i + 2] == 1 {
            let start = if i > from && buf[i - 1] == 0 { i - 1 } else { i };
            return Some((start, i + 3));
        } else {
            i += 1;
        }
    }
    None
}

/// Walks the JPEG's marker segments from `s.pos` (skipping APPn payloads such as EXIF thumbnails by
/// their lengths) and its entropy-coded data; returns the end of the image (after EOI) once present.
fn jpeg_scan(buf: &[u8], s: &mut JpegScan) -> Result<Option<usize>, &'static str> {
    loop {
        if s.in_entropy {
            let mut j = s.pos;
            loop {
                if j + 1 >= buf.len() {
                    s.pos = j;
                    return Ok(None);
                }
                if buf[j] == 0xFF {
                    let m = buf[j + 1];
                    if m == 0x00 || (0xD0..=0xD7).contains(&m) || m == 0xFF {
                        j += if m == 0xFF { 1 } else { 2 };
                        continue;
                    }
                    s.pos = j;
                    s.in_entropy = false;
                    break;
                }
                j += 1;
            }
        }
        let i = s.pos;
        let (Some(&ff), Some(&marker)) = (buf.get(i), buf.get(i + 1)) else { return Ok(None) };
        if ff != 0xFF {
            return Err("expected a marker");
        }
        match marker {
            0xFF => s.pos += 1,
            0xD9 => return Ok(Some(i + 2)),
            0xD8 => return Err("SOI inside an image"),
            0x01 | 0xD0..=0xD7 => s.pos += 2,
            _ => {
                let (Some(&hi), Some(&lo)) = (buf.get(i + 2), buf.get(i + 3)) else { return Ok(None) };
                let len = usize::from(u16::from_be_bytes([hi, lo]));
                if len < 2 {
                    return Err("bad segment length");
                }
                s.pos = i + 2 + len;
                if marker == 0xDA {
                    s.in_entropy = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipe_parser_survives_garbage_and_bounds_frames() {
        // Unknown formats are refused.
        let mut units = Vec::new();
        let err = PipeParser::new().push(b"RIFF....WAVEfmt ", Instant::now(), &mut units).unwrap_err();
        assert!(err.contains("unsupported pipe format (first bytes 52 49 46 46"), "{err}");
        // Pseudo-random bytes after a valid start never panic.
        let mut x: u32 = 12345;
        for prefix in [&[0u8, 0, 0, 1, 0x67][..], &[0xFF, 0xD8][..], &[0, 0, 1, 0x40, 1][..]] {
            let mut p = PipeParser::new();
            let mut data = prefix.to_vec();
            for _ in 0..200_000 {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                data.push(match x >> 29 {
                    0 => 0,
                    1 => 1,
                    2 => 0xFF,
                    _ => (x >> 16) as u8,
                });
            }
            for chunk in data.chunks(777) {
                if p.push(chunk, Instant::now(), &mut units).is_err() {
                    break;
                }
            }
        }
        // A NAL unit that never ends is refused past the bound.
        let mut p = PipeParser::new();
        let mut res = p.push(&[0, 0, 0, 1, 0x65, 0x88], Instant::now(), &mut units);
        let chunk = vec![0x55u8; 1 << 20];
        for _ in 0..9 {
            res = res.and_then(|_| p.push(&chunk, Instant::now(), &mut units));
        }
        assert!(res.unwrap_err().contains("larger than"));
    }

    #[test]
    fn broken_jpeg_is_counted_and_skipped() {
        let good = [0xff, 0xd8, 0xff, 0xdb, 0x00, 0x04, 0x00, 0x00, 0xff, 0xda, 0x00, 0x02, 0x11, 0x22, 0xff, 0xd9];
        // SOI, then a byte where a marker must be.
        let mut data = vec![0xff, 0xd8, 0x12, 0x34];
        data.extend_from_slice(&good);
        let mut p = PipeParser::new();
        let mut units = Vec::new();
        p.push(&data, Instant::now(), &mut units).unwrap();
        assert_eq!(p.format(), Some(PipeFormat::Mjpeg));
        assert_eq!(units.len(), 1);
        assert_eq!(&units[0].payload[..], &good[..]);
        assert_eq!(p.errors, 1);
        assert!(p.last_error.as_deref().is_some_and(|e| e.contains("expected a marker")));
    }

    #[test]
    fn access_units_complete_when_the_next_one_starts() {
        let mut p = PipeParser::new();
        let mut units = Vec::new();
        let now = Instant::now();
        // SPS, PPS, IDR; then a non-IDR slice (first_mb_in_slice = 0: a new access unit).
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11];
        let mut data = Vec::new();
        for nal in [&sps[..], &[0x68, 0xcb, 0x8c, 0xb2], &[0x65, 0x88, 0x84], &[0x41, 0x9a, 0x02]] {
            data.extend_from_slice(&[0, 0, 0, 1]);
            data.extend_from_slice(nal);
        }
        data.extend_from_slice(&[0, 0, 0, 1, 0x41, 0x9a, 0x03]);
        p.push(&data, now, &mut units).unwrap();
        assert_eq!(p.format(), Some(PipeFormat::H264));
        assert_eq!(units.len(), 2, "{units:?}");
        assert!(units[0].keyframe && !units[1].keyframe);
        let types: Vec<u8> = media::h264::avcc_nals(&units[0].payload).map(|n| n[0] & 0x1f).collect();
        assert_eq!(types, [7, 8, 5]);
        assert_eq!(units[0].at, now);
        let codec = p.codec().unwrap();
        assert!(codec.fmtp.contains("profile-level-id=42c01e"), "{}", codec.fmtp);
    }
}
