//! SDP (RFC 4566) as RTSP uses it: parse a DESCRIBE/ANNOUNCE body into the shared [`Media`] model, and
//! write one for our DESCRIBE replies.
//!
//! Our own parser rather than `sdp-types`: that crate rejects SDPs real cameras send (TP-Link's `o=` line
//! with an extra field, Macrovideo's missing `o=`, a missing `v=`), and one bad line fails the whole
//! description. Here only a missing media section or an unreadable `m=` line is an error; any other line
//! we cannot use is skipped and reported in [`SessionDescription::warnings`].

use media::{Codec, Direction, Kind, Media};

/// More media sections than any camera sends; bounds allocations for hostile input.
pub const MAX_MEDIAS: usize = 64;
const MAX_WARNINGS: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SdpError {
    #[error("SDP has no media section (no `m=` line)")]
    NoMedia,
    #[error("SDP line {line_no}: bad media line `{line}`: {reason}")]
    BadMediaLine { line_no: usize, line: String, reason: &'static str },
    #[error("SDP has more than {max} media sections")]
    TooManyMedias { max: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionDescription {
    /// `s=`; empty when absent.
    pub session_name: String,
    /// Session-level `a=control` (often `*`), the aggregate control URL for PLAY/PAUSE/TEARDOWN.
    pub control: Option<String>,
    /// In SDP order. `Media::direction` is the attribute exactly as the describer wrote it (media level,
    /// else session level, else `SendRecv`, RFC 4566's default); use [`client_direction`] to get the
    /// direction seen by an RTSP client.
    pub medias: Vec<Media>,
    /// Lines skipped as unreadable (for logs).
    pub warnings: Vec<String>,
}

/// The local direction of a media described by an RTSP server, seen by the client that read it.
///
/// Cameras write the attribute from the client's side (ONVIF streaming spec, go2rtc): `recvonly`, no
/// attribute (`sendrecv` by default) are tracks the client receives; `sendonly` marks the ONVIF
/// backchannel the client sends to. So everything but `SendOnly` is `RecvOnly` locally. (For an
/// ANNOUNCE body the server receives every track: its local direction is `RecvOnly` regardless.)
pub fn client_direction(described: Direction) -> Direction {
    match described {
        Direction::SendOnly => Direction::SendOnly,
        Direction::RecvOnly | Direction::SendRecv => Direction::RecvOnly,
    }
}

struct PendingMedia {
    kind: Kind,
    payload_types: Vec<u8>,
    rtpmaps: Vec<(u8, String, u32, u16)>,
    fmtps: Vec<(u8, String)>,
    direction: Option<Direction>,
    control: String,
}

fn direction_attr(s: &str) -> Option<Direction> {
    match s {
        "sendonly" => Some(Direction::SendOnly),
        "recvonly" => Some(Direction::RecvOnly),
        "sendrecv" => Some(Direction::SendRecv),
        _ => None,
    }
}

fn truncated(s: &str) -> String {
    let mut out: String = s.chars().take(120).collect();
    if s.chars().count() > 120 {
        out.push('…');
    }
    out
}

/// Static payload types of RFC 3551 §6 that cameras use without an `a=rtpmap`.
pub fn static_codec(pt: u8) -> Option<Codec> {
    let (name, rate, ch) = match pt {
        0 => ("PCMU", 8000, 0),
        3 => ("GSM", 8000, 0),
        4 => ("G723", 8000, 0),
        5 => ("DVI4", 8000, 0),
        6 => ("DVI4", 16000, 0),
        7 => ("LPC", 8000, 0),
        8 => ("PCMA", 8000, 0),
        9 => ("G722", 8000, 0),
        10 => ("L16", 44100, 2),
        11 => ("L16", 44100, 1),
        12 => ("QCELP", 8000, 0),
        13 => ("CN", 8000, 0),
        14 => ("MPA", 90000, 0),
        15 => ("G728", 8000, 0),
        16 => ("DVI4", 11025, 0),
        17 => ("DVI4", 22050, 0),
        18 => ("G729", 8000, 0),
        25 => ("CELB", 90000, 0),
        26 => ("JPEG", 90000, 0),
        28 => ("NV", 90000, 0),
        31 => ("H261", 90000, 0),
        32 => ("MPV", 90000, 0),
        33 => ("MP2T", 90000, 0),
        34 => ("H263", 90000, 0),
        _ => return None,
    };
    Some(Codec::new(name, rate, ch, pt))
}

/// `<pt> <name>/<rate>[/<channels>]`
fn parse_rtpmap(v: &str) -> Option<(u8, String, u32, u16)> {
    let (pt, rest) = v.trim().split_once(char::is_whitespace)?;
    let pt: u8 = pt.parse().ok()?;
    let mut parts = rest.trim().split('/');
    let name = parts.next()?.trim();
    if name.is_empty() {
        return None;
    }
    let rate: u32 = parts.next()?.trim().parse().ok()?;
    let channels: u16 = match parts.next() {
        Some(c) => c.trim().parse().ok()?,
        None => 0,
    };
    Some((pt, name.to_string(), rate, channels))
}

fn parse_media_line(v: &str, line_no: usize, line: &str) -> Result<PendingMedia, SdpError> {
    let bad = |reason| SdpError::BadMediaLine { line_no, line: truncated(line), reason };
    let mut fields = v.split_whitespace();
    let media = fields.next().ok_or_else(|| bad("no media type"))?;
    let port = fields.next().ok_or_else(|| bad("no port"))?;
    let _proto = fields.next().ok_or_else(|| bad("no transport protocol"))?;
    // `<port>[/<number of ports>]`
    let (p, n) = port.split_once('/').unwrap_or((port, "1"));
    if p.parse::<u16>().is_err() || n.parse::<u16>().is_err() {
        return Err(bad("port is not a number"));
    }
    // TP-Link writes `m=application/TP-LINK ...`: the kind is what precedes the slash.
    let kind = Kind::parse(&media.split('/').next().unwrap_or(media).to_ascii_lowercase());
    // Non-numeric formats (TP-Link's `smart/1/90000`) are skipped; their rtpmap may still name a codec.
    let mut payload_types = Vec::new();
    for f in fields {
        if let Ok(pt) = f.parse::<u8>() {
            if pt < 128 && !payload_types.contains(&pt) {
                payload_types.push(pt);
            }
        }
    }
    Ok(PendingMedia {
        kind,
        payload_types,
        rtpmaps: Vec::new(),
        fmtps: Vec::new(),
        direction: None,
        control: String::new(),
    })
}

fn finish(m: PendingMedia, session_dir: Option<Direction>) -> Media {
    let mut codecs = Vec::new();
    let push = |pt: u8, codecs: &mut Vec<Codec>| {
        let codec = match m.rtpmaps.iter().find(|r| r.0 == pt) {
            Some((_, name, rate, ch)) => Some(Codec::new(name, *rate, *ch, pt)),
            None => static_codec(pt),
        };
        if let Some(mut c) = codec {
            if let Some((_, f)) = m.fmtps.iter().find(|f| f.0 == pt) {
                c.fmtp = f.clone();
            }
            codecs.push(c);
        }
    };
    for &pt in &m.payload_types {
        push(pt, &mut codecs);
    }
    // rtpmaps for payload types the m= line did not list (TP-Link): keep them, after the listed ones.
    for r in &m.rtpmaps {
        if !m.payload_types.contains(&r.0) && !codecs.iter().any(|c| c.payload_type == r.0) {
            push(r.0, &mut codecs);
        }
    }
    Media {
        kind: m.kind,
        direction: m.direction.or(session_dir).unwrap_or(Direction::SendRecv),
        codecs,
        control: m.control,
    }
}

/// Parses an SDP. Accepts `\n` or `\r\n`, trailing spaces, any line order before the first `m=`.
pub fn parse(text: &[u8]) -> Result<SessionDescription, SdpError> {
    let text = String::from_utf8_lossy(text);
    let mut sd = SessionDescription::default();
    let mut session_dir = None;
    let mut pending: Vec<PendingMedia> = Vec::new();
    let warn = |sd: &mut SessionDescription, msg: String| {
        if sd.warnings.len() < MAX_WARNINGS {
            sd.warnings.push(msg);
        }
    };
    for (i, raw) in text.split('\n').enumerate() {
        let line_no = i + 1;
        let line = raw.trim_end_matches(['\r', ' ', '\t']);
        let line = line.trim_start();
        if line.is_empty() {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            warn(&mut sd, format!("line {line_no}: not `x=value`: `{}`", truncated(line)));
            continue;
        };
        match key.trim() {
            "m" => {
                if pending.len() >= MAX_MEDIAS {
                    return Err(SdpError::TooManyMedias { max: MAX_MEDIAS });
                }
                pending.push(parse_media_line(value, line_no, line)?);
            }
            "s" if pending.is_empty() => sd.session_name = value.trim().to_string(),
            "a" => {
                let (name, val) = match value.split_once(':') {
                    Some((n, v)) => (n.trim(), Some(v.trim())),
                    None => (value.trim(), None),
                };
                let target = pending.last_mut();
                match (name, val, target) {
                    ("control", Some(v), Some(m)) => m.control = v.to_string(),
                    ("control", Some(v), None) => sd.control = Some(v.to_string()),
                    (d, None, target) if direction_attr(d).is_some() => match target {
                        Some(m) => m.direction = direction_attr(d),
                        None => session_dir = direction_attr(d),
                    },
                    ("rtpmap", Some(v), Some(m)) => match parse_rtpmap(v) {
                        Some(r) => {
                            if !m.rtpmaps.iter().any(|x| x.0 == r.0) {
                                m.rtpmaps.push(r);
                            }
                        }
                        None => warn(&mut sd, format!("line {line_no}: bad rtpmap `{}`", truncated(line))),
                    },
                    ("fmtp", Some(v), Some(m)) => {
                        let (pt, params) = v.split_once(char::is_whitespace).unwrap_or((v, ""));
                        match pt.parse::<u8>() {
                            Ok(pt) if !m.fmtps.iter().any(|x| x.0 == pt) => {
                                m.fmtps.push((pt, params.trim().to_string()))
                            }
                            Ok(_) => {}
                            Err(_) => warn(&mut sd, format!("line {line_no}: bad fmtp `{}`", truncated(line))),
                        }
                    }
                    _ => {} // unknown/vendor attributes
                }
            }
            _ => {} // v=, o=, c=, t=, b=, e=, u=, i=... carry nothing we need.
        }
    }
    if pending.is_empty() {
        return Err(SdpError::NoMedia);
    }
    sd.medias = pending.into_iter().map(|m| finish(m, session_dir)).collect();
    Ok(sd)
}

/// Removes characters that would break the line structure.
fn clean(s: &str) -> String {
    s.chars().filter(|c| *c != '\r' && *c != '\n').collect()
}

/// Writes an SDP for a DESCRIBE reply (or an ANNOUNCE). Track `i` gets `a=control:trackID=i`, matching
/// what [`crate::url::parse_request_uri`] strips on SETUP. Codecs without a name are left out.
pub fn write(medias: &[Media], session_name: &str, origin_address: &str) -> String {
    use std::fmt::Write;
    let origin = clean(origin_address);
    let origin = if origin.is_empty() { "0.0.0.0".to_string() } else { origin };
    let ip_ver = if origin.contains(':') { "IP6" } else { "IP4" };
    let name = clean(session_name);
    // `s=` must not be empty (RFC 4566 §5.3).
    let name = if name.trim().is_empty() { "-".to_string() } else { name };
    let mut s = String::with_capacity(512);
    // Writing to a String cannot fail; the results below are ignored for that reason.
    let _ = write!(
        s,
        "v=0\r\no=- 0 0 IN {ip_ver} {origin}\r\ns={name}\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\na=tool:camrelay\r\n"
    );
    for (i, m) in medias.iter().enumerate() {
        let codecs: Vec<&Codec> = m.codecs.iter().filter(|c| !c.name.is_empty()).collect();
        let _ = write!(s, "m={} 0 RTP/AVP", m.kind.as_str());
        if codecs.is_empty() {
            // An m= line needs at least one format; 96 with no rtpmap is the least wrong.
            s.push_str(" 96");
        }
        for c in &codecs {
            let _ = write!(s, " {}", c.payload_type);
        }
        s.push_str("\r\n");
        for c in &codecs {
            let _ = write!(s, "a=rtpmap:{} {}/{}", c.payload_type, clean(&c.name), c.clock_rate);
            if c.channels > 0 && m.kind == Kind::Audio {
                let _ = write!(s, "/{}", c.channels);
            }
            s.push_str("\r\n");
            if !c.fmtp.is_empty() {
                let _ = write!(s, "a=fmtp:{} {}\r\n", c.payload_type, clean(&c.fmtp));
            }
        }
        let _ = write!(s, "a=control:trackID={i}\r\na={}\r\n", m.direction.as_str());
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const FFMPEG_ANNOUNCE: &str = "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=No Name\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\na=tool:libavformat 61.7.100\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=1; sprop-parameter-sets=Z2QAH6zZQFAFuhAAAAMAEAAAAwPI8YMZYA==,aOvjyyLA; profile-level-id=64001F\r\na=control:streamid=0\r\nm=audio 0 RTP/AVP 97\r\nb=AS:128\r\na=rtpmap:97 MPEG4-GENERIC/48000/2\r\na=fmtp:97 profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3; config=119056E500\r\na=control:streamid=1\r\n";

    #[test]
    fn ffmpeg_announce() {
        let sd = parse(FFMPEG_ANNOUNCE.as_bytes()).unwrap();
        assert_eq!(sd.session_name, "No Name");
        assert_eq!(sd.control, None);
        assert_eq!(sd.medias.len(), 2);
        let v = &sd.medias[0];
        assert_eq!(v.kind, Kind::Video);
        assert_eq!(v.direction, Direction::SendRecv);
        assert_eq!(v.control, "streamid=0");
        let c = &v.codecs[0];
        assert_eq!((c.name.as_str(), c.clock_rate, c.payload_type), ("H264", 90000, 96));
        assert_eq!(c.fmtp_param("profile-level-id"), Some("64001F"));
        assert_eq!(c.fmtp_param("sprop-parameter-sets"), Some("Z2QAH6zZQFAFuhAAAAMAEAAAAwPI8YMZYA==,aOvjyyLA"));
        assert_eq!(c.fmtp_param("packetization-mode"), Some("1"));
        let a = &sd.medias[1];
        assert_eq!(a.kind, Kind::Audio);
        let c = &a.codecs[0];
        assert_eq!((c.name.as_str(), c.clock_rate, c.channels), (media::codec::AAC, 48000, 2));
        assert_eq!(c.fmtp_param("config"), Some("119056E500"));
        assert_eq!(a.control, "streamid=1");
    }

    #[test]
    fn lenient_forms() {
        let sd = parse(b"s=x \na=control:*\na=sendonly\nm=audio 0 RTP/AVP 0 8 26 14 101\na=rtpmap:101 telephone-event/8000\nm=Application 0 RTP/AVP 107\na=rtpmap:107 vnd.onvif.metadata/90000\na=recvonly\njunk\na=rtpmap:bad\n").unwrap();
        assert_eq!(sd.session_name, "x");
        assert_eq!(sd.control.as_deref(), Some("*"));
        let a = &sd.medias[0];
        assert_eq!(a.direction, Direction::SendOnly); // from the session level
        let names: Vec<_> = a.codecs.iter().map(|c| (c.name.as_str(), c.clock_rate)).collect();
        assert_eq!(names, [("PCMU", 8000), ("PCMA", 8000), ("JPEG", 90000), ("MPA", 90000), ("TELEPHONE-EVENT", 8000)]);
        assert_eq!(sd.medias[1].kind, Kind::Application);
        assert_eq!(sd.medias[1].direction, Direction::RecvOnly);
        assert_eq!(sd.medias[1].codecs[0].name, "VND.ONVIF.METADATA");
        assert_eq!(sd.warnings.len(), 2);
    }

    #[test]
    fn errors() {
        assert_eq!(parse(b"v=0\r\ns=x\r\n"), Err(SdpError::NoMedia));
        assert_eq!(parse(b""), Err(SdpError::NoMedia));
        assert_eq!(parse(b"\xff\xfe\x00garbage"), Err(SdpError::NoMedia));
        let e = parse(b"v=0\nm=video\n").unwrap_err();
        assert!(e.to_string().contains("line 2") && e.to_string().contains("m=video"), "{e}");
        let e = parse(b"v=0\nm=video x RTP/AVP 96\n").unwrap_err();
        assert!(matches!(e, SdpError::BadMediaLine { line_no: 2, reason: "port is not a number", .. }));
        let many = "m=video 0 RTP/AVP 96\n".repeat(MAX_MEDIAS + 1);
        assert_eq!(parse(many.as_bytes()), Err(SdpError::TooManyMedias { max: MAX_MEDIAS }));
    }

    #[test]
    fn write_round_trip() {
        let h264 = Codec::new("H264", 90000, 0, 96)
            .with_fmtp("packetization-mode=1;profile-level-id=42e01f;sprop-parameter-sets=Z0LgH9oBQBbpUgAAAwACAAADAGR4wZU=,aM4NyA==");
        let medias = vec![
            Media::new(Kind::Video, Direction::SendOnly, vec![h264.clone()]),
            Media::new(
                Kind::Audio,
                Direction::SendOnly,
                vec![Codec::new("OPUS", 48000, 2, 111), Codec::new("PCMA", 8000, 0, 8)],
            ),
            Media::new(Kind::Application, Direction::RecvOnly, vec![]),
        ];
        let text = write(&medias, "cam1", "192.168.1.2");
        assert!(text.starts_with("v=0\r\no=- 0 0 IN IP4 192.168.1.2\r\ns=cam1\r\nc=IN IP4 0.0.0.0\r\nt=0 0\r\n"));
        assert!(text.contains("m=audio 0 RTP/AVP 111 8\r\na=rtpmap:111 OPUS/48000/2\r\na=rtpmap:8 PCMA/8000\r\n"));
        let sd = parse(text.as_bytes()).unwrap();
        assert_eq!(sd.session_name, "cam1");
        assert_eq!(sd.medias.len(), 3);
        assert_eq!(sd.medias[0].codecs, vec![h264]);
        assert_eq!(sd.medias[0].control, "trackID=0");
        assert_eq!(sd.medias[0].direction, Direction::SendOnly);
        assert_eq!(sd.medias[1].codecs, medias[1].codecs);
        assert_eq!(sd.medias[1].control, "trackID=1");
        assert_eq!(sd.medias[2].control, "trackID=2");
        assert_eq!(sd.medias[2].direction, Direction::RecvOnly);
        assert!(sd.medias[2].codecs.is_empty());

        let text = write(&[], "evil\r\nm=video", "::1");
        assert!(text.contains("IN IP6 ::1") && text.contains("s=evilm=video\r\n"));
        assert!(write(&[], "", "").contains("s=-\r\n"));
    }

    #[test]
    fn client_direction_mapping() {
        assert_eq!(client_direction(Direction::SendRecv), Direction::RecvOnly);
        assert_eq!(client_direction(Direction::RecvOnly), Direction::RecvOnly);
        assert_eq!(client_direction(Direction::SendOnly), Direction::SendOnly);
    }
}
