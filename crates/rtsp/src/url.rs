//! URL and small header helpers: request URI → stream name, control URL resolution, `Session`,
//! `RTP-Info` and `Range`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("Session header has no session id: `{0}`")]
    EmptySession(String),
}

/// What a server needs from a request URI.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestTarget {
    /// Stream name: percent-decoded, no leading/trailing slash, no control suffix.
    pub path: String,
    /// Raw query string (without `?`), empty when none.
    pub query: String,
    /// The `trackID=N` / `streamid=N` suffix, if the URI named one track (SETUP).
    pub track: Option<u32>,
}

/// `%XX` decoding; malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b
                .get(i + 1..i + 3)
                .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `trackID=3` / `streamid=3` (case-insensitive) → 3.
fn track_suffix(segment: &str) -> Option<u32> {
    let (k, v) = segment.split_once('=')?;
    if k.eq_ignore_ascii_case("trackid") || k.eq_ignore_ascii_case("streamid") {
        v.parse().ok()
    } else {
        None
    }
}

/// Strips a trailing `/trackID=N` from `s`.
fn strip_track(s: &str) -> (&str, Option<u32>) {
    let trimmed = s.trim_end_matches('/');
    if let Some((head, last)) = trimmed.rsplit_once('/') {
        if let Some(n) = track_suffix(last) {
            return (head, Some(n));
        }
    } else if let Some(n) = track_suffix(trimmed) {
        return ("", Some(n));
    }
    (s, None)
}

/// Splits `rtsp://host:8554/cam1/trackID=0?video=h264` (or `/cam1?x`, or `*`) into stream name, query
/// and track. A control suffix is also found at the end of the query: clients append it to a
/// Content-Base that ends in a query (`rtsp://h/cam1?video=h264/trackID=0`).
pub fn parse_request_uri(uri: &str) -> RequestTarget {
    let uri = uri.trim();
    let uri = uri.split_once('#').map_or(uri, |(u, _)| u);
    // Drop `scheme://authority`; the authority ends at the first `/` or `?`.
    let rest = match uri.find("://") {
        Some(i) => {
            let after = &uri[i + 3..];
            match after.find(['/', '?']) {
                Some(j) => &after[j..],
                None => "",
            }
        }
        None => uri,
    };
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (path, mut track) = strip_track(path);
    let mut query = query;
    if track.is_none() {
        let (q, t) = strip_track(query);
        if t.is_some() {
            query = q;
            track = t;
        }
    }
    let path = path.trim_matches('/');
    let path = if path == "*" { "" } else { path };
    RequestTarget { path: percent_decode(path), query: query.to_string(), track }
}

/// The base for relative controls: Content-Base, else Content-Location, else the request URL
/// (RFC 2326 §C.1.1).
pub fn base_url<'a>(content_base: Option<&'a str>, content_location: Option<&'a str>, request_url: &'a str) -> &'a str {
    content_base
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .or(content_location.map(str::trim).filter(|s| !s.is_empty()))
        .unwrap_or(request_url)
}

/// Resolves an `a=control` value against `base`. An absolute control wins; `*` or empty means the base
/// itself; a relative one is appended with exactly one `/` between — string concatenation rather than
/// RFC 3986 resolution, because cameras (Dahua: `...?channel=1&proto=Onvif/` + `trackID=0`, H264DVR:
/// `rtsp://h/camera` + `trackID=3`) expect it and so do go2rtc, ffmpeg and live555. A control starting
/// with `/` replaces the base's path.
pub fn control_url(base: &str, control: &str) -> String {
    let control = control.trim();
    if control.is_empty() || control == "*" {
        return base.to_string();
    }
    if let Some(i) = control.find("://") {
        if control[..i].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') && i > 0 {
            return control.to_string();
        }
    }
    if control.starts_with('/') {
        if let Some(i) = base.find("://") {
            let after = &base[i + 3..];
            let end = after.find(['/', '?']).unwrap_or(after.len());
            return format!("{}{}", &base[..i + 3 + end], control);
        }
    }
    if base.ends_with('/') {
        format!("{base}{control}")
    } else {
        format!("{base}/{control}")
    }
}

/// `Session: id;timeout=60`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionHeader {
    pub id: String,
    /// Seconds; `None` when absent or unreadable (RFC 2326 default: 60).
    pub timeout: Option<u32>,
}

impl SessionHeader {
    pub fn parse(value: &str) -> Result<SessionHeader, HeaderError> {
        let mut parts = value.split(';');
        let id = parts.next().unwrap_or_default().trim();
        if id.is_empty() {
            return Err(HeaderError::EmptySession(value.chars().take(80).collect()));
        }
        let timeout = parts.find_map(|p| {
            let (k, v) = p.split_once('=')?;
            k.trim().eq_ignore_ascii_case("timeout").then(|| v.trim().parse().ok()).flatten()
        });
        Ok(SessionHeader { id: id.to_string(), timeout })
    }
}

