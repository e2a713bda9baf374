//! Every way a rotation starts, against the cluster named by `TOOKEN_E2E_KUBECONFIG`, with the
//! three real binaries as local processes: a rotation through the API (without and with a
//! grace period, as the dashboard sends it), a revocation through the API, the
//! `tooken.io/rotate-at` annotation, and a sidecar restarted between acknowledging a rotation
//! and restarting the workload. Each ends with one working token in the Secret; each rotation
//! ends with exactly one new ReplicaSet, and no delivery needing a second attempt.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::Duration;
use tooken_e2e::{
    Running, TempNamespace, client, eventually, free_port, install_crd, kubeconfig, spawn,
    start_api_server, temp_namespace,
};
use tooken_operator::crd::TookenToken;

const WAIT: Duration = Duration::from_secs(90);

/// One namespace with the API server, the operator, the sidecar receiver, the Deployment
/// `backend` and the TookenToken `backend` that restarts it.
struct System {
    ns: String,
    base_url: String,
    api_key: String,
    webhook_id: String,
    signing_secret: String,
    sidecar_port: u16,
    kubeconfig: PathBuf,
    http: reqwest::Client,
    tokens: Api<TookenToken>,
    secrets: Api<Secret>,
    deployments: Api<Deployment>,
    replica_sets: Api<ReplicaSet>,
    sidecar: Option<Running>,
    _operator: Running,
    _server: Running,
    _namespace: TempNamespace,
}

