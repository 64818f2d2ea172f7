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

/// The parts of a live playlist a server names ([`LivePlaylist::render`] asks for their URIs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveUri {
    /// The fMP4 init segment (`#EXT-X-MAP`) of a generation (see [`LivePlaylist::set_generation`]).
    Init(u64),
    /// Media segment `msn`.
    Segment(u64),
    /// Partial segment `part` (from 0) of media segment `msn`.
    Part(u64, u64),
}

/// How a [`LivePlaylist`] is laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LiveConfig {
    /// Segments listed (MediaMTX's `hlsSegmentCount`).
    pub segment_count: usize,
    /// fMP4 segments (`#EXT-X-MAP`); MPEG-TS otherwise.
    pub fmp4: bool,
    /// LL-HLS: the part target duration in seconds (MediaMTX's `hlsPartDuration`); `None`: plain HLS.
    pub part_target: Option<f64>,
}

/// One partial segment of a [`LivePlaylist`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LivePart {
    /// Seconds.
    pub duration: f64,
    pub independent: bool,
}

#[derive(Debug, Clone, PartialEq)]
struct LiveSegment {
    msn: u64,
    /// Seconds; 0 while in progress.
    duration: f64,
    /// Wall clock of its start, Unix milliseconds (`#EXT-X-PROGRAM-DATE-TIME`).
    start_ms: i64,
    parts: Vec<LivePart>,
    /// Its init segment's generation.
    generation: u64,
    /// Of another generation than the segment before (`#EXT-X-DISCONTINUITY`).
    discontinuity: bool,
}

/// Why a blocking playlist request (`_HLS_msn`/`_HLS_part`) is refused (400 Bad Request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockError(pub String);

impl std::fmt::Display for BlockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The state of a live (LL-)HLS media playlist, sans IO: segments and parts come in with their
/// durations and the wall clock, text comes out (RFC 8216bis: `#EXT-X-PART`, `#EXT-X-PRELOAD-HINT`,
/// `#EXT-X-SERVER-CONTROL`, delta updates with `#EXT-X-SKIP`, `#EXT-X-PROGRAM-DATE-TIME`), and the
/// conditions a blocking reload waits for. The bytes are the server's.
#[derive(Debug, Clone)]
pub struct LivePlaylist {
    config: LiveConfig,
    /// Complete segments, oldest first (at most `segment_count`).
    segments: std::collections::VecDeque<LiveSegment>,
    /// The segment in progress: its parts so far (LL-HLS only).
    current: Option<LiveSegment>,
    next_msn: u64,
    /// Longest segment so far, rounded; never shrinks.
    target: u32,
    /// Longest part so far (at least the configured target); never shrinks.
    part_target: f64,
    /// Where the next segment starts on the wall clock (continues the previous one's end).
    next_start_ms: Option<i64>,
    ended: bool,
    /// The generation of the segments to come ([`LivePlaylist::set_generation`]).
    generation: u64,
    /// The generation of the last segment started.
    last_generation: Option<u64>,
    /// `#EXT-X-DISCONTINUITY-SEQUENCE`: discontinuities that left the list.
    discontinuity_sequence: u64,
}

impl LivePlaylist {
    pub fn new(config: LiveConfig) -> LivePlaylist {
        let config = LiveConfig {
            segment_count: config.segment_count.max(1),
            part_target: config.part_target.map(|p| p.clamp(0.01, 60.0)),
            ..config
        };
        LivePlaylist {
            config,
            segments: std::collections::VecDeque::new(),
            current: None,
            next_msn: 0,
            target: 1,
            part_target: config.part_target.unwrap_or(0.0),
            next_start_ms: None,
            ended: false,
            generation: 0,
            last_generation: None,
            discontinuity_sequence: 0,
        }
    }

