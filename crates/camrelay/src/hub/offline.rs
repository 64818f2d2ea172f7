//! `alwaysAvailable` paths (MediaMTX's): the stream always has tracks to read. While no publisher is
//! there, a slate producer plays the offline clip into them ([`crate::sources::offline`]); a publisher
//! with the same medias takes the tracks over (as a publisher coming back does, `hub::publish`), and
//! when it leaves they go back to the slate. Readers never reconnect: they skip to the next keyframe of
//! whoever feeds the tracks, on one timeline.
//!
//! On a path with a `source:`, the slate is the pulled source's [`SlateFiller`]: it plays into the
//! source's own tracks while the source is down (and gives their medias when the source could never
//! be described), and the source's next run takes them back at its first keyframe.

use media::Media;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::producer::Producer;
use super::track::Track;
use super::Stream;
use crate::sources::offline::Slate;

/// An `alwaysAvailable` slate filling a pulled source's tracks while the source is down
/// ([`super::producer::Filler`]): each track gets the slate's clip of the same codec (a track with
/// none stays quiet).
pub(super) struct SlateFiller(pub Arc<Slate>);

impl super::producer::Filler for SlateFiller {
    fn medias(&self) -> Option<Vec<Media>> {
        Some(self.0.medias())
    }

    fn start(&self, tracks: &[Arc<Track>], stop: CancellationToken) -> bool {
        let mut clips = Vec::new();
        let mut fed = Vec::new();
        for t in tracks {
            let clip = self.0.clips.iter().find(|c| {
                c.codec.name.eq_ignore_ascii_case(&t.codec.name)
                    && c.codec.clock_rate == t.codec.clock_rate
                    && c.codec.channels == t.codec.channels
            });
            if let Some(c) = clip {
                clips.push(c.clone());
                fed.push(t.clone());
            }
        }
        if clips.is_empty() {
            tracing::warn!(
                slate = ?self.0,
                "the source is down but its codecs are not the offline slate's (alwaysAvailableTracks): no slate"
            );
            return false;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return false };
        rt.spawn(async move { crate::sources::clip::play(&clips, &fed, &stop).await });
        true
    }
}

/// The `url` and `protocol` the slate producer shows in the API.
pub const SLATE_URL: &str = "offline:slate";
pub const SLATE_PROTOCOL: &str = "offline";

impl Producer {
    /// Whether this is an `alwaysAvailable` path's offline slate (available, not ready).
    pub fn is_offline_slate(&self) -> bool {
        matches!(&self.kind, super::producer::ProducerKind::Pushed { protocol, .. } if protocol == SLATE_PROTOCOL)
    }
}

/// A stream's offline state: the tracks readers read, and who feeds them now.
pub(super) struct Offline {
    slate: Arc<Slate>,
    /// The tracks (created from the slate's medias); owned by the slate producer or a publisher.
    tracks: Vec<Arc<Track>>,
    /// The slate producer while the slate plays, and what stops its clip.
    playing: Option<(Arc<Producer>, CancellationToken)>,
    /// Set by [`Stream::take_offline`] when the slate (not a publisher) held the tracks.
    slate_held: bool,
}

impl Offline {
    pub(super) fn slate(&self) -> &Arc<Slate> {
        &self.slate
    }

    /// Ends the tracks, unless a publisher feeds them (its producer ends them when it goes).
    pub(super) fn end(self) {
        if self.slate_held {
            for t in &self.tracks {
                t.close();
            }
        }
    }
}

impl Stream {
    /// Makes the stream always available with `slate`: its tracks exist now and the slate plays into
    /// them. Needs a tokio runtime (nothing plays without one).
    pub(super) fn start_offline(&self, slate: Arc<Slate>, gop_cache_bytes: usize) {
        let producer = Producer::pushed(SLATE_URL, SLATE_PROTOCOL, "", slate.medias(), gop_cache_bytes);
        let tracks = producer.tracks();
        let mut state = Offline { slate, tracks, playing: None, slate_held: false };
        self.play_slate(&mut state, producer);
        *self.lock_offline() = Some(state);
    }

    /// Starts the slate's clip into the tracks with `producer` (which holds them) as the stream's.
    fn play_slate(&self, state: &mut Offline, producer: Arc<Producer>) {
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let stop = CancellationToken::new();
        let (clips, tracks, token) = (state.slate.clips.clone(), state.tracks.clone(), stop.clone());
        rt.spawn(async move { crate::sources::clip::play(&clips, &tracks, &token).await });
        self.add_producer(producer.clone());
        state.playing = Some((producer, stop));
    }

    /// For a publisher arriving with `medias`: the slate's tracks when they match and the slate plays
    /// (it stops); `None` otherwise.
    pub(super) fn take_from_slate(&self, medias: &[Media]) -> Option<Arc<Producer>> {
        let mut offline = self.lock_offline();
        let state = offline.as_mut()?;
        if !super::track::same_medias(&state.tracks, medias) {
            return None;
        }
        let (producer, stop) = state.playing.take()?;
        stop.cancel();
        self.detach_producer(producer.id);
        Some(producer)
    }

    /// A publisher that fed the slate's tracks left: they go back to the slate. False when `producer`
    /// does not hold them.
    pub(super) fn give_back_to_slate(&self, producer: &Producer, gop_cache_bytes: usize) -> bool {
        let mut offline = self.lock_offline();
        let Some(state) = offline.as_mut() else { return false };
        let holds = producer.tracks().first().zip(state.tracks.first()).is_some_and(|(a, b)| Arc::ptr_eq(a, b));
        if !holds || state.playing.is_some() {
            return false;
        }
        let (tracks, medias) = producer.hand_over_tracks();
        for t in &tracks {
            t.set_parameter_sets(None);
        }
        let slate = Producer::pushed_with_tracks(SLATE_URL, SLATE_PROTOCOL, "", medias, tracks, gop_cache_bytes);
        self.play_slate(state, slate);
        true
    }

    /// Stops the slate (the stream is removed or no longer always available); returns its state for a
    /// replacing stream.
    pub(super) fn take_offline(&self) -> Option<Offline> {
        let mut state = self.lock_offline().take()?;
        if let Some((producer, stop)) = state.playing.take() {
            stop.cancel();
            self.detach_producer(producer.id);
            // The slate plays again on the replacing stream; its tracks stay open for their readers.
            let (tracks, _) = producer.hand_over_tracks();
            state.tracks = tracks;
            state.slate_held = true;
        }
        Some(state)
    }

    /// Takes over a removed stream's offline state (a config reload): the same tracks, so readers stay.
    pub(super) fn adopt_offline(&self, mut state: Offline, gop_cache_bytes: usize) {
        let fed_by_publisher = self
            .producers()
            .iter()
            .any(|p| p.tracks().first().zip(state.tracks.first()).is_some_and(|(a, b)| Arc::ptr_eq(a, b)));
        state.slate_held = false;
        if !fed_by_publisher {
            for t in &state.tracks {
                t.set_parameter_sets(None);
            }
            let producer = Producer::pushed_with_tracks(
                SLATE_URL,
                SLATE_PROTOCOL,
                "",
                state.slate.medias(),
                state.tracks.clone(),
                gop_cache_bytes,
            );
            self.play_slate(&mut state, producer);
        }
        *self.lock_offline() = Some(state);
    }

    fn lock_offline(&self) -> std::sync::MutexGuard<'_, Option<Offline>> {
        self.offline.lock().unwrap_or_else(|e| e.into_inner())
    }
}
