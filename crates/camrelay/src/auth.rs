//! The one place that decides whether a client may do something: "may this identity do this action
//! on this path over this protocol from this address". Every server asks [`Auth::check`] with what
//! it knows and renders the answer its own way (HTTP 401, an RTSP challenge...); no server compares
//! passwords or applies the loopback exemption itself.
//!
//! Two rule sets, by the config's dialect:
//! - go2rtc's: one user for the HTTP API (`api.username`/`password`, which also guards every output and
//!   signalling endpoint on the API port) and one for RTSP (`rtsp.username`/`password`, reading and
//!   publishing), each optional, with local clients (loopback, the API's unix socket) let in unless
//!   `local_auth`.
//! - MediaMTX's internal users (`authInternalUsers`): user (or `any`) and password, IP ranges, and
//!   permissions (action, path literal or `~regex`) for every protocol; its default lets anyone read
//!   and publish and only local clients use the API and metrics. User names and passwords may be
//!   MediaMTX's hashes (`sha256:BASE64` of the SHA-256, `argon2:$argon2id$...` PHC strings): they are
//!   verified here and nowhere else ([`Secret`]); a hashed entry can only be proven by a password sent
//!   in clear (Basic, query), never by an RTSP Digest response.
//! - MediaMTX's JWT method (`authMethod: jwt`): a token (`Authorization: Bearer`, `?jwt=`, or the
//!   password of Basic/RTSP/RTMP credentials) signed by a key of the `authJWTJWKS` set, whose claim
//!   `authJWTClaimKey` lists the permissions ([`jwt`] checks it, sans IO). The key set is fetched at
//!   start and again, in the background, when a token names a key id it does not hold (at most once
//!   per 10 s): `check` is synchronous, so that token is refused and the next one is checked against
//!   the new set. `POST /v3/auth/jwks/refresh` refetches at once.
//!
//! - MediaMTX's HTTP method (`authMethod: http`): each decision is a `POST` of MediaMTX's JSON body
//!   (user, password, token, ip, action, path, protocol, id, query) to `authHTTPAddress`; a `2xx`
//!   answer allows, anything else (another status, an error, no answer within
//!   [`HTTP_AUTH_TIMEOUT`]) refuses. Nothing is cached beyond the request. `authHTTPExclude` lists
//!   what anyone may do without asking; `authHTTPFingerprint` pins a self-signed server's certificate.
//!
//! The decision point is asynchronous ([`Auth::authorize`], what every server awaits): the HTTP
//! method waits for its server. [`Auth::check`], the synchronous form, decides every other method
//! the same way and refuses (fails closed) under the HTTP method.
//!
//! Failed logins are limited per client address, whatever the rules ([`FailedLogins`]): after
//! 10 wrong credentials within 60 s an address is refused for 60 s without checking anything.

pub mod jwt;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
    /// The RTMP server (`rtmp.listen`; credentials from `?user=&pass=` in the stream name). go2rtc has
    /// no RTMP user, so RTMP is open under a go2rtc config; MediaMTX's internal users apply to it.
    Rtmp,
    /// The SRT server (`srt.listen`; credentials from the stream id, `publish:PATH:user:pass`).
    Srt,
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
    /// Checks a configured plain (user, password) pair against what the client sent without the
    /// password itself: an RTSP Digest response (which needs the password to recompute). Entries with
    /// hashed credentials cannot be proven this way, nor can an external server (HTTP, JWT).
    Proof(&'a (dyn Fn(&str, &str) -> bool + Sync)),
    /// A user name and password sent in clear: a Basic header, RTMP `?user=&pass=`. Under the JWT
    /// method the password is the token.
    Credentials {
        user: &'a str,
        pass: &'a str,
    },
    /// A bearer token: `Authorization: Bearer`, a `jwt` query parameter.
    Token(&'a str),
}

/// A configured user name or password: MediaMTX's `Credential` (plain, `sha256:`, `argon2:`).
#[derive(Clone, Debug, PartialEq)]
pub enum Secret {
    Plain(String),
    /// The SHA-256 of the value (`sha256:` + its standard base64).
    Sha256([u8; 32]),
    /// An Argon2i or Argon2id PHC string (`argon2:$argon2id$v=19$m=...,t=...,p=...$SALT$HASH`).
    Argon2(String),
}

impl Secret {
    /// Parses a configured value; a malformed hash is an error naming what is wrong.
    pub fn parse(text: &str) -> Result<Secret, String> {
        use base64::Engine;
        if let Some(b64) = text.strip_prefix("sha256:") {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|e| format!("sha256: value is not base64 ({e})"))?;
            let hash: [u8; 32] = bytes
                .try_into()
                .map_err(|b: Vec<u8>| format!("sha256: value decodes to {} bytes, a SHA-256 has 32", b.len()))?;
            return Ok(Secret::Sha256(hash));
        }
        if let Some(phc) = text.strip_prefix("argon2:") {
            let parsed = argon2::password_hash::phc::PasswordHash::new(phc)
                .map_err(|e| format!("argon2: value is not a PHC string ({e})"))?;
            let alg = parsed.algorithm.as_str();
            if alg != "argon2id" && alg != "argon2i" {
                return Err(format!("argon2: algorithm {alg:?} is not supported (argon2id or argon2i)"));
            }
            return Ok(Secret::Argon2(phc.to_string()));
        }
        Ok(Secret::Plain(text.to_string()))
    }

    /// Whether `given` (sent in clear by a client) is this value.
    pub fn verify(&self, given: &str) -> bool {
        match self {
            Secret::Plain(p) => crate::servers::api::constant_time_eq(p.as_bytes(), given.as_bytes()),
            Secret::Sha256(hash) => {
                let d = ring::digest::digest(&ring::digest::SHA256, given.as_bytes());
                crate::servers::api::constant_time_eq(d.as_ref(), hash)
            }
            Secret::Argon2(phc) => {
                use argon2::password_hash::PasswordVerifier;
                argon2::Argon2::default().verify_password(given.as_bytes(), phc.as_str()).is_ok()
            }
        }
    }

    /// The value itself, when it is stored in clear (what an RTSP Digest proof needs).
    pub fn plain(&self) -> Option<&str> {
        match self {
            Secret::Plain(p) => Some(p),
            _ => None,
        }
    }
}

/// The user name and password of an `Authorization: Basic ...` value; `None` for other schemes or a
/// malformed value.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, rest) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(rest.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (user, pass) = text.split_once(':')?;
    Some((user.to_string(), pass.to_string()))
}

