//! Hot reload: a changed config file (either dialect) applies without a restart.
//!
//! The files named with `-c` are watched (their size and modification time, polled every second: it
//! works on every filesystem, bind mounts and editors that replace files included, where inotify
//! misses some). A change loads the whole config again; one with an error is refused, logged, and the
//! running config stays. Otherwise [`App::apply_config`] computes the difference and touches only what
//! changed: streams whose sources changed are replaced (their readers reconnect), new streams are
//! added, removed ones removed, preloads started and stopped, the auth rules swapped; unchanged
//! streams keep their sources, readers and frames. Settings a running listener cannot change (listen
//! addresses, modules, TLS) are named in the log as needing a restart.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::app::App;
use crate::config::Config;

/// How often the config files are checked.
const POLL: Duration = Duration::from_secs(1);

/// What a reload changed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    pub added: Vec<String>,
    pub replaced: Vec<String>,
    pub removed: Vec<String>,
    /// Settings that changed but apply only at the next start.
    pub needs_restart: Vec<String>,
}

impl ReloadReport {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.replaced.is_empty() && self.removed.is_empty() && self.needs_restart.is_empty()
    }
}

/// How the running config was loaded: the `-c` arguments and the working directory.
#[derive(Debug, Clone)]
pub struct ConfigArgs {
    pub args: Vec<String>,
    pub cwd: PathBuf,
}

impl ConfigArgs {
    /// The files among the arguments (the default `camrelay.yaml`/`go2rtc.yaml` when none is named).
    fn files(&self, edit_path: &std::path::Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = self
            .args
            .iter()
            .filter(|a| !a.trim_start().starts_with('{'))
            .map(|a| self.cwd.join(a))
            .filter(|p| p.is_file())
            .collect();
        if files.is_empty() {
            files.push(edit_path.to_path_buf());
        }
        files
    }

    pub fn load(&self) -> Result<crate::config::LoadedConfig, crate::config::ConfigError> {
        crate::config::load(&self.args, &self.cwd, &|k| std::env::var(k).ok())
    }
}

impl App {
    /// Loads the config files again and applies the difference (see the module docs).
    pub fn reload(self: &Arc<Self>) -> Result<ReloadReport, String> {
        let args = self.config_args.get().ok_or("the config was not loaded from arguments")?;
        let loaded = args.load().map_err(|e| e.to_string())?;
        for w in &loaded.warnings {
            tracing::warn!(module = "app", "{w}");
        }
        Ok(self.apply_config(loaded.config))
    }

