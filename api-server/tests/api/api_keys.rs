//! API keys: team and personal, create, list, regenerate, delete, and member roles.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tooken_api_server::store::members::{self, Member};
use tooken_api_server::store::{new_id, now};
use tooken_contract::api_keys::{ApiKeyKind, CreateApiKeyRequest};
use tooken_contract::members::{MemberStatus, Role};

on_both_backends!(
    team_keys_are_listed_without_secrets,
    regenerate_keeps_identity_and_kills_the_old_key,
    deleted_keys_stop_working,
    personal_keys_act_with_their_members_role,
    tokens_cannot_manage_api_keys,
    a_signed_in_owner_sees_every_key,
);

async fn add_member(app: &TestApp, email: &str, role: Role) -> String {
    let member = Member {
        id: new_id(),
        workspace_id: app.workspace_id.clone(),
        email: email.into(),
        role,
        status: MemberStatus::Active,
        user_id: None,
        created_at: now(),
    };
    let mut tx = app.store().begin_write().await.unwrap();
    members::insert(&mut tx, &member).await.unwrap();
    tx.commit().await.unwrap();
    member.id
}

async fn personal_key(app: &TestApp, member_id: &str) -> String {
    app.client(&app.api_key)
        .create_api_key(&CreateApiKeyRequest {
            name: format!("key of {member_id}"),
            kind: ApiKeyKind::Personal,
            member_id: Some(member_id.into()),
        })
        .await
        .unwrap()
        .key
        .unwrap()
}

