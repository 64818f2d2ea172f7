//! Configuration: loading `go2rtc.yaml`-compatible files and `-c` arguments, validating them with
//! line/column errors, and editing the `streams:` section of the file in place.
//!
//! Loading works on a located YAML tree ([`tree`]): every source (file, inline `{...}` text, or
//! `key.path=value` argument) is parsed on its own and applied, in order, onto a [`Config`] that
//! starts from the defaults. Applying source after source is the same as deep-merging them map by
//! map (a later scalar replaces an earlier one, a later stream entry replaces the whole stream),
//! and it keeps the location of every value so an error points at the one source that is wrong.

mod apply;
mod env;
pub mod mediamtx;
mod patch;
mod tree;
mod values;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod edit_tests {
    use super::*;

    #[test]
    fn unmask_restores_hidden_secrets_and_refuses_edited_ones() {
        let original = "rtsp:\n  password: hunter2\nstreams:\n  cam: rtsp://admin:pw@10.0.0.1/x\n";
        let masked = crate::secrets::mask_text(original);
        assert!(!masked.contains("hunter2") && !masked.contains(":pw@"));
        let edited = format!("{masked}  new: demo:clip\n");
        let restored = unmask(&edited, original).unwrap();
        assert!(
            restored.contains("password: hunter2")
                && restored.contains("admin:pw@")
                && restored.contains("new: demo:clip")
        );
        // A masked line the user changed cannot be restored.
        let broken = masked.replace("10.0.0.1", "10.0.0.9");
        assert!(unmask(&broken, original).is_none());
    }

    #[test]
    fn unmask_tells_equal_masked_lines_apart() {
        // Found by the `config` fuzz target: lines that mask alike (two `password:` keys, the lines of
        // a block scalar) all got the secret of one of them, and a block scalar could not be restored.
        let original = "api:\n  password: a\n  tls_key: |\n    -----BEGIN-----\n    xyz\n    -----END-----\nrtsp:\n  password: b\n";
        let masked = crate::secrets::mask_text(original);
        assert_eq!(masked, "api:\n  password: ***\n  tls_key: |\n    ***\n    ***\n    ***\nrtsp:\n  password: ***\n");
        assert_eq!(unmask(&masked, original).as_deref(), Some(original));
        // Sections moved around keep their own secrets.
        let moved = "rtsp:\n  password: ***\napi:\n  password: ***\n  tls_key: |\n    ***\n    ***\n    ***\n";
        assert_eq!(
            unmask(moved, original).as_deref(),
            Some("rtsp:\n  password: b\napi:\n  password: a\n  tls_key: |\n    -----BEGIN-----\n    xyz\n    -----END-----\n")
        );
        // Blank lines in a block scalar keep their spaces.
        let spaced = "tls_key: |\n  a\n  \n\n  b\n";
        assert_eq!(crate::secrets::mask_text(spaced), "tls_key: |\n  ***\n  \n\n  ***\n");
        assert_eq!(unmask(&crate::secrets::mask_text(spaced), spaced).as_deref(), Some(spaced));
        // A block scalar with a line more or less cannot be told apart: refused.
        assert!(unmask(&masked.replace("    ***\n    ***\n", "    ***\n"), original).is_none());
        // An open quoted value keeps its line breaks when masked.
        let quoted = "password: \"abc\n  def\"\nuser: x\n";
        assert_eq!(crate::secrets::mask_text(quoted), "password: \"***\"\n  ***\nuser: x\n");
        assert_eq!(unmask(&crate::secrets::mask_text(quoted), quoted).as_deref(), Some(quoted));
        // Many equal lines are compared once, not once per line.
        let many = "  password: a\n  password: b\n".repeat(20_000);
        let start = std::time::Instant::now();
        assert_eq!(unmask(&crate::secrets::mask_text(&many), &many).as_deref(), Some(many.as_str()));
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
    }

