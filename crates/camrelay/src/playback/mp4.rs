//! Reading recorded fMP4 segments (ours and MediaMTX's: `ftyp` + `moov` + `moof`/`mdat` fragments)
//! and writing what `/get` serves: fMP4 fragments, or one progressive MP4 (`moov` before `mdat`).
//!
//! Everything here parses files from disk, which a crash may have cut anywhere: every read is
//! bounds-checked, box sizes are bounded, and a truncated box ends the file rather than failing it.

use std::fs::File;
use std::os::unix::fs::FileExt;

/// Largest `moov` or `moof` read into memory.
pub const MAX_HEADER_BOX: u64 = 16 << 20;

/// One track of a segment's init (`moov`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackInfo {
    pub id: u32,
    pub timescale: u32,
    pub video: bool,
    /// `trex` defaults: duration, size, flags.
    pub defaults: (u32, u32, u32),
}

/// A segment's init: its bytes (`ftyp` + `moov`, served as the fMP4 init) and tracks.
#[derive(Debug, Clone)]
pub struct Init {
    pub ftyp: Vec<u8>,
    pub moov: Vec<u8>,
    pub tracks: Vec<TrackInfo>,
    /// Segments with the same signature (track IDs, timescales, sample descriptions) play as one.
    pub signature: u64,
}

impl Init {
    pub fn track(&self, id: u32) -> Option<(usize, &TrackInfo)> {
        self.tracks.iter().enumerate().find(|(_, t)| t.id == id)
    }
}

/// One sample of a fragment, located in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    pub track: u32,
    pub dts: u64,
    pub duration: u32,
    pub size: u32,
    pub offset: u64,
    pub sync: bool,
    pub cts: i32,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(at..at + 8)?.try_into().ok()?))
}

/// The child boxes of `data`: (type, payload). Stops at the first malformed box.
pub fn children(data: &[u8]) -> Vec<([u8; 4], &[u8])> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 8 <= data.len() {
        let size = be32(data, at).unwrap_or(0) as u64;
        let kind: [u8; 4] = data[at + 4..at + 8].try_into().unwrap_or([0; 4]);
        let (head, size) = match size {
            0 => (8, (data.len() - at) as u64),
            1 => match be64(data, at + 8) {
                Some(s) => (16, s),
                None => break,
            },
            s => (8, s),
        };
        if size < head as u64 || at as u64 + size > data.len() as u64 {
            break;
        }
        out.push((kind, &data[at + head..at + size as usize]));
        at += size as usize;
    }
    out
}

fn child<'a>(data: &'a [u8], kind: &[u8; 4]) -> Option<&'a [u8]> {
    children(data).into_iter().find(|(k, _)| k == kind).map(|(_, p)| p)
}

