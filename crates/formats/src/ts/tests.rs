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

fn mp2(fill: u8) -> Vec<u8> {
    let mut f = vec![0xff, 0xfd, 0x84, 0x00]; // MPEG-1 Layer II, 128 kb/s, 48 kHz, stereo: 384 bytes
    f.resize(384, fill);
    f
}

/// H.264 + MP2 + Opus + KLV through the muxer and back: every codec announced, every payload and
/// timestamp kept (Opus and MP2 through the 90 kHz PTS, within a tick).
#[test]
fn mpa_opus_klv_round_trip() {
    let opus = media::Codec::new("OPUS", 48000, 2, 111).with_fmtp("sprop-stereo=0");
    let tracks = [
        (Kind::Video, h264()),
        (Kind::Audio, media::Codec::new("MPA", 90000, 0, 14)),
        (Kind::Audio, opus),
        (Kind::Application, media::Codec::new("SMPTE336M", 90000, 0, 96)),
    ];
    let mut m = TsMuxer::new(&tracks).unwrap();
    let mut ts = Vec::new();
    let mut input: Vec<(usize, Frame)> = Vec::new();
    let frame =
        |timestamp: u32, payload: Vec<u8>| Frame { timestamp, keyframe: true, payload: payload.into(), rtp: vec![] };
    for i in 0..6u32 {
        let v = h264_frame(i * 3000, i == 0, i as u8 + 1);
        ts.extend_from_slice(&m.push(0, &v).unwrap());
        input.push((0, v));
        // MP2: two frames in one RTP-sized unit the first time; the demuxer gives them one by one.
        let a = if i == 0 { frame(0, [mp2(1), mp2(2)].concat()) } else { frame(2160 * (i + 1), mp2(i as u8 + 2)) };
        ts.extend_from_slice(&m.push(1, &a).unwrap());
        if i == 0 {
            input.push((1, frame(0, mp2(1))));
            input.push((1, frame(2160, mp2(2))));
        } else {
            input.push((1, a));
        }
        // Opus: 20 ms CELT packets, one of 300 bytes (au_size needs a 0xff continuation byte).
        let len = if i == 2 { 300 } else { 40 + i as usize };
        let mut p = vec![0xfc];
        p.extend((0..len - 1).map(|b| b as u8 ^ i as u8));
        let o = frame(960 * i, p);
        ts.extend_from_slice(&m.push(2, &o).unwrap());
        input.push((2, o));
        let k = frame(i * 3000, [&[0x06, 0x0e, 0x2b, 0x34][..], &[i as u8; 20]].concat());
        ts.extend_from_slice(&m.push(3, &k).unwrap());
        input.push((3, k));
    }
    let mut d = TsDemuxer::new();
    for chunk in ts.chunks(333) {
        d.push(chunk).unwrap();
    }
    d.finish().unwrap();
    let (announced, frames) = drain(&mut d);
    let mut names: Vec<(usize, String, u16)> =
        announced.iter().map(|(i, c)| (*i, c.name.clone(), c.channels)).collect();
    names.sort();
    assert_eq!(names, [(0, "H264".into(), 0), (1, "MPA".into(), 2), (2, "OPUS".into(), 2), (3, "SMPTE336M".into(), 0)]);
    let opus = &announced.iter().find(|(i, _)| *i == 2).unwrap().1;
    assert_eq!((opus.clock_rate, opus.fmtp.as_str()), (48000, "sprop-stereo=0"), "mono from the channel descriptor");
    let mpa = &announced.iter().find(|(i, _)| *i == 1).unwrap().1;
    assert_eq!((mpa.clock_rate, mpa.payload_type), (90000, 14));
    for idx in 1..4 {
        let a: Vec<&Frame> = input.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        let b: Vec<&Frame> = frames.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
        assert_eq!(a.len(), b.len(), "track {idx}");
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(x.payload, y.payload, "track {idx}");
            let (dx, dy) = (x.timestamp.wrapping_sub(a[0].timestamp), y.timestamp.wrapping_sub(b[0].timestamp));
            assert!(dx.abs_diff(dy) <= 1, "track {idx}: {dx} vs {dy}");
        }
    }
    // The PMT scan counts the four streams.
    let mut scan = PmtScan::new();
    scan.push(&ts);
    assert_eq!(scan.streams(), Some(4));
}

