//! What a hostile client tries: slow headers and bodies, answers before the body, ambiguous
//! credentials and JSON, odd timestamps, unexpected methods. Each is refused over real HTTP,
//! on both databases, and writes nothing.

use crate::helpers::{TestApp, expect_error, expect_json};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tooken_api_server::app::Settings;
use tooken_api_server::rate_limit::RateLimit;

/// Long enough that a loaded machine never trips it by accident, short enough to wait for.
const READ_TIMEOUT: Duration = Duration::from_millis(400);
/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(20);

fn short_read_timeouts(settings: &mut Settings) {
    settings.header_read_timeout = READ_TIMEOUT;
    settings.body_read_timeout = READ_TIMEOUT;
}

/// One request allowed per credential, refilled only after minutes.
fn one_request_per_credential(settings: &mut Settings) {
    settings.rate_limit = Some(RateLimit {
        per_second: 0.01,
        burst: 1.0,
    });
}

crate::on_both_backends_with!(super::short_read_timeouts =>
    slow_headers_are_cut_off,
    a_slow_body_gets_408_and_the_connection_closes,
);
crate::on_both_backends_with!(super::one_request_per_credential =>
    after_an_early_429_the_connection_serves_the_next_request,
);
crate::on_both_backends!(
    after_an_early_401_the_connection_serves_the_next_request,
    ambiguous_authorization_is_refused,
    duplicate_json_keys_are_refused,
    expiry_offsets_beyond_rfc_3339_are_refused,
    method_not_allowed_says_what_is,
    a_nul_character_in_a_query_is_refused_by_name,
);

// --- a tiny HTTP/1.1 client over a raw socket, for what reqwest never sends ---

async fn connect(app: &TestApp) -> TcpStream {
    let address = app.base_url.trim_start_matches("http://");
    TcpStream::connect(address).await.expect("connect")
}

struct RawResponse {
    status: u16,
    /// Header lines, lowercased.
    head: String,
    body: String,
}

/// Reads one response (with a `Content-Length` body) from `stream`.
async fn read_response(stream: &mut TcpStream, buffer: &mut Vec<u8>) -> RawResponse {
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("a response in time")
            .expect("read");
        assert!(n > 0, "connection closed before a response");
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8(buffer[..head_end].to_vec())
        .unwrap()
        .to_lowercase();
    let status = head[9..12].parse().unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map_or(0, |n| n.trim().parse().unwrap());
    while buffer.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(PATIENCE, stream.read(&mut chunk))
            .await
            .expect("the body in time")
            .expect("read");
        assert!(n > 0, "connection closed inside a response");
        buffer.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8(buffer[head_end..head_end + length].to_vec()).unwrap();
    buffer.drain(..head_end + length);
    RawResponse { status, head, body }
}

/// Waits until the server closes `stream`; panics if it stays open past `PATIENCE`.
async fn wait_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut rest = Vec::new();
    let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut rest)).await;
    match read {
        Ok(_) => rest, // end of stream, or reset: closed either way
        Err(_) => panic!("the server kept the connection open for {PATIENCE:?}"),
    }
}

fn post_head(path: &str, credential: &str, length: usize) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nhost: tooken\r\nauthorization: Bearer {credential}\r\n\
         content-type: application/json\r\ncontent-length: {length}\r\n\r\n"
    )
}

/// Sends `head`, then `body` a moment later, as a client streaming its upload would: after
/// the server answered, or after a short wait when it (rightly) waits for the body.
async fn send_body_late(stream: &mut TcpStream, head: &str, body: &str) -> Vec<u8> {
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut early = vec![0u8; 4096];
    let got = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut early)).await;
    let early = match got {
        Ok(Ok(n)) => early[..n].to_vec(),
        _ => Vec::new(),
    };
    if !early.is_empty() {
        // The body follows the answer by a moment, as an upload in flight does; this is the
        // scenario, not a wait for the server.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // On a connection the server already closed this write can fail; the next read says so.
    let _ = stream.write_all(body.as_bytes()).await;
    early
}

