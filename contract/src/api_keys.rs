//! Requests and responses of the `/v1/api-keys` routes.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ApiKeyKind {
    /// Acts with its owner's member role; stops working when that member is removed.
    Personal,
    /// Full workspace access.
    Team,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub kind: ApiKeyKind,
    /// The owning member of a personal key.
    pub member_id: Option<String>,
    /// The first characters of the key, safe to display.
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKeyRequest {
    /// 1–128 characters, without control characters; surrounding whitespace is trimmed.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    pub kind: ApiKeyKind,
    /// For a personal key: its owner. Defaults to the caller when the caller is a personal key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub member_id: Option<String>,
}

/// An API key together with its secret, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedApiKey {
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The key (`tok_live_…`). `null` when this is a replay of an idempotent request.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ApiKeyList {
    pub data: Vec<ApiKey>,
    pub next_cursor: Option<String>,
}
