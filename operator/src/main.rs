use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tooken_operator::cli::{Cli, Setup};
use tooken_operator::controller::{self, Settings};
use tooken_operator::leader::Elector;
use tooken_operator::metrics::Metrics;
use tooken_operator::setup;
use warp::Filter;

// jemalloc returns the memory of a burst of reconciles; glibc's allocator kept it fragmented
// (see "Benchmark: the operator at scale" in README.md).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    init_logging(&cli.log_format);
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let default_connection = cli.default_connection()?;
    let metrics = Arc::new(Metrics::default());
    let client = tooken_operator::kube_client::connect(metrics.clone()).await?;
    match cli.setup {
        Some(Setup::SetupCredentials {
            namespace,
            secret,
            api_url,
        }) => {
            return setup::credentials(client, &namespace, &secret, &api_url).await;
        }
        None => {}
    }
    let ready = Arc::new(AtomicBool::new(false));
    tokio::spawn(serve_health(cli.listen, metrics.clone(), ready.clone()));
    // Followers are ready too: they stand by to take the lease.
    ready.store(true, Ordering::SeqCst);

    if cli.leader_election {
        let identity = cli
            .identity
            .clone()
            .unwrap_or_else(|| format!("tooken-operator-{}", std::process::id()));
        let elector = Elector {
            api: kube::Api::namespaced(client.clone(), &cli.lease_namespace),
            name: cli.lease_name.clone(),
            identity,
            lease_seconds: 15,
        };
        while !elector.try_acquire(jiff::Timestamp::now()).await? {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        tracing::info!(identity = %elector.identity, "leading");
        metrics.leader.set(1);
        tokio::spawn(keep_leading(elector));
    }
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    controller::run(
        client,
        Settings {
            namespace: cli.namespace,
            concurrency: cli.concurrency,
            default_connection,
            change_poll: std::time::Duration::from_secs(cli.change_poll_seconds.max(1)),
        },
        metrics,
        http,
    )
    .await;
    Ok(())
}

/// Renews the lease; a replica that cannot renew in time exits, so it never acts without it.
async fn keep_leading(elector: Elector) {
    let period = Duration::from_secs((elector.lease_seconds / 3).max(1) as u64);
    let mut last_renewed = std::time::Instant::now();
    loop {
        tokio::time::sleep(period).await;
        match elector.try_acquire(jiff::Timestamp::now()).await {
            Ok(true) => last_renewed = std::time::Instant::now(),
            Ok(false) => {
                tracing::error!("lost the lease to another replica; exiting");
                std::process::exit(1);
            }
            Err(err) => {
                tracing::warn!(error = %err, "could not renew the lease");
                if last_renewed.elapsed()
                    > Duration::from_secs(elector.lease_seconds as u64 * 2 / 3)
                {
                    tracing::error!("the lease may have run out; exiting");
                    std::process::exit(1);
                }
            }
        }
    }
}

async fn serve_health(addr: std::net::SocketAddr, metrics: Arc<Metrics>, ready: Arc<AtomicBool>) {
    let healthz = warp::path!("healthz").map(|| String::from("ok"));
    let readyz = warp::path!("readyz").map(move || {
        if ready.load(Ordering::SeqCst) {
            warp::reply::with_status(String::from("ready"), warp::http::StatusCode::OK)
        } else {
            warp::reply::with_status(
                String::from("starting"),
                warp::http::StatusCode::SERVICE_UNAVAILABLE,
            )
        }
    });
    let metrics = warp::path!("metrics").map(move || metrics.render());
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            warp::serve(healthz.or(readyz).or(metrics))
                .incoming(listener)
                .run()
                .await
        }
        Err(err) => tracing::error!(error = %err, %addr, "cannot serve health and metrics"),
    }
}
