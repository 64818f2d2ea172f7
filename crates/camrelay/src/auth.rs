//! The one place that decides whether a client may do something: "may this identity do this action
//! on this path over this protocol from this address". Every server asks [`Auth::check`] with what
//! it knows and renders the answer its own way (HTTP 401, an RTSP challenge...); no server compares
//! passwords or applies the loopback exemption itself.
//!
//! Today's rules are go2rtc's: one user for the HTTP API (`api.username`/`password`, which also guards
//! every output and signalling endpoint on the API port) and one for RTSP (`rtsp.username`/`password`,
//! reading and publishing), each optional, with local clients (loopback, the API's unix socket) let in
//! unless `local_auth`. MediaMTX's users × actions × paths × IP ranges, HTTP callbacks and JWT fill in
//! the same [`Auth::check`] later: callers already say which action on which path.

use std::net::IpAddr;

use crate::config::Config;

/// What a client wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Watch or listen to a stream (any output protocol).
    Read,
    /// Push media into a stream.
    Publish,
    /// Read recordings.
    Playback,
    /// Use the control API.
    Api,
    /// Scrape metrics.
    Metrics,
}

/// The protocol a request arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// The HTTP server of `api.listen` / `api.unix_listen` (API, HTTP outputs, WebRTC signalling).
    Http,
    Rtsp,
}

/// Where a request comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Ip(IpAddr),
    /// The API's unix socket: a local client.
    LocalSocket,
    /// Not known (an in-process caller).
    Unknown,
}

impl Origin {
    /// Loopback addresses (also IPv4-mapped) and the unix socket.
    pub fn is_local(self) -> bool {
        match self {
            Origin::Ip(IpAddr::V4(ip)) => ip.is_loopback(),
            Origin::Ip(IpAddr::V6(ip)) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
            Origin::LocalSocket => true,
            Origin::Unknown => false,
        }
    }
}

/// What the client presented to prove who it is.
pub enum Presented<'a> {
    Nothing,
    /// Checks a configured (user, password) pair against what the client sent: a Basic header, an
    /// RTSP Digest response (which needs the password to recompute), query parameters.
    Proof(&'a dyn Fn(&str, &str) -> bool),
}

/// One question to [`Auth::check`].
pub struct AuthRequest<'a> {
    pub action: Action,
    /// The stream (or API path) the action is on.
    pub path: &'a str,
    pub protocol: Protocol,
    pub origin: Origin,
    pub presented: Presented<'a>,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Denied {
    /// No credentials were presented and some are required: ask for them (401 with a challenge).
    CredentialsRequired,
    /// Credentials were presented and are wrong.
    WrongCredentials,
}

/// One user of one protocol, with the actions they may take.
#[derive(Clone, Debug)]
struct User {
    protocol: Protocol,
    name: String,
    password: String,
    actions: &'static [Action],
    /// Local clients need no credentials (go2rtc's default; `local_auth: true` turns it off).
    local_exempt: bool,
}

/// The authorization rules of the running config.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    users: Vec<User>,
}

const HTTP_ACTIONS: &[Action] = &[Action::Read, Action::Publish, Action::Playback, Action::Api, Action::Metrics];
const RTSP_ACTIONS: &[Action] = &[Action::Read, Action::Publish];

impl Auth {
    /// go2rtc's rules from the `api:` and `rtsp:` sections.
    pub fn from_config(config: &Config) -> Auth {
        let mut users = Vec::new();
        if !config.api.username.is_empty() {
            users.push(User {
                protocol: Protocol::Http,
                name: config.api.username.clone(),
                password: config.api.password.clone(),
                actions: HTTP_ACTIONS,
                local_exempt: !config.api.local_auth,
            });
        }
        if !config.rtsp.username.is_empty() {
            users.push(User {
                protocol: Protocol::Rtsp,
                name: config.rtsp.username.clone(),
                password: config.rtsp.password.clone(),
                actions: RTSP_ACTIONS,
                local_exempt: !config.rtsp.local_auth,
            });
        }
        Auth { users }
    }

