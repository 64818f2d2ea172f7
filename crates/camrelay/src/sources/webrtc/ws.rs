//! go2rtc's WebSocket signalling (`/api/ws`): `webrtc/offer`, `webrtc/answer` and
//! `webrtc/candidate` messages (v1 and v2 shapes); the WebSocket stays open for the session.

use futures_util::{SinkExt, StreamExt};
use std::net::SocketAddr;
use str0m::Candidate;
use tokio_tungstenite::tungstenite;

use super::peer::Signal;
use super::target::Target;
use super::whep::error_body;
use super::{colon, WebrtcSource, CONNECT_TIMEOUT, MAX_SIGNAL_BYTES, SIGNAL_TIMEOUT};
use crate::http_client;
use crate::hub::SourceError;

pub(super) type WsStream = http_client::WebSocket;

/// Opens the signalling WebSocket ([`http_client::websocket`]: Basic or Digest auth, bounded
/// messages); returns it with the local address it uses.
pub(super) async fn ws_connect(t: &Target) -> Result<(WsStream, SocketAddr), String> {
    let opts = http_client::WsOptions {
        protocols: None,
        max_message: MAX_SIGNAL_BYTES,
        connect_timeout: CONNECT_TIMEOUT,
        timeout: SIGNAL_TIMEOUT,
    };
    match http_client::websocket(&t.client(), &opts).await {
        Ok(d) => Ok((d.ws, d.local)),
        Err(http_client::WsError::Http { status, reason, body }) => {
            let body = body.as_deref().map(error_body).unwrap_or_default();
            Err(format!("WebSocket: HTTP {status} {reason}{}", colon(&body)))
        }
        Err(http_client::WsError::NoSubprotocol) => Err("WebSocket: no subprotocol".into()),
        Err(http_client::WsError::Other(e)) => Err(e),
    }
}

pub(super) async fn ws_send(ws: &mut WsStream, kind: &str, value: &str) -> Result<(), String> {
    let text = serde_json::json!({ "type": kind, "value": value }).to_string();
    match tokio::time::timeout(SIGNAL_TIMEOUT, ws.send(tungstenite::Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("WebSocket: {e}")),
        Err(_) => Err("WebSocket: send timed out".into()),
    }
}

/// A go2rtc WebSocket message we act on.
#[derive(Debug, PartialEq)]
pub(crate) enum WsMessage {
    Answer(String),
    Candidate(String),
    Error(String),
    Other,
}

/// Parses go2rtc's `{"type":..., "value":...}` (v1, `webrtc/answer`) and its v2 shape
/// (`{"type":"webrtc","value":{"type":"answer","sdp":...}}`).
pub(crate) fn parse_ws_message(text: &str) -> WsMessage {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else { return WsMessage::Other };
    let value = &v["value"];
    match v["type"].as_str().unwrap_or("") {
        "webrtc/answer" => value.as_str().map_or(WsMessage::Other, |s| WsMessage::Answer(s.to_string())),
        "webrtc" if value["type"] == "answer" => {
            value["sdp"].as_str().map_or(WsMessage::Other, |s| WsMessage::Answer(s.to_string()))
        }
        "webrtc/candidate" => {
            let c = value.as_str().or_else(|| value["candidate"].as_str()).unwrap_or("");
            WsMessage::Candidate(c.to_string())
        }
        "webrtc" if value["type"] == "candidate" => {
            WsMessage::Candidate(value["candidate"].as_str().unwrap_or("").to_string())
        }
        "error" => WsMessage::Error(value.as_str().unwrap_or("error").to_string()),
        _ => WsMessage::Other,
    }
}

pub(super) async fn ws_next(signal: &mut Signal) -> Option<Result<tungstenite::Message, tungstenite::Error>> {
    match signal {
        Signal::Ws(ws) => ws.next().await,
        Signal::Whep { .. } | Signal::Closed => std::future::pending().await,
    }
}

impl WebrtcSource {
    /// Sends the offer and our first candidate; waits for the answer, keeping the candidates that
    /// come before it.
    pub(super) async fn signal_ws(
        &self,
        mut ws: WsStream,
        offer: &str,
        candidate: SocketAddr,
    ) -> Result<(Signal, String, Vec<String>), SourceError> {
        ws_send(&mut ws, "webrtc/offer", offer).await.map_err(|e| self.err("offer", e))?;
        if let Ok(c) = Candidate::host(candidate, "udp") {
            ws_send(&mut ws, "webrtc/candidate", &c.to_sdp_string()).await.map_err(|e| self.err("offer", e))?;
        }
        let mut candidates = Vec::new();
        let deadline = tokio::time::Instant::now() + SIGNAL_TIMEOUT;
        loop {
            let msg = match tokio::time::timeout_at(deadline, ws.next()).await {
                Err(_) => return Err(self.err("answer", format!("no answer within {} s", SIGNAL_TIMEOUT.as_secs()))),
                Ok(None) | Ok(Some(Ok(tungstenite::Message::Close(_)))) => {
                    return Err(self.err("answer", "the remote closed the WebSocket without answering"))
                }
                Ok(Some(Err(e))) => return Err(self.err("answer", format!("WebSocket: {e}"))),
                Ok(Some(Ok(tungstenite::Message::Text(t)))) => parse_ws_message(t.as_str()),
                Ok(Some(Ok(_))) => continue,
            };
            match msg {
                WsMessage::Answer(sdp) => return Ok((Signal::Ws(Box::new(ws)), sdp, candidates)),
                WsMessage::Candidate(c) => {
                    if candidates.len() < 64 {
                        candidates.push(c);
                    }
                }
                WsMessage::Error(e) => return Err(self.err("offer", format!("the remote answered: {e}"))),
                WsMessage::Other => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_in_every_shape() {
        assert_eq!(parse_ws_message(r#"{"type":"webrtc/answer","value":"v=0"}"#), WsMessage::Answer("v=0".into()));
        assert_eq!(
            parse_ws_message(r#"{"type":"webrtc","value":{"type":"answer","sdp":"v=0"}}"#),
            WsMessage::Answer("v=0".into())
        );
        assert_eq!(
            parse_ws_message(r#"{"type":"webrtc/candidate","value":"candidate:1 1 udp 1 127.0.0.1 9 typ host"}"#),
            WsMessage::Candidate("candidate:1 1 udp 1 127.0.0.1 9 typ host".into())
        );
        assert_eq!(
            parse_ws_message(r#"{"type":"error","value":"stream not found"}"#),
            WsMessage::Error("stream not found".into())
        );
        for junk in ["", "null", "[]", r#"{"type":1}"#, r#"{"type":"webrtc/answer","value":{}}"#, "\u{0}"] {
            assert_eq!(parse_ws_message(junk), WsMessage::Other, "{junk:?}");
        }
    }
}