    /// The segments started from now on belong to init segment generation `generation` (a new picture:
    /// another size or codec parameters). A segment of another generation than the one before is listed
    /// after `#EXT-X-DISCONTINUITY` and, fMP4, an `#EXT-X-MAP` of its generation
    /// ([`LiveUri::Init`]); when it leaves the list, `#EXT-X-DISCONTINUITY-SEQUENCE` counts it.
    pub fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    fn new_segment(&mut self, start_ms: i64) -> LiveSegment {
        let generation = self.generation;
        let discontinuity = self.last_generation.is_some_and(|g| g != generation);
        self.last_generation = Some(generation);
        LiveSegment { msn: self.next_msn, duration: 0.0, start_ms, parts: Vec::new(), generation, discontinuity }
    }

    pub fn config(&self) -> &LiveConfig {
        &self.config
    }

    fn start(&mut self, now_ms: i64, elapsed: f64) -> i64 {
        *self.next_start_ms.get_or_insert(now_ms - (elapsed * 1000.0) as i64)
    }

    /// A part of the segment in progress completed at `now_ms`; its (msn, part index).
    pub fn add_part(&mut self, part: LivePart, now_ms: i64) -> (u64, u64) {
        if self.current.is_none() {
            let start_ms = self.start(now_ms, part.duration);
            self.current = Some(self.new_segment(start_ms));
        }
        self.part_target = self.part_target.max((part.duration * 1000.0).ceil() / 1000.0);
        let cur = self.current.as_mut().expect("just set");
        cur.parts.push(part);
        (cur.msn, cur.parts.len() as u64 - 1)
    }

    /// The segment in progress (or, without parts, a new one) completed at `now_ms`, `duration` long.
    /// Returns its msn and the msn of the segment that left the list, if one did.
    pub fn add_segment(&mut self, duration: f64, now_ms: i64) -> (u64, Option<u64>) {
        let mut seg = match self.current.take() {
            Some(s) => s,
            None => {
                let start_ms = self.start(now_ms, duration);
                self.new_segment(start_ms)
            }
        };
        seg.duration = duration;
        self.next_start_ms = Some(seg.start_ms + (duration * 1000.0).round() as i64);
        self.next_msn = seg.msn + 1;
        self.target = self.target.max(duration.round().clamp(1.0, f64::from(u32::MAX)) as u32);
        let msn = seg.msn;
        self.segments.push_back(seg);
        let mut gone = None;
        while self.segments.len() > self.config.segment_count {
            if let Some(s) = self.segments.pop_front() {
                self.discontinuity_sequence += u64::from(s.discontinuity);
                gone = Some(s.msn);
            }
        }
        (msn, gone)
    }

    /// The segment in progress was abandoned (dropped for size): its parts leave the list.
    pub fn abandon_current(&mut self) {
        if self.current.take().is_some() {
            self.last_generation = self.segments.back().map(|g| g.generation);
        }
    }

    /// The stream ended (`#EXT-X-ENDLIST`).
    pub fn end(&mut self) {
        self.current = None;
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// Complete segments listed.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty() && self.current.as_ref().map_or(true, |c| c.parts.is_empty())
    }

    /// The msn the next complete segment gets.
    pub fn next_msn(&self) -> u64 {
        self.next_msn
    }

    /// Whether complete segment `msn` is listed.
    pub fn has_segment(&self, msn: u64) -> bool {
        self.segments.iter().any(|s| s.msn == msn)
    }

    /// Whether part `part` of segment `msn` is listed (complete segments keep their parts while listed).
    pub fn has_part(&self, msn: u64, part: u64) -> bool {
        self.segments.iter().chain(self.current.as_ref()).any(|s| s.msn == msn && part < s.parts.len() as u64)
    }

    /// The oldest segment whose parts are listed (the one in progress when none is).
    pub fn oldest_part_msn(&self) -> u64 {
        let window = f64::from(self.target) * 3.0 + 1e-9;
        let mut before_end: f64 = self.segments.iter().map(|g| g.duration).sum();
        for g in &self.segments {
            if before_end <= window {
                return g.msn;
            }
            before_end -= g.duration;
        }
        self.next_part().0
    }

