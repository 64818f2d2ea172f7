//! Issue 16: MPEG-TS and RTP pushed over UDP (unicast and multicast) and a Unix socket, as MediaMTX's
//! `udp+mpegts://`, `udp+rtp://` (with `rtpSDP`) and `unix+mpegts://` sources and camrelay's
//! `udp://` streams. ffmpeg and GStreamer send; ffprobe/ffmpeg read the stream back over RTSP and HLS,
//! aiortc over WebRTC (frames decoded, sizes checked); the API shows what was received, lost,
//! reordered and refused.
//! Multicast runs in a network namespace the test makes (`unshare --net`, a multicast route on `lo`).

mod common;

use common::*;
use serde_json::Value;
use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A MediaMTX config on loopback with free ports, then `paths` (a YAML block indented by two).
fn mediamtx(paths: &str) -> String {
    format!(
        "logLevel: info\napi: true\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtpAddress: 127.0.0.1:0\n\
         rtcpAddress: 127.0.0.1:0\nhlsAddress: 127.0.0.1:0\nwebrtc: false\nrtmp: false\nsrt: false\npaths:\n{paths}"
    )
}

fn udp_port() -> u16 {
    UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A sender killed when dropped.
struct Sender(Child);

impl Drop for Sender {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(program: &str, args: &[&str]) -> Sender {
    Sender(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program}: {e}")),
    )
}

/// ffmpeg encoding a 320x240 test pattern (H.264, + AAC when `audio`) in real time into `format` at `url`.
fn ffmpeg_send(format: &str, url: &str, audio: bool) -> Sender {
    let mut args = vec!["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"];
    if audio {
        args.extend(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac"]);
    }
    args.extend(["-t", "120", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "25"]);
    args.extend(["-pix_fmt", "yuv420p", "-f", format, url]);
    spawn("ffmpeg", &args)
}

/// GStreamer encoding a `width`x`height` test pattern as H.264 and sending it with `tail` (a muxer or
/// payloader and a `udpsink`).
fn gst_send(width: u32, height: u32, tail: &str) -> Sender {
    let pipeline = format!(
        "videotestsrc is-live=true ! video/x-raw,width={width},height={height},framerate=25/1 ! \
         x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 ! h264parse config-interval=-1 ! {tail}"
    );
    let args: Vec<&str> = std::iter::once("-q").chain(pipeline.split_whitespace()).collect();
    spawn("gst-launch-1.0", &args)
}

fn video_size(url: &str) -> Result<(u64, u64), String> {
    let streams = ffprobe(url, "tcp")?;
    let v = streams.iter().find(|s| s.codec_type == "video").ok_or("no video stream")?;
    Ok((v.width, v.height))
}

/// Waits (up to 30 s) for ffprobe to see `url`'s video at `size`.
fn wait_video(srv: &Server, url: &str, size: (u64, u64)) {
    let mut last = Err(String::new());
    let ok = wait_until(Duration::from_secs(30), || {
        last = video_size(url);
        last.as_ref().is_ok_and(|s| *s == size)
    });
    assert!(ok, "{url}: {last:?}\n{}", srv.log());
}

fn producer(srv: &Server, stream: &str) -> Value {
    srv.http("GET", &format!("/api/streams?src={stream}")).json()["producers"][0].clone()
}

fn decoded(srv: &Server, input: &[&str], url: &str, want: u32) -> usize {
    let (n, err) = decode_frames(input, url, want, Duration::from_secs(40));
    assert!(n >= want as usize, "{url}: {n} frames decoded: {err}\n{}", srv.log());
    n
}

/// Plays `stream` over RTSP (TCP and UDP) and HLS: frames decoded at the sender's size.
fn plays_everywhere(srv: &Server, stream: &str, size: (u64, u64)) {
    let rtsp = srv.rtsp_url(stream);
    wait_video(srv, &rtsp, size);
    let n = decoded(srv, &["-rtsp_transport", "tcp"], &rtsp, 50);
    let u = decoded(srv, &["-rtsp_transport", "udp"], &rtsp, 25);
    let hls = srv.api_url(&format!("/api/stream.m3u8?src={stream}"));
    let h = decoded(srv, &[], &hls, 25);
    println!("{stream}: {size:?}, decoded {n} frames over RTSP/TCP, {u} over RTSP/UDP, {h} over HLS");
}

/// Sends garbage datagrams to `port` from another socket until dropped; counts them.
struct Flood {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
}

impl Flood {
    fn start(target: &str) -> Flood {
        let (stop, sent) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU64::new(0)));
        let (s, n, target) = (stop.clone(), sent.clone(), target.to_string());
        std::thread::spawn(move || {
            let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
            let mut junk = [0x47u8; 1316];
            for (i, b) in junk.iter_mut().enumerate() {
                *b = if i % 188 == 0 { 0x47 } else { (i * 7) as u8 };
            }
            while !s.load(Ordering::Relaxed) {
                if sock.send_to(&junk, &target).is_ok() {
                    n.fetch_add(1, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_micros(500));
            }
        });
        Flood { stop, sent }
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// `udp://` (camrelay's streams, on demand) and `udp+mpegts://` (MediaMTX's path source): ffmpeg and
/// GStreamer send MPEG-TS datagrams; every output plays them. A flood of junk from a second sender
/// is refused (counted) while the first keeps the stream.
#[test]
fn mpegts_over_udp_from_ffmpeg_and_gstreamer() {
    let (p1, p2) = (udp_port(), udp_port());
    let srv = Server::start(&format!("streams:\n  ff: udp://127.0.0.1:{p1}\n  gst: udp+mpegts://127.0.0.1:{p2}\n"));
    let _ff = ffmpeg_send("mpegts", &format!("udp://127.0.0.1:{p1}?pkt_size=1316"), true);
    let _gst = gst_send(352, 288, &format!("mpegtsmux alignment=7 ! udpsink host=127.0.0.1 port={p2}"));
    let streams = ffprobe(&srv.rtsp_url("ff"), "tcp").unwrap_or_else(|e| panic!("{e}\n{}", srv.log()));
    let kinds: Vec<(&str, &str)> = streams.iter().map(|s| (s.codec_type.as_str(), s.codec_name.as_str())).collect();
    assert!(kinds.contains(&("video", "h264")) && kinds.contains(&("audio", "aac")), "{kinds:?}");
    plays_everywhere(&srv, "ff", (320, 240));
    plays_everywhere(&srv, "gst", (352, 288));
    // WebRTC (aiortc over WHEP) decodes them too.
    for (stream, size) in [("ff", (320, 240)), ("gst", (352, 288))] {
        let r = whep_with(&srv, stream, 10, &[]);
        assert_eq!(r["frames"], 10, "{r}");
        assert_eq!((r["width"].as_u64().unwrap_or(0), r["height"].as_u64().unwrap_or(0)), size, "{r}");
    }

    // A second sender floods the port: refused, the stream plays on.
    let flood = Flood::start(&format!("127.0.0.1:{p1}"));
    assert!(wait_until(Duration::from_secs(30), || flood.sent.load(Ordering::Relaxed) > 2000));
    decoded(&srv, &["-rtsp_transport", "tcp"], &srv.rtsp_url("ff"), 50);
    let p = producer(&srv, "ff");
    let r = &p["receive"];
    assert!(r["packets"].as_u64().unwrap_or(0) > 100, "{p}");
    assert!(r["packets_rejected"].as_u64().unwrap_or(0) > 1000, "{p}");
    assert!(p["remote_addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{p}");
    assert!(p["bytes_recv"].as_u64().unwrap_or(0) > 100_000, "{p}");
    println!("ff: {r} while {} junk datagrams were sent", flood.sent.load(Ordering::Relaxed));
}

const H264_SDP: &str = "v=0\no=- 0 0 IN IP4 127.0.0.1\ns=test\nc=IN IP4 127.0.0.1\nt=0 0\n\
                        m=video 5004 RTP/AVP 96\na=rtpmap:96 H264/90000\na=fmtp:96 packetization-mode=1\n";

/// `rtpSDP: |` with [`H264_SDP`] under a path (indented by 4).
fn rtp_sdp() -> String {
    let lines: String = H264_SDP.lines().map(|l| format!("      {l}\n")).collect();
    format!("    rtpSDP: |\n{lines}")
}

/// Forwards RTP datagrams from `listen` to `to`, swapping one pair in 20 and dropping one in 150.
fn lossy_proxy(listen: u16, to: u16) -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let sock = UdpSocket::bind(("127.0.0.1", listen)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 65536];
        let mut held: Option<Vec<u8>> = None;
        let mut n = 0u64;
        while !s.load(Ordering::Relaxed) {
            let Ok(len) = sock.recv(&mut buf) else { continue };
            n += 1;
            let pkt = buf[..len].to_vec();
            if n.is_multiple_of(150) {
                continue;
            }
            if n.is_multiple_of(20) {
                held = Some(pkt);
                continue;
            }
            let _ = sock.send_to(&pkt, ("127.0.0.1", to));
            if let Some(h) = held.take() {
                let _ = sock.send_to(&h, ("127.0.0.1", to));
            }
        }
    });
    stop
}

/// `udp+rtp://` with MediaMTX's `rtpSDP`: ffmpeg's RTP through a proxy that reorders and drops, and
/// GStreamer's RTP straight; both play over RTSP and HLS, and the API counts the reordered and lost
/// packets (`/api/streams` `receive`, `/v3/paths` `inboundFramesInError`, source type `rtpSource`).
#[test]
fn rtp_over_udp_with_an_sdp_reordered_and_lossy() {
    let (p1, proxy, p2) = (udp_port(), udp_port(), udp_port());
    let paths = format!(
        "  ff:\n    source: udp+rtp://127.0.0.1:{p1}\n{sdp}  gst:\n    source: udp+rtp://127.0.0.1:{p2}\n{sdp}",
        sdp = rtp_sdp()
    );
    let srv = Server::start(&mediamtx(&paths));
    let _stop = lossy_proxy(proxy, p1);
    let _ff = ffmpeg_send("rtp", &format!("rtp://127.0.0.1:{proxy}?pkt_size=1200"), false);
    let _gst = gst_send(352, 288, &format!("rtph264pay config-interval=-1 pt=96 ! udpsink host=127.0.0.1 port={p2}"));
    plays_everywhere(&srv, "ff", (320, 240));
    plays_everywhere(&srv, "gst", (352, 288));

    let p = producer(&srv, "ff");
    let r = &p["receive"];
    assert!(r["packets"].as_u64().unwrap_or(0) > 200, "{p}");
    assert!(r["packets_reordered"].as_u64().unwrap_or(0) > 5, "{p}");
    assert!(r["packets_lost"].as_u64().unwrap_or(0) > 1, "{p}");
    let g = producer(&srv, "gst");
    assert_eq!(g["receive"]["packets_lost"], 0, "{g}");
    assert_eq!(g["receive"]["packets_reordered"], 0, "{g}");
    let v3 = srv.http("GET", "/v3/paths/get/ff").json();
    assert_eq!(v3["source"]["type"], "rtpSource", "{v3}");
    assert!(v3["inboundFramesInError"].as_u64().unwrap_or(0) > 1, "{v3}");
    println!("ff through the lossy proxy: {r}; gst: {}", g["receive"]);
}

/// A `udp+rtp://` path without `rtpSDP` is refused at load, naming the path; a bad SDP is an error
/// naming what is wrong.
#[test]
fn rtp_source_needs_a_valid_sdp() {
    let dir = temp_dir("udp-bad");
    for (paths, want) in [
        ("  cam:\n    source: udp+rtp://127.0.0.1:5004\n", "paths.cam: a udp+rtp:// source needs rtpSDP"),
        ("  cam:\n    source: udp+rtp://127.0.0.1:5004\n    rtpSDP: 'v=0'\n", "SDP has no media section"),
    ] {
        let file = dir.join("mediamtx.yml");
        std::fs::write(&file, mediamtx(paths)).unwrap();
        let out =
            run_with_timeout(Command::new(env!("CARGO_BIN_EXE_camrelay")).arg("-c").arg(&file), Duration::from_secs(5));
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(text.contains(want), "{want:?} not in: {text}");
    }
}

/// `unix+mpegts://`: the socket is made at start; ffmpeg connects to it and sends MPEG-TS.
#[test]
fn mpegts_over_a_unix_socket() {
    let dir = temp_dir("udp-unix");
    let sock = dir.join("in.sock");
    let srv = Server::start(&mediamtx(&format!("  cam:\n    source: unix+mpegts://{}\n", sock.display())));
    assert!(wait_until(Duration::from_secs(30), || sock.exists()), "no socket\n{}", srv.log());
    let _ff = ffmpeg_send("mpegts", &format!("unix:{}", sock.display()), true);
    plays_everywhere(&srv, "cam", (320, 240));
}

/// Multicast, in a network namespace: ffmpeg sends MPEG-TS and GStreamer RTP to groups that camrelay
/// joins on `lo` (`?interface=lo`); both play over RTSP and HLS. A path with `?source=` naming
/// another sender takes nothing from the group and counts what it refused.
#[test]
fn multicast_mpegts_and_rtp_in_a_network_namespace() {
    if in_netns("multicast_mpegts_and_rtp_in_a_network_namespace") {
        return;
    }
    let (p1, p2) = (udp_port(), udp_port());
    let paths = format!(
        "  ts:\n    source: udp+mpegts://239.255.10.1:{p1}?interface=lo\n  \
         other:\n    source: udp+mpegts://239.255.10.1:{p1}?source=127.0.0.9\n  \
         rtp:\n    source: udp+rtp://239.255.10.2:{p2}\n{sdp}",
        sdp = rtp_sdp()
    );
    let srv = Server::start(&mediamtx(&paths));
    let _ff = ffmpeg_send("mpegts", &format!("udp://239.255.10.1:{p1}?pkt_size=1316&ttl=1"), true);
    let _gst = gst_send(
        352,
        288,
        &format!("rtph264pay config-interval=-1 pt=96 ! udpsink host=239.255.10.2 port={p2} auto-multicast=true"),
    );
    plays_everywhere(&srv, "ts", (320, 240));
    plays_everywhere(&srv, "rtp", (352, 288));
    let p = producer(&srv, "ts");
    assert!(p["receive"]["packets"].as_u64().unwrap_or(0) > 100, "{p}");
    let other = producer(&srv, "other");
    assert!(other["receive"]["packets_rejected"].as_u64().unwrap_or(0) > 100, "{other}");
    assert_eq!(other["receive"]["packets"], 0, "{other}");
    println!("multicast ts: {}; ?source= elsewhere: {}", p["receive"], other["receive"]);
}
