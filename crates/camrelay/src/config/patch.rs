//! In-place editing of the `streams:` (and `preload:`) section of the config file, keeping the user's
//! comments and layout. No YAML library round-trips comments, so this is a line-based editor of one
//! top-level block: it finds the entry by name (its key line plus the more-indented or `- ` lines
//! that follow) and replaces or removes exactly those lines.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::tree::{self, Node};

/// Serializes read-modify-write cycles of this process (concurrent API calls).
static WRITE_LOCK: Mutex<()> = Mutex::new(());

/// Sets `streams.<name>` in the YAML file at `path` to `sources` (one source → `  name: value`,
/// several → a block list, none → `  name:`), or removes the entry when `sources` is `None`.
/// Creates the `streams:` section at the end if absent, and the file if absent. The rest of the
/// file, comments included, is kept byte for byte. The file is replaced atomically (temporary file
/// + rename, keeping its permissions; a symlink is followed and its target replaced).
///
/// Fails with `InvalidData` when the `streams:` section has a layout this editor cannot edit
/// safely (e.g. a multi-line flow mapping); the file is then left untouched.
pub fn patch_stream(path: &Path, name: &str, sources: Option<&[String]>) -> io::Result<()> {
    patch_file(path, "streams", name, sources)
}

/// Sets `preload.<name>` to `query` (go2rtc's `preload:` section: stream name → query filters), or
/// removes the entry when `query` is `None`; otherwise like [`patch_stream`].
pub fn patch_preload(path: &Path, name: &str, query: Option<&str>) -> io::Result<()> {
    let values = query.map(|q| vec![q.to_string()]);
    patch_file(path, "preload", name, values.as_deref())
}

/// Sets `paths.<name>` of a MediaMTX file to `settings` (the path's own keys, written as a block
/// mapping, values as YAML scalars or JSON flow collections), or removes the entry when `settings` is
/// `None`; otherwise like [`patch_stream`].
pub fn patch_path(path: &Path, name: &str, settings: Option<&Map<String, Value>>) -> io::Result<()> {
    patch_entry(path, "paths", name, settings.map(EntryValue::Settings))
}

/// Sets `pathDefaults.<key>` of a MediaMTX file to `value` (kept, with its comments, like every
/// other line).
pub fn patch_path_default(path: &Path, key: &str, value: &Value) -> io::Result<()> {
    patch_entry(path, "pathDefaults", key, Some(EntryValue::Scalar(value)))
}

/// Sets the top-level MediaMTX setting `key` (`logLevel: debug`), appending it when absent.
pub fn patch_global(path: &Path, key: &str, value: &Value) -> io::Result<()> {
    let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = resolve_symlink(path);
    let text = fs::read_to_string(&target)?;
    let patched = patch_top_level_text(&text, key, value);
    if patched == text {
        return Ok(());
    }
    write_atomic(&target, &patched)
}

/// The value of one entry of a section.
#[derive(Clone, Copy)]
pub(crate) enum EntryValue<'a> {
    /// A go2rtc stream's sources (one: a scalar; several: a block list).
    Sources(&'a [String]),
    /// A MediaMTX path's own settings: a block mapping.
    Settings(&'a Map<String, Value>),
    /// One value (`pathDefaults.<key>`).
    Scalar(&'a Value),
}

/// A JSON value as YAML on one line: strings quoted when needed, collections in flow style (JSON is
/// YAML), null as nothing.
pub(crate) fn yaml_value(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => quote(s),
        Value::Bool(_) | Value::Number(_) => v.to_string(),
        Value::Array(_) | Value::Object(_) => v.to_string(),
    }
}

/// Replaces the top-level `key:` (with the lines of its block value) or appends it.
fn patch_top_level_text(text: &str, key: &str, value: &Value) -> String {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut text = text.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str(nl);
    }
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let rendered = match yaml_value(value) {
        v if v.is_empty() => format!("{}:{nl}", quote(key)),
        v => format!("{}: {v}{nl}", quote(key)),
    };
    let Some(start) = lines.iter().position(|l| indent(l) == 0 && parse_key(l).is_some_and(|(k, _)| k == key)) else {
        lines.push(rendered);
        return lines.concat();
    };
    let comment =
        parse_key(&lines[start]).map(|(_, after)| split_value_comment(after).1.to_string()).unwrap_or_default();
    let rendered = if comment.is_empty() { rendered } else { format!("{}{comment}{nl}", strip_newline(&rendered)) };
    // The block value: more-indented (or `- `) lines up to the next top-level key; trailing
    // comments and blank lines stay.
    let mut last = start;
    for (i, line) in lines.iter().enumerate().skip(start + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        if indent(line) == 0 && !is_seq_item(line) {
            break;
        }
        last = i;
    }
    lines.splice(start..=last, [rendered]);
    lines.concat()
}

