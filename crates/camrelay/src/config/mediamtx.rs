//! The MediaMTX dialect: a `mediamtx.yml` read as is and mapped onto the same [`Config`] model as a
//! `go2rtc.yaml` (DESIGN.md, "One model, two dialects").
//!
//! MediaMTX's own sample config (`mediamtx-1.17.0.yml`, embedded) is the table of keys: every global
//! key and every path key it has, with its default and type. A file's keys are checked against it (an
//! unknown or mistyped key is an error naming the key and line, as MediaMTX refuses them too), the
//! values are merged over the defaults (kept as JSON for the `/v3/config` API) and then mapped: the
//! listeners (MediaMTX's ports), log level, queue size, WebRTC settings, and each `paths:` entry to a
//! stream (literal names), a path rule (`~regex`, `all_others`) or a preload (`sourceOnDemand: false`).
//! Keys of features camrelay does not have yet are parsed and kept; they take effect when those land.

use serde_json::{Map, Value};
use std::sync::OnceLock;
use std::time::Duration;

use super::tree::{self, Item, Node};
use super::{Config, ConfigError, Dialect};

/// The embedded sample: MediaMTX's keys and defaults.
const SAMPLE: &str = include_str!("mediamtx-1.17.0.yml");

/// Defaults of the global settings and of `pathDefaults`, from [`SAMPLE`].
struct Defaults {
    globals: Map<String, Value>,
    path: Map<String, Value>,
}

fn defaults() -> &'static Defaults {
    static DEFAULTS: OnceLock<Defaults> = OnceLock::new();
    DEFAULTS.get_or_init(|| {
        // The sample is part of the binary and parsed by a test: it cannot fail at run time.
        let root = tree::parse(SAMPLE, "mediamtx sample").expect("embedded MediaMTX sample parses");
        let mut globals = Map::new();
        let mut path = Map::new();
        if let Node::Map(entries) = &root.node {
            for (key, item) in entries {
                match key.name.as_str() {
                    "paths" => {}
                    "pathDefaults" => {
                        if let Node::Map(p) = &item.node {
                            for (k, v) in p {
                                path.insert(k.name.clone(), to_json(v));
                            }
                        }
                    }
                    name => {
                        globals.insert(name.to_string(), to_json(item));
                    }
                }
            }
        }
        Defaults { globals, path }
    })
}

/// Keys that only a MediaMTX config has at its top level.
pub(super) fn is_mediamtx(root: &Item) -> bool {
    let Node::Map(entries) = &root.node else { return false };
    // go2rtc's sections are lowercase; MediaMTX's globals are camelCase, beside `paths`.
    let distinctive = entries
        .iter()
        .any(|(k, _)| k.name == "paths" || k.name == "pathDefaults" || k.name.chars().any(|c| c.is_ascii_uppercase()));
    // A file of switches only (`rtsp: false`, `api: true`) is MediaMTX's when every key is one of its
    // settings and a switch is a boolean (go2rtc's `rtsp:`/`api:` are mappings).
    let switches_only = !entries.is_empty()
        && entries.iter().all(|(k, _)| defaults().globals.contains_key(&k.name))
        && entries.iter().any(|(_, v)| matches!(v.node, Node::Bool(_)));
    distinctive || switches_only
}

/// A parsed MediaMTX config: every global and path setting, defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediamtxConfig {
    /// Global settings by MediaMTX name (all of them).
    pub globals: Map<String, Value>,
    /// `pathDefaults` (all keys).
    pub path_defaults: Map<String, Value>,
    /// `paths` in file order: name (`cam`, `~^cam(\d+)$`, `all_others`) and its own keys only.
    pub paths: Vec<(String, Map<String, Value>)>,
}

impl MediamtxConfig {
    /// MediaMTX's defaults (the embedded sample's globals and `pathDefaults`), no paths: what the
    /// `/v3` API shows for a go2rtc config.
    pub fn defaults() -> MediamtxConfig {
        let d = defaults();
        MediamtxConfig { globals: d.globals.clone(), path_defaults: d.path.clone(), paths: Vec::new() }
    }

    /// A path's settings: `pathDefaults` with the path's own keys over them.
    pub fn path_settings(&self, name: &str) -> Option<Map<String, Value>> {
        let own = &self.paths.iter().find(|(n, _)| n == name)?.1;
        let mut merged = self.path_defaults.clone();
        for (k, v) in own {
            merged.insert(k.clone(), v.clone());
        }
        Some(merged)
    }

    pub fn global_str(&self, key: &str) -> String {
        value_str(self.globals.get(key))
    }

    pub fn global_bool(&self, key: &str) -> bool {
        self.globals.get(key).and_then(Value::as_bool).unwrap_or(false)
    }
}

/// One `paths:` entry mapped onto the model.
#[derive(Debug, Clone, PartialEq)]
pub struct PathRule {
    /// `~regex` (without the `~`), `all_others`, or a literal name.
    pub name: String,
    /// The source URL in our scheme (`publisher` = none).
    pub source: String,
    pub source_on_demand: bool,
    pub max_readers: usize,
    pub override_publisher: bool,
    /// `sourceOnDemandStartTimeout`: how long a reader waits for the source.
    pub start_timeout: Duration,
    /// `sourceOnDemandCloseAfter`: how long the source stays after its last reader.
    pub close_after: Duration,
    /// `sourceRedirect` of a `source: redirect` path: where RTSP readers are sent.
    pub redirect: String,
    /// `alwaysAvailable` (+ `alwaysAvailableTracks`): the offline slate of the path.
    pub always_available: Option<std::sync::Arc<crate::sources::offline::Slate>>,
    /// `fallback` (deprecated in MediaMTX, still honoured): where RTSP readers are sent while the path
    /// has nothing to read, a path (`/other`) on this server or an `rtsp(s)://` URL.
    pub fallback: String,
}

impl PathRule {
    pub fn is_pattern(&self) -> bool {
        self.name.starts_with('~') || self.name == "all_others" || self.name == "all"
    }
}

