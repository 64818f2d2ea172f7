#![no_main]
//! The recorder's names: `start=` of `DELETE /v3/recordings/deletesegment` (`parse_rfc3339`, from the
//! network) and `recordPath` templates read back from file names (`Template::parse_file`). Never
//! panics; a parsed time written as the API writes it parses back to the same time; a file name read
//! back gives the same file name again.

use camrelay::record::template::{parse_rfc3339, Template};
use camrelay::servers::v3::rfc3339;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Some(t) = parse_rfc3339(text) {
        let written = rfc3339(t);
        assert_eq!(parse_rfc3339(&written), Some(t), "{text:?} → {written:?}");
    }
    // First line: a template; the rest: a file name to read with it.
    let (template, file) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(t) = Template::parse(template, ".mp4") else { return };
    let Some((name, start)) = t.parse_file(file) else { return };
    if let Ok(again) = t.file(name.as_deref().unwrap_or("cam"), start) {
        let again = again.to_string_lossy().into_owned();
        let (name2, start2) = t.parse_file(&again).expect("a file the template wrote reads back");
        assert_eq!(start2, start, "{template:?}: {file:?} → {again:?}");
        let rewritten = t.file(name2.as_deref().unwrap_or("cam"), start2).unwrap();
        assert_eq!(rewritten.to_string_lossy(), again, "{template:?}: {file:?}");
    }
});
