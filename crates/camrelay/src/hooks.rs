//! MediaMTX's hooks (`runOn*`): commands run when a client connects or disconnects, when a path is
//! configured (`runOnInit`), wanted by a reader with no publisher (`runOnDemand`), ready or not
//! (`runOnReady`, `runOnNotReady`), read or left (`runOnRead`, `runOnUnread`).
//!
//! - **Commands** are split as MediaMTX splits them (go-shellquote: words on blanks, `'...'`,
//!   `"..."` with `\` escapes, no shell), then `$VAR` / `${VAR}` in each word is replaced by the
//!   hook's variables (`MTX_PATH`, `RTSP_PORT`, `G1`...) or the server's environment. MediaMTX
//!   replaces before splitting; replacing after means a value with spaces or quotes (a reader's
//!   `MTX_QUERY`) stays one argument and cannot add arguments. The variables are also in the child's
//!   environment, so `sh -c '... $MTX_PATH'` works too.
//! - **Children** are [`OwnedChild`]ren (the `exec:` source's): their own process group, stopped with
//!   SIGINT to the group as MediaMTX does (then SIGKILL after [`STOP_TIMEOUT`]), always reaped. A
//!   command that lasts as long as its state (`runOnConnect`, `runOnInit`, `runOnDemand`,
//!   `runOnReady`, `runOnRead`) is stopped when the state ends and, with `*Restart: true`, started
//!   again [`RESTART_PAUSE`] after it exits. The others run once to their end. On server exit every
//!   child is stopped and reaped before the process ends.
//! - **Off the media path.** The hub and the listeners only call in ([`crate::hub::events`],
//!   [`Hooks::connect`]); starting a process happens on a task of its own. At most
//!   [`MAX_RUNNING_PER_HOOK`] children of one hook run at once; past that a command is not started
//!   and a warning says so.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::mediamtx::parse_mediamtx_duration;
use crate::config::Config;
use crate::hub::events::{EventGuard, HubEvents};
use crate::hub::{Hub, PrivatePublishers, Producer, ReaderShared};
use crate::sources::exec::child::OwnedChild;

/// Most children of one hook (e.g. `runOnRead`) running at once.
pub const MAX_RUNNING_PER_HOOK: usize = 64;
/// Pause before a `*Restart: true` command that exited is started again (MediaMTX's).
pub const RESTART_PAUSE: Duration = Duration::from_secs(5);
/// How long a stopped command has after SIGINT before its group is killed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A hook: its MediaMTX key and, for commands that last as long as a state, its restart key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hook {
    Connect,
    Disconnect,
    Init,
    Demand,
    UnDemand,
    Ready,
    NotReady,
    Read,
    Unread,
    SegmentCreate,
    SegmentComplete,
}

impl Hook {
    const ALL: [Hook; 11] = [
        Hook::Connect,
        Hook::Disconnect,
        Hook::Init,
        Hook::Demand,
        Hook::UnDemand,
        Hook::Ready,
        Hook::NotReady,
        Hook::Read,
        Hook::Unread,
        Hook::SegmentCreate,
        Hook::SegmentComplete,
    ];

    pub fn key(self) -> &'static str {
        match self {
            Hook::Connect => "runOnConnect",
            Hook::Disconnect => "runOnDisconnect",
            Hook::Init => "runOnInit",
            Hook::Demand => "runOnDemand",
            Hook::UnDemand => "runOnUnDemand",
            Hook::Ready => "runOnReady",
            Hook::NotReady => "runOnNotReady",
            Hook::Read => "runOnRead",
            Hook::Unread => "runOnUnread",
            Hook::SegmentCreate => "runOnRecordSegmentCreate",
            Hook::SegmentComplete => "runOnRecordSegmentComplete",
        }
    }

    fn restart_key(self) -> Option<&'static str> {
        match self {
            Hook::Connect => Some("runOnConnectRestart"),
            Hook::Init => Some("runOnInitRestart"),
            Hook::Demand => Some("runOnDemandRestart"),
            Hook::Ready => Some("runOnReadyRestart"),
            Hook::Read => Some("runOnReadRestart"),
            _ => None,
        }
    }

    fn index(self) -> usize {
        Hook::ALL.iter().position(|h| *h == self).unwrap_or(0)
    }

    /// Whether the key is a path setting (else a global one).
    fn is_path_hook(self) -> bool {
        !matches!(self, Hook::Connect | Hook::Disconnect)
    }

    /// Every hook key a config has (the path ones and the global ones), with whether it is a path's.
    pub fn keys() -> impl Iterator<Item = (&'static str, bool)> {
        Hook::ALL.iter().map(|h| (h.key(), h.is_path_hook()))
    }
}

