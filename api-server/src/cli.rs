//! Command-line flags, each with an environment fallback.

use crate::service::accounts::SignupPolicy;
use crate::webhook_targets::AllowedTarget;
use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(name = "tooken-server", version, about = "The Tooken REST API server")]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(ServeArgs),
    /// Create a workspace and a team API key, printed once on standard output.
    Bootstrap(BootstrapArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `sqlite://FILE` (embedded default) or `postgres://…` (needed for several replicas).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://tooken.db")]
    pub database_url: String,
    /// Connections in the database pool.
    #[arg(long, env = "TOOKEN_DB_MAX_CONNECTIONS", default_value_t = 16)]
    pub db_max_connections: u32,
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Address to listen on.
    #[arg(long, env = "TOOKEN_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Largest request body accepted, in bytes.
    #[arg(long, env = "TOOKEN_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: u64,
    /// Time a client has to send a request's headers, in milliseconds; also how long an idle
    /// keep-alive connection stays open.
    #[arg(long, env = "TOOKEN_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request's whole body once its headers arrived, in
    /// milliseconds (408 beyond).
    #[arg(long, env = "TOOKEN_BODY_READ_TIMEOUT_MS", default_value_t = 30_000)]
    pub body_read_timeout_ms: u64,
    /// How often `last_used_at` is written, in milliseconds.
    #[arg(long, env = "TOOKEN_USAGE_FLUSH_INTERVAL_MS", default_value_t = 5000)]
    pub usage_flush_interval_ms: u64,
    /// Who may create an account.
    #[arg(long, env = "TOOKEN_SIGNUP", value_enum, default_value_t = SignupPolicy::Open)]
    pub signup: SignupPolicy,
    /// How long a dashboard session lasts, in hours.
    #[arg(long, env = "TOOKEN_SESSION_TTL_HOURS", default_value_t = 168)]
    pub session_ttl_hours: u64,
    /// Mark the dashboard's session cookie `Secure` on every response. Without it, the cookie
    /// is `Secure` when a TLS proxy in front says `X-Forwarded-Proto: https`.
    #[arg(long, env = "TOOKEN_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Requests per second each API key, token or session may make (429 beyond); 0 for no limit.
    #[arg(long, env = "TOOKEN_RATE_LIMIT_PER_SECOND", default_value_t = 1000)]
    pub rate_limit_per_second: u32,
    /// Requests a credential may make at once before the per-second rate applies.
    #[arg(long, env = "TOOKEN_RATE_LIMIT_BURST", default_value_t = 2000)]
    pub rate_limit_burst: u32,
    /// The longest a cached credential lookup may be stale after another replica changes the
    /// credential, in milliseconds; 0 turns the cache off. The replica that made the change
    /// drops its own copy at once.
    #[arg(
        long,
        env = "TOOKEN_CREDENTIAL_CACHE_MAX_STALENESS_MS",
        default_value_t = 1000
    )]
    pub credential_cache_max_staleness_ms: u64,
    /// How often the expiry sweep and retention jobs run, in milliseconds.
    #[arg(long, env = "TOOKEN_SWEEP_INTERVAL_MS", default_value_t = 30_000)]
    pub sweep_interval_ms: u64,
    /// First webhook retry delay in milliseconds; each retry doubles it, up to 6 hours.
    #[arg(long, env = "TOOKEN_WEBHOOK_RETRY_BASE_MS", default_value_t = 5000)]
    pub webhook_retry_base_ms: u64,
    /// Webhook attempts before a delivery is marked failed.
    #[arg(long, env = "TOOKEN_WEBHOOK_MAX_ATTEMPTS", default_value_t = 20)]
    pub webhook_max_attempts: i64,
    /// Time limit of one webhook attempt, in milliseconds.
    #[arg(long, env = "TOOKEN_WEBHOOK_TIMEOUT_MS", default_value_t = 10_000)]
    pub webhook_timeout_ms: u64,
    /// Networks (`10.96.0.0/12`), addresses or host names webhook deliveries may reach although
    /// they are loopback, link-local, private or otherwise not public; comma-separated.
    #[arg(
        long,
        env = "TOOKEN_WEBHOOK_ALLOWED_TARGETS",
        value_delimiter = ',',
        num_args = 1..
    )]
    pub webhook_allowed_targets: Vec<AllowedTarget>,
    /// Log format.
    #[arg(long, env = "TOOKEN_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// A file holding a team API key to make work at start-up (the Helm chart mounts one).
    #[arg(long, env = "TOOKEN_BOOTSTRAP_API_KEY_FILE")]
    pub bootstrap_api_key_file: Option<std::path::PathBuf>,
    /// A webhook endpoint to make sure of at start-up (the Helm chart points it at its sidecar).
    #[arg(
        long,
        env = "TOOKEN_BOOTSTRAP_WEBHOOK_URL",
        requires = "bootstrap_webhook_secret_file"
    )]
    pub bootstrap_webhook_url: Option<String>,
    /// A file holding that endpoint's signing secret (`whsec_…`).
    #[arg(
        long,
        env = "TOOKEN_BOOTSTRAP_WEBHOOK_SECRET_FILE",
        requires = "bootstrap_webhook_url"
    )]
    pub bootstrap_webhook_secret_file: Option<std::path::PathBuf>,
    /// The workspace that key belongs to, created on first start.
    #[arg(long, env = "TOOKEN_BOOTSTRAP_WORKSPACE", default_value = "default")]
    pub bootstrap_workspace: String,
    /// The first Owner of that workspace when it is created: signing up with this email (even
    /// when sign-up is invite-only) makes them its Owner in the dashboard.
    #[arg(
        long,
        env = "TOOKEN_BOOTSTRAP_OWNER_EMAIL",
        requires = "bootstrap_api_key_file"
    )]
    pub bootstrap_owner_email: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BootstrapArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Name of the workspace to create.
    #[arg(long, env = "TOOKEN_BOOTSTRAP_WORKSPACE")]
    pub workspace: String,
    /// URL-safe identifier; derived from the name when absent.
    #[arg(long, env = "TOOKEN_BOOTSTRAP_SLUG")]
    pub slug: Option<String>,
    /// Email of the workspace's first Owner.
    #[arg(long, env = "TOOKEN_BOOTSTRAP_OWNER_EMAIL")]
    pub owner_email: Option<String>,
    /// Name of the team API key.
    #[arg(long, default_value = "bootstrap")]
    pub key_name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn cli_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serve_is_the_default() {
        let cli = Cli::try_parse_from(["tooken-server", "--listen", "0.0.0.0:9000"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.serve.listen.port(), 9000);
    }

    #[test]
    fn webhook_targets_are_a_comma_separated_list_checked_at_start() {
        let cli = Cli::try_parse_from([
            "tooken-server",
            "--webhook-allowed-targets",
            "127.0.0.0/8,::1,tooken-sidecar.tooken.svc",
        ])
        .unwrap();
        assert_eq!(cli.serve.webhook_allowed_targets.len(), 3);
        let err =
            Cli::try_parse_from(["tooken-server", "--webhook-allowed-targets", "10.0.0.0/99"])
                .unwrap_err();
        assert!(err.to_string().contains("10.0.0.0/99"), "{err}");
    }

    #[test]
    fn bootstrap_requires_a_workspace() {
        let err = Cli::try_parse_from(["tooken-server", "bootstrap"]).unwrap_err();
        assert!(err.to_string().contains("--workspace"), "{err}");
    }
}
