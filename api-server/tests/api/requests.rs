//! Bad input gets a clear 4xx naming the problem, and stores nothing.

use crate::helpers::{TestApp, expect_error};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    malformed_and_mistyped_bodies_are_refused,
    oversize_bodies_are_refused,
    unknown_routes_and_methods,
);

async fn post_raw(app: &TestApp, body: &'static str) -> reqwest::Response {
    app.authed(Method::POST, "/v1/tokens", &app.api_key)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn malformed_and_mistyped_bodies_are_refused(app: TestApp) {
    for body in [
        r#"{"name": "x", "scopes": ["#,
        "not json",
        "",
        r#"{"name":"x","scopes":["tokens:read"]}{}"#,
    ] {
        let error = expect_error(post_raw(&app, body).await, 400, "invalid_json").await;
        assert!(
            error["message"].as_str().unwrap().contains("JSON"),
            "{error}"
        );
    }
    for (body, field, needle) in [
        (
            r#"{"name": 5, "scopes": ["tokens:read"]}"#,
            json!("name"),
            "invalid type",
        ),
        (
            r#"{"name": "x", "scopes": "tokens:read"}"#,
            json!("scopes"),
            "invalid type",
        ),
        (
            r#"{"name": "x", "scopes": ["tokens:read", "tokens:delete"]}"#,
            json!("scopes[1]"),
            "unknown scope `tokens:delete`",
        ),
        (
            r#"{"name": "x", "scopes": ["tokens:read"], "scope": []}"#,
            json!("scope"),
            "unknown field",
        ),
        (
            r#"{"scopes": ["tokens:read"]}"#,
            json!("name"),
            "missing field `name`",
        ),
        (
            r#"{"name": "x", "scopes": []}"#,
            json!("scopes"),
            "at least one scope",
        ),
        (
            r#"{"name": "   ", "scopes": ["tokens:read"]}"#,
            json!("name"),
            "must not be empty",
        ),
        (r#"[]"#, json!(null), "must be a JSON object"),
    ] {
        let error = expect_error(post_raw(&app, body).await, 422, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    }
    let listed = app
        .client(&app.api_key)
        .list_tokens(&Default::default())
        .await
        .unwrap();
    assert!(listed.data.is_empty(), "nothing was stored");
}

async fn oversize_bodies_are_refused(app: TestApp) {
    let big = json!({"name": "x".repeat(70 * 1024), "scopes": ["tokens:read"]}).to_string();
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .body(big.clone())
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 413, "payload_too_large").await;
    assert!(
        error["message"].as_str().unwrap().contains("65536"),
        "{error}"
    );
    // Without a Content-Length (chunked), the limit applies while reading.
    let chunks: Vec<Result<String, std::io::Error>> = big
        .as_bytes()
        .chunks(8192)
        .map(|c| Ok(String::from_utf8_lossy(c).into_owned()))
        .collect();
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    expect_error(response, 413, "payload_too_large").await;
    // A chunked body under the limit is fine.
    let small = json!({"name": "chunked", "scopes": ["tokens:read"]}).to_string();
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .body(reqwest::Body::wrap_stream(futures::stream::iter([Ok::<
            _,
            std::io::Error,
        >(
            small
        )])))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
}

async fn unknown_routes_and_methods(app: TestApp) {
    let response = app
        .authed(Method::GET, "/v1/nothing-here", &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "route_not_found").await;
    let response = app
        .authed(Method::PUT, "/v1/tokens", &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 405, "method_not_allowed").await;
    let response = app
        .raw(Method::DELETE, "/v1/tokens/x/rotate")
        .send()
        .await
        .unwrap();
    expect_error(response, 405, "method_not_allowed").await;
}

/// README "The API" (Rate limits): each credential has its own allowance; beyond it, 429 with
/// `Retry-After`, and a refused request changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_credential_is_rate_limited_with_retry_after() {
    let app = crate::helpers::spawn_app_with(crate::helpers::Backend::Sqlite, |settings| {
        settings.rate_limit = Some(tooken_api_server::rate_limit::RateLimit {
            per_second: 2.0,
            burst: 3.0,
        })
    })
    .await
    .expect("SQLite is always available");
    // The team key spends one request creating the token.
    let (_, token) = app.token("reader", json!(["tokens:read"])).await;
    let list = |credential: &str| app.authed(Method::GET, "/v1/tokens", credential).send();
    for _ in 0..3 {
        assert_eq!(list(&token).await.unwrap().status(), 200);
    }
    let refused = list(&token).await.unwrap();
    assert_eq!(refused.headers()["retry-after"], "1");
    expect_error(refused, 429, "rate_limited").await;

    // The team key has its own bucket: two requests left, then a refused create adds nothing.
    assert_eq!(list(&app.api_key).await.unwrap().status(), 200);
    let create = || {
        app.authed(Method::POST, "/v1/tokens", &app.api_key)
            .json(&json!({"name": "burst", "scopes": ["tokens:read"]}))
            .send()
    };
    assert_eq!(create().await.unwrap().status(), 201);
    expect_error(create().await.unwrap(), 429, "rate_limited").await;

    // After the wait it names, the credential works again.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let body = crate::helpers::expect_json(list(&app.api_key).await.unwrap(), 200).await;
    let names: Vec<&str> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["burst", "reader"]);
    assert_eq!(list(&token).await.unwrap().status(), 200);
}
