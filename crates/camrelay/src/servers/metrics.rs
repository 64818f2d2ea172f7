//! The Prometheus endpoint (`metrics: listen: ":9998"`; MediaMTX's `metrics: yes` + `metricsAddress`):
//! `GET /metrics` in the text format, built at scrape time from the hub's counters — nothing is kept
//! or updated for it on the media path, and no lock is held across streams.
//!
//! Two sets of series:
//! - **MediaMTX's** (`paths`, `paths_readers`, `paths_inbound_bytes`, `rtsp_sessions`, `rtmp_conns`,
//!   `webrtc_sessions`, `hls_muxers`... with its labels), from the same figures as the `/v3` lists, so
//!   a MediaMTX dashboard keeps working. RTSP sessions have MediaMTX's RTP and RTCP series too, each
//!   only where it applies: a publisher's inbound RTP packets, loss (RFC 3550) and jitter, and RTCP
//!   received; a reader's RTCP each way and the loss its receiver reports give. MediaMTX's series for
//!   figures camrelay does not measure (WebRTC sessions' RTP loss and jitter) are left out rather than
//!   shown as 0.
//! - **camrelay's**: per source (state, reconnects, typed last error), per track (frames, bytes), per
//!   reader (bytes, packets, frames dropped), and the process (`process_*`, as Prometheus' clients name
//!   them).
//!
//! The scrape asks the one auth module for the `metrics` action (MediaMTX: localhost only by default).
//!
//! **Cost.** A scrape at 500 RTSP readers is about 8,000 lines. They are written straight into one
//! buffer per family (kept from one scrape to the next), with each reader's label text rendered once
//! and kept while the reader lives ([`READER_LABELS`]), and numbers written without `fmt`: no
//! per-sample allocation, no lock but each stream's reader and producer lists (one at a time) and each
//! track's (to read its queue depths). prometheus-client's encoder (which this module used before) made
//! each sample go through its label-set encoder, which cost more than everything else of the scrape
//! (docs/benchmarks.md, "/metrics under load").

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::{BufMut, Bytes, BytesMut};
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use super::srt;
use super::v3::{self, Kind};
use crate::app::{App, ServerTask};
use crate::hub::producer::ProducerKind;
use crate::hub::{ProducerState, ReaderShared, RtpCounters};

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
    // Basic credentials, or MediaMTX's JWT as `Authorization: Bearer` (or `?jwt=`).
    let authorization = request.headers().get(header::AUTHORIZATION).map(|v| v.to_str().unwrap_or("").to_string());
    let token = match authorization.as_deref().and_then(crate::auth::bearer_token) {
        Some(t) => Some(t.to_string()),
        None if app.auth().jwt_in_http_query() => crate::auth::query_token(request.uri().query().unwrap_or("")),
        None => None,
    };
    let basic = authorization.as_deref().map(|v| crate::auth::basic_credentials(v).unwrap_or_default());
    let presented = match (&token, &basic) {
        (Some(t), _) => crate::auth::Presented::Token(t),
        (None, Some((user, pass))) => crate::auth::Presented::Credentials { user, pass },
        (None, None) => crate::auth::Presented::Nothing,
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
    let filter = match Filter::parse(request.uri().query().unwrap_or("")) {
        Ok(f) => f,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let mut r = Response::new(axum::body::Body::from(render_filtered(&app, &filter).text));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    r
}

/// The whole scrape, in the OpenMetrics text format.
pub fn render(app: &App) -> String {
    render_filtered(app, &Filter::default()).into_string()
}

fn render_filtered(app: &App, filter: &Filter) -> Rendered {
    let mut s = Scrape::new(filter);
    paths(app, &mut s, filter);
    if filter.wants(Group::Process) {
        s.group = Group::Process;
        process(&mut s);
    }
    s.finish()
}

/// A group of series `/metrics?type=` names: MediaMTX's (`paths`, `rtsp_sessions`...) and camrelay's
/// own (`camrelay`: the `camrelay_*` series; `process`).
#[derive(Clone, Copy, PartialEq)]
enum Group {
    Paths,
    HlsMuxers,
    /// MediaMTX groups camrelay has no series of (HLS sessions, forward destinations, MoQ): valid
    /// names that select nothing.
    Empty,
    Session(Kind),
    Camrelay,
    Process,
}

/// MediaMTX's `/metrics` filters: `type=` one group, `path=` one path's series (its `paths*` and
/// camrelay's per-stream series), `hls_muxer=PATH`, and one connection or session by id
/// (`rtsp_conn=`, `rtsp_session=`, `rtsps_conn=`, `rtsps_session=`, `rtmp_conn=`, `rtmps_conn=`,
/// `webrtc_session=`, `srt_conn=`). With any of the latter, only the groups they name are written (as MediaMTX
/// does). Narrow scrapes are how a frequent poller avoids every reader's series.
#[derive(Default)]
struct Filter {
    group: Option<Group>,
    path: Option<String>,
    hls_muxer: Option<String>,
    /// At most one id per session kind.
    ids: Vec<(Kind, String)>,
}

const SESSION_FILTERS: [(&str, &str, Kind); 8] = [
    ("rtsp_conns", "rtsp_conn", Kind::RtspConn),
    ("rtsp_sessions", "rtsp_session", Kind::RtspSession),
    ("rtsps_conns", "rtsps_conn", Kind::RtspsConn),
    ("rtsps_sessions", "rtsps_session", Kind::RtspsSession),
    ("rtmp_conns", "rtmp_conn", Kind::RtmpConn),
    ("rtmps_conns", "rtmps_conn", Kind::RtmpsConn),
    ("webrtc_sessions", "webrtc_session", Kind::WebrtcSession),
    ("srt_conns", "srt_conn", Kind::SrtConn),
];

impl Filter {
    fn parse(query: &str) -> Result<Filter, String> {
        let mut filter = Filter::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            let value = rtsp::url::percent_decode(&value.replace('+', " "));
            match key {
                "type" => {
                    filter.group = Some(match value.as_str() {
                        "" => continue,
                        "paths" => Group::Paths,
                        "hls_muxers" => Group::HlsMuxers,
                        "hls_sessions" | "forward_dests" | "moq_sessions" => Group::Empty,
                        "camrelay" => Group::Camrelay,
                        "process" => Group::Process,
                        other => match SESSION_FILTERS.iter().find(|(name, _, _)| *name == other) {
                            Some((_, _, kind)) => Group::Session(*kind),
                            None => return Err(format!("invalid type {other:?}")),
                        },
                    })
                }
                "path" if !value.is_empty() => filter.path = Some(value),
                "hls_muxer" if !value.is_empty() => filter.hls_muxer = Some(value),
                key => {
                    if let Some((_, _, kind)) = SESSION_FILTERS.iter().find(|(_, k, _)| *k == key) {
                        if !value.is_empty() {
                            filter.ids.retain(|(k, _)| k != kind);
                            filter.ids.push((*kind, value));
                        }
                    }
                    // Other keys (`jwt`...) are not filters.
                }
            }
        }
        Ok(filter)
    }

    fn any_item_filter(&self) -> bool {
        self.path.is_some() || self.hls_muxer.is_some() || !self.ids.is_empty()
    }

    /// Whether the group's series are written at all.
    fn wants(&self, group: Group) -> bool {
        if self.group.is_some_and(|g| g != group) {
            return false;
        }
        match group {
            Group::Paths | Group::Camrelay => !self.any_item_filter() || self.path.is_some(),
            Group::HlsMuxers => !self.any_item_filter() || self.hls_muxer.is_some(),
            Group::Session(kind) => !self.any_item_filter() || self.ids.iter().any(|(k, _)| *k == kind),
            Group::Empty | Group::Process => !self.any_item_filter(),
        }
    }

    /// Whether a stream's series (of the groups that filter by path) are written.
    fn wants_path(&self, name: &str) -> bool {
        self.path.as_deref().is_none_or(|p| p == name)
    }

    /// Whether one session's series are written; `ids` gives its (connection, session) ids, made only
    /// when an id filter needs them.
    fn wants_session(&self, kind: Kind, ids: impl FnOnce() -> (String, String)) -> bool {
        if !self.wants(Group::Session(kind)) {
            return false;
        }
        let Some((_, want)) = self.ids.iter().find(|(k, _)| *k == kind) else { return true };
        let (conn, session) = ids();
        let id = if matches!(kind, Kind::RtspConn | Kind::RtspsConn) { conn } else { session };
        *want == id
    }
}

