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
/// `<token>:<rotation>` in the same patch. The patch carries the `resourceVersion` it was
/// computed from, so two receivers (or a retry racing the first attempt) cannot both restart.
pub async fn restart(
    client: &Client,
    target: &Target,
    token_id: &str,
    rotation: u64,
    clock: Clock,
) -> Result<Restart, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &target.namespace,
        &target.kind.api_resource(),
    );
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
        if marker::restarted_for(recorded, token_id).is_some_and(|done| done >= rotation) {
            return Ok(Restart::AlreadyRestarted);
        }
        if target.kind == WorkloadKind::Deployment && workload.data["spec"]["paused"] == true {
            record_paused(client, target, &workload, token_id, rotation, clock).await?;
            return Ok(Restart::Paused);
        }
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": workload.resource_version(),
                "annotations": {
                    keys::RESTARTED_FOR_ROTATION: marker::record(recorded, token_id, rotation),
                },
            },
            "spec": {"template": {"metadata": {"annotations": {
                keys::RESTARTED_AT: restarted_at(clock),
            }}}},
        });
        match api
            .patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(Restart::Restarted),
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < ATTEMPTS => {
                tracing::debug!(?target, "workload changed meanwhile; recomputing the patch");
            }
            Err(err) => return Err(err),
        }
    }
}

/// kubectl's format: RFC 3339 with whole seconds.
fn restarted_at(clock: Clock) -> String {
    clock().strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
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