    #[test]
    fn validate_text_reports_location() {
        let e = validate_text("api:\n  listen: [1]\n", "camrelay.yaml", &|_| None).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        let w = validate_text("api:\n  lisen: x\n", "camrelay.yaml", &|_| None).unwrap();
        assert!(w[0].contains("api.lisen"));
    }
}

use std::path::{Path, PathBuf};
use std::time::Duration;

pub use mediamtx::{MediamtxConfig, PathRule};
pub use patch::{patch_global, patch_path, patch_path_default, patch_preload, patch_stream};
pub use values::{bind_address, parse_duration, parse_size};

/// The whole program configuration, with defaults filled in.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Config {
    pub api: ApiConfig,
    pub rtsp: RtspConfig,
    /// Streams in file order; each has its ordered sources (empty = the stream only receives
    /// pushed media).
    pub streams: Vec<(String, Vec<String>)>,
    pub log: LogConfig,
    pub hub: HubConfig,
    /// Top-level `demo: true|false`. `None` = serve the built-in `demo` stream only when no streams
    /// are configured.
    pub demo: Option<bool>,
    pub ffmpeg: FfmpegConfig,
    pub webrtc: WebrtcConfig,
    /// `preload:` (go2rtc's): streams kept running with no viewer, name → query filters
    /// (`video&audio` when empty), in file order.
    pub preload: Vec<(String, String)>,
    /// `publish:` (go2rtc's): stream name → destination URLs it is pushed to (`rtsp[s]://`,
    /// `rtmp[s]://`), in file order.
    pub publish: Vec<(String, Vec<String>)>,
    pub app: AppConfig,
    /// `srt:` (camrelay's; the listener is `servers.srt_listen`).
    pub srt: SrtConfig,
    pub exec: ExecConfig,
    /// Which dialect the config came in (MediaMTX when any of its files is a `mediamtx.yml`).
    pub dialect: Dialect,
    /// Every MediaMTX setting, defaults filled in (for `/v3/config`), when a MediaMTX file was read.
    pub mediamtx: Option<mediamtx::MediamtxConfig>,
    /// Listeners of servers only a MediaMTX config sets today (`""` = off).
    pub servers: ServerListens,
    /// MediaMTX `paths:` entries, literal and patterns (`~regex`, `all_others`), in file order.
    pub path_rules: Vec<mediamtx::PathRule>,
    /// `record:` (camrelay's, go2rtc-style; docs/record.md).
    pub record: RecordConfig,
}

/// `record:` section: its keys and each stream's, as MediaMTX path keys (`recordPath`,
/// `recordSegmentDuration`...: `record::GO2RTC_KEYS`), which the recorder reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordConfig {
    /// The section's own keys, for every stream.
    pub defaults: serde_json::Map<String, serde_json::Value>,
    /// `streams:` (recorded, or with a pre-record ring): name → its own keys, in file order.
    pub streams: Vec<(String, serde_json::Map<String, serde_json::Value>)>,
}

/// The config file format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Dialect {
    #[default]
    Go2rtc,
    Mediamtx,
}

/// MediaMTX's `hlsVariant`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HlsVariant {
    /// MPEG-TS segments (`mpegts`).
    Mpegts,
    /// fMP4 segments (`fmp4`).
    Fmp4,
    /// LL-HLS: fMP4 segments and parts (`lowLatency`, MediaMTX's default).
    #[default]
    LowLatency,
}

/// How HLS muxers cut (MediaMTX's `hlsVariant`, `hlsSegmentCount`, `hlsSegmentDuration`,
/// `hlsPartDuration`, `hlsSegmentMaxSize`; their defaults without a MediaMTX file).
#[derive(Debug, Clone, PartialEq)]
pub struct HlsSettings {
    /// The variant of `/PATH/index.m3u8` on MediaMTX's HLS listener.
    pub variant: HlsVariant,
    /// Segments listed (the muxer keeps two more for clients a playlist behind).
    pub segment_count: usize,
    /// Minimum segment duration (a segment ends at the first keyframe after it).
    pub segment_duration: std::time::Duration,
    /// LL-HLS part target duration.
    pub part_duration: std::time::Duration,
    /// Largest segment in bytes.
    pub segment_max_size: u64,
    /// `hlsMuxerCloseAfter`: a muxer no viewer asked anything of for this long stops.
    pub muxer_close_after: std::time::Duration,
    /// `hlsAlwaysRemux`: every ready path has its muxer running, not only once a viewer asks.
    pub always_remux: bool,
    /// `hlsDirectory`: muxers keep their complete segments as files under it instead of in memory.
    pub directory: Option<std::path::PathBuf>,
}

