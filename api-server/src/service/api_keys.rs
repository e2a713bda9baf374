//! API keys: create, list, get, regenerate and delete.

use crate::audit::{Change, events};
use crate::auth::{Gate, Principal, PrincipalKind, hash_secret};
use crate::service::pagination::{Cursor, page};
use crate::service::unit_of_work::{Answer, Outcome, UnitOfWork, Work};
use crate::service::{Error, validate};
use crate::store::api_keys::{self as key_store, ApiKeyRow};
use crate::store::{Store, members, new_id, now};
use serde_json::json;
use tooken_contract::Secret;
use tooken_contract::api_keys::{
    ApiKey, ApiKeyKind, ApiKeyList, CreateApiKeyRequest, IssuedApiKey,
};
use tooken_contract::members::Role;
use tooken_contract::page::PageParams;

/// What every operation on API keys asks of its caller before anything else (see `Gate`).
pub const GATE: Gate = Gate::ApiKey;

impl Answer for IssuedApiKey {
    const SECRET_FIELD: Option<&'static str> = Some("key");
}

pub async fn create(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    request: CreateApiKeyRequest,
) -> Result<Outcome<IssuedApiKey>, Error> {
    actor.pass(GATE)?;
    let name = validate::name("name", &request.name)?;
    let member_id = match request.kind {
        ApiKeyKind::Team => {
            if request.member_id.is_some() {
                return Err(Error::validation(
                    "member_id",
                    "team keys belong to no member",
                ));
            }
            None
        }
        ApiKeyKind::Personal => Some(
            request
                .member_id
                .clone()
                .or_else(|| actor.member_id().map(str::to_owned))
                .ok_or_else(|| {
                    Error::validation("member_id", "member_id is required for a personal key")
                })?,
        ),
    };
    if !actor.may_manage_key_of(request.kind, member_id.as_deref()) {
        return Err(Error::Forbidden(match request.kind {
            ApiKeyKind::Team => "only owners can create team API keys".into(),
            ApiKeyKind::Personal => "only owners can create personal API keys for others".into(),
        }));
    }
    let secret = Secret::generate();
    let outcome = uow
        .run(async |work| {
            if let Some(member_id) = &member_id
                && members::role(work, &actor.workspace_id, member_id)
                    .await?
                    .is_none()
            {
                return Err(Error::validation(
                    "member_id",
                    "no member of this workspace has this id",
                ));
            }
            let row = ApiKeyRow {
                id: new_id(),
                workspace_id: actor.workspace_id.clone(),
                name,
                kind: request.kind,
                member_id,
                prefix: secret.display_prefix().to_owned(),
                created_at: now(),
                last_used_at: None,
            };
            key_store::insert(work, &row, &hash_secret(&secret)).await?;
            work.record(Change {
                event: events::API_KEY_CREATED,
                target_type: "api_key",
                target_id: &row.id,
                data: json!({"name": row.name, "kind": row.kind, "member_id": row.member_id}),
            })
            .await?;
            Ok(IssuedApiKey {
                api_key: row.to_api(),
                key: Some(secret.expose().to_owned()),
            })
        })
        .await?;
    if let Outcome::Done(issued) = &outcome {
        tracing::info!(api_key_id = %issued.api_key.id, "api key created");
    }
    Ok(outcome)
}

/// Adds a team key holding `secret` to `workspace_id`: for `bootstrap` and installers, which
/// must know the key in advance. Nothing is recorded; no one acted in the workspace yet.
pub async fn add_team_key(
    work: &mut Work,
    workspace_id: &str,
    name: String,
    secret: &Secret,
) -> Result<ApiKeyRow, Error> {
    let row = ApiKeyRow {
        id: new_id(),
        workspace_id: workspace_id.to_owned(),
        name,
        kind: ApiKeyKind::Team,
        member_id: None,
        prefix: secret.display_prefix().to_owned(),
        created_at: now(),
        last_used_at: None,
    };
    key_store::insert(work, &row, &hash_secret(secret)).await?;
    Ok(row)
}

pub async fn list(
    store: &Store,
    actor: &Principal,
    params: PageParams,
) -> Result<ApiKeyList, Error> {
    actor.pass(GATE)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let only_member = if sees_all_keys(actor) {
        None
    } else {
        actor.member_id()
    };
    let mut conn = store.connection().await?;
    let mut rows = key_store::list(
        &mut conn,
        &actor.workspace_id,
        only_member,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |row| &row.id);
    let data: Vec<ApiKey> = rows.iter().map(ApiKeyRow::to_api).collect();
    Ok(ApiKeyList { data, next_cursor })
}

pub async fn get(store: &Store, actor: &Principal, id: &str) -> Result<ApiKey, Error> {
    actor.pass(GATE)?;
    let mut conn = store.connection().await?;
    Ok(visible_key(&mut conn, actor, id).await?.to_api())
}

pub async fn regenerate(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
) -> Result<Outcome<IssuedApiKey>, Error> {
    actor.pass(GATE)?;
    let secret = Secret::generate();
    let outcome = uow
        .run(async |work| {
            let key = visible_key(work, actor, id).await?;
            if !actor.may_manage_key_of(key.kind, key.member_id.as_deref()) {
                return Err(Error::Forbidden(
                    "only owners can regenerate this API key".into(),
                ));
            }
            key_store::regenerate(
                work,
                &actor.workspace_id,
                id,
                &hash_secret(&secret),
                secret.display_prefix(),
            )
            .await?;
            work.record(Change {
                event: events::API_KEY_REGENERATED,
                target_type: "api_key",
                target_id: id,
                data: json!({"name": key.name, "kind": key.kind}),
            })
            .await?;
            Ok(IssuedApiKey {
                api_key: ApiKey {
                    prefix: secret.display_prefix().to_owned(),
                    ..key.to_api()
                },
                key: Some(secret.expose().to_owned()),
            })
        })
        .await?;
    if let Outcome::Done(_) = &outcome {
        tracing::info!(api_key_id = %id, "api key regenerated");
    }
    Ok(outcome)
}

pub async fn delete(uow: UnitOfWork<'_>, actor: &Principal, id: &str) -> Result<(), Error> {
    actor.pass(GATE)?;
    uow.run_once(async |work| {
        let key = visible_key(work, actor, id).await?;
        if !actor.may_manage_key_of(key.kind, key.member_id.as_deref()) {
            return Err(Error::Forbidden(
                "only owners can delete this API key".into(),
            ));
        }
        key_store::delete(work, &actor.workspace_id, id).await?;
        work.record(Change {
            event: events::API_KEY_DELETED,
            target_type: "api_key",
            target_id: id,
            data: json!({"name": key.name, "kind": key.kind}),
        })
        .await?;
        tracing::info!(api_key_id = %id, "api key deleted");
        Ok(())
    })
    .await
}

/// Owners and team keys see every key; other members see only their own.
fn sees_all_keys(principal: &Principal) -> bool {
    matches!(principal.kind, PrincipalKind::TeamKey { .. }) || principal.role() == Some(Role::Owner)
}

/// The key, if the caller may see it; others' keys are "not found" to non-owners.
async fn visible_key(
    conn: &mut sqlx::AnyConnection,
    principal: &Principal,
    id: &str,
) -> Result<ApiKeyRow, Error> {
    let key = key_store::get(conn, &principal.workspace_id, id)
        .await?
        .ok_or(Error::NotFound("api key"))?;
    if sees_all_keys(principal) || key.member_id.as_deref() == principal.member_id() {
        Ok(key)
    } else {
        Err(Error::NotFound("api key"))
    }
}
