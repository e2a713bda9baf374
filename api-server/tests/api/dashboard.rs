//! The dashboard's side of the server: cookie sessions with CSRF protection, and the pages
//! served with a strict Content Security Policy.

use crate::helpers::{PASSWORD, TestApp, expect_error, expect_json};
use crate::on_both_backends;
use reqwest::Method;
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use serde_json::{Value, json};

on_both_backends!(
    cookie_sessions_need_the_csrf_token_for_every_change,
    a_session_cookie_is_refused_from_other_sites_and_after_sign_out,
    the_dashboard_is_served_with_a_strict_policy,
);

/// Signs up through the dashboard's flow; returns (Cookie header, CSRF token, Set-Cookie).
async fn cookie_sign_up(app: &TestApp, email: &str) -> (String, String, String) {
    let response = app
        .raw(Method::POST, "/v1/auth/signup")
        .json(&json!({"email": email, "password": PASSWORD, "cookie": true}))
        .send()
        .await
        .unwrap();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let body = expect_json(response, 201).await;
    assert!(
        body.get("token").is_none(),
        "the secret stays in the cookie: {body}"
    );
    let csrf = body["csrf_token"].as_str().unwrap().to_owned();
    let pair = set_cookie.split(';').next().unwrap().to_owned();
    (pair, csrf, set_cookie)
}

fn with_cookie(app: &TestApp, method: Method, path: &str, cookie: &str) -> reqwest::RequestBuilder {
    app.raw(method, path).header(COOKIE, cookie)
}

async fn cookie_sessions_need_the_csrf_token_for_every_change(app: TestApp) {
    let (cookie, csrf, set_cookie) = cookie_sign_up(&app, "dash@example.com").await;
    assert!(
        cookie.starts_with("tooken_session=tok_sess_"),
        "{set_cookie}"
    );
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(
            set_cookie.contains(attribute),
            "{attribute} missing: {set_cookie}"
        );
    }
    assert!(
        !set_cookie.contains("Secure"),
        "plain HTTP cannot keep a Secure cookie"
    );

    // Reads need only the cookie, and /v1/auth/me hands the CSRF token back after a reload.
    let me = with_cookie(&app, Method::GET, "/v1/auth/me", &cookie)
        .send()
        .await
        .unwrap();
    let me = expect_json(me, 200).await;
    assert_eq!(me["csrf_token"], csrf.as_str());
    assert_eq!(me["user"]["email"], "dash@example.com");

    // A change without the token, or with another, is refused and changes nothing.
    let create = || {
        with_cookie(&app, Method::POST, "/v1/workspaces", &cookie).json(&json!({"name": "Dash"}))
    };
    expect_error(create().send().await.unwrap(), 403, "csrf_failed").await;
    let wrong = create()
        .header("x-csrf-token", "0".repeat(64))
        .send()
        .await
        .unwrap();
    expect_error(wrong, 403, "csrf_failed").await;
    let me = expect_json(
        with_cookie(&app, Method::GET, "/v1/auth/me", &cookie)
            .send()
            .await
            .unwrap(),
        200,
    )
    .await;
    assert_eq!(me["memberships"], json!([]));

    let created = create().header("x-csrf-token", &csrf).send().await.unwrap();
    let workspace = expect_json(created, 201).await;
    let tokens = "/v1/workspaces/dash/tokens";
    assert_eq!(workspace["slug"], "dash");

    // Workspace routes take the cookie the same way.
    let issue = |token: Option<&str>| {
        let request = with_cookie(&app, Method::POST, tokens, &cookie)
            .json(&json!({"name": "from-the-browser", "scopes": ["tokens:read"]}));
        match token {
            Some(token) => request.header("x-csrf-token", token),
            None => request,
        }
    };
    expect_error(issue(None).send().await.unwrap(), 403, "csrf_failed").await;
    let issued = expect_json(issue(Some(&csrf)).send().await.unwrap(), 201).await;
    let list = with_cookie(&app, Method::GET, tokens, &cookie)
        .send()
        .await
        .unwrap();
    let list = expect_json(list, 200).await;
    assert_eq!(
        list["data"].as_array().unwrap().len(),
        1,
        "the refused request created nothing"
    );
    assert_eq!(list["data"][0]["id"], issued["id"]);

    // A bearer credential needs no CSRF token: no browser sends it on its own.
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "service", "scopes": ["tokens:read"]}))
        .send()
        .await
        .unwrap();
    expect_json(response, 201).await;

    // Only session secrets live in the cookie; an API key there is not a credential.
    let key_cookie = format!("tooken_session={}", app.api_key);
    let response = with_cookie(&app, Method::GET, "/v1/tokens", &key_cookie)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
}

