//! Applies one parsed source onto a [`Config`], validating types and values with their location.

use std::time::Duration;

use super::tree::{Item, Key, Node};
use super::values::{check_listen, parse_duration, parse_size};
use super::{Config, ConfigError};

/// Top-level sections of later features: accepted with any content, without warnings.
const LATER_SECTIONS: &[&str] =
    &["mp4", "hls", "mjpeg", "srt", "ngrok", "hass", "homekit", "webtorrent", "srtp", "onvif"];

/// go2rtc keys that camrelay accepts but does not use yet (no warning, value ignored).
const LATER_RTSP_KEYS: &[&str] = &["pkt_size"];
/// go2rtc `log:` keys that are not module levels.
const LOG_OPTION_KEYS: &[&str] = &["format", "time"];

/// Accepted log levels (zerolog's names plus `off`/`warning`).
const LOG_LEVELS: &[&str] =
    &["trace", "debug", "info", "warn", "warning", "error", "fatal", "panic", "disabled", "off"];

struct Ctx<'a> {
    origin: &'a str,
    warnings: &'a mut Vec<String>,
}

impl Ctx<'_> {
    fn error(&self, item: &Item, key: &str, message: impl std::fmt::Display) -> ConfigError {
        ConfigError::Invalid {
            origin: self.origin.to_string(),
            line: item.line,
            column: item.column,
            message: format!("{message} (key {key})"),
        }
    }

    fn wrong_type(&self, item: &Item, key: &str, expected: &str) -> ConfigError {
        self.error(item, key, format!("invalid type: {}, expected {expected}", item.describe()))
    }

    fn unknown(&mut self, key: &Key, path: &str) {
        self.warnings.push(format!(
            "{}: line {}, column {}: unknown config key {path:?} (ignored)",
            self.origin, key.line, key.column
        ));
    }

    /// The entries of a section; null is an empty section.
    fn section<'i>(&self, item: &'i Item, key: &str) -> Result<&'i [(Key, Item)], ConfigError> {
        match &item.node {
            Node::Map(entries) => Ok(entries),
            Node::Null => Ok(&[]),
            _ => Err(self.wrong_type(item, key, "a mapping")),
        }
    }

    /// A string field: any scalar as written; null is `""` (as go2rtc's YAML decoder does).
    fn string(&self, item: &Item, key: &str) -> Result<String, ConfigError> {
        match &item.node {
            Node::Null => Ok(String::new()),
            Node::Seq(_) | Node::Map(_) => Err(self.wrong_type(item, key, "a string")),
            _ => Ok(item.scalar_text().unwrap_or_default()),
        }
    }

    fn listen(&self, item: &Item, key: &str) -> Result<String, ConfigError> {
        let listen = self.string(item, key)?.trim().to_string();
        check_listen(&listen).map_err(|why| {
            self.error(
                item,
                key,
                format!(
                    "invalid listen address {listen:?}: {why} (expected [host]:port, e.g. \":1984\" or \"127.0.0.1:1984\")"
                ),
            )
        })?;
        Ok(listen)
    }

    /// A list of strings, or one string as a list of one; empty entries are dropped.
    fn string_list(&self, item: &Item, key: &str) -> Result<Vec<String>, ConfigError> {
        let items = match &item.node {
            Node::Seq(items) => items.iter().collect::<Vec<_>>(),
            Node::Null => Vec::new(),
            _ => vec![item],
        };
        let mut out = Vec::new();
        for i in items {
            let s = self.string(i, key)?.trim().to_string();
            if !s.is_empty() {
                out.push(s);
            }
        }
        Ok(out)
    }

    /// A boolean field; null keeps the current value.
    fn boolean(&self, item: &Item, key: &str) -> Result<Option<bool>, ConfigError> {
        match &item.node {
            Node::Null => Ok(None),
            Node::Bool(b) => Ok(Some(*b)),
            _ => Err(self.wrong_type(item, key, "a boolean (true or false)")),
        }
    }

    /// A duration field: a number of seconds or a string like "5s"; null keeps the current value.
    fn duration(&self, item: &Item, key: &str) -> Result<Option<Duration>, ConfigError> {
        match &item.node {
            Node::Null => Ok(None),
            Node::Int(_) | Node::Float(_) | Node::Str(_) => {
                let text = item.scalar_text().unwrap_or_default();
                parse_duration(&text).map(Some).ok_or_else(|| {
                    self.error(
                        item,
                        key,
                        format!("invalid duration {text:?} (expected e.g. \"5s\", \"500ms\", \"2m\", \"1h\" or a number of seconds)"),
                    )
                })
            }
            _ => Err(self.wrong_type(item, key, "a duration")),
        }
    }

    /// A count or byte size; null keeps the current value. `min` is the smallest accepted value.
    fn size(&self, item: &Item, key: &str, min: usize, what: &str) -> Result<Option<usize>, ConfigError> {
        let value = match &item.node {
            Node::Null => return Ok(None),
            Node::Int(i) if *i < 0 => None,
            Node::Int(i) => Some(usize::try_from(*i).unwrap_or(usize::MAX)),
            Node::Str(s) if what == "a size in bytes" => parse_size(s),
            _ => return Err(self.wrong_type(item, key, what)),
        };
        match value {
            Some(v) if v >= min => Ok(Some(v)),
            _ => Err(self.error(
                item,
                key,
                format!("invalid value {}: must be at least {min}", item.scalar_text().unwrap_or_default()),
            )),
        }
    }

    fn log_level(&self, item: &Item, key: &str) -> Result<String, ConfigError> {
        let level = self.string(item, key)?.trim().to_ascii_lowercase();
        if level.is_empty() || LOG_LEVELS.contains(&level.as_str()) {
            Ok(level)
        } else {
            Err(self.error(
                item,
                key,
                format!("invalid log level {level:?} (expected one of {})", LOG_LEVELS.join(", ")),
            ))
        }
    }
}

