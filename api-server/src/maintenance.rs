//! Background jobs: flushing `last_used_at`; recording `token.expired` once per token;
//! enforcing audit retention (and recording each purge); removing expired sessions, sign-in
//! failures and idempotency records.

use crate::audit::{self, Author, Change, events};
use crate::service::Error;
use crate::service::accounts::FAILURE_WINDOW;
use crate::service::unit_of_work::{RETENTION, UnitOfWork};
use crate::store::{
    Store, audit as audit_store, idempotency, now, sessions, signin_failures, tokens, webhooks,
    workspaces,
};
use crate::usage::UsageRecorder;
use jiff::SignedDuration;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// Expired tokens handled per sweep transaction batch.
const EXPIRY_BATCH: u32 = 200;

/// Runs until the task is dropped.
pub async fn run(
    store: Store,
    usage: Arc<UsageRecorder>,
    flush_every: Duration,
    sweep_every: Duration,
) {
    let mut flush = tokio::time::interval(flush_every);
    // The first sweep waits one interval, so start-up is not slowed by catch-up work.
    let mut sweep =
        tokio::time::interval_at(tokio::time::Instant::now() + sweep_every, sweep_every);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = flush.tick() => {
                if let Err(err) = usage.flush(&store).await {
                    tracing::warn!(error = %err, "could not record last use of credentials");
                }
            }
            _ = sweep.tick() => {
                if let Err(err) = sweep_once(&store).await {
                    tracing::warn!(error = %err, "background sweep failed; retrying next time");
                }
            }
        }
    }
}

/// One pass of every sweep job. Public so tests can run it without waiting.
pub async fn sweep_once(store: &Store) -> Result<(), Error> {
    let expired = record_expired_tokens(store).await?;
    let purged = enforce_audit_retention(store).await?;
    let now = now();
    let (sessions, failures, replays) = UnitOfWork::new(store, Author::system())
        .run_once(async |work| {
            let sessions = sessions::purge_expired(work, now).await?;
            let failures = signin_failures::purge_before(work, now - FAILURE_WINDOW).await?;
            let replays = idempotency::purge(work, now - RETENTION).await?;
            webhooks::promote_secrets(work, now).await?;
            Ok((sessions, failures, replays))
        })
        .await?;
    if expired + purged + sessions + failures + replays > 0 {
        tracing::info!(expired, purged, sessions, failures, replays, "sweep done");
    }
    Ok(())
}

/// Records `token.expired` for each newly expired token, once: the claim on the row makes
/// concurrent replicas skip tokens another one already recorded. Expiry is checked against
/// the clock on every use, so nothing a credential lookup returns changes here.
async fn record_expired_tokens(store: &Store) -> Result<u64, Error> {
    let mut recorded = 0;
    loop {
        let now = now();
        let batch = {
            let mut conn = store.connection().await?;
            tokens::expired_unrecorded(&mut conn, now, EXPIRY_BATCH).await?
        };
        if batch.is_empty() {
            return Ok(recorded);
        }
        recorded += UnitOfWork::new(store, Author::system())
            .run_once(async |work| {
                let mut recorded = 0;
                for token in &batch {
                    if tokens::mark_expiry_recorded(work, &token.id, now).await? {
                        work.record_in(
                            &token.workspace_id,
                            Change {
                                event: events::TOKEN_EXPIRED,
                                target_type: "token",
                                target_id: &token.id,
                                data: audit::token_data(
                                    token,
                                    json!({"expires_at": token.expires_at}),
                                ),
                            },
                        )
                        .await?;
                        recorded += 1;
                    }
                }
                Ok(recorded)
            })
            .await?;
        if batch.len() < EXPIRY_BATCH as usize {
            return Ok(recorded);
        }
    }
}

/// Deletes audit events past each workspace's retention, and records that it did.
async fn enforce_audit_retention(store: &Store) -> Result<u64, Error> {
    let all = {
        let mut conn = store.connection().await?;
        workspaces::all(&mut conn).await?
    };
    let mut total = 0;
    for workspace in all {
        let cutoff = now() - SignedDuration::from_hours(24 * workspace.audit_retention_days);
        total += UnitOfWork::new(store, Author::system())
            .run_once(async |work| {
                let deleted = audit_store::purge(work, &workspace.id, cutoff).await?;
                if deleted > 0 {
                    work.record_in(
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
                Ok(deleted)
            })
            .await?;
    }
    Ok(total)
}