/// A family's type: counters get `_total` on their samples.
#[derive(Clone, Copy, PartialEq)]
enum Type {
    Gauge,
    Counter,
}

/// One metric family: its HELP/TYPE lines, then its samples' lines, written as they are found.
struct Family {
    /// `name{` (`name_total{` for counters): each sample's line starts with it, in one copy.
    open: String,
    /// The family's text (HELP and TYPE first); empty (and unallocated) when not shown.
    body: BytesMut,
    group: Group,
    /// The scrape's filter wants this family ([`Filter::wants`]); else it is left out.
    shown: bool,
    /// Samples are taken now (false while the scrape walks a stream the filter leaves out).
    active: bool,
}

impl Family {
    /// A sample: `labels` is the rendered label text (`k="v",k2="v2"`, escaped; may be empty).
    fn int(&mut self, labels: &str, value: u64) {
        if !self.active {
            return;
        }
        self.head(labels, None);
        push_u64_line(&mut self.body, value);
    }

    /// A sample with one label more than `labels`.
    fn int_with(&mut self, labels: &str, key: &str, value: &str, v: u64) {
        if !self.active {
            return;
        }
        self.head(labels, Some((key, value)));
        push_u64_line(&mut self.body, v);
    }

    fn float(&mut self, labels: &str, value: f64) {
        if !self.active {
            return;
        }
        self.head(labels, None);
        push_f64(&mut self.body, value);
        self.body.put_u8(b'\n');
    }

    /// `name{labels} ` (with `_total` for counters).
    fn head(&mut self, labels: &str, extra: Option<(&str, &str)>) {
        let b = &mut self.body;
        if labels.is_empty() && extra.is_none() {
            b.extend_from_slice(&self.open.as_bytes()[..self.open.len() - 1]);
            b.put_u8(b' ');
        } else {
            b.reserve(self.open.len() + labels.len() + 24);
            b.extend_from_slice(self.open.as_bytes());
            b.extend_from_slice(labels.as_bytes());
            if let Some((k, v)) = extra {
                if !labels.is_empty() {
                    b.put_u8(b',');
                }
                b.extend_from_slice(k.as_bytes());
                b.extend_from_slice(b"=\"");
                if v.contains(['\\', '"', '\n']) {
                    let mut escaped = String::new();
                    escape_into(&mut escaped, v);
                    b.extend_from_slice(escaped.as_bytes());
                } else {
                    b.extend_from_slice(v.as_bytes());
                }
                b.put_u8(b'"');
            }
            b.extend_from_slice(b"} ");
        }
    }
}

/// The families of one scrape, in the order they are added. Each shown family's buffer is kept for the
/// next scrape ([`SPARE_BUFFERS`]), with the size it reached, as is the buffer they are joined in
/// ([`SPARE_TEXT`]): a scrape allocates nothing once the previous one had the same size.
struct Scrape<'f> {
    families: Vec<Family>,
    /// The last scrape's buffers by family index, with the length of the text each held.
    spare: Vec<Option<(BytesMut, usize)>>,
    filter: &'f Filter,
    /// The group of the families added next.
    group: Group,
}

/// The buffers of the last scrape, by family index (a concurrent scrape starts with new ones). Families
/// are added in the same order by every scrape, whatever the filter.
#[allow(clippy::type_complexity)]
static SPARE_BUFFERS: std::sync::Mutex<Vec<Option<(BytesMut, usize)>>> = std::sync::Mutex::new(Vec::new());

/// The buffer the last scrape's text was sent from, and its length: the next scrape writes into the same
/// memory once that response has gone (a concurrent scrape takes a new one).
static SPARE_TEXT: std::sync::Mutex<Option<(BytesMut, usize)>> = std::sync::Mutex::new(None);

/// A scrape's text, sent as one `Bytes` (one `writev` with the head: several body chunks cost hyper
/// more per chunk than copying them into one buffer does).
pub struct Rendered {
    text: Bytes,
}

