//! `--webrtc`: WebRTC viewers for the benchmark that cost the client as little as possible.
//!
//! Each viewer POSTs a WHEP offer, then does what a browser must do before media flows and nothing
//! more: ICE connectivity checks (STUN binding requests with short-term credentials, as the controlling
//! agent against the server's ICE-lite), and the DTLS handshake (with `dimpl`, the sans-IO DTLS that
//! str0m itself uses). After that it counts SRTP bytes and packets without decrypting them, so 500
//! viewers on one core measure the server, not the client. Consent checks go on every 2 s, as a
//! browser's do (RFC 7675), or the server would drop the session.

use crate::client::ReaderStats;
use dimpl::{Config, Dtls, DtlsCertificate, Output};
use sha1::{Digest, Sha1};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UdpSocket;

/// What every viewer shares: one DTLS certificate (generating one per viewer would measure rcgen).
pub struct Identity {
    certificate: DtlsCertificate,
    fingerprint: String,
    config: Arc<Config>,
}

impl Identity {
    pub fn new() -> Result<Identity, String> {
        let certificate = dimpl::certificate::generate_self_signed_certificate().map_err(|e| e.to_string())?;
        let fingerprint = certificate.fingerprint_str();
        let config = Arc::new(Config::builder().build().map_err(|e| e.to_string())?);
        Ok(Identity { certificate, fingerprint, config })
    }
}

/// The WHEP offer of a receive-only H.264 viewer: the profiles a browser offers, one BUNDLE'd m-line.
fn offer(ufrag: &str, pwd: &str, fingerprint: &str) -> String {
    let mut sdp = String::with_capacity(1024);
    sdp.push_str("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n");
    sdp.push_str(&format!("a=ice-ufrag:{ufrag}\r\na=ice-pwd:{pwd}\r\na=fingerprint:sha-256 {fingerprint}\r\n"));
    sdp.push_str("a=setup:actpass\r\nm=video 9 UDP/TLS/RTP/SAVPF 96 98 100\r\nc=IN IP4 0.0.0.0\r\n");
    sdp.push_str("a=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n");
    for (pt, profile) in [(96, "42e01f"), (98, "4d001f"), (100, "640c1f")] {
        sdp.push_str(&format!("a=rtpmap:{pt} H264/90000\r\n"));
        sdp.push_str(&format!(
            "a=fmtp:{pt} level-asymmetry-allowed=1;packetization-mode=1;profile-level-id={profile}\r\n"
        ));
    }
    sdp
}

/// What a viewer needs from the answer.
#[derive(Debug, PartialEq)]
struct Answer {
    ufrag: String,
    pwd: String,
    /// We are the DTLS client unless the server said `setup:active`.
    we_are_dtls_client: bool,
    /// The server's first UDP candidate.
    candidate: SocketAddr,
}

fn parse_answer(sdp: &str) -> Result<Answer, String> {
    let attr = |name: &str| sdp.lines().find_map(|l| l.trim().strip_prefix(name)).map(str::to_string);
    let ufrag = attr("a=ice-ufrag:").ok_or("answer without ice-ufrag")?;
    let pwd = attr("a=ice-pwd:").ok_or("answer without ice-pwd")?;
    let we_are_dtls_client = attr("a=setup:").as_deref() != Some("active");
    // a=candidate:FOUNDATION COMPONENT udp PRIORITY IP PORT typ host
    let candidate = sdp
        .lines()
        .filter_map(|l| l.trim().strip_prefix("a=candidate:"))
        .find_map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            if f.len() < 6 || !f[2].eq_ignore_ascii_case("udp") {
                return None;
            }
            format!("{}:{}", f[4], f[5]).parse().ok().or_else(|| format!("[{}]:{}", f[4], f[5]).parse().ok())
        })
        .ok_or("answer without a UDP candidate")?;
    Ok(Answer { ufrag, pwd, we_are_dtls_client, candidate })
}

/// Sends one HTTP/1.1 request to `api`; (status line and headers, body).
async fn http(api: &str, method: &str, path: &str, body: &str) -> Result<(String, String), String> {
    let mut s = tokio::net::TcpStream::connect(api).await.map_err(|e| format!("WHEP connect: {e}"))?;
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.map_err(|e| format!("WHEP send: {e}"))?;
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
        .await
        .map_err(|_| "WHEP: no answer within 10 s".to_string())?
        .map_err(|e| format!("WHEP read: {e}"))?;
    let text = String::from_utf8_lossy(&out);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("WHEP: malformed HTTP reply")?;
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if !status.starts_with('2') {
        return Err(format!("WHEP: {} {}", head.lines().next().unwrap_or(""), body.trim()));
    }
    Ok((head.to_string(), body.to_string()))
}

/// POSTs the offer to the WHEP endpoint `path` on `api`: the answer's SDP and the session's URL
/// (`Location`), which a viewer DELETEs when it leaves, as browsers' WHEP players do.
async fn whep(api: &str, path: &str, offer: &str) -> Result<(String, Option<String>), String> {
    let (head, answer) = http(api, "POST", path, offer).await?;
    let location = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case("location").then(|| v.trim().to_string())
    });
    Ok((answer, location))
}

