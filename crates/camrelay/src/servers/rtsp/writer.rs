//! The write side of an RTSP connection: responses and a playing reader's media, in order, on one
//! socket.
//!
//! A playing reader's frames are written by the source's task itself, in the track's push path (the
//! writer is the reader's [`DirectSink`]): one non-blocking vectored write per video frame, audio
//! waiting to share it (see [`AUDIO_HOLD`]), with no queue and no task wakeup per frame. When the
//! socket would block, the unsent rest stays here, later frames wait behind it (up to the reader's
//! queue size; beyond that they are dropped and counted, and video resumes at a keyframe), and the
//! connection's task finishes the writes once the socket is writable again. The source never waits.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use media::{Frame, Kind};
use smallvec::SmallVec;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use super::tls::TlsSession;
use super::udp::UdpPorts;
use crate::hub::reader::{DirectSink, Offer};
use crate::hub::{ReaderShared, Track};

/// Longest a stalled TCP reader may keep a write unfinished before we give up on it.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// RTCP sender report interval per track.
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// How long a TCP reader's audio may wait for the next video frame to share its write (one video frame
/// interval at 25 fps). Checked when the next frame of any of the reader's tracks arrives, and at least
/// once a second by the connection's task.
pub(super) const AUDIO_HOLD: Duration = Duration::from_millis(40);
/// Audio frames held at most, and frames encoded into one write when catching up.
const MAX_BATCH_FRAMES: usize = 32;
/// Pieces per write call: at most two slices each (the kernel takes up to 1024).
const MAX_PIECES: usize = 256;
/// Slices a write keeps on the stack: a P-frame of a few Mbit/s video and the audio held for it.
const SMALL_SLICES: usize = 48;
/// Interleaved header (4 bytes) and RTP header (12 bytes) of a packet, written together.
const PACKET_HEADER: usize = 16;
/// How often a reader's sent packets and bytes are added to the counters the API shows: per frame,
/// the shared counters would be one more cold cache line per reader.
const REPORT_INTERVAL: Duration = Duration::from_millis(250);

/// Where a track's packets go.
#[derive(Clone, Copy, Debug)]
pub(super) enum Dest {
    /// TCP interleaved channels (RTP, RTCP).
    Interleaved(u8, u8),
    /// UDP unicast to the client's RTP and RTCP ports.
    Udp(SocketAddr, SocketAddr),
}

/// Per-track state of a reader's outgoing RTP: each reader gets its own sequence numbers, SSRC and
/// timestamp base, written into a fresh 12-byte header; payloads are shared.
pub(super) struct OutTrack {
    pub dest: Option<Dest>,
    pub payload_type: u8,
    pub ssrc: u32,
    pub next_seq: u16,
    /// RTP-Info `rtptime` announced at PLAY; the first packet sent maps to it.
    pub rtptime_base: u32,
    pub ts_offset: Option<u32>,
    pub packets: u32,
    pub octets: u32,
    /// When the next RTCP sender report is due (`None`: with the first packet).
    pub next_sr: Option<Instant>,
}

/// What a reader sends: its tracks' outgoing state, in the order of the reader's tracks.
pub(super) struct MediaOut {
    /// Inline for the usual video + audio: every frame's encode reads it (see `State::video_slots`).
    pub out: SmallVec<[OutTrack; 2]>,
    pub tracks: Vec<Arc<Track>>,
    pub shared: Arc<ReaderShared>,
    pub udp: Option<Arc<UdpPorts>>,
}

/// A part of the current write.
#[derive(Clone, Copy)]
enum Piece {
    /// Bytes `.0` to `.1` of `State::wire` (a response, an RTCP packet with its interleaved header).
    Wire(u32, u32),
    /// An RTP packet: its [`PACKET_HEADER`] bytes at `wire[.0..]`, then the payload of packet `.2` of
    /// `frames[.1]`.
    Packet(u32, u32, u32),
}

