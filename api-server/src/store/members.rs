//! Workspace members and their roles.

use super::{StoreError, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::Row;
use tooken_contract::members::Role;

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub role: Role,
    pub created_at: Timestamp,
}

pub async fn insert(conn: &mut AnyConnection, member: &Member) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO members (id, workspace_id, email, role, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&member.id)
    .bind(&member.workspace_id)
    .bind(&member.email)
    .bind(member.role.as_str())
    .bind(to_micros(member.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The role of a member of `workspace_id`, if there is such a member.
pub async fn role(
    conn: &mut AnyConnection,
    workspace_id: &str,
    member_id: &str,
) -> Result<Option<Role>, StoreError> {
    let row = sqlx::query("SELECT role FROM members WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(member_id)
        .fetch_optional(conn)
        .await?;
    Ok(row
        .map(|row| row.try_get::<String, _>("role"))
        .transpose()?
        .and_then(|role| role.parse().ok()))
}