async fn a_session_cookie_is_refused_from_other_sites_and_after_sign_out(app: TestApp) {
    let (cookie, csrf, _) = cookie_sign_up(&app, "site@example.com").await;
    // Even with the token, a request another site's page sent is refused.
    let response = with_cookie(&app, Method::POST, "/v1/workspaces", &cookie)
        .header("x-csrf-token", &csrf)
        .header("sec-fetch-site", "cross-site")
        .json(&json!({"name": "Elsewhere"}))
        .send()
        .await
        .unwrap();
    expect_error(response, 403, "csrf_failed").await;

    let sign_in = |headers: &[(&'static str, &'static str)]| {
        let mut request = app
            .raw(Method::POST, "/v1/auth/signin")
            .json(&json!({"email": "site@example.com", "password": PASSWORD, "cookie": true}));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send()
    };
    // Another site cannot sign a browser in to an account of its choosing (login CSRF).
    let response = sign_in(&[("sec-fetch-site", "cross-site")]).await.unwrap();
    expect_error(response, 403, "csrf_failed").await;

    // Behind a TLS proxy the cookie is Secure.
    let response = sign_in(&[
        ("x-forwarded-proto", "https"),
        ("sec-fetch-site", "same-origin"),
    ])
    .await
    .unwrap();
    let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    expect_json(response, 200).await;
    assert!(set_cookie.ends_with("; Secure"), "{set_cookie}");

    // Signing out ends the session and tells the browser to drop the cookie.
    let response = with_cookie(&app, Method::POST, "/v1/auth/signout", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let cleared = response.headers()[SET_COOKIE].to_str().unwrap();
    assert!(
        cleared.starts_with("tooken_session=; Max-Age=0"),
        "{cleared}"
    );
    let response = with_cookie(&app, Method::GET, "/v1/auth/me", &cookie)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.raw(Method::GET, path).send().await.unwrap()
}

async fn the_dashboard_is_served_with_a_strict_policy(app: TestApp) {
    let page = get(&app, "/").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    let csp = headers["content-security-policy"].to_str().unwrap();
    for directive in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(directive), "{directive} missing: {csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert!(
        headers[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/assets/app.js"></script>"#));

    // The router's paths answer with the same page; unknown paths stay JSON 404s.
    for path in [
        "/sign-in",
        "/sign-up",
        "/workspaces/new",
        "/w/production/settings/members",
    ] {
        let response = get(&app, path).await;
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), html, "{path}");
    }
    expect_error(get(&app, "/wp-admin").await, 404, "route_not_found").await;
    expect_error(
        get(&app, "/assets/missing.js").await,
        404,
        "route_not_found",
    )
    .await;

    // Everything the first page can load stays under 200 KB.
    let mut total = html.len();
    for name in tooken_api_server::http::dashboard::asset_names() {
        let response = get(&app, &format!("/assets/{name}")).await;
        assert_eq!(response.status(), 200, "{name}");
        let content_type = response.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let expected = if name.ends_with(".js") {
            "text/javascript"
        } else {
            "text/css"
        };
        assert!(content_type.starts_with(expected), "{name}: {content_type}");
        assert!(response.headers().contains_key("content-security-policy"));
        total += response.bytes().await.unwrap().len();
    }
    assert!(total < 200 * 1024, "the dashboard weighs {total} bytes");

    // A browser with a current copy gets 304 and no body.
    let first = get(&app, "/assets/app.js").await;
    let etag = first.headers()["etag"].clone();
    let again = app
        .raw(Method::GET, "/assets/app.js")
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert!(again.bytes().await.unwrap().is_empty());

    // The page carries the scopes from the same constants the API checks.
    let start = html.find(r#"id="catalog">"#).unwrap() + r#"id="catalog">"#.len();
    let end = start + html[start..].find("</script>").unwrap();
    let catalog: Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(catalog["scopes"].as_array().unwrap().len(), 7);
}