/// One write: our bytes (responses, interleaved and RTP headers, RTCP), the frames whose payloads it
/// sends, their order on the wire, and how far it got.
#[derive(Default)]
struct Batch {
    wire: Vec<u8>,
    frames: Vec<Arc<Frame>>,
    pieces: Vec<Piece>,
    /// Whole pieces written, then bytes of the next one.
    next_piece: usize,
    piece_offset: usize,
}

thread_local! {
    /// Where a frame offered to a reader that is not behind is encoded and written from. Shared by all
    /// readers on this thread, so it stays in cache; a write the socket does not take whole is swapped
    /// into the reader's own [`State::batch`] for its task to finish.
    static SCRATCH: RefCell<Batch> = RefCell::new(Batch::default());
}

struct State {
    media: Option<MediaOut>,
    /// The unfinished write (empty while the reader keeps up: see [`SCRATCH`]).
    batch: Batch,
    /// Frames that arrived while a write was unfinished.
    queued: VecDeque<(usize, Arc<Frame>)>,
    /// Audio waiting for the next video frame, and until when it may wait (the first one's arrival
    /// plus [`AUDIO_HOLD`]). Kept inline: one or two AAC frames per video frame is the common case,
    /// and with hundreds of readers a separate heap buffer would be one more cache miss per offer.
    held: SmallVec<[(usize, Arc<Frame>); 4]>,
    held_until: Option<Instant>,
    /// Frames `queued` may hold (the reader's queue size) before new ones are dropped.
    capacity: usize,
    /// Whether audio waits for video: a TCP reader that takes video.
    hold_audio: bool,
    /// Bit `n` set: the reader's track `n` is video. Read by every offer, so kept here rather than
    /// behind `media.tracks` (a pointer chase into a cold line per reader); tracks from 64 on are
    /// looked up there.
    video_slots: u64,
    udp_buf: Vec<u8>,
    /// Packets and bytes sent since the last report to `media.shared`, and when the next is due.
    unreported: (u64, u64),
    next_report: Option<Instant>,
    error: Option<io::Error>,
    failed: bool,
}

pub(super) struct Writer {
    socket: OwnedWriteHalf,
    /// RTSPS: the TLS session the bytes go through (`tls.rs`).
    tls: Option<Arc<TlsSession>>,
    /// The socket's descriptor, for [`write_now`]: here, next to the state an offer reads anyway.
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: std::os::fd::RawFd,
    state: Mutex<State>,
    /// Tells the connection's task that a write is unfinished (or failed) and is its to finish.
    wake: Notify,
}

impl Writer {
    pub fn new(socket: OwnedWriteHalf) -> Writer {
        Writer::with_tls(socket, None)
    }

    /// A writer whose bytes go through `tls` (RTSPS).
    pub fn with_tls(socket: OwnedWriteHalf, tls: Option<Arc<TlsSession>>) -> Writer {
        Writer {
            tls,
            #[cfg(any(target_os = "linux", target_os = "android"))]
            fd: std::os::fd::AsRawFd::as_raw_fd(socket.as_ref()),
            socket,
            state: Mutex::new(State {
                media: None,
                batch: Batch::default(),
                queued: VecDeque::new(),
                held: SmallVec::new(),
                held_until: None,
                capacity: 1,
                hold_audio: false,
                video_slots: 0,
                udp_buf: Vec::new(),
                unreported: (0, 0),
                next_report: None,
                error: None,
                failed: false,
            }),
            wake: Notify::new(),
        }
    }

