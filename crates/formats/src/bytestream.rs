//! One demuxer for every byte-stream format taken in from a pipe, a socket or an upload: MPEG-TS, FLV,
//! MJPEG (multipart or raw JPEG) and H.264/H.265 Annex B, sniffed from the first bytes or named by a
//! [`Hint`] (a `Content-Type`). Bytes in, [`DemuxEvent`]s out.

use bytes::Bytes;
use media::{codec, Codec, Frame, Kind};
use std::collections::VecDeque;
use std::time::Instant;

use crate::flv::FlvDemuxer;
use crate::mjpeg::{JpegSplitter, MultipartParser};
use crate::pipe::{PipeFormat, PipeParser, PipeUnit};
use crate::ts::{PmtScan, TsDemuxer};
use crate::{sniff, DemuxEvent, Format};

const VIDEO_CLOCK: u32 = 90_000;

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
    /// Fragmented MP4: an init (`ftyp` + `moov`), then `moof` + `mdat` fragments (HLS fMP4 segments).
    Fmp4,
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
    /// Fragmented MP4 (only by [`Hint::Fmp4`]).
    Fmp4,
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
            StreamFormat::Fmp4 => "fragmented MP4",
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
            StreamFormat::Fmp4 => "mp4",
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
            crate::mjpeg::boundary_from_content_type(content_type).ok().map(Hint::Multipart)
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
    Fmp4(Box<crate::mp4::Fmp4Demuxer>),
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
pub const MAX_EVENTS: usize = 4096;
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
            Hint::Fmp4 => d.set(StreamFormat::Fmp4, None),
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
            StreamFormat::Fmp4 => Inner::Fmp4(Box::default()),
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
            Inner::Ts(_, pmt) => pmt.streams(),
            Inner::Flv(_) => {
                let flags = *self.head.get(4)?;
                let n = usize::from(flags & 0x04 != 0) + usize::from(flags & 0x01 != 0);
                (n > 0).then_some(n)
            }
            Inner::Multipart(_) | Inner::Jpeg(_) | Inner::AnnexB(_) => Some(1),
            Inner::Fmp4(demux) => demux.tracks(),
        }
    }

    /// True when an MPEG-TS stream showed sync bytes 188 apart somewhere.
    pub fn ts_synced(&self) -> bool {
        matches!(&self.inner, Inner::Ts(_, pmt) if pmt.synced())
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
    ///
    /// `now` is when the bytes arrived (any clock convertible to [`Instant`], such as tokio's).
    pub fn push(&mut self, data: &[u8], now: impl Into<Instant>) -> Result<(), String> {
        let now = now.into();
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
            Inner::Fmp4(demux) => {
                if let Err(e) = demux.push(data) {
                    soft = Some(format!("fragmented MP4: {e}"));
                }
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
                let errors = parser.errors;
                parser.push(data, now, &mut units)?;
                if parser.errors != errors {
                    soft = parser.last_error.clone().map(|e| format!("JPEG: {e}"));
                }
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
        assert_eq!(d.head_hex(), "13 13 13 13 13 13 13 13");
        let mut d = StreamDemuxer::new(Hint::Auto);
        let jpeg = [0xff, 0xd8, 0xff, 0xdb, 0x00, 0x04, 0x00, 0x00, 0xff, 0xda, 0x00, 0x02, 0x11, 0x22, 0xff, 0xd9];
        let mut body = b"--frame\r\nContent-Type: image/jpeg\r\n\r\n".to_vec();
        body.extend_from_slice(&jpeg);
        body.extend_from_slice(b"\r\n--frame\r\n");
        d.push(&body, now).unwrap();
        assert_eq!(d.format(), Some(StreamFormat::Multipart));
        assert_eq!(d.expected_tracks(), Some(1));
        assert!(matches!(d.poll(), Some(DemuxEvent::Track { index: 0, kind: Kind::Video, .. })));
        assert!(matches!(d.poll(), Some(DemuxEvent::Frame { .. })));
        assert!(d.poll().is_none());
    }

    #[test]
    fn detection_waits_for_enough_bytes() {
        let now = Instant::now();
        let mut d = StreamDemuxer::new(Hint::Auto);
        d.push(&[0x47], now).unwrap();
        assert_eq!(d.format(), None);
        assert_eq!(d.expected_tracks(), None);
        assert_eq!(d.total(), 1);
        assert_eq!(StreamDemuxer::new(Hint::Auto).head_hex(), "none");
    }

    #[test]
    fn annexb_frames_are_timed_by_arrival() {
        let t0 = Instant::now();
        let mut d = StreamDemuxer::new(Hint::Auto);
        let sps = [0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xb0, 0x11];
        let au = |nals: &[&[u8]]| {
            let mut v = Vec::new();
            for n in nals {
                v.extend_from_slice(&[0, 0, 0, 1]);
                v.extend_from_slice(n);
            }
            v
        };
        d.push(&au(&[&sps, &[0x68, 0xcb, 0x8c, 0xb2], &[0x65, 0x88, 0x84]]), t0).unwrap();
        assert_eq!(d.format(), Some(StreamFormat::H264));
        d.push(&au(&[&[0x41, 0x9a, 0x02]]), t0 + std::time::Duration::from_millis(40)).unwrap();
        d.push(&au(&[&[0x41, 0x9a, 0x03]]), t0 + std::time::Duration::from_millis(80)).unwrap();
        let events: Vec<DemuxEvent> = std::iter::from_fn(|| d.poll()).collect();
        assert!(matches!(&events[0], DemuxEvent::Track { codec, .. } if codec.name == codec::H264));
        let ts: Vec<(u32, bool)> = events[1..]
            .iter()
            .map(|e| match e {
                DemuxEvent::Frame { frame, .. } => (frame.timestamp, frame.keyframe),
                e => panic!("{e:?}"),
            })
            .collect();
        // Each access unit completes when the next one starts and is stamped with that arrival, in a
        // 90 kHz clock that starts at the first unit.
        assert_eq!(ts, [(0, true), (3600, false)]);
    }

    #[test]
    fn ts_hint_counts_the_pmt_streams() {
        let mut d = StreamDemuxer::new(Hint::Ts);
        assert_eq!(d.format(), Some(StreamFormat::MpegTs));
        assert!(!d.ts_synced());
        let mut pkt = vec![0x47, 0x40, 0x00, 0x10, 0x00];
        pkt.extend_from_slice(&[0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0, 0, 0, 0]);
        pkt.resize(188, 0xff);
        let mut pmt = vec![0x47, 0x50, 0x00, 0x10, 0x00];
        pmt.extend_from_slice(&[
            0x02, 0xb0, 0x12, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00, 0, 0,
            0, 0,
        ]);
        pmt.resize(188, 0xff);
        d.push(&[pkt, pmt.clone(), pmt].concat(), Instant::now()).unwrap();
        assert!(d.ts_synced());
        assert_eq!(d.expected_tracks(), Some(1));
    }
}
