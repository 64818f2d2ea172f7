#![no_main]
//! Config text from the network (`POST /api/config`, inline `-c {...}` arguments): loading and
//! validating never panic, and putting masked secrets back restores the file as it was.

use camrelay::config::{load, unmask, validate_text};
use camrelay::secrets::mask_text;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // An argument that is neither inline YAML nor `key=value` is a file path: never one the fuzzer
    // picks (`/dev/stdin`...). Relative ones resolve under the missing directory.
    if text.trim_start().starts_with('{') || !text.starts_with('/') {
        let _ = load(&[text.to_string()], Path::new("/nonexistent"), &|_| None);
    }
    let _ = validate_text(text, "camrelay.yaml", &|_| None);

    // The input is the file; `GET /api/config` shows it masked and posting that back unchanged
    // must save the same file (lines end with `\n`).
    let masked = mask_text(text);
    let want: String = text.lines().map(|l| format!("{l}\n")).collect();
    assert_eq!(unmask(&masked, text).as_deref(), Some(want.as_str()), "masked:\n{masked}");
    // Edits: the input split in two, the edited text and the file.
    if let Some((edited, original)) = text.split_once('\0') {
        let _ = unmask(edited, original);
    }
});
