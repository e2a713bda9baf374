//! `/v1/api-keys`: create, list, get, regenerate and delete.

use super::idempotency::{self, Retryable};
use crate::auth::Principal;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_query};
use crate::http::parse::{parse_json, parse_query};
use crate::http::reply::{json_response, no_content, outcome};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::api_keys;
use crate::service::unit_of_work::UnitOfWork;
use tooken_contract::ErrorBody;
use tooken_contract::api_keys::{ApiKey, ApiKeyList, CreateApiKeyRequest, IssuedApiKey};
use tooken_contract::page::PageParams;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_create_api_key>(Reach::Workspace, |at| {
            serve!(
                create_api_key,
                at.plain(),
                caller(),
                idempotency::retryable()
            )
        }),
        Endpoint::api::<__path_list_api_keys>(Reach::Workspace, |at| {
            serve!(list_api_keys, at.plain(), caller(), raw_query())
        }),
        Endpoint::api::<__path_get_api_key>(Reach::Workspace, |at| {
            serve!(get_api_key, at.one(), caller())
        }),
        Endpoint::api::<__path_regenerate_api_key>(Reach::Workspace, |at| {
            serve!(
                regenerate_api_key,
                at.one(),
                caller(),
                idempotency::retryable()
            )
        }),
        Endpoint::api::<__path_delete_api_key>(Reach::Workspace, |at| {
            serve!(delete_api_key, at.one(), caller())
        }),
    ]
}

#[utoipa::path(
    post, path = "/v1/api-keys", tag = "api-keys",
    request_body = CreateApiKeyRequest,
    params(idempotency::KeyHeader),
    responses(
        (status = 201, description = "Created. The key is shown only in this response.", body = IssuedApiKey),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_api_key(
    state: AppState,
    principal: Principal,
    request: Retryable,
) -> Result<Response, ApiError> {
    principal.pass(api_keys::GATE)?;
    let command: CreateApiKeyRequest = parse_json(&request.body)?;
    let uow = request.unit_of_work(&state.store, &principal, StatusCode::CREATED);
    outcome(
        api_keys::create(uow, &principal, command).await?,
        StatusCode::CREATED,
    )
}

#[utoipa::path(
    get, path = "/v1/api-keys", tag = "api-keys",
    params(PageParams),
    responses((status = 200, body = ApiKeyList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_api_keys(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.pass(api_keys::GATE)?;
    let params: PageParams = parse_query(&query)?;
    let list = api_keys::list(&state.store, &principal, params).await?;
    Ok(json_response(StatusCode::OK, &list))
}

#[utoipa::path(
    get, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses((status = 200, body = ApiKey), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_api_key(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let key = api_keys::get(&state.store, &principal, &id).await?;
    Ok(json_response(StatusCode::OK, &key))
}

#[utoipa::path(
    post, path = "/v1/api-keys/{id}/regenerate", tag = "api-keys",
    params(("id" = String, Path, description = "API key id"),
           idempotency::KeyHeader),
    responses(
        (status = 200, description = "Same id and name, new key; the old one stopped working", body = IssuedApiKey),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn regenerate_api_key(
    id: String,
    state: AppState,
    principal: Principal,
    request: Retryable,
) -> Result<Response, ApiError> {
    let uow = request.unit_of_work(&state.store, &principal, StatusCode::OK);
    outcome(
        api_keys::regenerate(uow, &principal, &id).await?,
        StatusCode::OK,
    )
}

#[utoipa::path(
    delete, path = "/v1/api-keys/{id}", tag = "api-keys",
    params(("id" = String, Path, description = "API key id")),
    responses(
        (status = 204, description = "Deleted; the key stopped working"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete_api_key(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let uow = UnitOfWork::by(&state.store, &principal, None);
    api_keys::delete(uow, &principal, &id).await?;
    Ok(no_content())
}
