//! The whole system against the cluster named by `TOOKEN_E2E_KUBECONFIG`: the three real
//! binaries as local processes. A TookenToken's Secret holds a token that verifies; a scheduled
//! rotation updates the Secret, the signed webhook reaches the sidecar, and the Deployment that
//! follows the token gets exactly one new pod-template annotation; deleting the TookenToken
//! revokes the token. Also: the rendered Helm chart passes the API server's dry-run validation.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::discovery::{Discovery, Scope};
use kube::{Api, ResourceExt};
use serde_json::json;
use std::time::Duration;
use tooken_e2e::{
    client, cluster_tool, eventually, free_port, install_crd, kubeconfig, spawn, start_api_server,
    temp_namespace,
};
use tooken_operator::crd::TookenToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotation_reaches_the_sidecar_and_restarts_the_deployment_once() {
    let Some(kubeconfig) =
        kubeconfig("a_rotation_reaches_the_sidecar_and_restarts_the_deployment_once")
    else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-sys").await;
    let ns = namespace.name.clone();
    let kube_env = ("KUBECONFIG", kubeconfig.display().to_string());

    // The API server, and the sidecar's endpoint registered with it.
    let (_server, base_url, api_key) =
        start_api_server(&[("TOOKEN_WEBHOOK_RETRY_BASE_MS", "200".into())]).await;
    let sidecar_port = free_port();
    let http = reqwest::Client::new();
    let signing_secret =
        tooken_e2e::register_sidecar_webhook(&base_url, &api_key, sidecar_port).await;
    let _sidecar = spawn(
        "tooken-sidecar",
        &["receiver"],
        &[
            kube_env.clone(),
            ("TOOKEN_WEBHOOK_SECRET", signing_secret),
            ("TOOKEN_SIDECAR_LISTEN", format!("127.0.0.1:{sidecar_port}")),
            ("TOOKEN_SIDECAR_NAMESPACE", ns.clone()),
        ],
    );
    let _operator = spawn(
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
            kube_env,
            ("TOOKEN_API_URL", base_url.clone()),
            ("TOOKEN_API_KEY", api_key.clone()),
        ],
    );

    // A Deployment to restart (no replicas: only its template matters here).
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
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
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();

    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let manifest: TookenToken = serde_json::from_value(json!({
        "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
        "metadata": {"name": "backend"},
        "spec": {"scopes": ["tokens:read"], "rotation": {"every": "20s"},
                 "restartOnRotation": [{"kind": "Deployment", "name": "backend"}]}
    }))
    .unwrap();
    tokens
        .create(&PostParams::default(), &manifest)
        .await
        .unwrap();
    let token_id = eventually("Ready", Duration::from_secs(60), || {
        let tokens = tokens.clone();
        async move {
            let status = tokens.get("backend").await.ok()?.status?;
            status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
                .then_some(status.token_id?)
        }
    })
    .await;
    let before = deployments.get("backend").await.unwrap();
    assert_eq!(
        tooken_e2e::restarted_at(&before),
        None,
        "issuing a token restarts nothing"
    );

    // The scheduled rotation: Secret first, then exactly one restart.
    eventually(
        "the first rotation in the Secret",
        Duration::from_secs(60),
        || {
            let secrets = secrets.clone();
            async move {
                let secret = secrets.get("backend").await.ok()?;
                let rotation: i64 = secret
                    .annotations()
                    .get("tooken.io/rotation")?
                    .parse()
                    .ok()?;
                (rotation >= 1).then_some(())
            }
        },
    )
    .await;
    // Stop further rotations, so any later change would be a duplicate restart.
    tokens
        .patch(
            "backend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rotation": null}})),
        )
        .await
        .unwrap();
    let restarted = eventually(
        "the Deployment to be restarted",
        Duration::from_secs(60),
        || {
            let deployments = deployments.clone();
            async move {
                deployments
                    .get("backend")
                    .await
                    .ok()
                    .filter(|d| tooken_e2e::restarted_at(d).is_some())
            }
        },
    )
    .await;
    // The sidecar records on the Deployment itself which rotation it restarted for. Once that
    // names the Secret's latest rotation, every rotation has been handled.
    let rotation: i64 = secrets.get("backend").await.unwrap().annotations()["tooken.io/rotation"]
        .parse()
        .unwrap();
    let expected = format!("{token_id}:{rotation}");
    eventually(
        "the restart marker to name the latest rotation",
        Duration::from_secs(60),
        || {
            let deployments = deployments.clone();
            let expected = expected.clone();
            async move {
                let deployment = deployments.get("backend").await.ok()?;
                let marker = deployment
                    .annotations()
                    .get("tooken.io/restarted-for-rotation")?;
                marker
                    .split(',')
                    .any(|m| m == expected)
                    .then_some(deployment)
            }
        },
    )
    .await;
    // Exactly one restart per rotation: one pod template (a ReplicaSet) for each rotation
    // after 0, besides the first. (The generation counts annotation changes too.)
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &ns);
    let templates =
        tooken_e2e::pod_templates(&replica_sets, "backend", rotation as usize + 1).await as i64;
    assert_eq!(
        templates - 1,
        rotation,
        "{} restarts for {rotation} rotations",
        templates - 1
    );
    assert!(tooken_e2e::restarted_at(&restarted).is_some());

    // Delete: the token is revoked.
    tokens
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the token to be revoked", Duration::from_secs(60), || {
        let http = http.clone();
        let url = format!("{base_url}/v1/tokens/{token_id}");
        let api_key = api_key.clone();
        async move {
            let token: serde_json::Value = http
                .get(url)
                .bearer_auth(api_key)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (token["status"] == "revoked").then_some(())
        }
    })
    .await;
}

