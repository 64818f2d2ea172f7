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

fn hexb(s: &str) -> Vec<u8> {
    (0..s.len() / 2).map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap()).collect()
}

fn flv_of(tags: &[(u8, u32, Vec<u8>)]) -> Vec<u8> {
    let mut data = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
    for (t, ts, body) in tags {
        write_tag(&mut data, *t, *ts, body);
    }
    data
}

/// The sequence starts of ffmpeg 9's FLV muxer (`-c:v libsvtav1 -c:a libopus`, `-c:v libvpx-vp9`),
/// byte for byte, then frames: AV1 and VP9 coded frames have no composition time; Opus is timed in
/// 48 kHz; the multichannel config and the colorInfo metadata are skipped.
#[test]
fn ffmpeg9_av1_vp9_opus_sequence_starts() {
    let av1_seq = hexb("906176303181000c000a0b0200000521e7fde017c002");
    let opus_seq = hexb("904f7075734f707573486561640101380180bb0000000000");
    let opus_mc = hexb("944f707573010100000004");
    let meta = hexb("d461763031020009636f6c6f72496e666f03000b636f6c6f72436f6e66696703000009000009");
    let mut key = b"\x91av01".to_vec();
    key.extend_from_slice(&[0x12, 0x00, 0x0a, 0x0b]);
    let mut inter = b"\xa1av01".to_vec();
    inter.extend_from_slice(&[0x32, 0x01, 0x10]);
    let data = flv_of(&[
        (TAG_VIDEO, 0, av1_seq),
        (TAG_AUDIO, 0, opus_seq),
        (TAG_AUDIO, 0, opus_mc),
        (TAG_VIDEO, 7, meta),
        (TAG_VIDEO, 7, key.clone()),
        (TAG_AUDIO, 21, b"\x91Opus\xf8\x01\x02".to_vec()),
        (TAG_VIDEO, 47, inter),
    ]);
    let mut d = FlvDemuxer::new();
    d.push(&data).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks[0].1.name, "AV1");
    assert_eq!(tracks[0].1.fmtp, "profile=0;level-idx=0;tier=0;config=81000C000A0B0200000521E7FDE017C002");
    assert_eq!((tracks[1].1.name.as_str(), tracks[1].1.clock_rate, tracks[1].1.channels), ("OPUS", 48000, 2));
    assert_eq!(tracks[1].1.fmtp, "sprop-stereo=0");
    let got: Vec<(usize, u32, bool, &[u8])> =
        frames.iter().map(|(i, f)| (*i, f.timestamp, f.keyframe, &f.payload[..])).collect();
    assert_eq!(
        got,
        [
            (0, 630, true, &[0x12, 0x00, 0x0a, 0x0b][..]),
            (1, 21 * 48, true, &[0xf8, 1, 2][..]),
            (0, 47 * 90, false, &[0x32, 1, 0x10][..])
        ]
    );

    let mut d = FlvDemuxer::new();
    d.push(&flv_of(&[(TAG_VIDEO, 0, hexb("9076703039010000000114870202000000"))])).unwrap();
    let (tracks, _) = drain(&mut d);
    assert_eq!(tracks[0].1.name, "VP9");
    assert_eq!(tracks[0].1.fmtp, "profile-id=1;config=010000000114870202000000");
}

/// ffmpeg 9 writes a second audio track as multitrack packets (OneTrack, track id 1): each track is a
/// stream of its own, the first from the classic AAC tags.
#[test]
fn multitrack_audio_gives_one_stream_per_track() {
    let data = flv_of(&[
        (TAG_AUDIO, 0, hexb("af00118856e500")),
        (TAG_AUDIO, 0, hexb("95004f707573014f707573486561640102380180bb0000000000")),
        (TAG_AUDIO, 0, hexb("95044f70757301010100000004")),
        (TAG_AUDIO, 20, b"\xaf\x01AAC".to_vec()),
        (TAG_AUDIO, 20, b"\x95\x01Opus\x01OPUS".to_vec()),
        (TAG_AUDIO, 30, b"\x95\x01Opus\x07dropped".to_vec()), // a track never started
    ]);
    let mut d = FlvDemuxer::new();
    d.push(&data).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks.len(), 2);
    assert_eq!((tracks[0].0, tracks[0].1.name.as_str()), (0, "MPEG4-GENERIC"));
    assert_eq!((tracks[1].0, tracks[1].1.name.as_str()), (1, "OPUS"));
    assert_eq!(tracks[1].1.fmtp, "sprop-stereo=1");
    let got: Vec<(usize, &[u8])> = frames.iter().map(|(i, f)| (*i, &f.payload[..])).collect();
    assert_eq!(got, [(0, &b"AAC"[..]), (1, &b"OPUS"[..])]);
}

