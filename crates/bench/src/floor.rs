//! The floor: the least work any RTSP fan-out server can do for the benchmark's load, run as a
//! separate process and measured exactly like the server under test (`--server floor`).
//!
//! It takes the publisher's stream (ANNOUNCE/SETUP/RECORD over TCP interleaved) and forwards the
//! publisher's own bytes to every playing reader: one non-blocking `writev` per video frame per
//! reader, audio waiting to share the next video frame's write, as camrelay does. It does nothing
//! else a real server must: no per-reader RTP headers (every reader gets the publisher's sequence
//! numbers), no depacketizing, no GOP cache (a reader starts at the next keyframe), no RTCP, no
//! timers, no async runtime. What it costs is what the kernel charges for the writes and the ingest,
//! so `server / floor` is how much camrelay adds on top of the unavoidable.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rtsp::message::{decode, Decoded, Method};

use crate::client::starts_keyframe;

/// A playing reader: its socket, whether it waits for a keyframe, and bytes left over from a
/// partial write (sent before anything else, or the frame after them is dropped).
struct Reader {
    socket: TcpStream,
    waiting_keyframe: bool,
    unsent: Vec<u8>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    readers: Mutex<Vec<Reader>>,
    dropped: AtomicU64,
}

/// Runs the floor server until killed: prints its RTSP and API addresses on stdout the way camrelay
/// logs them, so the bench starts it like any server.
pub fn serve(ip: &str) -> ! {
    let rtsp = TcpListener::bind((ip, 0)).expect("floor: bind RTSP");
    let api = TcpListener::bind((ip, 0)).expect("floor: bind API");
    println!("00:00:00.000 INF [rtsp] listen addr={}", rtsp.local_addr().expect("addr"));
    println!("00:00:00.000 INF [api] listen addr={}", api.local_addr().expect("addr"));
    let shared = Arc::new(Shared::default());
    let for_api = shared.clone();
    std::thread::spawn(move || {
        for conn in api.incoming().map_while(Result::ok) {
            answer_api(conn, &for_api);
        }
    });
    for conn in rtsp.incoming().map_while(Result::ok) {
        let shared = shared.clone();
        std::thread::spawn(move || {
            let _ = session(conn, &shared);
        });
    }
    std::process::exit(1)
}

/// `GET /api/streams?...`: the dropped count, in the shape the bench reads from camrelay.
fn answer_api(mut conn: TcpStream, shared: &Shared) {
    let mut buf = [0u8; 4096];
    let _ = conn.read(&mut buf);
    let body = format!(r#"{{"consumers":[{{"dropped":{}}}]}}"#, shared.dropped.load(Ordering::Relaxed));
    let _ = write!(conn, "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
}

/// One RTSP connection: answers requests; after RECORD it becomes the ingest loop, after PLAY the
/// socket joins the readers (non-blocking; nothing is read from it again) and this thread ends.
fn session(mut conn: TcpStream, shared: &Shared) -> io::Result<()> {
    conn.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut sdp = String::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let Some((Decoded::Request(req), used)) = decode(&buf).map_err(io::Error::other)? else {
            let n = conn.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buf.extend_from_slice(&chunk[..n]);
            continue;
        };
        buf.drain(..used);
        let cseq = req.headers.get("CSeq").unwrap_or("0").to_string();
        let mut extra = String::new();
        let mut body = String::new();
        match req.method {
            Method::Announce => sdp = String::from_utf8_lossy(&req.body).into_owned(),
            Method::Describe => {
                body = floor_sdp(&sdp);
                extra = format!("Content-Type: application/sdp\r\nContent-Base: {}/\r\n", req.uri);
            }
            Method::Setup => {
                let transport = req.headers.get("Transport").unwrap_or("").to_string();
                extra = format!("Transport: {transport}\r\nSession: 1\r\n");
            }
            _ => {}
        }
        write!(conn, "RTSP/1.0 200 OK\r\nCSeq: {cseq}\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len())?;
        match req.method {
            Method::Record => return ingest(conn, buf, shared),
            Method::Play => {
                conn.set_nonblocking(true)?;
                // A closed reader is noticed by the writes failing.
                shared.readers.lock().unwrap().push(Reader {
                    socket: conn,
                    waiting_keyframe: true,
                    unsent: Vec::new(),
                    closed: false,
                });
                return Ok(());
            }
            _ => {}
        }
    }
}

/// The publisher's SDP as the readers' DESCRIBE answer, with the same track controls.
fn floor_sdp(announced: &str) -> String {
    if announced.is_empty() {
        return "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=floor\r\nt=0 0\r\n".into();
    }
    announced.to_string()
}

/// Reads the publisher's interleaved packets; a video packet with the marker bit ends a frame, which
/// goes to every reader with the audio that arrived since the last one.
fn ingest(mut conn: TcpStream, mut buf: Vec<u8>, shared: &Shared) -> io::Result<()> {
    let mut video: Vec<u8> = Vec::with_capacity(512 * 1024);
    let mut audio: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut keyframe = false;
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let mut at = 0;
        while buf.len() - at >= 4 {
            if buf[at] != b'$' {
                // An RTSP request from the publisher (a keep-alive): skipped, unanswered.
                match decode(&buf[at..]) {
                    Ok(Some((_, used))) => {
                        at += used;
                        continue;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(io::Error::other(e)),
                }
            }
            let len = u16::from_be_bytes([buf[at + 2], buf[at + 3]]) as usize;
            if buf.len() - at < 4 + len {
                break;
            }
            let packet = &buf[at..at + 4 + len];
            at += 4 + len;
            match packet[1] {
                0 if len >= 12 => {
                    if video.is_empty() {
                        keyframe = starts_keyframe(&packet[16..]);
                    }
                    video.extend_from_slice(packet);
                    if packet[5] & 0x80 != 0 {
                        fan_out(shared, &audio, &video, keyframe);
                        video.clear();
                        audio.clear();
                    }
                }
                2 => audio.extend_from_slice(packet),
                _ => {}
            }
        }
        buf.drain(..at);
        let n = conn.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// One vectored write per reader: leftovers of its last partial write, the held audio, the frame.
fn fan_out(shared: &Shared, audio: &[u8], video: &[u8], keyframe: bool) {
    let mut readers = shared.readers.lock().unwrap();
    for r in readers.iter_mut() {
        if r.waiting_keyframe && !keyframe {
            continue;
        }
        r.waiting_keyframe = false;
        let mut pending = r.unsent.len();
        if pending > 0 {
            match r.socket.write(&r.unsent) {
                Ok(n) => {
                    r.unsent.drain(..n);
                    pending -= n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    r.closed = true;
                    continue;
                }
            }
            if pending > 0 {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                r.waiting_keyframe = true;
                continue;
            }
        }
        let total = audio.len() + video.len();
        match r.socket.write_vectored(&[IoSlice::new(audio), IoSlice::new(video)]) {
            Ok(n) if n == total => {}
            Ok(n) => {
                let mut rest = Vec::with_capacity(total - n);
                rest.extend_from_slice(audio.get(n..).unwrap_or(&[]));
                rest.extend_from_slice(&video[n.saturating_sub(audio.len())..]);
                r.unsent = rest;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                shared.dropped.fetch_add(1, Ordering::Relaxed);
                r.waiting_keyframe = true;
            }
            Err(_) => r.closed = true,
        }
    }
    readers.retain(|r| !r.closed);
}
