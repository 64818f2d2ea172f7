//! `http://`, `https://`, `httpx://` and `tcp://` sources (go2rtc's "Source: HTTP"), and the byte-stream
//! demuxing they share with the HTTP ingest endpoints (`POST /api/stream.ts` ..., `servers/ingest.rs`).
//!
//! - `http(s)://host/path` is fetched with a GET. The body's format comes from its `Content-Type`
//!   (`video/x-flv`, `video/mp2t` / `video/mpeg`, `multipart/x-mixed-replace`, `image/jpeg`) or, when that
//!   says nothing useful, from its first bytes ([`formats::sniff`]): HTTP-FLV, MPEG-TS, MJPEG (multipart
//!   or raw JPEG concatenation), H.264 / H.265 Annex B.
//! - A single `image/jpeg` answer is a camera snapshot URL: it is polled again and again (as fast as it
//!   answers, at most 10 times a second, on a kept-alive connection when the camera allows) into a
//!   JPEG video track.
//! - `httpx://` is `https://` without certificate verification (go2rtc's spelling, as `rtspx://`).
//! - `tcp://host:port` reads a raw byte stream and sniffs it (MPEG-TS, Annex B, MJPEG).
//! - `#header=Name: value` (repeatable) adds request headers; credentials in the URL become Basic auth;
//!   up to 5 redirects are followed; connect times out after 5 s, a silent connection after 15 s (the
//!   producer then retries). Errors and logs show the URL masked.
//!
//! A demuxer only knows the medias after some bytes, so `describe` connects and reads until every
//! track is known ([`probe`]: bounded in bytes and time), and hands the open connection and the
//! frames read so far to `run` (as `exec:` does with its child).

use bytes::Bytes;
use formats::mjpeg::{JpegSplitter, MultipartParser};
use formats::{flv::FlvDemuxer, sniff, ts::TsDemuxer, DemuxEvent, Format};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use media::{codec, Codec, Direction, Frame, Kind, Media};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::SourceContext;
use crate::hub::{BoxFuture, Source, SourceError, SourceFactory, Track};
use crate::secrets::mask_url;
use crate::sources::exec::{parse_query, PipeFormat, PipeParser, PipeUnit};

/// A stream that yields no complete set of tracks within this many bytes is refused.
pub const PROBE_MAX_BYTES: usize = 5 << 20;
/// ... or within this time.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the first track is known, how long to wait for others (unless the container says how many).
const PROBE_SETTLE: Duration = Duration::from_secs(1);
/// Frames read while probing are kept up to this many bytes (oldest dropped first).
const PROBE_KEEP_BYTES: usize = 8 << 20;
/// A connection (or an upload) that sends nothing for this long has failed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 5;
/// Largest snapshot image accepted.
const MAX_SNAPSHOT: usize = formats::mjpeg::MAX_PART_SIZE;
/// Snapshot URLs are polled at most this often.
const SNAPSHOT_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// A connection opened by `describe` that no `run` claims within this time is closed.
const IDLE_CONN_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers added with `#header=` beyond this many are refused.
const MAX_EXTRA_HEADERS: usize = 32;
const MTU: usize = 1400;
const VIDEO_CLOCK: u32 = 90_000;

// ------------------------------------------------------------------------------------ demuxing

/// What the caller knows about a byte stream's format before reading it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hint {
    /// Sniff the first bytes.
    Auto,
    Ts,
    Flv,
    /// `multipart/x-mixed-replace` with this boundary.
    Multipart(String),
    /// Raw concatenated JPEG images.
    Jpeg,
}

/// The format a [`StreamDemuxer`] settled on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFormat {
    MpegTs,
    Flv,
    Multipart,
    Jpeg,
    H264,
    H265,
}

impl StreamFormat {
    pub fn name(self) -> &'static str {
        match self {
            StreamFormat::MpegTs => "MPEG-TS",
            StreamFormat::Flv => "FLV",
            StreamFormat::Multipart => "MJPEG multipart",
            StreamFormat::Jpeg => "JPEG",
            StreamFormat::H264 => "H.264 Annex B",
            StreamFormat::H265 => "H.265 Annex B",
        }
    }

    /// Short name for producer protocols (`http+ts`).
    pub fn short(self) -> &'static str {
        match self {
            StreamFormat::MpegTs => "ts",
            StreamFormat::Flv => "flv",
            StreamFormat::Multipart | StreamFormat::Jpeg => "mjpeg",
            StreamFormat::H264 => "h264",
            StreamFormat::H265 => "h265",
        }
    }
}

/// A hint from a `Content-Type` (`None`: the header says nothing useful, sniff).
pub fn hint_from_content_type(content_type: &str) -> Option<Hint> {
    let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match mime.as_str() {
        "video/x-flv" | "video/flv" => Some(Hint::Flv),
        "video/mp2t" | "video/mpeg" | "video/mpegts" => Some(Hint::Ts),
        m if m.starts_with("multipart/") => {
            formats::mjpeg::boundary_from_content_type(content_type).ok().map(Hint::Multipart)
        }
        _ => None,
    }
}

enum Inner {
    Detect(Vec<u8>),
    Ts(Box<TsDemuxer>, Box<PmtScan>),
    Flv(Box<FlvDemuxer>),
    Multipart(Box<MultipartParser>),
    Jpeg(Box<JpegSplitter>),
    AnnexB(Box<PipeParser>),
}

/// One demuxer for every byte-stream format we take in: detection, then MPEG-TS, FLV, MJPEG (multipart
/// or raw) or Annex B, giving [`DemuxEvent`]s. Sans-IO but for the wall clock passed in (`now`), which
/// times formats without timestamps (MJPEG, Annex B) in a 90 kHz clock. Every buffer is bounded by the
/// inner parsers.
pub struct StreamDemuxer {
    inner: Inner,
    format: Option<StreamFormat>,
    epoch: Option<Instant>,
    events: VecDeque<DemuxEvent>,
    /// The first bytes of the stream, for error messages.
    head: Vec<u8>,
    total: u64,
    announced: bool,
    /// Non-fatal problems (a bad PES, a broken JPEG): counted, the last one kept.
    pub errors: u64,
    pub last_error: Option<String>,
}