    fn out(&self) -> Out<'_> {
        Out {
            socket: &self.socket,
            tls: self.tls.as_deref(),
            #[cfg(any(target_os = "linux", target_os = "android"))]
            fd: self.fd,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Nothing here panics while holding the lock; keep serving rather than poison.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn set_media(&self, media: MediaOut) {
        let mut st = self.lock();
        st.video_slots = media
            .tracks
            .iter()
            .enumerate()
            .filter(|(i, t)| *i < 64 && t.kind == Kind::Video)
            .fold(0, |bits, (i, _)| bits | 1 << i);
        st.media = Some(media);
    }

    /// Runs `f` on the reader's outgoing state (none before DESCRIBE/SETUP).
    pub fn with_media<R>(&self, f: impl FnOnce(&mut MediaOut) -> R) -> Option<R> {
        self.lock().media.as_mut().map(f)
    }

    /// Called at PLAY, before the reader's frames are offered: `capacity` frames may wait behind an
    /// unfinished write.
    pub fn start_playing(&self, capacity: usize) {
        let mut st = self.lock();
        st.capacity = capacity.max(1);
        st.hold_audio = st.media.as_ref().is_some_and(|m| {
            m.tracks
                .iter()
                .zip(&m.out)
                .any(|(t, o)| t.kind == Kind::Video && matches!(o.dest, Some(Dest::Interleaved(..))))
        });
    }

    /// Hands the connection's task a flush (TLS records that reading made: alerts, key updates).
    pub fn kick(&self) {
        self.wake.notify_one();
    }

    /// RTSPS: sends a `close_notify` (best effort, bounded by the caller).
    pub async fn close_tls(&self) {
        if let Some(tls) = &self.tls {
            tls.close();
            let _ = self.flush().await;
        }
    }

    /// Resolves when a write is left to the connection's task: call [`Writer::flush`] then.
    pub async fn unfinished(&self) {
        self.wake.notified().await
    }

    /// Writes `bytes` (an RTSP response) after everything already being written, and waits until all
    /// of it is sent.
    pub async fn send(&self, bytes: &[u8]) -> io::Result<()> {
        {
            let batch = &mut self.lock().batch;
            let start = batch.wire.len() as u32;
            batch.wire.extend_from_slice(bytes);
            let end = batch.wire.len() as u32;
            batch.pieces.push(Piece::Wire(start, end));
        }
        self.flush().await
    }

    /// Sends everything pending (an unfinished write, frames waiting behind it), waiting for the socket
    /// as needed. Audio held for the next video frame stays held unless it has waited [`AUDIO_HOLD`].
    pub async fn flush(&self) -> io::Result<()> {
        loop {
            {
                let mut st = self.lock();
                if st.failed {
                    return Err(st.error.take().unwrap_or_else(|| io::ErrorKind::BrokenPipe.into()));
                }
                match st.progress(self.out(), Instant::now()) {
                    Ok(true) => return Ok(()),
                    Ok(false) => {}
                    Err(e) => {
                        st.failed = true;
                        return Err(e);
                    }
                }
            }
            match tokio::time::timeout(WRITE_TIMEOUT, self.socket.writable()).await {
                Ok(r) => r?,
                Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "reader stalled")),
            }
        }
    }
}

impl Drop for Writer {
    /// Reports what was sent since the last report: a reader's counters are exact when it ends.
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        st.report(Instant::now(), true);
    }
}

impl DirectSink for Writer {
    fn offer(&self, slot: usize, frame: &Arc<Frame>, arrived: Instant) -> Offer {
        let mut st = self.lock();
        if st.failed {
            return Offer::Closed;
        }
        if st.media.is_none() {
            return Offer::Closed;
        }
        if st.busy() {
            if st.queued.len() >= st.capacity {
                return Offer::Full;
            }
            st.queued.push_back((slot, frame.clone()));
            return Offer::Taken;
        }
        let video = match slot {
            0..64 => st.video_slots & (1 << slot) != 0,
            _ => st.media.as_ref().and_then(|m| m.tracks.get(slot)).is_some_and(|t| t.kind == Kind::Video),
        };
        if !video && st.hold_audio {
            st.held.push((slot, frame.clone()));
            let until = *st.held_until.get_or_insert_with(|| arrived + AUDIO_HOLD);
            if arrived < until && st.held.len() < MAX_BATCH_FRAMES {
                return Offer::Taken;
            }
        }
        // Not behind (`busy` is false): the reader's own batch is empty; encode and write from the
        // thread's scratch batch, and keep it only if the socket did not take it all.
        let written = SCRATCH.with_borrow_mut(|scratch| {
            scratch.clear();
            st.encode_held(scratch, arrived);
            if video || !st.hold_audio {
                st.encode(scratch, slot, frame.clone(), arrived);
            }
            let written = scratch.write(self.out());
            match written {
                Ok(true) => {}
                Ok(false) => std::mem::swap(&mut st.batch, scratch),
                Err(_) => scratch.clear(),
            }
            written
        });
        st.report(arrived, false);
        match written {
            Ok(true) => Offer::Taken,
            Ok(false) => {
                drop(st);
                self.wake.notify_one();
                Offer::Taken
            }
            Err(e) => {
                st.failed = true;
                st.error = Some(e);
                drop(st);
                self.wake.notify_one();
                Offer::Closed
            }
        }
    }
}

