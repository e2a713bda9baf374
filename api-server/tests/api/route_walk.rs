//! Every operation of the OpenAPI document, called once with one credential: the walk behind
//! the tests that no route lets a credential reach what it must not (another workspace's
//! credential in permissions.rs, a confined token in confined.rs). Taking the list from the
//! document means a new route cannot escape them.

use crate::helpers::TestApp;
use serde_json::{Value, json};

/// What the walk puts into paths and bodies: the objects it aims at.
pub struct Targets<'a> {
    pub token: &'a str,
    pub api_key: &'a str,
    pub webhook: &'a str,
    /// Also the id of every other `{id}` route (invitations).
    pub member: &'a str,
    /// The token secret verify and introspection are asked about.
    pub secret: &'a str,
}

/// One operation's answer.
pub struct Answer {
    pub method: String,
    pub template: String,
    pub status: u16,
    pub text: String,
}

/// What the walk sends.
#[derive(Clone, Copy, PartialEq)]
pub enum Requests {
    /// Creating and changing routes get a valid body.
    Valid,
    /// Every body is broken JSON (or a form without `token`), every query has a `limit` that is
    /// not a number.
    Malformed,
}

/// Calls every operation whose path template `include` accepts, as `credential`, in the
/// workspace `production`. Creating and changing routes get a valid body.
pub async fn walk(
    app: &TestApp,
    credential: &str,
    targets: &Targets<'_>,
    include: impl Fn(&str) -> bool,
) -> Vec<Answer> {
    walk_sending(app, credential, targets, include, Requests::Valid).await
}

/// Like `walk`, sending `requests`.
pub async fn walk_sending(
    app: &TestApp,
    credential: &str,
    targets: &Targets<'_>,
    include: impl Fn(&str) -> bool,
    requests: Requests,
) -> Vec<Answer> {
    let doc = app.get_json("/v1/openapi.json").await;
    let window = format!(
        "since={}&until={}",
        jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24),
        jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)
    );
    let mut answers = Vec::new();
    for (template, item) in doc["paths"].as_object().unwrap() {
        if !include(template) {
            continue;
        }
        for (method, _) in item.as_object().unwrap() {
            let id = if template.starts_with("/v1/tokens/") {
                targets.token
            } else if template.starts_with("/v1/api-keys/") {
                targets.api_key
            } else if template.starts_with("/v1/webhooks/") {
                targets.webhook
            } else {
                targets.member
            };
            let mut path = template.replace("{id}", id).replace("{slug}", "production");
            if path.contains("/export") {
                path = format!("{path}?{window}");
            }
            if requests == Requests::Malformed {
                let join = if path.contains('?') { '&' } else { '?' };
                path = format!("{path}{join}limit=many");
            }
            let request = app.authed(method.to_uppercase().parse().unwrap(), &path, credential);
            let request = match (template.as_str(), requests) {
                ("/v1/oauth2/introspect", Requests::Valid) => request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(format!("token={}", targets.secret)),
                ("/v1/oauth2/introspect", Requests::Malformed) => request
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("token_type_hint=access_token"),
                (_, Requests::Valid) => request.json(&body(method, template, targets.secret)),
                (_, Requests::Malformed) => request
                    .header("content-type", "application/json")
                    .body(r#"{"name": "#),
            };
            let response = request.send().await.unwrap();
            answers.push(Answer {
                method: method.clone(),
                template: template.clone(),
                status: response.status().as_u16(),
                text: response.text().await.unwrap(),
            });
        }
    }
    assert!(answers.len() >= 25, "walked only {} routes", answers.len());
    answers
}

fn body(method: &str, template: &str, secret: &str) -> Value {
    match (method, template) {
        ("post", "/v1/tokens") => json!({"name": "intruder", "scopes": ["tokens:read"]}),
        ("post", "/v1/tokens/verify") => json!({"token": secret}),
        ("post", "/v1/api-keys") => json!({"name": "intruder", "kind": "team"}),
        ("post", "/v1/members") => json!({"email": "intruder@example.com", "role": "viewer"}),
        ("patch", "/v1/members/{id}") => json!({"role": "owner"}),
        ("patch", "/v1/workspace") => json!({"name": "Intruded"}),
        ("post", "/v1/webhooks") => {
            json!({"url": "http://127.0.0.1:9/x", "event_types": ["token.created"]})
        }
        ("patch", "/v1/webhooks/{id}") => json!({"enabled": false}),
        _ => json!({}),
    }
}
