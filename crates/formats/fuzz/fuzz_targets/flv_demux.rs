#![no_main]
//! Arbitrary bytes after a valid FLV header (so the fuzzer reaches the tag parser) must never panic.

use formats::flv::FlvDemuxer;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut d = FlvDemuxer::new();
    if data.first().is_some_and(|b| b & 1 == 1) {
        let _ = d.push(b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
    }
    for chunk in data.chunks(97) {
        let _ = d.push(chunk);
        while d.poll().is_some() {}
    }
});
