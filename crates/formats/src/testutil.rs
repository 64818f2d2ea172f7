//! Test helpers: hand-made codecs and frames, and a minimal ISO BMFF box walker.

use bytes::Bytes;
use media::{Codec, Frame};

/// Baseline 640x480 SPS/PPS as a camera's SDP gives them.
pub const H264_FMTP: &str =
    "packetization-mode=1;profile-level-id=42C01E;sprop-parameter-sets=Z0LAHtkAoD2wEQAAAwABAAADADIPFi5I,aMuMsg==";
pub const H265_FMTP: &str = "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwB4lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDlllZpJMrwFoCAAAADAIAAAAyE;sprop-pps=RAHBcrRiQA==";

pub fn h264() -> Codec {
    Codec::new("H264", 90000, 0, 96).with_fmtp(H264_FMTP)
}

pub fn h265() -> Codec {
    Codec::new("H265", 90000, 0, 96).with_fmtp(H265_FMTP)
}

pub fn aac() -> Codec {
    Codec::new("MPEG4-GENERIC", 44100, 2, 97).with_fmtp("streamtype=5;mode=AAC-hbr;config=1210;sizelength=13")
}

pub fn avcc(nals: &[&[u8]]) -> Bytes {
    let mut v = Vec::new();
    for n in nals {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    Bytes::from(v)
}

pub fn sps_pps() -> (Vec<u8>, Vec<u8>) {
    let (s, p) = media::h264::parse_sprop_parameter_sets(H264_FMTP);
    (s[0].to_vec(), p[0].to_vec())
}

/// An H.264 frame: keyframes carry SPS/PPS + an IDR slice, others a non-IDR slice.
pub fn h264_frame(ts: u32, key: bool, fill: u8) -> Frame {
    let (sps, pps) = sps_pps();
    let payload =
        if key { avcc(&[&sps, &pps, &[0x65, 0x88, fill, fill]]) } else { avcc(&[&[0x41, 0x9a, fill, fill, fill]]) };
    Frame { timestamp: ts, keyframe: key, payload, rtp: Vec::new() }
}

pub fn audio_frame(ts: u32, fill: u8, len: usize) -> Frame {
    Frame { timestamp: ts, keyframe: true, payload: Bytes::from(vec![fill; len]), rtp: Vec::new() }
}

/// One ISO BMFF box: type, body range inside the buffer.
#[derive(Debug, Clone)]
pub struct BoxRef<'a> {
    pub kind: [u8; 4],
    pub body: &'a [u8],
}

/// Top-level boxes of `data` (panics on malformed input: test helper).
pub fn boxes(data: &[u8]) -> Vec<BoxRef<'_>> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        assert!(size >= 8 && pos + size <= data.len(), "bad box size {size} at {pos}");
        let kind = data[pos + 4..pos + 8].try_into().unwrap();
        out.push(BoxRef { kind, body: &data[pos + 8..pos + size] });
        pos += size;
    }
    assert_eq!(pos, data.len(), "trailing bytes");
    out
}

/// Finds the box at `path` (e.g. `["moov", "trak", "mdia"]`), descending through containers; `skip`
/// gives how many header bytes to skip for boxes that have fields before their children.
pub fn find<'a>(data: &'a [u8], path: &[&str]) -> Option<&'a [u8]> {
    let mut cur = data;
    for (i, name) in path.iter().enumerate() {
        let b = boxes(cur).into_iter().find(|b| b.kind == name.as_bytes())?;
        cur = b.body;
        if i + 1 < path.len() {
            cur = match *name {
                "stsd" | "dref" => &cur[8..],
                "avc1" | "hvc1" | "av01" | "vp09" | "mp4v" => &cur[78..],
                "mp4a" | "Opus" | "fLaC" => &cur[28..],
                _ => cur,
            };
        }
    }
    Some(cur)
}

pub fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
}
