//! The real `tooken-sidecar` receiver against the cluster in `TOOKEN_E2E_KUBECONFIG`: a signed
//! `token.rotated` delivery leads to exactly one new pod template per target, and
//! neither a repeated delivery nor a restart of the sidecar restarts a workload again.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::time::Duration;
use tooken_contract::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, sign};
use tooken_e2e::{
    client, eventually, free_port, kubeconfig, pod_templates, spawn, unique_namespace,
};

const WAIT: Duration = Duration::from_secs(60);

const WEBHOOK_SECRET: &str = "whsec_e2e_sidecar";
const TOKEN_ID: &str = "01a21672-8609-7347-b8ab-a7029197e3ff";

#[tokio::test]
async fn a_rotation_restarts_each_target_exactly_once() -> anyhow::Result<()> {
    let Some(path) = kubeconfig("a_rotation_restarts_each_target_exactly_once") else {
        return Ok(());
    };
    let client = client(&path).await?;
    let ns = unique_namespace("tooken-sidecar");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": ns}}))?,
        )
        .await?;
    let result = scenario(&client, &path, &ns).await;
    namespaces.delete(&ns, &DeleteParams::default()).await?;
    result
}

async fn scenario(
    client: &kube::Client,
    kubeconfig: &std::path::Path,
    ns: &str,
) -> anyhow::Result<()> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    // The Secret as the operator writes it, at rotation 1.
    secrets
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "metadata": {"name": "web-token",
                "labels": {"app.kubernetes.io/managed-by": "tooken-operator", "tooken.io/token-id": TOKEN_ID},
                "annotations": {"tooken.io/token-id": TOKEN_ID, "tooken.io/rotation": "1"}},
            "stringData": {"token": "tok_live_first"}
        }))?)
        .await?;
    for (name, annotations) in [
        ("web", json!({"tooken.io/restart-on-rotation": "web-token"})),
        ("bystander", json!({})),
    ] {
        deployments
            .create(&PostParams::default(), &serde_json::from_value(json!({
                "metadata": {"name": name, "annotations": annotations},
                "spec": {"replicas": 0, "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                        "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}}
            }))?)
            .await?;
    }
    let port = free_port();
    let sidecar = || {
        spawn(
            "tooken-sidecar",
            &["receiver"],
            &[
                ("KUBECONFIG", kubeconfig.display().to_string()),
                (
                    "TOOKEN_WEBHOOK_SECRET",
                    format!("whsec_old,{WEBHOOK_SECRET}"),
                ),
                ("TOOKEN_SIDECAR_NAMESPACE", ns.to_owned()),
                ("TOOKEN_SIDECAR_LISTEN", format!("127.0.0.1:{port}")),
                ("TOOKEN_SIDECAR_COALESCE_WINDOW", "200ms".to_owned()),
            ],
        )
    };
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    // Each pod-template change is one new ReplicaSet (annotations on the Deployment bump its
    // generation too, so the generation is no measure of restarts).
    let templates = |name: &'static str, count: usize| pod_templates(&replica_sets, name, count);
    assert_eq!(templates("web", 1).await, 1);
    assert_eq!(templates("bystander", 1).await, 1);
    let mut running = sidecar();
    wait_ready(&http, &base).await?;

    // Rotation 2: the operator updates the Secret, Tooken delivers the event.
    secrets
        .patch(
            "web-token",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"tooken.io/rotation": "2"}},
                "stringData": {"token": "tok_live_second"}
            })),
        )
        .await?;
    assert_eq!(deliver(&http, &base, "evt-1", 2).await?, 200);
    let web = restarted_for(&deployments, 2).await;
    let restarted_at = web
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get("kubectl.kubernetes.io/restartedAt").cloned());
    assert!(
        restarted_at.is_some(),
        "the pod template carries restartedAt"
    );
    assert_eq!(templates("web", 2).await, 2, "one new pod template");

    // The same delivery again, another delivery of the same rotation, and the same after the
    // sidecar itself restarted: none changes the pod template again.
    assert_eq!(deliver(&http, &base, "evt-1", 2).await?, 200);
    assert_eq!(deliver(&http, &base, "evt-2", 2).await?, 200);
    drop(running);
    running = sidecar();
    wait_ready(&http, &base).await?;
    assert_eq!(deliver(&http, &base, "evt-1", 2).await?, 200);

    // The next rotation restarts it once more: exactly one template per rotation, so any
    // extra restart for rotation 2 would show as a fourth ReplicaSet here.
    secrets
        .patch(
            "web-token",
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"annotations": {"tooken.io/rotation": "3"}}
            })),
        )
        .await?;
    assert_eq!(deliver(&http, &base, "evt-3", 3).await?, 200);
    restarted_for(&deployments, 3).await;
    assert_eq!(templates("web", 3).await, 3);
    assert_eq!(
        templates("bystander", 1).await,
        1,
        "the bystander never rolls"
    );
    drop(running);
    Ok(())
}

/// `web` once it is recorded as restarted for `rotation`, with nothing left pending.
async fn restarted_for(deployments: &Api<Deployment>, rotation: u64) -> Deployment {
    let recorded = format!("{TOKEN_ID}:{rotation}");
    eventually("the restart to be recorded", WAIT, || async {
        let web = deployments.get("web").await.ok()?;
        let annotations = web.metadata.annotations.clone().unwrap_or_default();
        let done = annotations.get("tooken.io/restarted-for-rotation") == Some(&recorded)
            && !annotations.contains_key("tooken.io/pending-rotation");
        done.then_some(web)
    })
    .await
}

async fn deliver(
    http: &reqwest::Client,
    base: &str,
    event_id: &str,
    rotation: u64,
) -> anyhow::Result<u16> {
    let body = serde_json::to_vec(&json!({
        "id": event_id, "type": "token.rotated", "created_at": jiff::Timestamp::now(),
        "workspace": "e2e",
        "data": {"id": TOKEN_ID, "name": "web", "rotation": rotation, "scopes": ["tokens:read"]}
    }))?;
    let response = http
        .post(format!("{base}/webhooks/tooken"))
        .header(SIGNATURE_HEADER, sign(WEBHOOK_SECRET.as_bytes(), &body))
        .header(EVENT_ID_HEADER, event_id)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    Ok(response.status().as_u16())
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for _ in 0..100 {
        if let Ok(response) = http.get(format!("{base}/readyz")).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("the sidecar did not become ready")
}
