//! Leader election on a `coordination.k8s.io/v1` Lease, so two replicas never both write.
//! Updates use the Lease's resourceVersion, so a lost race is a conflict, never a double hold.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;
use std::time::{Duration, Instant};

#[derive(Clone)]
pub struct Elector {
    pub api: Api<Lease>,
    pub name: String,
    pub identity: String,
    pub lease_seconds: i32,
}

/// Why a leader stopped leading: it must stop acting at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum LeaseLost {
    #[error("lost the lease to another replica")]
    TakenOver,
    #[error("the lease may have run out")]
    NotRenewed,
}

/// How often the acquire loop asks again while another replica holds the lease.
const ACQUIRE_RETRY: Duration = Duration::from_secs(2);

fn is_conflict(err: &kube::Error) -> bool {
    matches!(err, kube::Error::Api(status) if status.code == 409)
}

impl Elector {
    /// Takes or renews the lease; `false` when another holder's lease is still valid.
    pub async fn try_acquire(&self, now: Timestamp) -> Result<bool, kube::Error> {
        let mine = |acquire: Timestamp, transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.lease_seconds),
            acquire_time: Some(MicroTime(acquire)),
            renew_time: Some(MicroTime(now)),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        let Some(mut lease) = self.api.get_opt(&self.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(mine(now, 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(err) if is_conflict(&err) => Ok(false),
                Err(err) => Err(err),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (spec.renew_time, spec.lease_duration_seconds) {
            (Some(MicroTime(renewed)), Some(seconds)) => {
                renewed + SignedDuration::from_secs(i64::from(seconds)) < now
            }
            _ => true,
        };
        if !held_by_me && !expired {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0);
        lease.spec = Some(if held_by_me {
            mine(spec.acquire_time.map(|t| t.0).unwrap_or(now), transitions)
        } else {
            mine(now, transitions + 1)
        });
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(err) if is_conflict(&err) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

impl Elector {
    /// Returns once this replica holds the lease, asking again every 2 s while another does.
    pub async fn wait_for_lease(&self) -> Result<(), kube::Error> {
        while !self.try_acquire(Timestamp::now()).await? {
            tokio::time::sleep(ACQUIRE_RETRY).await;
        }
        Ok(())
    }

    /// Renews the held lease every third of its duration, and returns when it is lost: taken by
    /// another replica, or not renewed within two thirds of its duration (so the caller stops
    /// before it could run out).
    pub async fn keep_leading(&self) -> LeaseLost {
        let period = Duration::from_secs((self.lease_seconds / 3).max(1) as u64);
        let mut last_renewed = Instant::now();
        loop {
            tokio::time::sleep(period).await;
            match self.try_acquire(Timestamp::now()).await {
                Ok(true) => last_renewed = Instant::now(),
                Ok(false) => return LeaseLost::TakenOver,
                Err(err) => {
                    tracing::warn!(error = %err, "could not renew the lease");
                    if last_renewed.elapsed()
                        > Duration::from_secs(self.lease_seconds as u64 * 2 / 3)
                    {
                        return LeaseLost::NotRenewed;
                    }
                }
            }
        }
    }
}
