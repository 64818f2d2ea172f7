//! The server session against real ffmpeg over a local socket (skipped when ffmpeg is not installed):
//! ffmpeg publishes H.264 over RTMP (its digest handshake, its chunking), then ffprobe/ffmpeg play the
//! captured messages back (ffmpeg checks our digest S1/S2 when playing). The client session plays from
//! and publishes to ffmpeg's own RTMP server (`-listen 1`).

use rtmp::{MediaKind, RtmpServerSession, ServerConfig, ServerEvent};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn have(tool: &str) -> bool {
    Command::new(tool).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
}

fn flush(s: &mut RtmpServerSession, sock: &mut TcpStream) {
    while let Some(b) = s.poll_transmit() {
        if sock.write_all(&b).is_err() {
            return;
        }
    }
}

/// Runs one server session on the next connection; `media` is sent to a player.
fn serve(listener: &TcpListener, media: &[(MediaKind, u32, Vec<u8>)]) -> (Vec<ServerEvent>, bool) {
    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let mut s = RtmpServerSession::new(ServerConfig::default(), Instant::now());
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut played = false;
    while Instant::now() < deadline {
        match sock.read(&mut buf) {
            Ok(0) => s.handle_eof(),
            Ok(n) => s.handle_input(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => s.handle_eof(),
        }
        while let Some(e) = s.poll_event() {
            match &e {
                ServerEvent::Publish { .. } => s.accept_publish(),
                ServerEvent::Play { .. } => {
                    s.accept_play();
                    for (kind, ts, body) in media {
                        s.send_media(*kind, *ts, body).unwrap();
                        flush(&mut s, &mut sock);
                    }
                    played = true;
                    // Stream EOF, then our half of the connection closes; the player ends on its own.
                    s.close();
                    flush(&mut s, &mut sock);
                    let _ = sock.shutdown(std::net::Shutdown::Write);
                }
                _ => {}
            }
            events.push(e);
        }
        flush(&mut s, &mut sock);
        if played {
            // Wait for the player to close, reading (and dropping) what it still sends.
            while Instant::now() < deadline {
                match sock.read(&mut buf) {
                    Ok(0) => return (events, played),
                    Err(e) if !matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                        return (events, played)
                    }
                    _ => {}
                }
            }
        }
        if s.is_ended() {
            break;
        }
    }
    (events, played)
}