#[test]
fn round_trip_av1_vp9_opus() {
    for (name, record) in [("AV1", "81000C000A0B0200000521E7FDE017C002"), ("VP9", "010000000114870202000000")] {
        let video = match name {
            "AV1" => av1_codec(&hexb(record)).unwrap(),
            _ => vp9_codec(&hexb(record)).unwrap(),
        };
        let opus = Codec::new("OPUS", 48000, 2, 111).with_fmtp("sprop-stereo=1");
        let mut m = FlvMuxer::new(&[(Kind::Video, video.clone()), (Kind::Audio, opus)]).unwrap();
        let mut data = m.header().to_vec();
        assert!(data.windows(5).any(|w| w == b"\x90Opus"), "Opus sequence start in the header");
        let fourcc: &[u8] = if name == "AV1" { b"\x90av01" } else { b"\x90vp09" };
        assert!(data.windows(5).any(|w| w == fourcc));
        for i in 0..4u32 {
            let v = Frame { timestamp: i * 3600, keyframe: i == 0, payload: vec![i as u8; 9].into(), rtp: vec![] };
            data.extend_from_slice(&m.push(0, &v).unwrap());
            data.extend_from_slice(&m.push(1, &audio_frame(i * 960, 0xfc, 20)).unwrap());
        }
        let mut d = FlvDemuxer::new();
        for c in data.chunks(5) {
            d.push(c).unwrap();
        }
        let (tracks, frames) = drain(&mut d);
        assert_eq!(tracks[0].1, video, "{name}: the record survives");
        assert_eq!((tracks[1].1.name.as_str(), tracks[1].1.fmtp.as_str()), ("OPUS", "sprop-stereo=1"));
        let video_frames: Vec<&Frame> = frames.iter().filter(|f| f.0 == 0).map(|f| &f.1).collect();
        assert_eq!(video_frames.len(), 4);
        assert!(video_frames[0].keyframe && !video_frames[1].keyframe);
        assert_eq!(video_frames[2].timestamp, 80 * 90);
        assert_eq!(frames.iter().filter(|f| f.0 == 1).count(), 4);
    }
    let e = FlvMuxer::new(&[(Kind::Video, Codec::new("AV1", 90000, 0, 96).with_fmtp("config=8"))]).err().unwrap();
    assert!(e.to_string().contains("configuration record"), "{e}");
}

