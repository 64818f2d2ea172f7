//! RTMP push (`rtmp://`, `rtmps://` destinations: YouTube, Telegram, MediaMTX, another camrelay; `rtmps://`
//! may pin the server's certificate with `#fingerprint=`, `rtmpx://` skips the check, as for sources): the
//! publish mode of the sans-IO `rtmp::client::RtmpClientSession` on a `crate::dial` connection. The
//! reader's frames are muxed by `formats::mux::FlvStream` and its tags sent as RTMP messages (RTMP
//! message bodies are FLV tag bodies), split by `servers::rtmp::flv_tags` as the RTMP server's play
//! path does.

use ::rtmp::client::{ClientConfig, ClientError, ClientEvent, ClientMode, RejectKind, RtmpClientSession};
use formats::mux::Muxer;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::{next_frame, stream_ended, PushError, PushErrorKind, PushStatus};
use crate::hub::Reader;
use crate::secrets::mask_url;
use crate::servers::rtmp::flv_tags;
use crate::sources::rtmp::RtmpTarget;
use crate::sources::rtsp::{now, sleep_until};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// A destination that takes no bytes for this long is dropped (and retried).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const READ_CHUNK: usize = 64 * 1024;

fn error_of(e: &ClientError) -> PushErrorKind {
    match e {
        ClientError::Rejected { kind: RejectKind::Auth, .. } => PushErrorKind::Auth,
        ClientError::Rejected { .. } => PushErrorKind::Refused,
        ClientError::Handshake(_) | ClientError::Chunk(_) | ClientError::Amf(_) | ClientError::Protocol(_) => {
            PushErrorKind::Protocol
        }
        ClientError::Timeout(_) => PushErrorKind::Timeout,
        ClientError::Closed(_) => PushErrorKind::Network,
    }
}

/// Writes what the session queued; an error names what failed.
async fn flush(io: &mut Box<dyn crate::dial::Io>, session: &mut RtmpClientSession) -> Result<(), String> {
    let mut out = Vec::new();
    while let Some(b) = session.poll_transmit() {
        out.extend_from_slice(&b);
    }
    if out.is_empty() {
        return Ok(());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, io.write_all(&out)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err(format!("write: the destination took nothing for {} s", WRITE_TIMEOUT.as_secs())),
    }
}

/// Pushes the reader's frames to `url` until `stop` (`Ok`) or a failure.
pub(super) async fn push(
    url: &str,
    reader: &mut Reader,
    status: &PushStatus,
    stop: &CancellationToken,
) -> Result<(), PushError> {
    let masked = mask_url(url);
    let RtmpTarget { url: target, tls, pin } =
        RtmpTarget::parse(url).map_err(|e| PushError::new(PushErrorKind::Unsupported, e))?;
    status.set_remote_addr(format!("{}:{}", target.host, target.port));
    let codecs: Vec<_> = reader.tracks.iter().map(|t| (t.track.kind, t.codec.clone())).collect();
    let mut muxer = formats::mux::FlvStream::new(&codecs)
        .map_err(|e| PushError::new(PushErrorKind::Codecs, format!("stream {}: flv: {e}", reader.stream_name())))?;
    *status.shared.medias.lock().unwrap_or_else(|e| e.into_inner()) =
        codecs.iter().map(|(kind, c)| format!("{kind}, sendonly, {}", c.short_name())).collect();
    let net = |e: String| PushError::new(PushErrorKind::Network, format!("{masked}: {e}"));
    let dialled = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        d = crate::dial::tcp_pinned(&target.host, target.port, tls, pin, CONNECT_TIMEOUT) => d.map_err(net)?,
    };
    let mut io = dialled.io;
    let mut config = ClientConfig::new(ClientMode::Publish, &target);
    config.seed = rand::random();
    let mut session = RtmpClientSession::new(config, now());
    let mut publishing = false;
    let mut buf = vec![0u8; READ_CHUNK];
    loop {
        flush(&mut io, &mut session).await.map_err(net)?;
        while let Some(ev) = session.poll_event() {
            match ev {
                ClientEvent::Publishing => {
                    publishing = true;
                    status.publishing();
                    if let Some(h) = muxer.header() {
                        for (kind, ts, body) in flv_tags(&h) {
                            let _ = session.send_media(kind, ts, body);
                        }
                    }
                }
                ClientEvent::Error(e) => return Err(PushError::new(error_of(&e), format!("{masked}: {e}"))),
                ClientEvent::Closed { reason } => return Err(net(reason)),
                _ => {}
            }
        }
        flush(&mut io, &mut session).await.map_err(net)?;
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                session.close();
                let _ = tokio::time::timeout(Duration::from_secs(1), flush(&mut io, &mut session)).await;
                return Ok(());
            }
            r = io.read(&mut buf) => match r {
                Ok(0) => session.handle_eof(),
                Ok(n) => session.handle_input(now(), &buf[..n]),
                Err(e) => return Err(net(format!("read: {e}"))),
            },
            d = next_frame(reader, publishing) => {
                let Some(d) = d else {
                    session.close();
                    let _ = tokio::time::timeout(Duration::from_secs(1), flush(&mut io, &mut session)).await;
                    return Err(stream_ended(reader));
                };
                match muxer.push(d.slot, &d.frame) {
                    Ok(out) => {
                        let mut bytes = 0u64;
                        for b in &out {
                            for (kind, ts, body) in flv_tags(b) {
                                // A full output queue drops the tag; the reader resyncs at a keyframe.
                                if session.send_media(kind, ts, body).is_ok() {
                                    bytes += body.len() as u64;
                                }
                            }
                        }
                        status.shared.count_sent(1, bytes);
                    }
                    Err(e) => tracing::debug!(module = "publish", "flv: {e}"),
                }
            }
            _ = sleep_until(session.poll_timeout()) => session.handle_timeout(now()),
        }
    }
}
