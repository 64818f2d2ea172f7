#![no_main]
//! Decodes arbitrary AMF0; whatever decodes must encode and decode again to the same values.
use libfuzzer_sys::fuzz_target;
use rtmp::amf0::{encode_all, Amf0Reader};

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = Amf0Reader::new(data).read_all() {
        let bytes = encode_all(&values);
        let again = Amf0Reader::new(&bytes).read_all().expect("our own encoding decodes");
        // NaN payloads differ from themselves: compare the encodings.
        assert_eq!(encode_all(&again), bytes);
    }
});
