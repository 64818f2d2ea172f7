//! Preloads (go2rtc's `preload:` section and `/api/preload`): a stream whose sources keep running with
//! no viewer, so the first viewer gets a picture at once and the camera connection stays warm.
//!
//! A preload is a hub reader held by the server itself, with the same query filters as any reader
//! (`video=h264&audio=opus`). It keeps reading (and discarding) frames; when its reader ends (the
//! source failed past its retries, or the stream was replaced by `PUT /api/streams`) it subscribes
//! again with backoff, so a preload outlives its source dropping and reconnecting (go2rtc's
//! preload is lost then).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, Weak};
use tokio_util::sync::CancellationToken;

use super::{producer, Hub};

/// The default query of a preload with no filters: every video and audio media.
pub const DEFAULT_QUERY: &str = "video&audio";

/// The preloaded streams: name → query, each with the task that holds its reader.
#[derive(Default)]
pub struct Preloads {
    entries: Mutex<BTreeMap<String, Entry>>,
}

struct Entry {
    query: String,
    stop: CancellationToken,
}

impl Preloads {
    /// Every preload as (stream name, query), by name.
    pub fn list(&self) -> Vec<(String, String)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().map(|(name, e)| (name.clone(), e.query.clone())).collect()
    }

    pub fn contains(&self, name: &str) -> bool {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).contains_key(name)
    }

    /// Preloads `name` with `query` (empty: [`DEFAULT_QUERY`]), replacing an earlier preload of it.
    /// Must be called inside the tokio runtime.
    pub fn start(&self, hub: &Arc<Hub>, name: &str, query: &str) {
        let query = if query.trim().is_empty() { DEFAULT_QUERY.to_string() } else { query.trim().to_string() };
        let stop = CancellationToken::new();
        let old = self
            .entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), Entry { query: query.clone(), stop: stop.clone() });
        if let Some(old) = old {
            old.stop.cancel();
        }
        tracing::info!(module = "streams", stream = %name, query = %query, "preload started");
        tokio::spawn(hold(Arc::downgrade(hub), name.to_string(), query, stop));
    }

    /// Ends the preload of `name`; false when there was none.
    pub fn stop(&self, name: &str) -> bool {
        let old = self.entries.lock().unwrap_or_else(|e| e.into_inner()).remove(name);
        match old {
            Some(entry) => {
                entry.stop.cancel();
                tracing::info!(module = "streams", stream = %name, "preload stopped");
                true
            }
            None => false,
        }
    }

    /// Ends every preload (server shutdown).
    pub fn stop_all(&self) {
        let entries = std::mem::take(&mut *self.entries.lock().unwrap_or_else(|e| e.into_inner()));
        for entry in entries.into_values() {
            entry.stop.cancel();
        }
    }
}

