//! People who sign in.

use super::{StoreError, from_micros, to_micros};
use jiff::Timestamp;
use sqlx::{AnyConnection, Row};

#[derive(Debug, Clone, PartialEq)]
pub struct User {
    pub id: String,
    pub email: String,
    pub password_hash: String,
    pub created_at: Timestamp,
}

impl User {
    pub fn to_api(&self) -> tooken_contract::accounts::User {
        tooken_contract::accounts::User {
            id: self.id.clone(),
            email: self.email.clone(),
            created_at: self.created_at,
        }
    }
}

/// Inserts a user; a unique violation means the email is taken.
pub async fn insert(conn: &mut AnyConnection, user: &User) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO users (id, email, password_hash, created_at) VALUES ($1, $2, $3, $4)")
        .bind(&user.id)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(to_micros(user.created_at))
        .execute(conn)
        .await?;
    Ok(())
}

async fn find(
    conn: &mut AnyConnection,
    column: &str,
    value: &str,
) -> Result<Option<User>, StoreError> {
    let sql = match column {
        "email" => "SELECT id, email, password_hash, created_at FROM users WHERE email = $1",
        _ => "SELECT id, email, password_hash, created_at FROM users WHERE id = $1",
    };
    let row = sqlx::query(sql).bind(value).fetch_optional(conn).await?;
    let Some(row) = row else { return Ok(None) };
    Ok(Some(User {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        password_hash: row.try_get("password_hash")?,
        created_at: from_micros(row.try_get("created_at")?),
    }))
}

pub async fn by_email(conn: &mut AnyConnection, email: &str) -> Result<Option<User>, StoreError> {
    find(conn, "email", email).await
}

pub async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<User>, StoreError> {
    find(conn, "id", id).await
}
