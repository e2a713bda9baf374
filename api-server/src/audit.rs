//! Audit events, recorded in the transaction of the change they describe, so an
//! event exists exactly when its change does. The same call puts the event in the webhook
//! outbox, so a webhook is sent exactly for the changes that happened.

use crate::auth::{Principal, UserSession};
use crate::store::tokens::TokenRow;
use crate::store::{StoreError, WriteTx, audit, new_id, now};
use serde_json::{Value, json};
use tooken_contract::audit::{Actor, ActorKind, AuditEvent};

/// Event types, as README "People, workspaces, members and the audit log" lists them.
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

/// Who made a change, as its audit event names it.
pub struct Author {
    pub actor: Actor,
    pub request_id: Option<String>,
    /// The workspace the author acts in; `None` for a person outside any (creating one) and
    /// for Tooken itself.
    pub workspace_id: Option<String>,
}

impl Author {
    pub fn of(principal: &Principal) -> Author {
        Author {
            actor: principal.audit_actor(),
            request_id: principal.request_id.clone(),
            workspace_id: Some(principal.workspace_id.clone()),
        }
    }

    /// Tooken itself: the expiry sweep, retention, bootstrap.
    pub fn system() -> Author {
        Author {
            actor: Actor {
                kind: ActorKind::System,
                id: None,
                label: Some("tooken".into()),
            },
            request_id: None,
            workspace_id: None,
        }
    }

    /// A signed-in person acting outside a workspace route (e.g. creating one).
    pub fn user(user: &UserSession) -> Author {
        Author {
            actor: Actor {
                kind: ActorKind::Session,
                id: Some(user.user_id.clone()),
                label: Some(user.email.clone()),
            },
            request_id: user.request_id.clone(),
            workspace_id: None,
        }
    }
}

/// Records `change` in `workspace_id`, in the transaction that made it. Called by the unit
/// of work only.
pub(crate) async fn write(
    tx: &mut WriteTx,
    workspace_id: &str,
    author: &Author,
    change: Change<'_>,
) -> Result<(), StoreError> {
    let event = AuditEvent {
        id: new_id(),
        kind: change.event.to_owned(),
        actor: author.actor.clone(),
        target_type: change.target_type.to_owned(),
        target_id: change.target_id.to_owned(),
        request_id: author.request_id.clone(),
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
