//! The checks a delivery passes before anything acts on it: signature over the raw body (any of
//! several secrets, constant time), envelope shape, freshness of `created_at`, and repeats.

use crate::webhook::error::WebhookError;
use crate::webhook::replay::ReplayCache;
use jiff::Timestamp;
use std::sync::Mutex;
use std::time::Duration;
use tooken_contract::signature::{self, Event};

pub struct Verifier {
    secrets: Vec<Vec<u8>>,
    tolerance: Duration,
    handled: Mutex<ReplayCache>,
}

impl Verifier {
    pub fn new(secrets: Vec<Vec<u8>>, tolerance: Duration, replay_capacity: usize) -> Self {
        Verifier {
            secrets,
            tolerance,
            handled: Mutex::new(ReplayCache::new(replay_capacity, tolerance)),
        }
    }

    /// The event in `body`, if it is signed, fresh and not yet handled.
    /// `event_id_header` (`X-Tooken-Event-Id`) is unsigned, so it only has to agree with the body.
    pub fn check(
        &self,
        signature: Option<&str>,
        event_id_header: Option<&str>,
        body: &[u8],
        now: Timestamp,
    ) -> Result<Event, WebhookError> {
        // The signature first: nothing about an unsigned body is looked at or revealed.
        let signature = signature.ok_or(WebhookError::BadSignature)?;
        if !signature::verify(&self.secrets, signature, body) {
            return Err(WebhookError::BadSignature);
        }
        let event: Event =
            serde_json::from_slice(body).map_err(|err| WebhookError::Malformed(err.to_string()))?;
        if event_id_header.is_some_and(|id| id != event.id) {
            return Err(WebhookError::Malformed(
                "X-Tooken-Event-Id differs from the body's id".into(),
            ));
        }
        // The signed `created_at`, not the unsigned X-Tooken-Timestamp header, decides.
        let age = now.duration_since(event.created_at).unsigned_abs();
        if age > self.tolerance {
            return Err(WebhookError::Stale {
                created_at: event.created_at,
                tolerance_secs: self.tolerance.as_secs(),
            });
        }
        if self.lock().contains(&event.id) {
            return Err(WebhookError::Replayed(event.id));
        }
        Ok(event)
    }

    /// Marks `event` handled. Called only after a 2xx outcome, so a failed attempt can be
    /// delivered again.
    pub fn remember(&self, event: &Event, now: Timestamp) {
        self.lock().insert(&event.id, event.created_at, now);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ReplayCache> {
        self.handled
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Written by `testdata/seed_signature.mjs`, which signs in node as a receiver that hashes
    /// `JSON.stringify` of the parsed body does (one that works unchanged: README "Webhooks",
    /// Verifying a signature).
    const SEED_VECTOR: &str = include_str!("../../testdata/seed_signature.json");

    fn seed_vector() -> (String, String, String) {
        let vector: serde_json::Value = serde_json::from_str(SEED_VECTOR).unwrap();
        let field = |name: &str| vector[name].as_str().unwrap().to_owned();
        (field("secret"), field("body"), field("signature"))
    }

    fn created_at(body: &str) -> Timestamp {
        serde_json::from_str::<Event>(body).unwrap().created_at
    }

    fn verifier(secrets: &[&str]) -> Verifier {
        let secrets = secrets.iter().map(|s| s.as_bytes().to_vec()).collect();
        Verifier::new(secrets, Duration::from_secs(300), 100)
    }

    #[test]
    fn the_seed_receivers_signature_verifies() {
        let (secret, body, signature) = seed_vector();
        let now = created_at(&body);
        let event = verifier(&["whsec_old", &secret])
            .check(Some(&signature), None, body.as_bytes(), now)
            .unwrap();
        assert_eq!(event.kind, "token.rotated");
        assert_eq!(event.id, "01a21672-866e-74ee-a22d-bff2c4892193");
    }

    #[test]
    fn a_wrong_or_missing_signature_is_refused() {
        let (secret, body, signature) = seed_vector();
        let now = created_at(&body);
        let verifier = verifier(&[&secret]);
        let tampered = body.replace("\"rotation\":1", "\"rotation\":2");
        for (signature, body) in [
            (None, body.as_str()),
            (Some(signature.as_str()), tampered.as_str()),
            (Some("sha256=00"), body.as_str()),
        ] {
            let err = verifier
                .check(signature, None, body.as_bytes(), now)
                .unwrap_err();
            assert!(matches!(err, WebhookError::BadSignature), "{err:?}");
        }
        let err = self::verifier(&["another"])
            .check(Some(&signature), None, body.as_bytes(), now)
            .unwrap_err();
        assert!(matches!(err, WebhookError::BadSignature));
    }

    #[test]
    fn stale_and_future_events_are_refused() {
        let (secret, body, signature) = seed_vector();
        let created = created_at(&body);
        let verifier = verifier(&[&secret]);
        let check = |now: Timestamp| verifier.check(Some(&signature), None, body.as_bytes(), now);
        assert!(check(created + Duration::from_secs(299)).is_ok());
        assert!(matches!(
            check(created + Duration::from_secs(301)),
            Err(WebhookError::Stale { .. })
        ));
        assert!(matches!(
            check(created - Duration::from_secs(301)),
            Err(WebhookError::Stale { .. })
        ));
    }

    #[test]
    fn a_handled_event_is_refused_when_repeated_but_a_failed_one_is_not() {
        let (secret, body, signature) = seed_vector();
        let now = created_at(&body);
        let verifier = verifier(&[&secret]);
        let event = verifier
            .check(Some(&signature), None, body.as_bytes(), now)
            .unwrap();
        // Not remembered yet (as after a 5xx): the retry is accepted.
        assert!(
            verifier
                .check(Some(&signature), None, body.as_bytes(), now)
                .is_ok()
        );
        verifier.remember(&event, now);
        let err = verifier
            .check(Some(&signature), None, body.as_bytes(), now)
            .unwrap_err();
        assert!(matches!(err, WebhookError::Replayed(id) if id == event.id));
    }

    #[test]
    fn a_signed_body_that_is_not_an_event_or_disagrees_with_its_header_is_malformed() {
        let verifier = verifier(&["s"]);
        let body = br#"{"hello":"world"}"#;
        let signature = signature::sign(b"s", body);
        let err = verifier
            .check(Some(&signature), None, body, Timestamp::now())
            .unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)));

        let (secret, body, signature) = seed_vector();
        let err = self::verifier(&[&secret])
            .check(
                Some(&signature),
                Some("other-id"),
                body.as_bytes(),
                created_at(&body),
            )
            .unwrap_err();
        assert!(matches!(err, WebhookError::Malformed(_)));
    }
}
