//! AAC access units as ADTS (`/api/stream.aac`, and the AAC inside MPEG-TS).

use crate::FormatError;
use bytes::Bytes;
use media::aac::{AdtsHeader, AudioSpecificConfig};
use media::{codec, Codec, Frame};

/// HTTP `Content-Type` of an ADTS stream.
pub const CONTENT_TYPE: &str = "audio/aac";

/// Writes each AAC frame with a 7-byte ADTS header.
#[derive(Debug, Clone)]
pub struct AdtsWriter {
    config: AudioSpecificConfig,
}

impl AdtsWriter {
    /// For an `MPEG4-GENERIC` codec whose fmtp has `config=` (object types 1..=4: ADTS cannot say more).
    pub fn new(c: &Codec) -> Result<AdtsWriter, FormatError> {
        if c.name != codec::AAC {
            return Err(FormatError::unsupported("ADTS", &c.name));
        }
        let config = AudioSpecificConfig::from_fmtp(&c.fmtp)?;
        AdtsHeader::build(&config, 0)?;
        Ok(AdtsWriter { config })
    }

    /// One ADTS frame (header + raw access unit).
    pub fn write(&self, frame: &Frame) -> Result<Bytes, FormatError> {
        let h = AdtsHeader::build(&self.config, frame.payload.len())?;
        let mut out = Vec::with_capacity(h.len() + frame.payload.len());
        out.extend_from_slice(&h);
        out.extend_from_slice(&frame.payload);
        Ok(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use media::aac::adts_frames;

    #[test]
    fn writes_parseable_adts() {
        let c = Codec::new("MPEG4-GENERIC", 44100, 2, 97).with_fmtp("config=1210");
        let w = AdtsWriter::new(&c).unwrap();
        let mut data = Vec::new();
        for i in 0..3u8 {
            let f = Frame { payload: Bytes::from(vec![i; 100 + usize::from(i)]), ..Default::default() };
            data.extend_from_slice(&w.write(&f).unwrap());
        }
        let frames: Vec<_> = adts_frames(&data).collect();
        assert_eq!(frames.len(), 3);
        assert_eq!(frames[2].1, &[2u8; 102][..]);
        assert_eq!((frames[0].0.config.sample_rate, frames[0].0.config.channels), (44100, 2));
        let big = Frame { payload: Bytes::from(vec![0; 9000]), ..Default::default() };
        assert!(w.write(&big).is_err(), "over the 13-bit ADTS length");
        assert!(AdtsWriter::new(&Codec::new("OPUS", 48000, 2, 111)).is_err());
        assert!(AdtsWriter::new(&Codec::new("MPEG4-GENERIC", 44100, 2, 97)).is_err(), "no config=");
    }
}
