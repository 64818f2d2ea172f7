//! AAC helpers: AudioSpecificConfig (the fmtp `config=` of RFC 3640 and the MP4 `esds` payload) and ADTS
//! headers (for reading `.aac` files and writing `/api/stream.aac`).

use crate::h264::{fmtp_value, BitReader, BitstreamError};

/// Sampling frequencies by `sampling_frequency_index` (ISO 14496-3 table 1.18).
pub const SAMPLE_RATES: [u32; 13] =
    [96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350];

/// AAC-LC audio object type.
pub const OBJECT_TYPE_AAC_LC: u8 = 2;

/// Samples per AAC access unit (frame), for the usual 1024-sample frame length.
pub const SAMPLES_PER_FRAME: u32 = 1024;

/// Index of `rate` in [`SAMPLE_RATES`].
pub fn sample_rate_index(rate: u32) -> Option<u8> {
    SAMPLE_RATES.iter().position(|&r| r == rate).map(|i| i as u8)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AudioSpecificConfig {
    /// Audio object type (2 = AAC-LC, 5 = SBR, 29 = PS...).
    pub object_type: u8,
    pub sample_rate: u32,
    /// Channel configuration (1 = mono, 2 = stereo, ... 7 = 7.1; 0 = defined in the stream).
    pub channels: u8,
}

impl AudioSpecificConfig {
    /// Parses the first fields of an AudioSpecificConfig (the rest, e.g. GASpecificConfig, is ignored).
    pub fn parse(data: &[u8]) -> Result<AudioSpecificConfig, BitstreamError> {
        let mut r = BitReader::new(data);
        let mut object_type = r.bits(5)?;
        if object_type == 31 {
            object_type = 32 + r.bits(6)?;
        }
        let index = r.bits(4)?;
        let sample_rate = if index == 15 {
            r.bits(24)?
        } else {
            *SAMPLE_RATES.get(index as usize).ok_or(BitstreamError::Invalid("sampling_frequency_index"))?
        };
        let channels = r.bits(4)? as u8;
        Ok(AudioSpecificConfig {
            // At most 32 + 63.
            object_type: object_type as u8,
            sample_rate,
            channels,
        })
    }

    /// Parses the hex `config=` value of an RFC 3640 fmtp.
    pub fn from_hex(hex: &str) -> Result<AudioSpecificConfig, BitstreamError> {
        let hex = hex.trim();
        if hex.len() & 1 == 1 || !hex.is_ascii() {
            return Err(BitstreamError::Invalid("config hex"));
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16))
            .collect::<Result<Vec<u8>, _>>()
            .map_err(|_| BitstreamError::Invalid("config hex"))?;
        Self::parse(&bytes)
    }

    /// Reads `config=` from a whole fmtp line.
    pub fn from_fmtp(fmtp: &str) -> Result<AudioSpecificConfig, BitstreamError> {
        let hex = fmtp_value(fmtp, "config").ok_or(BitstreamError::Invalid("missing config"))?;
        Self::from_hex(hex)
    }

    /// Serializes (2 bytes for the usual case; longer for escaped object types or explicit rates), with a
    /// zeroed GASpecificConfig (frameLength 1024, no core coder, no extension).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = BitWriter::default();
        if self.object_type >= 31 {
            w.put(31, 5);
            w.put(u32::from(self.object_type - 32), 6);
        } else {
            w.put(u32::from(self.object_type), 5);
        }
        match sample_rate_index(self.sample_rate) {
            Some(i) => w.put(u32::from(i), 4),
            None => {
                w.put(15, 4);
                w.put(self.sample_rate & 0xff_ffff, 24);
            }
        }
        w.put(u32::from(self.channels & 0x0f), 4);
        w.put(0, 3); // GASpecificConfig: frameLengthFlag, dependsOnCoreCoder, extensionFlag
        w.finish()
    }

    /// Upper-case hex of [`Self::to_bytes`], for `config=` in SDP.
    pub fn to_hex(&self) -> String {
        self.to_bytes().iter().map(|b| format!("{b:02X}")).collect()
    }
}

#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, v: u32, bits: u32) {
        self.acc = (self.acc << bits) | (u64::from(v) & ((1u64 << bits) - 1));
        self.n += bits;
        while self.n >= 8 {
            self.n -= 8;
            self.out.push((self.acc >> self.n) as u8);
        }
        self.acc &= (1u64 << self.n) - 1;
    }

    fn finish(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push((self.acc << (8 - self.n)) as u8);
        }
        self.out
    }
}

/// ADTS header length without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// A parsed ADTS header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdtsHeader {
    pub config: AudioSpecificConfig,
    /// 7, or 9 when a CRC follows the header.
    pub header_len: usize,
    /// Length of the whole ADTS frame, header included.
    pub frame_len: usize,
    /// Raw data blocks in the frame minus one (almost always 0).
    pub raw_blocks_minus1: u8,
}

