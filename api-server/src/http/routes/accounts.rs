//! `/v1/auth/…` and invitations: sign up, sign in (throttled), sign out, who am I, accept.

use super::cookies::{CookieContext, cookie_context};
use super::{
    client_addr, json_response, parse_json, raw_body, request_id, respond, signed_in, with_state,
};
use crate::app::{AppState, SignupPolicy};
use crate::audit::{self, Change, events};
use crate::auth::{UserSession, csrf_token, hash_secret};
use crate::http::error::ApiError;
use crate::passwords;
use crate::store::members::{self, Member};
use crate::store::users::{self, User};
use crate::store::{StoreError, WriteTx, new_id, now, sessions, signin_failures, workspaces};
use crate::validate;
use bytes::Bytes;
use jiff::SignedDuration;
use serde_json::json;
use std::net::SocketAddr;
use tooken_contract::accounts::{
    Me, Membership, PendingInvitation, Session, SignInRequest, SignUpRequest,
};
use tooken_contract::members::MemberStatus;
use tooken_contract::{ErrorBody, Secret};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;

/// Failed sign-ins allowed per window, per email and per client address.
pub const MAX_FAILURES_PER_EMAIL: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 30;
pub const FAILURE_WINDOW: SignedDuration = SignedDuration::from_mins(15);

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let signup = warp::path!("v1" / "auth" / "signup")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(cookie_context(&state))
        .and(raw_body())
        .then(sign_up)
        .map(respond)
        .boxed();
    let signin = warp::path!("v1" / "auth" / "signin")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(client_addr())
        .and(request_id())
        .and(cookie_context(&state))
        .and(raw_body())
        .then(sign_in)
        .map(respond)
        .boxed();
    let signout = warp::path!("v1" / "auth" / "signout")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(signed_in(state.clone()))
        .and(cookie_context(&state))
        .then(sign_out)
        .map(respond)
        .boxed();
    let me = warp::path!("v1" / "auth" / "me")
        .and(warp::get())
        .and(with_state(state.clone()))
        .and(signed_in(state.clone()))
        .then(who_am_i)
        .map(respond)
        .boxed();
    let accept = warp::path!("v1" / "invitations" / String / "accept")
        .and(warp::post())
        .and(with_state(state.clone()))
        .and(signed_in(state))
        .then(accept_invitation)
        .map(respond)
        .boxed();
    signup
        .or(signin)
        .unify()
        .or(signout)
        .unify()
        .or(me)
        .unify()
        .or(accept)
        .unify()
        .boxed()
}

/// Starts a session for `user` inside `tx`; returns the response body and the secret.
async fn start_session(
    state: &AppState,
    tx: &mut WriteTx,
    user: &User,
) -> Result<(Session, Secret), ApiError> {
    let secret = Secret::generate_session();
    let now = now();
    let expires_at = now + state.session_ttl;
    sessions::insert(
        tx,
        &new_id(),
        &user.id,
        &hash_secret(&secret),
        now,
        expires_at,
    )
    .await?;
    let session = Session {
        user: user.to_api(),
        token: None,
        expires_at,
        csrf_token: None,
    };
    Ok((session, secret))
}

/// Hands the secret over in the body, or for the dashboard in an HttpOnly cookie, with the
/// CSRF token its changes must carry.
fn session_response(
    state: &AppState,
    status: StatusCode,
    (mut session, secret): (Session, Secret),
    cookie: Option<&CookieContext>,
) -> Response {
    let Some(cookie) = cookie else {
        session.token = Some(secret.into_exposed());
        return json_response(status, &session);
    };
    session.csrf_token = Some(csrf_token(&secret));
    let mut response = json_response(status, &session);
    cookie.set_session(&mut response, secret.expose(), state.session_ttl.as_secs());
    response
}

