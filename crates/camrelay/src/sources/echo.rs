//! `echo:` — runs a command whose first line of output is the URL of the real source
//! (`echo:/path/script.sh arg`), builds that source and delegates to it (go2rtc's echo source).
//! The command runs again each time the source is dialled after a failure, so links that expire
//! are fetched fresh.

use media::Media;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

use super::exec::{quote_split, OwnedChild};
use crate::app::SourceContext;
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceFactory, Track};
use crate::secrets::mask_url;

/// How long the command may run.
const ECHO_TIMEOUT: Duration = Duration::from_secs(30);
/// Most output read from the command.
const ECHO_MAX_OUTPUT: usize = 64 * 1024;

pub struct EchoSource {
    command: String,
    label: String,
    ctx: SourceContext,
    /// The source the command resolved to, kept from `describe` for `run`.
    inner: tokio::sync::Mutex<Option<Arc<dyn Source>>>,
}

pub fn factory(ctx: &SourceContext) -> SourceFactory {
    let ctx = ctx.clone();
    Arc::new(move |url: &str| {
        let command = url.strip_prefix("echo:").ok_or("echo: URL must start with echo:")?;
        if command.trim().is_empty() {
            return Err("echo: empty command".to_string());
        }
        Ok(Arc::new(EchoSource {
            command: command.to_string(),
            label: mask_url(url),
            ctx: ctx.clone(),
            inner: tokio::sync::Mutex::new(None),
        }) as Arc<dyn Source>)
    })
}

/// Runs `command` and returns the first non-empty line of its stdout.
pub async fn run_echo(command: &str, label: &str) -> Result<String, String> {
    let argv = quote_split(command);
    let mut child = OwnedChild::spawn(&argv, false, true, label)?;
    let Some(stdout) = child.stdout.take() else { return Err("no stdout".into()) };
    let mut out = Vec::new();
    let read = async {
        let _ = stdout.take(ECHO_MAX_OUTPUT as u64).read_to_end(&mut out).await;
        child.wait_exit().await
    };
    let finished = tokio::time::timeout(ECHO_TIMEOUT, read).await;
    let how = match finished {
        Ok(how) => how,
        Err(_) => {
            let tail = child.stderr_tail();
            child.stop(libc::SIGKILL, Duration::ZERO).await;
            return Err(format!("command did not finish within {ECHO_TIMEOUT:?}; stderr: {tail}"));
        }
    };
    let text = String::from_utf8_lossy(&out);
    match text.lines().map(str::trim).find(|l| !l.is_empty()) {
        Some(line) => Ok(line.to_string()),
        None => Err(format!("command printed no URL: process {how}")),
    }
}

impl EchoSource {
    fn err(&self, what: impl std::fmt::Display) -> String {
        format!("echo: {}: {what}", self.label)
    }

    async fn resolve(&self) -> Result<Arc<dyn Source>, String> {
        super::exec::check_program(&self.ctx.config().exec.allow_paths, &quote_split(&self.command))
            .map_err(|e| self.err(e))?;
        let url = run_echo(&self.command, &self.label).await.map_err(|e| self.err(e))?;
        tracing::debug!(source = %self.label, url = %mask_url(&url), "echo: resolved");
        if url.starts_with("echo:") {
            return Err(self.err("the command printed another echo: URL"));
        }
        self.ctx.make_source(&url).map_err(|e| self.err(format!("{}: {e}", mask_url(&url))))
    }
}

impl EchoSource {
    /// The source the program named (resolved once, kept until a run fails).
    async fn resolved(&self) -> Result<Arc<dyn Source>, SourceError> {
        let mut inner = self.inner.lock().await;
        if let Some(s) = inner.as_ref() {
            return Ok(s.clone());
        }
        let s = self.resolve().await?;
        *inner = Some(s.clone());
        Ok(s)
    }
}

impl Source for EchoSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move { self.resolved().await?.describe().await })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        self.run_opened(None, tracks, stop)
    }

    /// The resolved source's own `open`: its connection is parked like any other.
    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move { self.resolved().await?.open().await })
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move {
            let source = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                s = self.resolved() => s?,
            };
            let result = source.run_opened(parked, tracks, stop).await;
            if result.is_err() {
                // Resolve again on the next attempt (the link may have expired).
                *self.inner.lock().await = None;
            }
            result
        })
    }
}