/// FNV-1a, for init signatures (stable across runs, no dependency).
fn fnv(hash: &mut u64, bytes: &[u8]) {
    for b in bytes {
        *hash ^= u64::from(*b);
        *hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
}

/// Parses a `moov`'s payload.
pub fn parse_moov(ftyp: Vec<u8>, moov: Vec<u8>) -> Result<Init, String> {
    let mut tracks = Vec::new();
    let mut signature = 0xcbf2_9ce4_8422_2325u64;
    let payload = moov.get(8..).ok_or("moov box too short")?;
    let trex: Vec<(u32, (u32, u32, u32))> = child(payload, b"mvex")
        .map(|mvex| {
            children(mvex)
                .into_iter()
                .filter(|(k, _)| k == b"trex")
                .filter_map(|(_, p)| Some((be32(p, 4)?, (be32(p, 12)?, be32(p, 16)?, be32(p, 20)?))))
                .collect()
        })
        .unwrap_or_default();
    for (kind, trak) in children(payload) {
        if &kind != b"trak" {
            continue;
        }
        let tkhd = child(trak, b"tkhd").ok_or("trak without tkhd")?;
        let id = if tkhd.first() == Some(&1) { be32(tkhd, 20) } else { be32(tkhd, 12) }.ok_or("short tkhd")?;
        let mdia = child(trak, b"mdia").ok_or("trak without mdia")?;
        let mdhd = child(mdia, b"mdhd").ok_or("mdia without mdhd")?;
        let timescale = if mdhd.first() == Some(&1) { be32(mdhd, 20) } else { be32(mdhd, 12) }.ok_or("short mdhd")?;
        if timescale == 0 {
            return Err(format!("track {id}: timescale 0"));
        }
        let hdlr = child(mdia, b"hdlr").ok_or("mdia without hdlr")?;
        let video = hdlr.get(8..12) == Some(b"vide");
        let stsd = child(mdia, b"minf").and_then(|m| child(m, b"stbl")).and_then(|s| child(s, b"stsd"));
        fnv(&mut signature, &id.to_be_bytes());
        fnv(&mut signature, &timescale.to_be_bytes());
        fnv(&mut signature, stsd.unwrap_or_default());
        let defaults = trex.iter().find(|(t, _)| *t == id).map(|(_, d)| *d).unwrap_or((0, 0, 0));
        tracks.push(TrackInfo { id, timescale, video, defaults });
    }
    if tracks.is_empty() {
        return Err("moov has no tracks".into());
    }
    Ok(Init { ftyp, moov, tracks, signature })
}

/// A top-level box in a file: type, offset of the box, header length, total size (`None`: the box
/// runs past the end of the file).
#[derive(Debug, Clone, Copy)]
pub struct BoxAt {
    pub kind: [u8; 4],
    pub offset: u64,
    pub head: u64,
    pub size: u64,
}

/// The top-level box at `offset`, `None` at the end or on a truncated header.
pub fn box_at(file: &File, offset: u64, len: u64) -> Option<BoxAt> {
    if offset + 8 > len {
        return None;
    }
    let mut h = [0u8; 16];
    let n = if offset + 16 <= len { 16 } else { 8 };
    file.read_exact_at(&mut h[..n], offset).ok()?;
    let size = u64::from(be32(&h, 0)?);
    let kind: [u8; 4] = h[4..8].try_into().ok()?;
    let (head, size) = match size {
        0 => (8, len - offset),
        1 if n == 16 => (16, be64(&h, 8)?),
        1 => return None,
        s => (8, s),
    };
    if size < head || offset.checked_add(size)? > len {
        return None;
    }
    Some(BoxAt { kind, offset, head, size })
}

fn read_box(file: &File, b: &BoxAt) -> Result<Vec<u8>, String> {
    if b.size > MAX_HEADER_BOX {
        return Err(format!("{} box of {} bytes", String::from_utf8_lossy(&b.kind), b.size));
    }
    let mut buf = vec![0u8; b.size as usize];
    file.read_exact_at(&mut buf, b.offset).map_err(|e| e.to_string())?;
    Ok(buf)
}

/// Reads the init (`ftyp` + `moov`) at the start of a segment file; returns it and where the
/// fragments begin.
pub fn read_init(file: &File, len: u64) -> Result<(Init, u64), String> {
    let ftyp = box_at(file, 0, len).filter(|b| &b.kind == b"ftyp").ok_or("no ftyp box at the start")?;
    let moov = box_at(file, ftyp.size, len).filter(|b| &b.kind == b"moov").ok_or("no moov box after ftyp")?;
    let init = parse_moov(read_box(file, &ftyp)?, read_box(file, &moov)?)?;
    Ok((init, ftyp.size + moov.size))
}

/// The samples of one `moof` box (`data`: the whole box, at file offset `at`).
pub fn parse_moof(data: &[u8], at: u64, init: &Init) -> Vec<Sample> {
    let mut out = Vec::new();
    let Some(payload) = data.get(8..) else { return out };
    for (kind, traf) in children(payload) {
        if &kind != b"traf" {
            continue;
        }
        let Some(run) = formats::mp4::traf_samples(traf, |id| init.track(id).map(|(_, t)| t.defaults)) else {
            continue;
        };
        let base = run.base_data_offset.unwrap_or(at);
        out.extend(run.samples.iter().map(|s| Sample {
            track: run.track_id,
            dts: s.dts,
            duration: s.duration,
            size: s.size,
            offset: base.saturating_add_signed(s.offset),
            sync: s.sync,
            cts: s.cts.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
        }));
    }
    out
}

/// What the index keeps of a segment: its init's signature and how long it plays.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probe {
    pub signature: u64,
    pub duration: std::time::Duration,
}

/// The time (seconds) a segment's first fragment starts at: the video track's `tfdt`, else the
/// earliest track's.
pub fn base_time(samples: &[Sample], init: &Init) -> Option<f64> {
    let secs = |s: &Sample| init.track(s.track).map(|(_, t)| s.dts as f64 / f64::from(t.timescale));
    let video = samples.iter().find(|s| init.track(s.track).is_some_and(|(_, t)| t.video));
    match video {
        Some(v) => secs(v),
        None => samples.iter().filter_map(secs).reduce(f64::min),
    }
}