/// Splits a command line as go-shellquote (MediaMTX's) does: words separated by blanks; `'...'`
/// literal; `"..."` where `\` escapes `$`, `` ` ``, `"`, `\` and newline; `\` escapes any character
/// outside quotes (`\` + newline joins lines). No shell runs.
pub fn split_command(command: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = command.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' | '\r' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\\' => match chars.next() {
                Some('\n') => {}
                Some(next) => {
                    word.push(next);
                    in_word = true;
                }
                None => return Err("the command ends with an unfinished escape (\\)".into()),
            },
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => word.push(c),
                        None => return Err("unterminated single-quoted string in the command".into()),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c @ ('$' | '`' | '"' | '\\')) => word.push(c),
                            Some('\n') => {}
                            Some(c) => {
                                word.push('\\');
                                word.push(c);
                            }
                            None => return Err("unterminated double-quoted string in the command".into()),
                        },
                        Some(c) => word.push(c),
                        None => return Err("unterminated double-quoted string in the command".into()),
                    }
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    if words.is_empty() {
        return Err("empty command".into());
    }
    Ok(words)
}

/// Words as one command line that [`split_command`] gives back: each in single quotes (a `'` as
/// `'\''`).
pub fn quote_words(words: &[String]) -> String {
    words.iter().map(|w| format!("'{}'", w.replace('\'', "'\\''"))).collect::<Vec<_>>().join(" ")
}

/// Go's `os.Expand`: `$NAME` (letters, digits, `_`), `${NAME}` and the one-character names
/// (`$1`, `$*`...) replaced by `lookup` (unknown: empty); a `$` before anything else stays.
pub fn expand(word: &str, lookup: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, used) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                // Go eats a bad `${...` whole.
                None => ("", after.len()),
            }
        } else if after.starts_with(|c: char| "*#$@!?-".contains(c) || c.is_ascii_digit()) {
            (&after[..1], 1)
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() && used == 0 {
            out.push('$');
        } else if !name.is_empty() {
            out.push_str(&lookup(name).unwrap_or_default());
        }
        rest = &after[used..];
    }
    out.push_str(rest);
    out
}

/// The argv of `command` with `env` (then the server's environment) substituted.
pub fn command_argv(command: &str, env: &[(String, String)]) -> Result<Vec<String>, String> {
    let lookup =
        |name: &str| env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).or_else(|| std::env::var(name).ok());
    Ok(split_command(command)?.iter().map(|w| expand(w, &lookup)).collect())
}

/// A hook's variables (`MTX_PATH`, `RTSP_PORT`...), in order.
type Env = Vec<(String, String)>;

/// A running command; dropping it stops the command (and its restarts) unless it was detached.
struct HookRun {
    cancel: CancellationToken,
    detached: bool,
    /// Set when the command (and its restarts) ended.
    ended: Arc<std::sync::atomic::AtomicBool>,
}

impl HookRun {
    fn has_ended(&self) -> bool {
        self.ended.load(Ordering::Acquire)
    }

    /// Lets the command run to its end (it still stops at server exit).
    fn detach(mut self) {
        self.detached = true;
    }
}

impl Drop for HookRun {
    fn drop(&mut self) {
        if !self.detached {
            self.cancel.cancel();
        }
    }
}

/// A command to run once when a state ends (`runOnNotReady`, `runOnUnread`...).
struct Afterwards {
    hooks: Weak<Hooks>,
    hook: Hook,
    command: String,
    env: Vec<(String, String)>,
    what: String,
}

/// What an event gives the hub: the lasting command, and the one to run when the state ends.
struct StateGuard {
    run: Option<HookRun>,
    after: Option<Afterwards>,
}

impl Drop for StateGuard {
    fn drop(&mut self) {
        drop(self.run.take());
        if let Some(a) = self.after.take() {
            if let Some(hooks) = a.hooks.upgrade() {
                hooks.run_once(a.hook, &a.command, a.env, &a.what);
            }
        }
    }
}

/// A path's `runOnDemand` state: readers that want it, and the command while it runs.
struct Demand {
    tickets: usize,
    generation: u64,
    run: Option<HookRun>,
    close_after: Duration,
    undemand: String,
    env: Vec<(String, String)>,
}

