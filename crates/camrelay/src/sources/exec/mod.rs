//! `exec:` — runs a program and takes media from it (go2rtc's exec source).
//!
//! - **RTSP mode**: the command contains `{output}`. It is replaced by a one-time private RTSP path
//!   of our own server; the child publishes there (ANNOUNCE/RECORD) and the publisher's tracks are
//!   forwarded into this source's tracks. `#starttimeout=` (seconds, default 5) bounds the wait.
//! - **pipe mode**: no `{output}`. The child's stdout is parsed: H.264 / H.265 Annex B or MJPEG (raw
//!   JPEG concatenation or multipart), MPEG-TS or FLV, detected from the first bytes by the sans-IO
//!   `formats::bytestream` demuxer (the Annex B / MJPEG parser is `formats::pipe`).
//! - **backchannel**: `#backchannel=1`. The source offers one sendonly audio media (PCMA/8000); the
//!   payloads of frames pushed into that track are written to the child's stdin.
//!
//! Children are owned ([`OwnedChild`]): their own process group, stopped with `#killsignal=`
//! (default SIGKILL, as go2rtc) sent to the whole group, SIGKILL after `#killtimeout=` (default 5 s),
//! always reaped; one child per source at a time.
//!
//! One file per concern: [`command`] (URL parameters, quoting, `exec.allow_paths`), [`child`] (the
//! owned child process), [`publish`] (RTSP mode), [`pipe`] (pipe mode), [`backchannel`].

mod backchannel;
pub mod child;
pub mod command;
mod pipe;
mod publish;

use media::Media;
use std::sync::Arc;
use tokio::process::ChildStdout;
use tokio_util::sync::CancellationToken;

use crate::app::SourceContext;
use crate::hub::{
    BoxFuture, Opened, Parked, PrivatePublishers, Producer, Source, SourceError, SourceErrorKind, SourceFactory, Track,
};
use crate::secrets::mask_url;
use crate::sources::bytestream::{Probed, StreamDemuxer};

pub use child::OwnedChild;
pub use command::{check_program, parse_query, parse_signal, query_get, quote_split, ExecParams};
pub use pipe::{PipeFormat, PipeParser, PipeUnit, MAX_PIPE_FRAME};

/// Produces the command line (with `{output}` for RTSP mode) when a child is about to start.
pub type CommandFn = Arc<dyn Fn() -> Result<String, String> + Send + Sync>;

pub struct ExecSource {
    /// Masked configured URL, for logs and errors.
    label: String,
    /// Prefix of errors: `exec`, `ffmpeg`.
    kind: &'static str,
    command: CommandFn,
    params: ExecParams,
    publishers: Arc<PrivatePublishers>,
    reader_queue: usize,
    /// `exec.allow_paths`: the programs this source may run (empty = any).
    allow_paths: Arc<[String]>,
}

/// A running child and what it produces.
struct Started {
    child: OwnedChild,
    medias: Vec<Media>,
    output: Output,
}

enum Output {
    /// The child's publisher (its tracks carry the media).
    Rtsp(Arc<Producer>),
    /// The child's stdout, its demuxer and the tracks and frames found while describing.
    Pipe { stdout: ChildStdout, demux: Box<StreamDemuxer>, probed: Probed },
}

pub fn factory(ctx: &SourceContext) -> SourceFactory {
    let ctx = ctx.clone();
    Arc::new(move |url: &str| {
        let rest = url.strip_prefix("exec:").ok_or("exec: URL must start with exec:")?;
        let (command, query) = rest.split_once('#').unwrap_or((rest, ""));
        if command.trim().is_empty() {
            return Err("exec: empty command".to_string());
        }
        let params = ExecParams::parse(&parse_query(query)).map_err(|e| format!("exec: {e}"))?;
        let command = command.to_string();
        let source = ExecSource::new("exec", url, Arc::new(move || Ok(command.clone())), params, &ctx);
        Ok(Arc::new(source) as Arc<dyn Source>)
    })
}

