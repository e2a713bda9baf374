//! `POST /v1/oauth2/introspect` (RFC 7662): what an active token says about itself, that every
//! other token is exactly `{"active": false}`, the two ways an API key is sent, bad forms, and
//! the rate limit verify has.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use base64::Engine;
use jiff::{SignedDuration, Timestamp};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use std::time::Duration;
use tooken_api_server::app::Settings;
use tooken_api_server::rate_limit::RateLimit;

on_both_backends!(
    an_active_token_is_described,
    every_other_token_is_exactly_inactive,
    the_api_key_may_come_with_basic,
    bad_requests_are_refused_clearly,
    an_rfc_7662_client_library_accepts_the_answers,
);
crate::on_both_backends_with!(super::two_requests_per_credential =>
    introspection_is_rate_limited_like_verify,
);

fn two_requests_per_credential(settings: &mut Settings) {
    settings.rate_limit = Some(RateLimit {
        per_second: 0.01,
        burst: 2.0,
    });
}

fn introspect(app: &TestApp, credential: &str, form: &[(&str, &str)]) -> RequestBuilder {
    with_form(
        app.authed(Method::POST, "/v1/oauth2/introspect", credential),
        form,
    )
}

fn with_form(request: RequestBuilder, form: &[(&str, &str)]) -> RequestBuilder {
    request
        .header("content-type", "application/x-www-form-urlencoded")
        .body(serde_urlencoded::to_string(form).unwrap())
}

/// The body as text, so "exactly" means the bytes.
async fn inactive(response: reqwest::Response) {
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), r#"{"active":false}"#);
}

/// What the team key learns about `token`.
async fn introspected(app: &TestApp, token: &str) -> Value {
    let response = introspect(app, &app.api_key, &[("token", token)])
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await
}

fn secret_of(issued: &Value) -> String {
    issued["secret"].as_str().unwrap().to_owned()
}

async fn an_active_token_is_described(app: TestApp) {
    let before = Timestamp::now().as_second();
    let body = app
        .issue(
            &app.api_key,
            json!({"name": "orders-api", "scopes": ["tokens:write", "tokens:read"],
                   "expires_at": "2031-01-31T00:00:00Z"}),
        )
        .await;
    let response = introspect(&app, &app.api_key, &[("token", &secret_of(&body))])
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-store");
    let answer = expect_json(response, 200).await;
    let iat = answer["iat"].as_i64().unwrap();
    assert!(
        (before..=Timestamp::now().as_second()).contains(&iat),
        "{answer}"
    );
    assert_eq!(
        answer,
        json!({
            "active": true,
            "scope": "tokens:read tokens:write",
            "client_id": "orders-api",
            "token_type": "Bearer",
            "exp": "2031-01-31T00:00:00Z".parse::<Timestamp>().unwrap().as_second(),
            "iat": iat,
            "sub": body["id"],
        })
    );

    // A token that never expires has no `exp`; one in its grace period after a rotation
    // expires when that grace ends, and the new secret was issued by the rotation.
    let forever = app
        .issue(
            &app.api_key,
            json!({"name": "forever", "scopes": ["tokens:read"], "expires_at": null}),
        )
        .await;
    let (id, old) = (forever["id"].as_str().unwrap(), secret_of(&forever));
    let answer = introspected(&app, &old).await;
    assert_eq!(answer["active"], true, "{answer}");
    assert!(answer.get("exp").is_none(), "{answer}");
    let rotated = app.rotate(id, json!({"grace_period_seconds": 600})).await;
    let grace_end: Timestamp = rotated["previous_secret_expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let answer = introspected(&app, &old).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["exp"], grace_end.as_second(), "{answer}");
    let answer = introspected(&app, &secret_of(&rotated)).await;
    let rotated_at: Timestamp = rotated["rotated_at"].as_str().unwrap().parse().unwrap();
    assert_eq!(answer["iat"], rotated_at.as_second(), "{answer}");
    assert_eq!(answer["sub"], id);
}

async fn every_other_token_is_exactly_inactive(app: TestApp) {
    let ask = |token: String| {
        let request = introspect(&app, &app.api_key, &[("token", &token)]);
        async move { request.send().await.unwrap() }
    };
    // Not a token at all, and a well-formed one that was never issued.
    inactive(ask("tok_live_nonsense".into()).await).await;
    inactive(ask(tooken_contract::Secret::generate().expose().to_owned()).await).await;
    // An API key is not a token.
    inactive(ask(app.api_key.clone()).await).await;

    let (id, revoked) = app.token("revoked", json!(["tokens:read"])).await;
    app.revoke(&id).await;
    inactive(ask(revoked).await).await;

    let (id, old) = app.token("rotated", json!(["tokens:read"])).await;
    app.rotate(&id, json!({})).await;
    inactive(ask(old).await).await;

    let (_, other_key) = app.other_workspace("staging").await;
    let theirs = secret_of(
        &app.issue(
            &other_key,
            json!({"name": "theirs", "scopes": ["tokens:read"]}),
        )
        .await,
    );
    inactive(ask(theirs.clone()).await).await;
    // ...while their own key sees it active.
    let response = introspect(&app, &other_key, &[("token", &theirs)])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["active"], true);

    // Long enough that a loaded machine introspects it before it expires.
    let at = Timestamp::now() + SignedDuration::from_secs(8);
    let brief = secret_of(
        &app.issue(
            &app.api_key,
            json!({"name": "brief", "scopes": ["tokens:read"], "expires_at": at}),
        )
        .await,
    );
    let answer = introspected(&app, &brief).await;
    assert_eq!(answer["active"], true);
    assert_eq!(answer["exp"], at.as_second());
    // Wait for the clock to pass the expiry, not for a fixed time.
    while Timestamp::now() <= at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    inactive(ask(brief).await).await;
}

