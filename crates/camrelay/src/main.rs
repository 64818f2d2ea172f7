use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "camrelay - camera streaming server (go2rtc compatible)

Usage: camrelay [-c CONFIG]...

  -c, --config VALUE  config file, inline YAML/JSON ('{...}') or key.path=value; repeatable,
                      later ones override earlier ones. Default: ./camrelay.yaml, else ./go2rtc.yaml
  -v, --version       print the version and exit
  -h, --help          print this help and exit";

fn main() -> ExitCode {
    let mut configs = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-v" | "--version" | "-version" => {
                println!("camrelay {}", env!("CARGO_PKG_VERSION"));
                return ExitCode::SUCCESS;
            }
            "-h" | "--help" | "-help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-c" | "--config" | "-config" => match args.next() {
                Some(v) => configs.push(v),
                None => {
                    eprintln!("error: {arg} needs a value\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            },
            other => {
                if let Some(v) = other.strip_prefix("--config=").or_else(|| other.strip_prefix("-c=")) {
                    configs.push(v.to_string());
                } else {
                    eprintln!("error: unknown argument {other:?}\n\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let loaded = match camrelay::config::load(&configs, &cwd, &|k| std::env::var(k).ok()) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // The last 512 KiB of logs are also kept for GET /api/log.
    let logs = std::sync::Arc::new(camrelay::logging::LogBuffer::new(512 * 1024));
    if let Err(e) = camrelay::logging::init_from_config(&loaded.config.log, logs.clone()) {
        eprintln!("error: {e}");
        return ExitCode::from(2);
    }
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    #[cfg(unix)]
    match raise_open_file_limit() {
        Ok(Some((from, to))) => tracing::info!("open files limit raised from {from} to {to}"),
        Ok(None) => {}
        Err(e) => tracing::warn!("cannot raise the open files limit: {e}"),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let app = camrelay::app::App::new(loaded.config, loaded.path);
        let _ = app.config_args.set(camrelay::reload::ConfigArgs { args: configs, cwd });
        let _ = app.logs.set(logs);
        tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %app.config_path.display(), "camrelay starting");
        let shutdown = app.shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
        app.run().await
    });
    // Sessions and child processes are ended by the shutdown above; don't wait on stragglers.
    runtime.shutdown_timeout(std::time::Duration::from_secs(2));
    // The last lines (`shutting down`...) reach the log file.
    camrelay::logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Raises the soft limit on open files to the hard limit, as Go programs (go2rtc, MediaMTX) do at
/// start: every reader and source is a descriptor, and a default soft limit of 1024 would turn the
/// thousandth viewer away. Returns the old and new limits when it changed them.
#[cfg(unix)]
fn raise_open_file_limit() -> std::io::Result<Option<(libc::rlim_t, libc::rlim_t)>> {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct we pass.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut target = limit.rlim_max;
    if target == libc::RLIM_INFINITY {
        // The kernel refuses an infinite descriptor limit; its own ceiling is fs.nr_open.
        target =
            std::fs::read_to_string("/proc/sys/fs/nr_open").ok().and_then(|s| s.trim().parse().ok()).unwrap_or(1 << 20);
    }
    if limit.rlim_cur >= target {
        return Ok(None);
    }
    let from = limit.rlim_cur;
    limit.rlim_cur = target;
    // SAFETY: setrlimit reads the struct we pass.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some((from, target)))
}
