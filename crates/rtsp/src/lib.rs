//! Sans-IO RTSP building blocks: the message codec, SDP, `Transport`, Basic/Digest auth and URL/header
//! helpers, and the RTSP client session as a state machine ([`client::RtspClient`]). No sockets and no
//! clocks here: `camrelay` moves the bytes and passes the time in.

#![forbid(unsafe_code)]

pub mod auth;
pub mod client;
pub mod message;
pub mod sdp;
pub mod transport;
pub mod url;

pub use message::{
    decode, decode_buf, encode_interleaved_header, Decoded, Headers, Message, MessageError, Method, Request, Response,
};
pub use sdp::{SdpError, SessionDescription};
pub use transport::{Transport, TransportError};
