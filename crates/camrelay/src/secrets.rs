//! Masking of secrets (URL credentials, secret query parameters, `password:`-like values) for the
//! API, logs and error messages. Masking is textual and conservative: when in doubt, mask. Nothing
//! here panics, whatever the input.

const MASK: &str = "***";

/// Parameter / key names whose values are secrets (compared lowercase).
const SECRET_NAMES: &[&str] = &[
    "password",
    "pass",
    "passwd",
    "pwd",
    "token",
    "key",
    "secret",
    "auth",
    "apikey",
    "api_key",
    "access_token",
    "refresh_token",
    "client_secret",
    "client_private",
    "private_key",
    "pin",
    // webrtc.ice_servers (TURN)
    "credential",
];

/// Suffixes that make a name secret (`tls_key`, `auth_token`, `user_password`...).
const SECRET_SUFFIXES: &[&str] = &["_key", "_token", "_secret", "_password", "_pass", "_pwd"];

/// Whether a parameter or YAML key name holds a secret.
fn is_secret_name(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_NAMES.contains(&name.as_str()) || SECRET_SUFFIXES.iter().any(|s| name.ends_with(s))
}

/// Masks the credentials of every URL in `url` (a source string): the password of
/// `scheme://user:password@host`, a lone `scheme://secret@host` user part, and the values of
/// secret query or `#` parameters (`password`, `pass`, `pwd`, `token`, `key`, `secret`, `auth`...).
/// URLs nested in `exec:` / `ffmpeg:` sources are masked too.
///
/// `"rtsp://admin:pa$$@10.0.0.1/x"` → `"rtsp://admin:***@10.0.0.1/x"`.
pub fn mask_url(url: &str) -> String {
    if url.contains("://") {
        mask_urls(url)
    } else {
        // `ffmpeg:cam#video=h264#token=x`, `echo:...?pass=x`: only parameters can be secret.
        mask_params(url)
    }
}

/// Masks every URL credential in free text (see [`mask_url`]) and the values of YAML / JSON keys
/// named like secrets (`password: x`, `"token": "x"`, block scalars such as `tls_key: |`).
pub fn mask_text(text: &str) -> String {
    mask_key_values(&mask_urls(text))
}

/// Characters that end a URL in free text.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | '`')
}

/// Finds every `://` and masks the URL that follows (whatever the scheme: when in doubt, mask).
fn mask_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("://") {
        let body = &rest[pos + 3..];
        let end = body.find(ends_url).unwrap_or(body.len());
        out.push_str(&rest[..pos + 3]);
        out.push_str(&mask_url_body(&body[..end]));
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// Masks the part of one URL after `scheme://`.
fn mask_url_body(body: &str) -> String {
    // The user part ends at the last '@' before any query ('?'); passwords may hold '/' or '#'.
    let limit = body.find('?').unwrap_or(body.len());
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    if let Some(at) = body[..limit].rfind('@') {
        let userinfo = &body[..at];
        let colon = userinfo.find(':');
        let slash = userinfo.find('/');
        match (colon, slash) {
            (Some(c), s) if !matches!(s, Some(s) if s < c) => {
                out.push_str(&userinfo[..c]);
                out.push(':');
                out.push_str(MASK);
                out.push('@');
                rest = &body[at + 1..];
            }
            (None, None) if !userinfo.contains('#') && !userinfo.is_empty() => {
                out.push_str(MASK);
                out.push('@');
                rest = &body[at + 1..];
            }
            _ => {}
        }
    }
    out.push_str(&mask_params(rest));
    out
}

/// Masks secret `name=value` parameters after `?`, `&` or `#`.
fn mask_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_params = false;
    let mut rest = text;
    loop {
        let Some(sep) = rest.find(['?', '&', '#']) else {
            out.push_str(rest);
            break;
        };
        if !in_params && rest.as_bytes()[sep] == b'&' {
            // '&' before any '?' or '#' is part of the path.
            out.push_str(&rest[..=sep]);
            rest = &rest[sep + 1..];
            continue;
        }
        in_params = true;
        out.push_str(&rest[..=sep]);
        rest = &rest[sep + 1..];
        let param_end = rest.find(['&', '#']).unwrap_or(rest.len());
        let param = &rest[..param_end];
        match param.split_once('=') {
            Some((name, value)) if is_secret_name(name) && !value.is_empty() => {
                out.push_str(name);
                out.push('=');
                out.push_str(MASK);
            }
            _ => out.push_str(param),
        }
        rest = &rest[param_end..];
    }
    out
}

