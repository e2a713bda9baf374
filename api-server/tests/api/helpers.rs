//! `spawn_app`: the real server on port 0 with a fresh database, plus an HTTP client.

use reqwest::{Method, RequestBuilder, Response};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tooken_api_server::app::{AppState, Application, Settings};
use tooken_api_server::bootstrap::{BootstrapRequest, bootstrap};
use tooken_api_server::install_crypto_provider;
use tooken_api_server::store::Store;
use tooken_api_server::webhook_targets::TargetPolicy;
use tooken_contract::Client;

pub const PASSWORD: &str = "correct horse battery";

pub use tooken_api_server::test_support::{
    Backend, fresh_database, postgres_admin_url, sqlx_connect,
};

pub struct TestApp {
    pub base_url: String,
    pub database_url: String,
    /// The bootstrap team key of the workspace `production`.
    pub api_key: String,
    pub workspace_id: String,
    pub state: AppState,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

/// A second server on the database of `app` (PostgreSQL), as another replica would be.
pub async fn spawn_replica(app: &TestApp) -> TestApp {
    let settings = Settings {
        usage_flush_interval: Duration::from_millis(50),
        sweep_interval: Duration::from_secs(3600),
        delivery: tooken_api_server::delivery::DeliverySettings {
            poll_interval: Duration::from_millis(50),
            targets: app.state.webhook_targets.clone(),
            ..Default::default()
        },
        ..Settings::new("127.0.0.1:0".parse().unwrap(), app.database_url.clone())
    };
    let replica = Application::build(&settings).await.expect("replica starts");
    let base_url = format!("http://{}", replica.local_addr());
    let state = replica.state().clone();
    let (shutdown, stopped) = oneshot::channel();
    tokio::spawn(replica.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base_url,
        database_url: app.database_url.clone(),
        api_key: app.api_key.clone(),
        workspace_id: app.workspace_id.clone(),
        state,
        http: reqwest::Client::new(),
        shutdown: Some(shutdown),
    }
}

/// `spawn_app` with settings adjusted by `customize`.
pub async fn spawn_app_with(
    backend: Backend,
    customize: impl FnOnce(&mut Settings),
) -> Option<TestApp> {
    let database_url = fresh_database(backend).await?;
    Some(spawn_app_on(database_url, customize).await)
}

/// `spawn_app_with` on the database at `database_url`.
pub async fn spawn_app_on(database_url: String, customize: impl FnOnce(&mut Settings)) -> TestApp {
    install_crypto_provider();
    let mut settings = Settings {
        db_max_connections: 8,
        usage_flush_interval: Duration::from_millis(50),
        // Tests run sweeps themselves (maintenance::sweep_once) when they need one.
        sweep_interval: Duration::from_secs(3600),
        // Webhook retries in milliseconds, so outages can be tested quickly.
        delivery: tooken_api_server::delivery::DeliverySettings {
            poll_interval: Duration::from_millis(50),
            attempt_timeout: Duration::from_secs(2),
            retry_base: Duration::from_millis(50),
            retry_cap: Duration::from_millis(400),
            // The tests' receivers listen on 127.0.0.1.
            targets: Arc::new(TargetPolicy::allowing_loopback()),
            ..Default::default()
        },
        ..Settings::new("127.0.0.1:0".parse().unwrap(), database_url.clone())
    };
    customize(&mut settings);
    let app = Application::build(&settings).await.expect("server starts");
    let base_url = format!("http://{}", app.local_addr());
    let state = app.state().clone();
    let done = bootstrap(&state.store, &request("production"))
        .await
        .expect("bootstrap");
    let (shutdown, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    TestApp {
        base_url,
        database_url,
        api_key: done.api_key.expose().to_owned(),
        workspace_id: done.workspace.id,
        state,
        http: reqwest::Client::new(),
        shutdown: Some(shutdown),
    }
}

pub fn request(workspace: &str) -> BootstrapRequest {
    BootstrapRequest {
        workspace_name: workspace.into(),
        slug: None,
        owner_email: None,
        key_name: "bootstrap".into(),
        api_key: None,
    }
}

impl TestApp {
    pub fn store(&self) -> &Store {
        &self.state.store
    }

    /// The typed client acting with `credential`.
    pub fn client(&self, credential: &str) -> Client {
        Client::new(self.http.clone(), &self.base_url, credential)
    }

    /// A raw request, for what the typed client cannot send (bad bodies, odd headers).
    pub fn raw(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
    }

    pub fn authed(&self, method: Method, path: &str, credential: &str) -> RequestBuilder {
        self.raw(method, path).bearer_auth(credential)
    }

    /// `GET path` with the team key; asserts 200 and returns the JSON body.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self
            .authed(Method::GET, path, &self.api_key)
            .send()
            .await
            .unwrap();
        expect_json(response, 200).await
    }

    /// Creates a token with the team key and returns (id, secret).
    pub async fn token(&self, name: &str, scopes: Value) -> (String, String) {
        let response = self
            .authed(Method::POST, "/v1/tokens", &self.api_key)
            .json(&serde_json::json!({"name": name, "scopes": scopes}))
            .send()
            .await
            .unwrap();
        let body = expect_json(response, 201).await;
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// `POST path` acting with `credential` and a JSON body; asserts `status`, returns the body.
    pub async fn post_as(&self, credential: &str, path: &str, body: Value, status: u16) -> Value {
        let response = self
            .authed(Method::POST, path, credential)
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_json(response, status).await
    }

    /// Creates a token from `body` with `credential`; returns the 201 body, secret included.
    pub async fn issue(&self, credential: &str, body: Value) -> Value {
        self.post_as(credential, "/v1/tokens", body, 201).await
    }

    /// Rotates token `id` with the team key (`body` as the rotate request); returns the answer.
    pub async fn rotate(&self, id: &str, body: Value) -> Value {
        self.post_as(&self.api_key, &format!("/v1/tokens/{id}/rotate"), body, 200)
            .await
    }

    /// Revokes token `id` with the team key.
    pub async fn revoke(&self, id: &str) {
        self.post_as(
            &self.api_key,
            &format!("/v1/tokens/{id}/revoke"),
            Value::Null,
            200,
        )
        .await;
    }

    /// Signs up `email` (password `correct horse battery`) and returns the session secret.
    pub async fn sign_up(&self, email: &str) -> String {
        let response = self
            .raw(Method::POST, "/v1/auth/signup")
            .json(&serde_json::json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        expect_json(response, 201).await["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Runs the background jobs once (expiry sweep, retention, clean-ups).
    pub async fn sweep(&self) {
        tooken_api_server::maintenance::sweep_once(&self.state.store)
            .await
            .expect("sweep");
    }

    /// Audit events of the production workspace, newest first, read with the team key.
    pub async fn audit_events(&self, query: &str) -> Vec<Value> {
        let response = self
            .authed(
                Method::GET,
                &format!("/v1/audit-logs?limit=200&{query}"),
                &self.api_key,
            )
            .send()
            .await
            .unwrap();
        expect_json(response, 200).await["data"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// The audit log's CSV export from an hour ago to an hour ahead, read with the team key.
    pub async fn export_recent_audit(&self) -> Response {
        let now = jiff::Timestamp::now();
        let hour = jiff::SignedDuration::from_hours(1);
        let (since, until) = (now - hour, now + hour);
        self.authed(
            Method::GET,
            &format!("/v1/audit-logs/export?since={since}&until={until}"),
            &self.api_key,
        )
        .send()
        .await
        .unwrap()
    }

    /// Creates a webhook for `event_types` to `url`; returns (id, signing secret).
    pub async fn webhook(&self, url: &str, event_types: &[&str]) -> (String, String) {
        let response = self
            .authed(Method::POST, "/v1/webhooks", &self.api_key)
            .json(&serde_json::json!({"url": url, "event_types": event_types}))
            .send()
            .await
            .unwrap();
        let body = expect_json(response, 201).await;
        (
            body["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
        )
    }

    /// A second workspace on the same server, with its own team key.
    pub async fn other_workspace(&self, name: &str) -> (String, String) {
        let done = bootstrap(self.store(), &request(name))
            .await
            .expect("bootstrap");
        (done.workspace.id, done.api_key.expose().to_owned())
    }
}

/// Asserts the status and returns the JSON body.
pub async fn expect_json(response: Response, status: u16) -> Value {
    let actual = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(actual, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("body is not JSON: {text}"))
}

/// Asserts an error response: status, code and (optionally) field.
pub async fn expect_error(response: Response, status: u16, code: &str) -> Value {
    let body = expect_json(response, status).await;
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

/// Leaves the test settings as they are.
pub fn unchanged(_: &mut Settings) {}

/// Runs each named scenario `async fn name(app: TestApp)` once on SQLite and once on PostgreSQL.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        $crate::on_both_backends_with!($crate::helpers::unchanged => $($name),*);
    };
}

/// `on_both_backends!` with the settings adjusted by `customize` (a path such as
/// `super::short_timeouts`, seen from inside the scenario's module).
#[macro_export]
macro_rules! on_both_backends_with {
    ($customize:path => $($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let backend = $crate::helpers::Backend::Sqlite;
                    let app = $crate::helpers::spawn_app_with(backend, $customize)
                        .await
                        .expect("SQLite is always available");
                    super::$name(app).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let backend = $crate::helpers::Backend::Postgres;
                    if let Some(app) = $crate::helpers::spawn_app_with(backend, $customize).await {
                        super::$name(app).await;
                    }
                }
            }
        )*
    };
}
