//! Parsers of single config values: durations, sizes, listen addresses.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// Parses a duration: `"5s"`, `"500ms"`, `"2m"`, `"1h"`, Go-style sequences (`"1m30s"`, `"1.5s"`,
/// units `ns`, `us`/`µs`, `ms`, `s`, `m`, `h`), or a bare number of seconds (`"5"`, `"0.5"`).
/// Negative or malformed values give `None`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Some(secs) = parse_number(s) {
        return Duration::try_from_secs_f64(secs).ok();
    }
    let mut total = Duration::ZERO;
    let mut rest = s;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let value = parse_number(&rest[..num_len])?;
        rest = &rest[num_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(Duration::try_from_secs_f64(value * scale).ok()?)?;
    }
    Some(total)
}

/// A non-negative decimal number (`12`, `1.5`, `.5`); no signs, exponents or words.
fn parse_number(s: &str) -> Option<f64> {
    if s.is_empty() || !s.chars().all(|c| c.is_ascii_digit() || c == '.') || !s.chars().any(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok().filter(|v: &f64| v.is_finite())
}

/// Parses a byte size: a bare number of bytes or a number with a unit (`B`, `K`/`KB`/`KiB`,
/// `M`/`MB`/`MiB`, `G`/`GB`/`GiB`; units are binary, case-insensitive, spaces allowed).
pub fn parse_size(s: &str) -> Option<usize> {
    let s = s.trim();
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let value = parse_number(&s[..split])?;
    let scale: f64 = match s[split..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let bytes = (value * scale).round();
    if bytes > usize::MAX as f64 {
        return None;
    }
    Some(bytes as usize)
}

/// Checks a `listen` value: `""` (disabled) or `[host]:port` with a port in 0..=65535, where host
/// is empty (all interfaces), an IPv4 address, a bracketed IPv6 address or a host name.
pub(crate) fn check_listen(listen: &str) -> Result<(), String> {
    if listen.is_empty() {
        return Ok(());
    }
    let (host, port) = if let Some(rest) = listen.strip_prefix('[') {
        let end = rest.find(']').ok_or("missing ']' after the IPv6 address")?;
        let host = &rest[..end];
        let addr = host.split('%').next().unwrap_or_default();
        if addr.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = rest[end + 1..].strip_prefix(':').ok_or("missing ':port' after the address")?;
        (None, port)
    } else {
        let (host, port) = listen.rsplit_once(':').ok_or("missing ':port'")?;
        (Some(host), port)
    };
    if let Some(host) = host {
        if host.contains(':') {
            return Err("an IPv6 address must be in brackets, e.g. \"[::1]:1984\"".into());
        }
        let valid = host.is_empty()
            || host.parse::<Ipv4Addr>().is_ok()
            || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_');
        if !valid {
            return Err(format!("{host:?} is not a valid host"));
        }
    }
    if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) || port.parse::<u16>().is_err() {
        return Err(format!("{port:?} is not a valid port (0-65535)"));
    }
    Ok(())
}

/// The address to bind for a `listen` value: `""` = disabled (`None`); `":1984"` →
/// `"0.0.0.0:1984"`; anything else (`"127.0.0.1:1984"`, `"[::1]:1984"`, `"localhost:1984"`) as is.
pub fn bind_address(listen: &str) -> Option<String> {
    let listen = listen.trim();
    if listen.is_empty() {
        None
    } else if listen.starts_with(':') {
        Some(format!("0.0.0.0{listen}"))
    } else {
        Some(listen.to_string())
    }
}
