//! Entry points for the fuzz targets in `crates/camrelay/fuzz`: thin wrappers around the crate's
//! private parsers of network input. Not an API: nothing else calls these.

use media::MediaFilter;
use std::net::SocketAddr;
use std::time::Instant;
use str0m::change::SdpOffer;
use str0m::media::Mid;
use str0m::IceCreds;

use crate::servers::webrtc as server;
use crate::sources::{http, webrtc as source};

// ------------------------------------------------------------------------------ UDP datagrams

/// What arrives on a `udp+mpegts://` / `udp+rtp://` socket: `data` is cut into datagrams (a 2-byte
/// length before each) from senders picked by a byte, fed to the sender filter, the MPEG-TS continuity
/// counter and the RTP receiver (H.264 and AAC medias). Checks: a `?source=` filter takes only its
/// address; counts stay within what came in; frames only for the medias; nothing waits after a flush.
pub fn udp_datagrams(data: &[u8]) {
    use crate::sources::udp::{RtpReceiver, SenderFilter, TsContinuity};
    use media::{Codec, Direction, Kind, Media};
    let medias = [
        Media::new(Kind::Video, Direction::RecvOnly, vec![Codec::new("H264", 90_000, 0, 96)]),
        Media::new(Kind::Audio, Direction::RecvOnly, vec![Codec::new("MPEG4-GENERIC", 48_000, 2, 97)]),
    ];
    let mut rtp = RtpReceiver::new(&medias);
    let mut ts = TsContinuity::default();
    let allowed: SocketAddr = "10.0.0.1:5000".parse().expect("address");
    let mut only = SenderFilter::new(Some(allowed.ip()));
    let mut first = SenderFilter::new(None);
    let start = tokio::time::Instant::now();
    let (mut rest, mut n, mut ts_packets, mut frames, mut ms) = (data, 0u64, 0u64, Vec::new(), 0u64);
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 3);
        let from = SocketAddr::from(([10, 0, 0, rest[2] & 3], 5000 + u16::from(rest[2] >> 6)));
        // A sender's silence: 10 ms, or past the hold time.
        ms += if rest[2] & 0x20 != 0 { 2500 } else { 10 };
        let now = start + std::time::Duration::from_millis(ms);
        let datagram = &rest[3..3 + len];
        rest = &rest[3 + len..];
        n += 1;
        assert!(!only.accept(from, now) || from.ip() == allowed.ip(), "?source= took another sender");
        first.accept(from, now);
        ts.push(datagram);
        ts_packets += (datagram.len() / 188) as u64;
        rtp.push(bytes::Bytes::copy_from_slice(datagram), &mut frames);
    }
    assert!(ts.lost <= ts_packets * 15);
    assert!(rtp.packets + rtp.errors <= n);
    assert!(rtp.reordered() <= rtp.packets);
    rtp.flush(&mut frames);
    assert!(!rtp.buffered());
    assert!(frames.iter().all(|(i, _)| *i < medias.len()));
}

// ------------------------------------------------------------------------------- HLS playlists

/// An HLS source's playlist (`sources::hls::parse`). Checks: a master playlist has variants and a
/// bandwidth pick finds one; a media playlist has a target duration, finite durations within it and
/// consecutive sequence numbers.
pub fn hls_playlist(text: &str) {
    use crate::sources::hls::{parse, Pick, Playlist};
    match parse(text) {
        Ok(Playlist::Master(v)) => {
            assert!(!v.is_empty());
            for pick in [Pick::Highest, Pick::Lowest, Pick::AtMost(1_000_000)] {
                assert!(pick.choose(&v).is_some());
            }
        }
        Ok(Playlist::Media(m)) => {
            assert!(m.target_duration > 0);
            for w in m.segments.windows(2) {
                assert_eq!(w[1].sequence, w[0].sequence + 1);
            }
            let within = |d: f64| d.is_finite() && d.round() <= m.target_duration as f64;
            assert!(m.segments.iter().all(|s| within(s.duration)));
        }
        Err(e) => assert!(!e.is_empty()),
    }
}

// ------------------------------------------------------------------------------------ STUN

