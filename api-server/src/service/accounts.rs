//! People: sign up, sign in (throttled), sign out, who am I, and accepting an invitation.

use crate::audit::{Author, Change, events};
use crate::auth::{UserSession, hash_secret};
use crate::service::unit_of_work::{UnitOfWork, Work};
use crate::service::{Error, passwords, validate};
use crate::store::members::{self, Member};
use crate::store::users::{self, User};
use crate::store::{Store, new_id, now, sessions, signin_failures, workspaces};
use jiff::SignedDuration;
use serde_json::json;
use std::net::IpAddr;
use tooken_contract::Secret;
use tooken_contract::accounts::{
    Me, Membership, PendingInvitation, Session, SignInRequest, SignUpRequest,
};
use tooken_contract::members::MemberStatus;

/// Failed sign-ins allowed per window, per email and per client address.
pub const MAX_FAILURES_PER_EMAIL: i64 = 5;
pub const MAX_FAILURES_PER_ADDRESS: i64 = 30;
pub const FAILURE_WINDOW: SignedDuration = SignedDuration::from_mins(15);

/// Who may create an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SignupPolicy {
    /// Anyone who can reach the server.
    Open,
    /// Only emails with a pending invitation (or named by `bootstrap --owner-email`).
    InviteOnly,
    Disabled,
}

/// The server's rules for accounts and sessions.
#[derive(Debug, Clone, Copy)]
pub struct AccountRules {
    pub signup: SignupPolicy,
    pub session_ttl: SignedDuration,
}

/// A session just started, and its secret, which the caller hands over once.
pub struct Started {
    pub session: Session,
    pub secret: Secret,
}

pub async fn sign_up(
    store: &Store,
    rules: AccountRules,
    request: SignUpRequest,
) -> Result<Started, Error> {
    let email = validate::email("email", &request.email)?;
    passwords::validate(&request.password)?;
    if rules.signup == SignupPolicy::Disabled {
        return Err(Error::Forbidden(
            "sign-up is disabled on this server".into(),
        ));
    }
    let password_hash = passwords::hash(request.password).await?;
    UnitOfWork::new(store, Author::system())
        .run_once(async |work| {
            let unclaimed = members::unclaimed_active(work, &email).await?;
            if rules.signup == SignupPolicy::InviteOnly
                && unclaimed.is_empty()
                && members::invitations_for(work, &email).await?.is_empty()
            {
                return Err(Error::Forbidden(
                    "sign-up is by invitation only, and there is none for this email".into(),
                ));
            }
            let user = User {
                id: new_id(),
                email: email.clone(),
                password_hash,
                created_at: now(),
            };
            users::insert(work, &user).await.map_err(|err| {
                if err.is_unique_violation() {
                    Error::conflict("email_taken", "an account with this email already exists")
                } else {
                    err.into()
                }
            })?;
            // An Owner made by `bootstrap --owner-email` becomes this user.
            for member in unclaimed {
                members::activate(work, &member.id, &user.id, now()).await?;
            }
            let started = start_session(work, rules, &user).await?;
            tracing::info!(user_id = %user.id, "account created");
            Ok(started)
        })
        .await
}

/// Where a sign-in came from, for its throttle and its log line.
pub struct Attempt {
    pub addr: Option<IpAddr>,
    pub request_id: Option<String>,
}

