//! MJPEG over HTTP: the `multipart/x-mixed-replace` writer (`/api/stream.mjpeg`), an incremental
//! multipart parser (HTTP-MJPEG sources; parts with or without `Content-Length`), and a splitter for
//! raw concatenated JPEG streams (`tcp://` or pipes). Every buffer is bounded by [`MAX_PART_SIZE`].

use crate::FormatError;
use bytes::Bytes;
use std::collections::VecDeque;

/// The boundary we write (go2rtc's).
pub const BOUNDARY: &str = "frame";
/// `Content-Type` of the response carrying [`write_part`] output.
pub const CONTENT_TYPE: &str = "multipart/x-mixed-replace; boundary=frame";
/// A part (or JPEG image) larger than this is refused.
pub const MAX_PART_SIZE: usize = 8 << 20;
/// Part headers larger than this are refused.
pub const MAX_HEADER_SIZE: usize = 16 << 10;
/// Parsed parts waiting in [`MultipartParser::poll`] / [`JpegSplitter::poll`] beyond this are dropped, oldest first.
const MAX_QUEUED: usize = 32;

/// One part of the multipart stream, with its headers (`--frame`, `Content-Type`, `Content-Length`).
pub fn write_part(jpeg: &[u8]) -> Bytes {
    let head = format!("--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\n\r\n", jpeg.len());
    let mut out = Vec::with_capacity(head.len() + jpeg.len() + 2);
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(jpeg);
    out.extend_from_slice(b"\r\n");
    Bytes::from(out)
}

/// The `boundary` parameter of a multipart `Content-Type` header (quotes removed).
pub fn boundary_from_content_type(content_type: &str) -> Result<String, FormatError> {
    let mut params = content_type.split(';');
    let mime = params.next().unwrap_or("").trim();
    if !mime.to_ascii_lowercase().starts_with("multipart/") {
        return Err(FormatError::invalid("Content-Type", format!("{mime:?} is not multipart")));
    }
    for p in params {
        if let Some((k, v)) = p.split_once('=') {
            if k.trim().eq_ignore_ascii_case("boundary") {
                let v = v.trim().trim_matches('"');
                if !v.is_empty() && v.len() <= 200 {
                    return Ok(v.to_string());
                }
            }
        }
    }
    Err(FormatError::invalid("Content-Type", format!("no boundary in {content_type:?}")))
}

/// One parsed part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Headers in order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

enum State {
    /// Looking for the delimiter line.
    Delimiter,
    /// Reading part headers; `scanned` bytes were already searched for the blank line.
    Headers { scanned: usize },
    Body {
        headers: Vec<(String, String)>,
        length: Option<usize>,
        /// Bytes of the body already searched for the delimiter (parts without Content-Length).
        scanned: usize,
    },
}

/// Incremental `multipart/x-mixed-replace` parser.
pub struct MultipartParser {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    parts: VecDeque<Part>,
}

impl MultipartParser {
    /// `boundary` as given in the Content-Type (with or without a leading `--`, which some cameras add).
    pub fn new(boundary: &str) -> MultipartParser {
        let mut delimiter = b"--".to_vec();
        delimiter.extend_from_slice(boundary.trim_start_matches("--").as_bytes());
        MultipartParser { delimiter, buf: Vec::new(), state: State::Delimiter, parts: VecDeque::new() }
    }

    pub fn from_content_type(content_type: &str) -> Result<MultipartParser, FormatError> {
        Ok(Self::new(&boundary_from_content_type(content_type)?))
    }

    pub fn poll(&mut self) -> Option<Part> {
        self.parts.pop_front()
    }