impl Default for HlsSettings {
    fn default() -> Self {
        HlsSettings {
            variant: HlsVariant::LowLatency,
            segment_count: 7,
            segment_duration: std::time::Duration::from_secs(1),
            part_duration: std::time::Duration::from_millis(200),
            segment_max_size: 50 << 20,
            muxer_close_after: std::time::Duration::from_secs(60),
            always_remux: false,
            directory: None,
        }
    }
}

/// Listeners MediaMTX has that go2rtc's config does not name (`""` = off).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerListens {
    /// MediaMTX's HLS server (`/PATH/index.m3u8`), default `:8888` from a MediaMTX file.
    pub hls_listen: String,
    /// MediaMTX's WebRTC HTTP server (`/PATH/whep`, `/PATH/whip`), default `:8889`.
    pub webrtc_http_listen: String,
    /// MediaMTX's `hlsEncryption: true`: the HLS server over TLS instead (`hlsServerCert`/`hlsServerKey`).
    pub hls_tls: TlsListen,
    /// MediaMTX's HLS muxer keys (`hlsVariant`, `hlsSegmentCount`...); also LL-HLS on go2rtc's URLs.
    pub hls: HlsSettings,
    /// MediaMTX's `webrtcEncryption: true`: the WebRTC HTTP server over TLS instead.
    pub webrtc_http_tls: TlsListen,
    pub rtmp_listen: String,
    /// RTMPS: go2rtc-style `rtmp.tls_listen`/`tls_cert`/`tls_key`, or MediaMTX's `rtmpsAddress` with
    /// `rtmpEncryption: optional|strict` and `rtmpServerCert`/`rtmpServerKey`.
    pub rtmps: TlsListen,
    /// RTSPS: `rtsp.tls_listen`/`tls_cert`/`tls_key` (camrelay's, named as the API's), or MediaMTX's
    /// `rtspsAddress` with `rtspEncryption: optional|strict` and `rtspServerCert`/`rtspServerKey`.
    pub rtsps: TlsListen,
    pub srt_listen: String,
    pub metrics_listen: String,
    pub playback_listen: String,
}

/// A TLS listener: its address (`""` = off) and certificate chain and key, each a file path or the
/// PEM text itself (loaded by `tls::server`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TlsListen {
    pub listen: String,
    pub cert: String,
    pub key: String,
    /// `tls_self_signed` (camrelay's opt-in): make a self-signed certificate when there is none.
    pub self_signed: bool,
}

/// `srt:` section (docs/srt.md): the SRT server's encryption and latency. The listener is
/// `srt.listen` (MediaMTX's `srt`/`srtAddress`) in [`ServerListens::srt_listen`]; MediaMTX's per-path
/// `srtReadPassphrase`/`srtPublishPassphrase` come before `passphrase`.
#[derive(Debug, Clone, PartialEq)]
pub struct SrtConfig {
    /// The passphrase every caller must use (10 to 79 characters); empty: no encryption.
    pub passphrase: String,
    /// The SRT latency (the TSBPD delay that gives time to retransmit), both ways.
    pub latency: Duration,
}

impl Default for SrtConfig {
    fn default() -> Self {
        // libsrt's default latency.
        SrtConfig { passphrase: String::new(), latency: Duration::from_millis(120) }
    }
}

/// `app:` section (go2rtc's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AppConfig {
    /// `modules`: only these go2rtc modules run (`api`, `rtsp`, `webrtc`, `exec`, `ffmpeg`, `http`,
    /// `mjpeg`, `hls`, `mp4`, `ws`...); empty = all. See [`AppConfig::enabled`].
    pub modules: Vec<String>,
}

