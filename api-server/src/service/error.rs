//! What an operation can refuse or fail with, in the domain's terms. The HTTP layer maps each
//! to a status code in one place (`http::error`).

use crate::store::StoreError;
use tooken_contract::error::UNAUTHORIZED_MESSAGE;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{UNAUTHORIZED_MESSAGE}")]
    Unauthorized,
    #[error("email or password is incorrect")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    /// Also used for other workspaces' objects, so their existence never leaks.
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Validation { field: String, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Too many requests or attempts; retry after the given time.
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

impl Error {
    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Error {
        Error::Validation {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Error {
        Error::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn internal(err: impl Into<anyhow::Error>) -> Error {
        Error::Internal(err.into())
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Error {
        if err.is_unavailable() {
            tracing::warn!(error = %err, "database unavailable");
            Error::Unavailable
        } else {
            Error::Internal(err.into())
        }
    }
}
