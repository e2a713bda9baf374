//! Reconcile against the fakes: issue, schedule, drift, scope changes, deletion, and a crash
//! at every step of each.

use crate::cluster::ROTATION_KEY;
use crate::crd::{Expiry, RotationPolicy, TokenScope, TookenToken, TookenTokenSpec};
use crate::fake::{Crash, FakeCluster, FakeTooken, world};
use crate::reconcile::{apply, cleanup, sha256_hex, withdraw};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::ByteString;

fn resource(scopes: Vec<TokenScope>) -> TookenToken {
    let mut tt = TookenToken::new(
        "ci",
        TookenTokenSpec {
            scopes,
            expiry: None,
            rotation: None,
            grace_period: None,
            secret: Default::default(),
            restart_on_rotation: vec![],
            connection: None,
            deletion_policy: Default::default(),
        },
    );
    tt.metadata.namespace = Some("apps".into());
    tt.metadata.uid = Some("uid-1".into());
    tt.metadata.generation = Some(1);
    tt
}

/// The resource as the cluster now stores it (with the status last written).
fn stored(tt: &TookenToken, cluster: &FakeCluster) -> TookenToken {
    let mut tt = tt.clone();
    tt.status = cluster.state.lock().unwrap().status.clone();
    tt
}

fn secret_in_cluster(cluster: &FakeCluster) -> Option<String> {
    let state = cluster.state.lock().unwrap();
    let data = state.secret.as_ref()?.data.as_ref()?;
    Some(String::from_utf8(data["token"].0.clone()).unwrap())
}

/// After any sequence of runs: one working token named by the status, its current secret in
/// the Secret, and no active token that nothing names (except ones awaiting revocation).
fn assert_converged(cluster: &FakeCluster, api: &FakeTooken) {
    let status = cluster
        .state
        .lock()
        .unwrap()
        .status
        .clone()
        .expect("status written");
    let token_id = status.token_id.clone().expect("status names the token");
    let secret = secret_in_cluster(cluster).expect("the Secret exists");
    assert_eq!(
        api.verify(&secret).as_deref(),
        Some(token_id.as_str()),
        "the Secret holds a working secret of the token"
    );
    let mut named: Vec<String> = std::iter::once(token_id.clone())
        .chain(
            status
                .pending_revocations
                .iter()
                .map(|p| p.token_id.clone()),
        )
        .collect();
    named.sort();
    assert_eq!(api.active(), named, "no duplicate or orphaned token");
    assert_eq!(
        status.secret_hash.as_deref(),
        Some(sha256_hex(&secret).as_str())
    );
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(ready.status, "True");
}

/// Runs reconcile until it succeeds (a crashed run is followed by a clean one). Each retry
/// happens a little later, as it would after a restart, so a body that depends on the time of
/// the attempt shows up as a refused key.
async fn run(tt: &TookenToken, cluster: &FakeCluster, api: &FakeTooken, now: Timestamp) {
    for attempt in 0..3 {
        let current = stored(tt, cluster);
        let at = now + SignedDuration::from_secs(attempt);
        if apply(&current, cluster, api, at).await.is_ok() {
            assert!(
                api.state.lock().unwrap().refused_keys.is_empty(),
                "a key was sent with two bodies"
            );
            return;
        }
        cluster.steps.lock().unwrap().crash_at = None;
    }
    panic!("reconcile did not converge");
}

#[tokio::test]
async fn issues_a_token_and_writes_an_owned_labelled_secret() {
    let (cluster, api) = world();
    let tt = resource(vec![TokenScope::TokensRead]);
    let wait = apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_converged(&cluster, &api);
    let secret = cluster.state.lock().unwrap().secret.clone().unwrap();
    let labels = secret.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "tooken-operator");
    assert_eq!(secret.metadata.owner_references.unwrap()[0].uid, "uid-1");
    assert_eq!(secret.metadata.annotations.unwrap()[ROTATION_KEY], "0");
    assert_eq!(cluster.state.lock().unwrap().events, ["Issued"]);
    let issued = api
        .state
        .lock()
        .unwrap()
        .tokens
        .values()
        .next()
        .unwrap()
        .token
        .clone();
    assert_eq!(
        issued.name_prefix.as_deref(),
        Some("k8s:apps/"),
        "confined to its namespace"
    );
    assert_eq!(issued.labels["tooken.io/namespace"], "apps");
    assert_eq!(
        issued.labels["tooken.io/tookentoken"],
        tt.metadata.name.clone().unwrap()
    );
    assert_eq!(issued.labels["tooken.io/uid"], "uid-1");
    assert_eq!(
        wait,
        crate::reconcile::MAX_REQUEUE,
        "no expiry, no schedule: the periodic check"
    );
    // Nothing to do the second time: no API writes.
    let before = api.state.lock().unwrap().tokens.clone().len();
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(api.state.lock().unwrap().tokens.len(), before);
    assert_eq!(
        api.state
            .lock()
            .unwrap()
            .tokens
            .values()
            .next()
            .unwrap()
            .token
            .rotation,
        0
    );
}

