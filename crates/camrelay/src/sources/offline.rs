//! The offline slate of MediaMTX's `alwaysAvailable` paths: what readers of such a path get while no
//! publisher is there, looped in real time ([`super::clip`]). One track per `alwaysAvailableTracks`
//! entry, in the codec the publisher will send, so that the publisher continues the same tracks when
//! it arrives (`hub::publish`) and readers switch on its first keyframe without reconnecting:
//!
//! - `H264`, `H265`, `AV1`, `VP9`: a built-in one-second "camera offline" picture, 640x360, one
//!   keyframe then 24 inter frames (`assets/offline.h26x` and `assets/offline.{av1,vp9}.ivf`, made by
//!   `scripts/make-demo-clip.sh`). AV1 frames are temporal units of OBUs (the keyframe's with its
//!   sequence header), VP9 frames as libvpx writes them, both as the Enhanced RTMP/FLV ingest passes a
//!   live stream's frames on; their codecs carry the `av1C`/`vpcC` record (fmtp `config=`) that the
//!   FLV and fMP4 muxers need, made from the keyframe (`formats::fmp4::Visual`);
//! - `Opus`, `MPEG4Audio`, `G711`, `LPCM`: silence, in 20 ms frames (1024 samples for AAC).
//!
//! Or, with `alwaysAvailableFile`, the tracks of a file ([`Slate::from_file`]): an MP4 (read by
//! `formats::mp4`: H.264, H.265, AV1, VP9 video and AAC audio) or MPEG-TS (`formats::bytestream`:
//! H.264/H.265 and AAC), looped on one loop length for all tracks so they stay together; frames keep
//! the file's timing (B-frames too).

use bytes::Bytes;
use formats::video::VideoCodec;
use media::{codec, Codec, Direction, Kind, Media};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

use super::clip::{self, ClipTrack};

const H264_SLATE: &[u8] = include_bytes!("../../assets/offline.h264");
const H265_SLATE: &[u8] = include_bytes!("../../assets/offline.h265");
const AV1_SLATE: &[u8] = include_bytes!("../../assets/offline.av1.ivf");
const VP9_SLATE: &[u8] = include_bytes!("../../assets/offline.vp9.ivf");
const SLATE_FPS: u32 = 25;
/// Silent AAC-LC raw frames (one channel element of zeros): the same bytes at any sample rate.
const AAC_SILENCE_MONO: &[u8] = &[0x01, 0x18, 0x20, 0x07];
const AAC_SILENCE_STEREO: &[u8] = &[0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c];
/// A 20 ms CELT fullband Opus frame that decodes to silence (TOC byte, then the frame).
const OPUS_SILENCE_MONO: &[u8] = &[0xf8, 0xff, 0xfe];
const OPUS_SILENCE_STEREO: &[u8] = &[0xfc, 0xff, 0xfe];
/// 20 ms of silence in G.711 (A-law 0xD5, µ-law 0xFF) and LPCM, at up to 48 kHz stereo.
static G711A_SILENCE: [u8; 1920] = [0xd5; 1920];
static G711U_SILENCE: [u8; 1920] = [0xff; 1920];
static LPCM_SILENCE: [u8; 3840] = [0; 3840];

/// One track of the slate, as `alwaysAvailableTracks` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OfflineTrack {
    H264,
    H265,
    Av1,
    Vp9,
    Opus { channels: u16 },
    Aac { sample_rate: u32, channels: u16 },
    G711 { mu_law: bool, sample_rate: u32, channels: u16 },
    Lpcm { sample_rate: u32, channels: u16 },
}

