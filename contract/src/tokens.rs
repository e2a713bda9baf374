//! Requests and responses of the `/v1/tokens` routes.

use crate::labels::{self, Labels};
use crate::scope::Scope;
use crate::serde_helpers::{double_option, rfc3339};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

/// A token's metadata. The secret is never part of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub status: TokenStatus,
    /// The first characters of the current secret, safe to display.
    pub prefix: String,
    pub created_at: Timestamp,
    /// `null` when the token never expires.
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub last_used_at: Option<Timestamp>,
    /// When the secret was last rotated, `null` if never.
    pub rotated_at: Option<Timestamp>,
    /// How many times the secret has been rotated; names the secret generation a copy holds.
    pub rotation: i64,
    /// Set on a confined token: it sees and manages only tokens whose name starts with this,
    /// and creates only tokens confined within it. `null`: the token is not confined.
    // `default` lets clients read answers of servers older than the field; those send it always.
    #[serde(default)]
    #[schema(required = true)]
    pub name_prefix: Option<String>,
    /// Which namespace and resource the token serves, e.g. `tooken.io/namespace`.
    #[serde(default)]
    #[schema(schema_with = labels::schema, required = true)]
    pub labels: Labels,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    /// 1–128 characters, without control characters; surrounding whitespace is trimmed.
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// At least one.
    #[schema(min_items = 1)]
    pub scopes: Vec<Scope>,
    /// RFC 3339. Absent: the workspace default (90 days unless changed). `null`: never expires.
    #[serde(
        default,
        serialize_with = "double_option::serialize",
        deserialize_with = "rfc3339::double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Timestamp>>,
    /// Confines the token to names starting with this (1-128 characters, no control
    /// characters, no surrounding whitespace): `name` must start with it, and only
    /// `tokens:*` scopes may be asked for. A confined caller may only narrow its own prefix;
    /// absent or `null`, its token gets the caller's prefix.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(
        min_length = 1,
        max_length = 128,
        pattern = r"^[^\s\x00-\x1f\x7f-\x9f]([^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f])?$"
    )]
    pub name_prefix: Option<String>,
    #[serde(default, skip_serializing_if = "Labels::is_empty")]
    #[schema(schema_with = labels::schema)]
    pub labels: Labels,
}

/// A token together with its secret. The secret is shown here once and never again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IssuedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The secret (`tok_live_…`). `null` when this is a replay of an idempotent request.
    pub secret: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RotateTokenRequest {
    /// How long the previous secret keeps working, in seconds (0–2592000, default 0).
    /// Never beyond the token's `expires_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(maximum = 2592000)]
    pub grace_period_seconds: Option<u64>,
    /// A new expiry. Absent: unchanged. `null`: never expires. In the past: rejected.
    #[serde(
        default,
        serialize_with = "double_option::serialize",
        deserialize_with = "rfc3339::double_option::deserialize",
        skip_serializing_if = "Option::is_none"
    )]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<Option<Timestamp>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RotatedToken {
    #[serde(flatten)]
    pub token: Token,
    /// The new secret. `null` when this is a replay of an idempotent request.
    pub secret: Option<String>,
    /// Until when the previous secret is still accepted (equal to `rotated_at` without grace).
    pub previous_secret_expires_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenList {
    pub data: Vec<Token>,
    /// Pass as `cursor` to get the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListTokensParams {
    /// Only tokens in this status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<TokenStatus>,
    /// How many tokens to return (1–200, default 50).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyTokenRequest {
    /// The secret presented to your service.
    pub token: String,
    /// If given, the token is valid only when it holds all of these scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum VerifyReason {
    Valid,
    /// Not a well-formed `tok_live_` value (bad prefix, length, alphabet or checksum).
    Malformed,
    /// No token of this workspace has this secret (or, for a confined caller, none inside
    /// its prefix).
    NotFound,
    Expired,
    Revoked,
    /// The secret was replaced by a rotation and its grace period is over.
    Rotated,
    /// The token lacks a scope the request asked for.
    InsufficientScope,
}

impl VerifyReason {
    pub fn as_str(self) -> &'static str {
        match self {
            VerifyReason::Valid => "valid",
            VerifyReason::Malformed => "malformed",
            VerifyReason::NotFound => "not_found",
            VerifyReason::Expired => "expired",
            VerifyReason::Revoked => "revoked",
            VerifyReason::Rotated => "rotated",
            VerifyReason::InsufficientScope => "insufficient_scope",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct VerifyTokenResponse {
    pub valid: bool,
    pub reason: VerifyReason,
    /// Present whenever the secret belongs to a token of this workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scopes: Option<Vec<Scope>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Present when the token is confined to names starting with this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_prefix: Option<String>,
    /// For a secret in its grace period after a rotation: when it stops working.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_expires_at: Option<Timestamp>,
}

impl VerifyTokenResponse {
    /// A refusal that names no token, for secrets that match none.
    pub fn invalid(reason: VerifyReason) -> VerifyTokenResponse {
        VerifyTokenResponse {
            valid: false,
            reason,
            token_id: None,
            name: None,
            scopes: None,
            expires_at: None,
            name_prefix: None,
            secret_expires_at: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expires_at_distinguishes_absent_null_and_value() {
        let absent: CreateTokenRequest =
            serde_json::from_str(r#"{"name":"a","scopes":["tokens:read"]}"#).unwrap();
        assert_eq!(absent.expires_at, None);
        let null: CreateTokenRequest =
            serde_json::from_str(r#"{"name":"a","scopes":[],"expires_at":null}"#).unwrap();
        assert_eq!(null.expires_at, Some(None));
        let at: CreateTokenRequest = serde_json::from_str(
            r#"{"name":"a","scopes":[],"expires_at":"2030-01-01T00:00:00+02:00"}"#,
        )
        .unwrap();
        assert_eq!(
            at.expires_at,
            Some(Some("2029-12-31T22:00:00Z".parse().unwrap()))
        );
        // Serialising keeps the distinction so the client can send each form.
        assert!(
            !serde_json::to_string(&absent)
                .unwrap()
                .contains("expires_at")
        );
        assert!(
            serde_json::to_string(&null)
                .unwrap()
                .contains("\"expires_at\":null")
        );
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let err = serde_json::from_str::<CreateTokenRequest>(
            r#"{"name":"a","scopes":[],"expire_at":null}"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("expire_at"), "{err}");
    }
}
