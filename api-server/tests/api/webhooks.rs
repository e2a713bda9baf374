//! Webhooks over real HTTP: signatures as a receiver hashing `JSON.stringify` of the parsed body
//! checks them (README "Webhooks", Verifying a signature), outages, ordering, 410,
//! redelivery, secret rotation, and replicas sharing one outbox.

use crate::helpers::{Backend, TestApp, expect_error, expect_json, spawn_app};
use crate::on_both_backends;
use crate::receiver::{Receiver, free_addr};
use jiff::Timestamp;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use tooken_contract::signature;

on_both_backends!(
    deliveries_are_signed_as_the_seed_receiver_checks,
    a_receiver_that_was_down_gets_every_event,
    events_about_one_token_arrive_in_order_through_failures,
    gone_disables_the_endpoint_and_redelivery_sends_the_same_event,
    secret_rotation_misses_no_delivery,
    webhook_endpoints_are_validated_and_audited,
);

const WAIT: Duration = Duration::from_secs(20);

/// Runs that receiver's check (`seed_receiver.js`) in node on each (secret, body, signature);
/// `None` when node is missing outside CI (said on stderr; under CI that is a failure).
fn seed_receiver_verdicts(cases: &[(String, String, String)]) -> Option<Vec<String>> {
    if Command::new("node").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must have node for the seed 004 receiver test"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED: node is not installed, so seed 004's receiver code did not run"
        );
        return None;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/seed_receiver.js");
    let mut child = Command::new("node")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("node runs (the seed's receiver is JavaScript; .ci/run installs nodejs)");
    let input: Vec<Value> = cases
        .iter()
        .map(|(secret, body, signature)| json!({"secret": secret, "body": body, "signature": signature}))
        .collect();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(serde_json::to_string(&input).unwrap().as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    Some(
        String::from_utf8(output.stdout)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect(),
    )
}

async fn deliveries_are_signed_as_the_seed_receiver_checks(app: TestApp) {
    let receiver = Receiver::start().await;
    let (_, secret) = app
        .webhook(
            &receiver.url,
            &["token.created", "token.rotated", "token.revoked"],
        )
        .await;
    // Names that JSON could encode in more than one way.
    let (id, first_secret) = app
        .token(
            "ünïcødé ✓ \"quoted\" </script> \\ / é",
            json!(["tokens:read", "audit:read"]),
        )
        .await;
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/tokens/{id}/rotate"),
            &app.api_key,
        )
        .json(&json!({"grace_period_seconds": 60}))
        .send()
        .await
        .unwrap();
    let rotated = expect_json(response, 200).await;
    app.authed(
        Method::POST,
        &format!("/v1/tokens/{id}/revoke"),
        &app.api_key,
    )
    .send()
    .await
    .unwrap();

    let got = receiver.wait_accepted(3, WAIT).await;
    let cases: Vec<(String, String, String)> = got
        .iter()
        .map(|r| {
            (
                secret.clone(),
                String::from_utf8(r.body.to_vec()).unwrap(),
                r.header("x-tooken-signature"),
            )
        })
        .collect();
    if let Some(verdicts) = seed_receiver_verdicts(&cases) {
        assert_eq!(verdicts, ["ok", "ok", "ok"]);
    }

    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(types, ["token.created", "token.rotated", "token.revoked"]);
    for delivery in &got {
        let body = delivery.json();
        assert!(signature::verify(
            &[secret.as_bytes()],
            &delivery.header("x-tooken-signature"),
            &delivery.body
        ));
        assert_eq!(
            delivery.header("x-tooken-event-id"),
            body["id"].as_str().unwrap()
        );
        let sent: i64 = delivery.header("x-tooken-timestamp").parse().unwrap();
        assert!((Timestamp::now().as_second() - sent).abs() < 60);
        assert_eq!(delivery.header("content-type"), "application/json");
        assert_eq!(body["workspace"], app.workspace_id.as_str());
        assert_eq!(body["data"]["id"], id.as_str());
        assert_eq!(body["data"]["scopes"], json!(["tokens:read", "audit:read"]));
        assert!(body["created_at"].as_str().unwrap().ends_with('Z'));
        let text = String::from_utf8(delivery.body.to_vec()).unwrap();
        assert!(
            !text.contains(&first_secret) && !text.contains(rotated["secret"].as_str().unwrap())
        );
        assert!(!text.contains("\n"), "compact JSON");
    }
    assert_eq!(
        got[1].json()["data"]["previous_secret_expires_at"],
        rotated["previous_secret_expires_at"]
    );
    assert_eq!(got[1].json()["data"]["rotation"], 1);
}

