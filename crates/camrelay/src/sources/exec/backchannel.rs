//! Backchannel of `exec:` (`#backchannel=1`): one sendonly audio media (PCMA/8000) whose frames'
//! payloads are written to the child's stdin.

use media::{codec, Codec, Direction, Kind, Media};
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio_util::sync::CancellationToken;

use super::ExecSource;
use crate::hub::{Track, TrackReader};
use crate::secrets::mask_url;

impl ExecSource {
    pub(super) fn backchannel_medias() -> Vec<Media> {
        vec![Media::new(Kind::Audio, Direction::SendOnly, vec![Codec::new(codec::PCMA, 8000, 1, 8)])]
    }

    /// Backchannel: writes the payloads of frames pushed into the sendonly track to the child's stdin.
    pub(super) async fn run_backchannel(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), String> {
        let Some(track) = tracks.into_iter().next() else { return Err(self.err("no backchannel track")) };
        let line = (self.command)().map_err(|e| self.err(e))?;
        tracing::debug!(source = %self.label, command = %mask_url(&line), "exec: run backchannel");
        let mut child = self.spawn(&line, true, false)?;
        let Some(mut stdin) = child.stdin.take() else { return Err(self.err("no stdin")) };
        let mut reader = TrackReader::new(track, "exec", self.reader_queue, false);
        let result = loop {
            tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                how = child.wait_exit() => break Err(self.err(format!("process {how}"))),
                frame = reader.recv() => {
                    let Some(frame) = frame else { break Ok(()) };
                    tokio::select! {
                        _ = stop.cancelled() => break Ok(()),
                        r = stdin.write_all(&frame.payload) => if let Err(e) = r {
                            break Err(self.err(format!("writing to stdin: {e}")));
                        },
                    }
                }
            }
        };
        drop(stdin);
        child.stop(self.params.kill_signal, self.params.kill_timeout).await;
        result
    }
}

#[cfg(test)]
mod tests {
    use crate::hub::Track;
    use crate::sources::exec::factory;
    use crate::sources::exec::tests::{ctx, wait_for};
    use bytes::Bytes;
    use media::Kind;
    use std::sync::Arc;
    use tokio_util::sync::CancellationToken;

    #[tokio::test]
    async fn backchannel_writes_payloads_to_stdin() {
        let dir = std::env::temp_dir().join(format!("camrelay-exec-bc-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("out.alaw");
        let factory = factory(&ctx());
        let source = factory(&format!("exec:tee {}#backchannel=1", file.display())).unwrap();
        let medias = source.describe().await.unwrap();
        assert_eq!(medias.iter().map(|m| m.to_string()).collect::<Vec<_>>(), ["audio, sendonly, PCMA"]);
        assert_eq!(medias[0].codecs[0].clock_rate, 8000);
        let track = Arc::new(Track::new(Kind::Audio, medias[0].codecs[0].clone(), 1 << 16));
        let stop = CancellationToken::new();
        let run = tokio::spawn(source.clone().run(vec![track.clone()], stop.clone()));
        // Wait until the source subscribed to its track, then push PCMA frames into it.
        assert!(wait_for(|| track.reader_count() == 1).await);
        let mut expected = Vec::new();
        for i in 0..5u8 {
            let payload = vec![0xD5 ^ i; 160];
            expected.extend_from_slice(&payload);
            track.push(media::Frame {
                timestamp: u32::from(i) * 160,
                keyframe: true,
                payload: Bytes::from(payload),
                rtp: vec![],
            });
        }
        assert!(wait_for(|| std::fs::read(&file).is_ok_and(|b| b.len() == expected.len())).await);
        assert_eq!(std::fs::read(&file).unwrap(), expected);
        stop.cancel();
        assert_eq!(run.await.unwrap(), Ok(()));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