/// One reader's demand of a path; dropping it lets the command stop after `runOnDemandCloseAfter`.
struct DemandTicket {
    hooks: Weak<Hooks>,
    path: String,
}

impl Drop for DemandTicket {
    fn drop(&mut self) {
        if let Some(hooks) = self.hooks.upgrade() {
            hooks.release_demand(&self.path);
        }
    }
}

/// A path's settings, its regular expression's groups and the config they come from.
struct PathContext {
    settings: Map<String, Value>,
    groups: Vec<String>,
    config: Arc<Config>,
}

/// The hooks of the running config. Built by the app; the hub reports to it as its [`HubEvents`].
pub struct Hooks {
    me: Weak<Hooks>,
    live: Arc<ArcSwap<Config>>,
    /// Knows the RTSP listener's address once it is bound (`RTSP_PORT` of an `:0` listener).
    rtsp: Arc<PrivatePublishers>,
    hub: OnceLock<Weak<Hub>>,
    /// Cancelled at server exit: every command stops and no new one starts.
    stop: CancellationToken,
    running: [AtomicUsize; Hook::ALL.len()],
    total: AtomicUsize,
    next_conn: AtomicU64,
    /// `runOnInit` per literal path: command, restart, the run.
    init: Mutex<HashMap<String, (String, bool, HookRun)>>,
    demands: Mutex<HashMap<String, Demand>>,
    /// Told of each segment the recorder creates or completes (the playback server's index).
    segment_observers: Mutex<Vec<SegmentObserver>>,
}

/// Called with the path name of a segment the recorder created or completed; must return at once.
pub type SegmentObserver = Box<dyn Fn(&str) + Send + Sync>;

impl Hooks {
    pub fn new(live: Arc<ArcSwap<Config>>, rtsp: Arc<PrivatePublishers>) -> Arc<Hooks> {
        Arc::new_cyclic(|me| Hooks {
            me: me.clone(),
            live,
            rtsp,
            hub: OnceLock::new(),
            stop: CancellationToken::new(),
            running: Default::default(),
            total: AtomicUsize::new(0),
            next_conn: AtomicU64::new(1),
            init: Mutex::default(),
            demands: Mutex::default(),
            segment_observers: Mutex::default(),
        })
    }

    /// Calls `observer` for each segment the recorder creates or completes.
    pub fn observe_segments(&self, observer: SegmentObserver) {
        self.segment_observers.lock().unwrap_or_else(|e| e.into_inner()).push(observer);
    }

    /// Makes `hub` report its path events here.
    pub fn attach(self: &Arc<Self>, hub: &Arc<Hub>) {
        let _ = self.hub.set(Arc::downgrade(hub));
        hub.set_events(self.clone());
    }

