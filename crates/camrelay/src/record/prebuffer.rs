//! The pre-record ring (`record.pre`, MediaMTX-file `recordPre`): a stream's most recent frames, in
//! whole GOPs, so an event recording can begin before the request that started it. Bounded in time
//! (it keeps the newest keyframe at least `pre` old and what follows it) and in bytes
//! ([`MAX_PRE_BYTES`]: older GOPs go first; a single GOP over the bound is not kept). Sans IO: the
//! arrival time of each frame is passed in.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime};

use crate::hub::Delivery;

/// Bytes one stream's ring may hold.
pub const MAX_PRE_BYTES: usize = 64 << 20;

/// A frame as it arrived.
pub struct Buffered {
    pub at: SystemTime,
    pub delivery: Delivery,
}

impl Clone for Buffered {
    fn clone(&self) -> Self {
        Buffered { at: self.at, delivery: Delivery { slot: self.delivery.slot, frame: self.delivery.frame.clone() } }
    }
}

/// See the module docs.
pub struct PreBuffer {
    pre: Duration,
    max_bytes: usize,
    /// The reader slot whose keyframes start GOPs (`None`: audio only, every frame starts one).
    video: Option<usize>,
    frames: VecDeque<Buffered>,
    /// Sequence number of `frames[0]`.
    base: u64,
    /// Sequence numbers of the GOP starts in `frames`, oldest first (`frames[0]` is always one).
    starts: VecDeque<u64>,
    bytes: usize,
}

impl PreBuffer {
    pub fn new(pre: Duration, video: Option<usize>, max_bytes: usize) -> PreBuffer {
        PreBuffer { pre, max_bytes, video, frames: VecDeque::new(), base: 0, starts: VecDeque::new(), bytes: 0 }
    }

    pub fn pre(&self) -> Duration {
        self.pre
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn starts_gop(&self, d: &Delivery) -> bool {
        self.video.is_none_or(|v| d.slot == v && d.frame.keyframe)
    }

    /// Adds a frame that arrived at `at`, then drops what is older than needed.
    pub fn push(&mut self, at: SystemTime, delivery: Delivery) {
        let start = self.starts_gop(&delivery);
        if self.frames.is_empty() && !start {
            return; // the ring begins at a keyframe
        }
        if start {
            self.starts.push_back(self.base + self.frames.len() as u64);
        }
        self.bytes += delivery.frame.payload.len();
        self.frames.push_back(Buffered { at, delivery });
        self.prune(at);
    }

    /// Drops whole GOPs from the front while the next GOP still starts at least `pre` before `now`, or
    /// while over the byte bound.
    fn prune(&mut self, now: SystemTime) {
        let horizon = now.checked_sub(self.pre).unwrap_or(SystemTime::UNIX_EPOCH);
        while let Some(&next) = self.starts.get(1) {
            let next_at = self.frames[(next - self.base) as usize].at;
            if next_at <= horizon || self.bytes > self.max_bytes {
                self.drop_front_to(next);
            } else {
                break;
            }
        }
        if self.bytes > self.max_bytes {
            // One GOP over the bound: nothing can be kept until the next keyframe.
            self.frames.clear();
            self.starts.clear();
            self.bytes = 0;
        }
    }

    fn drop_front_to(&mut self, seq: u64) {
        while self.base < seq {
            if let Some(f) = self.frames.pop_front() {
                self.bytes -= f.delivery.frame.payload.len();
            }
            self.base += 1;
        }
        while self.starts.front().is_some_and(|s| *s < seq) {
            self.starts.pop_front();
        }
    }

    /// The frames from the newest GOP start at or before `since` (or the oldest one held, when none
    /// is that old) to the newest frame: what an event recording beginning at `since` writes first.
    pub fn since(&self, since: SystemTime) -> VecDeque<Buffered> {
        let mut from = self.starts.front().copied();
        for &s in &self.starts {
            if self.frames[(s - self.base) as usize].at <= since {
                from = Some(s);
            } else {
                break;
            }
        }
        match from {
            Some(s) => self.frames.range((s - self.base) as usize..).cloned().collect(),
            None => VecDeque::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::Frame;
    use std::sync::Arc;

    fn d(slot: usize, key: bool, len: usize) -> Delivery {
        let frame = Frame { timestamp: 0, keyframe: key, payload: Bytes::from(vec![0u8; len]), rtp: Vec::new() };
        Delivery { slot, frame: Arc::new(frame) }
    }

    /// 25 fps video on slot 0 (a keyframe every second) and audio on slot 1, for `secs` seconds.
    fn feed(p: &mut PreBuffer, t0: SystemTime, secs: u64) -> SystemTime {
        let mut now = t0;
        for i in 0..secs * 25 {
            now = t0 + Duration::from_millis(i * 40);
            p.push(now, d(0, i % 25 == 0, 1000));
            p.push(now, d(1, true, 100));
        }
        now
    }

    #[test]
    fn keeps_whole_gops_back_to_pre_and_starts_at_a_keyframe() {
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let mut p = PreBuffer::new(Duration::from_secs(3), Some(0), MAX_PRE_BYTES);
        // Audio before any keyframe is not kept.
        p.push(t0, d(1, true, 100));
        assert!(p.is_empty());
        let now = feed(&mut p, t0, 20);
        // The newest keyframe at least 3 s old is at 16 s (now = 19.96 s): 4 GOPs of 25 + 25 frames.
        assert_eq!(p.len(), 4 * 50);
        let first = p.since(now - Duration::from_secs(3));
        assert!(first[0].delivery.frame.keyframe && first[0].delivery.slot == 0);
        assert_eq!(first[0].at, t0 + Duration::from_secs(16));
        // A shorter pre-roll starts at a later keyframe; a longer one gets what there is.
        assert_eq!(p.since(now - Duration::from_secs(1))[0].at, t0 + Duration::from_secs(18));
        assert_eq!(p.since(now - Duration::from_secs(60))[0].at, t0 + Duration::from_secs(16));
        assert_eq!(p.since(now).len(), 50);
    }

    #[test]
    fn bounded_in_bytes_and_audio_only() {
        let t0 = SystemTime::UNIX_EPOCH;
        // 25 kB per GOP of video + 2.5 kB audio; 60 kB hold two GOPs.
        let mut p = PreBuffer::new(Duration::from_secs(30), Some(0), 60_000);
        feed(&mut p, t0, 10);
        assert!(p.bytes() <= 60_000, "{}", p.bytes());
        assert_eq!(p.len(), 2 * 50);
        // A GOP bigger than the bound is not kept at all.
        let mut small = PreBuffer::new(Duration::from_secs(30), Some(0), 10_000);
        feed(&mut small, t0, 3);
        assert!(small.bytes() <= 10_000);
        // Audio only: any frame starts a "GOP".
        let mut a = PreBuffer::new(Duration::from_secs(2), None, MAX_PRE_BYTES);
        for i in 0..500u64 {
            a.push(t0 + Duration::from_millis(i * 20), d(0, false, 10));
        }
        assert_eq!(a.len(), 101);
    }
}
