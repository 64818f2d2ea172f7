//! SDP and codec helpers of the `webrtc:` source: remote candidates, the medias and codecs an
//! answer sends, H.264 keyframes.

use media::{Codec, Kind};
use str0m::format::Codec as RtcCodec;
use str0m::media::Mid;
use str0m::net::Protocol;
use str0m::{Candidate, Rtc};

use super::peer::Answered;

/// A remote candidate line (`candidate:...` or `a=candidate:...`), `None` for empty ones (end of
/// candidates) and ones we cannot use (mDNS names, TCP).
pub(crate) fn parse_candidate(line: &str) -> Option<Candidate> {
    let line = line.trim();
    let line = line.strip_prefix("a=").unwrap_or(line);
    if line.is_empty() {
        return None;
    }
    match Candidate::from_sdp_string(line) {
        Ok(c) if c.proto() == Protocol::Udp => Some(c),
        Ok(_) => None,
        Err(e) => {
            tracing::debug!("ignoring remote candidate {line:?}: {e}");
            None
        }
    }
}

/// The medias of an applied answer that the remote sends, with the codecs it lists that we take.
pub(super) fn answered_medias(rtc: &Rtc, mids: &[(Mid, Kind)]) -> Vec<Answered> {
    let mut out = Vec::new();
    for (mid, kind) in mids {
        let Some(m) = rtc.media(*mid) else { continue };
        if !m.direction().is_receiving() {
            continue;
        }
        let mut codecs: Vec<(Codec, RtcCodec)> = Vec::new();
        for pt in m.remote_pts() {
            let Some(p) = rtc.codec_config().params().iter().find(|p| p.pt() == *pt) else { continue };
            let spec = p.spec();
            let rate = spec.clock_rate.get();
            let codec = match spec.codec {
                RtcCodec::H264 => Codec::new(media::codec::H264, rate, 0, **pt).with_fmtp("packetization-mode=1"),
                RtcCodec::Opus => Codec::new(media::codec::OPUS, rate, spec.channels.unwrap_or(2) as u16, **pt),
                RtcCodec::PCMA => Codec::new(media::codec::PCMA, rate, 1, **pt),
                RtcCodec::PCMU => Codec::new(media::codec::PCMU, rate, 1, **pt),
                _ => continue,
            };
            if !codecs.iter().any(|(c, _)| c.name == codec.name) {
                codecs.push((codec, spec.codec));
            }
        }
        if !codecs.is_empty() {
            out.push(Answered { mid: *mid, kind: *kind, codecs });
        }
    }
    out
}

pub(super) fn is_h264_keyframe(annexb: &[u8]) -> bool {
    media::h264::annexb_nals(annexb).any(|n| !n.is_empty() && media::h264::nal_type(n[0]) == 5)
}

pub(super) fn snippet(text: &str) -> String {
    let s: String = text.chars().take(80).collect();
    format!("{:?}{}", s, if text.chars().count() > 80 { "..." } else { "" })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::servers::webrtc::rtc_config;
    use std::time::Instant;
    use str0m::media::MediaKind;
    use str0m::IceCreds;

    #[test]
    fn candidates_parse_and_junk_is_ignored() {
        let c = parse_candidate("a=candidate:1 1 udp 2130706431 127.0.0.1 8555 typ host").unwrap();
        assert_eq!(c.addr(), "127.0.0.1:8555".parse().unwrap());
        assert!(parse_candidate("candidate:1 1 udp 2130706431 127.0.0.1 8555 typ host").is_some());
        assert!(parse_candidate("").is_none());
        assert!(parse_candidate("candidate:garbage").is_none());
        assert!(parse_candidate("candidate:1 1 tcp 1 127.0.0.1 8555 typ host tcptype passive").is_none());
    }

    /// Our offer, answered by str0m as an ICE-lite server that sends only H.264 and lists every
    /// audio codec: video resolves at once, audio waits for a packet.
    #[test]
    fn answered_medias_follow_the_answer() {
        let mut ours = rtc_config(&IceCreds::new()).set_ice_lite(false).build(Instant::now());
        let mut api = ours.sdp_api();
        let v = api.add_media(MediaKind::Video, str0m::media::Direction::RecvOnly, None, None, None);
        let a = api.add_media(MediaKind::Audio, str0m::media::Direction::RecvOnly, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let mut theirs = rtc_config(&IceCreds::new()).build(Instant::now());
        let answer = theirs.sdp_api().accept_offer(offer).unwrap();
        ours.sdp_api().accept_answer(pending, answer).unwrap();
        let answered = answered_medias(&ours, &[(v, Kind::Video), (a, Kind::Audio)]);
        assert_eq!(answered.len(), 2);
        assert_eq!(answered[0].kind, Kind::Video);
        assert_eq!(answered[0].codecs.len(), 1);
        assert_eq!(answered[0].codecs[0].0.name, "H264");
        let audio: Vec<&str> = answered[1].codecs.iter().map(|(c, _)| c.name.as_str()).collect();
        assert_eq!(audio, ["OPUS", "PCMA", "PCMU"]);
    }

    #[test]
    fn keyframes_are_found_in_annexb() {
        assert!(is_h264_keyframe(b"\0\0\0\x01\x67\x42\0\0\0\x01\x65\x88"));
        assert!(!is_h264_keyframe(b"\0\0\0\x01\x41\x9a"));
        assert!(!is_h264_keyframe(b""));
    }
}
