//! RTSP multicast delivery (MediaMTX's `multicast` transport: `multicastIPRange`, `multicastRTPPort`,
//! `multicastRTCPPort`; camrelay's `rtsp.multicast_ip_range`, `multicast_rtp_port`,
//! `multicast_rtcp_port`).
//!
//! A reader whose SETUP asks for `RTP/AVP;multicast` is given the group of its stream: one group per
//! stream and track selection (the URL's query), an address taken from the range, shared by every
//! multicast reader of it. The group is a hub reader of its own whose frames are sent once per packet
//! to `group:rtp_port` (sender reports to `group:rtcp_port`), from the source's task as the RTSP/TCP
//! fast path does ([`DirectSink`]); the readers' sessions only hold the group. The group ends (and its
//! address is free again) when its last reader session lets go of it.
//!
//! Publishing over multicast is refused, as MediaMTX does (its multicast transport is for readers).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use media::{Frame, MediaFilter};
use tokio_util::sync::CancellationToken;

use crate::hub::reader::{DirectSink, Offer};
use crate::hub::{Hub, Reader, ReaderShared, Track};

/// The TTL of the packets sent to a group (the reply's `ttl=`; MediaMTX's is 16 too).
pub const TTL: u32 = 16;
/// RTCP sender report interval per track.
const SR_INTERVAL: Duration = Duration::from_secs(5);
/// How often the group's packet and byte counts go to its reader's shared counters.
const REPORT_INTERVAL: Duration = Duration::from_millis(250);
/// Groups at once (each holds a hub reader and a socket); more readers of other streams are refused.
pub const MAX_GROUPS: usize = 1024;

/// Parses an IPv4 multicast range `A.B.C.D/N` (N from 4 to 30, inside 224.0.0.0/4). The error says
/// what is wrong.
pub fn parse_range(s: &str) -> Result<(Ipv4Addr, u8), String> {
    let (ip, bits) = s.trim().split_once('/').ok_or_else(|| format!("invalid IP range {s:?}: expected A.B.C.D/N"))?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| format!("invalid IP range {s:?}: {ip:?} is not an IPv4 address"))?;
    let bits: u8 = bits.parse().map_err(|_| format!("invalid IP range {s:?}: {bits:?} is not a prefix length"))?;
    if !(4..=30).contains(&bits) {
        return Err(format!("invalid IP range {s:?}: the prefix length must be from 4 to 30"));
    }
    let mask = u32::MAX << (32 - bits);
    let net = Ipv4Addr::from(u32::from(ip) & mask);
    if !net.is_multicast() {
        return Err(format!("invalid IP range {s:?}: not a multicast range (224.0.0.0/4)"));
    }
    Ok((net, bits))
}

/// The multicast side of the RTSP server: the range, the ports and the live groups.
pub struct Multicast {
    net: Ipv4Addr,
    bits: u8,
    pub rtp_port: u16,
    pub rtcp_port: u16,
    groups: Mutex<HashMap<String, Weak<Group>>>,
}

/// One multicast group: the address its readers were told, and what sends to it.
pub struct Group {
    pub ip: Ipv4Addr,
    key: String,
    owner: Weak<Multicast>,
    /// The payload type and SSRC of each track, in the reader's track order.
    pub tracks: Vec<(Arc<Track>, u8, u32)>,
    /// Cancelled when the stream ends (the sessions end then), or the group is dropped.
    pub ended: CancellationToken,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.ended.cancel();
        if let Some(owner) = self.owner.upgrade() {
            let mut groups = owner.groups.lock().unwrap_or_else(|e| e.into_inner());
            // Only our own entry: a new group of the same key may already have replaced it.
            if groups.get(&self.key).is_some_and(|w| w.strong_count() == 0) {
                groups.remove(&self.key);
            }
        }
        tracing::info!(module = "rtsp", group = %self.ip, "multicast group closed");
    }
}

impl Multicast {
    /// `None` when multicast is off (an empty range).
    pub fn new(range: &str, rtp_port: u16, rtcp_port: u16) -> Result<Option<Multicast>, String> {
        if range.trim().is_empty() {
            return Ok(None);
        }
        let (net, bits) = parse_range(range)?;
        Ok(Some(Multicast { net, bits, rtp_port, rtcp_port, groups: Mutex::default() }))
    }