async fn team_keys_are_listed_without_secrets(app: TestApp) {
    let admin = app.client(&app.api_key);
    let issued = admin
        .create_api_key(&CreateApiKeyRequest {
            name: "ci-pipeline".into(),
            kind: ApiKeyKind::Team,
            member_id: None,
        })
        .await
        .unwrap();
    let key = issued.key.clone().unwrap();
    assert!(key.starts_with("tok_live_"));
    assert_eq!(issued.api_key.prefix, key[..13]);
    app.client(&key)
        .list_api_keys()
        .await
        .expect("the new key works");

    let text = app
        .authed(Method::GET, "/v1/api-keys", &app.api_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!text.contains(&key) && !text.contains(&app.api_key));
    let list = admin.list_api_keys().await.unwrap();
    let names: Vec<&str> = list.data.iter().map(|k| k.name.as_str()).collect();
    assert_eq!(names, ["ci-pipeline", "bootstrap"]);

    // last_used_at shows up after use.
    let mut used = None;
    for _ in 0..60 {
        used = admin
            .get_api_key(&issued.api_key.id)
            .await
            .unwrap()
            .last_used_at;
        if used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(used.is_some(), "last_used_at recorded");

    for (body, field) in [
        (json!({"name": "", "kind": "team"}), "name"),
        (json!({"name": "x", "kind": "robot"}), "kind"),
        (
            json!({"name": "x", "kind": "team", "member_id": "m"}),
            "member_id",
        ),
        (json!({"name": "x", "kind": "personal"}), "member_id"),
        (
            json!({"name": "x", "kind": "personal", "member_id": "nobody"}),
            "member_id",
        ),
    ] {
        let response = app
            .authed(Method::POST, "/v1/api-keys", &app.api_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
    }
}

async fn regenerate_keeps_identity_and_kills_the_old_key(app: TestApp) {
    let admin = app.client(&app.api_key);
    let issued = admin
        .create_api_key(&CreateApiKeyRequest {
            name: "local-dev".into(),
            kind: ApiKeyKind::Team,
            member_id: None,
        })
        .await
        .unwrap();
    let old = issued.key.unwrap();
    app.client(&old)
        .list_api_keys()
        .await
        .expect("works before regeneration");
    let regenerated = admin.regenerate_api_key(&issued.api_key.id).await.unwrap();
    let new = regenerated.key.unwrap();
    assert_ne!(new, old);
    assert_eq!(regenerated.api_key.id, issued.api_key.id);
    assert_eq!(regenerated.api_key.name, "local-dev");
    assert_eq!(regenerated.api_key.prefix, new[..13]);
    let response = app
        .authed(Method::GET, "/v1/tokens", &old)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    app.client(&new)
        .list_tokens(&Default::default())
        .await
        .expect("new key works");
}

async fn deleted_keys_stop_working(app: TestApp) {
    let admin = app.client(&app.api_key);
    let issued = admin
        .create_api_key(&CreateApiKeyRequest {
            name: "temporary".into(),
            kind: ApiKeyKind::Team,
            member_id: None,
        })
        .await
        .unwrap();
    let key = issued.key.unwrap();
    app.client(&key)
        .list_api_keys()
        .await
        .expect("works before deletion");
    admin.delete_api_key(&issued.api_key.id).await.unwrap();
    let response = app
        .authed(Method::GET, "/v1/tokens", &key)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    let response = app
        .authed(
            Method::GET,
            &format!("/v1/api-keys/{}", issued.api_key.id),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    assert_eq!(admin.list_api_keys().await.unwrap().data.len(), 1);
}

async fn personal_keys_act_with_their_members_role(app: TestApp) {
    let owner = personal_key(
        &app,
        &add_member(&app, "owner@example.com", Role::Owner).await,
    )
    .await;
    let admin_id = add_member(&app, "admin@example.com", Role::Admin).await;
    let admin = personal_key(&app, &admin_id).await;
    let viewer_id = add_member(&app, "viewer@example.com", Role::Viewer).await;
    let viewer = personal_key(&app, &viewer_id).await;
    let create = |credential: &str, scopes: serde_json::Value| {
        app.authed(Method::POST, "/v1/tokens", credential)
            .json(&json!({"name": "by-member", "scopes": scopes}))
            .send()
    };

    // Viewer: reads, never writes.
    let response = app
        .authed(Method::GET, "/v1/tokens", &viewer)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
    let body = expect_error(
        create(&viewer, json!(["tokens:read"])).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("viewer"),
        "{body}"
    );
    // Admin: creates tokens, but cannot hand out settings scopes or make team keys.
    let token = expect_json(create(&admin, json!(["tokens:read"])).await.unwrap(), 201).await;
    expect_error(
        create(&admin, json!(["webhooks:write"])).await.unwrap(),
        403,
        "forbidden",
    )
    .await;
    let id = token["id"].as_str().unwrap();
    let response = app
        .authed(Method::POST, &format!("/v1/tokens/{id}/revoke"), &viewer)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let response = app
        .authed(Method::POST, &format!("/v1/tokens/{id}/revoke"), &admin)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
    let team = json!({"name": "team", "kind": "team"});
    let response = app
        .authed(Method::POST, "/v1/api-keys", &admin)
        .json(&team)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let response = app
        .authed(Method::POST, "/v1/api-keys", &owner)
        .json(&team)
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;

    // Members manage their own personal keys only, and see only those.
    let response = app
        .authed(Method::POST, "/v1/api-keys", &viewer)
        .json(&json!({"name": "mine", "kind": "personal"}))
        .send()
        .await
        .unwrap();
    let mine = expect_json(response, 201).await;
    assert_eq!(mine["member_id"], viewer_id.as_str());
    let listed = app.client(&viewer).list_api_keys().await.unwrap();
    assert!(
        listed
            .data
            .iter()
            .all(|k| k.member_id.as_deref() == Some(viewer_id.as_str()))
    );
    assert_eq!(listed.data.len(), 2);
    let admins_key = app
        .client(&app.api_key)
        .list_api_keys()
        .await
        .unwrap()
        .data
        .into_iter()
        .find(|k| k.member_id.as_deref() == Some(admin_id.as_str()))
        .unwrap();
    let response = app
        .authed(
            Method::DELETE,
            &format!("/v1/api-keys/{}", admins_key.id),
            &viewer,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;

    // Removing a member (through the store, in a write transaction, as the server does) kills
    // their keys at once.
    let mut tx = app.store().begin_write().await.unwrap();
    members::delete(&mut tx, &app.workspace_id, &admin_id)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let response = app
        .authed(Method::GET, "/v1/tokens", &admin)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
}

async fn tokens_cannot_manage_api_keys(app: TestApp) {
    let (_, token) = app
        .token(
            "all",
            json!([
                "tokens:read",
                "tokens:write",
                "tokens:revoke",
                "tokens:rotate",
                "audit:read",
                "webhooks:read",
                "webhooks:write"
            ]),
        )
        .await;
    let response = app
        .authed(Method::GET, "/v1/api-keys", &token)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let response = app
        .authed(Method::POST, "/v1/api-keys", &token)
        .json(&json!({"name": "x", "kind": "team"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
}

/// The dashboard lists keys with the Owner's session: that must show team keys and other
/// members' personal keys, as an Owner's personal key does.
async fn a_signed_in_owner_sees_every_key(app: TestApp) {
    let session = app.sign_up("owner@example.com").await;
    let response = app
        .authed(Method::POST, "/v1/workspaces", &session)
        .json(&json!({"name": "Mine"}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    let keys = "/v1/workspaces/mine/api-keys";
    for (name, kind) in [("ci", "team"), ("laptop", "personal")] {
        let response = app
            .authed(Method::POST, keys, &session)
            .json(&json!({"name": name, "kind": kind}))
            .send()
            .await
            .unwrap();
        expect_json(response, 201).await;
    }
    let listed = expect_json(
        app.authed(Method::GET, keys, &session)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let mut names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["name"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["ci", "laptop"]);
}
