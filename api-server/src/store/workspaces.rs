//! Workspace rows.

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::Row;
use sqlx::any::AnyRow;

pub const DEFAULT_TOKEN_EXPIRY_DAYS: i64 = 90;
pub const DEFAULT_AUDIT_RETENTION_DAYS: i64 = 90;

#[derive(Debug, Clone, PartialEq)]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub slug: String,
    pub timezone: String,
    /// `None`: new tokens never expire unless asked to.
    pub default_token_expiry_days: Option<i64>,
    pub audit_retention_days: i64,
    pub created_at: Timestamp,
}

const COLUMNS: &str =
    "id, name, slug, timezone, default_token_expiry_days, audit_retention_days, created_at";

fn from_row(row: &AnyRow) -> Result<Workspace, sqlx::Error> {
    Ok(Workspace {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        slug: row.try_get("slug")?,
        timezone: row.try_get("timezone")?,
        default_token_expiry_days: row.try_get("default_token_expiry_days")?,
        audit_retention_days: row.try_get("audit_retention_days")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

pub async fn insert(conn: &mut AnyConnection, workspace: &Workspace) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO workspaces (id, name, slug, timezone, default_token_expiry_days, \
         audit_retention_days, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&workspace.id)
    .bind(&workspace.name)
    .bind(&workspace.slug)
    .bind(&workspace.timezone)
    .bind(workspace.default_token_expiry_days)
    .bind(workspace.audit_retention_days)
    .bind(to_micros(workspace.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(conn: &mut AnyConnection, id: &str) -> Result<Option<Workspace>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workspaces WHERE id = $1");
    let row = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}
