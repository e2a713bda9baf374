//! Signed-in sessions. Only the hash of a session secret is stored.

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct SessionRow {
    pub id: String,
    pub user_id: String,
    pub user_email: String,
    pub secret_hash: String,
    pub expires_at: Timestamp,
}

pub async fn insert(
    conn: &mut AnyConnection,
    id: &str,
    user_id: &str,
    secret_hash: &str,
    now: Timestamp,
    expires_at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, secret_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(user_id)
    .bind(secret_hash)
    .bind(to_micros(now))
    .bind(to_micros(expires_at))
    .execute(conn)
    .await?;
    Ok(())
}

/// The session with this secret hash, with its user's email.
pub async fn find(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> Result<Option<SessionRow>, StoreError> {
    let row = sqlx::query(
        "SELECT s.id, s.user_id, u.email, s.secret_hash, s.expires_at FROM sessions s \
         JOIN users u ON u.id = s.user_id WHERE s.secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(SessionRow {
        id: row.try_get("id")?,
        user_id: row.try_get("user_id")?,
        user_email: row.try_get("email")?,
        secret_hash: row.try_get("secret_hash")?,
        expires_at: from_micros(row.try_get("expires_at")?),
    }))
}

pub async fn delete(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM sessions WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn purge_expired(conn: &mut AnyConnection, now: Timestamp) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
        .bind(to_micros(now))
        .execute(conn)
        .await?
        .rows_affected())
}
