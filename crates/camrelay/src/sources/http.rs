//! `http://`, `https://`, `httpx://` and `tcp://` sources (go2rtc's "Source: HTTP"), and the byte-stream
//! demuxing they share with the HTTP ingest endpoints (`POST /api/stream.ts` ..., `servers/ingest.rs`).
//!
//! - `http(s)://host/path` is fetched with a GET. The body's format comes from its `Content-Type`
//!   (`video/x-flv`, `video/mp2t` / `video/mpeg`, `multipart/x-mixed-replace`, `image/jpeg`) or, when that
//!   says nothing useful, from its first bytes ([`formats::sniff`]): HTTP-FLV, MPEG-TS, MJPEG (multipart
//!   or raw JPEG concatenation), H.264 / H.265 Annex B.
//! - A single `image/jpeg` answer is a camera snapshot URL: it is polled again and again (as fast as it
//!   answers, at most 10 times a second, on a kept-alive connection when the camera allows) into a
//!   JPEG video track.
//! - `httpx://` is `https://` without certificate verification (go2rtc's spelling, as `rtspx://`).
//! - `tcp://host:port` reads a raw byte stream and sniffs it (MPEG-TS, Annex B, MJPEG).
//! - `#header=Name: value` (repeatable) adds request headers; credentials in the URL become Basic auth;
//!   up to 5 redirects are followed; connect times out after 5 s, a silent connection after 15 s (the
//!   producer then retries). Errors and logs show the URL masked.
//!
//! A demuxer only knows the medias after some bytes, so `open` connects and reads until every
//! track is known ([`probe`]: bounded in bytes and time), and hands the open connection and the
//! frames read so far to the producer, which parks them for `run_opened` (as `exec:` does with its
//! child). Errors: 401/403 are authentication failures, connection failures and silence network ones,
//! bytes that are no stream we know protocol ones.

use crate::dial::{Io, Tls};
use crate::http_client::{self, Conn};
use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::Method;
use media::{Direction, Frame, Kind, Media};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::SourceContext;
use crate::hub::producer::parked_or_connect;
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceFactory, Track};
use crate::secrets::mask_url;
use crate::sources::bytestream::{
    hint_from_content_type, jpeg_codec, probe, pump_chunks, ChunkSource, FramePump, Hint, Probed, StreamDemuxer,
    READ_TIMEOUT,
};
use crate::sources::exec::parse_query;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_REDIRECTS: usize = 5;
/// Largest snapshot image accepted.
const MAX_SNAPSHOT: usize = formats::mjpeg::MAX_PART_SIZE;
/// Snapshot URLs are polled at most this often.
const SNAPSHOT_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Request headers added with `#header=` beyond this many are refused.
const MAX_EXTRA_HEADERS: usize = 32;
const MTU: usize = 1400;
const VIDEO_CLOCK: u32 = 90_000;

// ------------------------------------------------------------------------------------------- URL

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    /// HTTPS without certificate verification.
    Httpx,
    Tcp,
}

/// A parsed source URL (without its `#` parameters).
#[derive(Clone, Debug)]
pub(crate) struct Target {
    scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query (`/x?y`), `/` at least.
    pub(crate) path: String,
    /// `user:pass`, percent-decoded.
    pub(crate) userinfo: Option<String>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) = url.split_once("://").ok_or("not a URL")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "httpx" => Scheme::Httpx,
            "tcp" => Scheme::Tcp,
            s => return Err(format!("unsupported scheme {s:?}")),
        };
        let crate::dial::Authority { userinfo, host, port, path } = crate::dial::split_authority(rest)?;
        let port = match (port, scheme) {
            (Some(p), _) => p,
            (None, Scheme::Http) => 80,
            (None, Scheme::Https | Scheme::Httpx) => 443,
            (None, Scheme::Tcp) => return Err("tcp:// needs a port".into()),
        };
        Ok(Target { scheme, host, port, path, userinfo })
    }

    fn tls(&self) -> Tls {
        match self.scheme {
            Scheme::Https => Tls::Verify,
            Scheme::Httpx => Tls::NoVerify,
            Scheme::Http | Scheme::Tcp => Tls::None,
        }
    }

    /// The HTTP client's view of an http(s)/httpx target.
    fn client(&self) -> http_client::Target {
        http_client::Target {
            tls: self.tls(),
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            userinfo: self.userinfo.clone(),
        }
    }

    pub(crate) fn host_header(&self) -> String {
        crate::dial::host_header(&self.host, self.port, if self.tls() == Tls::None { 80 } else { 443 })
    }

    pub(crate) fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Httpx => "httpx",
            Scheme::Tcp => "tcp",
        };
        format!("{scheme}://{}", self.host_header())
    }

    /// The target of a redirect (`Location`), relative or absolute ([`http_client::Target::redirect`]:
    /// credentials follow only to the same host and port).
    pub(crate) fn redirect(&self, location: &str) -> Result<Target, String> {
        if self.scheme == Scheme::Tcp {
            return Err("tcp:// has no redirects".into());
        }
        let next = self.client().redirect(location)?;
        let scheme = match next.tls {
            Tls::None => Scheme::Http,
            Tls::Verify => Scheme::Https,
            Tls::NoVerify => Scheme::Httpx,
        };
        Ok(Target { scheme, host: next.host, port: next.port, path: next.path, userinfo: next.userinfo })
    }
}

