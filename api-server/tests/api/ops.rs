//! Health, readiness, metrics, request ids, and a database that goes away.

use crate::helpers::{Backend, TestApp, expect_error, expect_json, spawn_app};
use crate::on_both_backends;
use reqwest::Method;

on_both_backends!(
    health_readiness_and_metrics,
    request_ids_are_echoed_or_generated
);

async fn health_readiness_and_metrics(app: TestApp) {
    let health = expect_json(app.raw(Method::GET, "/healthz").send().await.unwrap(), 200).await;
    assert_eq!(health["status"], "ok");
    let ready = expect_json(app.raw(Method::GET, "/readyz").send().await.unwrap(), 200).await;
    assert_eq!(ready["status"], "ready");
    app.authed(Method::GET, "/v1/tokens", &app.api_key)
        .send()
        .await
        .unwrap();
    app.raw(
        Method::GET,
        "/v1/tokens/0190aaaa-0000-7000-8000-000000000000",
    )
    .send()
    .await
    .unwrap();
    app.raw(Method::GET, "/no/such/path").send().await.unwrap();
    let response = app.raw(Method::GET, "/metrics").send().await.unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text")
    );
    let metrics = response.text().await.unwrap();
    for line in [
        r#"tooken_http_requests_total{method="GET",route="/v1/tokens",status="200"} 1"#,
        r#"tooken_http_requests_total{method="GET",route="/v1/tokens/{id}",status="401"} 1"#,
        r#"tooken_http_requests_total{method="GET",route="unmatched",status="404"} 1"#,
        "tooken_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(line), "missing {line} in\n{metrics}");
    }
    assert!(
        !metrics.contains("0190aaaa"),
        "ids never become label values"
    );
}

async fn request_ids_are_echoed_or_generated(app: TestApp) {
    let response = app
        .raw(Method::GET, "/healthz")
        .header("x-request-id", "trace-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-abc-123");
    let first = app.raw(Method::GET, "/healthz").send().await.unwrap();
    let second = app.raw(Method::GET, "/healthz").send().await.unwrap();
    let a = first.headers()["x-request-id"].to_str().unwrap().to_owned();
    let b = second.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!a.is_empty() && a != b);
    let response = app
        .raw(Method::GET, "/healthz")
        .header("x-request-id", "has spaces and is suspicious")
        .send()
        .await
        .unwrap();
    assert_ne!(
        response.headers()["x-request-id"],
        "has spaces and is suspicious"
    );
}

/// PostgreSQL disappears under a running server: requests get 503 with Retry-After, readiness
/// fails, and nothing pretends to succeed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_is_503_not_a_lie() {
    let Some(app) = spawn_app(Backend::Postgres).await else {
        return;
    };
    let (id, _) = app
        .token("before-outage", serde_json::json!(["tokens:read"]))
        .await;
    let admin = crate::helpers::postgres_admin_url().unwrap();
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let mut conn = crate::helpers::sqlx_connect(&admin).await;
    sqlx::Executor::execute(
        &mut conn,
        sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")),
    )
    .await
    .unwrap();
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&serde_json::json!({"name": "during-outage", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    expect_error(response, 503, "unavailable").await;
    let response = app
        .authed(Method::GET, &format!("/v1/tokens/{id}"), &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 503, "unavailable").await;
    let ready = app.raw(Method::GET, "/readyz").send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let health = app.raw(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200, "the process itself is alive");
}