impl Rendered {
    /// The text as one string (tests; the server sends the bytes as they are).
    pub fn into_string(self) -> String {
        String::from_utf8(self.text.to_vec()).unwrap_or_default()
    }
}

impl<'f> Scrape<'f> {
    fn new(filter: &'f Filter) -> Scrape<'f> {
        let spare = std::mem::take(&mut *SPARE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner()));
        Scrape { families: Vec::with_capacity(spare.len().max(128)), spare, filter, group: Group::Paths }
    }

    /// Takes samples of the per-path groups only for the path `name` (a `path=`/`hls_muxer=` filter).
    fn select_path(&mut self, name: &str) {
        let filter = self.filter;
        for f in &mut self.families {
            f.active = f.shown
                && match f.group {
                    Group::Paths | Group::Camrelay => filter.wants_path(name),
                    Group::HlsMuxers => filter.hls_muxer.as_deref().is_none_or(|m| m == name),
                    _ => true,
                };
        }
    }

    /// Adds a family; returns its index for [`Scrape::f`]. A family the filter leaves out gets no buffer.
    fn family(&mut self, name: &'static str, help: &'static str, kind: Type) -> usize {
        let i = self.families.len();
        let shown = self.filter.wants(self.group);
        let mut body = BytesMut::new();
        if shown {
            let (mut spare, last) = self.spare.get_mut(i).and_then(Option::take).unwrap_or_default();
            spare.clear();
            spare.reserve(last.max(64 + name.len() * 2 + help.len()));
            body = spare;
            body.extend_from_slice(b"# HELP ");
            body.extend_from_slice(name.as_bytes());
            body.put_u8(b' ');
            body.extend_from_slice(help.as_bytes());
            body.extend_from_slice(b"\n# TYPE ");
            body.extend_from_slice(name.as_bytes());
            body.extend_from_slice(if kind == Type::Counter { b" counter\n" } else { b" gauge\n" });
        }
        let open = format!("{name}{}{{", if kind == Type::Counter { "_total" } else { "" });
        self.families.push(Family { open, body, group: self.group, shown, active: shown });
        i
    }

    fn gauge(&mut self, name: &'static str, help: &'static str) -> usize {
        self.family(name, help, Type::Gauge)
    }

    fn counter(&mut self, name: &'static str, help: &'static str) -> usize {
        self.family(name, help, Type::Counter)
    }

    fn f(&mut self, i: usize) -> &mut Family {
        &mut self.families[i]
    }

    /// The text: each shown family (HELP, TYPE, samples), then `# EOF`.
    fn finish(self) -> Rendered {
        let size: usize = self.families.iter().map(|f| f.body.len()).sum::<usize>() + 6;
        let (mut out, _) = SPARE_TEXT.lock().unwrap_or_else(|e| e.into_inner()).take().unwrap_or_default();
        // Takes back the memory the last scrape's text was sent from, if that response has gone.
        out.reserve(size);
        let mut spare = Vec::with_capacity(self.families.len());
        for mut f in self.families {
            if !f.shown {
                spare.push(None);
                continue;
            }
            out.extend_from_slice(&f.body);
            let len = f.body.len();
            f.body.clear();
            spare.push(Some((f.body, len)));
        }
        out.extend_from_slice(b"# EOF\n");
        let text = out.split().freeze();
        *SPARE_TEXT.lock().unwrap_or_else(|e| e.into_inner()) = Some((out, text.len()));
        *SPARE_BUFFERS.lock().unwrap_or_else(|e| e.into_inner()) = spare;
        Rendered { text }
    }
}

/// Appends `v` in decimal.
fn push_u64(out: &mut BytesMut, v: u64) {
    let mut digits = [0u8; 20];
    let i = decimal(&mut digits, v);
    out.extend_from_slice(&digits[i..]);
}

/// Appends `v` in decimal and a newline, in one copy.
fn push_u64_line(out: &mut BytesMut, v: u64) {
    let mut digits = [b'\n'; 21];
    let i = decimal(&mut digits[..20], v);
    out.extend_from_slice(&digits[i..]);
}

/// Writes `v`'s digits at the end of `digits`; returns where they start.
fn decimal(digits: &mut [u8], mut v: u64) -> usize {
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            return i;
        }
    }
}

/// Appends `v` as the text format writes floats (`3.0`, `0.25`, `NaN`, `+Inf`); whole numbers (most
/// figures: 0 jitter, seconds) without going through `fmt`.
fn push_f64(out: &mut BytesMut, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        if v < 0.0 || (v == 0.0 && v.is_sign_negative()) {
            out.put_u8(b'-');
        }
        push_u64(out, v.abs() as u64);
        out.extend_from_slice(b".0");
    } else {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = write!(s, "{v:?}");
        out.extend_from_slice(s.as_bytes());
    }
}

/// Appends a label value escaped as the text format wants (`\\`, `\"`, `\n`).
fn escape_into(out: &mut String, v: &str) {
    if !v.contains(['\\', '"', '\n']) {
        out.push_str(v);
        return;
    }
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Rendered label text of `pairs`: `k="v",k2="v2"`.
fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    add_labels(&mut out, pairs);
    out
}

/// Appends `pairs` to the label text `out`.
fn add_labels(out: &mut String, pairs: &[(&str, &str)]) {
    for (k, v) in pairs {
        if !out.is_empty() {
            out.push(',');
        }
        out.push_str(k);
        out.push_str("=\"");
        escape_into(out, v);
        out.push('"');
    }
}

/// What the scrape writes for one reader, rendered once per reader (and again if its protocol
/// changes): the label texts of its series.
struct ReaderLabels {
    /// The reader's `protocol_changes` when these were made.
    protocol_changes: u64,
    /// MediaMTX's session kind of the reader, if it has one.
    session: Option<Kind>,
    /// MediaMTX's reader type (`rtspSession`...), for `paths_readers`.
    reader_type: Option<&'static str>,
    /// `id` of its RTSP connection (`rtsp_conns*`).
    conn_labels: String,
    /// `id`, `state`, `path`, `remoteAddr` of its session (`rtsp_sessions*`, `webrtc_sessions*`...).
    session_labels: String,
    /// `name` (`hls_muxers*`).
    hls_labels: String,
    /// `stream`, `id`, `protocol`, `remote_addr` (`camrelay_reader_*`).
    reader_labels: String,
    /// The scrape that saw it last ([`READER_LABELS`] forgets readers gone since).
    seen: u64,
}

