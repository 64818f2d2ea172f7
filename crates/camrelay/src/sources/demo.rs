//! `demo:clip` — the built-in demo stream: an embedded 8-second H.264 clip (640x360, 25 fps, a frame
//! counter and clock) with an AAC tone, looped forever with continuous timestamps. Needs no ffmpeg.
//! `scripts/make-demo-clip.sh` regenerates the clip.

use bytes::Bytes;
use media::{codec, Codec, Direction, Frame, Kind, Media};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::hub::{BoxFuture, Source, SourceError, SourceFactory, Track};

const VIDEO: &[u8] = include_bytes!("../../assets/demo.h264");
const AUDIO: &[u8] = include_bytes!("../../assets/demo.aac");
const FPS: u32 = 25;
const VIDEO_CLOCK: u32 = 90_000;
const AUDIO_RATE: u32 = 48_000;
const AAC_FRAME_SAMPLES: u32 = 1024;
const CLIP_SECONDS: u32 = 8;
const MTU: usize = 1400;

/// The clip, parsed and packetized once per process.
struct Clip {
    video_codec: Codec,
    audio_codec: Codec,
    video: Vec<Frame>,
    audio: Vec<Frame>,
}

fn clip() -> Result<&'static Clip, SourceError> {
    static CLIP: OnceLock<Result<Clip, String>> = OnceLock::new();
    CLIP.get_or_init(load_clip).as_ref().map_err(|e| SourceError::other(format!("demo: {e}")))
}

fn load_clip() -> Result<Clip, String> {
    // Access units are delimited by AUD NAL units (the clip is encoded with aud=1).
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let (mut sps, mut pps) = (None, None);
    for nal in media::h264::annexb_nals(VIDEO) {
        let Some(&header) = nal.first() else { continue };
        match media::h264::nal_type(header) {
            9 => units.push(Vec::new()),
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            _ => {}
        }
        if media::h264::nal_type(header) != 9 {
            if let Some(u) = units.last_mut() {
                u.push(nal);
            }
        }
    }
    let (Some(sps), Some(pps)) = (sps, pps) else { return Err("clip has no SPS/PPS".into()) };
    let mut fmtp = format!("packetization-mode=1;sprop-parameter-sets={}", media::h264::sprop_parameter_sets(sps, pps));
    if let Some(pl) = media::h264::profile_level_id(sps) {
        fmtp.push_str(&format!(";profile-level-id={pl}"));
    }
    let video_codec = Codec::new(codec::H264, VIDEO_CLOCK, 0, 96).with_fmtp(fmtp);
    let frames_per_clip = (FPS * CLIP_SECONDS) as usize;
    if units.len() < frames_per_clip {
        return Err(format!("clip has {} video frames, expected {frames_per_clip}", units.len()));
    }
    let mut packetizer = rtp::packetize::packetizer_for(&video_codec, MTU).ok_or("no H.264 packetizer")?;
    let mut video = Vec::with_capacity(frames_per_clip);
    for (i, nals) in units.iter().take(frames_per_clip).enumerate() {
        let mut payload = Vec::new();
        let mut keyframe = false;
        for nal in nals {
            keyframe |= media::h264::nal_type(nal[0]) == 5;
            payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            payload.extend_from_slice(nal);
        }
        let mut frame = Frame {
            timestamp: i as u32 * (VIDEO_CLOCK / FPS),
            keyframe,
            payload: Bytes::from(payload),
            rtp: Vec::new(),
        };
        let mut packets = Vec::new();
        packetizer.packetize(&frame, &mut packets);
        frame.rtp = packets;
        video.push(frame);
    }
    if !video.first().is_some_and(|f| f.keyframe) {
        return Err("clip does not start with a keyframe".into());
    }

    let mut audio_config = None;
    let aac_per_clip = (AUDIO_RATE * CLIP_SECONDS / AAC_FRAME_SAMPLES) as usize;
    let raw: Vec<&[u8]> = media::aac::adts_frames(AUDIO)
        .map(|(h, au)| {
            audio_config.get_or_insert(h.config);
            au
        })
        .take(aac_per_clip)
        .collect();
    let config = audio_config.ok_or("clip has no AAC frames")?;
    if raw.len() < aac_per_clip {
        return Err(format!("clip has {} AAC frames, expected {aac_per_clip}", raw.len()));
    }
    let audio_codec = Codec::new(codec::AAC, config.sample_rate, config.channels as u16, 97).with_fmtp(format!(
        "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}",
        config.to_hex()
    ));
    let mut packetizer = rtp::packetize::packetizer_for(&audio_codec, MTU).ok_or("no AAC packetizer")?;
    let audio = raw
        .iter()
        .enumerate()
        .map(|(i, au)| {
            let mut frame = Frame {
                timestamp: i as u32 * AAC_FRAME_SAMPLES,
                keyframe: true,
                payload: Bytes::copy_from_slice(au),
                rtp: Vec::new(),
            };
            let mut packets = Vec::new();
            packetizer.packetize(&frame, &mut packets);
            frame.rtp = packets;
            frame
        })
        .collect();
    Ok(Clip { video_codec, audio_codec, video, audio })
}

