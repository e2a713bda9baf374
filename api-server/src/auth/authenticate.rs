//! Authenticating a presented secret: a token or API key (through the credential cache), or
//! a session, in the workspace a path names; or a signed-in person outside any workspace.

use super::principal::{Principal, PrincipalKind};
use super::secrets::{check_token, csrf_token, hash_secret, hashes_match};
use crate::service::Error;
use crate::store::credentials::Credential;
use crate::store::{Store, members, now, sessions};
use crate::usage::UsageRecorder;
use tooken_contract::Secret;
use tooken_contract::api_keys::ApiKeyKind;
use tooken_contract::credential::SecretKind;

/// A credential and whether it came from the session cookie.
pub struct PresentedSecret {
    pub secret: Secret,
    pub from_cookie: bool,
}

/// What a request names about itself before authentication.
pub struct RequestFacts<'a> {
    pub presented: PresentedSecret,
    /// The workspace slug of a `/v1/workspaces/{slug}/…` path.
    pub slug: Option<&'a str>,
    pub request_id: Option<String>,
}

/// Authenticates a request to a workspace route.
pub async fn authenticate(
    store: &Store,
    usage: &UsageRecorder,
    facts: RequestFacts<'_>,
) -> Result<Principal, Error> {
    let secret = &facts.presented.secret;
    let hash = hash_secret(secret);
    if secret.kind() == SecretKind::Session {
        return authenticate_session_in_workspace(store, &hash, facts).await;
    }
    let found = store.find_credential(&hash).await?;
    let now = now();
    let (principal, workspace_slug) = match found {
        Some(Credential::Token(token)) if hashes_match(&token.secret_hash, &hash) => {
            check_token(&token, now).map_err(|_| Error::Unauthorized)?;
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
                (ApiKeyKind::Personal, _, _) => return Err(Error::Unauthorized),
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
        _ => return Err(Error::Unauthorized),
    };
    if facts.slug.is_some_and(|slug| slug != workspace_slug) {
        // Another workspace's path: answer as if it did not exist.
        return Err(Error::NotFound("workspace"));
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
    presented: PresentedSecret,
    request_id: Option<String>,
) -> Result<UserSession, Error> {
    let PresentedSecret {
        secret,
        from_cookie,
    } = presented;
    if secret.kind() != SecretKind::Session {
        return Err(Error::Forbidden(
            "this route needs a signed-in session (POST /v1/auth/signin), not an API key or token"
                .into(),
        ));
    }
    let hash = hash_secret(&secret);
    let mut conn = store.connection().await?;
    let session = sessions::find(&mut conn, &hash)
        .await?
        .filter(|session| hashes_match(&session.secret_hash, &hash) && session.expires_at > now())
        .ok_or(Error::Unauthorized)?;
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
) -> Result<Principal, Error> {
    let mut conn = store.connection().await?;
    let session = sessions::find(&mut conn, hash)
        .await?
        .filter(|session| hashes_match(&session.secret_hash, hash) && session.expires_at > now())
        .ok_or(Error::Unauthorized)?;
    let member = match facts.slug {
        Some(slug) => members::of_user_in_workspace(&mut conn, &session.user_id, slug)
            .await?
            .ok_or(Error::NotFound("workspace"))?,
        None => {
            let mut memberships = members::of_user(&mut conn, &session.user_id).await?;
            match memberships.len() {
                1 => memberships.remove(0),
                0 => {
                    return Err(Error::Forbidden(
                        "you belong to no workspace yet; create one with POST /v1/workspaces"
                            .into(),
                    ));
                }
                _ => {
                    return Err(Error::validation(
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
