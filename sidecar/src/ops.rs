//! `/healthz`, `/readyz` and `/metrics`.

use crate::metrics::Metrics;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

/// Whether the sidecar can do its job: the receiver once it has reached the Kubernetes API,
/// volume mode once the token file exists (so a startup probe can hold the app back until then).
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

pub fn routes(metrics: Arc<Metrics>, readiness: Readiness) -> BoxedFilter<(Response,)> {
    let healthz = warp::path!("healthz")
        .and(warp::get())
        .map(|| "ok".into_response());
    let readyz = warp::path!("readyz").and(warp::get()).map(move || {
        if readiness.is_ready() {
            "ready".into_response()
        } else {
            warp::reply::with_status("not ready", StatusCode::SERVICE_UNAVAILABLE).into_response()
        }
    });
    let metrics = warp::path!("metrics").and(warp::get()).map(move || {
        warp::reply::with_header(
            metrics.render(),
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )
        .into_response()
    });
    healthz.or(readyz).unify().or(metrics).unify().boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readyz_follows_readiness_and_metrics_are_rendered() {
        let metrics = Arc::new(Metrics::default());
        metrics.webhooks_received.inc();
        let readiness = Readiness::default();
        let routes = routes(metrics, readiness.clone());
        let get = |path: &'static str| warp::test::request().path(path).reply(&routes);
        assert_eq!(get("/healthz").await.status(), 200);
        assert_eq!(get("/readyz").await.status(), 503);
        readiness.set_ready();
        assert_eq!(get("/readyz").await.status(), 200);
        let body = get("/metrics").await.into_body();
        let text = String::from_utf8_lossy(&body);
        assert!(
            text.contains("tooken_sidecar_webhooks_received_total 1"),
            "{text}"
        );
    }
}
