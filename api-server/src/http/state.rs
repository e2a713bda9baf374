//! What every handler can reach: the store, usage recording, metrics and the server's rules.

use crate::metrics::Metrics;
use crate::rate_limit::RateLimiter;
use crate::service::accounts::{AccountRules, SignupPolicy};
use crate::service::inspect::Inspector;
use crate::store::Store;
use crate::usage::UsageRecorder;
use crate::webhook_targets::TargetPolicy;
use std::sync::Arc;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub usage: Arc<UsageRecorder>,
    pub metrics: Arc<Metrics>,
    pub max_body_bytes: u64,
    pub signup: SignupPolicy,
    pub session_ttl: jiff::SignedDuration,
    pub secure_cookies: bool,
    pub rate_limiter: Arc<RateLimiter>,
    /// Where webhook deliveries may go; endpoints are checked against it when saved.
    pub webhook_targets: Arc<TargetPolicy>,
}

impl AppState {
    pub fn account_rules(&self) -> AccountRules {
        AccountRules {
            signup: self.signup,
            session_ttl: self.session_ttl,
        }
    }

    /// What checking a presented token secret needs.
    pub fn inspector(&self) -> Inspector<'_> {
        Inspector {
            store: &self.store,
            usage: &self.usage,
            metrics: &self.metrics,
        }
    }
}
