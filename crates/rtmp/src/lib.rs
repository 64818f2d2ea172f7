//! Sans-IO RTMP: the handshake ([`handshake`]), the chunk stream ([`chunk`]), AMF0 ([`amf0`]) and
//! AMF3 inside it ([`amf3`]), the
//! server session state machine ([`server::RtmpServerSession`]) and the client session state machine
//! ([`client::RtmpClientSession`], play and publish). No sockets and no clocks: the driver
//! moves the bytes and passes the time in.

#![forbid(unsafe_code)]

pub mod amf0;
pub mod amf3;
pub mod chunk;
pub mod client;
pub mod handshake;
pub mod message;
pub mod server;

pub use amf0::{Amf0Error, Amf0Reader, Amf0Value};
pub use amf3::{Amf3Error, Amf3Reader, Amf3Value};
pub use chunk::{ChunkError, ChunkReader, ChunkWriter, Message};
pub use client::{
    ClientConfig, ClientError, ClientEvent, ClientMode, RejectKind, RtmpClientSession, RtmpUrl,
    SendError as ClientSendError,
};
pub use server::{MediaKind, RtmpServerSession, ServerConfig, ServerError, ServerEvent};
