use super::*;
use crate::testutil::*;
use crate::DemuxEvent;
use media::{Frame, Kind};

type Drained = (Vec<(usize, media::Codec)>, Vec<(usize, Frame)>);

fn drain(d: &mut TsDemuxer) -> Drained {
    let (mut tracks, mut frames) = (Vec::new(), Vec::new());
    while let Some(ev) = d.poll() {
        match ev {
            DemuxEvent::Track { index, codec, .. } => tracks.push((index, codec)),
            DemuxEvent::Frame { index, frame } => frames.push((index, frame)),
        }
    }
    (tracks, frames)
}

fn mux_sample() -> (Vec<u8>, Vec<(usize, Frame)>) {
    let mut m = TsMuxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
    let mut out = Vec::new();
    let mut input = Vec::new();
    let base = u32::MAX - 6000; // video wraps during the test
    for i in 0..12u32 {
        let mut v = h264_frame(base.wrapping_add(i * 3000), i % 6 == 0, i as u8 + 1);
        if i == 3 {
            // a big frame spanning many packets
            let mut p = v.payload.to_vec();
            p.extend_from_slice(&(70_000u32).to_be_bytes());
            p.push(0x41);
            p.extend(std::iter::repeat(0x5a).take(69_999));
            v.payload = p.into();
        }
        out.extend_from_slice(&m.push(0, &v).unwrap());
        input.push((0, v));
        let a = audio_frame(i * 1024, 0x20 + i as u8, 50 + i as usize);
        out.extend_from_slice(&m.push(1, &a).unwrap());
        input.push((1, a));
    }
    (out, input)
}

#[test]
fn packets_are_aligned_with_continuity() {
    let (ts, _) = mux_sample();
    assert_eq!(ts.len() % PACKET_SIZE, 0);
    let mut cc = std::collections::HashMap::new();
    for p in ts.chunks(PACKET_SIZE) {
        assert_eq!(p[0], SYNC_BYTE);
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let c = p[3] & 0x0f;
        if let Some(prev) = cc.insert(pid, c) {
            assert_eq!(c, (prev + 1) & 0x0f, "continuity on PID {pid:#x}");
        }
    }
    // PAT first, then PMT; PCR on the first video packet.
    assert_eq!(&ts[1..3], &[0x40, 0x00]);
    let video = &ts[2 * PACKET_SIZE..3 * PACKET_SIZE];
    assert_eq!(video[3] & 0x30, 0x30);
    assert_eq!(video[5] & 0x50, 0x50, "PCR + random access flags");
}

#[test]
fn round_trip() {
    let (ts, input) = mux_sample();
    let mut d = TsDemuxer::new();
    // Feed in odd chunks.
    for chunk in ts.chunks(1000) {
        d.push(chunk).unwrap();
    }
    d.finish().unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].1.name, "H264");
    assert!(tracks[0].1.fmtp.contains("sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg=="));
    assert_eq!(tracks[1].1.name, "MPEG4-GENERIC");
    assert_eq!((tracks[1].1.clock_rate, tracks[1].1.channels), (44100, 2));
    assert!(tracks[1].1.fmtp.ends_with("config=1210"), "{}", tracks[1].1.fmtp);
    assert_eq!(frames.len(), input.len());
    for idx in 0..2 {
        let a: Vec<&Frame> = input.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        let b: Vec<&Frame> = frames.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.payload, y.payload);
            assert_eq!(x.keyframe, y.keyframe);
            let (dx, dy) = (x.timestamp.wrapping_sub(a[0].timestamp), y.timestamp.wrapping_sub(b[0].timestamp));
            // AAC goes through 90 kHz: allow rounding.
            assert!(dx.abs_diff(dy) <= 1, "track {idx}: {dx} vs {dy}");
        }
    }
}

#[test]
fn resync_after_garbage_and_loss() {
    let (ts, _) = mux_sample();
    let mut data = vec![0x47, 1, 2, 3, 0x47, 9];
    data.extend_from_slice(&ts[..PACKET_SIZE * 6]);
    data.extend_from_slice(&[0xde, 0xad]);
    data.extend_from_slice(&ts[PACKET_SIZE * 6..]);
    let mut d = TsDemuxer::new();
    let _ = d.push(&data);
    d.finish().unwrap();
    assert!(d.resyncs() >= 1);
    let (_, frames) = drain(&mut d);
    assert!(frames.len() >= 20, "most frames survive: {}", frames.len());
}

#[test]
fn oversize_pes_is_an_error() {
    let mut m = TsMuxer::new(&[(Kind::Video, h264())]).unwrap();
    let mut d = TsDemuxer::new();
    d.push(&m.push(0, &h264_frame(0, true, 1)).unwrap()).unwrap();
    let mut big = h264_frame(3000, false, 1);
    let len = MAX_PES_SIZE as u32 + 10;
    let mut p = (len).to_be_bytes().to_vec();
    p.push(0x41);
    p.resize(len as usize + 4, 0x77);
    big.payload = p.into();
    let err = d.push(&m.push(0, &big).unwrap()).unwrap_err();
    assert!(matches!(err, crate::FormatError::TooLarge { .. }), "{err}");
}

#[test]
fn garbage_never_panics() {
    let mut d = TsDemuxer::new();
    let mut x = 12345u32;
    let mut data = vec![0u8; 188 * 50];
    for (i, b) in data.iter_mut().enumerate() {
        x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
        *b = if i % 188 == 0 { 0x47 } else { (x >> 16) as u8 };
    }
    let _ = d.push(&data);
    let _ = d.finish();
}

#[test]
fn unsupported_codec() {
    assert!(TsMuxer::new(&[(Kind::Audio, media::Codec::new("PCMA", 8000, 1, 8))]).is_err());
}
