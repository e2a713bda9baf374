//! `TookenPolicy`: what the cluster's admin allows each namespace to ask the operator for.
//!
//! The operator lends its connection to whoever can create a `TookenToken`, so it must not
//! hand out more than the admin meant. Every token it issues is confined to the names of its
//! own namespace (`k8s:<namespace>/`, see README "Multi-tenant clusters"), which already keeps
//! a namespace away from others' tokens. Policies bound it further, per namespace:
//! - `defaultConnection: Deny`: the operator's own connection may not be used there;
//! - `connection`: the connection Secret (kept where tenants cannot read it) that serves it;
//! - `allowedScopes`: the most a `TookenToken` there may ask for.
//!
//! A namespace several policies cover gets what all of them allow. One no policy covers may use
//! the default connection, with confined tokens only.
//!
//! A policy that is tightened takes back what it no longer allows: the controller revokes a
//! token issued with what the policies now forbid (`Denial::Forbidden`).

use crate::crd::{TokenScope, TookenTokenSpec};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::borrow::Borrow;
use std::collections::BTreeMap;

/// What one policy allows the namespaces it covers.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tooken.io",
    version = "v1alpha1",
    kind = "TookenPolicy",
    plural = "tookenpolicies",
    printcolumn = r#"{"name":"Default connection","type":"string","jsonPath":".spec.defaultConnection"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TookenPolicySpec {
    /// The namespaces this policy covers: by name, by labels, or both (either matches).
    pub namespaces: NamespaceSelector,
    /// Whether the operator's default connection may serve these namespaces.
    #[serde(default)]
    pub default_connection: Permission,
    /// The connection that serves these namespaces instead of the default: a Secret with `url`
    /// and `apiKey`, in a namespace of the admin's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<ConnectionRef>,
    /// The most scopes a `TookenToken` here may ask for. Absent: any `tokens:*` scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_scopes: Option<Vec<TokenScope>>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceSelector {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    /// Namespaces carrying all of these labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub match_labels: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Permission {
    #[default]
    Allow,
    Deny,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ConnectionRef {
    pub namespace: String,
    pub secret_name: String,
}

/// Whether a policy's selector needs the namespace's labels.
pub fn uses_labels<P: Borrow<TookenPolicy>>(policies: &[P]) -> bool {
    policies
        .iter()
        .any(|p| !p.borrow().spec.namespaces.match_labels.is_empty())
}

fn covers(policy: &TookenPolicy, namespace: &str, labels: &BTreeMap<String, String>) -> bool {
    let selector = &policy.spec.namespaces;
    selector.names.iter().any(|n| n == namespace)
        || (!selector.match_labels.is_empty()
            && selector
                .match_labels
                .iter()
                .all(|(k, v)| labels.get(k) == Some(v)))
}

/// What serves an allowed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serve {
    /// The resource's own `spec.connection`.
    Own,
    /// The operator's default connection.
    Default,
    /// The connection a policy names.
    Policy(ConnectionRef),
}

/// Why policies refuse a request; the message says which policy refused and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// They forbid it: a scope, or the default connection. A token already issued with what
    /// they forbid is revoked.
    #[error("{0}")]
    Forbidden(String),
    /// They contradict one another: nothing is decided, and nothing already issued is touched.
    #[error("{0}")]
    Conflict(String),
}

/// Whether `spec` may be served in `namespace`, and by which connection.
pub fn decide<P: Borrow<TookenPolicy>>(
    policies: &[P],
    namespace: &str,
    labels: &BTreeMap<String, String>,
    spec: &TookenTokenSpec,
) -> Result<Serve, Denial> {
    if let Some(scope) = spec
        .scopes
        .iter()
        .find(|s| s.to_contract().is_workspace_wide())
    {
        return Err(Denial::Forbidden(format!(
            "scope {} reaches the whole workspace, and the operator issues only tokens confined \
             to their namespace",
            scope.to_contract()
        )));
    }
    let mut covering: Vec<&TookenPolicy> = policies
        .iter()
        .map(Borrow::borrow)
        .filter(|p| covers(p, namespace, labels))
        .collect();
    covering.sort_by_key(|p| p.metadata.name.clone());
    for policy in &covering {
        let Some(allowed) = &policy.spec.allowed_scopes else {
            continue;
        };
        if let Some(scope) = spec.scopes.iter().find(|s| !allowed.contains(s)) {
            let names: Vec<String> = allowed
                .iter()
                .map(|s| s.to_contract().to_string())
                .collect();
            return Err(Denial::Forbidden(format!(
                "TookenPolicy {} allows namespace {namespace} only the scopes [{}], not {}",
                name(policy),
                names.join(", "),
                scope.to_contract()
            )));
        }
    }
    if spec.connection.is_some() {
        return Ok(Serve::Own);
    }
    let mut named = covering
        .iter()
        .filter_map(|p| Some((*p, p.spec.connection.as_ref()?)));
    if let Some((first, connection)) = named.next() {
        if let Some((other, _)) = named.find(|(_, c)| *c != connection) {
            return Err(Denial::Conflict(format!(
                "TookenPolicies {} and {} name different connections for namespace {namespace}",
                name(first),
                name(other)
            )));
        }
        return Ok(Serve::Policy(connection.clone()));
    }
    if let Some(denying) = covering
        .iter()
        .find(|p| p.spec.default_connection == Permission::Deny)
    {
        return Err(Denial::Forbidden(format!(
            "TookenPolicy {} does not let namespace {namespace} use the operator's default \
             connection; name a connection Secret in spec.connection",
            name(denying)
        )));
    }
    Ok(Serve::Default)
}

