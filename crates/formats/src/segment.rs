//! Cuts a reader's frames into self-contained segments (MPEG-TS or fMP4) for HLS, and for outputs
//! that write files in pieces (the recorder). Frames in, whole segments out: no IO, no clock; durations
//! come from the frames' timestamps in the timing track's clock.
//!
//! A segment starts at a video keyframe (audio-only: at any frame) and is cut at the next keyframe once
//! at least [`SegmentPolicy::video_min`] has accumulated (audio-only: every
//! [`SegmentPolicy::audio_len`]). A segment growing past [`SegmentPolicy::max_bytes`] is cut
//! (audio-only) or dropped until the next keyframe (video: cutting would start the next one mid-GOP).
//!
//! With [`Segmenter::follow_changes`] (HLS) a video keyframe that brings another picture (size, profile:
//! a publisher replaced by one with other settings) ends the segment in progress, and the segments and
//! parts from that keyframe on belong to a new [`Segmenter::generation`]: fMP4 with a new init segment,
//! MPEG-TS with the new parameter sets in band; the playlist marks the boundary `#EXT-X-DISCONTINUITY`.

use bytes::Bytes;
use media::timestamp::Unwrapper;
use media::{Codec, Frame, Kind};
use std::time::Duration;

use crate::mux::{Mp4Muxer, Muxer};
use crate::FormatError;

/// Minimum segment length with video; the cut waits for the next keyframe after it.
pub const VIDEO_SEGMENT: Duration = Duration::from_secs(1);
/// Segment length without video.
pub const AUDIO_SEGMENT: Duration = Duration::from_secs(2);
/// A segment growing past this is cut (audio-only) or discarded until the next keyframe (video).
pub const MAX_SEGMENT_BYTES: usize = 16 << 20;

/// When a [`Segmenter`] cuts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentPolicy {
    /// Minimum segment length with video ([`VIDEO_SEGMENT`]).
    pub video_min: Duration,
    /// Segment length without video ([`AUDIO_SEGMENT`]).
    pub audio_len: Duration,
    /// Largest segment in bytes ([`MAX_SEGMENT_BYTES`]).
    pub max_bytes: usize,
}

impl Default for SegmentPolicy {
    fn default() -> Self {
        SegmentPolicy { video_min: VIDEO_SEGMENT, audio_len: AUDIO_SEGMENT, max_bytes: MAX_SEGMENT_BYTES }
    }
}

enum SegMuxer {
    Ts(crate::ts::TsMuxer),
    Mp4(Mp4Muxer),
}

/// One finished partial segment (LL-HLS `#EXT-X-PART`), from [`Segmenter::take_part`].
#[derive(Debug, Clone)]
pub struct CutPart {
    pub data: Bytes,
    /// Seconds, from the timing track's timestamps.
    pub duration: f64,
    /// Starts with a video keyframe (or the stream has no video): `INDEPENDENT=YES`.
    pub independent: bool,
    /// The [`Segmenter::generation`] it belongs to (its init segment).
    pub generation: u64,
}

/// One finished segment.
#[derive(Debug, Clone)]
pub struct CutSegment {
    pub data: Bytes,
    /// Seconds, from the timing track's timestamps.
    pub duration: f64,
    /// The [`Segmenter::generation`] it belongs to (its init segment).
    pub generation: u64,
}

/// Cuts a reader's frames into HLS segments.
pub struct Segmenter {
    mux: SegMuxer,
    /// fMP4 init segment, once known.
    init: Option<Bytes>,
    /// RFC 6381 codecs for the master playlist, once known.
    codecs: Option<String>,
    /// Learns the codec string of a TS session whose video parameter sets are not in the SDP.
    probe: Option<crate::fmp4::Fmp4Muxer>,
    /// The track whose timestamps time the segments: the first video track, else the first track.
    timing: usize,
    has_video: bool,
    clock: u32,
    /// Timing-track ticks before a cut is due.
    min_ticks: i64,
    unwrap: Unwrapper,
    started: bool,
    /// After an oversize segment was discarded: nothing until the next keyframe.
    skipping: bool,
    cur: Vec<Bytes>,
    cur_bytes: usize,
    cur_start: Option<i64>,
    last_ts: i64,
    max_bytes: usize,
    /// Frames the muxer refused and segments dropped for size: counted, the last reason kept
    /// until [`Segmenter::take_error`].
    pub errors: u64,
    /// Video segments dropped for growing past [`SegmentPolicy::max_bytes`] without a keyframe.
    pub dropped: u64,
    last_error: Option<String>,
    /// Partial segments: cut before a timing frame when the part would outgrow this many ticks.
    part_ticks: Option<i64>,
    part_start: Option<i64>,
    /// Index in `cur` of the part in progress's first piece.
    part_from: usize,
    part_independent: bool,
    /// The timing track's last frame interval (ticks), to predict where the next frame ends.
    last_interval: i64,
    parts: std::collections::VecDeque<CutPart>,
    /// The reader's tracks, to start a new muxer when the picture changes.
    tracks: Vec<(Kind, Codec)>,
    /// See [`Segmenter::follow_changes`].
    follow: bool,
    /// MPEG-TS: the parameter sets in use ([`picture_signature`]).
    picture: Option<Vec<Bytes>>,
    /// Bumped at each picture change.
    generation: u64,
    /// The generation of the segment in progress (cut parts and segments carry it).
    cur_generation: u64,
}