#[utoipa::path(
    post, path = "/v1/auth/signup", tag = "accounts",
    request_body = SignUpRequest,
    responses(
        (status = 201, description = "Account created and signed in", body = Session),
        (status = 403, description = "Sign-up is closed, or invitation-only and there is no invitation", body = ErrorBody),
        (status = 409, description = "An account with this email exists", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
pub async fn sign_up(
    state: AppState,
    cookie: CookieContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: SignUpRequest = parse_json(&body)?;
    let cookie = cookie.if_requested(request.cookie)?;
    let email = validate::email("email", &request.email)?;
    passwords::validate(&request.password)?;
    if state.signup == SignupPolicy::Disabled {
        return Err(ApiError::Forbidden(
            "sign-up is disabled on this server".into(),
        ));
    }
    let password_hash = passwords::hash(request.password).await?;
    let mut tx = state.store.begin_write().await?;
    let unclaimed = members::unclaimed_active(&mut tx, &email).await?;
    if state.signup == SignupPolicy::InviteOnly
        && unclaimed.is_empty()
        && members::invitations_for(&mut tx, &email).await?.is_empty()
    {
        return Err(ApiError::Forbidden(
            "sign-up is by invitation only, and there is none for this email".into(),
        ));
    }
    let user = User {
        id: new_id(),
        email: email.clone(),
        password_hash,
        created_at: now(),
    };
    users::insert(&mut tx, &user).await.map_err(|err| {
        if err.is_unique_violation() {
            ApiError::conflict("email_taken", "an account with this email already exists")
        } else {
            err.into()
        }
    })?;
    // An Owner made by `bootstrap --owner-email` becomes this user.
    for member in unclaimed {
        members::activate(&mut tx, &member.id, &user.id, now()).await?;
    }
    let session = start_session(&state, &mut tx, &user).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "account created");
    Ok(session_response(
        &state,
        StatusCode::CREATED,
        session,
        cookie,
    ))
}

/// Refuses a sign-in attempt while its email or address has too many recent failures.
async fn check_throttle(state: &AppState, keys: &[(String, i64)]) -> Result<(), ApiError> {
    let now = now();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    for (key, max) in keys {
        let (failures, oldest) =
            signin_failures::count_since(&mut conn, key, now - FAILURE_WINDOW).await?;
        if failures >= *max {
            let free_at = oldest.unwrap_or(now) + FAILURE_WINDOW;
            let wait = free_at.duration_since(now).as_secs().max(1) as u64;
            return Err(ApiError::RateLimited {
                message: format!("too many failed sign-ins; try again in {wait} seconds"),
                retry_after_secs: wait,
            });
        }
    }
    Ok(())
}

#[utoipa::path(
    post, path = "/v1/auth/signin", tag = "accounts",
    request_body = SignInRequest,
    responses(
        (status = 200, description = "Signed in", body = Session),
        (status = 401, description = "Wrong email or password", body = ErrorBody),
        (status = 422, body = ErrorBody),
        (status = 429, description = "Too many failed sign-ins; see Retry-After", body = ErrorBody),
    )
)]
pub async fn sign_in(
    state: AppState,
    addr: Option<SocketAddr>,
    request_id: Option<String>,
    cookie: CookieContext,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request: SignInRequest = parse_json(&body)?;
    let cookie = cookie.if_requested(request.cookie)?;
    let email = request.email.trim().to_lowercase();
    let email_key = format!("email:{email}");
    let mut keys = vec![(email_key.clone(), MAX_FAILURES_PER_EMAIL)];
    if let Some(addr) = addr {
        keys.push((format!("ip:{}", addr.ip()), MAX_FAILURES_PER_ADDRESS));
    }
    check_throttle(&state, &keys).await?;
    let user = {
        let mut conn = state
            .store
            .pool()
            .acquire()
            .await
            .map_err(StoreError::from)?;
        users::by_email(&mut conn, &email).await?
    };
    let matches = passwords::verify(
        request.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let mut tx = state.store.begin_write().await?;
    let Some(user) = user.filter(|_| matches) else {
        let failed: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
        signin_failures::record(&mut tx, &failed, now()).await?;
        tx.commit().await?;
        tracing::warn!(
            request_id = request_id.as_deref().unwrap_or_default(),
            "failed sign-in"
        );
        return Err(ApiError::InvalidCredentials);
    };
    signin_failures::clear(&mut tx, &email_key).await?;
    let session = start_session(&state, &mut tx, &user).await?;
    tx.commit().await?;
    Ok(session_response(&state, StatusCode::OK, session, cookie))
}

#[utoipa::path(
    post, path = "/v1/auth/signout", tag = "accounts",
    responses((status = 204, description = "The session no longer works"), (status = 401, body = ErrorBody), (status = 403, description = "Called with an API key or token, not a session", body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn sign_out(
    state: AppState,
    user: UserSession,
    cookie: CookieContext,
) -> Result<Response, ApiError> {
    let mut tx = state.store.begin_write().await?;
    sessions::delete(&mut tx, &user.session_id).await?;
    tx.commit().await?;
    let mut response = super::no_content();
    if user.csrf_token.is_some() {
        cookie.clear_session(&mut response);
    }
    Ok(response)
}

#[utoipa::path(
    get, path = "/v1/auth/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn who_am_i(state: AppState, session: UserSession) -> Result<Response, ApiError> {
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let user = users::by_id(&mut conn, &session.user_id)
        .await?
        .ok_or(ApiError::Unauthorized)?;
    let mut memberships = Vec::new();
    for member in members::of_user(&mut conn, &user.id).await? {
        if let Some(workspace) = workspaces::get(&mut conn, &member.workspace_id).await? {
            memberships.push(Membership {
                workspace_id: workspace.id,
                workspace_name: workspace.name,
                workspace_slug: workspace.slug,
                member_id: member.id,
                role: member.role,
            });
        }
    }
    let mut invitations = Vec::new();
    for member in members::invitations_for(&mut conn, &user.email).await? {
        if let Some(workspace) = workspaces::get(&mut conn, &member.workspace_id).await? {
            invitations.push(PendingInvitation {
                id: member.id,
                workspace_name: workspace.name,
                workspace_slug: workspace.slug,
                role: member.role,
                invited_at: member.created_at,
            });
        }
    }
    Ok(json_response(
        StatusCode::OK,
        &Me {
            user: user.to_api(),
            memberships,
            invitations,
            csrf_token: session.csrf_token,
        },
    ))
}

#[utoipa::path(
    post, path = "/v1/invitations/{id}/accept", tag = "accounts",
    params(("id" = String, Path, description = "Invitation id (the invited member's id)")),
    responses(
        (status = 200, description = "Joined the workspace", body = Membership),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, description = "No invitation with this id for the signed-in email", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn accept_invitation(
    id: String,
    state: AppState,
    user: UserSession,
) -> Result<Response, ApiError> {
    let mut tx = state.store.begin_write().await?;
    // An invitation for another address is "not found": it is tied to the invited email.
    let invitation: Member = members::invitations_for(&mut tx, &user.email)
        .await?
        .into_iter()
        .find(|member| member.id == id && member.status == MemberStatus::Invited)
        .ok_or(ApiError::NotFound("invitation"))?;
    members::activate(&mut tx, &invitation.id, &user.user_id, now()).await?;
    let workspace = workspaces::get(&mut tx, &invitation.workspace_id)
        .await?
        .ok_or(ApiError::NotFound("invitation"))?;
    audit::record_by_user(
        &mut tx,
        &workspace.id,
        &user,
        Change {
            event: events::MEMBER_JOINED,
            target_type: "member",
            target_id: &invitation.id,
            data: json!({"email": invitation.email, "role": invitation.role}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(json_response(
        StatusCode::OK,
        &Membership {
            workspace_id: workspace.id,
            workspace_name: workspace.name,
            workspace_slug: workspace.slug,
            member_id: invitation.id,
            role: invitation.role,
        },
    ))
}
