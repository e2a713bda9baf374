//! The Tooken REST API server.

pub mod app;
pub mod audit;
pub mod auth;
pub mod bootstrap;
pub mod cli;
pub mod csv;
pub mod delivery;
pub mod http;
#[cfg(test)]
mod layering;
pub mod maintenance;
pub mod metrics;
pub mod outbox;
pub mod rate_limit;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod test_support;
pub mod usage;
pub mod webhook_targets;

/// reqwest and sqlx use rustls; exactly one crypto provider must be installed first.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
