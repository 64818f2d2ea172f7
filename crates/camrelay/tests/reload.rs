//! Hot reload: editing the config file applies without a restart. An RTSP reader (ffmpeg) of a stream
//! whose config did not change keeps receiving frames without a gap while another stream is edited,
//! one is added and one removed; a broken file is refused and the running config stays.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

fn producer_ids(server: &Server, stream: &str) -> Vec<u64> {
    let v = server.http("GET", &format!("/api/streams?src={stream}")).json();
    v["producers"].as_array().map(|p| p.iter().filter_map(|p| p["id"].as_u64()).collect()).unwrap_or_default()
}

#[test]
fn unchanged_streams_keep_their_readers_while_others_change() {
    let server = Server::start("streams:\n  steady: demo:clip\n  edited: demo:clip\n  dropped: demo:clip\n");
    let file = server.dir.join("camrelay.yaml");
    let steady_before = producer_ids(&server, "steady");
    let edited_before = producer_ids(&server, "edited");

    // A reader of `steady` for 8 s, printing every frame's timestamp (framecrc).
    let reader = Command::new("ffmpeg")
        .args(["-v", "error", "-rtsp_transport", "tcp", "-i", &server.rtsp_url("steady"), "-map", "0:v:0"])
        .args(["-t", "8", "-f", "framecrc", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ffmpeg");
    // The edit comes once the reader is well into the stream (about 2 s of the demo's video).
    assert!(wait_until(Duration::from_secs(30), || {
        server.http("GET", "/api/streams?src=steady").json()["consumers"]
            .as_array()
            .is_some_and(|c| c.iter().any(|r| r["packets_send"].as_u64().unwrap_or(0) >= 50))
    }));

    std::fs::write(
        &file,
        "# edited\nstreams:\n  steady: demo:clip\n  edited:\n    - demo:clip\n    - demo:clip\n  added: demo:clip\n",
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(30), || server.http("GET", "/api/streams?src=added").status == 200),
        "not reloaded:\n{}",
        server.log()
    );
    assert_eq!(server.http("GET", "/api/streams?src=dropped").status, 404);
    let edited_after = producer_ids(&server, "edited");
    assert_eq!(edited_after.len(), 2);
    assert!(edited_after.iter().all(|id| !edited_before.contains(id)), "edited stream not replaced");
    assert_eq!(producer_ids(&server, "steady"), steady_before, "unchanged stream was replaced");

    // A broken file is refused; the running config stays.
    std::fs::write(&file, "streams:\n  steady: demo:clip\n  broken: [\n").unwrap();
    assert!(server.wait_log("config not reloaded", Duration::from_secs(30)), "{}", server.log());
    assert_eq!(server.http("GET", "/api/streams?src=added").status, 200);

    // The reader of `steady` saw frames all along: 8 s at the demo's 25 fps with no gap.
    let out = reader.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let pts: Vec<i64> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(',').nth(2).and_then(|p| p.trim().parse().ok()))
        .collect();
    assert!(pts.len() >= 180, "only {} frames: {}", pts.len(), String::from_utf8_lossy(&out.stderr));
    let tb = text
        .lines()
        .find(|l| l.starts_with("#tb 0:"))
        .and_then(|l| l.split(':').nth(1))
        .unwrap_or(" 1/90000")
        .trim()
        .to_string();
    let (num, den): (f64, f64) = match tb.split_once('/') {
        Some((n, d)) => (n.trim().parse().unwrap_or(1.0), d.trim().parse().unwrap_or(90000.0)),
        None => (1.0, 90000.0),
    };
    let biggest_gap = pts.windows(2).map(|w| (w[1] - w[0]) as f64 * num / den).fold(0.0, f64::max);
    assert!(biggest_gap < 0.2, "a {biggest_gap:.3} s gap in the steady stream's frames");
}

#[test]
fn post_config_applies_at_once() {
    let server = Server::start("streams:\n  a: demo:clip\n");
    let body = b"streams:\n  a: demo:clip\n  b: demo:clip\n";
    let r = http_request(server.api.unwrap(), "POST", "/api/config", &[], body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["reloaded"]["added"], serde_json::json!(["b"]), "{v}");
    assert_eq!(server.http("GET", "/api/streams?src=b").status, 200);
}
