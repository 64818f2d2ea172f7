//! Incremental RTSP/1.0 message codec for a TCP byte stream (requests, responses and `$`-interleaved
//! binary frames).
//!
//! Our own parser rather than `rtsp-types`: that crate rejects bare `\n` line endings, spaces before the
//! header colon and status lines without a reason phrase (all seen from real cameras and clients), gives
//! an opaque error, and has no bounds on the header section, header count or body; bounding it would have
//! meant pre-scanning the header section ourselves, which is most of the parsing anyway.

use std::fmt;
use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Largest header section (start line through the empty line) we buffer before giving up.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;
/// Most header lines in one message.
pub const MAX_HEADERS: usize = 64;
/// Largest `Content-Length` accepted (SDP and GET_PARAMETER bodies are a few KiB).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Bounds [`decode_limited`] applies to one text message. [`decode`] uses the defaults (the `MAX_*`
/// constants); a server uses smaller ones for a client that has not authenticated yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest header section (start line through the empty line).
    pub header_bytes: usize,
    /// Largest `Content-Length`.
    pub body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_bytes: MAX_HEADER_BYTES, body_bytes: MAX_BODY_BYTES }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("RTSP header section exceeds {max} bytes without an empty line ending it")]
    HeadersTooLarge { max: usize },
    #[error("RTSP message has more than {max} header lines")]
    TooManyHeaders { max: usize },
    #[error("RTSP body of {len} bytes (Content-Length) exceeds the {max}-byte limit")]
    BodyTooLarge { len: u64, max: usize },
    #[error("malformed RTSP message: {0}")]
    Malformed(String),
}

/// RTSP methods; anything else (vendor extensions, HTTP tunnelling verbs) is kept as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Options,
    Describe,
    Announce,
    Setup,
    Play,
    Pause,
    Record,
    Teardown,
    GetParameter,
    SetParameter,
    Redirect,
    Other(String),
}

