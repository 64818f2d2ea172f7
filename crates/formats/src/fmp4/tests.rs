use super::*;
use crate::testutil::*;

#[test]
fn init_segment_from_fmtp() {
    let m = Fmp4Muxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
    let init = m.init_segment().expect("known from fmtp");
    let top: Vec<[u8; 4]> = boxes(&init).iter().map(|b| b.kind).collect();
    assert_eq!(top, [*b"ftyp", *b"moov"]);
    let avcc = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1", "avcC"]).unwrap();
    assert_eq!(&avcc[..5], &[1, 0x42, 0xc0, 0x1e, 0xff]);
    let avc1 = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1"]).unwrap();
    assert_eq!((u16::from_be_bytes([avc1[24], avc1[25]]), u16::from_be_bytes([avc1[26], avc1[27]])), (640, 480));
    let mdhd = find(&init, &["moov", "trak", "mdia", "mdhd"]).unwrap();
    assert_eq!(be32(mdhd, 12), 90000);
    assert_eq!(m.mime_type().unwrap(), r#"video/mp4; codecs="avc1.42C01E,mp4a.40.2""#);
    // The AAC track: second trak, esds carries the config 12 10.
    let moov = find(&init, &["moov"]).unwrap();
    let traks: Vec<_> = boxes(moov).into_iter().filter(|b| &b.kind == b"trak").collect();
    assert_eq!(traks.len(), 2);
    let esds = find(traks[1].body, &["mdia", "minf", "stbl", "stsd", "mp4a", "esds"]).unwrap();
    assert!(esds.windows(4).any(|w| w == [0x05, 0x80, 0x80, 0x80]) && esds.windows(2).any(|w| w == [0x12, 0x10]));
}

#[test]
fn init_waits_for_keyframe_without_sprop() {
    let mut m = Fmp4Muxer::new(&[(Kind::Video, Codec::new("H264", 90000, 0, 96))]).unwrap();
    assert!(m.init_segment().is_none());
    assert!(m.mime_type().is_none());
    m.push(0, &h264_frame(0, false, 1)).unwrap();
    assert!(m.init_segment().is_none() && m.fragment().is_none());
    m.push(0, &h264_frame(3000, true, 2)).unwrap();
    assert!(m.init_segment().is_some());
    assert!(m.fragment().is_some());
}

#[test]
fn h265_and_opus_and_flac_entries() {
    let m = Fmp4Muxer::new(&[
        (Kind::Video, h265()),
        (Kind::Audio, Codec::new("OPUS", 48000, 2, 111)),
        (Kind::Audio, Codec::new("PCMA", 8000, 1, 8)),
    ])
    .unwrap();
    let init = m.init_segment().unwrap();
    let hvcc = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "hvc1", "hvcC"]).unwrap();
    assert_eq!(hvcc[0], 1);
    assert_eq!(hvcc[22], 3, "three parameter set arrays");
    let mime = m.mime_type().unwrap();
    assert!(mime.starts_with("video/mp4; codecs=\"hvc1.1.6.L120"), "{mime}");
    assert!(mime.ends_with(",opus,flac\""), "{mime}");
    assert!(init.windows(4).any(|w| w == b"dOps"));
    assert!(init.windows(4).any(|w| w == b"dfLa"));
}

#[test]
fn unsupported_codecs_are_named() {
    let e = Fmp4Muxer::new(&[(Kind::Video, Codec::new("VP8", 90000, 0, 96))]).err().unwrap();
    assert!(e.to_string().contains("VP8"), "{e}");
    let e = Fmp4Muxer::new(&[(Kind::Audio, Codec::new("MPEG4-GENERIC", 44100, 2, 96))]).err().unwrap();
    assert!(e.to_string().contains("config="), "{e}");
}

/// Per-track (tfdt, [(duration, size, flags)]) of a fragment.
type Traf = (u32, u64, Vec<(u32, u32, u32)>);

fn parse_fragment(frag: &[u8]) -> Vec<Traf> {
    let top = boxes(frag);
    assert_eq!(&top[0].kind, b"moof");
    assert_eq!(&top[1].kind, b"mdat");
    let moof_len = top[0].body.len() + 8;
    let mut out = Vec::new();
    let mut data_total = 0;
    for traf in boxes(top[0].body).into_iter().filter(|b| &b.kind == b"traf") {
        let tfhd = find(traf.body, &["tfhd"]).unwrap();
        let tfdt = find(traf.body, &["tfdt"]).unwrap();
        let trun = find(traf.body, &["trun"]).unwrap();
        let n = be32(trun, 4) as usize;
        let off = be32(trun, 8) as usize;
        assert_eq!(off, moof_len + 8 + data_total, "data offset points into mdat");
        let samples: Vec<(u32, u32, u32)> =
            (0..n).map(|i| (be32(trun, 12 + 12 * i), be32(trun, 16 + 12 * i), be32(trun, 20 + 12 * i))).collect();
        data_total += samples.iter().map(|s| s.1 as usize).sum::<usize>();
        out.push((be32(tfhd, 4), u64::from_be_bytes(tfdt[4..12].try_into().unwrap()), samples));
    }
    assert_eq!(data_total + 8, top[1].body.len() + 8);
    out
}