/// Events waiting in a [`StreamDemuxer`] beyond this are dropped (oldest first): the caller drains
/// after every push, so this only bounds a misbehaving caller.
const MAX_EVENTS: usize = 4096;
const HEAD_LEN: usize = 16;

impl StreamDemuxer {
    pub fn new(hint: Hint) -> StreamDemuxer {
        let mut d = StreamDemuxer {
            inner: Inner::Detect(Vec::new()),
            format: None,
            epoch: None,
            events: VecDeque::new(),
            head: Vec::new(),
            total: 0,
            announced: false,
            errors: 0,
            last_error: None,
        };
        match hint {
            Hint::Auto => {}
            Hint::Ts => d.set(StreamFormat::MpegTs, None),
            Hint::Flv => d.set(StreamFormat::Flv, None),
            Hint::Multipart(b) => d.set(StreamFormat::Multipart, Some(&b)),
            Hint::Jpeg => d.set(StreamFormat::Jpeg, None),
        }
        d
    }

    fn set(&mut self, format: StreamFormat, boundary: Option<&str>) {
        self.format = Some(format);
        self.inner = match format {
            StreamFormat::MpegTs => Inner::Ts(Box::default(), Box::default()),
            StreamFormat::Flv => Inner::Flv(Box::default()),
            StreamFormat::Multipart => Inner::Multipart(Box::new(MultipartParser::new(boundary.unwrap_or("")))),
            StreamFormat::Jpeg => Inner::Jpeg(Box::default()),
            StreamFormat::H264 | StreamFormat::H265 => Inner::AnnexB(Box::default()),
        };
    }

    /// The format, once detected.
    pub fn format(&self) -> Option<StreamFormat> {
        self.format
    }

    /// Bytes pushed so far.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The first bytes of the stream in hex (`47 40 00 10 ...`), for error messages.
    pub fn head_hex(&self) -> String {
        let hex: Vec<String> = self.head.iter().take(8).map(|b| format!("{b:02x}")).collect();
        if hex.is_empty() {
            "none".to_string()
        } else {
            hex.join(" ")
        }
    }

    /// How many tracks the container announces, when it says (FLV header flags, TS PMT, one for the
    /// single-track formats).
    pub fn expected_tracks(&self) -> Option<usize> {
        match &self.inner {
            Inner::Detect(_) => None,
            Inner::Ts(_, pmt) => pmt.streams,
            Inner::Flv(_) => {
                let flags = *self.head.get(4)?;
                let n = usize::from(flags & 0x04 != 0) + usize::from(flags & 0x01 != 0);
                (n > 0).then_some(n)
            }
            Inner::Multipart(_) | Inner::Jpeg(_) | Inner::AnnexB(_) => Some(1),
        }
    }

    /// True when an MPEG-TS stream showed sync bytes 188 apart somewhere.
    pub fn ts_synced(&self) -> bool {
        matches!(&self.inner, Inner::Ts(_, pmt) if pmt.synced)
    }

    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    fn emit(&mut self, e: DemuxEvent) {
        if self.events.len() >= MAX_EVENTS {
            self.events.pop_front();
        }
        self.events.push_back(e);
    }

    fn soft_error(&mut self, e: impl std::fmt::Display) {
        self.errors += 1;
        self.last_error = Some(e.to_string());
    }

    fn ticks(&mut self, at: Instant) -> u32 {
        let epoch = *self.epoch.get_or_insert(at);
        // Wraps like any RTP clock.
        (at.saturating_duration_since(epoch).as_micros() * u128::from(VIDEO_CLOCK) / 1_000_000) as u32
    }

    /// Feeds bytes. An error is fatal (the stream cannot go on: unknown format, corrupt FLV, an
    /// oversize Annex B unit); recoverable problems are counted in [`StreamDemuxer::errors`].
    pub fn push(&mut self, data: &[u8], now: Instant) -> Result<(), String> {
        self.total += data.len() as u64;
        if self.head.len() < HEAD_LEN {
            let n = (HEAD_LEN - self.head.len()).min(data.len());
            self.head.extend_from_slice(&data[..n]);
        }
        if let Inner::Detect(buf) = &mut self.inner {
            buf.extend_from_slice(data);
            let buf = std::mem::take(buf);
            let Some(format) = sniff::detect(&buf) else {
                if buf.len() >= sniff::PREFIX_LEN {
                    return Err(format!(
                        "unknown format (first bytes {}; expected MPEG-TS, FLV, MJPEG or H.264/H.265 Annex B)",
                        self.head_hex()
                    ));
                }
                self.inner = Inner::Detect(buf);
                return Ok(());
            };
            match format {
                Format::MpegTs => self.set(StreamFormat::MpegTs, None),
                Format::Flv => self.set(StreamFormat::Flv, None),
                Format::Jpeg => self.set(StreamFormat::Jpeg, None),
                Format::H264 => self.set(StreamFormat::H264, None),
                Format::H265 => self.set(StreamFormat::H265, None),
                Format::Multipart => {
                    // `--boundary` on the first line (sniff checked it is there).
                    let line = buf.split(|&b| b == b'\n').next().unwrap_or_default();
                    let boundary = String::from_utf8_lossy(&line[2..]).trim().to_string();
                    self.set(StreamFormat::Multipart, Some(&boundary));
                }
                Format::Mp4 => return Err("MP4 is not supported here (send MPEG-TS, FLV or MJPEG)".into()),
            }
            return self.feed(&buf, now);
        }
        self.feed(data, now)
    }