/// `alwaysAvailableTracks` entries (`{codec, sampleRate, channelCount, muLaw}`), checked. An empty
/// list is one H.264 track.
pub fn parse_tracks(list: &[Value]) -> Result<Vec<OfflineTrack>, String> {
    if list.is_empty() {
        return Ok(vec![OfflineTrack::H264]);
    }
    list.iter()
        .enumerate()
        .map(|(i, t)| {
            let codec = t.get("codec").and_then(Value::as_str).unwrap_or("");
            let num = |key: &str| t.get(key).and_then(Value::as_u64);
            let rate = || -> Result<u32, String> {
                match num("sampleRate") {
                    Some(r) if (8000..=48000).contains(&r) => Ok(r as u32),
                    Some(r) => Err(format!("alwaysAvailableTracks[{i}]: sampleRate {r} (8000 to 48000)")),
                    None => Err(format!("alwaysAvailableTracks[{i}]: {codec} needs sampleRate")),
                }
            };
            let channels = || -> Result<u16, String> {
                match num("channelCount") {
                    Some(c @ 1..=2) => Ok(c as u16),
                    Some(c) => Err(format!("alwaysAvailableTracks[{i}]: channelCount {c} (1 or 2)")),
                    None => Err(format!("alwaysAvailableTracks[{i}]: {codec} needs channelCount")),
                }
            };
            match codec {
                "H264" => Ok(OfflineTrack::H264),
                "H265" => Ok(OfflineTrack::H265),
                "Opus" => Ok(OfflineTrack::Opus { channels: num("channelCount").map_or(2, |c| c.clamp(1, 2) as u16) }),
                "MPEG4Audio" => Ok(OfflineTrack::Aac { sample_rate: rate()?, channels: channels()? }),
                "G711" => Ok(OfflineTrack::G711 {
                    mu_law: t.get("muLaw").and_then(Value::as_bool).unwrap_or(false),
                    sample_rate: rate()?,
                    channels: channels()?,
                }),
                "LPCM" => Ok(OfflineTrack::Lpcm { sample_rate: rate()?, channels: channels()? }),
                "AV1" => Ok(OfflineTrack::Av1),
                "VP9" => Ok(OfflineTrack::Vp9),
                other => Err(format!(
                    "alwaysAvailableTracks[{i}]: unknown codec {other:?} (AV1, VP9, H265, H264, Opus, MPEG4Audio, G711, LPCM)"
                )),
            }
        })
        .collect()
}

/// The slate of one path: a clip track per offline track.
#[derive(Clone)]
pub struct Slate {
    pub spec: Vec<OfflineTrack>,
    pub clips: Vec<Arc<ClipTrack>>,
    /// `alwaysAvailableFile`, when the clips come from it.
    pub file: Option<std::path::PathBuf>,
}

impl std::fmt::Debug for Slate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let codecs: Vec<&str> = self.clips.iter().map(|c| c.codec.name.as_str()).collect();
        write!(f, "Slate({codecs:?})")
    }
}

impl PartialEq for Slate {
    fn eq(&self, other: &Slate) -> bool {
        self.spec == other.spec && self.file == other.file
    }
}

impl Eq for Slate {}

impl Slate {
    pub fn new(tracks: &[OfflineTrack]) -> Result<Slate, String> {
        let clips = tracks.iter().map(track_clip).collect::<Result<Vec<_>, String>>()?;
        Ok(Slate { spec: tracks.to_vec(), clips, file: None })
    }

    /// MediaMTX's `alwaysAvailableFile`: the H.264, H.265, AV1, VP9 (MP4) and AAC tracks of an MP4 or
    /// MPEG-TS file. The error says what is wrong with the file.
    pub fn from_file(path: &std::path::Path) -> Result<Slate, String> {
        let name = path.display();
        let size = std::fs::metadata(path).map_err(|e| format!("alwaysAvailableFile {name}: {e}"))?.len();
        if size > MAX_FILE {
            return Err(format!("alwaysAvailableFile {name}: {size} bytes (at most {MAX_FILE})"));
        }
        let data = std::fs::read(path).map_err(|e| format!("alwaysAvailableFile {name}: {e}"))?;
        let tracks = match formats::detect(&data) {
            Some(formats::Format::Mp4) => file_tracks_mp4(&data),
            Some(formats::Format::MpegTs) => file_tracks_ts(&data),
            other => Err(format!(
                "{} (an MP4 or MPEG-TS file is needed)",
                other.map_or("unknown format".into(), |f| format!("{f:?}"))
            )),
        }
        .map_err(|e| format!("alwaysAvailableFile {name}: {e}"))?;
        let clips = looped(tracks).map_err(|e| format!("alwaysAvailableFile {name}: {e}"))?;
        let spec = clips
            .iter()
            .map(|c| match c.codec.name.as_str() {
                codec::H265 => OfflineTrack::H265,
                codec::AV1 => OfflineTrack::Av1,
                codec::VP9 => OfflineTrack::Vp9,
                codec::AAC => OfflineTrack::Aac { sample_rate: c.codec.clock_rate, channels: c.codec.channels },
                _ => OfflineTrack::H264,
            })
            .collect();
        Ok(Slate { spec, clips, file: Some(path.to_path_buf()) })
    }

