//! The real binary: `bootstrap` on the command line, and acknowledged writes surviving kill -9.

use crate::helpers::{Backend, fresh_database};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use tooken_api_server::install_crypto_provider;

const BINARY: &str = env!("CARGO_BIN_EXE_tooken-server");

fn bootstrap(database_url: &str) -> String {
    let output = Command::new(BINARY)
        .args([
            "bootstrap",
            "--workspace",
            "production",
            "--owner-email",
            "ada@example.com",
        ])
        .env("DATABASE_URL", database_url)
        .output()
        .expect("run bootstrap");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("production") && !stderr.contains(&key),
        "{stderr}"
    );
    key
}

/// Starts the server on a free port and returns it with its base URL, read from its JSON log.
fn start(database_url: &str) -> (Child, String) {
    start_with(database_url, &[])
}

fn start_with(database_url: &str, extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0", "--log-format", "json"])
        .args(extra)
        .env("DATABASE_URL", database_url)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tooken-server");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("server exited before listening")
            .unwrap();
        if let Ok(entry) = serde_json::from_str::<Value>(&line)
            && entry["message"] == "listening"
        {
            break entry["address"].as_str().unwrap().to_owned();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}"))
}

async fn acknowledged_writes_survive_kill_9(backend: Backend) {
    install_crypto_provider();
    let Some(database_url) = fresh_database(backend).await else {
        return;
    };
    let key = bootstrap(&database_url);
    let (mut server, base_url) = start(&database_url);
    let http = reqwest::Client::new();
    let mut acknowledged = Vec::new();
    for i in 0..25 {
        let response = http
            .post(format!("{base_url}/v1/tokens"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"name": format!("t{i}"), "scopes": ["tokens:read"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        acknowledged.push((
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        ));
    }
    // SIGKILL right after the last acknowledgement: no shutdown hook runs.
    server.kill().unwrap();
    server.wait().unwrap();

    let (mut server, base_url) = start(&database_url);
    for (id, secret) in &acknowledged {
        let response = http
            .post(format!("{base_url}/v1/tokens/verify"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"token": secret}))
            .send()
            .await
            .unwrap();
        let verdict: Value = response.json().await.unwrap();
        assert_eq!(
            verdict["valid"], true,
            "{id} was acknowledged but lost: {verdict}"
        );
        assert_eq!(verdict["token_id"], id.as_str());
    }
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_acknowledged_writes_survive_kill_9() {
    acknowledged_writes_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_acknowledged_writes_survive_kill_9() {
    acknowledged_writes_survive_kill_9(Backend::Postgres).await;
}

#[test]
fn bootstrap_refuses_a_taken_slug_and_bad_urls() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let database_url = runtime.block_on(fresh_database(Backend::Sqlite)).unwrap();
    bootstrap(&database_url);
    let output = Command::new(BINARY)
        .args(["bootstrap", "--workspace", "Production"])
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(output.stdout.is_empty(), "no key printed");
    assert!(String::from_utf8_lossy(&output.stderr).contains("already exists"));

    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", "mysql://localhost/x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("DATABASE_URL must start with"));
}

/// Events whose webhooks were not yet delivered when the server was killed are delivered after
/// it restarts: the outbox is in the database, written with the change.
async fn undelivered_webhooks_survive_kill_9(backend: Backend) {
    install_crypto_provider();
    let Some(database_url) = fresh_database(backend).await else {
        return;
    };
    let key = bootstrap(&database_url);
    // The receiver listens on loopback, which deliveries may reach only when allowed.
    let fast_retries = [
        "--webhook-retry-base-ms",
        "50",
        "--webhook-allowed-targets",
        "127.0.0.0/8",
    ];
    let (mut server, base_url) = start_with(&database_url, &fast_retries);
    let http = reqwest::Client::new();
    let addr = crate::receiver::free_addr();
    let response = http
        .post(format!("{base_url}/v1/webhooks"))
        .bearer_auth(&key)
        .json(&serde_json::json!({"url": format!("http://{addr}/hook"), "event_types": ["token.created"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let mut created = Vec::new();
    for i in 0..10 {
        let response = http
            .post(format!("{base_url}/v1/tokens"))
            .bearer_auth(&key)
            .json(&serde_json::json!({"name": format!("t{i}"), "scopes": ["tokens:read"]}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        created.push(body["id"].as_str().unwrap().to_owned());
    }
    server.kill().unwrap();
    server.wait().unwrap();

    let receiver = crate::receiver::Receiver::start_on(addr).await;
    let (mut server, _) = start_with(&database_url, &fast_retries);
    receiver
        .wait_accepted(10, std::time::Duration::from_secs(30))
        .await;
    let mut delivered: Vec<String> = receiver
        .accepted()
        .iter()
        .map(|r| r.json()["data"]["id"].as_str().unwrap().to_owned())
        .collect();
    delivered.sort();
    delivered.dedup();
    created.sort();
    assert_eq!(
        delivered, created,
        "every acknowledged change reached the receiver"
    );
    server.kill().unwrap();
    server.wait().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_undelivered_webhooks_survive_kill_9() {
    undelivered_webhooks_survive_kill_9(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_undelivered_webhooks_survive_kill_9() {
    undelivered_webhooks_survive_kill_9(Backend::Postgres).await;
}

async fn get_json(http: &reqwest::Client, url: String, bearer: &str) -> Value {
    http.get(url)
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The Helm chart's path: a key generated by the installer, in a file, works from the first
/// start; restarts neither duplicate it nor the workspace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_key_file_is_installed_once() {
    install_crypto_provider();
    let database_url = fresh_database(Backend::Sqlite).await.unwrap();
    let key = tooken_contract::Secret::generate();
    let file = std::env::temp_dir().join(format!("tooken-key-{}", uuid::Uuid::now_v7()));
    std::fs::write(&file, format!("{}\n", key.expose())).unwrap();
    let file = file.display().to_string();
    let hook_file = std::env::temp_dir().join(format!("tooken-whsec-{}", uuid::Uuid::now_v7()));
    let hook_secret = format!("whsec_{}", tooken_contract::credential::random_base62(32));
    std::fs::write(&hook_file, &hook_secret).unwrap();
    let hook_file = hook_file.display().to_string();
    let args = [
        "--bootstrap-api-key-file",
        file.as_str(),
        "--bootstrap-workspace",
        "helm",
        "--bootstrap-webhook-url",
        "http://tooken-sidecar:8080/webhooks/tooken",
        "--bootstrap-webhook-secret-file",
        hook_file.as_str(),
        "--bootstrap-owner-email",
        "Ops@Example.com",
        "--signup",
        "invite-only",
    ];
    let http = reqwest::Client::new();
    for start in 0..2 {
        let (mut server, base_url) = start_with(&database_url, &args);
        let keys = get_json(&http, format!("{base_url}/v1/api-keys"), key.expose()).await;
        assert_eq!(keys["data"].as_array().unwrap().len(), 1, "{keys}");
        assert_eq!(keys["data"][0]["name"], "installer");
        let workspace = get_json(&http, format!("{base_url}/v1/workspace"), key.expose()).await;
        assert_eq!(workspace["slug"], "helm");
        let hooks = get_json(&http, format!("{base_url}/v1/webhooks"), key.expose()).await;
        assert_eq!(hooks["data"].as_array().unwrap().len(), 1, "{hooks}");
        assert_eq!(
            hooks["data"][0]["url"],
            "http://tooken-sidecar:8080/webhooks/tooken"
        );
        assert_eq!(
            hooks["data"][0]["event_types"],
            serde_json::json!(["token.rotated"])
        );
        assert!(!hooks.to_string().contains(&hook_secret));
        // The named Owner waits to sign up, once, even though sign-up is invite-only.
        let members = get_json(&http, format!("{base_url}/v1/members"), key.expose()).await;
        assert_eq!(members["data"].as_array().unwrap().len(), 1, "{members}");
        assert_eq!(members["data"][0]["email"], "ops@example.com");
        assert_eq!(members["data"][0]["role"], "owner");
        if start == 1 {
            let signed_up = http
                .post(format!("{base_url}/v1/auth/signup"))
                .json(&serde_json::json!({"email": "ops@example.com", "password": "correct horse battery"}))
                .send()
                .await
                .unwrap();
            assert_eq!(signed_up.status(), 201);
            let session: Value = signed_up.json().await.unwrap();
            let session = session["token"].as_str().unwrap();
            let me = get_json(&http, format!("{base_url}/v1/auth/me"), session).await;
            assert_eq!(me["memberships"][0]["workspace_slug"], "helm");
            assert_eq!(me["memberships"][0]["role"], "owner");
        }
        server.kill().unwrap();
        server.wait().unwrap();
    }
    std::fs::write(&file, "not a key").unwrap();
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("does not hold an API key"));

    // A mistyped Owner email stops the start with the variable's name, not later in silence.
    std::fs::write(&file, key.expose()).unwrap();
    let mut bad_owner = args;
    bad_owner[9] = "ops-at-example.com";
    let output = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .args(bad_owner)
        .env("DATABASE_URL", &database_url)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("TOOKEN_BOOTSTRAP_OWNER_EMAIL"), "{stderr}");
}

/// Logs read from a pipe, as `kubectl logs` reads them, are plain text: no colour codes.
#[test]
fn text_logs_into_a_pipe_carry_no_colour_codes() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let Some(database_url) = runtime.block_on(fresh_database(Backend::Sqlite)) else {
        return;
    };
    let mut child = Command::new(BINARY)
        .args(["--listen", "127.0.0.1:0"])
        .env("DATABASE_URL", &database_url)
        .env_remove("NO_COLOR")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tooken-server");
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = lines
        .find_map(|line| line.ok().filter(|line| line.contains("listening")))
        .expect("the server says where it listens");
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening.contains(" INFO "), "{listening}");
    assert!(!listening.contains('\x1b'), "{listening:?}");
}