impl AppConfig {
    /// Whether go2rtc module `module` is on: every module when `modules` is empty.
    pub fn enabled(&self, module: &str) -> bool {
        self.modules.is_empty() || self.modules.iter().any(|m| m == module)
    }
}

/// `exec:` section (go2rtc's).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExecConfig {
    /// `allow_paths`: the only programs `exec:` and `echo:` sources may run (the command's first word
    /// as written, e.g. `ffmpeg` or `/usr/bin/ffmpeg`); empty = any.
    pub allow_paths: Vec<String>,
}

/// `webrtc:` section (go2rtc's keys; docs/webrtc.md).
#[derive(Debug, Clone, PartialEq)]
pub struct WebrtcConfig {
    /// UDP and TCP port shared by every peer (default `":8555"`, `""` disables); a `/udp` or `/tcp`
    /// suffix keeps one transport.
    pub listen: String,
    /// Extra candidates: `ip`, `ip:port`, or `stun:port` (our public address found with the STUN
    /// servers of `ice_servers`, at that port).
    pub candidates: Vec<String>,
    /// STUN/TURN servers: handed to browsers (RFC 9725 `Link` headers) and used for `stun:` candidates.
    pub ice_servers: Vec<IceServer>,
    pub filters: WebrtcFilters,
    /// Most concurrent WebRTC sessions (viewers and publishers); further offers get `503`.
    pub max_sessions: usize,
    /// Transcode audio the peer cannot take (AAC, G.711 at other rates, L16) to Opus or 8 kHz G.711,
    /// and a microphone to the backchannel's codec (`src/audio/`); `false` sends such audio nowhere.
    pub audio_transcode: bool,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            listen: ":8555".to_string(),
            candidates: Vec::new(),
            ice_servers: Vec::new(),
            filters: WebrtcFilters::default(),
            max_sessions: 1024,
            audio_transcode: true,
        }
    }
}

impl WebrtcConfig {
    /// The listen address without its transport suffix, and whether UDP and TCP are on.
    pub fn listen_transports(&self) -> (&str, bool, bool) {
        split_transport(&self.listen)
    }
}

/// `listen` with an optional `/udp` or `/tcp` suffix: (address, udp, tcp).
pub(crate) fn split_transport(listen: &str) -> (&str, bool, bool) {
    if let Some(a) = listen.strip_suffix("/udp") {
        (a, true, false)
    } else if let Some(a) = listen.strip_suffix("/tcp") {
        (a, false, true)
    } else {
        (listen, true, true)
    }
}

/// One `webrtc.ice_servers` entry (the browser's `RTCIceServer`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IceServer {
    pub urls: Vec<String>,
    pub username: String,
    pub credential: String,
}

/// `webrtc.filters`: which of the machine's addresses become host candidates. Empty lists allow all.
#[derive(Debug, Clone, PartialEq)]
pub struct WebrtcFilters {
    /// Only these candidate addresses (IPs, as advertised).
    pub candidates: Vec<String>,
    /// Only addresses of these network interfaces (`eth0`).
    pub interfaces: Vec<String>,
    /// Only these local IPs.
    pub ips: Vec<String>,
    /// Only these transports: `udp4`, `udp6`, `tcp4`, `tcp6`.
    pub networks: Vec<String>,
    /// Loopback addresses (127.0.0.1, ::1) as candidates (default true: local players and tests).
    pub loopback: bool,
}

impl Default for WebrtcFilters {
    fn default() -> Self {
        WebrtcFilters {
            candidates: Vec::new(),
            interfaces: Vec::new(),
            ips: Vec::new(),
            networks: Vec::new(),
            loopback: true,
        }
    }
}

/// `ffmpeg:` section (go2rtc's): `bin:` is the ffmpeg binary; every other key is a template that
/// overrides a built-in one (`h264:`, `rtsp:`, `output:`...) or adds a new one (`mycodec:`), used by
/// `ffmpeg:` sources' `#video=`, `#audio=`, `#input=`, `#raw=` parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct FfmpegConfig {
    /// Default `"ffmpeg"`.
    pub bin: String,
    /// Templates from the config, in file order (later entries with the same key replace earlier ones).
    pub templates: Vec<(String, String)>,
}