/// Server-side dry-run of `helm template`'s output, object by object.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rendered_chart_passes_server_side_dry_run() {
    let Some(kubeconfig) = kubeconfig("the_rendered_chart_passes_server_side_dry_run") else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-chart").await;
    // helm template assumes an old Kubernetes unless told which one it renders for.
    let version = client.apiserver_version().await.expect("server version");
    let kube_version = format!("{}.{}.0", version.major, version.minor);
    let output = std::process::Command::new(cluster_tool("helm"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .args(["template", "tooken", "charts/tooken", "--namespace"])
        .args([&namespace.name, "--kube-version", &kube_version])
        // What `helm install` would discover on this cluster: the admission policies render.
        .args([
            "--api-versions",
            "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
        ])
        .output()
        .expect("helm runs (tests/cluster/build builds it)");
    assert!(
        output.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let rendered = String::from_utf8(output.stdout).unwrap();
    assert!(rendered.contains("kind: ValidatingAdmissionPolicyBinding"));
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .expect("API discovery");
    let mut applied = 0;
    for document in rendered.split("\n---\n").filter(|d| !d.trim().is_empty()) {
        let object: DynamicObject = yaml_serde::from_str(document).expect("rendered YAML parses");
        let gvk =
            kube::core::GroupVersionKind::try_from(object.types.as_ref().expect("typed")).unwrap();
        let (resource, capabilities) = discovery
            .resolve_gvk(&gvk)
            .unwrap_or_else(|| panic!("{gvk:?} is not served"));
        let api: Api<DynamicObject> = match capabilities.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), &namespace.name, &resource),
            Scope::Cluster => Api::all_with(client.clone(), &resource),
        };
        let params = PatchParams::apply("tooken-e2e").dry_run().force();
        api.patch(&object.name_any(), &params, &Patch::Apply(&object))
            .await
            .unwrap_or_else(|err| {
                panic!(
                    "{} {} failed server-side validation: {err}",
                    gvk.kind,
                    object.name_any()
                )
            });
        applied += 1;
    }
    assert!(applied >= 15, "only {applied} objects rendered");
}
