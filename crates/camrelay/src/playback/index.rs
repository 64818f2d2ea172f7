//! The playback server's index of recorded segments: per path, each segment's start (from its file
//! name), duration and init signature (from its header and last fragment, read once), so `/list`
//! answers from memory however many files there are.
//!
//! Built by scanning the `recordPath` directories (names only; files are opened once, when first
//! seen) and scanned again when the recorder reports a segment (`Hooks::observe_segments`) and every
//! [`RESCAN`] (files deleted by retention or by hand, files copied in). The newest segment of a path
//! may still be growing: it is probed again when its size changed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::config::Config;

/// Full rescans happen at least this often (segment events trigger one sooner; small indexes are
/// scanned more often, see `keep_index`).
pub const RESCAN: Duration = Duration::from_secs(30);

/// Segments are one span when one starts within this of the previous one's end (MediaMTX's
/// concatenation tolerance) and their tracks are the same.
pub const TOLERANCE: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub start: SystemTime,
    pub file: PathBuf,
    pub duration: Duration,
    pub signature: u64,
    pub fmp4: bool,
    /// File size when probed (the newest segment is probed again when it changed).
    pub size: u64,
    /// Probed once a newer segment existed: the recorder had finished it, it is not read again.
    pub settled: bool,
}

impl Entry {
    pub fn end(&self) -> SystemTime {
        self.start + self.duration
    }

    /// Whether `next` continues this segment without a gap and with the same tracks.
    pub fn continued_by(&self, next: &Entry) -> bool {
        let end = self.end();
        let near = match next.start.duration_since(end) {
            Ok(d) => d <= TOLERANCE,
            Err(e) => e.duration() <= TOLERANCE,
        };
        near && self.signature == next.signature && self.fmp4 == next.fmp4
    }
}

/// A recorded span: contiguous segments.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start: SystemTime,
    pub duration: Duration,
}

#[derive(Default)]
pub struct Index {
    paths: Mutex<HashMap<String, Vec<Entry>>>,
    /// Whether a first scan finished.
    built: std::sync::atomic::AtomicBool,
}

/// Reads what the index keeps of one file (`None` when it cannot be read as a segment).
pub(crate) fn probe_file(file: &PathBuf, start: SystemTime) -> Option<Entry> {
    let f = std::fs::File::open(file).ok()?;
    let meta = f.metadata().ok()?;
    let fmp4 = file.extension().is_some_and(|e| e == "mp4");
    if fmp4 {
        let p = super::mp4::probe(&f).ok()?;
        Some(Entry {
            start,
            file: file.clone(),
            duration: p.duration,
            signature: p.signature,
            fmp4,
            size: meta.len(),
            settled: false,
        })
    } else {
        // MPEG-TS: the last write is the end.
        let end = meta.modified().ok()?;
        let duration = end.duration_since(start).unwrap_or_default();
        Some(Entry { start, file: file.clone(), duration, signature: 0, fmp4, size: meta.len(), settled: false })
    }
}