/// The ICE username's local part of a STUN binding request (the WebRTC socket's demultiplexer).
pub fn stun_local_ufrag(data: &[u8]) -> Option<&str> {
    server::stun::local_ufrag(data)
}

/// Our address from a STUN server's binding response to transaction `id`.
pub fn stun_mapped_address(data: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    server::stun::mapped_address(data, id)
}

// ------------------------------------------------------------------------ WebRTC offers (server)

/// The reader filters `POST /api/webrtc` derives from an offer's `a=rtpmap` lines.
pub fn webrtc_offer_filters(sdp: &str) -> Vec<MediaFilter> {
    server::filters_for(&server::offered_codecs(sdp))
}

/// Whether an offer's peer sends audio (a microphone for two-way audio).
pub fn webrtc_offer_sends_audio(sdp: &str) -> bool {
    server::offer_sends_audio(sdp)
}

/// `sdp` with the medias `mids` made send-only.
pub fn webrtc_not_receiving(sdp: &str, mids: &[&str]) -> String {
    let mids: Vec<Mid> = mids.iter().map(|m| Mid::from(*m)).collect();
    server::not_receiving(sdp, &mids)
}

/// The answer str0m makes to an offer, as `answer_offer` makes it (one host candidate, output drained
/// to the first timeout) with a fresh `rtc_config`, the offer's medias marked not receiving as a
/// playback session does. `Err` when str0m refuses the offer (the message the peer gets for a parse
/// error).
pub fn webrtc_answer(offer_sdp: &str) -> Result<String, String> {
    let offer = SdpOffer::from_sdp_string(offer_sdp).map_err(|e| server::sdp_error(&e, offer_sdp))?;
    let mut rtc = server::rtc_config(&IceCreds::new()).build(Instant::now());
    // The server's own offer-answering step, with its guard against str0m's assertions.
    let (answer, _) = server::answer_offer_on_loopback(&mut rtc, offer).map_err(|e| e.1)?;
    // What a session reads back from str0m for each of the offer's `a=mid:` lines.
    let mut receiving = Vec::new();
    for m in offer_sdp.lines().filter_map(|l| l.trim().strip_prefix("a=mid:")) {
        let mid = Mid::from(m.trim());
        let Some(media) = rtc.media(mid) else { continue };
        if media.direction().is_receiving() {
            receiving.push(mid);
        }
        if let Some(writer) = rtc.writer(mid) {
            for p in writer.payload_params() {
                let _ = (p.pt(), p.spec().clock_rate, p.spec().format.packetization_mode);
            }
        }
    }
    Ok(server::not_receiving(&answer.to_sdp_string(), &receiving))
}

// ------------------------------------------------------------------------------- source URLs

/// What the fuzz targets check of a parsed source URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub host: String,
    pub port: u16,
    /// Path and query, `/` at least.
    pub path: String,
    pub userinfo: Option<String>,
    /// The `Host` header value.
    pub host_header: String,
    /// The URL as the module writes it back (`origin()` / `url()`).
    pub display: String,
}

fn http_parsed(t: &http::Target) -> ParsedUrl {
    ParsedUrl {
        host: t.host.clone(),
        port: t.port,
        path: t.path.clone(),
        userinfo: t.userinfo.clone(),
        host_header: t.host_header(),
        display: t.origin(),
    }
}

fn source_parsed(t: &source::Target) -> ParsedUrl {
    let _ = t.basic_auth();
    ParsedUrl {
        host: t.host.clone(),
        port: t.port,
        path: t.path.clone(),
        userinfo: t.userinfo.clone(),
        host_header: t.host_header(),
        display: t.url(),
    }
}

/// An `http(s)://`, `httpx://` or `tcp://` source URL (without `#` parameters).
pub fn http_target(url: &str) -> Result<ParsedUrl, String> {
    http::Target::parse(url).map(|t| http_parsed(&t))
}

/// An HTTP source's redirect (`Location`) from `url`.
pub fn http_redirect(url: &str, location: &str) -> Result<ParsedUrl, String> {
    http::Target::parse(url)?.redirect(location).map(|t| http_parsed(&t))
}

/// Request headers: (name, value).
pub type Headers = Vec<(String, String)>;