#[test]
fn per_frame_fragments_with_wraparound() {
    let mut m = Fmp4Muxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
    let start = u32::MAX - 3000 * 2 + 1; // wraps after two frames
    m.push(1, &audio_frame(100, 1, 10)).unwrap(); // before video starts: dropped
    assert!(m.fragment().is_none());
    m.push(0, &h264_frame(start, true, 1)).unwrap();
    let f = parse_fragment(&m.fragment().unwrap());
    assert_eq!(f.len(), 1);
    assert_eq!((f[0].0, f[0].1), (1, 0));
    assert_eq!(f[0].2[0].2, 0x0200_0000, "sync sample");
    m.push(1, &audio_frame(1000, 2, 10)).unwrap();
    m.push(1, &audio_frame(2024, 3, 11)).unwrap();
    assert!(m.fragment().is_none(), "audio waits for the next video frame");
    m.push(0, &h264_frame(start.wrapping_add(3000), false, 2)).unwrap();
    let f = parse_fragment(&m.fragment().unwrap());
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].0, f[0].1), (1, 3000));
    assert_eq!(f[0].2[0], (3000, 9, 0x0101_0000));
    assert_eq!((f[1].0, f[1].1), (2, 0));
    assert_eq!(f[1].2, vec![(1024, 10, 0x0200_0000), (1024, 11, 0x0200_0000)]);
    m.push(0, &h264_frame(start.wrapping_add(6000), false, 3)).unwrap(); // == 0 after wrap... +1
    m.push(0, &h264_frame(start.wrapping_add(9600), false, 4)).unwrap();
    let _ = m.fragment().unwrap();
    let f = parse_fragment(&m.fragment().unwrap());
    assert_eq!(f[0].1, 9600, "tfdt unwrapped across the 32-bit wrap");
    assert_eq!(f[0].2[0].0, 3600, "duration = previous delta");
}

#[test]
fn per_gop_fragments() {
    let mut m = Fmp4Muxer::with_policy(&[(Kind::Video, h264())], FragmentPolicy::PerGop).unwrap();
    for i in 0..10u32 {
        m.push(0, &h264_frame(i * 3000, i % 5 == 0, i as u8)).unwrap();
    }
    let f = parse_fragment(&m.fragment().unwrap());
    assert_eq!(f[0].1, 0);
    assert_eq!(f[0].2.len(), 5);
    assert_eq!(f[0].2[0].2, 0x0200_0000);
    assert!(f[0].2[1..].iter().all(|s| s.0 == 3000 && s.2 == 0x0101_0000));
    assert!(m.fragment().is_none(), "second GOP still open");
    m.flush();
    let f = parse_fragment(&m.fragment().unwrap());
    assert_eq!((f[0].1, f[0].2.len()), (15000, 5));
}

#[test]
fn flac_repack_fragments() {
    let mut m = Fmp4Muxer::new(&[(Kind::Audio, Codec::new("PCMU", 8000, 1, 0))]).unwrap();
    m.push(0, &audio_frame(0, 0xff, 160)).unwrap();
    m.push(0, &audio_frame(160, 0xff, 160)).unwrap();
    let f1 = m.fragment().unwrap();
    let p = parse_fragment(&f1);
    assert_eq!(p[0].2[0].0, 160, "nominal duration from the block length");
    let mdat = &boxes(&f1)[1];
    assert_eq!(&mdat.body[..2], &[0xff, 0xf9], "FLAC frame sync");
    let p = parse_fragment(&m.fragment().unwrap());
    assert_eq!(p[0].1, 160);
}

#[test]
fn bad_track_index() {
    let mut m = Fmp4Muxer::new(&[(Kind::Video, h264())]).unwrap();
    assert_eq!(m.push(3, &h264_frame(0, true, 0)), Err(FormatError::TrackIndex(3)));
}

