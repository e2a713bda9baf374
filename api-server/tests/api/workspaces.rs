//! Workspace settings: validation, who may change them, and their effects.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::json;

on_both_backends!(
    settings_are_validated_applied_and_audited,
    default_expiry_applies_to_new_tokens
);

async fn patch(app: &TestApp, credential: &str, body: serde_json::Value) -> reqwest::Response {
    app.authed(Method::PATCH, "/v1/workspace", credential)
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn settings_are_validated_applied_and_audited(app: TestApp) {
    let current = expect_json(
        app.authed(Method::GET, "/v1/workspace", &app.api_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(current["slug"], "production");
    assert_eq!(current["timezone"], "UTC");

    for (body, field) in [
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone"),
        (json!({"slug": "Not A Slug"}), "slug"),
        (json!({"name": ""}), "name"),
        (
            json!({"default_token_expiry_days": 0}),
            "default_token_expiry_days",
        ),
        (
            json!({"default_token_expiry_days": 366}),
            "default_token_expiry_days",
        ),
        (json!({"audit_retention_days": 400}), "audit_retention_days"),
        (
            json!({"audit_retention_days": null}),
            "audit_retention_days",
        ),
        (json!({"colour": "blue"}), "colour"),
    ] {
        let error = expect_error(
            patch(&app, &app.api_key, body.clone()).await,
            422,
            "validation_failed",
        )
        .await;
        assert_eq!(error["field"], field, "{body}");
    }
    // Tokens never change settings.
    let (_, token) = app.token("t", json!(["tokens:read", "tokens:write"])).await;
    expect_error(
        patch(&app, &token, json!({"name": "x"})).await,
        403,
        "forbidden",
    )
    .await;

    let updated = expect_json(
        patch(
            &app,
            &app.api_key,
            json!({"name": "Production EU", "slug": "prod-eu", "timezone": "Europe/Berlin",
                   "default_token_expiry_days": 30, "audit_retention_days": 365}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(updated["slug"], "prod-eu");
    assert_eq!(updated["timezone"], "Europe/Berlin");
    assert_eq!(updated["default_token_expiry_days"], 30);

    // The slug moves the paths.
    let response = app
        .authed(
            Method::GET,
            "/v1/workspaces/production/tokens",
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let response = app
        .authed(Method::GET, "/v1/workspaces/prod-eu/tokens", &app.api_key)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;

    // The audit event carries a diff of exactly what changed.
    let events = app.audit_events("type=workspace.settings_changed").await;
    assert_eq!(events.len(), 1);
    let changes = &events[0]["data"]["changes"];
    assert_eq!(
        changes["slug"],
        json!({"from": "production", "to": "prod-eu"})
    );
    assert_eq!(
        changes["default_token_expiry_days"],
        json!({"from": 90, "to": 30})
    );
    assert!(changes.get("created_at").is_none());
    // A no-op change records nothing.
    expect_json(
        patch(&app, &app.api_key, json!({"timezone": "Europe/Berlin"})).await,
        200,
    )
    .await;
    assert_eq!(
        app.audit_events("type=workspace.settings_changed")
            .await
            .len(),
        1
    );

    // Another workspace cannot take the slug.
    let (_, other_key) = app.other_workspace("other").await;
    expect_error(
        patch(&app, &other_key, json!({"slug": "prod-eu"})).await,
        409,
        "slug_taken",
    )
    .await;
}

async fn default_expiry_applies_to_new_tokens(app: TestApp) {
    expect_json(
        patch(&app, &app.api_key, json!({"default_token_expiry_days": 7})).await,
        200,
    )
    .await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "weekly", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    let token = expect_json(response, 201).await;
    let expires: Timestamp = token["expires_at"].as_str().unwrap().parse().unwrap();
    let week = Timestamp::now() + SignedDuration::from_hours(24 * 7);
    assert!(
        (week - SignedDuration::from_secs(60)..=week).contains(&expires),
        "{expires}"
    );

    expect_json(
        patch(
            &app,
            &app.api_key,
            json!({"default_token_expiry_days": null}),
        )
        .await,
        200,
    )
    .await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "forever", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, 201).await["expires_at"],
        serde_json::Value::Null
    );
}