fn resolve_symlink(path: &Path) -> PathBuf {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()),
        _ => path.to_path_buf(),
    }
}

fn patch_file(path: &Path, section: &str, name: &str, sources: Option<&[String]>) -> io::Result<()> {
    patch_entry(path, section, name, sources.map(EntryValue::Sources))
}

fn patch_entry(path: &Path, section: &str, name: &str, value: Option<EntryValue<'_>>) -> io::Result<()> {
    // A poisoned lock only means another edit panicked; the file itself is always whole.
    let _guard = WRITE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let target = resolve_symlink(path);
    let text = match fs::read_to_string(&target) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound && value.is_none() => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let patched = patch_section_entry(&text, section, name, value).map_err(|msg| {
        io::Error::new(io::ErrorKind::InvalidData, format!("cannot edit {}: {msg}", target.display()))
    })?;
    if patched == text {
        return Ok(());
    }
    write_atomic(&target, &patched)
}

fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "config path has no file name"))?;
    let tmp = dir.join(format!(".{}.{}.tmp", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = fs::File::create(&tmp)?;
        if let Ok(meta) = fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result?;
    // Persist the rename itself; not all platforms can open a directory, so this is best effort.
    if let Ok(dir) = fs::File::open(&dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Number of leading spaces.
fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn is_blank_or_comment(line: &str) -> bool {
    let t = line.trim();
    t.is_empty() || t.starts_with('#')
}

/// A block sequence item (`- x` or a bare `-`).
fn is_seq_item(body: &str) -> bool {
    let body = body.trim_end_matches(['\r', '\n']);
    body == "-" || body.starts_with("- ") || body.starts_with("-\t")
}

fn strip_newline(line: &str) -> &str {
    line.trim_end_matches(['\r', '\n'])
}

/// Parses a mapping key at the start of `body` (plain, `'single'` or `"double"` quoted). Returns
/// the key and the text after its `:` (without the line break).
fn parse_key(body: &str) -> Option<(String, &str)> {
    let body = strip_newline(body);
    let (key, after_key) = match body.as_bytes().first()? {
        b'"' => {
            let mut key = String::new();
            let mut chars = body.char_indices().skip(1);
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                match c {
                    '"' => {
                        end = Some(i + 1);
                        break;
                    }
                    '\\' => match chars.next()?.1 {
                        'n' => key.push('\n'),
                        't' => key.push('\t'),
                        'r' => key.push('\r'),
                        '0' => key.push('\0'),
                        'x' | 'u' | 'U' => return None,
                        other => key.push(other),
                    },
                    c => key.push(c),
                }
            }
            (key, &body[end?..])
        }
        b'\'' => {
            let mut key = String::new();
            let mut chars = body.char_indices().skip(1).peekable();
            let mut end = None;
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|&(_, c)| c) == Some('\'') {
                        chars.next();
                        key.push('\'');
                        continue;
                    }
                    end = Some(i + 1);
                    break;
                }
                key.push(c);
            }
            (key, &body[end?..])
        }
        b'#' | b'-' | b'?' | b'[' | b'{' => return None,
        _ => {
            let bytes = body.as_bytes();
            let colon = (0..bytes.len())
                .find(|&i| bytes[i] == b':' && matches!(bytes.get(i + 1), None | Some(b' ' | b'\t')))?;
            (body[..colon].trim_end().to_string(), &body[colon..])
        }
    };
    let after = after_key.trim_start_matches([' ', '\t']).strip_prefix(':')?;
    if !(after.is_empty() || after.starts_with([' ', '\t'])) || key.is_empty() {
        return None;
    }
    Some((key, after))
}