    /// Makes `new` the running config, changing only what differs from the current one.
    pub fn apply_config(self: &Arc<Self>, new: Config) -> ReloadReport {
        let old = self.config();
        let mut report = ReloadReport::default();
        let (old_list, new_list) = (configured_streams(&old), configured_streams(&new));
        let old_streams: BTreeMap<&str, &Vec<String>> = old_list.iter().map(|(n, s)| (n.as_str(), s)).collect();
        let new_streams: BTreeMap<&str, &Vec<String>> = new_list.iter().map(|(n, s)| (n.as_str(), s)).collect();

        // Swap first: sources built from here on see the new templates and rules.
        self.store_config(new.clone());
        self.hub.set_path_rules(crate::app::path_rules(&new));
        // A path whose linger changed restarts its source (the linger is the source's).
        let linger = |c: &Config, name: &str| c.path_rules.iter().find(|r| r.name == name).map(|r| r.close_after);

        for (name, sources) in &new_streams {
            // Compared with what runs (an API edit may have changed it since the last load).
            match self.hub.get(name) {
                Some(stream) if stream.pulls_exactly(sources) && linger(&old, name) == linger(&new, name) => continue,
                Some(_) => report.replaced.push(name.to_string()),
                None => report.added.push(name.to_string()),
            }
            // A bad source is reported and skipped, as at start; the stream's other sources serve.
            let good: Vec<String> = sources
                .iter()
                .filter(|url| match self.hub.validate_sources(std::slice::from_ref(*url)) {
                    Ok(()) => true,
                    Err(e) => {
                        tracing::error!(module = "app", stream = %name, source = %crate::secrets::mask_url(url), "{e}");
                        false
                    }
                })
                .cloned()
                .collect();
            if let Err(e) = self.hub.set_stream(name, &good) {
                tracing::error!(module = "app", stream = %name, "{e}");
            }
        }
        for name in old_streams.keys().filter(|n| !new_streams.contains_key(*n)) {
            // Streams publishers created are theirs, not the config's.
            if self.hub.get(name).is_some_and(|s| !s.created_by_publisher()) {
                self.hub.remove_stream(name);
                report.removed.push(name.to_string());
            }
        }

        // Preloads: stop those gone or changed, start the new and changed ones.
        let old_preloads: BTreeMap<&str, &str> = old.preload.iter().map(|(n, q)| (n.as_str(), q.as_str())).collect();
        let new_preloads: BTreeMap<&str, &str> = new.preload.iter().map(|(n, q)| (n.as_str(), q.as_str())).collect();
        for (name, query) in &old_preloads {
            if new_preloads.get(name) != Some(query) {
                self.preloads.stop(name);
            }
        }
        for (name, query) in &new_preloads {
            if old_preloads.get(name) != Some(query) || !self.preloads.contains(name) {
                self.preloads.start(&self.hub, name, query);
            }
        }

        // Recorders: started, stopped or restarted to match the paths' record settings.
        self.recorders.sync(&self.hub, crate::record::targets(&new, &self.hub));

        // runOnInit: commands of paths gone or changed stop, new ones start.
        self.hooks.sync_init();

        // Push targets (`publish:`): those gone stop, new ones start, unchanged ones keep running.
        if old.publish != new.publish {
            self.pushes.sync_config(&self.hub, &new.publish);
        }

        self.store_auth(crate::auth::Auth::from_config(&new));

        let fixed: [(&str, bool); 11] = [
            ("api.listen", old.api.listen != new.api.listen),
            ("api.unix_listen", old.api.unix_listen != new.api.unix_listen),
            ("api.base_path", old.api.base_path != new.api.base_path),
            // A certificate renewed on disk needs none: the TLS listeners reload their files themselves.
            ("api.tls_listen/tls_cert/tls_key", old.api.tls != new.api.tls),
            ("rtsp.listen", old.rtsp.listen != new.rtsp.listen),
            (
                "rtsp.rtp_listen/rtcp_listen",
                old.rtsp.rtp_listen != new.rtsp.rtp_listen || old.rtsp.rtcp_listen != new.rtsp.rtcp_listen,
            ),
            ("webrtc.listen", old.webrtc.listen != new.webrtc.listen),
            ("rtmp.listen", old.servers.rtmp_listen != new.servers.rtmp_listen),
            ("rtmp.tls_listen/tls_cert/tls_key (RTMPS)", old.servers.rtmps != new.servers.rtmps),
            ("app.modules", old.app != new.app),
            ("log", old.log != new.log),
        ];
        report.needs_restart = fixed.iter().filter(|(_, changed)| *changed).map(|(k, _)| k.to_string()).collect();
        // go2rtc's `rtmp.listen` and RTMPS are reported by their own names above; the other listeners are
        // MediaMTX's.
        let others = |c: &crate::config::Config| crate::config::ServerListens {
            rtmp_listen: String::new(),
            rtmps: Default::default(),
            ..c.servers.clone()
        };
        if others(&old) != others(&new) {
            report.needs_restart.push("MediaMTX listeners".to_string());
        }
        if !report.is_empty() {
            tracing::info!(
                module = "app",
                added = ?report.added,
                replaced = ?report.replaced,
                removed = ?report.removed,
                "config reloaded"
            );
        }
        if !report.needs_restart.is_empty() {
            tracing::warn!(
                module = "app",
                "config reloaded; these settings apply at the next start: {}",
                report.needs_restart.join(", ")
            );
        }
        report
    }
}

/// The streams a config defines, with the built-in `demo` when it serves it (as `App::new` does).
fn configured_streams(config: &Config) -> Vec<(String, Vec<String>)> {
    let mut streams = config.streams.clone();
    let demo = config.demo.unwrap_or(config.streams.is_empty());
    if demo && !streams.iter().any(|(n, _)| n == "demo") {
        streams.push(("demo".to_string(), vec!["demo:clip".to_string()]));
    }
    streams
}

/// A file's identity for change detection.
fn stamp(path: &std::path::Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Watches the config files and reloads on a change, until shutdown.
pub fn watch(app: Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
    let args = app.config_args.get()?.clone();
    let files = args.files(&app.config_path);
    let shutdown = app.shutdown.clone();
    // Taken now, not when the task first runs: an edit right after the start is not missed.
    let mut stamps: Vec<_> = files.iter().map(|f| stamp(f)).collect();
    Some(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(POLL) => {}
            }
            let now: Vec<_> = files.iter().map(|f| stamp(f)).collect();
            if now == stamps {
                continue;
            }
            stamps = now;
            match app.reload() {
                Ok(_) => {}
                Err(e) => tracing::error!(module = "app", "config not reloaded (the running config stays): {e}"),
            }
        }
    }))
}
