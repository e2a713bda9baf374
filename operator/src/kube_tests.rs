//! The requests the operator sends to the Kubernetes API, checked against a `tower-test`
//! double of the API server (after kube-rs/controller-rs's `ApiServerVerifier`).

use crate::cluster::KubeCluster;
use crate::crd::{TokenScope, TookenToken, TookenTokenSpec};
use crate::fake::world;
use crate::leader::Elector;
use crate::reconcile::{apply, cleanup};
use http::{Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use kube::api::PartialObjectMeta;
use kube::client::Body;
use kube::runtime::events::Reporter;
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    query: String,
    content_type: String,
    body: Value,
}

/// A fake API server: answers each request with `respond` and records it.
fn api_server(
    respond: impl Fn(&Seen) -> (StatusCode, Value) + Send + 'static,
) -> (kube::Client, Arc<Mutex<Vec<Seen>>>) {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Some((request, send)) = handle.next_request().await {
            let (parts, body) = request.into_parts();
            let bytes = http_body_util::BodyExt::collect(body)
                .await
                .unwrap()
                .to_bytes();
            let request = Seen {
                method: parts.method.to_string(),
                path: parts.uri.path().to_owned(),
                query: parts.uri.query().unwrap_or_default().to_owned(),
                content_type: parts
                    .headers
                    .get("content-type")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default(),
                body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            };
            let (status, answer) = respond(&request);
            log.lock().unwrap().push(request);
            send.send_response(
                Response::builder()
                    .status(status)
                    .body(Body::from(serde_json::to_vec(&answer).unwrap()))
                    .unwrap(),
            );
        }
    });
    (kube::Client::new(service, "default"), seen)
}

fn not_found() -> (StatusCode, Value) {
    (
        StatusCode::NOT_FOUND,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404, "message": "not found"}),
    )
}

/// Echoes writes back (as the API server returns the whole object), and 404s reads.
fn echo(request: &Seen) -> (StatusCode, Value) {
    match request.method.as_str() {
        "GET" => not_found(),
        _ if request.path.ends_with("/status") => {
            let mut object = serde_json::to_value(resource()).unwrap();
            object["status"] = request.body["status"].clone();
            (StatusCode::OK, object)
        }
        _ => (StatusCode::OK, request.body.clone()),
    }
}