impl AdtsHeader {
    /// Parses the ADTS header at the start of `data`.
    pub fn parse(data: &[u8]) -> Result<AdtsHeader, BitstreamError> {
        let h: &[u8; 7] = data.first_chunk().ok_or(BitstreamError::Truncated)?;
        if h[0] != 0xff || h[1] & 0xf0 != 0xf0 {
            return Err(BitstreamError::Invalid("ADTS sync word"));
        }
        let protection_absent = h[1] & 1 == 1;
        let profile = (h[2] >> 6) + 1;
        let index = (h[2] >> 2) & 0x0f;
        let sample_rate =
            *SAMPLE_RATES.get(index as usize).ok_or(BitstreamError::Invalid("sampling_frequency_index"))?;
        let channels = ((h[2] & 1) << 2) | (h[3] >> 6);
        let frame_len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        let header_len = if protection_absent { 7 } else { 9 };
        if frame_len < header_len {
            return Err(BitstreamError::Invalid("ADTS frame length"));
        }
        Ok(AdtsHeader {
            config: AudioSpecificConfig { object_type: profile, sample_rate, channels },
            header_len,
            frame_len,
            raw_blocks_minus1: h[6] & 3,
        })
    }

    /// Writes a 7-byte ADTS header (no CRC) for a raw access unit of `payload_len` bytes.
    pub fn build(config: &AudioSpecificConfig, payload_len: usize) -> Result<[u8; 7], BitstreamError> {
        let index = sample_rate_index(config.sample_rate).ok_or(BitstreamError::Unsupported("ADTS sample rate"))?;
        // ADTS can only express object types 1..=4 (profile is 2 bits, object type minus one).
        if !(1..=4).contains(&config.object_type) {
            return Err(BitstreamError::Unsupported("ADTS object type"));
        }
        let len = payload_len + ADTS_HEADER_LEN;
        if len > 0x1fff {
            return Err(BitstreamError::Unsupported("ADTS frame length"));
        }
        let profile = config.object_type - 1;
        let ch = config.channels & 7;
        Ok([
            0xff,
            0xf1, // MPEG-4, layer 0, no CRC
            (profile << 6) | (index << 2) | (ch >> 2),
            ((ch & 3) << 6) | ((len >> 11) as u8 & 3),
            (len >> 3) as u8,
            (((len & 7) as u8) << 5) | 0x1f, // buffer fullness 0x7ff (VBR)
            0xfc,
        ])
    }
}

/// Iterator over the ADTS frames of a buffer: yields (header, raw access unit). Stops at the first
/// invalid or truncated frame; [`AdtsFrames::rest`] gives the unread bytes (for streaming input).
pub struct AdtsFrames<'a> {
    rest: &'a [u8],
}

pub fn adts_frames(data: &[u8]) -> AdtsFrames<'_> {
    AdtsFrames { rest: data }
}

impl<'a> AdtsFrames<'a> {
    pub fn rest(&self) -> &'a [u8] {
        self.rest
    }
}

impl<'a> Iterator for AdtsFrames<'a> {
    type Item = (AdtsHeader, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let h = AdtsHeader::parse(self.rest).ok()?;
        let frame = self.rest.get(..h.frame_len)?;
        self.rest = &self.rest[h.frame_len..];
        Some((h, &frame[h.header_len..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asc() {
        let c =
            AudioSpecificConfig::from_fmtp("streamtype=5;profile-level-id=15;mode=AAC-hbr;config=1210;sizelength=13")
                .unwrap();
        assert_eq!(c, AudioSpecificConfig { object_type: 2, sample_rate: 44100, channels: 2 });
        assert_eq!(c.to_hex(), "1210");
        let c = AudioSpecificConfig::from_hex("1188").unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 1));
        assert_eq!(c.to_hex(), "1188");
        // Escaped object type and explicit rate survive a round trip.
        let c = AudioSpecificConfig { object_type: 42, sample_rate: 12345, channels: 2 };
        assert_eq!(AudioSpecificConfig::parse(&c.to_bytes()).unwrap(), c);
        assert!(AudioSpecificConfig::from_hex("12").is_err());
        assert!(AudioSpecificConfig::from_hex("1z").is_err());
        assert!(AudioSpecificConfig::from_hex("é").is_err());
        assert!(AudioSpecificConfig::from_hex("17").is_err()); // index 14 is reserved
    }

    #[test]
    fn adts() {
        let c = AudioSpecificConfig { object_type: 2, sample_rate: 48000, channels: 2 };
        let h = AdtsHeader::build(&c, 100).unwrap();
        let mut buf = h.to_vec();
        buf.extend_from_slice(&[0xaa; 100]);
        buf.extend_from_slice(&AdtsHeader::build(&c, 3).unwrap());
        buf.extend_from_slice(&[1, 2, 3, 0xff]);
        let p = AdtsHeader::parse(&buf).unwrap();
        assert_eq!((p.config, p.header_len, p.frame_len), (c, 7, 107));
        let mut it = adts_frames(&buf);
        assert_eq!(it.next().unwrap().1.len(), 100);
        assert_eq!(it.next().unwrap().1, &[1, 2, 3]);
        assert!(it.next().is_none());
        assert_eq!(it.rest(), &[0xff]);
        assert!(AdtsHeader::build(&c, 9000).is_err());
        assert!(AdtsHeader::parse(&[0xff, 0xf1, 0, 0, 0, 0, 0]).is_err()); // frame length 0
    }
}
