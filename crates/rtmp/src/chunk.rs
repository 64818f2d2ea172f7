//! The RTMP chunk stream: splitting messages into chunks ([`ChunkWriter`]) and reassembling them
//! ([`ChunkReader`]): basic header formats 0-3 with one-, two- and three-byte chunk stream ids, extended
//! timestamps (also on type-3 continuation chunks, as ffmpeg, librtmp and OBS write them), per-chunk-stream
//! header state, Set Chunk Size and Abort. Memory is bounded: message length, the number of chunk streams
//! and the bytes held by partial messages all have limits, and going past one is an error.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::HashMap;

/// The chunk size both sides start with.
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest message body we accept (the field allows 16 MiB; an 8 MiB keyframe is already absurd).
pub const MAX_MESSAGE_LEN: u32 = 8 * 1024 * 1024;
/// Largest chunk size a peer may set (the spec allows 2^31 - 1; above a message it changes nothing).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Chunk streams with state at once (clients use a handful).
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Bytes held in partial messages over all chunk streams.
pub const MAX_PARTIAL_BYTES: usize = 32 * 1024 * 1024;

/// One reassembled message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub chunk_stream: u32,
    /// Milliseconds (RTMP time wraps at 2^32).
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    #[error("RTMP chunk stream {0}: a type-{1} chunk without an earlier header on this chunk stream")]
    NoPreviousHeader(u32, u8),
    #[error("RTMP message of {0} bytes is larger than the limit of {MAX_MESSAGE_LEN}")]
    MessageTooLarge(u32),
    #[error("RTMP: more than {MAX_CHUNK_STREAMS} chunk streams")]
    TooManyChunkStreams,
    #[error("RTMP: partial messages hold more than {MAX_PARTIAL_BYTES} bytes")]
    TooMuchBuffered,
    #[error("RTMP: invalid chunk size {0}")]
    BadChunkSize(u32),
    #[error("RTMP chunk stream {0}: message header changed in the middle of a message")]
    HeaderMidMessage(u32),
    /// A protocol control message too short for its value.
    #[error("RTMP: truncated {0}")]
    Truncated(&'static str),
}

/// The receiving half both session machines share: messages read from the peer's bytes, with the
/// protocol control messages that act on that reading (Set Chunk Size, Abort, Window Acknowledgement
/// Size) handled here, and the Acknowledgements the peer's window asks for.
#[derive(Debug, Default)]
pub struct Inbound {
    pub reader: ChunkReader,
    /// Bytes received since the handshake (what Acknowledgements count).
    pub received: u64,
    acked: u64,
    /// The peer's Window Acknowledgement Size; 0 until it sends one.
    peer_window: u32,
}

