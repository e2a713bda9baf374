//! Wiring: the kube Controller over TookenTokens (and the Secrets they own), the finalizer
//! that revokes on delete, and backoff with jitter on errors.

use crate::backoff::Backoff;
use crate::change_feed::{Change, ChangeFeed, OwnRotations};
use crate::cluster::{
    ApiConnection, Cluster, KubeCluster, MANAGED_BY, MANAGED_BY_LABEL, read_connection,
};
use crate::crd::{Connection, TookenToken, TookenTokenSpec};
use crate::metrics::{Metrics, OutcomeLabels, ReasonLabels};
use crate::policy::{self, Denial, Serve, TookenPolicy};
use crate::reconcile::{self, MAX_REQUEUE, ReconcileError};
use crate::tooken_api::MeteredApi;
use futures::{StreamExt, TryStreamExt, future};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::PartialObjectMeta;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::finalizer::{Event, finalizer};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, reflector, watcher};
use kube::{Api, ResourceExt};
use rand::RngExt;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const FINALIZER: &str = "tooken.io/revoke";

pub struct Settings {
    /// Only this namespace; all when `None`.
    pub namespace: Option<String>,
    pub concurrency: u16,
    /// Used by resources that name no connection Secret.
    pub default_connection: Option<ApiConnection>,
    /// How often the default connection's audit log is read for changes made outside.
    pub change_poll: Duration,
}

/// How often a resource the change feed does not cover is checked against the API: one with a
/// connection Secret of its own, or all of them while the default connection may not read the
/// audit log. The bound on noticing a change made outside the operator there.
pub const FALLBACK_CHECK: Duration = Duration::from_secs(60);

/// How long a reconcile waits for the first list of TookenPolicies before refusing.
const POLICY_LIST_WAIT: Duration = Duration::from_secs(10);

/// Shared by every reconcile.
pub struct Context {
    pub client: kube::Client,
    pub cluster: KubeCluster,
    pub http: reqwest::Client,
    pub metrics: Arc<Metrics>,
    pub default_connection: Option<ApiConnection>,
    /// Consecutive failures per resource, for backoff.
    backoff: Backoff,
    managed: Mutex<HashSet<String>>,
    /// Whether a change feed reads the default connection's audit log.
    has_feed: bool,
    feed_refused: Arc<AtomicBool>,
    own_rotations: Arc<OwnRotations>,
    /// Ready once the policies were listed: until then nothing is issued.
    policies: Store<TookenPolicy>,
}

impl Context {
    /// Whether changes to a token served so reach its resource only by checking.
    fn checked_alone(&self, serve: &Serve) -> bool {
        *serve != Serve::Default || !self.has_feed || self.feed_refused.load(Ordering::Relaxed)
    }

    /// What the policies allow `spec` in this resource's namespace: which connection serves
    /// it, or why none may.
    async fn decide(
        &self,
        tt: &TookenToken,
        spec: &TookenTokenSpec,
    ) -> Result<Serve, ReconcileError> {
        // At start the first reconciles race the first list: give it a moment.
        let listed = tokio::time::timeout(POLICY_LIST_WAIT, self.policies.wait_until_ready())
            .await
            .is_ok_and(|ready| ready.is_ok());
        if !listed {
            return Err(ReconcileError::PolicyUnavailable(
                "is crds/tookenpolicies.tooken.io.yaml installed, and may the operator list them?"
                    .into(),
            ));
        }
        let policies = self.policies.state();
        let namespace = tt.namespace().unwrap_or_default();
        let labels = if policy::uses_labels(&policies) {
            Api::<Namespace>::all(self.client.clone())
                .get_metadata(&namespace)
                .await?
                .metadata
                .labels
                .unwrap_or_default()
        } else {
            Default::default()
        };
        policy::decide(&policies, &namespace, &labels, spec).map_err(ReconcileError::PolicyDenied)
    }
}

/// The periodic check of an otherwise idle resource, spread over the last fifth of
/// `MAX_REQUEUE` so resources created together are not all checked in the same second.
fn spread(wait: Duration) -> Duration {
    if wait < MAX_REQUEUE {
        return wait;
    }
    MAX_REQUEUE.mul_f64(rand::rng().random_range(0.8..1.0))
}

/// A check within `FALLBACK_CHECK`, jittered so resources are not checked in lockstep.
fn fallback_check(wait: Duration) -> Duration {
    wait.min(FALLBACK_CHECK.mul_f64(rand::rng().random_range(0.75..1.0)))
}

