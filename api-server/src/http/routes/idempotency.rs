//! `Idempotency-Key` on POSTs. The first response is stored with its secret removed, in the
//! same transaction as the change; a replay returns that stored response (status and body,
//! with `"secret": null` / `"key": null`) and the header `Idempotent-Replayed: true`.

use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::store::idempotency::{self, Key, StoredResponse};
use crate::store::{WriteTx, now};
use jiff::SignedDuration;
use sha2::{Digest, Sha256};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

/// How long a key can be replayed.
pub const RETENTION: SignedDuration = SignedDuration::from_hours(24);
pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

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

/// Identifies one request: a key reused for a different request is refused.
pub fn fingerprint(method: &str, path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(path.as_bytes());
    hasher.update(b"\n");
    hasher.update(body);
    hex::encode(hasher.finalize())
}

pub struct Idempotency {
    key: Option<String>,
    fingerprint: String,
}

impl Idempotency {
    pub fn new(key: Option<String>, method: &str, path: &str, body: &[u8]) -> Idempotency {
        Idempotency {
            key,
            fingerprint: fingerprint(method, path, body),
        }
    }

    /// The stored response if this request was already answered.
    pub async fn replay(
        &self,
        tx: &mut WriteTx,
        principal: &Principal,
    ) -> Result<Option<Response>, ApiError> {
        let Some(key) = &self.key else {
            return Ok(None);
        };
        let key = store_key(principal, key);
        let Some(stored) = idempotency::find(tx, &key, now() - RETENTION).await? else {
            return Ok(None);
        };
        if stored.fingerprint != self.fingerprint {
            return Err(ApiError::validation(
                "Idempotency-Key",
                "this Idempotency-Key was already used with a different request",
            ));
        }
        let status = StatusCode::from_u16(stored.status_code)
            .map_err(|err| ApiError::Internal(err.into()))?;
        let mut response = warp::http::Response::new(stored.body.into());
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
        Ok(Some(response))
    }

    /// Stores the response (already stripped of secrets) in the caller's transaction.
    pub async fn remember<T: serde::Serialize>(
        &self,
        tx: &mut WriteTx,
        principal: &Principal,
        status: StatusCode,
        redacted: &T,
    ) -> Result<(), ApiError> {
        let Some(key) = &self.key else { return Ok(()) };
        let now = now();
        let stored = StoredResponse {
            fingerprint: self.fingerprint.clone(),
            status_code: status.as_u16(),
            body: serde_json::to_string(redacted).map_err(|err| ApiError::Internal(err.into()))?,
        };
        idempotency::insert(
            tx,
            &store_key(principal, key),
            &stored,
            now,
            now - RETENTION,
        )
        .await
        .map_err(|err| {
            if err.is_unique_violation() {
                ApiError::conflict(
                    "idempotency_conflict",
                    "a request with this Idempotency-Key is in progress; retry it shortly",
                )
            } else {
                err.into()
            }
        })
    }
}

fn store_key<'a>(principal: &'a Principal, key: &'a str) -> Key<'a> {
    Key {
        workspace_id: &principal.workspace_id,
        principal_id: principal.credential_id(),
        key,
    }
}
