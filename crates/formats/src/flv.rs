//! FLV: muxer (HTTP-FLV output, RTMP tag payloads) and demuxer (HTTP-FLV sources, `ffmpeg -f flv`, RTMP
//! publishers).
//!
//! H.264 uses the classic AVC video tags (codec id 7); H.265, AV1 and VP9 use Enhanced RTMP/FLV
//! (`hvc1`, `av01`, `vp09` FourCCs, as go2rtc, OBS and ffmpeg ≥ 6.1 write them; the header layouts are
//! in [`ex`]), and the demuxer also reads `avc1` and the non-standard codec id 12 some Chinese servers
//! use for H.265. Audio: AAC (sound format 10, or `mp4a`), Opus (`Opus`), and G.711 (7 = A-law,
//! 8 = µ-law). Multitrack packets are read (each track its own stream), not written.

use crate::bits::rescale;
use crate::video::{with_parameter_sets, Reader, VideoCodec, VideoConfig};
use crate::{DemuxEvent, FormatError};
use bytes::Bytes;
use media::aac::AudioSpecificConfig;
use media::timestamp::Unwrapper;
use media::{codec, h264, Codec, Frame, Kind};
use std::collections::VecDeque;

pub mod ex;

/// Tags with a body larger than this are refused (FLV allows 16 MiB; no camera frame needs more).
pub const MAX_TAG_SIZE: usize = 8 << 20;

const TAG_AUDIO: u8 = 8;
const TAG_VIDEO: u8 = 9;
const TAG_SCRIPT: u8 = 18;

enum MuxTrack {
    Video {
        codec: VideoCodec,
        config: Option<VideoConfig>,
        sent_header: bool,
    },
    /// AV1 (`av01`) and VP9 (`vp09`): Enhanced FLV with the record from the fmtp's `config=`, or,
    /// when the SDP had none (RTSP cameras, ffmpeg's ANNOUNCE), built from the first keyframe: frames
    /// before it are dropped, as a reader cannot decode them without the record.
    ExVideo {
        fourcc: [u8; 4],
        record: Option<Vec<u8>>,
        sent_header: bool,
    },
    Aac {
        asc: Vec<u8>,
        sent_header: bool,
    },
    Opus {
        head: Vec<u8>,
        sent_header: bool,
    },
    G711 {
        alaw: bool,
    },
}

/// The `onMetaData` codec id: classic ids, or the FourCC as a number for enhanced codecs (as ffmpeg).
fn fourcc_number(f: &[u8; 4]) -> f64 {
    f64::from(u32::from_be_bytes(*f))
}

/// FLV muxer. [`FlvMuxer::header`] first, then [`FlvMuxer::push`] for each frame; both give whole tags.
pub struct FlvMuxer {
    tracks: Vec<(MuxTrack, u32, Unwrapper)>,
    has_video: bool,
    has_audio: bool,
}

