//! Building and running the server: `Application::build` binds (port 0 works) and connects;
//! `run_until_stopped` serves until the shutdown future resolves.

pub use crate::http::state::AppState;

use crate::delivery::{DeliverySettings, Worker};
use crate::http::request_body::BodyLimits;
use crate::http::routes;
use crate::http::server;
use crate::maintenance;
use crate::metrics::Metrics;
use crate::rate_limit::{RateLimit, RateLimiter};
use crate::store::{CacheSettings, Store};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

pub use crate::service::accounts::SignupPolicy;

/// Generous enough for a service verifying every request it serves, small enough that one
/// runaway client cannot starve the others.
pub const DEFAULT_RATE_LIMIT: RateLimit = RateLimit {
    per_second: 1000.0,
    burst: 2000.0,
};

#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub database_url: String,
    pub db_max_connections: u32,
    pub max_body_bytes: u64,
    /// Time a client has to send a request's headers (and to start one on an idle connection).
    pub header_read_timeout: Duration,
    /// Time a client has to send a request's whole body, after its headers.
    pub body_read_timeout: Duration,
    pub usage_flush_interval: Duration,
    pub signup: SignupPolicy,
    pub session_ttl: Duration,
    /// Always mark the session cookie `Secure` (it is anyway behind an HTTPS proxy).
    pub secure_cookies: bool,
    /// Requests each credential may make; `None` for no limit.
    pub rate_limit: Option<RateLimit>,
    /// How often expiry, retention and clean-up jobs run.
    pub sweep_interval: Duration,
    /// The longest a cached credential lookup may be stale (zero: no cache).
    pub credential_cache_staleness: Duration,
    pub delivery: DeliverySettings,
}

impl Settings {
    /// Defaults for everything but where to listen and which database to use.
    pub fn new(listen: SocketAddr, database_url: String) -> Settings {
        Settings {
            listen,
            database_url,
            db_max_connections: 16,
            max_body_bytes: 64 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            usage_flush_interval: Duration::from_secs(5),
            signup: SignupPolicy::Open,
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            secure_cookies: false,
            rate_limit: Some(DEFAULT_RATE_LIMIT),
            sweep_interval: Duration::from_secs(30),
            credential_cache_staleness: crate::store::DEFAULT_CACHE_STALENESS,
            delivery: DeliverySettings::default(),
        }
    }
}

pub struct Application {
    listener: TcpListener,
    state: AppState,
    usage_flush_interval: Duration,
    sweep_interval: Duration,
    delivery: DeliverySettings,
    read_limits: server::ReadLimits,
}

impl Application {
    pub async fn build(settings: &Settings) -> anyhow::Result<Application> {
        let mut metrics = Metrics::default();
        let store = Store::connect_with(
            &settings.database_url,
            settings.db_max_connections,
            CacheSettings {
                staleness: settings.credential_cache_staleness,
                counters: metrics.credential_cache_counters(),
            },
        )
        .await?;
        let listener = TcpListener::bind(settings.listen)
            .await
            .map_err(|err| anyhow::anyhow!("cannot listen on {}: {err}", settings.listen))?;
        Ok(Application {
            listener,
            state: AppState {
                store,
                usage: Arc::default(),
                metrics: Arc::new(metrics),
                max_body_bytes: settings.max_body_bytes,
                signup: settings.signup,
                session_ttl: jiff::SignedDuration::try_from(settings.session_ttl)
                    .map_err(|err| anyhow::anyhow!("session lifetime out of range: {err}"))?,
                secure_cookies: settings.secure_cookies,
                rate_limiter: Arc::new(RateLimiter::new(settings.rate_limit)),
                webhook_targets: settings.delivery.targets.clone(),
            },
            usage_flush_interval: settings.usage_flush_interval,
            sweep_interval: settings.sweep_interval,
            delivery: settings.delivery.clone(),
            read_limits: server::ReadLimits {
                header_timeout: settings.header_read_timeout,
                body: BodyLimits {
                    max_bytes: settings.max_body_bytes,
                    timeout: settings.body_read_timeout,
                },
            },
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound listener has an address")
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let state = self.state;
        let upkeep = tokio::spawn(maintenance::run(
            state.store.clone(),
            state.usage.clone(),
            self.usage_flush_interval,
            self.sweep_interval,
        ));
        let coherence = {
            let store = state.store.clone();
            tokio::spawn(async move { store.keep_credential_cache_coherent().await })
        };
        let worker = Worker::new(state.store.clone(), self.delivery, state.metrics.clone())
            .expect("the webhook HTTP client builds");
        let deliveries = tokio::spawn(worker.run());
        tracing::info!(address = %self.listener.local_addr().expect("bound"), "listening");
        let routes = routes::build(&state);
        server::serve(
            self.listener,
            routes.filter,
            state.metrics.clone(),
            Arc::new(routes.table),
            self.read_limits,
            shutdown,
        )
        .await;
        upkeep.abort();
        coherence.abort();
        deliveries.abort();
        if let Err(err) = state.usage.flush(&state.store).await {
            tracing::warn!(error = %err, "could not record last use of credentials at shutdown");
        }
        state.store.close().await;
        tracing::info!("stopped");
    }
}
