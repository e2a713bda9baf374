//! The operator's Secrets for a token (label `tooken.io/token-id`), and waiting until they hold
//! a rotation (annotation `tooken.io/rotation`).

use crate::keys;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams};
use kube::core::PartialObjectMeta;
use kube::{Client, ResourceExt};
use std::time::Duration;

/// Where a token's Secret is: the sidecar never reads a token's value in receiver mode.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SecretRef {
    pub namespace: String,
    pub name: String,
    /// The `tooken.io/rotation` it holds, when it names this token.
    pub rotation: Option<u64>,
}

/// The Secrets labelled with `token_id`, metadata only.
pub async fn for_token(
    client: &Client,
    namespace: Option<&str>,
    token_id: &str,
) -> Result<Vec<SecretRef>, kube::Error> {
    let api: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let params = ListParams::default().labels(&format!("{}={token_id}", keys::TOKEN_ID));
    let list = api.list_metadata(&params).await?;
    Ok(list
        .items
        .iter()
        .map(|secret| SecretRef {
            namespace: secret.namespace().unwrap_or_default(),
            name: secret.name_any(),
            rotation: rotation_of(secret, token_id),
        })
        .collect())
}

/// The rotation a Secret holds for `token_id`, if its annotations say it holds that token.
pub fn rotation_of(secret: &PartialObjectMeta<Secret>, token_id: &str) -> Option<u64> {
    let annotations = secret.annotations();
    if annotations.get(keys::TOKEN_ID).map(String::as_str) != Some(token_id) {
        return None;
    }
    annotations.get(keys::ROTATION)?.trim().parse().ok()
}

/// Lists the token's Secrets every `poll` until `ready` accepts them, or `timeout` passes.
pub async fn wait_until(
    client: &Client,
    namespace: Option<&str>,
    token_id: &str,
    timeout: Duration,
    poll: Duration,
    ready: impl Fn(&[SecretRef]) -> Result<(), String>,
) -> Result<Vec<SecretRef>, super::HandleError> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let secrets = for_token(client, namespace, token_id).await?;
        match ready(&secrets) {
            Ok(()) => return Ok(secrets),
            Err(why) if tokio::time::Instant::now() + poll > deadline => {
                return Err(super::HandleError::SecretNotReady(why));
            }
            Err(_) => tokio::time::sleep(poll).await,
        }
    }
}