    /// Children running now (all hooks).
    pub fn running(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// The RTSP listener's port: the bound one (an `:0` listener's real port), else the configured one.
    fn rtsp_port(&self, config: &Config) -> String {
        let port = |s: &str| -> Option<String> {
            let p = s.rsplit(':').next()?;
            (!p.is_empty() && p.chars().all(|c| c.is_ascii_digit())).then(|| p.to_string())
        };
        self.rtsp.base_url().and_then(port).or_else(|| port(&config.rtsp.listen)).unwrap_or_default()
    }

    /// Path `path`'s settings (its `paths:` entry over `pathDefaults`) and its regular expression's
    /// groups; `None` without a MediaMTX config or when no entry covers it.
    fn path_settings(&self, path: &str) -> Option<PathContext> {
        let config = self.live.load_full();
        let mtx = config.mediamtx.as_ref()?;
        let hub = self.hub.get()?.upgrade()?;
        let rules = hub.path_rules();
        let (rule, groups) = rules.find(path)?;
        let settings = mtx.path_settings(&rule.name)?;
        Some(PathContext { settings, groups, config })
    }

    /// MediaMTX's path variables.
    fn path_env(&self, path: &str, groups: &[String], config: &Config) -> Vec<(String, String)> {
        let mut env = vec![
            ("MTX_PATH".to_string(), path.to_string()),
            ("RTSP_PATH".to_string(), path.to_string()),
            ("RTSP_PORT".to_string(), self.rtsp_port(config)),
        ];
        for (i, g) in groups.iter().enumerate() {
            env.push((format!("G{}", i + 1), g.clone()));
        }
        env
    }

    /// Starts `command` (empty: nothing) for `hook` on its own task; `None` when it did not start.
    /// Dropping the returned run stops it; a run nobody keeps goes to its end.
    fn start(
        &self,
        hook: Hook,
        command: &str,
        restart: bool,
        env: Vec<(String, String)>,
        what: &str,
    ) -> Option<HookRun> {
        if command.trim().is_empty() || self.stop.is_cancelled() {
            return None;
        }
        let argv = match command_argv(command, &env) {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(module = "hooks", hook = hook.key(), "{what}: cannot run the command: {e}");
                return None;
            }
        };
        let rt = tokio::runtime::Handle::try_current().ok()?;
        let count = &self.running[hook.index()];
        if count.fetch_add(1, Ordering::AcqRel) >= MAX_RUNNING_PER_HOOK {
            count.fetch_sub(1, Ordering::AcqRel);
            tracing::warn!(
                module = "hooks",
                hook = hook.key(),
                "{what}: not started, {MAX_RUNNING_PER_HOOK} {} commands already run (the most at once)",
                hook.key()
            );
            return None;
        }
        self.total.fetch_add(1, Ordering::AcqRel);
        let cancel = self.stop.child_token();
        let token = cancel.clone();
        let me = self.me.clone();
        let label = format!("{} {what}", hook.key());
        let ended = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let ended_here = ended.clone();
        rt.spawn(async move {
            supervise(&argv, &env, restart, &token, &label).await;
            ended_here.store(true, Ordering::Release);
            if let Some(me) = me.upgrade() {
                me.running[hook.index()].fetch_sub(1, Ordering::AcqRel);
                me.total.fetch_sub(1, Ordering::AcqRel);
            }
        });
        Some(HookRun { cancel, detached: false, ended })
    }

