//! Byte streams in: one demuxer for every format we take from a pipe, a socket or an upload (MPEG-TS,
//! FLV, MJPEG multipart or raw JPEG, H.264/H.265 Annex B), [`probe`] to learn a stream's tracks, and
//! [`FramePump`] to push its frames into hub tracks. Used by the `http(s)://` and `tcp://` sources, the
//! `exec:` pipe mode and the HTTP ingest endpoints.

use bytes::Bytes;
use formats::mjpeg::{JpegSplitter, MultipartParser};
use formats::{flv::FlvDemuxer, sniff, ts::TsDemuxer, DemuxEvent, Format};
use media::{codec, Codec, Direction, Frame, Kind, Media};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::hub::Track;
use crate::sources::exec::{PipeFormat, PipeParser, PipeUnit};

/// A stream that yields no complete set of tracks within this many bytes is refused.
pub const PROBE_MAX_BYTES: usize = 5 << 20;
/// ... or within this time.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the first track is known, how long to wait for others (unless the container says how many).
const PROBE_SETTLE: Duration = Duration::from_secs(1);
/// Frames read while probing are kept up to this many bytes (oldest dropped first).
const PROBE_KEEP_BYTES: usize = 8 << 20;

/// A stream (pipe, socket, upload) that sends nothing for this long has failed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
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

#[cfg(test)]
mod tests {
    use super::*;

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
