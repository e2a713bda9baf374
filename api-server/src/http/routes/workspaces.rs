//! `POST /v1/workspaces` (a signed-in person creates one and is its Owner) and
//! `GET`/`PATCH /v1/workspace` (the settings of the workspace addressed).

use super::{caller, json_response, parse_json, raw_body, respond, signed_in, v1, with_state};
use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::auth::{Principal, UserSession};
use crate::bootstrap::{is_valid_slug, slugify};
use crate::http::error::ApiError;
use crate::store::members::{self, Member};
use crate::store::workspaces::{
    self, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_TOKEN_EXPIRY_DAYS, Workspace,
};
use crate::store::{StoreError, new_id, now};
use crate::validate;
use bytes::Bytes;
use serde_json::json;
use tooken_contract::ErrorBody;
use tooken_contract::members::{MemberStatus, Role};
use tooken_contract::workspaces::{CreateWorkspaceRequest, UpdateWorkspaceRequest};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub const MAX_DAYS: i64 = 365;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let create = warp::path!("v1" / "workspaces")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(signed_in(state.clone()))
        .and(raw_body())
        .then(create_workspace)
        .map(respond)
        .boxed();
    let get = v1()
        .and(warp::path!("workspace"))
        .and(warp::get())
        .and(caller(state.clone()))
        .then(get_workspace)
        .map(respond)
        .boxed();
    let update = v1()
        .and(warp::path!("workspace"))
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(update_workspace)
        .map(respond)
        .boxed();
    create.or(get).unify().or(update).unify().boxed()
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::conflict("slug_taken", format!("the slug `{slug}` is already in use"))
}

fn check_slug(slug: &str) -> Result<(), ApiError> {
    if is_valid_slug(slug) {
        Ok(())
    } else {
        Err(ApiError::validation(
            "slug",
            "slug must be 1-63 lowercase letters, digits and inner hyphens",
        ))
    }
}

#[utoipa::path(
    post, path = "/v1/workspaces", tag = "workspaces",
    request_body = CreateWorkspaceRequest,
    responses(
        (status = 201, description = "Created; the caller is its Owner", body = tooken_contract::workspaces::Workspace),
        (status = 401, body = ErrorBody), (status = 403, description = "Needs a signed-in session", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_workspace(
    state: AppState,
    user: UserSession,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: CreateWorkspaceRequest = parse_json(&body)?;
    let name = validate::name("name", &request.name)?;
    let slug = request.slug.unwrap_or_else(|| slugify(&name));
    check_slug(&slug)?;
    let now = now();
    let workspace = Workspace {
        id: new_id(),
        name,
        slug: slug.clone(),
        timezone: "UTC".into(),
        default_token_expiry_days: Some(DEFAULT_TOKEN_EXPIRY_DAYS),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    let mut tx = state.store.begin_write().await?;
    workspaces::insert(&mut tx, &workspace)
        .await
        .map_err(|err| {
            if err.is_unique_violation() {
                slug_taken(&slug)
            } else {
                err.into()
            }
        })?;
    let owner = Member {
        id: new_id(),
        workspace_id: workspace.id.clone(),
        email: user.email.clone(),
        role: Role::Owner,
        status: MemberStatus::Active,
        user_id: Some(user.user_id.clone()),
        created_at: now,
    };
    members::insert(&mut tx, &owner).await?;
    audit::record_by_user(
        &mut tx,
        &workspace.id,
        &user,
        Change {
            event: events::WORKSPACE_CREATED,
            target_type: "workspace",
            target_id: &workspace.id,
            data: json!({"name": workspace.name, "slug": workspace.slug}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::CREATED, &workspace.to_api()))
}

#[utoipa::path(
    get, path = "/v1/workspace", tag = "workspaces",
    responses(
        (status = 200, body = tooken_contract::workspaces::Workspace), (status = 401, body = ErrorBody),
        (status = 403, description = "A confined token: the settings belong to the whole workspace", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get_workspace(state: AppState, principal: Principal) -> Result<Response, ApiError> {
    principal.require_unconfined("workspace settings")?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let workspace = workspaces::get(&mut conn, &principal.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    Ok(json_response(StatusCode::OK, &workspace.to_api()))
}

/// Applies a settings change, validating each field named.
fn apply(workspace: &mut Workspace, request: UpdateWorkspaceRequest) -> Result<(), ApiError> {
    if let Some(name) = request.name {
        workspace.name = validate::name("name", &name)?;
    }
    if let Some(slug) = request.slug {
        check_slug(&slug)?;
        workspace.slug = slug;
    }
    if let Some(timezone) = request.timezone {
        jiff::tz::TimeZone::get(&timezone).map_err(|_| {
            ApiError::validation(
                "timezone",
                format!("`{timezone}` is not an IANA time zone such as Europe/Berlin"),
            )
        })?;
        workspace.timezone = timezone;
    }
    if let Some(days) = request.default_token_expiry_days {
        if days.is_some_and(|days| !(1..=MAX_DAYS).contains(&days)) {
            return Err(ApiError::validation(
                "default_token_expiry_days",
                format!("default_token_expiry_days must be 1 to {MAX_DAYS}, or null for never"),
            ));
        }
        workspace.default_token_expiry_days = days;
    }
    if let Some(days) = request.audit_retention_days {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(ApiError::validation(
                "audit_retention_days",
                format!("audit_retention_days must be 1 to {MAX_DAYS}"),
            ));
        }
        workspace.audit_retention_days = days;
    }
    Ok(())
}

#[utoipa::path(
    patch, path = "/v1/workspace", tag = "workspaces",
    request_body = UpdateWorkspaceRequest,
    responses(
        (status = 200, body = tooken_contract::workspaces::Workspace),
        (status = 401, body = ErrorBody), (status = 403, description = "Owners only", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_workspace(
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require_settings()?;
    let request: UpdateWorkspaceRequest = parse_json(&body)?;
    let mut tx = state.store.begin_write().await?;
    let before = workspaces::get(&mut tx, &principal.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("workspace"))?;
    let mut after = before.clone();
    apply(&mut after, request)?;
    if after == before {
        return Ok(json_response(StatusCode::OK, &after.to_api()));
    }
    workspaces::update(&mut tx, &after).await.map_err(|err| {
        if err.is_unique_violation() {
            slug_taken(&after.slug)
        } else {
            err.into()
        }
    })?;
    let changes = audit::diff(&json!(before.to_api()), &json!(after.to_api()));
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::SETTINGS_CHANGED,
            target_type: "workspace",
            target_id: &after.id,
            data: json!({ "changes": changes }),
        },
    )
    .await?;
    // A new slug changes which paths reach this workspace, so cached lookups go.
    tx.commit().await?;
    Ok(json_response(StatusCode::OK, &after.to_api()))
}
