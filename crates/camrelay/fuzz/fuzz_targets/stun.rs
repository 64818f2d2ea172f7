#![no_main]
//! STUN from the network (the WebRTC socket's first packets, a STUN server's answers): never panics,
//! and only a binding request has a username, only a binding success response an address.

use camrelay::fuzzing::{stun_local_ufrag, stun_mapped_address};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some(ufrag) = stun_local_ufrag(data) {
        assert!(!ufrag.contains(':'));
        assert_eq!(&data[..2], &[0x00, 0x01], "a binding request");
    }
    // The input's first 12 bytes as the transaction id we wait for...
    if let Some(id) = data.get(..12).and_then(|b| <[u8; 12]>::try_from(b).ok()) {
        let _ = stun_mapped_address(data, &id);
    }
    // ...and the message's own id, so the answer is ours and its attributes are read.
    if let Some(id) = data.get(8..20).and_then(|b| <[u8; 12]>::try_from(b).ok()) {
        if stun_mapped_address(data, &id).is_some() {
            assert_eq!(&data[..2], &[0x01, 0x01], "a binding success response");
            let mut other = id;
            other[0] ^= 1;
            assert_eq!(stun_mapped_address(data, &other), None, "another transaction's answer");
        }
    }
});
