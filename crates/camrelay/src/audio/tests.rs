use super::resample::tests::{frequency, rms, sine};
use super::*;

const AAC_MONO_44100: &[u8] = include_bytes!("testdata/sine440_44100_mono.aac");
const AAC_STEREO_48000: &[u8] = include_bytes!("testdata/sine1000_48000_stereo.aac");

/// The raw access units of an ADTS file and the codec an RTSP camera would describe them with.
pub(crate) fn aac_frames(adts: &[u8]) -> (Codec, Vec<Vec<u8>>) {
    let frames: Vec<(media::aac::AdtsHeader, &[u8])> = media::aac::adts_frames(adts).collect();
    let config = frames[0].0.config;
    let codec = Codec::new(media::codec::AAC, config.sample_rate, config.channels as u16, 97)
        .with_fmtp(format!("streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;config={}", config.to_hex()));
    (codec, frames.into_iter().map(|(_, au)| au.to_vec()).collect())
}

/// Decodes Opus frames (checking their timestamps step by 20 ms) back to 48 kHz samples of channel 0.
fn decode_opus(frames: &[Encoded], channels: usize) -> Vec<f32> {
    let ch = if channels == 2 { opus::Channels::Stereo } else { opus::Channels::Mono };
    let mut d = opus::Decoder::new(48_000, ch).unwrap();
    let mut out = Vec::new();
    for w in frames.windows(2) {
        assert_eq!(w[1].timestamp.wrapping_sub(w[0].timestamp), 960, "20 ms apart in the 48 kHz clock");
    }
    for f in frames {
        let mut pcm = vec![0f32; 5760 * channels];
        let n = d.decode_float(&f.payload, &mut pcm, false).unwrap();
        assert_eq!(n, 960);
        out.extend(pcm[..n * channels].iter().step_by(channels));
    }
    out
}

fn run(t: &mut Transcoder, frames: &[(u32, Vec<u8>)]) -> Vec<Encoded> {
    let mut out = Vec::new();
    for (ts, f) in frames {
        t.push(*ts, f, &mut out);
    }
    out
}

#[test]
fn aac_44100_mono_becomes_opus_with_the_tone() {
    let (codec, aus) = aac_frames(AAC_MONO_44100);
    let mut t = Transcoder::new(&codec, &target_codec("OPUS").unwrap()).unwrap();
    assert_eq!(t.encoder_format(), Format { rate: 48_000, channels: 1 });
    let base = 3_000_000_000u32;
    let frames: Vec<(u32, Vec<u8>)> =
        aus.iter().enumerate().map(|(i, au)| (base.wrapping_add(i as u32 * 1024), au.clone())).collect();
    let out = run(&mut t, &frames);
    assert_eq!(t.stats.bad_frames, 0, "{:?}", t.last_error);
    // About a second of audio (and the encoder's priming) in 20 ms frames.
    assert!((45..=54).contains(&out.len()), "{} frames", out.len());
    // The first one starts at the first input frame's time, in the 48 kHz clock.
    assert_eq!(out[0].timestamp, (base as u64 * 48_000 / 44_100) as u32);
    let pcm = decode_opus(&out, 1);
    let f = frequency(&pcm, 48_000);
    assert!((f - 440.0).abs() < 5.0, "{f} Hz");
    // ffmpeg's sine source is at 1/8 of full scale: rms ≈ 0.088.
    let level = rms(&pcm);
    assert!((0.06..0.12).contains(&level), "rms {level}");
}

#[test]
fn aac_48000_stereo_becomes_stereo_opus_without_resampling() {
    let (codec, aus) = aac_frames(AAC_STEREO_48000);
    let mut t = Transcoder::new(&codec, &target_codec("OPUS").unwrap()).unwrap();
    assert_eq!(t.encoder_format(), Format { rate: 48_000, channels: 2 });
    assert!(t.resampler.is_none());
    let frames: Vec<(u32, Vec<u8>)> = aus.iter().enumerate().map(|(i, au)| (i as u32 * 1024, au.clone())).collect();
    let out = run(&mut t, &frames);
    assert_eq!(t.stats.bad_frames, 0, "{:?}", t.last_error);
    let pcm = decode_opus(&out, 2);
    let f = frequency(&pcm, 48_000);
    assert!((f - 1000.0).abs() < 10.0, "{f} Hz");
}

