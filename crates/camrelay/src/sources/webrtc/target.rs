//! The signalling URL of a `webrtc:` source (`http(s)://` for WHEP, `ws(s)://` for go2rtc's
//! WebSocket API), as the HTTP client (`crate::http_client`) sees it.

use crate::dial::Tls;
use crate::http_client;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scheme {
    Http,
    Https,
    Ws,
    Wss,
}

/// The signalling URL (after `webrtc:`, without `#` parameters).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    scheme: Scheme,
    pub(crate) host: String,
    pub(crate) port: u16,
    /// Path and query, `/` at least.
    pub(crate) path: String,
    /// `user:pass`, percent-decoded: sent as Basic auth.
    pub(crate) userinfo: Option<String>,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Target, String> {
        let (scheme, rest) =
            url.split_once("://").ok_or("not a URL (expected webrtc:http://... or webrtc:ws://...)")?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ws" => Scheme::Ws,
            "wss" => Scheme::Wss,
            s => return Err(format!("unsupported scheme {s:?} (expected http, https, ws or wss)")),
        };
        let crate::dial::Authority { userinfo, host, port, path } = crate::dial::split_authority(rest)?;
        let tls = matches!(scheme, Scheme::Https | Scheme::Wss);
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        Ok(Target { scheme, host, port, path, userinfo })
    }

    pub(super) fn tls(&self) -> bool {
        matches!(self.scheme, Scheme::Https | Scheme::Wss)
    }

    pub(super) fn websocket(&self) -> bool {
        matches!(self.scheme, Scheme::Ws | Scheme::Wss)
    }

    pub(crate) fn host_header(&self) -> String {
        crate::dial::host_header(&self.host, self.port, if self.tls() { 443 } else { 80 })
    }

    /// The URL without credentials.
    pub(crate) fn url(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ws => "ws",
            Scheme::Wss => "wss",
        };
        format!("{scheme}://{}{}", self.host_header(), self.path)
    }

    pub(crate) fn basic_auth(&self) -> Option<String> {
        self.client().authorization("GET", None)
    }

    /// The HTTP client's view of this URL.
    pub(super) fn client(&self) -> http_client::Target {
        http_client::Target {
            tls: if self.tls() { Tls::Verify } else { Tls::None },
            host: self.host.clone(),
            port: self.port,
            path: self.path.clone(),
            userinfo: self.userinfo.clone(),
        }
    }

    /// An http(s) URL the HTTP client went to (after redirects).
    pub(super) fn from_client(t: &http_client::Target) -> Target {
        let scheme = if t.tls == Tls::None { Scheme::Http } else { Scheme::Https };
        Target { scheme, host: t.host.clone(), port: t.port, path: t.path.clone(), userinfo: t.userinfo.clone() }
    }

    /// A `Location` (absolute, absolute-path or relative) against this URL
    /// ([`http_client::Target::redirect`]: credentials follow only to the same host and port).
    pub(crate) fn resolve(&self, location: &str) -> Result<Target, String> {
        let next = self.client().redirect(location)?;
        if next.tls == Tls::NoVerify {
            return Err(format!("Location {location:?} is not http(s)"));
        }
        Ok(Target::from_client(&next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_and_bad_ones_are_refused() {
        let t = Target::parse("http://127.0.0.1:1984/api/webrtc?src=cam1").unwrap();
        assert_eq!(
            (t.scheme, t.host.as_str(), t.port, t.path.as_str()),
            (Scheme::Http, "127.0.0.1", 1984, "/api/webrtc?src=cam1")
        );
        let t = Target::parse("wss://user:p%40ss@[::1]/api/ws?src=x").unwrap();
        assert_eq!((t.scheme, t.host.as_str(), t.port), (Scheme::Wss, "::1", 443));
        assert_eq!(t.userinfo.as_deref(), Some("user:p@ss"));
        assert_eq!(t.url(), "wss://[::1]/api/ws?src=x");
        assert_eq!(Target::parse("ws://h?src=x").unwrap().path, "/?src=x");
        assert!(Target::parse("rtsp://h/x").is_err());
        assert!(Target::parse("http://:80/").is_err());
        assert!(Target::parse("http://h:99999/").is_err());
        assert!(Target::parse("nonsense").is_err());
    }

    #[test]
    fn locations_resolve_against_the_offer_url() {
        let t = Target::parse("http://u:p@h:1984/api/webrtc?src=a").unwrap();
        let abs = t.resolve("/api/webrtc?id=42").unwrap();
        assert_eq!((abs.url(), abs.userinfo.as_deref()), ("http://h:1984/api/webrtc?id=42".to_string(), Some("u:p")));
        assert_eq!(t.resolve("session/1").unwrap().url(), "http://h:1984/api/session/1");
        let other = t.resolve("https://other/whep/1").unwrap();
        assert_eq!((other.url(), other.userinfo), ("https://other/whep/1".to_string(), None));
        assert!(t.resolve("ws://h/x").is_err());
    }
}
