//! RTSP Basic and Digest (RFC 2617, MD5) authentication, server and client side.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use md5::{Digest, Md5};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("WWW-Authenticate has no scheme")]
    Empty,
    #[error("unsupported authentication scheme `{0}` (only Basic and Digest are supported)")]
    UnsupportedScheme(String),
    #[error("Digest challenge without a `{0}` parameter")]
    MissingParam(&'static str),
}

fn md5_hex(parts: &[&str]) -> String {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p.as_bytes());
    }
    let out = h.finalize();
    let mut s = String::with_capacity(32);
    for b in out.iter() {
        s.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        s.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    s
}

/// Compares without an early exit so response timing does not leak how much of a secret matched.
fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = (a.len() != b.len()) as u8;
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= x ^ y;
    }
    diff == 0
}

/// `scheme` followed by `k=v` / `k="v"` pairs; a header may carry several challenges
/// (`Digest realm="a", nonce="b", Basic realm="a"`).
fn parse_auth_list(value: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let b = value.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize, pred: &dyn Fn(u8) -> bool| {
        while *i < b.len() && pred(b[*i]) {
            *i += 1;
        }
    };
    while i < b.len() && out.len() < 8 {
        skip(&mut i, &|c| c == b' ' || c == b'\t' || c == b',');
        let start = i;
        skip(&mut i, &|c| !matches!(c, b' ' | b'\t' | b',' | b'='));
        let token = &value[start..i];
        if token.is_empty() {
            // A stray `=`: skip it.
            i += 1;
            continue;
        }
        let mut j = i;
        skip(&mut j, &|c| c == b' ' || c == b'\t');
        // The first token is always a scheme, even if `=` follows (`Digest =...`).
        if j < b.len() && b[j] == b'=' && !out.is_empty() {
            // A parameter of the current challenge.
            j += 1;
            skip(&mut j, &|c| c == b' ' || c == b'\t');
            let mut v = String::new();
            if j < b.len() && b[j] == b'"' {
                j += 1;
                // Quoted string with `\` escapes; an unterminated quote runs to the end.
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    let ch_start = j;
                    j += 1;
                    while j < b.len() && !value.is_char_boundary(j) {
                        j += 1;
                    }
                    v.push_str(&value[ch_start..j]);
                }
                j += 1;
            } else {
                let vs = j;
                skip(&mut j, &|c| c != b',');
                v.push_str(value[vs..j].trim());
            }
            i = j.min(b.len());
            match out.last_mut() {
                Some((_, params)) if params.len() < 32 => params.push((token.to_ascii_lowercase(), v)),
                _ => {}
            }
        } else {
            out.push((token.to_string(), Vec::new()));
        }
    }
    out
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Server-side credentials check for one user.
#[derive(Clone)]
pub struct Authenticator {
    username: String,
    password: String,
    realm: String,
}

impl std::fmt::Debug for Authenticator {
    // Never print the password.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("username", &self.username)
            .field("realm", &self.realm)
            .finish_non_exhaustive()
    }
}

impl Authenticator {
    pub fn new(username: impl Into<String>, password: impl Into<String>, realm: impl Into<String>) -> Authenticator {
        Authenticator { username: username.into(), password: password.into(), realm: realm.into() }
    }

    /// `WWW-Authenticate` values for a 401, Digest first (clients pick the first they support).
    pub fn challenge_headers(&self, nonce: &str) -> Vec<String> {
        vec![
            format!("Digest realm=\"{}\", nonce=\"{}\"", quote(&self.realm), quote(nonce)),
            format!("Basic realm=\"{}\"", quote(&self.realm)),
        ]
    }

