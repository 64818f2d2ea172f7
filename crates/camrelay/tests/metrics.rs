//! The Prometheus endpoint with real clients: ffmpeg publishes over RTSP, ffmpeg reads over RTSP, the
//! test reads MPEG-TS over HTTP counting the bytes; each scrape is parsed by `prometheus_client`'s
//! strict OpenMetrics parser (`tests/fixtures/prom_parse.py`, Python 3.12 venv `target/ha-venv` that
//! `scripts/test.sh` makes) and its series are checked against that traffic. Also `/api/health`,
//! `/api/ready`, and the `metrics` permission of MediaMTX's users.

mod common;

use common::*;
use serde_json::Value;
use std::io::{Read, Write};
use std::time::Duration;

fn metrics_addr(srv: &Server) -> String {
    assert!(srv.wait_log("[metrics] listen addr=", Duration::from_secs(30)), "no metrics listener:\n{}", srv.log());
    let log = srv.log();
    let line = log.lines().find(|l| l.contains("[metrics] listen addr=")).unwrap();
    line.split("[metrics] listen addr=").nth(1).unwrap().trim().to_string()
}

/// One parsed sample.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: serde_json::Map<String, Value>,
    value: f64,
    kind: String,
}

/// Scrapes `/metrics` and parses it with the OpenMetrics parser (which fails on invalid text).
fn scrape(addr: &str) -> Vec<Sample> {
    scrape_at(addr, "/metrics")
}

fn scrape_at(addr: &str, path: &str) -> Vec<Sample> {
    let r = http_request(addr.parse().unwrap(), "GET", path, &[], b"");
    assert_eq!(r.status, 200, "{}", r.text());
    openmetrics_samples(&r.body)
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_string(),
                labels: v["labels"].as_object().unwrap().clone(),
                value: v["value"].as_f64().unwrap(),
                kind: v["type"].as_str().unwrap().to_string(),
            }
        })
        .collect()
}

fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k).and_then(Value::as_str) == Some(*v)))
        .collect()
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let found = find(samples, name, labels);
    assert_eq!(found.len(), 1, "one {name}{labels:?} expected, got {found:?}");
    found[0].value
}

/// Opens `GET path` on `addr` and reads `want` body bytes; returns the socket (still open) and the
/// number of body bytes read.
fn read_http_body(addr: std::net::SocketAddr, path: &str, want: usize) -> (std::net::TcpStream, usize) {
    let mut sock = std::net::TcpStream::connect(addr).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    write!(sock, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        sock.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&head));
    // The body is chunked: count the raw bytes after the head (chunk framing is a few bytes per chunk).
    let mut got = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while got < want {
        let n = sock.read(&mut buf).unwrap();
        assert!(n > 0, "stream ended after {got} bytes");
        got += n;
    }
    (sock, got)
}

