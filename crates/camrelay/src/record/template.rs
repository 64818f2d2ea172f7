//! MediaMTX's `recordPath` templates: a segment's file name from its path and start time, and back
//! (listing reads the times from the names, without opening the files).
//!
//! Variables: `%path`, `%Y %m %d %H %M %S` (UTC), `%f` (microseconds), `%z` (`+0000`: times are UTC),
//! `%s` (Unix seconds). The extension (`.mp4`, `.ts`) is added by the caller.

use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Lit(String),
    Path,
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Micros,
    Zone,
    Unix,
}

/// A parsed `recordPath` (with its extension).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    text: String,
    tokens: Vec<Token>,
}

impl Template {
    /// Parses `recordPath` plus `ext` (`.mp4`); refuses an unknown `%` variable, a `..` component and a
    /// template without the start time in it (segments would overwrite each other).
    pub fn parse(record_path: &str, ext: &str) -> Result<Template, String> {
        if record_path.trim().is_empty() {
            return Err("recordPath is empty".to_string());
        }
        if Path::new(record_path).components().any(|c| c == Component::ParentDir) {
            return Err(format!("recordPath {record_path:?}: '..' is not allowed"));
        }
        let mut tokens = Vec::new();
        let mut lit = String::new();
        let mut rest = record_path;
        while let Some(i) = rest.find('%') {
            lit.push_str(&rest[..i]);
            rest = &rest[i + 1..];
            let (token, len) = if rest.starts_with("path") {
                (Token::Path, 4)
            } else {
                let t = match rest.chars().next() {
                    Some('Y') => Token::Year,
                    Some('m') => Token::Month,
                    Some('d') => Token::Day,
                    Some('H') => Token::Hour,
                    Some('M') => Token::Minute,
                    Some('S') => Token::Second,
                    Some('f') => Token::Micros,
                    Some('z') => Token::Zone,
                    Some('s') => Token::Unix,
                    _ => {
                        return Err(format!(
                            "recordPath {record_path:?}: unknown variable %{} (expected %path, %Y, %m, %d, %H, %M, %S, %f, %z or %s)",
                            rest.chars().next().map(String::from).unwrap_or_default()
                        ))
                    }
                };
                (t, 1)
            };
            rest = &rest[len..];
            if !lit.is_empty() {
                tokens.push(Token::Lit(std::mem::take(&mut lit)));
            }
            if matches!(tokens.last(), Some(Token::Path | Token::Unix)) && matches!(token, Token::Path | Token::Unix) {
                return Err(format!(
                    "recordPath {record_path:?}: two variables of any length in a row cannot be read back"
                ));
            }
            tokens.push(token);
        }
        lit.push_str(rest);
        lit.push_str(ext);
        tokens.push(Token::Lit(lit));
        let has = |t: &Token| tokens.contains(t);
        let full_date = [Token::Year, Token::Month, Token::Day, Token::Hour, Token::Minute, Token::Second];
        if !has(&Token::Unix) && !full_date.iter().all(has) {
            return Err(format!(
                "recordPath {record_path:?}: must hold the start time (%Y %m %d %H %M %S, or %s) so segments get distinct names"
            ));
        }
        Ok(Template { text: format!("{record_path}{ext}"), tokens })
    }

    /// The directory every file of this template lies under: the text before the first variable, up
    /// to its last `/`.
    pub fn base_dir(&self) -> PathBuf {
        let fixed = match self.tokens.first() {
            Some(Token::Lit(l)) if self.tokens.len() > 1 => l.as_str(),
            _ => "",
        };
        match fixed.rfind('/') {
            Some(0) => PathBuf::from("/"),
            Some(i) => PathBuf::from(&fixed[..i]),
            None => PathBuf::from("."),
        }
    }

    /// The file of path `name`'s segment starting at `start`. `name` must be a hub path name (no `..`).
    pub fn file(&self, name: &str, start: SystemTime) -> Result<PathBuf, String> {
        if name.is_empty() || name.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
            return Err(format!("path name {name:?} cannot name a file"));
        }
        let since = start.duration_since(UNIX_EPOCH).unwrap_or_default();
        let c = Civil::from_unix(since.as_secs() as i64);
        let mut out = String::new();
        for t in &self.tokens {
            match t {
                Token::Lit(l) => out.push_str(l),
                Token::Path => out.push_str(name),
                Token::Year => out.push_str(&format!("{:04}", c.year)),
                Token::Month => out.push_str(&format!("{:02}", c.month)),
                Token::Day => out.push_str(&format!("{:02}", c.day)),
                Token::Hour => out.push_str(&format!("{:02}", c.hour)),
                Token::Minute => out.push_str(&format!("{:02}", c.minute)),
                Token::Second => out.push_str(&format!("{:02}", c.second)),
                Token::Micros => out.push_str(&format!("{:06}", since.subsec_micros())),
                Token::Zone => out.push_str("+0000"),
                Token::Unix => out.push_str(&since.as_secs().to_string()),
            }
        }
        Ok(PathBuf::from(out))
    }

    /// Reads a file name back: its path name (`None` if the template has no `%path`) and start time.
    /// `file` is compared as text with what [`Template::file`] writes.
    pub fn parse_file(&self, file: &str) -> Option<(Option<String>, SystemTime)> {
        let mut fields = Fields::default();
        if !match_tokens(&self.tokens, file, &mut fields) {
            return None;
        }
        let secs = match fields.unix {
            Some(s) => s,
            None => {
                let (y, mo, d) = (fields.year?, fields.month?, fields.day?);
                let (h, mi, s) = (fields.hour?, fields.minute?, fields.second?);
                if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
                    return None;
                }
                Civil { year: y, month: mo, day: d, hour: h, minute: mi, second: s }.to_unix()
            }
        };
        let secs = u64::try_from(secs).ok()?;
        let t = UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(fields.micros.unwrap_or(0));
        if let Some(p) = &fields.path {
            if p.split('/').any(|c| c == ".." || c == "." || c.is_empty()) {
                return None;
            }
        }
        Some((fields.path, t))
    }

    pub fn text(&self) -> &str {
        &self.text
    }
}