fn resource() -> TookenToken {
    let mut tt = TookenToken::new(
        "ci",
        TookenTokenSpec {
            scopes: vec![TokenScope::TokensRead],
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
    tt.metadata.generation = Some(3);
    tt
}

fn kube_cluster(client: kube::Client) -> KubeCluster {
    let reporter = Reporter {
        controller: "tooken-operator".into(),
        instance: None,
    };
    KubeCluster::new(client, reporter, Arc::default())
}

fn calls(seen: &Arc<Mutex<Vec<Seen>>>) -> Vec<String> {
    seen.lock()
        .unwrap()
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect()
}

#[tokio::test]
async fn issuing_reads_the_secret_applies_it_then_the_status_then_records_an_event() {
    let (client, seen) = api_server(echo);
    let (_, api) = world();
    apply(&resource(), &kube_cluster(client), &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(
        calls(&seen),
        [
            "GET /api/v1/namespaces/apps/secrets/ci",
            "PATCH /api/v1/namespaces/apps/secrets/ci",
            "PATCH /apis/tooken.io/v1alpha1/namespaces/apps/tookentokens/ci/status",
            "POST /apis/events.k8s.io/v1/namespaces/apps/events",
        ]
    );
    let seen = seen.lock().unwrap();
    let secret = &seen[1];
    assert_eq!(secret.content_type, "application/apply-patch+yaml");
    assert!(
        secret.query.contains("fieldManager=tooken-operator")
            && secret.query.contains("force=true"),
        "{}",
        secret.query
    );
    let token = api.active()[0].clone();
    assert_eq!(
        secret.body["metadata"]["ownerReferences"][0]["uid"],
        "uid-1"
    );
    assert_eq!(
        secret.body["metadata"]["ownerReferences"][0]["controller"],
        true
    );
    assert_eq!(
        secret.body["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "tooken-operator"
    );
    assert_eq!(
        secret.body["metadata"]["labels"]["tooken.io/token-id"],
        token.as_str()
    );
    assert_eq!(
        secret.body["metadata"]["annotations"]["tooken.io/rotation"],
        "0"
    );
    assert_eq!(secret.body["type"], "Opaque");
    assert!(
        secret.body["data"]["token"].is_string(),
        "base64 token in data"
    );
    let status = &seen[2];
    assert_eq!(status.content_type, "application/apply-patch+yaml");
    assert_eq!(status.body["status"]["tokenId"], token.as_str());
    assert_eq!(status.body["status"]["observedGeneration"], 3);
    assert_eq!(status.body["status"]["conditions"][0]["type"], "Ready");
    assert_eq!(status.body["status"]["conditions"][0]["status"], "True");
    assert_eq!(seen[3].body["reason"], "Issued");
}

#[tokio::test]
async fn a_secret_deleted_behind_its_back_is_rewritten_with_a_rotated_secret() {
    // First run: issue, and keep the status and Secret the operator wrote.
    let (client, seen) = api_server(echo);
    let (_, api) = world();
    apply(&resource(), &kube_cluster(client), &api, Timestamp::now())
        .await
        .unwrap();
    let status: crate::crd::TookenTokenStatus =
        serde_json::from_value(seen.lock().unwrap()[2].body["status"].clone()).unwrap();
    let mut tt = resource();
    tt.status = Some(status);
    // Second run: the Secret is gone (GET answers 404).
    let (client, seen) = api_server(echo);
    apply(&tt, &kube_cluster(client), &api, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(calls(&seen)[1], "PATCH /api/v1/namespaces/apps/secrets/ci");
    let seen = seen.lock().unwrap();
    assert_eq!(
        seen[1].body["metadata"]["annotations"]["tooken.io/rotation"], "1",
        "rotated, not re-used"
    );
    assert_eq!(seen[3].body["reason"], "Repaired");
}

#[tokio::test]
async fn a_foreign_secret_is_not_touched_and_the_status_says_why() {
    let (client, seen) = api_server(|request| match request.method.as_str() {
        "GET" => (
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "ci", "namespace": "apps"}}),
        ),
        _ => (StatusCode::OK, request.body.clone()),
    });
    let (_, api) = world();
    let cluster = kube_cluster(client);
    let err = apply(&resource(), &cluster, &api, Timestamp::now())
        .await
        .unwrap_err();
    crate::reconcile::report_failure(&resource(), &cluster, &err, Timestamp::now()).await;
    assert_eq!(
        calls(&seen),
        [
            "GET /api/v1/namespaces/apps/secrets/ci",
            "PATCH /apis/tooken.io/v1alpha1/namespaces/apps/tookentokens/ci/status"
        ]
    );
    let seen = seen.lock().unwrap();
    let condition = &seen[1].body["status"]["conditions"][0];
    assert_eq!(
        (condition["status"].as_str(), condition["reason"].as_str()),
        (Some("False"), Some("SecretConflict"))
    );
}

#[tokio::test]
async fn a_failure_already_in_the_status_is_not_written_again() {
    let (client, seen) = api_server(echo);
    let cluster = kube_cluster(client);
    let err = crate::reconcile::ReconcileError::NoConnection("no Secret".into());
    let now = Timestamp::now();
    crate::reconcile::report_failure(&resource(), &cluster, &err, now).await;
    let mut tt = resource();
    tt.status =
        Some(serde_json::from_value(seen.lock().unwrap()[0].body["status"].clone()).unwrap());
    assert!(crate::reconcile::reported(&tt, "NoConnection"));
    assert!(!crate::reconcile::reported(&tt, "ApiUnavailable"));
    crate::reconcile::report_failure(&tt, &cluster, &err, now).await;
    assert_eq!(calls(&seen).len(), 1, "the second report writes nothing");
}

#[tokio::test]
async fn a_failed_revocation_shows_as_the_api_being_unavailable() {
    let (client, seen) = api_server(echo);
    let cluster = kube_cluster(client);
    let err = crate::reconcile::ReconcileError::CleanupFailed("connection refused".into());
    crate::reconcile::report_failure(&resource(), &cluster, &err, Timestamp::now()).await;
    let seen = seen.lock().unwrap();
    let condition = &seen[0].body["status"]["conditions"][0];
    assert_eq!(
        (
            condition["status"].as_str(),
            condition["reason"].as_str(),
            condition["message"].as_str()
        ),
        (
            Some("False"),
            Some("ApiUnavailable"),
            Some(
                "the Tooken API is unavailable: revoking on delete failed, will retry: \
                 connection refused"
            )
        )
    );
}

#[tokio::test]
async fn deleting_revokes_and_records_it() {
    let (client, seen) = api_server(echo);
    let (fake_cluster, api) = world();
    let tt = resource();
    apply(&tt, &fake_cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let mut tt = tt;
    tt.status = fake_cluster.state.lock().unwrap().status.clone();
    cleanup(&tt, &kube_cluster(client), &api).await.unwrap();
    assert!(api.active().is_empty());
    assert_eq!(
        calls(&seen),
        ["POST /apis/events.k8s.io/v1/namespaces/apps/events"]
    );
    assert_eq!(seen.lock().unwrap()[0].body["reason"], "Revoked");
}

fn lease(holder: &str, renewed: Timestamp) -> Value {
    json!({
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
        "metadata": {"name": "tooken-operator", "namespace": "tooken", "resourceVersion": "7"},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15,
                 "renewTime": renewed.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(), "leaseTransitions": 2}
    })
}

fn elector(client: kube::Client) -> Elector {
    Elector {
        api: kube::Api::namespaced(client, "tooken"),
        name: "tooken-operator".into(),
        identity: "me".into(),
        lease_seconds: 15,
    }
}

#[tokio::test]
async fn leader_election_creates_respects_and_takes_over_leases() {
    // No lease yet: create one naming us.
    let (client, seen) = api_server(echo);
    assert!(elector(client).try_acquire(Timestamp::now()).await.unwrap());
    assert_eq!(
        calls(&seen),
        [
            "GET /apis/coordination.k8s.io/v1/namespaces/tooken/leases/tooken-operator",
            "POST /apis/coordination.k8s.io/v1/namespaces/tooken/leases"
        ]
    );
    assert_eq!(seen.lock().unwrap()[1].body["spec"]["holderIdentity"], "me");

    // Someone else holds a fresh lease: stand by, write nothing.
    let fresh = lease("other", Timestamp::now());
    let (client, seen) = api_server(move |_| (StatusCode::OK, fresh.clone()));
    assert!(!elector(client).try_acquire(Timestamp::now()).await.unwrap());
    assert_eq!(calls(&seen).len(), 1);

    // Their lease ran out: take it over, keeping the resourceVersion for a safe replace.
    let stale = lease(
        "other",
        Timestamp::now() - jiff::SignedDuration::from_secs(60),
    );
    let (client, seen) = api_server(move |request| match request.method.as_str() {
        "GET" => (StatusCode::OK, stale.clone()),
        _ => (StatusCode::OK, request.body.clone()),
    });
    assert!(elector(client).try_acquire(Timestamp::now()).await.unwrap());
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].method, "PUT");
    assert_eq!(seen[1].body["metadata"]["resourceVersion"], "7");
    assert_eq!(seen[1].body["spec"]["holderIdentity"], "me");
    assert_eq!(seen[1].body["spec"]["leaseTransitions"], 3);
}

