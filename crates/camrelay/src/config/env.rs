//! `${VAR}` / `${VAR:default}` substitution, go2rtc style: applied to the config text before it is
//! parsed. A variable is looked up first as a file in `$CREDENTIALS_DIRECTORY` (systemd
//! credentials), then in the environment; when it is unset and has no default, the text is left
//! as is and a warning is added.

use std::path::Path;

/// Returns `text` with variables substituted.
pub(crate) fn substitute(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    origin: &str,
    warnings: &mut Vec<String>,
) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        // go2rtc's pattern is `\$\{([^}{]+)\}`: no braces inside, at least one character.
        let end = match after.find(['{', '}']) {
            Some(end) if end > 0 && after[end..].starts_with('}') => end,
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
                continue;
            }
        };
        out.push_str(&rest[..start]);
        let inner = &after[..end];
        let (name, default) = match inner.find(':') {
            Some(i) if i > 0 => (&inner[..i], Some(&inner[i + 1..])),
            _ => (inner, None),
        };
        match lookup(name, env).or_else(|| default.map(str::to_string)) {
            Some(value) => out.push_str(&value),
            None => {
                let line = text[..text.len() - rest.len() + start].matches('\n').count() + 1;
                warnings.push(format!(
                    "{origin}: line {line}: environment variable {name:?} is not set; \"${{{inner}}}\" left as is"
                ));
                out.push_str(&rest[start..start + 2 + end + 1]);
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

fn lookup(name: &str, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    if let Some(dir) = env("CREDENTIALS_DIRECTORY") {
        let plain = !name.is_empty()
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
            && name != "."
            && name != "..";
        if plain {
            if let Ok(data) = std::fs::read_to_string(Path::new(&dir).join(name)) {
                return Some(data.trim().to_string());
            }
        }
    }
    env(name)
}
