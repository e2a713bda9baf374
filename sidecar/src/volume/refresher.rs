//! Keeps the token file current: on every change of the watched Secret, and at once when a
//! local `token.rotated` webhook says a newer rotation exists.

use super::atomic_writer::AtomicWriter;
use super::notify::Notifier;
use crate::keys;
use crate::metrics::{Metrics, OutcomeLabels};
use crate::ops::Readiness;
use crate::secret_poll::SECRET_POLL;
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

/// The delivery is answered at once: the watch applies every change of the Secret anyway, so
/// a refresh that outlives the sender's timeout loses nothing; this one only makes it sooner.
impl RotationHandler for Arc<Refresher> {
    fn handle(&self, rotation: Rotation) -> BoxFuture<'static, Result<Handled, HandleError>> {
        let refresher = self.clone();
        let message = format!(
            "refreshing to rotation {} of token {}",
            rotation.rotation, rotation.token_id
        );
        tokio::spawn(async move {
            if let Err(err) = refresher
                .refresh_to(&rotation.token_id, rotation.rotation)
                .await
            {
                tracing::warn!(error = %err, "early refresh gave up; the watch applies the Secret when it changes");
            }
        });
        Box::pin(async move { Ok(Handled { message }) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response};
    use kube::client::Body;
    use std::collections::VecDeque;
    use std::sync::Mutex as StdMutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use warp::Filter;

    fn secret(token_id: &str, rotation: u64, value: &str) -> Secret {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "web-token", "namespace": "apps",
                         "annotations": {keys::TOKEN_ID: token_id, keys::ROTATION: rotation.to_string()}},
            "data": {"token": base64(value)}
        }))
        .unwrap()
    }

    fn base64(value: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(value)
    }

    /// A Kubernetes API double answering each GET with the next of `secrets`; counts requests.
    fn api(secrets: Vec<Secret>) -> (Api<Secret>, Arc<AtomicUsize>) {
        let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
        let queue = Arc::new(StdMutex::new(VecDeque::from(secrets)));
        let gets = Arc::new(AtomicUsize::new(0));
        let count = gets.clone();
        tokio::spawn(async move {
            while let Some((request, send)) = handle.next_request().await {
                assert_eq!(request.method(), "GET");
                assert_eq!(
                    request.uri().path(),
                    "/api/v1/namespaces/apps/secrets/web-token"
                );
                count.fetch_add(1, Ordering::SeqCst);
                let mut queue = queue.lock().unwrap();
                let next = if queue.len() > 1 {
                    queue.pop_front()
                } else {
                    queue.front().cloned()
                };
                let body = serde_json::to_vec(&next.expect("a canned Secret")).unwrap();
                send.send_response(Response::builder().body(Body::from(body)).unwrap());
            }
        });
        (
            Api::namespaced(kube::Client::new(service, "apps"), "apps"),
            gets,
        )
    }

    fn refresher(api: Api<Secret>, dir: &std::path::Path, notifier: Notifier) -> Refresher {
        Refresher::new(
            api,
            "web-token".into(),
            "token".into(),
            AtomicWriter::new(dir, "token", 0o440).unwrap(),
            notifier,
            Arc::default(),
            Readiness::default(),
            Duration::from_secs(3),
        )
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir =
            std::env::temp_dir().join(format!("tooken-refresher-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[tokio::test]
    async fn new_values_are_written_once_and_empty_ones_never() {
        let dir = temp_dir("apply");
        let (api, _) = api(vec![]);
        let refresher = refresher(api, &dir, Notifier::new(None, None).unwrap());
        assert!(!refresher.readiness.is_ready());
        assert!(
            refresher
                .apply(&secret("t1", 1, "tok_live_one"))
                .await
                .unwrap()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("token")).unwrap(),
            "tok_live_one"
        );
        assert!(
            refresher.readiness.is_ready(),
            "ready after the first write"
        );
        assert!(
            !refresher
                .apply(&secret("t1", 1, "tok_live_one"))
                .await
                .unwrap(),
            "unchanged: no write"
        );
        assert!(
            !refresher.apply(&secret("t1", 2, "")).await.unwrap(),
            "empty: never written"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("token")).unwrap(),
            "tok_live_one"
        );
        assert_eq!(refresher.metrics.file_writes.get(), 1);
    }

    #[tokio::test]
    async fn a_rotation_webhook_waits_for_the_secret_then_writes_it() {
        let dir = temp_dir("wait");
        let (api, gets) = api(vec![
            secret("t1", 1, "tok_live_old"),
            secret("t1", 2, "tok_live_new"),
        ]);
        let refresher = refresher(api, &dir, Notifier::new(None, None).unwrap());
        let handled = refresher.refresh_to("t1", 2).await.unwrap();
        assert!(
            handled.message.contains("rotation 2"),
            "{}",
            handled.message
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("token")).unwrap(),
            "tok_live_new"
        );
        assert_eq!(
            gets.load(Ordering::SeqCst),
            2,
            "read again until the rotation was there"
        );
    }

    #[tokio::test]
    async fn a_secret_that_never_catches_up_is_an_error_and_writes_nothing() {
        let dir = temp_dir("stale");
        let (api, _) = api(vec![secret("t1", 1, "tok_live_old")]);
        let mut refresher = refresher(api, &dir, Notifier::new(None, None).unwrap());
        refresher.secret_wait = Duration::from_millis(600);
        let err = refresher.refresh_to("t1", 2).await.unwrap_err();
        assert!(matches!(err, HandleError::SecretNotReady(_)), "{err:?}");
        assert!(!dir.join("token").exists());
    }

    #[tokio::test]
    async fn a_secret_of_another_token_is_left_alone() {
        let dir = temp_dir("other");
        let (api, _) = api(vec![secret("t9", 5, "tok_live_other")]);
        let refresher = refresher(api, &dir, Notifier::new(None, None).unwrap());
        let handled = refresher.refresh_to("t1", 2).await.unwrap();
        assert!(
            handled.message.contains("another token"),
            "{}",
            handled.message
        );
        assert!(!dir.join("token").exists());
    }

    #[tokio::test]
    async fn the_app_is_notified_over_http_after_each_write() {
        let calls = Arc::new(AtomicUsize::new(0));
        let seen = calls.clone();
        let route = warp::path!("reload").and(warp::post()).map(move || {
            seen.fetch_add(1, Ordering::SeqCst);
            "ok"
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/reload", listener.local_addr().unwrap());
        tokio::spawn(warp::serve(route).incoming(listener).run());
        let _ = rustls::crypto::ring::default_provider().install_default();
        let dir = temp_dir("notify");
        let (api, _) = api(vec![]);
        let refresher = refresher(api, &dir, Notifier::new(Some(url), None).unwrap());
        refresher
            .apply(&secret("t1", 1, "tok_live_one"))
            .await
            .unwrap();
        refresher
            .apply(&secret("t1", 1, "tok_live_one"))
            .await
            .unwrap();
        refresher
            .apply(&secret("t1", 2, "tok_live_two"))
            .await
            .unwrap();
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one notification per new value"
        );
    }
}
