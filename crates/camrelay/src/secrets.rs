//! Masking of secrets (URL credentials, secret query parameters, `password:`-like values) for the
//! API, logs and error messages. Masking is textual and conservative: when in doubt, mask. Nothing
//! here panics, whatever the input.

const MASK: &str = "***";

/// Parameter / key names whose values are secrets (compared lowercase).
const SECRET_NAMES: &[&str] = &[
    "password",
    // SRT's `?passphrase=` (srt:// sources).
    "passphrase",
    "pass",
    "passwd",
    "pwd",
    "token",
    // MediaMTX's `?jwt=TOKEN`
    "jwt",
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
    let url = &mask_header_params(url);
    if url.contains("://") {
        mask_urls(url)
    } else {
        // `ffmpeg:cam#video=h264#token=x`, `echo:...?pass=x`: only parameters can be secret.
        mask_params(url)
    }
}

/// `#header=Authorization: Bearer x` (HTTP sources' extra headers): the value of a header that carries
/// credentials, up to the next `#`, line break or quote (a value may hold spaces).
fn mask_header_params(text: &str) -> String {
    const PARAM: &str = "#header=";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.as_bytes().windows(PARAM.len()).position(|w| w.eq_ignore_ascii_case(PARAM.as_bytes())) {
        let value_start = at + PARAM.len();
        out.push_str(&rest[..value_start]);
        rest = &rest[value_start..];
        let end = rest.find(['#', '\n', '"']).unwrap_or(rest.len());
        let header = &rest[..end];
        match header.split_once(':') {
            Some((name, value)) if is_secret_header(name) && !value.trim().is_empty() => {
                out.push_str(name);
                out.push_str(": ");
                out.push_str(MASK);
            }
            _ => out.push_str(header),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Masks every URL credential in free text (see [`mask_url`]) and the values of YAML / JSON keys
/// named like secrets (`password: x`, `"token": "x"`, block scalars such as `tls_key: |`).
pub fn mask_text(text: &str) -> String {
    mask_key_values(&mask_urls(&mask_header_params(text)))
}

/// Quotes and angle brackets: they end a URL in free text (`"rtsp://..."`, `<http://...>`).
fn is_quote(c: char) -> bool {
    matches!(c, '"' | '\'' | '<' | '>' | '`')
}

/// Finds every `://` and masks the URL that follows (whatever the scheme: when in doubt, mask).
fn mask_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut next_at = NextAt { text, stop: None };
    let mut done = 0;
    while let Some(found) = text[done..].find("://") {
        let pos = done + found;
        // The character before the scheme: a quote or bracket there is closed at the URL's end.
        let scheme_start = text[..pos].trim_end_matches(|c: char| c.is_ascii_alphanumeric() || "+-.".contains(c));
        let end = url_end(text, pos + 3, scheme_start.chars().next_back(), &mut next_at);
        out.push_str(&text[done..pos + 3]);
        out.push_str(&mask_url_body(&text[pos + 3..end]));
        done = end;
    }
    out.push_str(&text[done..]);
    out
}

/// Where the URL whose body (after `scheme://`) starts at `start` ends in free text: at whitespace, or
/// at a quote or angle bracket, except one inside a `user:password` part (`user:pa"ss@host`): one that
/// is not the (unescaped) closer of `opener` and comes after a `:` and before the URL's `@`. One pass
/// over the URL (free text can be long).
fn url_end(text: &str, start: usize, opener: Option<char>, next_at: &mut NextAt) -> usize {
    let closer = match opener {
        Some('<') => Some('>'),
        Some(c @ ('"' | '\'' | '`')) => Some(c),
        _ => None,
    };
    let body = &text[start..];
    let mut seen_at = false;
    let mut path_before_colon = false;
    // Whether the part before the first ':' can be a user name.
    let mut user: Option<bool> = None;
    let mut escaped_next = false;
    for (i, c) in body.char_indices() {
        match c {
            c if c.is_whitespace() => return start + i,
            '@' => seen_at = true,
            ':' if user.is_none() => user = Some(!path_before_colon),
            '/' | '?' => path_before_colon = true,
            _ => {}
        }
        if !is_quote(c) {
            continue;
        }
        // `\"` in JSON and double-quoted YAML, `''` in single-quoted YAML.
        let after_pair = std::mem::take(&mut escaped_next);
        escaped_next = c == '\'' && !after_pair && body[i + 1..].starts_with('\'');
        let escaped = after_pair || escaped_next || (c == '"' && body[..i].ends_with('\\'));
        let closes = Some(c) == closer && !escaped;
        let in_password = !seen_at && user == Some(true) && next_at.is_at(start + i);
        if closes || !in_password {
            return start + i;
        }
    }
    text.len()
}

/// Whether the next '@' or whitespace from a position on is an '@', for positions asked in increasing
/// order: each part of the text is scanned once.
struct NextAt<'a> {
    text: &'a str,
    /// The last answer: the position of that '@' or whitespace (or the text's end).
    stop: Option<usize>,
}

impl NextAt<'_> {
    fn is_at(&mut self, pos: usize) -> bool {
        let stop = match self.stop {
            Some(stop) if stop >= pos => stop,
            _ => {
                let found = self.text[pos..].find(|c: char| c == '@' || c.is_whitespace());
                found.map_or(self.text.len(), |k| pos + k)
            }
        };
        self.stop = Some(stop);
        self.text[stop..].starts_with('@')
    }
}

