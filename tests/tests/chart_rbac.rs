//! The chart's RBAC, proven against the cluster in `TOOKEN_E2E_KUBECONFIG`: after `helm install`
//! of `charts/tooken`, the real `tooken-operator` and `tooken-sidecar receiver` run locally as
//! the chart's own ServiceAccounts (kubeconfigs from TokenRequests), with a local
//! `tooken-server`, and do their whole job; then the namespace-scoped install's operator does
//! its job in its namespace and is refused (403) everywhere else.
//!
//! One test in this file, on purpose: the cluster-wide operator and sidecar act on every
//! namespace, so they must not run beside other tests of this binary (cargo runs test binaries
//! one after another). They run only for the cluster-wide part, and the operator, which cannot
//! select by label, would also reconcile TookenTokens left in other namespaces while it runs.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::time::Duration;
use tooken_e2e::chart::{Kubelet, Release, reserve_volume, service_account_kubeconfig};
use tooken_e2e::{
    Running, client, eventually, free_port, install_crd, kubeconfig, ready_token_id, secret_value,
    spawn, start_api_server, temp_namespace, verify_token,
};
use tooken_operator::crd::TookenToken;

fn tookentoken(name: &str, spec: serde_json::Value) -> TookenToken {
    serde_json::from_value(json!({
        "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

/// The operator as the chart runs it, with `kubeconfig` for its ServiceAccount.
fn operator(
    kubeconfig: &Path,
    lease_namespace: &str,
    watch: Option<&str>,
    api: (&str, &str),
) -> Running {
    let mut env = vec![
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("TOOKEN_API_URL", api.0.to_owned()),
        ("TOOKEN_API_KEY", api.1.to_owned()),
        (
            "TOOKEN_OPERATOR_LISTEN",
            format!("127.0.0.1:{}", free_port()),
        ),
        ("POD_NAMESPACE", lease_namespace.to_owned()),
        ("POD_NAME", "chart-rbac-operator".to_owned()),
    ];
    if let Some(namespace) = watch {
        env.push(("TOOKEN_OPERATOR_NAMESPACE", namespace.to_owned()));
    }
    spawn("tooken-operator", &[], &env)
}

/// Asserts that `result` is the API server's 403.
fn forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) => assert_eq!(status.code, 403, "{what}: {status:?}"),
        other => panic!("{what} was not refused: {other:?}"),
    }
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}}
        }
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_charts_service_accounts_do_their_job_and_no_more() {
    let Some(kubeconfig) = kubeconfig("the_charts_service_accounts_do_their_job_and_no_more")
    else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let (_server, base_url, api_key) =
        start_api_server(&[("TOOKEN_WEBHOOK_RETRY_BASE_MS", "200".into())]).await;
    cluster_wide(&client, &kubeconfig, &base_url, &api_key).await;
    namespace_scoped(&client, &kubeconfig, &base_url, &api_key).await;
}