impl ReaderLabels {
    fn new(stream: &str, r: &ReaderShared, protocol: &str) -> ReaderLabels {
        let (conn_id, session_id) = v3::reader_ids(r.id);
        let session = session_kind(protocol);
        let reader_type = reader_type(protocol);
        let id = r.id.to_string();
        ReaderLabels {
            protocol_changes: 0,
            session,
            reader_type,
            conn_labels: labels(&[("id", &conn_id)]),
            session_labels: labels(&[
                ("id", &session_id),
                ("state", "read"),
                ("path", stream),
                ("remoteAddr", &r.remote_addr),
            ]),
            hls_labels: labels(&[("name", stream)]),
            reader_labels: labels(&[
                ("stream", stream),
                ("id", &id),
                ("protocol", protocol),
                ("remote_addr", &r.remote_addr),
            ]),
            seen: 0,
        }
    }
}

/// MediaMTX's reader type (`paths_readers`' `readerType`) of a protocol.
fn reader_type(protocol: &str) -> Option<&'static str> {
    match protocol.split('+').next().unwrap_or("") {
        "rtsp" => Some("rtspSession"),
        "rtsps" => Some("rtspsSession"),
        "webrtc" => Some("webRTCSession"),
        "hls" => Some("hlsMuxer"),
        _ => None,
    }
}

/// The connection kind that goes with an RTSP(S) session (MediaMTX lists both).
fn conn_kind(session: Kind) -> Option<Kind> {
    match session {
        Kind::RtspSession => Some(Kind::RtspConn),
        Kind::RtspsSession => Some(Kind::RtspsConn),
        _ => None,
    }
}

/// MediaMTX's session kind of a protocol (`rtsp+tcp` is an RTSP session, and a connection).
fn session_kind(protocol: &str) -> Option<Kind> {
    match protocol.split('+').next().unwrap_or("") {
        "rtsp" => Some(Kind::RtspSession),
        "rtsps" => Some(Kind::RtspsSession),
        "webrtc" => Some(Kind::WebrtcSession),
        "rtmp" => Some(Kind::RtmpConn),
        "rtmps" => Some(Kind::RtmpsConn),
        "srt" => Some(Kind::SrtConn),
        _ => None,
    }
}

/// Rendered labels of every reader the last scrapes saw, by reader id (ids are unique in the process).
static READER_LABELS: std::sync::Mutex<Option<ReaderCache>> = std::sync::Mutex::new(None);

/// Reader ids are unique and sequential: used as their own hash (SipHash of 500 ids took a fifth of a
/// scrape's rendering).
type ById<V> = std::collections::HashMap<u64, V, nohash_hasher::BuildNoHashHasher<u64>>;

#[derive(Default)]
struct ReaderCache {
    by_id: ById<ReaderLabels>,
    scrape: u64,
}

impl ReaderCache {
    /// The labels of `r`, reading `stream`: made on first sight or when its protocol changed (the
    /// reader's `protocol` is locked only then, not at every scrape).
    fn get(&mut self, stream: &str, r: &ReaderShared) -> &ReaderLabels {
        let scrape = self.scrape;
        // Read before the protocol: a change after this is seen at the next scrape.
        let changes = r.protocol_changes.load(std::sync::atomic::Ordering::Acquire);
        let make = || {
            let protocol = r.protocol.lock().unwrap_or_else(|e| e.into_inner());
            ReaderLabels { protocol_changes: changes, ..ReaderLabels::new(stream, r, &protocol) }
        };
        let labels = match self.by_id.entry(r.id) {
            std::collections::hash_map::Entry::Occupied(e) => {
                let l = e.into_mut();
                if l.protocol_changes != changes {
                    *l = make();
                }
                l
            }
            std::collections::hash_map::Entry::Vacant(e) => e.insert(make()),
        };
        labels.seen = scrape;
        labels
    }
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
    /// MediaMTX's RTP/RTCP series (RTSP sessions only).
    rtp: Option<&'static RtpSeries>,
}

/// MediaMTX's RTP/RTCP series of an RTSP session, and whether each applies to a publisher (inbound) or a
/// reader (outbound, and the RTCP it sends us). The order is [`SessionFamilies::write_rtp`]'s.
type RtpSeries = [(&'static str, &'static str, Side); 8];

/// The RTP/RTCP series of one RTSP flavour's sessions, named after its prefix.
macro_rules! rtp_series {
    ($prefix:literal) => {
        [
            (concat!($prefix, "_inbound_rtp_packets"), "RTP packets received", Side::Publisher),
            (
                concat!($prefix, "_inbound_rtp_packets_lost"),
                "RTP packets lost (sequence gaps, RFC 3550)",
                Side::Publisher,
            ),
            (concat!($prefix, "_inbound_rtp_packets_in_error"), "RTP packets that could not be read", Side::Publisher),
            (
                concat!($prefix, "_inbound_rtp_packets_jitter"),
                "Interarrival jitter in RTP timestamp units, mean of the medias",
                Side::Publisher,
            ),
            (concat!($prefix, "_inbound_rtcp_packets"), "RTCP packets received", Side::Both),
            (concat!($prefix, "_inbound_rtcp_packets_in_error"), "RTCP packets that could not be read", Side::Both),
            (
                concat!($prefix, "_outbound_rtp_packets_reported_lost"),
                "RTP packets the reader reported lost",
                Side::Reader,
            ),
            (concat!($prefix, "_outbound_rtcp_packets"), "RTCP packets sent", Side::Reader),
        ]
    };
}

const RTSP_SESSIONS_RTP_SERIES: RtpSeries = rtp_series!("rtsp_sessions");
const RTSPS_SESSIONS_RTP_SERIES: RtpSeries = rtp_series!("rtsps_sessions");

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Publisher,
    Reader,
    Both,
}

