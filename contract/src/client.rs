//! A typed HTTP client for the Tooken REST API, used by the operator, the CLI and tests; only
//! with the `client` feature, which brings in reqwest.

use crate::api_keys::{ApiKey, ApiKeyList, CreateApiKeyRequest, IssuedApiKey};
use crate::audit::{AuditEventList, ExportAuditParams, ListAuditParams};
use crate::error::ErrorBody;
use crate::tokens::{
    CreateTokenRequest, IssuedToken, ListTokensParams, RotateTokenRequest, RotatedToken, Token,
    TokenList, VerifyTokenRequest, VerifyTokenResponse,
};
use crate::webhooks::{CreateWebhookRequest, Webhook, WebhookList, WebhookWithSecret};
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{status}: {} ({})", body.message, body.error)]
    Api { status: StatusCode, body: ErrorBody },
    /// The server could not be reached, or its answer was not what the contract says.
    #[error("request to the Tooken API failed: {0}")]
    Transport(#[from] reqwest::Error),
}

impl ClientError {
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            ClientError::Transport(err) => err.status(),
        }
    }
}

#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    credential: String,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `base_url` is the server root, e.g. `http://localhost:8080`; `credential` an API key or token.
    pub fn new(http: reqwest::Client, base_url: &str, credential: &str) -> Client {
        Client {
            http,
            base_url: base_url.trim_end_matches('/').to_owned(),
            credential: credential.to_owned(),
        }
    }

    pub async fn create_token(
        &self,
        request: &CreateTokenRequest,
        idempotency_key: Option<&str>,
    ) -> Result<IssuedToken, ClientError> {
        let mut builder = self.request(Method::POST, "/v1/tokens").json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        send(builder).await
    }

    pub async fn list_tokens(&self, params: &ListTokensParams) -> Result<TokenList, ClientError> {
        send(self.request(Method::GET, "/v1/tokens").query(params)).await
    }

    pub async fn get_token(&self, id: &str) -> Result<Token, ClientError> {
        send(self.request(Method::GET, &format!("/v1/tokens/{id}"))).await
    }

    pub async fn rotate_token(
        &self,
        id: &str,
        request: &RotateTokenRequest,
        idempotency_key: Option<&str>,
    ) -> Result<RotatedToken, ClientError> {
        let mut builder = self
            .request(Method::POST, &format!("/v1/tokens/{id}/rotate"))
            .json(request);
        if let Some(key) = idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        send(builder).await
    }

    pub async fn revoke_token(&self, id: &str) -> Result<Token, ClientError> {
        send(self.request(Method::POST, &format!("/v1/tokens/{id}/revoke"))).await
    }

    pub async fn verify_token(
        &self,
        request: &VerifyTokenRequest,
    ) -> Result<VerifyTokenResponse, ClientError> {
        send(
            self.request(Method::POST, "/v1/tokens/verify")
                .json(request),
        )
        .await
    }

    pub async fn create_api_key(
        &self,
        request: &CreateApiKeyRequest,
    ) -> Result<IssuedApiKey, ClientError> {
        send(self.request(Method::POST, "/v1/api-keys").json(request)).await
    }

    pub async fn list_api_keys(&self) -> Result<ApiKeyList, ClientError> {
        send(self.request(Method::GET, "/v1/api-keys")).await
    }

    pub async fn regenerate_api_key(&self, id: &str) -> Result<IssuedApiKey, ClientError> {
        send(self.request(Method::POST, &format!("/v1/api-keys/{id}/regenerate"))).await
    }

    pub async fn delete_api_key(&self, id: &str) -> Result<(), ClientError> {
        let response = self
            .request(Method::DELETE, &format!("/v1/api-keys/{id}"))
            .send()
            .await?;
        error_for_status(response).await.map(drop)
    }

    pub async fn get_api_key(&self, id: &str) -> Result<ApiKey, ClientError> {
        send(self.request(Method::GET, &format!("/v1/api-keys/{id}"))).await
    }

    pub async fn create_webhook(
        &self,
        request: &CreateWebhookRequest,
    ) -> Result<WebhookWithSecret, ClientError> {
        send(self.request(Method::POST, "/v1/webhooks").json(request)).await
    }

    /// One page of webhooks; `cursor` is the previous page's `next_cursor`.
    pub async fn list_webhooks(&self, cursor: Option<&str>) -> Result<WebhookList, ClientError> {
        let mut builder = self.request(Method::GET, "/v1/webhooks");
        if let Some(cursor) = cursor {
            builder = builder.query(&[("cursor", cursor)]);
        }
        send(builder).await
    }

    pub async fn get_webhook(&self, id: &str) -> Result<Webhook, ClientError> {
        send(self.request(Method::GET, &format!("/v1/webhooks/{id}"))).await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<(), ClientError> {
        let response = self
            .request(Method::DELETE, &format!("/v1/webhooks/{id}"))
            .send()
            .await?;
        error_for_status(response).await.map(drop)
    }

    /// One page of the audit log, newest first.
    pub async fn list_audit_logs(
        &self,
        params: &ListAuditParams,
    ) -> Result<AuditEventList, ClientError> {
        send(self.request(Method::GET, "/v1/audit-logs").query(params)).await
    }

    /// The audit log of a time range as CSV (RFC 4180, UTF-8 with a BOM), streamed by the
    /// server; returned as the response to read as it arrives.
    pub async fn export_audit(
        &self,
        params: &ExportAuditParams,
    ) -> Result<reqwest::Response, ClientError> {
        let builder = self
            .request(Method::GET, "/v1/audit-logs/export")
            .query(params);
        error_for_status(builder.send().await?).await
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{}", self.base_url, path))
            .bearer_auth(&self.credential)
    }
}

async fn send<T: DeserializeOwned>(builder: RequestBuilder) -> Result<T, ClientError> {
    let response = error_for_status(builder.send().await?).await?;
    Ok(response.json().await?)
}

async fn error_for_status(response: reqwest::Response) -> Result<reqwest::Response, ClientError> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    let body = response
        .json::<ErrorBody>()
        .await
        .unwrap_or_else(|_| ErrorBody {
            error: "unexpected_response".into(),
            message: format!("the server answered {status} without an error body"),
            field: None,
        });
    Err(ClientError::Api { status, body })
}
