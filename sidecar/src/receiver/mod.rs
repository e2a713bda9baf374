//! Receiver mode: a Deployment that Tooken's webhooks point at. On `token.rotated` it rolls the
//! workloads that use the token, once per rotation. A delivery is answered as soon as the
//! restart is recorded on the workloads (well within the sender's per-attempt timeout); the
//! restart itself waits for the Secret afterwards.

pub mod coalesce;
pub mod marker;
pub mod restarter;
pub mod secrets;
pub mod targets;
pub mod workload;

use crate::config::ReceiverArgs;
use crate::metrics::Metrics;
use crate::ops::{self, Readiness};
use crate::webhook::{
    self, HandleError, Handled, Rotation, RotationHandler, Verifier, WebhookState,
};
use anyhow::Context;
use coalesce::Coalescer;
use futures::future::BoxFuture;
use restarter::Restarter;
use std::sync::Arc;
use std::time::Instant;
use warp::Filter;

/// How often pending restarts recorded on workloads are looked for, so one whose Secret took
/// long, or whose sidecar died, still happens.
pub const RESCAN: std::time::Duration = std::time::Duration::from_secs(60);

/// Schedules each rotation on the workloads, then hands it to the coalescer, which runs the
/// restart in its own task.
pub struct Receiver {
    restarter: Arc<Restarter>,
    coalescer: Coalescer,
    ack_within: std::time::Duration,
}

impl Receiver {
    pub fn new(
        restarter: Arc<Restarter>,
        window: std::time::Duration,
        ack_within: std::time::Duration,
    ) -> Self {
        let attempt: coalesce::Attempt = Arc::new({
            let restarter = restarter.clone();
            move |token_id, rotation, received| {
                let restarter = restarter.clone();
                Box::pin(async move {
                    let outcome = restarter.restart_for(&token_id, rotation, received).await;
                    if let Err(err) = &outcome {
                        tracing::warn!(token_id, rotation, error = %err, "restart not done yet; its pending entry is retried");
                    }
                    outcome
                })
            }
        });
        Receiver {
            restarter,
            coalescer: Coalescer::new(window, attempt),
            ack_within,
        }
    }

    /// Starts the restarts recorded as pending (after a restart of the sidecar, or a Secret
    /// that took long), now and every `RESCAN`.
    pub async fn resume_pending(self: Arc<Self>) {
        loop {
            match self.restarter.pending().await {
                Ok(pending) => {
                    for (token_id, rotation) in pending {
                        drop(self.coalescer.submit(token_id, rotation, Instant::now()));
                    }
                }
                Err(err) => tracing::warn!(error = %err, "cannot list pending restarts"),
            }
            tokio::time::sleep(RESCAN).await;
        }
    }
}

impl RotationHandler for Receiver {
    fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>> {
        let restarter = self.restarter.clone();
        let ack_within = self.ack_within;
        let coalescer = self.coalescer.clone();
        Box::pin(async move {
            let scheduled = tokio::time::timeout(
                ack_within,
                restarter.schedule(&rotation.token_id, rotation.rotation),
            )
            .await
            .map_err(|_| {
                HandleError::Timeout(format!(
                    "recording the restart took longer than {ack_within:?}"
                ))
            })??;
            // The restart runs in the coalescer's task, which joins bursts; nobody waits for it.
            drop(coalescer.submit(rotation.token_id, rotation.rotation, rotation.received));
            Ok(scheduled)
        })
    }
}

pub async fn run(args: ReceiverArgs) -> anyhow::Result<()> {
    let secrets = args.webhook.required_secrets()?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster service account or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::default());
    let readiness = Readiness::default();
    let restarter = Arc::new(Restarter {
        client: client.clone(),
        namespace: args.namespace.clone(),
        secret_wait: args.webhook.secret_wait,
        clock: jiff::Timestamp::now,
        metrics: metrics.clone(),
    });
    let receiver = Arc::new(Receiver::new(
        restarter,
        args.coalesce_window,
        args.ack_within,
    ));
    tokio::spawn(receiver.clone().resume_pending());
    let state = Arc::new(WebhookState {
        verifier: Verifier::new(
            secrets,
            args.webhook.tolerance,
            args.webhook.replay_capacity,
        ),
        handler: receiver.clone(),
        metrics: metrics.clone(),
        body_limit: args.webhook.body_limit,
        clock: jiff::Timestamp::now,
    });
    tokio::spawn(become_ready(client, readiness.clone()));
    let listener = tokio::net::TcpListener::bind(args.webhook.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.webhook.listen))?;
    tracing::info!(listen = %args.webhook.listen, namespace = ?args.namespace, "receiver started");
    let routes = webhook::routes::routes(state)
        .or(ops::routes(metrics, readiness))
        .unify()
        .boxed();
    crate::server::serve(listener, routes).await;
    Ok(())
}

/// Ready once the API server answers, retrying until it does.
async fn become_ready(client: kube::Client, readiness: Readiness) {
    loop {
        match client.apiserver_version().await {
            Ok(_) => return readiness.set_ready(),
            Err(err) => tracing::warn!(error = %err, "Kubernetes API not reachable yet"),
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    }
}
