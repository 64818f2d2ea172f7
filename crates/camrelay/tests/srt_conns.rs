//! Issue 16: `/v3/srtconns` (list, get, kick) and the `srt_conns*` metrics with real SRT callers:
//! ffmpeg publishes MPEG-TS over SRT and another ffmpeg reads it; the OpenAPI validator
//! (fixtures/v3_validate.py, `--srt-published`) checks every answer against MediaMTX's `SRTConn`
//! schema, the SRT statistics, and kicks both; the metrics are parsed by the OpenMetrics parser.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

fn listen_addr(srv: &Server, module: &str) -> SocketAddr {
    let needle = format!("[{module}] listen addr=");
    let find = || srv.log().lines().find_map(|l| l.split(&needle).nth(1)?.split_whitespace().next()?.parse().ok());
    assert!(wait_until(Duration::from_secs(10), || find().is_some()), "no {module} listener:\n{}", srv.log());
    find().unwrap()
}

/// The scrape's samples as `name{labels} value` lines, after the OpenMetrics parser accepted it.
fn scrape(addr: SocketAddr) -> String {
    let r = http_request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    openmetrics_samples(&r.body);
    r.text()
}

fn value_of(text: &str, name: &str, state: &str) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(&format!("state=\"{state}\"")))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

#[test]
fn srtconns_list_get_kick_and_metrics_with_ffmpeg() {
    let srv = Server::start(
        "srt:\n  listen: 127.0.0.1:0\nmetrics:\n  listen: 127.0.0.1:0\nrtsp:\n  allow_any_publish: true\nstreams:\n  scam:\n",
    );
    let srt = listen_addr(&srv, "srt");
    let metrics = listen_addr(&srv, "metrics");
    let _publisher = Publisher::encode(
        "320x240",
        true,
        false,
        &["-t", "60", "-f", "mpegts", &format!("srt://{srt}?streamid=publish:scam&pkt_size=1316")],
    );
    let url = format!("srt://{srt}?streamid=read:scam");
    assert!(
        wait_until(Duration::from_secs(20), || srv.http("GET", "/v3/paths/get/scam").json()["ready"] == true),
        "scam never became ready over SRT:\n{}",
        srv.log()
    );
    let reader = std::thread::spawn(move || {
        run_with_timeout(
            Command::new("ffmpeg").args(["-v", "error", "-i", &url, "-t", "30", "-f", "null", "-"]),
            Duration::from_secs(35),
        )
    });
    // Both listed, and the SRT statistics have arrived (srt-protocol reports every second).
    let listed = wait_until(Duration::from_secs(20), || {
        let items = srv.http("GET", "/v3/srtconns/list").json()["items"].clone();
        let items = items.as_array().cloned().unwrap_or_default();
        let counted = |state: &str, field: &str| {
            items.iter().any(|c| c["state"] == state && c["path"] == "scam" && c[field].as_u64().unwrap_or(0) > 0)
        };
        counted("publish", "packetsReceived") && counted("read", "packetsSent")
    });
    let list = srv.http("GET", "/v3/srtconns/list").json();
    assert!(listed, "no SRT publisher and reader with statistics: {list}\n{}", srv.log());
    println!("srtconns: {list}");

    // The metrics: one connection of each state, with their bytes.
    let text = scrape(metrics);
    assert_eq!(value_of(&text, "srt_conns", "publish"), Some(1.0), "{text}");
    assert_eq!(value_of(&text, "srt_conns", "read"), Some(1.0), "{text}");
    assert!(value_of(&text, "srt_conns_inbound_bytes", "publish").unwrap_or(0.0) > 10_000.0, "{text}");
    assert!(value_of(&text, "srt_conns_outbound_bytes", "read").unwrap_or(0.0) > 10_000.0, "{text}");

    // The validator: every answer against the schema, both kicked, then gone.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let out = run_with_timeout(
        Command::new(ha_python())
            .arg(root.join("tests/fixtures/v3_validate.py"))
            .arg("--api")
            .arg(srv.api_url(""))
            .arg("--spec")
            .arg(root.join("../../docs/openapi-v3.yaml"))
            .args(["--srt-published", "scam"])
            .env("PYTHONWARNINGS", "ignore::DeprecationWarning"),
        Duration::from_secs(120),
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    println!("{stdout}");
    assert!(
        stdout.contains("kicked srt conns: 2"),
        "{stdout}\n{}\nserver log:\n{}",
        String::from_utf8_lossy(&out.stderr),
        srv.log()
    );
    for line in stdout.lines().filter(|l| l.contains("srtconns")) {
        assert!(!line.to_lowercase().contains("invalid"), "{line}");
    }
    let summary = stdout.lines().find(|l| l.starts_with("v3 summary:")).unwrap_or("");
    assert!(summary.contains(" 0 invalid"), "{summary}\n{stdout}");
    let _ = reader.join();
}
