//! `--metrics-scrape MS`: what scraping `GET /metrics` every MS milliseconds costs the server while it
//! serves N RTSP readers. Rounds alternate without and with the scraper (which one goes first flips
//! each round, so drift in the machine's load favours neither); figures are medians over rounds.

use crate::{fan_out, percentile, publish, sorted, Args, FanOut, SendTimes, Server, Target};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// What the scraper saw during one round.
#[derive(Default)]
struct Scrapes {
    count: usize,
    failed: usize,
    millis: Vec<f64>,
    bytes: usize,
}

/// One `GET` on a kept-alive connection (as Prometheus scrapes): the body, read by its
/// `Content-Length`; `None` (and the connection dropped) on any failure.
async fn get_kept_alive(conn: &mut Option<BufReader<TcpStream>>, addr: &str, path: &str) -> Option<String> {
    if conn.is_none() {
        *conn = Some(BufReader::new(TcpStream::connect(addr).await.ok()?));
    }
    let c = conn.as_mut()?;
    let exchange = async {
        c.get_mut().write_all(format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes()).await.ok()?;
        let mut length = None;
        let mut line = String::new();
        loop {
            line.clear();
            if c.read_line(&mut line).await.ok()? == 0 {
                return None;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0u8; length?];
        c.read_exact(&mut body).await.ok()?;
        String::from_utf8(body).ok()
    };
    let body = tokio::time::timeout(Duration::from_secs(15), exchange).await.ok().flatten();
    if body.is_none() {
        *conn = None;
    }
    body
}

/// Scrapes `path` (`/metrics`, or a filtered `/metrics?type=paths`) of `addr` every `every` until `stop`,
/// on one kept-alive connection.
async fn scrape(addr: String, path: String, every: Duration, stop: Arc<AtomicBool>) -> Scrapes {
    let mut s = Scrapes::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn = None;
    while !stop.load(Ordering::Relaxed) {
        tick.tick().await;
        let t = Instant::now();
        match get_kept_alive(&mut conn, &addr, &path).await {
            Some(body) if body.contains("paths{") => {
                s.count += 1;
                s.bytes = s.bytes.max(body.len());
                s.millis.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            _ => s.failed += 1,
        }
    }
    s
}

/// One reader count's rounds: without the scraper, and with it (and what it saw).
type Rounds = (usize, Vec<FanOut>, Vec<(FanOut, Scrapes)>);

fn median(v: impl IntoIterator<Item = f64>) -> f64 {
    percentile(&sorted(v.into_iter().filter(|x| x.is_finite()).collect()), 0.5)
}

pub fn report(args: &Args, srv: Server, clip: &Arc<crate::clip::Clip>, rt: &tokio::runtime::Runtime, every: Duration) {
    let url = format!("rtsp://{}/bench", srv.rtsp);
    let rows = rt.block_on(async {
        let times = Arc::new(Mutex::new(SendTimes::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let publisher = tokio::spawn(publish(url.clone(), clip.clone(), times, sent.clone(), stop.clone()));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let target = Target::Rtsp(url.clone());
        let mut rows: Vec<Rounds> = args.readers.iter().map(|&n| (n, vec![], vec![])).collect();
        for round in 0..args.rounds {
            for (n, plain, scraped) in &mut rows {
                let scraped_first = round % 2 == 1;
                for first in [true, false] {
                    if first == scraped_first {
                        eprintln!("round {}: {n} readers, /metrics every {} ms...", round + 1, every.as_millis());
                        let halt = Arc::new(AtomicBool::new(false));
                        let path = args.metrics_path.clone();
                        let scraper = tokio::spawn(scrape(srv.metrics.clone(), path, every, halt.clone()));
                        let f = fan_out(&srv, &target, *n, args.window, None, &sent).await;
                        halt.store(true, Ordering::Relaxed);
                        let s = scraper.await.unwrap_or_default();
                        scraped.push((f, s));
                    } else {
                        eprintln!("round {}: {n} readers, no scraping...", round + 1);
                        plain.push(fan_out(&srv, &target, *n, args.window, None, &sent).await);
                    }
                }
            }
        }
        stop.store(true, Ordering::Relaxed);
        let _ = publisher.await;
        rows
    });
    println!("## {} scraped every {} ms under RTSP fan-out\n", args.metrics_path, every.as_millis());
    println!(
        "Server: {}; window {} s; {} alternated rounds; medians over rounds.\n",
        args.server.as_ref().map_or("target/release/camrelay".into(), |p| p.display().to_string()),
        args.window.as_secs_f64(),
        args.rounds
    );
    println!("| readers | server CPU, no scraping | with scraping | ratio | extra CPU (points) | scrapes ok / failed | scrape time p50 | scrape size |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut json_rows = Vec::new();
    for (n, plain, scraped) in &rows {
        let a = median(plain.iter().map(|f| f.server_cpu_pct));
        let b = median(scraped.iter().map(|(f, _)| f.server_cpu_pct));
        let ok: usize = scraped.iter().map(|(_, s)| s.count).sum();
        let failed: usize = scraped.iter().map(|(_, s)| s.failed).sum();
        let ms = median(scraped.iter().flat_map(|(_, s)| s.millis.clone()));
        let size = scraped.iter().map(|(_, s)| s.bytes).max().unwrap_or(0);
        println!(
            "| {n} | {a:.1} % | {b:.1} % | ×{:.3} | {:+.2} | {ok} / {failed} | {ms:.1} ms | {:.0} KiB |",
            b / a,
            b - a,
            size as f64 / 1024.0
        );
        json_rows.push(format!(
            r#"{{"readers":{n},"cpu_pct":{a:.3},"cpu_pct_scraped":{b:.3},"scrapes":{ok},"failed":{failed},"scrape_ms_p50":{ms:.3},"scrape_bytes":{size}}}"#
        ));
    }
    let json = format!(r#"{{"metrics_scrape_ms":{},"rows":[{}]}}"#, every.as_millis(), json_rows.join(","));
    if let Err(e) = std::fs::write(&args.json, json) {
        eprintln!("{}: {e}", args.json.display());
    }
    drop(srv);
}

/// `--http-floor-server BYTES` (a child of `--http-floor`): answers every `GET` of a kept-alive
/// connection with a prepared response of BYTES of text, in one `write_all`: a scrape's sending alone,
/// with nothing rendered or parsed beyond the request's head. Prints its address, then serves until
/// killed.
pub fn floor_server(bytes: usize) -> ! {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    println!("{}", listener.local_addr().expect("local address"));
    let _ = std::io::stdout().flush();
    let line = b"rtsp_sessions_outbound_bytes{id=\"00000000-0000-0000-0000-000000000000\",state=\"read\"} 1234567\n";
    let mut response =
        format!("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {bytes}\r\n\r\n").into_bytes();
    let body: Vec<u8> = line.iter().copied().cycle().take(bytes).collect();
    response.extend_from_slice(&body);
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone socket"));
        let mut writer = conn;
        let mut head = String::new();
        'requests: loop {
            loop {
                head.clear();
                match reader.read_line(&mut head) {
                    Ok(0) | Err(_) => break 'requests,
                    Ok(_) if head == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            if writer.write_all(&response).is_err() {
                break;
            }
        }
    }
    std::process::exit(0)
}

/// `--http-floor BYTES [COUNT]`: the server CPU that only sending a BYTES response over loopback costs
/// (the floor under any `/metrics` of that size): COUNT back-to-back `GET`s on one kept-alive connection
/// to [`floor_server`], its CPU per response, and what that is at one scrape every 100 ms.
pub fn floor(bytes: usize, count: usize) {
    use std::io::{BufRead, Read, Write};
    let mut child = std::process::Command::new(std::env::current_exe().expect("own path"))
        .args(["--http-floor-server", &bytes.to_string()])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the floor server");
    let mut addr = String::new();
    std::io::BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut addr).expect("its address");
    let conn = std::net::TcpStream::connect(addr.trim()).expect("connect to the floor server");
    let mut reader = std::io::BufReader::new(conn.try_clone().expect("clone socket"));
    let mut writer = conn;
    let mut body = vec![0u8; bytes];
    let mut get = || {
        writer.write_all(b"GET /metrics HTTP/1.1\r\nHost: floor\r\n\r\n").expect("request");
        let mut line = String::new();
        let mut length = 0;
        loop {
            line.clear();
            reader.read_line(&mut line).expect("response head");
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.strip_prefix("Content-Length: ") {
                length = v.trim().parse().expect("length");
            }
        }
        assert_eq!(length, bytes);
        reader.read_exact(&mut body).expect("body");
    };
    for _ in 0..count.min(100) {
        get();
    }
    let pid = child.id();
    let (cpu0, t0) = (crate::procstat::cpu_seconds(pid), Instant::now());
    for _ in 0..count {
        get();
    }
    let (cpu, wall) = (crate::procstat::cpu_seconds(pid) - cpu0, t0.elapsed().as_secs_f64());
    let _ = child.kill();
    let _ = child.wait();
    let per = cpu / count as f64;
    println!("## Sending a {bytes}-byte response over loopback, nothing rendered\n");
    println!("| body bytes | responses | server CPU per response | wall per response | at one every 100 ms |");
    println!("|---:|---:|---:|---:|---:|");
    println!(
        "| {bytes} | {count} | {:.1} µs | {:.1} µs | {:.3} % of a core |",
        per * 1e6,
        wall / count as f64 * 1e6,
        per * 10.0 * 100.0
    );
}
