//! Pipe mode of `exec:` (no `{output}` in the command): the child's stdout is sniffed and demuxed
//! (MPEG-TS, FLV, MJPEG, H.264/H.265 Annex B) into frames.

use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::ChildStdout;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{ExecSource, Output, OwnedChild, Started};
use crate::hub::Track;
use crate::secrets::mask_url;
use crate::sources::bytestream::{probe, ChunkSource, FramePump, Hint, Probed, StreamDemuxer};

// The parser of a child's stdout is sans-IO and lives in `formats::pipe`; re-exported here.
pub use formats::pipe::{PipeFormat, PipeParser, PipeUnit, MAX_PIPE_FRAME};

/// A child's stdout as chunks for [`probe`].
struct PipeChunks {
    stdout: ChildStdout,
    buf: Vec<u8>,
}

impl ChunkSource for PipeChunks {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        match self.stdout.read(&mut self.buf).await {
            Ok(0) => Ok(None),
            Ok(n) => Ok(Some(Bytes::copy_from_slice(&self.buf[..n]))),
            Err(e) => Err(format!("reading stdout: {e}")),
        }
    }
}

impl ExecSource {
    pub(super) async fn start_pipe(&self, line: &str) -> Result<Started, String> {
        tracing::debug!(source = %self.label, command = %mask_url(line), "exec: run pipe");
        let mut child = self.spawn(line, false, true)?;
        let Some(stdout) = child.stdout.take() else { return Err(self.err("no stdout")) };
        // Any format a byte stream may carry: MPEG-TS, FLV, MJPEG, H.264/H.265 Annex B.
        let mut demux = Box::new(StreamDemuxer::new(Hint::Auto));
        let mut chunks = PipeChunks { stdout, buf: vec![0u8; 64 * 1024] };
        let probed = tokio::time::timeout(self.params.start_timeout, probe(&mut chunks, &mut demux)).await;
        let failure = match probed {
            Ok(Ok(probed)) if !probed.tracks.is_empty() => {
                let medias = probed.medias();
                return Ok(Started { child, medias, output: Output::Pipe { stdout: chunks.stdout, demux, probed } });
            }
            Ok(Ok(_)) => "no media on stdout".to_string(),
            // The pipe ended or carried garbage: if the child is gone, its exit is the news.
            Ok(Err(e)) => match tokio::time::timeout(Duration::from_millis(500), child.wait_exit()).await {
                Ok(how) => format!("process {how} before any media"),
                Err(_) => e.to_string(),
            },
            Err(_) => format!("no decodable media on stdout within {:?} (#starttimeout=)", self.params.start_timeout),
        };
        let tail = child.stderr_tail();
        child.stop(self.params.kill_signal, self.params.kill_timeout).await;
        let tail = if tail.is_empty() { String::new() } else { format!("; stderr: {tail}") };
        Err(self.err(format!("{failure}{tail}")))
    }

    /// Pipe mode: demuxes stdout into frames.
    pub(super) async fn pump(
        &self,
        child: &mut OwnedChild,
        mut stdout: ChildStdout,
        mut demux: Box<StreamDemuxer>,
        mut probed: Probed,
        tracks: Vec<Arc<Track>>,
        stop: &CancellationToken,
    ) -> Result<(), String> {
        let mut pump = FramePump::new(&probed, tracks);
        for (index, frame) in probed.frames.drain(..) {
            pump.push(index, frame);
        }
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let read = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = stdout.read(&mut buf) => r,
            };
            let n = match read {
                Ok(0) | Err(_) => {
                    let how = tokio::time::timeout(Duration::from_secs(2), child.wait_exit()).await;
                    return Err(self.err(match how {
                        Ok(how) => format!("process {how}"),
                        Err(_) => "the process closed its stdout".to_string(),
                    }));
                }
                Ok(n) => n,
            };
            demux.push(&buf[..n], Instant::now()).map_err(|e| self.err(e))?;
            pump.drain(&mut demux);
        }
    }
}