impl ExecSource {
    pub fn new(
        kind: &'static str,
        url: &str,
        command: CommandFn,
        params: ExecParams,
        ctx: &SourceContext,
    ) -> ExecSource {
        ExecSource {
            label: mask_url(url),
            kind,
            command,
            params,
            publishers: ctx.publishers.clone(),
            reader_queue: ctx.config().hub.reader_queue.max(64),
            allow_paths: ctx.config().exec.allow_paths.clone().into(),
        }
    }

    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("{}: {}: {what}", self.kind, self.label)
    }

    /// Starts the child and waits until its media is known (published, or detected on stdout).
    async fn start(&self) -> Result<Started, String> {
        let line = (self.command)().map_err(|e| self.err(e))?;
        if line.contains("{output}") {
            self.start_rtsp(&line).await
        } else {
            self.start_pipe(&line).await
        }
    }

    /// Starts the command `line` once `exec.allow_paths` allows its program.
    fn spawn(&self, line: &str, stdin: bool, stdout: bool) -> Result<OwnedChild, String> {
        let argv = quote_split(line);
        check_program(&self.allow_paths, &argv).map_err(|e| self.err(e))?;
        OwnedChild::spawn(&argv, stdin, stdout, &self.label).map_err(|e| self.err(e))
    }

    async fn run_inner(
        &self,
        claimed: Option<Started>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let claimed = match claimed {
            Some(mut s) => {
                if s.child.is_alive() {
                    Some(s)
                } else {
                    s.child.stop(self.params.kill_signal, self.params.kill_timeout).await;
                    None
                }
            }
            None => None,
        };
        let started = match claimed {
            Some(s) => s,
            None => tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                s = self.start() => s.map_err(error_of)?,
            },
        };
        if started.medias.len() != tracks.len() {
            let n = started.medias.len();
            started.child.stop(self.params.kill_signal, self.params.kill_timeout).await;
            return Err(SourceError::medias_changed(
                self.err(format!("the process now produces {n} medias, {} before", tracks.len())),
            ));
        }
        let Started { mut child, output, .. } = started;
        let result = match output {
            Output::Rtsp(producer) => self.forward(&mut child, producer, tracks, &stop).await,
            Output::Pipe { stdout, demux, probed } => self.pump(&mut child, stdout, demux, probed, tracks, &stop).await,
        };
        child.stop(self.params.kill_signal, self.params.kill_timeout).await;
        result.map_err(error_of)
    }
}

/// The kind of a child's failure, from its message (which ends with the child's stderr): ffmpeg's
/// words for a refused login, an unreachable input or garbage input.
pub fn error_of(message: String) -> SourceError {
    const AUTH: [&str; 4] = ["401 Unauthorized", "403 Forbidden", "authorization failed", "access denied"];
    const NETWORK: [&str; 8] = [
        "Connection refused",
        "Connection timed out",
        "Connection reset",
        "No route to host",
        "Network is unreachable",
        "Host is unreachable",
        "Temporary failure in name resolution",
        "Name or service not known",
    ];
    let kind = if AUTH.iter().any(|w| message.contains(w)) {
        SourceErrorKind::Auth
    } else if NETWORK.iter().any(|w| message.contains(w)) {
        SourceErrorKind::Network
    } else if message.contains("Invalid data found when processing input") {
        SourceErrorKind::Protocol
    } else {
        SourceErrorKind::Other
    };
    SourceError::new(kind, message)
}

