use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::patch::{patch_text, quote as quote_scalar};
use super::*;

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "camrelay-config-test-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn load_in(dir: &TempDir, list: &[&str]) -> Result<LoadedConfig, ConfigError> {
    load(&args(list), dir.path(), &no_env)
}

fn load_text(text: &str) -> Result<LoadedConfig, ConfigError> {
    let dir = TempDir::new();
    dir.write("camrelay.yaml", text);
    load_in(&dir, &[])
}

fn err_text(text: &str) -> String {
    load_text(text).unwrap_err().to_string()
}

fn streams(list: &[(&str, &[&str])]) -> Vec<(String, Vec<String>)> {
    list.iter().map(|(n, s)| (n.to_string(), s.iter().map(|s| s.to_string()).collect())).collect()
}

// ---------------------------------------------------------------- loading

#[test]
fn defaults_without_any_file() {
    let dir = TempDir::new();
    let loaded = load_in(&dir, &[]).unwrap();
    assert_eq!(loaded.config, Config::default());
    assert_eq!(loaded.path, dir.path().join("camrelay.yaml"));
    assert!(loaded.warnings.is_empty());
    assert!(!dir.path().join("camrelay.yaml").exists());
    let c = loaded.config;
    assert_eq!(c.api.listen, ":1984");
    assert_eq!(c.rtsp.listen, ":8554");
    assert_eq!(c.rtsp.rtp_listen, ":8000");
    assert_eq!(c.rtsp.rtcp_listen, ":8001");
    assert_eq!(c.rtsp.session_timeout, Duration::from_secs(60));
    assert_eq!((c.rtsp.max_connections, c.rtsp.max_connections_per_ip), (4096, 512));
    assert_eq!(c.rtsp.request_timeout, Duration::from_secs(10));
    assert_eq!(c.log.level, "info");
    assert_eq!(c.hub.linger, Duration::from_secs(5));
    assert_eq!(c.hub.gop_cache_bytes, 8 * 1024 * 1024);
    assert_eq!(c.hub.reader_queue, 512);
    assert_eq!(c.demo, None);
    assert!(!c.api.local_auth && !c.api.allow_exec && !c.rtsp.allow_any_publish);
}

#[test]
fn default_file_preference() {
    let dir = TempDir::new();
    dir.write("go2rtc.yaml", "streams:\n  a: rtsp://go2rtc\n");
    let loaded = load_in(&dir, &[]).unwrap();
    assert_eq!(loaded.path, dir.path().join("go2rtc.yaml"));
    assert_eq!(loaded.config.streams, streams(&[("a", &["rtsp://go2rtc"])]));

    dir.write("camrelay.yaml", "streams:\n  b: rtsp://camrelay\n");
    let loaded = load_in(&dir, &[]).unwrap();
    assert_eq!(loaded.path, dir.path().join("camrelay.yaml"));
    assert_eq!(loaded.config.streams, streams(&[("b", &["rtsp://camrelay"])]));

    // Inline arguments only: the default file is still the base and the edit target.
    let loaded = load_in(&dir, &["api.listen=:2000"]).unwrap();
    assert_eq!(loaded.path, dir.path().join("camrelay.yaml"));
    assert_eq!(loaded.config.api.listen, ":2000");
    assert_eq!(loaded.config.streams.len(), 1);
}

