//! Sans-IO RTSP client (the `rtsp://` source): the source URL and its `#` parameters, request building
//! with CSeq / Session / Authorization, the 401 → retry-once rule, reading a DESCRIBE reply into medias
//! with resolved SETUP URLs, the SETUP/keep-alive rules, and [`RtspClient`], the whole session as a
//! state machine (bytes and time in; bytes, deadlines and events out). No sockets and no clocks:
//! `camrelay::sources::rtsp` moves the bytes.

mod machine;

pub use machine::{ClientError, ClientOptions, Datagram, ErrorKind, Event, RtspClient, Step};

use crate::auth::{self, Challenge};
use crate::message::{Method, Request, Response};
use crate::sdp;
use crate::transport::{self, Transport};
use crate::url::{base_url, control_url, percent_decode, SessionHeader};
use media::{Direction, Kind, Media};
use std::time::Duration;

/// ONVIF Streaming spec §5.3: the `Require` tag that asks a camera for its audio backchannel.
pub const ONVIF_BACKCHANNEL: &str = "www.onvif.org/ver20/backchannel";
/// RFC 2326 §12.37 default session timeout.
pub const DEFAULT_SESSION_TIMEOUT: Duration = Duration::from_secs(60);
/// Connect and request timeout when the URL has no `#timeout=`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
/// No RTP for this long while playing is a failure (unless `#timeout=` says otherwise).
pub const DEFAULT_NO_DATA_TIMEOUT: Duration = Duration::from_secs(15);
const USER_AGENT: &str = concat!("camrelay/", env!("CARGO_PKG_VERSION"));

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an rtsp://, rtsps:// or rtspx:// URL")]
    Scheme,
    #[error("no host in URL")]
    NoHost,
    #[error("bad port `{0}`")]
    Port(String),
    #[error("bad parameter `#{0}`")]
    Param(String),
    #[error("#fingerprint= needs TLS (rtsps://)")]
    FingerprintWithoutTls,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tls {
    None,
    /// `rtsps://`: TLS with certificate verification.
    Verify,
    /// `rtspx://`: TLS without certificate verification (UniFi's self-signed certificates).
    NoVerify,
    /// `rtsps://...#fingerprint=HEX`: TLS accepting exactly the certificate with this SHA-256
    /// (MediaMTX's `sourceFingerprint`: a self-signed camera pinned).
    Pinned([u8; 32]),
}

/// A parsed source URL: `rtsp[s|x]://user:pass@host:port/path?query#param#param`.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceUrl {
    pub tls: Tls,
    pub host: String,
    pub port: u16,
    /// Percent-decoded.
    pub username: String,
    /// Percent-decoded. Secret: never log it.
    pub password: String,
    /// The URL sent to the camera: `rtsp://host:port/path?query` (no credentials, no `#` part; the
    /// scheme is `rtsps` for both TLS schemes).
    pub request_url: String,
    /// `#timeout=N` (seconds).
    pub timeout: Option<Duration>,
    /// `#media=video` / `#media=audio`: only medias of these kinds.
    pub kinds: Option<Vec<Kind>>,
    /// `#backchannel=0` turns the ONVIF backchannel request off.
    pub backchannel: bool,
    /// `#transport=udp`.
    pub udp: bool,
    /// `#transport=multicast`: the server sends to a multicast group its SETUP reply names, which the
    /// driver joins.
    pub multicast: bool,
    /// `#transport=ws://[user:pass@]host[:port]/path` (or `wss://`): RTSP tunnelled in a WebSocket
    /// (ONVIF's RTSP over WebSocket, Axis' `rtsp-over-websocket`). Secret (credentials): never log it.
    pub websocket: Option<String>,
}

impl std::fmt::Debug for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceUrl")
            .field("tls", &self.tls)
            .field("request_url", &self.request_url)
            .field("username", &self.username)
            .field("udp", &self.udp)
            .field("multicast", &self.multicast)
            .finish_non_exhaustive()
    }
}