    fn feed(&mut self, data: &[u8], now: Instant) -> Result<(), String> {
        let mut out: Vec<DemuxEvent> = Vec::new();
        let mut jpegs: Vec<Bytes> = Vec::new();
        let mut units: Vec<PipeUnit> = Vec::new();
        let mut soft: Option<String> = None;
        match &mut self.inner {
            Inner::Detect(_) => return Ok(()),
            Inner::Ts(demux, pmt) => {
                pmt.push(data);
                if let Err(e) = demux.push(data) {
                    soft = Some(format!("MPEG-TS: {e}"));
                }
                out.extend(std::iter::from_fn(|| demux.poll()));
            }
            Inner::Flv(demux) => {
                demux.push(data).map_err(|e| format!("invalid FLV: {e}"))?;
                out.extend(std::iter::from_fn(|| demux.poll()));
            }
            Inner::Multipart(parser) => {
                if let Err(e) = parser.push(data) {
                    soft = Some(format!("multipart: {e}"));
                }
                while let Some(part) = parser.poll() {
                    if part.body.starts_with(&[0xff, 0xd8]) {
                        jpegs.push(part.body);
                    }
                }
            }
            Inner::Jpeg(splitter) => {
                if let Err(e) = splitter.push(data) {
                    soft = Some(format!("JPEG: {e}"));
                }
                jpegs.extend(std::iter::from_fn(|| splitter.poll()));
            }
            Inner::AnnexB(parser) => {
                parser.push(data, now, &mut units)?;
                if !self.announced {
                    if let Some(c) = parser.codec() {
                        self.announced = true;
                        out.push(DemuxEvent::Track { index: 0, kind: Kind::Video, codec: c });
                    } else {
                        units.clear(); // nothing decodable before the parameter sets
                    }
                }
                if parser.format() == Some(PipeFormat::H265) {
                    self.format = Some(StreamFormat::H265);
                }
            }
        }
        if let Some(e) = soft {
            self.soft_error(e);
        }
        for e in out {
            self.emit(e);
        }
        for jpeg in jpegs {
            if !self.announced {
                self.announced = true;
                self.emit(DemuxEvent::Track { index: 0, kind: Kind::Video, codec: jpeg_codec() });
            }
            let timestamp = self.ticks(now);
            self.emit(DemuxEvent::Frame {
                index: 0,
                frame: Frame { timestamp, keyframe: true, payload: jpeg, rtp: vec![] },
            });
        }
        for u in units {
            let timestamp = self.ticks(u.at);
            let frame = Frame { timestamp, keyframe: u.keyframe, payload: u.payload, rtp: vec![] };
            self.emit(DemuxEvent::Frame { index: 0, frame });
        }
        Ok(())
    }

    /// The stream ended: flushes what the demuxer still holds (the last TS PES).
    pub fn finish(&mut self) {
        if let Inner::Ts(demux, _) = &mut self.inner {
            let _ = demux.finish();
            let events: Vec<DemuxEvent> = std::iter::from_fn(|| demux.poll()).collect();
            for e in events {
                self.emit(e);
            }
        }
    }
}

pub fn jpeg_codec() -> Codec {
    Codec::new(codec::JPEG, VIDEO_CLOCK, 0, 26)
}

/// Finds the PMT of the first program in the first MPEG-TS packets and counts the streams the demuxer
/// supports (H.264, H.265, AAC), so probing knows how many tracks to wait for.
#[derive(Default)]
struct PmtScan {
    buf: Vec<u8>,
    pmt_pid: Option<u16>,
    streams: Option<usize>,
    synced: bool,
    done: bool,
}

impl PmtScan {
    fn push(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 188 {
            let b = &self.buf;
            if b[pos] != 0x47 || b.get(pos + 188).is_some_and(|&x| x != 0x47) {
                pos += 1;
                continue;
            }
            self.synced = true;
            let mut packet = [0u8; 188];
            packet.copy_from_slice(&self.buf[pos..pos + 188]);
            self.packet(&packet);
            pos += 188;
            if self.streams.is_some() {
                self.done = true;
                self.buf = Vec::new();
                return;
            }
        }
        self.buf.drain(..pos);
        if self.buf.len() > PROBE_MAX_BYTES {
            self.done = true;
            self.buf = Vec::new();
        }
    }

    fn packet(&mut self, p: &[u8; 188]) {
        if p[1] & 0x40 == 0 {
            return; // not a section start
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || off >= 188 {
            return;
        }
        let pointer = usize::from(p[off]);
        let Some(sec) = p.get(off + 1 + pointer..) else { return };
        if sec.len() < 3 {
            return;
        }
        let section_len = (usize::from(sec[1] & 0x0f) << 8) | usize::from(sec[2]);
        let end = (3 + section_len).saturating_sub(4).min(sec.len());
        if pid == 0 && sec[0] == 0x00 {
            let mut i = 8;
            while i + 4 <= end {
                let program = u16::from_be_bytes([sec[i], sec[i + 1]]);
                if program != 0 {
                    self.pmt_pid = Some(u16::from_be_bytes([sec[i + 2], sec[i + 3]]) & 0x1fff);
                    break;
                }
                i += 4;
            }
        } else if Some(pid) == self.pmt_pid && sec[0] == 0x02 && end >= 12 {
            let info_len = (usize::from(sec[10] & 0x0f) << 8) | usize::from(sec[11]);
            let mut i = 12 + info_len;
            let mut count = 0;
            while i + 5 <= end {
                if matches!(sec[i], 0x1b | 0x24 | 0x0f) {
                    count += 1;
                }
                i += 5 + ((usize::from(sec[i + 3] & 0x0f) << 8) | usize::from(sec[i + 4]));
            }
            self.streams = Some(count);
        }
    }
}

// -------------------------------------------------------------------------------------- probing

/// Something that gives a stream's bytes chunk by chunk (`None` at its end).
pub trait ChunkSource: Send {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, String>> + Send;
}

/// A track found by [`probe`].
#[derive(Clone, Debug)]
pub struct ProbedTrack {
    /// The demuxer's index of the stream.
    pub index: usize,
    pub kind: Kind,
    pub codec: Codec,
}

/// The tracks of a stream and the frames read while finding them.
pub struct Probed {
    pub tracks: Vec<ProbedTrack>,
    pub frames: VecDeque<(usize, Frame)>,
    /// The stream ended during the probe (a short upload).
    pub ended: bool,
}

impl Probed {
    /// One recvonly media per track, with distinct dynamic payload types (96, 97...).
    pub fn medias(&self) -> Vec<Media> {
        self.tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut c = t.codec.clone();
                if c.payload_type >= 96 || (c.payload_type == 0 && c.name != codec::PCMU) {
                    c.payload_type = 96 + i as u8;
                }
                Media::new(t.kind, Direction::RecvOnly, vec![c])
            })
            .collect()
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The bytes are not (a supported kind of) the expected format.
    Invalid(String),
    /// Reading failed (connection closed, timed out).
    Io(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Invalid(s) | ProbeError::Io(s) => f.write_str(s),
        }
    }
}

