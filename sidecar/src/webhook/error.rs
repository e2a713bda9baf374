//! Every way a delivery can fail, each with its own status code and metric reason, mapped in
//! this one place.

use crate::webhook::rotation::HandleError;
use warp::http::StatusCode;

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("the body is larger than {0} bytes")]
    TooLarge(u64),
    #[error("the X-Tooken-Signature header is missing or does not match the body")]
    BadSignature,
    #[error("the body is not a Tooken event: {0}")]
    Malformed(String),
    #[error("the event was created at {created_at}, outside the {tolerance_secs}s tolerance")]
    Stale {
        created_at: jiff::Timestamp,
        tolerance_secs: u64,
    },
    #[error("event {0} was already handled")]
    Replayed(String),
    #[error(transparent)]
    Handling(#[from] HandleError),
}

impl WebhookError {
    pub fn status(&self) -> StatusCode {
        match self {
            WebhookError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            WebhookError::BadSignature => StatusCode::UNAUTHORIZED,
            WebhookError::Malformed(_) => StatusCode::BAD_REQUEST,
            WebhookError::Stale { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            // Acknowledged, not refused: the first delivery was handled, and a non-2xx would make
            // Tooken retry an event that needs nothing more. It is still counted as a replay.
            WebhookError::Replayed(_) => StatusCode::OK,
            // 5xx so that Tooken delivers the event again.
            WebhookError::Handling(HandleError::SecretNotReady(_) | HandleError::Timeout(_)) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            WebhookError::Handling(HandleError::Kubernetes(_)) => StatusCode::BAD_GATEWAY,
        }
    }

    /// The `reason` label of `tooken_sidecar_webhooks_rejected_total` and the body's `error`.
    pub fn reason(&self) -> &'static str {
        match self {
            WebhookError::TooLarge(_) => "too_large",
            WebhookError::BadSignature => "bad_signature",
            WebhookError::Malformed(_) => "malformed",
            WebhookError::Stale { .. } => "stale",
            WebhookError::Replayed(_) => "replayed",
            WebhookError::Handling(HandleError::SecretNotReady(_)) => "secret_not_ready",
            WebhookError::Handling(HandleError::Kubernetes(_)) => "kubernetes_error",
            WebhookError::Handling(HandleError::Timeout(_)) => "timeout",
        }
    }
}
