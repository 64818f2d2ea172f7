//! Fragmented MP4: an init segment (`ftyp` + `moov`) and `moof` + `mdat` fragments, for MSE over
//! WebSocket, progressive `stream.mp4` and HLS/fMP4.
//!
//! The boxes are written here rather than with `mp4-atom`: we need about fifteen write-only boxes with
//! fixed layouts, whose byte layout is the whole point of the tests; `mp4-atom` models every box as a
//! struct tree whose shape has changed between its minor releases (e.g. `Traf::trun` went from `Option`
//! to `Vec`), and offers nothing for the fragmenting policy, which is ours anyway. A `Writer` with size
//! patching is ~60 lines and has no dependency to track.
//!
//! Timing: each track's decode time starts at 0 at its first accepted frame (video: the first keyframe;
//! audio: the first frame once video, if any, has started) and follows its RTP timestamps, unwrapped over
//! 32-bit wraparound, in the track's own clock (the `mdhd` timescale). Sample durations are timestamp
//! deltas; the last sample of a fragment gets the previous delta, and the next fragment's `tfdt`
//! corrects any difference. Frames carry no decode timestamps, so composition offsets are zero (cameras
//! send no B-frames).

use crate::bits::Writer;
use crate::flac::{FlacEncoder, PcmInput};
use crate::video::{VideoCodec, VideoConfig};
use crate::FormatError;
use bytes::Bytes;
use media::aac::AudioSpecificConfig;
use media::timestamp::Unwrapper;
use media::{codec, h264, Codec, Frame, Kind};
use std::collections::VecDeque;
pub use visual::{jpeg_size, keyframe_signature, Visual, VisualCodec};

pub(crate) mod visual;

/// When fragments are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FragmentPolicy {
    /// Low latency: one fragment per video frame, carrying the audio gathered since the previous one.
    /// Without video, one fragment per audio frame.
    #[default]
    PerFrame,
    /// One fragment per GOP (cut before each video keyframe); without video, about one second of audio.
    PerGop,
}

/// A fragment is cut early when its pending samples exceed this many bytes.
pub const MAX_FRAGMENT_BYTES: usize = 16 << 20;

/// Fragments waiting in [`Fmp4Muxer::fragment`]'s queue beyond this many are dropped, oldest first.
pub const MAX_READY_FRAGMENTS: usize = 64;

enum Config {
    Video(VideoConfig),
    /// AV1, VP9, MJPEG.
    Visual(Visual),
    Aac {
        asc: Vec<u8>,
        config: AudioSpecificConfig,
    },
    Opus {
        channels: u16,
    },
    Flac(FlacEncoder),
}

struct Sample {
    dts: u64,
    data: Bytes,
    sync: bool,
    /// Duration known from the payload (audio), used when no timestamp delta is known yet.
    nominal: u32,
}

struct Track {
    kind: Kind,
    codec: Codec,
    timescale: u32,
    config: Option<Config>,
    unwrap: Unwrapper,
    last_dts: Option<u64>,
    last_delta: u32,
    samples: Vec<Sample>,
    pending_bytes: usize,
}

/// fMP4 muxer. Feed frames with [`Fmp4Muxer::push`], take fragments with [`Fmp4Muxer::fragment`].
pub struct Fmp4Muxer {
    tracks: Vec<Track>,
    policy: FragmentPolicy,
    sequence: u32,
    ready: VecDeque<Bytes>,
    video: Option<usize>,
    started: bool,
    init: Option<Bytes>,
    /// See [`Fmp4Muxer::follow_changes`].
    follow: bool,
}

impl Fmp4Muxer {
    /// A muxer for these tracks (in `trak` order, track IDs 1..). Video: H264, H265 (parameter sets from
    /// the fmtp or the first keyframe), AV1, VP9 and JPEG (MJPEG; see [`visual`]). Audio: AAC (fmtp `config=` required), OPUS, and PCMA/PCMU/L16
    /// repacked to FLAC.
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<Fmp4Muxer, FormatError> {
        Self::with_policy(tracks, FragmentPolicy::default())
    }

