//! `POST /webhooks/tooken`: a thin warp filter in front of `receive`.

use crate::Clock;
use crate::metrics::{Metrics, ReasonLabels};
use crate::webhook::error::WebhookError;
use crate::webhook::rotation::{Handled, Rotation, RotationHandler, TOKEN_ROTATED};
use crate::webhook::verify::Verifier;
use bytes::{Buf, Bytes, BytesMut};
use futures::{Stream, StreamExt};
use std::sync::Arc;
use std::time::Instant;
use tooken_contract::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER};
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

/// What a 503 asks the sender to wait before the next attempt.
const RETRY_AFTER_SECS: &str = "5";

pub struct WebhookState {
    pub verifier: Verifier,
    pub handler: Arc<dyn RotationHandler>,
    pub metrics: Arc<Metrics>,
    pub body_limit: u64,
    pub clock: Clock,
}

pub fn routes(state: Arc<WebhookState>) -> BoxedFilter<(Response,)> {
    warp::path!("webhooks" / "tooken")
        .and(warp::post())
        .and(warp::header::headers_cloned())
        .and(warp::body::stream())
        .then(move |headers: HeaderMap, body| receive(state.clone(), headers, body))
        .boxed()
}

async fn receive<S, B>(state: Arc<WebhookState>, headers: HeaderMap, body: S) -> Response
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let received = Instant::now();
    state.metrics.webhooks_received.inc();
    match verify_and_handle(&state, &headers, body, received).await {
        Ok(Outcome::Handled(handled)) => reply(StatusCode::OK, &handled),
        Ok(Outcome::Ignored(kind)) => reply(
            StatusCode::ACCEPTED,
            &serde_json::json!({ "message": format!("{kind} events need no action") }),
        ),
        Err(err) => {
            let reason = err.reason();
            state
                .metrics
                .webhooks_rejected
                .get_or_create(&ReasonLabels { reason })
                .inc();
            tracing::warn!(reason, error = %err, "webhook refused");
            let mut response = reply(
                err.status(),
                &serde_json::json!({ "error": reason, "message": err.to_string() }),
            );
            if err.status() == StatusCode::SERVICE_UNAVAILABLE {
                response
                    .headers_mut()
                    .insert("retry-after", HeaderValue::from_static(RETRY_AFTER_SECS));
            }
            response
        }
    }
}

enum Outcome {
    Handled(Handled),
    Ignored(String),
}

async fn verify_and_handle<S, B>(
    state: &WebhookState,
    headers: &HeaderMap,
    body: S,
    received: Instant,
) -> Result<Outcome, WebhookError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let declared = header(headers, "content-length").and_then(|len| len.parse::<u64>().ok());
    if declared.is_some_and(|len| len > state.body_limit) {
        return Err(WebhookError::TooLarge(state.body_limit));
    }
    let body = read_limited(body, state.body_limit).await?;
    let event = state.verifier.check(
        header(headers, SIGNATURE_HEADER),
        header(headers, EVENT_ID_HEADER),
        &body,
        (state.clock)(),
    )?;
    tracing::info!(event_id = %event.id, kind = %event.kind, "verified webhook");
    let outcome = if event.kind == TOKEN_ROTATED {
        let rotation = Rotation::from_event(&event, received).map_err(WebhookError::Malformed)?;
        Outcome::Handled(state.handler.handle(rotation).await?)
    } else {
        Outcome::Ignored(event.kind.clone())
    };
    state.verifier.remember(&event, (state.clock)());
    Ok(outcome)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The body, refused once it grows past `limit` (a chunked body declares no length).
async fn read_limited<S, B>(body: S, limit: u64) -> Result<Bytes, WebhookError>
where
    S: Stream<Item = Result<B, warp::Error>>,
    B: Buf,
{
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let mut chunk =
            chunk.map_err(|err| WebhookError::Malformed(format!("reading the body: {err}")))?;
        if (collected.len() + chunk.remaining()) as u64 > limit {
            return Err(WebhookError::TooLarge(limit));
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let len = part.len();
            collected.extend_from_slice(part);
            chunk.advance(len);
        }
    }
    Ok(collected.freeze())
}

