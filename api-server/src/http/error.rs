//! Every failure a request can meet, mapped to its status code and body in one place: the
//! domain's `service::Error`, and what only HTTP can get wrong (body, route, method, rate).

use crate::service::Error;
use crate::store::StoreError;
use tooken_contract::ErrorBody;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// What an operation refused or failed with.
    #[error(transparent)]
    Service(#[from] Error),
    #[error("this change needs the X-CSRF-Token header of the signed-in dashboard session")]
    CsrfRejected,
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    /// A malformed OAuth request (RFC 6749 §5.2 `invalid_request`).
    #[error("{message}")]
    InvalidRequest { field: String, message: String },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(u64),
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    RequestTimeout(std::time::Duration),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Service(Error::validation(field, message))
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Service(err) => match err {
                Error::Unauthorized | Error::InvalidCredentials => StatusCode::UNAUTHORIZED,
                Error::Forbidden(_) => StatusCode::FORBIDDEN,
                Error::NotFound(_) => StatusCode::NOT_FOUND,
                Error::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
                Error::Conflict { .. } => StatusCode::CONFLICT,
                Error::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
                Error::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
                Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::CsrfRejected => StatusCode::FORBIDDEN,
            ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::InvalidJson(_) | ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Service(err) => match err {
                Error::Unauthorized => "unauthorized",
                Error::InvalidCredentials => "invalid_credentials",
                Error::Forbidden(_) => "forbidden",
                Error::NotFound(_) => "not_found",
                Error::Validation { .. } => "validation_failed",
                Error::Conflict { code, .. } => code,
                Error::RateLimited { .. } => "rate_limited",
                Error::Unavailable => "unavailable",
                Error::Internal(_) => "internal",
            },
            ApiError::CsrfRejected => "csrf_failed",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
        }
    }

    pub fn into_response(self) -> Response {
        self.to_response()
    }

    pub fn to_response(&self) -> Response {
        if let ApiError::Service(Error::Internal(err)) = self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
            field: match self {
                ApiError::Service(Error::Validation { field, .. })
                | ApiError::InvalidRequest { field, .. }
                    if !field.is_empty() =>
                {
                    Some(field.clone())
                }
                _ => None,
            },
        };
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status()).into_response();
        let headers = response.headers_mut();
        match self {
            ApiError::Service(Error::Unauthorized) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Service(Error::Unavailable) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::Service(Error::RateLimited {
                retry_after_secs, ..
            }) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        ApiError::Service(err.into())
    }
}

impl warp::reject::Reject for ApiError {}
