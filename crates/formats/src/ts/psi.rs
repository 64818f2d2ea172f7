//! A light scan of an MPEG-TS stream's first packets for the PAT and the PMT of its first program: how
//! many streams the [`super::TsDemuxer`] will give (H.264, H.265, AAC, MPEG audio, Opus, KLV), so that
//! probing a stream knows how many tracks to wait for. Finds sync on its own (the stream may start
//! mid-packet).

/// Bytes the scan reads without finding a PMT before it gives up.
pub const PMT_SCAN_MAX_BYTES: usize = 5 << 20;

/// Finds the PMT of the first program in the first MPEG-TS packets and counts the streams the demuxer
/// supports (see [`super::TsDemuxer`]). Bounded: gives up after [`PMT_SCAN_MAX_BYTES`] without a PMT.
#[derive(Debug, Default)]
pub struct PmtScan {
    buf: Vec<u8>,
    /// Bytes scanned so far.
    total: usize,
    pmt_pid: Option<u16>,
    streams: Option<usize>,
    synced: bool,
    done: bool,
}

impl PmtScan {
    pub fn new() -> PmtScan {
        PmtScan::default()
    }

    /// Streams of the first program the demuxer supports, once its PMT was seen.
    pub fn streams(&self) -> Option<usize> {
        self.streams
    }

    /// True once sync bytes 188 apart were seen somewhere.
    pub fn synced(&self) -> bool {
        self.synced
    }

    /// True when the scan ended: the PMT was found, or the bound was reached without it.
    pub fn done(&self) -> bool {
        self.done
    }

    /// Feeds the stream's bytes (cheap once done).
    pub fn push(&mut self, data: &[u8]) {
        if self.done {
            return;
        }
        self.total = self.total.saturating_add(data.len());
        self.buf.extend_from_slice(data);
        let mut pos = 0;
        while self.buf.len() - pos >= 188 {
            let b = &self.buf;
            if b[pos] != 0x47 || b.get(pos + 188).is_some_and(|&x| x != 0x47) {
                pos += 1;
                continue;
            }
            self.synced = true;
            let mut packet = [0u8; 188];
            packet.copy_from_slice(&self.buf[pos..pos + 188]);
            self.packet(&packet);
            pos += 188;
            if self.streams.is_some() {
                self.done = true;
                self.buf = Vec::new();
                return;
            }
        }
        self.buf.drain(..pos);
        if self.total > PMT_SCAN_MAX_BYTES {
            self.done = true;
            self.buf = Vec::new();
        }
    }