async fn a_receiver_that_was_down_gets_every_event(app: TestApp) {
    let addr = free_addr();
    let (hook, _) = app
        .webhook(&format!("http://{addr}/hook"), &["token.created"])
        .await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.token(&format!("during-outage-{i}"), json!(["tokens:read"]))
                .await
                .0,
        );
    }
    // Attempts fail while nothing listens; the log says so.
    let log = deliveries_when(&app, &hook, |d| d["attempts"].as_i64().unwrap() >= 2).await;
    for delivery in log["data"].as_array().unwrap() {
        assert_eq!(delivery["status"], "pending");
        assert_eq!(delivery["last_error"], "could not connect");
        assert!(delivery["next_attempt_at"].is_string());
    }

    let receiver = Receiver::start_on(addr).await;
    let got = receiver.wait_accepted(5, WAIT).await;
    let mut delivered: Vec<String> = got
        .iter()
        .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    delivered.dedup();
    assert_eq!(delivered.len(), 5);
    for id in &ids {
        assert!(delivered.contains(id), "{id} lost");
    }
    // The receiver answers before the server records the outcome, so wait for the record.
    let log = deliveries_when(&app, &hook, |d| d["status"] == "delivered").await;
    for delivery in log["data"].as_array().unwrap() {
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["last_latency_ms"].as_i64().unwrap() >= 0);
        assert!(delivery["delivered_at"].is_string());
    }
}

