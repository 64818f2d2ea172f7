//! Which local candidates a session advertises: the machine's interface addresses (when bound to all
//! interfaces) or the bound address, narrowed by `webrtc.filters`, plus `webrtc.candidates` (static
//! `ip[:port]` entries and `stun:PORT`, our public address as a STUN server sees it) — each on UDP
//! and/or TCP (passive, RFC 6544) as `webrtc.listen` and `filters.networks` allow.

use crate::config::{WebrtcConfig, WebrtcFilters};
use std::net::{IpAddr, SocketAddr};
use str0m::net::TcpType;
use str0m::Candidate;

/// One advertised candidate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct LocalCandidate {
    pub addr: SocketAddr,
    pub tcp: bool,
}

impl LocalCandidate {
    pub fn to_str0m(self) -> Result<Candidate, str0m::error::IceError> {
        if self.tcp {
            Candidate::builder().tcp().host(self.addr).tcptype(TcpType::Passive).build()
        } else {
            Candidate::host(self.addr, "udp")
        }
    }
}

/// An address of a network interface: (interface name, address).
pub(super) type InterfaceAddr = (String, IpAddr);

/// The machine's interface addresses that are up.
pub(super) fn interface_addrs() -> Vec<InterfaceAddr> {
    match if_addrs::get_if_addrs() {
        Ok(list) => {
            list.into_iter().filter(|i| i.is_oper_up() || i.is_loopback()).map(|i| (i.name.clone(), i.ip())).collect()
        }
        Err(e) => {
            tracing::warn!("webrtc: cannot list network interfaces: {e}");
            Vec::new()
        }
    }
}

/// What `gather` works from, read once at start.
pub(super) struct Inputs<'a> {
    pub config: &'a WebrtcConfig,
    /// The bound address (its port is every candidate's default port).
    pub local: SocketAddr,
    pub udp: bool,
    pub tcp: bool,
    pub interfaces: &'a [InterfaceAddr],
    /// Our public address per `stun:` candidate, when the STUN servers answered.
    pub stun: &'a [IpAddr],
    /// The addresses of host-name candidates (`cam.example.net:8555`), resolved at start.
    pub resolved: &'a [(String, Vec<SocketAddr>)],
}

pub(super) fn gather(inputs: &Inputs) -> Vec<LocalCandidate> {
    let filters = &inputs.config.filters;
    let port = inputs.local.port();
    let mut addrs: Vec<SocketAddr> = Vec::new();
    let push = |a: SocketAddr, addrs: &mut Vec<SocketAddr>| {
        if !addrs.contains(&a) {
            addrs.push(a);
        }
    };
    let bound = inputs.local.ip();
    if bound.is_unspecified() {
        for (name, ip) in inputs.interfaces {
            // An IPv4 socket reaches IPv4 addresses only; link-local IPv6 needs a scope ICE cannot carry.
            let family_ok = ip.is_ipv4() || (bound.is_ipv6() && !is_link_local_v6(ip));
            if family_ok && interface_allowed(filters, name, ip) {
                push(SocketAddr::new(*ip, port), &mut addrs);
            }
        }
    } else {
        push(inputs.local, &mut addrs);
    }
    let mut stun = inputs.stun.iter();
    for c in &inputs.config.candidates {
        let parsed = if let Some(p) = c.strip_prefix("stun:") {
            match (p.parse::<u16>(), stun.next()) {
                (Ok(p), Some(ip)) => Some(SocketAddr::new(*ip, p)),
                // Logged where the STUN query failed.
                (Ok(_), None) => continue,
                (Err(_), _) => None,
            }
        } else if let Some((_, list)) = inputs.resolved.iter().find(|(name, _)| name == c) {
            // A host name: every address it resolved to (none when resolving failed, logged there).
            for a in list {
                push(*a, &mut addrs);
            }
            continue;
        } else {
            parse_ip_candidate(c, port)
        };
        match parsed {
            Some(a) => push(a, &mut addrs),
            None => tracing::warn!("webrtc: candidate {c:?} is not ip, ip:port, host:port or stun:port (ignored)"),
        }
    }
    if !filters.candidates.is_empty() {
        addrs.retain(|a| filters.candidates.iter().any(|f| f.parse::<IpAddr>().is_ok_and(|ip| ip == a.ip())));
    }
    let mut out = Vec::new();
    for a in addrs {
        let v = if a.is_ipv4() { "4" } else { "6" };
        let network =
            |proto: &str| filters.networks.is_empty() || filters.networks.iter().any(|n| *n == format!("{proto}{v}"));
        if inputs.udp && network("udp") {
            out.push(LocalCandidate { addr: a, tcp: false });
        }
        if inputs.tcp && network("tcp") {
            out.push(LocalCandidate { addr: a, tcp: true });
        }
    }
    out
}

/// `ip` or `ip:port` (IPv6 in brackets with a port), at `port` when it has none.
fn parse_ip_candidate(c: &str, port: u16) -> Option<SocketAddr> {
    c.parse::<SocketAddr>().ok().or_else(|| c.parse::<IpAddr>().ok().map(|ip| SocketAddr::new(ip, port)))
}

