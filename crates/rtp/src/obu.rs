//! AV1 open bitstream units (AV1 §5.3), as much as the RTP payload format needs: OBU headers, LEB128
//! sizes, and whether a temporal unit starts a coded video sequence.
//!
//! Frames carry AV1 as the low-overhead bitstream format: OBUs with `obu_has_size_field = 1`, no
//! temporal delimiters (as Enhanced RTMP/FLV and MP4 carry it).

use bytes::BufMut;

pub const OBU_SEQUENCE_HEADER: u8 = 1;
pub const OBU_TEMPORAL_DELIMITER: u8 = 2;
pub const OBU_FRAME_HEADER: u8 = 3;
pub const OBU_TILE_GROUP: u8 = 4;
pub const OBU_FRAME: u8 = 6;
pub const OBU_REDUNDANT_FRAME_HEADER: u8 = 7;
pub const OBU_TILE_LIST: u8 = 8;
pub const OBU_PADDING: u8 = 15;

/// One OBU: its header byte (with `obu_has_size_field` as found), the extension byte if any, and its
/// payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Obu<'a> {
    pub header: u8,
    pub extension: Option<u8>,
    pub payload: &'a [u8],
}

impl Obu<'_> {
    pub fn kind(&self) -> u8 {
        (self.header >> 3) & 0x0f
    }

    /// OBUs that RTP never carries (AV1 RTP §5: temporal delimiters and tile lists are removed by the
    /// sender and ignored by the receiver).
    pub fn is_dropped_in_rtp(&self) -> bool {
        matches!(self.kind(), OBU_TEMPORAL_DELIMITER | OBU_TILE_LIST)
    }

    /// Writes the OBU with a size field (the frame format).
    pub fn write_sized(&self, out: &mut impl BufMut) {
        out.put_u8(self.header | 0x02);
        if let Some(e) = self.extension {
            out.put_u8(e);
        }
        write_leb128(out, self.payload.len());
        out.put_slice(self.payload);
    }

    /// Bytes [`Obu::write_sized`] writes.
    pub fn sized_len(&self) -> usize {
        1 + usize::from(self.extension.is_some()) + leb128_len(self.payload.len()) + self.payload.len()
    }

    /// Writes the OBU without a size field (the RTP element format).
    pub fn write_unsized(&self, out: &mut impl BufMut) {
        out.put_u8(self.header & !0x02);
        if let Some(e) = self.extension {
            out.put_u8(e);
        }
        out.put_slice(self.payload);
    }

    pub fn unsized_len(&self) -> usize {
        1 + usize::from(self.extension.is_some()) + self.payload.len()
    }
}

/// Parses one OBU from the start of `data`. Without a size field the OBU runs to the end of `data`.
/// Returns the OBU and the bytes it took; None when malformed (forbidden bit set, truncated).
pub fn parse_obu(data: &[u8]) -> Option<(Obu<'_>, usize)> {
    let &header = data.first()?;
    if header & 0x80 != 0 {
        return None;
    }
    let mut at = 1;
    let extension = if header & 0x04 != 0 {
        at += 1;
        Some(*data.get(1)?)
    } else {
        None
    };
    let len = if header & 0x02 != 0 {
        let (len, n) = leb128(data.get(at..)?)?;
        at += n;
        len
    } else {
        data.len() - at
    };
    let end = at.checked_add(len).filter(|&e| e <= data.len())?;
    Some((Obu { header, extension, payload: &data[at..end] }, end))
}

/// The OBUs of a temporal unit whose OBUs have size fields (the last one may lack it). Stops at the
/// first malformed OBU; `truncated()` then says so.
pub fn obus(data: &[u8]) -> Obus<'_> {
    Obus { rest: data, bad: false }
}

pub struct Obus<'a> {
    rest: &'a [u8],
    bad: bool,
}

impl Obus<'_> {
    /// True when iteration stopped at malformed data.
    pub fn truncated(&self) -> bool {
        self.bad
    }
}

impl<'a> Iterator for Obus<'a> {
    type Item = Obu<'a>;

    fn next(&mut self) -> Option<Obu<'a>> {
        if self.rest.is_empty() || self.bad {
            return None;
        }
        match parse_obu(self.rest) {
            Some((obu, used)) => {
                self.rest = &self.rest[used..];
                Some(obu)
            }
            None => {
                self.bad = true;
                None
            }
        }
    }
}

/// Whether the temporal unit's first frame header says `show_existing_frame = 0, frame_type =
/// KEY_FRAME` (AV1 §5.9.2: its first three bits are zero; sequences with `reduced_still_picture_header`
/// are still pictures, not video).
pub fn first_frame_is_key<'a>(obus: impl IntoIterator<Item = Obu<'a>>) -> bool {
    obus.into_iter()
        .find(|o| matches!(o.kind(), OBU_FRAME_HEADER | OBU_FRAME))
        .is_some_and(|o| o.payload.first().is_some_and(|b| b & 0xe0 == 0))
}

/// Frame data: a frame (header) or tile group. A temporal unit without any is not a picture.
pub fn is_picture_data(kind: u8) -> bool {
    matches!(kind, OBU_FRAME_HEADER | OBU_TILE_GROUP | OBU_FRAME | OBU_REDUNDANT_FRAME_HEADER)
}

/// An unsigned LEB128 value (at most 8 bytes, as AV1 allows) and its length.
pub fn leb128(data: &[u8]) -> Option<(usize, usize)> {
    let mut v: u64 = 0;
    for (i, b) in data.iter().take(8).enumerate() {
        v |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((usize::try_from(v).ok()?, i + 1));
        }
    }
    None
}

pub fn write_leb128(out: &mut impl BufMut, mut v: usize) {
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.put_u8(b);
            return;
        }
        out.put_u8(b | 0x80);
    }
}

pub fn leb128_len(v: usize) -> usize {
    let bits = usize::BITS - v.leading_zeros();
    (bits as usize).div_ceil(7).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leb128_both_ways() {
        for v in [0usize, 1, 127, 128, 300, 16383, 16384, 1 << 30] {
            let mut b = Vec::new();
            write_leb128(&mut b, v);
            assert_eq!(b.len(), leb128_len(v), "{v}");
            assert_eq!(leb128(&b), Some((v, b.len())));
        }
        assert_eq!(leb128(&[0x80; 9]), None);
        assert_eq!(leb128(&[0x80]), None);
    }

    #[test]
    fn parse_sized_and_unsized() {
        // Sequence header with size 2, then a frame OBU with extension and no size field.
        let tu = [0x0a, 2, 0xaa, 0xbb, 0x34, 0x28, 0x10, 0x20];
        let v: Vec<Obu> = obus(&tu).collect();
        assert_eq!(v.len(), 2);
        assert_eq!((v[0].kind(), v[0].payload), (OBU_SEQUENCE_HEADER, &[0xaa, 0xbb][..]));
        assert_eq!((v[1].kind(), v[1].extension, v[1].payload), (OBU_FRAME, Some(0x28), &[0x10, 0x20][..]));
        assert!(first_frame_is_key(v.iter().copied()));
        let mut it = obus(&[0x0a, 5, 1]);
        assert!(it.next().is_none() && it.truncated());
        assert!(parse_obu(&[0x80]).is_none());
        let mut out = Vec::new();
        v[1].write_sized(&mut out);
        assert_eq!(out, [0x36, 0x28, 2, 0x10, 0x20]);
        assert_eq!(v[1].sized_len(), out.len());
    }
}