    fn packet(&mut self, p: &[u8; 188]) {
        if p[1] & 0x40 == 0 {
            return; // not a section start
        }
        let pid = (u16::from(p[1] & 0x1f) << 8) | u16::from(p[2]);
        let afc = (p[3] >> 4) & 3;
        let mut off = 4;
        if afc & 2 != 0 {
            off += 1 + usize::from(p[4]);
        }
        if afc & 1 == 0 || off >= 188 {
            return;
        }
        let pointer = usize::from(p[off]);
        let Some(sec) = p.get(off + 1 + pointer..) else { return };
        if sec.len() < 3 {
            return;
        }
        let section_len = (usize::from(sec[1] & 0x0f) << 8) | usize::from(sec[2]);
        let end = (3 + section_len).saturating_sub(4).min(sec.len());
        if pid == 0 && sec[0] == 0x00 {
            let mut i = 8;
            while i + 4 <= end {
                let program = u16::from_be_bytes([sec[i], sec[i + 1]]);
                if program != 0 {
                    self.pmt_pid = Some(u16::from_be_bytes([sec[i + 2], sec[i + 3]]) & 0x1fff);
                    break;
                }
                i += 4;
            }
        } else if Some(pid) == self.pmt_pid && sec[0] == 0x02 && end >= 12 {
            let info_len = (usize::from(sec[10] & 0x0f) << 8) | usize::from(sec[11]);
            let mut i = 12 + info_len;
            let mut count = 0;
            while i + 5 <= end {
                let es_info = (usize::from(sec[i + 3] & 0x0f) << 8) | usize::from(sec[i + 4]);
                let descriptors = sec.get(i + 5..(i + 5 + es_info).min(end)).unwrap_or_default();
                if super::EsType::from_pmt(sec[i], descriptors).is_some() {
                    count += 1;
                }
                i += 5 + es_info;
            }
            self.streams = Some(count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// PAT: program 1 → PMT pid 0x1000; PMT: H.264 on 0x100, AAC on 0x101, one unsupported (0x06
    /// without a registration descriptor).
    fn pat_pmt() -> Vec<u8> {
        let mut ts = Vec::new();
        let mut pkt = |pid: u16, section: &[u8]| {
            let mut p = vec![0x47, 0x40 | (pid >> 8) as u8, pid as u8, 0x10, 0x00];
            p.extend_from_slice(section);
            p.resize(188, 0xff);
            ts.extend_from_slice(&p);
        };
        pkt(0, &[0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0, 0, 0, 0]);
        pkt(
            0x1000,
            &[
                0x02, 0xb0, 0x1c, 0x00, 0x01, 0xc1, 0x00, 0x00, 0xe1, 0x00, 0xf0, 0x00, 0x1b, 0xe1, 0x00, 0xf0, 0x00,
                0x0f, 0xe1, 0x01, 0xf0, 0x00, 0x06, 0xe1, 0x02, 0xf0, 0x00, 0, 0, 0, 0,
            ],
        );
        ts
    }

    #[test]
    fn pmt_scan_counts_streams() {
        let ts = pat_pmt();
        let mut scan = PmtScan::new();
        scan.push(&ts[..100]);
        assert!(!scan.synced());
        scan.push(&ts[100..]);
        assert!(scan.synced());
        assert!(scan.done());
        assert_eq!(scan.streams(), Some(2));
    }

    #[test]
    fn finds_sync_after_garbage() {
        let mut data = vec![0x47, 0x13, 0x47, 0x00, 0x12];
        data.extend_from_slice(&pat_pmt());
        data.extend_from_slice(&[0x47; 188]);
        let mut scan = PmtScan::new();
        for chunk in data.chunks(7) {
            scan.push(chunk);
        }
        assert_eq!(scan.streams(), Some(2));
    }

    #[test]
    fn gives_up_after_the_bound() {
        // Garbage, then TS packets without any PSI: the scan stops after the bound and keeps nothing.
        let mut scan = PmtScan::new();
        scan.push(&vec![0x11u8; 1 << 20]);
        assert!(!scan.done() && !scan.synced());
        assert!(scan.buf.len() < 188, "unsynced bytes are not kept");
        let mut pes = vec![0x47, 0x01, 0x00, 0x10];
        pes.resize(188, 0x22);
        let chunk = pes.repeat(4096);
        for _ in 0..6 {
            scan.push(&chunk);
        }
        assert!(scan.done() && scan.synced());
        assert_eq!(scan.streams(), None);
        assert!(scan.buf.capacity() == 0, "the buffer is freed");
        // The PSI coming later is no longer looked at.
        scan.push(&pat_pmt());
        assert_eq!(scan.streams(), None);
    }

    #[test]
    fn truncated_sections_are_ignored() {
        // A PMT whose section length runs past the packet, and an adaptation field filling the packet.
        let mut p = vec![0x47, 0x40, 0x00, 0x30, 183];
        p.resize(188, 0xff);
        let mut q = vec![0x47, 0x40, 0x00, 0x10, 0x00, 0x00, 0xbf, 0xff];
        q.resize(188, 0x00);
        let mut scan = PmtScan::new();
        scan.push(&p);
        scan.push(&q);
        scan.push(&p);
        assert!(scan.synced());
        assert_eq!(scan.streams(), None);
    }
}
