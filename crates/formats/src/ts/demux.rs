use super::{EsType, PACKET_SIZE, SYNC_BYTE};
use crate::bits::{crc32_mpeg2, rescale};
use crate::video::{with_parameter_sets, VideoCodec, VideoConfig};
use crate::{DemuxEvent, FormatError};
use bytes::Bytes;
use media::aac::{adts_frames, SAMPLES_PER_FRAME};
use media::{codec, h264, mpa, opus, Codec, Frame, Kind};
use std::collections::VecDeque;

/// A PES packet larger than this is dropped (with an error), so a stream that never ends one cannot
/// grow memory without bound.
pub const MAX_PES_SIZE: usize = 8 << 20;

/// At most this many elementary streams are tracked.
const MAX_STREAMS: usize = 16;

enum EsKind {
    Video {
        codec: VideoCodec,
        config: Option<VideoConfig>,
    },
    Aac {
        announced: bool,
    },
    Mpa {
        announced: bool,
    },
    /// Announced with the PMT (its channel count is there).
    Opus,
    /// Announced with the PMT; a PES is one KLV unit (it may come without a PTS: asynchronous KLV).
    Klv,
}

struct Stream {
    pid: u16,
    index: usize,
    kind: EsKind,
    pes: Vec<u8>,
    /// True between a PUSI and the end of that PES; false while waiting for the next PUSI (after a
    /// continuity error or an oversize PES).
    collecting: bool,
    last_cc: Option<u8>,
    /// Unwrapped 33-bit PTS of the last PES.
    last_pts: Option<(u64, i64)>,
}

/// MPEG-TS demuxer. Feed any chunks with [`TsDemuxer::push`], drain [`TsDemuxer::poll`] after each
/// push. Supports H.264 (0x1b), H.265 (0x24), AAC/ADTS (0x0f), MPEG-1/2 audio (0x03, 0x04), Opus (0x06
/// + "Opus") and KLV (0x15, 0x06 + "KLVA") streams of the first program; other streams are ignored.
#[derive(Default)]
pub struct TsDemuxer {
    buf: Vec<u8>,
    pmt_pid: Option<u16>,
    streams: Vec<Stream>,
    events: VecDeque<DemuxEvent>,
    resyncs: u64,
    /// The last PTS of any stream (unwrapped), for PES without one (asynchronous KLV).
    last_pts: Option<i64>,
}

impl TsDemuxer {
    pub fn new() -> TsDemuxer {
        TsDemuxer::default()
    }

    /// Times the demuxer lost packet alignment and searched for the next sync byte.
    pub fn resyncs(&self) -> u64 {
        self.resyncs
    }

