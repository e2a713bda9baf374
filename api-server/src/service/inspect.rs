//! What a presented token secret is worth, for the three ways a downstream service asks:
//! verify, RFC 7662 introspection and forward-auth.

use crate::auth::{Gate, Principal, TokenRejection, check_token, hash_secret, hashes_match};
use crate::metrics::{Metrics, VerifyLabels};
use crate::service::Error;
use crate::store::credentials::{Credential, TokenCredential};
use crate::store::{Store, now};
use crate::usage::UsageRecorder;
use tooken_contract::tokens::{VerifyReason, VerifyTokenRequest, VerifyTokenResponse};
use tooken_contract::{Scope, Secret};

/// What verify and introspection ask of their caller before anything else (see `Gate`).
pub const GATE: Gate = Gate::Scope(Scope::TokensRead);

/// What checking a secret needs: the credential lookup, where uses are recorded, and the
/// counters of outcomes.
#[derive(Clone, Copy)]
pub struct Inspector<'a> {
    pub store: &'a Store,
    pub usage: &'a UsageRecorder,
    pub metrics: &'a Metrics,
}

pub struct Inspection {
    pub reason: VerifyReason,
    /// The token the secret belongs to, when it is one of the caller's workspace.
    pub token: Option<TokenCredential>,
}

impl Inspector<'_> {
    /// `POST /v1/tokens/verify`: whether `request.token` works for `actor`'s workspace.
    pub async fn verify(
        self,
        actor: &Principal,
        request: VerifyTokenRequest,
    ) -> Result<VerifyTokenResponse, Error> {
        actor.pass(GATE)?;
        let inspection = self
            .inspect(
                &request.token,
                |token| actor.may_inspect(token),
                &request.scopes,
            )
            .await?;
        Ok(match inspection.token {
            Some(token) => VerifyTokenResponse {
                valid: inspection.reason == VerifyReason::Valid,
                reason: inspection.reason,
                token_id: Some(token.token_id),
                name: Some(token.name),
                scopes: Some(token.scopes),
                expires_at: token.expires_at,
                name_prefix: token.name_prefix,
                secret_expires_at: token.secret_valid_until,
            },
            None => VerifyTokenResponse::invalid(inspection.reason),
        })
    }

    /// RFC 7662 introspection of `token` by `actor`: the same check as verify.
    pub async fn introspect(self, actor: &Principal, token: &str) -> Result<Inspection, Error> {
        actor.pass(GATE)?;
        self.inspect(token, |found| actor.may_inspect(found), &[])
            .await
    }

    /// Checks `presented` as a token secret of the workspace `in_workspace` accepts, holding
    /// every scope in `required`: format, hash lookup, constant-time comparison, revocation,
    /// expiry and rotation. Counts the outcome and records the use of a valid token.
    pub async fn inspect(
        self,
        presented: &str,
        in_workspace: impl Fn(&TokenCredential) -> bool,
        required: &[Scope],
    ) -> Result<Inspection, Error> {
        let now = now();
        let inspection = match Secret::parse(presented) {
            Err(_) => Inspection {
                reason: VerifyReason::Malformed,
                token: None,
            },
            Ok(secret) => {
                let hash = hash_secret(&secret);
                match self.store.find_credential(&hash).await? {
                    Some(Credential::Token(token))
                        if hashes_match(&token.secret_hash, &hash) && in_workspace(&token) =>
                    {
                        let reason = match check_token(&token, now) {
                            Err(TokenRejection::Revoked) => VerifyReason::Revoked,
                            Err(TokenRejection::Expired) => VerifyReason::Expired,
                            Err(TokenRejection::Rotated) => VerifyReason::Rotated,
                            Ok(()) if required.iter().any(|s| !token.scopes.contains(s)) => {
                                VerifyReason::InsufficientScope
                            }
                            Ok(()) => VerifyReason::Valid,
                        };
                        if reason == VerifyReason::Valid {
                            self.usage.record_token(&token.token_id, now);
                        }
                        Inspection {
                            reason,
                            token: Some(token),
                        }
                    }
                    _ => Inspection {
                        reason: VerifyReason::NotFound,
                        token: None,
                    },
                }
            }
        };
        self.metrics
            .verifications
            .get_or_create(&VerifyLabels {
                reason: inspection.reason.as_str(),
            })
            .inc();
        Ok(inspection)
    }
}