#[test]
fn full_file() {
    let loaded = load_text(
        r#"# my config
api:
  listen: "127.0.0.1:1985"
  username: admin
  password: 0123   # read as written, not as a number
  base_path: /rtc
  static_dir: www
  origin: "*"
  local_auth: true
  allow_exec: yes
rtsp:
  listen: "[::1]:8555"
  username: yes
  password: "p#ss"
  default_query: video&audio
  local_auth: false
  rtp_listen: ":9000"
  rtcp_listen: ":9001"
  allow_any_publish: true
  session_timeout: 90s
  max_connections: 100
  max_connections_per_ip: 10
  request_timeout: 5s
log:
  level: debug
  api: trace
  rtsp: warn
  format: color
hub:
  linger: 1500ms
  gop_cache_bytes: 4MiB
  reader_queue: 64
demo: false
"#,
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(
        c.api,
        ApiConfig {
            listen: "127.0.0.1:1985".into(),
            username: "admin".into(),
            password: "0123".into(),
            base_path: "/rtc".into(),
            static_dir: "www".into(),
            origin: "*".into(),
            local_auth: true,
            unix_listen: String::new(),
            allow_paths: Vec::new(),
            allow_exec: true,
            tls: Default::default(),
        }
    );
    assert_eq!(
        c.rtsp,
        RtspConfig {
            listen: "[::1]:8555".into(),
            username: "yes".into(),
            password: "p#ss".into(),
            default_query: "video&audio".into(),
            local_auth: false,
            rtp_listen: ":9000".into(),
            rtcp_listen: ":9001".into(),
            allow_any_publish: true,
            session_timeout: Duration::from_secs(90),
            max_connections: 100,
            max_connections_per_ip: 10,
            request_timeout: Duration::from_secs(5),
            auth_methods: vec!["basic".into(), "digest".into()],
            multicast: Default::default(),
        }
    );
    assert_eq!(c.log.level, "debug");
    assert_eq!(c.log.modules, vec![("api".to_string(), "trace".to_string()), ("rtsp".to_string(), "warn".to_string())]);
    assert_eq!(
        c.hub,
        HubConfig {
            linger: Duration::from_millis(1500),
            gop_cache_bytes: 4 * 1024 * 1024,
            reader_queue: 64,
            publisher_grace: Duration::from_secs(10),
        }
    );
    assert_eq!(c.demo, Some(false));
}

#[test]
fn stream_value_forms() {
    let loaded = load_text(
        "streams:\n  one: rtsp://a/1\n  list:\n    - rtsp://b/1\n    - ffmpeg:list#video=h264\n  same_indent:\n  - exec:x\n  flow: [rtsp://c, 'rtsp://d']\n  empty:\n  tilde: ~\n  blank: ''\n  '7': rtsp://seven\n  8: rtsp://eight\n  multi: >-\n    rtsp://folded/\n    path\n",
    )
    .unwrap();
    assert_eq!(
        loaded.config.streams,
        streams(&[
            ("one", &["rtsp://a/1"]),
            ("list", &["rtsp://b/1", "ffmpeg:list#video=h264"]),
            ("same_indent", &["exec:x"]),
            ("flow", &["rtsp://c", "rtsp://d"]),
            ("empty", &[]),
            ("tilde", &[]),
            ("blank", &[]),
            ("7", &["rtsp://seven"]),
            ("8", &["rtsp://eight"]),
            ("multi", &["rtsp://folded/ path"]),
        ])
    );
    assert_eq!(loaded.config.demo, None);
}

#[test]
fn empty_and_comment_only_files() {
    assert_eq!(load_text("").unwrap().config, Config::default());
    assert_eq!(load_text("# nothing\n").unwrap().config, Config::default());
    assert_eq!(load_text("api:\nrtsp:\nstreams:\n").unwrap().config, Config::default());
    // A null listen disables, like go2rtc's YAML decoder (zero value).
    assert_eq!(load_text("api:\n  listen:\n").unwrap().config.api.listen, "");
}

#[test]
fn merge_order_files_inline_and_assignments() {
    let dir = TempDir::new();
    dir.write(
        "base.yaml",
        "api:\n  listen: \":1984\"\n  username: admin\nstreams:\n  a: rtsp://a1\n  b: rtsp://b1\n  c:\n    - rtsp://c1\n    - rtsp://c2\nlog:\n  api: debug\n",
    );
    std::fs::create_dir(dir.path().join("conf.d")).unwrap();
    dir.write(
        "conf.d/over.yaml",
        "api:\n  password: secret\nstreams:\n  b:\n    - rtsp://b2\n    - rtsp://b3\n  d: rtsp://d1\nlog:\n  api: trace\n  rtsp: warn\n",
    );
    let loaded = load_in(
        &dir,
        &[
            "base.yaml",
            "conf.d/over.yaml",
            r#"{"streams": {"c": "rtsp://c9"}, "rtsp": {"listen": ":9554"}}"#,
            "api.listen=:1985",
            "rtsp.username=admin",
            "streams.e=rtsp://x",
            "streams.cam.1=rtsp://dotted",
            "streams.a=",
        ],
    )
    .unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    assert_eq!(loaded.path, dir.path().join("base.yaml"));
    let c = loaded.config;
    assert_eq!(c.api.listen, ":1985");
    assert_eq!(c.api.username, "admin");
    assert_eq!(c.api.password, "secret");
    assert_eq!(c.rtsp.listen, ":9554");
    assert_eq!(c.rtsp.username, "admin");
    assert_eq!(
        c.streams,
        streams(&[
            ("a", &[]),
            ("b", &["rtsp://b2", "rtsp://b3"]),
            ("c", &["rtsp://c9"]),
            ("d", &["rtsp://d1"]),
            ("e", &["rtsp://x"]),
            ("cam.1", &["rtsp://dotted"]),
        ])
    );
    assert_eq!(c.log.modules, vec![("api".to_string(), "trace".to_string()), ("rtsp".to_string(), "warn".to_string())]);
}

#[test]
fn assignment_values_are_yaml_scalars() {
    let dir = TempDir::new();
    let c = load_in(
        &dir,
        &[
            "api.local_auth=true",
            "hub.reader_queue=10",
            "hub.linger=250ms",
            "rtsp.password=0123",
            "demo=true",
            "streams.flow=[rtsp://a, rtsp://b]",
            "rtsp.default_query=video=h264&audio",
        ],
    )
    .unwrap()
    .config;
    assert!(c.api.local_auth);
    assert_eq!(c.hub.reader_queue, 10);
    assert_eq!(c.hub.linger, Duration::from_millis(250));
    assert_eq!(c.rtsp.password, "0123");
    assert_eq!(c.demo, Some(true));
    assert_eq!(c.rtsp.default_query, "video=h264&audio");
    assert_eq!(c.streams, streams(&[("flow", &["rtsp://a", "rtsp://b"])]));
}

#[test]
fn argument_classification() {
    let dir = TempDir::new();
    // An existing file whose name has '=' is a file.
    dir.write("a=b.yaml", "api:\n  username: fromfile\n");
    let loaded = load_in(&dir, &["a=b.yaml"]).unwrap();
    assert_eq!(loaded.config.api.username, "fromfile");
    assert_eq!(loaded.path, dir.path().join("a=b.yaml"));

    // '/' before '=': a path, and a missing explicit file is an error.
    let err = load_in(&dir, &["conf/x=y.yaml"]).unwrap_err().to_string();
    assert!(err.starts_with("config file conf/x=y.yaml: cannot read: "), "{err}");
    let err = load_in(&dir, &["missing.yaml"]).unwrap_err();
    assert!(matches!(&err, ConfigError::Read { source, .. } if source.kind() == std::io::ErrorKind::NotFound));

    // Absolute paths stay absolute.
    let abs = dir.write("abs.yaml", "api:\n  username: abs\n");
    let other = TempDir::new();
    let loaded = load_in(&other, &[abs.to_str().unwrap()]).unwrap();
    assert_eq!(loaded.path, abs);
    assert_eq!(loaded.config.api.username, "abs");

    // Inline YAML flow text.
    let c = load_in(&dir, &["{api: {listen: ':1999'}}"]).unwrap().config;
    assert_eq!(c.api.listen, ":1999");
}

#[test]
fn env_substitution() {
    let dir = TempDir::new();
    dir.write(
        "camrelay.yaml",
        "api:\n  username: ${USER_NAME}\n  password: ${API_PASS:fallback}\n  origin: ${UNSET_ORIGIN}\n  static_dir: ${EMPTY:}\n  base_path: ${:x}\nstreams:\n  cam: rtsp://admin:${CAM_PASS}@10.0.0.1/x\n",
    );
    let env = |name: &str| match name {
        "USER_NAME" => Some("bob".to_string()),
        "CAM_PASS" => Some("s3cret".to_string()),
        _ => None,
    };
    let loaded = load(&[], dir.path(), &env).unwrap();
    let c = &loaded.config;
    assert_eq!(c.api.username, "bob");
    assert_eq!(c.api.password, "fallback");
    assert_eq!(c.api.origin, "${UNSET_ORIGIN}");
    assert_eq!(c.api.static_dir, "");
    assert_eq!(c.api.base_path, "${:x}");
    assert_eq!(c.streams, streams(&[("cam", &["rtsp://admin:s3cret@10.0.0.1/x"])]));
    assert_eq!(
        loaded.warnings,
        vec![
            "config file camrelay.yaml: line 4: environment variable \"UNSET_ORIGIN\" is not set; \"${UNSET_ORIGIN}\" left as is".to_string(),
            "config file camrelay.yaml: line 6: environment variable \":x\" is not set; \"${:x}\" left as is".to_string(),
        ]
    );

    // Inline arguments are substituted too.
    let c = load(&args(&["streams.x=${CAM_PASS}"]), dir.path(), &env).unwrap().config;
    assert_eq!(c.streams.last().unwrap().1, vec!["s3cret".to_string()]);
}

#[test]
fn env_credentials_directory() {
    let dir = TempDir::new();
    let creds = TempDir::new();
    creds.write("cam_pass", "from-file\n");
    dir.write("camrelay.yaml", "api:\n  password: ${cam_pass}\n");
    let creds_dir = creds.path().to_str().unwrap().to_string();
    let env = move |name: &str| match name {
        "CREDENTIALS_DIRECTORY" => Some(creds_dir.clone()),
        "cam_pass" => Some("from-env".to_string()),
        _ => None,
    };
    let c = load(&[], dir.path(), &env).unwrap().config;
    assert_eq!(c.api.password, "from-file");
}

// ---------------------------------------------------------------- errors

#[test]
fn error_wrong_type_has_line_column_and_key() {
    assert_eq!(
        err_text("api:\n  listen: \":1984\"\nrtsp:\n  listen: [a, b]\n"),
        "config file camrelay.yaml: line 4, column 11: invalid type: sequence, expected a string (key rtsp.listen)"
    );
    assert_eq!(
        err_text("rtsp:\n  listen:\n    - a\n"),
        "config file camrelay.yaml: line 3, column 5: invalid type: sequence, expected a string (key rtsp.listen)"
    );
    assert_eq!(
        err_text("api:\n  local_auth: sometimes\n"),
        "config file camrelay.yaml: line 2, column 15: invalid type: string \"sometimes\", expected a boolean (true or false) (key api.local_auth)"
    );
    assert_eq!(
        err_text("api: 5\n"),
        "config file camrelay.yaml: line 1, column 6: invalid type: integer `5`, expected a mapping (key api)"
    );
    assert_eq!(
        err_text("- a\n- b\n"),
        "config file camrelay.yaml: line 1, column 1: invalid type: sequence, expected a mapping of config sections (api:, rtsp:, streams:...)"
    );
    assert_eq!(
        err_text("streams:\n  cam:\n    url: rtsp://x\n"),
        "config file camrelay.yaml: line 3, column 5: invalid type: mapping, expected a source URL, a list of source URLs or nothing (key streams.cam)"
    );
    assert_eq!(
        err_text("streams:\n  cam:\n    - [a]\n"),
        "config file camrelay.yaml: line 3, column 7: invalid type: sequence, expected a source URL (key streams.cam)"
    );
    assert_eq!(
        err_text("demo: 1\n"),
        "config file camrelay.yaml: line 1, column 7: invalid type: integer `1`, expected a boolean (true or false) (key demo)"
    );
}

#[test]
fn error_bad_values() {
    assert_eq!(
        err_text("api:\n  listen: \":99999\"\n"),
        "config file camrelay.yaml: line 2, column 11: invalid listen address \":99999\": \"99999\" is not a valid port (0-65535) (expected [host]:port, e.g. \":1984\" or \"127.0.0.1:1984\") (key api.listen)"
    );
    assert_eq!(
        err_text("rtsp:\n  listen: 8554\n"),
        "config file camrelay.yaml: line 2, column 11: invalid listen address \"8554\": missing ':port' (expected [host]:port, e.g. \":1984\" or \"127.0.0.1:1984\") (key rtsp.listen)"
    );
    assert_eq!(
        err_text("rtsp:\n  rtp_listen: \"::1:8000\"\n"),
        "config file camrelay.yaml: line 2, column 15: invalid listen address \"::1:8000\": an IPv6 address must be in brackets, e.g. \"[::1]:1984\" (expected [host]:port, e.g. \":1984\" or \"127.0.0.1:1984\") (key rtsp.rtp_listen)"
    );
    assert_eq!(
        err_text("hub:\n  linger: 5 sec\n"),
        "config file camrelay.yaml: line 2, column 11: invalid duration \"5 sec\" (expected e.g. \"5s\", \"500ms\", \"2m\", \"1h\" or a number of seconds) (key hub.linger)"
    );
    assert_eq!(
        err_text("rtsp:\n  session_timeout: 0s\n"),
        "config file camrelay.yaml: line 2, column 20: invalid duration: must be greater than zero (key rtsp.session_timeout)"
    );
    assert_eq!(
        err_text("rtsp:\n  max_connections_per_ip: 0\n"),
        "config file camrelay.yaml: line 2, column 27: invalid value 0: must be at least 1 (key rtsp.max_connections_per_ip)"
    );
    assert_eq!(
        err_text("rtsp:\n  request_timeout: 0s\n"),
        "config file camrelay.yaml: line 2, column 20: invalid duration: must be greater than zero (key rtsp.request_timeout)"
    );
    assert_eq!(
        err_text("hub:\n  reader_queue: 0\n"),
        "config file camrelay.yaml: line 2, column 17: invalid value 0: must be at least 1 (key hub.reader_queue)"
    );
    assert_eq!(
        err_text("hub:\n  reader_queue: -5\n"),
        "config file camrelay.yaml: line 2, column 17: invalid value -5: must be at least 1 (key hub.reader_queue)"
    );
    assert_eq!(
        err_text("hub:\n  gop_cache_bytes: -1\n"),
        "config file camrelay.yaml: line 2, column 20: invalid value -1: must be at least 0 (key hub.gop_cache_bytes)"
    );
    assert_eq!(
        err_text("hub:\n  reader_queue: 1.5\n"),
        "config file camrelay.yaml: line 2, column 17: invalid type: floating point `1.5`, expected a number of frames (key hub.reader_queue)"
    );
    assert_eq!(
        err_text("log:\n  level: loud\n"),
        "config file camrelay.yaml: line 2, column 10: invalid log level \"loud\" (expected one of trace, debug, info, warn, warning, error, fatal, panic, disabled, off) (key log.level)"
    );
    // gop cache 0 = disabled, fine.
    assert_eq!(load_text("hub:\n  gop_cache_bytes: 0\n").unwrap().config.hub.gop_cache_bytes, 0);
}

#[test]
fn error_syntax() {
    assert_eq!(err_text("api:\n  listen: \":1984\n"), "config file camrelay.yaml: line 2, column 11: unclosed quote");
    assert_eq!(
        err_text("api:\n  listen: a\n  listen: b\n"),
        "config file camrelay.yaml: line 3, column 3: duplicate mapping key: listen"
    );
    assert_eq!(
        err_text("api:\n  - a\n b: c\n"),
        "config file camrelay.yaml: line 3, column 2: while parsing a block mapping, did not find expected key"
    );
}

#[test]
fn error_origin_of_arguments() {
    let dir = TempDir::new();
    dir.write("camrelay.yaml", "api:\n  listen: \":1984\"\n");
    let err = load_in(&dir, &["camrelay.yaml", "{api: {listen: [1]}}"]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "-c argument #2: line 1, column 16: invalid type: sequence, expected a string (key api.listen)"
    );
    match err {
        ConfigError::Invalid { origin, line, column, .. } => {
            assert_eq!((origin.as_str(), line, column), ("-c argument #2", 1, 16))
        }
        other => panic!("{other:?}"),
    }
    // Columns of key=value errors count from the start of the argument.
    assert_eq!(
        load_in(&dir, &["hub.linger=soon"]).unwrap_err().to_string(),
        "-c argument #1: line 1, column 12: invalid duration \"soon\" (expected e.g. \"5s\", \"500ms\", \"2m\", \"1h\" or a number of seconds) (key hub.linger)"
    );
    assert_eq!(
        load_in(&dir, &["x", "api..listen=1"]).unwrap_err().to_string(),
        "config file x: cannot read: No such file or directory (os error 2)"
    );
    assert_eq!(
        load_in(&dir, &["api..listen=1"]).unwrap_err().to_string(),
        "-c argument #1: line 1, column 1: invalid key path \"api..listen\" (expected e.g. api.listen=:1985)"
    );
    assert_eq!(
        load_in(&dir, &["api=5"]).unwrap_err().to_string(),
        "-c argument #1: line 1, column 5: invalid type: integer `5`, expected a mapping (key api)"
    );
}

// ---------------------------------------------------------------- warnings

#[test]
fn unknown_keys_warn_with_full_path() {
    let loaded = load_text(
        "api:\n  lisen: \":1985\"\n  tls_listen: \":443\"\nrtsp:\n  pkt_size: 1200\n  user: x\nhub:\n  lingr: 1s\nstreamz:\n  a: b\nwebrtc:\n  candidates: [a]\nffmpeg:\n  h264: x\nmp4: {}\nrecord:\n  path: /x/%path/%s\nmetrics: true\nlog:\n  level: info\n",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        vec![
            "config file camrelay.yaml: line 2, column 3: unknown config key \"api.lisen\" (ignored)",
            "config file camrelay.yaml: line 6, column 3: unknown config key \"rtsp.user\" (ignored)",
            "config file camrelay.yaml: line 8, column 3: unknown config key \"hub.lingr\" (ignored)",
            "config file camrelay.yaml: line 9, column 1: unknown config key \"streamz\" (ignored)",
        ]
    );
    assert_eq!(loaded.config.api.listen, ":1984");

    let dir = TempDir::new();
    let loaded = load_in(&dir, &["api.lisen=:1"]).unwrap();
    assert_eq!(loaded.warnings, vec!["-c argument #1: line 1, column 5: unknown config key \"api.lisen\" (ignored)"]);
}

// ---------------------------------------------------------------- values

#[test]
fn durations() {
    let ok = [
        ("5s", 5_000),
        ("500ms", 500),
        ("2m", 120_000),
        ("1h", 3_600_000),
        ("5", 5_000),
        ("0.5", 500),
        ("1m30s", 90_000),
        ("1.5s", 1_500),
        ("0", 0),
        (" 10s ", 10_000),
        ("1500us", 1),
    ];
    for (text, ms) in ok {
        assert_eq!(parse_duration(text).map(|d| d.as_millis()), Some(ms), "{text}");
    }
    for bad in ["", "-5s", "5x", "s", "5 s", "1.2.3s", "inf", "NaN", "1e3", "ms5"] {
        assert_eq!(parse_duration(bad), None, "{bad}");
    }
}

#[test]
fn sizes() {
    assert_eq!(parse_size("1024"), Some(1024));
    assert_eq!(parse_size("8MiB"), Some(8 << 20));
    assert_eq!(parse_size("8 MB"), Some(8 << 20));
    assert_eq!(parse_size("512k"), Some(512 << 10));
    assert_eq!(parse_size("1.5K"), Some(1536));
    assert_eq!(parse_size("1G"), Some(1 << 30));
    assert_eq!(parse_size("-1"), None);
    assert_eq!(parse_size("lots"), None);
    assert_eq!(parse_size("5 parsecs"), None);
}

#[test]
fn bind_addresses() {
    assert_eq!(bind_address(":1984").as_deref(), Some("0.0.0.0:1984"));
    assert_eq!(bind_address("127.0.0.1:1984").as_deref(), Some("127.0.0.1:1984"));
    assert_eq!(bind_address("[::1]:1984").as_deref(), Some("[::1]:1984"));
    assert_eq!(bind_address("localhost:1984").as_deref(), Some("localhost:1984"));
    assert_eq!(bind_address(""), None);
}

#[test]
fn listen_validation() {
    use super::values::check_listen;
    for ok in ["", ":0", ":1984", "0.0.0.0:65535", "[::]:1", "[fe80::1%eth0]:80", "localhost:1", "my-host.lan:8554"] {
        assert_eq!(check_listen(ok), Ok(()), "{ok}");
    }
    for bad in ["1984", ":", ":65536", ":-1", ":abc", "::1:80", "[::1]80", "[zz]:80", "a b:80", "host:80 "] {
        assert!(check_listen(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------- patch_stream

fn patched(before: &str, name: &str, sources: Option<&[&str]>) -> String {
    let owned: Option<Vec<String>> = sources.map(|s| s.iter().map(|s| s.to_string()).collect());
    patch_text(before, name, owned.as_deref()).unwrap()
}

#[test]
fn patch_replaces_single_value_keeping_comments() {
    let before = "# top comment\napi:\n  listen: \":1984\" # api\n\nstreams:\n  # front door\n  front: rtsp://old/front  # main camera\n  back: rtsp://back\n\n# logging\nlog:\n  level: info\n";
    let after = "# top comment\napi:\n  listen: \":1984\" # api\n\nstreams:\n  # front door\n  front: rtsp://new/front  # main camera\n  back: rtsp://back\n\n# logging\nlog:\n  level: info\n";
    assert_eq!(patched(before, "front", Some(&["rtsp://new/front"])), after);
}

#[test]
fn patch_list_to_scalar_and_back() {
    let before =
        "streams:\n  cam:\n    - rtsp://a\n    # - rtsp://disabled\n    - ffmpeg:cam#audio=opus\n  other: rtsp://o\n";
    let one = "streams:\n  cam: rtsp://x\n  other: rtsp://o\n";
    assert_eq!(patched(before, "cam", Some(&["rtsp://x"])), one);
    let two = "streams:\n  cam: rtsp://x\n  other:\n    - rtsp://o\n    - ffmpeg:other#video=h264\n";
    assert_eq!(patched(one, "other", Some(&["rtsp://o", "ffmpeg:other#video=h264"])), two);
    let empty = "streams:\n  cam:\n  other:\n    - rtsp://o\n    - ffmpeg:other#video=h264\n";
    assert_eq!(patched(two, "cam", Some(&[])), empty);
}

#[test]
fn patch_keeps_list_style_of_the_file() {
    // Items at the key's own indentation.
    let before = "streams:\n  a:\n  - rtsp://a1\n  - rtsp://a2\n  b: rtsp://b\n";
    let after = "streams:\n  a:\n  - rtsp://a1\n  - rtsp://a2\n  b:\n  - rtsp://b1\n  - rtsp://b2\n";
    assert_eq!(patched(before, "b", Some(&["rtsp://b1", "rtsp://b2"])), after);
}

#[test]
fn patch_removes_entries() {
    let before = "streams:\n  a: rtsp://a\n  # about b\n  b:\n    - rtsp://b1\n    - rtsp://b2\n\n  c: rtsp://c # c\nlog:\n  level: info\n";
    assert_eq!(
        patched(before, "b", None),
        "streams:\n  a: rtsp://a\n  # about b\n\n  c: rtsp://c # c\nlog:\n  level: info\n"
    );
    assert_eq!(
        patched(before, "c", None),
        "streams:\n  a: rtsp://a\n  # about b\n  b:\n    - rtsp://b1\n    - rtsp://b2\n\nlog:\n  level: info\n"
    );
    assert_eq!(patched(before, "zzz", None), before);
    assert_eq!(patched("streams:\n  a: x\n", "a", None), "streams:\n");
}

#[test]
fn patch_adds_entries_at_the_end_of_the_section() {
    let before = "api:\n  listen: \":1984\"\n\nstreams:\n  a: rtsp://a\n  b:\n    - rtsp://b\n\n# log settings\nlog:\n  level: info\n";
    let after = "api:\n  listen: \":1984\"\n\nstreams:\n  a: rtsp://a\n  b:\n    - rtsp://b\n  new: rtsp://n\n\n# log settings\nlog:\n  level: info\n";
    assert_eq!(patched(before, "new", Some(&["rtsp://n"])), after);

    // Empty section, and section at the end of a file without a final newline.
    assert_eq!(
        patched("streams:\nlog:\n  level: info\n", "x", Some(&["rtsp://x"])),
        "streams:\n  x: rtsp://x\nlog:\n  level: info\n"
    );
    assert_eq!(
        patched("streams:\n  a: rtsp://a", "x", Some(&["rtsp://x"])),
        "streams:\n  a: rtsp://a\n  x: rtsp://x\n"
    );
}

#[test]
fn patch_four_space_indent() {
    let before = "streams:\n    a: rtsp://a\n    b:\n        - rtsp://b\n";
    assert_eq!(
        patched(before, "c", Some(&["rtsp://c1", "rtsp://c2"])),
        "streams:\n    a: rtsp://a\n    b:\n        - rtsp://b\n    c:\n        - rtsp://c1\n        - rtsp://c2\n"
    );
    let before = "streams:\n    a: rtsp://a\n";
    assert_eq!(
        patched(before, "a", Some(&["rtsp://1", "rtsp://2"])),
        "streams:\n    a:\n        - rtsp://1\n        - rtsp://2\n"
    );
}

#[test]
fn patch_creates_section_and_file() {
    assert_eq!(
        patched("api:\n  listen: \":1984\"\n", "cam", Some(&["rtsp://c"])),
        "api:\n  listen: \":1984\"\nstreams:\n  cam: rtsp://c\n"
    );
    assert_eq!(
        patched("# only a comment", "cam", Some(&["a", "b"])),
        "# only a comment\nstreams:\n  cam:\n    - a\n    - b\n"
    );
    assert_eq!(patched("", "cam", Some(&[])), "streams:\n  cam:\n");
    assert_eq!(patched("api:\n", "cam", None), "api:\n");

    let dir = TempDir::new();
    let path = dir.path().join("camrelay.yaml");
    patch_stream(&path, "gone", None).unwrap();
    assert!(!path.exists());
    patch_stream(&path, "cam", Some(&["rtsp://c".to_string()])).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "streams:\n  cam: rtsp://c\n");
    patch_stream(&path, "cam", None).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "streams:\n");
    // No temporary files left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn patch_multiline_values_and_quoted_names() {
    let before = "streams:\n  \"cam: 1\": rtsp://one\n  'it''s': rtsp://its\n  block: |\n    exec:ffmpeg -i x\n    -f rtsp {output}\n  folded: rtsp://very\n    long/path\n  last: rtsp://last\n";
    assert_eq!(
        patched(before, "block", Some(&["exec:short {output}"])),
        "streams:\n  \"cam: 1\": rtsp://one\n  'it''s': rtsp://its\n  block: exec:short {output}\n  folded: rtsp://very\n    long/path\n  last: rtsp://last\n"
    );
    assert_eq!(
        patched(before, "folded", None),
        "streams:\n  \"cam: 1\": rtsp://one\n  'it''s': rtsp://its\n  block: |\n    exec:ffmpeg -i x\n    -f rtsp {output}\n  last: rtsp://last\n"
    );
    assert_eq!(
        patched(before, "cam: 1", Some(&["rtsp://uno"])),
        "streams:\n  'cam: 1': rtsp://uno\n  'it''s': rtsp://its\n  block: |\n    exec:ffmpeg -i x\n    -f rtsp {output}\n  folded: rtsp://very\n    long/path\n  last: rtsp://last\n"
    );
    assert_eq!(
        patched(before, "it's", None),
        "streams:\n  \"cam: 1\": rtsp://one\n  block: |\n    exec:ffmpeg -i x\n    -f rtsp {output}\n  folded: rtsp://very\n    long/path\n  last: rtsp://last\n"
    );
}

#[test]
fn patch_quotes_when_needed() {
    assert_eq!(
        patched(
            "streams:\n",
            "#1",
            Some(&["rtsp://a:b@h/x?y=1#backchannel=0", "a #b", "yes", "1234", "", "x: y", "it's", "tab\there"])
        ),
        "streams:\n  '#1':\n    - rtsp://a:b@h/x?y=1#backchannel=0\n    - 'a #b'\n    - 'yes'\n    - '1234'\n    - ''\n    - 'x: y'\n    - it's\n    - \"tab\\there\"\n"
    );
    assert_eq!(quote_scalar("ffmpeg:cam#video=h264"), "ffmpeg:cam#video=h264");
    assert_eq!(quote_scalar("-x"), "'-x'");
    assert_eq!(quote_scalar("{output}"), "'{output}'");
    assert_eq!(quote_scalar("exec:ffmpeg -i x {output}"), "exec:ffmpeg -i x {output}");
}

#[test]
fn patch_flow_and_null_sections() {
    assert_eq!(
        patched("streams: {}\napi:\n  listen: \":1\"\n", "a", Some(&["rtsp://a"])),
        "streams:\n  a: rtsp://a\napi:\n  listen: \":1\"\n"
    );
    assert_eq!(patched("streams: ~ # none yet\n", "a", Some(&["rtsp://a"])), "streams: # none yet\n  a: rtsp://a\n");
    assert_eq!(
        patched("streams: {a: rtsp://a, b: [x, z, y]}\n", "c", Some(&["rtsp://c"])),
        "streams:\n  a: rtsp://a\n  b:\n    - x\n    - z\n    - 'y'\n  c: rtsp://c\n"
    );
    assert!(patch_text("streams: {a: rtsp://a,\n  b: x}\n", "c", None).is_err());
    assert!(patch_text("streams: rtsp://x\n", "c", None).is_err());
}

#[test]
fn patch_crlf_and_duplicates() {
    assert_eq!(patched("streams:\r\n  a: x\r\n", "b", Some(&["rtsp://b"])), "streams:\r\n  a: x\r\n  b: rtsp://b\r\n");
    assert_eq!(patched("streams:\n  a: 1\n  b: 2\n  a: 3\n", "a", Some(&["z"])), "streams:\n  a: z\n  b: 2\n");
}

#[test]
fn patch_round_trips_through_the_loader() {
    let tricky: &[&str] = &[
        "rtsp://admin:pa$$@10.0.0.1:554/Streaming/Channels/101?transportmode=unicast#backchannel=0",
        "ffmpeg:cam#video=h264#hardware",
        "exec:ffmpeg -re -i /media/x.mp4 -c copy -f rtsp {output}",
        "a #b",
        "x: y",
        "it's \"quoted\"",
        "yes",
        "NULL",
        "0x1F",
        "12:30",
        ".5",
        "-",
        "- item",
        "? q",
        "@at",
        "`tick`",
        "%pct",
        "!tag",
        "&anchor",
        "*alias",
        "|pipe",
        ">gt",
        "[flow]",
        "{flow}",
        "trailing ",
        " leading",
        "line\nbreak",
        "tab\tin",
        "ünïcødé",
        "ends with colon:",
        "<<",
        "~",
        "",
    ];
    let dir = TempDir::new();
    let path =
        dir.write("camrelay.yaml", "# keep me\napi:\n  listen: \":1984\"\nstreams:\n  first: rtsp://first # keep\n");
    let names = ["cam", "cam: 1", "#x", "yes", "007", "with space", "ünï", "a'b\"c"];
    for (i, name) in names.iter().enumerate() {
        let sources: Vec<String> = tricky.iter().skip(i).take(3).map(|s| s.to_string()).collect();
        patch_stream(&path, name, Some(&sources)).unwrap();
        let loaded = load(&[], dir.path(), &no_env).unwrap();
        let expected: Vec<String> = sources.iter().map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect();
        let got = loaded.config.streams.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(got.1, expected, "name {name:?}");
    }
    for source in tricky {
        patch_stream(&path, "single", Some(&[source.to_string()])).unwrap();
        let loaded = load(&[], dir.path(), &no_env).unwrap();
        let got = &loaded.config.streams.iter().find(|(n, _)| n == "single").unwrap().1;
        let want: Vec<String> = Some(source.trim().to_string()).filter(|s| !s.is_empty()).into_iter().collect();
        assert_eq!(got, &want, "source {source:?}");
    }
    for name in names.iter().chain(["single"].iter()) {
        patch_stream(&path, name, None).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "# keep me\napi:\n  listen: \":1984\"\nstreams:\n  first: rtsp://first # keep\n"
    );
}

#[cfg(unix)]
#[test]
fn patch_keeps_permissions_and_follows_symlinks() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new();
    let real = dir.write("real.yaml", "streams:\n  a: x\n");
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = dir.path().join("link.yaml");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    patch_stream(&link, "b", Some(&["rtsp://b".to_string()])).unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), "streams:\n  a: x\n  b: rtsp://b\n");
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
}

