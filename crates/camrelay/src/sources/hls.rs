//! HLS source: `http(s)://…/x.m3u8` (MediaMTX's `source: http://host/path/index.m3u8`, a camrelay
//! `streams:` URL whose path ends in `.m3u8`; `httpx://` skips the certificate check).
//!
//! The playlist is fetched; a master playlist's variant is picked by bandwidth (the highest by default,
//! `#bandwidth=min`, or `#bandwidth=N`: the highest at most N bits/s) and its media playlist followed.
//! A live playlist is reloaded every target duration (half of it when nothing changed, RFC 8216 §6.3.4)
//! and its new segments fetched in order, starting two segments from its live end; an ended
//! (`#EXT-X-ENDLIST`) playlist is played once. MPEG-TS segments, and fMP4 segments behind their
//! `#EXT-X-MAP` init (fetched again when the playlist names another), go through the shared byte-stream
//! demuxer (`formats::mp4::Fmp4Demuxer` for fMP4) and are pushed in real time (paced by the first
//! track's timestamps).
//!
//! Bounded: playlists up to [`MAX_PLAYLIST`] bytes and [`MAX_SEGMENTS`] entries, segments up to
//! [`MAX_SEGMENT`] bytes, one segment in memory at a time. Playlists that are not HLS, are truncated,
//! or lie (a segment longer than the target duration allows, a media sequence that goes back) are
//! errors naming the line; encrypted segments are refused by name.

use bytes::Bytes;
use hyper::Method;
use media::{Frame, Media};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dial::Tls;
use crate::http_client;
use crate::hub::producer::parked_or_connect;
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, Track};
use crate::secrets::mask_url;
use crate::sources::bytestream::{probe, ChunkSource, FramePump, Hint, Probed, StreamDemuxer, READ_TIMEOUT};
use crate::sources::exec::parse_query;

/// Largest playlist accepted.
pub const MAX_PLAYLIST: usize = 1 << 20;
/// Most segments (or variants) one playlist may list.
pub const MAX_SEGMENTS: usize = 4096;
/// Largest segment accepted.
pub const MAX_SEGMENT: usize = 64 << 20;
/// Segments from the live end where a live playlist is joined.
const LIVE_START: usize = 2;
/// Frames that are further behind their time than this reset the pacing (a stall, a jump).
const PACE_SLACK: Duration = Duration::from_secs(3);

const OPTIONS: http_client::Options =
    http_client::Options { connect_timeout: Duration::from_secs(5), response_timeout: READ_TIMEOUT, max_redirects: 5 };

// -------------------------------------------------------------------------------------- playlists

/// A master playlist's variant.
#[derive(Clone, Debug, PartialEq)]
pub struct Variant {
    pub uri: String,
    /// Bits per second (`BANDWIDTH`).
    pub bandwidth: u64,
    pub codecs: Option<String>,
}

/// A media playlist's segment.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub uri: String,
    /// Seconds (`#EXTINF`).
    pub duration: f64,
    /// Media sequence number.
    pub sequence: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct MediaPlaylist {
    /// Seconds (`#EXT-X-TARGETDURATION`).
    pub target_duration: u64,
    pub segments: Vec<Segment>,
    /// `#EXT-X-ENDLIST`: no segment will be added.
    pub ended: bool,
    /// `#EXT-X-MAP` URI: fMP4 segments.
    pub map: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Playlist {
    Master(Vec<Variant>),
    Media(MediaPlaylist),
}

/// The value of `NAME=` in an attribute list (`A=1,B="x,y"`).
fn attribute<'a>(list: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = list;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        let (value, next) = if let Some(quoted) = after.strip_prefix('"') {
            let end = quoted.find('"')?;
            (&quoted[..end], quoted[end + 1..].trim_start_matches(','))
        } else {
            match after.split_once(',') {
                Some((v, n)) => (v, n),
                None => (after, ""),
            }
        };
        if key.trim() == name {
            return Some(value);
        }
        rest = next;
    }
    None
}

