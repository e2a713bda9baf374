//! Token lifecycle: create, use, list, get, rotate, revoke, verify, expiry.

use crate::helpers::{TestApp, expect_error, expect_json};
use crate::on_both_backends;
use jiff::{SignedDuration, Timestamp};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tooken_contract::Secret;
use tooken_contract::tokens::{
    CreateTokenRequest, ListTokensParams, RotateTokenRequest, TokenStatus, VerifyReason,
    VerifyTokenRequest,
};
use tooken_contract::{ClientError, Scope};

on_both_backends!(
    seed_001_flow,
    expiry_follows_the_workspace_default_null_and_explicit_values,
    secrets_are_shown_once,
    rotation_keeps_identity_and_kills_the_old_secret,
    rotation_grace_period_is_capped_by_expiry,
    revocation_is_immediate_and_permanent,
    verify_reports_why,
    expired_tokens_fail_on_next_use,
    list_paginates_and_filters_by_status,
    tokens_grant_only_their_own_scopes,
    last_used_at_is_recorded,
);

fn status_of(err: &ClientError) -> u16 {
    err.status().map(|s| s.as_u16()).unwrap_or(0)
}

async fn seed_001_flow(app: TestApp) {
    let admin = app.client(&app.api_key);
    let issued = admin
        .create_token(
            &CreateTokenRequest {
                name: "my-first-token".into(),
                scopes: vec![Scope::TokensRead],
                expires_at: None,
                name_prefix: None,
                labels: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    let secret = issued
        .secret
        .clone()
        .expect("the secret is shown on create");
    Secret::parse(&secret).expect("the secret has the documented format");
    assert_eq!(issued.token.name, "my-first-token");
    assert_eq!(issued.token.scopes, [Scope::TokensRead]);
    assert_eq!(issued.token.status, TokenStatus::Active);

    // The token lists and gets...
    let reader = app.client(&secret);
    let listed = reader
        .list_tokens(&ListTokensParams::default())
        .await
        .unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].id, issued.token.id);
    assert_eq!(
        reader.get_token(&issued.token.id).await.unwrap().id,
        issued.token.id
    );

    // ...and is refused creating or revoking, with 403 naming the scope.
    let response = app
        .authed(Method::POST, "/v1/tokens", &secret)
        .json(&json!({"name": "x", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 403, "forbidden").await;
    assert!(
        body["message"].as_str().unwrap().contains("tokens:write"),
        "{body}"
    );
    let err = reader.revoke_token(&issued.token.id).await.unwrap_err();
    assert_eq!(status_of(&err), 403);
    assert!(err.to_string().contains("tokens:revoke"), "{err}");
    // Nothing changed.
    let token = admin.get_token(&issued.token.id).await.unwrap();
    assert_eq!(token.status, TokenStatus::Active);
}

async fn expiry_follows_the_workspace_default_null_and_explicit_values(app: TestApp) {
    let client = app.client(&app.api_key);
    let before = Timestamp::now();
    let defaulted = client
        .create_token(
            &CreateTokenRequest {
                name: "default".into(),
                scopes: vec![Scope::TokensRead],
                expires_at: None,
                name_prefix: None,
                labels: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    let expires = defaulted.token.expires_at.expect("the default is 90 days");
    let ninety = SignedDuration::from_hours(24 * 90);
    assert!(
        expires >= before + ninety - SignedDuration::from_secs(1),
        "{expires}"
    );
    assert!(expires <= Timestamp::now() + ninety, "{expires}");

    let never = client
        .create_token(
            &CreateTokenRequest {
                name: "never".into(),
                scopes: vec![Scope::TokensRead],
                expires_at: Some(None),
                name_prefix: None,
                labels: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(never.token.expires_at, None);
    assert_eq!(
        client.get_token(&never.token.id).await.unwrap().expires_at,
        None
    );

    let at: Timestamp = "2031-05-06T07:08:09Z".parse().unwrap();
    let explicit = client
        .create_token(
            &CreateTokenRequest {
                name: "explicit".into(),
                scopes: vec![Scope::TokensRead],
                expires_at: Some(Some(at)),
                name_prefix: None,
                labels: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(explicit.token.expires_at, Some(at));

    // An offset is accepted and normalised to UTC.
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "offset", "scopes": ["tokens:read"], "expires_at": "2031-05-06T09:08:09+02:00"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, 201).await["expires_at"],
        "2031-05-06T07:08:09Z"
    );

    for (value, why) in [
        (json!("2020-01-01T00:00:00Z"), "in the past"),
        (json!("tomorrow"), "not a timestamp"),
        (json!("2031-02-30T00:00:00Z"), "not a date"),
        (json!(1_700_000_000), "a number"),
    ] {
        let response = app
            .authed(Method::POST, "/v1/tokens", &app.api_key)
            .json(&json!({"name": "bad", "scopes": ["tokens:read"], "expires_at": value}))
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 422, "validation_failed").await;
        assert_eq!(body["field"], "expires_at", "{why}: {body}");
    }
    assert_eq!(
        client
            .list_tokens(&ListTokensParams::default())
            .await
            .unwrap()
            .data
            .len(),
        4,
        "rejected requests stored nothing"
    );
}

async fn secrets_are_shown_once(app: TestApp) {
    let (id, secret) = app.token("once", json!(["tokens:read"])).await;
    for path in ["/v1/tokens".to_owned(), format!("/v1/tokens/{id}")] {
        let text = app
            .authed(Method::GET, &path, &app.api_key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(!text.contains(&secret), "{path} leaked the secret");
        assert!(
            !text.contains("\"secret\""),
            "{path} has a secret field: {text}"
        );
        assert!(
            text.contains(&secret[..13]),
            "{path} shows the display prefix"
        );
    }
    // Only the hash is stored.
    let mut conn = app.store().pool().acquire().await.unwrap();
    let stored: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM token_secrets")
        .fetch_all(&mut *conn)
        .await
        .unwrap();
    assert!(stored.iter().all(|h| h.len() == 64 && !h.contains(&secret)));
}

async fn rotation_keeps_identity_and_kills_the_old_secret(app: TestApp) {
    let client = app.client(&app.api_key);
    let (id, old) = app
        .token("rotating", json!(["tokens:read", "tokens:write"]))
        .await;
    let rotated = client
        .rotate_token(&id, &RotateTokenRequest::default(), None)
        .await
        .unwrap();
    let new = rotated.secret.clone().unwrap();
    assert_ne!(new, old);
    assert_eq!(rotated.token.id, id);
    assert_eq!(rotated.token.name, "rotating");
    assert_eq!(
        rotated.token.scopes,
        [Scope::TokensRead, Scope::TokensWrite]
    );
    assert_eq!(rotated.token.rotation, 1);
    assert_eq!(
        Some(rotated.previous_secret_expires_at),
        rotated.token.rotated_at
    );

    // Without a grace period the old secret is dead at once.
    let old_client = app.client(&old);
    assert_eq!(
        status_of(&old_client.get_token(&id).await.unwrap_err()),
        401
    );
    assert_eq!(app.client(&new).get_token(&id).await.unwrap().rotation, 1);
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: old,
            scopes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(verdict.reason, VerifyReason::Rotated);
    assert!(!verdict.valid);

    // A body is optional.
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/tokens/{id}/rotate"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["rotation"], 2);
    assert_eq!(
        status_of(&app.client(&new).get_token(&id).await.unwrap_err()),
        401
    );
}

async fn rotation_grace_period_is_capped_by_expiry(app: TestApp) {
    let client = app.client(&app.api_key);
    let (id, old) = app.token("graceful", json!(["tokens:read"])).await;
    let before = Timestamp::now();
    let rotated = client
        .rotate_token(
            &id,
            &RotateTokenRequest {
                grace_period_seconds: Some(3600),
                expires_at: None,
            },
            None,
        )
        .await
        .unwrap();
    let grace_end = rotated.previous_secret_expires_at;
    assert!(
        grace_end >= before + SignedDuration::from_secs(3599),
        "{grace_end}"
    );
    assert!(grace_end <= Timestamp::now() + SignedDuration::from_secs(3600));
    // Both secrets work during the grace period.
    app.client(&old)
        .get_token(&id)
        .await
        .expect("old secret in grace");
    app.client(rotated.secret.as_deref().unwrap())
        .get_token(&id)
        .await
        .unwrap();
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: old,
            scopes: vec![],
        })
        .await
        .unwrap();
    assert!(verdict.valid);
    assert_eq!(verdict.secret_expires_at, Some(grace_end));

    // A token expiring in ten minutes cannot give a one-hour grace.
    let soon = Timestamp::now() + SignedDuration::from_mins(10);
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "short", "scopes": ["tokens:read"], "expires_at": soon.to_string()}))
        .send()
        .await
        .unwrap();
    let short = expect_json(response, 201).await;
    let short_id = short["id"].as_str().unwrap();
    let rotated = client
        .rotate_token(
            short_id,
            &RotateTokenRequest {
                grace_period_seconds: Some(3600),
                expires_at: None,
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        Some(rotated.previous_secret_expires_at),
        rotated.token.expires_at
    );

    // Rotation can renew the expiry; validation matches create.
    let renewed: Timestamp = "2032-01-01T00:00:00Z".parse().unwrap();
    let rotated = client
        .rotate_token(
            short_id,
            &RotateTokenRequest {
                grace_period_seconds: None,
                expires_at: Some(Some(renewed)),
            },
            None,
        )
        .await
        .unwrap();
    assert_eq!(rotated.token.expires_at, Some(renewed));
    for body in [
        json!({"grace_period_seconds": -1}),
        json!({"grace_period_seconds": 2_592_001}),
        json!({"expires_at": "2001-01-01T00:00:00Z"}),
        json!({"grace": 5}),
    ] {
        let response = app
            .authed(
                Method::POST,
                &format!("/v1/tokens/{id}/rotate"),
                &app.api_key,
            )
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(response, 422, "validation_failed").await;
    }
}

async fn revocation_is_immediate_and_permanent(app: TestApp) {
    let client = app.client(&app.api_key);
    let (id, secret) = app.token("doomed", json!(["tokens:read"])).await;
    app.client(&secret)
        .get_token(&id)
        .await
        .expect("works before revocation");
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap();
    assert!(verdict.valid);
    let revoked = client.revoke_token(&id).await.unwrap();
    assert_eq!(revoked.status, TokenStatus::Revoked);
    let revoked_at = revoked.revoked_at.expect("revoked_at is set");
    assert_eq!(
        status_of(&app.client(&secret).get_token(&id).await.unwrap_err()),
        401
    );
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: secret,
            scopes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(verdict.reason, VerifyReason::Revoked);
    // Revoking again changes nothing.
    assert_eq!(
        client.revoke_token(&id).await.unwrap().revoked_at,
        Some(revoked_at)
    );
    // A revoked token cannot be brought back by rotation.
    let err = client
        .rotate_token(&id, &RotateTokenRequest::default(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 409);
    assert!(err.to_string().contains("token_revoked"), "{err}");
    let err = client
        .revoke_token("0190aaaa-0000-7000-8000-000000000000")
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 404);
}

async fn verify_reports_why(app: TestApp) {
    let client = app.client(&app.api_key);
    let (id, secret) = app
        .token("checked", json!(["tokens:read", "audit:read"]))
        .await;
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: secret.clone(),
            scopes: vec![Scope::AuditRead],
        })
        .await
        .unwrap();
    assert!(verdict.valid);
    assert_eq!(verdict.reason, VerifyReason::Valid);
    assert_eq!(verdict.token_id.as_deref(), Some(id.as_str()));
    assert_eq!(verdict.name.as_deref(), Some("checked"));
    assert_eq!(
        verdict.scopes,
        Some(vec![Scope::TokensRead, Scope::AuditRead])
    );

    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: secret.clone(),
            scopes: vec![Scope::WebhooksWrite],
        })
        .await
        .unwrap();
    assert_eq!(
        (verdict.valid, verdict.reason),
        (false, VerifyReason::InsufficientScope)
    );

    let mut typo = secret.clone().into_bytes();
    typo[12] = if typo[12] == b'a' { b'b' } else { b'a' };
    for (token, reason) in [
        (String::from_utf8(typo).unwrap(), VerifyReason::Malformed),
        ("not a token".to_owned(), VerifyReason::Malformed),
        (Secret::generate().into_exposed(), VerifyReason::NotFound),
    ] {
        let verdict = client
            .verify_token(&VerifyTokenRequest {
                token,
                scopes: vec![],
            })
            .await
            .unwrap();
        assert_eq!((verdict.valid, verdict.reason), (false, reason));
        assert_eq!(verdict.token_id, None);
    }

    // A token can verify others when it holds tokens:read; without it, 403.
    let (_, no_read) = app.token("writer", json!(["tokens:write"])).await;
    let err = app
        .client(&no_read)
        .verify_token(&VerifyTokenRequest {
            token: secret.clone(),
            scopes: vec![],
        })
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 403);
    assert!(
        app.client(&secret)
            .verify_token(&VerifyTokenRequest {
                token: secret.clone(),
                scopes: vec![]
            })
            .await
            .unwrap()
            .valid
    );

    let metrics = app
        .raw(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"tooken_token_verifications_total{reason="insufficient_scope"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"tooken_token_verifications_total{reason="malformed"} 2"#),
        "{metrics}"
    );
}

