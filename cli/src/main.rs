//! `tooken`: tokens, API keys, webhooks and the audit export from a terminal or CI.
//!
//! Configuration: `TOOKEN_URL` and `TOOKEN_API_KEY` (or `--url` and `--api-key`). Exit codes
//! are in `exit.rs` and the README.

mod exit;
mod output;

use clap::{Args, Parser, Subcommand, ValueEnum};
use exit::Failure;
use jiff::Timestamp;
use output::{Format, Table, print_json};
use std::io::Write;
use std::process::ExitCode;
use tooken_contract::api_keys::{ApiKey, ApiKeyKind, CreateApiKeyRequest};
use tooken_contract::audit::ExportAuditParams;
use tooken_contract::tokens::{
    CreateTokenRequest, ListTokensParams, RotateTokenRequest, Token, TokenStatus,
    VerifyTokenRequest,
};
use tooken_contract::webhooks::{CreateWebhookRequest, Webhook};
use tooken_contract::{Client, Scope};

#[derive(Parser)]
#[command(
    name = "tooken",
    version,
    about = "The Tooken API from a terminal or CI"
)]
struct Cli {
    /// The server's root URL.
    #[arg(
        long,
        env = "TOOKEN_URL",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    url: String,
    /// An API key, or a token (limited to its scopes).
    #[arg(long, env = "TOOKEN_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// `table` for people, `json` for scripts (the API's JSON), `env` for `.env` files
    /// (commands that show a secret).
    #[arg(long, short, global = true, value_enum, default_value_t = Format::Table)]
    output: Format,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Scoped tokens for downstream systems.
    #[command(subcommand)]
    Tokens(TokensCommand),
    /// API keys, which manage the workspace.
    #[command(subcommand, name = "api-keys")]
    ApiKeys(ApiKeysCommand),
    /// Signed webhook endpoints.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Create a token; its secret is shown once.
    Create {
        #[arg(long)]
        name: String,
        /// Repeat for several scopes.
        #[arg(long = "scope", required = true, value_parser = parse_scope)]
        scopes: Vec<Scope>,
        #[command(flatten)]
        expiry: Expiry,
    },
    /// List every token, newest first.
    List {
        #[arg(long, value_enum)]
        status: Option<StatusArg>,
    },
    Get {
        id: String,
    },
    /// Replace the secret; the new one is shown once.
    Rotate {
        id: String,
        /// How long the previous secret keeps working.
        #[arg(long, default_value_t = 0)]
        grace_period_seconds: u64,
    },
    /// Revoke for good.
    Revoke {
        id: String,
    },
    /// Check a token as a downstream service would; exit 1 when it does not work.
    Verify {
        token: String,
        /// A scope it must hold; repeat for several.
        #[arg(long = "scope", value_parser = parse_scope)]
        scopes: Vec<Scope>,
    },
}

