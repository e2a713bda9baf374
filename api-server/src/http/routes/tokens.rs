//! `/v1/tokens`: create, list, get, rotate, revoke and verify.

use super::idempotency::{self, Idempotency};
use super::{caller, json_response, parse_json, parse_json_or_default, raw_body, respond, v1};
use crate::app::AppState;
use crate::audit::{self, Change, events};
use crate::auth::{Principal, TokenRejection, check_token, hash_secret, hashes_match};
use crate::confinement;
use crate::http::error::ApiError;
use crate::metrics::VerifyLabels;
use crate::pagination::{Cursor, page};
use crate::store::credentials::{Credential, TokenCredential};
use crate::store::tokens::{self as token_store, ListFilter, Rotation, TokenRow};
use crate::store::{StoreError, new_id, now, workspaces};
use crate::validate;
use bytes::Bytes;
use jiff::{SignedDuration, Timestamp};
use serde_json::json;
use sqlx::AnyConnection;
use tooken_contract::tokens::{
    CreateTokenRequest, IssuedToken, ListTokensParams, RotateTokenRequest, RotatedToken, Token,
    TokenList, VerifyReason, VerifyTokenRequest, VerifyTokenResponse,
};
use tooken_contract::{ErrorBody, Scope, Secret};
use warp::Filter;
use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::path::FullPath;
use warp::reply::Response;

/// The longest grace period a rotation may give the previous secret (30 days).
pub const MAX_GRACE_PERIOD_SECONDS: u64 = 30 * 24 * 3600;