async fn expired_tokens_fail_on_next_use(app: TestApp) {
    let client = app.client(&app.api_key);
    // Long enough that a loaded machine still uses the token before it expires.
    let at = Timestamp::now() + SignedDuration::from_secs(8);
    let issued = client
        .create_token(
            &CreateTokenRequest {
                name: "brief".into(),
                scopes: vec![Scope::TokensRead],
                expires_at: Some(Some(at)),
                name_prefix: None,
                labels: Default::default(),
            },
            None,
        )
        .await
        .unwrap();
    let secret = issued.secret.unwrap();
    app.client(&secret)
        .get_token(&issued.token.id)
        .await
        .expect("works before expiry");
    // Wait for the clock to pass the expiry, not for a fixed time.
    while Timestamp::now() <= at {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        status_of(
            &app.client(&secret)
                .get_token(&issued.token.id)
                .await
                .unwrap_err()
        ),
        401
    );
    let verdict = client
        .verify_token(&VerifyTokenRequest {
            token: secret,
            scopes: vec![],
        })
        .await
        .unwrap();
    assert_eq!(verdict.reason, VerifyReason::Expired);
    assert_eq!(
        client.get_token(&issued.token.id).await.unwrap().status,
        TokenStatus::Expired
    );
    let expired = client
        .list_tokens(&ListTokensParams {
            status: Some(TokenStatus::Expired),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(expired.data.len(), 1);
    let err = client
        .rotate_token(&issued.token.id, &RotateTokenRequest::default(), None)
        .await
        .unwrap_err();
    assert_eq!(status_of(&err), 409);
}

async fn list_paginates_and_filters_by_status(app: TestApp) {
    let client = app.client(&app.api_key);
    let mut ids = Vec::new();
    for i in 0..7 {
        ids.push(app.token(&format!("t{i}"), json!(["tokens:read"])).await.0);
    }
    for id in &ids[..2] {
        client.revoke_token(id).await.unwrap();
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = client
            .list_tokens(&ListTokensParams {
                status: None,
                limit: Some(3),
                cursor: cursor.clone(),
            })
            .await
            .unwrap();
        assert!(page.data.len() <= 3);
        seen.extend(page.data.into_iter().map(|t| t.id));
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);

    let count = |status| {
        let client = client.clone();
        async move {
            client
                .list_tokens(&ListTokensParams {
                    status: Some(status),
                    limit: None,
                    cursor: None,
                })
                .await
                .unwrap()
                .data
                .len()
        }
    };
    assert_eq!(count(TokenStatus::Revoked).await, 2);
    assert_eq!(count(TokenStatus::Active).await, 5);
    assert_eq!(count(TokenStatus::Expired).await, 0);

    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=ten", "limit"),
        ("status=sleeping", "status"),
        ("cursor=garbage", "cursor"),
        ("colour=red", "colour"),
    ] {
        let response = app
            .authed(Method::GET, &format!("/v1/tokens?{query}"), &app.api_key)
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 422, "validation_failed").await;
        assert_eq!(body["field"], field, "{query}: {body}");
    }
}

