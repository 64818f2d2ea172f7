//! The `webrtc:` source, checked end to end: a camrelay server B pulls over WebRTC (WHEP, and go2rtc's
//! WebSocket API) from a camrelay server A and from an aiortc WHEP server we did not write
//! (`tests/fixtures/whep_server.py`), and ffprobe/ffmpeg read the result from B over RTSP. Everything
//! stays on 127.0.0.1 (all ICE candidates are loopback). The aiortc tests need
//! `python3 -m pip install aiortc` (or `CAMRELAY_PYTHON` naming a Python that has it).

mod common;

use common::{decode_video_frames, ffprobe, http_request, wait_until, ProbedStream, Server};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn python() -> String {
    std::env::var("CAMRELAY_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

/// Server A: the remote WebRTC server, with `yaml`'s streams.
fn remote(yaml: &str) -> Server {
    let a = Server::start(yaml);
    assert!(a.wait_log("[webrtc] listen addr=127.0.0.1:", Duration::from_secs(30)), "A:\n{}", a.log());
    a
}

/// Server B: pulls `streams` (YAML lines under `streams:`), stops a source 1 s after its last reader.
fn relay(streams: &str) -> Server {
    let b = Server::start(&format!("streams:\n{streams}hub:\n  linger: 1s\n"));
    // Logged once every listener is bound: the socket count is stable from here.
    assert!(b.wait_log("webrtc candidates:", Duration::from_secs(30)), "B:\n{}", b.log());
    b
}

fn stream(server: &Server, name: &str) -> Value {
    server.http("GET", &format!("/api/streams?src={name}")).json()
}

fn producer(server: &Server, name: &str) -> Value {
    stream(server, name)["producers"][0].clone()
}

fn webrtc_consumers(server: &Server, name: &str) -> usize {
    stream(server, name)["consumers"]
        .as_array()
        .map_or(0, |c| c.iter().filter(|c| c["format_name"] == "webrtc").count())
}

fn video(probed: &[ProbedStream]) -> (String, u64, u64) {
    let v = probed.iter().find(|s| s.codec_type == "video").unwrap_or_else(|| panic!("no video: {probed:?}"));
    (v.codec_name.clone(), v.width, v.height)
}

fn audio(probed: &[ProbedStream]) -> Option<(String, u64)> {
    probed.iter().find(|s| s.codec_type == "audio").map(|a| (a.codec_name.clone(), a.sample_rate))
}

/// The number in a log line `... {prefix} N ms...` (the source's connect / first frame times).
fn logged_ms(log: &str, prefix: &str) -> Option<u64> {
    let rest = log.split(prefix).nth(1)?;
    rest.split_whitespace().next()?.parse().ok()
}

fn report_times(label: &str, b: &Server) {
    let log = b.log();
    eprintln!(
        "{label}: ICE+DTLS connected in {:?} ms, first video frame {:?} ms after the offer",
        logged_ms(&log, "webrtc source connected (ICE, DTLS) in"),
        logged_ms(&log, "first video frame")
    );
}

/// Open sockets of a server's process (found by its working directory, the test's temp dir).
fn sockets(server: &Server) -> usize {
    let Ok(procs) = std::fs::read_dir("/proc") else { return 0 };
    for p in procs.flatten() {
        if std::fs::read_link(p.path().join("cwd")).is_ok_and(|cwd| cwd == server.dir) {
            let fds =
                std::fs::read_dir(p.path().join("fd")).map(|d| d.flatten().collect::<Vec<_>>()).unwrap_or_default();
            return fds
                .iter()
                .filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy().starts_with("socket:")))
                .count();
        }
    }
    panic!("no process runs in {}", server.dir.display());
}

/// After the last reader left, B stops the source and the remote's session ends with it: no webrtc
/// consumer on A any more, B's source idle, and B holds no more sockets than before it had readers
/// (`idle_sockets`): the source's UDP socket and signalling connections are gone.
fn assert_session_closed_on(a: &Server, b: &Server, a_stream: &str, idle_sockets: usize) {
    let closed = wait_until(Duration::from_secs(30), || {
        webrtc_consumers(a, a_stream) == 0 && producer(b, "cam")["state"] == "idle" && sockets(b) <= idle_sockets
    });
    assert!(
        closed,
        "session left open: A {}\nB {}, {} sockets (idle: {idle_sockets})\nB log:\n{}",
        stream(a, a_stream),
        stream(b, "cam"),
        sockets(b),
        b.log()
    );
    // Ended by our close (DTLS close_notify / DELETE), not by A's 15 s idle reaping ("peer silent"). The
    // session's task logs its end after A dropped its consumer: wait for the line (it came late under load).
    let ended_by_close = wait_until(Duration::from_secs(30), || {
        a.log().contains("webrtc session ended: peer closed") || a.log().contains("webrtc session ended: closed")
    });
    assert!(ended_by_close, "A log:\n{}", a.log());
}

