//! Tokens: create, list, get, rotate and revoke.

use crate::audit::{self, Change, events};
use crate::auth::{Gate, Principal, hash_secret};
use crate::service::pagination::{Cursor, page};
use crate::service::unit_of_work::{Answer, Outcome, UnitOfWork};
use crate::service::{Error, confinement, validate};
use crate::store::tokens::{self as token_store, ListFilter, Rotation, TokenRow};
use crate::store::{Store, new_id, now, workspaces};
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sqlx::AnyConnection;
use tooken_contract::tokens::{
    CreateTokenRequest, IssuedToken, ListTokensParams, RotateTokenRequest, RotatedToken, Token,
    TokenList, TokenStatus,
};
use tooken_contract::{Scope, Secret};

/// What each operation asks of its caller before anything else (see `Gate`).
pub const CREATE: Gate = Gate::Scope(Scope::TokensWrite);
pub const READ: Gate = Gate::Scope(Scope::TokensRead);
pub const ROTATE: Gate = Gate::Scope(Scope::TokensRotate);
pub const REVOKE: Gate = Gate::Scope(Scope::TokensRevoke);

/// The longest grace period a rotation may give the previous secret (30 days).
pub const MAX_GRACE_PERIOD_SECONDS: u64 = 30 * 24 * 3600;

impl Answer for IssuedToken {
    const SECRET_FIELD: Option<&'static str> = Some("secret");
}

impl Answer for RotatedToken {
    const SECRET_FIELD: Option<&'static str> = Some("secret");
}

impl Answer for Token {}

pub async fn create(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    request: CreateTokenRequest,
) -> Result<Outcome<IssuedToken>, Error> {
    actor.pass(CREATE)?;
    let name = validate::name("name", &request.name)?;
    let scopes = validate::scopes(&request.scopes)?;
    validate::labels(&request.labels)?;
    require_grantable(actor, &scopes, "create")?;
    let name_prefix = new_token_prefix(actor, &name, &scopes, request.name_prefix.as_deref())?;
    let now = now();
    let explicit_expiry = match request.expires_at {
        Some(at) => Some(future_expiry(at, now)?),
        None => None,
    };
    let secret = Secret::generate();
    let outcome = uow
        .run(async |work| {
            let expires_at = match explicit_expiry {
                Some(at) => at,
                None => {
                    let workspace = workspaces::get(work, &actor.workspace_id)
                        .await?
                        .ok_or(Error::Unauthorized)?;
                    workspace
                        .default_token_expiry_days
                        .map(|days| now + SignedDuration::from_hours(24 * days))
                }
            };
            let row = TokenRow {
                id: new_id(),
                workspace_id: actor.workspace_id.clone(),
                name,
                scopes,
                prefix: secret.display_prefix().to_owned(),
                created_at: now,
                expires_at,
                revoked_at: None,
                rotated_at: None,
                rotation: 0,
                last_used_at: None,
                created_by: actor.actor(),
                name_prefix,
                labels: request.labels,
            };
            token_store::insert(work, &row, &hash_secret(&secret)).await?;
            work.record(Change {
                event: events::TOKEN_CREATED,
                target_type: "token",
                target_id: &row.id,
                data: audit::token_data(&row, json!({"expires_at": row.expires_at})),
            })
            .await?;
            Ok(IssuedToken {
                token: row.to_api(now),
                secret: Some(secret.expose().to_owned()),
            })
        })
        .await?;
    if let Outcome::Done(issued) = &outcome {
        tracing::info!(token_id = %issued.token.id, "token created");
    }
    Ok(outcome)
}

pub async fn list(
    store: &Store,
    actor: &Principal,
    params: ListTokensParams,
) -> Result<TokenList, Error> {
    actor.pass(READ)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let now = now();
    let mut conn = store.connection().await?;
    let filter = ListFilter {
        status: params.status,
        name_prefix: actor.name_prefix(),
    };
    let mut rows = token_store::list(
        &mut conn,
        &actor.workspace_id,
        &filter,
        now,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |row| &row.id);
    let data: Vec<Token> = rows.iter().map(|row| row.to_api(now)).collect();
    Ok(TokenList { data, next_cursor })
}

pub async fn get(store: &Store, actor: &Principal, id: &str) -> Result<Token, Error> {
    actor.pass(READ)?;
    let mut conn = store.connection().await?;
    let row = visible_token(&mut conn, actor, id).await?;
    Ok(row.to_api(now()))
}

