#![no_main]
//! Feeds the input as a TCP stream, decoding units until the buffer is exhausted or an error, and
//! checks that consumed lengths are in bounds and interleaved ranges lie inside the buffer.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut buf = data;
    while let Ok(Some((decoded, used))) = rtsp::decode(buf) {
        assert!(used > 0 && used <= buf.len());
        match decoded {
            rtsp::Decoded::Interleaved { payload, .. } => assert!(payload.end <= used),
            rtsp::Decoded::Request(r) => {
                let bytes = r.to_bytes();
                // What we serialize must decode again (it may grow past the header bound: `X:a` → `X: a`).
                match rtsp::decode(&bytes) {
                    Ok(Some((rtsp::Decoded::Request(_), n))) => assert_eq!(n, bytes.len()),
                    Err(rtsp::MessageError::HeadersTooLarge { .. }) => {}
                    other => panic!("re-decode: {other:?}"),
                }
                let _ = r.cseq();
                let _ = rtsp::url::parse_request_uri(&r.uri);
            }
            rtsp::Decoded::Response(r) => {
                let bytes = r.to_bytes();
                match rtsp::decode(&bytes) {
                    Ok(Some((rtsp::Decoded::Response(_), n))) => assert_eq!(n, bytes.len()),
                    Err(rtsp::MessageError::HeadersTooLarge { .. }) => {}
                    other => panic!("re-decode: {other:?}"),
                }
                for v in r.headers.get_all("RTP-Info") {
                    let _ = rtsp::url::parse_rtp_info(v);
                }
                if let Some(s) = r.headers.get("Session") {
                    let _ = rtsp::url::SessionHeader::parse(s);
                }
                if let Some(s) = r.headers.get("Range") {
                    let _ = rtsp::url::parse_npt_range(s);
                }
            }
        }
        buf = &buf[used..];
    }
});