impl State {
    /// A write is unfinished, or frames wait behind one.
    fn busy(&self) -> bool {
        !self.batch.pieces.is_empty() || !self.queued.is_empty()
    }

    /// Sends what can be sent now: the current write, then the held and queued frames. True when
    /// nothing is left but audio still allowed to wait.
    fn progress(&mut self, out: Out<'_>, now: Instant) -> io::Result<bool> {
        // The connection's task comes here at least once a second: counts never stay unreported.
        let result = self.progress_unreported(out, now);
        self.report(now, true);
        result
    }

    fn progress_unreported(&mut self, out: Out<'_>, now: Instant) -> io::Result<bool> {
        loop {
            if !self.batch.write(out)? {
                return Ok(false);
            }
            let stale = self.held_until.is_some_and(|t| now >= t);
            if self.queued.is_empty() && !stale {
                return Ok(true);
            }
            let mut batch = std::mem::take(&mut self.batch);
            self.encode_held(&mut batch, now);
            for _ in 0..MAX_BATCH_FRAMES {
                let Some((slot, frame)) = self.queued.pop_front() else { break };
                self.encode(&mut batch, slot, frame, now);
            }
            self.batch = batch;
        }
    }

    /// Adds the packets and bytes sent since the last report to the reader's shared counters, when
    /// [`REPORT_INTERVAL`] has passed (or always, with `force`).
    fn report(&mut self, now: Instant, force: bool) {
        if self.unreported == (0, 0) || !(force || self.next_report.is_none_or(|t| now >= t)) {
            return;
        }
        if let Some(media) = &self.media {
            media.shared.count_sent(self.unreported.0, self.unreported.1);
        }
        self.unreported = (0, 0);
        self.next_report = Some(now + REPORT_INTERVAL);
    }

    fn encode_held(&mut self, batch: &mut Batch, now: Instant) {
        if self.held.is_empty() {
            return;
        }
        self.held_until = None;
        for (slot, frame) in std::mem::take(&mut self.held) {
            self.encode(batch, slot, frame, now);
        }
    }