    pub fn with_policy(tracks: &[(Kind, Codec)], policy: FragmentPolicy) -> Result<Fmp4Muxer, FormatError> {
        if tracks.is_empty() {
            return Err(FormatError::MissingConfig("fMP4: no tracks".into()));
        }
        let mut out = Vec::with_capacity(tracks.len());
        let mut video = None;
        for (i, (kind, c)) in tracks.iter().enumerate() {
            let (timescale, config) = match (kind, c.name.as_str()) {
                (Kind::Video, codec::H264 | codec::H265) => {
                    if video.is_none() {
                        video = Some(i);
                    }
                    (
                        if c.clock_rate == 0 { 90000 } else { c.clock_rate },
                        VideoConfig::from_codec(c).map(Config::Video),
                    )
                }
                (Kind::Video, codec::AV1 | codec::VP9 | codec::JPEG) => {
                    if video.is_none() {
                        video = Some(i);
                    }
                    (if c.clock_rate == 0 { 90000 } else { c.clock_rate }, Visual::from_codec(c).map(Config::Visual))
                }
                (Kind::Audio, codec::AAC) => {
                    let hex = c.fmtp_param("config").ok_or_else(|| {
                        FormatError::MissingConfig(format!("fMP4: AAC track {i} has no config= in its fmtp"))
                    })?;
                    let config = AudioSpecificConfig::from_hex(hex)?;
                    let asc = hex_bytes(hex).unwrap_or_else(|| config.to_bytes());
                    (config.sample_rate, Some(Config::Aac { asc, config }))
                }
                (Kind::Audio, codec::OPUS) => (48000, Some(Config::Opus { channels: c.channels.clamp(1, 2) })),
                (Kind::Audio, codec::PCMA | codec::PCMU | codec::L16) => {
                    let input =
                        PcmInput::from_codec_name(&c.name).ok_or_else(|| FormatError::unsupported("fMP4", &c.name))?;
                    let rate = if c.clock_rate == 0 { 8000 } else { c.clock_rate };
                    let enc = FlacEncoder::new(input, rate, c.channels.clamp(1, 8) as u8)?;
                    (rate, Some(Config::Flac(enc)))
                }
                _ => return Err(FormatError::unsupported("fMP4", &format!("{kind}:{}", c.name))),
            };
            out.push(Track {
                kind: *kind,
                codec: c.clone(),
                timescale,
                config,
                unwrap: Unwrapper::default(),
                last_dts: None,
                last_delta: 0,
                samples: Vec::new(),
                pending_bytes: 0,
            });
        }
        let mut m = Fmp4Muxer {
            started: video.is_none(),
            tracks: out,
            policy,
            sequence: 0,
            ready: VecDeque::new(),
            video,
            init: None,
            follow: false,
        };
        m.build_init();
        Ok(m)
    }

    /// The init segment (`ftyp` + `moov`), once every video track's parameter sets are known (from the
    /// fmtp at once, else after the first keyframe).
    pub fn init_segment(&self) -> Option<Bytes> {
        self.init.clone()
    }

    /// MSE type in go2rtc's form: `video/mp4; codecs="avc1.64001F,mp4a.40.2"`; `None` until the init
    /// segment is known.
    pub fn mime_type(&self) -> Option<String> {
        self.init.as_ref()?;
        let codecs: Vec<String> = self
            .tracks
            .iter()
            .filter_map(|t| {
                Some(match t.config.as_ref()? {
                    Config::Video(v) => v.codec_string(),
                    Config::Visual(v) => v.codec_string(),
                    Config::Aac { config, .. } => format!("mp4a.40.{}", config.object_type),
                    Config::Opus { .. } => "opus".to_string(),
                    Config::Flac(_) => "flac".to_string(),
                })
            })
            .collect();
        Some(format!("video/mp4; codecs=\"{}\"", codecs.join(",")))
    }

    /// Follow a picture that changes (another publisher taking the stream over with another size or
    /// profile): a video keyframe whose parameter sets (H.264/H.265), sequence header (AV1), header
    /// (VP9) or size (MJPEG) differ from the init segment's ends the fragment in progress, and
    /// [`Fmp4Muxer::fragment`] then gives a new init segment (`ftyp` + `moov`) before the fragments it
    /// describes, as MSE's SourceBuffer and progressive readers take it. Off by default: segmenters
    /// (HLS, the recorder) start a new segment with its own init instead.
    pub fn follow_changes(&mut self, on: bool) {
        self.follow = on;
    }

