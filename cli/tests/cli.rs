//! The real `tooken` binary against the real server (started on port 0 with a fresh database,
//! on SQLite and on PostgreSQL), and README.md's CLI lines run as written.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tokio::sync::oneshot;
use tooken_api_server::app::{Application, Settings};
use tooken_api_server::bootstrap::{BootstrapRequest, bootstrap};
use tooken_api_server::test_support::{Backend, fresh_database};

struct Server {
    url: String,
    api_key: String,
    _stop: oneshot::Sender<()>,
}

async fn start(backend: Backend) -> Option<Server> {
    tooken_api_server::install_crypto_provider();
    let database_url = fresh_database(backend).await?;
    let settings = Settings::new("127.0.0.1:0".parse().unwrap(), database_url);
    let app = Application::build(&settings).await.expect("server starts");
    let url = format!("http://{}", app.local_addr());
    let done = bootstrap(
        &app.state().store,
        &BootstrapRequest {
            workspace_name: "production".into(),
            slug: None,
            owner_email: None,
            key_name: "bootstrap".into(),
            api_key: None,
        },
    )
    .await
    .expect("bootstrap");
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Some(Server {
        url,
        api_key: done.api_key.expose().to_owned(),
        _stop: stop,
    })
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|_| panic!("not JSON: {} {}", self.stdout, self.stderr))
    }
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().expect("exited, not killed"),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// Runs `tooken args…` with `TOOKEN_URL` and `TOOKEN_API_KEY` set, off the async threads.
async fn tooken(server: &Server, key: &str, args: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_tooken"));
    command
        .args(args)
        .env("TOOKEN_URL", &server.url)
        .env("TOOKEN_API_KEY", key);
    tokio::task::spawn_blocking(move || finish(command.output().unwrap()))
        .await
        .unwrap()
}

/// A command line without quoting, as arguments.
fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// `tooken` that must exit 0; returns what it printed.
async fn ok(server: &Server, key: &str, args: &[&str]) -> Run {
    let run = tooken(server, key, args).await;
    assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    run
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                let server = super::start(super::Backend::Sqlite).await.unwrap();
                super::$name(server).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                if let Some(server) = super::start(super::Backend::Postgres).await {
                    super::$name(server).await;
                }
            }
        }
    )*};
}

on_both_backends!(
    seed_001_flow,
    api_keys_webhooks_and_the_audit_export,
    exit_codes_say_what_went_wrong,
    readme_lines_run_as_written,
);

