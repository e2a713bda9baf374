//! `Idempotency-Key` on POSTs, as the HTTP layer reads it. The unit of work stores the first
//! answer with its secret removed, in the change's transaction; a retry gets that answer
//! (status and body, with `"secret": null` / `"key": null`) and `Idempotent-Replayed: true`.

use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::http::extract::raw_body;
use crate::service::unit_of_work::{Retry, UnitOfWork};
use crate::store::Store;
use bytes::Bytes;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::path::FullPath;

pub const HEADER: &str = "idempotency-key";

/// The `Idempotency-Key` header as the OpenAPI document declares it (`params(KeyHeader)`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct KeyHeader {
    /// Makes the request safe to retry: 1–255 visible ASCII characters, kept for 24 hours per
    /// credential. A retry with the same key and request gets the first response again (with
    /// its secret `null`); the same key with a different request gets 422.
    #[param(
        rename = "Idempotency-Key",
        min_length = 1,
        max_length = 255,
        pattern = "^[!-~]+$"
    )]
    pub idempotency_key: Option<String>,
}

/// The request's `Idempotency-Key`: 1–255 visible ASCII characters.
pub fn key() -> BoxedFilter<(Option<String>,)> {
    warp::header::optional::<String>(HEADER)
        .and_then(|key: Option<String>| async move {
            match key {
                Some(key)
                    if key.is_empty()
                        || key.len() > 255
                        || !key.bytes().all(|b| b.is_ascii_graphic()) =>
                {
                    Err(warp::reject::custom(ApiError::validation(
                        "Idempotency-Key",
                        "Idempotency-Key must be 1 to 255 visible ASCII characters",
                    )))
                }
                other => Ok(other),
            }
        })
        .boxed()
}

/// A POST that may carry an `Idempotency-Key`: the key, its path and its body.
pub struct Retryable {
    pub key: Option<String>,
    pub path: FullPath,
    pub body: Bytes,
}

/// The key, path and body of a POST.
pub fn retryable() -> BoxedFilter<(Retryable,)> {
    key()
        .and(warp::path::full())
        .and(raw_body())
        .map(|key, path, body| Retryable { key, path, body })
        .boxed()
}

impl Retryable {
    /// The request's unit of work by `principal`, whose first answer goes out with `status`.
    pub fn unit_of_work<'a>(
        &self,
        store: &'a Store,
        principal: &Principal,
        status: StatusCode,
    ) -> UnitOfWork<'a> {
        let retry = self.key.clone().map(|key| {
            Retry::new(
                principal,
                key,
                ("POST", self.path.as_str(), &self.body),
                status.as_u16(),
            )
        });
        UnitOfWork::by(store, principal, retry)
    }
}
