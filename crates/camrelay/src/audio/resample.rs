//! A streaming polyphase windowed-sinc resampler for a fixed rational ratio (`out/in` reduced to
//! `L/M`): one filter phase per output position, precomputed, so each output sample is one dot product
//! of `taps` input samples. The cutoff sits at 95 % of the lower Nyquist frequency (anti-aliasing when
//! going down), the window is Blackman, and each phase is normalized to unity gain at DC.

/// Largest interpolation factor `L` (the table holds `L × taps` coefficients): every pair of the usual
/// audio rates (8 to 192 kHz, 11.025 kHz family included) stays well below it.
const MAX_PHASES: usize = 4096;
/// Zero crossings of the sinc on each side, at a cutoff of the input's Nyquist frequency.
const HALF_WIDTH: f64 = 8.0;

#[derive(Debug)]
pub struct Resampler {
    l: u64,
    m: u64,
    half: usize,
    /// `L` phases of `2 × half` coefficients.
    table: Vec<f32>,
    /// Per channel, the input not yet consumed (with `half` zeros in front at the start).
    buf: Vec<Vec<f32>>,
    /// Position of the next output sample in the buffer, in `1/L` input samples.
    pos: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz for `channels` planar channels; an error names a ratio it
    /// cannot hold.
    pub fn new(from: u32, to: u32, channels: usize) -> Result<Resampler, String> {
        if from == 0 || to == 0 || from > 384_000 || to > 384_000 || channels == 0 {
            return Err(format!("cannot resample {from} Hz to {to} Hz"));
        }
        let g = gcd(from as u64, to as u64);
        let (l, m) = (to as u64 / g, from as u64 / g);
        if l as usize > MAX_PHASES || m as usize > MAX_PHASES * 4 {
            return Err(format!("cannot resample {from} Hz to {to} Hz: ratio {l}/{m} too fine"));
        }
        // Cutoff relative to the input's Nyquist frequency.
        let fc = (l as f64 / m as f64).min(1.0) * 0.95;
        let half = (HALF_WIDTH / fc).ceil() as usize;
        let taps = 2 * half;
        let mut table = vec![0f32; l as usize * taps];
        for phase in 0..l as usize {
            let frac = phase as f64 / l as f64;
            let row = &mut table[phase * taps..(phase + 1) * taps];
            let mut sum = 0.0;
            let mut coefs = vec![0f64; taps];
            for (k, c) in coefs.iter_mut().enumerate() {
                // Distance from the output position to input sample `idx + 1 - half + k`.
                let d = frac + half as f64 - 1.0 - k as f64;
                let x = fc * d;
                let sinc =
                    if x.abs() < 1e-12 { 1.0 } else { (std::f64::consts::PI * x).sin() / (std::f64::consts::PI * x) };
                let w = d / half as f64;
                let window = if w.abs() >= 1.0 {
                    0.0
                } else {
                    0.42 + 0.5 * (std::f64::consts::PI * w).cos() + 0.08 * (2.0 * std::f64::consts::PI * w).cos()
                };
                *c = sinc * window;
                sum += *c;
            }
            for (r, c) in row.iter_mut().zip(coefs) {
                *r = (c / sum) as f32;
            }
        }
        Ok(Resampler { l, m, half, table, buf: vec![vec![0.0; half]; channels], pos: half as u64 * l })
    }

    pub fn channels(&self) -> usize {
        self.buf.len()
    }

    /// Forgets the input held (after a gap in the stream).
    pub fn reset(&mut self) {
        for b in &mut self.buf {
            b.clear();
            b.resize(self.half, 0.0);
        }
        self.pos = self.half as u64 * self.l;
    }

