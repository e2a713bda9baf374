//! `/healthz`, `/readyz` and `/metrics` on `TOOKEN_OPERATOR_LISTEN`.

use crate::metrics::Metrics;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use warp::Filter;

/// Serves until the process ends; `/readyz` answers 200 once `ready` is set, 503 before. A
/// port that cannot be bound is logged, and the operator runs on without these endpoints.
pub async fn serve(addr: SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    let healthz = warp::path!("healthz").map(|| String::from("ok"));
    let readyz = warp::path!("readyz").map(move || {
        if ready.load(Ordering::SeqCst) {
            warp::reply::with_status(String::from("ready"), warp::http::StatusCode::OK)
        } else {
            warp::reply::with_status(
                String::from("starting"),
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    });
    let metrics = warp::path!("metrics").map(move || metrics.render());
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            warp::serve(healthz.or(readyz).or(metrics))
                .incoming(listener)
                .run()
                .await
        }
        Err(err) => tracing::error!(error = %err, %addr, "cannot serve health and metrics"),
    }
}