    /// The recorder created segment `file` of `path` (`duration`: `None`) or completed it:
    /// `runOnRecordSegmentCreate` / `runOnRecordSegmentComplete` with `MTX_SEGMENT_PATH` (and
    /// `MTX_SEGMENT_DURATION`, seconds), run to their end.
    pub fn record_segment(&self, path: &str, file: &std::path::Path, duration: Option<Duration>) {
        for observer in self.segment_observers.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            observer(path);
        }
        let Some(ctx) = self.path_settings(path) else { return };
        let hook = if duration.is_some() { Hook::SegmentComplete } else { Hook::SegmentCreate };
        let command = str_of(&ctx.settings, hook.key());
        if command.is_empty() {
            return;
        }
        let mut env = self.path_env(path, &ctx.groups, &ctx.config);
        env.push(("MTX_SEGMENT_PATH".to_string(), file.display().to_string()));
        if let Some(d) = duration {
            env.push(("MTX_SEGMENT_DURATION".to_string(), d.as_secs_f64().to_string()));
        }
        self.run_once(hook, &command, env, &format!("path {path}"));
    }

    /// Starts a command that runs to its end (`runOnNotReady`, `runOnUnread`...).
    fn run_once(&self, hook: Hook, command: &str, env: Vec<(String, String)>, what: &str) {
        if let Some(run) = self.start(hook, command, false, env, what) {
            run.detach();
        }
    }

    /// The lasting command of `hook` and the one-shot `after` hook, as one guard; `None` when
    /// neither is set.
    fn state_guard(
        &self,
        settings: &Map<String, Value>,
        hook: Hook,
        after: Hook,
        env: Vec<(String, String)>,
        what: &str,
    ) -> Option<EventGuard> {
        let command = str_of(settings, hook.key());
        let after_command = str_of(settings, after.key());
        if command.is_empty() && after_command.is_empty() {
            return None;
        }
        let restart = hook.restart_key().is_some_and(|k| settings.get(k).and_then(Value::as_bool).unwrap_or(false));
        let run = self.start(hook, &command, restart, env.clone(), what);
        let after = (!after_command.is_empty()).then(|| Afterwards {
            hooks: self.me.clone(),
            hook: after,
            command: after_command,
            env,
            what: what.to_string(),
        });
        Some(Box::new(StateGuard { run, after }))
    }

    /// A client connected to a listener (`conn_type`: MediaMTX's `rtspConn`, `rtmpConn`,
    /// `rtmpsConn`...): runs `runOnConnect` while the returned guard lives and `runOnDisconnect`
    /// when it is dropped.
    pub fn connect(&self, conn_type: &str, peer: SocketAddr) -> Option<EventGuard> {
        let config = self.live.load_full();
        let mtx = config.mediamtx.as_ref()?;
        let id = crate::servers::v3::connection_id(self.next_conn.fetch_add(1, Ordering::Relaxed));
        let env = vec![
            ("MTX_CONN_TYPE".to_string(), conn_type.to_string()),
            ("MTX_CONN_ID".to_string(), id),
            ("RTSP_PORT".to_string(), self.rtsp_port(&config)),
        ];
        self.state_guard(&mtx.globals, Hook::Connect, Hook::Disconnect, env, &format!("{conn_type} from {peer}"))
    }

    /// Starts `runOnInit` of each literal path that has one and stops those of paths that went or
    /// changed (at start and after every reload).
    pub fn sync_init(&self) {
        let config = self.live.load_full();
        let mut wanted: Vec<(String, String, bool, Env)> = Vec::new();
        if let Some(mtx) = config.mediamtx.as_ref() {
            for (name, _) in &mtx.paths {
                if name.starts_with('~') || name == "all_others" || name == "all" {
                    continue;
                }
                let Some(settings) = mtx.path_settings(name) else { continue };
                let command = str_of(&settings, "runOnInit");
                if command.is_empty() {
                    continue;
                }
                let restart = settings.get("runOnInitRestart").and_then(Value::as_bool).unwrap_or(false);
                wanted.push((name.clone(), command, restart, self.path_env(name, &[], &config)));
            }
        }
        let mut init = self.init.lock().unwrap_or_else(|e| e.into_inner());
        init.retain(|name, (command, restart, _)| {
            wanted.iter().any(|(n, c, r, _)| n == name && c == command && r == restart)
        });
        for (name, command, restart, env) in wanted {
            if init.contains_key(&name) {
                continue;
            }
            if let Some(run) = self.start(Hook::Init, &command, restart, env, &format!("path {name}")) {
                init.insert(name, (command, restart, run));
            }
        }
    }

    /// Stops every command and waits (bounded) until each child is reaped: at server exit.
    pub async fn stop_all(&self) {
        self.stop.cancel();
        self.init.lock().unwrap_or_else(|e| e.into_inner()).clear();
        self.demands.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let wait = async {
            while self.total.load(Ordering::Acquire) > 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        if tokio::time::timeout(STOP_TIMEOUT + Duration::from_secs(2), wait).await.is_err() {
            tracing::warn!(module = "hooks", running = self.running(), "hook commands still stopping at exit");
        }
    }

    fn release_demand(&self, path: &str) {
        let mut demands = self.demands.lock().unwrap_or_else(|e| e.into_inner());
        let Some(d) = demands.get_mut(path) else { return };
        d.tickets = d.tickets.saturating_sub(1);
        d.generation += 1;
        if d.tickets > 0 {
            return;
        }
        let (generation, close_after) = (d.generation, d.close_after);
        drop(demands);
        let me = self.me.clone();
        let path = path.to_string();
        let close = move || {
            let Some(me) = me.upgrade() else { return };
            let ended = {
                let mut demands = me.demands.lock().unwrap_or_else(|e| e.into_inner());
                match demands.get(&path) {
                    Some(d) if d.tickets == 0 && d.generation == generation => demands.remove(&path),
                    _ => None,
                }
            };
            if let Some(d) = ended {
                if d.run.is_some() {
                    tracing::info!(module = "hooks", path = %path, "runOnDemand: no readers left, stopping the command");
                }
                drop(d.run);
                me.run_once(Hook::UnDemand, &d.undemand, d.env, &format!("path {path}"));
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    tokio::time::sleep(close_after).await;
                    close();
                });
            }
            Err(_) => close(),
        }
    }
}

/// Runs `argv` until `token` is cancelled; again after [`RESTART_PAUSE`] when it exits and `restart`.
async fn supervise(argv: &[String], env: &[(String, String)], restart: bool, token: &CancellationToken, label: &str) {
    loop {
        match OwnedChild::spawn_with_env(argv, env, false, false, label) {
            Ok(mut child) => {
                tracing::info!(module = "hooks", pid = ?child.pid(), "{label}: command started");
                let exited = tokio::select! {
                    _ = token.cancelled() => None,
                    how = child.wait_exit() => Some(how),
                };
                match exited {
                    None => {
                        child.stop(libc::SIGINT, STOP_TIMEOUT).await;
                        tracing::info!(module = "hooks", "{label}: command stopped");
                        return;
                    }
                    Some(how) => tracing::info!(module = "hooks", "{label}: command {how}"),
                }
            }
            Err(e) => tracing::warn!(module = "hooks", "{label}: {e}"),
        }
        if !restart {
            return;
        }
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(RESTART_PAUSE) => {}
        }
    }
}