impl Inbound {
    /// The next message of `buf` that is not protocol control; `None` when more bytes are needed (then
    /// an Acknowledgement is written to `out` if the peer's window is reached). Bounded: more than a
    /// message's worth of unread bytes is an error.
    pub fn next(
        &mut self,
        buf: &mut BytesMut,
        writer: &ChunkWriter,
        out: &mut BytesMut,
    ) -> Result<Option<Message>, ChunkError> {
        use crate::message as msg;
        loop {
            let Some(m) = self.reader.read(buf)? else {
                if buf.len() > MAX_MESSAGE_LEN as usize + 64 {
                    return Err(ChunkError::TooMuchBuffered);
                }
                if self.peer_window > 0 && self.received - self.acked >= u64::from(self.peer_window) {
                    self.acked = self.received;
                    msg::write_control_u32(writer, out, msg::ACKNOWLEDGEMENT, self.received as u32);
                }
                return Ok(None);
            };
            let be32 = |what| {
                m.payload
                    .get(..4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                    .ok_or(ChunkError::Truncated(what))
            };
            match m.type_id {
                msg::SET_CHUNK_SIZE => self.reader.set_chunk_size(be32("Set Chunk Size")?)?,
                msg::ABORT => self.reader.abort(be32("Abort")?),
                msg::WINDOW_ACK_SIZE => self.peer_window = be32("Window Ack Size")?,
                _ => return Ok(Some(m)),
            }
        }
    }
}

#[derive(Debug, Default)]
struct StreamState {
    timestamp: u32,
    /// The last timestamp field (a delta after type 1/2, the absolute time after type 0): what a type-3
    /// chunk that starts a new message adds.
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last header of this chunk stream had an extended timestamp.
    extended: bool,
    has_header: bool,
    partial: Option<BytesMut>,
}

/// Reassembles messages from the incoming byte stream (after the handshake).
#[derive(Debug)]
pub struct ChunkReader {
    chunk_size: u32,
    streams: HashMap<u32, StreamState>,
    partial_bytes: usize,
}

impl Default for ChunkReader {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkReader {
    pub fn new() -> Self {
        ChunkReader { chunk_size: DEFAULT_CHUNK_SIZE, streams: HashMap::new(), partial_bytes: 0 }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Bytes held in unfinished messages.
    pub fn partial_bytes(&self) -> usize {
        self.partial_bytes
    }

    /// Applies the peer's Set Chunk Size.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::BadChunkSize(size));
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Applies the peer's Abort Message: drops the partial message of `chunk_stream`.
    pub fn abort(&mut self, chunk_stream: u32) {
        if let Some(s) = self.streams.get_mut(&chunk_stream) {
            if let Some(p) = s.partial.take() {
                self.partial_bytes -= p.len();
            }
        }
    }

    /// Reads chunks from the front of `buf` until one completes a message. Returns `Ok(None)` when `buf`
    /// holds no complete chunk; consumed bytes are removed from `buf`, a partial chunk is left in it.
    pub fn read(&mut self, buf: &mut BytesMut) -> Result<Option<Message>, ChunkError> {
        loop {
            let Some(header) = self.parse_header(buf)? else { return Ok(None) };
            if let Some(m) = self.take_chunk(buf, header)? {
                return Ok(Some(m));
            }
        }
    }

    /// Parses one chunk header without consuming; `None` when the header or the chunk's data is not all
    /// in `buf` yet.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, ChunkError> {
        let Some(&b0) = buf.first() else { return Ok(None) };
        let fmt = b0 >> 6;
        let (csid, mut pos) = match b0 & 0x3f {
            0 => match buf.get(1) {
                Some(&b) => (64 + u32::from(b), 2),
                None => return Ok(None),
            },
            1 => match (buf.get(1), buf.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + u32::from(b1) + 256 * u32::from(b2), 3),
                _ => return Ok(None),
            },
            n => (u32::from(n), 1),
        };
        let prev = self.streams.get(&csid).filter(|s| s.has_header);
        if fmt != 0 && prev.is_none() {
            return Err(ChunkError::NoPreviousHeader(csid, fmt));
        }
        if prev.is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(ChunkError::TooManyChunkStreams);
        }
        let mlen = [11, 7, 3, 0][usize::from(fmt)];
        let Some(mh) = buf.get(pos..pos + mlen) else { return Ok(None) };
        pos += mlen;
        let be24 = |b: &[u8]| u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        let mut h = Header { fmt, csid, ts_field: 0, length: 0, type_id: 0, stream_id: 0, extended: false, len: 0 };
        if let Some(p) = prev {
            h.length = p.length;
            h.type_id = p.type_id;
            h.stream_id = p.stream_id;
            h.ts_field = p.delta;
            h.extended = p.extended;
        }
        if fmt <= 2 {
            h.ts_field = be24(&mh[0..3]);
            h.extended = h.ts_field == 0xFF_FFFF;
        }
        if fmt <= 1 {
            h.length = be24(&mh[3..6]);
            h.type_id = mh[6];
            if h.length > MAX_MESSAGE_LEN {
                return Err(ChunkError::MessageTooLarge(h.length));
            }
        }
        if fmt == 0 {
            h.stream_id = u32::from_le_bytes([mh[7], mh[8], mh[9], mh[10]]);
        }
        if h.extended {
            let Some(e) = buf.get(pos..pos + 4) else { return Ok(None) };
            h.ts_field = u32::from_be_bytes([e[0], e[1], e[2], e[3]]);
            pos += 4;
        }
        let have = prev.and_then(|p| p.partial.as_ref()).map_or(0, |p| p.len());
        if have > 0 && fmt != 3 {
            // A new header while a message is unfinished: only legal if it repeats the same length/type
            // (some encoders do); otherwise the stream is corrupt.
            let p = prev.expect("have > 0 implies a previous state");
            if h.length != p.length || h.type_id != p.type_id {
                return Err(ChunkError::HeaderMidMessage(csid));
            }
        }
        let data = (h.length as usize - have.min(h.length as usize)).min(self.chunk_size as usize);
        if buf.len() < pos + data {
            return Ok(None);
        }
        h.len = pos;
        Ok(Some(h))
    }

