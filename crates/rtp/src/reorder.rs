//! Reorder buffer for RTP over UDP: puts packets back in sequence order (with wraparound), waits for a
//! missing packet at most `capacity` packets, and counts what never came.

use media::RtpPacket;
use std::collections::VecDeque;

/// A jump forward this large is a restarted sender, not loss (RFC 3550 A.1 MAX_DROPOUT).
const MAX_DROPOUT: usize = 3000;
/// A packet this far behind is late or a duplicate; further back is a restarted sender (MAX_MISORDER).
const MAX_MISORDER: i32 = 100;

pub struct ReorderBuffer {
    /// `slots[i]` holds sequence number `next + i`.
    slots: VecDeque<Option<RtpPacket>>,
    next: Option<u16>,
    buffered: usize,
    lost: u64,
    dropped: u64,
}

impl ReorderBuffer {
    /// `capacity` packets may wait for a missing one (clamped to 1..=1024).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, 1024);
        ReorderBuffer {
            slots: std::iter::repeat_with(|| None).take(capacity).collect(),
            next: None,
            buffered: 0,
            lost: 0,
            dropped: 0,
        }
    }

    /// Packets given up on (never arrived while their place was waited for).
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Duplicates and packets that came after their place was given up.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Packets waiting for an earlier one.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// Takes one packet; appends to `out` every packet now in order.
    pub fn push(&mut self, pkt: RtpPacket, out: &mut Vec<RtpPacket>) {
        let Some(next) = self.next else {
            self.next = Some(pkt.sequence.wrapping_add(1));
            out.push(pkt);
            return;
        };
        let delta = i32::from(pkt.sequence.wrapping_sub(next) as i16);
        if delta < 0 {
            if delta >= -MAX_MISORDER {
                self.dropped += 1;
            } else {
                self.resync(pkt, out);
            }
            return;
        }
        let mut delta = delta as usize;
        if delta >= MAX_DROPOUT {
            self.resync(pkt, out);
            return;
        }
        // Out of room: give up on the oldest gaps until the packet fits.
        while delta >= self.slots.len() {
            let Some(first) = self.slots.iter().position(Option::is_some) else {
                // Nothing buffered: the whole gap is lost.
                self.lost += delta as u64;
                self.next = Some(pkt.sequence);
                delta = 0;
                break;
            };
            self.advance(first);
            self.drain(out);
            delta = usize::from(pkt.sequence.wrapping_sub(self.next.unwrap_or(pkt.sequence)));
        }
        match self.slots.get_mut(delta) {
            Some(slot @ None) => {
                *slot = Some(pkt);
                self.buffered += 1;
            }
            // Same sequence number already waiting.
            _ => self.dropped += 1,
        }
        self.drain(out);
    }

    /// Gives up on every gap and emits all buffered packets (call when input stalls).
    pub fn flush(&mut self, out: &mut Vec<RtpPacket>) {
        while self.buffered > 0 {
            let first = self.slots.iter().position(Option::is_some).unwrap_or(0);
            self.advance(first);
            self.drain(out);
        }
    }

    /// Skips `n` missing places.
    fn advance(&mut self, n: usize) {
        for _ in 0..n {
            self.slots.pop_front();
            self.slots.push_back(None);
        }
        self.lost += n as u64;
        if let Some(next) = self.next.as_mut() {
            *next = next.wrapping_add(n as u16);
        }
    }

    /// Emits the packets in order at the front.
    fn drain(&mut self, out: &mut Vec<RtpPacket>) {
        while let Some(Some(_)) = self.slots.front() {
            if let Some(Some(p)) = self.slots.pop_front() {
                out.push(p);
            }
            self.slots.push_back(None);
            self.buffered -= 1;
            if let Some(next) = self.next.as_mut() {
                *next = next.wrapping_add(1);
            }
        }
    }

    /// The sender restarted its sequence: emit what waits and start over at `pkt`.
    fn resync(&mut self, pkt: RtpPacket, out: &mut Vec<RtpPacket>) {
        for slot in self.slots.iter_mut() {
            if let Some(p) = slot.take() {
                out.push(p);
            }
        }
        self.buffered = 0;
        self.next = Some(pkt.sequence.wrapping_add(1));
        out.push(pkt);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(seq: u16) -> RtpPacket {
        RtpPacket { marker: false, payload_type: 96, sequence: seq, timestamp: 0, ssrc: 1, payload: Bytes::new() }
    }

    fn feed(r: &mut ReorderBuffer, seqs: &[u16]) -> Vec<u16> {
        let mut out = Vec::new();
        for &s in seqs {
            r.push(p(s), &mut out);
        }
        out.iter().map(|p| p.sequence).collect()
    }

    #[test]
    fn reorders_across_wraparound() {
        let mut r = ReorderBuffer::new(8);
        assert_eq!(feed(&mut r, &[65534, 0, 65535, 2, 1, 3]), vec![65534, 65535, 0, 1, 2, 3]);
        assert_eq!((r.lost(), r.dropped(), r.buffered()), (0, 0, 0));
    }

    #[test]
    fn duplicates_and_late() {
        let mut r = ReorderBuffer::new(8);
        assert_eq!(feed(&mut r, &[10, 12, 12, 11, 11, 5]), vec![10, 11, 12]);
        assert_eq!(r.dropped(), 3);
    }

    #[test]
    fn gives_up_when_full() {
        let mut r = ReorderBuffer::new(4);
        // 2 never comes: once 3..=6 wait and 7 arrives, the gap is given up.
        assert_eq!(feed(&mut r, &[1, 3, 4, 5]), vec![1]);
        assert_eq!(r.buffered(), 3);
        assert_eq!(feed(&mut r, &[6, 7]), vec![3, 4, 5, 6, 7]);
        assert_eq!(r.lost(), 1);
        // A jump beyond the buffer with nothing waiting.
        assert_eq!(feed(&mut r, &[20]), vec![20]);
        assert_eq!(r.lost(), 13);
        // Late arrival of a given-up packet.
        assert_eq!(feed(&mut r, &[2]), Vec::<u16>::new());
    }

    #[test]
    fn flush_and_resync() {
        let mut r = ReorderBuffer::new(16);
        assert_eq!(feed(&mut r, &[1, 3, 6]), vec![1]);
        let mut out = Vec::new();
        r.flush(&mut out);
        assert_eq!(out.iter().map(|p| p.sequence).collect::<Vec<_>>(), vec![3, 6]);
        assert_eq!(r.lost(), 3);
        // Sender restart far away: no loss counted.
        assert_eq!(feed(&mut r, &[40000, 40001]), vec![40000, 40001]);
        assert_eq!(feed(&mut r, &[100]), vec![100]);
        assert_eq!(r.lost(), 3);
    }
}