impl Segmenter {
    /// A TS or fMP4 segmenter for a reader's tracks (slot order).
    pub fn new(tracks: &[(Kind, Codec)], fmp4: bool) -> Result<Segmenter, FormatError> {
        Segmenter::with_policy(tracks, fmp4, SegmentPolicy::default())
    }

    /// A TS or fMP4 segmenter cutting by `policy`.
    pub fn with_policy(tracks: &[(Kind, Codec)], fmp4: bool, policy: SegmentPolicy) -> Result<Segmenter, FormatError> {
        let video = tracks.iter().position(|(k, _)| *k == Kind::Video);
        let timing = video.unwrap_or(0);
        let clock = tracks.get(timing).map_or(90_000, |(_, c)| c.clock_rate).max(1);
        let period = if video.is_some() { policy.video_min } else { policy.audio_len };
        let min_ticks = (period.as_secs_f64() * f64::from(clock)) as i64;
        let mut codecs = None;
        let mut probe = None;
        let mux = if fmp4 {
            let m = Mp4Muxer::new(tracks)?;
            codecs = m.mime_type().and_then(|t| codecs_of_mime(&t));
            SegMuxer::Mp4(m)
        } else {
            let m = crate::ts::TsMuxer::new(tracks)?;
            // TS carries H.264/H.265/AAC, all of which the fMP4 muxer describes as RFC 6381 strings.
            if let Ok(p) = crate::fmp4::Fmp4Muxer::new(tracks) {
                match p.mime_type().and_then(|t| codecs_of_mime(&t)) {
                    Some(c) => codecs = Some(c),
                    None => probe = Some(p),
                }
            }
            SegMuxer::Ts(m)
        };
        Ok(Segmenter {
            mux,
            max_bytes: policy.max_bytes.max(1),
            errors: 0,
            dropped: 0,
            last_error: None,
            init: None,
            codecs,
            probe,
            timing,
            has_video: video.is_some(),
            clock,
            min_ticks,
            unwrap: Unwrapper::new(),
            started: false,
            skipping: false,
            cur: Vec::new(),
            cur_bytes: 0,
            cur_start: None,
            last_ts: 0,
            part_ticks: None,
            part_start: None,
            part_from: 0,
            part_independent: false,
            last_interval: 0,
            parts: std::collections::VecDeque::new(),
            picture: tracks
                .get(timing)
                .filter(|_| video.is_some())
                .and_then(|(_, c)| crate::video::VideoConfig::from_codec(c))
                .map(|c| [c.vps, c.sps].concat()),
            tracks: tracks.to_vec(),
            follow: false,
            generation: 0,
            cur_generation: 0,
        })
    }

    /// Follow a picture that changes: a video keyframe that brings another picture (H.264/H.265: other
    /// parameter sets; AV1/VP9/MJPEG: another sample entry) starts a new segment there, of a new
    /// [`Segmenter::generation`]: fMP4 with its own init segment ([`Segmenter::init`] from that push
    /// on; the timeline goes on), MPEG-TS with the new parameter sets in band. Parts and segments carry
    /// their generation; the server lists `#EXT-X-DISCONTINUITY` (and a new `#EXT-X-MAP`) where it
    /// changes. Call before the first [`Segmenter::push`].
    pub fn follow_changes(&mut self) {
        self.follow = true;
        if let SegMuxer::Mp4(_) = self.mux {
            // The tracks were accepted by `new`: `following` accepts them too.
            if let Ok(m) = Mp4Muxer::following(&self.tracks) {
                self.mux = SegMuxer::Mp4(m);
            }
        }
    }

