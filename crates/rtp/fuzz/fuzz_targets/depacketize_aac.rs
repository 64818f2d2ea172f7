#![no_main]
mod common;
use libfuzzer_sys::fuzz_target;

const FMTPS: &[&str] = &[
    "mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config=1210",
    "mode=AAC-lbr;config=1210",
    "sizelength=0",
    "sizelength=32;indexlength=32;indexdeltalength=0;ctsdeltalength=32;dtsdeltalength=7;randomaccessindication=1;streamstateindication=5;auxiliarydatasizelength=32",
    "sizelength=1;constantduration=4000000000",
    "indexlength=4;sizelength=0",
];

fuzz_target!(|data: &[u8]| {
    let Some((&mode, data)) = data.split_first() else { return };
    let fmtp = FMTPS[usize::from(mode) % FMTPS.len()];
    let codec = media::Codec::new("MPEG4-GENERIC", 48000, 2, 97).with_fmtp(fmtp);
    common::run(&codec, data);
});
