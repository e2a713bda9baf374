//! One reconcile of a `TookenToken`: make the token and its Secret match the spec.
//!
//! Crash safety: every call that creates or rotates carries an idempotency key derived from
//! the resource (its uid, the token and the generation it starts from). Re-running after a
//! crash at any point therefore finds the same token instead of making another, and a secret
//! that was issued but never stored is replaced by rotating again. No step leaves a token that
//! the status does not name.

use crate::cluster::{Cluster, DesiredSecret, ObservedSecret, ROTATION_KEY, TOKEN_ID_KEY};
use crate::crd::{DeletionPolicy, PendingRevocation, TokenScope, TookenToken, TookenTokenStatus};
use crate::duration;
use crate::tooken_api::{ApiFailure, TookenApi};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use std::time::Duration;
use tooken_contract::tokens::{CreateTokenRequest, RotateTokenRequest, TokenStatus};

/// The longest wait between reconciles, so drift the watch missed is still found.
pub const MAX_REQUEUE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("the Secret `{0}` exists and is not managed by this TookenToken; it is left alone")]
    SecretConflict(String),
    #[error("no Tooken API connection: {0}")]
    NoConnection(String),
    #[error(transparent)]
    Api(#[from] ApiFailure),
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Tooken API kept replaying rotations without a secret")]
    NoSecret,
}

impl ReconcileError {
    /// The condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::InvalidSpec(_) => "InvalidSpec",
            ReconcileError::SecretConflict(_) => "SecretConflict",
            ReconcileError::NoConnection(_) => "NoConnection",
            ReconcileError::Api(ApiFailure::Unavailable(_)) => "ApiUnavailable",
            ReconcileError::Api(ApiFailure::Refused { .. }) => "ApiRefused",
            ReconcileError::Kube(_) => "KubernetesError",
            ReconcileError::NoSecret => "NoSecret",
        }
    }
}

pub fn sha256_hex(value: &str) -> String {
    crate::cluster::sha256_hex(value.as_bytes())
}

/// The Secret as the status says it was written: the cached view of a Secret that matches it
/// is trusted, and anything else is read afresh before acting on it.
fn recorded_secret(tt: &TookenToken, status: &TookenTokenStatus) -> Option<ObservedSecret> {
    let (Some(token_id), Some(rotation), Some(hash)) =
        (&status.token_id, status.rotation, &status.secret_hash)
    else {
        return None;
    };
    let desired = DesiredSecret {
        name: tt.secret_name(),
        key: tt.secret_key(),
        value: String::new(),
        token_id: token_id.clone(),
        rotation,
        labels: tt.spec.secret.labels.clone(),
        annotations: tt.spec.secret.annotations.clone(),
    };
    let metadata = desired.to_secret(tt).metadata;
    Some(ObservedSecret {
        controller: tt.uid(),
        labels: metadata.labels.unwrap_or_default(),
        annotations: metadata.annotations.unwrap_or_default(),
        digests: [(desired.key, hash.clone())].into(),
        values: None,
    })
}

fn metadata_matches(secret: &ObservedSecret, desired: &DesiredSecret, tt: &TookenToken) -> bool {
    let ours = desired.to_secret(tt).metadata;
    Some(&secret.labels) == ours.labels.as_ref()
        && Some(&secret.annotations) == ours.annotations.as_ref()
}

