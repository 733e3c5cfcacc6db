//! SMTP throughput through the dispatcher, pooled against one connection per
//! message.
//!
//! postfix's `smtp-sink` listens on 127.0.0.1 (installed with apt if
//! missing, as the SMTP channel's tests do; if that fails this part is
//! skipped with a message). Then, in one run, three phases of [`MESSAGES`]
//! events each: the events are emitted into the memory store, the
//! dispatcher is started (`delivery.concurrency = per_channel_concurrency =`
//! [`CONCURRENCY`]) and timed until every delivery is recorded as sent. The
//! SMTP channel is built from configuration (`tls = "none"`); only its
//! `pool` differs:
//!
//! 1. **pooled**: `max_connections =` [`POOL`], `idle_timeout = "60s"`:
//!    connections are reused;
//! 2. **fresh, [`POOL`] at a time**: `idle_timeout = "0s"` keeps no
//!    connection, so every message opens (and drops) its own, with as many
//!    in flight as the pooled run: the cost of not reusing;
//! 3. **fresh, one at a time**: `max_connections = 1`, `idle_timeout =
//!    "0s"`: a sender that connects per message and sends sequentially.
//!
//! It prints the three rates and the pooled/baseline ratios (the issue's aim
//! is ≥ 5×). Nothing is asserted about speed; every wait is bounded by
//! [`LIMIT`]. A failed delivery (no retries here: `max_attempts = 1`) stops
//! the phase with the channel's reason.

use std::io::Read;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clarion::config::Config;
use clarion::event::{KeyEvent, ObjectType, RotationFailure, Subject};
use clarion::memory::MemoryStore;
use clarion::smtp_channel as _;
use clarion::store::{DeliveryFilter, DeliveryStatus, OutboxStore, PageRequest};
use clarion::{EmitOutcome, Notifier};

/// Messages (one delivery each) per phase.
pub const MESSAGES: usize = 2_000;
/// Deliveries in flight at once in the dispatcher.
pub const CONCURRENCY: usize = 64;
/// The pool size of the pooled run (and of the first baseline).
pub const POOL: usize = 8;
/// Upper bound for any one phase.
pub const LIMIT: Duration = Duration::from_secs(300);

/// Runs the SMTP benchmark and prints its figures.
pub async fn run() {
    let sink = match Sink::start() {
        Ok(sink) => sink,
        Err(why) => {
            println!("smtp — skipped: {why}");
            return;
        }
    };
    println!(
        "smtp — {MESSAGES} messages through the dispatcher (memory store, concurrency {CONCURRENCY}) \
         into postfix smtp-sink on 127.0.0.1, tls = \"none\", 2 worker threads"
    );
    let phases = [
        (format!("pooled ({POOL} connections, reused)"), POOL, "60s"),
        (
            format!("one connection per message, {POOL} at a time"),
            POOL,
            "0s",
        ),
        (
            "one connection per message, 1 at a time".to_owned(),
            1,
            "0s",
        ),
    ];
    let mut rates = Vec::new();
    for (label, connections, idle) in &phases {
        match phase(sink.port, *connections, idle).await {
            Ok(elapsed) => {
                let rate = MESSAGES as f64 / elapsed.as_secs_f64();
                println!(
                    "  {label:<46} {:>6.2} s = {rate:>6.0} msg/s",
                    elapsed.as_secs_f64()
                );
                rates.push(rate);
            }
            Err(why) => {
                println!("  {label:<46} failed: {why}");
                return;
            }
        }
    }
    println!(
        "  ratio pooled / per-message ({POOL} at a time): {:.1}×; pooled / per-message (1 at a time): {:.1}× (aim ≥ 5×)",
        rates[0] / rates[1],
        rates[0] / rates[2]
    );
}

fn event(i: usize) -> KeyEvent {
    KeyEvent::rotation_failure(
        Subject::new(format!("key-{i}"), ObjectType::SymmetricKey).named("payments-dek"),
        RotationFailure {
            error: "HSM unreachable".into(),
            attempt: 1,
            next_attempt: None,
        },
    )
    .with_owner(format!("owner-{}", i % 100))
    .with_label("env", "prod")
}

