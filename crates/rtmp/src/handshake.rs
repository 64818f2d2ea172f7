//! The RTMP handshake: C0/C1/C2 ↔ S0/S1/S2, plain (S2 echoes C1) and the digest variant that Flash Player
//! and ffmpeg use (HMAC-SHA256 over the 1536-byte packets with the well-known Adobe keys). A server answers
//! a C1 carrying a valid client digest with a digest S1/S2 (players like ffmpeg then verify them) and any
//! other C1 with the plain handshake, as nginx-rtmp and MediaMTX do.
//!
//! Pure functions: the session feeds the bytes and supplies the randomness.

use sha2::{Digest, Sha256};

/// C1, S1, C2, S2 are this long; C0 and S0 are one byte.
pub const PACKET_SIZE: usize = 1536;
/// The only version we speak (3: plain RTMP; 6 is RTMPE).
pub const VERSION: u8 = 3;
const DIGEST_LEN: usize = 32;

const KEY_TAIL: [u8; 32] = [
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1, 0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D,
    0x2D, 0x29, 0x80, 0x6F, 0xAB, 0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
];
const FP_KEY_TEXT: &[u8; 30] = b"Genuine Adobe Flash Player 001";
const FMS_KEY_TEXT: &[u8; 36] = b"Genuine Adobe Flash Media Server 001";
/// The version field of a digest S1 (read as "server version ≥ 3" by ffmpeg, which then checks the digest).
const SERVER_VERSION: [u8; 4] = [0x0D, 0x0E, 0x0A, 0x0D];
const CLIENT_VERSION: [u8; 4] = [0x0A, 0x00, 0x2D, 0x02];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("RTMP handshake: unsupported version {0} (only 3, plain RTMP; 6 is RTMPE)")]
    Version(u8),
    #[error("RTMP handshake: {0} bytes where a {1}-byte packet was expected")]
    Length(usize, usize),
    #[error("RTMP handshake: the server's digest does not verify")]
    BadServerDigest,
}

/// The two places a digest can be in a 1536-byte packet; the offset is derived from four bytes at `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DigestScheme {
    /// Offset bytes at 8, digest in 12..(12 + 728 + 32): what ffmpeg and Flash Player send unencrypted.
    At8,
    /// Offset bytes at 772.
    At772,
}

impl DigestScheme {
    fn position(self, packet: &[u8]) -> usize {
        let base = match self {
            DigestScheme::At8 => 8,
            DigestScheme::At772 => 772,
        };
        let sum: usize = packet[base..base + 4].iter().map(|&b| usize::from(b)).sum();
        sum % 728 + base + 4
    }
}

/// HMAC-SHA256 (RFC 2104) over the concatenation of `parts`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner);
    let mut out = [0u8; 32];
    out.copy_from_slice(&outer.finalize());
    out
}

fn key(text: &[u8], full: bool) -> Vec<u8> {
    let mut k = text.to_vec();
    if full {
        k.extend_from_slice(&KEY_TAIL);
    }
    k
}

fn packet_digest(packet: &[u8], pos: usize, key: &[u8]) -> [u8; 32] {
    hmac_sha256(key, &[&packet[..pos], &packet[pos + DIGEST_LEN..]])
}

/// Where `packet` (1536 bytes) carries a valid digest made with `key`, if it does.
fn find_digest(packet: &[u8], key: &[u8]) -> Option<(DigestScheme, usize)> {
    [DigestScheme::At8, DigestScheme::At772].into_iter().find_map(|scheme| {
        let pos = scheme.position(packet);
        (packet_digest(packet, pos, key)[..] == packet[pos..pos + DIGEST_LEN]).then_some((scheme, pos))
    })
}

fn imprint(packet: &mut [u8], scheme: DigestScheme, key: &[u8]) -> usize {
    let pos = scheme.position(packet);
    let d = packet_digest(packet, pos, key);
    packet[pos..pos + DIGEST_LEN].copy_from_slice(&d);
    pos
}

/// A tiny deterministic generator for the filler bytes of S1/S2/C1 (not secret: the handshake has none).
#[derive(Debug, Clone)]
pub struct Filler(u64);

impl Filler {
    pub fn new(seed: u64) -> Self {
        Filler(seed | 1)
    }

    pub fn fill(&mut self, out: &mut [u8]) {
        for b in out {
            // xorshift64
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            *b = (self.0 >> 24) as u8;
        }
    }
}

