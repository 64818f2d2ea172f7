//! WHEP signalling: `POST` the SDP offer, take the answer (SDP or go2rtc's JSON) and the session's
//! `Location` (DELETEd when the session ends), following up to [`MAX_REDIRECTS`] redirects (`307`/`308`),
//! with the one HTTP client (`crate::http_client`: Basic or Digest auth, bounded answers).

use bytes::Bytes;

use super::peer::Signal;
use super::sdp::snippet;
use super::target::Target;
use super::{colon, WebrtcSource, CONNECT_TIMEOUT, MAX_REDIRECTS, MAX_SIGNAL_BYTES, SIGNAL_TIMEOUT};
use crate::http_client;
use crate::hub::SourceError;

pub(super) struct HttpAnswer {
    pub(super) status: hyper::StatusCode,
    pub(super) headers: hyper::HeaderMap,
    pub(super) body: Bytes,
    /// Where the answer came from (after redirects): `Location`s resolve against it.
    pub(super) target: Target,
}

/// Timeouts and redirects of WHEP requests.
const OPTIONS: http_client::Options = http_client::Options {
    connect_timeout: CONNECT_TIMEOUT,
    response_timeout: SIGNAL_TIMEOUT,
    max_redirects: MAX_REDIRECTS,
};

/// One WHEP request (the offer, or the DELETE of the session) with the HTTP client; the body is read
/// whole (bounded).
pub(super) async fn http_request(
    t: &Target,
    method: hyper::Method,
    sdp: Option<&str>,
) -> Result<HttpAnswer, SourceError> {
    let (headers, body) = match sdp {
        Some(sdp) => (
            vec![
                ("Content-Type".to_string(), "application/sdp".to_string()),
                ("Accept".to_string(), "application/sdp, application/json".to_string()),
            ],
            Bytes::copy_from_slice(sdp.as_bytes()),
        ),
        None => (Vec::new(), Bytes::new()),
    };
    let exchange = async {
        let (conn, resp) = http_client::request(&t.client(), method, &headers, body, &OPTIONS, None).await?;
        let (parts, mut body) = resp.into_parts();
        let body = http_client::read_body(&mut body, MAX_SIGNAL_BYTES, SIGNAL_TIMEOUT)
            .await
            .map_err(|e| e.map_message(|m| format!("reading the answer: {m}")))?;
        let target = Target::from_client(conn.target());
        Ok::<_, SourceError>(HttpAnswer { status: parts.status, headers: parts.headers, body, target })
    };
    match tokio::time::timeout(SIGNAL_TIMEOUT, exchange).await {
        Ok(r) => r,
        Err(_) => Err(SourceError::network(format!("no answer within {} s", SIGNAL_TIMEOUT.as_secs()))),
    }
}

/// The readable part of an error body: go2rtc's / camrelay's `{"error": "..."}`, or the text's first
/// line (bounded).
pub(crate) fn error_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) {
        if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
            return e.to_string();
        }
    }
    let line = text.lines().map(str::trim).find(|l| !l.is_empty()).unwrap_or("");
    line.chars().take(200).collect()
}

/// The SDP of a WHEP / go2rtc HTTP answer body: raw SDP, or JSON `{"type":"answer","sdp":...}`.
pub(crate) fn answer_sdp(content_type: &str, body: &[u8]) -> Result<String, String> {
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_string())?;
    if content_type.contains("json") || text.trim_start().starts_with('{') {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("the answer is not valid JSON: {e}"))?;
        return match (v.get("type").and_then(|t| t.as_str()), v.get("sdp").and_then(|s| s.as_str())) {
            (Some("answer") | None, Some(sdp)) => Ok(sdp.to_string()),
            _ => Err(format!("expected {{\"type\":\"answer\",\"sdp\":...}}, got {}", snippet(text))),
        };
    }
    Ok(text.to_string())
}

impl WebrtcSource {
    /// Posts the offer; returns the session (its `Location`) and the answer's SDP.
    pub(super) async fn signal_whep(&self, offer: &str) -> Result<(Signal, String, Vec<String>), SourceError> {
        // Redirects (307/308) are followed by the HTTP client.
        let a = http_request(&self.target, hyper::Method::POST, Some(offer))
            .await
            .map_err(|e| self.wrap("WHEP offer", e))?;
        let header = |name| a.headers.get(name).and_then(|v: &hyper::header::HeaderValue| v.to_str().ok());
        if !a.status.is_success() {
            let reason = a.status.canonical_reason().unwrap_or("");
            return Err(
                self.err("WHEP offer", format!("HTTP {} {reason}{}", a.status.as_u16(), colon(&error_body(&a.body))))
            );
        }
        let content_type = header(hyper::header::CONTENT_TYPE).unwrap_or("").to_ascii_lowercase();
        let sdp = answer_sdp(&content_type, &a.body).map_err(|e| self.err("WHEP answer", e))?;
        let location = match header(hyper::header::LOCATION) {
            Some(loc) => Some(a.target.resolve(loc).map_err(|e| self.err("WHEP answer", e))?),
            None => {
                if a.status == hyper::StatusCode::CREATED {
                    tracing::debug!("WHEP answer without Location: the session cannot be deleted");
                }
                None
            }
        };
        Ok((Signal::Whep { location }, sdp, Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_every_shape() {
        assert_eq!(answer_sdp("application/sdp", b"v=0\r\n").unwrap(), "v=0\r\n");
        assert_eq!(answer_sdp("application/json", br#"{"type":"answer","sdp":"v=0"}"#).unwrap(), "v=0");
        assert_eq!(answer_sdp("", br#"{"sdp":"v=0"}"#).unwrap(), "v=0");
        assert!(answer_sdp("application/json", br#"{"type":"offer","sdp":"v=0"}"#).is_err());
        assert!(answer_sdp("application/json", b"{not json").is_err());
        assert!(answer_sdp("application/sdp", b"\xff\xfe").is_err());
        assert_eq!(error_body(br#"{"error":"stream not found: x"}"#), "stream not found: x");
        assert_eq!(error_body(b"\n  404 page not found\nmore"), "404 page not found");
        assert_eq!(error_body(&[b'a'; 1000]).len(), 200);
    }
}