    /// Whether `request` may proceed.
    pub fn check(&self, request: &AuthRequest) -> Result<(), Denied> {
        let users: Vec<&User> = self.users.iter().filter(|u| u.protocol == request.protocol).collect();
        // No user for this protocol: open, as go2rtc without a username.
        if users.is_empty() {
            return Ok(());
        }
        let local = request.origin.is_local();
        if users.iter().any(|u| u.local_exempt && local && u.actions.contains(&request.action)) {
            return Ok(());
        }
        match &request.presented {
            Presented::Nothing => Err(Denied::CredentialsRequired),
            Presented::Proof(proves) => {
                let ok = users.iter().any(|u| u.actions.contains(&request.action) && proves(&u.name, &u.password));
                if ok {
                    Ok(())
                } else {
                    Err(Denied::WrongCredentials)
                }
            }
        }
    }

    /// Whether a client from `origin` needs credentials at all for `action` over `protocol` (servers
    /// that authenticate a connection once, like RTSP, skip the challenge when not).
    pub fn needs_credentials(&self, protocol: Protocol, action: Action, origin: Origin) -> bool {
        self.check(&AuthRequest { action, path: "", protocol, origin, presented: Presented::Nothing }).is_err()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(yaml: &str) -> Auth {
        let loaded = crate::config::load(&[yaml.to_string()], std::path::Path::new("/nonexistent"), &|_| None).unwrap();
        Auth::from_config(&loaded.config)
    }

    fn ask(
        auth: &Auth,
        protocol: Protocol,
        action: Action,
        origin: Origin,
        creds: Option<(&str, &str)>,
    ) -> Result<(), Denied> {
        let proof = |u: &str, p: &str| creds.is_some_and(|(cu, cp)| cu == u && cp == p);
        let presented = if creds.is_some() { Presented::Proof(&proof) } else { Presented::Nothing };
        auth.check(&AuthRequest { action, path: "cam", protocol, origin, presented })
    }

    const REMOTE: Origin = Origin::Ip(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));
    const LOOPBACK: Origin = Origin::Ip(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

    #[test]
    fn go2rtc_rules() {
        let open = auth("{}");
        assert_eq!(ask(&open, Protocol::Http, Action::Api, REMOTE, None), Ok(()));
        assert_eq!(ask(&open, Protocol::Rtsp, Action::Publish, REMOTE, None), Ok(()));

        let a = auth(r#"{"api":{"username":"admin","password":"pw"},"rtsp":{"username":"cam","password":"rp"}}"#);
        assert_eq!(ask(&a, Protocol::Http, Action::Api, REMOTE, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask(&a, Protocol::Http, Action::Api, REMOTE, Some(("admin", "pw"))), Ok(()));
        assert_eq!(ask(&a, Protocol::Http, Action::Read, REMOTE, Some(("admin", "no"))), Err(Denied::WrongCredentials));
        // Each protocol has its own user.
        assert_eq!(ask(&a, Protocol::Http, Action::Api, REMOTE, Some(("cam", "rp"))), Err(Denied::WrongCredentials));
        assert_eq!(ask(&a, Protocol::Rtsp, Action::Read, REMOTE, Some(("cam", "rp"))), Ok(()));
        assert_eq!(ask(&a, Protocol::Rtsp, Action::Api, REMOTE, Some(("cam", "rp"))), Err(Denied::WrongCredentials));
        // Local clients are exempt, as in go2rtc.
        assert_eq!(ask(&a, Protocol::Http, Action::Api, LOOPBACK, None), Ok(()));
        assert_eq!(ask(&a, Protocol::Http, Action::Api, Origin::LocalSocket, None), Ok(()));
        assert_eq!(
            ask(&a, Protocol::Rtsp, Action::Read, Origin::Ip("::ffff:127.0.0.1".parse().unwrap()), None),
            Ok(())
        );
        assert!(!a.needs_credentials(Protocol::Rtsp, Action::Read, LOOPBACK));
        assert!(a.needs_credentials(Protocol::Rtsp, Action::Read, REMOTE));
        assert!(a.needs_credentials(Protocol::Http, Action::Api, Origin::Unknown));
    }

    #[test]
    fn local_auth_removes_the_exemption() {
        let a = auth(r#"{"api":{"username":"ha","password":"pw","local_auth":true}}"#);
        assert_eq!(ask(&a, Protocol::Http, Action::Api, Origin::LocalSocket, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask(&a, Protocol::Http, Action::Api, Origin::LocalSocket, Some(("ha", "pw"))), Ok(()));
        // RTSP keeps its own setting.
        assert_eq!(ask(&a, Protocol::Rtsp, Action::Read, REMOTE, None), Ok(()));
    }
}
