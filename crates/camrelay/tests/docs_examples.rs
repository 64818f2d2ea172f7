//! The docs hold what they say: every ```yaml block of README.md and docs/*.md loads as a config file
//! (with the server's own loader, no error and no warning).
//!
//! A block that is on purpose no whole config (a fragment shown inside another, a bad example) has
//! `<!-- not-a-config: why -->` on the line before its fence; such marks should stay rare.

use std::path::{Path, PathBuf};

/// The marker that exempts the next ```yaml block from loading.
const NOT_A_CONFIG: &str = "<!-- not-a-config";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root exists")
}

/// README.md and every docs/*.md, sorted, as (path relative to the root, text).
fn markdown_files() -> Vec<(String, String)> {
    let root = repo_root();
    let mut names = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root.join("docs"))
        .expect("docs/ is readable")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    names.extend(docs);
    names
        .into_iter()
        .map(|n| {
            let text = std::fs::read_to_string(root.join(&n)).unwrap_or_else(|e| panic!("{n}: {e}"));
            (n, text)
        })
        .collect()
}

/// One fenced code block.
struct Block {
    file: String,
    /// 1-based line of the opening fence.
    line: usize,
    lang: String,
    text: String,
    /// The line before the fence is a `<!-- not-a-config ... -->` mark.
    exempt: bool,
}

/// Every fenced block of a markdown text; the fence's indentation (a block in a list item) is removed
/// from its lines.
fn fenced_blocks(file: &str, text: &str) -> Vec<Block> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let trimmed = lines[i].trim_start();
        let Some(info) = trimmed.strip_prefix("```") else {
            i += 1;
            continue;
        };
        let indent = lines[i].len() - trimmed.len();
        let lang = info.split_whitespace().next().unwrap_or("").to_string();
        let exempt = i > 0 && lines[i - 1].trim_start().starts_with(NOT_A_CONFIG);
        let start = i;
        let mut body = String::new();
        i += 1;
        while i < lines.len() && lines[i].trim() != "```" {
            let l = lines[i];
            let cut = l.len() - l.trim_start().len();
            body.push_str(&l[cut.min(indent)..]);
            body.push('\n');
            i += 1;
        }
        out.push(Block { file: file.to_string(), line: start + 1, lang, text: body, exempt });
        i += 1;
    }
    out
}

fn yaml_blocks() -> Vec<Block> {
    markdown_files()
        .iter()
        .flat_map(|(file, text)| fenced_blocks(file, text))
        .filter(|b| b.lang == "yaml" || b.lang == "yml")
        .collect()
}

/// Loads `text` as the server loads its `-c` file: written to a file in an empty directory and read
/// by `config::load`. Every `${VAR}` is set (to `example`), as a user of such an example would.
fn load_as_file(text: &str, tag: usize) -> Result<Vec<String>, String> {
    let dir = std::env::temp_dir().join(format!("camrelay-docs-{}-{tag}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(&file, text).unwrap();
    let env = |name: &str| (name != "CREDENTIALS_DIRECTORY").then(|| "example".to_string());
    let result = camrelay::config::load(&[file.display().to_string()], &dir, &env);
    let _ = std::fs::remove_dir_all(&dir);
    result.map(|l| l.warnings).map_err(|e| e.to_string())
}

#[test]
fn every_yaml_example_loads_without_warnings() {
    let blocks = yaml_blocks();
    let mut failures = Vec::new();
    let (mut loaded, mut exempt) = (0, 0);
    for (n, block) in blocks.iter().enumerate() {
        if block.exempt {
            exempt += 1;
            continue;
        }
        match load_as_file(&block.text, n) {
            Ok(warnings) if warnings.is_empty() => loaded += 1,
            Ok(warnings) => failures.push(format!("{}:{}: warnings: {}", block.file, block.line, warnings.join("; "))),
            Err(e) => failures.push(format!("{}:{}: {e}", block.file, block.line)),
        }
    }
    println!("yaml blocks: {} ({loaded} load cleanly, {exempt} marked not-a-config)", blocks.len());
    assert!(blocks.len() > 50, "only {} yaml blocks found: is the extraction broken?", blocks.len());
    assert!(failures.is_empty(), "{} docs examples do not load:\n{}", failures.len(), failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------------
// Every config key the loader knows is documented.

/// The docs a user reads (architecture.md and benchmarks.md are about the code, not its use).
fn user_docs() -> String {
    markdown_files()
        .into_iter()
        .filter(|(n, _)| n != "docs/architecture.md" && n != "docs/benchmarks.md")
        .map(|(_, t)| t)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether `word` occurs in `text` on its own (not inside a longer identifier).
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident) && !text[i + word.len()..].chars().next().is_some_and(ident)
    })
}

/// The dotted key paths (`api.listen`, `webrtc.filters.loopback`) of every yaml block of the docs (list
/// items keep their list's path).
fn documented_yaml_paths() -> std::collections::BTreeSet<String> {
    fn walk(v: &serde_json::Value, prefix: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
                    walk(v, &path, out);
                    // A stream's own record keys (`record.streams.door.pre`) are the section's keys.
                    if let Some(rest) = path.strip_prefix("record.streams.") {
                        if let Some((_, key)) = rest.split_once('.') {
                            out.insert(format!("record.{key}"));
                        }
                    }
                    out.insert(path);
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|i| walk(i, prefix, out)),
            _ => {}
        }
    }
    let mut out = std::collections::BTreeSet::new();
    for block in yaml_blocks() {
        if let Ok(v) = serde_saphyr::from_str::<serde_json::Value>(&block.text) {
            walk(&v, "", &mut out);
        }
    }
    out
}

