//! Enhanced RTMP / FLV (Veovera's E-RTMP v1 and v2) tag headers: the `IsExHeader` video header and
//! the `SoundFormat = 9` (ExHeader) audio header, with their FourCC, ModEx prefixes and multitrack
//! packets (one track, many tracks of one codec, many tracks of many codecs).
//!
//! Video tag body (E-RTMP v2):
//!
//! ```text
//! [1 IsExHeader | 3 FrameType | 4 PacketType]
//! ModEx (PacketType 7)*: [u8 size-1 (255: u16 size-1 follows)] [data] [4 ModExType | 4 PacketType]
//! FrameType 5 (command) and PacketType != Metadata: [u8 command], nothing else
//! PacketType 6 (Multitrack): [4 MultitrackType | 4 PacketType] [FourCC unless ManyTracksManyCodecs]
//! else: [FourCC]
//! then per track (multitrack): [FourCC if ManyTracksManyCodecs] [u8 track id] [u24 size unless OneTrack] data
//! ```
//!
//! Audio is the same with `[9 | 4 AudioPacketType]` as the first byte (Multitrack is 5, ModEx 7).
//! This module only splits a tag into its packets; what the data means (records, CTS) is the demuxer's.

use crate::FormatError;

/// Video packet types.
pub const SEQUENCE_START: u8 = 0;
pub const CODED_FRAMES: u8 = 1;
pub const SEQUENCE_END: u8 = 2;
/// Video: coded frames without the composition time (AVC/HEVC).
pub const CODED_FRAMES_X: u8 = 3;
pub const METADATA: u8 = 4;
const VIDEO_MULTITRACK: u8 = 6;
const AUDIO_MULTITRACK: u8 = 5;
const MOD_EX: u8 = 7;
/// Audio: the channel order/count (spec: MultichannelConfig).
pub const MULTICHANNEL_CONFIG: u8 = 4;

const MULTITRACK_ONE: u8 = 0;
const MULTITRACK_MANY_CODECS: u8 = 2;

/// Video frame types.
pub const FRAME_KEY: u8 = 1;
pub const FRAME_COMMAND: u8 = 5;

/// A tag holding more packets than this is refused (a tag is bounded in size, this bounds the work).
pub const MAX_PACKETS: usize = 64;

/// One packet of an enhanced tag: a single track's sequence start, frames, end...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExPacket<'a> {
    pub fourcc: [u8; 4],
    /// 0 outside multitrack packets.
    pub track: u8,
    pub packet_type: u8,
    pub data: &'a [u8],
}

/// An enhanced video or audio tag: the frame type (video; 0 for audio) and its packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExTag<'a> {
    pub frame_type: u8,
    pub packets: Vec<ExPacket<'a>>,
}

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len());
        let Some(end) = end else {
            return Err(FormatError::invalid(
                self.what,
                format!("truncated {field} at byte {} ({} bytes in the tag)", self.pos, self.data.len()),
            ));
        };
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self, field: &str) -> Result<u8, FormatError> {
        Ok(self.take(1, field)?[0])
    }
    fn fourcc(&mut self) -> Result<[u8; 4], FormatError> {
        let b = self.take(4, "FourCC")?;
        Ok([b[0], b[1], b[2], b[3]])
    }
    fn rest(&mut self) -> &'a [u8] {
        let s = &self.data[self.pos..];
        self.pos = self.data.len();
        s
    }
}

/// Skips ModEx prefixes; returns the packet type that follows them.
fn skip_mod_ex(c: &mut Cursor<'_>, mut packet_type: u8) -> Result<u8, FormatError> {
    let mut n = 0;
    while packet_type == MOD_EX {
        n += 1;
        if n > MAX_PACKETS {
            return Err(FormatError::invalid(c.what, "too many ModEx prefixes"));
        }
        let mut size = usize::from(c.u8("ModEx size")?) + 1;
        if size == 256 {
            let b = c.take(2, "ModEx size")?;
            size = usize::from(u16::from_be_bytes([b[0], b[1]])) + 1;
        }
        c.take(size, "ModEx data")?; // TimestampOffsetNano: sub-millisecond precision we do not keep
        packet_type = c.u8("ModEx packet type")? & 0x0f;
    }
    Ok(packet_type)
}

