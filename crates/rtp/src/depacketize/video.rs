//! H.264 (RFC 6184: single NAL, STAP-A, FU-A) and H.265 (RFC 7798: single NAL, AP, FU) depacketizing into
//! access units of 4-byte length-prefixed NAL units.

use super::{push_reassembled, Depacketizer, FrameUnit, Reassembler};
use crate::RtpError;
use bytes::{BufMut, Bytes, BytesMut};
use media::{h264, h265, Frame, RtpPacket};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum VideoCodec {
    H264,
    H265,
}

impl VideoCodec {
    fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H264",
            VideoCodec::H265 => "H265",
        }
    }

    fn header_len(self) -> usize {
        match self {
            VideoCodec::H264 => 1,
            VideoCodec::H265 => 2,
        }
    }

    /// NAL type; `nal` holds at least `header_len` bytes.
    fn nal_type(self, nal: &[u8]) -> u8 {
        match self {
            VideoCodec::H264 => h264::nal_type(nal[0]),
            VideoCodec::H265 => h265::nal_type(nal[0]),
        }
    }
}

/// What a NAL unit is to the access unit builder.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    Vps,
    Sps,
    Pps,
    /// Picture data; `true` when a decoder can start there.
    Vcl(bool),
    /// AUD, filler: left out of frames.
    Dropped,
    Other,
}

fn role(codec: VideoCodec, t: u8) -> Role {
    match codec {
        VideoCodec::H264 => match t {
            h264::NAL_SPS => Role::Sps,
            h264::NAL_PPS => Role::Pps,
            h264::NAL_AUD | h264::NAL_FILLER => Role::Dropped,
            t if h264::is_vcl(t) => Role::Vcl(t == h264::NAL_IDR),
            _ => Role::Other,
        },
        VideoCodec::H265 => match t {
            h265::NAL_VPS => Role::Vps,
            h265::NAL_SPS => Role::Sps,
            h265::NAL_PPS => Role::Pps,
            h265::NAL_AUD | h265::NAL_FILLER => Role::Dropped,
            t if h265::is_vcl(t) => Role::Vcl(h265::is_irap(t)),
            _ => Role::Other,
        },
    }
}

/// Depacketizer for H.264 and H.265.
pub struct VideoDepacketizer {
    codec: VideoCodec,
    /// H.265 with `sprop-max-don-diff` > 0: aggregation and fragmentation units carry DONL/DOND fields.
    donl: bool,
    /// Latest parameter sets, from the fmtp or in-band, put in front of keyframes that lack them.
    vps: Vec<Bytes>,
    sps: Vec<Bytes>,
    pps: Vec<Bytes>,
    nals: Vec<Bytes>,
    size: usize,
    /// A fragmented NAL unit being reassembled (header rebuilt in front).
    fu: Option<BytesMut>,
    /// The frame being built: its timestamp, packets, loss and size bookkeeping.
    unit: FrameUnit,
}

impl VideoDepacketizer {
    fn new(codec: VideoCodec) -> Self {
        VideoDepacketizer {
            codec,
            donl: false,
            vps: Vec::new(),
            sps: Vec::new(),
            pps: Vec::new(),
            nals: Vec::new(),
            size: 0,
            fu: None,
            unit: FrameUnit::default(),
        }
    }

    /// H.264, with parameter sets from the fmtp's `sprop-parameter-sets` if any.
    pub fn h264(fmtp: &str) -> Self {
        let mut d = Self::new(VideoCodec::H264);
        (d.sps, d.pps) = h264::parse_sprop_parameter_sets(fmtp);
        d
    }