/// The token of an `Authorization: Bearer ...` value.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| rest.trim())
}

/// The `jwt` parameter of a query string (`a=1&jwt=TOKEN`), percent-decoded. A token has no `/`: what
/// follows one is an RTSP client's track suffix (ffmpeg's PLAY URL is `...?jwt=TOKEN/`).
pub fn query_token(query: &str) -> Option<String> {
    let value = query.split('&').find_map(|pair| pair.strip_prefix("jwt="))?;
    Some(media::query::percent_decode(value.split('/').next().unwrap_or("")))
}

/// A URL query as the session lists show it (MediaMTX's `query`): the secrets it may carry
/// (`pass=`, `jwt=`) left out, the rest as sent.
pub fn shown_query(query: &str) -> String {
    let secret = |pair: &&str| {
        let key = pair.split_once('=').map_or(*pair, |(k, _)| k);
        matches!(key, "pass" | "jwt")
    };
    query.split('&').filter(|p| !p.is_empty() && !secret(p)).collect::<Vec<_>>().join("&")
}

/// The user name an HTTP request authenticated as ([`Auth::shown_user`]), set on the request by the
/// API's auth layer for the handlers that list their sessions.
#[derive(Clone, Debug, Default)]
pub struct AuthenticatedUser(pub String);

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
    /// Too many wrong credentials came from this address lately: refused without checking.
    TooManyFailures,
    /// A token signed with a key the JWK set does not hold (yet): the set is being fetched again, a
    /// retry may pass. Not counted as a failed login (a key rotation is not the client's fault).
    UnknownKey,
    /// The HTTP method's server could not be asked (unreachable, too slow, or a caller that cannot
    /// wait for it): refused, not counted as a failed login.
    Unavailable,
}

/// What the HTTP method sends besides the request itself (MediaMTX's body fields); every field may
/// be empty.
#[derive(Clone, Copy, Debug, Default)]
pub struct Details<'a> {
    /// MediaMTX's protocol name (`rtsp`, `rtmp`, `hls`, `webrtc`, `srt`); empty: from
    /// [`AuthRequest::protocol`] (RTSP and RTMP), else none (the API, metrics, playback).
    pub protocol: &'a str,
    /// The connection's or session's id.
    pub id: &'a str,
    /// The query of the request's URL.
    pub query: &'a str,
}

/// Longest the HTTP method waits for its server's answer (connection included).
pub const HTTP_AUTH_TIMEOUT: Duration = Duration::from_secs(5);

/// Wrong credentials counted per client address: [`FailedLogins::MAX_FAILURES`] within
/// [`FailedLogins::WINDOW`] refuse the address for [`FailedLogins::BAN`]. Loopback is not exempt (a
/// local brute force is one too; behind a reverse proxy every client shares the proxy's address, so
/// one attacker there locks everyone out for a minute, which is the price of the limit). Bounded: at
/// most [`FailedLogins::MAX_ADDRESSES`] addresses are tracked; when full, stale entries go first and
/// new addresses are not tracked until some are.
#[derive(Debug, Default)]
pub struct FailedLogins {
    by_ip: Mutex<HashMap<IpAddr, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    /// Start of the counting window and failures in it.
    since: Instant,
    count: u32,
    banned_until: Option<Instant>,
}

impl FailedLogins {
    pub const MAX_FAILURES: u32 = 10;
    pub const WINDOW: Duration = Duration::from_secs(60);
    pub const BAN: Duration = Duration::from_secs(60);
    pub const MAX_ADDRESSES: usize = 4096;

    /// Whether `ip` is refused at `now`.
    pub fn banned(&self, ip: IpAddr, now: Instant) -> bool {
        let map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&ip).and_then(|f| f.banned_until).is_some_and(|until| now < until)
    }

    /// Counts a failure of `ip` at `now`; true when it makes the address banned.
    pub fn failed(&self, ip: IpAddr, now: Instant) -> bool {
        let mut map = self.by_ip.lock().unwrap_or_else(|e| e.into_inner());
        if !map.contains_key(&ip) && map.len() >= Self::MAX_ADDRESSES {
            map.retain(|_, f| {
                now.saturating_duration_since(f.since) < Self::WINDOW || f.banned_until.is_some_and(|u| now < u)
            });
            if map.len() >= Self::MAX_ADDRESSES {
                return false;
            }
        }
        let f = map.entry(ip).or_insert(Failures { since: now, count: 0, banned_until: None });
        if f.banned_until.is_some_and(|u| now < u) {
            return false;
        }
        if now.saturating_duration_since(f.since) >= Self::WINDOW || f.banned_until.is_some() {
            *f = Failures { since: now, count: 0, banned_until: None };
        }
        f.count += 1;
        if f.count >= Self::MAX_FAILURES {
            f.banned_until = Some(now + Self::BAN);
            return true;
        }
        false
    }
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
    /// MediaMTX's internal users, when the config is MediaMTX's (they replace `users`).
    internal: Option<Vec<InternalUser>>,
    /// MediaMTX's JWT method (replaces `internal`).
    jwt: Option<JwtAuth>,
    /// MediaMTX's HTTP method (replaces `internal`).
    http: Option<HttpAuth>,
    /// Kept across reloads ([`Auth::adopt`]).
    failures: Arc<FailedLogins>,
}

/// MediaMTX's JWT settings and the key set they fetch.
#[derive(Clone, Debug)]
struct JwtAuth {
    claim_key: String,
    issuer: String,
    audience: String,
    /// `authJWTExclude`: what anyone may do without a token.
    exclude: Vec<(Action, PathMatch)>,
    /// `authJWTInHTTPQuery`: whether `?jwt=` counts on HTTP (RTSP and RTMP always take it).
    in_http_query: bool,
    keys: Arc<JwksCache>,
}

/// MediaMTX's HTTP method: where decisions are asked.
#[derive(Clone, Debug)]
struct HttpAuth {
    /// `authHTTPAddress` (http:// or https://).
    url: String,
    /// `authHTTPFingerprint`: the SHA-256 of the server's certificate, accepted instead of a trusted one.
    pin: Option<[u8; 32]>,
    /// `authHTTPExclude`: what anyone may do without asking.
    exclude: Vec<(Action, PathMatch)>,
}