/// The source of the camrelay library without its test modules (`#[cfg(test)] mod x { ... }` at the
/// top level of a file, and `tests.rs` files), as (path, text).
fn library_source() -> Vec<(String, String)> {
    fn visit(dir: &Path, out: &mut Vec<(String, String)>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().filter_map(|e| e.ok()).map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                visit(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") && !path.ends_with("tests.rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let mut kept = String::with_capacity(text.len());
                let mut lines = text.lines().peekable();
                while let Some(line) = lines.next() {
                    if line == "#[cfg(test)]" && lines.peek().is_some_and(|l| l.starts_with("mod ") && l.ends_with('{'))
                    {
                        for l in lines.by_ref() {
                            if l == "}" {
                                break;
                            }
                        }
                        continue;
                    }
                    kept.push_str(line);
                    kept.push('\n');
                }
                out.push((path.display().to_string(), kept));
            }
        }
    }
    let mut out = Vec::new();
    visit(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut out);
    out
}

/// go2rtc-dialect keys (`config/apply.rs`), as dotted paths. Sections that are maps of names (`streams`,
/// `preload`, `publish`, `ffmpeg` templates, `log` module levels) are listed by their section.
const GO2RTC_KEYS: &[&str] = &[
    "api.listen",
    "api.username",
    "api.password",
    "api.base_path",
    "api.static_dir",
    "api.origin",
    "api.local_auth",
    "api.allow_exec",
    "api.unix_listen",
    "api.allow_paths",
    "api.tls_listen",
    "api.tls_cert",
    "api.tls_key",
    "api.tls_self_signed",
    "rtsp.listen",
    "rtsp.username",
    "rtsp.password",
    "rtsp.default_query",
    "rtsp.local_auth",
    "rtsp.rtp_listen",
    "rtsp.rtcp_listen",
    "rtsp.allow_any_publish",
    "rtsp.auth_methods",
    "rtsp.session_timeout",
    "rtsp.max_connections",
    "rtsp.max_connections_per_ip",
    "rtsp.request_timeout",
    "rtsp.tls_listen",
    "rtsp.tls_cert",
    "rtsp.tls_key",
    "rtsp.tls_self_signed",
    "rtsp.multicast_ip_range",
    "rtsp.multicast_rtp_port",
    "rtsp.multicast_rtcp_port",
    "streams",
    "log.level",
    "log.output",
    "log.format",
    "hub.linger",
    "hub.gop_cache_bytes",
    "hub.reader_queue",
    "hub.publisher_grace",
    "ffmpeg.bin",
    "webrtc.listen",
    "webrtc.candidates",
    "webrtc.ice_servers",
    "webrtc.ice_servers.urls",
    "webrtc.ice_servers.url",
    "webrtc.ice_servers.username",
    "webrtc.ice_servers.credential",
    "webrtc.max_sessions",
    "webrtc.audio_transcode",
    "webrtc.filters",
    "webrtc.filters.candidates",
    "webrtc.filters.interfaces",
    "webrtc.filters.ips",
    "webrtc.filters.networks",
    "webrtc.filters.loopback",
    "preload",
    "publish",
    "metrics.listen",
    "playback.listen",
    "rtmp.listen",
    "rtmp.tls_listen",
    "rtmp.tls_cert",
    "rtmp.tls_key",
    "rtmp.tls_self_signed",
    "record.path",
    "record.format",
    "record.segment_duration",
    "record.part_duration",
    "record.max_part_size",
    "record.delete_after",
    "record.pre",
    "record.continuous",
    "record.streams",
    "app.modules",
    "exec.allow_paths",
    "demo",
    "srt.listen",
    "srt.passphrase",
    "srt.latency",
];

