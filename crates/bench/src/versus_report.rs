//! `--webrtc` and `--hls`: WebRTC viewers (WHEP, see `webrtc_load.rs`) or HLS viewers (`hls_load.rs`)
//! against RTSP readers of the same stream, in alternated rounds: server CPU per viewer, memory, time to
//! first media, delivery and drops. Prints a Markdown report and writes JSON (`--json`).

use crate::{fan_out, percentile, publish, sorted, webrtc_load, Args, FanOut, SendTimes, Server, Target};

/// The viewers measured against RTSP readers.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Versus {
    Webrtc,
    Hls,
    Srt,
}

impl Versus {
    fn name(self) -> &'static str {
        match self {
            Versus::Webrtc => "WebRTC",
            Versus::Hls => "HLS",
            Versus::Srt => "SRT",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Versus::Webrtc => "WebRTC viewers (WHEP, ICE-lite + DTLS, SRTP counted undecrypted)",
            Versus::Hls => "HLS viewers (go2rtc's stream.m3u8, MPEG-TS segments, playlist polled every half target duration, each new segment downloaded once)",
            Versus::Srt => "SRT readers (stream id read:bench, srt-tokio callers, MPEG-TS counted without demuxing)",
        }
    }
}
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    percentile(&sorted(v.into_iter().filter(|x| x.is_finite()).collect()), 0.5)
}

/// Readers of the stream, from the API.
/// The kernel's count of UDP datagrams dropped because a receiver's buffer was full (all sockets).
fn udp_receive_buffer_errors() -> u64 {
    let snmp = std::fs::read_to_string("/proc/net/snmp").unwrap_or_default();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else { return 0 };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == "RcvbufErrors")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0)
}

/// The server's CPU, in % of a core, over the next `over`.
async fn cpu_pct(srv: &Server, over: Duration) -> f64 {
    let cpu0 = crate::procstat::cpu_seconds(srv.pid());
    tokio::time::sleep(over).await;
    (crate::procstat::cpu_seconds(srv.pid()) - cpu0) / over.as_secs_f64() * 100.0
}

/// Whether a CPU sample is back at the idle level (the publisher's alone, plus 1.5 % of a core for the
/// 10 ms ticks' noise).
fn quiet(sample_pct: f64, idle_pct: f64) -> bool {
    sample_pct <= idle_pct + 1.5
}

fn consumers(srv: &Server) -> usize {
    consumer_list(srv).len()
}

/// UDP sockets this process (the load client) has open, from /proc/net/udp{,6} and its descriptors.
fn own_udp_sockets() -> usize {
    let inodes: std::collections::HashSet<String> = ["/proc/self/net/udp", "/proc/self/net/udp6"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| {
            t.lines().skip(1).filter_map(|l| l.split_whitespace().nth(9).map(String::from)).collect::<Vec<_>>()
        })
        .collect();
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|l| l.to_str()?.strip_prefix("socket:[")?.strip_suffix(']').map(String::from))
                .filter(|i| inodes.contains(i))
                .count()
        })
        .unwrap_or(0)
}

/// The stream's readers, as the API lists them.
fn consumer_list(srv: &Server) -> Vec<serde_json::Value> {
    let body = srv.http("GET", "/api/streams?src=bench");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    v["consumers"].as_array().cloned().unwrap_or_default()
}