    /// The generation of the init segment [`Segmenter::init`] gives: 0, then one more at each picture
    /// change (see [`Segmenter::follow_changes`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// MPEG-TS: a keyframe of the timing (video) track with other parameter sets than the last ones
    /// ends the segment in progress at `ts`; the next is of a new generation.
    fn ts_picture_change(&mut self, frame: &Frame, ts: i64) -> Option<CutSegment> {
        let codec = &self.tracks.get(self.timing)?.1;
        let sig = picture_signature(codec, &frame.payload)?;
        let before = self.picture.replace(sig.clone());
        if before.is_none() || before == Some(sig) {
            return None;
        }
        let done = self.cut(ts);
        self.new_generation();
        done
    }

    fn new_generation(&mut self) {
        self.generation += 1;
        self.cur_generation = self.generation;
    }

    /// Also cuts partial segments (LL-HLS) of at most `part` each where the frames' spacing allows: a
    /// part ends before the timing frame that would take it past `part` (a frame longer than `part` is
    /// a part alone), and at every segment cut. A segment's parts, in order, are its bytes; collect
    /// them with [`Segmenter::take_part`] after each [`Segmenter::push`] (before handling the segment
    /// it returns, whose last part they include). Not for use with [`Segmenter::take_pending`].
    pub fn set_parts(&mut self, part: Duration) {
        self.part_ticks = Some(((part.as_secs_f64() * f64::from(self.clock)) as i64).max(1));
    }

    /// The next partial segment completed, oldest first.
    pub fn take_part(&mut self) -> Option<CutPart> {
        self.parts.pop_front()
    }

    /// Ends the part in progress at timing timestamp `ts`.
    fn cut_part(&mut self, ts: i64) {
        let Some(start) = self.part_start.take() else { return };
        let from = self.part_from.min(self.cur.len());
        self.part_from = self.cur.len();
        let pieces = &self.cur[from..];
        if pieces.is_empty() {
            return;
        }
        let mut data = Vec::with_capacity(pieces.iter().map(Bytes::len).sum());
        for p in pieces {
            data.extend_from_slice(p);
        }
        let mut ticks = ts - start;
        if ticks <= 0 {
            ticks = (self.last_ts - start).max(1);
        }
        self.parts.push_back(CutPart {
            data: Bytes::from(data),
            duration: ticks as f64 / f64::from(self.clock),
            independent: self.part_independent,
            generation: self.cur_generation,
        });
    }

    pub fn is_fmp4(&self) -> bool {
        matches!(self.mux, SegMuxer::Mp4(_))
    }

    pub fn init(&self) -> Option<&Bytes> {
        self.init.as_ref()
    }

    pub fn codecs(&self) -> Option<&str> {
        self.codecs.as_deref()
    }