#[derive(Default, Clone)]
struct Fields {
    path: Option<String>,
    year: Option<i64>,
    month: Option<i64>,
    day: Option<i64>,
    hour: Option<i64>,
    minute: Option<i64>,
    second: Option<i64>,
    micros: Option<u64>,
    unix: Option<i64>,
}

/// Matches `s` against `tokens`, filling `f`; `%path` and `%s` take the shortest span that lets the
/// rest match.
fn match_tokens(tokens: &[Token], s: &str, f: &mut Fields) -> bool {
    let Some((first, rest)) = tokens.split_first() else { return s.is_empty() };
    let digits = |n: usize| -> Option<i64> {
        let d = s.get(..n)?;
        d.bytes().all(|b| b.is_ascii_digit()).then(|| d.parse().ok())?
    };
    let fixed = |n: usize, f: &mut Fields, set: fn(&mut Fields, i64)| -> bool {
        match digits(n) {
            Some(v) => {
                let saved = f.clone();
                set(f, v);
                if match_tokens(rest, &s[n..], f) {
                    return true;
                }
                *f = saved;
                false
            }
            None => false,
        }
    };
    match first {
        Token::Lit(l) => s.strip_prefix(l.as_str()).is_some_and(|r| match_tokens(rest, r, f)),
        Token::Year => fixed(4, f, |f, v| f.year = Some(v)),
        Token::Month => fixed(2, f, |f, v| f.month = Some(v)),
        Token::Day => fixed(2, f, |f, v| f.day = Some(v)),
        Token::Hour => fixed(2, f, |f, v| f.hour = Some(v)),
        Token::Minute => fixed(2, f, |f, v| f.minute = Some(v)),
        Token::Second => fixed(2, f, |f, v| f.second = Some(v)),
        Token::Micros => fixed(6, f, |f, v| f.micros = Some(v as u64)),
        Token::Zone => s.get(..5).is_some_and(|z| z == "+0000") && match_tokens(rest, &s[5..], f),
        Token::Unix => {
            let n = s.bytes().take_while(u8::is_ascii_digit).count().min(19);
            (1..=n).any(|len| {
                let saved = f.clone();
                f.unix = s[..len].parse().ok();
                if f.unix.is_some() && match_tokens(rest, &s[len..], f) {
                    return true;
                }
                *f = saved;
                false
            })
        }
        // A second `%path` repeats the first.
        Token::Path if f.path.is_some() => {
            let p = f.path.clone().unwrap_or_default();
            s.strip_prefix(p.as_str()).is_some_and(|r| match_tokens(rest, r, f))
        }
        Token::Path => s.char_indices().skip(1).map(|(i, _)| i).chain([s.len()]).any(|end| {
            let saved = f.clone();
            f.path = Some(s[..end].to_string());
            if match_tokens(rest, &s[end..], f) {
                return true;
            }
            *f = saved;
            false
        }),
    }
}

/// A UTC calendar time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: i64,
    pub day: i64,
    pub hour: i64,
    pub minute: i64,
    pub second: i64,
}

impl Civil {
    /// Howard Hinnant's civil-from-days.
    pub fn from_unix(secs: i64) -> Civil {
        let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Civil { year, month, day, hour: rem / 3600, minute: rem % 3600 / 60, second: rem % 60 }
    }

    /// Howard Hinnant's days-from-civil.
    pub fn to_unix(self) -> i64 {
        let y = if self.month <= 2 { self.year - 1 } else { self.year };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (self.month + 9) % 12;
        let doy = (153 * mp + 2) / 5 + self.day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        days * 86_400 + self.hour * 3600 + self.minute * 60 + self.second
    }
}

