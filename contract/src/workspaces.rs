//! Workspaces and their settings (`/v1/workspaces`, `/v1/workspace`).

use crate::serde_helpers::{double_option, non_null};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    /// URL-safe; `/v1/workspaces/{slug}/…` paths use it.
    pub slug: String,
    /// IANA time zone used to display times (storage is always UTC).
    pub timezone: String,
    /// Expiry applied to new tokens that name none; `null` means they never expire.
    pub default_token_expiry_days: Option<i64>,
    pub audit_retention_days: i64,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspaceRequest {
    /// 1–128 characters, without control characters; surrounding whitespace is trimmed.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// 1–63 lowercase letters, digits and inner hyphens; derived from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub slug: Option<String>,
}

/// Absent fields are left as they are; `null` is refused except where it means "never".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateWorkspaceRequest {
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    /// 1–128 characters, without control characters; surrounding whitespace is trimmed.
    #[schema(
        nullable = false,
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    /// 1–63 lowercase letters, digits and inner hyphens.
    #[schema(nullable = false, pattern = "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]
    pub slug: Option<String>,
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false)]
    pub timezone: Option<String>,
    /// 1–365, or `null` for tokens that never expire by default.
    #[serde(
        default,
        with = "double_option",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 365)]
    pub default_token_expiry_days: Option<Option<i64>>,
    /// 1–365.
    #[serde(
        default,
        deserialize_with = "non_null::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(nullable = false, minimum = 1, maximum = 365)]
    pub audit_retention_days: Option<i64>,
}
