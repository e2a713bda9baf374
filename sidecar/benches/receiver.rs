//! Receiver figures: verified webhooks per second and RSS of the real binary, and the
//! event-to-patch latency of the restart path against an instantly answering mock API server.

use futures::StreamExt;
use http::{Request, Response};
use kube::client::Body;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tooken_contract::signature::{SIGNATURE_HEADER, sign};
use tooken_sidecar::metrics::Metrics;
use tooken_sidecar::receiver::Receiver;
use tooken_sidecar::receiver::restarter::Restarter;
use tooken_sidecar::webhook::{Verifier, WebhookState, routes::routes};

const SECRET: &[u8] = b"whsec_bench";
const DELIVERIES: usize = 20_000;
const CONCURRENCY: usize = 16;
const ROTATIONS: u64 = 500;

fn main() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(binary_throughput_and_rss());
    runtime.block_on(event_to_patch_latency());
}

fn event(id: usize, kind: &str, rotation: u64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": format!("bench-{id}"), "type": kind, "created_at": jiff::Timestamp::now(),
        "workspace": "bench",
        "data": {"id": "tok1", "name": "bench", "rotation": rotation, "scopes": ["tokens:read"]}
    }))
    .unwrap()
}

/// Runs `tooken-sidecar receiver` and sends it signed deliveries that need no Kubernetes call
/// (`token.created`), so the figure is the cost of receiving and verifying.
async fn binary_throughput_and_rss() {
    let dir = std::env::temp_dir().join(format!("tooken-sidecar-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let kubeconfig = dir.join("kubeconfig");
    // An API server that is never reached: the receiver starts and serves webhooks regardless.
    std::fs::write(&kubeconfig, "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster: {server: 'http://127.0.0.1:9'}\ncontexts:\n- name: c\n  context: {cluster: c, user: u}\ncurrent-context: c\nusers:\n- name: u\n  user: {token: x}\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tooken-sidecar"))
        .arg("receiver")
        .env("KUBECONFIG", &kubeconfig)
        .env("TOOKEN_WEBHOOK_SECRET", "whsec_old,whsec_bench")
        .env("TOOKEN_SIDECAR_LISTEN", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    while http.get(format!("{base}/healthz")).send().await.is_err() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_idle = rss_kib(child.id());
    let bodies: Vec<Vec<u8>> = (0..DELIVERIES)
        .map(|i| event(i, "token.created", 0))
        .collect();
    let started = Instant::now();
    let accepted = futures::stream::iter(bodies)
        .map(|body| {
            let http = http.clone();
            let url = format!("{base}/webhooks/tooken");
            async move {
                http.post(url)
                    .header(SIGNATURE_HEADER, sign(SECRET, &body))
                    .body(body)
                    .send()
                    .await
                    .map(|r| r.status().as_u16() == 202)
                    .unwrap_or(false)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    let elapsed = started.elapsed();
    let (rss, peak) = (rss_kib(child.id()), hwm_kib(child.id()));
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(accepted, DELIVERIES, "every delivery verified");
    println!(
        "verified webhooks: {DELIVERIES} in {:.2}s = {:.0}/s over HTTP ({CONCURRENCY} concurrent, 2 signing secrets)",
        elapsed.as_secs_f64(),
        DELIVERIES as f64 / elapsed.as_secs_f64()
    );
    println!(
        "tooken-sidecar RSS: {:.1} MiB idle, {:.1} MiB after the load, peak {:.1} MiB (target < 15 MiB)",
        rss_idle as f64 / 1024.0,
        rss as f64 / 1024.0,
        peak as f64 / 1024.0
    );
}

fn status_field(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .unwrap_or(0)
}

fn rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS:")
}

fn hwm_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM:")
}

/// Delivery of `token.rotated` to the moment the PATCH reaches the (instant) API server.
async fn event_to_patch_latency() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let patched_at = Arc::new(Mutex::new(Vec::new()));
    let api = tokio::spawn({
        let patched_at = patched_at.clone();
        async move {
            while let Some((request, send)) = handle.next_request().await {
                let path = request.uri().path().to_owned();
                if request.method() == "PATCH" {
                    patched_at.lock().unwrap().push(Instant::now());
                }
                let body = canned(&path, request.method().as_str());
                send.send_response(Response::new(Body::from(
                    serde_json::to_vec(&body).unwrap(),
                )));
            }
        }
    });
    let metrics = Arc::new(Metrics::default());
    let restarter = Arc::new(Restarter {
        client: kube::Client::new(service, "default"),
        namespace: Some("apps".into()),
        secret_wait: Duration::from_secs(5),
        clock: jiff::Timestamp::now,
        metrics: metrics.clone(),
    });
    let state = Arc::new(WebhookState {
        verifier: Verifier::new(vec![SECRET.to_vec()], Duration::from_secs(300), 10_000),
        handler: Arc::new(Receiver::new(
            restarter,
            Duration::ZERO,
            Duration::from_secs(5),
        )),
        metrics,
        body_limit: 64 * 1024,
        clock: jiff::Timestamp::now,
    });
    let filter = routes(state.clone());
    let mut latencies = Vec::new();
    let mut answers = Vec::new();
    for rotation in 1..=ROTATIONS {
        let body = event(rotation as usize, "token.rotated", rotation);
        let sent = Instant::now();
        let response = warp::test::request()
            .method("POST")
            .path("/webhooks/tooken")
            .header(SIGNATURE_HEADER, sign(SECRET, &body))
            .body(body)
            .reply(&filter)
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.body());
        answers.push(sent.elapsed());
        // Two patches per rotation: the pending entry before the answer, the restart after it.
        while patched_at.lock().unwrap().len() < 2 * rotation as usize {
            tokio::time::sleep(Duration::from_micros(100)).await;
        }
        let patched = *patched_at.lock().unwrap().last().expect("a patch");
        latencies.push(patched - sent);
    }
    drop((state, filter));
    api.await.unwrap();
    answers.sort();
    let at = |all: &[Duration], p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    println!(
        "delivery answered (restart recorded as pending): p50 {:?}, p99 {:?}, max {:?}",
        at(&answers, 0.5),
        at(&answers, 0.99),
        answers.last().unwrap()
    );
    latencies.sort();
    let pct = |p: f64| at(&latencies, p);
    println!(
        "event-to-patch latency (mock API answering at once, no coalescing window): p50 {:?}, p99 {:?}, max {:?} over {ROTATIONS} rotations",
        pct(0.5),
        pct(0.99),
        latencies.last().unwrap()
    );
}

fn canned(path: &str, method: &str) -> serde_json::Value {
    let meta_list = |items: serde_json::Value| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList", "metadata": {}, "items": items});
    match path {
        "/apis/tooken.io/v1alpha1/namespaces/apps/tookentokens" => {
            json!({"apiVersion": "tooken.io/v1alpha1", "kind": "TookenTokenList", "metadata": {}, "items": []})
        }
        "/api/v1/namespaces/apps/secrets" => {
            meta_list(json!([{"metadata": {"name": "s", "namespace": "apps",
            "annotations": {"tooken.io/token-id": "tok1", "tooken.io/rotation": "1000000"}}}]))
        }
        "/apis/apps/v1/namespaces/apps/deployments" => {
            meta_list(json!([{"metadata": {"name": "web", "namespace": "apps",
            "annotations": {"tooken.io/restart-on-rotation": "s"}}}]))
        }
        "/apis/apps/v1/namespaces/apps/statefulsets"
        | "/apis/apps/v1/namespaces/apps/daemonsets" => meta_list(json!([])),
        _ if method == "GET" || method == "PATCH" => {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "apps", "resourceVersion": "1"}, "spec": {}})
        }
        _ => panic!("unexpected {method} {path}"),
    }
}
