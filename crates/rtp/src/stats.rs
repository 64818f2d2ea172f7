//! Reception statistics of one RTP source, as RFC 3550 defines them (A.1 sequence tracking, A.3 expected
//! and lost, A.8 interarrival jitter): what a receiver report carries and what servers show as a
//! session's loss and jitter. Sans-IO: the caller gives each packet's sequence number, timestamp and
//! arrival time.

use std::time::Duration;

/// A jump forward this large is a restarted sender, not loss (RFC 3550 A.1 MAX_DROPOUT).
const MAX_DROPOUT: u16 = 3000;
/// A packet this far behind is late or a duplicate; further back is a restarted sender (MAX_MISORDER).
const MAX_MISORDER: u16 = 100;

#[derive(Debug, Clone)]
pub struct ReceptionStats {
    clock_rate: u32,
    /// Sequence numbers seen, extended with the wrap count: (first, highest).
    first: Option<u64>,
    highest: u64,
    received: u64,
    /// Packets received and lost before the sender last restarted its sequence.
    received_before: u64,
    lost_before: u64,
    /// (arrival in timestamp units, RTP timestamp) of the previous packet, for the transit difference.
    previous: Option<(f64, u32)>,
    /// RFC 3550's J, in timestamp units.
    jitter: f64,
}

impl ReceptionStats {
    /// `clock_rate`: the RTP clock of the payload (90000 for video); 0 leaves jitter at 0.
    pub fn new(clock_rate: u32) -> Self {
        ReceptionStats {
            clock_rate,
            first: None,
            highest: 0,
            received: 0,
            received_before: 0,
            lost_before: 0,
            previous: None,
            jitter: 0.0,
        }
    }

    /// Takes one packet: its sequence number, RTP timestamp and arrival time (from any fixed origin).
    pub fn on_packet(&mut self, sequence: u16, timestamp: u32, arrival: Duration) {
        self.received += 1;
        match self.first {
            None => {
                self.first = Some(u64::from(sequence));
                self.highest = u64::from(sequence);
            }
            Some(first) => {
                let delta = sequence.wrapping_sub(self.highest as u16);
                if delta < MAX_DROPOUT {
                    // In order, with a permissible gap (wraps counted by the extended number).
                    self.highest += u64::from(delta);
                } else if delta <= u16::MAX - MAX_MISORDER {
                    // A big jump either way: the sender restarted its sequence. Keep the loss so far.
                    self.lost_before += (self.highest - first + 1).saturating_sub(self.received - 1);
                    self.received_before += self.received - 1;
                    self.first = Some(u64::from(sequence));
                    self.highest = u64::from(sequence);
                    self.received = 1;
                    self.previous = None;
                }
                // else: late or duplicate; counted as received (as RFC 3550 does).
            }
        }
        if self.clock_rate == 0 {
            return;
        }
        let arrival = arrival.as_secs_f64() * f64::from(self.clock_rate);
        if let Some((prev_arrival, prev_ts)) = self.previous {
            // D(i-1, i) = (Rj - Ri) - (Sj - Si), the timestamp difference taken modulo 2^32.
            let sent = f64::from(timestamp.wrapping_sub(prev_ts) as i32);
            let d = (arrival - prev_arrival) - sent;
            self.jitter += (d.abs() - self.jitter) / 16.0;
        }
        self.previous = Some((arrival, timestamp));
    }

    /// Packets taken (duplicates included, as RFC 3550 counts them).
    pub fn received(&self) -> u64 {
        self.received_before + self.received
    }

    /// Packets expected but not received: sequence gaps that were never filled (0 when duplicates
    /// outnumber them).
    pub fn lost(&self) -> u64 {
        let expected = self.first.map_or(0, |first| self.highest - first + 1);
        self.lost_before + expected.saturating_sub(self.received)
    }

    /// Interarrival jitter in RTP timestamp units (what a receiver report carries).
    pub fn jitter(&self) -> f64 {
        self.jitter
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn steady_sender_has_no_loss_and_no_jitter() {
        let mut s = ReceptionStats::new(90000);
        for i in 0..100u16 {
            s.on_packet(i, u32::from(i) * 3000, Duration::from_micros(u64::from(i) * 100_000 / 3));
        }
        assert_eq!((s.received(), s.lost()), (100, 0));
        assert!(s.jitter() < 1.0, "{}", s.jitter());
    }

    #[test]
    fn gaps_are_lost_across_the_wrap() {
        let mut s = ReceptionStats::new(90000);
        let mut seq = 65530u16;
        for i in 0..20u32 {
            if i % 5 != 4 {
                s.on_packet(seq, i * 3000, ms(u64::from(i) * 33));
            }
            seq = seq.wrapping_add(1);
        }
        // 20 expected, every fifth missing; the last one (i = 19) was skipped too, so 19 expected.
        assert_eq!(s.received(), 16);
        assert_eq!(s.lost(), 3);
        // A late packet fills a gap; a duplicate does not make loss negative.
        s.on_packet(65534, 4 * 3000, ms(700));
        assert_eq!(s.lost(), 2);
        for _ in 0..5 {
            s.on_packet(65530, 0, ms(700));
        }
        assert_eq!(s.lost(), 0);
    }

    #[test]
    fn jitter_follows_rfc3550() {
        // Packets 40 ms apart in timestamps arriving alternately 30 and 50 ms apart: |D| = 10 ms = 900
        // units each time, so J converges to 900.
        let mut s = ReceptionStats::new(90000);
        let mut t = 0;
        for i in 0..400u32 {
            s.on_packet(i as u16, i * 3600, ms(t));
            t += if i % 2 == 0 { 30 } else { 50 };
        }
        assert!((s.jitter() - 900.0).abs() < 1.0, "{}", s.jitter());
        // The next packet 200 ms after the previous instead of 40: |D| = 160 ms = 14400 units, and J
        // moves by (|D| - J) / 16.
        let before = s.jitter();
        let previous_arrival = t - 50;
        s.on_packet(400, 400 * 3600, ms(previous_arrival + 200));
        let want = before + (14400.0 - before) / 16.0;
        assert!((s.jitter() - want).abs() < 1.0, "{} != {want}", s.jitter());
    }

    #[test]
    fn a_restarted_sender_keeps_the_loss_so_far() {
        let mut s = ReceptionStats::new(0);
        for seq in [10u16, 11, 13] {
            s.on_packet(seq, 0, ms(0));
        }
        assert_eq!(s.lost(), 1);
        for seq in 40000u16..40010 {
            s.on_packet(seq, 0, ms(0));
        }
        assert_eq!((s.received(), s.lost()), (13, 1));
        assert_eq!(s.jitter(), 0.0);
    }
}
