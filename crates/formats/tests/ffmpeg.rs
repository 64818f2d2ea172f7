//! Real-client checks: input made by ffmpeg, muxed by us, read back by ffprobe/ffmpeg; and files made
//! by ffmpeg demuxed by us. Skipped (with a note) when ffmpeg is not installed.

use bytes::Bytes;
use formats::flv::{FlvDemuxer, FlvMuxer};
use formats::fmp4::{Fmp4Muxer, FragmentPolicy};
use formats::ts::{TsDemuxer, TsMuxer};
use formats::DemuxEvent;
use media::aac::adts_frames;
use media::{h264, h265, Codec, Frame, Kind};
use std::path::PathBuf;
use std::process::Command;

fn have_ffmpeg() -> bool {
    let ok = |bin: &str| Command::new(bin).arg("-version").output().is_ok_and(|o| o.status.success());
    if ok("ffmpeg") && ok("ffprobe") {
        true
    } else {
        eprintln!("NOTE: ffmpeg/ffprobe not installed: skipping the real-client test");
        false
    }
}

fn ffmpeg(args: &str) -> Vec<u8> {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error"])
        .args(args.split_whitespace())
        .output()
        .expect("run ffmpeg");
    assert!(out.status.success(), "ffmpeg {args}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn temp_file(name: &str, data: &[u8]) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("formats-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, data).unwrap();
    p
}

/// `ffprobe -count_frames` per stream: (codec_name, width, height, nb_read_frames), plus stderr.
fn ffprobe(path: &PathBuf) -> (Vec<(String, u32, u32, u32)>, String) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames"])
        .args(["-of", "compact=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let mut streams: Vec<(String, u32, u32, u32)> = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let get = |k: &str| -> String {
                l.split('|').find_map(|kv| kv.strip_prefix(&format!("{k}="))).unwrap_or("").to_string()
            };
            (
                get("codec_name"),
                get("width").parse().unwrap_or(0),
                get("height").parse().unwrap_or(0),
                get("nb_read_frames").parse().unwrap_or(0),
            )
        })
        .collect();
    // MPEG-TS: ffprobe lists the streams again under their program.
    let mut seen = Vec::new();
    streams.retain(|s| {
        if seen.contains(s) {
            false
        } else {
            seen.push(s.clone());
            true
        }
    });
    // Order by codec name, so that tests do not depend on which stream a demuxer met first.
    streams.sort_by(|a, b| b.0.cmp(&a.0));
    (streams, String::from_utf8_lossy(&out.stderr).to_string())
}