/// go2rtc keys camrelay accepts without a warning and ignores: go2rtc's sections of features camrelay
/// does not have, and a few keys. configuration.md must say so.
const GO2RTC_IGNORED: &[&str] = &[
    "mp4",
    "hls",
    "mjpeg",
    "ngrok",
    "hass",
    "homekit",
    "webtorrent",
    "srtp",
    "onvif",
    "rtsp.pkt_size",
    "webrtc.filters.udp_ports",
    "log.time",
];

/// The quoted names of a `const NAME: &[&str] = &[...]` in `text`.
fn const_list(text: &str, name: &str) -> Vec<String> {
    let start = text.find(&format!("const {name}")).unwrap_or_else(|| panic!("apply.rs has no const {name}"));
    let body = &text[start..start + text[start..].find("];").unwrap()];
    let body = &body[body.find("&[").unwrap()..];
    body.split('"').skip(1).step_by(2).map(str::to_string).collect()
}

#[test]
fn the_go2rtc_key_list_is_the_loaders() {
    // Every key name `apply.rs` matches on (`"listen" =>`, `"a" | "b" =>`) and every name of its lists of
    // silently accepted keys is in GO2RTC_KEYS or GO2RTC_IGNORED: a new key fails here until it is
    // listed (and then documented, below).
    let apply = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/config/apply.rs")).unwrap();
    let arm = regex::Regex::new(r#"^\s*("[a-z_]+"(?:\s*\|\s*"[a-z_]+")*)\s*=>"#).unwrap();
    let mut names: Vec<String> = apply
        .lines()
        .filter_map(|l| arm.captures(l))
        .flat_map(|c| c[1].split('|').map(|s| s.trim().trim_matches('"').to_string()).collect::<Vec<_>>())
        .collect();
    for list in ["LATER_SECTIONS", "LATER_RTSP_KEYS", "LOG_OPTION_KEYS"] {
        names.extend(const_list(&apply, list));
    }
    names.extend(camrelay::record::GO2RTC_KEYS.iter().map(|(k, _)| k.to_string()));
    let listed: Vec<&str> = GO2RTC_KEYS.iter().chain(GO2RTC_IGNORED).flat_map(|k| k.split('.')).collect();
    let missing: Vec<&String> = names.iter().filter(|n| !listed.contains(&n.as_str())).collect();
    println!("go2rtc key names in apply.rs: {}", names.len());
    assert!(names.len() > 60, "apply.rs parsed badly: {names:?}");
    assert!(missing.is_empty(), "keys of config/apply.rs not in GO2RTC_KEYS / GO2RTC_IGNORED: {missing:?}");

    // And the loader takes each listed key without an "unknown key" warning.
    for key in GO2RTC_KEYS.iter().chain(GO2RTC_IGNORED) {
        let mut yaml = String::new();
        for (depth, part) in key.split('.').enumerate() {
            let list = if part == "ice_servers" && key.contains("ice_servers.") { "\n" } else { "" };
            yaml.push_str(&format!("{}{part}:{list}", "  ".repeat(depth)));
            if list.is_empty() {
                yaml.push('\n');
            } else {
                yaml.push_str(&format!("{}- ", "  ".repeat(depth + 1)));
            }
        }
        let yaml = yaml.replace("- \n", "- ").replace("- ", "-\n");
        let yaml = fix_list_item(&yaml);
        // An empty value may be refused (`auth_methods` needs one); an unknown key is only warned about.
        if let Ok(w) = load_as_file(&yaml, 0) {
            assert!(!w.iter().any(|w| w.contains("unknown config key")), "{key}: {w:?}\n{yaml}");
        }
    }
}

/// `webrtc:\n  ice_servers:\n    -\n      urls:` as the one-line list item YAML wants.
fn fix_list_item(yaml: &str) -> String {
    let lines: Vec<&str> = yaml.lines().collect();
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "-" && i + 1 < lines.len() {
            out.push_str(&format!("{}- {}\n", lines[i].trim_end_matches('-'), lines[i + 1].trim()));
            i += 2;
        } else {
            out.push_str(lines[i]);
            out.push('\n');
            i += 1;
        }
    }
    out
}

