//! What the hub tells the rest of the server about paths: a stream became ready (a publisher started
//! or a pulled source went online) or stopped being ready, a reader started or stopped reading, and a
//! reader wants a path that starts its publisher on demand. MediaMTX's hooks (`crate::hooks`) listen;
//! the hub knows nothing of commands.
//!
//! Each event returns a guard: the hub holds it while the state lasts (the publisher's guard, the
//! source's run, the reader) and drops it when the state ends, which is the "not ready" / "unread"
//! event. Calls happen where the state changes and must return at once (no IO, no waiting): a
//! listener starts its work on a task of its own.

use std::time::Duration;

use super::{Producer, ReaderShared};

/// Held while the state an event reported lasts; dropping it reports the end.
pub type EventGuard = Box<dyn Send + Sync>;

pub trait HubEvents: Send + Sync {
    /// Stream `path` is ready: `producer` (a publisher or a pulled source) delivers.
    fn ready(&self, path: &str, producer: &Producer) -> Option<EventGuard>;

    /// `reader` started reading `path`.
    fn reading(&self, path: &str, reader: &ReaderShared) -> Option<EventGuard>;

    /// A reader wants `path` (`has_publisher`: something publishes there already). When the path
    /// starts a publisher on demand (MediaMTX's `runOnDemand`), the demand is held by the returned
    /// guard (the reader keeps it while it reads), with how long a reader waits for the publisher.
    fn demand(&self, path: &str, query: &str, has_publisher: bool) -> Option<(EventGuard, Duration)>;

    /// Whether `path` (a name that no stream has yet) starts its publisher on demand: the hub then
    /// makes a stream for the reader to wait on.
    fn publishes_on_demand(&self, path: &str) -> bool;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{Hub, HubError, HubSettings, PublishRequest};
    use media::{Codec, Direction, Kind, Media, MediaFilter};
    use std::sync::{Arc, Mutex};

    /// Records events as text; `demand` for paths starting with `od`.
    #[derive(Default)]
    struct Log(Arc<Mutex<Vec<String>>>);

    struct Ends(Arc<Mutex<Vec<String>>>, String);

    impl Drop for Ends {
        fn drop(&mut self) {
            self.0.lock().unwrap().push(self.1.clone());
        }
    }

    impl HubEvents for Log {
        fn ready(&self, path: &str, producer: &Producer) -> Option<EventGuard> {
            self.0.lock().unwrap().push(format!("ready {path} {}", producer.is_pushed()));
            Some(Box::new(Ends(self.0.clone(), format!("notready {path}"))))
        }

        fn reading(&self, path: &str, reader: &ReaderShared) -> Option<EventGuard> {
            let query = reader.query.lock().unwrap().clone();
            self.0.lock().unwrap().push(format!("read {path} {query}"));
            Some(Box::new(Ends(self.0.clone(), format!("unread {path}"))))
        }

        fn demand(&self, path: &str, query: &str, has_publisher: bool) -> Option<(EventGuard, Duration)> {
            if !path.starts_with("od") {
                return None;
            }
            self.0.lock().unwrap().push(format!("demand {path} {query} {has_publisher}"));
            Some((Box::new(Ends(self.0.clone(), format!("undemand {path}"))), Duration::from_secs(10)))
        }

        fn publishes_on_demand(&self, path: &str) -> bool {
            path.starts_with("od")
        }
    }

    fn hub() -> (Arc<Hub>, Arc<Mutex<Vec<String>>>) {
        let settings = HubSettings {
            linger: Duration::ZERO,
            start_timeout: Duration::from_millis(100),
            gop_cache_bytes: 1 << 20,
            reader_queue: 16,
            publisher_grace: Duration::ZERO,
        };
        let hub = Arc::new(Hub::new(Vec::new(), settings));
        let log = Log::default();
        let events = log.0.clone();
        hub.set_events(Arc::new(log));
        (hub, events)
    }

    fn request(path: &str) -> PublishRequest {
        PublishRequest {
            path: path.into(),
            protocol: "rtsp+tcp".into(),
            remote_addr: "192.0.2.1:5000".into(),
            url: format!("rtsp://192.0.2.1:5000/{path}"),
            medias: vec![Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90000, 0, 96)])],
            allow_create: true,
        }
    }

    fn video() -> [MediaFilter; 1] {
        [MediaFilter { kind: Kind::Video, codecs: Vec::new(), all: false }]
    }

    #[tokio::test(start_paused = true)]
    async fn a_reader_waits_for_the_on_demand_publisher_and_holds_the_demand() {
        let (hub, events) = hub();
        hub.set_stream("od1", &[]).unwrap();
        let shared = hub.new_reader_shared("rtsp+tcp", String::new());
        *shared.query.lock().unwrap() = "a=1".into();
        let waiting = {
            let hub = hub.clone();
            tokio::spawn(async move { hub.subscribe("od1", &video(), shared, false).await })
        };
        // The reader waits (paused clock: 3 s pass) until the command's publisher arrives.
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(!waiting.is_finished());
        let guard = hub.publish(request("od1")).unwrap();
        let reader = waiting.await.unwrap().unwrap();
        assert_eq!(*events.lock().unwrap(), ["demand od1 a=1 false", "ready od1 true", "read od1 a=1"]);
        // A second reader takes the demand too, knowing the publisher is there.
        let second = hub.subscribe("od1", &video(), hub.new_reader_shared("rtsp+tcp", String::new()), false).await;
        assert!(events.lock().unwrap().contains(&"demand od1  true".to_string()));
        drop(second);
        drop(reader);
        let log = events.lock().unwrap().clone();
        assert_eq!(log.iter().filter(|e| *e == "undemand od1").count(), 2, "{log:?}");
        assert_eq!(log.iter().filter(|e| *e == "unread od1").count(), 2, "{log:?}");
        drop(guard);
        assert_eq!(events.lock().unwrap().last().map(String::as_str), Some("notready od1"));
    }

    #[tokio::test(start_paused = true)]
    async fn no_publisher_within_the_start_timeout_is_an_error_and_a_pattern_stream_goes() {
        let (hub, events) = hub();
        // No stream: a path rule's name; the hub makes one for the wait (publishes_on_demand).
        let rules = crate::hub::paths::PathRules {
            rules: vec![crate::hub::paths::PathRule::new("~^od", "", Default::default()).unwrap()],
            publish_needs_rule: true,
        };
        hub.set_path_rules(rules);
        let started = tokio::time::Instant::now();
        let err = hub.subscribe("od2", &video(), hub.new_reader_shared("rtsp+tcp", String::new()), false).await;
        assert!(matches!(&err, Err(HubError::Source(e)) if e.contains("runOnDemand command did not publish")));
        assert_eq!(started.elapsed(), Duration::from_secs(10));
        assert!(hub.get("od2").is_none(), "the stream made for the wait went");
        assert_eq!(*events.lock().unwrap(), ["demand od2  false", "undemand od2"]);
        // Paths without on-demand: no wait, no demand.
        hub.set_stream("cam", &[]).unwrap();
        assert!(hub.subscribe("cam", &video(), hub.new_reader_shared("rtsp", String::new()), false).await.is_err());
        assert_eq!(events.lock().unwrap().len(), 2);
    }
}