/// Reads from `src` into `demux` until every track is known: as many as the container announces,
/// a video and an audio track, or [`PROBE_SETTLE`] after the first one. Refuses a stream that shows no
/// track within [`PROBE_MAX_BYTES`] / [`PROBE_TIMEOUT`]. Bounded: frames read meanwhile are kept up
/// to [`PROBE_KEEP_BYTES`].
pub async fn probe<C: ChunkSource>(src: &mut C, demux: &mut StreamDemuxer) -> Result<Probed, ProbeError> {
    let started = Instant::now();
    let deadline = started + PROBE_TIMEOUT;
    let mut probed = Probed { tracks: Vec::new(), frames: VecDeque::new(), ended: false };
    let mut kept = 0usize;
    let mut first_track: Option<Instant> = None;
    let mut first_ts: Option<u32> = None;
    let mut span_done = false;
    loop {
        // Drain what the demuxer has.
        while let Some(ev) = demux.poll() {
            match ev {
                DemuxEvent::Track { index, kind, codec } => {
                    if !probed.tracks.iter().any(|t| t.index == index) {
                        probed.tracks.push(ProbedTrack { index, kind, codec });
                        first_track.get_or_insert_with(Instant::now);
                    }
                }
                DemuxEvent::Frame { index, frame } => {
                    if probed.tracks.first().is_some_and(|t| t.index == index) {
                        let clock = probed.tracks[0].codec.clock_rate.max(1);
                        let first = *first_ts.get_or_insert(frame.timestamp);
                        span_done |= frame.timestamp.wrapping_sub(first) >= clock;
                    }
                    kept += frame.payload.len();
                    probed.frames.push_back((index, frame));
                    while kept > PROBE_KEEP_BYTES {
                        let Some((_, old)) = probed.frames.pop_front() else { break };
                        kept -= old.payload.len();
                    }
                }
            }
        }
        let have_video = probed.tracks.iter().any(|t| t.kind == Kind::Video);
        let have_audio = probed.tracks.iter().any(|t| t.kind == Kind::Audio);
        let now = Instant::now();
        if !probed.tracks.is_empty() {
            let expected = demux.expected_tracks();
            if expected.is_some_and(|n| probed.tracks.len() >= n)
                || (have_video && have_audio)
                || span_done
                || first_track.is_some_and(|t| now >= t + PROBE_SETTLE)
                || probed.ended
            {
                return Ok(probed);
            }
        } else {
            if probed.ended {
                return Err(no_track(demux, &format!("the stream ended after {} bytes", demux.total())));
            }
            if demux.total() as usize > PROBE_MAX_BYTES {
                return Err(no_track(demux, &format!("in the first {} MiB", PROBE_MAX_BYTES >> 20)));
            }
            if demux.expected_tracks() == Some(0) {
                return Err(ProbeError::Invalid(
                    "MPEG-TS: the program has no H.264, H.265 or AAC stream (PMT)".to_string(),
                ));
            }
            if now >= deadline {
                return Err(no_track(demux, &format!("within {} s", PROBE_TIMEOUT.as_secs())));
            }
        }
        let wake = match first_track {
            Some(t) => (t + PROBE_SETTLE).min(now + READ_TIMEOUT),
            None => deadline,
        };
        let chunk = tokio::select! {
            c = src.next_chunk() => c.map_err(ProbeError::Io)?,
            _ = tokio::time::sleep_until(wake) => continue,
        };
        match chunk {
            Some(data) => demux.push(&data, Instant::now()).map_err(ProbeError::Invalid)?,
            None => {
                demux.finish();
                probed.ended = true;
            }
        }
    }
}

fn no_track(demux: &StreamDemuxer, when: &str) -> ProbeError {
    let head = demux.head_hex();
    let detail = demux.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
    ProbeError::Invalid(match demux.format() {
        None => format!("unknown format: no recognisable stream {when} (first bytes {head})"),
        Some(StreamFormat::MpegTs) if !demux.ts_synced() => {
            format!("not MPEG-TS: no sync byte pattern {when} (first bytes {head})")
        }
        Some(StreamFormat::MpegTs) => {
            format!("MPEG-TS: no H.264, H.265 or AAC stream with its parameters {when}{detail}")
        }
        Some(StreamFormat::Flv) => format!("FLV: no audio or video stream with its parameters {when}{detail}"),
        Some(f @ (StreamFormat::Multipart | StreamFormat::Jpeg)) => {
            format!("{}: no complete JPEG image {when} (first bytes {head}){detail}", f.name())
        }
        Some(f) => format!("{}: no SPS/PPS and keyframe {when}", f.name()),
    })
}

