//! Sans-IO container formats (DESIGN.md, "Layout"): bytes and [`media::Frame`]s in, bytes and frames out.
//! No tokio, no sockets, no clocks: callers feed data and drain results.
//!
//! - [`fmp4`]: fragmented MP4 (init segment + moof/mdat fragments) for MSE, `stream.mp4` and HLS/fMP4,
//!   with the G.711 → FLAC repack of [`flac`].
//! - [`ts`]: MPEG-TS muxer and demuxer.
//! - [`mp4`]: progressive MP4 files read whole (samples of H.264, H.265, AAC tracks).
//! - [`flv`]: FLV muxer and demuxer (HTTP-FLV, and the tag layer of RTMP).
//! - [`mjpeg`]: multipart/x-mixed-replace writer and parser, raw JPEG stream splitter.
//! - [`adts`]: AAC frames as ADTS.
//! - [`hls`]: media and master playlists.
//! - [`mux`]: the [`mux::Muxer`] interface over the container writers, for byte-stream outputs.
//! - [`segment`]: cuts frames into self-contained TS/fMP4 segments (HLS, recordings).
//! - [`sniff`]: guesses the format of a byte stream from its first bytes.
//! - [`bytestream`]: one demuxer for every byte stream taken in (sniffed TS, FLV, MJPEG, Annex B).
//! - [`pipe`]: raw H.264/H.265 Annex B and MJPEG as programs write them to a pipe.
//!
//! Box, packet and tag writers are our own (not `mp4-atom` / `mpeg2ts`): see the module comments of
//! [`fmp4`] and [`ts`] for why.

#![forbid(unsafe_code)]

pub mod adts;
mod bits;
pub mod bytestream;
mod error;
pub mod flac;
pub mod flv;
pub mod fmp4;
#[doc(hidden)]
pub mod fuzzing;
pub mod hls;
pub mod mjpeg;
pub mod mp4;
pub mod mux;
pub mod pipe;
pub mod segment;
pub mod sniff;
pub mod ts;
pub mod video;

#[cfg(test)]
mod testutil;

pub use error::FormatError;
pub use sniff::{detect, Format};

use media::{Codec, Frame, Kind};

/// What a demuxer ([`ts::TsDemuxer`], [`flv::FlvDemuxer`]) gives out.
#[derive(Debug, Clone)]
pub enum DemuxEvent {
    /// A stream's codec became known (announced once per index, before its first frame).
    Track { index: usize, kind: Kind, codec: Codec },
    /// One access unit in the [`media::Frame`] payload format, timestamp in the track's clock.
    Frame { index: usize, frame: Frame },
}
