//! The dashboard: static files embedded in the binary, served with a strict Content Security
//! Policy. The pages call the same `/v1` API as everyone else, with the session cookie.

use crate::audit::events;
use crate::http::endpoint::Endpoint;
use bytes::Bytes;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use tooken_contract::Scope;
use tooken_contract::webhooks::EVENT_TYPES;
use warp::http::{HeaderValue, Method, StatusCode, header};
use warp::reply::Response;
use warp::{Filter, Reply};

/// Scripts and styles only from this server, no inline code, no framing, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
    style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; \
    frame-ancestors 'none'; base-uri 'none'";

/// The dashboard's paths; each answers with the same page, whose script routes on the path.
pub const PAGE_ROUTES: [&str; 8] = [
    "/",
    "/sign-in",
    "/sign-up",
    "/workspaces/new",
    "/w",
    "/w/{slug}/{page}",
    "/w/{slug}/{page}/{id}",
    "/w/{path...}",
];

const INDEX: &str = include_str!("../../dashboard/index.html");

/// Every file under `/assets/`, with its content type.
const ASSETS: [(&str, &str, &str); 12] = [
    ("app.js", JS, include_str!("../../dashboard/app.js")),
    ("router.js", JS, include_str!("../../dashboard/router.js")),
    ("api.js", JS, include_str!("../../dashboard/api.js")),
    ("dom.js", JS, include_str!("../../dashboard/dom.js")),
    ("time.js", JS, include_str!("../../dashboard/time.js")),
    ("layout.js", JS, include_str!("../../dashboard/layout.js")),
    ("auth.js", JS, include_str!("../../dashboard/auth.js")),
    ("tokens.js", JS, include_str!("../../dashboard/tokens.js")),
    (
        "settings.js",
        JS,
        include_str!("../../dashboard/settings.js"),
    ),
    ("audit.js", JS, include_str!("../../dashboard/audit.js")),
    (
        "webhooks.js",
        JS,
        include_str!("../../dashboard/webhooks.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../../dashboard/style.css"),
    ),
];
const JS: &str = "text/javascript; charset=utf-8";

/// The names of the files under `/assets/`.
pub fn asset_names() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(name, _, _)| *name)
}

struct File {
    content_type: &'static str,
    /// Shared, so answering a request copies no bytes.
    body: Bytes,
    etag: String,
}

impl File {
    fn new(content_type: &'static str, body: Bytes) -> File {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..16]);
        File {
            content_type,
            body,
            etag,
        }
    }

    /// The file, or 304 when the browser's copy is current.
    fn reply(&self, if_none_match: Option<String>) -> Response {
        let mut response = if if_none_match.as_deref() == Some(self.etag.as_str()) {
            warp::reply::with_status(String::new(), StatusCode::NOT_MODIFIED).into_response()
        } else {
            Response::new(self.body.clone().into())
        };
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        headers.insert(
            header::ETAG,
            HeaderValue::from_str(&self.etag).expect("hex"),
        );
        // Revalidate every time: a new server version must never run with old scripts.
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        add_security_headers(&mut response);
        response
    }
}

pub fn add_security_headers(response: &mut Response) {
    let headers = response.headers_mut();
    for (name, value) in [
        ("content-security-policy", CONTENT_SECURITY_POLICY),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
}

/// The scopes, event types and roles the pages offer, from the same constants the API
/// checks, inlined as data (not code) so the CSP still forbids inline scripts.
fn catalog() -> String {
    let mut audit_types: Vec<&str> = EVENT_TYPES.to_vec();
    audit_types.push(events::WORKSPACE_CREATED);
    audit_types.sort_unstable();
    let catalog = json!({
        "scopes": Scope::ALL.map(|scope| json!({
            "name": scope.as_str(),
            "description": scope.description(),
        })),
        "webhook_event_types": EVENT_TYPES,
        "audit_event_types": audit_types,
        "version": env!("CARGO_PKG_VERSION"),
    });
    // `<` cannot end the script element when escaped; JSON reads it the same.
    catalog.to_string().replace('<', "\\u003c")
}

fn index_page() -> File {
    let body = INDEX.replace("{{catalog}}", &catalog());
    File::new("text/html; charset=utf-8", Bytes::from(body))
}

pub fn endpoints() -> Vec<Endpoint> {
    let index = Arc::new(index_page());
    let assets: Arc<Vec<(&str, File)>> = Arc::new(
        ASSETS
            .iter()
            .map(|(name, content_type, body)| {
                (
                    *name,
                    File::new(content_type, Bytes::from_static(body.as_bytes())),
                )
            })
            .collect(),
    );
    let etag = || warp::header::optional::<String>("if-none-match");
    let get = || Some(vec![Method::GET]);
    let asset = Endpoint::page("/assets/{file}", get(), |at| {
        at.one()
            .and(etag())
            .and_then(move |name: String, if_none_match| {
                let assets = assets.clone();
                async move {
                    match assets.iter().find(|(file, _)| *file == name) {
                        Some((_, file)) => Ok(file.reply(if_none_match)),
                        None => Err(warp::reject::not_found()),
                    }
                }
            })
            .boxed()
    });
    let pages = PAGE_ROUTES.map(|template| {
        let index = index.clone();
        Endpoint::page(template, get(), |at| {
            at.filter()
                .and(etag())
                .map(move |_, if_none_match| index.reply(if_none_match))
                .boxed()
        })
    });
    std::iter::once(asset).chain(pages).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_lists_every_scope_with_its_description() {
        let catalog: serde_json::Value = serde_json::from_str(&catalog()).unwrap();
        let scopes = catalog["scopes"].as_array().unwrap();
        assert_eq!(scopes.len(), Scope::ALL.len());
        assert_eq!(scopes[0]["name"], "tokens:read");
        assert_eq!(scopes[0]["description"], "List and retrieve token metadata");
        assert!(
            catalog["audit_event_types"]
                .as_array()
                .unwrap()
                .contains(&json!("workspace.created"))
        );
    }

    #[test]
    fn the_page_inlines_the_catalog_as_data() {
        let page = String::from_utf8(index_page().body.to_vec()).unwrap();
        assert!(!page.contains("{{catalog}}"));
        assert!(page.contains(r#"<script type="application/json" id="catalog">{"#));
        // No inline code: the CSP would refuse it anyway.
        assert!(!page.contains("<script>"));
        let handler = page
            .split_whitespace()
            .find(|word| word.starts_with("on") && word.contains('='));
        assert_eq!(handler, None, "no inline event handlers");
    }
}