    /// The part the preload hint names: the next one to come.
    pub fn next_part(&self) -> (u64, u64) {
        match &self.current {
            Some(c) => (c.msn, c.parts.len() as u64),
            None => (self.next_msn, 0),
        }
    }

    /// Whether a playlist answers a blocking request for segment `msn` (part `part`): it lists that
    /// segment complete, or that part of it, or anything later (RFC 8216bis 6.2.5.2).
    pub fn ready(&self, msn: u64, part: Option<u64>) -> bool {
        if self.ended || msn < self.next_msn {
            return true;
        }
        let (next_msn, next_part) = self.next_part();
        match part {
            Some(p) => msn < next_msn || (msn == next_msn && p < next_part),
            // A segment without `_HLS_part` is there once complete.
            None => false,
        }
    }

    /// Refuses requests too far ahead to wait for: `_HLS_msn` more than two past the last segment
    /// listed, or `_HLS_part` past the Advance Part Limit (RFC 8216bis 6.2.5.2).
    pub fn check_block(&self, msn: u64, part: Option<u64>) -> Result<(), BlockError> {
        let (cur_msn, cur_parts) = self.next_part();
        let last = if cur_parts > 0 { cur_msn } else { cur_msn.saturating_sub(1) };
        if msn > last.saturating_add(2) {
            return Err(BlockError(format!("_HLS_msn={msn} is more than two segments past the last ({last})")));
        }
        if let (Some(p), Some(target)) = (part, self.config.part_target) {
            // "three divided by the Part Target Duration if it is less than 1, or 3 otherwise".
            let limit = if target < 1.0 { (3.0 / target).ceil() as u64 } else { 3 };
            let ahead = if msn == cur_msn { p.saturating_sub(cur_parts) } else { 0 };
            if ahead > limit || (msn > cur_msn && p > limit) {
                return Err(BlockError(format!("_HLS_part={p} is past the advance part limit ({limit} parts)")));
            }
        }
        Ok(())
    }

