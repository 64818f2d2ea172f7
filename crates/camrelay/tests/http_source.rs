//! `http://` and `tcp://` sources against a tiny in-test HTTP/TCP server serving files made by ffmpeg,
//! read back over RTSP with ffprobe.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn ffmpeg_file(dir: &Path, name: &str, args: &[&str]) -> Vec<u8> {
    let path = dir.join(name);
    let out = run_with_timeout(
        Command::new("ffmpeg").args(["-v", "error", "-y"]).args(args).arg(path.to_str().unwrap()),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    std::fs::read(path).unwrap()
}

const VIDEO_IN: &[&str] =
    &["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25", "-f", "lavfi", "-i", "sine=sample_rate=48000"];
const H264: &[&str] = &["-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p"];

struct Media {
    ts: Vec<u8>,
    flv: Vec<u8>,
    h264: Vec<u8>,
    jpeg: Vec<u8>,
}

fn make_media(dir: &Path) -> Media {
    let av = |fmt: &str, name: &str| {
        let mut a: Vec<&str> = VIDEO_IN.to_vec();
        a.extend(H264);
        a.extend(["-c:a", "aac", "-t", "10", "-f", fmt]);
        ffmpeg_file(dir, name, &a)
    };
    let ts = av("mpegts", "clip.ts");
    let flv = av("flv", "clip.flv");
    let mut a: Vec<&str> = VIDEO_IN[..4].to_vec();
    a.extend(H264);
    a.extend(["-t", "10", "-f", "h264"]);
    let h264 = ffmpeg_file(dir, "clip.h264", &a);
    let jpeg = ffmpeg_file(
        dir,
        "snap.jpg",
        &[
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240",
            "-frames:v",
            "1",
            "-pix_fmt",
            "yuvj420p",
            "-huffman",
            "default",
            "-f",
            "image2",
        ],
    );
    Media { ts, flv, h264, jpeg }
}

/// Writes `data` over about 10 s (the clips' length), looping, until the client goes away.
fn stream_paced(s: &mut TcpStream, data: &[u8]) {
    let chunk = (data.len() / 200).max(188);
    let start = Instant::now();
    let mut sent = 0usize;
    loop {
        for c in data.chunks(chunk) {
            if s.write_all(c).is_err() {
                return;
            }
            sent += c.len();
            // 10 s per loop of the file.
            let due = Duration::from_secs_f64(sent as f64 / data.len() as f64 * 10.0);
            if let Some(wait) = due.checked_sub(start.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
}

/// The fake upstream: serves the clips over HTTP and records every request head.
struct Upstream {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Upstream {
    fn start(media: Media) -> Upstream {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let media = Arc::new(media);
        let reqs = requests.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let media = media.clone();
                let reqs = reqs.clone();
                std::thread::spawn(move || serve(conn, &media, &reqs));
            }
        });
        Upstream { addr, requests }
    }

    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

fn serve(mut s: TcpStream, media: &Media, reqs: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(s.try_clone().unwrap());
    // Keep-alive: serve requests on this connection until it closes.
    loop {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            head.push_str(&line);
        }
        reqs.lock().unwrap().push(head.clone());
        let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
        let reply = |s: &mut TcpStream, status: &str, ct: &str, body: &[u8]| {
            let h = format!("HTTP/1.1 {status}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n", body.len());
            s.write_all(h.as_bytes()).and_then(|_| s.write_all(body)).is_ok()
        };
        let stream = |s: &mut TcpStream, ct: &str, body: &[u8]| {
            let h = format!("HTTP/1.1 200 OK\r\nContent-Type: {ct}\r\nConnection: close\r\n\r\n");
            if s.write_all(h.as_bytes()).is_ok() {
                stream_paced(s, body);
            }
        };
        match path.as_str() {
            "/live.ts" => return stream(&mut s, "video/mp2t", &media.ts),
            "/live.flv" => return stream(&mut s, "video/x-flv", &media.flv),
            // No useful Content-Type: sniffed.
            "/live.bin" => return stream(&mut s, "application/octet-stream", &media.ts),
            "/moved" => {
                let h = "HTTP/1.1 302 Found\r\nLocation: /live.flv\r\nContent-Length: 0\r\n\r\n";
                if s.write_all(h.as_bytes()).is_err() {
                    return;
                }
            }
            "/snap.jpg" => {
                if !reply(&mut s, "200 OK", "image/jpeg", &media.jpeg) {
                    return;
                }
            }
            "/broken" => {
                let _ = reply(&mut s, "500 Internal Server Error", "text/plain", b"oops");
                return;
            }
            _ => {
                let _ = reply(&mut s, "404 Not Found", "text/plain", b"no");
                return;
            }
        }
    }
}

/// A `tcp://` upstream: raw H.264 Annex B, paced.
fn start_tcp(data: Vec<u8>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let data = Arc::new(data);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let data = data.clone();
            std::thread::spawn(move || stream_paced(&mut conn, &data));
        }
    });
    addr
}