    /// Takes `input` (one slice per channel, equally long) and appends what can be computed to `out`
    /// (one vector per channel). The output lags the input by `half` input samples.
    pub fn process(&mut self, input: &[&[f32]], out: &mut [Vec<f32>]) {
        for (b, i) in self.buf.iter_mut().zip(input) {
            b.extend_from_slice(i);
        }
        let taps = 2 * self.half;
        let len = self.buf[0].len();
        loop {
            let idx = (self.pos / self.l) as usize;
            if idx + self.half >= len {
                break;
            }
            let phase = (self.pos % self.l) as usize;
            let coefs = &self.table[phase * taps..(phase + 1) * taps];
            let start = idx + 1 - self.half;
            for (b, o) in self.buf.iter().zip(out.iter_mut()) {
                let x = &b[start..start + taps];
                o.push(x.iter().zip(coefs).map(|(a, c)| a * c).sum());
            }
            self.pos += self.m;
        }
        // Drop what no later output needs.
        let idx = (self.pos / self.l) as usize;
        let drop = (idx + 1).saturating_sub(self.half).min(len);
        if drop > 0 {
            for b in &mut self.buf {
                b.drain(..drop);
            }
            self.pos -= drop as u64 * self.l;
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sine(freq: f64, rate: u32, n: usize) -> Vec<f32> {
        (0..n).map(|i| (0.5 * (2.0 * std::f64::consts::PI * freq * i as f64 / rate as f64).sin()) as f32).collect()
    }

    /// The dominant frequency by counting rising zero crossings (skipping the filter's start).
    pub(crate) fn frequency(x: &[f32], rate: u32) -> f64 {
        let x = &x[x.len() / 10..];
        let crossings = x.windows(2).filter(|w| w[0] < 0.0 && w[1] >= 0.0).count();
        crossings as f64 * rate as f64 / x.len() as f64
    }

    pub(crate) fn rms(x: &[f32]) -> f64 {
        let x = &x[x.len() / 10..];
        (x.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / x.len() as f64).sqrt()
    }

    fn run(from: u32, to: u32, freq: f64, chunk: usize) -> Vec<f32> {
        let input = sine(freq, from, from as usize);
        let mut r = Resampler::new(from, to, 1).unwrap();
        let mut out = vec![Vec::new()];
        for c in input.chunks(chunk) {
            r.process(&[c], &mut out);
        }
        out.pop().unwrap()
    }

    #[test]
    fn a_tone_keeps_its_pitch_and_level() {
        for (from, to) in [
            (44_100, 48_000),
            (8_000, 48_000),
            (16_000, 8_000),
            (48_000, 8_000),
            (22_050, 48_000),
            (32_000, 48_000),
            (11_025, 8_000),
        ] {
            for chunk in [1, 160, 1024, 5000] {
                let out = run(from, to, 440.0, chunk);
                // One second in; the output lags by the filter's half width only.
                assert!((out.len() as i64 - to as i64).abs() < to as i64 / 50, "{from}→{to}: {} samples", out.len());
                let f = frequency(&out, to);
                assert!((f - 440.0).abs() < 3.0, "{from}→{to} chunk {chunk}: {f} Hz");
                let level = rms(&out);
                assert!((level - 0.5 / 2f64.sqrt()).abs() < 0.01, "{from}→{to}: rms {level}");
            }
        }
    }

    #[test]
    fn going_down_filters_what_the_new_rate_cannot_hold() {
        // 6 kHz does not fit under 8 kHz's Nyquist frequency (4 kHz): it must not alias to 2 kHz.
        let out = run(48_000, 8_000, 6_000.0, 960);
        assert!(rms(&out) < 0.01, "rms {}", rms(&out));
        // 3 kHz passes.
        let out = run(48_000, 8_000, 3_000.0, 960);
        assert!(rms(&out) > 0.3, "rms {}", rms(&out));
    }

    #[test]
    fn odd_ratios_are_refused_not_allocated() {
        assert!(Resampler::new(0, 48_000, 1).is_err());
        assert!(Resampler::new(44_101, 48_000, 1).is_err());
        assert!(Resampler::new(u32::MAX, 48_000, 1).is_err());
        assert!(Resampler::new(48_000, 48_000, 2).is_ok());
    }
}
