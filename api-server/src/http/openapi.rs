//! The OpenAPI document served at `/v1/openapi.json`.

use crate::http::endpoint::Endpoint;
use utoipa::openapi::request_body::RequestBody;
use utoipa::openapi::schema::{Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

/// The document's frame; its paths come from the endpoints (`document`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Tooken API",
        description = "Scoped tokens and API keys. Authenticate with `Authorization: Bearer tok_live_…`."
    ),
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
        // RFC 7662 §2.1: an introspecting resource may send its API key with HTTP Basic.
        components.add_security_scheme(
            "basic",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Basic)
                    .description(Some(
                        "The API key as the password (any user name), or as the user name with an empty password",
                    ))
                    .build(),
            ),
        );
    }
}

/// The error answers any operation can get, by what the operation takes: a body can be
/// malformed, too large or too slow (400, 413, 408); a body, query or header can be invalid
/// (422); every credential can be rate-limited (429); the database can be down (503).
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.patch,
                &mut item.delete,
            ];
            for operation in operations.into_iter().flatten() {
                if let Some(RefOr::T(body)) = &mut operation.request_body {
                    never_null(body);
                }
                let has_body = operation.request_body.is_some();
                let has_inputs = operation
                    .parameters
                    .as_ref()
                    .is_some_and(|params| !params.is_empty());
                let mut add = |status: &str, description: &str| {
                    operation
                        .responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| error_response(description));
                };
                if has_body {
                    add(
                        "400",
                        "`invalid_json`: the body is not JSON, or an object in it repeats a key",
                    );
                    add(
                        "408",
                        "`request_timeout`: the body did not arrive in time (TOOKEN_BODY_READ_TIMEOUT_MS)",
                    );
                    add(
                        "413",
                        "`payload_too_large`: the body is over the limit (TOOKEN_MAX_BODY_BYTES)",
                    );
                }
                if has_body || has_inputs {
                    add(
                        "422",
                        "`validation_failed`: a field, parameter or header is invalid; `field` names it",
                    );
                }
                add(
                    "429",
                    "`rate_limited`: the credential spent its allowance; `Retry-After` says when to retry",
                );
                add(
                    "503",
                    "`unavailable`: the database cannot be reached; nothing was written",
                );
            }
        }
    }
}

/// An optional body may be absent, but not `null` (the server answers that with 422), so
/// utoipa's `oneOf: [T, null]` for an `Option<T>` body becomes `T`.
fn never_null(body: &mut RequestBody) {
    let is_null = |schema: &RefOr<Schema>| {
        matches!(schema, RefOr::T(Schema::Object(object))
            if object.schema_type == SchemaType::Type(Type::Null))
    };
    for content in body.content.values_mut() {
        let RefOr::T(content) = content else { continue };
        if let Some(RefOr::T(Schema::OneOf(one_of))) = &content.schema {
            let mut rest = one_of.items.iter().filter(|item| !is_null(item));
            if let (Some(only), None) = (rest.next(), rest.next()) {
                content.schema = Some(only.clone());
            }
        }
    }
}

fn error_response(description: &str) -> RefOr<Response> {
    RefOr::T(
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build(),
    )
}

/// The document of `endpoints`: each documented one's operation and schemas, then the
/// security schemes and the error answers every operation can get.
pub fn document(endpoints: &[Endpoint]) -> utoipa::openapi::OpenApi {
    let mut doc = ApiDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    for endpoint in endpoints {
        let Some(documented) = &endpoint.documented else {
            continue;
        };
        doc.paths.add_path_operation(
            endpoint.template.as_string(),
            documented.methods.clone(),
            documented.operation.clone(),
        );
        components
            .schemas
            .extend(documented.schemas.iter().cloned());
    }
    BearerAuth.modify(&mut doc);
    CommonResponses.modify(&mut doc);
    doc
}
