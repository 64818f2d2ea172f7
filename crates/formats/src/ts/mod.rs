//! MPEG-TS: a muxer (for HLS/TS and `stream.ts`) and a demuxer (for `http`/`tcp` sources and
//! `ffmpeg -f mpegts` pipes).
//!
//! Packets, PSI sections and PES headers are written and parsed here rather than with `mpeg2ts`: that
//! crate reads through `std::io::Read` one packet at a time and returns whole PES packets from blocking
//! readers, which does not fit a sans-IO demuxer fed arbitrary chunks that must resync after a lost sync
//! byte and bound every buffer; and on the write side the policy (PCR, PAT/PMT cadence, AUD insertion,
//! ADTS framing) is all ours anyway. The wire format used here is small: 188-byte packets, PAT, PMT, PES.

mod demux;
mod mux;
mod psi;

pub use demux::{TsDemuxer, MAX_PES_SIZE};
pub use mux::{TsMuxer, DEFAULT_PSI_INTERVAL};
pub use psi::{PmtScan, PMT_SCAN_MAX_BYTES};

/// TS packet size.
pub const PACKET_SIZE: usize = 188;
/// Sync byte at the start of every packet.
pub const SYNC_BYTE: u8 = 0x47;

pub(crate) const STREAM_TYPE_AAC: u8 = 0x0f;
pub(crate) const STREAM_TYPE_H264: u8 = 0x1b;
pub(crate) const STREAM_TYPE_H265: u8 = 0x24;

#[cfg(test)]
mod tests;
