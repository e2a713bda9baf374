//! Every failure a `/v1` request can meet, mapped to its status code and body in one place.

use crate::store::StoreError;
use tooken_contract::ErrorBody;
use tooken_contract::error::UNAUTHORIZED_MESSAGE;
use warp::Reply;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{UNAUTHORIZED_MESSAGE}")]
    Unauthorized,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("this change needs the X-CSRF-Token header of the signed-in dashboard session")]
    CsrfRejected,
    /// Also used for other workspaces' objects, so their existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("no route matches this path")]
    RouteNotFound,
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{message}")]
    Validation { field: String, message: String },
    /// A malformed OAuth request (RFC 6749 §5.2 `invalid_request`).
    #[error("{message}")]
    InvalidRequest { field: String, message: String },
    #[error("request body is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("request body exceeds the limit of {0} bytes")]
    PayloadTooLarge(u64),
    #[error("the request body did not arrive within {} ms", .0.as_millis())]
    RequestTimeout(std::time::Duration),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{message}")]
    RateLimited {
        message: String,
        retry_after_secs: u64,
    },
    #[error("the database is unavailable; retry shortly")]
    Unavailable,
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::CsrfRejected => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::RouteNotFound => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Validation { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::InvalidJson(_) | ApiError::InvalidRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::RequestTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::CsrfRejected => "csrf_failed",
            ApiError::NotFound(_) => "not_found",
            ApiError::RouteNotFound => "route_not_found",
            ApiError::MethodNotAllowed => "method_not_allowed",
            ApiError::Validation { .. } => "validation_failed",
            ApiError::InvalidJson(_) => "invalid_json",
            ApiError::InvalidRequest { .. } => "invalid_request",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::RequestTimeout(_) => "request_timeout",
            ApiError::Conflict { code, .. } => code,
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Unavailable => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn into_response(self) -> Response {
        self.to_response()
    }

    pub fn to_response(&self) -> Response {
        if let ApiError::Internal(err) = self {
            tracing::error!(error = format!("{err:#}"), "request failed");
        }
        let body = ErrorBody {
            error: self.code().to_owned(),
            message: self.to_string(),
            field: match self {
                ApiError::Validation { field, .. } | ApiError::InvalidRequest { field, .. }
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
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::Unavailable => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            ApiError::RateLimited {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            _ => {}
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> ApiError {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            ApiError::Unavailable
        } else {
            ApiError::Internal(err.into())
        }
    }
}

impl warp::reject::Reject for ApiError {}
