//! A reader (consumer) of a stream: its bounded queue and the counters the API shows.

use media::{Codec, Frame};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};
use tokio::sync::mpsc;

use super::producer::Producer;
use super::track::Track;
use super::Stream;

/// One frame for one of the reader's tracks.
pub struct Delivery {
    pub slot: usize,
    pub frame: Arc<Frame>,
}

/// What a [`DirectSink`] did with a frame offered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Sent, or kept to be sent in order.
    Taken,
    /// The reader is too far behind: the frame is dropped (and counted), and video resumes at the next
    /// keyframe, exactly as with a full queue.
    Full,
    /// The reader is gone: unsubscribe it.
    Closed,
}

/// A reader that takes frames synchronously in the track's push path instead of through its queue, so
/// that delivering a frame costs no task wakeup (an RTSP/TCP reader writes it to its socket right away).
///
/// `offer` runs with the track locked, on the source's task: it must never block or wait. A sink whose
/// socket would block keeps the frame (bounded, then answers [`Offer::Full`]) and lets its own task
/// finish the write. It must not lock a track (`Track::wallclock_for` does not).
pub trait DirectSink: Send + Sync {
    /// Frame `frame` of the reader's track `slot`, which arrived at `arrived`.
    fn offer(&self, slot: usize, frame: &Arc<Frame>, arrived: Instant) -> Offer;
}

static NEXT_READER_ID: AtomicU64 = AtomicU64::new(1);

/// The part of a reader the hub and the API share.
pub struct ReaderShared {
    pub id: u64,
    /// `rtsp+tcp`, `rtsp+udp`, ...
    pub protocol: Mutex<String>,
    pub remote_addr: String,
    pub user_agent: Mutex<String>,
    pub started: SystemTime,
    /// Frames dropped because this reader's queue was full (or skipped until the next keyframe).
    pub dropped: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    /// What this reader takes, for the API: `video, sendonly, H264`.
    pub medias: Mutex<Vec<String>>,
}

impl ReaderShared {
    /// A reader with a fresh process-wide id.
    pub fn new(protocol: &str, remote_addr: String) -> ReaderShared {
        ReaderShared {
            id: NEXT_READER_ID.fetch_add(1, Ordering::Relaxed),
            protocol: Mutex::new(protocol.to_string()),
            remote_addr,
            user_agent: Mutex::new(String::new()),
            started: SystemTime::now(),
            dropped: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            medias: Mutex::new(Vec::new()),
        }
    }

    pub fn set_protocol(&self, protocol: &str) {
        *self.protocol.lock().unwrap_or_else(|e| e.into_inner()) = protocol.to_string();
    }

    pub fn protocol(&self) -> String {
        self.protocol.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn count_sent(&self, packets: u64, bytes: u64) {
        self.packets_sent.fetch_add(packets, Ordering::Relaxed);
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }
}

/// One of the tracks a reader takes, with the codec it was matched on.
pub struct ReaderTrack {
    pub track: Arc<Track>,
    pub codec: Codec,
}

/// A subscription to some tracks of one stream. Dropping it unsubscribes and lets idle sources stop.
pub struct Reader {
    pub shared: Arc<ReaderShared>,
    pub tracks: Vec<ReaderTrack>,
    pub queue: mpsc::Receiver<Delivery>,
    pub(super) stream: Arc<Stream>,
    pub(super) producers: Vec<Arc<Producer>>,
}

impl Reader {
    pub fn stream_name(&self) -> &str {
        &self.stream.name
    }

    /// From now on, this reader's frames are offered to `sink` in the push path; frames already queued
    /// go to it first, in order. `queue` then yields nothing more, but still ends (`None`) when every
    /// track has closed.
    pub fn attach_sink(&mut self, sink: Arc<dyn DirectSink>) {
        let tracks: Vec<&Track> = self.tracks.iter().map(|t| &*t.track).collect();
        super::track::attach_sink(&tracks, self.shared.id, sink, &mut self.queue);
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        for t in &self.tracks {
            t.track.unsubscribe(self.shared.id);
        }
        for p in &self.producers {
            p.remove_reader();
        }
        self.stream.forget_reader(self.shared.id);
    }
}

/// An in-process reader of one track (a source's backchannel, a forwarder between producers). Frames
/// arrive through a bounded queue like any reader's; dropping it unsubscribes.
pub struct TrackReader {
    track: Arc<Track>,
    pub shared: Arc<ReaderShared>,
    queue: mpsc::Receiver<Delivery>,
}

impl TrackReader {
    pub fn new(track: Arc<Track>, protocol: &str, capacity: usize, replay: bool) -> TrackReader {
        let shared = Arc::new(ReaderShared::new(protocol, String::new()));
        let (tx, rx) = mpsc::channel(capacity.max(1));
        track.subscribe(shared.clone(), tx, 0, replay, None);
        TrackReader { track, shared, queue: rx }
    }

    /// The next frame; `None` once the track has closed.
    pub async fn recv(&mut self) -> Option<Arc<Frame>> {
        self.queue.recv().await.map(|d| d.frame)
    }

    pub fn track(&self) -> &Arc<Track> {
        &self.track
    }
}

impl Drop for TrackReader {
    fn drop(&mut self) {
        self.track.unsubscribe(self.shared.id);
    }
}
