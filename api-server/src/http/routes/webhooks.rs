//! `/v1/webhooks`: endpoints (create, list, get, update, delete, rotate the signing secret), their
//! delivery log, and redelivery.

use super::{
    caller, json_response, parse_json, parse_json_or_default, parse_query, raw_body, raw_query,
    respond, v1,
};
use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::pagination::{Cursor, page};
use crate::store::webhooks::{self as store, Endpoint};
use crate::store::{StoreError, new_id, now};
use crate::webhook_targets::TargetPolicy;
use bytes::Bytes;
use jiff::SignedDuration;
use serde_json::json;
use tooken_contract::credential::random_base62;
use tooken_contract::page::PageParams;
use tooken_contract::webhooks::{
    CreateWebhookRequest, Delivery, DeliveryList, EVENT_TYPES, RotateWebhookSecretRequest,
    UpdateWebhookRequest, Webhook, WebhookList, WebhookWithSecret,
};
use tooken_contract::{ErrorBody, Scope};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub const MAX_SECRET_GRACE_SECONDS: u64 = 7 * 24 * 3600;
pub const DEFAULT_SECRET_GRACE_SECONDS: u64 = 24 * 3600;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let create = v1()
        .and(warp::path!("webhooks"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(create_webhook)
        .map(respond)
        .boxed();
    let list = v1()
        .and(warp::path!("webhooks"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(list_webhooks)
        .map(respond)
        .boxed();
    let get = v1()
        .and(warp::path!("webhooks" / String))
        .and(warp::get())
        .and(caller(state.clone()))
        .then(get_webhook)
        .map(respond)
        .boxed();
    let update = v1()
        .and(warp::path!("webhooks" / String))
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(update_webhook)
        .map(respond)
        .boxed();
    let delete = v1()
        .and(warp::path!("webhooks" / String))
        .and(warp::delete())
        .and(caller(state.clone()))
        .then(delete_webhook)
        .map(respond)
        .boxed();
    let rotate = v1()
        .and(warp::path!("webhooks" / String / "rotate-secret"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(rotate_webhook_secret)
        .map(respond)
        .boxed();
    let deliveries = v1()
        .and(warp::path!("webhooks" / String / "deliveries"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(list_deliveries)
        .map(respond)
        .boxed();
    let redeliver = v1()
        .and(warp::path!(
            "webhooks" / String / "deliveries" / String / "redeliver"
        ))
        .and(warp::post())
        .and(caller(state.clone()))
        .then(redeliver)
        .map(respond)
        .boxed();
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(update)
        .unify()
        .or(delete)
        .unify()
        .or(rotate)
        .unify()
        .or(deliveries)
        .unify()
        .or(redeliver)
        .unify()
        .boxed()
}

fn new_secret() -> String {
    format!("whsec_{}", random_base62(32))
}

fn check_url(targets: &TargetPolicy, url: &str) -> Result<String, ApiError> {
    let invalid = |why: &str| ApiError::validation("url", format!("url {why}"));
    if url.len() > 2048 {
        return Err(invalid("must be at most 2048 characters"));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|err| invalid(&format!("is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid("must be an http:// or https:// URL with a host"));
    }
    targets
        .check_url(&parsed)
        .map_err(|refused| ApiError::validation("url", refused.to_string()))?;
    Ok(url.to_owned())
}

fn check_event_types(types: &[String]) -> Result<Vec<String>, ApiError> {
    if types.is_empty() {
        return Err(ApiError::validation(
            "event_types",
            "at least one event type is required",
        ));
    }
    for (i, kind) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&kind.as_str()) {
            return Err(ApiError::validation(
                format!("event_types[{i}]"),
                format!(
                    "unknown event type `{kind}`; expected one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    Ok(types)
}

fn check_description(description: Option<String>) -> Result<Option<String>, ApiError> {
    match description {
        Some(text) if text.chars().count() > 256 => Err(ApiError::validation(
            "description",
            "description must be at most 256 characters",
        )),
        other => Ok(other),
    }
}

async fn endpoint(state: &AppState, principal: &Principal, id: &str) -> Result<Endpoint, ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    store::get_endpoint(&mut conn, &principal.workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
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
    principal.require(Scope::WebhooksWrite)?;
    let request: CreateWebhookRequest = parse_json(&body)?;
    let endpoint = Endpoint {
        id: new_id(),
        workspace_id: principal.workspace_id.clone(),
        url: check_url(&state.webhook_targets, &request.url)?,
        description: check_description(request.description)?,
        event_types: check_event_types(&request.event_types)?,
        enabled: request.enabled.unwrap_or(true),
        disabled_reason: None,
        secret: new_secret(),
        pending_secret: None,
        pending_secret_at: None,
        created_at: now(),
    };
    let mut tx = state.store.begin_write().await?;
    store::save_endpoint(&mut tx, &endpoint, true).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::WEBHOOK_CREATED,
            target_type: "webhook",
            target_id: &endpoint.id,
            data: json!({"url": endpoint.url, "event_types": endpoint.event_types, "enabled": endpoint.enabled}),
        },
    )
    .await?;
    tx.commit().await?;
    let secret = endpoint.secret.clone();
    Ok(json_response(
        StatusCode::CREATED,
        &WebhookWithSecret {
            webhook: endpoint.to_api(),
            secret,
        },
    ))
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
    principal.require(Scope::WebhooksRead)?;
    let params: PageParams = parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut rows = store::list_endpoints(
        &mut conn,
        &principal.workspace_id,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |e| &e.id);
    let data: Vec<Webhook> = rows.iter().map(Endpoint::to_api).collect();
    Ok(json_response(
        StatusCode::OK,
        &WebhookList { data, next_cursor },
    ))
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
    principal.require(Scope::WebhooksRead)?;
    Ok(json_response(
        StatusCode::OK,
        &endpoint(&state, &principal, &id).await?.to_api(),
    ))
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
    principal.require(Scope::WebhooksWrite)?;
    let request: UpdateWebhookRequest = parse_json(&body)?;
    let mut tx = state.store.begin_write().await?;
    let before = store::get_endpoint(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let mut after = before.clone();
    if let Some(url) = request.url {
        after.url = check_url(&state.webhook_targets, &url)?;
    }
    if let Some(types) = request.event_types {
        after.event_types = check_event_types(&types)?;
    }
    if request.description.is_some() {
        after.description = check_description(request.description)?;
    }
    if let Some(enabled) = request.enabled {
        after.enabled = enabled;
        if enabled {
            after.disabled_reason = None;
        }
    }
    if after != before {
        store::save_endpoint(&mut tx, &after, false).await?;
        let changes = audit::diff(&json!(before.to_api()), &json!(after.to_api()));
        audit::record(
            &mut tx,
            &principal,
            Change {
                event: events::WEBHOOK_UPDATED,
                target_type: "webhook",
                target_id: &id,
                data: json!({ "changes": changes }),
            },
        )
        .await?;
        tx.commit().await?;
    }
    Ok(json_response(StatusCode::OK, &after.to_api()))
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
    principal.require(Scope::WebhooksWrite)?;
    let mut tx = state.store.begin_write().await?;
    let endpoint = store::get_endpoint(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    store::delete_endpoint(&mut tx, &principal.workspace_id, &id).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::WEBHOOK_DELETED,
            target_type: "webhook",
            target_id: &id,
            data: json!({"url": endpoint.url}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(super::no_content())
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
    principal.require(Scope::WebhooksWrite)?;
    let request: RotateWebhookSecretRequest = parse_json_or_default(&body)?;
    let grace = request
        .grace_period_seconds
        .unwrap_or(DEFAULT_SECRET_GRACE_SECONDS);
    if grace > MAX_SECRET_GRACE_SECONDS {
        return Err(ApiError::validation(
            "grace_period_seconds",
            format!("grace_period_seconds must be 0 to {MAX_SECRET_GRACE_SECONDS}"),
        ));
    }
    let mut tx = state.store.begin_write().await?;
    let mut endpoint = store::get_endpoint(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    let now = now();
    // A rotation already in its grace period is finished first, so at most two secrets exist.
    endpoint.secret = endpoint.signing_secret(now).to_owned();
    let secret = new_secret();
    let rotates_at = now + SignedDuration::from_secs(grace as i64);
    endpoint.pending_secret = Some(secret.clone());
    endpoint.pending_secret_at = Some(rotates_at);
    store::save_endpoint(&mut tx, &endpoint, false).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::WEBHOOK_UPDATED,
            target_type: "webhook",
            target_id: &id,
            data: json!({"secret_rotated": true, "secret_rotates_at": rotates_at}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json_response(
        StatusCode::OK,
        &WebhookWithSecret {
            webhook: endpoint.to_api(),
            secret,
        },
    ))
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
    principal.require(Scope::WebhooksRead)?;
    let params: PageParams = parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    endpoint(&state, &principal, &id).await?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut rows =
        store::list_deliveries(&mut conn, &id, after.as_ref().map(Cursor::id), limit + 1).await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |d| &d.id);
    Ok(json_response(
        StatusCode::OK,
        &DeliveryList {
            data: rows,
            next_cursor,
        },
    ))
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
    principal.require(Scope::WebhooksWrite)?;
    let mut tx = state.store.begin_write().await?;
    let endpoint = store::get_endpoint(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    if !endpoint.enabled {
        return Err(ApiError::conflict(
            "webhook_disabled",
            "enable the webhook before redelivering",
        ));
    }
    let (original, ordering_key) = store::get_delivery(&mut tx, &id, &delivery_id)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    let new = new_id();
    store::insert_delivery(&mut tx, &new, &original.event_id, &id, &ordering_key, now()).await?;
    tx.wake_outbox_on_commit();
    let (queued, _) = store::get_delivery(&mut tx, &id, &new)
        .await?
        .ok_or(ApiError::NotFound("delivery"))?;
    tx.commit().await?;
    Ok(json_response(StatusCode::ACCEPTED, &queued))
}
