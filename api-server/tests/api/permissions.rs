//! Every role against every workspace route, and another workspace's credential against every
//! route (the list comes from the OpenAPI document, so a new route cannot escape the walk).

use crate::helpers::{TestApp, expect_json};
use crate::on_both_backends;
use crate::route_walk::{Answer, Requests, Targets, walk, walk_sending};
use reqwest::Method;
use serde_json::{Value, json};
use tooken_api_server::store::members::{self, Member};
use tooken_api_server::store::{new_id, now};
use tooken_contract::members::{MemberStatus, Role};

on_both_backends!(
    roles_are_enforced_on_every_route,
    another_workspace_sees_nothing_on_any_route,
    a_caller_refused_a_route_is_refused_whatever_it_sends
);

async fn personal_key(app: &TestApp, role: Role) -> String {
    let member = Member {
        id: new_id(),
        workspace_id: app.workspace_id.clone(),
        email: format!("{}@example.com", role.as_str()),
        role,
        status: MemberStatus::Active,
        user_id: None,
        created_at: now(),
    };
    let mut tx = app.store().begin_write().await.unwrap();
    members::insert(&mut tx, &member).await.unwrap();
    tx.commit().await.unwrap();
    let response = app
        .authed(Method::POST, "/v1/api-keys", &app.api_key)
        .json(&json!({"name": role.as_str(), "kind": "personal", "member_id": member.id}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await["key"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn invited_member(app: &TestApp) -> String {
    let response = app
        .authed(Method::POST, "/v1/members", &app.api_key)
        .json(&json!({"email": format!("{}@example.com", new_id()), "role": "viewer"}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn team_key(app: &TestApp) -> String {
    let response = app
        .authed(Method::POST, "/v1/api-keys", &app.api_key)
        .json(&json!({"name": "victim", "kind": "team"}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// (method, path, body, roles allowed, status when refused)
type Case = (Method, String, Option<Value>, &'static [Role], u16);

async fn roles_are_enforced_on_every_route(app: TestApp) {
    use Role::*;
    let window = "since=2020-01-01T00:00:00Z&until=2020-12-31T00:00:00Z";
    for role in [Owner, Admin, Viewer] {
        let key = personal_key(&app, role).await;
        let (token, secret) = app.token("target", json!(["tokens:read"])).await;
        let (revocable, _) = app.token("revocable", json!(["tokens:read"])).await;
        let member = invited_member(&app).await;
        let doomed_member = invited_member(&app).await;
        let other_key = team_key(&app).await;
        let cases: Vec<Case> = vec![
            (
                Method::GET,
                "/v1/tokens".into(),
                None,
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::GET,
                format!("/v1/tokens/{token}"),
                None,
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::POST,
                "/v1/tokens/verify".into(),
                Some(json!({"token": secret})),
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::POST,
                "/v1/tokens".into(),
                Some(json!({"name": "n", "scopes": ["tokens:read"]})),
                &[Owner, Admin],
                403,
            ),
            (
                Method::POST,
                format!("/v1/tokens/{token}/rotate"),
                Some(json!({})),
                &[Owner, Admin],
                403,
            ),
            (
                Method::POST,
                format!("/v1/tokens/{revocable}/revoke"),
                None,
                &[Owner, Admin],
                403,
            ),
            (
                Method::GET,
                "/v1/api-keys".into(),
                None,
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::POST,
                "/v1/api-keys".into(),
                Some(json!({"name": "t", "kind": "team"})),
                &[Owner],
                403,
            ),
            (
                Method::POST,
                "/v1/api-keys".into(),
                Some(json!({"name": "mine", "kind": "personal"})),
                &[Owner, Admin, Viewer],
                403,
            ),
            // Others' keys are invisible to non-owners: 404, not 403.
            (
                Method::GET,
                format!("/v1/api-keys/{other_key}"),
                None,
                &[Owner],
                404,
            ),
            (
                Method::POST,
                format!("/v1/api-keys/{other_key}/regenerate"),
                None,
                &[Owner],
                404,
            ),
            (
                Method::DELETE,
                format!("/v1/api-keys/{other_key}"),
                None,
                &[Owner],
                404,
            ),
            (
                Method::GET,
                "/v1/workspace".into(),
                None,
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::PATCH,
                "/v1/workspace".into(),
                Some(json!({"timezone": "UTC"})),
                &[Owner],
                403,
            ),
            (
                Method::GET,
                "/v1/members".into(),
                None,
                &[Owner, Admin, Viewer],
                403,
            ),
            (
                Method::POST,
                "/v1/members".into(),
                Some(json!({"email": format!("{}@x.io", new_id()), "role": "viewer"})),
                &[Owner],
                403,
            ),
            (
                Method::PATCH,
                format!("/v1/members/{member}"),
                Some(json!({"role": "admin"})),
                &[Owner],
                403,
            ),
            (
                Method::DELETE,
                format!("/v1/members/{doomed_member}"),
                None,
                &[Owner],
                403,
            ),
            (
                Method::GET,
                "/v1/audit-logs".into(),
                None,
                &[Owner, Admin],
                403,
            ),
            (
                Method::GET,
                format!("/v1/audit-logs/export?{window}"),
                None,
                &[Owner, Admin],
                403,
            ),
        ];
        for (method, path, body, allowed, refused) in cases {
            let mut request = app.authed(method.clone(), &path, &key);
            if let Some(body) = &body {
                request = request.json(body);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if allowed.contains(&role) {
                assert!(
                    (200..300).contains(&status),
                    "{role:?} {method} {path}: {status}"
                );
            } else {
                assert_eq!(status, refused, "{role:?} {method} {path}");
            }
        }
    }
}

/// One object of each kind in "production", for a walk to aim at.
struct Objects {
    token: String,
    secret: String,
    api_key: String,
    member: String,
    webhook: String,
}

impl Objects {
    async fn create(app: &TestApp) -> Objects {
        let (token, secret) = app.token("prod-token", json!(["tokens:read"])).await;
        let (webhook, _) = app
            .webhook("http://127.0.0.1:9/hook", &["token.created"])
            .await;
        Objects {
            token,
            secret,
            api_key: team_key(app).await,
            member: invited_member(app).await,
            webhook,
        }
    }

    fn targets(&self) -> Targets<'_> {
        Targets {
            token: &self.token,
            api_key: &self.api_key,
            webhook: &self.webhook,
            member: &self.member,
            secret: &self.secret,
        }
    }
}

async fn another_workspace_sees_nothing_on_any_route(app: TestApp) {
    let objects = Objects::create(&app).await;
    let Objects {
        token,
        api_key,
        member,
        webhook,
        ..
    } = &objects;
    let prod_ids = [token, api_key, member, webhook];
    let (_, intruder) = app.other_workspace("intruder").await;
    let targets = objects.targets();
    // Routes about the signed-in person rather than a workspace are left out.
    let answers = walk(&app, &intruder, &targets, |template| {
        !(template.starts_with("/v1/auth/")
            || template.starts_with("/v1/invitations/")
            || template == "/v1/workspaces")
    })
    .await;
    for Answer {
        method,
        template,
        status,
        text,
    } in answers
    {
        if template.contains("{slug}") {
            // Forward-auth: another workspace's gate admits none of the intruder's credentials.
            assert_eq!(status, 401, "{method} {template}: {text}");
        } else if template == "/v1/oauth2/introspect" {
            assert_eq!(text, r#"{"active":false}"#, "{method} {template}");
        } else if template.contains("{id}") {
            assert_eq!(
                status, 404,
                "{method} {template} reached another workspace's object: {text}"
            );
        } else {
            assert!(status < 400, "{method} {template}: {status} {text}");
            for id in &prod_ids {
                assert!(
                    !text.contains(id.as_str()),
                    "{method} {template} leaked {id}: {text}"
                );
            }
            if template == "/v1/tokens/verify" {
                assert!(text.contains("not_found"), "{text}");
            }
        }
    }

    // Production is untouched.
    let workspace = expect_json(
        app.authed(Method::GET, "/v1/workspace", &app.api_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(workspace["name"], "production");
    let token_now = app.client(&app.api_key).get_token(token).await.unwrap();
    assert_eq!((token_now.rotation, token_now.revoked_at), (0, None));
    let listed = app.client(&app.api_key).list_api_keys().await.unwrap();
    assert!(listed.data.iter().any(|k| k.id == *api_key));
    let members = expect_json(
        app.authed(Method::GET, "/v1/members", &app.api_key)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(members["data"].as_array().unwrap().len(), 1);
    assert_eq!(members["data"][0]["role"], "viewer");
    let hook = expect_json(
        app.authed(
            Method::GET,
            &format!("/v1/webhooks/{webhook}"),
            &app.api_key,
        )
        .send()
        .await
        .unwrap(),
        200,
    )
    .await;
    assert_eq!(hook["enabled"], true);
}

/// A caller who may not use a route gets 403 whatever its body or query, never a complaint
/// about a request it was not allowed to make. Only POST /v1/api-keys reads the body first:
/// the kind of key asked for decides who may create it.
async fn a_caller_refused_a_route_is_refused_whatever_it_sends(app: TestApp) {
    let objects = Objects::create(&app).await;
    let targets = objects.targets();
    let workspace_routes = |template: &str| {
        !(template.starts_with("/v1/auth/")
            || template.starts_with("/v1/invitations/")
            || template == "/v1/workspaces"
            || template.contains("{slug}"))
    };
    let (_, reader) = app.token("reader", json!(["tokens:read"])).await;
    let callers = [
        ("viewer", personal_key(&app, Role::Viewer).await),
        ("admin", personal_key(&app, Role::Admin).await),
        ("tokens:read token", reader),
    ];
    for (who, credential) in callers {
        // Malformed first: it changes nothing, while the valid walk may.
        let malformed = walk_sending(
            &app,
            &credential,
            &targets,
            workspace_routes,
            Requests::Malformed,
        )
        .await;
        let valid = walk(&app, &credential, &targets, workspace_routes).await;
        let mut refused = 0;
        for (bad, good) in malformed.iter().zip(&valid) {
            assert_eq!((&bad.method, &bad.template), (&good.method, &good.template));
            if good.status != 403 || (bad.method == "post" && bad.template == "/v1/api-keys") {
                continue;
            }
            refused += 1;
            assert_eq!(
                bad.status, 403,
                "{who}: {} {} refuses a valid request but answers a malformed one with: {}",
                bad.method, bad.template, bad.text
            );
        }
        // Each caller is refused a good part of the API, so the walk tests something.
        assert!(refused >= 6, "{who} was refused only {refused} routes");
    }
}