#[test]
fn every_go2rtc_key_is_documented() {
    let docs = user_docs();
    let yaml_paths = documented_yaml_paths();
    let undocumented: Vec<&&str> =
        GO2RTC_KEYS.iter().filter(|k| !yaml_paths.contains(**k) && !mentions(&docs, k)).collect();
    let configuration = std::fs::read_to_string(repo_root().join("docs/configuration.md")).unwrap();
    let ignored_unsaid: Vec<&&str> =
        GO2RTC_IGNORED.iter().filter(|k| !configuration.contains(&format!("`{k}`"))).collect();
    println!(
        "go2rtc keys: {} documented, {} ignored ones named in configuration.md",
        GO2RTC_KEYS.len(),
        GO2RTC_IGNORED.len()
    );
    assert!(undocumented.is_empty(), "go2rtc keys in no docs example and named nowhere in docs/: {undocumented:?}");
    assert!(ignored_unsaid.is_empty(), "ignored go2rtc keys configuration.md does not name: {ignored_unsaid:?}");
}

/// MediaMTX path keys camrelay adds to the sample's (`extension_path_keys` in config/mediamtx.rs).
const MEDIAMTX_EXTENSION_KEYS: &[&str] = &["recordPre", "fallback"];

/// Keys the code names without reading their value: `whepBearerToken` to mask it in `/v3/config`,
/// `pprof` as a permission (`metrics`) and as a switch `/v3` shows off.
const REFERENCED_BUT_IGNORED: &[&str] = &["whepBearerToken", "pprof"];

/// The heading of docs/mediamtx.md's table of keys accepted and ignored.
const IGNORED_HEADING: &str = "Accepted and ignored";

#[test]
fn every_mediamtx_key_is_documented_and_ignored_ones_say_so() {
    let defaults = camrelay::config::MediamtxConfig::defaults();
    let keys: Vec<String> = defaults
        .globals
        .keys()
        .chain(defaults.path_defaults.keys())
        .cloned()
        .chain(MEDIAMTX_EXTENSION_KEYS.iter().map(|k| k.to_string()))
        .collect();
    assert!(keys.len() > 150, "only {} MediaMTX keys", keys.len());
    let docs = user_docs();
    // `rpiCamera*`: a family of keys named at once.
    let family = regex::Regex::new(r"`([A-Za-z]+)\*`").unwrap();
    let families: Vec<String> = family.captures_iter(&docs).map(|c| c[1].to_string()).collect();
    let in_family = |k: &str, fams: &[String]| fams.iter().any(|f| k.starts_with(f.as_str()));
    let undocumented: Vec<&String> = keys.iter().filter(|k| !mentions(&docs, k) && !in_family(k, &families)).collect();

    // The ignored-keys section of mediamtx.md, up to the next heading.
    let mtx = std::fs::read_to_string(repo_root().join("docs/mediamtx.md")).unwrap();
    let start = mtx
        .lines()
        .position(|l| l.starts_with('#') && l.contains(IGNORED_HEADING))
        .unwrap_or_else(|| panic!("docs/mediamtx.md has no heading {IGNORED_HEADING:?}"));
    // The first cell of each row of its table names the keys (the second says why).
    let section: Vec<&str> = mtx
        .lines()
        .skip(start + 1)
        .take_while(|l| !l.starts_with("##"))
        .filter_map(|l| l.strip_prefix('|')?.split('|').next())
        .collect();
    let section = section.join("\n");
    let ignored_families: Vec<String> = family.captures_iter(&section).map(|c| c[1].to_string()).collect();
    let said_ignored = |k: &str| mentions(&section, &format!("`{k}`")) || in_family(k, &ignored_families);

    // A key the library's code never names is one it ignores.
    let source: String = library_source().into_iter().map(|(_, t)| t).collect();
    let used = |k: &str| source.contains(&format!("\"{k}\"")) && !REFERENCED_BUT_IGNORED.contains(&k);
    let unsaid: Vec<&String> = keys.iter().filter(|k| !used(k) && !said_ignored(k)).collect();
    let wrongly_said: Vec<&String> = keys.iter().filter(|k| used(k) && said_ignored(k)).collect();
    println!(
        "MediaMTX keys: {} ({} global, {} path), {} ignored",
        keys.len(),
        defaults.globals.len(),
        defaults.path_defaults.len() + MEDIAMTX_EXTENSION_KEYS.len(),
        keys.iter().filter(|k| !used(k)).count()
    );
    assert!(undocumented.is_empty(), "MediaMTX keys named nowhere in docs/: {undocumented:?}");
    assert!(
        unsaid.is_empty(),
        "MediaMTX keys the code never reads, missing from mediamtx.md's \"{IGNORED_HEADING}\": {unsaid:?}"
    );
    assert!(
        wrongly_said.is_empty(),
        "MediaMTX keys listed under \"{IGNORED_HEADING}\" that the code reads (move them out): {wrongly_said:?}"
    );
}

