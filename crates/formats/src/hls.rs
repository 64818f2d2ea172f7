//! HLS playlists (RFC 8216): the media playlist of a live stream (TS or fMP4 segments) and the master
//! playlist that names its codecs. Segment production is the fMP4/TS muxers' job; this is text.

use std::fmt::Write as _;

/// One media segment.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub uri: String,
    /// Seconds.
    pub duration: f64,
}

/// A live media playlist (sliding window).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MediaPlaylist {
    /// Sequence number of the first segment listed.
    pub media_sequence: u64,
    /// URI of the fMP4 init segment (`#EXT-X-MAP`); `None` for MPEG-TS segments.
    pub map_uri: Option<String>,
    pub segments: Vec<Segment>,
    /// Minimum `#EXT-X-TARGETDURATION` (seconds); raised to cover the longest segment.
    pub target_duration: u32,
    /// Adds `#EXT-X-ENDLIST` (the stream ended).
    pub ended: bool,
}

impl MediaPlaylist {
    pub fn render(&self) -> String {
        // EXT-X-MAP in a playlist without I-frames needs version 6 (RFC 8216 section 7).
        let version = if self.map_uri.is_some() { 6 } else { 3 };
        let longest = self.segments.iter().map(|s| s.duration).fold(0.0f64, f64::max);
        // "The EXTINF duration of each Media Segment, when rounded to the nearest integer, MUST be less
        // than or equal to the target duration": round, then at least 1.
        let target = (longest.round() as u32).max(self.target_duration).max(1);
        let mut s = String::with_capacity(128 + self.segments.len() * 48);
        // Writing to a String cannot fail.
        let _ = writeln!(s, "#EXTM3U");
        let _ = writeln!(s, "#EXT-X-VERSION:{version}");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{target}");
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if let Some(map) = &self.map_uri {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{map}\"");
        }
        for seg in &self.segments {
            let _ = writeln!(s, "#EXTINF:{:.3},", seg.duration);
            let _ = writeln!(s, "{}", seg.uri);
        }
        if self.ended {
            let _ = writeln!(s, "#EXT-X-ENDLIST");
        }
        s
    }
}

/// One variant stream of a master playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Peak bits per second.
    pub bandwidth: u64,
    /// RFC 6381 codecs, as [`crate::fmp4::Fmp4Muxer::mime_type`] lists them (`avc1.64001F,mp4a.40.2`).
    pub codecs: String,
    pub resolution: Option<(u32, u32)>,
}

/// A master playlist listing the variants.
pub fn master_playlist(variants: &[Variant]) -> String {
    let mut s = String::from("#EXTM3U\n");
    for v in variants {
        let _ = write!(s, "#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"", v.bandwidth, v.codecs);
        if let Some((w, h)) = v.resolution {
            let _ = write!(s, ",RESOLUTION={w}x{h}");
        }
        let _ = writeln!(s, "\n{}", v.uri);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_playlist_fmp4() {
        let p = MediaPlaylist {
            media_sequence: 7,
            map_uri: Some("init.mp4?id=1".into()),
            segments: vec![
                Segment { uri: "segment.m4s?id=1&n=7".into(), duration: 2.0 },
                Segment { uri: "segment.m4s?id=1&n=8".into(), duration: 2.6 },
            ],
            target_duration: 1,
            ended: false,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXT-X-MAP:URI=\"init.mp4?id=1\"\n#EXTINF:2.000,\nsegment.m4s?id=1&n=7\n#EXTINF:2.600,\nsegment.m4s?id=1&n=8\n"
        );
    }

    #[test]
    fn media_playlist_ts_ended() {
        let p = MediaPlaylist {
            segments: vec![Segment { uri: "s0.ts".into(), duration: 0.4 }],
            ended: true,
            ..Default::default()
        };
        let r = p.render();
        assert!(r.contains("#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"));
        assert!(!r.contains("EXT-X-MAP"));
        assert!(r.ends_with("#EXTINF:0.400,\ns0.ts\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn master() {
        let m = master_playlist(&[Variant {
            uri: "stream.m3u8?id=x".into(),
            bandwidth: 2_000_000,
            codecs: "avc1.64001F,mp4a.40.2".into(),
            resolution: Some((1280, 720)),
        }]);
        assert_eq!(
            m,
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS=\"avc1.64001F,mp4a.40.2\",RESOLUTION=1280x720\nstream.m3u8?id=x\n"
        );
    }
}