/// The `#` parameters of an http/tcp URL that we use.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Params {
    pub(crate) headers: Vec<(String, String)>,
}

pub(crate) fn split_url(url: &str) -> Result<(&str, Params), String> {
    let (base, query) = url.split_once('#').unwrap_or((url, ""));
    let mut params = Params::default();
    for (k, v) in parse_query(query) {
        if k == "header" {
            let (name, value) = v.split_once(':').ok_or_else(|| format!("#header={v:?} is not \"Name: value\""))?;
            let name = name.trim();
            let valid =
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_!#$%&'*+.^`|~".contains(&b));
            if !valid || value.contains(['\r', '\n']) {
                return Err(format!("#header: invalid header {name:?}"));
            }
            if params.headers.len() >= MAX_EXTRA_HEADERS {
                return Err(format!("more than {MAX_EXTRA_HEADERS} #header= parameters"));
            }
            params.headers.push((name.to_string(), value.trim().to_string()));
        }
    }
    Ok((base, params))
}

/// Timeouts and redirects of the source's requests.
const OPTIONS: http_client::Options = http_client::Options {
    connect_timeout: CONNECT_TIMEOUT,
    response_timeout: READ_TIMEOUT,
    max_redirects: MAX_REDIRECTS,
};

async fn connect(t: &Target) -> Result<Box<dyn Io>, SourceError> {
    Ok(crate::dial::tcp(&t.host, t.port, t.tls(), CONNECT_TIMEOUT).await.map_err(SourceError::network)?.io)
}

/// GETs `target` (following redirects, answering a Digest challenge: [`http_client::request`]); a
/// non-2xx answer is an error.
async fn http_get(
    target: &Target,
    headers: &[(String, String)],
    known_digest: Option<rtsp::auth::Challenge>,
) -> Result<(Conn, hyper::Response<Incoming>), SourceError> {
    let (conn, resp) =
        http_client::request(&target.client(), Method::GET, headers, Bytes::new(), &OPTIONS, known_digest).await?;
    if !resp.status().is_success() {
        let kind = crate::hub::producer::status_kind(resp.status().as_u16());
        return Err(SourceError::new(kind, format!("HTTP {}", resp.status())));
    }
    Ok((conn, resp))
}

fn content_type(resp: &hyper::Response<Incoming>) -> String {
    resp.headers().get(hyper::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_string()
}

/// Reads a whole snapshot image, bounded.
async fn read_body(body: &mut Incoming, limit: usize) -> Result<Bytes, SourceError> {
    http_client::read_body(body, limit, READ_TIMEOUT).await
}

/// A source's open byte stream.
enum Body {
    Http { body: Incoming, _conn: Conn },
    Tcp { stream: Box<dyn Io>, buf: Box<[u8]> },
}

impl ChunkSource for Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        let timeout = || format!("no data for {} s", READ_TIMEOUT.as_secs());
        match self {
            Body::Http { body, .. } => loop {
                let frame = tokio::time::timeout(READ_TIMEOUT, body.frame()).await.map_err(|_| timeout())?;
                match frame {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(format!("reading body: {e}")),
                    Some(Ok(f)) => {
                        if let Ok(data) = f.into_data() {
                            if !data.is_empty() {
                                return Ok(Some(data));
                            }
                        }
                    }
                }
            },
            Body::Tcp { stream, buf } => {
                let n = tokio::time::timeout(READ_TIMEOUT, stream.read(buf)).await.map_err(|_| timeout())?;
                match n {
                    Ok(0) => Ok(None),
                    Ok(n) => Ok(Some(Bytes::copy_from_slice(&buf[..n]))),
                    Err(e) => Err(format!("read: {e}")),
                }
            }
        }
    }
}

// ------------------------------------------------------------------------------------------ source

