//! Coalescing: rotations of one token that arrive within a window are handled by one attempt,
//! for the highest rotation among them, and every caller that waits gets that attempt's answer.

use crate::webhook::{HandleError, Handled};
use futures::future::BoxFuture;
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;

type Outcome = Result<Handled, HandleError>;

/// The attempt: token id, highest rotation, earliest receipt (for the latency metric).
pub type Attempt = Arc<dyn Fn(String, u64, Instant) -> BoxFuture<'static, Outcome> + Send + Sync>;

#[derive(Clone)]
pub struct Coalescer {
    window: Duration,
    attempt: Attempt,
    pending: Arc<Mutex<HashMap<String, Pending>>>,
}

/// A batch still gathering deliveries; it leaves the map when its attempt starts, so later
/// deliveries form a new batch (and the attempt's `resourceVersion` preconditions and
/// rotation annotations keep a concurrent attempt from restarting twice).
struct Pending {
    rotation: u64,
    received: Instant,
    done: watch::Receiver<Option<Outcome>>,
}

impl Coalescer {
    pub fn new(window: Duration, attempt: Attempt) -> Self {
        Coalescer {
            window,
            attempt,
            pending: Arc::default(),
        }
    }

    /// Joins (or opens) the batch of `token_id` and resolves with its attempt's outcome.
    /// The attempt runs in its own task, so a delivery whose connection drops does not cancel
    /// the work other deliveries wait for.
    pub fn submit(
        &self,
        token_id: String,
        rotation: u64,
        received: Instant,
    ) -> impl Future<Output = Outcome> + Send + 'static {
        let mut done = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            match pending.get_mut(&token_id) {
                Some(batch) => {
                    batch.rotation = batch.rotation.max(rotation);
                    batch.received = batch.received.min(received);
                    batch.done.clone()
                }
                None => {
                    let (sender, done) = watch::channel(None);
                    pending.insert(
                        token_id.clone(),
                        Pending {
                            rotation,
                            received,
                            done: done.clone(),
                        },
                    );
                    tokio::spawn(run_batch(
                        self.pending.clone(),
                        self.attempt.clone(),
                        self.window,
                        token_id,
                        sender,
                    ));
                    done
                }
            }
        };
        async move {
            match done.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone().expect("waited for Some"),
                Err(_) => Err(HandleError::Kubernetes(
                    "the restart attempt ended without an answer".into(),
                )),
            }
        }
    }
}

async fn run_batch(
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    attempt: Attempt,
    window: Duration,
    token_id: String,
    sender: watch::Sender<Option<Outcome>>,
) {
    tokio::time::sleep(window).await;
    let batch = pending
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&token_id)
        .expect("only this task removes its batch");
    let outcome = attempt(token_id, batch.rotation, batch.received).await;
    let _ = sender.send(Some(outcome));
}