/// AV1 and VP9 without `config=` (an RTSP SDP): frames before the first keyframe are dropped, the
/// sequence start comes with it and holds the record ffmpeg 9's FLV muxer writes for the same stream
/// (`-c:v libsvtav1` / `libvpx-vp9`, 320x240 yuv420p testsrc) and our fMP4 muxer's `av1C`/`vpcC`; the
/// demuxer reads it back at 320x240.
#[test]
fn av1_vp9_records_from_the_first_keyframe() {
    // ffmpeg's av1C is libsvtav1's global header; its keyframes carry the sequence header with other
    // bits in the last bytes (decoder model/operating point fields), so compare the av1C fields.
    let av1c_ffmpeg = hexb("81000c000a0b0200000521e7fde017c002");
    let mut av1_key = hexb("12000a0b0200000521e7fde257c802"); // temporal delimiter + sequence header
    av1_key.extend_from_slice(&[0x32, 0x02, 0x10, 0x00]); // a frame OBU
    let vpcc_ffmpeg = hexb("010000000014820202020000");
    let vp9_key = hexb("824983420013f00ef60638241c184a0009405062feff7fe8");
    let frame = |keyframe: bool, payload: &[u8]| Frame {
        timestamp: 0,
        keyframe,
        payload: payload.to_vec().into(),
        rtp: vec![],
    };
    for (name, key, ffmpeg, fourcc) in [("AV1", av1_key, av1c_ffmpeg, b"av01"), ("VP9", vp9_key, vpcc_ffmpeg, b"vp09")]
    {
        let bare = Codec::new(name, 90000, 0, 96);
        let mut m = FlvMuxer::new(&[(Kind::Video, bare.clone())]).unwrap();
        let header = m.header();
        assert!(!header.windows(4).any(|w| w == fourcc), "{name}: no sequence start before a keyframe");
        assert!(m.push(0, &frame(false, &key[..4])).unwrap().is_empty(), "{name}: an inter frame first is dropped");
        let tags = m.push(0, &frame(true, &key)).unwrap();
        let size = u32::from_be_bytes([0, tags[1], tags[2], tags[3]]) as usize;
        assert_eq!(&tags[11..16], [&[0x90][..], fourcc].concat(), "{name}: a sequence start first");
        let record = &tags[16..11 + size];
        assert_eq!(&tags[11 + size + 4 + 11..][..5], [&[0x91][..], fourcc].concat(), "{name}: then the keyframe");
        let fmp4 = crate::fmp4::Visual::from_keyframe(&bare, &key).unwrap();
        assert_eq!(record, fmp4.record, "{name}: the fMP4 muxer's record");
        if name == "AV1" {
            assert_eq!(record[..4], ffmpeg[..4], "{name}: ffmpeg's av1C fields");
            assert_eq!(record[4..], key[2..key.len() - 4], "{name}: the keyframe's sequence header");
        } else {
            assert_eq!(record, ffmpeg, "{name}: ffmpeg's vpcC");
        }
        let inter = m.push(0, &frame(false, &key[..4])).unwrap();
        assert_eq!(&inter[11..16], [&[0xa1][..], fourcc].concat(), "{name}: inter frames follow, no new record");
        let mut data = header.to_vec();
        data.extend_from_slice(&tags);
        let mut d = FlvDemuxer::new();
        d.push(&data).unwrap();
        let (tracks, frames) = drain(&mut d);
        let v = crate::fmp4::Visual::from_keyframe(&tracks[0].1, &frames[0].1.payload).unwrap();
        assert_eq!((tracks[0].1.name.as_str(), v.width, v.height), (name, 320, 240));
    }
}

/// H.265 as classic codec id 12 (Chinese cameras, old OBS builds) and as `avc1` via FourCC.
#[test]
fn legacy_h265_codec_12_and_avc1_fourcc() {
    let p = media::h265::parse_sprop_parameter_sets(H265_FMTP);
    let idr = avcc(&[&p.vps[0], &p.sps[0], &p.pps[0], &[0x26, 0x01, 0xaf, 0x11]]);
    let mut m = FlvMuxer::new(&[(Kind::Video, h265())]).unwrap();
    let header = m.header();
    let seq = header.windows(5).position(|w| w == b"\x90hvc1").unwrap();
    let record_len = header.len() - (seq + 5) - 4;
    let record = &header[seq + 5..seq + 5 + record_len];
    let mut legacy_seq = vec![0x1c, 0, 0, 0, 0];
    legacy_seq.extend_from_slice(record);
    let mut legacy_key = vec![0x1c, 1, 0, 0, 0];
    legacy_key.extend_from_slice(&idr);
    let mut d = FlvDemuxer::new();
    d.push(&flv_of(&[(TAG_VIDEO, 0, legacy_seq), (TAG_VIDEO, 0, legacy_key)])).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!((tracks[0].1.name.as_str(), tracks[0].1.fmtp.as_str()), ("H265", H265_FMTP));
    assert_eq!(frames[0].1.payload, idr);

    let mut m = FlvMuxer::new(&[(Kind::Video, h264())]).unwrap();
    let header = m.header();
    let seq = header.windows(5).position(|w| w == [0x17, 0, 0, 0, 0]).unwrap();
    let record = &header[seq + 5..header.len() - 4];
    let mut ex_seq = b"\x90avc1".to_vec();
    ex_seq.extend_from_slice(record);
    let f = h264_frame(0, true, 7);
    let mut ex_key = b"\x91avc1\x00\x00\x28".to_vec(); // CodedFrames, CTS 40 ms
    ex_key.extend_from_slice(&f.payload);
    let mut d = FlvDemuxer::new();
    d.push(&flv_of(&[(TAG_VIDEO, 0, ex_seq), (TAG_VIDEO, 0, ex_key)])).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert_eq!(tracks[0].1.name, "H264");
    assert_eq!((frames[0].1.timestamp, frames[0].1.keyframe), (40 * 90, true));
}

