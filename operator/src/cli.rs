//! Command-line flags, each with an environment fallback.

use clap::Parser;
use std::net::SocketAddr;

#[derive(Debug, Parser)]
#[command(
    name = "tooken-operator",
    version,
    about = "Turns TookenToken resources into tokens kept in Secrets"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub setup: Option<Setup>,
    /// Watch only this namespace (all namespaces when absent).
    #[arg(long, env = "TOOKEN_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// TookenTokens reconciled at once.
    #[arg(long, env = "TOOKEN_OPERATOR_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// The Tooken API for resources that name no connection Secret.
    #[arg(long, env = "TOOKEN_API_URL")]
    pub api_url: Option<String>,
    /// The API key for `--api-url`.
    #[arg(long, env = "TOOKEN_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// How often the default connection's audit log is read for tokens rotated, revoked or
    /// expired outside the operator.
    #[arg(long, env = "TOOKEN_OPERATOR_CHANGE_POLL_SECONDS", default_value_t = 2)]
    pub change_poll_seconds: u64,
    /// Where `/healthz`, `/readyz` and `/metrics` listen.
    #[arg(long, env = "TOOKEN_OPERATOR_LISTEN", default_value = "0.0.0.0:8081")]
    pub listen: SocketAddr,
    /// Hold a Lease so only one replica acts; turn off only for a single local run.
    #[arg(long, env = "TOOKEN_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    #[arg(long, env = "TOOKEN_LEASE_NAME", default_value = "tooken-operator")]
    pub lease_name: String,
    /// The namespace of the Lease (in a pod: its own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// This replica's name in the Lease (in a pod: its name).
    #[arg(long, env = "POD_NAME")]
    pub identity: Option<String>,
    #[arg(long, env = "TOOKEN_LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// The installer step for the Helm chart's pre-install Job.
#[derive(Debug, clap::Subcommand)]
pub enum Setup {
    /// Create the Secret holding the API URL, a new API key and a webhook signing secret,
    /// unless it exists.
    SetupCredentials {
        #[arg(long, env = "POD_NAMESPACE")]
        namespace: String,
        #[arg(long)]
        secret: String,
        /// The URL the operator and installer reach the API at.
        #[arg(long)]
        api_url: String,
    },
}

impl Cli {
    /// The operator-wide connection, if both halves are given; one alone is a mistake.
    pub fn default_connection(&self) -> anyhow::Result<Option<crate::cluster::ApiConnection>> {
        match (&self.api_url, &self.api_key) {
            (Some(url), Some(api_key)) => Ok(Some(crate::cluster::ApiConnection {
                url: url.clone(),
                api_key: api_key.clone(),
            })),
            (None, None) => Ok(None),
            (Some(_), None) => anyhow::bail!("TOOKEN_API_URL is set but TOOKEN_API_KEY is missing"),
            (None, Some(_)) => anyhow::bail!("TOOKEN_API_KEY is set but TOOKEN_API_URL is missing"),
        }
    }

    /// Who takes part in leader election, and on which Lease; `None` when it is turned off.
    pub fn elector(&self, client: &kube::Client) -> Option<crate::leader::Elector> {
        self.leader_election.then(|| crate::leader::Elector {
            api: kube::Api::namespaced(client.clone(), &self.lease_namespace),
            name: self.lease_name.clone(),
            identity: self
                .identity
                .clone()
                .unwrap_or_else(|| format!("tooken-operator-{}", std::process::id())),
            lease_seconds: 15,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn flags_are_well_formed_and_half_a_connection_is_refused() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from(["tooken-operator", "--api-url", "http://tooken"]).unwrap();
        assert!(
            cli.default_connection()
                .unwrap_err()
                .to_string()
                .contains("TOOKEN_API_KEY")
        );
        let cli = Cli::try_parse_from(["tooken-operator", "--leader-election", "false"]).unwrap();
        assert!(!cli.leader_election);
    }
}
