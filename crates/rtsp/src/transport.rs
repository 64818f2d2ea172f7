//! The RTSP `Transport` header (RFC 2326 §12.39): a comma-separated list of alternatives, each
//! `RTP/AVP[/TCP|/UDP]` followed by `;`-separated parameters. Parameters we do not know, or whose value
//! we cannot read (cameras send `ssrc= d6d6627`, `mode="play"`...), never fail the parse: unknown ones
//! are kept in `other` so they can be logged, unreadable known ones are dropped.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    #[error("Transport header has no usable transport spec (expected e.g. `RTP/AVP/TCP;interleaved=0-1`): `{0}`")]
    NoTransport(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LowerTransport {
    Udp,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportMode {
    Play,
    /// `record`, or RFC 2326's older `receive`.
    Record,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transport {
    /// Upper-case `RTP/AVP` (or `RTP/SAVP`...), without the lower transport.
    pub profile: String,
    pub lower: LowerTransport,
    /// `None` when neither `unicast` nor `multicast` was given.
    pub multicast: Option<bool>,
    pub interleaved: Option<(u8, u8)>,
    pub client_port: Option<(u16, u16)>,
    pub server_port: Option<(u16, u16)>,
    /// Multicast `port=`.
    pub port: Option<(u16, u16)>,
    pub ttl: Option<u8>,
    pub mode: Option<TransportMode>,
    pub ssrc: Option<u32>,
    pub destination: Option<String>,
    pub source: Option<String>,
    /// Parameters we do not interpret, as `(name, value)`.
    pub other: Vec<(String, Option<String>)>,
}

impl Transport {
    /// `RTP/AVP` with nothing set.
    pub fn new(lower: LowerTransport) -> Transport {
        Transport {
            profile: "RTP/AVP".to_string(),
            lower,
            multicast: None,
            interleaved: None,
            client_port: None,
            server_port: None,
            port: None,
            ttl: None,
            mode: None,
            ssrc: None,
            destination: None,
            source: None,
            other: Vec::new(),
        }
    }

    /// Interleaved TCP on channels `rtp` and `rtp + 1`.
    pub fn tcp_interleaved(rtp: u8) -> Transport {
        let mut t = Transport::new(LowerTransport::Tcp);
        t.multicast = Some(false);
        t.interleaved = Some((rtp, rtp.wrapping_add(1)));
        t
    }

    pub fn is_tcp(&self) -> bool {
        self.lower == LowerTransport::Tcp
    }
}

/// `a-b` or a single `a` (then `b = a + 1`, the RTCP partner).
fn pair<T: std::str::FromStr + Copy + TryFrom<u32>>(v: &str) -> Option<(T, T)>
where
    u32: From<T>,
{
    let v = v.trim();
    match v.split_once('-') {
        Some((a, b)) => Some((a.trim().parse().ok()?, b.trim().parse().ok()?)),
        None => {
            let a: T = v.parse().ok()?;
            let b = T::try_from(u32::from(a) + 1).ok()?;
            Some((a, b))
        }
    }
}

fn unquote(v: &str) -> &str {
    let v = v.trim();
    let v = v.strip_prefix('"').unwrap_or(v);
    v.strip_suffix('"').unwrap_or(v).trim()
}

fn parse_one(spec: &str) -> Option<Transport> {
    let mut params = spec.split(';');
    let proto = params.next()?.trim();
    let mut parts = proto.split('/');
    let (Some(a), Some(b)) = (parts.next(), parts.next()) else {
        return None;
    };
    if a.is_empty() || b.is_empty() {
        return None;
    }
    let lower = match parts.next() {
        None => LowerTransport::Udp,
        Some(l) if l.eq_ignore_ascii_case("udp") => LowerTransport::Udp,
        Some(l) if l.eq_ignore_ascii_case("tcp") => LowerTransport::Tcp,
        Some(_) => return None,
    };
    if parts.next().is_some() {
        return None;
    }
    let mut t = Transport::new(lower);
    t.profile = format!("{}/{}", a.to_ascii_uppercase(), b.to_ascii_uppercase());
    for p in params {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        let (name, value) = match p.split_once('=') {
            Some((n, v)) => (n.trim(), Some(unquote(v))),
            None => (p, None),
        };
        let lname = name.to_ascii_lowercase();
        match (lname.as_str(), value) {
            ("unicast", None) => t.multicast = Some(false),
            ("multicast", None) => t.multicast = Some(true),
            ("interleaved", Some(v)) => t.interleaved = pair(v),
            ("client_port", Some(v)) => t.client_port = pair(v),
            ("server_port", Some(v)) => t.server_port = pair(v),
            ("port", Some(v)) => t.port = pair(v),
            ("ttl", Some(v)) => t.ttl = v.parse().ok(),
            ("ssrc", Some(v)) => t.ssrc = u32::from_str_radix(v, 16).ok(),
            ("mode", Some(v)) => {
                t.mode = if v.eq_ignore_ascii_case("play") {
                    Some(TransportMode::Play)
                } else if v.eq_ignore_ascii_case("record") || v.eq_ignore_ascii_case("receive") {
                    Some(TransportMode::Record)
                } else {
                    None
                }
            }
            ("destination", v) => t.destination = v.map(str::to_string),
            ("source", Some(v)) => t.source = Some(v.to_string()),
            _ => {
                if t.other.len() < 16 {
                    t.other.push((name.to_string(), value.map(str::to_string)));
                }
            }
        }
    }
    Some(t)
}

/// Parses every alternative; those that are not `X/Y[/UDP|TCP]` are skipped. Errors only when none is
/// left.
pub fn parse(header: &str) -> Result<Vec<Transport>, TransportError> {
    let list: Vec<Transport> = header.split(',').filter_map(parse_one).take(32).collect();
    if list.is_empty() {
        let shown: String = header.chars().take(120).collect();
        return Err(TransportError::NoTransport(shown));
    }
    Ok(list)
}

impl fmt::Display for Transport {
    /// One transport spec in the form ffmpeg, VLC and GStreamer parse: unquoted lower-case `mode`,
    /// 8-digit hex `ssrc`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.profile)?;
        if self.lower == LowerTransport::Tcp {
            f.write_str("/TCP")?;
        }
        match self.multicast {
            Some(true) => f.write_str(";multicast")?,
            Some(false) => f.write_str(";unicast")?,
            None => {}
        }
        if let Some(d) = &self.destination {
            write!(f, ";destination={d}")?;
        }
        if let Some(s) = &self.source {
            write!(f, ";source={s}")?;
        }
        if let Some((a, b)) = self.interleaved {
            write!(f, ";interleaved={a}-{b}")?;
        }
        if let Some((a, b)) = self.client_port {
            write!(f, ";client_port={a}-{b}")?;
        }
        if let Some((a, b)) = self.server_port {
            write!(f, ";server_port={a}-{b}")?;
        }
        if let Some((a, b)) = self.port {
            write!(f, ";port={a}-{b}")?;
        }
        if let Some(ttl) = self.ttl {
            write!(f, ";ttl={ttl}")?;
        }
        if let Some(ssrc) = self.ssrc {
            write!(f, ";ssrc={ssrc:08X}")?;
        }
        match self.mode {
            Some(TransportMode::Play) => f.write_str(";mode=play")?,
            Some(TransportMode::Record) => f.write_str(";mode=record")?,
            None => {}
        }
        Ok(())
    }
}

/// Comma-joined list, for a client's SETUP offering several alternatives.
pub fn format(list: &[Transport]) -> String {
    list.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typical() {
        let t = parse("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=4cacc3d1;mode=\"play\"").unwrap();
        assert_eq!(t.len(), 1);
        let t = &t[0];
        assert!(t.is_tcp());
        assert_eq!(t.multicast, Some(false));
        assert_eq!(t.interleaved, Some((0, 1)));
        assert_eq!(t.ssrc, Some(0x4cacc3d1));
        assert_eq!(t.mode, Some(TransportMode::Play));
        assert_eq!(t.to_string(), "RTP/AVP/TCP;unicast;interleaved=0-1;ssrc=4CACC3D1;mode=play");
    }

    #[test]
    fn alternatives_and_junk() {
        let l = parse(
            "RTP/AVP/UDP;unicast;client_port=5000-5001;MODE=RECORD, rtp/avp/tcp; interleaved = 2 ;x-foo;bar=1,garbage,RAW/RAW/FOO",
        )
        .unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].lower, LowerTransport::Udp);
        assert_eq!(l[0].client_port, Some((5000, 5001)));
        assert_eq!(l[0].mode, Some(TransportMode::Record));
        assert_eq!(l[1].profile, "RTP/AVP");
        assert!(l[1].is_tcp());
        assert_eq!(l[1].interleaved, Some((2, 3)));
        assert_eq!(l[1].other, vec![("x-foo".to_string(), None), ("bar".to_string(), Some("1".to_string()))]);
        assert_eq!(format(&l), "RTP/AVP;unicast;client_port=5000-5001;mode=record,RTP/AVP/TCP;interleaved=2-3");
    }

    #[test]
    fn odd_values() {
        let t = &parse("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc= d6d6627").unwrap()[0];
        assert_eq!(t.ssrc, Some(0x0d6d6627));
        let t = &parse("RTP/AVP/TCP;interleaved=255;ssrc=123456789;mode=foo;client_port=70000-1").unwrap()[0];
        assert_eq!(t.interleaved, None); // 255+1 does not fit a channel
        assert_eq!(t.ssrc, None);
        assert_eq!(t.mode, None);
        assert_eq!(t.client_port, None);
        let t = &parse("RTP/AVP;multicast;destination=224.2.0.1;port=3456-3457;ttl=16;mode=receive").unwrap()[0];
        assert_eq!(t.multicast, Some(true));
        assert_eq!(t.destination.as_deref(), Some("224.2.0.1"));
        assert_eq!(t.port, Some((3456, 3457)));
        assert_eq!(t.ttl, Some(16));
        assert_eq!(t.mode, Some(TransportMode::Record));
        assert_eq!(t.to_string(), "RTP/AVP;multicast;destination=224.2.0.1;port=3456-3457;ttl=16;mode=record");
    }

    #[test]
    fn errors() {
        assert!(parse("").is_err());
        assert!(parse("foo;bar").is_err());
        let e = parse("nonsense").unwrap_err();
        assert!(e.to_string().contains("nonsense"));
        assert!(parse("RTP/AVP/TCP/X").is_err());
        assert!(parse("/").is_err());
    }

    #[test]
    fn constructors() {
        let t = Transport::tcp_interleaved(4);
        assert_eq!(t.to_string(), "RTP/AVP/TCP;unicast;interleaved=4-5");
    }
}
