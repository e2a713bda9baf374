//! Workspaces: created by a signed-in person (who becomes its Owner) or by `bootstrap`, and
//! their settings.

use crate::audit::{self, Change, events};
use crate::auth::{Gate, Principal, UserSession};
use crate::service::unit_of_work::{UnitOfWork, Work};
use crate::service::{Error, validate};
use crate::store::members::{self, Member};
use crate::store::workspaces::{
    self, DEFAULT_AUDIT_RETENTION_DAYS, DEFAULT_TOKEN_EXPIRY_DAYS, Workspace,
};
use crate::store::{Store, new_id, now};
use serde_json::json;
use tooken_contract::members::{MemberStatus, Role};
use tooken_contract::workspaces::{CreateWorkspaceRequest, UpdateWorkspaceRequest};

/// What changing the settings asks of its caller before anything else (see `Gate`).
pub const UPDATE: Gate = Gate::Settings;

/// The longest token lifetime and audit retention a workspace may set.
pub const MAX_DAYS: i64 = 365;

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

/// Who owns a new workspace.
pub enum Owner<'a> {
    /// A signed-in person, an active member at once.
    User(&'a UserSession),
    /// An email whose account, once signed up, becomes the Owner (`bootstrap --owner-email`).
    Email(String),
    Nobody,
}

/// A workspace just created, and its Owner.
pub struct Created {
    pub workspace: Workspace,
    pub owner: Option<Member>,
}

/// `POST /v1/workspaces`: the signed-in person creates a workspace and is its Owner.
pub async fn create(
    store: &Store,
    user: &UserSession,
    request: CreateWorkspaceRequest,
) -> Result<Workspace, Error> {
    let name = validate::name("name", &request.name)?;
    let slug = request.slug.unwrap_or_else(|| slugify(&name));
    check_slug(&slug)?;
    UnitOfWork::new(store, audit::Author::user(user))
        .run_once(async |work| {
            let created = insert(work, name, slug, Owner::User(user)).await?;
            let workspace = created.workspace;
            work.record_in(
                &workspace.id,
                Change {
                    event: events::WORKSPACE_CREATED,
                    target_type: "workspace",
                    target_id: &workspace.id,
                    data: json!({"name": workspace.name, "slug": workspace.slug}),
                },
            )
            .await?;
            Ok(workspace)
        })
        .await
}

/// Creates the workspace `name` at `slug` (already checked) in `work`, with its Owner.
pub async fn insert(
    work: &mut Work,
    name: String,
    slug: String,
    owner: Owner<'_>,
) -> Result<Created, Error> {
    let now = now();
    let workspace = Workspace {
        id: new_id(),
        name,
        slug,
        timezone: "UTC".into(),
        default_token_expiry_days: Some(DEFAULT_TOKEN_EXPIRY_DAYS),
        audit_retention_days: DEFAULT_AUDIT_RETENTION_DAYS,
        created_at: now,
    };
    workspaces::insert(work, &workspace).await.map_err(|err| {
        if err.is_unique_violation() {
            slug_taken(&workspace.slug)
        } else {
            err.into()
        }
    })?;
    let (email, user_id) = match owner {
        Owner::User(user) => (user.email.clone(), Some(user.user_id.clone())),
        Owner::Email(email) => (email.trim().to_lowercase(), None),
        Owner::Nobody => {
            return Ok(Created {
                workspace,
                owner: None,
            });
        }
    };
    let member = Member {
        id: new_id(),
        workspace_id: workspace.id.clone(),
        email,
        role: Role::Owner,
        status: MemberStatus::Active,
        user_id,
        created_at: now,
    };
    members::insert(work, &member).await?;
    Ok(Created {
        workspace,
        owner: Some(member),
    })
}

pub async fn get(store: &Store, actor: &Principal) -> Result<Workspace, Error> {
    actor.require_unconfined("workspace settings")?;
    let mut conn = store.connection().await?;
    workspaces::get(&mut conn, &actor.workspace_id)
        .await?
        .ok_or(Error::NotFound("workspace"))
}

pub async fn update(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    request: UpdateWorkspaceRequest,
) -> Result<Workspace, Error> {
    actor.pass(UPDATE)?;
    uow.run_once(async |work| {
        let before = workspaces::get(work, &actor.workspace_id)
            .await?
            .ok_or(Error::NotFound("workspace"))?;
        let mut after = before.clone();
        apply(&mut after, request)?;
        if after == before {
            return Ok(after);
        }
        // A new slug changes which paths reach this workspace: the store marks the change.
        workspaces::update(work, &after).await.map_err(|err| {
            if err.is_unique_violation() {
                slug_taken(&after.slug)
            } else {
                err.into()
            }
        })?;
        let changes = audit::diff(&json!(before.to_api()), &json!(after.to_api()));
        work.record(Change {
            event: events::SETTINGS_CHANGED,
            target_type: "workspace",
            target_id: &after.id,
            data: json!({ "changes": changes }),
        })
        .await?;
        Ok(after)
    })
    .await
}

pub fn slug_taken(slug: &str) -> Error {
    Error::conflict("slug_taken", format!("the slug `{slug}` is already in use"))
}

pub fn check_slug(slug: &str) -> Result<(), Error> {
    if is_valid_slug(slug) {
        Ok(())
    } else {
        Err(Error::validation(
            "slug",
            "slug must be 1-63 lowercase letters, digits and inner hyphens",
        ))
    }
}

/// Applies a settings change, validating each field named.
fn apply(workspace: &mut Workspace, request: UpdateWorkspaceRequest) -> Result<(), Error> {
    if let Some(name) = request.name {
        workspace.name = validate::name("name", &name)?;
    }
    if let Some(slug) = request.slug {
        check_slug(&slug)?;
        workspace.slug = slug;
    }
    if let Some(timezone) = request.timezone {
        jiff::tz::TimeZone::get(&timezone).map_err(|_| {
            Error::validation(
                "timezone",
                format!("`{timezone}` is not an IANA time zone such as Europe/Berlin"),
            )
        })?;
        workspace.timezone = timezone;
    }
    if let Some(days) = request.default_token_expiry_days {
        if days.is_some_and(|days| !(1..=MAX_DAYS).contains(&days)) {
            return Err(Error::validation(
                "default_token_expiry_days",
                format!("default_token_expiry_days must be 1 to {MAX_DAYS}, or null for never"),
            ));
        }
        workspace.default_token_expiry_days = days;
    }
    if let Some(days) = request.audit_retention_days {
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::validation(
                "audit_retention_days",
                format!("audit_retention_days must be 1 to {MAX_DAYS}"),
            ));
        }
        workspace.audit_retention_days = days;
    }
    Ok(())
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
