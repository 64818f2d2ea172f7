#![no_main]
//! Challenge parsing and server-side verification of arbitrary Authorization values.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    if let Ok(c) = rtsp::auth::parse_challenge(s) {
        let h = rtsp::auth::authorization("DESCRIBE", "rtsp://h/x", "u", "p", &c, 1);
        if let rtsp::auth::Challenge::Digest(d) = &c {
            let a = rtsp::auth::Authenticator::new("u", "p", d.realm.clone());
            if d.algorithm.as_deref().is_none_or(|x| x.eq_ignore_ascii_case("md5")) {
                assert!(a.verify("DESCRIBE", &h, &d.nonce), "{h}");
            }
        }
    }
    let _ = rtsp::auth::best_challenge(s.split('\n'));
    let a = rtsp::auth::Authenticator::new("u", "p", "r");
    let _ = a.verify("DESCRIBE", s, "n");
});
