//! The HTTP server loop around the warp routes: request ids, a tracing span per request,
//! request metrics, and graceful shutdown.

use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use crate::route_table::RouteTable;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Request};
use warp::reply::Response;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The peer address of the connection, as a request extension (`warp::ext::optional`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Serves `filter` on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    metrics: Arc<Metrics>,
    routes: Arc<RouteTable>,
    shutdown: impl Future<Output = ()>,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    tracing::warn!(error = %err, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = warp::service(filter.clone());
        let metrics = metrics.clone();
        let routes = routes.clone();
        let handler = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            request.extensions_mut().insert(ClientAddr(peer));
            handle(service.clone(), request, metrics.clone(), routes.clone())
        });
        let builder = auto::Builder::new(TokioExecutor::new());
        let connection = builder
            .serve_connection(TokioIo::new(stream), handler)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "connection closed with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

async fn handle<S>(
    mut service: S,
    mut request: Request<Incoming>,
    metrics: Arc<Metrics>,
    routes: Arc<RouteTable>,
) -> Result<Response, Infallible>
where
    S: Service<Request<Incoming>, Response = Response, Error = Infallible>,
{
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let header_value = HeaderValue::from_str(&request_id).expect("request ids are ASCII");
    request
        .headers_mut()
        .insert(REQUEST_ID_HEADER, header_value.clone());
    let method = request.method().as_str().to_owned();
    let route = routes.template_of(request.uri().path());
    let span = tracing::info_span!("request", request_id = %request_id, %method, %route);
    let mut response = service
        .call(request)
        .instrument(span.clone())
        .await
        .expect("the warp service is infallible");
    response
        .headers_mut()
        .insert(REQUEST_ID_HEADER, header_value);
    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    span.in_scope(|| {
        tracing::info!(
            status,
            latency_us = elapsed.as_micros() as u64,
            "request completed"
        )
    });
    metrics
        .requests
        .get_or_create(&RequestLabels {
            method: method.clone(),
            route: route.clone(),
            status,
        })
        .inc();
    metrics
        .request_duration
        .get_or_create(&RouteLabels { method, route })
        .observe(elapsed.as_secs_f64());
    Ok(response)
}

/// A caller's request id is kept if it is short and plain, so it is safe to log and echo.
fn is_acceptable_request_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_from_callers_are_checked() {
        assert!(is_acceptable_request_id("req-123_abc.1:2"));
        assert!(!is_acceptable_request_id(""));
        assert!(!is_acceptable_request_id("a b"));
        assert!(!is_acceptable_request_id("x\ny"));
        assert!(!is_acceptable_request_id(&"a".repeat(65)));
    }
}
