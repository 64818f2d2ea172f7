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

use bytes::Bytes;
use media::{codec, Codec, Direction, Kind, Media};
use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::SourceContext;
use crate::hub::{BoxFuture, PrivatePublishers, Producer, Source, SourceError, SourceFactory, Track, TrackReader};
use crate::secrets::{mask_text, mask_url};
use crate::sources::bytestream::{probe, ChunkSource, FramePump, Hint, Probed, StreamDemuxer};

/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 5;
/// Longest stderr line kept (longer lines are cut).
const STDERR_LINE_MAX: usize = 1024;
/// A child started by `describe` that no `run` claims within this time is stopped.
const IDLE_CHILD_TIMEOUT: Duration = Duration::from_secs(30);

// ------------------------------------------------------------------------------------------ params

/// go2rtc's `streams.ParseQuery`: `#`-separated `key=value` (or bare `key`) pairs, in order.
pub fn parse_query(s: &str) -> Vec<(String, String)> {
    s.split('#')
        .filter(|kv| !kv.is_empty())
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv.to_string(), String::new()),
        })
        .collect()
}

/// First value of `key` in a parsed query.
pub fn query_get<'a>(query: &'a [(String, String)], key: &str) -> Option<&'a str> {
    query.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

/// go2rtc's `shell.QuoteSplit`: splits on spaces; a word containing `"` runs to the next `" ` and
/// loses its quotes. (go2rtc keeps the quotes of a quoted last word; we strip them too.)
pub fn quote_split(mut s: &str) -> Vec<String> {
    let mut out = Vec::new();
    while !s.is_empty() {
        let mut is = s.find(' ');
        if let Some(0) = is {
            s = &s[1..];
            continue;
        }
        if let Some(sp) = is {
            if s[..sp].contains('"') {
                is = s.find("\" ").map(|q| q + 1);
            }
        }
        match is {
            Some(i) => {
                out.push(s[..i].replace('"', ""));
                s = &s[i + 1..];
            }
            None => {
                out.push(s.replace('"', ""));
                break;
            }
        }
    }
    out
}

/// A signal by number (`2`) or name (`sigint`, `SIGINT`, `int`).
pub fn parse_signal(s: &str) -> Option<i32> {
    if let Ok(n) = s.trim().parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let name = s.trim().to_ascii_lowercase();
    let name = name.strip_prefix("sig").unwrap_or(&name);
    Some(match name {
        "hup" => libc::SIGHUP,
        "int" => libc::SIGINT,
        "quit" => libc::SIGQUIT,
        "abrt" => libc::SIGABRT,
        "kill" => libc::SIGKILL,
        "usr1" => libc::SIGUSR1,
        "usr2" => libc::SIGUSR2,
        "pipe" => libc::SIGPIPE,
        "alrm" => libc::SIGALRM,
        "term" => libc::SIGTERM,
        "cont" => libc::SIGCONT,
        "stop" => libc::SIGSTOP,
        "tstp" => libc::SIGTSTP,
        "winch" => libc::SIGWINCH,
        _ => return None,
    })
}

/// The `#` parameters of an `exec:` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct ExecParams {
    pub kill_signal: i32,
    pub kill_timeout: Duration,
    pub start_timeout: Duration,
    pub backchannel: bool,
}

impl Default for ExecParams {
    fn default() -> Self {
        ExecParams {
            kill_signal: libc::SIGKILL,
            kill_timeout: Duration::from_secs(5),
            start_timeout: Duration::from_secs(5),
            backchannel: false,
        }
    }
}

