#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    common::run(&media::Codec::new("AV1", 90000, 0, 96), data);
});