    /// Adds a frame's packets to `batch` (TCP), or sends them (UDP).
    fn encode(&mut self, batch: &mut Batch, slot: usize, frame: Arc<Frame>, now: Instant) {
        let State { media, udp_buf, unreported, .. } = self;
        let Batch { wire, frames, pieces, .. } = batch;
        let Some(media) = media else { return };
        let Some(o) = media.out.get_mut(slot) else { return };
        let Some(dest) = o.dest else { return };
        if frame.rtp.is_empty() {
            return;
        }
        let offset = *o.ts_offset.get_or_insert(o.rtptime_base.wrapping_sub(frame.timestamp));
        let mut sr = None;
        if o.next_sr.is_none_or(|t| now >= t) {
            o.next_sr = Some(now + SR_INTERVAL);
            let wallclock = media
                .tracks
                .get(slot)
                .and_then(|track| track.wallclock_for(frame.timestamp))
                .unwrap_or_else(SystemTime::now);
            let report = rtp::rtcp::SenderReport {
                ssrc: o.ssrc,
                ntp: rtp::rtcp::ntp_from_system_time(wallclock),
                rtp_timestamp: frame.timestamp.wrapping_add(offset),
                packet_count: o.packets,
                octet_count: o.octets,
            };
            sr = Some(rtp::rtcp::build_sender_report(&report, "camrelay"));
            crate::hub::RtpCounters::add(&media.shared.rtp.outbound_rtcp_packets, 1);
        }
        let mut payload_bytes = 0usize;
        let packets = frame.rtp.len();
        match dest {
            Dest::Interleaved(rtp_ch, rtcp_ch) => {
                if let Some(sr) = &sr {
                    let start = wire.len() as u32;
                    wire.extend_from_slice(&rtsp::message::encode_interleaved_header(rtcp_ch, sr.len() as u16));
                    wire.extend_from_slice(sr);
                    pieces.push(Piece::Wire(start, wire.len() as u32));
                }
                let fi = frames.len() as u32;
                wire.reserve(PACKET_HEADER * packets);
                pieces.reserve(packets);
                // The fields every packet of this reader's track shares; per packet only the length,
                // marker, sequence number and timestamp change.
                let ssrc = o.ssrc.to_be_bytes();
                let pt = o.payload_type & 0x7f;
                let mut seq = o.next_seq;
                for (pi, p) in frame.rtp.iter().enumerate() {
                    let len = (12 + p.payload.len()).min(u16::MAX as usize) as u16;
                    let len = len.to_be_bytes();
                    let s = seq.to_be_bytes();
                    let ts = p.timestamp.wrapping_add(offset).to_be_bytes();
                    let header: [u8; PACKET_HEADER] = [
                        b'$',
                        rtp_ch,
                        len[0],
                        len[1],
                        0x80,
                        (u8::from(p.marker) << 7) | pt,
                        s[0],
                        s[1],
                        ts[0],
                        ts[1],
                        ts[2],
                        ts[3],
                        ssrc[0],
                        ssrc[1],
                        ssrc[2],
                        ssrc[3],
                    ];
                    let start = wire.len() as u32;
                    wire.extend_from_slice(&header);
                    pieces.push(Piece::Packet(start, fi, pi as u32));
                    seq = seq.wrapping_add(1);
                    payload_bytes += p.payload.len();
                }
                o.next_seq = seq;
                frames.push(frame);
            }
            Dest::Udp(rtp_addr, rtcp_addr) => {
                let Some(udp) = &media.udp else { return };
                if let Some(sr) = &sr {
                    let _ = udp.rtcp.try_send_to(sr, rtcp_addr);
                }
                for p in &frame.rtp {
                    let mut header = [0u8; 12];
                    let ts = p.timestamp.wrapping_add(offset);
                    rtp::packet::write_header(&mut header, p.marker, o.payload_type, o.next_seq, ts, o.ssrc);
                    o.next_seq = o.next_seq.wrapping_add(1);
                    udp_buf.clear();
                    udp_buf.extend_from_slice(&header);
                    udp_buf.extend_from_slice(&p.payload);
                    // A full socket buffer drops the packet; UDP readers tolerate loss.
                    if udp.rtp.try_send_to(udp_buf, rtp_addr).is_err() {
                        media.shared.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    payload_bytes += p.payload.len();
                }
            }
        }
        o.packets = o.packets.wrapping_add(packets as u32);
        o.octets = o.octets.wrapping_add(payload_bytes as u32);
        unreported.0 += packets as u64;
        unreported.1 += (12 * packets + payload_bytes) as u64;
    }
}

/// The socket a batch is written to.
#[derive(Clone, Copy)]
struct Out<'a> {
    socket: &'a OwnedWriteHalf,
    tls: Option<&'a TlsSession>,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fd: std::os::fd::RawFd,
}