/// Parses a playlist (RFC 8216). Errors name the line and what is wrong.
pub fn parse(text: &str) -> Result<Playlist, String> {
    if text.len() > MAX_PLAYLIST {
        return Err(format!("the playlist is larger than {} KiB", MAX_PLAYLIST >> 10));
    }
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l.trim())).filter(|(_, l)| !l.is_empty());
    match lines.next() {
        Some((_, "#EXTM3U")) => {}
        Some((_, l)) if l.starts_with("#EXTM3U") => {}
        _ => {
            let head: String = text.chars().take(40).collect();
            return Err(format!("not an HLS playlist: it does not start with #EXTM3U (starts with {head:?})"));
        }
    }
    let mut variants = Vec::new();
    let mut pending_variant: Option<(usize, u64, Option<String>)> = None;
    let mut segments: Vec<Segment> = Vec::new();
    let mut pending_segment: Option<(usize, f64)> = None;
    let mut target: Option<u64> = None;
    let mut sequence: u64 = 0;
    let mut ended = false;
    let mut map = None;
    for (n, line) in lines {
        if let Some(tag) = line.strip_prefix('#') {
            let (name, value) = tag.split_once(':').unwrap_or((tag, ""));
            match name {
                "EXT-X-STREAM-INF" => {
                    let bw = attribute(value, "BANDWIDTH")
                        .ok_or_else(|| format!("line {n}: #EXT-X-STREAM-INF without BANDWIDTH"))?;
                    let bw: u64 = bw.parse().map_err(|_| format!("line {n}: invalid BANDWIDTH {bw:?}"))?;
                    pending_variant = Some((n, bw, attribute(value, "CODECS").map(str::to_string)));
                }
                "EXTINF" => {
                    let d = value.split(',').next().unwrap_or("").trim();
                    let d: f64 = d.parse().map_err(|_| format!("line {n}: invalid #EXTINF duration {d:?}"))?;
                    if !d.is_finite() || d < 0.0 {
                        return Err(format!("line {n}: invalid #EXTINF duration {d}"));
                    }
                    pending_segment = Some((n, d));
                }
                "EXT-X-TARGETDURATION" => {
                    let t: u64 = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("line {n}: invalid #EXT-X-TARGETDURATION {value:?}"))?;
                    if t == 0 || t > 3600 {
                        return Err(format!("line {n}: #EXT-X-TARGETDURATION {t} is out of range (1..3600 s)"));
                    }
                    target = Some(t);
                }
                "EXT-X-MEDIA-SEQUENCE" => {
                    // RFC 8216 4.3.3.2: before the first segment (found by the fuzz target hls_playlist).
                    if !segments.is_empty() || pending_segment.is_some() {
                        return Err(format!("line {n}: #EXT-X-MEDIA-SEQUENCE after the first segment"));
                    }
                    sequence = value
                        .trim()
                        .parse()
                        .map_err(|_| format!("line {n}: invalid #EXT-X-MEDIA-SEQUENCE {value:?}"))?;
                }
                "EXT-X-ENDLIST" => ended = true,
                "EXT-X-MAP" => {
                    let uri = attribute(value, "URI").ok_or_else(|| format!("line {n}: #EXT-X-MAP without URI"))?;
                    map = Some(uri.to_string());
                }
                "EXT-X-KEY" => {
                    let method = attribute(value, "METHOD").unwrap_or("");
                    if method != "NONE" {
                        return Err(format!("line {n}: encrypted segments (METHOD={method}) are not supported"));
                    }
                }
                _ => {}
            }
            continue;
        }
        // A URI line.
        if let Some((_, bw, codecs)) = pending_variant.take() {
            if variants.len() >= MAX_SEGMENTS {
                return Err(format!("more than {MAX_SEGMENTS} variants"));
            }
            variants.push(Variant { uri: line.to_string(), bandwidth: bw, codecs });
        } else if let Some((_, duration)) = pending_segment.take() {
            if segments.len() >= MAX_SEGMENTS {
                return Err(format!("more than {MAX_SEGMENTS} segments"));
            }
            let seq =
                sequence.checked_add(segments.len() as u64).ok_or_else(|| format!("line {n}: sequence overflow"))?;
            segments.push(Segment { uri: line.to_string(), duration, sequence: seq });
        } else {
            return Err(format!("line {n}: URI {line:?} without #EXTINF or #EXT-X-STREAM-INF before it"));
        }
    }
    if let Some((n, _, _)) = pending_variant {
        return Err(format!("truncated playlist: #EXT-X-STREAM-INF at line {n} has no URI after it"));
    }
    if let Some((n, _)) = pending_segment {
        return Err(format!("truncated playlist: #EXTINF at line {n} has no segment URI after it"));
    }
    if !variants.is_empty() {
        if !segments.is_empty() {
            return Err("the playlist mixes variants (#EXT-X-STREAM-INF) and segments (#EXTINF)".into());
        }
        return Ok(Playlist::Master(variants));
    }
    let target_duration = target.ok_or("a media playlist without #EXT-X-TARGETDURATION")?;
    // RFC 8216 4.3.3.1: each EXTINF rounded to an integer is at most the target duration.
    if let Some(s) = segments.iter().find(|s| s.duration.round() > target_duration as f64) {
        return Err(format!(
            "segment {} lasts {} s, more than the target duration {target_duration} s",
            s.sequence, s.duration
        ));
    }
    if segments.is_empty() && ended {
        return Err("the playlist ended without any segment".into());
    }
    Ok(Playlist::Media(MediaPlaylist { target_duration, segments, ended, map }))
}

