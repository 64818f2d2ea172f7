#![no_main]
//! `PmtScan` (counts a TS program's streams while a byte stream is probed) on arbitrary bytes in chunks
//! of varying size. Beyond "never panics": a stream count means the scan is done and saw sync, and a
//! finished scan never changes its answer.
//!
//! Input: `[chunk, data...]`.

use formats::ts::PmtScan;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, data)) = data.split_first() else { return };
    let chunk = usize::from(chunk).max(1);
    let mut scan = PmtScan::new();
    // The answer of the scan once it is done.
    let mut finished: Option<Option<usize>> = None;
    for c in data.chunks(chunk) {
        scan.push(c);
        if let Some(n) = scan.streams() {
            assert!(scan.done() && scan.synced());
            assert!(n <= 188 / 5, "more streams than a PMT in one packet can list");
        }
        match finished {
            Some(answer) => assert_eq!(scan.streams(), answer),
            None if scan.done() => finished = Some(scan.streams()),
            None => {}
        }
    }
});