/// The server's answer to C0+C1 (`c0c1`: 1537 bytes): S0+S1+S2 (3073 bytes). `time` goes in S1's time field.
pub fn server_response(c0c1: &[u8], time: u32, filler: &mut Filler) -> Result<Vec<u8>, HandshakeError> {
    if c0c1.len() != 1 + PACKET_SIZE {
        return Err(HandshakeError::Length(c0c1.len(), 1 + PACKET_SIZE));
    }
    if c0c1[0] != VERSION {
        return Err(HandshakeError::Version(c0c1[0]));
    }
    let c1 = &c0c1[1..];
    let mut out = vec![0u8; 1 + 2 * PACKET_SIZE];
    out[0] = VERSION;
    let (s1, s2) = out[1..].split_at_mut(PACKET_SIZE);
    s1[..4].copy_from_slice(&time.to_be_bytes());
    filler.fill(&mut s1[8..]);
    match find_digest(c1, &key(FP_KEY_TEXT, false)) {
        Some((scheme, pos)) => {
            s1[4..8].copy_from_slice(&SERVER_VERSION);
            imprint(s1, scheme, &key(FMS_KEY_TEXT, false));
            filler.fill(s2);
            let s2_key = hmac_sha256(&key(FMS_KEY_TEXT, true), &[&c1[pos..pos + DIGEST_LEN]]);
            let sig = hmac_sha256(&s2_key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]);
            s2[PACKET_SIZE - DIGEST_LEN..].copy_from_slice(&sig);
        }
        None => {
            // Plain: S1 version zero, S2 echoes C1.
            s2.copy_from_slice(c1);
        }
    }
    Ok(out)
}

/// A client's C0+C1; with `digest`, C1 carries the Flash Player digest (scheme at offset 8). Returns the
/// bytes and, for the digest variant, the client digest needed by [`client_verify`].
pub fn client_hello(time: u32, digest: bool, filler: &mut Filler) -> (Vec<u8>, Option<[u8; 32]>) {
    let mut out = vec![0u8; 1 + PACKET_SIZE];
    out[0] = VERSION;
    let c1 = &mut out[1..];
    c1[..4].copy_from_slice(&time.to_be_bytes());
    filler.fill(&mut c1[8..]);
    if !digest {
        return (out, None);
    }
    c1[4..8].copy_from_slice(&CLIENT_VERSION);
    let pos = imprint(c1, DigestScheme::At8, &key(FP_KEY_TEXT, false));
    let mut d = [0u8; 32];
    d.copy_from_slice(&c1[pos..pos + DIGEST_LEN]);
    (out, Some(d))
}

/// Checks S0+S1+S2 as a digest-aware client (ffmpeg) does and returns C2. Without a client digest, or when
/// S1's version field is below 3 (a plain server), only S0 is checked and C2 echoes S1.
pub fn client_verify(s0s1s2: &[u8], client_digest: Option<&[u8; 32]>) -> Result<Vec<u8>, HandshakeError> {
    if s0s1s2.len() != 1 + 2 * PACKET_SIZE {
        return Err(HandshakeError::Length(s0s1s2.len(), 1 + 2 * PACKET_SIZE));
    }
    if s0s1s2[0] != VERSION {
        return Err(HandshakeError::Version(s0s1s2[0]));
    }
    let s1 = &s0s1s2[1..1 + PACKET_SIZE];
    let s2 = &s0s1s2[1 + PACKET_SIZE..];
    if let (Some(cd), true) = (client_digest, s1[4] >= 3) {
        find_digest(s1, &key(FMS_KEY_TEXT, false)).ok_or(HandshakeError::BadServerDigest)?;
        let s2_key = hmac_sha256(&key(FMS_KEY_TEXT, true), &[cd]);
        let sig = hmac_sha256(&s2_key, &[&s2[..PACKET_SIZE - DIGEST_LEN]]);
        if sig[..] != s2[PACKET_SIZE - DIGEST_LEN..] {
            return Err(HandshakeError::BadServerDigest);
        }
    }
    Ok(s1.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc4231_case_2() {
        let mac = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(mac[..4], [0x5b, 0xdc, 0xc1, 0x46]);
        assert_eq!(mac[28..], [0x64, 0xec, 0x38, 0x43]);
    }

    #[test]
    fn plain_handshake_echoes_c1() {
        let (c0c1, none) = client_hello(7, false, &mut Filler::new(1));
        assert!(none.is_none());
        let s = server_response(&c0c1, 9, &mut Filler::new(2)).unwrap();
        assert_eq!(s[0], 3);
        assert_eq!(&s[1..5], &9u32.to_be_bytes());
        assert_eq!(&s[5..9], &[0, 0, 0, 0]);
        assert_eq!(&s[1 + PACKET_SIZE..], &c0c1[1..]);
        assert_eq!(client_verify(&s, None).unwrap(), &s[1..1 + PACKET_SIZE]);
    }

    #[test]
    fn digest_handshake_verifies_like_ffmpeg() {
        let (c0c1, d) = client_hello(0, true, &mut Filler::new(3));
        let s = server_response(&c0c1, 0, &mut Filler::new(4)).unwrap();
        assert_eq!(&s[5..9], &SERVER_VERSION);
        client_verify(&s, d.as_ref()).unwrap();
        // A corrupted S2 is caught.
        let mut bad = s.clone();
        bad[2000] ^= 1;
        assert_eq!(client_verify(&bad, d.as_ref()), Err(HandshakeError::BadServerDigest));
    }

    #[test]
    fn bad_version_and_length() {
        let mut c0c1 = vec![6u8; 1 + PACKET_SIZE];
        assert_eq!(server_response(&c0c1, 0, &mut Filler::new(1)), Err(HandshakeError::Version(6)));
        c0c1.pop();
        assert!(matches!(server_response(&c0c1, 0, &mut Filler::new(1)), Err(HandshakeError::Length(..))));
    }
}
