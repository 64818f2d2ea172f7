//! Bounds on a listener's open connections, in total and per source IP: the RTSP listener
//! (`rtsp.max_connections`, `rtsp.max_connections_per_ip`) and the RTMP/RTMPS listeners (fixed bounds),
//! as the WebRTC server bounds its ICE-TCP connections. A connection over a bound is closed at once,
//! before anything is read from it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Counts {
    by_ip: HashMap<IpAddr, usize>,
    total: usize,
}

/// The open connections of one listener; a [`ConnectionSlot`] holds one place until dropped.
#[derive(Clone)]
pub struct Connections {
    counts: Arc<Mutex<Counts>>,
    /// The protocol and the settings that set the bounds, for the refusal's message.
    what: &'static str,
    settings: Option<&'static str>,
}

/// One admitted connection's place; dropping it frees the place.
pub struct ConnectionSlot {
    connections: Connections,
    ip: IpAddr,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("{max} {what} connections are open{}", hint(*settings, ""))]
    Total { what: &'static str, settings: Option<&'static str>, max: usize },
    #[error("{max} {what} connections are open from {ip}{}", hint(*settings, "_per_ip"))]
    PerIp { what: &'static str, settings: Option<&'static str>, ip: IpAddr, max: usize },
}

fn hint(settings: Option<&str>, suffix: &str) -> String {
    settings.map(|s| format!(" ({s}.max_connections{suffix})")).unwrap_or_default()
}

impl Connections {
    /// `what` names the protocol (`RTSP`); `settings` the config section whose `max_connections` and
    /// `max_connections_per_ip` set the bounds, if they are configurable.
    pub fn new(what: &'static str, settings: Option<&'static str>) -> Self {
        Connections { counts: Arc::default(), what, settings }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a place for a connection from `ip`, unless a bound is reached.
    pub fn admit(&self, ip: IpAddr, max_total: usize, max_per_ip: usize) -> Result<ConnectionSlot, Refused> {
        // An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d: count it as a.b.c.d.
        let ip = ip.to_canonical();
        let mut counts = self.lock();
        if counts.total >= max_total {
            return Err(Refused::Total { what: self.what, settings: self.settings, max: max_total });
        }
        let from_ip = counts.by_ip.entry(ip).or_default();
        if *from_ip >= max_per_ip {
            return Err(Refused::PerIp { what: self.what, settings: self.settings, ip, max: max_per_ip });
        }
        *from_ip += 1;
        counts.total += 1;
        Ok(ConnectionSlot { connections: self.clone(), ip })
    }

    #[cfg(test)]
    pub fn total(&self) -> usize {
        self.lock().total
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut counts = self.connections.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(n) = counts.by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                counts.by_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_per_ip_and_in_total_and_frees_on_drop() {
        let c = Connections::new("RTSP", Some("rtsp"));
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = c.admit(a, 3, 2).unwrap();
        let a2 = c.admit(a, 3, 2).unwrap();
        let refused = c.admit(a, 3, 2).err().unwrap();
        assert_eq!(refused.to_string(), "2 RTSP connections are open from 192.0.2.1 (rtsp.max_connections_per_ip)");
        // The same client over a dual-stack socket counts as the same IP.
        assert!(c.admit("::ffff:192.0.2.1".parse().unwrap(), 3, 2).is_err());
        let b1 = c.admit(b, 3, 2).unwrap();
        let refused = c.admit(b, 3, 2).err().unwrap();
        assert_eq!(refused.to_string(), "3 RTSP connections are open (rtsp.max_connections)");
        let rtmp = Connections::new("RTMP", None);
        let _x = rtmp.admit(a, 3, 1).unwrap();
        assert_eq!(rtmp.admit(a, 3, 1).err().unwrap().to_string(), "1 RTMP connections are open from 192.0.2.1");
        assert_eq!(c.total(), 3);
        drop(a1);
        let a3 = c.admit(a, 3, 2).unwrap();
        drop((a2, a3, b1));
        assert_eq!(c.total(), 0);
        assert!(c.lock().by_ip.is_empty(), "no entry is left for a gone client");
    }
}