/// A certificate's SHA-256 as MediaMTX's `*Fingerprint` keys write it (64 hex digits; `:` separators
/// and case ignored).
pub fn parse_fingerprint(text: &str) -> Result<[u8; 32], String> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    let bytes: Option<Vec<u8>> =
        (0..hex.len()).step_by(2).map(|i| hex.get(i..i + 2).and_then(|b| u8::from_str_radix(b, 16).ok())).collect();
    bytes
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format!("{text:?} is not a SHA-256 fingerprint (64 hex digits)"))
}

/// A `http://` or `https://` URL as a request target.
fn http_target(url: &str) -> Result<crate::http_client::Target, String> {
    use crate::http_client::Target;
    if let Some(rest) = url.strip_prefix("https://") {
        Target::from_authority(crate::dial::Tls::Verify, rest)
    } else if let Some(rest) = url.strip_prefix("http://") {
        Target::from_authority(crate::dial::Tls::None, rest)
    } else {
        Err("not an http:// or https:// URL".into())
    }
}

/// One exchange with an auth server (the JWK set's, the HTTP method's): `method` to `url` on a new
/// connection (certificate pinned when `pin`), no redirects; the status and up to `max_body` of the
/// body (none when `max_body` is 0).
async fn exchange(
    url: &str,
    pin: Option<[u8; 32]>,
    method: hyper::Method,
    headers: &[(String, String)],
    body: bytes::Bytes,
    max_body: usize,
    timeout: Duration,
) -> Result<(hyper::StatusCode, bytes::Bytes), String> {
    use crate::http_client;
    let target = http_target(url)?;
    let opts = http_client::Options { connect_timeout: timeout, response_timeout: timeout, max_redirects: 0 };
    let mut conn = http_client::Conn::open_pinned(&target, &opts, pin).await.map_err(|e| e.to_string())?;
    let resp = conn.send(&method, headers, body, &opts).await.map_err(|e| e.to_string())?;
    let status = resp.status();
    if max_body == 0 {
        return Ok((status, bytes::Bytes::new()));
    }
    let mut body = resp.into_body();
    let bytes = http_client::read_body(&mut body, max_body, timeout).await.map_err(|e| e.to_string())?;
    Ok((status, bytes))
}

/// The key set of one `authJWTJWKS` URL, kept across reloads while the URL stays.
#[derive(Debug)]
pub struct JwksCache {
    url: String,
    /// `authJWTJWKSFingerprint`: the SHA-256 of the JWKS server's certificate, accepted instead of a
    /// trusted one.
    pin: Option<[u8; 32]>,
    keys: arc_swap::ArcSwap<jwt::Jwks>,
    /// When the last fetch started, and whether one is running.
    state: Mutex<(Option<Instant>, bool)>,
}

/// Unknown key ids refetch the set at most this often.
pub const JWKS_REFRESH_INTERVAL: Duration = Duration::from_secs(10);

impl JwksCache {
    fn new(url: &str, pin: Option<[u8; 32]>) -> JwksCache {
        JwksCache { url: url.to_string(), pin, keys: Default::default(), state: Mutex::new((None, false)) }
    }

    /// Starts a background fetch unless one runs or (when not `force`d) the last started less than
    /// [`JWKS_REFRESH_INTERVAL`] ago. Outside a tokio runtime, nothing.
    pub fn refresh(self: &Arc<Self>, force: bool) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        if !self.start_fetch(force) {
            return;
        }
        let me = self.clone();
        runtime.spawn(async move {
            let _ = me.fetch_started().await;
        });
    }

    /// Marks a fetch as started; false when one runs or (when not `force`d) one started recently.
    fn start_fetch(&self, force: bool) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let recent = state.0.is_some_and(|at| at.elapsed() < JWKS_REFRESH_INTERVAL);
        if state.1 || (recent && !force) {
            return false;
        }
        *state = (Some(Instant::now()), true);
        true
    }

    /// Fetches the set now and keeps it (`POST /v3/auth/jwks/refresh`); returns how many keys it holds.
    pub async fn fetch(&self) -> Result<usize, String> {
        if !self.start_fetch(true) {
            return Err("a JWK set fetch is already running".into());
        }
        self.fetch_started().await
    }

    async fn fetch_started(&self) -> Result<usize, String> {
        let result = self.fetch_set().await;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1 = false;
        match result {
            Ok(set) => {
                let n = set.keys.len();
                tracing::info!(url = %crate::secrets::mask_url(&self.url), keys = n, "auth: JWK set fetched");
                self.keys.store(Arc::new(set));
                Ok(n)
            }
            Err(e) => {
                tracing::warn!(url = %crate::secrets::mask_url(&self.url), "auth: JWK set: {e}");
                Err(e)
            }
        }
    }

    async fn fetch_set(&self) -> Result<jwt::Jwks, String> {
        let get = exchange(
            &self.url,
            self.pin,
            hyper::Method::GET,
            &[],
            bytes::Bytes::new(),
            jwt::MAX_JWKS_BYTES,
            Duration::from_secs(10),
        );
        let (status, bytes) = tokio::time::timeout(Duration::from_secs(20), get)
            .await
            .map_err(|_| "no JWK set within 20 s".to_string())??;
        if !status.is_success() {
            return Err(format!("HTTP status {status}"));
        }
        jwt::Jwks::parse(&bytes)
    }
}

/// One `authInternalUsers` entry.
#[derive(Clone, Debug)]
struct InternalUser {
    /// `None` = `any` (anyone, with or without credentials).
    name: Option<Secret>,
    password: Secret,
    /// Allowed client networks; empty = any.
    ips: Vec<(IpAddr, u8)>,
    permissions: Vec<(Action, PathMatch)>,
}

#[derive(Clone, Debug)]
enum PathMatch {
    Any,
    Literal(String),
    Regex(regex::Regex),
}

impl PathMatch {
    fn matches(&self, path: &str) -> bool {
        match self {
            PathMatch::Any => true,
            PathMatch::Literal(p) => p == path,
            PathMatch::Regex(re) => re.is_match(path),
        }
    }
}

/// `10.0.0.0/8`, `::1`, `192.168.1.5` → (network, prefix length).
fn parse_network(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, len) = match s.split_once('/') {
        Some((a, l)) => (a.trim().parse::<IpAddr>().ok()?, l.trim().parse::<u8>().ok()?),
        None => {
            let a = s.trim().parse::<IpAddr>().ok()?;
            (a, if a.is_ipv4() { 32 } else { 128 })
        }
    };
    let max = if addr.is_ipv4() { 32 } else { 128 };
    (len <= max).then_some((addr, len))
}

