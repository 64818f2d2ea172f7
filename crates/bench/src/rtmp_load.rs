//! `--rtmp`: RTMP players and an RTMP publisher for the benchmark, driven by the rtmp crate's sans-IO
//! client session (`rtmp::RtmpClientSession`) over tokio sockets.
//!
//! Frames are matched between a publisher and a reader by [`vcl_key`]: a hash of the first bytes of the
//! frame's first slice NAL, which every path carries unchanged (RTP single NAL / STAP-A / FU-A, FLV's
//! length-prefixed NALs), whatever the server does with parameter sets and packetization.

use crate::client::ReaderStats;
use crate::clip::{self, Clip};
use crate::SendTimes;
use rtmp::{ClientConfig, ClientEvent, ClientMode, MediaKind, RtmpClientSession, RtmpUrl};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The key of a slice NAL (header byte included): a hash of its first 48 bytes.
pub fn vcl_key(nal: &[u8]) -> u64 {
    clip::frame_key(nal)
}

fn is_vcl(nal_header: u8) -> bool {
    matches!(nal_header & 0x1f, 1 | 5)
}

/// The key of the first slice of a frame whose payload is length-prefixed NALs (the clip's frames and
/// FLV's AVC NALU packets).
pub fn avcc_first_vcl_key(mut avcc: &[u8]) -> Option<u64> {
    while avcc.len() >= 4 {
        let n = u32::from_be_bytes([avcc[0], avcc[1], avcc[2], avcc[3]]) as usize;
        let nal = avcc.get(4..4 + n)?;
        if nal.first().is_some_and(|&h| is_vcl(h)) {
            return Some(vcl_key(nal));
        }
        avcc = &avcc[4 + n..];
    }
    None
}

/// The key of the slice an H.264 RTP payload starts, if it starts one (single NAL, a STAP-A holding
/// one, or the first FU-A fragment of one).
pub fn rtp_vcl_key(payload: &[u8]) -> Option<u64> {
    let &h = payload.first()?;
    match h & 0x1f {
        1..=23 => is_vcl(h).then(|| vcl_key(payload)),
        24 => {
            let mut p = &payload[1..];
            while p.len() >= 2 {
                let n = usize::from(u16::from_be_bytes([p[0], p[1]]));
                let nal = p.get(2..2 + n)?;
                if nal.first().is_some_and(|&b| is_vcl(b)) {
                    return Some(vcl_key(nal));
                }
                p = &p[2 + n..];
            }
            None
        }
        28 => {
            let fu = *payload.get(1)?;
            if fu & 0x80 == 0 || !is_vcl(fu) {
                return None;
            }
            let mut nal = Vec::with_capacity(48);
            nal.push((h & 0xe0) | (fu & 0x1f));
            nal.extend_from_slice(&payload[2..payload.len().min(49)]);
            Some(vcl_key(&nal))
        }
        _ => None,
    }
}

/// `stream` is `app/name` (`live/bench`, our server and go2rtc) or a bare `name` (the application
/// alone, MediaMTX's path `name`).
fn session(addr: &str, stream: &str, mode: ClientMode) -> Result<RtmpClientSession, String> {
    let url = RtmpUrl::parse(&format!("rtmp://{addr}/{stream}/x"))?;
    let mut config = ClientConfig::new(mode, &url);
    match stream.split_once('/') {
        Some((app, name)) => (config.app, config.stream) = (app.to_string(), name.to_string()),
        None => config.stream = String::new(),
    }
    config.tc_url = format!("rtmp://{addr}/{}", config.app);
    Ok(RtmpClientSession::new(config, Instant::now()))
}

async fn flush(sock: &mut TcpStream, s: &mut RtmpClientSession) -> Result<u64, String> {
    let mut n = 0;
    while let Some(b) = s.poll_transmit() {
        sock.write_all(&b).await.map_err(|e| format!("write: {e}"))?;
        n += b.len() as u64;
    }
    Ok(n)
}

