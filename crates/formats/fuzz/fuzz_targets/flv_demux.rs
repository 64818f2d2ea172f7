#![no_main]
//! `FlvDemuxer` on arbitrary bytes (classic and Enhanced RTMP tags): the checks are
//! `formats::fuzzing::flv_demux`, also run on the seeds in `seeds/flv_demux` by `tests/fuzz_seeds.rs`.

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| formats::fuzzing::flv_demux(data));
