#![no_main]
//! See `formats::fuzzing::segment` (`crates/formats/src/fuzzing.rs`) for what this target feeds and checks.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| formats::fuzzing::segment(data));