    /// What the slate sends, as a publisher's medias.
    pub fn medias(&self) -> Vec<Media> {
        self.clips
            .iter()
            .map(|c| {
                let kind = if c.codec.clock_rate == 90_000 { Kind::Video } else { Kind::Audio };
                Media::new(kind, Direction::RecvOnly, vec![c.codec.clone()])
            })
            .collect()
    }
}

/// Largest `alwaysAvailableFile` read (it is held in memory, decoded, while the path exists).
const MAX_FILE: u64 = 256 << 20;

/// One track read from a file: codec, frames in decode order (timestamps: presentation, in the
/// codec's clock) and their decode times, and where the track ends (decode time after the last frame).
struct FileTrack {
    codec: Codec,
    frames: Vec<media::Frame>,
    decode_times: Vec<u64>,
    end: u64,
}

fn file_tracks_mp4(data: &[u8]) -> Result<Vec<FileTrack>, String> {
    let tracks = formats::mp4::read(data).map_err(|e| e.to_string())?;
    Ok(tracks
        .into_iter()
        .map(|t| FileTrack { codec: t.codec, frames: t.frames, decode_times: t.decode_times, end: t.duration })
        .collect())
}

fn file_tracks_ts(data: &[u8]) -> Result<Vec<FileTrack>, String> {
    use formats::bytestream::{Hint, StreamDemuxer};
    let mut demux = StreamDemuxer::new(Hint::Ts);
    let now = std::time::Instant::now();
    let mut codecs: Vec<Option<Codec>> = Vec::new();
    let mut frames: Vec<Vec<media::Frame>> = Vec::new();
    let mut drain = |demux: &mut StreamDemuxer| {
        while let Some(e) = demux.poll() {
            match e {
                formats::DemuxEvent::Track { index, codec, .. } => {
                    if codecs.len() <= index {
                        codecs.resize(index + 1, None);
                        frames.resize_with(index + 1, Vec::new);
                    }
                    codecs[index] = Some(codec);
                }
                formats::DemuxEvent::Frame { index, frame } => {
                    if let Some(list) = frames.get_mut(index) {
                        list.push(frame);
                    }
                }
            }
        }
    };
    // In pieces, draining between them: the demuxer's event queue is bounded.
    for chunk in data.chunks(64 * 1024) {
        demux.push(chunk, now)?;
        drain(&mut demux);
    }
    demux.finish();
    drain(&mut demux);
    let mut out = Vec::new();
    for (codec, frames) in codecs.into_iter().zip(frames) {
        let Some(mut codec) = codec else { continue };
        if !matches!(codec.name.as_str(), codec::H264 | codec::H265 | codec::AAC) || frames.is_empty() {
            continue;
        }
        // Video: the parameter sets of the first keyframe (the demuxer may not have put them in the fmtp).
        if let Some(video) = VideoCodec::from_name(&codec.name) {
            let key = frames.iter().find(|f| f.keyframe).ok_or("a video track without a keyframe")?;
            if let Some(config) = formats::video::VideoConfig::from_nals(video, media::h264::avcc_nals(&key.payload)) {
                codec = config.to_codec();
            }
        }
        // MPEG-TS has no decode times here: the latest a frame can be decoded is before every frame
        // shown after it, so the decode time of frame i is the smallest presentation time from i on.
        let mut decode_times = vec![0u64; frames.len()];
        let mut min = u64::MAX;
        let unwrapped = unwrap_timestamps(&frames);
        for i in (0..frames.len()).rev() {
            min = min.min(unwrapped[i]);
            decode_times[i] = min;
        }
        let mut sorted = unwrapped.clone();
        sorted.sort_unstable();
        let step = sorted.windows(2).map(|w| w[1] - w[0]).filter(|d| *d > 0).min().unwrap_or(3000);
        let end = sorted.last().copied().unwrap_or(0) + step;
        let frames = frames
            .into_iter()
            .zip(&unwrapped)
            .map(|(mut f, ts)| {
                f.timestamp = *ts as u32;
                f
            })
            .collect();
        out.push(FileTrack { codec, frames, decode_times, end });
    }
    Ok(out)
}