/// ffmpeg's asynchronous KLV: a private stream 1 PES without PTS gets the latest time of the program.
#[test]
fn klv_without_pts() {
    let mut m =
        TsMuxer::new(&[(Kind::Video, h264()), (Kind::Application, media::Codec::new("SMPTE336M", 90000, 0, 96))])
            .unwrap();
    let mut ts = m.push(0, &h264_frame(9000, true, 1)).unwrap().to_vec();
    let k = m.push(1, &Frame { timestamp: 0, keyframe: true, payload: vec![7u8; 30].into(), rtp: vec![] }).unwrap();
    let mut k = k.to_vec();
    // Rewrite the KLV PES header: no PTS (flags 0x00, header length 0), PES length adjusted.
    let at = k.len() - PACKET_SIZE; // the KLV PES is in the last packet
    let p = &mut k[at..];
    let start = p.windows(4).position(|w| w == [0, 0, 1, 0xbd]).unwrap();
    let pes_len = u16::from_be_bytes([p[start + 4], p[start + 5]]) - 5;
    p[start + 4..start + 6].copy_from_slice(&pes_len.to_be_bytes());
    p[start + 7] = 0;
    p[start + 8] = 0;
    // Move the payload 5 bytes up (the PTS is gone); pad the tail with 0xff stuffing... simpler: rebuild.
    let body: Vec<u8> = p[start + 14..].to_vec();
    let mut rebuilt = p[..start + 9].to_vec();
    rebuilt.extend_from_slice(&body);
    // The packet got 5 bytes shorter: grow its adaptation field stuffing at the front instead.
    let af_len = p[4] as usize;
    let mut packet = p[..4].to_vec();
    packet[3] |= 0x20;
    packet.push((af_len + 5) as u8);
    packet.extend_from_slice(&p[5..5 + af_len]);
    packet.extend_from_slice(&[0xff; 5]);
    packet.extend_from_slice(&rebuilt[5 + af_len..]);
    assert_eq!(packet.len(), PACKET_SIZE);
    k.truncate(at);
    k.extend_from_slice(&packet);
    ts.extend_from_slice(&k);
    let mut d = TsDemuxer::new();
    d.push(&ts).unwrap();
    d.finish().unwrap();
    let (_, frames) = drain(&mut d);
    let klv: Vec<&Frame> = frames.iter().filter(|f| f.0 == 1).map(|f| &f.1).collect();
    assert_eq!(klv.len(), 1);
    assert_eq!(klv[0].payload.as_ref(), &[7u8; 30]);
    let video = frames.iter().find(|f| f.0 == 0).unwrap();
    assert_eq!(klv[0].timestamp, video.1.timestamp, "the video's PTS");
}

#[test]
fn opus_control_headers() {
    // Two access units in one PES: trims and an extension on the first.
    let mut data = vec![0x7f, 0xe0 | 0x10 | 0x08 | 0x04, 0x02, 0x00, 0x10, 0x00, 0x20, 0x01, 0xaa, 0xfc, 0x01];
    data.extend_from_slice(&[0x7f, 0xe0, 0xff, 0x01]);
    data.extend(std::iter::repeat(0xfc).take(256));
    let (a, rest) = super::demux::opus_access_unit(&data).unwrap();
    assert_eq!(a, &[0xfc, 0x01]);
    let (b, rest) = super::demux::opus_access_unit(rest).unwrap();
    assert_eq!((b.len(), rest.len()), (256, 0));
    assert!(super::demux::opus_access_unit(&[0x7f, 0xe0, 0xff]).is_err());
    assert!(super::demux::opus_access_unit(&[0x7f, 0xe0, 0x05, 1]).is_err());
    assert!(super::demux::opus_access_unit(&[0x12, 0x34]).is_err());
}
