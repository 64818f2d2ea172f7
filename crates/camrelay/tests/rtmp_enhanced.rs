//! Enhanced RTMP with real clients: ffmpeg 9 (`common::ffmpeg9`, the static build scripts/test.sh
//! installs) publishes H.265, AV1, VP9 and Opus over RTMP, and two audio tracks (multitrack); we read
//! them back over RTSP (what our RTP packetizers carry: H.265, Opus, AAC, H.264) and over RTMP and
//! HTTP-FLV with ffmpeg 9 (everything). An OBS-like publish (FMLE flashVer, app and tcUrl as OBS sends
//! them) is read back over RTSP, HLS and WebRTC.

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

const CONFIG: &str = "rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n";

/// ffmpeg 9 publishes a 320x240 test pattern (with `video` encoder arguments) and, per entry of
/// `audio`, a 48 kHz tone with those encoder arguments, as FLV over RTMP to `url`, for 60 s.
fn publish9(url: &str, video: &[&str], audio: &[&[&str]]) -> Publisher {
    let mut args: Vec<&str> = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    for _ in audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    args.extend(["-map", "0:v"]);
    let maps: Vec<String> = (1..=audio.len()).map(|i| format!("{i}:a")).collect();
    for m in &maps {
        args.extend(["-map", m.as_str()]);
    }
    args.extend(video);
    args.extend(["-pix_fmt", "yuv420p", "-g", "25"]);
    let codec_opts: Vec<String> = (0..audio.len()).map(|i| format!("-c:a:{i}")).collect();
    for (i, a) in audio.iter().enumerate() {
        args.extend([codec_opts[i].as_str()]);
        args.extend(a.iter());
    }
    args.extend(["-t", "60", "-f", "flv", url]);
    Publisher::spawn(ffmpeg9(), &args)
}

/// The medias of the stream's RTMP publisher, once it is online (`video, recvonly, H265`...).
fn rtmp_medias(srv: &Server, name: &str) -> Vec<String> {
    let get = || {
        let r = srv.http("GET", &format!("/api/streams?src={name}"));
        if r.status != 200 {
            return None;
        }
        let producers = r.json()["producers"].as_array()?.clone();
        let p = producers.iter().find(|p| p["protocol"] == "rtmp" && p["medias"].is_array())?.clone();
        Some(p["medias"].as_array()?.iter().filter_map(|m| m.as_str().map(str::to_owned)).collect::<Vec<_>>())
    };
    assert!(
        wait_until(Duration::from_secs(30), || get().is_some()),
        "no rtmp publisher on {name}; log:\n{}",
        srv.log()
    );
    get().unwrap()
}

/// Decodes `frames` frames of `stream` (`v:0`, `a:1`: kind and index) of `url` with `program`; returns
/// how many decoded (framecrc: a line per frame) and ffmpeg's input stream lines (`Stream #0:0: Video:
/// hevc...`).
fn decode(program: impl AsRef<std::ffi::OsStr>, url: &str, stream: &str, frames: u32, pre: &[&str]) -> (usize, String) {
    let map = format!("0:{stream}");
    let count = format!("-frames:{}", &stream[..1]);
    let n = frames.to_string();
    let out = run_with_timeout(
        Command::new(program)
            .args(["-hide_banner"])
            .args(pre)
            .args(["-i", url, "-map", &map, &count, &n, "-f", "framecrc", "-"]),
        Duration::from_secs(40),
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let decoded = text.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()).count();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let inputs = stderr.split("Stream mapping").next().unwrap_or("");
    let streams: Vec<&str> = inputs.lines().filter(|l| l.trim_start().starts_with("Stream #0:")).collect();
    assert!(decoded > 0, "nothing decoded from {url}; ffmpeg said:\n{stderr}");
    (decoded, streams.join("\n"))
}

fn rtmp_url(addr: SocketAddr, path: &str) -> String {
    format!("rtmp://{addr}/{path}")
}

#[test]
fn h265_aac_publish_reads_back_over_rtsp_and_rtmp() {
    let srv = Server::start(CONFIG);
    let addr = srv.rtmp_addr();
    let _pusher = publish9(
        &rtmp_url(addr, "live/cam"),
        &["-c:v", "libx265", "-preset", "ultrafast", "-tune", "zerolatency", "-x265-params", "log-level=none"],
        &[&["aac", "-b:a", "64k"]],
    );
    let medias = rtmp_medias(&srv, "cam");
    assert_eq!(medias, ["video, recvonly, H265", "audio, recvonly, AAC"]);

    // RTSP (system ffmpeg/ffprobe): HEVC at the published size, AAC at 48 kHz, frames decoded.
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe rtsp");
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video stream");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("hevc", 320, 240), "{streams:?}");
    assert!(streams.iter().any(|s| s.codec_name == "aac" && s.sample_rate == 48000), "{streams:?}");
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 30).expect("decode rtsp");
    assert!(n >= 30, "decoded {n} H.265 frames over RTSP");

    // RTMP play (Enhanced RTMP `hvc1` tags) with ffmpeg 9.
    let (n, streams) = decode(ffmpeg9(), &rtmp_url(addr, "live/cam"), "v:0", 30, &[]);
    assert!(n >= 30, "decoded {n} H.265 frames over RTMP");
    assert!(streams.contains("Video: hevc") && streams.contains("320x240"), "{streams}");
    assert!(streams.contains("Audio: aac"), "{streams}");

    // A player whose connect names a fourCcList without hvc1 is not sent the H.265 track (the log says
    // why); it gets the audio.
    let (audio, video) = play_with_fourcc_list(addr, "cam", &["avc1"], 20);
    assert_eq!((audio, video), (20, 0), "audio and video messages to a player without hvc1");
    assert!(srv.log().contains("fourCcList lacks these codecs") && srv.log().contains("hvc1"), "log:\n{}", srv.log());
}

