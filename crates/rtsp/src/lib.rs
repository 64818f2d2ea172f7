//! Sans-IO RTSP building blocks: the message codec, SDP, `Transport`, Basic/Digest auth and URL/header
//! helpers. No sockets and no clocks here; the client and server sessions in `camrelay` drive them.

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
