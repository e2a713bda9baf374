//! One restart attempt for a rotation: find what follows the token, wait until its Secrets
//! hold the rotation, then restart each workload once.

use super::secrets::{self, SecretRef};
use super::targets::{self, Target};
use super::workload::{self, Restart};
use crate::metrics::{Metrics, RestartLabels};
use crate::webhook::{HandleError, Handled};
use crate::{Clock, keys};
use kube::{Client, ResourceExt};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the Secrets are listed again while waiting for the operator to write them.
pub const SECRET_POLL: Duration = Duration::from_millis(500);

pub struct Restarter {
    pub client: Client,
    /// `None`: all namespaces.
    pub namespace: Option<String>,
    pub secret_wait: Duration,
    pub clock: Clock,
    pub metrics: Arc<Metrics>,
}

impl Restarter {
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
        let token_namespaces: BTreeSet<String> = tokens
            .iter()
            .filter_map(|token| token.namespace())
            .collect();
        let secrets = secrets::wait_until(
            &self.client,
            namespace,
            token_id,
            self.secret_wait,
            SECRET_POLL,
            |secrets| holds_rotation(secrets, &token_namespaces, rotation),
        )
        .await?;

        let mut targets: BTreeSet<Target> = tokens.iter().flat_map(targets::listed_in).collect();
        let mut secrets_by_namespace: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
        for secret in &secrets {
            secrets_by_namespace
                .entry(&secret.namespace)
                .or_default()
                .insert(secret.name.clone());
        }
        for (namespace, names) in &secrets_by_namespace {
            targets.extend(targets::annotated_in(&self.client, namespace, names).await?);
        }
        if targets.is_empty() {
            return Ok(handled(format!("no workload follows token {token_id}")));
        }

        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        let mut failures = Vec::new();
        for target in &targets {
            let outcome =
                workload::restart(&self.client, target, token_id, rotation, self.clock).await;
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
