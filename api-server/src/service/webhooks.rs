//! Webhook endpoints: create, list, get, update, delete, rotate the signing secret; their
//! delivery log and redelivery; and the endpoint an installer names at start-up.

use crate::audit::{self, Author, Change, events};
use crate::auth::{Gate, Principal};
use crate::service::Error;
use crate::service::pagination::{Cursor, page};
use crate::service::unit_of_work::{UnitOfWork, Work};
use crate::service::workspaces::slugify;
use crate::store::webhooks::{self as store, Endpoint};
use crate::store::{Store, new_id, now, workspaces};
use crate::webhook_targets::TargetPolicy;
use jiff::SignedDuration;
use serde_json::json;
use tooken_contract::Scope;
use tooken_contract::credential::random_base62;
use tooken_contract::page::PageParams;
use tooken_contract::webhooks::{
    CreateWebhookRequest, Delivery, DeliveryList, EVENT_TYPES, RotateWebhookSecretRequest,
    UpdateWebhookRequest, Webhook, WebhookList, WebhookWithSecret,
};

/// What each operation asks of its caller before anything else (see `Gate`).
pub const READ: Gate = Gate::Scope(Scope::WebhooksRead);
pub const WRITE: Gate = Gate::Scope(Scope::WebhooksWrite);

pub const MAX_SECRET_GRACE_SECONDS: u64 = 7 * 24 * 3600;
pub const DEFAULT_SECRET_GRACE_SECONDS: u64 = 24 * 3600;

pub async fn create(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    targets: &TargetPolicy,
    request: CreateWebhookRequest,
) -> Result<WebhookWithSecret, Error> {
    actor.pass(WRITE)?;
    let endpoint = Endpoint {
        id: new_id(),
        workspace_id: actor.workspace_id.clone(),
        url: check_url(targets, &request.url)?,
        description: check_description(request.description)?,
        event_types: check_event_types(&request.event_types)?,
        enabled: request.enabled.unwrap_or(true),
        disabled_reason: None,
        secret: new_secret(),
        pending_secret: None,
        pending_secret_at: None,
        created_at: now(),
    };
    uow.run_once(async |work| {
        let data = json!({"url": endpoint.url, "event_types": endpoint.event_types, "enabled": endpoint.enabled});
        save(work, &endpoint, true, data).await
    })
    .await?;
    let secret = endpoint.secret.clone();
    Ok(WebhookWithSecret {
        webhook: endpoint.to_api(),
        secret,
    })
}

/// Saves `endpoint` (a new one when `created`) and records it in its workspace.
async fn save(
    work: &mut Work,
    endpoint: &Endpoint,
    created: bool,
    data: serde_json::Value,
) -> Result<(), Error> {
    store::save_endpoint(work, endpoint, created).await?;
    work.record_in(
        &endpoint.workspace_id,
        Change {
            event: if created {
                events::WEBHOOK_CREATED
            } else {
                events::WEBHOOK_UPDATED
            },
            target_type: "webhook",
            target_id: &endpoint.id,
            data,
        },
    )
    .await
}

