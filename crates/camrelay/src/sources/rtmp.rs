//! `rtmp://`, `rtmps://` (TLS, certificate verified, or pinned with `#fingerprint=SHA256`) and
//! `rtmpx://` (TLS without the certificate check, as `rtspx://`): the RTMP client source,
//! `rtmp[s]://host[:port]/app/stream[?query]`.
//!
//! The session (handshake, `connect`, `createStream`, `play`, chunking, acknowledgements, pings,
//! refusals) is the sans-IO [`rtmp::RtmpClientSession`] in play mode. This module only moves bytes
//! between it and the connection (`crate::dial`: TCP or TLS), runs its timer, and hands the media
//! message bodies, as FLV tags, to the same FLV parser as the RTMP server's publish path and HTTP-FLV
//! (`sources::bytestream`: [`StreamDemuxer`], [`probe`], [`FramePump`]). `open` connects, plays and
//! reads until the tracks are known, and parks the playing connection for `run_opened`.
//!
//! Errors map onto the source's kinds: a refusal the server explains as an authentication failure is
//! `auth`, other refusals (stream not found, bad name) `other`, connection failures, silence and a
//! server that hangs up `network`, bytes that are not RTMP `protocol`. `/api/streams` shows the masked
//! URL, the server's address and the bytes received ([`Source::connection_info`]).

use bytes::{Bytes, BytesMut};
use media::Media;
use rtmp::{ClientConfig, ClientError, ClientEvent, ClientMode, RejectKind, RtmpClientSession, RtmpUrl};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dial::{Io, Tls};
use crate::hub::producer::{parked_or_connect, ConnectionInfo};
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceErrorKind, SourceFactory, Track};
use crate::secrets::mask_url;
use crate::sources::bytestream::{
    probe, put_flv_tag, ChunkSource, FramePump, Hint, Probed, StreamDemuxer, FLV_FILE_HEADER,
};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Handshake to `NetStream.Play.Start`, and silence while playing.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
const READ_CHUNK: usize = 64 * 1024;
/// Enhanced RTMP codecs announced in `connect` (`fourCcList`): what the FLV parser takes beyond classic
/// FLV, so servers that honour the list (ffmpeg's, MediaMTX, camrelay) send H.265, AV1, VP9 and Opus.
const ENHANCED_FOURCCS: [&str; 4] = ["hvc1", "av01", "vp09", "Opus"];

/// `rtmp`, `rtmps` and `rtmpx`, for `app::source_schemes`.
pub fn schemes() -> Vec<(&'static str, SourceFactory)> {
    let f: SourceFactory = Arc::new(|url: &str| Ok(Arc::new(RtmpSource::new(url)?) as Arc<dyn Source>));
    vec![("rtmp", f.clone()), ("rtmps", f.clone()), ("rtmpx", f)]
}

pub struct RtmpSource {
    /// Masked URL for logs and errors.
    masked: String,
    url: RtmpUrl,
    tls: Tls,
    /// `#fingerprint=`: the server certificate's SHA-256 (MediaMTX's `sourceFingerprint`), accepted
    /// instead of a verified chain.
    pin: Option<[u8; 32]>,
    /// The current connection's server address and bytes, for the API.
    remote: Mutex<Option<String>>,
    bytes: Arc<AtomicU64>,
}

/// An `rtmp://`, `rtmps://` (verified, or pinned with `#fingerprint=`) or `rtmpx://` (unverified) URL:
/// where to connect and how. Also the RTMP push's destinations (`crate::push`).
pub(crate) struct RtmpTarget {
    pub url: RtmpUrl,
    pub tls: Tls,
    pub pin: Option<[u8; 32]>,
}

