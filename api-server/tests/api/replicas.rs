//! Several replicas on one database: a credential killed on one is refused by every other
//! within the credential cache's staleness bound, even when the change feed is cut, and
//! PostgreSQL restarting under their load loses no acknowledged write; their usage flushes
//! never move `last_used_at` backwards.

use crate::helpers::{
    Backend, TestApp, spawn_app, spawn_app_on, spawn_replica, sqlx_connect, unchanged,
};
use crate::private_postgres::{PrivatePostgres, Stop};
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tooken_api_server::store::DEFAULT_CACHE_STALENESS;
use tooken_api_server::store::coherence::LISTENER_NAME;
use tooken_api_server::usage::UsageRecorder;

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

/// Two replicas flush uses of the same credentials in the worst order, the newer first: the
/// older flush moves nothing backwards, and a flush of many uses (several statements) loses none.
async fn usage_from_two_replicas_never_moves_backwards(backend: Backend) {
    let Some(a) = spawn_app(backend).await else {
        return;
    };
    let b = spawn_replica(&a).await;
    let client = a.client(&a.api_key);
    let (token, _) = a.token("used-on-both", json!(["tokens:read"])).await;
    let key = client.list_api_keys().await.unwrap().data[0].id.clone();
    // Whole microseconds (what is stored), an hour ahead of any real use the servers record.
    let at = |hours: i64| {
        jiff::Timestamp::from_microsecond(
            (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(hours)).as_microsecond(),
        )
        .unwrap()
    };
    let (newer, older) = (at(2), at(1));

    let on_a = UsageRecorder::default();
    on_a.record_token(&token, newer);
    on_a.record_api_key(&key, newer);
    // Uses of credentials that do not exist push the real ones past the first statement.
    for i in 0..1_200 {
        on_a.record_token(&format!("gone-{i}"), newer);
    }
    assert_eq!(on_a.flush(a.store()).await.unwrap(), 1_202);
    let on_b = UsageRecorder::default();
    on_b.record_token(&token, older);
    on_b.record_api_key(&key, older);
    assert_eq!(on_b.flush(b.store()).await.unwrap(), 2);

    assert_eq!(
        client.get_token(&token).await.unwrap().last_used_at,
        Some(newer)
    );
    assert_eq!(
        client.get_api_key(&key).await.unwrap().last_used_at,
        Some(newer)
    );
    // And forward still moves it.
    let newest = at(3);
    on_b.record_token(&token, newest);
    on_b.flush(b.store()).await.unwrap();
    assert_eq!(
        client.get_token(&token).await.unwrap().last_used_at,
        Some(newest)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_usage_from_two_replicas_never_moves_backwards() {
    usage_from_two_replicas_never_moves_backwards(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_usage_from_two_replicas_never_moves_backwards() {
    usage_from_two_replicas_never_moves_backwards(Backend::Postgres).await;
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

/// What the writers saw while PostgreSQL went away and came back.
#[derive(Default)]
struct Writes {
    /// (replica, token id, secret) of every 201.
    acknowledged: Vec<(usize, String, String)>,
    /// 503s: the database was away, and the writer was told so.
    refused: usize,
    /// Anything else: a wrong status or a failed request.
    unexpected: Vec<String>,
}

impl Writes {
    fn acknowledged_by(&self, replica: usize) -> usize {
        self.acknowledged
            .iter()
            .filter(|(r, ..)| *r == replica)
            .count()
    }
}

/// Creates tokens on `replica` until `stop`, recording every answer in `writes`.
async fn write_until(
    replica: usize,
    app: TestApp,
    writes: Arc<Mutex<Writes>>,
    stop: Arc<AtomicBool>,
) -> TestApp {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let sent = http
            .post(format!("{}/v1/tokens", app.base_url))
            .bearer_auth(&app.api_key)
            .json(&json!({"name": format!("load-{replica}-{n}"), "scopes": ["tokens:read"]}))
            .send()
            .await;
        let outcome = match sent {
            Ok(response) if response.status() == 201 => match response.json::<Value>().await {
                Ok(body) => Ok((
                    body["id"].as_str().unwrap().to_owned(),
                    body["secret"].as_str().unwrap().to_owned(),
                )),
                Err(err) => Err(format!("201 without a body: {err}")),
            },
            Ok(response) if response.status() == 503 => Err(String::new()),
            Ok(response) => Err(format!(
                "{} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            )),
            Err(err) => Err(format!("request failed: {err}")),
        };
        let refused = matches!(&outcome, Err(reason) if reason.is_empty());
        {
            let mut writes = writes.lock().unwrap();
            match outcome {
                Ok((id, secret)) => writes.acknowledged.push((replica, id, secret)),
                Err(_) if refused => writes.refused += 1,
                Err(reason) => writes.unexpected.push(reason),
            }
        }
        if refused {
            // A client told 503 backs off a little instead of spinning.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    app
}

/// Waits until `ready` holds of the writes so far, failing after a minute.
async fn until_writes(writes: &Mutex<Writes>, what: &str, ready: impl Fn(&Writes) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        {
            let writes = writes.lock().unwrap();
            assert!(
                writes.unexpected.is_empty(),
                "unexpected answers: {:?}",
                writes.unexpected
            );
            if ready(&writes) {
                return;
            }
        }
        assert!(Instant::now() < deadline, "no {what} within a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_no_acknowledged_write() {
    let Some(mut postgres) = PrivatePostgres::start() else {
        return;
    };
    let a = spawn_app_on(postgres.url(), unchanged).await;
    let b = spawn_replica(&a).await;
    let key = a.api_key.clone();
    let writes = Arc::new(Mutex::new(Writes::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let writers: Vec<_> = [a, b]
        .into_iter()
        .enumerate()
        .map(|(replica, app)| tokio::spawn(write_until(replica, app, writes.clone(), stop.clone())))
        .collect();

    for how in [Stop::Fast, Stop::Immediate] {
        let before = {
            let writes = writes.lock().unwrap();
            [writes.acknowledged_by(0), writes.acknowledged_by(1)]
        };
        until_writes(&writes, "writes before the stop", |w| {
            w.acknowledged_by(0) >= before[0] + 20 && w.acknowledged_by(1) >= before[1] + 20
        })
        .await;
        tokio::task::block_in_place(|| postgres.stop(how));
        let refused = writes.lock().unwrap().refused;
        until_writes(&writes, "503 while PostgreSQL is down", |w| {
            w.refused > refused
        })
        .await;
        let during = {
            let writes = writes.lock().unwrap();
            [writes.acknowledged_by(0), writes.acknowledged_by(1)]
        };
        tokio::task::block_in_place(|| postgres.serve());
        // Both replicas write again, with no restart of their own.
        until_writes(&writes, &format!("writes after the {how:?} restart"), |w| {
            w.acknowledged_by(0) >= during[0] + 20 && w.acknowledged_by(1) >= during[1] + 20
        })
        .await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut replicas = Vec::new();
    for writer in writers {
        replicas.push(
            tokio::time::timeout(Duration::from_secs(60), writer)
                .await
                .expect("a writer finished its last request")
                .expect("a writer did not panic"),
        );
    }
    let (b, a) = (replicas.pop().unwrap(), replicas.pop().unwrap());
    let writes = std::mem::take(&mut *writes.lock().unwrap());
    assert!(writes.unexpected.is_empty(), "{:?}", writes.unexpected);

    // Every acknowledged token is stored, and each replica verifies the other's.
    let mut conn = sqlx_connect(&postgres.url()).await;
    let stored: Vec<(String,)> = sqlx::query_as("SELECT id FROM tokens")
        .fetch_all(&mut conn)
        .await
        .unwrap();
    let stored: HashSet<String> = stored.into_iter().map(|(id,)| id).collect();
    let lost: Vec<_> = writes
        .acknowledged
        .iter()
        .filter(|(_, id, _)| !stored.contains(id))
        .map(|(_, id, _)| id)
        .collect();
    assert!(
        lost.is_empty(),
        "{} of {} acknowledged tokens are gone: {lost:?}",
        lost.len(),
        writes.acknowledged.len()
    );
    for (replica, _, secret) in writes.acknowledged.iter().step_by(7) {
        let other = if *replica == 0 { &b } else { &a };
        assert_eq!(verdict(other, &key, secret).await, "valid");
    }

    // The change feed is back too: B's cache serves, and forgets a revocation on A in time.
    let (id, secret) = a.token("after-the-restarts", json!(["tokens:read"])).await;
    warm(&b, &key, &secret).await;
    a.revoke(&id).await;
    let killed = Instant::now();
    refused_within_the_bound(&b, || verdict(&b, &key, &secret), "revoked", killed).await;
    eprintln!(
        "restarts: {} writes acknowledged, {} refused with 503 while PostgreSQL was down",
        writes.acknowledged.len(),
        writes.refused
    );
}
