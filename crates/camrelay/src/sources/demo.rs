//! `demo:clip` — the built-in demo stream: an embedded 8-second H.264 clip (640x360, 25 fps, a frame
//! counter and clock) with an AAC tone, looped forever with continuous timestamps. Needs no ffmpeg.
//! `scripts/make-demo-clip.sh` regenerates the clip.

use formats::video::VideoCodec;
use media::{Direction, Kind, Media};
use std::sync::{Arc, OnceLock};
use tokio_util::sync::CancellationToken;

use super::clip::{self, ClipTrack};
use crate::hub::{BoxFuture, Source, SourceError, SourceFactory, Track};

const VIDEO: &[u8] = include_bytes!("../../assets/demo.h264");
const AUDIO: &[u8] = include_bytes!("../../assets/demo.aac");
const FPS: u32 = 25;
const AUDIO_RATE: u32 = 48_000;
const AAC_FRAME_SAMPLES: u32 = 1024;
const CLIP_SECONDS: u32 = 8;

/// The clip, parsed and packetized once per process: video, then audio.
fn clip() -> Result<&'static [Arc<ClipTrack>; 2], SourceError> {
    static CLIP: OnceLock<Result<[Arc<ClipTrack>; 2], String>> = OnceLock::new();
    CLIP.get_or_init(load_clip).as_ref().map_err(|e| SourceError::other(format!("demo: {e}")))
}

fn load_clip() -> Result<[Arc<ClipTrack>; 2], String> {
    let mut video = clip::annexb_video(VIDEO, VideoCodec::H264, FPS)?;
    let frames_per_clip = (FPS * CLIP_SECONDS) as usize;
    if video.frames.len() < frames_per_clip {
        return Err(format!("clip has {} video frames, expected {frames_per_clip}", video.frames.len()));
    }
    // Both tracks loop on a frame boundary: 8 s of each.
    video.frames.truncate(frames_per_clip);
    let audio = clip::aac_adts(AUDIO, (AUDIO_RATE * CLIP_SECONDS / AAC_FRAME_SAMPLES) as usize)?;
    Ok([Arc::new(video), Arc::new(audio)])
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
            let [video, audio] = clip()?;
            let mut video = Media::new(Kind::Video, Direction::RecvOnly, vec![video.codec.clone()]);
            video.control = "trackID=0".into();
            let mut audio = Media::new(Kind::Audio, Direction::RecvOnly, vec![audio.codec.clone()]);
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
            let clips = clip()?;
            if tracks.len() < 2 {
                return Err("demo: expected a video and an audio track".into());
            }
            clip::play(clips, &tracks, &stop).await;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_loads_and_loops_on_frame_boundaries() {
        let [video, audio] = clip().unwrap();
        assert_eq!(video.frames.len(), 200);
        assert_eq!(audio.frames.len(), 375);
        assert_eq!(video.frames.iter().filter(|f| f.keyframe).count(), 8);
        assert!(video.frames.iter().all(|f| !f.rtp.is_empty()));
        assert!(video.codec.fmtp.contains("sprop-parameter-sets="));
        assert_eq!(audio.codec.clock_rate, 48000);
        let sps = media::h264::parse_sprop_parameter_sets(&video.codec.fmtp).0;
        let sps = media::h264::Sps::parse(&sps[0]).unwrap();
        assert_eq!((sps.width, sps.height), (640, 360));
    }
}