#[tokio::test]
async fn losing_a_race_for_the_lease_is_not_an_error() {
    let (client, _) = api_server(|request| match request.method.as_str() {
        "GET" => not_found(),
        _ => (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "exists"}),
        ),
    });
    assert!(!elector(client).try_acquire(Timestamp::now()).await.unwrap());
}

/// The Secret a stateful API server holds.
type StoredSecret = Arc<Mutex<Option<Value>>>;

/// An API server that remembers the Secret last applied (giving each write a new
/// resourceVersion) and returns it on GET.
fn stateful_api_server() -> (kube::Client, Arc<Mutex<Vec<Seen>>>, StoredSecret) {
    let stored: StoredSecret = Arc::default();
    let kept = stored.clone();
    let (client, seen) = api_server(move |request| {
        let is_secret = request.path.contains("/secrets/");
        match request.method.as_str() {
            "GET" if is_secret => match stored.lock().unwrap().clone() {
                Some(secret) => (StatusCode::OK, secret),
                None => not_found(),
            },
            "PATCH" if is_secret => {
                let mut secret = request.body.clone();
                let version = stored.lock().unwrap().as_ref().map_or(1, |s| {
                    s["metadata"]["resourceVersion"]
                        .as_str()
                        .unwrap()
                        .parse::<u64>()
                        .unwrap()
                        + 1
                });
                secret["metadata"]["resourceVersion"] = json!(version.to_string());
                *stored.lock().unwrap() = Some(secret.clone());
                (StatusCode::OK, secret)
            }
            _ => echo(request),
        }
    });
    (client, seen, kept)
}

