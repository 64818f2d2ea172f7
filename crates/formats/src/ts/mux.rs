use super::{
    PACKET_SIZE, STREAM_TYPE_AAC, STREAM_TYPE_H264, STREAM_TYPE_H265, STREAM_TYPE_MPEG1_AUDIO, STREAM_TYPE_PRIVATE,
    SYNC_BYTE,
};
use crate::bits::{crc32_mpeg2, rescale};
use crate::video::{with_parameter_sets, VideoCodec, VideoConfig};
use crate::FormatError;
use bytes::Bytes;
use media::aac::{AdtsHeader, AudioSpecificConfig};
use media::timestamp::Unwrapper;
use media::{codec, h264, Codec, Frame, Kind};

/// PAT/PMT are repeated at least every this many packets (and always before a video keyframe).
pub const DEFAULT_PSI_INTERVAL: u32 = 512;

const PMT_PID: u16 = 0x1000;
const FIRST_ES_PID: u16 = 0x100;
/// PTS of every track's first frame, so that PCR (a little below the first DTS) stays positive.
const PTS_ORIGIN: i64 = 90000;
/// PCR runs this far behind the video DTS (the decoder buffering delay a player is given).
const PCR_DELAY: i64 = 9000;

enum EsKind {
    Video(VideoCodec),
    Aac(AudioSpecificConfig),
    Mpa,
    Opus,
    Klv,
}

struct Es {
    pid: u16,
    stream_type: u8,
    /// The PMT's ES descriptors of this stream.
    descriptors: Vec<u8>,
    kind: EsKind,
    clock_rate: u32,
    cc: u8,
    unwrap: Unwrapper,
    /// Video parameter sets, from the fmtp or the first keyframe (re-sent in front of keyframes that
    /// lack them).
    config: Option<VideoConfig>,
}

/// MPEG-TS muxer: one program, one PID per track, PCR on the first video PID (the first track without
/// video). [`TsMuxer::push`] returns the whole packets of one frame, preceded by PAT/PMT when due.
pub struct TsMuxer {
    es: Vec<Es>,
    pcr_index: usize,
    psi_interval: u32,
    since_psi: Option<u32>,
    pat_cc: u8,
    pmt_cc: u8,
}

impl TsMuxer {
    /// Tracks: H264, H265 video; AAC audio (fmtp `config=`, written as ADTS); MPEG-1/2 audio (`MPA`,
    /// stream type 0x03); Opus (0x06 with the "Opus" registration and channel descriptors, each packet
    /// behind its control header); KLV (`SMPTE336M`, 0x06 with the "KLVA" registration: asynchronous
    /// KLV as ffmpeg writes it, but with the frame's PTS).
    pub fn new(tracks: &[(Kind, Codec)]) -> Result<TsMuxer, FormatError> {
        let mut es = Vec::with_capacity(tracks.len());
        for (i, (kind, c)) in tracks.iter().enumerate() {
            let mut descriptors = Vec::new();
            let (stream_type, k) = match (kind, c.name.as_str()) {
                (Kind::Video, codec::H264) => (STREAM_TYPE_H264, EsKind::Video(VideoCodec::H264)),
                (Kind::Video, codec::H265) => (STREAM_TYPE_H265, EsKind::Video(VideoCodec::H265)),
                (Kind::Audio, codec::AAC) => (STREAM_TYPE_AAC, EsKind::Aac(AudioSpecificConfig::from_fmtp(&c.fmtp)?)),
                (Kind::Audio, codec::MPA) => (STREAM_TYPE_MPEG1_AUDIO, EsKind::Mpa),
                (Kind::Audio, codec::OPUS) => {
                    // Stereo unless the SDP says mono (RFC 7587: the 2 of OPUS/48000/2 says nothing).
                    let channels = if c.fmtp_param("sprop-stereo") == Some("0") { 1 } else { 2 };
                    descriptors.extend_from_slice(&[0x05, 4, b'O', b'p', b'u', b's', 0x7f, 2, 0x80, channels]);
                    (STREAM_TYPE_PRIVATE, EsKind::Opus)
                }
                (Kind::Application, codec::KLV) => {
                    descriptors.extend_from_slice(&[0x05, 4, b'K', b'L', b'V', b'A']);
                    (STREAM_TYPE_PRIVATE, EsKind::Klv)
                }
                _ => return Err(FormatError::unsupported("MPEG-TS", &format!("{kind}:{}", c.name))),
            };
            es.push(Es {
                pid: FIRST_ES_PID + i as u16,
                stream_type,
                descriptors,
                clock_rate: if c.clock_rate == 0 { 90000 } else { c.clock_rate },
                cc: 0,
                unwrap: Unwrapper::default(),
                config: VideoConfig::from_codec(c),
                kind: k,
            });
        }
        if es.is_empty() {
            return Err(FormatError::MissingConfig("MPEG-TS: no tracks".into()));
        }
        let pcr_index = es
            .iter()
            .position(|e| matches!(e.kind, EsKind::Video(_)))
            .or_else(|| es.iter().position(|e| !matches!(e.kind, EsKind::Klv)))
            .unwrap_or(0);
        Ok(TsMuxer { es, pcr_index, psi_interval: DEFAULT_PSI_INTERVAL, since_psi: None, pat_cc: 0, pmt_cc: 0 })
    }