    /// Adds one frame of track `track`. Video frames before the first keyframe (and audio before video
    /// starts) are dropped, as decoders could not use them.
    pub fn push(&mut self, track: usize, frame: &Frame) -> Result<(), FormatError> {
        let t = self.tracks.get(track).ok_or(FormatError::TrackIndex(track))?;
        if frame.payload.is_empty() {
            return Ok(());
        }
        if self.follow && frame.keyframe && self.init.is_some() {
            let changed = match &t.config {
                Some(Config::Video(cur)) => VideoConfig::from_nals(cur.codec, h264::avcc_nals(&frame.payload))
                    .filter(|new| new != cur)
                    .map(Config::Video),
                Some(Config::Visual(cur)) => {
                    Visual::from_keyframe(&t.codec, &frame.payload).filter(|new| new != cur).map(Config::Visual)
                }
                _ => None,
            };
            if let Some(config) = changed {
                self.flush();
                self.tracks[track].config = Some(config);
                self.build_init();
                if let Some(init) = self.init.clone() {
                    self.ready.push_back(init);
                }
            }
        }
        let t = &mut self.tracks[track];
        let is_video = t.kind == Kind::Video;
        let mut sync = true;
        let mut nominal = 0;
        let data = match &mut t.config {
            None if VisualCodec::from_name(&t.codec.name).is_some() => {
                // AV1/VP9 without the picture size yet, MJPEG before its first frame.
                if !frame.keyframe {
                    return Ok(());
                }
                let Some(v) = Visual::from_keyframe(&t.codec, &frame.payload) else {
                    return Ok(());
                };
                t.config = Some(Config::Visual(v));
                self.build_init();
                return self.push(track, frame);
            }
            None => {
                // Video without parameter sets yet: learn them from a keyframe.
                let vc = VideoCodec::from_name(&t.codec.name)
                    .ok_or_else(|| FormatError::unsupported("fMP4", &t.codec.name))?;
                if !frame.keyframe {
                    return Ok(());
                }
                let Some(cfg) = VideoConfig::from_nals(vc, h264::avcc_nals(&frame.payload)) else {
                    return Ok(());
                };
                t.config = Some(Config::Video(cfg));
                self.build_init();
                return self.push(track, frame);
            }
            Some(Config::Video(_)) => {
                sync = frame.keyframe;
                frame.payload.clone()
            }
            Some(Config::Visual(v)) => {
                sync = frame.keyframe;
                v.sample(&frame.payload)
            }
            Some(Config::Aac { .. }) => {
                nominal = media::aac::SAMPLES_PER_FRAME;
                frame.payload.clone()
            }
            Some(Config::Opus { .. }) => {
                nominal = 960;
                frame.payload.clone()
            }
            Some(Config::Flac(enc)) => {
                nominal = enc.block_len(&frame.payload) as u32;
                match enc.encode(&frame.payload) {
                    Ok(f) => Bytes::from(f),
                    Err(_) => return Ok(()), // a partial sample or an oversize payload: skip the frame
                }
            }
        };
        if self.init.is_none() {
            return Ok(());
        }
        if is_video && Some(track) == self.video && !self.started {
            if !frame.keyframe {
                return Ok(());
            }
            self.started = true;
        }
        if !self.started {
            return Ok(());
        }
        let t = &mut self.tracks[track];
        let ext = t.unwrap.unwrap(frame.timestamp).max(0) as u64;
        let dts = match t.last_dts {
            Some(last) if ext < last => last, // a step back: keep decode times monotonic
            _ => ext,
        };
        if let Some(last) = t.last_dts {
            let d = (dts - last).min(u64::from(u32::MAX)) as u32;
            if d > 0 {
                t.last_delta = d;
            }
        }
        if t.last_delta == 0 && nominal > 0 {
            t.last_delta = nominal;
        }
        t.last_dts = Some(dts);

        // Cut before this sample?
        let cut_before = match self.policy {
            FragmentPolicy::PerGop => is_video && sync && Some(track) == self.video,
            FragmentPolicy::PerFrame => false,
        };
        if cut_before {
            self.flush();
        }
        let t = &mut self.tracks[track];
        t.pending_bytes += data.len();
        t.samples.push(Sample { dts, data, sync, nominal });
        let pending: usize = self.tracks.iter().map(|t| t.pending_bytes).sum();
        let cut_after = pending > MAX_FRAGMENT_BYTES
            || match (self.policy, self.video) {
                (FragmentPolicy::PerFrame, Some(v)) => v == track,
                (FragmentPolicy::PerFrame, None) => true,
                (FragmentPolicy::PerGop, Some(_)) => false,
                (FragmentPolicy::PerGop, None) => {
                    let t = &self.tracks[track];
                    let first = t.samples.first().map_or(dts, |s| s.dts);
                    dts - first >= u64::from(t.timescale)
                }
            };
        if cut_after {
            self.flush();
        }
        Ok(())
    }

