//! MediaMTX's recorder (`record: yes` and the `record*` path keys): per recorded path, a hub reader
//! (held like a preload, subscribing again with backoff) whose frames go through the shared
//! `formats::segment::Segmenter` (fMP4 or MPEG-TS, cut at keyframes) into files named by `recordPath`
//! (`template.rs`). Parts are written as they come (every `recordPartDuration`, or sooner at
//! `recordMaxPartSize`), so a crash loses at most a part; `recordDeleteAfter` removes old segments.
//! Listing reads the start times from the file names (`list`), for `/v3/recordings`.

pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use formats::segment::{SegmentPolicy, Segmenter};
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use crate::config::mediamtx::{parse_mediamtx_duration, MediamtxConfig};
use crate::config::Config;
use crate::hub::{producer, Hub, Reader};
pub use template::Template;

/// A path's recording settings (MediaMTX's `record*` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct RecordSettings {
    /// `recordPath` with the extension of `recordFormat`.
    pub template: Template,
    /// `recordFormat: fmp4` (else `mpegts`).
    pub fmp4: bool,
    pub part_duration: Duration,
    pub max_part_size: usize,
    pub segment_duration: Duration,
    /// `recordDeleteAfter`; `None` for `0s` (keep everything).
    pub delete_after: Option<Duration>,
}

fn str_of<'a>(s: &'a Map<String, Value>, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `50M`, `1G`, `300K`, `1000` → bytes (decimal units, as MediaMTX's sizes).
pub fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, mult) = match s.char_indices().last()? {
        (i, 'K' | 'k') => (&s[..i], 1_000),
        (i, 'M') => (&s[..i], 1_000_000),
        (i, 'G') => (&s[..i], 1_000_000_000),
        _ => (s, 1),
    };
    num.parse::<u64>().ok()?.checked_mul(mult)
}

impl RecordSettings {
    /// The record settings in a path's merged settings (whether or not `record` is on).
    pub fn from_settings(s: &Map<String, Value>) -> Result<RecordSettings, String> {
        let fmp4 = match str_of(s, "recordFormat") {
            "" | "fmp4" => true,
            "mpegts" => false,
            other => return Err(format!("recordFormat: invalid value {other:?} (expected \"fmp4\" or \"mpegts\")")),
        };
        let template = Template::parse(str_of(s, "recordPath"), if fmp4 { ".mp4" } else { ".ts" })?;
        let duration = |key: &str, default: Duration| -> Result<Duration, String> {
            match s.get(key) {
                None => Ok(default),
                Some(v) => {
                    let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                    parse_mediamtx_duration(&text).ok_or_else(|| format!("{key}: invalid duration {text:?}"))
                }
            }
        };
        let part_duration = duration("recordPartDuration", Duration::from_secs(1))?;
        let segment_duration = duration("recordSegmentDuration", Duration::from_secs(3600))?;
        let delete_after = duration("recordDeleteAfter", Duration::from_secs(86_400))?;
        if part_duration < Duration::from_millis(100) || segment_duration < Duration::from_millis(100) {
            return Err("recordPartDuration and recordSegmentDuration must be at least 100ms".to_string());
        }
        let max_part_size = match s.get("recordMaxPartSize") {
            None => 50_000_000,
            Some(v) => {
                let text = v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string());
                parse_size(&text).filter(|n| *n >= 1000).ok_or_else(|| {
                    format!("recordMaxPartSize: invalid size {text:?} (a number of bytes, K, M or G, at least 1000)")
                })?
            }
        };
        Ok(RecordSettings {
            template,
            fmp4,
            part_duration,
            max_part_size: usize::try_from(max_part_size).unwrap_or(usize::MAX),
            segment_duration,
            delete_after: (!delete_after.is_zero()).then_some(delete_after),
        })
    }
}

/// Checks the record settings of `pathDefaults` and every path (at load: a bad value is refused there).
pub fn check(mtx: &MediamtxConfig) -> Result<(), String> {
    RecordSettings::from_settings(&mtx.path_defaults).map_err(|e| format!("pathDefaults: {e}"))?;
    for (name, _) in &mtx.paths {
        let s = mtx.path_settings(name).unwrap_or_default();
        RecordSettings::from_settings(&s).map_err(|e| format!("paths.{name}: {e}"))?;
    }
    Ok(())
}