pub fn routes(state: AppState) -> BoxedFilter<(Response,)> {
    let create = v1()
        .and(warp::path!("tokens"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(idempotency::key())
        .and(warp::path::full())
        .and(raw_body())
        .then(create_token)
        .map(respond)
        .boxed();
    let list = v1()
        .and(warp::path!("tokens"))
        .and(warp::get())
        .and(caller(state.clone()))
        .and(super::raw_query())
        .then(list_tokens)
        .map(respond)
        .boxed();
    let verify = v1()
        .and(warp::path!("tokens" / "verify"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(raw_body())
        .then(verify_token)
        .map(respond)
        .boxed();
    let get = v1()
        .and(warp::path!("tokens" / String))
        .and(warp::get())
        .and(caller(state.clone()))
        .then(get_token)
        .map(respond)
        .boxed();
    let rotate = v1()
        .and(warp::path!("tokens" / String / "rotate"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(idempotency::key())
        .and(warp::path::full())
        .and(raw_body())
        .then(rotate_token)
        .map(respond)
        .boxed();
    let revoke = v1()
        .and(warp::path!("tokens" / String / "revoke"))
        .and(warp::post())
        .and(caller(state.clone()))
        .and(idempotency::key())
        .and(warp::path::full())
        .and(raw_body())
        .then(revoke_token)
        .map(respond)
        .boxed();
    create
        .or(list)
        .unify()
        .or(verify)
        .unify()
        .or(get)
        .unify()
        .or(rotate)
        .unify()
        .or(revoke)
        .unify()
        .boxed()
}

/// A principal may hand out (by creating or rotating) only scopes it holds itself.
fn require_grantable(
    principal: &Principal,
    scopes: &[Scope],
    action: &str,
) -> Result<(), ApiError> {
    let missing: Vec<&str> = scopes
        .iter()
        .filter(|scope| !principal.permits(**scope))
        .map(|scope| scope.as_str())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
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
) -> Result<TokenRow, ApiError> {
    token_store::get(conn, &principal.workspace_id, id)
        .await?
        .filter(|token| principal.sees_token(&token.name))
        .ok_or(ApiError::NotFound("token"))
}

/// The confinement a new token gets: within the caller's prefix when the caller is confined,
/// and checked against the token's own name and scopes.
fn new_token_prefix(
    principal: &Principal,
    name: &str,
    scopes: &[Scope],
    requested: Option<&str>,
) -> Result<Option<String>, ApiError> {
    let requested = requested.map(validate::name_prefix).transpose()?;
    let prefix = confinement::prefix_for_new_token(principal.name_prefix(), name, requested)?;
    if let Some(prefix) = &prefix {
        confinement::check_name(prefix, name)?;
        confinement::check_scopes(scopes)?;
    }
    Ok(prefix)
}

/// `expires_at` must lie in the future.
fn future_expiry(at: Option<Timestamp>, now: Timestamp) -> Result<Option<Timestamp>, ApiError> {
    match at {
        Some(at) if at <= now => Err(ApiError::validation(
            "expires_at",
            "expires_at must be in the future",
        )),
        other => Ok(other),
    }
}

#[utoipa::path(
    post, path = "/v1/tokens", tag = "tokens",
    request_body = CreateTokenRequest,
    params(idempotency::KeyHeader),
    responses(
        (status = 201, description = "Created. The secret is shown only in this response.", body = IssuedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create_token(
    state: AppState,
    principal: Principal,
    idempotency_key: Option<String>,
    path: FullPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensWrite)?;
    let request: CreateTokenRequest = parse_json(&body)?;
    let name = validate::name("name", &request.name)?;
    let scopes = validate::scopes(&request.scopes)?;
    validate::labels(&request.labels)?;
    require_grantable(&principal, &scopes, "create")?;
    let name_prefix = new_token_prefix(&principal, &name, &scopes, request.name_prefix.as_deref())?;
    let now = now();
    let explicit_expiry = match request.expires_at {
        Some(at) => Some(future_expiry(at, now)?),
        None => None,
    };
    let idempotency = Idempotency::new(idempotency_key, "POST", path.as_str(), &body);
    let mut tx = state.store.begin_write().await?;
    if let Some(replay) = idempotency.replay(&mut tx, &principal).await? {
        return Ok(replay);
    }
    let expires_at = match explicit_expiry {
        Some(at) => at,
        None => {
            let workspace = workspaces::get(&mut tx, &principal.workspace_id)
                .await?
                .ok_or(ApiError::Unauthorized)?;
            workspace
                .default_token_expiry_days
                .map(|days| now + SignedDuration::from_hours(24 * days))
        }
    };
    let secret = Secret::generate();
    let row = TokenRow {
        id: new_id(),
        workspace_id: principal.workspace_id.clone(),
        name,
        scopes,
        prefix: secret.display_prefix().to_owned(),
        created_at: now,
        expires_at,
        revoked_at: None,
        rotated_at: None,
        rotation: 0,
        last_used_at: None,
        created_by: principal.actor(),
        name_prefix,
        labels: request.labels,
    };
    token_store::insert(&mut tx, &row, &hash_secret(&secret)).await?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::TOKEN_CREATED,
            target_type: "token",
            target_id: &row.id,
            data: audit::token_data(&row, json!({"expires_at": row.expires_at})),
        },
    )
    .await?;
    let mut issued = IssuedToken {
        token: row.to_api(now),
        secret: None,
    };
    idempotency
        .remember(&mut tx, &principal, StatusCode::CREATED, &issued)
        .await?;
    tx.commit().await?;
    tracing::info!(token_id = %row.id, "token created");
    issued.secret = Some(secret.into_exposed());
    Ok(json_response(StatusCode::CREATED, &issued))
}

#[utoipa::path(
    get, path = "/v1/tokens", tag = "tokens",
    params(ListTokensParams),
    responses((status = 200, body = TokenList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn list_tokens(
    state: AppState,
    principal: Principal,
    query: String,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensRead)?;
    let params: ListTokensParams = super::parse_query(&query)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let now = now();
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let filter = ListFilter {
        status: params.status,
        name_prefix: principal.name_prefix(),
    };
    let mut rows = token_store::list(
        &mut conn,
        &principal.workspace_id,
        &filter,
        now,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |row| &row.id);
    let data: Vec<Token> = rows.iter().map(|row| row.to_api(now)).collect();
    Ok(json_response(
        StatusCode::OK,
        &TokenList { data, next_cursor },
    ))
}

#[utoipa::path(
    get, path = "/v1/tokens/{id}", tag = "tokens",
    params(("id" = String, Path, description = "Token id")),
    responses((status = 200, body = Token), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = []))
)]
pub async fn get_token(
    id: String,
    state: AppState,
    principal: Principal,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensRead)?;
    let mut conn = state
        .store
        .pool()
        .acquire()
        .await
        .map_err(StoreError::from)?;
    let row = visible_token(&mut conn, &principal, &id).await?;
    Ok(json_response(StatusCode::OK, &row.to_api(now())))
}

#[utoipa::path(
    post, path = "/v1/tokens/{id}/rotate", tag = "tokens",
    params(("id" = String, Path, description = "Token id"),
           idempotency::KeyHeader),
    request_body(content = Option<RotateTokenRequest>, description = "Optional; an empty body rotates with no grace period"),
    responses(
        (status = 200, description = "Rotated. The new secret is shown only in this response.", body = RotatedToken),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, description = "Revoked or expired token, or a concurrent rotation", body = ErrorBody),
        (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn rotate_token(
    id: String,
    state: AppState,
    principal: Principal,
    idempotency_key: Option<String>,
    path: FullPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensRotate)?;
    let request: RotateTokenRequest = parse_json_or_default(&body)?;
    let grace_seconds = request.grace_period_seconds.unwrap_or(0);
    if grace_seconds > MAX_GRACE_PERIOD_SECONDS {
        return Err(ApiError::validation(
            "grace_period_seconds",
            format!("grace_period_seconds must be between 0 and {MAX_GRACE_PERIOD_SECONDS}"),
        ));
    }
    let now = now();
    let new_expiry = match request.expires_at {
        Some(at) => Some(future_expiry(at, now)?),
        None => None,
    };
    let idempotency = Idempotency::new(idempotency_key, "POST", path.as_str(), &body);
    let mut tx = state.store.begin_write().await?;
    if let Some(replay) = idempotency.replay(&mut tx, &principal).await? {
        return Ok(replay);
    }
    let token = visible_token(&mut tx, &principal, &id).await?;
    // Rotating hands out a working secret, so it is bound by the same rules as creating.
    require_grantable(&principal, &token.scopes, "rotate")?;
    confinement::check_hand_out(principal.name_prefix(), token.name_prefix.as_deref())?;
    match token.status(now) {
        tooken_contract::tokens::TokenStatus::Revoked => {
            return Err(ApiError::conflict(
                "token_revoked",
                "a revoked token cannot be rotated",
            ));
        }
        tooken_contract::tokens::TokenStatus::Expired => {
            return Err(ApiError::conflict(
                "token_expired",
                "an expired token cannot be rotated",
            ));
        }
        tooken_contract::tokens::TokenStatus::Active => {}
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
    let secret = Secret::generate();
    let rotated = token_store::rotate(
        &mut tx,
        &Rotation {
            workspace_id: &principal.workspace_id,
            id: &id,
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
        return Err(ApiError::conflict(
            "concurrent_modification",
            "the token changed while it was being rotated; retry",
        ));
    }
    let updated = token_store::get(&mut tx, &principal.workspace_id, &id)
        .await?
        .ok_or(ApiError::NotFound("token"))?;
    audit::record(
        &mut tx,
        &principal,
        Change {
            event: events::TOKEN_ROTATED,
            target_type: "token",
            target_id: &id,
            data: audit::token_data(
                &updated,
                json!({
                    "rotation": updated.rotation,
                    "previous_secret_expires_at": grace_end,
                    "expires_at": updated.expires_at,
                }),
            ),
        },
    )
    .await?;
    let mut response = RotatedToken {
        token: updated.to_api(now),
        secret: None,
        previous_secret_expires_at: grace_end,
    };
    idempotency
        .remember(&mut tx, &principal, StatusCode::OK, &response)
        .await?;
    tx.commit().await?;
    tracing::info!(token_id = %id, rotation = updated.rotation, "token rotated");
    response.secret = Some(secret.into_exposed());
    Ok(json_response(StatusCode::OK, &response))
}

#[utoipa::path(
    post, path = "/v1/tokens/{id}/revoke", tag = "tokens",
    params(("id" = String, Path, description = "Token id"),
           idempotency::KeyHeader),
    responses(
        (status = 200, description = "Revoked (also when it already was)", body = Token),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn revoke_token(
    id: String,
    state: AppState,
    principal: Principal,
    idempotency_key: Option<String>,
    path: FullPath,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensRevoke)?;
    let idempotency = Idempotency::new(idempotency_key, "POST", path.as_str(), &body);
    let now = now();
    let mut tx = state.store.begin_write().await?;
    if let Some(replay) = idempotency.replay(&mut tx, &principal).await? {
        return Ok(replay);
    }
    // A token the caller cannot see is answered 404 before anything changes.
    visible_token(&mut tx, &principal, &id).await?;
    let newly_revoked = token_store::revoke(&mut tx, &principal.workspace_id, &id, now).await?;
    let row = visible_token(&mut tx, &principal, &id).await?;
    if newly_revoked {
        audit::record(
            &mut tx,
            &principal,
            Change {
                event: events::TOKEN_REVOKED,
                target_type: "token",
                target_id: &id,
                data: audit::token_data(&row, json!({})),
            },
        )
        .await?;
    }
    let token = row.to_api(now);
    idempotency
        .remember(&mut tx, &principal, StatusCode::OK, &token)
        .await?;
    tx.commit().await?;
    if newly_revoked {
        tracing::info!(token_id = %id, "token revoked");
    }
    Ok(json_response(StatusCode::OK, &token))
}

#[utoipa::path(
    post, path = "/v1/tokens/verify", tag = "tokens",
    request_body = VerifyTokenRequest,
    responses(
        (status = 200, description = "Whether the presented token works, and why not", body = VerifyTokenResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn verify_token(
    state: AppState,
    principal: Principal,
    body: Bytes,
) -> Result<Response, ApiError> {
    principal.require(Scope::TokensRead)?;
    let request: VerifyTokenRequest = parse_json(&body)?;
    let inspection = inspect(
        &state,
        &request.token,
        |token| principal.may_inspect(token),
        &request.scopes,
    )
    .await?;
    let result = match inspection.token {
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
    };
    Ok(json_response(StatusCode::OK, &result))
}

/// What a presented token secret is worth, for the three ways a downstream service asks
/// (verify, RFC 7662 introspection, forward-auth).
pub struct Inspection {
    pub reason: VerifyReason,
    /// The token the secret belongs to, when it is one of the caller's workspace.
    pub token: Option<TokenCredential>,
}

/// Checks `presented` as a token secret of the workspace `in_workspace` accepts, holding
/// every scope in `required`: format, hash lookup, constant-time comparison, revocation,
/// expiry and rotation. Counts the outcome and records the use of a valid token.
pub async fn inspect(
    state: &AppState,
    presented: &str,
    in_workspace: impl Fn(&TokenCredential) -> bool,
    required: &[Scope],
) -> Result<Inspection, ApiError> {
    let now = now();
    let inspection = match Secret::parse(presented) {
        Err(_) => Inspection {
            reason: VerifyReason::Malformed,
            token: None,
        },
        Ok(secret) => {
            let hash = hash_secret(&secret);
            match state.store.find_credential(&hash).await? {
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
                        state.usage.record_token(&token.token_id, now);
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
    state
        .metrics
        .verifications
        .get_or_create(&VerifyLabels {
            reason: inspection.reason.as_str().to_owned(),
        })
        .inc();
    Ok(inspection)
}
