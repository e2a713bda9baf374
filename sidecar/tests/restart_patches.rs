//! Receiver mode against a mocked Kubernetes API (`tower-test`): each scenario asserts every
//! request the sidecar makes, in order, with its exact body, and that nothing else is sent.

use http::{Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tooken_contract::signature::{SIGNATURE_HEADER, sign};
use tooken_sidecar::metrics::Metrics;
use tooken_sidecar::receiver::Receiver;
use tooken_sidecar::receiver::restarter::Restarter;
use tooken_sidecar::webhook::routes::routes;
use tooken_sidecar::webhook::{HandleError, Verifier, WebhookState};
use tower_test::mock::{Handle, SendResponse};

const NS: &str = "apps";
const TOKEN: &str = "tok1";
const NOW: &str = "2026-11-26T06:02:14Z";

fn now() -> jiff::Timestamp {
    NOW.parse().unwrap()
}

/// The mocked API server: hands out the sidecar's requests one at a time.
struct ApiServer(Handle<Request<Body>, Response<Body>>);

impl ApiServer {
    /// The next request, which must have this method and path and carry these query pairs.
    async fn expect(
        &mut self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> (Value, SendResponse<Response<Body>>) {
        let (request, send) = self.0.next_request().await.expect("a request");
        assert_eq!(request.method().as_str(), method, "{}", request.uri());
        assert_eq!(request.uri().path(), path);
        let pairs: Vec<(String, String)> = request
            .uri()
            .query()
            .map(|q| {
                q.split('&')
                    .filter_map(|kv| kv.split_once('='))
                    .map(|(k, v)| (k.to_owned(), v.replace("%2F", "/").replace("%3D", "=")))
                    .collect()
            })
            .unwrap_or_default();
        for (key, value) in query {
            assert!(
                pairs.iter().any(|(k, v)| k == key && v == value),
                "{key}={value} missing in {}",
                request.uri()
            );
        }
        if method == "PATCH" {
            assert_eq!(
                request.headers()["content-type"],
                "application/merge-patch+json"
            );
        }
        let body = request.into_body().collect_bytes().await.unwrap();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap()
        };
        (body, send)
    }

    /// Answers the next request, which must match, with `answer`.
    async fn answer(
        &mut self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        answer: Value,
    ) -> Value {
        let (body, send) = self.expect(method, path, query).await;
        respond(send, 200, answer);
        body
    }

    /// Asserts that the sidecar sends nothing more (resolves once its client is dropped).
    async fn done(mut self) {
        if let Some((request, _)) = self.0.next_request().await {
            panic!("unexpected request {} {}", request.method(), request.uri());
        }
    }
}

fn respond(send: SendResponse<Response<Body>>, status: u16, body: Value) {
    let response = Response::builder()
        .status(status)
        .body(Body::from(serde_json::to_vec(&body).unwrap()))
        .unwrap();
    send.send_response(response);
}

fn tooken_tokens(items: Value) -> Value {
    json!({"apiVersion": "tooken.io/v1alpha1", "kind": "TookenTokenList", "metadata": {}, "items": items})
}

fn tooken_token(name: &str, token_id: &str, restart: Value) -> Value {
    json!({
        "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"restartOnRotation": restart, "secret": {"name": format!("{name}-token")}},
        "status": {"tokenId": token_id}
    })
}

fn metadata_list(items: Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items})
}

fn metadata(name: &str, annotations: Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": {"name": name, "namespace": NS, "annotations": annotations}})
}

fn secret(rotation: u64) -> Value {
    metadata(
        "web-token",
        json!({"tooken.io/token-id": TOKEN, "tooken.io/rotation": rotation.to_string()}),
    )
}

fn deployment(name: &str, annotations: Value, paused: bool) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": NS, "uid": "uid-1", "resourceVersion": "10",
                     "annotations": annotations},
        "spec": {"paused": paused, "template": {"metadata": {}, "spec": {"containers": []}}}
    })
}

const TOKENS: &str = "/apis/tooken.io/v1alpha1/namespaces/apps/tookentokens";
const SECRETS: &str = "/api/v1/namespaces/apps/secrets";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/apps/deployments";
const STATEFULSETS: &str = "/apis/apps/v1/namespaces/apps/statefulsets";
const DAEMONSETS: &str = "/apis/apps/v1/namespaces/apps/daemonsets";
const SELECTOR: (&str, &str) = ("labelSelector", "tooken.io/token-id=tok1");

