//! Who is calling, once authenticated, and what the role table and scopes let it do.

use crate::service::Error;
use crate::service::confinement;
use crate::store::credentials;
use tooken_contract::Scope;
use tooken_contract::api_keys::ApiKeyKind;
use tooken_contract::audit::{Actor, ActorKind};
use tooken_contract::members::Role;

#[derive(Debug, Clone, PartialEq)]
pub enum PrincipalKind {
    /// Full workspace access.
    TeamKey { key_id: String },
    /// Acts with its member's role.
    PersonalKey {
        key_id: String,
        member_id: String,
        role: Role,
    },
    /// A signed-in person, acting with their role in the workspace addressed.
    Session {
        session_id: String,
        user_id: String,
        member_id: String,
        role: Role,
    },
    /// Limited to its scopes, and when confined, to tokens whose name starts with its prefix.
    Token {
        token_id: String,
        scopes: Vec<Scope>,
        name_prefix: Option<String>,
    },
}

/// What an operation asks of every caller, whatever the request says. Handlers check it
/// before they read the body or query, so a caller who may not make a request is told that
/// (403), not what is wrong with the request it may not make.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Gate {
    Scope(Scope),
    /// See `Principal::require_api_key`.
    ApiKey,
    /// See `Principal::require_settings`.
    Settings,
}

/// The caller of one request: its workspace, its credential, and the request id.
#[derive(Debug, Clone, PartialEq)]
pub struct Principal {
    pub workspace_id: String,
    pub kind: PrincipalKind,
    /// A readable name for the audit log: the key or token name, or the person's email.
    pub label: Option<String>,
    pub request_id: Option<String>,
}

impl Principal {
    /// The credential's id: API key, session or token id.
    pub fn credential_id(&self) -> &str {
        match &self.kind {
            PrincipalKind::TeamKey { key_id } | PrincipalKind::PersonalKey { key_id, .. } => key_id,
            PrincipalKind::Session { session_id, .. } => session_id,
            PrincipalKind::Token { token_id, .. } => token_id,
        }
    }

    /// How the principal is named in records it leaves behind, e.g. `api_key:<id>`.
    pub fn actor(&self) -> String {
        match &self.kind {
            PrincipalKind::TeamKey { key_id } | PrincipalKind::PersonalKey { key_id, .. } => {
                format!("api_key:{key_id}")
            }
            PrincipalKind::Session { user_id, .. } => format!("user:{user_id}"),
            PrincipalKind::Token { token_id, .. } => format!("token:{token_id}"),
        }
    }

    /// The actor as the audit log shows it.
    pub fn audit_actor(&self) -> Actor {
        let (kind, id) = match &self.kind {
            PrincipalKind::TeamKey { key_id } => (ActorKind::TeamKey, key_id),
            PrincipalKind::PersonalKey { key_id, .. } => (ActorKind::PersonalKey, key_id),
            PrincipalKind::Session { user_id, .. } => (ActorKind::Session, user_id),
            PrincipalKind::Token { token_id, .. } => (ActorKind::Token, token_id),
        };
        Actor {
            kind,
            id: Some(id.clone()),
            label: self.label.clone(),
        }
    }

