//! The webhook delivery worker. It takes due deliveries from the outbox under a lease (so
//! replicas never attempt the same one at once), signs each body as README "Webhooks" says receivers check it, and
//! retries failures with exponential backoff and jitter for more than a day.

use crate::metrics::{DeliveryLabels, Metrics};
use crate::store::webhooks::{self, Attempt, DueDelivery};
use crate::store::{Backend, Store, StoreError, now};
use crate::webhook_targets::{GuardedResolver, TargetPolicy, refusal_in};
use jiff::{SignedDuration, Timestamp};
use rand::RngExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tooken_contract::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use tooken_contract::webhooks::DeliveryStatus;

#[derive(Debug, Clone)]
pub struct DeliverySettings {
    /// How often the outbox is checked when no commit wakes the worker (retries, other replicas).
    pub poll_interval: Duration,
    pub attempt_timeout: Duration,
    /// The first retry waits about this long; each later one twice as long, up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: i64,
    /// Deliveries attempted at once.
    pub concurrency: usize,
    /// Where deliveries may connect.
    pub targets: Arc<TargetPolicy>,
}

impl Default for DeliverySettings {
    /// 5 s doubling to a 6 h cap over 20 attempts: retries span 37–56 hours depending on jitter.
    fn default() -> Self {
        DeliverySettings {
            poll_interval: Duration::from_secs(1),
            attempt_timeout: Duration::from_secs(10),
            retry_base: Duration::from_secs(5),
            retry_cap: Duration::from_secs(6 * 3600),
            max_attempts: 20,
            concurrency: 16,
            targets: Arc::default(),
        }
    }
}

/// How long after `attempts` failures the next attempt waits: exponential, capped, ±20 % jitter.
pub fn backoff(settings: &DeliverySettings, attempts: i64) -> Duration {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let base = settings
        .retry_base
        .saturating_mul(2u32.saturating_pow(exponent));
    let capped = base.min(settings.retry_cap);
    capped.mul_f64(rand::rng().random_range(0.8..1.2))
}

pub struct Worker {
    store: Store,
    http: reqwest::Client,
    settings: DeliverySettings,
    metrics: Arc<Metrics>,
}

