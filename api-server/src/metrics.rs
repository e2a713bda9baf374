//! Prometheus metrics of the API server, rendered at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: Cow<'static, str>,
    /// The route template, e.g. `/v1/tokens/{id}`, so ids never become label values.
    pub route: Arc<String>,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    pub method: Cow<'static, str>,
    pub route: Arc<String>,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerifyLabels {
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `hit`, `miss` or `bypass`.
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// `delivered`, `retrying` or `failed`.
    pub outcome: String,
}

/// Counts of lookups, for `/metrics`.
#[derive(Clone, Default)]
pub struct CacheCounters {
    pub hits: Counter,
    pub misses: Counter,
    /// Lookups that skipped the cache because it was not known to be current.
    pub bypasses: Counter,
    /// 1 while entries may be returned, 0 while every lookup goes to the database.
    pub current: Gauge,
}

pub struct Metrics {
    registry: Registry,
    pub requests: Family<RequestLabels, Counter>,
    pub request_duration: Family<RouteLabels, Histogram>,
    pub verifications: Family<VerifyLabels, Counter>,
    pub webhook_attempts: Family<DeliveryLabels, Counter>,
    pub webhook_attempt_duration: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("tooken");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route and status",
            requests.clone(),
        );
        let request_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 100µs … ~3.3s
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "http_request_duration_seconds",
            "Time from request to response, by route",
            request_duration.clone(),
        );
        let verifications = Family::<VerifyLabels, Counter>::default();
        registry.register(
            "token_verifications",
            "POST /v1/tokens/verify results, by reason",
            verifications.clone(),
        );
        let webhook_attempts = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "webhook_attempts",
            "Webhook delivery attempts, by outcome",
            webhook_attempts.clone(),
        );
        let webhook_attempt_duration = Histogram::new(exponential_buckets(0.001, 2.0, 15));
        registry.register(
            "webhook_attempt_duration_seconds",
            "Time from sending a webhook to its answer",
            webhook_attempt_duration.clone(),
        );
        Metrics {
            registry,
            requests,
            request_duration,
            verifications,
            webhook_attempts,
            webhook_attempt_duration,
        }
    }
}

impl Metrics {
    /// Counters for the credential cache to count its lookups in, registered here.
    pub fn credential_cache_counters(&mut self) -> CacheCounters {
        let lookups = Family::<CacheLabels, Counter>::default();
        // The cache keeps each label's counter, so no lookup pays for finding its label.
        let counter = |outcome: &str| {
            lookups.get_or_create_owned(&CacheLabels {
                outcome: outcome.into(),
            })
        };
        let counters = CacheCounters {
            hits: counter("hit"),
            misses: counter("miss"),
            bypasses: counter("bypass"),
            current: Gauge::default(),
        };
        self.registry.register(
            "credential_cache_lookups",
            "Credential lookups by outcome: hit, miss, or bypass (the cache was not known to be current)",
            lookups,
        );
        self.registry.register(
            "credential_cache_current",
            "1 while cached credential lookups may be used, 0 while every lookup goes to the database",
            counters.current.clone(),
        );
        counters
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}
