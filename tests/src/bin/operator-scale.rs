//! Scale check of the operator on the cluster named by `TOOKEN_E2E_KUBECONFIG`. For each N in
//! `TOOKEN_SCALE_N` (comma-separated, default `1000`): a fresh namespace, API server and
//! operator, N TookenTokens applied at once, then
//! - the time until all are Ready, reconciles per second and the operator's peak RSS;
//! - the operator's Kubernetes requests and Tooken API calls per resource, and the
//!   kube-apiserver's own mean time for each kind of request;
//! - a steady-state window (`TOOKEN_SCALE_IDLE_SECONDS`, default 20) in which the operator must
//!   make no write and no Tooken API call (the program fails otherwise), with its CPU use;
//! - deleting the namespace: the time until every token is revoked and the namespace is gone.
//!
//! Targets: 10,000 Ready within 60 s, peak RSS under 64 MiB at every N. Printed, not asserted:
//! speed depends on the machine.
//!
//! Run: `TOOKEN_E2E_KUBECONFIG=$(tests/cluster/up | tail -1) cargo run -p tooken-e2e --bin
//! operator-scale` (after `cargo build --workspace`).

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube::api::{ListParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, HashSet};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tooken_e2e::{
    client, free_port, install_crd, is_ready, kubeconfig, spawn, start_api_server, temp_namespace,
};
use tooken_operator::crd::TookenToken;

/// Counters from a Prometheus text page: `name{labels}` → value.
type Samples = BTreeMap<String, f64>;

fn parse_metrics(text: &str, prefix: &str) -> Samples {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.to_owned(), value.parse().ok()?))
        })
        .collect()
}

fn delta(before: &Samples, after: &Samples) -> Samples {
    after
        .iter()
        .map(|(k, v)| (k.clone(), v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, v)| *v != 0.0)
        .collect()
}

fn label<'a>(sample: &'a str, name: &str) -> &'a str {
    let needle = format!("{name}=\"");
    sample
        .find(&needle)
        .map(|at| &sample[at + needle.len()..])
        .and_then(|rest| rest.split('"').next())
        .unwrap_or("")
}

struct Operator {
    process: tooken_e2e::Running,
    metrics_url: String,
    http: reqwest::Client,
}

impl Operator {
    async fn samples(&self) -> Samples {
        let text = self
            .http
            .get(&self.metrics_url)
            .send()
            .await
            .expect("scrape the operator")
            .text()
            .await
            .expect("metrics text");
        parse_metrics(&text, "tooken_operator_")
    }

    fn pid(&self) -> u32 {
        self.process.0.id()
    }
}

/// The peak resident set of a process, from /proc (Linux).
fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// The resident set of a process now, from /proc (Linux).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// CPU seconds (user + system) a process has used, from /proc (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = fields
        .get(11..13)
        .map(|f| f.iter().filter_map(|t| t.parse::<f64>().ok()).sum())
        .unwrap_or(0.0);
    let per_second = std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0);
    ticks / per_second
}

/// The control plane's processes, from the pid files `tests/cluster/up` keeps beside the
/// kubeconfig (none for another cluster).
fn control_plane(kubeconfig: &std::path::Path) -> Vec<(String, u32)> {
    let pids = kubeconfig.with_file_name("pids");
    ["kube-apiserver", "etcd", "kube-controller-manager", "kwok"]
        .iter()
        .filter_map(|name| {
            let pid = std::fs::read_to_string(pids.join(name)).ok()?;
            Some((name.to_string(), pid.trim().parse().ok()?))
        })
        .collect()
}

async fn apiserver_samples(client: &kube::Client) -> Samples {
    let text = client
        .request_text(http::Request::get("/metrics").body(Vec::new()).unwrap())
        .await
        .expect("read the kube-apiserver's metrics");
    parse_metrics(&text, "apiserver_request_duration_seconds_")
}

/// Mean kube-apiserver time per request kind, for the resources the operator writes.
fn print_apiserver_time(samples: &Samples) {
    let mut kinds: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    for (sample, value) in samples {
        let resource = label(sample, "resource");
        if !matches!(resource, "tookentokens" | "secrets" | "events") {
            continue;
        }
        let subresource = label(sample, "subresource");
        let kind = format!(
            "{} {resource}{}{subresource}",
            label(sample, "verb"),
            if subresource.is_empty() { "" } else { "/" }
        );
        let entry = kinds.entry(kind).or_default();
        if sample.starts_with("apiserver_request_duration_seconds_sum") {
            entry.0 += value;
        } else if sample.starts_with("apiserver_request_duration_seconds_count") {
            entry.1 += value;
        }
    }
    for (kind, (sum, count)) in kinds.into_iter().filter(|(_, (_, c))| *c > 0.0) {
        println!(
            "    kube-apiserver {kind}: {count:.0} requests, mean {:.1} ms",
            sum / count * 1000.0
        );
    }
}

