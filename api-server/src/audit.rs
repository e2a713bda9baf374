//! Recording audit events in the transaction of the change they describe (SPEC §4), so an
//! event exists exactly when its change does. The same call puts the event in the webhook
//! outbox, so a webhook is sent exactly for the changes that happened.

use crate::auth::Principal;
use crate::store::tokens::TokenRow;
use crate::store::{StoreError, WriteTx, audit, new_id, now};
use serde_json::{Value, json};
use tooken_contract::audit::{Actor, ActorKind, AuditEvent};

/// Event types, as seed 003 lists them (plus `workspace.created`, `member.joined`, `audit.purged`).
pub mod events {
    pub const TOKEN_CREATED: &str = "token.created";
    pub const TOKEN_ROTATED: &str = "token.rotated";
    pub const TOKEN_REVOKED: &str = "token.revoked";
    pub const TOKEN_EXPIRED: &str = "token.expired";
    pub const API_KEY_CREATED: &str = "api_key.created";
    pub const API_KEY_REGENERATED: &str = "api_key.regenerated";
    pub const API_KEY_DELETED: &str = "api_key.deleted";
    pub const MEMBER_INVITED: &str = "member.invited";
    pub const MEMBER_JOINED: &str = "member.joined";
    pub const MEMBER_ROLE_CHANGED: &str = "member.role_changed";
    pub const MEMBER_REMOVED: &str = "member.removed";
    pub const WORKSPACE_CREATED: &str = "workspace.created";
    pub const SETTINGS_CHANGED: &str = "workspace.settings_changed";
    pub const AUDIT_PURGED: &str = "audit.purged";
    pub const WEBHOOK_CREATED: &str = "webhook.created";
    pub const WEBHOOK_UPDATED: &str = "webhook.updated";
    pub const WEBHOOK_DELETED: &str = "webhook.deleted";
}

/// What changed: the event type, its target, and details (never a secret).
pub struct Change<'a> {
    pub event: &'a str,
    pub target_type: &'a str,
    pub target_id: &'a str,
    pub data: Value,
}

/// Records a change made by `principal` in its workspace.
pub async fn record(
    tx: &mut WriteTx,
    principal: &Principal,
    change: Change<'_>,
) -> Result<(), StoreError> {
    write(
        tx,
        &principal.workspace_id,
        principal.audit_actor(),
        principal.request_id.clone(),
        change,
    )
    .await
}

/// Records a change made by Tooken itself (expiry sweep, retention).
pub async fn record_system(
    tx: &mut WriteTx,
    workspace_id: &str,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let actor = Actor {
        kind: ActorKind::System,
        id: None,
        label: Some("tooken".into()),
    };
    write(tx, workspace_id, actor, None, change).await
}

/// Records a change by a signed-in person acting outside a workspace route (e.g. creating one).
pub async fn record_by_user(
    tx: &mut WriteTx,
    workspace_id: &str,
    user: &crate::auth::UserSession,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let actor = Actor {
        kind: ActorKind::Session,
        id: Some(user.user_id.clone()),
        label: Some(user.email.clone()),
    };
    write(tx, workspace_id, actor, user.request_id.clone(), change).await
}

async fn write(
    tx: &mut WriteTx,
    workspace_id: &str,
    actor: Actor,
    request_id: Option<String>,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        id: new_id(),
        kind: change.event.to_owned(),
        actor,
        target_type: change.target_type.to_owned(),
        target_id: change.target_id.to_owned(),
        request_id,
        created_at: now(),
        data: change.data,
    };
    audit::insert(tx, workspace_id, &event).await?;
    crate::outbox::enqueue(tx, workspace_id, &event).await
}

/// What every token event records about its token, so that the log (and each webhook) shows
/// which namespace and resource a token serves; `extra` adds the event's own details.
pub fn token_data(token: &TokenRow, extra: Value) -> Value {
    let mut data = json!({
        "name": token.name,
        "scopes": token.scopes,
        "name_prefix": token.name_prefix,
        "labels": token.labels,
    });
    if let (Some(data), Value::Object(extra)) = (data.as_object_mut(), extra) {
        data.extend(extra);
    }
    data
}

/// `{"field": {"from": …, "to": …}}` for the fields that differ between two JSON objects.
pub fn diff(before: &Value, after: &Value) -> Value {
    let mut changes = serde_json::Map::new();
    if let (Some(before), Some(after)) = (before.as_object(), after.as_object()) {
        for (field, new) in after {
            let old = before.get(field).unwrap_or(&Value::Null);
            if old != new {
                changes.insert(field.clone(), serde_json::json!({"from": old, "to": new}));
            }
        }
    }
    Value::Object(changes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_events_name_what_the_token_serves() {
        let token = TokenRow {
            name: "k8s:dev/ci".into(),
            scopes: vec![tooken_contract::Scope::TokensRead],
            name_prefix: Some("k8s:dev/".into()),
            labels: [("tooken.io/namespace".to_owned(), "dev".to_owned())].into(),
            ..TokenRow::default()
        };
        assert_eq!(
            token_data(&token, json!({"rotation": 1})),
            json!({
                "name": "k8s:dev/ci",
                "scopes": ["tokens:read"],
                "name_prefix": "k8s:dev/",
                "labels": {"tooken.io/namespace": "dev"},
                "rotation": 1,
            })
        );
    }

    #[test]
    fn diff_lists_only_changed_fields() {
        let before = json!({"name": "a", "slug": "a", "days": 90});
        let after = json!({"name": "b", "slug": "a", "days": null});
        assert_eq!(
            diff(&before, &after),
            json!({"name": {"from": "a", "to": "b"}, "days": {"from": 90, "to": null}})
        );
    }
}