    /// The next finished fragment (`moof` + `mdat`).
    pub fn fragment(&mut self) -> Option<Bytes> {
        self.ready.pop_front()
    }

    /// Cuts a fragment from whatever is pending (e.g. at the end of a stream).
    pub fn flush(&mut self) {
        if self.tracks.iter().all(|t| t.samples.is_empty()) {
            return;
        }
        self.sequence = self.sequence.wrapping_add(1);
        let frag = self.build_fragment();
        if self.ready.len() >= MAX_READY_FRAGMENTS {
            self.ready.pop_front();
        }
        self.ready.push_back(frag);
    }

    fn build_init(&mut self) {
        if self.tracks.iter().any(|t| t.config.is_none()) {
            return;
        }
        let mut w = Writer::default();
        let ftyp = w.start(b"ftyp");
        w.bytes(b"iso5");
        w.u32(512);
        for b in [b"iso5", b"iso6", b"mp41"] {
            w.bytes(b);
        }
        w.end(ftyp);

        let moov = w.start(b"moov");
        let mvhd = w.start_full(b"mvhd", 0, 0);
        w.u32(0); // creation
        w.u32(0); // modification
        w.u32(1000); // timescale
        w.u32(0); // duration
        w.u32(0x0001_0000); // rate 1.0
        w.u16(0x0100); // volume 1.0
        w.zeros(10);
        write_matrix(&mut w);
        w.zeros(24);
        w.u32(self.tracks.len() as u32 + 1); // next track ID
        w.end(mvhd);

        for (i, t) in self.tracks.iter().enumerate() {
            // Checked at the top: every track has its config.
            let Some(cfg) = &t.config else { return };
            let id = i as u32 + 1;
            let trak = w.start(b"trak");
            let tkhd = w.start_full(b"tkhd", 0, 3); // enabled, in movie
            w.u32(0);
            w.u32(0);
            w.u32(id);
            w.u32(0);
            w.u32(0); // duration
            w.zeros(8);
            w.u16(0); // layer
            w.u16(0); // alternate group
            w.u16(if t.kind == Kind::Audio { 0x0100 } else { 0 });
            w.u16(0);
            write_matrix(&mut w);
            let (width, height) = match cfg {
                Config::Video(v) => (v.width, v.height),
                Config::Visual(v) => (v.width, v.height),
                _ => (0, 0),
            };
            w.u32(width << 16);
            w.u32(height << 16);
            w.end(tkhd);

            let mdia = w.start(b"mdia");
            let mdhd = w.start_full(b"mdhd", 0, 0);
            w.u32(0);
            w.u32(0);
            w.u32(t.timescale);
            w.u32(0);
            w.u16(0x55c4); // "und"
            w.u16(0);
            w.end(mdhd);
            let hdlr = w.start_full(b"hdlr", 0, 0);
            w.u32(0);
            let (handler, name): (&[u8; 4], &[u8]) =
                if t.kind == Kind::Video { (b"vide", b"VideoHandler\0") } else { (b"soun", b"SoundHandler\0") };
            w.bytes(handler);
            w.zeros(12);
            w.bytes(name);
            w.end(hdlr);

            let minf = w.start(b"minf");
            if t.kind == Kind::Video {
                let vmhd = w.start_full(b"vmhd", 0, 1);
                w.zeros(8);
                w.end(vmhd);
            } else {
                let smhd = w.start_full(b"smhd", 0, 0);
                w.zeros(4);
                w.end(smhd);
            }
            let dinf = w.start(b"dinf");
            let dref = w.start_full(b"dref", 0, 0);
            w.u32(1);
            let url = w.start_full(b"url ", 0, 1); // self-contained
            w.end(url);
            w.end(dref);
            w.end(dinf);

            let stbl = w.start(b"stbl");
            let stsd = w.start_full(b"stsd", 0, 0);
            w.u32(1);
            write_sample_entry(&mut w, cfg, t.timescale);
            w.end(stsd);
            for b in [b"stts", b"stsc", b"stco"] {
                let p = w.start_full(b, 0, 0);
                w.u32(0);
                w.end(p);
            }
            let stsz = w.start_full(b"stsz", 0, 0);
            w.u32(0);
            w.u32(0);
            w.end(stsz);
            w.end(stbl);
            w.end(minf);
            w.end(mdia);
            w.end(trak);
        }

        let mvex = w.start(b"mvex");
        for i in 0..self.tracks.len() {
            let trex = w.start_full(b"trex", 0, 0);
            w.u32(i as u32 + 1);
            w.u32(1); // sample description index
            w.u32(0);
            w.u32(0);
            w.u32(0);
            w.end(trex);
        }
        w.end(mvex);
        w.end(moov);
        self.init = Some(Bytes::from(w.buf));
    }

