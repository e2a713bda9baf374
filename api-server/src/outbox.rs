//! The webhook outbox: an event is stored with one delivery per subscribed endpoint, in the
//! transaction of the change it reports, so a restart loses none and a rollback sends none.

use crate::store::{StoreError, WriteTx, new_id, webhooks};
use serde_json::Value;
use tooken_contract::audit::AuditEvent;
use tooken_contract::signature::Event;

/// The body receivers get: `{id, type, created_at, workspace, data}`, compact, so that
/// `JSON.stringify(JSON.parse(body))` gives back the same bytes (README "Webhooks", "Verifying
/// a signature": the documented receiver signs that).
pub fn body(event: &AuditEvent, workspace_id: &str) -> String {
    let mut data = serde_json::Map::new();
    data.insert("id".into(), Value::String(event.target_id.clone()));
    if let Value::Object(details) = &event.data {
        for (key, value) in details {
            data.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
    let envelope = Event {
        id: event.id.clone(),
        kind: event.kind.clone(),
        created_at: event.created_at,
        workspace: workspace_id.to_owned(),
        data: Value::Object(data),
    };
    serde_json::to_string(&envelope).expect("events serialise")
}

pub async fn enqueue(
    tx: &mut WriteTx,
    workspace_id: &str,
    event: &AuditEvent,
) -> Result<(), StoreError> {
    let endpoints: Vec<webhooks::Endpoint> = webhooks::enabled_endpoints(tx, workspace_id)
        .await?
        .into_iter()
        .filter(|endpoint| endpoint.event_types.contains(&event.kind))
        .collect();
    if endpoints.is_empty() {
        return Ok(());
    }
    let body = body(event, workspace_id);
    webhooks::insert_event(
        tx,
        &event.id,
        workspace_id,
        &event.kind,
        &body,
        event.created_at,
    )
    .await?;
    for endpoint in endpoints {
        // Events about one object (e.g. one token) reach an endpoint in the order they happened.
        webhooks::insert_delivery(
            tx,
            &new_id(),
            &event.id,
            &endpoint.id,
            &event.target_id,
            event.created_at,
        )
        .await?;
    }
    tx.wake_outbox_on_commit();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tooken_contract::audit::{Actor, ActorKind};

    #[test]
    fn body_is_compact_and_carries_the_target_id_but_no_actor() {
        let event = AuditEvent {
            id: "e1".into(),
            kind: "token.rotated".into(),
            actor: Actor {
                kind: ActorKind::TeamKey,
                id: Some("k".into()),
                label: Some("ci".into()),
            },
            target_type: "token".into(),
            target_id: "t1".into(),
            request_id: Some("r".into()),
            created_at: "2026-01-02T03:04:05.123456Z".parse().unwrap(),
            data: json!({"name": "ci-prod", "scopes": ["tokens:read"], "rotation": 2}),
        };
        let body = body(&event, "w1");
        assert_eq!(
            body,
            r#"{"id":"e1","type":"token.rotated","created_at":"2026-01-02T03:04:05.123456Z","workspace":"w1","data":{"id":"t1","name":"ci-prod","rotation":2,"scopes":["tokens:read"]}}"#
        );
    }
}
