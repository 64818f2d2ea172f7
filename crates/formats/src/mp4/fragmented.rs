//! Fragmented MP4 as a byte stream (HLS fMP4: the `#EXT-X-MAP` init, then `.m4s` segments): `ftyp` +
//! `moov` give the tracks (the sample descriptions [`super::read`] understands: H.264, H.265, AAC),
//! each `moof` + `mdat` pair their frames. Sans-IO: bytes in, [`DemuxEvent`]s out; a box is handled
//! once it is whole, and no box may exceed [`MAX_BOX`].

use std::collections::VecDeque;

use media::Frame;

use super::{bad, boxes, child, need, sample_entry, Entry};
use crate::{DemuxEvent, FormatError};

/// The largest top-level box (a `moof`, an `mdat`) buffered.
pub const MAX_BOX: usize = 16 << 20;

struct Track {
    id: u32,
    timescale: u64,
    clock: u64,
    entry: Entry,
    /// `trex` defaults: duration, size, flags.
    defaults: (u32, u32, u32),
}

/// A sample of a `moof`: its track (index), decode time and composition offset (track timescale),
/// size and offset from the start of the `moof`, and whether it is a sync sample.
struct Sample {
    track: usize,
    dts: u64,
    cts: i64,
    size: u32,
    offset: u64,
    sync: bool,
}

/// The fragmented MP4 demuxer.
#[derive(Default)]
pub struct Fmp4Demuxer {
    buf: Vec<u8>,
    tracks: Vec<Track>,
    /// The samples of the last `moof` and its size, waiting for their `mdat`.
    pending: Option<(Vec<Sample>, u64)>,
    events: VecDeque<DemuxEvent>,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// One sample of a `traf`'s runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrafSample {
    /// Decode time and duration, in the track's timescale.
    pub dts: u64,
    pub duration: u32,
    pub size: u32,
    /// From the fragment's base (the `tfhd` base-data-offset, or the start of the `moof`).
    pub offset: i64,
    pub sync: bool,
    /// Composition offset (signed in version 1 `trun`s).
    pub cts: i64,
}

/// What a track fragment (`traf`) says: its track, explicit base-data-offset and samples.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrafSamples {
    pub track_id: u32,
    pub base_data_offset: Option<u64>,
    pub samples: Vec<TrafSample>,
}

/// Parses a `traf` payload (`tfhd`, `tfdt`, `trun`s) with the `trex` defaults (duration, size, flags)
/// `defaults` gives for its track id; `None` for an unknown track or a truncated `tfhd`. Shared by the
/// live demuxer and the recordings reader (camrelay's `playback::mp4`); every read is bounds-checked
/// and a run's sample count is bounded by the box's own size.
pub fn traf_samples(traf: &[u8], defaults: impl Fn(u32) -> Option<(u32, u32, u32)>) -> Option<TrafSamples> {
    let tfhd = child(traf, b"tfhd").ok().flatten()?;
    let flags = be32(tfhd, 0)? & 0x00ff_ffff;
    let track_id = be32(tfhd, 4)?;
    let (mut dur, mut size, mut sflags) = defaults(track_id)?;
    let mut pos = 8;
    let mut base_data_offset = None;
    if flags & 0x1 != 0 {
        base_data_offset = Some(be64(tfhd, pos)?);
        pos += 8;
    }
    if flags & 0x2 != 0 {
        pos += 4;
    }
    for (bit, field) in [(0x8, &mut dur), (0x10, &mut size), (0x20, &mut sflags)] {
        if flags & bit != 0 {
            *field = be32(tfhd, pos).unwrap_or(*field);
            pos += 4;
        }
    }
    let mut dts = match child(traf, b"tfdt") {
        Ok(Some(t)) if t.first() == Some(&1) => be64(t, 4).unwrap_or(0),
        Ok(Some(t)) => u64::from(be32(t, 4).unwrap_or(0)),
        _ => 0,
    };
    let mut samples = Vec::new();
    for (kind, trun) in boxes(traf).unwrap_or_default() {
        if &kind != b"trun" {
            continue;
        }
        let (Some(head), Some(count)) = (be32(trun, 0), be32(trun, 4)) else { continue };
        let (version, tflags) = (head >> 24, head & 0x00ff_ffff);
        let mut p = 8;
        let mut offset = 0i64;
        if tflags & 0x1 != 0 {
            let Some(o) = be32(trun, p) else { continue };
            offset = i64::from(o as i32);
            p += 4;
        }
        let mut first_flags = None;
        if tflags & 0x4 != 0 {
            first_flags = be32(trun, p);
            p += 4;
        }
        let per = [0x100, 0x200, 0x400, 0x800].iter().filter(|f| tflags & **f != 0).count() * 4;
        let count = (count as usize).min(trun.len().saturating_sub(p) / per.max(1));
        for i in 0..count {
            let mut q = p + i * per;
            let mut field = |on: bool| {
                let v = if on { be32(trun, q) } else { None };
                q += if on { 4 } else { 0 };
                v
            };
            let duration = field(tflags & 0x100 != 0).unwrap_or(dur);
            let size = field(tflags & 0x200 != 0).unwrap_or(size);
            let f = field(tflags & 0x400 != 0).or(if i == 0 { first_flags } else { None }).unwrap_or(sflags);
            let cts =
                field(tflags & 0x800 != 0).map_or(0, |v| if version == 0 { i64::from(v) } else { i64::from(v as i32) });
            samples.push(TrafSample { dts, duration, size, offset, sync: f & 0x0001_0000 == 0, cts });
            dts = dts.saturating_add(u64::from(duration));
            offset = offset.saturating_add(i64::from(size));
        }
    }
    Some(TrafSamples { track_id, base_data_offset, samples })
}

