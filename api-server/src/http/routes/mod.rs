//! The HTTP routes: thin warp filters in front of plain async handler functions.

pub mod accounts;
pub mod api_keys;
pub mod audit_logs;
pub mod cookies;
pub mod forward_auth;
pub mod idempotency;
pub mod introspect;
pub mod members;
pub mod ops;
pub mod tokens;
pub mod webhooks;
pub mod workspaces;

use crate::app::AppState;
use crate::auth::{self, Principal};
use crate::http::error::ApiError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

/// Every route, with rejections turned into the JSON error bodies of SPEC §3.
pub fn all(state: AppState) -> BoxedFilter<(Response,)> {
    ops::routes(state.clone())
        .or(tokens::routes(state.clone()))
        .unify()
        .or(api_keys::routes(state.clone()))
        .unify()
        .or(accounts::routes(state.clone()))
        .unify()
        .or(workspaces::routes(state.clone()))
        .unify()
        .or(members::routes(state.clone()))
        .unify()
        .or(audit_logs::routes(state.clone()))
        .unify()
        .or(webhooks::routes(state.clone()))
        .unify()
        .or(introspect::routes(state.clone()))
        .unify()
        .or(forward_auth::routes(state.clone()))
        .unify()
        .or(crate::http::dashboard::routes())
        .unify()
        .recover(move |rejection| recover(rejection, state.max_body_bytes))
        .unify()
        .boxed()
}

/// Matches `/v1` and `/v1/workspaces/{slug}`; the slug is checked by `authenticated`.
pub fn v1() -> BoxedFilter<()> {
    warp::path("v1")
        .and(
            warp::path("workspaces")
                .and(warp::path::param::<String>())
                .map(|_slug: String| ())
                .untuple_one()
                .or(warp::any())
                .unify(),
        )
        .boxed()
}

/// The caller, authenticated from its credential, in the workspace it addresses.
pub fn authenticated(state: AppState) -> BoxedFilter<(Principal,)> {
    authenticated_from(state, presented())
}