impl System {
    async fn start(test: &str) -> Option<System> {
        let kubeconfig = kubeconfig(test)?;
        let client = client(&kubeconfig).await.expect("connect to the cluster");
        install_crd(&client).await;
        let namespace = temp_namespace(&client, "tooken-rot").await;
        let ns = namespace.name.clone();
        let (server, base_url, api_key) =
            start_api_server(&[("TOOKEN_WEBHOOK_RETRY_BASE_MS", "200".into())]).await;
        let http = reqwest::Client::new();
        let sidecar_port = free_port();
        let webhook: Value = http
            .post(format!("{base_url}/v1/webhooks"))
            .bearer_auth(&api_key)
            .json(
                &json!({"url": format!("http://127.0.0.1:{sidecar_port}/webhooks/tooken"),
                          "event_types": ["token.rotated"]}),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let operator = spawn(
            "tooken-operator",
            &[
                "--namespace",
                &ns,
                "--lease-namespace",
                &ns,
                "--listen",
                "127.0.0.1:0",
            ],
            &[
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("TOOKEN_API_URL", base_url.clone()),
                ("TOOKEN_API_KEY", api_key.clone()),
            ],
        );
        let mut system = System {
            ns: ns.clone(),
            base_url,
            api_key,
            webhook_id: webhook["id"].as_str().expect("webhook created").to_owned(),
            signing_secret: webhook["secret"].as_str().expect("its secret").to_owned(),
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
        system.create_workload_and_token().await;
        Some(system)
    }

    fn start_sidecar(&self, coalesce_window: &str) -> Running {
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

    async fn create_workload_and_token(&self) {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "backend"},
            "spec": {
                "replicas": 0,
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

    async fn post(&self, path: &str, body: Value) -> Value {
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

    async fn get(&self, path: &str) -> Value {
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
    async fn verify(&self, secret: &str) -> Value {
        self.post("/v1/tokens/verify", json!({"token": secret}))
            .await
    }

    /// The Secret's token, once it holds one that verifies as `token_id` (any token when
    /// `None`) and differs from `unlike`.
    async fn working_secret(
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
    async fn replica_sets(&self, count: usize) -> usize {
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
    /// Returns how many attempts the deliveries took in all.
    async fn settled(&self, token_id: &str, rotation: u64, expected: usize) -> i64 {
        let attempts = eventually("every delivery to be delivered", WAIT, || async move {
            let list = self
                .get(&format!("/v1/webhooks/{}/deliveries", self.webhook_id))
                .await;
            let deliveries = list["data"].as_array()?.clone();
            let done = deliveries.len() == expected
                && deliveries.iter().all(|d| d["status"] == "delivered");
            done.then(|| {
                deliveries
                    .iter()
                    .map(|d| d["attempts"].as_i64().unwrap_or(0))
                    .sum()
            })
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
        attempts
    }

    async fn rotation_of_token(&self, token_id: &str) -> i64 {
        self.get(&format!("/v1/tokens/{token_id}")).await["rotation"]
            .as_i64()
            .expect("a token")
    }

    /// The reasons of the Events recorded on the TookenToken, with their notes.
    async fn events(&self) -> Vec<(String, String)> {
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

/// Rotates through the API with `body` and checks the whole path.
async fn an_api_rotation_heals(test: &str, body: Value) -> Option<(System, String)> {
    let system = System::start(test).await?;
    let (token_id, before) = system.working_secret(None, None).await;
    assert_eq!(system.replica_sets(1).await, 1);
    system
        .post(&format!("/v1/tokens/{token_id}/rotate"), body)
        .await;
    let (healed_id, after) = system.working_secret(Some(&token_id), Some(&before)).await;
    assert_eq!(
        healed_id, token_id,
        "the same token, a secret the cluster knows"
    );
    // The API's rotation (1), then the operator's (2): two webhooks, one restart.
    let attempts = system.settled(&token_id, 2, 2).await;
    assert_eq!(attempts, 2, "each delivery answered at its first attempt");
    assert_eq!(system.rotation_of_token(&token_id).await, 2);
    assert_eq!(
        system.replica_sets(2).await,
        2,
        "exactly one new ReplicaSet"
    );
    assert!(
        system
            .events()
            .await
            .iter()
            .any(|(reason, _)| reason == "Healed")
    );
    assert_ne!(after, before);
    Some((system, before))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_rotation_puts_a_working_token_in_the_secret_and_rolls_once() {
    let Some((system, before)) = an_api_rotation_heals(
        "an_api_rotation_puts_a_working_token_in_the_secret_and_rolls_once",
        json!({}),
    )
    .await
    else {
        return;
    };
    assert_eq!(
        system.verify(&before).await["valid"],
        false,
        "no grace asked"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dashboard_rotation_with_a_grace_period_heals_and_rolls_once() {
    let Some((system, before)) = an_api_rotation_heals(
        "a_dashboard_rotation_with_a_grace_period_heals_and_rolls_once",
        json!({"grace_period_seconds": 3600}),
    )
    .await
    else {
        return;
    };
    // The secret the caller replaced keeps the hour of grace they asked for, so pods still
    // using it keep working while the new ones start.
    assert_eq!(system.verify(&before).await["valid"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_revocation_puts_a_new_working_token_in_the_secret() {
    let Some(system) =
        System::start("an_api_revocation_puts_a_new_working_token_in_the_secret").await
    else {
        return;
    };
    let (revoked, before) = system.working_secret(None, None).await;
    system
        .post(&format!("/v1/tokens/{revoked}/revoke"), json!({}))
        .await;
    let (replacement, _) = system.working_secret(None, Some(&before)).await;
    assert_ne!(replacement, revoked);
    let active = system.get("/v1/tokens?status=active&limit=200").await;
    let ours: Vec<&Value> = active["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["name"] == format!("k8s:{}/backend", system.ns))
        .collect();
    assert_eq!(ours.len(), 1, "exactly one active token: {ours:?}");
    let events = system.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "Reissued" && note.contains("revoked")),
        "{events:?}"
    );
}

async fn annotate(system: &System, value: &str) {
    let patch = json!({"metadata": {"annotations": {"tooken.io/rotate-at": value}}});
    system
        .tokens
        .patch("backend", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rotate_at_annotation_rotates_once_per_value_and_says_so() {
    let Some(system) =
        System::start("the_rotate_at_annotation_rotates_once_per_value_and_says_so").await
    else {
        return;
    };
    let (token_id, before) = system.working_secret(None, None).await;
    assert_eq!(system.replica_sets(1).await, 1);
    annotate(&system, "2026-12-01T10:00:00Z").await;
    system.working_secret(Some(&token_id), Some(&before)).await;
    assert_eq!(system.settled(&token_id, 1, 1).await, 1);
    assert_eq!(system.rotation_of_token(&token_id).await, 1);
    assert_eq!(system.replica_sets(2).await, 2);
    let handled = eventually("the value to be recorded", WAIT, || async {
        let tt = system.tokens.get("backend").await.ok()?;
        tt.status?.rotate_at_handled
    })
    .await;
    assert_eq!(handled, "2026-12-01T10:00:00Z");
    let events = system.events().await;
    assert!(
        events
            .iter()
            .any(|(reason, note)| reason == "Rotated" && note.contains("tooken.io/rotate-at")),
        "{events:?}"
    );
    // A new value rotates again, once.
    annotate(&system, "2026-12-01T11:00:00Z").await;
    assert_eq!(system.settled(&token_id, 2, 2).await, 2);
    assert_eq!(system.rotation_of_token(&token_id).await, 2);
    assert_eq!(system.replica_sets(3).await, 3);
}

/// The first sidecar acknowledges the rotation and dies before it restarts anything (its
/// coalescing window is long); the next one finds the pending entry and restarts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_restarted_mid_flow_still_restarts_the_workload_once() {
    let Some(mut system) =
        System::start("a_sidecar_restarted_mid_flow_still_restarts_the_workload_once").await
    else {
        return;
    };
    // Replaced by one that waits long before restarting (one port: stop the first one first).
    system.sidecar = None;
    system.sidecar = Some(system.start_sidecar("10m"));
    let (token_id, before) = system.working_secret(None, None).await;
    assert_eq!(system.replica_sets(1).await, 1);
    annotate(&system, "now").await;
    system.working_secret(Some(&token_id), Some(&before)).await;
    eventually("the restart to be pending", WAIT, || async {
        let deployment = system.deployments.get("backend").await.ok()?;
        deployment
            .annotations()
            .contains_key("tooken.io/pending-rotation")
            .then_some(())
    })
    .await;
    assert_eq!(
        system.replica_sets(1).await,
        1,
        "acknowledged, not restarted yet"
    );
    system.sidecar = None;
    system.sidecar = Some(system.start_sidecar("2s"));
    assert_eq!(system.settled(&token_id, 1, 1).await, 1);
    assert_eq!(
        system.replica_sets(2).await,
        2,
        "exactly one new ReplicaSet"
    );
}
