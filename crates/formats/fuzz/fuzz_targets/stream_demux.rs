#![no_main]
//! `StreamDemuxer` (HTTP/TCP sources, `exec:` pipes, HTTP uploads) on arbitrary bytes, with every hint,
//! fed in chunks of varying size at advancing times. Beyond "never panics": the event queue stays
//! bounded, every frame's stream was announced by a track event first (unless the bounded queue had to
//! drop events), and a fatal error is given once and stays.
//!
//! Input: `[hint, chunk, data...]`.

use formats::bytestream::{Hint, StreamDemuxer};
use formats::DemuxEvent;
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// `StreamDemuxer`'s bound on waiting events.
const MAX_EVENTS: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&[hint, chunk], data)) = data.split_first_chunk::<2>() else { return };
    let hint = match hint % 6 {
        0 | 1 => Hint::Auto,
        2 => Hint::Ts,
        3 => Hint::Flv,
        4 => Hint::Multipart("frame".into()),
        _ => Hint::Jpeg,
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
});
