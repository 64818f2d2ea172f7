//! `srt://`: the SRT source (MediaMTX's `source: srt://...`), MPEG-TS over SRT.
//!
//! - Caller (the default): `srt://host:port?streamid=read:cam` dials a server, camera or another
//!   camrelay.
//! - Listener: `srt://:port?mode=listener` (or `srt://0.0.0.0:port?mode=listener`) waits for one caller
//!   that publishes into it (`ffmpeg -f mpegts srt://camrelay:port`, `srt-live-transmit`).
//!
//! Query keys, as libsrt's URL syntax: `streamid`, `passphrase` (10 to 79 characters), `pbkeylen`
//! (16, 24, 32), `latency` (milliseconds), `mode` (`caller` or `listener`). The SRT session is
//! `srt-tokio`'s (docs/srt.md); the TS goes through the shared byte-stream path
//! (`sources::bytestream`: [`probe`], [`FramePump`]), as the SRT server's publishers do. `open`
//! connects and probes, and parks the connection for `run_opened`; the producer retries a failed one
//! (`network` errors: refused, timed out, the peer went away).

use futures_util::SinkExt;
use media::Media;
use srt_tokio::SrtSocket;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

use crate::hub::producer::{parked_or_connect, ConnectionInfo};
use crate::hub::{BoxFuture, Opened, Parked, Source, SourceError, SourceFactory, Track};
use crate::secrets::mask_url;
use crate::servers::srt::{key_size, passphrase, SrtChunks, SEND_BUFFER_BYTES};
use crate::sources::bytestream::{probe, pump_chunks, FramePump, Hint, Probed, StreamDemuxer};

/// A caller's handshake must finish within this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A listener waits this long for its caller before the attempt fails (and is retried).
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// `srt`, for `app::source_schemes`.
pub fn schemes() -> Vec<(&'static str, SourceFactory)> {
    let f: SourceFactory = Arc::new(|url: &str| Ok(Arc::new(SrtSource::new(url)?) as Arc<dyn Source>));
    vec![("srt", f)]
}

/// A parsed `srt://` URL.
#[derive(Clone, Debug, PartialEq)]
pub struct SrtTarget {
    /// Host (empty in listener mode without one) and port.
    pub host: String,
    pub port: u16,
    pub listener: bool,
    pub stream_id: Option<String>,
    pub passphrase: Option<String>,
    pub pbkeylen: u16,
    pub latency: Option<Duration>,
}

impl SrtTarget {
    /// Errors name the URL with its passphrase masked.
    pub fn parse(url: &str) -> Result<SrtTarget, String> {
        let masked = mask_url(url);
        let rest = url
            .get(..6)
            .filter(|p| p.eq_ignore_ascii_case("srt://"))
            .map(|_| &url[6..])
            .ok_or_else(|| format!("{masked}: not an srt:// URL"))?;
        let rest = rest.split_once('#').map_or(rest, |(r, _)| r);
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        let authority = authority.trim_end_matches('/');
        let (host, port) = authority
            .rsplit_once(':')
            .ok_or_else(|| format!("{masked}: no port (srt://host:port or srt://:port?mode=listener)"))?;
        let port: u16 =
            port.parse().ok().filter(|p| *p != 0).ok_or_else(|| format!("{masked}: invalid port {port:?}"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let mut t =
            SrtTarget { host, port, listener: false, stream_id: None, passphrase: None, pbkeylen: 0, latency: None };
        let pairs = query.split('&').filter(|kv| !kv.is_empty()).map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (k.to_string(), media::query::percent_decode(v))
        });
        for (k, v) in pairs {
            match k.as_str() {
                "streamid" => t.stream_id = Some(v),
                "passphrase" => {
                    passphrase(&format!("{masked}: passphrase"), &v)?;
                    t.passphrase = Some(v);
                }
                "pbkeylen" => {
                    let n: u16 = v.parse().map_err(|_| format!("{masked}: pbkeylen {v:?} is not a number"))?;
                    key_size(&format!("{masked}: pbkeylen"), n)?;
                    t.pbkeylen = n;
                }
                "latency" => {
                    let ms: u64 =
                        v.parse().map_err(|_| format!("{masked}: latency {v:?} is not a number of milliseconds"))?;
                    t.latency = Some(Duration::from_millis(ms));
                }
                "mode" => {
                    t.listener = match v.as_str() {
                        "listener" => true,
                        "caller" => false,
                        other => return Err(format!("{masked}: mode {other:?} (caller or listener)")),
                    }
                }
                // libsrt's other options (pkt_size, transtype...) keep their defaults.
                _ => {}
            }
        }
        if t.host.is_empty() && !t.listener {
            return Err(format!("{masked}: no host (a listener needs ?mode=listener)"));
        }
        Ok(t)
    }
}

pub struct SrtSource {
    masked: String,
    target: SrtTarget,
    remote: Mutex<Option<String>>,
    bytes: Arc<AtomicU64>,
}

struct Connected {
    socket: SrtSocket,
    demux: Box<StreamDemuxer>,
    probed: Probed,
    medias: Vec<Media>,
}

impl SrtSource {
    pub fn new(url: &str) -> Result<SrtSource, String> {
        let target = SrtTarget::parse(url)?;
        Ok(SrtSource { masked: mask_url(url), target, remote: Mutex::new(None), bytes: Arc::default() })
    }

    fn err(&self, e: SourceError) -> SourceError {
        e.map_message(|m| format!("{}: {m}", self.masked))
    }

