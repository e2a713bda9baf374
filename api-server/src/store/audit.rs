//! Audit events. Written in the transaction of the change they record.

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tooken_contract::audit::{Actor, ActorKind, AuditEvent};

pub fn actor_kind_str(kind: ActorKind) -> &'static str {
    match kind {
        ActorKind::TeamKey => "team_key",
        ActorKind::PersonalKey => "personal_key",
        ActorKind::Token => "token",
        ActorKind::Session => "session",
        ActorKind::System => "system",
    }
}

fn parse_actor_kind(kind: &str) -> Result<ActorKind, sqlx::Error> {
    Ok(match kind {
        "team_key" => ActorKind::TeamKey,
        "personal_key" => ActorKind::PersonalKey,
        "token" => ActorKind::Token,
        "session" => ActorKind::Session,
        "system" => ActorKind::System,
        other => {
            return Err(sqlx::Error::Decode(
                format!("unknown actor kind `{other}`").into(),
            ));
        }
    })
}

const COLUMNS: &str = "id, event_type, actor_kind, actor_id, actor_label, target_type, target_id, \
                       request_id, created_at, data";

fn from_row(row: &AnyRow) -> Result<AuditEvent, sqlx::Error> {
    Ok(AuditEvent {
        id: row.try_get("id")?,
        kind: row.try_get("event_type")?,
        actor: Actor {
            kind: parse_actor_kind(&row.try_get::<String, _>("actor_kind")?)?,
            id: row.try_get("actor_id")?,
            label: row.try_get("actor_label")?,
        },
        target_type: row.try_get("target_type")?,
        target_id: row.try_get("target_id")?,
        request_id: row.try_get("request_id")?,
        created_at: from_micros(row.try_get("created_at")?),
        data: serde_json::from_str(&row.try_get::<String, _>("data")?)
            .map_err(|err| sqlx::Error::Decode(Box::new(err)))?,
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    workspace_id: &str,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO audit_events (id, workspace_id, event_type, actor_kind, actor_id, actor_label, \
         target_type, target_id, request_id, created_at, data) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&event.id)
    .bind(workspace_id)
    .bind(&event.kind)
    .bind(actor_kind_str(event.actor.kind))
    .bind(&event.actor.id)
    .bind(&event.actor.label)
    .bind(&event.target_type)
    .bind(&event.target_id)
    .bind(&event.request_id)
    .bind(to_micros(event.created_at))
    .bind(event.data.to_string())
    .execute(conn)
    .await?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub kind: Option<&'a str>,
    pub actor: Option<&'a str>,
    pub target: Option<&'a str>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

/// Builds `WHERE …` with numbered placeholders, and the values to bind in order.
fn conditions(workspace_id: &str, filter: &Filter<'_>) -> (String, Vec<Bind>) {
    let mut sql = String::from(" WHERE workspace_id = $1");
    let mut binds = vec![Bind::Text(workspace_id.to_owned())];
    let mut push = |clause: &str, bind: Bind| {
        binds.push(bind);
        sql.push_str(&clause.replace('?', &format!("${}", binds.len())));
    };
    if let Some(kind) = filter.kind {
        push(" AND event_type = ?", Bind::Text(kind.to_owned()));
    }
    if let Some(actor) = filter.actor {
        push(" AND actor_id = ?", Bind::Text(actor.to_owned()));
    }
    if let Some(target) = filter.target {
        push(" AND target_id = ?", Bind::Text(target.to_owned()));
    }
    if let Some(since) = filter.since {
        push(" AND created_at >= ?", Bind::Int(to_micros(since)));
    }
    if let Some(until) = filter.until {
        push(" AND created_at < ?", Bind::Int(to_micros(until)));
    }
    (sql, binds)
}

enum Bind {
    Text(String),
    Int(i64),
}

async fn fetch(
    conn: &mut AnyConnection,
    sql: String,
    binds: Vec<Bind>,
) -> Result<Vec<AuditEvent>, StoreError> {
    let mut query = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        query = match bind {
            Bind::Text(text) => query.bind(text),
            Bind::Int(int) => query.bind(int),
        };
    }
    let rows = query.fetch_all(conn).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// One page, newest first. Ids are UUIDv7, so id order is time order.
pub async fn list(
    conn: &mut AnyConnection,
    workspace_id: &str,
    filter: &Filter<'_>,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (mut sql, mut binds) = conditions(workspace_id, filter);
    if let Some(before_id) = before_id {
        binds.push(Bind::Text(before_id.to_owned()));
        sql.push_str(&format!(" AND id < ${}", binds.len()));
    }
    binds.push(Bind::Int(i64::from(limit)));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events{sql} ORDER BY id DESC LIMIT ${}",
        binds.len()
    );
    fetch(conn, sql, binds).await
}

/// One page of an export, oldest first, after `after_id`.
pub async fn export_page(
    conn: &mut AnyConnection,
    workspace_id: &str,
    filter: &Filter<'_>,
    after_id: Option<&str>,
    limit: u32,
) -> Result<Vec<AuditEvent>, StoreError> {
    let (mut sql, mut binds) = conditions(workspace_id, filter);
    if let Some(after_id) = after_id {
        binds.push(Bind::Text(after_id.to_owned()));
        sql.push_str(&format!(" AND id > ${}", binds.len()));
    }
    binds.push(Bind::Int(i64::from(limit)));
    let sql = format!(
        "SELECT {COLUMNS} FROM audit_events{sql} ORDER BY id ASC LIMIT ${}",
        binds.len()
    );
    fetch(conn, sql, binds).await
}

/// Deletes a workspace's events older than `before`; returns how many.
pub async fn purge(
    conn: &mut AnyConnection,
    workspace_id: &str,
    before: Timestamp,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM audit_events WHERE workspace_id = $1 AND created_at < $2")
            .bind(workspace_id)
            .bind(to_micros(before))
            .execute(conn)
            .await?
            .rows_affected(),
    )
}