/// Decodes the whole file with ffmpeg; returns its error output (empty when clean).
fn decode_errors(path: &PathBuf) -> String {
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Splits an Annex B stream into access units (AVCC payloads, keyframe flag); one slice per picture.
fn access_units(stream: &[u8], hevc: bool) -> Vec<(Bytes, bool)> {
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let mut has_vcl = false;
    let mut key = false;
    for nal in h264::annexb_nals(stream) {
        let (vcl, irap, first_slice) = if hevc {
            let t = h265::nal_type(nal[0]);
            (h265::is_vcl(t), h265::is_irap(t), nal.get(2).is_some_and(|b| b & 0x80 != 0))
        } else {
            let t = h264::nal_type(nal[0]);
            (h264::is_vcl(t), t == h264::NAL_IDR, nal.get(1).is_some_and(|b| b & 0x80 != 0))
        };
        if (!vcl || first_slice) && has_vcl {
            out.push((Bytes::from(std::mem::take(&mut cur)), key));
            has_vcl = false;
            key = false;
        }
        cur.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        cur.extend_from_slice(nal);
        has_vcl |= vcl;
        key |= irap;
    }
    if has_vcl {
        out.push((Bytes::from(cur), key));
    }
    out
}

fn h264_input() -> Vec<Frame> {
    let es = ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -t 2 -pix_fmt yuv420p -c:v libx264 -g 25 -bf 0 -bsf:v h264_mp4toannexb -f h264 -");
    access_units(&es, false)
        .into_iter()
        .enumerate()
        .map(|(i, (payload, keyframe))| Frame { timestamp: 1_000 + i as u32 * 3600, keyframe, payload, rtp: vec![] })
        .collect()
}

fn aac_input() -> (Codec, Vec<Frame>) {
    let adts = ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -c:a aac -f adts -");
    let frames: Vec<_> = adts_frames(&adts).collect();
    let cfg = frames[0].0.config;
    let codec = Codec::new("MPEG4-GENERIC", cfg.sample_rate, u16::from(cfg.channels), 97)
        .with_fmtp(format!("streamtype=5;mode=AAC-hbr;config={}", cfg.to_hex()));
    // Start near the 32-bit wrap to check unwrapping end to end.
    let base = u32::MAX - 20 * 1024;
    let frames = frames
        .iter()
        .enumerate()
        .map(|(i, (_, au))| Frame {
            timestamp: base.wrapping_add(i as u32 * 1024),
            keyframe: true,
            payload: Bytes::copy_from_slice(au),
            rtp: vec![],
        })
        .collect();
    (codec, frames)
}

/// Interleaves video and audio by time (video at 90 kHz, audio at 44.1 kHz, both from their starts).
fn interleave(video: &[Frame], audio: &[Frame]) -> Vec<(usize, Frame)> {
    let mut out = Vec::new();
    let (mut a, mut v) = (0, 0);
    while v < video.len() || a < audio.len() {
        let vt = (v < video.len()).then(|| v as f64 / 25.0);
        let at = (a < audio.len()).then(|| a as f64 * 1024.0 / 44100.0);
        match (vt, at) {
            (Some(x), Some(y)) if y < x => {
                out.push((1, audio[a].clone()));
                a += 1;
            }
            (Some(_), _) => {
                out.push((0, video[v].clone()));
                v += 1;
            }
            (None, _) => {
                out.push((1, audio[a].clone()));
                a += 1;
            }
        }
    }
    out
}

#[test]
fn fmp4_h264_aac_plays_in_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let video = h264_input();
    assert_eq!(video.len(), 50);
    let (aac, audio) = aac_input();
    for policy in [FragmentPolicy::PerFrame, FragmentPolicy::PerGop] {
        // No sprop in the fmtp: parameter sets come from the first keyframe.
        let tracks = [(Kind::Video, Codec::new("H264", 90000, 0, 96)), (Kind::Audio, aac.clone())];
        let mut m = Fmp4Muxer::with_policy(&tracks, policy).unwrap();
        let mut body = Vec::new();
        let mut fragments = 0;
        for (track, f) in interleave(&video, &audio) {
            m.push(track, &f).unwrap();
            while let Some(frag) = m.fragment() {
                body.extend_from_slice(&frag);
                fragments += 1;
            }
        }
        m.flush();
        while let Some(frag) = m.fragment() {
            body.extend_from_slice(&frag);
            fragments += 1;
        }
        let mime = m.mime_type().unwrap();
        assert!(mime.starts_with("video/mp4; codecs=\"avc1.64") && mime.ends_with(",mp4a.40.2\""), "{mime}");
        let mut file = m.init_segment().unwrap().to_vec();
        file.extend_from_slice(&body);
        let path = temp_file(&format!("h264-aac-{policy:?}.mp4"), &file);
        let (streams, errors) = ffprobe(&path);
        println!("fMP4 {policy:?}: {fragments} fragments, ffprobe {streams:?}");
        assert_eq!(errors, "", "ffprobe errors");
        assert_eq!(streams[0], ("h264".into(), 320, 240, 50));
        assert_eq!(streams[1].0, "aac");
        // Audio before the first video keyframe is dropped: the keyframe comes first here.
        assert_eq!(streams[1].3 as usize, audio.len());
        assert_eq!(decode_errors(&path), "", "ffmpeg decode errors");
        if policy == FragmentPolicy::PerFrame {
            assert_eq!(fragments, 51, "one per video frame plus the flush of trailing audio");
        } else {
            assert_eq!(fragments, 2, "one per GOP");
        }
    }
}

#[test]
fn fmp4_h265_plays_in_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let es = ffmpeg("-f lavfi -i testsrc=size=320x240:rate=25 -t 2 -pix_fmt yuv420p -c:v libx265 -x265-params keyint=25:min-keyint=25:bframes=0:log-level=error -f hevc -");
    let aus = access_units(&es, true);
    assert_eq!(aus.len(), 50);
    let mut m = Fmp4Muxer::new(&[(Kind::Video, Codec::new("H265", 90000, 0, 96))]).unwrap();
    let mut file = Vec::new();
    for (i, (payload, keyframe)) in aus.into_iter().enumerate() {
        m.push(0, &Frame { timestamp: i as u32 * 3600, keyframe, payload, rtp: vec![] }).unwrap();
        if i == 0 {
            file.extend_from_slice(&m.init_segment().unwrap());
        }
        while let Some(f) = m.fragment() {
            file.extend_from_slice(&f);
        }
    }
    let mime = m.mime_type().unwrap();
    assert!(mime.starts_with("video/mp4; codecs=\"hvc1.1.6.L"), "{mime}");
    let path = temp_file("h265.mp4", &file);
    let (streams, errors) = ffprobe(&path);
    println!("fMP4 H.265: {mime}, ffprobe {streams:?}");
    assert_eq!(errors, "");
    assert_eq!(streams[0], ("hevc".into(), 320, 240, 50));
    assert_eq!(decode_errors(&path), "");
}

