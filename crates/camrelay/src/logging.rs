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