/// The video codecs a slate file may have.
fn is_video(c: &Codec) -> bool {
    matches!(c.name.as_str(), codec::H264 | codec::H265 | codec::AV1 | codec::VP9)
}

/// A track's 32-bit timestamps as 64-bit ones (they may wrap in a long file).
fn unwrap_timestamps(frames: &[media::Frame]) -> Vec<u64> {
    let mut u = media::timestamp::Unwrapper::default();
    frames.iter().map(|f| u.extend(f.timestamp).max(0) as u64).collect()
}

/// The clips of a file's tracks, on one clock origin and one loop length (the longest track's), so
/// audio and video stay together loop after loop. Video starts at its first keyframe.
fn looped(tracks: Vec<FileTrack>) -> Result<Vec<Arc<ClipTrack>>, String> {
    let mut tracks: Vec<FileTrack> = tracks
        .into_iter()
        .map(|mut t| {
            if is_video(&t.codec) {
                let first = t.frames.iter().position(|f| f.keyframe).unwrap_or(t.frames.len());
                t.frames.drain(..first);
                t.decode_times.drain(..first);
            }
            t
        })
        .filter(|t| !t.frames.is_empty())
        .collect();
    if tracks.is_empty() {
        return Err("no H.264, H.265, AV1, VP9 or AAC frames (video must have a keyframe)".into());
    }
    let secs = |t: &FileTrack, v: u64| v as f64 / f64::from(t.codec.clock_rate.max(1));
    let origin = tracks.iter().map(|t| secs(t, t.decode_times[0])).fold(f64::INFINITY, f64::min);
    let length = tracks.iter().map(|t| secs(t, t.end) - origin).fold(0.0, f64::max);
    if !(0.04..=3600.0).contains(&length) {
        return Err(format!("the file lasts {length:.3} s (40 ms to an hour)"));
    }
    Ok(tracks
        .iter_mut()
        .map(|t| {
            let clock = f64::from(t.codec.clock_rate.max(1));
            let zero = (origin * clock) as u64;
            let frames = std::mem::take(&mut t.frames)
                .into_iter()
                .map(|mut f| {
                    f.timestamp = f.timestamp.wrapping_sub(zero as u32);
                    clip::packetized(&t.codec, f)
                })
                .collect::<Vec<_>>();
            let decode_times = t.decode_times.iter().map(|d| d.saturating_sub(zero)).collect();
            let ticks = if is_video(&t.codec) { 3000 } else { 1024 };
            Arc::new(ClipTrack {
                codec: t.codec.clone(),
                frames,
                ticks,
                timing: Some(clip::ClipTiming { decode_times, length: (length * clock).round() as u64 }),
            })
        })
        .collect())
}

