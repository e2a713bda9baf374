//! Reading a request body before the routes see it: at most `max_bytes`, within `timeout`.
//!
//! Every body is read to its end before any answer, a 401 or 429 included, so the connection
//! stays usable for the next request (keep-alive). When the body cannot be read to its end
//! (too large to drain, too slow, broken), the answer says `Connection: close`.

use crate::http::error::ApiError;
use bytes::{Buf, Bytes, BytesMut};
use http_body_util::BodyExt;
use std::time::Duration;
use warp::http::{HeaderValue, header, request};
use warp::reply::Response;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: u64,
    /// The whole body must arrive within this time of the request's headers.
    pub timeout: Duration,
}

/// Why a body was not read: the error to answer, and whether the connection must close.
#[derive(Debug)]
pub struct Refused {
    pub error: ApiError,
    pub close: bool,
}

impl Refused {
    pub fn into_response(self) -> Response {
        let mut response = self.error.into_response();
        if self.close {
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

/// The whole body of a request whose head is `parts`.
pub async fn read<B>(parts: &request::Parts, body: B, limits: BodyLimits) -> Result<Bytes, Refused>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limits.max_bytes) {
        // Refused before reading (and before `100 Continue`), so the body is never sent.
        return Err(Refused {
            error: ApiError::PayloadTooLarge(limits.max_bytes),
            close: true,
        });
    }
    match tokio::time::timeout(limits.timeout, collect_limited(body, limits.max_bytes)).await {
        Ok(result) => result,
        Err(_) => Err(Refused {
            error: ApiError::RequestTimeout(limits.timeout),
            close: true,
        }),
    }
}

async fn collect_limited<B>(body: B, limit: u64) -> Result<Bytes, Refused>
where
    B: http_body::Body,
    B::Error: std::fmt::Display,
{
    // Past the limit, read (and drop) a little more so a client still uploading can read the
    // 413 on a connection that stays open; beyond that, stop reading and close.
    let drain_limit = limit.saturating_mul(4);
    let mut collected = BytesMut::new();
    let mut seen: u64 = 0;
    let mut body = std::pin::pin!(body);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| Refused {
            error: ApiError::InvalidJson(format!("reading the body failed: {err}")),
            close: true,
        })?;
        let Ok(mut chunk) = frame.into_data() else {
            continue; // trailers
        };
        seen += chunk.remaining() as u64;
        if seen > drain_limit {
            return Err(Refused {
                error: ApiError::PayloadTooLarge(limit),
                close: true,
            });
        }
        if seen <= limit {
            while chunk.has_remaining() {
                let part = chunk.chunk();
                let n = part.len();
                collected.extend_from_slice(part);
                chunk.advance(n);
            }
        }
    }
    if seen > limit {
        return Err(Refused {
            error: ApiError::PayloadTooLarge(limit),
            close: false,
        });
    }
    Ok(collected.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{Full, StreamBody};

    fn head(length: Option<u64>) -> request::Parts {
        let mut builder = warp::http::Request::builder().method("POST").uri("/");
        if let Some(length) = length {
            builder = builder.header("content-length", length);
        }
        builder.body(()).unwrap().into_parts().0
    }

    const LIMITS: BodyLimits = BodyLimits {
        max_bytes: 10,
        timeout: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn bodies_within_the_limit_are_read_whole() {
        let body = read(&head(Some(5)), Full::new(Bytes::from("hello")), LIMITS)
            .await
            .unwrap();
        assert_eq!(body, "hello");
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread_and_closes() {
        let refused = read(&head(Some(11)), Full::new(Bytes::new()), LIMITS)
            .await
            .unwrap_err();
        assert!(matches!(refused.error, ApiError::PayloadTooLarge(10)));
        assert!(refused.close);
    }

    #[tokio::test]
    async fn undeclared_bodies_are_drained_a_little_past_the_limit_then_cut_off() {
        let chunks = |n: usize| {
            StreamBody::new(futures::stream::iter((0..n).map(|_| {
                Ok::<_, std::convert::Infallible>(http_body::Frame::data(Bytes::from("12345")))
            })))
        };
        let drained = read(&head(None), chunks(3), LIMITS).await.unwrap_err();
        assert!(matches!(drained.error, ApiError::PayloadTooLarge(10)));
        assert!(
            !drained.close,
            "15 bytes were drained; the connection can stay"
        );
        let cut = read(&head(None), chunks(9), LIMITS).await.unwrap_err();
        assert!(cut.close, "45 bytes is past the drain limit");
    }

    #[tokio::test]
    async fn a_body_that_does_not_arrive_in_time_is_refused_and_closes() {
        let never = StreamBody::new(futures::stream::pending::<
            Result<http_body::Frame<Bytes>, std::convert::Infallible>,
        >());
        let limits = BodyLimits {
            timeout: Duration::from_millis(20),
            ..LIMITS
        };
        let refused = read(&head(Some(5)), never, limits).await.unwrap_err();
        assert!(matches!(refused.error, ApiError::RequestTimeout(_)));
        assert!(refused.close);
    }
}
