//! The Kubernetes client, with every request counted by verb and resource (the figures
//! `operator-scale` reports, and what shows an idle operator is idle).

use crate::metrics::{KubeRequestLabels, Metrics};
use std::sync::Arc;
use tower::util::MapRequestLayer;

/// From the in-cluster config or `KUBECONFIG`.
pub async fn connect(metrics: Arc<Metrics>) -> anyhow::Result<kube::Client> {
    let config = kube::Config::infer().await.map_err(|err| {
        anyhow::anyhow!("cannot reach the Kubernetes API (in-cluster config or KUBECONFIG): {err}")
    })?;
    let count = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        metrics
            .kube_requests
            .get_or_create(&KubeRequestLabels::of(request.method(), request.uri()))
            .inc();
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?
        .with_layer(&count)
        .build())
}
