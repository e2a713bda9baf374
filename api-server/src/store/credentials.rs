//! Finding the credential behind a presented secret, and recording when credentials were used.

use super::tokens::decode_scopes;
use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tooken_contract::Scope;
use tooken_contract::api_keys::ApiKeyKind;
use tooken_contract::members::Role;

#[derive(Debug, Clone, PartialEq)]
pub struct TokenCredential {
    pub secret_hash: String,
    pub token_id: String,
    pub workspace_id: String,
    pub workspace_slug: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Confines the token to names starting with this; part of the cached principal.
    pub name_prefix: Option<String>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// When this secret was issued: the token's creation, or the rotation that made it.
    pub issued_at: Timestamp,
    /// Set when this secret was replaced by a rotation: the end of its grace period.
    pub secret_valid_until: Option<Timestamp>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ApiKeyCredential {
    pub secret_hash: String,
    pub key_id: String,
    pub name: String,
    /// The owner's email, for a personal key.
    pub member_email: Option<String>,
    pub workspace_id: String,
    pub workspace_slug: String,
    pub kind: ApiKeyKind,
    pub member_id: Option<String>,
    pub role: Option<Role>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Credential {
    Token(TokenCredential),
    ApiKey(ApiKeyCredential),
}

/// A token secret or an API key with this hash, in one round trip.
pub async fn find(
    conn: &mut AnyConnection,
    secret_hash: &str,
) -> Result<Option<Credential>, StoreError> {
    let row = sqlx::query(
        "SELECT 'token' AS source, s.secret_hash, t.id, t.workspace_id, w.slug, t.name, t.scopes, \
         t.expires_at, t.revoked_at, s.valid_until, s.created_at AS issued_at, NULL AS kind, NULL AS member_id, NULL AS role, \
         NULL AS member_email, t.name_prefix \
         FROM token_secrets s JOIN tokens t ON t.id = s.token_id \
         JOIN workspaces w ON w.id = t.workspace_id WHERE s.secret_hash = $1 \
         UNION ALL \
         SELECT 'api_key', k.secret_hash, k.id, k.workspace_id, w.slug, k.name, NULL, NULL, NULL, \
         NULL, NULL, k.kind, k.member_id, m.role, m.email, NULL \
         FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id \
         LEFT JOIN members m ON m.id = k.member_id AND m.status = 'active' \
         WHERE k.secret_hash = $1",
    )
    .bind(secret_hash)
    .fetch_optional(conn)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let opt_time = |col: &str| -> Result<Option<Timestamp>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(col)?.map(from_micros))
    };
    let credential = if row.try_get::<String, _>("source")? == "token" {
        Credential::Token(TokenCredential {
            secret_hash: row.try_get("secret_hash")?,
            token_id: row.try_get("id")?,
            workspace_id: row.try_get("workspace_id")?,
            workspace_slug: row.try_get("slug")?,
            name: row.try_get("name")?,
            scopes: decode_scopes(&row.try_get::<String, _>("scopes")?)?,
            name_prefix: row.try_get("name_prefix")?,
            expires_at: opt_time("expires_at")?,
            revoked_at: opt_time("revoked_at")?,
            issued_at: from_micros(row.try_get::<i64, _>("issued_at")?),
            secret_valid_until: opt_time("valid_until")?,
        })
    } else {
        Credential::ApiKey(ApiKeyCredential {
            secret_hash: row.try_get("secret_hash")?,
            key_id: row.try_get("id")?,
            name: row.try_get("name")?,
            member_email: row.try_get("member_email")?,
            workspace_id: row.try_get("workspace_id")?,
            workspace_slug: row.try_get("slug")?,
            kind: super::api_keys::parse_kind(&row.try_get::<String, _>("kind")?)?,
            member_id: row.try_get("member_id")?,
            role: row
                .try_get::<Option<String>, _>("role")?
                .and_then(|role| role.parse().ok()),
        })
    };
    Ok(Some(credential))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UsageTable {
    Tokens,
    ApiKeys,
}

/// Uses per statement when flushing: two parameters each, far below SQLite's and PostgreSQL's
/// limits on a statement's parameters.
const USES_PER_STATEMENT: usize = 500;

/// Moves `last_used_at` forward for each `(id, at)`; never backwards, so replicas flushing out
/// of order agree. One statement per chunk of uses, not one per credential.
pub async fn record_last_used(
    conn: &mut AnyConnection,
    table: UsageTable,
    uses: &[(&str, Timestamp)],
) -> Result<(), StoreError> {
    let table = match table {
        UsageTable::Tokens => "tokens",
        UsageTable::ApiKeys => "api_keys",
    };
    for chunk in uses.chunks(USES_PER_STATEMENT) {
        let rows = (0..chunk.len())
            .map(|i| format!("(${}, ${})", 2 * i + 1, 2 * i + 2))
            .collect::<Vec<_>>()
            .join(", ");
        // A CTE with named columns and UPDATE ... FROM: both SQLite and PostgreSQL read this.
        let sql = format!(
            "WITH used(id, at) AS (VALUES {rows}) \
             UPDATE {table} SET last_used_at = used.at FROM used \
             WHERE {table}.id = used.id \
             AND ({table}.last_used_at IS NULL OR {table}.last_used_at < used.at)"
        );
        // Built from a table name of ours and placeholders only; the values are bound.
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (id, at) in chunk {
            query = query.bind(*id).bind(to_micros(*at));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}
