//! Operational endpoints: `/healthz`, `/readyz`, `/metrics` and `/v1/openapi.json`.

use super::json_response;
use crate::app::AppState;
use crate::http::openapi::ApiDoc;
use std::time::Duration;
use utoipa::OpenApi;
use warp::Filter;
use warp::Reply;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| json_response(StatusCode::OK, &serde_json::json!({"status": "ok"})))
        .boxed();
    let ready_state = state.clone();
    let readyz = warp::path!("readyz")
        .and(warp::get())
        .then(move || readyz(ready_state.clone()))
        .boxed();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .map(move || {
            warp::reply::with_header(
                state.metrics.render(),
                "content-type",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )
            .into_response()
        })
        .boxed();
    // Serialised once: warp's `or` clones filters per request, so nothing large is captured.
    let document = bytes::Bytes::from(
        ApiDoc::openapi()
            .to_json()
            .expect("the document serialises"),
    );
    let openapi = warp::path!("v1" / "openapi.json")
        .and(warp::get())
        .map(move || {
            warp::http::Response::builder()
                .header("content-type", "application/json")
                .body(document.clone().into())
                .expect("a static response is valid")
        })
        .boxed();
    healthz
        .or(readyz)
        .unify()
        .or(metrics)
        .unify()
        .or(openapi)
        .unify()
        .boxed()
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