#[test]
fn fmp4_pcma_to_flac_plays_in_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let alaw = ffmpeg("-f lavfi -i sine=frequency=440:sample_rate=8000 -t 2 -ac 1 -ar 8000 -f alaw -");
    let mut m = Fmp4Muxer::new(&[(Kind::Audio, Codec::new("PCMA", 8000, 1, 8))]).unwrap();
    let mut file = m.init_segment().unwrap().to_vec();
    let mut n = 0;
    for (i, chunk) in alaw.chunks(160).enumerate() {
        let f =
            Frame { timestamp: i as u32 * 160, keyframe: true, payload: Bytes::copy_from_slice(chunk), rtp: vec![] };
        m.push(0, &f).unwrap();
        while let Some(f) = m.fragment() {
            file.extend_from_slice(&f);
        }
        n += 1;
    }
    assert_eq!(m.mime_type().unwrap(), "video/mp4; codecs=\"flac\"");
    let path = temp_file("pcma-flac.mp4", &file);
    let (streams, errors) = ffprobe(&path);
    println!("fMP4 PCMA→FLAC: ffprobe {streams:?}");
    assert_eq!(errors, "");
    assert_eq!(streams[0].0, "flac");
    assert_eq!(streams[0].3, n);
    assert_eq!(decode_errors(&path), "", "FLAC frames decode (CRCs check)");
    // The decoded audio is the A-law input expanded: compare with ffmpeg's own A-law decoder.
    let ours = ffmpeg(&format!("-i {} -f s16le -", path.display()));
    let apath = temp_file("in.alaw", &alaw);
    let theirs = ffmpeg(&format!("-f alaw -ar 8000 -ac 1 -i {} -f s16le -", apath.display()));
    assert_eq!(ours.len(), theirs.len());
    assert!(ours == theirs, "PCM after FLAC repack equals ffmpeg's A-law decode");
}

#[test]
fn ts_h264_aac_plays_in_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let video = h264_input();
    let (aac, audio) = aac_input();
    let tracks = [(Kind::Video, Codec::new("H264", 90000, 0, 96)), (Kind::Audio, aac)];
    let mut m = TsMuxer::new(&tracks).unwrap();
    let mut file = Vec::new();
    for (track, f) in interleave(&video, &audio) {
        file.extend_from_slice(&m.push(track, &f).unwrap());
    }
    let path = temp_file("h264-aac.ts", &file);
    let (streams, errors) = ffprobe(&path);
    println!("TS: ffprobe {streams:?}");
    assert_eq!(errors, "");
    assert_eq!(streams[0], ("h264".into(), 320, 240, 50));
    assert_eq!(streams[1].0, "aac");
    assert_eq!(streams[1].3 as usize, audio.len());
    assert_eq!(decode_errors(&path), "");
}

#[test]
fn flv_h264_aac_plays_in_ffprobe() {
    if !have_ffmpeg() {
        return;
    }
    let video = h264_input();
    let (aac, audio) = aac_input();
    let tracks = [(Kind::Video, Codec::new("H264", 90000, 0, 96)), (Kind::Audio, aac)];
    let mut m = FlvMuxer::new(&tracks).unwrap();
    let mut file = m.header().to_vec();
    for (track, f) in interleave(&video, &audio) {
        file.extend_from_slice(&m.push(track, &f).unwrap());
    }
    let path = temp_file("h264-aac.flv", &file);
    let (streams, errors) = ffprobe(&path);
    println!("FLV: ffprobe {streams:?}");
    assert_eq!(errors, "");
    assert_eq!(streams[0], ("h264".into(), 320, 240, 50));
    assert_eq!(streams[1].0, "aac");
    assert_eq!(streams[1].3 as usize, audio.len());
    assert_eq!(decode_errors(&path), "");
}

type Demuxed = (Vec<(usize, Codec)>, Vec<(usize, Frame)>);

fn collect(events: &mut dyn FnMut() -> Option<DemuxEvent>) -> Demuxed {
    let (mut tracks, mut frames) = (Vec::new(), Vec::new());
    while let Some(e) = events() {
        match e {
            DemuxEvent::Track { index, codec, .. } => tracks.push((index, codec)),
            DemuxEvent::Frame { index, frame } => frames.push((index, frame)),
        }
    }
    (tracks, frames)
}

const FFMPEG_AV: &str = "-f lavfi -i testsrc=size=320x240:rate=25 -f lavfi -i sine=frequency=440:sample_rate=44100 -t 2 -pix_fmt yuv420p -c:v libx264 -g 25 -bf 0 -c:a aac";