/// Which variant `#bandwidth=` picks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pick {
    Highest,
    Lowest,
    /// The highest at most this many bits per second (else the lowest).
    AtMost(u64),
}

impl Pick {
    fn parse(s: &str) -> Result<Pick, String> {
        match s {
            "" | "max" => Ok(Pick::Highest),
            "min" => Ok(Pick::Lowest),
            n => n.parse().map(Pick::AtMost).map_err(|_| format!("#bandwidth={n:?}: expected max, min or bits/s")),
        }
    }

    pub fn choose(self, variants: &[Variant]) -> Option<&Variant> {
        let lowest = variants.iter().min_by_key(|v| v.bandwidth);
        match self {
            Pick::Highest => variants.iter().max_by_key(|v| v.bandwidth),
            Pick::Lowest => lowest,
            Pick::AtMost(n) => variants.iter().filter(|v| v.bandwidth <= n).max_by_key(|v| v.bandwidth).or(lowest),
        }
    }
}

// ------------------------------------------------------------------------------------------ source

/// Whether `url` is an HLS playlist URL (the path ends in `.m3u8`).
pub fn is_playlist_url(url: &str) -> bool {
    let base = url.split('#').next().unwrap_or(url);
    let path = base.split('?').next().unwrap_or(base).to_ascii_lowercase();
    ["http://", "https://", "httpx://"].iter().any(|s| path.starts_with(s)) && path.ends_with(".m3u8")
}

pub struct HlsSource {
    label: String,
    target: http_client::Target,
    pick: Pick,
}

/// A followed media playlist: where its segments are read from and what comes next.
struct Follow {
    /// The media playlist's URL.
    target: http_client::Target,
    playlist: MediaPlaylist,
    /// The next segment to fetch.
    next: u64,
    /// Bytes of the fetched segment not yet given to the demuxer.
    queued: VecDeque<Bytes>,
    /// The `#EXT-X-MAP` init given to the demuxer last (fMP4 segments).
    map_loaded: Option<String>,
    /// When the playlist was last loaded, and whether it changed then.
    loaded: Instant,
    changed: bool,
    label: String,
}