pub fn versus_report(
    args: &Args,
    bin: &std::path::Path,
    srv: Server,
    clip: &Arc<crate::clip::Clip>,
    rt: &tokio::runtime::Runtime,
    versus: Versus,
) {
    let mut servers = vec![measure(args, "camrelay", srv, clip, rt, versus)];
    // `--peer NAME=PATH`: the same rounds against another server (for `--srt`: MediaMTX; go2rtc has no
    // SRT server). The report says which were present.
    let mut peers_absent = Vec::new();
    for (name, path) in &args.peers {
        let why = match (versus, name.as_str()) {
            (Versus::Srt, "go2rtc") => Err("go2rtc has no SRT server".to_string()),
            (Versus::Srt, _) => Server::start_peer(name, path),
            _ => Err(format!("not run by --{} (peers run with --srt and --rtmp)", versus.name().to_lowercase())),
        };
        match why {
            Ok(peer) => servers.push(measure(args, name, peer, clip, rt, versus)),
            Err(e) => {
                eprintln!("peer {name}: {e}");
                peers_absent.push(format!("{name}: {e}"));
            }
        }
    }
    if args.peers.is_empty() {
        println!("\nPeers: none given (`--peer mediamtx=PATH`).");
    } else if !peers_absent.is_empty() {
        println!("\nPeers not measured: {}.", peers_absent.join("; "));
    }
    let json = serde_json::json!({
        "server": bin.display().to_string(),
        "mode": versus.name().to_lowercase(),
        "window_s": args.window.as_secs_f64(),
        "rounds": args.rounds,
        "net": args.net.name(),
        "servers": servers,
        "peers_absent": peers_absent,
    });
    crate::write_json_report(&args.json, &json);
}