/// The listing every attempt starts with: one TookenToken restarting Deployment `web`, one
/// for another token, the Secret at `rotation`, and workloads of which only Deployment
/// `worker` is annotated for that Secret.
async fn discovery(api: &mut ApiServer, rotation: u64) {
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([
            tooken_token("web", TOKEN, json!([{"kind": "Deployment", "name": "web"}])),
            tooken_token(
                "other",
                "tok2",
                json!([{"kind": "Deployment", "name": "other"}])
            ),
        ])),
    )
    .await;
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(rotation)])),
    )
    .await;
    api.answer(
        "GET",
        DEPLOYMENTS,
        &[],
        metadata_list(json!([
            metadata("web", json!({})),
            metadata(
                "worker",
                json!({"tooken.io/restart-on-rotation": "web-token"})
            ),
        ])),
    )
    .await;
    api.answer("GET", STATEFULSETS, &[], metadata_list(json!([])))
        .await;
    api.answer(
        "GET",
        DAEMONSETS,
        &[],
        metadata_list(json!([metadata(
            "agent",
            json!({"tooken.io/restart-on-rotation": "another-secret"})
        ),])),
    )
    .await;
}

/// The patch `kubectl rollout restart` would send (its time to the millisecond), plus the
/// rotation record.
fn restart_patch(marker: &str) -> Value {
    json!({
        "metadata": {"resourceVersion": "10",
                     "annotations": {"tooken.io/restarted-for-rotation": marker}},
        "spec": {"template": {"metadata": {"annotations": {
            "kubectl.kubernetes.io/restartedAt": "2026-11-26T06:02:14.000Z"}}}}
    })
}

fn mock() -> (kube::Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (kube::Client::new(service, "default"), ApiServer(handle))
}

fn restarter(client: kube::Client) -> Arc<Restarter> {
    Arc::new(Restarter {
        client,
        namespace: Some(NS.into()),
        secret_wait: Duration::from_secs(2),
        clock: now,
        metrics: Arc::new(Metrics::default()),
    })
}

#[tokio::test(start_paused = true)]
async fn a_rotation_patches_each_target_once_and_skips_one_already_restarted() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let attempt = tokio::spawn({
        let restarter = restarter.clone();
        async move { restarter.restart_for(TOKEN, 2, Instant::now()).await }
    });
    discovery(&mut api, 2).await;
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        &[],
        deployment("web", json!({}), false),
    )
    .await;
    let patch = api
        .answer(
            "PATCH",
            &format!("{DEPLOYMENTS}/web"),
            &[],
            deployment("web", json!({}), false),
        )
        .await;
    assert_eq!(patch, restart_patch("tok1:2"));
    // `worker` was restarted for this rotation before (another event, or before the sidecar
    // itself restarted): its annotation says so, and it is not patched again.
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/worker"),
        &[],
        deployment(
            "worker",
            json!({"tooken.io/restarted-for-rotation": "tok2:5,tok1:2"}),
            false,
        ),
    )
    .await;
    let handled = attempt.await.unwrap().unwrap();
    assert_eq!(
        handled.message,
        "rotation 2 of token tok1: already_restarted: 1, restarted: 1"
    );
    let metrics = restarter.metrics.render();
    assert!(
        metrics
            .contains(r#"tooken_sidecar_restarts_total{kind="Deployment",outcome="restarted"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("tooken_sidecar_event_to_patch_seconds_count 1"),
        "{metrics}"
    );
    drop(restarter);
    api.done().await;
}

#[tokio::test(start_paused = true)]
async fn the_patch_waits_until_the_secret_holds_the_rotation() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let attempt =
        tokio::spawn(async move { restarter.restart_for(TOKEN, 3, Instant::now()).await });
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([tooken_token(
            "web",
            TOKEN,
            json!([{"kind": "Deployment", "name": "web"}])
        ),])),
    )
    .await;
    // The operator has not written rotation 3 yet; the sidecar lists again until it has.
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(2)])),
    )
    .await;
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(3)])),
    )
    .await;
    for path in [DEPLOYMENTS, STATEFULSETS, DAEMONSETS] {
        api.answer("GET", path, &[], metadata_list(json!([]))).await;
    }
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        &[],
        deployment(
            "web",
            json!({"tooken.io/restarted-for-rotation": "tok1:2"}),
            false,
        ),
    )
    .await;
    let patch = api
        .answer("PATCH", &format!("{DEPLOYMENTS}/web"), &[], json!({}))
        .await;
    assert_eq!(patch, restart_patch("tok1:3"));
    assert!(attempt.await.unwrap().is_ok());
    api.done().await;
}