/// An HTTP source URL split into its base and its `#header=` parameters.
pub fn http_split_url(url: &str) -> Result<(&str, Headers), String> {
    http::split_url(url).map(|(base, params)| (base, params.headers))
}

/// A `webrtc:` source's signalling URL (after `webrtc:`, without `#` parameters).
pub fn webrtc_source_target(url: &str) -> Result<ParsedUrl, String> {
    source::Target::parse(url).map(|t| source_parsed(&t))
}

/// A WHEP `Location` (redirect or session URL) against the signalling URL `url`.
pub fn webrtc_source_resolve(url: &str, location: &str) -> Result<ParsedUrl, String> {
    source::Target::parse(url)?.resolve(location).map(|t| source_parsed(&t))
}

/// The SDP of a WHEP answer body.
pub fn webrtc_source_answer_sdp(content_type: &str, body: &[u8]) -> Result<String, String> {
    source::answer_sdp(content_type, body)
}

/// The readable part of a signalling server's error body.
pub fn webrtc_source_error_body(body: &[u8]) -> String {
    source::error_body(body)
}

/// A go2rtc WebSocket message, as the source reads it (`Debug` of what it acts on).
pub fn webrtc_source_ws_message(text: &str) -> String {
    format!("{:?}", source::parse_ws_message(text))
}

/// A remote ICE candidate line, as the source adds it (`None`: ignored).
pub fn webrtc_source_candidate(line: &str) -> Option<String> {
    source::parse_candidate(line).map(|c| c.to_sdp_string())
}

// ------------------------------------------------------------------------------ MediaMTX URLs

/// What a request to MediaMTX's HLS (`hls`) or WebRTC HTTP server maps to: go2rtc's API URI,
/// `page:NAME`, `script`, or `None` (404).
pub fn mediamtx_url(hls: bool, method: &str, path: &str, query: Option<&str>) -> Option<String> {
    let method = axum::http::Method::from_bytes(method.as_bytes()).ok()?;
    crate::servers::mediamtx_urls::route_for_fuzzing(hls, &method, path, query)
}

/// Whether `s` parses as an HTTP request URI (what the API router is handed).
pub fn uri_parses(s: &str) -> bool {
    s.parse::<axum::http::Uri>().is_ok()
}

/// The path and query of a request target, as the server sees them (`None` when it does not parse).
pub fn request_path_and_query(s: &str) -> Option<(String, Option<String>)> {
    let uri = s.parse::<axum::http::Uri>().ok()?;
    Some((uri.path().to_string(), uri.query().map(str::to_string)))
}

/// A query value as the API decodes it.
pub fn query_value(s: &str) -> String {
    media::query::percent_decode(s)
}

// ------------------------------------------------------------------------------ SRT

/// A datagram on the SRT listener's socket: srt-protocol's packet parser (what srt-tokio runs on every
/// datagram: data packets, control packets, handshakes with their extensions: stream id, key
/// material), for IPv4 and IPv6 peers. Checks: a parsed packet serializes, and its serialization
/// parses again, without panicking.
pub fn srt_datagram(data: &[u8]) {
    for ipv6 in [false, true] {
        let mut buf = data;
        let Ok(packet) = srt_protocol::packet::Packet::parse(&mut buf, ipv6) else { continue };
        let mut out = Vec::new();
        packet.serialize(&mut out);
        // Parsing the serialization must not panic either. It need not give the same packet back:
        // srt-protocol writes extension flags its parser read without their extension (found here;
        // camrelay never re-serializes a received packet).
        let _ = srt_protocol::packet::Packet::parse(&mut out.as_slice(), ipv6);
    }
}

