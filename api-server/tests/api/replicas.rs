//! Several replicas on one database: a credential killed on one is refused by every other
//! within the credential cache's staleness bound, even when the change feed is cut.

use crate::helpers::{Backend, TestApp, spawn_app, spawn_app_on, spawn_replica, sqlx_connect};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
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

/// A PostgreSQL server of this test's own (Debian's binaries, as `.ci/postgres.sh` installs
/// them), so it can be restarted without disturbing the other tests' server.
struct PrivatePostgres {
    bin: std::path::PathBuf,
    data: std::path::PathBuf,
    port: u16,
}

impl PrivatePostgres {
    fn start() -> Option<PrivatePostgres> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|entry| entry.ok().map(|e| e.path().join("bin")))
            .filter(|bin| bin.join("pg_ctl").exists())
            .max()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let data = std::env::temp_dir().join(format!("tooken-pg-{port}"));
        let _ = std::fs::remove_dir_all(&data);
        std::fs::create_dir_all(&data).unwrap();
        let server = PrivatePostgres { bin, data, port };
        // PostgreSQL refuses to run as root; CI runs as root, and Debian's package made a user.
        server.chown();
        server.run(
            "initdb",
            &["-D", server.dir(), "-A", "trust", "-U", "postgres"],
        );
        server.pg_ctl("start");
        Some(server)
    }

    fn dir(&self) -> &str {
        self.data.to_str().unwrap()
    }

    fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    fn chown(&self) {
        if is_root() {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres", self.dir()])
                .status()
                .unwrap();
            assert!(status.success());
        }
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let program = self.bin.join(tool);
        let mut command = if is_root() {
            let mut command = std::process::Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&program);
            command
        } else {
            std::process::Command::new(&program)
        };
        let output = command.args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{tool}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn pg_ctl(&self, action: &str) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir()
        );
        self.run(
            "pg_ctl",
            &["-D", self.dir(), "-o", &options, "-w", "-m", "fast", action],
        );
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| self.pg_ctl("stop"));
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_load_loses_no_acknowledged_write() {
    // Only where the PostgreSQL tests run: CI, or with TOOKEN_TEST_POSTGRES_URL.
    if tooken_api_server::test_support::postgres_admin_url().is_none() {
        return;
    }
    let server = PrivatePostgres::start().expect("PostgreSQL's binaries are installed");
    let a = spawn_app_on(server.url("postgres"), |_| {}).await;
    let b = spawn_replica(&a).await;
    let key = a.api_key.clone();

    // Writers through both replicas, keeping what was acknowledged.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicUsize::new(0));
    let writer = |app: &TestApp, tag: &'static str| {
        let (base, http, key) = (app.base_url.clone(), app.http.clone(), key.clone());
        let (stop, written) = (stop.clone(), written.clone());
        tokio::spawn(async move {
            let mut acknowledged = Vec::new();
            for i in 0.. {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let response = http
                    .post(format!("{base}/v1/tokens"))
                    .bearer_auth(&key)
                    .json(&json!({"name": format!("{tag}-{i}"), "scopes": ["tokens:read"]}))
                    .send()
                    .await
                    .expect("the replica itself keeps answering");
                match response.status().as_u16() {
                    201 => {
                        let body: Value = response.json().await.unwrap();
                        acknowledged.push(body["id"].as_str().unwrap().to_owned());
                        written.fetch_add(1, Ordering::SeqCst);
                    }
                    // The database is down: refused, and nothing was written.
                    503 => tokio::time::sleep(Duration::from_millis(10)).await,
                    other => panic!("{other} while the database restarts"),
                }
            }
            acknowledged
        })
    };
    let writers = [writer(&a, "a"), writer(&b, "b")];
    while written.load(Ordering::SeqCst) < 20 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let server = tokio::task::spawn_blocking(move || {
        server.pg_ctl("restart");
        server
    })
    .await
    .unwrap();
    // Both replicas serve writes again, and their caches are current, without a restart.
    for app in [&a, &b] {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let response = app
                .authed(Method::POST, "/v1/tokens", &key)
                .json(&json!({"name": "after-restart", "scopes": ["tokens:read"]}))
                .send()
                .await
                .unwrap();
            if response.status() == 201 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} never recovered",
                app.base_url
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        until_current(app).await;
    }
    stop.store(true, Ordering::SeqCst);
    let mut total = 0;
    for writer in writers {
        let acknowledged = writer.await.unwrap();
        for id in &acknowledged {
            let response = a
                .authed(Method::GET, &format!("/v1/tokens/{id}"), &key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200, "acknowledged token {id} is gone");
        }
        total += acknowledged.len();
    }
    assert!(total >= 20, "only {total} writes were acknowledged");
    drop(server);
}
