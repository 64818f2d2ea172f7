//! `/get`: the samples of `[start, start + duration)` read from contiguous segments and written as
//! one file, fMP4 (streamed, one fragment per second) or a progressive MP4 (`moov` first).
//!
//! Timing, per track: a sample's time is its segment's start (the file name) plus its decode time
//! past the segment's first video fragment; the output's time 0 is the asked start. Where the next
//! segment continues the previous one (within [`super::index::TOLERANCE`]) its samples follow the
//! previous ones exactly, so rounding in the file names never makes a jump.
//!
//! The cut: video starts at the keyframe at or before the asked start. As in MediaMTX the frames
//! before the asked time (the "pre-roll", needed to decode it) are played in no time, so the asked
//! time plays first; unlike MediaMTX, which gives them all the same decode time, each gets one tick
//! of its own (a player never sees two frames at one time) and the video track's times are one
//! tick per pre-roll frame later (under 3 ms for a 1 s GOP at 90 kHz). Other tracks start at the
//! asked time. The last sample is the last one starting before the end.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::{Duration, SystemTime};

use super::index::{Entry, TOLERANCE};
use super::mp4::{self, Init, OutSample};

/// Samples one `format=mp4` answer may hold (its table is built in memory before the first byte).
pub const MAX_MP4_SAMPLES: usize = 2_000_000;
/// Segment files one `format=mp4` answer may hold open.
pub const MAX_MP4_FILES: usize = 2048;
/// An fMP4 fragment is cut after this much video (or audio) time, or this many bytes.
const FRAGMENT: Duration = Duration::from_secs(1);
const FRAGMENT_BYTES: usize = 8 << 20;

/// Why `/get` fails before its answer started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fail {
    NotFound(String),
    BadRequest(String),
    Internal(String),
}

/// Where the answer goes. `false`: the client is gone, stop.
pub trait Sink {
    /// The answer starts (once, before any data): its length when known.
    fn head(&mut self, content_length: Option<u64>) -> bool;
    fn data(&mut self, bytes: Vec<u8>) -> bool;
}

/// What to serve.
pub struct Ask {
    pub segments: Vec<Entry>,
    pub start: SystemTime,
    pub duration: Duration,
    pub mp4: bool,
    /// `format=hls`: the playlist, its init or one of its media segments.
    pub hls: Option<HlsPart>,
    /// The request's query, repeated in the playlist's URIs (`format=hls`).
    pub query: String,
}

/// What a `format=hls` request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HlsPart {
    /// `get?...&format=hls`: the VOD playlist.
    Playlist,
    /// `hls/init.mp4?...`: the fMP4 init (`ftyp` + `moov`), the playlist's `#EXT-X-MAP`.
    Init,
    /// `hls/N.m4s?...`: media segment N (`moof` + `mdat`), from 0.
    Segment(u32),
}

/// HLS media segments are cut at the first video keyframe this long after the segment's start (or
/// at any sample once a segment holds [`HLS_CHUNK_BYTES`]; audio-only recordings: at any sample).
pub const HLS_CHUNK: Duration = Duration::from_secs(2);
/// Bytes one HLS media segment holds at most (plus one sample).
pub const HLS_CHUNK_BYTES: u64 = 32 << 20;
/// Media segments one HLS playlist may list.
pub const MAX_HLS_SEGMENTS: u32 = 200_000;

fn ns(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[derive(Default, Clone)]
struct TrackState {
    /// Added to the current segment's decode times to get ticks since the asked start.
    shift: Option<i64>,
    /// Ticks since the asked start where the last sample read ended.
    last_end: Option<i64>,
    /// Video frames before the asked start, from the last keyframe.
    pre: Vec<OutSample>,
    started: bool,
    /// Ticks added to this track's output times (one per pre-roll frame).
    extra: i64,
}

/// Walks the segments' samples in file order and hands each kept one (with its output time) to `emit`.
struct Walk<'a> {
    init: &'a Init,
    t0: i128,
    duration: Duration,
    tracks: Vec<TrackState>,
}

enum Step {
    /// Go on with the next segment.
    Next,
    /// The end was reached (or the next segment does not continue this one).
    Stop,
}