/// Masks values of secret-named keys written `key: value` (YAML) or `"key": "value"` (JSON).
fn mask_key_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut lines = text.split_inclusive('\n').peekable();
    while let Some(line) = lines.next() {
        let (masked, block_indent) = mask_line(line);
        out.push_str(&masked);
        // A block scalar (`tls_key: |`): mask the lines indented deeper than the key.
        if let Some(indent) = block_indent {
            while let Some(next) = lines.peek() {
                let content = next.trim_end_matches(['\n', '\r']);
                let deeper =
                    content.trim().is_empty() || content.len() - content.trim_start_matches(' ').len() > indent;
                if !deeper {
                    break;
                }
                let nl = &next[content.len()..];
                if !content.trim().is_empty() {
                    let lead = content.len() - content.trim_start().len();
                    out.push_str(&content[..lead]);
                    out.push_str(MASK);
                }
                out.push_str(nl);
                lines.next();
            }
        }
    }
    out
}

/// Masks secret values on one line; returns the line and, when a secret block scalar starts here,
/// the indentation of its key.
fn mask_line(line: &str) -> (String, Option<usize>) {
    let mut out = String::with_capacity(line.len());
    let mut block = None;
    let mut copied = 0;
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b':' {
            i += 1;
            continue;
        }
        // The key before ':' (optionally quoted).
        let mut key_end = i;
        while key_end > 0 && bytes[key_end - 1] == b' ' {
            key_end -= 1;
        }
        let quoted = key_end > 0 && matches!(bytes[key_end - 1], b'"' | b'\'');
        let name_end = if quoted { key_end - 1 } else { key_end };
        let mut name_start = name_end;
        while name_start > 0
            && (bytes[name_start - 1].is_ascii_alphanumeric() || matches!(bytes[name_start - 1], b'_' | b'-'))
        {
            name_start -= 1;
        }
        let mut before = name_start;
        if quoted && before > 0 && matches!(bytes[before - 1], b'"' | b'\'') {
            before -= 1;
        }
        let boundary = before == 0 || matches!(bytes[before - 1], b' ' | b'\t' | b'{' | b',' | b'-' | b'[');
        let after = &line[i + 1..];
        let spaced = after.is_empty() || after.starts_with([' ', '\t', '\r', '\n']);
        let json_value = quoted && after.trim_start().starts_with('"');
        if name_start == name_end
            || !boundary
            || !(spaced || json_value)
            || !is_secret_name(&line[name_start..name_end])
        {
            i += 1;
            continue;
        }
        // The value: quoted string, or plain text up to a flow separator or a comment.
        let value_start = i + 1 + (after.len() - after.trim_start_matches([' ', '\t']).len());
        let value = &line[value_start..];
        let value_len = match value.as_bytes().first() {
            None | Some(b'\r' | b'\n' | b'#') => 0,
            Some(&q @ (b'"' | b'\'')) => {
                let mut j = 1;
                let vb = value.as_bytes();
                while j < vb.len() {
                    if vb[j] == b'\\' && q == b'"' {
                        j += 2;
                        continue;
                    }
                    if vb[j] == q {
                        if q == b'\'' && vb.get(j + 1) == Some(&b'\'') {
                            j += 2;
                            continue;
                        }
                        j += 1;
                        break;
                    }
                    j += 1;
                }
                j.min(vb.len())
            }
            Some(_) => {
                let mut end = value.len();
                for (j, c) in value.char_indices() {
                    if matches!(c, '\r' | '\n' | ',' | '}' | ']')
                        || (c == '#' && j > 0 && value[..j].ends_with([' ', '\t']))
                    {
                        end = j;
                        break;
                    }
                }
                value[..end].trim_end().len()
            }
        };
        let text_value = &value[..value_len];
        if text_value.starts_with(['|', '>']) {
            let indent = line.len() - line.trim_start_matches(' ').len();
            block = Some(indent);
        } else if !text_value.is_empty() && !matches!(text_value, "\"\"" | "''") {
            out.push_str(&line[copied..value_start]);
            if text_value.starts_with('"') {
                out.push_str("\"***\"");
            } else if text_value.starts_with('\'') {
                out.push_str("'***'");
            } else {
                out.push_str(MASK);
            }
            copied = value_start + value_len;
        }
        i = value_start + value_len.max(1);
    }
    out.push_str(line.get(copied..).unwrap_or_default());
    (out, block)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password() {
        assert_eq!(mask_url("rtsp://admin:pa$$@10.0.0.1/x"), "rtsp://admin:***@10.0.0.1/x");
        assert_eq!(mask_url("rtsp://admin:p@ss/w#rd@10.0.0.1:554/s?a=1"), "rtsp://admin:***@10.0.0.1:554/s?a=1");
        assert_eq!(mask_url("tapo://cloudpass@192.168.1.5"), "tapo://***@192.168.1.5");
        assert_eq!(mask_url("rtsp://10.0.0.1/x"), "rtsp://10.0.0.1/x");
        assert_eq!(mask_url("rtsp://user:@h/x"), "rtsp://user:***@h/x");
    }

    #[test]
    fn url_params() {
        assert_eq!(
            mask_url("http://h/snap.jpg?user=admin&password=secret&ch=1"),
            "http://h/snap.jpg?user=admin&password=***&ch=1"
        );
        assert_eq!(
            mask_url("webrtc:http://h/x#format=wyze#api_key=abc#client_id=1"),
            "webrtc:http://h/x#format=wyze#api_key=***#client_id=1"
        );
        assert_eq!(mask_url("rtsp://h/x?token=t0k#backchannel=0"), "rtsp://h/x?token=***#backchannel=0");
        assert_eq!(mask_url("ffmpeg:cam#video=h264#pass=x"), "ffmpeg:cam#video=h264#pass=***");
        assert_eq!(mask_url("rtsp://h/a&b?key=1"), "rtsp://h/a&b?key=***");
    }

    #[test]
    fn nested_urls() {
        assert_eq!(mask_url("ffmpeg:rtsp://u:p@h/x#video=h264"), "ffmpeg:rtsp://u:***@h/x#video=h264");
        assert_eq!(
            mask_url("exec:ffmpeg -i rtsp://u:p@h/x -i http://a:b@c/y -f rtsp {output}"),
            "exec:ffmpeg -i rtsp://u:***@h/x -i http://a:***@c/y -f rtsp {output}"
        );
    }

    #[test]
    fn never_panics() {
        for s in [
            "",
            "://",
            "a://",
            "://@",
            "x://@",
            "x://:@",
            "x://?",
            "x://#=&?",
            "é://é:é@é",
            "rtsp://ü:ö@ä/?password=ß#key=€",
            "x:://",
            ":",
            "password:",
            "{password: }",
            "\"password\":",
            "password: \"",
            "key: '",
            "token: |",
        ] {
            let _ = mask_url(s);
            let _ = mask_text(s);
        }
        assert_eq!(mask_url("rtsp://ü:ö@ä/"), "rtsp://ü:***@ä/");
        assert_eq!(mask_url("é://ü:ö@ä/"), "é://ü:***@ä/");
    }

    #[test]
    fn text_yaml_values() {
        let text = "api:\n  username: admin\n  password: \"s3cret\" # the pass\nrtsp:\n  password: hunter2\n  token: 'a''b'\nwebrtc:\n  ice_servers: [{urls: [\"turn:x\"], username: u, password: p}]\nstreams:\n  cam: rtsp://admin:pw@h/x\n  passive: rtsp://h/y\n";
        let want = "api:\n  username: admin\n  password: \"***\" # the pass\nrtsp:\n  password: ***\n  token: '***'\nwebrtc:\n  ice_servers: [{urls: [\"turn:x\"], username: u, password: ***}]\nstreams:\n  cam: rtsp://admin:***@h/x\n  passive: rtsp://h/y\n";
        assert_eq!(mask_text(text), want);
    }

    #[test]
    fn text_block_scalar_and_json() {
        let text = "api:\n  tls_cert: |\n    CERT\n  tls_key: |\n    -----BEGIN PRIVATE KEY-----\n    abc\n\n    -----END PRIVATE KEY-----\n  listen: \":1984\"\n";
        let want = "api:\n  tls_cert: |\n    CERT\n  tls_key: |\n    ***\n    ***\n\n    ***\n  listen: \":1984\"\n";
        assert_eq!(mask_text(text), want);
        assert_eq!(mask_text(r#"{"user":"a","password":"x\"y","n":1}"#), r#"{"user":"a","password":"***","n":1}"#);
        assert_eq!(
            mask_text("error: dial rtsp://a:b@h/x: wrong password: no"),
            "error: dial rtsp://a:***@h/x: wrong password: ***"
        );
        assert_eq!(mask_text("password:\n  user: x\n"), "password:\n  user: x\n");
    }
}
