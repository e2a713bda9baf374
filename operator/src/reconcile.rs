//! One reconcile of a `TookenToken`: make the token and its Secret match the spec.
//!
//! Crash safety: every call that creates or rotates carries an idempotency key derived from
//! the resource (its uid, the token and the generation it starts from). Re-running after a
//! crash at any point therefore finds the same token instead of making another, and a secret
//! that was issued but never stored is replaced by rotating again. No step leaves a token that
//! the status does not name.

use crate::cluster::{Cluster, DesiredSecret, ObservedSecret, ROTATION_KEY, TOKEN_ID_KEY};
use crate::crd::{
    DeletionPolicy, PendingIssue, PendingRevocation, ROTATE_AT_ANNOTATION, TokenScope, TookenToken,
    TookenTokenStatus,
};
use crate::requests::{self, grace_seconds, last_rotation};
pub use crate::requests::{next_rotation, sha256_hex};
use crate::tooken_api::{ApiFailure, TookenApi};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::ResourceExt;
use std::time::Duration;
use tooken_contract::tokens::{CreateTokenRequest, IssuedToken, Token, TokenStatus};

/// The longest wait between reconciles, so drift the watches and the change feed missed is
/// still found.
pub const MAX_REQUEUE: Duration = Duration::from_secs(3600);

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    #[error("the Secret `{0}` exists and is not managed by this TookenToken; it is left alone")]
    SecretConflict(String),
    #[error("no Tooken API connection: {0}")]
    NoConnection(String),
    #[error("refused by policy: {0}")]
    PolicyDenied(crate::policy::Denial),
    #[error("TookenPolicies cannot be read yet ({0}); nothing is issued until they can")]
    PolicyUnavailable(String),
    #[error(transparent)]
    Api(#[from] ApiFailure),
    #[error("Kubernetes API error: {0}")]
    Kube(#[from] kube::Error),
    #[error("the Tooken API kept replaying rotations without a secret, or the token vanished")]
    NoSecret,
    /// Revoking on delete failed (for the reason given); the finalizer stays until it succeeds.
    /// Its message and condition reason are the ones such a failure has always shown.
    #[error("the Tooken API is unavailable: revoking on delete failed, will retry: {0}")]
    CleanupFailed(String),
}

impl ReconcileError {
    /// The condition reason and metric label.
    pub fn reason(&self) -> &'static str {
        match self {
            ReconcileError::InvalidSpec(_) => "InvalidSpec",
            ReconcileError::SecretConflict(_) => "SecretConflict",
            ReconcileError::NoConnection(_) => "NoConnection",
            ReconcileError::PolicyDenied(_) => "PolicyDenied",
            ReconcileError::PolicyUnavailable(_) => "PolicyUnavailable",
            ReconcileError::Api(ApiFailure::Unavailable(_)) => "ApiUnavailable",
            ReconcileError::Api(ApiFailure::Refused { .. } | ApiFailure::KeyReused(_)) => {
                "ApiRefused"
            }
            ReconcileError::Kube(_) => "KubernetesError",
            ReconcileError::NoSecret => "NoSecret",
            // The `Ready` reason a failed revocation has always shown; its Event is `RevokeFailed`.
            ReconcileError::CleanupFailed(_) => "ApiUnavailable",
        }
    }
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

fn annotation<'a>(secret: &'a ObservedSecret, key: &str) -> Option<&'a str> {
    secret.annotations.get(key).map(String::as_str)
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
/// Steps: settle pending revocations, ensure the token, ensure its value, ensure the Secret,
/// write the status.
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
    settle_revocations(tt, cluster, api, &mut status, now).await?;
    let ensured = ensure_token(tt, cluster, api, &mut status, now).await?;
    let Ensured {
        token,
        secret,
        event,
    } = ensure_value(tt, api, &status, existing.as_ref(), ensured, now).await?;
    let value_hash = ensure_secret(tt, cluster, existing.as_ref(), &token, secret).await?;

    let rotation = token.rotation;
    let last_rotation = last_rotation(&token);
    let next = next_rotation(tt, last_rotation, token.expires_at);
    status.rotation = Some(rotation);
    status.secret_hash = Some(value_hash);
    status.secret_name = Some(secret_name);
    status.expires_at = token.expires_at.map(|t| t.to_string());
    status.last_rotation = Some(last_rotation.to_string());
    status.next_rotation = next.map(|t| t.to_string());
    status.observed_generation = tt.metadata.generation;
    status.pending_issue = None;
    if let Some(value) = rotate_at(tt) {
        // Whatever was asked before now is done: the Secret holds a rotation made since.
        status.rotate_at_handled = Some(value.to_owned());
    }
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

