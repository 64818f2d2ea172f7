//! Media a peer sends (WHIP publishers, WebRTC sources): str0m's frames turned into hub frames.

use super::*;

/// One medium a peer sends (str0m's `Event::MediaData` of `mid`), pushed into a hub track.
pub(crate) struct Incoming {
    pub(crate) mid: Mid,
    track: Arc<Track>,
    packetizer: Option<Box<dyn rtp::packetize::Packetizer>>,
    h264: bool,
    /// Last parameter sets, put in front of keyframes that come without them.
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    /// Two-way audio in another codec than the track's: the peer's codec and the converter.
    transcoder: Option<(RtcCodec, Box<crate::audio::Transcoder>)>,
    /// A microphone into a camera's backchannel: its talker id for [`Track::take_floor`].
    talker: Option<u64>,
}

/// Talker ids of microphones (unique in the process).
static TALKERS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Incoming {
    pub(crate) fn new(mid: Mid, track: Arc<Track>) -> Incoming {
        Incoming {
            mid,
            packetizer: rtp::packetize::packetizer_for(&track.codec, 1200),
            h264: track.codec.name == media::codec::H264,
            track,
            sps: None,
            pps: None,
            transcoder: None,
            talker: None,
        }
    }

    /// A peer's microphone into a backchannel track: it speaks only while it holds the track's floor
    /// (one microphone at a time).
    pub(crate) fn microphone(mut self) -> Incoming {
        self.talker = Some(TALKERS.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self
    }

    /// A medium in `from` (a microphone's Opus) converted to the track's codec (a backchannel's G.711).
    /// A pair that cannot be converted gets nothing through.
    pub(crate) fn transcoding(mid: Mid, track: Arc<Track>, from: &media::Codec) -> Incoming {
        let transcoder = match (rtc_codec(&from.name), crate::audio::Transcoder::new(from, &track.codec)) {
            (Some(codec), Ok(t)) => Some((codec, Box::new(t))),
            (_, Err(e)) => {
                tracing::warn!("webrtc: {} to {}: {e}", from.short_name(), track.codec.short_name());
                None
            }
            _ => None,
        };
        let mut incoming = Incoming::new(mid, track);
        incoming.transcoder = transcoder;
        incoming
    }

    /// Whether frames of `codec` fit the track (a peer may switch to another negotiated codec).
    pub(crate) fn accepts(&self, codec: RtcCodec) -> bool {
        match &self.transcoder {
            Some((from, _)) => *from == codec,
            None => rtc_codec(&self.track.codec.name) == Some(codec),
        }
    }

    /// One depacketized frame (`time` in the negotiated clock): converted and pushed into the track.
    pub(crate) fn push(&mut self, time: MediaTime, data: &[u8]) {
        if let Some(talker) = self.talker {
            if !self.track.take_floor(talker, std::time::Instant::now()) {
                return;
            }
        }
        if let Some((_, t)) = &mut self.transcoder {
            // Opus's clock is 48 kHz; the transcoder gives frames in the track's clock.
            let ts = time.rebase(Frequency::FORTY_EIGHT_KHZ).numer() as u32;
            let mut out = Vec::new();
            t.push(ts, data, &mut out);
            for e in out {
                let mut frame =
                    media::Frame { timestamp: e.timestamp, keyframe: true, payload: e.payload.into(), rtp: Vec::new() };
                if let Some(p) = self.packetizer.as_mut() {
                    let mut packets = Vec::new();
                    p.packetize(&frame, &mut packets);
                    frame.rtp = packets;
                }
                self.track.push(frame);
            }
            return;
        }
        // str0m's media time is in the negotiated clock; the hub wants a 32-bit RTP timestamp of the track's.
        let ts = match NonZeroU32::new(self.track.codec.clock_rate) {
            Some(rate) => time.rebase(Frequency::from_nonzero(rate)).numer(),
            None => time.numer(),
        } as u32;
        let (payload, keyframe) = if self.h264 { self.h264_access_unit(data) } else { (data.to_vec(), true) };
        if payload.is_empty() {
            return;
        }
        let mut frame = media::Frame { timestamp: ts, keyframe, payload: payload.into(), rtp: Vec::new() };
        if let Some(p) = self.packetizer.as_mut() {
            let mut packets = Vec::new();
            p.packetize(&frame, &mut packets);
            frame.rtp = packets;
        }
        self.track.push(frame);
    }

    /// Annex B access unit → AVCC payload, with SPS/PPS in front of every IDR.
    fn h264_access_unit(&mut self, data: &[u8]) -> (Vec<u8>, bool) {
        let nals: Vec<&[u8]> = media::h264::annexb_nals(data).filter(|n| !n.is_empty()).collect();
        let mut keyframe = false;
        let (mut has_sps, mut has_pps) = (false, false);
        for n in &nals {
            match media::h264::nal_type(n[0]) {
                5 => keyframe = true,
                7 => {
                    has_sps = true;
                    self.sps = Some(n.to_vec());
                }
                8 => {
                    has_pps = true;
                    self.pps = Some(n.to_vec());
                }
                _ => {}
            }
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut put = |n: &[u8]| {
            out.extend_from_slice(&(n.len() as u32).to_be_bytes());
            out.extend_from_slice(n);
        };
        if keyframe {
            if let (false, Some(sps)) = (has_sps, &self.sps) {
                put(sps);
            }
            if let (false, Some(pps)) = (has_pps, &self.pps) {
                put(pps);
            }
        }
        for n in nals {
            put(n);
        }
        (out, keyframe)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_idr_gets_parameter_sets_in_front() {
        let codec = media::Codec::new(media::codec::H264, 90_000, 0, 96);
        let mut i = Incoming::new(Mid::from("0"), Arc::new(Track::new(Kind::Video, codec, 0)));
        let (avcc, key) = i.h264_access_unit(b"\0\0\0\x01\x67\x42\0\0\0\x01\x68\xce\0\0\0\x01\x65\x88");
        assert!(key);
        assert_eq!(avcc, b"\0\0\0\x02\x67\x42\0\0\0\x02\x68\xce\0\0\0\x02\x65\x88");
        let (avcc, key) = i.h264_access_unit(b"\0\0\x01\x65\x99");
        assert!(key);
        assert_eq!(avcc, b"\0\0\0\x02\x67\x42\0\0\0\x02\x68\xce\0\0\0\x02\x65\x99");
        let (avcc, key) = i.h264_access_unit(b"\0\0\x01\x41\x01");
        assert!(!key);
        assert_eq!(avcc, b"\0\0\0\x02\x41\x01");
        assert_eq!(i.h264_access_unit(b"garbage").0, b"");
    }
}
