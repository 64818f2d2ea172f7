//! Opus packet durations from the TOC byte (RFC 6716 §3.1): how much audio one packet holds.

/// Samples at 48 kHz one Opus packet holds, from its TOC byte and frame count; `None` for an empty
/// packet or a code 3 packet without its frame count byte. Never more than 120 ms (5760).
pub fn packet_samples(packet: &[u8]) -> Option<u32> {
    let toc = *packet.first()?;
    let config = toc >> 3;
    let frame = match config {
        0..=11 => [480, 960, 1920, 2880][usize::from(config & 3)],
        12..=15 => [480, 960][usize::from(config & 1)],
        _ => [120, 240, 480, 960][usize::from(config & 3)],
    };
    let count = match toc & 3 {
        0 => 1,
        1 | 2 => 2,
        _ => u32::from(*packet.get(1)? & 0x3f),
    };
    Some((frame * count).min(5760))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(packet_samples(&[0xfc]), Some(960)); // CELT FB 20 ms, one frame
        assert_eq!(packet_samples(&[0x78, 0x00]), Some(960)); // hybrid 20 ms
        assert_eq!(packet_samples(&[0x0b << 3 | 1]), Some(5760)); // SILK 60 ms x2 capped
        assert_eq!(packet_samples(&[0xf8 | 3, 0x03]), Some(960 * 3));
        assert_eq!(packet_samples(&[0x03]), None);
        assert_eq!(packet_samples(&[]), None);
    }
}