async fn the_api_key_may_come_with_basic(app: TestApp) {
    let (_, secret) = app.token("reader", json!(["tokens:read"])).await;
    let basic = |user: &str, password: &str| {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        with_form(
            app.raw(Method::POST, "/v1/oauth2/introspect")
                .header("authorization", format!("Basic {encoded}")),
            &[
                ("token", secret.as_str()),
                ("token_type_hint", "access_token"),
            ],
        )
    };
    for request in [basic("gateway", &app.api_key), basic(&app.api_key, "")] {
        let answer = expect_json(request.send().await.unwrap(), 200).await;
        assert_eq!(answer["active"], true, "{answer}");
        assert_eq!(answer["client_id"], "reader");
    }
    // A wrong key, or Basic that does not decode, is the exact 401 of README "The API" (Errors).
    for request in [
        basic("gateway", "tok_live_wrong"),
        with_form(
            app.raw(Method::POST, "/v1/oauth2/introspect")
                .header("authorization", "Basic !!!"),
            &[("token", secret.as_str())],
        ),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(
            response.text().await.unwrap(),
            r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#
        );
    }
}

async fn bad_requests_are_refused_clearly(app: TestApp) {
    let (_, secret) = app.token("reader", json!(["tokens:read"])).await;
    let (_, writer) = app.token("writer", json!(["tokens:write"])).await;
    // No credential: the exact 401 of README "The API" (Errors).
    let response = with_form(
        app.raw(Method::POST, "/v1/oauth2/introspect"),
        &[("token", secret.as_str())],
    )
    .send()
    .await
    .unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(
        response.text().await.unwrap(),
        r#"{"error":"unauthorized","message":"Invalid or missing API key"}"#
    );
    // A caller without `tokens:read`.
    let body = expect_error(
        introspect(&app, &writer, &[("token", &secret)])
            .send()
            .await
            .unwrap(),
        403,
        "forbidden",
    )
    .await;
    assert!(
        body["message"].as_str().unwrap().contains("tokens:read"),
        "{body}"
    );
    // JSON is not the form RFC 7662 asks for; `token` is required, once.
    let json_body = app
        .authed(Method::POST, "/v1/oauth2/introspect", &app.api_key)
        .json(&json!({"token": secret}));
    let cases: [(RequestBuilder, &str); 4] = [
        (json_body, "Content-Type"),
        (
            introspect(&app, &app.api_key, &[("token_type_hint", "access_token")]),
            "token",
        ),
        (introspect(&app, &app.api_key, &[("token", "")]), "token"),
        (
            introspect(
                &app,
                &app.api_key,
                &[("token", &secret), ("token", &secret)],
            ),
            "token",
        ),
    ];
    for (request, field) in cases {
        let body: Value = expect_error(request.send().await.unwrap(), 400, "invalid_request").await;
        assert_eq!(body["field"], field, "{body}");
    }
    // Unknown parameters are ignored (RFC 6749 §3.1).
    let response = introspect(&app, &app.api_key, &[("token", &secret), ("resource", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["active"], true);
}

async fn introspection_is_rate_limited_like_verify(app: TestApp) {
    let (_, secret) = app.token("reader", json!(["tokens:read"])).await;
    // The team key spent one of its two requests creating the token.
    assert_eq!(introspected(&app, &secret).await["active"], true);
    let refused = introspect(&app, &app.api_key, &[("token", &secret)])
        .send()
        .await
        .unwrap();
    assert!(refused.headers().contains_key("retry-after"));
    expect_error(refused, 429, "rate_limited").await;
}

/// authlib (PyPI) sends the request with HTTP Basic and judges the answers as a resource
/// server would: the active token passes with its scope and fails without it, the revoked one
/// is an invalid token.
async fn an_rfc_7662_client_library_accepts_the_answers(app: TestApp) {
    let Some(python) = crate::tools::python_with_authlib() else {
        return;
    };
    let (id, good) = app.token("orders-api", json!(["tokens:read"])).await;
    let (revoked_id, revoked) = app.token("gone", json!(["tokens:read"])).await;
    app.revoke(&revoked_id).await;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/api/introspect_authlib.py"
    );
    let url = format!("{}/v1/oauth2/introspect", app.base_url);
    let api_key = app.api_key.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .args([script, &url, &api_key, &good, &revoked])
            // The server is on loopback, without TLS.
            .env("AUTHLIB_INSECURE_TRANSPORT", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "authlib failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdict: Value = serde_json::from_slice(&output.stdout).unwrap();
    let good = &verdict["good"];
    assert_eq!(good["client_id"], "orders-api", "{verdict}");
    assert_eq!(good["scope"], "tokens:read");
    assert_eq!(good["sub"], id.as_str());
    assert_eq!(good["token_type"], "Bearer");
    assert!(good["expires_at"].as_i64().unwrap() > Timestamp::now().as_second());
    assert!(good["iat"].as_i64().unwrap() <= Timestamp::now().as_second());
    assert_eq!(verdict["wrong_scope"], "insufficient_scope");
    assert_eq!(verdict["revoked"], "invalid_token");
    assert_eq!(verdict["revoked_answer"], json!({"active": false}));
}
