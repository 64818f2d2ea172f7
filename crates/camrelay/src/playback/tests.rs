//! The playback server's parts without IO on sockets: query parsing, and `/get` over segment files
//! written by the recorder's own segmenter (`formats::segment::Segmenter`, as record/ uses it).

use super::get::{self, Ask, Fail, Sink};
use super::index::{self, Entry};
use super::mp4;
use super::*;
use bytes::Bytes;
use formats::segment::{SegmentPolicy, Segmenter};
use media::{Codec, Frame, Kind};
use std::path::{Path, PathBuf};

const H264_FMTP: &str =
    "packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==";

fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    Bytes::from(v)
}

/// The same stream at another level: another `avcC`, so segments of it do not continue those of
/// [`H264_FMTP`] (a source that changed its video parameters).
const H264_FMTP_LEVEL_31: &str =
    "packetization-mode=1;profile-level-id=42C01F;sprop-parameter-sets=Z0LAH9kAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==";

fn video_frame(i: u32, fmtp: &str) -> Frame {
    let key = i.is_multiple_of(25);
    let (sps, pps) = media::h264::parse_sprop_parameter_sets(fmtp);
    let fill = (i % 251) as u8;
    let payload = if key {
        avcc(&[&sps[0], &pps[0], &[0x65, 0x88, fill, fill]])
    } else {
        avcc(&[&[0x41, 0x9a, fill, fill, fill]])
    };
    Frame { timestamp: i * 3600, keyframe: key, payload, rtp: Vec::new() }
}

fn audio_frame(j: u32) -> Frame {
    Frame { timestamp: j * 960, keyframe: true, payload: Bytes::from(vec![(j % 251) as u8; 40]), rtp: Vec::new() }
}

/// Records `seconds` of 25 fps H.264 (a keyframe every second) + 20 ms Opus frames into 1 s segments
/// under `dir`, as the recorder does: the init at the head of each file, then its parts.
fn record(dir: &Path, seconds: u32, start: SystemTime) -> Vec<Entry> {
    record_with(dir, seconds, start, H264_FMTP)
}

/// [`record`] with the video's parameter sets from `fmtp`.
fn record_with(dir: &Path, seconds: u32, start: SystemTime, fmtp: &str) -> Vec<Entry> {
    std::fs::create_dir_all(dir).unwrap();
    let tracks = [
        (Kind::Video, Codec::new("H264", 90000, 0, 96).with_fmtp(fmtp)),
        (Kind::Audio, Codec::new("OPUS", 48000, 2, 111)),
    ];
    let policy =
        SegmentPolicy { video_min: Duration::from_secs(1), audio_len: Duration::from_secs(1), max_bytes: 1 << 30 };
    let mut seg = Segmenter::with_policy(&tracks, true, policy).unwrap();
    let mut files: Vec<(SystemTime, Vec<u8>)> = Vec::new();
    let mut open: Option<(SystemTime, Vec<u8>)> = None;
    let mut next = start;
    let mut j = 0u32;
    for i in 0..seconds * 25 {
        // Audio up to this video frame's time, then the frame.
        let mut frames = Vec::new();
        while u64::from(j) * 960 * 90000 <= u64::from(i) * 3600 * 48000 {
            frames.push((1, audio_frame(j)));
            j += 1;
        }
        frames.push((0, video_frame(i, fmtp)));
        for (slot, f) in frames {
            if let Some(cut) = seg.push(slot, &f) {
                if let Some((s, mut data)) = open.take() {
                    data.extend_from_slice(&cut.data);
                    next = s + Duration::from_secs_f64(cut.duration);
                    files.push((s, data));
                }
            }
            let pending = seg.take_pending();
            if pending.is_empty() {
                continue;
            }
            let o = open.get_or_insert_with(|| (next, seg.init().map(|b| b.to_vec()).unwrap_or_default()));
            for p in pending {
                o.1.extend_from_slice(&p);
            }
        }
    }
    if let Some((s, data)) = open.take() {
        files.push((s, data));
    }
    let t = crate::record::Template::parse(&format!("{}/%path/%Y-%m-%d_%H-%M-%S-%f", dir.display()), ".mp4").unwrap();
    files
        .into_iter()
        .map(|(s, data)| {
            let file = t.file("cam", s).unwrap();
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(&file, data).unwrap();
            // The name keeps microseconds.
            let (_, start) = t.parse_file(file.to_str().unwrap()).unwrap();
            index::probe_file(&file, start).unwrap()
        })
        .collect()
}

