use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tooken_operator::cli::{Cli, Setup};
use tooken_operator::controller::{self, Settings};
use tooken_operator::metrics::Metrics;
use tooken_operator::{health, setup};

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
    // Colours only for a person at a terminal, never into `kubectl logs`.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
    tokio::spawn(health::serve(cli.listen, metrics.clone(), ready.clone()));
    // Followers are ready too: they stand by to take the lease.
    ready.store(true, Ordering::SeqCst);

    if let Some(elector) = cli.elector(&client) {
        elector.wait_for_lease().await?;
        tracing::info!(identity = %elector.identity, "leading");
        metrics.leader.set(1);
        // A replica that cannot keep the lease exits, so it never acts without it.
        tokio::spawn(async move {
            let lost = elector.keep_leading().await;
            tracing::error!("{lost}; exiting");
            std::process::exit(1);
        });
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
