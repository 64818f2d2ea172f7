//! Wiring: builds the hub from the config, registers sources and servers, runs until a signal.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock, Weak};
use std::time::SystemTime;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::hub::{Hub, HubSettings, PrivatePublishers, SourceFactory};
use crate::{servers, sources};
use arc_swap::ArcSwap;

/// State every server shares.
pub struct App {
    pub hub: Arc<Hub>,
    /// The running config; a reload swaps it whole (see [`App::config`]).
    config: Arc<ArcSwap<Config>>,
    /// The file that API edits (PUT/DELETE /api/streams) persist into.
    pub config_path: PathBuf,
    /// Serialises edits of the config file.
    pub config_write: tokio::sync::Mutex<()>,
    pub started: SystemTime,
    /// Cancelled on shutdown: every server and session watches it.
    pub shutdown: CancellationToken,
    /// One-time RTSP paths that `exec:`/`ffmpeg:` children publish into.
    pub publishers: Arc<PrivatePublishers>,
    /// Recent log lines for `GET /api/log` (set by `main` when it installs the logger).
    pub logs: OnceLock<Arc<crate::logging::LogBuffer>>,
    /// WebRTC sessions and the socket's routing table (servers/webrtc.rs).
    pub webrtc: Arc<servers::webrtc::Server>,
    /// HLS sessions and muxers, one table for every listener that serves HLS (servers/hls.rs).
    pub hls: Arc<servers::hls::Sessions>,
    /// Streams kept running without viewers (`preload:`, `/api/preload`).
    pub preloads: crate::hub::preload::Preloads,
    /// MediaMTX's recorders (`record: yes` paths; record/).
    pub recorders: crate::record::Recorders,
    /// Streams pushed to other servers (`publish:`, `POST /api/streams?src=&dst=`).
    pub pushes: crate::push::Pushes,
    /// Who may do what: every server asks it (auth.rs); rebuilt on a reload.
    auth: ArcSwap<crate::auth::Auth>,
    /// How the config was loaded (set by `main`), for reloads (reload.rs).
    pub config_args: OnceLock<crate::reload::ConfigArgs>,
    /// Set once every listener is up and the preloads have started (`GET /api/ready`).
    pub ready: OnceLock<SystemTime>,
    /// MediaMTX's `runOn*` commands (hooks.rs); the hub and the listeners report to it.
    pub hooks: Arc<crate::hooks::Hooks>,
    /// The playback server once started, for the API's `/api/playback/*` (the web UI's timeline).
    pub playback: crate::playback::Link,
}

/// What source modules may use besides their URL.
#[derive(Clone)]
pub struct SourceContext {
    /// The running config, shared with the app (a source built after a reload sees the new one).
    pub live: Arc<ArcSwap<Config>>,
    pub publishers: Arc<PrivatePublishers>,
    /// The hub, set once it exists (factories are registered before), for sources that wrap another.
    pub hub: Arc<OnceLock<Weak<Hub>>>,
}

impl SourceContext {
    pub fn config(&self) -> Arc<Config> {
        self.live.load_full()
    }

    /// Builds the source of another URL (`echo:` resolves to one).
    pub fn make_source(&self, url: &str) -> Result<Arc<dyn crate::hub::Source>, String> {
        let hub = self.hub.get().and_then(Weak::upgrade).ok_or("server is shutting down")?;
        hub.make_source(url).map_err(|e| e.to_string())
    }
}

/// A running server's task (`None` when its config disables it, e.g. `listen: ""`).
pub type ServerTask = Option<tokio::task::JoinHandle<()>>;

/// One listener of a server module: the go2rtc module it belongs to (`app.modules`) and how it starts.
/// Each reads its own config section; its HTTP routes, if any, are mounted by the API server.
pub struct ServerModule {
    pub module: &'static str,
    pub start: fn(Arc<App>) -> crate::hub::BoxFuture<'static, std::io::Result<ServerTask>>,
}

