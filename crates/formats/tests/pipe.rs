//! The pipe parser on what ffmpeg writes to a pipe (`exec:` pipe mode): H.264 / H.265 Annex B and
//! MJPEG, raw and multipart, fed in uneven chunks. Needs ffmpeg (as the `exec:` source tests did).

use formats::pipe::{PipeFormat, PipeParser, PipeUnit};
use std::process::Command;
use std::time::Instant;

fn ffmpeg_bytes(args: &str) -> Vec<u8> {
    let line = format!("-v error -f lavfi -i testsrc=size=160x120:rate=25 -frames:v 10 {args} -");
    let out = Command::new("ffmpeg").args(line.split_whitespace()).output().expect("ffmpeg");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// Feeds `data` in uneven chunks, as a pipe would deliver it.
fn parse_chunked(data: &[u8]) -> (PipeParser, Vec<PipeUnit>) {
    let mut p = PipeParser::new();
    let mut units = Vec::new();
    let now = Instant::now();
    let mut rest = data;
    let mut size = 1;
    while !rest.is_empty() {
        let n = size.min(rest.len());
        p.push(&rest[..n], now, &mut units).unwrap();
        rest = &rest[n..];
        size = size * 3 % 4093 + 1;
    }
    (p, units)
}

#[test]
fn pipe_h264_annexb() {
    let data = ffmpeg_bytes("-c:v libx264 -g 5 -bsf:v h264_mp4toannexb -f h264");
    let (p, units) = parse_chunked(&data);
    assert_eq!(p.format(), Some(PipeFormat::H264));
    // An access unit completes when the next one starts: the last one stays pending at EOF.
    assert_eq!(units.len(), 9);
    assert_eq!(units.iter().filter(|u| u.keyframe).count(), 2);
    let codec = p.codec().unwrap();
    assert_eq!(codec.name, "H264");
    assert!(codec.fmtp.contains("sprop-parameter-sets=") && codec.fmtp.contains("profile-level-id="));
    // Keyframes carry SPS and PPS; every unit is valid length-prefixed NAL units.
    let first: Vec<u8> = media::h264::avcc_nals(&units[0].payload).map(|n| n[0] & 0x1F).collect();
    assert!(first.contains(&7) && first.contains(&8) && first.contains(&5), "{first:?}");
    for u in &units {
        let mut it = media::h264::avcc_nals(&u.payload);
        assert!(it.by_ref().count() > 0 && !it.truncated());
    }
}

#[test]
fn pipe_h265_annexb() {
    let data = ffmpeg_bytes("-c:v libx265 -x265-params log-level=none:keyint=5 -f hevc");
    let (p, units) = parse_chunked(&data);
    assert_eq!(p.format(), Some(PipeFormat::H265));
    assert_eq!(units.len(), 9);
    assert!(units[0].keyframe);
    let codec = p.codec().unwrap();
    assert_eq!(codec.name, "H265");
    assert!(codec.fmtp.contains("sprop-vps=") && codec.fmtp.contains("sprop-pps="));
}

#[test]
fn pipe_mjpeg_raw_and_multipart() {
    for fmt in ["-f mjpeg", "-f mpjpeg"] {
        let data = ffmpeg_bytes(&format!("-c:v mjpeg {fmt}"));
        let (p, units) = parse_chunked(&data);
        assert_eq!(p.format(), Some(PipeFormat::Mjpeg), "{fmt}");
        assert_eq!(units.len(), 10, "{fmt}");
        for u in &units {
            assert!(u.payload.starts_with(&[0xFF, 0xD8]) && u.payload.ends_with(&[0xFF, 0xD9]));
            assert!(u.keyframe);
        }
        assert_eq!(p.codec().unwrap().name, "JPEG");
        assert_eq!(p.errors, 0);
    }
}
