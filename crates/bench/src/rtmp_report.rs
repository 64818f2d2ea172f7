//! `--rtmp`: RTMP players against RTSP readers of the same stream, and publish-to-read latency over
//! both protocols, in alternated rounds; with `--peer NAME=PATH` the same load against other servers.
//! Prints a Markdown report and writes JSON (`--json`).

use crate::{fan_out, percentile, publish, rtmp_load, sorted, Args, FanOut, SendTimes, Server, Target};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The medians over rounds of one server's figures.
struct Measured {
    name: String,
    /// Per reader count: the RTSP rounds and the RTMP rounds.
    fan: Vec<(usize, Vec<FanOut>, Vec<FanOut>)>,
    /// Per path (`RTSP → RTMP`...): (p50, p95) of each round.
    latency: Vec<(&'static str, Vec<(f64, f64)>)>,
}

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    percentile(&sorted(v.into_iter().filter(|x| x.is_finite()).collect()), 0.5)
}

async fn measure(args: &Args, name: &str, srv: &Server, clip: &Arc<crate::clip::Clip>, bare: bool) -> Measured {
    // RTMP names: `live/NAME` (our server tries `live/NAME`, then `NAME`) or, for peers, `NAME` alone.
    let rtmp_name = |s: &str| if bare { s.to_string() } else { format!("live/{s}") };
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let url_rtmp_published = format!("rtsp://{}/bench_rtmp", srv.rtsp);
    let rtsp_times = Arc::new(Mutex::new(SendTimes::default()));
    let rtmp_times = Arc::new(Mutex::new(SendTimes::default()));
    let (sent, sent_rtmp) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = tokio::spawn(publish(url.clone(), clip.clone(), rtsp_times.clone(), sent.clone(), stop.clone()));
    let rtmp_publisher = tokio::spawn(rtmp_load::publish(
        srv.rtmp.clone(),
        rtmp_name("bench_rtmp"),
        clip.clone(),
        rtmp_times.clone(),
        sent_rtmp.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let rtsp = Target::Rtsp(url.clone());
    let rtmp = Target::Rtmp { addr: srv.rtmp.clone(), stream: rtmp_name("bench") };
    let mut fan: Vec<(usize, Vec<FanOut>, Vec<FanOut>)> = args.readers.iter().map(|&n| (n, vec![], vec![])).collect();
    for round in 0..args.rounds {
        for (n, rtsp_rows, rtmp_rows) in &mut fan {
            // Alternate which protocol goes first, so drift in the machine's load favours neither.
            let rtmp_first = round % 2 == 1;
            for first in [true, false] {
                if first == rtmp_first {
                    eprintln!("{name} round {}: {n} RTMP players...", round + 1);
                    rtmp_rows.push(fan_out(srv, &rtmp, *n, args.window, None, &sent).await);
                } else {
                    eprintln!("{name} round {}: {n} RTSP readers...", round + 1);
                    rtsp_rows.push(fan_out(srv, &rtsp, *n, args.window, None, &sent).await);
                }
            }
        }
    }
    let paths: [(&'static str, Target, &Arc<Mutex<SendTimes>>, &AtomicU64); 4] = [
        ("RTSP publish → RTSP reader", rtsp.clone(), &rtsp_times, &sent),
        ("RTSP publish → RTMP player", rtmp.clone(), &rtsp_times, &sent),
        ("RTMP publish → RTSP reader", Target::Rtsp(url_rtmp_published), &rtmp_times, &sent_rtmp),
        (
            "RTMP publish → RTMP player",
            Target::Rtmp { addr: srv.rtmp.clone(), stream: rtmp_name("bench_rtmp") },
            &rtmp_times,
            &sent_rtmp,
        ),
    ];
    let mut latency: Vec<(&'static str, Vec<(f64, f64)>)> = paths.iter().map(|p| (p.0, vec![])).collect();
    for round in 0..args.rounds {
        for i in 0..paths.len() {
            let i = (i + round) % paths.len();
            let (what, target, times, sent) = &paths[i];
            eprintln!("{name} round {}: latency {what}...", round + 1);
            let row = fan_out(srv, target, 1, args.window, Some((*times).clone()), sent).await;
            if let Some((p50, _, _)) = row.latency_ms {
                latency[i].1.push((p50, row.latency_p95_ms));
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let _ = publisher.await;
    if let Ok(Err(e)) = rtmp_publisher.await {
        eprintln!("{name}: RTMP publisher: {e}");
    }
    Measured { name: name.to_string(), fan, latency }
}

pub fn rtmp_report(
    args: &Args,
    bin: &std::path::Path,
    srv: Server,
    clip: &Arc<crate::clip::Clip>,
    rt: &tokio::runtime::Runtime,
) {
    let mut results = vec![rt.block_on(measure(args, "camrelay", &srv, clip, false))];
    drop(srv);
    let mut peers_absent = Vec::new();
    for (name, path) in &args.peers {
        match Server::start_peer(name, path) {
            Ok(peer) => results.push(rt.block_on(measure(args, name, &peer, clip, true))),
            Err(e) => {
                eprintln!("peer {name}: {e}");
                peers_absent.push(format!("{name} ({e})"));
            }
        }
    }

    println!(
        "## camrelay-bench --rtmp: 1280x720 30 fps H.264 (~2.5 Mbit/s, 1 s GOP) + AAC published over RTSP/TCP, read over RTSP/TCP and RTMP; window {:?}, {} alternated rounds (medians)\n",
        args.window, args.rounds
    );
    println!("Network: {}\n", args.net.describe());
    if args.peers.is_empty() {
        println!("Peers: none given.\n");
    } else if !peers_absent.is_empty() {
        println!("Peers not measured: {}.\n", peers_absent.join(", "));
    }
    let mut json_servers = Vec::new();
    for m in &results {
        println!("### {}: fan-out\n", m.name);
        println!("| readers | connected RTSP / RTMP | server % core RTSP | server % core RTMP | RTMP / RTSP CPU (per-round ratios) | % core per player RTMP | players per core RTMP (RTSP) | peak RSS MiB RTSP / RTMP | min reader / stream RTSP / RTMP | dropped RTSP / RTMP |");
        println!("|---|---|---|---|---|---|---|---|---|---|");
        let mut json_fan = Vec::new();
        for (n, rtsp, rtmp) in &m.fan {
            let cpu = |rows: &[FanOut]| median(rows.iter().map(|r| r.server_cpu_pct));
            let (c_rtsp, c_rtmp) = (cpu(rtsp), cpu(rtmp));
            let ratios: Vec<String> =
                rtsp.iter().zip(rtmp).map(|(a, b)| format!("{:.2}", b.server_cpu_pct / a.server_cpu_pct)).collect();
            let conn = |rows: &[FanOut]| rows.iter().map(|r| r.connected).min().unwrap_or(0);
            let rss = |rows: &[FanOut]| median(rows.iter().map(|r| r.peak_rss_mib));
            let min_ratio = |rows: &[FanOut]| rows.iter().map(|r| r.min_ratio).fold(f64::INFINITY, f64::min);
            let dropped = |rows: &[FanOut]| rows.iter().map(|r| r.dropped).sum::<u64>();
            let per_core = |c: f64| *n as f64 * 100.0 / c;
            println!(
                "| {n} | {} / {} | {c_rtsp:.1} | {c_rtmp:.1} | **×{:.2}** ({}) | {:.3} | {:.0} ({:.0}) | {:.1} / {:.1} | {:.3} / {:.3} | {} / {} |",
                conn(rtsp),
                conn(rtmp),
                c_rtmp / c_rtsp,
                ratios.join(", "),
                c_rtmp / *n as f64,
                per_core(c_rtmp),
                per_core(c_rtsp),
                rss(rtsp),
                rss(rtmp),
                min_ratio(rtsp),
                min_ratio(rtmp),
                dropped(rtsp),
                dropped(rtmp),
            );
            json_fan.push(serde_json::json!({
                "readers": n,
                "rtsp": {"server_cpu_pct_rounds": rtsp.iter().map(|r| r.server_cpu_pct).collect::<Vec<_>>(),
                         "peak_rss_mib_rounds": rtsp.iter().map(|r| r.peak_rss_mib).collect::<Vec<_>>(),
                         "connected_min": conn(rtsp), "min_ratio": min_ratio(rtsp), "dropped": dropped(rtsp)},
                "rtmp": {"server_cpu_pct_rounds": rtmp.iter().map(|r| r.server_cpu_pct).collect::<Vec<_>>(),
                         "peak_rss_mib_rounds": rtmp.iter().map(|r| r.peak_rss_mib).collect::<Vec<_>>(),
                         "connected_min": conn(rtmp), "min_ratio": min_ratio(rtmp), "dropped": dropped(rtmp)},
                "rtmp_over_rtsp_cpu": c_rtmp / c_rtsp,
                "rtmp_players_per_core": per_core(c_rtmp),
            }));
        }
        println!("\n### {}: publish → first slice received (1 reader)\n", m.name);
        println!("| path | p50 ms (per round) | p95 ms (per round) | p50 / RTSP → RTSP |");
        println!("|---|---|---|---|");
        let base = median(m.latency[0].1.iter().map(|r| r.0));
        let mut json_lat = Vec::new();
        for (what, rounds) in &m.latency {
            let p50 = median(rounds.iter().map(|r| r.0));
            let p95 = median(rounds.iter().map(|r| r.1));
            let each = |f: fn(&(f64, f64)) -> f64| {
                rounds.iter().map(|r| format!("{:.2}", f(r))).collect::<Vec<_>>().join(", ")
            };
            println!("| {what} | {p50:.2} ({}) | {p95:.2} ({}) | ×{:.2} |", each(|r| r.0), each(|r| r.1), p50 / base);
            json_lat.push(serde_json::json!({"path": what, "p50_ms": p50, "p95_ms": p95, "rounds": rounds}));
        }
        println!();
        json_servers.push(serde_json::json!({"name": m.name, "fan_out": json_fan, "latency": json_lat}));
    }
    let json = serde_json::json!({
        "server": bin.display().to_string(),
        "mode": "rtmp",
        "window_s": args.window.as_secs_f64(),
        "rounds": args.rounds,
        "net": args.net.name(),
        "peers_absent": peers_absent,
        "servers": json_servers,
    });
    crate::write_json_report(&args.json, &json);
}
