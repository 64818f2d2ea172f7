//! `--hls-sessions N`: the server's memory with N HLS viewers of one stream (issue 20, "bounded HLS").
//!
//! The published 720p clip runs alone for a few seconds (the idle figure: peak RSS over 2 s), then N
//! viewers each open a session (`/api/stream.m3u8?src=bench`, 50 at a time) and poll their media
//! playlist every second, as players do with 1 s segments; one viewer in ten also downloads each new
//! segment (all N downloading 2.5 Mbit/s each would measure the loopback and this client, not the
//! server's HLS state). A viewer whose session is gone (404: evicted) opens a new one, counted as
//! "reopened". Peak RSS over the window, above idle, divided by N is the per-viewer cost.

use crate::hls_load::{get, parse_playlist};
use crate::{procstat, publish, Args, SendTimes, Server};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Default)]
struct Counts {
    opened: AtomicUsize,
    reopened: AtomicUsize,
    failed: AtomicUsize,
    playlists: AtomicU64,
    segments: AtomicU64,
    segment_bytes: AtomicU64,
}

/// Opens a session: the media playlist's path (below `/api/`).
async fn open(api: &str) -> Result<String, String> {
    let (status, master) = get(api, "/api/stream.m3u8?src=bench").await?;
    let master = String::from_utf8_lossy(&master).into_owned();
    master
        .lines()
        .find(|l| l.starts_with("hls/"))
        .map(|v| format!("/api/{v}"))
        .ok_or_else(|| format!("HLS: master playlist ({status}) without a variant: {master}"))
}

async fn viewer(api: String, downloads: bool, stop: Arc<AtomicBool>, counts: Arc<Counts>, opened: Arc<AtomicUsize>) {
    let mut media = match open(&api).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("hls viewer: {e}");
            counts.failed.fetch_add(1, Ordering::Relaxed);
            opened.fetch_add(1, Ordering::Relaxed);
            return;
        }
    };
    counts.opened.fetch_add(1, Ordering::Relaxed);
    opened.fetch_add(1, Ordering::Relaxed);
    let mut next = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match get(&api, &media).await {
            Ok((200, body)) => {
                counts.playlists.fetch_add(1, Ordering::Relaxed);
                let text = String::from_utf8_lossy(&body).into_owned();
                let (sequence, _, uris) = parse_playlist(&text);
                if downloads {
                    let newest = sequence + uris.len().saturating_sub(1) as u64;
                    if newest >= next {
                        if let Some(uri) = uris.last() {
                            if let Ok((200, seg)) = get(&api, &format!("/api/hls/{uri}")).await {
                                counts.segments.fetch_add(1, Ordering::Relaxed);
                                counts.segment_bytes.fetch_add(seg.len() as u64, Ordering::Relaxed);
                            }
                        }
                        next = newest + 1;
                    }
                }
            }
            Ok((404, _)) => match open(&api).await {
                Ok(m) => {
                    counts.reopened.fetch_add(1, Ordering::Relaxed);
                    media = m;
                }
                Err(_) => {
                    counts.failed.fetch_add(1, Ordering::Relaxed);
                }
            },
            _ => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Peak RSS (KiB) of `pid` over `d`, sampled every 100 ms.
async fn peak_rss(pid: u32, d: Duration) -> u64 {
    let t0 = Instant::now();
    let mut peak = 0;
    while t0.elapsed() < d {
        peak = peak.max(procstat::rss_kib(pid));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

pub fn report(args: &Args, srv: Server, clip: &Arc<crate::clip::Clip>, rt: &tokio::runtime::Runtime, n: usize) {
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let pid = srv.pid();
    let counts = Arc::new(Counts::default());
    let (idle, peak, open_s, cpu_pct) = rt.block_on(async {
        let stop_pub = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let times = Arc::new(Mutex::new(SendTimes::default()));
        let publisher = tokio::spawn(publish(url, clip.clone(), times, sent, stop_pub.clone()));
        tokio::time::sleep(Duration::from_secs(3)).await;
        let idle = peak_rss(pid, Duration::from_secs(2)).await;
        eprintln!("idle (publisher only): RSS {:.1} MiB; opening {n} HLS sessions...", idle as f64 / 1024.0);
        let stop = Arc::new(AtomicBool::new(false));
        let opened = Arc::new(AtomicUsize::new(0));
        let t0 = Instant::now();
        let mut tasks = Vec::with_capacity(n);
        for i in 0..n {
            // 50 sessions opening at a time.
            while i >= opened.load(Ordering::Relaxed) + 50 {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            tasks.push(tokio::spawn(viewer(
                srv.api.clone(),
                i % 10 == 0,
                stop.clone(),
                counts.clone(),
                opened.clone(),
            )));
        }
        while opened.load(Ordering::Relaxed) < n && t0.elapsed() < Duration::from_secs(120) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let open_s = t0.elapsed().as_secs_f64();
        let cpu0 = procstat::cpu_seconds(pid);
        let w0 = Instant::now();
        let peak = peak_rss(pid, args.window).await;
        let cpu_pct = (procstat::cpu_seconds(pid) - cpu0) * 100.0 / w0.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            let _ = t.await;
        }
        stop_pub.store(true, Ordering::Relaxed);
        let _ = publisher.await;
        (idle, peak, open_s, cpu_pct)
    });
    let mib = |k: u64| k as f64 / 1024.0;
    let above = peak.saturating_sub(idle);
    let per_viewer = above as f64 / n.max(1) as f64;
    let c = &counts;
    let (opened, reopened, failed) =
        (c.opened.load(Ordering::Relaxed), c.reopened.load(Ordering::Relaxed), c.failed.load(Ordering::Relaxed));
    let (playlists, segments, seg_bytes) = (
        c.playlists.load(Ordering::Relaxed),
        c.segments.load(Ordering::Relaxed),
        c.segment_bytes.load(Ordering::Relaxed),
    );
    println!("\nHLS sessions (`--hls-sessions {n} --window {}`), {}:", args.window.as_secs_f64(), args.net.name());
    println!(
        "| viewers | opened (s to open all) | reopened (evicted) | failed | RSS idle MiB | peak RSS MiB | above idle MiB | KiB per viewer | server % core | playlists / segments served |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {n} | {opened} ({open_s:.1}) | {reopened} | {failed} | {:.1} | {:.1} | {:.1} | {per_viewer:.1} | {cpu_pct:.1} | {playlists} / {segments} ({:.1} MiB) |",
        mib(idle),
        mib(peak),
        mib(above),
        seg_bytes as f64 / 1048576.0
    );
    let json = serde_json::json!({
        "mode": "hls-sessions",
        "viewers": n,
        "window_s": args.window.as_secs_f64(),
        "opened": opened,
        "reopened": reopened,
        "failed": failed,
        "open_all_s": open_s,
        "rss_idle_kib": idle,
        "rss_peak_kib": peak,
        "above_idle_kib": above,
        "kib_per_viewer": per_viewer,
        "server_cpu_pct": cpu_pct,
        "playlists": playlists,
        "segments": segments,
        "segment_bytes": seg_bytes,
    });
    crate::write_json_report(&args.json, &json);
    drop(srv);
}
