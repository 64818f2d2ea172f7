//! Progressive (non-fragmented) MP4 files, read whole: the samples of their H.264, H.265, AV1, VP9 and
//! AAC tracks as [`media::Frame`]s, from the sample tables of `moov` (`stts`, `ctts`, `stsc`, `stsz`,
//! `stco`/`co64`, `stss`) and the sample descriptions (`avcC`, `hvcC`, `av1C`, `vpcC`, `esds`). What `ffmpeg -i x -c copy out.mp4`
//! writes, with `moov` before or after `mdat`. Edit lists are ignored (the first sample plays first).
//!
//! For files the server is given (MediaMTX's `alwaysAvailableFile`), not network input; still, every
//! read is bounds-checked and every table bounded, so a broken file is an error, never a panic.

use bytes::Bytes;
use media::{codec, Codec, Frame, Kind};

use crate::video::{with_parameter_sets, VideoCodec, VideoConfig};
use crate::FormatError;

mod fragmented;
pub use fragmented::{traf_samples, Fmp4Demuxer, TrafSample, TrafSamples, MAX_BOX};

/// Samples of one track at most (an hour of 60 fps video, or of 48 kHz AAC).
pub const MAX_SAMPLES: usize = 216_000;

/// One track of the file.
#[derive(Debug, Clone)]
pub struct Mp4Track {
    pub kind: Kind,
    pub codec: Codec,
    /// In decode order; timestamps (presentation) in the codec's clock, from 0 for the first sample's
    /// decode time. Video keyframes carry their parameter sets in front (AVCC, 4-byte lengths; AV1: the
    /// sequence header OBU when the sample has none).
    pub frames: Vec<Frame>,
    /// Decode times of `frames`, in the codec's clock from 0.
    pub decode_times: Vec<u64>,
    /// The track's length in the codec's clock (the last sample's decode time plus its duration).
    pub duration: u64,
}

fn bad(detail: impl Into<String>) -> FormatError {
    FormatError::invalid("MP4", detail.into())
}

/// A box: its type and body.
type Mp4Box<'a> = ([u8; 4], &'a [u8]);

/// The boxes in `data`.
fn boxes(mut data: &[u8]) -> Result<Vec<Mp4Box<'_>>, FormatError> {
    let mut out = Vec::new();
    while data.len() >= 8 {
        let size = u32::from_be_bytes([data[0], data[1], data[2], data[3]]) as u64;
        let kind = [data[4], data[5], data[6], data[7]];
        let (head, size) = match size {
            0 => (8, data.len() as u64),
            1 => {
                let large = data.get(8..16).ok_or_else(|| bad("truncated box size"))?;
                (16, u64::from_be_bytes(large.try_into().map_err(|_| bad("box size"))?))
            }
            n => (8, n),
        };
        if size < head as u64 || size > data.len() as u64 {
            return Err(bad(format!("box {} of {size} bytes in {} bytes", String::from_utf8_lossy(&kind), data.len())));
        }
        out.push((kind, &data[head..size as usize]));
        data = &data[size as usize..];
    }
    Ok(out)
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<Option<&'a [u8]>, FormatError> {
    Ok(boxes(data)?.into_iter().find(|(k, _)| k == kind).map(|(_, b)| b))
}

fn need<'a>(data: &'a [u8], kind: &[u8; 4]) -> Result<&'a [u8], FormatError> {
    child(data, kind)?.ok_or_else(|| bad(format!("no {} box", String::from_utf8_lossy(kind))))
}

/// A bounds-checked big-endian reader.
struct Rd<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn new(data: &'a [u8]) -> Rd<'a> {
        Rd { data, pos: 0 }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], FormatError> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.data.len()).ok_or_else(|| bad("truncated table"))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn u8(&mut self) -> Result<u8, FormatError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, FormatError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, FormatError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, FormatError> {
        let b = self.take(8)?;
        Ok(u64::from_be_bytes(b.try_into().map_err(|_| bad("u64"))?))
    }

    /// A table's entry count, checked against the bytes left (`entry` bytes each) and [`MAX_SAMPLES`].
    fn count(&mut self, entry: usize) -> Result<usize, FormatError> {
        let n = self.u32()? as usize;
        if n > MAX_SAMPLES || n.saturating_mul(entry) > self.data.len() - self.pos {
            return Err(bad(format!("table of {n} entries")));
        }
        Ok(n)
    }
}