/// Reads a segment's init, its first fragment and its last complete one (found from the end of the
/// file), without walking the fragments between: its duration is the last fragment's end minus the
/// first's start.
pub fn probe(file: &File) -> Result<Probe, String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let (init, first) = read_init(file, len)?;
    let first_moof = box_at(file, first, len).filter(|b| &b.kind == b"moof");
    let Some(first_moof) = first_moof else {
        return Ok(Probe { signature: init.signature, duration: std::time::Duration::ZERO });
    };
    let head = parse_moof(&read_box(file, &first_moof)?, first_moof.offset, &init);
    let base = base_time(&head, &init).unwrap_or(0.0);
    // The last moof whose mdat is complete, searching back from the end.
    let mut window = 256u64 << 10;
    loop {
        let from = len.saturating_sub(window).max(first);
        let mut tail = vec![0u8; (len - from) as usize];
        file.read_exact_at(&mut tail, from).map_err(|e| e.to_string())?;
        let mut i = tail.len().saturating_sub(8);
        loop {
            if &tail[i + 4..i + 8] == b"moof" {
                let at = from + i as u64;
                if let Some(end) = last_fragment_end(file, at, len, &init) {
                    let secs = (end - base).max(0.0);
                    return Ok(Probe { signature: init.signature, duration: std::time::Duration::from_secs_f64(secs) });
                }
            }
            if i == 0 {
                break;
            }
            i -= 1;
        }
        if from <= first || window >= MAX_HEADER_BOX * 4 {
            return Ok(Probe { signature: init.signature, duration: std::time::Duration::ZERO });
        }
        window *= 4;
    }
}

/// When `at` holds a `moof` followed by a complete `mdat`: the latest end (seconds) of its tracks.
fn last_fragment_end(file: &File, at: u64, len: u64, init: &Init) -> Option<f64> {
    let moof = box_at(file, at, len).filter(|b| &b.kind == b"moof")?;
    let mdat = box_at(file, at + moof.size, len).filter(|b| &b.kind == b"mdat")?;
    let data = read_box(file, &moof).ok()?;
    child(data.get(8..)?, b"mfhd")?;
    let samples = parse_moof(&data, at, init);
    if samples.is_empty() || samples.iter().any(|s| s.offset + u64::from(s.size) > mdat.offset + mdat.size) {
        return None;
    }
    samples
        .iter()
        .filter_map(|s| {
            let ts = f64::from(init.track(s.track)?.1.timescale);
            Some((s.dts + u64::from(s.duration)) as f64 / ts)
        })
        .reduce(f64::max)
}

/// A box writer with size patching.
#[derive(Default)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn start(&mut self, kind: &[u8; 4]) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0, 0, 0]);
        self.buf.extend_from_slice(kind);
        at
    }
    pub fn start_full(&mut self, kind: &[u8; 4], version: u8, flags: u32) -> usize {
        let at = self.start(kind);
        self.u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
        at
    }
    pub fn end(&mut self, at: usize) {
        let size = (self.buf.len() - at) as u32;
        self.buf[at..at + 4].copy_from_slice(&size.to_be_bytes());
    }
    pub fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.extend_from_slice(b);
    }
}

/// One sample as `/get` writes it: its track (index in the init), time in the output, and where its
/// bytes are.
#[derive(Debug, Clone, Copy)]
pub struct OutSample {
    pub track: usize,
    pub dts: u64,
    pub duration: u32,
    pub cts: i32,
    pub sync: bool,
    pub size: u32,
    /// Index of the segment file in the span.
    pub file: usize,
    pub offset: u64,
}

