/// Errors of RTP/RTCP parsing and depacketizing. A depacketizer that returns one stays usable: the error
/// says what was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtpError {
    #[error("RTP packet truncated: {0} bytes")]
    Truncated(usize),
    #[error("unsupported RTP version {0}")]
    BadVersion(u8),
    #[error("invalid RTP padding")]
    BadPadding,
    #[error("invalid RTCP packet: {0}")]
    BadRtcp(&'static str),
    #[error("invalid {codec} payload: {reason}")]
    BadPayload { codec: &'static str, reason: &'static str },
    #[error("unsupported {codec} packetization: {reason}")]
    Unsupported { codec: &'static str, reason: &'static str },
    #[error("{codec} fragment lost, partial unit dropped")]
    FragmentLost { codec: &'static str },
    #[error("{codec} frame exceeds {limit} bytes or packets, dropped")]
    FrameTooLarge { codec: &'static str, limit: usize },
}
