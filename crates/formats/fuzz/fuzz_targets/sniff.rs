#![no_main]
//! Format detection on arbitrary prefixes must never panic.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = formats::detect(data);
});