/// Every server this build runs, in start order (the list `main` registers listeners from, as
/// [`source_schemes`] is for sources).
pub fn server_modules() -> Vec<ServerModule> {
    vec![
        ServerModule { module: "rtsp", start: |app| Box::pin(servers::rtsp::start(app)) },
        ServerModule { module: "rtsp", start: |app| Box::pin(servers::rtsp::start_tls(app)) },
        ServerModule { module: "api", start: |app| Box::pin(servers::api::start(app)) },
        ServerModule { module: "api", start: |app| Box::pin(servers::api::start_unix(app)) },
        ServerModule { module: "api", start: |app| Box::pin(servers::api::start_tls(app)) },
        ServerModule { module: "webrtc", start: |app| Box::pin(servers::webrtc::start(app)) },
        ServerModule { module: "rtmp", start: |app| Box::pin(servers::rtmp::start(app)) },
        ServerModule { module: "rtmp", start: |app| Box::pin(servers::rtmp::start_tls(app)) },
        // SRT (`srt: listen`, MediaMTX's `srt`/`srtAddress`; off by default).
        ServerModule { module: "srt", start: |app| Box::pin(servers::srt::start(app)) },
        // MediaMTX's HLS and WebRTC HTTP listeners (off unless a MediaMTX config sets them).
        ServerModule { module: "hls", start: |app| Box::pin(servers::mediamtx_urls::start_hls(app)) },
        ServerModule { module: "webrtc", start: |app| Box::pin(servers::mediamtx_urls::start_webrtc(app)) },
        // The same over HTTPS (MediaMTX's `hlsEncryption`, `webrtcEncryption`).
        ServerModule { module: "hls", start: |app| Box::pin(servers::mediamtx_urls::start_hls_tls(app)) },
        ServerModule { module: "webrtc", start: |app| Box::pin(servers::mediamtx_urls::start_webrtc_tls(app)) },
        // Prometheus (`metrics: listen`, MediaMTX's `metrics`/`metricsAddress`; off by default).
        ServerModule { module: "metrics", start: |app| Box::pin(servers::metrics::start(app)) },
        // Recordings (`playback: listen`, MediaMTX's `playback`/`playbackAddress`; off by default).
        ServerModule { module: "playback", start: |app| Box::pin(crate::playback::start(app)) },
    ]
}

/// The go2rtc module (`app.modules`) a source scheme belongs to.
fn module_of_scheme(scheme: &str) -> &str {
    match scheme {
        "rtsp" | "rtsps" | "rtspx" => "rtsp",
        "http" | "https" | "httpx" | "tcp" => "http",
        "rtmp" | "rtmps" | "rtmpx" => "rtmp",
        // MediaMTX's MPEG-TS/RTP listeners: no go2rtc module, always there.
        "udp" | "udp+mpegts" | "udp+rtp" | "unix+mpegts" => "",
        // The built-in clip is camrelay's own and always there.
        "demo" => "",
        other => other,
    }
}

/// The URL schemes this build can pull from, one entry per source module; schemes of modules that
/// `app.modules` leaves out are not registered (their URLs are "unsupported scheme").
pub fn source_schemes(ctx: &SourceContext) -> Vec<(&'static str, SourceFactory)> {
    let app = ctx.config().app.clone();
    vec![
        ("demo", sources::demo::factory()),
        ("exec", sources::exec::factory(ctx)),
        ("ffmpeg", sources::ffmpeg::factory(ctx)),
        ("echo", sources::echo::factory(ctx)),
        ("webrtc", sources::webrtc::factory()),
    ]
    .into_iter()
    .chain(sources::rtsp::schemes())
    .chain(sources::rtmp::schemes())
    .chain(sources::srt::schemes())
    .chain(sources::http::schemes(ctx))
    .chain(sources::udp::schemes())
    .filter(|(scheme, _)| {
        let module = module_of_scheme(scheme);
        module.is_empty() || app.enabled(module)
    })
    .collect()
}

/// The config's MediaMTX `paths:` as the hub's rules (none for a go2rtc config).
pub(crate) fn path_rules(config: &Config) -> crate::hub::paths::PathRules {
    use crate::hub::paths::{PathOptions, PathRule, PathRules};
    let mediamtx = config.dialect == crate::config::Dialect::Mediamtx;
    let rules = config
        .path_rules
        .iter()
        .filter_map(|r| {
            let options = PathOptions {
                max_readers: r.max_readers,
                override_publisher: Some(r.override_publisher),
                start_timeout: Some(r.start_timeout),
                linger: Some(r.close_after),
                always_available: r.always_available.clone(),
                fallback: r.fallback.clone(),
            };
            PathRule::new(&r.name, &r.source, options)
        })
        .collect();
    PathRules { rules, publish_needs_rule: mediamtx }
}

