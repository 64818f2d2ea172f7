//! MPEG-TS codecs beyond H.264/H.265/AAC with real clients: ffmpeg publishes Opus, MP2 and MP3 (with
//! H.264) as MPEG-TS over SRT and over UDP; ffprobe names the codecs and ffmpeg decodes audio frames read
//! back over SRT and RTSP (MP2/MP3 as RTP payload type 14, RFC 2250). KLV: ffmpeg copies the data stream
//! of a TS file into an SRT publication and the units come out of an SRT read byte for byte.

mod common;

use common::*;
use media::{Codec, Frame, Kind};
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

fn srt_addr(srv: &Server) -> SocketAddr {
    let find = || {
        srv.log().lines().find_map(|l| l.split("[srt] listen addr=").nth(1)?.split_whitespace().next()?.parse().ok())
    };
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no srt listener; log:\n{}", srv.log());
    find().unwrap()
}

/// ffmpeg encoding a 320x240 test pattern as H.264 and a tone with `audio_codec`, as MPEG-TS to `url`
/// (over RTSP to an `rtsp://` URL).
fn publish(audio_codec: &str, url: &str) -> Publisher {
    let format = if url.starts_with("rtsp://") { "rtsp" } else { "mpegts" };
    Publisher::spawn(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-tune",
            "zerolatency",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            audio_codec,
            "-b:a",
            "64k",
            "-t",
            "60",
            "-f",
            format,
            url,
        ],
    )
}

/// The medias of the stream's first producer with medias, as JSON text.
fn medias(srv: &Server, name: &str) -> Option<String> {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    if r.status != 200 {
        return None;
    }
    let producers = r.json()["producers"].as_array()?.clone();
    producers.iter().find(|p| p["medias"].is_array()).map(|p| p["medias"].to_string())
}

fn wait_medias(srv: &Server, name: &str, want: &str) -> String {
    assert!(
        wait_until(Duration::from_secs(30), || medias(srv, name).is_some_and(|m| m.contains(want))),
        "no {want} media on {name}: {:?}; log:\n{}",
        medias(srv, name),
        srv.log()
    );
    medias(srv, name).unwrap()
}

