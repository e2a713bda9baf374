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
            let body: Value = response.json().await.unwrap();
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
