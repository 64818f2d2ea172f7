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
    /// Times this reader's queue overflowed on a video track and it skipped to the next keyframe.
    pub resyncs: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub packets_sent: AtomicU64,
    /// What this reader takes, for the API: `video, sendonly, H264`.
    pub medias: Mutex<Vec<String>>,
    /// The query of the URL it read (`MTX_QUERY` of its hooks), where the protocol has one.
    pub query: Mutex<String>,
    /// The user name it authenticated as (MediaMTX's `user` in the session lists; never a password).
    pub user: Mutex<String>,
    /// RTCP both ways and the loss it reports, for readers that speak RTP (RTSP).
    pub rtp: super::RtpCounters,
    /// Times `protocol` was changed ([`ReaderShared::set_protocol`]): the metrics scrape keeps what it
    /// rendered from the protocol until this moves, without locking `protocol` at every scrape.
    pub protocol_changes: AtomicU64,
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
            resyncs: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            packets_sent: AtomicU64::new(0),
            medias: Mutex::new(Vec::new()),
            query: Mutex::new(String::new()),
            user: Mutex::new(String::new()),
            rtp: super::RtpCounters::default(),
            protocol_changes: AtomicU64::new(0),
        }
    }

    pub fn set_protocol(&self, protocol: &str) {
        *self.protocol.lock().unwrap_or_else(|e| e.into_inner()) = protocol.to_string();
        self.protocol_changes.fetch_add(1, Ordering::Release);
    }

    pub fn protocol(&self) -> String {
        self.protocol.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records who this reader is: the user name it authenticated as and the query of its URL.
    pub fn set_identity(&self, user: &str, query: &str) {
        *self.user.lock().unwrap_or_else(|e| e.into_inner()) = user.to_string();
        *self.query.lock().unwrap_or_else(|e| e.into_inner()) = query.to_string();
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
    /// Held while it reads: the read event and the on-demand publisher's demand ([`super::events`]);
    /// dropped after the reader has left.
    pub(super) events: Vec<super::events::EventGuard>,
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

#[cfg(test)]
mod tests {
    use super::super::{Hub, HubSettings};
    use super::*;
    use bytes::Bytes;
    use media::{Direction, Kind, Media};
    use std::time::Duration;

    fn frame(ts: u32, key: bool) -> Frame {
        Frame { timestamp: ts, keyframe: key, payload: Bytes::from_static(&[0; 64]), rtp: Vec::new() }
    }

    /// Spins until the clock has moved past now, so arrival times compare strictly.
    fn tick() {
        let t = Instant::now();
        while Instant::now() <= t {
            std::hint::spin_loop();
        }
    }

    /// A hub with one published stream `cam` (H.264 + AAC) that has run for a while: 10 s of audio
    /// cached, the last video keyframe 1 s ago. Returns the hub and (video, audio) tracks.
    fn running_stream() -> (Hub, Arc<Track>, Arc<Track>) {
        let settings = HubSettings {
            linger: Duration::ZERO,
            start_timeout: Duration::from_secs(1),
            gop_cache_bytes: 1 << 20,
            reader_queue: 1024,
            publisher_grace: Duration::ZERO,
        };
        let hub = Hub::new(Vec::new(), settings);
        let medias = vec![
            Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90000, 0, 96)]),
            Media::new(Kind::Audio, Direction::RecvOnly, vec![Codec::new("MPEG4-GENERIC", 48000, 1, 97)]),
        ];
        let producer = Producer::pushed("cam", "rtsp", "", medias, 1 << 20);
        let (video, audio) = (producer.tracks()[0].clone(), producer.tracks()[1].clone());
        hub.set_stream("cam", &[]).unwrap().add_producer(producer);
        // 25 fps video with a keyframe every second, 46.875 AAC frames a second: frame n of each goes
        // out in timestamp order. The stream's clock is frames, not wall time.
        let audio_per_video = 48000.0 / 1024.0 / 25.0;
        let mut a = 0u32;
        for v in 0..250u32 {
            tick();
            video.push(frame(v * 3600, v % 25 == 0));
            while (a as f64) < (v + 1) as f64 * audio_per_video {
                audio.push(frame(a * 1024, false));
                a += 1;
            }
        }
        (hub, video, audio)
    }

    fn drain(reader: &mut Reader) -> Vec<(usize, u32)> {
        std::iter::from_fn(|| reader.queue.try_recv().ok()).map(|d| (d.slot, d.frame.timestamp)).collect()
    }

    #[tokio::test]
    async fn audio_only_reader_starts_live() {
        let (hub, _video, audio) = running_stream();
        let filters = media::query::parse_query_string("audio");
        let mut reader =
            hub.subscribe("cam", &filters, hub.new_reader_shared("test", String::new()), true).await.unwrap();
        assert_eq!(reader.tracks.len(), 1);
        assert_eq!(drain(&mut reader), vec![], "no audio history is replayed to a reader without video");
        audio.push(frame(999 * 1024, false));
        assert_eq!(drain(&mut reader), vec![(0, 999 * 1024)], "it gets live audio");
    }

    #[tokio::test]
    async fn audio_and_video_reader_gets_audio_from_the_keyframe_on() {
        let (hub, _video, _audio) = running_stream();
        let filters = media::query::parse_query_string("video&audio");
        let mut reader =
            hub.subscribe("cam", &filters, hub.new_reader_shared("test", String::new()), true).await.unwrap();
        let got = drain(&mut reader);
        let video: Vec<u32> = got.iter().filter(|d| d.0 == 0).map(|d| d.1).collect();
        let audio: Vec<u32> = got.iter().filter(|d| d.0 == 1).map(|d| d.1).collect();
        // The last GOP: keyframe 225 to frame 249.
        assert_eq!(video, (225..250).map(|v| v * 3600).collect::<Vec<_>>());
        // Audio from the keyframe's arrival on: the frames pushed after video frame 224, one GOP's worth
        // (not the 10 s the audio cache holds).
        let per_video: f64 = 48000.0 / 1024.0 / 25.0;
        let (first, end) = ((225.0 * per_video).ceil() as u32, (250.0 * per_video).ceil() as u32);
        assert_eq!(audio, (first..end).map(|a| a * 1024).collect::<Vec<_>>());
        assert!(audio.len() <= 48, "{} audio frames replayed beside a 1 s GOP", audio.len());
    }
}
