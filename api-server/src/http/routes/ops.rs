//! Operational endpoints: `/healthz`, `/readyz`, `/metrics` and `/v1/openapi.json`.

use crate::http::endpoint::Endpoint;
use crate::http::reply::json_response;
use crate::http::state::AppState;
use std::time::Duration;
use warp::Filter;
use warp::Reply;
use warp::http::{Method, StatusCode};
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let get = || Some(vec![Method::GET]);
    let ready_state = state.clone();
    let metrics = state.metrics.clone();
    vec![
        Endpoint::page("/healthz", get(), |at| {
            at.plain()
                .map(|| json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})))
                .boxed()
        }),
        Endpoint::page("/readyz", get(), |at| {
            at.plain().then(move || readyz(ready_state.clone())).boxed()
        }),
        Endpoint::page("/metrics", get(), |at| {
            at.plain()
                .map(move || {
                    warp::reply::with_header(
                        metrics.render(),
                        "content-type",
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )
                    .into_response()
                })
                .boxed()
        }),
    ]
}

/// `/v1/openapi.json`, serialised once: warp's `or` clones filters per request, so nothing
/// large is captured.
pub fn document(document: &utoipa::openapi::OpenApi) -> Endpoint {
    let body = bytes::Bytes::from(document.to_json().expect("the document serialises"));
    Endpoint::page("/v1/openapi.json", Some(vec![Method::GET]), |at| {
        at.plain()
            .map(move || {
                warp::http::Response::builder()
                    .header("content-type", "application/json")
                    .body(body.clone().into())
                    .expect("a static response is valid")
            })
            .boxed()
    })
}

/// Ready when the database answers within two seconds.
pub async fn readyz(state: AppState) -> Response {
    match tokio::time::timeout(Duration::from_secs(2), state.store.ping()).await {
        Ok(Ok(())) => json_response(StatusCode::OK, &serde_json::json!({"status": "ready"})),
        Ok(Err(err)) => {
            tracing::warn!(error = %err, "not ready: database error");
            not_ready("database error")
        }
        Err(_) => not_ready("database did not answer in time"),
    }
}

fn not_ready(reason: &str) -> Response {
    json_response(
        StatusCode::SERVICE_UNAVAILABLE,
        &serde_json::json!({"status": "unavailable", "reason": reason}),
    )
}
