//! What the operator sends to Tooken, and under which `Idempotency-Key`.
//!
//! The API refuses a key reused with a different body, and keeps keys for 24 hours, so a key
//! that ever meets two bodies would stay refused for a day. Two rules keep that from happening:
//! - bodies are derived from stored facts (the token as the API reports it now, the spec, or a
//!   value written ahead in the status), never from the time of the attempt;
//! - a rotation's key names the generation it rotates from, read fresh from the API, and a hash
//!   of its body, so one key can only ever carry one body.

use crate::crd::TookenToken;
use crate::duration;
use jiff::{SignedDuration, Timestamp};
use kube::ResourceExt;
use sha2::{Digest, Sha256};
use tooken_contract::tokens::{CreateTokenRequest, RotateTokenRequest, Token};

pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

fn short_hash(value: &str) -> String {
    sha256_hex(value)[..16].to_owned()
}

fn spec_duration(text: Option<&str>) -> Option<SignedDuration> {
    text.and_then(|t| duration::parse(t).ok())
}

pub fn grace_seconds(tt: &TookenToken) -> u64 {
    spec_duration(tt.spec.grace_period.as_deref())
        .map(|d| d.as_secs().max(0) as u64)
        .unwrap_or(0)
}

/// The token's name in Tooken: it says which resource holds it, and lets an orphan be found.
pub fn token_name(tt: &TookenToken) -> String {
    format!(
        "k8s:{}/{}",
        tt.namespace().unwrap_or_default(),
        tt.name_any()
    )
}

/// What every token the operator issues is confined to: the names of its own namespace, so
/// whoever can read its Secret can never see or manage another namespace's tokens.
pub fn name_prefix(tt: &TookenToken) -> String {
    format!("k8s:{}/", tt.namespace().unwrap_or_default())
}

