//! Two `tooken-operator` replicas against one `tooken-server` and the cluster in
//! `TOOKEN_E2E_KUBECONFIG`: only the holder of the Lease acts; killed with SIGKILL in the
//! middle of its work, the other takes over within the lease duration, every TookenToken ends
//! Ready, and no token is duplicated or orphaned.

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use tooken_e2e::{
    Running, client, eventually, free_port, install_crd, is_ready, kubeconfig, secret_value, spawn,
    start_api_server, temp_namespace, verify_token,
};
use tooken_operator::crd::TookenToken;

/// The operator's Lease: `lease_seconds: 15` in `operator/src/main.rs`, and a follower tries
/// to take it every 2 s. A takeover needs the lease to run out after the holder's last renewal,
/// plus one try; the rest is slack for a loaded machine.
const LEASE: Duration = Duration::from_secs(15);
const RETRY: Duration = Duration::from_secs(2);
const SLACK: Duration = Duration::from_secs(10);
const N: usize = 20;

struct Replica {
    identity: &'static str,
    metrics: String,
    process: Option<Running>,
}

/// A metric's value summed over its labels; `None` while the replica does not answer.
async fn metric(http: &reqwest::Client, url: &str, name: &str) -> Option<f64> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    Some(
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            })
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum(),
    )
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("tooken-operator")
        .await
        .ok()??
        .spec?
        .holder_identity
}