    /// Feeds bytes. On an error the broken part is dropped and parsing resumes at the next delimiter.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        self.buf.extend_from_slice(data);
        let r = self.parse();
        if r.is_err() {
            // The broken part was consumed; look for the next delimiter in what follows.
            self.state = State::Delimiter;
            let _ = self.parse();
        }
        r
    }

    fn parse(&mut self) -> Result<(), FormatError> {
        let mut pos = 0;
        let result = loop {
            let rest = &self.buf[pos..];
            match &mut self.state {
                State::Delimiter => {
                    let Some(i) = find(rest, &self.delimiter) else {
                        // Nothing useful before a possible partial delimiter at the end.
                        pos += rest.len().saturating_sub(self.delimiter.len());
                        break Ok(());
                    };
                    let line = &rest[i..rest.len().min(i + 257)];
                    let Some(eol) = line.iter().position(|&b| b == b'\n') else {
                        if line.len() > 256 {
                            pos += i + 1;
                            break Err(FormatError::invalid("multipart delimiter line", "longer than 256 bytes"));
                        }
                        pos += i; // wait for the rest of the line
                        break Ok(());
                    };
                    pos += i + eol + 1;
                    self.state = State::Headers { scanned: 0 };
                }
                State::Headers { scanned } => {
                    // A part may have no headers at all: an empty line right away.
                    if rest.starts_with(b"\r\n") || rest.starts_with(b"\n") {
                        pos += if rest.starts_with(b"\r\n") { 2 } else { 1 };
                        self.state = State::Body { headers: Vec::new(), length: None, scanned: 0 };
                        continue;
                    }
                    // Search only what was not searched before (3 bytes of overlap for a split CRLFCRLF).
                    let from = (*scanned).saturating_sub(3).min(rest.len());
                    let window = &rest[from..];
                    let (end, skip) = match (find(window, b"\r\n\r\n"), find(window, b"\n\n")) {
                        (Some(a), Some(b)) if b < a => (from + b, 2),
                        (Some(a), _) => (from + a, 4),
                        (None, Some(b)) => (from + b, 2),
                        (None, None) => {
                            if rest.len() > MAX_HEADER_SIZE {
                                pos += rest.len();
                                break Err(FormatError::TooLarge {
                                    what: "multipart part headers",
                                    size: rest.len(),
                                    limit: MAX_HEADER_SIZE,
                                });
                            }
                            *scanned = rest.len();
                            break Ok(());
                        }
                    };
                    if end > MAX_HEADER_SIZE {
                        pos += end + skip;
                        break Err(FormatError::TooLarge {
                            what: "multipart part headers",
                            size: end,
                            limit: MAX_HEADER_SIZE,
                        });
                    }
                    let text = String::from_utf8_lossy(&rest[..end]);
                    let mut headers = Vec::new();
                    let mut length = None;
                    let mut oversize = None;
                    for line in text.lines() {
                        let Some((k, v)) = line.split_once(':') else { continue };
                        let (k, v) = (k.trim().to_string(), v.trim().to_string());
                        if k.eq_ignore_ascii_case("content-length") {
                            match v.parse::<usize>() {
                                Ok(n) if n <= MAX_PART_SIZE => length = Some(n),
                                Ok(n) => oversize = Some(n),
                                Err(_) => {} // unparseable: fall back to scanning for the delimiter
                            }
                        }
                        headers.push((k, v));
                    }
                    pos += end + skip;
                    if let Some(n) = oversize {
                        break Err(FormatError::TooLarge { what: "multipart part", size: n, limit: MAX_PART_SIZE });
                    }
                    self.state = State::Body { headers, length, scanned: 0 };
                }
                State::Body { headers, length, scanned } => {
                    let body_len = match length {
                        Some(n) => {
                            if rest.len() < *n {
                                break Ok(());
                            }
                            *n
                        }
                        // Search only the bytes not searched before (plus a delimiter's length of overlap), so
                        // a large part fed in small chunks costs linear time.
                        None => match find(&rest[(*scanned).min(rest.len())..], &self.delimiter) {
                            Some(i) => {
                                let mut n = (*scanned).min(rest.len()) + i;
                                // Drop the line break (and stray dashes) that belong to the delimiter line.
                                while n > 0 && matches!(rest[n - 1], b'\n' | b'\r') {
                                    n -= 1;
                                }
                                n
                            }
                            None => {
                                if rest.len() > MAX_PART_SIZE {
                                    pos += rest.len();
                                    break Err(FormatError::TooLarge {
                                        what: "multipart part",
                                        size: rest.len(),
                                        limit: MAX_PART_SIZE,
                                    });
                                }
                                *scanned = rest.len().saturating_sub(self.delimiter.len());
                                break Ok(());
                            }
                        },
                    };
                    let part =
                        Part { headers: std::mem::take(headers), body: Bytes::copy_from_slice(&rest[..body_len]) };
                    if self.parts.len() >= MAX_QUEUED {
                        self.parts.pop_front();
                    }
                    self.parts.push_back(part);
                    pos += body_len;
                    self.state = State::Delimiter;
                }
            }
        };
        self.buf.drain(..pos.min(self.buf.len()));
        result
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

const SOI_INSIDE: &str = "SOI inside an image (the previous image was truncated)";

/// Splits a raw stream of concatenated JPEG images (SOI … EOI) into images. Marker segments are walked
/// by their lengths, so an EOI inside an embedded EXIF thumbnail does not end the image early. Work is
/// linear in the input: positions are offsets into the buffer, which is compacted once per push.
#[derive(Default)]
pub struct JpegSplitter {
    buf: Vec<u8>,
    /// Start of the current image (its SOI) in `buf`, when one was found.
    start: Option<usize>,
    /// Where the search for SOI (no image) or the marker walk (in an image) continues.
    pos: usize,
    /// True while inside entropy-coded data (after SOS).
    entropy: bool,
    images: VecDeque<Bytes>,
}

enum Walk {
    Incomplete,
    /// EOI found; the image ends here (exclusive).
    End(usize),
    /// An SOI where a marker was expected: the image was truncated, a new one starts here.
    Restart(usize),
}

impl JpegSplitter {
    pub fn new() -> JpegSplitter {
        JpegSplitter::default()
    }

    pub fn poll(&mut self) -> Option<Bytes> {
        self.images.pop_front()
    }

    /// Feeds bytes. A corrupt or oversize image is dropped with an error; splitting resumes at the next
    /// SOI.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        self.buf.extend_from_slice(data);
        let mut first_err = None;
        loop {
            let Some(start) = self.start else {
                match find(&self.buf[self.pos..], &[0xff, 0xd8]) {
                    Some(i) => {
                        self.start = Some(self.pos + i);
                        self.pos += i + 2;
                        self.entropy = false;
                        continue;
                    }
                    None => {
                        // Keep a trailing 0xff: it may start an SOI.
                        self.pos = self.buf.len() - usize::from(self.buf.last() == Some(&0xff));
                        break;
                    }
                }
            };
            match self.walk() {
                Ok(Walk::End(end)) => {
                    if self.images.len() >= MAX_QUEUED {
                        self.images.pop_front();
                    }
                    self.images.push_back(Bytes::copy_from_slice(&self.buf[start..end]));
                    self.start = None;
                    self.pos = end;
                }
                Ok(Walk::Restart(at)) => {
                    first_err.get_or_insert(FormatError::invalid("JPEG", SOI_INSIDE));
                    self.start = None;
                    self.pos = at;
                }
                Ok(Walk::Incomplete) => {
                    if self.buf.len() - start > MAX_PART_SIZE {
                        let size = self.buf.len() - start;
                        self.start = None;
                        self.pos = self.buf.len();
                        first_err.get_or_insert(FormatError::TooLarge {
                            what: "JPEG image",
                            size,
                            limit: MAX_PART_SIZE,
                        });
                        continue;
                    }
                    break;
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                    // Drop this image: look for the next SOI after its own.
                    self.start = None;
                    self.pos = start + 2;
                }
            }
        }
        // Compact once: drop everything before the current image (or before the search position).
        let keep_from = self.start.unwrap_or(self.pos).min(self.pos);
        self.buf.drain(..keep_from);
        self.pos -= keep_from;
        if let Some(s) = &mut self.start {
            *s -= keep_from;
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Walks markers from `self.pos`.
    fn walk(&mut self) -> Result<Walk, FormatError> {
        let b = &self.buf;
        loop {
            if self.entropy {
                // Find 0xFF followed by a real marker (not stuffing 00, not RSTn, not fill FF).
                loop {
                    let Some(i) = b[self.pos..].iter().position(|&x| x == 0xff) else {
                        self.pos = b.len();
                        return Ok(Walk::Incomplete);
                    };
                    let at = self.pos + i;
                    let Some(&m) = b.get(at + 1) else {
                        self.pos = at;
                        return Ok(Walk::Incomplete);
                    };
                    if m == 0 || (0xd0..=0xd7).contains(&m) || m == 0xff {
                        self.pos = at + 1;
                        continue;
                    }
                    self.pos = at;
                    self.entropy = false;
                    break;
                }
            }
            let Some(&ff) = b.get(self.pos) else { return Ok(Walk::Incomplete) };
            if ff != 0xff {
                return Err(FormatError::invalid("JPEG", format!("expected a marker at image offset {}", self.pos)));
            }
            let Some(&m) = b.get(self.pos + 1) else { return Ok(Walk::Incomplete) };
            match m {
                0xff => self.pos += 1, // fill byte
                0xd9 => return Ok(Walk::End(self.pos + 2)),
                0xd8 => return Ok(Walk::Restart(self.pos)),
                0x01 | 0xd0..=0xd7 => self.pos += 2,
                _ => {
                    let Some(l) = b.get(self.pos + 2..self.pos + 4) else { return Ok(Walk::Incomplete) };
                    let len = usize::from(u16::from_be_bytes([l[0], l[1]]));
                    if len < 2 {
                        return Err(FormatError::invalid("JPEG", format!("segment length {len}")));
                    }
                    if self.pos + 2 + len > b.len() {
                        return Ok(Walk::Incomplete);
                    }
                    self.pos += 2 + len;
                    if m == 0xda {
                        self.entropy = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A structurally valid tiny JPEG: SOI, APP1 holding a thumbnail with its own SOI/EOI, SOS with
    /// stuffed bytes and a restart marker, EOI.
    fn jpeg(fill: u8) -> Vec<u8> {
        let mut v = vec![0xff, 0xd8, 0xff, 0xe1, 0, 8, 0xff, 0xd8, 0xff, 0xd9, 0, 0];
        v.extend_from_slice(&[0xff, 0xdb, 0, 4, 1, 2]);
        v.extend_from_slice(&[0xff, 0xda, 0, 3, 0, fill, 0xff, 0x00, fill, 0xff, 0xd0, fill, 0xff, 0xd9]);
        v
    }

    #[test]
    fn writer_format() {
        let p = write_part(&[1, 2, 3]);
        assert_eq!(&p[..], b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: 3\r\n\r\n\x01\x02\x03\r\n");
    }

    #[test]
    fn boundary_parsing() {
        assert_eq!(boundary_from_content_type("multipart/x-mixed-replace; boundary=frame").unwrap(), "frame");
        assert_eq!(boundary_from_content_type("multipart/x-mixed-replace;boundary=\"--myb\"").unwrap(), "--myb");
        assert!(boundary_from_content_type("image/jpeg").is_err());
        assert!(boundary_from_content_type("multipart/x-mixed-replace").is_err());
    }

    #[test]
    fn parses_own_output_in_small_chunks() {
        let mut data = Vec::new();
        for i in 0..3 {
            data.extend_from_slice(&write_part(&jpeg(i)));
        }
        let mut p = MultipartParser::from_content_type(CONTENT_TYPE).unwrap();
        let mut parts = Vec::new();
        for c in data.chunks(5) {
            p.push(c).unwrap();
            while let Some(part) = p.poll() {
                parts.push(part);
            }
        }
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[1].body, jpeg(1));
        assert_eq!(parts[1].header("content-type"), Some("image/jpeg"));
    }

    #[test]
    fn parts_without_length_and_odd_boundaries() {
        // Boundary given with leading dashes, LF-only line ends, no Content-Length.
        let mut data = b"preamble\n--myboundary\nContent-Type: image/jpeg\n\n".to_vec();
        data.extend_from_slice(&jpeg(7));
        data.extend_from_slice(b"\n--myboundary\r\nContent-Type: image/jpeg\r\n\r\n");
        data.extend_from_slice(&jpeg(8));
        data.extend_from_slice(b"\r\n--myboundary\r\n");
        let mut p = MultipartParser::new("--myboundary");
        p.push(&data).unwrap();
        assert_eq!(p.poll().unwrap().body, jpeg(7));
        assert_eq!(p.poll().unwrap().body, jpeg(8));
        assert!(p.poll().is_none());
    }

    #[test]
    fn oversize_parts_are_refused() {
        let mut p = MultipartParser::new("frame");
        let e = p.push(b"--frame\r\nContent-Length: 999999999\r\n\r\n").unwrap_err();
        assert!(matches!(e, FormatError::TooLarge { .. }));
        // Then a normal part still parses.
        p.push(&write_part(&jpeg(1))).unwrap();
        assert_eq!(p.poll().unwrap().body, jpeg(1));

        let mut p = MultipartParser::new("frame");
        p.push(b"--frame\r\n\r\n").unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut err = None;
        for _ in 0..9 {
            if let Err(e) = p.push(&chunk) {
                err = Some(e);
                break;
            }
        }
        assert!(matches!(err, Some(FormatError::TooLarge { .. })), "unbounded body refused");
    }

    #[test]
    fn large_part_without_length_in_small_chunks_is_linear() {
        // 4 MiB fed 64 bytes at a time: quadratic rescanning would take minutes.
        let mut p = MultipartParser::new("frame");
        p.push(b"--frame\r\nContent-Type: image/jpeg\r\n\r\n").unwrap();
        let body = vec![0x55u8; 4 << 20];
        for c in body.chunks(64) {
            p.push(c).unwrap();
        }
        p.push(b"\r\n--frame\r\n").unwrap();
        assert_eq!(p.poll().unwrap().body.len(), 4 << 20);
    }

    #[test]
    fn delimiter_line_and_headers_are_bounded() {
        let mut p = MultipartParser::new("frame");
        let mut err = None;
        p.push(b"--frame").unwrap();
        for _ in 0..10 {
            if let Err(e) = p.push(&[b'x'; 100]) {
                err = Some(e);
            }
        }
        assert!(matches!(err, Some(FormatError::Invalid { what: "multipart delimiter line", .. })));
        assert!(p.buf.len() < 1100, "buffer bounded: {}", p.buf.len());

        let mut p = MultipartParser::new("frame");
        p.push(b"--frame\r\n").unwrap();
        let mut err = None;
        for _ in 0..300 {
            if let Err(e) = p.push(b"X-Header: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n") {
                err = Some(e);
            }
        }
        assert!(matches!(err, Some(FormatError::TooLarge { what: "multipart part headers", .. })));
    }

    #[test]
    fn part_without_headers() {
        let mut p = MultipartParser::new("frame");
        p.push(b"--frame\r\n\r\nabc\r\n\r\ndef\r\n--frame\r\n").unwrap();
        let part = p.poll().unwrap();
        assert!(part.headers.is_empty());
        assert_eq!(&part.body[..], b"abc\r\n\r\ndef");
    }

    #[test]
    fn splits_raw_jpeg_stream() {
        let mut data = vec![0x00, 0x12];
        for i in 0..4 {
            data.extend_from_slice(&jpeg(i));
        }
        let mut s = JpegSplitter::new();
        let mut out = Vec::new();
        for c in data.chunks(3) {
            s.push(c).unwrap();
            while let Some(img) = s.poll() {
                out.push(img);
            }
        }
        assert_eq!(out.len(), 4);
        assert_eq!(out[2], jpeg(2), "EOI of the thumbnail did not end the image");
    }

    #[test]
    fn splitter_is_linear_on_many_tiny_images_and_errors() {
        // 1M minimal "images" and 1M broken ones in one push: draining per image would be quadratic.
        let mut data = Vec::with_capacity(8 << 20);
        for _ in 0..1 << 20 {
            data.extend_from_slice(&[0xff, 0xd8, 0xff, 0xd9, 0xff, 0xd8, 0x12, 0x34]);
        }
        let mut s = JpegSplitter::new();
        assert!(s.push(&data).is_err(), "broken images are reported");
        let mut n = 0;
        while s.poll().is_some() {
            n += 1;
        }
        assert_eq!(n, MAX_QUEUED, "queue bounded");
        assert!(s.buf.len() < 16, "buffer compacted: {}", s.buf.len());
    }

    #[test]
    fn splitter_recovers_from_truncation() {
        let mut data = jpeg(1);
        data.truncate(24); // cut inside the scan data
        data.extend_from_slice(&jpeg(2));
        let mut s = JpegSplitter::new();
        let _ = s.push(&data);
        let mut got = Vec::new();
        while let Some(i) = s.poll() {
            got.push(i);
        }
        let _ = s.push(&[]);
        while let Some(i) = s.poll() {
            got.push(i);
        }
        assert_eq!(got.last().map(|b| b.to_vec()), Some(jpeg(2)));
    }
}
