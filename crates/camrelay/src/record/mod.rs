//! MediaMTX's recorder (`record: yes` and the `record*` path keys): per recorded path, a hub reader
//! (held like a preload, subscribing again with backoff) whose frames go through the shared
//! `formats::segment::Segmenter` (fMP4 or MPEG-TS, cut at keyframes) into files named by `recordPath`
//! (`template.rs`). Parts are written as they come (every `recordPartDuration`, or sooner at
//! `recordMaxPartSize`), so a crash loses at most a part; `recordDeleteAfter` removes old segments.
//! Listing reads the start times from the file names (`list`), for `/v3/recordings`.
//!
//! The same recorder serves camrelay's own `record:` section (go2rtc-style config: its keys are mapped
//! onto the MediaMTX keys, [`stream_settings`]), and event recordings: a stream with a pre-record time
//! (`record.pre`, `recordPre`) keeps its last GOPs in memory (`prebuffer.rs`), and
//! `POST /api/record?src=` (`api.rs`) writes a recording that begins that long before the request.
//! On start the newest segment of each path is recovered (`recover.rs`: a torn last fragment cut).

pub mod api;
pub mod prebuffer;
pub mod recover;
pub mod template;

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use formats::segment::{SegmentPolicy, Segmenter};
use media::Kind;
use serde_json::{Map, Value};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::config::mediamtx::{parse_mediamtx_duration, MediamtxConfig};
use crate::config::Config;
use crate::hub::{producer, Delivery, Hub, Reader};
use prebuffer::{Buffered, PreBuffer};
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
    /// `record` (MediaMTX) / listed under `record.streams` without `continuous: false`: recorded all
    /// the time. Else only events are.
    pub continuous: bool,
    /// `recordPre` / `record.pre`: the pre-record ring of event recordings (0 = none).
    pub pre: Duration,
}

/// Longest pre-record time.
pub const MAX_PRE: Duration = Duration::from_secs(300);

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
        let pre = duration("recordPre", Duration::ZERO)?;
        if pre > MAX_PRE {
            return Err(format!("recordPre: at most {}s", MAX_PRE.as_secs()));
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
            continuous: s.get("record").and_then(Value::as_bool).unwrap_or(false),
            pre,
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
/// Paths with a `recordPre` keep a pre-record ring (held the same way) without `record: yes`. With a
/// go2rtc-style config: the streams under `record.streams`.
pub fn targets(config: &Config, hub: &Hub) -> Vec<(String, RecordSettings)> {
    let Some(mtx) = &config.mediamtx else {
        return config
            .record
            .streams
            .iter()
            .filter_map(|(name, _)| {
                let r = stream_settings(config, name)
                    .map_err(|e| tracing::error!(module = "record", path = %name, "{e}"))
                    .ok()?;
                (r.continuous || !r.pre.is_zero()).then(|| (name.clone(), r))
            })
            .collect();
    };
    let is_literal = |name: &str| !(name.starts_with('~') || name == "all_others" || name == "all");
    let recorded = |name: &str| -> Option<RecordSettings> {
        let s = mtx.path_settings(name)?;
        let r = RecordSettings::from_settings(&s)
            .map_err(|e| tracing::error!(module = "record", path = %name, "{e}"))
            .ok()?;
        (r.continuous || !r.pre.is_zero()).then_some(r)
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
        app.recorders.set_hooks(&app.hooks);
        app.recorders.sync(&app.hub, targets(&app.config(), &app.hub));
        let shutdown = app.shutdown.clone();
        drop(app);
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// camrelay's `record:` keys → MediaMTX's path keys (the recorder reads only the latter).
pub const GO2RTC_KEYS: &[(&str, &str)] = &[
    ("path", "recordPath"),
    ("format", "recordFormat"),
    ("segment_duration", "recordSegmentDuration"),
    ("part_duration", "recordPartDuration"),
    ("max_part_size", "recordMaxPartSize"),
    ("delete_after", "recordDeleteAfter"),
    ("pre", "recordPre"),
    ("continuous", "record"),
];

/// The record settings of stream `name`: in a MediaMTX config its path's (or, for a stream a publisher
/// created, its rule's; else `pathDefaults`'), in a go2rtc-style one `record:`'s keys with the stream's
/// own over them (a stream not under `record.streams` gets the section's, `continuous` off).
pub fn stream_settings(config: &Config, name: &str) -> Result<RecordSettings, String> {
    if let Some(mtx) = &config.mediamtx {
        let rules = crate::app::path_rules(config);
        let s = mtx
            .path_settings(name)
            .or_else(|| rules.find(name).and_then(|(rule, _)| mtx.path_settings(&rule.name)))
            .unwrap_or_else(|| mtx.path_defaults.clone());
        return RecordSettings::from_settings(&s);
    }
    let mut s = MediamtxConfig::defaults().path_defaults;
    s.extend(config.record.defaults.clone());
    let listed = config.record.streams.iter().find(|(n, _)| n == name);
    // Listed streams are recorded all the time unless `continuous: false` says otherwise.
    if listed.is_none() || !config.record.defaults.contains_key("record") {
        s.insert("record".into(), Value::Bool(listed.is_some()));
    }
    if let Some((_, own)) = listed {
        s.extend(own.clone());
    }
    RecordSettings::from_settings(&s)
}

/// The templates recordings may be under: `pathDefaults`' and every path's, or `record:`'s and each
/// of its streams'.
pub fn templates(config: &Config) -> Vec<Template> {
    let Some(mtx) = &config.mediamtx else {
        let mut out: Vec<Template> = Vec::new();
        let names = std::iter::once("").chain(config.record.streams.iter().map(|(n, _)| n.as_str()));
        for name in names {
            if let Ok(r) = stream_settings(config, name) {
                if !out.contains(&r.template) {
                    out.push(r.template);
                }
            }
        }
        return out;
    };
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

/// What a recorder task does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Records all the time (`record: yes`, a stream under `record.streams`).
    Continuous,
    /// Keeps the pre-record ring and records only events (`POST /api/record`).
    Events,
}

/// A request to a stream's event recorder.
enum EventCommand {
    Start { pre: Option<Duration>, reply: oneshot::Sender<Result<EventStarted, String>> },
    Stop { reply: oneshot::Sender<Result<EventEnded, String>> },
}

/// An event recording that began (`POST /api/record`).
#[derive(Debug, Clone)]
pub struct EventStarted {
    /// When its first frame (a keyframe) arrived: the file's start time.
    pub start: SystemTime,
    pub file: PathBuf,
    /// How long before the request it begins.
    pub pre: Duration,
}

/// An event recording that ended (`DELETE /api/record`).
#[derive(Debug, Clone)]
pub struct EventEnded {
    pub start: SystemTime,
    /// Its segment files (more than one when it outlasted the segment duration).
    pub files: Vec<PathBuf>,
    /// Seconds of media written, from the stream's timestamps.
    pub duration: Duration,
}

/// Why [`Recorders::start_event`] or [`Recorders::stop_event`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventError {
    /// No such stream, or no event running.
    NotFound(String),
    /// The stream is recorded all the time, or an event runs already.
    Conflict(String),
    /// The recording could not begin (no keyframe in time, the file could not be made...).
    Failed(String),
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::NotFound(e) | EventError::Conflict(e) | EventError::Failed(e) => f.write_str(e),
        }
    }
}