/// Applies a parsed source onto `config`. Later calls override earlier ones field by field;
/// a stream entry replaces the whole stream (keeping its first position).
pub(crate) fn apply(
    root: &Item,
    config: &mut Config,
    origin: &str,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    if super::mediamtx::is_mediamtx(root) {
        return super::mediamtx::apply(root, config, origin);
    }
    let mut ctx = Ctx { origin, warnings };
    let sections = match &root.node {
        Node::Null => return Ok(()),
        Node::Map(entries) => entries,
        _ => {
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                line: root.line,
                column: root.column,
                message: format!(
                    "invalid type: {}, expected a mapping of config sections (api:, rtsp:, streams:...)",
                    root.describe()
                ),
            })
        }
    };
    for (key, item) in sections {
        match key.name.as_str() {
            "api" => apply_api(&mut ctx, item, config)?,
            "rtsp" => apply_rtsp(&mut ctx, item, config)?,
            "streams" => apply_streams(&ctx, item, config)?,
            "log" => apply_log(&mut ctx, item, config)?,
            "hub" => apply_hub(&mut ctx, item, config)?,
            "ffmpeg" => apply_ffmpeg(&ctx, item, config)?,
            "webrtc" => apply_webrtc(&mut ctx, item, config)?,
            "preload" => apply_preload(&ctx, item, config)?,
            "publish" => apply_publish(&ctx, item, config)?,
            "metrics" => apply_metrics(&mut ctx, item, config)?,
            "playback" => apply_playback(&mut ctx, item, config)?,
            "rtmp" => apply_rtmp(&mut ctx, item, config)?,
            "record" => apply_record(&mut ctx, item, config)?,
            "app" => {
                for (key, value) in ctx.section(item, "app")? {
                    match key.name.as_str() {
                        "modules" => config.app.modules = ctx.string_list(value, "app.modules")?,
                        _ => ctx.unknown(key, &format!("app.{}", key.name)),
                    }
                }
            }
            "exec" => {
                for (key, value) in ctx.section(item, "exec")? {
                    match key.name.as_str() {
                        "allow_paths" => config.exec.allow_paths = ctx.string_list(value, "exec.allow_paths")?,
                        _ => ctx.unknown(key, &format!("exec.{}", key.name)),
                    }
                }
            }
            "demo" => {
                if let Some(demo) = ctx.boolean(item, "demo")? {
                    config.demo = Some(demo);
                }
            }
            "srt" => apply_srt(&mut ctx, item, config)?,
            name if LATER_SECTIONS.contains(&name) => {}
            name => ctx.unknown(key, name),
        }
    }
    Ok(())
}

