//! Workspace rows.

use super::{StoreError, WriteTx, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

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
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

impl Workspace {
    pub fn to_api(&self) -> tooken_contract::workspaces::Workspace {
        tooken_contract::workspaces::Workspace {
            id: self.id.clone(),
            name: self.name.clone(),
            slug: self.slug.clone(),
            timezone: self.timezone.clone(),
            default_token_expiry_days: self.default_token_expiry_days,
            audit_retention_days: self.audit_retention_days,
            created_at: self.created_at,
        }
    }
}

/// Writes every setting; a unique violation means the slug is taken.
pub async fn update(tx: &mut WriteTx, workspace: &Workspace) -> Result<(), StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    sqlx::query(
        "UPDATE workspaces SET name = $1, slug = $2, timezone = $3, default_token_expiry_days = $4, \
         audit_retention_days = $5 WHERE id = $6",
    )
    .bind(&workspace.name)
    .bind(&workspace.slug)
    .bind(&workspace.timezone)
    .bind(workspace.default_token_expiry_days)
    .bind(workspace.audit_retention_days)
    .bind(&workspace.id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Every workspace, for background jobs.
pub async fn all(conn: &mut AnyConnection) -> Result<Vec<Workspace>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workspaces ORDER BY id");
    let rows = sqlx::query(AssertSqlSafe(sql)).fetch_all(conn).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Locks the workspace row until the transaction ends (a no-op write; SQLite already has one
/// writer), so checks like "is there another Owner" cannot race.
pub async fn lock(conn: &mut AnyConnection, id: &str) -> Result<(), StoreError> {
    sqlx::query("UPDATE workspaces SET name = name WHERE id = $1")
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn by_slug(
    conn: &mut AnyConnection,
    slug: &str,
) -> Result<Option<Workspace>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM workspaces WHERE slug = $1");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(slug)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}