// ---------------------------------------------------------------------------------------------------
// docs/api.md and the HTTP routers agree.

/// `{name}`, `{*name}` → `{}`.
fn normalize_route(path: &str) -> String {
    static PLACEHOLDER: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let placeholder = PLACEHOLDER.get_or_init(|| regex::Regex::new(r"\{\*?[^}]*\}").unwrap());
    placeholder.replace_all(path, "{}").into_owned()
}

/// Every `.route("/...", get(..).post(..))` of the library's HTTP routers: path, methods (upper case),
/// the file that registers it.
fn router_paths() -> Vec<(String, Vec<String>, String)> {
    let route = regex::Regex::new(r#"\.route\(\s*"(/[^"]*)""#).unwrap();
    let method = regex::Regex::new(r"\b(get|post|put|patch|delete|options)\(").unwrap();
    // The `/v3` catch-alls answer MediaMTX's 404 for unknown paths; `/` and `/{*path}` are the web UI
    // or `api.static_dir` (docs/ui.md).
    let not_endpoints = ["/", "/{*path}", "/v3", "/v3/{*rest}"];
    let mut out = Vec::new();
    for (file, text) in library_source() {
        for c in route.captures_iter(&text) {
            if not_endpoints.contains(&&c[1]) {
                continue;
            }
            // The handlers: up to the next route or the end of the statement.
            let rest = &text[c.get(0).unwrap().end()..];
            let rest = &rest[..rest.find(".route(").unwrap_or(rest.len())];
            let rest = &rest[..rest.find(';').unwrap_or(rest.len())];
            let methods = method.captures_iter(rest).map(|m| m[1].to_ascii_uppercase()).collect();
            out.push((c[1].to_string(), methods, file.clone()));
        }
    }
    out
}

/// Every `/api/...`, `/v3/...` and `/metrics` path named in `text`, with the HTTP method written before
/// it on its line (`GET`, `` `PATCH` and `DELETE /api/webrtc` ``, `curl -X PUT`; a `curl` line without
/// `-X` is a GET; "" when none). `…/get/{id}` after `/v3/x/list` on the same line is `/v3/x/get/{id}`
/// (with the method last written), and `stream.ts|flv|mjpeg` is three paths.
fn doc_method_paths(text: &str) -> Vec<(String, String)> {
    static TOKEN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let token = TOKEN.get_or_init(|| {
        regex::Regex::new(r"\b(GET|POST|PUT|PATCH|DELETE|OPTIONS)\b|(?:/(?:api|v3|metrics)|…)(?:/[A-Za-z0-9_.{}|*-]+)*")
            .unwrap()
    });
    let mut out = Vec::new();
    for line in text.lines() {
        let mut last_full = String::new();
        let mut methods: Vec<String> = Vec::new();
        let mut after_path = true;
        for m in token.find_iter(line) {
            if m.as_str().chars().next().is_some_and(|c| c.is_ascii_uppercase()) {
                // `PATCH` and `DELETE /x`: methods written together share the path after them.
                if after_path {
                    methods.clear();
                }
                methods.push(m.as_str().to_string());
                after_path = false;
                continue;
            }
            after_path = true;
            let mut p = m.as_str().trim_end_matches(['.', '/']).to_string();
            if let Some(rest) = p.strip_prefix('…') {
                let Some(cut) = last_full.rfind('/') else { continue };
                p = format!("{}{rest}", &last_full[..cut]);
            } else {
                last_full = p.clone();
            }
            // `/api/playback/*`: a family; `docs/metrics.md`: a file.
            if p.contains('*') || p == "…" || p.ends_with(".md") {
                continue;
            }
            let (dir, last) = p.rsplit_once('/').unwrap_or(("", &p));
            let mut alternatives = last.split('|');
            let first = alternatives.next().unwrap_or_default().to_string();
            let stem = first.rsplit_once('.').map(|(s, _)| s.to_string());
            let mut paths = vec![format!("{dir}/{first}")];
            for alt in alternatives {
                match &stem {
                    Some(stem) if !alt.contains('.') => paths.push(format!("{dir}/{stem}.{alt}")),
                    _ => paths.push(format!("{dir}/{alt}")),
                }
            }
            let line_methods = match (methods.is_empty(), line.contains("curl ")) {
                (true, true) => vec!["GET".to_string()],
                (true, false) => vec![String::new()],
                _ => methods.clone(),
            };
            for path in paths {
                for method in &line_methods {
                    out.push((method.clone(), normalize_route(&path)));
                }
            }
        }
    }
    out
}

/// The paths of [`doc_method_paths`].
fn doc_paths(text: &str) -> Vec<String> {
    doc_method_paths(text).into_iter().map(|(_, p)| p).collect()
}

#[test]
fn api_docs_and_routers_agree() {
    let routes = router_paths();
    assert!(routes.len() > 60, "only {} routes found: is the extraction broken?", routes.len());
    // Every route and method is named in the docs with that method.
    let documented: std::collections::BTreeSet<(String, String)> = doc_method_paths(&user_docs()).into_iter().collect();
    let mut pairs = 0;
    let mut undocumented = Vec::new();
    for (path, methods, file) in &routes {
        assert!(!methods.is_empty(), "no methods found for route {path} ({file})");
        for method in methods {
            pairs += 1;
            if !documented.contains(&(method.clone(), normalize_route(path))) {
                undocumented.push(format!("{method} {path} ({file})"));
            }
        }
    }
    // A path of the docs is served when a route is it (`/v3/paths/get/door` is `/v3/paths/get/{*name}`),
    // or when it names a family of routes in prose (`/v3/srtconns`).
    let patterns: Vec<regex::Regex> = routes
        .iter()
        .map(|(p, _, _)| {
            let escaped = regex::escape(p).replace(r"\{", "{").replace(r"\}", "}");
            let pattern = regex::Regex::new(r"\{(\*?)[^}]*\}").unwrap().replace_all(&escaped, |c: &regex::Captures| {
                if c[1].is_empty() {
                    "[^/]+".to_string()
                } else {
                    ".+".to_string()
                }
            });
            regex::Regex::new(&format!("^{pattern}$")).unwrap()
        })
        .collect();
    let served = |p: &str| {
        routes.iter().zip(&patterns).any(|((route, _, _), pattern)| {
            normalize_route(route) == p || pattern.is_match(p) || route.starts_with(&format!("{p}/"))
        })
    };
    let mut missing = Vec::new();
    let mut named = 0;
    for (file, text) in markdown_files() {
        for (n, line) in text.lines().enumerate() {
            for p in doc_paths(line) {
                named += 1;
                // A URL of another go2rtc (`webrtc:http://cam/api/webrtc`) counts too: its paths are ours.
                if !served(&p) && p != "/api" && p != "/v3" {
                    missing.push(format!("{file}:{}: {p}", n + 1));
                }
            }
        }
    }
    println!(
        "routes: {} paths, {pairs} (method, path) pairs registered, each named in docs/ with its method; {named} paths named in the docs",
        routes.len()
    );
    assert!(undocumented.is_empty(), "routes named nowhere in docs/ with their method:\n{}", undocumented.join("\n"));
    assert!(missing.is_empty(), "paths in the docs that no router serves:\n{}", missing.join("\n"));
}

// ---------------------------------------------------------------------------------------------------
// Shell examples run as written.

/// Where a `&` in a shell line is inside a word outside quotes (`ffplay http://h/x?a=1&b=2` runs
/// `ffplay http://h/x?a=1` in the background): the byte offset, if any. `&&`, `&>`, `>&` and a `&`
/// that ends a command are fine; a comment ends the check.
fn unquoted_ampersand(line: &str) -> Option<usize> {
    let bytes = line.as_bytes();
    let mut quote = None;
    for (i, &c) in bytes.iter().enumerate() {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'#' if i == 0 || bytes[i - 1] == b' ' => return None,
            b'&' => {
                let prev = if i > 0 { bytes[i - 1] } else { b' ' };
                let next = bytes.get(i + 1).copied().unwrap_or(b' ');
                if !matches!(prev, b'&' | b'>' | b' ') && !matches!(next, b'&' | b'>' | b' ' | b';' | b')') {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

#[test]
fn shell_examples_quote_their_urls() {
    assert_eq!(unquoted_ampersand("ffplay http://h/x?src=cam&ll"), Some(25));
    for fine in ["ffplay 'http://h/x?a=1&b=2'", "a && b", "ffmpeg -i x - &", "cmd 2>&1 | tail", "x # a&b", "(a &)"] {
        assert_eq!(unquoted_ampersand(fine), None, "{fine}");
    }
    let mut blocks = 0;
    let mut failures = Vec::new();
    for (file, text) in markdown_files() {
        for block in fenced_blocks(&file, &text) {
            if !matches!(block.lang.as_str(), "sh" | "bash" | "shell") {
                continue;
            }
            blocks += 1;
            for (n, line) in block.text.lines().enumerate() {
                if let Some(at) = unquoted_ampersand(line) {
                    failures.push(format!(
                        "{}:{}: `&` at column {} outside quotes: {line}",
                        file,
                        block.line + 1 + n,
                        at + 1
                    ));
                }
            }
        }
    }
    println!("sh blocks: {blocks}");
    assert!(blocks > 50, "only {blocks} sh blocks found");
    assert!(failures.is_empty(), "shell examples that do not run as written:\n{}", failures.join("\n"));
}

/// The words of a shell line (single and double quotes grouped, no escapes), up to a comment.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word: Option<String> = None;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.get_or_insert_with(String::new).push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            (None, '#') if word.is_none() => break,
            (None, ' ' | '\t') => words.extend(word.take()),
            (None, c) => word.get_or_insert_with(String::new).push(c),
        }
    }
    words.extend(word);
    words
}

#[test]
fn command_line_config_examples_load() {
    // `camrelay -c '{...}'` and `camrelay -c key.path=value` as the docs write them (file arguments
    // name files the reader has, not this test).
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, text) in markdown_files() {
        for block in fenced_blocks(&file, &text).iter().filter(|b| b.lang == "sh") {
            for (n, line) in block.text.lines().enumerate() {
                let words = shell_words(line);
                if words.first().map(String::as_str) != Some("camrelay") {
                    continue;
                }
                let args: Vec<String> = words
                    .windows(2)
                    .filter(|w| w[0] == "-c")
                    .map(|w| w[1].clone())
                    .filter(|a| a.starts_with('{') || a.split('/').next().is_some_and(|head| head.contains('=')))
                    .collect();
                for arg in args {
                    checked += 1;
                    let dir = std::env::temp_dir().join(format!("camrelay-docs-cli-{}-{checked}", std::process::id()));
                    std::fs::create_dir_all(&dir).unwrap();
                    match camrelay::config::load(std::slice::from_ref(&arg), &dir, &|_| None) {
                        Ok(l) if l.warnings.is_empty() => {}
                        Ok(l) => {
                            failures.push(format!("{file}:{}: {arg}: {}", block.line + 1 + n, l.warnings.join("; ")))
                        }
                        Err(e) => failures.push(format!("{file}:{}: {arg}: {e}", block.line + 1 + n)),
                    }
                    let _ = std::fs::remove_dir_all(&dir);
                }
            }
        }
    }
    println!("camrelay -c examples: {checked}");
    assert!(checked >= 2, "the -c examples of docs/configuration.md were not found");
    assert!(failures.is_empty(), "-c examples that do not load:\n{}", failures.join("\n"));
}
