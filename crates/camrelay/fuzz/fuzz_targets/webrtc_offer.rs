#![no_main]
//! SDP offers from `POST /api/webrtc` (WHEP/WHIP, go2rtc's JSON): our offer helpers and str0m's own
//! parsing and answering never panic.

use camrelay::fuzzing::{webrtc_answer, webrtc_not_receiving, webrtc_offer_filters, webrtc_offer_sends_audio};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The handler refuses offers that are not UTF-8.
    let Ok(sdp) = std::str::from_utf8(data) else { return };
    let filters = webrtc_offer_filters(sdp);
    for (i, f) in filters.iter().enumerate() {
        assert!(!f.codecs.is_empty());
        assert!(filters[..i].iter().all(|g| g.kind != f.kind), "one filter per kind");
    }
    let _ = webrtc_offer_sends_audio(sdp);
    let mids: Vec<&str> = sdp.lines().filter_map(|l| l.trim().strip_prefix("a=mid:")).map(str::trim).collect();
    let out = webrtc_not_receiving(sdp, &mids);
    // Direction attributes are swapped for ones of the same length; nothing else changes.
    assert_eq!(out.len(), sdp.len());
    if mids.is_empty() {
        assert_eq!(out, sdp);
    }
    match webrtc_answer(sdp) {
        Ok(answer) => {
            let _ = webrtc_offer_filters(&answer);
        }
        // Errors go back to the peer: no memory addresses in them.
        Err(e) => assert!(!e.contains("PointerOffset"), "{e}"),
    }
});
