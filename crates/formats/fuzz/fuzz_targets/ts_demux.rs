#![no_main]
//! Arbitrary bytes, fed in two chunks split at the first byte's value, must never panic the TS demuxer;
//! its frames must be announced first and well formed (`formats::fuzzing::ts_demux`). Seeds in
//! `seeds/ts_demux`: ffmpeg's H.264 with Opus, MP2, MP3 and asynchronous KLV, and a KLV stream with PTS.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| formats::fuzzing::ts_demux(data));