#[test]
fn whep_from_camrelay_decodes_video() {
    let a = remote("streams:\n  demo: demo:clip\n");
    let b = relay(&format!("  cam: webrtc:http://{}/api/webrtc?src=demo\n", a.api.unwrap()));
    let idle_sockets = sockets(&b);
    let started = Instant::now();
    let probed = ffprobe(&b.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\nB:\n{}", b.log()));
    let probe_time = started.elapsed();
    assert_eq!(video(&probed), ("h264".to_string(), 640, 360), "{probed:?}");
    // The demo's audio is AAC, which WebRTC does not carry: A transcodes it to Opus (`webrtc.audio_transcode`,
    // on by default) and B passes that on.
    assert_eq!(audio(&probed), Some(("opus".to_string(), 48000)), "{probed:?}");
    let frames = decode_video_frames(&b.rtsp_url("cam"), "tcp", 50).unwrap_or_else(|e| panic!("{e}\nB:\n{}", b.log()));
    assert_eq!(frames, 50);
    assert!(b.log().contains("webrtc source connected (ICE, DTLS)"), "{}", b.log());
    eprintln!("WHEP from camrelay: ffprobe answered in {} ms, {frames} frames decoded", probe_time.as_millis());
    report_times("WHEP from camrelay", &b);
    assert_session_closed_on(&a, &b, "demo", idle_sockets);
}

/// go2rtc's WebSocket signalling, with Opus audio from A (transcoded by ffmpeg) besides the video:
/// A's answer lists every audio codec it could send, B learns the one A sends from its packets.
#[test]
fn websocket_from_camrelay_decodes_video_and_opus() {
    let a = remote("streams:\n  cam:\n    - demo:clip\n    - ffmpeg:cam#audio=opus\n");
    let b = relay(&format!("  cam: webrtc:ws://{}/api/ws?src=cam\n", a.api.unwrap()));
    let idle_sockets = sockets(&b);
    let started = Instant::now();
    let probed = ffprobe(&b.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\nB:\n{}", b.log()));
    let probe_time = started.elapsed();
    assert_eq!(video(&probed), ("h264".to_string(), 640, 360), "{probed:?}");
    assert_eq!(audio(&probed), Some(("opus".to_string(), 48000)), "{probed:?}\nB:\n{}", b.log());
    let frames = decode_video_frames(&b.rtsp_url("cam"), "tcp", 50).unwrap_or_else(|e| panic!("{e}\nB:\n{}", b.log()));
    assert_eq!(frames, 50);
    eprintln!("WebSocket from camrelay: ffprobe answered in {} ms, {frames} frames decoded", probe_time.as_millis());
    report_times("WebSocket from camrelay", &b);
    assert_session_closed_on(&a, &b, "cam", idle_sockets);
}

/// The aiortc WHEP server (killed on drop).
struct AiortcServer {
    child: Child,
    url: String,
    addr: SocketAddr,
}

impl AiortcServer {
    fn start(width: u32, height: u32) -> AiortcServer {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/whep_server.py");
        let mut child = Command::new(python())
            .arg(script)
            .arg(width.to_string())
            .arg(height.to_string())
            .arg("audio")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start python");
        let rx = common::lines_of(child.stdout.take().unwrap());
        let Some(url) = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .and_then(|l| l.strip_prefix("listening ").map(str::to_string))
        else {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!stderr.contains("No module named"), "aiortc is missing: run `{} -m pip install aiortc`", python());
            panic!("whep_server.py did not start: {stderr}");
        };
        let addr = url.trim_start_matches("http://").trim_end_matches("/whep").parse().expect("fixture address");
        AiortcServer { child, url, addr }
    }

    fn stats(&self) -> Value {
        http_request(self.addr, "GET", "/stats", &[], b"").json()
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
    }
}

impl Drop for AiortcServer {
    fn drop(&mut self) {
        self.signal("CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebRTC server we did not write: aiortc answers our offer and encodes its test pattern as H.264
/// (what we offered) at its own size, with Opus audio. Stopping the source DELETEs the session.
#[test]
fn whep_from_aiortc_decodes_its_size() {
    let remote = AiortcServer::start(320, 240);
    let b = relay(&format!("  cam: webrtc:{}\n", remote.url));
    let idle_sockets = sockets(&b);
    let started = Instant::now();
    let probed = ffprobe(&b.rtsp_url("cam"), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}\nB:\n{}", b.log()));
    let probe_time = started.elapsed();
    assert_eq!(video(&probed), ("h264".to_string(), 320, 240), "{probed:?}");
    assert_eq!(audio(&probed), Some(("opus".to_string(), 48000)), "{probed:?}");
    let frames = decode_video_frames(&b.rtsp_url("cam"), "tcp", 25).unwrap_or_else(|e| panic!("{e}\nB:\n{}", b.log()));
    assert_eq!(frames, 25);
    eprintln!("WHEP from aiortc: ffprobe answered in {} ms, {frames} frames decoded", probe_time.as_millis());
    report_times("WHEP from aiortc", &b);
    let deleted = wait_until(Duration::from_secs(30), || {
        let s = remote.stats();
        s["sessions"] == 0
            && s["deleted"] == s["created"]
            && producer(&b, "cam")["state"] == "idle"
            && sockets(&b) <= idle_sockets
    });
    assert!(deleted, "sessions left on the remote: {}\nB log:\n{}", remote.stats(), b.log());
    assert!(remote.stats()["connected"].as_u64() >= Some(1), "{}", remote.stats());
}

/// A remote that stops sending (the aiortc process frozen with SIGSTOP) is reported, and the source
/// comes back on its own when the remote does.
#[test]
fn silent_remote_is_reported_and_retried() {
    let remote = AiortcServer::start(320, 240);
    let b = relay(&format!("  cam: webrtc:{}\n", remote.url));
    let mut reader = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &b.rtsp_url("cam"), "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffmpeg");
    let frames = |b: &Server| producer(b, "cam")["receivers"][0]["frames"].as_u64().unwrap_or(0);
    assert!(wait_until(Duration::from_secs(30), || frames(&b) > 25), "no frames: {}\n{}", stream(&b, "cam"), b.log());
    remote.signal("STOP");
    let frozen = Instant::now();
    let reported = wait_until(Duration::from_secs(30), || {
        producer(&b, "cam")["last_error"].as_str().is_some_and(|e| e.contains("no media from the remote for 15 s"))
    });
    assert!(reported, "silence not reported: {}\nB log:\n{}", stream(&b, "cam"), b.log());
    eprintln!("silent remote reported after {} ms", frozen.elapsed().as_millis());
    remote.signal("CONT");
    let before = frames(&b);
    let back =
        wait_until(Duration::from_secs(30), || producer(&b, "cam")["state"] == "online" && frames(&b) > before + 25);
    let _ = reader.kill();
    let _ = reader.wait();
    assert!(back, "source did not come back: {}\n{}", stream(&b, "cam"), b.log());
}

/// A one-connection-at-a-time HTTP server answering every request with `respond(body)` (a whole
/// HTTP response). Lives until the test process ends.
fn fake_server(respond: impl Fn(&str) -> String + Send + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
            let mut data = Vec::new();
            let mut buf = [0u8; 4096];
            let head_end = loop {
                if let Some(p) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                    break Some(p + 4);
                }
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break None,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            };
            let Some(head_end) = head_end else { continue };
            let head = String::from_utf8_lossy(&data[..head_end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < head_end + length {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            let body = String::from_utf8_lossy(&data[head_end..]).into_owned();
            let _ = conn.write_all(respond(&body).as_bytes());
        }
    });
    addr
}

fn sdp_response(status: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/sdp\r\nLocation: /whep/1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
}

/// A reader asks B for `name` (an ffprobe we kill), so B dials the source; returns its `last_error`
/// once it has one.
fn source_error(b: &Server, name: &str, within: Duration) -> String {
    let mut probe = Command::new("ffprobe")
        .args(["-v", "quiet", "-rtsp_transport", "tcp", &b.rtsp_url(name)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ffprobe");
    let mut error = None;
    wait_until(within, || {
        error = producer(b, name)["last_error"].as_str().map(str::to_string);
        error.is_some()
    });
    let _ = probe.kill();
    let _ = probe.wait();
    error.unwrap_or_else(|| panic!("{name}: no error within {within:?}: {}\nB log:\n{}", stream(b, name), b.log()))
}

#[test]
fn failures_are_named_in_the_stream_state() {
    let a = remote("streams:\n  demo: demo:clip\n");
    let a_addr = a.api.unwrap();
    let garbage = fake_server(|_| sdp_response("201 Created", "this is not an SDP answer"));
    let html = fake_server(|_| {
        let body = "<html><body>Bad Gateway</body></html>";
        format!("HTTP/1.1 502 Bad Gateway\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
    });
    let closed_port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let b = relay(&format!(
        "  nosuch: webrtc:http://admin:secret@{a_addr}/api/webrtc?src=nosuch\n  nosuch_ws: webrtc:ws://{a_addr}/api/ws?src=nosuch\n  \
         garbage: webrtc:http://{garbage}/whep\n  html: webrtc:http://{html}/whep\n  \
         down: webrtc:http://127.0.0.1:{closed_port}/api/webrtc?src=x\n"
    ));
    let within = Duration::from_secs(15);

    let e = source_error(&b, "nosuch", within);
    assert!(e.contains("WHEP offer: HTTP 404 Not Found: stream not found: nosuch"), "{e}");
    let kind = |name: &str| producer(&b, name)["last_error_kind"].as_str().unwrap_or_default().to_string();
    assert_eq!(kind("nosuch"), "other");
    assert!(e.contains("admin:***@") && !e.contains("secret"), "password not masked: {e}");
    let e = source_error(&b, "nosuch_ws", within);
    assert!(e.contains("the remote answered: stream not found: nosuch"), "{e}");
    assert_eq!(kind("nosuch_ws"), "other");
    let e = source_error(&b, "garbage", within);
    assert!(e.contains("answer: not a valid SDP answer") && e.contains("this is not an SDP answer"), "{e}");
    assert_eq!(kind("garbage"), "protocol");
    let e = source_error(&b, "html", within);
    assert!(e.contains("HTTP 502 Bad Gateway: <html><body>Bad Gateway</body></html>"), "{e}");
    assert_eq!(kind("html"), "other");
    let e = source_error(&b, "down", within);
    assert!(e.contains(&format!("127.0.0.1:{closed_port}")) && e.contains("connect: "), "{e}");
    assert_eq!(kind("down"), "network");
    eprintln!("unreachable: {e}");

    // Formats of go2rtc we do not speak are refused up front.
    let r = b.http("PUT", "/api/streams?name=ipc&src=webrtc:ws://192.0.2.1/webrtc_ws%23format=openipc");
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("format openipc is not supported"), "{}", r.text());
    // Failed dials leave nothing behind on A.
    assert_eq!(webrtc_consumers(&a, "demo"), 0);
    assert!(!b.log().contains("panicked"), "{}", b.log());
}

/// An answer whose only candidate never answers ICE: the source gives up after 10 s and says why.
#[test]
fn ice_that_never_connects_times_out() {
    use str0m::change::SdpOffer;
    // A UDP socket that reads nothing: checks sent to it go unanswered (no ICMP either).
    let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    let server = fake_server(move |offer| {
        let _keep = &silent;
        let mut rtc = str0m::Rtc::builder().set_ice_lite(true).build(Instant::now());
        rtc.add_local_candidate(str0m::Candidate::host(silent_addr, "udp").unwrap());
        let answer = SdpOffer::from_sdp_string(offer)
            .map_err(|e| e.to_string())
            .and_then(|o| rtc.sdp_api().accept_offer(o).map_err(|e| e.to_string()));
        match answer {
            Ok(a) => sdp_response("201 Created", &a.to_sdp_string()),
            Err(e) => format!("HTTP/1.1 400 Bad Request\r\nContent-Length: {}\r\n\r\n{e}", e.len()),
        }
    });
    let b = relay(&format!("  cam: webrtc:http://{server}/whep\n"));
    let started = Instant::now();
    let e = source_error(&b, "cam", Duration::from_secs(25));
    assert!(e.contains("ICE: no connection within 10 s"), "{e}");
    assert!(started.elapsed() >= Duration::from_secs(10), "gave up early: {:?}", started.elapsed());
    eprintln!("ICE timeout reported after {} ms: {e}", started.elapsed().as_millis());
}

#[test]
fn docs_example_parses() {
    // The YAML of docs/sources.md's webrtc: section is accepted as written.
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/sources.md")).unwrap();
    let section = docs.split("## `webrtc:`").nth(1).expect("a webrtc: section in docs/sources.md");
    let yaml = section.split("```yaml\n").nth(1).and_then(|s| s.split("```").next()).expect("a YAML example");
    let b = Server::start(yaml);
    let streams = b.http("GET", "/api/streams").json();
    for name in ["camera1_whep", "camera1_ws"] {
        let url = streams[name]["producers"][0]["url"].as_str().unwrap_or("");
        assert!(url.starts_with("webrtc:"), "{name}: {streams}");
    }
}
