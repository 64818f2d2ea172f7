//! What WebRTC audio transcoding costs per stream (issue 20): the server's `audio::Transcoder` run over
//! 60 s of camera audio per case (made by ffmpeg: a tone with pink noise, so the encoders have real
//! work), timed with the thread's CPU clock. A real-time stream's share of one core is
//! `CPU time / audio duration`. Prints one line per case and a JSON line.
//!
//! ```sh
//! cargo run --release -p camrelay-bench --bin audio-transcode [-- SECONDS]
//! ```

use camrelay::audio::{target_codec, Encoded, Transcoder};
use media::Codec;
use std::process::Command;

/// An input codec and its frames (RTP timestamp, payload).
type Case = (Codec, Vec<(u32, Vec<u8>)>);

/// Seconds of the thread's CPU time.
fn thread_cpu() -> f64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: clock_gettime writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// `seconds` of a 440 Hz tone with pink noise encoded by ffmpeg (`codec_args`), raw bytes out.
fn ffmpeg_audio(seconds: u32, rate: u32, channels: u32, codec_args: &[&str], format: &str) -> Vec<u8> {
    let graph = format!(
        "sine=f=440:r={rate}:d={seconds}[a];anoisesrc=r={rate}:c=pink:a=0.05:d={seconds}[b];[a][b]amix=inputs=2,pan={}",
        if channels == 2 { "stereo|c0=c0|c1=c0" } else { "mono|c0=c0" }
    );
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &graph])
        .args(codec_args)
        .args(["-f", format, "pipe:1"])
        .output()
        .expect("ffmpeg");
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// AAC: ADTS frames to raw access units with 1024-sample timestamps.
fn aac_case(seconds: u32, rate: u32, channels: u32) -> Case {
    let adts = ffmpeg_audio(seconds, rate, channels, &["-c:a", "aac", "-b:a", "64k"], "adts");
    let frames: Vec<(media::aac::AdtsHeader, &[u8])> = media::aac::adts_frames(&adts).collect();
    let config = frames[0].0.config;
    let codec =
        Codec::new(media::codec::AAC, rate, channels as u16, 97).with_fmtp(format!("config={}", config.to_hex()));
    (codec, frames.iter().enumerate().map(|(i, (_, au))| (i as u32 * 1024, au.to_vec())).collect())
}

/// G.711: 20 ms packets.
fn g711_case(seconds: u32, rate: u32, alaw: bool) -> Case {
    let (c, f, name) = if alaw { ("pcm_alaw", "alaw", "PCMA") } else { ("pcm_mulaw", "mulaw", "PCMU") };
    let raw = ffmpeg_audio(seconds, rate, 1, &["-c:a", c, "-ar", &rate.to_string()], f);
    let per = rate as usize / 50;
    (
        Codec::new(name, rate, 1, 8),
        raw.chunks(per).enumerate().map(|(i, c)| (i as u32 * per as u32, c.to_vec())).collect(),
    )
}

/// A browser's microphone: Opus 48 kHz in 20 ms frames (encoded here with libopus, not timed).
fn opus_case(seconds: u32) -> Case {
    let raw = ffmpeg_audio(seconds, 48_000, 1, &["-c:a", "pcm_s16le"], "s16le");
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Mono, opus::Application::Voip).expect("opus");
    let pcm: Vec<i16> = raw.chunks_exact(2).map(|b| i16::from_le_bytes([b[0], b[1]])).collect();
    let frames = pcm
        .chunks_exact(960)
        .enumerate()
        .map(|(i, c)| (i as u32 * 960, enc.encode_vec(c, 1500).expect("opus")))
        .collect();
    (Codec::new(media::codec::OPUS, 48_000, 2, 111), frames)
}

fn main() {
    let seconds: u32 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(60);
    let cases: Vec<(&str, Case, &str)> = vec![
        ("AAC 44.1 kHz mono → Opus", aac_case(seconds, 44_100, 1), "OPUS"),
        ("AAC 48 kHz stereo → Opus", aac_case(seconds, 48_000, 2), "OPUS"),
        ("AAC 16 kHz mono → Opus", aac_case(seconds, 16_000, 1), "OPUS"),
        ("PCMA 8 kHz → Opus", g711_case(seconds, 8_000, true), "OPUS"),
        ("PCMU 16 kHz → Opus", g711_case(seconds, 16_000, false), "OPUS"),
        ("AAC 44.1 kHz mono → PCMA 8 kHz", aac_case(seconds, 44_100, 1), "PCMA"),
        ("Opus microphone → PCMA 8 kHz (two-way)", opus_case(seconds), "PCMA"),
    ];
    let mut json = Vec::new();
    for (name, (input, frames), target) in cases {
        let target = target_codec(target).expect("target");
        let mut t = Transcoder::new(&input, &target).expect("transcoder");
        let mut out: Vec<Encoded> = Vec::new();
        let start = thread_cpu();
        for (ts, f) in &frames {
            t.push(*ts, f, &mut out);
            out.clear();
        }
        let cpu = thread_cpu() - start;
        let audio = seconds as f64;
        let share = cpu / audio * 100.0;
        assert_eq!(t.stats.bad_frames, 0, "{name}: {:?}", t.last_error);
        println!(
            "{name:<42} {:>6.2} % of a core per stream ({:.3} s CPU for {audio} s; {} frames in, {} out)",
            share, cpu, t.stats.frames_in, t.stats.frames_out
        );
        json.push(serde_json::json!({"case": name, "core_percent": (share * 100.0).round() / 100.0, "cpu_s": cpu, "audio_s": audio}));
    }
    println!("{}", serde_json::Value::Array(json));
}
