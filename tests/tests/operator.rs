//! The real `tooken-server` and `tooken-operator` against the cluster named by
//! `TOOKEN_E2E_KUBECONFIG`: a TookenToken becomes a Secret whose token verifies; a rotation
//! changes it; deleting the resource revokes the token and removes the Secret.

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::time::Duration;
use tooken_e2e::{client, eventually, install_crd, kubeconfig, start_api_server, temp_namespace};
use tooken_operator::crd::TookenToken;

async fn verify(base_url: &str, api_key: &str, token: &str) -> Value {
    tooken_e2e::verify_token(base_url, api_key, token).await
}

fn token_of(secret: &Secret) -> Option<String> {
    tooken_e2e::secret_value(secret, "token")
}

fn rotation_of(secret: &Secret) -> Option<i64> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get("tooken.io/rotation")?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tookentoken_lifecycle_issue_rotate_revoke() {
    let Some(kubeconfig) = kubeconfig("tookentoken_lifecycle_issue_rotate_revoke") else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-op").await;
    let ns = namespace.name.clone();
    let (_server, base_url, api_key) = start_api_server(&[]).await;
    let _operator = tooken_e2e::spawn_operator(
        &kubeconfig,
        &ns,
        &base_url,
        &api_key,
        &[("POD_NAME", "e2e-operator".into())],
    );

    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let manifest: TookenToken = serde_json::from_value(json!({
        "apiVersion": "tooken.io/v1alpha1",
        "kind": "TookenToken",
        "metadata": {"name": "backend"},
        "spec": {"scopes": ["tokens:read"], "expiry": {"after": "24h"}}
    }))
    .unwrap();
    tokens
        .create(&PostParams::default(), &manifest)
        .await
        .expect("create the TookenToken");

    // 1. Ready, and the Secret's token verifies as the token the status names.
    let token_id = eventually(
        "the TookenToken to be Ready",
        Duration::from_secs(60),
        || {
            let tokens = tokens.clone();
            async move {
                let tt = tokens.get("backend").await.ok()?;
                let status = tt.status?;
                let ready = status
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == "True");
                ready.then_some(status.token_id?)
            }
        },
    )
    .await;
    let secret = secrets.get("backend").await.expect("the Secret exists");
    let first = token_of(&secret).expect("the Secret holds the token");
    let verdict = verify(&base_url, &api_key, &first).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["token_id"], token_id.as_str());
    assert_eq!(
        secret.metadata.owner_references.unwrap()[0].kind,
        "TookenToken"
    );
    assert_eq!(
        secret.metadata.labels.unwrap()["app.kubernetes.io/managed-by"],
        "tooken-operator"
    );

    // 2. A rotation schedule rotates: the Secret changes and the old secret stops working.
    tokens
        .patch(
            "backend",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"rotation": {"every": "15s"}}})),
        )
        .await
        .unwrap();
    let rotated = eventually(
        "the Secret to hold a new rotation",
        Duration::from_secs(90),
        || {
            let secrets = secrets.clone();
            async move {
                let secret = secrets.get("backend").await.ok()?;
                (rotation_of(&secret)? >= 1)
                    .then(|| token_of(&secret))
                    .flatten()
            }
        },
    )
    .await;
    assert_ne!(rotated, first);
    assert_eq!(verify(&base_url, &api_key, &rotated).await["valid"], true);
    assert_eq!(
        verify(&base_url, &api_key, &first).await["reason"],
        "rotated"
    );

    // 3. A deleted Secret is repaired at once (the operator watches its Secrets).
    secrets
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    let repaired = eventually(
        "the Secret to be rewritten",
        Duration::from_secs(30),
        || {
            let secrets = secrets.clone();
            async move { secrets.get("backend").await.ok().and_then(|s| token_of(&s)) }
        },
    )
    .await;
    assert_eq!(verify(&base_url, &api_key, &repaired).await["valid"], true);

    // 4. Deleting the resource revokes the token and the Secret goes with it.
    tokens
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the TookenToken to be gone",
        Duration::from_secs(60),
        || {
            let tokens = tokens.clone();
            async move {
                tokens
                    .get_opt("backend")
                    .await
                    .ok()
                    .filter(|t| t.is_none())
                    .map(|_| ())
            }
        },
    )
    .await;
    let current = secrets
        .get_opt("backend")
        .await
        .ok()
        .flatten()
        .and_then(|s| token_of(&s))
        .unwrap_or(repaired);
    assert_eq!(
        verify(&base_url, &api_key, &current).await["reason"],
        "revoked"
    );
    eventually(
        "the Secret to be garbage-collected",
        Duration::from_secs(60),
        || {
            let secrets = secrets.clone();
            async move {
                secrets
                    .get_opt("backend")
                    .await
                    .ok()
                    .filter(|s| s.is_none())
                    .map(|_| ())
            }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_server_rejects_unknown_scopes_and_bad_durations() {
    let Some(kubeconfig) = kubeconfig("the_api_server_rejects_unknown_scopes_and_bad_durations")
    else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-schema").await;
    // Untyped on purpose: the typed TookenToken would refuse an unknown scope on the client
    // side, and the point is what the API server's schema refuses.
    let resource = kube::core::ApiResource::erase::<TookenToken>(&());
    let tokens: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &namespace.name, &resource);
    for spec in [
        json!({"scopes": ["tokens:destroy"]}),
        json!({"scopes": []}),
        json!({"scopes": ["tokens:read"], "gracePeriod": "5 minutes"}),
        json!({"scopes": ["tokens:read"], "expiry": {"after": "24h", "at": "2030-01-01T00:00:00Z"}}),
    ] {
        let object = json!({"apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken", "metadata": {"name": "bad"}, "spec": spec});
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        let result = tokens.create(&PostParams::default(), &object).await;
        match result {
            Err(kube::Error::Api(status)) => assert_eq!(status.code, 422, "{spec}: {status:?}"),
            other => panic!("{spec} was not rejected: {other:?}"),
        }
    }
}