fn check_demuxed(tracks: &[(usize, Codec)], frames: &[(usize, Frame)], what: &str) {
    let video = tracks.iter().find(|t| t.1.name == "H264").expect("video track");
    let audio = tracks.iter().find(|t| t.1.name == "MPEG4-GENERIC").expect("audio track");
    assert!(video.1.fmtp.contains("sprop-parameter-sets=Z2"), "{what}: {}", video.1.fmtp);
    assert!(video.1.fmtp.contains("profile-level-id=64"), "{what}: {}", video.1.fmtp);
    let sps = h264::parse_sprop_parameter_sets(&video.1.fmtp).0;
    let s = h264::Sps::parse(&sps[0]).unwrap();
    assert_eq!((s.width, s.height), (320, 240));
    assert_eq!((audio.1.clock_rate, audio.1.channels), (44100, 1));
    assert!(audio.1.fmtp.contains("config=1208"), "{what}: {}", audio.1.fmtp);
    let v: Vec<&Frame> = frames.iter().filter(|f| f.0 == video.0).map(|f| &f.1).collect();
    let a = frames.iter().filter(|f| f.0 == audio.0).count();
    assert_eq!(v.len(), 50, "{what}: video frames");
    let keys: Vec<usize> = v.iter().enumerate().filter(|(_, f)| f.keyframe).map(|(i, _)| i).collect();
    assert_eq!(keys, [0, 25], "{what}: keyframes");
    // 25 fps at 90 kHz.
    assert_eq!(v[1].timestamp.wrapping_sub(v[0].timestamp), 3600, "{what}: frame spacing");
    for (i, f) in v.iter().enumerate() {
        let nals: Vec<&[u8]> = h264::avcc_nals(&f.payload).collect();
        assert!(nals.iter().any(|n| h264::is_vcl(h264::nal_type(n[0]))), "{what}: frame {i} has a slice");
        if f.keyframe {
            assert_eq!(h264::nal_type(nals[0][0]), h264::NAL_SPS, "{what}: keyframe {i} starts with SPS");
        }
    }
    assert!((85..=90).contains(&a), "{what}: {a} AAC frames in 2 s");
    println!("{what}: {} video frames (keys {keys:?}), {a} audio frames, fmtp {}", v.len(), video.1.fmtp);
}

#[test]
fn demux_ffmpeg_mpegts() {
    if !have_ffmpeg() {
        return;
    }
    let data = ffmpeg(&format!("{FFMPEG_AV} -f mpegts -"));
    let mut d = TsDemuxer::new();
    for chunk in data.chunks(4096) {
        d.push(chunk).unwrap();
    }
    d.finish().unwrap();
    let (tracks, frames) = collect(&mut || d.poll());
    check_demuxed(&tracks, &frames, "TS");
}

#[test]
fn demux_ffmpeg_flv() {
    if !have_ffmpeg() {
        return;
    }
    let data = ffmpeg(&format!("{FFMPEG_AV} -f flv -"));
    let mut d = FlvDemuxer::new();
    for chunk in data.chunks(4096) {
        d.push(chunk).unwrap();
    }
    let (tracks, frames) = collect(&mut || d.poll());
    check_demuxed(&tracks, &frames, "FLV");
}

#[test]
fn sniff_ffmpeg_outputs() {
    use formats::{detect, Format};
    if !have_ffmpeg() {
        return;
    }
    let src = "-f lavfi -i testsrc=size=64x48:rate=5 -t 0.4 -pix_fmt yuv420p";
    assert_eq!(detect(&ffmpeg(&format!("{src} -c:v libx264 -f mpegts -"))), Some(Format::MpegTs));
    assert_eq!(detect(&ffmpeg(&format!("{src} -c:v libx264 -f flv -"))), Some(Format::Flv));
    assert_eq!(detect(&ffmpeg(&format!("{src} -c:v libx264 -f h264 -"))), Some(Format::H264));
    assert_eq!(
        detect(&ffmpeg(&format!("{src} -c:v libx265 -x265-params log-level=error -f hevc -"))),
        Some(Format::H265)
    );
    assert_eq!(detect(&ffmpeg(&format!("{src} -f mpjpeg -"))), Some(Format::Multipart));
    assert_eq!(detect(&ffmpeg(&format!("{src} -f mjpeg -"))), Some(Format::Jpeg));
    assert_eq!(
        detect(&ffmpeg(&format!("{src} -c:v libx264 -movflags frag_keyframe+empty_moov -f mp4 -"))),
        Some(Format::Mp4)
    );
}
