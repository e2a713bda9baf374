//! Programs from outside the workspace that some tests drive (nginx, Python with authlib).
//! Without one of them a test says it was skipped, except under CI, where that is a failure.

use std::path::PathBuf;
use std::process::Command;

/// `program` if it runs with `args`, else `None` (or a panic under CI).
pub fn find(candidates: &[&str], args: &[&str], what: &str) -> Option<PathBuf> {
    let found = candidates.iter().map(PathBuf::from).find(|program| {
        Command::new(program)
            .args(args)
            .output()
            .is_ok_and(|output| output.status.success())
    });
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI is set but {what} is missing; .ci/run installs it"
        );
        eprintln!("SKIPPED: {what} is missing, so this test did not run");
    }
    found
}

/// The Python that has authlib: `.ci/run`'s venv, or the one on PATH.
pub fn python_with_authlib() -> Option<PathBuf> {
    find(
        &["/tmp/tooken-ci-venv/bin/python", "python3"],
        &["-c", "import authlib"],
        "Python with authlib (pip install authlib requests)",
    )
}

/// Debian's nginx (`apt-get install nginx-light`).
pub fn nginx() -> Option<PathBuf> {
    find(
        &["/usr/sbin/nginx", "nginx"],
        &["-v"],
        "nginx (apt-get install nginx-light)",
    )
}
