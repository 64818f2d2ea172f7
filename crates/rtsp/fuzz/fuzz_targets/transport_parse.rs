#![no_main]
//! Parse; anything that parses must format into a header that parses to the same values.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(list) = rtsp::transport::parse(s) {
        let text = rtsp::transport::format(&list);
        let again = rtsp::transport::parse(&text).expect("formatted Transport must parse");
        assert_eq!(again.len(), list.len());
        for (a, b) in list.iter().zip(&again) {
            assert_eq!(
                (a.lower, a.interleaved, a.client_port, a.server_port, a.ssrc, a.mode),
                (b.lower, b.interleaved, b.client_port, b.server_port, b.ssrc, b.mode)
            );
        }
    }
});