/// The sample description of a track we read.
enum Entry {
    Video(VideoConfig, usize),
    /// AV1 (`av01` + `av1C`) and VP9 (`vp09` + `vpcC`): the codec with its record as the fmtp's
    /// `config=`, as Enhanced RTMP/FLV gives it.
    Visual(Codec),
    Aac(Vec<u8>),
}

impl Entry {
    /// The track's kind and codec (RTP names, AAC with its `config=`).
    fn codec(&self) -> Result<(Kind, Codec), FormatError> {
        match self {
            Entry::Video(config, _) => Ok((Kind::Video, config.to_codec())),
            Entry::Visual(c) => Ok((Kind::Video, c.clone())),
            Entry::Aac(asc) => {
                let c = media::aac::AudioSpecificConfig::parse(asc)
                    .map_err(|e| bad(format!("AudioSpecificConfig: {e}")))?;
                let hex: String = asc.iter().map(|b| format!("{b:02x}")).collect();
                let codec = Codec::new(codec::AAC, c.sample_rate, u16::from(c.channels.max(1)), 97).with_fmtp(format!(
                    "profile-level-id=1;mode=AAC-hbr;sizelength=13;indexlength=3;indexdeltalength=3;config={hex}"
                ));
                Ok((Kind::Audio, codec))
            }
        }
    }

    /// A sample as a frame payload: video in AVCC with 4-byte lengths (a sync sample with its parameter
    /// sets in front), AAC as it is.
    fn payload(&self, data: &[u8], sync: bool) -> Result<Bytes, FormatError> {
        Ok(match self {
            Entry::Video(config, length_size) => {
                let avcc = to_avcc(data, *length_size)?;
                match sync.then(|| with_parameter_sets(config, &avcc)).flatten() {
                    Some(with) => Bytes::from(with),
                    None => Bytes::from(avcc),
                }
            }
            Entry::Visual(c) if sync && c.name == codec::AV1 => av1_with_sequence_header(c, data),
            Entry::Visual(_) | Entry::Aac(_) => Bytes::copy_from_slice(data),
        })
    }
}

fn sample_entry(stsd: &[u8]) -> Result<Option<Entry>, FormatError> {
    // Full box header, entry count, then the first entry.
    let entries = boxes(stsd.get(8..).ok_or_else(|| bad("truncated stsd"))?)?;
    let Some((kind, body)) = entries.first() else { return Ok(None) };
    let video = |codec, record: &[u8; 4]| -> Result<Option<Entry>, FormatError> {
        // VisualSampleEntry: 78 bytes before its child boxes.
        let rest = body.get(78..).ok_or_else(|| bad("truncated visual sample entry"))?;
        let (config, length_size) = VideoConfig::parse_record(codec, need(rest, record)?)?;
        Ok(Some(Entry::Video(config, length_size)))
    };
    match kind {
        b"avc1" | b"avc3" => video(VideoCodec::H264, b"avcC"),
        b"hvc1" | b"hev1" => video(VideoCodec::H265, b"hvcC"),
        b"av01" => {
            let rest = body.get(78..).ok_or_else(|| bad("truncated visual sample entry"))?;
            Ok(Some(Entry::Visual(crate::flv::av1_codec(need(rest, b"av1C")?)?)))
        }
        b"vp09" => {
            // vpcC is a full box: version 1 and flags, then the record, as FLV carries it.
            let rest = body.get(78..).ok_or_else(|| bad("truncated visual sample entry"))?;
            Ok(Some(Entry::Visual(crate::flv::vp9_codec(need(rest, b"vpcC")?)?)))
        }
        b"mp4a" => {
            // AudioSampleEntry: 28 bytes before its child boxes.
            let rest = body.get(28..).ok_or_else(|| bad("truncated audio sample entry"))?;
            let esds = need(rest, b"esds")?;
            Ok(Some(Entry::Aac(decoder_specific_info(esds.get(4..).unwrap_or(&[]))?)))
        }
        _ => Ok(None),
    }
}

