//! A rotation in two halves. `schedule`, while the delivery waits: find what follows the token
//! and record the rotation as pending on each workload. `restart_for`, after the delivery is
//! acknowledged: wait until the token's Secrets hold the rotation, then restart each workload
//! once. Pending entries outlive the sidecar; `pending` finds them again after a restart.

use super::marker;
use super::secrets::{self, SecretRef};
use super::targets::{self, Target};
use super::workload::{self, Restart};
use crate::metrics::{Metrics, RestartLabels};
use crate::secret_poll::SECRET_POLL;
use crate::webhook::{HandleError, Handled};
use crate::{Clock, keys};
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Restarter {
    pub client: Client,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub secret_wait: Duration,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Restarter {
    /// Records the rotation as pending on every workload that follows the token. When the
    /// Secret does not hold the rotation yet (it was rotated through the API, not by the
    /// operator), the `TookenToken`s are annotated so the operator heals it at once.
    pub async fn schedule(&self, token_id: &str, rotation: u64) -> Result<Handled, HandleError> {
        if !is_label_value(token_id) {
            return Ok(handled(format!(
                "token id {token_id:?} cannot be a label value; nothing to restart"
            )));
        }
        let namespace = self.namespace.as_deref();
        let tokens = targets::tooken_tokens(&self.client, namespace, token_id).await?;
        let secrets = secrets::for_token(&self.client, namespace, token_id).await?;
        if holds_rotation(&secrets, &namespaces_of(&tokens), rotation).is_err() {
            for token in &tokens {
                self.tell_operator(token, rotation).await?;
            }
        }
        let targets = self.targets(&tokens, &secrets).await?;
        let mut pending = 0;
        for target in &targets {
            if workload::schedule(&self.client, target, token_id, rotation).await?
                == workload::Scheduled::Pending
            {
                pending += 1;
            }
        }
        Ok(handled(format!(
            "rotation {rotation} of token {token_id}: restart scheduled for {pending} of {} \
             workloads, once the Secret holds it",
            targets.len()
        )))
    }

    async fn tell_operator(&self, token: &DynamicObject, rotation: u64) -> Result<(), kube::Error> {
        let resource = keys::tooken_token_resource();
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.client.clone(),
            &token.namespace().unwrap_or_default(),
            &resource,
        );
        let patch = serde_json::json!({"metadata": {"annotations": {
            keys::ROTATION_SEEN: rotation.to_string(),
        }}});
        api.patch(
            &token.name_any(),
            &PatchParams::default(),
            &Patch::Merge(&patch),
        )
        .await
        .map(drop)
    }

    /// The workloads that follow the token: listed by its `TookenToken`s, or annotated for one
    /// of its Secrets.
    async fn targets(
        &self,
        tokens: &[DynamicObject],
        secrets: &[SecretRef],
    ) -> Result<BTreeSet<Target>, HandleError> {
        let mut targets: BTreeSet<Target> = tokens.iter().flat_map(targets::listed_in).collect();
        let mut secrets_by_namespace: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for secret in secrets {
            secrets_by_namespace
                .entry(&secret.namespace)
                .or_default()
                .insert(secret.name.clone());
        }
        for (namespace, names) in &secrets_by_namespace {
            targets.extend(targets::annotated_in(&self.client, namespace, names).await?);
        }
        Ok(targets)
    }

    /// Every pending `(token, rotation)` recorded on a workload, highest rotation per token.
    pub async fn pending(&self) -> Result<BTreeMap<String, u64>, kube::Error> {
        let mut found: BTreeMap<String, u64> = BTreeMap::new();
        for kind in targets::WorkloadKind::ALL {
            let api: Api<DynamicObject> = match self.namespace.as_deref() {
                Some(ns) => Api::namespaced_with(self.client.clone(), ns, &kind.api_resource()),
                None => Api::all_with(self.client.clone(), &kind.api_resource()),
            };
            for workload in api.list_metadata(&ListParams::default()).await?.items {
                let Some(value) = workload.annotations().get(keys::PENDING_ROTATION) else {
                    continue;
                };
                for (token, rotation) in marker::all(value) {
                    let entry = found.entry(token).or_default();
                    *entry = (*entry).max(rotation);
                }
            }
        }
        Ok(found)
    }

    pub async fn restart_for(
        &self,
        token_id: &str,
        rotation: u64,
        received: Instant,
    ) -> Result<Handled, HandleError> {
        if !is_label_value(token_id) {
            // No Secret can carry it as a label, so nothing in the cluster follows it.
            return Ok(handled(format!(
                "token id {token_id:?} cannot be a label value; nothing to restart"
            )));
        }
        let namespace = self.namespace.as_deref();
        let tokens = targets::tooken_tokens(&self.client, namespace, token_id).await?;
        let token_namespaces = namespaces_of(&tokens);
        let secrets = secrets::wait_until(
            &self.client,
            namespace,
            token_id,
            self.secret_wait,
            SECRET_POLL,
            |secrets| holds_rotation(secrets, &token_namespaces, rotation),
        )
        .await?;
        // Record what the Secrets hold, so events for any rotation up to it restart nothing more.
        let held = secrets
            .iter()
            .filter_map(|secret| secret.rotation)
            .min()
            .unwrap_or(rotation)
            .max(rotation);
        let targets = self.targets(&tokens, &secrets).await?;
        if targets.is_empty() {
            return Ok(handled(format!("no workload follows token {token_id}")));
        }

        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        for target in &targets {
            let outcome = workload::restart(&self.client, target, token_id, held, self.clock).await;
            let label = match &outcome {
                Ok(restart) => restart.as_str(),
                Err(_) => "failed",
            };
            self.metrics
                .restarts
                .get_or_create(&RestartLabels {
                    kind: target.kind.as_str(),
                    outcome: label,
                })
                .inc();
            *counts.entry(label).or_default() += 1;
            match outcome {
                Ok(Restart::Restarted) => {
                    self.metrics
                        .event_to_patch
                        .observe(received.elapsed().as_secs_f64());
                    tracing::info!(?target, token_id, rotation, "workload restarted");
                }
                Ok(other) => {
                    tracing::info!(?target, outcome = other.as_str(), "workload not restarted")
                }
                Err(err) => {
                    tracing::warn!(?target, error = %err, "restart failed");
                    failures.push(format!(
                        "{} {}/{}: {err}",
                        target.kind.as_str(),
                        target.namespace,
                        target.name
                    ));
                }
            }
        }
        if !failures.is_empty() {
            // The retry skips what is done: restarted workloads carry the rotation annotation.
            return Err(HandleError::Kubernetes(failures.join("; ")));
        }
        let summary: Vec<String> = counts.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        Ok(handled(format!(
            "rotation {rotation} of token {token_id}: {}",
            summary.join(", ")
        )))
    }
}

