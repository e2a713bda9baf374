//! `Idempotency-Key`: a retried POST changes nothing and never shows a secret twice.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    replays_return_the_stored_response_without_the_secret,
    concurrent_retries_create_one_token,
    rotation_and_api_keys_are_idempotent_too,
);

async fn replays_return_the_stored_response_without_the_secret(app: TestApp) {
    let send = |body: serde_json::Value, key: &'static str| {
        app.authed(Method::POST, "/v1/tokens", &app.api_key)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()
    };
    let body = json!({"name": "once", "scopes": ["tokens:read"]});
    let first = send(body.clone(), "create-once-1").await.unwrap();
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first = expect_json(first, 201).await;
    assert!(first["secret"].as_str().unwrap().starts_with("tok_live_"));

    let replay = send(body.clone(), "create-once-1").await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay = expect_json(replay, 201).await;
    assert_eq!(replay["id"], first["id"]);
    assert_eq!(
        replay["secret"],
        serde_json::Value::Null,
        "a replay never shows the secret"
    );
    let mut without_secret = first.clone();
    without_secret["secret"] = serde_json::Value::Null;
    assert_eq!(replay, without_secret);

    let tokens = app
        .client(&app.api_key)
        .list_tokens(&Default::default())
        .await
        .unwrap();
    assert_eq!(tokens.data.len(), 1);

    // The same key with a different request is refused and changes nothing.
    let other = send(
        json!({"name": "twice", "scopes": ["tokens:read"]}),
        "create-once-1",
    )
    .await
    .unwrap();
    let error = expect_error(other, 422, "validation_failed").await;
    assert_eq!(error["field"], "Idempotency-Key");
    // A different key is a different request.
    expect_json(send(body, "create-once-2").await.unwrap(), 201).await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .header("Idempotency-Key", "")
        .json(&json!({"name": "x", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_failed").await;
    assert_eq!(
        app.client(&app.api_key)
            .list_tokens(&Default::default())
            .await
            .unwrap()
            .data
            .len(),
        2
    );
}

async fn concurrent_retries_create_one_token(app: TestApp) {
    let attempts = (0..8).map(|_| {
        app.authed(Method::POST, "/v1/tokens", &app.api_key)
            .header("Idempotency-Key", "burst")
            .json(&json!({"name": "burst", "scopes": ["tokens:read"]}))
            .send()
    });
    let responses = futures::future::join_all(attempts).await;
    let mut secrets = 0;
    for response in responses {
        let response = response.unwrap();
        let status = response.status().as_u16();
        assert!(status == 201 || status == 409, "{status}");
        if status == 201 {
            let body: serde_json::Value = response.json().await.unwrap();
            secrets += usize::from(body["secret"].is_string());
        }
    }
    assert_eq!(secrets, 1, "exactly one response carries the secret");
    let tokens = app
        .client(&app.api_key)
        .list_tokens(&Default::default())
        .await
        .unwrap();
    assert_eq!(tokens.data.len(), 1);
}

async fn rotation_and_api_keys_are_idempotent_too(app: TestApp) {
    let (id, _) = app.token("rotate-me", json!(["tokens:read"])).await;
    let rotate = || {
        app.authed(
            Method::POST,
            &format!("/v1/tokens/{id}/rotate"),
            &app.api_key,
        )
        .header("Idempotency-Key", "rotate-1")
        .send()
    };
    let first = expect_json(rotate().await.unwrap(), 200).await;
    let again = expect_json(rotate().await.unwrap(), 200).await;
    assert_eq!(first["rotation"], 1);
    assert_eq!(again["rotation"], 1, "the retry did not rotate again");
    assert!(again["secret"].is_null());

    let create_key = || {
        app.authed(Method::POST, "/v1/api-keys", &app.api_key)
            .header("Idempotency-Key", "key-1")
            .json(&json!({"name": "ci", "kind": "team"}))
            .send()
    };
    let first = expect_json(create_key().await.unwrap(), 201).await;
    let again = expect_json(create_key().await.unwrap(), 201).await;
    assert_eq!(first["id"], again["id"]);
    assert!(first["key"].is_string() && again["key"].is_null());
}