/// Every token of the workspace, through `GET /v1/tokens`, page by page.
async fn all_tokens(http: &reqwest::Client, base_url: &str, api_key: &str) -> Vec<Value> {
    let mut tokens = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut request = http
            .get(format!("{base_url}/v1/tokens"))
            .bearer_auth(api_key)
            .query(&[("limit", "7")]);
        if let Some(cursor) = &cursor {
            request = request.query(&[("cursor", cursor)]);
        }
        let page: Value = request.send().await.unwrap().json().await.unwrap();
        tokens.extend(page["data"].as_array().expect("a page").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return tokens,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_lease_holder_acts_and_the_other_takes_over_after_kill_9() {
    let Some(kubeconfig) =
        kubeconfig("only_the_lease_holder_acts_and_the_other_takes_over_after_kill_9")
    else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-replicas").await;
    let ns = namespace.name.clone();
    let (_server, base_url, api_key) = start_api_server(&[]).await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let start = |identity: &'static str| {
        let port = free_port();
        let process = spawn(
            "tooken-operator",
            &[],
            &[
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("TOOKEN_API_URL", base_url.clone()),
                ("TOOKEN_API_KEY", api_key.clone()),
                ("TOOKEN_OPERATOR_NAMESPACE", ns.clone()),
                ("TOOKEN_OPERATOR_LISTEN", format!("127.0.0.1:{port}")),
                ("POD_NAMESPACE", ns.clone()),
                ("POD_NAME", identity.to_owned()),
            ],
        );
        Replica {
            identity,
            metrics: format!("http://127.0.0.1:{port}/metrics"),
            process: Some(process),
        }
    };
    let mut replicas = [start("replica-a"), start("replica-b")];
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns);

    // 1. One holds the Lease and says so in its metrics; the other stands by.
    let (leader, follower) = eventually(
        "one replica to hold the Lease",
        LEASE + RETRY + SLACK,
        || {
            let (leases, http) = (leases.clone(), http.clone());
            let urls = [replicas[0].metrics.clone(), replicas[1].metrics.clone()];
            async move {
                let holder = holder(&leases).await?;
                let a = metric(&http, &urls[0], "tooken_operator_leader").await?;
                let b = metric(&http, &urls[1], "tooken_operator_leader").await?;
                match (holder.as_str(), a as u8, b as u8) {
                    ("replica-a", 1, 0) => Some((0, 1)),
                    ("replica-b", 0, 1) => Some((1, 0)),
                    _ => None,
                }
            }
        },
    )
    .await;
    let transitions = |lease: Lease| lease.spec.and_then(|s| s.lease_transitions).unwrap_or(0);
    let transitions_before = transitions(leases.get("tooken-operator").await.unwrap());

    // 2. The first half is made by the holder alone.
    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    let create = |i: usize| {
        let tokens = tokens.clone();
        async move {
            let manifest: TookenToken = serde_json::from_value(json!({
                "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
                "metadata": {"name": format!("service-{i:02}")},
                "spec": {"scopes": ["tokens:read"]}
            }))
            .unwrap();
            tokens
                .create(&PostParams::default(), &manifest)
                .await
                .expect("create a TookenToken");
        }
    };
    for i in 0..N / 2 {
        create(i).await;
    }
    let all_ready = |count: usize| {
        let tokens = tokens.clone();
        async move {
            let list = tokens.list(&ListParams::default()).await.ok()?;
            (list.items.len() == count && list.items.iter().all(is_ready)).then_some(())
        }
    };
    eventually(
        "the first half to be Ready",
        Duration::from_secs(60),
        || all_ready(N / 2),
    )
    .await;
    let follower_reconciles = metric(
        &http,
        &replicas[follower].metrics,
        "tooken_operator_reconciles_total",
    )
    .await
    .expect("the follower answers");
    assert_eq!(follower_reconciles, 0.0, "the follower reconciles nothing");
    assert_eq!(
        holder(&leases).await.as_deref(),
        Some(replicas[leader].identity)
    );

    // 3. The second half, and kill -9 the holder while it works on them.
    for i in N / 2..N {
        create(i).await;
    }
    let mut killed = replicas[leader].process.take().expect("running");
    killed.0.kill().expect("SIGKILL the holder");
    killed.0.wait().unwrap();
    let killed_at = Instant::now();

    // 4. The other takes over once the lease has run out: a new holder, a new transition.
    let successor = replicas[follower].identity;
    eventually(
        "the other replica to take the Lease",
        LEASE + RETRY + SLACK,
        || {
            let (leases, http) = (leases.clone(), http.clone());
            let url = replicas[follower].metrics.clone();
            async move {
                let holder = holder(&leases).await?;
                let leading = metric(&http, &url, "tooken_operator_leader").await?;
                (holder == successor && leading == 1.0).then_some(())
            }
        },
    )
    .await;
    let takeover = killed_at.elapsed();
    eprintln!("takeover after {takeover:?}");
    assert_eq!(
        transitions(leases.get("tooken-operator").await.unwrap()),
        transitions_before + 1
    );

    // 5. Every TookenToken is Ready, each with exactly one active token: the one its status
    //    names and its Secret holds. None is duplicated, none orphaned.
    eventually("all to be Ready", Duration::from_secs(60), || all_ready(N)).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns);
    let mut named = BTreeMap::new();
    for tt in tokens.list(&ListParams::default()).await.unwrap().items {
        let status = tt.status.clone().unwrap();
        let token_id = status.token_id.clone().expect("status names the token");
        let secret = secrets
            .get(status.secret_name.as_deref().unwrap_or(&tt.name_any()))
            .await
            .expect("the Secret exists");
        let value = secret_value(&secret, "token").expect("the Secret holds the token");
        let verdict = verify_token(&base_url, &api_key, &value).await;
        assert_eq!(verdict["valid"], true, "{}: {verdict}", tt.name_any());
        assert_eq!(verdict["token_id"], token_id.as_str(), "{}", tt.name_any());
        named.insert(format!("k8s:{ns}/{}", tt.name_any()), token_id);
    }
    assert_eq!(named.len(), N);
    // The operator names its tokens `k8s:<namespace>/<name>`.
    let prefix = format!("k8s:{ns}/");
    let tokens_in_api: Vec<Value> = all_tokens(&http, &base_url, &api_key)
        .await
        .into_iter()
        .filter(|t| t["name"].as_str().is_some_and(|n| n.starts_with(&prefix)))
        .collect();
    let active: Vec<(String, String)> = tokens_in_api
        .iter()
        .filter(|t| t["status"] == "active")
        .map(|t| {
            (
                t["name"].as_str().unwrap().to_owned(),
                t["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected: BTreeSet<(String, String)> = named.clone().into_iter().collect();
    assert_eq!(
        active.len(),
        N,
        "exactly one active token per TookenToken: {active:?}"
    );
    assert_eq!(active.into_iter().collect::<BTreeSet<_>>(), expected);
    assert_eq!(
        tokens_in_api.len(),
        N,
        "no token was issued twice: {tokens_in_api:?}"
    );

    // 6. The new holder also revokes: deleting them all leaves no active token (and lets the
    //    namespace go).
    tokens
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    eventually(
        "all TookenTokens to be gone",
        Duration::from_secs(60),
        || {
            let tokens = tokens.clone();
            async move {
                let list = tokens.list(&ListParams::default()).await.ok()?;
                list.items.is_empty().then_some(())
            }
        },
    )
    .await;
    let still_active: Vec<Value> = all_tokens(&http, &base_url, &api_key)
        .await
        .into_iter()
        .filter(|t| {
            t["status"] == "active" && t["name"].as_str().is_some_and(|n| n.starts_with(&prefix))
        })
        .collect();
    assert!(still_active.is_empty(), "{still_active:?}");
}
