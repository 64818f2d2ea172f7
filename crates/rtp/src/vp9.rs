//! VP9 uncompressed frame header (VP9 bitstream §6.2), as much as RTP needs: key frame or not, and a
//! key frame's picture size (for the scalability structure); superframe indexes (Annex B).

/// What the start of a VP9 frame says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    pub keyframe: bool,
    /// Key frames only.
    pub size: Option<(u16, u16)>,
}

struct Bits<'a> {
    data: &'a [u8],
    at: usize,
}

impl Bits<'_> {
    fn bit(&mut self) -> Option<u32> {
        let b = self.data.get(self.at / 8)?;
        let v = (b >> (7 - self.at % 8)) & 1;
        self.at += 1;
        Some(u32::from(v))
    }

    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0, |v, _| Some((v << 1) | self.bit()?))
    }
}

/// Parses the uncompressed header of the first frame in `data` (a frame or a superframe). None when it
/// is not a VP9 frame.
pub fn frame_header(data: &[u8]) -> Option<FrameHeader> {
    let mut r = Bits { data, at: 0 };
    if r.bits(2)? != 2 {
        return None;
    }
    let profile = r.bit()? | (r.bit()? << 1);
    if profile == 3 {
        r.bit()?;
    }
    if r.bit()? == 1 {
        // show_existing_frame: shows an earlier frame, no new picture.
        return Some(FrameHeader { keyframe: false, size: None });
    }
    let frame_type = r.bit()?;
    let _show_frame = r.bit()?;
    let _error_resilient = r.bit()?;
    if frame_type != 0 {
        return Some(FrameHeader { keyframe: false, size: None });
    }
    if r.bits(24)? != 0x49_83_42 {
        return None;
    }
    if profile >= 2 {
        r.bit()?;
    }
    let color_space = r.bits(3)?;
    if color_space != 7 {
        r.bit()?;
        if profile == 1 || profile == 3 {
            r.bits(3)?;
        }
    } else if profile == 1 || profile == 3 {
        r.bit()?;
    }
    let w = r.bits(16)? + 1;
    let h = r.bits(16)? + 1;
    // A 16-bit value plus one: 65536 does not fit, a header saying so is still a key frame.
    let size = u16::try_from(w).ok().zip(u16::try_from(h).ok());
    Some(FrameHeader { keyframe: true, size })
}

/// Appends a superframe index (VP9 Annex B) describing `sizes`, the frames already written in front.
/// At most 8 frames; sizes in 4 bytes each.
pub fn put_superframe_index(out: &mut Vec<u8>, sizes: &[usize]) {
    debug_assert!((1..=8).contains(&sizes.len()));
    let marker = 0xc0 | (3 << 3) | (sizes.len() as u8 - 1);
    out.push(marker);
    for s in sizes {
        out.extend_from_slice(&(*s as u32).to_le_bytes());
    }
    out.push(marker);
}

/// Whether `frame` ends with a superframe index.
pub fn has_superframe_index(frame: &[u8]) -> bool {
    let Some(&marker) = frame.last() else { return false };
    if marker & 0xe0 != 0xc0 {
        return false;
    }
    let frames = usize::from(marker & 0x07) + 1;
    let mag = usize::from((marker >> 3) & 0x03) + 1;
    let index = 2 + mag * frames;
    frame.len() >= index && frame[frame.len() - index] == marker
}

#[cfg(test)]
mod tests {
    use super::*;

    /// libvpx's 320x240 profile 0 key frame header start.
    pub(crate) const KEY_320X240: &[u8] = &[0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xf0, 0x0e, 0xf6, 0x00];

    #[test]
    fn key_and_inter() {
        assert_eq!(frame_header(KEY_320X240), Some(FrameHeader { keyframe: true, size: Some((320, 240)) }));
        // Inter frame: frame_type 1.
        assert_eq!(frame_header(&[0x86, 0]), Some(FrameHeader { keyframe: false, size: None }));
        // show_existing_frame.
        assert_eq!(frame_header(&[0x88]), Some(FrameHeader { keyframe: false, size: None }));
        assert_eq!(frame_header(&[0x00]), None);
        assert_eq!(frame_header(&[0x82, 0x49]), None);
    }

    #[test]
    fn superframe_index() {
        let mut v = vec![1, 2, 3];
        assert!(!has_superframe_index(&v));
        put_superframe_index(&mut v, &[1, 2]);
        assert!(has_superframe_index(&v));
        assert_eq!(v.len(), 3 + 2 + 8);
    }
}
