//! Decoders (AAC-LC, G.711, L16, Opus) to planar `f32` samples, and encoders (Opus, G.711) from them.
//! A frame that does not decode is an error naming what was wrong, never a panic: the AAC decoder is
//! also run inside `catch_unwind`, as a second line behind the checks on its configuration.

use media::codec;
use media::Codec;
use symphonia_core::audio::{AudioBufferRef, Signal};
use symphonia_core::codecs::{CodecParameters, Decoder as _, DecoderOptions, CODEC_TYPE_AAC};
use symphonia_core::formats::Packet;

use super::g711;

/// Sample rates libopus encodes from and decodes to without resampling.
pub const OPUS_RATES: [u32; 5] = [8_000, 12_000, 16_000, 24_000, 48_000];
/// The longest Opus packet: 120 ms at 48 kHz.
const OPUS_MAX_FRAME: usize = 5_760;

pub enum Decoder {
    Aac(Box<symphonia_codec_aac::AacDecoder>),
    Alaw,
    Ulaw,
    L16,
    Opus(opus::Decoder),
}

/// What a decoder gives: samples per second and channels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Format {
    pub rate: u32,
    pub channels: usize,
}

impl Decoder {
    /// A decoder for `codec` (as the source's SDP describes it). Opus decodes at `opus_rate` (one of
    /// [`OPUS_RATES`]) with at most `opus_channels` channels: libopus converts on the way.
    pub fn new(c: &Codec, opus_rate: u32, opus_channels: usize) -> Result<(Decoder, Format), String> {
        let channels = usize::from(c.channels.max(1));
        let fixed = |d: Decoder, rate: u32, channels: usize| -> Result<(Decoder, Format), String> {
            if rate == 0 || rate > 192_000 || channels > 8 {
                return Err(format!("{}: {rate} Hz, {channels} channels is not audio we can decode", c.short_name()));
            }
            Ok((d, Format { rate, channels }))
        };
        match c.name.to_ascii_uppercase().as_str() {
            codec::PCMA => fixed(Decoder::Alaw, c.clock_rate, channels),
            codec::PCMU => fixed(Decoder::Ulaw, c.clock_rate, channels),
            codec::L16 => fixed(Decoder::L16, c.clock_rate, channels),
            codec::OPUS => {
                let rate = if OPUS_RATES.contains(&opus_rate) { opus_rate } else { 48_000 };
                let channels = opus_channels.clamp(1, 2);
                let ch = if channels == 2 { opus::Channels::Stereo } else { opus::Channels::Mono };
                let d = opus::Decoder::new(rate, ch).map_err(|e| format!("opus decoder: {e}"))?;
                Ok((Decoder::Opus(d), Format { rate, channels }))
            }
            codec::AAC => {
                let config = c
                    .fmtp_param("config")
                    .ok_or_else(|| "AAC without config= (its AudioSpecificConfig) in the SDP".to_string())
                    .and_then(|hex| {
                        media::aac::AudioSpecificConfig::from_hex(hex).map_err(|e| format!("AAC config {hex:?}: {e}"))
                    })?;
                Self::aac(&config)
            }
            other => Err(format!("no decoder for {other}")),
        }
    }

    /// An AAC-LC decoder (mono or stereo, 1024 samples a frame, any of the standard rates).
    pub fn aac(config: &media::aac::AudioSpecificConfig) -> Result<(Decoder, Format), String> {
        if config.object_type != media::aac::OBJECT_TYPE_AAC_LC {
            return Err(format!("AAC object type {} (only AAC-LC, 2, is decoded)", config.object_type));
        }
        if !(1..=2).contains(&config.channels) {
            return Err(format!("AAC with channel configuration {} (only mono and stereo)", config.channels));
        }
        if media::aac::sample_rate_index(config.sample_rate).is_none() {
            return Err(format!("AAC at {} Hz", config.sample_rate));
        }
        let mut params = CodecParameters::new();
        params.for_codec(CODEC_TYPE_AAC).with_extra_data(config.to_bytes().into_boxed_slice());
        let decoder = catch(|| symphonia_codec_aac::AacDecoder::try_new(&params, &DecoderOptions::default()))
            .and_then(|r| r.map_err(|e| e.to_string()))
            .map_err(|e| format!("AAC decoder: {e}"))?;
        Ok((
            Decoder::Aac(Box::new(decoder)),
            Format { rate: config.sample_rate, channels: usize::from(config.channels) },
        ))
    }