/// The paths to record: literal MediaMTX paths with `record: yes` (directly or from `pathDefaults`), and
/// the streams publishers created under a `~regex` or `all_others` rule with `record: yes` (recorded
/// while they exist; rules with a source are not: holding a reader would keep an on-demand source up).
pub fn targets(config: &Config, hub: &Hub) -> Vec<(String, RecordSettings)> {
    let Some(mtx) = &config.mediamtx else { return Vec::new() };
    let is_literal = |name: &str| !(name.starts_with('~') || name == "all_others" || name == "all");
    let recorded = |name: &str| -> Option<RecordSettings> {
        let s = mtx.path_settings(name)?;
        if !s.get("record").and_then(Value::as_bool).unwrap_or(false) {
            return None;
        }
        RecordSettings::from_settings(&s).map_err(|e| tracing::error!(module = "record", path = %name, "{e}")).ok()
    };
    let mut out = Vec::new();
    for (name, _) in mtx.paths.iter().filter(|(n, _)| is_literal(n)) {
        if let Some(r) = recorded(name) {
            out.push((name.clone(), r));
        }
    }
    let rules = hub.path_rules();
    for stream in hub.streams() {
        let name = &stream.name;
        if name.starts_with(crate::hub::publish::PRIVATE_PREFIX) || mtx.paths.iter().any(|(n, _)| n == name) {
            continue;
        }
        let Some((rule, _)) = rules.find(name) else { continue };
        if is_literal(&rule.name) || !rule.takes_publishers() || !stream.created_by_publisher() {
            continue;
        }
        if let Some(r) = recorded(&rule.name) {
            out.push((name.clone(), r));
        }
    }
    out
}

