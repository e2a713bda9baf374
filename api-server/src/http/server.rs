//! The HTTP server loop around the warp routes: read timeouts, whole bodies read before any
//! answer, request ids, a tracing span per request, request metrics, the `Allow` header of a
//! 405, and graceful shutdown.

use crate::http::request_body::{self, BodyLimits};
use crate::http::route_table::RouteTable;
use crate::metrics::{Metrics, RequestLabels, RouteLabels};
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tower_service::Service;
use tracing::Instrument;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, Method, Request, StatusCode, header};
use warp::reply::Response;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// The peer address of the connection, as a request extension (`warp::ext::optional`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// How long a client may take to send a request.
#[derive(Debug, Clone, Copy)]
pub struct ReadLimits {
    /// From the connection's start or the previous response to the end of the request's
    /// headers; an idle keep-alive connection is closed after it too.
    pub header_timeout: Duration,
    pub body: BodyLimits,
}

/// Serves `filter` on `listener` until `shutdown` resolves, then lets requests in flight finish.
///
/// HTTP/1.1 only: hyper's HTTP/2 has no header read timeout, so a client could hold an
/// HTTP/2 connection open with a request that never completes.
pub async fn serve(
    listener: TcpListener,
    filter: BoxedFilter<(Response,)>,
    metrics: Arc<Metrics>,
    routes: Arc<RouteTable>,
    limits: ReadLimits,
    shutdown: impl Future<Output = ()>,
) {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
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
            handle(
                service.clone(),
                request,
                metrics.clone(),
                routes.clone(),
                limits.body,
            )
        });
        let connection = builder.serve_connection(TokioIo::new(stream), handler);
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
    body_limits: BodyLimits,
) -> Result<Response, Infallible>
where
    S: Service<Request<Full<Bytes>>, Response = Response, Error = Infallible>,
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
    let method = method_label(request.method());
    let route = routes.template_of(request.uri().path());
    let span = tracing::info_span!("request", request_id = %request_id, %method, %route);
    let (parts, body) = request.into_parts();
    let mut response = match request_body::read(&parts, body, body_limits).await {
        Ok(body) => service
            .call(Request::from_parts(parts, Full::new(body)))
            .instrument(span.clone())
            .await
            .expect("the warp service is infallible"),
        Err(refused) => refused.into_response(),
    };
    response
        .headers_mut()
        .insert(REQUEST_ID_HEADER, header_value);
    if response.status() == StatusCode::METHOD_NOT_ALLOWED {
        // A template is also a path of its own route.
        if let Some(allow) = routes.allow(&route) {
            response.headers_mut().insert(header::ALLOW, allow.clone());
        }
    }
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

/// A method as a metric label; the usual ones without allocating.
fn method_label(method: &Method) -> Cow<'static, str> {
    Cow::Borrowed(match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => return Cow::Owned(method.as_str().to_owned()),
    })
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
