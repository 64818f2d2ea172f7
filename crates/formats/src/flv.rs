//! FLV: muxer (HTTP-FLV output, RTMP tag payloads) and demuxer (HTTP-FLV sources, `ffmpeg -f flv`).
//!
//! H.264 uses the classic AVC video tags (codec id 7); H.265 uses Enhanced RTMP/FLV (`hvc1` FourCC,
//! as go2rtc, OBS and ffmpeg ≥ 6.1 write it), and the demuxer also reads the non-standard codec id 12
//! some Chinese servers use for H.265. Audio: AAC (sound format 10), and G.711 (7 = A-law, 8 = µ-law).

use crate::bits::rescale;
use crate::video::{with_parameter_sets, Reader, VideoCodec, VideoConfig};
use crate::{DemuxEvent, FormatError};
use bytes::Bytes;
use media::aac::AudioSpecificConfig;
use media::timestamp::Unwrapper;
use media::{codec, h264, Codec, Frame, Kind};
use std::collections::VecDeque;

/// Tags with a body larger than this are refused (FLV allows 16 MiB; no camera frame needs more).
pub const MAX_TAG_SIZE: usize = 8 << 20;

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;

enum MuxTrack {
    Video { codec: VideoCodec, config: Option<VideoConfig>, sent_header: bool },
    Aac { asc: Vec<u8>, sent_header: bool },
    G711 { alaw: bool },
}

/// FLV muxer. [`FlvMuxer::header`] first, then [`FlvMuxer::push`] for each frame; both give whole tags.
pub struct FlvMuxer {
    tracks: Vec<(MuxTrack, u32, Unwrapper)>,
    has_video: bool,
    has_audio: bool,
}