/// The clip of one offline track; the pictures are parsed once per process.
fn track_clip(t: &OfflineTrack) -> Result<Arc<ClipTrack>, String> {
    static H264: OnceLock<Result<Arc<ClipTrack>, String>> = OnceLock::new();
    static H265: OnceLock<Result<Arc<ClipTrack>, String>> = OnceLock::new();
    static AV1: OnceLock<Result<Arc<ClipTrack>, String>> = OnceLock::new();
    static VP9: OnceLock<Result<Arc<ClipTrack>, String>> = OnceLock::new();
    let picture = |cell: &OnceLock<Result<Arc<ClipTrack>, String>>, data, video| {
        cell.get_or_init(|| clip::annexb_video(data, video, SLATE_FPS).map(Arc::new)).clone()
    };
    // 20 ms of `rate` in samples.
    let frame = |rate: u32| rate / 50;
    Ok(Arc::new(match *t {
        OfflineTrack::H264 => return picture(&H264, H264_SLATE, VideoCodec::H264),
        OfflineTrack::H265 => return picture(&H265, H265_SLATE, VideoCodec::H265),
        OfflineTrack::Av1 => return AV1.get_or_init(|| ivf_video(AV1_SLATE, codec::AV1).map(Arc::new)).clone(),
        OfflineTrack::Vp9 => return VP9.get_or_init(|| ivf_video(VP9_SLATE, codec::VP9).map(Arc::new)).clone(),
        OfflineTrack::Opus { channels } => {
            let silence = if channels == 2 { OPUS_SILENCE_STEREO } else { OPUS_SILENCE_MONO };
            let mut c = Codec::new(codec::OPUS, 48_000, 2, 111);
            if channels == 2 {
                c = c.with_fmtp("sprop-stereo=1".to_string());
            }
            clip::repeated(c, silence, 960)
        }
        OfflineTrack::Aac { sample_rate, channels } => {
            let silence = if channels == 2 { AAC_SILENCE_STEREO } else { AAC_SILENCE_MONO };
            if media::aac::sample_rate_index(sample_rate).is_none() {
                return Err(format!("MPEG4Audio: {sample_rate} Hz is not an AAC sampling rate"));
            }
            let config = media::aac::AudioSpecificConfig { object_type: 2, sample_rate, channels: channels as u8 };
            clip::repeated(clip::aac_codec(sample_rate, channels, &config.to_hex()), silence, 1024)
        }
        OfflineTrack::G711 { mu_law, sample_rate, channels } => {
            let (name, pt, silence) =
                if mu_law { (codec::PCMU, 0, &G711U_SILENCE) } else { (codec::PCMA, 8, &G711A_SILENCE) };
            let len = (frame(sample_rate) * u32::from(channels)) as usize;
            clip::repeated(Codec::new(name, sample_rate, channels, pt), &silence[..len], frame(sample_rate))
        }
        OfflineTrack::Lpcm { sample_rate, channels } => {
            let len = (frame(sample_rate) * u32::from(channels) * 2) as usize;
            clip::repeated(Codec::new(codec::L16, sample_rate, channels, 96), &LPCM_SILENCE[..len], frame(sample_rate))
        }
    }))
}

/// An AV1 or VP9 (`name`) clip in IVF: a 32-byte file header (`DKIF`, version 0, the FourCC `AV01` or
/// `VP90`, picture size, time base, frame count), then per frame a 12-byte header (size, 64-bit
/// timestamp, little-endian) and the frame. Frames are taken as evenly spaced by the time base (the
/// slates are: every frame shown). It must start with a keyframe (AV1: with its sequence header); the
/// codec's configuration record comes from it.
fn ivf_video(data: &[u8], name: &str) -> Result<ClipTrack, String> {
    let fourcc: &[u8] = if name == codec::AV1 { b"AV01" } else { b"VP90" };
    let header = data.get(..32).ok_or_else(|| format!("{name} clip: {} bytes, no IVF header", data.len()))?;
    let le16 = |b: &[u8]| u16::from_le_bytes([b[0], b[1]]);
    let le32 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    if &header[..4] != b"DKIF" || le16(&header[6..]) != 32 || &header[8..12] != fourcc {
        return Err(format!("{name} clip: not an IVF file of {}", String::from_utf8_lossy(fourcc)));
    }
    let (rate, scale) = (le32(&header[16..]), le32(&header[20..]));
    if rate == 0 || scale == 0 || 90_000 % rate != 0 {
        return Err(format!("{name} clip: time base {scale}/{rate} (a whole number of 90 kHz ticks per frame)"));
    }
    let ticks = (90_000 / rate)
        .checked_mul(scale)
        .filter(|t| *t <= 90_000)
        .ok_or_else(|| format!("{name} clip: time base {scale}/{rate} (a frame lasts at most a second)"))?;
    let mut payloads = Vec::new();
    let mut rest = &data[32..];
    while !rest.is_empty() {
        let size =
            rest.get(..12).map(|h| le32(h) as usize).ok_or_else(|| format!("{name} clip: truncated frame header"))?;
        let frame =
            rest.get(12..12 + size).ok_or_else(|| format!("{name} clip: frame {} truncated", payloads.len()))?;
        payloads.push(frame);
        rest = &rest[12 + size..];
    }
    let first = payloads.first().ok_or_else(|| format!("{name} clip: no frames"))?;
    let bare = Codec::new(name, 90_000, 0, 96);
    let visual = formats::fmp4::Visual::from_keyframe(&bare, first)
        .ok_or_else(|| format!("{name} clip: the first frame is no keyframe with the stream's configuration"))?;
    let codec = if name == codec::AV1 {
        formats::flv::av1_codec(&visual.record)
    } else {
        formats::flv::vp9_codec(&visual.record)
    }
    .map_err(|e| format!("{name} clip: {e}"))?;
    let frames = payloads
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let keyframe = if name == codec::AV1 { av1_keyframe(p) } else { vp9_keyframe(p) };
            let frame = media::Frame {
                timestamp: (i as u32).wrapping_mul(ticks),
                keyframe,
                payload: Bytes::copy_from_slice(p),
                rtp: Vec::new(),
            };
            clip::packetized(&codec, frame)
        })
        .collect::<Vec<_>>();
    if !frames[0].keyframe {
        return Err(format!("{name} clip: the first frame is no keyframe"));
    }
    Ok(ClipTrack { codec, frames, ticks, timing: None })
}

