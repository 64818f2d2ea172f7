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
    assert!(wait_until(Duration::from_secs(30), || find().is_some()), "no {module} listener:\n{}", srv.log());
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

/// MediaMTX's `srt_conns_*` series of the SRT statistics and the `/v3/srtconns` fields they come from.
const SRT_SERIES: [(&str, &str); 54] = [
    ("packetsSent", "srt_conns_packets_sent"),
    ("packetsReceived", "srt_conns_packets_received"),
    ("packetsSentUnique", "srt_conns_packets_sent_unique"),
    ("packetsReceivedUnique", "srt_conns_packets_received_unique"),
    ("packetsSendLoss", "srt_conns_packets_send_loss"),
    ("packetsReceivedLoss", "srt_conns_packets_received_loss"),
    ("packetsRetrans", "srt_conns_packets_retrans"),
    ("packetsReceivedRetrans", "srt_conns_packets_received_retrans"),
    ("packetsSentACK", "srt_conns_packets_sent_ack"),
    ("packetsReceivedACK", "srt_conns_packets_received_ack"),
    ("packetsSentNAK", "srt_conns_packets_sent_nak"),
    ("packetsReceivedNAK", "srt_conns_packets_received_nak"),
    ("packetsSentKM", "srt_conns_packets_sent_km"),
    ("packetsReceivedKM", "srt_conns_packets_received_km"),
    ("usSndDuration", "srt_conns_us_snd_duration"),
    ("packetsReceivedBelated", "srt_conns_packets_received_belated"),
    ("packetsSendDrop", "srt_conns_packets_send_drop"),
    ("packetsReceivedDrop", "srt_conns_packets_received_drop"),
    ("packetsReceivedUndecrypt", "srt_conns_packets_received_undecrypt"),
    ("bytesSent", "srt_conns_bytes_sent"),
    ("bytesReceived", "srt_conns_bytes_received"),
    ("bytesSentUnique", "srt_conns_bytes_sent_unique"),
    ("bytesReceivedUnique", "srt_conns_bytes_received_unique"),
    ("bytesReceivedLoss", "srt_conns_bytes_received_loss"),
    ("bytesRetrans", "srt_conns_bytes_retrans"),
    ("bytesReceivedRetrans", "srt_conns_bytes_received_retrans"),
    ("bytesReceivedBelated", "srt_conns_bytes_received_belated"),
    ("bytesSendDrop", "srt_conns_bytes_send_drop"),
    ("bytesReceivedDrop", "srt_conns_bytes_received_drop"),
    ("bytesReceivedUndecrypt", "srt_conns_bytes_received_undecrypt"),
    ("usPacketsSendPeriod", "srt_conns_us_packets_send_period"),
    ("packetsFlowWindow", "srt_conns_packets_flow_window"),
    ("packetsFlightSize", "srt_conns_packets_flight_size"),
    ("msRTT", "srt_conns_ms_rtt"),
    ("mbpsSendRate", "srt_conns_mbps_send_rate"),
    ("mbpsReceiveRate", "srt_conns_mbps_receive_rate"),
    ("mbpsLinkCapacity", "srt_conns_mbps_link_capacity"),
    ("bytesAvailSendBuf", "srt_conns_bytes_avail_send_buf"),
    ("bytesAvailReceiveBuf", "srt_conns_bytes_avail_receive_buf"),
    ("mbpsMaxBW", "srt_conns_mbps_max_bw"),
    ("byteMSS", "srt_conns_bytes_mss"),
    ("packetsSendBuf", "srt_conns_packets_send_buf"),
    ("bytesSendBuf", "srt_conns_bytes_send_buf"),
    ("msSendBuf", "srt_conns_ms_send_buf"),
    ("msSendTsbPdDelay", "srt_conns_ms_send_tsb_pd_delay"),
    ("packetsReceiveBuf", "srt_conns_packets_receive_buf"),
    ("bytesReceiveBuf", "srt_conns_bytes_receive_buf"),
    ("msReceiveBuf", "srt_conns_ms_receive_buf"),
    ("msReceiveTsbPdDelay", "srt_conns_ms_receive_tsb_pd_delay"),
    ("packetsReorderTolerance", "srt_conns_packets_reorder_tolerance"),
    ("packetsReceivedAvgBelatedTime", "srt_conns_packets_received_avg_belated_time"),
    ("packetsSendLossRate", "srt_conns_packets_send_loss_rate"),
    ("packetsReceivedLossRate", "srt_conns_packets_received_loss_rate"),
    ("outboundFramesDiscarded", "srt_conns_outbound_frames_discarded"),
];

/// The fields that only grow (the scrape between two API answers lies between their values).
const COUNTERS: [&str; 6] =
    ["packetsSent", "packetsReceived", "bytesSent", "bytesReceived", "packetsSentACK", "packetsReceivedACK"];

/// A sample's value from the parser's JSON lines (`fixtures/prom_parse.py`), by name and `state` label.
fn parsed_value(samples: &str, name: &str, state: &str) -> Option<f64> {
    samples
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find_map(|v| (v["name"] == name && v["labels"]["state"] == state).then(|| v["value"].as_f64()).flatten())
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
        wait_until(Duration::from_secs(30), || srv.http("GET", "/v3/paths/get/scam").json()["ready"] == true),
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
    let listed = wait_until(Duration::from_secs(30), || {
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

    // MediaMTX's SRT statistics series: all of them for both connections, with the values /v3/srtconns
    // shows (counters read between two API answers lie between their values).
    let conn = |state: &str| {
        let items = srv.http("GET", "/v3/srtconns/list").json()["items"].clone();
        items.as_array().unwrap().iter().find(|c| c["state"] == state && c["path"] == "scam").cloned().unwrap()
    };
    let before = (conn("publish"), conn("read"));
    let r = http_request(metrics, "GET", "/metrics", &[], b"");
    let samples = openmetrics_samples(&r.body);
    let after = (conn("publish"), conn("read"));
    let mut checked = 0;
    for (field, series) in SRT_SERIES {
        for (state, lo, hi) in [("publish", &before.0, &after.0), ("read", &before.1, &after.1)] {
            let v = parsed_value(&samples, series, state)
                .unwrap_or_else(|| panic!("no {series} for the {state} connection:\n{samples}"));
            let (lo, hi) = (lo[field].as_f64().unwrap(), hi[field].as_f64().unwrap());
            if COUNTERS.contains(&field) {
                assert!(lo <= v && v <= hi, "{series} ({state}): {v}, /v3 said {lo} then {hi}");
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 2 * SRT_SERIES.len());
    assert!(parsed_value(&samples, "srt_conns_packets_received", "publish").unwrap() > 0.0, "{samples}");
    assert!(parsed_value(&samples, "srt_conns_packets_sent", "read").unwrap() > 0.0, "{samples}");
    assert!(parsed_value(&samples, "srt_conns_bytes_sent", "read").unwrap() > 1000.0, "{samples}");
    assert_eq!(parsed_value(&samples, "srt_conns_bytes_mss", "read"), Some(1500.0));
    let rtt = parsed_value(&samples, "srt_conns_ms_rtt", "read").unwrap();
    assert!((0.0..1000.0).contains(&rtt), "loopback RTT {rtt} ms");

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
