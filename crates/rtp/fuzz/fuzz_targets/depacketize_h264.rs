#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let codec = media::Codec::new("H264", 90000, 0, 96)
        .with_fmtp("packetization-mode=1;sprop-parameter-sets=Z0LAHtk=,aMuMsg==");
    common::run(&codec, data);
});
