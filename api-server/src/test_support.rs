//! Fresh databases for tests, on SQLite and PostgreSQL: shared by the API server's tests and
//! the CLI's, which start the real server on port 0 against one.

use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh, empty database URL for `backend`, or `None` when PostgreSQL is not configured here.
pub async fn fresh_database(backend: Backend) -> Option<String> {
    match backend {
        Backend::Sqlite => {
            let dir = std::env::temp_dir().join("tooken-tests");
            std::fs::create_dir_all(&dir).expect("temp dir");
            let path: PathBuf = dir.join(format!("{}.db", uuid::Uuid::now_v7().simple()));
            Some(format!("sqlite://{}", path.display()))
        }
        Backend::Postgres => {
            let admin = postgres_admin_url()?;
            let name = format!("tooken_test_{}", uuid::Uuid::now_v7().simple());
            let mut conn = sqlx_connect(&admin).await;
            sqlx::Executor::execute(
                &mut conn,
                sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")),
            )
            .await
            .expect("create test database");
            Some(replace_database(&admin, &name))
        }
    }
}

/// `TOOKEN_TEST_POSTGRES_URL` names a server where tests may create databases. Without it the
/// PostgreSQL variants say they were skipped, except under CI, where that is a failure.
pub fn postgres_admin_url() -> Option<String> {
    match std::env::var("TOOKEN_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("CI is set but TOOKEN_TEST_POSTGRES_URL is not: PostgreSQL tests must run in CI")
        }
        _ => {
            eprintln!(
                "SKIPPED: TOOKEN_TEST_POSTGRES_URL is not set, so this PostgreSQL test did not run"
            );
            None
        }
    }
}

pub async fn sqlx_connect(url: &str) -> sqlx::AnyConnection {
    sqlx::any::install_default_drivers();
    <sqlx::AnyConnection as sqlx::Connection>::connect(url)
        .await
        .expect("connect to PostgreSQL")
}

pub fn replace_database(url: &str, name: &str) -> String {
    let (base, _) = url.rsplit_once('/').expect("URL has a database path");
    format!("{base}/{name}")
}