impl fmt::Display for SessionHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)?;
        if let Some(t) = self.timeout {
            write!(f, ";timeout={t}")?;
        }
        Ok(())
    }
}

/// One entry of `RTP-Info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtpInfo {
    pub url: String,
    pub seq: Option<u16>,
    /// `None` when absent or unreadable (Wowza has sent `rtptime=-1`).
    pub rtptime: Option<u32>,
}

/// Parses `url=...;seq=..;rtptime=..,url=...`. Entries split at commas that start a new `url=`, so a
/// comma inside a URL does not break it.
pub fn parse_rtp_info(value: &str) -> Vec<RtpInfo> {
    let mut entries: Vec<String> = Vec::new();
    for piece in value.split(',') {
        let starts_entry = piece.trim_start().get(..4).is_some_and(|p| p.eq_ignore_ascii_case("url="));
        match entries.last_mut() {
            Some(last) if !starts_entry => {
                last.push(',');
                last.push_str(piece);
            }
            _ => entries.push(piece.to_string()),
        }
        if entries.len() > 64 {
            break;
        }
    }
    entries
        .iter()
        .filter_map(|e| {
            let mut info = RtpInfo { url: String::new(), seq: None, rtptime: None };
            let mut any = false;
            for p in e.split(';') {
                let Some((k, v)) = p.split_once('=') else {
                    continue;
                };
                let v = v.trim();
                match k.trim().to_ascii_lowercase().as_str() {
                    "url" => {
                        info.url = v.to_string();
                        any = true;
                    }
                    "seq" => info.seq = v.parse().ok(),
                    "rtptime" => info.rtptime = v.parse().ok(),
                    _ => {}
                }
            }
            any.then_some(info)
        })
        .collect()
}

pub fn format_rtp_info(entries: &[RtpInfo]) -> String {
    let mut parts = Vec::with_capacity(entries.len());
    for e in entries {
        let mut s = format!("url={}", e.url);
        if let Some(seq) = e.seq {
            s.push_str(&format!(";seq={seq}"));
        }
        if let Some(t) = e.rtptime {
            s.push_str(&format!(";rtptime={t}"));
        }
        parts.push(s);
    }
    parts.join(",")
}

/// `Range: npt=...` times in seconds; `start == None` means `now`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NptRange {
    pub start: Option<f64>,
    pub end: Option<f64>,
}

/// The value live servers answer PLAY with.
pub const NPT_LIVE: &str = "npt=0.000-";

/// Parses `npt=0.000-`, `npt=now-`, `npt=0.0-596.48`, `npt=12:05:35.3-`. Other units → `None`.
pub fn parse_npt_range(value: &str) -> Option<NptRange> {
    let v = value.trim();
    let (unit, rest) = v.split_once('=')?;
    if !unit.trim().eq_ignore_ascii_case("npt") {
        return None;
    }
    // `;time=...` may follow.
    let rest = rest.split(';').next().unwrap_or_default();
    let (s, e) = rest.split_once('-')?;
    let time = |t: &str| -> Option<Option<f64>> {
        let t = t.trim();
        if t.is_empty() {
            return Some(None);
        }
        if t.eq_ignore_ascii_case("now") {
            return Some(None);
        }
        let mut secs = 0.0;
        for part in t.split(':') {
            let p: f64 = part.parse().ok()?;
            if !p.is_finite() || p < 0.0 {
                return None;
            }
            secs = secs * 60.0 + p;
        }
        Some(Some(secs))
    };
    Some(NptRange { start: time(s)?, end: time(e)? })
}