impl Follow {
    async fn reload(&mut self) -> Result<(), SourceError> {
        let text = get(&self.target, MAX_PLAYLIST).await?;
        let playlist = parse_media(&text)?;
        let last = self.playlist.segments.last().map(|s| s.sequence);
        let new_last = playlist.segments.last().map(|s| s.sequence);
        if let (Some(a), Some(b)) = (last, new_last) {
            if b < a {
                tracing::warn!(source = %self.label, from = a, to = b, "HLS: the media sequence went back; following it");
                self.next = playlist.segments.len().saturating_sub(LIVE_START) as u64
                    + playlist.segments.first().map_or(0, |s| s.sequence);
            }
        }
        self.changed = new_last != last;
        self.loaded = Instant::now();
        self.playlist = playlist;
        Ok(())
    }
}

impl ChunkSource for Follow {
    /// The next segment's bytes, reloading the playlist and waiting for new segments as needed.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            if let Some(b) = self.queued.pop_front() {
                return Ok(Some(b));
            }
            if self.playlist.map != self.map_loaded {
                // fMP4: the init goes before the segments it describes.
                if let Some(uri) = &self.playlist.map {
                    let target = self.target.redirect(uri).map_err(|e| format!("init {uri:?}: {e}"))?;
                    let init = get(&target, MAX_SEGMENT).await.map_err(|e| format!("init {uri:?}: {e}"))?;
                    self.queued.push_back(init);
                }
                self.map_loaded = self.playlist.map.clone();
                continue;
            }
            let next = self.playlist.segments.iter().find(|s| s.sequence >= self.next).cloned();
            if let Some(seg) = next {
                if seg.sequence > self.next {
                    tracing::debug!(source = %self.label, skipped = seg.sequence - self.next, "HLS: segments missed");
                }
                self.next = seg.sequence + 1;
                let target = self.target.redirect(&seg.uri).map_err(|e| format!("segment {:?}: {e}", seg.uri))?;
                match get(&target, MAX_SEGMENT).await {
                    Ok(data) => self.queued.push_back(data),
                    // A segment gone already (a slow reader of a live playlist): go on with the next.
                    Err(e) if e.kind() == crate::hub::SourceErrorKind::Other => {
                        tracing::debug!(source = %self.label, segment = seg.sequence, error = %e, "HLS: segment skipped")
                    }
                    Err(e) => return Err(format!("segment {}: {e}", seg.sequence)),
                }
                continue;
            }
            if self.playlist.ended {
                return Ok(None);
            }
            let period = Duration::from_secs(self.playlist.target_duration);
            let wait = if self.changed { period } else { period / 2 };
            tokio::time::sleep_until(self.loaded + wait).await;
            self.reload().await.map_err(|e| e.to_string())?;
        }
    }
}

/// GETs a playlist or segment body, bounded.
async fn get(target: &http_client::Target, limit: usize) -> Result<Bytes, SourceError> {
    let (_conn, resp) = http_client::request(target, Method::GET, &[], Bytes::new(), &OPTIONS, None).await?;
    if !resp.status().is_success() {
        let kind = crate::hub::producer::status_kind(resp.status().as_u16());
        return Err(SourceError::new(kind, format!("HTTP {}", resp.status())));
    }
    let body = http_client::read_body(&mut resp.into_body(), limit, READ_TIMEOUT).await?;
    Ok(body)
}

fn parse_media(body: &[u8]) -> Result<MediaPlaylist, SourceError> {
    let text = std::str::from_utf8(body).map_err(|_| SourceError::protocol("the playlist is not UTF-8 text"))?;
    match parse(text).map_err(SourceError::protocol)? {
        Playlist::Media(m) => Ok(m),
        Playlist::Master(_) => Err(SourceError::protocol("a master playlist where a media playlist was expected")),
    }
}

/// What `open` parks: the followed playlist and what the probe read.
struct Connected {
    follow: Follow,
    demux: Box<StreamDemuxer>,
    probed: Probed,
}