#[tokio::test]
async fn rotates_on_schedule_and_requeues_for_the_next_one() {
    let (cluster, api) = world();
    let mut tt = resource(vec![TokenScope::TokensRead]);
    tt.spec.rotation = Some(RotationPolicy {
        every: Some("1h".into()),
        before_expiry: None,
    });
    tt.spec.expiry = Some(Expiry {
        after: Some("24h".into()),
        at: None,
    });
    let now = Timestamp::now();
    let wait = apply(&tt, &cluster, &api, now).await.unwrap();
    assert!(
        wait <= std::time::Duration::from_secs(3600)
            && wait >= std::time::Duration::from_secs(3590),
        "{wait:?}"
    );
    let next: Timestamp = cluster
        .state
        .lock()
        .unwrap()
        .status
        .clone()
        .unwrap()
        .next_rotation
        .unwrap()
        .parse()
        .unwrap();
    let in_an_hour = now + SignedDuration::from_hours(1);
    assert!(
        next.duration_since(in_an_hour).abs() < SignedDuration::from_secs(10),
        "{next} vs {in_an_hour}"
    );
    // Just before it is due, the wait is exactly what is left.
    let almost = next - SignedDuration::from_secs(10);
    let wait = apply(&stored(&tt, &cluster), &cluster, &api, almost)
        .await
        .unwrap();
    assert_eq!(wait, std::time::Duration::from_secs(10));
    let first = secret_in_cluster(&cluster).unwrap();
    // An hour later the rotation is due.
    let later = now + SignedDuration::from_mins(61);
    apply(&stored(&tt, &cluster), &cluster, &api, later)
        .await
        .unwrap();
    let second = secret_in_cluster(&cluster).unwrap();
    assert_ne!(first, second);
    assert_converged(&cluster, &api);
    let status = cluster.state.lock().unwrap().status.clone().unwrap();
    assert_eq!(status.rotation, Some(1));
    assert!(
        cluster
            .state
            .lock()
            .unwrap()
            .events
            .contains(&"Rotated".to_owned())
    );
    // The rotation renewed the lifetime.
    let expires: Timestamp = status.expires_at.unwrap().parse().unwrap();
    assert!(expires > later + SignedDuration::from_hours(23));
}

#[tokio::test]
async fn a_deleted_or_edited_secret_is_repaired_with_a_new_secret() {
    let (cluster, api) = world();
    let tt = resource(vec![TokenScope::TokensRead]);
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    let original = secret_in_cluster(&cluster).unwrap();

    cluster.state.lock().unwrap().secret = None;
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let repaired = secret_in_cluster(&cluster).unwrap();
    assert_ne!(
        repaired, original,
        "a deleted Secret gets a fresh secret, since the old may have leaked"
    );
    assert_converged(&cluster, &api);

    cluster
        .state
        .lock()
        .unwrap()
        .secret
        .as_mut()
        .unwrap()
        .data
        .as_mut()
        .unwrap()
        .insert("token".into(), ByteString(b"tok_live_edited".to_vec()));
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_ne!(secret_in_cluster(&cluster).unwrap(), "tok_live_edited");
    assert_converged(&cluster, &api);
    let events = cluster.state.lock().unwrap().events.clone();
    assert_eq!(events, ["Issued", "Repaired", "Repaired"]);
}

