//! What a `token.rotated` event asks for, and the trait each mode implements to act on it.

use futures::future::BoxFuture;
use std::time::Instant;
use tooken_contract::signature::Event;

pub const TOKEN_ROTATED: &str = "token.rotated";

/// A rotation: token `token_id` now has secret generation `rotation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotation {
    pub event_id: String,
    pub token_id: String,
    pub rotation: u64,
    /// When the sidecar received the delivery, for the event-to-patch latency.
    pub received: Instant,
}

impl Rotation {
    /// The rotation a `token.rotated` event carries (`data.id`, `data.rotation`).
    pub fn from_event(event: &Event, received: Instant) -> Result<Self, String> {
        let token_id = event
            .data
            .get("id")
            .and_then(|id| id.as_str())
            .filter(|id| !id.is_empty())
            .ok_or("data.id (the token id) is missing")?;
        let rotation = event
            .data
            .get("rotation")
            .and_then(|rotation| rotation.as_u64())
            .ok_or("data.rotation (a non-negative integer) is missing")?;
        Ok(Rotation {
            event_id: event.id.clone(),
            token_id: token_id.to_owned(),
            rotation,
            received,
        })
    }
}

/// The outcome of a handled rotation, echoed in the 200 response.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Handled {
    pub message: String,
}

/// Why a rotation could not be handled yet; the delivery is answered 5xx and retried.
/// `Clone` because one coalesced attempt answers several deliveries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandleError {
    #[error("the Secret does not hold the rotated token yet: {0}")]
    SecretNotReady(String),
    #[error("the Kubernetes API failed: {0}")]
    Kubernetes(String),
    /// Not done within the time the sender waits; answered 503 with `Retry-After`.
    #[error("not handled in time: {0}")]
    Timeout(String),
}

impl From<kube::Error> for HandleError {
    fn from(err: kube::Error) -> Self {
        HandleError::Kubernetes(err.to_string())
    }
}

/// Acts on a verified rotation. Answers only once the work is done or durably scheduled, and
/// within the sender's per-attempt timeout, so Tooken's retries give at-least-once handling.
pub trait RotationHandler: Send + Sync + 'static {
    fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>>;
}