#[derive(Default)]
struct VecSink {
    length: Option<Option<u64>>,
    data: Vec<u8>,
    /// Called before each write (to delete files under the reader).
    before: Option<Box<dyn FnMut(usize)>>,
    writes: usize,
}

impl Sink for VecSink {
    fn head(&mut self, content_length: Option<u64>) -> bool {
        self.length = Some(content_length);
        true
    }
    fn data(&mut self, bytes: Vec<u8>) -> bool {
        if let Some(f) = &mut self.before {
            f(self.writes);
        }
        self.writes += 1;
        self.data.extend_from_slice(&bytes);
        true
    }
}

/// The samples of an fMP4 answer, per track (by index), as (dts, duration, sync).
/// (dts, duration, sync) of each sample of each track.
type Tracks = Vec<Vec<(u64, u32, bool)>>;

fn fmp4_samples(data: &[u8]) -> (mp4::Init, Tracks) {
    let top = mp4::children(data);
    assert_eq!(&top[0].0, b"ftyp");
    assert_eq!(&top[1].0, b"moov");
    let mut moov = Vec::new();
    moov.extend_from_slice(&((top[1].1.len() + 8) as u32).to_be_bytes());
    moov.extend_from_slice(b"moov");
    moov.extend_from_slice(top[1].1);
    let init = mp4::parse_moov(Vec::new(), moov).unwrap();
    let mut out = vec![Vec::new(); init.tracks.len()];
    let mut at = 0usize;
    for (kind, payload) in &top {
        let len = payload.len() + 8;
        if kind == b"moof" {
            for s in mp4::parse_moof(&data[at..at + len], at as u64, &init) {
                assert!(s.offset + u64::from(s.size) <= data.len() as u64);
                let (k, _) = init.track(s.track).unwrap();
                out[k].push((s.dts, s.duration, s.sync));
            }
        }
        at += len;
    }
    (init, out)
}