/// A raw RTMP player (the crate's own encoders) whose `connect` carries `fourCcList`: reads until it
/// has `audio_wanted` audio messages; returns the audio and video messages it got.
fn play_with_fourcc_list(addr: SocketAddr, name: &str, fourccs: &[&str], audio_wanted: usize) -> (usize, usize) {
    use rtmp::handshake::{self, Filler};
    use rtmp::{message as msg, Amf0Value, ChunkReader, ChunkWriter};
    use std::io::{Read, Write};

    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let (c0c1, _) = handshake::client_hello(0, false, &mut Filler::new(5));
    sock.write_all(&c0c1).unwrap();
    let mut s0s1s2 = vec![0u8; 1 + 2 * handshake::PACKET_SIZE];
    sock.read_exact(&mut s0s1s2).unwrap();
    let c2 = handshake::client_verify(&s0s1s2, None).unwrap();
    let w = ChunkWriter::new();
    let mut out = bytes::BytesMut::from(&c2[..]);
    let list = Amf0Value::StrictArray(fourccs.iter().map(|f| Amf0Value::string(*f)).collect());
    let connect = Amf0Value::object([("app", Amf0Value::string("live")), ("fourCcList", list)]);
    msg::write_command(&w, &mut out, 0, "connect", 1.0, &[connect]);
    msg::write_command(&w, &mut out, 0, "createStream", 2.0, &[Amf0Value::Null]);
    msg::write_command(&w, &mut out, 1, "play", 3.0, &[Amf0Value::Null, Amf0Value::string(name)]);
    sock.write_all(&out).unwrap();
    let mut reader = ChunkReader::new();
    let mut inbound = bytes::BytesMut::new();
    let mut buf = [0u8; 16384];
    let (mut audio, mut video) = (0, 0);
    while audio < audio_wanted {
        let n = sock.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        inbound.extend_from_slice(&buf[..n]);
        while let Some(m) = reader.read(&mut inbound).unwrap() {
            match m.type_id {
                msg::SET_CHUNK_SIZE => {
                    reader.set_chunk_size(u32::from_be_bytes(m.payload[..4].try_into().unwrap())).unwrap()
                }
                msg::AUDIO => audio += 1,
                msg::VIDEO => video += 1,
                _ => {}
            }
        }
    }
    (audio, video)
}

/// AV1 (SVT-AV1) and VP9 (libvpx) with Opus, read back over RTMP and HTTP-FLV (`/api/stream.flv`) with
/// ffmpeg 9, which decodes them (over RTSP and WebRTC: `tests/rtp_av1_vp9.rs`).
#[test]
fn av1_and_vp9_publish_read_back_over_rtmp_and_http_flv() {
    let srv = Server::start("rtmp:\n  listen: 127.0.0.1:0\nstreams:\n  av1:\n  vp9:\n");
    let addr = srv.rtmp_addr();
    let cases: [(&str, &[&str], &str); 2] = [
        ("av1", &["-c:v", "libsvtav1", "-preset", "12", "-svtav1-params", "lp=1"], "AV1"),
        ("vp9", &["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-row-mt", "0"], "VP9"),
    ];
    for (name, video, codec) in cases {
        let pusher = publish9(&rtmp_url(addr, &format!("live/{name}")), video, &[&["libopus"]]);
        let medias = rtmp_medias(&srv, name);
        assert_eq!(medias, [format!("video, recvonly, {codec}"), "audio, recvonly, OPUS".to_string()]);
        for url in [rtmp_url(addr, &format!("live/{name}")), srv.api_url(&format!("/api/stream.flv?src={name}"))] {
            let (n, streams) = decode(ffmpeg9(), &url, "v:0", 30, &[]);
            assert!(n >= 30, "decoded {n} {codec} frames from {url}");
            assert!(streams.contains(&format!("Video: {name}")) && streams.contains("320x240"), "{url}: {streams}");
            assert!(streams.contains("Audio: opus"), "{url}: {streams}");
        }
        drop(pusher);
    }
}