/// `alwaysAvailable`, `alwaysAvailableTracks`, `alwaysAvailableFile` of a path: its slate, if any.
fn always_available(
    settings: &serde_json::Map<String, Value>,
) -> Result<Option<std::sync::Arc<crate::sources::offline::Slate>>, String> {
    if !settings.get("alwaysAvailable").and_then(Value::as_bool).unwrap_or(false) {
        return Ok(None);
    }
    let file = value_str(settings.get("alwaysAvailableFile"));
    if !file.is_empty() {
        return crate::sources::offline::Slate::from_file(std::path::Path::new(&file))
            .map(|s| Some(std::sync::Arc::new(s)));
    }
    let list = settings.get("alwaysAvailableTracks").and_then(Value::as_array).cloned().unwrap_or_default();
    let tracks = crate::sources::offline::parse_tracks(&list)?;
    crate::sources::offline::Slate::new(&tracks).map(|s| Some(std::sync::Arc::new(s)))
}

fn value_str(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// A located scalar or collection as JSON (numbers as numbers, durations stay strings as MediaMTX
/// writes them).
fn to_json(item: &Item) -> Value {
    match &item.node {
        Node::Null => Value::Null,
        Node::Bool(b) => Value::Bool(*b),
        Node::Int(i) => i64::try_from(*i).map(Value::from).unwrap_or_else(|_| Value::String(i.to_string())),
        Node::Float(f) => serde_json::Number::from_f64(*f).map(Value::Number).unwrap_or(Value::Null),
        Node::Str(s) => Value::String(s.clone()),
        Node::Seq(items) => Value::Array(items.iter().map(to_json).collect()),
        Node::Map(entries) => Value::Object(entries.iter().map(|(k, v)| (k.name.clone(), to_json(v))).collect()),
    }
}

fn error(origin: &str, item: &Item, message: String) -> ConfigError {
    ConfigError::Invalid { origin: origin.to_string(), line: item.line, column: item.column, message }
}

/// Checks `value` against the type of its default and returns it as JSON.
fn typed(origin: &str, key: &str, value: &Item, default: &Value) -> Result<Value, ConfigError> {
    let got = to_json(value);
    let ok = match (default, &got) {
        // Empty in the sample (`runOnConnect:`, `sourceFingerprint:`): a string or nothing.
        (Value::Null, Value::String(_) | Value::Null) => true,
        (_, Value::Null) => true,
        (Value::Bool(_), Value::Bool(_)) => true,
        (Value::Number(_), Value::Number(_)) => true,
        (Value::String(_), Value::String(_) | Value::Number(_) | Value::Bool(_)) => true,
        (Value::Array(_), Value::Array(_)) => true,
        (Value::Object(_), Value::Object(_)) => true,
        _ => false,
    };
    if !ok {
        let expected = match default {
            Value::Bool(_) => "a boolean (true or false)",
            Value::Number(_) => "a number",
            Value::Array(_) => "a list",
            Value::Object(_) => "a mapping",
            _ => "a string",
        };
        return Err(error(
            origin,
            value,
            format!("invalid type: {}, expected {expected} (key {key})", value.describe()),
        ));
    }
    // Strings the sample writes as strings stay strings (`rtspEncryption: "no"`, `'4.1'`).
    let got = match (default, got) {
        (Value::String(_), Value::Number(n)) => Value::String(value.scalar_text().unwrap_or_else(|| n.to_string())),
        (Value::String(_), Value::Bool(b)) => Value::String(value.scalar_text().unwrap_or_else(|| b.to_string())),
        (Value::Array(_), Value::Null) => Value::Array(Vec::new()),
        (_, got) => got,
    };
    // Durations must parse (`10s`, `1h`, `200ms`, `1d`).
    if let (Value::String(d), Value::String(s)) = (default, &got) {
        if parse_mediamtx_duration(d).is_some() && !s.is_empty() && parse_mediamtx_duration(s).is_none() {
            return Err(error(
                origin,
                value,
                format!("invalid duration {s:?} (key {key}; e.g. \"10s\", \"200ms\", \"1h\", \"1d\")"),
            ));
        }
    }
    Ok(got)
}

/// MediaMTX durations: Go's (`1h2m3s`, `200ms`) plus `d` for days.
pub fn parse_mediamtx_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if let Some(days) = s.strip_suffix('d') {
        return days.parse::<u64>().ok().map(|d| Duration::from_secs(d * 86_400));
    }
    if !s.ends_with(|c: char| c.is_ascii_alphabetic()) {
        return None;
    }
    super::values::parse_duration(s)
}

