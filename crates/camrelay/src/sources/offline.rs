//! The offline slate of MediaMTX's `alwaysAvailable` paths: what readers of such a path get while no
//! publisher is there, looped in real time ([`super::clip`]). One track per `alwaysAvailableTracks`
//! entry, in the codec the publisher will send, so that the publisher continues the same tracks when
//! it arrives (`hub::publish`) and readers switch on its first keyframe without reconnecting:
//!
//! - `H264`, `H265`: a built-in one-second "camera offline" picture, 640x360, one keyframe
//!   (`assets/offline.h26x`, made by `scripts/make-demo-clip.sh`);
//! - `Opus`, `MPEG4Audio`, `G711`, `LPCM`: silence, in 20 ms frames (1024 samples for AAC).
//!
//! MediaMTX also generates AV1 and VP9 and reads `alwaysAvailableFile` (an MP4); camrelay refuses
//! those at load with the reason.

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
}

impl std::fmt::Debug for Slate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let codecs: Vec<&str> = self.clips.iter().map(|c| c.codec.name.as_str()).collect();
        write!(f, "Slate({codecs:?})")
    }
}

impl PartialEq for Slate {
    fn eq(&self, other: &Slate) -> bool {
        self.spec == other.spec
    }
}

impl Eq for Slate {}

impl Slate {
    pub fn new(tracks: &[OfflineTrack]) -> Result<Slate, String> {
        let clips = tracks.iter().map(track_clip).collect::<Result<Vec<_>, String>>()?;
        Ok(Slate { spec: tracks.to_vec(), clips })
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
