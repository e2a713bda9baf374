//! Helpers for the end-to-end tests: find the cluster, find the real binaries, run them.

pub mod rotation;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The kubeconfig of the cluster to test against, or `None` after printing why the test is
/// skipped. These tests never pass silently: without a cluster they say so, and under `CI`
/// (where `.ci/run` starts the cluster) they fail.
pub fn kubeconfig(test: &str) -> Option<PathBuf> {
    match std::env::var_os("TOOKEN_E2E_KUBECONFIG") {
        Some(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var_os("CI").is_some() => {
            panic!(
                "{test}: TOOKEN_E2E_KUBECONFIG is not set under CI, where no cluster test may skip"
            )
        }
        _ => {
            // Straight to stderr: the test harness hides eprintln! output of passing tests.
            use std::io::Write;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: TOOKEN_E2E_KUBECONFIG is not set, so no Kubernetes cluster was used"
            );
            None
        }
    }
}

/// The fenced code blocks of one `## ` section of README.md, as (language, body), for tests
/// that run what the README shows.
pub fn readme_blocks(section: &str) -> Vec<(String, String)> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme
        .find(&format!("\n## {section}\n"))
        .unwrap_or_else(|| panic!("README has no section {section}"));
    let rest = &readme[start + 1..];
    let body = &rest[..rest[3..].find("\n## ").map_or(rest.len(), |end| end + 3)];
    let mut blocks = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        if let Some(language) = line.strip_prefix("```") {
            let code: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((language.to_owned(), code.join("\n") + "\n"));
        }
    }
    blocks
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
/// built by `cargo test --workspace` or `cargo build --workspace` into the same profile
/// directory as the running executable: a test (`target/debug/deps/<test>`) or one of this
/// crate's own binaries (`target/debug/<bin>`).
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("executable path");
    let dir = exe.parent().expect("executable directory");
    let profile = if dir.ends_with("deps") {
        dir.parent().expect("profile directory")
    } else {
        dir
    };
    let path = profile.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first",
        path.display()
    );
    path
}

/// A command-line tool of the test control plane (`kubectl`, `helm`): the pinned build that
/// `tests/cluster/build` made, else whatever `PATH` finds.
pub fn cluster_tool(name: &str) -> PathBuf {
    let home = std::env::var_os("TOOKEN_CLUSTER_HOME")
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/tooken-cluster"))
        });
    let built = home
        .map(|h| h.join("bin").join(name))
        .filter(|p| p.exists());
    built.unwrap_or_else(|| PathBuf::from(name))
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
    command
        .args(args)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit());
    for (key, value) in envs {
        command.env(key, value);
    }
    Running(
        command
            .spawn()
            .unwrap_or_else(|err| panic!("start {binary}: {err}")),
    )
}

/// `tooken-operator` watching only `namespace` (its Lease there too), on the default
/// connection `base_url`/`api_key`, with `extra` environment.
pub fn spawn_operator(
    kubeconfig: &std::path::Path,
    namespace: &str,
    base_url: &str,
    api_key: &str,
    extra: &[(&str, String)],
) -> Running {
    let mut envs = vec![
        ("KUBECONFIG", kubeconfig.display().to_string()),
        ("TOOKEN_API_URL", base_url.to_owned()),
        ("TOOKEN_API_KEY", api_key.to_owned()),
    ];
    envs.extend(extra.iter().cloned());
    spawn(
        "tooken-operator",
        &[
            "--namespace",
            namespace,
            "--lease-namespace",
            namespace,
            "--listen",
            "127.0.0.1:0",
        ],
        &envs,
    )
}

/// Waits until the Deployment `owner` has at least `count` ReplicaSets (one per pod template
/// it has had), and returns how many.
pub async fn pod_templates(
    replica_sets: &kube::Api<k8s_openapi::api::apps::v1::ReplicaSet>,
    owner: &str,
    count: usize,
) -> usize {
    use kube::ResourceExt;
    eventually(
        &format!("{count} ReplicaSets of {owner}"),
        std::time::Duration::from_secs(60),
        || async {
            let owned = replica_sets
                .list(&Default::default())
                .await
                .ok()?
                .items
                .iter()
                .filter(|rs| rs.owner_references().iter().any(|o| o.name == owner))
                .count();
            (owned >= count).then_some(owned)
        },
    )
    .await
}

/// The pod template's `kubectl.kubernetes.io/restartedAt`: set by each restart.
pub fn restarted_at(deployment: &k8s_openapi::api::apps::v1::Deployment) -> Option<String> {
    deployment
        .spec
        .as_ref()?
        .template
        .metadata
        .as_ref()?
        .annotations
        .as_ref()?
        .get("kubectl.kubernetes.io/restartedAt")
        .cloned()
}

/// A unique, DNS-safe name for a test's namespace.
pub fn unique_namespace(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .subsec_nanos();
    format!("{prefix}-{}-{nanos:x}", std::process::id())
}

/// Waits until `check` returns `Some`, polling every 500 ms, or fails after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