impl RtmpTarget {
    /// Errors name the URL with its password masked.
    pub(crate) fn parse(url: &str) -> Result<RtmpTarget, String> {
        let masked = mask_url(url);
        let (url, params) = url.split_once('#').unwrap_or((url, ""));
        let mut pin = None;
        for (k, v) in crate::sources::exec::parse_query(params) {
            if k == "fingerprint" {
                let sha256 = rtsp::client::parse_sha256(&v)
                    .ok_or_else(|| format!("{masked}: #fingerprint= is not a SHA-256 in hex (64 digits)"))?;
                pin = Some(sha256);
            }
        }
        let (parsed, tls) = match url.get(..8) {
            Some(p) if p.eq_ignore_ascii_case("rtmpx://") => {
                (RtmpUrl::parse(&format!("rtmps://{}", &url[8..])), Tls::NoVerify)
            }
            _ => {
                let u = RtmpUrl::parse(url);
                let tls = if u.as_ref().is_ok_and(|u| u.tls) { Tls::Verify } else { Tls::None };
                (u, tls)
            }
        };
        let url = parsed.map_err(|e| format!("{masked}: {e}"))?;
        if pin.is_some() && tls == Tls::None {
            return Err(format!("{masked}: #fingerprint= needs TLS (rtmps://)"));
        }
        Ok(RtmpTarget { url, tls, pin })
    }
}

impl RtmpSource {
    pub fn new(url: &str) -> Result<RtmpSource, String> {
        let RtmpTarget { url: parsed, tls, pin } = RtmpTarget::parse(url)?;
        Ok(RtmpSource { masked: mask_url(url), url: parsed, tls, pin, remote: Mutex::new(None), bytes: Arc::default() })
    }

    fn err(&self, e: SourceError) -> SourceError {
        e.map_message(|m| format!("{}: {m}", self.masked))
    }

    /// Connects, plays, and reads until the tracks are known.
    async fn connect(&self) -> Result<Connected, SourceError> {
        let dialled = crate::dial::tcp_pinned(&self.url.host, self.url.port, self.tls, self.pin, CONNECT_TIMEOUT)
            .await
            .map_err(|e| self.err(SourceError::network(e)))?;
        let peer = dialled.peer;
        let config = ClientConfig {
            timeout: SESSION_TIMEOUT,
            fourcc_list: ENHANCED_FOURCCS.iter().map(|f| f.to_string()).collect(),
            seed: rand::random(),
            ..ClientConfig::new(ClientMode::Play, &self.url)
        };
        let session = RtmpClientSession::new(config, now());
        let mut conn = Conn {
            io: dialled.io,
            buf: vec![0; READ_CHUNK].into_boxed_slice(),
            session,
            pending: Bytes::new(),
            early: BytesMut::new(),
            header_sent: false,
            error: None,
            ended: None,
            bytes: self.bytes.clone(),
        };
        conn.play().await.map_err(|e| self.err(e))?;
        let mut demux = Box::new(StreamDemuxer::new(Hint::Flv));
        let probed = match probe(&mut conn, &mut demux).await {
            Ok(p) => p,
            Err(e) => return Err(self.err(conn.error.take().unwrap_or_else(|| e.into()))),
        };
        if let Ok(mut r) = self.remote.lock() {
            *r = Some(peer.to_string());
        }
        let medias = probed.medias();
        tracing::debug!(source = %self.masked, server = %peer, "rtmp source playing");
        Ok(Connected { conn, demux, probed, medias })
    }

    async fn run_inner(
        &self,
        parked: Option<Connected>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(opened) = parked_or_connect(parked, &stop, self.connect()).await? else { return Ok(()) };
        SourceError::unless_same_medias(&tracks, &opened.medias).map_err(|e| self.err(e))?;
        let Connected { mut conn, mut demux, probed, .. } = opened;
        let mut pump = FramePump::start(probed, tracks, &mut demux);
        let result = loop {
            let chunk = tokio::select! {
                _ = stop.cancelled() => break Ok(()),
                c = conn.next_chunk() => c,
            };
            match chunk {
                Ok(Some(data)) => {
                    if let Err(e) = demux.push(&data, Instant::now()) {
                        break Err(self.err(SourceError::protocol(e)));
                    }
                    pump.drain(&mut demux);
                }
                Ok(None) => {
                    let why = conn.ended.take().unwrap_or_else(|| "the stream ended".into());
                    break Err(self.err(SourceError::network(why)));
                }
                Err(e) => break Err(self.err(conn.error.take().unwrap_or_else(|| SourceError::network(e)))),
            }
        };
        if result.is_ok() {
            conn.close().await;
        }
        if let Ok(mut r) = self.remote.lock() {
            *r = None;
        }
        result
    }
}

/// A playing connection `open` made, with what it read.
struct Connected {
    conn: Conn,
    demux: Box<StreamDemuxer>,
    probed: Probed,
    medias: Vec<Media>,
}

