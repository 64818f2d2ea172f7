#![no_main]
//! HLS playlists from the network (`sources::hls::parse`): never panics; what parses is consistent
//! (`camrelay::fuzzing::hls_playlist`).

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        camrelay::fuzzing::hls_playlist(text);
    }
});
