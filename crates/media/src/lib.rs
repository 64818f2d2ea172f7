//! Media model shared by every crate: codecs, medias, reader query filters and their matching, and the
//! [`Frame`] that crosses the stream hub. No IO here.

#![forbid(unsafe_code)]

pub mod aac;
pub mod codec;
pub mod frame;
pub mod h264;
pub mod h265;
pub mod jpeg;
pub mod mpa;
pub mod opus;
pub mod query;
pub mod timestamp;

pub use codec::{Codec, Direction, Kind, Media};
pub use frame::{Frame, RtpPacket};
pub use query::{MatchError, MediaFilter};