/// Keeps `app`'s recorders in step with the config and with the streams publishers create (every
/// second), until shutdown.
pub async fn watch(app: Weak<crate::app::App>) {
    loop {
        let Some(app) = app.upgrade() else { return };
        if app.shutdown.is_cancelled() {
            return;
        }
        let _ = app.recorders.hooks.set(Arc::downgrade(&app.hooks));
        app.recorders.sync(&app.hub, targets(&app.config(), &app.hub));
        let shutdown = app.shutdown.clone();
        drop(app);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// The templates recordings may be under: `pathDefaults`' and every path's.
fn templates(config: &Config) -> Vec<Template> {
    let Some(mtx) = &config.mediamtx else { return Vec::new() };
    let mut out: Vec<Template> = Vec::new();
    let all = std::iter::once(mtx.path_defaults.clone())
        .chain(mtx.paths.iter().map(|(n, _)| mtx.path_settings(n).unwrap_or_default()));
    for s in all {
        if let Ok(r) = RecordSettings::from_settings(&s) {
            if !out.contains(&r.template) {
                out.push(r.template);
            }
        }
    }
    out
}

/// One recorded segment.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Segment {
    pub start: SystemTime,
    pub file: PathBuf,
}

/// Bound on the files one listing looks at.
const MAX_LISTED_FILES: usize = 1_000_000;

/// Every recording under the config's templates: path name → its segments by start time. Reads
/// directory entries only, never the files. Blocking: call it off the runtime's workers.
pub fn list(config: &Config) -> BTreeMap<String, Vec<Segment>> {
    let mut out: BTreeMap<String, Vec<Segment>> = BTreeMap::new();
    for t in templates(config) {
        for (name, seg) in scan(&t) {
            let list = out.entry(name).or_default();
            if !list.contains(&seg) {
                list.push(seg);
            }
        }
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

/// The files under `t`'s base directory that `t` names, as (path name, segment).
fn scan(t: &Template) -> Vec<(String, Segment)> {
    let base = t.base_dir();
    let mut out = Vec::new();
    let mut stack = vec![(base, 0usize)];
    let mut seen = 0usize;
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else { continue };
        for e in entries.flatten() {
            seen += 1;
            if seen > MAX_LISTED_FILES {
                return out;
            }
            let Ok(kind) = e.file_type() else { continue };
            let path = e.path();
            if kind.is_dir() {
                if depth < 32 {
                    stack.push((path, depth + 1));
                }
            } else if kind.is_file() {
                let Some(text) = path.to_str() else { continue };
                if let Some((Some(name), start)) = t.parse_file(text) {
                    out.push((name, Segment { start, file: path.clone() }));
                }
            }
        }
    }
    out
}

/// The running recorders: path name → settings and the task's stop.
#[derive(Default)]
pub struct Recorders {
    entries: Mutex<BTreeMap<String, (RecordSettings, CancellationToken)>>,
    /// The recorder tasks, awaited at shutdown so each finishes its segment.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// MediaMTX's `runOnRecordSegment*` (set by [`watch`]).
    hooks: std::sync::OnceLock<Weak<crate::hooks::Hooks>>,
}

impl Recorders {
    /// Starts and stops recorders to match `targets` (a changed path's recorder is restarted). Must be
    /// called inside the tokio runtime.
    pub fn sync(&self, hub: &Arc<Hub>, targets: Vec<(String, RecordSettings)>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: BTreeMap<String, RecordSettings> = targets.into_iter().collect();
        entries.retain(|name, (settings, stop)| {
            let keep = wanted.get(name) == Some(settings);
            if !keep {
                stop.cancel();
                tracing::info!(module = "record", path = %name, "recording stopped");
            }
            keep
        });
        for (name, settings) in wanted {
            if entries.contains_key(&name) {
                continue;
            }
            let stop = CancellationToken::new();
            tracing::info!(module = "record", path = %name, to = %settings.template.text(), "recording started");
            let hooks = self.hooks.get().cloned().unwrap_or_default();
            let task = tokio::spawn(hold(Arc::downgrade(hub), hooks, name.clone(), settings.clone(), stop.clone()));
            let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
            tasks.retain(|t| !t.is_finished());
            tasks.push(task);
            if let Some(after) = settings.delete_after {
                tokio::spawn(retention(name.clone(), settings.template.clone(), after, stop.clone()));
            }
            entries.insert(name, (settings, stop));
        }
    }

    pub fn list(&self) -> Vec<String> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// Ends every recorder (shutdown) and waits (5 s at most) for each to finish its segment.
    pub async fn stop_all(&self) {
        let entries = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        for (_, stop) in entries.into_values() {
            stop.cancel();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(Duration::from_secs(5), futures_util::future::join_all(tasks)).await;
    }
}

/// After a file system error, wait this long before recording again.
const IO_RETRY: Duration = Duration::from_secs(5);

/// Holds a reader of `name` until `stop`, recording it; subscribes again when the reader ends or a
/// write fails.
async fn hold(
    hub: Weak<Hub>,
    hooks: Weak<crate::hooks::Hooks>,
    name: String,
    settings: RecordSettings,
    stop: CancellationToken,
) {
    let filters = media::query::parse_query_string("video&audio");
    let mut attempt = 0;
    let mut last_error = String::new();
    loop {
        let Some(strong) = hub.upgrade() else { return };
        let shared = strong.new_reader_shared("record", String::new());
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            r = strong.subscribe(&name, &filters, shared, true) => r,
        };
        drop(strong);
        let mut wait = producer::backoff(attempt);
        match subscribed {
            Ok(mut reader) => match record(&mut reader, &hooks, &name, &settings, &stop).await {
                Ok(wrote) => {
                    if wrote {
                        attempt = 0;
                        wait = producer::backoff(0);
                    }
                    last_error.clear();
                    if stop.is_cancelled() {
                        return;
                    }
                }
                Err(e) => {
                    tracing::error!(module = "record", path = %name, "recording: {e}; retrying in {}s", IO_RETRY.as_secs());
                    wait = IO_RETRY;
                }
            },
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::debug!(module = "record", path = %name, "recording: waiting for the stream: {e}");
                    last_error = e;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

/// The segment file being written.
struct Open {
    file: tokio::fs::File,
    path: PathBuf,
    start: SystemTime,
    buf: Vec<u8>,
    flushed_at: tokio::time::Instant,
}

impl Open {
    async fn flush(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        self.file.write_all(&buf).await.map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        self.flushed_at = tokio::time::Instant::now();
        Ok(())
    }

    async fn close(mut self) -> Result<(), String> {
        self.flush().await?;
        self.file.sync_data().await.map_err(|e| format!("writing {}: {e}", self.path.display()))?;
        tracing::debug!(module = "record", file = %self.path.display(), "segment complete");
        Ok(())
    }
}

async fn create(path: &Path) -> Result<tokio::fs::File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| format!("creating directory {}: {e}", dir.display()))?;
    }
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|e| format!("creating {}: {e}", path.display()))
}

/// Records `reader` until it ends or `stop`; `Ok(true)` when a segment was written. A write error ends
/// it (the caller retries later).
async fn record(
    reader: &mut Reader,
    hooks: &Weak<crate::hooks::Hooks>,
    name: &str,
    settings: &RecordSettings,
    stop: &CancellationToken,
) -> Result<bool, String> {
    let tracks = crate::servers::http_stream::reader_codecs(reader);
    let policy = SegmentPolicy {
        video_min: settings.segment_duration,
        audio_len: settings.segment_duration,
        // Parts leave memory as they are written: the segment itself needs no bound here.
        max_bytes: usize::MAX / 4,
    };
    let mut seg = Segmenter::with_policy(&tracks, settings.fmp4, policy)
        .map_err(|e| format!("these tracks cannot be recorded: {e}"))?;
    let mut open: Option<Open> = None;
    let mut next_start: Option<SystemTime> = None;
    let mut wrote = false;
    let mut tick = tokio::time::interval(settings.part_duration);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let result = loop {
        let delivery = tokio::select! {
            _ = stop.cancelled() => break Ok(()),
            _ = tick.tick() => {
                if let Some(o) = &mut open {
                    if o.flushed_at.elapsed() >= settings.part_duration {
                        if let Err(e) = o.flush().await {
                            break Err(e);
                        }
                    }
                }
                continue;
            }
            d = reader.queue.recv() => d,
        };
        let Some(d) = delivery else { break Ok(()) };
        if let Some(cut) = seg.push(d.slot, &d.frame) {
            if let Some(mut o) = open.take() {
                o.buf.extend_from_slice(&cut.data);
                let (start, file) = (o.start, o.path.clone());
                if let Err(e) = o.close().await {
                    break Err(e);
                }
                wrote = true;
                if let Some(h) = hooks.upgrade() {
                    h.record_segment(name, &file, Some(Duration::from_secs_f64(cut.duration.max(0.0))));
                }
                next_start = Some(start + Duration::from_secs_f64(cut.duration.max(0.0)));
            }
        }
        if let Some(e) = seg.take_error() {
            tracing::debug!(module = "record", path = %name, "recording: {e}");
        }
        let pending = seg.take_pending();
        if pending.is_empty() {
            continue;
        }
        if open.is_none() {
            let now = SystemTime::now();
            // Segments follow each other on the stream's clock; after a gap, on the wall clock.
            let start = next_start
                .take()
                .filter(|t| match now.duration_since(*t) {
                    Ok(d) => d < Duration::from_secs(5),
                    Err(e) => e.duration() < Duration::from_secs(5),
                })
                .unwrap_or(now);
            let path = match settings.template.file(name, start) {
                Ok(p) => p,
                Err(e) => break Err(e),
            };
            let file = match create(&path).await {
                Ok(f) => f,
                Err(e) => break Err(e),
            };
            tracing::debug!(module = "record", file = %path.display(), "segment created");
            if let Some(h) = hooks.upgrade() {
                h.record_segment(name, &path, None);
            }
            let mut o = Open { file, path, start, buf: Vec::new(), flushed_at: tokio::time::Instant::now() };
            if let Some(init) = seg.init() {
                o.buf.extend_from_slice(init);
            }
            // The init segment at once: the file is readable from its first part on.
            if let Err(e) = o.flush().await {
                break Err(e);
            }
            open = Some(o);
        }
        let Some(o) = &mut open else { continue };
        for p in pending {
            o.buf.extend_from_slice(&p);
        }
        if o.buf.len() >= settings.max_part_size || o.flushed_at.elapsed() >= settings.part_duration {
            if let Err(e) = o.flush().await {
                break Err(e);
            }
        }
    };
    // The stream ended or the recorder stops: the segment in progress is finished.
    if let Some(mut o) = open {
        let mut duration = Duration::ZERO;
        if result.is_ok() {
            if let Some(last) = seg.finish() {
                o.buf.extend_from_slice(&last.data);
                duration = Duration::from_secs_f64(last.duration.max(0.0));
            }
        }
        for p in seg.take_pending() {
            o.buf.extend_from_slice(&p);
        }
        let file = o.path.clone();
        o.close().await?;
        wrote = true;
        if let Some(h) = hooks.upgrade() {
            h.record_segment(name, &file, Some(duration));
        }
    }
    result.map(|()| wrote)
}

/// Deletes `name`'s segments older than `after`, oldest first, until `stop`. The file being written
/// (modified in the last seconds) is kept.
async fn retention(name: String, template: Template, after: Duration, stop: CancellationToken) {
    let period = (after / 2).clamp(Duration::from_secs(1), Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(period) => {}
        }
        let (t, n) = (template.clone(), name.clone());
        let _ = tokio::task::spawn_blocking(move || delete_old(&t, &n, after, SystemTime::now())).await;
    }
}

