//! Answers: a handler's result or the stored first answer of a retried request, and the JSON
//! error body of every rejection.

use crate::http::error::ApiError;
use crate::service::unit_of_work::Outcome;
use crate::store::idempotency::StoredResponse;
use std::convert::Infallible;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

/// The header that marks an answer as the stored first answer to a retried request.
pub const REPLAYED_HEADER: &str = "idempotent-replayed";

/// The response to a handler's result.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

pub fn no_content() -> Response {
    warp::http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Default::default())
        .expect("a static response is valid")
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

pub async fn recover(rejection: Rejection, body_limit: u64) -> Result<Response, Infallible> {
    if let Some(err) = rejection.find::<ApiError>() {
        return Ok(err.to_response());
    }
    let error = if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge(body_limit)
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some() {
        ApiError::validation("headers", "a request header has an invalid value")
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::validation("query", "the query string is invalid")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.is_not_found() {
        ApiError::RouteNotFound
    } else {
        ApiError::Service(crate::service::Error::internal(anyhow::anyhow!(
            "unhandled rejection: {rejection:?}"
        )))
    };
    Ok(error.into_response())
}

/// The answer of a unit of work: `answer` as JSON with `status` when it ran, or the stored
/// first answer when the request was a retry.
pub fn outcome<T: serde::Serialize>(
    outcome: Outcome<T>,
    status: StatusCode,
) -> Result<Response, ApiError> {
    match outcome {
        Outcome::Done(answer) => Ok(json_response(status, &answer)),
        Outcome::Replayed(stored) => replayed(stored),
    }
}

fn replayed(stored: StoredResponse) -> Result<Response, ApiError> {
    let status =
        StatusCode::from_u16(stored.status_code).map_err(crate::service::Error::internal)?;
    let mut response = warp::http::Response::new(stored.body.into());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    Ok(response)
}
