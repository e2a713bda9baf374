//! Receiver mode: a Deployment that Tooken's webhooks point at. On `token.rotated` it rolls the
//! workloads that use the token, once per rotation.

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
use warp::Filter;

/// Hands each rotation to the coalescer, which runs the restart attempt.
pub struct Receiver {
    coalescer: Coalescer,
}

impl Receiver {
    pub fn new(restarter: Arc<Restarter>, window: std::time::Duration) -> Self {
        let attempt: coalesce::Attempt = Arc::new(move |token_id, rotation, received| {
            let restarter = restarter.clone();
            Box::pin(async move { restarter.restart_for(&token_id, rotation, received).await })
        });
        Receiver {
            coalescer: Coalescer::new(window, attempt),
        }
    }
}

impl RotationHandler for Receiver {
    fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>> {
        Box::pin(
            self.coalescer
                .submit(rotation.token_id, rotation.rotation, rotation.received),
        )
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
    let state = Arc::new(WebhookState {
        verifier: Verifier::new(
            secrets,
            args.webhook.tolerance,
            args.webhook.replay_capacity,
        ),
        handler: Arc::new(Receiver::new(restarter, args.coalesce_window)),
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