/// Whether an AV1 temporal unit (OBUs with size fields) holds a key frame: its first frame header
/// (a frame header or frame OBU) says `show_existing_frame = 0, frame_type = KEY_FRAME` (AV1 §5.9.2;
/// sequences with `reduced_still_picture_header` are not video).
fn av1_keyframe(tu: &[u8]) -> bool {
    let mut rest = tu;
    while let Some(&h) = rest.first() {
        let (kind, ext, has_size) = ((h >> 3) & 0x0f, usize::from(h & 0x04 != 0), h & 0x02 != 0);
        let at = 1 + ext;
        let (len, size_len) = if has_size {
            let mut v = 0usize;
            let mut n = 0;
            loop {
                let Some(b) = rest.get(at + n) else { return false };
                v |= usize::from(b & 0x7f) << (7 * n);
                n += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if n == 8 {
                    return false;
                }
            }
            (v, n)
        } else {
            (rest.len().saturating_sub(at), 0)
        };
        let start = at + size_len;
        let Some(payload) = start.checked_add(len).and_then(|end| rest.get(start..end)) else { return false };
        // OBU_FRAME_HEADER (3), OBU_FRAME (6): the first bits of the uncompressed header.
        if kind == 3 || kind == 6 {
            return payload.first().is_some_and(|b| b & 0xe0 == 0);
        }
        rest = &rest[start + len..];
    }
    false
}