pub async fn sign_in(
    store: &Store,
    rules: AccountRules,
    request: SignInRequest,
    attempt: Attempt,
) -> Result<Started, Error> {
    let email = request.email.trim().to_lowercase();
    let email_key = format!("email:{email}");
    let mut keys = vec![(email_key.clone(), MAX_FAILURES_PER_EMAIL)];
    if let Some(addr) = attempt.addr {
        keys.push((format!("ip:{addr}"), MAX_FAILURES_PER_ADDRESS));
    }
    check_throttle(store, &keys).await?;
    let user = {
        let mut conn = store.connection().await?;
        users::by_email(&mut conn, &email).await?
    };
    let matches = passwords::verify(
        request.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await;
    let started = UnitOfWork::new(store, Author::system())
        .run_once(async |work| {
            let Some(user) = user.filter(|_| matches) else {
                // The failure is kept, so this commits and the caller is then refused.
                let failed: Vec<&str> = keys.iter().map(|(key, _)| key.as_str()).collect();
                signin_failures::record(work, &failed, now()).await?;
                return Ok(None);
            };
            signin_failures::clear(work, &email_key).await?;
            Ok(Some(start_session(work, rules, &user).await?))
        })
        .await?;
    started.ok_or_else(|| {
        tracing::warn!(
            request_id = attempt.request_id.as_deref().unwrap_or_default(),
            "failed sign-in"
        );
        Error::InvalidCredentials
    })
}

pub async fn sign_out(store: &Store, user: &UserSession) -> Result<(), Error> {
    UnitOfWork::new(store, Author::user(user))
        .run_once(async |work| Ok(sessions::delete(work, &user.session_id).await?))
        .await
}

pub async fn who_am_i(store: &Store, session: UserSession) -> Result<Me, Error> {
    let mut conn = store.connection().await?;
    let user = users::by_id(&mut conn, &session.user_id)
        .await?
        .ok_or(Error::Unauthorized)?;
    let mut memberships = Vec::new();
    for member in members::of_user(&mut conn, &user.id).await? {
        if let Some(workspace) = workspaces::get(&mut conn, &member.workspace_id).await? {
            memberships.push(Membership {
                workspace_id: workspace.id,
                workspace_name: workspace.name,
                workspace_slug: workspace.slug,
                member_id: member.id,
                role: member.role,
            });
        }
    }
    let mut invitations = Vec::new();
    for member in members::invitations_for(&mut conn, &user.email).await? {
        if let Some(workspace) = workspaces::get(&mut conn, &member.workspace_id).await? {
            invitations.push(PendingInvitation {
                id: member.id,
                workspace_name: workspace.name,
                workspace_slug: workspace.slug,
                role: member.role,
                invited_at: member.created_at,
            });
        }
    }
    Ok(Me {
        user: user.to_api(),
        memberships,
        invitations,
        csrf_token: session.csrf_token,
    })
}

pub async fn accept_invitation(
    store: &Store,
    user: &UserSession,
    id: &str,
) -> Result<Membership, Error> {
    UnitOfWork::new(store, Author::user(user))
        .run_once(async |work| {
            // An invitation for another address is "not found": it is tied to the invited email.
            let invitation: Member = members::invitations_for(work, &user.email)
                .await?
                .into_iter()
                .find(|member| member.id == id && member.status == MemberStatus::Invited)
                .ok_or(Error::NotFound("invitation"))?;
            members::activate(work, &invitation.id, &user.user_id, now()).await?;
            let workspace = workspaces::get(work, &invitation.workspace_id)
                .await?
                .ok_or(Error::NotFound("invitation"))?;
            work.record_in(
                &workspace.id,
                Change {
                    event: events::MEMBER_JOINED,
                    target_type: "member",
                    target_id: &invitation.id,
                    data: json!({"email": invitation.email, "role": invitation.role}),
                },
            )
            .await?;
            Ok(Membership {
                workspace_id: workspace.id,
                workspace_name: workspace.name,
                workspace_slug: workspace.slug,
                member_id: invitation.id,
                role: invitation.role,
            })
        })
        .await
}

/// Starts a session for `user` in the unit of work.
async fn start_session(
    work: &mut Work,
    rules: AccountRules,
    user: &User,
) -> Result<Started, Error> {
    let secret = Secret::generate_session();
    let now = now();
    let expires_at = now + rules.session_ttl;
    sessions::insert(
        work,
        &new_id(),
        &user.id,
        &hash_secret(&secret),
        now,
        expires_at,
    )
    .await?;
    let session = Session {
        user: user.to_api(),
        token: None,
        expires_at,
        csrf_token: None,
    };
    Ok(Started { session, secret })
}

/// Refuses a sign-in attempt while its email or address has too many recent failures.
async fn check_throttle(store: &Store, keys: &[(String, i64)]) -> Result<(), Error> {
    let now = now();
    let mut conn = store.connection().await?;
    for (key, max) in keys {
        let (failures, oldest) =
            signin_failures::count_since(&mut conn, key, now - FAILURE_WINDOW).await?;
        if failures >= *max {
            let free_at = oldest.unwrap_or(now) + FAILURE_WINDOW;
            let wait = free_at.duration_since(now).as_secs().max(1) as u64;
            return Err(Error::RateLimited {
                message: format!("too many failed sign-ins; try again in {wait} seconds"),
                retry_after_secs: wait,
            });
        }
    }
    Ok(())
}
