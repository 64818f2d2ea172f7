//! The bodies of the fuzz targets in `crates/formats/fuzz` that cover the byte-stream demuxers and the
//! segmenter, shared with `tests/fuzz_seeds.rs`, which runs them on the committed seeds and their
//! mutations in every `cargo test`. Not an API: each function panics when an invariant breaks.

use bytes::Bytes;
use media::{Codec, Frame, Kind};
use std::time::{Duration, Instant};

use crate::bytestream::{Hint, StreamDemuxer, MAX_EVENTS};
use crate::pipe::{PipeFormat, PipeParser, MAX_PIPE_FRAME};
use crate::segment::{SegmentPolicy, Segmenter};
use crate::ts::{PmtScan, TsDemuxer};
use crate::DemuxEvent;

/// `TsDemuxer` (SRT, UDP, HLS and HTTP sources) on arbitrary bytes in two chunks split at the first
/// byte's value. Beyond "never panics": every frame's stream was announced first, and the frames of the
/// codecs split by the demuxer are well formed: an Opus frame is one packet with a TOC that gives its
/// duration, an MPEG audio frame is one whole frame (its header gives its length), a KLV unit is not
/// empty, an AAC frame fits a 13-bit ADTS length.
pub fn ts_demux(data: &[u8]) {
    let split = data.first().map_or(0, |&b| usize::from(b) * 3).min(data.len());
    let mut d = TsDemuxer::new();
    let mut announced: Vec<(usize, Codec)> = Vec::new();
    let mut check = |d: &mut TsDemuxer| {
        while let Some(e) = d.poll() {
            match e {
                DemuxEvent::Track { index, codec, .. } => announced.push((index, codec)),
                DemuxEvent::Frame { index, frame } => {
                    let (_, codec) = announced.iter().rev().find(|(i, _)| *i == index).expect("frame before its track");
                    let p = &frame.payload;
                    match codec.name.as_str() {
                        media::codec::OPUS => assert!(media::opus::packet_samples(p).is_some(), "Opus {p:02x?}"),
                        media::codec::MPA => {
                            let h = media::mpa::Header::parse(p).expect("MPEG audio frame header");
                            assert_eq!(h.frame_len, p.len());
                        }
                        media::codec::KLV => assert!(!p.is_empty()),
                        media::codec::AAC => assert!(p.len() < 1 << 13),
                        _ => {}
                    }
                }
            }
        }
    };
    let _ = d.push(&data[..split]);
    check(&mut d);
    let _ = d.push(&data[split..]);
    check(&mut d);
    let _ = d.finish();
    check(&mut d);
}

/// `StreamDemuxer` (HTTP/TCP sources, `exec:` pipes, HTTP uploads) on arbitrary bytes, with every hint,
/// fed in chunks of varying size at advancing times. Beyond "never panics": the event queue stays
/// bounded, every frame's stream was announced by a track event first (unless the bounded queue had to
/// drop events), and the byte count is exact.
///
/// Input: `[hint, chunk, data...]`.
pub fn stream_demux(data: &[u8]) {
    let Some((&[hint, chunk], data)) = data.split_first_chunk::<2>() else { return };
    let hint = match hint % 7 {
        0 | 1 => Hint::Auto,
        2 => Hint::Ts,
        3 => Hint::Flv,
        4 => Hint::Multipart("frame".into()),
        5 => Hint::Jpeg,
        _ => Hint::Fmp4,
    };
    let chunk = usize::from(chunk).max(1);
    let mut d = StreamDemuxer::new(hint);
    let start = Instant::now();
    let mut announced: Vec<usize> = Vec::new();
    let mut check = |d: &mut StreamDemuxer| {
        let events: Vec<DemuxEvent> = std::iter::from_fn(|| d.poll()).collect();
        assert!(events.len() <= MAX_EVENTS);
        for e in events.iter() {
            match e {
                DemuxEvent::Track { index, .. } => announced.push(*index),
                DemuxEvent::Frame { index, .. } => {
                    if events.len() < MAX_EVENTS {
                        assert!(announced.contains(index), "frame of stream {index} before its track");
                    }
                }
            }
        }
        let _ = d.expected_tracks();
        let _ = d.ts_synced();
        assert!(d.head_hex().len() <= 8 * 3);
    };
    let mut pushed = 0u64;
    for (i, c) in data.chunks(chunk).enumerate() {
        pushed += c.len() as u64;
        if d.push(c, start + Duration::from_millis(i as u64 * 40)).is_err() {
            break;
        }
        assert_eq!(d.total(), pushed);
        check(&mut d);
    }
    d.finish();
    check(&mut d);
    if let Some(f) = d.format() {
        assert!(!f.name().is_empty() && !f.short().is_empty());
    }
}

