//! Multi-tenancy on the cluster in `TOOKEN_E2E_KUBECONFIG`: a ServiceAccount confined to one
//! namespace cannot use the operator to reach another namespace's tokens, webhooks or the
//! audit log. Refused at `kubectl apply` by the chart's ValidatingAdmissionPolicies, refused by
//! the operator where those are absent, and refused by the API for what the operator issued.

use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;
use tooken_e2e::chart::{CHART, helm, service_account_kubeconfig};
use tooken_e2e::{
    Running, TempNamespace, client, cluster_tool, eventually, install_crd, kubeconfig,
    readme_blocks, ready_token_id, secret_value, spawn_operator, start_api_server, temp_namespace,
    unique_namespace, verify_token,
};
use tooken_operator::crd::TookenToken;
use tooken_operator::policy::TookenPolicy;

const WAIT: Duration = Duration::from_secs(90);

fn kubectl(kubeconfig: &Path, args: &[&str], stdin: &str) -> String {
    let mut child = Command::new(cluster_tool("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run kubectl");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "kubectl {args:?}: {text}");
    text
}

/// The chart's admission policies, bound only to namespaces labelled `label=on`; removed on
/// drop.
struct AdmissionPolicies {
    kubeconfig: std::path::PathBuf,
    manifests: String,
}

impl AdmissionPolicies {
    fn install(kubeconfig: &Path, label: &str) -> Self {
        let manifests = helm(
            kubeconfig,
            &[
                "template",
                label,
                CHART,
                "--show-only",
                "templates/admission-policy.yaml",
                "--set",
                &format!("admissionPolicy.namespaceSelector.matchLabels.{label}=on"),
                // What `helm install` learns from the cluster (1.30 or later).
                "--kube-version",
                "1.33.0",
                "--api-versions",
                "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy",
            ],
        );
        kubectl(kubeconfig, &["apply", "-f", "-"], &manifests);
        AdmissionPolicies {
            kubeconfig: kubeconfig.to_owned(),
            manifests,
        }
    }
}

impl Drop for AdmissionPolicies {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| {
            kubectl(
                &self.kubeconfig,
                &["delete", "--ignore-not-found", "-f", "-"],
                &self.manifests,
            )
        });
    }
}

/// A cluster-scoped TookenPolicy, deleted on drop.
struct Policy(Api<TookenPolicy>, String);

impl Drop for Policy {
    fn drop(&mut self) {
        tooken_e2e::delete_in_background(self.0.clone(), self.1.clone());
    }
}

async fn labelled(client: &kube::Client, ns: &TempNamespace, label: &str) {
    Api::<Namespace>::all(client.clone())
        .patch(
            &ns.name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"labels": {label: "on"}}})),
        )
        .await
        .unwrap();
}

fn token(name: &str, scopes: &[&str]) -> TookenToken {
    serde_json::from_value(json!({
        "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
        "metadata": {"name": name}, "spec": {"scopes": scopes}
    }))
    .unwrap()
}

/// `dev-user`: may create and read TookenTokens, and read Secrets, in `ns` only.
async fn dev_user(client: &kube::Client, admin: &Path, ns: &str) -> kube::Client {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), ns);
    accounts
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "dev-user"}})).unwrap(),
        )
        .await
        .unwrap();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "dev-user"},
        "rules": [
            {"apiGroups": ["tooken.io"], "resources": ["tookentokens"], "verbs": ["create", "get", "list"]},
            {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}
        ]
    }))
    .unwrap();
    Api::<Role>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "dev-user"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "dev-user"},
        "subjects": [{"kind": "ServiceAccount", "name": "dev-user", "namespace": ns}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let path = service_account_kubeconfig(client, admin, ns, "dev-user").await;
    client_for(&path).await
}

async fn client_for(path: &Path) -> kube::Client {
    client(path).await.expect("a client")
}

/// Creating `tt` is refused; returns the API server's message. Admission policies take
/// effect a moment after they are created, so an admitted one is deleted and tried again.
async fn refused(tokens: &Api<TookenToken>, admin: &Api<TookenToken>, tt: &TookenToken) -> String {
    let name = tt.metadata.name.clone().unwrap();
    eventually(&format!("{name} to be refused at apply"), WAIT, || async {
        match tokens.create(&PostParams::default(), tt).await {
            Ok(_) => {
                let _ = admin.delete(&name, &Default::default()).await;
                None
            }
            // The one admitted before is still being deleted.
            Err(kube::Error::Api(status)) if status.code == 409 => None,
            Err(kube::Error::Api(status)) => Some(status.message),
            Err(err) => panic!("unexpected error: {err}"),
        }
    })
    .await
}

