//! The fuzz targets' checks (`formats::fuzzing`) on every committed seed in `fuzz/seeds/<target>/` and
//! on a few thousand deterministic mutations of them, so that `cargo test` covers what the fuzzers
//! found interesting without cargo-fuzz or a nightly toolchain. A found crash becomes a seed here.

use std::path::PathBuf;

fn seeds(target: &str) -> Vec<Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let seeds: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// xorshift64*: the same mutations on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One libFuzzer-like mutation: flip, set to an interesting value, insert, erase, duplicate a span,
/// or splice in a span of another seed.
fn mutate(rng: &mut Rng, data: &[u8], other: &[u8]) -> Vec<u8> {
    let mut d = data.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(d.len() + 1);
        match rng.below(7) {
            0 if at < d.len() => d[at] ^= 1 << rng.below(8),
            1 if at < d.len() => d[at] = [0x00, 0x01, 0x47, 0x7f, 0x80, 0xd8, 0xd9, 0xff][rng.below(8)],
            2 => {
                let n = 1 + rng.below(16);
                let bytes: Vec<u8> = (0..n).map(|_| rng.next() as u8).collect();
                d.splice(at..at, bytes);
            }
            3 if at < d.len() => {
                let n = (1 + rng.below(64)).min(d.len() - at);
                d.drain(at..at + n);
            }
            4 if at < d.len() => {
                let n = (1 + rng.below(256)).min(d.len() - at);
                let span = d[at..at + n].to_vec();
                let to = rng.below(d.len() + 1);
                d.splice(to..to, span);
            }
            5 if !other.is_empty() => {
                let from = rng.below(other.len());
                let n = (1 + rng.below(512)).min(other.len() - from);
                d.splice(at..at, other[from..from + n].iter().copied());
            }
            _ => d.truncate(at),
        }
    }
    d
}

fn run(target: &str, check: fn(&[u8]), mutations: usize) {
    let seeds = seeds(target);
    for s in &seeds {
        check(s);
    }
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ target.len() as u64);
    for i in 0..mutations {
        let a = &seeds[i % seeds.len()];
        let b = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, a, b);
        // On a panic the input is printed so it can be committed as a seed.
        let ok = std::panic::catch_unwind(|| check(&input));
        assert!(ok.is_ok(), "{target}: mutation {i} panicked on {input:02x?}");
    }
}

#[test]
fn ts_demux_seeds_and_mutations() {
    run("ts_demux", formats::fuzzing::ts_demux, 3000);
}

/// The ts_demux seeds from ffmpeg give their codecs (and KLV its units, PTS or not).
#[test]
fn ts_demux_seeds_give_their_codecs() {
    for (seed, want) in [
        ("h264_opus", "OPUS"),
        ("h264_mp2", "MPA"),
        ("h264_mp3", "MPA"),
        ("h264_klv_ffmpeg", "SMPTE336M"),
        ("klv_with_pts", "SMPTE336M"),
    ] {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/ts_demux").join(seed);
        let data = std::fs::read(&path).unwrap();
        let mut d = formats::ts::TsDemuxer::new();
        d.push(&data[1..]).unwrap();
        d.finish().unwrap();
        let mut tracks = Vec::new();
        let mut frames = 0;
        while let Some(e) = d.poll() {
            match e {
                formats::DemuxEvent::Track { index, codec, .. } => tracks.push((index, codec.name)),
                formats::DemuxEvent::Frame { index, .. } => {
                    frames += usize::from(tracks.iter().any(|(i, n)| *i == index && n == want));
                }
            }
        }
        assert!(tracks.iter().any(|(_, n)| n == want), "{seed}: {tracks:?}");
        assert!(frames >= 3, "{seed}: {frames} {want} frames");
    }
}

/// ffmpeg's fMP4 HLS (init.mp4 + two .m4s, H.264 64x48 and AAC) through the stream demuxer's fMP4
/// mode: both tracks, frames of both, the first video frame a keyframe.
#[test]
fn fmp4_hls_seed_demuxes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/stream_demux/fmp4_hint_hls");
    let data = std::fs::read(path).unwrap();
    let mut d = formats::bytestream::StreamDemuxer::new(formats::bytestream::Hint::Fmp4);
    d.push(&data[2..], std::time::Instant::now()).unwrap();
    assert_eq!(d.expected_tracks(), Some(2));
    let (mut tracks, mut video, mut audio, mut first_key) = (Vec::new(), 0, 0, None);
    while let Some(e) = d.poll() {
        match e {
            formats::DemuxEvent::Track { codec, .. } => tracks.push(codec.name),
            formats::DemuxEvent::Frame { index: 0, frame } => {
                video += 1;
                first_key.get_or_insert(frame.keyframe);
            }
            formats::DemuxEvent::Frame { .. } => audio += 1,
        }
    }
    assert_eq!(tracks, ["H264", "MPEG4-GENERIC"]);
    assert!(video >= 15 && audio >= 30, "{video} video, {audio} audio frames");
    assert_eq!(first_key, Some(true));
}

#[test]
fn stream_demux_seeds_and_mutations() {
    run("stream_demux", formats::fuzzing::stream_demux, 5000);
}

#[test]
fn pipe_parse_seeds_and_mutations() {
    run("pipe_parse", formats::fuzzing::pipe_parse, 10000);
}

#[test]
fn pmt_scan_seeds_and_mutations() {
    run("pmt_scan", formats::fuzzing::pmt_scan, 20000);
}

#[test]
fn segment_seeds_and_mutations() {
    run("segment", formats::fuzzing::segment, 10000);
}

#[test]
fn flv_demux_seeds_and_mutations() {
    run("flv_demux", formats::fuzzing::flv_demux, 10000);
}

/// The FLV seeds written by ffmpeg 9.0.2's muxer (Enhanced FLV, multitrack) demux to their codecs,
/// with frames for every track.
#[test]
fn ffmpeg9_flv_seeds_demux_to_their_codecs() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/flv_demux");
    for (seed, want) in [
        ("h265_aac", &["H265", "MPEG4-GENERIC"][..]),
        ("av1_opus", &["AV1", "OPUS"][..]),
        ("vp9", &["VP9"][..]),
        ("multitrack_aac", &["MPEG4-GENERIC", "MPEG4-GENERIC"][..]),
        ("multitrack_aac_opus", &["MPEG4-GENERIC", "OPUS"][..]),
    ] {
        let data = std::fs::read(dir.join(seed)).unwrap();
        let mut d = formats::flv::FlvDemuxer::new();
        d.push(&data[2..]).unwrap_or_else(|e| panic!("{seed}: {e}"));
        let (mut codecs, mut frames) = (Vec::new(), vec![0usize; 4]);
        while let Some(e) = d.poll() {
            match e {
                formats::DemuxEvent::Track { codec, .. } => codecs.push(codec.name),
                formats::DemuxEvent::Frame { index, .. } => frames[index] += 1,
            }
        }
        assert_eq!(codecs, want, "{seed}");
        assert!(frames[..want.len()].iter().all(|&n| n > 0), "{seed}: frames per track {frames:?}");
    }
}