/// Ready when every labelled Secret holds `rotation` (or later) and every namespace with a
/// `TookenToken` for the token has one; trivially ready when nothing refers to the token.
fn holds_rotation(
    secrets: &[SecretRef],
    token_namespaces: &BTreeSet<String>,
    rotation: u64,
) -> Result<(), String> {
    if let Some(namespace) = token_namespaces
        .iter()
        .find(|ns| !secrets.iter().any(|secret| &secret.namespace == *ns))
    {
        return Err(format!(
            "no Secret labelled for the token in namespace {namespace} yet"
        ));
    }
    match secrets
        .iter()
        .find(|secret| secret.rotation.is_none_or(|held| held < rotation))
    {
        Some(secret) => Err(format!(
            "Secret {}/{} holds rotation {} (annotation {}), waiting for {rotation}",
            secret.namespace,
            secret.name,
            secret.rotation.map_or("none".into(), |r| r.to_string()),
            keys::ROTATION,
        )),
        None => Ok(()),
    }
}

fn namespaces_of(tokens: &[DynamicObject]) -> BTreeSet<String> {
    tokens
        .iter()
        .filter_map(|token| token.namespace())
        .collect()
}

fn is_label_value(value: &str) -> bool {
    !value.is_empty()
        && value.len() <= 63
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value.as_bytes()[0].is_ascii_alphanumeric()
        && value.as_bytes()[value.len() - 1].is_ascii_alphanumeric()
}

fn handled(message: String) -> Handled {
    Handled { message }
}
