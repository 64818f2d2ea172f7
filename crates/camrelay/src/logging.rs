//! `log:` config → tracing filter. go2rtc's module names map to our module paths.

use tracing_subscriber::EnvFilter;

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

/// Builds the filter: `RUST_LOG` wins when set, else the config's levels.
pub fn filter(default_level: &str, modules: &[(String, String)]) -> EnvFilter {
    if let Ok(env) = std::env::var("RUST_LOG") {
        if let Ok(f) = EnvFilter::try_new(env) {
            return f;
        }
    }
    let mut spec = level(default_level).to_string();
    for (module, lvl) in modules {
        for t in targets(module) {
            spec.push_str(&format!(",{t}={}", level(lvl)));
        }
    }
    EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"))
}

pub fn init(default_level: &str, modules: &[(String, String)]) {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default_level, modules))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
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

/// Writes each formatted event to stderr and into the [`LogBuffer`].
#[derive(Clone)]
pub struct TeeWriter(pub std::sync::Arc<LogBuffer>);

impl std::io::Write for TeeWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.push(&String::from_utf8_lossy(buf));
        std::io::stderr().write(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for TeeWriter {
    type Writer = TeeWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Like [`init`], and keeps the last lines in `buffer` too.
pub fn init_with_buffer(default_level: &str, modules: &[(String, String)], buffer: std::sync::Arc<LogBuffer>) {
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter(default_level, modules))
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(TeeWriter(buffer))
        .try_init();
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
}
