//! Per-credential request limits (README "The API", Errors: 429 with `Retry-After`): a token bucket for each
//! API key, token or session, refilled at a steady rate up to a burst. Buckets live in this
//! process, so with several replicas each one enforces the limit on its own share of traffic.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Requests per second and the burst a credential may spend at once; `None` turns limits off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: f64,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Beyond this many buckets, full ones are dropped (they would start full anyway), at most
/// once per `PRUNE_EVERY`, so a crowd of busy credentials does not make every request scan.
const PRUNE_ABOVE: usize = 100_000;
const PRUNE_EVERY: Duration = Duration::from_secs(10);

pub struct RateLimiter {
    limit: Option<RateLimit>,
    buckets: Mutex<Buckets>,
}

#[derive(Default)]
struct Buckets {
    by_credential: HashMap<String, Bucket>,
    pruned_at: Option<Instant>,
}

impl RateLimiter {
    pub fn new(limit: Option<RateLimit>) -> RateLimiter {
        RateLimiter {
            limit: limit.filter(|l| l.per_second > 0.0 && l.burst >= 1.0),
            buckets: Mutex::default(),
        }
    }

    /// Spends one request of `credential`; when none is left, says how long until one is.
    pub fn check(&self, credential: &str, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        let mut buckets = self
            .buckets
            .lock()
            .expect("the rate limiter lock is never poisoned");
        let Buckets {
            by_credential,
            pruned_at,
        } = &mut *buckets;
        let prune_due = pruned_at.is_none_or(|at| now.saturating_duration_since(at) >= PRUNE_EVERY);
        if by_credential.len() > PRUNE_ABOVE && prune_due {
            by_credential.retain(|_, bucket| refilled(bucket, limit, now) < limit.burst);
            *pruned_at = Some(now);
        }
        // Look up before inserting: the common case allocates no key.
        if !by_credential.contains_key(credential) {
            let full = Bucket {
                tokens: limit.burst,
                updated: now,
            };
            by_credential.insert(credential.to_owned(), full);
        }
        let bucket = by_credential
            .get_mut(credential)
            .expect("inserted above when missing");
        bucket.tokens = refilled(bucket, limit, now);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / limit.per_second,
            ))
        }
    }
}

fn refilled(bucket: &Bucket, limit: RateLimit, now: Instant) -> f64 {
    let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
    (bucket.tokens + elapsed * limit.per_second).min(limit.burst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_second: f64, burst: f64) -> RateLimiter {
        RateLimiter::new(Some(RateLimit { per_second, burst }))
    }

    #[test]
    fn a_burst_is_allowed_then_refilled_at_the_rate() {
        let limiter = limiter(2.0, 3.0);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("key", start), Ok(()));
        }
        let wait = limiter.check("key", start).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Half a second later one request is back, and only one.
        let later = start + Duration::from_millis(500);
        assert_eq!(limiter.check("key", later), Ok(()));
        assert!(limiter.check("key", later).is_err());
        // Never more than the burst, however long the pause.
        let much_later = later + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(limiter.check("key", much_later), Ok(()));
        }
        assert!(limiter.check("key", much_later).is_err());
    }

    #[test]
    fn idle_buckets_are_dropped_once_there_are_many_at_most_every_ten_seconds() {
        let limiter = limiter(1.0, 2.0);
        let start = Instant::now();
        for i in 0..=PRUNE_ABOVE {
            limiter.check(&format!("c{i}"), start).unwrap();
        }
        let tracked = |limiter: &RateLimiter| limiter.buckets.lock().unwrap().by_credential.len();
        // All are still refilling: nothing can go.
        limiter.check("busy", start).unwrap();
        assert_eq!(tracked(&limiter), PRUNE_ABOVE + 2);
        // Within ten seconds of that attempt no scan runs, even though all are full by now.
        let soon = start + Duration::from_secs(5);
        limiter.check("busy", soon).unwrap();
        assert_eq!(tracked(&limiter), PRUNE_ABOVE + 2);
        // Later the full ones go; only the bucket just spent remains.
        let later = start + PRUNE_EVERY;
        limiter.check("busy", later).unwrap();
        assert_eq!(tracked(&limiter), 1);
    }

    #[test]
    fn credentials_have_their_own_buckets() {
        let limiter = limiter(1.0, 1.0);
        let now = Instant::now();
        assert_eq!(limiter.check("a", now), Ok(()));
        assert!(limiter.check("a", now).is_err());
        assert_eq!(limiter.check("b", now), Ok(()));
    }

    #[test]
    fn no_limit_means_every_request_passes() {
        let limiter = RateLimiter::new(None);
        let now = Instant::now();
        assert!((0..10_000).all(|_| limiter.check("key", now).is_ok()));
        let zero = RateLimiter::new(Some(RateLimit {
            per_second: 0.0,
            burst: 0.0,
        }));
        assert!(zero.check("key", now).is_ok(), "0 turns limits off");
    }
}
