#![no_main]
//! Masking of URLs and free text never panics, and a URL's password never survives `mask_url` /
//! `mask_text`.

use camrelay::secrets::{mask_text, mask_url};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = mask_url(text);
    let _ = mask_text(text);

    // A password of printable characters: no controls, no whitespace (which ends a URL in free text
    // and in `exec:` command lines) and no `@` (which ends the user part).
    let password: String = text.chars().filter(|c| !c.is_control() && !c.is_whitespace() && *c != '@').collect();
    if password.is_empty() {
        return;
    }
    for scheme in ["rtsp", "https"] {
        let url = format!("{scheme}://user:{password}@host/");
        let want = format!("{scheme}://user:***@host/");
        assert_eq!(mask_url(&url), want, "mask_url({url:?})");
        assert_eq!(mask_text(&url), want, "mask_text({url:?})");
    }
    let exec = format!("exec:ffmpeg -i rtsp://user:{password}@host/ -f rtsp {{output}}");
    assert_eq!(mask_url(&exec), "exec:ffmpeg -i rtsp://user:***@host/ -f rtsp {output}", "mask_url({exec:?})");
});
