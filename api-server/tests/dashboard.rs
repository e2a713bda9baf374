//! The dashboard in a real browser: runs the Node tests in tests/dashboard/ (playwright-core
//! driving Debian's headless Chromium) against this build's tooken-server. Screenshots and
//! server logs land in target/dashboard-artifacts/ (or `TOOKEN_DASHBOARD_ARTIFACTS`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Why the browser tests cannot run here, if they cannot.
fn missing_prerequisite(dir: &Path, chromium: &str) -> Option<String> {
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !Path::new(chromium).exists() {
        return Some(format!("{chromium} is missing (Debian package chromium)"));
    }
    if !dir.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "{}/node_modules/playwright-core is missing (run npm ci there)",
            dir.display()
        ));
    }
    None
}

#[test]
fn dashboard_flows_in_headless_chromium() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard");
    let chromium = std::env::var("TOOKEN_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if let Some(why) = missing_prerequisite(&dir, &chromium) {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the dashboard's browser tests, but {why} (.ci/run installs them)"
        );
        // Straight to stderr: the test harness hides eprintln! output of passing tests.
        let _ = std::io::stderr().write_all(
            format!("SKIPPED: {why}, so the dashboard's browser tests did not run\n").as_bytes(),
        );
        return;
    }
    let output = Command::new("node")
        .args(["--test", "--test-concurrency=1", "--test-reporter=spec"])
        // A stuck page fails its test instead of hanging the whole run.
        .arg("--test-timeout=120000")
        // A test that forgot to stop its server or browser must not keep node waiting forever.
        .arg("--test-force-exit")
        .current_dir(&dir)
        .env("TOOKEN_SERVER_BIN", env!("CARGO_BIN_EXE_tooken-server"))
        .env("TOOKEN_CHROMIUM", &chromium)
        .stdin(Stdio::null())
        .output()
        .expect("run node --test");
    if !output.status.success() {
        let mut stderr = std::io::stderr();
        let _ = stderr.write_all(&output.stdout);
        let _ = stderr.write_all(&output.stderr);
        panic!(
            "the dashboard's browser tests failed ({}); their output is above, screenshots and \
             server logs are in target/dashboard-artifacts/ (or TOOKEN_DASHBOARD_ARTIFACTS)",
            output.status
        );
    }
}
