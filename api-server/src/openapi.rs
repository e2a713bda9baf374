//! The OpenAPI document served at `/v1/openapi.json`.

use crate::routes::{accounts, api_keys, audit_logs, members, tokens, webhooks, workspaces};
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
        accounts::sign_up,
        accounts::sign_in,
        accounts::sign_out,
        accounts::who_am_i,
        accounts::accept_invitation,
        workspaces::create_workspace,
        workspaces::get_workspace,
        workspaces::update_workspace,
        members::list_members,
        members::invite_member,
        members::update_member,
        members::remove_member,
        audit_logs::list_audit_logs,
        audit_logs::export_audit_logs,
        webhooks::create_webhook,
        webhooks::list_webhooks,
        webhooks::get_webhook,
        webhooks::update_webhook,
        webhooks::delete_webhook,
        webhooks::rotate_webhook_secret,
        webhooks::list_deliveries,
        webhooks::redeliver,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "tokens", description = "Scoped credentials for downstream systems"),
        (name = "api-keys", description = "Credentials that manage the workspace"),
        (name = "accounts", description = "People: sign up, sign in, sessions, invitations"),
        (name = "workspaces", description = "Workspaces and their settings"),
        (name = "members", description = "Members and roles"),
        (name = "audit", description = "The audit log and its CSV export"),
        (name = "webhooks", description = "Signed webhooks and their delivery log"),
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
    templates.extend(crate::dashboard::PAGE_ROUTES.map(String::from));
    templates.push("/assets/{file}".to_owned());
    templates
}