    /// Adds a frame of reader slot `slot`; returns the segment it completed, if any.
    pub fn push(&mut self, slot: usize, frame: &Frame) -> Option<CutSegment> {
        let timing = slot == self.timing;
        let boundary = timing && (frame.keyframe || !self.has_video);
        if !self.started {
            if !boundary {
                return None;
            }
            self.started = true;
        }
        if self.skipping {
            if !boundary {
                return None;
            }
            self.skipping = false;
        }
        self.learn_codecs(slot, frame);
        let mut done = None;
        if timing {
            let ts = self.unwrap.unwrap(frame.timestamp);
            if self.follow && self.has_video && frame.keyframe && !self.is_fmp4() {
                done = self.ts_picture_change(frame, ts);
            }
            if let (Some(start), None) = (self.cur_start, &done) {
                let elapsed = ts - start;
                if boundary && (elapsed >= self.min_ticks || elapsed < 0 || self.cur_bytes >= self.max_bytes / 2) {
                    done = self.cut(ts);
                }
            }
            if let (Some(limit), Some(start), None) = (self.part_ticks, self.part_start, &done) {
                let next_end = ts - start + (ts - self.last_ts).max(0).max(self.last_interval);
                if ts > start && next_end > limit {
                    self.cut_part(ts);
                }
            }
            if ts > self.last_ts && self.cur_start.is_some() {
                self.last_interval = ts - self.last_ts;
            }
            if self.cur_start.is_none() {
                self.cur_start = Some(ts);
            }
            if self.part_ticks.is_some() && self.part_start.is_none() {
                self.part_start = Some(ts);
                self.part_independent = !self.has_video || frame.keyframe;
            }
            self.last_ts = ts;
        }
        let starts_segment = self.cur_bytes == 0;
        let mut new_init = None;
        let out = match &mut self.mux {
            SegMuxer::Ts(m) => {
                let mut out = Vec::with_capacity(2);
                // The TS muxer writes PAT/PMT before each video keyframe; an audio-only segment needs its own.
                if starts_segment && !self.has_video {
                    out.push(Bytes::from(m.psi()));
                }
                match m.push(slot, frame) {
                    Ok(b) => out.push(b),
                    Err(e) => {
                        self.errors += 1;
                        self.last_error = Some(format!("ts: {e}"));
                    }
                }
                out
            }
            SegMuxer::Mp4(m) => {
                let had_init = self.init.is_some();
                match m.push(slot, frame) {
                    Ok(mut out) => {
                        // `Mp4Muxer` sends the init segment first, once, when it becomes known.
                        if !had_init && out.first().is_some_and(|b| is_ftyp(b)) {
                            self.init = Some(out.remove(0));
                            self.codecs = m.mime_type().and_then(|t| codecs_of_mime(&t));
                        } else if let Some(i) = out.iter().position(|b| is_ftyp(b)) {
                            // Following a picture change (`follow_changes`): a new init segment in front
                            // of the keyframe. What came before it is audio, valid under both.
                            new_init = Some(out.remove(i));
                            self.codecs = m.mime_type().and_then(|t| codecs_of_mime(&t));
                        }
                        out
                    }
                    Err(e) => {
                        self.errors += 1;
                        self.last_error = Some(format!("fmp4: {e}"));
                        Vec::new()
                    }
                }
            }
        };
        if let Some(init) = new_init {
            // The segment in progress ends before this keyframe (unless it ended there already).
            if done.is_none() {
                let ts = if timing { self.last_ts } else { self.last_ts.saturating_add(1) };
                done = self.cut(ts);
                self.cur_start = Some(ts);
                if self.part_ticks.is_some() {
                    self.part_start = Some(ts);
                    self.part_independent = true;
                }
            }
            self.init = Some(init);
            self.new_generation();
        }
        for b in out.into_iter().filter(|b| !b.is_empty()) {
            self.cur_bytes += b.len();
            self.cur.push(b);
        }
        if self.cur_bytes > self.max_bytes {
            if self.has_video {
                // Cutting here would start the next segment mid-GOP: drop this one and resume at a keyframe.
                self.dropped += 1;
                self.fail(format!("segment over {} bytes without a keyframe, dropped", self.max_bytes));
                self.discard();
                self.skipping = true;
            } else if done.is_none() {
                let ts = self.last_ts;
                done = self.cut(ts);
            }
        }
        done
    }

    /// Hands out the segment in progress so far (a recorder writes parts as they come, so a crash loses
    /// at most the last part); the rest of the segment comes with its [`CutSegment`], whose `data` then
    /// holds only what was not taken here.
    pub fn take_pending(&mut self) -> Vec<Bytes> {
        std::mem::take(&mut self.cur)
    }

    /// Bytes of the segment in progress not yet taken by [`Segmenter::take_pending`].
    pub fn pending_bytes(&self) -> usize {
        self.cur.iter().map(Bytes::len).sum()
    }

    /// The last problem since the previous call (a frame the muxer refused, an oversize segment
    /// dropped), for the caller to log.
    pub fn take_error(&mut self) -> Option<String> {
        self.last_error.take()
    }

    fn fail(&mut self, e: String) {
        self.errors += 1;
        self.last_error = Some(e);
    }

    /// The segment in progress, cut at the end of the stream.
    pub fn finish(&mut self) -> Option<CutSegment> {
        let end = self.last_ts + self.min_ticks / 25; // about one more frame
        self.cut(end)
    }

    fn learn_codecs(&mut self, slot: usize, frame: &Frame) {
        let Some(p) = &mut self.probe else { return };
        if !frame.keyframe {
            return;
        }
        if p.push(slot, frame).is_err() {
            self.probe = None;
            return;
        }
        if let Some(c) = p.mime_type().and_then(|t| codecs_of_mime(&t)) {
            self.codecs = Some(c);
            self.probe = None;
        }
    }