/// The labels that say which namespace and resource a token serves, in the audit log and the
/// dashboard.
pub fn labels(tt: &TookenToken) -> tooken_contract::labels::Labels {
    [
        ("tooken.io/namespace", tt.namespace().unwrap_or_default()),
        ("tooken.io/tookentoken", tt.name_any()),
        ("tooken.io/uid", tt.uid().unwrap_or_default()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

/// The key of the create that issues the token for these scopes, replacing `previous`.
/// Unchanged from earlier operator versions, so their stored responses still replay.
pub fn issue_key(tt: &TookenToken, scopes_debug: &str, previous: Option<&str>) -> String {
    let fingerprint = sha256_hex(&format!("{scopes_debug}/{}", previous.unwrap_or("first")));
    format!(
        "tookentoken-{}-issue-{}",
        tt.uid().unwrap_or_default(),
        &fingerprint[..16]
    )
}

/// A key for a create whose first key was refused: bound to this exact body, so it can never
/// be refused in turn.
pub fn issue_retry_key(key: &str, request: &CreateTokenRequest) -> String {
    format!("{key}-{}", short_hash(&body(request)))
}

/// Whether the create body depends on the time of issue (a lifetime), and must therefore be
/// written ahead in the status so a retry sends the same one.
pub fn issue_depends_on_time(tt: &TookenToken) -> bool {
    tt.spec.expiry.as_ref().is_some_and(|e| e.after.is_some())
}

/// The expiry to ask for when issuing at `now`: a lifetime from now, a fixed time, or the
/// workspace default (absent).
pub fn expiry_at_issue(tt: &TookenToken, now: Timestamp) -> Option<Option<Timestamp>> {
    let expiry = tt.spec.expiry.as_ref()?;
    if let Some(after) = spec_duration(expiry.after.as_deref()) {
        return Some(Some(now + after));
    }
    expiry.at.as_deref().and_then(|t| t.parse().ok()).map(Some)
}

/// When to rotate next: `every` after the last rotation, and `beforeExpiry` before expiry
/// (default: a tenth of the lifetime, at most a day), whichever comes first.
pub fn next_rotation(
    tt: &TookenToken,
    last: Timestamp,
    expires_at: Option<Timestamp>,
) -> Option<Timestamp> {
    let policy = tt.spec.rotation.as_ref();
    let every = spec_duration(policy.and_then(|p| p.every.as_deref())).map(|d| last + d);
    let before_expiry = expires_at.map(|at| {
        let lead =
            spec_duration(policy.and_then(|p| p.before_expiry.as_deref())).unwrap_or_else(|| {
                let tenth = SignedDuration::from_secs(at.duration_since(last).as_secs() / 10);
                tenth.min(SignedDuration::from_hours(24))
            });
        at - lead
    });
    [every, before_expiry].into_iter().flatten().min()
}

pub fn last_rotation(token: &Token) -> Timestamp {
    token.rotated_at.unwrap_or(token.created_at)
}

/// The rotation of `token` as it is now, due on schedule or not. A scheduled rotation renews
/// the lifetime from the time it was due (not from the time of the attempt), and never
/// shortens it; any other rotation (repair, request, healing) keeps the expiry.
pub fn rotate_request(tt: &TookenToken, token: &Token, scheduled: bool) -> RotateTokenRequest {
    let last = last_rotation(token);
    let renewed = || {
        let lifetime = match &tt.spec.expiry {
            Some(expiry) if expiry.at.is_some() => return None,
            Some(expiry) => spec_duration(expiry.after.as_deref())?,
            None => token.expires_at?.duration_since(last),
        };
        let due = next_rotation(tt, last, token.expires_at)?;
        let at = (due + lifetime).max(token.expires_at.unwrap_or(due + lifetime));
        Some(Some(at))
    };
    RotateTokenRequest {
        grace_period_seconds: Some(grace_seconds(tt)),
        expires_at: if scheduled { renewed() } else { None },
    }
}

/// The key of a rotation of `token` from its current generation, bound to its body.
pub fn rotate_key(tt: &TookenToken, token: &Token, request: &RotateTokenRequest) -> String {
    format!(
        "tookentoken-{}-rotate-{}-{}-{}",
        tt.uid().unwrap_or_default(),
        token.id,
        token.rotation,
        short_hash(&body(request))
    )
}

/// The key of the rotation asked for by `tooken.io/rotate-at: <value>`, made while the status
/// recorded generation `recorded`: the same for every attempt until the status records that it
/// was done, so a crash after it took effect replays it rather than rotating twice.
pub fn requested_rotate_key(
    tt: &TookenToken,
    recorded: Option<i64>,
    token: &Token,
    value: &str,
    request: &RotateTokenRequest,
) -> String {
    format!(
        "tookentoken-{}-rotate-{}-at-{}-{}-{}",
        tt.uid().unwrap_or_default(),
        token.id,
        recorded.map_or("none".into(), |r| r.to_string()),
        short_hash(value),
        short_hash(&body(request))
    )
}

/// The JSON the client sends, which is what the API fingerprints.
fn body<T: serde::Serialize>(request: &T) -> String {
    serde_json::to_string(request).expect("request bodies serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::{Expiry, RotationPolicy, TokenScope, TookenTokenSpec};
    use tooken_contract::tokens::TokenStatus;

    fn resource(expiry: Option<Expiry>) -> TookenToken {
        let mut tt = TookenToken::new(
            "ci",
            TookenTokenSpec {
                scopes: vec![TokenScope::TokensRead],
                expiry,
                rotation: Some(RotationPolicy {
                    every: Some("1h".into()),
                    before_expiry: None,
                }),
                grace_period: Some("5m".into()),
                secret: Default::default(),
                restart_on_rotation: vec![],
                connection: None,
                deletion_policy: Default::default(),
            },
        );
        tt.metadata.uid = Some("uid-1".into());
        tt
    }

    fn token(rotation: i64) -> Token {
        let created: Timestamp = "2026-12-01T00:00:00Z".parse().unwrap();
        Token {
            id: "t1".into(),
            name: "k8s:apps/ci".into(),
            scopes: vec![],
            status: TokenStatus::Active,
            prefix: "tok_live_abcd".into(),
            created_at: created,
            expires_at: Some(created + SignedDuration::from_hours(90 * 24)),
            revoked_at: None,
            last_used_at: None,
            rotated_at: None,
            rotation,
            name_prefix: Some("k8s:apps/".into()),
            labels: Default::default(),
        }
    }

    #[test]
    fn a_scheduled_rotation_renews_from_when_it_was_due_not_from_the_attempt() {
        let tt = resource(None);
        let token = token(0);
        let request = rotate_request(&tt, &token, true);
        let due = token.created_at + SignedDuration::from_hours(1);
        assert_eq!(
            request.expires_at,
            Some(Some(due + SignedDuration::from_hours(90 * 24))),
            "the inherited lifetime, renewed from the due time"
        );
        assert_eq!(request.grace_period_seconds, Some(300));
        let with_after = resource(Some(Expiry {
            after: Some("24h".into()),
            at: None,
        }));
        assert_eq!(
            rotate_request(&with_after, &token, true).expires_at,
            Some(token.expires_at),
            "a lifetime that would shorten the token keeps its expiry"
        );
        assert_eq!(rotate_request(&tt, &token, false).expires_at, None);
    }

    #[test]
    fn a_rotation_key_always_carries_the_same_body() {
        let tt = resource(None);
        let first = rotate_request(&tt, &token(0), true);
        // The same facts give the same key and body, whenever the attempt is made.
        assert_eq!(first, rotate_request(&tt, &token(0), true));
        assert_eq!(
            rotate_key(&tt, &token(0), &first),
            rotate_key(&tt, &token(0), &first)
        );
        // Another body, or another generation, is another key.
        let unscheduled = rotate_request(&tt, &token(0), false);
        assert_ne!(
            rotate_key(&tt, &token(0), &first),
            rotate_key(&tt, &token(0), &unscheduled)
        );
        assert_ne!(
            rotate_key(&tt, &token(0), &first),
            rotate_key(&tt, &token(1), &first)
        );
        let key = rotate_key(&tt, &token(0), &first);
        assert!(key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()));
    }
}