    fn build_fragment(&mut self) -> Bytes {
        let mut w = Writer::default();
        let moof = w.start(b"moof");
        let mfhd = w.start_full(b"mfhd", 0, 0);
        w.u32(self.sequence);
        w.end(mfhd);
        // (position of the data_offset field, offset of the track's data inside mdat)
        let mut offsets = Vec::new();
        let mut mdat_len = 0usize;
        for (i, t) in self.tracks.iter().enumerate() {
            if t.samples.is_empty() {
                continue;
            }
            let traf = w.start(b"traf");
            let tfhd = w.start_full(b"tfhd", 0, 0x02_0000); // default-base-is-moof
            w.u32(i as u32 + 1);
            w.end(tfhd);
            let tfdt = w.start_full(b"tfdt", 1, 0);
            w.u64(t.samples[0].dts);
            w.end(tfdt);
            // data offset, sample duration, size, flags present
            let trun = w.start_full(b"trun", 0, 0x000701);
            w.u32(t.samples.len() as u32);
            offsets.push((w.buf.len(), mdat_len));
            w.u32(0);
            for (k, s) in t.samples.iter().enumerate() {
                let duration = match t.samples.get(k + 1) {
                    Some(next) => (next.dts - s.dts).min(u64::from(u32::MAX)) as u32,
                    None if t.last_delta > 0 => t.last_delta,
                    None if s.nominal > 0 => s.nominal,
                    None => t.timescale / 25,
                };
                w.u32(duration);
                w.u32(s.data.len() as u32);
                w.u32(if s.sync { 0x0200_0000 } else { 0x0101_0000 });
                mdat_len += s.data.len();
            }
            w.end(trun);
            w.end(traf);
        }
        w.end(moof);
        let moof_len = w.buf.len();
        for (pos, off) in offsets {
            let v = (moof_len + 8 + off) as u32;
            w.buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
        }
        w.u32((mdat_len + 8) as u32);
        w.bytes(b"mdat");
        w.buf.reserve(mdat_len);
        for t in &mut self.tracks {
            for s in t.samples.drain(..) {
                w.bytes(&s.data);
            }
            t.pending_bytes = 0;
        }
        Bytes::from(w.buf)
    }
}

fn write_matrix(w: &mut Writer) {
    for v in [0x0001_0000u32, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000] {
        w.u32(v);
    }
}

/// VisualSampleEntry fields before its child boxes.
fn write_visual_entry_head(w: &mut Writer, width: u32, height: u32) {
    w.zeros(6);
    w.u16(1); // data reference index
    w.zeros(16);
    w.u16(width.min(0xffff) as u16);
    w.u16(height.min(0xffff) as u16);
    w.u32(0x0048_0000);
    w.u32(0x0048_0000);
    w.u32(0);
    w.u16(1); // frame count
    w.zeros(32); // compressor name
    w.u16(0x0018);
    w.u16(0xffff);
}

fn write_audio_entry_head(w: &mut Writer, channels: u16, rate: u32) {
    w.zeros(6);
    w.u16(1); // data reference index
    w.zeros(8);
    w.u16(channels);
    w.u16(16); // sample size
    w.u16(0);
    w.u16(0);
    w.u32(if rate < 65536 { rate << 16 } else { 0 });
}