impl Source for ExecSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(crate::hub::producer::describe_by_opening(self))
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        self.run_opened(None, tracks, stop)
    }

    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move {
            if self.params.backchannel {
                return Ok(Opened { medias: Self::backchannel_medias(), parked: None });
            }
            let started = self.start().await.map_err(error_of)?;
            let medias = started.medias.clone();
            let (signal, timeout, label) = (self.params.kill_signal, self.params.kill_timeout, self.label.clone());
            let parked = Parked::new(started, move |s: Started| {
                Box::pin(async move {
                    tracing::debug!(source = %label, "exec: child started for describe is unused: stopping it");
                    s.child.stop(signal, timeout).await;
                })
            });
            Ok(Opened { medias, parked: Some(parked) })
        })
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            if self.params.backchannel {
                return self.run_backchannel(tracks, stop).await.map_err(error_of);
            }
            self.run_inner(parked.and_then(Parked::take::<Started>), tracks, stop).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::{PrivatePublishers, TrackReader};
    use media::Kind;
    use std::time::Duration;

    pub(super) fn ctx() -> SourceContext {
        SourceContext {
            live: std::sync::Arc::new(arc_swap::ArcSwap::from_pointee(crate::config::Config::default())),
            publishers: Arc::new(PrivatePublishers::default()),
            hub: Arc::default(),
        }
    }

    pub(super) async fn wait_for(mut f: impl FnMut() -> bool) -> bool {
        for _ in 0..200 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        f()
    }

    #[tokio::test]
    async fn pipe_source_describes_and_streams_h264() {
        let factory = factory(&ctx());
        let source = factory(
            "exec:ffmpeg -v error -re -f lavfi -i testsrc=size=160x120:rate=25 -c:v libx264 -g 10 -bsf:v h264_mp4toannexb -f h264 -",
        )
        .unwrap();
        let medias = source.describe().await.unwrap();
        assert_eq!(medias.len(), 1);
        assert_eq!(medias[0].to_string(), "video, recvonly, H264");
        let track = Arc::new(Track::new(Kind::Video, medias[0].codecs[0].clone(), 1 << 20));
        let mut reader = TrackReader::new(track.clone(), "test", 64, true);
        let stop = CancellationToken::new();
        let run = tokio::spawn(source.clone().run(vec![track], stop.clone()));
        let mut frames = Vec::new();
        while frames.len() < 10 {
            let f = tokio::time::timeout(Duration::from_secs(10), reader.recv()).await.unwrap().unwrap();
            frames.push(f);
        }
        assert!(frames[0].keyframe);
        assert!(frames.iter().all(|f| !f.rtp.is_empty()));
        assert!(frames.windows(2).all(|w| w[1].timestamp.wrapping_sub(w[0].timestamp) < 90_000));
        stop.cancel();
        assert_eq!(run.await.unwrap(), Ok(()));
    }

    #[test]
    fn child_failures_are_classified_by_ffmpeg_words() {
        let kind = |m: &str| error_of(m.to_string()).kind();
        let e = "ffmpeg: rtsp://cam: process exited with code 1; stderr: [rtsp @ 0x1] method DESCRIBE failed: 401 Unauthorized";
        assert_eq!(kind(e), SourceErrorKind::Auth);
        assert_eq!(kind("exec: x: process exited; stderr: Connection refused"), SourceErrorKind::Network);
        assert_eq!(kind("stderr: pipe:: Invalid data found when processing input"), SourceErrorKind::Protocol);
        assert_eq!(kind("exec: x: cannot start /nonexistent/binary"), SourceErrorKind::Other);
        assert_eq!(error_of("msg".into()).message(), "msg");
    }

    #[tokio::test]
    async fn pipe_source_errors_carry_the_stderr_tail() {
        let factory = factory(&ctx());
        let source = factory("exec:sh -c \"echo 'no camera here' >&2; exit 1\"").unwrap();
        let e = source.describe().await.unwrap_err();
        assert!(e.contains("exited with code 1") && e.contains("no camera here"), "{e}");
        let source = factory("exec:/nonexistent/binary").unwrap();
        assert!(source.describe().await.unwrap_err().contains("cannot start /nonexistent/binary"));
        // Prints nothing and never exits: the start timeout ends it.
        let source = factory("exec:sleep 30#starttimeout=0.3").unwrap();
        let e = source.describe().await.unwrap_err();
        assert!(e.contains("no decodable media on stdout within 300ms"), "{e}");
        // RTSP mode without an RTSP server.
        let source = factory("exec:ffmpeg -i x -f rtsp {output}").unwrap();
        assert!(source.describe().await.unwrap_err().contains("RTSP server is disabled"));
    }
}
