//! Webhook endpoints, events and deliveries (the outbox).

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tooken_contract::webhooks::{Delivery, DeliveryStatus, Webhook};

#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    pub id: String,
    pub workspace_id: String,
    pub url: String,
    pub description: Option<String>,
    pub event_types: Vec<String>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub secret: String,
    pub pending_secret: Option<String>,
    pub pending_secret_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

impl Endpoint {
    pub fn to_api(&self) -> Webhook {
        Webhook {
            id: self.id.clone(),
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason.clone(),
            secret_rotates_at: self.pending_secret_at,
            created_at: self.created_at,
        }
    }

    /// The secret that signs at `now`: a rotated secret takes over when its time comes.
    pub fn signing_secret(&self, now: Timestamp) -> &str {
        match (&self.pending_secret, self.pending_secret_at) {
            (Some(next), Some(at)) if at <= now => next,
            _ => &self.secret,
        }
    }
}

const ENDPOINT_COLUMNS: &str = "id, workspace_id, url, description, event_types, enabled, \
    disabled_reason, secret, pending_secret, pending_secret_at, created_at";

fn endpoint_from_row(row: &AnyRow) -> Result<Endpoint, sqlx::Error> {
    Ok(Endpoint {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        url: row.try_get("url")?,
        description: row.try_get("description")?,
        event_types: serde_json::from_str(&row.try_get::<String, _>("event_types")?)
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        secret: row.try_get("secret")?,
        pending_secret: row.try_get("pending_secret")?,
        pending_secret_at: row
            .try_get::<Option<i64>, _>("pending_secret_at")?
            .map(from_micros),
        created_at: from_micros(row.try_get("created_at")?),
    })
}

/// Inserts or rewrites an endpoint.
pub async fn save_endpoint(
    conn: &mut AnyConnection,
    endpoint: &Endpoint,
    insert: bool,
) -> Result<(), StoreError> {
    let sql = if insert {
        "INSERT INTO webhook_endpoints (url, description, event_types, enabled, disabled_reason, \
         secret, pending_secret, pending_secret_at, id, workspace_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
    } else {
        "UPDATE webhook_endpoints SET url = $1, description = $2, event_types = $3, enabled = $4, \
         disabled_reason = $5, secret = $6, pending_secret = $7, pending_secret_at = $8 \
         WHERE id = $9 AND workspace_id = $10 AND created_at = $11"
    };
    sqlx::query(sql)
        .bind(&endpoint.url)
        .bind(&endpoint.description)
        .bind(serde_json::to_string(&endpoint.event_types).expect("strings serialise"))
        .bind(i64::from(endpoint.enabled))
        .bind(&endpoint.disabled_reason)
        .bind(&endpoint.secret)
        .bind(&endpoint.pending_secret)
        .bind(endpoint.pending_secret_at.map(to_micros))
        .bind(&endpoint.id)
        .bind(&endpoint.workspace_id)
        .bind(to_micros(endpoint.created_at))
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn get_endpoint(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<Endpoint>, StoreError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(endpoint_from_row).transpose()?)
}

pub async fn list_endpoints(
    conn: &mut AnyConnection,
    workspace_id: &str,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<Endpoint>, StoreError> {
    let sql = match before_id {
        Some(_) => format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 AND id < $2 \
             ORDER BY id DESC LIMIT $3"
        ),
        None => format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 ORDER BY id DESC LIMIT $2"
        ),
    };
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id);
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(endpoint_from_row)
        .collect::<Result<_, _>>()?)
}

/// Enabled endpoints of a workspace; the caller filters by event type.
pub async fn enabled_endpoints(
    conn: &mut AnyConnection,
    workspace_id: &str,
) -> Result<Vec<Endpoint>, StoreError> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE workspace_id = $1 AND enabled = 1"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(workspace_id)
        .fetch_all(conn)
        .await?;
    Ok(rows
        .iter()
        .map(endpoint_from_row)
        .collect::<Result<_, _>>()?)
}

