//! `tooken-sidecar`: verifies Tooken's signed webhooks and acts on `token.rotated` — rolling the
//! workloads that use the token (receiver mode) or rewriting a token file beside the app (volume
//! mode).

pub mod config;
pub mod keys;
pub mod metrics;
pub mod ops;
pub mod receiver;
pub mod secret_poll;
pub mod server;
pub mod volume;
pub mod webhook;

/// The wall clock, injectable so tests can assert exact timestamps.
pub type Clock = fn() -> jiff::Timestamp;