#[test]
fn metrics_follow_the_traffic_and_parse_as_openmetrics() {
    let srv = Server::start("metrics:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = metrics_addr(&srv);
    // Before anything: the configured stream, not ready, nobody reading.
    let idle = scrape(&addr);
    assert_eq!(value(&idle, "paths", &[("name", "cam"), ("state", "notReady")]), 1.0);
    assert_eq!(value(&idle, "camrelay_stream_readers", &[("stream", "cam")]), 0.0);
    assert!(value(&idle, "process_resident_memory_bytes", &[]) > 1_000_000.0);
    assert!(value(&idle, "camrelay_build_info", &[]) == 1.0);

    let _publisher = Publisher::start(&srv.rtsp_url("cam"), "tcp", "320x240", true);
    assert!(
        wait_until(Duration::from_secs(30), || ffprobe(&srv.rtsp_url("cam"), "tcp").is_ok()),
        "cam not readable:\n{}",
        srv.log()
    );
    let _rtsp_reader = rtsp_reader_for(&srv.rtsp_url("cam"), 30);
    // A reader the test counts bytes of: 200 kB of MPEG-TS over HTTP.
    let (sock, read) = read_http_body(srv.api.unwrap(), "/api/stream.ts?src=cam", 200_000);
    let reading = wait_until(Duration::from_secs(30), || {
        let s = scrape(&addr);
        !find(&s, "rtsp_sessions", &[("state", "read"), ("path", "cam")]).is_empty()
    });
    assert!(reading, "no RTSP reader in the metrics:\n{}", srv.log());
    let s = scrape(&addr);

    // MediaMTX's series.
    assert_eq!(value(&s, "paths", &[("name", "cam"), ("state", "ready")]), 1.0);
    assert_eq!(value(&s, "paths_readers", &[("name", "cam"), ("readerType", "rtspSession")]), 1.0);
    let inbound = value(&s, "paths_inbound_bytes", &[("name", "cam")]);
    let outbound = value(&s, "paths_outbound_bytes", &[("name", "cam")]);
    assert!(inbound > 10_000.0, "inbound {inbound}");
    assert!(outbound >= read as f64, "outbound {outbound} < the {read} bytes the test read");
    assert_eq!(value(&s, "paths_bytes_received", &[("name", "cam")]), inbound);
    let publish = find(&s, "rtsp_sessions", &[("state", "publish"), ("path", "cam")]);
    assert_eq!(publish.len(), 1, "{publish:?}");
    let id = publish[0].labels["id"].as_str().unwrap();
    assert!(value(&s, "rtsp_sessions_inbound_bytes", &[("id", id)]) > 10_000.0);
    assert!(!find(&s, "rtsp_conns", &[]).is_empty());
    assert_eq!(find(&s, "rtmp_conns", &[]).len(), 0, "no RTMP connection");

    // camrelay's: the source online, video frames counted, the HTTP reader's bytes match what was read.
    let source = [("stream", "cam")];
    assert_eq!(value(&s, "camrelay_source_online", &source), 1.0);
    assert_eq!(value(&s, "camrelay_source_state", &[("stream", "cam"), ("state", "online")]), 1.0);
    let video = find(&s, "camrelay_track_frames_total", &[("stream", "cam"), ("media", "video"), ("codec", "h264")]);
    assert_eq!(video.len(), 1, "{video:?}");
    assert!(video[0].value >= 10.0 && video[0].kind == "counter", "{video:?}");
    // The publisher's GOP: ffmpeg -g 25 at 25 fps, one keyframe a second.
    let gop = value(&s, "camrelay_track_keyframe_interval_seconds", &[("stream", "cam"), ("media", "video")]);
    assert!((0.9..=1.1).contains(&gop), "keyframe interval {gop}");
    assert!(value(&s, "camrelay_track_keyframes_total", &[("stream", "cam"), ("media", "video")]) >= 2.0);
    // The HTTP reader has a queue (RTSP/TCP readers are written from the push path: none listed).
    let queued = find(&s, "camrelay_reader_queue_frames", &[("stream", "cam"), ("protocol", "ts")]);
    assert_eq!(queued.len(), 1, "{queued:?}");
    assert_eq!(find(&s, "camrelay_reader_resyncs_total", &[("stream", "cam")]).len(), 2);
    let ts = find(&s, "camrelay_reader_sent_bytes_total", &[("stream", "cam")]);
    let ts_bytes: Vec<f64> = ts.iter().filter(|x| x.labels["protocol"] == "ts").map(|x| x.value).collect();
    assert_eq!(ts_bytes.len(), 1, "one MPEG-TS reader expected: {ts:?}");
    // What the server counts as sent to the HTTP reader is what the test read, give or take what sits
    // in the socket buffers (and the chunk framing the test counted in).
    assert!(
        ts_bytes[0] + 16_384.0 >= read as f64 && ts_bytes[0] <= read as f64 + 8_000_000.0,
        "server says {} bytes, test read {read}",
        ts_bytes[0]
    );
    assert_eq!(value(&s, "camrelay_stream_readers", &source), 2.0);
    drop(sock);
    let gone = wait_until(Duration::from_secs(30), || {
        find(&scrape(&addr), "camrelay_stream_readers", &source).first().is_some_and(|x| x.value == 1.0)
    });
    assert!(gone, "the closed HTTP reader is still counted");

    // Health and readiness on the API listener.
    let health = srv.http("GET", "/api/health");
    assert_eq!((health.status, health.json()["status"].as_str()), (200, Some("ok")));
    let ready = srv.http("GET", "/api/ready");
    assert_eq!((ready.status, ready.json()["status"].as_str()), (200, Some("ready")));
}

#[test]
fn mediamtx_metrics_need_the_metrics_permission() {
    let srv = Server::start(
        "api: yes\napiAddress: 127.0.0.1:0\nrtspAddress: 127.0.0.1:0\nrtspTransports: [tcp]\n\
         hls: no\nwebrtc: no\nrtmp: no\nsrt: no\nmetrics: yes\nmetricsAddress: 127.0.0.1:0\n\
         authInternalUsers:\n- user: any\n  permissions:\n  - action: read\n  - action: publish\n  - action: api\n\
         - user: prom\n  pass: scrape-secret\n  permissions:\n  - action: metrics\n\
         paths:\n  cam:\n    source: publisher\n",
    );
    let addr: std::net::SocketAddr = metrics_addr(&srv).parse().unwrap();
    let anonymous = http_request(addr, "GET", "/metrics", &[], b"");
    assert_eq!(anonymous.status, 401, "{}", anonymous.text());
    assert!(!anonymous.text().contains("scrape-secret"));
    let wrong = http_request(addr, "GET", "/metrics", &[("Authorization", "Basic cHJvbTpub3Bl")], b"");
    assert_eq!(wrong.status, 401);
    // prom:scrape-secret
    let ok = http_request(addr, "GET", "/metrics", &[("Authorization", "Basic cHJvbTpzY3JhcGUtc2VjcmV0")], b"");
    assert_eq!(ok.status, 200, "{}", ok.text());
    let text = ok.text();
    assert!(text.contains("paths{name=\"cam\",state=\"notReady\"} 1"), "{text}");
    assert!(text.ends_with("# EOF\n"), "{text}");
    assert!(srv.wait_log("unauthorized scrape", Duration::from_secs(30)), "{}", srv.log());
}

/// Sends one RTSP request and reads its reply (head and Content-Length body), byte by byte so nothing
/// after it (interleaved media) is taken.
fn rtsp_request(s: &mut std::net::TcpStream, request: &str) -> String {
    s.write_all(request.as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length:").map(|v| v.trim().parse::<usize>().unwrap()))
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).unwrap();
    assert!(head.starts_with("RTSP/1.0 200"), "{request}\n{head}");
    head + &String::from_utf8_lossy(&body)
}

fn header<'a>(reply: &'a str, name: &str) -> &'a str {
    reply.lines().find_map(|l| l.strip_prefix(name)).map(str::trim).unwrap_or_else(|| panic!("no {name} in {reply}"))
}

