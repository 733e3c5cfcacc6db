//! The webhook receiver in a process of its own, for benchmarks: a receiver
//! in the measured process would share its CPU and runtime with the code
//! under test, and a real receiver never does.
//!
//! Any binary can host the child: it calls [`serve_child_receiver`] when it
//! finds the argument it chose (the bench uses `--receiver-child`), and the
//! parent starts it with [`ChildReceiver::spawn`] on `std::env::current_exe()`.
//! The protocol is lines: the child prints `listening <addr>` on stdout once
//! it accepts connections, then answers each `count` line on stdin with
//! `<requests> <signed>` (requests carrying all three Standard Webhooks
//! headers). It exits when its stdin closes, so it never outlives the parent.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::ServerError;

/// What the child has received so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildCounts {
    /// Every request.
    pub requests: u64,
    /// Requests with `webhook-id`, `webhook-timestamp` and `webhook-signature`.
    pub signed: u64,
}

/// A receiver running in a child process; killed when dropped.
pub struct ChildReceiver {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    stdin: ChildStdin,
    stdout: tokio::io::Lines<BufReader<ChildStdout>>,
}

const LISTENING: &str = "listening ";

impl ChildReceiver {
    /// Runs `program args…` (a binary that calls [`serve_child_receiver`])
    /// and waits until it listens.
    pub async fn spawn(
        program: impl AsRef<std::ffi::OsStr>,
        args: &[&str],
    ) -> Result<ChildReceiver, ServerError> {
        let failed = |detail: String| ServerError::Start {
            what: "the child webhook receiver",
            detail,
        };
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let line = stdout
            .next_line()
            .await
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed("it exited before listening".into()))?;
        let addr = line
            .strip_prefix(LISTENING)
            .and_then(|a| a.parse().ok())
            .ok_or_else(|| failed(format!("unexpected first line {line:?}")))?;
        Ok(ChildReceiver {
            addr,
            child,
            stdin,
            stdout,
        })
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Asks the child what it has received so far.
    pub async fn counts(&mut self) -> Result<ChildCounts, ServerError> {
        let failed = |detail: String| ServerError::Start {
            what: "the child webhook receiver",
            detail,
        };
        self.stdin
            .write_all(b"count\n")
            .await
            .map_err(|e| failed(e.to_string()))?;
        self.stdin
            .flush()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let line = self
            .stdout
            .next_line()
            .await
            .map_err(|e| failed(e.to_string()))?
            .ok_or_else(|| failed("it exited".into()))?;
        let mut parts = line.split(' ').map(str::parse::<u64>);
        match (parts.next(), parts.next()) {
            (Some(Ok(requests)), Some(Ok(signed))) => Ok(ChildCounts { requests, signed }),
            _ => Err(failed(format!("unexpected count line {line:?}"))),
        }
    }
}

impl Drop for ChildReceiver {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

#[derive(Default)]
struct Tally {
    requests: AtomicU64,
    signed: AtomicU64,
}

/// The child's side: serves on 127.0.0.1 (ephemeral port) with its own
/// single-threaded runtime, answering every request 204 after reading its
/// body, until stdin closes. Call it from `main` and exit afterwards.
pub fn serve_child_receiver() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime for the child receiver");
    runtime.block_on(async {
        let tally = Arc::new(Tally::default());
        let counted = tally.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, _body: Bytes| {
            let tally = counted.clone();
            async move {
                tally.requests.fetch_add(1, Ordering::Relaxed);
                let signed = ["webhook-id", "webhook-timestamp", "webhook-signature"]
                    .iter()
                    .all(|h| headers.contains_key(*h));
                if signed {
                    tally.signed.fetch_add(1, Ordering::Relaxed);
                }
                StatusCode::NO_CONTENT
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let addr = listener.local_addr().expect("an address");
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("the receiver runs");
        });
        let mut stdout = tokio::io::stdout();
        stdout
            .write_all(format!("{LISTENING}{addr}\n").as_bytes())
            .await
            .expect("stdout");
        stdout.flush().await.expect("stdout");
        let mut commands = BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(command)) = commands.next_line().await {
            if command.trim() == "count" {
                let line = format!(
                    "{} {}\n",
                    tally.requests.load(Ordering::Relaxed),
                    tally.signed.load(Ordering::Relaxed)
                );
                stdout.write_all(line.as_bytes()).await.expect("stdout");
                stdout.flush().await.expect("stdout");
            }
        }
        server.abort();
    });
}