    fn take_chunk(&mut self, buf: &mut BytesMut, h: Header) -> Result<Option<Message>, ChunkError> {
        let chunk_size = self.chunk_size as usize;
        let st = self.streams.entry(h.csid).or_default();
        let continuing = st.partial.as_ref().is_some_and(|p| !p.is_empty());
        if !continuing {
            // A new message: its timestamp.
            st.timestamp = if h.fmt == 0 { h.ts_field } else { st.timestamp.wrapping_add(h.ts_field) };
        }
        st.delta = h.ts_field;
        st.length = h.length;
        st.type_id = h.type_id;
        st.stream_id = h.stream_id;
        st.extended = h.extended;
        st.has_header = true;
        buf.advance(h.len);
        let have = st.partial.as_ref().map_or(0, |p| p.len());
        let n = (h.length as usize - have).min(chunk_size);
        if have + n == h.length as usize && have == 0 {
            // The whole message in one chunk: no copy into a partial buffer.
            let payload = buf.split_to(n).freeze();
            return Ok(Some(Message {
                chunk_stream: h.csid,
                timestamp: st.timestamp,
                type_id: st.type_id,
                stream_id: st.stream_id,
                payload,
            }));
        }
        if self.partial_bytes + n > MAX_PARTIAL_BYTES {
            return Err(ChunkError::TooMuchBuffered);
        }
        let p = st.partial.get_or_insert_with(BytesMut::new);
        if p.is_empty() {
            // Grows with the data; the reservation is small so 64 idle partial messages cost little.
            p.reserve((h.length as usize).min(64 * 1024));
        }
        p.extend_from_slice(&buf[..n]);
        buf.advance(n);
        self.partial_bytes += n;
        if p.len() < h.length as usize {
            return Ok(None);
        }
        let payload = st.partial.take().map(BytesMut::freeze).unwrap_or_default();
        self.partial_bytes -= payload.len();
        Ok(Some(Message {
            chunk_stream: h.csid,
            timestamp: st.timestamp,
            type_id: st.type_id,
            stream_id: st.stream_id,
            payload,
        }))
    }
}

#[derive(Debug)]
struct Header {
    fmt: u8,
    csid: u32,
    ts_field: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    extended: bool,
    /// Bytes of basic + message header + extended timestamp.
    len: usize,
}

