//! The Prometheus endpoint (`metrics: listen: ":9998"`; MediaMTX's `metrics: yes` + `metricsAddress`):
//! `GET /metrics` in the text format, built at scrape time from the hub's counters — nothing is kept
//! or updated for it on the media path, and no lock is held across streams.
//!
//! Two sets of series:
//! - **MediaMTX's** (`paths`, `paths_readers`, `paths_inbound_bytes`, `rtsp_sessions`, `rtmp_conns`,
//!   `webrtc_sessions`, `hls_muxers`... with its labels), from the same figures as the `/v3` lists, so
//!   a MediaMTX dashboard keeps working. MediaMTX's series for figures camrelay does not measure (RTP
//!   loss and jitter of a session, RTCP packet counts) are left out rather than shown as 0.
//! - **camrelay's**: per source (state, reconnects, typed last error), per track (frames, bytes), per
//!   reader (bytes, packets, frames dropped), and the process (`process_*`, as Prometheus' clients name
//!   them).
//!
//! The encoding is `prometheus-client`'s (escaping, HELP/TYPE lines); the scrape asks the one auth
//! module for the `metrics` action (MediaMTX: localhost only by default).

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::v3::{self, Kind};
use crate::app::{App, ServerTask};
use crate::hub::ProducerState;

pub async fn start(app: Arc<App>) -> std::io::Result<ServerTask> {
    let listen = app.config().servers.metrics_listen.clone();
    let Some(listener) = super::bind_tcp("metrics", &listen).await? else {
        return Ok(None);
    };
    let router = Router::new().route("/metrics", get(scrape)).with_state(app.clone());
    let shutdown = app.shutdown.clone();
    Ok(Some(tokio::spawn(async move {
        let served = axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
            .with_graceful_shutdown(async move { shutdown.cancelled().await });
        if let Err(e) = served.await {
            tracing::error!("metrics server: {e}");
        }
    })))
}

async fn scrape(State(app): State<Arc<App>>, ConnectInfo(peer): ConnectInfo<SocketAddr>, request: Request) -> Response {
    let basic = request
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| crate::auth::basic_credentials(v.to_str().unwrap_or("")).unwrap_or_default());
    let presented = match &basic {
        Some((user, pass)) => crate::auth::Presented::Credentials { user, pass },
        None => crate::auth::Presented::Nothing,
    };
    let asked = crate::auth::AuthRequest {
        action: crate::auth::Action::Metrics,
        path: "",
        protocol: crate::auth::Protocol::Http,
        origin: crate::auth::Origin::Ip(peer.ip()),
        presented,
    };
    if app.auth().authorize(&asked, crate::auth::Details::default()).await.is_err() {
        tracing::info!(module = "metrics", peer = %peer, "unauthorized scrape");
        let mut r = (StatusCode::UNAUTHORIZED, "401 Unauthorized\n").into_response();
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"camrelay\""));
        return r;
    }
    match render(&app) {
        Ok(text) => {
            let mut r = text.into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            r
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n")).into_response(),
    }
}

/// The whole scrape.
pub fn render(app: &App) -> Result<String, std::fmt::Error> {
    let mut registry = prometheus_client::registry::Registry::default();
    registry.register_collector(Box::new(Collector(Snapshot::take(app))));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)?;
    Ok(out)
}

/// A label set, shared by the samples of one source, track or reader (made once per scrape).
type Labels = Arc<Vec<(&'static str, String)>>;

/// A sample's value: counts and bytes are integers (printed as MediaMTX prints them), times are not.
#[derive(Clone, Copy)]
enum Value {
    Int(i64),
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}

impl From<usize> for Value {
    fn from(v: usize) -> Value {
        Value::from(v as u64)
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// One series: its labels and value.
struct Sample {
    labels: Labels,
    value: Value,
}

/// A metric family: name, help, type and its samples.
struct Family {
    name: &'static str,
    help: &'static str,
    counter: bool,
    samples: Vec<Sample>,
}

impl Family {
    fn gauge(name: &'static str, help: &'static str) -> Family {
        Family { name, help, counter: false, samples: Vec::new() }
    }

    fn counter(name: &'static str, help: &'static str) -> Family {
        Family { name, help, counter: true, samples: Vec::new() }
    }

    fn push(&mut self, labels: &Labels, value: impl Into<Value>) {
        self.samples.push(Sample { labels: labels.clone(), value: value.into() });
    }
}

/// What a scrape shows, read from the hub once (the encoder runs on it without touching the hub).
struct Snapshot(Vec<Family>);

#[derive(Debug)]
struct Collector(Snapshot);

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot({} families)", self.0.len())
    }
}

impl prometheus_client::collector::Collector for Collector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for family in &self.0 .0 {
            let kind = if family.counter { MetricType::Counter } else { MetricType::Gauge };
            let mut metric = encoder.encode_descriptor(family.name, family.help, None, kind)?;
            for s in &family.samples {
                let encoder = metric.encode_family(&*s.labels)?;
                match (family.counter, s.value) {
                    (true, Value::Int(v)) => ConstCounter::new(v.unsigned_abs()).encode(encoder)?,
                    (true, Value::Float(v)) => ConstCounter::new(v).encode(encoder)?,
                    (false, Value::Int(v)) => ConstGauge::new(v).encode(encoder)?,
                    (false, Value::Float(v)) => ConstGauge::new(v).encode(encoder)?,
                }
            }
        }
        Ok(())
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    Arc::new(pairs.iter().map(|(k, v)| (*k, v.to_string())).collect())
}

