//! Route templates (`/v1/tokens/{id}`): matching a request path to one, for dispatch and for
//! the bounded label values of metrics and logs, whatever paths clients send.

use std::sync::Arc;
use warp::http::{HeaderValue, Method};

/// Where a template is served besides its own path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// Also under `/v1/workspaces/{slug}/…`, which names the workspace.
    Workspace,
    /// Only at its own path.
    Own,
}

/// One path template: literal segments, `{name}` for one segment, and a last `{name...}` for
/// all the rest (possibly empty, after a slash).
#[derive(Debug, Clone)]
pub struct Template {
    segments: Vec<String>,
    reach: Reach,
    /// The template up to its first `{…}` segment, without the leading `/` (all of it when it
    /// has none): most paths are told apart by it with one comparison.
    literal: String,
}

/// What a path matched: the values of its `{…}` segments, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Captures {
    /// Whether the path came under `/v1/workspaces/{slug}` without the template naming it.
    pub scoped: bool,
    pub params: Vec<String>,
}

const WORKSPACE_PREFIX: [&str; 3] = ["v1", "workspaces", "{slug}"];

impl Template {
    pub fn new(template: &str, reach: Reach) -> Template {
        let path = template.trim_start_matches('/');
        let literal = match path.find('{') {
            Some(at) => path[..at].to_owned(),
            None => path.to_owned(),
        };
        Template {
            segments: path.split('/').map(str::to_owned).collect(),
            reach,
            literal,
        }
    }

    pub fn as_string(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }

    /// Whether `path` is this template's, and with what values.
    pub fn captures(&self, path: &str) -> Option<Captures> {
        let path = path.strip_prefix('/').unwrap_or(path);
        if let Some(params) = self.fit(None, path) {
            return Some(Captures {
                scoped: false,
                params,
            });
        }
        // `/v1/workspaces/{slug}/…` answers the same routes as `/v1/…`.
        if self.reach != Reach::Workspace {
            return None;
        }
        let (_slug, rest) = path.strip_prefix("v1/workspaces/")?.split_once('/')?;
        self.fit(Some("v1"), rest).map(|params| Captures {
            scoped: true,
            params,
        })
    }

    /// The values if `lead` (a segment in front, when given) and the segments of `path` fit
    /// the template. Every route is tried on every request, so nothing is allocated until a
    /// value is taken.
    fn fit(&self, mut lead: Option<&str>, path: &str) -> Option<Vec<String>> {
        let begins_right = match lead {
            None => path.starts_with(self.literal.as_str()),
            Some(lead) => match self.literal.strip_prefix(lead) {
                Some("") => true,
                Some(rest) => rest
                    .strip_prefix('/')
                    .is_some_and(|rest| path.starts_with(rest)),
                None => lead.starts_with(self.literal.as_str()),
            },
        };
        if !begins_right {
            return None;
        }
        let mut remaining = Some(path);
        let mut params = Vec::new();
        let last = self.segments.len() - 1;
        for (i, template) in self.segments.iter().enumerate() {
            if i == last && template.ends_with("...}") {
                params.push(match (lead, remaining) {
                    (Some(lead), Some(rest)) => format!("{lead}/{rest}"),
                    (Some(lead), None) => lead.to_owned(),
                    (None, Some(rest)) => rest.to_owned(),
                    (None, None) => return None,
                });
                return Some(params);
            }
            let segment = match lead.take() {
                Some(lead) => lead,
                None => {
                    let rest = remaining?;
                    match rest.split_once('/') {
                        Some((segment, after)) => {
                            remaining = Some(after);
                            segment
                        }
                        None => {
                            remaining = None;
                            rest
                        }
                    }
                }
            };
            if template.starts_with('{') {
                if segment.is_empty() {
                    return None;
                }
                params.push(segment.to_owned());
            } else if template != segment {
                return None;
            }
        }
        remaining.is_none().then_some(params)
    }

    /// How literal the template is: `/v1/tokens/verify` wins over `/v1/tokens/{id}`, and any
    /// fixed-length template over one ending in `{name...}`.
    fn specificity(&self) -> (usize, bool) {
        let literal = self.segments.iter().filter(|t| !t.starts_with('{')).count();
        let fixed = !self
            .segments
            .last()
            .is_some_and(|last| last.ends_with("...}"));
        (literal, fixed)
    }

    fn in_workspace(&self) -> bool {
        self.segments.len() > 3 && self.segments[..3] == WORKSPACE_PREFIX
    }
}

pub struct RouteTable {
    routes: Vec<Route>,
    unmatched: Arc<String>,
}

struct Route {
    template: Template,
    /// The `Allow` header of a 405 on this route: its methods, comma-separated.
    allow: HeaderValue,
    /// The metric label of a path that matched the template itself, and of one that came
    /// under `/v1/workspaces/{slug}`; made once, so labelling a request allocates nothing.
    label: Arc<String>,
    scoped_label: Arc<String>,
}

