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
    camrelay::logging::init_with_buffer(&loaded.config.log.level, &loaded.config.log.modules, logs.clone());
    for w in &loaded.warnings {
        tracing::warn!("{w}");
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