/// The default install: a ClusterRole for each of the operator and the sidecar.
async fn cluster_wide(client: &kube::Client, kubeconfig: &Path, base_url: &str, api_key: &str) {
    let home = temp_namespace(client, "tooken-rbac").await;
    let apps = temp_namespace(client, "tooken-rbac-apps").await;
    let web = temp_namespace(client, "tooken-rbac-web").await;
    let release = Release::new(client, kubeconfig, &home.name).await;
    let full = release.fullname();
    let _volume = reserve_volume(client, &home.name, &format!("{full}-api-data")).await;
    let _kubelet = Kubelet::readiness_only(client, kubeconfig, &home.name);
    release.install(&[]).await;
    let operator_kubeconfig =
        service_account_kubeconfig(client, kubeconfig, &home.name, &format!("{full}-operator"))
            .await;
    let sidecar_kubeconfig =
        service_account_kubeconfig(client, kubeconfig, &home.name, &format!("{full}-sidecar"))
            .await;

    // The sidecar's endpoint, registered as the chart's API server does it.
    let sidecar_port = free_port();
    let http = reqwest::Client::new();
    let signing_secret =
        tooken_e2e::register_sidecar_webhook(base_url, api_key, sidecar_port).await;
    let sidecar = spawn(
        "tooken-sidecar",
        &["receiver"],
        &[
            ("KUBECONFIG", sidecar_kubeconfig.display().to_string()),
            ("TOOKEN_WEBHOOK_SECRET", signing_secret),
            ("TOOKEN_SIDECAR_LISTEN", format!("127.0.0.1:{sidecar_port}")),
        ],
    );
    let operator = operator(&operator_kubeconfig, &home.name, None, (base_url, api_key));

    // In `apps`: a TookenToken that names a connection Secret there (the operator reads it).
    let secrets_in_apps: Api<Secret> = Api::namespaced(client.clone(), &apps.name);
    secrets_in_apps
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "metadata": {"name": "tooken-api"},
                "stringData": {"url": base_url, "apiKey": api_key}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    let tokens_in_apps: Api<TookenToken> = Api::namespaced(client.clone(), &apps.name);
    tokens_in_apps
        .create(
            &PostParams::default(),
            &tookentoken(
                "reader",
                json!({"scopes": ["tokens:read"], "connection": {"secretName": "tooken-api"}}),
            ),
        )
        .await
        .unwrap();
    // In `web`: a TookenToken that rotates, and the Deployment that follows it.
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &web.name);
    deployments
        .create(&PostParams::default(), &deployment("backend"))
        .await
        .unwrap();
    let tokens_in_web: Api<TookenToken> = Api::namespaced(client.clone(), &web.name);
    tokens_in_web
        .create(
            &PostParams::default(),
            &tookentoken(
                "backend",
                json!({"scopes": ["tokens:read"], "rotation": {"every": "10s"},
                       "restartOnRotation": [{"kind": "Deployment", "name": "backend"}]}),
            ),
        )
        .await
        .unwrap();

    // Both Ready, each Secret's token verifies as the token the status names.
    let reader = ready_token_id(&tokens_in_apps, "reader").await;
    let backend = ready_token_id(&tokens_in_web, "backend").await;
    let secrets_in_web: Api<Secret> = Api::namespaced(client.clone(), &web.name);
    for (secrets, name, id) in [
        (&secrets_in_apps, "reader", &reader),
        (&secrets_in_web, "backend", &backend),
    ] {
        let secret = secrets.get(name).await.expect("the Secret exists");
        let verdict =
            verify_token(base_url, api_key, &secret_value(&secret, "token").unwrap()).await;
        assert_eq!(verdict["token_id"], id.as_str(), "{name}: {verdict}");
    }
    // Its Events, too (events.k8s.io).
    let events: Api<Event> = Api::namespaced(client.clone(), &apps.name);
    eventually(
        "the operator's Issued Event",
        Duration::from_secs(30),
        || {
            let events = events.clone();
            async move {
                let list = events.list(&ListParams::default()).await.ok()?;
                list.items
                    .iter()
                    .any(|e| {
                        e.reason.as_deref() == Some("Issued")
                            && e.regarding.as_ref().and_then(|r| r.name.as_deref())
                                == Some("reader")
                    })
                    .then_some(())
            }
        },
    )
    .await;

    // The scheduled rotation: the Secret in `web` changes, the signed webhook reaches the
    // sidecar, and it restarts the Deployment there, marked with the rotation.
    eventually("the first rotation", Duration::from_secs(60), || {
        let secrets = secrets_in_web.clone();
        async move {
            let secret = secrets.get("backend").await.ok()?;
            let rotation: i64 = secret
                .annotations()
                .get("tooken.io/rotation")?
                .parse()
                .ok()?;
            (rotation >= 1).then_some(())
        }
    })
    .await;
    let marker = eventually(
        "the Deployment to be restarted",
        Duration::from_secs(60),
        || {
            let deployments = deployments.clone();
            async move {
                let deployment = deployments.get("backend").await.ok()?;
                tooken_e2e::restarted_at(&deployment)?;
                deployment
                    .annotations()
                    .get("tooken.io/restarted-for-rotation")
                    .cloned()
            }
        },
    )
    .await;
    let restarted_for = marker
        .strip_prefix(&format!("{backend}:"))
        .and_then(|rotation| rotation.parse::<i64>().ok());
    assert!(
        restarted_for >= Some(1),
        "restarted for a rotation: {marker}"
    );

    // Delete both while the operator runs: it revokes across namespaces and releases them.
    tokens_in_apps
        .delete("reader", &DeleteParams::default())
        .await
        .unwrap();
    tokens_in_web
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    for (tokens, id) in [(&tokens_in_apps, &reader), (&tokens_in_web, &backend)] {
        eventually(
            "the TookenToken to be gone",
            Duration::from_secs(60),
            || {
                let tokens = tokens.clone();
                async move {
                    tokens
                        .list(&ListParams::default())
                        .await
                        .ok()?
                        .items
                        .is_empty()
                        .then_some(())
                }
            },
        )
        .await;
        let token: serde_json::Value = http
            .get(format!("{base_url}/v1/tokens/{id}"))
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(token["status"], "revoked", "{token}");
    }
    // Stop acting on every namespace before the next part.
    drop(operator);
    drop(sidecar);
    release
        .helm(&["uninstall", "--wait", "--timeout", "3m"])
        .await;
}

