//! Sign-up, sign-in, sessions, invitations, and the last Owner.

use crate::helpers::{Backend, PASSWORD, TestApp, expect_error, expect_json, spawn_app_with};
use crate::on_both_backends;
use reqwest::Method;
use serde_json::{Value, json};
use tooken_api_server::app::SignupPolicy;

on_both_backends!(
    a_new_user_signs_up_creates_a_workspace_and_works_in_it,
    sign_up_validates_and_refuses_duplicates,
    failed_sign_ins_are_throttled,
    invitations_are_accepted_only_by_the_invited_email,
    the_last_owner_cannot_leave,
    removing_a_member_cuts_their_access_at_once,
    the_bootstrap_owner_is_claimed_by_signing_up,
);

async fn me(app: &TestApp, session: &str) -> Value {
    expect_json(
        app.authed(Method::GET, "/v1/auth/me", session)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await
}

async fn create_workspace(app: &TestApp, session: &str, name: &str) -> Value {
    let response = app
        .authed(Method::POST, "/v1/workspaces", session)
        .json(&json!({"name": name}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await
}

async fn invite(app: &TestApp, credential: &str, email: &str, role: &str) -> String {
    let response = app
        .authed(Method::POST, "/v1/members", credential)
        .json(&json!({"email": email, "role": role}))
        .send()
        .await
        .unwrap();
    let member = expect_json(response, 201).await;
    assert_eq!(member["status"], "invited");
    member["id"].as_str().unwrap().to_owned()
}

async fn accept(app: &TestApp, session: &str, invitation: &str) -> reqwest::Response {
    app.authed(
        Method::POST,
        &format!("/v1/invitations/{invitation}/accept"),
        session,
    )
    .send()
    .await
    .unwrap()
}

async fn a_new_user_signs_up_creates_a_workspace_and_works_in_it(app: TestApp) {
    let session = app.sign_up("Alice@Example.com").await;
    assert!(session.starts_with("tok_sess_"));
    let who = me(&app, &session).await;
    assert_eq!(who["user"]["email"], "alice@example.com");
    assert_eq!(who["memberships"], json!([]));
    // Without a workspace, workspace routes say what to do.
    let response = app
        .authed(Method::GET, "/v1/tokens", &session)
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 403, "forbidden").await;
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("POST /v1/workspaces")
    );

    let workspace = create_workspace(&app, &session, "My Team").await;
    assert_eq!(workspace["slug"], "my-team");
    assert_eq!(workspace["default_token_expiry_days"], 90);
    assert_eq!(workspace["audit_retention_days"], 90);
    let who = me(&app, &session).await;
    assert_eq!(who["memberships"][0]["role"], "owner");
    assert_eq!(who["memberships"][0]["workspace_slug"], "my-team");

    // The session works on plain and slug paths, as the Owner.
    let response = app
        .authed(Method::POST, "/v1/tokens", &session)
        .json(&json!({"name": "from-session", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;
    let response = app
        .authed(Method::GET, "/v1/workspaces/my-team/tokens", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_json(response, 200).await["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Its own audit log shows who did it.
    let response = app
        .authed(Method::GET, "/v1/audit-logs?type=token.created", &session)
        .send()
        .await
        .unwrap();
    let events = expect_json(response, 200).await;
    assert_eq!(events["data"][0]["actor"]["kind"], "session");
    assert_eq!(events["data"][0]["actor"]["label"], "alice@example.com");

    // A second workspace makes the unscoped path ambiguous; slug paths still work.
    create_workspace(&app, &session, "Staging").await;
    let response = app
        .authed(Method::GET, "/v1/tokens", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(
        expect_error(response, 422, "validation_failed").await["field"],
        "workspace"
    );
    let response = app
        .authed(Method::GET, "/v1/workspaces/staging/tokens", &session)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
    // Another person's workspace is not found.
    let response = app
        .authed(Method::GET, "/v1/workspaces/production/tokens", &session)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    // A taken slug is a conflict.
    let response = app
        .authed(Method::POST, "/v1/workspaces", &session)
        .json(&json!({"name": "again", "slug": "staging"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "slug_taken").await;
    // API keys cannot create workspaces: that is a person's act.
    let response = app
        .authed(Method::POST, "/v1/workspaces", &app.api_key)
        .json(&json!({"name": "by-key"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;

    // Sign out ends the session at once.
    let response = app
        .authed(Method::POST, "/v1/auth/signout", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .authed(Method::GET, "/v1/auth/me", &session)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    let response = app
        .authed(Method::GET, "/v1/workspaces/staging/tokens", &session)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    // Signing in again gives a new session.
    let response = app
        .raw(Method::POST, "/v1/auth/signin")
        .json(&json!({"email": "alice@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    let signed_in = expect_json(response, 200).await;
    assert_ne!(signed_in["token"], session.as_str());
}

async fn sign_up_validates_and_refuses_duplicates(app: TestApp) {
    for (body, field) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (
            json!({"email": "bob@example.com", "password": "short"}),
            "password",
        ),
        (json!({"email": "bob@example.com"}), "password"),
        (
            json!({"email": "bob@example.com", "password": PASSWORD, "admin": true}),
            "admin",
        ),
    ] {
        let response = app
            .raw(Method::POST, "/v1/auth/signup")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(
            expect_error(response, 422, "validation_failed").await["field"],
            field,
            "{body}"
        );
    }
    app.sign_up("bob@example.com").await;
    let response = app
        .raw(Method::POST, "/v1/auth/signup")
        .json(&json!({"email": "BOB@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "email_taken").await;
    // Passwords are stored as argon2id hashes only.
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM users WHERE email = 'bob@example.com'")
            .fetch_one(app.store().pool())
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$") && !stored.contains(PASSWORD));
}

async fn failed_sign_ins_are_throttled(app: TestApp) {
    app.sign_up("carol@example.com").await;
    let sign_in = |email: &'static str, password: &'static str| {
        app.raw(Method::POST, "/v1/auth/signin")
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    // Unknown email and wrong password look the same.
    let unknown = expect_error(
        sign_in("nobody@example.com", PASSWORD).await.unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    let wrong = expect_error(
        sign_in("carol@example.com", "wrong password!")
            .await
            .unwrap(),
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(unknown, wrong);
    for _ in 0..4 {
        expect_error(
            sign_in("carol@example.com", "wrong password!")
                .await
                .unwrap(),
            401,
            "invalid_credentials",
        )
        .await;
    }
    // Five failures: even the right password waits now.
    let response = sign_in("carol@example.com", PASSWORD).await.unwrap();
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry_after), "{retry_after}");
    expect_error(response, 429, "rate_limited").await;
    // Other accounts are not affected.
    app.sign_up("dave@example.com").await;
    expect_json(sign_in("dave@example.com", PASSWORD).await.unwrap(), 200).await;
}

async fn invitations_are_accepted_only_by_the_invited_email(app: TestApp) {
    let invitation = invite(&app, &app.api_key, "bob@example.com", "viewer").await;
    let response = app
        .authed(Method::POST, "/v1/members", &app.api_key)
        .json(&json!({"email": "BOB@example.com", "role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "member_exists").await;

    let mallory = app.sign_up("mallory@example.com").await;
    expect_error(accept(&app, &mallory, &invitation).await, 404, "not_found").await;
    let bob = app.sign_up("bob@example.com").await;
    let pending = me(&app, &bob).await["invitations"].clone();
    assert_eq!(pending[0]["id"], invitation.as_str());
    assert_eq!(pending[0]["workspace_slug"], "production");
    let joined = expect_json(accept(&app, &bob, &invitation).await, 200).await;
    assert_eq!(joined["role"], "viewer");
    expect_error(accept(&app, &bob, &invitation).await, 404, "not_found").await;

    // Bob is a Viewer: he reads, and is refused writes and the audit log.
    let response = app
        .authed(Method::GET, "/v1/tokens", &bob)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;
    let response = app
        .authed(Method::POST, "/v1/tokens", &bob)
        .json(&json!({"name": "x", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let response = app
        .authed(Method::GET, "/v1/audit-logs", &bob)
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    let members = expect_json(
        app.authed(Method::GET, "/v1/members", &bob)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(members["data"][0]["status"], "active");

    let joined_events = app.audit_events("type=member.joined").await;
    assert_eq!(joined_events.len(), 1);
    assert_eq!(joined_events[0]["actor"]["label"], "bob@example.com");
}

async fn the_last_owner_cannot_leave(app: TestApp) {
    let alice = app.sign_up("alice@example.com").await;
    create_workspace(&app, &alice, "Solo").await;
    let owner_id = me(&app, &alice).await["memberships"][0]["member_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/members/{owner_id}");
    let response = app
        .authed(Method::PATCH, &path, &alice)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "last_owner").await;
    let response = app
        .authed(Method::DELETE, &path, &alice)
        .send()
        .await
        .unwrap();
    expect_error(response, 409, "last_owner").await;

    // With a second Owner, the first can step down.
    let invitation = invite(&app, &alice, "erin@example.com", "owner").await;
    let erin = app.sign_up("erin@example.com").await;
    expect_json(accept(&app, &erin, &invitation).await, 200).await;
    let response = app
        .authed(Method::PATCH, &path, &alice)
        .json(&json!({"role": "admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(expect_json(response, 200).await["role"], "admin");
    // Alice is an Admin now, so settings are closed to her.
    let response = app
        .authed(Method::PATCH, &path, &alice)
        .json(&json!({"role": "owner"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
}

async fn removing_a_member_cuts_their_access_at_once(app: TestApp) {
    let invitation = invite(&app, &app.api_key, "frank@example.com", "admin").await;
    let frank = app.sign_up("frank@example.com").await;
    expect_json(accept(&app, &frank, &invitation).await, 200).await;
    let response = app
        .authed(Method::POST, "/v1/api-keys", &frank)
        .json(&json!({"name": "frank's laptop", "kind": "personal"}))
        .send()
        .await
        .unwrap();
    let key = expect_json(response, 201).await["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let response = app
        .authed(Method::GET, "/v1/tokens", &key)
        .send()
        .await
        .unwrap();
    expect_json(response, 200).await;

    let response = app
        .authed(
            Method::DELETE,
            &format!("/v1/members/{invitation}"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let response = app
        .authed(Method::GET, "/v1/tokens", &key)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    let response = app
        .authed(Method::GET, "/v1/workspaces/production/tokens", &frank)
        .send()
        .await
        .unwrap();
    expect_error(response, 404, "not_found").await;
    let removed = app.audit_events("type=member.removed").await;
    assert_eq!(removed[0]["data"]["email"], "frank@example.com");
}

async fn the_bootstrap_owner_is_claimed_by_signing_up(app: TestApp) {
    let done = tooken_api_server::bootstrap::bootstrap(
        app.store(),
        &tooken_api_server::bootstrap::BootstrapRequest {
            workspace_name: "Claimed".into(),
            slug: None,
            owner_email: Some("gina@example.com".into()),
            key_name: "bootstrap".into(),
            api_key: None,
        },
    )
    .await
    .unwrap();
    let gina = app.sign_up("gina@example.com").await;
    let memberships = me(&app, &gina).await["memberships"].clone();
    assert_eq!(memberships[0]["workspace_id"], done.workspace.id.as_str());
    assert_eq!(memberships[0]["role"], "owner");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_only_and_disabled_sign_up() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.signup = SignupPolicy::InviteOnly)
        .await
        .unwrap();
    let response = app
        .raw(Method::POST, "/v1/auth/signup")
        .json(&json!({"email": "stranger@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
    invite(&app, &app.api_key, "guest@example.com", "viewer").await;
    app.sign_up("guest@example.com").await;

    let app = spawn_app_with(Backend::Sqlite, |s| s.signup = SignupPolicy::Disabled)
        .await
        .unwrap();
    let response = app
        .raw(Method::POST, "/v1/auth/signup")
        .json(&json!({"email": "guest@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "forbidden").await;
}
