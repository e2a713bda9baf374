//! Logging through `tracing`, as text or JSON, filtered by `RUST_LOG` (default `info`).
//!
//! Lines are formatted on the request's thread and written by a thread of their own, so a
//! request never waits for a write to stderr. None is dropped: when that thread falls behind,
//! requests wait for it, as they would for stderr itself.

use crate::cli::LogFormat;
use std::io::{IsTerminal, Write};
use tracing_appender::non_blocking::{NonBlocking, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;

/// Logs to stderr until the guard is dropped, which writes out what is still queued.
#[must_use = "dropping the guard stops the logging thread"]
pub fn init(format: LogFormat) -> WorkerGuard {
    // Colours only for a person at a terminal, never into a pipe or file (`kubectl logs`).
    install(format, std::io::stderr(), std::io::stderr().is_terminal())
}

/// `init`, writing to `writer` instead of stderr (the benchmark logs to a file).
#[must_use = "dropping the guard stops the logging thread"]
pub fn init_writing_to(format: LogFormat, writer: impl Write + Send + 'static) -> WorkerGuard {
    install(format, writer, false)
}

fn install(format: LogFormat, writer: impl Write + Send + 'static, colours: bool) -> WorkerGuard {
    let (writer, guard) = off_thread(writer);
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colours)
        .with_writer(writer);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
    guard
}

/// A writer whose lines a thread of their own writes to `writer`, waiting rather than dropping.
fn off_thread(writer: impl Write + Send + 'static) -> (NonBlocking, WorkerGuard) {
    NonBlockingBuilder::default().lossy(false).finish(writer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex, mpsc};
    use tracing_subscriber::fmt::MakeWriter;

    /// Stands in for stderr: holds what was written, and can be made to block.
    #[derive(Clone, Default)]
    struct Stderr {
        written: Arc<Mutex<Vec<u8>>>,
        blocked_until: Arc<Mutex<Option<mpsc::Receiver<()>>>>,
    }

    impl Write for Stderr {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            if let Some(release) = self.blocked_until.lock().unwrap().take() {
                release.recv().unwrap();
            }
            self.written.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_line_is_handed_over_while_stderr_blocks() {
        let stderr = Stderr::default();
        let (release, blocked) = mpsc::channel();
        *stderr.blocked_until.lock().unwrap() = Some(blocked);
        let (writer, guard) = off_thread(stderr.clone());
        writer.make_writer().write_all(b"first\n").unwrap();
        // The writing thread is stuck in stderr; the next line still returns at once.
        writer.make_writer().write_all(b"second\n").unwrap();
        assert!(stderr.written.lock().unwrap().is_empty());
        release.send(()).unwrap();
        drop(guard);
        assert_eq!(*stderr.written.lock().unwrap(), b"first\nsecond\n");
    }

    #[test]
    fn no_line_is_dropped_when_stderr_falls_behind() {
        let stderr = Stderr::default();
        let (release, blocked) = mpsc::channel();
        *stderr.blocked_until.lock().unwrap() = Some(blocked);
        let (writer, guard) = off_thread(stderr.clone());
        let handed = Arc::new(AtomicUsize::new(0));
        let lines = 200_000;
        let writing = std::thread::spawn({
            let handed = handed.clone();
            move || {
                for n in 0..lines {
                    // One write per line, as the subscriber makes.
                    let line = format!("{n}\n");
                    writer.make_writer().write_all(line.as_bytes()).unwrap();
                    handed.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        // Stderr is stuck on the first line, and the queue holds 128,000 more: the writer must
        // get that far, and no further, before stderr moves again.
        while handed.load(Ordering::SeqCst) < 128_001 {
            std::thread::yield_now();
        }
        release.send(()).unwrap();
        writing.join().unwrap();
        drop(guard);
        let written = String::from_utf8(stderr.written.lock().unwrap().clone()).unwrap();
        let numbers: Vec<usize> = written.lines().map(|n| n.parse().unwrap()).collect();
        assert_eq!(numbers, (0..lines).collect::<Vec<_>>());
    }
}
