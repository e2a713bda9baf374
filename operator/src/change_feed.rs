//! Changes made to tokens outside the operator (through the API or the dashboard), read from the
//! default connection's audit log: one small request per kind of change and poll, whatever the
//! number of resources, so an idle operator stays nearly silent.
//!
//! The audit log is written in the same transaction as the change, so a poll that fails only
//! delays what the next one reads; nothing is lost while the API is down. A connection the API
//! refuses the audit log to (no `audit:read`) cannot use the feed: the resources it serves are
//! then checked one by one instead (see `controller::FALLBACK_CHECK`).

use crate::metrics::{Metrics, OutcomeLabels};
use futures::channel::mpsc::UnboundedSender;
use jiff::{SignedDuration, Timestamp};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tooken_contract::audit::{AuditEvent, ListAuditParams};
use tooken_contract::{Client, ClientError};

/// The audit events after which a Secret may no longer hold a working token.
pub const CHANGES: [&str; 3] = ["token.rotated", "token.revoked", "token.expired"];

/// Each poll reads this far back before the newest event it has seen, for changes committed a
/// little after others that carry a later time.
const OVERLAP: SignedDuration = SignedDuration::from_secs(30);

/// What the feed asks the controller to look at again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The resources that hold this token.
    Token(String),
    /// Every resource: the feed was just refused, so each must be checked on its own.
    All,
}

/// The rotations the operator made itself, by token, until the feed reads them back: their
/// events must not wake the resource again. (A rotation whose Secret write then failed would
/// otherwise rotate again at every poll instead of backing off.)
#[derive(Debug, Default)]
pub struct OwnRotations(Mutex<HashMap<String, i64>>);

impl OwnRotations {
    pub fn made(&self, token_id: &str, rotation: i64) {
        let mut own = self.0.lock().expect("lock");
        let entry = own.entry(token_id.to_owned()).or_insert(rotation);
        *entry = (*entry).max(rotation);
    }

    /// Whether `event` is the echo of one of the operator's own rotations (forgotten then).
    fn echo(&self, event: &AuditEvent) -> bool {
        if event.kind != "token.rotated" {
            return false;
        }
        let Some(rotation) = event.data["rotation"].as_i64() else {
            return false;
        };
        let mut own = self.0.lock().expect("lock");
        match own.get(&event.target_id) {
            Some(made) if rotation <= *made => {
                if rotation == *made {
                    own.remove(&event.target_id);
                }
                true
            }
            _ => false,
        }
    }
}

/// The events already seen within the overlap, and where the next poll starts.
#[derive(Debug)]
pub struct Window {
    since: Timestamp,
    seen: HashMap<String, Timestamp>,
}

impl Window {
    pub fn starting(now: Timestamp) -> Self {
        Window {
            since: now - OVERLAP,
            seen: HashMap::new(),
        }
    }

    pub fn since(&self) -> Timestamp {
        self.since
    }

    /// The token ids of events not seen before, and not the operator's own rotations; moves
    /// the window to the newest event.
    pub fn fresh(&mut self, events: &[AuditEvent], own: &OwnRotations) -> Vec<String> {
        let mut tokens = Vec::new();
        for event in events {
            if self.seen.contains_key(&event.id) || event.target_type != "token" {
                continue;
            }
            self.seen.insert(event.id.clone(), event.created_at);
            if own.echo(event) {
                continue;
            }
            if !tokens.contains(&event.target_id) {
                tokens.push(event.target_id.clone());
            }
        }
        if let Some(newest) = events.iter().map(|e| e.created_at).max() {
            self.since = self.since.max(newest - OVERLAP);
        }
        let since = self.since;
        self.seen.retain(|_, at| *at >= since);
        tokens
    }
}

pub struct ChangeFeed {
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub interval: Duration,
    /// Set while the API refuses this connection the audit log.
    pub refused: Arc<AtomicBool>,
    pub own: Arc<OwnRotations>,
}

enum Poll {
    Ok(Vec<AuditEvent>),
    Refused(String),
    Unavailable(String),
}

impl ChangeFeed {
    /// Polls until the receiver is gone.
    pub async fn run(self, changes: UnboundedSender<Change>) {
        let mut window = Window::starting(Timestamp::now());
        loop {
            let poll = self.poll(window.since()).await;
            let outcome = match poll {
                Poll::Ok(events) => {
                    if self.refused.swap(false, Ordering::Relaxed) {
                        tracing::info!("the audit log is readable again: changes come from it");
                    }
                    for token in window.fresh(&events, &self.own) {
                        self.metrics.change_feed_triggers.inc();
                        if changes.unbounded_send(Change::Token(token)).is_err() {
                            return;
                        }
                    }
                    "ok"
                }
                Poll::Refused(why) => {
                    if !self.refused.swap(true, Ordering::Relaxed) {
                        tracing::warn!(
                            error = %why,
                            "the default connection may not read the audit log (audit:read); \
                             each resource is checked every minute instead"
                        );
                        if changes.unbounded_send(Change::All).is_err() {
                            return;
                        }
                    }
                    "refused"
                }
                Poll::Unavailable(why) => {
                    tracing::warn!(error = %why, "could not read the audit log; will retry");
                    "unavailable"
                }
            };
            self.metrics
                .change_feed_polls
                .get_or_create(&OutcomeLabels {
                    outcome: outcome.into(),
                })
                .inc();
            tokio::time::sleep(self.interval).await;
        }
    }

