#![no_main]
//! The server's answer to an arbitrary C0+C1, and the client's check of an arbitrary S0+S1+S2.
use libfuzzer_sys::fuzz_target;
use rtmp::handshake::{self, Filler, PACKET_SIZE};

fuzz_target!(|data: &[u8]| {
    let mut c0c1 = data.to_vec();
    c0c1.resize(1 + PACKET_SIZE, 0);
    if let Ok(s) = handshake::server_response(&c0c1, 0, &mut Filler::new(2)) {
        assert_eq!(s.len(), 1 + 2 * PACKET_SIZE);
    }
    let _ = handshake::server_response(data, 0, &mut Filler::new(2));
    let mut s = data.to_vec();
    s.resize(1 + 2 * PACKET_SIZE, 3);
    let _ = handshake::client_verify(&s, Some(&[0u8; 32]));
});