    async fn dial(&self) -> Result<SrtSocket, SourceError> {
        let t = &self.target;
        let mut builder =
            SrtSocket::builder().set(|o| o.sender.buffer_size = srt_protocol::options::ByteCount(SEND_BUFFER_BYTES));
        if let Some(latency) = t.latency {
            builder = builder.latency(latency);
        }
        if let Some(p) = &t.passphrase {
            // Both checked by `SrtTarget::parse` (the builder panics on bad ones).
            builder = builder.encryption(t.pbkeylen, p.clone());
        }
        if t.listener {
            let host = if t.host.is_empty() { "0.0.0.0" } else { t.host.as_str() };
            let addr: SocketAddr = format!("{host}:{}", t.port)
                .parse()
                .map_err(|_| SourceError::other(format!("listener address {host:?} is not an IP address")))?;
            tokio::time::timeout(LISTEN_TIMEOUT, builder.listen_on(addr))
                .await
                .map_err(|_| SourceError::network(format!("no caller within {} s", LISTEN_TIMEOUT.as_secs())))?
                .map_err(|e| SourceError::network(format!("listen on {addr}: {e}")))
        } else {
            let addr = tokio::net::lookup_host((t.host.as_str(), t.port))
                .await
                .map_err(|e| SourceError::network(format!("resolve {}: {e}", t.host)))?
                .next()
                .ok_or_else(|| SourceError::network(format!("resolve {}: no address", t.host)))?;
            tokio::time::timeout(CONNECT_TIMEOUT, builder.call(addr, t.stream_id.as_deref()))
                .await
                .map_err(|_| SourceError::network(format!("no SRT handshake within {} s", CONNECT_TIMEOUT.as_secs())))?
                .map_err(|e| SourceError::network(format!("connect {addr}: {e} (refused, or a wrong passphrase)")))
        }
    }

    async fn connect(&self) -> Result<Connected, SourceError> {
        let mut socket = self.dial().await.map_err(|e| self.err(e))?;
        let peer = socket.settings().remote;
        let mut demux = Box::new(StreamDemuxer::new(Hint::Ts));
        let mut chunks = SrtChunks { socket: &mut socket, bytes: self.bytes.clone() };
        let probed = probe(&mut chunks, &mut demux).await.map_err(|e| self.err(e.into()))?;
        if let Ok(mut r) = self.remote.lock() {
            *r = Some(peer.to_string());
        }
        tracing::debug!(source = %self.masked, peer = %peer, "srt source connected");
        let medias = probed.medias();
        Ok(Connected { socket, demux, probed, medias })
    }

    async fn run_inner(
        &self,
        parked: Option<Connected>,
        tracks: Vec<Arc<Track>>,
        stop: CancellationToken,
    ) -> Result<(), SourceError> {
        let Some(opened) = parked_or_connect(parked, &stop, self.connect()).await? else { return Ok(()) };
        SourceError::unless_same_medias(&tracks, &opened.medias).map_err(|e| self.err(e))?;
        let Connected { mut socket, mut demux, probed, .. } = opened;
        let mut pump = FramePump::start(probed, tracks, &mut demux);
        let mut chunks = SrtChunks { socket: &mut socket, bytes: self.bytes.clone() };
        let result = pump_chunks(&mut chunks, &mut demux, &mut pump, &stop, "the peer closed the connection")
            .await
            .map_err(|e| self.err(e));
        let _ = tokio::time::timeout(Duration::from_secs(1), socket.close()).await;
        if let Ok(mut r) = self.remote.lock() {
            *r = None;
        }
        result
    }
}

impl Source for SrtSource {
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
            let parked = Parked::new(connected, |mut c: Connected| {
                Box::pin(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(1), c.socket.close()).await;
                })
            });
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
        let t =
            SrtTarget::parse("srt://cam.local:9000?streamid=read:cam&latency=200&pbkeylen=32&passphrase=0123456789ab")
                .unwrap();
        assert_eq!((t.host.as_str(), t.port, t.listener), ("cam.local", 9000, false));
        assert_eq!(t.stream_id.as_deref(), Some("read:cam"));
        assert_eq!((t.pbkeylen, t.latency), (32, Some(Duration::from_millis(200))));
        let l = SrtTarget::parse("srt://:9001?mode=listener").unwrap();
        assert_eq!((l.host.as_str(), l.port, l.listener), ("", 9001, true));
        assert!(SrtTarget::parse("srt://:9001").unwrap_err().contains("mode=listener"));
        assert!(SrtTarget::parse("srt://host").unwrap_err().contains("no port"));
        assert!(SrtTarget::parse("srt://host:0").unwrap_err().contains("invalid port"));
        assert!(SrtTarget::parse("srt://h:1?mode=rendezvous").unwrap_err().contains("caller or listener"));
        assert!(SrtTarget::parse("srt://h:1?pbkeylen=20").unwrap_err().contains("0, 16, 24 or 32"));
        let e = SrtTarget::parse("srt://h:1?passphrase=short").unwrap_err();
        assert!(e.contains("10 to 79"), "{e}");
        assert!(SrtTarget::parse("http://h:1").is_err());
        let masked = SrtSource::new("srt://h:1?streamid=read:x&passphrase=topsecret99").unwrap().masked;
        assert!(!masked.contains("topsecret99"), "{masked}");
        assert_eq!(SrtTarget::parse("srt://h:1?streamid=read%3Acam").unwrap().stream_id.as_deref(), Some("read:cam"));
        let v6 = SrtTarget::parse("srt://[::1]:9000?streamid=x").unwrap();
        assert_eq!(v6.host, "::1");
    }
}
