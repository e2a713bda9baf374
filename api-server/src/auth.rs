//! Who is calling: turning `Authorization: Bearer …` into a principal, and what it may do.

use crate::confinement;
use crate::http::error::ApiError;
use crate::store::credentials::{self, Credential};
use crate::store::{Store, StoreError, members, now, sessions};
use crate::usage::UsageRecorder;
use jiff::Timestamp;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tooken_contract::Scope;
use tooken_contract::Secret;
use tooken_contract::api_keys::ApiKeyKind;
use tooken_contract::audit::{Actor, ActorKind};
use tooken_contract::credential::{CredentialFormatError, SecretKind};
use tooken_contract::members::Role;

#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalKind {
    /// Full workspace access.
    TeamKey { key_id: String },
    /// Acts with its member's role.
    PersonalKey {
        key_id: String,
        member_id: String,
        role: Role,
    },
    /// A signed-in person, acting with their role in the workspace addressed.
    Session {
        session_id: String,
        user_id: String,
        member_id: String,
        role: Role,
    },
    /// Limited to its scopes, and when confined, to tokens whose name starts with its prefix.
    Token {
        token_id: String,
        scopes: Vec<Scope>,
        name_prefix: Option<String>,
    },
}

/// The caller of one request: its workspace, its credential, and the request id.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub workspace_id: String,
    pub kind: PrincipalKind,
    /// A readable name for the audit log: the key or token name, or the person's email.
    pub label: Option<String>,
    pub request_id: Option<String>,
}

impl Principal {
    /// The credential's id: API key, session or token id.
    pub fn credential_id(&self) -> &str {
        match &self.kind {
            PrincipalKind::TeamKey { key_id } | PrincipalKind::PersonalKey { key_id, .. } => key_id,
            PrincipalKind::Session { session_id, .. } => session_id,
            PrincipalKind::Token { token_id, .. } => token_id,
        }
    }

