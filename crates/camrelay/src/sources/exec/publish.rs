//! RTSP mode of `exec:` (the command contains `{output}`): `{output}` becomes a one-time private
//! RTSP path of our own server; the child publishes there and its tracks are forwarded into ours.

use media::{Direction, Media};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{ExecSource, Output, OwnedChild, Started};
use crate::hub::{Producer, Track, TrackReader};
use crate::secrets::mask_url;

impl ExecSource {
    pub(super) async fn start_rtsp(&self, line: &str) -> Result<Started, String> {
        let mut pending = self.publishers.reserve().map_err(|e| self.err(e))?;
        let line = line.replacen("{output}", &pending.url, 1);
        tracing::debug!(source = %self.label, command = %mask_url(&line), "exec: run rtsp");
        let mut child = self.spawn(&line, false, false)?;
        let producer = tokio::select! {
            p = &mut pending.producer => match p {
                Ok(p) => p,
                Err(_) => {
                    child.stop(self.params.kill_signal, self.params.kill_timeout).await;
                    return Err(self.err("private publish path was dropped"));
                }
            },
            how = child.wait_exit() => return Err(self.err(format!("process {how} before publishing"))),
            _ = tokio::time::sleep(self.params.start_timeout) => {
                let tail = child.stderr_tail();
                child.stop(self.params.kill_signal, self.params.kill_timeout).await;
                let tail = if tail.is_empty() { String::new() } else { format!("; stderr: {tail}") };
                return Err(self.err(format!(
                    "process did not publish to {{output}} within {:?} (#starttimeout=){tail}",
                    self.params.start_timeout
                )));
            }
        };
        let medias: Vec<Media> = producer
            .known_medias()
            .unwrap_or_default()
            .into_iter()
            .map(|mut m| {
                m.direction = Direction::RecvOnly;
                m
            })
            .collect();
        Ok(Started { child, medias, output: Output::Rtsp(producer) })
    }

    /// RTSP mode: forwards the child's published tracks into ours.
    pub(super) async fn forward(
        &self,
        child: &mut OwnedChild,
        producer: Arc<Producer>,
        tracks: Vec<Arc<Track>>,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let mut forwarders = JoinSet::new();
        for (from, to) in producer.tracks().into_iter().zip(tracks) {
            // Replay: the child may have published a while before this run (describe started it).
            let mut reader = TrackReader::new(from, "exec", self.reader_queue, true);
            forwarders.spawn(async move {
                while let Some(frame) = reader.recv().await {
                    to.push((*frame).clone());
                }
            });
        }
        let result = tokio::select! {
            _ = stop.cancelled() => Ok(()),
            how = child.wait_exit() => Err(self.err(format!("process {how}"))),
            _ = forwarders.join_next() => {
                // The publisher disconnected: give the process a moment to report why.
                let how = tokio::time::timeout(Duration::from_secs(1), child.wait_exit()).await;
                Err(self.err(match how {
                    Ok(how) => format!("process {how}"),
                    Err(_) => format!("the process stopped publishing; stderr: {}", child.stderr_tail()),
                }))
            }
        };
        producer.shutdown();
        forwarders.abort_all();
        result
    }
}