const STUN_MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];

/// HMAC-SHA1 (RFC 2104), the STUN MESSAGE-INTEGRITY of short-term credentials.
fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..20].copy_from_slice(&Sha1::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let (mut inner, mut outer) = (Sha1::new(), Sha1::new());
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(data);
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

/// CRC-32 (IEEE), for the STUN FINGERPRINT attribute.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn push_attr(m: &mut Vec<u8>, typ: u16, value: &[u8]) {
    m.extend_from_slice(&typ.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(value);
    m.resize(m.len().div_ceil(4) * 4, 0);
}

/// Sets the STUN header's length to what the message holds so far plus `extra` bytes.
fn set_len(m: &mut [u8], extra: usize) {
    let len = (m.len() - 20 + extra) as u16;
    m[2..4].copy_from_slice(&len.to_be_bytes());
}

/// An ICE connectivity check from the controlling agent that nominates the pair (RFC 8445 7.2).
fn binding_request(id: [u8; 12], username: &str, pwd: &str, tiebreaker: u64) -> Vec<u8> {
    let mut m = Vec::with_capacity(128);
    m.extend_from_slice(&0x0001u16.to_be_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&STUN_MAGIC);
    m.extend_from_slice(&id);
    push_attr(&mut m, 0x0006, username.as_bytes()); // USERNAME
    push_attr(&mut m, 0x0024, &0x6E00_01FFu32.to_be_bytes()); // PRIORITY (host, UDP)
    push_attr(&mut m, 0x802A, &tiebreaker.to_be_bytes()); // ICE-CONTROLLING
    push_attr(&mut m, 0x0025, &[]); // USE-CANDIDATE
    set_len(&mut m, 24);
    let mac = hmac_sha1(pwd.as_bytes(), &m);
    push_attr(&mut m, 0x0008, &mac); // MESSAGE-INTEGRITY
    set_len(&mut m, 8);
    let fp = crc32(&m) ^ 0x5354_554E;
    push_attr(&mut m, 0x8028, &fp.to_be_bytes()); // FINGERPRINT
    m
}

/// RFC 7983's demultiplexing by first byte: STUN 0–3, DTLS 20–63, RTP/RTCP 128–191.
enum Kind {
    Stun,
    Dtls,
    Rtp,
    Rtcp,
    Other,
}

fn kind(packet: &[u8]) -> Kind {
    match (packet.first(), packet.get(1)) {
        (Some(0..=3), _) => Kind::Stun,
        (Some(20..=63), _) => Kind::Dtls,
        // RTCP packet types 192–223 (RFC 5761); with rtcp-mux, RTP payload types stay outside them.
        (Some(128..=191), Some(192..=223)) => Kind::Rtcp,
        (Some(128..=191), _) => Kind::Rtp,
        _ => Kind::Other,
    }
}

fn xorshift(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn random_token(seed: &mut u64, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    (0..len).map(|_| ALPHABET[(xorshift(seed) % ALPHABET.len() as u64) as usize] as char).collect()
}

/// Lets a viewer's socket hold a burst: the client runs on one thread and reads in turns.
fn large_receive_buffer(sock: &UdpSocket) {
    use std::os::fd::AsRawFd;
    let size: libc::c_int = 4 * 1024 * 1024;
    // SO_RCVBUFFORCE passes net.core.rmem_max (212 KiB by default) when run as root; else the capped
    // SO_RCVBUF. A keyframe of the 720p clip alone is ~100 KiB.
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket descriptor and a c_int option value of the size passed.
        let r = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if r == 0 {
            break;
        }
    }
}

/// One viewer of `path` (a WHEP URL path such as `/api/webrtc?src=bench`) until `stop`. `first_keyframe`
/// in `stats` is the time from the offer to the first SRTP packet (the server starts every viewer at a
/// keyframe; without decrypting, the first media packet is the best the client can tell).
pub async fn view(
    api: String,
    path: String,
    identity: Arc<Identity>,
    seed: u64,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ReaderStats>>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut seed = seed | 1;
    let (ufrag, pwd) = (random_token(&mut seed, 8), random_token(&mut seed, 24));
    let (answer, location) = whep(&api, &path, &offer(&ufrag, &pwd, &identity.fingerprint)).await?;
    let answer = parse_answer(&answer)?;
    let result = run(&answer, &ufrag, seed, started, &identity, &stop, &stats).await;
    if let Some(location) = location {
        let _ = http(&api, "DELETE", &location, "").await;
    }
    result
}

/// ICE, DTLS, then counting media until `stop`.
async fn run(
    answer: &Answer,
    ufrag: &str,
    mut seed: u64,
    started: Instant,
    identity: &Identity,
    stop: &AtomicBool,
    stats: &Mutex<ReaderStats>,
) -> Result<(), String> {
    let local = if answer.candidate.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(local).await.map_err(|e| e.to_string())?;
    large_receive_buffer(&sock);
    sock.connect(answer.candidate).await.map_err(|e| e.to_string())?;
    let username = format!("{}:{ufrag}", answer.ufrag);
    let check = |seed: &mut u64| {
        let mut id = [0u8; 12];
        id[..8].copy_from_slice(&xorshift(seed).to_be_bytes());
        id[8..].copy_from_slice(&(xorshift(seed) as u32).to_be_bytes());
        binding_request(id, &username, &answer.pwd, xorshift(seed))
    };
    sock.send(&check(&mut seed)).await.map_err(|e| e.to_string())?;
    let mut dtls = Dtls::new_12(identity.config.clone(), identity.certificate.clone(), Instant::now());
    dtls.set_active(answer.we_are_dtls_client);
    let mut ice_ok = false;
    let mut connected = false;
    let mut dtls_timeout = Instant::now();
    let mut next_check = Instant::now() + Duration::from_millis(200);
    let mut out = vec![0u8; 2048];
    let mut buf = vec![0u8; 2048];
    let (mut bytes, mut packets) = (0u64, 0u64);
    let mut flushed = Instant::now();
    let mut first_packet = None;
    while !stop.load(Ordering::Relaxed) {
        // Drain the DTLS engine once ICE holds (the client hello goes out after the first check answer).
        if ice_ok && !connected {
            loop {
                match dtls.poll_output(&mut out) {
                    Output::Packet(p) => {
                        let _ = sock.send(p).await;
                    }
                    Output::BufferTooSmall { needed } => out.resize(needed, 0),
                    Output::Timeout(t) => {
                        dtls_timeout = t;
                        break;
                    }
                    Output::Connected => connected = true,
                    _ => {}
                }
            }
        }
        let now = Instant::now();
        if now >= next_check {
            // Before ICE holds, retry quickly; after, a consent check every 2 s.
            sock.send(&check(&mut seed)).await.map_err(|e| e.to_string())?;
            next_check = now + if ice_ok { Duration::from_secs(2) } else { Duration::from_millis(200) };
        }
        if ice_ok && !connected && now >= dtls_timeout {
            dtls.handle_timeout(now).map_err(|e| format!("DTLS: {e}"))?;
            continue;
        }
        if !ice_ok && started.elapsed() > Duration::from_secs(15) {
            return Err("ICE: no answer to connectivity checks within 15 s".into());
        }
        let mut wake = next_check.min(now + Duration::from_millis(250));
        if ice_ok && !connected {
            wake = wake.min(dtls_timeout);
        }
        let n = match tokio::time::timeout_at(wake.into(), sock.recv(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("UDP: {e}")),
            Err(_) => continue,
        };
        // Read whatever else is queued without going back to the scheduler.
        let mut datagram = Some(n);
        while let Some(n) = datagram {
            let p = &buf[..n];
            match kind(p) {
                Kind::Stun => ice_ok |= p.len() >= 2 && p[0] == 0x01 && p[1] == 0x01,
                Kind::Dtls => dtls.handle_packet(p).map_err(|e| format!("DTLS: {e}"))?,
                Kind::Rtp => {
                    if first_packet.is_none() {
                        first_packet = Some(started.elapsed());
                    }
                    bytes += n as u64;
                    packets += 1;
                }
                Kind::Rtcp | Kind::Other => {}
            }
            datagram = sock.try_recv(&mut buf).ok();
        }
        if packets > 0 && flushed.elapsed() > Duration::from_millis(100) {
            let mut s = stats.lock().unwrap();
            if s.first_keyframe.is_none() {
                s.first_keyframe = first_packet;
            }
            s.bytes += bytes;
            s.packets += packets;
            (bytes, packets) = (0, 0);
            flushed = Instant::now();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stun_integrity_matches_rfc5769_sample_request() {
        // RFC 5769 2.1: the sample request's HMAC-SHA1 key and the CRC-32 of "123456789".
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        let mac = hmac_sha1(b"key", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            mac.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "de7c9b85b8b78aa6bc8a7a36f70a90701c9db4d9"
        );
    }

    #[test]
    fn binding_request_is_well_formed() {
        let m = binding_request([7; 12], "srv:cli", "pwd", 42);
        assert_eq!(&m[4..8], &STUN_MAGIC);
        assert_eq!(u16::from_be_bytes([m[2], m[3]]) as usize, m.len() - 20);
        // FINGERPRINT is last and covers everything before it.
        let fp = u32::from_be_bytes(m[m.len() - 4..].try_into().unwrap());
        assert_eq!(fp, crc32(&m[..m.len() - 8]) ^ 0x5354_554E);
    }

    #[test]
    fn answer_fields_are_read() {
        let sdp = "v=0\r\na=ice-ufrag:abcd\r\na=ice-pwd:secretsecret\r\na=setup:passive\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=candidate:1 1 udp 2130706431 127.0.0.1 40000 typ host\r\n";
        let a = parse_answer(sdp).unwrap();
        assert_eq!(a.ufrag, "abcd");
        assert_eq!(a.pwd, "secretsecret");
        assert!(a.we_are_dtls_client);
        assert_eq!(a.candidate, "127.0.0.1:40000".parse().unwrap());
        assert!(parse_answer("v=0\r\na=ice-ufrag:x\r\n").is_err());
    }
}
