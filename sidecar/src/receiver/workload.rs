//! Restarting one workload the way `kubectl rollout restart` does, at most once per rotation.

use super::marker;
use super::targets::{Target, WorkloadKind};
use crate::{Clock, keys};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restart {
    Restarted,
    /// Its annotation shows it was restarted for this rotation (or a later one) already.
    AlreadyRestarted,
    /// A paused Deployment: left alone, with a Kubernetes Event saying why.
    Paused,
    /// Listed in a `TookenToken` but not found.
    Missing,
}

impl Restart {
    pub fn as_str(self) -> &'static str {
        match self {
            Restart::Restarted => "restarted",
            Restart::AlreadyRestarted => "already_restarted",
            Restart::Paused => "paused",
            Restart::Missing => "missing",
        }
    }
}

/// How often a patch that lost a race (409 on `resourceVersion`) is recomputed.
const ATTEMPTS: usize = 3;

/// Patches the pod template's `kubectl.kubernetes.io/restartedAt`, and records
/// `<token>:<rotation>` (and clears the token's pending entry) in the same patch. The patch
/// carries the `resourceVersion` it was computed from, so two receivers (or a retry racing the
/// first attempt) cannot both restart. `rotation` is the one the Secret holds, so an event for
/// any rotation up to it restarts nothing more.
pub async fn restart(
    client: &Client,
    target: &Target,
    token_id: &str,
    rotation: u64,
    clock: Clock,
) -> Result<Restart, kube::Error> {
    let api = workloads(client, target);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(workload) = api.get_opt(&target.name).await? else {
            tracing::warn!(?target, "workload to restart not found");
            return Ok(Restart::Missing);
        };
        let recorded = workload
            .annotations()
            .get(keys::RESTARTED_FOR_ROTATION)
            .map(String::as_str);
        let pending = workload
            .annotations()
            .get(keys::PENDING_ROTATION)
            .map(String::as_str);
        let mut annotations = serde_json::Map::new();
        if marker::restarted_for(pending, token_id).is_some_and(|p| p <= rotation) {
            annotations.insert(
                keys::PENDING_ROTATION.into(),
                marker::remove(pending, token_id).into(),
            );
        }
        let done = marker::restarted_for(recorded, token_id).is_some_and(|done| done >= rotation);
        let paused =
            target.kind == WorkloadKind::Deployment && workload.data["spec"]["paused"] == true;
        let patch = if done || paused {
            if paused && !done {
                record_paused(client, target, &workload, token_id, rotation, clock).await?;
            }
            if annotations.is_empty() {
                return Ok(if done {
                    Restart::AlreadyRestarted
                } else {
                    Restart::Paused
                });
            }
            // Nothing to restart, but the pending entry is settled.
            serde_json::json!({"metadata": {
                "resourceVersion": workload.resource_version(),
                "annotations": annotations,
            }})
        } else {
            annotations.insert(
                keys::RESTARTED_FOR_ROTATION.into(),
                marker::record(recorded, token_id, rotation).into(),
            );
            serde_json::json!({
                "metadata": {
                    "resourceVersion": workload.resource_version(),
                    "annotations": annotations,
                },
                "spec": {"template": {"metadata": {"annotations": {
                    keys::RESTARTED_AT: restarted_at(clock),
                }}}},
            })
        };
        match api
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) if done => return Ok(Restart::AlreadyRestarted),
            Ok(_) if paused => return Ok(Restart::Paused),
            Ok(_) => return Ok(Restart::Restarted),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {
                tracing::debug!(?target, "workload changed meanwhile; recomputing the patch");
            }
            Err(err) => return Err(err),
        }
    }
}

/// What scheduling a restart found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheduled {
    /// The pending entry is written: the restart happens even if this sidecar dies now.
    Pending,
    /// Restarted for this rotation (or a later one), or already pending for it.
    NothingToDo,
    Missing,
}

/// Records `<token>:<rotation>` in the workload's `tooken.io/pending-rotation` (metadata only:
/// nothing rolls), unless it was restarted for that rotation already.
pub async fn schedule(
    client: &Client,
    target: &Target,
    token_id: &str,
    rotation: u64,
) -> Result<Scheduled, kube::Error> {
    let api = workloads(client, target);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let Some(workload) = api.get_opt(&target.name).await? else {
            return Ok(Scheduled::Missing);
        };
        let annotation = |key: &str| workload.annotations().get(key).map(String::as_str);
        let pending = annotation(keys::PENDING_ROTATION);
        let known = [annotation(keys::RESTARTED_FOR_ROTATION), pending]
            .into_iter()
            .filter_map(|a| marker::restarted_for(a, token_id))
            .max();
        if known.is_some_and(|known| known >= rotation) {
            return Ok(Scheduled::NothingToDo);
        }
        let patch = serde_json::json!({"metadata": {
            "resourceVersion": workload.resource_version(),
            "annotations": {keys::PENDING_ROTATION: marker::record(pending, token_id, rotation)},
        }});
        match api
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(Scheduled::Pending),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {}
            Err(err) => return Err(err),
        }
    }
}

fn workloads(client: &Client, target: &Target) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        &target.namespace,
        &target.kind.api_resource(),
    )
}

/// RFC 3339 like kubectl's, but to the millisecond: two rotations within one second must
/// still be two pod templates.
fn restarted_at(clock: Clock) -> String {
    clock().strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

async fn record_paused(
    client: &Client,
    target: &Target,
    workload: &DynamicObject,
    token_id: &str,
    rotation: u64,
    clock: Clock,
) -> Result<(), kube::Error> {
    let now = Time(clock());
    let event = Event {
        metadata: ObjectMeta {
            generate_name: Some(format!("{}.", target.name)),
            namespace: Some(target.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(target.kind.as_str().into()),
            name: Some(target.name.clone()),
            namespace: Some(target.namespace.clone()),
            uid: workload.uid(),
            resource_version: workload.resource_version(),
            ..ObjectReference::default()
        },
        type_: Some("Warning".into()),
        reason: Some("RestartSkipped".into()),
        message: Some(format!(
            "Deployment is paused; not restarted for rotation {rotation} of token {token_id}. \
             Run `kubectl rollout restart` after resuming it."
        )),
        source: Some(EventSource {
            component: Some("tooken-sidecar".into()),
            host: None,
        }),
        reporting_component: Some("tooken.io/sidecar".into()),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        ..Event::default()
    };
    Api::<Event>::namespaced(client.clone(), &target.namespace)
        .create(&PostParams::default(), &event)
        .await?;
    Ok(())
}
