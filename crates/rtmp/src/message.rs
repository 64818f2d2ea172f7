//! RTMP message type ids, protocol control and user control messages, and command encoding.

use crate::amf0::{self, Amf0Value};
use crate::chunk::ChunkWriter;
use bytes::{BufMut, BytesMut};

pub const SET_CHUNK_SIZE: u8 = 1;
pub const ABORT: u8 = 2;
pub const ACKNOWLEDGEMENT: u8 = 3;
pub const USER_CONTROL: u8 = 4;
pub const WINDOW_ACK_SIZE: u8 = 5;
pub const SET_PEER_BANDWIDTH: u8 = 6;
pub const AUDIO: u8 = 8;
pub const VIDEO: u8 = 9;
pub const DATA_AMF3: u8 = 15;
pub const COMMAND_AMF3: u8 = 17;
pub const DATA_AMF0: u8 = 18;
pub const COMMAND_AMF0: u8 = 20;
pub const AGGREGATE: u8 = 22;

/// User control event types.
pub const STREAM_BEGIN: u16 = 0;
pub const STREAM_EOF: u16 = 1;
pub const PING_REQUEST: u16 = 6;
pub const PING_RESPONSE: u16 = 7;

/// Chunk streams we send on.
pub const CSID_CONTROL: u32 = 2;
pub const CSID_COMMAND: u32 = 3;
pub const CSID_AUDIO: u32 = 4;
pub const CSID_DATA: u32 = 5;
pub const CSID_VIDEO: u32 = 6;

/// Appends a protocol control message carrying one 32-bit value (chunk size, window, acknowledgement).
pub fn write_control_u32(w: &ChunkWriter, out: &mut BytesMut, type_id: u8, value: u32) {
    w.write(out, CSID_CONTROL, 0, type_id, 0, &value.to_be_bytes());
}

pub fn write_peer_bandwidth(w: &ChunkWriter, out: &mut BytesMut, window: u32, limit_type: u8) {
    let mut b = [0u8; 5];
    b[..4].copy_from_slice(&window.to_be_bytes());
    b[4] = limit_type;
    w.write(out, CSID_CONTROL, 0, SET_PEER_BANDWIDTH, 0, &b);
}

pub fn write_user_control(w: &ChunkWriter, out: &mut BytesMut, event: u16, value: u32) {
    let mut b = BytesMut::with_capacity(6);
    b.put_u16(event);
    b.put_u32(value);
    w.write(out, CSID_CONTROL, 0, USER_CONTROL, 0, &b);
}

/// Appends an AMF0 command (`name`, transaction id, then `args`) on the command chunk stream.
pub fn write_command(
    w: &ChunkWriter,
    out: &mut BytesMut,
    stream_id: u32,
    name: &str,
    transaction: f64,
    args: &[Amf0Value],
) {
    let mut body = BytesMut::new();
    Amf0Value::string(name).encode(&mut body);
    Amf0Value::Number(transaction).encode(&mut body);
    for a in args {
        a.encode(&mut body);
    }
    w.write(out, CSID_COMMAND, 0, COMMAND_AMF0, stream_id, &body);
}

/// Appends an AMF0 data message (e.g. `onMetaData`, `|RtmpSampleAccess`).
pub fn write_data(w: &ChunkWriter, out: &mut BytesMut, stream_id: u32, values: &[Amf0Value]) {
    w.write(out, CSID_DATA, 0, DATA_AMF0, stream_id, &amf0::encode_all(values));
}

/// An `onStatus` info object.
pub fn status(level: &str, code: &str, description: &str) -> Amf0Value {
    Amf0Value::object([
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ])
}

/// The parts of an aggregate message: FLV tags (11-byte header, body, previous tag size) whose times are
/// relative to the first tag, placed at the aggregate's `timestamp`. Gives (type id, time, body) per tag;
/// `Err` names what was truncated.
pub fn split_aggregate(payload: &bytes::Bytes, timestamp: u32) -> Result<Vec<(u8, u32, bytes::Bytes)>, &'static str> {
    let p = payload;
    let mut pos = 0;
    let mut base: Option<u32> = None;
    let mut out = Vec::new();
    while pos < p.len() {
        let h = p.get(pos..pos + 11).ok_or("aggregate tag header")?;
        let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
        let ts = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
        let start = pos + 11;
        let end = start.checked_add(size).filter(|&e| e + 4 <= p.len()).ok_or("aggregate tag")?;
        let first = *base.get_or_insert(ts);
        let t = timestamp.wrapping_add(ts.wrapping_sub(first));
        if matches!(h[0], AUDIO | VIDEO | DATA_AMF0) {
            out.push((h[0], t, p.slice(start..end)));
        }
        pos = end + 4;
    }
    Ok(out)
}

/// An AMF3 data message (type 15) as the AMF0 body of an FLV script tag, which both session machines
/// hand on as `DATA_AMF0`: the format byte dropped, and values that switch to AMF3 (marker 0x11)
/// written again in AMF0.
pub fn amf3_data_as_amf0(payload: &bytes::Bytes) -> Result<bytes::Bytes, crate::amf0::Amf0Error> {
    let body = if payload.first() == Some(&0) { &payload[1..] } else { &payload[..] };
    let values = crate::amf0::Amf0Reader::new(body).read_all()?;
    Ok(amf0::encode_all(&values).freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amf3_data_becomes_amf0() {
        // Format byte, the AMF0 name, then a value switched to AMF3 (0x11): the integer 5 (0x04 0x05).
        let mut payload = vec![0u8];
        payload.extend_from_slice(&amf0::encode_all(&[Amf0Value::string("onMetaData")]));
        payload.extend_from_slice(&[0x11, 0x04, 0x05]);
        let body = amf3_data_as_amf0(&bytes::Bytes::from(payload)).unwrap();
        let values = crate::amf0::Amf0Reader::new(&body).read_all().unwrap();
        assert_eq!(values, [Amf0Value::string("onMetaData"), Amf0Value::Number(5.0)]);
        assert!(amf3_data_as_amf0(&bytes::Bytes::from_static(&[0, 0x11, 0x7f])).is_err(), "unknown AMF3 type");
    }
}
