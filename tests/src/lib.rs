//! Helpers for the end-to-end tests: find the cluster, find the real binaries, run them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The kubeconfig of the cluster to test against, or `None` after printing why the test is
/// skipped. These tests never pass silently: without a cluster they say so.
pub fn kubeconfig(test: &str) -> Option<PathBuf> {
    match std::env::var_os("TOOKEN_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            eprintln!("SKIPPED {test}: TOOKEN_E2E_KUBECONFIG is not set, so no Kubernetes cluster was used");
            None
        }
    }
}

/// A kube client for the cluster in `kubeconfig`.
pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::config::Kubeconfig::read_from(kubeconfig)?;
    let options = kube::config::KubeConfigOptions::default();
    let config = kube::Config::from_custom_kubeconfig(config, &options).await?;
    Ok(kube::Client::try_from(config)?)
}

/// The path of a workspace binary (`tooken-server`, `tooken-operator`, `tooken-sidecar`),
/// built by `cargo test --workspace` next to this test executable.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/<test> -> target/debug/<name>
    let dir = exe.parent().and_then(|deps| deps.parent()).expect("target directory");
    let path = dir.join(name);
    assert!(path.exists(), "{} is missing: run `cargo build --workspace` first", path.display());
    path
}

/// A child process killed when dropped, so a failing test leaves nothing running.
pub struct Running(pub Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `binary` with `args` and `envs`, its output inherited for debugging.
pub fn spawn(binary: &str, args: &[&str], envs: &[(&str, String)]) -> Running {
    let mut command = Command::new(self::binary(binary));
    command.args(args).stdout(Stdio::inherit()).stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    Running(command.spawn().unwrap_or_else(|err| panic!("start {binary}: {err}")))
}

/// A unique, DNS-safe name for a test's namespace.
pub fn unique_namespace(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}
