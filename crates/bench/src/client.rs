//! A small, efficient RTSP client over TCP interleaved: the benchmark's publisher and readers.

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
    cseq: u32,
    pub session: Option<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

impl Conn {
    pub async fn connect(addr: &str) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: BytesMut::with_capacity(64 * 1024), cseq: 0, session: None })
    }

    /// Sends a request and waits for its reply, skipping interleaved data that arrives meanwhile.
    pub async fn request(
        &mut self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: &[u8],
    ) -> Result<Reply, String> {
        self.cseq += 1;
        let mut req = format!("{method} {url} RTSP/1.0\r\nCSeq: {}\r\nUser-Agent: camrelay-bench\r\n", self.cseq);
        if let Some(s) = &self.session {
            req.push_str(&format!("Session: {s}\r\n"));
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        if !body.is_empty() {
            req.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        req.push_str("\r\n");
        let mut bytes = req.into_bytes();
        bytes.extend_from_slice(body);
        self.stream.write_all(&bytes).await.map_err(|e| e.to_string())?;
        loop {
            match rtsp::message::decode(&self.buf).map_err(|e| e.to_string())? {
                Some((rtsp::message::Decoded::Response(r), used)) => {
                    self.buf.advance(used);
                    let headers = r.headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    let reply = Reply { status: r.status, headers, body: r.body.to_vec() };
                    if let Some(s) = reply.header("Session") {
                        self.session = Some(s.split(';').next().unwrap_or(s).trim().to_string());
                    }
                    if reply.status != 200 {
                        return Err(format!(
                            "{method} {url}: {} {}",
                            reply.status,
                            String::from_utf8_lossy(&reply.body).trim()
                        ));
                    }
                    return Ok(reply);
                }
                Some((_, used)) => self.buf.advance(used),
                None => {
                    if self.stream.read_buf(&mut self.buf).await.map_err(|e| e.to_string())? == 0 {
                        return Err(format!("{method}: connection closed"));
                    }
                }
            }
        }
    }
}

/// What one reader measured.
#[derive(Default, Clone)]
pub struct ReaderStats {
    pub bytes: u64,
    pub packets: u64,
    pub video_frames: u64,
    /// Time from connect to the first packet of a keyframe.
    pub first_keyframe: Option<std::time::Duration>,
    /// Publisher write → reader receipt of each video frame's first packet, in microseconds.
    pub latency_us: Vec<u32>,
}

impl ReaderStats {
    /// Adds what this reader counted since its last flush to the shared totals and starts afresh (keeping
    /// its first-keyframe time). Readers flush a few times a second, so there is no lock per packet.
    pub fn flush_into(&mut self, shared: &std::sync::Mutex<ReaderStats>) {
        let mut s = shared.lock().unwrap();
        s.bytes += self.bytes;
        s.packets += self.packets;
        s.video_frames += self.video_frames;
        s.first_keyframe = s.first_keyframe.or(self.first_keyframe);
        s.latency_us.append(&mut self.latency_us);
        *self = ReaderStats { first_keyframe: self.first_keyframe, ..Default::default() };
    }
}

/// True when an H.264 RTP payload starts a keyframe (IDR, or the SPS sent in front of it).
pub fn starts_keyframe(payload: &[u8]) -> bool {
    let Some(&h) = payload.first() else { return false };
    match h & 0x1f {
        5 | 7 => true,
        24 => payload.get(3).is_some_and(|b| matches!(b & 0x1f, 5 | 7)),
        28 => payload.get(1).is_some_and(|b| b & 0x80 != 0 && b & 0x1f == 5),
        _ => false,
    }
}

/// Splits complete interleaved frames off `buf`: calls `f(channel, packet)` for each.
pub fn drain_interleaved(buf: &mut BytesMut, mut f: impl FnMut(u8, &[u8])) -> Result<(), String> {
    loop {
        if buf.len() < 4 {
            return Ok(());
        }
        if buf[0] != b'$' {
            // A keep-alive reply or the like: skip one RTSP message.
            match rtsp::message::decode(buf).map_err(|e| e.to_string())? {
                Some((_, used)) => {
                    buf.advance(used);
                    continue;
                }
                None => return Ok(()),
            }
        }
        let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
        if buf.len() < 4 + len {
            return Ok(());
        }
        f(buf[1], &buf[4..4 + len]);
        buf.advance(4 + len);
    }
}