async fn tokens_grant_only_their_own_scopes(app: TestApp) {
    let (_, parent) = app
        .token(
            "parent",
            json!(["tokens:read", "tokens:write", "tokens:rotate"]),
        )
        .await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &parent)
        .json(&json!({"name": "child", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    let child = expect_json(response, 201).await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &parent)
        .json(
            &json!({"name": "escalate", "scopes": ["tokens:read", "tokens:revoke", "audit:read"]}),
        )
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 403, "forbidden").await;
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("tokens:revoke") && message.contains("audit:read"),
        "{message}"
    );

    // Rotating hands out a secret, so the same rule applies.
    let (powerful, _) = app.token("powerful", json!(["webhooks:write"])).await;
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/tokens/{powerful}/rotate"),
            &parent,
        )
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let child_id = child["id"].as_str().unwrap();
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/tokens/{child_id}/rotate"),
            &parent,
        )
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
}

async fn last_used_at_is_recorded(app: TestApp) {
    let client = app.client(&app.api_key);
    let (id, secret) = app.token("used", json!(["tokens:read"])).await;
    assert_eq!(client.get_token(&id).await.unwrap().last_used_at, None);
    let before = Timestamp::now();
    app.client(&secret)
        .list_tokens(&ListTokensParams::default())
        .await
        .unwrap();
    let mut last_used = None;
    for _ in 0..60 {
        last_used = client.get_token(&id).await.unwrap().last_used_at;
        if last_used.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let last_used = last_used.expect("last_used_at is written within 3 s");
    assert!(last_used >= before - SignedDuration::from_millis(1));
}