fn apply_api(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    let api = &mut config.api;
    for (key, value) in ctx.section(item, "api")? {
        let path = format!("api.{}", key.name);
        match key.name.as_str() {
            "listen" => api.listen = ctx.listen(value, &path)?,
            "username" => api.username = ctx.string(value, &path)?,
            "password" => api.password = ctx.string(value, &path)?,
            "base_path" => api.base_path = ctx.string(value, &path)?,
            "static_dir" => api.static_dir = ctx.string(value, &path)?,
            "origin" => api.origin = ctx.string(value, &path)?,
            "local_auth" => set(&mut api.local_auth, ctx.boolean(value, &path)?),
            "allow_exec" => set(&mut api.allow_exec, ctx.boolean(value, &path)?),
            "unix_listen" => api.unix_listen = ctx.string(value, &path)?.trim().to_string(),
            "allow_paths" => api.allow_paths = ctx.string_list(value, &path)?,
            "tls_listen" => api.tls.listen = ctx.listen(value, &path)?,
            "tls_cert" => api.tls.cert = ctx.string(value, &path)?,
            "tls_key" => api.tls.key = ctx.string(value, &path)?,
            "tls_self_signed" => set(&mut api.tls.self_signed, ctx.boolean(value, &path)?),
            _ => ctx.unknown(key, &path),
        }
    }
    Ok(())
}

fn apply_rtsp(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    // RTSPS (`tls_listen`, `tls_cert`, `tls_key`, `tls_self_signed`, as `rtmp:`'s) lives beside the
    // other TLS listeners.
    let mut tls = std::mem::take(&mut config.servers.rtsps);
    let rtsp = &mut config.rtsp;
    for (key, value) in ctx.section(item, "rtsp")? {
        let path = format!("rtsp.{}", key.name);
        match key.name.as_str() {
            "listen" => rtsp.listen = ctx.listen(value, &path)?,
            "username" => rtsp.username = ctx.string(value, &path)?,
            "password" => rtsp.password = ctx.string(value, &path)?,
            "default_query" => rtsp.default_query = ctx.string(value, &path)?,
            "local_auth" => set(&mut rtsp.local_auth, ctx.boolean(value, &path)?),
            "rtp_listen" => rtsp.rtp_listen = ctx.listen(value, &path)?,
            "rtcp_listen" => rtsp.rtcp_listen = ctx.listen(value, &path)?,
            "allow_any_publish" => set(&mut rtsp.allow_any_publish, ctx.boolean(value, &path)?),
            "auth_methods" => {
                let items = match &value.node {
                    Node::Seq(items) => items.iter().collect::<Vec<_>>(),
                    _ => vec![value],
                };
                let mut methods = Vec::new();
                for item in items {
                    let m = ctx.string(item, &path)?.trim().to_ascii_lowercase();
                    if m != "basic" && m != "digest" {
                        return Err(ctx.error(
                            item,
                            &path,
                            format!("unknown auth method {m:?} (expected basic or digest)"),
                        ));
                    }
                    methods.push(m);
                }
                if methods.is_empty() {
                    return Err(ctx.error(value, &path, "at least one auth method is needed (basic, digest)"));
                }
                rtsp.auth_methods = methods;
            }
            "session_timeout" => {
                if let Some(timeout) = ctx.duration(value, &path)? {
                    if timeout.is_zero() {
                        return Err(ctx.error(value, &path, "invalid duration: must be greater than zero"));
                    }
                    rtsp.session_timeout = timeout;
                }
            }
            "max_connections" => set(&mut rtsp.max_connections, ctx.size(value, &path, 1, "a number of connections")?),
            "max_connections_per_ip" => {
                set(&mut rtsp.max_connections_per_ip, ctx.size(value, &path, 1, "a number of connections")?)
            }
            "request_timeout" => {
                if let Some(timeout) = ctx.duration(value, &path)? {
                    if timeout.is_zero() {
                        return Err(ctx.error(value, &path, "invalid duration: must be greater than zero"));
                    }
                    rtsp.request_timeout = timeout;
                }
            }
            "tls_listen" => tls.listen = ctx.listen(value, &path)?,
            "tls_cert" => tls.cert = ctx.string(value, &path)?,
            "tls_key" => tls.key = ctx.string(value, &path)?,
            "tls_self_signed" => set(&mut tls.self_signed, ctx.boolean(value, &path)?),
            "multicast_ip_range" => {
                let range = ctx.string(value, &path)?.trim().to_string();
                if !range.is_empty() {
                    crate::servers::rtsp::multicast::parse_range(&range).map_err(|e| ctx.error(value, &path, e))?;
                }
                rtsp.multicast.ip_range = range;
            }
            "multicast_rtp_port" | "multicast_rtcp_port" => {
                if let Some(port) = ctx.size(value, &path, 1, "a port")? {
                    let port = u16::try_from(port)
                        .map_err(|_| ctx.error(value, &path, format!("invalid port {port}: at most 65535")))?;
                    match key.name.as_str() {
                        "multicast_rtp_port" => rtsp.multicast.rtp_port = port,
                        _ => rtsp.multicast.rtcp_port = port,
                    }
                }
            }
            name if LATER_RTSP_KEYS.contains(&name) => {}
            _ => ctx.unknown(key, &path),
        }
    }
    config.servers.rtsps = tls;
    Ok(())
}