#[test]
fn g711_at_8000_becomes_opus_encoded_at_8000() {
    for (name, enc) in [("PCMA", g711::linear_to_alaw as fn(i16) -> u8), ("PCMU", g711::linear_to_ulaw)] {
        let codec = Codec::new(name, 8_000, 1, if name == "PCMA" { 8 } else { 0 });
        let mut t = Transcoder::new(&codec, &target_codec("OPUS").unwrap()).unwrap();
        // libopus takes 8 kHz as it is: no resampler.
        assert_eq!(t.encoder_format(), Format { rate: 8_000, channels: 1 });
        let tone: Vec<u8> = sine(440.0, 8_000, 8_000).iter().map(|s| enc((s * 32767.0) as i16)).collect();
        // 40 ms RTP packets: 320 samples each.
        let frames: Vec<(u32, Vec<u8>)> =
            tone.chunks(320).enumerate().map(|(i, c)| (i as u32 * 320, c.to_vec())).collect();
        let out = run(&mut t, &frames);
        assert_eq!(out.len(), 50, "{name}");
        let pcm = decode_opus(&out, 1);
        assert!((frequency(&pcm, 48_000) - 440.0).abs() < 5.0, "{name}");
        assert!((rms(&pcm) - 0.353).abs() < 0.05, "{name}: rms {}", rms(&pcm));
    }
}

#[test]
fn odd_rates_and_l16_become_g711_at_8000() {
    // L16 stereo at 16 kHz, then PCMA at 16 kHz, to PCMU at 8 kHz (a browser that offers only G.711).
    let tone = sine(440.0, 16_000, 16_000);
    let l16: Vec<u8> = tone
        .iter()
        .flat_map(|s| {
            let v = ((s * 32767.0) as i16).to_be_bytes();
            [v[0], v[1], v[0], v[1]]
        })
        .collect();
    let pcma16: Vec<u8> = tone.iter().map(|s| g711::linear_to_alaw((s * 32767.0) as i16)).collect();
    for (codec, data, per) in
        [(Codec::new("L16", 16_000, 2, 96), l16, 640 * 4), (Codec::new("PCMA", 16_000, 1, 96), pcma16, 640)]
    {
        let mut t = Transcoder::new(&codec, &target_codec("PCMU").unwrap()).unwrap();
        let frames: Vec<(u32, Vec<u8>)> =
            data.chunks(per).enumerate().map(|(i, c)| (i as u32 * 640, c.to_vec())).collect();
        let out = run(&mut t, &frames);
        assert!((48..=50).contains(&out.len()), "{}: {}", codec.name, out.len());
        for w in out.windows(2) {
            assert_eq!(w[1].timestamp - w[0].timestamp, 160);
        }
        let pcm: Vec<f32> =
            out.iter().flat_map(|f| f.payload.iter().map(|b| g711::ulaw_to_linear(*b) as f32 / 32768.0)).collect();
        assert_eq!(out[0].payload.len(), 160);
        assert!((frequency(&pcm, 8_000) - 440.0).abs() < 5.0, "{}", codec.name);
        assert!((rms(&pcm) - 0.353).abs() < 0.03, "{}: rms {}", codec.name, rms(&pcm));
    }
}

#[test]
fn opus_microphone_becomes_pcma_for_a_backchannel() {
    // A browser's microphone: Opus 48 kHz (SDP says 2 channels), 20 ms frames.
    let mut enc = opus::Encoder::new(48_000, opus::Channels::Stereo, opus::Application::Voip).unwrap();
    let tone = sine(500.0, 48_000, 48_000);
    let stereo: Vec<f32> = tone.iter().flat_map(|s| [*s, *s]).collect();
    let frames: Vec<(u32, Vec<u8>)> = stereo
        .chunks(960 * 2)
        .enumerate()
        .map(|(i, c)| (i as u32 * 960, enc.encode_vec_float(c, 1500).unwrap()))
        .collect();
    let mut t = Transcoder::new(&Codec::new("OPUS", 48_000, 2, 111), &target_codec("PCMA").unwrap()).unwrap();
    // libopus decodes straight to 8 kHz mono.
    assert!(t.resampler.is_none());
    let out = run(&mut t, &frames);
    assert_eq!(out.len(), 50);
    let pcm: Vec<f32> =
        out.iter().flat_map(|f| f.payload.iter().map(|b| g711::alaw_to_linear(*b) as f32 / 32768.0)).collect();
    assert!((frequency(&pcm, 8_000) - 500.0).abs() < 5.0);
    assert!(rms(&pcm) > 0.2, "rms {}", rms(&pcm));
}