async fn seed_001_flow(server: Server) {
    let key = server.api_key.clone();
    let env = ok(
        &server,
        &key,
        &[
            "tokens",
            "create",
            "--name",
            "my-first-token",
            "--scope",
            "tokens:read",
            "--output",
            "env",
        ],
    )
    .await
    .stdout;
    let secret = env
        .strip_prefix("TOOKEN_TOKEN=")
        .and_then(|rest| rest.strip_suffix('\n'))
        .unwrap_or_else(|| panic!("not one TOOKEN_TOKEN line: {env:?}"));
    tooken_contract::Secret::parse(secret).expect("a real token");

    // The token lists and gets...
    let listed = ok(&server, secret, &["tokens", "list", "--output", "json"])
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "my-first-token");
    assert_eq!(listed[0]["scopes"], serde_json::json!(["tokens:read"]));
    let id = listed[0]["id"].as_str().unwrap();
    let table = ok(&server, secret, &["tokens", "get", id]).await.stdout;
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("ID "), "{table}");
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(
        row[..4],
        [id, "my-first-token", "tokens:read", "active"],
        "{table}"
    );

    // ...and is refused creating, with the API's message and exit 3.
    let refused = tooken(
        &server,
        secret,
        &["tokens", "create", "--name", "x", "--scope", "tokens:read"],
    )
    .await;
    assert_eq!(refused.code, 3, "{}", refused.stderr);
    assert_eq!(
        refused.stderr,
        "tooken: this token lacks the `tokens:write` scope\n"
    );
    assert!(refused.stdout.is_empty());

    // Verify, rotate with a grace period, revoke.
    ok(
        &server,
        &key,
        &["tokens", "verify", secret, "--scope", "tokens:read"],
    )
    .await;
    let wrong = tooken(
        &server,
        &key,
        &["tokens", "verify", secret, "--scope", "tokens:write"],
    )
    .await;
    assert_eq!(wrong.code, 1);
    assert!(
        wrong.stderr.contains("insufficient_scope"),
        "{}",
        wrong.stderr
    );
    let rotated = ok(
        &server,
        &key,
        &[
            "tokens",
            "rotate",
            id,
            "--grace-period-seconds",
            "600",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    assert_eq!(rotated["rotation"], 1);
    let new = rotated["secret"].as_str().unwrap();
    ok(&server, &key, &["tokens", "verify", secret]).await;
    ok(&server, &key, &["tokens", "verify", new]).await;
    let revoked = ok(&server, &key, &["tokens", "revoke", id, "--output", "json"])
        .await
        .json();
    assert_eq!(revoked["status"], "revoked");
    for old in [secret, new] {
        let run = tooken(
            &server,
            &key,
            &["tokens", "verify", old, "--output", "json"],
        )
        .await;
        assert_eq!(run.code, 1);
        assert_eq!(run.json()["reason"], "revoked");
        assert_eq!(run.stderr, "tooken: the token does not work: revoked\n");
    }
}

async fn api_keys_webhooks_and_the_audit_export(server: Server) {
    let key = server.api_key.clone();
    let created = ok(
        &server,
        &key,
        &["api-keys", "create", "--name", "ci-pipeline", "-o", "json"],
    )
    .await
    .json();
    let (id, ci_key) = (
        created["id"].as_str().unwrap(),
        created["key"].as_str().unwrap(),
    );
    // The new key works, and is listed without its secret.
    let listed = ok(&server, ci_key, &["api-keys", "list", "--output", "json"]).await;
    assert!(!listed.stdout.contains(ci_key));
    assert_eq!(listed.json().as_array().unwrap().len(), 2);
    assert_eq!(
        ok(&server, &key, &["api-keys", "get", id, "-o", "json"])
            .await
            .json()["name"],
        "ci-pipeline"
    );
    let env = ok(
        &server,
        &key,
        &["api-keys", "regenerate", id, "--output", "env"],
    )
    .await
    .stdout;
    let regenerated = env
        .trim_end()
        .strip_prefix("TOOKEN_API_KEY=")
        .unwrap()
        .to_owned();
    assert_eq!(tooken(&server, ci_key, &["api-keys", "list"]).await.code, 3);
    ok(&server, &regenerated, &["tokens", "list"]).await;
    assert_eq!(
        ok(&server, &key, &["api-keys", "delete", id]).await.stdout,
        format!("deleted {id}\n")
    );
    assert_eq!(
        tooken(&server, &regenerated, &["tokens", "list"])
            .await
            .code,
        3
    );
    assert_eq!(
        tooken(&server, &key, &["api-keys", "get", id]).await.code,
        4
    );

    let webhook = ok(
        &server,
        &key,
        &[
            "webhooks",
            "create",
            "--endpoint",
            "https://deploy.example.com/webhooks/tooken",
            "--event",
            "token.rotated",
            "--event",
            "token.revoked",
            "--output",
            "json",
        ],
    )
    .await
    .json();
    let webhook_id = webhook["id"].as_str().unwrap();
    assert!(webhook["secret"].as_str().unwrap().starts_with("whsec_"));
    let table = ok(&server, &key, &["webhooks", "list"]).await.stdout;
    assert!(
        table.contains(webhook_id) && table.contains("token.revoked,token.rotated"),
        "{table}"
    );
    assert_eq!(
        ok(
            &server,
            &key,
            &["webhooks", "get", webhook_id, "-o", "json"]
        )
        .await
        .json()["url"],
        "https://deploy.example.com/webhooks/tooken"
    );
    ok(&server, &key, &["webhooks", "delete", webhook_id]).await;
    assert_eq!(
        tooken(&server, &key, &["webhooks", "get", webhook_id])
            .await
            .code,
        4
    );

    let now = jiff::Timestamp::now();
    let since = (now - jiff::SignedDuration::from_hours(1)).to_string();
    let until = (now + jiff::SignedDuration::from_hours(1)).to_string();
    let csv = ok(
        &server,
        &key,
        &["audit", "export", "--since", &since, "--until", &until],
    )
    .await
    .stdout;
    assert!(csv.starts_with("\u{feff}time,time_utc,type,"), "{csv}");
    for event in [
        "api_key.created",
        "api_key.regenerated",
        "api_key.deleted",
        "webhook.created",
        "webhook.deleted",
    ] {
        assert!(csv.contains(event), "{event} missing: {csv}");
    }
}

async fn exit_codes_say_what_went_wrong(server: Server) {
    let key = server.api_key.clone();
    // Usage: clap's own errors, a bad scope, no key, and `--output env` without a secret.
    assert_eq!(
        tooken(&server, &key, &["tokens", "create", "--name", "x"])
            .await
            .code,
        2
    );
    let bad = tooken(
        &server,
        &key,
        &[
            "tokens",
            "create",
            "--name",
            "x",
            "--scope",
            "tokens:destroy",
        ],
    )
    .await;
    assert_eq!(bad.code, 2);
    assert!(
        bad.stderr.contains("tokens:read, tokens:write"),
        "{}",
        bad.stderr
    );
    let mut command = Command::new(env!("CARGO_BIN_EXE_tooken"));
    command
        .args(["tokens", "list"])
        .env("TOOKEN_URL", &server.url)
        .env_remove("TOOKEN_API_KEY");
    let run = finish(command.output().unwrap());
    assert_eq!(run.code, 2);
    assert_eq!(
        run.stderr,
        "tooken: no API key: set TOOKEN_API_KEY or pass --api-key\n"
    );
    assert_eq!(
        tooken(&server, &key, &["tokens", "list", "--output", "env"])
            .await
            .code,
        2
    );
    // 401 with its exact message (README "The API", Errors), and 403.
    let run = tooken(&server, "tok_live_nope", &["tokens", "list"]).await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (3, "tooken: Invalid or missing API key\n")
    );
    // 404, 422, 409.
    assert_eq!(
        tooken(&server, &key, &["tokens", "get", "nope"]).await.code,
        4
    );
    let past = tooken(
        &server,
        &key,
        &words("tokens create --name x --scope tokens:read --expires-at 2020-01-01T00:00:00Z"),
    )
    .await;
    assert_eq!(
        (past.code, past.stderr.as_str()),
        (5, "tooken: expires_at must be in the future\n")
    );
    let issued = ok(
        &server,
        &key,
        &words("tokens create --name x --scope tokens:read -o json"),
    )
    .await
    .json();
    let id = issued["id"].as_str().unwrap();
    ok(&server, &key, &["tokens", "revoke", id]).await;
    let run = tooken(&server, &key, &["tokens", "rotate", id]).await;
    assert_eq!(
        (run.code, run.stderr.as_str()),
        (5, "tooken: a revoked token cannot be rotated\n")
    );
    // Nothing listening.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let run = tooken(
        &server,
        &key,
        &["tokens", "list", "--url", &format!("http://{closed}")],
    )
    .await;
    assert_eq!(run.code, 6);
    assert!(
        run.stderr
            .starts_with("tooken: cannot reach the Tooken API"),
        "{}",
        run.stderr
    );
}