impl HlsSource {
    pub fn new(url: &str) -> Result<HlsSource, String> {
        let label = mask_url(url);
        let (base, fragment) = url.split_once('#').unwrap_or((url, ""));
        let mut pick = Pick::Highest;
        for (k, v) in parse_query(fragment) {
            if k == "bandwidth" {
                pick = Pick::parse(&v).map_err(|e| format!("{label}: {e}"))?;
            }
        }
        let (scheme, rest) = base.split_once("://").ok_or_else(|| format!("{label}: not a URL"))?;
        let tls = match scheme.to_ascii_lowercase().as_str() {
            "http" => Tls::None,
            "https" => Tls::Verify,
            "httpx" => Tls::NoVerify,
            s => return Err(format!("{label}: unsupported scheme {s:?} for HLS")),
        };
        let target = http_client::Target::from_authority(tls, rest).map_err(|e| format!("{label}: {e}"))?;
        Ok(HlsSource { label, target, pick })
    }

    fn err(&self, e: impl Into<SourceError>) -> SourceError {
        e.into().map_message(|m| crate::secrets::mask_text(&format!("{}: {m}", self.label)))
    }

    /// Loads the playlist (following a master playlist to its variant) and reads until the tracks are known.
    async fn connect(&self) -> Result<Connected, SourceError> {
        let body = get(&self.target, MAX_PLAYLIST).await.map_err(|e| self.err(e))?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| self.err(SourceError::protocol("the playlist is not UTF-8 text")))?;
        let (target, playlist) = match parse(text).map_err(|e| self.err(SourceError::protocol(e)))? {
            Playlist::Media(m) => (self.target.clone(), m),
            Playlist::Master(variants) => {
                let v = self.pick.choose(&variants).ok_or_else(|| self.err(SourceError::protocol("no variant")))?;
                tracing::debug!(source = %self.label, bandwidth = v.bandwidth, uri = %v.uri, "HLS: variant chosen");
                let target = self.target.redirect(&v.uri).map_err(|e| self.err(SourceError::protocol(e)))?;
                let body = get(&target, MAX_PLAYLIST).await.map_err(|e| self.err(e))?;
                (target, parse_media(&body).map_err(|e| self.err(e))?)
            }
        };
        let hint = if playlist.map.is_some() { Hint::Fmp4 } else { Hint::Ts };
        let first = playlist.segments.first().map_or(0, |s| s.sequence);
        let start = if playlist.ended { 0 } else { playlist.segments.len().saturating_sub(LIVE_START) };
        let mut follow = Follow {
            target,
            next: first + start as u64,
            playlist,
            queued: VecDeque::new(),
            map_loaded: None,
            loaded: Instant::now(),
            changed: true,
            label: self.label.clone(),
        };
        let mut demux = Box::new(StreamDemuxer::new(hint));
        let probed = probe(&mut follow, &mut demux).await.map_err(|e| self.err(e))?;
        Ok(Connected { follow, demux, probed })
    }

    async fn run_inner(
        &self,
        parked: Option<Connected>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(connected) = parked_or_connect(parked, &stop, self.connect()).await? else { return Ok(()) };
        let Connected { mut follow, mut demux, probed } = connected;
        SourceError::unless_same_medias(&tracks, &probed.medias()).map_err(|e| self.err(e))?;
        let clock = probed.tracks.first().map_or(90_000, |t| t.codec.clock_rate.max(1));
        let pace_index = probed.tracks.first().map(|t| t.index);
        let mut pump = FramePump::new(&probed, tracks);
        let mut pacer = Pacer::new(clock);
        let mut pending: VecDeque<(usize, Frame)> = probed.frames;
        loop {
            while let Some((index, frame)) = pending.pop_front() {
                if Some(index) == pace_index {
                    if let Some(due) = pacer.due(frame.timestamp, Instant::now()) {
                        tokio::select! {
                            _ = stop.cancelled() => return Ok(()),
                            _ = tokio::time::sleep_until(due) => {}
                        }
                    }
                }
                pump.push(index, frame);
            }
            while let Some(ev) = demux.poll() {
                if let formats::DemuxEvent::Frame { index, frame } = ev {
                    pending.push_back((index, frame));
                }
            }
            if !pending.is_empty() {
                continue;
            }
            let chunk = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                c = follow.next_chunk() => c.map_err(|e| self.err(SourceError::network(e)))?,
            };
            let Some(data) = chunk else {
                demux.finish();
                pump.drain(&mut demux);
                return Err(self.err(SourceError::network("the playlist ended (#EXT-X-ENDLIST)")));
            };
            demux.push(&data, Instant::now()).map_err(|e| self.err(SourceError::protocol(e)))?;
        }
    }
}