    /// H.265, with parameter sets from the fmtp's `sprop-vps/sps/pps` if any.
    pub fn h265(fmtp: &str) -> Self {
        let mut d = Self::new(VideoCodec::H265);
        let p = h265::parse_sprop_parameter_sets(fmtp);
        (d.vps, d.sps, d.pps) = (p.vps, p.sps, p.pps);
        d.donl = media::Codec::new("H265", 90000, 0, 0)
            .with_fmtp(fmtp)
            .fmtp_param("sprop-max-don-diff")
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v > 0);
        d
    }

    fn bad(&self, reason: &'static str) -> RtpError {
        RtpError::BadPayload { codec: self.codec.name(), reason }
    }

    fn lost(&self) -> RtpError {
        RtpError::FragmentLost { codec: self.codec.name() }
    }

    fn add_nal(&mut self, nal: Bytes) {
        if nal.len() < self.codec.header_len() || role(self.codec, self.codec.nal_type(&nal)) == Role::Dropped {
            return;
        }
        self.size += 4 + nal.len();
        self.nals.push(nal);
    }

    /// Adds the NAL units of one packet's payload to the access unit.
    fn depacketize(&mut self, payload: Bytes) -> Result<(), RtpError> {
        match self.codec {
            VideoCodec::H264 => self.depacketize_h264(payload),
            VideoCodec::H265 => self.depacketize_h265(payload),
        }
    }

    fn depacketize_h264(&mut self, payload: Bytes) -> Result<(), RtpError> {
        let Some(&hdr) = payload.first() else {
            return Err(self.bad("empty payload"));
        };
        match h264::nal_type(hdr) {
            // Single NAL unit: no copy.
            1..=23 => {
                self.add_nal(payload);
                Ok(())
            }
            h264::NAL_STAP_A => self.aggregation(payload, 1, 0),
            h264::NAL_FU_A => {
                let fu = *payload.get(1).ok_or_else(|| self.bad("short FU-A"))?;
                self.fragment(&payload, 2, fu & 0x80 != 0, fu & 0x40 != 0, |b| {
                    b.put_u8((hdr & 0xe0) | (fu & 0x1f));
                })
            }
            25..=27 | 29 => Err(RtpError::Unsupported { codec: "H264", reason: "STAP-B/MTAP/FU-B (interleaved mode)" }),
            _ => Err(self.bad("reserved NAL type")),
        }
    }

    fn depacketize_h265(&mut self, payload: Bytes) -> Result<(), RtpError> {
        let Some(&[h0, h1]) = payload.first_chunk::<2>() else {
            return Err(self.bad("short payload"));
        };
        match h265::nal_type(h0) {
            0..=47 => {
                self.add_nal(payload);
                Ok(())
            }
            h265::NAL_AP => {
                let (donl, dond) = if self.donl { (2, 1) } else { (0, 0) };
                self.aggregation(payload, 2 + donl, dond)
            }
            h265::NAL_FU => {
                let fu = *payload.get(2).ok_or_else(|| self.bad("short FU"))?;
                let start = fu & 0x80 != 0;
                // DONL follows the FU header in the first fragment only.
                let skip = if start && self.donl { 5 } else { 3 };
                self.fragment(&payload, skip, start, fu & 0x40 != 0, |b| {
                    b.put_u8((h0 & 0x81) | ((fu & 0x3f) << 1));
                    b.put_u8(h1);
                })
            }
            h265::NAL_PACI => Err(RtpError::Unsupported { codec: "H265", reason: "PACI packets" }),
            _ => Err(self.bad("reserved NAL type")),
        }
    }

    /// STAP-A / AP: units of [16-bit size][NAL], the first at `first`, each later one after `gap` bytes of
    /// decoding order difference. Units before a malformed one are kept.
    fn aggregation(&mut self, payload: Bytes, first: usize, gap: usize) -> Result<(), RtpError> {
        let mut i = first;
        let mut n = 0;
        while i < payload.len() {
            if n > 0 {
                i += gap;
            }
            let size = match payload.get(i..i + 2) {
                Some(s) => usize::from(u16::from_be_bytes([s[0], s[1]])),
                None => return Err(self.bad("truncated aggregation unit size")),
            };
            let end = i + 2 + size;
            if size == 0 || end > payload.len() {
                return Err(self.bad("aggregation unit past end"));
            }
            self.add_nal(payload.slice(i + 2..end));
            i = end;
            n += 1;
        }
        if n == 0 {
            return Err(self.bad("empty aggregation packet"));
        }
        Ok(())
    }

    /// FU-A / FU: `data_at` is where the fragment data starts; `header` writes the rebuilt NAL header.
    fn fragment(
        &mut self,
        payload: &Bytes,
        data_at: usize,
        start: bool,
        end: bool,
        header: impl FnOnce(&mut BytesMut),
    ) -> Result<(), RtpError> {
        let data = payload.get(data_at..).ok_or_else(|| self.bad("short fragment"))?;
        if start {
            let dropped = self.fu.take().is_some();
            let mut b = BytesMut::with_capacity((data.len() + 2) * 4);
            header(&mut b);
            b.put_slice(data);
            if end {
                // Start and end in one packet is not allowed by the RFCs, but the NAL is whole: keep it.
                self.add_nal(b.freeze());
            } else {
                self.fu = Some(b);
            }
            return if dropped { Err(self.lost()) } else { Ok(()) };
        }
        let Some(b) = self.fu.as_mut() else {
            // Middle or end without a start: its start was lost. Wait for the next start.
            return Err(self.lost());
        };
        b.put_slice(data);
        if end {
            if let Some(b) = self.fu.take() {
                self.add_nal(b.freeze());
            }
        }
        Ok(())
    }

    fn reset_au(&mut self) {
        self.unit.started = false;
        self.nals.clear();
        self.unit.packets.clear();
        self.size = 0;
        self.fu = None;
    }

    /// Ends the access unit. One without picture data (parameter sets or SEI sent ahead, or nothing left
    /// after a loss) is kept, packets included, and joins the next one.
    fn flush_au(&mut self, out: &mut Vec<Frame>) {
        self.unit.started = false;
        let codec = self.codec;
        let mut keyframe = false;
        let mut has_vcl = false;
        let (mut vps, mut sps, mut pps) = (false, false, false);
        for nal in &self.nals {
            match role(codec, codec.nal_type(nal)) {
                Role::Vcl(key) => {
                    has_vcl = true;
                    keyframe |= key;
                }
                Role::Vps => vps = true,
                Role::Sps => sps = true,
                Role::Pps => pps = true,
                Role::Dropped | Role::Other => {}
            }
        }
        if !has_vcl {
            return;
        }
        // In-band parameter sets replace the stored ones.
        let is = |r: Role| move |n: &&Bytes| role(codec, codec.nal_type(n)) == r;
        if vps {
            self.vps = self.nals.iter().filter(is(Role::Vps)).cloned().collect();
        }
        if sps {
            self.sps = self.nals.iter().filter(is(Role::Sps)).cloned().collect();
        }
        if pps {
            self.pps = self.nals.iter().filter(is(Role::Pps)).cloned().collect();
        }
        let mut payload;
        if keyframe {
            // Parameter sets first (the AU's own, or the latest seen), then the rest in order.
            let params = self.vps.iter().chain(&self.sps).chain(&self.pps);
            let rest = self
                .nals
                .iter()
                .filter(|n| !matches!(role(codec, codec.nal_type(n)), Role::Vps | Role::Sps | Role::Pps));
            let size: usize = params.clone().chain(rest.clone()).map(|n| 4 + n.len()).sum();
            payload = BytesMut::with_capacity(size);
            for nal in params.chain(rest) {
                put_nal(&mut payload, nal);
            }
        } else {
            payload = BytesMut::with_capacity(self.size);
            for nal in &self.nals {
                put_nal(&mut payload, nal);
            }
        }
        self.nals.clear();
        self.size = 0;
        out.push(Frame {
            timestamp: self.unit.timestamp,
            keyframe,
            payload: payload.freeze(),
            rtp: std::mem::take(&mut self.unit.packets),
        });
    }
}