/// The webhook's delivery log once every entry satisfies `done`, polled until `WAIT` is over.
async fn deliveries_when(app: &TestApp, hook: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let response = app
            .authed(
                Method::GET,
                &format!("/v1/webhooks/{hook}/deliveries"),
                &app.api_key,
            )
            .send()
            .await
            .unwrap();
        let log = expect_json(response, 200).await;
        if log["data"].as_array().unwrap().iter().all(&done) {
            return log;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery log never got there: {log}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn events_about_one_token_arrive_in_order_through_failures(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.fail_every_other_with(503);
    app.webhook(&receiver.url, &["token.created", "token.rotated"])
        .await;
    let (id, _) = app.token("busy", json!(["tokens:read"])).await;
    for _ in 0..6 {
        app.authed(
            Method::POST,
            &format!("/v1/tokens/{id}/rotate"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    }
    let got = receiver.wait_accepted(7, WAIT).await;
    let rotations: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["rotation"].as_i64().unwrap_or(0))
        .collect();
    assert_eq!(rotations, [0, 1, 2, 3, 4, 5, 6], "accepted out of order");
    // Every attempt, failed or not, was in order too: no later event overtook an earlier one.
    let attempted: Vec<i64> = receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["rotation"].as_i64().unwrap_or(0))
        .collect();
    assert!(attempted.windows(2).all(|w| w[0] <= w[1]), "{attempted:?}");
    assert!(
        receiver.received().len() > 7,
        "the flaky receiver made some attempts fail"
    );
}

async fn gone_disables_the_endpoint_and_redelivery_sends_the_same_event(app: TestApp) {
    let receiver = Receiver::start().await;
    receiver.answer_next(&[410]);
    let (hook, _) = app.webhook(&receiver.url, &["token.created"]).await;
    app.token("first", json!(["tokens:read"])).await;
    let path = format!("/v1/webhooks/{hook}");
    let disabled = loop {
        let body = expect_json(
            app.authed(Method::GET, &path, &app.api_key)
                .send()
                .await
                .unwrap(),
            200,
        )
        .await;
        if body["enabled"] == false {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        disabled["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("410")
    );
    // While disabled nothing is queued.
    app.token("while-disabled", json!(["tokens:read"])).await;
    let log = expect_json(
        app.authed(Method::GET, &format!("{path}/deliveries"), &app.api_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let deliveries = log["data"].as_array().unwrap();
    assert_eq!(deliveries.len(), 1);
    assert_eq!(deliveries[0]["status"], "failed");
    assert_eq!(deliveries[0]["last_status_code"], 410);
    let failed_id = deliveries[0]["id"].as_str().unwrap().to_owned();

    let redeliver = format!("{path}/deliveries/{failed_id}/redeliver");
    let response = app
        .authed(Method::POST, &redeliver, &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "webhook_disabled").await;
    let response = app
        .authed(Method::PATCH, &path, &app.api_key)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let enabled = expect_json(response, 200).await;
    assert_eq!(enabled["disabled_reason"], Value::Null);
    let response = app
        .authed(Method::POST, &redeliver, &app.api_key)
        .send()
        .await
        .unwrap();
    let queued = expect_json(response, 202).await;
    assert_ne!(queued["id"], failed_id.as_str());
    assert_eq!(queued["event_id"], deliveries[0]["event_id"]);
    let got = receiver.wait_accepted(1, WAIT).await;
    let first = &receiver.received()[0];
    assert_eq!(got[0].body, first.body, "a redelivery sends the same bytes");
    assert_eq!(
        got[0].header("x-tooken-event-id"),
        first.header("x-tooken-event-id")
    );
}

async fn secret_rotation_misses_no_delivery(app: TestApp) {
    let receiver = Receiver::start().await;
    let (hook, old) = app.webhook(&receiver.url, &["token.created"]).await;
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/webhooks/{hook}/rotate-secret"),
            &app.api_key,
        )
        .json(&json!({"grace_period_seconds": 1}))
        .send()
        .await
        .unwrap();
    let rotated = expect_json(response, 200).await;
    let new = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new, old);
    assert!(rotated["secret_rotates_at"].is_string());
    // During the grace period the old secret still signs, so receivers that have not been
    // updated keep working; receivers that hold both accept either.
    app.token("in-grace", json!(["tokens:read"])).await;
    let during = receiver.wait_accepted(1, WAIT).await;
    let signature = during[0].header("x-tooken-signature");
    assert!(signature::verify(
        &[old.as_bytes()],
        &signature,
        &during[0].body
    ));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    app.token("after-grace", json!(["tokens:read"])).await;
    let after = receiver.wait_accepted(2, WAIT).await;
    let signature = after[1].header("x-tooken-signature");
    assert!(signature::verify(
        &[new.as_bytes()],
        &signature,
        &after[1].body
    ));
    assert!(!signature::verify(
        &[old.as_bytes()],
        &signature,
        &after[1].body
    ));
    assert!(signature::verify(
        &[old.as_bytes(), new.as_bytes()],
        &signature,
        &after[1].body
    ));
    let response = app
        .authed(Method::GET, &format!("/v1/webhooks/{hook}"), &app.api_key)
        .send()
        .await
        .unwrap();
    assert!(
        !expect_json(response, 200).await.to_string().contains(&new),
        "the secret is shown once"
    );
}

async fn webhook_endpoints_are_validated_and_audited(app: TestApp) {
    for (body, field) in [
        (
            json!({"url": "ftp://example.com/x", "event_types": ["token.created"]}),
            "url",
        ),
        (
            json!({"url": "not a url", "event_types": ["token.created"]}),
            "url",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": []}),
            "event_types",
        ),
        (
            json!({"url": "http://example.com/x", "event_types": ["token.created", "token.exploded"]}),
            "event_types[1]",
        ),
    ] {
        let response = app
            .authed(Method::POST, "/v1/webhooks", &app.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_error(response, 422, "validation_failed").await["field"],
            field,
            "{body}"
        );
    }
    let (_, reader) = app.token("reader", json!(["webhooks:read"])).await;
    let response = app
        .authed(Method::POST, "/v1/webhooks", &reader)
        .json(&json!({"url": "http://example.com/x", "event_types": ["token.created"]}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let (hook, secret) = app
        .webhook("http://example.com/hook", &["token.rotated"])
        .await;
    assert!(secret.starts_with("whsec_"));
    let listed = expect_json(
        app.authed(Method::GET, "/v1/webhooks", &reader)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["data"][0]["id"], hook.as_str());
    assert!(!listed.to_string().contains(&secret));
    let response = app
        .authed(Method::PATCH, &format!("/v1/webhooks/{hook}"), &app.api_key)
        .json(&json!({"event_types": ["token.rotated", "token.revoked"], "description": "sidecar"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, 200).await["event_types"],
        json!(["token.revoked", "token.rotated"])
    );
    let response = app
        .authed(
            Method::DELETE,
            &format!("/v1/webhooks/{hook}"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .authed(Method::GET, &format!("/v1/webhooks/{hook}"), &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    for kind in ["webhook.created", "webhook.updated", "webhook.deleted"] {
        assert_eq!(
            app.audit_events(&format!("type={kind}")).await.len(),
            1,
            "{kind}"
        );
    }
    assert!(
        !serde_json::to_string(&app.audit_events("").await)
            .unwrap()
            .contains(&secret)
    );
}

/// Two replicas on one PostgreSQL database share the outbox: each event is delivered once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_never_deliver_the_same_event_twice() {
    let Some(first) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let second = crate::helpers::spawn_replica(&first).await;
    let receiver = Receiver::start().await;
    first.webhook(&receiver.url, &["token.created"]).await;
    for i in 0..30 {
        // Half the changes through each replica.
        let app = if i % 2 == 0 { &first } else { &second };
        let response = app
            .authed(Method::POST, "/v1/tokens", &first.api_key)
            .json(&json!({"name": format!("r{i}"), "scopes": ["tokens:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
    }
    receiver.wait_accepted(30, WAIT).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("x-tooken-event-id"))
        .collect();
    let total = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(
        (total, ids.len()),
        (30, 30),
        "some event was delivered twice"
    );
}