fn parse_time(text: Option<&str>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

fn desired_scopes(tt: &TookenToken) -> Vec<TokenScope> {
    let mut scopes = tt.spec.scopes.clone();
    scopes.sort();
    scopes.dedup();
    scopes
}

fn spec_duration(text: Option<&str>) -> Option<SignedDuration> {
    text.and_then(|t| duration::parse(t).ok())
}

fn grace_seconds(tt: &TookenToken) -> u64 {
    spec_duration(tt.spec.grace_period.as_deref())
        .map(|d| d.as_secs().max(0) as u64)
        .unwrap_or(0)
}

/// The expiry to ask for when issuing: a lifetime from now, a fixed time, or the workspace
/// default (absent).
fn expiry_at_issue(tt: &TookenToken, now: Timestamp) -> Option<Option<Timestamp>> {
    let expiry = tt.spec.expiry.as_ref()?;
    if let Some(after) = spec_duration(expiry.after.as_deref()) {
        return Some(Some(now + after));
    }
    parse_time(expiry.at.as_deref()).map(Some)
}

/// The expiry after a rotation: a rotation renews a lifetime (explicit, or the one the token
/// was issued with); a fixed time stays.
fn expiry_at_rotation(
    tt: &TookenToken,
    now: Timestamp,
    last: Timestamp,
    expires_at: Option<Timestamp>,
) -> Option<Option<Timestamp>> {
    match &tt.spec.expiry {
        Some(expiry) if expiry.at.is_some() => None,
        Some(expiry) => spec_duration(expiry.after.as_deref()).map(|after| Some(now + after)),
        None => expires_at.map(|at| Some(now + at.duration_since(last))),
    }
}

/// When to rotate next: `every` after the last rotation, and `beforeExpiry` before expiry
/// (default: a tenth of the lifetime, at most a day), whichever comes first.
pub fn next_rotation(
    tt: &TookenToken,
    last: Timestamp,
    expires_at: Option<Timestamp>,
) -> Option<Timestamp> {
    let policy = tt.spec.rotation.as_ref();
    let every = spec_duration(policy.and_then(|p| p.every.as_deref())).map(|d| last + d);
    let before_expiry = expires_at.map(|at| {
        let lead =
            spec_duration(policy.and_then(|p| p.before_expiry.as_deref())).unwrap_or_else(|| {
                let tenth = SignedDuration::from_secs(at.duration_since(last).as_secs() / 10);
                tenth.min(SignedDuration::from_hours(24))
            });
        at - lead
    });
    [every, before_expiry].into_iter().flatten().min()
}

fn ready(
    status: bool,
    reason: &str,
    message: String,
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    Condition {
        type_: "Ready".into(),
        status: if status { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    }
}

/// The status with `Ready` set (keeping its transition time when the value is unchanged).
pub fn with_ready(mut status: TookenTokenStatus, condition: Condition) -> TookenTokenStatus {
    if let Some(old) = status.conditions.iter().find(|c| c.type_ == "Ready")
        && old.status == condition.status
        && old.reason == condition.reason
    {
        let kept = Condition {
            last_transition_time: old.last_transition_time.clone(),
            ..condition
        };
        status.conditions.retain(|c| c.type_ != "Ready");
        status.conditions.push(kept);
        return status;
    }
    status.conditions.retain(|c| c.type_ != "Ready");
    status.conditions.push(condition);
    status
}

/// Whether the status already says the resource is not ready for `reason`.
pub fn reported(tt: &TookenToken, reason: &str) -> bool {
    tt.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False" && c.reason == reason)
    })
}

/// Records why the resource is not ready (best effort: the error is what matters); nothing is
/// written when the status already says so.
pub async fn report_failure<C: Cluster>(
    tt: &TookenToken,
    cluster: &C,
    error: &ReconcileError,
    now: Timestamp,
) {
    let status = with_ready(
        tt.status.clone().unwrap_or_default(),
        ready(
            false,
            error.reason(),
            error.to_string(),
            tt.metadata.generation,
            now,
        ),
    );
    if tt.status.as_ref() == Some(&status) {
        return;
    }
    if let Err(err) = cluster.apply_status(tt, &status).await {
        tracing::warn!(error = %err, "could not record the failure in the status");
    }
}

