//! Confined tokens (issue 20): a token with a `name_prefix` sees and manages only the tokens
//! whose name starts with it, hands out nothing that reaches further, and reaches no
//! workspace-wide route. Labels say what a token serves and follow it into the audit log.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use crate::receiver::Receiver;
use crate::route_walk::{Answer, Targets, walk};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

on_both_backends!(
    a_confined_token_cannot_reach_another_namespace,
    a_confined_token_reaches_no_route_outside_its_lane,
    a_confined_token_manages_its_own_prefix,
    a_confined_caller_only_creates_narrower_tokens,
    bad_prefixes_labels_and_scope_combinations_are_refused,
    labels_and_prefix_are_kept_and_audited,
    an_idempotent_create_replays_the_same_confined_token,
);

const TOKEN_SCOPES: [&str; 4] = [
    "tokens:read",
    "tokens:write",
    "tokens:revoke",
    "tokens:rotate",
];

/// What the operator sends for the TookenToken `name` in `namespace`.
fn operator_request(namespace: &str, name: &str) -> Value {
    json!({
        "name": format!("k8s:{namespace}/{name}"),
        "scopes": TOKEN_SCOPES,
        "name_prefix": format!("k8s:{namespace}/"),
        "labels": {
            "tooken.io/namespace": namespace,
            "tooken.io/tookentoken": name,
            "tooken.io/uid": "6f1c2b9e-0d4a-4c1e-9a57-3b8f2d0c7e11",
        },
    })
}

/// Issues the operator's token for `namespace/name` with the team key: (id, secret).
async fn namespace_token(app: &TestApp, namespace: &str, name: &str) -> (String, String) {
    let body = app
        .issue(&app.api_key, operator_request(namespace, name))
        .await;
    (
        body["id"].as_str().unwrap().to_owned(),
        body["secret"].as_str().unwrap().to_owned(),
    )
}