/// A free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs `tooken-server` on a fresh SQLite file and bootstraps a workspace; returns the running
/// server, its base URL and the team API key.
pub async fn start_api_server(extra_env: &[(&str, String)]) -> (Running, String, String) {
    let dir = std::env::temp_dir().join(unique_namespace("tooken-e2e"));
    std::fs::create_dir_all(&dir).unwrap();
    let database = format!("sqlite://{}", dir.join("tooken.db").display());
    let output = Command::new(binary("tooken-server"))
        .args(["bootstrap", "--workspace", "e2e"])
        .env("DATABASE_URL", &database)
        .output()
        .expect("bootstrap runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let api_key = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    let port = free_port();
    let mut envs = vec![
        ("DATABASE_URL", database),
        ("TOOKEN_LISTEN", format!("127.0.0.1:{port}")),
        // The sidecars these tests run listen on loopback, which webhooks reach only if allowed.
        (
            "TOOKEN_WEBHOOK_ALLOWED_TARGETS",
            "127.0.0.0/8,::1".to_owned(),
        ),
    ];
    envs.extend(extra_env.iter().cloned());
    let server = spawn("tooken-server", &[], &envs);
    let base_url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    eventually(
        "tooken-server to be ready",
        std::time::Duration::from_secs(20),
        || {
            let http = http.clone();
            let url = format!("{base_url}/readyz");
            async move {
                http.get(url)
                    .send()
                    .await
                    .ok()
                    .filter(|r| r.status().is_success())
            }
        },
    )
    .await;
    (server, base_url, api_key)
}

/// Registers a webhook endpoint for `token.rotated` at a sidecar listening on `port` of
/// 127.0.0.1; returns its signing secret.
pub async fn register_sidecar_webhook(base_url: &str, api_key: &str, port: u16) -> String {
    let (_, secret) = register_sidecar_webhook_with_id(base_url, api_key, port).await;
    secret
}

/// [`register_sidecar_webhook`], also returning the webhook's id: `(id, secret)`.
pub async fn register_sidecar_webhook_with_id(
    base_url: &str,
    api_key: &str,
    port: u16,
) -> (String, String) {
    let webhook: serde_json::Value = reqwest::Client::new()
        .post(format!("{base_url}/v1/webhooks"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({
            "url": format!("http://127.0.0.1:{port}/webhooks/tooken"),
            "event_types": ["token.rotated"],
        }))
        .send()
        .await
        .expect("register the webhook")
        .json()
        .await
        .expect("the webhook answer");
    let field = |name: &str| webhook[name].as_str().expect("webhook created").to_owned();
    (field("id"), field("secret"))
}

/// Deletes `name` from a drop guard: best effort, on a thread of its own, so it neither needs
/// nor blocks the test's runtime.
pub fn delete_in_background<K>(api: kube::Api<K>, name: String)
where
    K: Clone + k8s_openapi::serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = runtime.block_on(api.delete(&name, &Default::default()));
    })
    .join()
    .ok();
}

/// Applies the CRDs the operator needs (TookenToken, TookenPolicy) and waits until the API
/// server serves them.
pub async fn install_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::CustomResourceExt;
    use kube::api::{Patch, PatchParams};
    let crds: kube::Api<CustomResourceDefinition> = kube::Api::all(client.clone());
    for crd in [
        tooken_operator::crd::TookenToken::crd(),
        tooken_operator::policy::TookenPolicy::crd(),
    ] {
        let name = crd.metadata.name.clone().expect("a CRD name");
        crds.patch(
            &name,
            &PatchParams::apply("tooken-e2e").force(),
            &Patch::Apply(&crd),
        )
        .await
        .expect("apply the CRD");
        eventually(
            "the CRD to be established",
            std::time::Duration::from_secs(30),
            || {
                let crds = crds.clone();
                let name = name.clone();
                async move {
                    let crd = crds.get(&name).await.ok()?;
                    crd.status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True")
                        .then_some(())
                }
            },
        )
        .await;
    }
}

/// Creates a namespace; it is deleted when the guard drops.
pub async fn temp_namespace(client: &kube::Client, prefix: &str) -> TempNamespace {
    use k8s_openapi::api::core::v1::Namespace;
    let name = unique_namespace(prefix);
    let namespaces: kube::Api<Namespace> = kube::Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
    namespaces
        .create(&Default::default(), &namespace)
        .await
        .expect("create a test namespace");
    TempNamespace {
        name,
        api: namespaces,
    }
}

pub struct TempNamespace {
    pub name: String,
    api: kube::Api<k8s_openapi::api::core::v1::Namespace>,
}

impl Drop for TempNamespace {
    fn drop(&mut self) {
        delete_in_background(self.api.clone(), self.name.clone());
    }
}

pub mod chart;

/// Whether a TookenToken's `Ready` condition is `True`.
pub fn is_ready(tt: &tooken_operator::crd::TookenToken) -> bool {
    tt.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    })
}

/// Waits until the TookenToken `name` is Ready, and returns the token id its status names.
pub async fn ready_token_id(
    tokens: &kube::Api<tooken_operator::crd::TookenToken>,
    name: &str,
) -> String {
    eventually(
        &format!("TookenToken {name} to be Ready"),
        std::time::Duration::from_secs(90),
        || async move {
            let tt = tokens.get(name).await.ok()?;
            if is_ready(&tt) {
                tt.status?.token_id
            } else {
                None
            }
        },
    )
    .await
}

/// The value of `key` in a Secret's data, as text.
pub fn secret_value(secret: &k8s_openapi::api::core::v1::Secret, key: &str) -> Option<String> {
    String::from_utf8(secret.data.as_ref()?.get(key)?.0.clone()).ok()
}

/// `POST /v1/tokens/verify` of `token` with `api_key`: the verdict.
pub async fn verify_token(base_url: &str, api_key: &str, token: &str) -> serde_json::Value {
    reqwest::Client::new()
        .post(format!("{base_url}/v1/tokens/verify"))
        .bearer_auth(api_key)
        .json(&serde_json::json!({"token": token}))
        .send()
        .await
        .expect("verify request")
        .json()
        .await
        .expect("verify answer")
}