    /// How long a blocking request may wait: three target durations.
    pub fn block_limit(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.target.max(1)) * 3)
    }

    /// `CAN-SKIP-UNTIL`: six target durations (the minimum RFC 8216bis allows).
    fn skip_until(&self) -> f64 {
        f64::from(self.target) * 6.0
    }

    /// The playlist text. `skip`: a delta update (`_HLS_skip=YES`, LL-HLS only): segments more than
    /// `CAN-SKIP-UNTIL` from the live edge become one `#EXT-X-SKIP`.
    pub fn render(&self, uri: &dyn Fn(LiveUri) -> String, skip: bool) -> String {
        let ll = self.config.part_target.is_some();
        let version = if ll {
            9
        } else if self.config.fmp4 {
            6
        } else {
            3
        };
        let mut s = String::with_capacity(256 + self.segments.len() * 80);
        let _ = writeln!(s, "#EXTM3U");
        let _ = writeln!(s, "#EXT-X-VERSION:{version}");
        let _ = writeln!(s, "#EXT-X-TARGETDURATION:{}", self.target);
        if ll {
            let _ = writeln!(
                s,
                "#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK={:.3},CAN-SKIP-UNTIL={:.1}",
                self.part_target * 3.0,
                self.skip_until()
            );
            let _ = writeln!(s, "#EXT-X-PART-INF:PART-TARGET={:.3}", self.part_target);
        }
        let first = self.segments.front().map_or(self.next_msn, |g| g.msn);
        let _ = writeln!(s, "#EXT-X-MEDIA-SEQUENCE:{first}");
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(s, "#EXT-X-DISCONTINUITY-SEQUENCE:{}", self.discontinuity_sequence);
        }
        // The init segment in effect: the first segment's (then a new one after each discontinuity).
        let mut map = self.segments.front().or(self.current.as_ref()).map_or(self.generation, |g| g.generation);
        if self.config.fmp4 {
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", uri(LiveUri::Init(map)));
        }
        // Skipped: the oldest segments while the rest still spans CAN-SKIP-UNTIL, up to a discontinuity.
        let mut skipped = 0;
        if ll && skip {
            let mut rest: f64 = self.segments.iter().map(|g| g.duration).sum();
            for (i, g) in self.segments.iter().enumerate() {
                if rest - g.duration < self.skip_until() || (i > 0 && g.discontinuity) {
                    break;
                }
                rest -= g.duration;
                skipped += 1;
            }
            if skipped > 0 {
                let _ = writeln!(s, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
            }
        }
        // Parts are listed for the segments within three target durations of the live edge.
        let total: f64 = self.segments.iter().map(|g| g.duration).sum();
        let mut before_end = total;
        for (i, g) in self.segments.iter().enumerate() {
            let near_edge = before_end <= f64::from(self.target) * 3.0 + 1e-9;
            before_end -= g.duration;
            if i < skipped {
                continue;
            }
            let new_picture = self.write_discontinuity(&mut s, g, &mut map, uri);
            if i == skipped || new_picture {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_ms(g.start_ms));
            }
            if ll && near_edge {
                self.write_parts(&mut s, g, uri);
            }
            let _ = writeln!(s, "#EXTINF:{:.5},", g.duration);
            let _ = writeln!(s, "{}", uri(LiveUri::Segment(g.msn)));
        }
        if let Some(c) = self.current.as_ref().filter(|_| ll) {
            let new_picture = self.write_discontinuity(&mut s, c, &mut map, uri);
            if self.segments.is_empty() || new_picture {
                let _ = writeln!(s, "#EXT-X-PROGRAM-DATE-TIME:{}", rfc3339_ms(c.start_ms));
            }
            self.write_parts(&mut s, c, uri);
        }
        if self.ended {
            let _ = writeln!(s, "#EXT-X-ENDLIST");
        } else if ll {
            let (msn, part) = self.next_part();
            let _ = writeln!(s, "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}\"", uri(LiveUri::Part(msn, part)));
        }
        s
    }

    /// `#EXT-X-DISCONTINUITY` before a segment of another generation than the one before it, and the
    /// `#EXT-X-MAP` of its generation when the init in effect (`map`) is another. True if a
    /// discontinuity was written.
    fn write_discontinuity(
        &self,
        s: &mut String,
        g: &LiveSegment,
        map: &mut u64,
        uri: &dyn Fn(LiveUri) -> String,
    ) -> bool {
        if g.discontinuity {
            let _ = writeln!(s, "#EXT-X-DISCONTINUITY");
        }
        if self.config.fmp4 && g.generation != *map {
            *map = g.generation;
            let _ = writeln!(s, "#EXT-X-MAP:URI=\"{}\"", uri(LiveUri::Init(g.generation)));
        }
        g.discontinuity
    }

    fn write_parts(&self, s: &mut String, g: &LiveSegment, uri: &dyn Fn(LiveUri) -> String) {
        for (p, part) in g.parts.iter().enumerate() {
            let _ =
                write!(s, "#EXT-X-PART:DURATION={:.5},URI=\"{}\"", part.duration, uri(LiveUri::Part(g.msn, p as u64)));
            if part.independent {
                s.push_str(",INDEPENDENT=YES");
            }
            s.push('\n');
        }
    }
}