/// `l` and one more label.
fn with(l: &Labels, key: &'static str, value: &str) -> Labels {
    let mut more = Vec::clone(l);
    more.push((key, value.to_string()));
    Arc::new(more)
}

impl Snapshot {
    fn take(app: &App) -> Snapshot {
        let mut families = Vec::new();
        paths(app, &mut families);
        hls_muxers(app, &mut families);
        sessions(app, &mut families);
        camrelay(app, &mut families);
        process(&mut families);
        Snapshot(families)
    }
}

/// MediaMTX's `paths*` series.
fn paths(app: &App, out: &mut Vec<Family>) {
    let mut paths = Family::gauge("paths", "Paths (streams); 1 per path");
    let mut readers = Family::gauge("paths_readers", "Readers of a path by MediaMTX reader type");
    let mut inbound = Family::gauge("paths_inbound_bytes", "Bytes received by a path from its sources");
    let mut outbound = Family::gauge("paths_outbound_bytes", "Bytes sent by a path to its readers");
    let mut in_error = Family::gauge("paths_inbound_frames_in_error", "Frames of a path that could not be decoded");
    let mut received = Family::gauge("paths_bytes_received", "Deprecated: paths_inbound_bytes");
    let mut sent = Family::gauge("paths_bytes_sent", "Deprecated: paths_outbound_bytes");
    for stream in v3::public_streams(app) {
        let producers = stream.producers();
        let ready = producers.iter().any(|p| p.state() == ProducerState::Online && !p.tracks().is_empty());
        let state = if ready { "ready" } else { "notReady" };
        let l = labels(&[("name", &stream.name), ("state", state)]);
        paths.push(&l, 1u64);
        let mut by_type = std::collections::BTreeMap::<&str, u32>::new();
        let stream_readers = stream.readers();
        for r in &stream_readers {
            if let Some((t, _)) = v3::reader_type(r) {
                *by_type.entry(t).or_default() += 1;
            }
        }
        if by_type.is_empty() {
            readers.push(&labels(&[("name", &stream.name), ("state", state), ("readerType", "")]), 0u64);
        }
        for (t, n) in by_type {
            readers.push(&labels(&[("name", &stream.name), ("state", state), ("readerType", t)]), u64::from(n));
        }
        let bytes_in: u64 = producers.iter().map(|p| v3::producer_bytes(p)).sum();
        let bytes_out: u64 = stream_readers.iter().map(|r| r.bytes_sent.load(Relaxed)).sum();
        inbound.push(&l, bytes_in);
        outbound.push(&l, bytes_out);
        in_error.push(&l, 0u64);
        received.push(&l, bytes_in);
        sent.push(&l, bytes_out);
    }
    out.extend([paths, readers, inbound, outbound, in_error, received, sent]);
}

/// MediaMTX's `hls_muxers*` series: camrelay has one HLS muxer per stream and variant.
fn hls_muxers(app: &App, out: &mut Vec<Family>) {
    let mut muxers = Family::gauge("hls_muxers", "HLS muxers; 1 per muxer");
    let mut bytes = Family::gauge("hls_muxers_outbound_bytes", "Bytes an HLS muxer sent");
    let mut discarded = Family::gauge("hls_muxers_outbound_frames_discarded", "Frames an HLS muxer dropped");
    let mut sent = Family::gauge("hls_muxers_bytes_sent", "Deprecated: hls_muxers_outbound_bytes");
    for (stream, r) in v3::hls_readers(app) {
        let l = labels(&[("name", &stream.name)]);
        let b = r.bytes_sent.load(Relaxed);
        muxers.push(&l, 1u64);
        bytes.push(&l, b);
        discarded.push(&l, r.dropped.load(Relaxed));
        sent.push(&l, b);
    }
    out.extend([muxers, bytes, discarded, sent]);
}

