//! API key rows.

use super::{StoreError, WriteTx, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tooken_contract::api_keys::{ApiKey, ApiKeyKind};

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub kind: ApiKeyKind,
    pub member_id: Option<String>,
    pub prefix: String,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

impl ApiKeyRow {
    pub fn to_api(&self) -> ApiKey {
        ApiKey {
            id: self.id.clone(),
            name: self.name.clone(),
            kind: self.kind,
            member_id: self.member_id.clone(),
            prefix: self.prefix.clone(),
            created_at: self.created_at,
            last_used_at: self.last_used_at,
        }
    }
}

pub fn kind_str(kind: ApiKeyKind) -> &'static str {
    match kind {
        ApiKeyKind::Personal => "personal",
        ApiKeyKind::Team => "team",
    }
}

pub fn parse_kind(kind: &str) -> Result<ApiKeyKind, sqlx::Error> {
    match kind {
        "personal" => Ok(ApiKeyKind::Personal),
        "team" => Ok(ApiKeyKind::Team),
        other => Err(sqlx::Error::Decode(
            format!("unknown api key kind `{other}`").into(),
        )),
    }
}

const COLUMNS: &str = "id, workspace_id, name, kind, member_id, prefix, created_at, last_used_at";

fn from_row(row: &AnyRow) -> Result<ApiKeyRow, sqlx::Error> {
    Ok(ApiKeyRow {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        kind: parse_kind(&row.try_get::<String, _>("kind")?)?,
        member_id: row.try_get("member_id")?,
        prefix: row.try_get("prefix")?,
        created_at: from_micros(row.try_get("created_at")?),
        last_used_at: row
            .try_get::<Option<i64>, _>("last_used_at")?
            .map(from_micros),
    })
}

pub async fn insert(
    conn: &mut AnyConnection,
    key: &ApiKeyRow,
    secret_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO api_keys (id, workspace_id, name, kind, member_id, secret_hash, prefix, \
         created_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL)",
    )
    .bind(&key.id)
    .bind(&key.workspace_id)
    .bind(&key.name)
    .bind(kind_str(key.kind))
    .bind(&key.member_id)
    .bind(secret_hash)
    .bind(&key.prefix)
    .bind(to_micros(key.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<ApiKeyRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1 AND id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// One page of keys, newest first, optionally only those of one member.
pub async fn list(
    conn: &mut AnyConnection,
    workspace_id: &str,
    member_id: Option<&str>,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<ApiKeyRow>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM api_keys WHERE workspace_id = $1");
    let mut next = 2;
    if member_id.is_some() {
        sql.push_str(&format!(" AND member_id = ${next}"));
        next += 1;
    }
    if before_id.is_some() {
        sql.push_str(&format!(" AND id < ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id);
    if let Some(member_id) = member_id {
        query = query.bind(member_id);
    }
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Gives the key a new secret; the old one stops matching at once.
pub async fn regenerate(
    tx: &mut WriteTx,
    workspace_id: &str,
    id: &str,
    secret_hash: &str,
    prefix: &str,
) -> Result<bool, StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    let updated = sqlx::query(
        "UPDATE api_keys SET secret_hash = $1, prefix = $2 WHERE workspace_id = $3 AND id = $4",
    )
    .bind(secret_hash)
    .bind(prefix)
    .bind(workspace_id)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

pub async fn delete(tx: &mut WriteTx, workspace_id: &str, id: &str) -> Result<bool, StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    let deleted = sqlx::query("DELETE FROM api_keys WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(deleted == 1)
}
