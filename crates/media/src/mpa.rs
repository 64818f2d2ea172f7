//! MPEG-1/2 audio (Layers I, II, III: MP2, MP3) frame headers: enough to split a byte stream into
//! frames and time them (MPEG-TS stream types 0x03/0x04, RTP payload type 14 of RFC 2250).

/// One frame header (the 4 bytes that start every MPEG audio frame).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// 1 (MPEG-1), 2 (MPEG-2) or 25 (MPEG-2.5).
    pub version: u8,
    /// 1, 2 or 3.
    pub layer: u8,
    pub bitrate_kbps: u32,
    pub sample_rate: u32,
    pub channels: u8,
    /// Bytes of the whole frame, header included.
    pub frame_len: usize,
    /// Samples (per channel) one frame holds.
    pub samples: u32,
}

const BITRATES_V1: [[u32; 15]; 3] = [
    [0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448],
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384],
    [0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320],
];
const BITRATES_V2: [[u32; 15]; 3] = [
    [0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
];

impl Header {
    /// Parses the header at the start of `b`; `None` when it is not one (no sync, reserved values,
    /// free-format bitrate, which has no frame length of its own).
    pub fn parse(b: &[u8]) -> Option<Header> {
        if b.len() < 4 || b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
            return None;
        }
        let version = match (b[1] >> 3) & 3 {
            0 => 25,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let layer = match (b[1] >> 1) & 3 {
            1 => 3,
            2 => 2,
            3 => 1,
            _ => return None,
        };
        let bitrate_index = usize::from(b[2] >> 4);
        let rate_index = usize::from((b[2] >> 2) & 3);
        if bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
            return None;
        }
        let table = if version == 1 { &BITRATES_V1 } else { &BITRATES_V2 };
        let bitrate_kbps = table[usize::from(layer - 1)][bitrate_index];
        let sample_rate = [44100, 48000, 32000][rate_index]
            / if version == 1 {
                1
            } else if version == 2 {
                2
            } else {
                4
            };
        let padding = u32::from((b[2] >> 1) & 1);
        let channels = if b[3] >> 6 == 3 { 1 } else { 2 };
        let (frame_len, samples) = match layer {
            1 => ((12 * bitrate_kbps * 1000 / sample_rate + padding) * 4, 384),
            2 => (144 * bitrate_kbps * 1000 / sample_rate + padding, 1152),
            _ if version == 1 => (144 * bitrate_kbps * 1000 / sample_rate + padding, 1152),
            _ => (72 * bitrate_kbps * 1000 / sample_rate + padding, 576),
        };
        Some(Header { version, layer, bitrate_kbps, sample_rate, channels, frame_len: frame_len as usize, samples })
    }

    /// The frame's duration in ticks of a `clock` Hz clock (rounded down).
    pub fn duration(&self, clock: u32) -> u32 {
        (u64::from(self.samples) * u64::from(clock) / u64::from(self.sample_rate)) as u32
    }
}

/// The whole frames at the start of `data`, each with its header; stops at the first byte that does not
/// start a frame or at a frame cut short. Bytes before the first header are skipped (a stream may start
/// mid-frame).
pub fn frames(data: &[u8]) -> impl Iterator<Item = (Header, &[u8])> {
    let start = (0..data.len()).find(|&i| Header::parse(&data[i..]).is_some()).unwrap_or(data.len());
    let mut rest = &data[start..];
    std::iter::from_fn(move || {
        let h = Header::parse(rest)?;
        if h.frame_len < 4 || h.frame_len > rest.len() {
            return None;
        }
        let (frame, tail) = rest.split_at(h.frame_len);
        rest = tail;
        Some((h, frame))
    })
}

/// Bytes the whole frames starting `data` need: the sum of their lengths as their headers give them
/// (the last may run past `data`); `None` when `data` does not start with a header.
pub fn expected_len(data: &[u8]) -> Option<usize> {
    let mut at = 0;
    let mut any = false;
    while let Some(h) = data.get(at..).and_then(Header::parse) {
        if h.frame_len < 4 {
            return None;
        }
        any = true;
        at += h.frame_len;
        if at >= data.len() {
            break;
        }
    }
    any.then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MPEG-1 Layer II, 128 kb/s, 48 kHz, stereo: 384-byte frames.
    pub fn mp2_frame(fill: u8) -> Vec<u8> {
        let mut f = vec![0xff, 0xfd, 0x84, 0x00];
        f.resize(384, fill);
        f
    }

    #[test]
    fn parses_layer_two_and_three() {
        let h = Header::parse(&mp2_frame(0)).unwrap();
        assert_eq!((h.version, h.layer, h.bitrate_kbps, h.sample_rate, h.channels), (1, 2, 128, 48000, 2));
        assert_eq!((h.frame_len, h.samples, h.duration(90000)), (384, 1152, 2160));
        // MPEG-1 Layer III 128 kb/s 44.1 kHz, padded, mono: 418 bytes.
        let h = Header::parse(&[0xff, 0xfb, 0x92, 0xc0]).unwrap();
        assert_eq!((h.layer, h.sample_rate, h.channels, h.frame_len, h.samples), (3, 44100, 1, 418, 1152));
        // MPEG-2 Layer III 64 kb/s 22.05 kHz: 576 samples.
        let h = Header::parse(&[0xff, 0xf3, 0x80, 0x00]).unwrap();
        assert_eq!((h.version, h.sample_rate, h.samples, h.frame_len), (2, 22050, 576, 208));
        for bad in [
            [0xff, 0xfd, 0x04, 0],
            [0xff, 0xfd, 0xf4, 0],
            [0xff, 0xfd, 0x8c, 0],
            [0xff, 0xe9, 0x84, 0],
            [0xff, 0xf9, 0x84, 0],
        ] {
            assert_eq!(Header::parse(&bad), None, "{bad:x?}");
        }
    }

    #[test]
    fn splits_frames() {
        let mut data = vec![0x00, 0x12];
        data.extend(mp2_frame(1));
        data.extend(mp2_frame(2));
        data.extend(&mp2_frame(3)[..100]);
        let got: Vec<_> = frames(&data).map(|(_, f)| f[4]).collect();
        assert_eq!(got, [1, 2]);
        assert_eq!(expected_len(&data[2..]), Some(3 * 384));
        assert_eq!(expected_len(&data[2..386]), Some(384));
        assert_eq!(expected_len(&data), None);
    }
}
