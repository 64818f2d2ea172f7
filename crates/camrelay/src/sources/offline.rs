//! The offline slate of MediaMTX's `alwaysAvailable` paths: what readers of such a path get while no
//! publisher is there, looped in real time ([`super::clip`]). One track per `alwaysAvailableTracks`
//! entry, in the codec the publisher will send, so that the publisher continues the same tracks when
//! it arrives (`hub::publish`) and readers switch on its first keyframe without reconnecting:
//!
//! - `H264`, `H265`: a built-in one-second "camera offline" picture, 640x360, one keyframe
//!   (`assets/offline.h26x`, made by `scripts/make-demo-clip.sh`);
//! - `Opus`, `MPEG4Audio`, `G711`, `LPCM`: silence, in 20 ms frames (1024 samples for AAC).
//!
//! Or, with `alwaysAvailableFile`, the tracks of a file ([`Slate::from_file`]): an MP4 (read by
//! `formats::mp4`) or MPEG-TS (`formats::bytestream`) with H.264/H.265 video and AAC audio, looped on
//! one loop length for all tracks so they stay together; frames keep the file's timing (B-frames too).
//!
//! MediaMTX also generates AV1 and VP9 slates; camrelay refuses those at load with the reason.

use formats::video::VideoCodec;
use media::{codec, Codec, Direction, Kind, Media};
use serde_json::Value;
use std::sync::{Arc, OnceLock};

use super::clip::{self, ClipTrack};

const H264_SLATE: &[u8] = include_bytes!("../../assets/offline.h264");
const H265_SLATE: &[u8] = include_bytes!("../../assets/offline.h265");
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
                "AV1" | "VP9" => Err(format!(
                    "alwaysAvailableTracks[{i}]: camrelay has no {codec} offline picture yet (H264 or H265)"
                )),
                other => Err(format!(
                    "alwaysAvailableTracks[{i}]: unknown codec {other:?} (H264, H265, Opus, MPEG4Audio, G711, LPCM)"
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

    /// MediaMTX's `alwaysAvailableFile`: the H.264, H.265 and AAC tracks of an MP4 or MPEG-TS file. The
    /// error says what is wrong with the file.
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
            if VideoCodec::from_name(&t.codec.name).is_some() {
                let first = t.frames.iter().position(|f| f.keyframe).unwrap_or(t.frames.len());
                t.frames.drain(..first);
                t.decode_times.drain(..first);
            }
            t
        })
        .filter(|t| !t.frames.is_empty())
        .collect();
    if tracks.is_empty() {
        return Err("no H.264, H.265 or AAC frames (video must have a keyframe)".into());
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
            let ticks = if VideoCodec::from_name(&t.codec.name).is_some() { 3000 } else { 1024 };
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
    let picture = |cell: &OnceLock<Result<Arc<ClipTrack>, String>>, data, video| {
        cell.get_or_init(|| clip::annexb_video(data, video, SLATE_FPS).map(Arc::new)).clone()
    };
    // 20 ms of `rate` in samples.
    let frame = |rate: u32| rate / 50;
    Ok(Arc::new(match *t {
        OfflineTrack::H264 => return picture(&H264, H264_SLATE, VideoCodec::H264),
        OfflineTrack::H265 => return picture(&H265, H265_SLATE, VideoCodec::H265),
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
        assert!(parse_tracks(&[json!({"codec": "AV1"})]).unwrap_err().contains("AV1"));
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
}
