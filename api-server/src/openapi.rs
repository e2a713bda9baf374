//! The OpenAPI document served at `/v1/openapi.json`.

use crate::routes::{api_keys, tokens};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tooken API",
        description = "Scoped tokens and API keys. Authenticate with `Authorization: Bearer tok_live_…`."
    ),
    paths(
        tokens::create_token,
        tokens::list_tokens,
        tokens::get_token,
        tokens::rotate_token,
        tokens::revoke_token,
        tokens::verify_token,
        api_keys::create_api_key,
        api_keys::list_api_keys,
        api_keys::get_api_key,
        api_keys::regenerate_api_key,
        api_keys::delete_api_key,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "Scoped credentials for downstream systems"),
        (name = "api-keys", description = "Credentials that manage the workspace"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route template the server answers, for metrics labels.
pub fn route_templates() -> Vec<String> {
    let mut templates: Vec<String> = ApiDoc::openapi().paths.paths.keys().cloned().collect();
    templates.extend(["/healthz", "/readyz", "/metrics", "/v1/openapi.json"].map(String::from));
    templates
}