/// Deletes `name`'s segments under `t` that started more than `after` before `now`; returns how many.
pub fn delete_old(t: &Template, name: &str, after: Duration, now: SystemTime) -> usize {
    let mut segs: Vec<Segment> = scan(t).into_iter().filter(|(n, _)| n == name).map(|(_, s)| s).collect();
    segs.sort();
    let mut deleted = 0;
    for s in segs {
        if s.start + after >= now {
            break;
        }
        let busy = std::fs::metadata(&s.file)
            .and_then(|m| m.modified())
            .is_ok_and(|m| now.duration_since(m).unwrap_or_default() < Duration::from_secs(5));
        if busy {
            continue;
        }
        match std::fs::remove_file(&s.file) {
            Ok(()) => {
                deleted += 1;
                tracing::info!(module = "record", path = %name, file = %s.file.display(), "segment deleted (recordDeleteAfter)");
            }
            Err(e) => tracing::warn!(module = "record", path = %name, "deleting {}: {e}", s.file.display()),
        }
    }
    deleted
}

/// Deletes the segment of `name` that starts at `start` (`DELETE /v3/recordings/deletesegment`).
pub fn delete_segment(config: &Config, name: &str, start: SystemTime) -> Result<(), String> {
    let all = list(config);
    let seg = all
        .get(name)
        .and_then(|segs| segs.iter().find(|s| s.start == start))
        .ok_or_else(|| "segment not found".to_string())?;
    std::fs::remove_file(&seg.file).map_err(|e| format!("deleting {}: {e}", seg.file.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, Value)]) -> Map<String, Value> {
        let mut m = MediamtxConfig::defaults().path_defaults;
        for (k, v) in pairs {
            m.insert(k.to_string(), v.clone());
        }
        m
    }

    #[test]
    fn mediamtx_defaults_and_bad_values() {
        let r = RecordSettings::from_settings(&settings(&[])).unwrap();
        assert!(r.fmp4);
        assert_eq!(r.part_duration, Duration::from_secs(1));
        assert_eq!(r.segment_duration, Duration::from_secs(3600));
        assert_eq!(r.max_part_size, 50_000_000);
        assert_eq!(r.delete_after, Some(Duration::from_secs(86_400)));
        assert_eq!(r.template.text(), "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f.mp4");
        let ts = RecordSettings::from_settings(&settings(&[
            ("recordFormat", "mpegts".into()),
            ("recordDeleteAfter", "0s".into()),
        ]))
        .unwrap();
        assert!(!ts.fmp4 && ts.template.text().ends_with(".ts") && ts.delete_after.is_none());
        let err = |k: &str, v: &str| RecordSettings::from_settings(&settings(&[(k, v.into())])).unwrap_err();
        assert!(err("recordFormat", "mkv").contains("recordFormat: invalid value \"mkv\""));
        assert!(err("recordSegmentDuration", "soon").contains("recordSegmentDuration: invalid duration"));
        assert!(err("recordMaxPartSize", "lots").contains("recordMaxPartSize: invalid size"));
        assert!(err("recordPath", "./rec/%path").contains("start time"));
        assert_eq!(parse_size("50M"), Some(50_000_000));
        assert_eq!(parse_size("3K"), Some(3000));
        assert_eq!(parse_size("M"), None);
    }

    #[test]
    fn listing_and_retention_read_names_only() {
        let dir = std::env::temp_dir().join(format!("camrelay-record-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let t = Template::parse(&format!("{}/%path/%Y-%m-%d_%H-%M-%S-%f", dir.display()), ".mp4").unwrap();
        let now = SystemTime::now();
        let old = now - Duration::from_secs(3600);
        for (name, at) in [("cam", old), ("cam", now), ("a/b", now)] {
            let f = t.file(name, at).unwrap();
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(&f, b"x").unwrap();
        }
        std::fs::write(dir.join("cam").join("notes.txt"), b"x").unwrap();
        let mut found: Vec<(String, SystemTime)> = scan(&t).into_iter().map(|(n, s)| (n, s.start)).collect();
        found.sort();
        let micros = |t: SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap();
            std::time::UNIX_EPOCH + Duration::from_micros(d.as_micros() as u64)
        };
        assert_eq!(
            found,
            vec![("a/b".to_string(), micros(now)), ("cam".to_string(), micros(old)), ("cam".to_string(), micros(now))]
        );
        // The hour-old segment goes; the new one (and the other path's) stays. Files just written count
        // as busy, so judge from a minute later.
        assert_eq!(delete_old(&t, "cam", Duration::from_secs(1800), now + Duration::from_secs(60)), 1);
        assert_eq!(scan(&t).len(), 2);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