#[tokio::test]
async fn new_scopes_get_a_new_token_and_the_old_one_is_revoked_after_grace() {
    let (cluster, api) = world();
    let mut tt = resource(vec![TokenScope::TokensRead]);
    tt.spec.grace_period = Some("10m".into());
    let now = Timestamp::now();
    apply(&tt, &cluster, &api, now).await.unwrap();
    let old = cluster
        .state
        .lock()
        .unwrap()
        .status
        .clone()
        .unwrap()
        .token_id
        .unwrap();

    tt.spec.scopes = vec![TokenScope::TokensRead, TokenScope::AuditRead];
    let wait = apply(&stored(&tt, &cluster), &cluster, &api, now)
        .await
        .unwrap();
    let status = cluster.state.lock().unwrap().status.clone().unwrap();
    let new = status.token_id.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(status.pending_revocations[0].token_id, old);
    assert_eq!(
        api.active(),
        {
            let mut v = vec![new.clone(), old.clone()];
            v.sort();
            v
        },
        "the old token works through the grace period"
    );
    assert!(
        wait <= std::time::Duration::from_secs(600),
        "requeued for the revocation: {wait:?}"
    );
    assert_converged(&cluster, &api);

    apply(
        &stored(&tt, &cluster),
        &cluster,
        &api,
        now + SignedDuration::from_mins(11),
    )
    .await
    .unwrap();
    assert_eq!(api.active(), [new]);
    assert!(
        cluster
            .state
            .lock()
            .unwrap()
            .status
            .clone()
            .unwrap()
            .pending_revocations
            .is_empty()
    );
}

#[tokio::test]
async fn deletion_revokes_unless_retained() {
    let (cluster, api) = world();
    let tt = resource(vec![TokenScope::TokensRead]);
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    cleanup(&stored(&tt, &cluster), &cluster, &api)
        .await
        .unwrap();
    assert!(api.active().is_empty());

    let (cluster, api) = world();
    let mut tt = resource(vec![TokenScope::TokensRead]);
    tt.spec.deletion_policy = crate::crd::DeletionPolicy::Retain;
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    cleanup(&stored(&tt, &cluster), &cluster, &api)
        .await
        .unwrap();
    assert_eq!(api.active().len(), 1);
}

#[tokio::test]
async fn a_secret_the_operator_does_not_own_is_never_overwritten() {
    let (cluster, api) = world();
    let tt = resource(vec![TokenScope::TokensRead]);
    let foreign = k8s_openapi::api::core::v1::Secret {
        metadata: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            name: Some("ci".into()),
            ..Default::default()
        },
        ..Default::default()
    };
    cluster.state.lock().unwrap().secret = Some(foreign.clone());
    let err = apply(&tt, &cluster, &api, Timestamp::now())
        .await
        .unwrap_err();
    assert_eq!(err.reason(), "SecretConflict");
    assert_eq!(cluster.state.lock().unwrap().secret, Some(foreign));
    assert!(
        api.active().is_empty(),
        "no token issued for a Secret it cannot write"
    );
}

/// A resource, its world, and the change to reconcile (from its stored state).
type Scenario = (
    TookenToken,
    FakeCluster,
    FakeTooken,
    Box<dyn Fn(&TookenToken) -> TookenToken>,
);
type Setup = dyn Fn() -> Scenario;

/// `tt` issued in a fresh world, then `change` to reconcile.
fn issued_then(
    tt: TookenToken,
    change: impl Fn(&TookenToken) -> TookenToken + 'static,
) -> Scenario {
    let (cluster, api) = world();
    futures::executor::block_on(apply(&tt, &cluster, &api, Timestamp::now())).unwrap();
    (tt, cluster, api, Box::new(change))
}

/// Nothing issued yet: the first reconcile issues.
fn fresh(tt: TookenToken) -> Scenario {
    let (cluster, api) = world();
    (tt, cluster, api, Box::new(TookenToken::clone))
}

fn new_scopes(tt: &TookenToken) -> TookenToken {
    let mut tt = tt.clone();
    tt.spec.scopes = vec![TokenScope::TokensWrite];
    tt
}