/// The resources whose status names `change`'s token, as the token or one awaiting revocation.
pub fn holders(store: &Store<TookenToken>, change: &Change) -> Vec<ObjectRef<TookenToken>> {
    store
        .state()
        .iter()
        .filter(|tt| match change {
            Change::All => true,
            Change::Token(id) => tt
                .status
                .as_ref()
                .is_some_and(|s| reconcile::held_tokens(s).any(|held| held == id)),
        })
        .map(|tt| ObjectRef::from_obj(&**tt))
        .collect()
}

/// The Tooken API client for `connection`, on the shared HTTP client.
fn tooken_client(http: &reqwest::Client, connection: &ApiConnection) -> tooken_contract::Client {
    tooken_contract::Client::new(http.clone(), &connection.url, &connection.api_key)
}

/// The Tooken API client for a resource, from the connection that serves it.
async fn api_client(
    ctx: &Context,
    tt: &TookenToken,
    serve: &Serve,
) -> Result<MeteredApi, ReconcileError> {
    let connection = connection(ctx, tt, serve).await?;
    Ok(MeteredApi {
        client: tooken_client(&ctx.http, &connection),
        metrics: ctx.metrics.clone(),
        own: ctx.own_rotations.clone(),
    })
}

async fn connection(
    ctx: &Context,
    tt: &TookenToken,
    serve: &Serve,
) -> Result<ApiConnection, ReconcileError> {
    let (namespace, secret) = match serve {
        Serve::Default => {
            return ctx.default_connection.clone().ok_or_else(|| {
                ReconcileError::NoConnection("spec.connection is absent and the operator has no default (TOOKEN_API_URL, TOOKEN_API_KEY)".into())
            });
        }
        Serve::Own => (
            tt.namespace().unwrap_or_default(),
            tt.spec
                .connection
                .clone()
                .expect("Own means spec.connection"),
        ),
        Serve::Policy(named) => (
            named.namespace.clone(),
            Connection {
                secret_name: named.secret_name.clone(),
                url_key: None,
                api_key_key: None,
            },
        ),
    };
    read_connection(&ctx.client, &namespace, &secret)
        .await?
        .ok_or_else(|| {
            ReconcileError::NoConnection(format!(
                "Secret `{namespace}/{}` is missing or lacks the URL or API key",
                secret.secret_name
            ))
        })
}

/// The connection to revoke with: the one policies choose now whatever the scopes, else the
/// one the resource would have had before any policy (revoking must not wait for a policy to
/// allow it).
async fn revoking_serve(ctx: &Context, tt: &TookenToken) -> Serve {
    let any_scopes = TookenTokenSpec {
        scopes: Vec::new(),
        ..tt.spec.clone()
    };
    match ctx.decide(tt, &any_scopes).await {
        Ok(serve) => serve,
        Err(_) if tt.spec.connection.is_some() => Serve::Own,
        Err(_) => Serve::Default,
    }
}

/// Revokes the resource's token when the policies now forbid what it was issued with, not
/// only what its spec asks for now: a tightened policy takes back what it no longer allows,
/// while an edit the policies refuse leaves the token that was allowed working.
async fn withdraw_forbidden(ctx: &Context, tt: &TookenToken) -> Result<(), ReconcileError> {
    let Some(status) = tt.status.as_ref().filter(|s| s.token_id.is_some()) else {
        return Ok(());
    };
    let issued = TookenTokenSpec {
        scopes: status.issued_scopes.clone(),
        ..tt.spec.clone()
    };
    let why = match ctx.decide(tt, &issued).await {
        Err(ReconcileError::PolicyDenied(Denial::Forbidden(why))) => why,
        Ok(_) | Err(ReconcileError::PolicyDenied(Denial::Conflict(_))) => return Ok(()),
        Err(err) => return Err(err),
    };
    let serve = revoking_serve(ctx, tt).await;
    let client = api_client(ctx, tt, &serve).await?;
    reconcile::withdraw(tt, &ctx.cluster, &client, &why).await
}

