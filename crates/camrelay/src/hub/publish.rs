//! Private publish paths: a child process (an `exec:` or `ffmpeg:` source) publishes RTSP into our own
//! server on a one-time path, and the source that started it receives the publisher's producer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

use super::producer::Producer;

/// Prefix of private paths; a normal stream cannot be named like this.
pub const PRIVATE_PREFIX: &str = "camrelay-private/";

#[derive(Default)]
pub struct PrivatePublishers {
    /// `rtsp://127.0.0.1:PORT`, set once the RTSP server is listening.
    base_url: OnceLock<String>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Arc<Producer>>>>,
}

/// A reserved path; dropping it (the source stopped) frees the path.
pub struct PendingPublish {
    pub url: String,
    path: String,
    pub producer: oneshot::Receiver<Arc<Producer>>,
    owner: Arc<PrivatePublishers>,
}

impl Drop for PendingPublish {
    fn drop(&mut self) {
        self.owner.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.path);
    }
}

impl PrivatePublishers {
    pub fn set_base_url(&self, url: String) {
        let _ = self.base_url.set(url);
    }

    /// The local RTSP server's URL (`rtsp://127.0.0.1:8554`), once it listens.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.get().map(String::as_str)
    }

    /// Reserves a fresh private path; the returned URL is where the child should publish.
    pub fn reserve(self: &Arc<Self>) -> Result<PendingPublish, String> {
        let base = self
            .base_url()
            .ok_or("the RTSP server is disabled (rtsp.listen is empty), so {output} has nowhere to go")?;
        let path = format!("{PRIVATE_PREFIX}{:016x}", rand::random::<u64>());
        let (tx, rx) = oneshot::channel();
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).insert(path.clone(), tx);
        Ok(PendingPublish { url: format!("{base}/{path}"), path, producer: rx, owner: self.clone() })
    }

    /// Claims a reserved path for an incoming publisher (ANNOUNCE). One publisher per reservation.
    pub fn take(&self, path: &str) -> Option<oneshot::Sender<Arc<Producer>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner()).remove(path)
    }
}