fn producer(srv: &Server, name: &str) -> serde_json::Value {
    let r = srv.http("GET", &format!("/api/streams?src={name}"));
    r.json()["producers"][0].clone()
}

fn frames_of(p: &serde_json::Value) -> u64 {
    p["receivers"].as_array().map_or(0, |r| r.iter().map(|t| t["frames"].as_u64().unwrap_or(0)).sum())
}

fn assert_h264_aac(srv: &Server, name: &str) {
    let streams = ffprobe(&srv.rtsp_url(name), "tcp").unwrap_or_else(|e| panic!("ffprobe: {e}; log:\n{}", srv.log()));
    let video = streams.iter().find(|s| s.codec_type == "video").expect("video");
    assert_eq!((video.codec_name.as_str(), video.width, video.height), ("h264", 320, 240), "{streams:?}");
    let audio = streams.iter().find(|s| s.codec_type == "audio").expect("audio");
    assert_eq!(audio.codec_name, "aac", "{streams:?}");
}

#[test]
fn http_sources_play_over_rtsp() {
    let dir = temp_dir("httpsrc");
    let media = make_media(&dir);
    let h264 = media.h264.clone();
    let up = Upstream::start(media);
    let tcp = start_tcp(h264);
    let a = up.addr;
    let yaml = format!(
        "streams:\n  ts: \"http://127.0.0.1:{p}/live.ts#header=X-Camrelay-Test: hello there\"\n  flv: http://user:secret@127.0.0.1:{p}/moved\n  sniffed: http://127.0.0.1:{p}/live.bin\n  raw: tcp://{tcp}\n  snap: http://127.0.0.1:{p}/snap.jpg\n  missing: http://admin:hunter2@127.0.0.1:{p}/nothing\n  broken: http://127.0.0.1:{p}/broken\n",
        p = a.port()
    );
    let srv = Server::start(&yaml);

    // MPEG-TS by Content-Type, with a custom header.
    assert_h264_aac(&srv, "ts");
    let n = decode_video_frames(&srv.rtsp_url("ts"), "tcp", 25).expect("decode ts");
    assert!(n >= 25, "decoded {n}");
    assert!(
        up.requests().iter().any(|r| r.starts_with("GET /live.ts ") && r.contains("X-Camrelay-Test: hello there")),
        "header not received: {:?}",
        up.requests()
    );

    // FLV behind a redirect, Basic auth from the URL (kept on the same host).
    assert_h264_aac(&srv, "flv");
    let flv_req = up.requests().into_iter().find(|r| r.starts_with("GET /live.flv ")).expect("redirect followed");
    assert!(flv_req.contains("Authorization: Basic dXNlcjpzZWNyZXQ="), "{flv_req}");

    // MPEG-TS sniffed from the bytes.
    assert_h264_aac(&srv, "sniffed");

    // tcp:// raw H.264 Annex B.
    let streams = ffprobe(&srv.rtsp_url("raw"), "tcp").expect("ffprobe raw");
    assert_eq!((streams[0].codec_name.as_str(), streams[0].width), ("h264", 320), "{streams:?}");
    let n = decode_video_frames(&srv.rtsp_url("raw"), "tcp", 25).expect("decode raw");
    assert!(n >= 25, "decoded {n}");

    // Upstream errors: masked last_error in the API.
    let _ = ffprobe(&srv.rtsp_url("missing"), "tcp");
    let _ = ffprobe(&srv.rtsp_url("broken"), "tcp");
    let missing = producer(&srv, "missing");
    let err = missing["last_error"].as_str().unwrap_or_else(|| panic!("no last_error: {missing}"));
    assert!(err.contains("404"), "{err}");
    assert!(!err.contains("hunter2") && !srv.log().contains("hunter2"), "{err}");
    assert!(!srv.log().contains("user:secret"), "password in log");
    let broken = producer(&srv, "broken");
    assert!(broken["last_error"].as_str().is_some_and(|e| e.contains("500")), "{broken}");
    assert_eq!((&missing["last_error_kind"], &broken["last_error_kind"]), (&"other".into(), &"other".into()));
    let _ = std::fs::remove_dir_all(dir);
}

