//! `/v1/members`: list, invite, change a role, remove.

use crate::auth::Principal;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{caller, raw_body, raw_query};
use crate::http::parse::{parse_json, parse_query};
use crate::http::reply::{json_response, no_content};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::members;
use crate::service::unit_of_work::UnitOfWork;
use bytes::Bytes;
use tooken_contract::ErrorBody;
use tooken_contract::members::{InviteMemberRequest, MemberList, UpdateMemberRequest};
use tooken_contract::page::PageParams;
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let caller = || caller(state.clone());
    vec![
        Endpoint::api::<__path_list_members>(Reach::Workspace, |at| {
            serve!(list_members, at.plain(), caller(), raw_query())
        }),
        Endpoint::api::<__path_invite_member>(Reach::Workspace, |at| {
            serve!(invite_member, at.plain(), caller(), raw_body())
        }),
        Endpoint::api::<__path_update_member>(Reach::Workspace, |at| {
            serve!(update_member, at.one(), caller(), raw_body())
        }),
        Endpoint::api::<__path_remove_member>(Reach::Workspace, |at| {
            serve!(remove_member, at.one(), caller())
        }),
    ]
}

#[utoipa::path(
    get, path = "/v1/members", tag = "members",
    params(PageParams),
    responses((status = 200, body = MemberList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_members(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.pass(members::READ)?;
    let params: PageParams = parse_query(&query)?;
    let list = members::list(&state.store, &principal, params).await?;
    Ok(json_response(StatusCode::OK, &list))
}

#[utoipa::path(
    post, path = "/v1/members", tag = "members",
    request_body = InviteMemberRequest,
    responses(
        (status = 201, description = "Invited; the person accepts after signing in with this email", body = tooken_contract::members::Member),
        (status = 401, body = ErrorBody), (status = 403, description = "Owners only", body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn invite_member(
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(members::CHANGE)?;
    let request: InviteMemberRequest = parse_json(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let member = members::invite(uow, &principal, request).await?;
    Ok(json_response(StatusCode::CREATED, &member.to_api()))
}

#[utoipa::path(
    patch, path = "/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "Member id")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, body = tooken_contract::members::Member),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Would leave no Owner", body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update_member(
    id: String,
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(members::CHANGE)?;
    let request: UpdateMemberRequest = parse_json(&body)?;
    let uow = UnitOfWork::by(&state.store, &principal, None);
    let member = members::update(uow, &principal, &id, request).await?;
    Ok(json_response(StatusCode::OK, &member.to_api()))
}

#[utoipa::path(
    delete, path = "/v1/members/{id}", tag = "members",
    params(("id" = String, Path, description = "Member id")),
    responses(
        (status = 204, description = "Removed; their personal API keys stopped working"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Would leave no Owner", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    let uow = UnitOfWork::by(&state.store, &principal, None);
    members::remove(uow, &principal, &id).await?;
    Ok(no_content())
}
