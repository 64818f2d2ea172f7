#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks DONL mode, which changes how aggregation and fragmentation units are read.
    let Some((&mode, data)) = data.split_first() else { return };
    let fmtp = if mode & 1 == 1 { "sprop-max-don-diff=1;sprop-pps=RAHBcrRiQA==" } else { "sprop-pps=RAHBcrRiQA==" };
    let codec = media::Codec::new("H265", 90000, 0, 96).with_fmtp(fmtp);
    common::run(&codec, data);
});