fn str_of(settings: &Map<String, Value>, key: &str) -> String {
    match settings.get(key) {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    }
}

impl HubEvents for Hooks {
    fn ready(&self, path: &str, producer: &Producer) -> Option<EventGuard> {
        let PathContext { settings, groups, config } = self.path_settings(path)?;
        let mut env = self.path_env(path, &groups, &config);
        let query = producer.masked_url().split_once('?').map(|(_, q)| q.to_string()).unwrap_or_default();
        env.push(("MTX_QUERY".into(), query));
        env.push(("MTX_SOURCE_TYPE".into(), crate::servers::v3::source_type(producer).into()));
        env.push(("MTX_SOURCE_ID".into(), crate::servers::v3::source_id(producer)));
        self.state_guard(&settings, Hook::Ready, Hook::NotReady, env, &format!("path {path}"))
    }

    fn reading(&self, path: &str, reader: &ReaderShared) -> Option<EventGuard> {
        let PathContext { settings, groups, config } = self.path_settings(path)?;
        let mut env = self.path_env(path, &groups, &config);
        let (reader_type, reader_id) = crate::servers::v3::reader_type_and_id(reader);
        env.push(("MTX_QUERY".into(), reader.query.lock().unwrap_or_else(|e| e.into_inner()).clone()));
        env.push(("MTX_READER_TYPE".into(), reader_type));
        env.push(("MTX_READER_ID".into(), reader_id));
        self.state_guard(&settings, Hook::Read, Hook::Unread, env, &format!("path {path}"))
    }

    fn demand(&self, path: &str, query: &str, has_publisher: bool) -> Option<(EventGuard, Duration)> {
        let PathContext { settings, groups, config } = self.path_settings(path)?;
        let command = str_of(&settings, "runOnDemand");
        if command.is_empty() {
            return None;
        }
        let duration = |key: &str| {
            settings
                .get(key)
                .and_then(Value::as_str)
                .and_then(parse_mediamtx_duration)
                .unwrap_or(Duration::from_secs(10))
        };
        let mut env = self.path_env(path, &groups, &config);
        env.push(("MTX_QUERY".into(), query.to_string()));
        let mut demands = self.demands.lock().unwrap_or_else(|e| e.into_inner());
        let d = demands.entry(path.to_string()).or_insert_with(|| Demand {
            tickets: 0,
            generation: 0,
            run: None,
            close_after: duration("runOnDemandCloseAfter"),
            undemand: str_of(&settings, "runOnUnDemand"),
            env: env.clone(),
        });
        d.tickets += 1;
        d.generation += 1;
        // Started when none runs (or the last one ended without publishing: started again).
        if d.run.as_ref().is_none_or(HookRun::has_ended) && !has_publisher {
            let restart = settings.get("runOnDemandRestart").and_then(Value::as_bool).unwrap_or(false);
            tracing::info!(module = "hooks", path = %path, "runOnDemand: a reader wants the path, starting the command");
            d.run = self.start(Hook::Demand, &command, restart, env, &format!("path {path}"));
        }
        let ticket = DemandTicket { hooks: self.me.clone(), path: path.to_string() };
        Some((Box::new(ticket), duration("runOnDemandStartTimeout")))
    }

