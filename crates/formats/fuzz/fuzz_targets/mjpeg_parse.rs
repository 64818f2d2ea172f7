#![no_main]
//! The multipart parser and the raw JPEG splitter on arbitrary bytes must never panic.

use formats::mjpeg::{JpegSplitter, MultipartParser};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut p = MultipartParser::new("frame");
    let mut s = JpegSplitter::new();
    for chunk in data.chunks(61) {
        let _ = p.push(chunk);
        while p.poll().is_some() {}
        let _ = s.push(chunk);
        while s.poll().is_some() {}
    }
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = formats::mjpeg::boundary_from_content_type(s);
    }
});
