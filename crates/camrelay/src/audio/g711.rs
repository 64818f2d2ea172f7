//! G.711 A-law and µ-law (ITU-T G.711): one byte per sample, 8 bits of a 13/14-bit linear sample.

/// A-law byte → linear sample (16-bit range).
pub fn alaw_to_linear(a: u8) -> i16 {
    let a = a ^ 0x55;
    let mut t = ((a & 0x0f) as i32) << 4;
    let seg = (a & 0x70) >> 4;
    match seg {
        0 => t += 8,
        1 => t += 0x108,
        _ => {
            t += 0x108;
            t <<= seg - 1;
        }
    }
    (if a & 0x80 != 0 { t } else { -t }) as i16
}

/// Linear sample → A-law byte.
pub fn linear_to_alaw(pcm: i16) -> u8 {
    const SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
    let mut pcm = (pcm as i32) >> 3;
    let mask = if pcm >= 0 {
        0xD5
    } else {
        pcm = -pcm - 1;
        0x55
    };
    let seg = SEG_END.iter().position(|&end| pcm <= end).unwrap_or(8) as i32;
    let aval = if seg >= 8 {
        0x7F
    } else {
        let shift = if seg < 2 { 1 } else { seg };
        (seg << 4) | ((pcm >> shift) & 0x0F)
    };
    (aval ^ mask) as u8
}

/// µ-law byte → linear sample (16-bit range).
pub fn ulaw_to_linear(u: u8) -> i16 {
    let u = !u;
    let mut t = (((u & 0x0f) as i32) << 3) + 0x84;
    t <<= (u & 0x70) >> 4;
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

/// Linear sample → µ-law byte.
pub fn linear_to_ulaw(pcm: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let mut pcm = pcm as i32;
    let sign = if pcm < 0 {
        pcm = -pcm;
        0x80
    } else {
        0
    };
    let pcm = pcm.min(CLIP) + BIAS;
    let exponent = (31 - (pcm as u32).leading_zeros() as i32 - 7).clamp(0, 7);
    let mantissa = (pcm >> (exponent + 3)) & 0x0F;
    !(sign | (exponent << 4) | mantissa) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_survives_a_round_trip() {
        for b in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(b)), b, "A-law {b:#04x}");
            let back = linear_to_ulaw(ulaw_to_linear(b));
            // µ-law has two codes for zero (0x7f and 0xff); both decode to 0.
            assert!(back == b || ulaw_to_linear(b) == 0, "µ-law {b:#04x} → {back:#04x}");
        }
    }

    #[test]
    fn known_values() {
        // G.711's reference: silence and the largest magnitudes.
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        // Quantization error stays within the segment's step.
        for x in (-32000i32..32000).step_by(97) {
            let x = x as i16;
            let a = alaw_to_linear(linear_to_alaw(x)) as i32;
            let u = ulaw_to_linear(linear_to_ulaw(x)) as i32;
            let step = (x as i32).abs() / 16 + 16;
            assert!((a - x as i32).abs() <= step, "A-law {x} → {a}");
            assert!((u - x as i32).abs() <= step, "µ-law {x} → {u}");
        }
    }
}