/// `authenticated`, with the credential taken by `presented`.
pub fn authenticated_from(
    state: AppState,
    presented: BoxedFilter<(auth::Presented,)>,
) -> BoxedFilter<(Principal,)> {
    presented
        .and(warp::path::full())
        .and(request_id())
        .and_then(
            move |presented: auth::Presented, path: warp::path::FullPath, request_id| {
                let state = state.clone();
                async move {
                    let facts = auth::RequestFacts {
                        presented,
                        slug: workspace_slug(path.as_str()),
                        request_id,
                    };
                    let principal = auth::authenticate(&state.store, &state.usage, facts)
                        .await
                        .map_err(warp::reject::custom)?;
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
        .and_then(move |presented: auth::Presented, request_id| {
            let state = state.clone();
            async move {
                let user = auth::authenticate_user(&state.store, &presented, request_id)
                    .await
                    .map_err(warp::reject::custom)?;
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
            warp::reject::custom(ApiError::RateLimited {
                message: "too many requests with this credential; slow down and retry".into(),
                retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
            })
        })
}

/// The credential as the request presents it: bearer header or session cookie, and the
/// facts the CSRF check needs.
pub fn presented() -> BoxedFilter<(auth::Presented,)> {
    warp::header::headers_cloned()
        .and(warp::method())
        .map(|headers: HeaderMap, method: warp::http::Method| {
            let text = |name: &str| {
                headers
                    .get(name)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned)
            };
            auth::Presented {
                authorization: authorization(&headers),
                cookie: text("cookie"),
                csrf_token: text(auth::CSRF_HEADER),
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

/// Parses a JSON body, naming the field at fault (`scopes[1]`) when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so a value of the wrong shape is never reported as malformed JSON.
    let value = crate::http::strict_json::from_slice(body)
        .map_err(|err| ApiError::InvalidJson(err.to_string()))?;
    if !value.is_object() {
        return Err(ApiError::validation(
            "",
            "the request body must be a JSON object",
        ));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field =
            unknown_field_name(&message).unwrap_or(if path == "." { String::new() } else { path });
        let message = explain(&field, message);
        ApiError::validation(field, message)
    })
}

/// Like `parse_json`, but an empty body means `T::default()`.
pub fn parse_json_or_default<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        Ok(T::default())
    } else {
        parse_json(body)
    }
}

/// Rewords serde's messages for the fields where they would puzzle a caller.
fn explain(field: &str, message: String) -> String {
    if field.starts_with("scopes") {
        message.replacen("unknown variant", "unknown scope", 1)
    } else if field.ends_with("_at") && !message.starts_with("invalid type: null") {
        format!("{field} must be an RFC 3339 timestamp such as 2030-01-31T00:00:00Z ({message})")
    } else {
        message
    }
}

/// serde reports an unknown or missing field at its parent's path; name the field itself.
fn unknown_field_name(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    Some(rest[..rest.find('`')?].to_owned())
}

/// The raw query string (empty when there is none).
pub fn raw_query() -> BoxedFilter<(String,)> {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .boxed()
}

/// Parses query parameters, naming the parameter at fault. A NUL character is refused: no
/// parameter needs one, and PostgreSQL cannot compare text with it.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    if let Some((name, _)) =
        form_urlencoded::parse(query.as_bytes()).find(|(_, value)| value.contains('\0'))
    {
        return Err(ApiError::validation(
            name.into_owned(),
            "must not contain a NUL character",
        ));
    }
    let deserializer =
        serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
    serde_path_to_error::deserialize(deserializer).map_err(|err| {
        let path = err.path().to_string();
        let message = err.into_inner().to_string();
        let field = unknown_field_name(&message).unwrap_or(path);
        ApiError::validation(field, message)
    })
}

/// The response to a handler's result.
pub fn respond(result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(ApiError::into_response)
}

pub fn no_content() -> Response {
    warp::http::Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Default::default())
        .expect("a static response is valid")
}

pub fn json_response<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    warp::reply::with_status(warp::reply::json(body), status).into_response()
}

async fn recover(rejection: Rejection, body_limit: u64) -> Result<Response, Infallible> {
    if let Some(err) = rejection.find::<ApiError>() {
        return Ok(err.to_response());
    }
    let error = if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::PayloadTooLarge(body_limit)
    } else if rejection.find::<warp::reject::InvalidHeader>().is_some() {
        ApiError::validation("headers", "a request header has an invalid value")
    } else if rejection.find::<warp::reject::InvalidQuery>().is_some() {
        ApiError::validation("query", "the query string is invalid")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::MethodNotAllowed
    } else if rejection.is_not_found() {
        ApiError::RouteNotFound
    } else {
        ApiError::Internal(anyhow::anyhow!("unhandled rejection: {rejection:?}"))
    };
    Ok(error.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tooken_contract::tokens::CreateTokenRequest;

    #[test]
    fn wrong_types_name_the_field() {
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":["tokens:read", 5]}"#)
            .unwrap_err();
        match err {
            ApiError::Validation { field, .. } => assert_eq!(field, "scopes[1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unknown_fields_and_scopes_are_named() {
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":[],"colour":1}"#)
            .unwrap_err();
        assert!(
            matches!(err, ApiError::Validation { ref field, .. } if field == "colour"),
            "{err:?}"
        );
        let err = parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":["tokens:destroy"]}"#)
            .unwrap_err();
        match err {
            ApiError::Validation { field, message } => {
                assert_eq!(field, "scopes[0]");
                assert!(message.contains("tokens:destroy"), "{message}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_json_is_a_syntax_error() {
        assert!(matches!(
            parse_json::<CreateTokenRequest>(br#"{"name":"#),
            Err(ApiError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_json::<CreateTokenRequest>(br#"{"name":"a","scopes":[]} trailing"#),
            Err(ApiError::InvalidJson(_))
        ));
    }
}
