//! The OpenAPI document matches the routes the server answers.

use crate::helpers::{Backend, TestApp, expect_json, spawn_app};
use reqwest::Method;
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') {
                "0190aaaa-0000-7000-8000-000000000000"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn matches(template: &str, path: &str) -> bool {
    let t: Vec<&str> = template.split('/').collect();
    let p: Vec<&str> = path.split('/').collect();
    t.len() == p.len() && t.iter().zip(&p).all(|(t, p)| t == p || t.starts_with('{'))
}

#[tokio::test]
async fn document_matches_the_routes() {
    let app: TestApp = spawn_app(Backend::Sqlite).await.unwrap();
    let doc = expect_json(
        app.raw(Method::GET, "/v1/openapi.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().unwrap();
    let declared: Vec<(String, String)> = paths
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), m.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(declared.len() >= 11, "{declared:?}");

    for (template, method) in &declared {
        let path = concrete(template);
        let response = app
            .raw(method.to_uppercase().parse().unwrap(), &path)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let operation = &paths[template][method];
        if operation["security"].is_array() {
            // A secured operation exists: unauthenticated, it is refused with 401, not 404/405.
            assert_eq!(
                status, 401,
                "{method} {template} is documented but not served: {body}"
            );
            assert!(
                operation["responses"].get("401").is_some(),
                "{method} {template}"
            );
        } else {
            // A public operation (sign-up, sign-in) exists: whatever it says, it is not a
            // missing route.
            assert!(
                status != 405 && body["error"] != "route_not_found",
                "{method} {template} is documented but not served: {status} {body}"
            );
        }
    }

    // No undocumented method answers on a documented path.
    for template in paths.keys() {
        let path = concrete(template);
        for method in METHODS {
            let documented = declared
                .iter()
                .any(|(t, m)| m == method && matches(t, &path));
            if documented {
                continue;
            }
            let response = app
                .raw(method.to_uppercase().parse().unwrap(), &path)
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let allow = response
                .headers()
                .get("allow")
                .map(|value| value.to_str().unwrap().to_owned());
            let body: Value = response.json().await.unwrap();
            if status == 405 {
                // RFC 9110: a 405 names the methods that do work, exactly the documented ones.
                let documented: Vec<String> = METHODS
                    .iter()
                    .filter(|m| paths[template].get(**m).is_some())
                    .map(|m| m.to_uppercase())
                    .collect();
                assert_eq!(allow, Some(documented.join(", ")), "{method} {template}");
            }
            assert!(
                (status == 405 && body["error"] == "method_not_allowed")
                    || (status == 404 && body["error"] == "route_not_found"),
                "{method} {template} answers {status} {body} but is not documented"
            );
        }
    }

    // Every schema the document references exists.
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    for reference in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = &reference[..reference.find('"').unwrap()];
        assert!(schemas.contains_key(name), "missing schema {name}");
    }
}

/// The document states the rules the server applies, so a client generated from it sends
/// what the server accepts and expects the answers it gets.
#[tokio::test]
async fn document_states_the_rules_the_server_applies() {
    let app: TestApp = spawn_app(Backend::Sqlite).await.unwrap();
    let doc = expect_json(
        app.raw(Method::GET, "/v1/openapi.json")
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    let paths = doc["paths"].as_object().unwrap();
    let schemas = &doc["components"]["schemas"];
    let operation = |path: &str, method: &str| &paths[path][method];
    // Optional bodies may be absent, never null.
    for path in ["/v1/tokens/{id}/rotate", "/v1/webhooks/{id}/rotate-secret"] {
        let body = &operation(path, "post")["requestBody"];
        assert_ne!(body["required"], true, "{path}");
        let schema = body["content"]["application/json"]["schema"].to_string();
        assert!(!schema.contains("null"), "{path}: {schema}");
    }
    // Fields that may be absent but not null.
    for field in ["enabled", "url", "event_types"] {
        let property = &schemas["UpdateWebhookRequest"]["properties"][field];
        assert!(
            !property.to_string().contains("null"),
            "{field}: {property}"
        );
    }
    // Every operation with a body declares 400; every one that takes input declares 422; every
    // `limit` is 1–200; every operation declares 429.
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let responses = &op["responses"];
            let params = op["parameters"].as_array().map_or(&[][..], Vec::as_slice);
            if op.get("requestBody").is_some() {
                assert!(responses.get("400").is_some(), "{method} {path}");
            }
            if op.get("requestBody").is_some() || !params.is_empty() {
                assert!(responses.get("422").is_some(), "{method} {path}");
            }
            assert!(responses.get("429").is_some(), "{method} {path}");
            for param in params.iter().filter(|p| p["name"] == "limit") {
                assert_eq!(param["schema"]["minimum"], 1, "{method} {path}");
                assert_eq!(param["schema"]["maximum"], 200, "{method} {path}");
            }
            for param in params.iter().filter(|p| p["name"] == "Idempotency-Key") {
                assert_eq!(param["in"], "header");
                assert_eq!(param["schema"]["minLength"], 1, "{method} {path}");
                assert_eq!(param["schema"]["maxLength"], 255, "{method} {path}");
                assert_eq!(param["schema"]["pattern"], "^[!-~]+$", "{method} {path}");
            }
        }
    }
    for path in ["/v1/tokens/{id}/revoke", "/v1/api-keys/{id}/regenerate"] {
        let params = operation(path, "post")["parameters"].to_string();
        assert!(params.contains("Idempotency-Key"), "{path}");
    }
    assert!(
        operation("/v1/auth/signout", "post")["responses"]
            .get("403")
            .is_some()
    );
    for schema in [
        "CreateTokenRequest",
        "CreateApiKeyRequest",
        "CreateWorkspaceRequest",
    ] {
        let name = &schemas[schema]["properties"]["name"];
        assert_eq!(name["maxLength"], 128, "{schema}");
        assert_eq!(name["minLength"], 1, "{schema}");
    }
}
