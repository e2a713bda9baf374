//! The scopes a token can carry, and what each allows.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
pub enum Scope {
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

impl Scope {
    pub const ALL: [Scope; 7] = [
        Scope::TokensRead,
        Scope::TokensWrite,
        Scope::TokensRevoke,
        Scope::TokensRotate,
        Scope::AuditRead,
        Scope::WebhooksRead,
        Scope::WebhooksWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::TokensRead => "tokens:read",
            Scope::TokensWrite => "tokens:write",
            Scope::TokensRevoke => "tokens:revoke",
            Scope::TokensRotate => "tokens:rotate",
            Scope::AuditRead => "audit:read",
            Scope::WebhooksRead => "webhooks:read",
            Scope::WebhooksWrite => "webhooks:write",
        }
    }

    /// Whether the scope reaches past tokens to the whole workspace (its audit log, its
    /// webhooks). A token confined to a name prefix may not hold one: no prefix narrows it.
    pub fn is_workspace_wide(self) -> bool {
        matches!(
            self,
            Scope::AuditRead | Scope::WebhooksRead | Scope::WebhooksWrite
        )
    }

    /// What the scope allows, as the dashboard's New Token form shows it; its browser test
    /// checks the words.
    pub fn description(self) -> &'static str {
        match self {
            Scope::TokensRead => "List and retrieve token metadata",
            Scope::TokensWrite => "Create new tokens",
            Scope::TokensRevoke => "Permanently revoke a token",
            Scope::TokensRotate => "Rotate the secret of an existing token",
            Scope::AuditRead => "Read audit log entries",
            Scope::WebhooksRead => "List and retrieve webhook configurations",
            Scope::WebhooksWrite => "Create and update webhook configurations",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown scope `{0}`")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s)
            .ok_or_else(|| UnknownScope(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_round_trips_through_its_wire_name() {
        for scope in Scope::ALL {
            let json = serde_json::to_string(&scope).unwrap();
            assert_eq!(json, format!("\"{}\"", scope.as_str()));
            assert_eq!(serde_json::from_str::<Scope>(&json).unwrap(), scope);
            assert_eq!(scope.as_str().parse::<Scope>().unwrap(), scope);
        }
    }

    #[test]
    fn only_the_token_scopes_stay_within_a_prefix() {
        let narrow: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|scope| !scope.is_workspace_wide())
            .map(Scope::as_str)
            .collect();
        assert_eq!(
            narrow,
            [
                "tokens:read",
                "tokens:write",
                "tokens:revoke",
                "tokens:rotate"
            ]
        );
    }

    #[test]
    fn unknown_scope_is_an_error_not_ignored() {
        assert!("tokens:delete".parse::<Scope>().is_err());
        assert!(serde_json::from_str::<Scope>("\"tokens:delete\"").is_err());
    }
}
