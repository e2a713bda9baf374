//! What the operator does to the cluster, as a trait (the kube implementation is below; tests
//! use an in-memory one that can fail at any step).

use crate::crd::{TookenToken, TookenTokenStatus};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Api, Resource, ResourceExt};
use std::collections::BTreeMap;
use std::future::Future;

pub const FIELD_MANAGER: &str = "tooken-operator";
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY: &str = "tooken-operator";
pub const TOKEN_ID_KEY: &str = "tooken.io/token-id";
pub const ROTATION_KEY: &str = "tooken.io/rotation";

/// The Secret the operator writes for a resource.
#[derive(Debug, Clone, PartialEq)]
pub struct DesiredSecret {
    pub name: String,
    pub key: String,
    pub value: String,
    pub token_id: String,
    pub rotation: i64,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
}

impl DesiredSecret {
    /// The Secret object: owned by `owner`, labelled so the operator watches only its own.
    pub fn to_secret(&self, owner: &TookenToken) -> Secret {
        let mut labels = self.labels.clone();
        labels.insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        labels.insert(TOKEN_ID_KEY.into(), self.token_id.clone());
        let mut annotations = self.annotations.clone();
        annotations.insert(TOKEN_ID_KEY.into(), self.token_id.clone());
        annotations.insert(ROTATION_KEY.into(), self.rotation.to_string());
        Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: owner.namespace(),
                labels: Some(labels),
                annotations: Some(annotations),
                owner_references: owner.controller_owner_ref(&()).map(|r| vec![r]),
                ..Default::default()
            },
            data: Some(BTreeMap::from([(
                self.key.clone(),
                ByteString(self.value.clone().into_bytes()),
            )])),
            type_: Some("Opaque".into()),
            ..Default::default()
        }
    }
}

/// The API URL and key a resource uses.
#[derive(Clone, PartialEq)]
pub struct ApiConnection {
    pub url: String,
    pub api_key: String,
}

impl std::fmt::Debug for ApiConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConnection")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

pub trait Cluster: Send + Sync {
    fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<Secret>, kube::Error>> + Send;
    fn apply_secret(
        &self,
        owner: &TookenToken,
        secret: &DesiredSecret,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    fn apply_status(
        &self,
        owner: &TookenToken,
        status: &TookenTokenStatus,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
    /// Records a Kubernetes Event on the resource; failures are logged, never fatal.
    fn event(
        &self,
        owner: &TookenToken,
        warning: bool,
        reason: &str,
        note: String,
    ) -> impl Future<Output = ()> + Send;
}

/// The cluster through a kube client.
#[derive(Clone)]
pub struct KubeCluster {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Cluster for KubeCluster {
    async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<Secret>, kube::Error> {
        Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await
    }

    async fn apply_secret(
        &self,
        owner: &TookenToken,
        secret: &DesiredSecret,
    ) -> Result<(), kube::Error> {
        let namespace = owner.namespace().unwrap_or_default();
        Api::<Secret>::namespaced(self.client.clone(), &namespace)
            .patch(
                &secret.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(secret.to_secret(owner)),
            )
            .await
            .map(drop)
    }

    async fn apply_status(
        &self,
        owner: &TookenToken,
        status: &TookenTokenStatus,
    ) -> Result<(), kube::Error> {
        let namespace = owner.namespace().unwrap_or_default();
        let patch = serde_json::json!({
            "apiVersion": "tooken.io/v1alpha1",
            "kind": "TookenToken",
            "status": status,
        });
        Api::<TookenToken>::namespaced(self.client.clone(), &namespace)
            .patch_status(
                &owner.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
            .map(drop)
    }

    async fn event(&self, owner: &TookenToken, warning: bool, reason: &str, note: String) {
        if !warning {
            self.metrics
                .token_events
                .get_or_create(&crate::metrics::ReasonLabels {
                    reason: reason.into(),
                })
                .inc();
        }
        let event = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note),
            action: reason.into(),
            secondary: None,
        };
        if let Err(err) = self.recorder.publish(&event, &owner.object_ref(&())).await {
            tracing::warn!(error = %err, "could not record a Kubernetes Event");
        }
    }
}

/// Reads the API URL and key from a Secret named by the resource.
pub async fn read_connection(
    client: &kube::Client,
    namespace: &str,
    connection: &crate::crd::Connection,
) -> Result<Option<ApiConnection>, kube::Error> {
    let Some(secret) = Api::<Secret>::namespaced(client.clone(), namespace)
        .get_opt(&connection.secret_name)
        .await?
    else {
        return Ok(None);
    };
    let data = secret.data.unwrap_or_default();
    let read = |key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
            .map(|s| s.trim().to_owned())
    };
    let url = read(connection.url_key.as_deref().unwrap_or("url"));
    let api_key = read(connection.api_key_key.as_deref().unwrap_or("apiKey"));
    Ok(url
        .zip(api_key)
        .map(|(url, api_key)| ApiConnection { url, api_key }))
}