impl Default for FfmpegConfig {
    fn default() -> Self {
        FfmpegConfig { bin: "ffmpeg".to_string(), templates: Vec::new() }
    }
}

/// `api:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiConfig {
    /// `[host]:port`; `""` disables the HTTP API. Default `":1984"`.
    pub listen: String,
    pub username: String,
    pub password: String,
    pub base_path: String,
    pub static_dir: String,
    pub origin: String,
    /// `true` = loopback clients must authenticate too (go2rtc lets them in).
    pub local_auth: bool,
    /// A unix socket path the API also listens on (`""` = none). Its clients count as local.
    pub unix_listen: String,
    /// `allow_paths`: when not empty, only these request paths (after `base_path`) are served;
    /// every other path is a 404, as in go2rtc.
    pub allow_paths: Vec<String>,
    /// Allow `exec:` / `echo:` sources to be created over the API.
    pub allow_exec: bool,
    /// HTTPS: `tls_listen` (`""` = off), `tls_cert`, `tls_key` (go2rtc's).
    pub tls: TlsListen,
}

/// `rtsp:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct RtspConfig {
    /// `[host]:port`; `""` disables the RTSP server. Default `":8554"`.
    pub listen: String,
    pub username: String,
    pub password: String,
    pub default_query: String,
    /// `true` = loopback clients must authenticate too.
    pub local_auth: bool,
    /// UDP port for RTP (UDP transport). Default `":8000"`.
    pub rtp_listen: String,
    /// UDP port for RTCP. Default `":8001"`.
    pub rtcp_listen: String,
    /// Accept ANNOUNCE to any stream name, creating the stream.
    pub allow_any_publish: bool,
    pub session_timeout: Duration,
    /// Most open RTSP connections (camrelay's own). Default 4096.
    pub max_connections: usize,
    /// Most open RTSP connections from one IP address (camrelay's own). Default 512.
    pub max_connections_per_ip: usize,
    /// A request (the first one from connection time) must arrive complete within this (camrelay's own,
    /// against slowloris clients). Default 10 s.
    pub request_timeout: Duration,
    /// Auth schemes offered and accepted when a username is set: `basic`, `digest` (default both,
    /// like MediaMTX's `authMethods`).
    pub auth_methods: Vec<String>,
    /// UDP multicast delivery to readers (`multicast_ip_range`, `multicast_rtp_port`,
    /// `multicast_rtcp_port`; MediaMTX's `multicastIPRange`...).
    pub multicast: MulticastConfig,
}

/// `rtsp.multicast_*`: the groups readers asking for `RTP/AVP;multicast` are given.
#[derive(Debug, Clone, PartialEq)]
pub struct MulticastConfig {
    /// `A.B.C.D/N` inside 224.0.0.0/4; `""` = multicast off. Default `"224.1.0.0/16"`.
    pub ip_range: String,
    /// Port of every group's RTP. Default 8002.
    pub rtp_port: u16,
    /// Port of every group's RTCP. Default 8003.
    pub rtcp_port: u16,
}

impl Default for MulticastConfig {
    fn default() -> Self {
        MulticastConfig { ip_range: "224.1.0.0/16".to_string(), rtp_port: 8002, rtcp_port: 8003 }
    }
}

/// `log:` section.
#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// Default level. Default `"info"`.
    pub level: String,
    /// Every other key (`api: trace`, `rtsp: warn`...) in file order.
    pub modules: Vec<(String, String)>,
    /// `output`: `stdout` (default, as go2rtc) or `stderr`.
    pub output: crate::logging::Output,
    /// Where lines go besides the console, and in which format (MediaMTX's `logDestinations`,
    /// `logFile`, `sysLogPrefix`, `logStructured`; go2rtc's `format: json`).
    pub sinks: crate::logging::Sinks,
}