/// A stream's recording state, for the APIs (`/api/streams`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordStatus {
    /// `continuous` or `events`.
    pub mode: &'static str,
    /// The segment being written.
    pub file: Option<PathBuf>,
    /// The last write error (a full disk...), until a segment is written again.
    pub error: Option<String>,
    /// Since when an event recording runs.
    pub event_since: Option<SystemTime>,
}

type StatusTable = Arc<Mutex<BTreeMap<String, RecordStatus>>>;

fn set_status(table: &StatusTable, name: &str, f: impl FnOnce(&mut RecordStatus)) {
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(s) = t.get_mut(name) {
        f(s);
    }
}

struct Entry {
    settings: RecordSettings,
    stop: CancellationToken,
    events: Option<mpsc::Sender<EventCommand>>,
    /// Started by `POST /api/record` for a stream without a pre-record ring: ends with its event.
    adhoc: bool,
}

/// The running recorders: path name → settings and the task's stop.
#[derive(Default)]
pub struct Recorders {
    entries: Mutex<BTreeMap<String, Entry>>,
    /// The recorder tasks, awaited at shutdown so each finishes its segment.
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// MediaMTX's `runOnRecordSegment*` and the playback index's segment events (set by
    /// [`Recorders::set_hooks`] before the first sync: a recorder takes them when it starts).
    hooks: std::sync::OnceLock<Weak<crate::hooks::Hooks>>,
    status: StatusTable,
}

/// What every recorder task of a stream shares.
#[derive(Clone)]
struct TaskCtx {
    hub: Weak<Hub>,
    hooks: Weak<crate::hooks::Hooks>,
    name: String,
    settings: RecordSettings,
    stop: CancellationToken,
    status: StatusTable,
}

impl Recorders {
    /// The hooks every recorder started from now on reports its segments to.
    pub fn set_hooks(&self, hooks: &Arc<crate::hooks::Hooks>) {
        let _ = self.hooks.set(Arc::downgrade(hooks));
    }