/// The DecoderSpecificInfo (AudioSpecificConfig) inside an `esds` box's ES_Descriptor.
fn decoder_specific_info(mut data: &[u8]) -> Result<Vec<u8>, FormatError> {
    // Descriptors: tag, size (7 bits a byte, high bit = more), body. Walk into 0x03 and 0x04 to 0x05.
    for _ in 0..8 {
        let mut r = Rd::new(data);
        let tag = r.u8()?;
        let mut size = 0usize;
        for _ in 0..4 {
            let b = r.u8()?;
            size = size << 7 | usize::from(b & 0x7f);
            if b & 0x80 == 0 {
                break;
            }
        }
        let body = r.take(size.min(data.len() - r.pos))?;
        match tag {
            0x03 => {
                let mut e = Rd::new(body);
                e.u16()?;
                let flags = e.u8()?;
                if flags & 0x80 != 0 {
                    e.u16()?;
                }
                if flags & 0x40 != 0 {
                    let n = e.u8()?;
                    e.take(usize::from(n))?;
                }
                if flags & 0x20 != 0 {
                    e.u16()?;
                }
                data = &body[e.pos..];
            }
            0x04 => data = body.get(13..).ok_or_else(|| bad("truncated DecoderConfigDescriptor"))?,
            0x05 => return Ok(body.to_vec()),
            _ => return Err(bad(format!("esds: descriptor {tag:#x} where the decoder config was expected"))),
        }
    }
    Err(bad("esds: no AudioSpecificConfig"))
}

/// One sample located in the file: offset, size, decode time, composition offset, sync.
struct Located {
    offset: u64,
    size: u32,
    dts: u64,
    cts: i64,
    sync: bool,
}

fn sample_table(stbl: &[u8]) -> Result<(Vec<Located>, u64), FormatError> {
    // Sizes.
    let mut r = Rd::new(need(stbl, b"stsz")?);
    r.u32()?;
    let fixed = r.u32()?;
    let n = r.count(if fixed == 0 { 4 } else { 0 })?;
    let sizes: Vec<u32> = if fixed == 0 { (0..n).map(|_| r.u32()).collect::<Result<_, _>>()? } else { vec![fixed; n] };
    // Decode times.
    let mut r = Rd::new(need(stbl, b"stts")?);
    r.u32()?;
    let entries = r.count(8)?;
    let mut dts = Vec::with_capacity(n);
    let mut t = 0u64;
    for _ in 0..entries {
        let (count, delta) = (r.u32()? as usize, u64::from(r.u32()?));
        for _ in 0..count.min(n.saturating_sub(dts.len())) {
            dts.push(t);
            t += delta;
        }
    }
    if dts.len() < n {
        return Err(bad(format!("stts times {} of {n} samples", dts.len())));
    }
    // Composition offsets.
    let mut cts = vec![0i64; n];
    if let Some(ctts) = child(stbl, b"ctts")? {
        let mut r = Rd::new(ctts);
        let version = r.u8()?;
        r.take(3)?;
        let entries = r.count(8)?;
        let mut i = 0;
        for _ in 0..entries {
            let (count, off) = (r.u32()? as usize, r.u32()?);
            let off = if version == 0 { i64::from(off) } else { i64::from(off as i32) };
            for c in cts.iter_mut().skip(i).take(count) {
                *c = off;
            }
            i = i.saturating_add(count);
        }
    }
    // Sync samples (none listed: all are).
    let mut sync = vec![true; n];
    if let Some(stss) = child(stbl, b"stss")? {
        sync.iter_mut().for_each(|s| *s = false);
        let mut r = Rd::new(stss);
        r.u32()?;
        for _ in 0..r.count(4)? {
            if let Some(s) = (r.u32()? as usize).checked_sub(1).and_then(|i| sync.get_mut(i)) {
                *s = true;
            }
        }
    }
    // Chunk offsets, and samples per chunk.
    let chunks: Vec<u64> = if let Some(stco) = child(stbl, b"stco")? {
        let mut r = Rd::new(stco);
        r.u32()?;
        (0..r.count(4)?).map(|_| r.u32().map(u64::from)).collect::<Result<_, _>>()?
    } else {
        let mut r = Rd::new(need(stbl, b"co64")?);
        r.u32()?;
        (0..r.count(8)?).map(|_| r.u64()).collect::<Result<_, _>>()?
    };
    let mut r = Rd::new(need(stbl, b"stsc")?);
    r.u32()?;
    let runs: Vec<(usize, usize)> = (0..r.count(12)?)
        .map(|_| -> Result<(usize, usize), FormatError> {
            let (first, per) = (r.u32()? as usize, r.u32()? as usize);
            r.u32()?;
            Ok((first.max(1) - 1, per))
        })
        .collect::<Result<_, _>>()?;
    let mut out = Vec::with_capacity(n);
    let mut run = 0;
    for (c, &chunk_offset) in chunks.iter().enumerate() {
        while runs.get(run + 1).is_some_and(|(first, _)| *first <= c) {
            run += 1;
        }
        let per = runs.get(run).filter(|(first, _)| *first <= c).map_or(0, |r| r.1);
        let mut offset = chunk_offset;
        for _ in 0..per {
            let i = out.len();
            if i == n {
                break;
            }
            out.push(Located { offset, size: sizes[i], dts: dts[i], cts: cts[i], sync: sync[i] });
            offset += u64::from(sizes[i]);
        }
    }
    if out.len() < n {
        return Err(bad(format!("chunks hold {} of {n} samples", out.len())));
    }
    Ok((out, t))
}

