//! What the operator does to the cluster, as a trait (the kube implementation is below; tests
//! use an in-memory one that can fail at any step).

use crate::crd::{TookenToken, TookenTokenStatus};
use crate::own_writes::OwnWrites;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};

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
    /// The Secret now. With `fresh` false the answer may come from the watch cache (digests,
    /// no values) when the cache holds exactly the version last read or written.
    fn get_secret(
        &self,
        namespace: &str,
        name: &str,
        fresh: bool,
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

/// The digests of a Secret version the operator read or wrote, by `namespace/name`.
#[derive(Default)]
pub struct SecretDigests {
    known: Mutex<HashMap<String, (String, BTreeMap<String, String>)>>,
}

impl SecretDigests {
    fn remember(&self, namespace: &str, secret: &Secret) -> ObservedSecret {
        let observed = ObservedSecret::read(secret);
        let key = format!("{namespace}/{}", secret.name_any());
        let mut known = self.known.lock().expect("lock");
        match secret.resource_version() {
            Some(version) => known.insert(key, (version, observed.digests.clone())),
            None => known.remove(&key),
        };
        observed
    }

    pub fn forget(&self, namespace: &str, name: &str) {
        self.known
            .lock()
            .expect("lock")
            .remove(&format!("{namespace}/{name}"));
    }

    /// The digests, if `version` is the one last read or written.
    fn of(&self, namespace: &str, name: &str, version: &str) -> Option<BTreeMap<String, String>> {
        let known = self.known.lock().expect("lock");
        let (known_version, digests) = known.get(&format!("{namespace}/{name}"))?;
        (known_version == version).then(|| digests.clone())
    }
}

/// The cluster through a kube client.
#[derive(Clone)]
pub struct KubeCluster {
    pub client: kube::Client,
    pub recorder: Recorder,
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The metadata of the operator's own Secrets, from a watch; `None` reads every time.
    pub secret_cache: Option<Store<PartialObjectMeta<Secret>>>,
    pub digests: Arc<SecretDigests>,
    pub own_writes: Arc<OwnWrites>,
}

impl KubeCluster {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Self {
        KubeCluster {
            client,
            recorder,
            metrics,
            secret_cache: None,
            digests: Arc::default(),
            own_writes: Arc::default(),
        }
    }

    fn cached_secret(&self, namespace: &str, name: &str) -> Option<ObservedSecret> {
        let meta = self
            .secret_cache
            .as_ref()?
            .get(&ObjectRef::new(name).within(namespace))?;
        let digests =
            self.digests
                .of(namespace, name, meta.metadata.resource_version.as_deref()?)?;
        Some(ObservedSecret {
            controller: controller_uid(&meta.metadata),
            labels: meta.metadata.labels.clone().unwrap_or_default(),
            annotations: meta.metadata.annotations.clone().unwrap_or_default(),
            digests,
            values: None,
        })
    }
}

impl Cluster for KubeCluster {
    async fn get_secret(
        &self,
        namespace: &str,
        name: &str,
        fresh: bool,
    ) -> Result<Option<ObservedSecret>, kube::Error> {
        if !fresh && let Some(cached) = self.cached_secret(namespace, name) {
            return Ok(Some(cached));
        }
        let secret = Api::<Secret>::namespaced(self.client.clone(), namespace)
            .get_opt(name)
            .await?;
        Ok(match secret {
            Some(secret) => Some(self.digests.remember(namespace, &secret)),
            None => {
                self.digests.forget(namespace, name);
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
        self.digests.remember(&namespace, &written);
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