impl Method {
    /// Methods are case-sensitive tokens (RFC 2326 §6.1).
    pub fn parse(s: &str) -> Method {
        match s {
            "OPTIONS" => Method::Options,
            "DESCRIBE" => Method::Describe,
            "ANNOUNCE" => Method::Announce,
            "SETUP" => Method::Setup,
            "PLAY" => Method::Play,
            "PAUSE" => Method::Pause,
            "RECORD" => Method::Record,
            "TEARDOWN" => Method::Teardown,
            "GET_PARAMETER" => Method::GetParameter,
            "SET_PARAMETER" => Method::SetParameter,
            "REDIRECT" => Method::Redirect,
            other => Method::Other(other.to_string()),
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Options => "OPTIONS",
            Method::Describe => "DESCRIBE",
            Method::Announce => "ANNOUNCE",
            Method::Setup => "SETUP",
            Method::Play => "PLAY",
            Method::Pause => "PAUSE",
            Method::Record => "RECORD",
            Method::Teardown => "TEARDOWN",
            Method::GetParameter => "GET_PARAMETER",
            Method::SetParameter => "SET_PARAMETER",
            Method::Redirect => "REDIRECT",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Header fields in arrival order; names compare case-insensitively (cameras send `Cseq`, `CSeq`...).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(String, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// First value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Every value of `name` in order (e.g. several `WWW-Authenticate`).
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.fields.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Sets `name` to `value`, replacing every earlier value of it (keeps the first one's position).
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self.fields.iter().position(|(n, _)| n.eq_ignore_ascii_case(&name)) {
            Some(i) => {
                self.fields[i] = (name.clone(), value);
                let mut idx = 0;
                self.fields.retain(|(n, _)| {
                    let keep = idx <= i || !n.eq_ignore_ascii_case(&name);
                    idx += 1;
                    keep
                });
            }
            None => self.fields.push((name, value)),
        }
    }

    /// Adds a value without touching existing ones (for headers that may repeat).
    pub fn append(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.fields.push((name.into(), value.into()));
    }

    pub fn remove(&mut self, name: &str) {
        self.fields.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    fn write_to(&self, out: &mut Vec<u8>, body_len: usize) {
        for (n, v) in &self.fields {
            // Content-Length is always derived from the body so it can never disagree with it.
            if n.eq_ignore_ascii_case("content-length") {
                continue;
            }
            push_sanitized(out, n);
            out.extend_from_slice(b": ");
            push_sanitized(out, v);
            out.extend_from_slice(b"\r\n");
        }
        if body_len > 0 {
            out.extend_from_slice(format!("Content-Length: {body_len}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
}

/// CR/LF inside a value would let an echoed value inject headers; replace them by spaces.
fn push_sanitized(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().map(|b| if b == b'\r' || b == b'\n' { b' ' } else { b }));
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    /// As sent, normally `RTSP/1.0`.
    pub version: String,
    pub headers: Headers,
    pub body: Bytes,
}

impl Request {
    pub fn new(method: Method, uri: impl Into<String>) -> Request {
        Request {
            method,
            uri: uri.into(),
            version: "RTSP/1.0".to_string(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    /// `None` means the server must answer 400 (RFC 2326 §12.17 makes CSeq mandatory).
    pub fn cseq(&self) -> Option<&str> {
        self.headers.get("CSeq")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        push_sanitized(&mut out, self.method.as_str());
        out.push(b' ');
        push_sanitized(&mut out, &self.uri);
        out.push(b' ');
        push_sanitized(&mut out, &self.version);
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub version: String,
    pub headers: Headers,
    pub body: Bytes,
}

impl Response {
    /// A response with the standard reason phrase for `status`.
    pub fn new(status: u16) -> Response {
        Response {
            status,
            reason: reason_phrase(status).to_string(),
            version: "RTSP/1.0".to_string(),
            headers: Headers::new(),
            body: Bytes::new(),
        }
    }

    pub fn cseq(&self) -> Option<&str> {
        self.headers.get("CSeq")
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(256 + self.body.len());
        push_sanitized(&mut out, &self.version);
        out.extend_from_slice(format!(" {} ", self.status).as_bytes());
        push_sanitized(&mut out, &self.reason);
        out.extend_from_slice(b"\r\n");
        self.headers.write_to(&mut out, self.body.len());
        out.extend_from_slice(&self.body);
        out
    }
}

/// Standard reason phrases (RFC 2326 §7.1.1).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        250 => "Low on Storage Space",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Moved Temporarily",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        413 => "Request Entity Too Large",
        414 => "Request-URI Too Large",
        415 => "Unsupported Media Type",
        451 => "Parameter Not Understood",
        453 => "Not Enough Bandwidth",
        454 => "Session Not Found",
        455 => "Method Not Valid in This State",
        457 => "Invalid Range",
        459 => "Aggregate Operation Not Allowed",
        460 => "Only Aggregate Operation Allowed",
        461 => "Unsupported Transport",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "RTSP Version Not Supported",
        551 => "Option Not Supported",
        _ => "Unknown",
    }
}

/// One decoded unit; `Interleaved::payload` is the byte range of the payload inside the input buffer,
/// so the caller can slice its `BytesMut` without copying (see [`decode_buf`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    Request(Request),
    Response(Response),
    Interleaved { channel: u8, payload: Range<usize> },
}

/// Owned form returned by [`decode_buf`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
    Interleaved { channel: u8, payload: Bytes },
}

/// The 4-byte header of an interleaved frame (RFC 2326 §10.12).
pub fn encode_interleaved_header(channel: u8, len: u16) -> [u8; 4] {
    let l = len.to_be_bytes();
    [b'$', channel, l[0], l[1]]
}

/// Decodes the first unit of `buf`. `Ok(None)`: need more bytes. On `Ok(Some((unit, n)))` the caller
/// drops the first `n` bytes. Leading empty lines (keep-alive CRLFs some clients send) are skipped and
/// counted in `n`.
pub fn decode(buf: &[u8]) -> Result<Option<(Decoded, usize)>, MessageError> {
    decode_limited(buf, Limits::default())
}

/// [`decode`] with other bounds on a text message's header section and body.
pub fn decode_limited(buf: &[u8], limits: Limits) -> Result<Option<(Decoded, usize)>, MessageError> {
    let skip = buf.iter().take_while(|&&b| b == b'\r' || b == b'\n').count();
    if skip > limits.header_bytes {
        // Blank lines are not consumed until a unit follows; bound them like a header section.
        return Err(MessageError::HeadersTooLarge { max: limits.header_bytes });
    }
    let rest = &buf[skip..];
    let Some(&first) = rest.first() else {
        return Ok(None);
    };
    if first == b'$' {
        if rest.len() < 4 {
            return Ok(None);
        }
        let channel = rest[1];
        let len = u16::from_be_bytes([rest[2], rest[3]]) as usize;
        if rest.len() < 4 + len {
            return Ok(None);
        }
        let start = skip + 4;
        return Ok(Some((Decoded::Interleaved { channel, payload: start..start + len }, start + len)));
    }
    if !first.is_ascii_alphabetic() {
        // Reject binary garbage at once rather than buffering 16 KiB of it.
        return Err(MessageError::Malformed(format!(
            "expected an RTSP request/status line or '$' frame, got byte 0x{first:02x}"
        )));
    }
    decode_text(rest, limits).map(|o| o.map(|(d, n)| (d, n + skip)))
}

/// [`decode`] on a `BytesMut`: consumes the decoded bytes and returns interleaved payloads without
/// copying.
pub fn decode_buf(buf: &mut BytesMut) -> Result<Option<Message>, MessageError> {
    let Some((decoded, used)) = decode(buf)? else {
        return Ok(None);
    };
    let frame = buf.split_to(used).freeze();
    Ok(Some(match decoded {
        Decoded::Request(r) => Message::Request(r),
        Decoded::Response(r) => Message::Response(r),
        Decoded::Interleaved { channel, payload } => Message::Interleaved { channel, payload: frame.slice(payload) },
    }))
}

/// Splits off one line (without `\r\n` / `\n`); `None` if no newline yet.
fn next_line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let mut line = &rest[..nl];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    Some((line, pos + nl + 1))
}

fn shown(line: &[u8]) -> String {
    let s = String::from_utf8_lossy(line);
    let mut out: String = s.chars().take(80).collect();
    if s.chars().count() > 80 {
        out.push('…');
    }
    out
}

fn decode_text(buf: &[u8], limits: Limits) -> Result<Option<(Decoded, usize)>, MessageError> {
    let max_header = limits.header_bytes;
    let too_large = || MessageError::HeadersTooLarge { max: max_header };
    let Some((start_line, mut pos)) = next_line(buf, 0) else {
        return if buf.len() > max_header { Err(too_large()) } else { Ok(None) };
    };
    // Validate the start line before waiting for the rest, so garbage fails fast.
    let start = parse_start_line(start_line)?;
    let mut headers = Headers::new();
    loop {
        let Some((line, next)) = next_line(buf, pos) else {
            return if buf.len() > max_header { Err(too_large()) } else { Ok(None) };
        };
        if next > max_header {
            return Err(too_large());
        }
        pos = next;
        if line.is_empty() {
            break;
        }
        if line[0] == b' ' || line[0] == b'\t' {
            // Obsolete line folding (RFC 2326 §4.2 allows LWS continuation): join to the previous value.
            let Some(last) = headers.fields.last_mut() else {
                return Err(MessageError::Malformed(format!("continuation line before any header: `{}`", shown(line))));
            };
            last.1.push(' ');
            last.1.push_str(String::from_utf8_lossy(line).trim());
            continue;
        }
        if headers.len() >= MAX_HEADERS {
            return Err(MessageError::TooManyHeaders { max: MAX_HEADERS });
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(MessageError::Malformed(format!("header line without ':': `{}`", shown(line))));
        };
        let name = String::from_utf8_lossy(&line[..colon]).trim().to_string();
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b.is_ascii_control()) {
            return Err(MessageError::Malformed(format!("bad header name in `{}`", shown(line))));
        }
        let value = String::from_utf8_lossy(&line[colon + 1..]).trim().to_string();
        headers.fields.push((name, value));
    }

    let mut content_length: Option<u64> = None;
    for v in headers.get_all("Content-Length") {
        let len: u64 = v
            .parse()
            .map_err(|_| MessageError::Malformed(format!("invalid Content-Length `{}`", shown(v.as_bytes()))))?;
        if content_length.is_some_and(|l| l != len) {
            return Err(MessageError::Malformed("conflicting Content-Length headers".to_string()));
        }
        content_length = Some(len);
    }
    let len = content_length.unwrap_or(0);
    if len > limits.body_bytes as u64 {
        return Err(MessageError::BodyTooLarge { len, max: limits.body_bytes });
    }
    let len = len as usize; // ≤ limits.body_bytes, fits.
    let Some(body) = buf.get(pos..pos + len) else {
        return Ok(None);
    };
    let body = Bytes::copy_from_slice(body);
    let used = pos + len;
    let decoded = match start {
        StartLine::Request { method, uri, version } => {
            Decoded::Request(Request { method, uri, version, headers, body })
        }
        StartLine::Response { version, status, reason } => {
            Decoded::Response(Response { status, reason, version, headers, body })
        }
    };
    Ok(Some((decoded, used)))
}

enum StartLine {
    Request { method: Method, uri: String, version: String },
    Response { version: String, status: u16, reason: String },
}

fn parse_start_line(line: &[u8]) -> Result<StartLine, MessageError> {
    let bad = |what: &str| MessageError::Malformed(format!("{what}: `{}`", shown(line)));
    let text = std::str::from_utf8(line).map_err(|_| bad("start line is not UTF-8"))?;
    if text.starts_with("RTSP/") {
        let mut parts = text.splitn(2, char::is_whitespace);
        let version = parts.next().unwrap_or_default().to_string();
        let rest = parts.next().unwrap_or_default().trim_start();
        let (code, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
        // 100..=999 only, so the code serializes back to the same three digits.
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_digit()) || code.starts_with('0') {
            return Err(bad("status line without a 3-digit status code"));
        }
        let status = code.parse().map_err(|_| bad("bad status code"))?;
        return Ok(StartLine::Response { version, status, reason: reason.trim().to_string() });
    }
    let mut parts = text.split_whitespace();
    let (Some(method), Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("request line is not `METHOD URI RTSP/1.0`"));
    };
    if !version.starts_with("RTSP/") {
        return Err(bad("request line without an RTSP/x.y version"));
    }
    if !method.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        return Err(bad("bad method token"));
    }
    Ok(StartLine::Request { method: Method::parse(method), uri: uri.to_string(), version: version.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(d: Option<(Decoded, usize)>) -> (Request, usize) {
        match d {
            Some((Decoded::Request(r), n)) => (r, n),
            other => panic!("expected request, got {other:?}"),
        }
    }

    const OPTIONS: &[u8] = b"OPTIONS rtsp://h/cam RTSP/1.0\r\nCSeq: 1\r\nUser-Agent: x\r\n\r\n";

    #[test]
    fn request_basic() {
        let (r, n) = req(decode(OPTIONS).unwrap());
        assert_eq!(n, OPTIONS.len());
        assert_eq!(r.method, Method::Options);
        assert_eq!(r.uri, "rtsp://h/cam");
        assert_eq!(r.cseq(), Some("1"));
        assert_eq!(r.headers.get("user-agent"), Some("x"));
    }

    #[test]
    fn byte_by_byte() {
        let msg = b"ANNOUNCE rtsp://h/x RTSP/1.0\r\nCSeq: 2\r\nContent-Length: 5\r\n\r\nhello";
        for i in 0..msg.len() {
            assert_eq!(decode(&msg[..i]).unwrap(), None, "prefix {i}");
        }
        let (r, n) = req(decode(msg).unwrap());
        assert_eq!(n, msg.len());
        assert_eq!(&r.body[..], b"hello");
        assert_eq!(r.method, Method::Announce);
    }

    #[test]
    fn pipelined_and_interleaved() {
        let mut stream = Vec::new();
        stream.extend_from_slice(OPTIONS);
        stream.extend_from_slice(&encode_interleaved_header(3, 4));
        stream.extend_from_slice(b"\x80\x01\x02\x03");
        stream.extend_from_slice(b"\r\n"); // stray keep-alive
        stream.extend_from_slice(b"GET_PARAMETER * RTSP/1.0\ncseq: 9\n\n");
        stream.extend_from_slice(b"RTSP/1.0 200 OK\r\nCSeq: 4\r\n\r\n");
        let mut buf = BytesMut::from(&stream[..]);
        let mut out = Vec::new();
        while let Some(m) = decode_buf(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty());
        assert_eq!(out.len(), 4);
        assert!(matches!(&out[0], Message::Request(r) if r.method == Method::Options));
        assert_eq!(out[1], Message::Interleaved { channel: 3, payload: Bytes::from_static(b"\x80\x01\x02\x03") });
        assert!(matches!(&out[2], Message::Request(r) if r.method == Method::GetParameter && r.cseq() == Some("9")));
        assert!(matches!(&out[3], Message::Response(r) if r.status == 200 && r.cseq() == Some("4")));
    }

    #[test]
    fn interleaved_ranges_and_partial() {
        let data = [b'$', 1, 0, 2, 0xAA, 0xBB, b'$'];
        let (d, n) = decode(&data).unwrap().unwrap();
        assert_eq!(d, Decoded::Interleaved { channel: 1, payload: 4..6 });
        assert_eq!(n, 6);
        assert_eq!(decode(&data[6..]).unwrap(), None);
        assert_eq!(decode(&data[..5]).unwrap(), None);
        let empty = [b'$', 0, 0, 0];
        assert_eq!(decode(&empty).unwrap().unwrap().1, 4);
    }

    #[test]
    fn lenient_headers() {
        let m = b"SETUP rtsp://h/x/trackID=0 RTSP/1.0\ncSeQ :  3 \nTransport : RTP/AVP/TCP;interleaved=0-1\n  ;mode=play\n\n";
        let (r, _) = req(decode(m).unwrap());
        assert_eq!(r.cseq(), Some("3"));
        assert_eq!(r.headers.get("TRANSPORT"), Some("RTP/AVP/TCP;interleaved=0-1 ;mode=play"));
    }

    #[test]
    fn response_without_reason() {
        let (d, _) = decode(b"RTSP/1.0 404\r\nCSeq: 1\r\n\r\n").unwrap().unwrap();
        let Decoded::Response(r) = d else { panic!() };
        assert_eq!(r.status, 404);
        assert_eq!(r.reason, "");
    }

    #[test]
    fn missing_cseq() {
        let (r, _) = req(decode(b"DESCRIBE rtsp://h/x RTSP/1.0\r\n\r\n").unwrap());
        assert_eq!(r.cseq(), None);
    }

    #[test]
    fn oversized_headers() {
        let mut m = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        while m.len() <= MAX_HEADER_BYTES {
            m.extend_from_slice(b"X-Pad: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        // Reached either the header-count or the size bound; never Ok(None) forever.
        let err = decode(&m).unwrap_err();
        assert!(matches!(err, MessageError::HeadersTooLarge { .. } | MessageError::TooManyHeaders { .. }));
        // One endless line is HeadersTooLarge.
        let mut long = b"OPTIONS * RTSP/1.0\r\nX: ".to_vec();
        long.resize(MAX_HEADER_BYTES + 10, b'a');
        assert_eq!(decode(&long).unwrap_err(), MessageError::HeadersTooLarge { max: MAX_HEADER_BYTES });
        let mut long_start = b"OPTIONS ".to_vec();
        long_start.resize(MAX_HEADER_BYTES + 10, b'a');
        assert!(matches!(decode(&long_start), Err(MessageError::HeadersTooLarge { .. })));
    }

    #[test]
    fn too_many_headers() {
        let mut m = b"OPTIONS * RTSP/1.0\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            m.extend_from_slice(format!("X-{i}: 1\r\n").as_bytes());
        }
        m.extend_from_slice(b"\r\n");
        assert_eq!(decode(&m).unwrap_err(), MessageError::TooManyHeaders { max: MAX_HEADERS });
    }

    #[test]
    fn oversized_body() {
        let m = b"ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 99999999999\r\n\r\n";
        assert_eq!(decode(m).unwrap_err(), MessageError::BodyTooLarge { len: 99999999999, max: MAX_BODY_BYTES });
        let m = b"ANNOUNCE * RTSP/1.0\r\nContent-Length: -1\r\n\r\n";
        assert!(matches!(decode(m), Err(MessageError::Malformed(s)) if s.contains("Content-Length")));
        let m = b"ANNOUNCE * RTSP/1.0\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab";
        assert!(matches!(decode(m), Err(MessageError::Malformed(_))));
    }

    #[test]
    fn smaller_limits_apply_to_headers_and_body() {
        let limits = Limits { header_bytes: 64, body_bytes: 8 };
        // Within the limits: decoded as usual.
        let ok = b"SET_PARAMETER * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 8\r\n\r\n12345678";
        assert!(matches!(decode_limited(ok, limits), Ok(Some((Decoded::Request(_), 64)))));
        // The body limit is checked from the header, before any of the body has arrived.
        let big = b"ANNOUNCE * RTSP/1.0\r\nCSeq: 1\r\nContent-Length: 9\r\n\r\n";
        assert_eq!(decode_limited(big, limits).unwrap_err(), MessageError::BodyTooLarge { len: 9, max: 8 });
        assert!(decode(big).unwrap().is_none(), "the default limits wait for the body");
        // A header section over the limit, complete or not.
        let mut long = b"OPTIONS * RTSP/1.0\r\nCSeq: 1\r\nX-Pad: ".to_vec();
        long.resize(70, b'a');
        assert_eq!(decode_limited(&long, limits).unwrap_err(), MessageError::HeadersTooLarge { max: 64 });
        assert!(decode(&long).unwrap().is_none());
    }

    #[test]
    fn garbage() {
        assert!(matches!(decode(b"\x00\x01\x02"), Err(MessageError::Malformed(_))));
        assert!(matches!(decode(b"hello world\r\n"), Err(MessageError::Malformed(s)) if s.contains("hello world")));
        assert!(matches!(decode(b"PLAY x HTTP/1.1\r\n"), Err(MessageError::Malformed(_))));
        assert!(matches!(decode(b"RTSP/1.0 2x0 OK\r\n"), Err(MessageError::Malformed(_))));
        assert!(matches!(decode(b"RTSP/1.0 099 OK\r\n"), Err(MessageError::Malformed(_))));
        assert!(matches!(
            decode(b"OPTIONS * RTSP/1.0\r\nno colon here\r\n\r\n"),
            Err(MessageError::Malformed(s)) if s.contains("no colon here")
        ));
        assert!(matches!(decode(b"OPTIONS * RTSP/1.0\r\n : x\r\n\r\n"), Err(MessageError::Malformed(_))));
        assert_eq!(decode(b"").unwrap(), None);
        assert_eq!(decode(b"\r\n\r\n").unwrap(), None);
        let blank = b"\r\n".repeat(MAX_HEADER_BYTES);
        assert!(matches!(decode(&blank), Err(MessageError::HeadersTooLarge { .. })));
    }

    #[test]
    fn serialize_round_trip() {
        let mut r = Response::new(200);
        r.headers.insert("CSeq", "5");
        r.headers.insert("Content-Type", "application/sdp");
        r.headers.insert("Content-Length", "999"); // ignored: derived from the body
        r.headers.insert("cseq", "6");
        r.body = Bytes::from_static(b"v=0\r\n");
        let bytes = r.to_bytes();
        assert_eq!(
            bytes,
            b"RTSP/1.0 200 OK\r\ncseq: 6\r\nContent-Type: application/sdp\r\nContent-Length: 5\r\n\r\nv=0\r\n"
        );
        let (d, n) = decode(&bytes).unwrap().unwrap();
        assert_eq!(n, bytes.len());
        let Decoded::Response(back) = d else { panic!() };
        assert_eq!(back.cseq(), Some("6"));
        assert_eq!(&back.body[..], b"v=0\r\n");

        let mut q = Request::new(Method::Other("FOO".into()), "rtsp://h/x");
        q.headers.append("CSeq", "1\r\nInjected: yes");
        let bytes = q.to_bytes();
        let (r, _) = req(decode(&bytes).unwrap());
        assert_eq!(r.method, Method::Other("FOO".into()));
        assert_eq!(r.headers.len(), 1);
        assert_eq!(r.cseq(), Some("1  Injected: yes"));
    }

    #[test]
    fn headers_multi() {
        let m = b"RTSP/1.0 401 Unauthorized\r\nCSeq: 1 \r\nWWW-Authenticate: Digest realm=\"a\", nonce=\"b\"\r\nWWW-Authenticate: Basic realm=\"a\"\r\n\r\n";
        let (d, _) = decode(m).unwrap().unwrap();
        let Decoded::Response(r) = d else { panic!() };
        assert_eq!(r.cseq(), Some("1"));
        assert_eq!(r.headers.get_all("www-authenticate").count(), 2);
        assert_eq!(r.reason, "Unauthorized");
    }

    #[test]
    fn method_round_trip() {
        for m in [
            "OPTIONS",
            "DESCRIBE",
            "ANNOUNCE",
            "SETUP",
            "PLAY",
            "PAUSE",
            "RECORD",
            "TEARDOWN",
            "GET_PARAMETER",
            "SET_PARAMETER",
            "REDIRECT",
            "X",
        ] {
            assert_eq!(Method::parse(m).as_str(), m);
        }
        assert_eq!(Method::parse("play"), Method::Other("play".into()));
    }
}