    /// Checks an `Authorization` value for `method` (e.g. `DESCRIBE`) against the nonce we issued.
    /// Digest is MD5 with or without `qop=auth`; the `uri` the client hashed is taken from the header
    /// (clients hash the URI they sent, which may differ in form from ours).
    pub fn verify(&self, method: &str, authorization: &str, nonce: &str) -> bool {
        let value = authorization.trim();
        let (scheme, rest) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
        if scheme.eq_ignore_ascii_case("basic") {
            let Ok(decoded) = BASE64.decode(rest.trim()) else {
                return false;
            };
            let expected = format!("{}:{}", self.username, self.password);
            return ct_eq(&decoded, expected.as_bytes());
        }
        if !scheme.eq_ignore_ascii_case("digest") {
            return false;
        }
        let Some((_, params)) = parse_auth_list(value).into_iter().next() else {
            return false;
        };
        let p = |n| param(&params, n);
        let (Some(user), Some(realm), Some(their_nonce), Some(uri), Some(response)) =
            (p("username"), p("realm"), p("nonce"), p("uri"), p("response"))
        else {
            return false;
        };
        if p("algorithm").is_some_and(|a| !a.eq_ignore_ascii_case("md5")) {
            return false;
        }
        let user_ok = ct_eq(user.as_bytes(), self.username.as_bytes());
        let realm_ok = realm == self.realm;
        let nonce_ok = ct_eq(their_nonce.as_bytes(), nonce.as_bytes());
        let ha1 = md5_hex(&[&self.username, &self.realm, &self.password]);
        let ha2 = md5_hex(&[method, uri]);
        let expected = match p("qop") {
            Some(qop) if qop.eq_ignore_ascii_case("auth") => {
                let (Some(nc), Some(cnonce)) = (p("nc"), p("cnonce")) else {
                    return false;
                };
                md5_hex(&[&ha1, nonce, nc, cnonce, "auth", &ha2])
            }
            Some(_) => return false, // auth-int is not offered
            None => md5_hex(&[&ha1, nonce, &ha2]),
        };
        let response_ok = ct_eq(response.to_ascii_lowercase().as_bytes(), expected.as_bytes());
        user_ok & realm_ok & nonce_ok & response_ok
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestChallenge {
    pub realm: String,
    pub nonce: String,
    /// `Some("auth")` when the server offered `auth` among its qop options; we never use auth-int.
    pub qop: Option<String>,
    pub opaque: Option<String>,
    pub algorithm: Option<String>,
    pub stale: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic { realm: String },
    Digest(DigestChallenge),
}

fn challenge_from(scheme: &str, params: &[(String, String)]) -> Result<Challenge, AuthError> {
    if scheme.eq_ignore_ascii_case("basic") {
        return Ok(Challenge::Basic { realm: param(params, "realm").unwrap_or_default().to_string() });
    }
    if !scheme.eq_ignore_ascii_case("digest") {
        return Err(AuthError::UnsupportedScheme(scheme.chars().take(32).collect()));
    }
    let nonce = param(params, "nonce").ok_or(AuthError::MissingParam("nonce"))?;
    let qop = param(params, "qop")
        .and_then(|q| q.split(',').any(|o| o.trim().eq_ignore_ascii_case("auth")).then(|| "auth".to_string()));
    Ok(Challenge::Digest(DigestChallenge {
        realm: param(params, "realm").unwrap_or_default().to_string(),
        nonce: nonce.to_string(),
        qop,
        opaque: param(params, "opaque").map(str::to_string),
        algorithm: param(params, "algorithm").map(str::to_string),
        stale: param(params, "stale").is_some_and(|s| s.eq_ignore_ascii_case("true")),
    }))
}

/// Parses one `WWW-Authenticate` value; if it carries several challenges, the first usable one.
pub fn parse_challenge(value: &str) -> Result<Challenge, AuthError> {
    let list = parse_auth_list(value);
    let mut first_err = AuthError::Empty;
    for (i, (scheme, params)) in list.iter().enumerate() {
        match challenge_from(scheme, params) {
            Ok(c) => return Ok(c),
            Err(e) if i == 0 => first_err = e,
            Err(_) => {}
        }
    }
    Err(first_err)
}

/// The strongest challenge among all `WWW-Authenticate` values of a 401: Digest (MD5) before Basic.
pub fn best_challenge<'a>(values: impl IntoIterator<Item = &'a str>) -> Option<Challenge> {
    let mut basic = None;
    for v in values {
        for (scheme, params) in parse_auth_list(v) {
            match challenge_from(&scheme, &params) {
                Ok(Challenge::Digest(d)) if !matches!(d.algorithm.as_deref(), Some(a) if !a.eq_ignore_ascii_case("md5")) => {
                    return Some(Challenge::Digest(d))
                }
                Ok(b @ Challenge::Basic { .. }) if basic.is_none() => basic = Some(b),
                _ => {}
            }
        }
    }
    basic
}

/// The `Authorization` value answering `challenge` for request `method uri`; `nc` counts the requests
/// made with this nonce (starting at 1). The cnonce is derived from the inputs (this crate has no
/// randomness source); use [`authorization_with_cnonce`] to pass a random one.
pub fn authorization(
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    challenge: &Challenge,
    nc: u32,
) -> String {
    let cnonce = match challenge {
        Challenge::Digest(d) => md5_hex(&[&d.nonce, &nc.to_string(), uri, username]).chars().take(16).collect(),
        Challenge::Basic { .. } => String::new(),
    };
    authorization_with_cnonce(method, uri, username, password, challenge, nc, &cnonce)
}

pub fn authorization_with_cnonce(
    method: &str,
    uri: &str,
    username: &str,
    password: &str,
    challenge: &Challenge,
    nc: u32,
    cnonce: &str,
) -> String {
    let d = match challenge {
        Challenge::Basic { .. } => return format!("Basic {}", BASE64.encode(format!("{username}:{password}"))),
        Challenge::Digest(d) => d,
    };
    let ha1 = md5_hex(&[username, &d.realm, password]);
    let ha2 = md5_hex(&[method, uri]);
    let nc = format!("{nc:08x}");
    let mut out = format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\"",
        quote(username),
        quote(&d.realm),
        quote(&d.nonce),
        quote(uri)
    );
    let response = if d.qop.is_some() {
        md5_hex(&[&ha1, &d.nonce, &nc, cnonce, "auth", &ha2])
    } else {
        md5_hex(&[&ha1, &d.nonce, &ha2])
    };
    out.push_str(&format!(", response=\"{response}\""));
    if let Some(a) = &d.algorithm {
        out.push_str(&format!(", algorithm={a}"));
    }
    if let Some(o) = &d.opaque {
        out.push_str(&format!(", opaque=\"{}\"", quote(o)));
    }
    if d.qop.is_some() {
        out.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"{}\"", quote(cnonce)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2617_vector() {
        // RFC 2617 §3.5 example.
        let c = Challenge::Digest(DigestChallenge {
            realm: "testrealm@host.com".into(),
            nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093".into(),
            qop: Some("auth".into()),
            opaque: Some("5ccc069c403ebaf9f0171e9517f40e41".into()),
            algorithm: None,
            stale: false,
        });
        let h = authorization_with_cnonce("GET", "/dir/index.html", "Mufasa", "Circle Of Life", &c, 1, "0a4f113b");
        assert!(h.contains("response=\"6629fae49393a05397450978507c4ef1\""), "{h}");
        assert!(h.contains("nc=00000001"));
        let a = Authenticator::new("Mufasa", "Circle Of Life", "testrealm@host.com");
        assert!(a.verify("GET", &h, "dcd98b7102dd2f0e8b11d0f600bfb0c093"));
        assert!(!a.verify("POST", &h, "dcd98b7102dd2f0e8b11d0f600bfb0c093"));
        assert!(!a.verify("GET", &h, "othernonce"));
    }

    #[test]
    fn server_round_trip() {
        let a = Authenticator::new("admin", "pa\"ss", "camrelay");
        let hs = a.challenge_headers("n0nce");
        assert_eq!(hs[0], "Digest realm=\"camrelay\", nonce=\"n0nce\"");
        assert_eq!(hs[1], "Basic realm=\"camrelay\"");
        let c = best_challenge(hs.iter().map(String::as_str)).unwrap();
        // ffmpeg style: Digest without qop.
        let h = authorization("DESCRIBE", "rtsp://h:8554/cam", "admin", "pa\"ss", &c, 1);
        assert!(!h.contains("qop"));
        assert!(a.verify("DESCRIBE", &h, "n0nce"));
        assert!(!a.verify("DESCRIBE", &h.replace("admin", "root"), "n0nce"));
        let bad = authorization("DESCRIBE", "rtsp://h:8554/cam", "admin", "wrong", &c, 1);
        assert!(!a.verify("DESCRIBE", &bad, "n0nce"));
        // Uppercase hex response is accepted.
        let upper = h.replace(
            &h[h.find("response=\"").unwrap() + 10..h.find("response=\"").unwrap() + 42],
            &h[h.find("response=\"").unwrap() + 10..h.find("response=\"").unwrap() + 42].to_ascii_uppercase(),
        );
        assert!(a.verify("DESCRIBE", &upper, "n0nce"));

        let basic = parse_challenge(&hs[1]).unwrap();
        let h = authorization("DESCRIBE", "x", "admin", "pa\"ss", &basic, 1);
        assert!(a.verify("DESCRIBE", &h, "n0nce"));
        assert!(!a.verify("DESCRIBE", "Basic YWRtaW46eA==", "n0nce"));
        assert!(!a.verify("DESCRIBE", "Basic !!!", "n0nce"));
        assert!(!a.verify("DESCRIBE", "Bearer x", "n0nce"));
        assert!(!a.verify("DESCRIBE", "", "n0nce"));
        assert!(!a.verify("DESCRIBE", "Digest", "n0nce"));
        assert!(!a.verify("DESCRIBE", "Digest username=\"admin\"", "n0nce"));
        assert!(!format!("{a:?}").contains("pa"));
    }

    #[test]
    fn qop_and_algorithm_checks() {
        let a = Authenticator::new("u", "p", "r");
        let c = Challenge::Digest(DigestChallenge {
            realm: "r".into(),
            nonce: "n".into(),
            qop: Some("auth".into()),
            opaque: None,
            algorithm: Some("MD5".into()),
            stale: false,
        });
        let h = authorization("PLAY", "rtsp://x/", "u", "p", &c, 3);
        assert!(h.contains("qop=auth, nc=00000003") && h.contains("algorithm=MD5"));
        assert!(a.verify("PLAY", &h, "n"));
        assert!(!a.verify("PLAY", &h.replace("algorithm=MD5", "algorithm=SHA-256"), "n"));
        assert!(!a.verify("PLAY", &h.replace("qop=auth", "qop=auth-int"), "n"));
    }

    #[test]
    fn parse_challenges() {
        let c = parse_challenge("Digest realm=\"Surveillance Server\", nonce=\"98481030\"").unwrap();
        assert_eq!(
            c,
            Challenge::Digest(DigestChallenge {
                realm: "Surveillance Server".into(),
                nonce: "98481030".into(),
                qop: None,
                opaque: None,
                algorithm: None,
                stale: false
            })
        );
        let c = parse_challenge(
            "digest realm=IPC,nonce=abc ,qop=\"auth,auth-int\", algorithm=\"MD5\", stale=TRUE, opaque=\"o\\\"x\"",
        )
        .unwrap();
        let Challenge::Digest(d) = c else { panic!() };
        assert_eq!((d.realm.as_str(), d.nonce.as_str()), ("IPC", "abc"));
        assert_eq!(d.qop.as_deref(), Some("auth"));
        assert_eq!(d.algorithm.as_deref(), Some("MD5"));
        assert_eq!(d.opaque.as_deref(), Some("o\"x"));
        assert!(d.stale);
        // Several challenges in one value, unsupported one first.
        let c = parse_challenge("Negotiate abc, Basic realm=\"r\"").unwrap();
        assert_eq!(c, Challenge::Basic { realm: "r".into() });
        assert!(matches!(parse_challenge("Foo bar=1"), Err(AuthError::UnsupportedScheme(s)) if s == "Foo"));
        assert_eq!(parse_challenge(""), Err(AuthError::Empty));
        assert_eq!(parse_challenge("Digest realm=\"x\""), Err(AuthError::MissingParam("nonce")));
        // Unterminated quote runs to the end; a stray '=' is skipped.
        let c = parse_challenge("Digest = nonce=\"y\", realm=\"x, y").unwrap();
        let Challenge::Digest(d) = c else { panic!() };
        assert_eq!((d.realm.as_str(), d.nonce.as_str()), ("x, y", "y"));
        let best = best_challenge([
            "Basic realm=\"a\"",
            "Digest realm=\"a\", nonce=\"n\", algorithm=SHA-256",
            "Digest realm=\"a\", nonce=\"m\"",
        ])
        .unwrap();
        assert!(matches!(best, Challenge::Digest(d) if d.nonce == "m"));
        assert!(best_challenge(["Foo"]).is_none());
    }

    #[test]
    fn ct_eq_works() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }
}
