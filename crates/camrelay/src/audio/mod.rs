//! Audio transcoding, in-process: decode (AAC-LC, G.711 A/µ-law, L16, Opus), resample, encode (Opus,
//! G.711). [`Transcoder`] is the sans-IO pipeline of one track; `derived` runs one per (stream, target
//! codec) as the source of a derived stream (`cam#opus`, `cam#pcma`, `cam#pcmu`) that every WebRTC
//! viewer of `cam` shares; the WebRTC server's microphone path (two-way audio) runs one per session.
//! docs/webrtc.md says which codecs are transcoded and why these libraries.

pub mod codec;
pub mod derived;
pub mod g711;
pub mod resample;

use codec::{Decoder, Encoder, Format, OPUS_RATES};
use media::Codec;
use resample::Resampler;

/// Frames are encoded 20 ms at a time (WebRTC's usual packet time for Opus and G.711).
const FRAMES_PER_SECOND: u32 = 50;
/// A timestamp farther than this from where the previous frame ended (1/5 s) restarts the timeline;
/// a smaller hole is filled with silence.
const MAX_GAP_DIVISOR: i64 = 5;

/// Counters of one transcoder (what came in, what was refused, what went out).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    pub frames_in: u64,
    /// Frames that did not decode (corrupt, wrong configuration): counted and skipped.
    pub bad_frames: u64,
    pub frames_out: u64,
    /// Timeline restarts (a jump in the input's timestamps).
    pub gaps: u64,
}

/// One encoded frame: its RTP timestamp in the target's clock and its payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub timestamp: u32,
    pub payload: Vec<u8>,
}

/// The codecs a transcoder can read.
pub fn can_decode(c: &Codec) -> bool {
    Decoder::new(c, 48_000, 2).is_ok()
}

/// The target codecs, as the hub's tracks carry them (WebRTC's payload types).
pub fn target_codec(name: &str) -> Option<Codec> {
    Some(match name {
        media::codec::OPUS => Codec::new(media::codec::OPUS, 48_000, 2, 111),
        media::codec::PCMA => Codec::new(media::codec::PCMA, 8_000, 1, 8),
        media::codec::PCMU => Codec::new(media::codec::PCMU, 8_000, 1, 0),
        _ => return None,
    })
}

pub struct Transcoder {
    decoder: Decoder,
    input: Format,
    /// The input's RTP clock (for AAC and G.711 its sample rate; for Opus 48 kHz whatever it decodes to).
    in_clock: u32,
    resampler: Option<Resampler>,
    encoder: Encoder,
    enc: Format,
    out_clock: u32,
    /// Decoded samples, per channel of the input.
    decoded: Vec<Vec<f32>>,
    /// Samples waiting to be encoded, per channel of the encoder, at its rate.
    pending: Vec<Vec<f32>>,
    unwrap: media::timestamp::Unwrapper,
    /// Where the last frame ended, in input ticks.
    expected: Option<i64>,
    /// Output timestamp of the first pending sample.
    next_out: i64,
    pub stats: Stats,
    /// The last decoding error (for a log line now and then).
    pub last_error: Option<String>,
}

impl Transcoder {
    /// A transcoder from `input` (a source's codec) to `target` (`OPUS`, or `PCMA`/`PCMU` at their
    /// clock rate); the error says why the pair cannot be converted.
    pub fn new(input: &Codec, target: &Codec) -> Result<Transcoder, String> {
        let target_name = target.name.to_ascii_uppercase();
        let opus = target_name == media::codec::OPUS;
        if input.name.eq_ignore_ascii_case(&target.name)
            && (opus || (input.clock_rate == target.clock_rate && input.channels.max(1) == target.channels.max(1)))
        {
            return Err(format!("{} needs no transcoding to {}", input.short_name(), target.short_name()));
        }
        // Probe the input's format (Opus input decodes straight to the encoder's rate and channels).
        let (_, probe) = Decoder::new(input, 48_000, 2)?;
        let enc = if opus {
            let rate = if OPUS_RATES.contains(&probe.rate) { probe.rate } else { 48_000 };
            Format { rate, channels: probe.channels.min(2) }
        } else {
            if target.clock_rate == 0 || target.clock_rate > 48_000 {
                return Err(format!("cannot encode {} at {} Hz", target.short_name(), target.clock_rate));
            }
            Format { rate: target.clock_rate, channels: 1 }
        };
        let (decoder, fmt) = Decoder::new(input, enc.rate, enc.channels)?;
        let encoder = Encoder::new(&target_name, enc)?;
        let resampler =
            if fmt.rate != enc.rate { Some(Resampler::new(fmt.rate, enc.rate, enc.channels)?) } else { None };
        let in_clock = if input.clock_rate > 0 { input.clock_rate } else { fmt.rate };
        Ok(Transcoder {
            decoder,
            input: fmt,
            in_clock,
            resampler,
            encoder,
            enc,
            out_clock: if opus { 48_000 } else { enc.rate },
            decoded: vec![Vec::new(); fmt.channels],
            pending: vec![Vec::new(); enc.channels],
            unwrap: Default::default(),
            expected: None,
            next_out: 0,
            stats: Stats::default(),
            last_error: None,
        })
    }