#[test]
fn bad_enhanced_records_name_the_problem() {
    let mut d = FlvDemuxer::new();
    let e = d.push(&flv_of(&[(TAG_VIDEO, 0, b"\x90av01\x01\x00".to_vec())])).unwrap_err();
    assert!(e.to_string().contains("av1C"), "{e}");
    let mut d = FlvDemuxer::new();
    let e = d.push(&flv_of(&[(TAG_AUDIO, 0, b"\x90OpusOpusHea".to_vec())])).unwrap_err();
    assert!(e.to_string().contains("OpusHead"), "{e}");
    let mut d = FlvDemuxer::new();
    let e = d.push(&flv_of(&[(TAG_VIDEO, 0, b"\x96\x00hvc1".to_vec())])).unwrap_err();
    assert!(e.to_string().contains("truncated track id"), "{e}");
    // Opus with 6 channels (mapping family 1): not announced.
    let mut d = FlvDemuxer::new();
    let mut head = b"\x90OpusOpusHead\x01\x06\x38\x01\x80\xbb\0\0\0\0\x01".to_vec();
    head.extend_from_slice(&[4, 2, 0, 4, 1, 2, 3, 5]);
    d.push(&flv_of(&[(TAG_AUDIO, 0, head), (TAG_AUDIO, 0, b"\x91Opusxx".to_vec())])).unwrap();
    let (tracks, frames) = drain(&mut d);
    assert!(tracks.is_empty() && frames.is_empty());
}

/// A keyframe whose AV1 sequence header describes another picture than the track's `av1C` (a
/// publisher taking over an `alwaysAvailable` slate's track) gets an `av01` sequence start with its
/// own `av1C` first; the same sequence header again, and inter frames, do not.
#[test]
fn av1_sequence_start_follows_a_new_sequence_header() {
    let rec320 = hexb("81000C000A0B000000043CFFBC02F80040"); // 320x240 (libsvtav1)
    let seq640 = hexb("0a0b0000000cc4ff6736be4010"); // 640x360 (libaom-av1, the offline slate)
    let tu = |seq: &[u8]| {
        let mut t = vec![0x12, 0x00];
        t.extend_from_slice(seq);
        t.extend_from_slice(&[0x32, 0x02, 0x10, 0x00]);
        t
    };
    let frame =
        |keyframe: bool, payload: Vec<u8>| Frame { timestamp: 0, keyframe, payload: payload.into(), rtp: vec![] };
    let mut m = FlvMuxer::new(&[(Kind::Video, av1_codec(&rec320).unwrap())]).unwrap();
    assert!(m.header().windows(5).any(|w| w == b"\x90av01"));
    let same = m.push(0, &frame(true, tu(&rec320[4..]))).unwrap();
    assert!(!same.windows(5).any(|w| w == b"\x90av01"), "the same sequence header: no sequence start");
    let other = m.push(0, &frame(true, tu(&seq640))).unwrap();
    let size = u32::from_be_bytes([0, other[1], other[2], other[3]]) as usize;
    assert_eq!(&other[11..16], b"\x90av01", "a sequence start before the new picture's keyframe");
    let record = &other[16..11 + size];
    let v = crate::fmp4::Visual::from_codec(&av1_codec(record).unwrap()).unwrap();
    assert_eq!((v.width, v.height), (640, 360));
    assert_eq!(&other[11 + size + 4 + 11..][..5], b"\x91av01", "then the keyframe");
    assert!(!m.push(0, &frame(false, vec![0x32, 0x02, 0x30, 0x00])).unwrap().windows(5).any(|w| w == b"\x90av01"));
    assert!(!m.push(0, &frame(true, tu(&seq640))).unwrap().windows(5).any(|w| w == b"\x90av01"));
    let back = m.push(0, &frame(true, tu(&rec320[4..]))).unwrap();
    let size = u32::from_be_bytes([0, back[1], back[2], back[3]]) as usize;
    let v = crate::fmp4::Visual::from_codec(&av1_codec(&back[16..11 + size]).unwrap()).unwrap();
    assert_eq!((v.width, v.height), (320, 240), "and back");
}