async fn token_names(app: &TestApp) -> Vec<String> {
    app.get_json("/v1/tokens").await["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap().to_owned())
        .collect()
}

// --- 1. read timeouts ---

async fn slow_headers_are_cut_off(app: TestApp) {
    // Before connecting: the server's clock starts when it accepts, which may be before
    // connect() returns on a loaded machine.
    let started = tokio::time::Instant::now();
    let mut stream = connect(&app).await;
    // The request line and one header, and then nothing: the rest of the headers never come.
    let partial = format!(
        "POST /v1/tokens HTTP/1.1\r\nauthorization: Bearer {}\r\n",
        app.api_key
    );
    stream.write_all(partial.as_bytes()).await.unwrap();
    wait_closed(&mut stream).await;
    assert!(
        started.elapsed() >= READ_TIMEOUT,
        "closed before the timeout"
    );
    // An idle connection is closed the same way: before its first request, and after one.
    let mut idle = connect(&app).await;
    wait_closed(&mut idle).await;
    let mut served = connect(&app).await;
    served
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: tooken\r\n\r\n")
        .await
        .unwrap();
    let mut buffer = Vec::new();
    assert_eq!(read_response(&mut served, &mut buffer).await.status, 200);
    wait_closed(&mut served).await;
    assert!(token_names(&app).await.is_empty(), "nothing was written");
}

async fn a_slow_body_gets_408_and_the_connection_closes(app: TestApp) {
    let body = json!({"name": "slow", "scopes": ["tokens:read"]}).to_string();
    let mut stream = connect(&app).await;
    let head = post_head("/v1/tokens", &app.api_key, body.len());
    stream.write_all(head.as_bytes()).await.unwrap();
    // Half of the body, and then the client stalls.
    stream
        .write_all(&body.as_bytes()[..body.len() / 2])
        .await
        .unwrap();
    let mut buffer = Vec::new();
    let response = read_response(&mut stream, &mut buffer).await;
    assert_eq!(response.status, 408, "{}", response.body);
    assert!(
        response.head.contains("connection: close"),
        "{}",
        response.head
    );
    let error: serde_json::Value = serde_json::from_str(&response.body).unwrap();
    assert_eq!(error["error"], "request_timeout", "{error}");
    wait_closed(&mut stream).await;
    assert!(token_names(&app).await.is_empty(), "nothing was written");
}

// --- 2. keep-alive after an early answer ---

async fn after_an_early_401_the_connection_serves_the_next_request(app: TestApp) {
    let refused = json!({"name": "refused", "scopes": ["tokens:read"]}).to_string();
    let wrong_key = "tok_live_0000000000000000000000000000000000000";
    let mut stream = connect(&app).await;
    let mut buffer = send_body_late(
        &mut stream,
        &post_head("/v1/tokens", wrong_key, refused.len()),
        &refused,
    )
    .await;
    let first = read_response(&mut stream, &mut buffer).await;
    assert_eq!(first.status, 401, "{}", first.body);
    assert!(!first.head.contains("connection: close"), "{}", first.head);

    // The same connection carries the next request, as a client retrying would send it.
    let accepted = json!({"name": "accepted", "scopes": ["tokens:read"]}).to_string();
    let second = format!(
        "{}{accepted}",
        post_head("/v1/tokens", &app.api_key, accepted.len())
    );
    stream.write_all(second.as_bytes()).await.unwrap();
    let second = read_response(&mut stream, &mut buffer).await;
    assert_eq!(second.status, 201, "{}", second.body);
    assert_eq!(
        token_names(&app).await,
        ["accepted"],
        "the refused one was not written"
    );
}

async fn after_an_early_429_the_connection_serves_the_next_request(app: TestApp) {
    // The team key spends its one request; the reader token has its own.
    let (_, reader) = app.token("reader", json!(["tokens:read"])).await;
    let refused = json!({"name": "refused", "scopes": ["tokens:read"]}).to_string();
    let mut stream = connect(&app).await;
    let head = post_head("/v1/tokens", &app.api_key, refused.len());
    let mut buffer = send_body_late(&mut stream, &head, &refused).await;
    let first = read_response(&mut stream, &mut buffer).await;
    assert_eq!(first.status, 429, "{}", first.body);
    assert!(first.head.contains("retry-after: "), "{}", first.head);
    assert!(!first.head.contains("connection: close"), "{}", first.head);

    let list = format!(
        "GET /v1/tokens HTTP/1.1\r\nhost: tooken\r\nauthorization: Bearer {reader}\r\n\r\n"
    );
    stream.write_all(list.as_bytes()).await.unwrap();
    let second = read_response(&mut stream, &mut buffer).await;
    assert_eq!(second.status, 200, "{}", second.body);
    let listed: serde_json::Value = serde_json::from_str(&second.body).unwrap();
    let names: Vec<&str> = listed["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|token| token["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reader"], "the refused one was not written");
}

// --- 7. ambiguous input ---

async fn ambiguous_authorization_is_refused(app: TestApp) {
    let create = || {
        app.raw(Method::POST, "/v1/tokens")
            .json(&json!({"name": "ambiguous", "scopes": ["tokens:read"]}))
    };
    let valid = format!("Bearer {}", app.api_key);
    let invalid = "Bearer tok_live_0000000000000000000000000000000000000";
    for (first, second) in [(valid.as_str(), invalid), (invalid, valid.as_str())] {
        let response = create()
            .header("authorization", first)
            .header("authorization", second)
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 401, "unauthorized").await;
        assert_eq!(
            body,
            json!({"error": "unauthorized", "message": "Invalid or missing API key"})
        );
    }
    // Two copies of the same valid key are just as ambiguous to a parser that picks one.
    let response = create()
        .header("authorization", &valid)
        .header("authorization", &valid)
        .send()
        .await
        .unwrap();
    expect_error(response, 401, "unauthorized").await;
    // A header that is not ASCII gets the documented 401, not a 422.
    let mut not_ascii = valid.clone().into_bytes();
    not_ascii.push(0xE9);
    let response = create()
        .header(
            "authorization",
            reqwest::header::HeaderValue::from_bytes(&not_ascii).unwrap(),
        )
        .send()
        .await
        .unwrap();
    let body = expect_error(response, 401, "unauthorized").await;
    assert_eq!(body["message"], "Invalid or missing API key");
    assert!(token_names(&app).await.is_empty(), "nothing was written");
}

async fn duplicate_json_keys_are_refused(app: TestApp) {
    for body in [
        r#"{"name": "first", "name": "second", "scopes": ["tokens:read"]}"#,
        r#"{"name": "x", "scopes": ["tokens:read"], "expires_at": null, "expires_at": "2030-01-01T00:00:00Z"}"#,
    ] {
        let response = app
            .authed(Method::POST, "/v1/tokens", &app.api_key)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 400, "invalid_json").await;
        assert!(
            error["message"].as_str().unwrap().contains("duplicate key"),
            "{error}"
        );
    }
    // A change is refused the same way, and leaves the object as it was.
    let (hook, _) = app
        .webhook("https://hooks.example.com/tooken", &["token.created"])
        .await;
    let response = app
        .authed(Method::PATCH, &format!("/v1/webhooks/{hook}"), &app.api_key)
        .header("content-type", "application/json")
        .body(r#"{"enabled": false, "enabled": true}"#)
        .send()
        .await
        .unwrap();
    expect_error(response, 400, "invalid_json").await;
    let after = app.get_json(&format!("/v1/webhooks/{hook}")).await;
    assert_eq!(after["enabled"], true);
    assert!(token_names(&app).await.is_empty(), "nothing was written");
}

// --- 4. RFC 3339 offsets ---

async fn expiry_offsets_beyond_rfc_3339_are_refused(app: TestApp) {
    for expires_at in [
        "2027-01-01T00:00:00+25:00",
        "2027-01-01T00:00:00-24:00",
        "2027-01-01T00:00:00+02",
        "2027-01-01T00:00:00Z[Europe/Berlin]",
    ] {
        let response = app
            .authed(Method::POST, "/v1/tokens", &app.api_key)
            .json(&json!({"name": "x", "scopes": ["tokens:read"], "expires_at": expires_at}))
            .send()
            .await
            .unwrap();
        let error = expect_error(response, 422, "validation_failed").await;
        assert_eq!(error["field"], "expires_at", "{expires_at}: {error}");
        assert!(
            error["message"].as_str().unwrap().contains("RFC 3339"),
            "{error}"
        );
    }
    assert!(token_names(&app).await.is_empty(), "nothing was written");
    // The largest offset RFC 3339 allows is taken, and converted exactly.
    let response = app
        .authed(Method::POST, "/v1/tokens", &app.api_key)
        .json(&json!({"name": "east", "scopes": ["tokens:read"], "expires_at": "2030-01-02T00:00:00+23:59"}))
        .send()
        .await
        .unwrap();
    let created = expect_json(response, 201).await;
    assert_eq!(created["expires_at"], "2030-01-01T00:01:00Z");
    // A rotation with such an expiry is refused too, and the token stays as it was.
    let id = created["id"].as_str().unwrap();
    let response = app
        .authed(
            Method::POST,
            &format!("/v1/tokens/{id}/rotate"),
            &app.api_key,
        )
        .json(&json!({"expires_at": "2031-01-01T00:00:00+25:00"}))
        .send()
        .await
        .unwrap();
    let error = expect_error(response, 422, "validation_failed").await;
    assert_eq!(error["field"], "expires_at", "{error}");
    let token = app.get_json(&format!("/v1/tokens/{id}")).await;
    assert_eq!(token["rotation"], 0);
    assert_eq!(token["expires_at"], "2030-01-01T00:01:00Z");
}

// --- 5. 405 with Allow ---

async fn method_not_allowed_says_what_is(app: TestApp) {
    for (method, path, allow) in [
        (Method::PUT, "/v1/tokens", "GET, POST"),
        (Method::DELETE, "/v1/tokens/x/rotate", "POST"),
        (
            Method::PATCH,
            "/v1/workspaces/production/tokens",
            "GET, POST",
        ),
        (Method::POST, "/v1/webhooks/x", "GET, PATCH, DELETE"),
        (Method::DELETE, "/healthz", "GET"),
    ] {
        let response = app
            .authed(method.clone(), path, &app.api_key)
            .send()
            .await
            .unwrap();
        let allowed = response
            .headers()
            .get("allow")
            .map(|value| value.to_str().unwrap().to_owned());
        assert_eq!(allowed.as_deref(), Some(allow), "{method} {path}");
        expect_error(response, 405, "method_not_allowed").await;
    }
    assert!(token_names(&app).await.is_empty(), "nothing was written");
}

async fn a_nul_character_in_a_query_is_refused_by_name(app: TestApp) {
    // Found by schemathesis: PostgreSQL cannot compare text holding NUL, so this was a 500.
    for query in ["type=token.created%00", "actor=a%00b&limit=5"] {
        let response = app
            .authed(
                Method::GET,
                &format!("/v1/audit-logs?{query}"),
                &app.api_key,
            )
            .send()
            .await
            .unwrap();
        let body = expect_error(response, 422, "validation_failed").await;
        let field = query.split('=').next().unwrap();
        assert_eq!(body["field"], field, "{body}");
    }
}