/// Splits outgoing messages into chunks of our chunk size. Every message starts with a type-0 header
/// (absolute time, no state to get wrong); continuation chunks are type 3 and repeat the extended
/// timestamp when there is one.
#[derive(Debug)]
pub struct ChunkWriter {
    chunk_size: u32,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    pub fn new() -> Self {
        ChunkWriter { chunk_size: DEFAULT_CHUNK_SIZE }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Changes our chunk size; the caller sends Set Chunk Size (written with the old size) first.
    pub fn set_chunk_size(&mut self, size: u32) {
        self.chunk_size = size.clamp(1, MAX_CHUNK_SIZE);
    }

    /// Appends `payload` as one message on chunk stream `csid` (2..=65599).
    pub fn write(&self, out: &mut BytesMut, csid: u32, timestamp: u32, type_id: u8, stream_id: u32, payload: &[u8]) {
        let extended = timestamp >= 0xFF_FFFF;
        let ts_field = if extended { 0xFF_FFFF } else { timestamp };
        let len = payload.len().min(0xFF_FFFF);
        let payload = &payload[..len];
        let mut first = true;
        let mut chunks = payload.chunks(self.chunk_size as usize);
        loop {
            let chunk = chunks.next();
            if chunk.is_none() && !first {
                break;
            }
            put_basic_header(out, if first { 0 } else { 3 }, csid);
            if first {
                out.put_uint(u64::from(ts_field), 3);
                out.put_uint(len as u64, 3);
                out.put_u8(type_id);
                out.put_u32_le(stream_id);
            }
            if extended {
                out.put_u32(timestamp);
            }
            out.put_slice(chunk.unwrap_or_default());
            first = false;
        }
    }
}

fn put_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    match csid {
        2..=63 => out.put_u8(fmt << 6 | csid as u8),
        64..=319 => {
            out.put_u8(fmt << 6);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let c = csid.clamp(64, 65599) - 64;
            out.put_u8(fmt << 6 | 1);
            out.put_u8((c & 0xff) as u8);
            out.put_u8((c >> 8) as u8);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(r: &mut ChunkReader, bytes: &[u8]) -> Vec<Message> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = r.read(&mut buf).unwrap() {
            out.push(m);
        }
        assert!(buf.is_empty(), "left {} bytes", buf.len());
        out
    }

    #[test]
    fn writer_reader_round_trip_at_many_sizes() {
        let payload: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        for size in [1, 7, 128, 4096] {
            for csid in [3, 64, 319, 320, 65599] {
                for ts in [0, 40, 0xFF_FFFF, 0xFFFF_FFF0] {
                    let mut w = ChunkWriter::new();
                    w.set_chunk_size(size);
                    let mut out = BytesMut::new();
                    w.write(&mut out, csid, ts, 9, 1, &payload);
                    w.write(&mut out, csid, ts.wrapping_add(1), 8, 1, &[]);
                    let mut r = ChunkReader::new();
                    r.set_chunk_size(size).unwrap();
                    let m = read_all(&mut r, &out);
                    assert_eq!(m.len(), 2);
                    assert_eq!((m[0].chunk_stream, m[0].timestamp, m[0].type_id), (csid, ts, 9));
                    assert_eq!(&m[0].payload[..], &payload[..]);
                    assert_eq!((m[1].timestamp, m[1].type_id, m[1].payload.len()), (ts.wrapping_add(1), 8, 0));
                }
            }
        }
    }

    #[test]
    fn compressed_headers_and_byte_by_byte_input() {
        // fmt0 (t=1000, len 3, type 9, stream 1), fmt1 (delta 40, len 2, type 8), fmt2 (delta 40),
        // fmt3 (new message, same delta again).
        let bytes: &[u8] = &[
            0x04, 0x00, 0x03, 0xE8, 0, 0, 3, 9, 1, 0, 0, 0, b'a', b'b', b'c', //
            0x44, 0, 0, 40, 0, 0, 2, 8, b'd', b'e', //
            0x84, 0, 0, 40, b'f', b'g', //
            0xC4, b'h', b'i',
        ];
        let mut r = ChunkReader::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for &b in bytes {
            buf.put_u8(b);
            while let Some(m) = r.read(&mut buf).unwrap() {
                got.push(m);
            }
        }
        let ts: Vec<_> = got.iter().map(|m| (m.timestamp, m.type_id, m.stream_id, m.payload.to_vec())).collect();
        assert_eq!(
            ts,
            vec![
                (1000, 9, 1, b"abc".to_vec()),
                (1040, 8, 1, b"de".to_vec()),
                (1080, 8, 1, b"fg".to_vec()),
                (1120, 8, 1, b"hi".to_vec()),
            ]
        );
    }

    #[test]
    fn interleaved_chunk_streams_and_abort() {
        let mut w = ChunkWriter::new();
        w.set_chunk_size(4);
        let (mut a, mut b) = (BytesMut::new(), BytesMut::new());
        w.write(&mut a, 4, 0, 8, 1, b"AAAAAAAA");
        w.write(&mut b, 6, 0, 9, 1, b"BBBBBBBB");
        // Interleave: a's first chunk, b's first chunk, a's second, b's second.
        let (a1, a2) = a.split_at(12 + 4);
        let (b1, b2) = b.split_at(12 + 4);
        let mut r = ChunkReader::new();
        r.set_chunk_size(4).unwrap();
        let m = read_all(&mut r, &[a1, b1, a2, b2].concat());
        assert_eq!(m.iter().map(|m| m.chunk_stream).collect::<Vec<_>>(), vec![4, 6]);
        // Abort drops a partial message.
        let mut r = ChunkReader::new();
        r.set_chunk_size(4).unwrap();
        assert!(read_all(&mut r, a1).is_empty());
        r.abort(4);
        assert_eq!(r.partial_bytes, 0);
    }

    #[test]
    fn limits() {
        let mut r = ChunkReader::new();
        // Type-1 header on a fresh chunk stream.
        let mut buf = BytesMut::from(&[0x43, 0, 0, 0, 0, 0, 1, 8][..]);
        assert_eq!(r.read(&mut buf), Err(ChunkError::NoPreviousHeader(3, 1)));
        // A 17 MB message.
        let mut buf = BytesMut::from(&[0x03, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0][..]);
        assert_eq!(r.read(&mut buf), Err(ChunkError::MessageTooLarge(0xFF_FFFF)));
        assert_eq!(r.set_chunk_size(0), Err(ChunkError::BadChunkSize(0)));
        assert_eq!(r.set_chunk_size(0x8000_0000), Err(ChunkError::BadChunkSize(0x8000_0000)));
        // Too many chunk streams, each with a partial message.
        let mut r = ChunkReader::new();
        r.set_chunk_size(1).unwrap();
        let mut buf = BytesMut::new();
        for n in 0..70u8 {
            buf.extend_from_slice(&[0, n, 0, 0, 0, 0, 0, 10, 9, 1, 0, 0, 0, 1]);
        }
        let err = loop {
            match r.read(&mut buf) {
                Ok(Some(_)) => {}
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, ChunkError::TooManyChunkStreams);
    }
}
