//! Sources (producers that the hub dials on demand), one module per URL scheme.

pub mod demo;