/// Schemes served by this module, with their factories.
pub fn schemes(_ctx: &SourceContext) -> Vec<(&'static str, SourceFactory)> {
    let f: SourceFactory = Arc::new(|url: &str| {
        // `….m3u8`: an HLS playlist (sources/hls.rs).
        if crate::sources::hls::is_playlist_url(url) {
            return Ok(Arc::new(crate::sources::hls::HlsSource::new(url)?) as Arc<dyn Source>);
        }
        let source = HttpSource::new(url)?;
        Ok(Arc::new(source) as Arc<dyn Source>)
    });
    vec![("http", f.clone()), ("https", f.clone()), ("httpx", f.clone()), ("tcp", f)]
}

pub struct HttpSource {
    /// Masked URL for logs and errors.
    label: String,
    target: Target,
    params: Params,
}

/// A connection `open` opened, with what it read.
struct Connected {
    medias: Vec<Media>,
    mode: Mode,
}

enum Mode {
    Stream {
        body: Body,
        demux: Box<StreamDemuxer>,
        probed: Probed,
    },
    /// A JPEG snapshot URL: the first image, and the connection if it can be reused.
    Snapshot {
        first: Bytes,
        conn: Option<Conn>,
    },
}

impl HttpSource {
    pub fn new(url: &str) -> Result<HttpSource, String> {
        let label = mask_url(url);
        let (base, params) = split_url(url).map_err(|e| format!("{label}: {e}"))?;
        let target = Target::parse(base).map_err(|e| format!("{label}: {e}"))?;
        Ok(HttpSource { label, target, params })
    }

    /// `e` (a plain message is [`SourceErrorKind::Other`]) naming the source.
    fn err(&self, e: impl Into<SourceError>) -> SourceError {
        // Errors from lower layers may quote URLs (redirect targets): mask those too.
        e.into().map_message(|m| crate::secrets::mask_text(&format!("{}: {m}", self.label)))
    }

    /// Connects, reads until the medias are known.
    async fn connect(&self) -> Result<Connected, SourceError> {
        let (body, hint) = if self.target.scheme == Scheme::Tcp {
            let stream = connect(&self.target).await.map_err(|e| self.err(e))?;
            (Body::Tcp { stream, buf: vec![0u8; 64 * 1024].into_boxed_slice() }, Hint::Auto)
        } else {
            let (conn, resp) = http_get(&self.target, &self.params.headers, None).await.map_err(|e| self.err(e))?;
            let ct = content_type(&resp);
            let mut body = resp.into_body();
            if ct.to_ascii_lowercase().starts_with("image/") {
                let first = read_body(&mut body, MAX_SNAPSHOT).await.map_err(|e| self.err(e))?;
                if !first.starts_with(&[0xff, 0xd8]) {
                    return Err(self.err(SourceError::protocol(format!("{ct} answer is not a JPEG image"))));
                }
                let conn = conn.reusable().then_some(conn);
                let medias = vec![Media::new(Kind::Video, Direction::RecvOnly, vec![jpeg_codec()])];
                return Ok(Connected { medias, mode: Mode::Snapshot { first, conn } });
            }
            (Body::Http { body, _conn: conn }, hint_from_content_type(&ct).unwrap_or(Hint::Auto))
        };
        let mut body = body;
        let mut demux = Box::new(StreamDemuxer::new(hint));
        let probed = probe(&mut body, &mut demux).await.map_err(|e| self.err(e))?;
        let medias = probed.medias();
        tracing::debug!(source = %self.label, format = demux.format().map_or("?", |f| f.name()), "source described");
        Ok(Connected { medias, mode: Mode::Stream { body, demux, probed } })
    }

    async fn run_inner(
        &self,
        parked: Option<Connected>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(opened) = parked_or_connect(parked, &stop, self.connect()).await? else { return Ok(()) };
        SourceError::unless_same_medias(&tracks, &opened.medias).map_err(|e| self.err(e))?;
        match opened.mode {
            Mode::Stream { mut body, mut demux, probed } => {
                let mut pump = FramePump::start(probed, tracks, &mut demux);
                pump_chunks(&mut body, &mut demux, &mut pump, &stop, "the stream ended").await.map_err(|e| self.err(e))
            }
            Mode::Snapshot { first, conn } => self.poll_snapshots(first, conn, tracks, stop).await,
        }
    }