const SESSION_SERIES: [SessionSeries; 8] = [
    SessionSeries {
        kind: Kind::RtspConn,
        count: "rtsp_conns",
        inbound: "rtsp_conns_inbound_bytes",
        outbound: "rtsp_conns_outbound_bytes",
        packets: None,
        discarded: None,
        received: "rtsp_conns_bytes_received",
        sent: "rtsp_conns_bytes_sent",
        rtp: None,
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
        rtp: Some(&RTSP_SESSIONS_RTP_SERIES),
    },
    SessionSeries {
        kind: Kind::RtspsConn,
        count: "rtsps_conns",
        inbound: "rtsps_conns_inbound_bytes",
        outbound: "rtsps_conns_outbound_bytes",
        packets: None,
        discarded: None,
        received: "rtsps_conns_bytes_received",
        sent: "rtsps_conns_bytes_sent",
        rtp: None,
    },
    SessionSeries {
        kind: Kind::RtspsSession,
        count: "rtsps_sessions",
        inbound: "rtsps_sessions_inbound_bytes",
        outbound: "rtsps_sessions_outbound_bytes",
        packets: Some("rtsps_sessions_outbound_rtp_packets"),
        discarded: Some("rtsps_sessions_outbound_rtp_packets_discarded"),
        received: "rtsps_sessions_bytes_received",
        sent: "rtsps_sessions_bytes_sent",
        rtp: Some(&RTSPS_SESSIONS_RTP_SERIES),
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
        rtp: None,
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
        rtp: None,
    },
    SessionSeries {
        kind: Kind::SrtConn,
        count: "srt_conns",
        inbound: "srt_conns_inbound_bytes",
        outbound: "srt_conns_outbound_bytes",
        packets: None,
        discarded: Some("srt_conns_outbound_frames_discarded"),
        received: "srt_conns_bytes_received",
        sent: "srt_conns_bytes_sent",
        rtp: None,
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
        rtp: None,
    },
];

/// The families of one [`SessionSeries`] (indexes into the scrape).
struct SessionFamilies {
    count: usize,
    inbound: usize,
    outbound: usize,
    packets: Option<usize>,
    discarded: Option<usize>,
    received: usize,
    sent: usize,
    rtp: Option<([usize; 8], &'static RtpSeries)>,
    /// SRT connections: one family per SRT statistic ([`srt::stats_fields`]), `received` and `sent`
    /// among them (SRT's byte counts, as MediaMTX's `srt_conns_bytes_*`).
    srt: Option<Vec<usize>>,
}

impl SessionFamilies {
    /// One RTSP session's RTP/RTCP samples: those of its side.
    fn write_rtp(&self, s: &mut Scrape, labels: &str, rtp: &RtpCounters, publisher: bool) {
        let Some((families, series)) = self.rtp else { return };
        let values = [
            RtpCounters::get(&rtp.inbound_rtp_packets),
            RtpCounters::get(&rtp.inbound_rtp_lost),
            RtpCounters::get(&rtp.inbound_rtp_in_error),
            0,
            RtpCounters::get(&rtp.inbound_rtcp_packets),
            RtpCounters::get(&rtp.inbound_rtcp_in_error),
            RtpCounters::get(&rtp.outbound_rtp_reported_lost),
            RtpCounters::get(&rtp.outbound_rtcp_packets),
        ];
        for (i, (&family, (_, _, side))) in families.iter().zip(series.iter()).enumerate() {
            let applies = match side {
                Side::Both => true,
                Side::Publisher => publisher,
                Side::Reader => !publisher,
            };
            if !applies {
                continue;
            }
            if i == 3 {
                s.f(family).float(labels, rtp.jitter());
            } else {
                s.f(family).int(labels, values[i]);
            }
        }
    }

    /// One SRT connection's statistics (zero before srt-protocol's first report), as `/v3/srtconns`.
    fn write_srt(&self, s: &mut Scrape, labels: &str, publisher: bool, id: u64) {
        let Some(families) = &self.srt else { return };
        let stats = srt::stats(publisher, id).unwrap_or_default();
        for (&family, (_, _, value)) in families.iter().zip(srt::stats_fields(&stats)) {
            match value {
                srt::StatValue::Int(n) => s.f(family).int(labels, n),
                srt::StatValue::Float(f) => s.f(family).float(labels, f),
            }
        }
    }