/// `hub:` section (camrelay's own).
#[derive(Debug, Clone, PartialEq)]
pub struct HubConfig {
    /// How long a source keeps running after its last reader leaves. Default 5 s.
    pub linger: Duration,
    /// Bound of each video track's GOP cache, in bytes (0 = no GOP cache). Default 8 MiB.
    pub gop_cache_bytes: usize,
    /// Frames per reader queue (at least 1). Default 512.
    pub reader_queue: usize,
    /// How long readers of a publisher that left wait for it to come back (same medias) and go on
    /// reading, instead of ending at once. Default 10 s; 0 = off.
    pub publisher_grace: Duration,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            listen: ":1984".to_string(),
            username: String::new(),
            password: String::new(),
            base_path: String::new(),
            static_dir: String::new(),
            origin: String::new(),
            local_auth: false,
            unix_listen: String::new(),
            allow_paths: Vec::new(),
            allow_exec: false,
            tls: TlsListen::default(),
        }
    }
}

impl Default for RtspConfig {
    fn default() -> Self {
        RtspConfig {
            listen: ":8554".to_string(),
            username: String::new(),
            password: String::new(),
            default_query: String::new(),
            local_auth: false,
            rtp_listen: ":8000".to_string(),
            rtcp_listen: ":8001".to_string(),
            allow_any_publish: false,
            auth_methods: vec!["basic".into(), "digest".into()],
            session_timeout: Duration::from_secs(60),
            max_connections: 4096,
            max_connections_per_ip: 512,
            request_timeout: Duration::from_secs(10),
            multicast: MulticastConfig::default(),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".to_string(),
            modules: Vec::new(),
            output: crate::logging::Output::Stdout,
            sinks: crate::logging::Sinks::default(),
        }
    }
}

impl Default for HubConfig {
    fn default() -> Self {
        HubConfig {
            linger: Duration::from_secs(5),
            gop_cache_bytes: 8 * 1024 * 1024,
            reader_queue: 512,
            publisher_grace: Duration::from_secs(10),
        }
    }
}

/// The result of [`load`].
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    pub config: Config,
    /// The file that API edits ([`patch_stream`]) persist into. It may not exist yet.
    pub path: PathBuf,
    /// Non-fatal problems (unknown keys, unset environment variables), one line each.
    pub warnings: Vec<String>,
}

/// A configuration that cannot be used. `origin` is `config file <name>` or `-c argument #<n>`.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read (missing, permissions...).
    #[error("{origin}: cannot read: {source}")]
    Read {
        origin: String,
        #[source]
        source: std::io::Error,
    },
    /// A syntax error or a bad value, at a known place.
    #[error("{origin}: line {line}, column {column}: {message}")]
    Invalid { origin: String, line: u64, column: u64, message: String },
    /// A bad value whose place is unknown.
    #[error("{origin}: {message}")]
    Unlocated { origin: String, message: String },
}

/// One `-c` value (or the default file), classified by go2rtc's rules.
enum Source {
    /// Inline YAML/JSON text (starts with `{`).
    Inline { index: usize, text: String },
    /// `key.path=value`.
    Assign { index: usize, key: String, value: String },
    /// A file; `shown` is the name used in messages.
    File { path: PathBuf, shown: String },
}

fn arg_origin(index: usize) -> String {
    format!("-c argument #{index}")
}

fn file_origin(shown: &str) -> String {
    format!("config file {shown}")
}

/// `key.path=value` when there is a `=` before any `/` (and the argument is not an existing file).
fn split_assignment(arg: &str) -> Option<(&str, &str)> {
    let eq = arg.find('=')?;
    if arg.find('/').is_some_and(|slash| slash < eq) {
        return None;
    }
    let key = arg[..eq].trim();
    if key.is_empty() {
        return None;
    }
    Some((key, &arg[eq + 1..]))
}

