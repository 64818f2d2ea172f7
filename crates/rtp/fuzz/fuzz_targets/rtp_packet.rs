#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let a = rtp::packet::parse(data);
    let b = rtp::packet::parse_bytes(bytes::Bytes::copy_from_slice(data));
    assert_eq!(a, b);
    if let Ok(p) = a {
        // What we write parses back to the same fields.
        let again = rtp::packet::parse(&rtp::packet::serialize(&p));
        assert_eq!(again.as_ref(), Ok(&p));
    }
    let _ = rtp::rtcp::is_rtcp(data);
});