#[tokio::test(start_paused = true)]
async fn a_secret_that_never_catches_up_is_an_error_and_patches_nothing() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let attempt =
        tokio::spawn(async move { restarter.restart_for(TOKEN, 3, Instant::now()).await });
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([tooken_token(
            "web",
            TOKEN,
            json!([{"kind": "Deployment", "name": "web"}])
        ),])),
    )
    .await;
    // Every list answers rotation 2 until the attempt gives up and drops its client.
    let mut lists = 0;
    while let Some((request, send)) = api.0.next_request().await {
        assert_eq!(
            request.uri().path(),
            SECRETS,
            "only the Secret is listed while waiting"
        );
        lists += 1;
        respond(send, 200, metadata_list(json!([secret(2)])));
    }
    let err = attempt.await.unwrap().unwrap_err();
    assert!(
        matches!(err, HandleError::SecretNotReady(ref why) if why.contains("holds rotation 2")),
        "{err:?}"
    );
    // Listed every 500ms until the 2s wait is over: at 0, 0.5, 1, 1.5 and 2 seconds.
    assert_eq!(lists, 5);
}

#[tokio::test(start_paused = true)]
async fn a_paused_deployment_gets_an_event_instead_of_a_restart() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let attempt =
        tokio::spawn(async move { restarter.restart_for(TOKEN, 2, Instant::now()).await });
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([tooken_token(
            "web",
            TOKEN,
            json!([{"kind": "Deployment", "name": "web"}])
        ),])),
    )
    .await;
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(2)])),
    )
    .await;
    for path in [DEPLOYMENTS, STATEFULSETS, DAEMONSETS] {
        api.answer("GET", path, &[], metadata_list(json!([]))).await;
    }
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        &[],
        deployment("web", json!({}), true),
    )
    .await;
    let event = api
        .answer("POST", "/api/v1/namespaces/apps/events", &[], json!({}))
        .await;
    assert_eq!(event["reason"], "RestartSkipped");
    assert_eq!(event["type"], "Warning");
    assert_eq!(event["involvedObject"]["kind"], "Deployment");
    assert_eq!(event["involvedObject"]["name"], "web");
    assert_eq!(event["involvedObject"]["uid"], "uid-1");
    let handled = attempt.await.unwrap().unwrap();
    assert!(handled.message.contains("paused: 1"), "{}", handled.message);
    api.done().await;
}

#[tokio::test(start_paused = true)]
async fn a_patch_that_loses_a_race_is_recomputed_and_not_repeated() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let attempt =
        tokio::spawn(async move { restarter.restart_for(TOKEN, 2, Instant::now()).await });
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([tooken_token(
            "web",
            TOKEN,
            json!([{"kind": "Deployment", "name": "web"}])
        ),])),
    )
    .await;
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(2)])),
    )
    .await;
    for path in [DEPLOYMENTS, STATEFULSETS, DAEMONSETS] {
        api.answer("GET", path, &[], metadata_list(json!([]))).await;
    }
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        &[],
        deployment("web", json!({}), false),
    )
    .await;
    let (_, send) = api
        .expect("PATCH", &format!("{DEPLOYMENTS}/web"), &[])
        .await;
    respond(
        send,
        409,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure",
        "reason": "Conflict", "code": 409, "message": "the object has been modified"}),
    );
    // Another receiver replica restarted it meanwhile: the fresh read shows that.
    api.answer(
        "GET",
        &format!("{DEPLOYMENTS}/web"),
        &[],
        deployment(
            "web",
            json!({"tooken.io/restarted-for-rotation": "tok1:2"}),
            false,
        ),
    )
    .await;
    let handled = attempt.await.unwrap().unwrap();
    assert!(
        handled.message.contains("already_restarted: 1"),
        "{}",
        handled.message
    );
    api.done().await;
}

