//! `log:` config → tracing filter, and the console format.
//!
//! Lines are written the way go2rtc writes them (`15:04:05.000 INF [api] listen addr=:1984`), on
//! stdout by default as go2rtc does: programs that supervise go2rtc read that stream (Home Assistant
//! waits for `INF [api] listen addr=` before it talks to the server, and maps the level column to
//! its own levels). `log.output: stderr` moves them to stderr.
//!
//! MediaMTX's settings add [`Sinks`]: JSON lines instead (`logStructured`, go2rtc's `format: json`),
//! no console, a file (`logFile`) and syslog (`/dev/log`, `sysLogPrefix`). File and syslog lines go
//! through a bounded queue to a writer thread: logging never waits on a disk; when the queue is full
//! lines are dropped and counted, and the file says how many.

use std::fmt::Write as _;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Where console lines go (`log.output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Output {
    #[default]
    Stdout,
    Stderr,
}

impl Output {
    /// `stdout` (or empty) and `stderr`; anything else is `None`.
    pub fn parse(s: &str) -> Option<Output> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "stdout" => Some(Output::Stdout),
            "stderr" => Some(Output::Stderr),
            _ => None,
        }
    }

    fn write(self, buf: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        match self {
            Output::Stdout => {
                let mut out = std::io::stdout().lock();
                out.write_all(buf)?;
                // Supervisors read line by line through a pipe: never leave a line in a buffer.
                out.flush()
            }
            Output::Stderr => std::io::stderr().write_all(buf),
        }
    }
}

/// Where log lines go besides the in-memory buffer, and their format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sinks {
    /// Lines on the console ([`Output`]); MediaMTX's `stdout` destination.
    pub console: bool,
    /// JSON lines (one object per line) instead of the console format.
    pub structured: bool,
    /// Appended to this file.
    pub file: Option<String>,
    /// Sent to the system log with this tag.
    pub syslog: Option<String>,
}

impl Default for Sinks {
    fn default() -> Self {
        Sinks { console: true, structured: false, file: None, syslog: None }
    }
}

/// Lines waiting for the file/syslog writer thread, at most.
const BACKGROUND_QUEUE: usize = 4096;

/// The file and syslog destinations: a bounded queue to a thread that writes them.
struct Background {
    queue: std::sync::mpsc::SyncSender<Queued>,
    dropped: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// What the writer thread is sent: a line, or a request to write out everything before it.
enum Queued {
    Line(Vec<u8>),
    Flush(std::sync::mpsc::Sender<()>),
}

/// The running logger's file/syslog writer, for [`flush`] at exit.
static BACKGROUND: std::sync::OnceLock<std::sync::Arc<Background>> = std::sync::OnceLock::new();

/// Writes out the lines still queued for the log file (at exit; waits at most a second).
pub fn flush() {
    let Some(b) = BACKGROUND.get() else { return };
    let (done, wait) = std::sync::mpsc::channel();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    let mut request = Queued::Flush(done);
    loop {
        match b.queue.try_send(request) {
            Ok(()) => break,
            Err(std::sync::mpsc::TrySendError::Full(r)) if std::time::Instant::now() < deadline => {
                request = r;
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = wait.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()));
}

impl Background {
    /// Opens the file (created if missing, appended to) and starts the writer thread.
    fn start(file: Option<&str>, syslog: Option<&str>) -> std::io::Result<Background> {
        let mut file = match file {
            Some(path) => Some(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|e| std::io::Error::new(e.kind(), format!("log file {path}: {e}")))?,
            )),
            None => None,
        };
        let syslog = syslog.map(|tag| (tag.to_string(), std::os::unix::net::UnixDatagram::unbound().ok()));
        let (queue, rx) = std::sync::mpsc::sync_channel::<Queued>(BACKGROUND_QUEUE);
        let dropped = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let lost = dropped.clone();
        std::thread::Builder::new().name("camrelay-log".into()).spawn(move || {
            use std::io::Write;
            while let Ok(first) = rx.recv() {
                let mut next = Some(first);
                let mut flushed = Vec::new();
                while let Some(queued) = next.take() {
                    next = rx.try_recv().ok();
                    let line = match queued {
                        Queued::Line(line) => line,
                        Queued::Flush(done) => {
                            flushed.push(done);
                            continue;
                        }
                    };
                    if let Some(f) = file.as_mut() {
                        let n = lost.swap(0, std::sync::atomic::Ordering::Relaxed);
                        if n > 0 {
                            let _ = writeln!(f, "{n} log lines dropped: the log file could not keep up");
                        }
                        let _ = f.write_all(&line);
                    }
                    if let Some((tag, Some(socket))) = &syslog {
                        let _ = socket.send_to(&syslog_message(tag, &line), "/dev/log");
                    }
                }
                // The queue is empty: what was written reaches the file now.
                if let Some(f) = file.as_mut() {
                    let _ = f.flush();
                }
                for done in flushed {
                    let _ = done.send(());
                }
            }
        })?;
        Ok(Background { queue, dropped })
    }

    fn send(&self, line: &[u8]) {
        if self.queue.try_send(Queued::Line(line.to_vec())).is_err() {
            self.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

/// A syslog datagram as Go's `log/syslog` writes one to the local socket:
/// `<PRI>Jan _2 15:04:05 TAG[PID]: MESSAGE`, facility daemon, severity from the line's level.
fn syslog_message(tag: &str, line: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end();
    let severity = if text.contains(" ERR [") || text.contains("\"level\":\"error\"") {
        3
    } else if text.contains(" WRN [") || text.contains("\"level\":\"warn\"") {
        4
    } else if text.contains(" DBG [") || text.contains(" TRC [") || text.contains("\"level\":\"debug\"") {
        7
    } else {
        6
    };
    format!("<{}>{} {tag}[{}]: {text}", 3 * 8 + severity, syslog_stamp(), std::process::id()).into_bytes()
}

/// Maps a go2rtc module name (`api`, `rtsp`, `streams`, `exec`...) to our tracing targets.
fn targets(module: &str) -> Vec<String> {
    match module {
        "api" => vec!["camrelay::servers::api".into()],
        "rtsp" => vec!["camrelay::servers::rtsp".into(), "camrelay::sources::rtsp".into()],
        "streams" => vec!["camrelay::hub".into()],
        "exec" | "ffmpeg" | "echo" | "demo" => vec![format!("camrelay::sources::{module}")],
        other => vec![format!("camrelay::servers::{other}"), format!("camrelay::sources::{other}")],
    }
}

/// go2rtc levels (`trace debug info warn error fatal panic disabled`) → tracing levels.
fn level(s: &str) -> &'static str {
    match s.to_ascii_lowercase().as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        "disabled" | "off" | "none" => "off",
        _ => "info",
    }
}

/// Libraries whose own log lines carry secrets: srt-protocol prints whole handshakes, and with them the
/// stream id (`read:cam:user:pass`, a JWT). Silenced unless the filter names them (`RUST_LOG=srt_protocol=debug`
/// to debug SRT on purpose).
const SECRET_BEARING_TARGETS: [&str; 2] = ["srt_protocol", "srt_tokio"];

fn quiet_secret_bearers(spec: &str, mut filter: EnvFilter) -> EnvFilter {
    for target in SECRET_BEARING_TARGETS.iter().filter(|t| !spec.contains(**t)) {
        if let Ok(directive) = format!("{target}=off").parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Builds the filter: `RUST_LOG` wins when set, else the config's levels.
pub fn filter(default_level: &str, modules: &[(String, String)]) -> EnvFilter {
    if let Ok(env) = std::env::var("RUST_LOG") {
        if let Ok(f) = EnvFilter::try_new(&env) {
            return quiet_secret_bearers(&env, f);
        }
    }
    let mut spec = level(default_level).to_string();
    for (module, lvl) in modules {
        for t in targets(module) {
            spec.push_str(&format!(",{t}={}", level(lvl)));
        }
    }
    quiet_secret_bearers(&spec, EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info")))
}

/// The last log lines, kept in memory for `GET /api/log` (bounded in bytes; oldest lines go first).
pub struct LogBuffer {
    lines: std::sync::Mutex<(std::collections::VecDeque<String>, usize)>,
    max_bytes: usize,
}

impl LogBuffer {
    pub fn new(max_bytes: usize) -> LogBuffer {
        LogBuffer { lines: std::sync::Mutex::new((std::collections::VecDeque::new(), 0)), max_bytes }
    }

    fn push(&self, text: &str) {
        let mut guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let (lines, bytes) = &mut *guard;
        for line in text.lines().filter(|l| !l.is_empty()) {
            // Secrets never reach the log buffer (they are masked before logging; belt and braces).
            let line = crate::secrets::mask_text(line);
            *bytes += line.len();
            lines.push_back(line);
        }
        while *bytes > self.max_bytes {
            match lines.pop_front() {
                Some(l) => *bytes -= l.len(),
                None => break,
            }
        }
    }

    /// Every kept line, oldest first, newline-terminated.
    pub fn text(&self) -> String {
        let guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::with_capacity(guard.1 + guard.0.len());
        for l in &guard.0 {
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    pub fn clear(&self) {
        let mut guard = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        guard.0.clear();
        guard.1 = 0;
    }
}

/// Writes each formatted line to the console ([`Output`]), into the [`LogBuffer`] and to the file
/// and syslog destinations.
#[derive(Clone)]
pub struct TeeWriter {
    buffer: std::sync::Arc<LogBuffer>,
    output: Option<Output>,
    background: Option<std::sync::Arc<Background>>,
}

impl std::io::Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.push(&String::from_utf8_lossy(buf));
        // A closed console (the supervisor went away) must not stop the server.
        if let Some(output) = self.output {
            let _ = output.write(buf);
        }
        if let Some(b) = &self.background {
            b.send(crate::secrets::mask_text(&String::from_utf8_lossy(buf)).as_bytes());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TeeWriter {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Installs the logger: go2rtc's console format on `output`, the last lines kept in `buffer` too.
pub fn init_with_buffer(
    default_level: &str,
    modules: &[(String, String)],
    output: Output,
    buffer: std::sync::Arc<LogBuffer>,
) {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default_level, modules))
        // Plain text: supervisors parse these lines, and span fields would otherwise carry ANSI codes.
        .with_ansi(false)
        .event_format(ConsoleFormat)
        .with_writer(TeeWriter { buffer, output: Some(output), background: None })
        .try_init();
}

/// Installs the logger of a `log:` config (with MediaMTX's destinations). Fails when the log file
/// cannot be opened.
pub fn init_from_config(config: &crate::config::LogConfig, buffer: std::sync::Arc<LogBuffer>) -> std::io::Result<()> {
    let sinks = &config.sinks;
    let background = if sinks.file.is_some() || sinks.syslog.is_some() {
        let b = std::sync::Arc::new(Background::start(sinks.file.as_deref(), sinks.syslog.as_deref())?);
        let _ = BACKGROUND.set(b.clone());
        Some(b)
    } else {
        None
    };
    let writer = TeeWriter { buffer, output: sinks.console.then_some(config.output), background };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter(&config.level, &config.modules))
        .with_ansi(false)
        .with_writer(writer);
    let _ = if sinks.structured {
        builder.event_format(JsonFormat).try_init()
    } else {
        builder.event_format(ConsoleFormat).try_init()
    };
    Ok(())
}

/// One JSON object per line (`logStructured: true`, go2rtc's `format: json`):
/// `{"time":"2006-01-02T15:04:05.000Z","level":"info","module":"rtsp","message":"...",...}` with the
/// event's fields and those of its spans as string members.
pub struct JsonFormat;

impl<S, N> FormatEvent<S, N> for JsonFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        let module = fields.module.take().unwrap_or_else(|| module_of(event.metadata().target()).to_string());
        let mut object = serde_json::Map::new();
        object.insert("time".into(), crate::servers::v3::rfc3339(std::time::SystemTime::now()).into());
        object.insert("level".into(), event.metadata().level().as_str().to_ascii_lowercase().into());
        object.insert("module".into(), module.into());
        object.insert("message".into(), fields.message.into());
        for (k, v) in fields.rest {
            object.entry(k).or_insert(v.into());
        }
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        object.entry(span.name().to_string()).or_insert(f.to_string().into());
                    }
                }
            }
        }
        writeln!(writer, "{}", serde_json::Value::Object(object))
    }
}

/// The message and fields of one event, for [`JsonFormat`].
#[derive(Default)]
struct JsonFields {
    message: String,
    rest: Vec<(String, String)>,
    module: Option<String>,
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "module" => self.module = Some(value.to_string()),
            name => self.rest.push((name.to_string(), value.to_string())),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        match field.name() {
            "message" => self.message.push_str(&text),
            "module" => self.module = Some(text.trim_matches('"').to_string()),
            name => self.rest.push((name.to_string(), text)),
        }
    }
}

/// go2rtc's console line: `HH:MM:SS.mmm LVL [module] message key=value...` (local time, zerolog's
/// three-letter levels). The module is the go2rtc module name of the event's target (see
/// [`module_of`]), or an explicit `module = "..."` field.
pub struct ConsoleFormat;

impl<S, N> FormatEvent<S, N> for ConsoleFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let mut fields = EventFields::default();
        event.record(&mut fields);
        let module = fields.module.take().unwrap_or_else(|| module_of(event.metadata().target()).to_string());
        let level = match *event.metadata().level() {
            Level::TRACE => "TRC",
            Level::DEBUG => "DBG",
            Level::INFO => "INF",
            Level::WARN => "WRN",
            Level::ERROR => "ERR",
        };
        write!(writer, "{} {level} [{module}] {}", clock_now(), fields.message)?;
        if !fields.rest.is_empty() {
            write!(writer, "{}", fields.rest)?;
        }
        // The fields of the spans around the event (`peer=`, `url=`), outermost first.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let ext = span.extensions();
                if let Some(f) = ext.get::<FormattedFields<N>>() {
                    if !f.is_empty() {
                        write!(writer, " {f}")?;
                    }
                }
            }
        }
        writeln!(writer)
    }
}

/// The message and `key=value` fields of one event.
#[derive(Default)]
struct EventFields {
    message: String,
    rest: String,
    module: Option<String>,
}

impl Visit for EventFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        match field.name() {
            "message" => self.message.push_str(value),
            "module" => self.module = Some(value.to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value}");
            }
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => {
                let _ = write!(self.message, "{value:?}");
            }
            "module" => self.module = Some(format!("{value:?}").trim_matches('"').to_string()),
            name => {
                let _ = write!(self.rest, " {name}={value:?}");
            }
        }
    }
}

/// The go2rtc module name of a tracing target: `camrelay::servers::api` → `api`,
/// `camrelay::sources::ffmpeg` → `ffmpeg`, `camrelay::hub::track` → `streams`, other crates by
/// their own name.
pub fn module_of(target: &str) -> &str {
    let mut parts = target.split("::");
    match (parts.next(), parts.next(), parts.next()) {
        (Some("camrelay"), Some("servers" | "sources"), Some(module)) => module,
        (Some("camrelay"), Some("hub"), _) => "streams",
        (Some("camrelay"), _, _) => "app",
        (Some(other), _, _) => other,
        _ => target,
    }
}

/// The local time as syslog's `Jan _2 15:04:05`.
fn syslog_stamp() -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
    // SAFETY: localtime_r writes only the `tm` we pass and reads `secs`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&(secs as libc::time_t), &mut tm) }.is_null() {
        return "Jan  1 00:00:00".into();
    }
    let month = MONTHS.get(tm.tm_mon as usize).copied().unwrap_or("Jan");
    format!("{month} {:>2} {:02}:{:02}:{:02}", tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec)
}

/// The local wall clock as `HH:MM:SS.mmm`.
fn clock_now() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    let millis = now.subsec_millis();
    // SAFETY: localtime_r writes only the `tm` we pass and reads `secs`.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&secs, &mut tm) }.is_null() {
        let day = now.as_secs() % 86_400;
        return format!("{:02}:{:02}:{:02}.{millis:03}", day / 3600, day / 60 % 60, day % 60);
    }
    format!("{:02}:{:02}:{:02}.{millis:03}", tm.tm_hour, tm.tm_min, tm.tm_sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffer_is_bounded_and_masks() {
        let b = LogBuffer::new(64);
        for i in 0..20 {
            b.push(&format!("line {i} rtsp://admin:secret@10.0.0.1/x\n"));
        }
        let text = b.text();
        assert!(text.len() <= 64 + 20, "{text}");
        assert!(text.contains("line 19") && !text.contains("line 0 ") && !text.contains("secret"), "{text}");
        b.clear();
        assert!(b.text().is_empty());
    }

    #[test]
    fn srt_protocol_lines_are_off_unless_asked_for() {
        // Its handshake lines carry stream ids with credentials.
        let quiet = quiet_secret_bearers("debug", EnvFilter::new("debug")).to_string();
        assert!(quiet.contains("srt_protocol=off") && quiet.contains("srt_tokio=off"), "{quiet}");
        let asked = quiet_secret_bearers("info,srt_protocol=debug", EnvFilter::new("info,srt_protocol=debug"));
        assert!(!asked.to_string().contains("srt_protocol=off"), "{asked}");
    }

    #[test]
    fn modules_are_go2rtc_names() {
        assert_eq!(module_of("camrelay::servers::api"), "api");
        assert_eq!(module_of("camrelay::servers::rtsp::session"), "rtsp");
        assert_eq!(module_of("camrelay::sources::ffmpeg"), "ffmpeg");
        assert_eq!(module_of("camrelay::hub::track"), "streams");
        assert_eq!(module_of("camrelay::app"), "app");
        assert_eq!(module_of("camrelay"), "app");
        assert_eq!(module_of("str0m::ice"), "str0m");
    }

    #[test]
    fn lines_have_go2rtc_console_format() {
        let buffer = std::sync::Arc::new(LogBuffer::new(4096));
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug"))
            .with_ansi(false)
            .event_format(ConsoleFormat)
            .with_writer(TeeWriter { buffer: buffer.clone(), output: Some(Output::Stderr), background: None })
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(module = "api", addr = "127.0.0.1:11984", "listen");
            let peer: std::net::SocketAddr = "10.0.0.9:5000".parse().unwrap();
            let span = tracing::info_span!("rtsp", peer = %peer);
            span.in_scope(|| tracing::warn!(target: "camrelay::servers::rtsp::session", stream = "cam", "bad request"));
        });
        let text = buffer.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        // `HH:MM:SS.mmm INF [api] listen addr=127.0.0.1:11984`
        let (clock, rest) = lines[0].split_once(' ').unwrap();
        assert_eq!(clock.len(), 12, "{clock}");
        assert_eq!(clock.as_bytes()[2], b':');
        assert_eq!(clock.as_bytes()[8], b'.');
        assert_eq!(rest, "INF [api] listen addr=127.0.0.1:11984");
        assert!(lines[1].ends_with(" WRN [rtsp] bad request stream=cam peer=10.0.0.9:5000"), "{:?}", lines[1]);
    }

    #[test]
    fn json_lines_parse_and_file_lines_arrive() {
        let dir = std::env::temp_dir().join(format!("camrelay-log-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("json.log");
        let _ = std::fs::remove_file(&path);
        let background = Background::start(Some(path.to_str().unwrap()), None).unwrap();
        let buffer = std::sync::Arc::new(LogBuffer::new(4096));
        let writer =
            TeeWriter { buffer: buffer.clone(), output: None, background: Some(std::sync::Arc::new(background)) };
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(EnvFilter::new("debug"))
            .with_ansi(false)
            .event_format(JsonFormat)
            .with_writer(writer)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("rtsp", peer = "10.0.0.9:5000");
            span.in_scope(|| {
                tracing::warn!(target: "camrelay::servers::rtsp::session", stream = "cam", "bad rtsp://u:secret@h/x")
            });
        });
        let line = buffer.text();
        let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(v["level"], "warn");
        assert_eq!(v["module"], "rtsp");
        assert_eq!(v["stream"], "cam");
        assert_eq!(v["rtsp"], "peer=\"10.0.0.9:5000\"");
        assert!(v["time"].as_str().unwrap().ends_with('Z'), "{v}");
        // The file gets the same line, masked, once the writer thread has run.
        let mut text = String::new();
        for _ in 0..200 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let v: serde_json::Value = serde_json::from_str(text.trim()).unwrap();
        assert!(v["message"].as_str().unwrap().starts_with("bad rtsp://") && !text.contains("secret"), "{text}");
        let msg = String::from_utf8(syslog_message("mediamtx", b"12:00:00.000 ERR [rtsp] x\n")).unwrap();
        assert!(
            msg.starts_with("<27>") && msg.contains(" mediamtx[") && msg.ends_with("]: 12:00:00.000 ERR [rtsp] x"),
            "{msg}"
        );
    }

    #[test]
    fn outputs_parse() {
        assert_eq!(Output::parse(""), Some(Output::Stdout));
        assert_eq!(Output::parse("STDERR"), Some(Output::Stderr));
        assert_eq!(Output::parse("file"), None);
    }
}
