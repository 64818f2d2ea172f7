//! RTP and RTCP, sans-IO: packet parsing and writing, one depacketizer (RTP → [`media::Frame`]) and one
//! packetizer (Frame → RTP) per codec, a reorder buffer for UDP input, RTCP reports, and
//! RFC 3550 reception statistics (loss and jitter).

#![forbid(unsafe_code)]

pub mod depacketize;
mod error;
pub mod obu;
pub mod packet;
pub mod packetize;
pub mod reorder;
pub mod rtcp;
pub mod stats;
pub mod vp9;

pub use depacketize::{depacketizer_for, Depacketizer};
pub use error::RtpError;
pub use packet::{parse, parse_bytes};
pub use packetize::{packetizer_for, packetizer_with, Packetizer};
pub use reorder::ReorderBuffer;