/// Masks the part of one URL after `scheme://`.
fn mask_url_body(body: &str) -> String {
    // The user part ends at the last '@' before the query ('?' after an '@'); passwords may hold '/',
    // '?' or '#'. A '/' or '?' before the ':' is a path or a query, not a user part.
    let limit = body.find('@').and_then(|at| body[at..].find('?').map(|q| at + q)).unwrap_or(body.len());
    let mut out = String::with_capacity(body.len());
    let mut rest = body;
    if let Some(at) = body[..limit].rfind('@') {
        let userinfo = &body[..at];
        let colon = userinfo.find(':');
        let slash = userinfo.find(['/', '?']);
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

/// Whether a `Name: value` request header carries credentials (`Authorization`, `Cookie`,
/// `X-Api-Key`, `X-Auth-Token`...).
pub fn is_secret_header(header: &str) -> bool {
    let name = header.split_once(':').map_or(header, |(n, _)| n).trim().to_ascii_lowercase();
    matches!(name.as_str(), "authorization" | "proxy-authorization" | "cookie")
        || ["key", "token", "auth", "secret", "pass", "session"].iter().any(|w| name.contains(w))
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
                let lead = content.len() - content.trim_start().len();
                out.push_str(&content[..lead]);
                if lead < content.len() {
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
        // A quoted value left open at the end of the line goes on on the next lines (YAML).
        let mut open_quote = false;
        let value_len = match value.as_bytes().first() {
            None | Some(b'\r' | b'\n' | b'#') => 0,
            Some(&q @ (b'"' | b'\'')) => {
                let mut j = 1;
                let vb = value.as_bytes();
                open_quote = true;
                // Up to the closing quote, within the line (its line break is kept).
                while j < vb.len() && !matches!(vb[j], b'\r' | b'\n') {
                    if vb[j] == b'\\' && q == b'"' && !matches!(vb.get(j + 1), Some(b'\r' | b'\n')) {
                        j += 2;
                        continue;
                    }
                    if vb[j] == q {
                        if q == b'\'' && vb.get(j + 1) == Some(&b'\'') {
                            j += 2;
                            continue;
                        }
                        j += 1;
                        open_quote = false;
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
        let block_scalar = text_value.starts_with(['|', '>']);
        if block_scalar || open_quote {
            // The value goes on on the lines indented deeper than the key.
            let indent = line.len() - line.trim_start_matches(' ').len();
            block = Some(indent);
        }
        if !block_scalar && !text_value.is_empty() && !matches!(text_value, "\"\"" | "''") {
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
    fn credential_headers_are_masked() {
        assert_eq!(
            mask_url("http://cam/x#header=Authorization: Bearer SECRET123#header=X-Trace: 1"),
            "http://cam/x#header=Authorization: ***#header=X-Trace: 1"
        );
        assert_eq!(mask_url("http://cam/x#header=Cookie: session=abc"), "http://cam/x#header=Cookie: ***");
        assert_eq!(mask_url("http://cam/x#header=X-Api-Key:k"), "http://cam/x#header=X-Api-Key: ***");
        assert!(is_secret_header("authorization: x") && !is_secret_header("Accept: */*"));
    }

    #[test]
    fn url_password() {
        assert_eq!(mask_url("rtsp://admin:pa$$@10.0.0.1/x"), "rtsp://admin:***@10.0.0.1/x");
        assert_eq!(mask_url("rtsp://admin:p@ss/w#rd@10.0.0.1:554/s?a=1"), "rtsp://admin:***@10.0.0.1:554/s?a=1");
        assert_eq!(mask_url("tapo://cloudpass@192.168.1.5"), "tapo://***@192.168.1.5");
        assert_eq!(mask_url("rtsp://10.0.0.1/x"), "rtsp://10.0.0.1/x");
        assert_eq!(mask_url("rtsp://user:@h/x"), "rtsp://user:***@h/x");
    }

    #[test]
    fn password_with_quotes_or_question_mark_is_masked() {
        // Found by the `secrets` fuzz target: a quote or bracket in the password ended the URL, and
        // a '?' in it was taken for the query, so the password was left as written.
        for pw in ["pa\"ss", "pa'ss", "p<a>s`s", "{\"a\":1}", "pa?ss", "p?a'b/c#d", "?", "'"] {
            let url = format!("rtsp://user:{pw}@host/");
            assert_eq!(mask_url(&url), "rtsp://user:***@host/", "{url}");
            assert_eq!(mask_text(&url), "rtsp://user:***@host/", "{url}");
            let exec = format!("exec:ffmpeg -i {url} -f rtsp {{output}}");
            assert_eq!(mask_url(&exec), "exec:ffmpeg -i rtsp://user:***@host/ -f rtsp {output}");
        }
        // Escaped quotes in JSON and YAML strings are part of the password too.
        assert_eq!(mask_text(r#"{"src":"rtsp://u:pa\"ss@h/x"}"#), r#"{"src":"rtsp://u:***@h/x"}"#);
        assert_eq!(mask_text("src: 'rtsp://u:pa''ss@h/x'"), "src: 'rtsp://u:***@h/x'");
        // Quotes around URLs still end them, and a query's '@' is not a user part.
        assert_eq!(mask_text(r#"["rtsp://h:554/x","a:b@c"]"#), r#"["rtsp://h:554/x","a:b@c"]"#);
        assert_eq!(mask_text("<rtsp://u:p@h/x>'s"), "<rtsp://u:***@h/x>'s");
        assert_eq!(mask_url("http://h?x=a@b"), "http://h?x=a@b");
        assert_eq!(mask_url("http://h/x?u=a:b@c"), "http://h/x?u=a:b@c");
        assert_eq!(mask_url("rtsp://u:p@h/x?email=a@b&pass=c"), "rtsp://u:***@h/x?email=a@b&pass=***");
    }

    #[test]
    fn long_text_is_masked_in_linear_time() {
        // Log lines and config files can be long: no rescanning of the text per quote or per URL.
        let start = std::time::Instant::now();
        for unit in ["x://a:\"", "x://a:'", "x://\"@", "'a:b''", "password: \"x\\\"\n"] {
            let text = unit.repeat(50_000);
            let _ = mask_text(&text);
            let _ = mask_url(&text);
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(20), "{:?}", start.elapsed());
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
