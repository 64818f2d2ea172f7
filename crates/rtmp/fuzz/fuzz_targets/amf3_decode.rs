#![no_main]
//! Decodes arbitrary AMF3, alone and behind AMF0's `avmplus-object` marker; whatever decodes must read
//! as AMF0 that encodes and decodes again to the same bytes.
use libfuzzer_sys::fuzz_target;
use rtmp::amf0::{encode_all, Amf0Reader};
use rtmp::amf3::Amf3Reader;

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = Amf3Reader::new(data).read_all() {
        let amf0: Vec<_> = values.iter().map(|v| v.to_amf0()).collect();
        let bytes = encode_all(&amf0);
        let again = Amf0Reader::new(&bytes).read_all().expect("our own encoding decodes");
        assert_eq!(encode_all(&again), bytes);
    }
    // As a type-17 command body: AMF0 with the switch to AMF3 in front of every value.
    let mut mixed = vec![0x02, 0x00, 0x01, b'c', 0x11];
    mixed.extend_from_slice(data);
    let _ = Amf0Reader::new(&mixed).read_all();
});