/// Decodes up to `frames` audio frames of `url` (framecrc: a line per decoded frame); their count and
/// ffmpeg's stderr.
fn decode_audio(input: &[&str], url: &str, frames: u32) -> (usize, String) {
    let count = frames.to_string();
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error"]).args(input).args([
            "-i",
            url,
            "-map",
            "0:a:0",
            "-frames:a",
            &count,
            "-f",
            "framecrc",
            "-",
        ]),
        Duration::from_secs(30),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    (n, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn audio_codec(streams: &[ProbedStream]) -> Option<(String, u64)> {
    streams.iter().find(|s| s.codec_type == "audio").map(|s| (s.codec_name.clone(), s.sample_rate))
}

/// Opus, MP2 and MP3 published over SRT: the hub announces OPUS/MPA, ffprobe sees the codec over SRT
/// and RTSP and ffmpeg decodes 50 audio frames (and the video) from both.
#[test]
fn opus_mp2_mp3_over_srt_read_over_srt_and_rtsp() {
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\nstreams:\n  opus:\n  mp2:\n  mp3:\n");
    let addr = srt_addr(&srv);
    // (encoder, stream, hub codec, ffprobe's name over SRT, names accepted over RTSP)
    let cases: [(&str, &str, &str, &str, &[&str]); 3] = [
        ("libopus", "opus", "OPUS", "opus", &["opus"]),
        ("mp2", "mp2", "MPA", "mp2", &["mp2", "mp3"]),
        ("libmp3lame", "mp3", "MPA", "mp3", &["mp3"]),
    ];
    for (encoder, name, hub_codec, srt_name, rtsp_names) in cases {
        let _pub = publish(encoder, &format!("srt://{addr}?streamid=publish:{name}&pkt_size=1316"));
        let m = wait_medias(&srv, name, hub_codec);
        assert!(m.contains("H264"), "{m}");

        let url = format!("srt://{addr}?streamid=read:{name}");
        let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
        assert_eq!(audio_codec(&streams), Some((srt_name.to_string(), 48000)), "{name} over SRT: {streams:?}");
        let (n, err) = decode_audio(&[], &url, 50);
        assert!(n >= 50, "{name}: decoded {n} audio frames over SRT: {err}\nlog:\n{}", srv.log());
        let (n, err) = decode_frames(&[], &url, 25, Duration::from_secs(30));
        assert!(n >= 25, "{name}: decoded {n} video frames over SRT: {err}");

        let rtsp = srv.rtsp_url(name);
        let streams = ffprobe(&rtsp, "tcp").unwrap_or_else(|e| panic!("ffprobe {rtsp}: {e}"));
        let (codec, rate) = audio_codec(&streams).unwrap_or_else(|| panic!("{name}: no audio over RTSP: {streams:?}"));
        assert!(rtsp_names.contains(&codec.as_str()) && rate == 48000, "{name} over RTSP: {streams:?}");
        let (n, err) = decode_audio(&["-rtsp_transport", "tcp"], &rtsp, 50);
        assert!(n >= 50, "{name}: decoded {n} audio frames over RTSP: {err}\nlog:\n{}", srv.log());
    }
}

/// MPEG-TS over UDP with Opus and MP2 (`udp://` source): the same codecs, read back over SRT.
#[test]
fn opus_and_mp2_over_udp() {
    let (p1, p2) = (free_port(), free_port());
    let srv = Server::start(&format!(
        "srt:\n  listen: 127.0.0.1:0\nstreams:\n  opus: udp://127.0.0.1:{p1}\n  mp2: udp://127.0.0.1:{p2}\n"
    ));
    let addr = srt_addr(&srv);
    let _a = publish("libopus", &format!("udp://127.0.0.1:{p1}?pkt_size=1316"));
    let _b = publish("mp2", &format!("udp://127.0.0.1:{p2}?pkt_size=1316"));
    for (name, srt_name) in [("opus", "opus"), ("mp2", "mp2")] {
        let url = format!("srt://{addr}?streamid=read:{name}");
        let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
        assert_eq!(audio_codec(&streams), Some((srt_name.to_string(), 48000)), "{streams:?}");
        let (n, err) = decode_audio(&[], &url, 50);
        assert!(n >= 50, "{name}: decoded {n} audio frames: {err}\nlog:\n{}", srv.log());
    }
}

/// A KLV unit: a 16-byte universal key, a BER length, `n` in the value.
fn klv_unit(n: u32) -> Vec<u8> {
    let mut u = vec![0x06, 0x0e, 0x2b, 0x34, 0x02, 0x0b, 0x01, 0x01, 0x0e, 0x01, 0x03, 0x01, 0x01, 0x00, 0x00, 0x00];
    let value: Vec<u8> = [&n.to_be_bytes()[..], b"camrelay klv test unit"].concat();
    u.push(value.len() as u8);
    u.extend_from_slice(&value);
    u
}

/// An MPEG-TS file of `count` KLV units ("KLVA" registration), one every 100 ms.
fn klv_ts(count: u32) -> Vec<u8> {
    let klv = Codec::new(media::codec::KLV, 90000, 0, 96);
    let mut m = formats::ts::TsMuxer::new(&[(Kind::Application, klv)]).unwrap();
    let mut ts = Vec::new();
    for n in 0..count {
        let frame = Frame { timestamp: n * 9000, keyframe: true, payload: klv_unit(n).into(), rtp: vec![] };
        ts.extend_from_slice(&m.push(0, &frame).unwrap());
    }
    ts
}

/// ffmpeg copies the KLV data stream of a TS file (beside an H.264 test pattern) into an SRT
/// publication (as ffmpeg writes asynchronous KLV: no PTS); an SRT reader's ffmpeg copies the data
/// stream out: whole, consecutive, unchanged units.
#[test]
fn klv_passes_through_srt() {
    let dir = temp_dir("srt-klv");
    let file = dir.join("klv.ts");
    std::fs::write(&file, klv_ts(600)).unwrap();
    let srv = Server::start("srt:\n  listen: 127.0.0.1:0\nstreams:\n  klv:\n");
    let addr = srt_addr(&srv);
    let file = file.to_string_lossy().into_owned();
    let publish_url = format!("srt://{addr}?streamid=publish:klv&pkt_size=1316");
    let _pub = Publisher::spawn(
        "ffmpeg",
        &[
            "-v",
            "error",
            "-re",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-re",
            "-i",
            &file,
            "-map",
            "0:v",
            "-map",
            "1:d",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-pix_fmt",
            "yuv420p",
            "-c:d",
            "copy",
            "-t",
            "60",
            "-f",
            "mpegts",
            &publish_url,
        ],
    );
    let m = wait_medias(&srv, "klv", "SMPTE336M");
    assert!(m.contains("application") && m.contains("H264"), "{m}");

    let url = format!("srt://{addr}?streamid=read:klv");
    let out = run_with_timeout(
        Command::new("ffprobe").args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_type,codec_name",
            "-of",
            "csv",
            &url,
        ]),
        Duration::from_secs(20),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("stream,klv,data"), "ffprobe over SRT: {text} {}", String::from_utf8_lossy(&out.stderr));

    let out = run_with_timeout(
        Command::new("ffmpeg")
            .args(["-v", "error", "-i", &url, "-map", "0:d", "-c", "copy", "-t", "3", "-f", "data", "-"]),
        Duration::from_secs(30),
    );
    let data = out.stdout;
    let unit_len = klv_unit(0).len();
    assert!(data.len() >= 10 * unit_len, "{} bytes of KLV: {}", data.len(), String::from_utf8_lossy(&out.stderr));
    assert_eq!(data.len() % unit_len, 0, "whole units");
    let first = u32::from_be_bytes(data[17..21].try_into().unwrap());
    for (i, unit) in data.chunks(unit_len).enumerate() {
        assert_eq!(unit, klv_unit(first + i as u32).as_slice(), "unit {i} (from {first})");
    }
}

/// The other way: ffmpeg publishes MP2 (and Opus) over RTSP (MP2 as RTP payload type 14, RFC 2250); an
/// SRT reader gets them in MPEG-TS and ffmpeg decodes 50 audio frames of each.
#[test]
fn rtsp_published_mp2_and_opus_read_over_srt() {
    let srv =
        Server::start("srt:\n  listen: 127.0.0.1:0\nrtsp:\n  allow_any_publish: true\nstreams:\n  mp2:\n  opus:\n");
    let addr = srt_addr(&srv);
    let _a = publish("mp2", &srv.rtsp_url("mp2"));
    let _b = publish("libopus", &srv.rtsp_url("opus"));
    for (name, hub, want) in [("mp2", "MPA", "mp2"), ("opus", "OPUS", "opus")] {
        wait_medias(&srv, name, hub);
        let url = format!("srt://{addr}?streamid=read:{name}");
        let streams = ffprobe(&url, "tcp").unwrap_or_else(|e| panic!("ffprobe {url}: {e}\nlog:\n{}", srv.log()));
        assert_eq!(audio_codec(&streams), Some((want.to_string(), 48000)), "{name}: {streams:?}");
        let (n, err) = decode_audio(&[], &url, 50);
        assert!(n >= 50, "{name}: decoded {n} audio frames over SRT: {err}\nlog:\n{}", srv.log());
    }
}
