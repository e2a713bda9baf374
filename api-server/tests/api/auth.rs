//! Authentication failures and workspace isolation.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;
use tooken_contract::Secret;

on_both_backends!(
    unauthorized_bodies_are_exactly_as_documented,
    workspaces_are_isolated,
    workspace_scoped_paths_answer_the_same_routes,
);

async fn unauthorized_bodies_are_exactly_as_documented(app: TestApp) {
    let mut typo = app.api_key.clone().into_bytes();
    typo[20] = if typo[20] == b'a' { b'b' } else { b'a' };
    let typo = String::from_utf8(typo).unwrap();
    let headers: Vec<Option<String>> = vec![
        None,
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(format!("Basic {}", app.api_key)),
        Some(format!("Bearer  {}", app.api_key)),
        Some(format!("Bearer {typo}")),
        Some(format!("Bearer {}", Secret::generate().expose())),
        Some(app.api_key.clone()),
    ];
    for header in headers {
        let mut request = app.raw(Method::GET, "/v1/tokens");
        if let Some(value) = &header {
            request = request.header("authorization", value);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401, "{header:?}");
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"error": "unauthorized", "message": "Invalid or missing API key"}),
            "{header:?}"
        );
    }
}

async fn workspaces_are_isolated(app: TestApp) {
    let (id, secret) = app.token("prod-only", json!(["tokens:read"])).await;
    let (_, staging_key) = app.other_workspace("staging").await;
    for (method, path) in [
        (Method::GET, format!("/v1/tokens/{id}")),
        (Method::POST, format!("/v1/tokens/{id}/rotate")),
        (Method::POST, format!("/v1/tokens/{id}/revoke")),
    ] {
        let response = app
            .authed(method.clone(), &path, &staging_key)
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 404, "not_found").await;
        assert_eq!(body["message"], "token not found", "{method} {path}");
    }
    let listed = expect_json(
        app.authed(Method::GET, "/v1/tokens", &staging_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(listed["data"], json!([]));
    let response = app
        .authed(Method::POST, "/v1/tokens/verify", &staging_key)
        .json(&json!({"token": secret}))
        .send()
        .await
        .unwrap();
    let verdict = expect_json(response, 200).await;
    assert_eq!(verdict, json!({"valid": false, "reason": "not_found"}));
    let keys = expect_json(
        app.authed(Method::GET, "/v1/api-keys", &staging_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    let prod_key_id = app.client(&app.api_key).list_api_keys().await.unwrap().data[0]
        .id
        .clone();
    for method in [Method::GET, Method::DELETE] {
        let response = app
            .authed(method, &format!("/v1/api-keys/{prod_key_id}"), &staging_key)
            .send()
            .await
            .unwrap();
        expect_error(response, 404, "not_found").await;
    }
    // The production token is untouched.
    let token = app.client(&app.api_key).get_token(&id).await.unwrap();
    assert_eq!(token.rotation, 0);
    assert!(token.revoked_at.is_none());
}

async fn workspace_scoped_paths_answer_the_same_routes(app: TestApp) {
    let (id, _) = app.token("scoped", json!(["tokens:read"])).await;
    let response = app
        .authed(
            Method::GET,
            &format!("/v1/workspaces/production/tokens/{id}"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["id"], id.as_str());
    let response = app
        .authed(
            Method::POST,
            "/v1/workspaces/production/tokens",
            &app.api_key,
        )
        .json(&json!({"name": "via-slug", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    // Another workspace's slug, even with a valid key, is not found.
    let (_, staging_key) = app.other_workspace("staging").await;
    let response = app
        .authed(
            Method::GET,
            "/v1/workspaces/production/tokens",
            &staging_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = app
        .authed(
            Method::GET,
            "/v1/workspaces/nonexistent/tokens",
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
}