    /// Ends the current segment at timing timestamp `ts` (the start of the next one).
    fn cut(&mut self, ts: i64) -> Option<CutSegment> {
        if self.part_ticks.is_some() {
            self.cut_part(ts);
            self.part_from = 0;
        }
        let start = self.cur_start.take()?;
        let parts = std::mem::take(&mut self.cur);
        let bytes = std::mem::take(&mut self.cur_bytes);
        if bytes == 0 {
            return None;
        }
        let mut ticks = ts - start;
        if ticks <= 0 {
            // Timestamps stepped back (a source swap): time the segment by its last frame instead.
            ticks = (self.last_ts - start).max(1);
        }
        let mut data = Vec::with_capacity(parts.iter().map(Bytes::len).sum());
        for p in &parts {
            data.extend_from_slice(p);
        }
        Some(CutSegment {
            data: Bytes::from(data),
            duration: ticks as f64 / f64::from(self.clock),
            generation: self.cur_generation,
        })
    }

    fn discard(&mut self) {
        self.cur.clear();
        self.cur_bytes = 0;
        self.cur_start = None;
        self.part_start = None;
        self.part_from = 0;
    }
}

fn is_ftyp(b: &[u8]) -> bool {
    b.get(4..8) == Some(b"ftyp")
}

/// The parameter sets of an H.264/H.265 keyframe (as the TS muxer and the recorder compare them);
/// `None`: no keyframe with parameter sets.
fn picture_signature(codec: &Codec, payload: &[u8]) -> Option<Vec<Bytes>> {
    let vc = crate::video::VideoCodec::from_name(&codec.name)?;
    crate::video::VideoConfig::from_nals(vc, media::h264::avcc_nals(payload)).map(|c| [c.vps, c.sps].concat())
}

