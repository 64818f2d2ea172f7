//! MPEG-TS: a muxer (for HLS/TS and `stream.ts`) and a demuxer (for `http`/`tcp` sources and
//! `ffmpeg -f mpegts` pipes). Streams: H.264, H.265, AAC (ADTS), MPEG-1/2 audio (MP2, MP3), Opus (stream
//! type 0x06 with the "Opus" registration and its control header framing) and KLV (0x15, or 0x06 with the
//! "KLVA" registration), as MediaMTX's mediacommon reads and writes them.
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
pub(crate) const STREAM_TYPE_MPEG1_AUDIO: u8 = 0x03;
pub(crate) const STREAM_TYPE_MPEG2_AUDIO: u8 = 0x04;
/// PES private data: Opus and asynchronous KLV, told apart by their registration descriptor.
pub(crate) const STREAM_TYPE_PRIVATE: u8 = 0x06;
/// Metadata in PES packets (synchronous KLV).
pub(crate) const STREAM_TYPE_METADATA: u8 = 0x15;

/// Registration descriptor (ISO 13818-1 §2.6.8) tag.
const DESCRIPTOR_REGISTRATION: u8 = 0x05;
/// DVB extension descriptor tag; extension tag 0x80 is Opus's channel configuration.
const DESCRIPTOR_EXTENSION: u8 = 0x7f;

/// An elementary stream the demuxer (and the PMT scan) supports, from its PMT entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EsType {
    H264,
    H265,
    Aac,
    /// MPEG-1/2 audio (MP2, MP3).
    Mpa,
    /// Opus with the channel count of its extension descriptor (2 when absent).
    Opus {
        channels: u8,
    },
    Klv,
}

impl EsType {
    /// The type of a PMT entry: its stream type and its ES descriptors. `None` for streams we skip.
    pub(crate) fn from_pmt(stream_type: u8, descriptors: &[u8]) -> Option<EsType> {
        match stream_type {
            STREAM_TYPE_H264 => Some(EsType::H264),
            STREAM_TYPE_H265 => Some(EsType::H265),
            STREAM_TYPE_AAC => Some(EsType::Aac),
            STREAM_TYPE_MPEG1_AUDIO | STREAM_TYPE_MPEG2_AUDIO => Some(EsType::Mpa),
            STREAM_TYPE_METADATA => Some(EsType::Klv),
            STREAM_TYPE_PRIVATE => {
                let mut registration = None;
                let mut channels = 2;
                let mut rest = descriptors;
                while rest.len() >= 2 {
                    let (tag, len) = (rest[0], usize::from(rest[1]));
                    let Some(body) = rest.get(2..2 + len) else { break };
                    match tag {
                        DESCRIPTOR_REGISTRATION if len >= 4 => {
                            registration = Some([body[0], body[1], body[2], body[3]])
                        }
                        DESCRIPTOR_EXTENSION if len >= 2 && body[0] == 0x80 => {
                            // channel_config_code: 1 and 2 are mono and stereo; others (multichannel,
                            // mapping families) have no RTP form here.
                            channels = body[1];
                        }
                        _ => {}
                    }
                    rest = &rest[2 + len..];
                }
                match &registration? {
                    b"Opus" if matches!(channels, 1 | 2) => Some(EsType::Opus { channels }),
                    b"KLVA" => Some(EsType::Klv),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