/// Opus audio (Enhanced RTMP `Opus`) beside H.264: RTSP carries it (RFC 7587), WebRTC too, RTMP as
/// Enhanced RTMP audio; each client decodes it.
#[test]
fn opus_publish_reads_back_over_rtsp_rtmp_and_webrtc() {
    let srv = Server::start(CONFIG);
    let addr = srv.rtmp_addr();
    let _pusher = publish9(
        &rtmp_url(addr, "live/cam"),
        &["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"],
        &[&["libopus", "-b:a", "48k"]],
    );
    assert_eq!(rtmp_medias(&srv, "cam"), ["video, recvonly, H264", "audio, recvonly, OPUS"]);
    let streams = ffprobe(&srv.rtsp_url("cam"), "tcp").expect("ffprobe rtsp");
    assert!(streams.iter().any(|s| s.codec_name == "opus" && s.sample_rate == 48000), "{streams:?}");
    let (n, _) = decode("ffmpeg", &srv.rtsp_url("cam"), "a:0", 50, &["-rtsp_transport", "tcp"]);
    assert!(n >= 50, "decoded {n} Opus frames over RTSP");
    let (n, streams) = decode(ffmpeg9(), &rtmp_url(addr, "live/cam"), "a:0", 50, &[]);
    assert!(n >= 50 && streams.contains("Audio: opus"), "decoded {n} Opus frames over RTMP: {streams}");
    let report = whep_with(&srv, "cam", 10, &["audio"]);
    assert_eq!(report["frames"], 10, "{report}");
    assert!(report["audio_frames"].as_u64().unwrap_or(0) >= 10, "{report}");
    assert_eq!(report["sample_rate"], 48000, "{report}");
}

/// What OBS sends: app `live`, flashVer `FMLE/3.0 (compatible; FMSc/1.0)`, tcUrl `rtmp://host/live`,
/// the stream key as the stream name; H.264 + AAC. Read back over RTSP, HLS and WebRTC.
#[test]
fn obs_like_publish_reads_back_over_rtsp_hls_and_webrtc() {
    let srv = Server::start(CONFIG);
    let addr = srv.rtmp_addr();
    let tc_url = format!("rtmp://{addr}/live");
    let url = format!("rtmp://{addr}/live/cam");
    let _pusher = Publisher::encode(
        "320x240",
        true,
        false,
        &[
            "-t",
            "60",
            "-rtmp_app",
            "live",
            "-rtmp_flashver",
            "FMLE/3.0 (compatible; FMSc/1.0)",
            "-rtmp_tcurl",
            &tc_url,
            "-f",
            "flv",
            &url,
        ],
    );
    assert_eq!(rtmp_medias(&srv, "cam"), ["video, recvonly, H264", "audio, recvonly, AAC"]);
    let n = decode_video_frames(&srv.rtsp_url("cam"), "tcp", 30).expect("decode rtsp");
    assert!(n >= 30, "decoded {n} frames over RTSP");

    // HLS: ffmpeg follows the master playlist to the segments and decodes.
    let hls = srv.api_url("/api/stream.m3u8?src=cam");
    let (n, streams) = decode("ffmpeg", &hls, "v:0", 30, &[]);
    assert!(n >= 30, "decoded {n} frames over HLS");
    assert!(streams.contains("Video: h264") && streams.contains("320x240"), "{streams}");

    // WebRTC: aiortc decodes the video at the published size.
    let report = whep_with(&srv, "cam", 10, &[]);
    assert_eq!(report["frames"], 10, "{report}");
    assert_eq!((report["width"].as_u64(), report["height"].as_u64()), (Some(320), Some(240)), "{report}");
}

/// ffmpeg 9 sends a second audio track as Enhanced RTMP multitrack packets (track id 1): it becomes a
/// media of its own, and RTSP readers that ask for every audio get both.
#[test]
fn multitrack_audio_publish_gives_two_audio_medias() {
    let srv = Server::start(CONFIG);
    let addr = srv.rtmp_addr();
    let _pusher = publish9(
        &rtmp_url(addr, "live/cam"),
        &["-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency"],
        &[&["aac"], &["libopus"]],
    );
    assert_eq!(rtmp_medias(&srv, "cam"), ["video, recvonly, H264", "audio, recvonly, AAC", "audio, recvonly, OPUS"]);
    // go2rtc's `audio=all` asks for every audio media (a plain URL gets the first).
    let all = srv.rtsp_url("cam?video=all&audio=all");
    let streams = ffprobe(&all, "tcp").expect("ffprobe rtsp");
    let names: Vec<&str> = streams.iter().map(|s| s.codec_name.as_str()).collect();
    assert_eq!(names, ["h264", "aac", "opus"], "{streams:?}");
    let (n, _) = decode("ffmpeg", &all, "a:1", 50, &["-rtsp_transport", "tcp"]);
    assert!(n >= 50, "decoded {n} frames of the second audio track over RTSP");
}