/// Alternated rounds of `versus` viewers and RTSP readers on `srv` (named `label`), printed; the JSON.
fn measure(
    args: &Args,
    label: &str,
    srv: Server,
    clip: &Arc<crate::clip::Clip>,
    rt: &tokio::runtime::Runtime,
    versus: Versus,
) -> serde_json::Value {
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let rtsp = Target::Rtsp(url.clone());
    let (name, lower) = (versus.name(), versus.name().to_lowercase());
    let other = match versus {
        Versus::Webrtc => {
            let identity = Arc::new(webrtc_load::Identity::new().expect("DTLS certificate"));
            Target::Webrtc { api: srv.api.clone(), path: "/api/webrtc?src=bench".into(), identity }
        }
        Versus::Hls => Target::Hls { api: srv.api.clone(), src: "bench".into() },
        Versus::Srt => Target::Srt {
            addr: srv.srt.parse().expect("the server's SRT address"),
            stream: "bench".into(),
            latency: args.srt_latency,
        },
    };
    // Publish → read latency of both sides, for `--srt` and up to 50 readers (every reader's frames).
    let latency_upto = if versus == Versus::Srt { 50 } else { 0 };
    let mut fan: Vec<(usize, Vec<FanOut>, Vec<FanOut>)> = args.readers.iter().map(|&n| (n, vec![], vec![])).collect();
    // Per reader count: UDP datagrams the kernel dropped at full receive buffers in the other rounds.
    let mut udp_drops: Vec<u64> = vec![0; args.readers.len()];
    // Per reader count and round: seconds the server stayed busy after the other protocol's viewers left.
    let mut busy_after: Vec<Vec<f64>> = vec![Vec::new(); args.readers.len()];
    // Per reader count and round: readers the server still had 40 s after the other protocol's left.
    let mut stale: Vec<Vec<usize>> = vec![Vec::new(); args.readers.len()];
    rt.block_on(async {
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let times = Arc::new(Mutex::new(SendTimes::default()));
        let publisher = tokio::spawn(publish(url.clone(), clip.clone(), times.clone(), sent.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let idle = cpu_pct(&srv, Duration::from_secs(1)).await;
        eprintln!("server idle (publisher only): {idle:.1} % of a core");
        for round in 0..args.rounds {
            for ((((n, rtsp_rows, other_rows), udp_drops), busy_after), stale) in
                fan.iter_mut().zip(&mut udp_drops).zip(&mut busy_after).zip(&mut stale)
            {
                let lat = (*n <= latency_upto).then(|| times.clone());
                // Alternate which protocol goes first, so drift in the machine's load favours neither.
                for other_turn in [round % 2 == 0, round % 2 == 1] {
                    if other_turn {
                        eprintln!("round {}: {n} {name} viewers...", round + 1);
                        let before = udp_receive_buffer_errors();
                        other_rows.push(fan_out(&srv, &other, *n, args.window, lat.clone(), &sent).await);
                        *udp_drops += udp_receive_buffer_errors().saturating_sub(before);
                    } else {
                        eprintln!("round {}: {n} RTSP readers...", round + 1);
                        rtsp_rows.push(fan_out(&srv, &rtsp, *n, args.window, lat.clone(), &sent).await);
                    }
                    // The next round starts once the server has closed this one's sessions (WebRTC
                    // viewers DELETE theirs; HLS sessions end 30 s after their last request), so that
                    // none is measured with the next round.
                    let left = std::time::Instant::now();
                    let deadline = left + Duration::from_secs(40);
                    while consumers(&srv) > 0 && std::time::Instant::now() < deadline {
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    let left_over = consumer_list(&srv);
                    if let Some(first) = left_over.first() {
                        eprintln!(
                            "{} readers still there after 40 s ({} UDP sockets open in the load client), the first: {first}",
                            left_over.len(),
                            own_udp_sockets()
                        );
                    }
                    if other_turn {
                        stale.push(left_over.len());
                    }
                    // ... and once its CPU is back at the idle level (SRT connections outlive their
                    // readers for a while), up to 60 s.
                    let deadline = left + Duration::from_secs(60);
                    while !quiet(cpu_pct(&srv, Duration::from_secs(1)).await, idle)
                        && std::time::Instant::now() < deadline
                    {}
                    if other_turn {
                        busy_after.push(left.elapsed().as_secs_f64());
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.await;
    });
    drop(srv);

    println!(
        "## camrelay-bench --{lower} ({label}): 1280x720 30 fps H.264 (~2.5 Mbit/s, 1 s GOP) published over RTSP/TCP, read by {} and RTSP/TCP readers (video track); window {:?}, {} alternated rounds (medians)\n",
        versus.describe(),
        args.window,
        args.rounds
    );
    println!("Network: {}\n", args.net.describe());
    println!("| viewers | connected {name} / RTSP | server % core {name} | server % core RTSP | {name} / RTSP CPU (per round) | % core per viewer | viewers per core (RTSP readers) | peak RSS MiB {name} / RTSP | viewer / stream min, median | first media ms p50 / p90 | dropped {name} / RTSP (UDP receive-buffer drops) | load client % core |");
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut json_fan = Vec::new();
    for ((n, rtsp, other), udp_drops) in fan.iter().zip(&udp_drops) {
        let cpu = |rows: &[FanOut]| median(rows.iter().map(|r| r.server_cpu_pct));
        let (c_rtsp, c_other) = (cpu(rtsp), cpu(other));
        let ratios: Vec<String> =
            rtsp.iter().zip(other).map(|(a, b)| format!("{:.2}", b.server_cpu_pct / a.server_cpu_pct)).collect();
        let conn = |rows: &[FanOut]| rows.iter().map(|r| r.connected).min().unwrap_or(0);
        let rss = |rows: &[FanOut]| median(rows.iter().map(|r| r.peak_rss_mib));
        let min_ratio = |rows: &[FanOut]| rows.iter().map(|r| r.min_ratio).fold(f64::INFINITY, f64::min);
        let dropped = |rows: &[FanOut]| rows.iter().map(|r| r.dropped).sum::<u64>();
        let first = sorted(other.iter().flat_map(|r| r.first_media_ms.iter().copied()).collect());
        let client = median(other.iter().map(|r| r.client_cpu_pct));
        let median_ratio = median(other.iter().map(|r| r.median_mbps / r.stream_mbps));
        println!(
            "| {n} | {} / {} | {c_other:.1} | {c_rtsp:.1} | **×{:.2}** ({}) | {:.3} | {:.0} ({:.0}) | {:.1} / {:.1} | {:.3}, {median_ratio:.3} | {:.0} / {:.0} | {} / {} ({udp_drops}) | {client:.1} |",
            conn(other),
            conn(rtsp),
            c_other / c_rtsp,
            ratios.join(", "),
            c_other / *n as f64,
            *n as f64 * 100.0 / c_other,
            *n as f64 * 100.0 / c_rtsp,
            rss(other),
            rss(rtsp),
            min_ratio(other),
            percentile(&first, 0.5),
            percentile(&first, 0.9),
            dropped(other),
            dropped(rtsp),
        );
        json_fan.push(serde_json::json!({
            "viewers": n,
            "measured": {"server_cpu_pct_rounds": other.iter().map(|r| r.server_cpu_pct).collect::<Vec<_>>(),
                       "peak_rss_mib_rounds": other.iter().map(|r| r.peak_rss_mib).collect::<Vec<_>>(),
                       "connected_min": conn(other), "min_ratio": min_ratio(other), "median_ratio": median_ratio,
                       "dropped": dropped(other), "udp_receive_buffer_drops": udp_drops,
                       "first_media_ms": {"p50": percentile(&first, 0.5), "p90": percentile(&first, 0.9)},
                       "client_cpu_pct": client},
            "rtsp": {"server_cpu_pct_rounds": rtsp.iter().map(|r| r.server_cpu_pct).collect::<Vec<_>>(),
                     "peak_rss_mib_rounds": rtsp.iter().map(|r| r.peak_rss_mib).collect::<Vec<_>>(),
                     "connected_min": conn(rtsp), "min_ratio": min_ratio(rtsp), "dropped": dropped(rtsp)},
            "over_rtsp_cpu": c_other / c_rtsp,
        }));
    }
    println!(
        "\nSeconds from the {name} viewers' leaving until the server had no reader left and its CPU was back at the idle level (1 s samples, at most 60 s), per round:"
    );
    for (((n, ..), busy), stale) in fan.iter().zip(&busy_after).zip(&stale) {
        let rounds: Vec<String> = busy.iter().map(|s| format!("{s:.0}")).collect();
        let stale: Vec<String> = stale.iter().map(|s| s.to_string()).collect();
        println!(
            "- {n} viewers: {} (readers still listed by the server after 40 s: {})",
            rounds.join(", "),
            stale.join(", ")
        );
    }
    let mut json_latency = Vec::new();
    if latency_upto > 0 {
        println!(
            "\nPublish → read latency (RTSP publisher's write of a frame → the reader's receipt of its first slice; medians over rounds of each round's percentile; SRT latency (TSBPD delay) {} ms, which SRT adds by design):\n",
            args.srt_latency.as_millis()
        );
        println!("| readers | {name} p50 / p90 / p99 ms | RTSP p50 / p90 / p99 ms | {name} p50 − SRT latency, ms | {name} / RTSP p50 (per round) |");
        println!("|---|---|---|---|---|");
        for (n, rtsp, other) in fan.iter().filter(|(n, ..)| *n <= latency_upto) {
            let pct = |rows: &[FanOut], i: usize| {
                median(rows.iter().filter_map(|r| r.latency_ms.map(|l| [l.0, l.1, l.2][i])))
            };
            let ratios: Vec<String> = rtsp
                .iter()
                .zip(other)
                .filter_map(|(a, b)| Some(format!("{:.1}", b.latency_ms?.0 / a.latency_ms?.0)))
                .collect();
            let (o, r) = ([0, 1, 2].map(|i| pct(other, i)), [0, 1, 2].map(|i| pct(rtsp, i)));
            println!(
                "| {n} | {:.1} / {:.1} / {:.1} | {:.2} / {:.2} / {:.2} | {:.1} | ×{:.0} ({}) |",
                o[0],
                o[1],
                o[2],
                r[0],
                r[1],
                r[2],
                o[0] - args.srt_latency.as_secs_f64() * 1000.0,
                o[0] / r[0],
                ratios.join(", ")
            );
            json_latency.push(serde_json::json!({"readers": n, "measured_ms": o, "rtsp_ms": r}));
        }
    }
    serde_json::json!({
        "server": label,
        "latency_p50_p90_p99": json_latency,
        "busy_after_s": busy_after,
        "readers_left_after_40s": stale,
        "fan_out": json_fan,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn medians_skip_rounds_without_a_figure() {
        assert_eq!(super::median([4.0, f64::NAN, 1.0, 9.0]), 4.0);
        assert!(super::median([f64::NAN]).is_nan());
    }

    #[test]
    fn the_server_is_quiet_within_one_and_a_half_points_of_idle() {
        assert!(super::quiet(2.4, 1.0));
        assert!(!super::quiet(2.6, 1.0));
        assert!(super::quiet(0.0, 0.0));
    }
}