impl Index {
    pub fn is_built(&self) -> bool {
        self.built.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Scans the config's record directories and updates the index; files seen before are not read
    /// again (except a path's newest, when its size changed). Blocking.
    pub fn rescan(&self, config: &Config) {
        let found = crate::record::list(config);
        let old: HashMap<PathBuf, Entry> = {
            let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
            paths.values().flatten().map(|e| (e.file.clone(), e.clone())).collect()
        };
        let mut fresh: HashMap<String, Vec<Entry>> = HashMap::with_capacity(found.len());
        for (name, segs) in found {
            let last = segs.len().saturating_sub(1);
            let mut list = Vec::with_capacity(segs.len());
            for (i, seg) in segs.into_iter().enumerate() {
                let known = old.get(&seg.file).filter(|e| e.start == seg.start);
                let entry = match known {
                    Some(e) if e.settled => Some(e.clone()),
                    // Probed while it was the newest: read again if it grew.
                    Some(e) => match std::fs::metadata(&seg.file) {
                        Ok(m) if m.len() == e.size => Some(e.clone()),
                        _ => probe_file(&seg.file, seg.start),
                    },
                    None => probe_file(&seg.file, seg.start),
                };
                // A segment with a newer one after it is complete (the recorder finishes a file
                // before it creates the next).
                let entry = entry.map(|e| Entry { settled: i < last, ..e });
                if let Some(e) = entry {
                    list.push(e);
                }
            }
            if !list.is_empty() {
                fresh.insert(name, list);
            }
        }
        *self.paths.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        self.built.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Probes `name`'s newest segment again if it grew (it may be the one being recorded). Blocking.
    pub fn refresh_newest(&self, name: &str) {
        let newest = {
            let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
            paths.get(name).and_then(|l| l.last().cloned())
        };
        let Some(e) = newest else { return };
        let size = std::fs::metadata(&e.file).map(|m| m.len()).ok();
        if size == Some(e.size) {
            return;
        }
        let updated = probe_file(&e.file, e.start);
        let mut paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(list) = paths.get_mut(name) {
            if list.last().is_some_and(|l| l.file == e.file) {
                match (updated, list.last_mut()) {
                    (Some(u), Some(last)) => *last = u,
                    _ => {
                        list.pop();
                    }
                }
            }
        }
    }

    /// Whether `name` has recordings.
    pub fn has(&self, name: &str) -> bool {
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).get(name).is_some_and(|l| !l.is_empty())
    }

    /// Number of segments indexed.
    pub fn len(&self) -> usize {
        self.paths.lock().unwrap_or_else(|e| e.into_inner()).values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `name`'s recorded spans overlapping `[start, end]` (either open), cut to it: `/list`.
    pub fn spans(&self, name: &str, start: Option<SystemTime>, end: Option<SystemTime>) -> Vec<Span> {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = paths.get(name) else { return Vec::new() };
        spans_of(list, start, end)
    }

    /// The segments `/get` reads for `[start, start + duration)`: the one holding `start` (or the
    /// first after it) and those continuing it, up to the end.
    pub fn segments_for(&self, name: &str, start: SystemTime, duration: Duration) -> Vec<Entry> {
        let paths = self.paths.lock().unwrap_or_else(|e| e.into_inner());
        let Some(list) = paths.get(name) else { return Vec::new() };
        segments_of(list, start, duration)
    }

    #[cfg(test)]
    pub fn insert(&self, name: &str, entries: Vec<Entry>) {
        self.paths.lock().unwrap().insert(name.to_string(), entries);
    }
}

/// Merges contiguous segments into spans and cuts them to `[start, end]`.
pub fn spans_of(list: &[Entry], start: Option<SystemTime>, end: Option<SystemTime>) -> Vec<Span> {
    // Only segments starting before `end` count; start from the last one starting at or before `start`.
    let upto = match end {
        Some(end) => list.partition_point(|e| e.start <= end),
        None => list.len(),
    };
    let from = match start {
        Some(s) => list.partition_point(|e| e.start <= s).saturating_sub(1),
        None => 0,
    };
    let mut out: Vec<Span> = Vec::new();
    let mut prev: Option<&Entry> = None;
    for e in list.get(from..upto).unwrap_or_default() {
        match (prev, out.last_mut()) {
            (Some(p), Some(span)) if p.continued_by(e) => {
                span.duration = e.end().duration_since(span.start).unwrap_or_default();
            }
            _ => out.push(Span { start: e.start, duration: e.duration }),
        }
        prev = Some(e);
    }
    if let Some(s) = start {
        out.retain(|span| span.start + span.duration > s);
        if let Some(first) = out.first_mut() {
            if first.start < s {
                first.duration -= s.duration_since(first.start).unwrap_or_default();
                first.start = s;
            }
        }
    }
    if let Some(e) = end {
        out.retain(|span| span.start < e || span.duration.is_zero() && span.start == e);
        if let Some(last) = out.last_mut() {
            if last.start + last.duration > e {
                last.duration = e.duration_since(last.start).unwrap_or_default();
            }
        }
    }
    out
}

/// See [`Index::segments_for`].
pub fn segments_of(list: &[Entry], start: SystemTime, duration: Duration) -> Vec<Entry> {
    let end = start + duration;
    let at = list.partition_point(|e| e.start <= start);
    let first = match at.checked_sub(1) {
        // A segment in progress may not have a duration yet: it holds `start` if nothing follows.
        Some(i) if list[i].end() > start || i + 1 == list.len() => i,
        _ => at,
    };
    let mut out: Vec<Entry> = Vec::new();
    for e in list.get(first..).unwrap_or_default() {
        if e.start >= end {
            break;
        }
        if let Some(prev) = out.last() {
            if !prev.continued_by(e) {
                break;
            }
        }
        out.push(e.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: f64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(1_800_000_000.0 + secs)
    }

    fn entry(start: f64, duration: f64, signature: u64) -> Entry {
        Entry {
            start: at(start),
            file: PathBuf::from(format!("/rec/{start}.mp4")),
            duration: Duration::from_secs_f64(duration),
            signature,
            fmp4: true,
            size: 1,
            settled: true,
        }
    }

    fn secs(s: &Span) -> (f64, f64) {
        let start = s.start.duration_since(at(0.0)).unwrap().as_secs_f64();
        ((start * 1000.0).round() / 1000.0, (s.duration.as_secs_f64() * 1000.0).round() / 1000.0)
    }

    #[test]
    fn contiguous_segments_merge_like_mediamtx() {
        // 0-60, 60.2-120 (within 500 ms: one span), 200-230 (a gap), 230-260 with other tracks.
        let list = vec![entry(0.0, 60.0, 1), entry(60.2, 59.8, 1), entry(200.0, 30.0, 1), entry(230.0, 30.0, 2)];
        let all: Vec<_> = spans_of(&list, None, None).iter().map(secs).collect();
        assert_eq!(all, vec![(0.0, 120.0), (200.0, 30.0), (230.0, 30.0)]);
        // Cut to [30, 210].
        let cut: Vec<_> = spans_of(&list, Some(at(30.0)), Some(at(210.0))).iter().map(secs).collect();
        assert_eq!(cut, vec![(30.0, 90.0), (200.0, 10.0)]);
        // A start inside a gap drops the span before it.
        let later: Vec<_> = spans_of(&list, Some(at(150.0)), None).iter().map(secs).collect();
        assert_eq!(later, vec![(200.0, 30.0), (230.0, 30.0)]);
        assert!(spans_of(&list, Some(at(300.0)), None).is_empty());
        assert!(spans_of(&list, None, Some(at(-5.0))).is_empty());
    }

    #[test]
    fn get_reads_the_segment_holding_start_and_those_continuing_it() {
        let list = vec![entry(0.0, 1.0, 1), entry(1.0, 1.0, 1), entry(2.0, 1.0, 1), entry(10.0, 1.0, 1)];
        let files = |v: Vec<Entry>| v.into_iter().map(|e| e.start).collect::<Vec<_>>();
        assert_eq!(files(segments_of(&list, at(0.5), Duration::from_secs(2))), vec![at(0.0), at(1.0), at(2.0)]);
        // Stops at the gap.
        assert_eq!(files(segments_of(&list, at(1.5), Duration::from_secs(20))), vec![at(1.0), at(2.0)]);
        // A start in the gap begins at the next segment when it starts before the end.
        assert_eq!(files(segments_of(&list, at(5.0), Duration::from_secs(6))), vec![at(10.0)]);
        assert!(segments_of(&list, at(5.0), Duration::from_secs(2)).is_empty());
    }
}
