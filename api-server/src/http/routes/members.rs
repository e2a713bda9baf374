//! `/v1/members`: invite by email with a role, list, change role, remove.

use super::{caller, json_response, parse_json, parse_query, raw_body, raw_query, respond, v1};
use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::auth::Principal;
use crate::http::error::ApiError;
use crate::pagination::{Cursor, page};
use crate::store::members::{self, Member};
use crate::store::{StoreError, WriteTx, new_id, now, workspaces};
use crate::validate;
use bytes::Bytes;
use serde_json::json;
use tooken_contract::ErrorBody;
use tooken_contract::members::{
    InviteMemberRequest, MemberList, MemberStatus, Role, UpdateMemberRequest,
};
use tooken_contract::page::PageParams;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let list = v1()
        .and(warp::path!("members"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(raw_query())
        .then(list_members)
        .map(respond)
        .boxed();
    let invite = v1()
        .and(warp::path!("members"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(invite_member)
        .map(respond)
        .boxed();
    let update = v1()
        .and(warp::path!("members" / String))
        .and(warp::patch())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(update_member)
        .map(respond)
        .boxed();
    let remove = v1()
        .and(warp::path!("members" / String))
        .and(warp::delete())
        .and(caller(state.clone()))
        .then(remove_member)
        .map(respond)
        .boxed();
    list.or(invite)
        .unify()
        .or(update)
        .unify()
        .or(remove)
        .unify()
        .boxed()
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
    principal.require_api_key()?;
    let params: PageParams = parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let mut rows = members::list(
        &mut conn,
        &principal.workspace_id,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |m| &m.id);
    let data = rows.iter().map(Member::to_api).collect();
    Ok(json_response(
        StatusCode::OK,
        &MemberList { data, next_cursor },
    ))
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
    principal.require_settings()?;
    let request: InviteMemberRequest = parse_json(&body)?;
    let email = validate::email("email", &request.email)?;
    let member = Member {
        id: new_id(),
        workspace_id: principal.workspace_id.clone(),
        email: email.clone(),
        role: request.role,
        status: MemberStatus::Invited,
        user_id: None,
        created_at: now(),
    };
    let mut tx = state.store.begin_write().await?;
    members::insert(&mut tx, &member).await.map_err(|err| {
        if err.is_unique_violation() {
            ApiError::conflict(
                "member_exists",
                format!("{email} is already a member or invited"),
            )
        } else {
            err.into()
        }
    })?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::MEMBER_INVITED,
            target_type: "member",
            target_id: &member.id,
            data: json!({"email": email, "role": member.role}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json_response(StatusCode::CREATED, &member.to_api()))
}

/// Refuses a change that would leave the workspace without an active Owner.
async fn keep_an_owner(
    tx: &mut WriteTx,
    member: &Member,
    new_role: Option<Role>,
) -> Result<(), ApiError> {
    let loses_owner = member.role == Role::Owner
        && member.status == MemberStatus::Active
        && new_role != Some(Role::Owner);
    if loses_owner && members::count_owners(tx, &member.workspace_id).await? <= 1 {
        return Err(ApiError::conflict(
            "last_owner",
            "the last Owner cannot be removed or demoted; make someone else Owner first",
        ));
    }
    Ok(())
}

/// Takes the workspace's row lock, so concurrent role changes cannot both pass `keep_an_owner`.
async fn lock_workspace(tx: &mut WriteTx, principal: &Principal) -> Result<(), ApiError> {
    workspaces::lock(tx, &principal.workspace_id).await?;
    Ok(())
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
    principal.require_settings()?;
    let request: UpdateMemberRequest = parse_json(&body)?;
    let mut tx = state.store.begin_write().await?;
    lock_workspace(&mut tx, &principal).await?;
    let mut member = members::get(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    if member.role == request.role {
        return Ok(json_response(StatusCode::OK, &member.to_api()));
    }
    keep_an_owner(&mut tx, &member, Some(request.role)).await?;
    members::set_role(&mut tx, &principal.workspace_id, &id, request.role).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::MEMBER_ROLE_CHANGED,
            target_type: "member",
            target_id: &id,
            data: json!({"email": member.email, "changes": {"role": {"from": member.role, "to": request.role}}}),
        },
    )
    .await?;
    // Personal keys and sessions act with the role, so cached lookups go.
    tx.commit().await?;
    member.role = request.role;
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
    principal.require_settings()?;
    let mut tx = state.store.begin_write().await?;
    lock_workspace(&mut tx, &principal).await?;
    let member = members::get(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("member"))?;
    keep_an_owner(&mut tx, &member, None).await?;
    members::delete(&mut tx, &principal.workspace_id, &id).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::MEMBER_REMOVED,
            target_type: "member",
            target_id: &id,
            data: json!({"email": member.email, "role": member.role}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(super::no_content())
}
