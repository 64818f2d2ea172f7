#![no_main]
//! Parse, and for anything that parses, write it back and parse again: the writer must produce an SDP
//! our parser accepts with the same number of medias.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(sd) = rtsp::sdp::parse(data) {
        let text = rtsp::sdp::write(&sd.medias, &sd.session_name, "127.0.0.1");
        let again = rtsp::sdp::parse(text.as_bytes()).expect("our own SDP must parse");
        assert_eq!(again.medias.len(), sd.medias.len());
        for m in &sd.medias {
            let _ = rtsp::url::control_url("rtsp://h/a", &m.control);
        }
    }
});
