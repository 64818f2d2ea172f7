//! One interface over the container writers, for outputs that send a byte stream (progressive HTTP,
//! WebSocket/MSE, HLS segments, recordings): frames of a reader's tracks in, bytes ready to send out.
//!
//! | writer | container | header |
//! |---|---|---|
//! | [`Mp4Muxer`] | fMP4, one fragment per frame | the init segment, once the parameter sets are known |
//! | [`TsStream`] | MPEG-TS | none (PAT/PMT are repeated before video keyframes) |
//! | [`FlvStream`] | FLV | the FLV header |
//! | [`AdtsStream`] | AAC in ADTS | none |

use bytes::Bytes;
use media::{Codec, Frame, Kind};

use crate::FormatError;

/// A container writer: frames in, bytes out.
pub trait Muxer: Send + 'static {
    /// Bytes to send before any frame (file header, init segment), once known; `None` afterwards.
    fn header(&mut self) -> Option<Bytes>;
    /// Adds a frame of reader track `slot`; returns the bytes ready to send (may be empty).
    fn push(&mut self, slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError>;
}

impl<M: Muxer + ?Sized> Muxer for Box<M> {
    fn header(&mut self) -> Option<Bytes> {
        (**self).header()
    }
    fn push(&mut self, slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError> {
        (**self).push(slot, frame)
    }
}

/// Fragmented MP4 with one fragment per frame (MSE, `stream.mp4`, HLS/fMP4). The init segment is
/// given once: by [`Muxer::header`] if already known, else in front of the first bytes [`Muxer::push`]
/// returns (it may only become known with the first keyframe's parameter sets).
pub struct Mp4Muxer {
    inner: crate::fmp4::Fmp4Muxer,
    header_sent: bool,
}

impl Mp4Muxer {
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<Mp4Muxer, FormatError> {
        let inner = crate::fmp4::Fmp4Muxer::with_policy(tracks, crate::fmp4::FragmentPolicy::PerFrame)?;
        Ok(Mp4Muxer { inner, header_sent: false })
    }

    /// A muxer for a live reader (MSE, `stream.mp4`) that follows a picture change: a new init segment
    /// in the byte stream before the first fragment of the new picture
    /// ([`crate::fmp4::Fmp4Muxer::follow_changes`]).
    pub fn following(tracks: &[(Kind, Codec)]) -> Result<Mp4Muxer, FormatError> {
        let mut m = Self::new(tracks)?;
        m.inner.follow_changes(true);
        Ok(m)
    }

    /// `video/mp4; codecs="..."`, once every track's codec string is known.
    pub fn mime_type(&self) -> Option<String> {
        self.inner.mime_type()
    }
}

impl Muxer for Mp4Muxer {
    fn header(&mut self) -> Option<Bytes> {
        if self.header_sent {
            return None;
        }
        let init = self.inner.init_segment()?;
        self.header_sent = true;
        Some(init)
    }

