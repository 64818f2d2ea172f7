//! `--srt`: SRT readers for the benchmark (stream id `read:PATH`), with `srt-tokio` (the SRT stack the
//! server uses) as the load client. A reader counts the bytes of the MPEG-TS it receives without
//! demuxing it; it only looks at the first TS packets of each video PES to find the frame's first slice,
//! whose key ([`crate::rtmp_load::vcl_key`]) the publisher recorded, for the publish → read latency.

use crate::client::ReaderStats;
use crate::SendTimes;
use futures_util::StreamExt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const TS_PACKET: usize = 188;
/// Bytes of a video PES gathered before looking for its first slice: room for the PES header, an AUD,
/// SPS, PPS and SEI in front of it, and the slice's first 48 bytes (the key).
const SCAN_BYTES: usize = 1024;

/// A video frame's start, seen in the TS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameStart {
    /// [`crate::rtmp_load::vcl_key`] of the frame's first slice NAL.
    pub key: u64,
    /// The slice is an IDR slice.
    pub keyframe: bool,
}

/// Finds each video frame's first slice in an MPEG-TS byte stream, TS packet by TS packet, without
/// reassembling PES packets: a PES that starts with a video stream id (0xE0-0xEF) is followed on its
/// PID for at most [`SCAN_BYTES`] bytes. Bounded, and never panics on any input.
#[derive(Default)]
pub struct TsFrameScanner {
    /// PID and bytes of the video PES being scanned.
    pid: Option<u16>,
    buf: Vec<u8>,
    /// The PES's elementary stream bytes, when its PES_packet_length gives them (0: unbounded).
    es_len: Option<usize>,
}

impl TsFrameScanner {
    /// Feeds one TS packet; returns the frame start it completes, if any.
    pub fn push(&mut self, packet: &[u8]) -> Option<FrameStart> {
        if packet.len() != TS_PACKET || packet[0] != 0x47 {
            return None;
        }
        let pusi = packet[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([packet[1] & 0x1f, packet[2]]);
        let afc = (packet[3] >> 4) & 3;
        if afc & 1 == 0 {
            return None; // no payload
        }
        let mut start = 4;
        if afc == 3 {
            start += 1 + usize::from(packet[4]);
        }
        let payload = packet.get(start..)?;
        if pusi {
            // A new PES on this PID: an unfinished scan of the last one is abandoned.
            if self.pid == Some(pid) {
                self.pid = None;
            }
            if payload.len() >= 9 && payload[..3] == [0, 0, 1] && (0xE0..=0xEF).contains(&payload[3]) {
                let header = 9 + usize::from(payload[8]);
                let pes_len = usize::from(u16::from_be_bytes([payload[4], payload[5]]));
                self.es_len = (pes_len > 0).then(|| pes_len.saturating_sub(header - 6));
                self.pid = Some(pid);
                self.buf.clear();
                self.buf.extend_from_slice(payload.get(header..).unwrap_or(&[]));
            } else {
                return None;
            }
        } else if self.pid == Some(pid) {
            let room = SCAN_BYTES.saturating_sub(self.buf.len());
            self.buf.extend_from_slice(&payload[..payload.len().min(room)]);
        } else {
            return None;
        }
        let complete = self.es_len.is_some_and(|n| self.buf.len() >= n);
        match first_slice(&self.buf, complete) {
            Scan::Found(start) => {
                self.pid = None;
                Some(start)
            }
            Scan::NeedMore if self.buf.len() < SCAN_BYTES => None,
            _ => {
                self.pid = None;
                None
            }
        }
    }
}

enum Scan {
    Found(FrameStart),
    NeedMore,
    NotFound,
}

/// The first slice NAL of Annex B bytes, once 48 bytes of it (or all of it: the next start code, or
/// the end of a `complete` PES) are there.
fn first_slice(annexb: &[u8], complete: bool) -> Scan {
    let mut i = 0;
    while i + 3 <= annexb.len() {
        if annexb[i..i + 3] != [0, 0, 1] {
            i += 1;
            continue;
        }
        let nal = &annexb[i + 3..];
        let Some(&header) = nal.first() else { return Scan::NeedMore };
        if matches!(header & 0x1f, 1 | 5) {
            // The NAL ends at the next start code (a zero_byte in front of it belongs to the next one).
            let end = (0..nal.len().saturating_sub(2)).find(|&j| nal[j..j + 3] == [0, 0, 1]);
            let end = end.map(|j| if j > 0 && nal[j - 1] == 0 { j - 1 } else { j });
            let nal = &nal[..end.unwrap_or(nal.len())];
            if end.is_none() && nal.len() < 48 && !complete {
                return Scan::NeedMore;
            }
            let key = crate::rtmp_load::vcl_key(nal);
            return Scan::Found(FrameStart { key, keyframe: header & 0x1f == 5 });
        }
        i += 3;
    }
    if annexb.len() >= SCAN_BYTES {
        Scan::NotFound
    } else {
        Scan::NeedMore
    }
}

/// One SRT reader of `stream` on the server at `addr` until `stop`: counts bytes and frames, the time
/// to the first keyframe and (with `times`) the latency of each frame.
pub async fn read(
    addr: SocketAddr,
    stream: String,
    latency: Duration,
    times: Option<Arc<Mutex<SendTimes>>>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<ReaderStats>>,
) -> Result<(), String> {
    let connected = Instant::now();
    let stream_id = format!("read:{stream}");
    let mut socket = tokio::time::timeout(
        Duration::from_secs(10),
        srt_tokio::SrtSocket::builder()
            // The default 64 KiB UDP receive buffer overflows at the GOP cache's burst (a second of
            // video at once) when many readers start together; libsrt's default is 8 MiB.
            .set(|o| o.connect.udp_recv_buffer_size = srt_protocol::options::ByteCount(4 << 20))
            .latency(latency)
            .call(addr, Some(&stream_id)),
    )
    .await
    .map_err(|_| format!("srt {addr}: no handshake within 10 s"))?
    .map_err(|e| format!("srt {addr} {stream_id}: {e}"))?;
    let mut scanner = TsFrameScanner::default();
    let mut local = ReaderStats::default();
    let mut flush_at = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let message = match tokio::time::timeout(Duration::from_millis(200), socket.next()).await {
            Err(_) => continue,
            Ok(None) => return Err("srt: the server closed the connection".into()),
            Ok(Some(Err(e))) => return Err(format!("srt: {e}")),
            Ok(Some(Ok((_, message)))) => message,
        };
        let received = Instant::now();
        local.bytes += message.len() as u64;
        local.packets += 1;
        for packet in message.chunks(TS_PACKET) {
            let Some(frame) = scanner.push(packet) else { continue };
            local.video_frames += 1;
            if local.first_keyframe.is_none() && frame.keyframe {
                local.first_keyframe = Some(received - connected);
            }
            if let Some(times) = &times {
                if local.latency_us.len() < 100_000 {
                    if let Some(sent) = times.lock().unwrap().map.get(&frame.key) {
                        local.latency_us.push(received.saturating_duration_since(*sent).as_micros() as u32);
                    }
                }
            }
        }
        if received.duration_since(flush_at) > Duration::from_millis(100) {
            flush_at = received;
            local.flush_into(&stats);
        }
    }
    // Closing sends SRT's shutdown, so the server ends the reader at once.
    let _ = futures_util::SinkExt::close(&mut socket).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::{codec, Codec, Frame, Kind};

