//! What the operator needs from the Tooken API, as a trait so reconcile can be tested against a
//! fake that fails at any step. The typed client of `tooken-contract` implements it.

use crate::metrics::{Metrics, OperationLabels};
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;
use tooken_contract::tokens::{
    CreateTokenRequest, IssuedToken, ListTokensParams, RotateTokenRequest, RotatedToken, Token,
    TokenStatus,
};
use tooken_contract::{Client, ClientError};

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiFailure {
    /// Network error, timeout, 5xx or 429: worth retrying.
    #[error("the Tooken API is unavailable: {0}")]
    Unavailable(String),
    /// The API refused the request (4xx): retrying the same request will not help.
    #[error("the Tooken API refused the request ({status}): {message}")]
    Refused { status: u16, message: String },
    /// The `Idempotency-Key` was already used with a different body (422 on that header).
    #[error("the Tooken API refused the Idempotency-Key: {0}")]
    KeyReused(String),
}

/// The header (and the `field` of the API's refusal) carrying the idempotency key.
const IDEMPOTENCY_KEY: &str = "Idempotency-Key";

pub trait TookenApi: Send + Sync {
    /// Creates a token; a repeat with the same key returns the same token without its secret.
    fn create_token(
        &self,
        request: &CreateTokenRequest,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<IssuedToken, ApiFailure>> + Send;
    /// `None` when the token does not exist.
    fn get_token(&self, id: &str)
    -> impl Future<Output = Result<Option<Token>, ApiFailure>> + Send;
    /// Rotates; a repeat with the same key returns the same result without the secret.
    fn rotate_token(
        &self,
        id: &str,
        request: &RotateTokenRequest,
        idempotency_key: &str,
    ) -> impl Future<Output = Result<RotatedToken, ApiFailure>> + Send;
    /// Revokes; a token that does not exist counts as revoked.
    fn revoke_token(&self, id: &str) -> impl Future<Output = Result<(), ApiFailure>> + Send;
    /// The active tokens named `name` (rarely needed: only to recover a refused key).
    fn find_tokens(
        &self,
        name: &str,
    ) -> impl Future<Output = Result<Vec<Token>, ApiFailure>> + Send;
}

fn failure(err: ClientError) -> ApiFailure {
    if let ClientError::Api { status, body } = &err
        && status.as_u16() == 422
        && body.field.as_deref() == Some(IDEMPOTENCY_KEY)
    {
        return ApiFailure::KeyReused(body.message.clone());
    }
    match err.status().map(|s| s.as_u16()) {
        Some(status) if (400..500).contains(&status) && status != 429 => ApiFailure::Refused {
            status,
            message: err.to_string(),
        },
        _ => ApiFailure::Unavailable(err.to_string()),
    }
}

impl TookenApi for Client {
    async fn create_token(
        &self,
        request: &CreateTokenRequest,
        key: &str,
    ) -> Result<IssuedToken, ApiFailure> {
        Client::create_token(self, request, Some(key))
            .await
            .map_err(failure)
    }

    async fn get_token(&self, id: &str) -> Result<Option<Token>, ApiFailure> {
        match Client::get_token(self, id).await {
            Ok(token) => Ok(Some(token)),
            Err(err) if err.status().map(|s| s.as_u16()) == Some(404) => Ok(None),
            Err(err) => Err(failure(err)),
        }
    }

    async fn rotate_token(
        &self,
        id: &str,
        request: &RotateTokenRequest,
        key: &str,
    ) -> Result<RotatedToken, ApiFailure> {
        Client::rotate_token(self, id, request, Some(key))
            .await
            .map_err(failure)
    }

    async fn revoke_token(&self, id: &str) -> Result<(), ApiFailure> {
        match Client::revoke_token(self, id).await {
            Ok(_) => Ok(()),
            Err(err) if err.status().map(|s| s.as_u16()) == Some(404) => Ok(()),
            Err(err) => Err(failure(err)),
        }
    }

    async fn find_tokens(&self, name: &str) -> Result<Vec<Token>, ApiFailure> {
        let mut found = Vec::new();
        let mut params = ListTokensParams {
            status: Some(TokenStatus::Active),
            limit: Some(200),
            cursor: None,
        };
        loop {
            let page = Client::list_tokens(self, &params).await.map_err(failure)?;
            found.extend(page.data.into_iter().filter(|t| t.name == name));
            match page.next_cursor {
                Some(cursor) => params.cursor = Some(cursor),
                None => return Ok(found),
            }
        }
    }
}

/// The typed client, with each call counted and timed.
pub struct MeteredApi {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    /// Rotations made here, so the change feed does not take them for changes made outside.
    pub own: Arc<crate::change_feed::OwnRotations>,
}

impl MeteredApi {
    async fn measure<T>(&self, operation: &str, call: impl Future<Output = T>) -> T {
        self.metrics
            .api_requests
            .get_or_create(&OperationLabels {
                operation: operation.into(),
            })
            .inc();
        let started = Instant::now();
        let result = call.await;
        self.metrics
            .api_request_duration
            .observe(started.elapsed().as_secs_f64());
        result
    }
}

impl TookenApi for MeteredApi {
    async fn create_token(
        &self,
        request: &CreateTokenRequest,
        key: &str,
    ) -> Result<IssuedToken, ApiFailure> {
        self.measure(
            "create_token",
            TookenApi::create_token(&self.client, request, key),
        )
        .await
    }

    async fn get_token(&self, id: &str) -> Result<Option<Token>, ApiFailure> {
        self.measure("get_token", TookenApi::get_token(&self.client, id))
            .await
    }

    async fn rotate_token(
        &self,
        id: &str,
        request: &RotateTokenRequest,
        key: &str,
    ) -> Result<RotatedToken, ApiFailure> {
        let rotated = self
            .measure(
                "rotate_token",
                TookenApi::rotate_token(&self.client, id, request, key),
            )
            .await?;
        self.own.made(id, rotated.token.rotation);
        Ok(rotated)
    }

    async fn revoke_token(&self, id: &str) -> Result<(), ApiFailure> {
        self.measure("revoke_token", TookenApi::revoke_token(&self.client, id))
            .await
    }

    async fn find_tokens(&self, name: &str) -> Result<Vec<Token>, ApiFailure> {
        self.measure("find_tokens", TookenApi::find_tokens(&self.client, name))
            .await
    }
}
