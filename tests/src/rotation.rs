//! The whole rotation path in one namespace, for the cluster tests in `tests/rotation.rs` and
//! the `rotation-bench` benchmark: the API server, the operator, the sidecar receiver, the
//! Deployment `backend` and the TookenToken `backend` that restarts it.

use crate::{
    Running, TempNamespace, client, eventually, free_port, install_crd, kubeconfig, spawn,
    start_api_server, temp_namespace,
};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tooken_operator::crd::TookenToken;

pub const WAIT: Duration = Duration::from_secs(90);

/// One namespace with the API server, the operator, the sidecar receiver, the Deployment
/// `backend` and the TookenToken `backend` that restarts it.
pub struct System {
    pub ns: String,
    pub base_url: String,
    pub api_key: String,
    pub webhook_id: String,
    pub signing_secret: String,
    pub sidecar_port: u16,
    pub kubeconfig: PathBuf,
    pub http: reqwest::Client,
    pub tokens: Api<TookenToken>,
    pub secrets: Api<Secret>,
    pub deployments: Api<Deployment>,
    pub replica_sets: Api<ReplicaSet>,
    pub sidecar: Option<Running>,
    _operator: Running,
    _server: Running,
    _namespace: TempNamespace,
}

impl System {
    /// Everything started, `backend` with `replicas` pods (kwok makes them Ready).
    pub async fn start(test: &str, replicas: i32) -> Option<System> {
        let kubeconfig = kubeconfig(test)?;
        let client = client(&kubeconfig).await.expect("connect to the cluster");
        install_crd(&client).await;
        let namespace = temp_namespace(&client, "tooken-rot").await;
        let ns = namespace.name.clone();
        let (server, base_url, api_key) =
            start_api_server(&[("TOOKEN_WEBHOOK_RETRY_BASE_MS", "200".into())]).await;
        let http = reqwest::Client::new();
        let sidecar_port = free_port();
        let (webhook_id, signing_secret) =
            crate::register_sidecar_webhook_with_id(&base_url, &api_key, sidecar_port).await;
        let operator = crate::spawn_operator(&kubeconfig, &ns, &base_url, &api_key, &[]);
        let mut system = System {
            ns: ns.clone(),
            base_url,
            api_key,
            webhook_id,
            signing_secret,
            sidecar_port,
            kubeconfig,
            http,
            tokens: Api::namespaced(client.clone(), &ns),
            secrets: Api::namespaced(client.clone(), &ns),
            deployments: Api::namespaced(client.clone(), &ns),
            replica_sets: Api::namespaced(client.clone(), &ns),
            sidecar: None,
            _operator: operator,
            _server: server,
            _namespace: namespace,
        };
        system.sidecar = Some(system.start_sidecar("2s"));
        system.create_workload_and_token(replicas).await;
        Some(system)
    }

    pub fn start_sidecar(&self, coalesce_window: &str) -> Running {
        spawn(
            "tooken-sidecar",
            &["receiver"],
            &[
                ("KUBECONFIG", self.kubeconfig.display().to_string()),
                ("TOOKEN_WEBHOOK_SECRET", self.signing_secret.clone()),
                (
                    "TOOKEN_SIDECAR_LISTEN",
                    format!("127.0.0.1:{}", self.sidecar_port),
                ),
                ("TOOKEN_SIDECAR_NAMESPACE", self.ns.clone()),
                ("TOOKEN_SIDECAR_COALESCE_WINDOW", coalesce_window.into()),
            ],
        )
    }

    async fn create_workload_and_token(&self, replicas: i32) {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "backend"},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": "backend"}},
                "template": {"metadata": {"labels": {"app": "backend"}},
                             "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
            }
        }))
        .unwrap();
        self.deployments
            .create(&PostParams::default(), &deployment)
            .await
            .unwrap();
        let manifest: TookenToken = serde_json::from_value(json!({
            "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
            "metadata": {"name": "backend"},
            "spec": {"scopes": ["tokens:read"], "rotation": {"every": "24h"}, "gracePeriod": "1m",
                     "restartOnRotation": [{"kind": "Deployment", "name": "backend"}]}
        }))
        .unwrap();
        self.tokens
            .create(&PostParams::default(), &manifest)
            .await
            .unwrap();
    }

    pub async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// What the API says of a secret presented to a downstream service.
    pub async fn verify(&self, secret: &str) -> Value {
        self.post("/v1/tokens/verify", json!({"token": secret}))
            .await
    }

    /// The Secret's token, once it holds one that verifies as `token_id` (any token when
    /// `None`) and differs from `unlike`.
    pub async fn working_secret(
        &self,
        token_id: Option<&str>,
        unlike: Option<&str>,
    ) -> (String, String) {
        eventually("a working token in the Secret", WAIT, || async move {
            let secret = self.secrets.get_opt("backend").await.ok()??;
            let value = String::from_utf8(secret.data?.get("token")?.0.clone()).ok()?;
            if unlike == Some(value.as_str()) {
                return None;
            }
            let verified = self.verify(&value).await;
            let id = verified["token_id"].as_str()?.to_owned();
            (verified["valid"] == true && token_id.is_none_or(|t| t == id)).then_some((id, value))
        })
        .await
    }

    /// The ReplicaSets of `backend`, once the Deployment controller has made `count`.
    pub async fn replica_sets(&self, count: usize) -> usize {
        eventually("the ReplicaSets of backend", WAIT, || async move {
            let list = self.replica_sets.list(&ListParams::default()).await.ok()?;
            let owned = list
                .items
                .iter()
                .filter(|rs| {
                    rs.owner_references()
                        .iter()
                        .any(|o| o.kind == "Deployment" && o.name == "backend")
                })
                .count();
            (owned >= count).then_some(owned)
        })
        .await
    }

    /// Waits until every `token.rotated` delivery was delivered, `expected` of them, and the
    /// Deployment was restarted for `rotation` of `token_id` with nothing left pending.
    pub async fn settled(&self, token_id: &str, rotation: u64, expected: usize) {
        eventually("every delivery to be delivered", WAIT, || async move {
            let list = self
                .get(&format!("/v1/webhooks/{}/deliveries", self.webhook_id))
                .await;
            let deliveries = list["data"].as_array()?.clone();
            let done = deliveries.len() == expected
                && deliveries.iter().all(|d| d["status"] == "delivered");
            done.then_some(())
        })
        .await;
        eventually("the restart to be recorded", WAIT, || async move {
            let deployment = self.deployments.get("backend").await.ok()?;
            let annotations = deployment.annotations();
            let restarted = annotations.get("tooken.io/restarted-for-rotation")?;
            let done = restarted
                .split(',')
                .filter_map(|e| e.rsplit_once(':'))
                .any(|(id, r)| id == token_id && r.parse::<u64>().is_ok_and(|r| r >= rotation));
            (done && !annotations.contains_key("tooken.io/pending-rotation")).then_some(())
        })
        .await;
    }

    pub async fn rotation_of_token(&self, token_id: &str) -> i64 {
        self.get(&format!("/v1/tokens/{token_id}")).await["rotation"]
            .as_i64()
            .expect("a token")
    }

    /// The reasons of the Events recorded on the TookenToken, with their notes.
    pub async fn events(&self) -> Vec<(String, String)> {
        let client = client(&self.kubeconfig).await.unwrap();
        let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client, &self.ns);
        events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.kind.as_deref()) == Some("TookenToken"))
            .map(|e| (e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
            .collect()
    }
}