#[derive(Args)]
#[group(multiple = false)]
struct Expiry {
    /// RFC 3339, e.g. 2027-01-31T00:00:00Z. Without it: the workspace default.
    #[arg(long)]
    expires_at: Option<Timestamp>,
    /// A token that never expires.
    #[arg(long)]
    never_expires: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum StatusArg {
    Active,
    Expired,
    Revoked,
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    Team,
    Personal,
}

#[derive(Subcommand)]
enum ApiKeysCommand {
    /// Create an API key; the key is shown once.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = KindArg::Team)]
        kind: KindArg,
    },
    List,
    Get {
        id: String,
    },
    /// A new secret for the same key; the old one stops working at once.
    Regenerate {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum WebhooksCommand {
    /// Create an endpoint; its signing secret is shown once.
    Create {
        /// Where deliveries go (`http://` or `https://`).
        #[arg(long)]
        endpoint: String,
        /// An event type such as token.rotated; repeat for several.
        #[arg(long = "event", required = true)]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    Get {
        id: String,
    },
    Delete {
        id: String,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// The audit log of a time range as CSV, on standard output.
    Export {
        /// RFC 3339 start (inclusive).
        #[arg(long)]
        since: Timestamp,
        /// RFC 3339 end (exclusive).
        #[arg(long)]
        until: Timestamp,
    },
}

fn parse_scope(value: &str) -> Result<Scope, String> {
    value.parse().map_err(|_| {
        let all: Vec<&str> = Scope::ALL.iter().map(|scope| scope.as_str()).collect();
        format!("unknown scope; the scopes are {}", all.join(", "))
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime starts");
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("tooken: {failure}");
            failure.exit_code()
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let api_key = cli.api_key.clone().ok_or(Failure::NoApiKey)?;
    let http = reqwest::Client::builder()
        .build()
        .map_err(|err| Failure::Client(err.into()))?;
    let client = Client::new(http, &cli.url, &api_key);
    let format = cli.output;
    match cli.command {
        Command::Tokens(command) => tokens(&client, format, command).await,
        Command::ApiKeys(command) => api_keys(&client, format, command).await,
        Command::Webhooks(command) => webhooks(&client, format, command).await,
        Command::Audit(AuditCommand::Export { since, until }) => {
            let mut response = client
                .export_audit(&ExportAuditParams { since, until })
                .await?;
            let mut stdout = std::io::stdout().lock();
            while let Some(chunk) = response
                .chunk()
                .await
                .map_err(|err| Failure::Client(err.into()))?
            {
                stdout.write_all(&chunk).map_err(Failure::Output)?;
            }
            stdout.flush().map_err(Failure::Output)
        }
    }
}

fn token_table(tokens: &[Token]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "SCOPES", "STATUS", "EXPIRES", "LAST USED"]);
    for token in tokens {
        let scopes: Vec<&str> = token.scopes.iter().map(|scope| scope.as_str()).collect();
        table.row([
            token.id.clone(),
            token.name.clone(),
            scopes.join(","),
            status_text(token.status).into(),
            output::time(token.expires_at, "never"),
            output::time(token.last_used_at, "-"),
        ]);
    }
    table
}

fn status_text(status: TokenStatus) -> &'static str {
    match status {
        TokenStatus::Active => "active",
        TokenStatus::Expired => "expired",
        TokenStatus::Revoked => "revoked",
    }
}

async fn tokens(client: &Client, format: Format, command: TokensCommand) -> Result<(), Failure> {
    match command {
        TokensCommand::Create {
            name,
            scopes,
            expiry,
        } => {
            let expires_at = match (expiry.expires_at, expiry.never_expires) {
                (_, true) => Some(None),
                (Some(at), false) => Some(Some(at)),
                (None, false) => None,
            };
            let request = CreateTokenRequest {
                name,
                scopes,
                expires_at,
                name_prefix: None,
                labels: Default::default(),
            };
            let issued = client.create_token(&request, None).await?;
            let secret = issued.secret.clone().unwrap_or_default();
            output::secret(format, &issued, "TOOKEN_TOKEN", &secret, || {
                token_table(std::slice::from_ref(&issued.token))
            })
        }
        TokensCommand::List { status } => {
            let mut all = Vec::new();
            let mut params = ListTokensParams {
                status: status.map(|status| match status {
                    StatusArg::Active => TokenStatus::Active,
                    StatusArg::Expired => TokenStatus::Expired,
                    StatusArg::Revoked => TokenStatus::Revoked,
                }),
                limit: Some(200),
                cursor: None,
            };
            loop {
                let page = client.list_tokens(&params).await?;
                all.extend(page.data);
                match page.next_cursor {
                    Some(cursor) => params.cursor = Some(cursor),
                    None => break,
                }
            }
            output::show(format, &all, || token_table(&all))
        }
        TokensCommand::Get { id } => {
            let token = client.get_token(&id).await?;
            output::show(format, &token, || token_table(std::slice::from_ref(&token)))
        }
        TokensCommand::Rotate {
            id,
            grace_period_seconds,
        } => {
            let request = RotateTokenRequest {
                grace_period_seconds: Some(grace_period_seconds),
                ..Default::default()
            };
            let rotated = client.rotate_token(&id, &request, None).await?;
            let secret = rotated.secret.clone().unwrap_or_default();
            output::secret(format, &rotated, "TOOKEN_TOKEN", &secret, || {
                token_table(std::slice::from_ref(&rotated.token))
            })
        }
        TokensCommand::Revoke { id } => {
            let token = client.revoke_token(&id).await?;
            output::show(format, &token, || token_table(std::slice::from_ref(&token)))
        }
        TokensCommand::Verify { token, scopes } => {
            let verdict = client
                .verify_token(&VerifyTokenRequest { token, scopes })
                .await?;
            match format {
                Format::Table => {
                    let mut table = Table::new(&["VALID", "REASON", "TOKEN", "NAME"]);
                    table.row([
                        verdict.valid.to_string(),
                        verdict.reason.as_str().into(),
                        verdict.token_id.clone().unwrap_or_else(|| "-".into()),
                        verdict.name.clone().unwrap_or_else(|| "-".into()),
                    ]);
                    table.print();
                }
                _ => print_json(&verdict),
            }
            if verdict.valid {
                Ok(())
            } else {
                Err(Failure::NotValid(verdict.reason.as_str()))
            }
        }
    }
}

fn api_key_table(keys: &[ApiKey]) -> Table {
    let mut table = Table::new(&["ID", "NAME", "KIND", "PREFIX", "CREATED", "LAST USED"]);
    for key in keys {
        table.row([
            key.id.clone(),
            key.name.clone(),
            match key.kind {
                ApiKeyKind::Team => "team".into(),
                ApiKeyKind::Personal => "personal".into(),
            },
            key.prefix.clone(),
            output::time(Some(key.created_at), "-"),
            output::time(key.last_used_at, "-"),
        ]);
    }
    table
}

async fn api_keys(client: &Client, format: Format, command: ApiKeysCommand) -> Result<(), Failure> {
    match command {
        ApiKeysCommand::Create { name, kind } => {
            let request = CreateApiKeyRequest {
                name,
                kind: match kind {
                    KindArg::Team => ApiKeyKind::Team,
                    KindArg::Personal => ApiKeyKind::Personal,
                },
                member_id: None,
            };
            let issued = client.create_api_key(&request).await?;
            let key = issued.key.clone().unwrap_or_default();
            output::secret(format, &issued, "TOOKEN_API_KEY", &key, || {
                api_key_table(std::slice::from_ref(&issued.api_key))
            })
        }
        ApiKeysCommand::List => {
            let keys = client.list_api_keys().await?.data;
            output::show(format, &keys, || api_key_table(&keys))
        }
        ApiKeysCommand::Get { id } => {
            let key = client.get_api_key(&id).await?;
            output::show(format, &key, || api_key_table(std::slice::from_ref(&key)))
        }
        ApiKeysCommand::Regenerate { id } => {
            let issued = client.regenerate_api_key(&id).await?;
            let key = issued.key.clone().unwrap_or_default();
            output::secret(format, &issued, "TOOKEN_API_KEY", &key, || {
                api_key_table(std::slice::from_ref(&issued.api_key))
            })
        }
        ApiKeysCommand::Delete { id } => {
            client.delete_api_key(&id).await?;
            output::deleted(format, &id)
        }
    }
}

fn webhook_table(webhooks: &[Webhook]) -> Table {
    let mut table = Table::new(&["ID", "URL", "EVENTS", "ENABLED", "CREATED"]);
    for webhook in webhooks {
        table.row([
            webhook.id.clone(),
            webhook.url.clone(),
            webhook.event_types.join(","),
            webhook.enabled.to_string(),
            output::time(Some(webhook.created_at), "-"),
        ]);
    }
    table
}

async fn webhooks(
    client: &Client,
    format: Format,
    command: WebhooksCommand,
) -> Result<(), Failure> {
    match command {
        WebhooksCommand::Create {
            endpoint,
            events,
            description,
        } => {
            let request = CreateWebhookRequest {
                url: endpoint,
                event_types: events,
                description,
                enabled: None,
            };
            let created = client.create_webhook(&request).await?;
            output::secret(
                format,
                &created,
                "TOOKEN_WEBHOOK_SECRET",
                &created.secret,
                || webhook_table(std::slice::from_ref(&created.webhook)),
            )
        }
        WebhooksCommand::List => {
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.list_webhooks(cursor.as_deref()).await?;
                all.extend(page.data);
                cursor = page.next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            output::show(format, &all, || webhook_table(&all))
        }
        WebhooksCommand::Get { id } => {
            let webhook = client.get_webhook(&id).await?;
            output::show(format, &webhook, || {
                webhook_table(std::slice::from_ref(&webhook))
            })
        }
        WebhooksCommand::Delete { id } => {
            client.delete_webhook(&id).await?;
            output::deleted(format, &id)
        }
    }
}
