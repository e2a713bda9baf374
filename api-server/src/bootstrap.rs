//! First run: create a workspace (optionally with its Owner) and a team API key.

use crate::auth::hash_secret;
use crate::store::api_keys::{self, ApiKeyRow};
use crate::store::members::{self, Member};
use crate::store::workspaces::{
    self, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_TOKEN_EXPIRY_DAYS, Workspace,
};
use crate::store::{Store, StoreError, new_id, now, webhooks};
use tooken_contract::Secret;
use tooken_contract::api_keys::ApiKeyKind;
use tooken_contract::members::{MemberStatus, Role};

#[derive(Debug, Clone)]
pub struct BootstrapRequest {
    pub workspace_name: String,
    pub slug: Option<String>,
    pub owner_email: Option<String>,
    pub key_name: String,
    /// Use this key instead of generating one (for installers that must know it in advance).
    pub api_key: Option<Secret>,
}

pub struct Bootstrapped {
    pub workspace: Workspace,
    pub owner: Option<Member>,
    pub api_key_id: String,
    pub api_key: Secret,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("{0}")]
    Invalid(String),
    #[error("a workspace with slug `{0}` already exists; its API keys are managed through the API")]
    SlugTaken(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// `My Team!` → `my-team`.
pub fn slugify(name: &str) -> String {
    let mut slug = String::new();
    for c in name.trim().chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').chars().take(63).collect()
}

/// Lowercase letters, digits and inner hyphens, 1–63 characters (a DNS label).
pub fn is_valid_slug(slug: &str) -> bool {
    (1..=63).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
        && !slug.ends_with('-')
}

pub async fn bootstrap(
    store: &Store,
    request: &BootstrapRequest,
) -> Result<Bootstrapped, BootstrapError> {
    let name = request.workspace_name.trim();
    if name.is_empty() {
        return Err(BootstrapError::Invalid(
            "the workspace name must not be empty".into(),
        ));
    }
    let slug = request.slug.clone().unwrap_or_else(|| slugify(name));
    if !is_valid_slug(&slug) {
        return Err(BootstrapError::Invalid(format!(
            "`{slug}` is not a valid slug: use 1-63 lowercase letters, digits and inner hyphens"
        )));
    }
    if let Some(email) = &request.owner_email
        && !email.contains('@')
    {
        return Err(BootstrapError::Invalid(format!(
            "`{email}` is not an email address"
        )));
    }
    let now = now();
    let workspace = Workspace {
        id: new_id(),
        name: name.to_owned(),
        slug: slug.clone(),
        timezone: "UTC".into(),
        default_token_expiry_days: Some(DEFAULT_TOKEN_EXPIRY_DAYS),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    let mut tx = store.begin_write().await?;
    workspaces::insert(&mut tx, &workspace)
        .await
        .map_err(|err| {
            if err.is_unique_violation() {
                BootstrapError::SlugTaken(slug.clone())
            } else {
                err.into()
            }
        })?;
    let owner = match &request.owner_email {
        Some(email) => {
            let member = Member {
                id: new_id(),
                workspace_id: workspace.id.clone(),
                email: email.trim().to_lowercase(),
                role: Role::Owner,
                status: MemberStatus::Active,
                user_id: None,
                created_at: now,
            };
            members::insert(&mut tx, &member).await?;
            Some(member)
        }
        None => None,
    };
    let secret = request.api_key.clone().unwrap_or_else(Secret::generate);
    let key = ApiKeyRow {
        id: new_id(),
        workspace_id: workspace.id.clone(),
        name: request.key_name.clone(),
        kind: ApiKeyKind::Team,
        member_id: None,
        prefix: secret.display_prefix().to_owned(),
        created_at: now,
        last_used_at: None,
    };
    api_keys::insert(&mut tx, &key, &hash_secret(&secret)).await?;
    tx.commit().await?;
    Ok(Bootstrapped {
        workspace,
        owner,
        api_key_id: key.id,
        api_key: secret,
    })
}

/// At start-up, makes sure `key` works as a team key of the workspace `name`: creates the
/// workspace (and key) on the first start, and does nothing once the key exists. Used by the
/// Helm chart, whose install job generates the key into a Secret the server mounts.
pub async fn ensure_api_key(
    store: &Store,
    workspace_name: &str,
    key: Secret,
    owner_email: Option<&str>,
) -> Result<bool, BootstrapError> {
    let hash = hash_secret(&key);
    if store.find_credential(&hash).await?.is_some() {
        return Ok(false);
    }
    let request = BootstrapRequest {
        workspace_name: workspace_name.to_owned(),
        slug: None,
        // Only a workspace created here gets this Owner; later starts leave members alone.
        owner_email: owner_email.map(str::to_owned),
        key_name: "installer".into(),
        api_key: Some(key),
    };
    match bootstrap(store, &request).await {
        Ok(_) => Ok(true),
        // The workspace exists but not this key (e.g. the Secret was recreated): add the key.
        Err(BootstrapError::SlugTaken(slug)) => {
            let mut conn = store.pool().acquire().await.map_err(StoreError::from)?;
            let workspace = crate::store::workspaces::by_slug(&mut conn, &slug)
                .await?
                .ok_or(BootstrapError::SlugTaken(slug))?;
            drop(conn);
            let key = request.api_key.expect("set above");
            let row = ApiKeyRow {
                id: new_id(),
                workspace_id: workspace.id,
                name: request.key_name,
                kind: ApiKeyKind::Team,
                member_id: None,
                prefix: key.display_prefix().to_owned(),
                created_at: now(),
                last_used_at: None,
            };
            let mut tx = store.begin_write().await?;
            api_keys::insert(&mut tx, &row, &hash).await?;
            tx.commit().await?;
            Ok(true)
        }
        Err(err) => Err(err),
    }
}

/// At start-up, makes sure the workspace `name` has a webhook endpoint at `url` signing with
/// `secret`, for `token.rotated`. Used by the Helm chart to point Tooken at its sidecar without a
/// post-install step. Returns whether anything changed.
pub async fn ensure_webhook(
    store: &Store,
    workspace_name: &str,
    url: &str,
    secret: &str,
) -> Result<bool, BootstrapError> {
    if !secret.starts_with("whsec_") || secret.len() < 26 {
        return Err(BootstrapError::Invalid(
            "the bootstrap webhook secret must be a whsec_ secret of 20 characters or more".into(),
        ));
    }
    let slug = slugify(workspace_name);
    let mut tx = store.begin_write().await?;
    let workspace = crate::store::workspaces::by_slug(&mut tx, &slug)
        .await?
        .ok_or_else(|| {
            BootstrapError::Invalid(format!("no workspace `{slug}` to add the webhook to"))
        })?;
    let existing = webhooks::list_endpoints(&mut tx, &workspace.id, None, 1000)
        .await?
        .into_iter()
        .find(|endpoint| endpoint.url == url);
    let (endpoint, created) = match existing {
        Some(endpoint) if endpoint.secret == secret && endpoint.pending_secret.is_none() => {
            return Ok(false);
        }
        Some(mut endpoint) => {
            endpoint.secret = secret.to_owned();
            endpoint.pending_secret = None;
            endpoint.pending_secret_at = None;
            (endpoint, false)
        }
        None => (
            webhooks::Endpoint {
                id: new_id(),
                workspace_id: workspace.id.clone(),
                url: url.to_owned(),
                description: Some("tooken-sidecar (installed)".into()),
                event_types: vec!["token.rotated".into()],
                enabled: true,
                disabled_reason: None,
                secret: secret.to_owned(),
                pending_secret: None,
                pending_secret_at: None,
                created_at: now(),
            },
            true,
        ),
    };
    webhooks::save_endpoint(&mut tx, &endpoint, created).await?;
    crate::audit::record_system(
        &mut tx,
        &workspace.id,
        crate::audit::Change {
            event: if created {
                crate::audit::events::WEBHOOK_CREATED
            } else {
                crate::audit::events::WEBHOOK_UPDATED
            },
            target_type: "webhook",
            target_id: &endpoint.id,
            data: serde_json::json!({"url": endpoint.url, "installed": true}),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Production"), "production");
        assert_eq!(slugify("  My Team!  "), "my-team");
        assert_eq!(slugify("a--b__c"), "a-b-c");
        assert!(is_valid_slug("my-team"));
        assert!(!is_valid_slug("-x"));
        assert!(!is_valid_slug("My"));
        assert!(!is_valid_slug(""));
    }
}