/// Merges a MediaMTX file (or inline text) into `config`, switching it to the MediaMTX dialect.
pub(super) fn apply(root: &Item, config: &mut Config, origin: &str) -> Result<(), ConfigError> {
    let defaults = defaults();
    let mtx = config.mediamtx.get_or_insert_with(|| MediamtxConfig {
        globals: defaults.globals.clone(),
        path_defaults: defaults.path.clone(),
        paths: Vec::new(),
    });
    let Node::Map(entries) = &root.node else {
        return Err(error(origin, root, "expected a mapping of MediaMTX settings".into()));
    };
    for (key, item) in entries {
        match key.name.as_str() {
            "pathDefaults" => {
                for (k, v) in section(origin, item, "pathDefaults")? {
                    let default = path_default(origin, &k.name, k.line, k.column, "pathDefaults")?;
                    let path = format!("pathDefaults.{}", k.name);
                    mtx.path_defaults.insert(k.name.clone(), typed(origin, &path, v, default)?);
                }
            }
            "paths" => {
                for (name, settings) in section(origin, item, "paths")? {
                    let mut own = Map::new();
                    for (k, v) in section(origin, settings, &format!("paths.{}", name.name))? {
                        let where_ = format!("paths.{}", name.name);
                        let default = path_default(origin, &k.name, k.line, k.column, &where_)?;
                        own.insert(k.name.clone(), typed(origin, &format!("{where_}.{}", k.name), v, default)?);
                    }
                    if let Some(pattern) = name.name.strip_prefix('~') {
                        if let Err(e) = regex::Regex::new(pattern) {
                            return Err(error(
                                origin,
                                settings,
                                format!("invalid path regular expression {pattern:?}: {e} (key paths.{})", name.name),
                            ));
                        }
                    }
                    match mtx.paths.iter_mut().find(|(n, _)| *n == name.name) {
                        Some(existing) => existing.1 = own,
                        None => mtx.paths.push((name.name.clone(), own)),
                    }
                }
            }
            name => {
                let Some(default) = defaults.globals.get(name) else {
                    return Err(ConfigError::Invalid {
                        origin: origin.to_string(),
                        line: key.line,
                        column: key.column,
                        message: format!("unknown MediaMTX setting {name:?}"),
                    });
                };
                mtx.globals.insert(name.to_string(), typed(origin, name, item, default)?);
            }
        }
    }
    // Auth: internal users, JWT or the HTTP callback; another method asked for and ignored would leave
    // the server open, so such a config is refused.
    let method = mtx.global_str("authMethod");
    let refuse = |message: String| Err(ConfigError::Unlocated { origin: origin.to_string(), message });
    match method.as_str() {
        "" | "internal" => {}
        "jwt" => {
            let url = mtx.global_str("authJWTJWKS");
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return refuse(format!(
                    "authMethod \"jwt\" needs authJWTJWKS, an http:// or https:// URL (got {url:?})"
                ));
            }
            let fingerprint = mtx.global_str("authJWTJWKSFingerprint");
            if !fingerprint.is_empty() {
                crate::auth::parse_fingerprint(&fingerprint).map_err(|e| ConfigError::Unlocated {
                    origin: origin.to_string(),
                    message: format!("authJWTJWKSFingerprint: {e}"),
                })?;
            }
        }
        "http" => {
            let url = mtx.global_str("authHTTPAddress");
            if !url.starts_with("http://") && !url.starts_with("https://") {
                return refuse(format!(
                    "authMethod \"http\" needs authHTTPAddress, an http:// or https:// URL (got {:?})",
                    crate::secrets::mask_url(&url)
                ));
            }
            let fingerprint = mtx.global_str("authHTTPFingerprint");
            if !fingerprint.is_empty() {
                crate::auth::parse_fingerprint(&fingerprint).map_err(|e| ConfigError::Unlocated {
                    origin: origin.to_string(),
                    message: format!("authHTTPFingerprint: {e}"),
                })?;
            }
        }
        _ => {
            return refuse(format!(
                "authMethod {method:?} is not supported (\"internal\" with authInternalUsers, \"http\" or \"jwt\")"
            ))
        }
    }
    for key in ["authHTTPExclude", "authJWTExclude"] {
        if let Some(list) = mtx.globals.get(key) {
            crate::auth::internal_users(&serde_json::json!([{ "user": "any", "permissions": list }]))
                .map_err(|e| ConfigError::Unlocated { origin: origin.to_string(), message: format!("{key}: {e}") })?;
        }
    }
    crate::auth::internal_users(mtx.globals.get("authInternalUsers").unwrap_or(&Value::Null))
        .map_err(|message| ConfigError::Unlocated { origin: origin.to_string(), message })?;
    config.dialect = Dialect::Mediamtx;
    map_onto_model(config, origin)
}

fn section<'a>(origin: &str, item: &'a Item, key: &str) -> Result<&'a [(tree::Key, Item)], ConfigError> {
    match &item.node {
        Node::Map(entries) => Ok(entries),
        Node::Null => Ok(&[]),
        _ => Err(error(origin, item, format!("invalid type: {}, expected a mapping (key {key})", item.describe()))),
    }
}

/// Path keys camrelay adds to MediaMTX's sample file (accepted in a MediaMTX file, absent from
/// `/v3/config` unless set).
fn extension_path_keys() -> &'static Map<String, Value> {
    static KEYS: OnceLock<Map<String, Value>> = OnceLock::new();
    // `recordPre`: the pre-record ring of event recordings (docs/record.md). `fallback`: MediaMTX's
    // deprecated key (in its API schema, no longer in its sample file), still honoured.
    KEYS.get_or_init(|| {
        [("recordPre", "0s"), ("fallback", "")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.into())))
            .collect()
    })
}

fn path_default<'a>(origin: &str, key: &str, line: u64, column: u64, where_: &str) -> Result<&'a Value, ConfigError> {
    defaults().path.get(key).or_else(|| extension_path_keys().get(key)).ok_or_else(|| ConfigError::Invalid {
        origin: origin.to_string(),
        line,
        column,
        message: format!("unknown path setting {key:?} (in {where_})"),
    })
}

/// A path's source in camrelay's source schemes with the path's source settings as URL parameters:
/// `rtspTransport` (`udp`/`tcp`) as `#transport=`, `sourceFingerprint` as `#fingerprint=` (the
/// certificate of an `rtsps://` or `rtmps://` source pinned by its SHA-256). `automatic` keeps the
/// client's default (TCP); `multicast` as `#transport=multicast` (the client joins the group the server
/// names).
pub fn path_source_url(source: &str, settings: &Map<String, Value>) -> Result<String, String> {
    let mut url = source_url(source);
    let rtsp = ["rtsp://", "rtsps://", "rtspx://"].iter().any(|s| source.to_ascii_lowercase().starts_with(s));
    if rtsp && !source.contains("#transport=") {
        match value_str(settings.get("rtspTransport")).as_str() {
            "" | "automatic" => {}
            "udp" => url.push_str("#transport=udp"),
            "tcp" => url.push_str("#transport=tcp"),
            "multicast" => url.push_str("#transport=multicast"),
            other => return Err(format!("invalid rtspTransport {other:?} (automatic, udp, multicast or tcp)")),
        }
    }
    let fingerprint = value_str(settings.get("sourceFingerprint"));
    if !fingerprint.is_empty() {
        let hex: String = fingerprint.chars().filter(|c| *c != ':').collect::<String>().to_ascii_lowercase();
        if hex.len() != 64 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(format!(
                "invalid sourceFingerprint {fingerprint:?} (the certificate's SHA-256 in hex: 64 digits)"
            ));
        }
        let lower = source.to_ascii_lowercase();
        if !lower.starts_with("rtsps://") && !lower.starts_with("rtmps://") {
            return Err("sourceFingerprint applies to rtsps:// and rtmps:// sources only".into());
        }
        url.push_str(&format!("#fingerprint={hex}"));
    }
    // `udp+rtp://` is described by `rtpSDP`, carried in the URL.
    if source.to_ascii_lowercase().starts_with("udp+rtp://") && !source.contains("#sdp") {
        let sdp = value_str(settings.get("rtpSDP"));
        if sdp.trim().is_empty() {
            return Err("a udp+rtp:// source needs rtpSDP (the SDP of the RTP stream)".into());
        }
        url.push_str(&format!("#sdp={}", crate::sources::udp::sdp_param(&sdp)));
    }
    Ok(url)
}