pub async fn rotate(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
    request: RotateTokenRequest,
) -> Result<Outcome<RotatedToken>, Error> {
    actor.pass(ROTATE)?;
    let grace_seconds = request.grace_period_seconds.unwrap_or(0);
    if grace_seconds > MAX_GRACE_PERIOD_SECONDS {
        return Err(Error::validation(
            "grace_period_seconds",
            format!("grace_period_seconds must be between 0 and {MAX_GRACE_PERIOD_SECONDS}"),
        ));
    }
    let now = now();
    let new_expiry = match request.expires_at {
        Some(at) => Some(future_expiry(at, now)?),
        None => None,
    };
    let secret = Secret::generate();
    let outcome = uow
        .run(async |work| {
            let token = visible_token(work, actor, id).await?;
            // Rotating hands out a working secret, so it is bound by the same rules as creating.
            require_grantable(actor, &token.scopes, "rotate")?;
            confinement::check_hand_out(actor.name_prefix(), token.name_prefix.as_deref())?;
            match token.status(now) {
                TokenStatus::Revoked => {
                    return Err(Error::conflict(
                        "token_revoked",
                        "a revoked token cannot be rotated",
                    ));
                }
                TokenStatus::Expired => {
                    return Err(Error::conflict(
                        "token_expired",
                        "an expired token cannot be rotated",
                    ));
                }
                TokenStatus::Active => {}
            }
            let expires_at = new_expiry.unwrap_or(token.expires_at);
            // The old secret never outlives the token it belonged to.
            let grace_end = [
                Some(now + SignedDuration::from_secs(grace_seconds as i64)),
                token.expires_at,
                expires_at,
            ]
            .into_iter()
            .flatten()
            .min()
            .expect("the first candidate is always present");
            let rotated = token_store::rotate(
                work,
                &Rotation {
                    workspace_id: &actor.workspace_id,
                    id,
                    expected_rotation: token.rotation,
                    new_secret_hash: &hash_secret(&secret),
                    new_prefix: secret.display_prefix(),
                    now,
                    expires_at,
                    previous_valid_until: grace_end,
                },
            )
            .await?;
            if !rotated {
                return Err(Error::conflict(
                    "concurrent_modification",
                    "the token changed while it was being rotated; retry",
                ));
            }
            let updated = token_store::get(work, &actor.workspace_id, id)
                .await?
                .ok_or(Error::NotFound("token"))?;
            work.record(Change {
                event: events::TOKEN_ROTATED,
                target_type: "token",
                target_id: id,
                data: audit::token_data(
                    &updated,
                    json!({
                        "rotation": updated.rotation,
                        "previous_secret_expires_at": grace_end,
                        "expires_at": updated.expires_at,
                    }),
                ),
            })
            .await?;
            Ok(RotatedToken {
                token: updated.to_api(now),
                secret: Some(secret.expose().to_owned()),
                previous_secret_expires_at: grace_end,
            })
        })
        .await?;
    if let Outcome::Done(rotated) = &outcome {
        tracing::info!(token_id = %id, rotation = rotated.token.rotation, "token rotated");
    }
    Ok(outcome)
}

pub async fn revoke(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
) -> Result<Outcome<Token>, Error> {
    actor.pass(REVOKE)?;
    let now = now();
    uow.run(async |work| {
        // A token the caller cannot see is answered 404 before anything changes.
        visible_token(work, actor, id).await?;
        let newly_revoked = token_store::revoke(work, &actor.workspace_id, id, now).await?;
        let row = visible_token(work, actor, id).await?;
        if newly_revoked {
            work.record(Change {
                event: events::TOKEN_REVOKED,
                target_type: "token",
                target_id: id,
                data: audit::token_data(&row, json!({})),
            })
            .await?;
            tracing::info!(token_id = %id, "token revoked");
        }
        Ok(row.to_api(now))
    })
    .await
}

/// A principal may hand out (by creating or rotating) only scopes it holds itself.
fn require_grantable(principal: &Principal, scopes: &[Scope], action: &str) -> Result<(), Error> {
    let missing: Vec<&str> = scopes
        .iter()
        .filter(|scope| !principal.permits(**scope))
        .map(|scope| scope.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(Error::Forbidden(format!(
            "cannot {action} a token with scopes you do not hold: {}",
            missing.join(", ")
        )))
    }
}

/// Token `id` of the caller's workspace, if the caller may see it: a token outside a confined
/// caller's prefix is answered exactly like a missing one, so its existence never leaks.
async fn visible_token(
    conn: &mut AnyConnection,
    principal: &Principal,
    id: &str,
) -> Result<TokenRow, Error> {
    token_store::get(conn, &principal.workspace_id, id)
        .await?
        .filter(|token| principal.sees_token(&token.name))
        .ok_or(Error::NotFound("token"))
}

/// The confinement a new token gets: within the caller's prefix when the caller is confined,
/// and checked against the token's own name and scopes.
fn new_token_prefix(
    principal: &Principal,
    name: &str,
    scopes: &[Scope],
    requested: Option<&str>,
) -> Result<Option<String>, Error> {
    let requested = requested.map(validate::name_prefix).transpose()?;
    let prefix = confinement::prefix_for_new_token(principal.name_prefix(), name, requested)?;
    if let Some(prefix) = &prefix {
        confinement::check_name(prefix, name)?;
        confinement::check_scopes(scopes)?;
    }
    Ok(prefix)
}

/// `expires_at` must lie in the future.
fn future_expiry(at: Option<Timestamp>, now: Timestamp) -> Result<Option<Timestamp>, Error> {
    match at {
        Some(at) if at <= now => Err(Error::validation(
            "expires_at",
            "expires_at must be in the future",
        )),
        other => Ok(other),
    }
}