#[test]
fn av1_vp9_and_mjpeg_entries() {
    // AV1 with its av1C in the fmtp (as the FLV demuxer gives it): the init at once.
    let av1 = Codec::new("AV1", 90000, 0, 96).with_fmtp("config=81000C000A0B000000043CFFBC02F80040");
    let m = Fmp4Muxer::new(&[(Kind::Video, av1)]).unwrap();
    let init = m.init_segment().expect("av1C holds the sequence header");
    let av01 = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "av01"]).unwrap();
    assert_eq!((u16::from_be_bytes([av01[24], av01[25]]), u16::from_be_bytes([av01[26], av01[27]])), (320, 240));
    let av1c = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "av01", "av1C"]).unwrap();
    assert_eq!(av1c[..4], [0x81, 0, 0x0c, 0]);
    assert_eq!(m.mime_type().unwrap(), r#"video/mp4; codecs="av01.0.00M.08""#);

    // VP9: the size comes with the first keyframe.
    let mut m = Fmp4Muxer::new(&[(Kind::Video, Codec::new("VP9", 90000, 0, 96))]).unwrap();
    assert!(m.init_segment().is_none());
    let key = Frame {
        timestamp: 0,
        keyframe: true,
        payload: Bytes::from(hex_bytes("824983420013F00EF60838241C184A00").unwrap()),
        rtp: Vec::new(),
    };
    m.push(0, &key).unwrap();
    let init = m.init_segment().expect("learned from the keyframe");
    let vpcc = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "vp09", "vpcC"]).unwrap();
    assert_eq!(vpcc, [1, 0, 0, 0, 0, 20, 0x82, 2, 2, 2, 0, 0]);
    assert_eq!(m.mime_type().unwrap(), r#"video/mp4; codecs="vp09.00.20.08""#);
    assert!(m.fragment().is_some());

    // MJPEG: mp4v whose esds names JPEG (0x6C); every frame a sync sample.
    let mut m = Fmp4Muxer::new(&[(Kind::Video, Codec::new("JPEG", 90000, 0, 26))]).unwrap();
    let mut jpeg = vec![0xff, 0xd8, 0xff, 0xc0, 0, 11, 8, 0, 240, 1, 64, 1, 1, 0x11, 0, 0xff, 0xd9];
    let frame = |ts, payload: &[u8]| Frame {
        timestamp: ts,
        keyframe: true,
        payload: Bytes::copy_from_slice(payload),
        rtp: Vec::new(),
    };
    m.push(0, &frame(0, &jpeg)).unwrap();
    jpeg.push(0);
    m.push(0, &frame(3600, &jpeg)).unwrap();
    let init = m.init_segment().unwrap();
    let mp4v = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "mp4v"]).unwrap();
    assert_eq!((u16::from_be_bytes([mp4v[24], mp4v[25]]), u16::from_be_bytes([mp4v[26], mp4v[27]])), (320, 240));
    let esds = find(&init, &["moov", "trak", "mdia", "minf", "stbl", "stsd", "mp4v", "esds"]).unwrap();
    assert!(esds.windows(6).any(|w| w == [0x04, 0x80, 0x80, 0x80, 13, 0x6c]), "{esds:02x?}");
    let trafs = parse_fragment(&m.fragment().unwrap());
    assert_eq!(trafs[0].2[0].2, 0x0200_0000, "sync");
    assert_eq!(m.mime_type().unwrap(), r#"video/mp4; codecs="mp4v.6C""#);
}

#[test]
fn a_changed_picture_gets_a_new_init_segment_when_following() {
    // x264's baseline SPS/PPS of a 320x240 picture: another publisher taking the 640x480 stream over.
    let sps2 = hex_bytes("6742c00dd90141fb011000000300100000030320f142a480").unwrap();
    let pps2 = hex_bytes("68cb83cb20").unwrap();
    let key2 =
        |ts| Frame { timestamp: ts, keyframe: true, payload: avcc(&[&sps2, &pps2, &[0x65, 0x88, 9]]), rtp: Vec::new() };
    for follow in [false, true] {
        let mut m = Fmp4Muxer::new(&[(Kind::Video, h264()), (Kind::Audio, aac())]).unwrap();
        m.follow_changes(follow);
        m.push(0, &h264_frame(0, true, 1)).unwrap();
        m.push(1, &audio_frame(0, 7, 10)).unwrap();
        m.push(0, &h264_frame(3600, false, 2)).unwrap();
        m.push(1, &audio_frame(1024, 7, 10)).unwrap();
        m.push(0, &key2(7200)).unwrap();
        m.push(0, &h264_frame(10800, false, 3)).unwrap();
        let out: Vec<Bytes> = std::iter::from_fn(|| m.fragment()).collect();
        let kinds: Vec<[u8; 4]> = out.iter().map(|b| boxes(b)[0].kind).collect();
        if !follow {
            assert_eq!(kinds, [*b"moof"; 4], "segmenters keep one init");
            continue;
        }
        // The audio pending before the new keyframe leaves in the fragment before the new init.
        assert_eq!(kinds, [*b"moof", *b"moof", *b"moof", *b"ftyp", *b"moof", *b"moof"]);
        assert_eq!(parse_fragment(&out[2]).len(), 1, "the audio gathered since the last video frame");
        let avc1 = find(&out[3], &["moov", "trak", "mdia", "minf", "stbl", "stsd", "avc1"]).unwrap();
        assert_eq!((u16::from_be_bytes([avc1[24], avc1[25]]), u16::from_be_bytes([avc1[26], avc1[27]])), (320, 240));
        assert_eq!(m.init_segment().as_ref(), Some(&out[3]));
        // Decode times go on across the new init.
        assert_eq!(parse_fragment(&out[4])[0].1, 7200);
        // The same parameter sets again: no new init.
        m.push(0, &key2(14400)).unwrap();
        assert_eq!(boxes(&m.fragment().unwrap())[0].kind, *b"moof");
        assert!(m.fragment().is_none());
    }
}