/// MediaMTX's series names of one protocol's connections or sessions: the count, inbound and outbound
/// bytes, RTP packets sent, frames (or packets) dropped, and the deprecated bytes received and sent.
struct SessionSeries {
    kind: Kind,
    count: &'static str,
    inbound: &'static str,
    outbound: &'static str,
    /// Only where MediaMTX has it (RTSP and WebRTC sessions).
    packets: Option<&'static str>,
    /// Not for RTSP connections.
    discarded: Option<&'static str>,
    received: &'static str,
    sent: &'static str,
}

const SESSION_SERIES: [SessionSeries; 5] = [
    SessionSeries {
        kind: Kind::RtspConn,
        count: "rtsp_conns",
        inbound: "rtsp_conns_inbound_bytes",
        outbound: "rtsp_conns_outbound_bytes",
        packets: None,
        discarded: None,
        received: "rtsp_conns_bytes_received",
        sent: "rtsp_conns_bytes_sent",
    },
    SessionSeries {
        kind: Kind::RtspSession,
        count: "rtsp_sessions",
        inbound: "rtsp_sessions_inbound_bytes",
        outbound: "rtsp_sessions_outbound_bytes",
        packets: Some("rtsp_sessions_outbound_rtp_packets"),
        discarded: Some("rtsp_sessions_outbound_rtp_packets_discarded"),
        received: "rtsp_sessions_bytes_received",
        sent: "rtsp_sessions_bytes_sent",
    },
    SessionSeries {
        kind: Kind::RtmpConn,
        count: "rtmp_conns",
        inbound: "rtmp_conns_inbound_bytes",
        outbound: "rtmp_conns_outbound_bytes",
        packets: None,
        discarded: Some("rtmp_conns_outbound_frames_discarded"),
        received: "rtmp_conns_bytes_received",
        sent: "rtmp_conns_bytes_sent",
    },
    SessionSeries {
        kind: Kind::RtmpsConn,
        count: "rtmps_conns",
        inbound: "rtmps_conns_inbound_bytes",
        outbound: "rtmps_conns_outbound_bytes",
        packets: None,
        discarded: Some("rtmps_conns_outbound_frames_discarded"),
        received: "rtmps_conns_bytes_received",
        sent: "rtmps_conns_bytes_sent",
    },
    SessionSeries {
        kind: Kind::WebrtcSession,
        count: "webrtc_sessions",
        inbound: "webrtc_sessions_inbound_bytes",
        outbound: "webrtc_sessions_outbound_bytes",
        packets: Some("webrtc_sessions_outbound_rtp_packets"),
        discarded: Some("webrtc_sessions_outbound_frames_discarded"),
        received: "webrtc_sessions_bytes_received",
        sent: "webrtc_sessions_bytes_sent",
    },
];

/// The families of one [`SessionSeries`], filled in one pass over the sessions.
struct SessionFamilies {
    count: Family,
    inbound: Family,
    outbound: Family,
    packets: Option<Family>,
    discarded: Option<Family>,
    received: Family,
    sent: Family,
}

/// MediaMTX's per-connection and per-session series of each protocol.
fn sessions(app: &App, out: &mut Vec<Family>) {
    let mut families: Vec<SessionFamilies> = SESSION_SERIES
        .iter()
        .map(|s| SessionFamilies {
            count: Family::gauge(s.count, "Connections or sessions of the protocol; 1 each"),
            inbound: Family::gauge(s.inbound, "Bytes received"),
            outbound: Family::gauge(s.outbound, "Bytes sent"),
            packets: s.packets.map(|n| Family::gauge(n, "RTP packets sent")),
            discarded: s.discarded.map(|n| Family::gauge(n, "Frames or packets dropped (slow reader)")),
            received: Family::gauge(s.received, "Deprecated: *_inbound_bytes"),
            sent: Family::gauge(s.sent, "Deprecated: *_outbound_bytes"),
        })
        .collect();
    v3::each_session(app, |kind, id, stream, s| {
        let Some(i) = SESSION_SERIES.iter().position(|series| series.kind == kind) else { return };
        let f = &mut families[i];
        // MediaMTX labels RTSP connections by id alone.
        let l = if kind == Kind::RtspConn {
            labels(&[("id", &id)])
        } else {
            labels(&[("id", &id), ("state", s.state), ("path", &stream.name), ("remoteAddr", &s.remote)])
        };
        f.count.push(&l, 1u64);
        f.inbound.push(&l, s.inbound);
        f.outbound.push(&l, s.outbound);
        if let Some(p) = f.packets.as_mut() {
            p.push(&l, s.packets_out);
        }
        if let Some(d) = f.discarded.as_mut() {
            d.push(&l, s.dropped);
        }
        f.received.push(&l, s.inbound);
        f.sent.push(&l, s.outbound);
    });
    for f in families {
        out.extend(
            [Some(f.count), Some(f.inbound), Some(f.outbound), f.packets, f.discarded, Some(f.received), Some(f.sent)]
                .into_iter()
                .flatten(),
        );
    }
}