/// One RTMP player of `rtmp://addr/stream`: counts bytes on the wire, video frames, the first
/// keyframe and (with `times`) the publisher-write → receipt latency of each video frame, until `stop`.
pub async fn play(
    addr: String,
    stream: String,
    times: Option<Arc<Mutex<SendTimes>>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ReaderStats>>,
) -> Result<(), String> {
    let connected = Instant::now();
    let mut sock = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut s = session(&addr, &stream, ClientMode::Play)?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut local = ReaderStats::default();
    let mut flush_at = Instant::now();
    let mut counted = 0u64;
    while !stop.load(Ordering::Relaxed) {
        flush(&mut sock, &mut s).await?;
        match tokio::time::timeout(Duration::from_millis(200), sock.read(&mut buf)).await {
            Ok(Ok(0)) => s.handle_eof(),
            Ok(Ok(n)) => s.handle_input(Instant::now(), &buf[..n]),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => s.handle_timeout(Instant::now()),
        }
        let received = Instant::now();
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::Media { kind: MediaKind::Video, payload, .. } => {
                    // AVC sequence headers (packet type 0) are not frames.
                    if payload.len() < 5 || payload[1] != 1 {
                        continue;
                    }
                    local.video_frames += 1;
                    local.packets += 1;
                    if local.first_keyframe.is_none() && payload[0] >> 4 == 1 {
                        local.first_keyframe = Some(received - connected);
                    }
                    if let (Some(times), Some(key)) = (&times, avcc_first_vcl_key(&payload[5..])) {
                        if local.latency_us.len() < 100_000 {
                            if let Some(sent) = times.lock().unwrap().map.get(&key) {
                                local.latency_us.push(received.saturating_duration_since(*sent).as_micros() as u32);
                            }
                        }
                    }
                }
                ClientEvent::Media { .. } => local.packets += 1,
                ClientEvent::Error(e) => return Err(e.to_string()),
                ClientEvent::Closed { reason } => return Err(format!("closed: {reason}")),
                _ => {}
            }
        }
        local.bytes += s.bytes_received() - counted;
        counted = s.bytes_received();
        if received.duration_since(flush_at) > Duration::from_millis(100) {
            flush_at = received;
            local.flush_into(&stats);
        }
    }
    Ok(())
}

/// FLV tag bodies of the clip: the AVC and AAC sequence headers, and per frame its body.
struct FlvClip {
    video_header: Vec<u8>,
    audio_header: Vec<u8>,
}