    /// Starts and stops recorders to match `targets` (a changed path's recorder is restarted). Must be
    /// called inside the tokio runtime.
    pub fn sync(&self, hub: &Arc<Hub>, targets: Vec<(String, RecordSettings)>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let wanted: BTreeMap<String, RecordSettings> = targets.into_iter().collect();
        entries.retain(|name, e| {
            if e.adhoc {
                // An event started over the API outlives config changes and ends with its DELETE, unless
                // the config now records the stream itself.
                let keep = !e.stop.is_cancelled() && !wanted.contains_key(name);
                if !keep {
                    e.stop.cancel();
                }
                return keep;
            }
            let keep = wanted.get(name) == Some(&e.settings);
            if !keep {
                e.stop.cancel();
                tracing::info!(module = "record", path = %name, "recording stopped");
            }
            keep
        });
        for (name, settings) in wanted {
            if entries.contains_key(&name) {
                continue;
            }
            let mode = if settings.continuous { "recording started" } else { "pre-record started" };
            tracing::info!(module = "record", path = %name, to = %settings.template.text(), pre = ?settings.pre, "{mode}");
            let entry = self.spawn(hub, &name, settings, false);
            entries.insert(name, entry);
        }
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        status.retain(|name, _| entries.contains_key(name));
    }

    fn spawn(&self, hub: &Arc<Hub>, name: &str, settings: RecordSettings, adhoc: bool) -> Entry {
        let stop = CancellationToken::new();
        let ctx = TaskCtx {
            hub: Arc::downgrade(hub),
            hooks: self.hooks.get().cloned().unwrap_or_default(),
            name: name.to_string(),
            settings: settings.clone(),
            stop: stop.clone(),
            status: self.status.clone(),
        };
        let mode = if settings.continuous { Mode::Continuous } else { Mode::Events };
        self.status.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_string(),
            RecordStatus {
                mode: if mode == Mode::Continuous { "continuous" } else { "events" },
                ..RecordStatus::default()
            },
        );
        let (events, task) = match mode {
            Mode::Continuous => (None, tokio::spawn(hold(ctx))),
            Mode::Events => {
                let (tx, rx) = mpsc::channel(8);
                (Some(tx), tokio::spawn(hold_events(ctx, rx, adhoc)))
            }
        };
        let mut tasks = self.tasks.lock().unwrap_or_else(|e| e.into_inner());
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
        if let Some(after) = settings.delete_after {
            tokio::spawn(retention(name.to_string(), settings.template.clone(), after, stop.clone()));
        }
        Entry { settings, stop, events, adhoc }
    }

    pub fn list(&self) -> Vec<String> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect()
    }

    /// The recording state of `name`, if a recorder runs for it.
    pub fn status(&self, name: &str) -> Option<RecordStatus> {
        self.status.lock().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    /// Starts an event recording of `name` that begins `pre` (default: its `pre` setting) before now,
    /// at a keyframe; answers once its file is created. `settings` are the stream's record settings
    /// (for a stream without a recorder: the recorder started for this event).
    pub async fn start_event(
        &self,
        hub: &Arc<Hub>,
        name: &str,
        settings: RecordSettings,
        pre: Option<Duration>,
    ) -> Result<EventStarted, EventError> {
        let sender = {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            // An event recorder of the API's that ended (its event called off) is replaced.
            let ended = |e: &Entry| e.stop.is_cancelled() || e.events.as_ref().is_some_and(|t| t.is_closed());
            if entries.get(name).is_some_and(|e| e.adhoc && ended(e)) {
                entries.remove(name);
            }
            match entries.get(name) {
                Some(Entry { events: None, .. }) => {
                    return Err(EventError::Conflict(format!(
                        "stream {name:?} is recorded all the time: its segments already hold this time"
                    )))
                }
                Some(Entry { events: Some(tx), .. }) => tx.clone(),
                None => {
                    if hub.get(name).is_none() {
                        return Err(EventError::NotFound(format!("stream {name:?} not found")));
                    }
                    let settings = RecordSettings { continuous: false, pre: Duration::ZERO, ..settings };
                    tracing::info!(module = "record", path = %name, to = %settings.template.text(), "event recorder started");
                    let entry = self.spawn(hub, name, settings, true);
                    let tx = entry.events.clone();
                    entries.insert(name.to_string(), entry);
                    tx.ok_or_else(|| EventError::Failed("no event recorder".into()))?
                }
            }
        };
        let (reply, answer) = oneshot::channel();
        sender
            .send(EventCommand::Start { pre, reply })
            .await
            .map_err(|_| EventError::Failed(format!("the recorder of {name:?} stopped")))?;
        let started = match tokio::time::timeout(EVENT_START_TIMEOUT, answer).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(format!("the recorder of {name:?} stopped")),
            Err(_) => {
                // Nothing written yet: the event is called off.
                let (reply, _) = oneshot::channel();
                let _ = sender.try_send(EventCommand::Stop { reply });
                Err(format!(
                    "stream {name:?} sent no keyframe within {} s: no event recording",
                    EVENT_START_TIMEOUT.as_secs()
                ))
            }
        };
        started.map_err(|e| if e.contains("already") { EventError::Conflict(e) } else { EventError::Failed(e) })
    }

    /// Ends the event recording of `name`.
    pub async fn stop_event(&self, name: &str) -> Result<EventEnded, EventError> {
        let not_running = || EventError::NotFound(format!("no event recording of {name:?} is running"));
        let (sender, adhoc) = {
            let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            match entries.get(name) {
                Some(Entry { events: Some(tx), adhoc, .. }) => (tx.clone(), *adhoc),
                _ => return Err(not_running()),
            }
        };
        let (reply, answer) = oneshot::channel();
        sender.send(EventCommand::Stop { reply }).await.map_err(|_| not_running())?;
        let ended = tokio::time::timeout(Duration::from_secs(10), answer)
            .await
            .map_err(|_| EventError::Failed(format!("the recorder of {name:?} did not answer")))?
            .map_err(|_| not_running())?;
        if adhoc {
            let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
            if entries.get(name).is_some_and(|e| e.adhoc) {
                if let Some(e) = entries.remove(name) {
                    e.stop.cancel();
                }
                self.status.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
            }
        }
        ended.map_err(|e| if e.contains("no event") { EventError::NotFound(e) } else { EventError::Failed(e) })
    }

    /// Ends every recorder (shutdown) and waits (5 s at most) for each to finish its segment.
    pub async fn stop_all(&self) {
        let entries = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        for e in entries.into_values() {
            e.stop.cancel();
        }
        let tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|e| e.into_inner()));
        let _ = tokio::time::timeout(Duration::from_secs(5), futures_util::future::join_all(tasks)).await;
    }
}

