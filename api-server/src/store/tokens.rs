//! Token rows and the secrets each token has had.

use super::{StoreError, WriteTx, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};
use tooken_contract::Scope;
use tooken_contract::labels::Labels;
use tooken_contract::tokens::{Token, TokenStatus};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenRow {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub prefix: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub rotated_at: Option<Timestamp>,
    pub rotation: i64,
    pub last_used_at: Option<Timestamp>,
    pub created_by: String,
    /// Confines the token to names starting with this.
    pub name_prefix: Option<String>,
    pub labels: Labels,
}

impl TokenRow {
    pub fn status(&self, now: Timestamp) -> TokenStatus {
        if self.revoked_at.is_some() {
            TokenStatus::Revoked
        } else if self.expires_at.is_some_and(|at| at <= now) {
            TokenStatus::Expired
        } else {
            TokenStatus::Active
        }
    }

    pub fn to_api(&self, now: Timestamp) -> Token {
        Token {
            id: self.id.clone(),
            name: self.name.clone(),
            scopes: self.scopes.clone(),
            status: self.status(now),
            prefix: self.prefix.clone(),
            created_at: self.created_at,
            expires_at: self.expires_at,
            revoked_at: self.revoked_at,
            last_used_at: self.last_used_at,
            rotated_at: self.rotated_at,
            rotation: self.rotation,
            name_prefix: self.name_prefix.clone(),
            labels: self.labels.clone(),
        }
    }
}

const COLUMNS: &str = "id, workspace_id, name, scopes, prefix, created_at, expires_at, \
                       revoked_at, rotated_at, rotation, last_used_at, created_by, name_prefix, \
                       labels";

pub fn decode_scopes(json: &str) -> Result<Vec<Scope>, sqlx::Error> {
    serde_json::from_str(json).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

pub fn encode_scopes(scopes: &[Scope]) -> String {
    serde_json::to_string(scopes).expect("scopes serialise")
}

fn decode_labels(json: &str) -> Result<Labels, sqlx::Error> {
    serde_json::from_str(json).map_err(|err| sqlx::Error::Decode(Box::new(err)))
}

fn encode_labels(labels: &Labels) -> String {
    serde_json::to_string(labels).expect("labels serialise")
}

fn from_row(row: &AnyRow) -> Result<TokenRow, sqlx::Error> {
    let opt_time = |col: &str| -> Result<Option<Timestamp>, sqlx::Error> {
        Ok(row.try_get::<Option<i64>, _>(col)?.map(from_micros))
    };
    Ok(TokenRow {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        name: row.try_get("name")?,
        scopes: decode_scopes(&row.try_get::<String, _>("scopes")?)?,
        prefix: row.try_get("prefix")?,
        created_at: from_micros(row.try_get("created_at")?),
        expires_at: opt_time("expires_at")?,
        revoked_at: opt_time("revoked_at")?,
        rotated_at: opt_time("rotated_at")?,
        rotation: row.try_get("rotation")?,
        last_used_at: opt_time("last_used_at")?,
        created_by: row.try_get("created_by")?,
        name_prefix: row.try_get("name_prefix")?,
        labels: decode_labels(&row.try_get::<String, _>("labels")?)?,
    })
}

/// Inserts a new token with its first secret.
pub async fn insert(
    conn: &mut AnyConnection,
    token: &TokenRow,
    secret_hash: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO tokens (id, workspace_id, name, scopes, prefix, created_at, expires_at, \
         revoked_at, rotated_at, rotation, last_used_at, created_by, name_prefix, labels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, 0, NULL, $8, $9, $10)",
    )
    .bind(&token.id)
    .bind(&token.workspace_id)
    .bind(&token.name)
    .bind(encode_scopes(&token.scopes))
    .bind(&token.prefix)
    .bind(to_micros(token.created_at))
    .bind(token.expires_at.map(to_micros))
    .bind(&token.created_by)
    .bind(&token.name_prefix)
    .bind(encode_labels(&token.labels))
    .execute(&mut *conn)
    .await?;
    insert_secret(conn, &token.id, secret_hash, token.created_at).await
}

