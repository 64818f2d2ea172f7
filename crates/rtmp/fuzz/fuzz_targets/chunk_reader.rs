#![no_main]
//! Reassembles messages from arbitrary chunk bytes (the first byte sets the chunk size) and checks that
//! every message fits its bounds and that consumption always makes progress.
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use rtmp::chunk::{ChunkReader, MAX_MESSAGE_LEN};

fuzz_target!(|data: &[u8]| {
    let Some((&size, rest)) = data.split_first() else { return };
    let mut r = ChunkReader::new();
    let _ = r.set_chunk_size(u32::from(size) + 1);
    let mut buf = BytesMut::from(rest);
    loop {
        let before = buf.len();
        match r.read(&mut buf) {
            Ok(Some(m)) => {
                assert!(m.payload.len() <= MAX_MESSAGE_LEN as usize);
                assert!(buf.len() < before);
                if m.type_id == 1 && m.payload.len() >= 4 {
                    let _ =
                        r.set_chunk_size(u32::from_be_bytes([m.payload[0], m.payload[1], m.payload[2], m.payload[3]]));
                }
            }
            Ok(None) | Err(_) => break,
        }
    }
});
