//! Maps a request path to its route template (`/v1/tokens/{id}`) for metrics and logs, so
//! label values stay bounded whatever paths clients send.

pub struct RouteTable {
    templates: Vec<Vec<String>>,
}

const WORKSPACE_PREFIX: [&str; 3] = ["v1", "workspaces", "{slug}"];

impl RouteTable {
    pub fn new<I: IntoIterator<Item = String>>(templates: I) -> RouteTable {
        RouteTable {
            templates: templates
                .into_iter()
                .map(|t| {
                    t.trim_start_matches('/')
                        .split('/')
                        .map(str::to_owned)
                        .collect()
                })
                .collect(),
        }
    }

    pub fn template_of(&self, path: &str) -> String {
        let mut segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        // `/v1/workspaces/{slug}/…` answers the same routes as `/v1/…`.
        let scoped = segments.len() > 3 && segments[0] == "v1" && segments[1] == "workspaces";
        if scoped {
            segments.drain(1..3);
        }
        // The most literal match wins: `/v1/tokens/verify` over `/v1/tokens/{id}`.
        let matched = self
            .templates
            .iter()
            .filter(|template| {
                template.len() == segments.len()
                    && template
                        .iter()
                        .zip(&segments)
                        .all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .max_by_key(|template| template.iter().filter(|t| !t.starts_with('{')).count());
        match matched {
            Some(template) => {
                let rest = if scoped {
                    &template[1..]
                } else {
                    &template[..]
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
            .map(String::from),
        );
        assert_eq!(table.template_of("/v1/tokens"), "/v1/tokens");
        assert_eq!(table.template_of("/v1/tokens/verify"), "/v1/tokens/verify");
        assert_eq!(table.template_of("/v1/tokens/0190-ab"), "/v1/tokens/{id}");
        assert_eq!(
            table.template_of("/v1/workspaces/prod/tokens/x"),
            "/v1/workspaces/{slug}/tokens/{id}"
        );
        assert_eq!(table.template_of("/healthz"), "/healthz");
        assert_eq!(table.template_of("/wp-admin/x"), "unmatched");
    }
}