/// camrelay's own series: sources, tracks and readers.
fn camrelay(app: &App, out: &mut Vec<Family>) {
    let mut info = Family::gauge("camrelay_build_info", "camrelay's version; always 1");
    info.push(&labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1u64);
    let mut source_state = Family::gauge("camrelay_source_state", "A source's state (label state); always 1");
    let mut online = Family::gauge("camrelay_source_online", "1 while a source delivers media");
    let mut reconnects = Family::counter("camrelay_source_reconnects", "Times a pulled source came back online");
    let mut errors = Family::gauge("camrelay_source_last_error", "1 for a source's last error kind");
    let mut frames = Family::counter("camrelay_track_frames", "Frames a track received");
    let mut track_bytes = Family::counter("camrelay_track_bytes", "Bytes a track received");
    let mut track_readers = Family::gauge("camrelay_track_readers", "Readers of a track");
    let mut keyframes = Family::counter("camrelay_track_keyframes", "Keyframes a video track received");
    let mut gop =
        Family::gauge("camrelay_track_keyframe_interval_seconds", "Time between a video track's last two keyframes");
    let mut resyncs = Family::counter(
        "camrelay_reader_resyncs",
        "Times a reader's queue overflowed and it skipped to the next keyframe",
    );
    let mut queued =
        Family::gauge("camrelay_reader_queue_frames", "Frames waiting in a reader's queue (readers with a queue)");
    let mut reader_bytes = Family::counter("camrelay_reader_sent_bytes", "Bytes sent to a reader");
    let mut reader_packets = Family::counter("camrelay_reader_sent_packets", "Packets or frames sent to a reader");
    let mut reader_dropped =
        Family::counter("camrelay_reader_dropped_frames", "Frames dropped for a reader (slow reader, resync)");
    let mut stream_readers = Family::gauge("camrelay_stream_readers", "Readers of a stream");
    for stream in v3::public_streams(app) {
        let readers = stream.readers();
        stream_readers.push(&labels(&[("stream", &stream.name)]), readers.len());
        let mut depths = std::collections::HashMap::<u64, usize>::new();
        for p in stream.producers() {
            let url = p.masked_url();
            let id = p.id.to_string();
            let l = labels(&[("stream", &stream.name), ("source", &url), ("id", &id)]);
            let state = p.state();
            source_state.push(&with(&l, "state", state.as_str()), 1u64);
            online.push(&l, u64::from(state == ProducerState::Online));
            if !p.is_pushed() {
                reconnects.push(&l, p.reconnects());
            }
            if let Some(kind) = p.last_error_kind() {
                errors.push(&with(&l, "kind", kind.as_str()), 1u64);
            }
            for t in p.tracks() {
                let mut tl = Vec::clone(&l);
                tl.push(("track", t.id.to_string()));
                tl.push(("media", t.kind.to_string()));
                tl.push(("codec", t.codec.name.to_ascii_lowercase()));
                let tl = Arc::new(tl);
                frames.push(&tl, t.frames.load(Relaxed));
                track_bytes.push(&tl, t.bytes.load(Relaxed));
                track_readers.push(&tl, t.reader_count());
                if t.kind == media::Kind::Video {
                    keyframes.push(&tl, t.keyframes.load(Relaxed));
                    let ticks = t.keyframe_interval.load(Relaxed) as f64;
                    gop.push(&tl, ticks / f64::from(t.codec.clock_rate.max(1)));
                }
                for (reader, depth) in t.queue_depths() {
                    *depths.entry(reader).or_insert(0) += depth;
                }
            }
        }
        for r in readers {
            let id = r.id.to_string();
            let protocol = r.protocol();
            let l = labels(&[
                ("stream", &stream.name),
                ("id", &id),
                ("protocol", &protocol),
                ("remote_addr", &r.remote_addr),
            ]);
            reader_bytes.push(&l, r.bytes_sent.load(Relaxed));
            reader_packets.push(&l, r.packets_sent.load(Relaxed));
            reader_dropped.push(&l, r.dropped.load(Relaxed));
            resyncs.push(&l, r.resyncs.load(Relaxed));
            if let Some(depth) = depths.get(&r.id) {
                queued.push(&l, *depth);
            }
        }
    }
    out.extend([
        info,
        source_state,
        online,
        reconnects,
        errors,
        frames,
        track_bytes,
        track_readers,
        keyframes,
        gop,
        stream_readers,
        reader_bytes,
        reader_packets,
        reader_dropped,
        resyncs,
        queued,
    ]);
}

