//! The Helm chart on the test cluster: `helm` itself, a release that uninstalls itself when a
//! test fails, the volume the chart's SQLite claim binds to, kubeconfigs for ServiceAccounts
//! (from TokenRequests), and [`Kubelet`], a stand-in for the container runtime kwok does not have.

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{
    Container, PersistentVolume, Pod, Secret, Service, ServiceAccount,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::{Running, free_port, unique_namespace};

/// The chart in this repository.
pub const CHART: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../charts/tooken");

/// Runs `helm` (the control plane's build, see [`crate::cluster_tool`]) against the cluster
/// and returns its stdout; panics with its output when it fails. Blocking: helm waits.
pub fn helm(kubeconfig: &Path, args: &[&str]) -> String {
    let output = Command::new(crate::cluster_tool("helm"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("run helm: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        // What helm was waiting for, to tell a slow cluster from a broken chart.
        let namespace = args
            .iter()
            .position(|a| *a == "--namespace")
            .and_then(|i| args.get(i + 1))
            .unwrap_or(&"default");
        let state = Command::new(crate::cluster_tool("kubectl"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .args([
                "get",
                "pods,jobs,deployments,pvc,events",
                "--namespace",
                namespace,
            ])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!(
            "helm {} failed: {}\n{stdout}\nnamespace {namespace}:\n{state}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
}

/// `helm` on a blocking thread, so the test's other tasks (the [`Kubelet`]) keep running.
pub async fn helm_async(kubeconfig: &Path, args: &[&str]) -> String {
    let kubeconfig = kubeconfig.to_owned();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        helm(&kubeconfig, &args)
    })
    .await
    .expect("helm thread")
}

/// A Helm release of the chart, with a unique name. Dropping it uninstalls it (best effort),
/// so a failed test leaves no cluster-wide RBAC behind.
pub struct Release {
    pub name: String,
    pub namespace: String,
    kubeconfig: PathBuf,
    chart: PathBuf,
}

/// The chart to install on this cluster. A control plane built without version stamping
/// reports `gitVersion: v0.0.0-master`, which no `kubeVersion` constraint accepts; there the
/// constraint (`>=1.28`) is checked against the server's major and minor version instead, and
/// a copy of the chart without it is installed. Everything else is the chart as committed.
async fn chart_for(client: &kube::Client) -> PathBuf {
    let version = client.apiserver_version().await.expect("server version");
    if !version.git_version.starts_with("v0.0.0") {
        return PathBuf::from(CHART);
    }
    let minor: u32 = version
        .minor
        .trim_end_matches('+')
        .parse()
        .expect("minor version");
    assert!(
        version.major == "1" && minor >= 28,
        "the chart needs Kubernetes >= 1.28: {version:?}"
    );
    let copy = std::env::temp_dir().join(unique_namespace("tooken-chart"));
    let status = Command::new("cp")
        .arg("-r")
        .arg(CHART)
        .arg(&copy)
        .status()
        .expect("cp");
    assert!(status.success(), "copy the chart");
    let manifest = copy.join("Chart.yaml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    assert!(text.contains("\nkubeVersion: \">=1.28.0-0\"\n"), "{text}");
    let text: String = text
        .lines()
        .filter(|line| !line.starts_with("kubeVersion:"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(&manifest, text).unwrap();
    copy
}

impl Release {
    pub async fn new(client: &kube::Client, kubeconfig: &Path, namespace: &str) -> Self {
        Release {
            name: unique_namespace("tk"),
            namespace: namespace.to_owned(),
            kubeconfig: kubeconfig.to_owned(),
            chart: chart_for(client).await,
        }
    }

    /// The chart's `tooken.fullname`: the prefix of every object it makes.
    pub fn fullname(&self) -> String {
        format!("{}-tooken", self.name)
    }

    /// `helm install --wait` with `extra` arguments (e.g. `--set`).
    pub async fn install(&self, extra: &[&str]) -> String {
        self.deploy("install", extra).await
    }

    /// `helm upgrade --wait` of the chart with `extra` arguments.
    pub async fn upgrade(&self, extra: &[&str]) -> String {
        self.deploy("upgrade", extra).await
    }

    /// `helm install` or `helm upgrade` of the chart, waiting for its pods.
    async fn deploy(&self, verb: &str, extra: &[&str]) -> String {
        // The admission policies are cluster-wide: bound to this release's namespace only, so
        // tests running beside it on the shared cluster are not checked by them.
        let own_namespace = format!(
            "admissionPolicy.namespaceSelector.matchLabels.kubernetes\\.io/metadata\\.name={}",
            self.namespace
        );
        let mut args = vec![
            verb,
            &self.name,
            self.chart.to_str().expect("UTF-8 path"),
            "--namespace",
            &self.namespace,
            "--wait",
            "--timeout",
            "5m",
            "--set",
            &own_namespace,
        ];
        args.extend_from_slice(extra);
        helm_async(&self.kubeconfig, &args).await
    }

    /// Any other helm command on this release, e.g. `["test"]`: the release name and
    /// namespace are added.
    pub async fn helm(&self, command: &[&str]) -> String {
        let mut args = command.to_vec();
        args.extend_from_slice(&[&self.name, "--namespace", &self.namespace]);
        helm_async(&self.kubeconfig, &args).await
    }
}

impl Drop for Release {
    fn drop(&mut self) {
        let _ = Command::new(crate::cluster_tool("helm"))
            .arg("--kubeconfig")
            .arg(&self.kubeconfig)
            .args(["uninstall", &self.name, "--namespace", &self.namespace])
            .args(["--ignore-not-found", "--wait", "--timeout", "2m"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// A PersistentVolume reserved for one claim, deleted when dropped. The test cluster has no
/// storage provisioner, and `helm install --wait` waits for the chart's claim to be bound.
pub struct ReservedVolume {
    pub name: String,
    api: Api<PersistentVolume>,
}

pub async fn reserve_volume(client: &kube::Client, namespace: &str, claim: &str) -> ReservedVolume {
    let api: Api<PersistentVolume> = Api::all(client.clone());
    let name = unique_namespace("tooken-pv");
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "1Gi"},
            "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain",
            "storageClassName": "",
            "hostPath": {"path": std::env::temp_dir().join(&name).display().to_string()},
            "claimRef": {"namespace": namespace, "name": claim}
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &volume)
        .await
        .expect("create a PersistentVolume");
    ReservedVolume { name, api }
}

impl Drop for ReservedVolume {
    fn drop(&mut self) {
        crate::delete_in_background(self.api.clone(), self.name.clone());
    }
}

/// Writes a kubeconfig that authenticates as ServiceAccount `namespace/account` with a token
/// from a TokenRequest, for the server and CA of `admin` (the test cluster's kubeconfig).
/// Not bound to a pod, so it outlives the pod it stands in for.
pub async fn service_account_kubeconfig(
    client: &kube::Client,
    admin: &Path,
    namespace: &str,
    account: &str,
) -> PathBuf {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: vec![],
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        ..Default::default()
    };
    let token = accounts
        .create_token_request(account, &PostParams::default(), &request)
        .await
        .unwrap_or_else(|err| panic!("TokenRequest for {namespace}/{account}: {err}"))
        .status
        .expect("TokenRequest status")
        .token;
    let config = kube::config::Kubeconfig::read_from(admin).expect("read the kubeconfig");
    let context = config
        .current_context
        .as_deref()
        .expect("a current context");
    let cluster_name = config
        .contexts
        .iter()
        .find(|c| c.name == context)
        .and_then(|c| c.context.as_ref())
        .map(|c| c.cluster.clone())
        .expect("the current context");
    let cluster = config
        .clusters
        .iter()
        .find(|c| c.name == cluster_name)
        .and_then(|c| c.cluster.clone())
        .expect("the current cluster");
    // JSON is YAML: kube and kubectl read it as a kubeconfig.
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "test", "cluster": cluster}],
        "users": [{"name": account, "user": {"token": token}}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": account, "namespace": namespace}}],
        "current-context": "test"
    });
    let path = std::env::temp_dir().join(format!(
        "{}-{account}.kubeconfig",
        unique_namespace("tooken-sa")
    ));
    std::fs::write(&path, serde_json::to_vec_pretty(&kubeconfig).unwrap()).unwrap();
    path
}

/// How one run-to-completion container ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub pod: String,
    pub container: String,
    pub success: bool,
    pub output: String,
}

/// A stand-in for the kubelet's container runtime in one namespace. kwok reports pods as
/// Running and Ready (and Job pods as Succeeded) but runs nothing, so this runs each
/// scheduled pod's containers as local processes, as a kubelet would:
///
/// - the program is the workspace binary the image is built from (`…/tooken-operator:tag` is
///   `tooken-operator`, with the container's `args`, as the image's entrypoint takes them);
///   other images (the `helm test` pod) run their `command` and `args` with the local shell;
/// - the environment is the container's only: values, Secret keys (waiting for the Secret, as
///   a kubelet does), `metadata.name` and `metadata.namespace`;
/// - a pod whose ServiceAccount token is mounted gets `KUBECONFIG` for that ServiceAccount
///   (a TokenRequest), so the chart's RBAC is what the process can do;
/// - Secret volumes are written to a local directory, claims are a directory per claim (kept
///   across pods, like the volume), and mount paths in environment values point there;
/// - listen addresses `0.0.0.0:<containerPort>` become a local port, the same one for as long
///   as a Service selects the pod, and `http://<service>.<namespace>.svc:<port>` addresses in
///   environment values and shell scripts are that local port. (setup-credentials' `--api-url`
///   is stored for pods, not dialled, so it stays as in the cluster.)
/// - long-running containers stop when their pod is deleted. Run-to-completion containers run
///   to the end even so: kwok may report a Job's pod Succeeded, and the Job be deleted, before
///   the local run is done. Their exits are kept ([`Kubelet::exits`]); the exit of a pod that
///   is not a Job's is reported in the pod's status, as kwok does not do that.
///
/// Security contexts, probes and resources are not emulated.
pub struct Kubelet {
    state: Arc<Mutex<State>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct State {
    /// Pods seen and started, by uid.
    started: HashSet<String>,
    /// Pods deleted, by uid.
    stopped: HashSet<String>,
    /// Long-running processes, by pod uid.
    running: HashMap<String, Vec<Running>>,
    /// Local ports of Service ports, by (service, port).
    ports: HashMap<(String, i32), u16>,
    exits: Vec<Exit>,
}

struct Context {
    /// Run containers (false: only keep pod readiness, see [`Kubelet::readiness_only`]).
    run: bool,
    client: kube::Client,
    admin: PathBuf,
    namespace: String,
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

impl Kubelet {
    /// Starts running the pods of `namespace`, authenticating TokenRequests with `admin`.
    pub fn start(client: &kube::Client, admin: &Path, namespace: &str) -> Self {
        Self::new(client, admin, namespace, true)
    }

    /// Only the kubelet's pod readiness, no containers: when kwok's node misses a heartbeat,
    /// the node controller marks its pods not Ready, and kwok never marks them Ready again
    /// (a kubelet would, once the node is back). For tests that run the programs themselves.
    pub fn readiness_only(client: &kube::Client, admin: &Path, namespace: &str) -> Self {
        Self::new(client, admin, namespace, false)
    }

    fn new(client: &kube::Client, admin: &Path, namespace: &str, run: bool) -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let root = std::env::temp_dir().join(unique_namespace("tooken-kubelet"));
        std::fs::create_dir_all(&root).unwrap();
        let ctx = Arc::new(Context {
            run,
            client: client.clone(),
            admin: admin.to_owned(),
            namespace: namespace.to_owned(),
            root,
            state: state.clone(),
        });
        let task = tokio::spawn(async move {
            use futures::StreamExt;
            let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
            let mut events = watcher(pods, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(event) = events.next().await {
                match event {
                    Ok(watcher::Event::Apply(pod) | watcher::Event::InitApply(pod)) => {
                        ctx.observe(pod)
                    }
                    Ok(watcher::Event::Delete(pod)) => ctx.stop(&pod),
                    Ok(_) => {}
                    Err(err) => eprintln!("kubelet stand-in: watch error: {err}"),
                }
            }
        });
        Kubelet { state, task }
    }

    /// The run-to-completion containers that ended so far.
    pub fn exits(&self) -> Vec<Exit> {
        self.state.lock().unwrap().exits.clone()
    }

    /// Long-running processes now running.
    pub fn running(&self) -> usize {
        self.state
            .lock()
            .unwrap()
            .running
            .values()
            .map(Vec::len)
            .sum()
    }

    /// The local address (`http://127.0.0.1:<port>`) of Service port `service:port`.
    pub fn service_url(&self, service: &str, port: i32) -> String {
        let mut state = self.state.lock().unwrap();
        let local = *state
            .ports
            .entry((service.to_owned(), port))
            .or_insert_with(free_port);
        format!("http://127.0.0.1:{local}")
    }
}

impl Drop for Kubelet {
    fn drop(&mut self) {
        self.task.abort();
        // Dropping the processes kills them.
        self.state.lock().unwrap().running.clear();
    }
}

impl Context {
    fn observe(self: &Arc<Self>, pod: Pod) {
        let uid = pod.uid().unwrap_or_default();
        let deleting = pod.metadata.deletion_timestamp.is_some();
        if deleting {
            self.stop(&pod);
        }
        // A Job's pod may be deleted (kwok completed it) before it is seen here: it still runs.
        let runs_to_completion = pod
            .spec
            .as_ref()
            .and_then(|s| s.restart_policy.as_deref())
            .is_some_and(|policy| policy != "Always");
        if deleting && !runs_to_completion {
            return;
        }
        if !deleting && needs_ready_again(&pod) {
            let ctx = self.clone();
            let name = pod.name_any();
            tokio::spawn(async move { ctx.ready_again(&name).await });
        }
        let scheduled = pod
            .spec
            .as_ref()
            .and_then(|s| s.node_name.as_ref())
            .is_some();
        if !self.run || !scheduled || !self.state.lock().unwrap().started.insert(uid) {
            return;
        }
        let ctx = self.clone();
        tokio::spawn(async move { ctx.run_pod(pod).await });
    }

    /// What the kubelet reports once its node is back: the running pod is Ready again.
    async fn ready_again(&self, pod: &str) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff::Timestamp::now());
        let condition =
            |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
        let patch =
            json!({"status": {"conditions": [condition("Ready"), condition("ContainersReady")]}});
        if let Err(err) = pods
            .patch_status(pod, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
        {
            eprintln!("kubelet stand-in: cannot mark {pod} Ready again: {err}");
        }
    }

    fn stop(&self, pod: &Pod) {
        let uid = pod.uid().unwrap_or_default();
        // Killed and reaped here, so the port is free before a replacement pod starts.
        let mut state = self.state.lock().unwrap();
        state.stopped.insert(uid.clone());
        state.running.remove(&uid);
    }

    async fn run_pod(self: Arc<Self>, pod: Pod) {
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let runs_to_completion = spec.restart_policy.as_deref().unwrap_or("Always") != "Always";
        let owned_by_job = pod
            .owner_references()
            .iter()
            .any(|owner| owner.kind == "Job");
        let kubeconfig = if spec.automount_service_account_token == Some(false) {
            None
        } else {
            let account = spec.service_account_name.as_deref().unwrap_or("default");
            Some(
                service_account_kubeconfig(&self.client, &self.admin, &self.namespace, account)
                    .await,
            )
        };
        let mut success = true;
        for container in &spec.containers {
            let command = match self.command(&pod, container, kubeconfig.as_deref()).await {
                Ok(command) => command,
                Err(why) => {
                    self.exited(&name, &container.name, false, why);
                    success = false;
                    continue;
                }
            };
            if runs_to_completion {
                let ok = self
                    .run_to_completion(&name, &container.name, command)
                    .await;
                success &= ok;
            } else {
                self.run_long(&pod, &container.name, command);
            }
        }
        if runs_to_completion && !owned_by_job {
            self.report_exit(&name, success).await;
        }
    }

    fn exited(&self, pod: &str, container: &str, success: bool, output: String) {
        if !success {
            eprintln!("kubelet stand-in: {pod}/{container} failed: {output}");
        }
        self.state.lock().unwrap().exits.push(Exit {
            pod: pod.to_owned(),
            container: container.to_owned(),
            success,
            output,
        });
    }

    async fn run_to_completion(&self, pod: &str, container: &str, mut command: Command) -> bool {
        let output = tokio::task::spawn_blocking(move || command.output())
            .await
            .expect("process thread");
        let (success, text) = match output {
            Ok(output) => (
                output.status.success(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ),
            ),
            Err(err) => (false, format!("cannot start: {err}")),
        };
        self.exited(pod, container, success, text);
        success
    }

    fn run_long(&self, pod: &Pod, container: &str, mut command: Command) {
        command.stdout(Stdio::inherit()).stderr(Stdio::inherit());
        match command.spawn() {
            Ok(child) => {
                let uid = pod.uid().unwrap_or_default();
                let mut state = self.state.lock().unwrap();
                // The pod may have gone while its Secrets were awaited.
                if !state.stopped.contains(&uid) {
                    state.running.entry(uid).or_default().push(Running(child));
                }
            }
            Err(err) => self.exited(
                &pod.name_any(),
                container,
                false,
                format!("cannot start: {err}"),
            ),
        }
    }

    /// What the kubelet reports when a pod's containers have ended: Succeeded or Failed.
    /// Only once kwok has reported it Running, so kwok does not overwrite it.
    async fn report_exit(&self, pod: &str, success: bool) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        for _ in 0..600 {
            match pods.get_opt(pod).await {
                Ok(Some(p))
                    if p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running") =>
                {
                    let phase = if success { "Succeeded" } else { "Failed" };
                    let patch = json!({"status": {"phase": phase}});
                    if let Err(err) = pods
                        .patch_status(pod, &PatchParams::default(), &Patch::Merge(&patch))
                        .await
                    {
                        eprintln!("kubelet stand-in: cannot report {pod} {phase}: {err}");
                    }
                    return;
                }
                Ok(None) => return,
                _ => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        eprintln!("kubelet stand-in: {pod} never became Running");
    }

    /// The local process for `container`, or why it cannot start.
    async fn command(
        &self,
        pod: &Pod,
        container: &Container,
        kubeconfig: Option<&Path>,
    ) -> Result<Command, String> {
        let image = container.image.as_deref().unwrap_or_default();
        let program = image
            .rsplit('/')
            .next()
            .and_then(|last| last.split(':').next())
            .unwrap_or_default();
        let workspace_binary = program.starts_with("tooken-");
        let local_ports = self.local_ports(pod, container).await?;
        let mounts = self.mounts(pod, container).await?;
        let rewrite = |value: &str| -> String {
            let mut value = value.to_owned();
            for (port, local) in &local_ports {
                if value == format!("0.0.0.0:{port}") {
                    value = format!("127.0.0.1:{local}");
                }
            }
            value = under_mounts(&value, &mounts);
            self.rewrite_services(&value)
        };
        let mut command = if workspace_binary {
            let mut command = Command::new(crate::binary(program));
            command.args(container.args.iter().flatten());
            command
        } else {
            let mut words = container
                .command
                .iter()
                .flatten()
                .chain(container.args.iter().flatten())
                .map(|word| rewrite(word));
            let mut command = Command::new(words.next().ok_or("no command")?);
            command.args(words);
            command
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default());
        if let Some(kubeconfig) = kubeconfig {
            command.env("KUBECONFIG", kubeconfig);
        }
        for var in container.env.iter().flatten() {
            let value = match (&var.value, &var.value_from) {
                (Some(value), _) => value.clone(),
                (None, Some(from)) => {
                    if let Some(key) = &from.secret_key_ref {
                        let data = self.secret_data(&key.name).await?;
                        data.get(&key.key)
                            .cloned()
                            .ok_or_else(|| format!("Secret {} has no key {}", key.name, key.key))?
                    } else if let Some(field) = &from.field_ref {
                        match field.field_path.as_str() {
                            "metadata.name" => pod.name_any(),
                            "metadata.namespace" => self.namespace.clone(),
                            other => return Err(format!("fieldRef {other} is not emulated")),
                        }
                    } else {
                        return Err(format!(
                            "env {} has a source that is not emulated",
                            var.name
                        ));
                    }
                }
                (None, None) => String::new(),
            };
            command.env(&var.name, rewrite(&value));
        }
        Ok(command)
    }

    /// `http://<service>.<namespace>.svc[.cluster.local]:<port>` to the Service port's local
    /// address.
    fn rewrite_services(&self, value: &str) -> String {
        let mut out = value.to_owned();
        for suffix in [".svc.cluster.local:", ".svc:"] {
            let pattern = format!(".{}{suffix}", self.namespace);
            while let Some(at) = out.find(&pattern) {
                let start = out[..at].rfind("//").map(|i| i + 2).unwrap_or(0);
                let service = out[start..at].to_owned();
                let rest = &out[at + pattern.len()..];
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                let Ok(port) = digits.parse::<i32>() else {
                    break;
                };
                let local = {
                    let mut state = self.state.lock().unwrap();
                    *state
                        .ports
                        .entry((service.clone(), port))
                        .or_insert_with(free_port)
                };
                let end = at + pattern.len() + digits.len();
                out.replace_range(start..end, &format!("127.0.0.1:{local}"));
            }
        }
        out
    }

    /// Container port -> local port: a selecting Service's port if there is one.
    async fn local_ports(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<Vec<(i32, u16)>, String> {
        let services: Api<Service> = Api::namespaced(self.client.clone(), &self.namespace);
        let services = services
            .list(&Default::default())
            .await
            .map_err(|err| format!("list Services: {err}"))?;
        let labels = pod.labels();
        let mut ports = Vec::new();
        for port in container.ports.iter().flatten() {
            let mut local = None;
            for service in &services.items {
                let Some(spec) = &service.spec else { continue };
                let Some(selector) = spec.selector.as_ref().filter(|s| !s.is_empty()) else {
                    continue;
                };
                if !selector.iter().all(|(k, v)| labels.get(k) == Some(v)) {
                    continue;
                }
                for service_port in spec.ports.iter().flatten() {
                    let targets = match &service_port.target_port {
                        Some(IntOrString::String(name)) => port.name.as_ref() == Some(name),
                        Some(IntOrString::Int(number)) => *number == port.container_port,
                        None => service_port.port == port.container_port,
                    };
                    if targets {
                        let mut state = self.state.lock().unwrap();
                        local = Some(
                            *state
                                .ports
                                .entry((service.name_any(), service_port.port))
                                .or_insert_with(free_port),
                        );
                    }
                }
            }
            ports.push((port.container_port, local.unwrap_or_else(free_port)));
        }
        Ok(ports)
    }

    /// Mount path -> local directory, with Secret volumes written out.
    async fn mounts(
        &self,
        pod: &Pod,
        container: &Container,
    ) -> Result<Vec<(String, PathBuf)>, String> {
        let volumes = pod
            .spec
            .as_ref()
            .and_then(|s| s.volumes.clone())
            .unwrap_or_default();
        let mut mounts = Vec::new();
        for mount in container.volume_mounts.iter().flatten() {
            let volume = volumes
                .iter()
                .find(|v| v.name == mount.name)
                .ok_or_else(|| format!("volume {} is missing", mount.name))?;
            let dir = if let Some(claim) = &volume.persistent_volume_claim {
                self.root.join("claims").join(&claim.claim_name)
            } else if let Some(secret) = &volume.secret {
                let name = secret.secret_name.clone().unwrap_or_default();
                let data = self.secret_data(&name).await?;
                let dir = self
                    .root
                    .join("pods")
                    .join(pod.uid().unwrap_or_default())
                    .join(&volume.name);
                std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
                let items: Vec<(String, String)> = match &secret.items {
                    Some(items) => items
                        .iter()
                        .map(|i| (i.key.clone(), i.path.clone()))
                        .collect(),
                    None => data.keys().map(|k| (k.clone(), k.clone())).collect(),
                };
                for (key, path) in items {
                    let value = data
                        .get(&key)
                        .ok_or_else(|| format!("Secret {name} has no key {key}"))?;
                    std::fs::write(dir.join(path), value).map_err(|e| e.to_string())?;
                }
                dir
            } else {
                self.root
                    .join("pods")
                    .join(pod.uid().unwrap_or_default())
                    .join(&volume.name)
            };
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            mounts.push((mount.mount_path.clone(), dir));
        }
        Ok(mounts)
    }

    /// A Secret's data, waiting for it to exist as a kubelet does (here up to two minutes).
    async fn secret_data(&self, name: &str) -> Result<BTreeMap<String, String>, String> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), &self.namespace);
        for _ in 0..600 {
            if let Ok(Some(secret)) = secrets.get_opt(name).await {
                return Ok(secret
                    .data
                    .unwrap_or_default()
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v.0).into_owned()))
                    .collect());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Err(format!("Secret {name} never appeared"))
    }
}

/// A path under a mount (`/data/tooken.db`, or in a URL `sqlite:///data/tooken.db`) to the
/// local directory standing in for it.
fn under_mounts(value: &str, mounts: &[(String, PathBuf)]) -> String {
    for (mount, local) in mounts {
        let local = local.display().to_string();
        let (scheme, path) = match value.find(":///") {
            Some(at) => value.split_at(at + 3),
            None => ("", value),
        };
        if let Some(rest) = path.strip_prefix(mount.as_str())
            && (rest.is_empty() || rest.starts_with('/'))
        {
            return format!("{scheme}{local}{rest}");
        }
    }
    value.to_owned()
}

/// A Running pod that kwok once made Ready, now not Ready (the node controller's doing).
fn needs_ready_again(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    let was_started = status.container_statuses.iter().flatten().any(|c| c.ready);
    status.phase.as_deref() == Some("Running")
        && was_started
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "False")
}
