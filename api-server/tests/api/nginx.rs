//! Forward-auth through a real nginx (Debian's, `auth_request`) in front of a real upstream,
//! with the configuration README.md shows, run as written. The test starts nginx itself: its
//! own prefix and configuration in a temporary folder, on a free loopback port, in the
//! foreground, stopped when the test ends.

use crate::helpers::TestApp;
use crate::on_both_backends;
use crate::receiver::free_addr;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tokio::net::TcpListener;
use warp::Filter;
use warp::http::HeaderMap;

on_both_backends!(nginx_admits_and_refuses_through_tooken);

/// The `nginx` block of README.md's "Checking tokens downstream".
fn readme_nginx_block() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split("\n## ")
        .find(|section| section.starts_with("Checking tokens downstream\n"))
        .expect("README has the section");
    let start = section.find("```nginx\n").expect("an nginx block") + "```nginx\n".len();
    let block = &section[start..];
    block[..block.find("\n```").unwrap()].to_owned()
}

/// nginx in the foreground, killed on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default()
    }
}

async fn start_nginx(binary: &Path, server_block: &str) -> (Nginx, SocketAddr) {
    let addr = free_addr();
    let dir = std::env::temp_dir().join(format!("tooken-nginx-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let d = dir.display();
    let server = server_block.replace("listen 8000;", &format!("listen {addr};"));
    let config = format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\n\
         error_log {d}/error.log info;\nevents {{ worker_connections 64; }}\n\
         http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  \
         proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  \
         uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n{server}\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), config).unwrap();
    let child = Command::new(binary)
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .arg("-e")
        .arg(dir.join("error.log"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx starts");
    let mut nginx = Nginx { child, dir };
    // Wait until it listens, or fail with its log if it exits.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        if let Some(status) = nginx.child.try_wait().unwrap() {
            panic!("nginx exited with {status}: {}", nginx.error_log());
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nginx did not listen on {addr}: {}",
            nginx.error_log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (nginx, addr)
}

/// The upstream: answers every request with the path and the `x-tooken-*` headers it got.
async fn start_upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let route = warp::path::full().and(warp::header::headers_cloned()).map(
        |path: warp::path::FullPath, headers: HeaderMap| {
            let seen: serde_json::Map<String, Value> = headers
                .iter()
                .filter(|(name, _)| name.as_str().starts_with("x-tooken-"))
                .map(|(name, value)| (name.to_string(), json!(value.to_str().unwrap())))
                .collect();
            warp::reply::json(&json!({"upstream": path.as_str(), "headers": seen}))
        },
    );
    tokio::spawn(warp::serve(route).incoming(listener).run());
    addr
}

async fn nginx_admits_and_refuses_through_tooken(app: TestApp) {
    let Some(binary) = crate::tools::nginx() else {
        return;
    };
    let upstream = start_upstream().await;
    let block = readme_nginx_block()
        .replace("http://127.0.0.1:8080", &app.base_url)
        .replace("http://127.0.0.1:3000", &format!("http://{upstream}"));
    let (nginx, addr) = start_nginx(&binary, &block).await;
    let get = |path: &str, token: Option<&str>| {
        let mut request = app
            .http
            .request(Method::GET, format!("http://{addr}{path}"))
            // A client trying to forge what the upstream is told.
            .header("x-tooken-token-id", "forged");
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        async move { request.send().await.unwrap() }
    };

    let (id, reader) = app.token("orders-reader", json!(["tokens:read"])).await;
    let (writer_id, writer) = app
        .token("orders-admin", json!(["tokens:read", "tokens:write"]))
        .await;

    // A valid token passes, and the upstream learns which one it was.
    let response = get("/api/orders", Some(&reader)).await;
    assert_eq!(response.status(), StatusCode::OK, "{}", nginx.error_log());
    let seen: Value = response.json().await.unwrap();
    assert_eq!(
        seen,
        json!({"upstream": "/api/orders", "headers": {
            "x-tooken-token-id": id,
            "x-tooken-token-name": "orders-reader",
            "x-tooken-scopes": "tokens:read",
        }})
    );

    // The wrong scope is refused; the right one passes.
    assert_eq!(
        get("/api/admin/users", Some(&reader)).await.status(),
        StatusCode::FORBIDDEN
    );
    let response = get("/api/admin/users", Some(&writer)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let seen: Value = response.json().await.unwrap();
    assert_eq!(seen["headers"]["x-tooken-token-id"], writer_id.as_str());

    // No token, or a garbled one: 401.
    assert_eq!(
        get("/api/orders", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get("/api/orders", Some("tok_live_garbled")).await.status(),
        StatusCode::UNAUTHORIZED
    );

    // Revoked: refused on its very next request.
    app.revoke(&id).await;
    assert_eq!(
        get("/api/orders", Some(&reader)).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // Others still pass.
    assert_eq!(
        get("/api/orders", Some(&writer)).await.status(),
        StatusCode::OK
    );
}