    /// Changes how often PAT/PMT repeat (in packets; at least 1).
    pub fn set_psi_interval(&mut self, packets: u32) {
        self.psi_interval = packets.max(1);
    }

    /// PAT and PMT packets (also written by [`TsMuxer::push`] when due).
    pub fn psi(&mut self) -> Vec<u8> {
        let mut out = Vec::with_capacity(2 * PACKET_SIZE);
        // PAT: program 1 → PMT PID.
        let mut pat = vec![0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01];
        pat.extend_from_slice(&(0xe000 | PMT_PID).to_be_bytes());
        let crc = crc32_mpeg2(&pat);
        pat.extend_from_slice(&crc.to_be_bytes());
        write_section(&mut out, 0, &mut self.pat_cc, &pat);
        // PMT
        let mut pmt = vec![0x02, 0xb0, 0x00, 0x00, 0x01, 0xc1, 0x00, 0x00];
        pmt.extend_from_slice(&(0xe000 | self.es[self.pcr_index].pid).to_be_bytes());
        pmt.extend_from_slice(&[0xf0, 0x00]); // no program descriptors
        for e in &self.es {
            pmt.push(e.stream_type);
            pmt.extend_from_slice(&(0xe000 | e.pid).to_be_bytes());
            pmt.extend_from_slice(&(0xf000 | e.descriptors.len() as u16).to_be_bytes());
            pmt.extend_from_slice(&e.descriptors);
        }
        let section_len = (pmt.len() - 3 + 4) as u16;
        pmt[1] = 0xb0 | (section_len >> 8) as u8;
        pmt[2] = section_len as u8;
        let crc = crc32_mpeg2(&pmt);
        pmt.extend_from_slice(&crc.to_be_bytes());
        write_section(&mut out, PMT_PID, &mut self.pmt_cc, &pmt);
        self.since_psi = Some(0);
        out
    }

    /// The TS packets of one frame of track `track` (empty when the frame is skipped, e.g. video before
    /// its parameter sets are known).
    pub fn push(&mut self, track: usize, frame: &Frame) -> Result<Bytes, FormatError> {
        let e = self.es.get_mut(track).ok_or(FormatError::TrackIndex(track))?;
        let mut es_data = Vec::with_capacity(frame.payload.len() + 64);
        let (stream_id, random_access) = match &e.kind {
            EsKind::Video(vc) => {
                if frame.keyframe {
                    if let Some(cfg) = VideoConfig::from_nals(*vc, h264::avcc_nals(&frame.payload)) {
                        e.config = Some(cfg);
                    }
                }
                if e.config.is_none() {
                    return Ok(Bytes::new());
                }
                match vc {
                    VideoCodec::H264 => es_data.extend_from_slice(&[0, 0, 0, 1, 0x09, 0xf0]),
                    VideoCodec::H265 => es_data.extend_from_slice(&[0, 0, 0, 1, 0x46, 0x01, 0x50]),
                }
                let rebuilt = match (&e.config, frame.keyframe) {
                    (Some(cfg), true) => with_parameter_sets(cfg, &frame.payload),
                    _ => None,
                };
                let payload = rebuilt.as_deref().unwrap_or(&frame.payload);
                for nal in h264::avcc_nals(payload) {
                    if vc.is_aud(nal) {
                        continue;
                    }
                    es_data.extend_from_slice(&[0, 0, 0, 1]);
                    es_data.extend_from_slice(nal);
                }
                (0xe0, frame.keyframe)
            }
            EsKind::Aac(cfg) => {
                if frame.payload.is_empty() {
                    return Ok(Bytes::new());
                }
                es_data.extend_from_slice(&AdtsHeader::build(cfg, frame.payload.len())?);
                es_data.extend_from_slice(&frame.payload);
                (0xc0, false)
            }
            EsKind::Mpa | EsKind::Opus | EsKind::Klv if frame.payload.is_empty() => return Ok(Bytes::new()),
            EsKind::Mpa => {
                es_data.extend_from_slice(&frame.payload);
                (0xc0, false)
            }
            EsKind::Opus => {
                // Control header: prefix 0x3ff, no trims, no extension; au_size in 0xff-continued bytes.
                es_data.extend_from_slice(&[0x7f, 0xe0]);
                es_data.resize(es_data.len() + frame.payload.len() / 255, 0xff);
                es_data.push((frame.payload.len() % 255) as u8);
                es_data.extend_from_slice(&frame.payload);
                (0xbd, false)
            }
            EsKind::Klv => {
                es_data.extend_from_slice(&frame.payload);
                (0xbd, false)
            }
        };
        let ext = e.unwrap.unwrap(frame.timestamp);
        let pts = (PTS_ORIGIN + rescale(ext, e.clock_rate, 90000)).max(0) as u64;
        let with_pcr = track == self.pcr_index;
        let mut out = Vec::with_capacity(es_data.len() + es_data.len() / 160 * 4 + 3 * PACKET_SIZE);
        let due = match self.since_psi {
            None => true,
            Some(n) => n >= self.psi_interval || (random_access && with_pcr),
        };
        if due {
            out.extend_from_slice(&self.psi());
        }
        let e = &mut self.es[track];
        let mut pes = Vec::with_capacity(14 + es_data.len());
        pes.extend_from_slice(&[0, 0, 1, stream_id]);
        let pes_len = es_data.len() + 8;
        // Video PES may be longer than 65535: length 0 means "unbounded" (video only).
        let len_field = if pes_len <= 0xffff { pes_len as u16 } else { 0 };
        pes.extend_from_slice(&len_field.to_be_bytes());
        pes.extend_from_slice(&[0x80, 0x80, 5]);
        write_timestamp(&mut pes, 0x2, pts);
        pes.extend_from_slice(&es_data);
        let pcr = with_pcr.then(|| (pts as i64 - PCR_DELAY).max(0) as u64);
        let packets = packetize(&mut out, e.pid, &mut e.cc, &pes, pcr, random_access);
        let n = self.since_psi.unwrap_or(0).saturating_add(packets);
        self.since_psi = Some(n);
        Ok(Bytes::from(out))
    }
}

