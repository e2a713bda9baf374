//! The `TookenToken` custom resource (`tooken.io/v1alpha1`).

use crate::duration;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A scoped Tooken token, kept in a Secret and rotated on schedule.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "tooken.io",
    version = "v1alpha1",
    kind = "TookenToken",
    plural = "tookentokens",
    shortname = "tt",
    shortname = "tooken",
    namespaced,
    status = "TookenTokenStatus",
    printcolumn = r#"{"name":"Token","type":"string","jsonPath":".status.tokenId"}"#,
    printcolumn = r#"{"name":"Secret","type":"string","jsonPath":".status.secretName"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct TookenTokenSpec {
    /// What the token may do. Unknown scopes are rejected.
    #[schemars(length(min = 1))]
    pub scopes: Vec<TokenScope>,
    /// When the token expires. Absent: the workspace default at issue, renewed by each rotation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiry: Option<Expiry>,
    /// When to rotate the secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<RotationPolicy>,
    /// How long the previous secret keeps working after a rotation, e.g. `5m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub grace_period: Option<String>,
    /// The Secret to write.
    #[serde(default)]
    pub secret: SecretTarget,
    /// Workloads in this namespace to restart after a rotation (done by tooken-sidecar).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub restart_on_rotation: Vec<WorkloadRef>,
    /// How to reach the Tooken API. Absent: the operator's defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<Connection>,
    /// What to do with the token when this resource is deleted.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

#[derive(
    Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, JsonSchema,
)]
pub enum TokenScope {
    #[serde(rename = "tokens:read")]
    TokensRead,
    #[serde(rename = "tokens:write")]
    TokensWrite,
    #[serde(rename = "tokens:revoke")]
    TokensRevoke,
    #[serde(rename = "tokens:rotate")]
    TokensRotate,
    #[serde(rename = "audit:read")]
    AuditRead,
    #[serde(rename = "webhooks:read")]
    WebhooksRead,
    #[serde(rename = "webhooks:write")]
    WebhooksWrite,
}

impl TokenScope {
    pub fn to_contract(self) -> tooken_contract::Scope {
        use tooken_contract::Scope;
        match self {
            TokenScope::TokensRead => Scope::TokensRead,
            TokenScope::TokensWrite => Scope::TokensWrite,
            TokenScope::TokensRevoke => Scope::TokensRevoke,
            TokenScope::TokensRotate => Scope::TokensRotate,
            TokenScope::AuditRead => Scope::AuditRead,
            TokenScope::WebhooksRead => Scope::WebhooksRead,
            TokenScope::WebhooksWrite => Scope::WebhooksWrite,
        }
    }
}

/// Either a lifetime (`after`) or a fixed time (`at`), not both.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{"rule": "!(has(self.after) && has(self.at))", "message": "set either expiry.after or expiry.at, not both"}]))]
pub struct Expiry {
    /// A lifetime from issue or rotation, e.g. `720h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub after: Option<String>,
    /// An RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub at: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RotationPolicy {
    /// Rotate this often, e.g. `168h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub every: Option<String>,
    /// Rotate this long before the token expires, e.g. `24h`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^([0-9]+(s|m|h|d))+$"))]
    pub before_expiry: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretTarget {
    /// Default: the resource's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The data key holding the token. Default: `token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
pub struct WorkloadRef {
    pub kind: WorkloadKind,
    pub name: String,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
}

/// A Secret in this namespace holding the API URL and an API key.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    pub secret_name: String,
    /// Default: `url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url_key: Option<String>,
    /// Default: `apiKey`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_key: Option<String>,
}

#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Revoke the token (the default).
    #[default]
    Revoke,
    /// Leave the token valid.
    Retain,
}

#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TookenTokenStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_id: Option<String>,
    /// The scopes the current token was issued with; a spec change means a new token.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub issued_scopes: Vec<TokenScope>,
    /// The secret generation the Secret holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<i64>,
    /// SHA-256 of the token written, to notice a Secret edited by hand.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_rotation: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_rotation: Option<String>,
    /// Tokens replaced after a scope change, revoked once their grace period is over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending_revocations: Vec<PendingRevocation>,
    /// A create whose body depends on the time of issue, written before it is sent, so a retry
    /// after a crash sends the same body under the same key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pending_issue: Option<PendingIssue>,
    /// The last `tooken.io/rotate-at` annotation value acted on; a new value rotates once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotate_at_handled: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingRevocation {
    pub token_id: String,
    pub revoke_after: String,
}

#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PendingIssue {
    pub idempotency_key: String,
    pub expires_at: String,
}

/// `kubectl annotate tt NAME tooken.io/rotate-at="$(date -Iseconds)" --overwrite`: each new
/// value rotates the secret once, with the spec's grace period.
pub const ROTATE_AT_ANNOTATION: &str = "tooken.io/rotate-at";

impl TookenToken {
    /// The `tooken.io/rotate-at` value not yet acted on, if any.
    pub fn requested_rotation(&self) -> Option<&str> {
        let value = self
            .metadata
            .annotations
            .as_ref()?
            .get(ROTATE_AT_ANNOTATION)?
            .trim();
        let handled = self.status.as_ref()?.rotate_at_handled.as_deref();
        (!value.is_empty() && handled != Some(value)).then_some(value)
    }

    pub fn secret_name(&self) -> String {
        self.spec
            .secret
            .name
            .clone()
            .unwrap_or_else(|| kube::ResourceExt::name_any(self))
    }

    pub fn secret_key(&self) -> String {
        self.spec
            .secret
            .key
            .clone()
            .unwrap_or_else(|| "token".into())
    }
}

/// Checks the spec beyond its schema (durations parse, times are times).
pub fn validate(spec: &TookenTokenSpec) -> Result<(), String> {
    let durations = [
        spec.grace_period.as_deref(),
        spec.expiry.as_ref().and_then(|e| e.after.as_deref()),
        spec.rotation.as_ref().and_then(|r| r.every.as_deref()),
        spec.rotation
            .as_ref()
            .and_then(|r| r.before_expiry.as_deref()),
    ];
    for text in durations.into_iter().flatten() {
        duration::parse(text).map_err(|err| err.to_string())?;
    }
    if let Some(at) = spec.expiry.as_ref().and_then(|e| e.at.as_deref()) {
        at.parse::<jiff::Timestamp>()
            .map_err(|_| format!("expiry.at `{at}` is not an RFC 3339 time"))?;
    }
    if spec.scopes.is_empty() {
        return Err("at least one scope is required".into());
    }
    Ok(())
}
