//! Looped clips played into tracks in real time: the built-in demo stream ([`super::demo`]) and the
//! offline slate of `alwaysAvailable` paths ([`super::offline`]). A clip is parsed and packetized once
//! per process; each loop only restamps its frames (payloads are shared, not copied), so timestamps
//! run on without a jump.

use bytes::Bytes;
use formats::video::{VideoCodec, VideoConfig};
use media::{codec, Codec, Frame};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::hub::Track;

const MTU: usize = 1400;

/// One track of a clip: its codec and frames, `ticks` clock units apart.
pub struct ClipTrack {
    pub codec: Codec,
    pub frames: Vec<Frame>,
    /// Clock units from one frame to the next.
    pub ticks: u32,
    /// For clips read from a file: when each frame is pushed (its decode time) and how long one loop
    /// is, in clock units; frame timestamps are presentation times from the loop's start. `None`:
    /// frame `i` at `i * ticks`, a loop of `frames.len() * ticks`.
    pub timing: Option<ClipTiming>,
}

/// Frame times of a clip whose frames are not evenly spaced (B-frames, a file's own timing).
pub struct ClipTiming {
    pub decode_times: Vec<u64>,
    pub length: u64,
}

impl ClipTrack {
    /// Clock units of one loop.
    fn loop_ticks(&self) -> u64 {
        match &self.timing {
            Some(t) => t.length.max(1),
            None => (self.frames.len() as u64 * u64::from(self.ticks)).max(1),
        }
    }

    /// Clock units from the clip's start to when its `n`th frame (counting across loops) is pushed,
    /// and that frame's timestamp offset from the same start.
    fn position(&self, n: u64) -> (u64, u64) {
        let len = self.frames.len().max(1) as u64;
        let (round, i) = (n / len, (n % len) as usize);
        let start = round * self.loop_ticks();
        match &self.timing {
            Some(t) => {
                let at = t.decode_times.get(i).copied().unwrap_or(0);
                (start + at, start + u64::from(self.frames.get(i).map_or(0, |f| f.timestamp)))
            }
            None => (n * u64::from(self.ticks), n * u64::from(self.ticks)),
        }
    }

    /// How long `ticks` clock units last.
    fn duration(&self, ticks: u64) -> Duration {
        Duration::from_secs_f64(ticks as f64 / f64::from(self.codec.clock_rate.max(1)))
    }
}

/// Packetizes `frame` for RTP outputs once, at load.
pub fn packetized(codec: &Codec, mut frame: Frame) -> Frame {
    if let Some(mut p) = rtp::packetize::packetizer_for(codec, MTU) {
        let mut packets = Vec::new();
        p.packetize(&frame, &mut packets);
        frame.rtp = packets;
    }
    frame
}

/// An H.264 or H.265 elementary stream whose access units are delimited by AUD NAL units (encode with
/// `aud=1`), at `fps`; it must start with a keyframe that carries the parameter sets.
pub fn annexb_video(data: &[u8], video: VideoCodec, fps: u32) -> Result<ClipTrack, String> {
    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    for nal in media::h264::annexb_nals(data) {
        if nal.is_empty() {
            continue;
        }
        if video.is_aud(nal) {
            units.push(Vec::new());
        } else if let Some(u) = units.last_mut() {
            u.push(nal);
        }
    }
    units.retain(|u| !u.is_empty());
    let config = VideoConfig::from_nals(video, units.iter().flatten().copied())
        .ok_or("the clip has no parameter sets (SPS/PPS, and VPS for H.265)")?;
    let codec = config.to_codec();
    let ticks = codec.clock_rate / fps.max(1);
    let frames: Vec<Frame> = units
        .iter()
        .enumerate()
        .map(|(i, nals)| {
            let mut payload = Vec::new();
            let mut keyframe = false;
            for nal in nals {
                keyframe |= video.is_keyframe_nal(nal);
                payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                payload.extend_from_slice(nal);
            }
            let frame = Frame { timestamp: i as u32 * ticks, keyframe, payload: Bytes::from(payload), rtp: Vec::new() };
            packetized(&codec, frame)
        })
        .collect();
    if !frames.first().is_some_and(|f| f.keyframe) {
        return Err("the clip does not start with a keyframe".into());
    }
    Ok(ClipTrack { codec, frames, ticks, timing: None })
}

