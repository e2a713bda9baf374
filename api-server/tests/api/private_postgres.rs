//! A PostgreSQL server of a test's own, from the same Debian packages `.ci/postgres.sh`
//! installs, so that the test may stop and restart it without disturbing any other test.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tooken_api_server::test_support::postgres_admin_url;

pub struct PrivatePostgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    /// Who the server runs as: the `postgres` user when the test runs as root.
    owner: Option<(u32, u32)>,
    server: Option<Child>,
}

/// How the server is stopped: as `pg_ctl stop -m fast` would, or as a crash would leave it.
#[derive(Debug, Clone, Copy)]
pub enum Stop {
    Fast,
    Immediate,
}

impl PrivatePostgres {
    /// Initialises and starts a server on a free port, or `None` (the test is skipped) where
    /// PostgreSQL tests do not run at all.
    pub fn start() -> Option<PrivatePostgres> {
        postgres_admin_url()?;
        let bin = bin_dir();
        let dir = std::env::temp_dir()
            .join("tooken-tests")
            .join(format!("pg-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(dir.join("data")).expect("create the data directory");
        let owner = server_owner();
        if let Some((uid, gid)) = owner {
            for path in [&dir, &dir.join("data")] {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).expect("chown");
            }
        }
        let init = as_owner(Command::new(bin.join("initdb")), owner)
            .args(["-D", "data", "-U", "postgres", "-A", "trust", "--no-sync"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file(&dir, "initdb.log", owner)))
            .status()
            .expect("run initdb");
        assert!(
            init.success(),
            "initdb failed: {}",
            read_log(&dir, "initdb.log")
        );
        let mut server = PrivatePostgres {
            bin,
            dir,
            port: free_port(),
            owner,
            server: None,
        };
        server.serve();
        Some(server)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server and waits until it has exited.
    pub fn stop(&mut self, how: Stop) {
        let Some(mut server) = self.server.take() else {
            return;
        };
        let signal = match how {
            Stop::Fast => "INT",
            Stop::Immediate => "QUIT",
        };
        assert!(self.signal(signal, &server), "could not signal PostgreSQL");
        let status = server.wait().expect("wait for PostgreSQL");
        assert!(
            status.code().is_some(),
            "PostgreSQL died instead of shutting down: {status}"
        );
    }

    /// Starts the server (again) on its port and data, and waits until it accepts queries.
    pub fn serve(&mut self) {
        let port = self.port.to_string();
        let server = as_owner(Command::new(self.bin.join("postgres")), self.owner)
            .args([
                "-D",
                "data",
                "-p",
                &port,
                "-c",
                "listen_addresses=127.0.0.1",
            ])
            .args([
                "-c",
                "unix_socket_directories=",
                "-c",
                "max_connections=100",
            ])
            .current_dir(&self.dir)
            // Never the test's own pipes: a server that holds them keeps the test runner waiting.
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file(&self.dir, "server.log", self.owner)))
            .spawn()
            .expect("start postgres");
        self.server = Some(server);
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.accepts_queries() {
            if let Some(server) = self.server.as_mut()
                && let Some(status) = server.try_wait().expect("poll postgres")
            {
                panic!("PostgreSQL exited ({status}): {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start within a minute: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `pg_ctl kill`, which ships with the server, rather than a `kill` that may not. Like
    /// the server, it runs as its owner.
    fn signal(&self, signal: &str, server: &Child) -> bool {
        as_owner(Command::new(self.bin.join("pg_ctl")), self.owner)
            .args(["kill", signal, &server.id().to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success())
    }

    fn accepts_queries(&self) -> bool {
        let ready = Command::new(self.bin.join("pg_isready"))
            .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-d", "postgres"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run pg_isready");
        ready.success()
    }

    fn log(&self) -> String {
        read_log(&self.dir, "server.log")
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            self.signal("QUIT", &server);
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The newest server binaries Debian installed (`/usr/lib/postgresql/<major>/bin`).
fn bin_dir() -> PathBuf {
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server packages are installed (.ci/postgres.sh)")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let major = path.file_name()?.to_str()?.parse().ok()?;
            path.join("bin/postgres")
                .exists()
                .then(|| (major, path.join("bin")))
        })
        .collect();
    majors.sort();
    majors
        .pop()
        .expect("a PostgreSQL server under /usr/lib/postgresql")
        .1
}

/// PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user.
fn server_owner() -> Option<(u32, u32)> {
    let uid = String::from_utf8(Command::new("id").arg("-u").output().ok()?.stdout).ok()?;
    if uid.trim() != "0" {
        return None;
    }
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .expect("run id");
        assert!(
            out.status.success(),
            "no postgres user to run PostgreSQL as"
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    Some((id("-u"), id("-g")))
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    command
}

fn log_file(dir: &Path, name: &str, owner: Option<(u32, u32)>) -> File {
    let path = dir.join(name);
    let file = File::options()
        .create(true)
        .append(true)
        .open(&path)
        .expect("open the log");
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).expect("chown the log");
    }
    file
}

fn read_log(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_default()
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().unwrap().port()
}
