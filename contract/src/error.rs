//! The error body every `/v1` route returns: `{"error": "<code>", "message": "…"}`
//! (README "The API", Errors).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable, machine-readable code such as `unauthorized` or `validation_failed`.
    pub error: String,
    /// A human-readable explanation. Never contains a secret.
    pub message: String,
    /// For validation errors: the request field at fault, e.g. `scopes[1]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// The exact message of every 401 (README "The API", Errors).
pub const UNAUTHORIZED_MESSAGE: &str = "Invalid or missing API key";
