//! The owned child process of `exec:` (also used by `echo:` and the MJPEG transcoder): its own process
//! group, stopped as a group (signal, then SIGKILL after a timeout), always reaped, with the tail of
//! its stderr kept for error messages.

use std::collections::VecDeque;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::secrets::{mask_text, mask_url};

/// Lines of a child's stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 5;
/// Longest stderr line kept (longer lines are cut).
const STDERR_LINE_MAX: usize = 1024;

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

impl OwnedChild {
    /// Starts `argv` in a new process group. `label` (already masked) names it in logs.
    pub fn spawn(argv: &[String], stdin: bool, stdout: bool, label: &str) -> Result<OwnedChild, String> {
        Self::spawn_with_env(argv, &[], stdin, stdout, label)
    }

    /// [`OwnedChild::spawn`] with `env` added to the inherited environment (hooks' `MTX_*` variables).
    pub fn spawn_with_env(
        argv: &[String],
        env: &[(String, String)],
        stdin: bool,
        stdout: bool,
        label: &str,
    ) -> Result<OwnedChild, String> {
        let (program, args) = argv.split_first().ok_or("empty command")?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::exec::tests::wait_for;

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
}
