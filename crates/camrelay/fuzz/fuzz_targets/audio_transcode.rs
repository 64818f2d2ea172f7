#![no_main]
//! Camera audio (AAC with any AudioSpecificConfig, G.711, L16, Opus) through the WebRTC audio
//! transcoder: never panics (symphonia's AAC decoder's own panics are caught and counted), counts stay
//! within what came in, and every encoded frame has a payload.

use camrelay::fuzzing::audio_transcode;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((stats, out)) = audio_transcode(data) {
        assert!(stats.bad_frames <= stats.frames_in);
        assert_eq!(stats.frames_out, out.len() as u64);
        assert!(out.iter().all(|f| !f.payload.is_empty()));
    }
});