/// `FlvDemuxer` (HTTP-FLV, FLV uploads, RTMP publishers: classic and Enhanced RTMP tags, ModEx,
/// multitrack) on arbitrary bytes in chunks of varying size, with or without a valid file header in
/// front. Beyond "never panics": every frame's stream was announced first, a stream is announced as
/// video or audio at most [`crate::flv::MAX_TRACKS_PER_KIND`] times per kind, AV1/VP9 codecs carry the
/// record the muxer needs, and a failed demuxer stays failed.
///
/// Input: `[flags, chunk, data...]` (flags bit 0: prepend an FLV header).
pub fn flv_demux(data: &[u8]) {
    use crate::flv::{FlvDemuxer, FlvMuxer, MAX_TRACKS_PER_KIND};
    let Some((&[flags, chunk], data)) = data.split_first_chunk::<2>() else { return };
    let mut d = FlvDemuxer::new();
    if flags & 1 == 1 {
        d.push(b"FLV\x01\x05\0\0\0\x09\0\0\0\0").expect("a valid header");
    }
    let mut announced: Vec<(usize, Kind)> = Vec::new();
    let mut failed = false;
    for c in data.chunks(usize::from(chunk).max(1)) {
        let r = d.push(c);
        if failed {
            assert!(r.is_err(), "a failed FLV demuxer accepted more bytes");
        }
        failed |= r.is_err();
        while let Some(e) = d.poll() {
            match e {
                DemuxEvent::Track { index, kind, codec } => {
                    if !announced.iter().any(|(i, _)| *i == index) {
                        announced.push((index, kind));
                    }
                    // What the demuxer announces, the muxer takes (AV1/VP9 need their record).
                    FlvMuxer::new(&[(kind, codec.clone())]).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
                }
                DemuxEvent::Frame { index, .. } => {
                    assert!(announced.iter().any(|(i, _)| *i == index), "frame of stream {index} before its track");
                }
            }
        }
    }
    for kind in [Kind::Video, Kind::Audio] {
        assert!(announced.iter().filter(|(_, k)| *k == kind).count() <= MAX_TRACKS_PER_KIND);
    }
}

/// `PipeParser` (an `exec:` child's stdout: H.264/H.265 Annex B or MJPEG) on arbitrary bytes in chunks
/// of varying size. Beyond "never panics": every H.264/H.265 unit is whole length-prefixed NAL units
/// within the frame bound, and every MJPEG unit one image from SOI to EOI.
///
/// Input: `[chunk, data...]`.
pub fn pipe_parse(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut p = PipeParser::new();
    let mut units = Vec::new();
    let now = Instant::now();
    for c in data.chunks(chunk) {
        if p.push(c, now, &mut units).is_err() {
            break;
        }
    }
    let format = p.format();
    if !units.is_empty() {
        assert!(format.is_some(), "units before the format is known");
    }
    for u in &units {
        assert_eq!(u.at, now);
        match format {
            Some(PipeFormat::Mjpeg) => {
                assert!(u.keyframe);
                assert!(u.payload.starts_with(&[0xff, 0xd8]) && u.payload.ends_with(&[0xff, 0xd9]));
                assert!(u.payload.len() <= MAX_PIPE_FRAME + 2);
            }
            Some(PipeFormat::H264 | PipeFormat::H265) => {
                // Parameter sets put in front of a keyframe may add to the bound.
                assert!(u.payload.len() <= 4 * MAX_PIPE_FRAME);
                let mut nals = media::h264::avcc_nals(&u.payload);
                assert!(nals.by_ref().all(|n| !n.is_empty()));
                assert!(!nals.truncated(), "a unit that is not whole NAL units");
            }
            None => unreachable!(),
        }
    }
    if let Some(c) = p.codec() {
        assert_eq!(c.clock_rate, 90_000);
    }
}

