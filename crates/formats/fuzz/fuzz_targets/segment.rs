#![no_main]
//! The HLS/fMP4 `Segmenter` on frames with arbitrary payloads, timestamps and flags (payloads and
//! timestamps come from the network). Beyond "never panics": every segment is non-empty with a positive
//! finite duration, TS segments are whole 188-byte packets, and no segment exceeds the size bound by
//! more than about one frame's output.
//!
//! Input: `[selector, records...]`, a record being `[flags, ts(4), len(2), payload...]`.

use bytes::Bytes;
use formats::segment::{SegmentPolicy, Segmenter};
use libfuzzer_sys::fuzz_target;
use media::{Codec, Frame, Kind};
use std::time::Duration;

fuzz_target!(|data: &[u8]| {
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
        if let Some(seg) = s.push(slot, &frame) {
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
});