    /// How the principal is named in records it leaves behind, e.g. `api_key:<id>`.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::TeamKey { key_id } | PrincipalKind::PersonalKey { key_id, .. } => {
                format!("api_key:{key_id}")
            }
            PrincipalKind::Session { user_id, .. } => format!("user:{user_id}"),
            PrincipalKind::Token { token_id, .. } => format!("token:{token_id}"),
        }
    }

    /// The actor as the audit log shows it.
    pub fn audit_actor(&self) -> Actor {
        let (kind, id) = match &self.kind {
            PrincipalKind::TeamKey { key_id } => (ActorKind::TeamKey, key_id),
            PrincipalKind::PersonalKey { key_id, .. } => (ActorKind::PersonalKey, key_id),
            PrincipalKind::Session { user_id, .. } => (ActorKind::Session, user_id),
            PrincipalKind::Token { token_id, .. } => (ActorKind::Token, token_id),
        };
        Actor {
            kind,
            id: Some(id.clone()),
            label: self.label.clone(),
        }
    }

    pub fn member_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::PersonalKey { member_id, .. }
            | PrincipalKind::Session { member_id, .. } => Some(member_id),
            _ => None,
        }
    }

    /// The member role a person acts with; `None` for team keys and tokens.
    pub fn role(&self) -> Option<Role> {
        match &self.kind {
            PrincipalKind::PersonalKey { role, .. } | PrincipalKind::Session { role, .. } => {
                Some(*role)
            }
            _ => None,
        }
    }

    /// The prefix a confined token is limited to; `None` for everyone else.
    pub fn name_prefix(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Token { name_prefix, .. } => name_prefix.as_deref(),
            _ => None,
        }
    }

    /// Whether the principal may see and manage the token called `name`.
    pub fn sees_token(&self, name: &str) -> bool {
        confinement::within(self.name_prefix(), name)
    }

    /// Whether a check of a presented secret (verify, introspection) may name `token`: one of
    /// the principal's workspace, inside its view; any other is answered as unknown.
    pub fn may_inspect(&self, token: &credentials::TokenCredential) -> bool {
        token.workspace_id == self.workspace_id && self.sees_token(&token.name)
    }

    /// Whether the principal may act with `scope`. A confined token never reaches past its
    /// prefix, whatever it holds.
    pub fn permits(&self, scope: Scope) -> bool {
        match &self.kind {
            PrincipalKind::TeamKey { .. } => true,
            PrincipalKind::PersonalKey { role, .. } | PrincipalKind::Session { role, .. } => {
                role_permits(*role, scope)
            }
            PrincipalKind::Token {
                scopes,
                name_prefix,
                ..
            } => scopes.contains(&scope) && !(name_prefix.is_some() && scope.is_workspace_wide()),
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.permits(scope) {
            return Ok(());
        }
        if let Some(prefix) = self.name_prefix()
            && scope.is_workspace_wide()
        {
            return Err(confinement::outside(
                prefix,
                &format!("`{scope}` reaches the whole workspace"),
            ));
        }
        Err(ApiError::Forbidden(match self.role() {
            Some(role) => format!("the {} role does not allow `{scope}`", role.as_str()),
            None => format!("this token lacks the `{scope}` scope"),
        }))
    }

    /// For what belongs to the whole workspace rather than to tokens (its settings).
    pub fn require_unconfined(&self, what: &str) -> Result<(), ApiError> {
        match self.name_prefix() {
            Some(prefix) => Err(confinement::outside(
                prefix,
                &format!("{what} belong to the whole workspace"),
            )),
            None => Ok(()),
        }
    }

    /// API keys and settings are managed by people and team keys, never by tokens.
    pub fn require_api_key(&self) -> Result<(), ApiError> {
        match self.kind {
            PrincipalKind::Token { .. } => Err(ApiError::Forbidden(
                "tokens cannot manage API keys or settings; use an API key".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Settings (workspace, members): Owners and team keys only, as the seeds' role table says.
    pub fn require_settings(&self) -> Result<(), ApiError> {
        self.require_api_key()?;
        match self.role() {
            None | Some(Role::Owner) => Ok(()),
            Some(role) => Err(ApiError::Forbidden(format!(
                "the {} role cannot manage settings; only owners can",
                role.as_str()
            ))),
        }
    }

    /// Owners and team keys manage every API key; other members only their own personal keys.
    pub fn may_manage_key_of(&self, kind: ApiKeyKind, member_id: Option<&str>) -> bool {
        match (&self.kind, self.role()) {
            (PrincipalKind::TeamKey { .. }, _) => true,
            (PrincipalKind::Token { .. }, _) => false,
            (_, Some(Role::Owner)) => true,
            _ => {
                kind == ApiKeyKind::Personal && member_id.is_some() && member_id == self.member_id()
            }
        }
    }
}

/// The seeds' role table: Owner does everything; Admin creates, rotates and revokes tokens and
/// reads the audit log, but changes no settings (webhooks are settings); Viewer only reads.
pub fn role_permits(role: Role, scope: Scope) -> bool {
    match scope {
        Scope::TokensRead | Scope::WebhooksRead => true,
        Scope::TokensWrite | Scope::TokensRevoke | Scope::TokensRotate | Scope::AuditRead => {
            role != Role::Viewer
        }
        Scope::WebhooksWrite => role == Role::Owner,
    }
}

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

/// Parses `Bearer <secret>`; the scheme is case-insensitive (RFC 9110 §11.1).
pub fn bearer(header: Option<&str>) -> Result<Secret, CredentialFormatError> {
    let value = header.ok_or(CredentialFormatError::Prefix)?;
    let (scheme, rest) = value.split_once(' ').ok_or(CredentialFormatError::Prefix)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(CredentialFormatError::Prefix);
    }
    Secret::parse(rest)
}

/// The dashboard's session cookie. It is HttpOnly, so page scripts never see the secret.
pub const SESSION_COOKIE: &str = "tooken_session";

/// The header that must repeat a cookie session's CSRF token on every change.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The CSRF token bound to a session: derived from its secret, so it needs no storage and
/// reveals nothing about the secret.
pub fn csrf_token(session: &Secret) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"tooken-csrf\0");
    hasher.update(session.expose().as_bytes());
    hex::encode(hasher.finalize())
}

/// The session secret in a `Cookie` header, if there is one.
pub fn session_cookie(header: Option<&str>) -> Option<&str> {
    header?.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == SESSION_COOKIE && !value.is_empty()).then_some(value)
    })
}

/// Whether `Sec-Fetch-Site` says another site sent the request. Browsers set it on every
/// request; tools that do not send it are not browsers and carry no ambient cookies.
pub fn is_cross_site(fetch_site: Option<&str>) -> bool {
    matches!(fetch_site, Some("cross-site" | "same-site"))
}

/// How a request presents its credential: a bearer header, or the dashboard's cookie.
#[derive(Debug, Clone, Default)]
pub struct Presented {
    pub authorization: Option<String>,
    pub cookie: Option<String>,
    pub csrf_token: Option<String>,
    pub fetch_site: Option<String>,
    /// GET and HEAD change nothing, so they need no CSRF token.
    pub safe_method: bool,
}

/// A credential and whether it came from the session cookie.
pub struct PresentedSecret {
    pub secret: Secret,
    pub from_cookie: bool,
}