pub fn format_npt_range(start: f64, end: Option<f64>) -> String {
    match end {
        Some(e) => format!("npt={start:.3}-{e:.3}"),
        None => format!("npt={start:.3}-"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_targets() {
        let t = parse_request_uri("rtsp://host:8554/cam1/trackID=0?video=h264");
        assert_eq!((t.path.as_str(), t.query.as_str(), t.track), ("cam1", "video=h264", Some(0)));
        let t = parse_request_uri("/cam1?x");
        assert_eq!((t.path.as_str(), t.query.as_str(), t.track), ("cam1", "x", None));
        let t = parse_request_uri("rtsp://u:p@[::1]:8554/my%20cam/sub/?video=h264/trackID=1");
        assert_eq!((t.path.as_str(), t.query.as_str(), t.track), ("my cam/sub", "video=h264", Some(1)));
        let t = parse_request_uri("rtsp://host:8554/cam1/streamid=12");
        assert_eq!((t.path.as_str(), t.track), ("cam1", Some(12)));
        let t = parse_request_uri("rtsp://host:8554");
        assert_eq!(t.path, "");
        let t = parse_request_uri("rtsp://host?x=1");
        assert_eq!((t.path.as_str(), t.query.as_str()), ("", "x=1"));
        let t = parse_request_uri("*");
        assert_eq!(t.path, "");
        let t = parse_request_uri("rtsp://h/cam%zz%4#frag");
        assert_eq!(t.path, "cam%zz%4");
        let t = parse_request_uri("rtsp://h/trackID=x");
        assert_eq!((t.path.as_str(), t.track), ("trackID=x", None));
        let t = parse_request_uri("trackID=2");
        assert_eq!((t.path.as_str(), t.track), ("", Some(2)));
    }

    #[test]
    fn control_urls() {
        assert_eq!(control_url("rtsp://h/a/", "trackID=1"), "rtsp://h/a/trackID=1");
        assert_eq!(control_url("rtsp://h/a", "trackID=1"), "rtsp://h/a/trackID=1");
        assert_eq!(control_url("rtsp://h/a/", "*"), "rtsp://h/a/");
        assert_eq!(control_url("rtsp://h/a", ""), "rtsp://h/a");
        assert_eq!(control_url("rtsp://h/a/", "RTSP://x/y"), "RTSP://x/y");
        assert_eq!(control_url("rtsp://h:554/a/b?q", "/c/d"), "rtsp://h:554/c/d");
        assert_eq!(base_url(Some(" "), Some("rtsp://l/"), "rtsp://r"), "rtsp://l/");
        assert_eq!(base_url(None, None, "rtsp://r"), "rtsp://r");
        assert_eq!(base_url(Some("rtsp://b/"), Some("rtsp://l/"), "rtsp://r"), "rtsp://b/");
    }

    #[test]
    fn session_header() {
        let s = SessionHeader::parse("708345999;timeout=60").unwrap();
        assert_eq!((s.id.as_str(), s.timeout), ("708345999", Some(60)));
        assert_eq!(s.to_string(), "708345999;timeout=60");
        let s = SessionHeader::parse(" abc ; Timeout = 30 ;x").unwrap();
        assert_eq!((s.id.as_str(), s.timeout), ("abc", Some(30)));
        let s = SessionHeader::parse("abc;timeout=x").unwrap();
        assert_eq!(s.timeout, None);
        assert!(SessionHeader::parse(";timeout=60").is_err());
        assert!(SessionHeader::parse("").is_err());
    }

    #[test]
    fn rtp_info() {
        let v = "url=rtsp://h/a,b/trackID=1;seq=1;rtptime=-1,url=trackID=2;seq=65535;rtptime=4294967295";
        let l = parse_rtp_info(v);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0], RtpInfo { url: "rtsp://h/a,b/trackID=1".into(), seq: Some(1), rtptime: None });
        assert_eq!(l[1].seq, Some(65535));
        assert_eq!(l[1].rtptime, Some(u32::MAX));
        let out = format_rtp_info(&l);
        assert_eq!(out, "url=rtsp://h/a,b/trackID=1;seq=1,url=trackID=2;seq=65535;rtptime=4294967295");
        assert_eq!(parse_rtp_info(&out), l);
        assert!(parse_rtp_info("").is_empty());
        assert!(parse_rtp_info("seq=1").is_empty());
    }

    #[test]
    fn npt() {
        assert_eq!(parse_npt_range(NPT_LIVE), Some(NptRange { start: Some(0.0), end: None }));
        assert_eq!(parse_npt_range("npt=now-"), Some(NptRange { start: None, end: None }));
        assert_eq!(parse_npt_range("npt=0.0-596.48"), Some(NptRange { start: Some(0.0), end: Some(596.48) }));
        assert_eq!(parse_npt_range("npt=0- 596.48"), Some(NptRange { start: Some(0.0), end: Some(596.48) }));
        assert_eq!(parse_npt_range("npt=1:02:03.5-"), Some(NptRange { start: Some(3723.5), end: None }));
        assert_eq!(parse_npt_range("clock=19961108T143720.25Z-"), None);
        assert_eq!(parse_npt_range("npt=abc-"), None);
        assert_eq!(parse_npt_range("npt=inf-"), None);
        assert_eq!(format_npt_range(0.0, None), "npt=0.000-");
        assert_eq!(format_npt_range(1.5, Some(2.0)), "npt=1.500-2.000");
    }
}
