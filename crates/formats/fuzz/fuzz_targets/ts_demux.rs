#![no_main]
//! Arbitrary bytes, fed in two chunks split at the first byte's value, must never panic the TS demuxer.

use formats::ts::TsDemuxer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let split = data.first().map_or(0, |&b| usize::from(b) * 3).min(data.len());
    let mut d = TsDemuxer::new();
    let _ = d.push(&data[..split]);
    while d.poll().is_some() {}
    let _ = d.push(&data[split..]);
    let _ = d.finish();
    while d.poll().is_some() {}
});