/// The `sh` blocks of a `## ` section of README.md.
fn readme_sh_blocks(section: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let body = readme
        .split("\n## ")
        .find(|s| s.starts_with(&format!("{section}\n")))
        .unwrap_or_else(|| panic!("README has no section {section}"));
    let mut blocks = Vec::new();
    let mut lines = body.lines();
    while let Some(line) = lines.next() {
        if line == "```sh" {
            blocks.push(
                lines
                    .by_ref()
                    .take_while(|l| *l != "```")
                    .collect::<Vec<_>>()
                    .join("\n"),
            );
        }
    }
    blocks
}

/// Each README line in one bash session, in order, with the exit code its `# exit N` comment
/// names (0 without one). `tooken` is the binary cargo built; the server is the test's.
async fn readme_lines_run_as_written(server: Server) {
    let mut blocks = readme_sh_blocks("The `tooken` CLI");
    let downstream = readme_sh_blocks("Checking tokens downstream");
    assert_eq!(
        (blocks.len(), downstream.len()),
        (2, 1),
        "the README's blocks changed"
    );
    blocks.extend(downstream);
    let mut script = String::from("cd \"$WORKDIR\"\n");
    for line in blocks.iter().flat_map(|block| block.lines()) {
        let expected = line
            .rsplit_once("# exit ")
            .map_or(0, |(_, code)| code.trim().parse().unwrap());
        let command = line.replace("http://127.0.0.1:8080", &server.url);
        script.push_str(&format!(
            "{command}\nrc=$?; if [ $rc -ne {expected} ]; then echo \"exit $rc, not {expected}: {}\" >&2; exit 99; fi\n",
            line.replace('\\', "\\\\").replace('"', "\\\"").replace('$', "\\$").replace('`', "\\`")
        ));
    }
    // curl ends without a newline.
    script.push_str("echo\ncat .env audit.csv\n");
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_tooken"));
    assert!(
        binary.ends_with("debug/tooken") || binary.ends_with("release/tooken"),
        "{binary:?}"
    );
    let workdir = std::env::temp_dir()
        .join(format!("tooken-cli-readme-{}", std::process::id()))
        .join(server.url.rsplit(':').next().unwrap());
    std::fs::create_dir_all(&workdir).unwrap();
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap()
    );
    let mut command = Command::new("bash");
    command
        .args(["-c", &script])
        .env("PATH", path)
        .env("WORKDIR", &workdir)
        .env("TOOKEN_URL", &server.url)
        .env("TOOKEN_API_KEY", &server.api_key);
    let run = tokio::task::spawn_blocking(move || finish(command.output().unwrap()))
        .await
        .unwrap();
    let _ = std::fs::remove_dir_all(&workdir);
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    // The refused create printed what the README shows.
    assert!(
        run.stderr
            .contains("tooken: this token lacks the `tokens:write` scope\n"),
        "{}",
        run.stderr
    );
    // The introspection answer has the README's fields, and `.env` one TOOKEN_TOKEN line.
    let introspected = run
        .stdout
        .lines()
        .find(|line| line.starts_with("{\"active\""))
        .unwrap_or_else(|| panic!("no introspection answer: {}", run.stdout));
    let answer: Value = serde_json::from_str(introspected).unwrap();
    let keys: Vec<&String> = answer.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "active",
            "client_id",
            "exp",
            "iat",
            "scope",
            "sub",
            "token_type"
        ]
    );
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], "my-first-token");
    let env_line = run
        .stdout
        .lines()
        .find(|line| line.starts_with("TOOKEN_TOKEN=tok_live_"));
    assert!(env_line.is_some(), "{}", run.stdout);
    assert!(
        run.stdout.contains("token.created"),
        "the audit export: {}",
        run.stdout
    );
}