async fn reconcile(
    tt: Arc<TookenToken>,
    ctx: Arc<Context>,
) -> Result<Action, kube::runtime::finalizer::Error<ReconcileError>> {
    let started = Instant::now();
    let namespace = tt.namespace().unwrap_or_default();
    let api: Api<TookenToken> = Api::namespaced(ctx.client.clone(), &namespace);
    let key = format!("{namespace}/{}", tt.name_any());
    let was_ready = tt.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    });
    let result = finalizer(&api, FINALIZER, tt.clone(), |event| async {
        match event {
            Event::Apply(tt) => {
                ctx.managed.lock().expect("lock").insert(key.clone());
                let result = async {
                    let serve = match ctx.decide(&tt, &tt.spec).await {
                        Err(ReconcileError::PolicyDenied(denial)) => {
                            withdraw_forbidden(&ctx, &tt).await?;
                            return Err(ReconcileError::PolicyDenied(denial));
                        }
                        decided => decided?,
                    };
                    let client = api_client(&ctx, &tt, &serve).await?;
                    let wait =
                        reconcile::apply(&tt, &ctx.cluster, &client, Timestamp::now()).await?;
                    Ok::<_, ReconcileError>((serve, wait))
                }
                .await;
                match result {
                    Ok((serve, wait)) if ctx.checked_alone(&serve) => {
                        Ok(Action::requeue(fallback_check(wait)))
                    }
                    Ok((_, wait)) => Ok(Action::requeue(spread(wait))),
                    Err(err) => {
                        // A failure that persists is one Warning, not one per retry.
                        let reported = reconcile::reported(&tt, err.reason());
                        reconcile::report_failure(&tt, &ctx.cluster, &err, Timestamp::now()).await;
                        if !reported {
                            ctx.cluster
                                .event(&tt, true, err.reason(), err.to_string())
                                .await;
                        }
                        Err(err)
                    }
                }
            }
            Event::Cleanup(tt) => {
                let result = async {
                    let serve = revoking_serve(&ctx, &tt).await;
                    let client = api_client(&ctx, &tt, &serve).await?;
                    reconcile::cleanup(&tt, &ctx.cluster, &client).await
                }
                .await;
                match result {
                    Ok(()) => {
                        ctx.managed.lock().expect("lock").remove(&key);
                        ctx.cluster.own_writes.forget(&*tt);
                        Ok(Action::await_change())
                    }
                    Err(err) => {
                        // The finalizer stays until revocation succeeds; see README for releasing it.
                        let failure = ReconcileError::CleanupFailed(err.to_string());
                        reconcile::report_failure(&tt, &ctx.cluster, &failure, Timestamp::now())
                            .await;
                        ctx.cluster
                            .event(&tt, true, "RevokeFailed", err.to_string())
                            .await;
                        // Counted (metrics, backoff) as the failure that stopped the revocation.
                        Err(err)
                    }
                }
            }
        }
    })
    .await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    ctx.metrics
        .managed
        .set(ctx.managed.lock().expect("lock").len() as i64);
    let outcome = if result.is_ok() { "ok" } else { "error" };
    ctx.metrics
        .reconciles
        .get_or_create(&OutcomeLabels {
            outcome: outcome.into(),
        })
        .inc();
    if result.is_ok() {
        ctx.backoff.forget(&key);
        if !was_ready && let Some(created) = tt.metadata.creation_timestamp.as_ref() {
            let seconds = Timestamp::now().duration_since(created.0).as_secs_f64();
            ctx.metrics.time_to_ready.observe(seconds.max(0.0));
        }
    }
    result
}

fn error_policy(
    tt: Arc<TookenToken>,
    error: &kube::runtime::finalizer::Error<ReconcileError>,
    ctx: Arc<Context>,
) -> Action {
    let reason = match error {
        kube::runtime::finalizer::Error::ApplyFailed(err)
        | kube::runtime::finalizer::Error::CleanupFailed(err) => err.reason(),
        _ => "FinalizerError",
    };
    ctx.metrics
        .errors
        .get_or_create(&ReasonLabels {
            reason: reason.into(),
        })
        .inc();
    let key = format!("{}/{}", tt.namespace().unwrap_or_default(), tt.name_any());
    let retry = ctx.backoff.record_failure(&key);
    tracing::warn!(name = %tt.name_any(), reason, error = %error, failures = retry.failures, "reconcile failed");
    Action::requeue(retry.after)
}