/// How long `POST /api/record` waits for the event's first keyframe.
const EVENT_START_TIMEOUT: Duration = Duration::from_secs(15);

/// After a file system error, wait this long before recording again.
const IO_RETRY: Duration = Duration::from_secs(5);

/// Subscribes to `ctx.name` (again with backoff when the reader ends); `None` at stop.
async fn subscribe(ctx: &TaskCtx, attempt: &mut u32, last_error: &mut String) -> Option<Reader> {
    let filters = media::query::parse_query_string("video&audio");
    loop {
        let strong = ctx.hub.upgrade()?;
        let shared = strong.new_reader_shared("record", String::new());
        let subscribed = tokio::select! {
            _ = ctx.stop.cancelled() => return None,
            r = strong.subscribe(&ctx.name, &filters, shared, true) => r,
        };
        drop(strong);
        match subscribed {
            Ok(reader) => return Some(reader),
            Err(e) => {
                let e = e.to_string();
                if e != *last_error {
                    tracing::debug!(module = "record", path = %ctx.name, "recording: waiting for the stream: {e}");
                    *last_error = e;
                }
            }
        }
        tokio::select! {
            _ = ctx.stop.cancelled() => return None,
            _ = tokio::time::sleep(producer::backoff(*attempt)) => {}
        }
        *attempt = attempt.saturating_add(1);
    }
}

/// Recovers the newest segment of the path (the one a crash may have torn) before writing new ones.
async fn recover_newest(ctx: &TaskCtx) {
    let (t, name, fmp4) = (ctx.settings.template.clone(), ctx.name.clone(), ctx.settings.fmp4);
    let _ = tokio::task::spawn_blocking(move || {
        let newest = scan(&t).into_iter().filter(|(n, _)| *n == name).map(|(_, s)| s).max();
        let Some(seg) = newest else { return };
        match recover::recover(&seg.file, fmp4) {
            Ok(recover::Recovered::Intact) => {}
            Ok(recover::Recovered::Truncated { from, to }) => tracing::warn!(
                module = "record", path = %name, file = %seg.file.display(),
                "recovered an interrupted segment: cut a torn last fragment ({from} → {to} bytes)"
            ),
            Ok(recover::Recovered::Removed) => tracing::warn!(
                module = "record", path = %name, file = %seg.file.display(),
                "removed an interrupted segment that held no whole fragment"
            ),
            Err(e) => tracing::warn!(module = "record", path = %name, "checking {}: {e}", seg.file.display()),
        }
    })
    .await;
}