/// Writes the Secret unless it already holds `value` with the current metadata; `None` keeps
/// the value it holds. Returns the digest of the value it holds then.
async fn ensure_secret<C: Cluster>(
    tt: &TookenToken,
    cluster: &C,
    existing: Option<&ObservedSecret>,
    token: &Token,
    value: Option<String>,
) -> Result<String, ReconcileError> {
    let mut desired = DesiredSecret {
        name: tt.secret_name(),
        key: tt.secret_key(),
        value: String::new(),
        token_id: token.id.clone(),
        rotation: token.rotation,
        labels: tt.spec.secret.labels.clone(),
        annotations: tt.spec.secret.annotations.clone(),
    };
    let held = existing.and_then(|s| s.digests.get(&desired.key));
    let value_hash = match value {
        Some(value) => {
            desired.value = value;
            sha256_hex(&desired.value)
        }
        // Kept: only a cached view lacks the value, and it is trusted only when it matches
        // the status, metadata included, so nothing needs writing.
        None => held.cloned().ok_or(ReconcileError::NoSecret)?,
    };
    let current_secret = existing.is_some_and(|s| {
        let ours = desired.to_secret(tt).metadata;
        Some(&s.labels) == ours.labels.as_ref()
            && Some(&s.annotations) == ours.annotations.as_ref()
            && held == Some(&value_hash)
    });
    if !current_secret {
        if desired.value.is_empty() {
            return Err(ReconcileError::NoSecret);
        }
        cluster.apply_secret(tt, &desired).await?;
    }
    Ok(value_hash)
}

