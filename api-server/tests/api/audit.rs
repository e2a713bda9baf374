//! The audit log: every event, in the same transaction, filters, CSV export, expiry, retention.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;
use tooken_api_server::store::{audit as audit_store, new_id};
use tooken_contract::audit::{Actor, ActorKind, AuditEvent};

on_both_backends!(
    every_change_is_recorded_without_secrets,
    filters_and_pagination,
    who_may_read_the_audit_log,
    csv_export_is_spreadsheet_safe_and_in_the_workspace_timezone,
    expiry_is_recorded_once_per_token,
    retention_deletes_old_events_and_records_the_purge,
);

async fn post(app: &TestApp, path: &str, body: Value, request_id: &str) -> Value {
    let response = app
        .authed(Method::POST, path, &app.api_key)
        .header("x-request-id", request_id)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert!(status == 200 || status == 201, "{path}: {status}");
    response.json().await.unwrap()
}

async fn every_change_is_recorded_without_secrets(app: TestApp) {
    let token = post(
        &app,
        "/v1/tokens",
        json!({"name": "audited", "scopes": ["tokens:read"]}),
        "req-create",
    )
    .await;
    let id = token["id"].as_str().unwrap();
    let rotated = post(
        &app,
        &format!("/v1/tokens/{id}/rotate"),
        json!({}),
        "req-rotate",
    )
    .await;
    post(
        &app,
        &format!("/v1/tokens/{id}/revoke"),
        json!({}),
        "req-revoke",
    )
    .await;
    let key = post(
        &app,
        "/v1/api-keys",
        json!({"name": "ci", "kind": "team"}),
        "req-key",
    )
    .await;
    let key_id = key["id"].as_str().unwrap();
    let regenerated = post(
        &app,
        &format!("/v1/api-keys/{key_id}/regenerate"),
        json!({}),
        "req-regen",
    )
    .await;
    app.authed(
        Method::DELETE,
        &format!("/v1/api-keys/{key_id}"),
        &app.api_key,
    )
    .send()
    .await
    .unwrap();
    let member = post(
        &app,
        "/v1/members",
        json!({"email": "eve@example.com", "role": "viewer"}),
        "req-invite",
    )
    .await;
    let member_id = member["id"].as_str().unwrap();
    app.authed(
        Method::PATCH,
        &format!("/v1/members/{member_id}"),
        &app.api_key,
    )
    .json(&json!({"role": "admin"}))
    .send()
    .await
    .unwrap();
    app.authed(
        Method::DELETE,
        &format!("/v1/members/{member_id}"),
        &app.api_key,
    )
    .send()
    .await
    .unwrap();
    app.authed(Method::PATCH, "/v1/workspace", &app.api_key)
        .json(&json!({"timezone": "Asia/Tokyo"}))
        .send()
        .await
        .unwrap();

    let events = app.audit_events("").await;
    let types: Vec<&str> = events
        .iter()
        .rev()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "token.created",
            "token.rotated",
            "token.revoked",
            "api_key.created",
            "api_key.regenerated",
            "api_key.deleted",
            "member.invited",
            "member.role_changed",
            "member.removed",
            "workspace.settings_changed",
        ]
    );
    let created = events
        .iter()
        .find(|e| e["type"] == "token.created")
        .unwrap();
    assert_eq!(created["target_type"], "token");
    assert_eq!(created["target_id"], id);
    assert_eq!(created["request_id"], "req-create");
    assert_eq!(created["actor"]["kind"], "team_key");
    assert_eq!(created["actor"]["label"], "bootstrap");
    let at: Timestamp = created["created_at"].as_str().unwrap().parse().unwrap();
    assert!(
        created["created_at"].as_str().unwrap().ends_with('Z'),
        "UTC"
    );
    assert!(Timestamp::now().duration_since(at) < SignedDuration::from_mins(1));
    let role_change = events
        .iter()
        .find(|e| e["type"] == "member.role_changed")
        .unwrap();
    assert_eq!(
        role_change["data"]["changes"]["role"],
        json!({"from": "viewer", "to": "admin"})
    );

    let text = serde_json::to_string(&events).unwrap();
    for secret in [
        &token["secret"],
        &rotated["secret"],
        &key["key"],
        &regenerated["key"],
    ] {
        assert!(
            !text.contains(secret.as_str().unwrap()),
            "a secret reached the audit log"
        );
    }
    assert!(!text.contains(&app.api_key));
}

async fn filters_and_pagination(app: TestApp) {
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(app.token(&format!("t{i}"), json!(["tokens:read"])).await.0);
    }
    app.authed(
        Method::POST,
        &format!("/v1/tokens/{}/revoke", ids[0]),
        &app.api_key,
    )
    .send()
    .await
    .unwrap();
    assert_eq!(app.audit_events("type=token.created").await.len(), 5);
    assert_eq!(app.audit_events("type=token.revoked").await.len(), 1);
    let about_first = app.audit_events(&format!("target={}", ids[0])).await;
    assert_eq!(about_first.len(), 2);
    let key_id = app.client(&app.api_key).list_api_keys().await.unwrap().data[0]
        .id
        .clone();
    assert_eq!(app.audit_events(&format!("actor={key_id}")).await.len(), 6);
    assert_eq!(app.audit_events("actor=nobody").await.len(), 0);
    let future = (Timestamp::now() + SignedDuration::from_hours(1)).to_string();
    assert_eq!(app.audit_events(&format!("since={future}")).await.len(), 0);
    assert_eq!(app.audit_events(&format!("until={future}")).await.len(), 6);

    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let response = app
            .authed(
                Method::GET,
                &format!("/v1/audit-logs?limit=4{cursor}"),
                &app.api_key,
            )
            .send()
            .await
            .unwrap();
        let page = expect_json(response, 200).await;
        seen.extend(
            page["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 6);
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.reverse();
    assert_eq!(seen, sorted, "newest first, no repeats");

    for (query, field) in [
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("verb=x", "verb"),
    ] {
        let response = app
            .authed(
                Method::GET,
                &format!("/v1/audit-logs?{query}"),
                &app.api_key,
            )
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_error(response, 422, "validation_failed").await["field"],
            field
        );
    }
}

