//! Background upkeep: flushing `last_used_at` and purging expired idempotency records.

use crate::app::AppState;
use crate::routes::idempotency::RETENTION;
use crate::store::idempotency;
use jiff::Timestamp;
use std::time::Duration;

const PURGE_EVERY: Duration = Duration::from_secs(600);

/// Runs until the task is dropped.
pub async fn run(state: AppState, flush_every: Duration) {
    let mut flush = tokio::time::interval(flush_every);
    let mut purge = tokio::time::interval(PURGE_EVERY);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(err) = state.usage.flush(&state.store).await {
                    tracing::warn!(error = %err, "could not record last use of credentials");
                }
            }
            _ = purge.tick() => {
                let purged = async {
                    let mut tx = state.store.begin_write().await?;
                    let n = idempotency::purge(&mut tx, Timestamp::now() - RETENTION).await?;
                    tx.commit().await.map(|()| n)
                }.await;
                match purged {
                    Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency records removed"),
                    Ok(_) => {}
                    Err(err) => tracing::warn!(error = %err, "could not purge idempotency records"),
                }
            }
        }
    }
}
