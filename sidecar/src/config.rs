//! Command line and environment configuration. Every flag has an environment variable, so the
//! manifests in `sidecar/README.md` need no arguments.

use clap::{Args, Parser, Subcommand};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(name = "tooken-sidecar", version, about)]
pub struct Cli {
    /// Log as JSON lines instead of human-readable text.
    #[arg(long, env = "TOOKEN_LOG_JSON", global = true)]
    pub log_json: bool,
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// A Deployment that Tooken's webhooks point at: rolls the workloads of a rotated token.
    Receiver(ReceiverArgs),
    /// A container beside the app: keeps the token file in a shared volume current.
    Volume(VolumeArgs),
}

/// How signed webhooks are accepted; shared by both modes.
#[derive(Debug, Clone, Args)]
pub struct WebhookArgs {
    /// Address of the HTTP server (webhooks, /healthz, /readyz, /metrics).
    #[arg(long, env = "TOOKEN_SIDECAR_LISTEN", default_value = "0.0.0.0:8080")]
    pub listen: SocketAddr,
    /// Webhook signing secrets; several are accepted at once so the secret can rotate without
    /// downtime. Comma-separated in the environment, or repeat the flag.
    #[arg(
        long = "webhook-secret",
        env = "TOOKEN_WEBHOOK_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub webhook_secrets: Vec<String>,
    /// Largest accepted webhook body, in bytes.
    #[arg(long, env = "TOOKEN_SIDECAR_BODY_LIMIT", default_value_t = 64 * 1024)]
    pub body_limit: u64,
    /// How far an event's `created_at` may be from now (e.g. `72h`, `5m`). The default outlasts
    /// Tooken's retries (up to about 56 h), so a rotation delivered after an outage still
    /// restarts its workloads; replays cannot restart twice, as each workload records the
    /// rotation it was restarted for.
    #[arg(long, env = "TOOKEN_SIDECAR_TOLERANCE", default_value = DEFAULT_TOLERANCE, value_parser = parse_duration)]
    pub tolerance: Duration,
    /// How many handled event ids are remembered to reject repeats.
    #[arg(long, env = "TOOKEN_SIDECAR_REPLAY_CAPACITY", default_value_t = 10_000)]
    pub replay_capacity: usize,
    /// How long one restart (receiver) or refresh (volume) waits, after the delivery was
    /// answered, for the Secret to hold the rotated token. A restart not done by then stays
    /// pending on its workloads and is tried again.
    #[arg(long, env = "TOOKEN_SIDECAR_SECRET_WAIT", default_value = "2m", value_parser = parse_duration)]
    pub secret_wait: Duration,
}

impl WebhookArgs {
    /// The signing secrets, or a startup error naming the variable when there are none.
    pub fn required_secrets(&self) -> anyhow::Result<Vec<Vec<u8>>> {
        let secrets = self.secrets();
        anyhow::ensure!(
            !secrets.is_empty(),
            "TOOKEN_WEBHOOK_SECRET (or --webhook-secret) is required: the signing secret(s) of \
             the Tooken webhook endpoint, comma-separated"
        );
        Ok(secrets)
    }

    /// The non-empty signing secrets.
    pub fn secrets(&self) -> Vec<Vec<u8>> {
        self.webhook_secrets
            .iter()
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
            .map(|s| s.as_bytes().to_vec())
            .collect()
    }
}

#[derive(Debug, Clone, Args)]
pub struct ReceiverArgs {
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// Only act in this namespace (a Role suffices); all namespaces when unset (a ClusterRole).
    #[arg(long, env = "TOOKEN_SIDECAR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Rotations of one token arriving within this window are handled once.
    #[arg(long, env = "TOOKEN_SIDECAR_COALESCE_WINDOW", default_value = "2s", value_parser = parse_duration)]
    pub coalesce_window: Duration,
    /// The longest a delivery waits for its restart to be recorded on the workloads; past it
    /// the answer is 503 with `Retry-After`. Below the sender's 10 s per-attempt timeout.
    #[arg(long, env = "TOOKEN_SIDECAR_ACK_WITHIN", default_value = "5s", value_parser = parse_duration)]
    pub ack_within: Duration,
}

