//! `/v1/api-keys`: create, list, get, regenerate and delete.

use super::idempotency::{self, Idempotency};
use super::{caller, json_response, parse_json, parse_query, raw_body, raw_query, respond, v1};
use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::auth::{Principal, PrincipalKind, hash_secret};
use crate::http::error::ApiError;
use crate::pagination::{Cursor, page};
use crate::store::api_keys::{self as key_store, ApiKeyRow};
use crate::store::{StoreError, members, new_id, now};
use crate::validate;
use bytes::Bytes;
use serde_json::json;
use tooken_contract::api_keys::{
    ApiKey, ApiKeyKind, ApiKeyList, CreateApiKeyRequest, IssuedApiKey,
};
use tooken_contract::members::Role;
use tooken_contract::page::PageParams;
use tooken_contract::{ErrorBody, Secret};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::path::FullPath;
use warp::reply::Response;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let create = v1()
        .and(warp::path!("api-keys"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(idempotency::key())
        .and(warp::path::full())
        .and(raw_body())
        .then(create_api_key)
        .map(respond)
        .boxed();
    let list = v1()
        .and(warp::path!("api-keys"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(list_api_keys)
        .map(respond)
        .boxed();
    let get = v1()
        .and(warp::path!("api-keys" / String))
        .and(warp::get())
        .and(caller(state.clone()))
        .then(get_api_key)
        .map(respond)
        .boxed();
    let regenerate = v1()
        .and(warp::path!("api-keys" / String / "regenerate"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(idempotency::key())
        .and(warp::path::full())
        .and(raw_body())
        .then(regenerate_api_key)
        .map(respond)
        .boxed();
    let delete = v1()
        .and(warp::path!("api-keys" / String))
        .and(warp::delete())
        .and(caller(state.clone()))
        .then(delete_api_key)
        .map(respond)
        .boxed();
    create
        .or(list)
        .unify()
        .or(get)
        .unify()
        .or(regenerate)
        .unify()
        .or(delete)
        .unify()
        .boxed()
}

/// Owners and team keys see every key; other members see only their own.
fn sees_all_keys(principal: &Principal) -> bool {
    matches!(principal.kind, PrincipalKind::TeamKey { .. }) || principal.role() == Some(Role::Owner)
}

/// The key, if the caller may see it; others' keys are "not found" to non-owners.
async fn visible_key(
    conn: &mut sqlx::AnyConnection,
    principal: &Principal,
    id: &str,
) -> Result<ApiKeyRow, ApiError> {
    let key = key_store::get(conn, &principal.workspace_id, id)
        .await?
        .ok_or(ApiError::NotFound("api key"))?;
    if sees_all_keys(principal) || key.member_id.as_deref() == principal.member_id() {
        Ok(key)
    } else {
        Err(ApiError::NotFound("api key"))
    }
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
    idempotency_key: Option<String>,
    path: FullPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_api_key()?;
    let request: CreateApiKeyRequest = parse_json(&body)?;
    let name = validate::name("name", &request.name)?;
    let member_id = match request.kind {
        ApiKeyKind::Team => {
            if request.member_id.is_some() {
                return Err(ApiError::validation(
                    "member_id",
                    "team keys belong to no member",
                ));
            }
            None
        }
        ApiKeyKind::Personal => Some(
            request
                .member_id
                .clone()
                .or_else(|| principal.member_id().map(str::to_owned))
                .ok_or_else(|| {
                    ApiError::validation("member_id", "member_id is required for a personal key")
                })?,
        ),
    };
    if !principal.may_manage_key_of(request.kind, member_id.as_deref()) {
        return Err(ApiError::Forbidden(match request.kind {
            ApiKeyKind::Team => "only owners can create team API keys".into(),
            ApiKeyKind::Personal => "only owners can create personal API keys for others".into(),
        }));
    }
    let idempotency = Idempotency::new(idempotency_key, "POST", path.as_str(), &body);
    let mut tx = state.store.begin_write().await?;
    if let Some(replay) = idempotency.replay(&mut tx, &principal).await? {
        return Ok(replay);
    }
    if let Some(member_id) = &member_id
        && members::role(&mut tx, &principal.workspace_id, member_id)
            .await?
            .is_none()
    {
        return Err(ApiError::validation(
            "member_id",
            "no member of this workspace has this id",
        ));
    }
    let now = now();
    let secret = Secret::generate();
    let row = ApiKeyRow {
        id: new_id(),
        workspace_id: principal.workspace_id.clone(),
        name,
        kind: request.kind,
        member_id,
        prefix: secret.display_prefix().to_owned(),
        created_at: now,
        last_used_at: None,
    };
    key_store::insert(&mut tx, &row, &hash_secret(&secret)).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::API_KEY_CREATED,
            target_type: "api_key",
            target_id: &row.id,
            data: json!({"name": row.name, "kind": row.kind, "member_id": row.member_id}),
        },
    )
    .await?;
    let mut issued = IssuedApiKey {
        api_key: row.to_api(),
        key: None,
    };
    idempotency
        .remember(&mut tx, &principal, StatusCode::CREATED, &issued)
        .await?;
    tx.commit().await?;
    tracing::info!(api_key_id = %row.id, "api key created");
    issued.key = Some(secret.into_exposed());
    Ok(json_response(StatusCode::CREATED, &issued))
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
    principal.require_api_key()?;
    let params: PageParams = parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let only_member = if sees_all_keys(&principal) {
        None
    } else {
        principal.member_id()
    };
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut rows = key_store::list(
        &mut conn,
        &principal.workspace_id,
        only_member,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |row| &row.id);
    let data: Vec<ApiKey> = rows.iter().map(ApiKeyRow::to_api).collect();
    Ok(json_response(
        StatusCode::OK,
        &ApiKeyList { data, next_cursor },
    ))
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
    principal.require_api_key()?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let key = visible_key(&mut conn, &principal, &id).await?;
    Ok(json_response(StatusCode::OK, &key.to_api()))
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
    idempotency_key: Option<String>,
    path: FullPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_api_key()?;
    let idempotency = Idempotency::new(idempotency_key, "POST", path.as_str(), &body);
    let mut tx = state.store.begin_write().await?;
    if let Some(replay) = idempotency.replay(&mut tx, &principal).await? {
        return Ok(replay);
    }
    let key = visible_key(&mut tx, &principal, &id).await?;
    if !principal.may_manage_key_of(key.kind, key.member_id.as_deref()) {
        return Err(ApiError::Forbidden(
            "only owners can regenerate this API key".into(),
        ));
    }
    let secret = Secret::generate();
    key_store::regenerate(
        &mut tx,
        &principal.workspace_id,
        &id,
        &hash_secret(&secret),
        secret.display_prefix(),
    )
    .await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::API_KEY_REGENERATED,
            target_type: "api_key",
            target_id: &id,
            data: json!({"name": key.name, "kind": key.kind}),
        },
    )
    .await?;
    let mut issued = IssuedApiKey {
        api_key: ApiKey {
            prefix: secret.display_prefix().to_owned(),
            ..key.to_api()
        },
        key: None,
    };
    idempotency
        .remember(&mut tx, &principal, StatusCode::OK, &issued)
        .await?;
    tx.commit().await?;
    tracing::info!(api_key_id = %id, "api key regenerated");
    issued.key = Some(secret.into_exposed());
    Ok(json_response(StatusCode::OK, &issued))
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
    principal.require_api_key()?;
    let mut tx = state.store.begin_write().await?;
    let key = visible_key(&mut tx, &principal, &id).await?;
    if !principal.may_manage_key_of(key.kind, key.member_id.as_deref()) {
        return Err(ApiError::Forbidden(
            "only owners can delete this API key".into(),
        ));
    }
    key_store::delete(&mut tx, &principal.workspace_id, &id).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::API_KEY_DELETED,
            target_type: "api_key",
            target_id: &id,
            data: json!({"name": key.name, "kind": key.kind}),
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(api_key_id = %id, "api key deleted");
    Ok(super::no_content())
}
