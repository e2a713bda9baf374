//! Consecutive failures per resource, and how long each waits before its retry.
//!
//! kube-runtime's Controller calls `error_policy` with the object and the error only, and
//! keeps no count of a resource's failures (nor says when one succeeds), so the count is kept
//! here: the reconcile forgets a resource when it succeeds.

use rand::RngExt;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Exponential backoff from 5 s to 5 min with ±25 % jitter, so many failing resources do not
/// retry in lockstep.
pub fn delay(failures: u32) -> Duration {
    let base = 5u64.saturating_mul(1u64 << failures.min(6)).min(300);
    Duration::from_secs(base).mul_f64(rand::rng().random_range(0.75..1.25))
}

/// A failure just recorded: the how-many-th in a row, and the wait before the retry.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retry {
    pub failures: u32,
    pub after: Duration,
}

/// Consecutive failures per resource key (`namespace/name`).
#[derive(Default)]
pub struct Backoff {
    failures: Mutex<HashMap<String, u32>>,
}

impl Backoff {
    /// Counts one more failure of `key`; the longer its run of failures, the longer the wait.
    pub fn record_failure(&self, key: &str) -> Retry {
        let failures = {
            let mut all = self.failures.lock().expect("lock");
            let count = all.entry(key.to_owned()).or_insert(0);
            *count += 1;
            *count
        };
        Retry {
            failures,
            after: delay(failures),
        }
    }

    /// `key` succeeded: its next failure waits the shortest time again.
    pub fn forget(&self, key: &str) {
        self.failures.lock().expect("lock").remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn backoff_grows_with_jitter_and_is_capped() {
        let first = delay(1);
        assert!(
            (Duration::from_millis(7500)..=Duration::from_millis(12500)).contains(&first),
            "{first:?}"
        );
        assert!(delay(20) <= Duration::from_secs(375));
        let samples: HashSet<u128> = (0..20).map(|_| delay(3).as_millis()).collect();
        assert!(samples.len() > 1, "jittered");
    }

    #[test]
    fn failures_count_per_resource_until_forgotten() {
        let backoff = Backoff::default();
        assert_eq!(backoff.record_failure("apps/ci").failures, 1);
        assert_eq!(backoff.record_failure("apps/ci").failures, 2);
        assert_eq!(
            backoff.record_failure("apps/web").failures,
            1,
            "counted apart"
        );
        let third = backoff.record_failure("apps/ci");
        assert_eq!(third.failures, 3);
        // 5 s · 2³, ±25 %.
        assert!(
            (Duration::from_secs(30)..=Duration::from_secs(50)).contains(&third.after),
            "{third:?}"
        );

        backoff.forget("apps/ci");
        let again = backoff.record_failure("apps/ci");
        assert_eq!(again.failures, 1, "a success starts the count over");
        assert!(again.after <= Duration::from_millis(12500), "{again:?}");
        assert_eq!(
            backoff.record_failure("apps/web").failures,
            2,
            "others kept"
        );
        backoff.forget("apps/unknown");
    }
}