/// Holds a reader of `name` until `stop`, subscribing again whenever the reader ends.
async fn hold(hub: Weak<Hub>, name: String, query: String, stop: CancellationToken) {
    let filters = media::query::parse_query_string(&query);
    let filters = if filters.is_empty() { media::query::parse_query_string(DEFAULT_QUERY) } else { filters };
    let mut attempt = 0;
    let mut last_error = String::new();
    loop {
        let Some(strong) = hub.upgrade() else { return };
        let shared = strong.new_reader_shared("preload", String::new());
        let subscribed = tokio::select! {
            _ = stop.cancelled() => return,
            r = strong.subscribe(&name, &filters, shared, false) => r,
        };
        drop(strong);
        match subscribed {
            Ok(mut reader) => {
                last_error.clear();
                let mut frames = 0u64;
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        delivery = reader.queue.recv() => match delivery {
                            Some(_) => frames += 1,
                            None => break,
                        },
                    }
                }
                // A reader that got media was healthy: start the backoff over.
                if frames > 0 {
                    attempt = 0;
                }
                tracing::info!(module = "streams", stream = %name, "preload: the stream's reader ended; subscribing again");
            }
            Err(e) => {
                let e = e.to_string();
                if e != last_error {
                    tracing::warn!(module = "streams", stream = %name, "preload: {e}; retrying");
                    last_error = e;
                }
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(producer::backoff(attempt)) => {}
        }
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{BoxFuture, HubSettings, Source, SourceError, SourceFactory, Track};
    use media::{Codec, Direction, Frame, Kind, Media};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    /// A camera that sends a few frames and then drops, every time it is run.
    struct FlakyCamera {
        runs: Arc<AtomicU32>,
    }

    impl Source for FlakyCamera {
        fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
            Box::pin(async {
                Ok(vec![Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90000, 0, 96)])])
            })
        }

        fn run(
            self: Arc<Self>,
            tracks: Vec<Arc<Track>>,
            _stop: CancellationToken,
        ) -> BoxFuture<'static, Result<(), SourceError>> {
            self.runs.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                for i in 0..5u32 {
                    tracks[0].push(Frame {
                        timestamp: i * 3000,
                        keyframe: i == 0,
                        payload: bytes::Bytes::from_static(&[0x65, 1, 2, 3]),
                        rtp: Vec::new(),
                    });
                    tokio::time::sleep(Duration::from_millis(40)).await;
                }
                Err(SourceError::from("camera dropped the connection".to_string()))
            })
        }
    }

    fn hub(runs: Arc<AtomicU32>) -> Arc<Hub> {
        let factory: SourceFactory =
            Arc::new(move |_url: &str| Ok(Arc::new(FlakyCamera { runs: runs.clone() }) as Arc<dyn Source>));
        let settings = HubSettings {
            linger: Duration::from_secs(1),
            start_timeout: Duration::from_secs(10),
            gop_cache_bytes: 1 << 20,
            reader_queue: 16,
            publisher_grace: Duration::ZERO,
        };
        let hub = Arc::new(Hub::new(vec![("fake", factory)], settings));
        hub.set_stream("cam", &["fake:cam".to_string()]).unwrap();
        hub
    }

    async fn wait_for(mut ok: impl FnMut() -> bool) -> bool {
        for _ in 0..600 {
            if ok() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    #[tokio::test(start_paused = true)]
    async fn preload_runs_the_source_without_viewers_and_survives_drops() {
        let runs = Arc::new(AtomicU32::new(0));
        let hub = hub(runs.clone());
        let preloads = Preloads::default();
        preloads.start(&hub, "cam", "");
        assert_eq!(preloads.list(), vec![("cam".to_string(), DEFAULT_QUERY.to_string())]);
        // The camera drops after each short run; the preload brings it back each time.
        assert!(wait_for(|| runs.load(Ordering::SeqCst) >= 4).await, "runs: {}", runs.load(Ordering::SeqCst));
        let producer = hub.get("cam").unwrap().producers()[0].clone();
        assert!(producer.tracks()[0].frames.load(Ordering::Relaxed) >= 15);

        // Replacing the stream's sources keeps the preload: it reads the new stream.
        hub.set_stream("cam", &["fake:other".to_string()]).unwrap();
        let replaced = hub.get("cam").unwrap().producers()[0].clone();
        assert!(wait_for(|| replaced.tracks().first().is_some_and(|t| t.frames.load(Ordering::Relaxed) > 0)).await);

        // Stopped: the source is not run again once it lingered out.
        assert!(preloads.stop("cam"));
        assert!(!preloads.stop("cam"));
        tokio::time::sleep(Duration::from_secs(5)).await;
        let after_stop = runs.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(runs.load(Ordering::SeqCst), after_stop);
        assert!(preloads.list().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn preload_of_a_missing_stream_waits_for_it() {
        let runs = Arc::new(AtomicU32::new(0));
        let hub = hub(runs.clone());
        hub.remove_stream("cam");
        let preloads = Preloads::default();
        preloads.start(&hub, "cam", "video=h264");
        tokio::time::sleep(Duration::from_secs(10)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 0);
        hub.set_stream("cam", &["fake:cam".to_string()]).unwrap();
        assert!(wait_for(|| runs.load(Ordering::SeqCst) >= 1).await);
        preloads.stop_all();
    }
}
