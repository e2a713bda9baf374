//! The signed webhook endpoint shared by both modes: `POST /webhooks/tooken`.

pub mod error;
pub mod replay;
pub mod rotation;
pub mod routes;
pub mod verify;

pub use error::WebhookError;
pub use rotation::{HandleError, Handled, Rotation, RotationHandler};
pub use routes::WebhookState;
pub use verify::Verifier;
