//! Why `tooken` failed, and the exit code each reason gives, for scripts to rely on:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | done; for `tokens verify`, the token works |
//! | 1 | `tokens verify`: the token does not work (the reason is on standard error) |
//! | 2 | usage: a flag or argument is wrong or missing, or no API key is configured |
//! | 3 | the API refused the credential: 401, or 403 (a missing scope or role) |
//! | 4 | not found (404) |
//! | 5 | the API refused the request otherwise: 409, 413, 422, 429 |
//! | 6 | the server could not be reached, or failed (5xx), or standard output failed |

use std::process::ExitCode;
use tooken_contract::ClientError;

#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("no API key: set TOOKEN_API_KEY or pass --api-key")]
    NoApiKey,
    #[error("{0}")]
    Usage(&'static str),
    #[error("the token does not work: {0}")]
    NotValid(&'static str),
    /// The API's own message, as it sent it.
    #[error("{}", api_message(.0))]
    Client(#[from] ClientError),
    #[error("cannot write the output: {0}")]
    Output(std::io::Error),
}

fn api_message(err: &ClientError) -> String {
    match err {
        ClientError::Api { body, .. } => body.message.clone(),
        ClientError::Transport(err) => format!("cannot reach the Tooken API: {err}"),
    }
}

impl Failure {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Failure::NotValid(_) => 1,
            Failure::NoApiKey | Failure::Usage(_) => 2,
            Failure::Client(err) => match err.status().map(|status| status.as_u16()) {
                Some(401 | 403) => 3,
                Some(404) => 4,
                Some(400..=499) => 5,
                _ => 6,
            },
            Failure::Output(_) => 6,
        })
    }
}
