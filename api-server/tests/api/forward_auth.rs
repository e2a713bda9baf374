//! `/v1/workspaces/{slug}/forward-auth` over HTTP, as each gateway calls it: what admits a
//! request and what the upstream learns, and every way it refuses one.

use crate::helpers::{TestApp, expect_error};
use crate::on_both_backends;
use reqwest::{Method, Response};
use serde_json::json;

on_both_backends!(
    a_token_with_the_scopes_is_admitted_and_named,
    tokens_that_do_not_work_get_the_seeds_401,
    a_missing_scope_is_named_in_the_403,
    the_gate_configuration_is_checked,
    envoy_requests_carry_the_path_and_a_scope_header,
);

const UNAUTHORIZED: &str = r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#;

async fn gate(app: &TestApp, query: &str, token: Option<&str>) -> Response {
    let mut request = app.raw(
        Method::GET,
        &format!("/v1/workspaces/production/forward-auth{query}"),
    );
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

async fn expect_unauthorized(response: Response) {
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(response.text().await.unwrap(), UNAUTHORIZED);
}

async fn a_token_with_the_scopes_is_admitted_and_named(app: TestApp) {
    let (id, secret) = app
        .token("orders api ü", json!(["tokens:write", "tokens:read"]))
        .await;
    for query in [
        "",
        "?scope=tokens:read",
        "?scope=tokens:read&scope=tokens%3Awrite",
    ] {
        let response = gate(&app, query, Some(&secret)).await;
        assert_eq!(response.status(), 200, "{query}");
        let headers = response.headers();
        assert_eq!(headers["x-tooken-token-id"], id.as_str());
        assert_eq!(headers["x-tooken-token-name"], "orders api %C3%BC");
        assert_eq!(headers["x-tooken-scopes"], "tokens:read tokens:write");
        assert!(response.text().await.unwrap().is_empty());
    }
    // Its use is recorded, as for any other check.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    while app.get_json(&format!("/v1/tokens/{id}")).await["last_used_at"].is_null() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "last_used_at never set"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn tokens_that_do_not_work_get_the_seeds_401(app: TestApp) {
    expect_unauthorized(gate(&app, "?scope=tokens:read", None).await).await;
    expect_unauthorized(gate(&app, "", Some("tok_live_garbled")).await).await;
    let unknown = tooken_contract::Secret::generate();
    expect_unauthorized(gate(&app, "", Some(unknown.expose())).await).await;
    // An API key manages the workspace; it is not a token a gateway admits.
    expect_unauthorized(gate(&app, "", Some(&app.api_key)).await).await;

    let (id, secret) = app.token("soon-revoked", json!(["tokens:read"])).await;
    assert_eq!(gate(&app, "", Some(&secret)).await.status(), 200);
    app.revoke(&id).await;
    expect_unauthorized(gate(&app, "", Some(&secret)).await).await;

    let (id, old) = app.token("rotated", json!(["tokens:read"])).await;
    app.rotate(&id, json!({})).await;
    expect_unauthorized(gate(&app, "", Some(&old)).await).await;

    // Another workspace's token, at this workspace's gate; and this one's at theirs.
    let (_, other_key) = app.other_workspace("staging").await;
    let theirs = app
        .issue(
            &other_key,
            json!({"name": "theirs", "scopes": ["tokens:read"]}),
        )
        .await;
    let theirs = theirs["secret"].as_str().unwrap();
    expect_unauthorized(gate(&app, "", Some(theirs)).await).await;
    let (_, mine) = app.token("mine", json!(["tokens:read"])).await;
    let response = app
        .raw(Method::GET, "/v1/workspaces/staging/forward-auth")
        .bearer_auth(&mine)
        .send()
        .await
        .unwrap();
    expect_unauthorized(response).await;
}

async fn a_missing_scope_is_named_in_the_403(app: TestApp) {
    let (_, reader) = app.token("reader", json!(["tokens:read"])).await;
    let body = expect_error(
        gate(&app, "?scope=tokens:write", Some(&reader)).await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(body["message"], "this token lacks the `tokens:write` scope");
    let body = expect_error(
        gate(
            &app,
            "?scope=tokens:read&scope=audit:read&scope=tokens:revoke",
            Some(&reader),
        )
        .await,
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        body["message"],
        "this token lacks the `tokens:revoke`, `audit:read` scopes"
    );
}

async fn the_gate_configuration_is_checked(app: TestApp) {
    let (_, reader) = app.token("reader", json!(["tokens:read"])).await;
    // A misspelt scope or parameter is the gateway's mistake: 422 whatever the token, never
    // a gate that checks nothing.
    for (query, field) in [
        ("?scope=tokens:raed", "scope"),
        ("?scopes=tokens:read", "scopes"),
    ] {
        for token in [Some(reader.as_str()), None] {
            let body = expect_error(gate(&app, query, token).await, 422, "validation_failed").await;
            assert_eq!(body["field"], field, "{body}");
        }
    }
}

async fn envoy_requests_carry_the_path_and_a_scope_header(app: TestApp) {
    let (id, reader) = app.token("reader", json!(["tokens:read"])).await;
    // ext_authz appends the client's path and query, and keeps the client's method.
    let envoy = |method: Method, scopes: &str| {
        app.raw(
            method,
            "/v1/workspaces/production/forward-auth/api/orders/7?expand=items",
        )
        .bearer_auth(&reader)
        .header("x-tooken-required-scopes", scopes)
        .send()
    };
    let response = envoy(Method::POST, "tokens:read").await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-tooken-token-id"], id.as_str());
    let body = expect_error(
        envoy(Method::DELETE, "tokens:read,tokens:revoke")
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert_eq!(
        body["message"],
        "this token lacks the `tokens:revoke` scope"
    );
    let body = expect_error(
        envoy(Method::GET, "tokens:nope").await.unwrap(),
        422,
        "validation_failed",
    )
    .await;
    assert_eq!(body["field"], "x-tooken-required-scopes");
}
