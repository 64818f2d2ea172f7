//! A Track fans one media's Frames out to readers, each through its own bounded queue, and keeps the
//! frames a new reader needs to start at once (the GOP cache).

use media::{Codec, Frame, Kind};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

use super::reader::{Delivery, DirectSink, Offer, ReaderShared};

static NEXT_TRACK_ID: AtomicU64 = AtomicU64::new(1);

/// Upper bound on frames kept for an audio track, on top of the byte bound.
const AUDIO_CACHE_FRAMES: usize = 512;

pub struct Track {
    pub id: u64,
    pub kind: Kind,
    pub codec: Codec,
    inner: Mutex<TrackInner>,
    pub frames: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframes: AtomicU64,
    /// Clock units between the last two keyframes (the GOP length), 0 before the second.
    pub keyframe_interval: AtomicU64,
    /// Wall clock of the first frame and its timestamp, for RTCP sender reports (NTP ↔ RTP mapping).
    /// Outside the lock: a direct sink reads it while the track is locked in [`Track::push`].
    clock_ref: OnceLock<(SystemTime, u32)>,
    /// Two-way audio into a backchannel track: who speaks and when it last sent ([`Track::take_floor`]).
    floor: Mutex<Option<(u64, Instant)>>,
    /// Frames of other talkers refused while one held the floor.
    pub floor_refused: AtomicU64,
}

/// How long a backchannel's talker keeps the floor after its last frame.
pub const FLOOR_HOLD: std::time::Duration = std::time::Duration::from_millis(500);

struct TrackInner {
    subscribers: Vec<Subscriber>,
    cache: FrameCache,
    /// Added to every incoming timestamp so that a restarted source continues where the last one
    /// stopped: readers see one continuous timeline across reconnects.
    ts_offset: u32,
    /// Timestamp and duration of the last frame pushed (after the offset).
    last_ts: Option<u32>,
    last_delta: u32,
    /// Set by [`Track::mark_discontinuity`]: rebase the next frame.
    rebase: bool,
    /// Timestamp of the last keyframe (after the offset), for [`Track::keyframe_interval`].
    last_keyframe_ts: Option<u32>,
    /// Set while a publisher that took the track over (`hub::publish`) has other parameter sets than
    /// the track's codec: keyframes are repacketized from their payload (which carries the publisher's
    /// parameter sets, or gets these) so that RTP readers, whose SDP has the old ones, get them in band.
    inject: Option<Inject>,
}

#[derive(Clone)]
struct Inject {
    /// The publisher's parameter sets from its SDP, when it gave them.
    config: Option<Arc<formats::video::VideoConfig>>,
}

struct Subscriber {
    reader: Arc<ReaderShared>,
    /// While the reader has no direct sink: where its frames go. With one, it only keeps the reader's
    /// queue open, so that the queue still reports the end of the stream.
    queue: mpsc::Sender<Delivery>,
    /// Set by [`attach_sink`]: frames are offered to it in the push path instead of queued.
    sink: Option<Arc<dyn DirectSink>>,
    /// Index of this track among the reader's tracks.
    slot: usize,
    /// After a drop, a video reader skips frames up to the next keyframe so it never decodes garbage.
    need_keyframe: bool,
}

/// Frames since the last keyframe (video) or the most recent frames (audio), bounded in bytes.
struct FrameCache {
    frames: VecDeque<(Instant, Arc<Frame>)>,
    bytes: usize,
    max_bytes: usize,
    video: bool,
    /// A GOP grew past `max_bytes`: stop caching until the next keyframe.
    overflowed: bool,
}

impl FrameCache {
    fn push(&mut self, at: Instant, frame: &Arc<Frame>) {
        if self.max_bytes == 0 {
            return;
        }
        let size = frame.size();
        if self.video {
            if frame.keyframe {
                self.frames.clear();
                self.bytes = 0;
                self.overflowed = false;
            } else if self.overflowed || self.frames.is_empty() {
                return; // nothing decodable to append to
            }
            if self.bytes + size > self.max_bytes {
                self.frames.clear();
                self.bytes = 0;
                self.overflowed = true;
                return;
            }
        } else {
            while !self.frames.is_empty()
                && (self.bytes + size > self.max_bytes || self.frames.len() >= AUDIO_CACHE_FRAMES)
            {
                if let Some((_, old)) = self.frames.pop_front() {
                    self.bytes -= old.size();
                }
            }
        }
        self.bytes += size;
        self.frames.push_back((at, frame.clone()));
    }
}