impl Fmp4Demuxer {
    pub fn new() -> Fmp4Demuxer {
        Fmp4Demuxer::default()
    }

    /// Tracks found in the init (`moov`), once it was read.
    pub fn tracks(&self) -> Option<usize> {
        (!self.tracks.is_empty()).then_some(self.tracks.len())
    }

    pub fn poll(&mut self) -> Option<DemuxEvent> {
        self.events.pop_front()
    }

    /// Feeds bytes; whole boxes are handled at once. An error names the box; a box over [`MAX_BOX`] or
    /// a malformed box header ends the stream (the buffer is dropped).
    pub fn push(&mut self, data: &[u8]) -> Result<(), FormatError> {
        self.buf.extend_from_slice(data);
        let mut at = 0;
        let mut result = Ok(());
        while self.buf.len() - at >= 8 {
            let b = &self.buf[at..];
            let size = u64::from(u32::from_be_bytes([b[0], b[1], b[2], b[3]]));
            let (head, size) = match size {
                1 => match be64(b, 8) {
                    Some(large) => (16, large),
                    None => break,
                },
                0 => {
                    self.buf.clear();
                    return Err(bad("a box that runs to the end of the stream (size 0) in fragmented MP4"));
                }
                n => (8, n),
            };
            if size < head || size > MAX_BOX as u64 {
                self.buf.clear();
                return Err(bad(format!("box of {size} bytes in fragmented MP4 (at most {MAX_BOX})")));
            }
            if (b.len() as u64) < size {
                break;
            }
            let kind: [u8; 4] = [b[4], b[5], b[6], b[7]];
            let body = b[head as usize..size as usize].to_vec();
            at += size as usize;
            let r = match &kind {
                b"moov" => self.moov(&body),
                b"moof" => {
                    self.pending = Some((self.moof(&body), size));
                    Ok(())
                }
                b"mdat" => self.mdat(&body, head),
                _ => Ok(()),
            };
            if let Err(e) = r {
                result = result.and(Err(e));
            }
        }
        self.buf.drain(..at);
        result
    }