fn apply_streams(ctx: &Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "streams")? {
        let path = format!("streams.{}", key.name);
        let expected = "a source URL, a list of source URLs or nothing";
        let sources = match &value.node {
            Node::Null => Vec::new(),
            Node::Seq(items) => {
                let mut sources = Vec::with_capacity(items.len());
                for source in items {
                    match &source.node {
                        // An empty list item (`- `) is not a source.
                        Node::Null => {}
                        Node::Seq(_) | Node::Map(_) => return Err(ctx.wrong_type(source, &path, "a source URL")),
                        _ => sources.push(source.scalar_text().unwrap_or_default()),
                    }
                }
                sources
            }
            Node::Map(_) => return Err(ctx.wrong_type(value, &path, expected)),
            _ => {
                let source = value.scalar_text().unwrap_or_default();
                if source.trim().is_empty() {
                    Vec::new()
                } else {
                    vec![source]
                }
            }
        };
        let sources: Vec<String> =
            sources.into_iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        match config.streams.iter_mut().find(|(name, _)| *name == key.name) {
            Some(stream) => stream.1 = sources,
            None => config.streams.push((key.name.clone(), sources)),
        }
    }
    Ok(())
}

/// `preload:`: stream name → query (`video=h264&audio=opus`); empty means `video&audio`.
fn apply_preload(ctx: &Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "preload")? {
        let path = format!("preload.{}", key.name);
        let query = ctx.string(value, &path)?.trim().to_string();
        match config.preload.iter_mut().find(|(name, _)| *name == key.name) {
            Some(entry) => entry.1 = query,
            None => config.preload.push((key.name.clone(), query)),
        }
    }
    Ok(())
}