/// A `moof` + `mdat` for `samples` (each track's samples in order), with their payloads.
pub fn fragment(sequence: u32, init: &Init, samples: &[OutSample], payloads: &[Vec<u8>]) -> Vec<u8> {
    let mut w = Writer::default();
    let moof = w.start(b"moof");
    let mfhd = w.start_full(b"mfhd", 0, 0);
    w.u32(sequence);
    w.end(mfhd);
    let mut patches = Vec::new();
    let mut data_len = 0usize;
    let mut order = Vec::new();
    for (t, info) in init.tracks.iter().enumerate() {
        let mine: Vec<usize> = (0..samples.len()).filter(|i| samples[*i].track == t).collect();
        if mine.is_empty() {
            continue;
        }
        let with_cts = mine.iter().any(|i| samples[*i].cts != 0);
        let traf = w.start(b"traf");
        let tfhd = w.start_full(b"tfhd", 0, 0x02_0000);
        w.u32(info.id);
        w.end(tfhd);
        let tfdt = w.start_full(b"tfdt", 1, 0);
        w.u64(samples[mine[0]].dts);
        w.end(tfdt);
        let trun = w.start_full(b"trun", u8::from(with_cts), if with_cts { 0xf01 } else { 0x701 });
        w.u32(mine.len() as u32);
        patches.push((w.buf.len(), data_len));
        w.u32(0);
        for i in &mine {
            let s = &samples[*i];
            w.u32(s.duration);
            w.u32(s.size);
            w.u32(if s.sync { 0x0200_0000 } else { 0x0101_0000 });
            if with_cts {
                w.u32(s.cts as u32);
            }
            data_len += s.size as usize;
            order.push(*i);
        }
        w.end(trun);
        w.end(traf);
    }
    w.end(moof);
    let moof_len = w.buf.len();
    for (pos, off) in patches {
        let v = (moof_len + 8 + off) as u32;
        w.buf[pos..pos + 4].copy_from_slice(&v.to_be_bytes());
    }
    w.u32((data_len + 8) as u32);
    w.bytes(b"mdat");
    for i in order {
        w.bytes(&payloads[i]);
    }
    w.buf
}

/// A progressive MP4's `ftyp` + `moov` + the `mdat` header, for `samples` laid out one chunk per
/// sample in this order right after it. Returns the head; the payloads follow in `samples` order.
pub fn progressive_head(init: &Init, samples: &[OutSample]) -> Result<Vec<u8>, String> {
    let data: u64 = samples.iter().map(|s| u64::from(s.size)).sum();
    let large = data > u64::from(u32::MAX) - (64 << 20);
    let mdat_head: u64 = if large { 16 } else { 8 };
    // The moov's length does not depend on the offsets it holds (fixed-width entries).
    let probe = progressive_moov(init, samples, 0, large)?;
    let base = (init.ftyp.len() + probe.len()) as u64 + mdat_head;
    let moov = progressive_moov(init, samples, base, large)?;
    let mut out = Vec::with_capacity(base as usize);
    out.extend_from_slice(&init.ftyp);
    out.extend_from_slice(&moov);
    if large {
        out.extend_from_slice(&1u32.to_be_bytes());
        out.extend_from_slice(b"mdat");
        out.extend_from_slice(&(data + 16).to_be_bytes());
    } else {
        out.extend_from_slice(&((data + 8) as u32).to_be_bytes());
        out.extend_from_slice(b"mdat");
    }
    Ok(out)
}

fn progressive_moov(init: &Init, samples: &[OutSample], data_start: u64, large: bool) -> Result<Vec<u8>, String> {
    let moov = init.moov.get(8..).ok_or("short moov")?;
    let movie_scale = child(moov, b"mvhd").and_then(|m| if m.first() == Some(&1) { be32(m, 20) } else { be32(m, 12) });
    let movie_scale = u64::from(movie_scale.filter(|s| *s > 0).unwrap_or(1000));
    // Per track: the samples' indices, and its duration in its timescale.
    let mut offsets = Vec::with_capacity(samples.len());
    let mut at = data_start;
    for s in samples {
        offsets.push(at);
        at += u64::from(s.size);
    }
    let track_end = |t: usize| -> u64 {
        samples.iter().filter(|s| s.track == t).map(|s| s.dts + u64::from(s.duration)).max().unwrap_or(0)
    };
    let movie_duration = (0..init.tracks.len())
        .map(|t| track_end(t) * movie_scale / u64::from(init.tracks[t].timescale))
        .max()
        .unwrap_or(0);
    let mut w = Writer::default();
    let m = w.start(b"moov");
    let mut track_index = 0usize;
    for (kind, payload) in children(moov) {
        match &kind {
            b"mvhd" => {
                let mut p = payload.to_vec();
                set_duration(&mut p, 16, 24, movie_duration);
                write_box(&mut w, b"mvhd", &p);
            }
            b"mvex" => {}
            b"trak" => {
                let Some((t, info)) = init.tracks.iter().enumerate().nth(track_index) else { continue };
                track_index += 1;
                let mine: Vec<usize> = (0..samples.len()).filter(|i| samples[*i].track == t).collect();
                let end = track_end(t);
                let trak = w.start(b"trak");
                for (kind, payload) in children(payload) {
                    match &kind {
                        b"tkhd" => {
                            let mut p = payload.to_vec();
                            set_duration(&mut p, 20, 28, end * movie_scale / u64::from(info.timescale));
                            write_box(&mut w, b"tkhd", &p);
                        }
                        b"edts" => {}
                        b"mdia" => {
                            let mdia = w.start(b"mdia");
                            for (kind, payload) in children(payload) {
                                match &kind {
                                    b"mdhd" => {
                                        let mut p = payload.to_vec();
                                        set_duration(&mut p, 16, 24, end);
                                        write_box(&mut w, b"mdhd", &p);
                                    }
                                    b"minf" => {
                                        let minf = w.start(b"minf");
                                        for (kind, payload) in children(payload) {
                                            if &kind == b"stbl" {
                                                let stsd = child(payload, b"stsd").ok_or("stbl without stsd")?;
                                                write_stbl(&mut w, stsd, samples, &mine, &offsets, large);
                                            } else {
                                                write_box(&mut w, &kind, payload);
                                            }
                                        }
                                        w.end(minf);
                                    }
                                    _ => write_box(&mut w, &kind, payload),
                                }
                            }
                            w.end(mdia);
                        }
                        _ => write_box(&mut w, &kind, payload),
                    }
                }
                w.end(trak);
            }
            _ => write_box(&mut w, &kind, payload),
        }
    }
    w.end(m);
    Ok(w.buf)
}

