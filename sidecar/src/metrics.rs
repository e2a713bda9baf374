//! Prometheus metrics, rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RestartLabels {
    pub kind: &'static str,
    /// `restarted`, `already_restarted`, `paused` or `failed`.
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub webhooks_received: Counter,
    pub webhooks_rejected: Family<ReasonLabels, Counter>,
    pub restarts: Family<RestartLabels, Counter>,
    pub event_to_patch: Histogram,
    pub file_writes: Counter,
    pub notifications: Family<OutcomeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tooken_sidecar");
        let webhooks_received = Counter::default();
        registry.register(
            "webhooks_received",
            "Webhook deliveries received, before any check",
            webhooks_received.clone(),
        );
        let webhooks_rejected = Family::<ReasonLabels, Counter>::default();
        registry.register(
            "webhooks_rejected",
            "Webhook deliveries refused, by reason",
            webhooks_rejected.clone(),
        );
        let restarts = Family::<RestartLabels, Counter>::default();
        registry.register(
            "restarts",
            "Workload restarts decided on a rotation, by kind and outcome",
            restarts.clone(),
        );
        // 1ms … ~65s: covers waiting for the Secret and the coalescing window.
        let event_to_patch = Histogram::new(exponential_buckets(0.001, 2.0, 17));
        registry.register(
            "event_to_patch_seconds",
            "Time from receiving a token.rotated webhook to the workload patch",
            event_to_patch.clone(),
        );
        let file_writes = Counter::default();
        registry.register(
            "file_writes",
            "Token files swapped into the shared volume",
            file_writes.clone(),
        );
        let notifications = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "notifications",
            "App notifications after a new token file, by outcome",
            notifications.clone(),
        );
        Metrics {
            registry,
            webhooks_received,
            webhooks_rejected,
            restarts,
            event_to_patch,
            file_writes,
            notifications,
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
