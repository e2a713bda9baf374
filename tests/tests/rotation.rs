//! Every way a rotation starts, against the cluster named by `TOOKEN_E2E_KUBECONFIG`, with the
//! three real binaries as local processes: a rotation through the API (without and with a
//! grace period, as the dashboard sends it), a revocation through the API, the
//! `tooken.io/rotate-at` annotation, and a sidecar restarted between acknowledging a rotation
//! and restarting the workload. Each ends with one working token in the Secret; each rotation
//! ends with exactly one new ReplicaSet, and every delivery delivered.

use kube::ResourceExt;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use tooken_e2e::eventually;
use tooken_e2e::rotation::{System, WAIT};

/// Rotates through the API with `body` and checks the whole path.
async fn an_api_rotation_heals(test: &str, body: Value) -> Option<(System, String)> {
    let system = System::start(test, 0).await?;
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
    // Every delivery is answered in time (200, or 503 with Retry-After under load), so all end
    // delivered; how many attempts that took depends on the machine's load.
    system.settled(&token_id, 2, 2).await;
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
    let Some(system) = System::start(
        "an_api_revocation_puts_a_new_working_token_in_the_secret",
        0,
    )
    .await
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
    let Some(system) = System::start(
        "the_rotate_at_annotation_rotates_once_per_value_and_says_so",
        0,
    )
    .await
    else {
        return;
    };
    let (token_id, before) = system.working_secret(None, None).await;
    assert_eq!(system.replica_sets(1).await, 1);
    annotate(&system, "2026-12-01T10:00:00Z").await;
    system.working_secret(Some(&token_id), Some(&before)).await;
    system.settled(&token_id, 1, 1).await;
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
    system.settled(&token_id, 2, 2).await;
    assert_eq!(system.rotation_of_token(&token_id).await, 2);
    assert_eq!(system.replica_sets(3).await, 3);
}

/// The first sidecar acknowledges the rotation and dies before it restarts anything (its
/// coalescing window is long); the next one finds the pending entry and restarts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_restarted_mid_flow_still_restarts_the_workload_once() {
    let Some(mut system) = System::start(
        "a_sidecar_restarted_mid_flow_still_restarts_the_workload_once",
        0,
    )
    .await
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
    system.settled(&token_id, 1, 1).await;
    assert_eq!(
        system.replica_sets(2).await,
        2,
        "exactly one new ReplicaSet"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn volume_mode_follows_an_api_rotation_to_a_working_token_file() {
    let Some(system) = System::start(
        "volume_mode_follows_an_api_rotation_to_a_working_token_file",
        0,
    )
    .await
    else {
        return;
    };
    let (token_id, before) = system.working_secret(None, None).await;
    let dir = std::env::temp_dir().join(tooken_e2e::unique_namespace("tooken-volume"));
    std::fs::create_dir_all(&dir).unwrap();
    let _volume = tooken_e2e::spawn(
        "tooken-sidecar",
        &["volume"],
        &[
            ("KUBECONFIG", system.kubeconfig.display().to_string()),
            ("TOOKEN_SIDECAR_SECRET", "backend".into()),
            ("TOOKEN_SIDECAR_NAMESPACE", system.ns.clone()),
            ("TOOKEN_SIDECAR_DIR", dir.display().to_string()),
            (
                "TOOKEN_SIDECAR_LISTEN",
                format!("127.0.0.1:{}", tooken_e2e::free_port()),
            ),
        ],
    );
    let file = dir.join("token");
    let read = || std::fs::read_to_string(&file).ok();
    eventually("the token file", WAIT, || async {
        (read().as_deref() == Some(before.as_str())).then_some(())
    })
    .await;

    // Rotated through the API: the operator heals the Secret, and the file follows.
    system
        .post(&format!("/v1/tokens/{token_id}/rotate"), json!({}))
        .await;
    let after = eventually("a new token file", WAIT, || async {
        read().filter(|value| *value != before)
    })
    .await;
    let verdict = system.verify(&after).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["token_id"], token_id.as_str());
    assert_eq!(system.verify(&before).await["valid"], false, "rotated out");
    let _ = std::fs::remove_dir_all(&dir);
}