pub async fn delete_endpoint(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("DELETE FROM webhook_endpoints WHERE workspace_id = $1 AND id = $2")
            .bind(workspace_id)
            .bind(id)
            .execute(conn)
            .await?
            .rows_affected()
            == 1,
    )
}

pub async fn insert_event(
    conn: &mut AnyConnection,
    id: &str,
    workspace_id: &str,
    event_type: &str,
    body: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_events (id, workspace_id, event_type, body, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(workspace_id)
    .bind(event_type)
    .bind(body)
    .bind(to_micros(at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn insert_delivery(
    conn: &mut AnyConnection,
    id: &str,
    event_id: &str,
    endpoint_id: &str,
    ordering_key: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_id, endpoint_id, ordering_key, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5)",
    )
    .bind(id)
    .bind(event_id)
    .bind(endpoint_id)
    .bind(ordering_key)
    .bind(to_micros(at))
    .execute(conn)
    .await?;
    Ok(())
}

/// A delivery ready to attempt, with what the attempt needs.
#[derive(Debug, Clone)]
pub struct DueDelivery {
    pub id: String,
    pub event_id: String,
    pub attempts: i64,
    pub body: String,
    pub endpoint: Endpoint,
}

/// Pending deliveries that are due, not held by a live lease, and first in line for their
/// endpoint and ordering key (so each token's events arrive in order).
pub async fn due(
    conn: &mut AnyConnection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<DueDelivery>, StoreError> {
    let sql = format!(
        "SELECT d.id AS delivery_id, d.event_id, d.attempts, ev.body, {} \
         FROM webhook_deliveries d \
         JOIN webhook_events ev ON ev.id = d.event_id \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
         AND (d.lease_until IS NULL OR d.lease_until < $1) AND e.enabled = 1 \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries earlier \
             WHERE earlier.endpoint_id = d.endpoint_id AND earlier.ordering_key = d.ordering_key \
             AND earlier.status = 'pending' AND earlier.id < d.id) \
         ORDER BY d.id LIMIT $2",
        ENDPOINT_COLUMNS
            .split(", ")
            .map(|c| format!("e.{c}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    rows.iter()
        .map(|row| {
            Ok(DueDelivery {
                id: row.try_get("delivery_id")?,
                event_id: row.try_get("event_id")?,
                attempts: row.try_get("attempts")?,
                body: row.try_get("body")?,
                endpoint: endpoint_from_row(row)?,
            })
        })
        .collect::<Result<_, sqlx::Error>>()
        .map_err(StoreError::from)
}

/// Takes a delivery for one attempt. Only one replica succeeds while the lease lasts.
pub async fn claim(
    conn: &mut AnyConnection,
    id: &str,
    now: Timestamp,
    lease_until: Timestamp,
) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2 AND status = 'pending' \
         AND (lease_until IS NULL OR lease_until < $3)",
    )
    .bind(to_micros(lease_until))
    .bind(id)
    .bind(to_micros(now))
    .execute(conn)
    .await?
    .rows_affected()
        == 1)
}

/// The outcome of one attempt.
pub struct Attempt<'a> {
    pub status: DeliveryStatus,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub latency_ms: i64,
    /// For a retry: when.
    pub next_attempt_at: Option<Timestamp>,
    pub at: Timestamp,
}

pub async fn record_attempt(
    conn: &mut AnyConnection,
    id: &str,
    attempt: &Attempt<'_>,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
         lease_until = NULL, last_status_code = $3, last_error = $4, last_latency_ms = $5, \
         delivered_at = $6 WHERE id = $7",
    )
    .bind(status_str(attempt.status))
    .bind(attempt.next_attempt_at.map(to_micros))
    .bind(attempt.status_code)
    .bind(attempt.error)
    .bind(attempt.latency_ms)
    .bind((attempt.status == DeliveryStatus::Delivered).then(|| to_micros(attempt.at)))
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Disables an endpoint and cancels what it still had pending.
pub async fn disable_endpoint(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    reason: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE webhook_endpoints SET enabled = 0, disabled_reason = $1 WHERE id = $2")
        .bind(reason)
        .bind(endpoint_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "UPDATE webhook_deliveries SET status = 'cancelled', last_error = $1, lease_until = NULL \
         WHERE endpoint_id = $2 AND status = 'pending'",
    )
    .bind(reason)
    .bind(endpoint_id)
    .execute(conn)
    .await?;
    Ok(())
}

fn status_str(status: DeliveryStatus) -> &'static str {
    match status {
        DeliveryStatus::Pending => "pending",
        DeliveryStatus::Delivered => "delivered",
        DeliveryStatus::Failed => "failed",
        DeliveryStatus::Cancelled => "cancelled",
    }
}

