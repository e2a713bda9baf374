//! Secrets as stored: SHA-256 hashes compared in constant time, whether a token secret still
//! works, and the CSRF token a session's secret implies.

use crate::store::credentials;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tooken_contract::Secret;

pub fn hash_secret(secret: &Secret) -> String {
    hex::encode(Sha256::digest(secret.expose().as_bytes()))
}

/// Constant-time equality of two hex hashes.
pub fn hashes_match(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Why a presented token secret does not work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    Expired,
    Revoked,
    Rotated,
}

/// Whether a stored token secret works at `now`.
pub fn check_token(
    token: &credentials::TokenCredential,
    now: Timestamp,
) -> Result<(), TokenRejection> {
    if token.revoked_at.is_some() {
        Err(TokenRejection::Revoked)
    } else if token.expires_at.is_some_and(|at| at <= now) {
        Err(TokenRejection::Expired)
    } else if token.secret_valid_until.is_some_and(|at| at <= now) {
        Err(TokenRejection::Rotated)
    } else {
        Ok(())
    }
}

/// The CSRF token bound to a session: derived from its secret, so it needs no storage and
/// reveals nothing about the secret.
pub fn csrf_token(session: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tooken-csrf\0");
    hasher.update(session.expose().as_bytes());
    hex::encode(hasher.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::now;
    #[test]
    fn grace_period_and_expiry_are_enforced() {
        let now = now();
        let mut token = credentials::TokenCredential {
            secret_hash: String::new(),
            token_id: "t".into(),
            workspace_id: "w".into(),
            workspace_slug: "s".into(),
            name: "n".into(),
            scopes: vec![],
            name_prefix: None,
            expires_at: None,
            revoked_at: None,
            issued_at: now,
            secret_valid_until: None,
        };
        assert_eq!(check_token(&token, now), Ok(()));
        token.secret_valid_until = Some(now + jiff::SignedDuration::from_secs(1));
        assert_eq!(check_token(&token, now), Ok(()));
        token.secret_valid_until = Some(now);
        assert_eq!(check_token(&token, now), Err(TokenRejection::Rotated));
        token.expires_at = Some(now);
        assert_eq!(check_token(&token, now), Err(TokenRejection::Expired));
        token.revoked_at = Some(now);
        assert_eq!(check_token(&token, now), Err(TokenRejection::Revoked));
    }
}
