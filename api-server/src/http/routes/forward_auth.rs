//! `/v1/workspaces/{slug}/forward-auth`: a gateway's check of the token its client presented
//! (nginx `auth_request`, ingress-nginx `auth-url`, Traefik `ForwardAuth`, Envoy `ext_authz`).
//! The gateway forwards the client's `Authorization` header; 200 admits the request and names
//! the token to the upstream, 401 and 403 refuse it.
//!
//! No API key is involved, so there is no rate limit: the answer costs what a verify costs,
//! and a gateway calls it on every request of every client.

use crate::http::credentials::{Presented, bearer};
use crate::http::endpoint::{At, Endpoint};
use crate::http::error::ApiError;
use crate::http::extract::{presented, raw_query, with_state};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::Error;
use std::str::FromStr;
use tooken_contract::downstream::{
    REQUIRED_SCOPES_HEADER, TOKEN_ID_HEADER, TOKEN_NAME_HEADER, TOKEN_SCOPES_HEADER,
};
use tooken_contract::tokens::VerifyReason;
use tooken_contract::{ErrorBody, Scope};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode};
use warp::reply::Response;

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    // The slug and whatever path follows `forward-auth`.
    let serve = |at: BoxedFilter<(String, String)>| {
        serve!(
            forward_auth,
            at,
            with_state(state.clone()),
            presented(),
            raw_query(),
            warp::header::optional::<String>(REQUIRED_SCOPES_HEADER),
        )
    };
    vec![
        // Any method: Envoy's ext_authz sends the client's method.
        Endpoint::api_any_method::<__path_forward_auth>(Reach::Own, |at: At| {
            serve(
                at.one()
                    .map(|slug: String| (slug, String::new()))
                    .untuple_one()
                    .boxed(),
            )
        }),
        // Envoy also appends the client's path to the one it is given.
        Endpoint::page(
            "/v1/workspaces/{slug}/forward-auth/{path...}",
            None,
            |at: At| serve(at.two().boxed()),
        ),
    ]
}

/// The scopes a request must hold: every `scope` in the query (unless the path goes on after
/// `forward-auth`, when the query is the client's), and those of `X-Tooken-Required-Scopes`.
fn required_scopes(query: Option<&str>, header: Option<&str>) -> Result<Vec<Scope>, ApiError> {
    let parse = |field: &str, value: &str| {
        Scope::from_str(value).map_err(|_| {
            ApiError::validation(
                field,
                format!("unknown scope `{value}`; the scopes are {}", scope_list()),
            )
        })
    };
    let mut scopes = Vec::new();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if name != "scope" {
            return Err(ApiError::validation(
                name.as_ref(),
                format!("unknown parameter `{name}`; forward-auth takes only `scope`"),
            ));
        }
        scopes.push(parse("scope", &value)?);
    }
    for value in header
        .unwrap_or_default()
        .split([' ', ','])
        .filter(|value| !value.is_empty())
    {
        scopes.push(parse(REQUIRED_SCOPES_HEADER, value)?);
    }
    scopes.sort();
    scopes.dedup();
    Ok(scopes)
}

