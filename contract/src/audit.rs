//! Audit log entries (`/v1/audit-logs`).

use crate::serde_helpers::rfc3339;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// What kind of credential acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    TeamKey,
    PersonalKey,
    Token,
    Session,
    /// Tooken itself: the expiry sweep, retention.
    System,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Actor {
    pub kind: ActorKind,
    /// The API key, token, or user id; `null` for the system.
    pub id: Option<String>,
    /// A readable name: the key or token name, or the user's email.
    pub label: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEvent {
    pub id: String,
    /// e.g. `token.created`, `member.role_changed`, `workspace.settings_changed`.
    #[serde(rename = "type")]
    pub kind: String,
    pub actor: Actor,
    /// e.g. `token`, `api_key`, `member`, `workspace`.
    pub target_type: String,
    pub target_id: String,
    pub request_id: Option<String>,
    pub created_at: Timestamp,
    /// Details; for settings changes, `{"changes": {"field": {"from": …, "to": …}}}`.
    /// Never contains a secret.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditEventList {
    pub data: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListAuditParams {
    /// Only events of this type, e.g. `token.revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "type")]
    pub kind: Option<String>,
    /// Only events by this actor id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Only events about this target id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// RFC 3339; events at or after.
    #[serde(
        default,
        deserialize_with = "rfc3339::option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[param(value_type = Option<String>, format = DateTime)]
    pub since: Option<Timestamp>,
    /// RFC 3339; events before.
    #[serde(
        default,
        deserialize_with = "rfc3339::option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[param(value_type = Option<String>, format = DateTime)]
    pub until: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportAuditParams {
    /// RFC 3339 start of the range (inclusive).
    #[serde(deserialize_with = "rfc3339::deserialize")]
    #[param(value_type = String, format = DateTime)]
    pub since: Timestamp,
    /// RFC 3339 end of the range (exclusive).
    #[serde(deserialize_with = "rfc3339::deserialize")]
    #[param(value_type = String, format = DateTime)]
    pub until: Timestamp,
}
