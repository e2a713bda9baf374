//! Tooken's wire contract, shared by the api-server, the operator, the sidecar and REST clients.
//!
//! It holds no server or database code: only the JSON shapes, the scopes, the credential
//! format, the webhook signature scheme and, with the `client` feature, a typed HTTP client.

pub mod accounts;
pub mod api_keys;
pub mod audit;
#[cfg(feature = "client")]
pub mod client;
pub mod credential;
pub mod downstream;
pub mod error;
pub mod labels;
pub mod members;
pub mod page;
pub mod scope;
pub mod serde_helpers;
pub mod signature;
pub mod tokens;
pub mod webhooks;
pub mod workspaces;

#[cfg(feature = "client")]
pub use client::{Client, ClientError};
pub use credential::{CredentialFormatError, Secret};
pub use error::ErrorBody;
pub use scope::Scope;