/// Writes a 33-bit timestamp in the 5-byte PES form with the 4-bit prefix.
fn write_timestamp(out: &mut Vec<u8>, prefix: u8, ts: u64) {
    let ts = ts & 0x1_ffff_ffff;
    out.push((prefix << 4) | (((ts >> 30) as u8 & 7) << 1) | 1);
    out.extend_from_slice(&((((ts >> 15) & 0x7fff) << 1 | 1) as u16).to_be_bytes());
    out.extend_from_slice(&(((ts & 0x7fff) << 1 | 1) as u16).to_be_bytes());
}

/// A PSI section in one packet (pointer field 0, stuffing 0xff).
fn write_section(out: &mut Vec<u8>, pid: u16, cc: &mut u8, section: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&[SYNC_BYTE, 0x40 | (pid >> 8) as u8 & 0x1f, pid as u8, 0x10 | *cc, 0]);
    *cc = (*cc + 1) & 0x0f;
    out.extend_from_slice(&section[..section.len().min(PACKET_SIZE - 5)]);
    out.resize(start + PACKET_SIZE, 0xff);
}

/// Splits a PES packet into TS packets; returns the packet count.
fn packetize(out: &mut Vec<u8>, pid: u16, cc: &mut u8, pes: &[u8], pcr: Option<u64>, random_access: bool) -> u32 {
    let mut rest = pes;
    let mut first = true;
    let mut count = 0;
    while !rest.is_empty() {
        let start = out.len();
        out.extend_from_slice(&[SYNC_BYTE, (if first { 0x40 } else { 0 }) | (pid >> 8) as u8 & 0x1f, pid as u8, 0]);
        // Adaptation field: flags (+ PCR) on the first packet, stuffing on the last.
        let mut af = Vec::new();
        if first && (pcr.is_some() || random_access) {
            let mut flags = 0u8;
            if random_access {
                flags |= 0x40;
            }
            af.push(0);
            if let Some(pcr) = pcr {
                flags |= 0x10;
                let base = pcr & 0x1_ffff_ffff;
                af.extend_from_slice(&((base >> 1) as u32).to_be_bytes());
                af.push((((base & 1) as u8) << 7) | 0x7e);
                af.push(0);
            }
            af[0] = flags;
        }
        let mut has_af = !af.is_empty();
        let capacity = PACKET_SIZE - 4 - if has_af { 1 + af.len() } else { 0 };
        let payload_len = rest.len().min(capacity);
        if payload_len < capacity {
            // Last packet: fill the gap with adaptation field stuffing.
            let stuff = capacity - payload_len;
            if has_af {
                af.resize(af.len() + stuff, 0xff);
            } else {
                has_af = true;
                if stuff >= 2 {
                    af.push(0); // flags
                    af.resize(stuff - 1, 0xff);
                } // stuff == 1: the length byte (0) alone
            }
        }
        out[start + 3] = (if has_af { 0x30 } else { 0x10 }) | *cc;
        *cc = (*cc + 1) & 0x0f;
        if has_af {
            out.push(af.len() as u8);
            out.extend_from_slice(&af);
        }
        out.extend_from_slice(&rest[..payload_len]);
        debug_assert_eq!(out.len() - start, PACKET_SIZE);
        rest = &rest[payload_len..];
        first = false;
        count += 1;
    }
    count
}
