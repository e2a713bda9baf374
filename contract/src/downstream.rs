//! What downstream services and gateways use to check a token without code of their own:
//! OAuth 2.0 Token Introspection (RFC 7662) and the forward-auth endpoint for gateways.

use serde::{Deserialize, Serialize};

/// The form body of `POST /v1/oauth2/introspect` (RFC 7662 §2.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntrospectionRequest {
    /// The token secret presented to your service.
    #[schema(min_length = 1)]
    pub token: String,
    /// Optional; any value is accepted and the search is the same (RFC 7662 §2.1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type_hint: Option<String>,
}

/// The answer of `POST /v1/oauth2/introspect` (RFC 7662 §2.2). An inactive token, or one of
/// another workspace, is exactly `{"active": false}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct IntrospectionResponse {
    pub active: bool,
    /// The token's scopes, space-separated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The token's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// Always `Bearer`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// When the presented secret stops working (seconds since the epoch): the token's expiry,
    /// or the end of a rotated secret's grace period. Absent for a token that never expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// When the presented secret was issued (seconds since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The token's id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
}

impl IntrospectionResponse {
    pub fn inactive() -> IntrospectionResponse {
        IntrospectionResponse {
            active: false,
            scope: None,
            client_id: None,
            token_type: None,
            exp: None,
            iat: None,
            sub: None,
        }
    }
}

/// Forward-auth's answer headers for the upstream, on a 200.
pub const TOKEN_ID_HEADER: &str = "x-tooken-token-id";
/// The token's name, percent-encoded (RFC 3986) where it is not printable ASCII.
pub const TOKEN_NAME_HEADER: &str = "x-tooken-token-name";
/// The token's scopes, space-separated.
pub const TOKEN_SCOPES_HEADER: &str = "x-tooken-scopes";
/// A request header with more scopes forward-auth must find, space- or comma-separated, for
/// gateways that cannot put them in the query (Envoy's `ext_authz`).
pub const REQUIRED_SCOPES_HEADER: &str = "x-tooken-required-scopes";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inactive_is_exactly_active_false() {
        assert_eq!(
            serde_json::to_string(&IntrospectionResponse::inactive()).unwrap(),
            r#"{"active":false}"#
        );
    }
}