    fn moov(&mut self, moov: &[u8]) -> Result<(), FormatError> {
        let trex: Vec<(u32, (u32, u32, u32))> = child(moov, b"mvex")?
            .map(|mvex| {
                boxes(mvex)
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(k, _)| k == b"trex")
                    .filter_map(|(_, p)| Some((be32(p, 4)?, (be32(p, 12)?, be32(p, 16)?, be32(p, 20)?))))
                    .collect()
            })
            .unwrap_or_default();
        let mut tracks = Vec::new();
        for (kind, trak) in boxes(moov)? {
            if &kind != b"trak" {
                continue;
            }
            let tkhd = need(trak, b"tkhd")?;
            let id = if tkhd.first() == Some(&1) { be32(tkhd, 20) } else { be32(tkhd, 12) }
                .ok_or_else(|| bad("truncated tkhd"))?;
            let mdia = need(trak, b"mdia")?;
            let mdhd = need(mdia, b"mdhd")?;
            let timescale = if mdhd.first() == Some(&1) { be32(mdhd, 20) } else { be32(mdhd, 12) }
                .ok_or_else(|| bad("truncated mdhd"))?;
            let stbl = need(need(mdia, b"minf")?, b"stbl")?;
            let Some(entry) = sample_entry(need(stbl, b"stsd")?)? else { continue };
            let (kind, codec) = entry.codec()?;
            let defaults = trex.iter().find(|(t, _)| *t == id).map_or((0, 0, 0), |(_, d)| *d);
            let index = tracks.len();
            self.events.push_back(DemuxEvent::Track { index, kind, codec: codec.clone() });
            tracks.push(Track {
                id,
                timescale: u64::from(timescale.max(1)),
                clock: u64::from(codec.clock_rate.max(1)),
                entry,
                defaults,
            });
        }
        if tracks.is_empty() {
            return Err(bad("the init (moov) has no H.264, H.265 or AAC track"));
        }
        self.tracks = tracks;
        Ok(())
    }

    /// The samples a `moof` describes (offsets from the start of the `moof`: `default-base-is-moof`, as
    /// HLS fMP4 writes them; a `base-data-offset` is ignored).
    fn moof(&self, moof: &[u8]) -> Vec<Sample> {
        let mut out = Vec::new();
        for (kind, traf) in boxes(moof).unwrap_or_default() {
            if &kind != b"traf" {
                continue;
            }
            let defaults = |id| self.tracks.iter().find(|t| t.id == id).map(|t| t.defaults);
            let Some(run) = traf_samples(traf, defaults) else { continue };
            let Some(track) = self.tracks.iter().position(|t| t.id == run.track_id) else { continue };
            out.extend(run.samples.iter().map(|s| Sample {
                track,
                dts: s.dts,
                cts: s.cts,
                size: s.size,
                offset: u64::try_from(s.offset).unwrap_or(0),
                sync: s.sync,
            }));
        }
        out
    }

    /// The frames of the `moof` before this `mdat` (`head`: the `mdat` header's length).
    fn mdat(&mut self, mdat: &[u8], head: u64) -> Result<(), FormatError> {
        let Some((samples, moof_size)) = self.pending.take() else { return Ok(()) };
        let start = moof_size + head;
        let mut first_err = None;
        for s in samples {
            let t = &self.tracks[s.track];
            let data = s
                .offset
                .checked_sub(start)
                .and_then(|o| usize::try_from(o).ok())
                .and_then(|o| mdat.get(o..o.checked_add(s.size as usize)?));
            let Some(data) = data else {
                first_err.get_or_insert_with(|| bad(format!("a sample of track {} is outside its mdat", t.id)));
                continue;
            };
            let payload = match t.entry.payload(data, s.sync) {
                Ok(p) => p,
                Err(e) => {
                    first_err.get_or_insert(e);
                    continue;
                }
            };
            let pts = (i128::from(s.dts as i64 + s.cts) * i128::from(t.clock) / i128::from(t.timescale)) as i64;
            let video = matches!(t.entry, Entry::Video(..));
            let frame = Frame { timestamp: pts as u32, keyframe: s.sync || !video, payload, rtp: Vec::new() };
            self.events.push_back(DemuxEvent::Frame { index: s.track, frame });
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use media::Kind;

    /// Our own fMP4 muxer's init and fragments, fed in odd chunks: the same tracks and frames back.
    #[test]
    fn round_trip_through_the_fmp4_muxer() {
        let mut m = crate::fmp4::Fmp4Muxer::with_policy(
            &[(Kind::Video, h264()), (Kind::Audio, aac())],
            crate::fmp4::FragmentPolicy::PerFrame,
        )
        .unwrap();
        let mut input = Vec::new();
        let mut stream = Vec::new();
        for i in 0..10u32 {
            let v = h264_frame(i * 3000, i % 5 == 0, i as u8 + 1);
            m.push(0, &v).unwrap();
            input.push((0, v));
            let a = audio_frame(i * 1024, i as u8, 20 + i as usize);
            m.push(1, &a).unwrap();
            input.push((1, a));
        }
        stream.extend_from_slice(&m.init_segment().unwrap());
        while let Some(f) = m.fragment() {
            stream.extend_from_slice(&f);
        }
        let mut d = Fmp4Demuxer::new();
        for chunk in stream.chunks(77) {
            d.push(chunk).unwrap();
        }
        let mut tracks = Vec::new();
        let mut frames = Vec::new();
        while let Some(e) = d.poll() {
            match e {
                DemuxEvent::Track { index, codec, .. } => tracks.push((index, codec)),
                DemuxEvent::Frame { index, frame } => frames.push((index, frame)),
            }
        }
        assert_eq!(tracks.len(), 2);
        assert_eq!((tracks[0].1.name.as_str(), tracks[1].1.name.as_str()), ("H264", "MPEG4-GENERIC"));
        assert_eq!(d.tracks(), Some(2));
        for idx in 0..2 {
            let a: Vec<&Frame> = input.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
            let b: Vec<&Frame> = frames.iter().filter(|f| f.0 == idx).map(|f| &f.1).collect();
            assert!(b.len() + 1 >= a.len() && !b.is_empty(), "track {idx}: {} of {}", b.len(), a.len());
            for (x, y) in a.iter().zip(&b) {
                assert_eq!(x.payload, y.payload, "track {idx}");
                assert_eq!(x.keyframe, y.keyframe);
                assert_eq!(y.timestamp.wrapping_sub(b[0].timestamp), x.timestamp.wrapping_sub(a[0].timestamp));
            }
        }
    }

    #[test]
    fn bad_boxes_are_errors() {
        let mut d = Fmp4Demuxer::new();
        assert!(d.push(&[0, 0, 0, 0, b'm', b'd', b'a', b't']).is_err());
        let mut d = Fmp4Demuxer::new();
        assert!(d.push(&[0x7f, 0, 0, 0, b'm', b'd', b'a', b't']).unwrap_err().to_string().contains("at most"));
        let mut d = Fmp4Demuxer::new();
        let mut moov = vec![0, 0, 0, 16, b'm', b'o', b'o', b'v', 0, 0, 0, 8, b'm', b'v', b'h', b'd'];
        assert!(d.push(&moov).unwrap_err().to_string().contains("no H.264"));
        moov.truncate(10);
        assert!(d.push(&moov).is_ok(), "a partial box waits");
    }
}