fn in_network(ip: IpAddr, (net, len): (IpAddr, u8)) -> bool {
    // IPv4-mapped IPv6 clients count as their IPv4 address.
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = if len == 0 { 0 } else { u32::MAX << (32 - u32::from(len)) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = if len == 0 { 0 } else { u128::MAX << (128 - u32::from(len)) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// A permission's path: empty = any, `~regex`, else literal.
fn path_match(p: String) -> PathMatch {
    match p.strip_prefix('~') {
        _ if p.is_empty() => PathMatch::Any,
        Some(re) => regex::Regex::new(re).map(PathMatch::Regex).unwrap_or(PathMatch::Literal(p)),
        None => PathMatch::Literal(p),
    }
}

/// MediaMTX's name of an action (the HTTP method's `action`).
fn action_name(action: Action) -> &'static str {
    match action {
        Action::Read => "read",
        Action::Publish => "publish",
        Action::Playback => "playback",
        Action::Api => "api",
        Action::Metrics => "metrics",
    }
}

fn action_named(s: &str) -> Option<Action> {
    Some(match s {
        "publish" => Action::Publish,
        "read" => Action::Read,
        "playback" => Action::Playback,
        "api" => Action::Api,
        "metrics" | "pprof" => Action::Metrics,
        _ => return None,
    })
}

/// MediaMTX's `authInternalUsers` (JSON as the config keeps it). Errors name the entry.
pub fn internal_users(value: &serde_json::Value) -> Result<Vec<InternalUserConf>, String> {
    let list = value.as_array().cloned().unwrap_or_default();
    let mut out = Vec::new();
    for (i, entry) in list.iter().enumerate() {
        let text = |k: &str| match entry.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let user = text("user");
        let pass = text("pass");
        Secret::parse(&user).map_err(|e| format!("authInternalUsers[{i}].user: {e}"))?;
        Secret::parse(&pass).map_err(|e| format!("authInternalUsers[{i}].pass: {e}"))?;
        let mut ips = Vec::new();
        for ip in entry.get("ips").and_then(|v| v.as_array()).cloned().unwrap_or_default() {
            let s = ip.as_str().unwrap_or("");
            ips.push(parse_network(s).ok_or_else(|| format!("authInternalUsers[{i}]: invalid IP or network {s:?}"))?);
        }
        let mut permissions = Vec::new();
        for p in entry.get("permissions").and_then(|v| v.as_array()).cloned().unwrap_or_default() {
            let name = p.get("action").and_then(|a| a.as_str()).unwrap_or("");
            let action = action_named(name).ok_or_else(|| {
                format!(
                    "authInternalUsers[{i}]: unknown action {name:?} (publish, read, playback, api, metrics, pprof)"
                )
            })?;
            let path = p.get("path").and_then(|a| a.as_str()).unwrap_or("").to_string();
            permissions.push((action, path));
        }
        out.push(InternalUserConf { user, pass, ips, permissions });
    }
    Ok(out)
}

/// A list of permissions (`authJWTExclude`, `authHTTPExclude`: `[{action, path}]`); entries that do
/// not parse (refused at load) are left out.
fn permissions_of(value: Option<&serde_json::Value>) -> Vec<(Action, PathMatch)> {
    internal_users(&serde_json::json!([{ "user": "any", "permissions": value.cloned().unwrap_or_default() }]))
        .ok()
        .and_then(|mut u| u.pop())
        .map(|u| u.permissions.into_iter().map(|(a, p)| (a, path_match(p))).collect())
        .unwrap_or_default()
}

/// A checked `authInternalUsers` entry.
#[derive(Clone, Debug, PartialEq)]
pub struct InternalUserConf {
    pub user: String,
    pub pass: String,
    pub ips: Vec<(IpAddr, u8)>,
    pub permissions: Vec<(Action, String)>,
}

const HTTP_ACTIONS: &[Action] = &[Action::Read, Action::Publish, Action::Playback, Action::Api, Action::Metrics];
const RTSP_ACTIONS: &[Action] = &[Action::Read, Action::Publish];

impl Auth {
    /// The rules of `config`: MediaMTX's internal users for a MediaMTX config, else go2rtc's from the
    /// `api:` and `rtsp:` sections.
    pub fn from_config(config: &Config) -> Auth {
        if let Some(mtx) = &config.mediamtx {
            if mtx.global_str("authMethod") == "jwt" {
                let exclude = permissions_of(mtx.globals.get("authJWTExclude"));
                let claim_key = mtx.global_str("authJWTClaimKey");
                let jwt = JwtAuth {
                    claim_key: if claim_key.is_empty() { "mediamtx_permissions".into() } else { claim_key },
                    issuer: mtx.global_str("authJWTIssuer"),
                    audience: mtx.global_str("authJWTAudience"),
                    exclude,
                    in_http_query: mtx.global_bool("authJWTInHTTPQuery"),
                    // Checked at load; a value that fails here pins nothing that could match.
                    keys: Arc::new(JwksCache::new(
                        &mtx.global_str("authJWTJWKS"),
                        match mtx.global_str("authJWTJWKSFingerprint").as_str() {
                            "" => None,
                            fp => Some(parse_fingerprint(fp).unwrap_or([0; 32])),
                        },
                    )),
                };
                return Auth { jwt: Some(jwt), ..Auth::default() };
            }
            if mtx.global_str("authMethod") == "http" {
                let http = HttpAuth {
                    url: mtx.global_str("authHTTPAddress"),
                    pin: match mtx.global_str("authHTTPFingerprint").as_str() {
                        "" => None,
                        fp => Some(parse_fingerprint(fp).unwrap_or([0; 32])),
                    },
                    exclude: permissions_of(mtx.globals.get("authHTTPExclude")),
                };
                return Auth { http: Some(http), ..Auth::default() };
            }
            // Checked when the config was loaded; a bad entry left here denies by being skipped.
            let confs = internal_users(mtx.globals.get("authInternalUsers").unwrap_or(&serde_json::Value::Null))
                .unwrap_or_default();
            let internal = confs
                .into_iter()
                .map(|c| InternalUser {
                    // Checked at load; a value that fails here matches nothing.
                    name: (c.user != "any").then(|| Secret::parse(&c.user).unwrap_or(Secret::Sha256([0; 32]))),
                    password: Secret::parse(&c.pass).unwrap_or(Secret::Sha256([0; 32])),
                    ips: c.ips,
                    permissions: c.permissions.into_iter().map(|(a, p)| (a, path_match(p))).collect(),
                })
                .collect();
            return Auth { internal: Some(internal), ..Auth::default() };
        }
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
        Auth { users, ..Auth::default() }
    }

    /// MediaMTX's rule: some user whose networks hold the client, whose permissions allow the action
    /// on the path, and who is `any` or whose credentials were proven.
    fn check_internal(users: &[InternalUser], request: &AuthRequest) -> Result<(), Denied> {
        let ip = match request.origin {
            Origin::Ip(ip) => Some(ip),
            // The unix socket is this machine.
            Origin::LocalSocket => Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            Origin::Unknown => None,
        };
        let mut needs_credentials = false;
        for user in users {
            let ip_ok = user.ips.is_empty() || ip.is_some_and(|ip| user.ips.iter().any(|n| in_network(ip, *n)));
            let allowed = user.permissions.iter().any(|(a, p)| *a == request.action && p.matches(request.path));
            if !ip_ok || !allowed {
                continue;
            }
            match &user.name {
                None => return Ok(()),
                Some(name) => {
                    let proven = match &request.presented {
                        Presented::Nothing => false,
                        Presented::Proof(proves) => match (name.plain(), user.password.plain()) {
                            (Some(n), Some(p)) => proves(n, p),
                            _ => false,
                        },
                        Presented::Credentials { user: u, pass: p } => name.verify(u) && user.password.verify(p),
                        Presented::Token(_) => false,
                    };
                    if proven {
                        return Ok(());
                    }
                    needs_credentials = true;
                }
            }
        }
        match (&request.presented, needs_credentials) {
            (Presented::Nothing, _) => Err(Denied::CredentialsRequired),
            (_, true) => Err(Denied::WrongCredentials),
            // Credentials that no entry allows for this: ask again (clients retry with others).
            (_, false) => Err(Denied::WrongCredentials),
        }
    }

    /// Whether a decision depends on the path (MediaMTX's per-path permissions): a connection that
    /// authenticated once must still be checked per request.
    pub fn per_path(&self) -> bool {
        self.jwt.is_some()
            || self.http.is_some()
            || self.internal.as_ref().is_some_and(|users| {
                users.iter().any(|u| u.permissions.iter().any(|(_, p)| !matches!(p, PathMatch::Any)))
            })
    }

    /// Whether some configured user can only be proven by a password sent in clear (a hashed entry):
    /// the RTSP server then offers Basic only, since a Digest response cannot be checked against a hash.
    pub fn has_hashed(&self) -> bool {
        self.jwt.is_some()
            || self.http.is_some()
            || self.internal.as_ref().is_some_and(|users| {
                users
                    .iter()
                    .any(|u| u.password.plain().is_none() || u.name.as_ref().is_some_and(|n| n.plain().is_none()))
            })
    }

    /// The JWT key set, under the JWT method.
    pub fn jwks(&self) -> Option<&Arc<JwksCache>> {
        self.jwt.as_ref().map(|j| &j.keys)
    }

    /// The user name the session lists show for an accepted request (MediaMTX's `user`): the name
    /// sent with the credentials; empty for a token, for nothing presented, and under the JWT method
    /// (whose password is the token). Never the password. A Digest proof names no user here: the RTSP
    /// server keeps the name that proved it.
    pub fn shown_user(&self, presented: &Presented) -> String {
        match presented {
            Presented::Credentials { user, .. } if self.jwt.is_none() => user.to_string(),
            _ => String::new(),
        }
    }

    /// Whether a `jwt` query parameter counts on HTTP (MediaMTX's `authJWTInHTTPQuery`).
    pub fn jwt_in_http_query(&self) -> bool {
        self.jwt.as_ref().is_some_and(|j| j.in_http_query)
    }

    /// Keeps `old`'s fetched key set when the JWKS URL did not change (a reload); starts a fetch of a
    /// set never fetched.
    pub fn adopt(&mut self, old: &Auth) {
        self.failures = old.failures.clone();
        if let (Some(new), Some(old)) = (self.jwt.as_mut(), old.jwt.as_ref()) {
            if new.keys.url == old.keys.url {
                new.keys = old.keys.clone();
            }
        }
        self.start();
    }

    /// Starts the first fetch of the JWT key set (at start, after a reload that changed its URL).
    pub fn start(&self) {
        if let Some(keys) = self.jwks() {
            if keys.state.lock().unwrap_or_else(|e| e.into_inner()).0.is_none() {
                keys.refresh(true);
            }
        }
    }

    fn check_jwt(jwt: &JwtAuth, request: &AuthRequest) -> Result<(), Denied> {
        if jwt.exclude.iter().any(|(a, p)| *a == request.action && p.matches(request.path)) {
            return Ok(());
        }
        let token = match &request.presented {
            Presented::Nothing => return Err(Denied::CredentialsRequired),
            Presented::Proof(_) => return Err(Denied::WrongCredentials),
            Presented::Credentials { pass, .. } => *pass,
            Presented::Token(t) => *t,
        };
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let expect = jwt::Expect { now, issuer: &jwt.issuer, audience: &jwt.audience, claim_key: &jwt.claim_key };
        match jwt::verify(token, &jwt.keys.keys.load(), &expect) {
            Ok(perms) => {
                let allowed = perms.iter().any(|(a, p)| {
                    action_named(a) == Some(request.action) && path_match(p.clone()).matches(request.path)
                });
                if allowed {
                    Ok(())
                } else {
                    tracing::debug!(action = ?request.action, path = request.path, "auth: the JWT does not allow this");
                    Err(Denied::WrongCredentials)
                }
            }
            Err(e) => {
                tracing::debug!("auth: {e}");
                if matches!(e, jwt::JwtError::UnknownKid(_)) {
                    jwt.keys.refresh(false);
                    return Err(Denied::UnknownKey);
                }
                Err(Denied::WrongCredentials)
            }
        }
    }

    /// Whether `request` may proceed.
    pub fn check(&self, request: &AuthRequest) -> Result<(), Denied> {
        self.check_at(request, Instant::now())
    }

    /// [`Auth::check`] at `now`: an address with too many recent failures is refused unchecked, and a
    /// wrong credential counts against its address.
    pub fn check_at(&self, request: &AuthRequest, now: Instant) -> Result<(), Denied> {
        self.banned(request, now)?;
        let result = self.decide(request);
        self.count(request, now, result)
    }

    /// The one decision point every server awaits: [`Auth::check`]'s rules, and under MediaMTX's HTTP
    /// method a request to its server (`details` fills the fields the request has not).
    pub async fn authorize(&self, request: &AuthRequest<'_>, details: Details<'_>) -> Result<(), Denied> {
        let Some(http) = &self.http else { return self.check(request) };
        self.banned(request, Instant::now())?;
        let result = if http.exclude.iter().any(|(a, p)| *a == request.action && p.matches(request.path)) {
            Ok(())
        } else {
            Self::ask_http(http, request, details).await
        };
        self.count(request, Instant::now(), result)
    }

    /// MediaMTX's HTTP method: one `POST` of its JSON body; `2xx` allows.
    async fn ask_http(http: &HttpAuth, request: &AuthRequest<'_>, details: Details<'_>) -> Result<(), Denied> {
        let (user, password, token) = match &request.presented {
            Presented::Nothing => ("", "", ""),
            Presented::Credentials { user, pass } => (*user, *pass, ""),
            Presented::Token(t) => ("", "", *t),
            // A Digest response cannot be checked by another server (RTSP offers Basic only then).
            Presented::Proof(_) => return Err(Denied::WrongCredentials),
        };
        let ip = match request.origin {
            Origin::Ip(ip) => ip.to_canonical().to_string(),
            Origin::LocalSocket => "127.0.0.1".to_string(),
            Origin::Unknown => String::new(),
        };
        let protocol = match (details.protocol, request.protocol) {
            ("", Protocol::Rtsp) => "rtsp",
            ("", Protocol::Rtmp) => "rtmp",
            (name, _) => name,
        };
        let body = serde_json::json!({
            "user": user,
            "password": password,
            "token": token,
            "ip": ip,
            "action": action_name(request.action),
            "path": request.path,
            "protocol": protocol,
            "id": details.id,
            "query": details.query,
        });
        let headers = [("Content-Type".to_string(), "application/json".to_string())];
        let post = exchange(
            &http.url,
            http.pin,
            hyper::Method::POST,
            &headers,
            bytes::Bytes::from(body.to_string()),
            0,
            HTTP_AUTH_TIMEOUT,
        );
        let url = crate::secrets::mask_url(&http.url);
        match tokio::time::timeout(HTTP_AUTH_TIMEOUT, post).await {
            Ok(Ok((status, _))) if status.is_success() => Ok(()),
            Ok(Ok((status, _))) => {
                tracing::debug!(%url, status = status.as_u16(), action = ?request.action, "auth: the HTTP server refused");
                if matches!(request.presented, Presented::Nothing) {
                    Err(Denied::CredentialsRequired)
                } else {
                    Err(Denied::WrongCredentials)
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(%url, "auth: the HTTP server could not be asked: {e}");
                Err(Denied::Unavailable)
            }
            Err(_) => {
                tracing::warn!(%url, "auth: the HTTP server did not answer within {} s", HTTP_AUTH_TIMEOUT.as_secs());
                Err(Denied::Unavailable)
            }
        }
    }

    /// Refuses an address with too many recent failures, unchecked.
    fn banned(&self, request: &AuthRequest, now: Instant) -> Result<(), Denied> {
        match request.origin {
            Origin::Ip(ip) if self.failures.banned(ip.to_canonical(), now) => Err(Denied::TooManyFailures),
            _ => Ok(()),
        }
    }

    /// Counts a wrong credential against its address; returns `result`.
    fn count(&self, request: &AuthRequest, now: Instant, result: Result<(), Denied>) -> Result<(), Denied> {
        let ip = match request.origin {
            Origin::Ip(ip) => Some(ip.to_canonical()),
            _ => None,
        };
        if let (Some(ip), Err(Denied::WrongCredentials)) = (ip, result) {
            if self.failures.failed(ip, now) {
                tracing::warn!(
                    client = %ip,
                    "auth: {} failed logins within {} s: this address is refused for {} s",
                    FailedLogins::MAX_FAILURES,
                    FailedLogins::WINDOW.as_secs(),
                    FailedLogins::BAN.as_secs()
                );
            }
        }
        result
    }

    fn decide(&self, request: &AuthRequest) -> Result<(), Denied> {
        if let Some(http) = &self.http {
            if http.exclude.iter().any(|(a, p)| *a == request.action && p.matches(request.path)) {
                return Ok(());
            }
            // The HTTP method needs a caller that can wait ([`Auth::authorize`]): refused here.
            tracing::warn!(action = ?request.action, "auth: the HTTP method was asked synchronously: refused");
            return Err(Denied::Unavailable);
        }
        if let Some(jwt) = &self.jwt {
            return Self::check_jwt(jwt, request);
        }
        if let Some(internal) = &self.internal {
            return Self::check_internal(internal, request);
        }
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
            Presented::Proof(_) | Presented::Credentials { .. } | Presented::Token(_) => {
                let proves = |u: &User| match &request.presented {
                    Presented::Proof(proves) => proves(&u.name, &u.password),
                    Presented::Credentials { user, pass } => {
                        let eq = crate::servers::api::constant_time_eq;
                        eq(u.name.as_bytes(), user.as_bytes()) & eq(u.password.as_bytes(), pass.as_bytes())
                    }
                    Presented::Nothing | Presented::Token(_) => false,
                };
                let ok = users.iter().any(|u| u.actions.contains(&request.action) && proves(u));
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
    fn mediamtx_internal_users() {
        // MediaMTX's default: anyone reads and publishes; the API only from this machine.
        let sample = auth("{\"logLevel\":\"info\"}");
        assert_eq!(ask(&sample, Protocol::Rtsp, Action::Publish, REMOTE, None), Ok(()));
        assert_eq!(ask(&sample, Protocol::Http, Action::Read, REMOTE, None), Ok(()));
        assert_eq!(ask(&sample, Protocol::Http, Action::Api, REMOTE, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask(&sample, Protocol::Http, Action::Api, LOOPBACK, None), Ok(()));
        assert_eq!(ask(&sample, Protocol::Http, Action::Api, Origin::LocalSocket, None), Ok(()));

        let a = auth(
            r#"{"authInternalUsers":[
                {"user":"cam","pass":"pw","ips":["192.0.2.0/24"],"permissions":[{"action":"publish","path":"~^cam[0-9]+$"}]},
                {"user":"any","pass":"","ips":[],"permissions":[{"action":"read","path":"public"}]},
                {"user":"admin","pass":"root","ips":[],"permissions":[{"action":"api"},{"action":"read"}]}]}"#,
        );
        let ask_path = |path: &str, action, origin, creds: Option<(&str, &str)>| {
            let proof = |u: &str, p: &str| creds.is_some_and(|(cu, cp)| cu == u && cp == p);
            let presented = if creds.is_some() { Presented::Proof(&proof) } else { Presented::Nothing };
            a.check(&AuthRequest { action, path, protocol: Protocol::Rtsp, origin, presented })
        };
        assert_eq!(ask_path("cam7", Action::Publish, REMOTE, Some(("cam", "pw"))), Ok(()));
        assert_eq!(ask_path("cam7", Action::Publish, REMOTE, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask_path("cam7", Action::Publish, REMOTE, Some(("cam", "no"))), Err(Denied::WrongCredentials));
        assert_eq!(ask_path("camX", Action::Publish, REMOTE, Some(("cam", "pw"))), Err(Denied::WrongCredentials));
        // The publisher's network is checked.
        assert!(ask_path("cam7", Action::Publish, LOOPBACK, Some(("cam", "pw"))).is_err());
        assert_eq!(ask_path("public", Action::Read, REMOTE, None), Ok(()));
        assert_eq!(ask_path("cam7", Action::Read, REMOTE, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask_path("cam7", Action::Read, REMOTE, Some(("admin", "root"))), Ok(()));
        assert!(a.per_path());
        assert!(!sample.per_path());
    }

    /// MediaMTX's own test vectors (`internal/conf/credential_test.go`): both hash "testuser".
    const SHA256_TESTUSER: &str = "sha256:rl3rgi4NcZkpAEcacZnQ2VuOfJ0FxAqCRaKB/SwdZoQ=";
    const ARGON2_TESTUSER: &str =
        "argon2:$argon2id$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Ux/LWeTgJQPyfMMJo1myR64+o8rALHoPmlE1i/TR+58";

    #[test]
    fn hashed_secrets() {
        let sha = Secret::parse(SHA256_TESTUSER).unwrap();
        assert!(sha.verify("testuser"));
        assert!(!sha.verify("notestuser"));
        assert!(!sha.verify(""));
        assert_eq!(sha.plain(), None);
        let argon = Secret::parse(ARGON2_TESTUSER).unwrap();
        assert!(argon.verify("testuser"));
        assert!(!argon.verify("notestuser"));
        assert!(Secret::parse("password").unwrap().verify("password"));
        assert!(!Secret::parse("password").unwrap().verify("wrongpassword"));
        // Malformed values are refused with what is wrong.
        assert!(Secret::parse("sha256:inval*idBase64").unwrap_err().contains("not base64"));
        assert!(Secret::parse("argon2:invalid").unwrap_err().contains("not a PHC string"));
        assert!(Secret::parse(
            "argon2:$argon2d$v=19$m=4096,t=3,p=1$MTIzNDU2Nzg$Xqyd4R7LzXvvAEHaVU12+Nzf5OkHoYcwIEIIYJUDpz0"
        )
        .unwrap_err()
        .contains("argon2d"));
    }

    #[test]
    fn hashed_internal_users() {
        let a = auth(&format!(
            r#"{{"authInternalUsers":[
                {{"user":"{SHA256_TESTUSER}","pass":"{SHA256_TESTUSER}","permissions":[{{"action":"read"}}]}},
                {{"user":"argon","pass":"{ARGON2_TESTUSER}","permissions":[{{"action":"publish"}}]}}]}}"#
        ));
        assert!(a.has_hashed());
        let clear = |action, user: &str, pass: &str| {
            let presented = Presented::Credentials { user, pass };
            a.check(&AuthRequest { action, path: "cam", protocol: Protocol::Rtsp, origin: REMOTE, presented })
        };
        assert_eq!(clear(Action::Read, "testuser", "testuser"), Ok(()));
        assert_eq!(clear(Action::Read, "testuser", "nope"), Err(Denied::WrongCredentials));
        assert_eq!(clear(Action::Publish, "argon", "testuser"), Ok(()));
        assert_eq!(clear(Action::Publish, "argon", "testuserX"), Err(Denied::WrongCredentials));
        // A Digest-style proof needs the plain password: a hashed entry cannot be proven by it.
        assert_eq!(
            ask(&a, Protocol::Rtsp, Action::Publish, REMOTE, Some(("argon", "testuser"))),
            Err(Denied::WrongCredentials)
        );
        assert!(
            !auth(r#"{"authInternalUsers":[{"user":"a","pass":"b","permissions":[{"action":"read"}]}]}"#).has_hashed()
        );
        // go2rtc's users take clear credentials too.
        let g = auth(r#"{"api":{"username":"admin","password":"pw"}}"#);
        let presented = Presented::Credentials { user: "admin", pass: "pw" };
        let ok = AuthRequest { action: Action::Api, path: "", protocol: Protocol::Http, origin: REMOTE, presented };
        assert_eq!(g.check(&ok), Ok(()));
        assert_eq!(basic_credentials("Basic YWRtaW46cDp3"), Some(("admin".into(), "p:w".into())));
        assert_eq!(basic_credentials("basic !!"), None);
        assert_eq!(basic_credentials("Bearer abc"), None);
        assert_eq!(bearer_token("Bearer a.b.c "), Some("a.b.c"));
        assert_eq!(query_token("x=1&jwt=a.b%2Ec/trackID=0").as_deref(), Some("a.b.c"));
        // A token in a URL never reaches a log line.
        assert_eq!(crate::secrets::mask_url("rtsp://h:8554/cam?jwt=a.b.c"), "rtsp://h:8554/cam?jwt=***");
    }

    #[test]
    fn failed_logins_are_limited_per_address() {
        let a = auth(r#"{"rtsp":{"username":"cam","password":"pw"}}"#);
        let other = Origin::Ip("192.0.2.8".parse().unwrap());
        let t0 = Instant::now();
        let at = |origin, creds: (&str, &str), now| {
            let proof = |u: &str, p: &str| u == creds.0 && p == creds.1;
            let presented = Presented::Proof(&proof);
            a.check_at(
                &AuthRequest { action: Action::Read, path: "", protocol: Protocol::Rtsp, origin, presented },
                now,
            )
        };
        // Nine failures, then the good password still works.
        for i in 0..9 {
            assert_eq!(at(REMOTE, ("cam", "x"), t0 + Duration::from_secs(i)), Err(Denied::WrongCredentials));
        }
        assert_eq!(at(REMOTE, ("cam", "pw"), t0 + Duration::from_secs(9)), Ok(()));
        // The tenth within the window bans the address, not another one.
        assert_eq!(at(REMOTE, ("cam", "x"), t0 + Duration::from_secs(10)), Err(Denied::WrongCredentials));
        assert_eq!(at(REMOTE, ("cam", "pw"), t0 + Duration::from_secs(11)), Err(Denied::TooManyFailures));
        assert_eq!(at(other, ("cam", "pw"), t0 + Duration::from_secs(11)), Ok(()));
        // The ban lasts 60 s from the tenth failure.
        assert_eq!(at(REMOTE, ("cam", "pw"), t0 + Duration::from_secs(69)), Err(Denied::TooManyFailures));
        assert_eq!(at(REMOTE, ("cam", "pw"), t0 + Duration::from_secs(70)), Ok(()));
        // Failures spread wider than the window never ban.
        for i in 0..30 {
            assert_eq!(at(other, ("cam", "x"), t0 + Duration::from_secs(100 + i * 7)), Err(Denied::WrongCredentials));
        }
        // Requests without credentials are not failures.
        let nothing = AuthRequest {
            action: Action::Read,
            path: "",
            protocol: Protocol::Rtsp,
            origin: Origin::Ip("192.0.2.9".parse().unwrap()),
            presented: Presented::Nothing,
        };
        for _ in 0..20 {
            assert_eq!(a.check_at(&nothing, t0), Err(Denied::CredentialsRequired));
        }
        // Bounded: a full table tracks no new address, and forgets stale ones when it can.
        let limits = FailedLogins::default();
        for i in 0..FailedLogins::MAX_ADDRESSES as u32 {
            limits.failed(IpAddr::V4(std::net::Ipv4Addr::from(i)), t0);
        }
        let newcomer = IpAddr::V4(std::net::Ipv4Addr::new(203, 0, 113, 1));
        assert!(!limits.failed(newcomer, t0 + Duration::from_secs(1)));
        assert_eq!(limits.by_ip.lock().unwrap().len(), FailedLogins::MAX_ADDRESSES);
        limits.failed(newcomer, t0 + Duration::from_secs(61));
        assert_eq!(limits.by_ip.lock().unwrap().len(), 1);
    }

    #[test]
    fn http_method_fails_closed_when_asked_synchronously() {
        let path = std::env::temp_dir().join(format!("camrelay-auth-http-{}.yml", std::process::id()));
        std::fs::write(&path, "authMethod: http\nauthHTTPAddress: http://127.0.0.1:9/auth\nauthHTTPExclude:\n- action: read\n  path: public\n").unwrap();
        let loaded =
            crate::config::load(&[path.display().to_string()], std::path::Path::new("/nonexistent"), &|_| None);
        let _ = std::fs::remove_file(&path);
        let a = Auth::from_config(&loaded.unwrap().config);
        let presented = Presented::Credentials { user: "alice", pass: "secret" };
        let asked =
            AuthRequest { action: Action::Read, path: "cam", protocol: Protocol::Rtsp, origin: REMOTE, presented };
        assert_eq!(a.check(&asked), Err(Denied::Unavailable));
        // Not a failed login: the address is not banned by it.
        for _ in 0..20 {
            let _ = a.check(&asked);
        }
        assert!(!a.failures.banned(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)), Instant::now()));
        // Exclusions need no asking; RTSP offers Basic only; every request is checked.
        let public = AuthRequest { path: "public", presented: Presented::Nothing, ..asked };
        assert_eq!(a.check(&public), Ok(()));
        assert!(a.has_hashed() && a.per_path());
    }

    #[test]
    fn fingerprints() {
        let hex = "33949e05fffb5ff3e8aa16f8213a6251b4d9363804ba53233c4da9a46d6f2739";
        let fp = parse_fingerprint(hex).unwrap();
        assert_eq!((fp[0], fp[31]), (0x33, 0x39));
        let colons: String = hex
            .as_bytes()
            .chunks(2)
            .map(|c| std::str::from_utf8(c).unwrap().to_uppercase())
            .collect::<Vec<_>>()
            .join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), fp);
        assert!(parse_fingerprint("abc").unwrap_err().contains("64 hex digits"));
        assert!(parse_fingerprint(&format!("{hex}00")).is_err());
        assert!(parse_fingerprint(&hex.replace('3', "g")).is_err());
    }

    #[test]
    fn networks() {
        assert!(in_network("10.1.2.3".parse().unwrap(), parse_network("10.0.0.0/8").unwrap()));
        assert!(!in_network("11.1.2.3".parse().unwrap(), parse_network("10.0.0.0/8").unwrap()));
        assert!(in_network("::ffff:127.0.0.1".parse().unwrap(), parse_network("127.0.0.1").unwrap()));
        assert!(in_network("::1".parse().unwrap(), parse_network("::1").unwrap()));
        assert!(parse_network("10.0.0.0/33").is_none());
        assert!(parse_network("nope").is_none());
    }

    #[test]
    fn local_auth_removes_the_exemption() {
        let a = auth(r#"{"api":{"username":"ha","password":"pw","local_auth":true}}"#);
        assert_eq!(ask(&a, Protocol::Http, Action::Api, Origin::LocalSocket, None), Err(Denied::CredentialsRequired));
        assert_eq!(ask(&a, Protocol::Http, Action::Api, Origin::LocalSocket, Some(("ha", "pw"))), Ok(()));
        // RTSP keeps its own setting.
        assert_eq!(ask(&a, Protocol::Rtsp, Action::Read, REMOTE, None), Ok(()));
    }

    #[test]
    fn shown_user_and_query() {
        let internal = auth("{\"logLevel\":\"info\"}");
        let alice = Presented::Credentials { user: "alice", pass: "wonderland" };
        assert_eq!(internal.shown_user(&alice), "alice");
        assert_eq!(internal.shown_user(&Presented::Token("a.b.c")), "");
        assert_eq!(internal.shown_user(&Presented::Nothing), "");
        // Under the JWT method the password is the token and the name is the client's choice: none.
        let jwt = auth("{\"authMethod\":\"jwt\",\"authJWTJWKS\":\"http://127.0.0.1:9/jwks\"}");
        assert_eq!(jwt.shown_user(&alice), "");
        assert_eq!(shown_query("user=alice&pass=wonderland&via=rtmp"), "user=alice&via=rtmp");
        assert_eq!(shown_query("jwt=a.b.c&x=1&pass"), "x=1");
        assert_eq!(shown_query(""), "");
        assert_eq!(shown_query("a=1&&b=2"), "a=1&b=2");
    }
}
