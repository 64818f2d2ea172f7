//! Small helpers shared by the writers: big-endian byte writing, ISO BMFF box nesting, RTP timestamp
//! unwrapping, and the MPEG-2 CRC-32.

/// Big-endian writer over a `Vec<u8>` with ISO BMFF box nesting.
#[derive(Default)]
pub(crate) struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u24(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes()[1..]);
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
    pub fn zeros(&mut self, n: usize) {
        self.buf.resize(self.buf.len() + n, 0);
    }

    /// Opens a box: writes a size placeholder and the type; [`Writer::end`] patches the size.
    pub fn start(&mut self, fourcc: &[u8; 4]) -> usize {
        let pos = self.buf.len();
        self.u32(0);
        self.bytes(fourcc);
        pos
    }

    /// Opens a full box (version and flags after the type).
    pub fn start_full(&mut self, fourcc: &[u8; 4], version: u8, flags: u32) -> usize {
        let pos = self.start(fourcc);
        self.u8(version);
        self.u24(flags);
        pos
    }

    pub fn end(&mut self, pos: usize) {
        // Boxes we write are far below 4 GiB (fragments are bounded by the muxer).
        let size = (self.buf.len() - pos) as u32;
        self.buf[pos..pos + 4].copy_from_slice(&size.to_be_bytes());
    }
}

/// MPEG-2 CRC-32 (polynomial 0x04C11DB7, no reflection, init 0xffffffff, no final xor), as used by PSI
/// sections.
pub(crate) fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// Rescales `v` from clock `from` to clock `to` without overflow for the values we meet.
pub(crate) fn rescale(v: i64, from: u32, to: u32) -> i64 {
    if from == to || from == 0 {
        return v;
    }
    (i128::from(v) * i128::from(to) / i128::from(from)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_known_value() {
        // PAT of a single program (PMT PID 0x1000), as ffmpeg writes it.
        let pat = [0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00];
        assert_eq!(crc32_mpeg2(&pat), 0x2ab1_04b2);
    }

    #[test]
    fn boxes_nest() {
        let mut w = Writer::default();
        let a = w.start(b"moov");
        let b = w.start_full(b"mvhd", 0, 0);
        w.u32(7);
        w.end(b);
        w.end(a);
        assert_eq!(&w.buf[..8], &[0, 0, 0, 24, b'm', b'o', b'o', b'v']);
        assert_eq!(&w.buf[8..12], &[0, 0, 0, 16]);
    }
}