    /// The group of `stream` for readers with this `query` (its track selection), created (with a hub
    /// reader of its own, subscribed with `filters`) when none is live.
    pub async fn join(
        self: &Arc<Self>,
        hub: &Hub,
        stream: &str,
        query: &str,
        filters: &[MediaFilter],
    ) -> Result<Arc<Group>, String> {
        let key = format!("{stream}?{query}");
        if let Some(g) = self.lookup(&key) {
            return Ok(g);
        }
        let shared = Arc::new(ReaderShared::new("multicast", String::new()));
        let reader =
            hub.subscribe(stream, filters, shared, false).await.map_err(|e| format!("stream {stream}: {e}"))?;
        // Someone may have made the group while we subscribed: theirs wins, ours is dropped.
        let mut groups = self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(g) = groups.get(&key).and_then(Weak::upgrade) {
            return Ok(g);
        }
        groups.retain(|_, w| w.strong_count() > 0);
        if groups.len() >= MAX_GROUPS {
            return Err(format!("too many multicast groups ({MAX_GROUPS})"));
        }
        let used: Vec<Ipv4Addr> = groups.values().filter_map(Weak::upgrade).map(|g| g.ip).collect();
        let ip = self
            .free_address(&used)
            .ok_or_else(|| format!("no free address left in the multicast range {}/{}", self.net, self.bits))?;
        let group = Group::start(self, key.clone(), ip, reader).map_err(|e| format!("multicast group {ip}: {e}"))?;
        groups.insert(key, Arc::downgrade(&group));
        tracing::info!(module = "rtsp", stream = %stream, group = %ip, rtp_port = self.rtp_port, "multicast group opened");
        Ok(group)
    }

    fn lookup(&self, key: &str) -> Option<Arc<Group>> {
        self.groups.lock().unwrap_or_else(|e| e.into_inner()).get(key).and_then(Weak::upgrade)
    }

    /// The first address of the range (network and broadcast addresses excluded) not in `used`.
    fn free_address(&self, used: &[Ipv4Addr]) -> Option<Ipv4Addr> {
        let first = u32::from(self.net) + 1;
        let last = u32::from(self.net) | (u32::MAX >> self.bits);
        // Bounded: at most MAX_GROUPS are in use, so one of the first MAX_GROUPS + 1 is free.
        (first..last).take(MAX_GROUPS + 1).map(Ipv4Addr::from).find(|ip| !used.contains(ip))
    }
}

impl Group {
    fn start(owner: &Arc<Multicast>, key: String, ip: Ipv4Addr, mut reader: Reader) -> std::io::Result<Arc<Group>> {
        let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        socket.set_multicast_ttl_v4(TTL)?;
        socket.set_multicast_loop_v4(true)?;
        socket.set_nonblocking(true)?;
        let tracks: Vec<(Arc<Track>, u8, u32)> = reader
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| (t.track.clone(), super::payload_type_for(&t.codec, i), rand::random()))
            .collect();
        let out = tracks
            .iter()
            .map(|(_, pt, ssrc)| OutTrack {
                payload_type: *pt,
                ssrc: *ssrc,
                next_seq: rand::random(),
                ts_offset: None,
                packets: 0,
                octets: 0,
                next_sr: None,
            })
            .collect();
        let sink = Arc::new(GroupSink {
            socket,
            rtp: SocketAddr::V4(SocketAddrV4::new(ip, owner.rtp_port)),
            rtcp: SocketAddr::V4(SocketAddrV4::new(ip, owner.rtcp_port)),
            state: Mutex::new(SinkState {
                out,
                tracks: tracks.iter().map(|t| t.0.clone()).collect(),
                buf: Vec::with_capacity(1500),
                unreported: (0, 0),
                next_report: None,
            }),
            shared: reader.shared.clone(),
        });
        let ended = CancellationToken::new();
        reader.attach_sink(sink);
        let group = Arc::new(Group { ip, key, owner: Arc::downgrade(owner), tracks, ended: ended.clone() });
        // The reader lives until the stream ends or the group goes (its last session let go).
        tokio::spawn(async move {
            tokio::select! {
                _ = ended.cancelled() => {}
                _ = async { while reader.queue.recv().await.is_some() {} } => ended.cancel(),
            }
            drop(reader);
        });
        Ok(group)
    }
}

struct OutTrack {
    payload_type: u8,
    ssrc: u32,
    next_seq: u16,
    ts_offset: Option<u32>,
    packets: u32,
    octets: u32,
    next_sr: Option<Instant>,
}

struct SinkState {
    out: Vec<OutTrack>,
    tracks: Vec<Arc<Track>>,
    buf: Vec<u8>,
    unreported: (u64, u64),
    next_report: Option<Instant>,
}

/// Sends a group's packets, one datagram per RTP packet, from the source's task.
struct GroupSink {
    socket: UdpSocket,
    rtp: SocketAddr,
    rtcp: SocketAddr,
    state: Mutex<SinkState>,
    shared: Arc<ReaderShared>,
}

