//! `/v1/tokens`: create, list, get, rotate, revoke and verify.

use super::idempotency::{self, Retryable};
use crate::auth::Principal;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_body, raw_query};
use crate::http::parse::{parse_json, parse_json_or_default, parse_query};
use crate::http::reply::{json_response, outcome};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::{inspect, tokens};
use bytes::Bytes;
use tooken_contract::ErrorBody;
use tooken_contract::tokens::ListTokensParams;
use tooken_contract::tokens::{
    CreateTokenRequest, IssuedToken, RotateTokenRequest, RotatedToken, Token, TokenList,
    VerifyTokenRequest, VerifyTokenResponse,
};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_create_token>(Reach::Workspace, |at| {
            serve!(create_token, at.plain(), caller(), idempotency::retryable())
        }),
        Endpoint::api::<__path_list_tokens>(Reach::Workspace, |at| {
            serve!(list_tokens, at.plain(), caller(), raw_query())
        }),
        Endpoint::api::<__path_verify_token>(Reach::Workspace, |at| {
            serve!(verify_token, at.plain(), caller(), raw_body())
        }),
        Endpoint::api::<__path_get_token>(Reach::Workspace, |at| {
            serve!(get_token, at.one(), caller())
        }),
        Endpoint::api::<__path_rotate_token>(Reach::Workspace, |at| {
            serve!(rotate_token, at.one(), caller(), idempotency::retryable())
        }),
        Endpoint::api::<__path_revoke_token>(Reach::Workspace, |at| {
            serve!(revoke_token, at.one(), caller(), idempotency::retryable())
        }),
    ]
}

#[utoipa::path(
    post, path = "/v1/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    params(idempotency::KeyHeader),
    responses(
        (status = 201, description = "Created. The secret is shown only in this response.", body = IssuedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    state: AppState,
    principal: Principal,
    request: Retryable,
) -> Result<Response, ApiError> {
    principal.pass(tokens::CREATE)?;
    let command: CreateTokenRequest = parse_json(&request.body)?;
    let uow = request.unit_of_work(&state.store, &principal, StatusCode::CREATED);
    outcome(
        tokens::create(uow, &principal, command).await?,
        StatusCode::CREATED,
    )
}

#[utoipa::path(
    get, path = "/v1/tokens", tag = "tokens",
    params(ListTokensParams),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.pass(tokens::READ)?;
    let params: ListTokensParams = parse_query(&query)?;
    let list = tokens::list(&state.store, &principal, params).await?;
    Ok(json_response(StatusCode::OK, &list))
}

#[utoipa::path(
    get, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Token), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_token(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let token = tokens::get(&state.store, &principal, &id).await?;
    Ok(json_response(StatusCode::OK, &token))
}

#[utoipa::path(
    post, path = "/v1/tokens/{id}/rotate", tag = "tokens",
    params(("id" = String, Path, description = "Token id"),
           idempotency::KeyHeader),
    request_body(content = Option<RotateTokenRequest>, description = "Optional; an empty body rotates with no grace period"),
    responses(
        (status = 200, description = "Rotated. The new secret is shown only in this response.", body = RotatedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Revoked or expired token, or a concurrent rotation", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_token(
    id: String,
    state: AppState,
    principal: Principal,
    request: Retryable,
) -> Result<Response, ApiError> {
    principal.pass(tokens::ROTATE)?;
    let command: RotateTokenRequest = parse_json_or_default(&request.body)?;
    let uow = request.unit_of_work(&state.store, &principal, StatusCode::OK);
    outcome(
        tokens::rotate(uow, &principal, &id, command).await?,
        StatusCode::OK,
    )
}

#[utoipa::path(
    post, path = "/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "Token id"),
           idempotency::KeyHeader),
    responses(
        (status = 200, description = "Revoked (also when it already was)", body = Token),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    id: String,
    state: AppState,
    principal: Principal,
    request: Retryable,
) -> Result<Response, ApiError> {
    let uow = request.unit_of_work(&state.store, &principal, StatusCode::OK);
    outcome(tokens::revoke(uow, &principal, &id).await?, StatusCode::OK)
}

#[utoipa::path(
    post, path = "/v1/tokens/verify", tag = "tokens",
    request_body = VerifyTokenRequest,
    responses(
        (status = 200, description = "Whether the presented token works, and why not", body = VerifyTokenResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn verify_token(
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(inspect::GATE)?;
    let request: VerifyTokenRequest = parse_json(&body)?;
    let answer = state.inspector().verify(&principal, request).await?;
    Ok(json_response(StatusCode::OK, &answer))
}