impl Presented {
    /// The bearer header wins; a cookie session must also pass the CSRF check on changes.
    pub fn secret(&self) -> Result<PresentedSecret, ApiError> {
        if self.authorization.is_some() {
            let secret =
                bearer(self.authorization.as_deref()).map_err(|_| ApiError::Unauthorized)?;
            return Ok(PresentedSecret {
                secret,
                from_cookie: false,
            });
        }
        let value = session_cookie(self.cookie.as_deref()).ok_or(ApiError::Unauthorized)?;
        let secret = Secret::parse(value).map_err(|_| ApiError::Unauthorized)?;
        if secret.kind() != SecretKind::Session {
            return Err(ApiError::Unauthorized);
        }
        if !self.safe_method {
            let expected = csrf_token(&secret);
            let presented = self.csrf_token.as_deref().unwrap_or_default();
            if is_cross_site(self.fetch_site.as_deref()) || !hashes_match(&expected, presented) {
                return Err(ApiError::CsrfRejected);
            }
        }
        Ok(PresentedSecret {
            secret,
            from_cookie: true,
        })
    }
}

/// What a request names about itself before authentication.
#[derive(Debug, Clone, Default)]
pub struct RequestFacts<'a> {
    pub presented: Presented,
    /// The workspace slug of a `/v1/workspaces/{slug}/…` path.
    pub slug: Option<&'a str>,
    pub request_id: Option<String>,
}

/// Authenticates a request to a workspace route.
pub async fn authenticate(
    store: &Store,
    usage: &UsageRecorder,
    facts: RequestFacts<'_>,
) -> Result<Principal, ApiError> {
    let secret = facts.presented.secret()?.secret;
    let hash = hash_secret(&secret);
    if secret.kind() == SecretKind::Session {
        return authenticate_session_in_workspace(store, &hash, facts).await;
    }
    let found = store.find_credential(&hash).await?;
    let now = now();
    let (principal, workspace_slug) = match found {
        Some(Credential::Token(token)) if hashes_match(&token.secret_hash, &hash) => {
            check_token(&token, now).map_err(|_| ApiError::Unauthorized)?;
            usage.record_token(&token.token_id, now);
            (
                Principal {
                    workspace_id: token.workspace_id,
                    kind: PrincipalKind::Token {
                        token_id: token.token_id,
                        scopes: token.scopes,
                        name_prefix: token.name_prefix,
                    },
                    label: Some(token.name),
                    request_id: facts.request_id,
                },
                token.workspace_slug,
            )
        }
        Some(Credential::ApiKey(key)) if hashes_match(&key.secret_hash, &hash) => {
            let (kind, label) = match (key.kind, key.member_id, key.role) {
                (ApiKeyKind::Team, _, _) => (
                    PrincipalKind::TeamKey {
                        key_id: key.key_id.clone(),
                    },
                    key.name,
                ),
                (ApiKeyKind::Personal, Some(member_id), Some(role)) => (
                    PrincipalKind::PersonalKey {
                        key_id: key.key_id.clone(),
                        member_id,
                        role,
                    },
                    key.member_email.unwrap_or(key.name),
                ),
                // A personal key whose member is gone no longer works.
                (ApiKeyKind::Personal, _, _) => return Err(ApiError::Unauthorized),
            };
            usage.record_api_key(&key.key_id, now);
            (
                Principal {
                    workspace_id: key.workspace_id,
                    kind,
                    label: Some(label),
                    request_id: facts.request_id,
                },
                key.workspace_slug,
            )
        }
        _ => return Err(ApiError::Unauthorized),
    };
    if facts.slug.is_some_and(|slug| slug != workspace_slug) {
        // Another workspace's path: answer as if it did not exist.
        return Err(ApiError::NotFound("workspace"));
    }
    Ok(principal)
}

/// A signed-in person, not yet bound to a workspace.
#[derive(Debug, Clone, PartialEq)]
pub struct UserSession {
    pub session_id: String,
    pub user_id: String,
    pub email: String,
    pub request_id: Option<String>,
    /// Set when the session came from the dashboard's cookie: the token its changes must carry.
    pub csrf_token: Option<String>,
}

/// Authenticates a request to a user route (`/v1/auth/…`, `POST /v1/workspaces`): sessions only.
pub async fn authenticate_user(
    store: &Store,
    presented: &Presented,
    request_id: Option<String>,
) -> Result<UserSession, ApiError> {
    let PresentedSecret {
        secret,
        from_cookie,
    } = presented.secret()?;
    if secret.kind() != SecretKind::Session {
        return Err(ApiError::Forbidden(
            "this route needs a signed-in session (POST /v1/auth/signin), not an API key or token"
                .into(),
        ));
    }
    let hash = hash_secret(&secret);
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let session = sessions::find(&mut conn, &hash)
        .await?
        .filter(|session| hashes_match(&session.secret_hash, &hash) && session.expires_at > now())
        .ok_or(ApiError::Unauthorized)?;
    Ok(UserSession {
        session_id: session.id,
        user_id: session.user_id,
        email: session.user_email,
        request_id,
        csrf_token: from_cookie.then(|| csrf_token(&secret)),
    })
}

