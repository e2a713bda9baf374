//! Stored responses of POSTs sent with an `Idempotency-Key`. Secrets are removed before storing.

use super::{StoreError, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::Row;

#[derive(Debug, Clone, PartialEq)]
pub struct StoredResponse {
    pub fingerprint: String,
    pub status_code: u16,
    pub body: String,
}

pub struct Key<'a> {
    pub workspace_id: &'a str,
    pub principal_id: &'a str,
    pub key: &'a str,
}

pub async fn find(
    conn: &mut AnyConnection,
    key: &Key<'_>,
    not_before: Timestamp,
) -> Result<Option<StoredResponse>, StoreError> {
    let row = sqlx::query(
        "SELECT fingerprint, status_code, response_body FROM idempotency_keys \
         WHERE workspace_id = $1 AND principal_id = $2 AND idempotency_key = $3 AND created_at >= $4",
    )
    .bind(key.workspace_id)
    .bind(key.principal_id)
    .bind(key.key)
    .bind(to_micros(not_before))
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(StoredResponse {
        fingerprint: row.try_get("fingerprint")?,
        status_code: u16::try_from(row.try_get::<i64, _>("status_code")?).unwrap_or(500),
        body: row.try_get("response_body")?,
    }))
}

/// Stores a response. Fails with a unique violation if a concurrent request stored one first.
pub async fn insert(
    conn: &mut AnyConnection,
    key: &Key<'_>,
    response: &StoredResponse,
    now: Timestamp,
    expired_before: Timestamp,
) -> Result<(), StoreError> {
    // An expired entry under the same key would block the insert; it is no longer replayable.
    sqlx::query(
        "DELETE FROM idempotency_keys WHERE workspace_id = $1 AND principal_id = $2 \
         AND idempotency_key = $3 AND created_at < $4",
    )
    .bind(key.workspace_id)
    .bind(key.principal_id)
    .bind(key.key)
    .bind(to_micros(expired_before))
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "INSERT INTO idempotency_keys (workspace_id, principal_id, idempotency_key, fingerprint, \
         status_code, response_body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(key.workspace_id)
    .bind(key.principal_id)
    .bind(key.key)
    .bind(&response.fingerprint)
    .bind(i64::from(response.status_code))
    .bind(&response.body)
    .bind(to_micros(now))
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes entries older than `before`; returns how many.
pub async fn purge(conn: &mut AnyConnection, before: Timestamp) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
            .bind(to_micros(before))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
