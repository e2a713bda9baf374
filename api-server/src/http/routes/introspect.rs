//! `POST /v1/oauth2/introspect`: OAuth 2.0 Token Introspection (RFC 7662) for downstream
//! services and gateways that speak it. The caller is a protected resource holding an API key,
//! sent as a bearer credential or with HTTP Basic (RFC 7662 §2.1).

use crate::auth::Principal;
use crate::http::credentials::Presented;
use crate::http::endpoint::Endpoint;
use crate::http::error::ApiError;
use crate::http::extract::{authenticated_from, presented, raw_body, with_state};
use crate::http::route_table::Reach;
use crate::http::state::AppState;
use crate::serve;
use crate::service::inspect;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use tooken_contract::ErrorBody;
use tooken_contract::downstream::{IntrospectionRequest, IntrospectionResponse};
use tooken_contract::tokens::VerifyReason;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::Response;

const FORM: &str = "application/x-www-form-urlencoded";

pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    let state = state.clone();
    vec![Endpoint::api::<__path_introspect>(Reach::Workspace, |at| {
        serve!(
            introspect,
            at.plain(),
            with_state(state.clone()),
            authenticated_from(state, basic_or_bearer()),
            warp::header::optional::<String>("content-type"),
            raw_body()
        )
    })]
}

/// The credential of `presented`, also taken from `Authorization: Basic`: the password, or
/// the user name when the password is empty, is the API key. Basic that does not decode is
/// kept as an empty value, which never authenticates.
fn basic_or_bearer() -> BoxedFilter<(Presented,)> {
    presented()
        .map(|mut presented: Presented| {
            if let Some(value) = &presented.authorization
                && let Some((scheme, encoded)) = value.split_once(' ')
                && scheme.eq_ignore_ascii_case("basic")
            {
                let secret = basic_secret(encoded).unwrap_or_default();
                presented.authorization = Some(format!("Bearer {secret}"));
            }
            presented
        })
        .boxed()
}

fn basic_secret(encoded: &str) -> Option<String> {
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    let secret = if password.is_empty() { user } else { password };
    Some(secret.to_owned())
}

/// The form, with the rules of RFC 6749 §3.1: parameters at most once, unknown ones ignored.
fn parse_form(content_type: Option<&str>, body: &[u8]) -> Result<IntrospectionRequest, ApiError> {
    let invalid = |field: &str, message: &str| ApiError::InvalidRequest {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let media_type = content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim);
    if !media_type.is_some_and(|media| media.eq_ignore_ascii_case(FORM)) {
        return Err(invalid(
            "Content-Type",
            "the body must be application/x-www-form-urlencoded (RFC 7662 §2.1)",
        ));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(invalid("", "the form body is not UTF-8"));
    }
    let mut token = None;
    let mut token_type_hint = None;
    for (name, value) in form_urlencoded::parse(body) {
        let slot = match name.as_ref() {
            "token" => &mut token,
            "token_type_hint" => &mut token_type_hint,
            _ => continue,
        };
        if slot.replace(value.into_owned()).is_some() {
            return Err(invalid(&name, &format!("`{name}` is given more than once")));
        }
    }
    match token {
        Some(token) if !token.is_empty() => Ok(IntrospectionRequest {
            token,
            token_type_hint,
        }),
        _ => Err(invalid("token", "the `token` parameter is required")),
    }
}

#[utoipa::path(
    post, path = "/v1/oauth2/introspect", tag = "tokens",
    request_body(content = IntrospectionRequest, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "RFC 7662 §2.2. An inactive, revoked, expired or rotated-out token, \
            or one of another workspace or outside a confined caller's prefix, is exactly `{\"active\": false}`.", body = IntrospectionResponse),
        (status = 400, description = "`invalid_request`: not a form body, `token` missing, or a parameter repeated", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
    ),
    security(("bearer" = []), ("basic" = []))
)]
pub async fn introspect(
    state: AppState,
    principal: Principal,
    content_type: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.pass(inspect::GATE)?;
    let request = parse_form(content_type.as_deref(), &body)?;
    let inspection = state
        .inspector()
        .introspect(&principal, &request.token)
        .await?;
    let answer = match inspection.token {
        Some(token) if inspection.reason == VerifyReason::Valid => {
            let exp = [token.expires_at, token.secret_valid_until]
                .into_iter()
                .flatten()
                .min();
            IntrospectionResponse {
                active: true,
                scope: Some(
                    token
                        .scopes
                        .iter()
                        .map(|scope| scope.as_str())
                        .collect::<Vec<_>>()
                        .join(" "),
                ),
                client_id: Some(token.name),
                token_type: Some("Bearer".into()),
                exp: exp.map(|at| at.as_second()),
                iat: Some(token.issued_at.as_second()),
                sub: Some(token.token_id),
            }
        }
        _ => IntrospectionResponse::inactive(),
    };
    let mut response = crate::http::reply::json_response(StatusCode::OK, &answer);
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_takes_the_password_or_else_the_user() {
        let encode = |text: &str| STANDARD.encode(text);
        assert_eq!(basic_secret(&encode("me:key")).as_deref(), Some("key"));
        assert_eq!(basic_secret(&encode("key:")).as_deref(), Some("key"));
        assert_eq!(basic_secret(&encode("no-colon")), None);
        assert_eq!(basic_secret("%%%"), None);
    }

    #[test]
    fn the_form_is_checked() {
        let form = Some(FORM);
        let ok = parse_form(form, b"token=abc&token_type_hint=access_token&other=1").unwrap();
        assert_eq!(ok.token, "abc");
        assert_eq!(ok.token_type_hint.as_deref(), Some("access_token"));
        let charset = Some("application/x-www-form-urlencoded; charset=UTF-8");
        assert_eq!(parse_form(charset, b"token=a%2Bb").unwrap().token, "a+b");
        for (content_type, body, field) in [
            (form, &b"token_type_hint=x"[..], "token"),
            (form, b"token=", "token"),
            (form, b"token=a&token=b", "token"),
            (form, b"token=\xff", ""),
            (
                Some("application/json"),
                br#"{"token":"a"}"#,
                "Content-Type",
            ),
            (None, b"token=a", "Content-Type"),
        ] {
            match parse_form(content_type, body) {
                Err(ApiError::InvalidRequest { field: got, .. }) => assert_eq!(got, field),
                other => panic!("{content_type:?} {body:?}: {other:?}"),
            }
        }
    }
}