    /// One session's samples.
    fn write(&self, s: &mut Scrape, labels: &str, inbound: u64, outbound: u64, packets: u64, dropped: u64) {
        s.f(self.count).int(labels, 1);
        s.f(self.inbound).int(labels, inbound);
        s.f(self.outbound).int(labels, outbound);
        if let Some(p) = self.packets {
            s.f(p).int(labels, packets);
        }
        if let Some(d) = self.discarded {
            s.f(d).int(labels, dropped);
        }
        if self.srt.is_none() {
            s.f(self.received).int(labels, inbound);
            s.f(self.sent).int(labels, outbound);
        }
    }
}

/// Every series made from the streams, in one pass over them: MediaMTX's `paths*`, `hls_muxers*` and
/// per-session series, and camrelay's per-source, per-track and per-reader series.
fn paths(app: &App, s: &mut Scrape, filter: &Filter) {
    s.group = Group::Paths;
    // MediaMTX's.
    let paths = s.gauge("paths", "Paths (streams); 1 per path");
    let readers = s.gauge("paths_readers", "Readers of a path by MediaMTX reader type");
    let inbound = s.gauge("paths_inbound_bytes", "Bytes received by a path from its sources");
    let outbound = s.gauge("paths_outbound_bytes", "Bytes sent by a path to its readers");
    let in_error = s.gauge("paths_inbound_frames_in_error", "Frames of a path that could not be decoded");
    let received = s.gauge("paths_bytes_received", "Deprecated: paths_inbound_bytes");
    let sent = s.gauge("paths_bytes_sent", "Deprecated: paths_outbound_bytes");
    s.group = Group::HlsMuxers;
    let hls = [
        s.gauge("hls_muxers", "HLS muxers; 1 per muxer"),
        s.gauge("hls_muxers_outbound_bytes", "Bytes an HLS muxer sent"),
        s.gauge("hls_muxers_outbound_frames_discarded", "Frames an HLS muxer dropped"),
        s.gauge("hls_muxers_bytes_sent", "Deprecated: hls_muxers_outbound_bytes"),
    ];
    let mut sessions: Vec<SessionFamilies> = SESSION_SERIES
        .iter()
        .map(|series| {
            s.group = Group::Session(series.kind);
            SessionFamilies {
                count: s.gauge(series.count, "Connections or sessions of the protocol; 1 each"),
                inbound: s.gauge(series.inbound, "Bytes received"),
                outbound: s.gauge(series.outbound, "Bytes sent"),
                packets: series.packets.map(|n| s.gauge(n, "RTP packets sent")),
                discarded: series.discarded.map(|n| s.gauge(n, "Frames or packets dropped (slow reader)")),
                received: s.gauge(series.received, "Deprecated: *_inbound_bytes"),
                sent: s.gauge(series.sent, "Deprecated: *_outbound_bytes"),
                rtp: series.rtp.map(|rtp| (rtp.map(|(name, help, _)| s.gauge(name, help)), rtp)),
                srt: None,
            }
        })
        .collect();
    if let Some(f) = sessions.iter_mut().zip(SESSION_SERIES).find(|(_, series)| series.kind == Kind::SrtConn) {
        let (families, series) = f;
        s.group = Group::Session(Kind::SrtConn);
        let list = srt::stats_fields(&Default::default())
            .into_iter()
            .map(|(_, name, _)| match name {
                n if n == series.received => families.received,
                n if n == series.sent => families.sent,
                n => s.gauge(n, "SRT statistics of the connection (as /v3/srtconns)"),
            })
            .collect();
        families.srt = Some(list);
    }
    let families_of = |kind: Kind| SESSION_SERIES.iter().position(|series| series.kind == kind);
    // camrelay's.
    s.group = Group::Camrelay;
    let info = s.gauge("camrelay_build_info", "camrelay's version; always 1");
    if !filter.any_item_filter() {
        s.f(info).int(&labels(&[("version", env!("CARGO_PKG_VERSION"))]), 1);
    }
    let source_state = s.gauge("camrelay_source_state", "A source's state (label state); always 1");
    let online = s.gauge("camrelay_source_online", "1 while a source delivers media");
    let reconnects = s.counter("camrelay_source_reconnects", "Times a pulled source came back online");
    let errors = s.gauge("camrelay_source_last_error", "1 for a source's last error kind");
    let frames = s.counter("camrelay_track_frames", "Frames a track received");
    let track_bytes = s.counter("camrelay_track_bytes", "Bytes a track received");
    let track_readers = s.gauge("camrelay_track_readers", "Readers of a track");
    let keyframes = s.counter("camrelay_track_keyframes", "Keyframes a video track received");
    let gop = s.gauge("camrelay_track_keyframe_interval_seconds", "Time between a video track's last two keyframes");
    let stream_readers = s.gauge("camrelay_stream_readers", "Readers of a stream");
    let reader_bytes = s.counter("camrelay_reader_sent_bytes", "Bytes sent to a reader");
    let reader_packets = s.counter("camrelay_reader_sent_packets", "Packets or frames sent to a reader");
    let reader_dropped =
        s.counter("camrelay_reader_dropped_frames", "Frames dropped for a reader (slow reader, resync)");
    let resyncs =
        s.counter("camrelay_reader_resyncs", "Times a reader's queue overflowed and it skipped to the next keyframe");
    let queued = s.gauge("camrelay_reader_queue_frames", "Frames waiting in a reader's queue (readers with a queue)");

    let mut cache = READER_LABELS.lock().unwrap_or_else(|e| e.into_inner());
    let cache = cache.get_or_insert_with(ReaderCache::default);
    cache.scrape += 1;
    let mut depths = ById::<usize>::default();
    let sessions_wanted = SESSION_SERIES.iter().any(|series| filter.wants(Group::Session(series.kind)));
    // Per-reader series at all? A narrow scrape (`type=paths`) only counts readers and their bytes.
    let reader_detail = sessions_wanted || filter.wants(Group::Camrelay) || filter.wants(Group::HlsMuxers);
    for stream in v3::public_streams(app) {
        if filter.path.as_deref().is_some_and(|p| p != stream.name) && !sessions_wanted {
            continue;
        }
        s.select_path(&stream.name);
        let producers = stream.producers();
        let ready = producers.iter().any(|p| p.state() == ProducerState::Online && !p.tracks().is_empty());
        let state = if ready { "ready" } else { "notReady" };
        let path_labels = labels(&[("name", &stream.name), ("state", state)]);
        let stream_labels = labels(&[("stream", &stream.name)]);
        s.f(paths).int(&path_labels, 1);

        // Sources, their tracks, and publishers' sessions.
        depths.clear();
        let mut bytes_in = 0;
        for p in &producers {
            let url = p.masked_url();
            let id = p.id.to_string();
            let l = labels(&[("stream", &stream.name), ("source", &url), ("id", &id)]);
            let state = p.state();
            s.f(source_state).int_with(&l, "state", state.as_str(), 1);
            s.f(online).int(&l, u64::from(state == ProducerState::Online));
            if !p.is_pushed() {
                s.f(reconnects).int(&l, p.reconnects());
            }
            if let Some(kind) = p.last_error_kind() {
                s.f(errors).int_with(&l, "kind", kind.as_str(), 1);
            }
            let mut producer_in = 0;
            for t in p.tracks() {
                let mut tl = l.clone();
                let track_id = t.id.to_string();
                let codec = t.codec.name.to_ascii_lowercase();
                add_labels(&mut tl, &[("track", &track_id), ("media", &t.kind.to_string()), ("codec", &codec)]);
                let (n, b) = (t.frames.load(Relaxed), t.bytes.load(Relaxed));
                producer_in += b;
                s.f(frames).int(&tl, n);
                s.f(track_bytes).int(&tl, b);
                s.f(track_readers).int(&tl, t.reader_count() as u64);
                if t.kind == media::Kind::Video {
                    s.f(keyframes).int(&tl, t.keyframes.load(Relaxed));
                    let ticks = t.keyframe_interval.load(Relaxed) as f64;
                    s.f(gop).float(&tl, ticks / f64::from(t.codec.clock_rate.max(1)));
                }
                if reader_detail {
                    for (reader, depth) in t.queue_depths() {
                        *depths.entry(reader).or_insert(0) += depth;
                    }
                }
            }
            bytes_in += producer_in;
            if let ProducerKind::Pushed { protocol, remote_addr } = &p.kind {
                let Some(kind) = session_kind(protocol) else { continue };
                let ids = || v3::publisher_ids(p.id);
                let (want_session, want_conn) = (
                    filter.wants_session(kind, ids),
                    conn_kind(kind).is_some_and(|conn| filter.wants_session(conn, ids)),
                );
                if !want_session && !want_conn {
                    continue;
                }
                let (conn_id, session_id) = ids();
                let session_labels = labels(&[
                    ("id", &session_id),
                    ("state", "publish"),
                    ("path", &stream.name),
                    ("remoteAddr", remote_addr),
                ]);
                if let Some(i) = families_of(kind).filter(|_| want_session) {
                    sessions[i].write(s, &session_labels, producer_in, 0, 0, 0);
                    sessions[i].write_rtp(s, &session_labels, &p.rtp, true);
                    sessions[i].write_srt(s, &session_labels, true, p.id);
                }
                if let Some(i) = conn_kind(kind).and_then(families_of).filter(|_| want_conn) {
                    sessions[i].write(s, &labels(&[("id", &conn_id)]), producer_in, 0, 0, 0);
                }
            }
        }

        // Readers, read under their list's lock (no copy of the list; one stream at a time).
        let (reader_count, bytes_out, by_type) = stream.with_readers(|list| {
            let mut by_type = [("hlsMuxer", 0u64), ("rtspSession", 0), ("rtspsSession", 0), ("webRTCSession", 0)];
            let mut bytes_out = 0;
            for r in list {
                let l = cache.get(&stream.name, r);
                let b = r.bytes_sent.load(Relaxed);
                bytes_out += b;
                if let Some(t) = l.reader_type {
                    if let Some(n) = by_type.iter_mut().find(|(name, _)| *name == t) {
                        n.1 += 1;
                    }
                }
                if !reader_detail {
                    continue;
                }
                let (packets, dropped) = (r.packets_sent.load(Relaxed), r.dropped.load(Relaxed));
                if let Some(kind) = l.session {
                    let ids = || v3::reader_ids(r.id);
                    if let Some(i) = families_of(kind).filter(|_| filter.wants_session(kind, ids)) {
                        sessions[i].write(s, &l.session_labels, 0, b, packets, dropped);
                        sessions[i].write_rtp(s, &l.session_labels, &r.rtp, false);
                        sessions[i].write_srt(s, &l.session_labels, false, r.id);
                    }
                    if let Some(i) = conn_kind(kind).filter(|c| filter.wants_session(*c, ids)).and_then(families_of) {
                        sessions[i].write(s, &l.conn_labels, 0, b, packets, dropped);
                    }
                }
                if l.reader_type == Some("hlsMuxer") {
                    s.f(hls[0]).int(&l.hls_labels, 1);
                    s.f(hls[1]).int(&l.hls_labels, b);
                    s.f(hls[2]).int(&l.hls_labels, dropped);
                    s.f(hls[3]).int(&l.hls_labels, b);
                }
                let rl = &l.reader_labels;
                s.f(reader_bytes).int(rl, b);
                s.f(reader_packets).int(rl, packets);
                s.f(reader_dropped).int(rl, dropped);
                s.f(resyncs).int(rl, r.resyncs.load(Relaxed));
                if let Some(depth) = depths.get(&r.id) {
                    s.f(queued).int(rl, *depth as u64);
                }
            }
            (list.len(), bytes_out, by_type)
        });
        s.f(stream_readers).int(&stream_labels, reader_count as u64);
        if by_type.iter().all(|(_, n)| *n == 0) {
            s.f(readers).int_with(&path_labels, "readerType", "", 0);
        }
        for (t, n) in by_type {
            if n > 0 {
                s.f(readers).int_with(&path_labels, "readerType", t, n);
            }
        }
        s.f(inbound).int(&path_labels, bytes_in);
        s.f(outbound).int(&path_labels, bytes_out);
        s.f(in_error).int(&path_labels, v3::frames_in_error(&producers));
        s.f(received).int(&path_labels, bytes_in);
        s.f(sent).int(&path_labels, bytes_out);
    }
    let scrape = cache.scrape;
    cache.by_id.retain(|_, l| l.seen == scrape);
}

/// The process series Prometheus' own clients export: CPU time from `getrusage` at every scrape, the
/// rest from `/proc/self/stat` read at most once a second ([`proc_stat`]).
fn process(s: &mut Scrape) {
    let Some(p) = proc_stat() else { return };
    let cpu = s.counter("process_cpu_seconds", "User and system CPU time spent in seconds");
    s.f(cpu).float("", cpu_seconds().unwrap_or(p.cpu_seconds));
    let rss = s.gauge("process_resident_memory_bytes", "Resident memory size in bytes");
    s.f(rss).int("", p.rss_bytes);
    let vsize = s.gauge("process_virtual_memory_bytes", "Virtual memory size in bytes");
    s.f(vsize).int("", p.vsize_bytes);
    let threads = s.gauge("process_threads", "OS threads");
    s.f(threads).int("", p.threads);
    let start = s.gauge("process_start_time_seconds", "Start time since the epoch in seconds");
    s.f(start).float("", p.start_time_seconds);
    let fds = s.gauge("process_open_fds", "Open file descriptors");
    s.f(fds).int("", open_fds() as u64);
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

/// User and system CPU time of the whole process (every thread, live or gone), in seconds.
fn cpu_seconds() -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the pointer it is given, which points at one.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialized (zeroed, then written by the successful call).
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

/// `/proc/self/stat`, read at most once a second: opening and reading it costs the kernel a path
/// lookup and a walk over the threads, more than the rest of a narrow scrape.
fn proc_stat() -> Option<ProcStat> {
    static LAST: std::sync::Mutex<Option<(std::time::Instant, ProcStat)>> = std::sync::Mutex::new(None);
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    match &*last {
        Some((at, p)) if at.elapsed() < std::time::Duration::from_secs(1) => Some(p.clone()),
        _ => {
            let p = ProcStat::read()?;
            *last = Some((std::time::Instant::now(), p.clone()));
            Some(p)
        }
    }
}

/// What `/proc/self/stat` says of this process.
#[derive(Clone)]
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
    fn filters_are_mediamtx_query_parameters() {
        let f = Filter::parse("type=rtsp_sessions&jwt=x").unwrap();
        assert!(f.wants(Group::Session(Kind::RtspSession)) && !f.wants(Group::Paths) && !f.wants(Group::Process));
        let f = Filter::parse("path=cam%201").unwrap();
        assert!(f.wants(Group::Paths) && f.wants(Group::Camrelay) && !f.wants(Group::Session(Kind::RtspConn)));
        assert!(f.wants_path("cam 1") && !f.wants_path("cam"));
        let f = Filter::parse("rtsp_conn=c1&rtsp_session=s1").unwrap();
        let ids = || ("c1".to_string(), "s2".to_string());
        assert!(f.wants_session(Kind::RtspConn, ids) && !f.wants_session(Kind::RtspSession, ids));
        assert!(!f.wants_session(Kind::WebrtcSession, ids) && !f.wants(Group::Paths));
        for empty in ["", "type=", "path=", "type=moq_sessions"] {
            let f = Filter::parse(empty).unwrap();
            assert_eq!(f.wants(Group::Paths), empty.is_empty() || empty.ends_with('='), "{empty}");
        }
        assert_eq!(Filter::parse("type=rtsp").err().as_deref(), Some("invalid type \"rtsp\""));
    }

    #[test]
    fn samples_are_written_as_openmetrics_text() {
        let filter = Filter::default();
        let mut s = Scrape::new(&filter);
        let g = s.gauge("a_gauge", "A gauge");
        let c = s.counter("a_counter", "A counter");
        s.f(g).int("", 0);
        s.f(g).int(&labels(&[("name", "cam \"1\"\\\n")]), 18_446_744_073_709_551_615);
        s.f(g).int_with(&labels(&[("x", "1")]), "kind", "auth", 1);
        s.f(g).int_with("", "kind", "a\"b", 2);
        s.f(c).float("", 3.0);
        s.f(c).float("", 0.25);
        s.f(c).float("", f64::NAN);
        s.f(c).float("", f64::INFINITY);
        assert_eq!(
            s.finish().into_string(),
            "# HELP a_gauge A gauge\n# TYPE a_gauge gauge\n\
             a_gauge 0\n\
             a_gauge{name=\"cam \\\"1\\\"\\\\\\n\"} 18446744073709551615\n\
             a_gauge{x=\"1\",kind=\"auth\"} 1\n\
             a_gauge{kind=\"a\\\"b\"} 2\n\
             # HELP a_counter A counter\n# TYPE a_counter counter\n\
             a_counter_total 3.0\na_counter_total 0.25\na_counter_total NaN\na_counter_total +Inf\n\
             # EOF\n"
        );
        // The buffers are kept for the next scrape, emptied.
        let mut again = Scrape::new(&filter);
        let g = again.gauge("b", "B");
        assert!(again.f(g).body.starts_with(b"# HELP b B\n") && again.f(g).body.capacity() >= 100);
        assert_eq!(again.finish().into_string(), "# HELP b B\n# TYPE b gauge\n# EOF\n");
    }

    /// One scrape of fixed counters, as `paths` writes them: per-reader label text from the cache.
    fn scrape_of(readers: &[Arc<ReaderShared>], cache: &mut ReaderCache, filter: &Filter) -> Rendered {
        let mut s = Scrape::new(filter);
        let bytes = s.counter("camrelay_reader_sent_bytes", "Bytes sent to a reader");
        s.group = Group::Session(Kind::RtspSession);
        let jitter = s.gauge("rtsp_sessions_inbound_rtp_packets_jitter", "Jitter");
        cache.scrape += 1;
        for r in readers {
            let l = cache.get("cam", r);
            s.f(bytes).int(&l.reader_labels, r.bytes_sent.load(Relaxed));
            s.f(jitter).float(&l.session_labels, r.bytes_sent.load(Relaxed) as f64 / 8.0);
        }
        s.finish()
    }

    #[test]
    fn rendering_twice_gives_the_same_text_for_the_same_counters() {
        let readers: Vec<Arc<ReaderShared>> = (0..50)
            .map(|i| {
                let r = Arc::new(ReaderShared::new("rtsp+tcp", format!("127.0.0.1:{}", 40000 + i)));
                r.count_sent(i, i * 1361 + 7);
                r
            })
            .collect();
        let filter = Filter::default();
        let mut cache = ReaderCache::default();
        let first = scrape_of(&readers, &mut cache, &filter);
        // The second scrape runs while the first's text is still held (a response being sent): new memory;
        // the third after the second's was dropped: in the memory the second used.
        let second = scrape_of(&readers, &mut cache, &filter);
        let second_memory = second.text.as_ptr();
        assert_ne!(second_memory, first.text.as_ptr());
        let (first, second) = (first.into_string(), second.into_string());
        let third = scrape_of(&readers, &mut cache, &filter);
        assert_eq!(third.text.as_ptr(), second_memory, "the last scrape's buffer is written again");
        let third = third.into_string();
        assert_eq!(first, second);
        assert_eq!(first, third);
        assert_eq!(first.matches("camrelay_reader_sent_bytes_total{").count(), 50);
        assert!(first.contains("protocol=\"rtsp+tcp\",remote_addr=\"127.0.0.1:40003\"} 4090\n"), "{first}");
        assert!(first.contains("remoteAddr=\"127.0.0.1:40003\"} 511.25\n"), "{first}");
        assert!(first.ends_with("# EOF\n"));
        // A changed protocol is seen (its label text made again); the counters' text follows them.
        readers[3].set_protocol("rtsp+udp");
        readers[3].count_sent(1, 1);
        let fourth = scrape_of(&readers, &mut cache, &filter).into_string();
        assert!(fourth.contains("protocol=\"rtsp+udp\",remote_addr=\"127.0.0.1:40003\"} 4091\n"), "{fourth}");
        assert_eq!(fourth.lines().count(), first.lines().count());
    }

    #[test]
    fn floats_are_written_as_rust_debug_writes_them() {
        for v in [0.0, -0.0, 1.0, 3.0, -7.0, 0.25, 1e-7, 123456.5, 1e14, 1e15, 1e300, f64::MAX] {
            let mut b = BytesMut::new();
            push_f64(&mut b, v);
            assert_eq!(std::str::from_utf8(&b).unwrap(), format!("{v:?}"), "{v}");
        }
    }

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