fn flv_clip(clip: &Clip) -> Result<FlvClip, String> {
    let (mut sps, mut pps) = (None, None);
    let first = clip.video.iter().find(|f| f.keyframe).ok_or("no keyframe in the clip")?;
    let mut p = &first.payload[..];
    while p.len() >= 4 {
        let n = u32::from_be_bytes([p[0], p[1], p[2], p[3]]) as usize;
        let nal = p.get(4..4 + n).ok_or("bad clip frame")?;
        match nal.first().map(|h| h & 0x1f) {
            Some(7) => sps = sps.or(Some(nal.to_vec())),
            Some(8) => pps = pps.or(Some(nal.to_vec())),
            _ => {}
        }
        p = &p[4 + n..];
    }
    let (Some(sps), Some(pps)) = (sps, pps) else { return Err("no SPS/PPS in the clip's keyframe".into()) };
    let mut v = vec![0x17, 0, 0, 0, 0, 1, sps[1], sps[2], sps[3], 0xff, 0xe1];
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(&sps);
    v.push(1);
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(&pps);
    let config = clip
        .audio_codec
        .fmtp
        .split(';')
        .find_map(|kv| kv.trim().strip_prefix("config="))
        .ok_or("no AAC config in the clip")?;
    let asc: Vec<u8> = (0..config.len() / 2)
        .map(|i| u8::from_str_radix(&config[2 * i..2 * i + 2], 16).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let mut a = vec![0xaf, 0];
    a.extend_from_slice(&asc);
    Ok(FlvClip { video_header: v, audio_header: a })
}

/// Publishes the clip over RTMP to `rtmp://addr/stream` in real time, looping, until `stop`.
/// Records each video frame's write time under its [`avcc_first_vcl_key`].
pub async fn publish(
    addr: String,
    stream: String,
    clip: Arc<Clip>,
    times: Arc<Mutex<SendTimes>>,
    sent: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<(), String> {
    let flv = flv_clip(&clip)?;
    let mut sock = TcpStream::connect(&addr).await.map_err(|e| e.to_string())?;
    sock.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut s = session(&addr, &stream, ClientMode::Publish)?;
    let mut buf = vec![0u8; 64 * 1024];
    // Set-up: until the server says Publish.Start.
    loop {
        flush(&mut sock, &mut s).await?;
        let n = tokio::time::timeout(Duration::from_secs(10), sock.read(&mut buf))
            .await
            .map_err(|_| "RTMP publish: no answer within 10 s".to_string())?
            .map_err(|e| e.to_string())?;
        if n == 0 {
            s.handle_eof();
        } else {
            s.handle_input(Instant::now(), &buf[..n]);
        }
        let mut publishing = false;
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::Publishing => publishing = true,
                ClientEvent::Error(e) => return Err(e.to_string()),
                ClientEvent::Closed { reason } => return Err(reason),
                _ => {}
            }
        }
        if publishing {
            break;
        }
    }
    let send =
        |s: &mut RtmpClientSession, kind, ts, body: &[u8]| s.send_media(kind, ts, body).map_err(|e| e.to_string());
    send(&mut s, MediaKind::Video, 0, &flv.video_header)?;
    send(&mut s, MediaKind::Audio, 0, &flv.audio_header)?;
    flush(&mut sock, &mut s).await?;
    let start = tokio::time::Instant::now();
    let (mut vi, mut ai) = (0usize, 0usize);
    let clip_ms = 1000 * clip::SECONDS;
    let audio_clip_ms = clip.audio.len() as f64 * 1024.0 * 1000.0 / 48_000.0;
    let mut body = Vec::with_capacity(256 * 1024);
    while !stop.load(Ordering::Relaxed) {
        let v_at = start + Duration::from_secs_f64(vi as f64 / clip::FPS as f64);
        let a_at = start + Duration::from_secs_f64(ai as f64 * 1024.0 / 48_000.0);
        let video = v_at <= a_at;
        tokio::time::sleep_until(if video { v_at } else { a_at }).await;
        body.clear();
        if video {
            let f = &clip.video[vi % clip.video.len()];
            let loops = (vi / clip.video.len()) as u32;
            let ts = (f.timestamp / 90) + loops * clip_ms;
            body.extend_from_slice(&[if f.keyframe { 0x17 } else { 0x27 }, 1, 0, 0, 0]);
            body.extend_from_slice(&f.payload);
            send(&mut s, MediaKind::Video, ts, &body)?;
            if let Some(key) = avcc_first_vcl_key(&f.payload) {
                times.lock().unwrap().insert(key, Instant::now());
            }
            vi += 1;
        } else {
            let f = &clip.audio[ai % clip.audio.len()];
            let loops = (ai / clip.audio.len()) as f64;
            let ts = (f.timestamp as f64 * 1000.0 / 48_000.0 + loops * audio_clip_ms) as u32;
            body.extend_from_slice(&[0xaf, 1]);
            body.extend_from_slice(&f.payload);
            send(&mut s, MediaKind::Audio, ts, &body)?;
            ai += 1;
        }
        let n = flush(&mut sock, &mut s).await?;
        sent.fetch_add(n, Ordering::Relaxed);
        // Acknowledgement windows, pings: keep the session fed.
        while let Ok(n) = sock.try_read(&mut buf) {
            if n == 0 {
                return Err("the server closed the publishing connection".into());
            }
            s.handle_input(Instant::now(), &buf[..n]);
        }
        while let Some(ev) = s.poll_event() {
            match ev {
                ClientEvent::Error(e) => return Err(e.to_string()),
                ClientEvent::Closed { reason } => return Err(reason),
                _ => {}
            }
        }
    }
    s.close();
    let _ = flush(&mut sock, &mut s).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_slice_has_the_same_key_in_rtp_and_flv() {
        let slice: Vec<u8> = (0..200u8).map(|i| if i == 0 { 0x65 } else { i }).collect();
        let mut avcc = Vec::new();
        for nal in [&[0x67u8, 1, 2, 3][..], &[0x68, 4], &slice] {
            avcc.extend_from_slice(&(nal.len() as u32).to_be_bytes());
            avcc.extend_from_slice(nal);
        }
        let key = avcc_first_vcl_key(&avcc).unwrap();
        // FU-A first fragment.
        let mut fu = vec![(0x65 & 0xe0) | 28, 0x80 | 5];
        fu.extend_from_slice(&slice[1..100]);
        assert_eq!(rtp_vcl_key(&fu), Some(key));
        // Single NAL.
        assert_eq!(rtp_vcl_key(&slice), Some(key));
        // STAP-A with SPS, PPS and no slice: none; FU-A continuation: none.
        assert_eq!(rtp_vcl_key(&[24, 0, 2, 0x67, 1, 0, 1, 0x68]), None);
        assert_eq!(rtp_vcl_key(&[28, 5, 1, 2]), None);
    }
}