/// The source's kind of a session failure.
fn error_kind(e: &ClientError) -> SourceErrorKind {
    match e {
        ClientError::Rejected { kind: RejectKind::Auth, .. } => SourceErrorKind::Auth,
        ClientError::Rejected { .. } => SourceErrorKind::Other,
        ClientError::Timeout(_) | ClientError::Closed(_) => SourceErrorKind::Network,
        ClientError::Handshake(_) | ClientError::Chunk(_) | ClientError::Amf(_) | ClientError::Protocol(_) => {
            SourceErrorKind::Protocol
        }
    }
}

/// The time the session machine sees.
fn now() -> std::time::Instant {
    Instant::now().into_std()
}

struct Conn {
    io: Box<dyn Io>,
    buf: Box<[u8]>,
    session: RtmpClientSession,
    /// Output taken from the session and not yet written (a cancelled write loses nothing).
    pending: Bytes,
    /// Media that came before `NetStream.Play.Start`, as FLV tags.
    early: BytesMut,
    header_sent: bool,
    /// The typed failure behind the last `Err` of [`ChunkSource::next_chunk`].
    error: Option<SourceError>,
    /// Why the session ended without error (the server ended the stream...).
    ended: Option<String>,
    bytes: Arc<AtomicU64>,
}

impl Conn {
    /// Writes the session's output. Cancel-safe: what was not written stays in `pending`.
    async fn flush(&mut self) -> Result<(), String> {
        loop {
            if self.pending.is_empty() {
                match self.session.poll_transmit() {
                    Some(b) => self.pending = b,
                    None => return Ok(()),
                }
            }
            let n = match tokio::time::timeout(WRITE_TIMEOUT, self.io.write(&self.pending)).await {
                Ok(Ok(0)) => return Err("write: connection closed".into()),
                Ok(Ok(n)) => n,
                Ok(Err(e)) => return Err(format!("write: {e}")),
                Err(_) => return Err(format!("write: the server took nothing for {} s", WRITE_TIMEOUT.as_secs())),
            };
            bytes::Buf::advance(&mut self.pending, n);
        }
    }

    /// Reads once (or wakes at the session's deadline) and feeds the session. Cancel-safe.
    async fn read_once(&mut self) -> Result<(), String> {
        let deadline = self.session.poll_timeout();
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(Instant::from_std(d)).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            r = self.io.read(&mut self.buf) => match r {
                Ok(0) => self.session.handle_eof(),
                Ok(n) => {
                    self.bytes.fetch_add(n as u64, Ordering::Relaxed);
                    self.session.handle_input(now(), &self.buf[..n]);
                }
                Err(e) => return Err(format!("read: {e}")),
            },
            _ = sleep => self.session.handle_timeout(now()),
        }
        Ok(())
    }

    /// Drives the session to `NetStream.Play.Start`.
    async fn play(&mut self) -> Result<(), SourceError> {
        loop {
            self.flush().await.map_err(SourceError::network)?;
            while let Some(e) = self.session.poll_event() {
                match e {
                    ClientEvent::Playing => return Ok(()),
                    ClientEvent::Media { kind, timestamp, payload } => {
                        put_flv_tag(&mut self.early, kind.type_id(), timestamp, &payload)
                    }
                    ClientEvent::Error(e) => return Err(SourceError::new(error_kind(&e), e.to_string())),
                    ClientEvent::Closed { reason } => {
                        return Err(SourceError::network(format!("closed before playing: {reason}")))
                    }
                    ClientEvent::Connected { .. } => tracing::trace!("rtmp connected"),
                    ClientEvent::Status { code, .. } => tracing::trace!(code = %code, "rtmp status"),
                    ClientEvent::Publishing => {}
                }
            }
            self.read_once().await.map_err(SourceError::network)?;
        }
    }

    /// `deleteStream`, briefly: we are stopping.
    async fn close(&mut self) {
        self.session.close();
        let _ = tokio::time::timeout(Duration::from_secs(1), self.flush()).await;
        let _ = tokio::time::timeout(Duration::from_secs(1), self.io.shutdown()).await;
    }
}

