//! First run and installers: create a workspace (optionally with its Owner) and a team API
//! key, or make sure an installed key and webhook exist, through the same services the API
//! uses.

use crate::audit::Author;
use crate::auth::hash_secret;
use crate::service::unit_of_work::UnitOfWork;
use crate::service::workspaces::{self, Owner, is_valid_slug, slugify};
use crate::service::{Error, api_keys, webhooks};
use crate::store::members::Member;
use crate::store::workspaces::{self as store_workspaces, Workspace};
use crate::store::{Store, StoreError};
use tooken_contract::Secret;

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
    Service(Error),
}

impl From<Error> for BootstrapError {
    fn from(err: Error) -> BootstrapError {
        match err {
            Error::Validation { message, .. } => BootstrapError::Invalid(message),
            other => BootstrapError::Service(other),
        }
    }
}

impl From<StoreError> for BootstrapError {
    fn from(err: StoreError) -> BootstrapError {
        BootstrapError::Service(err.into())
    }
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
    let secret = request.api_key.clone().unwrap_or_else(Secret::generate);
    let owner = match &request.owner_email {
        Some(email) => Owner::Email(email.clone()),
        None => Owner::Nobody,
    };
    let (created, key) = UnitOfWork::new(store, Author::system())
        .run_once(async |work| {
            let created = workspaces::insert(work, name.to_owned(), slug.clone(), owner).await?;
            let key = api_keys::add_team_key(
                work,
                &created.workspace.id,
                request.key_name.clone(),
                &secret,
            )
            .await?;
            Ok((created, key))
        })
        .await
        .map_err(|err| match err {
            Error::Conflict {
                code: "slug_taken", ..
            } => BootstrapError::SlugTaken(slug.clone()),
            other => other.into(),
        })?;
    Ok(Bootstrapped {
        workspace: created.workspace,
        owner: created.owner,
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
    if store.find_credential(&hash_secret(&key)).await?.is_some() {
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
            let key = request.api_key.expect("set above");
            UnitOfWork::new(store, Author::system())
                .run_once(async |work| {
                    let workspace = store_workspaces::by_slug(work, &slug)
                        .await?
                        .ok_or(Error::NotFound("workspace"))?;
                    api_keys::add_team_key(work, &workspace.id, request.key_name, &key).await
                })
                .await?;
            Ok(true)
        }
        Err(err) => Err(err),
    }
}

/// At start-up, makes sure the workspace `name` has a webhook endpoint at `url` signing with
/// `secret`, for `token.rotated`. Returns whether anything changed.
pub async fn ensure_webhook(
    store: &Store,
    workspace_name: &str,
    url: &str,
    secret: &str,
) -> Result<bool, BootstrapError> {
    Ok(webhooks::ensure_installed(store, workspace_name, url, secret).await?)
}