/// A copy of a clip frame moved to timestamp `ts` (payloads are shared, not copied).
fn restamp(frame: &Frame, ts: u32) -> Frame {
    let mut f = frame.clone();
    let delta = ts.wrapping_sub(frame.timestamp);
    f.timestamp = ts;
    for p in &mut f.rtp {
        p.timestamp = p.timestamp.wrapping_add(delta);
    }
    f
}

pub struct DemoSource;

pub fn factory() -> SourceFactory {
    Arc::new(|url: &str| {
        // `demo:clip` is the canonical form: a bare `demo:` at the end of a YAML line would be a key.
        if url != "demo:" && url != "demo:clip" {
            return Err(format!("demo: unknown demo source {url:?} (use \"demo:clip\")"));
        }
        Ok(Arc::new(DemoSource) as Arc<dyn Source>)
    })
}

impl Source for DemoSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move {
            let clip = clip()?;
            let mut video = Media::new(Kind::Video, Direction::RecvOnly, vec![clip.video_codec.clone()]);
            video.control = "trackID=0".into();
            let mut audio = Media::new(Kind::Audio, Direction::RecvOnly, vec![clip.audio_codec.clone()]);
            audio.control = "trackID=1".into();
            Ok(vec![video, audio])
        })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let clip = clip()?;
            let (Some(video), Some(audio)) = (tracks.first().cloned(), tracks.get(1).cloned()) else {
                return Err("demo: expected a video and an audio track".into());
            };
            let video_base: u32 = rand::random();
            let audio_base: u32 = rand::random();
            let start = Instant::now();
            let (mut vi, mut ai) = (0u64, 0u64);
            let video_at = |i: u64| start + Duration::from_micros(i * 1_000_000 / FPS as u64);
            let audio_at =
                |i: u64| start + Duration::from_micros(i * AAC_FRAME_SAMPLES as u64 * 1_000_000 / AUDIO_RATE as u64);
            loop {
                let (next_video, next_audio) = (video_at(vi), audio_at(ai));
                let at = next_video.min(next_audio);
                tokio::select! {
                    _ = stop.cancelled() => return Ok(()),
                    _ = tokio::time::sleep_until(at) => {}
                }
                if next_video <= next_audio {
                    let f = &clip.video[(vi % clip.video.len() as u64) as usize];
                    video.push(restamp(f, video_base.wrapping_add((vi * (VIDEO_CLOCK / FPS) as u64) as u32)));
                    vi += 1;
                } else {
                    let f = &clip.audio[(ai % clip.audio.len() as u64) as usize];
                    audio.push(restamp(f, audio_base.wrapping_add((ai * AAC_FRAME_SAMPLES as u64) as u32)));
                    ai += 1;
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_loads_and_loops_on_frame_boundaries() {
        let clip = clip().unwrap();
        assert_eq!(clip.video.len(), 200);
        assert_eq!(clip.audio.len(), 375);
        assert_eq!(clip.video.iter().filter(|f| f.keyframe).count(), 8);
        assert!(clip.video.iter().all(|f| !f.rtp.is_empty()));
        assert!(clip.video_codec.fmtp.contains("sprop-parameter-sets="));
        assert_eq!(clip.audio_codec.clock_rate, 48000);
        let sps = media::h264::parse_sprop_parameter_sets(&clip.video_codec.fmtp).0;
        let sps = media::h264::Sps::parse(&sps[0]).unwrap();
        assert_eq!((sps.width, sps.height), (640, 360));
    }
}