/// The packets after the header's packet type: one, or the tracks of a multitrack packet.
fn packets<'a>(c: &mut Cursor<'a>, packet_type: u8, multitrack: u8) -> Result<Vec<ExPacket<'a>>, FormatError> {
    if packet_type != multitrack {
        let fourcc = c.fourcc()?;
        return Ok(vec![ExPacket { fourcc, track: 0, packet_type, data: c.rest() }]);
    }
    let b = c.u8("multitrack type")?;
    let (kind, packet_type) = (b >> 4, b & 0x0f);
    if kind > MULTITRACK_MANY_CODECS {
        return Err(FormatError::invalid(c.what, format!("unknown multitrack type {kind}")));
    }
    if packet_type == multitrack || packet_type == MOD_EX {
        return Err(FormatError::invalid(c.what, format!("packet type {packet_type} inside a multitrack packet")));
    }
    let shared = if kind == MULTITRACK_MANY_CODECS { None } else { Some(c.fourcc()?) };
    let mut out = Vec::new();
    loop {
        let fourcc = match shared {
            Some(f) => f,
            None => c.fourcc()?,
        };
        let track = c.u8("track id")?;
        let data = if kind == MULTITRACK_ONE {
            c.rest()
        } else {
            let s = c.take(3, "track size")?;
            let size = (usize::from(s[0]) << 16) | (usize::from(s[1]) << 8) | usize::from(s[2]);
            c.take(size, &format!("track {track} ({size} bytes)"))?
        };
        out.push(ExPacket { fourcc, track, packet_type, data });
        if kind == MULTITRACK_ONE || c.pos >= c.data.len() {
            return Ok(out);
        }
        if out.len() >= MAX_PACKETS {
            return Err(FormatError::invalid(c.what, format!("more than {MAX_PACKETS} tracks in one tag")));
        }
    }
}

/// Splits an enhanced video tag body (its first byte has the `IsExHeader` bit). A command frame
/// (FrameType 5 that is not metadata) has no packets.
pub fn parse_video(body: &[u8]) -> Result<ExTag<'_>, FormatError> {
    let mut c = Cursor { data: body, pos: 0, what: "enhanced FLV video tag" };
    let b0 = c.u8("header")?;
    let frame_type = (b0 >> 4) & 7;
    let packet_type = skip_mod_ex(&mut c, b0 & 0x0f)?;
    if frame_type == FRAME_COMMAND && packet_type != METADATA {
        c.u8("video command")?;
        return Ok(ExTag { frame_type, packets: Vec::new() });
    }
    Ok(ExTag { frame_type, packets: packets(&mut c, packet_type, VIDEO_MULTITRACK)? })
}

/// Splits an enhanced audio tag body (`SoundFormat` 9 in its first byte).
pub fn parse_audio(body: &[u8]) -> Result<ExTag<'_>, FormatError> {
    let mut c = Cursor { data: body, pos: 0, what: "enhanced FLV audio tag" };
    let b0 = c.u8("header")?;
    let packet_type = skip_mod_ex(&mut c, b0 & 0x0f)?;
    Ok(ExTag { frame_type: 0, packets: packets(&mut c, packet_type, AUDIO_MULTITRACK)? })
}

/// A video tag body: `[1 | frame type | packet type] FourCC data` (no multitrack).
pub fn video_header(keyframe: bool, packet_type: u8, fourcc: &[u8; 4]) -> [u8; 5] {
    let ft = if keyframe { FRAME_KEY } else { 2 };
    [0x80 | (ft << 4) | packet_type, fourcc[0], fourcc[1], fourcc[2], fourcc[3]]
}