/// A caller's `streamid` (`servers::srt::StreamId::parse`): MediaMTX's `action:path[:user:pass][:query]`
/// and SRT's `#!::r=...,m=...` forms. Checks: a parsed id names a non-empty path without control
/// characters; an error never repeats a password (`s=` of the standard form, the fourth field of
/// MediaMTX's).
pub fn srt_stream_id(text: &str) {
    use crate::servers::srt::StreamId;
    match StreamId::parse(text) {
        Ok(id) => {
            assert!(!id.path.is_empty() && !id.path.chars().any(char::is_control), "{id:?}");
        }
        Err(e) => {
            let secret = match text.strip_prefix("#!::") {
                Some(rest) => rest.split(',').find_map(|kv| kv.strip_prefix("s=")).map(str::to_string),
                None => text.split(':').nth(3).map(str::to_string),
            };
            // A password that is also elsewhere in the id, or could be a word of the message, proves nothing.
            let telling = |s: &String| {
                s.len() >= 6 && s.chars().any(|c| c.is_ascii_digit()) && text.matches(s.as_str()).count() == 1
            };
            if let Some(secret) = secret.filter(telling) {
                assert!(!e.contains(&secret), "the error repeats the password: {e}");
            }
        }
    }
}

// ------------------------------------------------------------------------------ audio transcoding