/// One `record:` key (the section's or a stream's) as the MediaMTX path key the recorder reads; `false`
/// when the key is not a record key.
fn record_key(
    ctx: &Ctx,
    key: &str,
    value: &Item,
    path: &str,
    out: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<bool, ConfigError> {
    use serde_json::Value;
    let Some((_, mtx_key)) = crate::record::GO2RTC_KEYS.iter().find(|(k, _)| *k == key) else {
        return Ok(false);
    };
    let v = match key {
        "continuous" => match ctx.boolean(value, path)? {
            Some(b) => Value::Bool(b),
            None => return Ok(true),
        },
        "max_part_size" => match ctx.size(value, path, 1000, "a size in bytes")? {
            Some(n) => Value::String(n.to_string()),
            None => return Ok(true),
        },
        "path" | "format" => Value::String(ctx.string(value, path)?.trim().to_string()),
        // Durations, and days (`7d`) as MediaMTX's record durations take them.
        _ => match value.scalar_text().as_deref().and_then(|t| t.trim().strip_suffix('d')?.parse::<u64>().ok()) {
            Some(days) => Value::String(format!("{days}d")),
            None => match ctx.duration(value, path)? {
                Some(d) => Value::String(format!("{}ms", d.as_millis())),
                None => return Ok(true),
            },
        },
    };
    out.insert(mtx_key.to_string(), v);
    Ok(true)
}

/// `record:` (camrelay's): the recorder's settings for every stream, and `streams:` (a list of names,
/// or names with their own settings) to record; see docs/record.md.
fn apply_record(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "record")? {
        let path = format!("record.{}", key.name);
        if key.name == "streams" {
            let entries: Vec<(String, Option<&Item>)> = match &value.node {
                Node::Null => Vec::new(),
                Node::Seq(items) => items
                    .iter()
                    .map(|i| Ok((ctx.string(i, &path)?.trim().to_string(), None)))
                    .collect::<Result<_, _>>()?,
                Node::Map(entries) => entries.iter().map(|(k, v)| (k.name.clone(), Some(v))).collect(),
                _ => vec![(ctx.string(value, &path)?.trim().to_string(), None)],
            };
            for (name, own) in entries.into_iter().filter(|(n, _)| !n.is_empty()) {
                let mut keys = serde_json::Map::new();
                if let Some(own) = own {
                    let stream_path = format!("{path}.{name}");
                    for (k, v) in ctx.section(own, &stream_path)? {
                        let p = format!("{stream_path}.{}", k.name);
                        if !record_key(ctx, &k.name, v, &p, &mut keys)? {
                            ctx.unknown(k, &p);
                        }
                    }
                }
                match config.record.streams.iter_mut().find(|(n, _)| *n == name) {
                    Some(entry) => entry.1 = keys,
                    None => config.record.streams.push((name, keys)),
                }
            }
        } else if !record_key(ctx, &key.name, value, &path, &mut config.record.defaults)? {
            ctx.unknown(key, &path);
        }
    }
    let names = std::iter::once(String::new()).chain(config.record.streams.iter().map(|(n, _)| n.clone()));
    for name in names.collect::<Vec<_>>() {
        crate::record::stream_settings(config, &name).map_err(|e| {
            let key = if name.is_empty() { "record".to_string() } else { format!("record.streams.{name}") };
            ctx.error(item, &key, e)
        })?;
    }
    Ok(())
}

/// `metrics:` — `listen: ":9998"`, or `true`/`false` as in MediaMTX (`true` listens on `:9998`).
fn apply_metrics(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    if let Node::Bool(on) = item.node {
        config.servers.metrics_listen = if on { ":9998".to_string() } else { String::new() };
        return Ok(());
    }
    for (key, value) in ctx.section(item, "metrics")? {
        match key.name.as_str() {
            "listen" => config.servers.metrics_listen = ctx.listen(value, "metrics.listen")?,
            _ => ctx.unknown(key, &format!("metrics.{}", key.name)),
        }
    }
    Ok(())
}

/// `playback:` — `listen: ":9996"` (the recordings server; off by default), or `true`/`false`.
fn apply_playback(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    if let Node::Bool(on) = item.node {
        config.servers.playback_listen = if on { ":9996".to_string() } else { String::new() };
        return Ok(());
    }
    for (key, value) in ctx.section(item, "playback")? {
        match key.name.as_str() {
            "listen" => config.servers.playback_listen = ctx.listen(value, "playback.listen")?,
            _ => ctx.unknown(key, &format!("playback.{}", key.name)),
        }
    }
    Ok(())
}

/// `publish:`: stream name → a destination URL or a list of them (go2rtc's "Publish stream").
fn apply_publish(ctx: &Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "publish")? {
        let path = format!("publish.{}", key.name);
        if matches!(value.node, Node::Map(_)) {
            return Err(ctx.wrong_type(value, &path, "a destination URL or a list of them"));
        }
        let urls = ctx.string_list(value, &path)?;
        match config.publish.iter_mut().find(|(name, _)| *name == key.name) {
            Some(entry) => entry.1 = urls,
            None => config.publish.push((key.name.clone(), urls)),
        }
    }
    Ok(())
}