fn webhook_state(restarter: Arc<Restarter>, ack_within: Duration) -> Arc<WebhookState> {
    let metrics = restarter.metrics.clone();
    Arc::new(WebhookState {
        verifier: Verifier::new(vec![b"whsec".to_vec()], Duration::from_secs(300), 100),
        handler: Arc::new(Receiver::new(restarter, Duration::from_secs(2), ack_within)),
        metrics,
        body_limit: 64 * 1024,
        clock: now,
    })
}

fn rotated(event_id: &str, rotation: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": event_id, "type": "token.rotated", "created_at": NOW, "workspace": "w",
        "data": {"id": TOKEN, "name": "web", "rotation": rotation, "scopes": []}
    }))
    .unwrap()
}

async fn deliver_with_headers(state: &Arc<WebhookState>, body: &[u8]) -> Response<bytes::Bytes> {
    warp::test::request()
        .method("POST")
        .path("/webhooks/tooken")
        .header(SIGNATURE_HEADER, sign(b"whsec", body))
        .body(body)
        .reply(&routes(state.clone()))
        .await
}

async fn deliver(state: &Arc<WebhookState>, body: &[u8]) -> u16 {
    deliver_with_headers(state, body).await.status().as_u16()
}

/// The patch that records a pending restart: metadata only, so nothing rolls yet.
fn pending_patch(marker: &str) -> Value {
    json!({"metadata": {"resourceVersion": "10",
                        "annotations": {"tooken.io/pending-rotation": marker}}})
}

/// The restart of a workload whose pending entry it settles.
fn restart_settling_patch(marker: &str) -> Value {
    let mut patch = restart_patch(marker);
    patch["metadata"]["annotations"]["tooken.io/pending-rotation"] = Value::Null;
    patch
}

/// Answers what `schedule` asks: discovery, then a GET and a pending PATCH per target.
async fn scheduling(api: &mut ApiServer, secret_rotation: u64, rotation: u64) {
    discovery(api, secret_rotation).await;
    for name in ["web", "worker"] {
        let path = format!("{DEPLOYMENTS}/{name}");
        api.answer("GET", &path, &[], deployment(name, json!({}), false))
            .await;
        let patch = api.answer("PATCH", &path, &[], json!({})).await;
        assert_eq!(patch, pending_patch(&format!("tok1:{rotation}")), "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_delivery_is_answered_once_the_restart_is_pending_and_the_restart_follows_once() {
    let (client, mut api) = mock();
    let state = webhook_state(restarter(client), Duration::from_secs(5));
    let delivery = tokio::spawn({
        let state = state.clone();
        async move { deliver(&state, &rotated("e1", 2)).await }
    });
    scheduling(&mut api, 2, 2).await;
    assert_eq!(
        delivery.await.unwrap(),
        200,
        "answered before any restart, once it is recorded on the workloads"
    );
    // After the coalescing window, the restart itself; each workload once.
    discovery(&mut api, 2).await;
    for name in ["web", "worker"] {
        let path = format!("{DEPLOYMENTS}/{name}");
        api.answer(
            "GET",
            &path,
            &[],
            deployment(name, json!({"tooken.io/pending-rotation": "tok1:2"}), false),
        )
        .await;
        let patch = api.answer("PATCH", &path, &[], json!({})).await;
        assert_eq!(patch, restart_settling_patch("tok1:2"), "{name}");
    }
    // The same event again is acknowledged without touching the cluster.
    assert_eq!(deliver(&state, &rotated("e1", 2)).await, 200);
    drop(state);
    api.done().await;
}

#[tokio::test(start_paused = true)]
async fn a_delivery_that_cannot_be_recorded_in_time_gets_503_with_retry_after() {
    let (client, mut api) = mock();
    let state = webhook_state(restarter(client), Duration::from_secs(5));
    let delivery = tokio::spawn({
        let state = state.clone();
        async move { deliver_with_headers(&state, &rotated("e1", 2)).await }
    });
    // The Kubernetes API does not answer; the sender must not be kept waiting.
    let (_, _held) = api.expect("GET", TOKENS, &[]).await;
    let response = delivery.await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "5");
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert!(body.contains("timeout"), "{body}");
}

/// The Secret holds an older rotation: the token was rotated through the API. The operator is
/// told through its resource, and the restart waits until the healed Secret is written.
#[tokio::test(start_paused = true)]
async fn a_rotation_the_secret_does_not_hold_tells_the_operator() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let scheduled = tokio::spawn({
        let restarter = restarter.clone();
        async move { restarter.schedule(TOKEN, 2).await }
    });
    api.answer(
        "GET",
        TOKENS,
        &[],
        tooken_tokens(json!([tooken_token(
            "web",
            TOKEN,
            json!([{"kind": "Deployment", "name": "web"}])
        )])),
    )
    .await;
    api.answer(
        "GET",
        SECRETS,
        &[SELECTOR],
        metadata_list(json!([secret(1)])),
    )
    .await;
    let poke = api
        .answer("PATCH", &format!("{TOKENS}/web"), &[], json!({}))
        .await;
    assert_eq!(
        poke,
        json!({"metadata": {"annotations": {"tooken.io/rotation-seen": "2"}}})
    );
    for kind in [DEPLOYMENTS, STATEFULSETS, DAEMONSETS] {
        api.answer("GET", kind, &[], metadata_list(json!([]))).await;
    }
    let path = format!("{DEPLOYMENTS}/web");
    api.answer("GET", &path, &[], deployment("web", json!({}), false))
        .await;
    let patch = api.answer("PATCH", &path, &[], json!({})).await;
    assert_eq!(patch, pending_patch("tok1:2"));
    let handled = scheduled.await.unwrap().unwrap();
    assert!(handled.message.contains("1 of 1"), "{}", handled.message);
    drop(restarter);
    api.done().await;
}

