//! The domain layer: every operation on workspaces, credentials, members, webhooks and the
//! audit log, and the unit of work each change runs in. The HTTP handlers, `bootstrap` and the
//! background jobs all call these; nothing here knows about HTTP.

pub mod accounts;
pub mod api_keys;
pub mod audit_logs;
pub mod confinement;
pub mod error;
pub mod inspect;
pub mod members;
pub mod pagination;
pub mod passwords;
pub mod tokens;
pub mod unit_of_work;
pub mod validate;
pub mod webhooks;
pub mod workspaces;

pub use error::Error;
