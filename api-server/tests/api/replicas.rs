//! Several replicas on one database: a credential killed on one is refused by every other
//! within the credential cache's staleness bound, even when the change feed is cut.

use crate::helpers::{Backend, TestApp, spawn_app, spawn_replica, sqlx_connect};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};
use tooken_api_server::store::DEFAULT_CACHE_STALENESS;
use tooken_api_server::store::coherence::LISTENER_NAME;

const BOUND: Duration = DEFAULT_CACHE_STALENESS;

/// What `replica` says of `secret`, asked with `key`: the verify reason, or the HTTP status
/// when `key` itself no longer works.
async fn verdict(replica: &TestApp, key: &str, secret: &str) -> String {
    let response = replica
        .authed(Method::POST, "/v1/tokens/verify", key)
        .json(&json!({"token": secret}))
        .send()
        .await
        .unwrap();
    if response.status() != 200 {
        return response.status().as_u16().to_string();
    }
    let body: Value = response.json().await.unwrap();
    body["reason"].as_str().unwrap().to_owned()
}

/// Asks `replica` until the bound has passed since `killed`: every answer to a request sent
/// after `killed + BOUND` must be `refused`, and one must have been.
async fn refused_within_the_bound(
    replica: &TestApp,
    ask: impl AsyncFn() -> String,
    refused: &str,
    killed: Instant,
) {
    let mut after_bound = 0;
    loop {
        let sent = Instant::now();
        let answer = ask().await;
        if sent >= killed + BOUND {
            assert_eq!(
                answer,
                refused,
                "{} still accepted what was killed {:?} before",
                replica.base_url,
                sent - killed
            );
            after_bound += 1;
            if after_bound >= 3 {
                return;
            }
        }
    }
}

/// Makes sure `replica` holds `secret` (and `key`) in its cache, and answers from it.
async fn warm(replica: &TestApp, key: &str, secret: &str) {
    until_current(replica).await;
    let before = cache_hits(replica).await;
    for _ in 0..3 {
        assert_eq!(verdict(replica, key, secret).await, "valid");
    }
    assert!(
        cache_hits(replica).await > before,
        "{} answered without its cache",
        replica.base_url
    );
}

async fn metrics(app: &TestApp) -> String {
    app.raw(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn cache_hits(app: &TestApp) -> u64 {
    metrics(app)
        .await
        .lines()
        .find_map(|line| {
            line.strip_prefix("tooken_credential_cache_lookups_total{outcome=\"hit\"} ")
        })
        .map_or(0, |count| count.parse().unwrap())
}

async fn kills_on_one_replica_reach_the_other(backend: Backend) {
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let b = spawn_replica(&a).await;
    let key = a.api_key.clone();

    // A revoked token.
    let (id, secret) = a.token("revoked-on-a", json!(["tokens:read"])).await;
    warm(&b, &key, &secret).await;
    a.revoke(&id).await;
    let killed = Instant::now();
    refused_within_the_bound(&b, || verdict(&b, &key, &secret), "revoked", killed).await;

    // A token rotated with no grace period: its old secret.
    let (id, secret) = a.token("rotated-on-a", json!(["tokens:read"])).await;
    warm(&b, &key, &secret).await;
    a.rotate(&id, json!({})).await;
    let killed = Instant::now();
    refused_within_the_bound(&b, || verdict(&b, &key, &secret), "rotated", killed).await;

    // A deleted API key.
    let created = a
        .post_as(
            &key,
            "/v1/api-keys",
            json!({"name": "doomed", "kind": "team"}),
            201,
        )
        .await;
    let doomed = created["key"].as_str().unwrap().to_owned();
    let (_, secret) = a.token("checked-by-doomed", json!(["tokens:read"])).await;
    warm(&b, &doomed, &secret).await;
    let response = a
        .authed(
            Method::DELETE,
            &format!("/v1/api-keys/{}", created["id"].as_str().unwrap()),
            &key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let killed = Instant::now();
    refused_within_the_bound(&b, || verdict(&b, &doomed, &secret), "401", killed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_kills_on_one_replica_reach_the_other_within_the_bound() {
    kills_on_one_replica_reach_the_other(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_kills_on_one_replica_reach_the_other_within_the_bound() {
    kills_on_one_replica_reach_the_other(Backend::Postgres).await;
}

/// Ends every connection listening for credential changes to `app`'s database.
async fn cut_the_change_feed(app: &TestApp) -> u64 {
    let mut conn = sqlx_connect(&app.database_url).await;
    let cut: Vec<(bool,)> = sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = $1 AND datname = current_database()",
    )
    .bind(LISTENER_NAME)
    .fetch_all(&mut conn)
    .await
    .unwrap();
    cut.len() as u64
}

async fn cache_is_current(app: &TestApp) -> bool {
    metrics(app)
        .await
        .lines()
        .any(|line| line == "tooken_credential_cache_current 1")
}

/// Waits (without a fixed sleep) until `app`'s cache is current again.
async fn until_current(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !cache_is_current(app).await {
        assert!(Instant::now() < deadline, "the cache never became current");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_change_feed_leaves_nothing_stale_beyond_the_bound() {
    let Some(a) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let b = spawn_replica(&a).await;
    let key = a.api_key.clone();
    for round in 0..3 {
        let (id, secret) = a
            .token(&format!("cut-{round}"), json!(["tokens:read"]))
            .await;
        warm(&b, &key, &secret).await;
        // B's listener at least (its cache is current, so it listens), and A's if it is back:
        // the revocation's NOTIFY reaches no one.
        let cut = cut_the_change_feed(&a).await;
        assert!(cut >= 1, "cut {cut} listening connections");
        a.revoke(&id).await;
        let killed = Instant::now();
        refused_within_the_bound(&b, || verdict(&b, &key, &secret), "revoked", killed).await;
        // The replica listens again on its own, and its cache serves again.
        let (_, fresh) = a
            .token(&format!("after-{round}"), json!(["tokens:read"]))
            .await;
        warm(&b, &key, &fresh).await;
    }
}
