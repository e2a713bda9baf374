//! The Helm chart for real, against the cluster in `TOOKEN_E2E_KUBECONFIG`: `helm install
//! --wait` of `charts/tooken` into a fresh namespace, `helm test`, `helm upgrade` and `helm
//! uninstall`.
//!
//! kwok runs no containers: it only reports pods Running and Ready, and Job pods Succeeded.
//! So [`tooken_e2e::chart::Kubelet`] stands in for the container runtime: it runs each pod's
//! container as the real local binary the image is built from, with the container's own args
//! and environment (Secret keys and Secret volumes resolved from the cluster), as the pod's
//! ServiceAccount (a TokenRequest), with in-cluster Service addresses mapped to local ports.
//! The pre-install Job's `tooken-operator setup-credentials …` really makes the credentials
//! Secret with the hook's own RBAC; the API server, operator and sidecar run from the chart's
//! pod specs; the `helm test` pod's shell script runs, and its exit is reported as the pod's
//! phase. kwok may report the Job's pod Succeeded before the local run is done, so the test
//! waits for the Secret, never for an order of events.
//!
//! The claim for the API server's SQLite file is bound to a PersistentVolume the test reserves
//! (the test cluster has no provisioner), and the operator is installed namespace-scoped
//! (`operator.watchNamespace`), so it never touches other tests' namespaces.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use tooken_e2e::chart::{Kubelet, Release, reserve_volume};
use tooken_e2e::{client, eventually, kubeconfig, ready_token_id, temp_namespace};
use tooken_operator::crd::TookenToken;

fn data_of(secret: &Secret) -> std::collections::BTreeMap<String, String> {
    secret
        .data
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8(v.0).expect("UTF-8")))
        .collect()
}

