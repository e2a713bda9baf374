//! `/v1/webhooks`: endpoints (create, list, get, update, delete, rotate the signing secret), their
//! delivery log, and redelivery.

use crate::auth::Principal;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_body, raw_query};
use crate::http::parse::{parse_json, parse_json_or_default, parse_query};
use crate::http::reply::{json_response, no_content};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::unit_of_work::UnitOfWork;
use crate::service::webhooks;
use bytes::Bytes;
use tooken_contract::ErrorBody;
use tooken_contract::page::PageParams;
use tooken_contract::webhooks::{
    CreateWebhookRequest, Delivery, DeliveryList, RotateWebhookSecretRequest, UpdateWebhookRequest,
    Webhook, WebhookList, WebhookWithSecret,
};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_create_webhook>(Reach::Workspace, |at| {
            serve!(create_webhook, at.plain(), caller(), raw_body())
        }),
        Endpoint::api::<__path_list_webhooks>(Reach::Workspace, |at| {
            serve!(list_webhooks, at.plain(), caller(), raw_query())
        }),
        Endpoint::api::<__path_get_webhook>(Reach::Workspace, |at| {
            serve!(get_webhook, at.one(), caller())
        }),
        Endpoint::api::<__path_update_webhook>(Reach::Workspace, |at| {
            serve!(update_webhook, at.one(), caller(), raw_body())
        }),
        Endpoint::api::<__path_delete_webhook>(Reach::Workspace, |at| {
            serve!(delete_webhook, at.one(), caller())
        }),
        Endpoint::api::<__path_rotate_webhook_secret>(Reach::Workspace, |at| {
            serve!(rotate_webhook_secret, at.one(), caller(), raw_body())
        }),
        Endpoint::api::<__path_list_deliveries>(Reach::Workspace, |at| {
            serve!(list_deliveries, at.one(), caller(), raw_query())
        }),
        Endpoint::api::<__path_redeliver>(Reach::Workspace, |at| {
            serve!(redeliver, at.two(), caller())
        }),
    ]
}

#[utoipa::path(
    post, path = "/v1/webhooks", tag = "webhooks",
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Created. The signing secret is shown only in this response.", body = WebhookWithSecret),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_webhook(
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(webhooks::WRITE)?;
    let request: CreateWebhookRequest = parse_json(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let created = webhooks::create(uow, &principal, &state.webhook_targets, request).await?;
    Ok(json_response(StatusCode::CREATED, &created))
}

#[utoipa::path(
    get, path = "/v1/webhooks", tag = "webhooks",
    params(PageParams),
    responses((status = 200, body = WebhookList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_webhooks(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.pass(webhooks::READ)?;
    let params: PageParams = parse_query(&query)?;
    let list = webhooks::list(&state.store, &principal, params).await?;
    Ok(json_response(StatusCode::OK, &list))
}

#[utoipa::path(
    get, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 200, body = Webhook), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_webhook(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let webhook = webhooks::get(&state.store, &principal, &id).await?;
    Ok(json_response(StatusCode::OK, &webhook))
}

#[utoipa::path(
    patch, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    request_body = UpdateWebhookRequest,
    responses((status = 200, body = Webhook), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn update_webhook(
    id: String,
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(webhooks::WRITE)?;
    let request: UpdateWebhookRequest = parse_json(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let webhook = webhooks::update(uow, &principal, &state.webhook_targets, &id, request).await?;
    Ok(json_response(StatusCode::OK, &webhook))
}

#[utoipa::path(
    delete, path = "/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    responses((status = 204, description = "Deleted, with its pending deliveries"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn delete_webhook(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let uow = UnitOfWork::by(&state.store, &principal, None);
    webhooks::delete(uow, &principal, &id).await?;
    Ok(no_content())
}

#[utoipa::path(
    post, path = "/v1/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id")),
    request_body(content = Option<RotateWebhookSecretRequest>, description = "Optional"),
    responses(
        (status = 200, description = "The new secret, shown once. The current one keeps signing until `secret_rotates_at`.", body = WebhookWithSecret),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_webhook_secret(
    id: String,
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(webhooks::WRITE)?;
    let request: RotateWebhookSecretRequest = parse_json_or_default(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let rotated = webhooks::rotate_secret(uow, &principal, &id, request).await?;
    Ok(json_response(StatusCode::OK, &rotated))
}

#[utoipa::path(
    get, path = "/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"), PageParams),
    responses((status = 200, body = DeliveryList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_deliveries(
    id: String,
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.pass(webhooks::READ)?;
    let params: PageParams = parse_query(&query)?;
    let list = webhooks::list_deliveries(&state.store, &principal, &id, params).await?;
    Ok(json_response(StatusCode::OK, &list))
}

#[utoipa::path(
    post, path = "/v1/webhooks/{id}/deliveries/{delivery_id}/redeliver", tag = "webhooks",
    params(("id" = String, Path, description = "Webhook id"), ("delivery_id" = String, Path, description = "Delivery id")),
    responses(
        (status = 202, description = "A new delivery of the same event (same id and body) is queued", body = Delivery),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "The endpoint is disabled", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn redeliver(
    id: String,
    delivery_id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let queued = webhooks::redeliver(uow, &principal, &id, &delivery_id).await?;
    Ok(json_response(StatusCode::ACCEPTED, &queued))
}