/// Splits the text after a key's `:` into the value and the trailing comment (with the
/// whitespace before it; `""` when there is none).
fn split_value_comment(after: &str) -> (&str, &str) {
    let after = strip_newline(after);
    let bytes = after.as_bytes();
    let start = after.len() - after.trim_start().len();
    // Skip a quoted value so that a '#' inside it is not taken for a comment.
    let mut i = start;
    match bytes.get(start) {
        Some(&b'\'') => {
            i += 1;
            while i < bytes.len() {
                if bytes[i] == b'\'' {
                    if bytes.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    i += 1;
                    break;
                }
                i += 1;
            }
        }
        Some(&b'"') => {
            i += 1;
            while i < bytes.len() {
                match bytes[i] {
                    b'\\' => i += 2,
                    b'"' => {
                        i += 1;
                        break;
                    }
                    _ => i += 1,
                }
            }
        }
        _ => {}
    }
    let i = i.min(bytes.len());
    let hash = (i..bytes.len()).find(|&j| bytes[j] == b'#' && (j == 0 || matches!(bytes[j - 1], b' ' | b'\t')));
    match hash {
        Some(j) => {
            let value = after[..j].trim();
            let comment_start = after[..j].trim_end().len();
            (value, &after[comment_start..])
        }
        None => (after.trim(), ""),
    }
}

/// Whether a scalar must be quoted to read back as the same string in a block context.
fn needs_quotes(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return true;
    };
    if s.trim() != s
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || s.contains(": ")
        || s.contains(" #")
        || s.contains(":\t")
        || s.ends_with(':')
        || s.chars().any(|c| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}'))
    {
        return true;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "~" | "null"
            | "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "y"
            | "n"
            | "<<"
            | "="
            | ".inf"
            | "+.inf"
            | ".nan"
    ) {
        return true;
    }
    // Anything that could read as a number (YAML 1.1 or 1.2): 12, 0x1F, 0o17, 1_000, 1e3, 12:30,
    // .5, +1, 192.168.1.1 (harmless to quote).
    let numberish_start =
        first.is_ascii_digit() || (matches!(first, '+' | '.') && s[1..].starts_with(|c: char| c.is_ascii_digit()));
    numberish_start && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '+' | '-'))
}

