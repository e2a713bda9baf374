//! What the operator does to the cluster, as a trait (the kube implementation is below; tests
//! use an in-memory one that can fail at any step).

use crate::crd::{TookenToken, TookenTokenStatus};
use crate::own_writes::OwnWrites;
use crate::secret_cache::SecretCache;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event as K8sEvent;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::runtime::events::Reporter;
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

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

pub fn sha256_hex(value: &[u8]) -> String {
    hex::encode(Sha256::digest(value))
}

/// A Secret as reconcile sees it: whose it is, how it is labelled, and a digest of each value.
/// Values are present only when just read from the API server; the watch cache keeps digests.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ObservedSecret {
    /// The uid of the controlling owner.
    pub controller: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// SHA-256 (hex) of each data value.
    pub digests: BTreeMap<String, String>,
    pub values: Option<BTreeMap<String, String>>,
}

fn controller_uid(metadata: &ObjectMeta) -> Option<String> {
    metadata
        .owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .map(|r| r.uid.clone())
}

impl ObservedSecret {
    /// A Secret just read or written, values included.
    pub fn read(secret: &Secret) -> Self {
        let data = secret.data.clone().unwrap_or_default();
        ObservedSecret {
            controller: controller_uid(&secret.metadata),
            labels: secret.metadata.labels.clone().unwrap_or_default(),
            annotations: secret.metadata.annotations.clone().unwrap_or_default(),
            digests: data
                .iter()
                .map(|(k, v)| (k.clone(), sha256_hex(&v.0)))
                .collect(),
            values: Some(
                data.into_iter()
                    .filter_map(|(k, v)| String::from_utf8(v.0).ok().map(|v| (k, v)))
                    .collect(),
            ),
        }
    }

    pub fn value(&self, key: &str) -> Option<&str> {
        self.values.as_ref()?.get(key).map(String::as_str)
    }

    /// A digest of everything but the values (BTreeMaps print in key order).
    pub fn fingerprint(&self) -> [u8; 32] {
        let text = format!(
            "{:?}\n{:?}\n{:?}\n{:?}",
            self.controller, self.labels, self.annotations, self.digests
        );
        Sha256::digest(text.as_bytes()).into()
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
    /// Whether the Secret is known, without a request, to be exactly `expected` (values aside).
    /// `false` means "read it", not "it differs".
    fn holds_secret(&self, namespace: &str, name: &str, expected: &ObservedSecret) -> bool;
    /// The Secret now, read from the API server.
    fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<ObservedSecret>, kube::Error>> + Send;
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
    /// Names the operator in the Events it records.
    pub reporter: Reporter,
    pub metrics: Arc<crate::metrics::Metrics>,
    pub secrets: Arc<SecretCache>,
    pub own_writes: Arc<OwnWrites>,
}

impl KubeCluster {
    pub fn new(
        client: kube::Client,
        reporter: Reporter,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        KubeCluster {
            client,
            reporter,
            metrics,
            secrets: Arc::default(),
            own_writes: Arc::default(),
        }
    }

    /// An `events.k8s.io/v1` Event about `owner`. Unlike kube's `Recorder`, nothing is cached
    /// per Event: at 10,000 resources that cache was megabytes, scanned on every Event.
    fn new_event(
        &self,
        owner: &TookenToken,
        warning: bool,
        reason: &str,
        note: String,
    ) -> K8sEvent {
        let now = jiff::Timestamp::now();
        let mut note = note;
        if note.len() > 1024 {
            let mut end = 1024;
            while !note.is_char_boundary(end) {
                end -= 1;
            }
            note.truncate(end);
        }
        K8sEvent {
            metadata: ObjectMeta {
                name: Some(format!("{}.{:x}", owner.name_any(), now.as_nanosecond())),
                namespace: owner.namespace(),
                ..Default::default()
            },
            event_time: Some(MicroTime(now)),
            action: Some(reason.into()),
            reason: Some(reason.into()),
            note: Some(note),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            regarding: Some(owner.object_ref(&())),
            reporting_controller: Some(self.reporter.controller.clone()),
            reporting_instance: Some(
                self.reporter
                    .instance
                    .clone()
                    .unwrap_or_else(|| self.reporter.controller.clone()),
            ),
            ..Default::default()
        }
    }
}

impl Cluster for KubeCluster {
    fn holds_secret(&self, namespace: &str, name: &str, expected: &ObservedSecret) -> bool {
        self.secrets.holds(namespace, name, expected)
    }

    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<ObservedSecret>, kube::Error> {
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await?;
        Ok(match secret {
            Some(secret) => Some(self.secrets.remember(namespace, &secret)),
            None => {
                self.secrets.forget(namespace, name);
                None
            }
        })
    }

    async fn apply_secret(
        &self,
        owner: &TookenToken,
        secret: &DesiredSecret,
    ) -> Result<(), kube::Error> {
        let namespace = owner.namespace().unwrap_or_default();
        let written = Api::<Secret>::namespaced(self.client.clone(), &namespace)
            .patch(
                &secret.name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(secret.to_secret(owner)),
            )
            .await?;
        self.secrets.remember(&namespace, &written);
        self.own_writes.wrote(&written);
        Ok(())
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
        let written = Api::<TookenToken>::namespaced(self.client.clone(), &namespace)
            .patch_status(
                &owner.name_any(),
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await?;
        self.own_writes.wrote(&written);
        Ok(())
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
        let event = self.new_event(owner, warning, reason, note);
        let namespace = owner.namespace().unwrap_or_default();
        match Api::<K8sEvent>::namespaced(self.client.clone(), &namespace)
            .create(&PostParams::default(), &event)
            .await
        {
            Ok(_) => {}
            // Deleting a namespace revokes all its tokens; none of those can be recorded.
            Err(kube::Error::Api(status))
                if status.details.as_ref().is_some_and(|d| {
                    d.causes.iter().any(|c| c.reason == "NamespaceTerminating")
                }) =>
            {
                tracing::debug!(reason, "no Event: the namespace is being deleted");
            }
            Err(err) => tracing::warn!(error = %err, "could not record a Kubernetes Event"),
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
