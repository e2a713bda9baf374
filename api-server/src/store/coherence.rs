//! Keeps this replica's credential cache coherent with the others': reads `credential_epoch`
//! whenever PostgreSQL notifies a change, and at least every quarter of the staleness bound.
//! When the listening connection is lost, the cache is dropped and bypassed until a new one
//! listens. On SQLite (one file, possibly several processes) the periodic check alone does it.

use super::credential_cache::CredentialCache;
use super::{Backend, Store};
use sqlx::postgres::PgListener;
use std::time::{Duration, Instant};

/// The channel a change to a credential is announced on, in its transaction.
pub const CHANNEL: &str = "tooken_credentials";

/// The `application_name` of the listening connection, so operators (and tests) can find it.
pub const LISTENER_NAME: &str = "tooken-credential-listener";

/// Runs until the task is dropped.
pub async fn run(store: Store, url: String) {
    let Some(cache) = store.credential_cache.clone() else {
        return;
    };
    let every = (cache.bound() / 4).max(Duration::from_millis(10));
    match store.backend() {
        Backend::Sqlite => loop {
            check(&store, &cache).await;
            tokio::time::sleep(every).await;
        },
        Backend::Postgres => {
            let mut backoff = Duration::from_millis(100);
            loop {
                match listen(&url).await {
                    Ok(listener) => {
                        backoff = Duration::from_millis(100);
                        cache.resume();
                        follow(&store, &cache, listener, every).await;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot listen for credential changes; the cache is bypassed");
                    }
                }
                cache.suspend();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn listen(url: &str) -> Result<PgListener, sqlx::Error> {
    let separator = if url.contains('?') { '&' } else { '?' };
    let mut listener =
        PgListener::connect(&format!("{url}{separator}application_name={LISTENER_NAME}")).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Checks on every notification and every `every`, until the listening connection is lost.
async fn follow(store: &Store, cache: &CredentialCache, mut listener: PgListener, every: Duration) {
    // Listening began before this check, so no change after it goes unnoticed.
    check(store, cache).await;
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = listener.try_recv() => match received {
                Ok(Some(_)) => check(store, cache).await,
                Ok(None) => {
                    tracing::warn!("lost the credential change feed; the cache is bypassed until it is back");
                    return;
                }
                Err(err) => {
                    tracing::warn!(error = %err, "the credential change feed failed; the cache is bypassed until it is back");
                    return;
                }
            },
            _ = tick.tick() => check(store, cache).await,
        }
    }
}

/// Reads the epoch; the cache is current from when the read began.
async fn check(store: &Store, cache: &CredentialCache) {
    let began = Instant::now();
    match store.credential_epoch().await {
        Ok(epoch) => cache.confirm(began, epoch),
        Err(err) => tracing::debug!(error = %err, "credential epoch check failed"),
    }
}