/// `s` as a YAML scalar: plain when safe, else single-quoted, or double-quoted with escapes when
/// it holds control characters.
pub(crate) fn quote(s: &str) -> String {
    if !needs_quotes(s) {
        return s.to_string();
    }
    let special = |c: char| c.is_control() || matches!(c, '\u{feff}' | '\u{2028}' | '\u{2029}' | '\u{85}');
    if !s.chars().any(special) {
        return format!("'{}'", s.replace('\'', "''"));
    }
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if special(c) => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The lines of one stream entry. `comment` is kept after the key (or after a single value).
fn render_entry(
    name: &str,
    value: EntryValue<'_>,
    entry_indent: usize,
    item_offset: usize,
    comment: &str,
    nl: &str,
) -> Vec<String> {
    let pad = " ".repeat(entry_indent);
    let key = quote(name);
    let sources = match value {
        EntryValue::Sources(sources) => sources,
        EntryValue::Scalar(v) => {
            return match yaml_value(v) {
                v if v.is_empty() => vec![format!("{pad}{key}:{comment}{nl}")],
                v => vec![format!("{pad}{key}: {v}{comment}{nl}")],
            };
        }
        EntryValue::Settings(settings) if settings.is_empty() => return vec![format!("{pad}{key}:{comment}{nl}")],
        EntryValue::Settings(settings) => {
            // A mapping's keys cannot sit at the key's own indentation, as a list's items may.
            let child_pad = " ".repeat(entry_indent + item_offset.max(2));
            let mut lines = vec![format!("{pad}{key}:{comment}{nl}")];
            for (k, v) in settings {
                lines.push(match yaml_value(v) {
                    v if v.is_empty() => format!("{child_pad}{}:{nl}", quote(k)),
                    v => format!("{child_pad}{}: {v}{nl}", quote(k)),
                });
            }
            return lines;
        }
    };
    match sources {
        [] => vec![format!("{pad}{key}:{comment}{nl}")],
        [one] => vec![format!("{pad}{key}: {}{comment}{nl}", quote(one))],
        many => {
            let item_pad = " ".repeat(entry_indent + item_offset);
            let mut lines = vec![format!("{pad}{key}:{comment}{nl}")];
            lines.extend(many.iter().map(|s| format!("{item_pad}- {}{nl}", quote(s))));
            lines
        }
    }
}

/// One entry of the `streams:` block: lines `start..=last` (trailing comments and blank lines
/// after its last value line are not part of it).
struct Entry {
    key: String,
    start: usize,
    last: usize,
    comment: String,
}

/// The sources of a flow-style `streams: {...}` value, for converting it to block style.
fn flow_entries(section: &str, value: &str) -> Result<Vec<(String, Vec<String>)>, String> {
    let root = tree::parse(value, section)
        .map_err(|e| format!("the flow-style `{section}:` value cannot be parsed on its own line ({e})"))?;
    let Node::Map(entries) = root.node else {
        return Err(format!("`{section}:` is not a mapping"));
    };
    entries
        .into_iter()
        .map(|(key, item)| {
            let sources = match &item.node {
                Node::Null => Vec::new(),
                Node::Seq(items) => items.iter().filter_map(|i| i.scalar_text()).collect(),
                Node::Map(_) => return Err(format!("stream {:?} is a mapping", key.name)),
                _ => item.scalar_text().into_iter().collect(),
            };
            Ok((key.name, sources))
        })
        .collect()
}

/// The patch on text: see [`patch_stream`].
#[cfg(test)]
pub(crate) fn patch_text(text: &str, name: &str, sources: Option<&[String]>) -> Result<String, String> {
    patch_section_text(text, "streams", name, sources)
}

/// The patch of one entry of the top-level mapping `section`.
#[cfg(test)]
pub(crate) fn patch_section_text(
    text: &str,
    section: &str,
    name: &str,
    sources: Option<&[String]>,
) -> Result<String, String> {
    patch_section_entry(text, section, name, sources.map(EntryValue::Sources))
}

fn patch_section_entry(
    text: &str,
    section: &str,
    name: &str,
    sources: Option<EntryValue<'_>>,
) -> Result<String, String> {
    let nl = if text.contains("\r\n") { "\r\n" } else { "\n" };
    let mut text = text.to_string();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push_str(nl);
    }
    let mut lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();

    let header =
        lines.iter().position(|line| indent(line) == 0 && parse_key(line).is_some_and(|(key, _)| key == section));
    let Some(h) = header else {
        let Some(sources) = sources else {
            return Ok(text);
        };
        lines.push(format!("{section}:{nl}"));
        lines.extend(render_entry(name, sources, 2, 2, "", nl));
        return Ok(lines.concat());
    };

    // `streams: {...}` / `streams: ~`: turn it into a block section first.
    let (value, comment) = match parse_key(&lines[h]) {
        Some((_, after)) => {
            let (value, comment) = split_value_comment(after);
            (value.to_string(), comment.to_string())
        }
        None => (String::new(), String::new()),
    };
    if !value.is_empty() {
        let converted = match value.as_str() {
            "~" | "null" | "Null" | "NULL" | "{}" => Vec::new(),
            v if v.starts_with('{') => flow_entries(section, v)?,
            _ => return Err(format!("`{section}:` is not a mapping")),
        };
        let mut block = vec![format!("{section}:{comment}{nl}")];
        for (name, sources) in &converted {
            block.extend(render_entry(name, EntryValue::Sources(sources), 2, 2, "", nl));
        }
        lines.splice(h..=h, block);
    }

    let end = (h + 1..lines.len())
        .find(|&i| indent(&lines[i]) == 0 && !is_blank_or_comment(&lines[i]))
        .unwrap_or(lines.len());
    let entry_indent = (h + 1..end).find(|&i| !is_blank_or_comment(&lines[i])).map_or(2, |i| indent(&lines[i]));

    let mut entries: Vec<Entry> = Vec::new();
    let mut item_offset = None;
    for (i, line) in lines.iter().enumerate().take(end).skip(h + 1) {
        if is_blank_or_comment(line) {
            continue;
        }
        let ind = indent(line);
        let body = &line[ind..];
        if ind == entry_indent && !is_seq_item(body) {
            let Some((key, after)) = parse_key(body) else {
                return Err(format!("line {}: cannot read the stream name in {:?}", i + 1, strip_newline(line)));
            };
            let comment = split_value_comment(after).1.to_string();
            entries.push(Entry { key, start: i, last: i, comment });
        } else if ind < entry_indent || entries.is_empty() {
            return Err(format!("line {}: unexpected indentation in the `{section}:` section", i + 1));
        } else if let Some(entry) = entries.last_mut() {
            if is_seq_item(body) && item_offset.is_none() {
                item_offset = Some(ind - entry_indent);
            }
            entry.last = i;
        }
    }
    let item_offset = item_offset.unwrap_or(entry_indent.max(2));

    let matching: Vec<&Entry> = entries.iter().filter(|e| e.key == name).collect();
    match sources {
        None => {
            for entry in matching.iter().rev() {
                lines.drain(entry.start..=entry.last);
            }
        }
        Some(sources) => {
            if let Some((first, rest)) = matching.split_first() {
                for entry in rest.iter().rev() {
                    lines.drain(entry.start..=entry.last);
                }
                let rendered = render_entry(name, sources, entry_indent, item_offset, &first.comment, nl);
                lines.splice(first.start..=first.last, rendered);
            } else {
                let at = (h + 1..end)
                    .rev()
                    .find(|&i| !lines[i].trim().is_empty() && indent(&lines[i]) > 0)
                    .map_or(h + 1, |i| i + 1);
                let rendered = render_entry(name, sources, entry_indent, item_offset, "", nl);
                lines.splice(at..at, rendered);
            }
        }
    }
    Ok(lines.concat())
}