fn parse_seconds(v: &str) -> Option<Duration> {
    let secs: f64 = v.trim().parse().ok()?;
    (0.0..1e7).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

impl ExecParams {
    pub fn parse(query: &[(String, String)]) -> Result<ExecParams, String> {
        let mut p = ExecParams::default();
        for (k, v) in query {
            match k.as_str() {
                "killsignal" => p.kill_signal = parse_signal(v).ok_or(format!("invalid killsignal {v:?}"))?,
                "killtimeout" => p.kill_timeout = parse_seconds(v).ok_or(format!("invalid killtimeout {v:?}"))?,
                "starttimeout" => p.start_timeout = parse_seconds(v).ok_or(format!("invalid starttimeout {v:?}"))?,
                "backchannel" => p.backchannel = v == "1",
                _ => {}
            }
        }
        Ok(p)
    }
}

// ------------------------------------------------------------------------------------ owned child

/// The last lines a child wrote to stderr.
#[derive(Default)]
struct StderrTail {
    lines: VecDeque<String>,
}

impl StderrTail {
    fn push(&mut self, line: String) {
        if self.lines.len() == STDERR_TAIL_LINES {
            self.lines.pop_front();
        }
        self.lines.push_back(line);
    }
}

/// A child process we own: its own process group, stopped as a group, always reaped. Dropping it
/// without [`OwnedChild::stop`] SIGKILLs the group (tokio reaps the leader).
pub struct OwnedChild {
    child: Child,
    /// The process group (= the child's pid) while the child is not reaped.
    pgid: Option<i32>,
    tail: Arc<Mutex<StderrTail>>,
    stderr_task: Option<tokio::task::JoinHandle<()>>,
    pub stdin: Option<ChildStdin>,
    pub stdout: Option<ChildStdout>,
}

/// go2rtc's `exec.allow_paths`: a command may run only when its program (first word, as written) is
/// one of `allow_paths`; an empty list allows any.
pub fn check_program(allow_paths: &[String], argv: &[String]) -> Result<(), String> {
    let program = argv.first().map(String::as_str).unwrap_or("");
    if allow_paths.is_empty() || allow_paths.iter().any(|p| p == program) {
        return Ok(());
    }
    Err(format!("program {:?} is not in exec.allow_paths ({})", mask_url(program), allow_paths.join(", ")))
}

impl OwnedChild {
    /// Starts `argv` in a new process group. `label` (already masked) names it in logs.
    pub fn spawn(argv: &[String], stdin: bool, stdout: bool, label: &str) -> Result<OwnedChild, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(if stdout { Stdio::piped() } else { Stdio::null() })
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = cmd.spawn().map_err(|e| format!("cannot start {}: {e}", mask_url(program)))?;
        let pgid = child.id().and_then(|id| i32::try_from(id).ok());
        let tail = Arc::new(Mutex::new(StderrTail::default()));
        let stderr_task = child.stderr.take().map(|stderr| {
            let tail = tail.clone();
            let label = label.to_string();
            tokio::spawn(async move { read_stderr(stderr, tail, label).await })
        });
        tracing::debug!(source = %label, pid = ?pgid, "child started");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        Ok(OwnedChild { child, pgid, tail, stderr_task, stdin, stdout })
    }

    pub fn pid(&self) -> Option<i32> {
        self.pgid
    }

    /// True while the child has not exited.
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last stderr lines, joined with ` | ` (masked).
    pub fn stderr_tail(&self) -> String {
        let tail = self.tail.lock().unwrap_or_else(|e| e.into_inner());
        tail.lines.iter().cloned().collect::<Vec<_>>().join(" | ")
    }

    /// Waits for the child to exit and returns a description of how, with the stderr tail.
    pub async fn wait_exit(&mut self) -> String {
        let status = self.child.wait().await;
        self.pgid = None;
        self.finish_stderr().await;
        describe_exit(status, &self.stderr_tail())
    }

    /// Lets the stderr reader catch the last lines (bounded: a grandchild may hold the pipe open).
    async fn finish_stderr(&mut self) {
        if let Some(task) = self.stderr_task.as_mut() {
            let _ = tokio::time::timeout(Duration::from_millis(500), task).await;
        }
    }

    fn signal_group(&self, signal: i32) {
        if let Some(pgid) = self.pgid {
            // SAFETY: killpg has no memory-safety preconditions. The group is ours: its leader is our
            // child, not yet reaped (pgid is cleared when it is), so the id cannot have been reused.
            unsafe {
                libc::killpg(pgid, signal);
            }
        }
    }

    /// Sends `signal` to the group, waits up to `timeout`, then SIGKILLs the group; reaps the child.
    pub async fn stop(mut self, signal: i32, timeout: Duration) {
        if self.pgid.is_none() {
            return;
        }
        self.stdin = None;
        self.signal_group(signal);
        let exited = if signal == libc::SIGKILL {
            false
        } else {
            tokio::time::timeout(timeout, self.child.wait()).await.is_ok()
        };
        // Kill what is left of the group (also grandchildren when the leader exited on its own).
        self.signal_group(libc::SIGKILL);
        if !exited {
            let _ = self.child.wait().await;
        }
        self.pgid = None;
        if let Some(task) = self.stderr_task.take() {
            task.abort();
        }
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        self.signal_group(libc::SIGKILL);
        if let Some(task) = self.stderr_task.take() {
            task.abort();
        }
    }
}

