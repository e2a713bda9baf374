//! Webhook endpoints and their delivery log (`/v1/webhooks`).

use crate::serde_helpers::non_null;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// Event types an endpoint can subscribe to.
pub const EVENT_TYPES: [&str; 16] = [
    "token.created",
    "token.rotated",
    "token.revoked",
    "token.expired",
    "api_key.created",
    "api_key.regenerated",
    "api_key.deleted",
    "member.invited",
    "member.joined",
    "member.role_changed",
    "member.removed",
    "webhook.created",
    "webhook.updated",
    "webhook.deleted",
    "workspace.settings_changed",
    "audit.purged",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Webhook {
    pub id: String,
    pub url: String,
    pub description: Option<String>,
    /// The event types delivered to this endpoint.
    pub event_types: Vec<String>,
    pub enabled: bool,
    /// Why Tooken disabled the endpoint (e.g. it answered 410 Gone).
    pub disabled_reason: Option<String>,
    /// When a rotated secret takes over signing; until then the previous one signs.
    pub secret_rotates_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookRequest {
    /// `http://` or `https://`.
    pub url: String,
    pub event_types: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// Absent fields are left as they are.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWebhookRequest {
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub url: Option<String>,
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub event_types: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Enabling a disabled endpoint clears `disabled_reason`.
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub enabled: Option<bool>,
}

/// A webhook with its signing secret, shown once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookWithSecret {
    #[serde(flatten)]
    pub webhook: Webhook,
    /// The signing secret (`whsec_…`) for `X-Tooken-Signature`.
    pub secret: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateWebhookSecretRequest {
    /// How long the current secret keeps signing before the new one takes over (0–604800 s,
    /// default 86400). Receivers should accept both secrets during this time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 604800)]
    pub grace_period_seconds: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct WebhookList {
    pub data: Vec<Webhook>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Delivered,
    /// Gave up after the last retry.
    Failed,
    /// Not attempted because the endpoint was disabled or deleted.
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    pub status: DeliveryStatus,
    pub attempts: i64,
    pub next_attempt_at: Option<Timestamp>,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub last_latency_ms: Option<i64>,
    pub created_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryList {
    pub data: Vec<Delivery>,
    pub next_cursor: Option<String>,
}
