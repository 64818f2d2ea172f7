//! The little STUN (RFC 8489) the server needs outside str0m: the ICE username of an incoming binding
//! request (to route a new peer's first packet to its session), and a binding request to a STUN server
//! with its answer (our public address, for `stun:PORT` candidates). Input from the network is never
//! trusted: every read is bounds-checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const MAGIC: [u8; 4] = [0x21, 0x12, 0xA4, 0x42];
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const ATTR_USERNAME: u16 = 0x0006;
const ATTR_MAPPED_ADDRESS: u16 = 0x0001;
const ATTR_XOR_MAPPED_ADDRESS: u16 = 0x0020;

/// A STUN message: its type, transaction id and attributes (still encoded).
struct Message<'a> {
    typ: u16,
    id: &'a [u8],
    attrs: &'a [u8],
}

impl<'a> Message<'a> {
    fn parse(data: &'a [u8]) -> Option<Message<'a>> {
        if data.len() < 20 || data[0] & 0xC0 != 0 || data[4..8] != MAGIC {
            return None;
        }
        let len = u16::from_be_bytes([data[2], data[3]]) as usize;
        Some(Message { typ: u16::from_be_bytes([data[0], data[1]]), id: &data[8..20], attrs: data.get(20..20 + len)? })
    }

    /// (type, value) of each attribute, up to the first malformed one.
    fn attrs(&self) -> impl Iterator<Item = (u16, &'a [u8])> {
        let mut rest = self.attrs;
        std::iter::from_fn(move || {
            let typ = u16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
            let len = u16::from_be_bytes([*rest.get(2)?, *rest.get(3)?]) as usize;
            let value = rest.get(4..4 + len)?;
            rest = rest.get(4 + len.div_ceil(4) * 4..).unwrap_or(&[]);
            Some((typ, value))
        })
    }
}

/// The local part of a STUN binding request's USERNAME (`local:remote`), if `data` is one.
pub(crate) fn local_ufrag(data: &[u8]) -> Option<&str> {
    let m = Message::parse(data)?;
    if m.typ != BINDING_REQUEST {
        return None;
    }
    let (_, user) = m.attrs().find(|(t, _)| *t == ATTR_USERNAME)?;
    std::str::from_utf8(user).ok()?.split(':').next()
}

/// A binding request with transaction id `id` (no attributes: a plain "what is my address").
pub(super) fn binding_request(id: [u8; 12]) -> Vec<u8> {
    let mut m = Vec::with_capacity(20);
    m.extend_from_slice(&BINDING_REQUEST.to_be_bytes());
    m.extend_from_slice(&0u16.to_be_bytes());
    m.extend_from_slice(&MAGIC);
    m.extend_from_slice(&id);
    m
}

/// The address a binding success response for transaction `id` reports (XOR-MAPPED-ADDRESS, or the
/// old MAPPED-ADDRESS).
pub(crate) fn mapped_address(data: &[u8], id: &[u8; 12]) -> Option<SocketAddr> {
    let m = Message::parse(data)?;
    if m.typ != BINDING_SUCCESS || m.id != id {
        return None;
    }
    let mut plain = None;
    for (t, v) in m.attrs() {
        match t {
            ATTR_XOR_MAPPED_ADDRESS => return address(v, Some(id)),
            ATTR_MAPPED_ADDRESS => plain = address(v, None),
            _ => {}
        }
    }
    plain
}

/// A (XOR-)MAPPED-ADDRESS value: reserved, family, port, address; XORed with the magic cookie and the
/// transaction id when `xor` holds the id.
fn address(v: &[u8], xor: Option<&[u8; 12]>) -> Option<SocketAddr> {
    let family = *v.get(1)?;
    let mut mask = [0u8; 16];
    if let Some(id) = xor {
        mask[..4].copy_from_slice(&MAGIC);
        mask[4..].copy_from_slice(id);
    }
    let port = u16::from_be_bytes([v.get(2)? ^ mask[0], v.get(3)? ^ mask[1]]);
    let ip = match family {
        1 => {
            let b = v.get(4..8)?;
            IpAddr::V4(Ipv4Addr::new(b[0] ^ mask[0], b[1] ^ mask[1], b[2] ^ mask[2], b[3] ^ mask[3]))
        }
        2 => {
            let b = v.get(4..20)?;
            let mut o = [0u8; 16];
            for i in 0..16 {
                o[i] = b[i] ^ mask[i];
            }
            IpAddr::V6(Ipv6Addr::from(o))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// A binding success response reporting `addr` (the test STUN server's answer).
#[cfg(test)]
pub(super) fn binding_success(id: &[u8; 12], addr: SocketAddr) -> Vec<u8> {
    let mut value = vec![0u8, if addr.is_ipv4() { 1 } else { 2 }];
    let mut mask = [0u8; 16];
    mask[..4].copy_from_slice(&MAGIC);
    mask[4..].copy_from_slice(id);
    let port = addr.port().to_be_bytes();
    value.extend_from_slice(&[port[0] ^ mask[0], port[1] ^ mask[1]]);
    let ip: Vec<u8> = match addr.ip() {
        IpAddr::V4(ip) => ip.octets().to_vec(),
        IpAddr::V6(ip) => ip.octets().to_vec(),
    };
    value.extend(ip.iter().enumerate().map(|(i, b)| b ^ mask[i]));
    let mut m = Vec::new();
    m.extend_from_slice(&BINDING_SUCCESS.to_be_bytes());
    m.extend_from_slice(&((4 + value.len()) as u16).to_be_bytes());
    m.extend_from_slice(&MAGIC);
    m.extend_from_slice(id);
    m.extend_from_slice(&ATTR_XOR_MAPPED_ADDRESS.to_be_bytes());
    m.extend_from_slice(&(value.len() as u16).to_be_bytes());
    m.extend_from_slice(&value);
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn username_is_parsed_and_garbage_is_not() {
        // Binding request with USERNAME "abcd:efgh".
        let mut p = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xA4, 0x42];
        p.extend_from_slice(&[0u8; 12]);
        p.extend_from_slice(&[0x00, 0x06, 0x00, 0x09]);
        p.extend_from_slice(b"abcd:efgh\0\0\0");
        p[3] = 16;
        assert_eq!(local_ufrag(&p), Some("abcd"));
        assert_eq!(local_ufrag(&p[..30]), None);
        assert_eq!(local_ufrag(b"\x80\x60garbage-rtp-packet-xxxxxxxx"), None);
        for n in 0..p.len() {
            let _ = local_ufrag(&p[..n]);
        }
    }

    #[test]
    fn mapped_addresses_round_trip_and_truncations_are_rejected() {
        let id = [7u8; 12];
        for addr in ["203.0.113.7:8555", "[2001:db8::1]:9"] {
            let addr: SocketAddr = addr.parse().unwrap();
            let m = binding_success(&id, addr);
            assert_eq!(mapped_address(&m, &id), Some(addr));
            assert_eq!(mapped_address(&m, &[8u8; 12]), None, "another transaction");
            for n in 0..m.len() {
                assert_eq!(mapped_address(&m[..n], &id), None);
            }
        }
        let req = binding_request(id);
        assert_eq!(req.len(), 20);
        assert_eq!(mapped_address(&req, &id), None, "a request is not an answer");
    }
}