fn interleaved(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut out = vec![b'$', channel];
    out.extend_from_slice(&(data.len() as u16).to_be_bytes());
    out.extend_from_slice(data);
    out
}

/// An RTP packet of H.264 payload type 96 carrying one IDR slice NAL unit.
fn idr_packet(sequence: u16, timestamp: u32) -> Vec<u8> {
    let mut p = vec![0x80, 0x80 | 96];
    p.extend_from_slice(&sequence.to_be_bytes());
    p.extend_from_slice(&timestamp.to_be_bytes());
    p.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    p.extend_from_slice(&[0x65, 0x88, 0x84, 0x00, 0x33, 0xff]);
    p
}

fn sender_report() -> Vec<u8> {
    let mut sr = vec![0x80, 200, 0, 6];
    sr.extend_from_slice(&0x1234_5678u32.to_be_bytes());
    sr.extend_from_slice(&[0; 20]);
    sr
}

/// `/v3/rtspsessions/list`'s item of the session in `state`.
fn rtsp_session(srv: &Server, state: &str) -> Option<Value> {
    let list = srv.http("GET", "/v3/rtspsessions/list").json();
    list["items"].as_array()?.iter().find(|i| i["state"] == state).cloned()
}

#[test]
fn rtsp_sessions_report_rtp_loss_jitter_and_rtcp() {
    let srv = Server::start("metrics:\n  listen: 127.0.0.1:0\nstreams:\n  cam:\n");
    let addr = metrics_addr(&srv);
    let url = srv.rtsp_url("cam");
    // A publisher of our own making, so loss and errors are known: sequence numbers 100..160 with five
    // of them never sent, timestamps 33 ms apart sent all at once (jitter), two sender reports, one
    // RTCP and one RTP packet that do not parse.
    let mut publisher = std::net::TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    publisher.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let sdp = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=test\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n\
        a=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z0IAHpWoKA9puAgICBA=,aM48gA==\r\n\
        a=control:trackID=0\r\n";
    rtsp_request(
        &mut publisher,
        &format!(
            "ANNOUNCE {url} RTSP/1.0\r\nCSeq: 1\r\nContent-Type: application/sdp\r\nContent-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ),
    );
    let reply = rtsp_request(
        &mut publisher,
        &format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1;mode=record\r\n\r\n"),
    );
    let session = header(&reply, "Session:").split(';').next().unwrap().to_string();
    rtsp_request(&mut publisher, &format!("RECORD {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {session}\r\n\r\n"));
    let skipped = [110u16, 120, 130, 140, 150];
    let send = |publisher: &mut std::net::TcpStream, sequences: std::ops::Range<u16>| {
        let mut wire = Vec::new();
        for seq in sequences.filter(|s| !skipped.contains(s)) {
            wire.extend(interleaved(0, &idr_packet(seq, u32::from(seq) * 3000)));
        }
        publisher.write_all(&wire).unwrap();
    };
    send(&mut publisher, 100..125);

    // A reader of our own making: it reads our sender report, and reports 7 packets lost.
    let mut reader = std::net::TcpStream::connect(srv.rtsp.unwrap()).unwrap();
    reader.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    rtsp_request(&mut reader, &format!("DESCRIBE {url} RTSP/1.0\r\nCSeq: 1\r\nAccept: application/sdp\r\n\r\n"));
    let reply = rtsp_request(
        &mut reader,
        &format!("SETUP {url}/trackID=0 RTSP/1.0\r\nCSeq: 2\r\nTransport: RTP/AVP/TCP;unicast;interleaved=0-1\r\n\r\n"),
    );
    let reader_session = header(&reply, "Session:").split(';').next().unwrap().to_string();
    let transport = header(&reply, "Transport:");
    let ssrc = u32::from_str_radix(transport.split("ssrc=").nth(1).unwrap().trim(), 16).unwrap();
    rtsp_request(&mut reader, &format!("PLAY {url} RTSP/1.0\r\nCSeq: 3\r\nSession: {reader_session}\r\n\r\n"));
    send(&mut publisher, 125..160);
    publisher.write_all(&interleaved(1, &sender_report())).unwrap();
    publisher.write_all(&interleaved(1, &sender_report())).unwrap();
    publisher.write_all(&interleaved(1, &[0, 1, 2, 3])).unwrap();
    publisher.write_all(&interleaved(0, &[0x80, 96])).unwrap();
    // The reader takes frames until our sender report came.
    let mut got_sr = false;
    while !got_sr {
        let mut head = [0u8; 4];
        reader.read_exact(&mut head).expect("the reader got no sender report");
        assert_eq!(head[0], b'$', "not interleaved data: {head:?}");
        let mut data = vec![0u8; usize::from(u16::from_be_bytes([head[2], head[3]]))];
        reader.read_exact(&mut data).unwrap();
        got_sr = head[1] == 1 && data.get(1) == Some(&200);
    }
    // RR from the reader: one report block about our SSRC, 7 lost so far.
    let mut rr = vec![0x81, 201, 0, 7, 0, 0, 0, 42];
    rr.extend_from_slice(&ssrc.to_be_bytes());
    rr.extend_from_slice(&[5, 0, 0, 7, 0, 0, 0, 160, 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0]);
    reader.write_all(&interleaved(1, &rr)).unwrap();

    let settled = wait_until(Duration::from_secs(30), || {
        let p = rtsp_session(&srv, "publish");
        let r = rtsp_session(&srv, "read");
        p.is_some_and(|p| p["inboundRTPPackets"] == 55 && p["inboundRTCPPacketsInError"] == 1)
            && r.is_some_and(|r| r["inboundRTCPPackets"] == 1)
    });
    let p = rtsp_session(&srv, "publish").expect("publisher session");
    let r = rtsp_session(&srv, "read").expect("reader session");
    assert!(settled, "publisher {p:#}\nreader {r:#}\n{}", srv.log());
    assert_eq!(p["inboundRTPPacketsLost"], 5, "{p:#}");
    assert_eq!(p["inboundRTPPacketsInError"], 1, "{p:#}");
    assert_eq!(p["inboundRTCPPackets"], 2, "{p:#}");
    assert_eq!(p["rtpPacketsLost"], 5, "{p:#}");
    // 3000 timestamp units (6000 across a gap) between packets that arrive at once: J grows towards
    // 3000, past it at the gaps.
    let jitter = p["inboundRTPPacketsJitter"].as_f64().unwrap();
    assert!((500.0..=6000.0).contains(&jitter), "jitter {jitter}");
    assert_eq!(r["outboundRTPPacketsReportedLost"], 7, "{r:#}");
    assert!(r["outboundRTCPPackets"].as_u64().unwrap() >= 1, "{r:#}");
    assert!(r["outboundRTPPackets"].as_u64().unwrap() >= 1, "{r:#}");

    // The same figures in MediaMTX's series, through the OpenMetrics parser.
    let s = scrape(&addr);
    let pid = p["id"].as_str().unwrap();
    let rid = r["id"].as_str().unwrap();
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtp_packets", &[("id", pid)]), 55.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtp_packets_lost", &[("id", pid)]), 5.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtp_packets_in_error", &[("id", pid)]), 1.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtcp_packets", &[("id", pid)]), 2.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtcp_packets_in_error", &[("id", pid)]), 1.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtp_packets_jitter", &[("id", pid)]), jitter);
    assert_eq!(value(&s, "rtsp_sessions_outbound_rtp_packets_reported_lost", &[("id", rid)]), 7.0);
    assert_eq!(value(&s, "rtsp_sessions_inbound_rtcp_packets", &[("id", rid)]), 1.0);
    assert!(value(&s, "rtsp_sessions_outbound_rtcp_packets", &[("id", rid)]) >= 1.0);
    // Each side has only its own series.
    assert!(find(&s, "rtsp_sessions_inbound_rtp_packets_lost", &[("id", rid)]).is_empty());
    assert!(find(&s, "rtsp_sessions_outbound_rtcp_packets", &[("id", pid)]).is_empty());

    // MediaMTX's filters: one group, one path, one session.
    let names = |s: &[Sample]| s.iter().map(|x| x.name.clone()).collect::<std::collections::BTreeSet<_>>();
    let paths_only = scrape_at(&addr, "/metrics?type=paths");
    assert!(names(&paths_only).iter().all(|n| n.starts_with("paths")), "{:?}", names(&paths_only));
    assert_eq!(value(&paths_only, "paths", &[("name", "cam"), ("state", "ready")]), 1.0);
    let session = scrape_at(&addr, &format!("/metrics?rtsp_session={rid}"));
    assert!(names(&session).iter().all(|n| n.starts_with("rtsp_sessions")), "{:?}", names(&session));
    assert!(session.iter().all(|x| x.labels["id"] == rid), "{session:?}");
    assert_eq!(value(&session, "rtsp_sessions_outbound_rtp_packets_reported_lost", &[]), 7.0);
    let conns = scrape_at(&addr, "/metrics?type=rtsp_conns");
    assert_eq!(find(&conns, "rtsp_conns", &[]).len(), 2, "{conns:?}");
    assert!(names(&conns).iter().all(|n| n.starts_with("rtsp_conns")), "{:?}", names(&conns));
    let other_path = scrape_at(&addr, "/metrics?path=nothing");
    assert!(other_path.is_empty(), "{other_path:?}");
    let cam = scrape_at(&addr, "/metrics?path=cam");
    assert!(names(&cam).iter().all(|n| n.starts_with("paths") || n.starts_with("camrelay_")), "{:?}", names(&cam));
    assert_eq!(value(&cam, "camrelay_stream_readers", &[("stream", "cam")]), 1.0);
    let r = http_request(addr.parse().unwrap(), "GET", "/metrics?type=rtsp_sesions", &[], b"");
    assert_eq!((r.status, r.text().trim()), (400, "invalid type \"rtsp_sesions\""));
}
