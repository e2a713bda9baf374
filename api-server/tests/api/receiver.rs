//! A real webhook receiver on loopback that records what it gets and answers as told.

use bytes::Bytes;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use warp::Filter;
use warp::http::HeaderMap;

#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The status this receiver answered.
    pub status: u16,
}

impl Received {
    pub fn header(&self, name: &str) -> String {
        self.headers[name].to_str().unwrap().to_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Shared {
    received: Vec<Received>,
    /// Statuses to answer next, in order; 200 when empty.
    script: VecDeque<u16>,
    /// Answer with this status every other request (for flaky receivers).
    flaky: Option<u16>,
}

pub struct Receiver {
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    _stop: oneshot::Sender<()>,
}

/// A free loopback port, for a receiver that starts later.
pub fn free_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

impl Receiver {
    pub async fn start() -> Receiver {
        Receiver::start_on(free_addr()).await
    }

    pub async fn start_on(addr: SocketAddr) -> Receiver {
        let listener = TcpListener::bind(addr).await.expect("bind receiver");
        let shared = Arc::new(Mutex::new(Shared::default()));
        let state = shared.clone();
        let route = warp::path!("hook")
            .and(warp::post())
            .and(warp::header::headers_cloned())
            .and(warp::body::bytes())
            .map(move |headers: HeaderMap, body: Bytes| {
                let mut shared = state.lock().unwrap();
                let flaky_turn = shared.flaky.is_some() && shared.received.len() % 2 == 0;
                let status = match (shared.script.pop_front(), shared.flaky) {
                    (Some(status), _) => status,
                    (None, Some(status)) if flaky_turn => status,
                    _ => 200,
                };
                shared.received.push(Received {
                    headers,
                    body,
                    status,
                });
                warp::reply::with_status("ok", warp::http::StatusCode::from_u16(status).unwrap())
            });
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(
            warp::serve(route)
                .incoming(listener)
                .graceful(async {
                    let _ = stopped.await;
                })
                .run(),
        );
        Receiver {
            url: format!("http://{addr}/hook"),
            shared,
            _stop: stop,
        }
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.shared.lock().unwrap().script.extend(statuses);
    }

    pub fn fail_every_other_with(&self, status: u16) {
        self.shared.lock().unwrap().flaky = Some(status);
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().unwrap().received.clone()
    }

    /// Requests this receiver answered with 2xx.
    pub fn accepted(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `n` requests were accepted with 2xx, or panics after `timeout`.
    pub async fn wait_accepted(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                return accepted;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "only {} of {n} deliveries accepted within {timeout:?}; received {:?}",
                accepted.len(),
                self.received().iter().map(|r| r.status).collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