/// Audio a camera sends (or a peer's microphone): `data[0]` picks the input codec (AAC with the
/// AudioSpecificConfig in `data[1..3]`, G.711 A/µ-law or L16 at a rate and channel count from
/// `data[1..3]`, Opus) and the target (Opus, PCMA, PCMU); the rest is cut into frames (a 2-byte length
/// and a 1-byte timestamp step in 1/8 s before each), fed to `audio::Transcoder`. Third-party decoder
/// panics are caught by the transcoder (counted as bad frames), so the panic hook is silenced around it.
/// Returns the transcoder's counters and the encoded frames, or `None` for a pair it refused.
pub fn audio_transcode(data: &[u8]) -> Option<(crate::audio::Stats, Vec<crate::audio::Encoded>)> {
    let (&pick, rest) = data.split_first()?;
    let (head, mut body) = rest.split_at_checked(2)?;
    let rates = [8_000, 11_025, 16_000, 22_050, 32_000, 44_100, 48_000, 0, 96_000, 12_345];
    let rate = rates[usize::from(head[0]) % rates.len()];
    let channels = u16::from(head[1] % 4);
    let input = match pick % 5 {
        0 => media::Codec::new(media::codec::AAC, rate, channels, 97)
            .with_fmtp(format!("config={:02x}{:02x}", head[0], head[1])),
        1 => media::Codec::new(media::codec::PCMA, rate, channels, 8),
        2 => media::Codec::new(media::codec::PCMU, rate, channels, 0),
        3 => media::Codec::new(media::codec::L16, rate, channels, 96),
        _ => media::Codec::new(media::codec::OPUS, 48_000, 2, 111),
    };
    let target = crate::audio::target_codec(["OPUS", "PCMA", "PCMU"][usize::from(pick / 5) % 3])?;
    let mut t = crate::audio::Transcoder::new(&input, &target).ok()?;
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let mut out = Vec::new();
    let mut ts = 0u32;
    while let Some((h, more)) = body.split_at_checked(3) {
        let len = usize::from(u16::from_be_bytes([h[0], h[1]])).min(more.len());
        ts = ts.wrapping_add(u32::from(h[2]) * rate.max(1) / 8);
        let (frame, next) = more.split_at(len);
        t.push(ts, frame, &mut out);
        body = next;
    }
    std::panic::set_hook(hook);
    Some((t.stats, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wrappers reach what they wrap (a fuzz target that only ever sees errors finds nothing).
    #[test]
    fn entry_points_reach_their_parsers() {
        let offer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n\
            a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n\
            a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n\
            a=setup:actpass\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1;profile-level-id=42e01f\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=sendrecv\r\na=rtcp-mux\r\n\
            a=rtpmap:111 opus/48000/2\r\n";
        assert!(webrtc_offer_sends_audio(offer));
        assert_eq!(webrtc_offer_filters(offer).len(), 2);
        let answer = webrtc_answer(offer).unwrap();
        assert!(answer.contains("a=mid:1\r\na=sendonly\r\n"), "{answer}");
        let t = http_redirect("http://u:p@cam/a/b", "c").unwrap();
        assert_eq!((t.path.as_str(), t.userinfo.as_deref()), ("/a/c", Some("u:p")));
        assert_eq!(webrtc_source_target("ws://h:1/api/ws").unwrap().display, "ws://h:1/api/ws");
    }

    /// The seeds of `srt_packets` (an encrypted ffmpeg session's datagrams, stream ids) and its
    /// regressions (`regression_*`: a handshake with a config extension other than the stream id,
    /// which panicked in srt-protocol, now refused or ignored) pass the target's checks; the
    /// handshake seeds parse.
    #[test]
    fn srt_congestion_warning_and_peer_error_do_not_panic_a_connection() {
        // srt-protocol answered both control packets with `todo!()`: one datagram from the peer of an
        // established connection panicked its task. Fixed in vendor/srt-protocol (connection/mod.rs).
        use srt_protocol::connection::{Action, Connection, ConnectionSettings, DuplexConnection, Input};
        use srt_protocol::options::{LiveBandwidthMode, PacketCount, PacketSize};
        use srt_protocol::packet::{ControlPacket, ControlTypes, Packet, SeqNumber, SocketId, TimeStamp};
        use std::time::{Duration, Instant};
        let now = Instant::now();
        let remote: std::net::SocketAddr = ([127, 0, 0, 1], 2223).into();
        let settings = ConnectionSettings {
            remote,
            remote_sockid: SocketId(2),
            local_sockid: SocketId(2),
            socket_start_time: now,
            rtt: Duration::default(),
            init_seq_num: SeqNumber::new_truncate(0),
            max_packet_size: PacketSize(1316),
            max_flow_size: PacketCount(8192),
            send_tsbpd_latency: Duration::from_secs(1),
            recv_tsbpd_latency: Duration::from_secs(1),
            recv_buffer_size: PacketCount(1024),
            send_buffer_size: PacketCount(1024),
            cipher: None,
            stream_id: None,
            bandwidth: LiveBandwidthMode::Unlimited,
            statistics_interval: Duration::from_secs(10),
            peer_idle_timeout: Duration::from_secs(5),
            too_late_packet_drop: true,
        };
        let handshake = srt_protocol::protocol::handshake::Handshake::Connector;
        let mut connection = DuplexConnection::new(Connection { settings, handshake });
        for control_type in [ControlTypes::CongestionWarning, ControlTypes::PeerError(4000)] {
            let packet =
                Packet::Control(ControlPacket { timestamp: TimeStamp::MIN, dest_sockid: SocketId(2), control_type });
            let _ = connection.handle_input(now, Input::Packet(Ok((packet, remote))));
        }
        // The peer's error closes the connection as its shutdown would.
        let closed =
            (0..16).any(|_| connection.handle_input(now + Duration::from_secs(10), Input::Timer) == Action::Close);
        assert!(closed);
    }

    #[test]
    fn srt_seeds_and_regressions() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/srt_packets");
        let mut count = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let Some((selector, rest)) = data.split_first() else { continue };
            if selector & 1 == 1 {
                srt_stream_id(std::str::from_utf8(rest).unwrap());
            } else {
                srt_datagram(rest);
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("handshake") {
                    let parsed = srt_protocol::packet::Packet::parse(&mut &rest[..], false);
                    assert!(parsed.is_ok(), "{name}: {parsed:?}");
                }
            }
            count += 1;
        }
        assert!(count >= 10, "{count} seeds in {}", dir.display());
    }

    /// Short SRT extensions are errors or empty, never panics (vendor/srt-protocol; the fuzz target
    /// found a zero-length stream id; a short group extension read past its end the same way).
    #[test]
    fn short_srt_extensions_do_not_panic() {
        use srt_protocol::packet::SrtControlPacket;
        let empty: &[u8] = &[];
        let parsed = SrtControlPacket::parse(5, &mut &empty[..]);
        assert!(matches!(&parsed, Ok(SrtControlPacket::StreamId(s)) if s.is_empty()), "{parsed:?}");
        assert!(SrtControlPacket::parse(6, &mut &empty[..]).is_ok());
        assert!(SrtControlPacket::parse(8, &mut &[1u8, 2][..]).is_err());
        assert!(SrtControlPacket::parse(8, &mut &empty[..]).is_err());
        // A reject (type 0) has no payload; sizing it for serialization was `unimplemented!()`.
        let reject = SrtControlPacket::parse(0, &mut &empty[..]).unwrap();
        assert!(matches!(reject, SrtControlPacket::Reject));
        assert_eq!(reject.size_words(), 0);
    }
}