/// The H.264, H.265, AV1, VP9 and AAC tracks of a whole MP4 file (others are skipped). An error names what is
/// wrong: no `moov`, a table that does not fit, a sample outside the file, no track we can read.
pub fn read(file: &[u8]) -> Result<Vec<Mp4Track>, FormatError> {
    let top = boxes(file)?;
    let moov = top.iter().find(|(k, _)| k == b"moov").map(|(_, b)| *b).ok_or_else(|| bad("no moov box"))?;
    let mut tracks = Vec::new();
    for (kind, trak) in boxes(moov)? {
        if &kind != b"trak" {
            continue;
        }
        let mdia = need(trak, b"mdia")?;
        let mut r = Rd::new(need(mdia, b"mdhd")?);
        let version = r.u8()?;
        r.take(if version == 1 { 3 + 16 } else { 3 + 8 })?;
        let timescale = u64::from(r.u32()?.max(1));
        let stbl = need(need(mdia, b"minf")?, b"stbl")?;
        let Some(entry) = sample_entry(need(stbl, b"stsd")?)? else { continue };
        let (located, duration) = sample_table(stbl)?;
        let (kind, codec) = entry.codec()?;
        let video = matches!(entry, Entry::Video(..) | Entry::Visual(..));
        let clock = u64::from(codec.clock_rate.max(1));
        let scale = |t: i64| -> i64 { (i128::from(t) * i128::from(clock) / i128::from(timescale)) as i64 };
        let mut frames = Vec::with_capacity(located.len());
        let mut decode_times = Vec::with_capacity(located.len());
        for s in &located {
            let start = usize::try_from(s.offset).map_err(|_| bad("sample offset"))?;
            let data = start
                .checked_add(s.size as usize)
                .and_then(|end| file.get(start..end))
                .ok_or_else(|| bad(format!("a sample at {} ({} bytes) is outside the file", s.offset, s.size)))?;
            let payload = entry.payload(data, s.sync)?;
            let dts = scale(s.dts as i64);
            let pts = scale(s.dts as i64 + s.cts).max(0);
            frames.push(Frame { timestamp: pts as u32, keyframe: s.sync || !video, payload, rtp: Vec::new() });
            decode_times.push(dts.max(0) as u64);
        }
        let duration = scale(duration as i64).max(0) as u64;
        tracks.push(Mp4Track { kind, codec, frames, decode_times, duration });
    }
    if tracks.is_empty() {
        return Err(bad("no H.264, H.265, AV1, VP9 or AAC track"));
    }
    Ok(tracks)
}

/// An AV1 sync sample with the sequence header OBU of the track's `av1C` (fmtp `config=`) in front when
/// it has none (MP4 may keep it in `av1C` only; readers switching to this stream need it in band).
fn av1_with_sequence_header(c: &Codec, sample: &[u8]) -> Bytes {
    const OBU_SEQUENCE_HEADER: u8 = 1;
    let mut rest = sample;
    while let Some(&h) = rest.first() {
        if (h >> 3) & 0x0f == OBU_SEQUENCE_HEADER {
            return Bytes::copy_from_slice(sample);
        }
        // Only OBUs with their size field can be walked; one without runs to the end.
        let at = 1 + usize::from(h & 0x04 != 0);
        let Some((len, n)) = (h & 0x02 != 0).then(|| crate::fmp4::visual::leb128(rest.get(at..)?)).flatten() else {
            break;
        };
        let Some(next) = (at + n).checked_add(len).and_then(|end| rest.get(end..)) else { break };
        rest = next;
    }
    let config = c.fmtp_param("config").map(unhex).unwrap_or_default();
    let mut out = config.get(4..).unwrap_or_default().to_vec();
    out.extend_from_slice(sample);
    Bytes::from(out)
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2).filter_map(|i| u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()).collect()
}