fn temp(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("camrelay-playback-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000) + Duration::from_micros(250)
}

#[test]
fn segments_probe_to_their_duration_and_merge_into_one_span() {
    let dir = temp("probe");
    let entries = record(&dir, 5, t0());
    assert_eq!(entries.len(), 5, "{entries:?}");
    for e in &entries[..4] {
        assert!((e.duration.as_secs_f64() - 1.0).abs() < 0.03, "{e:?}");
    }
    assert!(entries.windows(2).all(|w| w[0].continued_by(&w[1])), "{entries:?}");
    let spans = index::spans_of(&entries, None, None);
    assert_eq!(spans.len(), 1);
    assert!((spans[0].duration.as_secs_f64() - 5.0).abs() < 0.1, "{spans:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_cuts_at_the_asked_time_across_boundaries_with_a_keyframe_pre_roll() {
    let dir = temp("get");
    let entries = record(&dir, 6, t0());
    // From 1.5 s (mid-GOP: the keyframe is at 1.0 s) for 3 s: crosses the boundaries at 2, 3 and 4 s.
    let start = entries[1].start + Duration::from_millis(500);
    let segments = index::segments_of(&entries, start, Duration::from_secs(3));
    assert_eq!(segments.len(), 4);
    let mut sink = VecSink::default();
    get::serve(
        &Ask { segments, start, duration: Duration::from_secs(3), mp4: false, hls: None, query: String::new() },
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.length, Some(None));
    let (init, tracks) = fmp4_samples(&sink.data);
    assert!(init.tracks[0].video);
    let video = &tracks[0];
    // Pre-roll: frames 25..37 (from the keyframe at 1.0 s to before 1.5 s), one tick each; then the
    // 75 frames of [1.5 s, 4.5 s).
    assert_eq!(video.len(), 13 + 75, "{video:?}");
    assert!(video[0].2, "starts with a keyframe");
    assert_eq!(video.iter().take(13).map(|s| s.0).collect::<Vec<_>>(), (0..13).collect::<Vec<u64>>());
    assert!(video.windows(2).all(|w| w[1].0 > w[0].0), "decode times rise");
    // Frame 38 (1.52 s) plays 20 ms after the asked time, plus the 13 pre-roll ticks.
    assert_eq!(video[13].0, 1800 + 13);
    // Continuous: each sample ends where the next starts, across the segment boundaries too.
    assert!(video.windows(2).all(|w| w[0].0 + u64::from(w[0].1) == w[1].0), "{video:?}");
    let keyframes: Vec<usize> = video.iter().enumerate().filter(|(_, s)| s.2).map(|(i, _)| i).collect();
    assert_eq!(keyframes, vec![0, 13 + 12, 13 + 37, 13 + 62]);
    // Audio: 20 ms frames from 1.5 s to 4.5 s.
    let audio = &tracks[1];
    assert_eq!(audio.len(), 150);
    assert_eq!(audio[0].0, 0);
    assert!(audio.windows(2).all(|w| w[0].0 + u64::from(w[0].1) == w[1].0));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn get_as_progressive_mp4_lays_out_moov_then_mdat() {
    let dir = temp("mp4");
    let entries = record(&dir, 4, t0());
    let start = entries[0].start;
    let segments = index::segments_of(&entries, start, Duration::from_secs(2));
    let mut sink = VecSink::default();
    get::serve(
        &Ask { segments, start, duration: Duration::from_secs(2), mp4: true, hls: None, query: String::new() },
        &mut sink,
    )
    .unwrap();
    assert_eq!(sink.length, Some(Some(sink.data.len() as u64)));
    let top = mp4::children(&sink.data);
    let kinds: Vec<&[u8; 4]> = top.iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, vec![b"ftyp", b"moov", b"mdat"]);
    let moov = top[1].1;
    assert!(mp4::children(moov).iter().all(|(k, _)| k != b"mvex"));
    let traks: Vec<_> = mp4::children(moov).into_iter().filter(|(k, _)| k == b"trak").collect();
    assert_eq!(traks.len(), 2);
    // The video track's sample sizes: 50 frames.
    fn stbl(trak: &[u8]) -> &[u8] {
        let mdia = mp4::children(trak).into_iter().find(|(k, _)| k == b"mdia").unwrap().1;
        let minf = mp4::children(mdia).into_iter().find(|(k, _)| k == b"minf").unwrap().1;
        mp4::children(minf).into_iter().find(|(k, _)| k == b"stbl").unwrap().1
    }
    let video = stbl(traks[0].1);
    let stsz = mp4::children(video).into_iter().find(|(k, _)| k == b"stsz").unwrap().1;
    assert_eq!(u32::from_be_bytes(stsz[8..12].try_into().unwrap()), 50);
    let stss = mp4::children(video).into_iter().find(|(k, _)| k == b"stss").unwrap().1;
    assert_eq!(u32::from_be_bytes(stss[4..8].try_into().unwrap()), 2, "two keyframes");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_segment_deleted_under_a_reader_ends_the_answer_cleanly() {
    let dir = temp("deleted");
    let entries = record(&dir, 5, t0());
    let start = entries[0].start;
    let segments = index::segments_of(&entries, start, Duration::from_secs(5));
    let doomed: Vec<PathBuf> = entries[2..].iter().map(|e| e.file.clone()).collect();
    let mut sink = VecSink {
        before: Some(Box::new(move |write| {
            if write == 0 {
                for f in &doomed {
                    std::fs::remove_file(f).unwrap();
                }
            }
        })),
        ..VecSink::default()
    };
    get::serve(
        &Ask { segments, start, duration: Duration::from_secs(5), mp4: false, hls: None, query: String::new() },
        &mut sink,
    )
    .unwrap();
    // The first two seconds, complete fragments, nothing after.
    let (_, tracks) = fmp4_samples(&sink.data);
    assert_eq!(tracks[0].len(), 50);
    // Deleted before /get: nothing to serve is a 404.
    let gone = index::segments_of(&entries[2..], entries[2].start, Duration::from_secs(1));
    let err = get::serve(
        &Ask {
            segments: gone,
            start: entries[2].start,
            duration: Duration::from_secs(1),
            mp4: false,
            hls: None,
            query: String::new(),
        },
        &mut VecSink::default(),
    );
    assert!(matches!(err, Err(Fail::NotFound(_))), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn query_parameters_are_checked_with_clear_errors() {
    let p = parse_params("path=cams%2Ffront&start=2026-01-02T03%3A04%3A05.5%2B01%3A00&duration=12.5&format=mp4", true)
        .unwrap();
    assert_eq!(p.path, "cams/front");
    assert_eq!(p.start, crate::record::template::parse_rfc3339("2026-01-02T02:04:05.5Z"));
    assert_eq!(p.duration, Some(Duration::from_millis(12_500)));
    assert!(p.mp4);
    // An unencoded `+` offset still reads; Go's duration form too.
    let p = parse_params("path=cam&start=2026-01-02T03:04:05+01:00&duration=1m30s", true).unwrap();
    assert_eq!(p.duration, Some(Duration::from_secs(90)));
    let err = |q: &str, get: bool| parse_params(q, get).unwrap_err();
    assert_eq!(err("start=2026-01-02T03:04:05Z", false), "missing 'path' parameter");
    for bad in ["..", "../..", "a/../b", "/etc", "%2Fetc%2Fpasswd", "a//b", "a\\b", "..%2F..", "a%00b", "."] {
        assert!(err(&format!("path={bad}"), false).starts_with("invalid 'path' parameter"), "{bad}");
    }
    assert!(err("path=cam&start=yesterday", false).starts_with("invalid 'start' parameter: \"yesterday\""));
    assert!(err("path=cam&end=2026-13-01T00:00:00Z", false).starts_with("invalid 'end' parameter"));
    assert_eq!(err("path=cam&start=2026-01-02T00:00:00Z&end=2026-01-01T00:00:00Z", false), "'end' is before 'start'");
    assert_eq!(err("path=cam&duration=5", true), "missing 'start' parameter (an RFC 3339 time)");
    assert_eq!(err("path=cam&start=2026-01-02T00:00:00Z", true), "missing 'duration' parameter (seconds)");
    for bad in ["0", "-1", "NaN", "inf", "1e300", "soon", ""] {
        assert!(
            err(&format!("path=cam&start=2026-01-02T00:00:00Z&duration={bad}"), true).starts_with("invalid 'duration'"),
            "{bad}"
        );
    }
    assert_eq!(
        err("path=cam&start=2026-01-02T00:00:00Z&duration=1&format=mkv", true),
        "invalid 'format' parameter: \"mkv\" (expected fmp4, mp4 or hls)"
    );
    assert!(err(&format!("path={}", "a".repeat(9000)), false).contains("longer than"));
    // format=hls and its parts.
    let q = "path=cam&start=2026-01-02T00:00:00Z&duration=60&format=hls";
    assert_eq!(parse_params(q, true).unwrap().hls, Some(get::HlsPart::Playlist));
    assert_eq!(hls_query(&format!("{q}&jwt=a\"b")), format!("{q}&jwt=a%22b"));
    assert_eq!(route("list"), Some(Route::List));
    assert_eq!(route("get"), Some(Route::Get));
    assert_eq!(route("hls/init.mp4"), Some(Route::Hls(get::HlsPart::Init)));
    assert_eq!(route("hls/12.m4s"), Some(Route::Hls(get::HlsPart::Segment(12))));
    for bad in ["", "hls/", "hls/.m4s", "hls/-1.m4s", "hls/1.mp4", "hls/99999999999.m4s", "hls/../list", "gett"] {
        assert_eq!(route(bad), None, "{bad}");
    }
}

#[test]
fn proxies_origins_and_urls() {
    assert_eq!(parse_cidr("10.0.0.0/8"), Some(("10.0.0.0".parse().unwrap(), 8)));
    assert_eq!(parse_cidr("::1"), Some(("::1".parse().unwrap(), 128)));
    assert_eq!(parse_cidr("10.0.0.0/33"), None);
    let s = Settings {
        trusted_proxies: vec![parse_cidr("10.0.0.0/8").unwrap()],
        allow_origins: vec!["http://*.example.com".into()],
        ..Settings::default()
    };
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9, 10.1.1.1"));
    h.insert("x-forwarded-proto", HeaderValue::from_static("https"));
    assert_eq!(s.client("10.2.2.2".parse().unwrap(), &h), "203.0.113.9".parse::<IpAddr>().unwrap());
    assert_eq!(s.scheme("10.2.2.2".parse().unwrap(), &h), "https");
    // An untrusted peer cannot claim another address.
    assert_eq!(s.client("198.51.100.1".parse().unwrap(), &h), "198.51.100.1".parse::<IpAddr>().unwrap());
    assert_eq!(s.scheme("198.51.100.1".parse().unwrap(), &h), "http");
    assert_eq!(s.allowed_origin(Some("http://a.example.com")), Some("http://a.example.com".into()));
    assert_eq!(s.allowed_origin(Some("http://evil.com")), None);
    assert_eq!(query_escape("2026-01-02T03:04:05.5Z"), "2026-01-02T03%3A04%3A05.5Z");
    assert_eq!(query_escape("cams/front"), "cams%2Ffront");
}

/// `format=hls`: a VOD playlist cut at keyframes every 2 s, whose init + media segments, fetched one
/// by one as a player does, are the same samples as the whole `/get` with continuous decode times.
#[test]
fn hls_vod_playlist_and_its_segments_cover_the_span() {
    let dir = temp("hls");
    let entries = record(&dir, 7, t0());
    // From 1.5 s for 5 s: pre-roll from the keyframe at 1.0 s, boundaries at 2..6 s.
    let start = entries[1].start + Duration::from_millis(500);
    let duration = Duration::from_secs(5);
    let ask = |hls: Option<get::HlsPart>| Ask {
        segments: index::segments_of(&entries, start, duration),
        start,
        duration,
        mp4: false,
        hls,
        query: "path=cam&start=S&duration=5&format=hls".into(),
    };
    let mut sink = VecSink::default();
    get::serve(&ask(Some(get::HlsPart::Playlist)), &mut sink).unwrap();
    let text = String::from_utf8(sink.data).unwrap();
    assert_eq!(sink.length, Some(Some(text.len() as u64)));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "#EXTM3U");
    for tag in ["#EXT-X-PLAYLIST-TYPE:VOD", "#EXT-X-TARGETDURATION:3", "#EXT-X-VERSION:7"] {
        assert!(lines.contains(&tag), "{tag}: {text}");
    }
    assert_eq!(lines.last(), Some(&"#EXT-X-ENDLIST"));
    assert!(lines.contains(&"#EXT-X-MAP:URI=\"hls/init.mp4?path=cam&start=S&duration=5&format=hls\""), "{text}");
    let durations: Vec<f64> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    let uris: Vec<&str> = lines.iter().copied().filter(|l| l.starts_with("hls/")).collect();
    assert_eq!(uris.len(), durations.len());
    assert_eq!(uris[0], "hls/0.m4s?path=cam&start=S&duration=5&format=hls");
    // Keyframes at 1 s (the pre-roll, played at 0), 2, 3, 4, 5 and 6 s: a segment ends at the first
    // keyframe 2 s or more after its start (0 → 2.5 → 4.5 → 5), 5 s in all.
    let total: f64 = durations.iter().sum();
    assert!((total - 5.0).abs() < 0.05, "{durations:?}");
    assert!(durations[..durations.len() - 1].iter().all(|d| *d >= 2.0 - 1e-6 && *d <= 2.6), "{durations:?}");

    // The init, then each segment: one file with the whole /get's samples.
    let mut joined = VecSink::default();
    get::serve(&ask(Some(get::HlsPart::Init)), &mut joined).unwrap();
    for n in 0..uris.len() as u32 {
        let mut seg = VecSink::default();
        get::serve(&ask(Some(get::HlsPart::Segment(n))), &mut seg).unwrap();
        let top = mp4::children(&seg.data);
        assert_eq!(top.iter().map(|(k, _)| *k).collect::<Vec<_>>(), vec![*b"moof", *b"mdat"], "segment {n}");
        // Each starts with a keyframe.
        let mut alone = joined.data[..joined.data.len().min(init_len(&joined.data))].to_vec();
        alone.extend_from_slice(&seg.data);
        assert!(fmp4_samples(&alone).1[0][0].2, "segment {n} starts with a keyframe");
        joined.data.extend_from_slice(&seg.data);
    }
    let (_, hls) = fmp4_samples(&joined.data);
    let mut whole = VecSink::default();
    get::serve(&ask(None), &mut whole).unwrap();
    let (_, plain) = fmp4_samples(&whole.data);
    assert_eq!(hls, plain, "the segments hold what /get serves, at the same times");
    let video = &hls[0];
    assert!(video.windows(2).all(|w| w[0].0 + u64::from(w[0].1) == w[1].0), "continuous: {video:?}");
    let past = ask(Some(get::HlsPart::Segment(uris.len() as u32)));
    assert!(matches!(get::serve(&past, &mut VecSink::default()), Err(Fail::NotFound(_))));
    // Files deleted under a player (retention): the segments before them still serve, those after
    // are a 404, never a broken file.
    for e in &entries[4..] {
        std::fs::remove_file(&e.file).unwrap();
    }
    let mut first = VecSink::default();
    get::serve(&ask(Some(get::HlsPart::Segment(0))), &mut first).unwrap();
    assert!(!first.data.is_empty());
    let last = ask(Some(get::HlsPart::Segment(uris.len() as u32 - 1)));
    let err = get::serve(&last, &mut VecSink::default());
    assert!(matches!(&err, Err(Fail::NotFound(e)) if e.contains("no media segment")), "{err:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The length of the `ftyp` + `moov` at the head of `data`.
fn init_len(data: &[u8]) -> usize {
    mp4::children(data).iter().take(2).map(|(_, p)| p.len() + 8).sum()
}

/// A source that changed its video parameters mid-recording starts a new segment (the recorder,
/// tests/record_events.rs); here the playback side: the two are two spans, and neither /get nor
/// format=hls runs across the change (one file never mixes two inits).
#[test]
fn a_codec_change_splits_the_span_and_get_stops_there() {
    let dir = temp("codec-change");
    let mut entries = record(&dir, 3, t0());
    let end = entries.last().unwrap().end();
    entries.extend(record_with(&dir, 3, end, H264_FMTP_LEVEL_31));
    assert_eq!(entries.len(), 6, "{entries:?}");
    assert!(!entries[2].continued_by(&entries[3]), "{entries:?}");
    let spans = index::spans_of(&entries, None, None);
    assert_eq!(spans.len(), 2, "{spans:?}");
    assert!((spans[0].duration.as_secs_f64() - 3.0).abs() < 0.1, "{spans:?}");
    assert!((spans[1].duration.as_secs_f64() - 3.0).abs() < 0.1, "{spans:?}");
    let start = entries[0].start;
    let whole = Duration::from_secs(6);
    let ask = |hls| Ask {
        segments: index::segments_of(&entries, start, whole),
        start,
        duration: whole,
        mp4: false,
        hls,
        query: "q".into(),
    };
    let mut sink = VecSink::default();
    get::serve(&ask(None), &mut sink).unwrap();
    let (_, tracks) = fmp4_samples(&sink.data);
    assert_eq!(tracks[0].len(), 75, "the first 3 s only");
    let mut playlist = VecSink::default();
    get::serve(&ask(Some(get::HlsPart::Playlist)), &mut playlist).unwrap();
    let text = String::from_utf8(playlist.data).unwrap();
    let total: f64 = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse::<f64>().unwrap())
        .sum();
    assert!((total - 3.0).abs() < 0.05, "{text}");
    // The second span from its own start: its own init.
    let second = entries[3].start;
    let mut sink = VecSink::default();
    let ask2 = Ask {
        segments: index::segments_of(&entries, second, whole),
        start: second,
        duration: whole,
        mp4: false,
        hls: None,
        query: String::new(),
    };
    get::serve(&ask2, &mut sink).unwrap();
    let (init, tracks) = fmp4_samples(&sink.data);
    assert_eq!(tracks[0].len(), 75);
    assert_eq!(init.signature, entries[3].signature);
    assert_ne!(init.signature, entries[0].signature);
    let _ = std::fs::remove_dir_all(&dir);
}