impl<'a> Walk<'a> {
    fn new(init: &'a Init, start: SystemTime, duration: Duration) -> Walk<'a> {
        Walk { init, t0: ns(start), duration, tracks: vec![TrackState::default(); init.tracks.len()] }
    }

    fn segment(
        &mut self,
        index: usize,
        seg: &Entry,
        file: &File,
        emit: &mut dyn FnMut(OutSample, &File) -> bool,
    ) -> Result<Step, String> {
        let len = file.metadata().map_err(|e| e.to_string())?.len();
        let (init, mut pos) = mp4::read_init(file, len)?;
        if init.signature != self.init.signature {
            return Ok(Step::Stop);
        }
        for t in &mut self.tracks {
            t.shift = None;
        }
        let seg_rel = ns(seg.start) - self.t0;
        let mut base: Option<f64> = None;
        while let Some(b) = mp4::box_at(file, pos, len) {
            pos += b.size;
            if &b.kind != b"moof" || b.size > mp4::MAX_HEADER_BOX {
                continue;
            }
            let mut data = vec![0u8; b.size as usize];
            file.read_exact_at(&mut data, b.offset).map_err(|e| e.to_string())?;
            let samples = mp4::parse_moof(&data, b.offset, &init);
            if base.is_none() {
                base = mp4::base_time(&samples, &init);
            }
            let base_ns = (base.unwrap_or(0.0) * 1e9) as i128;
            let mut all_past = !samples.is_empty();
            for s in samples {
                let Some((k, info)) = self.init.track(s.track) else { continue };
                let ts = i128::from(info.timescale);
                let end_ticks = (self.duration.as_nanos() as i128 * ts / 1_000_000_000) as i64;
                let state = &mut self.tracks[k];
                let shift = *state.shift.get_or_insert_with(|| {
                    let guess = ((seg_rel - base_ns) * ts / 1_000_000_000) as i64;
                    let first = s.dts as i64 + guess;
                    match state.last_end {
                        // Continue the previous segment exactly when it is near.
                        Some(end)
                            if (first - end).abs() <= (TOLERANCE.as_nanos() as i128 * ts / 1_000_000_000) as i64 =>
                        {
                            end - s.dts as i64
                        }
                        _ => guess,
                    }
                });
                let rel = s.dts as i64 + shift;
                state.last_end = Some(rel + i64::from(s.duration));
                if rel >= end_ticks {
                    continue;
                }
                all_past = false;
                let out = OutSample {
                    track: k,
                    dts: 0,
                    duration: s.duration,
                    cts: s.cts,
                    sync: s.sync,
                    size: s.size,
                    file: index,
                    offset: s.offset,
                };
                if rel < 0 {
                    if info.video && !state.started {
                        if s.sync {
                            state.pre.clear();
                        }
                        if s.sync || !state.pre.is_empty() {
                            state.pre.push(out);
                        }
                    }
                    continue;
                }
                if !state.started {
                    if info.video {
                        if s.sync {
                            state.pre.clear();
                        } else if state.pre.is_empty() {
                            // No keyframe yet to decode from.
                            continue;
                        }
                    }
                    state.started = true;
                    let pre = std::mem::take(&mut state.pre);
                    let n = pre.len() as i64;
                    state.extra = n;
                    for (i, mut p) in pre.into_iter().enumerate() {
                        p.dts = i as u64;
                        p.cts = 0;
                        p.duration = if i as i64 + 1 == n { (rel + n - i as i64).max(1) as u32 } else { 1 };
                        if !emit(p, file) {
                            return Ok(Step::Stop);
                        }
                    }
                }
                let out = OutSample { dts: (rel + state.extra) as u64, ..out };
                if !emit(out, file) {
                    return Ok(Step::Stop);
                }
            }
            if all_past {
                return Ok(Step::Stop);
            }
        }
        Ok(Step::Next)
    }
}

fn open(seg: &Entry) -> Result<File, String> {
    File::open(&seg.file).map_err(|e| format!("{}: {e}", seg.file.display()))
}

/// Serves `ask` into `sink`. `Err` only when nothing was sent yet (the caller answers with an error);
/// a failure later ends the answer where it is (logged).
pub fn serve(ask: &Ask, sink: &mut dyn Sink) -> Result<(), Fail> {
    let Some(first) = ask.segments.first() else {
        return Err(Fail::NotFound("no recordings found in this time range".into()));
    };
    if ask.segments.iter().any(|s| !s.fmp4) {
        return Err(Fail::BadRequest(
            "this path is recorded as MPEG-TS (recordFormat: mpegts); /get serves fMP4 recordings (recordFormat: fmp4)"
                .into(),
        ));
    }
    let file = open(first).map_err(|e| Fail::NotFound(format!("recording no longer available: {e}")))?;
    let len = file.metadata().map_err(|e| Fail::Internal(e.to_string()))?.len();
    let (init, _) = mp4::read_init(&file, len).map_err(|e| Fail::Internal(format!("{}: {e}", first.file.display())))?;
    // A start before the recording begins starts with the recording.
    let start = ask.start.max(first.start);
    let duration = if start > ask.start {
        ask.duration.saturating_sub(start.duration_since(ask.start).unwrap_or_default())
    } else {
        ask.duration
    };
    let walk = Walk::new(&init, start, duration);
    if let Some(part) = ask.hls {
        return serve_hls(ask, part, walk, file, sink);
    }
    if ask.mp4 {
        serve_mp4(ask, walk, file, sink)
    } else {
        serve_fmp4(ask, walk, file, sink)
    }
}

fn serve_fmp4(ask: &Ask, mut walk: Walk, first: File, sink: &mut dyn Sink) -> Result<(), Fail> {
    let init = walk.init;
    let mut pending: Vec<OutSample> = Vec::new();
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut sequence = 1u32;
    let mut started = false;
    let mut gone = false;
    let mut read_error: Option<String> = None;
    // Sends the pending fragment (the init before the first one).
    let mut flush = |pending: &mut Vec<OutSample>, payloads: &mut Vec<Vec<u8>>, started: &mut bool| -> bool {
        if pending.is_empty() {
            return true;
        }
        let mut out = Vec::new();
        if !*started {
            if !sink.head(None) {
                return false;
            }
            *started = true;
            out.extend_from_slice(&init.ftyp);
            out.extend_from_slice(&init.moov);
        }
        out.extend_from_slice(&mp4::fragment(sequence, init, pending, payloads));
        sequence = sequence.wrapping_add(1);
        pending.clear();
        payloads.clear();
        sink.data(out)
    };
    let mut file = Some(first);
    for (i, seg) in ask.segments.iter().enumerate() {
        let f = match file.take() {
            Some(f) => f,
            None => match open(seg) {
                Ok(f) => f,
                Err(e) => {
                    tracing::info!(module = "playback", "{e}: the answer ends here");
                    break;
                }
            },
        };
        let mut emit = |s: OutSample, f: &File| -> bool {
            let mut payload = vec![0u8; s.size as usize];
            if let Err(e) = f.read_exact_at(&mut payload, s.offset) {
                read_error = Some(e.to_string());
                return false;
            }
            let info = &init.tracks[s.track];
            let cut = pending.first().is_some_and(|p| {
                let p_info = &init.tracks[p.track];
                let span = |d: u64, ts: u32| Duration::from_secs_f64(d as f64 / f64::from(ts));
                p.track == s.track
                    && (info.video || !init.tracks.iter().any(|t| t.video))
                    && span(s.dts.saturating_sub(p.dts), p_info.timescale) >= FRAGMENT
            });
            if (cut || bytes + payload.len() > FRAGMENT_BYTES) && !pending.is_empty() {
                bytes = 0;
                if !flush(&mut pending, &mut payloads, &mut started) {
                    gone = true;
                    return false;
                }
            }
            bytes += payload.len();
            pending.push(s);
            payloads.push(payload);
            true
        };
        let step = walk.segment(i, seg, &f, &mut emit);
        if let Some(e) = read_error.take() {
            tracing::info!(module = "playback", file = %seg.file.display(), "reading: {e}: the answer ends here");
            break;
        }
        if gone {
            return Ok(());
        }
        match step {
            Ok(Step::Next) => {}
            Ok(Step::Stop) => break,
            Err(e) => {
                if !started && pending.is_empty() {
                    return Err(Fail::Internal(format!("{}: {e}", seg.file.display())));
                }
                tracing::info!(module = "playback", file = %seg.file.display(), "{e}: the answer ends here");
                break;
            }
        }
    }
    if !flush(&mut pending, &mut payloads, &mut started) {
        return Ok(());
    }
    if !started {
        return Err(Fail::NotFound("no recordings found in this time range".into()));
    }
    Ok(())
}

fn serve_mp4(ask: &Ask, mut walk: Walk, first: File, sink: &mut dyn Sink) -> Result<(), Fail> {
    if ask.segments.len() > MAX_MP4_FILES {
        return Err(Fail::BadRequest(format!(
            "format=mp4 spans {} segments, at most {MAX_MP4_FILES}: ask for less, or use format=fmp4",
            ask.segments.len()
        )));
    }
    let mut files: Vec<File> = Vec::with_capacity(ask.segments.len());
    let mut samples: Vec<OutSample> = Vec::new();
    let mut too_many = false;
    let mut first = Some(first);
    for (i, seg) in ask.segments.iter().enumerate() {
        let f = match first.take() {
            Some(f) => f,
            // Gone since it was listed: what came before is served.
            None => match open(seg) {
                Ok(f) => f,
                Err(_) => break,
            },
        };
        let step = walk.segment(i, seg, &f, &mut |s, _| {
            if samples.len() >= MAX_MP4_SAMPLES {
                too_many = true;
                return false;
            }
            samples.push(s);
            true
        });
        files.push(f);
        if too_many {
            return Err(Fail::BadRequest(format!(
                "format=mp4 holds at most {MAX_MP4_SAMPLES} samples: ask for less, or use format=fmp4"
            )));
        }
        match step {
            Ok(Step::Next) => {}
            Ok(Step::Stop) => break,
            Err(e) if samples.is_empty() => return Err(Fail::Internal(format!("{}: {e}", seg.file.display()))),
            Err(_) => break,
        }
    }
    if samples.is_empty() {
        return Err(Fail::NotFound("no recordings found in this time range".into()));
    }
    // Each track's samples in time order (pre-roll first), interleaved as read.
    let head = mp4::progressive_head(walk.init, &samples).map_err(Fail::Internal)?;
    let data: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    if !sink.head(Some(head.len() as u64 + data)) || !sink.data(head) {
        return Ok(());
    }
    let mut chunk = Vec::with_capacity(256 << 10);
    for s in &samples {
        let start = chunk.len();
        chunk.resize(start + s.size as usize, 0);
        if let Err(e) = files[s.file].read_exact_at(&mut chunk[start..], s.offset) {
            // Its file was open: only a disk error gets here. The answer is cut short.
            tracing::warn!(
                module = "playback",
                "reading {}: {e}: the answer ends here",
                ask.segments[s.file].file.display()
            );
            return Ok(());
        }
        if chunk.len() >= 256 << 10 && !sink.data(std::mem::take(&mut chunk)) {
            return Ok(());
        }
    }
    if !chunk.is_empty() {
        sink.data(chunk);
    }
    Ok(())
}

/// Cuts the walk's samples (in the order it gives them) into HLS media segments. Deterministic: the
/// playlist and each segment request walk the same files and cut in the same places.
struct Chunker<'a> {
    init: &'a Init,
    has_video: bool,
    /// The current segment's number, and its start (seconds since the asked start).
    index: u32,
    start: f64,
    bytes: u64,
    started: bool,
    /// Each segment's start.
    starts: Vec<f64>,
    /// Where the last video (or, without video, any) sample ends.
    end: f64,
}