    /// Polls a snapshot URL into a JPEG track.
    async fn poll_snapshots(
        &self,
        first: Bytes,
        mut conn: Option<Conn>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(track) = tracks.into_iter().next() else { return Err(self.err("no track")) };
        let mut packetizer = rtp::packetize::packetizer_for(&track.codec, MTU);
        let epoch = Instant::now();
        let mut push = |jpeg: Bytes| {
            let timestamp = (epoch.elapsed().as_micros() * u128::from(VIDEO_CLOCK) / 1_000_000) as u32;
            let mut frame = Frame { timestamp, keyframe: true, payload: jpeg, rtp: vec![] };
            if let Some(p) = packetizer.as_mut() {
                let mut packets = Vec::new();
                p.packetize(&frame, &mut packets);
                frame.rtp = packets;
            }
            track.push(frame);
        };
        push(first);
        let mut last = Instant::now();
        // The camera's Digest challenge once it asked for one.
        let mut digest: Option<rtsp::auth::Challenge> = None;
        loop {
            let next = last + SNAPSHOT_MIN_INTERVAL;
            tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                _ = tokio::time::sleep_until(next) => {}
            }
            last = Instant::now();
            let fetch = async {
                // Reuse the kept-alive connection; a camera that closed it gets a fresh one, which
                // answers the Digest challenge already seen (if any) up front.
                let known = conn.as_ref().and_then(|c| c.digest().cloned()).or(digest.clone());
                let reused = match conn.take().filter(|c| c.reusable()) {
                    Some(mut c) => match c.send(&Method::GET, &self.params.headers, Bytes::new(), &OPTIONS).await {
                        Ok(resp) if resp.status().is_success() => Some((c, resp)),
                        _ => None,
                    },
                    None => None,
                };
                let (c, resp) = match reused {
                    Some(r) => r,
                    None => http_get(&self.target, &self.params.headers, known).await?,
                };
                let seen = c.digest().cloned();
                let keep_alive = !resp
                    .headers()
                    .get(hyper::header::CONNECTION)
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.eq_ignore_ascii_case("close"));
                let jpeg = read_body(&mut resp.into_body(), MAX_SNAPSHOT).await?;
                Ok::<_, SourceError>((jpeg, (keep_alive && c.reusable()).then_some(c), seen))
            };
            let (jpeg, reuse, seen) = tokio::select! {
                _ = stop.cancelled() => return Ok(()),
                r = fetch => r.map_err(|e| self.err(e))?,
            };
            conn = reuse;
            digest = seen.or(digest);
            if !jpeg.starts_with(&[0xff, 0xd8]) {
                return Err(self.err(SourceError::protocol("the snapshot answer is not a JPEG image")));
            }
            push(jpeg);
        }
    }
}

impl Source for HttpSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(async move { Ok(self.connect().await?.medias) })
    }

    fn run(
        self: Arc<Self>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_inner(None, tracks, stop).await })
    }

    fn open(&self) -> BoxFuture<'_, Result<Opened, SourceError>> {
        Box::pin(async move {
            let connected = self.connect().await?;
            let medias = connected.medias.clone();
            // Dropping the connection closes it.
            let parked = Parked::new(connected, |c: Connected| Box::pin(async move { drop(c) }));
            Ok(Opened { medias, parked: Some(parked) })
        })
    }

    fn run_opened(
        self: Arc<Self>,
        parked: Option<Parked>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> BoxFuture<'static, Result<(), SourceError>> {
        Box::pin(async move { self.run_inner(parked.and_then(Parked::take::<Connected>), tracks, stop).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_targets_and_params() {
        let (base, p) =
            split_url("http://u:p%40x@cam:8080/snap.cgi?ch=1#header=Authorization: Bearer X#header=X-A:b").unwrap();
        assert_eq!(p.headers, vec![("Authorization".into(), "Bearer X".into()), ("X-A".into(), "b".into())]);
        let t = Target::parse(base).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("cam", 8080, "/snap.cgi?ch=1"));
        assert_eq!(t.userinfo.as_deref(), Some("u:p@x"));
        assert_eq!(t.host_header(), "cam:8080");
        let t = Target::parse("https://[::1]").unwrap();
        assert_eq!((t.host.as_str(), t.port, t.path.as_str()), ("::1", 443, "/"));
        assert!(Target::parse("tcp://host").is_err());
        assert!(split_url("http://x#header=Bad Name: v").is_err());
        assert!(split_url("http://x#header=novalue").is_err());
    }

    #[test]
    fn redirects_resolve() {
        let t = Target::parse("http://u:p@cam/a/b.cgi?x").unwrap();
        let r = t.redirect("c.jpg").unwrap();
        assert_eq!(r.path, "/a/c.jpg");
        assert_eq!(r.userinfo.as_deref(), Some("u:p"));
        let r = t.redirect("http://other/x").unwrap();
        assert_eq!((r.host.as_str(), r.userinfo), ("other", None));
        assert!(t.redirect("tcp://x:1").is_err());
    }
}
