//! README.md's "Kubernetes: the operator" section, run as written against the cluster named by
//! `TOOKEN_E2E_KUBECONFIG`. The commands and the manifest are read from the README itself, so
//! the README cannot drift from what is tested. Two substitutions only: the API server runs on
//! a free port rather than 8080, and `cargo run -p X` runs the binary cargo already built.
//!
//! The README's operator watches every namespace and its example lives in `apps`, so this file
//! holds a single test: no other test of this binary runs beside it.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tooken_e2e::{
    Running, binary, client, cluster_tool, eventually, free_port, kubeconfig, readme_blocks, spawn,
    start_api_server,
};
use tooken_operator::crd::TookenToken;

const WAIT: Duration = Duration::from_secs(90);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Runs one README line in bash, with the cluster's tools first on PATH, and returns stdout.
fn sh(line: &str, env: &Shell) -> String {
    let output = env.command(line).output().expect("bash runs");
    assert!(
        output.status.success(),
        "`{line}` failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Shell {
    dir: PathBuf,
    kubeconfig: PathBuf,
    api_key: String,
    base_url: String,
}

impl Shell {
    fn command(&self, line: &str) -> Command {
        let line = line.replace("http://127.0.0.1:8080", &self.base_url);
        let line = match line.split_once("cargo run -p ") {
            Some((env, name)) => format!("{env}exec {}", binary(name.trim()).display()),
            None => line,
        };
        let tools = cluster_tool("kubectl");
        let tools = tools.parent().map(Path::to_path_buf).unwrap_or_default();
        let path = format!(
            "{}:{}",
            tools.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", &line])
            .current_dir(&self.dir)
            .env("PATH", path)
            .env("KUBECONFIG", &self.kubeconfig)
            .env("TOOKEN_API_KEY", &self.api_key);
        command
    }
}

async fn verify(base_url: &str, api_key: &str, token: &str) -> Value {
    tooken_e2e::verify_token(base_url, api_key, token).await
}

fn token_of(secret: &Secret) -> Option<String> {
    tooken_e2e::secret_value(secret, "token")
}

/// The Deployment's ReplicaSets once it has rolled out `count` of them and the newest is Ready.
async fn rolled_out(client: &kube::Client, count: usize) -> Vec<ReplicaSet> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "apps");
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "apps");
    eventually(
        &format!("{count} ReplicaSet(s) of backend, rolled out and Ready"),
        WAIT,
        || {
            let (deployments, replica_sets) = (deployments.clone(), replica_sets.clone());
            async move {
                let deployment = deployments.get("backend").await.ok()?;
                let status = deployment.status.as_ref()?;
                let settled = status.observed_generation == deployment.metadata.generation
                    && status.updated_replicas == Some(1)
                    && status.ready_replicas == Some(1)
                    && status.replicas == Some(1);
                let sets = replica_sets
                    .list(&ListParams::default().labels("app=backend"))
                    .await
                    .ok()?
                    .items;
                (settled && sets.len() == count).then_some(sets)
            }
        },
    )
    .await
}