/// A MediaMTX source URL in camrelay's source schemes: `whep(s)://` is our `webrtc:` WHEP client;
/// the others (`rtsp(s)://`, `rtmp(s)://`, `http(s)://…m3u8`, `srt://`, `udp://`) keep their scheme.
pub fn source_url(source: &str) -> String {
    if let Some(rest) = source.strip_prefix("whep://") {
        return format!("webrtc:http://{rest}");
    }
    if let Some(rest) = source.strip_prefix("wheps://") {
        return format!("webrtc:https://{rest}");
    }
    source.to_string()
}

/// `logDestinations` (`stdout`, `file`, `syslog`), `logFile`, `sysLogPrefix` and `logStructured`.
fn log_sinks(mtx: &MediamtxConfig) -> Result<crate::logging::Sinks, String> {
    let mut sinks =
        crate::logging::Sinks { console: false, structured: mtx.global_bool("logStructured"), ..Default::default() };
    let destinations = mtx.globals.get("logDestinations").and_then(Value::as_array).cloned().unwrap_or_default();
    for d in &destinations {
        match d.as_str().unwrap_or("") {
            "stdout" => sinks.console = true,
            "file" => {
                let file = mtx.global_str("logFile");
                if file.is_empty() {
                    return Err("logDestinations has \"file\" but logFile is empty".into());
                }
                sinks.file = Some(file);
            }
            "syslog" => sinks.syslog = Some(mtx.global_str("sysLogPrefix")),
            other => {
                return Err(format!("logDestinations: invalid destination {other:?} (stdout, file or syslog)"));
            }
        }
    }
    Ok(sinks)
}

/// Every hook command (`runOn*` of the globals, `pathDefaults` and each path) must split into words;
/// the error names the key.
fn check_hooks(mtx: &MediamtxConfig) -> Result<(), String> {
    let paths = std::iter::once(("pathDefaults".to_string(), &mtx.path_defaults))
        .chain(mtx.paths.iter().map(|(n, s)| (format!("paths.{n}"), s)));
    for (where_, settings) in std::iter::once((String::new(), &mtx.globals)).chain(paths) {
        for (key, is_path) in crate::hooks::Hook::keys() {
            if is_path == where_.is_empty() {
                continue;
            }
            let command = value_str(settings.get(key));
            if command.trim().is_empty() {
                continue;
            }
            if let Err(e) = crate::hooks::split_command(&command) {
                let at = if where_.is_empty() { key.to_string() } else { format!("{where_}.{key}") };
                return Err(format!("{at}: {e}"));
            }
        }
    }
    Ok(())
}

/// `listen` from an enable switch and an address.
fn listener(mtx: &MediamtxConfig, enabled: &str, address: &str) -> String {
    if mtx.global_bool(enabled) {
        mtx.global_str(address)
    } else {
        String::new()
    }
}

/// Maps the merged MediaMTX settings onto the model the servers and the hub read.
/// `hlsVariant`, `hlsSegmentCount`, `hlsSegmentDuration`, `hlsPartDuration`, `hlsSegmentMaxSize`,
/// `hlsMuxerCloseAfter`, `hlsAlwaysRemux`, `hlsDirectory`.
fn hls_settings(mtx: &MediamtxConfig) -> Result<super::HlsSettings, String> {
    let d = super::HlsSettings::default();
    let always_remux = mtx.global_str("hlsAlwaysRemux").to_ascii_lowercase();
    let always_remux = mtx.global_bool("hlsAlwaysRemux") || matches!(always_remux.as_str(), "yes" | "true" | "on");
    let directory = Some(mtx.global_str("hlsDirectory")).filter(|d| !d.is_empty()).map(std::path::PathBuf::from);
    let variant = match mtx.global_str("hlsVariant").as_str() {
        "" | "lowLatency" => super::HlsVariant::LowLatency,
        "fmp4" => super::HlsVariant::Fmp4,
        "mpegts" => super::HlsVariant::Mpegts,
        other => return Err(format!("invalid hlsVariant {other:?} (mpegts, fmp4 or lowLatency)")),
    };
    let duration = |key: &str, default: Duration, max: Duration| {
        let v = mtx.global_str(key);
        if v.is_empty() {
            return Ok(default);
        }
        match parse_mediamtx_duration(&v) {
            Some(t) if !t.is_zero() && t <= max => Ok(t),
            _ => Err(format!("invalid {key} {v:?} (more than 0, at most {}s)", max.as_secs())),
        }
    };
    let count = match mtx.globals.get("hlsSegmentCount").and_then(Value::as_u64) {
        None => d.segment_count,
        Some(n @ 3..=100) => n as usize,
        Some(n) => return Err(format!("invalid hlsSegmentCount {n} (3 to 100)")),
    };
    let max_size = match mtx.global_str("hlsSegmentMaxSize").as_str() {
        "" => d.segment_max_size,
        v => match super::parse_size(v) {
            Some(n) if (1 << 16..=1 << 30).contains(&n) => n as u64,
            _ => return Err(format!("invalid hlsSegmentMaxSize {v:?} (64K to 1G)")),
        },
    };
    Ok(super::HlsSettings {
        variant,
        segment_count: count,
        segment_duration: duration("hlsSegmentDuration", d.segment_duration, Duration::from_secs(60))?,
        part_duration: duration("hlsPartDuration", d.part_duration, Duration::from_secs(5))?,
        segment_max_size: max_size,
        muxer_close_after: duration("hlsMuxerCloseAfter", d.muxer_close_after, Duration::from_secs(86_400))?,
        always_remux,
        directory,
    })
}