#[test]
fn ffmpeg_publishes_and_plays_back() {
    if !have("ffmpeg") || !have("ffprobe") {
        eprintln!("ffmpeg/ffprobe not installed: skipped");
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("rtmp://{}/live/cam?user=u&pass=p", listener.local_addr().unwrap());
    let ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "3"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-f", "flv", &url])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (events, _) = serve(&listener, &[]);
    let out = ffmpeg.wait_with_output().unwrap();
    assert!(out.status.success(), "ffmpeg: {}", String::from_utf8_lossy(&out.stderr));
    assert!(matches!(&events[0], ServerEvent::Connect { app, .. } if app == "live"), "{:?}", &events[..1]);
    assert!(events.contains(&ServerEvent::Publish { stream_key: "cam?user=u&pass=p".into() }), "{events:?}");
    let media: Vec<(MediaKind, u32, Vec<u8>)> = events
        .iter()
        .filter_map(|e| match e {
            ServerEvent::Media { kind, timestamp, payload } => Some((*kind, *timestamp, payload.to_vec())),
            _ => None,
        })
        .collect();
    let video: Vec<_> = media.iter().filter(|m| m.0 == MediaKind::Video).collect();
    // The AVC sequence header, 30 frames (the first a keyframe), the end of sequence.
    assert_eq!(&video[0].2[..2], &[0x17, 0]);
    let frames: Vec<_> = video.iter().filter(|m| m.2[1] == 1).collect();
    assert_eq!(frames.len(), 30, "{} video messages", video.len());
    assert_eq!(&frames[0].2[..2], &[0x17, 1]);
    assert!(frames.windows(2).all(|w| w[0].1 < w[1].1), "timestamps go forward");
    assert_eq!(frames.last().unwrap().1, 2900);
    assert!(media.iter().any(|m| m.0 == MediaKind::Data && m.2.starts_with(b"\x02\x00\x0aonMetaData")));
    assert!(matches!(events.last(), Some(ServerEvent::Closed)), "{:?}", events.last());

    // Play it back to ffprobe and ffmpeg (decoding every frame).
    let url = format!("rtmp://{}/live/cam", listener.local_addr().unwrap());
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", &url])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (_, played) = serve(&listener, &media);
    let out = probe.wait_with_output().unwrap();
    assert!(played);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "h264,160,120", "{}", String::from_utf8_lossy(&out.stderr));
    let decode = Command::new("ffmpeg")
        .args(["-v", "error", "-i", &url, "-f", "framecrc", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    serve(&listener, &media);
    let out = decode.wait_with_output().unwrap();
    let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, 30, "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs a client session on a socket until it ends or `stop` says so; returns its events.
fn run_client(
    mut c: rtmp::RtmpClientSession,
    sock: &mut TcpStream,
    mut stop: impl FnMut(&mut rtmp::RtmpClientSession, &[rtmp::ClientEvent]) -> bool,
) -> Vec<rtmp::ClientEvent> {
    sock.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut events = Vec::new();
    let mut buf = vec![0u8; 65536];
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline && !c.is_ended() {
        while let Some(b) = c.poll_transmit() {
            sock.write_all(&b).unwrap();
        }
        match sock.read(&mut buf) {
            Ok(0) => c.handle_eof(),
            Ok(n) => c.handle_input(Instant::now(), &buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => c.handle_eof(),
        }
        c.handle_timeout(Instant::now());
        while let Some(e) = c.poll_event() {
            events.push(e);
        }
        if stop(&mut c, &events) {
            break;
        }
    }
    while let Some(b) = c.poll_transmit() {
        let _ = sock.write_all(&b);
    }
    events
}

/// ffmpeg's RTMP server (`-f flv -listen 1`) streams to our client in play mode: metadata, the AVC
/// sequence header, then 2 s of frames, the first a keyframe.
#[test]
fn client_plays_from_ffmpeg_listen() {
    if !have("ffmpeg") {
        eprintln!("ffmpeg not installed: skipped");
        return;
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let mut ffmpeg = Command::new("ffmpeg")
        .args(["-v", "error", "-re", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p"])
        .args(["-f", "flv", "-listen", "1", &url])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sock = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("ffmpeg does not listen: {e}"),
        }
    };
    let config = rtmp::ClientConfig::new(rtmp::ClientMode::Play, &rtmp::RtmpUrl::parse(&url).unwrap());
    let c = rtmp::RtmpClientSession::new(config, Instant::now());
    let events = run_client(c, &mut sock, |_, _| false);
    let _ = ffmpeg.kill();
    let _ = ffmpeg.wait();
    assert!(events.contains(&rtmp::ClientEvent::Playing), "{:?}", &events[..events.len().min(8)]);
    let media: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            rtmp::ClientEvent::Media { kind, timestamp, payload } => Some((*kind, *timestamp, payload.clone())),
            _ => None,
        })
        .collect();
    assert!(media.iter().any(|m| m.0 == MediaKind::Data && m.2.starts_with(b"\x02\x00\x0aonMetaData")), "{media:?}");
    let video: Vec<_> = media.iter().filter(|m| m.0 == MediaKind::Video).collect();
    assert_eq!(&video[0].2[..2], &[0x17, 0], "the AVC sequence header first");
    let frames: Vec<_> = video.iter().filter(|m| m.2[1] == 1).collect();
    assert!(frames.len() >= 15, "{} frames", frames.len());
    assert_eq!(&frames[0].2[..2], &[0x17, 1]);
    assert!(frames.windows(2).all(|w| w[0].1 < w[1].1), "timestamps go forward");
    assert!(matches!(events.last(), Some(rtmp::ClientEvent::Closed { .. })), "{:?}", events.last());
}

/// The tags of an FLV file: (type id, timestamp, body).
fn flv_tags(flv: &[u8]) -> Vec<(u8, u32, Vec<u8>)> {
    let mut out = Vec::new();
    let mut p = &flv[13..];
    while p.len() >= 11 {
        let size = (usize::from(p[1]) << 16) | (usize::from(p[2]) << 8) | usize::from(p[3]);
        let ts = u32::from_be_bytes([p[7], p[4], p[5], p[6]]);
        let Some(body) = p.get(11..11 + size) else { break };
        out.push((p[0], ts, body.to_vec()));
        p = p.get(11 + size + 4..).unwrap_or_default();
    }
    out
}

/// Our client in publish mode pushes ffmpeg-made FLV tags (metadata, H.264) into ffmpeg's RTMP server
/// (`-listen 1 -i`), which decodes every frame: the mode the `publish:` pushes use.
#[test]
fn client_publishes_to_ffmpeg_listen() {
    if !have("ffmpeg") {
        eprintln!("ffmpeg not installed: skipped");
        return;
    }
    let made = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", "testsrc=size=160x120:rate=10", "-t", "2"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", "-f", "flv", "-"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(made.status.success());
    let tags = flv_tags(&made.stdout);
    assert!(tags.len() >= 21, "{} tags", tags.len());
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("rtmp://127.0.0.1:{port}/live/x");
    let server = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "flv", "-listen", "1", "-i", &url, "-f", "framecrc", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut sock = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("ffmpeg does not listen: {e}"),
        }
    };
    let config = rtmp::ClientConfig::new(rtmp::ClientMode::Publish, &rtmp::RtmpUrl::parse(&url).unwrap());
    let c = rtmp::RtmpClientSession::new(config, Instant::now());
    let events = run_client(c, &mut sock, |c, events| {
        if c.is_publishing() && events.last() == Some(&rtmp::ClientEvent::Publishing) {
            for (type_id, ts, body) in &tags {
                let kind = match type_id {
                    8 => MediaKind::Audio,
                    9 => MediaKind::Video,
                    _ => MediaKind::Data,
                };
                c.send_media(kind, *ts, body).unwrap();
            }
            c.close();
        }
        false
    });
    assert!(events.contains(&rtmp::ClientEvent::Publishing), "{events:?}");
    drop(sock);
    let out = server.wait_with_output().unwrap();
    let frames = String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.starts_with('#')).count();
    assert_eq!(frames, 20, "ffmpeg decoded {frames} frames: {}", String::from_utf8_lossy(&out.stderr));
}