fn put_nal(out: &mut BytesMut, nal: &[u8]) {
    // NAL units are bounded by MAX_FRAME_BYTES, far below 4 GiB.
    out.put_u32(nal.len() as u32);
    out.put_slice(nal);
}

impl Reassembler for VideoDepacketizer {
    fn unit(&mut self) -> &mut FrameUnit {
        &mut self.unit
    }

    fn drop_fragment(&mut self) -> bool {
        self.fu.take().is_some()
    }

    fn pending_bytes(&self) -> usize {
        self.size + self.fu.as_ref().map_or(0, |b| b.len())
    }

    fn add_payload(&mut self, payload: Bytes) -> Result<(), RtpError> {
        self.depacketize(payload)
    }

    fn end_frame(&mut self, out: &mut Vec<Frame>) {
        self.flush_au(out)
    }

    fn reset_frame(&mut self) {
        self.reset_au()
    }

    fn lost(&self) -> RtpError {
        VideoDepacketizer::lost(self)
    }

    fn codec_name(&self) -> &'static str {
        self.codec.name()
    }
}

impl Depacketizer for VideoDepacketizer {
    fn push(&mut self, pkt: RtpPacket, out: &mut Vec<Frame>) -> Result<(), RtpError> {
        push_reassembled(self, pkt, out)
    }

