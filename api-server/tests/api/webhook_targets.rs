//! Webhook URLs cannot make the server send requests inside its own network (SSRF): refused
//! addresses get a 422 when the endpoint is saved, and a delivery to a name that resolves to
//! one fails with the reason, without connecting. The allow-list opens what an operator names.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::receiver::Receiver;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tooken_api_server::app::Settings;
use tooken_api_server::bootstrap::ensure_webhook;
use tooken_api_server::webhook_targets::TargetPolicy;

const WAIT: Duration = Duration::from_secs(20);
const SECRET: &str = "whsec_0123456789abcdefghijklmnop";

/// The defaults a server starts with: no allow-list.
fn no_allow_list(settings: &mut Settings) {
    settings.delivery.targets = Arc::default();
}

/// The chart's way: its sidecar allowed by host name (here `localhost`, which resolves to
/// loopback like a cluster Service name resolves to a private address).
fn localhost_allowed_by_name(settings: &mut Settings) {
    settings.delivery.targets = Arc::new(TargetPolicy::new(["localhost".parse().unwrap()]));
}

crate::on_both_backends_with!(super::no_allow_list =>
    internal_urls_are_refused_when_saved,
    deliveries_to_names_resolving_inside_are_refused_unsent,
);
crate::on_both_backends_with!(super::localhost_allowed_by_name =>
    a_host_on_the_allow_list_gets_its_deliveries,
);

async fn webhooks(app: &TestApp) -> Vec<Value> {
    app.get_json("/v1/webhooks").await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn internal_urls_are_refused_when_saved(app: TestApp) {
    for (url, reason) in [
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://[::1]:8080/x", "loopback"),
        ("http://localhost:6443/api", "loopback"),
        ("http://10.0.0.1/x", "private"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://0.0.0.0:8080/x", "unspecified"),
        ("http://2130706433/x", "loopback"),
    ] {
        let response = app
            .authed(Method::POST, "/v1/webhooks", &app.api_key)
            .json(&json!({"url": url, "event_types": ["token.created"]}))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_failed").await;
        assert_eq!(error["field"], "url", "{url}: {error}");
        let message = error["message"].as_str().unwrap();
        assert!(message.contains(reason), "{url}: {message}");
        assert!(
            message.contains("TOOKEN_WEBHOOK_ALLOWED_TARGETS"),
            "{message}"
        );
    }
    assert!(webhooks(&app).await.is_empty(), "nothing was written");
    // An existing endpoint cannot be moved inside either, and stays as it was.
    let (hook, _) = app
        .webhook("https://hooks.example.com/tooken", &["token.created"])
        .await;
    let response = app
        .authed(Method::PATCH, &format!("/v1/webhooks/{hook}"), &app.api_key)
        .json(&json!({"url": "http://192.168.1.1/admin"}))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "validation_failed").await;
    assert!(
        error["message"].as_str().unwrap().contains("private"),
        "{error}"
    );
    let listed = webhooks(&app).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["url"], "https://hooks.example.com/tooken");
}

/// Waits until the endpoint's only delivery has been attempted; returns it.
async fn attempted_delivery(app: &TestApp, hook: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let log = app
            .get_json(&format!("/v1/webhooks/{hook}/deliveries"))
            .await;
        if let Some(delivery) = log["data"].as_array().unwrap().first()
            && delivery["attempts"].as_i64().unwrap() >= 1
        {
            return delivery.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no attempt: {log}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn endpoint_id(app: &TestApp, url: &str) -> String {
    webhooks(app)
        .await
        .iter()
        .find(|hook| hook["url"] == url)
        .expect("the endpoint exists")["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn deliveries_to_names_resolving_inside_are_refused_unsent(app: TestApp) {
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned(); // "PORT/hook"
    // Endpoints the creation check never saw (as if a name changed what it resolves to
    // after it was saved): one by a name that resolves to loopback, one by address.
    let by_name = format!("http://localhost:{port}");
    let by_address = receiver.url.clone();
    for url in [&by_name, &by_address] {
        ensure_webhook(app.store(), "production", url, SECRET)
            .await
            .expect("endpoint installed");
    }
    // A rotation is the event the installed endpoints subscribe to.
    let (id, _) = app.token("rotated", json!(["tokens:read"])).await;
    let rotate = format!("/v1/tokens/{id}/rotate");
    let rotated = app.authed(Method::POST, &rotate, &app.api_key).send();
    expect_json(rotated.await.unwrap(), 200).await;
    for (url, needle) in [
        (
            &by_name,
            "localhost, which resolves to an address that is a loopback address",
        ),
        (&by_address, "127.0.0.1 is a loopback address"),
    ] {
        let hook = endpoint_id(&app, url).await;
        let delivery = attempted_delivery(&app, &hook).await;
        // Refused for good: retrying cannot help until an operator allows the target.
        assert_eq!(delivery["status"], "failed", "{delivery}");
        assert_eq!(delivery["attempts"], 1, "{delivery}");
        assert!(delivery["last_status_code"].is_null(), "{delivery}");
        let error = delivery["last_error"].as_str().unwrap();
        assert!(error.contains(needle), "{url}: {error}");
    }
    assert!(
        receiver.received().is_empty(),
        "nothing reached the receiver"
    );
}

async fn a_host_on_the_allow_list_gets_its_deliveries(app: TestApp) {
    let receiver = Receiver::start().await;
    let port = receiver.url.rsplit(':').next().unwrap().to_owned();
    let url = format!("http://localhost:{port}");
    // Saving it is allowed too: the name is on the list.
    let (hook, _) = app.webhook(&url, &["token.created"]).await;
    app.token("delivered", json!(["tokens:read"])).await;
    let got = receiver.wait_accepted(1, WAIT).await;
    assert_eq!(got[0].json()["type"], "token.created");
    let delivery = attempted_delivery(&app, &hook).await;
    assert_eq!(delivery["status"], "delivered", "{delivery}");
    // Its address is not on the list: by address, the same receiver stays refused.
    let response = app
        .authed(Method::POST, "/v1/webhooks", &app.api_key)
        .json(&json!({"url": receiver.url, "event_types": ["token.created"]}))
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_failed").await;
}