/// Crashes the scenario at every step, and its first retry at every step again (before and
/// after each effect), each retry a second later, then lets it finish.
async fn crash_twice_everywhere(setup: &Setup, at: Timestamp) {
    let (tt, cluster, api, change) = setup();
    let changed = change(&stored(&tt, &cluster));
    let start = cluster.steps.lock().unwrap().count;
    run(&changed, &cluster, &api, at).await;
    // A retry can take a few more steps than a clean run (reading a replayed token again).
    let steps = cluster.steps.lock().unwrap().count - start + 3;
    for first in 1..=steps {
        for second in 1..=steps {
            for (c1, c2) in [
                (Crash::Before, Crash::After),
                (Crash::After, Crash::After),
                (Crash::After, Crash::Before),
            ] {
                let (tt, cluster, api, change) = setup();
                let changed = change(&stored(&tt, &cluster));
                let base = cluster.steps.lock().unwrap().count;
                cluster.steps.lock().unwrap().crash_at = Some((base + first, c1));
                let crashed = apply(&stored(&changed, &cluster), &cluster, &api, at).await;
                if crashed.is_err() {
                    let base = cluster.steps.lock().unwrap().count;
                    cluster.steps.lock().unwrap().crash_at = Some((base + second, c2));
                    let later = at + SignedDuration::from_secs(5);
                    let _ = apply(&stored(&changed, &cluster), &cluster, &api, later).await;
                }
                cluster.steps.lock().unwrap().crash_at = None;
                run(&changed, &cluster, &api, at + SignedDuration::from_secs(10)).await;
                assert_converged(&cluster, &api);
            }
        }
    }
}

/// Crashes the scenario at every step (before and after each effect), then lets it finish.
async fn crash_everywhere(setup: impl Fn() -> Scenario, at: Timestamp) {
    // How many steps a clean run takes.
    let (tt, cluster, api, change) = setup();
    let changed = change(&stored(&tt, &cluster));
    let start = cluster.steps.lock().unwrap().count;
    run(&changed, &cluster, &api, at).await;
    let steps = cluster.steps.lock().unwrap().count - start;
    assert!(steps >= 3, "{steps}");
    for step in 1..=steps {
        for crash in [Crash::Before, Crash::After] {
            let (tt, cluster, api, change) = setup();
            let changed = change(&stored(&tt, &cluster));
            let base = cluster.steps.lock().unwrap().count;
            cluster.steps.lock().unwrap().crash_at = Some((base + step, crash));
            run(&changed, &cluster, &api, at).await;
            assert_converged(&cluster, &api);
        }
    }
}

#[tokio::test]
async fn a_crash_at_any_step_of_issuing_leaves_no_duplicate_or_orphan() {
    crash_everywhere(
        || fresh(resource(vec![TokenScope::TokensRead])),
        Timestamp::now(),
    )
    .await;
}

#[tokio::test]
async fn a_crash_at_any_step_of_rotating_leaves_no_duplicate_or_orphan() {
    crash_everywhere(
        || issued_then(hourly(), TookenToken::clone),
        Timestamp::now() + SignedDuration::from_hours(2),
    )
    .await;
}

#[tokio::test]
async fn a_crash_at_any_step_of_a_scope_change_leaves_no_duplicate_or_orphan() {
    crash_everywhere(
        || issued_then(resource(vec![TokenScope::TokensRead]), new_scopes),
        Timestamp::now(),
    )
    .await;
}

#[tokio::test]
async fn a_crash_at_any_step_of_repairing_a_deleted_secret_leaves_no_duplicate_or_orphan() {
    crash_everywhere(
        || {
            let (cluster, api) = world();
            let tt = resource(vec![TokenScope::TokensRead]);
            futures::executor::block_on(apply(&tt, &cluster, &api, Timestamp::now())).unwrap();
            cluster.state.lock().unwrap().secret = None;
            (tt, cluster, api, Box::new(|tt: &TookenToken| tt.clone()))
        },
        Timestamp::now(),
    )
    .await;
}

fn last_event(cluster: &FakeCluster) -> Option<String> {
    cluster.state.lock().unwrap().events.last().cloned()
}

fn hourly() -> TookenToken {
    let mut tt = resource(vec![TokenScope::TokensRead]);
    tt.spec.rotation = Some(RotationPolicy {
        every: Some("1h".into()),
        before_expiry: None,
    });
    tt
}

/// The run that left `t109` at `ApiRefused` for 24 hours: the create's reply is lost, then the
/// rotation that replaces its unknown secret is lost too, and the retry comes later.
#[tokio::test]
async fn a_lost_issue_then_a_lost_rotation_never_reuse_a_key_with_another_body() {
    let (cluster, api) = world();
    let tt = hourly();
    let now = Timestamp::now();
    cluster.steps.lock().unwrap().crash_on = Some(("create_token", Crash::After));
    assert!(apply(&tt, &cluster, &api, now).await.is_err());
    cluster.steps.lock().unwrap().crash_on = Some(("rotate_token", Crash::After));
    let later = now + SignedDuration::from_secs(7);
    assert!(
        apply(&stored(&tt, &cluster), &cluster, &api, later)
            .await
            .is_err()
    );
    let much_later = now + SignedDuration::from_mins(3);
    apply(&stored(&tt, &cluster), &cluster, &api, much_later)
        .await
        .expect("the retry succeeds");
    assert!(api.state.lock().unwrap().refused_keys.is_empty());
    assert_converged(&cluster, &api);
    assert_eq!(api.active().len(), 1, "one token, however many crashes");
}