// ---------------------------------------------------------------- read_masked

#[test]
fn read_masked_masks_secrets() {
    let dir = TempDir::new();
    let path = dir.write(
        "camrelay.yaml",
        "api:\n  username: admin\n  password: hunter2 # keep comment\nstreams:\n  cam: rtsp://admin:pa$$@10.0.0.1/x\n  snap: http://h/snap?user=a&pwd=b\n",
    );
    assert_eq!(
        read_masked(&path).unwrap(),
        "api:\n  username: admin\n  password: *** # keep comment\nstreams:\n  cam: rtsp://admin:***@10.0.0.1/x\n  snap: http://h/snap?user=a&pwd=***\n"
    );
    assert!(read_masked(&dir.path().join("nope.yaml")).is_err());
}

#[test]
fn patch_column_zero_comments_inside_section() {
    let before = "streams:\n  a: rtsp://a\n# b is the garage\n  b: rtsp://b\n#  c: rtsp://disabled\n\n# log section\nlog:\n  level: info\n";
    assert_eq!(
        patched(before, "b", Some(&["rtsp://b2"])),
        "streams:\n  a: rtsp://a\n# b is the garage\n  b: rtsp://b2\n#  c: rtsp://disabled\n\n# log section\nlog:\n  level: info\n"
    );
    assert_eq!(
        patched(before, "new", Some(&["rtsp://n"])),
        "streams:\n  a: rtsp://a\n# b is the garage\n  b: rtsp://b\n  new: rtsp://n\n#  c: rtsp://disabled\n\n# log section\nlog:\n  level: info\n"
    );
}