impl FlvMuxer {
    /// Tracks: H264, H265 video; AAC (fmtp `config=`), PCMA/PCMU (8 kHz mono) audio.
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<FlvMuxer, FormatError> {
        let mut out = Vec::new();
        let (mut has_video, mut has_audio) = (false, false);
        for (kind, c) in tracks {
            let t = match (kind, c.name.as_str()) {
                (Kind::Video, codec::H264 | codec::H265) => {
                    has_video = true;
                    let vc = VideoCodec::from_name(&c.name).ok_or_else(|| FormatError::unsupported("FLV", &c.name))?;
                    MuxTrack::Video { codec: vc, config: VideoConfig::from_codec(c), sent_header: false }
                }
                (Kind::Audio, codec::AAC) => {
                    has_audio = true;
                    let asc = AudioSpecificConfig::from_fmtp(&c.fmtp)?.to_bytes();
                    let hex = c.fmtp_param("config").unwrap_or("");
                    let raw: Option<Vec<u8>> =
                        (0..hex.len() / 2).map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()).collect();
                    MuxTrack::Aac { asc: raw.unwrap_or(asc), sent_header: false }
                }
                (Kind::Audio, codec::PCMA | codec::PCMU) if c.clock_rate == 8000 && c.channels <= 1 => {
                    has_audio = true;
                    MuxTrack::G711 { alaw: c.name == codec::PCMA }
                }
                _ => return Err(FormatError::unsupported("FLV", &format!("{kind}:{}", c.name))),
            };
            let rate = if c.clock_rate == 0 { 90000 } else { c.clock_rate };
            out.push((t, rate, Unwrapper::default()));
        }
        Ok(FlvMuxer { tracks: out, has_video, has_audio })
    }

    /// FLV file header, `onMetaData`, and the sequence headers already known.
    pub fn header(&mut self) -> Bytes {
        let mut out = Vec::with_capacity(256);
        out.extend_from_slice(b"FLV\x01");
        out.push((u8::from(self.has_audio) << 2) | u8::from(self.has_video));
        out.extend_from_slice(&9u32.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        // onMetaData: AMF0 string + ECMA array with the codec ids.
        let mut meta = vec![0x02, 0, 10];
        meta.extend_from_slice(b"onMetaData");
        meta.push(0x08);
        let mut props: Vec<(&str, f64)> = Vec::new();
        for (t, _, _) in &self.tracks {
            match t {
                MuxTrack::Video { codec: VideoCodec::H264, .. } => props.push(("videocodecid", 7.0)),
                MuxTrack::Video { codec: VideoCodec::H265, .. } => props.push(("videocodecid", 12.0)),
                MuxTrack::Aac { .. } => props.push(("audiocodecid", 10.0)),
                MuxTrack::G711 { alaw } => props.push(("audiocodecid", if *alaw { 7.0 } else { 8.0 })),
            }
        }
        meta.extend_from_slice(&(props.len() as u32).to_be_bytes());
        for (k, v) in props {
            meta.extend_from_slice(&(k.len() as u16).to_be_bytes());
            meta.extend_from_slice(k.as_bytes());
            meta.push(0x00);
            meta.extend_from_slice(&v.to_be_bytes());
        }
        meta.extend_from_slice(&[0, 0, 9]);
        write_tag(&mut out, TAG_SCRIPT, 0, &meta);
        for i in 0..self.tracks.len() {
            self.sequence_header(i, 0, &mut out);
        }
        Bytes::from(out)
    }

    fn sequence_header(&mut self, i: usize, ts: u32, out: &mut Vec<u8>) {
        match &mut self.tracks[i].0 {
            MuxTrack::Video { codec, config: Some(cfg), sent_header } if !*sent_header => {
                *sent_header = true;
                let mut body = match codec {
                    VideoCodec::H264 => vec![0x17, 0, 0, 0, 0],
                    VideoCodec::H265 => {
                        let mut v = vec![0x90]; // ex-header, keyframe, SequenceStart
                        v.extend_from_slice(b"hvc1");
                        v
                    }
                };
                body.extend_from_slice(&cfg.record());
                write_tag(out, TAG_VIDEO, ts, &body);
            }
            MuxTrack::Aac { asc, sent_header } if !*sent_header => {
                *sent_header = true;
                let mut body = vec![0xaf, 0];
                body.extend_from_slice(asc);
                write_tag(out, TAG_AUDIO, ts, &body);
            }
            _ => {}
        }
    }

    /// The tags of one frame (preceded by a sequence header when the parameter sets became known or
    /// changed). Video frames before the first parameter sets are skipped (empty result).
    pub fn push(&mut self, track: usize, frame: &Frame) -> Result<Bytes, FormatError> {
        let (t, rate, unwrap) = self.tracks.get_mut(track).ok_or(FormatError::TrackIndex(track))?;
        let ms = rescale(unwrap.unwrap(frame.timestamp), *rate, 1000).max(0) as u32;
        let mut out = Vec::with_capacity(frame.payload.len() + 64);
        if let MuxTrack::Video { codec, config, sent_header } = t {
            if frame.keyframe {
                if let Some(cfg) = VideoConfig::from_nals(*codec, h264::avcc_nals(&frame.payload)) {
                    if config.as_ref() != Some(&cfg) {
                        *config = Some(cfg);
                        *sent_header = false;
                    }
                }
            }
        }
        self.sequence_header(track, ms, &mut out);
        let (t, _, _) = &self.tracks[track];
        match t {
            MuxTrack::Video { config: None, .. } => return Ok(Bytes::new()),
            MuxTrack::Video { codec, .. } => {
                let mut body = Vec::with_capacity(frame.payload.len() + 8);
                match codec {
                    VideoCodec::H264 => body.extend_from_slice(&[if frame.keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]),
                    VideoCodec::H265 => {
                        body.push(if frame.keyframe { 0x93 } else { 0xa3 }); // CodedFramesX (no CTS)
                        body.extend_from_slice(b"hvc1");
                    }
                }
                body.extend_from_slice(&frame.payload);
                write_tag(&mut out, TAG_VIDEO, ms, &body);
            }
            MuxTrack::Aac { .. } => {
                let mut body = vec![0xaf, 1];
                body.extend_from_slice(&frame.payload);
                write_tag(&mut out, TAG_AUDIO, ms, &body);
            }
            MuxTrack::G711 { alaw } => {
                // format 7/8, 5.5 kHz rate field (ignored for G.711), 16-bit, mono
                let mut body = vec![if *alaw { 0x72 } else { 0x82 }];
                body.extend_from_slice(&frame.payload);
                write_tag(&mut out, TAG_AUDIO, ms, &body);
            }
        }
        Ok(Bytes::from(out))
    }
}

fn write_tag(out: &mut Vec<u8>, tag_type: u8, ts: u32, body: &[u8]) {
    let len = body.len().min(0xff_ffff);
    out.push(tag_type);
    out.extend_from_slice(&(len as u32).to_be_bytes()[1..]);
    out.extend_from_slice(&ts.to_be_bytes()[1..]);
    out.push((ts >> 24) as u8);
    out.extend_from_slice(&[0, 0, 0]);
    out.extend_from_slice(&body[..len]);
    out.extend_from_slice(&((len + 11) as u32).to_be_bytes());
}

enum DemuxTrack {
    Video { config: VideoConfig, length_size: usize },
    Aac { rate: u32 },
    G711,
}