    /// A camera's baseline 640x480 SPS/PPS.
    const FMTP: &str =
        "packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==";

    /// An AVCC frame: AUD, SPS, PPS (keyframes), then a slice of `slice_len` bytes.
    fn avcc_frame(idr: bool, seed: u8, slice_len: usize) -> Vec<u8> {
        let (sps, pps) = media::h264::parse_sprop_parameter_sets(FMTP);
        let mut nals: Vec<Vec<u8>> = vec![vec![0x09, 0xf0]];
        if idr {
            nals.push(sps[0].to_vec());
            nals.push(pps[0].to_vec());
        }
        let mut slice = vec![if idr { 0x65 } else { 0x41 }];
        slice.extend((0..slice_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1));
        nals.push(slice);
        let mut out = Vec::new();
        for n in nals {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(&n);
        }
        out
    }

    /// What the server's TS muxer (`formats::ts`) writes for these frames, scanned packet by packet,
    /// gives each frame's publisher key, once per frame, with the keyframe flag.
    #[test]
    fn finds_each_frame_start_in_the_servers_ts() {
        let video = Codec::new(codec::H264, 90_000, 0, 96).with_fmtp(FMTP);
        let audio =
            Codec::new(codec::AAC, 44_100, 2, 97).with_fmtp("streamtype=5;mode=AAC-hbr;config=1210;sizelength=13");
        let mut mux = formats::ts::TsMuxer::new(&[(Kind::Video, video), (Kind::Audio, audio)]).unwrap();
        let mut ts = mux.psi();
        let mut want = Vec::new();
        // Short and long slices: the 48 key bytes inside the first TS packet or across two.
        for (i, len) in [20000usize, 40, 130, 160, 175, 3000].into_iter().enumerate() {
            let payload = avcc_frame(i == 0, i as u8, len);
            want.push((crate::rtmp_load::avcc_first_vcl_key(&payload).unwrap(), i == 0));
            let frame =
                Frame { timestamp: i as u32 * 3000, keyframe: i == 0, payload: Bytes::from(payload), rtp: vec![] };
            ts.extend_from_slice(&mux.push(0, &frame).unwrap());
            let aac = Frame {
                timestamp: i as u32 * 1600,
                keyframe: true,
                payload: Bytes::from(vec![0x21; 200]),
                rtp: vec![],
            };
            ts.extend_from_slice(&mux.push(1, &aac).unwrap());
        }
        let mut scanner = TsFrameScanner::default();
        let got: Vec<(u64, bool)> =
            ts.chunks(TS_PACKET).filter_map(|p| scanner.push(p)).map(|f| (f.key, f.keyframe)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn garbage_and_truncated_packets_find_nothing() {
        let mut scanner = TsFrameScanner::default();
        let mut seed = 0x1234_5678_9abc_def0u64;
        let mut found = 0;
        for n in 0..20000 {
            let mut p = [0u8; TS_PACKET];
            for b in p.iter_mut() {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                *b = seed as u8;
            }
            p[0] = 0x47;
            // Some packets claim a video PES with a header length past the packet.
            if n % 3 == 0 {
                p[1] |= 0x40;
                p[3] = 0x10;
                p[4..8].copy_from_slice(&[0, 0, 1, 0xE0]);
            }
            found += usize::from(scanner.push(&p).is_some());
            assert!(scanner.push(&p[..100]).is_none());
            assert!(scanner.buf.len() <= SCAN_BYTES + TS_PACKET);
        }
        // Random bytes hold a start code and a slice header now and then; nothing more is asked.
        assert!(found < 2000, "{found}");
    }
}
