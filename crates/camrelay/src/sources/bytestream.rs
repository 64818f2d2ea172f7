//! Byte streams in: [`probe`] to learn a stream's tracks by reading it through the one demuxer for
//! every format we take from a pipe, a socket or an upload ([`StreamDemuxer`], sans-IO in
//! `formats::bytestream`: MPEG-TS, FLV, MJPEG multipart or raw JPEG, H.264/H.265 Annex B), and
//! [`FramePump`] to push its frames into hub tracks. Used by the `http(s)://` and `tcp://` sources, the
//! `exec:` pipe mode and the HTTP ingest endpoints.

use bytes::Bytes;
use formats::DemuxEvent;
use media::{codec, Codec, Direction, Frame, Kind, Media};
use std::collections::VecDeque;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

use crate::hub::Track;

/// A stream that yields no complete set of tracks within this many bytes is refused.
pub const PROBE_MAX_BYTES: usize = 5 << 20;
/// ... or within this time.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(10);
/// After the first track is known, how long to wait for others (unless the container says how many).
const PROBE_SETTLE: Duration = Duration::from_secs(1);
/// Frames read while probing are kept up to this many bytes (oldest dropped first).
const PROBE_KEEP_BYTES: usize = 8 << 20;

/// A stream (pipe, socket, upload) that sends nothing for this long has failed.
pub const READ_TIMEOUT: Duration = Duration::from_secs(15);
const MTU: usize = 1400;

// ------------------------------------------------------------------------------------ demuxing

/// The demuxer itself is sans-IO and lives in `formats::bytestream`; re-exported for the sources and
/// servers that read byte streams.
pub use formats::bytestream::{hint_from_content_type, jpeg_codec, Hint, StreamDemuxer, StreamFormat};

/// The FLV file header (audio and video flags) that starts the bytes an RTMP session feeds to a
/// [`StreamDemuxer`] (`Hint::Flv`): RTMP audio, video and data message bodies are FLV tag bodies, so the
/// RTMP server's publish path and the `rtmp://` source put each message in an FLV tag
/// ([`put_flv_tag`]) and reuse the one FLV parser.
pub const FLV_FILE_HEADER: [u8; 13] = [b'F', b'L', b'V', 1, 5, 0, 0, 0, 9, 0, 0, 0, 0];

/// Appends an RTMP message (type id 8 audio, 9 video, 18 data; millisecond `timestamp`) as one FLV tag
/// with its previous-tag-size trailer.
pub fn put_flv_tag(out: &mut bytes::BytesMut, type_id: u8, timestamp: u32, payload: &[u8]) {
    use bytes::BufMut;
    out.put_u8(type_id);
    out.put_uint(payload.len() as u64, 3);
    out.put_uint(u64::from(timestamp & 0xFF_FFFF), 3);
    out.put_u8((timestamp >> 24) as u8);
    out.put_uint(0, 3);
    out.extend_from_slice(payload);
    out.put_u32(11 + payload.len() as u32);
}

// -------------------------------------------------------------------------------------- probing

/// Something that gives a stream's bytes chunk by chunk (`None` at its end).
pub trait ChunkSource: Send {
    fn next_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, String>> + Send;
}

/// A track found by [`probe`].
#[derive(Clone, Debug)]
pub struct ProbedTrack {
    /// The demuxer's index of the stream.
    pub index: usize,
    pub kind: Kind,
    pub codec: Codec,
}

/// The tracks of a stream and the frames read while finding them.
pub struct Probed {
    pub tracks: Vec<ProbedTrack>,
    pub frames: VecDeque<(usize, Frame)>,
    /// The stream ended during the probe (a short upload).
    pub ended: bool,
}

impl Probed {
    /// One recvonly media per track, with distinct dynamic payload types (96, 97...).
    pub fn medias(&self) -> Vec<Media> {
        self.tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let mut c = t.codec.clone();
                if c.payload_type >= 96 || (c.payload_type == 0 && c.name != codec::PCMU) {
                    c.payload_type = 96 + i as u8;
                }
                Media::new(t.kind, Direction::RecvOnly, vec![c])
            })
            .collect()
    }
}

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeError {
    /// The bytes are not (a supported kind of) the expected format.
    Invalid(String),
    /// Reading failed (connection closed, timed out).
    Io(String),
}

impl std::fmt::Display for ProbeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeError::Invalid(s) | ProbeError::Io(s) => f.write_str(s),
        }
    }
}