/// The `candidates` entries that are host names (`my.dyndns.example:8555`, `camera.lan`): (entry, host,
/// port), the port defaulting to `port`.
pub(super) fn host_name_candidates(config: &WebrtcConfig, port: u16) -> Vec<(String, String, u16)> {
    config
        .candidates
        .iter()
        .filter(|c| !c.starts_with("stun:") && parse_ip_candidate(c, port).is_none())
        .filter_map(|c| {
            let (host, p) = match c.rsplit_once(':') {
                Some((h, p)) => (h, p.parse::<u16>().ok()?),
                None => (c.as_str(), port),
            };
            let valid = !host.is_empty() && host.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '.');
            valid.then(|| (c.clone(), host.to_string(), p))
        })
        .collect()
}

fn interface_allowed(filters: &WebrtcFilters, name: &str, ip: &IpAddr) -> bool {
    (filters.loopback || !ip.is_loopback())
        && (filters.interfaces.is_empty() || filters.interfaces.iter().any(|i| i == name))
        && (filters.ips.is_empty() || filters.ips.iter().any(|f| f.parse::<IpAddr>().is_ok_and(|f| f == *ip)))
}

fn is_link_local_v6(ip: &IpAddr) -> bool {
    matches!(ip, IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ifaces() -> Vec<InterfaceAddr> {
        vec![
            ("lo".into(), "127.0.0.1".parse().unwrap()),
            ("eth0".into(), "192.168.1.10".parse().unwrap()),
            ("eth0".into(), "fe80::1".parse().unwrap()),
            ("wg0".into(), "10.8.0.1".parse().unwrap()),
        ]
    }

    fn run(config: &WebrtcConfig, local: &str, udp: bool, tcp: bool, stun: &[IpAddr]) -> Vec<String> {
        let interfaces = ifaces();
        let resolved = [("cam.example.net:9100".to_string(), vec!["192.0.2.50:9100".parse().unwrap()])];
        let inputs = Inputs {
            config,
            local: local.parse().unwrap(),
            udp,
            tcp,
            interfaces: &interfaces,
            stun,
            resolved: &resolved,
        };
        gather(&inputs).iter().map(|c| format!("{}/{}", c.addr, if c.tcp { "tcp" } else { "udp" })).collect()
    }

    #[test]
    fn all_interfaces_become_candidates_on_both_transports() {
        let c = WebrtcConfig::default();
        assert_eq!(
            run(&c, "0.0.0.0:8555", true, false, &[]),
            ["127.0.0.1:8555/udp", "192.168.1.10:8555/udp", "10.8.0.1:8555/udp"]
        );
        assert_eq!(run(&c, "127.0.0.1:9000", true, true, &[]), ["127.0.0.1:9000/udp", "127.0.0.1:9000/tcp"]);
    }

    #[test]
    fn filters_narrow_the_candidates() {
        let mut c = WebrtcConfig::default();
        c.filters.interfaces = vec!["eth0".into()];
        assert_eq!(run(&c, "0.0.0.0:8555", true, true, &[]), ["192.168.1.10:8555/udp", "192.168.1.10:8555/tcp"]);
        let mut c = WebrtcConfig::default();
        c.filters.loopback = false;
        c.filters.networks = vec!["tcp4".into()];
        assert_eq!(run(&c, "0.0.0.0:8555", true, true, &[]), ["192.168.1.10:8555/tcp", "10.8.0.1:8555/tcp"]);
        let mut c = WebrtcConfig::default();
        c.filters.ips = vec!["10.8.0.1".into()];
        assert_eq!(run(&c, "0.0.0.0:8555", true, false, &[]), ["10.8.0.1:8555/udp"]);
    }

    #[test]
    fn static_and_stun_candidates_are_added() {
        let mut c = WebrtcConfig::default();
        c.filters.loopback = false;
        c.filters.interfaces = vec!["none".into()];
        c.candidates = vec![
            "192.0.2.1:9000".into(),
            "198.51.100.1".into(),
            "stun:8555".into(),
            "bad host".into(),
            "cam.example.net:9100".into(),
        ];
        let stun = ["203.0.113.7".parse().unwrap()];
        assert_eq!(
            run(&c, "0.0.0.0:7000", true, false, &stun),
            ["192.0.2.1:9000/udp", "198.51.100.1:7000/udp", "203.0.113.7:8555/udp", "192.0.2.50:9100/udp"]
        );
        assert_eq!(
            host_name_candidates(&c, 7000),
            [("cam.example.net:9100".to_string(), "cam.example.net".to_string(), 9100)]
        );
        // The STUN server did not answer: no stun candidate.
        assert_eq!(
            run(&c, "0.0.0.0:7000", true, false, &[]),
            ["192.0.2.1:9000/udp", "198.51.100.1:7000/udp", "192.0.2.50:9100/udp"]
        );
        c.filters.candidates = vec!["198.51.100.1".into()];
        assert_eq!(run(&c, "0.0.0.0:7000", true, false, &stun), ["198.51.100.1:7000/udp"]);
    }

    #[test]
    fn ipv6_binds_take_global_ipv6_but_not_link_local() {
        let mut interfaces = ifaces();
        interfaces.push(("eth0".into(), "2001:db8::10".parse().unwrap()));
        let c = WebrtcConfig::default();
        let inputs = Inputs {
            config: &c,
            local: "[::]:8555".parse().unwrap(),
            udp: true,
            tcp: false,
            interfaces: &interfaces,
            stun: &[],
            resolved: &[],
        };
        let got: Vec<String> = gather(&inputs).iter().map(|c| c.addr.to_string()).collect();
        assert_eq!(got, ["127.0.0.1:8555", "192.168.1.10:8555", "10.8.0.1:8555", "[2001:db8::10]:8555"]);
    }
}