#[test]
fn rtsp_auth_methods() {
    let c = load_text("rtsp:\n  auth_methods: [digest]\n").unwrap().config;
    assert_eq!(c.rtsp.auth_methods, vec!["digest".to_string()]);
    let c = load_text("rtsp:\n  auth_methods: Basic\n").unwrap().config;
    assert_eq!(c.rtsp.auth_methods, vec!["basic".to_string()]);
    let e = err_text("rtsp:\n  auth_methods: [ntlm]\n");
    assert!(e.contains("line 2") && e.contains("unknown auth method \"ntlm\""), "{e}");
}

#[test]
fn ffmpeg_section_bin_and_templates() {
    let c = load_text("").unwrap().config;
    assert_eq!(c.ffmpeg, FfmpegConfig { bin: "ffmpeg".into(), templates: vec![] });
    let c = load_text(
        "ffmpeg:\n  bin: /usr/lib/ffmpeg/bin/ffmpeg\n  h264: \"-c:v libx264\"\n  mycodec: -any args\n  myinput: -fflags nobuffer -i {input}\n",
    )
    .unwrap();
    assert!(c.warnings.is_empty(), "{:?}", c.warnings);
    assert_eq!(c.config.ffmpeg.bin, "/usr/lib/ffmpeg/bin/ffmpeg");
    assert_eq!(
        c.config.ffmpeg.templates,
        vec![
            ("h264".to_string(), "-c:v libx264".to_string()),
            ("mycodec".to_string(), "-any args".to_string()),
            ("myinput".to_string(), "-fflags nobuffer -i {input}".to_string()),
        ]
    );
    // A later source overrides one template and keeps the others.
    let dir = TempDir::new();
    dir.write("camrelay.yaml", "ffmpeg:\n  h264: a\n  opus: b\n");
    let c = load_in(&dir, &["ffmpeg.h264=c", "ffmpeg.bin=/opt/ffmpeg"]).unwrap().config;
    assert_eq!(c.ffmpeg.bin, "/opt/ffmpeg");
    assert_eq!(c.ffmpeg.templates, vec![("h264".to_string(), "c".to_string()), ("opus".to_string(), "b".to_string())]);
    // Not a mapping, or a template that is not a string.
    assert_eq!(
        err_text("ffmpeg: [a]\n"),
        "config file camrelay.yaml: line 1, column 9: invalid type: sequence, expected a mapping (key ffmpeg)"
    );
    assert!(err_text("ffmpeg:\n  h264: [a]\n").contains("(key ffmpeg.h264)"));
}