/// GET `url` with the API key; `None` until it answers at all.
async fn get(url: &str, api_key: &str) -> Option<(u16, Value)> {
    let response = reqwest::Client::new()
        .get(url)
        .bearer_auth(api_key)
        .timeout(Duration::from_secs(5))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

async fn serving(url: String) {
    eventually(
        &format!("{url} to be ready"),
        Duration::from_secs(90),
        || {
            let url = url.clone();
            async move { get(&url, "").await.filter(|(status, _)| *status == 200) }
        },
    )
    .await;
}

/// The pod of a chart component now (one replica).
async fn pod_of(pods: &Api<Pod>, release: &Release, component: &str) -> Option<String> {
    let selector = format!(
        "app.kubernetes.io/instance={},app.kubernetes.io/component={component}",
        release.name
    );
    let list = pods
        .list(&ListParams::default().labels(&selector))
        .await
        .ok()?;
    let live: Vec<_> = list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .collect();
    (live.len() == 1).then(|| live[0].name_any())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn helm_install_test_upgrade_uninstall() {
    let Some(kubeconfig) = kubeconfig("helm_install_test_upgrade_uninstall") else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    let namespace = temp_namespace(&client, "tooken-helm").await;
    let ns = namespace.name.clone();
    let release = Release::new(&client, &kubeconfig, &ns).await;
    let full = release.fullname();
    let _volume = reserve_volume(&client, &ns, &format!("{full}-api-data")).await;
    let kubelet = Kubelet::start(&client, &kubeconfig, &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns);

    // 1. Install. kwok completes the hook Job whether or not the local run has finished, so
    //    the credentials Secret is awaited rather than assumed.
    release
        .install(&["--set", &format!("operator.watchNamespace={ns}")])
        .await;
    let credentials_name = format!("{full}-credentials");
    let credentials = eventually(
        "the pre-install Job to make the credentials Secret",
        Duration::from_secs(90),
        || {
            let secrets = secrets.clone();
            let name = credentials_name.clone();
            async move { secrets.get_opt(&name).await.ok().flatten() }
        },
    )
    .await;
    let data = data_of(&credentials);
    assert_eq!(data["url"], format!("http://{full}-api.{ns}.svc:8080"));
    assert!(data["apiKey"].starts_with("tok_"), "a team API key");
    assert!(data["webhookSecret"].starts_with("whsec_"));
    assert_eq!(
        credentials.labels()["app.kubernetes.io/managed-by"],
        "tooken-installer",
        "made by setup-credentials, not rendered by Helm"
    );
    assert!(
        !credentials
            .annotations()
            .contains_key("meta.helm.sh/release-name"),
        "not Helm-managed, so uninstall leaves it"
    );
    let setup = eventually("setup-credentials to exit", Duration::from_secs(60), || {
        let exits = kubelet.exits();
        async move {
            exits
                .into_iter()
                .find(|e| e.container == "setup-credentials")
        }
    })
    .await;
    assert!(setup.success, "setup-credentials failed: {}", setup.output);
    assert!(setup.output.contains("created Secret"), "{}", setup.output);

    // The API server bootstrapped the workspace from the Secret: its API key works.
    let api = kubelet.service_url(&format!("{full}-api"), 8080);
    serving(format!("{api}/readyz")).await;
    serving(format!(
        "{}/readyz",
        kubelet.service_url(&format!("{full}-sidecar"), 8080)
    ))
    .await;
    let api_key = data["apiKey"].clone();
    let (status, tokens) = get(&format!("{api}/v1/tokens"), &api_key).await.unwrap();
    assert_eq!(status, 200, "{tokens}");
    let (_, webhooks) = get(&format!("{api}/v1/webhooks"), &api_key).await.unwrap();
    assert_eq!(
        webhooks["data"].as_array().map(Vec::len),
        Some(1),
        "the sidecar's endpoint is registered: {webhooks}"
    );

    // 2. helm test: the test pod's script calls both /readyz and its exit is the pod's phase.
    let test = release.helm(&["test", "--timeout", "3m"]).await;
    assert!(test.contains("Succeeded"), "{test}");
    let test_exit = kubelet
        .exits()
        .into_iter()
        .find(|e| e.container == "readyz")
        .expect("the helm test pod ran");
    assert!(test_exit.success, "{}", test_exit.output);

    // The operator the chart runs, as its own ServiceAccount and with the chart's credentials,
    // turns a TookenToken into a Secret whose token the API server knows.
    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    tokens
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
                "metadata": {"name": "backend"},
                "spec": {"scopes": ["tokens:read"]}
            }))
            .unwrap(),
        )
        .await
        .expect("create a TookenToken");
    let token_id = ready_token_id(&tokens, "backend").await;
    assert!(secrets.get_opt("backend").await.unwrap().is_some());

    // 3. Upgrade: a changed API server template replaces its pod (Recreate). The credentials
    //    Secret is the same object with the same data, and the new server, on the same volume,
    //    still knows the key, the token and one webhook endpoint.
    let api_pod = pod_of(&pods, &release, "api-server")
        .await
        .expect("one API pod");
    release
        .upgrade(&["--reuse-values", "--set", "apiServer.signup=open"])
        .await;
    let after = secrets.get(&credentials_name).await.unwrap();
    assert_eq!(
        after.uid(),
        credentials.uid(),
        "the Secret was not replaced"
    );
    assert_eq!(data_of(&after), data, "the Secret's data is unchanged");
    let new_pod = eventually("a new API pod", Duration::from_secs(90), || {
        let pods = pods.clone();
        let release = &release;
        let old = api_pod.clone();
        async move {
            pod_of(&pods, release, "api-server")
                .await
                .filter(|p| *p != old)
        }
    })
    .await;
    assert_ne!(new_pod, api_pod);
    serving(format!("{api}/readyz")).await;
    let (status, token) = get(&format!("{api}/v1/tokens/{token_id}"), &api_key)
        .await
        .unwrap();
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["status"], "active");
    let (_, webhooks) = get(&format!("{api}/v1/webhooks"), &api_key).await.unwrap();
    assert_eq!(
        webhooks["data"].as_array().map(Vec::len),
        Some(1),
        "registered once, not again on restart: {webhooks}"
    );

    // Delete the TookenToken while the operator runs: it revokes the token (and its finalizer
    // would otherwise keep the namespace from being deleted).
    tokens
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the token to be revoked", Duration::from_secs(90), || {
        let url = format!("{api}/v1/tokens/{token_id}");
        let api_key = api_key.clone();
        async move {
            let (_, token) = get(&url, &api_key).await?;
            (token["status"] == "revoked").then_some(())
        }
    })
    .await;

    // 4. Uninstall: the release's objects go; the credentials Secret and the SQLite claim stay,
    //    as NOTES.txt and the chart say.
    release
        .helm(&["uninstall", "--wait", "--timeout", "3m"])
        .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns);
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &ns);
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns);
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
    let instance = format!("app.kubernetes.io/instance={}", release.name);
    let by_instance = ListParams::default().labels(&instance);
    assert!(
        deployments
            .list(&by_instance)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    assert!(services.list(&by_instance).await.unwrap().items.is_empty());
    for account in ["api", "operator", "sidecar"] {
        assert!(
            accounts
                .get_opt(&format!("{full}-{account}"))
                .await
                .unwrap()
                .is_none(),
            "ServiceAccount {account} is removed"
        );
    }
    for role in ["operator", "operator-leader", "sidecar"] {
        let name = format!("{full}-{role}");
        assert!(roles.get_opt(&name).await.unwrap().is_none(), "Role {name}");
        assert!(
            bindings.get_opt(&name).await.unwrap().is_none(),
            "RoleBinding {name}"
        );
    }
    let kept = secrets
        .get(&credentials_name)
        .await
        .expect("the credentials Secret stays");
    assert_eq!(kept.uid(), credentials.uid());
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns);
    assert!(
        claims
            .get_opt(&format!("{full}-api-data"))
            .await
            .unwrap()
            .is_some(),
        "the SQLite claim stays (helm.sh/resource-policy: keep)"
    );
    // With the pods gone, the stand-in stopped their processes.
    eventually(
        "the release's processes to stop",
        Duration::from_secs(60),
        || {
            let running = kubelet.running();
            async move { (running == 0).then_some(()) }
        },
    )
    .await;
}