async fn send_as(app: &TestApp, credential: &str, method: Method, path: &str) -> (u16, Value) {
    let response = app.authed(method, path, credential).send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `post_as` for a refusal: the error body, with its code checked.
async fn refused(
    app: &TestApp,
    credential: &str,
    (path, body): (&str, Value),
    status: u16,
    code: &str,
) -> Value {
    let error = app.post_as(credential, path, body, status).await;
    assert_eq!(error["error"], code, "{error}");
    error
}

/// Every name `credential` lists, walking the pages `limit` at a time.
async fn listed_names(app: &TestApp, credential: &str, query: &str, limit: u32) -> Vec<String> {
    let mut names = Vec::new();
    let mut cursor = String::new();
    loop {
        let path = format!("/v1/tokens?limit={limit}{query}{cursor}");
        let (status, page) = send_as(app, credential, Method::GET, &path).await;
        assert_eq!(status, 200, "{page}");
        let data = page["data"].as_array().unwrap();
        // Every page but the last is full, however many tokens the prefix hides.
        match page["next_cursor"] {
            Value::Null => assert!(data.len() <= limit as usize),
            _ => assert_eq!(data.len(), limit as usize, "{page}"),
        }
        names.extend(data.iter().map(|t| t["name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return names,
        }
    }
}

async fn a_confined_token_cannot_reach_another_namespace(app: TestApp) {
    let (prod, prod_secret) = namespace_token(&app, "prod", "web").await;
    let (_, dev) = namespace_token(&app, "dev", "ci").await;
    namespace_token(&app, "dev", "api").await;
    namespace_token(&app, "prod", "db").await;

    // List: only dev's tokens, on every page and with every filter.
    for limit in [1, 2, 50] {
        assert_eq!(
            listed_names(&app, &dev, "", limit).await,
            ["k8s:dev/api", "k8s:dev/ci"],
            "limit {limit}"
        );
    }
    assert_eq!(
        listed_names(&app, &dev, "&status=active", 1).await,
        ["k8s:dev/api", "k8s:dev/ci"]
    );
    assert!(
        listed_names(&app, &dev, "&status=revoked", 50)
            .await
            .is_empty()
    );

    // Get, rotate, revoke: prod's token answers exactly like a missing one.
    let missing = "0190aaaa-0000-7000-8000-000000000000";
    for (method, action) in [
        (Method::GET, ""),
        (Method::POST, "/rotate"),
        (Method::POST, "/revoke"),
    ] {
        let (status, body) = send_as(
            &app,
            &dev,
            method.clone(),
            &format!("/v1/tokens/{prod}{action}"),
        )
        .await;
        let (missing_status, missing_body) = send_as(
            &app,
            &dev,
            method.clone(),
            &format!("/v1/tokens/{missing}{action}"),
        )
        .await;
        assert_eq!((status, &body), (404, &missing_body), "{method} {action}");
        assert_eq!(missing_status, 404);
    }
    let untouched = app.get_json(&format!("/v1/tokens/{prod}")).await;
    assert_eq!(untouched["status"], "active");
    assert_eq!(untouched["rotation"], 0);
    assert_eq!(untouched["prefix"], &prod_secret[..13]);

    // Checking prod's secret: unknown to dev, as a secret of another workspace would be.
    let verified = app
        .post_as(
            &dev,
            "/v1/tokens/verify",
            json!({"token": prod_secret}),
            200,
        )
        .await;
    assert_eq!(verified, json!({"valid": false, "reason": "not_found"}));
    let introspected = app
        .authed(Method::POST, "/v1/oauth2/introspect", &dev)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={prod_secret}"))
        .send()
        .await
        .unwrap();
    assert_eq!(introspected.text().await.unwrap(), r#"{"active":false}"#);

    // Creating outside the prefix, or a broader prefix: refused, and nothing is created.
    for body in [
        json!({"name": "k8s:prod/mine", "scopes": ["tokens:read"]}),
        json!({"name": "unconfined", "scopes": ["tokens:read"]}),
        json!({"name": "k8s:dev/x", "scopes": ["tokens:read"], "name_prefix": "k8s:"}),
        json!({"name": "k8s:dev/x", "scopes": ["tokens:read"], "name_prefix": "k8s:prod/"}),
    ] {
        let error = refused(&app, &dev, ("/v1/tokens", body), 403, "forbidden").await;
        assert!(
            error["message"].as_str().unwrap().contains("`k8s:dev/`"),
            "{error}"
        );
    }
    assert_eq!(listed_names(&app, &app.api_key, "", 50).await.len(), 4);

    // Workspace-wide routes: refused, naming the prefix and why.
    let window = "since=2020-01-01T00:00:00Z&until=2030-01-01T00:00:00Z";
    for (method, path) in [
        (Method::GET, "/v1/audit-logs".to_owned()),
        (Method::GET, format!("/v1/audit-logs/export?{window}")),
        (Method::GET, "/v1/webhooks".to_owned()),
        (Method::POST, "/v1/webhooks".to_owned()),
        (Method::GET, "/v1/workspace".to_owned()),
    ] {
        let mut request = app.authed(method.clone(), &path, &dev);
        if method == Method::POST {
            request = request
                .json(&json!({"url": "http://127.0.0.1:9/x", "event_types": ["token.created"]}));
        }
        let error = expect_error(request.send().await.unwrap(), 403, "forbidden").await;
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains("confined to names starting with `k8s:dev/`"),
            "{method} {path}: {message}"
        );
    }
}

/// The walk of permissions.rs, with a confined token that holds every `tokens:*` scope: no
/// route in the OpenAPI document shows it, or lets it change, anything of prod's.
async fn a_confined_token_reaches_no_route_outside_its_lane(app: TestApp) {
    let (prod, prod_secret) = namespace_token(&app, "prod", "web").await;
    let (_, dev) = namespace_token(&app, "dev", "ci").await;
    let (webhook, _) = app
        .webhook("http://127.0.0.1:9/hook", &["token.created"])
        .await;
    let targets = Targets {
        token: &prod,
        api_key: &prod,
        webhook: &webhook,
        member: &prod,
        secret: &prod_secret,
    };
    for Answer {
        method,
        template,
        status,
        text,
    } in walk(&app, &dev, &targets, |_| true).await
    {
        assert!(
            !text.contains(&prod) && !text.contains("k8s:prod/"),
            "{method} {template} leaked prod's token: {text}"
        );
        if template.contains("{slug}") {
            // Forward-auth checks the presented token itself: dev's works, as ever.
            assert_eq!(status, 200, "{method} {template}: {text}");
        } else if template.starts_with("/v1/tokens/{id}") {
            assert_eq!(status, 404, "{method} {template}: {text}");
        } else if template == "/v1/tokens" && method == "get" {
            assert_eq!(status, 200, "{text}");
        } else if template == "/v1/tokens/verify" || template == "/v1/oauth2/introspect" {
            assert_eq!(status, 200, "{text}");
            assert!(!text.contains("\"valid\":true") && !text.contains("\"active\":true"));
        } else if template == "/v1/auth/signup" || template == "/v1/auth/signin" {
            // They take no credential; the empty body is refused.
            assert_eq!(status, 422, "{method} {template}: {text}");
        } else {
            assert_eq!(
                status, 403,
                "{method} {template} answered a confined token: {text}"
            );
        }
    }
    let untouched = app.get_json(&format!("/v1/tokens/{prod}")).await;
    assert_eq!(
        (untouched["status"].clone(), untouched["rotation"].clone()),
        (json!("active"), json!(0))
    );
    let hook = app.get_json(&format!("/v1/webhooks/{webhook}")).await;
    assert_eq!(hook["enabled"], true);
}

async fn a_confined_token_manages_its_own_prefix(app: TestApp) {
    let (_, dev) = namespace_token(&app, "dev", "ci").await;
    let created = app
        .issue(
            &dev,
            json!({"name": "k8s:dev/worker", "scopes": ["tokens:read"]}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(
        created["name_prefix"], "k8s:dev/",
        "inherited, never unconfined"
    );
    let (status, got) = send_as(&app, &dev, Method::GET, &format!("/v1/tokens/{id}")).await;
    assert_eq!((status, &got["name"]), (200, &json!("k8s:dev/worker")));

    let rotated = app
        .post_as(&dev, &format!("/v1/tokens/{id}/rotate"), json!({}), 200)
        .await;
    assert_eq!(rotated["rotation"], 1);
    assert_eq!(rotated["name_prefix"], "k8s:dev/");
    let revoked = app
        .post_as(&dev, &format!("/v1/tokens/{id}/revoke"), Value::Null, 200)
        .await;
    assert_eq!(revoked["status"], "revoked");

    // An unconfined token named inside the prefix is seen, but rotating it would hand out
    // a secret that reaches the whole workspace.
    let (loose, _) = app.token("k8s:dev/loose", json!(["tokens:read"])).await;
    let (status, got) = send_as(&app, &dev, Method::GET, &format!("/v1/tokens/{loose}")).await;
    assert_eq!((status, &got["name_prefix"]), (200, &Value::Null));
    let rotate = (&format!("/v1/tokens/{loose}/rotate")[..], json!({}));
    let error = refused(&app, &dev, rotate, 403, "forbidden").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("not confined within"),
        "{error}"
    );
    assert_eq!(
        app.get_json(&format!("/v1/tokens/{loose}")).await["rotation"],
        0
    );
    // So would a token confined more broadly.
    let wide = app
        .issue(
            &app.api_key,
            json!({"name": "k8s:dev/wide", "scopes": ["tokens:read"], "name_prefix": "k8s:"}),
        )
        .await;
    let wide = wide["id"].as_str().unwrap();
    let rotate = (&format!("/v1/tokens/{wide}/rotate")[..], json!({}));
    refused(&app, &dev, rotate, 403, "forbidden").await;
    // Revoking it takes nothing out of the lane.
    app.post_as(
        &dev,
        &format!("/v1/tokens/{loose}/revoke"),
        Value::Null,
        200,
    )
    .await;
}

async fn a_confined_caller_only_creates_narrower_tokens(app: TestApp) {
    let (_, dev) = namespace_token(&app, "dev", "ci").await;
    let narrower = app
        .issue(
            &dev,
            json!({"name": "k8s:dev/api/1", "scopes": ["tokens:read"], "name_prefix": "k8s:dev/api/"}),
        )
        .await;
    assert_eq!(narrower["name_prefix"], "k8s:dev/api/");
    // The narrower token sees only its own part of dev.
    let secret = narrower["secret"].as_str().unwrap();
    assert_eq!(listed_names(&app, secret, "", 50).await, ["k8s:dev/api/1"]);
    let equal = app
        .issue(
            &dev,
            json!({"name": "k8s:dev/same", "scopes": ["tokens:read"], "name_prefix": "k8s:dev/"}),
        )
        .await;
    assert_eq!(equal["name_prefix"], "k8s:dev/");
    // Scopes it does not hold, and workspace-wide ones, stay out of reach.
    let audit = json!({"name": "k8s:dev/audit", "scopes": ["audit:read"]});
    let error = refused(&app, &dev, ("/v1/tokens", audit), 403, "forbidden").await;
    assert!(
        error["message"].as_str().unwrap().contains("audit:read"),
        "{error}"
    );
}

async fn bad_prefixes_labels_and_scope_combinations_are_refused(app: TestApp) {
    let long = "x".repeat(129);
    let many: serde_json::Map<String, Value> =
        (0..17).map(|i| (format!("k{i}"), json!("v"))).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            json!({"name": "other/web", "scopes": ["tokens:read"], "name_prefix": "k8s:dev/"}),
            "name",
            "name must start with the name_prefix `k8s:dev/`",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "name_prefix": ""}),
            "name_prefix",
            "must not be empty",
        ),
        (
            json!({"name": " k8s:dev/web", "scopes": ["tokens:read"], "name_prefix": " k8s:dev/"}),
            "name_prefix",
            "whitespace",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "name_prefix": long}),
            "name_prefix",
            "at most 128",
        ),
        (
            json!({"name": "k8s:dev/web", "scopes": ["tokens:read"], "name_prefix": "k8s:\u{7}"}),
            "name_prefix",
            "control characters",
        ),
        (
            json!({"name": "k8s:dev/web", "scopes": ["tokens:read", "audit:read"], "name_prefix": "k8s:dev/"}),
            "scopes",
            "cannot hold `audit:read`: it reaches the whole workspace",
        ),
        (
            json!({"name": "k8s:dev/web", "scopes": ["webhooks:read"], "name_prefix": "k8s:dev/"}),
            "scopes",
            "cannot hold `webhooks:read`",
        ),
        (
            json!({"name": "k8s:dev/web", "scopes": ["webhooks:write"], "name_prefix": "k8s:dev/"}),
            "scopes",
            "cannot hold `webhooks:write`",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "labels": many}),
            "labels",
            "at most 16 labels",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "labels": {"not a key": "v"}}),
            "labels",
            "label key `not a key`",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "labels": {"Tooken.io/ns": "v"}}),
            "labels",
            "prefix of label key `Tooken.io/ns`",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "labels": {"team": "x".repeat(254)}}),
            "labels",
            "at most 253 characters",
        ),
        (
            json!({"name": "web", "scopes": ["tokens:read"], "labels": {"team": 5}}),
            "labels.team",
            "invalid type",
        ),
    ];
    for (body, field, message) in cases {
        let request = ("/v1/tokens", body.clone());
        let error = refused(&app, &app.api_key, request, 422, "validation_failed").await;
        assert_eq!(error["field"], field, "{body}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains(message),
            "{body}: {error}"
        );
    }
    assert!(listed_names(&app, &app.api_key, "", 50).await.is_empty());
    // The workspace-wide scopes remain for unconfined tokens.
    app.issue(
        &app.api_key,
        json!({"name": "auditor", "scopes": ["audit:read", "webhooks:read"]}),
    )
    .await;
}