/// Pushes demuxed frames into hub tracks, packetizing them into RTP once so that RTSP readers forward
/// them as they are.
pub struct FramePump {
    /// Demuxer stream index → our track slot.
    slots: Vec<(usize, usize)>,
    tracks: Vec<Arc<Track>>,
    packetizers: Vec<Option<Box<dyn rtp::packetize::Packetizer>>>,
    pub frames: u64,
    late_tracks: u64,
}

impl FramePump {
    /// `tracks` are the hub tracks made from [`Probed::medias`] (same order as `probed.tracks`).
    pub fn new(probed: &Probed, tracks: Vec<Arc<Track>>) -> FramePump {
        let slots = probed.tracks.iter().enumerate().map(|(slot, t)| (t.index, slot)).collect();
        let packetizers = tracks.iter().map(|t| rtp::packetize::packetizer_for(&t.codec, MTU)).collect();
        FramePump { slots, tracks, packetizers, frames: 0, late_tracks: 0 }
    }

    pub fn push(&mut self, index: usize, mut frame: Frame) {
        let Some(&(_, slot)) = self.slots.iter().find(|(i, _)| *i == index) else { return };
        let (Some(track), Some(packetizer)) = (self.tracks.get(slot), self.packetizers.get_mut(slot)) else {
            return;
        };
        if let Some(p) = packetizer.as_mut() {
            let mut packets = Vec::new();
            p.packetize(&frame, &mut packets);
            frame.rtp = packets;
        }
        self.frames += 1;
        track.push(frame);
    }

    /// Pushes every frame the demuxer has ready.
    pub fn drain(&mut self, demux: &mut StreamDemuxer) {
        while let Some(ev) = demux.poll() {
            match ev {
                DemuxEvent::Frame { index, frame } => self.push(index, frame),
                DemuxEvent::Track { index, kind, codec } => {
                    // A stream that appeared after the medias were announced cannot be added.
                    if !self.slots.iter().any(|(i, _)| *i == index) {
                        self.late_tracks += 1;
                        if self.late_tracks == 1 {
                            tracing::debug!(index, kind = kind.as_str(), codec = %codec.name, "late track ignored");
                        }
                    }
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------ HTTP client

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    /// HTTPS without certificate verification.
    Httpx,
    Tcp,
}

/// A parsed source URL (without its `#` parameters).
#[derive(Clone, Debug)]
struct Target {
    scheme: Scheme,
    host: String,
    port: u16,
    /// Path and query (`/x?y`), `/` at least.
    path: String,
    /// `user:pass`, percent-decoded.
    userinfo: Option<String>,
}

impl Target {
    fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "httpx" => Scheme::Httpx,
            "tcp" => Scheme::Tcp,
            s => return Err(format!("unsupported scheme {s:?}")),
        };
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(end);
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(percent_decode(u)), h),
            None => (None, authority),
        };
        let (host, port) = split_host_port(hostport)?;
        if host.is_empty() {
            return Err("no host in the URL".into());
        }
        let port = match (port, scheme) {
            (Some(p), _) => p,
            (None, Scheme::Http) => 80,
            (None, Scheme::Https | Scheme::Httpx) => 443,
            (None, Scheme::Tcp) => return Err("tcp:// needs a port".into()),
        };
        let path = if path.is_empty() {
            "/".to_string()
        } else if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(Target { scheme, host, port, path, userinfo })
    }

    fn tls(&self) -> bool {
        matches!(self.scheme, Scheme::Https | Scheme::Httpx)
    }

    fn host_header(&self) -> String {
        let default = if self.tls() { 443 } else { 80 };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        if self.port == default {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }

    fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Httpx => "httpx",
            Scheme::Tcp => "tcp",
        };
        format!("{scheme}://{}", self.host_header())
    }

    /// The target of a redirect (`Location`), relative or absolute. Credentials follow only to the
    /// same host.
    fn redirect(&self, location: &str) -> Result<Target, String> {
        let mut next = if location.contains("://") {
            let mut t = Target::parse(location)?;
            if t.scheme == Scheme::Tcp {
                return Err("redirect to tcp://".into());
            }
            if t.scheme == Scheme::Https && self.scheme == Scheme::Httpx {
                t.scheme = Scheme::Httpx;
            }
            t
        } else if let Some(rest) = location.strip_prefix("//") {
            Target::parse(&format!("{}://{rest}", if self.tls() { "https" } else { "http" }))?
        } else {
            let path = if location.starts_with('/') {
                location.to_string()
            } else {
                let base = self.path.split('?').next().unwrap_or("/");
                let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
                format!("{}{location}", if dir.is_empty() { "/" } else { dir })
            };
            Target { path, ..self.clone() }
        };
        if next.userinfo.is_none() && next.host == self.host && next.port == self.port {
            next.userinfo = self.userinfo.clone();
        }
        Ok(next)
    }
}

fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, after) = rest.split_once(']').ok_or("bad IPv6 host")?;
        (h, after.strip_prefix(':'))
    } else {
        match s.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let port = match port {
        Some(p) => Some(p.parse::<u16>().map_err(|_| format!("bad port {p:?}"))?),
        None => None,
    };
    Ok((host.to_string(), port))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
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

/// The `#` parameters of an http/tcp URL that we use.
#[derive(Clone, Debug, Default, PartialEq)]
struct Params {
    headers: Vec<(String, String)>,
}

fn split_url(url: &str) -> Result<(&str, Params), String> {
    let (base, query) = url.split_once('#').unwrap_or((url, ""));
    let mut params = Params::default();
    for (k, v) in parse_query(query) {
        if k == "header" {
            let (name, value) = v.split_once(':').ok_or_else(|| format!("#header={v:?} is not \"Name: value\""))?;
            let name = name.trim();
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
            if !valid || value.contains(['\r', '\n']) {
                return Err(format!("#header: invalid header {name:?}"));
            }
            if params.headers.len() >= MAX_EXTRA_HEADERS {
                return Err(format!("more than {MAX_EXTRA_HEADERS} #header= parameters"));
            }
            params.headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    Ok((base, params))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Io for T {}

async fn connect(t: &Target) -> Result<Box<dyn Io>, String> {
    let addr = format!("{}:{}", t.host, t.port);
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(format!("connect: {e}")),
        Err(_) => return Err(format!("connect: timed out after {} s", CONNECT_TIMEOUT.as_secs())),
    };
    let _ = tcp.set_nodelay(true);
    if !t.tls() {
        return Ok(Box::new(tcp));
    }
    let config = crate::tls::client_config(t.scheme == Scheme::Https)?;
    let name =
        rustls::pki_types::ServerName::try_from(t.host.clone()).map_err(|e| format!("TLS: bad server name: {e}"))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    match tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp)).await {
        Ok(Ok(s)) => Ok(Box::new(s)),
        Ok(Err(e)) => Err(format!("TLS handshake: {e}")),
        Err(_) => Err(format!("TLS handshake: timed out after {} s", CONNECT_TIMEOUT.as_secs())),
    }
}

/// An HTTP/1.1 connection: hyper's request sender and its connection task (aborted on drop).
struct HttpConn {
    sender: hyper::client::conn::http1::SendRequest<Empty<Bytes>>,
    task: tokio::task::JoinHandle<()>,
    target: Target,
}

impl Drop for HttpConn {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl HttpConn {
    async fn open(target: &Target) -> Result<HttpConn, String> {
        let io = connect(target).await?;
        let (sender, conn) = hyper::client::conn::http1::Builder::new()
            .max_buf_size(64 * 1024)
            // `Authorization`, not `authorization`: as Go's client (go2rtc) writes them; some cameras care.
            .title_case_headers(true)
            .handshake(TokioIo::new(io))
            .await
            .map_err(|e| format!("HTTP: {e}"))?;
        let task = tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(HttpConn { sender, task, target: target.clone() })
    }

    /// Sends a GET for the connection's target and waits for the response head.
    async fn get(&mut self, headers: &[(String, String)]) -> Result<hyper::Response<Incoming>, String> {
        let t = &self.target;
        let mut req = hyper::Request::get(t.path.as_str())
            .header(hyper::header::HOST, t.host_header())
            .header(hyper::header::USER_AGENT, concat!("camrelay/", env!("CARGO_PKG_VERSION")));
        if let Some(userinfo) = &t.userinfo {
            use base64::Engine;
            let token = base64::engine::general_purpose::STANDARD.encode(userinfo);
            req = req.header(hyper::header::AUTHORIZATION, format!("Basic {token}"));
        }
        for (k, v) in headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req.body(Empty::new()).map_err(|e| format!("request: {e}"))?;
        tokio::time::timeout(READ_TIMEOUT, async {
            self.sender.ready().await.map_err(|e| format!("HTTP: {e}"))?;
            self.sender.send_request(req).await.map_err(|e| format!("HTTP: {e}"))
        })
        .await
        .map_err(|_| format!("no response within {} s", READ_TIMEOUT.as_secs()))?
    }

    /// False once the server closed the connection.
    fn reusable(&self) -> bool {
        !self.sender.is_closed()
    }
}

/// GETs `target` following up to [`MAX_REDIRECTS`] redirects; a non-2xx answer is an error.
async fn http_get(
    target: &Target,
    headers: &[(String, String)],
) -> Result<(HttpConn, hyper::Response<Incoming>), String> {
    let mut target = target.clone();
    for _ in 0..=MAX_REDIRECTS {
        let mut conn = HttpConn::open(&target).await?;
        let resp = conn.get(headers).await?;
        let status = resp.status();
        if status.is_redirection() {
            if let Some(loc) = resp.headers().get(hyper::header::LOCATION).and_then(|v| v.to_str().ok()) {
                tracing::debug!(from = %mask_url(&target.origin()), to = %mask_url(loc), "redirect");
                target = target.redirect(loc)?;
                continue;
            }
        }
        if !status.is_success() {
            return Err(format!("HTTP {status}"));
        }
        return Ok((conn, resp));
    }
    Err(format!("more than {MAX_REDIRECTS} redirects"))
}

fn content_type(resp: &hyper::Response<Incoming>) -> String {
    resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Reads a whole (small) body, bounded.
async fn read_body(body: &mut Incoming, limit: usize) -> Result<Bytes, String> {
    let mut out = Vec::new();
    loop {
        let frame = tokio::time::timeout(READ_TIMEOUT, body.frame())
            .await
            .map_err(|_| format!("no data for {} s", READ_TIMEOUT.as_secs()))?;
        match frame {
            None => return Ok(Bytes::from(out)),
            Some(Err(e)) => return Err(format!("reading body: {e}")),
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    if out.len() + data.len() > limit {
                        return Err(format!("image larger than {} MiB", limit >> 20));
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
    }
}

/// A source's open byte stream.
enum Body {
    Http { body: Incoming, _conn: HttpConn },
    Tcp { stream: Box<dyn Io>, buf: Box<[u8]> },
}

impl ChunkSource for Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        let timeout = || format!("no data for {} s", READ_TIMEOUT.as_secs());
        match self {
            Body::Http { body, .. } => loop {
                let frame = tokio::time::timeout(READ_TIMEOUT, body.frame()).await.map_err(|_| timeout())?;
                match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(format!("reading body: {e}")),
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data() {
                            if !data.is_empty() {
                                return Ok(Some(data));
                            }
                        }
                    }
                }
            },
            Body::Tcp { stream, buf } => {
                let n = tokio::time::timeout(READ_TIMEOUT, stream.read(buf)).await.map_err(|_| timeout())?;
                match n {
                    Ok(0) => Ok(None),
                    Ok(n) => Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
                    Err(e) => Err(format!("read: {e}")),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------ source

/// Schemes served by this module, with their factories.
pub fn schemes(_ctx: &SourceContext) -> Vec<(&'static str, SourceFactory)> {
    let f: SourceFactory = Arc::new(|url: &str| {
        let source = HttpSource::new(url)?;
        Ok(Arc::new(source) as Arc<dyn Source>)
    });
    vec![("http", f.clone()), ("https", f.clone()), ("httpx", f.clone()), ("tcp", f)]
}

pub struct HttpSource {
    /// Masked URL for logs and errors.
    label: String,
    target: Target,
    params: Params,
    slot: Arc<tokio::sync::Mutex<Slot>>,
}

#[derive(Default)]
struct Slot {
    opened: Option<Opened>,
    generation: u64,
}

/// A connection `describe` opened, with what it read.
struct Opened {
    medias: Vec<Media>,
    mode: Mode,
}

enum Mode {
    Stream {
        body: Body,
        demux: Box<StreamDemuxer>,
        probed: Probed,
    },
    /// A JPEG snapshot URL: the first image, and the connection if it can be reused.
    Snapshot {
        first: Bytes,
        conn: Option<HttpConn>,
    },
}

impl HttpSource {
    pub fn new(url: &str) -> Result<HttpSource, String> {
        let label = mask_url(url);
        let (base, params) = split_url(url).map_err(|e| format!("{label}: {e}"))?;
        let target = Target::parse(base).map_err(|e| format!("{label}: {e}"))?;
        Ok(HttpSource { label, target, params, slot: Arc::default() })
    }

    fn err(&self, what: impl std::fmt::Display) -> String {
        // Errors from lower layers may quote URLs (redirect targets): mask those too.
        crate::secrets::mask_text(&format!("{}: {what}", self.label))
    }

    /// Connects, reads until the medias are known.
    async fn open(&self) -> Result<Opened, String> {
        let (body, hint) = if self.target.scheme == Scheme::Tcp {
            let stream = connect(&self.target).await.map_err(|e| self.err(e))?;
            (Body::Tcp { stream, buf: vec![0u8; 64 * 1024].into_boxed_slice() }, Hint::Auto)
        } else {
            let (conn, resp) = http_get(&self.target, &self.params.headers).await.map_err(|e| self.err(e))?;
            let ct = content_type(&resp);
            let mut body = resp.into_body();
            if ct.to_ascii_lowercase().starts_with("image/") {
                let first = read_body(&mut body, MAX_SNAPSHOT).await.map_err(|e| self.err(e))?;
                if !first.starts_with(&[0xff, 0xd8]) {
                    return Err(self.err(format!("{ct} answer is not a JPEG image")));
                }
                let conn = conn.reusable().then_some(conn);
                let medias = vec![Media::new(Kind::Video, Direction::RecvOnly, vec![jpeg_codec()])];
                return Ok(Opened { medias, mode: Mode::Snapshot { first, conn } });
            }
            (Body::Http { body, _conn: conn }, hint_from_content_type(&ct).unwrap_or(Hint::Auto))
        };
        let mut body = body;
        let mut demux = Box::new(StreamDemuxer::new(hint));
        let probed = probe(&mut body, &mut demux).await.map_err(|e| self.err(e))?;
        let medias = probed.medias();
        tracing::debug!(source = %self.label, format = demux.format().map_or("?", |f| f.name()), "source described");
        Ok(Opened { medias, mode: Mode::Stream { body, demux, probed } })
    }

    fn watch_idle(&self, generation: u64) {
        let slot = Arc::downgrade(&self.slot);
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_CONN_TIMEOUT).await;
            let Some(slot) = slot.upgrade() else { return };
            let mut slot = slot.lock().await;
            if slot.generation == generation {
                slot.opened = None;
            }
        });
    }

    async fn run_inner(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), String> {
        let claimed = {
            let mut slot = self.slot.lock().await;
            slot.generation += 1;
            slot.opened.take()
        };
        let opened = match claimed {
            Some(o) => o,
            None => tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                o = self.open() => o?,
            },
        };
        let same = opened.medias.len() == tracks.len()
            && opened
                .medias
                .iter()
                .zip(&tracks)
                .all(|(m, t)| m.kind == t.kind && m.codecs.first().is_some_and(|c| c.name == t.codec.name));
        if !same {
            let now: Vec<String> = opened.medias.iter().map(|m| m.to_string()).collect();
            return Err(self.err(format!("the source now offers [{}], other medias than before", now.join("; "))));
        }
        match opened.mode {
            Mode::Stream { mut body, mut demux, probed } => {
                let mut pump = FramePump::new(&probed, tracks);
                for (index, frame) in probed.frames {
                    pump.push(index, frame);
                }
                pump.drain(&mut demux);
                loop {
                    let chunk = tokio::select! {
                        _ = stop.cancelled() => return Ok(()),
                        c = body.next_chunk() => c.map_err(|e| self.err(e))?,
                    };
                    let Some(data) = chunk else {
                        demux.finish();
                        pump.drain(&mut demux);
                        return Err(self.err("the stream ended"));
                    };
                    demux.push(&data, Instant::now()).map_err(|e| self.err(e))?;
                    pump.drain(&mut demux);
                }
            }
            Mode::Snapshot { first, conn } => self.poll_snapshots(first, conn, tracks, stop).await,
        }
    }

    /// Polls a snapshot URL into a JPEG track.
    async fn poll_snapshots(
        &self,
        first: Bytes,
        mut conn: Option<HttpConn>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), String> {
        let Some(track) = tracks.into_iter().next() else { return Err(self.err("no track")) };
        let mut packetizer = rtp::packetize::packetizer_for(&track.codec, MTU);
        let epoch = Instant::now();
        let mut push = |jpeg: Bytes| {
            let timestamp = (epoch.elapsed().as_micros() * u128::from(VIDEO_CLOCK) / 1_000_000) as u32;
            let mut frame = Frame { timestamp, keyframe: true, payload: jpeg, rtp: vec![] };
            if let Some(p) = packetizer.as_mut() {
                let mut packets = Vec::new();
                p.packetize(&frame, &mut packets);
                frame.rtp = packets;
            }
            track.push(frame);
        };
        push(first);
        let mut last = Instant::now();
        loop {
            let next = last + SNAPSHOT_MIN_INTERVAL;
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next) => {}
            }
            last = Instant::now();
            let fetch = async {
                // Reuse the kept-alive connection; a camera that closed it gets a fresh one.
                let reused = match conn.take().filter(|c| c.reusable()) {
                    Some(mut c) => match c.get(&self.params.headers).await {
                        Ok(resp) if resp.status().is_success() => Some((c, resp)),
                        _ => None,
                    },
                    None => None,
                };
                let (c, resp) = match reused {
                    Some(r) => r,
                    None => http_get(&self.target, &self.params.headers).await?,
                };
                let keep_alive = !resp
                    .headers()
                    .get(hyper::header::CONNECTION)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let jpeg = read_body(&mut resp.into_body(), MAX_SNAPSHOT).await?;
                Ok::<_, String>((jpeg, (keep_alive && c.reusable()).then_some(c)))
            };
            let (jpeg, reuse) = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = fetch => r.map_err(|e| self.err(e))?,
            };
            conn = reuse;
            if !jpeg.starts_with(&[0xff, 0xd8]) {
                return Err(self.err("the snapshot answer is not a JPEG image"));
            }
            push(jpeg);
        }
    }
}

