use super::*;
use crate::testutil::*;

type Drained = (Vec<(usize, media::Codec)>, Vec<(usize, Frame)>);

fn drain(d: &mut FlvDemuxer) -> Drained {
    let (mut tracks, mut frames) = (Vec::new(), Vec::new());
    while let Some(ev) = d.poll() {
        match ev {
            DemuxEvent::Track { index, codec, .. } => tracks.push((index, codec)),
            DemuxEvent::Frame { index, frame } => frames.push((index, frame)),
        }
    }
    (tracks, frames)
}

#[test]
fn header_layout() {
    let mut m = FlvMuxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
    let h = m.header();
    assert_eq!(&h[..13], b"FLV\x01\x05\0\0\0\x09\0\0\0\0");
    assert_eq!(h[13], TAG_SCRIPT);
    assert!(h.windows(10).any(|w| w == b"onMetaData"));
    // AVC sequence header follows with the avcC record.
    let pos = h.windows(5).position(|w| w == [0x17, 0, 0, 0, 0]).unwrap();
    assert_eq!(&h[pos + 5..pos + 9], &[1, 0x42, 0xc0, 0x1e]);
    assert!(h.windows(4).any(|w| w == [0xaf, 0, 0x12, 0x10]), "AAC sequence header");
}

#[test]
fn round_trip_h264_aac() {
    let mut m = FlvMuxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
    let mut data = m.header().to_vec();
    let mut input = Vec::new();
    let base = u32::MAX - 3000; // wraps
    for i in 0..10u32 {
        let v = h264_frame(base.wrapping_add(i * 3600), i % 5 == 0, i as u8 + 1);
        data.extend_from_slice(&m.push(0, &v).unwrap());
        input.push((0, v));
        let a = audio_frame(i * 1024, i as u8, 30);
        data.extend_from_slice(&m.push(1, &a).unwrap());
        input.push((1, a));
    }
    let mut d = FlvDemuxer::new();
    for c in data.chunks(7) {
        d.push(c).unwrap();
    }
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks.len(), 2);
    assert_eq!(tracks[0].1.fmtp, h264().fmtp.replace("42C01E", "42c01e"));
    assert!(tracks[1].1.fmtp.ends_with("config=1210"));
    assert_eq!(frames.len(), 20);
    for idx in 0..2 {
        let a: Vec<&Frame> = input.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        let b: Vec<&Frame> = frames.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.payload, y.payload);
            assert_eq!(x.keyframe, y.keyframe);
            let clock = if idx == 0 { 90 } else { 44 };
            let (dx, dy) = (x.timestamp.wrapping_sub(a[0].timestamp), y.timestamp.wrapping_sub(b[0].timestamp));
            assert!(dx.abs_diff(dy) <= clock, "ms precision: {dx} vs {dy}");
        }
    }
}

#[test]
fn round_trip_h265_enhanced() {
    let mut m = FlvMuxer::new(&[(Kind::Video, h265())]).unwrap();
    let mut data = m.header().to_vec();
    let p = media::h265::parse_sprop_parameter_sets(H265_FMTP);
    let idr = avcc(&[&p.vps[0], &p.sps[0], &p.pps[0], &[0x26, 0x01, 0xaf, 0x11]]);
    let key = Frame { timestamp: 0, keyframe: true, payload: idr.clone(), rtp: vec![] };
    let delta = Frame { timestamp: 3000, keyframe: false, payload: avcc(&[&[0x02, 0x01, 0xd0, 0x22]]), rtp: vec![] };
    data.extend_from_slice(&m.push(0, &key).unwrap());
    data.extend_from_slice(&m.push(0, &delta).unwrap());
    assert!(data.windows(5).any(|w| w == b"\x90hvc1"));
    let mut d = FlvDemuxer::new();
    d.push(&data).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks[0].1.name, "H265");
    assert_eq!(tracks[0].1.fmtp, H265_FMTP);
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[0].1.payload, idr);
    assert!(frames[0].1.keyframe && !frames[1].1.keyframe);
    assert_eq!(frames[1].1.timestamp, 2970, "33 ms at 90 kHz");
}

#[test]
fn errors_name_the_problem() {
    let mut d = FlvDemuxer::new();
    let e = d.push(b"RIFF1234567890").unwrap_err();
    assert!(e.to_string().contains("signature"), "{e}");
    assert!(d.push(b"FLV").is_err(), "stays failed");

    let mut d = FlvDemuxer::new();
    let mut data = b"FLV\x01\x01\0\0\0\x09\0\0\0\0".to_vec();
    data.extend_from_slice(&[9, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0]);
    let e = d.push(&data).unwrap_err();
    assert!(matches!(e, FormatError::TooLarge { what: "FLV tag", .. }), "{e}");

    // A NAL length running past the tag.
    let mut m = FlvMuxer::new(&[(Kind::Video, h264())]).unwrap();
    let mut data = m.header().to_vec();
    let mut f = m.push(0, &h264_frame(0, false, 3)).unwrap().to_vec();
    f[11 + 5 + 3] = 0x7f; // first NAL length low byte
    data.extend_from_slice(&f);
    let mut d = FlvDemuxer::new();
    let e = d.push(&data).unwrap_err();
    assert!(e.to_string().contains("runs past the tag"), "{e}");

    // Broken avcC.
    let mut d = FlvDemuxer::new();
    let mut data = b"FLV\x01\x01\0\0\0\x09\0\0\0\0".to_vec();
    write_tag(&mut data, TAG_VIDEO, 0, &[0x17, 0, 0, 0, 0, 1, 0x42]);
    let e = d.push(&data).unwrap_err();
    assert!(e.to_string().contains("decoder configuration record"), "{e}");
}

#[test]
fn g711_tags() {
    let mut m = FlvMuxer::new(&[(Kind::Audio, Codec::new("PCMA", 8000, 1, 8))]).unwrap();
    let mut data = m.header().to_vec();
    data.extend_from_slice(&m.push(0, &audio_frame(0, 0xd5, 160)).unwrap());
    data.extend_from_slice(&m.push(0, &audio_frame(160, 0xd5, 160)).unwrap());
    let mut d = FlvDemuxer::new();
    d.push(&data).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks[0].1.name, "PCMA");
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].1.timestamp, 160);
}
