//! Telling the app that a new token file is in place: an HTTP POST, or a signal to a process in
//! the pod (with `shareProcessNamespace: true`).

use std::fs;
use std::time::Duration;

pub struct Notifier {
    http: Option<(reqwest::Client, String)>,
    signal: Option<(i32, String)>,
}

impl Notifier {
    pub fn new(url: Option<String>, signal: Option<(i32, String)>) -> anyhow::Result<Self> {
        let http = match url {
            Some(url) => Some((
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(5))
                    .build()?,
                url,
            )),
            None => None,
        };
        Ok(Notifier { http, signal })
    }

    /// Notifies by every configured means; the outcome names what failed.
    pub async fn notify(&self) -> Result<(), String> {
        let mut failures = Vec::new();
        if let Some((client, url)) = &self.http {
            match client.post(url).send().await {
                Ok(response) if response.status().is_success() => {}
                Ok(response) => failures.push(format!("POST {url}: {}", response.status())),
                Err(err) => failures.push(format!("POST {url}: {err}")),
            }
        }
        if let Some((signal, process)) = &self.signal {
            let pids = pids_named(process);
            if pids.is_empty() {
                failures.push(format!("no process named {process}"));
            }
            for pid in pids {
                // SAFETY: kill(2) takes plain integers and has no memory effects.
                if unsafe { libc::kill(pid, *signal) } != 0 {
                    failures.push(format!(
                        "signal {signal} to {pid}: {}",
                        std::io::Error::last_os_error()
                    ));
                }
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

/// The processes whose `/proc/<pid>/comm` is `name`, other than this one.
fn pids_named(name: &str) -> Vec<i32> {
    let own = std::process::id() as i32;
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != own)
        .filter(|pid| {
            fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|comm| comm.trim_end() == name)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::ExitStatusExt;
    use std::process::{Child, Command};

    /// `sleep` started under a name unique to this test run, so only it can be matched.
    fn named_sleep(tag: &str) -> (Child, String) {
        let name = format!("tk{tag}{}", std::process::id() % 1_000_000);
        let link = std::env::temp_dir().join(&name);
        let _ = fs::remove_file(&link);
        let sleep = ["/bin/sleep", "/usr/bin/sleep"]
            .into_iter()
            .find(|p| std::path::Path::new(p).exists())
            .expect("sleep is installed");
        std::os::unix::fs::symlink(sleep, &link).unwrap();
        let child = Command::new(&link).arg("30").spawn().unwrap();
        // Until the exec is done, the child may still carry this test's name.
        while fs::read_to_string(format!("/proc/{}/comm", child.id()))
            .is_ok_and(|comm| comm.trim_end() != name)
        {
            std::thread::yield_now();
        }
        let _ = fs::remove_file(&link);
        (child, name)
    }

    #[test]
    fn finds_processes_by_name_but_not_itself() {
        let (mut child, name) = named_sleep("f");
        let pids = pids_named(&name);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(pids, vec![child.id() as i32]);
        let own_name = fs::read_to_string("/proc/self/comm").unwrap();
        assert!(!pids_named(own_name.trim_end()).contains(&(std::process::id() as i32)));
    }

    #[tokio::test]
    async fn a_signal_reaches_the_named_process() {
        let (mut child, name) = named_sleep("s");
        let notifier = Notifier::new(None, Some((libc::SIGUSR1, name))).unwrap();
        notifier.notify().await.unwrap();
        assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGUSR1));
    }

    #[tokio::test]
    async fn a_failed_notification_says_what_failed() {
        let notifier =
            Notifier::new(None, Some((libc::SIGHUP, "no-such-process-x".into()))).unwrap();
        let err = notifier.notify().await.unwrap_err();
        assert!(err.contains("no-such-process-x"), "{err}");
    }
}