    fn push(&mut self, slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError> {
        self.inner.push(slot, frame)?;
        let mut out = Vec::new();
        // The init segment may only become known with the first keyframe's parameter sets.
        if let Some(h) = self.header() {
            out.push(h);
        }
        if self.header_sent {
            while let Some(f) = self.inner.fragment() {
                out.push(f);
            }
        }
        Ok(out)
    }
}

/// MPEG-TS as a byte stream.
pub struct TsStream(crate::ts::TsMuxer);

impl TsStream {
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<TsStream, FormatError> {
        Ok(TsStream(crate::ts::TsMuxer::new(tracks)?))
    }
}

impl Muxer for TsStream {
    fn header(&mut self) -> Option<Bytes> {
        None
    }
    fn push(&mut self, slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError> {
        Ok(vec![self.0.push(slot, frame)?])
    }
}

/// FLV as a byte stream (HTTP-FLV).
pub struct FlvStream {
    inner: crate::flv::FlvMuxer,
    header_sent: bool,
}

impl FlvStream {
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<FlvStream, FormatError> {
        Ok(FlvStream { inner: crate::flv::FlvMuxer::new(tracks)?, header_sent: false })
    }
}

impl Muxer for FlvStream {
    fn header(&mut self) -> Option<Bytes> {
        if self.header_sent {
            return None;
        }
        self.header_sent = true;
        Some(self.inner.header())
    }
    fn push(&mut self, slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError> {
        Ok(vec![self.inner.push(slot, frame)?])
    }
}

/// The first AAC track as ADTS frames (`stream.aac`); other tracks' frames are written as if they
/// were that track's, so give it an audio-only reader.
pub struct AdtsStream(crate::adts::AdtsWriter);

impl AdtsStream {
    /// Fails without an audio track, or when the first one is not AAC.
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<AdtsStream, FormatError> {
        let codec = tracks.iter().find(|(k, _)| *k == Kind::Audio).map(|(_, c)| c);
        let codec = codec.ok_or_else(|| FormatError::MissingConfig("no AAC track".into()))?;
        Ok(AdtsStream(crate::adts::AdtsWriter::new(codec)?))
    }
}

impl Muxer for AdtsStream {
    fn header(&mut self) -> Option<Bytes> {
        None
    }
    fn push(&mut self, _slot: usize, frame: &Frame) -> Result<Vec<Bytes>, FormatError> {
        Ok(vec![self.0.write(frame)?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;

    fn aac() -> Codec {
        Codec::new(media::codec::AAC, 48_000, 2, 97).with_fmtp("mode=AAC-hbr;config=1190")
    }

    fn aac_frame(ts: u32) -> Frame {
        Frame { timestamp: ts, keyframe: true, payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60]), rtp: vec![] }
    }

    #[test]
    fn mp4_sends_the_init_segment_once_then_fragments() {
        let mut m: Box<dyn Muxer> = Box::new(Mp4Muxer::new(&[(Kind::Audio, aac())]).unwrap());
        let init = m.header().expect("AAC config is in the SDP: init known at once");
        assert_eq!(&init[4..8], b"ftyp");
        assert!(m.header().is_none());
        let out = m.push(0, &aac_frame(0)).unwrap();
        assert_eq!(out.len(), 1, "one fragment, no second init");
        assert_eq!(&out[0][4..8], b"moof");
    }

    #[test]
    fn mp4_init_waits_for_the_parameter_sets() {
        let tracks = [(Kind::Video, Codec::new(media::codec::H264, 90_000, 0, 96))];
        let mut m = Mp4Muxer::new(&tracks).unwrap();
        assert!(m.header().is_none());
        assert!(m.mime_type().is_none());
        let out = m.push(0, &testutil::h264_frame(0, true, 1)).unwrap();
        assert_eq!(&out[0][4..8], b"ftyp", "init in front of the first fragment");
        assert_eq!(&out[1][4..8], b"moof");
        assert!(m.mime_type().unwrap().contains("avc1."));
        let out = m.push(0, &testutil::h264_frame(3000, true, 2)).unwrap();
        assert!(out.iter().all(|b| &b[4..8] != b"ftyp"));
    }

    #[test]
    fn flv_header_once_ts_and_adts_none() {
        let tracks = [(Kind::Audio, aac())];
        let mut flv = FlvStream::new(&tracks).unwrap();
        assert_eq!(&flv.header().unwrap()[..3], b"FLV");
        assert!(flv.header().is_none());
        let mut ts = TsStream::new(&tracks).unwrap();
        assert!(ts.header().is_none());
        let out = ts.push(0, &aac_frame(0)).unwrap();
        assert!(out[0].len() % 188 == 0 && out[0][0] == 0x47);
        let mut adts = AdtsStream::new(&tracks).unwrap();
        assert!(adts.header().is_none());
        let out = adts.push(0, &aac_frame(0)).unwrap();
        assert_eq!(out[0].len(), 7 + 4);
        assert_eq!(&out[0][..2], &[0xff, 0xf1]);
        let video_only = [(Kind::Video, Codec::new(media::codec::H264, 90_000, 0, 96))];
        assert!(matches!(AdtsStream::new(&video_only), Err(FormatError::MissingConfig(_))));
    }
}
