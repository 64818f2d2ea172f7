//! The "PCMA/PCMU/PCM => FLAC" repack of go2rtc: G.711 and L16 audio are decoded to 16-bit PCM and
//! written as FLAC frames with VERBATIM subframes (no prediction: the point is a container every MSE
//! player accepts, not compression). FLAC frames are byte-aligned at 16 bits per sample, so no bit writer
//! is needed.

use crate::FormatError;
use media::codec;

/// Which PCM flavour the input frames carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PcmInput {
    /// G.711 A-law, one byte per sample.
    Alaw,
    /// G.711 µ-law, one byte per sample.
    Ulaw,
    /// Signed 16-bit big-endian (RTP L16).
    S16be,
}

impl PcmInput {
    pub fn from_codec_name(name: &str) -> Option<PcmInput> {
        match name {
            codec::PCMA => Some(PcmInput::Alaw),
            codec::PCMU => Some(PcmInput::Ulaw),
            codec::L16 => Some(PcmInput::S16be),
            _ => None,
        }
    }
}

/// Decodes one A-law byte (ITU-T G.711).
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let seg = (a >> 4) & 7;
    let mut t = i32::from(a & 0x0f) << 4;
    t = match seg {
        0 => t + 8,
        1 => t + 0x108,
        _ => (t + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Decodes one µ-law byte (ITU-T G.711).
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t = ((i32::from(u & 0x0f) << 3) + 0x84) << ((u & 0x70) >> 4);
    t -= 0x84;
    (if u & 0x80 != 0 { -t } else { t }) as i16
}

/// Encodes PCM frames as FLAC frames (variable block size strategy, the block size is the input frame).
#[derive(Debug, Clone)]
pub struct FlacEncoder {
    input: PcmInput,
    sample_rate: u32,
    channels: u8,
    next_sample: u64,
}

/// Largest block (samples per channel) a FLAC frame can carry.
pub const MAX_BLOCK: usize = 65535;

impl FlacEncoder {
    pub fn new(input: PcmInput, sample_rate: u32, channels: u8) -> Result<FlacEncoder, FormatError> {
        if !(1..=8).contains(&channels) || sample_rate == 0 || sample_rate >= 1 << 20 {
            return Err(FormatError::invalid("FLAC parameters", format!("{sample_rate} Hz, {channels} channels")));
        }
        Ok(FlacEncoder { input, sample_rate, channels, next_sample: 0 })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u8 {
        self.channels
    }

    /// The 34-byte STREAMINFO metadata block body (for `dfLa` and a `fLaC` file header).
    pub fn streaminfo(&self) -> [u8; 34] {
        let mut s = [0u8; 34];
        s[0..2].copy_from_slice(&16u16.to_be_bytes()); // min block size
        s[2..4].copy_from_slice(&(MAX_BLOCK as u16).to_be_bytes());
        // min/max frame size unknown (0). Sample rate 20 bits, channels-1 3 bits, bps-1 5 bits, total 36 bits.
        let packed: u64 = (u64::from(self.sample_rate) << 44) | (u64::from(self.channels - 1) << 41) | (15u64 << 36);
        s[10..18].copy_from_slice(&packed.to_be_bytes());
        s
    }

    /// Samples per channel in one input payload.
    pub fn block_len(&self, payload: &[u8]) -> usize {
        let bytes_per_sample = if self.input == PcmInput::S16be { 2 } else { 1 };
        payload.len() / (bytes_per_sample * usize::from(self.channels))
    }

    /// One FLAC frame for one input payload (interleaved samples). Empty or oversize input is an error.
    pub fn encode(&mut self, payload: &[u8]) -> Result<Vec<u8>, FormatError> {
        let n = self.block_len(payload);
        if n == 0 || n > MAX_BLOCK {
            return Err(FormatError::invalid("PCM frame", format!("{n} samples per channel (1..=65535 allowed)")));
        }
        let ch = usize::from(self.channels);
        let sample = |i: usize| -> i16 {
            match self.input {
                PcmInput::Alaw => alaw_to_linear(payload[i]),
                PcmInput::Ulaw => ulaw_to_linear(payload[i]),
                PcmInput::S16be => i16::from_be_bytes([payload[2 * i], payload[2 * i + 1]]),
            }
        };
        let mut out = Vec::with_capacity(16 + n * ch * 2 + 2);
        out.extend_from_slice(&[0xff, 0xf9]); // sync, variable block size
        let rate_code = match self.sample_rate {
            8000 => 4,
            16000 => 5,
            22050 => 6,
            24000 => 7,
            32000 => 8,
            44100 => 9,
            48000 => 10,
            96000 => 11,
            _ => 0, // from STREAMINFO
        };
        out.push((7 << 4) | rate_code); // block size: 16-bit (n-1) at end of header
        out.push(((self.channels - 1) << 4) | (4 << 1)); // independent channels, 16 bits per sample
        write_utf8_number(&mut out, self.next_sample);
        out.extend_from_slice(&((n - 1) as u16).to_be_bytes());
        let crc = crc8(&out);
        out.push(crc);
        for c in 0..ch {
            out.push(0x02); // VERBATIM subframe, no wasted bits
            for i in 0..n {
                out.extend_from_slice(&sample(i * ch + c).to_be_bytes());
            }
        }
        let crc = crc16(&out);
        out.extend_from_slice(&crc.to_be_bytes());
        self.next_sample += n as u64;
        Ok(out)
    }
}

/// FLAC's "UTF-8" coding of a sample number (up to 36 bits).
fn write_utf8_number(out: &mut Vec<u8>, v: u64) {
    let v = v & ((1 << 36) - 1);
    if v < 0x80 {
        out.push(v as u8);
        return;
    }
    let mut n = 2;
    while n < 7 && v >= 1u64 << (5 * n + 1) {
        n += 1;
    }
    let lead = (0xff00u16 >> n) as u8;
    out.push(lead | (v >> (6 * (n - 1))) as u8);
    for i in (0..n - 1).rev() {
        out.push(0x80 | ((v >> (6 * i)) & 0x3f) as u8);
    }
}

fn crc8(data: &[u8]) -> u8 {
    let mut crc = 0u8;
    for &b in data {
        crc ^= b;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x07 } else { crc << 1 };
        }
    }
    crc
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc = 0u16;
    for &b in data {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 { (crc << 1) ^ 0x8005 } else { crc << 1 };
        }
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn g711_decode_known_values() {
        assert_eq!(alaw_to_linear(0xd5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xaa), 32256);
        assert_eq!(ulaw_to_linear(0xff), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    #[test]
    fn utf8_numbers() {
        let mut v = Vec::new();
        write_utf8_number(&mut v, 0x7f);
        assert_eq!(v, [0x7f]);
        v.clear();
        write_utf8_number(&mut v, 0x80);
        assert_eq!(v, [0xc2, 0x80]);
        v.clear();
        write_utf8_number(&mut v, 0x800);
        assert_eq!(v, [0xe0, 0xa0, 0x80]);
    }

    #[test]
    fn frame_layout() {
        let mut e = FlacEncoder::new(PcmInput::Alaw, 8000, 1).unwrap();
        let f = e.encode(&[0xd5; 160]).unwrap();
        assert_eq!(&f[..2], &[0xff, 0xf9]);
        // header 7 bytes + CRC-8, subframe 1 + 320, CRC-16
        assert_eq!(f.len(), 7 + 1 + 1 + 320 + 2);
        assert_eq!(crc16(&f), 0, "CRC-16 over the frame including its CRC is zero");
        assert!(e.encode(&[]).is_err());
        let si = e.streaminfo();
        assert_eq!(u32::from_be_bytes([0, si[10], si[11], si[12]]) >> 4, 8000);
    }
}
