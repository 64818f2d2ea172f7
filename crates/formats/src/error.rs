use media::h264::BitstreamError;

/// Errors of every muxer and parser of this crate. Each names what was wrong so a user can act on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("codec {codec} is not supported by {format}")]
    UnsupportedCodec { format: &'static str, codec: String },
    #[error("{0}")]
    MissingConfig(String),
    #[error("invalid {what}: {detail}")]
    Invalid { what: &'static str, detail: String },
    #[error("{what} too large: {size} bytes > limit {limit}")]
    TooLarge { what: &'static str, size: usize, limit: usize },
    #[error("track index {0} out of range")]
    TrackIndex(usize),
    #[error("bitstream: {0}")]
    Bitstream(#[from] BitstreamError),
}

impl FormatError {
    pub(crate) fn invalid(what: &'static str, detail: impl Into<String>) -> FormatError {
        FormatError::Invalid { what, detail: detail.into() }
    }

    pub(crate) fn unsupported(format: &'static str, codec: &str) -> FormatError {
        FormatError::UnsupportedCodec { format, codec: codec.to_string() }
    }
}