/// Unix milliseconds as RFC 3339 UTC with milliseconds (`2026-12-06T04:10:00.123Z`).
pub fn rfc3339_ms(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{millis:03}Z", rem / 3600, rem / 60 % 60, rem % 60)
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

    fn uri(u: LiveUri) -> String {
        match u {
            LiveUri::Init(0) => "init.mp4".into(),
            LiveUri::Init(g) => format!("init{g}.mp4"),
            LiveUri::Segment(n) => format!("seg{n}.m4s"),
            LiveUri::Part(n, p) => format!("part{n}.{p}.m4s"),
        }
    }

    fn ll() -> LivePlaylist {
        LivePlaylist::new(LiveConfig { segment_count: 7, fmp4: true, part_target: Some(0.2) })
    }

    /// Feeds `segments` segments of five 0.2 s parts, then `parts` parts of the next.
    fn fed(segments: usize, parts: usize) -> LivePlaylist {
        let mut p = ll();
        let mut now = 1_000_000;
        for _ in 0..segments {
            for i in 0..5 {
                now += 200;
                p.add_part(LivePart { duration: 0.2, independent: i == 0 }, now);
            }
            p.add_segment(1.0, now);
        }
        for i in 0..parts {
            now += 200;
            p.add_part(LivePart { duration: 0.2, independent: i == 0 }, now);
        }
        p
    }

    #[test]
    fn low_latency_playlist() {
        let p = fed(2, 2);
        let text = p.render(&uri, false);
        assert_eq!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:1\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=0.600,CAN-SKIP-UNTIL=6.0\n\
             #EXT-X-PART-INF:PART-TARGET=0.200\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n\
             #EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:16:40.000Z\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part0.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part0.1.m4s\"\n#EXT-X-PART:DURATION=0.20000,URI=\"part0.2.m4s\"\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part0.3.m4s\"\n#EXT-X-PART:DURATION=0.20000,URI=\"part0.4.m4s\"\n\
             #EXTINF:1.00000,\nseg0.m4s\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part1.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part1.1.m4s\"\n#EXT-X-PART:DURATION=0.20000,URI=\"part1.2.m4s\"\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part1.3.m4s\"\n#EXT-X-PART:DURATION=0.20000,URI=\"part1.4.m4s\"\n\
             #EXTINF:1.00000,\nseg1.m4s\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part2.0.m4s\",INDEPENDENT=YES\n\
             #EXT-X-PART:DURATION=0.20000,URI=\"part2.1.m4s\"\n\
             #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part2.2.m4s\"\n"
        );
    }

    #[test]
    fn old_segments_lose_their_parts_and_leave() {
        let mut p = fed(9, 0);
        let text = p.render(&uri, false);
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:2\n"), "{text}");
        assert_eq!(text.matches("#EXTINF:").count(), 7);
        // Parts only for the last three target durations.
        assert!(!text.contains("part5.") && text.contains("part6.0") && text.contains("part8.4"), "{text}");
        assert!(text.ends_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part9.0.m4s\"\n"), "{text}");
        assert!(!p.has_segment(1) && p.has_segment(2) && p.has_part(8, 4) && !p.has_part(8, 5));
        assert_eq!(p.oldest_part_msn(), 6);
        assert_eq!(p.add_segment(1.0, 0), (9, Some(2)));
        p.end();
        assert!(p.render(&uri, false).ends_with("seg9.m4s\n#EXT-X-ENDLIST\n"));
    }

    #[test]
    fn delta_update_skips_what_is_older_than_can_skip_until() {
        let p = fed(9, 1);
        let text = p.render(&uri, true);
        // 7 segments of 1 s listed, CAN-SKIP-UNTIL=6: the oldest one is skipped.
        assert!(
            text.contains("#EXT-X-MEDIA-SEQUENCE:2\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n"),
            "{text}"
        );
        assert!(!text.contains("seg2.m4s") && text.contains("seg3.m4s"), "{text}");
        assert_eq!(text.matches("#EXTINF:").count(), 6);
        // The date goes with the first segment listed after the skip.
        assert!(text.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
        // Plain HLS never skips.
        let mut plain = LivePlaylist::new(LiveConfig { segment_count: 7, fmp4: false, part_target: None });
        for _ in 0..9 {
            plain.add_segment(1.0, 5000);
        }
        let text = plain.render(&uri, true);
        assert!(!text.contains("SKIP") && !text.contains("PART") && text.contains("#EXT-X-VERSION:3\n"), "{text}");
    }

    #[test]
    fn blocking_reload_conditions() {
        let p = fed(3, 2);
        // Segments 0..2 complete, segment 3 has parts 0 and 1.
        assert!(p.ready(2, None) && p.ready(2, Some(9)) && p.ready(3, Some(1)));
        assert!(!p.ready(3, Some(2)) && !p.ready(3, None) && !p.ready(4, Some(0)));
        assert_eq!(p.next_part(), (3, 2));
        assert!(p.check_block(5, Some(0)).is_ok());
        let e = p.check_block(6, None).unwrap_err();
        assert!(e.0.contains("_HLS_msn=6"), "{e}");
        assert!(p.check_block(u64::MAX, Some(u64::MAX)).is_err());
        // Advance part limit at 0.2 s parts: 15 parts.
        assert!(p.check_block(3, Some(17)).is_ok());
        assert!(p.check_block(3, Some(18)).is_err());
        assert_eq!(p.block_limit(), std::time::Duration::from_secs(3));
    }

    /// A new picture (generation 1) from segment 3 on: `#EXT-X-DISCONTINUITY`, the new `#EXT-X-MAP`
    /// and a date before it and before the parts of the segment in progress of generation 2; once they
    /// leave the list, `#EXT-X-DISCONTINUITY-SEQUENCE` counts them.
    #[test]
    fn a_new_generation_is_a_discontinuity_with_its_own_map() {
        let mut p = ll();
        let mut now = 1_000_000;
        let mut feed = |p: &mut LivePlaylist, gen: u64, segments: usize, parts: usize| {
            p.set_generation(gen);
            for s in 0..=segments {
                let n = if s == segments { parts } else { 5 };
                for i in 0..n {
                    now += 200;
                    p.add_part(LivePart { duration: 0.2, independent: i == 0 }, now);
                }
                if s < segments {
                    p.add_segment(1.0, now);
                }
            }
        };
        feed(&mut p, 0, 3, 0);
        feed(&mut p, 1, 2, 0);
        feed(&mut p, 2, 0, 2);
        let text = p.render(&uri, false);
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"), "{text}");
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-MAP:URI=\"init.mp4\"\n"), "{text}");
        assert!(
            text.contains("seg2.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:"),
            "{text}"
        );
        assert!(
            text.contains(
                "seg4.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\"\n#EXT-X-PROGRAM-DATE-TIME:\
                 1970-01-01T00:16:45.000Z\n#EXT-X-PART:DURATION=0.20000,URI=\"part5.0.m4s\",INDEPENDENT=YES\n"
            ),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 2, "{text}");
        // Segments 0..=3 slide out (7 listed): the discontinuity before 3 is counted, the map is 1's.
        feed(&mut p, 2, 6, 0);
        let text = p.render(&uri, false);
        assert!(
            text.contains("#EXT-X-MEDIA-SEQUENCE:4\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-MAP:URI=\"init1.mp4\"\n"),
            "{text}"
        );
        assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
        assert!(text.contains("seg4.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init2.mp4\"\n"), "{text}");
        // A delta update skips up to a discontinuity, not past it.
        let delta = p.render(&uri, true);
        assert!(delta.contains("#EXT-X-SKIP:SKIPPED-SEGMENTS=1\n#EXT-X-DISCONTINUITY\n"), "{delta}");
        // MPEG-TS: the tag, no map.
        let mut ts = LivePlaylist::new(LiveConfig { segment_count: 3, fmp4: false, part_target: None });
        ts.add_segment(1.0, 0);
        ts.set_generation(1);
        ts.add_segment(1.0, 1000);
        let text = ts.render(&uri, false);
        assert!(text.contains("seg0.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:"), "{text}");
        assert!(!text.contains("MAP"), "{text}");
        // An abandoned first segment of a generation leaves the next one its discontinuity.
        let mut ab = ll();
        ab.add_part(LivePart { duration: 0.2, independent: true }, 0);
        ab.add_segment(0.2, 200);
        ab.set_generation(1);
        ab.add_part(LivePart { duration: 0.2, independent: true }, 400);
        ab.abandon_current();
        ab.add_part(LivePart { duration: 0.2, independent: true }, 600);
        assert!(ab.render(&uri, false).contains("#EXT-X-DISCONTINUITY\n"));
    }

    #[test]
    fn program_date_time_is_rfc3339() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(1_796_530_200_123), "2026-12-06T04:10:00.123Z");
        assert_eq!(rfc3339_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
