//! camrelay: a camera streaming server. The binary's library: config, stream hub, sources, servers.

pub mod app;
pub mod audio;
pub mod auth;
pub mod config;
pub mod dial;
#[doc(hidden)]
pub mod fuzzing;
pub mod hooks;
pub mod http_client;
pub mod hub;
pub mod logging;
pub mod playback;
pub mod push;
pub mod record;
pub mod reload;
pub mod secrets;
pub mod servers;
pub mod sources;
pub mod tls;