    fn flush(&mut self, out: &mut Vec<Frame>) {
        self.fu = None;
        self.flush_au(out);
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{assert_packets_kept, pkt};
    use super::*;
    use media::h264::avcc_nals;

    const SPS: &[u8] = &[0x67, 0x42, 0xc0, 0x1e, 0xd9];
    const PPS: &[u8] = &[0x68, 0xcb, 0x8c, 0xb2];

    fn nals(f: &Frame) -> Vec<Vec<u8>> {
        avcc_nals(&f.payload).map(|n| n.to_vec()).collect()
    }

    fn run(d: &mut VideoDepacketizer, input: &[RtpPacket]) -> (Vec<Frame>, Vec<RtpError>) {
        let mut out = Vec::new();
        let mut errs = Vec::new();
        for p in input {
            if let Err(e) = d.push(p.clone(), &mut out) {
                errs.push(e);
            }
        }
        (out, errs)
    }

    fn stap_a(units: &[&[u8]]) -> Vec<u8> {
        let mut v = vec![0x78];
        for u in units {
            v.extend_from_slice(&(u.len() as u16).to_be_bytes());
            v.extend_from_slice(u);
        }
        v
    }

    #[test]
    fn h264_single_stap_fu() {
        let mut d = VideoDepacketizer::h264("");
        let input = [
            pkt(1, 0, false, &stap_a(&[SPS, PPS])),
            pkt(2, 0, false, &[0x09, 0xf0]),       // AUD: dropped
            pkt(3, 0, false, &[0x7c, 0x85, 1, 2]), // FU-A start, IDR
            pkt(4, 0, false, &[0x7c, 0x05, 3]),    // middle
            pkt(5, 0, true, &[0x7c, 0x45, 4]),     // end
            pkt(6, 3000, true, &[0x41, 9, 9]),     // single NAL P slice
        ];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out.len(), 2);
        assert!(out[0].keyframe);
        assert_eq!(nals(&out[0]), vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 1, 2, 3, 4]]);
        assert!(!out[1].keyframe);
        assert_eq!((out[1].timestamp, nals(&out[1])), (3000, vec![vec![0x41, 9, 9]]));
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn h264_lost_fragment_resyncs() {
        let mut d = VideoDepacketizer::h264("");
        let input = [
            pkt(1, 0, false, &[0x7c, 0x85, 1]), // start of IDR
            // seq 2 lost
            pkt(3, 0, false, &[0x7c, 0x05, 3]),
            pkt(4, 0, false, &[0x7c, 0x45, 4]),    // end of the broken NAL
            pkt(5, 0, true, &[0x7c, 0x85, 5]),     // start with marker: incomplete, dropped
            pkt(6, 3000, false, &[0x7c, 0x01, 6]), // middle without start
            pkt(7, 3000, true, &[0x41, 7]),
        ];
        let (out, errs) = run(&mut d, &input);
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs.iter().all(|e| matches!(e, RtpError::FragmentLost { .. })));
        // The first AU lost everything; its packets ride with the next frame.
        assert_eq!(out.len(), 1);
        assert_eq!(nals(&out[0]), vec![vec![0x41, 7]]);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn h264_timestamp_boundary_and_sprop() {
        // No marker bits at all; parameter sets only in the fmtp.
        let mut d = VideoDepacketizer::h264("packetization-mode=1;sprop-parameter-sets=Z0LAHtk=,aMuMsg==");
        let input = [pkt(1, 0, false, &[0x65, 1]), pkt(2, 0, false, &[0x65, 2]), pkt(3, 10, false, &[0x41, 3])];
        let (mut out, errs) = run(&mut d, &input);
        assert!(errs.is_empty());
        assert_eq!(out.len(), 1);
        assert_eq!(nals(&out[0]), vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 1], vec![0x65, 2]]);
        d.flush(&mut out);
        assert_eq!(out.len(), 2);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn h264_params_ahead_join_next_frame() {
        // Parameter sets with their own timestamp and marker, then the IDR.
        let mut d = VideoDepacketizer::h264("");
        let input = [pkt(1, 0, true, SPS), pkt(2, 0, true, PPS), pkt(3, 5, true, &[0x65, 1])];
        let (out, _) = run(&mut d, &input);
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].timestamp, out[0].keyframe), (5, true));
        assert_eq!(nals(&out[0]), vec![SPS.to_vec(), PPS.to_vec(), vec![0x65, 1]]);
        assert_packets_kept(&input, &out);
        // The next keyframe without in-band parameter sets gets the stored ones.
        let (out, _) = run(&mut d, &[pkt(4, 10, true, &[0x65, 2])]);
        assert_eq!(nals(&out[0]).len(), 3);
    }

    #[test]
    fn h264_malformed() {
        let mut d = VideoDepacketizer::h264("");
        let bad: [&[u8]; 7] = [&[], &[0x7c], &[0x78, 0, 5, 1], &[0x78, 0, 0], &[0x78, 0], &[0x78], &[0x79, 1, 2]];
        for (i, b) in bad.iter().enumerate() {
            assert!(d.push(pkt(i as u16, 0, false, b), &mut Vec::new()).is_err(), "{b:?}");
        }
        // STAP-A with one good unit then a truncated one keeps the good one.
        let mut out = Vec::new();
        let mut p = stap_a(&[&[0x41, 1]]);
        p.extend_from_slice(&[0, 9, 1]);
        assert!(d.push(pkt(20, 1, true, &p), &mut out).is_err());
        assert_eq!(nals(&out[0]), vec![vec![0x41, 1]]);
    }

    #[test]
    fn oversized_frame_dropped() {
        let mut d = VideoDepacketizer::h264("");
        let chunk = vec![0u8; 60000];
        let mut out = Vec::new();
        let mut too_large = 0;
        let mut seq = 0u16;
        let mut push = |d: &mut VideoDepacketizer, ts, marker, payload: &[u8], out: &mut Vec<Frame>| {
            seq = seq.wrapping_add(1);
            if let Err(RtpError::FrameTooLarge { .. }) = d.push(pkt(seq, ts, marker, payload), out) {
                too_large += 1;
            }
        };
        let mut start = vec![0x7c, 0x85];
        start.extend_from_slice(&chunk);
        push(&mut d, 0, false, &start, &mut out);
        let mut mid = vec![0x7c, 0x05];
        mid.extend_from_slice(&chunk);
        for _ in 0..200 {
            push(&mut d, 0, false, &mid, &mut out);
        }
        push(&mut d, 0, true, &[0x7c, 0x45, 1], &mut out);
        push(&mut d, 1, true, &[0x41, 1], &mut out);
        assert_eq!(too_large, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].timestamp, 1);
    }

    fn h265_nal(t: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![t << 1, 1];
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn h265_ap_fu() {
        let vps = h265_nal(32, &[1]);
        let sps = h265_nal(33, &[2]);
        let pps = h265_nal(34, &[3]);
        let mut ap = vec![48 << 1, 1];
        for u in [&vps, &sps, &pps] {
            ap.extend_from_slice(&(u.len() as u16).to_be_bytes());
            ap.extend_from_slice(u);
        }
        let input = [
            pkt(1, 0, false, &ap),
            pkt(2, 0, false, &[49 << 1, 1, 0x80 | 19, 0xa, 0xb]), // FU start IDR_W_RADL
            pkt(3, 0, true, &[49 << 1, 1, 0x40 | 19, 0xc]),
            pkt(4, 3000, true, &h265_nal(1, &[7])),
            pkt(5, 6000, true, &h265_nal(21, &[8])), // CRA without in-band parameter sets
        ];
        let mut d = VideoDepacketizer::h265("");
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(out.len(), 3);
        assert!(out[0].keyframe && !out[1].keyframe && out[2].keyframe);
        assert_eq!(nals(&out[0]), vec![vps.clone(), sps.clone(), pps.clone(), h265_nal(19, &[0xa, 0xb, 0xc])]);
        assert_eq!(nals(&out[2]), vec![vps, sps, pps, h265_nal(21, &[8])]);
        assert_packets_kept(&input, &out);
    }

    #[test]
    fn h265_sprop_and_errors() {
        let fmtp = "sprop-vps=QAEMAf//AWAAAAMAkAAAAwAAAwB4lZgJ;sprop-sps=QgEBAWAAAAMAkAAAAwAAAwB4oAPAgBDlllZpJMrwFoCAAAADAIAAAAyE;sprop-pps=RAHBcrRiQA==";
        let mut d = VideoDepacketizer::h265(fmtp);
        let (out, _) = run(&mut d, &[pkt(1, 0, true, &h265_nal(20, &[1]))]);
        assert_eq!(nals(&out[0]).len(), 4);
        for b in [&[0x02][..], &[49 << 1, 1], &[48 << 1, 1, 0, 9], &[50 << 1, 1], &[60 << 1, 1]] {
            assert!(d.push(pkt(2, 1, false, b), &mut Vec::new()).is_err(), "{b:?}");
        }
    }

    #[test]
    fn h265_donl() {
        let mut d = VideoDepacketizer::h265("sprop-max-don-diff=2");
        let nal = h265_nal(1, &[5]);
        let mut ap = vec![48 << 1, 1, 0, 0]; // DONL
        ap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        ap.extend_from_slice(&nal);
        ap.push(1); // DOND
        ap.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        ap.extend_from_slice(&nal);
        let input = [
            pkt(1, 0, true, &ap),
            pkt(2, 1, false, &[49 << 1, 1, 0x80 | 1, 0, 7, 0xa]), // FU start with DONL
            pkt(3, 1, true, &[49 << 1, 1, 0x40 | 1, 0xb]),
        ];
        let (out, errs) = run(&mut d, &input);
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(nals(&out[0]), vec![nal.clone(), nal]);
        assert_eq!(nals(&out[1]), vec![h265_nal(1, &[0xa, 0xb])]);
    }
}