impl FlvMuxer {
    /// Tracks: H264 (classic tags); H265, AV1, VP9 (Enhanced FLV, `hvc1`/`av01`/`vp09`; AV1 and VP9
    /// take their record from the fmtp's `config=`, which [`FlvDemuxer`] gives, else from the first
    /// keyframe: the AV1 sequence header OBU, the VP9 uncompressed header); AAC (fmtp `config=`),
    /// PCMA/PCMU (8 kHz mono) audio, and OPUS (Enhanced FLV, `Opus`).
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
                (Kind::Video, codec::AV1 | codec::VP9) => {
                    has_video = true;
                    let record = c
                        .fmtp_param("config")
                        .map(|hex| {
                            unhex(hex).ok_or_else(|| {
                                FormatError::invalid(
                                    "configuration record (fmtp config=)",
                                    format!("{} not hex", c.name),
                                )
                            })
                        })
                        .transpose()?;
                    let fourcc = if c.name == codec::AV1 { *b"av01" } else { *b"vp09" };
                    MuxTrack::ExVideo { fourcc, record, sent_header: false }
                }
                (Kind::Audio, codec::AAC) => {
                    has_audio = true;
                    let asc = AudioSpecificConfig::from_fmtp(&c.fmtp)?.to_bytes();
                    let raw = c.fmtp_param("config").and_then(unhex);
                    MuxTrack::Aac { asc: raw.unwrap_or(asc), sent_header: false }
                }
                (Kind::Audio, codec::OPUS) => {
                    has_audio = true;
                    let stereo = c.fmtp_param("sprop-stereo").map_or(c.channels >= 2, |v| v == "1");
                    MuxTrack::Opus { head: opus_head(stereo), sent_header: false }
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
                MuxTrack::Video { codec: VideoCodec::H265, .. } => props.push(("videocodecid", fourcc_number(b"hvc1"))),
                MuxTrack::ExVideo { fourcc, .. } => props.push(("videocodecid", fourcc_number(fourcc))),
                MuxTrack::Aac { .. } => props.push(("audiocodecid", 10.0)),
                MuxTrack::Opus { .. } => props.push(("audiocodecid", fourcc_number(b"Opus"))),
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
                    VideoCodec::H265 => ex::video_header(true, ex::SEQUENCE_START, b"hvc1").to_vec(),
                };
                body.extend_from_slice(&cfg.record());
                write_tag(out, TAG_VIDEO, ts, &body);
            }
            MuxTrack::ExVideo { fourcc, record: Some(record), sent_header } if !*sent_header => {
                *sent_header = true;
                let mut body = ex::video_header(true, ex::SEQUENCE_START, fourcc).to_vec();
                body.extend_from_slice(record);
                write_tag(out, TAG_VIDEO, ts, &body);
            }
            MuxTrack::Aac { asc, sent_header } if !*sent_header => {
                *sent_header = true;
                let mut body = vec![0xaf, 0];
                body.extend_from_slice(asc);
                write_tag(out, TAG_AUDIO, ts, &body);
            }
            MuxTrack::Opus { head, sent_header } if !*sent_header => {
                *sent_header = true;
                let mut body = ex::audio_header(ex::SEQUENCE_START, b"Opus").to_vec();
                body.extend_from_slice(head);
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
        if let MuxTrack::ExVideo { fourcc, record, sent_header } = t {
            if frame.keyframe {
                let new = match record {
                    None => record_from_keyframe(fourcc, &frame.payload),
                    Some(r) if fourcc == b"av01" => av1_new_record(r, &frame.payload),
                    Some(_) => None,
                };
                if let Some(new) = new {
                    *record = Some(new);
                    *sent_header = false;
                }
            }
        }
        self.sequence_header(track, ms, &mut out);
        let (t, _, _) = &self.tracks[track];
        let mut body = Vec::with_capacity(frame.payload.len() + 8);
        let tag_type = match t {
            MuxTrack::Video { config: None, .. } | MuxTrack::ExVideo { record: None, .. } => return Ok(Bytes::new()),
            MuxTrack::Video { codec: VideoCodec::H264, .. } => {
                body.extend_from_slice(&[if frame.keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
                TAG_VIDEO
            }
            MuxTrack::Video { codec: VideoCodec::H265, .. } => {
                // CodedFramesX: no composition time (our frames carry presentation times).
                body.extend_from_slice(&ex::video_header(frame.keyframe, ex::CODED_FRAMES_X, b"hvc1"));
                TAG_VIDEO
            }
            MuxTrack::ExVideo { fourcc, .. } => {
                // AV1 and VP9 coded frames have no composition time field.
                body.extend_from_slice(&ex::video_header(frame.keyframe, ex::CODED_FRAMES, fourcc));
                TAG_VIDEO
            }
            MuxTrack::Aac { .. } => {
                body.extend_from_slice(&[0xaf, 1]);
                TAG_AUDIO
            }
            MuxTrack::Opus { .. } => {
                body.extend_from_slice(&ex::audio_header(ex::CODED_FRAMES, b"Opus"));
                TAG_AUDIO
            }
            MuxTrack::G711 { alaw } => {
                // format 7/8, 5.5 kHz rate field (ignored for G.711), 16-bit, mono
                body.push(if *alaw { 0x72 } else { 0x82 });
                TAG_AUDIO
            }
        };
        body.extend_from_slice(&frame.payload);
        write_tag(&mut out, tag_type, ms, &body);
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
    /// H.264 / H.265: length-prefixed NAL units, re-framed to 4-byte lengths.
    Nal {
        config: VideoConfig,
        length_size: usize,
    },
    /// AV1 (OBUs) and VP9 (frames): passed on as they come.
    Opaque,
    Aac {
        rate: u32,
    },
    Opus,
    G711,
}

/// One elementary stream of the FLV: `(kind, track id)` (id 0 outside multitrack packets).
struct DemuxStream {
    kind: Kind,
    id: u8,
    index: usize,
    codec: Codec,
    state: DemuxTrack,
}

/// Streams of one kind beyond this many (multitrack ids) are ignored.
pub const MAX_TRACKS_PER_KIND: usize = 8;

/// FLV demuxer. Feed chunks with [`FlvDemuxer::push`], drain [`FlvDemuxer::poll`]. Track indices are
/// given in the order the streams appear (normally video 0, audio 1). A malformed tag is an error:
/// FLV has no resync point, so the caller should drop the connection.
///
/// Reads classic tags (H.264, AAC, G.711, and H.265 as codec id 12 as some Chinese cameras send it)
/// and Enhanced RTMP/FLV tags ([`ex`]): `avc1`, `hvc1`, `av01`, `vp09` video, `mp4a` and `Opus` audio,
/// ModEx prefixes skipped. Every track of a multitrack packet becomes a track of its own (up to
/// [`MAX_TRACKS_PER_KIND`] per kind), in order of appearance; FourCCs we do not carry (`ac-3`, `fLaC`...)
/// are not announced.
#[derive(Default)]
pub struct FlvDemuxer {
    buf: Vec<u8>,
    header_done: bool,
    streams: Vec<DemuxStream>,
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

    fn find(&self, kind: Kind, id: u8) -> Option<usize> {
        self.streams.iter().position(|s| s.kind == kind && s.id == id)
    }

    /// A sequence start: announces the stream (again when its codec changed).
    fn announce(&mut self, kind: Kind, id: u8, codec: Codec, state: DemuxTrack) {
        match self.find(kind, id) {
            Some(i) => {
                let s = &mut self.streams[i];
                if s.codec != codec {
                    s.codec = codec.clone();
                    self.events.push_back(DemuxEvent::Track { index: s.index, kind, codec });
                }
                s.state = state;
            }
            None => {
                if self.streams.iter().filter(|s| s.kind == kind).count() >= MAX_TRACKS_PER_KIND {
                    return;
                }
                let index = self.next_index;
                self.next_index += 1;
                self.events.push_back(DemuxEvent::Track { index, kind, codec: codec.clone() });
                self.streams.push(DemuxStream { kind, id, index, codec, state });
            }
        }
    }

    fn emit(&mut self, index: usize, timestamp: u32, keyframe: bool, payload: Bytes) {
        let frame = Frame { timestamp, keyframe, payload, rtp: Vec::new() };
        self.events.push_back(DemuxEvent::Frame { index, frame });
    }

    fn video_tag(&mut self, ts: u32, body: &[u8]) -> Result<(), FormatError> {
        let bad = |d: String| FormatError::invalid("FLV video tag", d);
        let Some(&b0) = body.first() else { return Ok(()) };
        if b0 & 0x80 != 0 {
            let tag = ex::parse_video(body)?;
            let key = tag.frame_type == ex::FRAME_KEY;
            for p in tag.packets {
                match &p.fourcc {
                    b"avc1" | b"hvc1" => {
                        let vc = if &p.fourcc == b"avc1" { VideoCodec::H264 } else { VideoCodec::H265 };
                        match p.packet_type {
                            ex::SEQUENCE_START => self.nal_sequence(vc, p.track, p.data)?,
                            ex::CODED_FRAMES => {
                                let c = p.data.get(..3).ok_or_else(|| bad("truncated composition time".into()))?;
                                self.nal_frame(p.track, ts, cts24(c), key, &p.data[3..])?;
                            }
                            ex::CODED_FRAMES_X => self.nal_frame(p.track, ts, 0, key, p.data)?,
                            _ => {} // SequenceEnd, Metadata: nothing to emit
                        }
                    }
                    b"av01" | b"vp09" => match p.packet_type {
                        ex::SEQUENCE_START => {
                            let codec = if &p.fourcc == b"av01" { av1_codec(p.data)? } else { vp9_codec(p.data)? };
                            self.announce(Kind::Video, p.track, codec, DemuxTrack::Opaque);
                        }
                        ex::CODED_FRAMES | ex::CODED_FRAMES_X if !p.data.is_empty() => {
                            if let Some(i) = self.find(Kind::Video, p.track) {
                                if matches!(self.streams[i].state, DemuxTrack::Opaque) {
                                    let index = self.streams[i].index;
                                    self.emit(index, ts.wrapping_mul(90), key, Bytes::copy_from_slice(p.data));
                                }
                            }
                        }
                        _ => {} // SequenceEnd, Metadata, MPEG2TSSequenceStart (av1C comes as SequenceStart)
                    },
                    _ => {} // VP8, VVC...: not announced
                }
            }
            return Ok(());
        }
        let vc = match b0 & 0x0f {
            7 => VideoCodec::H264,
            12 => VideoCodec::H265,
            _ => return Ok(()), // Sorenson, VP6...: not announced
        };
        let h = body.get(..5).ok_or_else(|| bad("truncated AVC header".into()))?;
        match h[1] {
            0 => self.nal_sequence(vc, 0, &body[5..]),
            1 => self.nal_frame(0, ts, cts24(&h[2..5]), b0 >> 4 == 1, &body[5..]),
            _ => Ok(()), // end of sequence
        }
    }

    fn nal_sequence(&mut self, vc: VideoCodec, id: u8, data: &[u8]) -> Result<(), FormatError> {
        let (config, length_size) = VideoConfig::parse_record(vc, data)?;
        let codec = config.to_codec();
        self.announce(Kind::Video, id, codec, DemuxTrack::Nal { config, length_size });
        Ok(())
    }

    fn nal_frame(&mut self, id: u8, ts: u32, cts: i32, keyframe: bool, data: &[u8]) -> Result<(), FormatError> {
        let bad = |d: String| FormatError::invalid("FLV video tag", d);
        let Some(i) = self.find(Kind::Video, id) else {
            return Ok(()); // frames before the sequence header cannot be decoded
        };
        let DemuxTrack::Nal { config, length_size } = &self.streams[i].state else { return Ok(()) };
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
        let index = self.streams[i].index;
        self.emit(index, (pts_ms * 90) as u32, keyframe, Bytes::from(avcc));
        Ok(())
    }

    fn audio_tag(&mut self, ts: u32, body: &[u8]) -> Result<(), FormatError> {
        let Some(&b0) = body.first() else { return Ok(()) };
        match b0 >> 4 {
            9 => {
                let tag = ex::parse_audio(body)?;
                for p in tag.packets {
                    match (&p.fourcc, p.packet_type) {
                        (b"mp4a", ex::SEQUENCE_START) => self.aac_sequence(p.track, p.data)?,
                        (b"Opus", ex::SEQUENCE_START) => {
                            if let Some(codec) = opus_codec(p.data)? {
                                self.announce(Kind::Audio, p.track, codec, DemuxTrack::Opus);
                            }
                        }
                        (b"mp4a", ex::CODED_FRAMES) => self.audio_frame(p.track, ts, p.data, is_aac),
                        (b"Opus", ex::CODED_FRAMES) => self.audio_frame(p.track, ts, p.data, is_opus),
                        _ => {} // AC-3, FLAC, MP3, multichannel config, sequence end: nothing we carry
                    }
                }
            }
            10 => {
                let Some(&packet_type) = body.get(1) else {
                    return Err(FormatError::invalid("FLV audio tag", "truncated AAC header"));
                };
                if packet_type == 0 {
                    self.aac_sequence(0, &body[2..])?;
                } else {
                    self.audio_frame(0, ts, &body[2..], is_aac);
                }
            }
            fmt @ (7 | 8) => {
                if self.find(Kind::Audio, 0).is_none() {
                    let name = if fmt == 7 { codec::PCMA } else { codec::PCMU };
                    let c = Codec::new(name, 8000, 1, if fmt == 7 { 8 } else { 0 });
                    self.announce(Kind::Audio, 0, c, DemuxTrack::G711);
                }
                self.audio_frame(0, ts, &body[1..], is_g711);
            }
            _ => {} // MP3, Speex...: not ours to decode; the track is simply not announced
        }
        Ok(())
    }

    fn aac_sequence(&mut self, id: u8, data: &[u8]) -> Result<(), FormatError> {
        let asc = AudioSpecificConfig::parse(data)?;
        let hex = hex(data);
        let fmtp = format!(
            "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
        );
        let c = Codec::new(codec::AAC, asc.sample_rate, u16::from(asc.channels), 96).with_fmtp(fmtp);
        self.announce(Kind::Audio, id, c, DemuxTrack::Aac { rate: asc.sample_rate });
        Ok(())
    }

    /// A frame of audio stream `id` when that stream is of the tag's codec (`same` checks it).
    fn audio_frame(&mut self, id: u8, ts: u32, data: &[u8], same: fn(&DemuxTrack) -> bool) {
        let Some(i) = self.find(Kind::Audio, id) else { return };
        if data.is_empty() || !same(&self.streams[i].state) {
            return;
        }
        let timestamp = match self.streams[i].state {
            DemuxTrack::Aac { rate } => rescale(i64::from(ts), 1000, rate) as u32,
            DemuxTrack::Opus => ts.wrapping_mul(48),
            DemuxTrack::G711 => ts.wrapping_mul(8),
            DemuxTrack::Nal { .. } | DemuxTrack::Opaque => return,
        };
        let index = self.streams[i].index;
        self.emit(index, timestamp, true, Bytes::copy_from_slice(data));
    }
}

fn is_aac(s: &DemuxTrack) -> bool {
    matches!(s, DemuxTrack::Aac { .. })
}

fn is_opus(s: &DemuxTrack) -> bool {
    matches!(s, DemuxTrack::Opus)
}

fn is_g711(s: &DemuxTrack) -> bool {
    matches!(s, DemuxTrack::G711)
}

/// The `av1C` (from the sequence header OBU) or `vpcC` (from the uncompressed header: profile, bit
/// depth, chroma subsampling, range, and the level from the picture size) of a keyframe, as the fMP4
/// muxer builds them; `None` when the frame does not have what it needs.
fn record_from_keyframe(fourcc: &[u8; 4], keyframe: &[u8]) -> Option<Vec<u8>> {
    let name = if fourcc == b"av01" { codec::AV1 } else { codec::VP9 };
    crate::fmp4::Visual::from_keyframe(&Codec::new(name, 90000, 0, 96), keyframe).map(|v| v.record)
}

/// The `av1C` of an AV1 keyframe whose sequence header describes another picture (size, profile,
/// level, tier, bit depth, chroma) than `record`, the one readers have: a publisher with another
/// picture took the stream over (an `alwaysAvailable` slate, a replaced publisher). VP9 needs no new
/// `vpcC`: it holds no picture size, which every VP9 keyframe header carries.
fn av1_new_record(record: &[u8], keyframe: &[u8]) -> Option<Vec<u8>> {
    let bare = Codec::new(codec::AV1, 90000, 0, 96);
    let new = crate::fmp4::Visual::from_keyframe(&bare, keyframe)?;
    let old = crate::fmp4::Visual::from_codec(&bare.with_fmtp(format!("config={}", hex(record))));
    let same =
        old.is_some_and(|o| (o.width, o.height, o.record.get(1..3)) == (new.width, new.height, new.record.get(1..3)));
    (!same).then_some(new.record)
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02X}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len() / 2).map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// AV1 from its `av1C` record (AV1CodecConfigurationRecord: marker 1, version 1, profile/level,
/// tier and colour bits, then the sequence header OBUs). The fmtp has the AV1 RTP names
/// (`profile`, `level-idx`, `tier`) and the whole record as `config=` hex, as AAC's.
pub fn av1_codec(av1c: &[u8]) -> Result<Codec, FormatError> {
    if av1c.len() < 4 || av1c[0] != 0x81 {
        return Err(FormatError::invalid(
            "AV1 configuration record (av1C)",
            format!("{} bytes starting {:02x?}; expected marker/version 0x81", av1c.len(), &av1c[..av1c.len().min(4)]),
        ));
    }
    let (profile, level, tier) = (av1c[1] >> 5, av1c[1] & 0x1f, av1c[2] >> 7);
    let fmtp = format!("profile={profile};level-idx={level};tier={tier};config={}", hex(av1c));
    Ok(Codec::new(codec::AV1, 90000, 0, 96).with_fmtp(fmtp))
}

/// VP9 from its `vpcC` record (version 1 full box body: version, flags, profile, level, bit depth and
/// colour, codec init data size). fmtp: `profile-id` (RTP name) and the record as `config=` hex.
pub fn vp9_codec(vpcc: &[u8]) -> Result<Codec, FormatError> {
    if vpcc.len() < 12 || vpcc[0] != 1 {
        return Err(FormatError::invalid(
            "VP9 configuration record (vpcC)",
            format!("{} bytes, version {:?}; expected 12 bytes of version 1", vpcc.len(), vpcc.first()),
        ));
    }
    let fmtp = format!("profile-id={};config={}", vpcc[4], hex(vpcc));
    Ok(Codec::new(codec::VP9, 90000, 0, 96).with_fmtp(fmtp))
}

/// Opus from its identification header (RFC 7845 §5.1, `OpusHead`): OPUS/48000/2 as RTP names it
/// (RFC 7587), `sprop-stereo` from the channel count. Streams of more than two channels (mapping family
/// 1 and up) have no RTP form here: `None`, the track is not announced.
pub fn opus_codec(head: &[u8]) -> Result<Option<Codec>, FormatError> {
    if head.len() < 19 || &head[..8] != b"OpusHead" {
        return Err(FormatError::invalid(
            "Opus identification header",
            format!("{} bytes; expected at least 19 starting with OpusHead", head.len()),
        ));
    }
    let (channels, family) = (head[9], head[18]);
    if channels == 0 || channels > 2 || family != 0 {
        return Ok(None);
    }
    let fmtp = format!("sprop-stereo={}", u8::from(channels == 2));
    Ok(Some(Codec::new(codec::OPUS, 48000, 2, 96).with_fmtp(fmtp)))
}

/// The `OpusHead` of a mono or stereo stream (pre-skip 312 as libopus, 48 kHz, no gain, family 0).
fn opus_head(stereo: bool) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(if stereo { 2 } else { 1 });
    h.extend_from_slice(&312u16.to_le_bytes());
    h.extend_from_slice(&48000u32.to_le_bytes());
    h.extend_from_slice(&[0, 0, 0]);
    h
}

/// Signed 24-bit composition time.
fn cts24(b: &[u8]) -> i32 {
    ((i32::from(b[0]) << 24) | (i32::from(b[1]) << 16) | (i32::from(b[2]) << 8)) >> 8
}

#[cfg(test)]
mod tests;