impl SourceUrl {
    pub fn parse(url: &str) -> Result<SourceUrl, UrlError> {
        let url = url.trim();
        let (main, fragment) = url.split_once('#').unwrap_or((url, ""));
        let (scheme, rest) = main.split_once("://").ok_or(UrlError::Scheme)?;
        let (tls, default_port, out_scheme) = match scheme.to_ascii_lowercase().as_str() {
            "rtsp" => (Tls::None, 554, "rtsp"),
            "rtsps" => (Tls::Verify, 322, "rtsps"),
            "rtspx" => (Tls::NoVerify, 322, "rtsps"),
            _ => return Err(UrlError::Scheme),
        };
        let auth_end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(auth_end);
        // The password may itself contain `@` when not percent-encoded: the host follows the last one.
        let (userinfo, hostport) = match authority.rfind('@') {
            Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            Some(u) => match u.split_once(':') {
                Some((n, p)) => (percent_decode(n), percent_decode(p)),
                None => (percent_decode(u), String::new()),
            },
            None => (String::new(), String::new()),
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(UrlError::NoHost)?;
            (format!("[{h}]"), after.strip_prefix(':'))
        } else {
            match hostport.rsplit_once(':') {
                Some((h, p)) => (h.to_string(), Some(p)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(UrlError::NoHost);
        }
        let port = match port {
            None | Some("") => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| UrlError::Port(p.to_string()))?,
        };
        let mut out = SourceUrl {
            tls,
            request_url: format!("{out_scheme}://{host}:{port}{path}"),
            host,
            port,
            username,
            password,
            timeout: None,
            kinds: None,
            backchannel: true,
            udp: false,
            multicast: false,
            websocket: None,
        };
        for param in fragment.split('#').filter(|p| !p.is_empty()) {
            let (k, v) = param.split_once('=').unwrap_or((param, ""));
            match k.trim().to_ascii_lowercase().as_str() {
                "timeout" => {
                    let secs: u64 =
                        v.trim().parse().ok().filter(|s| *s > 0).ok_or_else(|| UrlError::Param(param.to_string()))?;
                    out.timeout = Some(Duration::from_secs(secs.min(3600)));
                }
                "media" => {
                    let kinds = v
                        .split(',')
                        .map(|k| match k.trim() {
                            "video" => Ok(Kind::Video),
                            "audio" => Ok(Kind::Audio),
                            _ => Err(UrlError::Param(param.to_string())),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    out.kinds = Some(kinds);
                }
                "backchannel" => out.backchannel = !matches!(v.trim(), "0" | "false" | "no" | "off"),
                "fingerprint" => {
                    if out.tls == Tls::None {
                        return Err(UrlError::FingerprintWithoutTls);
                    }
                    out.tls = Tls::Pinned(parse_sha256(v).ok_or_else(|| UrlError::Param(param.to_string()))?);
                }
                "transport" => match v.trim().to_ascii_lowercase().as_str() {
                    "udp" => (out.udp, out.multicast) = (true, false),
                    "multicast" => (out.udp, out.multicast) = (false, true),
                    "tcp" | "" => (out.udp, out.multicast) = (false, false),
                    ws if ws.starts_with("ws://") || ws.starts_with("wss://") => {
                        out.udp = false;
                        out.websocket = Some(v.trim().to_string());
                    }
                    _ => return Err(UrlError::Param(param.to_string())),
                },
                // Other sources' parameters (`#video=copy`...) are not ours to reject.
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn has_credentials(&self) -> bool {
        !self.username.is_empty() || !self.password.is_empty()
    }

    /// `#timeout`, or the default: for connecting and for each answer.
    pub fn connect_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_TIMEOUT)
    }

    pub fn no_data_timeout(&self) -> Duration {
        self.timeout.unwrap_or(DEFAULT_NO_DATA_TIMEOUT)
    }
}

/// A SHA-256 in hex (64 digits, `:` separators and case ignored): `#fingerprint=` of TLS sources.
pub fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    let digits: Vec<u8> = hex.bytes().filter(|b| *b != b':').collect();
    if digits.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks(2).enumerate() {
        let text = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(text, 16).ok()?;
    }
    Some(out)
}

/// What to do with a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx.
    Ok,
    /// A 401 that we can answer: send the same request again (built anew with [`ClientSession::request`]).
    RetryWithAuth,
    /// Any other status; the message names it (`401 Unauthorized: wrong username or password`).
    Failed { status: u16, message: String },
}

/// Client-side request state of one RTSP connection.
#[derive(Debug, Default)]
pub struct ClientSession {
    username: String,
    password: String,
    cseq: u32,
    challenge: Option<Challenge>,
    nonce_count: u32,
    /// The session id (without `;timeout`), once a reply gave one.
    pub session: Option<String>,
    /// Session timeout from SETUP's `Session: id;timeout=N`.
    pub session_timeout: Option<Duration>,
    session_from_setup: bool,
    /// The `Public` header of an OPTIONS reply.
    pub public: Option<Vec<String>>,
}

impl ClientSession {
    pub fn new(username: &str, password: &str) -> ClientSession {
        ClientSession { username: username.to_string(), password: password.to_string(), ..Default::default() }
    }

    /// A request with CSeq, User-Agent, Session (when known) and Authorization (after a challenge).
    pub fn request(&mut self, method: Method, uri: &str) -> Request {
        self.cseq += 1;
        let mut req = Request::new(method.clone(), uri);
        req.headers.insert("CSeq", self.cseq.to_string());
        req.headers.insert("User-Agent", USER_AGENT);
        if let Some(c) = &self.challenge {
            self.nonce_count += 1;
            let v = auth::authorization(method.as_str(), uri, &self.username, &self.password, c, self.nonce_count);
            req.headers.insert("Authorization", v);
        }
        if let Some(s) = &self.session {
            if method != Method::Options && method != Method::Describe {
                req.headers.insert("Session", s.clone());
            }
        }
        req
    }

    /// Reads the headers we keep (Session, Public) and decides what to do. `retried` says whether this
    /// answers a request already sent with fresh credentials.
    pub fn on_response(&mut self, method: &Method, resp: &Response, retried: bool) -> Outcome {
        // Only DESCRIBE (Wowza opens the session there) and SETUP give the session; a Session header on
        // OPTIONS or PLAY replies is often stale or bogus (see the Dahua and Bunny captures).
        let gives_session = matches!(method, Method::Describe | Method::Setup);
        if let Some(h) =
            resp.headers.get("Session").filter(|_| gives_session).and_then(|v| SessionHeader::parse(v).ok())
        {
            let from_setup = *method == Method::Setup;
            if !self.session_from_setup && (self.session.is_none() || from_setup) {
                self.session = Some(h.id);
                self.session_from_setup = from_setup;
            }
            if from_setup {
                if let Some(t) = h.timeout.filter(|t| *t > 0) {
                    self.session_timeout = Some(Duration::from_secs(u64::from(t)));
                }
            }
        }
        if *method == Method::Options {
            if let Some(p) = resp.headers.get("Public") {
                self.public = Some(p.split(',').map(|m| m.trim().to_ascii_uppercase()).collect());
            }
        }
        match resp.status {
            200..=299 => Outcome::Ok,
            401 => {
                let challenge = auth::best_challenge(resp.headers.get_all("WWW-Authenticate"));
                let has_creds = !self.username.is_empty() || !self.password.is_empty();
                // A stale nonce is not a wrong password: answer the new one once more.
                let stale = matches!(&challenge, Some(Challenge::Digest(d)) if d.stale);
                match challenge {
                    Some(c) if has_creds && (!retried || stale) => {
                        self.challenge = Some(c);
                        self.nonce_count = 0;
                        Outcome::RetryWithAuth
                    }
                    None if has_creds && !retried => Outcome::Failed {
                        status: 401,
                        message: "401 Unauthorized: no usable WWW-Authenticate challenge (Basic or Digest MD5)".into(),
                    },
                    _ if !has_creds => Outcome::Failed {
                        status: 401,
                        message: "401 Unauthorized: the camera needs a username and password in the URL".into(),
                    },
                    _ => {
                        Outcome::Failed { status: 401, message: "401 Unauthorized: wrong username or password".into() }
                    }
                }
            }
            s => Outcome::Failed { status: s, message: format!("{s} {}", printable(&resp.reason, 80)) },
        }
    }

    /// The keep-alive request method: GET_PARAMETER when the camera lists it in `Public`, else OPTIONS.
    pub fn keepalive_method(&self) -> Method {
        match &self.public {
            Some(p) if p.iter().any(|m| m == "GET_PARAMETER") => Method::GetParameter,
            _ => Method::Options,
        }
    }

    /// Half the session timeout (60 s when the camera gave none), at least 1 s.
    pub fn keepalive_interval(&self) -> Duration {
        (self.session_timeout.unwrap_or(DEFAULT_SESSION_TIMEOUT) / 2).max(Duration::from_secs(1))
    }
}

/// Text from the network, made safe to put in an error message.
fn printable(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

/// One media of a DESCRIBE reply, with the URL its SETUP goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DescribedMedia {
    /// Direction is local (`client_direction`): `SendOnly` for an ONVIF backchannel.
    pub media: Media,
    pub setup_url: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    /// Base URL for relative controls (Content-Base, Content-Location or the request URL).
    pub base: String,
    /// The aggregate control URL for PLAY / TEARDOWN / keep-alives.
    pub aggregate_url: String,
    pub medias: Vec<DescribedMedia>,
    /// SDP lines skipped (for logs).
    pub warnings: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DescribeError {
    #[error("empty SDP")]
    EmptySdp,
    #[error("bad SDP: {0}")]
    BadSdp(#[from] sdp::SdpError),
    #[error("no usable media in SDP (medias: {0})")]
    NoMedia(String),
}

/// Reads a 200 DESCRIBE reply. A missing Content-Type is accepted (some cameras omit it); medias
/// without a known codec are dropped, as are the kinds `#media=` excludes. A `sendonly` audio media is the
/// backchannel only when `backchannel` (the DESCRIBE carried the ONVIF `Require` and the camera accepted it)
/// and not every media is `sendonly`; otherwise it is read as a normal media.
pub fn read_describe(
    request_url: &str,
    resp: &Response,
    kinds: Option<&[Kind]>,
    backchannel: bool,
) -> Result<Described, DescribeError> {
    if resp.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(DescribeError::EmptySdp);
    }
    let sd = sdp::parse(&resp.body)?;
    let base =
        base_url(resp.headers.get("Content-Base"), resp.headers.get("Content-Location"), request_url).to_string();
    let aggregate_url = match &sd.control {
        Some(c) => control_url(&base, c),
        None => base.clone(),
    };
    let all: Vec<String> = sd.medias.iter().map(|m| m.to_string()).collect();
    // A server that writes every media `sendonly` describes them from its own side (RFC 4566), as
    // camrelay and many servers do; only cameras asked for the ONVIF backchannel mark their speaker so.
    let all_sendonly = sd.medias.iter().all(|m| m.direction == Direction::SendOnly);
    let mut medias = Vec::new();
    for mut m in sd.medias {
        m.direction = sdp::client_direction(m.direction);
        if m.direction == Direction::SendOnly && (all_sendonly || m.kind != Kind::Audio || !backchannel) {
            m.direction = Direction::RecvOnly;
        }
        if m.codecs.is_empty() || m.kind == Kind::Application {
            continue;
        }
        if let Some(k) = kinds {
            if !k.contains(&m.kind) {
                continue;
            }
        }
        // Only one backchannel: the camera's speaker.
        if m.direction == Direction::SendOnly
            && medias.iter().any(|d: &DescribedMedia| d.media.direction == Direction::SendOnly)
        {
            continue;
        }
        let setup_url = control_url(&base, &m.control);
        medias.push(DescribedMedia { media: m, setup_url });
    }
    if medias.is_empty() {
        return Err(DescribeError::NoMedia(if all.is_empty() { "none".into() } else { all.join("; ") }));
    }
    Ok(Described { base, aggregate_url, medias, warnings: sd.warnings })
}

/// The Transport we offer for media `index`: interleaved channels `2i`, `2i+1` over TCP, or the given
/// local ports over UDP.
pub fn offer_transport(index: usize, udp_ports: Option<(u16, u16)>) -> Transport {
    match udp_ports {
        Some(ports) => {
            let mut t = Transport::new(transport::LowerTransport::Udp);
            t.multicast = Some(false);
            t.client_port = Some(ports);
            t
        }
        None => Transport::tcp_interleaved(u8::try_from(index * 2).unwrap_or(254)),
    }
}

/// The transport the camera chose, completed with what we offered where it left things out (cameras
/// omit `interleaved=` or send unreadable `ssrc=`). An error when it switched lower transport.
pub fn accepted_transport(offered: &Transport, reply: Option<&str>) -> Result<Transport, String> {
    let Some(reply) = reply else {
        return Ok(offered.clone());
    };
    let t = transport::parse(reply)
        .ok()
        .and_then(|l| l.into_iter().next())
        .ok_or_else(|| format!("unreadable Transport `{}`", printable(reply, 120)))?;
    if t.lower != offered.lower {
        return Err(format!("camera answered another transport: `{}`", printable(reply, 120)));
    }
    if offered.multicast == Some(true) && (t.multicast != Some(true) || t.destination.is_none() || t.port.is_none()) {
        return Err(format!("the server named no multicast group and port: `{}`", printable(reply, 120)));
    }
    let mut out = t;
    if out.is_tcp() && out.interleaved.is_none() {
        out.interleaved = offered.interleaved;
    }
    if !out.is_tcp() && out.client_port.is_none() {
        out.client_port = offered.client_port;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multicast_transport() {
        let u = SourceUrl::parse("rtsp://h/cam#transport=multicast").unwrap();
        assert!(u.multicast && !u.udp);
        let u = SourceUrl::parse("rtsp://h/cam#transport=multicast#transport=udp").unwrap();
        assert!(!u.multicast && u.udp, "the last one wins");
        let mut offered = Transport::new(transport::LowerTransport::Udp);
        offered.multicast = Some(true);
        let reply = "RTP/AVP;multicast;destination=224.1.0.1;port=8002-8003;ttl=16";
        let t = accepted_transport(&offered, Some(reply)).unwrap();
        assert_eq!((t.destination.as_deref(), t.port), (Some("224.1.0.1"), Some((8002, 8003))));
        let e = accepted_transport(&offered, Some("RTP/AVP;unicast;client_port=1-2")).unwrap_err();
        assert!(e.contains("no multicast group"), "{e}");
    }

    #[test]
    fn source_url() {
        let u = SourceUrl::parse("rtsp://admin:p%40ss@10.0.0.1/cam?x=1#backchannel=0#timeout=30#media=video").unwrap();
        assert_eq!(u.username, "admin");
        assert_eq!(u.password, "p@ss");
        assert_eq!(u.request_url, "rtsp://10.0.0.1:554/cam?x=1");
        assert_eq!(u.timeout, Some(Duration::from_secs(30)));
        assert_eq!(u.kinds, Some(vec![Kind::Video]));
        assert!(!u.backchannel);
        assert!(!u.udp);
        let u = SourceUrl::parse("rtspx://h:7441/abc#transport=udp").unwrap();
        assert_eq!(u.tls, Tls::NoVerify);
        assert_eq!(u.request_url, "rtsps://h:7441/abc");
        assert!(u.udp);
        // MediaMTX's sourceFingerprint: the certificate's SHA-256 pinned.
        let hex = "AB".repeat(32);
        let u = SourceUrl::parse(&format!("rtsps://cam/s#fingerprint={hex}")).unwrap();
        assert_eq!(u.tls, Tls::Pinned([0xab; 32]));
        assert_eq!(SourceUrl::parse(&format!("rtsp://cam/s#fingerprint={hex}")), Err(UrlError::FingerprintWithoutTls));
        assert!(matches!(SourceUrl::parse("rtsps://cam/s#fingerprint=abc"), Err(UrlError::Param(_))));
        let u = SourceUrl::parse("rtsp://u:a@b@[::1]:8554").unwrap();
        assert_eq!((u.password.as_str(), u.host.as_str(), u.port), ("a@b", "[::1]", 8554));
        assert!(SourceUrl::parse("http://h/").is_err());
        assert!(SourceUrl::parse("rtsp://h:99999/").is_err());
        assert!(SourceUrl::parse("rtsp:///x").is_err());
        assert!(SourceUrl::parse("rtsp://h/#timeout=x").is_err());
        assert!(!format!("{:?}", SourceUrl::parse("rtsp://u:secret@h/").unwrap()).contains("secret"));
        let u =
            SourceUrl::parse("rtsp://cam/axis-media/media.amp#transport=ws://u:pw@cam:80/rtsp-over-websocket").unwrap();
        assert_eq!(u.websocket.as_deref(), Some("ws://u:pw@cam:80/rtsp-over-websocket"));
        assert_eq!(u.request_url, "rtsp://cam:554/axis-media/media.amp");
        assert!(!u.udp);
        assert!(!format!("{u:?}").contains("pw"));
        assert!(SourceUrl::parse("rtsp://h/#transport=http://x").is_err());
    }

    fn resp(status: u16, headers: &[(&str, &str)]) -> Response {
        let mut r = Response::new(status);
        for (k, v) in headers {
            r.headers.append(*k, *v);
        }
        r
    }

    #[test]
    fn auth_retry_once() {
        let mut s = ClientSession::new("admin", "pw");
        let r = s.request(Method::Describe, "rtsp://h/x");
        assert!(r.headers.get("Authorization").is_none());
        let c = resp(401, &[("WWW-Authenticate", "Digest realm=\"r\", nonce=\"n\"")]);
        assert_eq!(s.on_response(&Method::Describe, &c, false), Outcome::RetryWithAuth);
        let r = s.request(Method::Describe, "rtsp://h/x");
        assert!(r.headers.get("Authorization").unwrap().starts_with("Digest username=\"admin\""));
        assert_eq!(r.headers.get("CSeq"), Some("2"));
        match s.on_response(&Method::Describe, &c, true) {
            Outcome::Failed { status: 401, message } => assert!(message.contains("wrong username or password")),
            o => panic!("{o:?}"),
        }
        let mut s = ClientSession::new("", "");
        assert!(matches!(s.on_response(&Method::Describe, &c, false), Outcome::Failed { status: 401, .. }));
    }

    #[test]
    fn session_and_keepalive() {
        let mut s = ClientSession::new("", "");
        s.on_response(&Method::Options, &resp(200, &[("Public", "OPTIONS, DESCRIBE, GET_PARAMETER")]), false);
        assert_eq!(s.keepalive_method(), Method::GetParameter);
        s.on_response(&Method::Describe, &resp(200, &[("Session", "d1")]), false);
        assert_eq!(s.session.as_deref(), Some("d1"));
        s.on_response(&Method::Setup, &resp(200, &[("Session", "  708345999;timeout=20")]), false);
        assert_eq!(s.session.as_deref(), Some("708345999"));
        assert_eq!(s.keepalive_interval(), Duration::from_secs(10));
        s.on_response(&Method::Play, &resp(200, &[("Session", "other")]), false);
        assert_eq!(s.session.as_deref(), Some("708345999"));
        let r = s.request(Method::Play, "rtsp://h/x");
        assert_eq!(r.headers.get("Session"), Some("708345999"));
        let s = ClientSession::new("", "");
        assert_eq!(s.keepalive_method(), Method::Options);
        assert_eq!(s.keepalive_interval(), Duration::from_secs(30));
    }

    #[test]
    fn transports() {
        let offered = offer_transport(1, None);
        assert_eq!(offered.interleaved, Some((2, 3)));
        let t = accepted_transport(&offered, Some("RTP/AVP/TCP;unicast;interleaved=0-1;ssrc= d6d6627")).unwrap();
        assert_eq!(t.interleaved, Some((0, 1)));
        let t = accepted_transport(&offered, Some("RTP/AVP/TCP;ssrc=22345684")).unwrap();
        assert_eq!(t.interleaved, Some((2, 3)));
        assert!(accepted_transport(&offered, Some("RTP/AVP;unicast;client_port=1-2")).is_err());
        let udp = offer_transport(0, Some((5000, 5001)));
        let t = accepted_transport(
            &udp,
            Some("RTP/AVP;ssrc=22345685;unicast;client_port=54060-54061;server_port=49152-49153"),
        )
        .unwrap();
        assert_eq!(t.server_port, Some((49152, 49153)));
    }
}
