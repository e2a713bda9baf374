//! The warp filters in front of the handlers: the caller, authenticated and within its rate
//! limit; the presented credential; request id, peer address, raw body and query.

use crate::auth::{self, Principal};
use crate::http::credentials::{CSRF_HEADER, Presented};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::service::Error;
use bytes::Bytes;
use warp::filters::BoxedFilter;
use warp::http::HeaderMap;
use warp::{Filter, Rejection};

/// The caller, authenticated from its credential, in the workspace it addresses.
pub fn authenticated(state: AppState) -> BoxedFilter<(Principal,)> {
    authenticated_from(state, presented())
}

/// `authenticated`, with the credential taken by `presented`.
pub fn authenticated_from(
    state: AppState,
    presented: BoxedFilter<(Presented,)>,
) -> BoxedFilter<(Principal,)> {
    presented
        .and(warp::path::full())
        .and(request_id())
        .and_then(
            move |presented: Presented, path: warp::path::FullPath, request_id| {
                let state = state.clone();
                async move {
                    let facts = auth::RequestFacts {
                        presented: presented.secret().map_err(warp::reject::custom)?,
                        slug: workspace_slug(path.as_str()),
                        request_id,
                    };
                    let principal = auth::authenticate(&state.store, &state.usage, facts)
                        .await
                        .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
                    within_rate_limit(&state, principal.credential_id())?;
                    Ok::<_, Rejection>(principal)
                }
            },
        )
        .boxed()
}

/// The state and the authenticated caller: what nearly every `/v1` handler takes first.
pub fn caller(state: AppState) -> BoxedFilter<(AppState, Principal)> {
    with_state(state.clone()).and(authenticated(state)).boxed()
}

/// A signed-in person (session credentials only), for routes outside any one workspace.
pub fn signed_in(state: AppState) -> BoxedFilter<(auth::UserSession,)> {
    presented()
        .and(request_id())
        .and_then(move |presented: Presented, request_id| {
            let state = state.clone();
            async move {
                let presented = presented.secret().map_err(warp::reject::custom)?;
                let user = auth::authenticate_user(&state.store, presented, request_id)
                    .await
                    .map_err(|err| warp::reject::custom(ApiError::from(err)))?;
                within_rate_limit(&state, &user.session_id)?;
                Ok::<_, Rejection>(user)
            }
        })
        .boxed()
}

/// Spends one request of the credential's allowance, or refuses with 429 and `Retry-After`.
fn within_rate_limit(state: &AppState, credential_id: &str) -> Result<(), Rejection> {
    state
        .rate_limiter
        .check(credential_id, std::time::Instant::now())
        .map_err(|wait| {
            warp::reject::custom(ApiError::from(Error::RateLimited {
                message: "too many requests with this credential; slow down and retry".into(),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            }))
        })
}

/// The credential as the request presents it: bearer header or session cookie, and the
/// facts the CSRF check needs.
pub fn presented() -> BoxedFilter<(Presented,)> {
    warp::header::headers_cloned()
        .and(warp::method())
        .map(|headers: HeaderMap, method: warp::http::Method| {
            let text = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            Presented {
                authorization: authorization(&headers),
                cookie: text("cookie"),
                csrf_token: text(CSRF_HEADER),
                fetch_site: text("sec-fetch-site"),
                safe_method: method == warp::http::Method::GET
                    || method == warp::http::Method::HEAD,
            }
        })
        .boxed()
}

/// The `Authorization` header. One that is not ASCII, or a second one, is kept as an empty
/// value, which never authenticates: an ambiguous credential gets the 401 of a wrong one, not
/// whichever header a parser happens to pick.
fn authorization(headers: &HeaderMap) -> Option<String> {
    let mut values = headers.get_all(warp::http::header::AUTHORIZATION).iter();
    let first = values.next()?;
    if values.next().is_some() {
        return Some(String::new());
    }
    Some(first.to_str().map(str::to_owned).unwrap_or_default())
}

/// The request id the HTTP layer assigned.
pub fn request_id() -> BoxedFilter<(Option<String>,)> {
    warp::header::optional::<String>(crate::http::server::REQUEST_ID_HEADER).boxed()
}

/// The connection's peer address.
pub fn client_addr() -> BoxedFilter<(Option<std::net::SocketAddr>,)> {
    warp::ext::optional::<crate::http::server::ClientAddr>()
        .map(|addr: Option<crate::http::server::ClientAddr>| addr.map(|a| a.0))
        .boxed()
}

fn workspace_slug(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/workspaces/")
        .and_then(|rest| rest.split('/').next())
}

pub fn with_state(state: AppState) -> BoxedFilter<(AppState,)> {
    warp::any().map(move || state.clone()).boxed()
}

/// The raw body. `http_server` has already read it whole, within the size and time limits.
pub fn raw_body() -> BoxedFilter<(Bytes,)> {
    warp::body::bytes().boxed()
}

/// The raw query string (empty when there is none).
pub fn raw_query() -> BoxedFilter<(String,)> {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .boxed()
}