    /// Decodes one frame, appending its samples to `out` (one vector per channel of the decoder's
    /// format). Returns the samples per channel added.
    pub fn decode(&mut self, payload: &[u8], out: &mut [Vec<f32>]) -> Result<usize, String> {
        let channels = out.len().max(1);
        match self {
            Decoder::Alaw | Decoder::Ulaw => {
                let n = payload.len() / channels;
                let alaw = matches!(self, Decoder::Alaw);
                for (i, b) in payload[..n * channels].iter().enumerate() {
                    let s = if alaw { g711::alaw_to_linear(*b) } else { g711::ulaw_to_linear(*b) };
                    out[i % channels].push(f32::from(s) / 32768.0);
                }
                Ok(n)
            }
            Decoder::L16 => {
                let n = payload.len() / 2 / channels;
                for (i, s) in payload[..n * channels * 2].chunks_exact(2).enumerate() {
                    out[i % channels].push(f32::from(i16::from_be_bytes([s[0], s[1]])) / 32768.0);
                }
                Ok(n)
            }
            Decoder::Opus(d) => {
                let mut pcm = vec![0f32; OPUS_MAX_FRAME * channels];
                let n = d.decode_float(payload, &mut pcm, false).map_err(|e| format!("opus: {e}"))?;
                for (i, s) in pcm[..n * channels].iter().enumerate() {
                    out[i % channels].push(*s);
                }
                Ok(n)
            }
            Decoder::Aac(d) => {
                if payload.is_empty() {
                    return Err("AAC: empty frame".into());
                }
                let packet = Packet::new_from_slice(0, 0, 0, payload);
                catch(|| -> Result<usize, String> {
                    let buf = d.decode(&packet).map_err(|e| format!("AAC: {e}"))?;
                    let AudioBufferRef::F32(buf) = buf else { return Err("AAC: unexpected sample format".into()) };
                    let have = buf.spec().channels.count();
                    let n = buf.frames();
                    for (ch, o) in out.iter_mut().enumerate() {
                        o.extend_from_slice(buf.chan(ch.min(have.saturating_sub(1))));
                    }
                    Ok(n)
                })
                .map_err(|e| format!("AAC: the decoder failed on this frame ({e})"))?
            }
        }
    }
}

/// Runs `f`, turning a panic into an error (third-party decoders on network input).
fn catch<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|p| {
        p.downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "panic".into())
    })
}

pub enum Encoder {
    Opus(opus::Encoder),
    Alaw,
    Ulaw,
}

impl Encoder {
    /// An encoder for `target` (`OPUS`, `PCMA` or `PCMU`) reading `format` (for Opus one of
    /// [`OPUS_RATES`], 1 or 2 channels; for G.711 8 kHz mono).
    pub fn new(target: &str, format: Format) -> Result<Encoder, String> {
        match target {
            codec::OPUS => {
                let ch = if format.channels == 2 { opus::Channels::Stereo } else { opus::Channels::Mono };
                let mut e = opus::Encoder::new(format.rate, ch, opus::Application::Audio)
                    .map_err(|e| format!("opus encoder: {e}"))?;
                // Speech and ambient sound of a camera: 32 kbit/s a channel is transparent enough.
                let _ = e.set_bitrate(opus::Bitrate::Bits(32_000 * format.channels as i32));
                Ok(Encoder::Opus(e))
            }
            codec::PCMA => Ok(Encoder::Alaw),
            codec::PCMU => Ok(Encoder::Ulaw),
            other => Err(format!("no encoder for {other}")),
        }
    }

    /// Encodes one frame of interleaved samples.
    pub fn encode(&mut self, interleaved: &[f32]) -> Result<Vec<u8>, String> {
        let to_i16 = |s: &f32| (s.clamp(-1.0, 1.0) * 32767.0) as i16;
        match self {
            Encoder::Opus(e) => e.encode_vec_float(interleaved, 1500).map_err(|e| format!("opus: {e}")),
            Encoder::Alaw => Ok(interleaved.iter().map(|s| g711::linear_to_alaw(to_i16(s))).collect()),
            Encoder::Ulaw => Ok(interleaved.iter().map(|s| g711::linear_to_ulaw(to_i16(s))).collect()),
        }
    }
}