fn per_resource(samples: &Samples, prefix: &str, n: usize) -> Vec<(String, f64)> {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .map(|(k, v)| (k.clone(), v / n as f64))
        .collect()
}

/// The sum of the samples starting with `prefix`.
fn total(samples: &Samples, prefix: &str) -> f64 {
    samples
        .iter()
        .filter(|(k, _)| k.starts_with(prefix))
        .fold(0.0, |sum, (_, v)| sum + v)
}

fn is_write(sample: &str) -> bool {
    matches!(
        label(sample, "verb"),
        "create" | "patch" | "update" | "delete"
    ) && label(sample, "resource") != "leases"
}

/// Runs one N; returns false when the steady-state check failed.
async fn run(kubeconfig: &std::path::Path, n: usize, idle: Duration) -> bool {
    let client = client(kubeconfig).await.expect("connect to the cluster");
    install_crd(&client).await;
    let namespace = temp_namespace(&client, "tooken-scale").await;
    let ns = namespace.name.clone();
    // A line per request at this scale would bury CI's log; warnings still show.
    let (server, base_url, api_key) = start_api_server(&[("RUST_LOG", "warn".into())]).await;
    let port = free_port();
    let operator = Operator {
        process: spawn(
            "tooken-operator",
            &[
                "--namespace",
                &ns,
                // Outside the namespace, whose deletion at the end would take the Lease too.
                "--lease-namespace",
                "default",
                "--lease-name",
                &ns,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--concurrency",
                "32",
            ],
            &[
                ("KUBECONFIG", kubeconfig.display().to_string()),
                ("TOOKEN_API_URL", base_url),
                ("TOOKEN_API_KEY", api_key),
                ("RUST_LOG", "warn".into()),
            ],
        ),
        metrics_url: format!("http://127.0.0.1:{port}/metrics"),
        http: reqwest::Client::new(),
    };
    tooken_e2e::eventually("the operator's metrics", Duration::from_secs(30), || {
        let request = operator.http.get(&operator.metrics_url).send();
        async move { request.await.ok().filter(|r| r.status().is_success()) }
    })
    .await;
    let operator_before = operator.samples().await;
    let apiserver_before = apiserver_samples(&client).await;
    let mut processes = control_plane(kubeconfig);
    processes.push(("tooken-operator".into(), operator.pid()));
    processes.push(("tooken-server".into(), server.0.id()));
    processes.push(("this client".into(), std::process::id()));
    let cpu_before: Vec<f64> = processes.iter().map(|(_, pid)| cpu_seconds(*pid)).collect();

    let tokens: Api<TookenToken> = Api::namespaced(client.clone(), &ns);
    // Count Ready from a watch: listing N objects over and over would load the API server
    // that is being measured.
    let watch = tokio::spawn({
        let tokens = tokens.clone();
        async move {
            let mut ready = HashSet::new();
            let mut events = watcher(tokens, watcher::Config::default())
                .applied_objects()
                .boxed();
            while ready.len() < n {
                let tt = events.try_next().await.expect("watch").expect("watch ends");
                if is_ready(&tt) {
                    ready.insert(tt.metadata.name.unwrap_or_default());
                }
            }
        }
    });
    let started = Instant::now();
    futures::stream::iter(0..n)
        .for_each_concurrent(50, |i| {
            let tokens = tokens.clone();
            async move {
                let manifest: TookenToken = serde_json::from_value(serde_json::json!({
                    "apiVersion": "tooken.io/v1alpha1", "kind": "TookenToken",
                    "metadata": {"name": format!("scale-{i}")},
                    "spec": {"scopes": ["tokens:read"]}
                }))
                .unwrap();
                tokens
                    .create(&PostParams::default(), &manifest)
                    .await
                    .expect("create");
            }
        })
        .await;
    let applied = started.elapsed();
    // Generous, so a slow machine still prints its figures.
    let deadline = Duration::from_secs(600.max(n as u64 / 5));
    tokio::time::timeout(deadline, watch)
        .await
        .unwrap_or_else(|_| panic!("not all {n} Ready after {} s", deadline.as_secs()))
        .expect("the watch");
    let all_ready = started.elapsed();
    let operator_after = operator.samples().await;
    let apiserver_after = apiserver_samples(&client).await;
    let cpu_used: Vec<(String, f64)> = processes
        .iter()
        .zip(&cpu_before)
        .map(|((name, pid), before)| (name.clone(), cpu_seconds(*pid) - before))
        .collect();
    let work = delta(&operator_before, &operator_after);
    let reconciles = total(&work, "tooken_operator_reconciles_total");

    println!(
        "N={n}: applied in {:.1} s, all Ready after {:.1} s; {:.0} reconciles/s; operator \
         peak RSS {}",
        applied.as_secs_f64(),
        all_ready.as_secs_f64(),
        reconciles / all_ready.as_secs_f64(),
        peak_rss_mib(operator.pid())
            .map(|m| format!("{m:.1} MiB"))
            .unwrap_or_else(|| "unknown".into()),
    );
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "  CPU until all Ready ({cores} cores × {:.0} s = {:.0} s available): {}",
        all_ready.as_secs_f64(),
        all_ready.as_secs_f64() * cores as f64,
        cpu_used
            .iter()
            .map(|(name, seconds)| format!("{name} {seconds:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!("  per resource:");
    println!("    reconciles: {:.2}", reconciles / n as f64);
    for (sample, value) in per_resource(&work, "tooken_operator_kubernetes_requests_total", n) {
        println!(
            "    Kubernetes {} {}: {value:.2}",
            label(&sample, "verb"),
            label(&sample, "resource")
        );
    }
    for (sample, value) in per_resource(&work, "tooken_operator_api_requests_total", n) {
        println!("    Tooken API {}: {value:.2}", label(&sample, "operation"));
    }
    let api_time = |suffix: &str| {
        work.get(&format!(
            "tooken_operator_api_request_duration_seconds_{suffix}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    let reconcile_time = |suffix: &str| {
        work.get(&format!(
            "tooken_operator_reconcile_duration_seconds_{suffix}"
        ))
        .copied()
        .unwrap_or(0.0)
    };
    println!("  where the time goes:");
    println!(
        "    reconcile: mean {:.1} ms; Tooken API call: mean {:.1} ms",
        reconcile_time("sum") / reconcile_time("count").max(1.0) * 1000.0,
        api_time("sum") / api_time("count").max(1.0) * 1000.0
    );
    print_apiserver_time(&delta(&apiserver_before, &apiserver_after));

    // Steady state: nothing changes, so nothing should be written or asked of Tooken.
    let cpu_idle_before = cpu_seconds(operator.pid());
    let idle_before = operator.samples().await;
    tokio::time::sleep(idle).await;
    let idle_work = delta(&idle_before, &operator.samples().await);
    let cpu_idle = cpu_seconds(operator.pid()) - cpu_idle_before;
    let writes = idle_work
        .iter()
        .filter(|(k, _)| k.starts_with("tooken_operator_kubernetes_requests_total") && is_write(k))
        .fold(0.0, |sum, (_, v)| sum + v);
    let api_calls = total(&idle_work, "tooken_operator_api_requests_total");
    // The change feed's polls are the documented periodic check, the same at any N.
    let feed_polls = total(&idle_work, "tooken_operator_change_feed_polls_total");
    println!(
        "  steady state over {} s: {writes:.0} Kubernetes writes (leases aside), {api_calls:.0} \
         Tooken API calls besides {feed_polls:.0} change-feed polls, operator CPU {:.1} %, \
         RSS {:.1} MiB",
        idle.as_secs(),
        cpu_idle / idle.as_secs_f64() * 100.0,
        rss_mib(operator.pid()).unwrap_or(0.0)
    );
    let steady = writes == 0.0 && api_calls == 0.0;
    if !steady {
        eprintln!("  FAILED: an idle operator wrote or called the API: {idle_work:?}");
    }

    // Delete everything: the operator revokes each token and releases its finalizer.
    let deleting = Instant::now();
    let namespaces: Api<Namespace> = Api::all(client.clone());
    namespaces
        .delete(&ns, &Default::default())
        .await
        .expect("delete the namespace");
    let gone = Duration::from_secs(600.max(n as u64 / 5));
    tooken_e2e::eventually("every TookenToken to be gone", gone, || {
        let tokens = tokens.clone();
        async move {
            let left = tokens.list(&ListParams::default().limit(1)).await.ok()?;
            left.items.is_empty().then_some(())
        }
    })
    .await;
    let released = deleting.elapsed();
    tooken_e2e::eventually("the namespace to be gone", gone, || {
        let namespaces = namespaces.clone();
        let ns = ns.clone();
        async move {
            namespaces
                .get_opt(&ns)
                .await
                .ok()
                .flatten()
                .is_none()
                .then_some(())
        }
    })
    .await;
    let revoked = delta(&operator_after, &operator.samples().await);
    println!(
        "  deleted: every TookenToken revoked and gone after {:.1} s ({:.0} revocations), the \
         namespace after {:.1} s",
        released.as_secs_f64(),
        total(
            &revoked,
            "tooken_operator_api_requests_total{operation=\"revoke_token\""
        ),
        deleting.elapsed().as_secs_f64(),
    );
    steady
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(kubeconfig) = kubeconfig("operator-scale") else {
        return ExitCode::SUCCESS;
    };
    let sizes: Vec<usize> = std::env::var("TOOKEN_SCALE_N")
        .unwrap_or_else(|_| "1000".into())
        .split(',')
        .map(|n| {
            n.trim()
                .parse()
                .expect("TOOKEN_SCALE_N: numbers, comma-separated")
        })
        .collect();
    let idle = Duration::from_secs(
        std::env::var("TOOKEN_SCALE_IDLE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20),
    );
    let mut steady = true;
    for n in sizes {
        steady &= run(&kubeconfig, n, idle).await;
    }
    if steady {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