fn scope_list() -> String {
    Scope::ALL
        .iter()
        .map(|scope| scope.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[utoipa::path(
    method(get, post, put, patch, delete), path = "/v1/workspaces/{slug}/forward-auth", tag = "tokens",
    params(
        ("slug" = String, Path, description = "The workspace whose tokens are admitted"),
        ("scope" = Option<Vec<Scope>>, Query, explode = true,
            description = "A scope the token must hold; repeat for several"),
        ("X-Tooken-Required-Scopes" = Option<String>, Header,
            pattern = r"^[ ,]*((tokens:(read|write|revoke|rotate)|audit:read|webhooks:(read|write))[ ,]*)*$",
            description = "More required scopes, space- or comma-separated, for gateways that cannot set the query"),
    ),
    responses(
        (status = 200, description = "The token works and holds every scope asked for",
            headers(
                ("X-Tooken-Token-Id" = String, description = "The token's id"),
                ("X-Tooken-Token-Name" = String, description = "The token's name, percent-encoded where not printable ASCII"),
                ("X-Tooken-Scopes" = String, description = "The token's scopes, space-separated"),
            )),
        (status = 401, description = "No token, or one that is malformed, unknown, another workspace's, revoked, expired or rotated out", body = ErrorBody),
        (status = 403, description = "The token lacks a scope; the message names it", body = ErrorBody),
        (status = 422, description = "An unknown scope or query parameter", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn forward_auth(
    slug: String,
    tail: String,
    state: AppState,
    presented: Presented,
    query: String,
    required_header: Option<String>,
) -> Result<Response, ApiError> {
    let query = tail.is_empty().then_some(query.as_str());
    let required = required_scopes(query, required_header.as_deref())?;
    let secret = bearer(presented.authorization.as_deref()).map_err(|_| Error::Unauthorized)?;
    let inspection = state
        .inspector()
        .inspect(
            secret.expose(),
            |token| token.workspace_slug == slug,
            &required,
        )
        .await?;
    let token = match (inspection.reason, inspection.token) {
        (VerifyReason::Valid, Some(token)) => token,
        (VerifyReason::InsufficientScope, Some(token)) => {
            let missing: Vec<String> = required
                .iter()
                .filter(|scope| !token.scopes.contains(scope))
                .map(|scope| format!("`{scope}`"))
                .collect();
            let noun = if missing.len() == 1 {
                "scope"
            } else {
                "scopes"
            };
            return Err(Error::Forbidden(format!(
                "this token lacks the {} {noun}",
                missing.join(", ")
            ))
            .into());
        }
        _ => return Err(Error::Unauthorized.into()),
    };
    let scopes: Vec<&str> = token.scopes.iter().map(|scope| scope.as_str()).collect();
    let mut response = warp::http::Response::builder()
        .status(StatusCode::OK)
        .body(Default::default())
        .expect("a static response is valid");
    let headers = response.headers_mut();
    for (name, value) in [
        (TOKEN_ID_HEADER, token.token_id),
        (TOKEN_NAME_HEADER, header_text(&token.name)),
        (TOKEN_SCOPES_HEADER, scopes.join(" ")),
    ] {
        let value = HeaderValue::from_str(&value).expect("ids, scopes and encoded names are ASCII");
        headers.insert(name, value);
    }
    Ok(response)
}

/// `text` with `%` and every byte outside printable ASCII percent-encoded.
fn header_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (b' '..=b'~').contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_become_header_text() {
        assert_eq!(header_text("api-prod 1"), "api-prod 1");
        assert_eq!(header_text("ünï 100%"), "%C3%BCn%C3%AF 100%25");
    }

    #[test]
    fn required_scopes_come_from_the_query_and_the_header() {
        assert_eq!(
            required_scopes(Some("scope=tokens:read&scope=audit%3Aread"), None).unwrap(),
            [Scope::TokensRead, Scope::AuditRead]
        );
        assert_eq!(
            required_scopes(None, Some("tokens:write, tokens:read")).unwrap(),
            [Scope::TokensRead, Scope::TokensWrite]
        );
        assert!(required_scopes(Some(""), None).unwrap().is_empty());
        for (query, header, field) in [
            (Some("scope=tokens:destroy"), None, "scope"),
            (Some("scopes=tokens:read"), None, "scopes"),
            (None, Some("tokens:read nope"), REQUIRED_SCOPES_HEADER),
        ] {
            match required_scopes(query, header) {
                Err(ApiError::Service(Error::Validation {
                    field: got,
                    message,
                })) => {
                    assert_eq!(got, field);
                    // An unknown scope's message lists the real ones.
                    assert!(
                        field == "scopes" || message.contains("tokens:read"),
                        "{message}"
                    );
                }
                other => panic!("{query:?} {header:?}: {other:?}"),
            }
        }
    }
}