    fn publishes_on_demand(&self, path: &str) -> bool {
        self.path_settings(path).is_some_and(|c| !str_of(&c.settings, "runOnDemand").is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn running_commands_are_bounded_per_hook_and_stopped_at_exit() {
        let dir = std::env::temp_dir().join(format!("camrelay-hooks-bound-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("bound.yml");
        std::fs::write(&file, "rtspAddress: 127.0.0.1:0\nrunOnConnect: sleep 100\nrunOnConnectRestart: true\n")
            .unwrap();
        let config = crate::config::load(&[file.display().to_string()], &dir, &|_| None).unwrap().config;
        let hooks = Hooks::new(Arc::new(ArcSwap::from_pointee(config)), Arc::default());
        let peer: SocketAddr = "192.0.2.1:5000".parse().unwrap();
        let guards: Vec<_> = (0..MAX_RUNNING_PER_HOOK + 3).filter_map(|_| hooks.connect("rtspConn", peer)).collect();
        // Every connection gets its guard; only the first 64 got a command.
        assert_eq!(guards.len(), MAX_RUNNING_PER_HOOK + 3);
        assert_eq!(hooks.running(), MAX_RUNNING_PER_HOOK);
        // A guard dropped stops its command (SIGINT to its group, reaped): room for one more.
        drop(guards.into_iter().next());
        let freed = async {
            while hooks.running() == MAX_RUNNING_PER_HOOK {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), freed).await.unwrap();
        assert!(hooks.connect("rtspConn", peer).is_some());
        hooks.stop_all().await;
        assert_eq!(hooks.running(), 0);
        assert!(
            hooks.connect("rtspConn", peer).is_some_and(|g| {
                drop(g);
                hooks.running() == 0
            }),
            "nothing starts after stop_all"
        );
    }

    #[test]
    fn the_docs_examples_load() {
        let doc = include_str!("../../../docs/mediamtx.md");
        let dir = std::env::temp_dir().join(format!("camrelay-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for start in ["```yaml\nrunOnConnect:", "```yaml\nlogLevel: info\nlogDestinations"] {
            let example = doc.split(start).nth(1).and_then(|s| s.split("```").next()).unwrap();
            let file = dir.join("example.yml");
            std::fs::write(&file, format!("{}{example}", &start[8..])).unwrap();
            let loaded = crate::config::load(&[file.display().to_string()], &dir, &|_| None).unwrap().config;
            let mtx = loaded.mediamtx.unwrap();
            if start.contains("runOnConnect") {
                let ondemand = mtx.path_settings("testpattern").unwrap();
                let argv = command_argv(ondemand["runOnDemand"].as_str().unwrap(), &[]).unwrap();
                assert_eq!((argv[0].as_str(), argv.last().unwrap().as_str()), ("ffmpeg", "rtsp://127.0.0.1:/"));
            } else {
                assert!(loaded.log.sinks.console && loaded.log.sinks.structured);
                assert_eq!(loaded.log.sinks.file.as_deref(), Some("/var/log/camrelay.log"));
            }
        }
    }

    #[test]
    fn commands_split_like_go_shellquote() {
        assert_eq!(split_command("ffmpeg -i  x\t-f rtsp").unwrap(), ["ffmpeg", "-i", "x", "-f", "rtsp"]);
        assert_eq!(split_command(r#"sh -c 'echo "$A" > f'"#).unwrap(), ["sh", "-c", r#"echo "$A" > f"#]);
        assert_eq!(split_command(r#"a "b \"c\" \d" e\ f"#).unwrap(), ["a", r#"b "c" \d"#, "e f"]);
        assert_eq!(split_command("a\\\nb ''").unwrap(), ["ab", ""]);
        assert!(split_command("a 'b").unwrap_err().contains("unterminated single-quoted"));
        assert!(split_command("a \"b").unwrap_err().contains("unterminated double-quoted"));
        assert!(split_command("a\\").unwrap_err().contains("unfinished escape"));
        assert!(split_command("  ").is_err());
        // Quoted back, the words split the same (the fuzz target `hook_command` checks any input).
        for command in [r#"a "b \"c\" \d" e\ f"#, "x 'it'\\''s' \"$A\"", "'' \"\" a\tb"] {
            let words = split_command(command).unwrap();
            assert_eq!(split_command(&quote_words(&words)).unwrap(), words, "{command:?}");
        }
    }

    #[test]
    fn variables_expand_like_os_expand_and_stay_one_word() {
        let env = vec![("MTX_PATH".to_string(), "cam 1".to_string()), ("G1".to_string(), "7".to_string())];
        let argv = command_argv("ffmpeg -f rtsp rtsp://localhost:$RTSP_PORT/${MTX_PATH}/$G1 $ x$", &env).unwrap();
        assert_eq!(argv, ["ffmpeg", "-f", "rtsp", "rtsp://localhost:/cam 1/7", "$", "x$"]);
        let lookup = |n: &str| (n == "A").then(|| "a".to_string());
        assert_eq!(expand("${A}b$Ab$A-$1${bad", &lookup), "aba-");
    }
}