/// Samples with `length_size`-byte NAL lengths as 4-byte ones.
fn to_avcc(data: &[u8], length_size: usize) -> Result<Vec<u8>, FormatError> {
    if length_size == 4 {
        return Ok(data.to_vec());
    }
    let mut out = Vec::with_capacity(data.len() + 16);
    let mut r = Rd::new(data);
    while r.pos < data.len() {
        let len = r.take(length_size)?.iter().fold(0usize, |n, b| n << 8 | usize::from(*b));
        let nal = r.take(len)?;
        out.extend_from_slice(&(nal.len() as u32).to_be_bytes());
        out.extend_from_slice(nal);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
        let mut out = ((body.len() + 8) as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(body);
        out
    }

    fn full(kind: &[u8; 4], words: &[u32]) -> Vec<u8> {
        let body: Vec<u8> = std::iter::once(0u32).chain(words.iter().copied()).flat_map(u32::to_be_bytes).collect();
        bx(kind, &body)
    }

    /// An MP4 with one AAC track (48 kHz stereo, timescale 48000) of three samples in two chunks,
    /// `moov` after `mdat` as ffmpeg writes it.
    fn aac_file() -> Vec<u8> {
        let samples: [&[u8]; 3] = [b"one", b"two!", b"three"];
        let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isom");
        let mdat_body: Vec<u8> = samples.concat();
        let mdat = bx(b"mdat", &mdat_body);
        let data_at = (ftyp.len() + 8) as u32;
        // esds: ES_Descriptor(3) > DecoderConfigDescriptor(4) > DecSpecificInfo(5) = 0x11 0x90.
        let mut esds = vec![0, 0, 0, 0, 0x03, 22, 0, 1, 0, 0x04, 17, 0x40, 0x15];
        esds.extend_from_slice(&[0; 11]);
        esds.extend_from_slice(&[0x05, 2, 0x11, 0x90]);
        let mut mp4a = vec![0u8; 28];
        mp4a.extend(bx(b"esds", &esds));
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(bx(b"mp4a", &mp4a));
        let stbl = [
            bx(b"stsd", &stsd),
            full(b"stts", &[1, 3, 1024]),
            full(b"stsz", &[0, 3, 3, 4, 5]),
            full(b"stsc", &[2, 1, 2, 1, 2, 1, 1]),
            full(b"stco", &[2, data_at, data_at + 7]),
        ]
        .concat();
        let mdhd = full(b"mdhd", &[0, 0, 48000, 3072, 0]);
        let minf = bx(b"minf", &bx(b"stbl", &stbl));
        let trak = bx(b"trak", &bx(b"mdia", &[mdhd, minf].concat()));
        [ftyp, mdat, bx(b"moov", &trak)].concat()
    }

    #[test]
    fn aac_samples_are_found_through_the_chunk_tables() {
        let tracks = read(&aac_file()).unwrap();
        let [t] = &tracks[..] else { panic!("{tracks:?}") };
        assert_eq!((t.kind, t.codec.clock_rate, t.codec.channels), (Kind::Audio, 48000, 2));
        assert!(t.codec.fmtp.contains("config=1190"), "{}", t.codec.fmtp);
        let payloads: Vec<&[u8]> = t.frames.iter().map(|f| &f.payload[..]).collect();
        assert_eq!(payloads, [&b"one"[..], b"two!", b"three"]);
        assert_eq!(t.frames.iter().map(|f| f.timestamp).collect::<Vec<_>>(), [0, 1024, 2048]);
        assert_eq!((t.decode_times.clone(), t.duration), (vec![0, 1024, 2048], 3072));
    }

    /// An MP4 with one `entry` (`av01`, `vp09`) video track whose sample entry holds `record` (a box),
    /// timescale 12800 (ffmpeg's for 25 fps), the first sample the only sync sample.
    fn visual_file(entry: &[u8; 4], record: Vec<u8>, samples: &[&[u8]]) -> Vec<u8> {
        let ftyp = bx(b"ftyp", b"isom\0\0\x02\0isom");
        let mdat = bx(b"mdat", &samples.concat());
        let data_at = (ftyp.len() + 8) as u32;
        let mut sample_entry = vec![0u8; 78];
        sample_entry.extend(record);
        let mut stsd = vec![0, 0, 0, 0, 0, 0, 0, 1];
        stsd.extend(bx(entry, &sample_entry));
        let n = samples.len() as u32;
        let sizes: Vec<u32> = [0, n].into_iter().chain(samples.iter().map(|s| s.len() as u32)).collect();
        let stbl = [
            bx(b"stsd", &stsd),
            full(b"stts", &[1, n, 512]),
            full(b"stsz", &sizes),
            full(b"stss", &[1, 1]),
            full(b"stsc", &[1, 1, n, 1]),
            full(b"stco", &[1, data_at]),
        ]
        .concat();
        let mdhd = full(b"mdhd", &[0, 0, 12800, 512 * n, 0]);
        let minf = bx(b"minf", &bx(b"stbl", &stbl));
        let trak = bx(b"trak", &bx(b"mdia", &[mdhd, minf].concat()));
        [ftyp, mdat, bx(b"moov", &trak)].concat()
    }

    #[test]
    fn av1_and_vp9_tracks_carry_their_records() {
        // libsvtav1's 320x240 av1C; its keyframe as MP4 stores it (no temporal delimiter; here without
        // the sequence header, which the reader puts in front), an inter frame.
        let av1c =
            [0x81, 0x00, 0x0c, 0x00, 0x0a, 0x0b, 0x00, 0x00, 0x00, 0x04, 0x3c, 0xff, 0xbc, 0x02, 0xf8, 0x00, 0x40];
        let key: &[u8] = &[0x32, 0x02, 0x10, 0x00];
        let inter: &[u8] = &[0x32, 0x02, 0x30, 0x00];
        let tracks = read(&visual_file(b"av01", bx(b"av1C", &av1c), &[key, inter])).unwrap();
        let [t] = &tracks[..] else { panic!("{tracks:?}") };
        assert_eq!((t.kind, t.codec.name.as_str(), t.codec.clock_rate), (Kind::Video, codec::AV1, 90000));
        assert!(t.codec.fmtp.ends_with("config=81000C000A0B000000043CFFBC02F80040"), "{}", t.codec.fmtp);
        assert_eq!(t.frames[0].payload[..], [&av1c[4..], key].concat()[..], "the sequence header in front");
        assert_eq!(&t.frames[1].payload[..], inter);
        assert!(t.frames[0].keyframe && !t.frames[1].keyframe);
        assert_eq!((t.frames[1].timestamp, t.duration), (3600, 7200));
        let v = crate::fmp4::Visual::from_keyframe(&t.codec, &t.frames[0].payload).unwrap();
        assert_eq!((v.width, v.height), (320, 240));
        // A keyframe that has its sequence header keeps it, once.
        let with_seq = [&[0x12, 0x00][..], &av1c[4..], key].concat();
        let tracks = read(&visual_file(b"av01", bx(b"av1C", &av1c), &[&with_seq])).unwrap();
        assert_eq!(&tracks[0].frames[0].payload[..], &with_seq[..]);

        // libvpx-vp9: vpcC version 1 (a full box), samples as they are.
        let vpcc = [1, 0, 0, 0, 0, 20, 0x82, 2, 2, 2, 0, 0];
        let tracks = read(&visual_file(b"vp09", bx(b"vpcC", &vpcc), &[b"\x82\x49\x83\x42", b"\x86"])).unwrap();
        let t = &tracks[0];
        assert_eq!(
            (t.codec.name.as_str(), t.codec.fmtp.as_str()),
            (codec::VP9, "profile-id=0;config=010000000014820202020000")
        );
        assert_eq!(&t.frames[0].payload[..], b"\x82\x49\x83\x42");
        // A record that is not one is an error naming it.
        let err = read(&visual_file(b"av01", bx(b"av1C", &[1, 2]), &[key])).unwrap_err().to_string();
        assert!(err.contains("av1C"), "{err}");
    }

    #[test]
    fn broken_files_are_errors() {
        let file = aac_file();
        for cut in 0..file.len() {
            let _ = read(&file[..cut]);
        }
        let mut flipped = file.clone();
        for i in 0..flipped.len() {
            flipped[i] ^= 0xff;
            let _ = read(&flipped);
            flipped[i] ^= 0xff;
        }
        let err = read(b"\0\0\0\x10ftypisom\0\0\0\0").unwrap_err().to_string();
        assert!(err.contains("no moov"), "{err}");
    }
}