/// A JPEG snapshot URL becomes a JPEG video track fed by polling.
#[test]
fn jpeg_snapshot_url_is_polled_into_a_track() {
    let dir = temp_dir("httpsnap");
    let media = make_media(&dir);
    let up = Upstream::start(media);
    let yaml = format!("streams:\n  snap: \"http://127.0.0.1:{}/snap.jpg#header=X-Snap: 1\"\n", up.addr.port());
    let srv = Server::start(&yaml);
    // An RTSP reader starts the source.
    let reader = rtsp_reader_for(&srv.rtsp_url("snap"), 6);
    let online = |min: u64| {
        let p = producer(&srv, "snap");
        p["state"] == "online" && p["receivers"][0]["codec"]["codec_name"] == "jpeg" && frames_of(&p) > min
    };
    assert!(
        wait_until(Duration::from_secs(30), || online(0)),
        "not online: {}\nlog:\n{}",
        producer(&srv, "snap"),
        srv.log()
    );
    let first = frames_of(&producer(&srv, "snap"));
    assert!(
        wait_until(Duration::from_secs(30), || online(first + 5)),
        "frame count did not rise: {}",
        producer(&srv, "snap")
    );
    let streams = ffprobe(&srv.rtsp_url("snap"), "tcp").expect("ffprobe snap");
    assert_eq!((streams[0].codec_name.as_str(), streams[0].width), ("mjpeg", 320), "{streams:?}");
    let snaps = up.requests().iter().filter(|r| r.starts_with("GET /snap.jpg ") && r.contains("X-Snap: 1")).count();
    assert!(snaps >= 5, "{snaps} snapshot requests");
    let _ = reader.join();
    let _ = std::fs::remove_dir_all(dir);
}

/// Serves `root` with lighttpd behind HTTP Digest auth (realm `camera`, one user).
fn lighttpd_digest(dir: &Path, root: &Path, user: &str, password: &str) -> Lighttpd {
    let ha1 = Command::new("sh")
        .arg("-c")
        .arg(format!("printf '%s' '{user}:camera:{password}' | md5sum | cut -d' ' -f1"))
        .output()
        .unwrap();
    let ha1 = String::from_utf8_lossy(&ha1.stdout).trim().to_string();
    std::fs::write(dir.join("htdigest"), format!("{user}:camera:{ha1}\n")).unwrap();
    let conf = format!(
        "server.modules = (\"mod_auth\", \"mod_authn_file\")\n\
         mimetype.assign = (\".jpg\" => \"image/jpeg\", \".ts\" => \"video/mp2t\")\n\
         auth.backend = \"htdigest\"\nauth.backend.htdigest.userfile = \"{dir}/htdigest\"\n\
         auth.require = (\"/\" => (\"method\" => \"digest\", \"realm\" => \"camera\", \"require\" => \"valid-user\"))\n",
        dir = dir.display()
    );
    Lighttpd::start(dir, root, &conf)
}