/// AAC frames from ADTS (the first `count`), as an RTP MPEG4-GENERIC track.
pub fn aac_adts(adts: &[u8], count: usize) -> Result<ClipTrack, String> {
    let mut config = None;
    let raw: Vec<&[u8]> = media::aac::adts_frames(adts)
        .map(|(h, au)| {
            config.get_or_insert(h.config);
            au
        })
        .take(count)
        .collect();
    let config = config.ok_or("the clip has no AAC frames")?;
    if raw.len() < count {
        return Err(format!("the clip has {} AAC frames, expected {count}", raw.len()));
    }
    let codec = aac_codec(config.sample_rate, config.channels as u16, &config.to_hex());
    let frames = raw
        .iter()
        .enumerate()
        .map(|(i, au)| {
            let frame = Frame {
                timestamp: i as u32 * 1024,
                keyframe: true,
                payload: Bytes::copy_from_slice(au),
                rtp: Vec::new(),
            };
            packetized(&codec, frame)
        })
        .collect();
    Ok(ClipTrack { codec, frames, ticks: 1024, timing: None })
}

/// The RTP codec of AAC-hbr with AudioSpecificConfig `config_hex`.
pub fn aac_codec(sample_rate: u32, channels: u16, config_hex: &str) -> Codec {
    Codec::new(codec::AAC, sample_rate, channels, 97).with_fmtp(format!(
        "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={config_hex}"
    ))
}

/// A track that repeats one frame (`payload`, `ticks` long) forever: silence.
pub fn repeated(codec: Codec, payload: &'static [u8], ticks: u32) -> ClipTrack {
    let frame = Frame { timestamp: 0, keyframe: true, payload: Bytes::from_static(payload), rtp: Vec::new() };
    let frame = packetized(&codec, frame);
    ClipTrack { codec, frames: vec![frame], ticks, timing: None }
}

/// A copy of a clip frame moved to timestamp `ts` (payloads are shared, not copied).
pub fn restamp(frame: &Frame, ts: u32) -> Frame {
    let mut f = frame.clone();
    let delta = ts.wrapping_sub(frame.timestamp);
    f.timestamp = ts;
    for p in &mut f.rtp {
        p.timestamp = p.timestamp.wrapping_add(delta);
    }
    f
}

/// Plays `clips[i]` into `tracks[i]` in real time, looped, until `stop`; each track on its own clock
/// from a random base.
pub async fn play(clips: &[Arc<ClipTrack>], tracks: &[Arc<Track>], stop: &CancellationToken) {
    let pairs: Vec<(&ClipTrack, &Arc<Track>)> =
        clips.iter().map(|c| c.as_ref()).zip(tracks).filter(|(c, _)| !c.frames.is_empty()).collect();
    if pairs.is_empty() {
        return stop.cancelled().await;
    }
    let start = Instant::now();
    let bases: Vec<u32> = pairs.iter().map(|_| rand::random()).collect();
    let mut next = vec![0u64; pairs.len()];
    let due = |i: usize, n: u64| start + pairs[i].0.duration(pairs[i].0.position(n).0);
    loop {
        let Some((i, at)) = (0..pairs.len()).map(|i| (i, due(i, next[i]))).min_by_key(|(_, at)| *at) else {
            return;
        };
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(at) => {}
        }
        let (clip, track) = pairs[i];
        let n = next[i];
        let frame = &clip.frames[(n % clip.frames.len() as u64) as usize];
        track.push(restamp(frame, bases[i].wrapping_add(clip.position(n).1 as u32)));
        next[i] = n + 1;
    }
}
