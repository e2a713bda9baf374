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
        Metrics {
            registry,
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