impl Source for HttpSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move {
            let mut slot = self.slot.lock().await;
            if let Some(o) = slot.opened.as_ref() {
                return Ok(o.medias.clone());
            }
            let opened = self.open().await?;
            let medias = opened.medias.clone();
            slot.opened = Some(opened);
            slot.generation += 1;
            self.watch_idle(slot.generation);
            Ok(medias)
        })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_inner(tracks, stop).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_params() {
        let (base, p) =
            split_url("http://u:p%40x@cam:8080/snap.cgi?ch=1#header=Authorization: Bearer X#header=X-A:b").unwrap();
        assert_eq!(p.headers, vec![("Authorization".into(), "Bearer X".into()), ("X-A".into(), "b".into())]);
        let t = Target::parse(base).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("cam", 8080, "/snap.cgi?ch=1"));
        assert_eq!(t.userinfo.as_deref(), Some("u:p@x"));
        assert_eq!(t.host_header(), "cam:8080");
        let t = Target::parse("https://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 443, "/"));
        assert!(Target::parse("tcp://host").is_err());
        assert!(split_url("http://x#header=Bad Name: v").is_err());
        assert!(split_url("http://x#header=novalue").is_err());
    }

    #[test]
    fn redirects_resolve() {
        let t = Target::parse("http://u:p@cam/a/b.cgi?x").unwrap();
        let r = t.redirect("c.jpg").unwrap();
        assert_eq!(r.path, "/a/c.jpg");
        assert_eq!(r.userinfo.as_deref(), Some("u:p"));
        let r = t.redirect("http://other/x").unwrap();
        assert_eq!((r.host.as_str(), r.userinfo), ("other", None));
        assert!(t.redirect("tcp://x:1").is_err());
    }

    #[test]
    fn content_type_hints() {
        assert_eq!(hint_from_content_type("video/x-flv"), Some(Hint::Flv));
        assert_eq!(hint_from_content_type("video/MP2T"), Some(Hint::Ts));
        assert_eq!(
            hint_from_content_type("multipart/x-mixed-replace; boundary=\"--myboundary\""),
            Some(Hint::Multipart("--myboundary".into()))
        );
        assert_eq!(hint_from_content_type("multipart/x-mixed-replace"), None);
        assert_eq!(hint_from_content_type("application/octet-stream"), None);
    }

    #[test]
    fn demuxer_rejects_garbage_and_finds_jpeg() {
        let now = Instant::now();
        let mut d = StreamDemuxer::new(Hint::Auto);
        let err = d.push(&[0x13u8; 600], now).unwrap_err();
        assert!(err.contains("unknown format"), "{err}");
        let mut d = StreamDemuxer::new(Hint::Auto);
        let jpeg = [0xff, 0xd8, 0xff, 0xdb, 0x00, 0x04, 0x00, 0x00, 0xff, 0xda, 0x00, 0x02, 0x11, 0x22, 0xff, 0xd9];
        let mut body = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        body.extend_from_slice(&jpeg);
        body.extend_from_slice(b"\r\n--frame\r\n");
        d.push(&body, now).unwrap();
        assert_eq!(d.format(), Some(StreamFormat::Multipart));
        assert!(matches!(d.poll(), Some(DemuxEvent::Track { index: 0, kind: Kind::Video, .. })));
        assert!(matches!(d.poll(), Some(DemuxEvent::Frame { .. })));
    }

    #[test]
    fn pmt_scan_counts_streams() {
        // PAT: program 1 → PMT pid 0x1000; PMT: H.264 on 0x100, AAC on 0x101, one unsupported (0x06).
        let mut ts = Vec::new();
        let mut pkt = |pid: u16, section: &[u8]| {
            let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00];
            p.extend_from_slice(section);
            p.resize(188, 0xff);
            ts.extend_from_slice(&p);
        };
        pkt(0, &[0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0, 0, 0, 0]);
        pkt(
            0x1000,
            &[
                0x02, 0xb0, 0x1c, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00,
                0x0f, 0xe1, 0x01, 0xf0, 0x00, 0x06, 0xe1, 0x02, 0xf0, 0x00, 0, 0, 0, 0,
            ],
        );
        let mut scan = PmtScan::default();
        scan.push(&ts[..100]);
        scan.push(&ts[100..]);
        assert!(scan.synced);
        assert_eq!(scan.streams, Some(2));
    }
}