impl RouteTable {
    /// `routes`: each template with the methods it answers.
    pub fn new<I: IntoIterator<Item = (Template, Vec<Method>)>>(routes: I) -> RouteTable {
        RouteTable {
            routes: routes
                .into_iter()
                .map(|(template, methods)| Route {
                    label: Arc::new(template.as_string()),
                    scoped_label: Arc::new(if template.in_workspace() {
                        template.as_string()
                    } else {
                        format!(
                            "/{}/{}",
                            WORKSPACE_PREFIX.join("/"),
                            template.segments[1..].join("/")
                        )
                    }),
                    template,
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
            unmatched: Arc::new("unmatched".to_owned()),
        }
    }

    /// The label of `path`: its template, with `/v1/workspaces/{slug}` in front when the path
    /// came under it.
    pub fn template_of(&self, path: &str) -> Arc<String> {
        match self.find(path) {
            Some((route, captures)) if captures.scoped => route.scoped_label.clone(),
            Some((route, _)) => route.label.clone(),
            None => self.unmatched.clone(),
        }
    }

    /// The methods `path` answers, as an `Allow` header value (RFC 9110 §15.5.6).
    pub fn allow(&self, path: &str) -> Option<&HeaderValue> {
        self.find(path).map(|(route, _)| &route.allow)
    }

    /// The most literal route `path` belongs to.
    fn find(&self, path: &str) -> Option<(&Route, Captures)> {
        self.routes
            .iter()
            .filter_map(|route| route.template.captures(path).map(|c| (route, c)))
            .max_by_key(|(route, _)| route.template.specificity())
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
            .map(|t| (Template::new(t, Reach::Workspace), vec![Method::GET])),
        );
        assert_eq!(table.template_of("/v1/tokens").as_str(), "/v1/tokens");
        assert_eq!(
            table.template_of("/v1/tokens/verify").as_str(),
            "/v1/tokens/verify"
        );
        assert_eq!(
            table.template_of("/v1/tokens/0190-ab").as_str(),
            "/v1/tokens/{id}"
        );
        assert_eq!(
            table.template_of("/v1/workspaces/prod/tokens/x").as_str(),
            "/v1/workspaces/{slug}/tokens/{id}"
        );
        assert_eq!(table.template_of("/healthz").as_str(), "/healthz");
        let table = RouteTable::new(
            [
                "/v1/workspaces/{slug}/forward-auth",
                "/v1/workspaces/{slug}/forward-auth/{path...}",
            ]
            .map(|t| (Template::new(t, Reach::Workspace), vec![Method::GET])),
        );
        assert_eq!(
            table
                .template_of("/v1/workspaces/prod/forward-auth")
                .as_str(),
            "/v1/workspaces/{slug}/forward-auth"
        );
        assert_eq!(
            table
                .template_of("/v1/workspaces/prod/forward-auth/api/orders/7")
                .as_str(),
            "/v1/workspaces/{slug}/forward-auth/{path...}"
        );
        assert_eq!(table.template_of("/v1/forward-auth").as_str(), "unmatched");
        assert_eq!(table.template_of("/wp-admin/x").as_str(), "unmatched");
    }

    #[test]
    fn captures_name_the_values_and_respect_reach() {
        let id = Template::new("/v1/tokens/{id}", Reach::Workspace);
        assert_eq!(
            id.captures("/v1/workspaces/prod/tokens/abc"),
            Some(Captures {
                scoped: true,
                params: vec!["abc".into()]
            })
        );
        assert_eq!(id.captures("/v1/tokens/"), None);
        let own = Template::new("/v1/auth/me", Reach::Own);
        assert!(own.captures("/v1/auth/me").is_some());
        assert_eq!(own.captures("/v1/workspaces/prod/auth/me"), None);
        let rest = Template::new("/v1/workspaces/{slug}/forward-auth/{path...}", Reach::Own);
        assert_eq!(
            rest.captures("/v1/workspaces/prod/forward-auth/api/orders/7")
                .unwrap()
                .params,
            vec!["prod".to_owned(), "api/orders/7".to_owned()]
        );
        assert_eq!(
            rest.captures("/v1/workspaces/prod/forward-auth/")
                .unwrap()
                .params[1],
            ""
        );
    }

    #[test]
    fn allow_lists_the_methods_of_the_matching_route() {
        let table = RouteTable::new([
            (
                Template::new("/v1/tokens", Reach::Workspace),
                vec![Method::GET, Method::POST],
            ),
            (
                Template::new("/v1/tokens/{id}/rotate", Reach::Workspace),
                vec![Method::POST],
            ),
        ]);
        assert_eq!(table.allow("/v1/tokens").unwrap(), "GET, POST");
        assert_eq!(
            table.allow("/v1/workspaces/prod/tokens/x/rotate").unwrap(),
            "POST"
        );
        assert!(table.allow("/v1/nothing").is_none());
    }
}