/// Brings the token and its Secret in line with the spec; returns when to look again.
pub async fn apply<C: Cluster, A: TookenApi>(
    tt: &TookenToken,
    cluster: &C,
    api: &A,
    now: Timestamp,
) -> Result<Duration, ReconcileError> {
    crate::crd::validate(&tt.spec).map_err(ReconcileError::InvalidSpec)?;
    let namespace = tt.namespace().unwrap_or_default();
    let uid = tt.uid().unwrap_or_default();
    let secret_name = tt.secret_name();
    let key = tt.secret_key();
    let mut status = tt.status.clone().unwrap_or_default();
    let existing = match recorded_secret(tt, &status) {
        Some(recorded) if cluster.holds_secret(&namespace, &secret_name, &recorded) => {
            Some(recorded)
        }
        _ => cluster.get_secret(&namespace, &secret_name).await?,
    };
    if existing
        .as_ref()
        .is_some_and(|s| s.controller.as_deref() != Some(uid.as_str()))
    {
        return Err(ReconcileError::SecretConflict(secret_name));
    }
    let grace = grace_seconds(tt);

    // Tokens replaced by a scope change go once their grace period is over.
    let mut pending = Vec::new();
    for revocation in std::mem::take(&mut status.pending_revocations) {
        if parse_time(Some(&revocation.revoke_after)).is_none_or(|at| at <= now) {
            api.revoke_token(&revocation.token_id).await?;
            cluster
                .event(
                    tt,
                    false,
                    "Revoked",
                    format!("revoked the replaced token {}", revocation.token_id),
                )
                .await;
        } else {
            pending.push(revocation);
        }
    }
    status.pending_revocations = pending;

    // The token: the current one if it still works and has the right scopes, else a new one.
    let scopes = desired_scopes(tt);
    let current = match &status.token_id {
        Some(id) => api.get_token(id).await?,
        None => None,
    };
    let keep = current
        .as_ref()
        .is_some_and(|t| t.status == TokenStatus::Active && status.issued_scopes == scopes);
    let mut fresh_secret = None;
    let mut event: Option<(&str, String)> = None;
    let token = if keep {
        current.expect("checked above")
    } else {
        let previous = status.token_id.clone();
        let fingerprint = sha256_hex(&format!(
            "{scopes:?}/{}",
            previous.as_deref().unwrap_or("first")
        ));
        let idempotency_key = format!("tookentoken-{uid}-issue-{}", &fingerprint[..16]);
        let request = CreateTokenRequest {
            name: format!("k8s:{namespace}/{}", tt.name_any()),
            scopes: scopes.iter().map(|s| s.to_contract()).collect(),
            expires_at: expiry_at_issue(tt, now),
            name_prefix: None,
            labels: Default::default(),
        };
        let issued = api.create_token(&request, &idempotency_key).await?;
        if let (Some(old), Some(old_token)) = (previous, &current)
            && old != issued.token.id
            && old_token.status == TokenStatus::Active
        {
            // The old token keeps working through the grace period, so workloads can move over.
            status.pending_revocations.push(PendingRevocation {
                token_id: old,
                revoke_after: (now + SignedDuration::from_secs(grace as i64)).to_string(),
            });
        }
        event = Some(match &status.token_id {
            None => ("Issued", format!("issued token {}", issued.token.id)),
            Some(old) => (
                "Reissued",
                format!("issued token {} to replace {old}", issued.token.id),
            ),
        });
        status.token_id = Some(issued.token.id.clone());
        status.issued_scopes = scopes.clone();
        fresh_secret = issued.secret;
        issued.token
    };

    // Does the Secret hold this token's current secret?
    let in_cluster = existing.as_ref().and_then(|s| s.digests.get(&key));
    let labelled_current = existing.as_ref().is_some_and(|s| {
        s.annotations.get(TOKEN_ID_KEY) == Some(&token.id)
            && s.annotations.get(ROTATION_KEY) == Some(&token.rotation.to_string())
    });
    let intact = match in_cluster {
        None => false,
        // Written before a crash kept the status from recording it: adopt it.
        Some(_) if status.rotation != Some(token.rotation) => labelled_current,
        Some(digest) => labelled_current && status.secret_hash.as_ref() == Some(digest),
    };
    let last = token.rotated_at.unwrap_or(token.created_at);
    let due = next_rotation(tt, last, token.expires_at).is_some_and(|at| at <= now);

    let mut rotation = token.rotation;
    let mut expires_at = token.expires_at;
    let mut last_rotation = last;
    // The value to write, `None` to keep the one in the Secret (known by its digest).
    let value = match (fresh_secret, in_cluster) {
        (Some(value), _) => Some(value),
        (None, Some(_)) if intact && !due => existing
            .as_ref()
            .and_then(|s| s.value(&key))
            .map(str::to_owned),
        (None, in_cluster) => {
            if event.is_none() {
                event = Some(match (&in_cluster, due) {
                    (None, _) => (
                        "Repaired",
                        "the Secret was missing; rotated and rewrote it".into(),
                    ),
                    (Some(_), false) => (
                        "Repaired",
                        "the Secret was changed by hand; rotated and rewrote it".into(),
                    ),
                    (Some(_), true) => ("Rotated", "rotated on schedule".into()),
                });
            }
            let mut secret = None;
            // A replay (no secret) means an earlier attempt rotated and its secret was lost;
            // rotating again from the new generation yields a usable one.
            for _ in 0..3 {
                let request = RotateTokenRequest {
                    grace_period_seconds: Some(grace),
                    expires_at: expiry_at_rotation(tt, now, last, expires_at),
                };
                let idempotency_key = format!("tookentoken-{uid}-rotate-{}-{rotation}", token.id);
                let rotated = api
                    .rotate_token(&token.id, &request, &idempotency_key)
                    .await?;
                rotation = rotated.token.rotation;
                expires_at = rotated.token.expires_at;
                last_rotation = rotated.token.rotated_at.unwrap_or(now);
                if let Some(value) = rotated.secret {
                    secret = Some(value);
                    break;
                }
            }
            Some(secret.ok_or(ReconcileError::NoSecret)?)
        }
    };

    let mut desired = DesiredSecret {
        name: secret_name.clone(),
        key,
        value: String::new(),
        token_id: token.id.clone(),
        rotation,
        labels: tt.spec.secret.labels.clone(),
        annotations: tt.spec.secret.annotations.clone(),
    };
    let metadata_current = existing
        .as_ref()
        .is_some_and(|s| metadata_matches(s, &desired, tt));
    let value_hash = match value {
        Some(value) => {
            desired.value = value;
            sha256_hex(&desired.value)
        }
        // Kept: only a cached view lacks the value, and it is trusted only when it matches
        // the status, metadata included, so nothing needs writing.
        None => in_cluster.cloned().ok_or(ReconcileError::NoSecret)?,
    };
    if event.is_some() || !intact || !metadata_current {
        if desired.value.is_empty() {
            return Err(ReconcileError::NoSecret);
        }
        cluster.apply_secret(tt, &desired).await?;
    }

    let next = next_rotation(tt, last_rotation, expires_at);
    status.rotation = Some(rotation);
    status.secret_hash = Some(value_hash);
    status.secret_name = Some(secret_name);
    status.expires_at = expires_at.map(|t| t.to_string());
    status.last_rotation = Some(last_rotation.to_string());
    status.next_rotation = next.map(|t| t.to_string());
    status.observed_generation = tt.metadata.generation;
    let status = with_ready(
        status,
        ready(
            true,
            "TokenReady",
            format!("the Secret holds rotation {rotation} of token {}", token.id),
            tt.metadata.generation,
            now,
        ),
    );
    // Unchanged (the usual periodic check): no write, so no watch event either.
    if tt.status.as_ref() != Some(&status) {
        cluster.apply_status(tt, &status).await?;
    }
    if let Some((reason, note)) = event {
        cluster.event(tt, false, reason, note).await;
    }

    let wake = [
        next,
        status
            .pending_revocations
            .iter()
            .filter_map(|p| parse_time(Some(&p.revoke_after)))
            .min(),
    ]
    .into_iter()
    .flatten()
    .min();
    let wait = wake
        .map(|at| Duration::from_secs(at.duration_since(now).as_secs().max(1) as u64))
        .unwrap_or(MAX_REQUEUE);
    Ok(wait.min(MAX_REQUEUE))
}

/// The resource is being deleted: revoke its tokens unless told to retain them.
pub async fn cleanup<C: Cluster, A: TookenApi>(
    tt: &TookenToken,
    cluster: &C,
    api: &A,
) -> Result<(), ReconcileError> {
    let status = tt.status.clone().unwrap_or_default();
    if tt.spec.deletion_policy == DeletionPolicy::Retain {
        cluster
            .event(
                tt,
                false,
                "Retained",
                "deletionPolicy is Retain; the token stays valid".into(),
            )
            .await;
        return Ok(());
    }
    let ids = status
        .token_id
        .iter()
        .chain(status.pending_revocations.iter().map(|p| &p.token_id));
    for id in ids {
        api.revoke_token(id).await?;
    }
    if let Some(id) = &status.token_id {
        cluster
            .event(tt, false, "Revoked", format!("revoked token {id}"))
            .await;
    }
    Ok(())
}