/// `video/mp4; codecs="avc1.64001F,flac"` → `avc1.64001F,fLaC` (Safari plays FLAC but rejects the
/// lowercase name in a playlist, as go2rtc notes).
fn codecs_of_mime(mime: &str) -> Option<String> {
    let (_, rest) = mime.split_once("codecs=\"")?;
    let list = rest.trim_end_matches('"');
    Some(list.split(',').map(|c| if c == "flac" { "fLaC" } else { c }).collect::<Vec<_>>().join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil;
    use media::codec;

    fn aac_tracks() -> Vec<(Kind, Codec)> {
        // AAC-LC 48 kHz stereo.
        vec![(Kind::Audio, Codec::new(codec::AAC, 48_000, 2, 97).with_fmtp("mode=AAC-hbr;config=1190"))]
    }

    fn aac_frame(ts: u32) -> Frame {
        Frame { timestamp: ts, keyframe: true, payload: Bytes::from_static(&[0x21, 0x10, 0x04, 0x60]), rtp: Vec::new() }
    }

    #[test]
    fn audio_only_ts_segments_every_two_seconds() {
        let mut s = Segmenter::new(&aac_tracks(), false).unwrap();
        assert!(!s.is_fmp4());
        assert_eq!(s.codecs(), Some("mp4a.40.2"));
        let mut cuts = Vec::new();
        // 10 s of 1024-sample frames, starting near the 32-bit wrap.
        let base = u32::MAX - 100_000;
        for i in 0..(10 * 48_000 / 1024) {
            if let Some(c) = s.push(0, &aac_frame(base.wrapping_add(i * 1024))) {
                cuts.push(c);
            }
        }
        assert_eq!(cuts.len(), 4, "{cuts:?}");
        for c in &cuts {
            assert!((c.duration - 2.0).abs() < 0.03, "{}", c.duration);
            // Each segment starts with PAT/PMT so it decodes alone.
            assert_eq!(c.data[0], 0x47);
            assert_eq!(c.data.len() % 188, 0);
            assert_eq!(&c.data[1..3], &[0x40, 0x00], "PAT first");
        }
        assert!(s.finish().is_some());
        assert!(s.finish().is_none());
        assert_eq!(s.errors, 0);
    }

    #[test]
    fn video_cuts_at_the_first_keyframe_after_a_second() {
        let tracks = [(Kind::Video, testutil::h264()), (Kind::Audio, testutil::aac())];
        let mut s = Segmenter::new(&tracks, true).unwrap();
        assert!(s.is_fmp4());
        assert!(s.init().is_none(), "the init segment comes with the first frame");
        // Audio before the first keyframe is skipped: a segment starts at a keyframe.
        assert!(s.push(1, &testutil::audio_frame(0, 1, 10)).is_none());
        let mut cuts = Vec::new();
        // 25 fps, a keyframe every 15 frames (0.6 s): cuts at 1.2 s intervals.
        for i in 0..100u32 {
            let ts = i * 3600;
            if let Some(c) = s.push(0, &testutil::h264_frame(ts, i % 15 == 0, i as u8)) {
                cuts.push(c);
            }
            s.push(1, &testutil::audio_frame(i * 1764, 2, 10));
        }
        assert!(s.init().is_some_and(|i| &i[4..8] == b"ftyp"));
        assert!(s.codecs().is_some_and(|c| c.starts_with("avc1.") && c.contains("mp4a.40.2")), "{:?}", s.codecs());
        assert_eq!(cuts.len(), 3, "{cuts:?}");
        for c in &cuts {
            assert!((c.duration - 1.2).abs() < 1e-9, "{}", c.duration);
            // Each fMP4 segment is whole fragments, starting with a moof.
            assert_eq!(&c.data[4..8], b"moof");
            assert!(testutil::boxes(&c.data).iter().all(|b| &b.kind == b"moof" || &b.kind == b"mdat"));
        }
        let last = s.finish().unwrap();
        assert!(last.duration > 0.0);
        assert_eq!(s.errors, 0);
    }

    #[test]
    fn ts_learns_codecs_from_the_first_keyframe() {
        // No parameter sets in the SDP: the codec string comes from the keyframe's SPS.
        let tracks = [(Kind::Video, Codec::new(codec::H264, 90_000, 0, 96))];
        let mut s = Segmenter::new(&tracks, false).unwrap();
        assert_eq!(s.codecs(), None);
        s.push(0, &testutil::h264_frame(0, true, 0));
        assert_eq!(s.codecs(), Some("avc1.42C01E"));
    }

    #[test]
    fn oversize_video_segment_is_dropped_until_a_keyframe() {
        let tracks = [(Kind::Video, testutil::h264())];
        let policy = SegmentPolicy { max_bytes: 2000, ..SegmentPolicy::default() };
        let mut s = Segmenter::with_policy(&tracks, false, policy).unwrap();
        let (sps, pps) = testutil::sps_pps();
        let slice = |t: u8| [vec![t], vec![0x88; 500]].concat();
        let big = |ts: u32, key: bool| {
            let payload =
                if key { testutil::avcc(&[&sps, &pps, &slice(0x65)]) } else { testutil::avcc(&[&slice(0x41)]) };
            Frame { timestamp: ts, keyframe: key, payload, rtp: Vec::new() }
        };
        let mut cuts = 0;
        for i in 0..14u32 {
            cuts += usize::from(s.push(0, &big(i * 3000, i == 0 || i == 12)).is_some());
        }
        assert_eq!(s.dropped, 1);
        assert!(s.take_error().is_some_and(|e| e.contains("over 2000 bytes")));
        assert!(s.take_error().is_none());
        assert_eq!(cuts, 0, "the dropped segment is never given out");
        // Resumed at the keyframe of frame 12: what follows is a whole segment.
        let seg = s.finish().unwrap();
        assert!(seg.data.len() <= 2000);
        assert_eq!(&seg.data[1..3], &[0x40, 0x00], "starts with PAT: at a keyframe");
    }

    #[test]
    fn timestamps_stepping_back_still_give_positive_durations() {
        let mut s = Segmenter::new(&aac_tracks(), false).unwrap();
        for i in 0..50u32 {
            s.push(0, &aac_frame(1_000_000 + i * 1024));
        }
        // A source swap: the clock restarts far back; the current segment is cut there.
        let cut = s.push(0, &aac_frame(5)).expect("cut at the step back");
        assert!(cut.duration > 0.0 && cut.duration < 2.0, "{}", cut.duration);
    }

    #[test]
    fn parts_taken_early_add_up_to_the_same_segments() {
        let tracks = [(Kind::Video, testutil::h264()), (Kind::Audio, testutil::aac())];
        let mut whole = Segmenter::new(&tracks, true).unwrap();
        let mut parts = Segmenter::new(&tracks, true).unwrap();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let mut current = Vec::new();
        for i in 0..100u32 {
            let v = testutil::h264_frame(i * 3600, i % 15 == 0, i as u8);
            let au = testutil::audio_frame(i * 1764, 2, 10);
            for (slot, f) in [(0, &v), (1, &au)] {
                if let Some(c) = whole.push(slot, f) {
                    a.push(c.data.to_vec());
                }
                if let Some(c) = parts.push(slot, f) {
                    current.extend_from_slice(&c.data);
                    b.push(std::mem::take(&mut current));
                }
                if i % 4 == 0 {
                    for p in parts.take_pending() {
                        current.extend_from_slice(&p);
                    }
                }
            }
        }
        assert_eq!(a.len(), 3);
        assert_eq!(a, b);
        assert_eq!(whole.init(), parts.init());
    }

    #[test]
    fn parts_stay_within_the_target_and_add_up_to_segments() {
        let tracks = [(Kind::Video, testutil::h264()), (Kind::Audio, testutil::aac())];
        let mut whole = Segmenter::new(&tracks, true).unwrap();
        let mut s = Segmenter::new(&tracks, true).unwrap();
        s.set_parts(Duration::from_millis(200));
        let (mut segments, mut from_parts, mut current) = (Vec::new(), Vec::new(), Vec::<u8>::new());
        let mut parts = Vec::new();
        // 25 fps, a keyframe every 15 frames: segments of 1.2 s, parts of 5 frames (0.2 s).
        for i in 0..100u32 {
            let v = testutil::h264_frame(i * 3600, i % 15 == 0, i as u8);
            let au = testutil::audio_frame(i * 1764, 2, 10);
            for (slot, f) in [(0, &v), (1, &au)] {
                if let Some(c) = whole.push(slot, f) {
                    segments.push(c.data.to_vec());
                }
                let cut = s.push(slot, f);
                while let Some(p) = s.take_part() {
                    current.extend_from_slice(&p.data);
                    parts.push((p.duration, p.independent, cut.is_some()));
                }
                if let Some(c) = cut {
                    assert!(c.data.len() >= current.len());
                    from_parts.push(std::mem::take(&mut current));
                }
            }
        }
        assert_eq!(segments.len(), 3);
        assert_eq!(segments, from_parts, "a segment is its parts, in order");
        // 1.2 s segments: 6 parts of 0.2 s each (the 19th is the next segment's first); a part starting
        // at a keyframe (every 0.6 s) is independent, the others not; the sixth ends its segment.
        assert_eq!(parts.len(), 19, "{parts:?}");
        for (i, (d, independent, ends)) in parts.iter().enumerate() {
            assert!((d - 0.2).abs() < 1e-9, "part {i}: {d}");
            assert_eq!(*independent, i % 3 == 0, "part {i}");
            assert_eq!(*ends, i % 6 == 5, "part {i}");
        }
    }

    #[test]
    fn parts_of_30_fps_video_never_exceed_the_target() {
        let tracks = [(Kind::Video, testutil::h264())];
        let mut s = Segmenter::new(&tracks, true).unwrap();
        s.set_parts(Duration::from_millis(200));
        let mut durations = Vec::new();
        for i in 0..120u32 {
            s.push(0, &testutil::h264_frame(i * 3000, i % 30 == 0, i as u8));
            while let Some(p) = s.take_part() {
                durations.push(p.duration);
            }
        }
        assert!(durations.len() >= 15, "{durations:?}");
        for d in &durations {
            assert!(*d <= 0.2 + 1e-9 && *d >= 0.85 * 0.2 - 1e-9, "{durations:?}");
        }
    }

    /// A publisher with another picture takes over: the segment in progress ends at its first keyframe,
    /// the next one (and its parts) is generation 1 with its own init segment (fMP4) or the new SPS in
    /// band (TS), and the timeline goes on.
    #[test]
    fn a_new_picture_starts_a_segment_of_a_new_generation() {
        // x264's baseline SPS/PPS of a 320x240 picture (testutil's is 640x480... another size).
        let hex = |h: &str| (0..h.len()).step_by(2).map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap()).collect();
        let sps2: Vec<u8> = hex("6742c00dd90141fb011000000300100000030320f142a480");
        let pps2: Vec<u8> = hex("68cb83cb20");
        let frame2 = |ts: u32, key: bool| {
            let payload = if key {
                testutil::avcc(&[&sps2, &pps2, &[0x65, 0x88, 9]])
            } else {
                testutil::avcc(&[&[0x41, 0x9a, 9]])
            };
            Frame { timestamp: ts, keyframe: key, payload, rtp: Vec::new() }
        };
        let tracks = [(Kind::Video, testutil::h264()), (Kind::Audio, testutil::aac())];
        for fmp4 in [true, false] {
            let mut s = Segmenter::new(&tracks, fmp4).unwrap();
            s.follow_changes();
            if fmp4 {
                s.set_parts(Duration::from_millis(200));
            }
            let first_init = std::cell::RefCell::new(None);
            let (mut cuts, mut parts) = (Vec::new(), Vec::new());
            let mut feed = |s: &mut Segmenter, i: u32, v: Frame| {
                let mut out = s.push(0, &v).into_iter().collect::<Vec<_>>();
                out.extend(s.push(1, &testutil::audio_frame(i * 1764, 2, 10)));
                if first_init.borrow().is_none() {
                    *first_init.borrow_mut() = s.init().cloned();
                }
                parts.extend(std::iter::from_fn(|| s.take_part()).map(|p| (p.generation, p.independent)));
                cuts.extend(out.into_iter().map(|c| (c.generation, (c.duration * 1000.0).round() as u32, c.data)));
            };
            // 25 fps, a keyframe every 15 frames; the new publisher's first keyframe at frame 40.
            for i in 0..40u32 {
                feed(&mut s, i, testutil::h264_frame(i * 3600, i % 15 == 0, i as u8));
            }
            assert_eq!(s.generation(), 0);
            for i in 40..80u32 {
                feed(&mut s, i, frame2(i * 3600, (i - 40) % 15 == 0));
            }
            assert_eq!(s.generation(), 1, "fmp4 {fmp4}");
            // Segments at 1.2 s (frame 30), then the change at 1.6 s (frame 40), then 1.2 s (frame 70).
            let got: Vec<(u64, u32)> = cuts.iter().map(|c| (c.0, c.1)).collect();
            assert_eq!(got, [(0, 1200), (0, 400), (1, 1200)], "fmp4 {fmp4}");
            let last = s.finish().unwrap();
            assert_eq!(last.generation, 1);
            if fmp4 {
                let (old, new) = (first_init.borrow().clone().unwrap(), s.init().cloned().unwrap());
                let size = |init: &Bytes| {
                    let avc1 = testutil::find(init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1"]).unwrap();
                    (u16::from_be_bytes([avc1[24], avc1[25]]), u16::from_be_bytes([avc1[26], avc1[27]]))
                };
                assert_ne!(size(&old), (320, 240));
                assert_eq!(size(&new), (320, 240));
                // Segments are fragments only; the first of generation 1 starts with the keyframe's moof
                // and decode times go on (frame 40 at 144000).
                for c in &cuts {
                    assert!(testutil::boxes(&c.2).iter().all(|b| &b.kind == b"moof" || &b.kind == b"mdat"));
                }
                // (After the audio that was pending at the change: valid under both init segments.)
                let mut tfdt = b"tfdt\x01\0\0\0".to_vec();
                tfdt.extend_from_slice(&144_000u64.to_be_bytes());
                assert!(cuts[2].2.windows(tfdt.len()).any(|w| w == &tfdt[..]));
                // Parts: generation 0 until the change, the first of generation 1 independent.
                let first_new = parts.iter().position(|p| p.0 == 1).unwrap();
                assert!(parts[first_new].1 && parts[..first_new].iter().all(|p| p.0 == 0), "{parts:?}");
                assert!(parts[first_new..].iter().all(|p| p.0 == 1), "{parts:?}");
            } else {
                // TS: the new segment starts with PAT, and carries the new SPS in band.
                assert_eq!(&cuts[2].2[1..3], &[0x40, 0x00]);
                assert!(cuts[2].2.windows(sps2.len()).any(|w| w == &sps2[..]));
                assert!(!cuts[1].2.windows(sps2.len()).any(|w| w == &sps2[..]));
            }
        }
    }

    #[test]
    fn codecs_from_mime() {
        assert_eq!(codecs_of_mime("video/mp4; codecs=\"avc1.64001F,flac\"").as_deref(), Some("avc1.64001F,fLaC"));
        assert_eq!(codecs_of_mime("video/mp4"), None);
    }
}
