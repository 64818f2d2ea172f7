#![no_main]
//! MediaMTX hook commands (`runOn*`): splitting never panics, a split command quoted back splits into
//! the same words, and a variable's value (a reader's `MTX_QUERY`, from the network) stays inside its
//! word whatever it holds.

use camrelay::hooks::{command_argv, quote_words, split_command};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (command, value) = text.split_once('\0').unwrap_or((text, ""));
    if let Ok(words) = split_command(command) {
        assert_eq!(split_command(&quote_words(&words)).as_deref(), Ok(&words[..]), "{command:?}");
    }
    let env = vec![("MTX_QUERY".to_string(), value.to_string())];
    let argv = command_argv("sh -c echo x$MTX_QUERY", &env).unwrap();
    assert_eq!(argv, ["sh", "-c", "echo", &format!("x{value}")]);
});