/// An audio tag body: `[9 | packet type] FourCC data` (no multitrack).
pub fn audio_header(packet_type: u8, fourcc: &[u8; 4]) -> [u8; 5] {
    [0x90 | packet_type, fourcc[0], fourcc[1], fourcc[2], fourcc[3]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_video_packet() {
        // ffmpeg's HEVC keyframe with CTS: 0x91 'hvc1' [cts 3] data.
        let t = parse_video(b"\x91hvc1\x00\x00\x50NAL").unwrap();
        assert_eq!(t.frame_type, FRAME_KEY);
        assert_eq!(t.packets, [ExPacket { fourcc: *b"hvc1", track: 0, packet_type: 1, data: b"\x00\x00\x50NAL" }]);
        // A command frame: one byte, no FourCC.
        assert!(parse_video(&[0xd1, 0x00]).unwrap().packets.is_empty());
        // Metadata with frame type 5 (ffmpeg's colorInfo) keeps its FourCC.
        let t = parse_video(b"\xd4hvc1\x02\x00").unwrap();
        assert_eq!(t.packets[0].packet_type, METADATA);
    }

    #[test]
    fn mod_ex_is_skipped() {
        // ModEx (7) with 3 bytes of TimestampOffsetNano, then [ModExType 0 | CodedFramesX].
        let t = parse_video(b"\x97\x02\x00\x01\x02\x03av01OBU").unwrap();
        assert_eq!(t.packets[0].packet_type, CODED_FRAMES_X);
        assert_eq!(t.packets[0].data, b"OBU");
        // A 256+ byte ModEx: size byte 255, then u16 size-1.
        let mut body = vec![0x97, 0xff, 0x01, 0x00];
        body.extend_from_slice(&[0; 257]);
        body.extend_from_slice(b"\x01vp09F");
        let t = parse_video(&body).unwrap();
        assert_eq!((t.packets[0].fourcc, t.packets[0].data), (*b"vp09", &b"F"[..]));
        let e = parse_video(b"\x97\x09\x00").unwrap_err();
        assert!(e.to_string().contains("truncated ModEx data"), "{e}");
    }

    #[test]
    fn audio_multitrack_one_track_as_ffmpeg_writes_it() {
        // ffmpeg 9's second AAC track: 0x95 [OneTrack | CodedFrames] 'mp4a' track 1, data.
        let t = parse_audio(b"\x95\x01mp4a\x01AU").unwrap();
        assert_eq!(t.packets, [ExPacket { fourcc: *b"mp4a", track: 1, packet_type: 1, data: b"AU" }]);
        let t = parse_audio(b"\x90OpusOpusHead").unwrap();
        assert_eq!((t.packets[0].fourcc, t.packets[0].packet_type), (*b"Opus", SEQUENCE_START));
    }

    #[test]
    fn many_tracks_and_many_codecs() {
        // ManyTracks: shared FourCC, [id][u24 size][data] per track.
        let t = parse_audio(b"\x95\x11Opus\x00\x00\x00\x02ab\x01\x00\x00\x01c").unwrap();
        let got: Vec<(u8, &[u8])> = t.packets.iter().map(|p| (p.track, p.data)).collect();
        assert_eq!(got, [(0, &b"ab"[..]), (1, &b"c"[..])]);
        // ManyTracksManyCodecs: a FourCC per track.
        let t = parse_video(b"\x96\x20avc1\x00\x00\x00\x01Xhvc1\x01\x00\x00\x01Y").unwrap();
        let got: Vec<([u8; 4], u8)> = t.packets.iter().map(|p| (p.fourcc, p.track)).collect();
        assert_eq!(got, [(*b"avc1", 0), (*b"hvc1", 1)]);
        assert_eq!(t.packets[0].packet_type, SEQUENCE_START);
        // A size running past the tag, an unknown multitrack type, nested multitrack.
        let e = parse_audio(b"\x95\x11Opus\x00\x00\x00\x09ab").unwrap_err();
        assert!(e.to_string().contains("truncated track 0 (9 bytes)"), "{e}");
        let e = parse_audio(b"\x95\x31Opus").unwrap_err();
        assert!(e.to_string().contains("unknown multitrack type 3"), "{e}");
        let e = parse_video(b"\x96\x06avc1").unwrap_err();
        assert!(e.to_string().contains("inside a multitrack"), "{e}");
    }

    #[test]
    fn truncated_headers_name_the_field() {
        assert!(parse_video(b"\x90hv").unwrap_err().to_string().contains("FourCC"));
        assert!(parse_audio(b"").unwrap_err().to_string().contains("header"));
        assert!(parse_audio(b"\x95").unwrap_err().to_string().contains("multitrack type"));
    }
}