fn apply_log(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    let log = &mut config.log;
    for (key, value) in ctx.section(item, "log")? {
        let path = format!("log.{}", key.name);
        match key.name.as_str() {
            "level" => log.level = ctx.log_level(value, &path)?,
            "output" => {
                let text = ctx.string(value, &path)?;
                log.output = crate::logging::Output::parse(&text).ok_or_else(|| {
                    ctx.error(value, &path, format!("invalid log output {text:?} (expected stdout or stderr)"))
                })?;
            }
            // go2rtc's `format: json` (zerolog's JSON lines); `color` and `text` are the console format.
            "format" => log.sinks.structured = ctx.string(value, &path)?.eq_ignore_ascii_case("json"),
            name if LOG_OPTION_KEYS.contains(&name) => {}
            name => {
                let level = ctx.log_level(value, &path)?;
                match log.modules.iter_mut().find(|(module, _)| module == name) {
                    Some(module) => module.1 = level,
                    None => log.modules.push((name.to_string(), level)),
                }
            }
        }
    }
    Ok(())
}

fn apply_hub(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    let hub = &mut config.hub;
    for (key, value) in ctx.section(item, "hub")? {
        let path = format!("hub.{}", key.name);
        match key.name.as_str() {
            "linger" => set(&mut hub.linger, ctx.duration(value, &path)?),
            "gop_cache_bytes" => set(&mut hub.gop_cache_bytes, ctx.size(value, &path, 0, "a size in bytes")?),
            "reader_queue" => set(&mut hub.reader_queue, ctx.size(value, &path, 1, "a number of frames")?),
            "publisher_grace" => set(&mut hub.publisher_grace, ctx.duration(value, &path)?),
            _ => ctx.unknown(key, &path),
        }
    }
    Ok(())
}

/// `ffmpeg:`: `bin` plus any number of templates (go2rtc reads the section as a string map).
fn apply_ffmpeg(ctx: &Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    let ffmpeg = &mut config.ffmpeg;
    for (key, value) in ctx.section(item, "ffmpeg")? {
        let path = format!("ffmpeg.{}", key.name);
        let text = ctx.string(value, &path)?;
        if key.name == "bin" {
            if !text.trim().is_empty() {
                ffmpeg.bin = text.trim().to_string();
            }
            continue;
        }
        match ffmpeg.templates.iter_mut().find(|(name, _)| *name == key.name) {
            Some(template) => template.1 = text,
            None => ffmpeg.templates.push((key.name.clone(), text)),
        }
    }
    Ok(())
}

/// `webrtc:`: `listen` (with an optional `/udp` or `/tcp`), `candidates`, `ice_servers`, `filters`,
/// `max_sessions`, `audio_transcode`.
fn apply_webrtc(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    let webrtc = &mut config.webrtc;
    for (key, value) in ctx.section(item, "webrtc")? {
        let path = format!("webrtc.{}", key.name);
        match key.name.as_str() {
            "listen" => {
                let text = ctx.string(value, &path)?.trim().to_string();
                let (address, _, _) = super::split_transport(&text);
                check_listen(address).map_err(|why| {
                    ctx.error(
                        value,
                        &path,
                        format!(
                            "invalid listen address {text:?}: {why} (expected [host]:port[/udp|/tcp], e.g. \":8555\")"
                        ),
                    )
                })?;
                webrtc.listen = text;
            }
            "candidates" => webrtc.candidates = ctx.string_list(value, &path)?,
            "ice_servers" => webrtc.ice_servers = ice_servers(ctx, value, &path)?,
            "max_sessions" => set(&mut webrtc.max_sessions, ctx.size(value, &path, 1, "a number of sessions")?),
            "audio_transcode" => set(&mut webrtc.audio_transcode, ctx.boolean(value, &path)?),
            "filters" => {
                for (key, value) in ctx.section(value, &path)? {
                    let path = format!("webrtc.filters.{}", key.name);
                    let filters = &mut webrtc.filters;
                    match key.name.as_str() {
                        "candidates" => filters.candidates = ctx.string_list(value, &path)?,
                        "interfaces" => filters.interfaces = ctx.string_list(value, &path)?,
                        "ips" => filters.ips = ctx.string_list(value, &path)?,
                        "networks" => {
                            filters.networks = ctx.string_list(value, &path)?;
                            if let Some(bad) = filters
                                .networks
                                .iter()
                                .find(|n| !["udp4", "udp6", "tcp4", "tcp6"].contains(&n.as_str()))
                            {
                                return Err(ctx.error(
                                    value,
                                    &path,
                                    format!("unknown network {bad:?} (expected udp4, udp6, tcp4 or tcp6)"),
                                ));
                            }
                        }
                        "loopback" => set(&mut filters.loopback, ctx.boolean(value, &path)?),
                        // pion's random-port range: every peer shares the one `listen` port here.
                        "udp_ports" => {}
                        _ => ctx.unknown(key, &path),
                    }
                }
            }
            _ => ctx.unknown(key, &path),
        }
    }
    Ok(())
}