impl Track {
    /// Two-way audio: whether `talker` (a microphone) may push into this backchannel track at `now`.
    /// One microphone speaks at a time, as on a walkie-talkie: the first holds the floor while it keeps
    /// sending (frames less than [`FLOOR_HOLD`] apart) and another gets it once that one is quiet;
    /// two at once would interleave into noise at the camera. Refusals are counted.
    pub fn take_floor(&self, talker: u64, now: Instant) -> bool {
        let mut floor = self.floor.lock().unwrap_or_else(|e| e.into_inner());
        match *floor {
            Some((holder, last)) if holder != talker && now.saturating_duration_since(last) < FLOOR_HOLD => {
                self.floor_refused.fetch_add(1, Ordering::Relaxed);
                false
            }
            _ => {
                *floor = Some((talker, now));
                true
            }
        }
    }

    pub fn new(kind: Kind, codec: Codec, gop_cache_bytes: usize) -> Track {
        // Video caches from its last keyframe (for MJPEG, where every frame is one: the last frame);
        // audio only needs to cover the span of one GOP: a fraction of the video budget.
        let video = kind == Kind::Video;
        let max_bytes = if video { gop_cache_bytes } else { gop_cache_bytes / 8 };
        Track {
            id: NEXT_TRACK_ID.fetch_add(1, Ordering::Relaxed),
            kind,
            codec,
            inner: Mutex::new(TrackInner {
                subscribers: Vec::new(),
                cache: FrameCache { frames: VecDeque::new(), bytes: 0, max_bytes, video, overflowed: false },
                ts_offset: 0,
                last_ts: None,
                last_delta: 0,
                rebase: false,
                last_keyframe_ts: None,
                inject: None,
            }),
            frames: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            keyframes: AtomicU64::new(0),
            keyframe_interval: AtomicU64::new(0),
            clock_ref: OnceLock::new(),
            floor: Mutex::new(None),
            floor_refused: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TrackInner> {
        // A panic while holding this lock would be a bug in this file; keep serving rather than poison.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// True when frames of this track only decode after a keyframe.
    pub fn needs_keyframe(&self) -> bool {
        self.kind == Kind::Video && !self.codec.is_intra_only()
    }

    /// The source is about to restart (reconnect): its next frames get new timestamps, and readers must
    /// not decode across the gap. Called by the producer before every run after the first.
    pub fn mark_discontinuity(&self) {
        let needs_keyframe = self.needs_keyframe();
        let mut inner = self.lock();
        inner.rebase = true;
        inner.cache.frames.clear();
        inner.cache.bytes = 0;
        for sub in &mut inner.subscribers {
            sub.need_keyframe |= needs_keyframe;
        }
    }

    /// A publisher with `codec` feeds the track from now on (`None`: one with the track's own parameter
    /// sets, such as its slate): when its H.264/H.265 parameter sets differ from the track's codec (or
    /// are not known), its keyframes carry them in band on every output.
    pub fn set_parameter_sets(&self, codec: Option<&media::Codec>) {
        use formats::video::{VideoCodec, VideoConfig};
        let inject = match codec {
            Some(c) if VideoCodec::from_name(&c.name).is_some() => {
                let new = VideoConfig::from_codec(c);
                let own = VideoConfig::from_codec(&self.codec);
                let same =
                    matches!((&new, &own), (Some(n), Some(o)) if n.sps == o.sps && n.pps == o.pps && n.vps == o.vps);
                (!same).then(|| Inject { config: new.map(Arc::new) })
            }
            _ => None,
        };
        self.lock().inject = inject;
    }

    /// `frame` (a keyframe) with the parameter sets in front and its RTP packets rebuilt from it.
    fn with_parameter_sets(&self, inject: &Inject, frame: Frame) -> Frame {
        let added = inject.config.as_ref().and_then(|c| formats::video::with_parameter_sets(c, &frame.payload));
        let payload = added.map(bytes::Bytes::from).unwrap_or_else(|| frame.payload.clone());
        let (ssrc, sequence) = frame.rtp.first().map_or((0, 0), |p| (p.ssrc, p.sequence));
        let mut out = Frame { payload, rtp: Vec::new(), ..frame };
        if let Some(mut p) = rtp::packetize::packetizer_with(&self.codec, 1400, ssrc, sequence) {
            let mut packets = Vec::new();
            p.packetize(&out, &mut packets);
            out.rtp = packets;
        }
        out
    }

    /// Hands a frame to every reader. Never blocks and never waits for a reader: a full queue drops.
    pub fn push(&self, mut frame: Frame) {
        let now = Instant::now();
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(frame.payload.len() as u64, Ordering::Relaxed);
        let needs_keyframe = self.needs_keyframe();
        let mut inner = self.lock();
        if frame.keyframe {
            if let Some(config) = inner.inject.clone() {
                frame = self.with_parameter_sets(&config, frame);
            }
        }
        if inner.rebase {
            inner.rebase = false;
            if let Some(last) = inner.last_ts {
                // Continue one frame duration after the last frame of the previous session.
                let step = if inner.last_delta > 0 { inner.last_delta } else { self.codec.clock_rate / 25 };
                inner.ts_offset = last.wrapping_add(step).wrapping_sub(frame.timestamp);
            }
        }
        if inner.ts_offset != 0 {
            let offset = inner.ts_offset;
            frame.timestamp = frame.timestamp.wrapping_add(offset);
            for p in &mut frame.rtp {
                p.timestamp = p.timestamp.wrapping_add(offset);
            }
        }
        if let Some(last) = inner.last_ts {
            let delta = frame.timestamp.wrapping_sub(last);
            // Ignore backwards jumps and pauses when estimating a frame's duration.
            if delta > 0 && delta < self.codec.clock_rate.max(1) {
                inner.last_delta = delta;
            }
        }
        inner.last_ts = Some(frame.timestamp);
        if frame.keyframe && self.kind == Kind::Video {
            self.keyframes.fetch_add(1, Ordering::Relaxed);
            if let Some(last) = inner.last_keyframe_ts.replace(frame.timestamp) {
                self.keyframe_interval.store(u64::from(frame.timestamp.wrapping_sub(last)), Ordering::Relaxed);
            }
        }
        let frame = Arc::new(frame);
        if self.clock_ref.get().is_none() {
            let _ = self.clock_ref.set((SystemTime::now(), frame.timestamp));
        }
        inner.cache.push(now, &frame);
        // Each sink's state is cold by the time the next frame comes (hundreds of readers, and the
        // kernel's socket work in between evicts it): while one reader's write is in the kernel, the
        // state of the reader PREFETCH_AHEAD places on is already on its way into the cache.
        let subscribers = &mut inner.subscribers;
        for sub in subscribers.iter().take(PREFETCH_AHEAD) {
            prefetch(sub);
        }
        let mut i = 0;
        while i < subscribers.len() {
            if let Some(ahead) = subscribers.get(i + PREFETCH_AHEAD) {
                prefetch(ahead);
            }
            let sub = &mut subscribers[i];
            if sub.need_keyframe {
                if !frame.keyframe {
                    sub.reader.dropped.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                    continue;
                }
                sub.need_keyframe = false;
            }
            let offer = match &sub.sink {
                Some(sink) => sink.offer(sub.slot, &frame, now),
                None => match sub.queue.try_send(Delivery { slot: sub.slot, frame: frame.clone() }) {
                    Ok(()) => Offer::Taken,
                    Err(mpsc::error::TrySendError::Full(_)) => Offer::Full,
                    Err(mpsc::error::TrySendError::Closed(_)) => Offer::Closed,
                },
            };
            match offer {
                Offer::Taken => i += 1,
                Offer::Full => {
                    sub.reader.dropped.fetch_add(1, Ordering::Relaxed);
                    if needs_keyframe {
                        sub.reader.resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    sub.need_keyframe = needs_keyframe;
                    i += 1;
                }
                // Keeps the others' order (and the look-ahead's indices) as `retain` would.
                Offer::Closed => {
                    subscribers.remove(i);
                }
            }
        }
    }

    /// Registers a reader. With `replay`, the cached frames are queued first, atomically with the
    /// registration so no frame is lost or repeated: video from the last keyframe, audio from `since`
    /// (the arrival of the video keyframe the reader starts from, so both start together). Audio with no
    /// `since` (a reader without video, or no keyframe cached yet) is not replayed: the reader starts
    /// live rather than the whole audio history behind. Returns the arrival time of the first replayed
    /// frame.
    pub(super) fn subscribe(
        &self,
        reader: Arc<ReaderShared>,
        queue: mpsc::Sender<Delivery>,
        slot: usize,
        replay: bool,
        since: Option<Instant>,
    ) -> Option<Instant> {
        let mut inner = self.lock();
        let mut first = None;
        let mut need_keyframe = self.needs_keyframe();
        // The audio cache only exists to line audio up with a replayed GOP; on its own it is seconds of
        // old sound (512 AAC frames at 48 kHz are 11 s) that a listener would stay behind by for good.
        if replay && (inner.cache.video || since.is_some()) {
            for (at, frame) in inner.cache.frames.iter() {
                if since.is_some_and(|s| *at < s) {
                    continue;
                }
                if need_keyframe && !frame.keyframe {
                    continue;
                }
                if queue.try_send(Delivery { slot, frame: frame.clone() }).is_err() {
                    // Replay larger than the queue: start live at the next keyframe instead.
                    need_keyframe = self.needs_keyframe();
                    break;
                }
                need_keyframe = false;
                first.get_or_insert(*at);
            }
        }
        inner.subscribers.push(Subscriber { reader, queue, sink: None, slot, need_keyframe });
        first
    }

    pub(super) fn unsubscribe(&self, reader_id: u64) {
        self.lock().subscribers.retain(|s| s.reader.id != reader_id);
    }

    /// Drops every reader's sender: readers whose tracks have all closed see their queue end.
    pub fn close(&self) {
        let mut inner = self.lock();
        inner.subscribers.clear();
        inner.cache.frames.clear();
        inner.cache.bytes = 0;
    }

    /// Frames waiting in each queued reader's queue (reader id, frames); readers with a direct sink
    /// (RTSP over TCP) have no queue here and are left out.
    pub fn queue_depths(&self) -> Vec<(u64, usize)> {
        let inner = self.lock();
        inner
            .subscribers
            .iter()
            .filter(|s| s.sink.is_none())
            .map(|s| (s.reader.id, s.queue.max_capacity() - s.queue.capacity()))
            .collect()
    }

    pub fn reader_count(&self) -> usize {
        self.lock().subscribers.len()
    }

    /// Wall clock matching RTP timestamp `ts`, for RTCP sender reports.
    pub fn wallclock_for(&self, ts: u32) -> Option<SystemTime> {
        let (at, ref_ts) = *self.clock_ref.get()?;
        let delta = ts.wrapping_sub(ref_ts) as i32 as f64 / self.codec.clock_rate.max(1) as f64;
        if delta >= 0.0 {
            at.checked_add(std::time::Duration::from_secs_f64(delta))
        } else {
            at.checked_sub(std::time::Duration::from_secs_f64(-delta))
        }
    }

    pub fn cached_bytes(&self) -> usize {
        self.lock().cache.bytes
    }

    /// The newest cached frame and when it arrived (a JPEG track caches only its newest picture).
    pub fn newest_cached(&self) -> Option<(Instant, Arc<Frame>)> {
        self.lock().cache.frames.back().cloned()
    }
}

/// Switches a reader's subscriptions on `tracks` from its queue to `sink`. The frames still waiting in
/// the queue are offered to the sink first, with every track locked, so no frame is lost, repeated or
/// reordered by the switch.
pub(super) fn attach_sink(
    tracks: &[&Track],
    reader_id: u64,
    sink: Arc<dyn DirectSink>,
    queue: &mut mpsc::Receiver<Delivery>,
) {
    // One lock per distinct track, taken in id order: two readers switching at once cannot deadlock,
    // and the push path never holds two track locks.
    let mut sorted = tracks.to_vec();
    sorted.sort_by_key(|t| t.id);
    sorted.dedup_by_key(|t| t.id);
    let mut guards: Vec<(&Track, MutexGuard<'_, TrackInner>)> = sorted.iter().map(|t| (*t, t.lock())).collect();
    let now = Instant::now();
    // A slot whose backlog the sink refused skips to its next keyframe, as a full queue does.
    let mut skipping: Vec<usize> = Vec::new();
    while let Ok(d) = queue.try_recv() {
        let Some((track, guard)) =
            guards.iter_mut().find(|(_, g)| g.subscribers.iter().any(|s| s.reader.id == reader_id && s.slot == d.slot))
        else {
            continue;
        };
        let Some(sub) = guard.subscribers.iter_mut().find(|s| s.reader.id == reader_id && s.slot == d.slot) else {
            continue;
        };
        if skipping.contains(&d.slot) {
            if !d.frame.keyframe {
                sub.reader.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            skipping.retain(|&s| s != d.slot);
        }
        if !matches!(sink.offer(d.slot, &d.frame, now), Offer::Taken) {
            sub.reader.dropped.fetch_add(1, Ordering::Relaxed);
            if track.needs_keyframe() {
                skipping.push(d.slot);
            }
        }
    }
    for (track, guard) in &mut guards {
        for sub in guard.subscribers.iter_mut().filter(|s| s.reader.id == reader_id) {
            sub.sink = Some(sink.clone());
            if skipping.contains(&sub.slot) {
                sub.need_keyframe = track.needs_keyframe();
            }
        }
    }
}

/// Bytes of a sink's state worth prefetching (an RTSP writer is ~650).
const MAX_PREFETCH: usize = 768;
/// How many readers ahead of the one being written to [`Track::push`] prefetches: far enough for the
/// loads to land during a write (several microseconds in the kernel), near enough that the kernel's
/// own work for those writes does not evict them first.
const PREFETCH_AHEAD: usize = 4;

/// Hints the CPU to load the first bytes of a direct sink's state (its lock and the fields an offer
/// reads). Only a hint: it reads nothing and cannot fault.
fn prefetch(sub: &Subscriber) {
    let Some(sink) = &sub.sink else { return };
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = Arc::as_ptr(sink) as *const u8 as *const i8;
        let len = std::mem::size_of_val(&**sink).min(MAX_PREFETCH);
        for offset in (0..len).step_by(64) {
            // SAFETY: a prefetch never dereferences in the sense of the memory model, and the pointer
            // is inside a live allocation.
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset))
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = sink;
}

/// Whether `tracks` carry what `medias` describe: the same kinds with the same codecs (name, clock rate,
/// channels), in order. A publisher coming back or a source reconnecting continues the tracks only then.
pub fn same_medias(tracks: &[Arc<Track>], medias: &[media::Media]) -> bool {
    tracks.len() == medias.len()
        && tracks.iter().zip(medias).all(|(t, m)| {
            m.kind == t.kind
                && m.codecs.first().is_some_and(|c| {
                    c.name.eq_ignore_ascii_case(&t.codec.name)
                        && c.clock_rate == t.codec.clock_rate
                        && c.channels == t.codec.channels
                })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    #[test]
    fn one_talker_holds_the_backchannel_until_quiet() {
        let t = Track::new(Kind::Audio, Codec::new(media::codec::PCMA, 8000, 1, 8), 0);
        let t0 = Instant::now();
        let at = |ms: u64| t0 + std::time::Duration::from_millis(ms);
        assert!(t.take_floor(1, at(0)));
        assert!(!t.take_floor(2, at(20)), "the first microphone speaks");
        assert!(t.take_floor(1, at(400)));
        assert!(!t.take_floor(2, at(899)), "still within the hold after 1's last frame");
        assert!(t.take_floor(2, at(900)), "1 was quiet for the hold: 2 speaks");
        assert!(!t.take_floor(1, at(920)));
        assert_eq!(t.floor_refused.load(Ordering::Relaxed), 3);
    }

    fn frame(ts: u32, key: bool, size: usize) -> Frame {
        Frame { timestamp: ts, keyframe: key, payload: Bytes::from(vec![0u8; size]), rtp: Vec::new() }
    }

    fn reader(_n: u64) -> Arc<ReaderShared> {
        Arc::new(ReaderShared::new("test", String::new()))
    }

    #[test]
    fn gop_cache_starts_at_last_keyframe() {
        let t = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 1 << 20);
        for i in 0..10 {
            t.push(frame(i * 3000, i % 4 == 0, 100));
        }
        let (tx, mut rx) = mpsc::channel(64);
        t.subscribe(reader(1), tx, 0, true, None);
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).map(|d| d.frame.timestamp).collect();
        assert_eq!(got, vec![24000, 27000]);
    }

    /// Spins until the clock has moved past `t`, so arrival times compare strictly.
    fn after(t: Instant) {
        while Instant::now() <= t {
            std::hint::spin_loop();
        }
    }

    #[test]
    fn audio_is_replayed_only_beside_a_video_keyframe() {
        let t = Track::new(Kind::Audio, Codec::new("MPEG4-GENERIC", 48000, 1, 97), 1 << 20);
        for i in 0..100 {
            t.push(frame(i * 1024, false, 50));
        }
        let keyframe_arrival = Instant::now();
        after(keyframe_arrival);
        for i in 100..103 {
            t.push(frame(i * 1024, false, 50));
        }
        assert_eq!(t.cached_bytes(), 103 * 50, "the audio cache holds the history");
        // Without a video keyframe to line up with: live, nothing replayed.
        let (tx, mut rx) = mpsc::channel(1024);
        assert_eq!(t.subscribe(reader(1), tx, 0, true, None), None);
        assert!(rx.try_recv().is_err(), "an audio-only reader gets no audio history");
        t.push(frame(103 * 1024, false, 50));
        assert_eq!(rx.try_recv().unwrap().frame.timestamp, 103 * 1024, "and live frames from then on");
        // Beside a video keyframe: the audio from the keyframe's arrival on.
        let (tx, mut rx) = mpsc::channel(1024);
        assert!(t.subscribe(reader(2), tx, 0, true, Some(keyframe_arrival)).is_some());
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).map(|d| d.frame.timestamp / 1024).collect();
        assert_eq!(got, vec![100, 101, 102, 103]);
    }

    #[test]
    fn slow_reader_drops_and_resumes_at_keyframe() {
        let t = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 1 << 20);
        let r = reader(1);
        let (tx, mut rx) = mpsc::channel(2);
        t.subscribe(r.clone(), tx, 0, false, None);
        let (tx2, mut fast) = mpsc::channel(64);
        t.subscribe(reader(2), tx2, 0, false, None);
        t.push(frame(0, true, 10));
        t.push(frame(1, false, 10));
        t.push(frame(2, false, 10)); // queue full: dropped
        assert_eq!(r.dropped.load(Ordering::Relaxed), 1);
        assert_eq!(r.resyncs.load(Ordering::Relaxed), 1, "one overflow, one skip to a keyframe");
        let depths: Vec<usize> = t.queue_depths().iter().map(|(_, d)| *d).collect();
        assert_eq!(depths, [2, 3], "frames waiting in each reader's queue");
        rx.try_recv().unwrap();
        rx.try_recv().unwrap();
        t.push(frame(3, false, 10)); // room again, but not a keyframe: still skipped
        t.push(frame(4, true, 10));
        assert_eq!(rx.try_recv().unwrap().frame.timestamp, 4);
        assert_eq!(r.dropped.load(Ordering::Relaxed), 2);
        assert_eq!(r.resyncs.load(Ordering::Relaxed), 1);
        assert_eq!(t.keyframes.load(Ordering::Relaxed), 2);
        assert_eq!(t.keyframe_interval.load(Ordering::Relaxed), 4, "keyframes at 0 and 4");
        // The fast reader saw everything.
        assert_eq!(std::iter::from_fn(|| fast.try_recv().ok()).count(), 5);
    }

    #[test]
    fn oversized_gop_is_not_cached() {
        let t = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 250);
        t.push(frame(0, true, 100));
        t.push(frame(1, false, 100));
        assert_eq!(t.cached_bytes(), 200);
        t.push(frame(2, false, 100));
        assert_eq!(t.cached_bytes(), 0);
        t.push(frame(3, false, 100));
        assert_eq!(t.cached_bytes(), 0);
        t.push(frame(4, true, 100));
        assert_eq!(t.cached_bytes(), 100);
    }

    #[test]
    fn restarted_source_continues_the_timeline() {
        let t = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 1 << 20);
        let (tx, mut rx) = mpsc::channel(64);
        t.subscribe(reader(1), tx, 0, false, None);
        t.push(frame(1000, true, 10));
        t.push(frame(4600, false, 10));
        t.mark_discontinuity();
        t.push(frame(777, false, 10)); // not a keyframe: skipped by the reader
        t.push(frame(4377, true, 10));
        let got: Vec<u32> = std::iter::from_fn(|| rx.try_recv().ok()).map(|d| d.frame.timestamp).collect();
        assert_eq!(got, vec![1000, 4600, 8200 + 3600]);
        assert_eq!(t.cached_bytes(), 10, "the cache holds only the new session's keyframe");
    }

    #[test]
    fn closing_ends_reader_queue() {
        let t = Track::new(Kind::Audio, Codec::new("PCMA", 8000, 1, 8), 1 << 20);
        let (tx, mut rx) = mpsc::channel(4);
        t.subscribe(reader(1), tx, 0, false, None);
        t.close();
        assert!(matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
    }

    /// Records what it is offered; refuses frames while `full` is set.
    struct RecordingSink {
        got: Mutex<Vec<(usize, u32)>>,
        full: std::sync::atomic::AtomicBool,
    }

    impl DirectSink for RecordingSink {
        fn offer(&self, slot: usize, frame: &Arc<Frame>, _: Instant) -> Offer {
            if self.full.load(Ordering::Relaxed) {
                return Offer::Full;
            }
            self.got.lock().unwrap().push((slot, frame.timestamp));
            Offer::Taken
        }
    }

    #[test]
    fn attached_sink_gets_queued_frames_first_then_live_ones() {
        let video = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 1 << 20);
        let audio = Track::new(Kind::Audio, Codec::new("PCMA", 8000, 1, 8), 1 << 20);
        let r = reader(1);
        let (tx, mut rx) = mpsc::channel(64);
        video.subscribe(r.clone(), tx.clone(), 0, false, None);
        audio.subscribe(r.clone(), tx, 1, false, None);
        video.push(frame(0, true, 10));
        audio.push(frame(1, false, 10));
        video.push(frame(2, false, 10));
        let sink = Arc::new(RecordingSink { got: Mutex::default(), full: false.into() });
        attach_sink(&[&video, &audio], r.id, sink.clone(), &mut rx);
        audio.push(frame(3, false, 10));
        video.push(frame(4, false, 10));
        assert_eq!(*sink.got.lock().unwrap(), vec![(0, 0), (1, 1), (0, 2), (1, 3), (0, 4)]);
        assert!(rx.try_recv().is_err(), "nothing goes through the queue any more");
        // The queue still ends when the tracks close.
        video.close();
        audio.close();
        assert!(matches!(rx.try_recv(), Err(mpsc::error::TryRecvError::Disconnected)));
    }

    #[test]
    fn full_sink_drops_and_resumes_at_keyframe() {
        let t = Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 1 << 20);
        let r = reader(1);
        let (tx, mut rx) = mpsc::channel(64);
        t.subscribe(r.clone(), tx, 0, false, None);
        let sink = Arc::new(RecordingSink { got: Mutex::default(), full: false.into() });
        attach_sink(&[&t], r.id, sink.clone(), &mut rx);
        t.push(frame(0, true, 10));
        sink.full.store(true, Ordering::Relaxed);
        t.push(frame(1, false, 10)); // refused: dropped
        sink.full.store(false, Ordering::Relaxed);
        t.push(frame(2, false, 10)); // room again, but not a keyframe: skipped
        t.push(frame(3, true, 10));
        assert_eq!(*sink.got.lock().unwrap(), vec![(0, 0), (0, 3)]);
        assert_eq!(r.dropped.load(Ordering::Relaxed), 2);
    }
}