/// Emits [`MESSAGES`] events, then times the dispatcher until every
/// delivery is recorded (sent, or dead with the reason returned).
async fn phase(port: u16, connections: usize, idle_timeout: &str) -> Result<Duration, String> {
    let config = Config::from_toml_str(&format!(
        r#"
[store]
url = "memory://"

[delivery]
concurrency = {CONCURRENCY}
per_channel_concurrency = {CONCURRENCY}

[delivery.retry]
max_attempts = 1

[channels.mail]
kind = "smtp"
host = "127.0.0.1"
port = {port}
tls = "none"
allow_insecure = true
from = "KMS alerts <kms-alerts@example.com>"
to = ["oncall@example.com"]
timeout = "30s"
pool = {{ max_connections = {connections}, idle_timeout = "{idle_timeout}" }}

[[routes]]
channels = ["mail"]
"#
    ))
    .map_err(|e| format!("bench config: {e}"))?;
    let store = Arc::new(MemoryStore::new());
    let notifier = Notifier::builder()
        .config(config)
        .shared_store(store.clone())
        .build()
        .map_err(|e| format!("bench notifier: {e}"))?;
    for i in 0..MESSAGES {
        match notifier.emit(&event(i)).await {
            Ok(EmitOutcome::Enqueued { .. }) => {}
            other => return Err(format!("emit: {other:?}")),
        }
    }

    let started = Instant::now();
    let running = notifier.start();
    let finished = async {
        loop {
            let (mut sent, mut dead) = (0, 0);
            for c in store.counts().await.expect("counts") {
                match c.status {
                    DeliveryStatus::Sent => sent += c.count,
                    DeliveryStatus::Dead => dead += c.count,
                    _ => {}
                }
            }
            if (sent + dead) as usize == MESSAGES {
                return dead;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let outcome = tokio::time::timeout(LIMIT, finished).await;
    let elapsed = started.elapsed();
    running.shutdown(Duration::from_secs(5)).await;
    match outcome {
        Err(_) => Err(format!("not every delivery was recorded within {LIMIT:?}")),
        Ok(0) => Ok(elapsed),
        Ok(dead) => {
            let filter = DeliveryFilter {
                status: Some(DeliveryStatus::Dead),
                ..DeliveryFilter::default()
            };
            let first = store
                .deliveries(&filter, PageRequest::first(1))
                .await
                .ok()
                .and_then(|page| page.items.into_iter().next())
                .and_then(|record| record.last_error)
                .unwrap_or_default();
            Err(format!("{dead} deliveries failed, e.g.: {first}"))
        }
    }
}

/// postfix's smtp-sink on 127.0.0.1, killed on drop.
struct Sink {
    child: Child,
    port: u16,
}

impl Sink {
    fn start() -> Result<Sink, String> {
        let bin = smtp_sink()?;
        let mut failures = String::new();
        // The port is picked by binding port 0 and releasing it; if something
        // else takes it first, try another.
        for _ in 0..5 {
            match Self::try_start(&bin, free_port()?) {
                Ok(sink) => return Ok(sink),
                Err(e) => failures.push_str(&e),
            }
        }
        Err(format!("smtp-sink did not start: {failures}"))
    }

    fn try_start(bin: &PathBuf, port: u16) -> Result<Sink, String> {
        let mut cmd = Command::new(bin);
        if is_root() {
            // smtp-sink refuses to run as root without a user to switch to.
            cmd.args(["-u", "nobody"]);
        }
        let mut child = cmd
            .arg(format!("127.0.0.1:{port}"))
            .arg("256")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", bin.display()))?;
        // Bounded: up to ~10 s for it to listen.
        for _ in 0..2_000 {
            if TcpStream::connect((Ipv4Addr::LOCALHOST, port)).is_ok() {
                // Keep draining its log so it never blocks on a full pipe.
                if let Some(mut pipe) = child.stderr.take() {
                    std::thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::sink()));
                }
                return Ok(Sink { child, port });
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut stderr = String::new();
                if let Some(mut pipe) = child.stderr.take() {
                    let _ = pipe.read_to_string(&mut stderr);
                }
                return Err(format!("smtp-sink exited ({status}): {}", stderr.trim()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = child.kill();
        let _ = child.wait();
        Err(format!("smtp-sink never listened on port {port}"))
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free local port: {e}"))
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn smtp_sink_path() -> Option<PathBuf> {
    ["/usr/sbin/smtp-sink", "/usr/bin/smtp-sink"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// smtp-sink's path, installing Debian's postfix (debconf preseeded, no
/// mail configuration) if it is missing.
fn smtp_sink() -> Result<PathBuf, String> {
    if let Some(path) = smtp_sink_path() {
        return Ok(path);
    }
    println!(
        "smtp: smtp-sink not found; installing postfix with apt-get (bounded to 10 minutes) …"
    );
    let script = "echo 'postfix postfix/main_mailer_type select No configuration' | debconf-set-selections \
        && export DEBIAN_FRONTEND=noninteractive \
        && (apt-get install -y -q postfix || (apt-get update -q && apt-get install -y -q postfix))";
    let out = Command::new("timeout")
        .args(["600", "sh", "-c", script])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("smtp-sink is missing and postfix could not be installed: {e}"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(3).collect();
        return Err(format!(
            "smtp-sink is missing and installing postfix failed ({}): {}; install it with \
             `apt-get install postfix` (main_mailer_type \"No configuration\")",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
        ));
    }
    smtp_sink_path().ok_or_else(|| "postfix was installed but smtp-sink was not found".to_owned())
}
