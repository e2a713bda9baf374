//! Storage on SQLite (the embedded default) or PostgreSQL (several replicas), through one
//! portable set of queries: both accept `$1` placeholders, and timestamps are stored as BIGINT
//! microseconds so no backend-specific types are needed.

pub mod api_keys;
pub mod audit;
pub mod coherence;
pub mod credential_cache;
pub mod credentials;
pub mod idempotency;
pub mod members;
pub mod sessions;
pub mod signin_failures;
pub mod tokens;
pub mod users;
pub mod webhooks;
pub mod workspaces;

use crate::metrics::CacheCounters;
use credential_cache::CredentialCache;
use credentials::Credential;
use jiff::Timestamp;
use sqlx::AnyConnection;
use sqlx::any::AnyPoolOptions;
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyPool, AssertSqlSafe, Executor, Transaction};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Mutex, Notify, OwnedMutexGuard};

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct StoreError(#[from] sqlx::Error);

impl StoreError {
    pub fn is_unique_violation(&self) -> bool {
        matches!(&self.0, sqlx::Error::Database(db) if db.is_unique_violation())
    }

    /// The database could not be reached or gave no connection in time.
    pub fn is_unavailable(&self) -> bool {
        match &self.0 {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            // SQLITE_BUSY after the busy timeout; PostgreSQL connection failures (08xxx), shutdown
            // (57P0x), too many clients, or the database gone.
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                matches!(code.as_ref(), "5" | "517" | "53300" | "3D000")
                    || code.starts_with("08")
                    || code.starts_with("57P0")
            }),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite allows one writer; queueing writers here is fairer and faster than busy-waiting.
    sqlite_writer: Option<Arc<Mutex<()>>>,
    /// See `credential_cache`; `None` when turned off.
    credential_cache: Option<Arc<CredentialCache>>,
    /// For the connection that listens for credential changes (`coherence`).
    url: Arc<str>,
    /// Woken when a commit put webhook deliveries in the outbox.
    outbox: Arc<Notify>,
}

/// A write transaction. On SQLite it also holds the writer slot until it ends.
pub struct WriteTx {
    tx: Transaction<'static, Any>,
    backend: Backend,
    credential_cache: Option<Arc<CredentialCache>>,
    outbox: Arc<Notify>,
    wakes_outbox: bool,
    changes_credentials: bool,
    _writer: Option<OwnedMutexGuard<()>>,
}

impl WriteTx {
    /// Commits. A transaction that changed a credential also bumps `credential_epoch` (and on
    /// PostgreSQL notifies every replica), and this replica drops its cached lookups at once.
    pub async fn commit(mut self) -> Result<(), StoreError> {
        if self.changes_credentials {
            sqlx::query("UPDATE credential_epoch SET version = version + 1 WHERE id = 1")
                .execute(&mut *self.tx)
                .await?;
            if self.backend == Backend::Postgres {
                sqlx::query(AssertSqlSafe(format!("NOTIFY {}", coherence::CHANNEL)))
                    .execute(&mut *self.tx)
                    .await?;
            }
        }
        let cache = self
            .changes_credentials
            .then_some(self.credential_cache)
            .flatten();
        let wake = self.wakes_outbox.then_some(self.outbox);
        self.tx.commit().await?;
        if let Some(cache) = cache {
            cache.invalidate();
        }
        if let Some(outbox) = wake {
            outbox.notify_one();
        }
        Ok(())
    }

    /// Called by every store function that changes what a credential lookup returns
    /// (revocation, rotation, regeneration, deletion, a member's role or a workspace's slug).
    pub fn mark_credentials_changed(&mut self) {
        self.changes_credentials = true;
    }

    /// Asks the delivery worker to look at the outbox once this transaction commits.
    pub fn wake_outbox_on_commit(&mut self) {
        self.wakes_outbox = true;
    }
}

impl Deref for WriteTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

const CREDENTIAL_CACHE_CAPACITY: usize = 100_000;

/// How stale a cached credential lookup may be, unless configured otherwise.
pub const DEFAULT_CACHE_STALENESS: Duration = Duration::from_secs(1);

/// The credential cache: how stale a lookup may be (zero: no cache), and where it counts.
pub struct CacheSettings {
    pub staleness: Duration,
    pub counters: CacheCounters,
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

impl Store {
    /// Connects to `url` (`sqlite://path` or `postgres://…`) and applies pending migrations.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Store> {
        let cache = CacheSettings {
            staleness: DEFAULT_CACHE_STALENESS,
            counters: CacheCounters::default(),
        };
        Store::connect_with(url, max_connections, cache).await
    }

    /// `connect`, with the credential cache as `cache` says. The cache is used only while
    /// `keep_credential_cache_coherent` runs.
    pub async fn connect_with(
        url: &str,
        max_connections: u32,
        cache: CacheSettings,
    ) -> anyhow::Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            anyhow::bail!(
                "DATABASE_URL must start with sqlite:// or postgres:// (got scheme `{}`)",
                url.split(':').next().unwrap_or_default()
            );
        };
        let mut options = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(5));
        let url = match backend {
            Backend::Sqlite => {
                // A local file connection cannot go stale, so skip the ping on every acquire.
                options = options.test_before_acquire(false).after_connect(|conn, _| {
                    Box::pin(async move {
                        // WAL lets readers run beside the writer; FULL syncs each commit, so an
                        // acknowledged write survives kill -9 and power loss.
                        conn.execute(
                            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;",
                        )
                        .await?;
                        Ok(())
                    })
                });
                if url.contains('?') {
                    url.to_owned()
                } else {
                    format!("{url}?mode=rwc")
                }
            }
            Backend::Postgres => url.to_owned(),
        };
        let pool = options
            .connect(&url)
            .await
            .map_err(|err| anyhow::anyhow!("cannot open the database: {err}"))?;
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|err| anyhow::anyhow!("cannot apply database migrations: {err}"))?;
        let sqlite = backend == Backend::Sqlite;
        Ok(Store {
            pool,
            backend,
            sqlite_writer: sqlite.then(|| Arc::new(Mutex::new(()))),
            credential_cache: (!cache.staleness.is_zero()).then(|| {
                Arc::new(CredentialCache::new(
                    CREDENTIAL_CACHE_CAPACITY,
                    cache.staleness,
                    cache.counters,
                ))
            }),
            url: Arc::from(url.as_str()),
            outbox: Arc::new(Notify::new()),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A connection for reads outside a transaction.
    pub async fn connection(&self) -> Result<PoolConnection<Any>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    pub async fn begin_write(&self) -> Result<WriteTx, StoreError> {
        let writer = match &self.sqlite_writer {
            Some(lock) => Some(lock.clone().lock_owned().await),
            None => None,
        };
        // IMMEDIATE takes SQLite's write lock up front, so a read-then-write transaction never
        // fails half-way because another process (e.g. `bootstrap`) wrote in between.
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(WriteTx {
            tx,
            backend: self.backend,
            credential_cache: self.credential_cache.clone(),
            outbox: self.outbox.clone(),
            wakes_outbox: false,
            changes_credentials: false,
            _writer: writer,
        })
    }

    /// The token secret or API key with this hash.
    pub async fn find_credential(
        &self,
        secret_hash: &str,
    ) -> Result<Option<Credential>, StoreError> {
        if let Some(cache) = &self.credential_cache
            && let Some(hit) = cache.get(secret_hash)
        {
            return Ok(Some(hit));
        }
        let generation = self
            .credential_cache
            .as_ref()
            .map(|cache| cache.generation());
        let mut conn = self.pool.acquire().await?;
        let found = credentials::find(&mut conn, secret_hash).await?;
        if let (Some(cache), Some(generation), Some(found)) =
            (&self.credential_cache, generation, &found)
        {
            cache.insert(secret_hash, generation, found.clone());
        }
        Ok(found)
    }

    /// Keeps the credential cache coherent with other replicas' changes; runs until dropped.
    /// Without it the cache is never current, so every lookup goes to the database.
    pub async fn keep_credential_cache_coherent(&self) {
        coherence::run(self.clone(), self.url.to_string()).await
    }

    /// The current `credential_epoch`.
    pub async fn credential_epoch(&self) -> Result<i64, StoreError> {
        let row = sqlx::query("SELECT version FROM credential_epoch WHERE id = 1")
            .fetch_one(&self.pool)
            .await?;
        Ok(sqlx::Row::try_get(&row, "version")?)
    }

    /// Resolves when a commit has put deliveries in the outbox.
    pub async fn outbox_changed(&self) {
        self.outbox.notified().await;
    }

    /// A cheap round trip, for readiness.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The current time at the precision stored (microseconds), so responses match later reads.
pub fn now() -> Timestamp {
    from_micros(Timestamp::now().as_microsecond())
}

pub fn to_micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub fn from_micros(micros: i64) -> Timestamp {
    Timestamp::from_microsecond(micros).expect("stored timestamps are in range")
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
