use clap::Parser;
use tooken_sidecar::config::{Cli, Mode};
use tracing_subscriber::EnvFilter;

// One thread: the sidecar waits on the network and the API server, and its RSS budget is small.
#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // reqwest and kube are built without a default crypto provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    // Colours only for a person at a terminal, never into `kubectl logs`.
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()));
    if cli.log_json {
        logs.json().init();
    } else {
        logs.init();
    }
    match cli.mode {
        Mode::Receiver(args) => tooken_sidecar::receiver::run(args).await,
        Mode::Volume(args) => tooken_sidecar::volume::run(args).await,
    }
}
