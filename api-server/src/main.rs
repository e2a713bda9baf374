use clap::Parser;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tooken_api_server::app::{Application, Settings};
use tooken_api_server::bootstrap::{BootstrapRequest, bootstrap, ensure_api_key, ensure_webhook};
use tooken_api_server::cli::{BootstrapArgs, Cli, Command, LogFormat, ServeArgs};
use tooken_api_server::delivery::DeliverySettings;
use tooken_api_server::rate_limit::RateLimit;
use tooken_api_server::store::Store;
use tooken_api_server::webhook_targets::TargetPolicy;
use tooken_api_server::{install_crypto_provider, telemetry};
use tooken_contract::Secret;

#[tokio::main]
async fn main() -> ExitCode {
    install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Bootstrap(args)) => {
            let _logs = telemetry::init(LogFormat::Text);
            run_bootstrap(args).await
        }
        Some(Command::Serve(args)) => serve(args).await,
        None => serve(cli.serve).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let _logs = telemetry::init(args.log_format);
    let bootstrap_file = args.bootstrap_api_key_file.clone();
    let bootstrap_webhook = args
        .bootstrap_webhook_url
        .clone()
        .zip(args.bootstrap_webhook_secret_file.clone());
    let settings = Settings {
        db_max_connections: args.database.db_max_connections,
        max_body_bytes: args.max_body_bytes,
        header_read_timeout: Duration::from_millis(args.header_read_timeout_ms.max(1)),
        body_read_timeout: Duration::from_millis(args.body_read_timeout_ms.max(1)),
        usage_flush_interval: Duration::from_millis(args.usage_flush_interval_ms.max(10)),
        signup: args.signup,
        session_ttl: Duration::from_secs(args.session_ttl_hours.max(1) * 3600),
        secure_cookies: args.secure_cookies,
        rate_limit: (args.rate_limit_per_second > 0).then(|| RateLimit {
            per_second: f64::from(args.rate_limit_per_second),
            burst: f64::from(args.rate_limit_burst.max(1)),
        }),
        sweep_interval: Duration::from_millis(args.sweep_interval_ms.max(10)),
        credential_cache_staleness: Duration::from_millis(args.credential_cache_max_staleness_ms),
        delivery: DeliverySettings {
            retry_base: Duration::from_millis(args.webhook_retry_base_ms.max(1)),
            max_attempts: args.webhook_max_attempts.max(1),
            attempt_timeout: Duration::from_millis(args.webhook_timeout_ms.max(1)),
            targets: Arc::new(TargetPolicy::new(args.webhook_allowed_targets.clone())),
            ..DeliverySettings::default()
        },
        ..Settings::new(args.listen, args.database.database_url)
    };
    let app = Application::build(&settings).await?;
    if let Some(path) = &bootstrap_file {
        let text = std::fs::read_to_string(path).map_err(|err| {
            anyhow::anyhow!(
                "cannot read TOOKEN_BOOTSTRAP_API_KEY_FILE {}: {err}",
                path.display()
            )
        })?;
        let key = Secret::parse(text.trim()).map_err(|err| {
            anyhow::anyhow!("TOOKEN_BOOTSTRAP_API_KEY_FILE does not hold an API key: {err}")
        })?;
        let owner = args
            .bootstrap_owner_email
            .as_deref()
            .map(|email| tooken_api_server::service::validate::email("email", email))
            .transpose()
            .map_err(|err| anyhow::anyhow!("TOOKEN_BOOTSTRAP_OWNER_EMAIL: {err}"))?;
        let owner = owner.as_deref();
        if ensure_api_key(&app.state().store, &args.bootstrap_workspace, key, owner).await? {
            tracing::info!(workspace = %args.bootstrap_workspace, "installed the bootstrap API key");
        }
    }
    if let Some((url, path)) = &bootstrap_webhook {
        let secret = std::fs::read_to_string(path).map_err(|err| {
            anyhow::anyhow!(
                "cannot read TOOKEN_BOOTSTRAP_WEBHOOK_SECRET_FILE {}: {err}",
                path.display()
            )
        })?;
        if ensure_webhook(
            &app.state().store,
            &args.bootstrap_workspace,
            url,
            secret.trim(),
        )
        .await?
        {
            tracing::info!(%url, "installed the bootstrap webhook endpoint");
        }
    }
    app.run_until_stopped(shutdown_signal()).await;
    Ok(())
}

async fn run_bootstrap(args: BootstrapArgs) -> anyhow::Result<()> {
    let store = Store::connect(&args.database.database_url, 2).await?;
    let request = BootstrapRequest {
        workspace_name: args.workspace,
        slug: args.slug,
        owner_email: args.owner_email,
        key_name: args.key_name,
        api_key: None,
    };
    let done = bootstrap(&store, &request).await?;
    store.close().await;
    eprintln!(
        "Created workspace \"{}\" (slug {}, id {}).",
        done.workspace.name, done.workspace.slug, done.workspace.id
    );
    if let Some(owner) = &done.owner {
        eprintln!("Owner: {} (member id {}).", owner.email, owner.id);
    }
    eprintln!(
        "Team API key \"{}\" (id {}) follows on standard output. It is shown only this once.",
        request.key_name, done.api_key_id
    );
    println!("{}", done.api_key.expose());
    Ok(())
}

/// Resolves on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down");
}