impl Worker {
    pub fn new(
        store: Store,
        settings: DeliverySettings,
        metrics: Arc<Metrics>,
    ) -> anyhow::Result<Worker> {
        // Direct connections only, to addresses the target policy allows: a proxy would
        // connect on our behalf to addresses never checked.
        let http = reqwest::Client::builder()
            .timeout(settings.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: settings.targets.clone(),
            }))
            .user_agent(concat!("Tooken-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Worker {
            store,
            http,
            settings,
            metrics,
        })
    }

    /// Delivers until the task is dropped.
    pub async fn run(self) {
        if self.store.backend() == Backend::Sqlite {
            match self.release_leases().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    released = n,
                    "webhook deliveries interrupted by a crash resume now"
                ),
                Err(err) => tracing::warn!(error = %err, "could not release webhook leases"),
            }
        }
        loop {
            match self.deliver_due().await {
                // A full batch: there may be more waiting.
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(err) => tracing::warn!(error = %err, "webhook delivery pass failed"),
            }
            tokio::select! {
                () = self.store.outbox_changed() => {}
                () = tokio::time::sleep(self.settings.poll_interval) => {}
            }
        }
    }

    async fn release_leases(&self) -> Result<u64, StoreError> {
        let mut tx = self.store.begin_write().await?;
        let released = webhooks::release_all_leases(&mut tx).await?;
        tx.commit().await?;
        Ok(released)
    }

    /// Attempts every delivery due now; returns how many were attempted.
    pub async fn deliver_due(&self) -> Result<usize, StoreError> {
        let now = now();
        let due = {
            let mut conn = self.store.connection().await?;
            webhooks::due(&mut conn, now, 64).await?
        };
        // Long enough for one attempt and its bookkeeping; a replica that dies mid-attempt
        // delays the delivery by at most this.
        let lease =
            SignedDuration::try_from(self.settings.attempt_timeout + Duration::from_secs(5))
                .unwrap_or(SignedDuration::from_secs(15));
        let mut claimed = Vec::new();
        if !due.is_empty() {
            let mut tx = self.store.begin_write().await?;
            for delivery in due {
                if webhooks::claim(&mut tx, &delivery.id, now, now + lease).await? {
                    claimed.push(delivery);
                }
            }
            tx.commit().await?;
        }
        let attempted = claimed.len();
        use futures::StreamExt;
        futures::stream::iter(claimed)
            .for_each_concurrent(self.settings.concurrency, |delivery| async move {
                if let Err(err) = self.attempt(&delivery).await {
                    // The lease runs out and the delivery is tried again.
                    tracing::warn!(delivery_id = %delivery.id, error = %err, "could not record a webhook attempt");
                }
            })
            .await;
        Ok(attempted)
    }

    /// POSTs the delivery; the status code the endpoint answered.
    async fn send(
        &self,
        delivery: &DueDelivery,
        signature: String,
        sent_at: Timestamp,
    ) -> Result<i64, Failure> {
        self.http
            .post(&delivery.endpoint.url)
            .header("content-type", "application/json")
            .header(SIGNATURE_HEADER, signature)
            .header(EVENT_ID_HEADER, &delivery.event_id)
            .header(TIMESTAMP_HEADER, sent_at.as_second().to_string())
            .body(delivery.body.clone())
            .send()
            .await
            .map(|response| i64::from(response.status().as_u16()))
            .map_err(describe)
    }

    async fn attempt(&self, delivery: &DueDelivery) -> Result<(), StoreError> {
        let sent_at = Timestamp::now();
        let signature = sign(
            delivery.endpoint.signing_secret(sent_at).as_bytes(),
            delivery.body.as_bytes(),
        );
        let started = Instant::now();
        // Address literals never reach the resolver, so they are checked here.
        let literal_refused = reqwest::Url::parse(&delivery.endpoint.url)
            .ok()
            .and_then(|url| self.settings.targets.check_literal(&url).err());
        let result = match literal_refused {
            Some(refused) => Err(Failure::Refused(refused.to_string())),
            None => self.send(delivery, signature, sent_at).await,
        };
        let latency = started.elapsed();
        let latency_ms = i64::try_from(latency.as_millis()).unwrap_or(i64::MAX);
        let (code, error, refused) = match result {
            Ok(code) => (Some(code), None, false),
            Err(Failure::Refused(why)) => (None, Some(why), true),
            Err(Failure::Other(why)) => (None, Some(why), false),
        };
        let attempts = delivery.attempts + 1;
        let now = now();
        let gone = code == Some(410);
        let delivered = code.is_some_and(|c| (200..300).contains(&c));
        // A refused target stays refused: retrying cannot help until an operator allows it.
        let status = if delivered {
            DeliveryStatus::Delivered
        } else if gone || refused || attempts >= self.settings.max_attempts {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        };
        let error = error.or_else(|| {
            (!delivered).then(|| format!("endpoint answered {}", code.unwrap_or_default()))
        });
        let next_attempt_at = (status == DeliveryStatus::Pending).then(|| {
            now + SignedDuration::try_from(backoff(&self.settings, attempts))
                .unwrap_or(SignedDuration::from_secs(60))
        });
        let mut tx = self.store.begin_write().await?;
        webhooks::record_attempt(
            &mut tx,
            &delivery.id,
            &Attempt {
                status,
                status_code: code,
                error: error.as_deref(),
                latency_ms,
                next_attempt_at,
                at: now,
            },
        )
        .await?;
        if gone {
            webhooks::disable_endpoint(
                &mut tx,
                &delivery.endpoint.id,
                "the endpoint answered 410 Gone",
            )
            .await?;
        }
        tx.commit().await?;
        let outcome = match status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Pending => "retrying",
            _ => "failed",
        };
        self.metrics
            .webhook_attempts
            .get_or_create(&DeliveryLabels {
                outcome: outcome.into(),
            })
            .inc();
        self.metrics
            .webhook_attempt_duration
            .observe(latency.as_secs_f64());
        tracing::info!(
            delivery_id = %delivery.id, event_id = %delivery.event_id, attempts, outcome,
            status_code = code, latency_ms, "webhook attempt"
        );
        Ok(())
    }
}

/// Why an attempt got no answer.
enum Failure {
    /// The target policy refused the address.
    Refused(String),
    Other(String),
}

/// An attempt's failure in words, without the URL's query string (it may hold a token).
fn describe(err: reqwest::Error) -> Failure {
    if let Some(refused) = refusal_in(&err) {
        Failure::Refused(refused.to_string())
    } else if err.is_timeout() {
        Failure::Other("timed out".into())
    } else if err.is_connect() {
        Failure::Other("could not connect".into())
    } else {
        Failure::Other(format!("request failed: {}", err.without_url()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_retries_span_a_day() {
        let settings = DeliverySettings::default();
        let first = backoff(&settings, 1);
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(6)).contains(&first),
            "{first:?}"
        );
        let fifth = backoff(&settings, 5);
        assert!(
            (Duration::from_secs(64)..=Duration::from_secs(96)).contains(&fifth),
            "{fifth:?}"
        );
        assert!(backoff(&settings, 40) <= settings.retry_cap.mul_f64(1.2));
        // Even with the least jitter, all retries together wait more than 24 hours.
        let least: f64 = (1..settings.max_attempts)
            .map(|n| {
                let exponent = u32::try_from(n - 1).unwrap();
                settings
                    .retry_base
                    .saturating_mul(2u32.saturating_pow(exponent))
                    .min(settings.retry_cap)
                    .as_secs_f64()
                    * 0.8
            })
            .sum();
        assert!(least > 24.0 * 3600.0, "{least}");
    }
}