/// Sets a full box's duration field: at `v0` (32 bits) in version 0, `v1` (64 bits) in version 1.
fn set_duration(p: &mut [u8], v0: usize, v1: usize, d: u64) {
    if p.first() == Some(&1) {
        if let Some(f) = p.get_mut(v1..v1 + 8) {
            f.copy_from_slice(&d.to_be_bytes());
        }
    } else if let Some(f) = p.get_mut(v0..v0 + 4) {
        f.copy_from_slice(&(d.min(u64::from(u32::MAX)) as u32).to_be_bytes());
    }
}

fn write_box(w: &mut Writer, kind: &[u8; 4], payload: &[u8]) {
    let b = w.start(kind);
    w.bytes(payload);
    w.end(b);
}

fn write_stbl(w: &mut Writer, stsd: &[u8], samples: &[OutSample], mine: &[usize], offsets: &[u64], large: bool) {
    let stbl = w.start(b"stbl");
    write_box(w, b"stsd", stsd);
    // stts: runs of equal durations.
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for i in mine {
        let d = samples[*i].duration;
        match runs.last_mut() {
            Some((n, dur)) if *dur == d => *n += 1,
            _ => runs.push((1, d)),
        }
    }
    let stts = w.start_full(b"stts", 0, 0);
    w.u32(runs.len() as u32);
    for (n, d) in runs {
        w.u32(n);
        w.u32(d);
    }
    w.end(stts);
    if mine.iter().any(|i| samples[*i].cts != 0) {
        let ctts = w.start_full(b"ctts", 1, 0);
        w.u32(mine.len() as u32);
        for i in mine {
            w.u32(1);
            w.u32(samples[*i].cts as u32);
        }
        w.end(ctts);
    }
    if mine.iter().any(|i| !samples[*i].sync) {
        let syncs: Vec<u32> =
            mine.iter().enumerate().filter(|(_, i)| samples[**i].sync).map(|(k, _)| k as u32 + 1).collect();
        let stss = w.start_full(b"stss", 0, 0);
        w.u32(syncs.len() as u32);
        for k in syncs {
            w.u32(k);
        }
        w.end(stss);
    }
    let stsc = w.start_full(b"stsc", 0, 0);
    w.u32(1);
    w.u32(1);
    w.u32(1);
    w.u32(1);
    w.end(stsc);
    let stsz = w.start_full(b"stsz", 0, 0);
    w.u32(0);
    w.u32(mine.len() as u32);
    for i in mine {
        w.u32(samples[*i].size);
    }
    w.end(stsz);
    if large {
        let co = w.start_full(b"co64", 0, 0);
        w.u32(mine.len() as u32);
        for i in mine {
            w.u64(offsets[*i]);
        }
        w.end(co);
    } else {
        let co = w.start_full(b"stco", 0, 0);
        w.u32(mine.len() as u32);
        for i in mine {
            w.u32(offsets[*i] as u32);
        }
        w.end(co);
    }
    w.end(stbl);
}