/// `GET`/`POST` to the Tooken API with `credential`: status and body.
async fn call(method: &str, url: String, credential: &str, body: Option<Value>) -> (u16, Value) {
    let http = reqwest::Client::new();
    let request = match method {
        "GET" => http.get(url),
        _ => http.post(url).json(&body.unwrap_or(json!({}))),
    };
    let response = request.bearer_auth(credential).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_namespace_cannot_reach_another_namespaces_tokens_through_the_operator() {
    let Some(path) =
        kubeconfig("a_namespace_cannot_reach_another_namespaces_tokens_through_the_operator")
    else {
        return;
    };
    let admin = client(&path).await.unwrap();
    install_crd(&admin).await;
    let label = unique_namespace("tooken-tenancy");
    let _admission = AdmissionPolicies::install(&path, &label);
    let dev = temp_namespace(&admin, "tooken-dev").await;
    let prod = temp_namespace(&admin, "tooken-prod").await;
    // No admission policy here: the operator alone must refuse.
    let bare = temp_namespace(&admin, "tooken-bare").await;
    labelled(&admin, &dev, &label).await;
    labelled(&admin, &prod, &label).await;
    let policies: Api<TookenPolicy> = Api::all(admin.clone());
    // The README's policy, for this test's `dev` under a name of its own.
    let (_, example) = readme_blocks("Kubernetes: multi-tenant clusters")
        .into_iter()
        .find(|(language, _)| language == "yaml")
        .expect("the README shows a TookenPolicy");
    let mut policy: TookenPolicy = yaml_serde::from_str(&example).unwrap();
    policy.metadata.name = Some(label.clone());
    policy.spec.namespaces.names = vec![dev.name.clone()];
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let _policy = Policy(policies.clone(), label.clone());
    let bare_policy: TookenPolicy = serde_json::from_value(json!({
        "apiVersion": "tooken.io/v1alpha1", "kind": "TookenPolicy",
        "metadata": {"name": format!("{label}-bare")},
        "spec": {"namespaces": {"matchLabels": {format!("{label}-bare"): "on"}},
                 "defaultConnection": "Deny"}
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &bare_policy)
        .await
        .unwrap();
    let _bare_policy = Policy(policies.clone(), format!("{label}-bare"));

    let (_server, base_url, api_key) = start_api_server(&[]).await;
    let _operators: Vec<Running> = [&dev, &prod, &bare]
        .iter()
        .map(|ns| spawn_operator(&path, &ns.name, &base_url, &api_key, &[]))
        .collect();

    // Prod's token, made by its own team.
    let prod_tokens: Api<TookenToken> = Api::namespaced(admin.clone(), &prod.name);
    prod_tokens
        .create(&PostParams::default(), &token("backend", &["tokens:read"]))
        .await
        .unwrap();
    let prod_id = ready_token_id(&prod_tokens, "backend").await;
    let prod_secret = secret_value(
        &Api::<Secret>::namespaced(admin.clone(), &prod.name)
            .get("backend")
            .await
            .unwrap(),
        "token",
    )
    .unwrap();

    // The escalation of the report, refused at apply time with the reason.
    let user = dev_user(&admin, &path, &dev.name).await;
    let dev_tokens: Api<TookenToken> = Api::namespaced(user.clone(), &dev.name);
    let dev_admin: Api<TookenToken> = Api::namespaced(admin.clone(), &dev.name);
    let message = refused(
        &dev_tokens,
        &dev_admin,
        &token(
            "escalate",
            &[
                "tokens:read",
                "tokens:revoke",
                "webhooks:write",
                "audit:read",
            ],
        ),
    )
    .await;
    // Both admission policies refuse it; the API server names the first that did.
    assert!(
        message.contains("webhooks:write reaches the whole workspace")
            || message.contains("only the scopes [tokens:read, tokens:revoke]"),
        "{message}"
    );
    // Where no policy covers the namespace, the workspace-wide scope alone is refused.
    let message = refused(
        &prod_tokens,
        &prod_tokens,
        &token("auditor", &["audit:read"]),
    )
    .await;
    assert!(
        message.contains("denied request: scope audit:read reaches the whole workspace, and the operator issues only tokens confined to their namespace"),
        "{message}"
    );
    let message = refused(
        &dev_tokens,
        &dev_admin,
        &token("writer", &["tokens:read", "tokens:write"]),
    )
    .await;
    assert!(
        message.contains(&format!(
            "TookenPolicy {label} allows namespace {} only the scopes [tokens:read, tokens:revoke]",
            dev.name
        )),
        "{message}"
    );

    // What the policy allows is issued, confined to dev and labelled with where it serves.
    dev_tokens
        .create(
            &PostParams::default(),
            &token("backend", &["tokens:read", "tokens:revoke"]),
        )
        .await
        .unwrap();
    let dev_id = ready_token_id(&dev_tokens, "backend").await;
    let dev_secret = secret_value(
        &Api::<Secret>::namespaced(user.clone(), &dev.name)
            .get("backend")
            .await
            .expect("dev-user reads its own Secret"),
        "token",
    )
    .unwrap();
    let (status, issued) = call(
        "GET",
        format!("{base_url}/v1/tokens/{dev_id}"),
        &api_key,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(issued["name_prefix"], format!("k8s:{}/", dev.name));
    assert_eq!(issued["labels"]["tooken.io/namespace"], dev.name.as_str());
    assert_eq!(issued["labels"]["tooken.io/tookentoken"], "backend");
    let (_, audit) = call(
        "GET",
        format!("{base_url}/v1/audit-logs?type=token.created&target={dev_id}"),
        &api_key,
        None,
    )
    .await;
    assert_eq!(
        audit["data"][0]["data"]["labels"]["tooken.io/namespace"],
        dev.name.as_str(),
        "the audit log says which namespace the token serves: {audit}"
    );

    // With dev's token, prod's is out of reach; so are webhooks and the audit log.
    let (status, list) = call("GET", format!("{base_url}/v1/tokens"), &dev_secret, None).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("k8s:{}/backend", dev.name)], "{list}");
    let (status, _) = call(
        "GET",
        format!("{base_url}/v1/tokens/{prod_id}"),
        &dev_secret,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        "POST",
        format!("{base_url}/v1/tokens/{prod_id}/revoke"),
        &dev_secret,
        None,
    )
    .await;
    assert_eq!(status, 404, "prod's token cannot be revoked from dev");
    let (status, _) = call(
        "POST",
        format!("{base_url}/v1/webhooks"),
        &dev_secret,
        Some(json!({"url": "https://attacker.example/hook", "event_types": ["token.created"]})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        "GET",
        format!("{base_url}/v1/audit-logs"),
        &dev_secret,
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(
        verify_token(&base_url, &api_key, &prod_secret).await["valid"],
        true,
        "prod's token still works"
    );

    // Where no admission policy runs, the operator refuses, says why, and issues nothing.
    let bare_tokens: Api<TookenToken> = Api::namespaced(admin.clone(), &bare.name);
    bare_tokens
        .create(&PostParams::default(), &token("audit", &["audit:read"]))
        .await
        .expect("no admission policy in this namespace");
    let reason = not_ready(&bare_tokens, "audit").await;
    assert!(
        reason.contains("audit:read reaches the whole workspace"),
        "{reason}"
    );
    labelled(&admin, &bare, &format!("{label}-bare")).await;
    bare_tokens
        .create(&PostParams::default(), &token("reader", &["tokens:read"]))
        .await
        .unwrap();
    let reason = not_ready(&bare_tokens, "reader").await;
    assert!(
        reason.contains("does not let namespace") && reason.contains("default connection"),
        "{reason}"
    );
    let (_, all) = call("GET", format!("{base_url}/v1/tokens"), &api_key, None).await;
    assert!(
        all["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| !t["name"].as_str().unwrap().contains(&bare.name)),
        "nothing was issued for a refused request: {all}"
    );
}

/// Waits until `name` is `Ready=False` with reason `PolicyDenied`; returns its message.
async fn not_ready(tokens: &Api<TookenToken>, name: &str) -> String {
    eventually(
        &format!("{name} to be refused by policy"),
        WAIT,
        || async move {
            let tt = tokens.get(name).await.ok()?;
            tt.status?
                .conditions
                .into_iter()
                .find(|c| c.type_ == "Ready" && c.status == "False" && c.reason == "PolicyDenied")
                .map(|c| c.message)
        },
    )
    .await
}

/// `name`'s Secret value.
async fn secret_of(client: &kube::Client, ns: &TempNamespace, name: &str) -> String {
    let secret = Api::<Secret>::namespaced(client.clone(), &ns.name)
        .get(name)
        .await
        .unwrap();
    secret_value(&secret, "token").unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tightened_policy_revokes_what_it_no_longer_allows() {
    let Some(path) = kubeconfig("a_tightened_policy_revokes_what_it_no_longer_allows") else {
        return;
    };
    let admin = client(&path).await.unwrap();
    install_crd(&admin).await;
    let ns = temp_namespace(&admin, "tooken-tighten").await;
    let name = unique_namespace("tooken-tighten");
    let policies: Api<TookenPolicy> = Api::all(admin.clone());
    let allow = |scopes: &[&str], default_connection: &str| {
        json!({
            "apiVersion": "tooken.io/v1alpha1", "kind": "TookenPolicy",
            "metadata": {"name": name},
            "spec": {"namespaces": {"names": [ns.name]}, "allowedScopes": scopes,
                     "defaultConnection": default_connection}
        })
    };
    let set = |policy: Value| {
        let policies = policies.clone();
        let name = name.clone();
        async move {
            policies
                .patch(
                    &name,
                    &PatchParams::apply("tooken-e2e").force(),
                    &Patch::Apply(policy),
                )
                .await
                .unwrap();
        }
    };
    set(allow(&["tokens:read", "tokens:revoke"], "Allow")).await;
    let _policy = Policy(policies.clone(), name.clone());
    let (_server, base_url, api_key) = start_api_server(&[]).await;
    let _operator = spawn_operator(&path, &ns.name, &base_url, &api_key, &[]);
    let tokens: Api<TookenToken> = Api::namespaced(admin.clone(), &ns.name);
    for (tt, scopes) in [
        ("revoker", &["tokens:read", "tokens:revoke"][..]),
        ("reader", &["tokens:read"]),
    ] {
        tokens
            .create(&PostParams::default(), &token(tt, scopes))
            .await
            .unwrap();
    }
    let revoker_id = ready_token_id(&tokens, "revoker").await;
    let reader_id = ready_token_id(&tokens, "reader").await;
    let revoker = secret_of(&admin, &ns, "revoker").await;
    let reader = secret_of(&admin, &ns, "reader").await;

    // Tightened: the token issued with a scope it no longer allows is revoked; the other keeps
    // working.
    set(allow(&["tokens:read"], "Allow")).await;
    let reason = not_ready(&tokens, "revoker").await;
    assert!(reason.contains("only the scopes [tokens:read]"), "{reason}");
    let verdict = eventually("revoker's token to be revoked", WAIT, || async {
        let verdict = verify_token(&base_url, &api_key, &revoker).await;
        (verdict["valid"] == false).then_some(verdict)
    })
    .await;
    assert_eq!(verdict["reason"], "revoked", "{verdict}");
    let verdict = verify_token(&base_url, &api_key, &reader).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(ready_token_id(&tokens, "reader").await, reader_id);

    // Editing a resource to ask for more than allowed is refused, and leaves its token working.
    tokens
        .patch(
            "reader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"scopes": ["tokens:read", "tokens:rotate"]}})),
        )
        .await
        .unwrap();
    not_ready(&tokens, "reader").await;
    assert_eq!(
        verify_token(&base_url, &api_key, &reader).await["valid"],
        true
    );
    tokens
        .patch(
            "reader",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"scopes": ["tokens:read"]}})),
        )
        .await
        .unwrap();
    assert_eq!(ready_token_id(&tokens, "reader").await, reader_id);

    // Allowed again: a new token, in the Secret, that works.
    set(allow(&["tokens:read", "tokens:revoke"], "Allow")).await;
    let reissued = eventually("revoker to be reissued", WAIT, || async {
        let tt = tokens.get("revoker").await.ok()?;
        let id = tt.status?.token_id?;
        (id != revoker_id).then_some(id)
    })
    .await;
    assert_eq!(ready_token_id(&tokens, "revoker").await, reissued);
    let renewed = secret_of(&admin, &ns, "revoker").await;
    assert_eq!(
        verify_token(&base_url, &api_key, &renewed).await["token_id"],
        reissued.as_str()
    );

    // The default connection denied: every token it issued here is revoked.
    set(allow(&["tokens:read", "tokens:revoke"], "Deny")).await;
    for (tt, secret) in [("revoker", &renewed), ("reader", &reader)] {
        let reason = not_ready(&tokens, tt).await;
        assert!(reason.contains("default connection"), "{reason}");
        eventually(&format!("{tt}'s token to be revoked"), WAIT, || async {
            let verdict = verify_token(&base_url, &api_key, secret).await;
            (verdict["reason"] == "revoked").then_some(())
        })
        .await;
    }
}