fn parse_status(status: &str) -> Result<DeliveryStatus, sqlx::Error> {
    Ok(match status {
        "pending" => DeliveryStatus::Pending,
        "delivered" => DeliveryStatus::Delivered,
        "failed" => DeliveryStatus::Failed,
        "cancelled" => DeliveryStatus::Cancelled,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown delivery status `{other}`").into(),
            ));
        }
    })
}

const DELIVERY_COLUMNS: &str = "d.id, d.event_id, ev.event_type, d.status, d.attempts, d.next_attempt_at, \
    d.last_status_code, d.last_error, d.last_latency_ms, d.created_at, d.delivered_at, d.ordering_key";

fn delivery_from_row(row: &AnyRow) -> Result<Delivery, sqlx::Error> {
    let status = parse_status(&row.try_get::<String, _>("status")?)?;
    Ok(Delivery {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        event_type: row.try_get("event_type")?,
        status,
        attempts: row.try_get("attempts")?,
        next_attempt_at: if status == DeliveryStatus::Pending {
            row.try_get::<Option<i64>, _>("next_attempt_at")?
                .map(from_micros)
        } else {
            None
        },
        last_status_code: row.try_get("last_status_code")?,
        last_error: row.try_get("last_error")?,
        last_latency_ms: row.try_get("last_latency_ms")?,
        created_at: from_micros(row.try_get("created_at")?),
        delivered_at: row
            .try_get::<Option<i64>, _>("delivered_at")?
            .map(from_micros),
    })
}

/// One page of an endpoint's delivery log, newest first.
pub async fn list_deliveries(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<Delivery>, StoreError> {
    let sql = match before_id {
        Some(_) => format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id \
             WHERE d.endpoint_id = $1 AND d.id < $2 ORDER BY d.id DESC LIMIT $3"
        ),
        None => format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id \
             WHERE d.endpoint_id = $1 ORDER BY d.id DESC LIMIT $2"
        ),
    };
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(endpoint_id);
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    Ok(rows
        .iter()
        .map(delivery_from_row)
        .collect::<Result<_, _>>()?)
}

/// A delivery of an endpoint, with its ordering key.
pub async fn get_delivery(
    conn: &mut AnyConnection,
    endpoint_id: &str,
    id: &str,
) -> Result<Option<(Delivery, String)>, StoreError> {
    let sql = format!(
        "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN webhook_events ev ON ev.id = d.event_id \
         WHERE d.endpoint_id = $1 AND d.id = $2"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(endpoint_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some((
        delivery_from_row(&row)?,
        row.try_get("ordering_key")?,
    )))
}

/// Promotes rotated secrets whose time has come, so the old ones are forgotten.
pub async fn promote_secrets(conn: &mut AnyConnection, now: Timestamp) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE webhook_endpoints SET secret = pending_secret, pending_secret = NULL, \
         pending_secret_at = NULL WHERE pending_secret IS NOT NULL AND pending_secret_at <= $1",
    )
    .bind(to_micros(now))
    .execute(conn)
    .await?
    .rows_affected())
}

/// Frees every delivery lease. Only for SQLite at start-up: no other process can hold one, so
/// a lease left by a crash would only delay its delivery.
pub async fn release_all_leases(conn: &mut AnyConnection) -> Result<u64, StoreError> {
    Ok(sqlx::query(
        "UPDATE webhook_deliveries SET lease_until = NULL WHERE lease_until IS NOT NULL",
    )
    .execute(conn)
    .await?
    .rows_affected())
}
