//! Accounts and sessions for people (`/v1/auth/…`).

use crate::members::Role;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignUpRequest {
    pub email: String,
    /// 10 to 256 characters.
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignInRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct User {
    pub id: String,
    pub email: String,
    pub created_at: Timestamp,
}

/// A signed-in session. `token` is shown once; send it as `Authorization: Bearer …`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Session {
    pub user: User,
    /// The session secret (`tok_sess_…`).
    pub token: String,
    pub expires_at: Timestamp,
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
}