/// The process series Prometheus' own clients export, from `/proc/self`.
fn process(out: &mut Vec<Family>) {
    let Some(p) = ProcStat::read() else { return };
    let none = Labels::default();
    let mut cpu = Family::counter("process_cpu_seconds", "User and system CPU time spent in seconds");
    cpu.push(&none, p.cpu_seconds);
    let mut rss = Family::gauge("process_resident_memory_bytes", "Resident memory size in bytes");
    rss.push(&none, p.rss_bytes);
    let mut vsize = Family::gauge("process_virtual_memory_bytes", "Virtual memory size in bytes");
    vsize.push(&none, p.vsize_bytes);
    let mut threads = Family::gauge("process_threads", "OS threads");
    threads.push(&none, p.threads);
    let mut start = Family::gauge("process_start_time_seconds", "Start time since the epoch in seconds");
    start.push(&none, p.start_time_seconds);
    let mut fds = Family::gauge("process_open_fds", "Open file descriptors");
    fds.push(&none, open_fds());
    out.extend([cpu, rss, vsize, threads, start, fds]);
}

/// Open file descriptors, counted at most every 10 s: listing `/proc/self/fd` costs the kernel a
/// lookup per descriptor (one per reader), which at frequent scrapes was the scrape's largest cost.
fn open_fds() -> usize {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, usize)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match *last {
        Some((at, n)) if at.elapsed() < std::time::Duration::from_secs(10) => n,
        _ => {
            let n = std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0);
            *last = Some((std::time::Instant::now(), n));
            n
        }
    }
}

/// What `/proc/self/stat` says of this process.
struct ProcStat {
    cpu_seconds: f64,
    rss_bytes: u64,
    vsize_bytes: u64,
    threads: u64,
    start_time_seconds: f64,
}

impl ProcStat {
    fn read() -> Option<ProcStat> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let ticks = 100.0; // USER_HZ: 100 on every Linux ABI
        let page = 4096u64;
        ProcStat::parse(&stat, &uptime, ticks, page, std::time::SystemTime::now())
    }

    /// `stat` is `/proc/self/stat` (fields after the `(comm)`, which may hold spaces), `uptime`
    /// `/proc/uptime`.
    fn parse(stat: &str, uptime: &str, ticks: f64, page: u64, now: std::time::SystemTime) -> Option<ProcStat> {
        let rest = stat.get(stat.rfind(')')? + 2..)?;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields from 3 (state) on: utime 14, stime 15, num_threads 20, starttime 22, vsize 23, rss 24.
        let field = |n: usize| -> Option<u64> { f.get(n - 3)?.parse().ok() };
        let up: f64 = uptime.split_whitespace().next()?.parse().ok()?;
        let now = now.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
        Some(ProcStat {
            cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
            threads: field(20)?,
            start_time_seconds: now - up + field(22)? as f64 / ticks,
            vsize_bytes: field(23)?,
            rss_bytes: field(24)? * page,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_stat_fields_are_read_after_the_command_name() {
        let stat = "4242 (cam relay) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 7 0 12000 104857600 2560 \
                    18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let now = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        let p = ProcStat::parse(stat, "500.00 900.00\n", 100.0, 4096, now).unwrap();
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.threads, 7);
        assert_eq!(p.vsize_bytes, 104_857_600);
        assert_eq!(p.rss_bytes, 2560 * 4096);
        assert_eq!(p.start_time_seconds, 1_000_000.0 - 500.0 + 120.0);
        assert!(ProcStat::parse("garbage", "1", 100.0, 4096, now).is_none());
    }
}
