//! Runs the warp routes with a tracing span per request and graceful shutdown on SIGTERM.

use std::sync::atomic::{AtomicU64, Ordering};
use tokio::net::TcpListener;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::reply::Response;

/// Serves `routes` on `listener` until SIGTERM or Ctrl-C, letting requests in flight finish
/// (a webhook answered only after its restart must not be cut off by a rollout of the sidecar).
pub async fn serve(listener: TcpListener, routes: BoxedFilter<(Response,)>) {
    static NEXT_REQUEST: AtomicU64 = AtomicU64::new(1);
    let traced = routes.with(warp::trace(|info| {
        let request_id = info
            .request_headers()
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| NEXT_REQUEST.fetch_add(1, Ordering::Relaxed).to_string());
        tracing::info_span!("request", %request_id, method = %info.method(), path = %info.path())
    }));
    warp::serve(traced)
        .incoming(listener)
        .graceful(shutdown_signal())
        .run()
        .await;
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = terminate => {},
        _ = tokio::signal::ctrl_c() => {},
    }
    tracing::info!("shutting down");
}