impl From<ProbeError> for crate::hub::SourceError {
    fn from(e: ProbeError) -> crate::hub::SourceError {
        match e {
            ProbeError::Invalid(s) => crate::hub::SourceError::protocol(s),
            ProbeError::Io(s) => crate::hub::SourceError::network(s),
        }
    }
}

/// Reads from `src` into `demux` until every track is known: as many as the container announces,
/// a video and an audio track, or [`PROBE_SETTLE`] after the first one. Refuses a stream that shows no
/// track within [`PROBE_MAX_BYTES`] / [`PROBE_TIMEOUT`]. Bounded: frames read meanwhile are kept up
/// to [`PROBE_KEEP_BYTES`].
pub async fn probe<C: ChunkSource>(src: &mut C, demux: &mut StreamDemuxer) -> Result<Probed, ProbeError> {
    let started = Instant::now();
    let deadline = started + PROBE_TIMEOUT;
    let mut probed = Probed { tracks: Vec::new(), frames: VecDeque::new(), ended: false };
    let mut kept = 0usize;
    let mut first_track: Option<Instant> = None;
    let mut first_ts: Option<u32> = None;
    let mut span_done = false;
    loop {
        // Drain what the demuxer has.
        while let Some(ev) = demux.poll() {
            match ev {
                DemuxEvent::Track { index, kind, codec } => {
                    if !probed.tracks.iter().any(|t| t.index == index) {
                        probed.tracks.push(ProbedTrack { index, kind, codec });
                        first_track.get_or_insert_with(Instant::now);
                    }
                }
                DemuxEvent::Frame { index, frame } => {
                    if probed.tracks.first().is_some_and(|t| t.index == index) {
                        let clock = probed.tracks[0].codec.clock_rate.max(1);
                        let first = *first_ts.get_or_insert(frame.timestamp);
                        span_done |= frame.timestamp.wrapping_sub(first) >= clock;
                    }
                    kept += frame.payload.len();
                    probed.frames.push_back((index, frame));
                    while kept > PROBE_KEEP_BYTES {
                        let Some((_, old)) = probed.frames.pop_front() else { break };
                        kept -= old.payload.len();
                    }
                }
            }
        }
        let have_video = probed.tracks.iter().any(|t| t.kind == Kind::Video);
        let have_audio = probed.tracks.iter().any(|t| t.kind == Kind::Audio);
        let now = Instant::now();
        if !probed.tracks.is_empty() {
            let expected = demux.expected_tracks();
            if expected.is_some_and(|n| probed.tracks.len() >= n)
                || (have_video && have_audio)
                || span_done
                || first_track.is_some_and(|t| now >= t + PROBE_SETTLE)
                || probed.ended
            {
                return Ok(probed);
            }
        } else {
            if probed.ended {
                return Err(no_track(demux, &format!("the stream ended after {} bytes", demux.total())));
            }
            if demux.total() as usize > PROBE_MAX_BYTES {
                return Err(no_track(demux, &format!("in the first {} MiB", PROBE_MAX_BYTES >> 20)));
            }
            if demux.expected_tracks() == Some(0) {
                return Err(ProbeError::Invalid(
                    "MPEG-TS: the program has no H.264, H.265, AAC, MPEG audio, Opus or KLV stream (PMT)".to_string(),
                ));
            }
            if now >= deadline {
                return Err(no_track(demux, &format!("within {} s", PROBE_TIMEOUT.as_secs())));
            }
        }
        let wake = match first_track {
            Some(t) => (t + PROBE_SETTLE).min(now + READ_TIMEOUT),
            None => deadline,
        };
        let chunk = tokio::select! {
            c = src.next_chunk() => c.map_err(ProbeError::Io)?,
            _ = tokio::time::sleep_until(wake) => continue,
        };
        match chunk {
            Some(data) => demux.push(&data, Instant::now()).map_err(ProbeError::Invalid)?,
            None => {
                demux.finish();
                probed.ended = true;
            }
        }
    }
}

