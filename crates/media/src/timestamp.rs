//! RTP timestamps are 32-bit and wrap (at 90 kHz every 13 h 15 min, at 48 kHz every 24 h 51 min).
//! Containers and players want a count that does not: [`Unwrapper`] is the one place that extends them.

/// Extends 32-bit wrapping RTP timestamps to a signed 64-bit count of ticks since the first one.
///
/// Each step is taken as the signed 32-bit difference from the previous timestamp, so a wrap
/// (`0xffff_fff0` → `0x10`) is a small step forward and a small reordering (B-frames, a late packet)
/// is a small step back. A jump of more than 2³¹ ticks cannot be told from a step back; RTP has the
/// same ambiguity.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unwrapper {
    first: Option<u32>,
    last: u32,
    ext: i64,
}

impl Unwrapper {
    pub fn new() -> Unwrapper {
        Unwrapper::default()
    }

    /// Ticks from the first timestamp seen to `ts` (0 for the first one; negative if `ts` is before it).
    pub fn unwrap(&mut self, ts: u32) -> i64 {
        match self.first {
            None => {
                self.first = Some(ts);
                self.ext = 0;
            }
            Some(_) => self.ext = self.ext.saturating_add(i64::from(ts.wrapping_sub(self.last) as i32)),
        }
        self.last = ts;
        self.ext
    }

    /// `ts` extended to 64 bits: the first timestamp as it is, later ones counted on from it (so it
    /// reads like RFC 3550's extended timestamps; it goes negative only if a stream steps back from
    /// near zero).
    pub fn extend(&mut self, ts: u32) -> i64 {
        let ticks = self.unwrap(ts);
        i64::from(self.first.unwrap_or(ts)).saturating_add(ticks)
    }

    /// The first timestamp seen, if any.
    pub fn first(&self) -> Option<u32> {
        self.first
    }

    /// Forgets the history: the next timestamp counts as the first again.
    pub fn reset(&mut self) {
        *self = Unwrapper::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_is_zero_and_steps_are_counted() {
        let mut u = Unwrapper::new();
        assert_eq!(u.first(), None);
        assert_eq!(u.unwrap(1000), 0);
        assert_eq!(u.first(), Some(1000));
        assert_eq!(u.unwrap(4000), 3000);
        assert_eq!(u.unwrap(4000), 3000);
        // Reordered (B-frame): a small step back.
        assert_eq!(u.unwrap(2500), 1500);
        assert_eq!(u.unwrap(7000), 6000);
    }

    #[test]
    fn wraps_forward() {
        let mut u = Unwrapper::new();
        assert_eq!(u.unwrap(0xffff_ff00), 0);
        assert_eq!(u.unwrap(0x0000_0100), 0x200);
        assert_eq!(u.unwrap(0x0000_0000), 0x100);
        assert_eq!(u.unwrap(0xffff_fff0), -0x10 + 0x100);
    }

    #[test]
    fn wraps_many_times_at_90khz() {
        // Five full turns of the 32-bit clock in steps of one 30 fps frame.
        let mut u = Unwrapper::new();
        let start = 0xfff0_0000u32;
        let step = 3000u32;
        let steps = 5 * (1u64 << 32) / u64::from(step);
        let mut ts = start;
        assert_eq!(u.unwrap(ts), 0);
        // Checking every step would take seconds in debug builds; stride through the wraps instead.
        let mut expected = 0i64;
        for i in 1..=steps {
            ts = ts.wrapping_add(step);
            expected += i64::from(step);
            let got = u.unwrap(ts);
            if i % 100_000 == 0 || ts < step {
                assert_eq!(got, expected, "step {i}");
            }
        }
        assert!(expected > 5 * (1i64 << 32) - i64::from(step));
        assert_eq!(u.extend(ts.wrapping_add(step)), i64::from(start) + expected + i64::from(step));
    }

    #[test]
    fn extend_keeps_the_first_value() {
        let mut u = Unwrapper::new();
        assert_eq!(u.extend(0xffff_fff0), 0xffff_fff0);
        assert_eq!(u.extend(0x0000_0010), 0x1_0000_0010);
        // A step back across the wrap.
        assert_eq!(u.extend(0xffff_ffff), 0xffff_ffff);
        let mut u = Unwrapper::new();
        assert_eq!(u.extend(5), 5);
        assert_eq!(u.extend(u32::MAX), -1, "a step back from near zero goes negative");
    }

    #[test]
    fn reset_starts_over() {
        let mut u = Unwrapper::new();
        u.unwrap(10);
        u.unwrap(20);
        u.reset();
        assert_eq!(u.unwrap(1_000_000), 0);
        assert_eq!(u.unwrap(1_000_090), 90);
    }
}
