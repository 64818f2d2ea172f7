#![no_main]
//! Frames from the hub carry payloads that came from the network (keyframes with in-band SPS the
//! muxers parse). Arbitrary payloads, timestamps and flags through every muxer must never panic.

use bytes::Bytes;
use formats::flv::FlvMuxer;
use formats::fmp4::{Fmp4Muxer, FragmentPolicy};
use formats::ts::TsMuxer;
use libfuzzer_sys::fuzz_target;
use media::{Codec, Frame, Kind};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    // Bits 4-5: AV1, VP9 or JPEG instead (parsed from their keyframes by the fMP4 muxer).
    let name = match (sel >> 4) & 3 {
        0 if sel & 1 == 0 => "H264",
        0 => "H265",
        1 => "AV1",
        2 => "VP9",
        _ => "JPEG",
    };
    let mut video = Codec::new(name, 90000, 0, 96);
    // Bit 0 for AV1/VP9: with their configuration record (as from Enhanced RTMP); its keyframes' other
    // sequence headers then give new sequence starts. Without it (as from RTSP), the FLV muxer builds
    // the record from the first keyframe.
    if sel & 1 == 1 {
        match name {
            "AV1" => video = video.with_fmtp("config=81000C000A0B000000043CFFBC02F80040"),
            "VP9" => video = video.with_fmtp("config=010000000114870202000000"),
            _ => {}
        }
    }
    let audio = match (sel >> 1) & 3 {
        0 => Codec::new("MPEG4-GENERIC", 44100, 2, 97).with_fmtp("config=1210"),
        1 => Codec::new("PCMA", 8000, 1, 8),
        2 => Codec::new("PCMU", 16000, 2, 0),
        _ => Codec::new("OPUS", 48000, 2, 111),
    };
    let tracks = [(Kind::Video, video), (Kind::Audio, audio)];
    let policy = if sel & 8 == 0 { FragmentPolicy::PerFrame } else { FragmentPolicy::PerGop };
    let mut fmp4 = Fmp4Muxer::with_policy(&tracks, policy).ok();
    let mut ts = TsMuxer::new(&tracks).ok();
    let mut flv = FlvMuxer::new(&tracks).ok();
    if let Some(f) = &mut flv {
        let _ = f.header();
    }
    // Records: [flags, ts(4), len(2), payload...]
    let mut r = rest;
    while r.len() >= 7 {
        let flags = r[0];
        let timestamp = u32::from_be_bytes([r[1], r[2], r[3], r[4]]);
        let len = usize::from(u16::from_be_bytes([r[5], r[6]])).min(r.len() - 7);
        let payload = Bytes::copy_from_slice(&r[7..7 + len]);
        r = &r[7 + len..];
        let track = usize::from(flags & 1);
        let frame = Frame { timestamp, keyframe: flags & 2 != 0, payload, rtp: Vec::new() };
        if let Some(m) = &mut fmp4 {
            let _ = m.push(track, &frame);
            while m.fragment().is_some() {}
            let _ = m.mime_type();
        }
        if let Some(m) = &mut ts {
            let _ = m.push(track, &frame);
        }
        if let Some(m) = &mut flv {
            let _ = m.push(track, &frame);
        }
    }
});