/// Holds a reader of the stream until stop, recording it all the time; subscribes again when the
/// reader ends or a write fails.
async fn hold(ctx: TaskCtx) {
    recover_newest(&ctx).await;
    let (mut attempt, mut last_error) = (0, String::new());
    loop {
        let Some(mut reader) = subscribe(&ctx, &mut attempt, &mut last_error).await else { return };
        let mut wait = producer::backoff(attempt);
        let mut session = Session::default();
        let (result, _) = record(&mut reader, &ctx, &mut session).await;
        match result {
            Ok(wrote) => {
                if wrote {
                    attempt = 0;
                    wait = producer::backoff(0);
                }
                last_error.clear();
                if ctx.stop.is_cancelled() {
                    return;
                }
            }
            Err(e) => {
                report_error(&ctx, &e);
                wait = IO_RETRY;
            }
        }
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

fn report_error(ctx: &TaskCtx, e: &str) {
    tracing::error!(module = "record", path = %ctx.name, "recording: {e}; retrying in {}s", IO_RETRY.as_secs());
    set_status(&ctx.status, &ctx.name, |s| {
        s.error = Some(e.to_string());
        s.file = None;
    });
}

/// An event recording in progress across reader restarts.
struct ActiveEvent {
    started: Option<oneshot::Sender<Result<EventStarted, String>>>,
    pre: Duration,
    start: Option<SystemTime>,
    files: Vec<PathBuf>,
    duration: Duration,
}

/// Holds a reader of the stream until stop, keeping its pre-record ring, and records the events it is
/// asked for (`commands`). `adhoc`: the task ends with its first event.
async fn hold_events(ctx: TaskCtx, mut commands: mpsc::Receiver<EventCommand>, adhoc: bool) {
    recover_newest(&ctx).await;
    let (mut attempt, mut last_error) = (0, String::new());
    let mut active: Option<ActiveEvent> = None;
    loop {
        let Some(mut reader) = subscribe(&ctx, &mut attempt, &mut last_error).await else { return };
        let tracks = crate::servers::http_stream::reader_codecs(&reader);
        let video = tracks.iter().position(|(k, _)| *k == Kind::Video);
        let mut ring = PreBuffer::new(ctx.settings.pre, video, prebuffer::MAX_PRE_BYTES);
        let mut backlog = VecDeque::new();
        loop {
            if let Some(event) = active.as_mut() {
                let mut session = Session {
                    backlog: std::mem::take(&mut backlog),
                    ring: Some(&mut ring),
                    commands: Some(&mut commands),
                    event: Some(event),
                };
                let (result, ended) = record(&mut reader, &ctx, &mut session).await;
                if let Err(e) = &result {
                    report_error(&ctx, e);
                }
                match ended {
                    Ended::EventStopped(reply) => {
                        let event = active.take();
                        set_status(&ctx.status, &ctx.name, |s| s.event_since = None);
                        let answer = match (event, result) {
                            (Some(ev), Ok(_)) => Ok(EventEnded {
                                start: ev.start.unwrap_or_else(SystemTime::now),
                                files: ev.files,
                                duration: ev.duration,
                            }),
                            (_, Err(e)) => Err(e),
                            (None, Ok(_)) => Err("no event recording is running".into()),
                        };
                        if let Ok(ended) = &answer {
                            tracing::info!(module = "record", path = %ctx.name, files = ended.files.len(),
                                "event recording ended ({:.1} s)", ended.duration.as_secs_f64());
                        }
                        let _ = reply.send(answer);
                        if adhoc {
                            return;
                        }
                        continue;
                    }
                    Ended::Cancelled => return,
                    Ended::Stream => break,
                }
            }
            tokio::select! {
                _ = ctx.stop.cancelled() => return,
                cmd = commands.recv() => match cmd {
                    None => return,
                    Some(EventCommand::Stop { reply }) => {
                        let _ = reply.send(Err(format!("no event recording of {:?} is running", ctx.name)));
                        if adhoc {
                            return;
                        }
                    }
                    Some(EventCommand::Start { pre, reply }) => {
                        let pre = pre.unwrap_or(ctx.settings.pre);
                        let now = SystemTime::now();
                        backlog = ring.since(now.checked_sub(pre).unwrap_or(now));
                        let begins = backlog.front().map_or(Duration::ZERO, |b| now.duration_since(b.at).unwrap_or_default());
                        tracing::info!(module = "record", path = %ctx.name, "event recording asked, {:.1} s before the request", begins.as_secs_f64());
                        active = Some(ActiveEvent { started: Some(reply), pre: begins, start: None, files: Vec::new(), duration: Duration::ZERO });
                    }
                },
                d = reader.queue.recv() => match d {
                    Some(d) => ring.push(SystemTime::now(), d),
                    None => break,
                },
            }
        }
        if let Some(ev) = active.as_mut() {
            tracing::info!(module = "record", path = %ctx.name, "event recording: the stream ended; it goes on when the stream is back");
            if let Some(reply) = ev.started.take() {
                let _ = reply.send(Err(format!("stream {:?} ended before the event began", ctx.name)));
                active = None;
            }
        }
        tokio::select! {
            _ = ctx.stop.cancelled() => return,
            _ = tokio::time::sleep(producer::backoff(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

/// Why [`record`] returned.
enum Ended {
    /// The reader ended (or a write failed).
    Stream,
    /// The recorder stops.
    Cancelled,
    /// `DELETE /api/record`: the event is over.
    EventStopped(oneshot::Sender<Result<EventEnded, String>>),
}

/// What one [`record`] call reads besides the reader, and reports to.
#[derive(Default)]
struct Session<'a> {
    /// Frames to write first (from the pre-record ring), with their arrival times.
    backlog: VecDeque<Buffered>,
    /// The ring, kept fed while recording.
    ring: Option<&'a mut PreBuffer>,
    /// Event commands (an event recording).
    commands: Option<&'a mut mpsc::Receiver<EventCommand>>,
    event: Option<&'a mut ActiveEvent>,
}

/// The segment file being written.
struct Open {
    file: tokio::fs::File,
    path: PathBuf,
    start: SystemTime,
    buf: Vec<u8>,
    /// Bytes safely written: after a failed write the file is cut back here (whole fragments only).
    written: u64,
    /// Length of the init segment (a file no longer than this holds no media).
    init_len: u64,
    flushed_at: tokio::time::Instant,
    /// Where the stream's state is shown: its error is cleared once media is written again.
    status: Option<(StatusTable, String)>,
}

/// A file system error, worded for the log and the API (a full disk says so).
fn io_error(what: &str, path: &Path, e: &std::io::Error) -> String {
    if e.raw_os_error() == Some(28) || e.kind() == std::io::ErrorKind::StorageFull {
        format!("disk full: {what} {}: {e}", path.display())
    } else {
        format!("{what} {}: {e}", path.display())
    }
}

impl Open {
    async fn flush(&mut self) -> Result<(), String> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let buf = std::mem::take(&mut self.buf);
        // `flush` waits for the write to reach the file: tokio's writes complete in the background and
        // would report a failure (a full disk) only at the next call.
        let written = match self.file.write_all(&buf).await {
            Ok(()) => self.file.flush().await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            // A torn write would leave half a fragment: cut it off, so the file stays readable.
            let _ = self.file.set_len(self.written).await;
            return Err(io_error("writing", &self.path, &e));
        }
        self.written += buf.len() as u64;
        self.flushed_at = tokio::time::Instant::now();
        if self.written > self.init_len {
            if let Some((table, name)) = self.status.take() {
                set_status(&table, &name, |s| s.error = None);
            }
        }
        Ok(())
    }

    /// After a write error: a file left with no media is removed (a full disk retried every few seconds
    /// must not leave a trail of empty segments).
    async fn abandon(self) {
        if self.written <= self.init_len {
            let _ = tokio::fs::remove_file(&self.path).await;
        }
    }

    async fn close(mut self) -> Result<(), String> {
        self.flush().await?;
        self.file.sync_data().await.map_err(|e| io_error("writing", &self.path, &e))?;
        tracing::debug!(module = "record", file = %self.path.display(), "segment complete");
        Ok(())
    }
}

async fn create(path: &Path) -> Result<tokio::fs::File, String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        tokio::fs::create_dir_all(dir).await.map_err(|e| io_error("creating directory", dir, &e))?;
    }
    tokio::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .await
        .map_err(|e| io_error("creating", path, &e))
}

/// The video parameter sets (H.264/H.265 SPS) a keyframe carries in band, to notice a changed stream;
/// for AV1, VP9 and MJPEG what their sample entry holds (picture size and configuration record).
fn parameter_sets(codec: &media::Codec, frame: &media::Frame) -> Option<Vec<bytes::Bytes>> {
    use formats::video::{VideoCodec, VideoConfig};
    if formats::fmp4::VisualCodec::from_name(&codec.name).is_some() {
        return formats::fmp4::keyframe_signature(codec, &frame.payload).map(|s| vec![bytes::Bytes::from(s)]);
    }
    let vc = VideoCodec::from_name(&codec.name)?;
    VideoConfig::from_nals(vc, media::h264::avcc_nals(&frame.payload)).map(|c| c.sps)
}

/// Records `reader` (after `session.backlog`) until it ends, the recorder stops or the event is
/// stopped; `Ok(true)` when a segment was written. A write error ends it (the caller retries later).
async fn record(reader: &mut Reader, ctx: &TaskCtx, session: &mut Session<'_>) -> (Result<bool, String>, Ended) {
    let (name, settings, hooks) = (&ctx.name, &ctx.settings, &ctx.hooks);
    let mut tracks = crate::servers::http_stream::reader_codecs(reader);
    let video = tracks.iter().position(|(k, _)| *k == Kind::Video);
    let policy = SegmentPolicy {
        video_min: settings.segment_duration,
        audio_len: settings.segment_duration,
        // Parts leave memory as they are written: the segment itself needs no bound here.
        max_bytes: usize::MAX / 4,
    };
    let mut seg = match Segmenter::with_policy(&tracks, settings.fmp4, policy) {
        Ok(s) => s,
        Err(e) => return (Err(format!("these tracks cannot be recorded: {e}")), Ended::Stream),
    };
    // The parameter sets the init segment was made with (the SDP's, else the first keyframe's).
    let mut params = video.and_then(|v| formats::video::VideoConfig::from_codec(&tracks[v].1)).map(|c| c.sps);
    let mut open: Option<Open> = None;
    let mut next_start: Option<SystemTime> = None;
    let mut wrote = false;
    let mut tick = tokio::time::interval(settings.part_duration);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ended = Ended::Stream;
    let result = 'run: loop {
        let (at, d) = if let Some(b) = session.backlog.pop_front() {
            (b.at, b.delivery)
        } else {
            let commands = session.commands.as_deref_mut();
            let delivery = tokio::select! {
                _ = ctx.stop.cancelled() => { ended = Ended::Cancelled; break Ok(()) }
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
                cmd = async { match commands { Some(c) => c.recv().await, None => std::future::pending().await } } => {
                    match cmd {
                        Some(EventCommand::Stop { reply }) => { ended = Ended::EventStopped(reply); break Ok(()) }
                        Some(EventCommand::Start { reply, .. }) => {
                            let since = session.event.as_ref().and_then(|e| e.start).map(crate::servers::v3::rfc3339);
                            let _ = reply.send(Err(format!("an event recording of {name:?} runs already (since {})", since.unwrap_or_default())));
                            continue;
                        }
                        None => { ended = Ended::Cancelled; break Ok(()) }
                    }
                }
                d = reader.queue.recv() => d,
            };
            let Some(d) = delivery else { break Ok(()) };
            let now = SystemTime::now();
            if let Some(r) = session.ring.as_deref_mut() {
                r.push(now, Delivery { slot: d.slot, frame: d.frame.clone() });
            }
            (now, d)
        };
        // A keyframe with other parameter sets (a camera that changed resolution or profile, a
        // publisher handed over with other settings): the segment ends here, the next one gets an init
        // segment of its own.
        if Some(d.slot) == video && d.frame.keyframe {
            if let Some(p) = parameter_sets(&tracks[d.slot].1, &d.frame) {
                if params.as_ref().is_some_and(|old| *old != p) {
                    tracing::info!(module = "record", path = %name, "the video parameters changed: new segment");
                    if let Some(mut o) = open.take() {
                        let mut duration = Duration::ZERO;
                        if let Some(last) = seg.finish() {
                            o.buf.extend_from_slice(&last.data);
                            duration = Duration::from_secs_f64(last.duration.max(0.0));
                        }
                        if let Err(e) = finish_file(o, ctx, session, duration).await {
                            break 'run Err(e);
                        }
                        wrote = true;
                    }
                    // The new parameters come in band: the init segment must not take the old ones
                    // from the SDP.
                    tracks[d.slot].1.fmtp = strip_sprop(&tracks[d.slot].1.fmtp);
                    seg = match Segmenter::with_policy(&tracks, settings.fmp4, policy) {
                        Ok(s) => s,
                        Err(e) => break Err(format!("these tracks cannot be recorded: {e}")),
                    };
                    next_start = None;
                }
                params = Some(p);
            }
        }
        if let Some(cut) = seg.push(d.slot, &d.frame) {
            if let Some(mut o) = open.take() {
                o.buf.extend_from_slice(&cut.data);
                let start = o.start;
                let duration = Duration::from_secs_f64(cut.duration.max(0.0));
                if let Err(e) = finish_file(o, ctx, session, duration).await {
                    break Err(e);
                }
                wrote = true;
                next_start = Some(start + duration);
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
            // Segments follow each other on the stream's clock; after a gap, at the frame's arrival.
            let start = next_start
                .take()
                .filter(|t| match at.duration_since(*t) {
                    Ok(d) => d < Duration::from_secs(5),
                    Err(e) => e.duration() < Duration::from_secs(5),
                })
                .unwrap_or(at);
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
            let mut o = Open {
                file,
                path: path.clone(),
                start,
                buf: Vec::new(),
                written: 0,
                init_len: 0,
                flushed_at: tokio::time::Instant::now(),
                status: Some((ctx.status.clone(), name.clone())),
            };
            if let Some(init) = seg.init() {
                o.buf.extend_from_slice(init);
                o.init_len = init.len() as u64;
            }
            // The init segment at once: the file is readable from its first part on.
            if let Err(e) = o.flush().await {
                o.abandon().await;
                break Err(e);
            }
            set_status(&ctx.status, name, |s| s.file = Some(path.clone()));
            if let Some(ev) = session.event.as_deref_mut() {
                ev.files.push(path.clone());
                if ev.start.is_none() {
                    ev.start = Some(start);
                    set_status(&ctx.status, name, |s| s.event_since = Some(start));
                    tracing::info!(module = "record", path = %name, file = %path.display(), "event recording started");
                }
                if let Some(reply) = ev.started.take() {
                    let _ = reply.send(Ok(EventStarted { start, file: path.clone(), pre: ev.pre }));
                }
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
        if result.is_err() {
            // The write that failed was cut off; what is left of this part is dropped.
            o.buf.clear();
            let _ = o.file.sync_data().await;
            o.abandon().await;
            set_status(&ctx.status, name, |s| s.file = None);
            return (result.map(|()| wrote), ended);
        }
        if let Err(e) = finish_file(o, ctx, session, duration).await {
            return (Err(e), ended);
        }
        wrote = true;
    }
    set_status(&ctx.status, name, |s| s.file = None);
    (result.map(|()| wrote), ended)
}

/// Writes the rest of a segment, closes it and announces it (`runOnRecordSegmentComplete`).
async fn finish_file(o: Open, ctx: &TaskCtx, session: &mut Session<'_>, duration: Duration) -> Result<(), String> {
    let file = o.path.clone();
    o.close().await?;
    if let Some(ev) = session.event.as_deref_mut() {
        ev.duration += duration;
    }
    if let Some(h) = ctx.hooks.upgrade() {
        h.record_segment(&ctx.name, &file, Some(duration));
    }
    Ok(())
}

/// `fmtp` without `sprop-parameter-sets` / `sprop-vps|sps|pps`, nor the `config=` record of AV1 and
/// VP9 tracks (the fMP4 muxer then takes the new configuration from the keyframe).
fn strip_sprop(fmtp: &str) -> String {
    fmtp.split(';')
        .map(str::trim)
        .filter(|p| !p.starts_with("sprop-") && !p.starts_with("config="))
        .collect::<Vec<_>>()
        .join(";")
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

    fn load_yaml(text: &str) -> Result<Config, String> {
        let dir = std::env::temp_dir().join(format!("camrelay-record-cfg-{}-{}", std::process::id(), text.len()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("camrelay.yaml"), text).unwrap();
        let loaded = crate::config::load(&["camrelay.yaml".to_string()], &dir, &|_| None);
        let _ = std::fs::remove_dir_all(&dir);
        loaded.map(|l| l.config).map_err(|e| e.to_string())
    }

    #[test]
    fn go2rtc_record_section_maps_onto_the_mediamtx_keys() {
        let config = load_yaml(
            "streams:\n  cam1: demo:clip\n  door: demo:clip\n  lobby: demo:clip\n\
             record:\n  path: /rec/%path/%Y-%m-%d_%H-%M-%S-%f\n  format: mpegts\n  segment_duration: 10m\n  \
             part_duration: 500ms\n  max_part_size: 2MiB\n  delete_after: 7d\n  pre: 5s\n  streams:\n    cam1:\n    \
             door: {continuous: false, pre: 15s, segment_duration: 1m}\n",
        )
        .unwrap();
        let cam1 = stream_settings(&config, "cam1").unwrap();
        assert_eq!(cam1.template.text(), "/rec/%path/%Y-%m-%d_%H-%M-%S-%f.ts");
        assert!(!cam1.fmp4 && cam1.continuous);
        assert_eq!(cam1.segment_duration, Duration::from_secs(600));
        assert_eq!(cam1.part_duration, Duration::from_millis(500));
        assert_eq!(cam1.max_part_size, 2 << 20);
        assert_eq!(cam1.delete_after, Some(Duration::from_secs(7 * 86_400)));
        assert_eq!(cam1.pre, Duration::from_secs(5));
        let door = stream_settings(&config, "door").unwrap();
        assert!(!door.continuous);
        assert_eq!((door.pre, door.segment_duration), (Duration::from_secs(15), Duration::from_secs(60)));
        // Not listed: the section's settings, events only.
        let lobby = stream_settings(&config, "lobby").unwrap();
        assert!(!lobby.continuous && lobby.pre == Duration::from_secs(5));
        let settings = crate::hub::HubSettings {
            linger: Duration::from_secs(1),
            start_timeout: Duration::from_secs(1),
            gop_cache_bytes: 0,
            reader_queue: 8,
            publisher_grace: Duration::ZERO,
        };
        let hub = Hub::new(Vec::new(), settings);
        let names: Vec<String> = targets(&config, &hub).into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["cam1", "door"]);
        assert_eq!(templates(&config).len(), 1);
        // The list form, with MediaMTX's defaults.
        let list = load_yaml("record:\n  streams: [a, b]\n").unwrap();
        let a = stream_settings(&list, "a").unwrap();
        assert!(a.continuous && a.fmp4 && a.pre.is_zero());
        assert_eq!(a.template.text(), "./recordings/%path/%Y-%m-%d_%H-%M-%S-%f.mp4");
        // Bad values name the key and line.
        let e = load_yaml("record:\n  format: mkv\n").unwrap_err();
        assert!(e.contains("recordFormat: invalid value \"mkv\"") && e.contains("key record"), "{e}");
        let e = load_yaml("record:\n  segment_duration: soon\n").unwrap_err();
        assert!(e.contains("line 2") && e.contains("record.segment_duration"), "{e}");
        let e = load_yaml("record:\n  streams:\n    cam: {pre: 10m}\n").unwrap_err();
        assert!(e.contains("recordPre: at most 300s") && e.contains("record.streams.cam"), "{e}");
        let e = load_yaml("record:\n  streams:\n    cam: {segmnt: 1s}\n");
        assert!(e.is_ok());
        // A MediaMTX file takes recordPre as a path key.
        let mtx = load_yaml("paths:\n  cam:\n    recordPre: 8s\n").unwrap();
        let cam = stream_settings(&mtx, "cam").unwrap();
        assert!(!cam.continuous && cam.pre == Duration::from_secs(8));
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