    /// The next track announcement or frame.
    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes. Everything is consumed; the first problem met (a bad PES, an oversize PES) is
    /// returned after the rest has been processed, so the stream can go on.
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        self.buf.extend_from_slice(data);
        let mut first_err = None;
        let mut pos = 0;
        let buf = std::mem::take(&mut self.buf);
        while buf.len() - pos >= PACKET_SIZE {
            // In sync when this packet starts with 0x47 and so does the next one (when we have it).
            let aligned = buf[pos] == SYNC_BYTE && buf.get(pos + PACKET_SIZE).map_or(true, |&b| b == SYNC_BYTE);
            if !aligned {
                self.resyncs += 1;
                // Next 0x47 that is followed by another one a packet later (or by the end of the data).
                let next = (pos + 1..buf.len())
                    .find(|&i| buf[i] == SYNC_BYTE && buf.get(i + PACKET_SIZE).map_or(true, |&b| b == SYNC_BYTE));
                match next {
                    Some(i) => {
                        pos = i;
                        continue;
                    }
                    None => {
                        pos = buf.len();
                        break;
                    }
                }
            }
            let packet: &[u8; PACKET_SIZE] = buf[pos..pos + PACKET_SIZE].try_into().expect("length checked above");
            if let Err(e) = self.packet(packet) {
                first_err.get_or_insert(e);
            }
            pos += PACKET_SIZE;
        }
        self.buf = buf;
        self.buf.drain(..pos);
        first_err.map_or(Ok(()), Err)
    }

    /// Ends the stream: emits the PES packets still open (video PES have no length and end only when
    /// the next one starts).
    pub fn finish(&mut self) -> Result<(), FormatError> {
        let mut first_err = None;
        for i in 0..self.streams.len() {
            if let Err(e) = self.end_pes(i) {
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    fn packet(&mut self, p: &[u8; PACKET_SIZE]) -> Result<(), FormatError> {
        if p[1] & 0x80 != 0 {
            return Ok(()); // transport_error_indicator: the packet is known corrupt
        }
        let pusi = p[1] & 0x40 != 0;
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let cc = p[3] & 0x0f;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || off > PACKET_SIZE {
            return Ok(());
        }
        let payload = &p[off..];
        if pid == 0 {
            if pusi {
                self.pat(payload);
            }
            return Ok(());
        }
        if Some(pid) == self.pmt_pid {
            if pusi {
                self.pmt(payload);
            }
            return Ok(());
        }
        let Some(i) = self.streams.iter().position(|s| s.pid == pid) else { return Ok(()) };
        let s = &mut self.streams[i];
        let expected = s.last_cc.map(|c| (c + 1) & 0x0f);
        if s.last_cc == Some(cc) && !pusi {
            return Ok(()); // duplicate packet
        }
        s.last_cc = Some(cc);
        if !pusi && expected.is_some_and(|e| e != cc) {
            // Lost packets: the PES being collected is broken.
            s.pes.clear();
            s.collecting = false;
            return Ok(());
        }
        let mut result = Ok(());
        if pusi {
            result = self.end_pes(i);
            let s = &mut self.streams[i];
            s.collecting = true;
            s.pes.clear();
        }
        let s = &mut self.streams[i];
        if !s.collecting {
            return result;
        }
        if s.pes.len() + payload.len() > MAX_PES_SIZE {
            s.pes.clear();
            s.collecting = false;
            return Err(FormatError::TooLarge {
                what: "MPEG-TS PES packet",
                size: MAX_PES_SIZE + 1,
                limit: MAX_PES_SIZE,
            });
        }
        s.pes.extend_from_slice(payload);
        // A PES with a length ends as soon as it is complete (audio: no added delay).
        if s.pes.len() >= 6 {
            let len = usize::from(u16::from_be_bytes([s.pes[4], s.pes[5]]));
            if len > 0 && s.pes.len() >= 6 + len {
                s.pes.truncate(6 + len);
                let r = self.end_pes(i);
                self.streams[i].collecting = false;
                return result.and(r);
            }
        }
        result
    }

    fn pat(&mut self, payload: &[u8]) {
        let Some(section) = section(payload, 0x00) else { return };
        // Program loop: after the 8-byte header, before the CRC.
        for entry in section[8..section.len() - 4].chunks_exact(4) {
            let program = u16::from_be_bytes([entry[0], entry[1]]);
            if program != 0 {
                self.pmt_pid = Some((u16::from(entry[2] & 0x1f) << 8) | u16::from(entry[3]));
                return;
            }
        }
    }

    fn pmt(&mut self, payload: &[u8]) {
        let Some(section) = section(payload, 0x02) else { return };
        let end = section.len() - 4;
        if end < 12 {
            return;
        }
        let info_len = usize::from(u16::from_be_bytes([section[10], section[11]]) & 0x0fff);
        let mut pos = 12 + info_len;
        while pos + 5 <= end {
            let stream_type = section[pos];
            let pid = (u16::from(section[pos + 1] & 0x1f) << 8) | u16::from(section[pos + 2]);
            let es_info = usize::from(u16::from_be_bytes([section[pos + 3], section[pos + 4]]) & 0x0fff);
            let descriptors = section.get(pos + 5..(pos + 5 + es_info).min(end)).unwrap_or_default();
            pos += 5 + es_info;
            let Some(es_type) = EsType::from_pmt(stream_type, descriptors) else { continue };
            if self.streams.iter().any(|s| s.pid == pid) || self.streams.len() >= MAX_STREAMS {
                continue;
            }
            let index = self.streams.len();
            let kind = match es_type {
                EsType::H264 => EsKind::Video { codec: VideoCodec::H264, config: None },
                EsType::H265 => EsKind::Video { codec: VideoCodec::H265, config: None },
                EsType::Aac => EsKind::Aac { announced: false },
                EsType::Mpa => EsKind::Mpa { announced: false },
                EsType::Opus { channels } => {
                    // RTP names Opus OPUS/48000/2 whatever the channels (RFC 7587).
                    let fmtp = format!("sprop-stereo={}", u8::from(channels == 2));
                    let c = Codec::new(codec::OPUS, 48000, 2, 96).with_fmtp(fmtp);
                    self.events.push_back(DemuxEvent::Track { index, kind: Kind::Audio, codec: c });
                    EsKind::Opus
                }
                EsType::Klv => {
                    let c = Codec::new(codec::KLV, 90000, 0, 96);
                    self.events.push_back(DemuxEvent::Track { index, kind: Kind::Application, codec: c });
                    EsKind::Klv
                }
            };
            self.streams.push(Stream {
                pid,
                index,
                kind,
                pes: Vec::new(),
                collecting: false,
                last_cc: None,
                last_pts: None,
            });
        }
    }

    fn end_pes(&mut self, i: usize) -> Result<(), FormatError> {
        let s = &mut self.streams[i];
        if !s.collecting || s.pes.is_empty() {
            return Ok(());
        }
        s.collecting = false;
        let pes = std::mem::take(&mut s.pes);
        let pid = s.pid;
        let bad = move |d: &str| FormatError::invalid("MPEG-TS PES header", format!("PID {pid:#x}: {d}"));
        if pes.len() < 9 || pes[..3] != [0, 0, 1] {
            return Err(bad("no start code prefix"));
        }
        let header_len = 9 + usize::from(pes[8]);
        if header_len > pes.len() {
            return Err(bad("header longer than the packet"));
        }
        if pes[7] & 0x80 == 0 || pes[8] < 5 {
            if !matches!(s.kind, EsKind::Klv) {
                return Err(bad("no PTS"));
            }
            // Asynchronous KLV has no PTS: it goes with the stream's latest time.
            let index = s.index;
            let ts = self.last_pts.unwrap_or(0);
            let payload = Bytes::copy_from_slice(&pes[header_len..]);
            if !payload.is_empty() {
                let frame = Frame { timestamp: ts as u32, keyframe: true, payload, rtp: Vec::new() };
                self.events.push_back(DemuxEvent::Frame { index, frame });
            }
            return Ok(());
        }
        let b = &pes[9..14];
        let pts = (u64::from(b[0] >> 1 & 7) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1);
        let ext = match s.last_pts {
            None => pts as i64,
            Some((last, ext)) => {
                // Signed 33-bit difference.
                let d = ((pts.wrapping_sub(last)) & 0x1_ffff_ffff) as i64;
                let d = if d >= 1 << 32 { d - (1 << 33) } else { d };
                ext + d
            }
        };
        s.last_pts = Some((pts, ext));
        self.last_pts = Some(ext);
        let index = s.index;
        let data = &pes[header_len..];
        match &mut s.kind {
            EsKind::Video { codec: vc, config } => {
                let vc = *vc;
                let mut avcc = Vec::with_capacity(data.len() + 16);
                let mut keyframe = false;
                for nal in h264::annexb_nals(data) {
                    if vc.is_aud(nal) {
                        continue;
                    }
                    keyframe |= vc.is_keyframe_nal(nal);
                    avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    avcc.extend_from_slice(nal);
                }
                if avcc.is_empty() {
                    return Ok(());
                }
                if keyframe {
                    if let Some(cfg) = VideoConfig::from_nals(vc, h264::avcc_nals(&avcc)) {
                        if config.as_ref() != Some(&cfg) {
                            self.events.push_back(DemuxEvent::Track {
                                index,
                                kind: Kind::Video,
                                codec: cfg.to_codec(),
                            });
                            *config = Some(cfg);
                        }
                    }
                }
                let Some(cfg) = config else { return Ok(()) };
                if keyframe {
                    if let Some(v) = with_parameter_sets(cfg, &avcc) {
                        avcc = v;
                    }
                }
                let frame = Frame { timestamp: ext as u32, keyframe, payload: Bytes::from(avcc), rtp: Vec::new() };
                self.events.push_back(DemuxEvent::Frame { index, frame });
            }
            EsKind::Aac { announced } => {
                for (n, (h, au)) in (0i64..).zip(adts_frames(data)) {
                    let rate = h.config.sample_rate;
                    if !*announced {
                        *announced = true;
                        let fmtp = format!(
                            "streamtype=5;profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={}",
                            h.config.to_hex()
                        );
                        let c = Codec::new(codec::AAC, rate, u16::from(h.config.channels), 96).with_fmtp(fmtp);
                        self.events.push_back(DemuxEvent::Track { index, kind: Kind::Audio, codec: c });
                    }
                    let ts = rescale(ext, 90000, rate) + n * i64::from(SAMPLES_PER_FRAME);
                    let frame = Frame {
                        timestamp: ts as u32,
                        keyframe: true,
                        payload: Bytes::copy_from_slice(au),
                        rtp: Vec::new(),
                    };
                    self.events.push_back(DemuxEvent::Frame { index, frame });
                }
            }
            EsKind::Mpa { announced } => {
                let mut ts = ext;
                for (h, f) in mpa::frames(data) {
                    if !*announced {
                        *announced = true;
                        let c = Codec::new(codec::MPA, 90000, u16::from(h.channels), 14);
                        self.events.push_back(DemuxEvent::Track { index, kind: Kind::Audio, codec: c });
                    }
                    let payload = Bytes::copy_from_slice(f);
                    let frame = Frame { timestamp: ts as u32, keyframe: true, payload, rtp: Vec::new() };
                    self.events.push_back(DemuxEvent::Frame { index, frame });
                    ts += i64::from(h.duration(90000));
                }
            }
            EsKind::Opus => {
                let mut ts = rescale(ext, 90000, 48000);
                let mut rest = data;
                while !rest.is_empty() {
                    let (packet, tail) = opus_access_unit(rest).map_err(bad)?;
                    rest = tail;
                    let Some(samples) = opus::packet_samples(packet) else { continue };
                    let payload = Bytes::copy_from_slice(packet);
                    let frame = Frame { timestamp: ts as u32, keyframe: true, payload, rtp: Vec::new() };
                    self.events.push_back(DemuxEvent::Frame { index, frame });
                    ts += i64::from(samples);
                }
            }
            EsKind::Klv => {
                if !data.is_empty() {
                    let payload = Bytes::copy_from_slice(data);
                    let frame = Frame { timestamp: ext as u32, keyframe: true, payload, rtp: Vec::new() };
                    self.events.push_back(DemuxEvent::Frame { index, frame });
                }
            }
        }
        Ok(())
    }
}

/// Splits one Opus access unit off a PES payload: its control header (the 11-bit prefix 0x3ff, trim
/// flags, `au_size` in 0xff-continued bytes, the optional trims and extension), then the packet.
pub(super) fn opus_access_unit(data: &[u8]) -> Result<(&[u8], &[u8]), &'static str> {
    if data.len() < 2 || data[0] != 0x7f || data[1] & 0xe0 != 0xe0 {
        return Err("Opus control header prefix missing");
    }
    let flags = data[1];
    let mut at = 2;
    let mut size = 0usize;
    loop {
        let b = *data.get(at).ok_or("Opus control header cut short")?;
        at += 1;
        size += usize::from(b);
        if b != 0xff {
            break;
        }
    }
    if flags & 0x10 != 0 {
        at += 2; // start trim
    }
    if flags & 0x08 != 0 {
        at += 2; // end trim
    }
    if flags & 0x04 != 0 {
        at += 1 + usize::from(*data.get(at).ok_or("Opus control extension cut short")?);
    }
    let packet = data.get(at..at + size).ok_or("Opus access unit longer than its PES")?;
    Ok((packet, &data[at + size..]))
}

/// The PSI section at the start of a PUSI payload, CRC-checked; `None` when it does not fit one packet
/// or is corrupt.
fn section(payload: &[u8], table_id: u8) -> Option<&[u8]> {
    let pointer = usize::from(*payload.first()?);
    let s = payload.get(1 + pointer..)?;
    if *s.first()? != table_id || s.len() < 3 {
        return None;
    }
    let len = usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0fff);
    let s = s.get(..3 + len)?;
    if s.len() < 12 || crc32_mpeg2(s) != 0 {
        return None;
    }
    Some(s)
}