/// FLV demuxer. Feed chunks with [`FlvDemuxer::push`], drain [`FlvDemuxer::poll`]. Track indices are
/// given in the order the streams appear (normally video 0, audio 1). A malformed tag is an error:
/// FLV has no resync point, so the caller should drop the connection.
#[derive(Default)]
pub struct FlvDemuxer {
    buf: Vec<u8>,
    header_done: bool,
    video: Option<(usize, DemuxTrack)>,
    audio: Option<(usize, DemuxTrack)>,
    next_index: usize,
    events: VecDeque<DemuxEvent>,
    failed: Option<FormatError>,
}

impl FlvDemuxer {
    pub fn new() -> FlvDemuxer {
        FlvDemuxer::default()
    }

    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes. After an error the demuxer stays failed and returns it again.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        self.buf.extend_from_slice(data);
        let r = self.parse();
        if let Err(e) = &r {
            self.failed = Some(e.clone());
            self.buf = Vec::new();
        }
        r
    }

    fn parse(&mut self) -> Result<(), FormatError> {
        let mut pos = 0;
        if !self.header_done {
            if self.buf.len() < 13 {
                if !b"FLV".starts_with(&self.buf[..self.buf.len().min(3)]) {
                    return Err(FormatError::invalid("FLV header", "signature is not FLV"));
                }
                return Ok(());
            }
            if &self.buf[..3] != b"FLV" {
                return Err(FormatError::invalid("FLV header", "signature is not FLV"));
            }
            let offset = u32::from_be_bytes([self.buf[5], self.buf[6], self.buf[7], self.buf[8]]) as usize;
            if !(9..=1024).contains(&offset) {
                return Err(FormatError::invalid("FLV header", format!("data offset {offset}")));
            }
            if self.buf.len() < offset + 4 {
                return Ok(());
            }
            pos = offset + 4;
            self.header_done = true;
        }
        while let Some(h) = self.buf.get(pos..pos + 11) {
            let tag_type = h[0] & 0x1f;
            let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
            let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
            if size > MAX_TAG_SIZE {
                return Err(FormatError::TooLarge { what: "FLV tag", size, limit: MAX_TAG_SIZE });
            }
            if !matches!(tag_type, TAG_AUDIO | TAG_VIDEO | TAG_SCRIPT) {
                return Err(FormatError::invalid(
                    "FLV tag",
                    format!("unknown tag type {tag_type} at tag offset {pos}"),
                ));
            }
            if self.buf.len() < pos + 11 + size + 4 {
                break;
            }
            let body = self.buf[pos + 11..pos + 11 + size].to_vec();
            pos += 11 + size + 4;
            match tag_type {
                TAG_VIDEO => self.video_tag(ts, &body)?,
                TAG_AUDIO => self.audio_tag(ts, &body)?,
                _ => {}
            }
        }
        self.buf.drain(..pos);
        Ok(())
    }

    fn video_tag(&mut self, ts: u32, body: &[u8]) -> Result<(), FormatError> {
        let bad = |d: String| FormatError::invalid("FLV video tag", d);
        let Some(&b0) = body.first() else { return Ok(()) };
        // (codec, packet type, keyframe, data, composition time in ms)
        let (vc, sequence_start, keyframe, data, cts) = if b0 & 0x80 != 0 {
            // Enhanced FLV: [1 | frame type 3 | packet type 4] FourCC
            let packet_type = b0 & 0x0f;
            let fourcc = body.get(1..5).ok_or_else(|| bad("truncated enhanced header".into()))?;
            let vc = match fourcc {
                b"hvc1" => VideoCodec::H265,
                b"avc1" => VideoCodec::H264,
                _ => return Ok(()), // AV1, VP9...: not announced
            };
            let key = (b0 >> 4) & 7 == 1;
            match packet_type {
                0 => (vc, true, key, &body[5..], 0),
                1 => {
                    let c = body.get(5..8).ok_or_else(|| bad("truncated composition time".into()))?;
                    (vc, false, key, &body[8..], cts24(c))
                }
                3 => (vc, false, key, &body[5..], 0),
                _ => return Ok(()), // SequenceEnd, metadata, MPEG-2 TS sequence start: nothing to emit
            }
        } else {
            let vc = match b0 & 0x0f {
                7 => VideoCodec::H264,
                12 => VideoCodec::H265,
                _ => return Ok(()), // Sorenson, VP6...: not announced
            };
            let h = body.get(..5).ok_or_else(|| bad("truncated AVC header".into()))?;
            match h[1] {
                0 => (vc, true, true, &body[5..], 0),
                1 => (vc, false, b0 >> 4 == 1, &body[5..], cts24(&h[2..5])),
                _ => return Ok(()), // end of sequence
            }
        };
        if sequence_start {
            let (config, length_size) = VideoConfig::parse_record(vc, data)?;
            let codec = config.to_codec();
            let changed = !matches!(&self.video, Some((_, DemuxTrack::Video { config: c, .. })) if *c == config);
            let index = match &self.video {
                Some((i, _)) => *i,
                None => {
                    self.next_index += 1;
                    self.next_index - 1
                }
            };
            if changed {
                self.events.push_back(DemuxEvent::Track { index, kind: Kind::Video, codec });
            }
            self.video = Some((index, DemuxTrack::Video { config, length_size }));
            return Ok(());
        }
        let Some((index, DemuxTrack::Video { config, length_size, .. })) = &self.video else {
            return Ok(()); // frames before the sequence header cannot be decoded
        };
        // Re-frame to 4-byte lengths, checking every length against the tag.
        let mut avcc = Vec::with_capacity(data.len() + 16);
        let mut r = Reader { data, pos: 0 };
        while r.pos < data.len() {
            let len_bytes = r.take(*length_size).map_err(|_| bad("truncated NAL length".into()))?;
            let len = len_bytes.iter().fold(0usize, |a, &b| (a << 8) | usize::from(b));
            let nal = r.take(len).map_err(|_| bad(format!("NAL length {len} runs past the tag")))?;
            avcc.extend_from_slice(&(len as u32).to_be_bytes());
            avcc.extend_from_slice(nal);
        }
        if avcc.is_empty() {
            return Ok(());
        }
        if keyframe {
            if let Some(v) = with_parameter_sets(config, &avcc) {
                avcc = v;
            }
        }
        let pts_ms = i64::from(ts) + i64::from(cts);
        let frame = Frame { timestamp: (pts_ms * 90) as u32, keyframe, payload: Bytes::from(avcc), rtp: Vec::new() };
        self.events.push_back(DemuxEvent::Frame { index: *index, frame });
        Ok(())
    }

    fn audio_tag(&mut self, ts: u32, body: &[u8]) -> Result<(), FormatError> {
        let Some(&b0) = body.first() else { return Ok(()) };
        match b0 >> 4 {
            10 => {
                let Some(&packet_type) = body.get(1) else {
                    return Err(FormatError::invalid("FLV audio tag", "truncated AAC header"));
                };
                let data = &body[2..];
                if packet_type == 0 {
                    let asc = AudioSpecificConfig::parse(data)?;
                    let index = match &self.audio {
                        Some((i, _)) => *i,
                        None => {
                            self.next_index += 1;
                            self.next_index - 1
                        }
                    };
                    let hex: String = data.iter().map(|b| format!("{b:02X}")).collect();
                    let fmtp = format!(
                        "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
                    );
                    let c = Codec::new(codec::AAC, asc.sample_rate, u16::from(asc.channels), 96).with_fmtp(fmtp);
                    self.events.push_back(DemuxEvent::Track { index, kind: Kind::Audio, codec: c });
                    self.audio = Some((index, DemuxTrack::Aac { rate: asc.sample_rate }));
                } else if let Some((index, DemuxTrack::Aac { rate })) = &self.audio {
                    if !data.is_empty() {
                        let timestamp = rescale(i64::from(ts), 1000, *rate) as u32;
                        let frame =
                            Frame { timestamp, keyframe: true, payload: Bytes::copy_from_slice(data), rtp: Vec::new() };
                        self.events.push_back(DemuxEvent::Frame { index: *index, frame });
                    }
                }
            }
            fmt @ (7 | 8) => {
                if self.audio.is_none() {
                    let index = self.next_index;
                    self.next_index += 1;
                    let name = if fmt == 7 { codec::PCMA } else { codec::PCMU };
                    let c = Codec::new(name, 8000, 1, if fmt == 7 { 8 } else { 0 });
                    self.events.push_back(DemuxEvent::Track { index, kind: Kind::Audio, codec: c });
                    self.audio = Some((index, DemuxTrack::G711));
                }
                if let Some((index, DemuxTrack::G711)) = &self.audio {
                    let timestamp = ts.wrapping_mul(8);
                    let frame = Frame {
                        timestamp,
                        keyframe: true,
                        payload: Bytes::copy_from_slice(&body[1..]),
                        rtp: Vec::new(),
                    };
                    self.events.push_back(DemuxEvent::Frame { index: *index, frame });
                }
            }
            _ => {} // MP3, Speex...: not ours to decode; the track is simply not announced
        }
        Ok(())
    }
}

/// Signed 24-bit composition time.
fn cts24(b: &[u8]) -> i32 {
    ((i32::from(b[0]) << 24) | (i32::from(b[1]) << 16) | (i32::from(b[2]) << 8)) >> 8
}

#[cfg(test)]
mod tests;