/// The operator's Secret watch showing `secret` at its version.
fn watch_shows(cluster: &KubeCluster, secret: &Value) {
    let secret: Secret = serde_json::from_value(secret.clone()).unwrap();
    cluster
        .secrets
        .watched(&kube::runtime::watcher::Event::Apply(PartialObjectMeta {
            types: None,
            metadata: secret.metadata,
            _phantom: Default::default(),
        }));
}

/// Runs reconcile twice on one API server: once to issue, then with `change` applied to the
/// resource (carrying the status the first run wrote). Returns the requests of the second run.
async fn second_run(
    change: impl Fn(&mut TookenToken),
    at: Timestamp,
) -> (Vec<Seen>, crate::fake::FakeTooken) {
    let (client, seen, _) = stateful_api_server();
    let (_, api) = world();
    let cluster = kube_cluster(client);
    apply(&resource(), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let status = seen.lock().unwrap()[2].body["status"].clone();
    let mut tt = resource();
    tt.status = Some(serde_json::from_value(status).unwrap());
    change(&mut tt);
    let first_run = seen.lock().unwrap().len();
    apply(&tt, &cluster, &api, at).await.unwrap();
    let second = seen.lock().unwrap()[first_run..].to_vec();
    (second, api)
}

#[tokio::test]
async fn nothing_due_means_no_writes_at_all() {
    let (seen, _) = second_run(|_| {}, Timestamp::now()).await;
    let calls: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(calls, ["GET /api/v1/namespaces/apps/secrets/ci"]);
}

/// Issues once against a stateful API server; returns the cluster, the resource with the
/// status written, and the stored Secret.
async fn issued() -> (
    KubeCluster,
    TookenToken,
    crate::fake::FakeTooken,
    Arc<Mutex<Vec<Seen>>>,
    Value,
) {
    let (client, seen, stored) = stateful_api_server();
    let (_, api) = world();
    let cluster = kube_cluster(client);
    apply(&resource(), &cluster, &api, Timestamp::now())
        .await
        .unwrap();
    let mut tt = resource();
    tt.status =
        Some(serde_json::from_value(seen.lock().unwrap()[2].body["status"].clone()).unwrap());
    seen.lock().unwrap().clear();
    let secret = stored.lock().unwrap().clone().unwrap();
    (cluster, tt, api, seen, secret)
}

#[tokio::test]
async fn a_cached_secret_as_written_needs_no_request_at_all() {
    let (cluster, tt, api, seen, secret) = issued().await;
    watch_shows(&cluster, &secret);
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_eq!(calls(&seen), Vec::<String>::new());
}

#[tokio::test]
async fn a_cached_secret_at_another_version_is_read_fresh_before_acting() {
    let (cluster, tt, api, seen, mut secret) = issued().await;
    // Someone edited it: the watch shows a version the operator never read or wrote.
    secret["metadata"]["resourceVersion"] = json!("99");
    watch_shows(&cluster, &secret);
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_eq!(calls(&seen), ["GET /api/v1/namespaces/apps/secrets/ci"]);
}

#[tokio::test]
async fn a_cached_secret_whose_labels_differ_from_the_spec_is_read_fresh_and_rewritten() {
    let (cluster, mut tt, api, seen, secret) = issued().await;
    watch_shows(&cluster, &secret);
    tt.spec
        .secret
        .labels
        .insert("team".into(), "payments".into());
    apply(&tt, &cluster, &api, Timestamp::now()).await.unwrap();
    assert_eq!(
        calls(&seen),
        [
            "GET /api/v1/namespaces/apps/secrets/ci",
            "PATCH /api/v1/namespaces/apps/secrets/ci"
        ]
    );
    let seen = seen.lock().unwrap();
    assert_eq!(seen[1].body["metadata"]["labels"]["team"], "payments");
    assert_eq!(
        seen[1].body["data"], secret["data"],
        "the same value, not a rotation"
    );
}

#[tokio::test]
async fn a_due_rotation_rewrites_the_secret_with_the_next_generation() {
    let (seen, api) = second_run(
        |tt| {
            tt.spec.rotation = Some(crate::crd::RotationPolicy {
                every: Some("1h".into()),
                before_expiry: None,
            })
        },
        Timestamp::now() + jiff::SignedDuration::from_hours(2),
    )
    .await;
    let calls: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(
        calls,
        [
            "GET /api/v1/namespaces/apps/secrets/ci",
            "PATCH /api/v1/namespaces/apps/secrets/ci",
            "PATCH /apis/tooken.io/v1alpha1/namespaces/apps/tookentokens/ci/status",
            "POST /apis/events.k8s.io/v1/namespaces/apps/events",
        ]
    );
    assert_eq!(
        seen[1].body["metadata"]["annotations"]["tooken.io/rotation"],
        "1"
    );
    assert_eq!(seen[2].body["status"]["rotation"], 1);
    assert!(seen[2].body["status"]["nextRotation"].is_string());
    assert_eq!(seen[3].body["reason"], "Rotated");
    assert_eq!(api.active().len(), 1, "the same token, rotated");
}

#[tokio::test]
async fn new_scopes_switch_the_secret_to_a_new_token_and_schedule_the_old_ones_revocation() {
    let (seen, api) = second_run(
        |tt| {
            tt.spec.scopes = vec![TokenScope::TokensRead, TokenScope::AuditRead];
            tt.spec.grace_period = Some("10m".into());
        },
        Timestamp::now(),
    )
    .await;
    let calls: Vec<String> = seen
        .iter()
        .map(|s| format!("{} {}", s.method, s.path))
        .collect();
    assert_eq!(calls[1], "PATCH /api/v1/namespaces/apps/secrets/ci");
    let new_id = seen[2].body["status"]["tokenId"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        seen[1].body["metadata"]["labels"]["tooken.io/token-id"],
        new_id.as_str()
    );
    let pending = &seen[2].body["status"]["pendingRevocations"];
    assert_eq!(pending.as_array().unwrap().len(), 1);
    assert_ne!(pending[0]["tokenId"], new_id.as_str());
    assert_eq!(
        seen[2].body["status"]["issuedScopes"],
        json!(["tokens:read", "audit:read"])
    );
    assert_eq!(seen[3].body["reason"], "Reissued");
    assert_eq!(
        api.active().len(),
        2,
        "the old token works until its grace period ends"
    );
}

#[tokio::test]
async fn setup_credentials_creates_a_valid_key_once() {
    let (client, seen) = api_server(echo);
    crate::setup::credentials(
        client,
        "tooken",
        "tooken-credentials",
        "http://tooken-api:8080",
    )
    .await
    .unwrap();
    let first = seen.lock().unwrap()[0].clone();
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/api/v1/namespaces/tooken/secrets");
    use base64::Engine;
    let decode = |field: &str| {
        let encoded = first.body["data"][field].as_str().unwrap();
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(decode("url"), "http://tooken-api:8080");
    tooken_contract::Secret::parse(&decode("apiKey")).expect("a well-formed API key");
    assert!(decode("webhookSecret").starts_with("whsec_") && decode("webhookSecret").len() == 38);

    // An existing Secret (409) is kept, not replaced.
    let (client, seen) = api_server(|_| {
        (
            StatusCode::CONFLICT,
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists", "code": 409, "message": "exists"}),
        )
    });
    crate::setup::credentials(client, "tooken", "tooken-credentials", "http://x")
        .await
        .unwrap();
    assert_eq!(seen.lock().unwrap().len(), 1, "no second write");
}