/// One vectored write without waiting. The fast path is a plain `writev` on the descriptor: tokio's
/// `try_write_vectored` first reads the socket's readiness state, one more cold cache line per reader
/// and frame when hundreds of readers are written in a row. Only when the kernel would block is the
/// write repeated through tokio, which then records that the socket is not writable, so that
/// `writable()` waits for the next edge (and cannot miss one that arrives meanwhile). Linux only,
/// where `IOV_MAX` (1024) is known to exceed our slice count; elsewhere tokio's path caps it.
fn write_now(out: Out<'_>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    if let Some(tls) = out.tls {
        return tls.write_vectored(out.socket, &slices[..slices.len().min(MAX_PIECES * 2)]);
    }
    #[cfg(any(target_os = "linux", target_os = "android"))]
    loop {
        let count = slices.len().min(MAX_PIECES * 2) as libc::c_int;
        // SAFETY: `IoSlice` is ABI-compatible with `iovec` on Unix, the slices outlive the call, and
        // `fd` is the descriptor of `out.socket`, which is open for as long as the writer exists.
        let n = unsafe { libc::writev(out.fd, slices.as_ptr().cast::<libc::iovec>(), count) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => break,
            _ => return Err(e),
        }
    }
    out.socket.try_write_vectored(slices)
}

impl Batch {
    fn clear(&mut self) {
        self.wire.clear();
        self.frames.clear();
        self.pieces.clear();
        self.next_piece = 0;
        self.piece_offset = 0;
    }

