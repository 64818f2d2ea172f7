//! Codec and Media: go2rtc's negotiation model (DESIGN.md, "Streams, sources and negotiation").

use std::fmt;

/// SDP encoding names, upper case, as they appear in `a=rtpmap`.
pub const H264: &str = "H264";
pub const H265: &str = "H265";
/// AV1 (AOM's RTP payload format) and VP9 (RFC 9628): `a=rtpmap:PT AV1/90000`, `VP9/90000`.
pub const AV1: &str = "AV1";
pub const VP9: &str = "VP9";
pub const JPEG: &str = "JPEG";
pub const AAC: &str = "MPEG4-GENERIC";
pub const OPUS: &str = "OPUS";
pub const PCMA: &str = "PCMA";
pub const PCMU: &str = "PCMU";
pub const L16: &str = "L16";
/// MPEG-1/2 audio (MP2, MP3) in RTP (RFC 2250, static payload type 14, 90 kHz clock).
pub const MPA: &str = "MPA";
/// KLV metadata (SMPTE 336M) in RTP (RFC 6597, 90 kHz clock); a [`Kind::Application`] media.
pub const KLV: &str = "SMPTE336M";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Video,
    Audio,
    /// Anything else an SDP may carry (ONVIF metadata, KLV...). Forwarded RTSP to RTSP only.
    Application,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Video => "video",
            Kind::Audio => "audio",
            Kind::Application => "application",
        }
    }

    pub fn parse(s: &str) -> Kind {
        match s {
            "video" => Kind::Video,
            "audio" => Kind::Audio,
            _ => Kind::Application,
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Direction seen from the local side: a source's normal tracks are `RecvOnly` (we receive them), its
/// backchannel is `SendOnly`; a reader's tracks are the opposite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    RecvOnly,
    SendOnly,
    SendRecv,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::RecvOnly => "recvonly",
            Direction::SendOnly => "sendonly",
            Direction::SendRecv => "sendrecv",
        }
    }

    /// The same media seen from the peer.
    pub fn reversed(self) -> Direction {
        match self {
            Direction::RecvOnly => Direction::SendOnly,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::SendRecv => Direction::SendRecv,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Codec {
    /// SDP encoding name, upper case (`H264`, `MPEG4-GENERIC`, `PCMA`...).
    pub name: String,
    pub clock_rate: u32,
    /// Audio channels; 0 when not given.
    pub channels: u16,
    /// The `a=fmtp` parameters, without the payload type (`packetization-mode=1;sprop-parameter-sets=...`).
    pub fmtp: String,
    /// RTP payload type used on the wire by whoever described this codec.
    pub payload_type: u8,
}

impl Codec {
    pub fn new(name: &str, clock_rate: u32, channels: u16, payload_type: u8) -> Codec {
        Codec { name: name.to_ascii_uppercase(), clock_rate, channels, fmtp: String::new(), payload_type }
    }

    pub fn with_fmtp(mut self, fmtp: impl Into<String>) -> Codec {
        self.fmtp = fmtp.into();
        self
    }

    /// Value of one `key=value` pair of the fmtp line (keys compare case-insensitively).
    pub fn fmtp_param(&self, key: &str) -> Option<&str> {
        self.fmtp.split(';').find_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            k.trim().eq_ignore_ascii_case(key).then(|| v.trim())
        })
    }

    /// Short name used by go2rtc's API and in `codecs not matched` errors: `AAC` instead of MPEG4-GENERIC.
    pub fn short_name(&self) -> &str {
        if self.name == AAC {
            "AAC"
        } else {
            &self.name
        }
    }

    /// True for codecs whose every frame decodes alone (audio, JPEG): they need no GOP handling.
    pub fn is_intra_only(&self) -> bool {
        !matches!(self.name.as_str(), H264 | H265 | AV1 | VP9)
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.short_name(), self.clock_rate)?;
        if self.channels > 1 {
            write!(f, "/{}", self.channels)?;
        }
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Media {
    pub kind: Kind,
    pub direction: Direction,
    /// In priority order; a source's media normally has one.
    pub codecs: Vec<Codec>,
    /// RTSP `a=control` value as the describing side gave it (may be relative or absolute).
    pub control: String,
}

impl Media {
    pub fn new(kind: Kind, direction: Direction, codecs: Vec<Codec>) -> Media {
        Media { kind, direction, codecs, control: String::new() }
    }
}

impl fmt::Display for Media {
    /// go2rtc's form: `video, recvonly, H264`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, {}", self.kind, self.direction.as_str())?;
        for c in &self.codecs {
            write!(f, ", {}", c.short_name())?;
        }
        Ok(())
    }
}