#[test]
fn corrupt_aac_is_counted_and_skipped_and_holes_are_filled() {
    let (codec, aus) = aac_frames(AAC_MONO_44100);
    let mut t = Transcoder::new(&codec, &target_codec("OPUS").unwrap()).unwrap();
    let mut frames = Vec::new();
    for (i, au) in aus.iter().enumerate() {
        let ts = i as u32 * 1024;
        match i % 7 {
            // Garbage of the same size, truncated, empty.
            3 => frames.push((ts, au.iter().map(|b| b.wrapping_mul(31).wrapping_add(7)).collect())),
            5 => frames.push((ts, au[..au.len() / 3].to_vec())),
            6 => frames.push((ts, Vec::new())),
            _ => frames.push((ts, au.clone())),
        }
    }
    let out = run(&mut t, &frames);
    assert!(t.stats.bad_frames >= aus.len() as u64 / 7, "{:?}", t.stats);
    assert_eq!(t.stats.gaps, 0);
    // The skipped frames' time is silence: the output timeline stays whole.
    assert!((44..=54).contains(&out.len()), "{}", out.len());
    decode_opus(&out, 1);
    // A configuration that is not AAC-LC (HE-AAC), or not mono/stereo (channel configuration 0 or 6), is
    // refused up front.
    for config in ["2988", "1200", "1230", "12", "zz"] {
        let bad = Codec::new(media::codec::AAC, 44_100, 1, 97).with_fmtp(format!("config={config}"));
        assert!(Transcoder::new(&bad, &target_codec("OPUS").unwrap()).is_err(), "config={config}");
    }
    let no_config = Transcoder::new(&Codec::new(media::codec::AAC, 44_100, 1, 97), &target_codec("OPUS").unwrap());
    assert!(no_config.err().unwrap_or_default().contains("config="));
}

#[test]
fn a_jump_in_time_restarts_the_timeline() {
    let codec = Codec::new("PCMA", 8_000, 1, 8);
    let mut t = Transcoder::new(&codec, &target_codec("OPUS").unwrap()).unwrap();
    let frame = vec![0xD5u8; 160];
    let mut out = Vec::new();
    for i in 0..10u32 {
        t.push(i * 160, &frame, &mut out);
    }
    assert_eq!(out.len(), 10);
    // A lost packet (20 ms): filled, same timeline.
    t.push(11 * 160, &frame, &mut out);
    assert_eq!(out.len(), 12);
    assert_eq!(out[11].timestamp, 11 * 960);
    // Ten seconds later: a new start at the new time.
    t.push(100_000, &frame, &mut out);
    assert_eq!(t.stats.gaps, 1);
    assert_eq!(out.last().unwrap().timestamp, 100_000 * 6);
}

#[test]
fn no_transcoding_for_what_needs_none_or_cannot_be() {
    let opus = target_codec("OPUS").unwrap();
    assert!(Transcoder::new(&opus, &opus).is_err());
    assert!(Transcoder::new(&Codec::new("PCMA", 8_000, 1, 8), &target_codec("PCMA").unwrap()).is_err());
    assert!(Transcoder::new(&Codec::new("PCMA", 16_000, 1, 8), &target_codec("PCMA").unwrap()).is_ok());
    assert!(Transcoder::new(&Codec::new("H264", 90_000, 0, 96), &opus).is_err());
    assert!(Transcoder::new(&Codec::new("PCMA", 0, 1, 8), &opus).is_err());
    assert!(Transcoder::new(&Codec::new("PCMA", 44_101, 1, 8), &opus).is_err());
    assert!(can_decode(&Codec::new("PCMU", 8_000, 1, 0)));
    assert!(!can_decode(&Codec::new("G722", 8_000, 1, 9)));
}