fn name(policy: &TookenPolicy) -> &str {
    policy.metadata.name.as_deref().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(name: &str, spec: serde_json::Value) -> TookenPolicy {
        let mut policy = TookenPolicy::new(name, serde_json::from_value(spec).unwrap());
        policy.metadata.name = Some(name.into());
        policy
    }

    fn spec(scopes: &[&str], own_connection: bool) -> TookenTokenSpec {
        let mut spec = serde_json::json!({"scopes": scopes});
        if own_connection {
            spec["connection"] = serde_json::json!({"secretName": "mine"});
        }
        serde_json::from_value(spec).unwrap()
    }

    fn forbidden(decided: Result<Serve, Denial>) -> String {
        match decided {
            Err(Denial::Forbidden(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn workspace_wide_scopes_are_never_served() {
        for scope in ["audit:read", "webhooks:read", "webhooks:write"] {
            let refused = forbidden(decide::<TookenPolicy>(
                &[],
                "dev",
                &labels(&[]),
                &spec(&[scope], false),
            ));
            assert!(
                refused.contains(scope) && refused.contains("whole workspace"),
                "{refused}"
            );
        }
    }

    #[test]
    fn an_uncovered_namespace_gets_the_default_connection() {
        let others = [policy(
            "prod",
            serde_json::json!({"namespaces": {"names": ["prod"]}, "defaultConnection": "Deny"}),
        )];
        assert_eq!(
            decide(
                &others,
                "dev",
                &labels(&[]),
                &spec(&["tokens:write"], false)
            ),
            Ok(Serve::Default)
        );
    }

    #[test]
    fn scopes_are_bounded_by_every_covering_policy() {
        let policies = [
            policy(
                "by-name",
                serde_json::json!({"namespaces": {"names": ["dev"]},
                    "allowedScopes": ["tokens:read", "tokens:rotate"]}),
            ),
            policy(
                "by-label",
                serde_json::json!({"namespaces": {"matchLabels": {"team": "dev"}},
                    "allowedScopes": ["tokens:read"]}),
            ),
        ];
        let team = labels(&[("team", "dev")]);
        assert_eq!(
            decide(&policies, "dev", &team, &spec(&["tokens:read"], false)),
            Ok(Serve::Default)
        );
        let refused = forbidden(decide(
            &policies,
            "dev",
            &team,
            &spec(&["tokens:rotate"], false),
        ));
        assert!(
            refused.contains("by-label") && refused.contains("tokens:rotate"),
            "{refused}"
        );
        // Without the label only the policy by name covers it.
        assert_eq!(
            decide(
                &policies,
                "dev",
                &labels(&[]),
                &spec(&["tokens:rotate"], false)
            ),
            Ok(Serve::Default)
        );
        let refused = forbidden(decide(
            &policies,
            "dev",
            &labels(&[]),
            &spec(&["tokens:write"], false),
        ));
        assert!(refused.contains("by-name"), "{refused}");
    }

    #[test]
    fn a_denied_default_needs_a_connection_of_the_policy_or_the_resource() {
        let deny = policy(
            "deny",
            serde_json::json!({"namespaces": {"names": ["dev"]}, "defaultConnection": "Deny"}),
        );
        let refused = forbidden(decide(
            std::slice::from_ref(&deny),
            "dev",
            &labels(&[]),
            &spec(&["tokens:read"], false),
        ));
        assert!(refused.contains("default connection") && refused.contains("deny"));
        assert_eq!(
            decide(
                std::slice::from_ref(&deny),
                "dev",
                &labels(&[]),
                &spec(&["tokens:read"], true)
            ),
            Ok(Serve::Own)
        );
        let serving = policy(
            "serving",
            serde_json::json!({"namespaces": {"names": ["dev"]},
                "connection": {"namespace": "tooken", "secretName": "dev-workspace"}}),
        );
        assert_eq!(
            decide(
                &[deny, serving.clone()],
                "dev",
                &labels(&[]),
                &spec(&["tokens:read"], false)
            ),
            Ok(Serve::Policy(ConnectionRef {
                namespace: "tooken".into(),
                secret_name: "dev-workspace".into()
            }))
        );
        let other = policy(
            "other",
            serde_json::json!({"namespaces": {"names": ["dev"]},
                "connection": {"namespace": "tooken", "secretName": "elsewhere"}}),
        );
        match decide(
            &[serving, other],
            "dev",
            &labels(&[]),
            &spec(&["tokens:read"], false),
        ) {
            Err(Denial::Conflict(why)) => assert!(why.contains("different connections"), "{why}"),
            other => panic!("two connections are a conflict, not {other:?}"),
        }
    }
}
