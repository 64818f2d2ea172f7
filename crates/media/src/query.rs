//! Reader query filters (`?video=h264,h265&audio=all`, `?mp4`) and matching them against source medias,
//! as documented in go2rtc's "Codecs filters".

use crate::codec::{self, Codec, Kind, Media};
use std::fmt;

/// What a reader asks for, one entry per `video=` / `audio=` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MediaFilter {
    pub kind: Kind,
    /// Accepted codec names (upper case SDP names), in priority order. Empty means any codec.
    pub codecs: Vec<String>,
    /// `video=all` / `audio=all`: every matching media of every source, not only the first.
    pub all: bool,
}

impl MediaFilter {
    pub fn any(kind: Kind) -> MediaFilter {
        MediaFilter { kind, codecs: Vec::new(), all: false }
    }

    /// Index of the first codec of `media` this filter accepts, walking the filter's priority order.
    pub fn pick_codec(&self, media: &Media) -> Option<usize> {
        if media.kind != self.kind {
            return None;
        }
        if self.codecs.is_empty() {
            return (!media.codecs.is_empty()).then_some(0);
        }
        self.codecs.iter().find_map(|want| media.codecs.iter().position(|c| c.name == *want))
    }
}

impl fmt::Display for MediaFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let codecs = if self.all {
            "ALL".to_string()
        } else if self.codecs.is_empty() {
            "ANY".to_string()
        } else {
            self.codecs.iter().map(|c| if c == codec::AAC { "AAC" } else { c }).collect::<Vec<_>>().join(",")
        };
        write!(f, "{}:{}", self.kind, codecs)
    }
}

/// Maps a user's codec word to the SDP name (`aac` → MPEG4-GENERIC, `mjpeg` → JPEG). None = any codec.
fn codec_alias(word: &str) -> Option<String> {
    let upper = word.trim().to_ascii_uppercase();
    match upper.as_str() {
        "" | "ANY" | "COPY" => None,
        "MJPEG" => Some(codec::JPEG.into()),
        "AAC" => Some(codec::AAC.into()),
        "HEVC" => Some(codec::H265.into()),
        "AVC" => Some(codec::H264.into()),
        "PCM" => Some(codec::L16.into()),
        _ => Some(upper),
    }
}

/// Parses the filters of a query given as decoded `(key, value)` pairs; keys other than `video`, `audio`
/// and `mp4` are ignored. Returns an empty list when the query holds no filter at all, so the caller can
/// apply its default (`rtsp.default_query`).
pub fn parse_filters<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Vec<MediaFilter> {
    let mut video = Vec::new();
    let mut audio = Vec::new();
    for (key, value) in pairs {
        let (kind, list) = match key {
            "video" => (Kind::Video, &mut video),
            "audio" => (Kind::Audio, &mut audio),
            "mp4" => {
                video.push(MediaFilter {
                    kind: Kind::Video,
                    codecs: vec![codec::H264.into(), codec::H265.into()],
                    all: false,
                });
                let mut codecs = vec![codec::AAC.into()];
                match value.to_ascii_lowercase().as_str() {
                    "flac" => codecs.extend([codec::PCMA.into(), codec::PCMU.into(), codec::L16.into()]),
                    "all" => codecs.clear(),
                    _ => {}
                }
                audio.push(MediaFilter { kind: Kind::Audio, codecs, all: false });
                continue;
            }
            _ => continue,
        };
        let mut filter = MediaFilter::any(kind);
        for word in value.split(',') {
            if word.trim().eq_ignore_ascii_case("all") {
                filter.all = true;
            } else if let Some(name) = codec_alias(word) {
                filter.codecs.push(name);
            }
        }
        list.push(filter);
    }
    video.extend(audio);
    video
}

/// Parses a raw query string such as `video=h264,h265&audio` (no leading `?`; percent-escapes decoded).
pub fn parse_query_string(query: &str) -> Vec<MediaFilter> {
    let pairs: Vec<(String, String)> = query_pairs(query).collect();
    parse_filters(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())))
}

/// Splits `a=1&b&c=x%20y` into decoded pairs. Invalid escapes are kept literally.
pub fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    query.split('&').filter(|s| !s.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (percent_decode(k), percent_decode(v))
    })
}

/// Decodes `%XX` escapes and `+` (as a space, form style).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        out.push(b'%');
                        i += 1;
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A reader's filters found no source media to take: names both sides, as go2rtc does.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("codecs not matched: {wanted} => {offered}")]
pub struct MatchError {
    pub wanted: String,
    pub offered: String,
}

impl MatchError {
    pub fn new(filters: &[MediaFilter], offered: &[&Media]) -> MatchError {
        let wanted = filters.iter().map(|f| f.to_string()).collect::<Vec<_>>().join(", ");
        let offered = if offered.is_empty() {
            "no medias".to_string()
        } else {
            offered
                .iter()
                .flat_map(|m| m.codecs.iter().map(move |c| format!("{}:{}", m.kind, c.short_name())))
                .collect::<Vec<_>>()
                .join(", ")
        };
        MatchError { wanted, offered }
    }
}

/// Reports whether `codec` is one a reader filter names (for outputs that check a single codec).
pub fn accepts(filter: &MediaFilter, codec: &Codec) -> bool {
    filter.codecs.is_empty() || filter.codecs.contains(&codec.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Direction;

    fn media(kind: Kind, names: &[&str]) -> Media {
        Media::new(kind, Direction::RecvOnly, names.iter().map(|n| Codec::new(n, 90000, 0, 96)).collect())
    }

    #[test]
    fn parses_go2rtc_examples() {
        let f = parse_query_string("video=h264,h265&audio=aac");
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].codecs, vec!["H264", "H265"]);
        assert_eq!(f[1].codecs, vec!["MPEG4-GENERIC"]);

        let f = parse_query_string("video&audio=all");
        assert_eq!(f[0], MediaFilter::any(Kind::Video));
        assert!(f[1].all && f[1].codecs.is_empty());

        let f = parse_query_string("audio=opus&video=h264&audio=aac");
        assert_eq!(f.iter().map(|f| f.to_string()).collect::<Vec<_>>(), ["video:H264", "audio:OPUS", "audio:AAC"]);

        let f = parse_query_string("mp4");
        assert_eq!(f.iter().map(|f| f.to_string()).collect::<Vec<_>>(), ["video:H264,H265", "audio:AAC"]);
        let f = parse_query_string("mp4=flac");
        assert_eq!(f[1].codecs.len(), 4);
        assert!(parse_query_string("src=cam&name=x").is_empty());
    }

    #[test]
    fn picks_in_filter_priority_order() {
        let m = media(Kind::Video, &["H265", "H264"]);
        let f = parse_query_string("video=h264,h265");
        assert_eq!(f[0].pick_codec(&m), Some(1));
        assert_eq!(MediaFilter::any(Kind::Video).pick_codec(&m), Some(0));
        assert_eq!(MediaFilter::any(Kind::Audio).pick_codec(&m), None);
    }

    #[test]
    fn match_error_names_both_sides() {
        let m = media(Kind::Video, &["H264"]);
        let e = MatchError::new(&parse_query_string("video=h265"), &[&m]);
        assert_eq!(e.to_string(), "codecs not matched: video:H265 => video:H264");
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%20b+c%zz%"), "a b c%zz%");
        assert_eq!(percent_decode("%41"), "A");
    }
}