async fn namespace_gone(namespaces: &Api<Namespace>) {
    let _ = namespaces.delete("apps", &DeleteParams::default()).await;
    eventually("namespace apps to be gone", WAIT, || {
        let namespaces = namespaces.clone();
        async move {
            namespaces
                .get_opt("apps")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_operator_section_works_as_written() {
    let Some(kubeconfig) = kubeconfig("the_readme_operator_section_works_as_written") else {
        return;
    };
    let client = client(&kubeconfig).await.expect("connect to the cluster");
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespace_gone(&namespaces).await; // a leftover from an interrupted run

    let blocks = readme_blocks("Kubernetes: the operator");
    let [
        (_, operator),
        (yaml_language, manifest),
        (_, apply),
        (_, columns),
        ..,
    ] = &blocks[..]
    else {
        panic!("the README's operator section lost a block: {blocks:?}")
    };
    assert_eq!(yaml_language, "yaml");

    let (_server, base_url, api_key) =
        start_api_server(&[("TOOKEN_WEBHOOK_RETRY_BASE_MS", "200".into())]).await;
    let dir = std::env::temp_dir().join(tooken_e2e::unique_namespace("tooken-readme"));
    std::fs::create_dir_all(&dir).unwrap();
    let shell = Shell {
        dir: repo(),
        kubeconfig: kubeconfig.clone(),
        api_key: api_key.clone(),
        base_url: base_url.clone(),
    };

    // "Install the CRD, then run the operator."
    let mut operator_lines = operator.lines();
    sh(operator_lines.next().unwrap(), &shell);
    let run_operator = operator_lines.next().unwrap();
    assert!(run_operator.contains("cargo run -p tooken-operator"));
    let _operator = Running(shell.command(run_operator).spawn().unwrap());

    // The sidecar receiver, which rolls `restartOnRotation` workloads (see its own README).
    let sidecar_port = free_port();
    let signing_secret =
        tooken_e2e::register_sidecar_webhook(&base_url, &api_key, sidecar_port).await;
    let _sidecar = spawn(
        "tooken-sidecar",
        &["receiver"],
        &[
            ("KUBECONFIG", kubeconfig.display().to_string()),
            ("TOOKEN_WEBHOOK_SECRET", signing_secret),
            ("TOOKEN_SIDECAR_LISTEN", format!("127.0.0.1:{sidecar_port}")),
        ],
    );

    // "Then describe a token, for example in backend.yaml", and the commands after it.
    std::fs::write(dir.join("backend.yaml"), manifest).unwrap();
    let shell = Shell { dir, ..shell };
    let mut last = String::new();
    for line in apply.lines() {
        last = sh(line, &shell);
    }
    let header: Vec<&str> = last.lines().next().unwrap().split_whitespace().collect();
    let documented: Vec<&str> = columns.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, documented, "`kubectl get tookentokens` columns");

    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), "apps");
    let token_id = eventually("backend to be Ready", WAIT, || {
        let tokens = tokens.clone();
        async move {
            let status = tokens.get("backend").await.ok()?.status?;
            let ready = status
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True");
            ready.then_some(status.token_id?)
        }
    })
    .await;
    let row = sh("kubectl -n apps get tookentokens", &shell);
    let row: Vec<&str> = row.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(row[..3], ["backend", token_id.as_str(), "backend-token"]);
    assert_eq!(row[4], "True", "{row:?}");

    // The Secret the manifest names, with its labels, holding a token that verifies.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "apps");
    let secret = secrets.get("backend-token").await.unwrap();
    assert_eq!(secret.labels()["team"], "payments");
    let first = token_of(&secret).unwrap();
    let verdict = verify(&base_url, &api_key, &first).await;
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert_eq!(verdict["token_id"], token_id.as_str());
    rolled_out(&client, 1).await;

    // "A deleted Secret ... gets a freshly rotated secret", and the sidecar rolls backend:
    // a new ReplicaSet, which kwok brings to Ready.
    secrets
        .delete("backend-token", &DeleteParams::default())
        .await
        .unwrap();
    let repaired = eventually("the deleted Secret to be repaired", WAIT, || {
        let secrets = secrets.clone();
        async move { token_of(&secrets.get("backend-token").await.ok()?) }
    })
    .await;
    assert_ne!(repaired, first);
    assert_eq!(verify(&base_url, &api_key, &repaired).await["valid"], true);
    rolled_out(&client, 2).await;

    // "... or one edited by hand".
    let edited = json!({"stringData": {"token": "tok_live_edited_by_hand"}});
    secrets
        .patch(
            "backend-token",
            &PatchParams::default(),
            &Patch::Merge(&edited),
        )
        .await
        .unwrap();
    let healed = eventually("the edited Secret to be repaired", WAIT, || {
        let secrets = secrets.clone();
        let repaired = repaired.clone();
        async move {
            let token = token_of(&secrets.get("backend-token").await.ok()?)?;
            (token != "tok_live_edited_by_hand" && token != repaired).then_some(token)
        }
    })
    .await;
    assert_eq!(verify(&base_url, &api_key, &healed).await["valid"], true);
    rolled_out(&client, 3).await;

    // "Deletion revokes the token ...; the Secret is then garbage-collected."
    tokens
        .delete("backend", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the Secret to be garbage-collected", WAIT, || {
        let secrets = secrets.clone();
        async move {
            secrets
                .get_opt("backend-token")
                .await
                .ok()?
                .is_none()
                .then_some(())
        }
    })
    .await;
    assert_eq!(
        verify(&base_url, &api_key, &healed).await["reason"],
        "revoked"
    );
    namespace_gone(&namespaces).await;
}
