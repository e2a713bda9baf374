//! Keeps the token file current: on every change of the watched Secret, and at once when a
//! local `token.rotated` webhook says a newer rotation exists.

use super::atomic_writer::AtomicWriter;
use super::notify::Notifier;
use crate::keys;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::ops::Readiness;
use crate::receiver::restarter::SECRET_POLL;
use crate::webhook::{HandleError, Handled, Rotation, RotationHandler};
use futures::future::BoxFuture;
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

pub struct Refresher {
    pub api: Api<Secret>,
    pub secret_name: String,
    pub key: String,
    pub writer: AtomicWriter,
    pub notifier: Notifier,
    pub metrics: Arc<Metrics>,
    pub readiness: Readiness,
    pub secret_wait: Duration,
    /// The value last written; also serialises writes from the watch and the webhook.
    written: Mutex<Option<Vec<u8>>>,
}

impl Refresher {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        api: Api<Secret>,
        secret_name: String,
        key: String,
        writer: AtomicWriter,
        notifier: Notifier,
        metrics: Arc<Metrics>,
        readiness: Readiness,
        secret_wait: Duration,
    ) -> Self {
        Refresher {
            api,
            secret_name,
            key,
            writer,
            notifier,
            metrics,
            readiness,
            secret_wait,
            written: Mutex::new(None),
        }
    }

    /// Watches the one Secret (a `metadata.name` field selector, so RBAC can name it) and
    /// applies every version; the watcher re-lists and retries on its own.
    pub async fn watch(self: Arc<Self>) {
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.secret_name));
        let stream = watcher::watcher(self.api.clone(), config)
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream.into_stream());
        while let Some(next) = stream.next().await {
            match next {
                Ok(secret) => {
                    if let Err(err) = self.apply(&secret).await {
                        tracing::error!(error = %err, "cannot write the token file");
                    }
                }
                Err(err) => tracing::warn!(error = %err, "watching the Secret failed; retrying"),
            }
        }
    }

    /// Writes the Secret's value if it is new, then notifies the app. An empty or missing value
    /// is never written: the app keeps the last good token.
    pub async fn apply(&self, secret: &Secret) -> std::io::Result<bool> {
        let Some(value) = secret
            .data
            .as_ref()
            .and_then(|data| data.get(&self.key))
            .map(|bytes| bytes.0.clone())
            .filter(|value| !value.is_empty())
        else {
            tracing::warn!(secret = %self.secret_name, key = %self.key, "the Secret has no value under the key");
            return Ok(false);
        };
        let mut written = self.written.lock().await;
        if written.as_deref() == Some(value.as_slice()) {
            return Ok(false);
        }
        self.writer.write(&value)?;
        *written = Some(value);
        drop(written);
        self.metrics.file_writes.inc();
        self.readiness.set_ready();
        tracing::info!(path = %self.writer.path().display(), rotation = ?rotation(secret), "token file updated");
        let outcome = match self.notifier.notify().await {
            Ok(()) => "ok",
            Err(err) => {
                tracing::warn!(error = %err, "notifying the app failed");
                "failed"
            }
        };
        self.metrics
            .notifications
            .get_or_create(&OutcomeLabels { outcome })
            .inc();
        Ok(true)
    }

    /// Reads the Secret until it holds `rotation` of its token, then applies it.
    async fn refresh_to(&self, token_id: &str, rotation: u64) -> Result<Handled, HandleError> {
        let deadline = tokio::time::Instant::now() + self.secret_wait;
        loop {
            let secret = self.api.get(&self.secret_name).await?;
            let annotations = secret.annotations();
            if annotations.get(keys::TOKEN_ID).map(String::as_str) != Some(token_id) {
                return Ok(Handled {
                    message: format!("Secret {} holds another token", self.secret_name),
                });
            }
            let held = self::rotation(&secret);
            if held.is_some_and(|held| held >= rotation) {
                let changed = self.apply(&secret).await.map_err(|err| {
                    HandleError::Kubernetes(format!("writing the token file: {err}"))
                })?;
                return Ok(Handled {
                    message: format!("rotation {rotation} in place (file changed: {changed})"),
                });
            }
            if tokio::time::Instant::now() + SECRET_POLL > deadline {
                return Err(HandleError::SecretNotReady(format!(
                    "Secret {} holds rotation {held:?}, waiting for {rotation}",
                    self.secret_name
                )));
            }
            tokio::time::sleep(SECRET_POLL).await;
        }
    }
}

fn rotation(secret: &Secret) -> Option<u64> {
    secret
        .annotations()
        .get(keys::ROTATION)?
        .trim()
        .parse()
        .ok()
}

impl RotationHandler for Arc<Refresher> {
    fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>> {
        let refresher = self.clone();
        Box::pin(async move {
            refresher
                .refresh_to(&rotation.token_id, rotation.rotation)
                .await
        })
    }
}