async fn labels_and_prefix_are_kept_and_audited(app: TestApp) {
    let receiver = Receiver::start().await;
    app.webhook(
        &receiver.url,
        &["token.created", "token.rotated", "token.revoked"],
    )
    .await;
    let created = app.issue(&app.api_key, operator_request("dev", "ci")).await;
    let id = created["id"].as_str().unwrap();
    let labels = json!({
        "tooken.io/namespace": "dev",
        "tooken.io/tookentoken": "ci",
        "tooken.io/uid": "6f1c2b9e-0d4a-4c1e-9a57-3b8f2d0c7e11",
    });
    assert_eq!(created["labels"], labels);
    assert_eq!(created["name_prefix"], "k8s:dev/");
    let got = app.get_json(&format!("/v1/tokens/{id}")).await;
    assert_eq!(
        (&got["labels"], &got["name_prefix"]),
        (&labels, &json!("k8s:dev/"))
    );
    let listed = app.get_json("/v1/tokens").await;
    assert_eq!(listed["data"][0]["labels"], labels);
    // Unlabelled, unconfined tokens say so.
    let (plain, _) = app.token("plain", json!(["tokens:read"])).await;
    let plain = app.get_json(&format!("/v1/tokens/{plain}")).await;
    assert_eq!(
        (&plain["labels"], &plain["name_prefix"]),
        (&json!({}), &Value::Null)
    );

    let rotated = app.rotate(id, json!({"grace_period_seconds": 60})).await;
    assert_eq!(
        (&rotated["labels"], &rotated["name_prefix"]),
        (&labels, &json!("k8s:dev/"))
    );
    let verified = app
        .post_as(
            &app.api_key,
            "/v1/tokens/verify",
            json!({"token": rotated["secret"]}),
            200,
        )
        .await;
    assert_eq!(verified["name_prefix"], "k8s:dev/");
    app.revoke(id).await;
    let revoked = app.get_json(&format!("/v1/tokens/{id}")).await;
    assert_eq!(
        (&revoked["labels"], &revoked["name_prefix"]),
        (&labels, &json!("k8s:dev/"))
    );

    // Four events: this token's three, and the plain token's creation.
    let delivered: Vec<Value> = receiver
        .wait_accepted(4, Duration::from_secs(20))
        .await
        .iter()
        .map(|delivery| delivery.json())
        .filter(|body| body["data"]["id"] == id)
        .collect();
    assert_eq!(delivered.len(), 3);
    for body in &delivered {
        assert_eq!(body["data"]["labels"], labels, "{body}");
        assert_eq!(body["data"]["name_prefix"], "k8s:dev/", "{body}");
    }
    for event in ["token.created", "token.rotated", "token.revoked"] {
        let events = app.audit_events(&format!("type={event}&target={id}")).await;
        assert_eq!(events.len(), 1, "{event}");
        assert_eq!(events[0]["data"]["labels"], labels, "{event}");
        assert_eq!(events[0]["data"]["name_prefix"], "k8s:dev/", "{event}");
    }
    let response = app.export_recent_audit().await;
    let csv = response.text().await.unwrap();
    let created_row = csv
        .lines()
        .find(|line| line.contains("token.created") && line.contains(id))
        .unwrap_or_else(|| panic!("no token.created row: {csv}"));
    assert!(
        created_row.contains(r#"""tooken.io/namespace"":""dev"""#),
        "{created_row}"
    );
    assert!(
        created_row.contains(r#"""name_prefix"":""k8s:dev/"""#),
        "{created_row}"
    );
}

async fn an_idempotent_create_replays_the_same_confined_token(app: TestApp) {
    let (_, dev) = namespace_token(&app, "dev", "ci").await;
    let body = json!({
        "name": "k8s:dev/job",
        "scopes": ["tokens:read"],
        "labels": {"tooken.io/namespace": "dev"},
    });
    let send = || {
        app.authed(Method::POST, "/v1/tokens", &dev)
            .header("Idempotency-Key", "job-1")
            .json(&body)
            .send()
    };
    let first = expect_json(send().await.unwrap(), 201).await;
    let replay = send().await.unwrap();
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    let replay = expect_json(replay, 201).await;
    let mut expected = first.clone();
    expected["secret"] = Value::Null;
    assert_eq!(replay, expected);
    assert_eq!(replay["name_prefix"], "k8s:dev/");
    assert_eq!(replay["labels"], json!({"tooken.io/namespace": "dev"}));
    assert_eq!(
        listed_names(&app, &dev, "", 50).await,
        ["k8s:dev/job", "k8s:dev/ci"]
    );
}
