//! Prometheus metrics of the operator.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: String,
}

/// A Kubernetes API request: `get`, `list`, `watch`, `create`, `patch`, `update`, `delete`, and
/// the resource with its subresource (`tookentokens/status`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KubeRequestLabels {
    pub verb: String,
    pub resource: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: String,
}

impl KubeRequestLabels {
    /// From a request to the Kubernetes API (`/api/v1/namespaces/apps/secrets/name`, …).
    pub fn of(method: &http::Method, uri: &http::Uri) -> Self {
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        // `/api/v1/…` or `/apis/group/version/…`, then an optional `namespaces/<ns>`.
        let mut rest = match segments.first() {
            Some(&"api") => segments.get(2..).unwrap_or_default(),
            _ => segments.get(3..).unwrap_or_default(),
        };
        if rest.first() == Some(&"namespaces") && rest.len() > 2 {
            rest = &rest[2..];
        }
        let resource = match rest {
            [resource, _name, subresource, ..] => format!("{resource}/{subresource}"),
            [resource, ..] => (*resource).to_owned(),
            [] => "other".to_owned(),
        };
        let named = rest.len() > 1;
        let watch = uri
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "watch=true"));
        let verb = match *method {
            http::Method::GET if watch => "watch",
            http::Method::GET if named => "get",
            http::Method::GET => "list",
            http::Method::POST => "create",
            http::Method::PATCH => "patch",
            http::Method::PUT => "update",
            http::Method::DELETE => "delete",
            _ => "other",
        };
        KubeRequestLabels {
            verb: verb.into(),
            resource,
        }
    }
}

pub struct Metrics {
    registry: Registry,
    pub reconciles: Family<OutcomeLabels, Counter>,
    pub errors: Family<ReasonLabels, Counter>,
    pub reconcile_duration: Histogram,
    /// Issued, Rotated, Repaired, Reissued, Revoked.
    pub token_events: Family<ReasonLabels, Counter>,
    pub managed: Gauge,
    pub leader: Gauge,
    /// From a resource's creation to its first Ready.
    pub time_to_ready: Histogram,
    pub kube_requests: Family<KubeRequestLabels, Counter>,
    /// Calls to the Tooken API, by operation (`create_token`, `get_token`, …).
    pub api_requests: Family<OperationLabels, Counter>,
    pub api_request_duration: Histogram,
    /// Polls of the audit log for changes made outside the operator, by outcome.
    pub change_feed_polls: Family<OutcomeLabels, Counter>,
    /// Tokens the change feed found changed, each a reconcile of the resources holding it.
    pub change_feed_triggers: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tooken_operator");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register("reconciles", "Reconciles, by outcome", reconciles.clone());
        let errors = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles, by reason",
            errors.clone(),
        );
        let reconcile_duration = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register(
            "reconcile_duration_seconds",
            "Time per reconcile",
            reconcile_duration.clone(),
        );
        let token_events = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "token_events",
            "Tokens issued, rotated, repaired and revoked",
            token_events.clone(),
        );
        let managed = Gauge::default();
        registry.register(
            "tokens_managed",
            "TookenToken resources this replica manages",
            managed.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 when this replica holds the lease",
            leader.clone(),
        );
        let time_to_ready = Histogram::new(exponential_buckets(0.05, 2.0, 14));
        registry.register(
            "time_to_ready_seconds",
            "From creation of a TookenToken to its first Ready",
            time_to_ready.clone(),
        );
        let kube_requests = Family::<KubeRequestLabels, Counter>::default();
        registry.register(
            "kubernetes_requests",
            "Requests to the Kubernetes API, by verb and resource",
            kube_requests.clone(),
        );
        let api_requests = Family::<OperationLabels, Counter>::default();
        registry.register(
            "api_requests",
            "Calls to the Tooken API, by operation",
            api_requests.clone(),
        );
        let api_request_duration = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
        registry.register(
            "api_request_duration_seconds",
            "Time per call to the Tooken API",
            api_request_duration.clone(),
        );
        let change_feed_polls = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "change_feed_polls",
            "Polls of the audit log for changes made outside the operator, by outcome",
            change_feed_polls.clone(),
        );
        let change_feed_triggers = Counter::default();
        registry.register(
            "change_feed_triggers",
            "Tokens found changed outside the operator",
            change_feed_triggers.clone(),
        );
        Metrics {
            registry,
            change_feed_polls,
            change_feed_triggers,
            kube_requests,
            api_requests,
            api_request_duration,
            reconciles,
            errors,
            reconcile_duration,
            token_events,
            managed,
            leader,
            time_to_ready,
        }
    }
}

impl Metrics {
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::KubeRequestLabels;

    fn labels(method: &str, uri: &str) -> (String, String) {
        let l = KubeRequestLabels::of(&method.parse().unwrap(), &uri.parse().unwrap());
        (l.verb, l.resource)
    }

    #[test]
    fn requests_are_named_by_verb_and_resource() {
        let cases = [
            (
                "GET",
                "/api/v1/namespaces/apps/secrets/ci",
                "get",
                "secrets",
            ),
            (
                "GET",
                "/api/v1/secrets?labelSelector=x&watch=true",
                "watch",
                "secrets",
            ),
            (
                "GET",
                "/apis/tooken.io/v1alpha1/tookentokens?limit=500",
                "list",
                "tookentokens",
            ),
            (
                "PATCH",
                "/apis/tooken.io/v1alpha1/namespaces/apps/tookentokens/ci/status",
                "patch",
                "tookentokens/status",
            ),
            (
                "POST",
                "/apis/events.k8s.io/v1/namespaces/apps/events",
                "create",
                "events",
            ),
            (
                "PUT",
                "/apis/coordination.k8s.io/v1/namespaces/t/leases/op",
                "update",
                "leases",
            ),
            ("GET", "/version", "list", "other"),
        ];
        for (method, uri, verb, resource) in cases {
            assert_eq!(
                labels(method, uri),
                (verb.into(), resource.into()),
                "{method} {uri}"
            );
        }
    }
}
