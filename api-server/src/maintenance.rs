//! Background jobs: flushing `last_used_at`; recording `token.expired` once per token;
//! enforcing audit retention (and recording each purge); removing expired sessions, sign-in
//! failures and idempotency records.

use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::http::routes::accounts::FAILURE_WINDOW;
use crate::http::routes::idempotency::RETENTION;
use crate::store::{
    StoreError, audit as audit_store, idempotency, now, sessions, signin_failures, tokens,
    webhooks, workspaces,
};
use jiff::SignedDuration;
use serde_json::json;
use std::time::Duration;

/// Expired tokens handled per sweep transaction batch.
const EXPIRY_BATCH: u32 = 200;

/// Runs until the task is dropped.
pub async fn run(state: AppState, flush_every: Duration, sweep_every: Duration) {
    let mut flush = tokio::time::interval(flush_every);
    // The first sweep waits one interval, so start-up is not slowed by catch-up work.
    let mut sweep =
        tokio::time::interval_at(tokio::time::Instant::now() + sweep_every, sweep_every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(err) = state.usage.flush(&state.store).await {
                    tracing::warn!(error = %err, "could not record last use of credentials");
                }
            }
            _ = sweep.tick() => {
                if let Err(err) = sweep_once(&state).await {
                    tracing::warn!(error = %err, "background sweep failed; retrying next time");
                }
            }
        }
    }
}

/// One pass of every sweep job. Public so tests can run it without waiting.
pub async fn sweep_once(state: &AppState) -> Result<(), StoreError> {
    let expired = record_expired_tokens(state).await?;
    let purged = enforce_audit_retention(state).await?;
    let now = now();
    let mut tx = state.store.begin_write().await?;
    let sessions = sessions::purge_expired(&mut tx, now).await?;
    let failures = signin_failures::purge_before(&mut tx, now - FAILURE_WINDOW).await?;
    let replays = idempotency::purge(&mut tx, now - RETENTION).await?;
    webhooks::promote_secrets(&mut tx, now).await?;
    tx.commit().await?;
    if expired + purged + sessions + failures + replays > 0 {
        tracing::info!(expired, purged, sessions, failures, replays, "sweep done");
    }
    Ok(())
}

/// Records `token.expired` for each newly expired token, once: the claim on the row makes
/// concurrent replicas skip tokens another one already recorded.
async fn record_expired_tokens(state: &AppState) -> Result<u64, StoreError> {
    let mut recorded = 0;
    loop {
        let now = now();
        let batch = {
            let mut conn = state.store.pool().acquire().await?;
            tokens::expired_unrecorded(&mut conn, now, EXPIRY_BATCH).await?
        };
        if batch.is_empty() {
            return Ok(recorded);
        }
        let mut tx = state.store.begin_write().await?;
        for token in &batch {
            if tokens::mark_expiry_recorded(&mut tx, &token.id, now).await? {
                audit::record_system(
                    &mut tx,
                    &token.workspace_id,
                    Change {
                        event: events::TOKEN_EXPIRED,
                        target_type: "token",
                        target_id: &token.id,
                        data: audit::token_data(token, json!({"expires_at": token.expires_at})),
                    },
                )
                .await?;
                recorded += 1;
            }
        }
        // Expiry is checked against the clock on every use; nothing cached changes here.
        tx.commit().await?;
        if batch.len() < EXPIRY_BATCH as usize {
            return Ok(recorded);
        }
    }
}

/// Deletes audit events past each workspace's retention, and records that it did.
async fn enforce_audit_retention(state: &AppState) -> Result<u64, StoreError> {
    let all = {
        let mut conn = state.store.pool().acquire().await?;
        workspaces::all(&mut conn).await?
    };
    let mut total = 0;
    for workspace in all {
        let cutoff = now() - SignedDuration::from_hours(24 * workspace.audit_retention_days);
        let mut tx = state.store.begin_write().await?;
        let deleted = audit_store::purge(&mut tx, &workspace.id, cutoff).await?;
        if deleted > 0 {
            audit::record_system(
                &mut tx,
                &workspace.id,
                Change {
                    event: events::AUDIT_PURGED,
                    target_type: "workspace",
                    target_id: &workspace.id,
                    data: json!({
                        "deleted": deleted,
                        "before": cutoff,
                        "retention_days": workspace.audit_retention_days,
                    }),
                },
            )
            .await?;
        }
        tx.commit().await?;
        total += deleted;
    }
    Ok(total)
}
