//! `/v1/auth/…` and invitations: sign up, sign in (throttled), sign out, who am I, accept.

use super::cookies::{CookieContext, cookie_context};
use crate::auth::{UserSession, csrf_token};
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{client_addr, raw_body, request_id, signed_in, with_state};
use crate::http::parse::parse_json;
use crate::http::reply::{json_response, no_content};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::accounts::{self, Attempt, Started};
use bytes::Bytes;
use std::net::SocketAddr;
use tooken_contract::ErrorBody;
use tooken_contract::accounts::{Me, Membership, Session, SignInRequest, SignUpRequest};
use warp::Filter;
use warp::http::StatusCode;
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let with_state = || with_state(state.clone());
    let signed_in = || signed_in(state.clone());
    let cookie = || cookie_context(state);
    vec![
        Endpoint::api::<__path_sign_up>(Reach::Own, |at| {
            serve!(sign_up, at.plain(), with_state(), cookie(), raw_body())
        }),
        Endpoint::api::<__path_sign_in>(Reach::Own, |at| {
            serve!(
                sign_in,
                at.plain(),
                with_state(),
                client_addr(),
                request_id(),
                cookie(),
                raw_body()
            )
        }),
        Endpoint::api::<__path_sign_out>(Reach::Own, |at| {
            serve!(sign_out, at.plain(), with_state(), signed_in(), cookie())
        }),
        Endpoint::api::<__path_who_am_i>(Reach::Own, |at| {
            serve!(who_am_i, at.plain(), with_state(), signed_in())
        }),
        Endpoint::api::<__path_accept_invitation>(Reach::Own, |at| {
            serve!(accept_invitation, at.one(), with_state(), signed_in())
        }),
    ]
}

/// Hands the secret over in the body, or for the dashboard in an HttpOnly cookie, with the
/// CSRF token its changes must carry.
fn session_response(
    state: &AppState,
    status: StatusCode,
    Started {
        mut session,
        secret,
    }: Started,
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
    let started = accounts::sign_up(&state.store, state.account_rules(), request).await?;
    Ok(session_response(
        &state,
        StatusCode::CREATED,
        started,
        cookie,
    ))
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
    let attempt = Attempt {
        addr: addr.map(|addr| addr.ip()),
        request_id,
    };
    let started = accounts::sign_in(&state.store, state.account_rules(), request, attempt).await?;
    Ok(session_response(&state, StatusCode::OK, started, cookie))
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
    accounts::sign_out(&state.store, &user).await?;
    let mut response = no_content();
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
    let me: Me = accounts::who_am_i(&state.store, session).await?;
    Ok(json_response(StatusCode::OK, &me))
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
    let membership: Membership = accounts::accept_invitation(&state.store, &user, &id).await?;
    Ok(json_response(StatusCode::OK, &membership))
}