/// `operator.watchNamespace`: a Role in the watched namespace, nothing elsewhere.
async fn namespace_scoped(client: &kube::Client, kubeconfig: &Path, base_url: &str, api_key: &str) {
    let home = temp_namespace(client, "tooken-rbac-ns").await;
    let watched = temp_namespace(client, "tooken-rbac-watched").await;
    let other = temp_namespace(client, "tooken-rbac-other").await;
    let release = Release::new(client, kubeconfig, &home.name).await;
    let full = release.fullname();
    let _volume = reserve_volume(client, &home.name, &format!("{full}-api-data")).await;
    let _kubelet = Kubelet::readiness_only(client, kubeconfig, &home.name);
    release
        .install(&[
            "--set",
            &format!("operator.watchNamespace={}", watched.name),
        ])
        .await;

    // A TookenToken in another namespace, before the operator starts.
    let tokens_elsewhere: Api<TookenToken> = Api::namespaced(client.clone(), &other.name);
    let untouched = tokens_elsewhere
        .create(
            &PostParams::default(),
            &tookentoken("other", json!({"scopes": ["tokens:read"]})),
        )
        .await
        .unwrap();

    let operator_kubeconfig =
        service_account_kubeconfig(client, kubeconfig, &home.name, &format!("{full}-operator"))
            .await;
    let _operator = operator(
        &operator_kubeconfig,
        &home.name,
        Some(&watched.name),
        (base_url, api_key),
    );

    // Its job in the watched namespace.
    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &watched.name);
    tokens
        .create(
            &PostParams::default(),
            &tookentoken("app", json!({"scopes": ["tokens:read"]})),
        )
        .await
        .unwrap();
    let id = ready_token_id(&tokens, "app").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &watched.name);
    let secret = secrets.get("app").await.expect("the Secret exists");
    assert_eq!(
        verify_token(base_url, api_key, &secret_value(&secret, "token").unwrap()).await["token_id"],
        id.as_str()
    );

    // As the operator's ServiceAccount: allowed in the watched namespace, 403 everywhere else,
    // including the release's own namespace beyond its Lease.
    let scoped = client_for(&operator_kubeconfig).await;
    Api::<Secret>::namespaced(scoped.clone(), &watched.name)
        .list(&ListParams::default())
        .await
        .expect("its own namespace's Secrets");
    let elsewhere: Api<Secret> = Api::namespaced(scoped.clone(), &other.name);
    forbidden(
        "list Secrets elsewhere",
        elsewhere.list(&ListParams::default()).await,
    );
    forbidden("get a Secret elsewhere", elsewhere.get("anything").await);
    forbidden(
        "create a Secret elsewhere",
        elsewhere
            .create(
                &PostParams::default(),
                &serde_json::from_value(
                    json!({"metadata": {"name": "planted"}, "stringData": {"token": "x"}}),
                )
                .unwrap(),
            )
            .await,
    );
    forbidden(
        "read the credentials Secret",
        Api::<Secret>::namespaced(scoped.clone(), &home.name)
            .get(&format!("{full}-credentials"))
            .await,
    );
    let tokens_as_operator: Api<TookenToken> = Api::namespaced(scoped.clone(), &other.name);
    forbidden(
        "patch a TookenToken elsewhere",
        tokens_as_operator
            .patch(
                "other",
                &PatchParams::default(),
                &Patch::Merge(json!({"metadata": {"finalizers": ["tooken.io/revoke"]}})),
            )
            .await,
    );
    forbidden(
        "patch a TookenToken's status elsewhere",
        tokens_as_operator
            .patch_status(
                "other",
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"tokenId": "x"}})),
            )
            .await,
    );
    forbidden(
        "list TookenTokens in all namespaces",
        Api::<TookenToken>::all(scoped.clone())
            .list(&ListParams::default())
            .await,
    );
    // The sidecar's ServiceAccount is scoped the same way.
    let sidecar_kubeconfig =
        service_account_kubeconfig(client, kubeconfig, &home.name, &format!("{full}-sidecar"))
            .await;
    let sidecar = client_for(&sidecar_kubeconfig).await;
    Api::<Deployment>::namespaced(sidecar.clone(), &watched.name)
        .list(&ListParams::default())
        .await
        .expect("the watched namespace's Deployments");
    forbidden(
        "the sidecar lists Deployments elsewhere",
        Api::<Deployment>::namespaced(sidecar.clone(), &other.name)
            .list(&ListParams::default())
            .await,
    );
    forbidden(
        "the sidecar lists Secrets elsewhere",
        Api::<Secret>::namespaced(sidecar, &other.name)
            .list(&ListParams::default())
            .await,
    );

    // The operator, running all along, left the other namespace's TookenToken as it was.
    let now = tokens_elsewhere.get("other").await.unwrap();
    assert_eq!(now.resource_version(), untouched.resource_version());
    assert!(
        now.status.is_none() && now.finalizers().is_empty(),
        "{now:?}"
    );
    assert!(
        Api::<Secret>::namespaced(client.clone(), &other.name)
            .get_opt("other")
            .await
            .unwrap()
            .is_none()
    );

    tokens
        .delete("app", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the TookenToken to be gone",
        Duration::from_secs(60),
        || {
            let tokens = tokens.clone();
            async move { tokens.get_opt("app").await.ok()?.is_none().then_some(()) }
        },
    )
    .await;
}

async fn client_for(kubeconfig: &Path) -> kube::Client {
    client(kubeconfig)
        .await
        .expect("a client for the ServiceAccount")
}
