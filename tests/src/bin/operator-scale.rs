//! Scale check: N TookenTokens (default 1,000) applied at once against the cluster named by
//! `TOOKEN_E2E_KUBECONFIG`. Prints the time until all are Ready and the operator's peak RSS.
//! Design target: 1,000 Ready within 30 s, under 64 MiB.
//!
//! Run: `TOOKEN_E2E_KUBECONFIG=$(tests/cluster/up) cargo run -p tooken-e2e --bin operator-scale`
//! (after `cargo build --workspace`); `TOOKEN_SCALE_N` changes N.

use futures::StreamExt;
use kube::Api;
use kube::api::{ListParams, PostParams};
use std::time::{Duration, Instant};
use tooken_e2e::{client, install_crd, kubeconfig, spawn, start_api_server, temp_namespace};
use tooken_operator::crd::TookenToken;

/// The peak resident set of a process, from /proc (Linux).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

#[tokio::main]
async fn main() {
    let Some(kubeconfig) = kubeconfig("operator-scale") else {
        return;
    };
    let n: usize = std::env::var("TOOKEN_SCALE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-scale").await;
    let ns = namespace.name.clone();
    let (_server, base_url, api_key) = start_api_server(&[]).await;
    let operator = spawn(
        "tooken-operator",
        &[
            "--namespace",
            &ns,
            "--lease-namespace",
            &ns,
            "--listen",
            "127.0.0.1:0",
            "--concurrency",
            "32",
        ],
        &[
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("TOOKEN_API_URL", base_url),
            ("TOOKEN_API_KEY", api_key),
            ("RUST_LOG", "warn".into()),
        ],
    );
    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(50, |i| {
            let tokens = tokens.clone();
            async move {
                let manifest: TookenToken = serde_json::from_value(serde_json::json!({
                    "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
                    "metadata": {"name": format!("scale-{i}")},
                    "spec": {"scopes": ["tokens:read"]}
                }))
                .unwrap();
                tokens
                    .create(&PostParams::default(), &manifest)
                    .await
                    .expect("create");
            }
        })
        .await;
    let applied = started.elapsed();
    // Generous, so a slow machine still prints its figures: 10 minutes, more for a large N.
    let deadline = Duration::from_secs(600.max(n as u64 / 5));
    let mut ready = 0;
    while ready < n {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let list = tokens.list(&ListParams::default()).await.expect("list");
        ready = list
            .items
            .iter()
            .filter(|t| {
                t.status.as_ref().is_some_and(|s| {
                    s.conditions
                        .iter()
                        .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        assert!(
            started.elapsed() < deadline,
            "only {ready} of {n} Ready after {} s",
            deadline.as_secs()
        );
    }
    let all_ready = started.elapsed();
    println!(
        "{n} TookenTokens: applied in {:.1} s, all Ready after {:.1} s; operator peak RSS {}",
        applied.as_secs_f64(),
        all_ready.as_secs_f64(),
        peak_rss_mib(operator.0.id())
            .map(|m| format!("{m:.1} MiB"))
            .unwrap_or_else(|| "unknown".into())
    );
}
