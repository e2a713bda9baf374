//! Maps a request path to its route template (`/v1/tokens/{id}`) for metrics and logs, so
//! label values stay bounded whatever paths clients send.

use warp::http::{HeaderValue, Method};

pub struct RouteTable {
    routes: Vec<Route>,
}

struct Route {
    segments: Vec<String>,
    /// The `Allow` header of a 405 on this route: its methods, comma-separated.
    allow: HeaderValue,
}

const WORKSPACE_PREFIX: [&str; 3] = ["v1", "workspaces", "{slug}"];

impl RouteTable {
    /// `routes`: each template with the methods it answers.
    pub fn new<I: IntoIterator<Item = (String, Vec<Method>)>>(routes: I) -> RouteTable {
        RouteTable {
            routes: routes
                .into_iter()
                .map(|(template, methods)| Route {
                    segments: template
                        .trim_start_matches('/')
                        .split('/')
                        .map(str::to_owned)
                        .collect(),
                    allow: HeaderValue::from_str(
                        &methods
                            .iter()
                            .map(Method::as_str)
                            .collect::<Vec<_>>()
                            .join(", "),
                    )
                    .expect("method names are valid header text"),
                })
                .collect(),
        }
    }

    pub fn template_of(&self, path: &str) -> String {
        let (scoped, matched) = self.find(path);
        match matched {
            Some(route) if route.in_workspace() => format!("/{}", route.segments.join("/")),
            Some(route) => {
                let rest = if scoped {
                    &route.segments[1..]
                } else {
                    &route.segments[..]
                };
                let prefix: &[&str] = if scoped { &WORKSPACE_PREFIX } else { &[] };
                let parts: Vec<&str> = prefix
                    .iter()
                    .copied()
                    .chain(rest.iter().map(String::as_str))
                    .collect();
                format!("/{}", parts.join("/"))
            }
            None => "unmatched".to_owned(),
        }
    }

    /// The methods `path` answers, as an `Allow` header value (RFC 9110 §15.5.6).
    pub fn allow(&self, path: &str) -> Option<&HeaderValue> {
        self.find(path).1.map(|route| &route.allow)
    }

    /// The route `path` belongs to, and whether it came under `/v1/workspaces/{slug}`.
    fn find(&self, path: &str) -> (bool, Option<&Route>) {
        let full: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let mut segments = full.clone();
        // `/v1/workspaces/{slug}/…` answers the same routes as `/v1/…`.
        let scoped = segments.len() > 3 && segments[0] == "v1" && segments[1] == "workspaces";
        if scoped {
            segments.drain(1..3);
        }
        // The most literal match wins: `/v1/tokens/verify` over `/v1/tokens/{id}`. A route
        // declared under `/v1/workspaces/{slug}` only is matched against the whole path.
        let matched = self
            .routes
            .iter()
            .filter(|route| {
                let segments = if route.in_workspace() {
                    &full
                } else {
                    &segments
                };
                route.matches(segments)
            })
            .max_by_key(|route| {
                route
                    .segments
                    .iter()
                    .filter(|t| !t.starts_with('{'))
                    .count()
            });
        (scoped, matched)
    }
}

impl Route {
    fn in_workspace(&self) -> bool {
        self.segments.len() > 3 && self.segments[..3] == WORKSPACE_PREFIX
    }

    /// `{name}` matches one segment; a last `{name...}` matches all the rest (one or more).
    fn matches(&self, segments: &[&str]) -> bool {
        let rest_at = self
            .segments
            .last()
            .filter(|last| last.ends_with("...}"))
            .map(|_| self.segments.len() - 1);
        let fits = match rest_at {
            Some(at) => segments.len() > at,
            None => self.segments.len() == segments.len(),
        };
        fits && self
            .segments
            .iter()
            .zip(segments)
            .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_templates() {
        let table = RouteTable::new(
            [
                "/v1/tokens",
                "/v1/tokens/{id}",
                "/v1/tokens/verify",
                "/healthz",
            ]
            .map(|t| (t.to_owned(), vec![Method::GET])),
        );
        assert_eq!(table.template_of("/v1/tokens"), "/v1/tokens");
        assert_eq!(table.template_of("/v1/tokens/verify"), "/v1/tokens/verify");
        assert_eq!(table.template_of("/v1/tokens/0190-ab"), "/v1/tokens/{id}");
        assert_eq!(
            table.template_of("/v1/workspaces/prod/tokens/x"),
            "/v1/workspaces/{slug}/tokens/{id}"
        );
        assert_eq!(table.template_of("/healthz"), "/healthz");
        let table = RouteTable::new(
            [
                "/v1/workspaces/{slug}/forward-auth",
                "/v1/workspaces/{slug}/forward-auth/{path...}",
            ]
            .map(|t| (t.to_owned(), vec![Method::GET])),
        );
        assert_eq!(
            table.template_of("/v1/workspaces/prod/forward-auth"),
            "/v1/workspaces/{slug}/forward-auth"
        );
        assert_eq!(
            table.template_of("/v1/workspaces/prod/forward-auth/api/orders/7"),
            "/v1/workspaces/{slug}/forward-auth/{path...}"
        );
        assert_eq!(table.template_of("/v1/forward-auth"), "unmatched");
        assert_eq!(table.template_of("/wp-admin/x"), "unmatched");
    }

    #[test]
    fn allow_lists_the_methods_of_the_matching_route() {
        let table = RouteTable::new([
            ("/v1/tokens".to_owned(), vec![Method::GET, Method::POST]),
            ("/v1/tokens/{id}/rotate".to_owned(), vec![Method::POST]),
        ]);
        assert_eq!(table.allow("/v1/tokens").unwrap(), "GET, POST");
        assert_eq!(
            table.allow("/v1/workspaces/prod/tokens/x/rotate").unwrap(),
            "POST"
        );
        assert!(table.allow("/v1/nothing").is_none());
    }
}