/// Whether a VP9 frame is a key frame (its uncompressed header, VP9 §6.2).
fn vp9_keyframe(frame: &[u8]) -> bool {
    formats::fmp4::Visual::from_keyframe(&Codec::new(codec::VP9, 90_000, 0, 96), frame).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tracks_are_parsed_and_checked() {
        assert_eq!(parse_tracks(&[]).unwrap(), [OfflineTrack::H264]);
        let list = [
            json!({"codec": "H265"}),
            json!({"codec": "MPEG4Audio", "sampleRate": 48000, "channelCount": 2}),
            json!({"codec": "G711", "sampleRate": 8000, "channelCount": 1, "muLaw": true}),
        ];
        assert_eq!(
            parse_tracks(&list).unwrap(),
            [
                OfflineTrack::H265,
                OfflineTrack::Aac { sample_rate: 48000, channels: 2 },
                OfflineTrack::G711 { mu_law: true, sample_rate: 8000, channels: 1 },
            ]
        );
        let err = parse_tracks(&[json!({"codec": "MPEG4Audio", "channelCount": 2})]).unwrap_err();
        assert!(err.contains("needs sampleRate"), "{err}");
        assert_eq!(
            parse_tracks(&[json!({"codec": "AV1"}), json!({"codec": "VP9"})]).unwrap(),
            [OfflineTrack::Av1, OfflineTrack::Vp9]
        );
        assert!(parse_tracks(&[json!({"codec": "MP3"})]).unwrap_err().contains("unknown codec"));
    }

    #[test]
    fn the_pictures_load_with_their_parameter_sets() {
        let slate = Slate::new(&[OfflineTrack::H264, OfflineTrack::H265, OfflineTrack::Opus { channels: 2 }]).unwrap();
        let [h264, h265, opus] = &slate.clips[..] else { panic!() };
        assert_eq!(h264.frames.len(), 25);
        assert!(h264.frames[0].keyframe && h264.frames[1..].iter().all(|f| !f.keyframe));
        assert!(h264.codec.fmtp.contains("sprop-parameter-sets="), "{}", h264.codec.fmtp);
        assert_eq!(h265.frames.len(), 25);
        assert!(h265.frames[0].keyframe);
        assert!(h265.codec.fmtp.contains("sprop-vps="), "{}", h265.codec.fmtp);
        assert!(h264.frames.iter().chain(&h265.frames).all(|f| !f.rtp.is_empty()), "packetized once");
        assert_eq!((opus.codec.clock_rate, opus.ticks), (48_000, 960));
        let kinds: Vec<Kind> = slate.medias().iter().map(|m| m.kind).collect();
        assert_eq!(kinds, [Kind::Video, Kind::Video, Kind::Audio]);
    }

    #[test]
    fn the_av1_and_vp9_pictures_load_with_their_configuration_records() {
        let slate = Slate::new(&[OfflineTrack::Av1, OfflineTrack::Vp9]).unwrap();
        let [av1, vp9] = &slate.clips[..] else { panic!() };
        for (clip, name) in [(av1, codec::AV1), (vp9, codec::VP9)] {
            assert_eq!((clip.codec.name.as_str(), clip.codec.clock_rate, clip.ticks), (name, 90_000, 3600));
            assert_eq!(clip.frames.len(), 25, "{name}: one second at 25 fps");
            assert!(clip.frames[0].keyframe && clip.frames[1..].iter().all(|f| !f.keyframe), "{name}: one keyframe");
            let times: Vec<u32> = clip.frames.iter().map(|f| f.timestamp).collect();
            assert_eq!(times, (0..25).map(|i| i * 3600).collect::<Vec<_>>());
            let total: usize = clip.frames.iter().map(|f| f.payload.len()).sum();
            assert!(total < 4096, "{name}: {total} bytes");
            // What the fMP4 and FLV muxers need, as a live Enhanced RTMP stream's codec has it.
            assert!(clip.codec.fmtp.contains("config="), "{}", clip.codec.fmtp);
            let visual = formats::fmp4::Visual::from_keyframe(&clip.codec, &clip.frames[0].payload).unwrap();
            assert_eq!((visual.width, visual.height), (640, 360), "{name}");
            formats::flv::FlvMuxer::new(&[(Kind::Video, clip.codec.clone())]).unwrap();
        }
        // AV1: the record holds the sequence header, so fMP4 knows the picture without a frame.
        let visual = formats::fmp4::Visual::from_codec(&av1.codec).unwrap();
        assert_eq!((visual.width, visual.height, visual.codec_string()), (640, 360, "av01.0.01M.08".to_string()));
        assert!(av1.codec.fmtp.starts_with("profile=0;level-idx="), "{}", av1.codec.fmtp);
        assert!(vp9.codec.fmtp.starts_with("profile-id=0;"), "{}", vp9.codec.fmtp);
        assert_eq!(slate.medias().iter().map(|m| m.kind).collect::<Vec<_>>(), [Kind::Video, Kind::Video]);
    }

    #[test]
    fn bad_ivf_clips_are_errors() {
        let err = |data: &[u8], name| ivf_video(data, name).err().unwrap_or_default();
        assert!(err(b"DKIF", codec::AV1).contains("no IVF header"));
        assert!(err(VP9_SLATE, codec::AV1).contains("not an IVF file of AV01"));
        let cut = &AV1_SLATE[..AV1_SLATE.len() - 3];
        assert!(err(cut, codec::AV1).contains("truncated"));
        let mut slow = AV1_SLATE.to_vec();
        slow[20..24].copy_from_slice(&u32::MAX.to_le_bytes()); // time base u32::MAX/25
        assert!(err(&slow, codec::AV1).contains("at most a second"));
        // A clip starting at its second frame starts with no keyframe.
        let second = 32 + 12 + u32::from_le_bytes(VP9_SLATE[32..36].try_into().unwrap()) as usize;
        let mut rest = VP9_SLATE[..32].to_vec();
        rest.extend_from_slice(&VP9_SLATE[second..]);
        assert!(err(&rest, codec::VP9).contains("no keyframe"));
        assert!(!av1_keyframe(&[0x32, 0x05, 0]) && !av1_keyframe(&[]));
    }
}
