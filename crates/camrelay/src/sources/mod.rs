//! Sources (producers that the hub dials on demand), one module per URL scheme.

pub mod bytestream;
pub mod clip;
pub mod demo;
pub mod echo;
pub mod exec;
pub mod ffmpeg;
pub mod hls;
pub mod http;
pub mod offline;
pub mod rtmp;
pub mod rtsp;
pub mod srt;
pub mod udp;
pub mod webrtc;
