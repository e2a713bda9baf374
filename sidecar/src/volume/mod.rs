//! Volume mode: a container beside the app that keeps the token in a shared `emptyDir` file
//! current, within seconds of a rotation.

pub mod atomic_writer;
pub mod notify;
pub mod refresher;

use crate::config::VolumeArgs;
use crate::metrics::Metrics;
use crate::ops::{self, Readiness};
use crate::webhook::{self, Verifier, WebhookState};
use anyhow::Context;
use atomic_writer::AtomicWriter;
use notify::Notifier;
use refresher::Refresher;
use std::sync::Arc;
use warp::Filter;

pub async fn run(args: VolumeArgs) -> anyhow::Result<()> {
    let writer = AtomicWriter::new(&args.dir, args.file_name(), args.file_mode)
        .context("invalid --file-name")?;
    anyhow::ensure!(
        args.dir.is_dir(),
        "{} (TOOKEN_SIDECAR_DIR) is not a directory: mount the shared emptyDir there",
        args.dir.display()
    );
    let notifier = Notifier::new(
        args.notify_url.clone(),
        args.notify_signal.zip(args.notify_process.clone()),
    )?;
    let client = kube::Client::try_default()
        .await
        .context("no Kubernetes configuration (in-cluster service account or KUBECONFIG)")?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_owned());
    let metrics = Arc::new(Metrics::default());
    let readiness = Readiness::default();
    let refresher = Arc::new(Refresher::new(
        kube::Api::namespaced(client, &namespace),
        args.secret_name.clone(),
        args.key.clone(),
        writer,
        notifier,
        metrics.clone(),
        readiness.clone(),
        args.webhook.secret_wait,
    ));
    tokio::spawn(refresher.clone().watch());

    let mut routes = ops::routes(metrics.clone(), readiness);
    let secrets = args.webhook.secrets();
    if !secrets.is_empty() {
        let state = Arc::new(WebhookState {
            verifier: Verifier::new(
                secrets,
                args.webhook.tolerance,
                args.webhook.replay_capacity,
            ),
            handler: Arc::new(refresher),
            metrics,
            body_limit: args.webhook.body_limit,
            clock: jiff::Timestamp::now,
        });
        routes = webhook::routes::routes(state).or(routes).unify().boxed();
    }
    let listener = tokio::net::TcpListener::bind(args.webhook.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.webhook.listen))?;
    tracing::info!(secret = %args.secret_name, %namespace, dir = %args.dir.display(), "volume mode started");
    crate::server::serve(listener, routes).await;
    Ok(())
}