impl<'a> Chunker<'a> {
    fn new(init: &'a Init) -> Chunker<'a> {
        Chunker {
            init,
            has_video: init.tracks.iter().any(|t| t.video),
            index: 0,
            start: 0.0,
            bytes: 0,
            started: false,
            starts: Vec::new(),
            end: 0.0,
        }
    }

    /// The segment `s` belongs to.
    fn place(&mut self, s: &OutSample) -> u32 {
        let info = &self.init.tracks[s.track];
        let ts = f64::from(info.timescale);
        let t = s.dts as f64 / ts;
        let lead = info.video || !self.has_video;
        if !self.started {
            self.started = true;
            // The playlist's time 0 is the asked start, where the walk's times begin.
            self.start = 0.0;
            self.starts.push(0.0);
        } else {
            let by_time = lead && (s.sync || !self.has_video) && t - self.start >= HLS_CHUNK.as_secs_f64();
            let by_size = self.bytes + u64::from(s.size) > HLS_CHUNK_BYTES;
            if by_time || by_size {
                self.index += 1;
                self.start = t;
                self.bytes = 0;
                self.starts.push(t);
            }
        }
        if lead {
            self.end = self.end.max((s.dts + u64::from(s.duration)) as f64 / ts);
        }
        self.bytes += u64::from(s.size);
        self.index
    }
}

/// Walks `ask`'s segments, handing each sample to `emit` (`false`: stop). `Err` when the first file
/// fails.
fn walk_all(
    ask: &Ask,
    walk: &mut Walk,
    first: File,
    emit: &mut dyn FnMut(OutSample, &File) -> bool,
) -> Result<(), Fail> {
    let mut file = Some(first);
    let mut stopped = false;
    for (i, seg) in ask.segments.iter().enumerate() {
        let f = match file.take() {
            Some(f) => f,
            // Gone since it was listed: the recording ends there.
            None => match open(seg) {
                Ok(f) => f,
                Err(_) => break,
            },
        };
        let step = walk.segment(i, seg, &f, &mut |s, f| {
            let go = emit(s, f);
            stopped |= !go;
            go
        });
        match step {
            Ok(Step::Next) if !stopped => {}
            Ok(_) => break,
            Err(e) if i == 0 => return Err(Fail::Internal(format!("{}: {e}", seg.file.display()))),
            Err(e) => {
                tracing::info!(module = "playback", file = %seg.file.display(), "{e}: the recording ends here");
                break;
            }
        }
    }
    Ok(())
}

/// `format=hls`: a VOD playlist over `ask`'s span whose media segments are cut from the recording on
/// request (`hls/N.m4s`: the walk again, up to that segment), so a player seeks by fetching only the
/// segment it needs. The URIs are relative (`hls/...` beside `get`) and end in `.mp4`/`.m4s`, as
/// ffmpeg's HLS reader wants.
fn serve_hls(ask: &Ask, part: HlsPart, mut walk: Walk, first: File, sink: &mut dyn Sink) -> Result<(), Fail> {
    if ask.segments.len() > MAX_MP4_FILES {
        return Err(Fail::BadRequest(format!(
            "format=hls spans {} segments, at most {MAX_MP4_FILES}: ask for less",
            ask.segments.len()
        )));
    }
    let init = walk.init;
    match part {
        HlsPart::Init => {
            let mut out = init.ftyp.clone();
            out.extend_from_slice(&init.moov);
            if sink.head(Some(out.len() as u64)) {
                sink.data(out);
            }
            Ok(())
        }
        HlsPart::Playlist => {
            let mut chunker = Chunker::new(init);
            let mut too_many = false;
            walk_all(ask, &mut walk, first, &mut |s, _| {
                if chunker.place(&s) >= MAX_HLS_SEGMENTS {
                    too_many = true;
                    return false;
                }
                true
            })?;
            if too_many {
                return Err(Fail::BadRequest(format!(
                    "format=hls lists at most {MAX_HLS_SEGMENTS} segments: ask for less"
                )));
            }
            if chunker.starts.is_empty() {
                return Err(Fail::NotFound("no recordings found in this time range".into()));
            }
            let text = playlist(&chunker.starts, chunker.end, &ask.query);
            if sink.head(Some(text.len() as u64)) {
                sink.data(text.into_bytes());
            }
            Ok(())
        }
        HlsPart::Segment(n) => {
            let mut chunker = Chunker::new(init);
            let mut samples: Vec<OutSample> = Vec::new();
            let mut payloads: Vec<Vec<u8>> = Vec::new();
            let mut read_error = None;
            walk_all(ask, &mut walk, first, &mut |s, f| {
                let at = chunker.place(&s);
                if at < n {
                    return true;
                }
                if at > n {
                    return false;
                }
                let mut payload = vec![0u8; s.size as usize];
                if let Err(e) = f.read_exact_at(&mut payload, s.offset) {
                    read_error = Some(e.to_string());
                    return false;
                }
                samples.push(s);
                payloads.push(payload);
                true
            })?;
            if let Some(e) = read_error {
                return Err(Fail::Internal(format!("reading segment {n}: {e}")));
            }
            if samples.is_empty() {
                return Err(Fail::NotFound(format!(
                    "no media segment {n} in this time range (the playlist lists {} segments)",
                    chunker.index + u32::from(chunker.started)
                )));
            }
            let out = mp4::fragment(n.saturating_add(1), init, &samples, &payloads);
            if sink.head(Some(out.len() as u64)) {
                sink.data(out);
            }
            Ok(())
        }
    }
}

/// The VOD playlist: segment `i` runs from `starts[i]` to `starts[i + 1]` (the last to `end`).
fn playlist(starts: &[f64], end: f64, query: &str) -> String {
    use std::fmt::Write;
    let durations: Vec<f64> =
        starts.iter().enumerate().map(|(i, s)| (starts.get(i + 1).copied().unwrap_or(end) - s).max(0.001)).collect();
    let target = durations.iter().fold(1.0f64, |a, d| a.max(d.ceil()));
    let mut out = String::with_capacity(64 * starts.len() + 256);
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n");
    let _ = writeln!(out, "#EXT-X-TARGETDURATION:{}", target as u64);
    out.push_str("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n");
    let _ = writeln!(out, "#EXT-X-MAP:URI=\"hls/init.mp4?{query}\"");
    for (i, d) in durations.iter().enumerate() {
        let _ = writeln!(out, "#EXTINF:{d:.6},\nhls/{i}.m4s?{query}");
    }
    out.push_str("#EXT-X-ENDLIST\n");
    out
}
