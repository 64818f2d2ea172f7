//! The unit that crosses the stream hub.

use bytes::Bytes;

/// One RTP packet, header fields parsed out. Forwarding keeps the payload (shared, never copied per
/// reader); each reader writes its own header (sequence number, SSRC, payload type).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RtpPacket {
    pub marker: bool,
    pub payload_type: u8,
    pub sequence: u16,
    pub timestamp: u32,
    pub ssrc: u32,
    pub payload: Bytes,
}

/// One access unit of one track.
///
/// Payload formats (what every muxer can rely on):
/// - H.264 / H.265: NAL units each prefixed by a 4-byte big-endian length (AVCC style); keyframes carry
///   their parameter sets (SPS/PPS, and VPS for H.265) in front, so every keyframe decodes alone.
/// - AV1: one temporal unit, OBUs with size fields, no temporal delimiter; a keyframe starts with its
///   sequence header.
/// - VP9: one frame, or a superframe with its index, as libvpx writes them.
/// - AAC: one raw access unit (no ADTS header).
/// - Opus, G.711, L16: one RTP payload.
/// - JPEG: one complete JPEG image (RTP/JPEG is rebuilt into one by the depacketizer).
/// - Unknown codecs: the concatenated RTP payloads of the frame.
#[derive(Clone, Debug, Default)]
pub struct Frame {
    /// Presentation time in the track's clock (RTP timestamp units).
    pub timestamp: u32,
    pub keyframe: bool,
    pub payload: Bytes,
    /// The RTP packets this frame arrived in, or was packetized into once at the source, so that RTP
    /// outputs forward them without repacketizing.
    pub rtp: Vec<RtpPacket>,
}

impl Frame {
    /// Bytes this frame holds, for cache and queue accounting.
    pub fn size(&self) -> usize {
        self.payload.len() + self.rtp.iter().map(|p| p.payload.len()).sum::<usize>()
    }
}
