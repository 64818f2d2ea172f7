//! The shared audio transcoder of a stream: the source of a derived stream `<stream>#opus` (or
//! `#pcma`, `#pcmu`) whose one track is `<stream>`'s audio in that codec. It reads `<stream>` like any
//! reader and runs a [`Transcoder`](super::Transcoder) on its own task, so every WebRTC viewer of the
//! stream that needs the conversion shares one; as a producer it starts when the first viewer
//! subscribes and stops `hub.linger` after the last leaves (the MJPEG transcoder's model,
//! `servers/mjpeg.rs`).

use media::{Direction, Frame, Kind, Media, MediaFilter};
use std::sync::{Arc, Weak};
use tokio_util::sync::CancellationToken;

use super::Transcoder;
use crate::hub::{BoxFuture, Hub, HubError, Producer, Reader, ReaderShared, Source, SourceError, Track};

/// RTP payload size bound for the packetizer (Opus and 20 ms of G.711 fit in one packet).
const MTU: usize = 1200;
/// One warning per this many undecodable frames.
const WARN_EVERY: u64 = 500;

/// The codecs the transcoders read, as hub filters name them.
pub const DECODABLE: [&str; 5] =
    [media::codec::AAC, media::codec::PCMA, media::codec::PCMU, media::codec::L16, media::codec::OPUS];

/// `cam` → `cam#opus` (`target`: `OPUS`, `PCMA` or `PCMU`).
pub fn derived_name(stream: &str, target: &str) -> String {
    format!("{stream}#{}", target.to_ascii_lowercase())
}

/// The audio codec of `stream` when a transcoder can read it (subscribing briefly, which starts an
/// on-demand source as any reader would).
pub async fn source_audio(hub: &Hub, stream: &str) -> Option<media::Codec> {
    let audio =
        [MediaFilter { kind: Kind::Audio, codecs: DECODABLE.iter().map(|c| c.to_string()).collect(), all: false }];
    let reader = hub.subscribe(stream, &audio, hub.new_reader_shared("transcode probe", String::new()), false).await;
    let codec = reader.ok()?.tracks.first().map(|t| t.codec.clone())?;
    super::can_decode(&codec).then_some(codec)
}

/// A reader of `stream`'s audio in `target`, from its derived stream (created, and its transcoder
/// started, when there is none).
pub async fn join(hub: &Arc<Hub>, stream: &str, target: &str, shared: Arc<ReaderShared>) -> Result<Reader, HubError> {
    let Some(codec) = super::target_codec(target) else {
        return Err(HubError::Source(format!("no transcoding to {target}")));
    };
    let filter = [MediaFilter { kind: Kind::Audio, codecs: vec![codec.name.clone()], all: false }];
    let mut last = None;
    // A derived stream removed between its lookup and the subscription (its transcoder had just
    // stopped) is looked up again: once subscribed, it stays.
    for _ in 0..3 {
        let derived = hub.derived_stream(&derived_name(stream, target), |settings| {
            let source = Arc::new(AudioTranscoder {
                stream: stream.to_string(),
                target: codec.clone(),
                hub: Arc::downgrade(hub),
            });
            // The URL shown in the API: go2rtc's spelling of the same conversion.
            let url = format!("ffmpeg:{stream}#audio={}", target.to_ascii_lowercase());
            Producer::pulled(&url, source, settings.linger, settings.gop_cache_bytes)
        });
        match hub.subscribe(&derived.name, &filter, shared.clone(), false).await {
            Ok(r) if hub.get(&derived.name).is_some_and(|s| Arc::ptr_eq(&s, &derived)) => return Ok(r),
            Ok(_) => last = Some(HubError::Source("the transcoder stopped".into())),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| HubError::Source("the transcoder stopped".into())))
}

struct AudioTranscoder {
    stream: String,
    target: media::Codec,
    hub: Weak<Hub>,
}

impl Source for AudioTranscoder {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        let medias = vec![Media::new(Kind::Audio, Direction::RecvOnly, vec![self.target.clone()])];
        Box::pin(async move { Ok(medias) })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let result = self.transcode(tracks, &stop).await;
            if stop.is_cancelled() {
                Hub::remove_derived_if_unused(&self.hub, &derived_name(&self.stream, &self.target.name));
            }
            result.map_err(SourceError::from)
        })
    }
}

impl AudioTranscoder {
    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("audio transcoder {}→{}: {what}", self.stream, self.target.short_name())
    }

    async fn transcode(&self, tracks: Vec<Arc<Track>>, stop: &CancellationToken) -> Result<(), String> {
        let Some(track) = tracks.into_iter().next() else { return Err(self.err("no track")) };
        let mut reader = {
            let Some(hub) = self.hub.upgrade() else { return Ok(()) };
            let shared = hub.new_reader_shared("transcode", String::new());
            let audio = [MediaFilter {
                kind: Kind::Audio,
                codecs: DECODABLE.iter().map(|c| c.to_string()).collect(),
                all: false,
            }];
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = hub.subscribe(&self.stream, &audio, shared, true) => match r {
                    Ok(reader) => reader,
                    Err(HubError::NotFound(_)) => {
                        hub.remove_stream(&derived_name(&self.stream, &self.target.name));
                        return Err(self.err("the stream was removed"));
                    }
                    Err(e) => return Err(self.err(e)),
                },
            }
        };
        let Some(input) = reader.tracks.first().map(|t| t.codec.clone()) else { return Err(self.err("no audio")) };
        let mut transcoder = Transcoder::new(&input, &self.target).map_err(|e| self.err(e))?;
        let mut packetizer = rtp::packetize::packetizer_for(&track.codec, MTU);
        tracing::info!(
            stream = %self.stream,
            from = %input.short_name(),
            rate = input.clock_rate,
            to = %self.target.short_name(),
            "audio transcoder started"
        );
        let mut out = Vec::new();
        let mut warned = 0;
        let result = loop {
            let d = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                d = reader.queue.recv() => match d {
                    Some(d) => d,
                    None => break Err(self.err("the stream ended")),
                },
            };
            if d.slot != 0 {
                continue;
            }
            transcoder.push(d.frame.timestamp, &d.frame.payload, &mut out);
            reader.shared.count_sent(1, d.frame.payload.len() as u64);
            if transcoder.stats.bad_frames > warned {
                if warned % WARN_EVERY == 0 {
                    tracing::warn!(
                        stream = %self.stream,
                        bad_frames = transcoder.stats.bad_frames,
                        "audio transcoder: a frame did not decode and was skipped: {}",
                        transcoder.last_error.as_deref().unwrap_or("")
                    );
                }
                warned = transcoder.stats.bad_frames;
            }
            for e in out.drain(..) {
                let mut frame =
                    Frame { timestamp: e.timestamp, keyframe: true, payload: e.payload.into(), rtp: Vec::new() };
                if let Some(p) = packetizer.as_mut() {
                    let mut packets = Vec::new();
                    p.packetize(&frame, &mut packets);
                    frame.rtp = packets;
                }
                track.push(frame);
            }
        };
        let s = transcoder.stats;
        tracing::info!(
            stream = %self.stream,
            to = %self.target.short_name(),
            frames_in = s.frames_in,
            bad_frames = s.bad_frames,
            frames_out = s.frames_out,
            gaps = s.gaps,
            "audio transcoder stopped"
        );
        result
    }
}
