#![no_main]
//! The playback server's input: the query of `/list` and `/get` (`parse_params`, from the network),
//! the request path (`route`: `list`, `get`, `hls/init.mp4`, `hls/N.m4s`), and the ISO BMFF parsing `/get` and the index apply to segment files (a crash can cut them
//! anywhere). Never panics; a query that parses names a path with no `.`/`..`/empty component, not
//! absolute; a `/get` query has a start and a positive duration; an HLS segment's path is `hls/` digits
//! `.m4s`.

use camrelay::playback::{get::HlsPart, mp4, parse_params, route, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Some(Route::Hls(HlsPart::Segment(n))) = route(text) {
            let digits = text.strip_prefix("hls/").and_then(|t| t.strip_suffix(".m4s")).unwrap_or("");
            assert!(digits.bytes().all(|b| b.is_ascii_digit()) && digits.parse() == Ok(n), "{text:?}");
        }
        for get in [false, true] {
            if let Ok(p) = parse_params(text, get) {
                assert!(!p.path.is_empty() && !p.path.starts_with('/'), "{text:?}: {:?}", p.path);
                assert!(p.path.split('/').all(|c| !c.is_empty() && c != "." && c != ".."), "{text:?}: {:?}", p.path);
                if get {
                    assert!(p.start.is_some() && p.duration.is_some_and(|d| !d.is_zero()), "{text:?}");
                }
            }
        }
    }
    // The same bytes as a segment's boxes: a moov, then moofs read with its tracks.
    let boxes = mp4::children(data);
    for (kind, payload) in &boxes {
        if kind == b"moov" {
            let mut moov = Vec::with_capacity(payload.len() + 8);
            moov.extend_from_slice(&((payload.len() + 8) as u32).to_be_bytes());
            moov.extend_from_slice(b"moov");
            moov.extend_from_slice(payload);
            if let Ok(init) = mp4::parse_moov(Vec::new(), moov) {
                let mut at = 0usize;
                for (kind, payload) in &boxes {
                    let len = payload.len() + 8;
                    if kind == b"moof" {
                        if let Some(moof) = data.get(at..at + len) {
                            let _ = mp4::parse_moof(moof, at as u64, &init);
                        }
                    }
                    at += len;
                }
            }
        }
    }
});