/// At start-up, makes sure the workspace `name` has an endpoint at `url` signing with
/// `secret`, for `token.rotated`. Used by the Helm chart to point Tooken at its sidecar
/// without a post-install step. Returns whether anything changed.
pub async fn ensure_installed(
    store: &Store,
    workspace_name: &str,
    url: &str,
    secret: &str,
) -> Result<bool, Error> {
    if !secret.starts_with("whsec_") || secret.len() < 26 {
        return Err(Error::validation(
            "secret",
            "the bootstrap webhook secret must be a whsec_ secret of 20 characters or more",
        ));
    }
    let slug = slugify(workspace_name);
    UnitOfWork::new(store, Author::system())
        .run_once(async |work| {
            let workspace = workspaces::by_slug(work, &slug).await?.ok_or_else(|| {
                Error::validation(
                    "workspace",
                    format!("no workspace `{slug}` to add the webhook to"),
                )
            })?;
            let existing = store::list_endpoints(work, &workspace.id, None, 1000)
                .await?
                .into_iter()
                .find(|endpoint| endpoint.url == url);
            let (endpoint, created) = match existing {
                Some(endpoint)
                    if endpoint.secret == secret && endpoint.pending_secret.is_none() =>
                {
                    return Ok(false);
                }
                Some(mut endpoint) => {
                    endpoint.secret = secret.to_owned();
                    endpoint.pending_secret = None;
                    endpoint.pending_secret_at = None;
                    (endpoint, false)
                }
                None => (
                    Endpoint {
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
            let data = json!({"url": endpoint.url, "installed": true});
            save(work, &endpoint, created, data).await?;
            Ok(true)
        })
        .await
}

pub async fn list(
    store: &Store,
    actor: &Principal,
    params: PageParams,
) -> Result<WebhookList, Error> {
    actor.pass(READ)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    let mut conn = store.connection().await?;
    let mut rows = store::list_endpoints(
        &mut conn,
        &actor.workspace_id,
        after.as_ref().map(Cursor::id),
        limit + 1,
    )
    .await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |e| &e.id);
    let data: Vec<Webhook> = rows.iter().map(Endpoint::to_api).collect();
    Ok(WebhookList { data, next_cursor })
}

pub async fn get(store: &Store, actor: &Principal, id: &str) -> Result<Webhook, Error> {
    actor.pass(READ)?;
    Ok(endpoint(store, actor, id).await?.to_api())
}

pub async fn update(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    targets: &TargetPolicy,
    id: &str,
    request: UpdateWebhookRequest,
) -> Result<Webhook, Error> {
    actor.pass(WRITE)?;
    uow.run_once(async |work| {
        let before = store::get_endpoint(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        let mut after = before.clone();
        if let Some(url) = request.url {
            after.url = check_url(targets, &url)?;
        }
        if let Some(types) = request.event_types {
            after.event_types = check_event_types(&types)?;
        }
        if request.description.is_some() {
            after.description = check_description(request.description)?;
        }
        if let Some(enabled) = request.enabled {
            after.enabled = enabled;
            if enabled {
                after.disabled_reason = None;
            }
        }
        if after != before {
            let changes = audit::diff(&json!(before.to_api()), &json!(after.to_api()));
            save(work, &after, false, json!({ "changes": changes })).await?;
        }
        Ok(after.to_api())
    })
    .await
}

pub async fn delete(uow: UnitOfWork<'_>, actor: &Principal, id: &str) -> Result<(), Error> {
    actor.pass(WRITE)?;
    uow.run_once(async |work| {
        let endpoint = store::get_endpoint(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        store::delete_endpoint(work, &actor.workspace_id, id).await?;
        work.record(Change {
            event: events::WEBHOOK_DELETED,
            target_type: "webhook",
            target_id: id,
            data: json!({"url": endpoint.url}),
        })
        .await
    })
    .await
}

pub async fn rotate_secret(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
    request: RotateWebhookSecretRequest,
) -> Result<WebhookWithSecret, Error> {
    actor.pass(WRITE)?;
    let grace = request
        .grace_period_seconds
        .unwrap_or(DEFAULT_SECRET_GRACE_SECONDS);
    if grace > MAX_SECRET_GRACE_SECONDS {
        return Err(Error::validation(
            "grace_period_seconds",
            format!("grace_period_seconds must be 0 to {MAX_SECRET_GRACE_SECONDS}"),
        ));
    }
    uow.run_once(async |work| {
        let mut endpoint = store::get_endpoint(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        let now = now();
        // A rotation already in its grace period is finished first, so at most two secrets exist.
        endpoint.secret = endpoint.signing_secret(now).to_owned();
        let secret = new_secret();
        let rotates_at = now + SignedDuration::from_secs(grace as i64);
        endpoint.pending_secret = Some(secret.clone());
        endpoint.pending_secret_at = Some(rotates_at);
        let data = json!({"secret_rotated": true, "secret_rotates_at": rotates_at});
        save(work, &endpoint, false, data).await?;
        Ok(WebhookWithSecret {
            webhook: endpoint.to_api(),
            secret,
        })
    })
    .await
}

pub async fn list_deliveries(
    store: &Store,
    actor: &Principal,
    id: &str,
    params: PageParams,
) -> Result<DeliveryList, Error> {
    actor.pass(READ)?;
    let (limit, after) = page(params.limit, params.cursor.as_deref())?;
    endpoint(store, actor, id).await?;
    let mut conn = store.connection().await?;
    let mut rows =
        store::list_deliveries(&mut conn, id, after.as_ref().map(Cursor::id), limit + 1).await?;
    let next_cursor = Cursor::next_page(&mut rows, limit, |d| &d.id);
    Ok(DeliveryList {
        data: rows,
        next_cursor,
    })
}

pub async fn redeliver(
    uow: UnitOfWork<'_>,
    actor: &Principal,
    id: &str,
    delivery_id: &str,
) -> Result<Delivery, Error> {
    actor.pass(WRITE)?;
    uow.run_once(async |work| {
        let endpoint = store::get_endpoint(work, &actor.workspace_id, id)
            .await?
            .ok_or(Error::NotFound("webhook"))?;
        if !endpoint.enabled {
            return Err(Error::conflict(
                "webhook_disabled",
                "enable the webhook before redelivering",
            ));
        }
        let (original, ordering_key) = store::get_delivery(work, id, delivery_id)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        let new = new_id();
        store::insert_delivery(work, &new, &original.event_id, id, &ordering_key, now()).await?;
        work.wake_outbox_on_commit();
        let (queued, _) = store::get_delivery(work, id, &new)
            .await?
            .ok_or(Error::NotFound("delivery"))?;
        Ok(queued)
    })
    .await
}

fn new_secret() -> String {
    format!("whsec_{}", random_base62(32))
}

fn check_url(targets: &TargetPolicy, url: &str) -> Result<String, Error> {
    let invalid = |why: &str| Error::validation("url", format!("url {why}"));
    if url.len() > 2048 {
        return Err(invalid("must be at most 2048 characters"));
    }
    let parsed =
        reqwest::Url::parse(url).map_err(|err| invalid(&format!("is not a URL: {err}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
        return Err(invalid("must be an http:// or https:// URL with a host"));
    }
    targets
        .check_url(&parsed)
        .map_err(|refused| Error::validation("url", refused.to_string()))?;
    Ok(url.to_owned())
}

fn check_event_types(types: &[String]) -> Result<Vec<String>, Error> {
    if types.is_empty() {
        return Err(Error::validation(
            "event_types",
            "at least one event type is required",
        ));
    }
    for (i, kind) in types.iter().enumerate() {
        if !EVENT_TYPES.contains(&kind.as_str()) {
            return Err(Error::validation(
                format!("event_types[{i}]"),
                format!(
                    "unknown event type `{kind}`; expected one of {}",
                    EVENT_TYPES.join(", ")
                ),
            ));
        }
    }
    let mut types = types.to_vec();
    types.sort();
    types.dedup();
    Ok(types)
}

fn check_description(description: Option<String>) -> Result<Option<String>, Error> {
    match description {
        Some(text) if text.chars().count() > 256 => Err(Error::validation(
            "description",
            "description must be at most 256 characters",
        )),
        other => Ok(other),
    }
}

async fn endpoint(store: &Store, actor: &Principal, id: &str) -> Result<Endpoint, Error> {
    let mut conn = store.connection().await?;
    store::get_endpoint(&mut conn, &actor.workspace_id, id)
        .await?
        .ok_or(Error::NotFound("webhook"))
}