    /// Writes as much of the batch as the socket takes without blocking. True when it is all sent
    /// (and the buffers are reset for the next one).
    fn write(&mut self, out: Out<'_>) -> io::Result<bool> {
        while self.next_piece < self.pieces.len() {
            let pieces = &self.pieces[self.next_piece..];
            let pieces = &pieces[..pieces.len().min(MAX_PIECES)];
            // A frame's slices fit a small array on the stack (a large one would cost more to
            // initialise than the write's bookkeeping); larger batches (keyframes, catching up) take a
            // Vec.
            let empty: &[u8] = &[];
            let mut small = [IoSlice::new(empty); SMALL_SLICES];
            let mut large = Vec::new();
            let slices: &mut [IoSlice<'_>] = if 2 * pieces.len() <= SMALL_SLICES {
                &mut small
            } else {
                large.resize(2 * pieces.len(), IoSlice::new(empty));
                &mut large
            };
            let (mut count, mut len) = (0, 0);
            let mut skip = self.piece_offset;
            for piece in pieces {
                match *piece {
                    Piece::Wire(a, b) => {
                        let bytes = &self.wire[a as usize + skip..b as usize];
                        slices[count] = IoSlice::new(bytes);
                        count += 1;
                        len += bytes.len();
                    }
                    Piece::Packet(h, fi, pi) => {
                        let h = h as usize;
                        let payload: &[u8] = &self.frames[fi as usize].rtp[pi as usize].payload;
                        if skip < PACKET_HEADER {
                            slices[count] = IoSlice::new(&self.wire[h + skip..h + PACKET_HEADER]);
                            slices[count + 1] = IoSlice::new(payload);
                            count += 2;
                            len += PACKET_HEADER - skip + payload.len();
                        } else {
                            slices[count] = IoSlice::new(&payload[skip - PACKET_HEADER..]);
                            count += 1;
                            len += payload.len() + PACKET_HEADER - skip;
                        }
                    }
                }
                skip = 0;
            }
            let n = match write_now(out, &slices[..count]) {
                Ok(0) if len > 0 => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            if n == len {
                self.next_piece += pieces.len();
                self.piece_offset = 0;
                continue;
            }
            // Partly written: move the cursor `n` bytes on (it stops inside a piece, since n < len).
            let mut at = self.piece_offset + n;
            while let Some(plen) = self.piece_len(self.next_piece).filter(|&l| at >= l) {
                at -= plen;
                self.next_piece += 1;
            }
            self.piece_offset = at;
            return Ok(false);
        }
        // Over TLS, the batch is sent once rustls has written its records too.
        if let Some(tls) = out.tls {
            if !tls.flush_records(out.socket)? {
                return Ok(false);
            }
        }
        self.clear();
        Ok(true)
    }

    fn piece_len(&self, i: usize) -> Option<usize> {
        Some(match *self.pieces.get(i)? {
            Piece::Wire(a, b) => (b - a) as usize,
            Piece::Packet(_, fi, pi) => PACKET_HEADER + self.frames[fi as usize].rtp[pi as usize].payload.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use media::{Codec, RtpPacket};
    use tokio::io::AsyncReadExt;

    fn frame(i: u32, size: usize) -> Arc<Frame> {
        let mut payload = vec![0u8; size];
        payload[..4].copy_from_slice(&i.to_be_bytes());
        let payload = Bytes::from(payload);
        let rtp = vec![RtpPacket { marker: true, payload_type: 96, sequence: 0, timestamp: i, ssrc: 0, payload }];
        Arc::new(Frame { timestamp: i, keyframe: true, payload: Bytes::new(), rtp })
    }

    /// A writer on one end of a loopback connection, and the other end.
    async fn connected(capacity: usize) -> (Writer, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (server, _) = listener.accept().await.unwrap();
        let (_read, write) = server.into_split();
        let writer = Writer::new(write);
        let track = Arc::new(Track::new(Kind::Video, Codec::new("H264", 90000, 0, 96), 0));
        writer.set_media(MediaOut {
            out: smallvec::smallvec![OutTrack {
                dest: Some(Dest::Interleaved(0, 1)),
                payload_type: 96,
                ssrc: 7,
                next_seq: 100,
                rtptime_base: 0,
                ts_offset: None,
                packets: 0,
                octets: 0,
                next_sr: Some(Instant::now() + SR_INTERVAL),
            }],
            tracks: vec![track],
            shared: Arc::new(ReaderShared::new("test", String::new())),
            udp: None,
        });
        writer.start_playing(capacity);
        (writer, client)
    }

    /// Reads `count` interleaved RTP packets: (sequence number, frame index from the payload).
    async fn read_packets(client: &mut tokio::net::TcpStream, count: usize) -> Vec<(u16, u32)> {
        let mut got = Vec::new();
        let mut buf = Vec::new();
        while got.len() < count {
            let mut chunk = [0u8; 65536];
            let n = client.read(&mut chunk).await.unwrap();
            assert!(n > 0, "connection closed after {} packets", got.len());
            buf.extend_from_slice(&chunk[..n]);
            while buf.len() >= 4 && buf.len() >= 4 + u16::from_be_bytes([buf[2], buf[3]]) as usize {
                let len = u16::from_be_bytes([buf[2], buf[3]]) as usize;
                assert_eq!((buf[0], buf[1]), (b'$', 0));
                let p = &buf[4..4 + len];
                got.push((u16::from_be_bytes([p[2], p[3]]), u32::from_be_bytes([p[12], p[13], p[14], p[15]])));
                buf.drain(..4 + len);
            }
        }
        got
    }

    #[tokio::test]
    async fn a_blocked_socket_keeps_order_and_bounds_what_waits() {
        let (writer, mut client) = connected(8).await;
        // Nobody reads: the socket fills, then 8 frames wait, then frames are refused.
        let mut taken = 0u32;
        loop {
            match writer.offer(0, &frame(taken, 16_000), Instant::now()) {
                Offer::Taken => taken += 1,
                Offer::Full => break,
                Offer::Closed => panic!("writer failed"),
            }
            assert!(taken < 100_000, "the socket never filled");
        }
        assert_eq!(writer.lock().queued.len(), 8);
        let (flushed, got) = tokio::join!(writer.flush(), read_packets(&mut client, taken as usize));
        flushed.unwrap();
        let expected: Vec<(u16, u32)> = (0..taken).map(|i| (100u16.wrapping_add(i as u16), i)).collect();
        assert_eq!(got, expected, "every taken frame arrives once, in order, with consecutive sequence numbers");
        // Unblocked again: the next frame is written at once.
        assert_eq!(writer.offer(0, &frame(taken, 100), Instant::now()), Offer::Taken);
        assert!(!writer.lock().busy());
        assert_eq!(read_packets(&mut client, 1).await, vec![(100u16.wrapping_add(taken as u16), taken)]);
    }

    /// A frame of `packets` small packets of varying sizes, each payload starting with `i`.
    fn small_packet_frame(i: u32, packets: usize) -> Arc<Frame> {
        let rtp = (0..packets)
            .map(|k| {
                let mut payload = vec![k as u8; 4 + (k * 7) % 41];
                payload[..4].copy_from_slice(&i.to_be_bytes());
                RtpPacket {
                    marker: k + 1 == packets,
                    payload_type: 96,
                    sequence: 0,
                    timestamp: i,
                    ssrc: 0,
                    payload: Bytes::from(payload),
                }
            })
            .collect();
        Arc::new(Frame { timestamp: i, keyframe: true, payload: Bytes::new(), rtp })
    }

    #[tokio::test]
    async fn partial_writes_resume_inside_headers_and_payloads() {
        // Packets of 20 to 60 bytes with 16-byte headers: the socket fills, and later flushes stop, at
        // every kind of place (inside a header, between header and payload, inside a payload).
        let (writer, mut client) = connected(64).await;
        let mut taken = 0u32;
        loop {
            match writer.offer(0, &small_packet_frame(taken, 40), Instant::now()) {
                Offer::Taken => taken += 1,
                Offer::Full => break,
                Offer::Closed => panic!("writer failed"),
            }
            assert!(taken < 200_000, "the socket never filled");
        }
        let (flushed, got) = tokio::join!(writer.flush(), read_packets(&mut client, 40 * taken as usize));
        flushed.unwrap();
        let expected: Vec<(u16, u32)> = (0..40 * taken).map(|n| (100u16.wrapping_add(n as u16), n / 40)).collect();
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "every packet arrives once, whole, in order, with consecutive sequence numbers");
    }

    #[tokio::test]
    async fn a_response_waits_for_the_unfinished_media_write() {
        let (writer, mut client) = connected(4).await;
        assert_eq!(writer.offer(0, &frame(1, 60_000), Instant::now()), Offer::Taken);
        let (sent, mut got) = tokio::join!(writer.send(b"RTSP/1.0 200 OK\r\n\r\n"), async {
            let mut all = Vec::new();
            while !all.ends_with(b"\r\n\r\n") {
                let mut chunk = [0u8; 65536];
                let n = client.read(&mut chunk).await.unwrap();
                assert!(n > 0);
                all.extend_from_slice(&chunk[..n]);
            }
            all
        });
        sent.unwrap();
        assert_eq!(got.len(), 4 + 12 + 60_000 + 19);
        assert!(got.split_off(4 + 12 + 60_000).starts_with(b"RTSP/1.0 200 OK"));
    }

    /// Counts reach the reader's shared counters (the API's `bytes_send`/`packets_send`) at the first
    /// offer, then at most every `REPORT_INTERVAL`, and always when the connection's task flushes; and
    /// a frame written whole is not kept alive by the writer (nor by the thread's scratch batch).
    #[tokio::test]
    async fn sent_counts_are_reported_and_written_frames_released() {
        let (writer, mut client) = connected(8).await;
        let shared = writer.with_media(|m| m.shared.clone()).unwrap();
        let t0 = Instant::now();
        let first = frame(0, 1000);
        assert_eq!(writer.offer(0, &first, t0), Offer::Taken);
        assert_eq!(Arc::strong_count(&first), 1, "a frame written whole is released at once");
        assert_eq!(shared.packets_sent.load(std::sync::atomic::Ordering::Relaxed), 1);
        assert_eq!(shared.bytes_sent.load(std::sync::atomic::Ordering::Relaxed), 12 + 1000);
        // Within the interval: counted, not yet reported.
        for i in 1..4 {
            assert_eq!(writer.offer(0, &frame(i, 1000), t0 + Duration::from_millis(10 * i as u64)), Offer::Taken);
        }
        assert_eq!(shared.packets_sent.load(std::sync::atomic::Ordering::Relaxed), 1);
        // The connection's task's flush reports the rest.
        writer.flush().await.unwrap();
        assert_eq!(shared.packets_sent.load(std::sync::atomic::Ordering::Relaxed), 4);
        assert_eq!(shared.bytes_sent.load(std::sync::atomic::Ordering::Relaxed), 4 * (12 + 1000));
        let got = read_packets(&mut client, 4).await;
        assert_eq!(got.iter().map(|p| p.1).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    }
}
