//! RTSP push (`rtsp://`, `rtsps://`, `rtspx://` destinations): the record session of the sans-IO
//! `rtsp::client::RtspClient` (OPTIONS, ANNOUNCE with the SDP of the reader's tracks, SETUP over TCP
//! interleaved with `mode=record`, RECORD, Basic/Digest on 401) on the RTSP source's connection
//! (`sources::rtsp::Conn`: TCP, TLS or a WebSocket tunnel). Frames keep the RTP packets they came in
//! (or were packetized into once at the source); the session writes its own headers, and RTCP sender
//! reports every 5 s per media (dated by the track's wall clock) let the destination sync them.

use ::rtsp::client::{ClientError, ClientOptions, ErrorKind, Event, RtspClient, SourceUrl};
use media::{Direction, Media};

use super::{next_frame, stream_ended, PushError, PushErrorKind, PushStatus};
use crate::hub::Reader;
use crate::secrets::mask_url;
use crate::sources::rtsp::{now, sleep_until, Conn};
use tokio_util::sync::CancellationToken;

/// Packet size for frames that carry no RTP packets.
const MTU: usize = 1400;
/// RTCP sender reports per media at most this often (as the RTSP server sends its readers).
const SR_INTERVAL: std::time::Duration = std::time::Duration::from_secs(5);

fn error_of(e: &ClientError) -> PushError {
    let kind = match e.kind {
        ErrorKind::Auth => PushErrorKind::Auth,
        ErrorKind::Status(_) => PushErrorKind::Refused,
        ErrorKind::Protocol => PushErrorKind::Protocol,
        ErrorKind::Timeout => PushErrorKind::Timeout,
        ErrorKind::Network => PushErrorKind::Network,
    };
    PushError::new(kind, e.to_string())
}

/// The medias we ANNOUNCE: one per reader track, with the payload type the RTSP server would give it.
fn announced_medias(reader: &Reader) -> Vec<Media> {
    reader
        .tracks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut codec = t.codec.clone();
            codec.payload_type = crate::servers::rtsp::payload_type_for(&codec, i);
            Media::new(t.track.kind, Direction::SendOnly, vec![codec])
        })
        .collect()
}

/// Pushes the reader's frames to `url` until `stop` (`Ok`) or a failure.
pub(super) async fn push(
    url: &str,
    reader: &mut Reader,
    status: &PushStatus,
    stop: &CancellationToken,
) -> Result<(), PushError> {
    let src = SourceUrl::parse(url).map_err(|e| PushError::new(PushErrorKind::Unsupported, e.to_string()))?;
    status.set_remote_addr(format!("{}:{}", src.host, src.port));
    let masked = mask_url(url);
    let mut conn = tokio::select! {
        _ = stop.cancelled() => return Ok(()),
        c = Conn::connect(&src) => c.map_err(|e| PushError::new(PushErrorKind::Network, format!("{masked}: {e}")))?,
    };
    let medias = announced_medias(reader);
    *status.shared.medias.lock().unwrap_or_else(|e| e.into_inner()) = medias.iter().map(|m| m.to_string()).collect();
    let mut packetizers: Vec<Option<Box<dyn rtp::packetize::Packetizer>>> = medias.iter().map(|_| None).collect();
    let codecs: Vec<media::Codec> = medias.iter().filter_map(|m| m.codecs.first().cloned()).collect();
    let options = ClientOptions { ssrc: rand::random(), initial_sequence: rand::random(), cname: "camrelay".into() };
    let mut client = RtspClient::record(src, options, medias, now());
    let mut recording = false;
    let mut packets = Vec::new();
    let mut next_sr: Vec<Option<tokio::time::Instant>> = codecs.iter().map(|_| None).collect();
    loop {
        conn.flush(&mut client).await;
        while let Some(ev) = client.poll_event() {
            match ev {
                Event::Recording => {
                    recording = true;
                    status.publishing();
                }
                Event::Error(e) => return Err(PushError { message: format!("{masked}: {}", e), ..error_of(&e) }),
                Event::Closed => return Ok(()),
                _ => {}
            }
        }
        let deadline = client.poll_timeout();
        tokio::select! {
            biased;
            _ = stop.cancelled() => {
                conn.teardown(&mut client).await;
                return Ok(());
            }
            _ = conn.read_into(&mut client) => {}
            d = next_frame(reader, recording) => {
                let Some(d) = d else {
                    conn.teardown(&mut client).await;
                    return Err(stream_ended(reader));
                };
                let frame = &d.frame;
                let sent = if frame.rtp.is_empty() {
                    let Some(codec) = codecs.get(d.slot) else { continue };
                    let Some(slot) = packetizers.get_mut(d.slot) else { continue };
                    if slot.is_none() {
                        *slot = rtp::packetize::packetizer_for(codec, MTU);
                    }
                    let Some(p) = slot.as_mut() else { continue };
                    packets.clear();
                    p.packetize(frame.as_ref(), &mut packets);
                    (packets.len(), client.send_rtp(d.slot, &packets))
                } else {
                    (frame.rtp.len(), client.send_rtp(d.slot, &frame.rtp))
                };
                status.shared.count_sent(sent.0 as u64, sent.1 as u64);
                // Sender reports date the medias on one wall clock: the destination syncs them.
                let now_t = tokio::time::Instant::now();
                if let Some(due) = next_sr.get_mut(d.slot).filter(|t| t.is_none_or(|t| now_t >= t)) {
                    *due = Some(now_t + SR_INTERVAL);
                    let wallclock = reader
                        .tracks
                        .get(d.slot)
                        .and_then(|t| t.track.wallclock_for(frame.timestamp))
                        .unwrap_or_else(std::time::SystemTime::now);
                    client.send_sender_report(d.slot, rtp::rtcp::ntp_from_system_time(wallclock), frame.timestamp);
                }
            }
            _ = sleep_until(deadline) => client.handle_timeout(now()),
        }
    }
}