async fn authenticate_session_in_workspace(
    store: &Store,
    hash: &str,
    facts: RequestFacts<'_>,
) -> Result<Principal, ApiError> {
    let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
    let session = sessions::find(&mut conn, hash)
        .await?
        .filter(|session| hashes_match(&session.secret_hash, hash) && session.expires_at > now())
        .ok_or(ApiError::Unauthorized)?;
    let member = match facts.slug {
        Some(slug) => members::of_user_in_workspace(&mut conn, &session.user_id, slug)
            .await?
            .ok_or(ApiError::NotFound("workspace"))?,
        None => {
            let mut memberships = members::of_user(&mut conn, &session.user_id).await?;
            match memberships.len() {
                1 => memberships.remove(0),
                0 => {
                    return Err(ApiError::Forbidden(
                        "you belong to no workspace yet; create one with POST /v1/workspaces"
                            .into(),
                    ));
                }
                _ => {
                    return Err(ApiError::validation(
                        "workspace",
                        "you belong to several workspaces; use /v1/workspaces/{slug}/… paths",
                    ));
                }
            }
        }
    };
    Ok(Principal {
        workspace_id: member.workspace_id,
        kind: PrincipalKind::Session {
            session_id: session.id,
            user_id: session.user_id,
            member_id: member.id,
            role: member.role,
        },
        label: Some(session.user_email),
        request_id: facts.request_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_table_matches_the_seeds() {
        use Role::*;
        for role in [Owner, Admin, Viewer] {
            assert!(role_permits(role, Scope::TokensRead));
        }
        for scope in [Scope::TokensWrite, Scope::TokensRevoke, Scope::TokensRotate] {
            assert!(role_permits(Owner, scope));
            assert!(role_permits(Admin, scope));
            assert!(!role_permits(Viewer, scope));
        }
        assert!(!role_permits(Viewer, Scope::AuditRead));
        assert!(role_permits(Admin, Scope::AuditRead));
        assert!(!role_permits(Admin, Scope::WebhooksWrite));
        assert!(role_permits(Owner, Scope::WebhooksWrite));
    }

    #[test]
    fn bearer_parsing() {
        let secret = Secret::generate();
        let header = format!("Bearer {}", secret.expose());
        assert_eq!(bearer(Some(&header)).unwrap(), secret);
        let lower = format!("bearer {}", secret.expose());
        assert_eq!(bearer(Some(&lower)).unwrap(), secret);
        assert!(bearer(None).is_err());
        assert!(bearer(Some(secret.expose())).is_err());
        assert!(bearer(Some(&format!("Bearer  {}", secret.expose()))).is_err());
        assert!(bearer(Some(&format!("Basic {}", secret.expose()))).is_err());
    }

    #[test]
    fn token_principal_is_limited_to_its_scopes() {
        let principal = Principal {
            workspace_id: "w".into(),
            kind: PrincipalKind::Token {
                token_id: "t".into(),
                scopes: vec![Scope::TokensRead],
                name_prefix: None,
            },
            label: None,
            request_id: None,
        };
        assert!(principal.require(Scope::TokensRead).is_ok());
        let err = principal.require(Scope::TokensWrite).unwrap_err();
        assert_eq!(err.to_string(), "this token lacks the `tokens:write` scope");
        assert!(principal.require_api_key().is_err());
        assert!(principal.require_unconfined("settings").is_ok());
        assert!(principal.sees_token("anything"));
    }

    #[test]
    fn a_confined_token_stays_in_its_lane_whatever_it_holds() {
        let principal = Principal {
            workspace_id: "w".into(),
            kind: PrincipalKind::Token {
                token_id: "t".into(),
                // Creation refuses these together with a prefix; the check holds regardless.
                scopes: vec![Scope::TokensRead, Scope::AuditRead, Scope::WebhooksWrite],
                name_prefix: Some("k8s:dev/".into()),
            },
            label: None,
            request_id: None,
        };
        assert!(principal.require(Scope::TokensRead).is_ok());
        for scope in [Scope::AuditRead, Scope::WebhooksRead, Scope::WebhooksWrite] {
            assert!(!principal.permits(scope));
            let err = principal.require(scope).unwrap_err().to_string();
            assert!(
                err.contains("k8s:dev/") && err.contains(scope.as_str()),
                "{err}"
            );
        }
        assert!(principal.require_unconfined("settings").is_err());
        assert!(principal.sees_token("k8s:dev/api"));
        assert!(!principal.sees_token("k8s:prod/api"));
    }

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
