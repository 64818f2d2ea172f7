//! JPEG helpers: the standard Huffman tables (ITU T.81 K.3) and a lossless re-coder to them.
//!
//! RTP/JPEG (RFC 2435) carries the entropy-coded scan and the quantization tables, never Huffman
//! tables: receivers decode with the standard ones. A baseline JPEG coded with other tables (ffmpeg's
//! default `-huffman optimal`, many cameras) is made sendable by [`to_standard_huffman`]: every Huffman
//! symbol is decoded with the image's own tables and written again with the standard code, the
//! coefficient bits after it copied as they are. The coefficients do not change, so the picture a
//! receiver decodes is exactly the sender's. Sans-IO, no panics on any input, and the work is bounded
//! by the input size (each symbol read consumes at least one bit of it).

/// A Huffman table as a DHT segment lists it: `(class << 4 | id, codes per length 1–16, values)`.
pub type HuffmanSpec = (u8, [u8; 16], &'static [u8]);

/// The standard Huffman tables of ITU T.81 K.3 as DHT entries: `(class << 4 | id, counts per length, values)`.
pub const STANDARD_HUFFMAN: [HuffmanSpec; 4] = [
    (0x00, [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    (0x01, [0, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]),
    (0x10, [0, 2, 1, 3, 3, 2, 4, 3, 5, 5, 4, 4, 0, 0, 1, 0x7d], &AC_LUMA_VALUES),
    (0x11, [0, 2, 1, 2, 4, 4, 3, 4, 7, 5, 4, 4, 0, 1, 2, 0x77], &AC_CHROMA_VALUES),
];

const AC_LUMA_VALUES: [u8; 162] = [
    0x01, 0x02, 0x03, 0x00, 0x04, 0x11, 0x05, 0x12, 0x21, 0x31, 0x41, 0x06, 0x13, 0x51, 0x61, 0x07, 0x22, 0x71, 0x14,
    0x32, 0x81, 0x91, 0xa1, 0x08, 0x23, 0x42, 0xb1, 0xc1, 0x15, 0x52, 0xd1, 0xf0, 0x24, 0x33, 0x62, 0x72, 0x82, 0x09,
    0x0a, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a,
    0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64, 0x65,
    0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x83, 0x84, 0x85, 0x86, 0x87, 0x88,
    0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7, 0xa8, 0xa9,
    0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca,
    0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe1, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea,
    0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

const AC_CHROMA_VALUES: [u8; 162] = [
    0x00, 0x01, 0x02, 0x03, 0x11, 0x04, 0x05, 0x21, 0x31, 0x06, 0x12, 0x41, 0x51, 0x07, 0x61, 0x71, 0x13, 0x22, 0x32,
    0x81, 0x08, 0x14, 0x42, 0x91, 0xa1, 0xb1, 0xc1, 0x09, 0x23, 0x33, 0x52, 0xf0, 0x15, 0x62, 0x72, 0xd1, 0x0a, 0x16,
    0x24, 0x34, 0xe1, 0x25, 0xf1, 0x17, 0x18, 0x19, 0x1a, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x35, 0x36, 0x37, 0x38, 0x39,
    0x3a, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x63, 0x64,
    0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x73, 0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x82, 0x83, 0x84, 0x85, 0x86,
    0x87, 0x88, 0x89, 0x8a, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
    0xa8, 0xa9, 0xaa, 0xb2, 0xb3, 0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8,
    0xc9, 0xca, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8, 0xd9, 0xda, 0xe2, 0xe3, 0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9,
    0xea, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa,
];

/// Why an image cannot be re-coded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JpegError {
    #[error("invalid JPEG: {0}")]
    Malformed(&'static str),
    #[error("unsupported JPEG: {0}")]
    Unsupported(&'static str),
}

/// Largest re-coded image; a larger result is refused.
pub const MAX_OUTPUT: usize = 32 << 20;

fn malformed(reason: &'static str) -> JpegError {
    JpegError::Malformed(reason)
}

fn unsupported(reason: &'static str) -> JpegError {
    JpegError::Unsupported(reason)
}

/// Whether a DHT entry is the standard table of its class and id.
pub fn is_standard_table(class_id: u8, counts: &[u8], values: &[u8]) -> bool {
    STANDARD_HUFFMAN.iter().any(|(c, k, v)| *c == class_id && k[..] == *counts && *v == values)
}

/// Re-codes a baseline JPEG (SOF0, one scan) to the standard Huffman tables, losslessly. The result has
/// one DHT with the four standard tables, and a scan that takes the luma tables (id 0) for the first
/// component and the chroma tables (id 1) for the others; every other segment is kept as it was.
/// An image without DHT (Motion-JPEG from many USB cameras) is decoded with the standard tables.
pub fn to_standard_huffman(jpeg: &[u8]) -> Result<Vec<u8>, JpegError> {
    recode(jpeg, &STANDARD_HUFFMAN)
}

/// One component of the frame header.
#[derive(Clone, Copy)]
struct Component {
    id: u8,
    h: u8,
    v: u8,
}

/// [`to_standard_huffman`] with other output tables (`tables`: DC 0, DC 1, AC 0, AC 1 in any order).
pub(crate) fn recode(jpeg: &[u8], tables: &[HuffmanSpec; 4]) -> Result<Vec<u8>, JpegError> {
    if !jpeg.starts_with(&[0xff, 0xd8]) {
        return Err(malformed("no SOI"));
    }
    let mut out = Vec::with_capacity(jpeg.len() + 512);
    out.extend_from_slice(&[0xff, 0xd8]);
    // Decoding tables by class (0 DC, 1 AC) and id.
    let mut decoders: [[Option<Box<Decoder>>; 4]; 2] = Default::default();
    let mut frame: Option<(u16, u16, Vec<Component>)> = None;
    let mut restart_interval = 0u16;
    let mut pos = 2;
    loop {
        while jpeg.get(pos) == Some(&0xff) && jpeg.get(pos + 1) == Some(&0xff) {
            pos += 1;
        }
        let (Some(&0xff), Some(&marker)) = (jpeg.get(pos), jpeg.get(pos + 1)) else {
            return Err(malformed("marker expected"));
        };
        pos += 2;
        match marker {
            0x01 | 0xd0..=0xd7 => continue,
            0xd8 => return Err(malformed("SOI inside the image")),
            0xd9 => return Err(malformed("EOI before SOS")),
            _ => {}
        }
        let len = match jpeg.get(pos..pos + 2) {
            Some(&[a, b]) => usize::from(u16::from_be_bytes([a, b])),
            _ => return Err(malformed("truncated segment")),
        };
        if len < 2 {
            return Err(malformed("segment length"));
        }
        let seg = jpeg.get(pos + 2..pos + len).ok_or(malformed("truncated segment"))?;
        let whole = &jpeg[pos - 2..pos + len];
        pos += len;
        match marker {
            0xc4 => {
                let mut rest = seg;
                while let Some((&class_id, tail)) = rest.split_first() {
                    let counts: &[u8; 16] = tail.get(..16).and_then(|c| c.try_into().ok()).ok_or(malformed("DHT"))?;
                    let n: usize = counts.iter().map(|&c| usize::from(c)).sum();
                    let values = tail.get(16..16 + n).ok_or(malformed("DHT"))?;
                    let (class, id) = (usize::from(class_id >> 4), usize::from(class_id & 0x0f));
                    if class > 1 || id > 3 {
                        return Err(malformed("DHT class or id"));
                    }
                    decoders[class][id] = Some(Box::new(Decoder::new(counts, values)?));
                    rest = &tail[16 + n..];
                }
                // Not copied: the output has its own tables.
            }
            0xc0 => {
                let &[precision, h0, h1, w0, w1, n, ref comps @ ..] = seg else {
                    return Err(malformed("SOF0"));
                };
                if precision != 8 {
                    return Err(unsupported("not 8-bit"));
                }
                let (height, width) = (u16::from_be_bytes([h0, h1]), u16::from_be_bytes([w0, w1]));
                if height == 0 || width == 0 {
                    return Err(unsupported("zero width or height (DNL)"));
                }
                if !(1..=4).contains(&n) || comps.len() < 3 * usize::from(n) {
                    return Err(malformed("SOF0 components"));
                }
                let mut components = Vec::with_capacity(usize::from(n));
                for c in comps.chunks_exact(3).take(usize::from(n)) {
                    let (h, v) = (c[1] >> 4, c[1] & 0x0f);
                    if !(1..=4).contains(&h) || !(1..=4).contains(&v) {
                        return Err(malformed("sampling factors"));
                    }
                    components.push(Component { id: c[0], h, v });
                }
                if frame.is_some() {
                    return Err(malformed("two frame headers"));
                }
                frame = Some((width, height, components));
                out.extend_from_slice(whole);
            }
            0xc1..=0xcf => return Err(unsupported("not baseline")),
            0xdd => {
                let &[a, b, ..] = seg else { return Err(malformed("DRI")) };
                restart_interval = u16::from_be_bytes([a, b]);
                out.extend_from_slice(whole);
            }
            0xda => {
                let (width, height, components) = frame.ok_or(malformed("SOS before SOF0"))?;
                let scan = Scan::parse(seg, &components, width, height)?;
                write_dht(tables, &mut out);
                scan.write_header(&mut out);
                let data = &jpeg[pos..];
                let used = scan.recode(data, &decoders, tables, restart_interval, &mut out)?;
                if let Some(m) = next_marker(data, used) {
                    if m != 0xd9 {
                        return Err(unsupported("more than one scan"));
                    }
                }
                out.extend_from_slice(&[0xff, 0xd9]);
                return Ok(out);
            }
            _ => out.extend_from_slice(whole), // DQT, APPn, COM...
        }
    }
}

/// The first marker (other than RSTn) in entropy-coded `data` from `from`.
fn next_marker(data: &[u8], from: usize) -> Option<u8> {
    let mut i = from;
    while i + 1 < data.len() {
        if data[i] == 0xff {
            match data[i + 1] {
                0x00 | 0xd0..=0xd7 => i += 2,
                0xff => i += 1,
                m => return Some(m),
            }
        } else {
            i += 1;
        }
    }
    None
}

fn write_dht(tables: &[HuffmanSpec; 4], out: &mut Vec<u8>) {
    let len: usize = 2 + tables.iter().map(|(_, _, v)| 17 + v.len()).sum::<usize>();
    out.extend_from_slice(&[0xff, 0xc4]);
    out.extend_from_slice(&(len as u16).to_be_bytes());
    for (class_id, counts, values) in tables {
        out.push(*class_id);
        out.extend_from_slice(counts);
        out.extend_from_slice(values);
    }
}

/// One component of the scan: its sampling and its input tables.
struct ScanComponent {
    id: u8,
    h: u8,
    v: u8,
    dc: u8,
    ac: u8,
    /// Output table id: 0 (luma) for the frame's first component, else 1 (chroma).
    out: u8,
}

struct Scan {
    components: Vec<ScanComponent>,
    /// MCUs in the scan, and blocks of each scan component per MCU.
    mcus: u64,
}

impl Scan {
    fn parse(seg: &[u8], frame: &[Component], width: u16, height: u16) -> Result<Scan, JpegError> {
        let (&n, rest) = seg.split_first().ok_or(malformed("SOS"))?;
        let n = usize::from(n);
        if n == 0 || n > frame.len() || rest.len() != 2 * n + 3 {
            return Err(malformed("SOS"));
        }
        let (selectors, spectral) = rest.split_at(2 * n);
        if spectral != [0, 63, 0] {
            return Err(unsupported("not a sequential scan"));
        }
        let mut components: Vec<ScanComponent> = Vec::with_capacity(n);
        for s in selectors.chunks_exact(2) {
            let index = frame.iter().position(|c| c.id == s[0]).ok_or(malformed("SOS component"))?;
            if components.iter().any(|c| c.id == s[0]) {
                return Err(malformed("SOS component twice"));
            }
            let c = frame[index];
            let (dc, ac) = (s[1] >> 4, s[1] & 0x0f);
            if dc > 3 || ac > 3 {
                return Err(malformed("SOS table"));
            }
            components.push(ScanComponent { id: c.id, h: c.h, v: c.v, dc, ac, out: u8::from(index > 0) });
        }
        let (hmax, vmax) = frame.iter().fold((1u64, 1u64), |(h, v), c| (h.max(c.h.into()), v.max(c.v.into())));
        let (w, h) = (u64::from(width), u64::from(height));
        let mcus = if n == 1 {
            // Non-interleaved: one block per MCU, over the component's own size.
            let c = &mut components[0];
            let cw = (w * u64::from(c.h)).div_ceil(hmax);
            let ch = (h * u64::from(c.v)).div_ceil(vmax);
            (c.h, c.v) = (1, 1);
            cw.div_ceil(8) * ch.div_ceil(8)
        } else {
            let blocks: u64 = components.iter().map(|c| u64::from(c.h) * u64::from(c.v)).sum();
            if blocks > 10 {
                return Err(malformed("more than 10 blocks per MCU"));
            }
            w.div_ceil(8 * hmax) * h.div_ceil(8 * vmax)
        };
        Ok(Scan { components, mcus })
    }

    fn write_header(&self, out: &mut Vec<u8>) {
        let n = self.components.len();
        out.extend_from_slice(&[0xff, 0xda]);
        out.extend_from_slice(&(6 + 2 * n as u16).to_be_bytes());
        out.push(n as u8);
        for c in &self.components {
            out.extend_from_slice(&[c.id, (c.out << 4) | c.out]);
        }
        out.extend_from_slice(&[0, 63, 0]);
    }

    /// Re-codes the entropy-coded `data` into `out`; returns how much of `data` it read.
    fn recode(
        &self,
        data: &[u8],
        decoders: &[[Option<Box<Decoder>>; 4]; 2],
        tables: &[HuffmanSpec; 4],
        restart_interval: u16,
        out: &mut Vec<u8>,
    ) -> Result<usize, JpegError> {
        // Input tables per scan component (the standard ones where the image has none), output tables.
        let mut dec = Vec::with_capacity(self.components.len());
        for c in &self.components {
            let pick = |class: usize, id: u8| -> Result<Decoder, JpegError> {
                match &decoders[class][usize::from(id)] {
                    Some(d) => Ok((**d).clone()),
                    None if id < 2 => {
                        let class_id = ((class as u8) << 4) | id;
                        let (_, counts, values) = STANDARD_HUFFMAN
                            .iter()
                            .find(|(c, _, _)| *c == class_id)
                            .ok_or(malformed("missing Huffman table"))?;
                        Decoder::new(counts, values)
                    }
                    None => Err(malformed("missing Huffman table")),
                }
            };
            dec.push((pick(0, c.dc)?, pick(1, c.ac)?));
        }
        let encoder = |class_id: u8| -> Result<Encoder, JpegError> {
            let (_, counts, values) =
                tables.iter().find(|(c, _, _)| *c == class_id).ok_or(malformed("output table missing"))?;
            Encoder::new(counts, values)
        };
        let enc = [[encoder(0x00)?, encoder(0x01)?], [encoder(0x10)?, encoder(0x11)?]];
        let mut r = BitReader { data, pos: 0, acc: 0, bits: 0, marker: false };
        let mut w = BitWriter { out, acc: 0, bits: 0 };
        let start = w.out.len();
        let mut restarts = 0u8;
        for mcu in 0..self.mcus {
            if restart_interval > 0 && mcu > 0 && mcu % u64::from(restart_interval) == 0 {
                r.restart()?;
                w.align();
                w.out.extend_from_slice(&[0xff, 0xd0 + restarts]);
                restarts = (restarts + 1) % 8;
            }
            for (c, (dc, ac)) in self.components.iter().zip(&dec) {
                let out = usize::from(c.out);
                for _ in 0..u32::from(c.h) * u32::from(c.v) {
                    recode_block(&mut r, &mut w, dc, ac, &enc[0][out], &enc[1][out])?;
                }
            }
            if w.out.len() - start > MAX_OUTPUT {
                return Err(unsupported("re-coded image too large"));
            }
        }
        w.align();
        Ok(r.pos)
    }
}

/// One 8x8 block: the DC difference and the AC run/size symbols, each followed by its raw bits.
fn recode_block(
    r: &mut BitReader,
    w: &mut BitWriter,
    dc: &Decoder,
    ac: &Decoder,
    dc_out: &Encoder,
    ac_out: &Encoder,
) -> Result<(), JpegError> {
    let size = dc.decode(r)?;
    if size > 11 {
        return Err(malformed("DC difference over 11 bits"));
    }
    dc_out.put(w, size)?;
    w.put(r.bits(u32::from(size))?, u32::from(size));
    let mut k = 1;
    while k < 64 {
        let rs = ac.decode(r)?;
        ac_out.put(w, rs)?;
        let (run, size) = (rs >> 4, rs & 0x0f);
        if size == 0 {
            if run != 15 {
                break; // EOB
            }
            k += 16; // ZRL
            continue;
        }
        k += usize::from(run);
        if k > 63 {
            return Err(malformed("AC coefficient past the block"));
        }
        w.put(r.bits(u32::from(size))?, u32::from(size));
        k += 1;
    }
    Ok(())
}

/// Codes up to this long are decoded with one table look-up.
const LOOKUP_BITS: u32 = 9;

/// A Huffman decoding table (ITU T.81 F.2.2.3), with a look-up table for the short codes.
#[derive(Clone)]
struct Decoder {
    /// By the next [`LOOKUP_BITS`] bits: `length << 8 | value`, 0 when the code is longer.
    lookup: Vec<u16>,
    /// By length: the largest code (-1: none), the smallest, and the index of its value.
    maxcode: [i32; 17],
    mincode: [i32; 17],
    valptr: [usize; 17],
    values: Vec<u8>,
}

impl Decoder {
    fn new(counts: &[u8; 16], values: &[u8]) -> Result<Decoder, JpegError> {
        let mut d = Decoder {
            lookup: vec![0; 1 << LOOKUP_BITS],
            maxcode: [-1; 17],
            mincode: [0; 17],
            valptr: [0; 17],
            values: values.to_vec(),
        };
        let mut code = 0u32;
        let mut k = 0usize;
        for len in 1..=16u32 {
            let n = u32::from(counts[len as usize - 1]);
            if n > 0 {
                if code + n > 1 << len {
                    return Err(malformed("Huffman table with too many codes"));
                }
                d.valptr[len as usize] = k;
                d.mincode[len as usize] = code as i32;
                d.maxcode[len as usize] = (code + n - 1) as i32;
                if len <= LOOKUP_BITS {
                    for i in 0..n {
                        let value = *values.get(k + i as usize).ok_or(malformed("DHT"))?;
                        let first = ((code + i) << (LOOKUP_BITS - len)) as usize;
                        let entry = ((len as u16) << 8) | u16::from(value);
                        d.lookup[first..first + (1 << (LOOKUP_BITS - len))].fill(entry);
                    }
                }
                code += n;
                k += n as usize;
            }
            code <<= 1;
        }
        if k > values.len() {
            return Err(malformed("DHT"));
        }
        Ok(d)
    }

    fn decode(&self, r: &mut BitReader) -> Result<u8, JpegError> {
        let peek = r.peek16();
        let entry = self.lookup[(peek >> (16 - LOOKUP_BITS)) as usize];
        if entry != 0 {
            r.consume(u32::from(entry >> 8))?;
            return Ok(entry as u8);
        }
        for len in LOOKUP_BITS + 1..=16 {
            let code = (peek >> (16 - len)) as i32;
            let l = len as usize;
            if self.maxcode[l] >= 0 && code >= self.mincode[l] && code <= self.maxcode[l] {
                let value = *self
                    .values
                    .get(self.valptr[l] + (code - self.mincode[l]) as usize)
                    .ok_or(malformed("bad Huffman code"))?;
                r.consume(len)?;
                return Ok(value);
            }
        }
        Err(malformed("bad Huffman code"))
    }
}

/// A Huffman encoding table: code and length by symbol (length 0: no code).
struct Encoder {
    code: [u16; 256],
    size: [u8; 256],
}

impl Encoder {
    fn new(counts: &[u8; 16], values: &[u8]) -> Result<Encoder, JpegError> {
        let mut e = Encoder { code: [0; 256], size: [0; 256] };
        let mut code = 0u32;
        let mut k = 0usize;
        for len in 1..=16u32 {
            for _ in 0..counts[len as usize - 1] {
                let value = usize::from(*values.get(k).ok_or(malformed("output table"))?);
                if code >= 1 << len {
                    return Err(malformed("output table"));
                }
                e.code[value] = code as u16;
                e.size[value] = len as u8;
                code += 1;
                k += 1;
            }
            code <<= 1;
        }
        Ok(e)
    }

    fn put(&self, w: &mut BitWriter, symbol: u8) -> Result<(), JpegError> {
        match self.size[usize::from(symbol)] {
            0 => Err(unsupported("symbol without a standard Huffman code")),
            len => {
                w.put(u32::from(self.code[usize::from(symbol)]), u32::from(len));
                Ok(())
            }
        }
    }
}

/// Reads entropy-coded data: unstuffs `FF 00`, stops at a marker.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
    /// The low `bits` bits are the next ones.
    acc: u64,
    bits: u32,
    /// A marker is at `pos`: no more data before it.
    marker: bool,
}

impl BitReader<'_> {
    fn fill(&mut self) {
        while self.bits <= 56 && !self.marker {
            let Some(&b) = self.data.get(self.pos) else { return };
            if b == 0xff {
                match self.data.get(self.pos + 1) {
                    Some(0x00) => self.pos += 2,
                    Some(0xff) => {
                        self.pos += 1; // fill byte
                        continue;
                    }
                    _ => {
                        self.marker = true;
                        return;
                    }
                }
            } else {
                self.pos += 1;
            }
            self.acc = (self.acc << 8) | u64::from(b);
            self.bits += 8;
        }
    }

    /// The next 16 bits, padded with ones past the end (a code read from the padding fails in
    /// [`BitReader::consume`]).
    fn peek16(&mut self) -> u32 {
        self.fill();
        if self.bits >= 16 {
            ((self.acc >> (self.bits - 16)) & 0xffff) as u32
        } else {
            let have = (self.acc & ((1u64 << self.bits) - 1)) << (16 - self.bits);
            (have | ((1u64 << (16 - self.bits)) - 1)) as u32
        }
    }

    fn consume(&mut self, n: u32) -> Result<(), JpegError> {
        if n > self.bits {
            return Err(malformed("scan data ends early"));
        }
        self.bits -= n;
        Ok(())
    }

    fn bits(&mut self, n: u32) -> Result<u32, JpegError> {
        if n == 0 {
            return Ok(0);
        }
        self.fill();
        if n > self.bits {
            return Err(malformed("scan data ends early"));
        }
        self.bits -= n;
        Ok(((self.acc >> self.bits) & ((1u64 << n) - 1)) as u32)
    }

    /// Skips the padding and the RSTn marker that ends a restart interval.
    fn restart(&mut self) -> Result<(), JpegError> {
        self.acc = 0;
        self.bits = 0;
        self.marker = false;
        let mut i = self.pos;
        while i + 1 < self.data.len() {
            if self.data[i] != 0xff {
                i += 1;
                continue;
            }
            match self.data[i + 1] {
                0x00 => i += 2,
                0xff => i += 1,
                0xd0..=0xd7 => {
                    self.pos = i + 2;
                    return Ok(());
                }
                _ => return Err(malformed("restart marker missing")),
            }
        }
        Err(malformed("restart marker missing"))
    }
}

/// Writes entropy-coded data, stuffing `FF 00`.
struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter<'_> {
    /// `len` ≤ 16.
    fn put(&mut self, value: u32, len: u32) {
        self.acc = (self.acc << len) | u64::from(value & ((1u32 << len) - 1));
        self.bits += len;
        while self.bits >= 8 {
            self.bits -= 8;
            let b = (self.acc >> self.bits) as u8;
            self.out.push(b);
            if b == 0xff {
                self.out.push(0);
            }
        }
    }

    /// Pads the last byte with ones.
    fn align(&mut self) {
        if self.bits > 0 {
            let pad = 8 - self.bits;
            self.put((1 << pad) - 1, pad);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Made by ffmpeg 5.1 from one `testsrc2` frame: `-c:v mjpeg -q:v 4 -pix_fmt yuvj4xxp -huffman
    // optimal|default` (the same coefficients, coded with optimal or standard tables), and with
    // `-threads 2 -slices 3` (standard tables, restart markers).
    const OPTIMAL_420: &[u8] = include_bytes!("../testdata/420_optimal.jpg");
    const DEFAULT_420: &[u8] = include_bytes!("../testdata/420_default.jpg");
    const OPTIMAL_422: &[u8] = include_bytes!("../testdata/422_optimal.jpg");
    const DEFAULT_422: &[u8] = include_bytes!("../testdata/422_default.jpg");
    const OPTIMAL_444: &[u8] = include_bytes!("../testdata/444_optimal.jpg");
    const DEFAULT_444: &[u8] = include_bytes!("../testdata/444_default.jpg");
    const RESTART_420: &[u8] = include_bytes!("../testdata/420_restart.jpg");

    /// Every DHT entry of an image.
    fn dht_entries(jpeg: &[u8]) -> Vec<(u8, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let mut pos = 2;
        while pos + 4 <= jpeg.len() && jpeg[pos] == 0xff && jpeg[pos + 1] != 0xda {
            let len = usize::from(u16::from_be_bytes([jpeg[pos + 2], jpeg[pos + 3]]));
            if jpeg[pos + 1] == 0xc4 {
                let mut rest = &jpeg[pos + 4..pos + 2 + len];
                while !rest.is_empty() {
                    let n: usize = rest[1..17].iter().map(|&c| usize::from(c)).sum();
                    out.push((rest[0], rest[1..17].to_vec(), rest[17..17 + n].to_vec()));
                    rest = &rest[17 + n..];
                }
            }
            pos += 2 + len;
        }
        out
    }

    /// The SOS segment and the entropy-coded data after it, up to EOI.
    fn scan(jpeg: &[u8]) -> &[u8] {
        let sos = jpeg.windows(2).position(|w| w == [0xff, 0xda]).unwrap();
        let end = jpeg.windows(2).rposition(|w| w == [0xff, 0xd9]).unwrap();
        &jpeg[sos..end]
    }

    fn all_standard(jpeg: &[u8]) -> bool {
        let entries = dht_entries(jpeg);
        entries.len() == 4 && entries.iter().all(|(c, k, v)| is_standard_table(*c, k, v))
    }

    #[test]
    fn optimal_tables_recode_to_the_standard_encoding_of_the_same_picture() {
        for (optimal, standard) in [(OPTIMAL_420, DEFAULT_420), (OPTIMAL_422, DEFAULT_422), (OPTIMAL_444, DEFAULT_444)]
        {
            assert!(!all_standard(optimal), "the fixture uses ffmpeg's optimal tables");
            assert!(all_standard(standard));
            let recoded = to_standard_huffman(optimal).unwrap();
            assert!(all_standard(&recoded));
            // Bit for bit what ffmpeg's encoder writes with the standard tables: same coefficients.
            assert_eq!(scan(&recoded), scan(standard));
            assert!(recoded.starts_with(&[0xff, 0xd8]) && recoded.ends_with(&[0xff, 0xd9]));
            // Already standard: unchanged scan; and re-coding is idempotent.
            assert_eq!(scan(&to_standard_huffman(standard).unwrap()), scan(standard));
            assert_eq!(to_standard_huffman(&recoded).unwrap(), recoded);
        }
    }

    /// Valid tables unlike the standard ones: every DC symbol 4 bits long, every AC symbol 8 bits, in
    /// reverse order.
    fn flat_tables() -> [HuffmanSpec; 4] {
        fn leak(v: Vec<u8>) -> &'static [u8] {
            Box::leak(v.into_boxed_slice())
        }
        let mut dc = [0u8; 16];
        dc[3] = 12;
        let mut ac = [0u8; 16];
        ac[7] = 162;
        let dc_values = leak((0..12).rev().collect());
        let mut luma: Vec<u8> = STANDARD_HUFFMAN[2].2.to_vec();
        luma.reverse();
        let mut chroma: Vec<u8> = STANDARD_HUFFMAN[3].2.to_vec();
        chroma.reverse();
        [(0x00, dc, dc_values), (0x01, dc, dc_values), (0x10, ac, leak(luma)), (0x11, ac, leak(chroma))]
    }

    #[test]
    fn restart_intervals_survive_a_round_trip_through_other_tables() {
        assert!(RESTART_420.windows(2).any(|w| w == [0xff, 0xdd]), "the fixture has restart markers");
        let rst = |j: &[u8]| j.windows(2).filter(|w| w[0] == 0xff && (0xd0..=0xd7).contains(&w[1])).count();
        let flat = recode(RESTART_420, &flat_tables()).unwrap();
        assert!(!all_standard(&flat));
        assert_ne!(scan(&flat), scan(RESTART_420));
        assert_eq!(rst(&flat), rst(RESTART_420));
        assert!(rst(&flat) > 0);
        let back = to_standard_huffman(&flat).unwrap();
        assert_eq!(scan(&back), scan(RESTART_420));
    }

    #[test]
    fn images_without_tables_use_the_standard_ones() {
        // Motion-JPEG without DHT (the AVI1 convention): drop the DHT segment of a standard image.
        let dht = DEFAULT_420.windows(2).position(|w| w == [0xff, 0xc4]).unwrap();
        let len = usize::from(u16::from_be_bytes([DEFAULT_420[dht + 2], DEFAULT_420[dht + 3]]));
        let mut bare = DEFAULT_420[..dht].to_vec();
        bare.extend_from_slice(&DEFAULT_420[dht + 2 + len..]);
        let recoded = to_standard_huffman(&bare).unwrap();
        assert_eq!(scan(&recoded), scan(DEFAULT_420));
        assert!(all_standard(&recoded));
    }

    #[test]
    fn what_cannot_be_recoded_is_an_error() {
        let sof = OPTIMAL_420.windows(2).position(|w| w == [0xff, 0xc0]).unwrap();
        let mut progressive = OPTIMAL_420.to_vec();
        progressive[sof + 1] = 0xc2;
        assert_eq!(to_standard_huffman(&progressive), Err(JpegError::Unsupported("not baseline")));
        let mut twelve_bit = OPTIMAL_420.to_vec();
        twelve_bit[sof + 4] = 12;
        assert!(matches!(to_standard_huffman(&twelve_bit), Err(JpegError::Unsupported(_))));
        assert!(to_standard_huffman(b"not a jpeg").is_err());
        // A scan cut short.
        let cut = OPTIMAL_420.len() / 2;
        assert!(matches!(to_standard_huffman(&OPTIMAL_420[..cut]), Err(JpegError::Malformed(_))));
    }

    #[test]
    fn truncated_and_corrupted_images_never_panic() {
        for n in 0..OPTIMAL_420.len() {
            let _ = to_standard_huffman(&OPTIMAL_420[..n]);
        }
        // Flip bytes all over the image (headers and scan), one at a time.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..3000 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let mut v = OPTIMAL_422.to_vec();
            let i = (seed % v.len() as u64) as usize;
            v[i] = (seed >> 32) as u8;
            if let Ok(out) = to_standard_huffman(&v) {
                assert!(out.len() <= MAX_OUTPUT + 4096);
            }
        }
    }
}
