//! How fast a rotation made outside the operator reaches the workload, on the cluster named by
//! `TOOKEN_E2E_KUBECONFIG` (kwok brings the new pods to Ready). Prints, over N rounds
//! (`TOOKEN_BENCH_N`, default 10):
//! - from `POST /v1/tokens/{id}/rotate` to the Secret holding a working secret of the token;
//! - from that rotation to the restart patch, and to the new ReplicaSet Ready;
//! - from `POST /v1/tokens/{id}/revoke` to a working token in the Secret.
//!
//! Run: `TOOKEN_E2E_KUBECONFIG=… cargo run -p tooken-e2e --bin rotation-bench` (after
//! `cargo build --workspace`).

use k8s_openapi::api::apps::v1::ReplicaSet;
use serde_json::json;
use std::future::Future;
use std::time::{Duration, Instant};
use tooken_e2e::rotation::{System, WAIT};

/// Polls `check` every 20 ms (finer than the tests' helper, since this measures) until it
/// returns `Some`; panics after `WAIT`.
async fn when<T, Fut: Future<Output = Option<T>>>(what: &str, mut check: impl FnMut() -> Fut) -> T {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn secret_value(system: &System) -> Option<String> {
    let secret = system.secrets.get_opt("backend").await.ok()??;
    String::from_utf8(secret.data?.get("token")?.0.clone()).ok()
}

/// The name of `backend`'s newest ReplicaSet, once it is Ready with its one pod. (Not a count:
/// the Deployment keeps only its last 10.)
async fn ready_replica_set(system: &System) -> Option<String> {
    let list = system.replica_sets.list(&Default::default()).await.ok()?;
    let newest: &ReplicaSet = list
        .items
        .iter()
        .max_by_key(|rs| rs.metadata.creation_timestamp.clone().map(|t| t.0))?;
    let ready = newest.status.as_ref()?.ready_replicas == Some(1);
    ready.then(|| newest.metadata.name.clone())?
}

fn report(what: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at =
        |p: f64| samples[((samples.len() as f64 * p).ceil() as usize).clamp(1, samples.len()) - 1];
    println!(
        "{what}: p50 {:.2} s, p99 {:.2} s, max {:.2} s over {} rounds",
        at(0.5).as_secs_f64(),
        at(0.99).as_secs_f64(),
        samples.last().unwrap().as_secs_f64(),
        samples.len()
    );
}

#[tokio::main]
async fn main() {
    let rounds: usize = std::env::var("TOOKEN_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let Some(system) = System::start("rotation-bench", 1).await else {
        return;
    };
    let (mut token_id, _) = system.working_secret(None, None).await;
    let mut replica_set = when("the first rollout", || ready_replica_set(&system)).await;
    let (mut to_secret, mut to_patch, mut to_ready) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let before = secret_value(&system).await;
        let restarted = tooken_e2e::restarted_at(&system.deployments.get("backend").await.unwrap());
        let rotation = system.rotation_of_token(&token_id).await as u64;
        let started = Instant::now();
        system
            .post(&format!("/v1/tokens/{token_id}/rotate"), json!({}))
            .await;
        when("the Secret to change", || async {
            (secret_value(&system).await != before).then_some(())
        })
        .await;
        to_secret.push(started.elapsed());
        system
            .working_secret(Some(&token_id), before.as_deref())
            .await;
        when("the restart patch", || async {
            let deployment = system.deployments.get("backend").await.ok()?;
            (tooken_e2e::restarted_at(&deployment) != restarted).then_some(())
        })
        .await;
        to_patch.push(started.elapsed());
        replica_set = when("the new ReplicaSet to be Ready", || async {
            ready_replica_set(&system)
                .await
                .filter(|name| *name != replica_set)
        })
        .await;
        to_ready.push(started.elapsed());
        // The API's rotation and the operator's: wait until both deliveries are done.
        let delivered = 2 * to_secret.len();
        system.settled(&token_id, rotation + 2, delivered).await;
    }
    report("API rotation -> Secret updated", to_secret);
    report("API rotation -> restart patch", to_patch);
    report("API rotation -> new ReplicaSet Ready (kwok)", to_ready);

    let mut to_heal = Vec::new();
    for _ in 0..rounds.min(5) {
        let before = secret_value(&system).await;
        let started = Instant::now();
        system
            .post(&format!("/v1/tokens/{token_id}/revoke"), json!({}))
            .await;
        let replacement = when("a working replacement in the Secret", || async {
            let value = secret_value(&system)
                .await
                .filter(|v| Some(v) != before.as_ref())?;
            let verified = system.verify(&value).await;
            (verified["valid"] == true).then(|| verified["token_id"].as_str().map(str::to_owned))?
        })
        .await;
        to_heal.push(started.elapsed());
        token_id = replacement;
    }
    report(
        "API revocation -> working token in the Secret (change feed)",
        to_heal,
    );
}