fn reply(status: StatusCode, body: &impl serde::Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::rotation::HandleError;
    use futures::future::BoxFuture;
    use std::sync::Mutex;
    use std::time::Duration;
    use tooken_contract::signature::sign;

    const NOW: &str = "2026-11-26T06:02:14Z";

    fn now() -> jiff::Timestamp {
        NOW.parse().unwrap()
    }

    /// Records the rotations it is asked to handle and answers with `result`.
    struct Recorder {
        seen: Mutex<Vec<(String, u64)>>,
        result: Result<Handled, HandleError>,
    }

    impl RotationHandler for Recorder {
        fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>> {
            self.seen
                .lock()
                .unwrap()
                .push((rotation.token_id, rotation.rotation));
            let result = self.result.clone();
            Box::pin(async move { result })
        }
    }

    fn state(result: Result<Handled, HandleError>) -> (Arc<WebhookState>, Arc<Recorder>) {
        state_with(result, Duration::from_secs(300))
    }

    fn state_with(
        result: Result<Handled, HandleError>,
        tolerance: Duration,
    ) -> (Arc<WebhookState>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder {
            seen: Mutex::new(Vec::new()),
            result,
        });
        let state = Arc::new(WebhookState {
            verifier: Verifier::new(vec![b"old".to_vec(), b"new".to_vec()], tolerance, 100),
            handler: recorder.clone(),
            metrics: Arc::new(Metrics::default()),
            body_limit: 1024,
            clock: now,
        });
        (state, recorder)
    }

    fn ok() -> Result<Handled, HandleError> {
        Ok(Handled {
            message: "done".into(),
        })
    }

    fn event(id: &str, kind: &str, created_at: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "id": id, "type": kind, "created_at": created_at, "workspace": "w",
            "data": {"id": "tok1", "name": "backend", "rotation": 3, "scopes": []}
        }))
        .unwrap()
    }

    async fn post(state: &Arc<WebhookState>, body: &[u8], secret: &[u8]) -> (u16, String) {
        let response = warp::test::request()
            .method("POST")
            .path("/webhooks/tooken")
            .header(SIGNATURE_HEADER, sign(secret, body))
            .body(body)
            .reply(&routes(state.clone()))
            .await;
        (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }

    fn rejected(state: &WebhookState, reason: &'static str) -> u64 {
        state
            .metrics
            .webhooks_rejected
            .get_or_create(&ReasonLabels { reason })
            .get()
    }

    #[tokio::test]
    async fn a_signed_rotation_is_handled_once_and_its_repeat_acknowledged_without_action() {
        let (state, recorder) = state(ok());
        let body = event("e1", "token.rotated", NOW);
        assert_eq!(post(&state, &body, b"new").await.0, 200);
        assert_eq!(post(&state, &body, b"old").await.0, 200);
        assert_eq!(*recorder.seen.lock().unwrap(), vec![("tok1".to_owned(), 3)]);
        assert_eq!(rejected(&state, "replayed"), 1);
        assert_eq!(state.metrics.webhooks_received.get(), 2);
    }

    /// Tooken retries a delivery for up to about 56 hours. With the default tolerance, a
    /// rotation that reaches the sidecar a day late (say, after the sidecar was down) still
    /// restarts its workloads, and is still handled only once.
    #[tokio::test]
    async fn with_the_default_tolerance_a_rotation_delivered_a_day_late_is_handled_once() {
        let tolerance = crate::config::parse_duration(crate::config::DEFAULT_TOLERANCE).unwrap();
        let (state, recorder) = state_with(ok(), tolerance);
        let a_day_ago = (now() - jiff::SignedDuration::from_hours(24)).to_string();
        let body = event("late", "token.rotated", &a_day_ago);
        assert_eq!(post(&state, &body, b"new").await.0, 200);
        assert_eq!(post(&state, &body, b"new").await.0, 200);
        assert_eq!(*recorder.seen.lock().unwrap(), vec![("tok1".to_owned(), 3)]);
        let a_week_ago = (now() - jiff::SignedDuration::from_hours(7 * 24)).to_string();
        let (status, _) = post(
            &state,
            &event("ancient", "token.rotated", &a_week_ago),
            b"new",
        )
        .await;
        assert_eq!(
            status, 422,
            "beyond the tolerance, events are still refused as stale"
        );
    }

    #[tokio::test]
    async fn each_rejection_has_its_own_status_and_metric() {
        let (state, recorder) = state(ok());
        let fresh = event("e1", "token.rotated", NOW);
        assert_eq!(post(&state, &fresh, b"wrong").await.0, 401);
        assert_eq!(
            post(
                &state,
                &event("e2", "token.rotated", "2026-11-26T05:00:00Z"),
                b"new"
            )
            .await
            .0,
            422
        );
        assert_eq!(post(&state, b"[1,2]", b"new").await.0, 400);
        assert_eq!(post(&state, &vec![b' '; 2048], b"new").await.0, 413);
        for reason in ["bad_signature", "stale", "malformed", "too_large"] {
            assert_eq!(rejected(&state, reason), 1, "{reason}");
        }
        assert!(recorder.seen.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_failed_rotation_answers_5xx_and_its_retry_is_handled() {
        let (state, recorder) = state(Err(HandleError::SecretNotReady("rotation 2 < 3".into())));
        let body = event("e1", "token.rotated", NOW);
        let (status, text) = post(&state, &body, b"new").await;
        assert_eq!(status, 503);
        assert!(text.contains("secret_not_ready"), "{text}");
        let response = warp::test::request()
            .method("POST")
            .path("/webhooks/tooken")
            .header(SIGNATURE_HEADER, sign(b"new", &body))
            .body(&body)
            .reply(&routes(state.clone()))
            .await;
        assert_eq!(
            response.headers()["retry-after"],
            "5",
            "a 503 says when to retry"
        );
        // The id was not remembered, so Tooken's retry reaches the handler again.
        assert_eq!(post(&state, &body, b"new").await.0, 503);
        assert_eq!(recorder.seen.lock().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn other_event_types_are_acknowledged_without_action() {
        let (state, recorder) = state(ok());
        let (status, _) = post(&state, &event("e1", "token.revoked", NOW), b"new").await;
        assert_eq!(status, 202);
        assert!(recorder.seen.lock().unwrap().is_empty());
    }
}
