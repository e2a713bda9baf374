//! The handlers, one file per resource, and the list of every endpoint the server answers.
//! Each handler parses, calls its service, and answers.

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

use crate::http::endpoint::Endpoint;
use crate::http::openapi;
use crate::http::reply::recover;
use crate::http::route_table::{RouteTable, Template};
use crate::http::state::AppState;
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::Method;
use warp::reply::Response;

/// Every endpoint of the API, in the order warp tries them.
pub fn endpoints(state: &AppState) -> Vec<Endpoint> {
    [
        tokens::endpoints(state),
        api_keys::endpoints(state),
        accounts::endpoints(state),
        workspaces::endpoints(state),
        members::endpoints(state),
        audit_logs::endpoints(state),
        webhooks::endpoints(state),
        introspect::endpoints(state),
        forward_auth::endpoints(state),
        crate::http::dashboard::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// The endpoints as one filter, with rejections turned into JSON error bodies.
fn all(state: &AppState, endpoints: Vec<Endpoint>) -> BoxedFilter<(Response,)> {
    let body_limit = state.max_body_bytes;
    either(
        endpoints
            .into_iter()
            .map(|endpoint| endpoint.filter)
            .collect(),
    )
    .recover(move |rejection| recover(rejection, body_limit))
    .unify()
    .boxed()
}

/// `filters`, tried in order. Combined as a balanced tree, so a request passes through a
/// handful of boxed filters on its way to any endpoint, not one per endpoint before it.
fn either(mut filters: Vec<BoxedFilter<(Response,)>>) -> BoxedFilter<(Response,)> {
    if filters.len() == 1 {
        return filters.pop().expect("one filter");
    }
    let second_half = filters.split_off(filters.len() / 2);
    either(filters).or(either(second_half)).unify().boxed()
}

/// The server's routes: the filter that answers them and the table that labels them.
pub struct Routes {
    pub filter: BoxedFilter<(Response,)>,
    pub table: RouteTable,
}

pub fn build(state: &AppState) -> Routes {
    let api = endpoints(state);
    let document = openapi::document(&api);
    // The probes first: they are the cheapest to answer and are asked most steadily.
    let mut endpoints = ops::endpoints(state);
    endpoints.push(ops::document(&document));
    endpoints.extend(api);
    let table = route_table(&endpoints);
    Routes {
        filter: all(state, endpoints),
        table,
    }
}

/// Each template with its methods, in the order an `Allow` header lists them.
fn route_table(endpoints: &[Endpoint]) -> RouteTable {
    const ORDER: [Method; 5] = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
    ];
    let mut grouped: Vec<(Template, Vec<Method>)> = Vec::new();
    for endpoint in endpoints {
        let methods = endpoint.methods.clone().unwrap_or_else(|| ORDER.to_vec());
        let template = endpoint.template.as_string();
        match grouped
            .iter_mut()
            .find(|(known, _)| known.as_string() == template)
        {
            Some((_, known)) => known.extend(methods),
            None => grouped.push((endpoint.template.clone(), methods)),
        }
    }
    for (_, methods) in &mut grouped {
        methods.sort_by_key(|method| ORDER.iter().position(|m| m == method));
        methods.dedup();
    }
    RouteTable::new(grouped)
}