/// Real-time pacing by one track's timestamps (time passed in): when a frame is due.
pub struct Pacer {
    clock: u32,
    unwrap: media::timestamp::Unwrapper,
    origin: Option<(i64, Instant)>,
}

impl Pacer {
    pub fn new(clock: u32) -> Pacer {
        Pacer { clock: clock.max(1), unwrap: media::timestamp::Unwrapper::new(), origin: None }
    }

    /// `None`: push now. A frame far behind its time (or far ahead: a jump) starts a new origin.
    pub fn due(&mut self, timestamp: u32, now: Instant) -> Option<Instant> {
        let ts = self.unwrap.unwrap(timestamp);
        let (t0, at) = *self.origin.get_or_insert((ts, now));
        let offset = ts - t0;
        let ahead = Duration::from_secs(60);
        if offset < 0 || offset as u64 > ahead.as_secs() * u64::from(self.clock) {
            self.origin = Some((ts, now));
            return None;
        }
        let due = at + Duration::from_micros((offset as u64).saturating_mul(1_000_000) / u64::from(self.clock));
        if due + PACE_SLACK < now {
            self.origin = Some((ts, now));
            return None;
        }
        (due > now).then_some(due)
    }
}

impl Source for HlsSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move { Ok(self.connect().await?.probed.medias()) })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_inner(None, tracks, stop).await })
    }

    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move {
            let c = self.connect().await?;
            let medias = c.probed.medias();
            let parked = Parked::new(c, |c: Connected| Box::pin(async move { drop(c) }));
            Ok(Opened { medias, parked: Some(parked) })
        })
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_inner(parked.and_then(Parked::take::<Connected>), tracks, stop).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_master_and_media_playlists() {
        let master = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-STREAM-INF:BANDWIDTH=800000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=640x360\nlow/index.m3u8\n\
                      #EXT-X-STREAM-INF:BANDWIDTH=2500000,RESOLUTION=1280x720\nhigh/index.m3u8\n";
        let Playlist::Master(v) = parse(master).unwrap() else { panic!() };
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].codecs.as_deref(), Some("avc1.64001f,mp4a.40.2"));
        assert_eq!(Pick::Highest.choose(&v).unwrap().uri, "high/index.m3u8");
        assert_eq!(Pick::Lowest.choose(&v).unwrap().uri, "low/index.m3u8");
        assert_eq!(Pick::AtMost(1_000_000).choose(&v).unwrap().uri, "low/index.m3u8");
        assert_eq!(Pick::AtMost(1).choose(&v).unwrap().uri, "low/index.m3u8");

        let media = "#EXTM3U\r\n#EXT-X-TARGETDURATION:2\r\n#EXT-X-MEDIA-SEQUENCE:41\r\n#EXTINF:2.000,\r\ns41.ts\r\n\
                     #EXTINF:1.960,\r\ns42.ts\r\n";
        let Playlist::Media(m) = parse(media).unwrap() else { panic!() };
        assert_eq!(m.target_duration, 2);
        assert!(!m.ended && m.map.is_none());
        assert_eq!(m.segments[1], Segment { uri: "s42.ts".into(), duration: 1.96, sequence: 42 });
    }

    #[test]
    fn bad_playlists_say_what_is_wrong() {
        let err = |t: &str| parse(t).unwrap_err();
        assert!(err("<html>nope</html>").contains("does not start with #EXTM3U"));
        assert!(err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2,\n").contains("truncated playlist: #EXTINF at line 3"));
        assert!(err("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1\n").contains("truncated playlist: #EXT-X-STREAM-INF"));
        assert!(err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:9.5,\na.ts\n").contains("more than the target duration"));
        assert!(err("#EXTM3U\n#EXTINF:2,\na.ts\n").contains("without #EXT-X-TARGETDURATION"));
        assert!(err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:NaN,\na.ts\n").contains("invalid #EXTINF duration"));
        assert!(err("#EXTM3U\n#EXT-X-STREAM-INF:RESOLUTION=1x1\na.m3u8\n").contains("without BANDWIDTH"));
        assert!(err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-KEY:METHOD=AES-128,URI=\"k\"\n").contains("encrypted"));
        assert!(err("#EXTM3U\na.ts\n").contains("without #EXTINF"));
        assert!(err("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-ENDLIST\n").contains("without any segment"));
        // Found by the fuzz target: a sequence number given after a segment renumbered the rest.
        let late =
            "#EXTM3U\n#EXTINF:2.000,\ns41.ts\n#EXT-X-TARGETDURATION:2\n#EXT-X-MEDIA-SEQUENCE:41\n#EXTINF:2,\ns42.ts\n";
        assert!(err(late).contains("line 5: #EXT-X-MEDIA-SEQUENCE after the first segment"), "{}", err(late));
    }

    #[test]
    fn pacer_spaces_frames_by_their_timestamps() {
        let t0 = Instant::now();
        let mut p = Pacer::new(90_000);
        assert_eq!(p.due(1000, t0), None);
        assert_eq!(p.due(1000 + 90_000, t0), Some(t0 + Duration::from_secs(1)));
        // Running late but within the slack: due in the past, push now.
        assert_eq!(p.due(1000 + 45_000, t0 + Duration::from_secs(2)), None);
        // Far behind: a new origin.
        assert_eq!(p.due(1000 + 90_000 * 2, t0 + Duration::from_secs(10)), None);
        assert_eq!(p.due(1000 + 90_000 * 3, t0 + Duration::from_secs(10)), Some(t0 + Duration::from_secs(11)));
    }

    #[test]
    fn playlist_urls() {
        assert!(is_playlist_url("http://h/cam/index.m3u8"));
        assert!(is_playlist_url("https://h/api/stream.m3u8?src=cam#bandwidth=min"));
        assert!(!is_playlist_url("http://h/live.ts"));
        assert!(!is_playlist_url("http://h/x?file=a.m3u8"));
        assert!(HlsSource::new("http://h/a.m3u8#bandwidth=lots").is_err());
    }

    #[test]
    fn fuzz_checks_hold_on_the_seeds_and_their_mutations() {
        for seed in [
            include_str!("../../fuzz/seeds/hls_playlist/master.m3u8"),
            include_str!("../../fuzz/seeds/hls_playlist/live.m3u8"),
            include_str!("../../fuzz/seeds/hls_playlist/fmp4.m3u8"),
        ] {
            crate::fuzzing::hls_playlist(seed);
            let bytes = seed.as_bytes();
            for i in 0..bytes.len() {
                for b in [b'\n', b'#', b',', b'9', b'"', b'-'] {
                    let mut m = bytes.to_vec();
                    m[i] = b;
                    crate::fuzzing::hls_playlist(&String::from_utf8_lossy(&m));
                }
                crate::fuzzing::hls_playlist(&String::from_utf8_lossy(&bytes[..i]));
            }
        }
    }
}