fn write_sample_entry(w: &mut Writer, cfg: &Config, timescale: u32) {
    match cfg {
        Config::Video(v) => {
            let (entry, cfg_box) = match v.codec {
                VideoCodec::H264 => (b"avc1", b"avcC"),
                VideoCodec::H265 => (b"hvc1", b"hvcC"),
            };
            let e = w.start(entry);
            write_visual_entry_head(w, v.width, v.height);
            let c = w.start(cfg_box);
            w.bytes(&v.record());
            w.end(c);
            w.end(e);
        }
        Config::Visual(v) => {
            let entry = match v.codec {
                VisualCodec::Av1 => b"av01",
                VisualCodec::Vp9 => b"vp09",
                VisualCodec::Mjpeg => b"mp4v",
            };
            let e = w.start(entry);
            write_visual_entry_head(w, v.width, v.height);
            match v.codec {
                VisualCodec::Av1 => {
                    let c = w.start(b"av1C");
                    w.bytes(&v.record);
                    w.end(c);
                }
                VisualCodec::Vp9 => {
                    // The record is the full box's body, version and flags included.
                    let c = w.start(b"vpcC");
                    w.bytes(&v.record);
                    w.end(c);
                }
                VisualCodec::Mjpeg => {
                    // MediaMTX's form: ES_Descriptor, DecoderConfigDescriptor with objectTypeIndication
                    // 0x6C (JPEG, ISO/IEC 10918-1) and no decoder specific info, SLConfigDescriptor.
                    let esds = w.start_full(b"esds", 0, 0);
                    let dcd_len = 13;
                    let es_len = 3 + 5 + dcd_len + 5 + 1;
                    write_descriptor_head(w, 0x03, es_len);
                    w.u16(1); // ES_ID
                    w.u8(0);
                    write_descriptor_head(w, 0x04, dcd_len);
                    w.u8(0x6c);
                    w.u8(0x11); // visual stream, reserved bit
                    w.u24(0);
                    w.u32(1_000_000);
                    w.u32(1_000_000);
                    write_descriptor_head(w, 0x06, 1);
                    w.u8(2);
                    w.end(esds);
                }
            }
            w.end(e);
        }
        Config::Aac { asc, config } => {
            let e = w.start(b"mp4a");
            write_audio_entry_head(w, u16::from(config.channels.max(1)), timescale);
            let esds = w.start_full(b"esds", 0, 0);
            // Descriptor lengths in the 4-byte form, so no length can overflow one byte.
            let asc_len = asc.len().min(0x0fff_ffff) as u32;
            let dcd_len = 13 + 5 + asc_len;
            let es_len = 3 + 5 + dcd_len + 5 + 1;
            write_descriptor_head(w, 0x03, es_len);
            w.u16(1); // ES_ID
            w.u8(0);
            write_descriptor_head(w, 0x04, dcd_len);
            w.u8(0x40); // MPEG-4 audio
            w.u8(0x15); // audio stream
            w.u24(0);
            w.u32(0);
            w.u32(0);
            write_descriptor_head(w, 0x05, asc_len);
            w.bytes(&asc[..asc_len as usize]);
            write_descriptor_head(w, 0x06, 1);
            w.u8(2);
            w.end(esds);
            w.end(e);
        }
        Config::Opus { channels } => {
            let e = w.start(b"Opus");
            write_audio_entry_head(w, *channels, 48000);
            let d = w.start(b"dOps");
            w.u8(0); // version
            w.u8(*channels as u8);
            w.u16(0); // pre-skip
            w.u32(48000);
            w.u16(0); // output gain
            w.u8(0); // channel mapping family
            w.end(d);
            w.end(e);
        }
        Config::Flac(enc) => {
            let e = w.start(b"fLaC");
            write_audio_entry_head(w, u16::from(enc.channels()), enc.sample_rate());
            let d = w.start_full(b"dfLa", 0, 0);
            w.u8(0x80); // last metadata block, STREAMINFO
            w.u24(34);
            w.bytes(&enc.streaminfo());
            w.end(d);
            w.end(e);
        }
    }
}

fn write_descriptor_head(w: &mut Writer, tag: u8, len: u32) {
    w.u8(tag);
    w.u8(0x80 | ((len >> 21) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 14) & 0x7f) as u8);
    w.u8(0x80 | ((len >> 7) & 0x7f) as u8);
    w.u8((len & 0x7f) as u8);
}

fn hex_bytes(hex: &str) -> Option<Vec<u8>> {
    let hex = hex.trim();
    if hex.len() % 2 != 0 || !hex.is_ascii() {
        return None;
    }
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok()).collect()
}

#[cfg(test)]
mod tests;