#[tokio::test]
async fn two_crashes_at_any_steps_of_issuing_leave_one_working_token() {
    crash_twice_everywhere(
        &|| {
            let (cluster, api) = world();
            (
                hourly(),
                cluster,
                api,
                Box::new(|tt: &TookenToken| tt.clone()),
            )
        },
        Timestamp::now(),
    )
    .await;
}

#[tokio::test]
async fn two_crashes_at_any_steps_of_issuing_with_a_lifetime_leave_one_working_token() {
    crash_twice_everywhere(
        &|| {
            let mut tt = hourly();
            tt.spec.expiry = Some(Expiry {
                after: Some("24h".into()),
                at: None,
            });
            fresh(tt)
        },
        Timestamp::now(),
    )
    .await;
}

#[tokio::test]
async fn two_crashes_at_any_steps_of_a_scheduled_rotation_leave_one_working_token() {
    crash_twice_everywhere(
        &|| issued_then(hourly(), TookenToken::clone),
        Timestamp::now() + SignedDuration::from_hours(2),
    )
    .await;
}

#[tokio::test]
async fn two_crashes_at_any_steps_of_a_scope_change_leave_one_working_token() {
    crash_twice_everywhere(&|| issued_then(hourly(), new_scopes), Timestamp::now()).await;
}

/// A key an older operator used with a body that depended on the time: the API refuses it, and
/// the operator adopts the token that key made instead of issuing a second one.
#[tokio::test]
async fn a_refused_create_key_adopts_the_token_it_made() {
    let (cluster, api) = world();
    let tt = hourly();
    let key = crate::requests::issue_key(&tt, &format!("{:?}", [TokenScope::TokensRead]), None);
    let older = tooken_contract::tokens::CreateTokenRequest {
        name: crate::requests::token_name(&tt),
        scopes: vec![tooken_contract::Scope::TokensRead],
        expires_at: Some(Some(Timestamp::now() + SignedDuration::from_hours(48))),
        name_prefix: None,
        labels: Default::default(),
    };
    use crate::tooken_api::TookenApi;
    let made = api.create_token(&older, &key).await.unwrap().token.id;
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_eq!(api.state.lock().unwrap().refused_keys, [key]);
    assert_eq!(
        api.active(),
        std::slice::from_ref(&made),
        "adopted, not duplicated"
    );
    assert_converged(&cluster, &api);
    let status = cluster.state.lock().unwrap().status.clone().unwrap();
    assert_eq!(status.token_id.as_deref(), Some(made.as_str()));
}

#[tokio::test]
async fn a_rotation_through_the_api_is_healed_by_the_next_reconcile() {
    let (cluster, api) = world();
    let tt = hourly();
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    let id = api.active()[0].clone();
    let before = secret_in_cluster(&cluster).unwrap();
    api.rotate_out_of_band(&id);
    assert_eq!(
        api.verify(&before),
        None,
        "the old secret died with the rotation"
    );
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_converged(&cluster, &api);
    assert_eq!(
        api.active(),
        [id],
        "the same token, with a secret the Secret holds"
    );
    assert_eq!(last_event(&cluster).as_deref(), Some("Healed"));
    assert_eq!(
        cluster
            .state
            .lock()
            .unwrap()
            .status
            .clone()
            .unwrap()
            .rotation,
        Some(2),
        "the API's rotation, then the operator's"
    );
}

#[tokio::test]
async fn a_revocation_through_the_api_is_healed_with_a_new_token() {
    let (cluster, api) = world();
    let tt = hourly();
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    let old = api.active()[0].clone();
    api.revoke_out_of_band(&old);
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_converged(&cluster, &api);
    assert_ne!(api.active(), [old]);
    assert_eq!(last_event(&cluster).as_deref(), Some("Reissued"));
}