async fn who_may_read_the_audit_log(app: TestApp) {
    let (_, reader) = app.token("reader", json!(["tokens:read"])).await;
    let (_, auditor) = app.token("auditor", json!(["audit:read"])).await;
    let response = app
        .authed(Method::GET, "/v1/audit-logs", &reader)
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 403, "forbidden").await;
    assert!(error["message"].as_str().unwrap().contains("audit:read"));
    let response = app
        .authed(Method::GET, "/v1/audit-logs", &auditor)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
}

async fn csv_export_is_spreadsheet_safe_and_in_the_workspace_timezone(app: TestApp) {
    app.authed(Method::PATCH, "/v1/workspace", &app.api_key)
        .json(&json!({"timezone": "Asia/Kolkata"}))
        .send()
        .await
        .unwrap();
    // A token named like a formula acts, so its name starts the actor cell of the next row.
    let (_, hostile) = app
        .token(
            "=HYPERLINK(\"http://evil\"), \"quoted\"",
            json!(["tokens:read", "tokens:write"]),
        )
        .await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &hostile)
        .json(&json!({"name": "child", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    let response = app.export_recent_audit().await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/csv; charset=utf-8"
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.starts_with("attachment; filename=\"tooken-audit-production-"),
        "{disposition}"
    );
    // (reqwest's text() would drop the BOM, so read bytes.)
    let bytes = response.bytes().await.unwrap();
    let body = std::str::from_utf8(&bytes).unwrap();
    let body = body
        .strip_prefix('\u{feff}')
        .expect("UTF-8 BOM for spreadsheets");
    let lines: Vec<&str> = body.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(
        lines[0],
        "time,time_utc,type,actor_kind,actor_id,actor,target_type,target_id,request_id,details"
    );
    // The settings change and two token.created, oldest first.
    assert_eq!(lines.len(), 1 + 3, "{body}");
    assert!(lines[1].contains("workspace.settings_changed"));
    assert!(
        lines[2].contains("+05:30"),
        "local time with offset: {}",
        lines[2]
    );
    // The hostile actor name is defused with a quote mark and stays one quoted cell.
    let row = lines[3];
    assert!(
        row.contains(",\"'=HYPERLINK(\"\"http://evil\"\"), \"\"quoted\"\"\","),
        "{row}"
    );
    assert!(!row.contains(",=HYPERLINK"), "{row}");

    // A window that ends before it starts is refused.
    let since = Timestamp::now() - SignedDuration::from_hours(1);
    let until = Timestamp::now() + SignedDuration::from_hours(1);
    let response = app
        .authed(
            Method::GET,
            &format!("/v1/audit-logs/export?since={until}&until={since}"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_failed").await;
    let response = app
        .authed(Method::GET, "/v1/audit-logs/export", &app.api_key)
        .send()
        .await
        .unwrap();
    expect_error(response, 422, "validation_failed").await;
}

async fn expiry_is_recorded_once_per_token(app: TestApp) {
    let soon = Timestamp::now() + SignedDuration::from_millis(800);
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({
            "name": "short-lived",
            "scopes": ["tokens:read"],
            "expires_at": soon.to_string(),
            "labels": {"tooken.io/namespace": "dev"},
        }))
        .send()
        .await
        .unwrap();
    let id = expect_json(response, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.sweep().await;
    assert!(
        app.audit_events("type=token.expired").await.is_empty(),
        "not expired yet"
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    app.sweep().await;
    app.sweep().await;
    let expired = app.audit_events("type=token.expired").await;
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0]["target_id"], id.as_str());
    assert_eq!(expired[0]["actor"]["kind"], "system");
    // Like every token event, it says what the token served.
    assert_eq!(
        expired[0]["data"]["labels"],
        json!({"tooken.io/namespace": "dev"})
    );
}

async fn retention_deletes_old_events_and_records_the_purge(app: TestApp) {
    let old = AuditEvent {
        id: new_id(),
        kind: "token.created".into(),
        actor: Actor {
            kind: ActorKind::System,
            id: None,
            label: None,
        },
        target_type: "token".into(),
        target_id: "ancient".into(),
        request_id: None,
        created_at: Timestamp::now() - SignedDuration::from_hours(24 * 91),
        data: json!({}),
    };
    let mut tx = app.store().begin_write().await.unwrap();
    audit_store::insert(&mut tx, &app.workspace_id, &old)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    app.token("recent", json!(["tokens:read"])).await;
    assert_eq!(app.audit_events("").await.len(), 2);
    app.sweep().await;
    let events = app.audit_events("").await;
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["audit.purged", "token.created"]);
    assert_eq!(events[0]["data"]["deleted"], 1);
    assert_eq!(events[0]["data"]["retention_days"], 90);
    // Nothing more to purge: no further purge events.
    app.sweep().await;
    assert_eq!(app.audit_events("type=audit.purged").await.len(), 1);
}