fn map_onto_model(config: &mut Config, origin: &str) -> Result<(), ConfigError> {
    let Some(mtx) = config.mediamtx.clone() else { return Ok(()) };
    config.log.level = match mtx.global_str("logLevel").as_str() {
        "" => "info".to_string(),
        level => level.to_string(),
    };
    config.log.sinks =
        log_sinks(&mtx).map_err(|message| ConfigError::Unlocated { origin: origin.to_string(), message })?;
    check_hooks(&mtx).map_err(|message| ConfigError::Unlocated { origin: origin.to_string(), message })?;
    crate::record::check(&mtx).map_err(|message| ConfigError::Unlocated { origin: origin.to_string(), message })?;
    if let Some(q) = mtx.globals.get("writeQueueSize").and_then(Value::as_u64) {
        config.hub.reader_queue = (q as usize).max(1);
    }
    // Listeners: MediaMTX's switches and ports. go2rtc's API (:1984) serves only when `api: true`,
    // on MediaMTX's apiAddress (/v3 beside go2rtc's /api).
    config.rtsp.listen = listener(&mtx, "rtsp", "rtspAddress");
    let transports: Vec<String> = mtx
        .globals
        .get("rtspTransports")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    if transports.iter().any(|t| t == "udp") {
        config.rtsp.rtp_listen = mtx.global_str("rtpAddress");
        config.rtsp.rtcp_listen = mtx.global_str("rtcpAddress");
    } else {
        config.rtsp.rtp_listen = String::new();
        config.rtsp.rtcp_listen = String::new();
    }
    // Multicast delivery: on when `rtspTransports` lists it (as by default).
    config.rtsp.multicast = super::MulticastConfig::default();
    if transports.iter().any(|t| t == "multicast") {
        let range = mtx.global_str("multicastIPRange");
        crate::servers::rtsp::multicast::parse_range(&range).map_err(|e| ConfigError::Unlocated {
            origin: origin.to_string(),
            message: format!("multicastIPRange: {e}"),
        })?;
        config.rtsp.multicast.ip_range = range;
        for (key, port) in [
            ("multicastRTPPort", &mut config.rtsp.multicast.rtp_port),
            ("multicastRTCPPort", &mut config.rtsp.multicast.rtcp_port),
        ] {
            let value = mtx.globals.get(key).and_then(Value::as_u64).unwrap_or(0);
            *port = u16::try_from(value).ok().filter(|p| *p > 0).ok_or_else(|| ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!("{key}: invalid port {value}"),
            })?;
        }
    } else {
        config.rtsp.multicast.ip_range = String::new();
    }
    if let Some(methods) = mtx.globals.get("rtspAuthMethods").and_then(Value::as_array) {
        let methods: Vec<String> = methods.iter().filter_map(Value::as_str).map(str::to_ascii_lowercase).collect();
        if !methods.is_empty() {
            config.rtsp.auth_methods = methods;
        }
    }
    config.api.listen = listener(&mtx, "api", "apiAddress");
    let origins = mtx.globals.get("apiAllowOrigins").and_then(Value::as_array).cloned().unwrap_or_default();
    config.api.origin = if origins.iter().any(|o| o == "*") { "*".to_string() } else { String::new() };
    // WebRTC: ICE on webrtcLocalUDPAddress (and webrtcLocalTCPAddress when on the same port).
    let udp = mtx.global_str("webrtcLocalUDPAddress");
    let tcp = mtx.global_str("webrtcLocalTCPAddress");
    config.webrtc.listen = if !mtx.global_bool("webrtc") {
        String::new()
    } else if tcp.is_empty() {
        format!("{udp}/udp")
    } else if udp.is_empty() {
        format!("{tcp}/tcp")
    } else {
        udp.clone()
    };
    config.webrtc.candidates = mtx
        .globals
        .get("webrtcAdditionalHosts")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_string).collect())
        .unwrap_or_default();
    config.webrtc.ice_servers = mtx
        .globals
        .get("webrtcICEServers2")
        .and_then(Value::as_array)
        .map(|servers| {
            servers
                .iter()
                .filter_map(|s| {
                    let url = s.get("url").and_then(Value::as_str)?;
                    Some(super::IceServer {
                        urls: vec![url.to_string()],
                        username: value_str(s.get("username")),
                        credential: value_str(s.get("password")),
                    })
                })
                .collect()
        })
        .unwrap_or_default();
    config.servers.hls_listen = listener(&mtx, "hls", "hlsAddress");
    config.servers.hls =
        hls_settings(&mtx).map_err(|message| ConfigError::Unlocated { origin: origin.to_string(), message })?;
    config.servers.webrtc_http_listen = listener(&mtx, "webrtc", "webrtcAddress");
    // `apiEncryption`, `hlsEncryption`, `webrtcEncryption`: that listener serves HTTPS instead of HTTP.
    let tls = |flag: &str, address: &str, cert: &str, key: &str| {
        mtx.global_bool(flag).then(|| super::TlsListen {
            listen: address.to_string(),
            cert: mtx.global_str(cert),
            key: mtx.global_str(key),
            self_signed: false,
        })
    };
    config.api.tls = tls("apiEncryption", &config.api.listen, "apiServerCert", "apiServerKey").unwrap_or_default();
    if !config.api.tls.listen.is_empty() {
        config.api.listen = String::new();
    }
    config.servers.hls_tls =
        tls("hlsEncryption", &config.servers.hls_listen, "hlsServerCert", "hlsServerKey").unwrap_or_default();
    if !config.servers.hls_tls.listen.is_empty() {
        config.servers.hls_listen = String::new();
    }
    config.servers.webrtc_http_tls =
        tls("webrtcEncryption", &config.servers.webrtc_http_listen, "webrtcServerCert", "webrtcServerKey")
            .unwrap_or_default();
    if !config.servers.webrtc_http_tls.listen.is_empty() {
        config.servers.webrtc_http_listen = String::new();
    }
    config.servers.rtmp_listen = listener(&mtx, "rtmp", "rtmpAddress");
    // RTMPS: `optional` adds the TLS listener, `strict` keeps only it.
    let encryption = match mtx.globals.get("rtmpEncryption") {
        Some(Value::Bool(false)) | None => "no".to_string(),
        other => value_str(other),
    };
    config.servers.rtmps = super::TlsListen::default();
    match encryption.as_str() {
        "no" => {}
        "optional" | "strict" => {
            if encryption == "strict" {
                config.servers.rtmp_listen = String::new();
            }
            config.servers.rtmps = super::TlsListen {
                listen: listener(&mtx, "rtmp", "rtmpsAddress"),
                cert: mtx.global_str("rtmpServerCert"),
                key: mtx.global_str("rtmpServerKey"),
                self_signed: false,
            };
        }
        other => {
            return Err(ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!(
                    "rtmpEncryption: invalid value {other:?} (expected \"no\", \"optional\" or \"strict\")"
                ),
            })
        }
    }
    // RTSPS the same way (`rtspEncryption`, `rtspsAddress`, `rtspServerCert`/`rtspServerKey`).
    let encryption = match mtx.globals.get("rtspEncryption") {
        Some(Value::Bool(false)) | None => "no".to_string(),
        other => value_str(other),
    };
    config.servers.rtsps = super::TlsListen::default();
    match encryption.as_str() {
        "no" => {}
        "optional" | "strict" => {
            if encryption == "strict" {
                config.rtsp.listen = String::new();
            }
            config.servers.rtsps = super::TlsListen {
                listen: listener(&mtx, "rtsp", "rtspsAddress"),
                cert: mtx.global_str("rtspServerCert"),
                key: mtx.global_str("rtspServerKey"),
                self_signed: false,
            };
        }
        other => {
            return Err(ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!(
                    "rtspEncryption: invalid value {other:?} (expected \"no\", \"optional\" or \"strict\")"
                ),
            })
        }
    }
    config.servers.srt_listen = listener(&mtx, "srt", "srtAddress");
    config.servers.metrics_listen = listener(&mtx, "metrics", "metricsAddress");
    config.servers.playback_listen = listener(&mtx, "playback", "playbackAddress");
    // MediaMTX users publish to paths; the built-in demo would only take a name.
    config.demo = Some(false);

    // Paths: literal ones are streams; `~regex` and `all_others` are rules for names not listed.
    config.path_rules.clear();
    for (name, _) in &mtx.paths {
        let settings = mtx.path_settings(name).unwrap_or_default();
        let source = value_str(settings.get("source"));
        let source = match source.as_str() {
            "" | "publisher" => String::new(),
            "redirect" => source,
            s => path_source_url(s, &settings).map_err(|message| ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!("paths.{name}: {message}"),
            })?,
        };
        let duration = |key: &str| {
            settings
                .get(key)
                .and_then(Value::as_str)
                .and_then(parse_mediamtx_duration)
                .unwrap_or(Duration::from_secs(10))
        };
        let rule = PathRule {
            name: name.clone(),
            source,
            source_on_demand: settings.get("sourceOnDemand").and_then(Value::as_bool).unwrap_or(false),
            max_readers: settings.get("maxReaders").and_then(Value::as_u64).unwrap_or(0) as usize,
            override_publisher: settings.get("overridePublisher").and_then(Value::as_bool).unwrap_or(true),
            start_timeout: duration("sourceOnDemandStartTimeout"),
            close_after: duration("sourceOnDemandCloseAfter"),
            redirect: value_str(settings.get("sourceRedirect")),
            fallback: value_str(settings.get("fallback")),
            always_available: always_available(&settings).map_err(|message| ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!("paths.{name}: {message}"),
            })?,
        };
        let fallback = &rule.fallback;
        if !(fallback.is_empty()
            || fallback.starts_with('/')
            || fallback.starts_with("rtsp://")
            || fallback.starts_with("rtsps://"))
        {
            return Err(ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!(
                    "paths.{name}: fallback {:?} is neither a path (/other) nor an rtsp:// or rtsps:// URL",
                    crate::secrets::mask_url(fallback)
                ),
            });
        }
        if rule.source == "redirect" && !(rule.redirect.starts_with("rtsp://") || rule.redirect.starts_with("rtsps://"))
        {
            return Err(ConfigError::Unlocated {
                origin: origin.to_string(),
                message: format!("paths.{name}: source: redirect needs sourceRedirect, an rtsp:// or rtsps:// URL"),
            });
        }
        // Patterns (`~regex`, `all_others`) are rules the hub applies to names it meets: publishers
        // to the names of `source: publisher` rules, readers of rules with a source (`$G1`...).
        if !rule.is_pattern() {
            let sources = if rule.source.is_empty() || rule.source == "redirect" {
                Vec::new()
            } else {
                vec![rule.source.clone()]
            };
            match config.streams.iter_mut().find(|(n, _)| n == name) {
                Some(entry) => entry.1 = sources.clone(),
                None => config.streams.push((name.clone(), sources.clone())),
            }
            // Not on demand: connected at start and kept connected, as MediaMTX does.
            config.preload.retain(|(n, _)| n != name);
            if !sources.is_empty() && !rule.source_on_demand {
                config.preload.push((name.clone(), String::new()));
            }
        }
        config.path_rules.push(rule);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn load_text(text: &str) -> Result<crate::config::LoadedConfig, ConfigError> {
        let dir = std::env::temp_dir().join(format!("camrelay-mtx-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join(format!("m{}.yml", rand::random::<u32>()));
        std::fs::write(&file, text).unwrap();
        let r = load(&[file.display().to_string()], &dir, &|_| None);
        let _ = std::fs::remove_file(&file);
        r
    }

    #[test]
    fn the_sample_loads_unchanged_with_mediamtx_ports() {
        let c = load_text(SAMPLE).unwrap().config;
        assert_eq!(c.dialect, Dialect::Mediamtx);
        assert_eq!(c.rtsp.listen, ":8554");
        assert_eq!((c.rtsp.rtp_listen.as_str(), c.rtsp.rtcp_listen.as_str()), (":8000", ":8001"));
        assert_eq!(c.api.listen, "", "api: false in the sample");
        assert_eq!(c.servers.hls_listen, ":8888");
        assert_eq!(c.servers.webrtc_http_listen, ":8889");
        assert_eq!(c.webrtc.listen, ":8189/udp");
        assert_eq!(c.servers.rtmp_listen, ":1935");
        assert_eq!(c.servers.srt_listen, ":8890");
        assert_eq!(c.servers.metrics_listen, "", "metrics: false in the sample");
        assert_eq!(c.hub.reader_queue, 512);
        assert_eq!(c.rtsp.auth_methods, vec!["basic".to_string()]);
        assert!(!c.rtsp.allow_any_publish, "the path rules decide");
        assert!(c.path_rules.iter().any(|r| r.name == "all_others" && r.source.is_empty()));
        assert!(c.streams.is_empty());
        assert_eq!(c.demo, Some(false));
        let mtx = c.mediamtx.unwrap();
        assert_eq!(mtx.globals["hlsSegmentCount"], 7);
        assert_eq!(mtx.globals["readTimeout"], "10s");
        assert_eq!(mtx.paths.len(), 1);
        assert_eq!(mtx.path_settings("all_others").unwrap()["recordFormat"], "fmp4");
    }

    #[test]
    fn fallback_is_a_path_or_an_rtsp_url() {
        let c =
            load_text("paths:\n  cam:\n    fallback: /demo\n  other:\n    fallback: rtsps://u:p@10.0.0.1/x\n").unwrap();
        let fallback = |name: &str| c.config.path_rules.iter().find(|r| r.name == name).unwrap().fallback.clone();
        assert_eq!(fallback("cam"), "/demo");
        assert_eq!(fallback("other"), "rtsps://u:p@10.0.0.1/x");
        let e = load_text("paths:\n  cam:\n    fallback: http://u:secret@10.0.0.1/x\n").unwrap_err().to_string();
        assert!(e.contains("paths.cam: fallback") && e.contains("neither a path"), "{e}");
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn paths_become_streams_rules_and_preloads() {
        let c = load_text(
            "api: true\nrtspTransports: [tcp]\nwriteQueueSize: 64\npathDefaults:\n  sourceOnDemand: true\npaths:\n  \
             cam1:\n    source: rtsp://10.0.0.1/live\n  cam2:\n    source: rtsp://10.0.0.2/live\n    sourceOnDemand: no\n  \
             door:\n    source: whep://10.0.0.3:8889/door/whep\n  mystream:\n  ~^proxy_(.+)$:\n    source: publisher\n",
        )
        .unwrap()
        .config;
        assert_eq!(c.api.listen, ":9997");
        assert_eq!((c.rtsp.rtp_listen.as_str(), c.hub.reader_queue), ("", 64));
        assert_eq!(
            c.streams,
            vec![
                ("cam1".to_string(), vec!["rtsp://10.0.0.1/live".to_string()]),
                ("cam2".to_string(), vec!["rtsp://10.0.0.2/live".to_string()]),
                ("door".to_string(), vec!["webrtc:http://10.0.0.3:8889/door/whep".to_string()]),
                ("mystream".to_string(), vec![]),
            ]
        );
        assert_eq!(c.preload, vec![("cam2".to_string(), String::new())]);
        assert!(c.path_rules.iter().any(|r| r.name == "~^proxy_(.+)$" && r.is_pattern()));
    }

    #[test]
    fn rtsp_transport_multicast_joins_the_group() {
        let c = load_text("paths:\n  cam:\n    source: rtsp://x/\n    rtspTransport: multicast\n").unwrap();
        let cam = c.config.path_rules.iter().find(|r| r.name == "cam").unwrap();
        assert_eq!(cam.source, "rtsp://x/#transport=multicast");
    }

    #[test]
    fn path_settings_map_onto_rules_and_source_parameters() {
        // The example of docs/mediamtx.md ("Path rules").
        let doc = include_str!("../../../../docs/mediamtx.md");
        let example = doc.split("```yaml\npaths:").nth(1).and_then(|s| s.split("```").next()).unwrap();
        let c = load_text(&format!("paths:{example}")).unwrap().config;
        let cam = c.path_rules.iter().find(|r| r.name == "~^cam(\\d+)$").unwrap();
        assert_eq!(cam.source, "rtsp://10.0.0.$G1/stream#transport=udp");
        assert_eq!(
            (cam.max_readers, cam.start_timeout, cam.close_after),
            (4, Duration::from_secs(5), Duration::from_secs(10))
        );
        let door = c.path_rules.iter().find(|r| r.name == "door").unwrap();
        assert!(door.source.starts_with("rtsps://10.0.0.9:322/stream#fingerprint=3e5a5f3b"), "{}", door.source);
        assert_eq!(c.streams, vec![("door".to_string(), vec![door.source.clone()])]);
        let live = c.path_rules.iter().find(|r| r.name == "~^live_").unwrap();
        assert!(live.source.is_empty() && !live.override_publisher);
        assert!(!c.rtsp.allow_any_publish);

        let e = load_text("paths:\n  cam:\n    source: rtsps://x/\n    sourceFingerprint: abc\n").unwrap_err();
        assert!(e.to_string().contains("invalid sourceFingerprint"), "{e}");
        // rtmps:// sources are pinned the same way; a plain source cannot be.
        let hex = "ab".repeat(32);
        let c = load_text(&format!("paths:\n  cam:\n    source: rtmps://x/live/cam\n    sourceFingerprint: {hex}\n"))
            .unwrap()
            .config;
        assert_eq!(c.path_rules[0].source, format!("rtmps://x/live/cam#fingerprint={hex}"));
        let e = load_text(&format!("paths:\n  cam:\n    source: rtmp://x/live/cam\n    sourceFingerprint: {hex}\n"))
            .unwrap_err();
        assert!(e.to_string().contains("rtsps:// and rtmps:// sources only"), "{e}");
    }

    #[test]
    fn auth_the_server_cannot_honour_is_refused() {
        assert!(load_text("authMethod: http\nauthHTTPAddress: http://127.0.0.1:9000/auth\n").is_ok());
        let e = load_text("authMethod: http\n").unwrap_err().to_string();
        assert!(e.contains("needs authHTTPAddress"), "{e}");
        let e = load_text("authMethod: http\nauthHTTPAddress: http://a/\nauthHTTPFingerprint: zz\n").unwrap_err();
        assert!(e.to_string().contains("authHTTPFingerprint"), "{e}");
        let e = load_text("authMethod: ldap\n").unwrap_err().to_string();
        assert!(e.contains("authMethod \"ldap\" is not supported"), "{e}");
        let users = |u: &str| format!("authInternalUsers:\n{u}");
        let e = load_text(&users("- user: a\n  pass: sha256:YWJj\n  permissions: [{action: read}]\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("authInternalUsers[0].pass: sha256: value decodes to 3 bytes, a SHA-256 has 32"), "{e}");
        let e = load_text(&users("- user: argon2:$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Xqyd4R7LzXvvAEHaVU12+Nzf5OkHoYcwIEIIYJUDpz0\n  pass: b\n"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("authInternalUsers[0].user: argon2: algorithm \"argon2d\" is not supported"), "{e}");
        let e = load_text(&users("- user: a\n  pass: b\n  ips: [10.0.0.0/99]\n")).unwrap_err().to_string();
        assert!(e.contains("authInternalUsers[0]: invalid IP or network \"10.0.0.0/99\""), "{e}");
        let e = load_text(&users("- user: a\n  pass: b\n  permissions: [{action: write}]\n")).unwrap_err().to_string();
        assert!(e.contains("unknown action \"write\""), "{e}");
    }

    #[test]
    fn unknown_and_mistyped_keys_name_key_and_line() {
        let e = load_text("logLevel: info\nrtspAdress: :8554\n").unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("unknown MediaMTX setting \"rtspAdress\""), "{e}");
        let e = load_text("paths:\n  cam:\n    sorce: rtsp://x\n").unwrap_err().to_string();
        assert!(e.contains("line 3") && e.contains("unknown path setting \"sorce\" (in paths.cam)"), "{e}");
        let e = load_text("rtsp: maybe\nlogLevel: info\n").unwrap_err().to_string();
        assert!(e.contains("line 1") && e.contains("expected a boolean") && e.contains("key rtsp"), "{e}");
        let e = load_text("readTimeout: soon\n").unwrap_err().to_string();
        assert!(e.contains("invalid duration \"soon\""), "{e}");
        let e = load_text("paths:\n  ~^cam(\\d+$:\n    source: publisher\n").unwrap_err().to_string();
        assert!(e.contains("invalid path regular expression"), "{e}");
    }

    #[test]
    fn go2rtc_files_are_not_mistaken_for_mediamtx() {
        let c = load_text("api:\n  listen: :1984\nrtsp:\n  listen: :8554\nstreams:\n  a: demo:clip\n").unwrap().config;
        assert_eq!(c.dialect, Dialect::Go2rtc);
        assert!(c.mediamtx.is_none());
    }

    #[test]
    fn hls_keys() {
        let c = load_text("hlsVariant: mpegts\nhlsSegmentCount: 4\nhlsSegmentDuration: 2s\nhlsPartDuration: 500ms\nhlsSegmentMaxSize: 8M\n")
            .unwrap()
            .config;
        let h = &c.servers.hls;
        assert_eq!(h.variant, crate::config::HlsVariant::Mpegts);
        assert_eq!(
            (h.segment_count, h.segment_duration, h.part_duration),
            (4, Duration::from_secs(2), Duration::from_millis(500))
        );
        assert_eq!(h.segment_max_size, 8 << 20);
        assert_eq!(h.muxer_close_after, Duration::from_secs(60));
        let h = load_text("hlsMuxerCloseAfter: 5s\nhlsAlwaysRemux: no\nhlsDirectory: ''\n").unwrap().config.servers.hls;
        assert_eq!((h.muxer_close_after, h.always_remux, h.directory), (Duration::from_secs(5), false, None));
        let h = load_text("hlsDirectory: /var/lib/hls\n").unwrap().config.servers.hls;
        assert_eq!(h.directory, Some(std::path::PathBuf::from("/var/lib/hls")));
        assert!(load_text("hlsAlwaysRemux: yes\n").unwrap().config.servers.hls.always_remux);
        assert_eq!(load_text("hls: true\n").unwrap().config.servers.hls, crate::config::HlsSettings::default());
        for (bad, says) in [
            ("hlsVariant: ll\n", "invalid hlsVariant \"ll\""),
            ("hlsSegmentCount: 1\n", "invalid hlsSegmentCount 1"),
            ("hlsPartDuration: 0s\n", "invalid hlsPartDuration"),
            ("hlsSegmentMaxSize: 1\n", "invalid hlsSegmentMaxSize"),
            ("hlsMuxerCloseAfter: 0s\n", "invalid hlsMuxerCloseAfter \"0s\""),
        ] {
            let e = load_text(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_mediamtx_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_mediamtx_duration("200ms"), Some(Duration::from_millis(200)));
        assert_eq!(parse_mediamtx_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_mediamtx_duration("10"), None);
    }

    #[test]
    fn https_listeners_from_the_encryption_switches() {
        let c = load_text("hls: true\n").unwrap().config;
        assert_eq!((c.servers.hls_listen.as_str(), c.servers.hls_tls.listen.as_str()), (":8888", ""));
        assert_eq!(c.api.tls, crate::config::TlsListen::default());
        let text = "api: true\napiEncryption: true\napiServerKey: a.key\napiServerCert: a.crt\n\
                    hlsEncryption: true\nwebrtcEncryption: true\nwebrtcServerCert: w.crt\n";
        let c = load_text(text).unwrap().config;
        assert_eq!(c.api.listen, "", "the API serves HTTPS instead");
        let t = &c.api.tls;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":9997", "a.crt", "a.key"));
        assert_eq!(c.servers.hls_listen, "");
        let t = &c.servers.hls_tls;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":8888", "server.crt", "server.key"));
        assert_eq!(c.servers.webrtc_http_listen, "");
        let t = &c.servers.webrtc_http_tls;
        assert_eq!((t.listen.as_str(), t.cert.as_str(), t.key.as_str()), (":8889", "w.crt", "server.key"));
        // A switched-off server stays off.
        let c = load_text("hls: false\nhlsEncryption: true\n").unwrap().config;
        assert_eq!((c.servers.hls_listen.as_str(), c.servers.hls_tls.listen.as_str()), ("", ""));
    }
}