    /// The encoder's input: its rate and channels.
    pub fn encoder_format(&self) -> Format {
        self.enc
    }

    /// One input frame (its RTP timestamp and payload): decoded, converted, and every whole 20 ms
    /// frame encoded into `out`. A frame that does not decode is counted in `stats.bad_frames` and
    /// skipped; its time is filled with silence when the next one arrives.
    pub fn push(&mut self, timestamp: u32, payload: &[u8], out: &mut Vec<Encoded>) {
        self.stats.frames_in += 1;
        let ts = self.unwrap.extend(timestamp);
        for d in &mut self.decoded {
            d.clear();
        }
        let n = match self.decoder.decode(payload, &mut self.decoded) {
            Ok(n) => n,
            Err(e) => {
                self.stats.bad_frames += 1;
                self.last_error = Some(e);
                return;
            }
        };
        if n == 0 {
            return;
        }
        let clock = i64::from(self.in_clock);
        let mut silence = 0usize;
        match self.expected {
            Some(e) if (ts - e).abs() <= clock / MAX_GAP_DIVISOR => {
                // A short hole (a lost or corrupt frame): silence keeps the timeline.
                if ts > e {
                    silence = ((ts - e) as i128 * i128::from(self.input.rate) / i128::from(self.in_clock)) as usize;
                }
            }
            expected => {
                if expected.is_some() {
                    self.stats.gaps += 1;
                }
                for p in &mut self.pending {
                    p.clear();
                }
                if let Some(r) = &mut self.resampler {
                    r.reset();
                }
                self.next_out = (i128::from(ts) * i128::from(self.out_clock) / i128::from(self.in_clock)) as i64;
            }
        }
        let decoded_ticks = (n as i128 * i128::from(self.in_clock) / i128::from(self.input.rate)) as i64;
        self.expected = Some(ts.max(self.expected.unwrap_or(i64::MIN)) + decoded_ticks);

        // To the encoder's channels: a mono mix, or the first two channels.
        let mut mixed: Vec<Vec<f32>> = Vec::with_capacity(self.enc.channels);
        let take = |mixed: &mut Vec<Vec<f32>>, src: &[Vec<f32>], channels: usize| {
            if channels == 1 && src.len() > 1 {
                let scale = 1.0 / src.len() as f32;
                mixed.push((0..src[0].len()).map(|i| src.iter().map(|c| c[i]).sum::<f32>() * scale).collect());
            } else {
                for c in 0..channels {
                    mixed.push(src[c.min(src.len() - 1)].clone());
                }
            }
        };
        if silence > 0 {
            let zeros = vec![vec![0f32; silence]; self.enc.channels.min(self.decoded.len()).max(1)];
            let mut z = Vec::new();
            take(&mut z, &zeros, self.enc.channels);
            self.convert(z);
        }
        take(&mut mixed, &self.decoded, self.enc.channels);
        self.convert(mixed);

        let frame = (self.enc.rate / FRAMES_PER_SECOND) as usize;
        let ticks = i64::from(self.out_clock / FRAMES_PER_SECOND);
        let mut interleaved = Vec::with_capacity(frame * self.enc.channels);
        while self.pending[0].len() >= frame {
            interleaved.clear();
            for i in 0..frame {
                for c in &self.pending {
                    interleaved.push(c[i]);
                }
            }
            for c in &mut self.pending {
                c.drain(..frame);
            }
            match self.encoder.encode(&interleaved) {
                Ok(payload) => {
                    out.push(Encoded { timestamp: self.next_out as u32, payload });
                    self.stats.frames_out += 1;
                }
                Err(e) => self.last_error = Some(e),
            }
            self.next_out += ticks;
        }
    }

    /// Resamples (when the rates differ) into the pending samples.
    fn convert(&mut self, planar: Vec<Vec<f32>>) {
        match &mut self.resampler {
            Some(r) => {
                let slices: Vec<&[f32]> = planar.iter().map(|c| c.as_slice()).collect();
                r.process(&slices, &mut self.pending);
            }
            None => {
                for (p, c) in self.pending.iter_mut().zip(planar) {
                    p.extend_from_slice(&c);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
