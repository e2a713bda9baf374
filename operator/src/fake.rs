//! In-memory stand-ins for the cluster and the Tooken API, sharing one step counter so a test
//! can crash a reconcile at any step: before an operation takes effect, or after it took
//! effect with its reply lost.

use crate::cluster::{Cluster, DesiredSecret, ObservedSecret};
use crate::crd::{TookenToken, TookenTokenStatus};
use crate::tooken_api::{ApiFailure, TookenApi};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tooken_contract::tokens::{
    CreateTokenRequest, IssuedToken, RotateTokenRequest, RotatedToken, Token, TokenStatus,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Crash {
    /// The operation fails without taking effect.
    Before,
    /// The operation takes effect, then the process dies before seeing the reply.
    After,
}

#[derive(Default)]
pub struct Steps {
    pub count: usize,
    pub crash_at: Option<(usize, Crash)>,
    /// Crash at the next step of this name.
    pub crash_on: Option<(&'static str, Crash)>,
    pub log: Vec<String>,
}

impl Steps {
    /// Counts a step; says whether to crash before or after its effect.
    fn step(&mut self, name: &str) -> Option<Crash> {
        self.count += 1;
        self.log.push(name.to_owned());
        if let Some((on, crash)) = self.crash_on
            && on == name
        {
            self.crash_on = None;
            return Some(crash);
        }
        match self.crash_at {
            Some((at, crash)) if at == self.count => Some(crash),
            _ => None,
        }
    }
}

pub type SharedSteps = Arc<Mutex<Steps>>;

fn crashed() -> ApiFailure {
    ApiFailure::Unavailable("simulated crash".into())
}

/// What the API says to a key reused with a different body.
fn key_reused() -> ApiFailure {
    ApiFailure::KeyReused("this Idempotency-Key was already used with a different request".into())
}

fn in_the_past() -> ApiFailure {
    ApiFailure::Refused {
        status: 422,
        message: "expires_at is in the past".into(),
    }
}

/// The API fingerprints the JSON body the client sends.
fn fingerprint<T: serde::Serialize>(request: &T) -> String {
    serde_json::to_string(request).expect("serialises")
}

/// The workspace default lifetime the API gives a token created without `expires_at`.
const DEFAULT_LIFETIME: jiff::SignedDuration = jiff::SignedDuration::from_hours(90 * 24);

fn kube_crash() -> kube::Error {
    kube::Error::Service("simulated crash".into())
}

#[derive(Debug, Clone)]
pub struct FakeToken {
    pub token: Token,
    /// Secrets that work now.
    pub secrets: Vec<String>,
}

#[derive(Default)]
pub struct FakeTookenState {
    pub tokens: HashMap<String, FakeToken>,
    /// Stored responses by idempotency key, with the body they answered.
    issued: HashMap<String, (String, IssuedToken)>,
    rotated: HashMap<String, (String, RotatedToken)>,
    /// Every key a request was refused for.
    pub refused_keys: Vec<String>,
    next: usize,
}

#[derive(Clone)]
pub struct FakeTooken {
    pub state: Arc<Mutex<FakeTookenState>>,
    pub steps: SharedSteps,
}

impl FakeTooken {
    pub fn active(&self) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let mut ids: Vec<String> = state
            .tokens
            .values()
            .filter(|t| t.token.status == TokenStatus::Active)
            .map(|t| t.token.id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// The token whose current secret is `secret`, if any.
    pub fn verify(&self, secret: &str) -> Option<String> {
        let state = self.state.lock().unwrap();
        state
            .tokens
            .values()
            .find(|t| {
                t.token.status == TokenStatus::Active && t.secrets.iter().any(|s| s == secret)
            })
            .map(|t| t.token.id.clone())
    }

    /// A read-only step: crashes (either way) before answering.
    fn read<T>(
        &self,
        step: &str,
        answer: impl FnOnce(&HashMap<String, FakeToken>) -> T,
    ) -> Result<T, ApiFailure> {
        if self.steps.lock().unwrap().step(step).is_some() {
            return Err(crashed());
        }
        Ok(answer(&self.state.lock().unwrap().tokens))
    }

    fn new_secret(state: &mut FakeTookenState) -> String {
        state.next += 1;
        format!("tok_live_fake{}", state.next)
    }
}

impl TookenApi for FakeTooken {
    async fn create_token(
        &self,
        request: &CreateTokenRequest,
        key: &str,
    ) -> Result<IssuedToken, ApiFailure> {
        let crash = self.steps.lock().unwrap().step("create_token");
        if crash == Some(Crash::Before) {
            return Err(crashed());
        }
        let mut state = self.state.lock().unwrap();
        if let Some((body, replay)) = state.issued.get(key) {
            if *body != fingerprint(request) {
                state.refused_keys.push(key.to_owned());
                return Err(key_reused());
            }
            let mut replay = replay.clone();
            replay.secret = None;
            return if crash.is_some() {
                Err(crashed())
            } else {
                Ok(replay)
            };
        }
        let now = Timestamp::now();
        if let Some(Some(at)) = request.expires_at
            && at <= now
        {
            return Err(in_the_past());
        }
        let secret = FakeTooken::new_secret(&mut state);
        let token = Token {
            id: format!("token-{}", state.next),
            name: request.name.clone(),
            scopes: request.scopes.clone(),
            status: TokenStatus::Active,
            prefix: secret[..13].to_owned(),
            created_at: now,
            expires_at: match request.expires_at {
                None => Some(now + DEFAULT_LIFETIME),
                Some(at) => at,
            },
            revoked_at: None,
            last_used_at: None,
            rotated_at: None,
            rotation: 0,
            name_prefix: request.name_prefix.clone(),
            labels: request.labels.clone(),
        };
        state.tokens.insert(
            token.id.clone(),
            FakeToken {
                token: token.clone(),
                secrets: vec![secret.clone()],
            },
        );
        let issued = IssuedToken {
            token,
            secret: Some(secret),
        };
        state
            .issued
            .insert(key.to_owned(), (fingerprint(request), issued.clone()));
        if crash.is_some() {
            Err(crashed())
        } else {
            Ok(issued)
        }
    }

    async fn get_token(&self, id: &str) -> Result<Option<Token>, ApiFailure> {
        self.read("get_token", |tokens| {
            tokens.get(id).map(|t| t.token.clone())
        })
    }

    async fn rotate_token(
        &self,
        id: &str,
        request: &RotateTokenRequest,
        key: &str,
    ) -> Result<RotatedToken, ApiFailure> {
        let crash = self.steps.lock().unwrap().step("rotate_token");
        if crash == Some(Crash::Before) {
            return Err(crashed());
        }
        let mut state = self.state.lock().unwrap();
        if let Some((body, replay)) = state.rotated.get(key) {
            if *body != fingerprint(request) {
                state.refused_keys.push(key.to_owned());
                return Err(key_reused());
            }
            let mut replay = replay.clone();
            replay.secret = None;
            return if crash.is_some() {
                Err(crashed())
            } else {
                Ok(replay)
            };
        }
        let now = Timestamp::now();
        if let Some(Some(at)) = request.expires_at
            && at <= now
        {
            return Err(in_the_past());
        }
        let secret = FakeTooken::new_secret(&mut state);
        let Some(entry) = state.tokens.get_mut(id) else {
            return Err(ApiFailure::Refused {
                status: 404,
                message: "token not found".into(),
            });
        };
        entry.token.rotation += 1;
        entry.token.rotated_at = Some(now);
        if let Some(expires_at) = request.expires_at {
            entry.token.expires_at = expires_at;
        }
        // Grace periods are not modelled: the old secret dies at once.
        entry.secrets = vec![secret.clone()];
        let rotated = RotatedToken {
            token: entry.token.clone(),
            secret: Some(secret),
            previous_secret_expires_at: now,
        };
        state
            .rotated
            .insert(key.to_owned(), (fingerprint(request), rotated.clone()));
        if crash.is_some() {
            Err(crashed())
        } else {
            Ok(rotated)
        }
    }

    async fn revoke_token(&self, id: &str) -> Result<(), ApiFailure> {
        let crash = self.steps.lock().unwrap().step("revoke_token");
        if crash == Some(Crash::Before) {
            return Err(crashed());
        }
        if let Some(entry) = self.state.lock().unwrap().tokens.get_mut(id) {
            entry.token.status = TokenStatus::Revoked;
            entry.token.revoked_at = Some(Timestamp::now());
        }
        if crash.is_some() {
            Err(crashed())
        } else {
            Ok(())
        }
    }

    async fn find_tokens(&self, name: &str) -> Result<Vec<Token>, ApiFailure> {
        self.read("find_tokens", |tokens| {
            tokens
                .values()
                .filter(|t| t.token.name == name && t.token.status == TokenStatus::Active)
                .map(|t| t.token.clone())
                .collect()
        })
    }
}

impl FakeTooken {
    /// A rotation made through the API, outside the operator (its secret goes elsewhere).
    pub fn rotate_out_of_band(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        let secret = FakeTooken::new_secret(&mut state);
        let entry = state.tokens.get_mut(id).expect("token exists");
        entry.token.rotation += 1;
        entry.token.rotated_at = Some(Timestamp::now());
        entry.secrets = vec![secret];
    }

    /// A revocation made through the API.
    pub fn revoke_out_of_band(&self, id: &str) {
        let mut state = self.state.lock().unwrap();
        let entry = state.tokens.get_mut(id).expect("token exists");
        entry.token.status = TokenStatus::Revoked;
        entry.token.revoked_at = Some(Timestamp::now());
    }
}

#[derive(Default)]
pub struct FakeClusterState {
    pub secret: Option<Secret>,
    pub status: Option<TookenTokenStatus>,
    pub events: Vec<String>,
}

#[derive(Clone)]
pub struct FakeCluster {
    pub state: Arc<Mutex<FakeClusterState>>,
    pub steps: SharedSteps,
}

impl Cluster for FakeCluster {
    /// Never: the fake is always read, which exercises every step.
    fn holds_secret(&self, _namespace: &str, _name: &str, _expected: &ObservedSecret) -> bool {
        false
    }

    async fn get_secret(
        &self,
        _namespace: &str,
        _name: &str,
    ) -> Result<Option<ObservedSecret>, kube::Error> {
        if self.steps.lock().unwrap().step("get_secret").is_some() {
            return Err(kube_crash());
        }
        Ok(self
            .state
            .lock()
            .unwrap()
            .secret
            .as_ref()
            .map(ObservedSecret::read))
    }

    async fn apply_secret(
        &self,
        owner: &TookenToken,
        secret: &DesiredSecret,
    ) -> Result<(), kube::Error> {
        let crash = self.steps.lock().unwrap().step("apply_secret");
        if crash == Some(Crash::Before) {
            return Err(kube_crash());
        }
        self.state.lock().unwrap().secret = Some(secret.to_secret(owner));
        if crash.is_some() {
            Err(kube_crash())
        } else {
            Ok(())
        }
    }

    async fn apply_status(
        &self,
        _owner: &TookenToken,
        status: &TookenTokenStatus,
    ) -> Result<(), kube::Error> {
        let crash = self.steps.lock().unwrap().step("apply_status");
        if crash == Some(Crash::Before) {
            return Err(kube_crash());
        }
        self.state.lock().unwrap().status = Some(status.clone());
        if crash.is_some() {
            Err(kube_crash())
        } else {
            Ok(())
        }
    }

    async fn event(&self, _owner: &TookenToken, _warning: bool, reason: &str, _note: String) {
        self.state.lock().unwrap().events.push(reason.to_owned());
    }
}

/// The Secret `apps/s` at `version`, holding `token: tok_live_x`.
pub fn secret_at(version: &str) -> Secret {
    let mut secret = Secret::default();
    secret.metadata.name = Some("s".into());
    secret.metadata.namespace = Some("apps".into());
    secret.metadata.resource_version = Some(version.into());
    secret.data = Some(
        [(
            "token".to_owned(),
            k8s_openapi::ByteString(b"tok_live_x".to_vec()),
        )]
        .into(),
    );
    secret
}

/// A fresh world: an empty cluster and Tooken sharing one step counter.
pub fn world() -> (FakeCluster, FakeTooken) {
    let steps: SharedSteps = Arc::default();
    (
        FakeCluster {
            state: Arc::default(),
            steps: steps.clone(),
        },
        FakeTooken {
            state: Arc::default(),
            steps,
        },
    )
}
