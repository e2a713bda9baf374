//! `POST /v1/workspaces` (a signed-in person creates one and is its Owner) and
//! `GET`/`PATCH /v1/workspace` (the settings of the workspace addressed).

use crate::auth::{Principal, UserSession};
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_body, signed_in, with_state};
use crate::http::parse::parse_json;
use crate::http::reply::json_response;
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::unit_of_work::UnitOfWork;
use crate::service::workspaces;
use bytes::Bytes;
use tooken_contract::ErrorBody;
use tooken_contract::workspaces::{CreateWorkspaceRequest, UpdateWorkspaceRequest};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_create_workspace>(Reach::Own, |at| {
            serve!(
                create_workspace,
                at.plain(),
                with_state(state.clone()),
                signed_in(state.clone()),
                raw_body()
            )
        }),
        Endpoint::api::<__path_get_workspace>(Reach::Workspace, |at| {
            serve!(get_workspace, at.plain(), caller())
        }),
        Endpoint::api::<__path_update_workspace>(Reach::Workspace, |at| {
            serve!(update_workspace, at.plain(), caller(), raw_body())
        }),
    ]
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
    let workspace = workspaces::create(&state.store, &user, request).await?;
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
    let workspace = workspaces::get(&state.store, &principal).await?;
    Ok(json_response(StatusCode::OK, &workspace.to_api()))
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
    principal.pass(workspaces::UPDATE)?;
    let request: UpdateWorkspaceRequest = parse_json(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let workspace = workspaces::update(uow, &principal, request).await?;
    Ok(json_response(StatusCode::OK, &workspace.to_api()))
}