#[cfg(test)]
mod mediamtx_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_written_as_mappings_and_globals_in_place() {
        let text = "# mine\nlogLevel: info # keep\npaths:\n  cam:\n    source: publisher\n";
        let mut settings = Map::new();
        settings.insert("source".into(), json!("rtsp://a:b@h/x"));
        settings.insert("sourceOnDemand".into(), json!(true));
        settings.insert("rtspUDPSourcePortRange".into(), json!([10000, 65535]));
        let added = patch_section_entry(text, "paths", "door", Some(EntryValue::Settings(&settings))).unwrap();
        assert_eq!(
            added,
            "# mine\nlogLevel: info # keep\npaths:\n  cam:\n    source: publisher\n  door:\n    \
             rtspUDPSourcePortRange: [10000,65535]\n    source: rtsp://a:b@h/x\n    sourceOnDemand: true\n"
        );
        let removed = patch_section_entry(&added, "paths", "cam", None).unwrap();
        assert!(!removed.contains("cam:") && removed.contains("  door:\n"), "{removed}");
        let global = patch_top_level_text(&removed, "logLevel", &json!("debug"));
        assert!(global.starts_with("# mine\nlogLevel: debug # keep\npaths:\n"), "{global}");
        let appended = patch_top_level_text("paths:\n", "readTimeout", &json!("12s"));
        assert_eq!(appended, "paths:\nreadTimeout: '12s'\n");
        let list =
            patch_top_level_text("rtspTransports:\n- udp\n- tcp\nrtsp: yes\n", "rtspTransports", &json!(["tcp"]));
        assert_eq!(list, "rtspTransports: [\"tcp\"]\nrtsp: yes\n");
        let defaults = patch_section_entry(
            "pathDefaults:\n  record: no\n",
            "pathDefaults",
            "record",
            Some(EntryValue::Scalar(&json!(true))),
        );
        assert_eq!(defaults.unwrap(), "pathDefaults:\n  record: true\n");
    }
}