impl App {
    pub fn new(config: Config, config_path: PathBuf) -> Arc<App> {
        let settings = HubSettings {
            linger: config.hub.linger,
            start_timeout: std::time::Duration::from_secs(10),
            gop_cache_bytes: config.hub.gop_cache_bytes,
            reader_queue: config.hub.reader_queue,
            publisher_grace: config.hub.publisher_grace,
        };
        let publishers = Arc::new(PrivatePublishers::default());
        let live = Arc::new(ArcSwap::from_pointee(config.clone()));
        let ctx = SourceContext { live: live.clone(), publishers: publishers.clone(), hub: Arc::default() };
        let hub = Arc::new(Hub::new(source_schemes(&ctx), settings));
        let _ = ctx.hub.set(Arc::downgrade(&hub));
        let hooks = crate::hooks::Hooks::new(live.clone(), publishers.clone());
        hooks.attach(&hub);
        hub.set_path_rules(path_rules(&config));
        for (name, urls) in &config.streams {
            // A bad source is reported and skipped; the stream and its other sources still serve.
            let mut good = Vec::new();
            for url in urls {
                match hub.validate_sources(std::slice::from_ref(url)) {
                    Ok(()) => good.push(url.clone()),
                    Err(e) => tracing::error!(stream = %name, source = %crate::secrets::mask_url(url), "{e}"),
                }
            }
            if let Err(e) = hub.set_stream(name, &good) {
                tracing::error!(stream = %name, "{e}");
            }
        }
        let demo = config.demo.unwrap_or(config.streams.is_empty());
        if demo && hub.get("demo").is_none() {
            if let Err(e) = hub.set_stream("demo", &["demo:clip".to_string()]) {
                tracing::error!("demo stream: {e}");
            }
        }
        let auth = ArcSwap::from_pointee(crate::auth::Auth::from_config(&config));
        Arc::new(App {
            hub,
            auth,
            config: live,
            config_path,
            config_write: tokio::sync::Mutex::new(()),
            started: SystemTime::now(),
            shutdown: CancellationToken::new(),
            publishers,
            logs: OnceLock::new(),
            webrtc: Arc::default(),
            hls: servers::hls::new_sessions(),
            preloads: Default::default(),
            recorders: Default::default(),
            pushes: Default::default(),
            config_args: OnceLock::new(),
            ready: OnceLock::new(),
            hooks,
            playback: Default::default(),
        })
    }

    /// The running config (a snapshot: a reload swaps in a new one, this one stays valid).
    pub fn config(&self) -> Arc<Config> {
        self.config.load_full()
    }

    /// The running auth rules.
    pub fn auth(&self) -> Arc<crate::auth::Auth> {
        self.auth.load_full()
    }

    pub(crate) fn store_config(&self, config: Config) {
        self.config.store(Arc::new(config));
    }

    pub(crate) fn store_auth(&self, mut auth: crate::auth::Auth) {
        auth.adopt(&self.auth.load());
        self.auth.store(Arc::new(auth));
    }

    /// Starts the servers; returns when shutdown is requested and everything has stopped.
    pub async fn run(self: Arc<Self>) -> std::io::Result<()> {
        // The JWT method's key set (fetched in the background).
        self.auth().start();
        let mut tasks = Vec::new();
        for server in server_modules() {
            // `app.modules` (go2rtc's) switches whole servers off.
            if self.config().app.enabled(server.module) {
                tasks.push((server.start)(self.clone()).await?);
            }
        }
        for (name, query) in &self.config().preload {
            self.preloads.start(&self.hub, name, query);
        }
        // Before the first sync: recorders of literal `record: yes` paths start there and take the hooks
        // (runOnRecordSegment*, the playback index) when they start.
        self.recorders.set_hooks(&self.hooks);
        self.recorders.sync(&self.hub, crate::record::targets(&self.config(), &self.hub));
        tokio::spawn(crate::record::watch(Arc::downgrade(&self)));
        self.pushes.sync_config(&self.hub, &self.config().publish);
        tasks.push(crate::reload::watch(self.clone()));
        self.hooks.sync_init();
        let _ = self.ready.set(SystemTime::now());
        self.shutdown.cancelled().await;
        self.preloads.stop_all();
        self.recorders.stop_all().await;
        self.pushes.stop_all();
        self.hub.shutdown();
        for t in tasks.into_iter().flatten() {
            let _ = t.await;
        }
        self.hooks.stop_all().await;
        Ok(())
    }
}