impl DirectSink for GroupSink {
    fn offer(&self, slot: usize, frame: &Arc<Frame>, arrived: Instant) -> Offer {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let SinkState { out, tracks, buf, unreported, next_report } = &mut *st;
        let Some(o) = out.get_mut(slot) else { return Offer::Taken };
        let Some(first) = frame.rtp.first() else { return Offer::Taken };
        // Timestamps start at a random base, as a unicast reader's do.
        let offset = *o.ts_offset.get_or_insert_with(|| rand::random::<u32>().wrapping_sub(first.timestamp));
        if o.next_sr.is_none_or(|t| arrived >= t) {
            o.next_sr = Some(arrived + SR_INTERVAL);
            let wallclock =
                tracks.get(slot).and_then(|t| t.wallclock_for(frame.timestamp)).unwrap_or_else(SystemTime::now);
            let report = rtp::rtcp::SenderReport {
                ssrc: o.ssrc,
                ntp: rtp::rtcp::ntp_from_system_time(wallclock),
                rtp_timestamp: frame.timestamp.wrapping_add(offset),
                packet_count: o.packets,
                octet_count: o.octets,
            };
            let _ = self.socket.send_to(&rtp::rtcp::build_sender_report(&report, "camrelay"), self.rtcp);
        }
        let mut payload_bytes = 0usize;
        for p in &frame.rtp {
            let mut header = [0u8; 12];
            rtp::packet::write_header(
                &mut header,
                p.marker,
                o.payload_type,
                o.next_seq,
                p.timestamp.wrapping_add(offset),
                o.ssrc,
            );
            o.next_seq = o.next_seq.wrapping_add(1);
            buf.clear();
            buf.extend_from_slice(&header);
            buf.extend_from_slice(&p.payload);
            // A full socket buffer drops the packet: multicast readers tolerate loss as UDP ones do.
            if self.socket.send_to(buf, self.rtp).is_err() {
                self.shared.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            payload_bytes += p.payload.len();
        }
        let packets = frame.rtp.len();
        o.packets = o.packets.wrapping_add(packets as u32);
        o.octets = o.octets.wrapping_add(payload_bytes as u32);
        unreported.0 += packets as u64;
        unreported.1 += (12 * packets + payload_bytes) as u64;
        if next_report.is_none_or(|t| arrived >= t) {
            self.shared.count_sent(unreported.0, unreported.1);
            *unreported = (0, 0);
            *next_report = Some(arrived + REPORT_INTERVAL);
        }
        Offer::Taken
    }
}

impl Drop for GroupSink {
    fn drop(&mut self) {
        let st = self.state.get_mut().unwrap_or_else(|e| e.into_inner());
        if st.unreported != (0, 0) {
            self.shared.count_sent(st.unreported.0, st.unreported.1);
        }
    }
}

/// What a multicast reader's own hub reader is attached to: it takes every frame and sends nothing
/// (the group sends), so the session costs nothing per frame yet still learns when the stream ends or
/// it is kicked (its queue closes).
pub struct Discard;

impl DirectSink for Discard {
    fn offer(&self, _slot: usize, _frame: &Arc<Frame>, _arrived: Instant) -> Offer {
        Offer::Taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("224.1.0.0/16").unwrap(), (Ipv4Addr::new(224, 1, 0, 0), 16));
        assert_eq!(parse_range(" 239.255.7.9/24 ").unwrap(), (Ipv4Addr::new(239, 255, 7, 0), 24));
        for (bad, says) in [
            ("224.1.0.0", "expected A.B.C.D/N"),
            ("10.0.0.0/8", "not a multicast range"),
            ("224.1.0.0/31", "from 4 to 30"),
            ("224.1.0.x/16", "not an IPv4 address"),
            ("224.1.0.0/x", "not a prefix length"),
        ] {
            let e = parse_range(bad).unwrap_err();
            assert!(e.contains(says) && e.contains(bad), "{bad}: {e}");
        }
    }

    #[test]
    fn addresses_skip_the_network_address_and_those_in_use() {
        let m = Multicast::new("224.1.0.0/30", 8002, 8003).unwrap().unwrap();
        assert_eq!(m.free_address(&[]), Some(Ipv4Addr::new(224, 1, 0, 1)));
        assert_eq!(m.free_address(&[Ipv4Addr::new(224, 1, 0, 1)]), Some(Ipv4Addr::new(224, 1, 0, 2)));
        let all = [Ipv4Addr::new(224, 1, 0, 1), Ipv4Addr::new(224, 1, 0, 2)];
        assert_eq!(m.free_address(&all), None, "224.1.0.3 is the broadcast address of the /30");
        assert!(Multicast::new("", 8002, 8003).unwrap().is_none(), "an empty range is off");
    }
}