fn no_track(demux: &StreamDemuxer, when: &str) -> ProbeError {
    let head = demux.head_hex();
    let detail = demux.last_error.as_deref().map(|e| format!("; last error: {e}")).unwrap_or_default();
    ProbeError::Invalid(match demux.format() {
        None => format!("unknown format: no recognisable stream {when} (first bytes {head})"),
        Some(StreamFormat::MpegTs) if !demux.ts_synced() => {
            format!("not MPEG-TS: no sync byte pattern {when} (first bytes {head})")
        }
        Some(StreamFormat::MpegTs) => {
            format!("MPEG-TS: no H.264, H.265, AAC, MPEG audio, Opus or KLV stream with its parameters {when}{detail}")
        }
        Some(StreamFormat::Flv) => format!("FLV: no audio or video stream with its parameters {when}{detail}"),
        Some(f @ (StreamFormat::Multipart | StreamFormat::Jpeg)) => {
            format!("{}: no complete JPEG image {when} (first bytes {head}){detail}", f.name())
        }
        Some(f) => format!("{}: no SPS/PPS and keyframe {when}", f.name()),
    })
}

/// Pushes demuxed frames into hub tracks, packetizing them into RTP once so that RTSP readers forward
/// them as they are.
pub struct FramePump {
    /// Demuxer stream index → our track slot.
    slots: Vec<(usize, usize)>,
    tracks: Vec<Arc<Track>>,
    packetizers: Vec<Option<Box<dyn rtp::packetize::Packetizer>>>,
    pub frames: u64,
    /// Keyframes pushed on video tracks whose frames decode only after one (see
    /// [`Track::needs_keyframe`]): a publisher's stream that stays at 0 is not watchable.
    pub video_keyframes: u64,
    late_tracks: u64,
}

impl FramePump {
    /// `tracks` are the hub tracks made from [`Probed::medias`] (same order as `probed.tracks`).
    pub fn new(probed: &Probed, tracks: Vec<Arc<Track>>) -> FramePump {
        let slots = probed.tracks.iter().enumerate().map(|(slot, t)| (t.index, slot)).collect();
        let packetizers = tracks.iter().map(|t| rtp::packetize::packetizer_for(&t.codec, MTU)).collect();
        FramePump { slots, tracks, packetizers, frames: 0, video_keyframes: 0, late_tracks: 0 }
    }

    pub fn push(&mut self, index: usize, mut frame: Frame) {
        let Some(&(_, slot)) = self.slots.iter().find(|(i, _)| *i == index) else { return };
        let (Some(track), Some(packetizer)) = (self.tracks.get(slot), self.packetizers.get_mut(slot)) else {
            return;
        };
        if let Some(p) = packetizer.as_mut() {
            let mut packets = Vec::new();
            p.packetize(&frame, &mut packets);
            frame.rtp = packets;
        }
        self.frames += 1;
        if frame.keyframe && track.needs_keyframe() {
            self.video_keyframes += 1;
        }
        track.push(frame);
    }

    /// A pump for `probed`'s tracks that has pushed the frames read while probing.
    pub fn start(probed: Probed, tracks: Vec<Arc<Track>>, demux: &mut StreamDemuxer) -> FramePump {
        let mut pump = FramePump::new(&probed, tracks);
        for (index, frame) in probed.frames {
            pump.push(index, frame);
        }
        pump.drain(demux);
        pump
    }

    /// Pushes every frame the demuxer has ready.
    pub fn drain(&mut self, demux: &mut StreamDemuxer) {
        while let Some(ev) = demux.poll() {
            match ev {
                DemuxEvent::Frame { index, frame } => self.push(index, frame),
                DemuxEvent::Track { index, kind, codec } => {
                    // A stream that appeared after the medias were announced cannot be added.
                    if !self.slots.iter().any(|(i, _)| *i == index) {
                        self.late_tracks += 1;
                        if self.late_tracks == 1 {
                            tracing::debug!(index, kind = kind.as_str(), codec = %codec.name, "late track ignored");
                        }
                    }
                }
            }
        }
    }
}

/// Reads `chunks` into `demux` and `pump` until `stop` (`Ok`), a read or demux error, or the end of the
/// stream (a network error saying `ended`, after the demuxer's last frames are pushed).
pub async fn pump_chunks<C: ChunkSource>(
    chunks: &mut C,
    demux: &mut StreamDemuxer,
    pump: &mut FramePump,
    stop: &tokio_util::sync::CancellationToken,
    ended: &str,
) -> Result<(), crate::hub::SourceError> {
    use crate::hub::SourceError;
    loop {
        let chunk = tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            c = chunks.next_chunk() => c.map_err(SourceError::network)?,
        };
        let Some(data) = chunk else {
            demux.finish();
            pump.drain(demux);
            return Err(SourceError::network(ended));
        };
        demux.push(&data, Instant::now()).map_err(SourceError::protocol)?;
        pump.drain(demux);
    }
}