/// The config Home Assistant writes for the go2rtc server it manages (hardened variant), read as is.
#[test]
fn home_assistant_managed_config() {
    let text = r#"# This file is managed by Home Assistant
# Do not edit it manually

app:
  modules: ["api","exec","ffmpeg","http","mjpeg","onvif","rtmp","rtsp","srtp","webrtc","ws"]

api:
  listen: ""
  unix_listen: "/tmp/ha/go2rtc.sock"
  allow_paths: ["/","/api","/api/frame.jpeg","/api/schemes","/api/streams","/api/webrtc","/api/ws"]
  local_auth: true
  username: ha
  password: s3cret

# ffmpeg needs the exec module
# Restrict execution to only ffmpeg binary
exec:
  allow_paths:
    - ffmpeg

rtsp:
  listen: "127.0.0.1:18554"

webrtc:
  listen: ":18555/tcp"
  ice_servers: []

preload:
  camera.front:
  camera.back: video=h264&audio=opus
"#;
    let loaded = load_text(text).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let c = loaded.config;
    assert_eq!(c.api.listen, "");
    assert_eq!(c.api.unix_listen, "/tmp/ha/go2rtc.sock");
    assert_eq!(c.api.allow_paths.len(), 7);
    assert!(c.api.local_auth);
    assert!(c.app.enabled("ffmpeg") && c.app.enabled("webrtc") && !c.app.enabled("hls") && !c.app.enabled("mp4"));
    assert_eq!(c.exec.allow_paths, vec!["ffmpeg".to_string()]);
    assert_eq!(c.webrtc.listen_transports(), (":18555", false, true));
    assert!(c.webrtc.ice_servers.is_empty());
    assert_eq!(
        c.preload,
        vec![
            ("camera.front".to_string(), String::new()),
            ("camera.back".to_string(), "video=h264&audio=opus".to_string())
        ]
    );
    // No `app.modules`: every module is on.
    assert!(Config::default().app.enabled("hls"));
}

#[test]
fn log_output_is_checked() {
    assert_eq!(load_text("log:\n  output: stderr\n").unwrap().config.log.output, crate::logging::Output::Stderr);
    assert_eq!(
        err_text("log:\n  output: syslog\n"),
        "config file camrelay.yaml: line 2, column 11: invalid log output \"syslog\" (expected stdout or stderr) (key log.output)"
    );
}

#[test]
fn preload_entries_are_patched_in_place() {
    let before = "streams:\n  cam: rtsp://x\n# keep me\n";
    let after = super::patch::patch_section_text(before, "preload", "cam", Some(&["video&audio".to_string()])).unwrap();
    assert_eq!(after, "streams:\n  cam: rtsp://x\n# keep me\npreload:\n  cam: video&audio\n");
    let removed = super::patch::patch_section_text(&after, "preload", "cam", None).unwrap();
    assert_eq!(removed, "streams:\n  cam: rtsp://x\n# keep me\npreload:\n");
    let loaded = load_text(&after).unwrap();
    assert_eq!(loaded.config.preload, vec![("cam".to_string(), "video&audio".to_string())]);
}
