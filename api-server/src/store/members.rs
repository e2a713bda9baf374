//! Workspace members, their roles and invitations.

use super::{StoreError, WriteTx, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, AssertSqlSafe, Row};
use tooken_contract::members::{MemberStatus, Role};

#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub id: String,
    pub workspace_id: String,
    pub email: String,
    pub role: Role,
    pub status: MemberStatus,
    pub user_id: Option<String>,
    pub created_at: Timestamp,
}

impl Member {
    pub fn to_api(&self) -> tooken_contract::members::Member {
        tooken_contract::members::Member {
            id: self.id.clone(),
            email: self.email.clone(),
            role: self.role,
            status: self.status,
            created_at: self.created_at,
        }
    }
}

fn status_str(status: MemberStatus) -> &'static str {
    match status {
        MemberStatus::Invited => "invited",
        MemberStatus::Active => "active",
    }
}

const COLUMNS: &str = "id, workspace_id, email, role, status, user_id, created_at";

fn decode_err(what: &str) -> sqlx::Error {
    sqlx::Error::Decode(format!("unknown {what}").into())
}

fn from_row(row: &AnyRow) -> Result<Member, sqlx::Error> {
    Ok(Member {
        id: row.try_get("id")?,
        workspace_id: row.try_get("workspace_id")?,
        email: row.try_get("email")?,
        role: row
            .try_get::<String, _>("role")?
            .parse()
            .map_err(|_| decode_err("role"))?,
        status: match row.try_get::<String, _>("status")?.as_str() {
            "invited" => MemberStatus::Invited,
            "active" => MemberStatus::Active,
            _ => return Err(decode_err("member status")),
        },
        user_id: row.try_get("user_id")?,
        created_at: from_micros(row.try_get("created_at")?),
    })
}

pub async fn insert(conn: &mut AnyConnection, member: &Member) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO members (id, workspace_id, email, role, status, user_id, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&member.id)
    .bind(&member.workspace_id)
    .bind(&member.email)
    .bind(member.role.as_str())
    .bind(status_str(member.status))
    .bind(&member.user_id)
    .bind(to_micros(member.created_at))
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn get(
    conn: &mut AnyConnection,
    workspace_id: &str,
    id: &str,
) -> Result<Option<Member>, StoreError> {
    let sql = format!("SELECT {COLUMNS} FROM members WHERE workspace_id = $1 AND id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(workspace_id)
        .bind(id)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// The role of an active member of `workspace_id`, if there is such a member.
pub async fn role(
    conn: &mut AnyConnection,
    workspace_id: &str,
    member_id: &str,
) -> Result<Option<Role>, StoreError> {
    Ok(get(conn, workspace_id, member_id)
        .await?
        .filter(|member| member.status == MemberStatus::Active)
        .map(|member| member.role))
}

/// The active membership of `user_id` in the workspace with `slug`.
pub async fn of_user_in_workspace(
    conn: &mut AnyConnection,
    user_id: &str,
    slug: &str,
) -> Result<Option<Member>, StoreError> {
    let sql = format!(
        "SELECT {} FROM members m JOIN workspaces w ON w.id = m.workspace_id \
         WHERE m.user_id = $1 AND w.slug = $2 AND m.status = 'active'",
        qualified("m")
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(user_id)
        .bind(slug)
        .fetch_optional(conn)
        .await?;
    Ok(row.as_ref().map(from_row).transpose()?)
}

/// Every active membership of a user.
pub async fn of_user(conn: &mut AnyConnection, user_id: &str) -> Result<Vec<Member>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM members WHERE user_id = $1 AND status = 'active' ORDER BY created_at"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(user_id)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

/// Invitations to `email` not yet accepted.
pub async fn invitations_for(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Vec<Member>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM members WHERE email = $1 AND status = 'invited' ORDER BY created_at"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(email)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

fn qualified(alias: &str) -> String {
    COLUMNS
        .split(", ")
        .map(|column| format!("{alias}.{column}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One page of a workspace's members, newest first.
pub async fn list(
    conn: &mut AnyConnection,
    workspace_id: &str,
    before_id: Option<&str>,
    limit: u32,
) -> Result<Vec<Member>, StoreError> {
    let mut sql = format!("SELECT {COLUMNS} FROM members WHERE workspace_id = $1");
    if before_id.is_some() {
        sql.push_str(" AND id < $2 ORDER BY id DESC LIMIT $3");
    } else {
        sql.push_str(" ORDER BY id DESC LIMIT $2");
    }
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(workspace_id);
    if let Some(before_id) = before_id {
        query = query.bind(before_id);
    }
    let rows = query.bind(i64::from(limit)).fetch_all(conn).await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}

pub async fn set_role(
    tx: &mut WriteTx,
    workspace_id: &str,
    id: &str,
    role: Role,
) -> Result<(), StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    sqlx::query("UPDATE members SET role = $1 WHERE workspace_id = $2 AND id = $3")
        .bind(role.as_str())
        .bind(workspace_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Removes a member; their personal API keys go with them (ON DELETE CASCADE).
pub async fn delete(tx: &mut WriteTx, workspace_id: &str, id: &str) -> Result<(), StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    sqlx::query("DELETE FROM members WHERE workspace_id = $1 AND id = $2")
        .bind(workspace_id)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Active Owners of a workspace.
pub async fn count_owners(conn: &mut AnyConnection, workspace_id: &str) -> Result<i64, StoreError> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n FROM members WHERE workspace_id = $1 AND role = 'owner' \
         AND status = 'active'",
    )
    .bind(workspace_id)
    .fetch_one(conn)
    .await?;
    Ok(row.try_get("n")?)
}

/// Makes `user_id` the member: accepting an invitation, or claiming a bootstrap Owner.
pub async fn activate(
    tx: &mut WriteTx,
    id: &str,
    user_id: &str,
    now: Timestamp,
) -> Result<bool, StoreError> {
    tx.mark_credentials_changed();
    let conn: &mut AnyConnection = tx;
    let updated = sqlx::query(
        "UPDATE members SET status = 'active', user_id = $1, accepted_at = $2 \
         WHERE id = $3 AND (user_id IS NULL OR user_id = $1)",
    )
    .bind(user_id)
    .bind(to_micros(now))
    .bind(id)
    .execute(conn)
    .await?
    .rows_affected();
    Ok(updated == 1)
}

/// Active members with this email and no user yet (made by `bootstrap --owner-email`).
pub async fn unclaimed_active(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Vec<Member>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM members WHERE email = $1 AND status = 'active' AND user_id IS NULL"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(email)
        .fetch_all(conn)
        .await?;
    Ok(rows.iter().map(from_row).collect::<Result<_, _>>()?)
}
