//! The `clarion` binary as a child process, on a free port, with SQLite in
//! a scratch directory; and the waits the tests poll with.

#![allow(dead_code)] // each test binary uses its own part of this

use std::future::Future;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use clarion_testkit::servers::TempDir;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_clarion");

/// How long anything may take before a test gives up.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// API keys of the tests (only their hashes go into the config).
pub const EMIT_KEY: &str = "test-emit-key-0123456789";
pub const ALICE_KEY: &str = "test-alice-inbox-key-0123456789";
pub const ADMIN_KEY: &str = "test-admin-key-0123456789";
pub const METRICS_KEY: &str = "test-metrics-key-0123456789";

/// `[[server.auth.keys]]` entries for the keys above.
pub fn keys_toml() -> String {
    let hash = clarion_server::auth::hash_hex;
    format!(
        r#"
[[server.auth.keys]]
name = "kms"
sha256 = "{}"
scopes = ["emit"]

[[server.auth.keys]]
name = "alice-app"
sha256 = "{}"
scopes = ["inbox"]
owner = "alice"

[[server.auth.keys]]
name = "ops"
sha256 = "{}"
scopes = ["admin"]

[[server.auth.keys]]
name = "prometheus"
sha256 = "{}"
scopes = ["metrics"]
"#,
        hash(EMIT_KEY),
        hash(ALICE_KEY),
        hash(ADMIN_KEY),
        hash(METRICS_KEY)
    )
}

/// A scratch directory with `clarion.toml` = a SQLite store in it, then `body`.
pub fn config_dir(body: &str) -> TempDir {
    let dir = TempDir::new();
    let db = dir.path("clarion.db");
    let text = format!("[store]\nurl = \"sqlite://{}\"\n\n{body}", db.display());
    std::fs::write(dir.path("clarion.toml"), text).unwrap();
    dir
}

/// A running `clarion serve`.
pub struct Daemon {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub dir: TempDir,
}

impl Daemon {
    /// Starts `clarion serve` on `dir/clarion.toml` (whose `[server]` listens
    /// on port 0) and waits for its "listening on" line.
    pub async fn start(dir: TempDir) -> Daemon {
        let mut child = Command::new(BIN)
            .args(["serve", "--config"])
            .arg(dir.path("clarion.toml"))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("the clarion binary starts");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = tokio::time::timeout(DEADLINE, async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(url) = line.strip_prefix("clarion: listening on ") {
                    return url.to_owned();
                }
            }
            panic!("clarion serve exited before listening");
        })
        .await
        .expect("clarion serve listens within the deadline");
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Daemon { child, base, dir }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGTERM, then the exit status (within the deadline).
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(sent.success());
        tokio::time::timeout(DEADLINE, self.child.wait())
            .await
            .expect("clarion serve exits after SIGTERM within the deadline")
            .unwrap()
    }
}

/// Polls `probe` until it returns `Some`, or panics with `what` at the deadline.
pub async fn eventually<T, F, Fut>(what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = tokio::time::Instant::now();
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `clarion ARGS…` to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let output = std::process::Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the clarion binary runs");
    (
        output.status.code().expect("exited, not killed"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// An HTTP client (plain HTTP on loopback; the ring provider installed
/// because the webhook channel's reqwest brings rustls without one).
pub fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}