fn describe_exit(status: std::io::Result<ExitStatus>, tail: &str) -> String {
    let how = match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("exited with code {code}"),
            (None, Some(sig)) => format!("killed by signal {sig}"),
            _ => "exited".to_string(),
        },
        Err(e) => format!("wait failed: {e}"),
    };
    if tail.is_empty() {
        format!("{how} (no stderr output)")
    } else {
        format!("{how}; stderr: {tail}")
    }
}

/// Reads stderr line by line (bounded), logs each line and keeps the last few.
async fn read_stderr(mut stderr: impl AsyncRead + Unpin, tail: Arc<Mutex<StderrTail>>, label: String) {
    let mut buf = vec![0u8; 4096];
    let mut line: Vec<u8> = Vec::new();
    let flush = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line).trim().to_string();
        line.clear();
        if text.is_empty() {
            return;
        }
        let text = mask_text(&text);
        tracing::debug!(source = %label, "{text}");
        tail.lock().unwrap_or_else(|e| e.into_inner()).push(text);
    };
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                flush(&mut line);
            } else if line.len() < STDERR_LINE_MAX {
                line.push(b);
            }
        }
    }
    flush(&mut line);
}

// ------------------------------------------------------------------------------------- pipe parser

// The parser of a child's stdout is sans-IO and lives in `formats::pipe`; re-exported here.
pub use formats::pipe::{PipeFormat, PipeParser, PipeUnit, MAX_PIPE_FRAME};

// ------------------------------------------------------------------------------------------ source

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
    slot: Arc<tokio::sync::Mutex<Slot>>,
    /// `exec.allow_paths`: the programs this source may run (empty = any).
    allow_paths: Arc<[String]>,
}

#[derive(Default)]
struct Slot {
    started: Option<Started>,
    /// Bumped whenever `started` changes hands, so an idle watchdog knows it is stale.
    generation: u64,
}