/// After a restart of the sidecar, the pending entries on the workloads are what is left to
/// do; a workload restarted for a later rotation than the one pending only loses its entry.
#[tokio::test(start_paused = true)]
async fn pending_restarts_are_found_on_the_workloads_after_a_sidecar_restart() {
    let (client, mut api) = mock();
    let restarter = restarter(client);
    let found = tokio::spawn({
        let restarter = restarter.clone();
        async move { restarter.pending().await }
    });
    api.answer(
        "GET",
        DEPLOYMENTS,
        &[],
        metadata_list(json!([
            metadata(
                "web",
                json!({"tooken.io/pending-rotation": "tok1:2,tok9:4"})
            ),
            metadata("worker", json!({"tooken.io/pending-rotation": "tok1:3"})),
            metadata("idle", json!({})),
        ])),
    )
    .await;
    api.answer("GET", STATEFULSETS, &[], metadata_list(json!([])))
        .await;
    api.answer("GET", DAEMONSETS, &[], metadata_list(json!([])))
        .await;
    let found = found.await.unwrap().unwrap();
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        [("tok1".to_owned(), 3), ("tok9".to_owned(), 4)]
    );

    let attempt = tokio::spawn({
        let restarter = restarter.clone();
        async move { restarter.restart_for(TOKEN, 3, Instant::now()).await }
    });
    discovery(&mut api, 3).await;
    let path = format!("{DEPLOYMENTS}/web");
    api.answer(
        "GET",
        &path,
        &[],
        deployment(
            "web",
            json!({"tooken.io/pending-rotation": "tok1:2,tok9:4",
                   "tooken.io/restarted-for-rotation": "tok1:3"}),
            false,
        ),
    )
    .await;
    let patch = api.answer("PATCH", &path, &[], json!({})).await;
    assert_eq!(
        patch,
        json!({"metadata": {"resourceVersion": "10",
                            "annotations": {"tooken.io/pending-rotation": "tok9:4"}}}),
        "settled without a second restart; the other token's entry stays"
    );
    let path = format!("{DEPLOYMENTS}/worker");
    api.answer(
        "GET",
        &path,
        &[],
        deployment(
            "worker",
            json!({"tooken.io/pending-rotation": "tok1:3"}),
            false,
        ),
    )
    .await;
    let patch = api.answer("PATCH", &path, &[], json!({})).await;
    assert_eq!(patch, restart_settling_patch("tok1:3"));
    let handled = attempt.await.unwrap().unwrap();
    assert!(
        handled
            .message
            .contains("already_restarted: 1, restarted: 1"),
        "{}",
        handled.message
    );
    drop(restarter);
    api.done().await;
}
