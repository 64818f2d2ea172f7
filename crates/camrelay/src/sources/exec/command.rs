//! Command lines and `#` parameters of `exec:` URLs: go2rtc's `#key=value` query, its quoting of
//! command lines, kill signals and timeouts, and `exec.allow_paths`.

use std::time::Duration;

use crate::secrets::mask_url;

/// go2rtc's `streams.ParseQuery`: `#`-separated `key=value` (or bare `key`) pairs, in order.
pub fn parse_query(s: &str) -> Vec<(String, String)> {
    s.split('#')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// First value of `key` in a parsed query.
pub fn query_get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// go2rtc's `shell.QuoteSplit`: splits on spaces; a word containing `"` runs to the next `" ` and
/// loses its quotes. (go2rtc keeps the quotes of a quoted last word; we strip them too.)
pub fn quote_split(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let mut is = s.find(' ');
        if let Some(0) = is {
            s = &s[1..];
            continue;
        }
        if let Some(sp) = is {
            if s[..sp].contains('"') {
                is = s.find("\" ").map(|q| q + 1);
            }
        }
        match is {
            Some(i) => {
                out.push(s[..i].replace('"', ""));
                s = &s[i + 1..];
            }
            None => {
                out.push(s.replace('"', ""));
                break;
            }
        }
    }
    out
}

/// A signal by number (`2`) or name (`sigint`, `SIGINT`, `int`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.trim().parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.trim().to_ascii_lowercase();
    let name = name.strip_prefix("sig").unwrap_or(&name);
    Some(match name {
        "hup" => libc::SIGHUP,
        "int" => libc::SIGINT,
        "quit" => libc::SIGQUIT,
        "abrt" => libc::SIGABRT,
        "kill" => libc::SIGKILL,
        "usr1" => libc::SIGUSR1,
        "usr2" => libc::SIGUSR2,
        "pipe" => libc::SIGPIPE,
        "alrm" => libc::SIGALRM,
        "term" => libc::SIGTERM,
        "cont" => libc::SIGCONT,
        "stop" => libc::SIGSTOP,
        "tstp" => libc::SIGTSTP,
        "winch" => libc::SIGWINCH,
        _ => return None,
    })
}

/// The `#` parameters of an `exec:` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecParams {
    pub kill_signal: i32,
    pub kill_timeout: Duration,
    pub start_timeout: Duration,
    pub backchannel: bool,
}

impl Default for ExecParams {
    fn default() -> Self {
        ExecParams {
            kill_signal: libc::SIGKILL,
            kill_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
            backchannel: false,
        }
    }
}

fn parse_seconds(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (0.0..1e7).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

impl ExecParams {
    pub fn parse(query: &[(String, String)]) -> Result<ExecParams, String> {
        let mut p = ExecParams::default();
        for (k, v) in query {
            match k.as_str() {
                "killsignal" => p.kill_signal = parse_signal(v).ok_or(format!("invalid killsignal {v:?}"))?,
                "killtimeout" => p.kill_timeout = parse_seconds(v).ok_or(format!("invalid killtimeout {v:?}"))?,
                "starttimeout" => p.start_timeout = parse_seconds(v).ok_or(format!("invalid starttimeout {v:?}"))?,
                "backchannel" => p.backchannel = v == "1",
                _ => {}
            }
        }
        Ok(p)
    }
}

/// go2rtc's `exec.allow_paths`: a command may run only when its program (first word, as written) is
/// one of `allow_paths`; an empty list allows any.
pub fn check_program(allow_paths: &[String], argv: &[String]) -> Result<(), String> {
    let program = argv.first().map(String::as_str).unwrap_or("");
    if allow_paths.is_empty() || allow_paths.iter().any(|p| p == program) {
        return Ok(());
    }
    Err(format!("program {:?} is not in exec.allow_paths ({})", mask_url(program), allow_paths.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quote_split_like_go2rtc() {
        assert_eq!(quote_split("ffmpeg  -i x -f rtsp {output}"), ["ffmpeg", "-i", "x", "-f", "rtsp", "{output}"]);
        assert_eq!(
            quote_split(r#"ffmpeg -f dshow -i "video=FaceTime HD Camera" -c copy"#),
            ["ffmpeg", "-f", "dshow", "-i", "video=FaceTime HD Camera", "-c", "copy"]
        );
        assert_eq!(quote_split(r#"sh -c "cat > /tmp/x""#), ["sh", "-c", "cat > /tmp/x"]);
        assert!(quote_split("").is_empty());
    }

    #[test]
    fn params() {
        let p = ExecParams::parse(&parse_query("killsignal=2#killtimeout=3#backchannel=1#starttimeout=0.5")).unwrap();
        assert_eq!(
            p,
            ExecParams {
                kill_signal: libc::SIGINT,
                kill_timeout: Duration::from_secs(3),
                start_timeout: Duration::from_millis(500),
                backchannel: true
            }
        );
        assert_eq!(ExecParams::parse(&parse_query("killsignal=sigterm")).unwrap().kill_signal, libc::SIGTERM);
        assert_eq!(ExecParams::parse(&parse_query("killsignal=INT")).unwrap().kill_signal, libc::SIGINT);
        assert_eq!(ExecParams::parse(&[]).unwrap(), ExecParams::default());
        assert_eq!(ExecParams::default().kill_signal, libc::SIGKILL);
        assert!(ExecParams::parse(&parse_query("killsignal=nope")).is_err());
        assert!(ExecParams::parse(&parse_query("killtimeout=-1")).is_err());
    }
}