/// A running child and what it produces.
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
            reader_queue: ctx.config.hub.reader_queue.max(64),
            slot: Arc::default(),
            allow_paths: ctx.config.exec.allow_paths.clone().into(),
        }
    }

    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("{}: {}: {what}", self.kind, self.label)
    }

    fn backchannel_medias() -> Vec<Media> {
        vec![Media::new(Kind::Audio, Direction::SendOnly, vec![Codec::new(codec::PCMA, 8000, 1, 8)])]
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

    async fn start_rtsp(&self, line: &str) -> Result<Started, String> {
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

    async fn start_pipe(&self, line: &str) -> Result<Started, String> {
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

    /// Stops a child that `describe` started if no `run` claims it in time.
    fn watch_idle(&self, generation: u64) {
        let slot = Arc::downgrade(&self.slot);
        let (signal, timeout) = (self.params.kill_signal, self.params.kill_timeout);
        let label = self.label.clone();
        tokio::spawn(async move {
            tokio::time::sleep(IDLE_CHILD_TIMEOUT).await;
            let Some(slot) = slot.upgrade() else { return };
            let started = {
                let mut slot = slot.lock().await;
                if slot.generation != generation {
                    return;
                }
                slot.started.take()
            };
            if let Some(s) = started {
                tracing::debug!(source = %label, "exec: child started for describe is unused: stopping it");
                s.child.stop(signal, timeout).await;
            }
        });
    }

    async fn run_inner(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), String> {
        let claimed = {
            let mut slot = self.slot.lock().await;
            slot.generation += 1;
            slot.started.take()
        };
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
                s = self.start() => s?,
            },
        };
        if started.medias.len() != tracks.len() {
            let n = started.medias.len();
            started.child.stop(self.params.kill_signal, self.params.kill_timeout).await;
            return Err(self.err(format!("the process now produces {n} medias, {} before", tracks.len())));
        }
        let Started { mut child, output, .. } = started;
        let result = match output {
            Output::Rtsp(producer) => self.forward(&mut child, producer, tracks, &stop).await,
            Output::Pipe { stdout, demux, probed } => self.pump(&mut child, stdout, demux, probed, tracks, &stop).await,
        };
        child.stop(self.params.kill_signal, self.params.kill_timeout).await;
        result
    }

    /// RTSP mode: forwards the child's published tracks into ours.
    async fn forward(
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

    /// Pipe mode: demuxes stdout into frames.
    async fn pump(
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

    /// Backchannel: writes the payloads of frames pushed into the sendonly track to the child's stdin.
    async fn run_backchannel(&self, tracks: Vec<Arc<Track>>, stop: CancellationToken) -> Result<(), String> {
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

impl Source for ExecSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move {
            if self.params.backchannel {
                return Ok(Self::backchannel_medias());
            }
            let mut slot = self.slot.lock().await;
            if let Some(s) = slot.started.as_mut() {
                if s.child.is_alive() {
                    return Ok(s.medias.clone());
                }
            }
            if let Some(old) = slot.started.take() {
                old.child.stop(self.params.kill_signal, self.params.kill_timeout).await;
            }
            let started = self.start().await?;
            let medias = started.medias.clone();
            slot.started = Some(started);
            slot.generation += 1;
            self.watch_idle(slot.generation);
            Ok(medias)
        })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            if self.params.backchannel {
                return self.run_backchannel(tracks, stop).await;
            }
            self.run_inner(tracks, stop).await
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::PrivatePublishers;

    fn ctx() -> SourceContext {
        SourceContext {
            config: crate::config::Config::default(),
            publishers: Arc::new(PrivatePublishers::default()),
            hub: Arc::default(),
        }
    }

    #[test]
    fn quote_split_like_go2rtc() {
        assert_eq!(quote_split("ffmpeg  -i x -f rtsp {output}"), ["ffmpeg", "-i", "x", "-f", "rtsp", "{output}"]);
        assert_eq!(
            quote_split(r#"ffmpeg -f dshow -i "video=FaceTime HD Camera" -c copy"#),
            ["ffmpeg", "-f", "dshow", "-i", "video=FaceTime HD Camera", "-c", "copy"]
        );
        assert_eq!(quote_split(r#"sh -c "cat > /tmp/x""#), ["sh", "-c", "cat > /tmp/x"]);
        assert!(quote_split("").is_empty());
    }

    #[test]
    fn params() {
        let p = ExecParams::parse(&parse_query("killsignal=2#killtimeout=3#backchannel=1#starttimeout=0.5")).unwrap();
        assert_eq!(
            p,
            ExecParams {
                kill_signal: libc::SIGINT,
                kill_timeout: Duration::from_secs(3),
                start_timeout: Duration::from_millis(500),
                backchannel: true
            }
        );
        assert_eq!(ExecParams::parse(&parse_query("killsignal=sigterm")).unwrap().kill_signal, libc::SIGTERM);
        assert_eq!(ExecParams::parse(&parse_query("killsignal=INT")).unwrap().kill_signal, libc::SIGINT);
        assert_eq!(ExecParams::parse(&[]).unwrap(), ExecParams::default());
        assert_eq!(ExecParams::default().kill_signal, libc::SIGKILL);
        assert!(ExecParams::parse(&parse_query("killsignal=nope")).is_err());
        assert!(ExecParams::parse(&parse_query("killtimeout=-1")).is_err());
    }

    fn pgrep(marker: &str) -> bool {
        std::process::Command::new("pgrep").args(["-f", marker]).status().is_ok_and(|s| s.success())
    }

    #[tokio::test]
    async fn owned_child_stops_its_whole_group_and_keeps_stderr_tail() {
        // Unique sleep durations are the markers pgrep looks for.
        let id = std::process::id() % 100_000;
        let (grandchild, marker) = (format!("sleep 1001.{id}"), format!("sleep 1002.{id}"));
        // The shell starts a grandchild; stopping must take both.
        let script = format!("echo one >&2; echo two >&2; {grandchild} & exec {marker}");
        let argv = vec!["sh".to_string(), "-c".to_string(), script];
        let child = OwnedChild::spawn(&argv, false, false, "test").unwrap();
        assert!(wait_for(|| child.stderr_tail() == "one | two").await);
        assert!(wait_for(|| pgrep(&marker) && pgrep(&grandchild)).await);
        child.stop(libc::SIGTERM, Duration::from_secs(2)).await;
        // Reaped at once; the grandchild (reparented to init) is gone once init reaps it.
        assert!(!pgrep(&marker));
        assert!(wait_for(|| !pgrep(&grandchild)).await);

        // A child that fails reports its exit and stderr.
        let argv = vec!["sh".to_string(), "-c".to_string(), "echo 'bad thing' >&2; exit 3".to_string()];
        let mut child = OwnedChild::spawn(&argv, false, false, "test").unwrap();
        assert_eq!(child.wait_exit().await, "exited with code 3; stderr: bad thing");
    }

    async fn wait_for(mut f: impl FnMut() -> bool) -> bool {
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
