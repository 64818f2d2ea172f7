//! RTP and RTCP counters of one session (an RTSP publisher or reader), for `/v3/rtspsessions` and the
//! `rtsp_sessions_*` metrics: what MediaMTX shows as a session's inbound RTP loss and jitter, RTCP
//! packets each way, and the loss its readers report. Written by the session's task, read by the API.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct RtpCounters {
    /// RTP packets received from a publisher.
    pub inbound_rtp_packets: AtomicU64,
    /// Packets its sequence numbers said were sent and never came (RFC 3550 A.3), over its medias.
    pub inbound_rtp_lost: AtomicU64,
    /// Datagrams or interleaved frames on an RTP channel that are not RTP.
    pub inbound_rtp_in_error: AtomicU64,
    /// Interarrival jitter (RFC 3550 A.8) averaged over the medias, in RTP timestamp units (`f64` bits).
    inbound_rtp_jitter: AtomicU64,
    /// RTCP compounds received (publishers' sender reports, readers' receiver reports).
    pub inbound_rtcp_packets: AtomicU64,
    pub inbound_rtcp_in_error: AtomicU64,
    /// RTCP compounds sent (sender reports to readers).
    pub outbound_rtcp_packets: AtomicU64,
    /// Packets a reader's receiver reports say it lost, summed over our medias' latest reports.
    pub outbound_rtp_reported_lost: AtomicU64,
}

impl RtpCounters {
    pub fn jitter(&self) -> f64 {
        f64::from_bits(self.inbound_rtp_jitter.load(Relaxed))
    }

    pub fn set_jitter(&self, jitter: f64) {
        self.inbound_rtp_jitter.store(jitter.to_bits(), Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Relaxed)
    }

    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }
}
