//! Failed sign-ins, counted per email and per client address for throttling. Kept in the
//! database so every replica counts the same failures.

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

pub async fn record(
    conn: &mut AnyConnection,
    keys: &[&str],
    now: Timestamp,
) -> Result<(), StoreError> {
    for key in keys {
        sqlx::query("INSERT INTO signin_failures (throttle_key, at) VALUES ($1, $2)")
            .bind(*key)
            .bind(to_micros(now))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

/// How many failures `key` has since `since`, and the oldest of them.
pub async fn count_since(
    conn: &mut AnyConnection,
    key: &str,
    since: Timestamp,
) -> Result<(i64, Option<Timestamp>), StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, MIN(at) AS oldest FROM signin_failures \
         WHERE throttle_key = $1 AND at >= $2",
    )
    .bind(key)
    .bind(to_micros(since))
    .fetch_one(conn)
    .await?;
    Ok((
        row.try_get("n")?,
        row.try_get::<Option<i64>, _>("oldest")?.map(from_micros),
    ))
}

pub async fn clear(conn: &mut AnyConnection, key: &str) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM signin_failures WHERE throttle_key = $1")
        .bind(key)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn purge_before(conn: &mut AnyConnection, before: Timestamp) -> Result<u64, StoreError> {
    Ok(sqlx::query("DELETE FROM signin_failures WHERE at < $1")
        .bind(to_micros(before))
        .execute(conn)
        .await?
        .rows_affected())
}
