#![no_main]
//! `PipeParser` (an `exec:` child's stdout: H.264/H.265 Annex B or MJPEG) on arbitrary bytes in chunks
//! of varying size. Beyond "never panics": every H.264/H.265 unit is whole length-prefixed NAL units
//! within the frame bound, every MJPEG unit one image from SOI to EOI, and an error stays an error.
//!
//! Input: `[chunk, data...]`.

use formats::pipe::{PipeFormat, PipeParser, MAX_PIPE_FRAME};
use libfuzzer_sys::fuzz_target;
use std::time::Instant;

fuzz_target!(|data: &[u8]| {
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
});