#[tokio::test]
async fn tokens_a_policy_no_longer_allows_are_revoked_once_and_replaced_once_allowed() {
    let (cluster, api) = world();
    let tt = resource(vec![TokenScope::TokensRead]);
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    // A scope change leaves the replaced token in its grace period: it goes too.
    let tt = new_scopes(&tt);
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let held = api.active();
    assert_eq!(held.len(), 2, "the token and the one it replaced");

    withdraw(&stored(&tt, &cluster), &cluster, &api, "no longer allowed")
        .await
        .unwrap();
    assert!(api.active().is_empty(), "both revoked");
    let events = cluster.state.lock().unwrap().events.clone();
    assert_eq!(
        events[events.len() - 2..],
        ["RevokedByPolicy", "RevokedByPolicy"]
    );
    // Refused again: nothing left to revoke, nothing reported again.
    withdraw(&stored(&tt, &cluster), &cluster, &api, "no longer allowed")
        .await
        .unwrap();
    assert_eq!(cluster.state.lock().unwrap().events, events);

    // Allowed again: the next apply finds its token revoked and issues a new one.
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_converged(&cluster, &api);
    assert!(held.iter().all(|id| !api.active().contains(id)));
    assert_eq!(last_event(&cluster).as_deref(), Some("Reissued"));
}

#[tokio::test]
async fn a_verify_that_finds_nothing_writes_nothing() {
    let (cluster, api) = world();
    let tt = hourly();
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    let steps = cluster.steps.lock().unwrap().log.len();
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let log = cluster.steps.lock().unwrap().log[steps..].to_vec();
    assert_eq!(log, ["get_secret", "get_token"], "reads only");
}

fn annotated(tt: &TookenToken, value: &str) -> TookenToken {
    let mut tt = tt.clone();
    tt.metadata
        .annotations
        .get_or_insert_default()
        .insert(crate::crd::ROTATE_AT_ANNOTATION.into(), value.into());
    tt
}

fn rotation(cluster: &FakeCluster) -> Option<i64> {
    cluster.state.lock().unwrap().status.clone()?.rotation
}

#[tokio::test]
async fn each_new_rotate_at_value_rotates_exactly_once() {
    let (cluster, api) = world();
    let tt = annotated(&hourly(), "2026-12-01T10:00:00Z");
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_eq!(
        rotation(&cluster),
        Some(0),
        "a value present at issue asks for nothing"
    );
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(rotation(&cluster), Some(0));

    let tt = annotated(&tt, "2026-12-01T11:00:00Z");
    let first = secret_in_cluster(&cluster).unwrap();
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(rotation(&cluster), Some(1));
    assert_ne!(secret_in_cluster(&cluster).unwrap(), first);
    assert_converged(&cluster, &api);
    assert_eq!(last_event(&cluster).as_deref(), Some("Rotated"));
    let status = cluster.state.lock().unwrap().status.clone().unwrap();
    assert_eq!(
        status.rotate_at_handled.as_deref(),
        Some("2026-12-01T11:00:00Z")
    );
    // The same value again (a resync, a restart of the operator) does nothing.
    apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(rotation(&cluster), Some(1));
}

/// The Secret was written but the status was not: the retry replays the rotation it asked for
/// and keeps what the Secret holds, instead of rotating a second time.
#[tokio::test]
async fn a_rotate_at_value_is_handled_once_across_a_crash_before_the_status() {
    for crash in [Crash::Before, Crash::After] {
        let (cluster, api) = world();
        let tt = hourly();
        apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
        let tt = annotated(&tt, "now");
        cluster.steps.lock().unwrap().crash_on = Some(("apply_status", crash));
        let _ = apply(&stored(&tt, &cluster), &cluster, &api, Timestamp::now()).await;
        cluster.steps.lock().unwrap().crash_on = None;
        run(&tt, &cluster, &api, Timestamp::now()).await;
        assert_converged(&cluster, &api);
        let token = api.active()[0].clone();
        assert_eq!(
            api.state.lock().unwrap().tokens[&token].token.rotation,
            1,
            "rotated exactly once ({crash:?})"
        );
    }
}

#[tokio::test]
async fn a_crash_at_any_step_of_a_requested_rotation_leaves_one_working_token() {
    crash_everywhere(
        || issued_then(hourly(), |tt| annotated(tt, "please")),
        Timestamp::now(),
    )
    .await;
}
