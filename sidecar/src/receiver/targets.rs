//! Which workloads follow a token: the `TookenToken`s' `spec.restartOnRotation` lists, and
//! workloads annotated `tooken.io/restart-on-rotation: <secret name>`.

use crate::keys;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use kube::{Client, ResourceExt};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl WorkloadKind {
    pub const ALL: [WorkloadKind; 3] = [
        WorkloadKind::Deployment,
        WorkloadKind::StatefulSet,
        WorkloadKind::DaemonSet,
    ];

    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "Deployment",
            WorkloadKind::StatefulSet => "StatefulSet",
            WorkloadKind::DaemonSet => "DaemonSet",
        }
    }

    pub fn api_resource(self) -> ApiResource {
        match self {
            WorkloadKind::Deployment => ApiResource::erase::<Deployment>(&()),
            WorkloadKind::StatefulSet => ApiResource::erase::<StatefulSet>(&()),
            WorkloadKind::DaemonSet => ApiResource::erase::<DaemonSet>(&()),
        }
    }
}

/// One workload to restart.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Target {
    pub namespace: String,
    pub kind: WorkloadKind,
    pub name: String,
}

/// The `TookenToken`s whose `status.tokenId` is `token_id`. None when the CRD is not installed,
/// so annotation-only setups work.
pub async fn tooken_tokens(
    client: &Client,
    namespace: Option<&str>,
    token_id: &str,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let resource = keys::tooken_token_resource();
    let api: Api<DynamicObject> = match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    };
    match api.list(&ListParams::default()).await {
        Ok(list) => Ok(list
            .items
            .into_iter()
            .filter(|token| token.data["status"]["tokenId"].as_str() == Some(token_id))
            .collect()),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Vec::new()),
        Err(err) => Err(err),
    }
}

/// The workloads a `TookenToken` lists in `spec.restartOnRotation`, in its own namespace.
pub fn listed_in(token: &DynamicObject) -> Vec<Target> {
    let Some(namespace) = token.namespace() else {
        return Vec::new();
    };
    let entries = token.data["spec"]["restartOnRotation"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let kind = entry["kind"].as_str().unwrap_or_default();
            let name = entry["name"].as_str().filter(|name| !name.is_empty())?;
            let Some(kind) = WorkloadKind::parse(kind) else {
                tracing::warn!(token = %token.name_any(), kind, "unsupported kind in restartOnRotation");
                return None;
            };
            Some(Target {
                namespace: namespace.clone(),
                kind,
                name: name.to_owned(),
            })
        })
        .collect()
}

/// The workloads in `namespace` annotated to restart on rotations of one of `secrets`.
pub async fn annotated_in(
    client: &Client,
    namespace: &str,
    secrets: &BTreeSet<String>,
) -> Result<Vec<Target>, kube::Error> {
    let mut targets = Vec::new();
    for kind in WorkloadKind::ALL {
        let api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &kind.api_resource());
        // Annotations cannot be selected server-side; metadata alone keeps the answer small.
        let list = api.list_metadata(&ListParams::default()).await?;
        targets.extend(
            list.items
                .into_iter()
                .filter(|workload| {
                    workload
                        .annotations()
                        .get(keys::RESTART_ON_ROTATION)
                        .is_some_and(|names| {
                            names.split(',').any(|name| secrets.contains(name.trim()))
                        })
                })
                .map(|workload| Target {
                    namespace: namespace.to_owned(),
                    kind,
                    name: workload.name_any(),
                }),
        );
    }
    Ok(targets)
}