impl ChunkSource for Conn {
    /// The media messages as FLV bytes (the file header first). Cancel-safe (the probe races it with a
    /// timer): events are taken only after the last await.
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, String> {
        loop {
            self.flush().await.inspect_err(|e| self.error = Some(SourceError::network(e.clone())))?;
            let mut out = BytesMut::new();
            if !self.header_sent {
                self.header_sent = true;
                out.extend_from_slice(&FLV_FILE_HEADER);
                out.extend_from_slice(&self.early.split());
            }
            let mut end: Option<Result<(), SourceError>> = None;
            while let Some(e) = self.session.poll_event() {
                match e {
                    ClientEvent::Media { kind, timestamp, payload } => {
                        put_flv_tag(&mut out, kind.type_id(), timestamp, &payload)
                    }
                    ClientEvent::Error(e) => end = Some(Err(SourceError::new(error_kind(&e), e.to_string()))),
                    ClientEvent::Closed { reason } => {
                        self.ended = Some(reason);
                        end = Some(Ok(()));
                    }
                    _ => {}
                }
            }
            match end {
                // What came before the end is handed on first; the end is seen on the next call.
                Some(Err(e)) if !out.is_empty() => self.error = Some(e),
                Some(Err(e)) => {
                    let msg = e.message().to_string();
                    self.error = Some(e);
                    return Err(msg);
                }
                Some(Ok(())) if out.is_empty() => return Ok(None),
                _ => {}
            }
            if !out.is_empty() {
                return Ok(Some(out.freeze()));
            }
            if let Some(e) = &self.error {
                return Err(e.message().to_string());
            }
            if self.session.is_ended() {
                return Ok(None);
            }
            self.read_once().await.inspect_err(|e| self.error = Some(SourceError::network(e.clone())))?;
        }
    }
}

impl Source for RtmpSource {
    fn describe(&self) -> BoxFuture<'_, Result<Vec<Media>, SourceError>> {
        Box::pin(crate::hub::producer::describe_by_opening(self))
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
            let parked = Parked::new(connected, |mut c: Connected| Box::pin(async move { c.conn.close().await }));
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

    fn connection_info(&self) -> Option<ConnectionInfo> {
        let remote_addr = self.remote.lock().ok().and_then(|r| r.clone());
        Some(ConnectionInfo { remote_addr, bytes_recv: self.bytes.load(Ordering::Relaxed) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let s = RtmpSource::new("rtmp://u:secret@cam:1936/live/x?user=a&pass=b").unwrap();
        assert_eq!((s.url.host.as_str(), s.url.port, s.tls), ("cam", 1936, Tls::None));
        assert_eq!((s.url.app.as_str(), s.url.stream.as_str()), ("live", "x?user=a&pass=b"));
        assert!(!s.masked.contains("secret"), "{}", s.masked);
        let s = RtmpSource::new("rtmps://cam/live/x").unwrap();
        assert_eq!((s.url.port, s.tls), (443, Tls::Verify));
        let s = RtmpSource::new("rtmpx://cam:1937/live/x").unwrap();
        assert_eq!((s.url.port, s.tls, s.url.tc_url().as_str()), (1937, Tls::NoVerify, "rtmps://cam:1937/live"));
        let hex = "AB:".repeat(31) + "AB";
        let s = RtmpSource::new(&format!("rtmps://cam/live/x#fingerprint={hex}")).unwrap();
        assert_eq!((s.pin, s.url.stream.as_str()), (Some([0xAB; 32]), "x"));
        assert!(RtmpSource::new(&format!("rtmp://cam/live/x#fingerprint={hex}")).err().unwrap().contains("needs TLS"));
        assert!(RtmpSource::new("rtmps://cam/live/x#fingerprint=abc").err().unwrap().contains("SHA-256"));
        let e = RtmpSource::new("rtmp://u:secret@cam/live").err().unwrap();
        assert!(e.contains("no stream name") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn error_kinds() {
        let rejected =
            |kind| ClientError::Rejected { step: "play".into(), kind, code: "c".into(), description: "d".into() };
        assert_eq!(error_kind(&rejected(RejectKind::Auth)), SourceErrorKind::Auth);
        assert_eq!(error_kind(&rejected(RejectKind::NotFound)), SourceErrorKind::Other);
        assert_eq!(error_kind(&ClientError::Timeout("x".into())), SourceErrorKind::Network);
        assert_eq!(error_kind(&ClientError::Protocol("x".into())), SourceErrorKind::Protocol);
    }
}