/// Loads the configuration from the `-c` arguments (in order; later ones override earlier ones).
///
/// Each argument is inline YAML/JSON when it starts with `{`, a `key.path=value` assignment when it
/// has a `=` before any `/` and is not an existing file, else a file path relative to `cwd`. The
/// first file argument is the file API edits persist into. Without a file argument,
/// `camrelay.yaml` or else `go2rtc.yaml` in `cwd` is loaded first when it exists, and edits go to
/// that file (or to `cwd/camrelay.yaml`, created on the first edit). `env` looks up environment
/// variables for `${VAR}` / `${VAR:default}` substitution.
pub fn load(args: &[String], cwd: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<LoadedConfig, ConfigError> {
    let mut sources = Vec::with_capacity(args.len() + 1);
    let mut edit_path: Option<PathBuf> = None;
    for (i, arg) in args.iter().enumerate() {
        let index = i + 1;
        if arg.trim_start().starts_with('{') {
            sources.push(Source::Inline { index, text: arg.clone() });
            continue;
        }
        let path = cwd.join(arg);
        if let Some((key, value)) = split_assignment(arg) {
            if !path.exists() {
                sources.push(Source::Assign { index, key: key.to_string(), value: value.to_string() });
                continue;
            }
        }
        if edit_path.is_none() {
            edit_path = Some(path.clone());
        }
        sources.push(Source::File { path, shown: arg.clone() });
    }
    let path = match edit_path {
        Some(path) => path,
        None => {
            let default = ["camrelay.yaml", "go2rtc.yaml"]
                .iter()
                .map(|name| (cwd.join(name), *name))
                .find(|(path, _)| path.is_file());
            match default {
                Some((path, name)) => {
                    sources.insert(0, Source::File { path: path.clone(), shown: name.to_string() });
                    path
                }
                None => cwd.join("camrelay.yaml"),
            }
        }
    };

    let mut config = Config::default();
    let mut warnings = Vec::new();
    for source in sources {
        let (origin, root) = match source {
            Source::Inline { index, text } => {
                let origin = arg_origin(index);
                let text = env::substitute(&text, env, &origin, &mut warnings);
                let root = tree::parse(&text, &origin)?;
                (origin, root)
            }
            Source::Assign { index, key, value } => {
                let origin = arg_origin(index);
                let value = env::substitute(&value, env, &origin, &mut warnings);
                let root = tree::assignment(&key, &value, &origin)?;
                (origin, root)
            }
            Source::File { path, shown } => {
                let origin = file_origin(&shown);
                let text = std::fs::read_to_string(&path)
                    .map_err(|source| ConfigError::Read { origin: origin.clone(), source })?;
                let text = env::substitute(&text, env, &origin, &mut warnings);
                let root = tree::parse(&text, &origin)?;
                (origin, root)
            }
        };
        apply::apply(&root, &mut config, &origin, &mut warnings)?;
    }
    Ok(LoadedConfig { config, path, warnings })
}

/// Checks a whole config file's text (as `POST /api/config` receives it): the same parsing and
/// validation as at startup. Returns the warnings (unknown keys...).
pub fn validate_text(
    text: &str,
    shown: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<String>, ConfigError> {
    let origin = file_origin(shown);
    let mut warnings = Vec::new();
    let substituted = env::substitute(text, env, &origin, &mut warnings);
    let root = tree::parse(&substituted, &origin)?;
    let mut config = Config::default();
    apply::apply(&root, &mut config, &origin, &mut warnings)?;
    Ok(warnings)
}

/// Puts back the secrets that [`read_masked`] hid: every line of `edited` that equals the masked form
/// of a line of `original` becomes that original line again, so a config read from the API, edited and
/// posted back keeps its passwords. When different original lines share a masked form (`password: ***`
/// in two sections, the lines of a `tls_key: |` block), the line takes the secret of the one at the same
/// place in the YAML tree (the same lines above it, indented less), in order. Returns None if a masked
/// value (`***`) is left that matches no original line (the user changed a line around a hidden
/// secret), or one whose secret is ambiguous.
pub fn unmask(edited: &str, original: &str) -> Option<String> {
    use std::collections::HashMap;
    let masked_text = crate::secrets::mask_text(original);
    let orig: Vec<&str> = original.lines().collect();
    let per_line: Vec<String>;
    let mut masked: Vec<&str> = masked_text.lines().collect();
    if masked.len() != orig.len() {
        // Masking keeps line breaks; should it not, the lines are masked one by one.
        per_line = orig.iter().map(|l| crate::secrets::mask_text(l)).collect();
        masked = per_line.iter().map(String::as_str).collect();
    }
    let edited_lines: Vec<&str> = edited.lines().collect();
    let mut places = LinePlaces::default();
    let masked_places = places.of(&masked, true);
    let edited_places = places.of(&edited_lines, false);

    // The original lines behind each masked text and each place, and whether they are all the same.
    let mut by_text: HashMap<&str, (Vec<usize>, bool)> = HashMap::new();
    let mut by_place: HashMap<usize, (Vec<usize>, bool)> = HashMap::new();
    for (i, line) in masked.iter().enumerate() {
        by_text.entry(*line).or_insert_with(|| (Vec::new(), true)).0.push(i);
        if let Some(p) = masked_places[i] {
            by_place.entry(p).or_insert_with(|| (Vec::new(), true)).0.push(i);
        }
    }
    for (lines, same) in by_text.values_mut().chain(by_place.values_mut()) {
        *same = lines.iter().all(|&i| orig[i] == orig[lines[0]]);
    }
    let mut edited_count: HashMap<usize, usize> = HashMap::new();
    for p in edited_places.iter().flatten() {
        *edited_count.entry(*p).or_default() += 1;
    }
    let mut taken: HashMap<usize, usize> = HashMap::new();
    let mut out = String::with_capacity(edited.len());
    for (line, place) in edited_lines.iter().zip(&edited_places) {
        let restored = match by_text.get(line) {
            None if line.contains("***") => return None,
            None => line,
            Some((lines, true)) => orig[lines[0]],
            Some((_, false)) => {
                let place = (*place)?;
                let (lines, same) = by_place.get(&place)?;
                if !same && edited_count.get(&place) != Some(&lines.len()) {
                    return None;
                }
                let n = taken.entry(place).or_default();
                let i = *lines.get(*n).or(lines.last())?;
                *n += 1;
                orig[i]
            }
        };
        out.push_str(restored);
        out.push('\n');
    }
    Some(out)
}

/// Where lines sit in a YAML text, for [`unmask`]: one id per (parent's id, line text), the parent
/// being the closest line above that is indented less (comments and blank lines are no parents).
#[derive(Default)]
struct LinePlaces<'a> {
    ids: std::collections::HashMap<(usize, &'a str), usize>,
}

impl<'a> LinePlaces<'a> {
    /// The id of each line (`None` for blank lines, and with `add` false for places not seen before).
    fn of(&mut self, lines: &[&'a str], add: bool) -> Vec<Option<usize>> {
        const ROOT: usize = usize::MAX;
        let mut parents: Vec<(usize, Option<usize>)> = Vec::new();
        let mut out = Vec::with_capacity(lines.len());
        for line in lines {
            let content = line.trim_start();
            if content.is_empty() {
                out.push(None);
                continue;
            }
            let indent = line.len() - content.len();
            while parents.last().is_some_and(|(i, _)| *i >= indent) {
                parents.pop();
            }
            let parent = parents.last().map_or(Some(ROOT), |(_, id)| *id);
            let next = self.ids.len();
            let id = parent.and_then(|p| {
                if add {
                    Some(*self.ids.entry((p, *line)).or_insert(next))
                } else {
                    self.ids.get(&(p, *line)).copied()
                }
            });
            if !content.starts_with('#') {
                parents.push((indent, id));
            }
            out.push(id);
        }
        out
    }
}

/// Replaces the config file atomically (temp file + rename).
pub fn write_file(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// The config file's text with secrets masked (`password:` / `token:`-like values and URL
/// credentials), for `GET /api/config`.
pub fn read_masked(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    Ok(crate::secrets::mask_text(&text))
}