/// Runs the controller until a shutdown signal.
pub async fn run(
    client: kube::Client,
    settings: Settings,
    metrics: Arc<Metrics>,
    http: reqwest::Client,
) {
    // Secrets as metadata only (`PartialObjectMeta`): values are never watched or cached.
    let (tokens, secrets): (Api<TookenToken>, Api<PartialObjectMeta<Secret>>) =
        match &settings.namespace {
            Some(ns) => (
                Api::namespaced(client.clone(), ns),
                Api::namespaced(client.clone(), ns),
            ),
            None => (Api::all(client.clone()), Api::all(client.clone())),
        };
    let reporter = Reporter {
        controller: "tooken-operator".into(),
        instance: std::env::var("POD_NAME").ok(),
    };
    let cluster = KubeCluster::new(client.clone(), reporter, metrics.clone());

    // TookenTokens, cached without managedFields and kubectl's copy of the last manifest (never
    // read, and most of each object's size).
    // Events that only echo the operator's own status write trigger nothing.
    let (tokens_reader, tokens_writer) = reflector::store();
    let own_writes = cluster.own_writes.clone();
    let tokens = watcher(tokens, watcher::Config::default())
        .default_backoff()
        .modify(|tt| {
            tt.managed_fields_mut().clear();
            tt.annotations_mut()
                .remove("kubectl.kubernetes.io/last-applied-configuration");
        })
        .reflect(tokens_writer)
        .applied_objects()
        .try_filter(move |tt| future::ready(!own_writes.is_echo(tt)));

    // Only the operator's own Secrets, and only their metadata: memory does not grow with the
    // Secrets in the cluster or with their size. A deleted or edited one triggers its owner.
    let own_secrets =
        watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
    let known = cluster.secrets.clone();
    let own_writes = cluster.own_writes.clone();
    let secrets = watcher(secrets, own_secrets)
        .default_backoff()
        .inspect_ok(move |event| known.watched(event))
        .touched_objects()
        .try_filter(move |secret| future::ready(!own_writes.is_echo(secret)));

    // Tokens changed through the API or the dashboard wake the resources that hold them.
    let (changes, changed) = futures::channel::mpsc::unbounded();
    let feed_refused = Arc::new(AtomicBool::new(false));
    let own_rotations = Arc::new(OwnRotations::default());
    if let Some(connection) = &settings.default_connection {
        let feed = ChangeFeed {
            client: tooken_client(&http, connection),
            metrics: metrics.clone(),
            interval: settings.change_poll,
            refused: feed_refused.clone(),
            own: own_rotations.clone(),
        };
        tokio::spawn(feed.run(changes));
    }
    let store = tokens_reader.clone();
    let changed = changed.flat_map(move |change| futures::stream::iter(holders(&store, &change)));

    // TookenPolicies (cluster-scoped): a change looks at every resource again, since any may
    // be allowed or refused by it now. So does a relist after a lost watch, which may hide
    // changes; the first list does not (every resource is reconciled at start anyway).
    let (policies, policies_writer) = reflector::store();
    let mut listed_before = false;
    let store = tokens_reader.clone();
    let policy_changes = watcher(
        Api::<TookenPolicy>::all(client.clone()),
        watcher::Config::default(),
    )
    .default_backoff()
    .reflect(policies_writer)
    .filter_map(move |event| {
        let relisted = matches!(event, Ok(watcher::Event::InitDone))
            && std::mem::replace(&mut listed_before, true);
        let changed = matches!(
            event,
            Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_))
        ) || relisted;
        future::ready(changed.then(|| holders(&store, &Change::All)))
    })
    .flat_map(futures::stream::iter);

    let ctx = Arc::new(Context {
        client: client.clone(),
        cluster,
        http,
        metrics,
        has_feed: settings.default_connection.is_some(),
        default_connection: settings.default_connection,
        backoff: Backoff::default(),
        managed: Mutex::default(),
        feed_refused,
        own_rotations,
        policies,
    });
    Controller::for_stream(tokens, tokens_reader)
        .owns_stream(secrets)
        .reconcile_on(changed)
        .reconcile_on(policy_changes)
        .with_config(ControllerConfig::default().concurrency(settings.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|_| futures::future::ready(()))
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_checks_are_spread_over_the_last_fifth_of_an_hour_and_schedules_kept() {
        let waits: HashSet<u128> = (0..50)
            .map(|_| {
                let wait = spread(MAX_REQUEUE);
                assert!(
                    (Duration::from_secs(2880)..Duration::from_secs(3600)).contains(&wait),
                    "{wait:?}"
                );
                wait.as_millis()
            })
            .collect();
        assert!(waits.len() > 1, "jittered");
        assert_eq!(spread(Duration::from_secs(90)), Duration::from_secs(90));
    }

    #[test]
    fn resources_the_feed_does_not_cover_are_checked_within_a_minute() {
        for _ in 0..50 {
            let wait = fallback_check(MAX_REQUEUE);
            assert!(
                (Duration::from_secs(45)..=FALLBACK_CHECK).contains(&wait),
                "{wait:?}"
            );
        }
        assert_eq!(
            fallback_check(Duration::from_secs(5)),
            Duration::from_secs(5),
            "a sooner schedule is kept"
        );
    }
}