/// The trimmed `tooken.io/rotate-at` value, if set.
fn rotate_at(tt: &TookenToken) -> Option<&str> {
    tt.metadata
        .annotations
        .as_ref()?
        .get(ROTATE_AT_ANNOTATION)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Tokens replaced by a scope change go once their grace period is over.
async fn settle_revocations<C: Cluster, A: TookenApi>(
    tt: &TookenToken,
    cluster: &C,
    api: &A,
    status: &mut TookenTokenStatus,
    now: Timestamp,
) -> Result<(), ReconcileError> {
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
    Ok(())
}

/// What the ensure steps hand on: the token the Secret should hold, as the API reports it now.
struct Ensured {
    token: Token,
    /// Its secret, when known: issued or rotated by this run, or read from the Secret. `None`
    /// keeps the one the Secret holds (known by its digest).
    secret: Option<String>,
    /// The Event that says what was done.
    event: Option<(&'static str, String)>,
}

/// The current token if it still works and has the right scopes, else a new one. A token
/// revoked, expired or deleted outside the operator is replaced here.
async fn ensure_token<C: Cluster, A: TookenApi>(
    tt: &TookenToken,
    cluster: &C,
    api: &A,
    status: &mut TookenTokenStatus,
    now: Timestamp,
) -> Result<Ensured, ReconcileError> {
    let scopes = desired_scopes(tt);
    let current = match &status.token_id {
        Some(id) => api.get_token(id).await?,
        None => None,
    };
    let why = match (&status.token_id, &current) {
        (None, _) => None,
        (Some(id), None) => Some(format!("token {id} was deleted")),
        (Some(id), Some(t)) if t.status == TokenStatus::Revoked => {
            Some(format!("token {id} was revoked"))
        }
        (Some(id), Some(t)) if t.status == TokenStatus::Expired => {
            Some(format!("token {id} expired"))
        }
        (Some(id), Some(_)) if status.issued_scopes != scopes => {
            Some(format!("the scopes of token {id} changed"))
        }
        // Issued by an operator that did not confine tokens yet.
        (Some(id), Some(t)) if t.name_prefix.as_deref() != Some(&requests::name_prefix(tt)) => {
            Some(format!("token {id} was not confined to its namespace"))
        }
        (Some(_), Some(token)) => {
            return Ok(Ensured {
                token: token.clone(),
                secret: None,
                event: None,
            });
        }
    };
    let previous = status.token_id.clone();
    let key = requests::issue_key(tt, &format!("{scopes:?}"), previous.as_deref());
    let request = CreateTokenRequest {
        name: requests::token_name(tt),
        scopes: scopes.iter().map(|s| s.to_contract()).collect(),
        expires_at: issue_expiry(tt, cluster, status, &key, now).await?,
        name_prefix: Some(requests::name_prefix(tt)),
        labels: requests::labels(tt),
    };
    let issued = issue(tt, api, status, &key, &request).await?;
    if let (Some(old), Some(old_token)) = (previous, &current)
        && old != issued.token.id
        && old_token.status == TokenStatus::Active
    {
        // The old token keeps working through the grace period, so workloads can move over.
        status.pending_revocations.push(PendingRevocation {
            token_id: old,
            revoke_after: (now + SignedDuration::from_secs(grace_seconds(tt) as i64)).to_string(),
        });
    }
    let event = match why {
        None => ("Issued", format!("issued token {}", issued.token.id)),
        Some(why) => (
            "Reissued",
            format!("{why}; issued token {}", issued.token.id),
        ),
    };
    status.token_id = Some(issued.token.id.clone());
    status.issued_scopes = scopes;
    Ok(Ensured {
        token: issued.token,
        secret: issued.secret,
        event: Some(event),
    })
}

/// The create's `expires_at`. A lifetime counts from the time of issue, so that time is
/// written to the status before the create is sent, and every retry sends the same body.
async fn issue_expiry<C: Cluster>(
    tt: &TookenToken,
    cluster: &C,
    status: &mut TookenTokenStatus,
    key: &str,
    now: Timestamp,
) -> Result<Option<Option<Timestamp>>, ReconcileError> {
    if !requests::issue_depends_on_time(tt) {
        return Ok(requests::expiry_at_issue(tt, now));
    }
    let written = status
        .pending_issue
        .as_ref()
        .filter(|p| p.idempotency_key == key)
        .and_then(|p| parse_time(Some(&p.expires_at)))
        // An expiry that passed while the operator was down cannot be issued any more.
        .filter(|at| *at > now);
    if let Some(at) = written {
        return Ok(Some(Some(at)));
    }
    let expiry = requests::expiry_at_issue(tt, now);
    if let Some(Some(at)) = expiry {
        status.pending_issue = Some(PendingIssue {
            idempotency_key: key.to_owned(),
            expires_at: at.to_string(),
        });
        cluster.apply_status(tt, status).await?;
    }
    Ok(expiry)
}

/// Creates the token, and returns it as it is now. A replay returns the token as it was when
/// first issued, without its secret, so it is read again; a replayed token that no longer works,
/// or a key the API refuses, is recovered without ever making a second working token.
async fn issue<A: TookenApi>(
    tt: &TookenToken,
    api: &A,
    status: &TookenTokenStatus,
    key: &str,
    request: &CreateTokenRequest,
) -> Result<IssuedToken, ReconcileError> {
    let issued = match api.create_token(request, key).await {
        Err(ApiFailure::KeyReused(why)) => {
            tracing::warn!(
                key,
                why,
                "the create's key was refused; looking for its token"
            );
            return adopt_or_create(tt, api, status, key, request).await;
        }
        other => other?,
    };
    if issued.secret.is_some() {
        return Ok(issued);
    }
    match api.get_token(&issued.token.id).await? {
        Some(token) if token.status == TokenStatus::Active => Ok(IssuedToken {
            token,
            secret: None,
        }),
        // Issued before a crash and since revoked or deleted: no working token exists.
        _ => Ok(api
            .create_token(request, &requests::issue_retry_key(key, request))
            .await?),
    }
}

/// After a refused key: the working token of this resource that the status does not name yet
/// (the one the refused key made), else a new one under a key bound to this body. Extra
/// orphans from earlier versions are revoked.
async fn adopt_or_create<A: TookenApi>(
    tt: &TookenToken,
    api: &A,
    status: &TookenTokenStatus,
    key: &str,
    request: &CreateTokenRequest,
) -> Result<IssuedToken, ReconcileError> {
    let known: Vec<&str> = status
        .token_id
        .iter()
        .map(String::as_str)
        .chain(
            status
                .pending_revocations
                .iter()
                .map(|p| p.token_id.as_str()),
        )
        .collect();
    let created = tt.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let mut orphans: Vec<Token> = api
        .find_tokens(&request.name)
        .await?
        .into_iter()
        .filter(|t| t.status == TokenStatus::Active && !known.contains(&t.id.as_str()))
        // A token retained by an earlier resource of the same name is not this one's.
        .filter(|t| created.is_none_or(|c| t.created_at >= c))
        .collect();
    orphans.sort_by_key(|t| t.created_at);
    let Some(adopted) = orphans.pop() else {
        return Ok(api
            .create_token(request, &requests::issue_retry_key(key, request))
            .await?);
    };
    for extra in orphans {
        api.revoke_token(&extra.id).await?;
    }
    Ok(IssuedToken {
        token: adopted,
        secret: None,
    })
}

/// Whether the Secret holds a current secret of `token`.
fn holds_current(
    existing: Option<&ObservedSecret>,
    key: &str,
    status: &TookenTokenStatus,
    token: &Token,
) -> bool {
    let Some(secret) = existing else { return false };
    let Some(digest) = secret.digests.get(key) else {
        return false;
    };
    let labelled_current = annotation(secret, TOKEN_ID_KEY) == Some(token.id.as_str())
        && annotation(secret, ROTATION_KEY) == Some(token.rotation.to_string().as_str());
    if status.rotation != Some(token.rotation) || status.token_id.as_deref() != Some(&token.id) {
        // Written before a crash kept the status from recording it: adopt it.
        return labelled_current;
    }
    labelled_current && status.secret_hash.as_ref() == Some(digest)
}

/// Why the Secret needs a new secret of a token it does not hold.
fn why_rotate(
    existing: Option<&ObservedSecret>,
    key: &str,
    token: &Token,
    status: &TookenTokenStatus,
) -> (&'static str, String) {
    let Some(secret) = existing.filter(|s| s.digests.contains_key(key)) else {
        return (
            "Repaired",
            "the Secret was missing; rotated and rewrote it".into(),
        );
    };
    let held = annotation(secret, ROTATION_KEY).and_then(|r| r.parse::<i64>().ok());
    let hash_ok = secret.digests.get(key) == status.secret_hash.as_ref();
    match held {
        Some(held)
            if hash_ok
                && annotation(secret, TOKEN_ID_KEY) == Some(token.id.as_str())
                && held < token.rotation =>
        {
            (
                "Healed",
                format!(
                    "token {} was rotated outside the operator (rotation {}); rotated again and rewrote the Secret",
                    token.id, token.rotation
                ),
            )
        }
        _ => (
            "Repaired",
            "the Secret was changed by hand; rotated and rewrote it".into(),
        ),
    }
}

/// The secret to write: the one just issued, a new rotation's, or `None` to keep the one the
/// Secret holds (known by its digest).
async fn ensure_value<A: TookenApi>(
    tt: &TookenToken,
    api: &A,
    status: &TookenTokenStatus,
    existing: Option<&ObservedSecret>,
    ensured: Ensured,
    now: Timestamp,
) -> Result<Ensured, ReconcileError> {
    let key = tt.secret_key();
    let Ensured {
        mut token,
        secret,
        mut event,
    } = ensured;
    if secret.is_some() {
        return Ok(Ensured {
            token,
            secret,
            event,
        });
    }
    if let Some(value) = tt.requested_rotation() {
        let request = requests::rotate_request(tt, &token, false);
        let idempotency_key =
            requests::requested_rotate_key(tt, status.rotation, &token, value, &request);
        let rotated = api
            .rotate_token(&token.id, &request, &idempotency_key)
            .await?;
        let note = format!("rotated as asked by {ROTATE_AT_ANNOTATION}={value}");
        if rotated.secret.is_some() {
            return Ok(Ensured {
                token: rotated.token,
                secret: rotated.secret,
                event: Some(("Rotated", note)),
            });
        }
        // Done before a crash; what the Secret holds since then is read below.
        token = api
            .get_token(&token.id)
            .await?
            .ok_or(ReconcileError::NoSecret)?;
        event = event.or(Some(("Rotated", note)));
    }
    let scheduled =
        next_rotation(tt, last_rotation(&token), token.expires_at).is_some_and(|at| at <= now);
    if !scheduled && holds_current(existing, &key, status, &token) {
        let secret = existing.and_then(|s| s.value(&key)).map(str::to_owned);
        return Ok(Ensured {
            token,
            secret,
            event,
        });
    }
    let why = if scheduled {
        ("Rotated", "rotated on schedule".into())
    } else {
        why_rotate(existing, &key, &token, status)
    };
    let (token, value) = rotate(tt, api, token, scheduled).await?;
    Ok(Ensured {
        token,
        secret: Some(value),
        event: event.or(Some(why)),
    })
}

/// Rotates `token` from the generation it has now. A replay (no secret) means an earlier
/// attempt rotated and its secret was lost: the token is read again, and rotated from there.
async fn rotate<A: TookenApi>(
    tt: &TookenToken,
    api: &A,
    mut token: Token,
    scheduled: bool,
) -> Result<(Token, String), ReconcileError> {
    for _ in 0..3 {
        let request = requests::rotate_request(tt, &token, scheduled);
        let key = requests::rotate_key(tt, &token, &request);
        let rotated = api.rotate_token(&token.id, &request, &key).await?;
        if let Some(value) = rotated.secret {
            return Ok((rotated.token, value));
        }
        token = api
            .get_token(&token.id)
            .await?
            .ok_or(ReconcileError::NoSecret)?;
    }
    Err(ReconcileError::NoSecret)
}

/// The ids of every token the resource holds: its token, and those awaiting revocation.
pub fn held_tokens(status: &TookenTokenStatus) -> impl Iterator<Item = &String> {
    status
        .token_id
        .iter()
        .chain(status.pending_revocations.iter().map(|p| &p.token_id))
}

/// Revokes the tokens the resource holds, because the policies now forbid what they were
/// issued with (`why`). The status keeps naming them: once the policies allow the spec again,
/// the next apply finds the token revoked and issues a new one.
pub async fn withdraw<C: Cluster, A: TookenApi>(
    tt: &TookenToken,
    cluster: &C,
    api: &A,
    why: &str,
) -> Result<(), ReconcileError> {
    let status = tt.status.clone().unwrap_or_default();
    for id in held_tokens(&status) {
        // Looked up first, so a resource refused again and again revokes and reports once.
        if api
            .get_token(id)
            .await?
            .is_some_and(|token| token.status == TokenStatus::Active)
        {
            api.revoke_token(id).await?;
            cluster
                .event(
                    tt,
                    true,
                    "RevokedByPolicy",
                    format!("revoked token {id}: {why}"),
                )
                .await;
        }
    }
    Ok(())
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
    for id in held_tokens(&status) {
        api.revoke_token(id).await?;
    }
    if let Some(id) = &status.token_id {
        cluster
            .event(tt, false, "Revoked", format!("revoked token {id}"))
            .await;
    }
    Ok(())
}
