//! The benchmark's input: a 1280x720 30 fps H.264 clip (1 s GOP, ~2.5 Mbit/s) and an AAC tone,
//! encoded once with ffmpeg and cached, then split into frames and packetized once.

use bytes::Bytes;
use media::{codec, Codec, Frame};
use std::path::Path;
use std::process::Command;

pub const FPS: u32 = 30;
pub const SECONDS: u32 = 10;
const AAC_RATE: u32 = 48_000;

pub struct Clip {
    pub video_codec: Codec,
    pub audio_codec: Codec,
    /// (frame, rtp packets) in presentation order; timestamps start at 0.
    pub video: Vec<Frame>,
    pub audio: Vec<Frame>,
}

fn encode(dir: &Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let video = dir.join("bench720p.h264");
    let audio = dir.join("bench.aac");
    if !video.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("testsrc2=size=1280x720:rate={FPS}:duration={SECONDS}"))
            .args(["-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p"])
            .args(["-g", "30", "-keyint_min", "30", "-sc_threshold", "0", "-bf", "0"])
            .args(["-b:v", "2500k", "-maxrate", "2500k", "-bufsize", "2500k", "-x264-params", "aud=1:repeat-headers=1"])
            .args(["-f", "h264"])
            .arg(&video)
            .status()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        if !status.success() {
            return Err("ffmpeg failed to encode the benchmark clip".into());
        }
    }
    if !audio.exists() {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
            .arg(format!("sine=frequency=440:sample_rate={AAC_RATE}:duration={}", SECONDS + 1))
            .args(["-c:a", "aac", "-b:a", "64k", "-f", "adts"])
            .arg(&audio)
            .status()
            .map_err(|e| format!("ffmpeg: {e}"))?;
        if !status.success() {
            return Err("ffmpeg failed to encode the benchmark audio".into());
        }
    }
    Ok(())
}

pub fn load(dir: &Path) -> Result<Clip, String> {
    encode(dir)?;
    let video = std::fs::read(dir.join("bench720p.h264")).map_err(|e| e.to_string())?;
    let audio = std::fs::read(dir.join("bench.aac")).map_err(|e| e.to_string())?;

    let mut units: Vec<Vec<&[u8]>> = Vec::new();
    let (mut sps, mut pps) = (None, None);
    for nal in media::h264::annexb_nals(&video) {
        let Some(&h) = nal.first() else { continue };
        match media::h264::nal_type(h) {
            9 => {
                units.push(Vec::new());
                continue;
            }
            7 => sps = sps.or(Some(nal)),
            8 => pps = pps.or(Some(nal)),
            _ => {}
        }
        if let Some(u) = units.last_mut() {
            u.push(nal);
        }
    }
    let (Some(sps), Some(pps)) = (sps, pps) else { return Err("clip has no SPS/PPS".into()) };
    let fmtp = format!(
        "packetization-mode=1;sprop-parameter-sets={};profile-level-id={}",
        media::h264::sprop_parameter_sets(sps, pps),
        media::h264::profile_level_id(sps).unwrap_or_default()
    );
    let video_codec = Codec::new(codec::H264, 90_000, 0, 96).with_fmtp(fmtp);
    let mut packetizer = rtp::packetize::packetizer_for(&video_codec, 1400).ok_or("no H.264 packetizer")?;
    let mut video_frames = Vec::new();
    for (i, nals) in units.iter().enumerate() {
        let mut payload = Vec::new();
        let mut keyframe = false;
        for nal in nals {
            keyframe |= media::h264::nal_type(nal[0]) == 5;
            payload.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            payload.extend_from_slice(nal);
        }
        let mut f =
            Frame { timestamp: i as u32 * (90_000 / FPS), keyframe, payload: Bytes::from(payload), rtp: Vec::new() };
        let mut packets = Vec::new();
        packetizer.packetize(&f, &mut packets);
        f.rtp = packets;
        video_frames.push(f);
    }

    let mut config = None;
    let raw: Vec<Vec<u8>> = media::aac::adts_frames(&audio)
        .map(|(h, au)| {
            config.get_or_insert(h.config);
            au.to_vec()
        })
        .collect();
    let config = config.ok_or("no AAC frames")?;
    let audio_codec = Codec::new(codec::AAC, config.sample_rate, config.channels as u16, 97).with_fmtp(format!(
        "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}",
        config.to_hex()
    ));
    let mut packetizer = rtp::packetize::packetizer_for(&audio_codec, 1400).ok_or("no AAC packetizer")?;
    let wanted = (AAC_RATE * SECONDS / 1024) as usize;
    let audio_frames = raw
        .into_iter()
        .take(wanted)
        .enumerate()
        .map(|(i, au)| {
            let mut f = Frame { timestamp: i as u32 * 1024, keyframe: true, payload: Bytes::from(au), rtp: Vec::new() };
            let mut packets = Vec::new();
            packetizer.packetize(&f, &mut packets);
            f.rtp = packets;
            f
        })
        .collect();
    Ok(Clip { video_codec, audio_codec, video: video_frames, audio: audio_frames })
}

/// The key that identifies a video frame on the wire in every reader: a hash of the first bytes of
/// the frame's first RTP payload (readers get their own timestamps and sequence numbers).
pub fn frame_key(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload[..payload.len().min(48)].hash(&mut h);
    h.finish()
}