/// Cameras' snapshot and stream URLs behind HTTP Digest (lighttpd's mod_auth): the source answers the
/// challenge (and keeps answering with the nonce while polling); a wrong password names the 401.
#[test]
fn http_digest_auth_against_lighttpd() {
    let dir = temp_dir("httpdigest");
    let media = make_media(&dir);
    let root = dir.join("www");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(root.join("snap.jpg"), &media.jpeg).unwrap();
    std::fs::write(root.join("clip.ts"), &media.ts).unwrap();
    let web = lighttpd_digest(&dir, &root, "admin", "s3cret");
    let p = web.port;
    let srv = Server::start(&format!(
        "streams:\n  snap: http://admin:s3cret@127.0.0.1:{p}/snap.jpg\n  ts: http://admin:s3cret@127.0.0.1:{p}/clip.ts\n  bad: http://admin:wrong@127.0.0.1:{p}/snap.jpg\n"
    ));
    assert_h264_aac(&srv, "ts");

    let reader = rtsp_reader_for(&srv.rtsp_url("snap"), 5);
    // Several snapshots: the nonce keeps working on the kept-alive connection.
    assert!(
        wait_until(Duration::from_secs(30), || frames_of(&producer(&srv, "snap")) >= 5),
        "snapshots: {}\nlog:\n{}",
        producer(&srv, "snap"),
        srv.log()
    );
    let _ = reader.join();

    assert!(ffprobe(&srv.rtsp_url("bad"), "tcp").is_err());
    let p = producer(&srv, "bad");
    let e = p["last_error"].as_str().unwrap_or("");
    assert!(e.contains("401") && !e.contains("wrong"), "{p}");
    assert_eq!(p["last_error_kind"], "auth", "{p}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Credentials given as `#header=` go to the URL's own host only: a redirect to another host gets the
/// other headers but not `Authorization`; and the API shows the header's value masked.
#[test]
fn credential_headers_are_not_sent_to_another_host() {
    let dir = temp_dir("httpredir");
    let media = make_media(&dir);
    // B: serves the snapshot and records what it was sent.
    let b = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen_b = seen.clone();
    let jpeg = media.jpeg.clone();
    std::thread::spawn(move || {
        for s in b.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut head = String::new();
            while let Ok(n) = r.read_line(&mut head) {
                if n <= 2 {
                    break;
                }
            }
            seen_b.lock().unwrap().push(head);
            let mut s = s;
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                jpeg.len()
            );
            let _ = s.write_all(&jpeg);
        }
    });
    // A: redirects everything to B.
    let a = TcpListener::bind("127.0.0.1:0").unwrap();
    let a_port = a.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for s in a.incoming().flatten() {
            let mut r = BufReader::new(s.try_clone().unwrap());
            let mut line = String::new();
            while let Ok(n) = r.read_line(&mut line) {
                if n <= 2 {
                    break;
                }
                line.clear();
            }
            let mut s = s;
            let _ = write!(s, "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{b_port}/snap.jpg\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    let srv = Server::start(&format!(
        "streams:\n  snap: \"http://127.0.0.1:{a_port}/snap.jpg#header=Authorization: Bearer T0KEN#header=X-Trace: 7\"\n"
    ));
    let _reader = rtsp_reader_for(&srv.rtsp_url("snap"), 4);
    assert!(wait_until(Duration::from_secs(30), || !seen.lock().unwrap().is_empty()), "B was never asked");
    let head = seen.lock().unwrap()[0].to_ascii_lowercase();
    assert!(head.contains("x-trace: 7"), "{head}");
    assert!(!head.contains("authorization") && !head.contains("t0ken"), "{head}");
    let api = srv.http("GET", "/api/streams?src=snap").text();
    assert!(!api.contains("T0KEN") && api.contains("Authorization: ***"), "{api}");
    let _ = std::fs::remove_dir_all(dir);
}