async fn insert_secret(
    conn: &mut AnyConnection,
    token_id: &str,
    secret_hash: &str,
    at: Timestamp,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO token_secrets (secret_hash, token_id, valid_until, created_at) \
         VALUES ($1, $2, NULL, $3)",
    )
    .bind(secret_hash)
    .bind(token_id)
    .bind(to_micros(at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<TokenRow>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM tokens WHERE workspace_id = $1 AND id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Which tokens of a workspace a list returns.
pub struct ListFilter<'a> {
    pub status: Option<TokenStatus>,
    /// Only tokens whose name starts with this (a confined caller's view).
    pub name_prefix: Option<&'a str>,
}

/// One page of a workspace's tokens, newest first. `before_id` is the last id of the previous
/// page; ids are UUIDv7, so their order is creation order.
pub async fn list(
    conn: &mut AnyConnection,
    workspace_id: &str,
    filter: &ListFilter<'_>,
    now: Timestamp,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<TokenRow>, StoreError> {
    let status = filter.status;
    let mut sql = format!("SELECT {COLUMNS} FROM tokens WHERE workspace_id = $1");
    sql.push_str(match status {
        None => "",
        Some(TokenStatus::Active) => {
            " AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        }
        Some(TokenStatus::Expired) => " AND revoked_at IS NULL AND expires_at <= $2",
        Some(TokenStatus::Revoked) => " AND revoked_at IS NOT NULL",
    });
    let binds_now = matches!(status, Some(TokenStatus::Active | TokenStatus::Expired));
    let mut next = if binds_now { 3 } else { 2 };
    if filter.name_prefix.is_some() {
        // substr and length count characters on both databases, and no character of the
        // prefix is a wildcard, as it would be in LIKE.
        sql.push_str(&format!(" AND substr(name, 1, length(${next})) = ${next}"));
        next += 1;
    }
    if before_id.is_some() {
        sql.push_str(&format!(" AND id < ${next}"));
        next += 1;
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ${next}"));
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id);
    if binds_now {
        query = query.bind(to_micros(now));
    }
    if let Some(prefix) = filter.name_prefix {
        query = query.bind(prefix);
    }
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub struct Rotation<'a> {
    pub workspace_id: &'a str,
    pub id: &'a str,
    /// The rotation count the caller read; a concurrent rotation makes the update miss.
    pub expected_rotation: i64,
    pub new_secret_hash: &'a str,
    pub new_prefix: &'a str,
    pub now: Timestamp,
    pub expires_at: Option<Timestamp>,
    /// When the current secret stops working.
    pub previous_valid_until: Timestamp,
}

/// Replaces the current secret. Returns false when the token changed since it was read.
pub async fn rotate(tx: &mut WriteTx, rotation: &Rotation<'_>) -> Result<bool, StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    let updated = sqlx::query(
        "UPDATE tokens SET rotation = rotation + 1, rotated_at = $1, prefix = $2, expires_at = $3 \
         WHERE workspace_id = $4 AND id = $5 AND rotation = $6 AND revoked_at IS NULL",
    )
    .bind(to_micros(rotation.now))
    .bind(rotation.new_prefix)
    .bind(rotation.expires_at.map(to_micros))
    .bind(rotation.workspace_id)
    .bind(rotation.id)
    .bind(rotation.expected_rotation)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated != 1 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE token_secrets SET valid_until = $1 WHERE token_id = $2 AND valid_until IS NULL",
    )
    .bind(to_micros(rotation.previous_valid_until))
    .bind(rotation.id)
    .execute(&mut *conn)
    .await?;
    insert_secret(conn, rotation.id, rotation.new_secret_hash, rotation.now).await?;
    Ok(true)
}

/// Marks the token revoked. Returns false if it was already revoked or does not exist.
pub async fn revoke(
    tx: &mut WriteTx,
    workspace_id: &str,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    let updated = sqlx::query(
        "UPDATE tokens SET revoked_at = $1 WHERE workspace_id = $2 AND id = $3 AND revoked_at IS NULL",
    )
    .bind(to_micros(now))
    .bind(workspace_id)
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Tokens that have expired but whose expiry is not yet recorded, oldest expiry first.
pub async fn expired_unrecorded(
    conn: &mut AnyConnection,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<TokenRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM tokens WHERE expires_at <= $1 AND revoked_at IS NULL \
         AND expiry_recorded_at IS NULL ORDER BY expires_at LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_micros(now))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Claims the recording of a token's expiry. Only one caller (of any replica) gets `true`.
pub async fn mark_expiry_recorded(
    conn: &mut AnyConnection,
    id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    let updated = sqlx::query(
        "UPDATE tokens SET expiry_recorded_at = $1 WHERE id = $2 AND expiry_recorded_at IS NULL",
    )
    .bind(to_micros(now))
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
