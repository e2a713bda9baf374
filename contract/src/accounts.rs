//! Accounts and sessions for people (`/v1/auth/…`).

use crate::members::Role;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    #[schema(format = Email)]
    pub email: String,
    /// 10 to 256 characters.
    #[schema(min_length = 10, max_length = 256)]
    pub password: String,
    /// Deliver the session as an HttpOnly cookie (for the dashboard) instead of in the body;
    /// the response then carries `csrf_token` for the `X-CSRF-Token` header.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cookie: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    #[schema(format = Email)]
    pub email: String,
    pub password: String,
    /// Deliver the session as an HttpOnly cookie (for the dashboard) instead of in the body;
    /// the response then carries `csrf_token` for the `X-CSRF-Token` header.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub cookie: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    #[schema(format = Email)]
    pub email: String,
    pub created_at: Timestamp,
}

/// A signed-in session. `token` is shown once; send it as `Authorization: Bearer …`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub user: User,
    /// The session secret (`tok_sess_…`); absent when it went into the cookie instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub expires_at: Timestamp,
    /// For cookie sessions: send it as `X-CSRF-Token` with every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Membership {
    pub workspace_id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
    pub member_id: String,
    pub role: Role,
}

/// An invitation waiting for the signed-in user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PendingInvitation {
    /// Accept with `POST /v1/invitations/{id}/accept`.
    pub id: String,
    pub workspace_name: String,
    pub workspace_slug: String,
    pub role: Role,
    pub invited_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub memberships: Vec<Membership>,
    pub invitations: Vec<PendingInvitation>,
    /// For cookie sessions: send it as `X-CSRF-Token` with every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}