/// Parses an RFC 3339 time (`2026-01-02T03:04:05.123456Z`, `...+01:00`), as the API's `start=` takes.
pub fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let d = s.get(r)?;
        d.bytes().all(|c| c.is_ascii_digit()).then(|| d.parse().ok())?
    };
    let civil = Civil {
        year: num(0..4)?,
        month: num(5..7)?,
        day: num(8..10)?,
        hour: num(11..13)?,
        minute: num(14..16)?,
        second: num(17..19)?,
    };
    if !(1..=12).contains(&civil.month)
        || !(1..=31).contains(&civil.day)
        || civil.hour > 23
        || civil.minute > 59
        || civil.second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    let mut nanos = 0u64;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = frac[..n].parse::<u64>().ok()? * 10u64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            let (h, m) = (rest[1..3].parse::<i64>().ok()?, rest[4..6].parse::<i64>().ok()?);
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let secs = u64::try_from(civil.to_unix() - offset).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64, micros: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)
    }

    #[test]
    fn mediamtx_default_template_round_trips() {
        let t = Template::parse("./recordings/%path/%Y-%m-%d_%H-%M-%S-%f", ".mp4").unwrap();
        assert_eq!(t.base_dir(), PathBuf::from("./recordings"));
        // 2026-12-05 02:53:40.000123 UTC
        let start = at(1_796_439_220, 123);
        let file = t.file("cams/front", start).unwrap();
        assert_eq!(file, PathBuf::from("./recordings/cams/front/2026-12-05_02-53-40-000123.mp4"));
        let (path, back) = t.parse_file(file.to_str().unwrap()).unwrap();
        assert_eq!(path.as_deref(), Some("cams/front"));
        assert_eq!(back, start);
        assert!(t.parse_file("./recordings/cam/2026-12-05_02-53-40-000123.ts").is_none());
        assert!(t.parse_file("./recordings/cam/2026-13-05_02-53-40-000123.mp4").is_none());
        assert!(t.parse_file("./recordings/../x/2026-12-05_02-53-40-000123.mp4").is_none());
    }

    #[test]
    fn unix_seconds_and_zone() {
        let t = Template::parse("/rec/%path_%s_%f%z", ".ts").unwrap();
        assert_eq!(t.base_dir(), PathBuf::from("/rec"));
        let start = at(1_700_000_000, 5);
        let file = t.file("cam_1", start).unwrap();
        assert_eq!(file, PathBuf::from("/rec/cam_1_1700000000_000005+0000.ts"));
        assert_eq!(t.parse_file(file.to_str().unwrap()), Some((Some("cam_1".to_string()), start)));
    }

    #[test]
    fn a_second_path_variable_repeats_the_first() {
        // Found by the record_names fuzz target: each %path took its own text, so the name read back
        // wrote a different file.
        let t = Template::parse("/rec/%path_%path_%s", ".mp4").unwrap();
        let start = at(1_700_000_000, 0);
        let file = t.file("a_b", start).unwrap();
        assert_eq!(file, PathBuf::from("/rec/a_b_a_b_1700000000.mp4"));
        assert_eq!(t.parse_file(file.to_str().unwrap()), Some((Some("a_b".to_string()), start)));
        assert_eq!(t.parse_file("/rec/a_c_1700000000.mp4"), None);
    }

    #[test]
    fn bad_templates_and_names_are_refused() {
        assert!(Template::parse("./rec/%path/%Y", ".mp4").unwrap_err().contains("start time"));
        assert!(Template::parse("./rec/%q%s", ".mp4").unwrap_err().contains("unknown variable %q"));
        assert!(Template::parse("../rec/%path/%s", ".mp4").unwrap_err().contains("'..'"));
        assert!(Template::parse("", ".mp4").is_err());
        let t = Template::parse("rec/%path/%s", ".mp4").unwrap();
        assert!(t.file("../etc", SystemTime::now()).is_err());
        assert!(t.file("a//b", SystemTime::now()).is_err());
        assert_eq!(Template::parse("%path/%s", ".mp4").unwrap().base_dir(), PathBuf::from("."));
    }

    #[test]
    fn civil_round_trips_and_rfc3339() {
        for secs in [0i64, 951_782_400, 1_796_439_220, 4_102_444_800] {
            assert_eq!(Civil::from_unix(secs).to_unix(), secs);
        }
        let t = parse_rfc3339("2026-12-05T02:53:40.000123Z").unwrap();
        assert_eq!(t, at(1_796_439_220, 123));
        assert_eq!(parse_rfc3339("2026-12-05T03:53:40.000123+01:00"), Some(t));
        assert_eq!(crate::servers::v3::rfc3339(t), "2026-12-05T02:53:40.000123Z");
        for bad in [
            "",
            "2026-12-05",
            "2026-12-05T02:53:40",
            "2026-13-05T02:53:40Z",
            "2026-12-05T02:53:40.Z",
            "x026-12-05T02:53:40Z",
        ] {
            assert!(parse_rfc3339(bad).is_none(), "{bad}");
        }
    }
}
