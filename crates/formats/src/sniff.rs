//! Format detection from the first bytes of a stream (go2rtc's `tcp://` / `http://` "magic"): MPEG-TS,
//! FLV, MP4, MJPEG multipart, JPEG, H.264 / H.265 Annex B.

/// A detected stream format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    MpegTs,
    Flv,
    Mp4,
    /// `--boundary` multipart (MJPEG over HTTP without its headers).
    Multipart,
    /// A JPEG image, or raw concatenated JPEGs.
    Jpeg,
    H264,
    H265,
}

/// Bytes [`detect`] likes to see (it decides on fewer when it can).
pub const PREFIX_LEN: usize = 188 * 3;

/// Detects the format of a stream from its first bytes; `None` when unknown (or too few bytes).
pub fn detect(prefix: &[u8]) -> Option<Format> {
    if prefix.len() >= 188 && prefix[0] == 0x47 {
        // Every 188th byte a sync byte, as far as we can see (at least two packets).
        let n = prefix.len() / 188;
        if (0..n).all(|i| prefix[i * 188] == 0x47) && (n >= 2 || prefix.len() == 188) {
            return Some(Format::MpegTs);
        }
    }
    if prefix.starts_with(b"FLV\x01") {
        return Some(Format::Flv);
    }
    if prefix.len() >= 8 && matches!(&prefix[4..8], b"ftyp" | b"moov" | b"moof" | b"styp") {
        return Some(Format::Mp4);
    }
    if prefix.starts_with(&[0xff, 0xd8, 0xff]) {
        return Some(Format::Jpeg);
    }
    if prefix.starts_with(b"--") {
        // `--boundary` followed by a line end and headers.
        let line_end = prefix.iter().take(200).position(|&b| b == b'\n')?;
        if line_end > 2 && prefix[2..line_end].iter().all(|b| b.is_ascii_graphic() || *b == b'\r') {
            return Some(Format::Multipart);
        }
        return None;
    }
    annexb(prefix)
}

fn annexb(p: &[u8]) -> Option<Format> {
    let start = if p.starts_with(&[0, 0, 0, 1]) {
        4
    } else if p.starts_with(&[0, 0, 1]) {
        3
    } else {
        return None;
    };
    let h0 = *p.get(start)?;
    if h0 & 0x80 != 0 {
        return None; // forbidden_zero_bit
    }
    // H.265 first: its 2-byte header has layer 0 / temporal id 1 (second byte 0x01) for the NAL types a
    // stream starts with (VPS, SPS, PPS, AUD, SEI, IRAP).
    if p.get(start + 1) == Some(&0x01) && matches!((h0 >> 1) & 0x3f, 32..=35 | 39 | 19..=21) {
        return Some(Format::H265);
    }
    // H.264: SPS, PPS, AUD, SEI, IDR or non-IDR slice.
    match h0 & 0x1f {
        7 | 8 | 9 | 6 | 5 | 1 => Some(Format::H264),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects() {
        let mut ts = vec![0u8; 188 * 3];
        for i in 0..3 {
            ts[i * 188] = 0x47;
        }
        assert_eq!(detect(&ts), Some(Format::MpegTs));
        ts[188] = 0;
        assert_eq!(detect(&ts), None);
        assert_eq!(detect(b"FLV\x01\x05\0\0\0\x09"), Some(Format::Flv));
        assert_eq!(detect(b"\0\0\0\x1cftypiso5"), Some(Format::Mp4));
        assert_eq!(detect(&[0xff, 0xd8, 0xff, 0xe0]), Some(Format::Jpeg));
        assert_eq!(detect(b"--frame\r\nContent-Type: image/jpeg\r\n"), Some(Format::Multipart));
        assert_eq!(detect(&[0, 0, 0, 1, 0x67, 0x42]), Some(Format::H264));
        assert_eq!(detect(&[0, 0, 1, 0x09, 0xf0]), Some(Format::H264));
        assert_eq!(detect(&[0, 0, 0, 1, 0x40, 0x01, 0x0c]), Some(Format::H265));
        assert_eq!(detect(&[0, 0, 0, 1, 0x46, 0x01, 0x50]), Some(Format::H265), "H.265 AUD, not H.264 SEI");
        assert_eq!(detect(&[0, 0, 0, 1, 0x06, 0x05]), Some(Format::H264));
        assert_eq!(detect(&[0, 0, 0, 1, 0x80]), None);
        assert_eq!(detect(b"HTTP/1.1 200 OK"), None);
        assert_eq!(detect(b""), None);
        assert_eq!(detect(b"--"), None);
    }
}
