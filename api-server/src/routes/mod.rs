//! The HTTP routes: thin warp filters in front of plain async handler functions.

pub mod accounts;
pub mod api_keys;
pub mod audit_logs;
pub mod cookies;
pub mod idempotency;
pub mod members;
pub mod ops;
pub mod tokens;
pub mod webhooks;
pub mod workspaces;

use crate::app::AppState;
use crate::auth::{self, Principal};
use crate::error::ApiError;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use std::convert::Infallible;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
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
        .or(crate::dashboard::routes())
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
    presented()
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
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>("cookie"))
        .and(warp::header::optional::<String>(auth::CSRF_HEADER))
        .and(warp::header::optional::<String>("sec-fetch-site"))
        .and(warp::method())
        .map(
            |authorization, cookie, csrf_token, fetch_site, method: warp::http::Method| {
                auth::Presented {
                    authorization,
                    cookie,
                    csrf_token,
                    fetch_site,
                    safe_method: method == warp::http::Method::GET
                        || method == warp::http::Method::HEAD,
                }
            },
        )
        .boxed()
}

/// The request id the HTTP layer assigned.
pub fn request_id() -> BoxedFilter<(Option<String>,)> {
    warp::header::optional::<String>(crate::http_server::REQUEST_ID_HEADER).boxed()
}

/// The connection's peer address.
pub fn client_addr() -> BoxedFilter<(Option<std::net::SocketAddr>,)> {
    warp::ext::optional::<crate::http_server::ClientAddr>()
        .map(|addr: Option<crate::http_server::ClientAddr>| addr.map(|a| a.0))
        .boxed()
}

fn workspace_slug(path: &str) -> Option<&str> {
    path.strip_prefix("/v1/workspaces/")
        .and_then(|rest| rest.split('/').next())
}

pub fn with_state(state: AppState) -> BoxedFilter<(AppState,)> {
    warp::any().map(move || state.clone()).boxed()
}

/// The raw body, at most `limit` bytes: refused early when the declared length is larger, and
/// cut off while streaming when an undeclared (chunked) body grows past it.
pub fn raw_body(limit: u64) -> BoxedFilter<(Bytes,)> {
    warp::header::optional::<u64>("content-length")
        .and_then(move |length: Option<u64>| async move {
            match length {
                Some(length) if length > limit => {
                    Err(warp::reject::custom(ApiError::PayloadTooLarge(limit)))
                }
                _ => Ok(()),
            }
        })
        .untuple_one()
        .and(warp::body::stream())
        .and_then(move |stream| async move {
            collect_limited(stream, limit)
                .await
                .map_err(warp::reject::custom)
        })
        .boxed()
}

async fn collect_limited<S, B>(stream: S, limit: u64) -> Result<Bytes, ApiError>
where
    S: futures::Stream<Item = Result<B, warp::Error>>,
    B: bytes::Buf,
{
    use futures::StreamExt;
    // Past the limit, read (and drop) a little more so a client still uploading can read the
    // 413 instead of a reset connection; beyond that, stop reading altogether.
    let drain_limit = limit.saturating_mul(4);
    let mut body = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    let mut stream = std::pin::pin!(stream);
    while let Some(chunk) = stream.next().await {
        let mut chunk = chunk
            .map_err(|err| ApiError::InvalidJson(format!("reading the body failed: {err}")))?;
        seen += chunk.remaining() as u64;
        if seen > drain_limit {
            break;
        }
        if seen > limit {
            chunk.advance(chunk.remaining());
            continue;
        }
        while chunk.has_remaining() {
            let part = chunk.chunk();
            let n = part.len();
            body.extend_from_slice(part);
            chunk.advance(n);
        }
    }
    if seen > limit {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    Ok(body.freeze())
}

/// Parses a JSON body, naming the field at fault (`scopes[1]`) when it does not fit `T`.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // Syntax first, so a value of the wrong shape is never reported as malformed JSON.
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|err| ApiError::InvalidJson(err.to_string()))?;
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

/// Parses query parameters, naming the parameter at fault.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
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