    async fn poll(&self, since: Timestamp) -> Poll {
        let mut events = Vec::new();
        for kind in CHANGES {
            let mut params = ListAuditParams {
                kind: Some(kind.into()),
                since: Some(since),
                limit: Some(200),
                ..ListAuditParams::default()
            };
            loop {
                let page = match self.client.list_audit_logs(&params).await {
                    Ok(page) => page,
                    Err(err) => return classify(err),
                };
                events.extend(page.data);
                match page.next_cursor {
                    Some(cursor) => params.cursor = Some(cursor),
                    None => break,
                }
            }
        }
        Poll::Ok(events)
    }
}

fn classify(err: ClientError) -> Poll {
    match err.status().map(|s| s.as_u16()) {
        Some(401 | 403) => Poll::Refused(err.to_string()),
        _ => Poll::Unavailable(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tooken_contract::audit::{Actor, ActorKind};

    fn event(id: &str, token: &str, at: Timestamp) -> AuditEvent {
        AuditEvent {
            id: id.into(),
            kind: "token.rotated".into(),
            actor: Actor {
                kind: ActorKind::Session,
                id: None,
                label: None,
            },
            target_type: "token".into(),
            target_id: token.into(),
            request_id: None,
            created_at: at,
            data: serde_json::json!({}),
        }
    }

    #[test]
    fn each_event_triggers_once_across_overlapping_polls() {
        let start: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
        let mut window = Window::starting(start);
        let none = OwnRotations::default();
        assert_eq!(window.since(), start - OVERLAP);
        let first = [
            event("e1", "t1", start),
            event("e2", "t2", start),
            event("e3", "t1", start),
        ];
        assert_eq!(
            window.fresh(&first, &none),
            ["t1", "t2"],
            "one trigger per token"
        );
        // The next poll reads the overlap again: only the new event counts.
        let later = start + SignedDuration::from_secs(5);
        let second = [event("e3", "t1", start), event("e4", "t1", later)];
        assert_eq!(window.fresh(&second, &none), ["t1"]);
        assert_eq!(window.since(), later - OVERLAP, "follows the newest event");
        assert_eq!(window.fresh(&second, &none), Vec::<String>::new());
    }

    #[test]
    fn a_poll_without_events_keeps_the_start_and_other_targets_are_ignored() {
        let start: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
        let mut window = Window::starting(start);
        let none = OwnRotations::default();
        assert_eq!(window.fresh(&[], &none), Vec::<String>::new());
        assert_eq!(window.since(), start - OVERLAP);
        let mut other = event("e1", "k1", start);
        other.target_type = "api_key".into();
        assert_eq!(window.fresh(&[other], &none), Vec::<String>::new());
    }

    #[test]
    fn the_operators_own_rotations_wake_nothing_and_others_do() {
        let start: Timestamp = "2026-12-02T00:00:00Z".parse().unwrap();
        let mut window = Window::starting(start);
        let own = OwnRotations::default();
        own.made("t1", 2);
        let rotated = |id: &str, rotation: i64| {
            let mut e = event(id, "t1", start);
            e.data = serde_json::json!({"rotation": rotation});
            e
        };
        assert_eq!(
            window.fresh(&[rotated("e1", 1), rotated("e2", 2)], &own),
            Vec::<String>::new(),
            "both made by the operator"
        );
        // Someone else rotates it afterwards: that wakes its resource.
        assert_eq!(window.fresh(&[rotated("e3", 3)], &own), ["t1"]);
        let mut revoked = event("e4", "t1", start);
        revoked.kind = "token.revoked".into();
        own.made("t1", 4);
        assert_eq!(window.fresh(&[revoked], &own), ["t1"], "not a rotation");
    }

    #[test]
    fn forbidden_means_refused_and_anything_else_means_retry() {
        let refused = ClientError::Api {
            status: reqwest::StatusCode::FORBIDDEN,
            body: tooken_contract::error::ErrorBody {
                error: "forbidden".into(),
                message: "needs audit:read".into(),
                field: None,
            },
        };
        assert!(matches!(classify(refused), Poll::Refused(_)));
        let down = ClientError::Api {
            status: reqwest::StatusCode::SERVICE_UNAVAILABLE,
            body: tooken_contract::error::ErrorBody {
                error: "unavailable".into(),
                message: "database down".into(),
                field: None,
            },
        };
        assert!(matches!(classify(down), Poll::Unavailable(_)));
    }
}