#[derive(Debug, Clone, Args)]
pub struct VolumeArgs {
    /// Serves a local `POST /webhooks/tooken` when signing secrets are set, to refresh at once.
    #[command(flatten)]
    pub webhook: WebhookArgs,
    /// The Secret holding the token (written by the operator).
    #[arg(long, env = "TOOKEN_SIDECAR_SECRET")]
    pub secret_name: String,
    /// The Secret's namespace; the pod's own namespace when unset.
    #[arg(long, env = "TOOKEN_SIDECAR_NAMESPACE")]
    pub namespace: Option<String>,
    /// The key in the Secret's data (the TookenToken's `spec.secret.key`).
    #[arg(long, env = "TOOKEN_SIDECAR_KEY", default_value = "token")]
    pub key: String,
    /// The shared `emptyDir` mount to keep the file in.
    #[arg(long, env = "TOOKEN_SIDECAR_DIR")]
    pub dir: PathBuf,
    /// The file name inside `--dir`; the key when unset.
    #[arg(long, env = "TOOKEN_SIDECAR_FILE")]
    pub file_name: Option<String>,
    /// Mode of the token file, in octal. 0440 lets an app in the pod's `fsGroup` read it.
    #[arg(long, env = "TOOKEN_SIDECAR_FILE_MODE", default_value = "0440", value_parser = parse_mode)]
    pub file_mode: u32,
    /// POST here (empty body) after each new token is in place.
    #[arg(long, env = "TOOKEN_SIDECAR_NOTIFY_URL")]
    pub notify_url: Option<String>,
    /// Send this signal (e.g. HUP) to `--notify-process` after each new token is in place.
    /// Needs `shareProcessNamespace: true` on the pod.
    #[arg(long, env = "TOOKEN_SIDECAR_NOTIFY_SIGNAL", requires = "notify_process", value_parser = parse_signal)]
    pub notify_signal: Option<i32>,
    /// The process name (as in /proc/<pid>/comm) to signal.
    #[arg(
        long,
        env = "TOOKEN_SIDECAR_NOTIFY_PROCESS",
        requires = "notify_signal"
    )]
    pub notify_process: Option<String>,
}

impl VolumeArgs {
    pub fn file_name(&self) -> &str {
        self.file_name.as_deref().unwrap_or(&self.key)
    }
}

/// `5m`, `90s`, `500ms`, `1h 30m` or ISO 8601 (`PT5M`).
/// The default webhook tolerance: longer than Tooken's retries of one delivery.
pub const DEFAULT_TOLERANCE: &str = "72h";

pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let signed: jiff::SignedDuration = text
        .parse()
        .map_err(|err| format!("`{text}` is not a duration like 5m or 30s: {err}"))?;
    Duration::try_from(signed).map_err(|_| format!("`{text}` must not be negative"))
}

fn parse_mode(text: &str) -> Result<u32, String> {
    let mode = u32::from_str_radix(text.trim_start_matches("0o"), 8)
        .map_err(|_| format!("`{text}` is not an octal file mode like 0440"))?;
    if mode & !0o777 != 0 {
        return Err(format!("`{text}` has bits beyond 0777"));
    }
    Ok(mode)
}

fn parse_signal(text: &str) -> Result<i32, String> {
    let name = text.trim_start_matches("SIG").to_ascii_uppercase();
    Ok(match name.as_str() {
        "HUP" => libc::SIGHUP,
        "INT" => libc::SIGINT,
        "TERM" => libc::SIGTERM,
        "USR1" => libc::SIGUSR1,
        "USR2" => libc::SIGUSR2,
        _ => return Err(format!("`{text}` is not one of HUP, INT, TERM, USR1, USR2")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("tooken-sidecar").chain(args.iter().copied()))
    }

    #[test]
    fn several_webhook_secrets_come_from_a_list_or_repeated_flags() {
        let Mode::Receiver(args) = parse(&[
            "receiver",
            "--webhook-secret",
            "a,b",
            "--webhook-secret",
            "c",
        ])
        .unwrap()
        .mode
        else {
            panic!("receiver mode expected")
        };
        assert_eq!(
            args.webhook.required_secrets().unwrap(),
            vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
        );
        assert_eq!(args.webhook.tolerance, Duration::from_secs(72 * 3600));
        assert_eq!(args.coalesce_window, Duration::from_secs(2));
    }

    #[test]
    fn a_missing_webhook_secret_is_a_clear_startup_error() {
        let Mode::Receiver(args) = parse(&["receiver", "--webhook-secret", " "]).unwrap().mode
        else {
            panic!("receiver mode expected")
        };
        let err = args.webhook.required_secrets().unwrap_err().to_string();
        assert!(err.contains("TOOKEN_WEBHOOK_SECRET"), "{err}");
    }

    #[test]
    fn volume_mode_requires_a_secret_and_a_directory() {
        let err = parse(&["volume", "--dir", "/x"]).unwrap_err().to_string();
        assert!(err.contains("--secret-name"), "{err}");
        let Mode::Volume(args) = parse(&[
            "volume",
            "--secret-name",
            "s",
            "--dir",
            "/x",
            "--file-mode",
            "0400",
        ])
        .unwrap()
        .mode
        else {
            panic!("volume mode expected")
        };
        assert_eq!(args.file_mode, 0o400);
        assert_eq!(args.file_name(), "token");
        assert!(
            parse(&[
                "volume",
                "--secret-name",
                "s",
                "--dir",
                "/x",
                "--notify-signal",
                "HUP"
            ])
            .is_err()
        );
    }

    #[test]
    fn durations_and_modes_are_parsed_strictly() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5s").is_err());
        assert!(parse_mode("0440").is_ok());
        assert!(parse_mode("0999").is_err());
        assert!(parse_mode("7777").is_err());
        assert_eq!(parse_signal("SIGUSR1"), Ok(libc::SIGUSR1));
    }
}