    pub fn member_id(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::PersonalKey { member_id, .. }
            | PrincipalKind::Session { member_id, .. } => Some(member_id),
            _ => None,
        }
    }

    /// The member role a person acts with; `None` for team keys and tokens.
    pub fn role(&self) -> Option<Role> {
        match &self.kind {
            PrincipalKind::PersonalKey { role, .. } | PrincipalKind::Session { role, .. } => {
                Some(*role)
            }
            _ => None,
        }
    }

    /// The prefix a confined token is limited to; `None` for everyone else.
    pub fn name_prefix(&self) -> Option<&str> {
        match &self.kind {
            PrincipalKind::Token { name_prefix, .. } => name_prefix.as_deref(),
            _ => None,
        }
    }

    /// Whether the principal may see and manage the token called `name`.
    pub fn sees_token(&self, name: &str) -> bool {
        confinement::within(self.name_prefix(), name)
    }

    /// Whether a check of a presented secret (verify, introspection) may name `token`: one of
    /// the principal's workspace, inside its view; any other is answered as unknown.
    pub fn may_inspect(&self, token: &credentials::TokenCredential) -> bool {
        token.workspace_id == self.workspace_id && self.sees_token(&token.name)
    }

    /// Whether the principal may act with `scope`. A confined token never reaches past its
    /// prefix, whatever it holds.
    pub fn permits(&self, scope: Scope) -> bool {
        match &self.kind {
            PrincipalKind::TeamKey { .. } => true,
            PrincipalKind::PersonalKey { role, .. } | PrincipalKind::Session { role, .. } => {
                role_permits(*role, scope)
            }
            PrincipalKind::Token {
                scopes,
                name_prefix,
                ..
            } => scopes.contains(&scope) && !(name_prefix.is_some() && scope.is_workspace_wide()),
        }
    }

    /// Checks what `gate` asks of this caller.
    pub fn pass(&self, gate: Gate) -> Result<(), Error> {
        match gate {
            Gate::Scope(scope) => self.require(scope),
            Gate::ApiKey => self.require_api_key(),
            Gate::Settings => self.require_settings(),
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), Error> {
        if self.permits(scope) {
            return Ok(());
        }
        if let Some(prefix) = self.name_prefix()
            && scope.is_workspace_wide()
        {
            return Err(confinement::outside(
                prefix,
                &format!("`{scope}` reaches the whole workspace"),
            ));
        }
        Err(Error::Forbidden(match self.role() {
            Some(role) => format!("the {} role does not allow `{scope}`", role.as_str()),
            None => format!("this token lacks the `{scope}` scope"),
        }))
    }

    /// For what belongs to the whole workspace rather than to tokens (its settings).
    pub fn require_unconfined(&self, what: &str) -> Result<(), Error> {
        match self.name_prefix() {
            Some(prefix) => Err(confinement::outside(
                prefix,
                &format!("{what} belong to the whole workspace"),
            )),
            None => Ok(()),
        }
    }

    /// API keys and settings are managed by people and team keys, never by tokens.
    pub fn require_api_key(&self) -> Result<(), Error> {
        match self.kind {
            PrincipalKind::Token { .. } => Err(Error::Forbidden(
                "tokens cannot manage API keys or settings; use an API key".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Settings (workspace, members): Owners and team keys only, as the seeds' role table says.
    pub fn require_settings(&self) -> Result<(), Error> {
        self.require_api_key()?;
        match self.role() {
            None | Some(Role::Owner) => Ok(()),
            Some(role) => Err(Error::Forbidden(format!(
                "the {} role cannot manage settings; only owners can",
                role.as_str()
            ))),
        }
    }

    /// Owners and team keys manage every API key; other members only their own personal keys.
    pub fn may_manage_key_of(&self, kind: ApiKeyKind, member_id: Option<&str>) -> bool {
        match (&self.kind, self.role()) {
            (PrincipalKind::TeamKey { .. }, _) => true,
            (PrincipalKind::Token { .. }, _) => false,
            (_, Some(Role::Owner)) => true,
            _ => {
                kind == ApiKeyKind::Personal && member_id.is_some() && member_id == self.member_id()
            }
        }
    }
}

/// The seeds' role table: Owner does everything; Admin creates, rotates and revokes tokens and
/// reads the audit log, but changes no settings (webhooks are settings); Viewer only reads.
pub fn role_permits(role: Role, scope: Scope) -> bool {
    match scope {
        Scope::TokensRead | Scope::WebhooksRead => true,
        Scope::TokensWrite | Scope::TokensRevoke | Scope::TokensRotate | Scope::AuditRead => {
            role != Role::Viewer
        }
        Scope::WebhooksWrite => role == Role::Owner,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn role_table_matches_the_seeds() {
        use Role::*;
        for role in [Owner, Admin, Viewer] {
            assert!(role_permits(role, Scope::TokensRead));
        }
        for scope in [Scope::TokensWrite, Scope::TokensRevoke, Scope::TokensRotate] {
            assert!(role_permits(Owner, scope));
            assert!(role_permits(Admin, scope));
            assert!(!role_permits(Viewer, scope));
        }
        assert!(!role_permits(Viewer, Scope::AuditRead));
        assert!(role_permits(Admin, Scope::AuditRead));
        assert!(!role_permits(Admin, Scope::WebhooksWrite));
        assert!(role_permits(Owner, Scope::WebhooksWrite));
    }

    #[test]
    fn token_principal_is_limited_to_its_scopes() {
        let principal = Principal {
            workspace_id: "w".into(),
            kind: PrincipalKind::Token {
                token_id: "t".into(),
                scopes: vec![Scope::TokensRead],
                name_prefix: None,
            },
            label: None,
            request_id: None,
        };
        assert!(principal.require(Scope::TokensRead).is_ok());
        let err = principal.require(Scope::TokensWrite).unwrap_err();
        assert_eq!(err.to_string(), "this token lacks the `tokens:write` scope");
        assert!(principal.require_api_key().is_err());
        assert!(principal.require_unconfined("settings").is_ok());
        assert!(principal.sees_token("anything"));
    }

    #[test]
    fn a_confined_token_stays_in_its_lane_whatever_it_holds() {
        let principal = Principal {
            workspace_id: "w".into(),
            kind: PrincipalKind::Token {
                token_id: "t".into(),
                // Creation refuses these together with a prefix; the check holds regardless.
                scopes: vec![Scope::TokensRead, Scope::AuditRead, Scope::WebhooksWrite],
                name_prefix: Some("k8s:dev/".into()),
            },
            label: None,
            request_id: None,
        };
        assert!(principal.require(Scope::TokensRead).is_ok());
        for scope in [Scope::AuditRead, Scope::WebhooksRead, Scope::WebhooksWrite] {
            assert!(!principal.permits(scope));
            let err = principal.require(scope).unwrap_err().to_string();
            assert!(
                err.contains("k8s:dev/") && err.contains(scope.as_str()),
                "{err}"
            );
        }
        assert!(principal.require_unconfined("settings").is_err());
        assert!(principal.sees_token("k8s:dev/api"));
        assert!(!principal.sees_token("k8s:prod/api"));
    }
}