/// `rtmp:` (go2rtc's): `listen` (off unless set, as in go2rtc). It sets the same listener as MediaMTX's
/// `rtmp`/`rtmpAddress`. camrelay's own `tls_listen`/`tls_cert`/`tls_key` (named as go2rtc's `api:`
/// ones) add the RTMPS listener.
fn apply_rtmp(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "rtmp")? {
        let path = format!("rtmp.{}", key.name);
        match key.name.as_str() {
            "listen" => {
                let text = ctx.string(value, &path)?.trim().to_string();
                if !text.is_empty() {
                    check_listen(&text).map_err(|why| {
                        ctx.error(value, &path, format!("invalid listen address {text:?}: {why} (e.g. \":1935\")"))
                    })?;
                }
                config.servers.rtmp_listen = text;
            }
            "tls_listen" => config.servers.rtmps.listen = ctx.listen(value, &path)?,
            "tls_cert" => config.servers.rtmps.cert = ctx.string(value, &path)?,
            "tls_key" => config.servers.rtmps.key = ctx.string(value, &path)?,
            "tls_self_signed" => set(&mut config.servers.rtmps.self_signed, ctx.boolean(value, &path)?),
            _ => ctx.unknown(key, &path),
        }
    }
    Ok(())
}

/// `srt:` (camrelay's): `listen`, `passphrase`, `latency` (docs/srt.md).
fn apply_srt(ctx: &mut Ctx, item: &Item, config: &mut Config) -> Result<(), ConfigError> {
    for (key, value) in ctx.section(item, "srt")? {
        let path = format!("srt.{}", key.name);
        match key.name.as_str() {
            "listen" => config.servers.srt_listen = ctx.listen(value, &path)?,
            "passphrase" => {
                let text = ctx.string(value, &path)?;
                if !text.is_empty() {
                    crate::servers::srt::passphrase(&path, &text).map_err(|e| ctx.error(value, &path, e))?;
                }
                config.srt.passphrase = text;
            }
            "latency" => {
                if let Some(d) = ctx.duration(value, &path)? {
                    config.srt.latency = d;
                }
            }
            _ => ctx.unknown(key, &path),
        }
    }
    Ok(())
}

/// `ice_servers:` — a list of `{urls: [..] | "..", username, credential}`.
fn ice_servers(ctx: &mut Ctx, value: &Item, path: &str) -> Result<Vec<super::IceServer>, ConfigError> {
    let items = match &value.node {
        Node::Seq(items) => items.iter().collect::<Vec<_>>(),
        Node::Null => Vec::new(),
        _ => return Err(ctx.wrong_type(value, path, "a list of {urls, username, credential}")),
    };
    let mut out = Vec::new();
    for item in items {
        let mut server = super::IceServer::default();
        for (key, value) in ctx.section(item, path)? {
            let path = format!("{path}.{}", key.name);
            match key.name.as_str() {
                "urls" | "url" => server.urls = ctx.string_list(value, &path)?,
                "username" => server.username = ctx.string(value, &path)?,
                "credential" => server.credential = ctx.string(value, &path)?,
                _ => ctx.unknown(key, &path),
            }
        }
        if let Some(bad) =
            server.urls.iter().find(|u| !["stun:", "stuns:", "turn:", "turns:"].iter().any(|p| u.starts_with(p)))
        {
            return Err(ctx.error(
                item,
                path,
                format!("ICE server URL {bad:?} must start with stun:, stuns:, turn: or turns:"),
            ));
        }
        if !server.urls.is_empty() {
            out.push(server);
        }
    }
    Ok(out)
}

fn set<T>(field: &mut T, value: Option<T>) {
    if let Some(value) = value {
        *field = value;
    }
}