/// `PmtScan` (counts a TS program's streams while a byte stream is probed) on arbitrary bytes in chunks
/// of varying size. Beyond "never panics": a stream count means the scan is done and saw sync, and a
/// finished scan never changes its answer.
///
/// Input: `[chunk, data...]`.
pub fn pmt_scan(data: &[u8]) {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut scan = PmtScan::new();
    // The answer of the scan once it is done.
    let mut finished: Option<Option<usize>> = None;
    for c in data.chunks(chunk) {
        scan.push(c);
        if let Some(n) = scan.streams() {
            assert!(scan.done() && scan.synced());
            assert!(n <= 188 / 5, "more streams than a PMT in one packet can list");
        }
        match finished {
            Some(answer) => assert_eq!(scan.streams(), answer),
            None if scan.done() => finished = Some(scan.streams()),
            None => {}
        }
    }
}

/// The HLS/fMP4 `Segmenter` on frames with arbitrary payloads, timestamps and flags (payloads and
/// timestamps come from the network). Beyond "never panics": every segment is non-empty with a positive
/// finite duration, TS segments are whole 188-byte packets, and no segment exceeds the size bound by
/// more than about one frame's output; following picture changes (selector bit 0x40), parts (0x80) and
/// segments carry generations that never go back nor pass the segmenter's.
///
/// Input: `[selector, records...]`, a record being `[flags, ts(4), len(2), payload...]`.
pub fn segment(data: &[u8]) {
    let Some((&sel, mut r)) = data.split_first() else { return };
    let video = Codec::new(if sel & 1 == 0 { "H264" } else { "H265" }, 90000, 0, 96);
    let audio = match (sel >> 1) & 3 {
        0 => Codec::new("MPEG4-GENERIC", 44100, 2, 97).with_fmtp("config=1210"),
        1 => Codec::new("PCMA", 8000, 1, 8),
        2 => Codec::new("OPUS", 48000, 2, 111),
        _ => Codec::new("MPEG4-GENERIC", 48000, 1, 97).with_fmtp("config=1188"),
    };
    let tracks = match (sel >> 3) & 3 {
        0 => vec![(Kind::Video, video), (Kind::Audio, audio)],
        1 => vec![(Kind::Audio, audio)],
        2 => vec![(Kind::Video, video)],
        _ => vec![(Kind::Audio, audio), (Kind::Video, video)],
    };
    let fmp4 = sel & 0x20 != 0;
    let max_bytes = 4096;
    let policy =
        SegmentPolicy { video_min: Duration::from_millis(100), audio_len: Duration::from_millis(200), max_bytes };
    let Ok(mut s) = Segmenter::with_policy(&tracks, fmp4, policy) else { return };
    if sel & 0x40 != 0 {
        s.follow_changes();
    }
    if sel & 0x80 != 0 {
        s.set_parts(Duration::from_millis(40));
    }
    let (mut part_generation, mut segment_generation) = (0, 0);
    let mut segments = Vec::new();
    let mut largest = 0;
    while r.len() >= 7 {
        let flags = r[0];
        let timestamp = u32::from_be_bytes([r[1], r[2], r[3], r[4]]);
        let len = usize::from(u16::from_be_bytes([r[5], r[6]])).min(r.len() - 7);
        let payload = Bytes::copy_from_slice(&r[7..7 + len]);
        r = &r[7 + len..];
        largest = largest.max(len);
        let slot = usize::from(flags & 1) % tracks.len();
        let frame = Frame { timestamp, keyframe: flags & 2 != 0, payload, rtp: Vec::new() };
        let cut = s.push(slot, &frame);
        while let Some(p) = s.take_part() {
            assert!(!p.data.is_empty() && p.duration.is_finite() && p.duration > 0.0);
            assert!(p.generation >= part_generation && p.generation <= s.generation());
            part_generation = p.generation;
        }
        if let Some(seg) = cut {
            assert!(seg.generation >= segment_generation && seg.generation <= s.generation());
            segment_generation = seg.generation;
            segments.push(seg);
        }
        let _ = s.take_error();
        let _ = (s.init(), s.codecs());
    }
    if let Some(seg) = s.finish() {
        segments.push(seg);
    }
    for seg in segments {
        assert!(!seg.data.is_empty());
        assert!(seg.duration.is_finite() && seg.duration > 0.0, "{}", seg.duration);
        if !fmp4 {
            assert_eq!(seg.data.len() % 188, 0);
        }
        // Over the bound by at most one frame's output (TS/fMP4: the payload plus headers).
        assert!(seg.data.len() <= max_bytes + 2 * largest + 2048, "{} bytes", seg.data.len());
    }
}
